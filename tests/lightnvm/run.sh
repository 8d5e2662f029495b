# lightnvm: the rust44-ftl device-mapper target (lightnvm.ko from /rust44/extmod) over the suite's
# own zoned namespaces (vm.conf): nsid 3 (zone capacity = zone size) and nsid 4 (capacity 1.5 of
# 2 MiB). fio's crc32c verification of random writes of three times the capacity (the collector
# must run), on both namespaces and with both victim policies; bad tables; status and messages;
# discard and write-zeroes; flushes and FUA; reload, live table swap and suspend keeping the data;
# power cuts (every write to the device failing from one moment) during synchronous writes, then
# every acknowledged write read back; rmmod refused while a table uses the target. dmsetup is
# raid5_journal's (its build.sh brings it).
. /rust44/ktap.sh
cd /rust44/tests/lightnvm || exit 1
. ./lib.sh

KO=${FTL_KO:-/rust44/extmod/lightnvm.ko}
NAME=ftl
DEV=/dev/mapper/$NAME

# The debug kernel is many times slower: smaller tables, the same paths (the collector runs in
# each fio test there too: the writes still fill more zones than the free ones).
if [ "${KERNEL_FLAVOUR:-default}" = debug ]; then
	SMALL_MB=8
	LOOPS=6
	CUTS=${CUTS:-1}
	RELOAD_MB=4
else
	SMALL_MB=
	LOOPS=3
	CUTS=${CUTS:-3}
	RELOAD_MB=16
fi
[ "${CHECK_FULL:-0}" = 1 ] && CUTS=3

A=$(ns_dev 3)
B=$(ns_dev 4)

# field NAME: a key=value field of the target's status.
field() {
	ftl_field $NAME "$1"
}

# blank DEV: every zone reset (a fresh device for the FTL to format).
blank() {
	$BLKZONE reset "$1"
}

# written_zones DEV: zones that are not empty.
written_zones() {
	$BLKZONE report "$1" | grep -vc '(em)' || true
}

# capacity DEV [OPTS]: the FTL's capacity in sectors with these options (a probe table, which
# formats a blank device).
capacity() {
	ftl_capacity $NAME "$@"
}

# create DEV LEN [OPTS]
create() {
	local dev=$1 len=$2
	shift 2
	dm create $NAME --table "0 $len rust44-ftl $dev $*"
}

fio_job() {
	local n=$1 out=/tmp/ftl-fio.out
	shift
	$FIO --name="$n" --filename=$DEV --direct=1 --ioengine=libaio --verify=crc32c \
		--verify_fatal=1 "$@" >$out 2>&1 || {
		echo "fio $n failed:"
		grep -E 'err=|error|verify|bad' $out | head -n 20
		return 1
	}
	grep -q 'err= 0' $out || { tail -n 30 $out; return 1; }
}

log_lines() {
	dmesg | wc -l
}

# logged_since MARK PATTERN: the kernel logged PATTERN after line MARK.
logged_since() {
	dmesg | tail -n +$(($1 + 1)) | grep -q "$2"
}

cleanup() {
	dm remove $NAME 2>/dev/null
	dm remove zlin 2>/dev/null
	nullbz_remove 2>/dev/null
	return 0
}

test_load() {
	insmod "$KO" || return 1
	dm targets | grep -q '^rust44-ftl' || { dm targets; return 1; }
}

# refused TABLE PATTERN: dmsetup create fails, and the kernel says why.
refused() {
	local mark
	mark=$(log_lines)
	if dm create $NAME --table "$1" 2>/dev/null; then
		echo "accepted: $1"
		cleanup
		return 1
	fi
	# A table refused at resume (the metadata check) leaves the device without a live table.
	cleanup
	logged_since "$mark" "$2" || {
		echo "refused '$1' without '$2' in the log:"
		dmesg | tail -n 5
		return 1
	}
}

