# bpf_ext: rust44 observable and extensible from BPF. First the trace events of loop_dio, blk_poll
# and mm_mlock2 (tracefs events/<system>/, the same events perf and BPF attach to): they exist,
# are off by default and record nothing then, and fire with the right counts and fields around
# known I/O (counted in the trace buffer, with no event lost to overruns). Then bpf_ext's kfunc: a tc program on lo calls
# rust44_ratelimit() (bpfrl, built with libbpf from the tree) and the limiter drops exactly what
# its buckets refuse, counted in the module's stats; rmmod is refused while the program holds it;
# a socket filter that calls the kfunc is refused by the verifier for nobody (CAP_BPF), while the
# same filter without the call loads for nobody and the kfunc one works for root.
. /rust44/ktap.sh
cd /rust44/tests/bpf_ext || exit 1

T=/sys/kernel/tracing
DD=/usr/bin/dd
LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
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

ktap_begin
ktap_test modules_load modules_load
ktap_test events_exist_and_are_off events_exist_and_are_off
ktap_test loop_dio_events_off_record_nothing loop_dio_events_off_record_nothing
ktap_test loop_dio_submit_complete_counts loop_dio_submit_complete_counts
ktap_test blk_poll_poll_and_sleep_events blk_poll_poll_and_sleep_events
ktap_test lockedmem_events lockedmem_events
ktap_test bpf_ext_refuses_bad_parameters bpf_ext_refuses_bad_parameters
ktap_test bpf_ext_loads bpf_ext_loads
ktap_test kfunc_limits_udp_on_lo kfunc_limits_udp_on_lo
ktap_test rmmod_refused_while_a_program_calls_it rmmod_refused_while_a_program_calls_it
ktap_test kfunc_needs_cap_bpf kfunc_needs_cap_bpf
ktap_end
