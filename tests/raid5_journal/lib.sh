# raid5_journal suite helpers (sourced by run.sh and bench.sh in the guest).
#
# Members: dm-linear slices of vda, vdb and the NVMe conventional namespace, so that a RAID5 spreads
# over three real (emulated) disks. Slot k has a 4 MiB metadata slice r5meta<k> (used by dm-raid
# only, for its superblock and bitmap) followed by a 128 MiB data slice r5m<k>:
#   slot 0: vda  at   0 MiB     slot 1: vdb  at   0 MiB     slot 2: nvme at   0 MiB
#   slot 3: vda  at 160 MiB     slot 4: vdb  at 160 MiB (the spare)
#   (each 132 MiB: 4 MiB metadata + 128 MiB data; slots 160 MiB apart)
#   e0: vda at 320 MiB, e1: vdb at 320 MiB, e2: nvme at 160 MiB (another array, for the
#   foreign-member tests)
#   j: nvme at 320 MiB, the journal (rust44-raid5's 'journal <dev> <mode>')
# An array is 4 members (slots 0-3), chunk 64 KiB (128 sectors), left-symmetric; members are
# zeroed (blkdiscard -z, i.e. write-zeroes) before each test, so the arrays are created without
# an initial resync (md --assume-clean, dm-raid nosync): zeroed members have consistent parity.
#
# Implementations (IMPL): dmraid (the dm 'raid' target, raid5_ls: md raid5 under device-mapper),
# md (md raid5 through mdadm) and rust44 (the rust44-raid5 dm target). Their differences live in
# the impl_* functions below.

R5DIR=/rust44/tests/raid5_journal
DMSETUP=$R5DIR/bin/dmsetup
MDADM=$R5DIR/bin/mdadm
FIO=/usr/bin/fio
BLKDISCARD=/usr/sbin/blkdiscard
BLOCKDEV=/usr/sbin/blockdev
MKFS=/usr/sbin/mkfs.ext4
# No udev in the guest: libdevmapper makes the /dev/mapper nodes itself, mdadm its /dev/mdN.
export DM_DISABLE_UDEV=1 MDADM_NO_UDEV=1
RAID5_KO=${RAID5_KO:-/rust44/extmod/raid5_journal.ko}

MIB_SECTORS=2048
META_MB=4
DATA_MB=${DATA_MB:-128}
DATA_SECTORS=$((DATA_MB * MIB_SECTORS))
CHUNK=128
NDEVS=4
SPARE=4
# rust44-raid5 keeps its superblock in the first sectors of each member: the table's length
# leaves it 1 MiB per member (ndata * (member - 1 MiB)).
RUST44_RESERVED=$MIB_SECTORS

dm() {
	$DMSETUP --noudevsync "$@"
}

nvme_dev() {
	if [ -n "${NVME_CONV:-}" ] && [ -b "/dev/$NVME_CONV" ]; then
		echo "/dev/$NVME_CONV"
	else
		echo /dev/rust44/nvme-conv
	fi
}

# slot_base NAME: "disk offset-in-MiB" of a slot. Slots are STRIDE MiB apart on a disk (bench.sh
# uses 256 MiB members and slots 0-4 only).
STRIDE=${STRIDE:-$((META_MB + DATA_MB + 28))}
slot_base() {
	case "$1" in
	0) echo "/dev/vda 0" ;;
	1) echo "/dev/vdb 0" ;;
	2) echo "$(nvme_dev) 0" ;;
	3) echo "/dev/vda $STRIDE" ;;
	4) echo "/dev/vdb $STRIDE" ;;
	e0) echo "/dev/vda $((2 * STRIDE))" ;;
	e1) echo "/dev/vdb $((2 * STRIDE))" ;;
	e2) echo "$(nvme_dev) $STRIDE" ;;
	j) echo "${JOURNAL_AT:-$(nvme_dev) $((2 * STRIDE))}" ;;
	esac
}

ALL_SLOTS=${ALL_SLOTS:-0 1 2 3 4 e0 e1 e2 j}

# linear_table SLOT: the data slice's table (also what member_errors off restores).
linear_table() {
	set -- $(slot_base "$1")
	echo "0 $DATA_SECTORS linear $1 $((($2 + META_MB) * MIB_SECTORS))"
}

