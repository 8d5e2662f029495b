#!/usr/bin/env bash
# make bench: boots each tests/<suite>/bench.sh once (the C counterpart and rust44's module are
# measured in that same boot) and collects the Markdown tables they print into one report.
#   SUITES="..." limits the suites.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$CACHE/bench-$KERNEL"
rm -rf "$out" && mkdir -p "$out"
"$TOP/tools/kernel.sh" build
"$TOP/tools/extmod.sh"

suites=${SUITES:-$(cd "$TOP/tests" && for s in */bench.sh; do [ -e "$s" ] && printf '%s ' "${s%/bench.sh}"; done)}
[ -n "$suites" ] || die "no tests/*/bench.sh yet"
report="$out/report.md"
{
	echo "# rust44 benchmarks"
	echo
	echo "Linux $(cat "$BUILD/include/config/kernel.release"), $(date -u +%Y-%m-%d), $(nproc) host cores"
} >"$report"
failed=0
for suite in $suites; do
	SCRIPT=bench.sh VM_TIMEOUT=${VM_TIMEOUT:-3600} "$TOP/tools/vm.sh" suite "$suite" "$out/$suite"
	status=$(cat "$out/$suite/status")
	{
		echo
		echo "## $suite ($(cat "$out/$suite/accel"))"
		echo
		grep -av '^# rust44-exit: ' "$out/$suite/results" || true
	} >>"$report"
	[ "$status" = 0 ] || { log "bench: $suite failed (status $status); console: $out/$suite/console.log"; failed=1; }
done
cat "$report"
log "bench: report in $report"
exit $failed
