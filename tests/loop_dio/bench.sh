# loop_dio benchmark (make bench): the C loop driver (loop.ko) and rust44's loop_dio in one boot,
# each with the backing file under direct I/O (dio on) and through the page cache (dio off).
# fio (io_uring, O_DIRECT on the loop device) runs 4k random reads and writes at QD1 and QD32
# and 1 MiB sequential reads against a 256 MiB backing file on ext4 on virtio-blk (vdb).
# Each row runs on the two drivers back to back (only one can own major 7 at a time: each run
# loads its driver, attaches, measures, detaches and unloads), which one goes first alternating,
# ROUNDS (3) times; each row shows the run with the median IOPS and every run's IOPS, as the host
# is noisy.
# Prints Markdown tables on stdout; a driver whose module is not built gets a row saying so.
cd /rust44/tests/loop_dio || exit 1
. /rust44/bench.sh
LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
MKFS=/usr/sbin/mkfs.ext4
DRIVERS=${LOOP_DRIVERS:-loop loop_dio}
RUNTIME=${BENCH_RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
SIZE=256M
MNT=/mnt/vdb
FILE=$MNT/bench.img
# One line per run: driver dio job-index state iops mibs usr sys busy cache.
OUT=/tmp/loop-bench.runs
# name|fio arguments
JOBS="4k randread QD1|--rw=randread --bs=4k --iodepth=1
4k randread QD32|--rw=randread --bs=4k --iodepth=32
4k randwrite QD1|--rw=randwrite --bs=4k --iodepth=1
4k randwrite QD32|--rw=randwrite --bs=4k --iodepth=32
1M seqread QD8|--rw=read --bs=1M --iodepth=8"
NJOBS=$(echo "$JOBS" | wc -l)

module_built() {
	grep -q "/$1\.ko[.a-z]*:" "/lib/modules/$(uname -r)/modules.dep"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2fx", a / b; else print "n/a" }'; }

# Busy and total jiffies of all CPUs (busy: everything but idle and iowait).
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

job_name() {
	echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f1
}

job_args() {
	echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f2
}

# run DRIVER DIO JOB: one fio run of job number JOB on $DEV; appends a line to $OUT.
run() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	set -- "$1" "$2" "$3" $(cpu_jiffies)
	# shellcheck disable=SC2046
	line=$($FIO --name=bench --filename="$DEV" --direct=1 --ioengine=io_uring --size=$SIZE \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --randrepeat=0 --norandommap \
		--minimal $(job_args "$3") </dev/null 2>/dev/null)
	rc=$?
	set -- "$1" "$2" "$3" "$4" "$5" $(cpu_jiffies)
	pages=$(./pagecache "$FILE" | cut -d' ' -f1)
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		echo "$1 $2 $3 failed" >>"$OUT"
		return
	fi
	# Terse v3: 7/8 read KiB/s and IOPS, 48/49 write, 88/89 fio's usr/sys CPU %.
	echo "$line" | awk -F';' -v drv="$1" -v dio="$2" -v job="$3" -v pages="$pages" \
		-v busy=$(($6 - $4)) -v total=$(($7 - $5)) '{
		usr = $88; sub(/%/, "", usr); sys = $89; sub(/%/, "", sys)
		printf "%s %s %s ok %.0f %.1f %.1f %.1f %.1f %.1f\n", drv, dio, job, $8 + $49,
			($7 + $48) / 1024, usr, sys, total ? 100 * busy / total : 0, pages * 4 / 1024
	}' >>"$OUT"
}