# make_slices: the metadata and data slices of every slot.
make_slices() {
	local s
	for s in $ALL_SLOTS; do
		set -- $(slot_base "$s")
		dm info "r5meta$s" >/dev/null 2>&1 && dm remove "r5meta$s"
		dm info "r5m$s" >/dev/null 2>&1 && dm remove "r5m$s"
		dm create "r5meta$s" --table "0 $((META_MB * MIB_SECTORS)) linear $1 $(($2 * MIB_SECTORS))" || return 1
		dm create "r5m$s" --table "$(linear_table "$s")" || return 1
	done
}

member() {
	echo "/dev/mapper/r5m$1"
}

# member_errors SLOT on|off: dm-flakey stacked under the member's slice, down all the time (every
# read and write fails), or the plain linear slice back. The upper device does not notice the
# table switch (same device, suspended and resumed).
member_errors() {
	local s=$1 tbl
	if [ "$2" = on ]; then
		set -- $(slot_base "$s")
		tbl="0 $DATA_SECTORS flakey $1 $((($2 + META_MB) * MIB_SECTORS)) 0 1 2 error_reads error_writes"
	else
		tbl=$(linear_table "$s")
	fi
	dm load "r5m$s" --table "$tbl" && dm resume "r5m$s"
}

# zero_members [SLOT...]: write-zeroes over the data slices of the slots, and over the metadata
# slices that dm-raid used among them ("m<slot>" noted in TOUCHED); without slots, over every
# slice.
zero_members() {
	local s meta=""
	if [ $# = 0 ]; then
		set -- $ALL_SLOTS
		meta=all
	fi
	for s in "$@"; do
		if [ "$meta" = all ] || grep -qx "m$s" "$TOUCHED" 2>/dev/null; then
			$BLKDISCARD -f -z "/dev/mapper/r5meta$s" 2>/dev/null || return 1
		fi
		$BLKDISCARD -f -z "/dev/mapper/r5m$s" 2>/dev/null || return 1
	done
}

# Slots a test wrote to besides 0-3 ("m<slot>": its metadata slice), noted by the table makers
# (which run in subshells, hence a file) so that cleanup zeroes only those.
TOUCHED=/tmp/r5-touched
touch_slots() {
	printf '%s\n' "$@" >>"$TOUCHED"
}

# head_sum SLOT: checksum of the first 2 MiB of a data slice (superblocks live there).
head_sum() {
	dd if="$(member "$1")" bs=1M count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}

heads_sum() {
	local s out=""
	for s in "$@"; do
		out="$out $(head_sum "$s")"
	done
	echo "$out"
}

# region_sum DEV OFFSET_MB LEN_MB: checksum of a region read with O_DIRECT (no page cache can
# answer for a failed member).
region_sum() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s.
wait_for() {
	local n=$(($1 * 5))
	shift
	while ! "$@" 2>/dev/null; do
		n=$((n - 1))
		[ $n -le 0 ] && return 1
		sleep 0.2
	done
}

log_lines() {
	dmesg | wc -l
}

# since_mark LINES: the kernel log after its first LINES lines.
since_mark() {
	dmesg | tail -n +$(($1 + 1))
}

# kernel_reports_since LINES: WARN/BUG/Oops/call traces in the kernel log since the mark.
kernel_reports_since() {
	since_mark "$1" | grep -E 'WARNING:|BUG:|Oops|Call Trace|kernel BUG|panicked|general protection'
}

# --- the three implementations ---

impl_label() {
	case "$1" in
	dmraid) echo "dm-raid raid5_ls (C)" ;;
	md) echo "md raid5 / mdadm (C)" ;;
	rust44) echo "rust44-raid5 (rust44)" ;;
	esac
}

impl_module() {
	case "$1" in
	dmraid) echo dm_raid ;;
	md) echo raid456 ;;
	rust44) echo raid5_journal ;;
	esac
}

# impl_load IMPL: loads what the implementation needs; fails when it cannot.
impl_load() {
	case "$1" in
	dmraid) modprobe dm_raid ;;
	md) modprobe raid456 ;;
	rust44)
		[ -d /sys/module/raid5_journal ] && return 0
		insmod "$RAID5_KO"
		;;
	esac
}

impl_dev() {
	case "$1" in
	md) echo /dev/md0 ;;
	*) echo /dev/mapper/r5 ;;
	esac
}

# array_sectors IMPL [NDEVS]: the length a dm table gives the array.
array_sectors() {
	local n=${2:-$NDEVS}
	case "$1" in
	dmraid) echo $(((n - 1) * DATA_SECTORS)) ;;
	rust44) echo $(((n - 1) * (DATA_SECTORS - RUST44_RESERVED))) ;;
	esac
}