test_bad_tables_refused() {
	blank "$A" || return 1
	cap=$(capacity "$A") || return 1
	echo "capacity of nsid 3: $cap sectors"
	blank "$A" || return 1
	refused "0 8 rust44-ftl /dev/rust44/nvme-conv" "not zoned" &&
		refused "0 8 rust44-ftl" "expected <zoned_dev>" &&
		refused "0 8 rust44-ftl $A op=90" "op must be" &&
		refused "0 8 rust44-ftl $A streams=0" "streams must be" &&
		refused "0 8 rust44-ftl $A gc=fifo" "gc must be" &&
		refused "0 8 rust44-ftl $A frobnicate=1" "unknown option" &&
		refused "0 8 rust44-ftl $A op=5 op=6" "given twice" &&
		refused "0 8 rust44-ftl $A streams=6" "open/active zone limits" &&
		refused "0 $((cap + 8)) rust44-ftl $A" "longer than the FTL's capacity" &&
		refused "0 12 rust44-ftl $A" "multiple of 8" &&
		refused "0 8 rust44-ftl $A reserved=40" "too small" || return 1
	# Nothing refused wrote to the device.
	n=$(written_zones "$A")
	expect_eq "zones written by refused tables" "$n" 0 || { $BLKZONE report "$A" | head; return 1; }
	# A table made with other options than the metadata's is refused too.
	create "$A" 8 op=10 || return 1
	cleanup
	refused "0 8 rust44-ftl $A op=20" "other geometry or other options"
}

test_status_and_messages() {
	blank "$A" || return 1
	cap=$(capacity "$A") || return 1
	create "$A" "$cap" || return 1
	expect_eq capacity "$(field capacity)" "$cap" || return 1
	expect_eq zones "$(field zones)" 32 || return 1
	expect_eq open "$(field open)" 0 || return 1
	expect_eq wa "$(field wa)" 0.00 || return 1
	dm table $NAME | grep -q "streams=4 op=10 reserved=0 gc=greedy" || { dm table $NAME; return 1; }
	before=$(field checkpoints)
	dm message $NAME 0 checkpoint || return 1
	expect_eq checkpoints "$(field checkpoints)" $((before + 1)) || return 1
	dm message $NAME 0 gc || return 1
	if dm message $NAME 0 frobnicate 2>/dev/null; then
		echo "an unknown message was accepted"
		return 1
	fi
	# Writes striped over the four streams: four zones open.
	fio_job stripe --rw=write --bs=4k --size=1M --iodepth=8 || return 1
	expect_eq open "$(field open)" 4 || { dm status $NAME; return 1; }
	expect_eq host_blocks "$(field host_blocks)" 256 || return 1
	dm status $NAME
}

# fio_3x DEV [OPTS]: random writes of three times the table's length, verified after each pass;
# the collector must have run.
fio_3x() {
	local dev=$1 len
	shift
	blank "$dev" || return 1
	len=$(capacity "$dev" "$@") || return 1
	[ -n "$SMALL_MB" ] && len=$((SMALL_MB * 2048))
	create "$dev" "$len" "$@" || return 1
	fio_job randw --rw=randwrite --bsrange=4k-64k --size=$((len * 512)) --loops=$LOOPS \
		--iodepth=16 || { dm status $NAME; return 1; }
	# Throughput and the longest write (the collector runs between batches of user writes).
	grep -E 'write: IOPS|^ +clat \(' /tmp/ftl-fio.out | head -n 2
	dm status $NAME
	runs=$(field gc_runs)
	[ "${runs:-0}" -gt 0 ] || { echo "the collector never ran"; return 1; }
	# With the whole capacity in use, victims hold valid blocks: moved, so the device wrote more
	# than the host. (On the debug kernel's small table the victims may hold none.)
	wa=$(field wa)
	if [ -z "$SMALL_MB" ] && [ "${wa%%.*}${wa#*.}" -le 100 ]; then
		echo "write amplification $wa"
		return 1
	fi
}

