#!/usr/bin/env bash
# Builds every rust44 module out of tree (make -C <tree> M=<project>) against the built kernel,
# with the objects kept out of the repo (MO=).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out="$CACHE/extmod-$KERNEL"
mkdir -p "$out"
exec 9>"$CACHE/build-$KERNEL.lock"
flock 9
make -s -C "$BUILD" LLVM=-19 M="$TOP" MO="$out" -j"$(($(nproc) + 1))" modules >"$out/build.log" 2>&1 ||
	{ cat "$out/build.log"; die "out-of-tree module build failed"; }
log "extmod: $(find "$out" -name '*.ko' | wc -l) modules in $out"
