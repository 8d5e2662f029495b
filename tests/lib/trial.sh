# Guest-side helpers of power-cut trials (tools/vm.sh trials; sourced by a trial suite's run.sh).
# The suite's run.sh runs once per boot: boot TRIAL_PHASE (0..TRIAL_LAST) first verifies trial
# TRIAL_PHASE (the load of the boot before, which was cut), unless it is boot 0, then starts trial
# TRIAL_PHASE + 1 and calls trial_cut, unless it is the last boot, which prints the TAP of every
# trial from trial_history. powercut (tests/lib/powercut.c) writes and checks.
#   trial_begin                       the acknowledgement port raw; the kernel log streamed live
#   trial_seed N CONFIG               the seed of trial N of configuration CONFIG (0..15)
#   trial_record CONFIG N WORDS...    a '# trial: CONFIG N WORDS' line for the last boot's TAP
#   trial_cut                         says the load runs, then waits for the power to go
#   trial_history                     the '# trial' lines of all earlier boots and of this one
#   trial_each FUNCTION               FUNCTION CONFIG for every configuration of $CONFIGS, side by side
#   trial_start_loads LOAD            LOAD CONFIG for every prepared one (/tmp/prepared.CONFIG), then
#                                     waits until each is ready (/tmp/ready.CONFIG) and records it
#   trial_every_boot_cut              the history shows a cut for every boot but the last
#   trial_expect_canary C N FAILED CORRUPT_TRIALS CORRUPT_BLOCKS LOST_TRIALS
#                                     the lying writer's configuration C failed every check, as it must
TRIAL_DIR=/rust44/trial
# The previous boot's acknowledgement log (its ttyS3, a file on the host that the cut left).
TRIAL_ACKS=$TRIAL_DIR/acks
TRIAL_PORT=/dev/ttyS3
TRIAL_THIS=/tmp/trial-this-boot

trial_begin() {
	: >"$TRIAL_THIS"
	stty -F "$TRIAL_PORT" raw -echo 2>/dev/null
	# A boot that is cut never reaches init's closing 'dmesg': its kernel log goes out as it is
	# written, with dmesg's timestamps (what tapsum reads), continuation lines dropped.
	if [ "$TRIAL_PHASE" != "$TRIAL_LAST" ]; then
		awk -F';' '/^ / { next } { split($1, f, ","); t = f[3]; sub(/^[^;]*;/, "")
			printf "[%5d.%06d] %s\n", t / 1000000, t % 1000000, $0; fflush() }' /dev/kmsg >&4 &
	fi
}

trial_seed() {
	echo $(((TRIAL_SEED * 1000 + $1) * 16 + $2))
}

trial_record() {
	echo "# trial: $*" | tee -a "$TRIAL_THIS"
}

# trial_cut: the host cuts the power TRIAL_CUT_MS after this line (or the guest does, with
# TRIAL_CUT=guest); a guest still up a minute later says so and stops.
trial_cut() {
	echo "# rust44-trial: load running"
	if [ "$TRIAL_CUT" = guest ]; then
		sleep "$((TRIAL_CUT_MS / 1000)).$(printf %03d $((TRIAL_CUT_MS % 1000)))"
		echo b >/proc/sysrq-trigger
	fi
	sleep 60
	echo "# trial: the power was not cut"
}

trial_history() {
	cat "$TRIAL_DIR/history" "$TRIAL_THIS" 2>/dev/null
}

# trial_each FUNCTION: FUNCTION for every configuration in $CONFIGS, side by side (a boot's time is
# mostly I/O waits and single-threaded tools), their output in order.
trial_each() {
	local c pids=""
	for c in $CONFIGS; do
		"$1" "$c" >"/tmp/out.$c" 2>&1 &
		pids="$pids $!"
	done
	# Not a bare 'wait': the kernel log's streamer runs in the background too.
	# shellcheck disable=SC2086
	wait $pids
	for c in $CONFIGS; do
		cat "/tmp/out.$c"
	done
}

# trial_start_loads LOAD: all loads start together, once every device is ready, so that the cut
# finds them all under way. LOAD CONFIG starts CONFIG's writer in the background; STARTED names
# the configurations started.
trial_start_loads() {
	local c n=600
	STARTED=""
	for c in $CONFIGS; do
		[ -e "/tmp/prepared.$c" ] && "$1" "$c" && STARTED="$STARTED $c"
	done
	for c in $STARTED; do
		while [ ! -e "/tmp/ready.$c" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
		if [ -e "/tmp/ready.$c" ]; then
			trial_record "$c" $((TRIAL_PHASE + 1)) started
		else
			trial_record "$c" $((TRIAL_PHASE + 1)) error=load
		fi
	done
}

trial_every_boot_cut() {
	local k=0 bad=0
	while [ $k -lt "$TRIAL_LAST" ]; do
		if ! grep -q "^# trial-boot: $k cut " "$TRIAL_DIR/history"; then
			echo "boot $k: $(grep "^# trial-boot: $k " "$TRIAL_DIR/history" || echo 'no record')"
			bad=1
		fi
		k=$((k + 1))
	done
	grep '^# trial-boot: ' "$TRIAL_DIR/history"
	[ $bad = 0 ]
}

# trial_expect_canary CONFIG TRIALS FAILED_CHECKS CORRUPT_TRIALS CORRUPT_BLOCKS LOST_TRIALS: every
# trial of the lying writer's configuration failed the checker, with lost blocks and exactly the
# one block overwritten before the check corrupt.
trial_expect_canary() {
	expect_eq "$1: trials the checker failed" "$3" "$2" || return 1
	expect_eq "$1: trials with corrupt blocks" "$4" "$2" || return 1
	expect_eq "$1: corrupt blocks" "$5" "$2" || return 1
	expect_eq "$1: trials with lost blocks" "$6" "$2" || return 1
}
