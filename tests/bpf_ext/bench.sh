# bpf_ext benchmark (make bench): the price of watching loop_dio. fio 4k random reads at QD32
# (io_uring, O_DIRECT) on a loop device over a 256 MiB file on ext4 on vdb (backing dio on), in
# one boot, with:
#   loop (C)            the C driver, no event of ours
#   loop_dio, off       rust44's driver, its events off
#   perf stat           both loop_dio events counted by 'perf stat -a' around fio
#   perf record         both events recorded by 'perf record -a' (to tmpfs) around fio
#   BPF histogram       the tp_btf latency histogram of progs/events.bpf.c on loop_dio_complete,
#                       loaded and pinned by rust44-bpf (its other links unpinned: detached)
#   tracefs             both events on in tracefs' ring buffer (the same ring 'trace-cmd' uses)
# Each round runs every configuration once, in an order rotated from round to round, ROUNDS (7)
# times; a row is the median IOPS and every run's. Only one of the two drivers can own major 7:
# each run loads its driver, attaches, measures, detaches and unloads. The issue's question, is
# loop_dio with its events off as fast relative to C as before it had events, is answered by the
# ratio of the two within each round (they run next to each other): its median and spread.
# BENCH_CONFIGS (e.g. "c off") and ROUNDS change what runs (tools/vm.sh cmd).
cd /rust44/tests/bpf_ext || exit 1
. /rust44/bench.sh
LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
MKFS=/usr/sbin/mkfs.ext4
. ./perf.sh
T=/sys/kernel/tracing
RUNTIME=${BENCH_RUNTIME:-5}
ROUNDS=${ROUNDS:-7}
SIZE=256M
MNT=/mnt/vdb
FILE=$MNT/bench.img
PIN=/sys/fs/bpf/rust44/bench
OUT=/tmp/bpf-bench.runs
CONFIGS=${BENCH_CONFIGS:-c off perfstat perfrecord bpf tracefs}

label() {
	case "$1" in
	c) echo "loop (C)" ;;
	off) echo "loop_dio, events off" ;;
	perfstat) echo "loop_dio, perf stat" ;;
	perfrecord) echo "loop_dio, perf record" ;;
	bpf) echo "loop_dio, BPF histogram (tp_btf)" ;;
	tracefs) echo "loop_dio, tracefs ring buffer" ;;
	esac
}

load_module() {
	if [ -f "/rust44/extmod/$1.ko" ]; then insmod "/rust44/extmod/$1.ko"; else modprobe "$1"; fi
}

unload() {
	i=0
	until rmmod "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && return 1
		sleep 0.1
	done
}

FIO_ARGS="--name=bench --direct=1 --ioengine=io_uring --rw=randread --bs=4k --iodepth=32 \
--size=$SIZE --time_based --runtime=$RUNTIME --ramp_time=1 --randrepeat=0 --norandommap --minimal"

# measure CONFIG ROUND: one run; appends "config ok iops round extra" (or "config failed what
# round") to $OUT.
measure() {
	drv=loop_dio
	[ "$1" = c ] && drv=loop
	load_module $drv || { echo "$1 failed load $2" >>"$OUT"; return; }
	if [ "$1" = bpf ]; then
		./rust44-bpf pin progs/events.bpf.o "$PIN" >/dev/null || { echo "$1 failed pin $2" >>"$OUT"; }
		for l in "$PIN"/links/*; do
			[ "${l##*/}" = dio_complete ] || rm "$l"
		done
	fi
	if [ "$1" = tracefs ]; then
		echo 0 >"$T/tracing_on"
		echo 16384 >"$T/buffer_size_kb"
		echo >"$T/trace"
		echo 1 >"$T/events/loop_dio/enable"
		echo 1 >"$T/tracing_on"
	fi
	DEV=$($LOSETUP -f --show --direct-io=on "$FILE") || { echo "$1 failed losetup $2" >>"$OUT"; return; }
	sync
	echo 3 >/proc/sys/vm/drop_caches
	extra=-
	case "$1" in
	perfstat)
		# shellcheck disable=SC2086
		line=$($PERF stat -x, -o /tmp/perf-stat.out -a -e loop_dio:loop_dio_submit \
			-e loop_dio:loop_dio_complete -- $FIO $FIO_ARGS --filename="$DEV" </dev/null 2>/dev/null)
		extra="$(awk -F, '$3 == "loop_dio:loop_dio_complete" { print $1 }' /tmp/perf-stat.out)_events"
		;;
	perfrecord)
		# shellcheck disable=SC2086
		line=$($PERF record -q --no-buildid -o /tmp/perf.data -a -e loop_dio:loop_dio_submit \
			-e loop_dio:loop_dio_complete -- $FIO $FIO_ARGS --filename="$DEV" </dev/null 2>/dev/null)
		extra="$(($(wc -c </tmp/perf.data) / 1024))_KiB"
		rm -f /tmp/perf.data
		;;
	*)
		# shellcheck disable=SC2086
		line=$($FIO $FIO_ARGS --filename="$DEV" </dev/null 2>/dev/null)
		;;
	esac
	[ "$1" = bpf ] && extra="p50_$(./rust44-bpf hist "$PIN" | awk '/^p50 / { print $2 "-" $3 "ns" }')"
	if [ "$1" = tracefs ]; then
		echo 0 >"$T/events/loop_dio/enable"
		extra="$(awk '$1 == "overrun:" { s += $2 } END { print s + 0 }' "$T"/per_cpu/cpu*/stats)_overrun"
		echo >"$T/trace"
	fi
	$LOSETUP -d "$DEV"
	[ "$1" = bpf ] && ./rust44-bpf unpin "$PIN" >/dev/null
	unload $drv || echo "$1 failed rmmod $2" >>"$OUT"
	iops=$(echo "$line" | awk -F';' '{ printf "%.0f", $8 }')
	[ -n "$iops" ] && [ "$iops" -gt 0 ] || { echo "$1 failed fio $2" >>"$OUT"; return; }
	echo "$1 ok $iops $2 $extra" >>"$OUT"
}