# rust44_table [CHUNK [SLOT...]]: a rust44-raid5 table over the given slots (default 0..3; '-' for a
# missing member), with
# R5_NOSYNC after the devices: 'nosync' unless set otherwise, as the members are zeroed.
R5_NOSYNC=${R5_NOSYNC- nosync}
rust44_table() {
	local chunk=${1:-$CHUNK} s devs="" n=0
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] || set -- 0 1 2 3
	for s in "$@"; do
		# '-': a missing member.
		if [ "$s" = - ]; then
			devs="$devs -"
		else
			touch_slots "$s"
			devs="$devs $(member "$s")"
		fi
		n=$((n + 1))
	done
	echo "0 $(array_sectors rust44 $n) rust44-raid5 $chunk $n$devs$R5_NOSYNC"
}

# dmraid_table [rebuild IDX] SLOT...: dm-raid's raid5_ls table (metadata slices as its metadata
# devices); new arrays are created nosync (zeroed members).
dmraid_table() {
	local params="2 $CHUNK nosync" s devs="" n=0
	if [ "$1" = rebuild ]; then
		params="3 $CHUNK rebuild $2"
		shift 2
	fi
	for s in "$@"; do
		devs="$devs /dev/mapper/r5meta$s $(member "$s")"
		n=$((n + 1))
		touch_slots "$s" "m$s"
	done
	echo "0 $(array_sectors dmraid $n) raid raid5_ls $params $n$devs"
}

# The slots of the running array, in order (kept by the tests that change them).
SLOTS="0 1 2 3"

# impl_create IMPL: a fresh 4-member array on slots 0-3.
impl_create() {
	SLOTS="0 1 2 3"
	case "$1" in
	dmraid) dm create r5 --table "$(dmraid_table $SLOTS)" ;;
	rust44) dm create r5 --table "$(rust44_table)" ;;
	md)
		$MDADM --create /dev/md0 --run --quiet --metadata=1.2 --level=5 --layout=left-symmetric \
			--chunk=$((CHUNK / 2)) --raid-devices=$NDEVS --assume-clean --bitmap=none \
			$(member 0) $(member 1) $(member 2) $(member 3) || return 1
		wait_for 10 test -b /dev/md0
		;;
	esac || return 1
	wait_for 10 test -b "$(impl_dev "$1")"
}

impl_remove() {
	case "$1" in
	md) $MDADM --stop /dev/md0 2>&1 ;;
	*) dm remove r5 ;;
	esac
}

impl_exists() {
	case "$1" in
	md) [ -e /sys/block/md0/md/level ] ;;
	*) dm info r5 >/dev/null 2>&1 ;;
	esac
}

# impl_health IMPL: one character per member, dm-raid's way: A alive and in sync, a alive and
# not in sync (being rebuilt), D failed.
impl_health() {
	case "$1" in
	md)
		local i st out=""
		for i in $(seq 0 $((NDEVS - 1))); do
			st=$(cat "/sys/block/md0/md/rd$i/state" 2>/dev/null)
			case "$st" in
			*faulty*) out="${out}D" ;;
			*in_sync*) out="${out}A" ;;
			'') out="${out}D" ;;
			*) out="${out}a" ;;
			esac
		done
		echo "$out"
		;;
	*) dm status r5 | tr ' ' '\n' | grep -m1 -E "^[ADa]{$NDEVS}\$" ;;
	esac
}

# impl_progress IMPL: resync/rebuild progress "done/total" (dm status), or md's sync_completed
# ("idle" when nothing runs).
impl_progress() {
	case "$1" in
	md)
		local a
		a=$(cat /sys/block/md0/md/sync_action)
		if [ "$a" = idle ]; then echo idle; else tr -d ' ' </sys/block/md0/md/sync_completed; fi
		;;
	*) dm status r5 | tr ' ' '\n' | grep -m1 -E '^[0-9]+/[0-9]+$' ;;
	esac
}

# impl_in_sync IMPL: every member alive and in sync, nothing running.
impl_in_sync() {
	local h p
	h=$(impl_health "$1")
	[ "$h" = "$(printf "%${NDEVS}s" | tr ' ' A)" ] || return 1
	p=$(impl_progress "$1")
	case "$1" in
	md) [ "$p" = idle ] ;;
	dmraid) [ "${p%/*}" = "${p#*/}" ] && dm status r5 | grep -q ' idle ' ;;
	rust44) [ -n "$p" ] && [ "${p%/*}" = "${p#*/}" ] && dm status r5 | grep -q ' idle ' ;;
	esac
}

