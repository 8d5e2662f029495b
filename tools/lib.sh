# Shared settings for rust44's scripts; sourced, not run.
# shellcheck shell=bash
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${RUST44_CACHE:-$HOME/.cache/rust44}
SRC="$CACHE/linux-7.3"
KERNEL=${KERNEL:-default}
case "$KERNEL" in
default | debug) ;;
*) echo "rust44: KERNEL must be 'default' or 'debug', not '$KERNEL'" >&2; exit 2 ;;
esac
BUILD="$CACHE/build-$KERNEL"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export PATH="$HOME/.cargo/bin:$PATH"
KMAKE=(make -C "$SRC" O="$BUILD" LLVM=-19 CC="ccache clang-19" -j"$(($(nproc) + 1))")
export CCACHE_DIR="$CACHE/ccache"

# kunit_suites_of GUEST_SUITE: the KUnit suites (one per line) that guest suite's boot runs and its
# kernel log must hold (tests/lib/kunit-suites): the built-in ones in the harness boot, a
# module's in the suites that load it. vm.sh keeps the other boots to their own, check.sh
# expects them.
kunit_suites_of() {
	awk -v s="$1" '!/^#/ && NF >= 2 { for (i = 2; i <= NF; i++) if (($i == "builtin" && s == "harness") || $i == s) { print $1; break } }' \
		"$TOP/tests/lib/kunit-suites"
}

log() { printf 'rust44: %s\n' "$*" >&2; }
warn() { printf '\n*** rust44 WARNING: %s ***\n\n' "$*" >&2; }
die() { printf 'rust44: error: %s\n' "$*" >&2; exit 1; }
