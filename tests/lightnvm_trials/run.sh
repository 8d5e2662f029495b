# lightnvm_trials: rust44-ftl under power cuts (tools/vm.sh trials; README "Power-cut trials").
# QEMU's ZNS namespaces forget their write pointers when QEMU stops, so the FTLs here run on zloop
# devices (drivers/block/zloop.c: one file per zone, the write pointer is the file's size) whose
# zone files live on an ext4 file system on vdb, a trial disk that outlives the cut. zloop makes
# only what a flush covered durable (a flush syncs the file system), like a drive's volatile cache.
# Each boot verifies the trial the boot before started, then starts the next: in every
# configuration at once, a freshly formatted FTL filled with version-0 blocks takes random O_DIRECT
# writes (powercut load) until the host cuts the power. Before the load, the FTL is aged: a
# second pass writes the same version-0 data over its whole size again in random runs, so its
# zones hold stale copies and the collector runs under the load, as on a device in long use.
# The next boot builds each FTL again from its last
# checkpoint, its logs and the zones' write pointers, and checks every block against the
# acknowledgements (powercut check). Configurations:
#   fua      32 zones of 1 MiB, 4 streams, greedy collection; writes of 1-16 blocks are O_DSYNC
#            (FUA), 16 in flight
#   flush    24 zones of 2 MiB with 1 MiB capacity, 2 streams, cost-benefit collection; each
#            write (1-32 blocks) is acknowledged after an fdatasync (a flush), 8 in flight
#   canary   as fua, with a writer that acknowledges every 7th write without writing it, and one
#            block overwritten before the check: the checker must see, through the FTL, lost
#            blocks and 1 corrupt block
# The last boot prints one TAP test per configuration over all trials.
. /rust44/ktap.sh
cd /rust44/tests/lightnvm_trials || exit 1
. ./trial.sh
# dm, ftl_field and ftl_capacity.
. ../lightnvm/lib.sh

MKFS=/usr/sbin/mkfs.ext4
PC=./powercut
ZLOOP_CONTROL=/dev/zloop-control
ZONES_DISK=/dev/vdb
ZONES_DIR=/mnt/zones

CONFIGS="fua flush canary"
# How much of an FTL's size is written again before the load (powercut age), and the zloop
# devices' sizes in MiB. The debug kernel (KASAN under TCG) gets half-size devices aged once over:
# the same paths (the collector still runs under the load), a quarter of the writes.
if [ "${KERNEL_FLAVOUR:-default}" = debug ]; then
	AGE_PERCENT=${AGE_PERCENT:-100}
	ZLOOP_MB=16
	ZLOOP_FLUSH_MB=24
else
	AGE_PERCENT=${AGE_PERCENT:-200}
	ZLOOP_MB=32
	ZLOOP_FLUSH_MB=48
fi
# With this many trials or more, the collector must have run under the load in at least one.
GC_TRIALS=20

if [ -z "${TRIAL_PHASE:-}" ]; then
	ktap_begin
	ktap_skip trials "lightnvm_trials runs as power-cut trials: tools/vm.sh trials lightnvm_trials OUT"
	ktap_end
	exit 0
fi


cfg_index() {
	case "$1" in
	fua) echo 0 ;; flush) echo 1 ;; canary) echo 2 ;;
	esac
}

# The zloop device's geometry (options of zloop's 'add'), and the FTL's options.
cfg_zloop() {
	case "$1" in
	flush) echo "capacity_mb=$ZLOOP_FLUSH_MB,zone_size_mb=2,zone_capacity_mb=1" ;;
	*) echo "capacity_mb=$ZLOOP_MB,zone_size_mb=1" ;;
	esac
}

cfg_ftl_opts() {
	case "$1" in
	flush) echo "streams=2 gc=cost-benefit" ;;
	*) echo "" ;;
	esac
}

cfg_load_args() {
	case "$1" in
	fua) echo "-t 16 -l 16 -m dsync" ;;
	flush) echo "-t 8 -l 32 -m fdatasync" ;;
	canary) echo "-t 4 -n 400 -L 7 -m dsync" ;;
	esac
}

zdev() {
	echo "/dev/zloop$(cfg_index "$1")"
}

fdev() {
	echo "/dev/mapper/ftl$(cfg_index "$1")"
}

