# raid5_journal: RAID5 behaviour asserted on each implementation in ${RAID5_IMPLS:-md rust44} in
# one boot: md raid5 through mdadm first, as the reference, then rust44's rust44-raid5 target
# (raid5_journal.ko from /rust44/extmod; every rust44 test is skipped with the reason while it is
# not built). RAID5_IMPLS="dmraid md rust44" adds dm-raid's raid5_ls (md raid5 under
# device-mapper, driven by dmsetup: the same C engine as md, with dm's suspend and resume); it
# passed every test in session 5 and is left out of make check for time (2.5 min).
# Members and layout: see lib.sh. Test names start with the implementation: dmraid_*, md_*,
# rust44_*. Each test starts from zeroed members and a fresh 4-member array and tears it down.
# R5_ONLY (shell patterns, space-separated) runs only the tests whose names match one.
. /rust44/ktap.sh
cd /rust44/tests/raid5_journal || exit 1
# The debug kernel moves every byte many times slower (KASAN, lockdep, kmemleak): smaller
# members there (the same paths: resync, rebuild, degraded I/O), 128 MiB ones on the default.
[ "${KERNEL_FLAVOUR:-default}" = debug ] && DATA_MB=${DATA_MB:-32}
. ./lib.sh

IMPLS=${RAID5_IMPLS:-md rust44}
# The debug kernel (KASAN, lockdep) is many times slower: less data, same paths, and only
# rust44-raid5 (what the debug kernel is for: its splats); the C references run on the default
# kernel, in the same boot as rust44's.
if [ "${KERNEL_FLAVOUR:-default}" = debug ]; then
	IMPLS=${RAID5_IMPLS:-rust44}
	# Each test makes a fresh array, a minute or so apiece under KASAN and TCG: the paths where
	# the debug kernel finds most (resync, degraded I/O and rebuild, I/O errors
	# completing in interrupt context, two failed members, suspend under I/O, refusals, unload).
	# R5_ONLY= runs them all (in session 6 the first seven passed there, 2-3 min each with
	# 128 MiB members, before the run was stopped for time).
	# make check-full (CHECK_FULL=1) runs them all.
	[ "${CHECK_FULL:-0}" = 1 ] && R5_ONLY=${R5_ONLY-}
	R5_ONLY=${R5_ONLY-"rust44_initial_resync rust44_rebuild_onto_spare rust44_member_io_errors rust44_read_errors_served_from_parity rust44_two_failed_members rust44_suspend_resume_under_io rust44_bad_tables_refused rust44_journal_modes rust44_journal_reload_under_io rust44_journal_failure_read_only rust44_rmmod"}
	IO_MB=8
	SUSPEND_ROUNDS=3
else
	IO_MB=32
	SUSPEND_ROUNDS=5
fi

# fio_job NAME ARGS...: fio on the array with O_DIRECT, libaio, crc32c verification that stops at
# the first bad block. Prints fio's errors on failure.
fio_job() {
	local n=$1 out=/tmp/r5-fio.out
	shift
	$FIO --name="$n" --filename="$DEV" --direct=1 --ioengine=libaio --verify=crc32c \
		--verify_fatal=1 "$@" >$out 2>&1 || {
		echo "fio $n failed:"
		grep -E 'err=|error|verify|bad' $out | head -n 20
		return 1
	}
	grep -q 'err= 0' $out || { tail -n 30 $out; return 1; }
}

# setup: a fresh array of the implementation; DEV is its block device.
setup() {
	DEV=$(impl_dev "$IMPL")
	impl_create "$IMPL" || { echo "creating the array failed"; return 1; }
	wait_for 60 impl_in_sync "$IMPL" || {
		echo "not in sync after creation: health $(impl_health "$IMPL") progress $(impl_progress "$IMPL")"
		return 1
	}
}

# t FUNCTION: a test body on a fresh array, cleanup after it whatever happened; kernel reports
# (WARN, BUG, Oops, traces) during the test fail it (the harness also fails the suite on them).
t() {
	local mark r
	mark=$(log_lines)
	setup && "$@"
	r=$?
	cleanup || { echo "cleanup failed (array left, or members not zeroed)"; r=1; }
	if kernel_reports_since "$mark"; then
		echo "the kernel reported the above during this test"
		r=1
	fi
	return $r
}

# tb FUNCTION: as t, on blank members (no array made first).
tb() {
	local mark r
	mark=$(log_lines)
	DEV=/dev/mapper/r5
	"$@"
	r=$?
	cleanup || { echo "cleanup failed (array left, or members not zeroed)"; r=1; }
	if kernel_reports_since "$mark"; then
		echo "the kernel reported the above during this test"
		r=1
	fi
	return $r
}

# --- the common behaviour, on every implementation ---

t_created_in_sync() {
	local sz want
	sz=$($BLOCKDEV --getsz "$DEV")
	echo "array: $sz sectors, health $(impl_health "$IMPL"), progress $(impl_progress "$IMPL")"
	# md reserves its data offset out of each member (1 MiB here): 3 members' worth less at
	# most 8 MiB each remains everywhere.
	[ "$sz" -ge $((3 * (DATA_MB - 8) * MIB_SECTORS)) ] && [ "$sz" -le $((3 * DATA_SECTORS)) ] ||
		{ echo "size $sz sectors is not 3 members' worth"; return 1; }
	expect_eq health "$(impl_health "$IMPL")" AAAA || return 1
	# A fresh array over zeroed members reads zeroes.
	expect_eq "first MiB" "$(region_sum "$DEV" 0 1)" "$(dd if=/dev/zero bs=1M count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
}

