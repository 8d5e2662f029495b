# raid5_trials: the RAID5 write hole, by power cuts (tools/vm.sh trials; README "Power-cut
# trials"). Each boot verifies the trial the boot before it started and then starts the next:
# in every configuration at once, on its own dm-linear slices, a fresh array filled with version-0
# blocks takes random partial-stripe O_DIRECT writes (powercut load, 32 in flight) until the host
# cuts the power. The next boot starts each array with one member missing (chosen by the trial's
# seed) and checks every block against the acknowledgements (powercut check). Configurations:
#   linear   one slice, no RAID: the harness itself loses nothing acknowledged (0 bad blocks)
#   canary   one slice, a writer that acknowledges every 7th write without writing it, and one
#            block overwritten before the check: the checker must see lost blocks and 1 corrupt
#   md       md raid5 without a journal, started with --run --force (a dirty degraded start): the
#            write hole (corrupt blocks) may show; nothing else may
#   mdj      md raid5 with --write-journal (write-through): no bad block
#   r44wt, r44wb   rust44-raid5 with its journal, writethrough and writeback, started with '-' in
#            the missing member's slot (a degraded start after a crash): no bad block
# The last boot prints one TAP test per configuration over all trials.
. /rust44/ktap.sh
cd /rust44/tests/raid5_trials || exit 1
. ./trial.sh

DMSETUP=./bin/dmsetup
MDADM=./bin/mdadm
BLKDISCARD=/usr/sbin/blkdiscard
PC=./powercut
export DM_DISABLE_UDEV=1 MDADM_NO_UDEV=1

CONFIGS="linear canary md mdj r44wt r44wb"
MEMBER_MB=8
JOURNAL_MB=16
CHUNK_KB=16
# With this many trials or more, md without a journal must have shown the hole at least once.
HOLE_TRIALS=20

if [ -z "${TRIAL_PHASE:-}" ]; then
	ktap_begin
	ktap_skip trials "raid5_trials runs as power-cut trials: tools/vm.sh trials raid5_trials OUT"
	ktap_end
	exit 0
fi

dm() {
	$DMSETUP --noudevsync "$@"
}

nvme_dev() {
	if [ -n "${NVME_CONV:-}" ] && [ -b "/dev/$NVME_CONV" ]; then echo "/dev/$NVME_CONV"; else echo /dev/rust44/nvme-conv; fi
}

# Configuration number I has a 64 MiB band at I * 64 MiB of each disk; its slices (dm-linear,
# /dev/mapper/pc<I><slot>): members m0 vda, m1 vdb, m2 nvme, m3 vda, and for rust44 the journal j
# on nvme.
cfg_index() {
	case "$1" in
	linear) echo 0 ;; canary) echo 1 ;; md) echo 2 ;; mdj) echo 3 ;; r44wt) echo 4 ;; r44wb) echo 5 ;;
	esac
}

cfg_slots() {
	case "$1" in
	linear | canary) echo m0 ;;
	md) echo m0 m1 m2 m3 ;;
	*) echo m0 m1 m2 m3 j ;;
	esac
}

slice() {
	echo "/dev/mapper/pc$(cfg_index "$1")$2"
}

make_slices() {
	local c i s disk off size
	for c in $CONFIGS; do
		i=$(cfg_index "$c")
		for s in $(cfg_slots "$c"); do
			case "$s" in
			m0) disk=/dev/vda off=0 ;; m1) disk=/dev/vdb off=0 ;; m2) disk=$(nvme_dev) off=0 ;;
			m3) disk=/dev/vda off=16 ;; j) disk=$(nvme_dev) off=16 ;;
			esac
			size=$MEMBER_MB
			[ "$s" = j ] && size=$JOURNAL_MB
			dm create "pc$i$s" --table "0 $((size * 2048)) linear $disk $(((i * 64 + off) * 2048))" || return 1
		done
	done
}

members() {
	local c=$1 skip=${2:--1} repl=${3:-} k out=""
	for k in 0 1 2 3; do
		if [ "$k" = "$skip" ]; then
			[ -n "$repl" ] && out="$out $repl"
		else
			out="$out $(slice "$c" m$k)"
		fi
	done
	echo "$out"
}