wait_dev() {
	local n=100
	while [ ! -b "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	[ -b "$1" ]
}

# zloop_add CONFIG: the zoned device over CONFIG's zone files (new ones when the directory is
# empty, else the files as the last boot left them).
zloop_add() {
	local i
	i=$(cfg_index "$1")
	mkdir -p "$ZONES_DIR/$i" || return 1
	echo "add id=$i,$(cfg_zloop "$1"),conv_zones=0,max_open_zones=8,base_dir=$ZONES_DIR" >$ZLOOP_CONTROL || return 1
	wait_dev "$(zdev "$1")"
}

zloop_remove() {
	echo "remove id=$(cfg_index "$1")" >$ZLOOP_CONTROL
}

# ftl_create CONFIG: the FTL over the whole zoned device (a blank one is formatted).
ftl_create() {
	local c=$1 z cap
	z=$(zdev "$c")
	# The capacity is known once the FTL has loaded: a probe table first.
	# shellcheck disable=SC2046
	cap=$(ftl_capacity "ftl$(cfg_index "$c")" "$z" $(cfg_ftl_opts "$c")) || return 1
	[ -n "$cap" ] || return 1
	dm create "ftl$(cfg_index "$c")" --table "0 $cap rust44-ftl $z $(cfg_ftl_opts "$c")" || return 1
	wait_dev "$(fdev "$c")"
}

status_field() {
	ftl_field "ftl$(cfg_index "$1")" "$2"
}

# verify CONFIG: trial TRIAL_PHASE of CONFIG, started by the boot before.
verify() {
	local c=$1 t=$TRIAL_PHASE seed dev out rc
	grep -qx "# trial: $c $t started" "$TRIAL_DIR/history" || return 0
	seed=$(trial_seed "$t" "$(cfg_index "$c")")
	zloop_add "$c" || { trial_record "$c" "$t" "error=zloop"; return 1; }
	ftl_create "$c" || { trial_record "$c" "$t" "error=restart"; return 1; }
	dev=$(fdev "$c")
	[ "$c" = canary ] && $PC corrupt "$dev" 5
	out=$($PC check "$dev" "$seed" "$c" "$TRIAL_ACKS")
	rc=$?
	echo "$out" | grep -v " blocks=" | sed "s/^/# trial-detail: $t /"
	trial_record "$c" "$t" "rc=$rc $(echo "$out" | grep " blocks=" | cut -d' ' -f2-)"
	dm remove "ftl$(cfg_index "$c")"
	zloop_remove "$c"
}

# prepare CONFIG: the FTL of trial TRIAL_PHASE + 1 of CONFIG, on new zone files, filled.
prepare() {
	local c=$1 t=$((TRIAL_PHASE + 1))
	rm -rf "${ZONES_DIR:?}/$(cfg_index "$c")"
	zloop_add "$c" || { trial_record "$c" "$t" "error=zloop"; return 1; }
	ftl_create "$c" || { trial_record "$c" "$t" "error=create"; return 1; }
	$PC fill "$(fdev "$c")" "$(trial_seed "$t" "$(cfg_index "$c")")" >/dev/null ||
		{ trial_record "$c" "$t" "error=fill"; return 1; }
	$PC age "$(fdev "$c")" "$(trial_seed "$t" "$(cfg_index "$c")")" $AGE_PERCENT >/dev/null ||
		{ trial_record "$c" "$t" "error=age"; return 1; }
	echo "# trial-detail: $t $c aged: $(dm status "ftl$(cfg_index "$c")" | cut -d' ' -f4-)"
	touch "/tmp/prepared.$c"
}

load() {
	local c=$1
	# shellcheck disable=SC2046
	$PC load "$(fdev "$c")" "$(trial_seed $((TRIAL_PHASE + 1)) "$(cfg_index "$c")")" "$c" "$TRIAL_PORT" \
		$(cfg_load_args "$c") -r "/tmp/ready.$c" &
}

# The collector's counters from just before the loads start until the cut: '# trial-gc: CONFIG N
# RUNS MOVED' every quarter second.
watch_gc() {
	local c t=$((TRIAL_PHASE + 1))
	while :; do
		for c in $STARTED; do
			echo "# trial-gc: $c $t $(status_field "$c" gc_runs) $(status_field "$c" gc_moved)"
		done
		sleep 0.25
	done
}


# counts CONFIG: "trials errors corrupt_trials lost_trials changed_trials failed_checks
# corrupt_blocks lost_blocks changed_blocks gc_trials" (gc_trials: trials whose collector ran
# between the load's start and the cut).
counts() {
	trial_history | awk -v c="$1" '
		function val(k,   i, kv) { for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return 0 }
		$1 == "#" && $2 == "trial:" && $3 == c && $5 ~ /^error=/ { e++ }
		$1 == "#" && $2 == "trial:" && $3 == c && $5 ~ /^rc=/ {
			n++; if (val("corrupt") > 0) ct++; if (val("lost") > 0) lt++; if (val("changed") > 0) xt++
			if (val("rc") != 0) f++; cb += val("corrupt"); lb += val("lost"); xb += val("changed") }
		$1 == "#" && $2 == "trial-gc:" && $3 == c {
			if (!($4 in first)) first[$4] = $5
			if ($5 > first[$4]) gc[$4] = 1 }
		END { for (t in gc) g++
			printf "%d %d %d %d %d %d %d %d %d %d\n", n, e, ct, lt, xt, f, cb, lb, xb, g }'
}

show_trials() {
	trial_history | grep -e "^# trial: $1 " | sed 's/^# //'
	trial_history | awk -v c="$1" '$2 == "trial-gc:" && $3 == c {
			if (!($4 in r0)) { r0[$4] = $5; m0[$4] = $6 }
			last[$4] = ($5 - r0[$4]) " runs, " ($6 - m0[$4]) " blocks moved" }
		END { for (t in last) print "trial " t ": collector under the load, before the cut: " last[t] }'
}

