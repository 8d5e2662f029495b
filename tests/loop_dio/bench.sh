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

mkdir -p "$MNT"
$MKFS -q -E nodiscard /dev/vdb && mount -t ext4 /dev/vdb "$MNT" || { echo "cannot set up ext4 on vdb"; exit 1; }
# Written for real (not sparse): reads must reach the disk.
$FIO --name=fill --filename="$FILE" --rw=write --bs=1M --size=$SIZE --direct=1 --ioengine=psync \
	--minimal >/dev/null 2>&1 || { echo "cannot write $FILE"; exit 1; }
: >"$OUT"
status=0
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
median() {
	runs=$(awk -v d="$1" -v o="$2" -v j="$3" '$1 == d && $2 == o && $3 == j && $4 == "ok"' "$OUT")
	[ -n "$runs" ] || return
	n=$(echo "$runs" | wc -l)
	row=$(echo "$runs" | sort -n -k5,5 | sed -n "$(((n + 1) / 2))p")
	failed=$(awk -v d="$1" -v o="$2" -v j="$3" '$1 == d && $2 == o && $3 == j && $4 == "failed"' "$OUT" | wc -l)
	all=$(echo "$runs" | awk '{ print $5 }' | paste -sd, | sed 's/,/, /g')
	[ "$failed" -gt 0 ] && all="$all ($failed failed)"
	echo "$row|$all"
}

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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2fx", a / b; else print "n/a" }'; }
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
exit $status