# measure DRIVER DIO JOB: loads the driver, attaches the file with direct I/O DIO, runs job
# number JOB once, detaches and unloads (the two drivers cannot be loaded at once).
measure() {
	drv=$1
	if ! modprobe "$drv"; then
		echo "$drv - - no-load" >>"$OUT"
		status=1
		return
	fi
	if DEV=$($LOSETUP -f --show --direct-io="$2" "$FILE"); then
		want=0
		[ "$2" = on ] && want=1
		if [ "$(cat "/sys/block/${DEV#/dev/}/loop/dio")" != $want ]; then
			echo "$drv $2 - dio-not-$2" >>"$OUT"
			status=1
		fi
		run "$drv" "$2" "$3"
		$LOSETUP -d "$DEV"
	else
		status=1
	fi
	$LOSETUP -D
	rmmod "$drv" || status=1
}

status=0
# VDB_ROWS=0 / NVME_ROWS=0 leave a section out (by hand: tools/vm.sh cmd 'rmmod loop_dio;
# cd /rust44/tests/loop_dio && VDB_ROWS=0 sh bench.sh').
if [ "${VDB_ROWS:-1}" = 1 ]; then
	mkdir -p "$MNT"
	$MKFS -q -E nodiscard /dev/vdb && mount -t ext4 /dev/vdb "$MNT" || { echo "cannot set up ext4 on vdb"; exit 1; }
	# Written for real (not sparse): reads must reach the disk.
	$FIO --name=fill --filename="$FILE" --rw=write --bs=1M --size=$SIZE --direct=1 --ioengine=psync \
		--minimal >/dev/null 2>&1 || { echo "cannot write $FILE"; exit 1; }
	: >"$OUT"
	present=""
	for drv in $DRIVERS; do
		if module_built "$drv"; then
			present="$present $drv"
		else
			echo "$drv - - missing" >>"$OUT"
		fi
	done
	reversed=$(echo "$present" | tr ' ' '\n' | sed '/^$/d' | sed -n '1!G;h;$p')
	# Every row runs on both drivers back to back, ROUNDS times; which goes first alternates from
	# row to row and, for each row, from round to round.
	for r in $(seq "$ROUNDS"); do
		for dio in on off; do
			for j in $(seq "$NJOBS"); do
				if [ $(((r + j) % 2)) = 0 ]; then order=$present; else order=$reversed; fi
				for drv in $order; do
					measure "$drv" $dio "$j"
				done
			done
		done
	done
	umount "$MNT"

	label() {
		case "$1" in
		loop) echo "loop (C)" ;;
		loop_dio) echo "loop_dio (rust44)" ;;
		*) echo "$1" ;;
		esac
	}

	# median DRIVER DIO JOB: the fields of the run with the median IOPS (the lower middle one of an
	# even count), then every run's IOPS in the order run, comma-separated; nothing without runs.
	median() { bench_median "$OUT" "$1" "$2" "$3"; }

	echo "Backing file: $SIZE on ext4 on virtio-blk (vdb). fio: io_uring, O_DIRECT on the loop device,"
	echo "${RUNTIME} s per run (after 1 s ramp), caches dropped before each run. Each row runs on both"
	echo "drivers back to back (the module loaded, the file attached, one run, detached, unloaded), which"
	echo "goes first alternating, $ROUNDS rounds; a row is the run with the median IOPS, \"runs\" lists"
	echo "every run's IOPS in the order run."
	echo "\"fio CPU\" is the submitting thread's usr/sys; \"system CPU\" is all CPUs busy (the loop workers"
	echo "included, of 2 CPUs). \"Page cache\" is how much of the backing file was resident (mincore) after"
	echo "the run."
	echo
	echo "| driver | backing dio | workload | IOPS | MiB/s | fio CPU usr % | fio CPU sys % | system CPU % | page cache (MiB) | runs (IOPS) |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---|"
	for drv in $DRIVERS; do
		if grep -q "^$drv - - missing" "$OUT"; then
			echo "| $(label "$drv") | - | - | module not built: not measured | | | | | | |"
			continue
		fi
		grep -q "^$drv - - no-load" "$OUT" &&
			echo "| $(label "$drv") | - | - | modprobe failed in a round | | | | | | |"
		for dio in on off; do
			grep -q "^$drv $dio - dio-not-" "$OUT" &&
				echo "| $(label "$drv") | $dio | - | direct I/O was not $dio in a round: rows below are suspect | | | | | | |"
			for j in $(seq "$NJOBS"); do
				m=$(median "$drv" $dio "$j")
				if [ -z "$m" ]; then
					echo "| $(label "$drv") | $dio | $(job_name "$j") | fio failed | | | | | | |"
					continue
				fi
				# shellcheck disable=SC2086
				set -- ${m%%|*}
				echo "| $(label "$drv") | $dio | $(job_name "$j") | $5 | $6 | $7 | $8 | $9 | ${10} | ${m#*|} |"
			done
		done
	done

	echo
	echo "rust44 / C (loop_dio divided by loop, medians; above 1.00x is more IOPS, more CPU, more cache;"
	echo "\"IOPS range\" divides loop_dio's lowest and highest run by C's median):"
	echo
	echo "| backing dio | workload | IOPS | IOPS range | MiB/s | system CPU | page cache |"
	echo "|---|---|---:|---|---:|---:|---:|"
	for dio in on off; do
		for j in $(seq "$NJOBS"); do
			c=$(median loop $dio "$j")
			r=$(median loop_dio $dio "$j")
			if [ -z "$c" ] || [ -z "$r" ]; then
				echo "| $dio | $(job_name "$j") | n/a | n/a | n/a | n/a | n/a |"
				continue
			fi
			# shellcheck disable=SC2086
			set -- ${c%%|*}
			c_iops=$5 c_bw=$6 c_cpu=$9 c_pc=${10}
			# shellcheck disable=SC2086
			set -- ${r%%|*}
			lo=$(echo "${r#*|}" | tr -d ' ' | tr ',' '\n' | sed 's/(.*//' | sort -n | head -n1)
			hi=$(echo "${r#*|}" | tr -d ' ' | tr ',' '\n' | sed 's/(.*//' | sort -n | tail -n1)
			if [ "$c_pc" = 0.0 ] && [ "${10}" = 0.0 ]; then pc="both 0"; else pc=$(ratio "${10}" "$c_pc"); fi
			echo "| $dio | $(job_name "$j") | $(ratio "$5" "$c_iops") | $(ratio "$lo" "$c_iops")–$(ratio "$hi" "$c_iops") | $(ratio "$6" "$c_bw") | $(ratio "$9" "$c_cpu") | $pc |"
		done
	done
