# Proves the harness: the patched kernel boots, a rust44 module built in-tree and out-of-tree loads,
# works and unloads, the emulated hardware is there, the C baselines load and failures are counted.
. /rust44/ktap.sh

# The canary's second boot (tools/check.sh): a run.sh that stops before its TAP must be counted.
if [ "$INJECT_FAILURE" = early_exit ]; then
	echo "injected: run.sh exits 3 before printing any TAP"
	exit 3
fi

kernel_is_patched_7_3() {
	release=$(uname -r)
	case "$release" in
	"$KVER_WANTED"-rust44*) ;;
	*) echo "uname -r is '$release', want $KVER_WANTED-rust44*"; return 1 ;;
	esac
	grep -q "Linux version $KVER_WANTED-rust44" /proc/version || { cat /proc/version; return 1; }
}

module_is_gone() {
	[ ! -e /sys/module/rust44_selftest ] && [ ! -e /dev/rust44_selftest ]
}

intree_module_loads() {
	module_is_gone || { echo "rust44_selftest was loaded before the test"; return 1; }
	modprobe rust44_selftest || return 1
	[ -c /dev/rust44_selftest ] || { echo "no /dev/rust44_selftest"; return 1; }
	dmesg | grep -q 'rust44_selftest: loaded' || { echo "no 'loaded' message"; return 1; }
	# In-tree modules do not taint the kernel as out-of-tree ('O').
	expect_file_eq /sys/module/rust44_selftest/taint ""
}

module_unloads() {
	rmmod rust44_selftest || return 1
	module_is_gone || { echo "still there after rmmod"; return 1; }
	dmesg | grep -q 'rust44_selftest: unloaded' || { echo "no 'unloaded' message"; return 1; }
}

out_of_tree_module_works() {
	insmod /rust44/extmod/rust44_selftest.ko || return 1
	expect_file_eq /sys/module/rust44_selftest/taint "O" || return 1
	./selftest || return 1
	module_unloads
}

virtio_disks_present() {
	for disk in vda vdb; do
		# 1 GiB in 512-byte sectors
		expect_file_eq /sys/block/$disk/size 2097152 || return 1
	done
}

nvme_conventional_namespace() {
	[ -b /dev/rust44/nvme-conv ] || { echo "no /dev/rust44/nvme-conv"; return 1; }
	expect_file_eq /sys/block/$NVME_CONV/nsid 1 || return 1
	expect_file_eq /sys/block/$NVME_CONV/queue/zoned none
}

nvme_zoned_namespace_is_host_managed() {
	[ -b /dev/rust44/nvme-zns ] || { echo "no /dev/rust44/nvme-zns"; return 1; }
	expect_file_eq /sys/block/$NVME_ZNS/nsid 2 || return 1
	expect_file_eq /sys/block/$NVME_ZNS/queue/zoned host-managed || return 1
	expect_file_eq /sys/block/$NVME_ZNS/queue/nr_zones "$ZNS_ZONES" || return 1
	expect_file_eq /sys/block/$NVME_ZNS/queue/logical_block_size 4096
}

nvme_poll_queues_when_asked() {
	expect_file_eq /sys/block/$NVME_CONV/queue/io_poll "$([ "$POLL_QUEUES" -gt 0 ] && echo 1 || echo 0)" || return 1
	# virtio-blk got no poll queues: polling stays off there.
	expect_file_eq /sys/block/vda/queue/io_poll 0
}

c_baselines_load() {
	for m in loop null_blk dm-zoned raid456 dm-raid; do
		modprobe "$m" || { echo "modprobe $m failed"; return 1; }
	done
	[ -c /dev/loop-control ] || { echo "no /dev/loop-control"; return 1; }
	[ -b /dev/nullb0 ] || { echo "no /dev/nullb0"; return 1; }
	grep -q '\[raid6\]' /proc/mdstat || { cat /proc/mdstat; return 1; }
	[ -d /sys/module/dm_zoned ] && [ -d /sys/module/dm_raid ] || { echo "dm targets missing"; return 1; }
	for m in dm-raid raid456 dm-zoned null_blk loop; do
		modprobe -r "$m" || { echo "modprobe -r $m failed"; return 1; }
	done
	[ ! -e /sys/module/null_blk ] || { echo "null_blk still loaded"; return 1; }
}

# The debug kernel is only worth its time with its detectors on.
debug_detectors_active() {
	dmesg | grep -q 'KernelAddressSanitizer initialized' || { echo "KASAN is off"; return 1; }
	dmesg | grep -q 'Lock dependency validator' || { echo "lockdep is off"; return 1; }
	[ -e /sys/kernel/debug/kmemleak ] || { echo "kmemleak is off"; return 1; }
}

# The runner must report a failing test as failing and make the suite fail.
runner_reports_failure() {
	out=$( (
		. /rust44/ktap.sh
		ktap_begin
		ktap_test must_fail false
		ktap_end
		echo "end=$?"
	))
	# Shown as comments: the inner results must not count as this suite's.
	echo "$out" | grep -qx 'not ok 1 must_fail # exit=1' || { echo "$out" | sed 's/^/# /'; return 1; }
	echo "$out" | grep -qx 'end=1' || { echo "$out" | sed 's/^/# /'; return 1; }
}

ktap_begin
ktap_test kernel_is_patched_7_3 kernel_is_patched_7_3
ktap_test intree_module_loads intree_module_loads
ktap_test selftest ./selftest
ktap_test module_unloads module_unloads
ktap_test out_of_tree_module_works out_of_tree_module_works
ktap_test virtio_disks_present virtio_disks_present
ktap_test nvme_conventional_namespace nvme_conventional_namespace
ktap_test nvme_zoned_namespace_is_host_managed nvme_zoned_namespace_is_host_managed
ktap_test nvme_poll_queues_when_asked nvme_poll_queues_when_asked
ktap_test c_baselines_load c_baselines_load
ktap_test runner_reports_failure runner_reports_failure
if [ "$KERNEL_FLAVOUR" = debug ]; then
	ktap_test debug_detectors_active debug_detectors_active
else
	ktap_skip debug_detectors_active "not the debug kernel"
fi
# The canary boot (tools/check.sh counts each): a failing test, a program that printed fewer
# results than its plan and one that printed no plan (both exit 0), and kernel reports the splat
# check must catch. check.sh also expects a KUnit suite that does not exist, and its host tests
# run a test binary that aborts.
if [ "$INJECT_FAILURE" = 1 ]; then
	ktap_test injected_failure false
	ktap_test injected_short_plan printf '1..3\nok 1 first\nok 2 second\n'
	ktap_test injected_missing_plan printf 'TAP version 13\nok 1 only\n'
	echo "WARNING: CPU: 0 PID: 1 at rust44 injected report" >/dev/kmsg
	echo "rcu: INFO: rcu_sched detected stalls on CPUs/tasks: (rust44 injected report)" >/dev/kmsg
fi
ktap_end
