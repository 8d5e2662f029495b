#!/bin/sh
# Host-side build hook (tools/vm.sh runs it with SRC, the prepared kernel tree, and OUT, this
# suite's directory in the guest image): the upstream mlock2 kselftests, built from the tree
# against the tree's own UAPI headers (installed once next to it), as the selftests Makefile does.
# libcap is not needed: compat/sys/capability.h has the little mlock-random-test uses.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mm="$SRC/tools/testing/selftests/mm"
hdr="$(dirname "$SRC")/uapi-headers"
if [ ! -f "$hdr/stamp" ] || [ "$SRC/Makefile" -nt "$hdr/stamp" ]; then
	make -s -C "$SRC" O="$hdr/obj" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr" >&2
	touch "$hdr/stamp"
fi
for t in mlock2-tests mlock-random-test on-fault-limit; do
	gcc -static -O2 -w -I"$here/compat" -I"$SRC/tools/testing/selftests" -isystem "$hdr/include" \
		-o "$OUT/$t" "$mm/$t.c"
done
