# The journal part of raid5_journal's benchmark (run by bench.sh): md raid5 with its write
# journal (mdadm --write-journal; write-back through md's journal_mode file) against rust44-raid5
# with its journal, both modes, on the same members and journal device, in one boot.
# Each round, per configuration (the order turns round each round): zeroed members and journal,
# a fresh array, its first SIZE_MB written once (not measured), then fio 1 MiB sequential write
# QD8, 4k random write QD32 and QD1 (IOPS; p50 and p99 completion latency at QD1).
# Prints Markdown tables on stdout.
cd /rust44/tests/raid5_journal || exit 1
DATA_MB=256
ALL_SLOTS="0 1 2 3 j"
. ./lib.sh
. /rust44/bench.sh
# 256 MiB slots leave no room on the NVMe namespace: the journal goes on vdb, after member 1.
JOURNAL_AT="/dev/vdb $STRIDE"
RUNTIME=${BENCH_RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
SIZE_MB=256
CONFS=${JOURNAL_CONFS:-md-wt rust44-wt md-wb rust44-wb}
OUT=/tmp/raid5-journal-bench.runs
JOBS="1M seqwrite QD8|--rw=write --bs=1M --iodepth=8
4k randwrite QD32|--rw=randwrite --bs=4k --iodepth=32
4k randwrite QD1|--rw=randwrite --bs=4k --iodepth=1"
NJOBS=$(echo "$JOBS" | wc -l)

conf_label() {
	case "$1" in
	md-wt) echo "md raid5 + write journal, write-through (C)" ;;
	md-wb) echo "md raid5 + write journal, write-back (C)" ;;
	rust44-wt) echo "rust44-raid5 + journal, writethrough" ;;
	rust44-wb) echo "rust44-raid5 + journal, writeback" ;;
	esac
}

# conf_create CONF: the array of the configuration, journal on slot j.
conf_create() {
	case "$1" in
	md-*)
		$MDADM --create /dev/md0 --run --quiet --metadata=1.2 --level=5 --layout=left-symmetric \
			--chunk=$((CHUNK / 2)) --raid-devices=$NDEVS --assume-clean \
			--write-journal "$(member j)" $(member 0) $(member 1) $(member 2) $(member 3) || return 1
		wait_for 10 test -e /sys/block/md0/md/journal_mode || return 1
		[ "$1" = md-wb ] && { echo write-back >/sys/block/md0/md/journal_mode || return 1; }
		DEV=/dev/md0
		;;
	rust44-wt) dm create r5 --table "$(rust44_table) journal $(member j) writethrough" && DEV=/dev/mapper/r5 ;;
	rust44-wb) dm create r5 --table "$(rust44_table) journal $(member j) writeback" && DEV=/dev/mapper/r5 ;;
	esac || return 1
	wait_for 10 test -b "$DEV"
}

# run CONF JOB: one fio run; appends "conf job ok iops mibs p50us p99us" to $OUT.
run() {
	local line
	# shellcheck disable=SC2046
	line=$($FIO --name=bench --filename="$DEV" --direct=1 --ioengine=libaio --size=${SIZE_MB}M \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --randrepeat=0 --norandommap \
		--minimal $(echo "$JOBS" | sed -n "${2}p" | cut -d'|' -f2) </dev/null 2>/dev/null)
	if [ $? -ne 0 ] || [ -z "$line" ]; then
		echo "$1 $2 failed" >>"$OUT"
		return
	fi
	# Terse v3: 48/49 write KiB/s and IOPS, 59-78 write completion latency percentiles (µs).
	echo "$line" | awk -F';' -v conf="$1" -v job="$2" '{
		p50 = "-"; p99 = "-"
		for (i = 59; i <= 78; i++) {
			split($i, kv, "=")
			if (kv[1] == "50.000000%") p50 = kv[2]
			if (kv[1] == "99.000000%") p99 = kv[2]
		}
		printf "%s %s ok %.0f %.1f %s %s\n", conf, job, $49, $48 / 1024, p50, p99
	}' >>"$OUT"
}

measure() {
	local j
	cleanup >/dev/null 2>&1
	zero_members j >/dev/null 2>&1
	if ! conf_create "$1" >/dev/null 2>&1; then
		echo "$1 - no-array" >>"$OUT"
		status=1
		cleanup >/dev/null 2>&1
		return
	fi
	$FIO --name=fill --filename="$DEV" --rw=write --bs=1M --size=${SIZE_MB}M --direct=1 \
		--ioengine=libaio --iodepth=8 --minimal >/dev/null 2>&1 || status=1
	for j in $(seq "$NJOBS"); do
		run "$1" "$j"
	done
	cleanup >/dev/null 2>&1
}

: >"$OUT"
status=0
modprobe raid456
[ -d /sys/module/raid5_journal ] || insmod "$RAID5_KO" 2>/dev/null
make_slices >/dev/null 2>&1 || { echo "cannot make the member slices"; exit 1; }
reversed=$(echo "$CONFS" | tr ' ' '\n' | sed -n '1!G;h;$p' | paste -sd' ')
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order=$CONFS; else order=$reversed; fi
	for conf in $order; do
		measure "$conf"
	done
done

# median CONF JOB: the run with the median IOPS | every run's IOPS.
median() { bench_median "$OUT" "$1" "$2"; }

echo "Journal: md raid5 (mdadm --write-journal; write-back: journal_mode) and rust44-raid5 ('journal"
echo "<dev> writethrough|writeback'), the journal on a ${DATA_MB} MiB slice of vdb (after member 1),"
echo "the members as above. fio libaio, O_DIRECT, ${RUNTIME} s per run after 1 s ramp over the first ${SIZE_MB} MiB"
echo "(written once before). $ROUNDS rounds, configurations alternating; a row is the median run."
echo
echo "| configuration | workload | IOPS | MiB/s | p50 µs | p99 µs | runs (IOPS) |"
echo "|---|---|---:|---:|---:|---:|---|"
for conf in $CONFS; do
	grep -q "^$conf - no-array" "$OUT" && echo "| $(conf_label "$conf") | - | creating the array failed in a round | | | | |"
	for j in $(seq "$NJOBS"); do
		m=$(median "$conf" "$j")
		name=$(echo "$JOBS" | sed -n "${j}p" | cut -d'|' -f1)
		[ -n "$m" ] || { echo "| $(conf_label "$conf") | $name | failed | | | | |"; continue; }
		# shellcheck disable=SC2086
		set -- ${m%%|*}
		echo "| $(conf_label "$conf") | $name | $4 | $5 | $6 | $7 | ${m#*|} |"
	done
done
echo
echo "rust44 / md in each mode (IOPS of the medians; above 1.00x is faster):"
echo
echo "| workload | writethrough | writeback |"
echo "|---|---:|---:|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2fx", a / b; else print "n/a" }'; }
iops() { m=$(median "$1" "$2"); [ -n "$m" ] && echo "${m%%|*}" | cut -d' ' -f4; }
for j in $(seq "$NJOBS"); do
	echo "| $(echo "$JOBS" | sed -n "${j}p" | cut -d'|' -f1) | $(ratio "$(iops rust44-wt "$j")" "$(iops md-wt "$j")") | $(ratio "$(iops rust44-wb "$j")" "$(iops md-wb "$j")") |"
done
exit $status
