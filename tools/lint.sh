#!/usr/bin/env bash
# rustfmt and clippy over rust44's code, with the kernel's own settings.
#   tools/lint.sh [--tap]   --tap: print one TAP result per check (make check uses this)
# The kernel-crate additions under rust/ are checked with checkpatch (as a patch series) in every
# check; clippy and rustdoc over them run in 'make lint' only (CLIPPY=1 over the tree's rust/ costs
# a rebuild of the kernel crate); modules and host crates are linted in every check.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
tap=0
[ "${1:-}" = --tap ] && tap=1
n=0 failed=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

result() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		[ $tap = 1 ] && echo "ok $n $1"
	else
		failed=$((failed + 1))
		if [ $tap = 1 ]; then
			sed 's/^/  # /' "$out/log" | head -n 40
			echo "not ok $n $1"
		else
			cat "$out/log"
			log "lint: $1 failed"
		fi
	fi
}

cd "$TOP"
[ $tap = 1 ] && echo "TAP version 13"

mapfile -t kernel_rs < <(git ls-files '*.rs' | grep -v '^tools/tapsum/')
rustfmt --edition 2021 --config-path "$SRC/.rustfmt.toml" --check "${kernel_rs[@]}" >"$out/log" 2>&1
result rustfmt-kernel-code $?

cargo fmt --all --check >"$out/log" 2>&1
result rustfmt-host-crates $?

cargo clippy --offline --workspace --all-targets --quiet -- -D warnings >"$out/log" 2>&1
result clippy-host-crates $?

# tools/rust44-bpf is a crate of its own (it links the tree's libbpf, so it is no workspace member).
{ cargo fmt --manifest-path tools/rust44-bpf/Cargo.toml --check &&
	cargo clippy --offline --locked --manifest-path tools/rust44-bpf/Cargo.toml --all-targets --quiet \
		--target-dir "$CACHE/rust44-bpf-target" -- -D warnings; } >"$out/log" 2>&1
result rust44-bpf-tool $?

# The kernel's CLIPPY=1 over every module, built out of tree in a scratch directory.
make -s -C "$BUILD" LLVM=-19 M="$TOP" MO="$out/clippy" CLIPPY=1 -j"$(($(nproc) + 1))" modules >"$out/log" 2>&1
rc=$?
grep -q -e '^warning' -e '^error' "$out/log" && rc=1
result clippy-modules $rc

# The kernel-crate additions as the patch series a maintainer would read, through checkpatch.
"$TOP/tools/series.sh" check >"$out/log" 2>&1
rc=$?
grep -q -e 'WARNING' -e 'ERROR' "$out/log" && rc=1
result checkpatch-series $rc

if [ $tap = 0 ]; then
	"${KMAKE[@]}" -s CLIPPY=1 rust/ >"$out/log" 2>&1
	rc=$?
	grep -q -e '^warning' -e '^error' "$out/log" && rc=1
	result clippy-kernel-crate $rc

	# The kernel crate's documentation, with rust44's additions, must build without warnings.
	"${KMAKE[@]}" -s rustdoc >"$out/log" 2>&1
	rc=$?
	grep -q -e '^warning' -e '^error' "$out/log" && rc=1
	result rustdoc $rc
fi

[ $tap = 1 ] && echo "1..$n"
[ $failed = 0 ]
