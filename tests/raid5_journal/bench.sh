# raid5_journal benchmark (make bench): md raid5 through mdadm (no journal, no bitmap) and
# rust44-raid5 in one boot, on the same members: 4 dm-linear slices of 256 MiB (vda, vdb, NVMe,
# vda; a fifth on vdb is the spare), chunk 64 KiB, left-symmetric.
# Each round, for each implementation (which goes first alternating by round): zeroed members,
# a fresh array, 256 MiB of it written once (not measured), then fio (libaio, O_DIRECT on the
# array, RUNTIME s after 1 s ramp) 1 MiB sequential write and read at QD8, 4k random write and read
# at QD32 over those 256 MiB; member 1 is failed and 4k random reads run degraded; the spare
# replaces it and the time until the array is in sync again is the rebuild time of a 256 MiB
# member. ROUNDS (3) rounds; each row shows the run with the median and every run.
# Prints Markdown tables on stdout; rust44's rows say so when raid5_journal.ko is not built.
cd /rust44/tests/raid5_journal || exit 1
DATA_MB=256
ALL_SLOTS="0 1 2 3 4"
. ./lib.sh
. /rust44/bench.sh
IMPLS=${RAID5_IMPLS:-md rust44}
RUNTIME=${BENCH_RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
SIZE_MB=256
# One line per run: impl job-index state value mibs busy (value: IOPS, or seconds for the rebuild).
OUT=/tmp/raid5-bench.runs
# name|fio arguments (job 5 runs degraded; job 6 is the rebuild)
JOBS="1M seqwrite QD8|--rw=write --bs=1M --iodepth=8
1M seqread QD8|--rw=read --bs=1M --iodepth=8
4k randwrite QD32|--rw=randwrite --bs=4k --iodepth=32
4k randread QD32|--rw=randread --bs=4k --iodepth=32
4k randread QD32 degraded|--rw=randread --bs=4k --iodepth=32"
NJOBS=$(echo "$JOBS" | wc -l)
REBUILD=$((NJOBS + 1))

cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

job_name() {
	if [ "$1" = $REBUILD ]; then echo "rebuild a ${DATA_MB} MiB member (s)"; else echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f1; fi
}

job_args() {
	echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f2
}

uptime_cs() {
	awk '{ split($1, a, "."); print a[1] * 100 + a[2] }' /proc/uptime
}

# run IMPL JOB: one fio run on $DEV; appends a line to $OUT.
run() {
	local line r
	set -- "$1" "$2" $(cpu_jiffies)
	# shellcheck disable=SC2046
	line=$($FIO --name=bench --filename="$DEV" --direct=1 --ioengine=libaio --size=${SIZE_MB}M \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --randrepeat=0 --norandommap \
		--minimal $(job_args "$2") </dev/null 2>/dev/null)
	r=$?
	set -- "$1" "$2" "$3" "$4" $(cpu_jiffies)
	if [ $r -ne 0 ] || [ -z "$line" ]; then
		echo "$1 $2 failed" >>"$OUT"
		return
	fi
	# Terse v3: 7/8 read KiB/s and IOPS, 48/49 write.
	echo "$line" | awk -F';' -v impl="$1" -v job="$2" -v busy=$(($5 - $3)) -v total=$(($6 - $4)) '{
		printf "%s %s ok %.0f %.1f %.1f\n", impl, job, $8 + $49, ($7 + $48) / 1024,
			total ? 100 * busy / total : 0
	}' >>"$OUT"
}

# measure IMPL: one round on a fresh array of the implementation.
measure() {
	local j t0 t1
	cleanup >/dev/null 2>&1
	DEV=$(impl_dev "$1")
	if ! impl_create "$1" >/dev/null 2>&1 || ! wait_for 600 impl_in_sync "$1"; then
		echo "$1 - no-array" >>"$OUT"
		status=1
		cleanup >/dev/null 2>&1
		return
	fi
	$FIO --name=fill --filename="$DEV" --rw=write --bs=1M --size=${SIZE_MB}M --direct=1 \
		--ioengine=libaio --iodepth=8 --minimal >/dev/null 2>&1 || status=1
	for j in $(seq $((NJOBS - 1))); do
		run "$1" "$j"
	done
	if impl_fail "$1" 1 >/dev/null 2>&1; then
		run "$1" "$NJOBS"
		t0=$(uptime_cs)
		if impl_replace "$1" 1 $SPARE >/dev/null 2>&1 && wait_for 1800 impl_in_sync "$1"; then
			t1=$(uptime_cs)
			echo "$1 $REBUILD ok $(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 100 }') - -" >>"$OUT"
		else
			echo "$1 $REBUILD failed" >>"$OUT"
		fi
	else
		echo "$1 $NJOBS failed" >>"$OUT"
		echo "$1 $REBUILD failed" >>"$OUT"
	fi
	cleanup >/dev/null 2>&1
}