t_fio_verify_sequential() {
	fio_job seq --rw=write --bs=1M --iodepth=8 --size=$((IO_MB * 2))M --do_verify=1
}

# A stream of 1 MiB writes (QD8) kept up for 6 s (time-based: fio waits for its I/O at the end
# of each pass otherwise, which ends the engine's group): writes that join a running group must
# not grow it past what can be allocated (they did, and failed with ENOMEM after a WARN, after
# some 500 writes, 2.5 s here). The data is a fixed pattern (checksums per block slow fio down under TCG
# until the queue no longer stays full); then the region is checked for it.
t_large_write_stream() {
	# The region is small enough for 6 s of writing to cover it (it wraps without draining the
	# queue) even on a loaded host: at 320 MiB a busy host once wrote less, and the verify read
	# the unwritten rest as zeroes.
	local job="--filename=$DEV --direct=1 --ioengine=libaio --rw=write --bs=1M --iodepth=8
		--size=$((IO_MB * 2))M" written
	# shellcheck disable=SC2086
	$FIO --name=stream $job --time_based --runtime=6 --buffer_pattern=0x5a17c3e9 >/tmp/r5-fio.out 2>&1 &&
		grep -q 'err= 0' /tmp/r5-fio.out || { grep -E 'err|error' /tmp/r5-fio.out | head -n 5; return 1; }
	# "io=1.17GiB (1258MB)" or "io=300MiB (315MB)": whole MiB written.
	written=$(awk '/WRITE:/ { if (match($0, /io=[0-9.]+[KMG]iB/)) { v = substr($0, RSTART + 3, RLENGTH - 6)
		u = substr($0, RSTART + RLENGTH - 3, 1); printf "%d", v * (u == "G" ? 1024 : u == "K" ? 1 / 1024 : 1) } }' /tmp/r5-fio.out)
	echo "written: ${written:-?} MiB in 6 s over a $((IO_MB * 2)) MiB region"
	[ "${written:-0}" -ge $((IO_MB * 2)) ] || { echo "the stream did not cover the region"; return 1; }
	# shellcheck disable=SC2086
	$FIO --name=check $job --verify=pattern --verify_pattern=0x5a17c3e9 --verify_only \
		>/tmp/r5-fio.out 2>&1 && grep -q 'err= 0' /tmp/r5-fio.out ||
		{ grep -E 'err|error|verify' /tmp/r5-fio.out | head -n 5; return 1; }
}

t_fio_verify_random() {
	fio_job rand --rw=randwrite --bs=4k --iodepth=32 --size=$((IO_MB * 4))M \
		--io_size=${IO_MB}M --do_verify=1
}

# parity_holds SLOT-INDEX OFFSET_MB LEN_MB: the region reads the same after the member at
# SLOT-INDEX fails (its chunks now come from parity), so the parity written was right.
parity_holds() {
	local before after
	before=$(region_sum "$DEV" "$2" "$3")
	impl_fail "$IMPL" "$1" || { echo "failing member $1 failed: health $(impl_health "$IMPL")"; return 1; }
	after=$(region_sum "$DEV" "$2" "$3")
	echo "health $(impl_health "$IMPL"); region ${2}+${3} MiB $before -> $after"
	expect_eq "region read degraded" "$after" "$before"
}

# Writes of 512 bytes to 130 KiB at any 512-byte boundary: partial stripes, chunk- and
# stripe-crossing, read-modify-write and reconstruct-write; then the parity is checked by
# failing each of two members in turn (only one at a time is possible: the second on a fresh copy
# would need a rebuild, so one here, the other in concurrent_writers).
t_partial_unaligned_writes() {
	fio_job partial --rw=randwrite --bsrange=512-130k --blockalign=512 --iodepth=16 \
		--size=${IO_MB}M --do_verify=1 || return 1
	# Single sectors at the edges of chunks and stripes, past fio's region (base: sector b).
	local off b=$((IO_MB * MIB_SECTORS))
	for off in 1 127 128 255 383 384 385 767 768; do
		dd if=/dev/urandom of="$DEV" bs=512 seek=$((b + off)) count=1 oflag=direct conv=notrunc 2>/dev/null ||
			{ echo "512-byte write at sector $((b + off)) failed"; return 1; }
	done
	dd if=/dev/urandom of=/tmp/r5-odd bs=512 count=3 2>/dev/null
	dd if=/tmp/r5-odd of="$DEV" bs=512 seek=$((b + 1023)) oflag=direct conv=notrunc 2>/dev/null || return 1
	expect_eq "3 sectors across a chunk boundary read back" \
		"$(dd if="$DEV" bs=512 skip=$((b + 1023)) count=3 iflag=direct 2>/dev/null | md5sum)" "$(md5sum </tmp/r5-odd)" || return 1
	parity_holds 0 0 $((IO_MB + 1)) || return 1
	fio_job partial --rw=randwrite --bsrange=512-130k --blockalign=512 --iodepth=16 \
		--size=${IO_MB}M --verify_only
}

# 8 writers at once, each writing every 8th 4 KiB block of the same region: all of them are in
# every stripe at once. Each verifies its blocks; then the parity is checked.
t_concurrent_writers_same_stripes() {
	fio_job conc --rw=write:28k --bs=4k --iodepth=4 --numjobs=8 --offset_increment=4k \
		--size=$((IO_MB / 2))M --do_verify=1 || return 1
	parity_holds 2 0 $((IO_MB / 2))
}

