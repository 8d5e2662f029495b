#!/bin/sh
# Host-side build hook (tools/vm.sh runs it with SRC, the prepared kernel tree, and OUT, this
# suite's directory in the guest image): the tree's own SO_INCOMING_CPU and SO_REUSEPORT
# selftests, as the baseline of the kernel behaviour the server relies on. Their sources are
# unmodified; the config has no NET_NS, so their unshare(CLONE_NEWNET) is built as a no-op and
# they run in the initial namespace (run.sh restores the sysctls so_incoming_cpu sets).
set -eu
net="$SRC/tools/testing/selftests/net"
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
echo '#define unshare(flags) rust44_same_netns(flags)' >"$shim/same_netns.h"
echo 'int rust44_same_netns(int flags) { (void)flags; return 0; }' >"$shim/same_netns.c"
for t in so_incoming_cpu reuseport_bpf_cpu reuseport_dualstack; do
	gcc -static -O2 -w -D_GNU_SOURCE -include "$shim/same_netns.h" -I"$SRC/tools/testing/selftests" \
		-o "$OUT/$t" "$net/$t.c" "$shim/same_netns.c" -lpthread
done