test_fio_verify_3x_capacity() {
	fio_3x "$A"
}

test_fio_verify_zone_capacity_below_size() {
	fio_3x "$B"
}

test_fio_verify_cost_benefit() {
	fio_3x "$A" gc=cost-benefit streams=2 || return 1
	dm table $NAME | grep -q "streams=2 op=10 reserved=0 gc=cost-benefit" || { dm table $NAME; return 1; }
}

test_discard_and_write_zeroes_read_zeroes() {
	blank "$A" || return 1
	create "$A" 16384 || return 1
	dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
	dd if=/tmp/pat of=$DEV bs=1M count=4 conv=fsync 2>/dev/null || return 1
	before=$(field valid | cut -d/ -f1)
	$BLKDISCARD -o 1048576 -l 1048576 $DEV || return 1
	$BLKDISCARD -z -o 3145728 -l 524288 $DEV || return 1
	after=$(field valid | cut -d/ -f1)
	expect_eq "valid blocks after unmapping 384" "$after" $((before - 384)) || return 1
	echo 3 >/proc/sys/vm/drop_caches
	dd if=$DEV of=/tmp/back bs=1M count=4 2>/dev/null || return 1
	dd if=/dev/zero of=/tmp/zero bs=512k count=2 2>/dev/null
	cmp /tmp/back /tmp/pat -n 1048576 || { echo "first MiB differs"; return 1; }
	dd if=/tmp/back of=/tmp/part bs=1M skip=1 count=1 2>/dev/null
	cmp /tmp/part /tmp/zero || { echo "discarded MiB is not zeroes"; return 1; }
	dd if=/tmp/back of=/tmp/part bs=512k skip=4 count=2 2>/dev/null
	dd if=/tmp/pat of=/tmp/part2 bs=512k skip=4 count=2 2>/dev/null
	cmp /tmp/part /tmp/part2 || { echo "third MiB differs"; return 1; }
	dd if=/tmp/back of=/tmp/part bs=512k skip=6 count=1 2>/dev/null
	dd if=/tmp/zero of=/tmp/part2 bs=512k count=1 2>/dev/null
	cmp /tmp/part /tmp/part2 || { echo "write-zeroes range is not zeroes"; return 1; }
	# Never written: zeroes too.
	dd if=$DEV of=/tmp/part bs=512k skip=12 count=1 2>/dev/null
	cmp /tmp/part /tmp/part2 || { echo "an unwritten block is not zeroes"; return 1; }
	rm -f /tmp/pat /tmp/back /tmp/part /tmp/part2 /tmp/zero
}

test_flush_and_fua_commit() {
	blank "$A" || return 1
	create "$A" 16384 || return 1
	c0=$(field commits)
	# O_DIRECT with O_SYNC: FUA writes.
	fio_job fua --rw=randwrite --bs=4k --size=1M --sync=1 --iodepth=1 || return 1
	c1=$(field commits)
	[ "$c1" -gt "$c0" ] || { echo "FUA writes made no commit ($c0 -> $c1)"; return 1; }
	# Buffered writes and fsync: flushes.
	dd if=/dev/urandom of=$DEV bs=64k count=8 conv=fsync 2>/dev/null || return 1
	c2=$(field commits)
	[ "$c2" -gt "$c1" ] || { echo "fsync made no commit ($c1 -> $c2)"; return 1; }
	# Nothing changed since: a flush has nothing to commit.
	$BLKDISCARD -o 4M -l 4096 $DEV || return 1
	sync
	blockdev --flushbufs $DEV
	c3=$(field commits)
	blockdev --flushbufs $DEV
	expect_eq "commits of an idle flush" "$(field commits)" "$c3"
}

