#!/bin/busybox sh
# /init of the rust44 guest. Channels: ttyS0 console, ttyS1 results (TAP or command output, ending
# with "# rust44-exit: N"), ttyS2 the kernel log at the end. /rust44/run.conf says what to do.
/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug
mount -t configfs configfs /sys/kernel/config
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname rust44
# Exported: suites read it too.
set -a
. /rust44/run.conf
set +a

# NVMe namespaces are probed in parallel, so nvme0n1 may be either: name them by namespace ID.
# NVME_CONV (nsid 1, conventional) and NVME_ZNS (nsid 2, zoned) hold the disk names, with links
# /dev/rust44/nvme-conv and /dev/rust44/nvme-zns.
mkdir -p /dev/rust44
for ns in /sys/block/nvme*; do
	[ -e "$ns/nsid" ] || continue
	case "$(cat "$ns/nsid")" in
	1) NVME_CONV=${ns##*/} ;;
	2) NVME_ZNS=${ns##*/} ;;
	esac
done
export NVME_CONV NVME_ZNS
[ -n "$NVME_CONV" ] && ln -s "/dev/$NVME_CONV" /dev/rust44/nvme-conv
[ -n "$NVME_ZNS" ] && ln -s "/dev/$NVME_ZNS" /dev/rust44/nvme-zns

stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
exec 3>/dev/ttyS1 4>/dev/ttyS2

# The debug kernel's kmemleak scans only when asked (a suite's scans, finish's). Verbose, each scan
# prints the report of every leak it finds (backtrace included) to the kernel log, where tapsum
# fails dmesg-clean on it (or, for a leak a suite declared known, checks its backtrace).
if [ -w /sys/module/kmemleak/parameters/verbose ]; then
	echo 1 >/sys/module/kmemleak/parameters/verbose
fi

finish() {
	# Leaks found now land in the kernel log (verbose, above). Copying the kmemleak file there
	# instead does not work: /dev/kmsg refuses a write(2) of more than 1024 bytes.
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan >/sys/kernel/debug/kmemleak
	fi
	dmesg >&4
	echo "# rust44-exit: $1" >&3
	sync
	poweroff -f
}

# Loads every rust44 module built in-tree; prints what could not be loaded.
load_rust44_modules() {
	for ko in $(find /lib/modules/"$(uname -r)"/kernel/drivers/rust44 -name '*.ko' 2>/dev/null); do
		name=$(basename "$ko" .ko)
		modprobe "$name" || echo "rust44: could not load $name" >&2
	done
}

status() {
	echo "kernel: $(uname -r) ($(uname -v)), $ACCEL, $(grep -c ^processor /proc/cpuinfo) CPUs"
	echo "modules: $(lsmod | awk 'NR > 1 { printf "%s ", $1 }')"
	echo "block: $(ls /sys/block | tr '\n' ' ')"
	echo "nvme: conventional $NVME_CONV (io_poll $(cat /sys/block/$NVME_CONV/queue/io_poll 2>/dev/null)), zoned $NVME_ZNS ($(cat /sys/block/$NVME_ZNS/queue/zoned 2>/dev/null), $(cat /sys/block/$NVME_ZNS/queue/nr_zones 2>/dev/null) zones)"
	echo "drm: $(ls /dev/dri 2>/dev/null | tr '\n' ' ')"
}

case "$MODE" in
probe)
	finish 0
	;;
shell)
	load_rust44_modules
	status
	echo "rust44: root shell; 'exit' powers off"
	setsid cttyhack sh -l
	finish 0
	;;
cmd)
	load_rust44_modules
	status | sed 's/^/# status: /' >&3
	sh -c "$CMD" >&3 2>&1
	finish $?
	;;
suite)
	# SUITE may name several suites that share this boot (tools/vm.sh suites): each one's TAP then
	# follows a '# rust44-suite: NAME' line and ends with its own '# rust44-exit: N', and its part
	# of the kernel log follows 'rust44: suite NAME starts'. kmemleak scans after each suite, as
	# finish does after the last, so that the leaks reported in a suite's part are its own.
	set -- $SUITE
	if [ $# = 1 ]; then
		cd "/rust44/tests/$SUITE" || finish 1
		sh "./$SCRIPT" >&3 2>&1
		finish $?
	fi
	while [ $# -gt 0 ]; do
		echo "# rust44-suite: $1" >&3
		echo "rust44: suite $1 starts" >/dev/kmsg
		rc=0
		(cd "/rust44/tests/$1" && SUITE=$1 && sh "./$SCRIPT") >&3 2>&1 || rc=$?
		[ $# = 1 ] && finish $rc
		if [ -w /sys/kernel/debug/kmemleak ]; then
			echo scan >/sys/kernel/debug/kmemleak
		fi
		echo "# rust44-exit: $rc" >&3
		shift
	done
	;;
*)
	echo "rust44: unknown MODE '$MODE'" >&3
	finish 2
	;;
esac
