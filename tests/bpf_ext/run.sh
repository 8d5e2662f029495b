# bpf_ext: rust44 observable and extensible from BPF. First the trace events of loop_dio, blk_poll
# and mm_mlock2 (tracefs events/<system>/, the same events perf and BPF attach to): they exist,
# are off by default and record nothing then, and fire with the right counts and fields around
# known I/O (counted in the trace buffer, with no event lost to overruns). Then bpf_ext's kfunc: a tc program on lo calls
# rust44_ratelimit() (bpfrl, built with libbpf from the tree) and the limiter drops exactly what
# its buckets refuse, counted in the module's stats; rmmod is refused while the program holds it;
# a socket filter that calls the kfunc is refused by the verifier for nobody (CAP_BPF), while the
# same filter without the call loads for nobody and the kfunc one works for root.
# BPF programs on the events (tp_btf, raw_tp, tracepoint; progs/events.bpf.c) loaded and pinned
# under /sys/fs/bpf/rust44 by the Rust tool (tools/rust44-bpf), which exits: they go on counting
# exactly, a second process reads their maps, the pins hold the modules (rmmod refused), unpinning
# frees everything. perf (Debian's 6.1 perf, on an image of its own) lists and counts the events. A kfunc program pinned
# by one process is used by others. Last, the kernel.unprivileged_bpf_disabled 0/2/1 matrix for
# nobody (1 cannot be undone: it stays the last test of the boot, and the suite boots alone).
. /rust44/ktap.sh
cd /rust44/tests/bpf_ext || exit 1

T=/sys/kernel/tracing
DD=/usr/bin/dd
LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
. ./perf.sh
BPFTOOL=/usr/sbin/bpftool
PINS=/sys/fs/bpf/rust44
EV=$PINS/events
CFS=/sys/kernel/config/blk_poll
STATS=/sys/kernel/debug/bpf_ext/stats
# The limiter's parameters for the kfunc tests: 1 token per second, 10 saved up.
RATE=1
BURST=10

EVENTS="loop_dio/loop_dio_submit loop_dio/loop_dio_complete blk_poll/blk_poll_poll
blk_poll/blk_poll_hybrid_sleep lockedmem/lockedmem_create lockedmem/lockedmem_map
lockedmem/lockedmem_wipe"

# trace_on SYSTEM: an empty trace buffer, then SYSTEM's events on.
trace_on() {
	echo 0 >"$T/tracing_on"
	echo 16384 >"$T/buffer_size_kb"
	echo >"$T/trace"
	echo 1 >"$T/events/$1/enable" || return 1
	echo 1 >"$T/tracing_on"
}

trace_off() {
	echo 0 >"$T/events/$1/enable"
}

# count PATTERN: trace lines matching PATTERN (an extended regex).
count() {
	grep -cE "$1" "$T/trace"
}

# sum EVENT FIELD: FIELD summed over EVENT's lines in the trace.
sum() {
	awk -v e="$1:" -v f="$2" '{ for (i = 1; i <= NF; i++) { if ($i == e) hit = 1; split($i, kv, "="); if (hit && kv[1] == f) s += kv[2] } hit = 0 }
		END { printf "%d\n", s }' "$T/trace"
}

# No event lost: every CPU's ring kept all it was given.
no_overrun() {
	lost=$(awk '$1 == "overrun:" { s += $2 } END { print s + 0 }' "$T"/per_cpu/cpu*/stats)
	expect_eq "events lost to overruns" "$lost" 0
}

modules_load() {
	[ -d "$T/events" ] || { echo "no tracefs at $T"; return 1; }
	# The kfunc tests send over loopback.
	ip link set lo up || return 1
	for m in loop_dio blk_poll mm_mlock2; do
		load_checkout_module $m || { echo "cannot load $m"; return 1; }
	done
}

events_exist_and_are_off() {
	for e in $EVENTS; do
		[ -f "$T/events/$e/format" ] || { echo "no event $e"; return 1; }
		expect_eq "$e enable" "$(cat "$T/events/$e/enable")" 0 || return 1
	done
	grep -q 'field:u64 latency_ns;' "$T/events/loop_dio/loop_dio_complete/format" ||
		{ cat "$T/events/loop_dio/loop_dio_complete/format"; return 1; }
	grep -q 'field:bool direct;' "$T/events/loop_dio/loop_dio_submit/format" ||
		{ cat "$T/events/loop_dio/loop_dio_submit/format"; return 1; }
	# perf and BPF see the same events through available_events.
	for e in loop_dio:loop_dio_submit blk_poll:blk_poll_poll lockedmem:lockedmem_wipe; do
		grep -qx "$e" "$T/available_events" || { echo "$e not in available_events"; return 1; }
	done
}

# module_ko MODULE: the .ko that load_checkout_module loaded.
module_ko() {
	if [ -f "/rust44/extmod/$1.ko" ]; then
		echo "/rust44/extmod/$1.ko"
	else
		find /lib/modules -name "$1.ko" | head -n1
	fi
}

# Zero cost while off: every event's Rust call sites are static branches (CONFIG_JUMP_LABEL), a
# nop in the module's code that the kernel patches into a jump only while the event is on. Each is
# an entry of the module's jump table keyed by the event's tracepoint (__tracepoint_<event>) whose
# code is a nop in the .ko (objtool's work, what the kernel expects at load), and the loaded module
# has the table. (Without jump labels a call site reads the key's count and branches: no entry.)
events_are_static_branches() {
	bad=0
	for m in loop_dio blk_poll mm_mlock2; do
		ko=$(module_ko $m)
		./bpfrl jumps "$ko" >/tmp/jumps || { echo "$ko: no jump table"; bad=1; continue; }
		[ -e /sys/module/$m/sections/__jump_table ] || { echo "$m loaded without __jump_table"; bad=1; }
		for e in $EVENTS; do
			case "$m:${e%%/*}" in
			loop_dio:loop_dio | blk_poll:blk_poll | mm_mlock2:lockedmem) ;;
			*) continue ;;
			esac
			n=$(grep -c "^__tracepoint_${e#*/} " /tmp/jumps)
			nops=$(grep -c "^__tracepoint_${e#*/} nop$" /tmp/jumps)
			echo "$m: ${e#*/}: $n static branches, $nops nops"
			[ "$n" -ge 1 ] && [ "$nops" = "$n" ] || bad=1
		done
	done
	return $bad
}

