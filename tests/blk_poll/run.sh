# blk_poll: a memory-backed Rust block device with poll queues, made in configfs. io_uring IOPOLL
# reads and writes on it (iopoll.c), io_poll, the error without poll queues against C null_blk,
# every attribute's checks, the completion modes, stats, power-off and rmmod under I/O.
. /rust44/ktap.sh
. /rust44/leaks.sh
cd /rust44/tests/blk_poll || exit 1

CFS=/sys/kernel/config/blk_poll
FIO=/usr/bin/fio

# mkdev NAME [ATTR=VALUE...]: makes and powers on a device.
mkdev() {
	dev=$1
	shift
	mkdir "$CFS/$dev" || return 1
	for kv in "$@"; do
		echo "${kv#*=}" >"$CFS/$dev/${kv%%=*}" || { echo "cannot set $kv"; return 1; }
	done
	echo 1 >"$CFS/$dev/power" || return 1
	i=0
	while [ ! -b "/dev/$dev" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && { echo "/dev/$dev did not appear"; return 1; }
		sleep 0.1
	done
}

rmdev() {
	echo 0 >"$CFS/$1/power" && rmdir "$CFS/$1"
}

# stat_sum DEV FIELD [TYPE]: the sum of FIELD over the device's queues (of TYPE).
stat_sum() {
	awk -v f="$2" -v t="${3:-}" '
		/^queue=/ { ok = (t == "" || index($0, "type=" t " ")); for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f && ok) s += kv[2] } }
		END { print s + 0 }' "/sys/block/$1/blk_poll/stats"
}

module_loads() {
	load_checkout_module blk_poll || return 1
	[ -d "$CFS" ] || { echo "no $CFS"; return 1; }
	expect_file_eq "$CFS/features" "size,blocksize,submit_queues,poll_queues,hw_queue_depth,completion_nsec,irqmode,poll_mode,power,stats"
}

defaults_and_io_poll() {
	mkdev bp0 size=64 || return 1
	mkdev bp1 size=16 poll_queues=0 || return 1
	expect_file_eq /sys/block/bp0/queue/io_poll 1 || return 1
	expect_file_eq /sys/block/bp1/queue/io_poll 0 || return 1
	expect_eq "bp0 size" "$(cat /sys/block/bp0/size)" $((64 * 2048)) || return 1
	# Two poll queues and two submit queues: still polled, and the stats list all four.
	mkdev bp2 size=8 poll_queues=2 submit_queues=2 || return 1
	expect_file_eq /sys/block/bp2/queue/io_poll 1 || return 1
	expect_eq "bp2 queues" "$(grep -c '^queue=' /sys/block/bp2/blk_poll/stats)" 4 || return 1
	expect_eq "bp2 poll queues" "$(grep -c 'type=poll' /sys/block/bp2/blk_poll/stats)" 2 || return 1
	rmdev bp2
}