test_reload_swap_and_suspend_keep_data() {
	blank "$A" || return 1
	create "$A" 32768 || return 1
	fio_job fill --rw=randwrite --bs=4k --size=${RELOAD_MB}M --iodepth=16 --do_verify=0 || return 1
	dm remove $NAME || return 1
	create "$A" 32768 || return 1
	fio_job fill --rw=randwrite --bs=4k --size=${RELOAD_MB}M --iodepth=16 --verify_only || return 1
	# A live table swap: the new table loads the FTL once the old one is suspended.
	dm reload $NAME --table "0 32768 rust44-ftl $A" || return 1
	dm resume $NAME || return 1
	fio_job fill --rw=randwrite --bs=4k --size=${RELOAD_MB}M --iodepth=16 --verify_only || return 1
	dm suspend $NAME && dm resume $NAME || return 1
	fio_job more --rw=randwrite --bs=8k --size=${RELOAD_MB}M --iodepth=16 || return 1
}

# A power cut within one boot: the FTL sits on a dm-linear view of nsid 3, which is switched to
# dm-flakey failing every write (and zone operation) while a writer loops over 4 KiB blocks, each
# written and then fsync'd (a flush: acknowledged once its map change is committed),
# recording each block it started and each one acknowledged. After the view is switched back and
# the FTL loaded again (checkpoint, log, write pointers), every block reads as its last
# acknowledged write, or as the one write that was under way at the cut. Three cuts (one on the
# debug kernel).

# block_of N: 4 KiB that say N.
block_of() {
	printf '%04096d' "$1"
}

cut_writer() {
	local i=0 off
	: >/tmp/tried
	: >/tmp/acked
	while [ $i -lt 100000 ]; do
		i=$((i + 1))
		off=$(((i * 2654435761) % 2048))
		echo "$off $i" >>/tmp/tried
		block_of $i | dd of=$DEV bs=4096 seek=$off iflag=fullblock conv=fsync,notrunc 2>/dev/null ||
			return 0
		echo "$off $i" >>/tmp/acked
	done
}

cut_check() {
	local off i last_try got want n=0
	last_try=$(tail -n 1 /tmp/tried)
	# The last acknowledged value of each block.
	awk '{ v[$1] = $2 } END { for (o in v) print o, v[o] }' /tmp/acked >/tmp/expect
	while read -r off want; do
		got=$(dd if=$DEV bs=4096 skip=$off count=1 2>/dev/null | tr -d '\n' | sed 's/^0*//')
		if [ "$got" != "$want" ] && [ "$off $got" != "$last_try" ]; then
			echo "block $off reads '$got', acknowledged '$want' (last started: $last_try)"
			return 1
		fi
		n=$((n + 1))
	done </tmp/expect
	echo "$n blocks as acknowledged ($(wc -l </tmp/acked) writes acknowledged)"
	[ $n -gt 0 ] || { echo "no write was acknowledged before the cut"; return 1; }
}

test_cut_during_synchronous_writes() {
	local lin round pid
	modprobe dm-flakey 2>/dev/null
	blank "$A" || return 1
	lin="0 $((64 * 2048)) linear $A 0"
	dm create zlin --table "$lin" || return 1
	for round in $(seq 1 $CUTS); do
		create /dev/mapper/zlin 16384 || return 1
		cut_writer &
		pid=$!
		sleep $((round + 1))
		dm suspend --noflush zlin &&
			dm load zlin --table "0 $((64 * 2048)) flakey $A 0 0 1 1 error_writes" &&
			dm resume zlin || { kill $pid; return 1; }
		wait $pid
		dm remove $NAME || return 1
		dm suspend zlin && dm load zlin --table "$lin" && dm resume zlin || return 1
		create /dev/mapper/zlin 16384 || return 1
		echo 3 >/proc/sys/vm/drop_caches
		echo "cut $round:"
		cut_check || return 1
		dm remove $NAME || return 1
	done
	dm remove zlin
}

# A zoned null_blk device (configfs, memory-backed): the one emulated zoned device whose zones
# can be made read-only or offline (its zone_readonly and zone_offline attributes; QEMU's ZNS
# namespace offers no way to). 32 zones of 2 MiB, 8 open/active, no conventional zones.
NULLB_CFS=/sys/kernel/config/nullb
NZ=/dev/nullbz