label() {
	impl_label "$1"
}

: >"$OUT"
status=0
modprobe dm_flakey
make_slices || { echo "cannot make the member slices"; exit 1; }
present=""
for impl in $IMPLS; do
	if [ "$impl" = rust44 ] && [ ! -e "$RAID5_KO" ]; then
		echo "$impl - missing" >>"$OUT"
	elif ! impl_load "$impl"; then
		echo "$impl - no-load" >>"$OUT"
		status=1
	else
		present="$present $impl"
	fi
done
reversed=$(echo "$present" | tr ' ' '\n' | sed '/^$/d' | sed -n '1!G;h;$p')
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order=$present; else order=$reversed; fi
	for impl in $order; do
		measure "$impl"
	done
done

# median IMPL JOB: the fields of the run with the median value (the lower middle one of an even
# count) | every run's value in the order run.
median() { bench_median "$OUT" "$1" "$2"; }

echo "Members: 4 dm-linear slices of ${DATA_MB} MiB (vda, vdb, NVMe, vda) and a spare on vdb; chunk 64 KiB,"
echo "left-symmetric; md: mdadm --assume-clean, metadata 1.2, no bitmap, no journal. fio: libaio,"
echo "O_DIRECT on the array, over its first ${SIZE_MB} MiB (written once before), ${RUNTIME} s per run after"
echo "1 s ramp. Each round builds a fresh array per implementation (which goes first alternates), runs"
echo "the rows in order, fails member 1 for the degraded row, then rebuilds onto the spare (seconds"
echo "until every member is in sync). $ROUNDS rounds; a row is the median run, \"runs\" lists every run."
echo "\"System CPU\" is all CPUs busy (of 2) during the run."
echo
echo "| implementation | workload | IOPS (rebuild: s) | MiB/s | system CPU % | runs |"
echo "|---|---|---:|---:|---:|---|"
for impl in $IMPLS; do
	if grep -q "^$impl - missing" "$OUT"; then
		echo "| $(label "$impl") | - | raid5_journal.ko not built: not measured | | | |"
		continue
	fi
	grep -q "^$impl - no-load" "$OUT" && { echo "| $(label "$impl") | - | the module did not load | | | |"; continue; }
	grep -q "^$impl - no-array" "$OUT" && echo "| $(label "$impl") | - | creating the array failed in a round | | | |"
	for j in $(seq $REBUILD); do
		m=$(median "$impl" "$j")
		if [ -z "$m" ]; then
			echo "| $(label "$impl") | $(job_name "$j") | failed | | | |"
			continue
		fi
		# shellcheck disable=SC2086
		set -- ${m%%|*}
		echo "| $(label "$impl") | $(job_name "$j") | $4 | $5 | $6 | ${m#*|} |"
	done
done

echo
echo "rust44 / md (rust44-raid5 divided by md raid5, medians; above 1.00x is more IOPS, or a longer"
echo "rebuild; \"range\" divides rust44's lowest and highest run by md's median):"
echo
echo "| workload | IOPS (rebuild: time) | range | MiB/s |"
echo "|---|---:|---|---:|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "" && a != "-") printf "%.2fx", a / b; else print "n/a" }'; }
for j in $(seq $REBUILD); do
	c=$(median md "$j")
	r=$(median rust44 "$j")
	if [ -z "$c" ] || [ -z "$r" ]; then
		echo "| $(job_name "$j") | n/a | n/a | n/a |"
		continue
	fi
	# shellcheck disable=SC2086
	set -- ${c%%|*}
	c_v=$4 c_bw=$5
	# shellcheck disable=SC2086
	set -- ${r%%|*}
	lo=$(echo "${r#*|}" | tr -d ' ' | tr ',' '\n' | sed 's/(.*//' | sort -n | head -n1)
	hi=$(echo "${r#*|}" | tr -d ' ' | tr ',' '\n' | sed 's/(.*//' | sort -n | tail -n1)
	echo "| $(job_name "$j") | $(ratio "$4" "$c_v") | $(ratio "$lo" "$c_v")–$(ratio "$hi" "$c_v") | $(ratio "$5" "$c_bw") |"
done
echo
sh ./journal-bench.sh || status=1
exit $status
