#!/bin/sh
# Host-side build hook (tools/vm.sh runs it with SRC, the prepared kernel tree, and OUT, this
# suite's directory in the guest image): the tree's own SO_INCOMING_CPU and SO_REUSEPORT
# selftests, unmodified, as the baseline of the kernel behaviour the server relies on. Each
# runs in a network namespace of its own (most unshare one themselves; run.sh starts
# reuseport_addr_any in one, as the tree's in_netns.sh does).
set -eu
net="$SRC/tools/testing/selftests/net"
for t in so_incoming_cpu reuseport_bpf_cpu reuseport_dualstack reuseport_bpf reuseport_addr_any; do
	gcc -static -O2 -w -D_GNU_SOURCE -I"$SRC/tools/testing/selftests" \
		-o "$OUT/$t" "$net/$t.c" -lpthread
done