# Each attribute: bad values fail and change nothing; good values stick; a powered-on device
# refuses every change with EBUSY.
attributes_reject_bad_values() {
	mkdir "$CFS/cfg" || return 1
	bad=0
	check() { # ATTR GOOD BAD...
		attr=$1 good=$2
		shift 2
		before=$(cat "$CFS/cfg/$attr")
		for v in "$@"; do
			if echo "$v" >"$CFS/cfg/$attr" 2>/dev/null; then
				echo "$attr accepted '$v'"
				bad=1
			fi
			[ "$(cat "$CFS/cfg/$attr")" = "$before" ] || { echo "$attr changed after '$v'"; bad=1; }
		done
		echo "$good" >"$CFS/cfg/$attr" || { echo "$attr refused '$good'"; bad=1; }
		[ "$(cat "$CFS/cfg/$attr")" = "$good" ] || { echo "$attr does not read back '$good'"; bad=1; }
	}
	check size 32 0 -1 abc 65537 1.5 "" 0x10
	check blocksize 4096 0 256 1000 3072 8192 x
	check submit_queues 2 0 65 -1 two
	check poll_queues 0 65 -1 x
	check hw_queue_depth 32 0 4097 x
	check completion_nsec 20000 -1 1000000001 1e3 x
	check irqmode 2 3 -1 x 10
	check poll_mode hybrid spin Classic 1 ""
	check power 0 2 on -1
	# The error is EINVAL, which the shell cannot show: write(2) from dd does.
	err=$(echo 7 | dd of="$CFS/cfg/irqmode" 2>&1)
	case "$err" in *"Invalid argument"*) ;; *) echo "irqmode 7: $err"; bad=1 ;; esac
	echo 1 >"$CFS/cfg/power" || { echo "power on failed"; return 1; }
	expect_file_eq "$CFS/cfg/power" 1 || bad=1
	for attr in size blocksize submit_queues poll_queues hw_queue_depth completion_nsec irqmode poll_mode; do
		v=$(cat "$CFS/cfg/$attr")
		err=$(echo "$v" | dd of="$CFS/cfg/$attr" 2>&1)
		case "$err" in *"busy"*) ;; *) echo "$attr on a powered device: $err"; bad=1 ;; esac
	done
	expect_eq "blocksize in sysfs" "$(cat /sys/block/cfg/queue/logical_block_size)" 4096 || bad=1
	# rmdir of a powered-on device deletes it.
	rmdir "$CFS/cfg" || bad=1
	[ ! -e /sys/block/cfg ] || { echo "cfg still there"; bad=1; }
	return $bad
}

iopoll_kselftest() {
	modprobe null_blk nr_devices=1 poll_queues=0 queue_mode=2 irqmode=0 || return 1
	BP_DEV=/dev/bp0 BP_NOPOLL_DEV=/dev/bp1 NULLB_NOPOLL_DEV=/dev/nullb0 ./iopoll
	rc=$?
	rmmod null_blk
	return $rc
}

stats_move() {
	polls=$(stat_sum bp0 polls poll)
	reqs=$(stat_sum bp0 requests poll)
	sreqs=$(stat_sum bp0 requests default)
	$FIO --name=s --filename=/dev/bp0 --direct=1 --ioengine=io_uring --hipri=1 --rw=randread \
		--bs=4k --size=4m --io_size=2m --output=/dev/null || return 1
	dd if=/dev/bp0 of=/dev/null bs=4k count=64 iflag=direct 2>/dev/null || return 1
	cat /sys/block/bp0/blk_poll/stats
	[ "$(stat_sum bp0 polls poll)" -gt "$polls" ] || { echo "polls did not move"; return 1; }
	[ "$(stat_sum bp0 requests poll)" -ge $((reqs + 512)) ] || { echo "poll requests did not move"; return 1; }
	[ "$(stat_sum bp0 requests default)" -ge $((sreqs + 64)) ] || { echo "default requests did not move"; return 1; }
	[ "$(stat_sum bp0 inflight)" = 0 ] || { echo "requests left in flight"; return 1; }
	[ "$(stat_sum bp0 requests)" = "$(stat_sum bp0 completed)" ] || { echo "requests != completed"; return 1; }
	[ "$(cat /sys/kernel/config/blk_poll/bp0/stats | grep -c '^queue=')" = 2 ] || { echo "configfs stats"; return 1; }
}

# Data survives in each completion mode; fio verifies what it wrote.
verify_mode() { # HIPRI NAME ATTR=VALUE...
	hipri=$1 vdev=$2
	shift 2
	mkdev "$vdev" size=16 "$@" || return 1
	$FIO --name=v --filename="/dev/$vdev" --direct=1 --ioengine=io_uring --hipri="$hipri" \
		--rw=randwrite --bs=4k --iodepth=8 --size=16m --io_size=4m --verify=crc32c \
		--verify_fatal=1 --output=/tmp/fio.out
	rc=$?
	[ $rc = 0 ] || cat /tmp/fio.out
	# And with 512-byte blocks not aligned to the 4 KiB storage units.
	dd if=/dev/urandom of=/tmp/pat bs=512 count=24 2>/dev/null
	dd if=/tmp/pat of="/dev/$vdev" bs=512 seek=3 count=24 oflag=direct 2>/dev/null || rc=1
	dd if="/dev/$vdev" of=/tmp/back bs=512 skip=3 count=24 iflag=direct 2>/dev/null || rc=1
	cmp /tmp/pat /tmp/back || rc=1
	rmdev "$vdev" || rc=1
	return $rc
}