LOOPDEV=
# A loop_dio device over vdb with direct I/O.
loop_setup() {
	LOOPDEV=$($LOSETUP -f --show --direct-io=on /dev/vdb) || { echo "losetup failed"; return 1; }
	expect_eq "dio" "$(cat /sys/block/${LOOPDEV#/dev/}/loop/dio)" 1
}

# With the events off (the default), I/O records nothing.
loop_dio_events_off_record_nothing() {
	loop_setup || return 1
	echo 0 >"$T/tracing_on"
	echo >"$T/trace"
	echo 1 >"$T/tracing_on"
	$DD if="$LOOPDEV" of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null || return 1
	expect_eq "loop_dio lines" "$(count 'loop_dio_')" 0
}

# 256 direct 4 KiB reads and 64 writes: one request each, submitted direct and completed
# without error, on this device, with a latency.
loop_dio_submit_complete_counts() {
	devnum=$(cat /sys/block/${LOOPDEV#/dev/}/dev)
	trace_on loop_dio || return 1
	$DD if="$LOOPDEV" of=/dev/null bs=4096 count=256 iflag=direct 2>/dev/null || return 1
	$DD if=/dev/zero of="$LOOPDEV" bs=4096 count=64 oflag=direct 2>/dev/null || return 1
	trace_off loop_dio
	bad=0
	expect_eq "read submits" "$(count "loop_dio_submit: dev=$devnum op=read sector=[0-9]+ bytes=4096 direct=1")" 256 || bad=1
	expect_eq "write submits" "$(count "loop_dio_submit: dev=$devnum op=write sector=[0-9]+ bytes=4096 direct=1")" 64 || bad=1
	expect_eq "read completions" "$(count "loop_dio_complete: dev=$devnum op=read sector=[0-9]+ bytes=4096 error=0 latency_ns=[1-9]")" 256 || bad=1
	expect_eq "write completions" "$(count "loop_dio_complete: dev=$devnum op=write sector=[0-9]+ bytes=4096 error=0 latency_ns=[1-9]")" 64 || bad=1
	expect_eq "all submits" "$(count 'loop_dio_submit:')" 320 || bad=1
	expect_eq "all completions" "$(count 'loop_dio_complete:')" 320 || bad=1
	# The reads cover sectors 0..2047 in order.
	expect_eq "last read sector" "$(grep 'loop_dio_submit:.*op=read' "$T/trace" | tail -n1 | sed 's/.*sector=\([0-9]*\).*/\1/')" 2040 || bad=1
	# Each request takes at least a microsecond, and none a second.
	lat=$(sum loop_dio_complete latency_ns)
	[ "$lat" -ge 320000 ] && [ "$lat" -lt 320000000000 ] || { echo "latency sum $lat ns"; bad=1; }
	no_overrun || bad=1
	[ $bad = 0 ] || head -n 20 "$T/trace"
	$LOSETUP -d "$LOOPDEV" || bad=1
	return $bad
}

# blk_poll_poll: one event per ->poll (the device's 'polls'), found summing to the polled
# requests; blk_poll_hybrid_sleep: one per sleep, slept_ns summing to the device's sleep_ns.
stat_sum() {
	awk -v f="$2" -v t="${3:-}" '
		/^queue=/ { ok = (t == "" || index($0, "type=" t " ")); for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f && ok) s += kv[2] } }
		END { print s + 0 }' "/sys/block/$1/blk_poll/stats"
}