# Failing one member: the array reads what was written (from parity), takes writes, and the
# status shows that member, and only it, failed.
t_degraded_read_write() {
	fio_job before --rw=write --bs=64k --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	parity_holds 1 0 "$IO_MB" || return 1
	expect_eq health "$(impl_health "$IMPL")" ADAA || return 1
	fio_job before --rw=write --bs=64k --iodepth=8 --size=${IO_MB}M --verify_only || return 1
	fio_job degraded --rw=randwrite --bsrange=4k-192k --iodepth=8 --offset=${IO_MB}M \
		--size=${IO_MB}M --do_verify=1 || return 1
	fio_job degraded_rewrite --rw=randwrite --bs=4k --iodepth=16 --size=${IO_MB}M --do_verify=1
}

# Rebuild onto a spare: data written before the failure and while degraded survives it, and
# the rebuilt member holds the right data (another member fails after the rebuild: reads must
# not change).
t_rebuild_onto_spare() {
	local a b start secs seen_rebuild=""
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	impl_fail "$IMPL" 1 || { echo "failing member 1 failed"; return 1; }
	fio_job b --rw=randwrite --bs=16k --iodepth=8 --offset=${IO_MB}M --size=${IO_MB}M --do_verify=1 || return 1
	a=$(region_sum "$DEV" 0 "$IO_MB")
	b=$(region_sum "$DEV" "$IO_MB" "$IO_MB")
	start=$(date +%s)
	impl_replace "$IMPL" 1 $SPARE || { echo "replacing member 1 with the spare failed"; return 1; }
	# Seen while rebuilding (too quick to catch every time): the member is 'a', the rest 'A'.
	case "$(impl_health "$IMPL")" in AaAA) seen_rebuild=" (seen rebuilding: AaAA $(impl_progress "$IMPL"))" ;; esac
	# Under TCG md and dm-raid take 5-7 s for these 128 MiB, rust44-raid5 2 s; minutes on the debug
	# kernel or with other guests on the host. How long is for the bench, not here.
	wait_for 600 impl_in_sync "$IMPL" ||
		{ echo "not in sync: health $(impl_health "$IMPL") progress $(impl_progress "$IMPL")"; return 1; }
	secs=$(($(date +%s) - start))
	echo "rebuilt in about $secs s$seen_rebuild"
	expect_eq "region a after the rebuild" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	expect_eq "region b after the rebuild" "$(region_sum "$DEV" "$IO_MB" "$IO_MB")" "$b" || return 1
	# Member 2 fails: member 1's chunks are read from the rebuilt spare, 2's from parity.
	impl_fail "$IMPL" 2 || { echo "failing member 2 failed"; return 1; }
	expect_eq health "$(impl_health "$IMPL")" AADA || return 1
	expect_eq "region a with member 2 failed" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	expect_eq "region b with member 2 failed" "$(region_sum "$DEV" "$IO_MB" "$IO_MB")" "$b" || return 1
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --verify_only
}

# I/O errors under one member (dm-flakey, every I/O fails): that member is failed, the array
# is not: it keeps reading what was written and takes writes.
t_member_io_errors() {
	local a mark
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	a=$(region_sum "$DEV" 0 "$IO_MB")
	mark=$(log_lines)
	member_errors 2 on || return 1
	# Reads and writes over every member.
	fio_job c --rw=randwrite --bs=64k --iodepth=8 --offset=${IO_MB}M --size=${IO_MB}M --do_verify=1 ||
		{ echo "I/O failed on the array with one failing member: health $(impl_health "$IMPL")"; return 1; }
	wait_for 20 health_is_down "$IMPL" 2 || { echo "member 2 not failed: health $(impl_health "$IMPL")"; return 1; }
	expect_eq health "$(impl_health "$IMPL")" AADA || return 1
	expect_eq "region a" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	echo "kernel log: $(since_mark "$mark" | grep -ciE 'error|fail') lines about errors"
}

# A member that fails every read (and write) under the array, read before anything is written to
# it: its data comes back from parity, unchanged and without an error, and the member is failed.
t_read_errors_served_from_parity() {
	local a
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	a=$(region_sum "$DEV" 0 "$IO_MB")
	member_errors 2 on || return 1
	expect_eq "data read with member 2 failing" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	wait_for 20 health_is_down "$IMPL" 2 || { echo "member 2 not failed: health $(impl_health "$IMPL")"; return 1; }
	expect_eq health "$(impl_health "$IMPL")" AADA
}

# Two failed members: I/O fails (EIO), nothing crashes, and the array can still be removed.
# The second member fails by I/O errors under it (dm-flakey); a write reaches it first.
# (Reading first is not asserted on the C references: dm-raid's raid5 retries a read whose last
# copy errors forever: 'read error not correctable' some 170000 times a second, the reader in D
# state; rust44 has it as a test of its own, two_failed_read_first.)
t_two_failed_members() {
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	impl_fail "$IMPL" 1 || { echo "failing member 1 failed"; return 1; }
	member_errors 3 on || return 1
	if timeout 120 dd if=/dev/zero of="$DEV" bs=768k count=4 oflag=direct conv=fsync 2>/tmp/r5-dd.err; then
		echo "a write across every member succeeded with two members failed"
		return 1
	fi
	echo "write: $(tail -n1 /tmp/r5-dd.err); health $(impl_health "$IMPL")"
	two_failed_reads_fail
}

two_failed_reads_fail() {
	if timeout 120 dd if="$DEV" of=/dev/null bs=768k count=4 iflag=direct 2>/tmp/r5-dd.err; then
		echo "a read across every member succeeded with two members failed"
		return 1
	fi
	echo "read: $(tail -n1 /tmp/r5-dd.err); health $(impl_health "$IMPL")"
	impl_remove "$IMPL" || { echo "cannot remove the failed array"; return 1; }
	! impl_exists "$IMPL" || { echo "the array is still there"; return 1; }
}

