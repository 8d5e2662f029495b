# mm_mlock2: /dev/lockedmem, lock-on-fault memory from mmap(). First the upstream mlock2
# kselftests (built from the tree by build.sh) as the baseline that mlock2(MLOCK_ONFAULT) works on
# this kernel, then the same properties asserted on the device (lockedmem.c), then unloading.
. /rust44/ktap.sh
cd /rust44/tests/mm_mlock2 || exit 1

STATS=/sys/kernel/debug/mm_mlock2/stats

module_loads() {
	modprobe mm_mlock2 || return 1
	[ -c /dev/lockedmem ] || { echo "no /dev/lockedmem"; return 1; }
	expect_file_eq "$STATS" "regions: 0
pages_held: 0
pages_wiped: 0"
}

# The region stays while mapped, after its fd is closed; the module stays while a region does.
module_unloads_only_without_regions() {
	rm -f /tmp/hold.out
	./hold >/tmp/hold.out 2>&1 &
	pid=$!
	i=0
	while ! grep -q ready /tmp/hold.out 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat /tmp/hold.out; kill $pid; return 1; }
		sleep 0.1
	done
	grep -q '^regions: 1$' "$STATS" || { cat "$STATS"; kill $pid; return 1; }
	grep -q '^pages_held: 1$' "$STATS" || { cat "$STATS"; kill $pid; return 1; }
	if rmmod mm_mlock2 2>/dev/null; then
		echo "rmmod succeeded while a region was mapped"
		return 1
	fi
	[ -c /dev/lockedmem ] || { echo "the device went away"; return 1; }
	kill $pid
	wait $pid 2>/dev/null
	grep -q '^regions: 0$' "$STATS" || { cat "$STATS"; return 1; }
	rmmod mm_mlock2 || { echo "rmmod failed with no region left"; return 1; }
	[ ! -e /sys/module/mm_mlock2 ] && [ ! -e /dev/lockedmem ] || { echo "still loaded"; return 1; }
}

ktap_begin
# Baseline: the 4.4 syscall on this kernel (on-fault-limit must run unprivileged).
ktap_test upstream_mlock2_tests ./mlock2-tests
ktap_test upstream_mlock_random_test ./mlock-random-test
ktap_test upstream_on_fault_limit ./as_nobody ./on-fault-limit
# The device.
ktap_test module_loads module_loads
mkdir -p /tmp/lockedmem-core
echo /tmp/lockedmem-core/core >/proc/sys/kernel/core_pattern
ktap_test lockedmem ./lockedmem
ktap_test module_unloads_only_without_regions module_unloads_only_without_regions
ktap_end