fi

# --- issue 18: a file on NVMe, polled and unpolled, through each path ---
# Rows: the backing file itself with fio O_DIRECT (the limit), C loop, loop_dio with every
# request on its worker (inline_dio=0) and loop_dio trying direct I/O inline (inline_dio=1);
# 4k random reads and writes at QD1 and QD32, hipri 0 and 1 (C loop cannot poll: n/a). "ctxt/IO"
# is the rise of /proc/stat's ctxt during the run divided by the I/Os fio did. NVME_ROWS=0 leaves
# this section out.
if [ "${NVME_ROWS:-1}" = 1 ]; then
	NMNT=/mnt/nvme
	NFILE=$NMNT/bench.img
	NOUT=/tmp/loop-bench-nvme.runs
	nvme=/dev/rust44/nvme-conv
	mkdir -p "$NMNT"
	if [ -b "$nvme" ] && $MKFS -q -F -E nodiscard "$nvme" && mount -t ext4 "$nvme" "$NMNT" &&
		$FIO --name=fill --filename="$NFILE" --rw=write --bs=1M --size=$SIZE --direct=1 \
			--ioengine=psync --minimal >/dev/null 2>&1; then
		: >"$NOUT"
		NJOBS_N=4
		ctxt() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }
		# nrun CONFIG HIPRI JOB FILE: one run; appends "config hipri job iops ctxt_per_io".
		nrun() {
			sync
			echo 3 >/proc/sys/vm/drop_caches
			c0=$(ctxt)
			# shellcheck disable=SC2046
			line=$($FIO --name=bench --filename="$4" --direct=1 --ioengine=io_uring --size=$SIZE \
				--time_based --runtime="$RUNTIME" --randrepeat=0 --norandommap --hipri="$2" \
				--minimal $(job_args "$3") </dev/null 2>/dev/null)
			rc=$?
			c1=$(ctxt)
			if [ $rc -ne 0 ] || [ -z "$line" ]; then
				echo "$1 $2 $3 failed" >>"$NOUT"
				return
			fi
			# Terse v3: 6/47 KiB read/written, 8/49 IOPS.
			echo "$line" | awk -F';' -v c="$1" -v h="$2" -v j="$3" -v cs=$((c1 - c0)) '{
				ios = ($6 + $47) / 4
				# (Parenthesised: a bare ">" in a print list redirects the output.)
				printf "%s %s %s ok %.0f %.2f\n", c, h, j, $8 + $49, (ios > 0 ? cs / ios : 0)
			}' >>"$NOUT"
		}
		# nmeasure CONFIG HIPRI JOB
		nmeasure() {
			case "$1" in
			file) nrun file "$2" "$3" "$NFILE"; return ;;
			loop) [ "$2" = 1 ] && return; modprobe loop || return ;;
			worker) modprobe loop_dio inline_dio=0 || return ;;
			inline) modprobe loop_dio inline_dio=1 || return ;;
			esac
			if DEV=$($LOSETUP -f --show --direct-io=on "$NFILE"); then
				nrun "$1" "$2" "$3" "$DEV"
				$LOSETUP -d "$DEV"
			fi
			$LOSETUP -D
			case "$1" in loop) rmmod loop ;; *) rmmod loop_dio ;; esac
		}
		for r in $(seq "$ROUNDS"); do
			for h in 0 1; do
				for j in $(seq "$NJOBS_N"); do
					if [ $(((r + j) % 2)) = 0 ]; then order="file loop worker inline"; else order="inline worker loop file"; fi
					for c in $order; do
						module_built loop_dio || case $c in worker | inline) continue ;; esac
						nmeasure "$c" "$h" "$j"
					done
				done
			done
		done
		umount "$NMNT"
		# nmed CONFIG HIPRI JOB: "iops ctxt runs" of the median run.
		nmed() {
			m=$(bench_median "$NOUT" "$1" "$2" "$3")
			[ -n "$m" ] || return
			echo "${m%%|*}" | awk -v all="${m#*|}" '{ printf "%s|%s|%s\n", $5, $6, all }'
		}
		nlabel() {
			case "$1" in
			file) echo "backing file, fio O_DIRECT" ;;
			loop) echo "loop (C)" ;;
			worker) echo "loop_dio, worker only" ;;
			inline) echo "loop_dio, inline" ;;
			esac
		}
		echo
		echo "A $SIZE file on ext4 on NVMe (the guest's nvme driver has poll queues), direct I/O"
		echo "everywhere; fio io_uring ${RUNTIME} s per run, $ROUNDS rounds, the median run shown."
		echo
		echo "| path | hipri | workload | IOPS | ctxt/IO | / file | / C loop | runs (IOPS) |"
		echo "|---|---:|---|---:|---:|---:|---:|---|"
		for h in 0 1; do
			for j in $(seq "$NJOBS_N"); do
				f=$(nmed file "$h" "$j")
				l=$(nmed loop 0 "$j")
				for c in file loop worker inline; do
					m=$(nmed "$c" "$h" "$j")
					[ -n "$m" ] || { [ "$c" = loop ] && [ "$h" = 1 ] || echo "| $(nlabel "$c") | $h | $(job_name "$j") | failed | | | | |"; continue; }
					iops=${m%%|*}
					rest=${m#*|}
					echo "| $(nlabel "$c") | $h | $(job_name "$j") | $iops | ${rest%%|*} | $(ratio "$iops" "${f%%|*}") | $(ratio "$iops" "${l%%|*}") | ${rest#*|} |"
				done
			done
		done
		echo
		echo "Polled / unpolled (hipri 1 over hipri 0, medians):"
		echo
		echo "| workload | file | loop_dio worker only | loop_dio inline | inline gain / file gain |"
		echo "|---|---:|---:|---:|---:|"
		for j in $(seq "$NJOBS_N"); do
			g() { a=$(nmed "$1" 1 "$j"); b=$(nmed "$1" 0 "$j"); ratio "${a%%|*}" "${b%%|*}"; }
			gf=$(g file) gw=$(g worker) gi=$(g inline)
			echo "| $(job_name "$j") | $gf | $gw | $gi | $(ratio "${gi%x}" "${gf%x}") |"
		done
	else
		echo
		echo "(no NVMe file system: the NVMe rows are not measured)"
	fi
fi
exit $status
