#!/usr/bin/env bash
# make soak: the hardening suite's long run (tests/hardening with SOAK=1: each race SOAK_SECONDS,
# 300 unless set; SOAK_SEEDS fuzz seeds, 5 unless set, of tens of thousands of calls each), on
# each kernel of KERNELS ('default debug' unless set), one boot per kernel. The TAP goes through
# tapsum (dmesg-clean included); the run's seed and timings to $CACHE/soak/report.md.
#   RUST44_HARD_SEED=N replays a run's seed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export RUST44_SOAK=1
out="$CACHE/soak"
mkdir -p "$out" && rm -rf "${out:?}"/*
(cd "$TOP" && cargo build --offline --quiet --release -p tapsum) || die "cannot build tools/tapsum"
report="$out/report.md"
echo "# rust44 soak (tests/hardening, SOAK=1), $(date -u '+%Y-%m-%d %H:%M UTC')" >"$report"
args=()
for kernel in ${KERNELS:-default debug}; do
	export KERNEL=$kernel
	"$TOP/tools/kernel.sh" build
	"$TOP/tools/extmod.sh"
	start=$SECONDS
	"$TOP/tools/vm.sh" suite hardening "$out/$kernel"
	{
		echo
		echo "## $kernel kernel: $((SECONDS - start)) s under $(cat "$out/$kernel/accel")"
		echo
		tr -d '\r' <"$out/$kernel/results" | grep -E '^# hardening:|^(not )?ok ' || true
	} >>"$report"
	args+=(--suite "$kernel/hardening=$out/$kernel/results" --dmesg "$kernel/hardening=$out/$kernel/dmesg")
done
cat "$report"
log "soak: report in $report"
"$TOP/target/release/tapsum" "${args[@]}"