# median CONFIG: "iops|all runs' iops|the median run's extra" (bench_median, /rust44/bench.sh).
median() {
	m=$(bench_median "$OUT" "$1")
	[ -n "$m" ] || return
	row=${m%%|*}
	echo "$(echo "$row" | awk '{ print $3 }')|${m#*|}|$(echo "$row" | awk '{ print $5 }' | tr _ ' ')"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.3fx", a / b; else print "n/a" }'; }

for m in blk_poll mm_mlock2; do
	load_module $m 2>/dev/null
done
for m in loop loop_dio; do
	rmmod $m 2>/dev/null
done
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
perf_mount || exit 1
mkdir -p "$MNT" /sys/fs/bpf/rust44
$MKFS -q -E nodiscard /dev/vdb && mount -t ext4 /dev/vdb "$MNT" || { echo "cannot set up ext4 on vdb"; exit 1; }
$FIO --name=fill --filename="$FILE" --rw=write --bs=1M --size=$SIZE --direct=1 --ioengine=psync \
	--minimal >/dev/null 2>&1 || { echo "cannot write $FILE"; exit 1; }
: >"$OUT"
n=$(echo $CONFIGS | wc -w)
for r in $(seq "$ROUNDS"); do
	# Rotate the order by one each round: every configuration runs at every position.
	k=$(((r - 1) % n))
	order="$(echo $CONFIGS | cut -d' ' -f$((k + 1))-) $( [ $k -gt 0 ] && echo $CONFIGS | cut -d' ' -f1-$k)"
	for c in $order; do
		measure "$c" "$r"
	done
done
umount "$MNT"

echo "fio: 4k random reads, QD32, io_uring, O_DIRECT on a loop device over a $SIZE file on ext4 on"
echo "virtio-blk (backing dio on); ${RUNTIME} s per run after a 1 s ramp, caches dropped before each."
echo "$ROUNDS rounds of every configuration, the order rotated each round; medians. \"vs off\" divides"
echo "by loop_dio with its events off (the price of watching), \"vs C\" by the C driver."
echo
echo "| configuration | IOPS (median) | vs off | vs C | median run | runs (IOPS) |"
echo "|---|---:|---:|---:|---|---|"
off=$(median off)
c=$(median c)
status=0
for cfg in $CONFIGS; do
	m=$(median "$cfg")
	if [ -z "$m" ]; then
		echo "| $(label "$cfg") | every run failed | | | | $(awk -v c="$cfg" '$1 == c { print $3, $4 }' "$OUT" | paste -sd, -) |"
		status=1
		continue
	fi
	iops=${m%%|*}
	rest=${m#*|}
	echo "| $(label "$cfg") | $iops | $(ratio "$iops" "${off%%|*}") | $(ratio "$iops" "${c%%|*}") | ${rest#*|} | ${rest%|*} |"
done
# Events off against C within each round where both ran: the issue's 1% question.
pairs=$(awk '$2 == "ok" && ($1 == "c" || $1 == "off") { v[$1, $4] = $3; r[$4] = 1 }
	END { for (k in r) if (v["c", k] > 0 && v["off", k] > 0) printf "%.4f\n", v["off", k] / v["c", k] }' "$OUT" | sort -n)
if [ -n "$pairs" ]; then
	n=$(echo "$pairs" | wc -l)
	echo
	echo "loop_dio with its events off / C, within each of the $n rounds: median $(echo "$pairs" | sed -n "$(((n + 1) / 2))p")," \
		"quartiles $(echo "$pairs" | sed -n "$(((n + 3) / 4))p")-$(echo "$pairs" | sed -n "$(((3 * n + 3) / 4))p")," \
		"range $(echo "$pairs" | head -n1)-$(echo "$pairs" | tail -n1) (all, sorted: $(echo "$pairs" | paste -sd" " -))."
fi
failed=$(grep -c ' failed' "$OUT")
[ "$failed" -gt 0 ] && { echo; echo "$failed runs failed:"; grep ' failed' "$OUT"; status=1; }
exit $status
