#!/usr/bin/env bash
# The one test command (make check): host cargo tests, then each guest suite tests/*/run.sh in its
# own QEMU boot (kselftests, with the KUnit results and splat check taken from the kernel log).
# Prints one TAP stream ending in 'N passed, N failed'; exits non-zero on any failure.
#   SUITES="harness ..." limits the guest suites; KERNEL=debug uses the debug kernel.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$CACHE/check-$KERNEL"
rm -rf "$out" && mkdir -p "$out"
args=()

log "check: host tests (cargo test)"
(cd "$TOP" && cargo build --offline --quiet --release -p tapsum) || die "cannot build tools/tapsum"
(cd "$TOP" && cargo test --offline --workspace) >"$out/cargo.txt" 2>&1 || true
args+=(--cargo "host=$out/cargo.txt")

log "check: kernel ($KERNEL) and modules"
"$TOP/tools/kernel.sh" build
"$TOP/tools/extmod.sh"

log "check: rustfmt and clippy"
"$TOP/tools/lint.sh" --tap >"$out/lint.tap" 2>&1 || true
args+=(--tap "lint=$out/lint.tap")

suites=${SUITES:-$(cd "$TOP/tests" && for s in */run.sh; do printf '%s ' "${s%/run.sh}"; done)}
for suite in $suites; do
	[ -f "$TOP/tests/$suite/run.sh" ] || die "no suite tests/$suite"
	start=$SECONDS
	"$TOP/tools/vm.sh" suite "$suite" "$out/$suite"
	log "check: suite $suite: $((SECONDS - start)) s under $(cat "$out/$suite/accel")"
	args+=(--tap "$suite=$out/$suite/results" --dmesg "$suite=$out/$suite/dmesg")
done

# The harness must count failures: one more boot with a failing test and a kernel report. It also
# runs without NVMe poll queues, so the harness sees them absent when not asked for.
if [[ " $suites " == *" harness "* ]]; then
	RUST44_INJECT_FAILURE=1 NVME_POLL_QUEUES=0 "$TOP/tools/vm.sh" suite harness "$out/canary"
	tapsum="$TOP/target/release/tapsum"
	normal=$("$tapsum" --summary-only --tap "h=$out/harness/results" --dmesg "h=$out/harness/dmesg" || true)
	counted=$("$tapsum" --summary-only --tap "h=$out/canary/results" --dmesg "h=$out/canary/dmesg" || true)
	passed=${normal%% passed*}
	want="$((passed - 1)) passed, 2 failed"
	if [ "$counted" = "$want" ]; then
		echo "ok 1 injected_failures_are_counted" >"$out/canary.tap"
	else
		echo "not ok 1 injected_failures_are_counted # counted '$counted', want '$want'" >"$out/canary.tap"
	fi
	args+=(--tap "harness=$out/canary.tap")
fi

log "check: results in $out"
"$TOP/target/release/tapsum" "${args[@]}"