blk_poll_poll_and_sleep_events() {
	mkdir "$CFS/bpt" || return 1
	echo 8 >"$CFS/bpt/size" && echo 200000 >"$CFS/bpt/completion_nsec" &&
		echo hybrid >"$CFS/bpt/poll_mode" && echo 1 >"$CFS/bpt/power" || return 1
	i=0
	while [ ! -b /dev/bpt ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && { echo "/dev/bpt did not appear"; return 1; }
		sleep 0.1
	done
	trace_on blk_poll || return 1
	$FIO --name=p --filename=/dev/bpt --direct=1 --ioengine=io_uring --hipri=1 --rw=randread \
		--bs=4k --iodepth=1 --size=1m --output=/tmp/fio-bpt.out
	rc=$?
	cat /sys/block/bpt/blk_poll/stats
	trace_off blk_poll
	polls=$(count 'blk_poll_poll:')
	found=$(sum blk_poll_poll found)
	sleeps=$(count "blk_poll_hybrid_sleep: dev=$(cat /sys/block/bpt/dev) hctx=")
	slept=$(sum blk_poll_hybrid_sleep slept_ns)
	# For the BPF programs' count (bpf_counted_the_events_exactly).
	TRACED_POLLS=$polls
	bad=0
	no_overrun || bad=1
	[ $rc = 0 ] || { cat /tmp/fio-bpt.out; bad=1; }
	expect_eq "found" "$found" "$(stat_sum bpt requests poll)" || bad=1
	expect_eq "found" "$found" 256 || bad=1
	expect_eq "poll events" "$polls" "$(stat_sum bpt polls poll)" || bad=1
	expect_eq "sleep events" "$sleeps" "$(stat_sum bpt sleeps poll)" || bad=1
	expect_eq "slept_ns" "$slept" "$(stat_sum bpt sleep_ns poll)" || bad=1
	[ "$sleeps" -gt 0 ] || { echo "no hybrid sleep"; bad=1; }
	echo 0 >"$CFS/bpt/power" && rmdir "$CFS/bpt" || bad=1
	return $bad
}

# One region: sized (a second size refused), 4 pages mapped, 2 touched, closed: wiped.
lockedmem_events() {
	page=$(getconf PAGESIZE 2>/dev/null || echo 4096)
	trace_on lockedmem || return 1
	./lockedmem_events || return 1
	trace_off lockedmem
	bad=0
	size=$((4 * page))
	expect_eq "create" "$(count "lockedmem_create: size=$size error=0\$")" 1 || bad=1
	expect_eq "refused create" "$(count "lockedmem_create: size=$size error=-16\$")" 1 || bad=1
	expect_eq "map" "$(count "lockedmem_map: size=$size pages=4 error=0\$")" 1 || bad=1
	expect_eq "wipe" "$(count "lockedmem_wipe: size=$size pages=2 error=0\$")" 1 || bad=1
	expect_eq "events" "$(count 'lockedmem_')" 4 || bad=1
	[ $bad = 0 ] || cat "$T/trace"
	return $bad
}

# --- BPF programs on the events, pinned ---

# bslot SLOT: the pinned 'counts' map's SLOT, read by a process of its own.
bslot() {
	./rust44-bpf counts "$EV" | sed -n "s/^$1 //p"
}

# cslot SLOT: SLOT from the last 'counts' saved in /tmp/counts (a process per slot costs seconds
# on the debug kernel).
cslot() {
	sed -n "s/^$1 //p" /tmp/counts
}

# The loader pins maps, programs and links and exits; bpftool (another program, another process)
# finds them by their pins.
bpf_programs_pinned_on_events() {
	if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
		mount -t bpf bpf /sys/fs/bpf || return 1
	fi
	mkdir -p "$PINS" || return 1
	./rust44-bpf pin progs/events.bpf.o "$EV" || return 1
	bad=0
	expect_eq "maps" "$(ls "$EV/maps" | tr '\n' ' ')" "counts lat_hist " || bad=1
	expect_eq "progs" "$(ls "$EV/progs" | tr '\n' ' ')" \
		"dio_complete dio_complete_raw dio_complete_tp dio_submit lockedmem_create poll_raw " || bad=1
	expect_eq "links" "$(ls "$EV/links" | tr '\n' ' ')" "$(ls "$EV/progs" | tr '\n' ' ')" || bad=1
	out=$($BPFTOOL prog show pinned "$EV/progs/dio_complete")
	echo "$out"
	echo "$out" | grep -q 'tracing  name dio_complete ' || bad=1
	out=$($BPFTOOL prog show pinned "$EV/progs/dio_complete_raw")
	echo "$out" | grep -q 'raw_tracepoint  name dio_complete_raw ' || { echo "$out"; bad=1; }
	out=$($BPFTOOL prog show pinned "$EV/progs/dio_complete_tp")
	echo "$out" | grep -q 'tracepoint  name dio_complete_tp ' || { echo "$out"; bad=1; }
	out=$($BPFTOOL map show pinned "$EV/maps/counts")
	echo "$out"
	echo "$out" | grep -q 'array  name counts  flags 0x0' || bad=1
	echo "$out" | grep -q 'key 4B  value 8B  max_entries 14' || bad=1
	out=$($BPFTOOL link show pinned "$EV/links/dio_submit" | tr -d '\n')
	echo "$out"
	echo "$out" | grep -q "raw_tracepoint  prog [0-9]*.*tp 'loop_dio_submit'" || bad=1
	expect_eq "completes" "$(bslot completes)" 0 || bad=1
	return $bad
}

# The I/O of the loop_dio tests before (64 reads with tracefs off, 256 reads and 64 writes), the
# blk_poll test's polls, lockedmem's two creates: every program counted each event once.
LOOP_IOS=$((64 + 256 + 64))
bpf_counted_the_events_exactly() {
	./rust44-bpf counts "$EV" >/tmp/counts || return 1
	cat /tmp/counts
	bad=0
	for s in submits completes raw_completes tp_completes; do
		expect_eq "$s" "$(cslot $s)" $LOOP_IOS || bad=1
	done
	expect_eq "submit_bytes" "$(cslot submit_bytes)" $((LOOP_IOS * 4096)) || bad=1
	expect_eq "complete_bytes" "$(cslot complete_bytes)" $((LOOP_IOS * 4096)) || bad=1
	expect_eq "complete_errors" "$(cslot complete_errors)" 0 || bad=1
	lat=$(cslot latency_ns)
	[ "$lat" -ge $((LOOP_IOS * 1000)) ] || { echo "latency sum $lat"; bad=1; }
	# The three ways of attaching saw the same arguments.
	expect_eq "raw_tp latency" "$(cslot raw_latency_ns)" "$lat" || bad=1
	expect_eq "tracepoint latency" "$(cslot tp_latency_ns)" "$lat" || bad=1
	expect_eq "polls" "$(cslot polls)" "${TRACED_POLLS:-none}" || bad=1
	expect_eq "poll_found" "$(cslot poll_found)" 256 || bad=1
	expect_eq "lockedmem creates" "$(cslot lockedmem_creates)" 1 || bad=1
	expect_eq "lockedmem refused" "$(cslot lockedmem_refused)" 1 || bad=1
	expect_eq "histogram total" "$(./rust44-bpf hist "$EV" | sed -n 's/^total //p')" $LOOP_IOS || bad=1
	return $bad
}

# fio_p50_ns FILE: the read completion latency median fio reported, in ns.
fio_p50_ns() {
	awk '/clat percentiles/ { u = $0; sub(/.*\(/, "", u); sub(/\).*/, "", u); on = 1 }
		on && /50\.00th=/ { v = $0; sub(/.*50\.00th=\[ */, "", v); sub(/\].*/, "", v)
			m = (u == "nsec") ? 1 : (u == "usec") ? 1000 : 1000000; print v * m; exit }' "$1"
}

# 512 random 4 KiB reads at QD1: the histogram holds exactly fio's I/Os, and its median bucket
# is fio's median or just below it (fio's latency includes the syscall around the block layer's).
bpf_histogram_agrees_with_fio() {
	LOOPDEV=$($LOSETUP -f --show --direct-io=on /dev/vdb) || return 1
	./rust44-bpf reset "$EV" || return 1
	$FIO --name=h --filename="$LOOPDEV" --direct=1 --ioengine=psync --rw=randread --bs=4k \
		--size=256m --io_size=2m --randrepeat=1 --output=/tmp/fio-h.out || { cat /tmp/fio-h.out; return 1; }
	$LOSETUP -d "$LOOPDEV"
	./rust44-bpf hist "$EV" >/tmp/hist || return 1
	cat /tmp/hist
	grep -E 'clat percentiles|50.00th|issued' /tmp/fio-h.out
	bad=0
	expect_eq "histogram total" "$(sed -n 's/^total //p' /tmp/hist)" 512 || bad=1
	expect_eq "completes" "$(bslot completes)" 512 || bad=1
	fio50=$(fio_p50_ns /tmp/fio-h.out)
	set -- $(sed -n 's/^p50 //p' /tmp/hist)
	echo "fio p50 $fio50 ns, BPF p50 in [$1, $2) ns"
	# fio's percentiles are themselves bucketed (a few %): from 5% below the bucket to two buckets
	# above it (fio's latency adds the syscall and the wake-up).
	[ -n "$fio50" ] && [ $(($1 * 95 / 100)) -le "$fio50" ] && [ "$fio50" -lt $(($2 * 4)) ] || bad=1
	return $bad
}

# perf sees the same events: listed, and counted exactly around known I/O.
perf_counts_rust44_events() {
	perf_mount || return 1
	bad=0
	list=$($PERF list tracepoint 2>&1)
	for e in $EVENTS; do
		echo "$list" | grep -q "${e%%/*}:${e#*/} " || { echo "perf list lacks ${e%%/*}:${e#*/}"; bad=1; }
	done
	LOOPDEV=$($LOSETUP -f --show --direct-io=on /dev/vdb) || return 1
	$PERF stat -x, -e loop_dio:loop_dio_submit -e loop_dio:loop_dio_complete -a -o /tmp/perf-stat.out -- \
		$DD if="$LOOPDEV" of=/dev/null bs=4096 count=100 iflag=direct 2>/dev/null || bad=1
	cat /tmp/perf-stat.out
	expect_eq "perf stat submits" "$(awk -F, '$3 == "loop_dio:loop_dio_submit" { print $1 }' /tmp/perf-stat.out)" 100 || bad=1
	expect_eq "perf stat completes" "$(awk -F, '$3 == "loop_dio:loop_dio_complete" { print $1 }' /tmp/perf-stat.out)" 100 || bad=1
	$PERF record -q --no-buildid -e loop_dio:loop_dio_complete -a -o /tmp/perf.data -- \
		$FIO --name=r --filename="$LOOPDEV" --direct=1 --ioengine=psync --rw=randread --bs=4k \
		--size=256m --io_size=1m --output=/tmp/fio-r.out >/dev/null 2>&1 || { cat /tmp/fio-r.out; bad=1; }
	$PERF script -i /tmp/perf.data >/tmp/perf.script 2>/dev/null || bad=1
	head -n 2 /tmp/perf.script
	expect_eq "perf record samples" "$(grep -c 'loop_dio:loop_dio_complete: .* op=read sector=[0-9]* bytes=4096 error=0 latency_ns=[1-9]' /tmp/perf.script)" 256 || bad=1
	$LOSETUP -d "$LOOPDEV" || bad=1
	return $bad
}

# bpftrace_mount: Debian bookworm's bpftrace (tools/guest-image.sh bpftrace, vm.conf attaches it)
# at $BT, with the pseudo file systems it reads mounted inside for the chroot.
BT=/mnt/bpftrace
bpftrace_mount() {
	[ -x $BT/usr/bin/bpftrace ] && grep -q " $BT/sys/kernel/tracing " /proc/mounts && return 0
	dev=
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = rust44bpftrace ] && dev=/dev/${b##*/}
	done
	[ -n "$dev" ] || { echo "no bpftrace image attached (make deps makes it: tools/guest-image.sh bpftrace)"; return 1; }
	mkdir -p $BT
	mount -t ext4 -o ro "$dev" $BT && mount -o bind /dev $BT/dev && mount -t proc proc $BT/proc &&
		mount -t sysfs sysfs $BT/sys && mount -t tracefs tracefs $BT/sys/kernel/tracing &&
		mount -t debugfs debugfs $BT/sys/kernel/debug && mount -t tmpfs tmpfs $BT/tmp
}

# bpftrace (0.17, Debian bookworm's, LLVM 14) lists the rust44 events with their fields, and a
# script on loop_dio's two events counts exactly around known I/O. It cannot read an event's
# fields here: any script naming args-> (on any tracepoint, the kernel's own too) makes 0.17
# segfault at start-up after "Error while reading traceable functions from
# /sys/kernel/tracing/available_filter_functions" (the config has no function tracer), so the
# script counts the events without a device filter: nothing else uses loop_dio meanwhile.
bpftrace_counts_rust44_events() {
	bpftrace_mount || return 1
	bad=0
	list=$(chroot $BT /usr/bin/bpftrace -l 'tracepoint:*' 2>&1)
	for e in $EVENTS; do
		echo "$list" | grep -qx "tracepoint:${e%%/*}:${e#*/}" || { echo "bpftrace -l lacks ${e%%/*}:${e#*/}"; bad=1; }
	done
	fields=$(chroot $BT /usr/bin/bpftrace -lv tracepoint:loop_dio:loop_dio_complete 2>&1)
	echo "$fields" | tr -s ' \n' ' '
	echo
	for f in "u32 dev" "u64 sector" "s32 error" "u64 latency_ns"; do
		echo "$fields" | grep -qx "    $f" || { echo "bpftrace -lv lacks '$f'"; bad=1; }
	done
	LOOPDEV=$($LOSETUP -f --show --direct-io=on /dev/vdb) || return 1
	rm -f /tmp/bt.out
	# BEGIN fires once every probe is attached.
	chroot $BT /usr/bin/bpftrace -e 'BEGIN { printf("ready\n"); }
		tracepoint:loop_dio:loop_dio_submit { @submits = count(); }
		tracepoint:loop_dio:loop_dio_complete { @completes = count(); }' >/tmp/bt.out 2>&1 &
	bt=$!
	i=0
	while ! grep -q '^ready' /tmp/bt.out; do
		i=$((i + 1))
		if [ $i -gt 1200 ] || ! kill -0 $bt 2>/dev/null; then
			cat /tmp/bt.out
			kill $bt 2>/dev/null
			$LOSETUP -d "$LOOPDEV"
			return 1
		fi
		sleep 0.1
	done
	echo "bpftrace ready after $((i / 10)) s"
	$DD if="$LOOPDEV" of=/dev/null bs=4096 count=100 iflag=direct 2>/dev/null || bad=1
	$DD if=/dev/zero of="$LOOPDEV" bs=4096 count=28 oflag=direct 2>/dev/null || bad=1
	kill -INT $bt
	i=0
	while kill -0 $bt 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "bpftrace still running 30 s after SIGINT"; kill -9 $bt; bad=1; break; }
		sleep 0.1
	done
	wait $bt
	cat /tmp/bt.out
	expect_eq "submits" "$(sed -n 's/^@submits: //p' /tmp/bt.out)" 128 || bad=1
	expect_eq "completes" "$(sed -n 's/^@completes: //p' /tmp/bt.out)" 128 || bad=1
	$LOSETUP -d "$LOOPDEV" || bad=1
	return $bad
}