# rust44 only: the second member's read errors come first (no write to it before): reads fail
# with EIO within 2 minutes (no endless retry, as dm-raid's), and the array can be removed.
t_two_failed_read_first() {
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	impl_fail "$IMPL" 1 || { echo "failing member 1 failed"; return 1; }
	member_errors 3 on || return 1
	two_failed_reads_fail
}

# suspend/resume (device-mapper) while fio writes and verifies: no error, no lost write.
t_suspend_resume_under_io() {
	local pid i r=0
	fio_job susp --rw=randwrite --bs=16k --iodepth=16 --size=${IO_MB}M --do_verify=1 \
		--time_based --runtime=$((SUSPEND_ROUNDS * 2 + 2)) --verify_backlog=256 &
	pid=$!
	sleep 1
	for i in $(seq "$SUSPEND_ROUNDS"); do
		dm suspend r5 || { echo "suspend $i failed"; r=1; }
		dm info r5 | grep -q SUSPENDED || { echo "not suspended"; r=1; }
		sleep 0.5
		dm resume r5 || { echo "resume $i failed"; r=1; }
		sleep 1
	done
	wait $pid || { echo "fio failed across suspend/resume"; r=1; }
	return $r
}

# Removing (stopping) the array while it is open is refused, and the array keeps working.
t_remove_while_open_refused() {
	exec 7<"$DEV"
	if impl_remove "$IMPL" 2>&1; then
		exec 7<&-
		echo "removed while open"
		return 1
	fi
	exec 7<&-
	impl_exists "$IMPL" || { echo "the array went"; return 1; }
	fio_job after --rw=write --bs=64k --size=4M --do_verify=1 || return 1
	impl_remove "$IMPL" || { echo "cannot remove once closed"; return 1; }
}

t_rmmod_refused_while_used() {
	local mod
	mod=$(impl_module "$IMPL")
	if rmmod "$mod" 2>&1; then
		echo "rmmod $mod succeeded with an array using it"
		impl_load "$IMPL"
		return 1
	fi
	[ -d "/sys/module/$mod" ] && impl_exists "$IMPL"
}

# --- rust44-raid5 only: its table, its refusals, its status ---

# refused WHAT REGEX TABLE...: 'dmsetup create r5' with the table fails, no r5 is left, the
# kernel log has rust44-raid5's message matching REGEX, and the heads of every slice are as they
# were (with HEADS_BEFORE set, the caller compares them once after a series of refusals: reading
# every head twice per refusal took most of a minute on the default kernel, four on the debug one).
refused() {
	local what=$1 re=$2 tbl=$3 before mark msg
	[ -n "${HEADS_BEFORE:-}" ] || before=$(heads_sum $ALL_SLOTS)
	mark=$(log_lines)
	if dm create r5 --table "$tbl" 2>/tmp/r5-dm.err; then
		echo "$what: accepted: $tbl"
		dm remove r5
		return 1
	fi
	! dm info r5 >/dev/null 2>&1 || { echo "$what: r5 exists after the refusal"; dm remove r5; return 1; }
	msg=$(since_mark "$mark" | grep 'rust44-raid5: ' | tail -n1)
	echo "$what: dmsetup: $(tail -n1 /tmp/r5-dm.err); kernel: ${msg:-nothing}"
	echo "$msg" | grep -qiE "$re" || { echo "$what: no rust44-raid5 message matching /$re/"; return 1; }
	[ -n "${HEADS_BEFORE:-}" ] || expect_eq "$what: member heads" "$(heads_sum $ALL_SLOTS)" "$before"
}

# (No fresh array: these run on blank members.)
t_bad_tables_refused() {
	local r=0 m0 m1 m2 m3 HEADS_BEFORE
	m0=$(member 0) m1=$(member 1) m2=$(member 2) m3=$(member 3)
	HEADS_BEFORE=$(heads_sum $ALL_SLOTS)
	refused "two members" 'member|device' "0 $(array_sectors rust44 2) rust44-raid5 $CHUNK 2 $m0 $m1" || r=1
	refused "17 members" 'member|device' "0 $(array_sectors rust44 17) rust44-raid5 $CHUNK 17$(for i in $(seq 17); do printf ' %s' "$m0"; done)" || r=1
	refused "chunk 0" chunk "$(rust44_table 0)" || r=1
	refused "chunk 100 (not a power of two)" chunk "$(rust44_table 100)" || r=1
	refused "chunk 4 (below a page)" chunk "$(rust44_table 4)" || r=1
	refused "chunk abc" chunk "$(rust44_table abc)" || r=1
	refused "4 members, 3 listed" 'member|device|argument' "0 $(array_sectors rust44) rust44-raid5 $CHUNK 4 $m0 $m1 $m2" || r=1
	refused "4 members, 5 listed" 'member|device|argument' "0 $(array_sectors rust44) rust44-raid5 $CHUNK 4 $m0 $m1 $m2 $m3 $(member 4)" || r=1
	refused "a device twice" 'twice|duplicate|more than once|listed|same' "$(rust44_table $CHUNK 0 1 0 3)" || r=1
	refused "longer than the members hold" 'length|size|long|capacity|sector' \
		"0 $(($(array_sectors rust44) + 3 * CHUNK)) rust44-raid5 $CHUNK 4 $m0 $m1 $m2 $m3" || r=1
	refused "a missing device" 'device|lookup|open|find' "$(rust44_table $CHUNK 0 1 2 3 | sed 's|r5m3|r5nothing|')" || r=1
	expect_eq "member heads after the refusals" "$(heads_sum $ALL_SLOTS)" "$HEADS_BEFORE" || r=1
	return $r
}

