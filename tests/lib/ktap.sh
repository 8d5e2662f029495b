# Guest-side helpers for tests/*/run.sh: print kselftest-style TAP on stdout.
#   ktap_begin; ktap_test NAME CMD...; ktap_skip NAME REASON; ktap_end
# Each test's output is indented under its result, so tapsum counts its subtests (a kselftest
# program) or the test itself (a shell check). Failing shell checks print what they saw.

KTAP_N=0
KTAP_FAILED=0

ktap_begin() {
	echo "TAP version 13"
}

ktap_uptime_ms() {
	awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

# ktap_test NAME CMD...: runs CMD; ok when it exits 0.
ktap_test() {
	# The clock's names are ktap's own: a test's function sees (and may set) these locals.
	local name=$1 log rc ktap_start_ms ktap_end_ms
	shift
	KTAP_N=$((KTAP_N + 1))
	log=$(mktemp /tmp/ktap.XXXXXX)
	ktap_start_ms=$(ktap_uptime_ms)
	"$@" >"$log" 2>&1
	rc=$?
	ktap_end_ms=$(ktap_uptime_ms)
	sed 's/^/  /' "$log"
	rm -f "$log"
	# Where make check's time goes (tools/check.sh lists the slowest tests).
	echo "  # duration_ms: $((ktap_end_ms - ktap_start_ms))"
	if [ $rc -eq 0 ]; then
		echo "ok $KTAP_N $name"
	elif [ $rc -eq 4 ]; then
		# kselftest's KSFT_SKIP
		echo "ok $KTAP_N $name # SKIP exit=4"
	else
		KTAP_FAILED=$((KTAP_FAILED + 1))
		echo "not ok $KTAP_N $name # exit=$rc"
	fi
}

ktap_skip() {
	KTAP_N=$((KTAP_N + 1))
	echo "ok $KTAP_N $1 # SKIP $2"
}

ktap_end() {
	echo "1..$KTAP_N"
	[ $KTAP_FAILED -eq 0 ]
}

# expect_eq WHAT GOT WANTED: a check with a message that says what differed.
expect_eq() {
	if [ "$2" != "$3" ]; then
		echo "$1: got '$2', want '$3'"
		return 1
	fi
}

# expect_file_eq FILE WANTED
expect_file_eq() {
	expect_eq "$1" "$(cat "$1" 2>&1)" "$2"
}

# load_checkout_module NAME [PARAM=VALUE...]: loads rust44's module NAME as built out of tree
# from this checkout when the guest has it (tools/extmod.sh, which make check runs), else the
# kernel's own, with the parameters given.
load_checkout_module() {
	_lcm=$1
	shift
	if [ -f "/rust44/extmod/$_lcm.ko" ]; then
		insmod "/rust44/extmod/$_lcm.ko" "$@"
	else
		modprobe "$_lcm" "$@"
	fi
}