timer_mode_counts_time() {
	mkdev bpt size=8 irqmode=2 completion_nsec=2000000 poll_queues=0 || return 1
	start=$(awk '{ print int($1 * 1000) }' /proc/uptime)
	dd if=/dev/bpt of=/dev/null bs=4k count=50 iflag=direct 2>/dev/null || return 1
	end=$(awk '{ print int($1 * 1000) }' /proc/uptime)
	rmdev bpt || return 1
	# 50 reads of 2 ms each take at least 100 ms.
	if [ $((end - start)) -lt 100 ]; then
		echo "50 timer completions of 2 ms took $((end - start)) ms"
		return 1
	fi
}

# json_num FILE KEY: the first number fio's JSON output gives for "KEY".
json_num() {
	awk -v k="\"$2\"" '$1 == k && $2 == ":" { gsub(/[^0-9.]/, "", $3); print $3; exit }' "$1"
}

# polled_randread DEV OUT: 4k random reads at QD1 through io_uring IOPOLL for 4 s, fio's JSON
# in OUT. Percentiles of the whole latency, submission included (the hybrid sleep is in it).
polled_randread() {
	$FIO --name=r --filename="/dev/$1" --direct=1 --ioengine=io_uring --hipri=1 --rw=randread \
		--bs=4k --iodepth=1 --size=8m --time_based --runtime=4 --clat_percentiles=0 \
		--lat_percentiles=1 --output-format=json --output="$2"
}