# rmmod_retry MODULE: rmmod, retried for 5 s (programs are freed after an RCU grace period).
rmmod_retry() {
	i=0
	until rmmod "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && { echo "rmmod $1 still refused"; return 1; }
		sleep 0.1
	done
}

# An attached program holds the module whose event it is attached to, as for any module's
# tracepoint: while the links are pinned rmmod is refused (delete_module's EWOULDBLOCK). A pinned
# tracing program without its link does not: the modules go with the programs still pinned, and
# the pinned maps keep their values; unpinning frees the rest.
rmmod_refused_while_programs_pinned() {
	$LOSETUP -D
	bad=0
	for m in loop_dio blk_poll mm_mlock2; do
		out=$(rmmod $m 2>&1) && { echo "rmmod $m succeeded under a pinned program"; bad=1; continue; }
		echo "$out"
		case "$out" in *"Resource temporarily unavailable"*) ;; *) bad=1 ;; esac
		[ "$(cat /sys/module/$m/refcnt)" -gt 0 ] || bad=1
	done
	[ $bad = 0 ] || return 1
	before=$(bslot completes)
	rm "$EV"/links/* || return 1
	for m in loop_dio blk_poll mm_mlock2; do
		rmmod_retry $m || bad=1
	done
	$BPFTOOL prog show pinned "$EV/progs/dio_complete" | grep -q 'tracing  name dio_complete ' ||
		{ echo "the pinned program went with its module"; bad=1; }
	expect_eq "completes kept in the pinned map" "$(bslot completes)" "$before" || bad=1
	./rust44-bpf unpin "$EV" || bad=1
	[ ! -e "$EV" ] || { echo "$EV still there"; bad=1; }
	$BPFTOOL map show | grep -E 'name (counts|lat_hist) ' && { echo "maps left after unpinning"; bad=1; }
	$BPFTOOL prog show | grep -E 'name (dio_|poll_raw|lockedmem_cr)' && { echo "programs left"; bad=1; }
	# And the modules load again.
	for m in loop_dio blk_poll mm_mlock2; do
		load_checkout_module $m || bad=1
	done
	return $bad
}

# --- bpf_ext: the kfunc ---

load_bpf_ext() {
	if [ -f /rust44/extmod/bpf_ext.ko ]; then
		insmod /rust44/extmod/bpf_ext.ko "$@"
	else
		modprobe bpf_ext "$@"
	fi
}

bpf_ext_refuses_bad_parameters() {
	if load_bpf_ext rate=0 2>/dev/null; then
		rmmod bpf_ext
		echo "rate=0 loaded"
		return 1
	fi
	dmesg | grep -q 'bpf_ext: rate must be' || { echo "no message for rate=0"; return 1; }
	if load_bpf_ext burst=0 2>/dev/null; then
		rmmod bpf_ext
		echo "burst=0 loaded"
		return 1
	fi
	dmesg | grep -q 'bpf_ext: burst must be' || { echo "no message for burst=0"; return 1; }
}

bpf_ext_loads() {
	load_bpf_ext rate=$RATE burst=$BURST || return 1
	# The kfunc's BTF: without it the verifier could not call it.
	[ -f /sys/kernel/btf/bpf_ext ] || { echo "no BTF for bpf_ext"; return 1; }
	expect_file_eq "$STATS" "rate: $RATE
burst: $BURST
calls: 0
admitted: 0
dropped: 0
keys: 0
evicted: 0"
}

bstat() {
	sed -n "s/^$1: //p" "$STATS"
}

# received_ok GOT ELAPSED_MS: a fresh bucket passes BURST at once and RATE per second after.
received_ok() {
	max=$((BURST + RATE * ($2 / 1000 + 1)))
	[ "$1" -ge "$BURST" ] && [ "$1" -le "$max" ] || { echo "received $1, want $BURST..$max"; return 1; }
}

ATTACH_PID=
kfunc_limits_udp_on_lo() {
	rm -f /tmp/attach.out
	./bpfrl attach progs/ratelimit.bpf.o lo >/tmp/attach.out 2>&1 &
	ATTACH_PID=$!
	i=0
	while ! grep -q '^attached' /tmp/attach.out 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat /tmp/attach.out; return 1; }
		sleep 0.1
	done
	bad=0
	t0=$(ktap_uptime_ms)
	a=$(./bpfrl udp 40001 100) || return 1
	b=$(./bpfrl udp 40002 30) || return 1
	ms=$(($(ktap_uptime_ms) - t0))
	# Not a limited port: every datagram arrives.
	c=$(./bpfrl udp 39999 50) || return 1
	echo "$a / $b / $c in $ms ms"
	ra=${a##* }
	rb=${b##* }
	received_ok "$ra" $ms || bad=1
	received_ok "$rb" $ms || bad=1
	expect_eq "unlimited port" "$c" "sent 50 received 50" || bad=1
	cat "$STATS"
	expect_eq calls "$(bstat calls)" 130 || bad=1
	expect_eq admitted "$(bstat admitted)" $((ra + rb)) || bad=1
	expect_eq dropped "$(bstat dropped)" $((130 - ra - rb)) || bad=1
	expect_eq keys "$(bstat keys)" 2 || bad=1
	return $bad
}

IP2=./ip2
NETNS=rl44
# veth_setup: veth44a here (10.44.0.1) and its peer veth44b (10.44.0.2 and .3) in netns rl44.
veth_setup() {
	$IP2 netns add $NETNS || return 1
	$IP2 link add veth44a type veth peer name veth44b netns $NETNS || return 1
	$IP2 addr add 10.44.0.1/24 dev veth44a || return 1
	$IP2 link set veth44a up || return 1
	$IP2 -n $NETNS addr add 10.44.0.2/24 dev veth44b || return 1
	$IP2 -n $NETNS addr add 10.44.0.3/24 dev veth44b || return 1
	$IP2 -n $NETNS link set veth44b up
}

veth_teardown() {
	$IP2 link del veth44a 2>/dev/null
	$IP2 netns del $NETNS 2>/dev/null
}

# veth_udp PORT COUNT SRC: COUNT datagrams from SRC in the netns over the veth pair to
# 10.44.0.1:PORT here.
veth_udp() {
	./bpfrl udp "$1" "$2" 10.44.0.1 "$3" /run/netns/$NETNS
}

# The same tc program at the ingress of a veth link whose peer is in another network namespace:
# per (source address, port) buckets, so the two sources each pass their burst; every datagram
# reached the link, and what the limiter refused went no further.
kfunc_limits_udp_on_veth() {
	veth_setup || { veth_teardown; return 1; }
	rm -f /tmp/attach-veth.out
	./bpfrl attach progs/ratelimit.bpf.o veth44a >/tmp/attach-veth.out 2>&1 &
	veth_pid=$!
	i=0
	while ! grep -q '^attached' /tmp/attach-veth.out 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat /tmp/attach-veth.out; kill $veth_pid; veth_teardown; return 1; }
		sleep 0.1
	done
	bad=0
	calls=$(bstat calls) admitted=$(bstat admitted) dropped=$(bstat dropped) keys=$(bstat keys)
	rx0=$(cat /sys/class/net/veth44a/statistics/rx_packets)
	# Not a limited port (and the neighbours resolve): every datagram arrives.
	c=$(veth_udp 39999 50 10.44.0.2) || bad=1
	t0=$(ktap_uptime_ms)
	a=$(veth_udp 40001 30 10.44.0.2) || bad=1
	b=$(veth_udp 40001 30 10.44.0.3) || bad=1
	ms=$(($(ktap_uptime_ms) - t0))
	rx=$(($(cat /sys/class/net/veth44a/statistics/rx_packets) - rx0))
	echo "$c / $a / $b in $ms ms; veth44a received $rx packets"
	ra=${a##* }
	rb=${b##* }
	expect_eq "unlimited port" "$c" "sent 50 received 50" || bad=1
	received_ok "$ra" $ms || bad=1
	received_ok "$rb" $ms || bad=1
	cat "$STATS"
	expect_eq calls "$(($(bstat calls) - calls))" 60 || bad=1
	expect_eq admitted "$(($(bstat admitted) - admitted))" $((ra + rb)) || bad=1
	expect_eq dropped "$(($(bstat dropped) - dropped))" $((60 - ra - rb)) || bad=1
	expect_eq "new keys" "$(($(bstat keys) - keys))" 2 || bad=1
	[ "$rx" -ge 110 ] || { echo "veth44a received $rx of 110 datagrams"; bad=1; }
	kill $veth_pid
	wait $veth_pid 2>/dev/null
	veth_teardown
	return $bad
}

# The attached program calls the kfunc, so it holds the module.
rmmod_refused_while_a_program_calls_it() {
	[ -n "$ATTACH_PID" ] || { echo "no program attached"; return 1; }
	if rmmod bpf_ext 2>/dev/null; then
		echo "rmmod succeeded under an attached program"
		return 1
	fi
	[ -f "$STATS" ] || { echo "the module went away"; return 1; }
	kill "$ATTACH_PID"
	wait "$ATTACH_PID" 2>/dev/null
	ATTACH_PID=
	# The program is freed after an RCU grace period: then the module goes.
	i=0
	until rmmod bpf_ext 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && { echo "rmmod still refused 5 s after the program went"; return 1; }
		sleep 0.1
	done
	[ ! -e /sys/module/bpf_ext ] || { echo "still loaded"; return 1; }
}

# The verifier's rule: kfunc calls need CAP_BPF. A socket filter loads for nobody (with
# kernel.unprivileged_bpf_disabled 0), the same one calling the kfunc does not; root's works.
kfunc_needs_cap_bpf() {
	load_bpf_ext rate=$RATE burst=$BURST || return 1
	sysctl=/proc/sys/kernel/unprivileged_bpf_disabled
	was=$(cat $sysctl)
	[ "$was" = 1 ] && { echo "unprivileged_bpf_disabled is 1 (cannot go back to 0)"; return 4; }
	echo 0 >$sysctl || return 1
	bad=0
	out=$(./bpfrl sockfilter progs/sockfilter_plain.bpf.o 41000 5 nobody 2>&1)
	expect_eq "plain filter as nobody" "$(echo "$out" | tail -n1)" "loaded received 5" || { echo "$out"; bad=1; }
	out=$(./bpfrl sockfilter progs/sockfilter_kfunc.bpf.o 41001 5 nobody 2>&1)
	rc=$?
	expect_eq "kfunc filter as nobody" "$rc $(echo "$out" | tail -n1)" "3 rejected errno 1" || bad=1
	echo "$out" | grep -q 'allowed for CAP_BPF and CAP_SYS_ADMIN' || { echo "$out"; bad=1; }
	expect_eq "calls after the refusal" "$(bstat calls)" 0 || bad=1
	t0=$(ktap_uptime_ms)
	out=$(./bpfrl sockfilter progs/sockfilter_kfunc.bpf.o 41002 30 2>&1)
	ms=$(($(ktap_uptime_ms) - t0))
	echo "$out"
	case "$out" in
	*"loaded received "*) received_ok "${out##* }" $ms || bad=1 ;;
	*) bad=1 ;;
	esac
	expect_eq "calls" "$(bstat calls)" 30 || bad=1
	echo "$was" >$sysctl
	i=0
	until rmmod bpf_ext 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && { echo "rmmod refused after the filter went"; return 1; }
		sleep 0.1
	done
	return $bad
}

# A socket filter calling the kfunc, pinned by one process, attached to their sockets by two
# others: the limiter's one bucket serves them all; the pin holds bpf_ext until unpinned.
kfunc_program_pinned_and_reused() {
	load_bpf_ext rate=$RATE burst=$BURST || return 1
	./rust44-bpf pin progs/sockfilter_kfunc.bpf.o "$PINS/limiter" || return 1
	bad=0
	t0=$(ktap_uptime_ms)
	a=$(./rust44-bpf sockfilter "$PINS/limiter/progs/sf_kfunc" 41010 30) || bad=1
	b=$(./rust44-bpf sockfilter "$PINS/limiter/progs/sf_kfunc" 41011 30) || bad=1
	ms=$(($(ktap_uptime_ms) - t0))
	echo "$a / $b in $ms ms"
	received_ok $((${a##* } + ${b##* })) $ms || bad=1
	expect_eq "calls" "$(bstat calls)" 60 || bad=1
	expect_eq "admitted" "$(bstat admitted)" $((${a##* } + ${b##* })) || bad=1
	out=$(rmmod bpf_ext 2>&1) && { echo "rmmod succeeded under a pinned program"; return 1; }
	echo "$out"
	./rust44-bpf unpin "$PINS/limiter" || bad=1
	rmmod_retry bpf_ext || bad=1
	return $bad
}

# Keyed by socket cookie: the same pinned program on two sockets gives each its own bucket (each
# passes its burst), where the fixed-key filter above shared one between them.
kfunc_keyed_by_socket_cookie() {
	load_bpf_ext rate=$RATE burst=$BURST || return 1
	./rust44-bpf pin progs/sockfilter_cookie.bpf.o "$PINS/cookie" >/dev/null || return 1
	bad=0
	t0=$(ktap_uptime_ms)
	a=$(./rust44-bpf sockfilter "$PINS/cookie/progs/sf_cookie" 41020 30) || bad=1
	b=$(./rust44-bpf sockfilter "$PINS/cookie/progs/sf_cookie" 41021 30) || bad=1
	ms=$(($(ktap_uptime_ms) - t0))
	echo "$a / $b in $ms ms"
	received_ok "${a##* }" $ms || bad=1
	received_ok "${b##* }" $ms || bad=1
	expect_eq "calls" "$(bstat calls)" 60 || bad=1
	expect_eq "keys" "$(bstat keys)" 2 || bad=1
	./rust44-bpf unpin "$PINS/cookie" >/dev/null || bad=1
	rmmod_retry bpf_ext || bad=1
	return $bad
}

# --- kernel.unprivileged_bpf_disabled, for nobody ---

SYSCTL=/proc/sys/kernel/unprivileged_bpf_disabled
SHARED=$PINS/shared/progs/sf_kfunc

# matrix_setup: bpf_ext loaded, root's kfunc socket filter pinned at $SHARED.
matrix_setup() {
	[ -e "$SHARED" ] && return 0
	load_bpf_ext rate=$RATE burst=$BURST || return 1
	./rust44-bpf pin progs/sockfilter_kfunc.bpf.o "$PINS/shared" >/dev/null
}

# matrix WANT_PLAIN WANT_MAP PORT: what nobody can do at the current setting. A socket filter
# (SOCKET_FILTER is the type unprivileged users may load): loaded and filtering or EPERM; the
# same filter calling the kfunc: EPERM always (the verifier's CAP_BPF rule at 0); an array map;
# a tp_btf program on loop_dio's event: EPERM (root's loads); perf counting an event with the kernel included:
# EACCES (perf_event_paranoid 2); root's pin of the kfunc filter: EACCES while it is 0600,
# usable once root opens it up (0666): the program then runs on nobody's socket and calls the
# kfunc. The sysctl gates loading and map creation, not the use of what root pinned.
matrix() {
	want_plain=$1 want_map=$2 port=$3
	echo "unprivileged_bpf_disabled=$(cat $SYSCTL)"
	bad=0
	expect_eq "plain filter" "$(./bpfrl sockfilter progs/sockfilter_plain.bpf.o $port 5 nobody 2>/dev/null | tail -n1)" "$want_plain" || bad=1
	out=$(./bpfrl sockfilter progs/sockfilter_kfunc.bpf.o $((port + 1)) 5 nobody 2>&1)
	expect_eq "kfunc filter" "$(echo "$out" | tail -n1)" "rejected errno 1" || bad=1
	expect_eq "map create" "$(./bpfrl nobody mapcreate)" "$want_map" || bad=1
	expect_eq "tp_btf as root" "$(./bpfrl root tpbtf loop_dio:loop_dio_complete)" "ok" || bad=1
	expect_eq "tp_btf" "$(./bpfrl nobody tpbtf loop_dio:loop_dio_complete)" "errno 1" || bad=1
	expect_eq "perf on loop_dio_complete" "$(./bpfrl nobody perf loop_dio:loop_dio_complete)" "errno 13" || bad=1
	chmod 0600 "$SHARED"
	expect_eq "pin at 0600" "$(./bpfrl nobody objget "$SHARED")" "errno 13" || bad=1
	chmod 0666 "$SHARED"
	expect_eq "pin at 0666" "$(./bpfrl nobody objget "$SHARED")" "ok" || bad=1
	calls=$(bstat calls)
	out=$(su -s /bin/sh nobody -c "./rust44-bpf sockfilter $SHARED $((port + 2)) 5" 2>&1)
	echo "nobody on root's pinned filter: $out"
	case "$out" in "received "[0-9]*) ;; *) bad=1 ;; esac
	expect_eq "kfunc calls from nobody's socket" "$(bstat calls)" $((calls + 5)) || bad=1
	chmod 0600 "$SHARED"
	return $bad
}

unprivileged_bpf_disabled_0() {
	matrix_setup || return 1
	echo 0 >$SYSCTL || return 1
	matrix "loaded received 5" ok 42000
}

# 2: root may go back to 0 (and to 2 again).
unprivileged_bpf_disabled_2() {
	matrix_setup || return 1
	echo 2 >$SYSCTL || return 1
	matrix "rejected errno 1" "errno 1" 42010 || return 1
	echo 0 >$SYSCTL || { echo "2 -> 0 refused"; return 1; }
	expect_eq "after 2 -> 0" "$(cat $SYSCTL)" 0 || return 1
	echo 2 >$SYSCTL
}

# 1: for good. Root cannot leave it (EPERM for 0 and 2); it must stay the boot's last test.
unprivileged_bpf_disabled_1() {
	matrix_setup || return 1
	echo 1 >$SYSCTL || return 1
	bad=0
	matrix "rejected errno 1" "errno 1" 42020 || bad=1
	for v in 0 2; do
		out=$(sh -c "echo $v >$SYSCTL" 2>&1) && { echo "1 -> $v accepted"; bad=1; }
		echo "1 -> $v: $out"
		case "$out" in *"Operation not permitted"*) ;; *) bad=1 ;; esac
	done
	expect_eq "still" "$(cat $SYSCTL)" 1 || bad=1
	./rust44-bpf unpin "$PINS/shared" >/dev/null || bad=1
	rmmod_retry bpf_ext || bad=1
	return $bad
}

ktap_begin
ktap_test modules_load modules_load
ktap_test events_exist_and_are_off events_exist_and_are_off
ktap_test events_are_static_branches events_are_static_branches
ktap_test bpf_programs_pinned_on_events bpf_programs_pinned_on_events
ktap_test loop_dio_events_off_record_nothing loop_dio_events_off_record_nothing
ktap_test loop_dio_submit_complete_counts loop_dio_submit_complete_counts
ktap_test blk_poll_poll_and_sleep_events blk_poll_poll_and_sleep_events
ktap_test lockedmem_events lockedmem_events
ktap_test bpf_counted_the_events_exactly bpf_counted_the_events_exactly
ktap_test bpf_histogram_agrees_with_fio bpf_histogram_agrees_with_fio
ktap_test perf_counts_rust44_events perf_counts_rust44_events
ktap_test bpftrace_counts_rust44_events bpftrace_counts_rust44_events
ktap_test rmmod_refused_while_programs_pinned rmmod_refused_while_programs_pinned
ktap_test bpf_ext_refuses_bad_parameters bpf_ext_refuses_bad_parameters
ktap_test bpf_ext_loads bpf_ext_loads
ktap_test kfunc_limits_udp_on_lo kfunc_limits_udp_on_lo
ktap_test kfunc_limits_udp_on_veth kfunc_limits_udp_on_veth
ktap_test rmmod_refused_while_a_program_calls_it rmmod_refused_while_a_program_calls_it
ktap_test kfunc_needs_cap_bpf kfunc_needs_cap_bpf
ktap_test kfunc_program_pinned_and_reused kfunc_program_pinned_and_reused
ktap_test kfunc_keyed_by_socket_cookie kfunc_keyed_by_socket_cookie
ktap_test unprivileged_bpf_disabled_0 unprivileged_bpf_disabled_0
ktap_test unprivileged_bpf_disabled_2 unprivileged_bpf_disabled_2
ktap_test unprivileged_bpf_disabled_1 unprivileged_bpf_disabled_1
ktap_end