rust44_table() {
	local c=$1 devs=$2 sync=$3 mode sectors stripe
	[ "$c" = r44wt ] && mode=writethrough
	[ "$c" = r44wb ] && mode=writeback
	stripe=$((3 * CHUNK_KB * 2))
	sectors=$((3 * (MEMBER_MB * 2048 - 2048) / stripe * stripe))
	echo "0 $sectors rust44-raid5 $((CHUNK_KB * 2)) 4$devs$sync journal $(slice "$c" j) $mode"
}

cfg_dev() {
	case "$1" in
	linear | canary) slice "$1" m0 ;;
	md | mdj) echo "/dev/md$(cfg_index "$1")" ;;
	*) echo "/dev/mapper/pc$(cfg_index "$1")" ;;
	esac
}

wait_dev() {
	local n=50
	while [ ! -b "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	[ -b "$1" ]
}

# cfg_create CONFIG: a fresh array over zeroed slices (consistent parity, so no resync).
cfg_create() {
	local c=$1 s
	for s in $(cfg_slots "$c"); do
		$BLKDISCARD -f -z "$(slice "$c" "$s")" 2>/dev/null || return 1
	done
	case "$c" in
	md | mdj)
		# shellcheck disable=SC2046
		$MDADM --create "$(cfg_dev "$c")" --run --quiet --metadata=1.2 --level=5 --layout=left-symmetric \
			--chunk=$CHUNK_KB --raid-devices=4 --assume-clean --bitmap=none \
			$([ "$c" = mdj ] && echo --write-journal "$(slice "$c" j)") $(members "$c") || return 1
		;;
	r44*) dm create "pc$(cfg_index "$c")" --table "$(rust44_table "$c" "$(members "$c")" " nosync")" || return 1 ;;
	esac
	wait_dev "$(cfg_dev "$c")"
}

# cfg_restart CONFIG MISSING: the array after the cut with member MISSING absent: md assembled
# from the others (--force: a dirty degraded array), rust44 with '-' in its slot.
cfg_restart() {
	local c=$1 m=$2
	case "$c" in
	md | mdj)
		# shellcheck disable=SC2046
		$MDADM --assemble "$(cfg_dev "$c")" --run --force $(members "$c" "$m") \
			$([ "$c" = mdj ] && slice "$c" j) || return 1
		;;
	r44*) dm create "pc$(cfg_index "$c")" --table "$(rust44_table "$c" "$(members "$c" "$m" -)" "")" || return 1 ;;
	esac
	wait_dev "$(cfg_dev "$c")"
}

cfg_stop() {
	case "$1" in
	md | mdj) $MDADM --stop "$(cfg_dev "$1")" >/dev/null 2>&1 ;;
	r44*) dm remove "pc$(cfg_index "$1")" ;;
	esac
}

cfg_load_args() {
	case "$1" in
	linear) echo "-t 8 -l 4" ;;
	canary) echo "-t 4 -n 400 -L 7" ;;
	*) echo "-t 32 -l 2" ;;
	esac
}

# verify CONFIG: trial TRIAL_PHASE of CONFIG, started by the boot before.
verify() {
	local c=$1 t=$TRIAL_PHASE seed m dev out rc
	grep -qx "# trial: $c $t started" "$TRIAL_DIR/history" || return 0
	seed=$(trial_seed "$t" "$(cfg_index "$c")")
	# Not m1 (vdb, the slow disk): its queued writes make the inconsistent stripes, which the
	# other members' blocks (rebuilt through parity) show.
	set -- 0 2 3
	shift $(((seed / 16) % 3))
	m=$1
	cfg_restart "$c" "$m" || { trial_record "$c" "$t" "error=restart"; return 1; }
	dev=$(cfg_dev "$c")
	[ "$c" = canary ] && $PC corrupt "$dev" 5
	out=$($PC check "$dev" "$seed" "$c" "$TRIAL_ACKS")
	rc=$?
	echo "$out" | grep -v " blocks=" | sed "s/^/# trial-detail: $t missing=$m /"
	trial_record "$c" "$t" "rc=$rc missing=$m $(echo "$out" | grep " blocks=" | cut -d' ' -f2-)"
	cfg_stop "$c"
}

# prepare CONFIG: the device of trial TRIAL_PHASE + 1 of CONFIG, filled (/tmp/prepared.CONFIG).
prepare() {
	local c=$1 t=$((TRIAL_PHASE + 1))
	cfg_create "$c" || { trial_record "$c" "$t" "error=create"; return 1; }
	$PC fill "$(cfg_dev "$c")" "$(trial_seed "$t" "$(cfg_index "$c")")" >/dev/null ||
		{ trial_record "$c" "$t" "error=fill"; return 1; }
	touch "/tmp/prepared.$c"
}