# impl_fail IMPL SLOT-INDEX: the member at that index is failed by the administrator (rust44:
# 'dmsetup message r5 0 fail IDX'; md: mdadm --fail). dm-raid has no such message: its member
# gets I/O errors (dm-flakey under it) and a write across every member makes md notice.
impl_fail() {
	local dev
	dev=$(member "$(echo $SLOTS | cut -d' ' -f$(($2 + 1)))")
	case "$1" in
	rust44) dm message r5 0 fail "$2" || return 1 ;;
	md) $MDADM /dev/md0 --fail "$dev" >/dev/null 2>&1 || return 1 ;;
	dmraid)
		member_errors "$(echo $SLOTS | cut -d' ' -f$(($2 + 1)))" on || return 1
		poke_array "$1"
		;;
	esac
	wait_for 20 health_is_down "$1" "$2"
}

# poke_array IMPL: direct writes of what was there over the first 4 stripes (every member),
# so that an implementation notices a member's I/O errors.
poke_array() {
	local d
	d=$(impl_dev "$1")
	dd if="$d" of=/tmp/r5-poke bs=768k count=1 iflag=direct 2>/dev/null
	dd if=/tmp/r5-poke of="$d" bs=768k count=1 oflag=direct conv=notrunc 2>/dev/null
	sync
}

health_is_down() {
	local h
	h=$(impl_health "$1")
	[ "$(echo "$h" | cut -c$(($2 + 1)))" = D ]
}

# impl_replace IMPL IDX SPARE-SLOT: rebuild member IDX onto the spare.
#   rust44: a table with the (blank) spare listed at IDX, loaded and resumed
#   md: mdadm --remove the failed member, --add the spare (recovery starts)
#   dmraid: a table with the spare's slices at IDX and 'rebuild IDX'
impl_replace() {
	local old new_slots="" i=0 s
	old=$(echo $SLOTS | cut -d' ' -f$(($2 + 1)))
	for s in $SLOTS; do
		if [ $i = "$2" ]; then new_slots="$new_slots $3"; else new_slots="$new_slots $s"; fi
		i=$((i + 1))
	done
	case "$1" in
	rust44)
		# shellcheck disable=SC2086
		dm load r5 --table "$(rust44_table $CHUNK $new_slots)" || return 1
		dm resume r5 || return 1
		;;
	md)
		$MDADM /dev/md0 --remove "$(member "$old")" >/dev/null 2>&1 || return 1
		touch_slots "$3"
		$MDADM /dev/md0 --add "$(member "$3")" >/dev/null 2>&1 || return 1
		;;
	dmraid)
		# shellcheck disable=SC2086
		dm load r5 --table "$(dmraid_table rebuild "$2" $new_slots)" || return 1
		dm resume r5 || return 1
		;;
	esac
	SLOTS=$(echo $new_slots)
}

# impl_suspend / impl_resume: device-mapper only.
impl_has_suspend() {
	[ "$1" != md ]
}

# cleanup: no array, member slices back to linear and zeroed, no holder left.
cleanup() {
	local s i
	for i in 1 2 3 4 5 6 7 8; do
		dm info r5hold >/dev/null 2>&1 && dm remove r5hold
		dm info r5 >/dev/null 2>&1 && { dm resume r5 2>/dev/null; dm remove r5 || dm remove --force r5; }
		dm info r5jsmall >/dev/null 2>&1 && dm remove r5jsmall
		[ -e /sys/block/md0/md ] && $MDADM --stop /dev/md0 >/dev/null 2>&1
		# One dmsetup for all slices (each command costs seconds on the debug kernel).
		for s in $(dm info 2>/dev/null | awk '/^Name:/ { n = $2 } /^State: *SUSPENDED/ && n ~ /^r5m/ { print n }'); do
			dm resume "$s"
		done
		dm info r5 >/dev/null 2>&1 || break
		sleep 0.5
	done
	for s in $(dm table 2>/dev/null | awk -F': ' '$1 ~ /^r5m[0-9ej]+$/ && $2 !~ / linear / { sub(/^r5m/, "", $1); print $1 }'); do
		member_errors "$s" off
	done
	local used="0 1 2 3"
	[ -e "$TOUCHED" ] && for s in $(grep -v '^m' "$TOUCHED" | sort -u); do
		case " $used " in *" $s "*) ;; *) used="$used $s" ;; esac
	done
	# shellcheck disable=SC2086
	zero_members $used || return 1
	rm -f "$TOUCHED"
	SLOTS="0 1 2 3"
}