# A member claimed by someone else (a mounted file system) is refused; once free, the same table
# works. (Another dm table is no such claim: device-mapper shares its members among its tables.)
t_device_in_use_refused() {
	$MKFS -q -F "$(member 3)" >/dev/null 2>&1 || { echo "mkfs failed"; return 1; }
	mkdir -p /mnt/r5hold
	# Read-only: the file system claims the device all the same, and leaves its head as it is.
	mount -t ext4 -o ro "$(member 3)" /mnt/r5hold || return 1
	refused "a member in use" 'use|busy|claim|device|open' "$(rust44_table)" || { umount /mnt/r5hold; return 1; }
	umount /mnt/r5hold || return 1
	$BLKDISCARD -f -z "$(member 3)" 2>/dev/null || return 1
	dm create r5 --table "$(rust44_table)" || { echo "refused once the member was free"; return 1; }
}

# A new array over members that hold old data, without 'nosync': the initial resync makes
# every stripe's parity agree with its data, so a failed member's chunks read back from parity
# as they read before. (Every other test creates its arrays over zeroed members with 'nosync'.)
t_initial_resync() {
	local s mark R5_NOSYNC=""
	for s in 0 1 2 3; do
		# Past the first MiB, where the superblock goes: the members are blank, not an array.
		dd if=/dev/urandom of="$(member "$s")" bs=1M seek=1 count=$((IO_MB + 1)) oflag=direct 2>/dev/null ||
			{ echo "filling member $s failed"; return 1; }
	done
	mark=$(log_lines)
	rust44_create || return 1
	since_mark "$mark" | grep -q 'rust44-raid5: new array .*parity resync starts' ||
		{ echo "no resync announced: $(since_mark "$mark" | grep rust44-raid5)"; return 1; }
	rust44_wait_sync || return 1
	DEV=/dev/mapper/r5
	parity_holds 1 0 "$IO_MB"
}

rust44_create() {
	dm create r5 --table "$(rust44_table)" || { echo "creating the array failed"; return 1; }
}

rust44_wait_sync() {
	wait_for 600 impl_in_sync rust44 ||
		{ echo "not in sync: $(dm status r5)"; return 1; }
}

# Members named in another order, on reload or on a new create, are refused; in the right
# order the array comes back with its data.
t_reordered_members_refused() {
	local a mark
	dm create r5 --table "$(rust44_table)" && rust44_wait_sync || return 1
	DEV=/dev/mapper/r5
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	a=$(region_sum "$DEV" 0 "$IO_MB")
	mark=$(log_lines)
	if dm load r5 --table "$(rust44_table $CHUNK 1 0 2 3)" 2>/dev/null; then
		echo "a reload with members 0 and 1 swapped was accepted"
		return 1
	fi
	since_mark "$mark" | grep 'rust44-raid5: ' | tail -n1
	since_mark "$mark" | grep 'rust44-raid5: ' | grep -qiE 'order|position|slot|index|member' ||
		{ echo "no rust44-raid5 message about the order"; return 1; }
	expect_eq "live table" "$(dm table r5 | cut -d' ' -f1-5)" "0 $(array_sectors rust44) rust44-raid5 $CHUNK 4" || return 1
	expect_eq "data after the refused reload" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	dm remove r5 || return 1
	refused "members swapped" 'order|position|slot|index|member' "$(rust44_table $CHUNK 0 1 3 2)" || return 1
	dm create r5 --table "$(rust44_table)" || { echo "the members in their order were refused"; return 1; }
	rust44_wait_sync || return 1
	expect_eq "data after re-creating" "$(region_sum "$DEV" 0 "$IO_MB")" "$a" || return 1
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --verify_only
}

# A blank device, a member of another array, or the same members under another geometry (chunk,
# member count) are refused where this array's member is expected.
t_foreign_members_refused() {
	dm create r5 --table "$(rust44_table)" && rust44_wait_sync || return 1
	dm remove r5 || return 1
	dm create r5 --table "$(rust44_table $CHUNK e0 e1 e2)" || { echo "cannot create the other array"; return 1; }
	wait_for 600 sh -c "$DMSETUP status r5 | grep -qE ' AAA [0-9]+/' " || true
	dm remove r5 || return 1
	local r=0
	refused "a blank device as member 3" 'superblock|blank|member|foreign|array' "$(rust44_table $CHUNK 0 1 2 4)" || r=1
	refused "another array's member as member 3" 'superblock|foreign|member|array|uuid' "$(rust44_table $CHUNK 0 1 2 e0)" || r=1
	refused "another chunk size" 'chunk|geometry|superblock' "$(rust44_table 256)" || r=1
	refused "3 of the 4 members" 'member|device|geometry|superblock' "$(rust44_table $CHUNK 0 1 2)" || r=1
	dm create r5 --table "$(rust44_table)" || { echo "the right table was refused after all that"; return 1; }
	return $r
}

# 'dmsetup table' prints the table back (devices as major:minor, then 'nosync' as it was
# given), and loading what it printed is accepted and changes nothing.
t_table_round_trip() {
	local want s tbl
	want="0 $(array_sectors rust44) rust44-raid5 $CHUNK $NDEVS"
	for s in 0 1 2 3; do
		want="$want $(dm info -c --noheadings -o major,minor "r5m$s" | tr -d ' ')"
	done
	want="$want nosync"
	tbl=$(dm table r5)
	expect_eq "dmsetup table" "$tbl" "$want" || return 1
	dm load r5 --table "$tbl" || { echo "reloading the printed table failed"; return 1; }
	dm resume r5 || return 1
	expect_eq "dmsetup table after reloading it" "$(dm table r5)" "$want" || return 1
	fio_job rt --rw=write --bs=64k --size=4M --do_verify=1
}