# Hybrid polling sleeps at submission (queue_rq of a BLOCKING tag set) for part of the mean
# completion time, really (sleep_ns is measured around the sleep), while IOPOLL data verifies and
# no request completes before completion_nsec; the mean does not run away with the oversleep.
# Then, beside classic polling of the same latency (which never sleeps), at a latency where
# sleeping pays: most polled requests sleep, at most once, for about half the completion time.
# 10 ms, not 2: under TCG with the host busy a timer
# wake-up is often a millisecond late, and at 2 ms that oversleep takes the whole sleep (hybrid
# then rightly spins: seen with another guest running beside this one).
hybrid_sleeps() {
	mkdev bphv size=8 completion_nsec=200000 poll_mode=hybrid || return 1
	$FIO --name=h --filename=/dev/bphv --direct=1 --ioengine=io_uring --hipri=1 --rw=randwrite \
		--bs=4k --iodepth=1 --size=8m --io_size=2m --verify=crc32c --verify_fatal=1 \
		--output=/tmp/fio-h.out
	rc=$?
	[ $rc = 0 ] || cat /tmp/fio-h.out
	cat /sys/block/bphv/blk_poll/stats
	vreqs=$(stat_sum bphv requests poll)
	vsleeps=$(stat_sum bphv sleeps poll)
	vsleep_ns=$(stat_sum bphv sleep_ns poll)
	vmean=$(stat_sum bphv mean_ns poll)
	inflight=$(stat_sum bphv inflight)
	rmdev bphv || return 1
	[ $rc = 0 ] || { echo "IOPOLL verify failed on the hybrid device"; return 1; }
	[ "$vreqs" -ge 1024 ] || { echo "only $vreqs polled requests"; return 1; }
	[ "$vsleeps" -gt 0 ] || { echo "hybrid polling never slept in $vreqs requests"; return 1; }
	# Each sleep is at least MIN_SLEEP_NSEC (5 us).
	[ "$vsleep_ns" -ge $((vsleeps * 5000)) ] || { echo "$vsleeps sleeps took only $vsleep_ns ns"; return 1; }
	[ "$vmean" -ge 200000 ] || { echo "mean completion $vmean ns < completion_nsec"; return 1; }
	[ "$vmean" -lt 400000 ] || { echo "mean completion $vmean ns ran away from 200000"; return 1; }
	[ "$inflight" = 0 ] || { echo "requests left in flight"; return 1; }

	lat=10000000
	mkdev bph size=8 completion_nsec=$lat poll_mode=hybrid || return 1
	mkdev bpcl size=8 completion_nsec=$lat || return 1
	rc=0
	polled_randread bpcl /tmp/fio-cl.json || rc=1
	polled_randread bph /tmp/fio-hy.json || rc=1
	cat /sys/block/bph/blk_poll/stats
	n=$(stat_sum bph requests poll)
	s=$(stat_sum bph sleeps poll)
	sleep_ns=$(stat_sum bph sleep_ns poll)
	mean=$(stat_sum bph mean_ns poll)
	inflight=$(($(stat_sum bph inflight) + $(stat_sum bpcl inflight)))
	csleeps=$(stat_sum bpcl sleeps)
	rmdev bph || return 1
	rmdev bpcl || return 1
	[ $rc = 0 ] || { echo "fio failed"; cat /tmp/fio-cl.json /tmp/fio-hy.json; return 1; }
	avg=$((sleep_ns / (s > 0 ? s : 1)))
	c_cpu=$(awk -v u="$(json_num /tmp/fio-cl.json usr_cpu)" -v s="$(json_num /tmp/fio-cl.json sys_cpu)" 'BEGIN { printf "%d", u + s }')
	h_cpu=$(awk -v u="$(json_num /tmp/fio-hy.json usr_cpu)" -v s="$(json_num /tmp/fio-hy.json sys_cpu)" 'BEGIN { printf "%d", u + s }')
	c_iops=$(json_num /tmp/fio-cl.json iops | cut -d. -f1)
	h_iops=$(json_num /tmp/fio-hy.json iops | cut -d. -f1)
	c_p50=$(json_num /tmp/fio-cl.json 50.000000)
	h_p50=$(json_num /tmp/fio-hy.json 50.000000)
	echo "hybrid at $lat ns: $s sleeps in $n polled reads, mean sleep $avg ns; fio CPU ${h_cpu}% (classic ${c_cpu}%); IOPS $h_iops (classic $c_iops), median latency $h_p50 ns (classic $c_p50)"
	# Every check below is made (and reported) even when one fails.
	bad=0
	[ "$inflight" = 0 ] || { echo "requests left in flight"; bad=1; }
	[ "$csleeps" = 0 ] || { echo "classic polling slept $csleeps times"; bad=1; }
	[ "$mean" = $lat ] || { echo "mean completion $mean ns, not $lat"; bad=1; }
	# Enough samples for the shares below (265 in 4 s on the debug kernel under TCG, 400 at most).
	[ "$n" -ge 100 ] || { echo "only $n polled reads in 4 s at $lat ns"; bad=1; }
	[ "$s" -le "$n" ] || { echo "$s sleeps for $n requests: more than one each"; bad=1; }
	# Most requests sleep: all but the first (no mean yet) on a quiet host; a run of late timer
	# wake-ups lets the oversleep estimate take the whole sleep for a while (seen: 92% on the
	# debug kernel under TCG), so the share is the benchmark's to report, not this test's.
	[ $((s * 2)) -ge "$n" ] || { echo "only $s of $n polled reads slept"; bad=1; }
	# About half the completion time: the sleep asked for is half the mean less the mean
	# oversleep, so the measured one is near half the mean.
	[ "$avg" -ge $((lat * 35 / 100)) ] && [ "$avg" -le $((lat * 65 / 100)) ] ||
		{ echo "mean sleep $avg ns is not near half of $lat"; bad=1; }
	# CPU time and latency against classic polling are speed goals: make bench (table b) reports
	# them. Here they are only printed (CI saw the hybrid median 12% over classic's on the debug
	# kernel, with timer wake-ups 2 ms late).
	return $bad
}

