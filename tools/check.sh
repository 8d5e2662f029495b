#!/usr/bin/env bash
# The one test command (make check): host cargo tests and lint, then for each kernel (default, then
# debug: KASAN, lockdep, kmemleak) each guest suite tests/*/run.sh in its own QEMU boot (kselftests,
# with the KUnit results and the splat check taken from the kernel log).
# Prints one TAP stream ending in 'N passed, N failed'; exits non-zero on any failure.
#   KERNEL=default|debug checks one kernel only; SUITES="harness ..." limits the guest suites.
set -euo pipefail
requested=${KERNEL:-}
. "$(dirname "$0")/lib.sh"
kernels=${requested:-default debug}

out="$CACHE/check"
rm -rf "$out" && mkdir -p "$out"
args=()
tapsum="$TOP/target/release/tapsum"

log "check: host tests (cargo test)"
(cd "$TOP" && cargo build --offline --quiet --release -p tapsum) || die "cannot build tools/tapsum"
(cd "$TOP" && cargo test --offline --workspace) >"$out/cargo.txt" 2>&1 || true
args+=(--cargo "host=$out/cargo.txt")

suites=${SUITES:-$(cd "$TOP/tests" && for s in */run.sh; do printf '%s ' "${s%/run.sh}"; done)}
first=1
for kernel in $kernels; do
	export KERNEL=$kernel
	log "check: $kernel kernel and modules"
	"$TOP/tools/kernel.sh" build
	"$TOP/tools/extmod.sh"

	if [ $first = 1 ]; then
		log "check: rustfmt and clippy"
		"$TOP/tools/lint.sh" --tap >"$out/lint.tap" 2>&1 || true
		args+=(--tap "lint=$out/lint.tap")
	fi

	for suite in $suites; do
		[ -f "$TOP/tests/$suite/run.sh" ] || die "no suite tests/$suite"
		start=$SECONDS
		"$TOP/tools/vm.sh" suite "$suite" "$out/$kernel/$suite"
		log "check: $kernel/$suite: $((SECONDS - start)) s under $(cat "$out/$kernel/$suite/accel")"
		args+=(--tap "$kernel/$suite=$out/$kernel/$suite/results" --dmesg "$kernel/$suite=$out/$kernel/$suite/dmesg")
	done

	# The harness must count failures: one more boot with a failing test and a kernel report. It
	# also runs without NVMe poll queues, so the harness sees them absent when not asked for.
	if [ $first = 1 ] && [[ " $suites " == *" harness "* ]]; then
		canary="$out/$kernel/canary"
		RUST44_INJECT_FAILURE=1 NVME_POLL_QUEUES=0 "$TOP/tools/vm.sh" suite harness "$canary"
		normal=$("$tapsum" --summary-only --tap "h=$out/$kernel/harness/results" --dmesg "h=$out/$kernel/harness/dmesg" || true)
		counted=$("$tapsum" --summary-only --tap "h=$canary/results" --dmesg "h=$canary/dmesg" || true)
		# One pass fewer (dmesg-clean), two failures more; skips stay as they were.
		want="$((${normal%% passed*} - 1)) passed, 2 failed${normal#*failed}"
		if [ "$counted" = "$want" ]; then
			echo "ok 1 injected_failures_are_counted" >"$canary.tap"
		else
			echo "not ok 1 injected_failures_are_counted # counted '$counted', want '$want'" >"$canary.tap"
		fi
		args+=(--tap "$kernel/harness=$canary.tap")
	fi
	first=0
done

log "check: results in $out"
"$tapsum" "${args[@]}"