# 'dmsetup status', dm-raid's fields: "0 <len> rust44-raid5 raid5_ls <ndevs> <health>
# <done>/<total> <action> <mismatches> ..." (then rust44's counters); a failed member shows D;
# 'fail' with a bad index, or an unknown message, is refused and changes nothing.
t_status_format() {
	local st re
	st=$(dm status r5)
	echo "status: $st"
	re="^0 $(array_sectors rust44) rust44-raid5 raid5_ls $NDEVS AAAA ([0-9]+)/([0-9]+) idle "
	echo "$st" | grep -qE "$re" || { echo "does not match /$re/"; return 1; }
	set -- $(echo "$st" | sed -E "s|$re.*|\1 \2|")
	[ "$1" = "$2" ] && [ "$2" = $((DATA_SECTORS - RUST44_RESERVED)) ] ||
		{ echo "in sync but progress $1/$2 (want the member's data sectors)"; return 1; }
	for bad in 4 -1 x 99 ''; do
		if dm message r5 0 fail $bad 2>/dev/null; then echo "'fail $bad' accepted"; return 1; fi
	done
	if dm message r5 0 frobnicate 2>/dev/null; then echo "an unknown message accepted"; return 1; fi
	expect_eq "health after refused messages" "$(impl_health rust44)" AAAA || return 1
	dm message r5 0 fail 2 || { echo "'fail 2' refused"; return 1; }
	st=$(dm status r5)
	echo "after 'fail 2': $st"
	echo "$st" | grep -qE "^0 $(array_sectors rust44) rust44-raid5 raid5_ls $NDEVS AADA [0-9]+/[0-9]+ " ||
		{ echo "member 2 is not shown failed"; return 1; }
	# The failure is on the members: a new table over the same devices comes up degraded.
	dm remove r5 || return 1
	dm create r5 --table "$(rust44_table)" || { echo "re-creating the degraded array failed"; return 1; }
	expect_eq "health after re-creating" "$(impl_health rust44)" AADA
}

# --- rust44-raid5's journal ---

# journal_table MODE [SLOT...]: a rust44-raid5 table (slots 0-3 by default; '-' for a missing
# member) with the journal on slot j.
journal_table() {
	local mode=$1
	shift
	echo "$(rust44_table $CHUNK "$@") journal $(member j) $mode"
}