nullbz_create() {
	modprobe null_blk nr_devices=0 2>/dev/null
	[ -d $NULLB_CFS ] || { echo "no $NULLB_CFS"; return 1; }
	mkdir $NULLB_CFS/nullbz || return 1
	for kv in memory_backed=1 blocksize=4096 size=64 zoned=1 zone_size=2 zone_nr_conv=0 \
		zone_max_open=8 zone_max_active=8; do
		echo "${kv#*=}" >"$NULLB_CFS/nullbz/${kv%%=*}" || { echo "null_blk: $kv refused"; return 1; }
	done
	echo 1 >$NULLB_CFS/nullbz/power || return 1
	local n=50
	while [ ! -b $NZ ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	[ -b $NZ ]
}

nullbz_remove() {
	[ -d $NULLB_CFS/nullbz ] || return 0
	echo 0 >$NULLB_CFS/nullbz/power
	rmdir $NULLB_CFS/nullbz
}

# zone_line DEV INDEX: blkzone's line for zone INDEX.
zone_line() {
	$BLKZONE report -o $(($2 * 4096)) -c 1 "$1"
}

# full_data_zone DEV: the index of the first full zone after the two metadata zones.
full_data_zone() {
	local i=2
	while [ $i -lt 32 ]; do
		zone_line "$1" $i | grep -q '(fu)' && { echo $i; return 0; }
		i=$((i + 1))
	done
	return 1
}

# whole_bytes SECTORS: the FTL's capacity rounded down to 64 KiB. fio writes whole blocks only,
# so every job here stays within it: a rewrite then covers every block another job wrote.
whole_bytes() {
	echo $(($1 * 512 / 65536 * 65536))
}

# fio over the FTL's whole capacity in 64 KiB sequential writes with crc32c headers; with
# --verify_only the same job reads everything back and checks it.
fio_whole() {
	local name=$1 sectors=$2
	shift 2
	fio_job "$name" --rw=write --bs=64k --iodepth=8 --size="$(whole_bytes "$sectors")" "$@"
}

test_failed_zones_retired() {
	local cap ro off line valid
	nullbz_create || return 1
	cap=$(capacity $NZ) || return 1
	create $NZ "$cap" || return 1
	fio_whole fill "$cap" --do_verify=0 || return 1
	dm remove $NAME || return 1

	# A read-only zone holding data: the collector's first victim; once moved out, retired,
	# and every block reads back as written.
	ro=$(full_data_zone $NZ) || { echo "no full data zone"; return 1; }
	echo $((ro * 4096)) >$NULLB_CFS/nullbz/zone_readonly || return 1
	line=$(zone_line $NZ "$ro")
	echo "$line" | grep -q '(ro)' || { echo "zone $ro not read-only: $line"; return 1; }
	create $NZ "$cap" || return 1
	dm message $NAME 0 gc || return 1
	expect_eq "retired zones after collecting the read-only one" "$(field retired)" 1 || return 1
	fio_whole check "$cap" --verify_only || return 1
	# More writes than the capacity: none goes to the retired zone.
	fio_job more --rw=randwrite --bs=16k --iodepth=16 --size="$(whole_bytes "$cap")" --io_size=$((cap * 1024)) ||
		return 1
	expect_eq "zone $ro after more writes" "$(zone_line $NZ "$ro")" "$line" || return 1
	fio_whole refill "$cap" --do_verify=0 || return 1
	dm remove $NAME || return 1
	# After the random writes, a full zone may hold only overwritten blocks. A load resets the
	# data zones holding no valid block (and the collector resets what it empties), so with no
	# write since, every full data zone left holds data.
	create $NZ "$cap" || return 1
	valid=$(field valid)
	dm remove $NAME || return 1

	# An offline zone holding data: its blocks cannot be read. The table loads without it,
	# reads of what it held fail with an I/O error (never other data), and everything
	# written again afterwards is kept; the zone is never written.
	off=$(full_data_zone $NZ) || { echo "no full data zone"; return 1; }
	[ "$off" != "$ro" ] || { echo "zone $ro reported full again"; return 1; }
	echo $((off * 4096)) >$NULLB_CFS/nullbz/zone_offline || return 1
	line=$(zone_line $NZ "$off")
	echo "$line" | grep -q '(of)' || { echo "zone $off not offline: $line"; return 1; }
	create $NZ "$cap" || return 1
	expect_eq "retired zones with the offline one" "$(field retired)" 2 || return 1
	# Its valid blocks no longer count.
	[ "${valid%/*}" -gt "$(field valid | cut -d/ -f1)" ] ||
		{ echo "zone $off held no valid block: valid ${valid%/*} before, $(field valid) after"; return 1; }
	if dd if=$DEV of=/dev/null bs=64k iflag=direct 2>/tmp/dd.err; then
		echo "the whole device read without an error, though zone $off is offline"
		return 1
	fi
	grep -q 'Input/output error' /tmp/dd.err || { cat /tmp/dd.err; return 1; }
	fio_whole again "$cap" || return 1
	dd if=$DEV of=/dev/null bs=64k iflag=direct 2>/dev/null || { echo "reads still fail after rewriting"; return 1; }
	expect_eq "zone $off after rewriting" "$(zone_line $NZ "$off")" "$line" || return 1
	dm remove $NAME
}

test_rmmod_refused_while_in_use() {
	blank "$A" || return 1
	create "$A" 8192 || return 1
	if rmmod lightnvm 2>/dev/null; then
		echo "rmmod succeeded under a table"
		return 1
	fi
	dm remove $NAME || return 1
	rmmod lightnvm || return 1
	insmod "$KO"
}

t() {
	local mark r
	mark=$(log_lines)
	"$@"
	r=$?
	cleanup
	if dmesg | tail -n +$((mark + 1)) | grep -qE 'WARNING:|BUG:|Oops|Call Trace'; then
		dmesg | tail -n +$((mark + 1)) | grep -E -A20 'WARNING:|BUG:|Oops' | head -n 40
		echo "the kernel reported the above during this test"
		r=1
	fi
	return $r
}

ktap_begin
if [ ! -f "$KO" ] || [ -z "$A" ] || [ -z "$B" ]; then
	ktap_skip lightnvm "no lightnvm.ko or no namespaces 3 and 4 (ko: $KO, ns: '$A' '$B')"
	ktap_end
	exit 0
fi
# On the debug kernel, make check runs one fio test of the three (the others take the same paths
# through the target; what differs, the zone capacity and the policy, is the FTL core's, tested
# on the host); make check-full (CHECK_FULL=1) runs them all.
light() {
	[ "${KERNEL_FLAVOUR:-default}" = debug ] && [ "${CHECK_FULL:-0}" != 1 ]
}

ktap_test load t test_load
for name in bad_tables_refused status_and_messages fio_verify_3x_capacity \
	fio_verify_zone_capacity_below_size fio_verify_cost_benefit \
	discard_and_write_zeroes_read_zeroes flush_and_fua_commit \
	reload_swap_and_suspend_keep_data cut_during_synchronous_writes failed_zones_retired \
	rmmod_refused_while_in_use; do
	# LNVM_ONLY="name..." runs only those (tools/vm.sh cmd 'LNVM_ONLY=... sh .../run.sh').
	if [ -n "${LNVM_ONLY:-}" ]; then
		case " $LNVM_ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	case "$name" in
	fio_verify_zone_capacity_below_size | fio_verify_cost_benefit)
		if light; then
			ktap_skip "$name" "debug kernel: in make check-full; the target's paths are fio_verify_3x_capacity's"
			continue
		fi
		;;
	esac
	ktap_test "$name" t "test_$name"
done
ktap_end
