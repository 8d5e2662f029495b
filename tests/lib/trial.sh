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