# journal_field NAME: a key=value field of rust44-raid5's status.
journal_field() {
	dm status r5 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# The modes: status and table show the mode, a message switches it, a reload of the printed
# table keeps it, the data goes through the journal (its transactions are on the journal
# device) and reads see every write in both modes, and a clean stop leaves nothing to replay.
t_journal_modes() {
	local jm st tbl
	touch_slots j
	dm create r5 --table "$(journal_table writethrough)" || { echo "creating with a journal failed"; return 1; }
	DEV=/dev/mapper/r5
	st=$(dm status r5)
	echo "status: $st"
	echo "$st" | grep -qE ' journal=writethrough journal_fill=[0-9]+% journal_replayed=0 journal_state=ok$' ||
		{ echo "no journal fields (writethrough, 0 replayed, ok) in the status"; return 1; }
	jm=$(dm info -c --noheadings -o major,minor r5mj | tr -d ' ')
	expect_eq "table's journal" "$(dm table r5 | sed 's/.* journal /journal /')" "journal $jm writethrough" || return 1
	fio_job wt --rw=randwrite --bs=4k --iodepth=16 --size=${IO_MB}M --do_verify=1 || return 1
	# The journal saw the rows: its superblock, and transactions in its log.
	expect_eq "journal magic" "$(dd if="$(member j)" bs=8 count=1 2>/dev/null)" r44jsupr || return 1
	dd if="$(member j)" bs=1M count=8 iflag=direct 2>/dev/null | grep -qa r44jtxn1 ||
		{ echo "no transaction in the journal's first 8 MiB"; return 1; }
	dm message r5 0 journal_mode writeback || { echo "journal_mode writeback refused"; return 1; }
	expect_eq "mode after the message" "$(journal_field journal)" writeback || return 1
	expect_eq "table after the message" "$(dm table r5 | sed 's/.* journal /journal /')" "journal $jm writeback" || return 1
	if dm message r5 0 journal_mode sideways 2>/dev/null; then echo "journal_mode sideways accepted"; return 1; fi
	if dm message r5 0 journal_mode 2>/dev/null; then echo "journal_mode without a mode accepted"; return 1; fi
	expect_eq "mode after refused messages" "$(journal_field journal)" writeback || return 1
	# Write-back answers before the members hold the rows: a read right after each write must
	# see it (verify_backlog=1: each block is read back as soon as it is written).
	fio_job wb --rw=randwrite --bs=4k --iodepth=16 --size=${IO_MB}M --verify_backlog=1 --do_verify=1 || return 1
	fio_job wbrw --rw=randrw --rwmixread=50 --bs=16k --iodepth=16 --size=${IO_MB}M --do_verify=1 || return 1
	fio_job wbseq --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --offset=${IO_MB}M --do_verify=1 || return 1
	tbl=$(dm table r5)
	dm load r5 --table "$tbl" && dm resume r5 || { echo "reloading the printed table failed"; return 1; }
	expect_eq "mode after the reload" "$(journal_field journal)" writeback || return 1
	dm remove r5 || return 1
	dm create r5 --table "$(journal_table writethrough)" || { echo "re-creating failed"; return 1; }
	expect_eq "replayed after a clean stop" "$(journal_field journal_replayed)" 0 || return 1
	expect_eq "mode from the new table" "$(journal_field journal)" writethrough || return 1
	fio_job wbseq --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --offset=${IO_MB}M --verify_only || return 1
	# Without a journal there is no mode to switch.
	dm remove r5 || return 1
	dm create r5 --table "$(rust44_table)" || { echo "loading without the journal (clean) failed"; return 1; }
	if dm message r5 0 journal_mode writeback 2>/dev/null; then echo "journal_mode accepted without a journal"; return 1; fi
	fio_job wbseq --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --offset=${IO_MB}M --verify_only
}

# member_delay SLOT on|off: the member's slice behind dm-delay, its writes 20 ms late and its reads
# not (so that a read can overtake a write on its way to the member), or the plain slice back.
member_delay() {
	local tbl
	if [ "$2" = on ]; then
		set -- $(slot_base "$1") "$1"
		local at=$((($2 + META_MB) * MIB_SECTORS))
		tbl="0 $DATA_SECTORS delay $1 $at 0 $1 $at 20"
		dm load "r5m$3" --table "$tbl" && dm resume "r5m$3"
	else
		dm load "r5m$1" --table "$(linear_table "$1")" && dm resume "r5m$1"
	fi
}

# Write-back answers a write once the journal holds it, before the members do: with member writes
# slowed down (dm-delay) a read right after would find the old data on the member, unless it waits
# for the engine as it must. fio reads each block back as soon as it is written.
t_journal_writeback_reads_wait() {
	local s r=0
	touch_slots j
	for s in 0 1 2 3; do
		member_delay "$s" on || { echo "dm-delay under member $s failed"; return 1; }
	done
	dm create r5 --table "$(journal_table writeback)" || return 1
	DEV=/dev/mapper/r5
	fio_job wbread --rw=randwrite --bs=4k --iodepth=8 --size=4M --verify_backlog=1 --do_verify=1 || r=1
	fio_job wbread2 --rw=write --bs=64k --iodepth=4 --size=4M --offset=8M --verify_backlog=1 --do_verify=1 || r=1
	# Write-through over the same slow members: its member writes are in the air too while the
	# next rows are read and committed.
	dm message r5 0 journal_mode writethrough || r=1
	fio_job wtread --rw=randwrite --bs=4k --iodepth=8 --size=4M --offset=16M --verify_backlog=1 --do_verify=1 || r=1
	dm remove r5 || r=1
	for s in 0 1 2 3; do
		member_delay "$s" off || r=1
	done
	return $r
}

# Reloads of a journalled array under write-back I/O (each new table takes the journal over
# from the old one once that is suspended) lose and corrupt nothing.
t_journal_reload_under_io() {
	local pid i r=0
	touch_slots j
	dm create r5 --table "$(journal_table writeback)" || return 1
	DEV=/dev/mapper/r5
	fio_job reload --rw=randwrite --bs=16k --iodepth=16 --size=${IO_MB}M --do_verify=1 \
		--time_based --runtime=$((SUSPEND_ROUNDS * 2 + 2)) --verify_backlog=256 &
	pid=$!
	sleep 1
	for i in $(seq "$SUSPEND_ROUNDS"); do
		dm load r5 --table "$(dm table r5)" || { echo "reload $i refused"; r=1; }
		dm resume r5 || { echo "resume $i failed"; r=1; }
		sleep 1
	done
	wait $pid || { echo "fio failed across reloads"; r=1; }
	expect_eq "journal state" "$(journal_field journal_state)" ok || r=1
	expect_eq "mode" "$(journal_field journal)" writeback || r=1
	return $r
}

# A journal of the smallest size (4 MiB) under several times that of writes, in each mode: the log
# wraps round its ring many times and checkpoints whenever it fills; writers wait for that, none
# fails, nothing is lost, and a reload after a clean stop replays nothing.
t_journal_full_throttles() {
	local small
	touch_slots j
	set -- $(slot_base j)
	dm create r5jsmall --table "0 8192 linear $1 $((($2 + META_MB) * MIB_SECTORS))" || return 1
	small=/dev/mapper/r5jsmall
	dm create r5 --table "$(rust44_table) journal $small writeback" || { dm remove r5jsmall; return 1; }
	DEV=/dev/mapper/r5
	local r=0
	fio_job full --rw=randwrite --bs=16k --iodepth=16 --size=$((IO_MB / 2))M --do_verify=1 || r=1
	dm message r5 0 journal_mode writethrough || r=1
	fio_job full2 --rw=write --bs=256k --iodepth=8 --size=$((IO_MB / 2))M --offset=$((IO_MB / 2))M --do_verify=1 || r=1
	expect_eq "journal state" "$(journal_field journal_state)" ok || r=1
	dm remove r5 || r=1
	dm create r5 --table "$(rust44_table) journal $small writethrough" || r=1
	expect_eq "replayed after a clean stop" "$(journal_field journal_replayed)" 0 || r=1
	fio_job full --rw=randwrite --bs=16k --iodepth=16 --size=$((IO_MB / 2))M --verify_only || r=1
	dm remove r5
	dm remove r5jsmall
	return $r
}

# Tables with a bad journal are refused with a message and change no device.
t_journal_refused() {
	local r=0 small
	touch_slots j
	set -- $(slot_base j)
	dm create r5jsmall --table "0 4096 linear $1 $((($2 + META_MB) * MIB_SECTORS))" || return 1
	small=/dev/mapper/r5jsmall
	refused "a 2 MiB journal" 'small' "$(rust44_table) journal $small writethrough" || r=1
	dm remove r5jsmall
	refused "a member as the journal" 'twice|listed' "$(rust44_table) journal $(member 2) writeback" || r=1
	refused "a mode that is not one" 'writethrough|writeback|journal' "$(rust44_table) journal $(member j) sometimes" || r=1
	refused "journal without a device" 'journal' "$(rust44_table) journal" || r=1
	refused "a member missing from a new array" 'missing' "$(journal_table writethrough 0 1 - 3)" || r=1
	# Another array's journal.
	dm create r5 --table "$(journal_table writeback)" || { echo "creating with a journal failed"; return 1; }
	dm remove r5 || return 1
	refused "another array's journal" 'another array' "$(rust44_table $CHUNK e0 e1 e2) journal $(member j) writeback" || r=1
	return $r
}

# The journal device fails: the array takes no more writes (EIO) and says so, keeps serving
# reads of what it held, and goes away cleanly.
t_journal_failure_read_only() {
	local a mark
	touch_slots j
	dm create r5 --table "$(journal_table writethrough)" || return 1
	DEV=/dev/mapper/r5
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	a=$(region_sum "$DEV" 0 "$IO_MB")
	mark=$(log_lines)
	member_errors j on || return 1
	if dd if=/dev/urandom of="$DEV" bs=64k count=4 oflag=direct 2>/tmp/r5-dd.err; then
		echo "a write went through with the journal failing"
		return 1
	fi
	echo "write: $(tail -n1 /tmp/r5-dd.err)"
	since_mark "$mark" | grep -q 'rust44-raid5: journal device .* failed.*read-only' ||
		{ echo "no message about the journal: $(since_mark "$mark" | grep rust44-raid5)"; return 1; }
	expect_eq "journal state" "$(journal_field journal_state)" failed || return 1
	member_errors j off || return 1
	# Read-only stays: a journal that failed once is not trusted again until a new table.
	if dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct 2>/dev/null; then
		echo "a write went through after the journal failed"
		return 1
	fi
	expect_eq "data after the journal failed" "$(region_sum "$DEV" 0 "$IO_MB")" "$a"
}

# '-' in a member's place: a clean array starts degraded without it, with or without its
# journal, and its data reads back through parity.
t_missing_member_degraded_start() {
	touch_slots j
	dm create r5 --table "$(journal_table writeback)" || return 1
	DEV=/dev/mapper/r5
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --do_verify=1 || return 1
	dm remove r5 || return 1
	dm create r5 --table "$(journal_table writeback 0 1 - 3)" || { echo "degraded start refused"; return 1; }
	expect_eq health "$(impl_health rust44)" AADA || return 1
	expect_eq "table" "$(dm table r5 | cut -d' ' -f8)" - || return 1
	fio_job a --rw=write --bs=1M --iodepth=8 --size=${IO_MB}M --verify_only || return 1
	fio_job b --rw=randwrite --bs=4k --iodepth=16 --size=8M --offset=${IO_MB}M --do_verify=1
}

# --- the run ---

wanted() {
	[ -n "${R5_ONLY:-}" ] || return 0
	set -f
	for _p in $R5_ONLY; do
		# shellcheck disable=SC2254
		case "$1" in $_p) set +f; return 0 ;; esac
	done
	set +f
	return 1
}