# expect_trials CONFIG clean|canary
expect_trials() {
	local c=$1 what=$2
	set -- $(counts "$c")
	local n=$1 errors=$2 ct=$3 lt=$4 xt=$5 failed=$6 gct=${10}
	show_trials "$c"
	echo "$c: $n trials, $ct with corrupt blocks ($7), $lt with lost blocks ($8), $xt with changed blocks ($9), $errors errors, $gct with the collector running under the load"
	echo "# trial-table: $c $n $ct $lt $((n - failed))" >>/tmp/trial-table
	expect_eq "$c: trials checked" "$n" "$TRIAL_LAST" || return 1
	expect_eq "$c: trials that failed to start or restart" "$errors" 0 || return 1
	case "$what" in
	clean)
		expect_eq "$c: trials with a bad block" "$failed" 0 || return 1
		if [ "$n" -ge $GC_TRIALS ] && [ "$gct" = 0 ]; then
			echo "$c: the collector ran under the load in none of $n trials: the trials miss it"
			return 1
		fi
		;;
	canary) trial_expect_canary "$c" "$n" "$failed" "$ct" "$7" "$lt" ;;
	esac
}


report() {
	ktap_begin
	echo "# $TRIAL_LAST power-cut trials, seed $TRIAL_SEED"
	ktap_test every_boot_was_cut trial_every_boot_cut
	ktap_test checker_flags_broken_writer expect_trials canary canary
	ktap_test ftl_fua_no_bad_block expect_trials fua clean
	ktap_test ftl_flush_no_bad_block expect_trials flush clean
	echo "# trial-table: configuration trials corrupt lost ok"
	cat /tmp/trial-table 2>/dev/null
	ktap_end
}

trial_begin
modprobe zloop || echo "# zloop did not load"
load_checkout_module lightnvm || echo "# lightnvm did not load"
[ "$TRIAL_PHASE" = 0 ] && { $MKFS -q -F "$ZONES_DISK" || echo "# mkfs.ext4 $ZONES_DISK failed"; }
mkdir -p $ZONES_DIR
mount -t ext4 "$ZONES_DISK" $ZONES_DIR || echo "# mounting $ZONES_DISK failed"
[ "$TRIAL_PHASE" -gt 0 ] && trial_each verify
if [ "$TRIAL_PHASE" -lt "$TRIAL_LAST" ]; then
	trial_each prepare
	STARTED=""
	for c in $CONFIGS; do
		[ -e "/tmp/prepared.$c" ] && STARTED="$STARTED $c"
	done
	# Its first line is the counters before the loads start.
	watch_gc &
	trial_start_loads load
	trial_cut
	exit 1
fi
report
