#!/usr/bin/env bash
# make trials: the long power-cut run. Each suite with a tests/<suite>/trials.conf runs TRIALS
# trials (100 unless set) in TRIALS+1 boots of one kernel (KERNEL, default 'default'); the counts
# table each prints (configuration, trials, trials with corrupt blocks, with lost blocks, trials
# with no bad block) goes to $CACHE/trials-$KERNEL/report.md, the TAP through tapsum.
#   SUITES="..." limits the suites; TRIAL_SEED repeats a run's cuts and writes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export TRIALS=${TRIALS:-100}

out="$CACHE/trials-$KERNEL"
rm -rf "$out" && mkdir -p "$out"
"$TOP/tools/kernel.sh" build
"$TOP/tools/extmod.sh"
(cd "$TOP" && cargo build --offline --quiet --release -p tapsum) || die "cannot build tools/tapsum"

suites=${SUITES:-$(cd "$TOP/tests" && for s in */trials.conf; do [ -e "$s" ] && printf '%s ' "${s%/trials.conf}"; done)}
[ -n "$suites" ] || die "no tests/*/trials.conf"
report="$out/report.md"
{
	echo "# rust44 power-cut trials"
	echo
	echo "Linux $(cat "$BUILD/include/config/kernel.release"), $(date -u +%Y-%m-%d), $(nproc) host cores, $TRIALS trials per configuration"
} >"$report"
args=()
for suite in $suites; do
	start=$SECONDS
	"$TOP/tools/vm.sh" trials "$suite" "$out/$suite"
	{
		echo
		echo "## $suite ($(cat "$out/$suite/accel"), $(cat "$out/$suite/trials"), $((SECONDS - start)) s)"
		echo
		echo "| configuration | trials | with corrupt blocks | with lost blocks | with no bad block |"
		echo "|---|---|---|---|---|"
		tr -d '\r' <"$out/$suite/results" | awk '$1 == "#" && $2 == "trial-table:" && $3 != "configuration" {
			printf "| %s | %s | %s | %s | %s |\n", $3, $4, $5, $6, $7 }'
		echo
		tr -d '\r' <"$out/$suite/results" | grep -E '^(not )?ok ' || true
	} >>"$report"
	args+=(--suite "$KERNEL/$suite=$out/$suite/results" --dmesg "$KERNEL/$suite=$out/$suite/dmesg")
done
cat "$report"
log "trials: report in $report"
"$TOP/target/release/tapsum" "${args[@]}"