# each RUNNER TEST...: each test t_TEST of $IMPL, run by RUNNER (t: on a fresh array; tb: on
# blank members), or skipped with $SKIP.
each() {
	local runner=$1 tn
	shift
	for tn in "$@"; do
		wanted "${IMPL}_$tn" || continue
		if [ -n "$SKIP" ]; then
			ktap_skip "${IMPL}_$tn" "$SKIP"
		else
			ktap_test "${IMPL}_$tn" "$runner" "t_$tn"
		fi
	done
}

rt() {
	wanted "$1" || return 0
	ktap_test "$@"
}

ktap_begin
modprobe dm_flakey
modprobe dm_delay
make_slices || echo "# cannot make the member slices"
zero_members || echo "# cannot zero the member slices"
for IMPL in $IMPLS; do
	if [ "$IMPL" = rust44 ] && [ ! -e "$RAID5_KO" ]; then
		SKIP="raid5_journal.ko not built"
	else
		SKIP=""
		ktap_test "${IMPL}_loads" impl_load "$IMPL"
		[ -d "/sys/module/$(impl_module "$IMPL")" ] || SKIP="$(impl_module "$IMPL") did not load"
	fi
	for tn in created_in_sync fio_verify_sequential large_write_stream fio_verify_random partial_unaligned_writes \
		concurrent_writers_same_stripes degraded_read_write rebuild_onto_spare member_io_errors \
		read_errors_served_from_parity two_failed_members suspend_resume_under_io remove_while_open_refused rmmod_refused_while_used; do
		wanted "${IMPL}_$tn" || continue
		if [ -n "$SKIP" ]; then
			ktap_skip "${IMPL}_$tn" "$SKIP"
		elif [ $tn = suspend_resume_under_io ] && ! impl_has_suspend "$IMPL"; then
			ktap_skip "${IMPL}_$tn" "md has no suspend (device-mapper only)"
		else
			ktap_test "${IMPL}_$tn" t "t_$tn"
		fi
	done
	[ "$IMPL" = rust44 ] || continue
	each tb initial_resync bad_tables_refused device_in_use_refused reordered_members_refused \
		foreign_members_refused journal_modes journal_writeback_reads_wait journal_full_throttles \
		journal_reload_under_io journal_refused journal_failure_read_only missing_member_degraded_start
	each t table_round_trip status_format two_failed_read_first
	if wanted rust44_rmmod; then
		if [ -n "$SKIP" ]; then
			ktap_skip rust44_rmmod "$SKIP"
		else
			ktap_test rust44_rmmod rmmod raid5_journal
		fi
	fi
done
cleanup
ktap_end