# load CONFIG: its writer, in the background (/tmp/ready.CONFIG after its first 64 acks).
load() {
	local c=$1
	# shellcheck disable=SC2046
	$PC load "$(cfg_dev "$c")" "$(trial_seed $((TRIAL_PHASE + 1)) "$(cfg_index "$c")")" "$c" "$TRIAL_PORT" \
		$(cfg_load_args "$c") -r "/tmp/ready.$c" &
}


# The last boot's TAP: one test per configuration over every trial's '# trial: CONFIG N ...' line.
# counts CONFIG: "trials errors corrupt_trials lost_trials changed_trials failed_checks
# corrupt_blocks lost_blocks changed_blocks bad_blocks_at_rest".
counts() {
	trial_history | awk -v c="$1" '
		function val(k,   i, kv) { for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return 0 }
		$1 == "#" && $2 == "trial:" && $3 == c && $5 ~ /^error=/ { e++ }
		$1 == "#" && $2 == "trial:" && $3 == c && $5 ~ /^rc=/ {
			n++; if (val("corrupt") > 0) ct++; if (val("lost") > 0) lt++; if (val("changed") > 0) xt++
			if (val("rc") != 0) f++; cb += val("corrupt"); lb += val("lost"); xb += val("changed")
			rb += val("at_rest") }
		END { printf "%d %d %d %d %d %d %d %d %d %d\n", n, e, ct, lt, xt, f, cb, lb, xb, rb }'
}

show_trials() {
	trial_history | grep -e "^# trial: $1 " -e "^# trial-detail: .* $1 " | sed 's/^# //'
}

# expect_trials CONFIG WHAT: every trial of CONFIG was checked; WHAT is clean (no bad block), hole
# (only corrupt blocks allowed; with HOLE_TRIALS or more trials at least one corrupt) or canary.
expect_trials() {
	local c=$1 what=$2
	set -- $(counts "$c")
	local n=$1 errors=$2 ct=$3 lt=$4 xt=$5 failed=$6
	show_trials "$c"
	echo "$c: $n trials, $ct with corrupt blocks ($7), $lt with lost blocks ($8), $xt with changed blocks ($9), $errors errors; ${10} bad blocks had no write in flight"
	echo "# trial-table: $c $n $ct $lt $((n - failed))" >>/tmp/trial-table
	expect_eq "$c: trials checked" "$n" "$TRIAL_LAST" || return 1
	expect_eq "$c: trials that failed to start or restart" "$errors" 0 || return 1
	case "$what" in
	clean) expect_eq "$c: trials with a bad block" "$failed" 0 ;;
	hole)
		expect_eq "$c: trials with lost blocks" "$lt" 0 || return 1
		expect_eq "$c: trials with changed blocks" "$xt" 0 || return 1
		if [ "$n" -ge $HOLE_TRIALS ] && [ "$ct" = 0 ]; then
			echo "$c: no trial of $n showed the write hole: the trial does not see it"
			return 1
		fi
		;;
	canary) trial_expect_canary "$c" "$n" "$failed" "$ct" "$7" "$lt" ;;
	esac
}


report() {
	ktap_begin
	echo "# $TRIAL_LAST power-cut trials, seed $TRIAL_SEED"
	ktap_test checker_refuses_rebuilt_and_torn_blocks $PC selftest
	ktap_test every_boot_was_cut trial_every_boot_cut
	ktap_test linear_loses_nothing expect_trials linear clean
	ktap_test checker_flags_broken_writer expect_trials canary canary
	ktap_test md_nojournal_only_the_write_hole expect_trials md hole
	ktap_test md_journal_no_bad_block expect_trials mdj clean
	ktap_test rust44_wt_no_bad_block expect_trials r44wt clean
	ktap_test rust44_wb_no_bad_block expect_trials r44wb clean
	echo "# trial-table: configuration trials corrupt lost ok"
	cat /tmp/trial-table 2>/dev/null
	ktap_end
}

trial_begin
modprobe raid456 || echo "# raid456 did not load"
load_checkout_module raid5_journal || echo "# raid5_journal did not load"
make_slices || echo "# making the slices failed"
[ "$TRIAL_PHASE" -gt 0 ] && trial_each verify
if [ "$TRIAL_PHASE" -lt "$TRIAL_LAST" ]; then
	trial_each prepare
	trial_start_loads load
	trial_cut
	exit 1
fi
report