classic_honours_latency() {
	mkdev bpc size=8 completion_nsec=200000 || return 1
	$FIO --name=c --filename=/dev/bpc --direct=1 --ioengine=io_uring --hipri=1 --rw=randread \
		--bs=4k --size=8m --io_size=1m --output=/dev/null || return 1
	mean=$(stat_sum bpc mean_ns poll)
	empty=$(stat_sum bpc empty_polls poll)
	sleeps=$(stat_sum bpc sleeps poll)
	rmdev bpc || return 1
	[ "$mean" -ge 200000 ] || { echo "mean completion $mean ns < completion_nsec"; return 1; }
	[ "$empty" -gt 0 ] || { echo "no poll came too early"; return 1; }
	[ "$sleeps" = 0 ] || { echo "classic polling slept"; return 1; }
}

# fio_errors FILE: the errno of each "err=" that fio's summary reports, one a line.
fio_errors() {
	grep -ho 'err= *[0-9]*' "$@" | tr -dc '0-9\n'
}

# bpx_fail MESSAGE...: says what was wrong, stops any fio left and removes bpx; returns 1.
bpx_fail() {
	echo "$*"
	kill -9 $p1 $p2 2>/dev/null
	wait
	echo 0 >"$CFS/bpx/power" 2>/dev/null
	rmdir "$CFS/bpx"
	return 1
}

