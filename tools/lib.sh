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

log() { printf 'rust44: %s\n' "$*" >&2; }
warn() { printf '\n*** rust44 WARNING: %s ***\n\n' "$*" >&2; }
die() { printf 'rust44: error: %s\n' "$*" >&2; exit 1; }