# Power off while fio runs polled and interrupt-driven I/O: no oops; both fio jobs end on their
# own soon after (they were given 60 s) with an error, and every error is one a disk that goes
# away gives, as with C null_blk: EIO (requests in flight at del_gendisk, or submitted after it
# marked the disk dead), ENOSPC (a write at or past the end: del_gendisk set the capacity to 0;
# reads there return 0 bytes) or ENXIO (fio reopens its file after each pass, and the disk is
# gone). fio gets a node of its own: with /dev/bpx it would, reopening after the power-off, make
# a regular file there and fail with EOPNOTSUPP (seen). The device then powers on again, empty
# and working.
power_off_under_io() {
	for mode in "poll_mode=classic" "poll_mode=hybrid irqmode=2 completion_nsec=50000"; do
		# shellcheck disable=SC2086
		mkdev bpx size=32 $mode || return 1
		rm -f /tmp/bpx
		mknod /tmp/bpx b $(tr ':' ' ' </sys/block/bpx/dev) || { bpx_fail "mknod failed"; return 1; }
		$FIO --name=p --filename=/tmp/bpx --size=32M --direct=1 --ioengine=io_uring --hipri=1 \
			--rw=randrw --bs=4k --iodepth=8 --time_based --runtime=60 --output=/tmp/fio-p.out \
			2>/tmp/fio-p.err &
		p1=$!
		$FIO --name=i --filename=/tmp/bpx --size=32M --direct=1 --ioengine=io_uring --rw=randrw \
			--bs=4k --iodepth=8 --time_based --runtime=60 --output=/tmp/fio-i.out \
			2>/tmp/fio-i.err &
		p2=$!
		# Both jobs must be doing I/O when the power goes: wait (fio starts slowly on the debug
		# kernel) until the polled job has completed requests on the poll queue and the plain
		# job on the default queue, then let them run a little. Waiting for any I/O at all let
		# the power go while one job was still setting up, and that job then saw no I/O error.
		i=0
		while { [ "$(stat_sum bpx completed poll)" -eq 0 ] || [ "$(stat_sum bpx completed default)" -eq 0 ]; } &&
			[ $i -lt 600 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		[ "$(stat_sum bpx completed poll)" -gt 0 ] || { bpx_fail "no polled I/O ran in 60 s"; return 1; }
		[ "$(stat_sum bpx completed default)" -gt 0 ] || { bpx_fail "no plain I/O ran in 60 s"; return 1; }
		sleep 1
		kill -0 $p1 && kill -0 $p2 || { bpx_fail "fio ended before the power-off"; return 1; }
		echo 0 >"$CFS/bpx/power" || { bpx_fail "power off failed"; return 1; }
		[ ! -e /sys/block/bpx ] || { bpx_fail "disk still there"; return 1; }
		[ "$(cat "$CFS/bpx/power")" = 0 ] || { bpx_fail "power reads 1 after power-off"; return 1; }
		# Both end within 20 s (the debug kernel is slow), far before their 60 s.
		i=0
		while { kill -0 $p1 || kill -0 $p2; } 2>/dev/null && [ $i -lt 200 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		if kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; then
			bpx_fail "fio still running 20 s after power-off ($mode)"
			return 1
		fi
		wait $p1
		rc1=$?
		wait $p2
		rc2=$?
		errs=$(fio_errors /tmp/fio-p.out /tmp/fio-i.out | sort | uniq -c | tr -s ' \n' ' ')
		echo "fio after power-off ($mode): exit $rc1 and $rc2, errors (count errno): $errs"
		cat /tmp/fio-p.err /tmp/fio-i.err | sed 's/offset=.*//' | sort | uniq -c | head -n 5
		for job in p i; do
			e=$(fio_errors /tmp/fio-$job.out)
			[ -n "$e" ] || { cat /tmp/fio-$job.out; bpx_fail "fio $job: no error after power-off"; return 1; }
			for n in $e; do
				case $n in
				5 | 6 | 28) ;;
				*) cat /tmp/fio-$job.out; bpx_fail "fio $job: error $n, not EIO, ENXIO or ENOSPC"; return 1 ;;
				esac
			done
		done
		[ $rc1 != 0 ] && [ $rc2 != 0 ] || { bpx_fail "fio exited 0 after its device powered off"; return 1; }
		# A power-off under I/O leaves a device that powers on again: empty (the data goes
		# with the power), working.
		echo 1 >"$CFS/bpx/power" || { bpx_fail "power on after power-off under I/O failed"; return 1; }
		i=0
		while [ ! -b /dev/bpx ] && [ $i -lt 50 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		[ -b /dev/bpx ] || { bpx_fail "/dev/bpx did not come back"; return 1; }
		dd if=/dev/bpx of=/tmp/z bs=4k count=256 iflag=direct 2>/dev/null || { bpx_fail "read failed"; return 1; }
		[ "$(tr -d '\0' </tmp/z | wc -c)" = 0 ] || { bpx_fail "the device powered on again is not empty"; return 1; }
		dd if=/dev/urandom of=/tmp/pat bs=4k count=16 2>/dev/null
		dd if=/tmp/pat of=/dev/bpx bs=4k seek=100 oflag=direct 2>/dev/null || { bpx_fail "write failed"; return 1; }
		dd if=/dev/bpx of=/tmp/back bs=4k skip=100 count=16 iflag=direct 2>/dev/null || { bpx_fail "read back failed"; return 1; }
		cmp /tmp/pat /tmp/back || { bpx_fail "data read back differs"; return 1; }
		rmdev bpx || return 1
	done
}

NL='
'
FAILSLAB=/sys/kernel/debug/failslab

# power_on_failing_at N: powers device bpf on with the Nth fault-injection point failing. Run in
# a process of its own (fail-nth is per task and not inherited): out=$(power_on_failing_at N).
# Prints any error message, then "= STATUS LEFT", LEFT being what fail-nth has left (0: the fault
# was injected).
power_on_failing_at() {
	exec 7>/proc/self/fail-nth 8</proc/self/fail-nth 2>&1
	echo "$1" >&7
	echo 1 >"$CFS/bpf/power"
	rc=$?
	read -r -u 8 left
	echo "= $rc $left"
}

# Power-on with each allocation in turn failing (the kernel's fail-nth, with failslab counting
# sleeping allocations too): every refused power-on leaves the device off and nothing behind,
# and kmemleak finds nothing new after the sweep, a power cycle with I/O and an rmdir of a
# powered device, but the known C blk-mq leak (leak_report). Before the fix the timer's Arc kept
# the first queue alive when creating a later one failed. Needs the debug kernel (fault
# injection, kmemleak).
creation_failures_free_everything() {
	if [ ! -w /proc/self/fail-nth ] || [ ! -d "$FAILSLAB" ] || [ ! -w "$KMEMLEAK" ]; then
		echo "needs fail-nth, failslab and kmemleak (the debug kernel)"
		return 4
	fi
	wait_gfp=$(cat "$FAILSLAB/ignore-gfp-wait") verbose=$(cat "$FAILSLAB/verbose")
	creation_sweep
	rc=$?
	echo "$wait_gfp" >"$FAILSLAB/ignore-gfp-wait"
	echo "$verbose" >"$FAILSLAB/verbose"
	if [ -d "$CFS/bpf" ]; then
		echo 0 >"$CFS/bpf/power"
		rmdir "$CFS/bpf"
	fi
	return $rc
}

creation_sweep() {
	# The objects kmemleak already took for leaks are not the sweep's. make check skips these
	# two scans (some 30 s): every leak found after the sweep then counts against it, which is
	# stricter (an earlier test's leak would fail dmesg-clean anyway).
	if [ "${CHECK_FULL:-0}" = 1 ]; then
		leak_scan /tmp/leaks-before || { echo "kmemleak scan failed"; return 1; }
	else
		echo "kmemleak list" >/tmp/leaks-before
	fi
	mkdir "$CFS/bpf" || return 1
	for kv in size=4 submit_queues=1 poll_queues=2 hw_queue_depth=8 irqmode=2 \
		completion_nsec=20000 poll_mode=hybrid; do
		echo "${kv#*=}" >"$CFS/bpf/${kv%%=*}" || { echo "cannot set $kv"; return 1; }
	done
	echo N >"$FAILSLAB/ignore-gfp-wait"
	echo 0 >"$FAILSLAB/verbose"
	n=1 refused=0 tolerated=0 bad=0 finished=0 tried=0 run=0
	: >/tmp/power-errors
	# The driver's own allocations and the tag set and disk creation come first and are all
	# tried; past FAULT_EVERY_UNTIL (add_disk's sysfs, debugfs and uevent allocations, ~700 in
	# all, most of them tolerated, all of them C) every FAULT_STRIDE-th: the whole sweep took
	# 15 min under TCG, every 5th 5 min (290 s in CI), every 25th about 3. make check-full
	# (CHECK_FULL=1) tries every one of the first 150, then every 25th. make check tries every
	# other one (each unwinding path is reached by a run of neighbouring faults), but every
	# FAULT_SKIP-th (8) after 3 tolerated in a row, then every 50th past 150. A map of the debug
	# kernel (every fault to 170, then every 10th; 2026-11-29) had refusals at 1-17 (the odd
	# ones, and 16), 21-46 (12 of them), 105-170 (half of them) and nearly every one of 170-390,
	# none after; between 47 and 104, 58 faults in a row (1.2 s each) that blk-mq tolerated by
	# retrying the tag set with a smaller depth: every other one of those cost 35 s, this 10 s.
	# The sample finds 31 of the 41 refusals up to 148 (every other one: 32).
	if [ "${CHECK_FULL:-0}" = 1 ]; then
		step=${FAULT_STEP:-1} skip=${FAULT_SKIP:-1} every_until=${FAULT_EVERY_UNTIL:-150} stride=${FAULT_STRIDE:-25}
	else
		step=${FAULT_STEP:-2} skip=${FAULT_SKIP:-8} every_until=${FAULT_EVERY_UNTIL:-150} stride=${FAULT_STRIDE:-50}
	fi
	while [ $n -le 4000 ]; do
		tried=$((tried + 1))
		# One process per attempt, the rest with shell builtins: the sweep is long.
		out=$(power_on_failing_at $n)
		last=${out##*= }
		rc=${last%% *} left=${last##* }
		err=${out%= *}
		err=${err%"$NL"}
		err=${err##*: }
		if [ "$rc" = 0 ] && [ "$left" != 0 ]; then
			finished=1
			break
		fi
		if [ "$left" != 0 ]; then
			echo "power-on failed at $n without an injected fault: $err"
			bad=1
			break
		fi
		if [ "$rc" = 0 ]; then
			tolerated=$((tolerated + 1))
			echo 0 >"$CFS/bpf/power" || { echo "power off after fault $n failed"; bad=1; break; }
		else
			refused=$((refused + 1))
			echo "${err:-no message}" >>/tmp/power-errors
			read -r power <"$CFS/bpf/power"
			[ "$power" = 0 ] || { echo "fault $n: power reads $power after a refused power-on"; bad=1; }
		fi
		[ ! -e /sys/block/bpf ] || { echo "fault $n: /sys/block/bpf left behind"; bad=1; }
		[ $bad = 0 ] || break
		if [ "$rc" = 0 ]; then run=$((run + 1)); else run=0; fi
		if [ $n -lt "$every_until" ] && [ $run -ge 3 ]; then
			n=$((n + skip))
		elif [ $n -lt "$every_until" ]; then
			n=$((n + step))
		else
			n=$((n + stride))
		fi
	done
	echo Y >"$FAILSLAB/ignore-gfp-wait"
	echo "$((tried - 1)) faults injected (every $step-th to $every_until, every $skip-th after 3 tolerated, then every $stride-th, to $n): power-on refused $refused times, succeeded $tolerated times despite one"
	sort /tmp/power-errors | uniq -c
	[ $bad = 0 ] || return 1
	[ $finished = 1 ] || { echo "power-on did not get through in $n attempts"; return 1; }
	[ $refused -gt 0 ] || { echo "no fault refused a power-on"; return 1; }
	# The last power-on got through: the device works, and powers off and on again.
	i=0
	while [ ! -b /dev/bpf ] && [ $i -lt 50 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	$FIO --name=f --filename=/dev/bpf --direct=1 --ioengine=io_uring --hipri=1 --rw=randwrite \
		--bs=4k --iodepth=4 --size=4m --io_size=1m --verify=crc32c --verify_fatal=1 \
		--output=/tmp/fio-f.out || { cat /tmp/fio-f.out; return 1; }
	echo 0 >"$CFS/bpf/power" && echo 1 >"$CFS/bpf/power" || { echo "power cycle failed"; return 1; }
	# rmdir of a powered device deletes it.
	rmdir "$CFS/bpf" || return 1
	# kmemleak reports objects older than 5 s.
	sleep 6
	leak_scan /tmp/leaks-after || return 1
	grep -vxF -f /tmp/leaks-before /tmp/leaks-after >/tmp/leaks-new
	leak_report /tmp/leaks-new
}

# configfs pins the module while a device directory exists.
rmmod_only_without_devices() {
	if rmmod blk_poll 2>/dev/null; then
		echo "rmmod succeeded while devices exist"
		return 1
	fi
	rmdev bp0 && rmdev bp1 || return 1
	rmmod blk_poll || { echo "rmmod failed without devices"; return 1; }
	[ ! -e "$CFS" ] || { echo "$CFS still there"; return 1; }
}

ktap_begin
ktap_test module_loads module_loads
ktap_test defaults_and_io_poll defaults_and_io_poll
ktap_test attributes_reject_bad_values attributes_reject_bad_values
ktap_test iopoll iopoll_kselftest
ktap_test stats_move stats_move
ktap_test verify_irqmode_none verify_mode 0 bpv0 irqmode=0
ktap_test verify_irqmode_softirq verify_mode 0 bpv1 irqmode=1
ktap_test verify_irqmode_timer verify_mode 0 bpv2 irqmode=2 completion_nsec=30000
ktap_test verify_irqmode_timer_no_latency verify_mode 0 bpv6 irqmode=2 completion_nsec=0
ktap_test verify_polled_classic verify_mode 1 bpv3 completion_nsec=30000
ktap_test verify_polled_hybrid verify_mode 1 bpv4 completion_nsec=30000 poll_mode=hybrid
ktap_test verify_polled_two_poll_queues verify_mode 1 bpv5 completion_nsec=30000 submit_queues=2 poll_queues=2
ktap_test timer_mode_counts_time timer_mode_counts_time
ktap_test classic_poll_honours_latency classic_honours_latency
ktap_test hybrid_poll_sleeps hybrid_sleeps
ktap_test power_off_under_io power_off_under_io
ktap_test creation_failures_free_everything creation_failures_free_everything
ktap_test rmmod_only_without_devices rmmod_only_without_devices
ktap_end
