# loop_dio: the loop block driver's ABI, asserted on each driver in ${LOOP_DRIVERS:-loop loop_dio}
# in one boot: the C driver (loop.ko) first, as the reference, then rust44's drop-in replacement.
# Per driver: load it, the raw-ioctl kselftest (loop_ioctl, backing files on ext4 and on tmpfs),
# util-linux losetup, a file system on a loop device, partitions, many devices set up and torn
# down at once, fio data verification over ext4 on virtio-blk and on NVMe in buffered and direct
# mode, the backing file's page cache under direct I/O, then unloading. loop_dio runs with its
# defaults (direct I/O tried inline from queue_rq), with the inline tests, then once more with
# inline_dio=0 (the worker pass: every request on its worker). A driver whose module is not
# built is skipped with the reason. Test names start with the driver: loop_*, loop_dio_*.
. /rust44/ktap.sh
cd /rust44/tests/loop_dio || exit 1
HERE=$PWD

LOSETUP=/usr/sbin/losetup
FIO=/usr/bin/fio
MKFS=/usr/sbin/mkfs.ext4
E2FSCK=/usr/sbin/e2fsck
BLOCKDEV=/usr/sbin/blockdev
LSBLK=/usr/bin/lsblk
BLKDISCARD=/usr/sbin/blkdiscard
# Both drivers on the default kernel (C loop as the reference, in the same boot); the debug
# kernel, there for its reports (KASAN, lockdep, kmemleak) on rust44's code, runs loop_dio only.
if [ "${KERNEL_FLAVOUR:-default}" = debug ]; then
	DRIVERS=${LOOP_DRIVERS:-loop_dio}
else
	DRIVERS=${LOOP_DRIVERS:-loop loop_dio}
fi
# The backing file systems: ext4 on virtio-blk and on the NVMe conventional namespace.
VDB=/mnt/vdb
NVME=/mnt/nvme
# Sizes: enough for every path a test asserts, not more (volume is make bench's). A fio job at
# 4 KiB and iodepth 16 needs far fewer than FIO_SIZE's 4096 I/Os (1M: 256) to keep the queue full
# and to reach each part of the file mapping; queues_past_depth splits FS_FIO_SIZE into two jobs
# of iodepth 32 on a queue of depth 4; iopoll_fio_verify_nvme asserts fewer than one NVMe
# interrupt per 32 polled I/Os, and ext4's journal on the same NVMe raises some in any case (the
# debug kernel: 4 in 2048 polled I/Os at 4M, 7 in 1024 at 2M, whose bound is 16: too close, so 4M
# stays there); the footprint test asserts a quarter of the backing file cached without direct
# I/O and at most 16 pages with it (of 4096 at 16 MiB). The debug kernel (KASAN, lockdep) is some
# 20 times slower, and is there for its reports, not for volume; there each fio run costs
# seconds whatever its size, and each mode is verified on one of the two file systems.
LIGHT=""
if [ "${KERNEL_FLAVOUR:-default}" = debug ]; then
	LIGHT=1
	FIO_SIZE=${FIO_SIZE:-1M}
	FOOTPRINT_MB=8
	FS_FIO_SIZE=4M
	WORKER_ROUNDS=5
	RACE_SECONDS=5
else
	FIO_SIZE=${FIO_SIZE:-16M}
	FOOTPRINT_MB=16
	FS_FIO_SIZE=8M
	WORKER_ROUNDS=20
	RACE_SECONDS=3
fi
# A test that found a task hung in the driver leaves this: nothing after it can unbind safely.
HUNG=/tmp/loop-hung
# Load parameters of loop_dio's pass: none (inline direct I/O, the default), then inline_dio=0
# (every request on the worker) for the worker pass; tests that reload the module keep them.
LOOP_DIO_PARAMS=""

# --- helpers ---

# Whether a module is built for this kernel (not whether it loads: that is a test).
module_built() {
	grep -q "/$1\.ko[.a-z]*:" "/lib/modules/$(uname -r)/modules.dep"
}

# Names (loopN) of the bound loop devices.
bound_devices() {
	for d in /sys/block/loop*; do
		[ -d "$d/loop" ] && echo "${d##*/}"
	done
}

# wait_for CMD...: CMD polled until it succeeds (bounded: 10 s). For state that the kernel
# changes asynchronously (devtmpfs nodes), never as a timing assertion.
wait_for() {
	_w=0
	while ! "$@" 2>/dev/null; do
		_w=$((_w + 1))
		[ $_w -ge 200 ] && return 1
		sleep 0.05
	done
}

# A fresh test file: new_file DIR NAME SIZE [fill]; the pattern fill is written with fio.
new_file() {
	f="$1/t/$2"
	rm -f "$f"
	if [ "${4:-}" = fill ]; then
		$FIO --name=fill --filename="$f" --rw=write --bs=1M --size="$3" --direct=1 \
			--ioengine=psync --buffer_pattern=0x5a5aa5a5 --minimal >/dev/null || return 1
	else
		truncate -s "$3" "$f" || return 1
	fi
	echo "$f"
}

# Everything a test may have left: mounts of loop devices, bound devices, test files.
cleanup() {
	for m in $(awk '$1 ~ /^\/dev\/loop/ { print $2 }' /proc/mounts); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	$LOSETUP -D 2>/dev/null
	for d in $(bound_devices); do
		$LOSETUP -d "/dev/$d" 2>/dev/null
	done
	rm -rf "$VDB/t" "$NVME/t" /tmp/loop-t
	mkdir -p "$VDB/t" "$NVME/t" /tmp/loop-t
	wait_for no_bound_devices
}

no_bound_devices() {
	[ -z "$(bound_devices)" ]
}

# t FUNCTION: a test body, with cleanup after it whatever happened.
t() {
	"$@"
	rc=$?
	[ -e $HUNG ] || cleanup
	return $rc
}

# json_field JSON KEY: the value of "KEY": VALUE in losetup's --json output.
json_field() {
	echo "$1" | sed -n "s/^ *\"$2\": *\"*\([^\",]*\)\"*,*\$/\1/p"
}

sysfs_of() {
	cat "/sys/block/${1#/dev/}/$2" 2>&1
}

# load_driver DRIVER [PARAM=VALUE]...: modprobe; for loop_dio, insmod of this checkout's
# out-of-tree build (tools/extmod.sh, which make check runs) when the guest has it, as
# load_checkout_module does: the kernel's own copy is from whichever checkout built the kernel
# last. LOOP_DIO_KO names another build of the module (e.g. a deliberately broken one, run by
# hand: tools/vm.sh cmd 'rmmod loop_dio; cd /rust44/tests/loop_dio && LOOP_DIO_KO=... sh run.sh').
load_driver() {
	_ko=${LOOP_DIO_KO:-/rust44/extmod/loop_dio.ko}
	if [ "$1" = loop_dio ] && [ -f "$_ko" ]; then
		shift
		insmod "$_ko" "$@"
	else
		modprobe "$@"
	fi
}

# The kernel log's length in lines, to look at what a test added to it.
log_lines() {
	dmesg | wc -l
}

# io_errors_since LINES: the I/O error reports in the kernel log after its first LINES lines,
# those printed and those a rate limit suppressed ("N callbacks suppressed" of buffer_io_error
# and blk_print_req_error).
io_errors_since() {
	dmesg | tail -n +$(($1 + 1)) | awk '
		/Buffer I\/O error|I\/O error, dev|error, dev loop/ { n++ }
		/(buffer_io_error|blk_print_req_error): [0-9]+ callbacks suppressed/ {
			for (i = 1; i < NF; i++) if ($(i + 1) == "callbacks") n += $i
		}
		END { print n + 0 }'
}

# --- the driver ---

t_module_loads() {
	load_driver "$DRV" || { echo "modprobe $DRV failed"; return 1; }
	[ -d "/sys/module/$DRV" ] || { echo "/sys/module/$DRV missing"; return 1; }
	expect_file_eq /sys/class/misc/loop-control/dev "10:237" || return 1
	wait_for test -c /dev/loop-control || { echo "no /dev/loop-control"; return 1; }
	expect_eq "/dev/loop-control major:minor (hex)" "$(stat -c '%t:%T' /dev/loop-control)" "a:ed" || return 1
	grep -q '^  7 ' /proc/devices || { echo "block major 7 is not registered:"; cat /proc/devices; return 1; }
	echo "block major: $(grep '^  7 ' /proc/devices | tail -n1)"
	# As the C driver (max_loop = CONFIG_BLK_DEV_LOOP_MIN_COUNT = 8): loop0..7 exist at once,
	# unbound.
	for i in 0 1 2 3 4 5 6 7; do
		expect_file_eq "/sys/block/loop$i/size" 0 || return 1
		wait_for test -b "/dev/loop$i" || { echo "no /dev/loop$i"; return 1; }
	done
	no_bound_devices || { echo "bound at load: $(bound_devices)"; return 1; }
}

# More poll queues than CPUs: loop_dio refuses to load, says why, and leaves nothing behind.
t_refuses_too_many_poll_queues() {
	# (Loaded already when the guest's init loads every module, as in 'make run CMD=...'.)
	if [ -d "/sys/module/$DRV" ]; then rmmod "$DRV" || return 1; fi
	cpus=$(($(sed 's/.*-//' /sys/devices/system/cpu/possible) + 1))
	n=$((cpus + 1))
	if load_driver "$DRV" poll_queues=$n 2>/dev/null; then
		echo "modprobe $DRV poll_queues=$n succeeded"
		rmmod "$DRV"
		return 1
	fi
	[ ! -d "/sys/module/$DRV" ] || { echo "$DRV is loaded after the refusal"; return 1; }
	[ ! -e /sys/block/loop0 ] || { echo "loop0 exists after the refusal"; return 1; }
	dmesg | grep -q "poll_queues=$n is more than the $cpus CPUs" ||
		{ echo "no message saying why"; dmesg | tail -n 5; return 1; }
}

# max_part above DISK_MAX_PARTS (256 minors per disk): the driver refuses to load and leaves
# nothing behind (C loop: EINVAL, silently; loop_dio says why).
t_refuses_too_many_partitions() {
	if [ -d "/sys/module/$DRV" ]; then rmmod "$DRV" || return 1; fi
	mark=$(log_lines)
	if load_driver "$DRV" max_part=1000 2>/tmp/loop-t/modprobe.err; then
		echo "modprobe $DRV max_part=1000 succeeded"
		rmmod "$DRV"
		return 1
	fi
	echo "modprobe: $(cat /tmp/loop-t/modprobe.err)"
	[ ! -d "/sys/module/$DRV" ] || { echo "$DRV is loaded after the refusal"; return 1; }
	[ ! -e /sys/block/loop0 ] || { echo "loop0 exists after the refusal"; return 1; }
	[ ! -e /sys/class/misc/loop-control ] || { echo "loop-control exists after the refusal"; return 1; }
	! grep -q '^  7 ' /proc/devices || { echo "block major 7 is registered after the refusal"; return 1; }
	said=$(dmesg | tail -n +$((mark + 1)) | grep -i 'max_part')
	echo "kernel log: ${said:-nothing about max_part}"
	if [ "$DRV" = loop_dio ] && [ -z "$said" ]; then
		echo "no message saying why"
		return 1
	fi
}

# What C loop's parameters showed, for loop_dio's to compare.
C_PARAMS=/tmp/c-loop-params

# /sys/module/DRV/parameters/{max_loop,max_part,hw_queue_depth}: there, read-only (0444, even
# root cannot write them), showing the values given at load (max_part rounded up to a power of
# two less one, as C exports it for computing minor numbers). Loaded with values of its own,
# then reloaded with the defaults.
t_module_parameters() {
	rmmod "$DRV" || return 1
	load_driver "$DRV" max_loop=3 max_part=5 hw_queue_depth=64 || { load_driver "$DRV"; return 1; }
	rc=0
	seen=""
	# (Not "name": ktap_test's local, which a callee's assignment would change.)
	for p in max_loop:3 max_part:7 hw_queue_depth:64; do
		param=${p%%:*}
		f=/sys/module/$DRV/parameters/$param
		if [ ! -e "$f" ]; then
			echo "$f does not exist"
			rc=1
			continue
		fi
		v=$(cat "$f")
		seen="$seen $param=$v"
		expect_eq "$param" "$v" "${p#*:}" || rc=1
		expect_eq "$param mode" "$(stat -c %a "$f")" 444 || rc=1
		if (echo 9 >"$f") 2>/dev/null; then
			echo "writing $f succeeded"
			rc=1
		fi
		expect_eq "$param after a write" "$(cat "$f")" "$v" || rc=1
	done
	echo "parameters:$seen"
	if [ "$DRV" = loop ]; then
		echo "$seen" >$C_PARAMS
	elif [ -f $C_PARAMS ]; then
		expect_eq "parameters as C loop shows them" "$seen" "$(cat $C_PARAMS)" || rc=1
	fi
	rmmod "$DRV" || return 1
	load_driver "$DRV" || return 1
	wait_for test -b /dev/loop0 || return 1
	return $rc
}

t_ioctl_ext4() {
	LOOP_TEST_DIR="$VDB/t" ./loop_ioctl
}

t_ioctl_tmpfs() {
	LOOP_TEST_DIR=/tmp/loop-t ./loop_ioctl
}

# --- losetup ---

t_losetup_attach_list_detach() {
	f=$(new_file "$VDB" plain 8M fill) || return 1
	free=$($LOSETUP -f) || { echo "losetup -f failed"; return 1; }
	dev=$($LOSETUP -f --show "$f") || { echo "losetup -f --show failed"; return 1; }
	expect_eq "device attached" "$dev" "$free" || return 1
	n=${dev#/dev/}
	$LOSETUP -a | grep -q "^$dev: .*($f)\$" || { echo "losetup -a: $($LOSETUP -a)"; return 1; }
	expect_eq "losetup -j" "$($LOSETUP -j "$f" | cut -d: -f1)" "$dev" || return 1
	json=$($LOSETUP --list --json "$dev")
	echo "$json"
	expect_eq name "$(json_field "$json" name)" "$dev" || return 1
	expect_eq back-file "$(json_field "$json" back-file)" "$f" || return 1
	expect_eq offset "$(json_field "$json" offset)" 0 || return 1
	expect_eq sizelimit "$(json_field "$json" sizelimit)" 0 || return 1
	expect_eq autoclear "$(json_field "$json" autoclear)" false || return 1
	expect_eq ro "$(json_field "$json" ro)" false || return 1
	expect_eq dio "$(json_field "$json" dio)" false || return 1
	expect_eq log-sec "$(json_field "$json" log-sec)" 512 || return 1
	expect_eq backing_file "$(sysfs_of "$dev" loop/backing_file)" "$f" || return 1
	expect_eq size "$($BLOCKDEV --getsize64 "$dev")" 8388608 || return 1
	# The data: the file's bytes through the device.
	expect_eq "data" "$(md5sum <"$dev" | cut -d' ' -f1)" "$(md5sum <"$f" | cut -d' ' -f1)" || return 1
	$LOSETUP -d "$dev" || { echo "losetup -d failed"; return 1; }
	[ ! -e "/sys/block/$n/loop" ] || { echo "$dev still bound"; return 1; }
	expect_eq "losetup -a after -d" "$($LOSETUP -a)" "" || return 1
	if $LOSETUP -d "$dev" 2>/dev/null; then
		echo "detaching an unbound device succeeded"
		return 1
	fi
}

t_losetup_options() {
	f=$(new_file "$VDB" opts 4M fill) || return 1
	# Mark the region behind the offset so the data check can see the shift.
	printf 'rust44-offset-mark' | dd of="$f" bs=1 seek=4096 conv=notrunc 2>/dev/null
	dev=$($LOSETUP -f --show -o 4096 --sizelimit 1048576 -r -b 4096 "$f") || return 1
	json=$($LOSETUP --list --json "$dev")
	echo "$json"
	expect_eq offset "$(json_field "$json" offset)" 4096 || return 1
	expect_eq sizelimit "$(json_field "$json" sizelimit)" 1048576 || return 1
	expect_eq ro "$(json_field "$json" ro)" true || return 1
	expect_eq log-sec "$(json_field "$json" log-sec)" 4096 || return 1
	expect_eq back-file "$(json_field "$json" back-file)" "$f" || return 1
	expect_eq "sysfs offset" "$(sysfs_of "$dev" loop/offset)" 4096 || return 1
	expect_eq "sysfs sizelimit" "$(sysfs_of "$dev" loop/sizelimit)" 1048576 || return 1
	expect_eq "sysfs ro" "$(sysfs_of "$dev" ro)" 1 || return 1
	expect_eq "getsize64" "$($BLOCKDEV --getsize64 "$dev")" 1048576 || return 1
	expect_eq "getss" "$($BLOCKDEV --getss "$dev")" 4096 || return 1
	expect_eq "getro" "$($BLOCKDEV --getro "$dev")" 1 || return 1
	expect_eq "first bytes" "$(dd if="$dev" bs=4096 count=1 2>/dev/null | head -c 18)" "rust44-offset-mark" || return 1
	if echo x | dd of="$dev" conv=fsync 2>/dev/null; then
		echo "a write to the read-only device succeeded"
		return 1
	fi
	$LOSETUP -d "$dev"
}

t_losetup_direct_io() {
	f=$(new_file "$VDB" dio 8M fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	expect_eq "dio after --direct-io=on" "$(sysfs_of "$dev" loop/dio)" 1 || return 1
	expect_eq "json dio" "$(json_field "$($LOSETUP --list --json "$dev")" dio)" true || return 1
	$LOSETUP --direct-io=off "$dev" || return 1
	expect_eq "dio after off" "$(sysfs_of "$dev" loop/dio)" 0 || return 1
	$LOSETUP --direct-io=on "$dev" || return 1
	expect_eq "dio after on" "$(sysfs_of "$dev" loop/dio)" 1 || return 1
	expect_eq "data" "$(md5sum <"$dev" | cut -d' ' -f1)" "$(md5sum <"$f" | cut -d' ' -f1)" || return 1
	$LOSETUP -d "$dev"
	# A misaligned offset (ext4 on virtio-blk aligns direct I/O to 512 bytes: 256 is off): C
	# attaches without direct I/O; loop_dio refuses the explicit request (issue 3: never a silent
	# fallback) and leaves no device bound. Neither can switch it on afterwards.
	if [ "$DRV" = loop_dio ]; then
		if $LOSETUP -f --show -o 256 --direct-io=on "$f"; then
			echo "loop_dio attached with a misaligned offset and --direct-io=on"
			$LOSETUP -D
			return 1
		fi
		[ -z "$(bound_devices)" ] || { echo "bound after the refusal: $(bound_devices)"; return 1; }
		dev=$($LOSETUP -f --show -o 256 "$f") || { echo "attach with -o 256 failed"; return 1; }
	else
		dev=$($LOSETUP -f --show -o 256 --direct-io=on "$f") || { echo "attach with -o 256 failed"; return 1; }
	fi
	expect_eq "dio with offset 256" "$(sysfs_of "$dev" loop/dio)" 0 || return 1
	if $LOSETUP --direct-io=on "$dev"; then
		echo "--direct-io=on with a misaligned offset succeeded"
		return 1
	fi
	expect_eq "dio still" "$(sysfs_of "$dev" loop/dio)" 0 || return 1
	$LOSETUP -d "$dev"
}

t_losetup_capacity() {
	f=$(new_file "$VDB" cap 1M) || return 1
	dev=$($LOSETUP -f --show "$f") || return 1
	expect_eq "size" "$($BLOCKDEV --getsize64 "$dev")" 1048576 || return 1
	truncate -s 3M "$f"
	expect_eq "size before -c" "$($BLOCKDEV --getsize64 "$dev")" 1048576 || return 1
	$LOSETUP -c "$dev" || { echo "losetup -c failed"; return 1; }
	expect_eq "size after -c" "$($BLOCKDEV --getsize64 "$dev")" 3145728 || return 1
	expect_eq "sysfs size" "$(sysfs_of "$dev" size)" 6144 || return 1
	expect_eq "lsblk size" "$($LSBLK -b -n -d -o SIZE "$dev" | tr -d ' ')" 3145728 || return 1
	$LOSETUP -d "$dev"
}

t_losetup_partscan() {
	f=$(new_file "$VDB" parts 8M fill) || return 1
	# p1: 1 MiB at 1 MiB, p2: 4 MiB at 3 MiB.
	./mkmbr "$f" 2048 2048 6144 8192 || return 1
	dev=$($LOSETUP -f --show -P "$f") || return 1
	n=${dev#/dev/}
	expect_eq "partscan" "$(sysfs_of "$dev" loop/partscan)" 1 || return 1
	wait_for test -b "${dev}p1" || { echo "no ${dev}p1"; ls /dev; return 1; }
	wait_for test -b "${dev}p2" || { echo "no ${dev}p2"; return 1; }
	expect_eq "p1 size" "$($BLOCKDEV --getsize64 "${dev}p1")" 1048576 || return 1
	expect_eq "p2 size" "$($BLOCKDEV --getsize64 "${dev}p2")" 4194304 || return 1
	expect_eq "p2 start" "$(cat "/sys/block/$n/${n}p2/start")" 6144 || return 1
	expect_eq "lsblk" "$($LSBLK -b -n -r -o NAME,SIZE "$dev" | tr '\n' ' ')" \
		"$n 8388608 ${n}p1 1048576 ${n}p2 4194304 " || return 1
	# A write to p2 lands 3 MiB into the file.
	printf 'rust44-p2-mark' | dd of="${dev}p2" conv=fsync 2>/dev/null || return 1
	expect_eq "in the file" "$(dd if="$f" bs=512 skip=6144 count=1 2>/dev/null | head -c 14)" "rust44-p2-mark" || return 1
	# Without -P: none.
	dev2=$($LOSETUP -f --show "$f") || return 1
	expect_eq "partscan without -P" "$(sysfs_of "$dev2" loop/partscan)" 0 || return 1
	[ ! -e "/sys/block/${dev2#/dev/}/${dev2#/dev/}p1" ] || { echo "$dev2 has partitions without -P"; return 1; }
	$LOSETUP -d "$dev2" "$dev" || return 1
	[ ! -e "/sys/block/$n/${n}p1" ] || { echo "partitions stayed after detach"; return 1; }
	wait_for test ! -e "${dev}p1" || { echo "${dev}p1 stayed"; return 1; }
}

t_losetup_detach_all() {
	for i in 1 2 3; do
		f=$(new_file "$VDB" all$i 1M) || return 1
		$LOSETUP -f "$f" || return 1
	done
	expect_eq "bound" "$(bound_devices | wc -l)" 3 || return 1
	$LOSETUP -D || { echo "losetup -D failed"; return 1; }
	expect_eq "bound after -D" "$(bound_devices | wc -l)" 0 || return 1
	expect_eq "losetup -a" "$($LOSETUP -a)" "" || return 1
}

# blkdiscard punches a hole in the backing file; blkdiscard -z zeroes a range.
t_blkdiscard() {
	f=$(new_file "$VDB" discard 8M fill) || return 1
	sync
	before=$(stat -c %b "$f")
	dev=$($LOSETUP -f --show "$f") || return 1
	$BLKDISCARD -o 1048576 -l 2097152 "$dev" || { echo "blkdiscard failed"; return 1; }
	$BLKDISCARD -z -o 4194304 -l 1048576 "$dev" || { echo "blkdiscard -z failed"; return 1; }
	sync
	after=$(stat -c %b "$f")
	echo "512-byte blocks allocated: $before -> $after"
	[ "$after" -le $((before - 4096)) ] || { echo "no hole of 2 MiB punched"; return 1; }
	expect_eq "size" "$(stat -c %s "$f")" 8388608 || return 1
	expect_eq "discarded bytes that are not zero" \
		"$(dd if="$f" bs=1M skip=1 count=2 2>/dev/null | tr -d '\000' | wc -c)" 0 || return 1
	expect_eq "zeroed bytes that are not zero" \
		"$(dd if="$f" bs=1M skip=4 count=1 2>/dev/null | tr -d '\000' | wc -c)" 0 || return 1
	expect_eq "untouched bytes that are zero" \
		"$(dd if="$f" bs=1M count=1 2>/dev/null | tr -d 'Z\245\132' | wc -c)" 0 || return 1
	expect_eq "through the device" \
		"$(dd if="$dev" bs=1M skip=1 count=2 2>/dev/null | tr -d '\000' | wc -c)" 0 || return 1
	$LOSETUP -d "$dev"
}

# ext4 on a loop device; losetup -d while mounted only marks it autoclear; umount unbinds it.
t_autoclear_after_umount() {
	f=$(new_file "$VDB" fs.img 64M) || return 1
	dev=$($LOSETUP -f --show "$f") || return 1
	n=${dev#/dev/}
	$MKFS -q "$dev" || { echo "mkfs.ext4 on $dev failed"; return 1; }
	mkdir -p /mnt/lo
	mount -t ext4 "$dev" /mnt/lo || return 1
	$FIO --name=files --directory=/mnt/lo --nrfiles=8 --size=$FS_FIO_SIZE --rw=write --bs=64k \
		--verify=crc32c --verify_fatal=1 --minimal >/dev/null || { echo "fio on the mounted loop fs failed"; return 1; }
	$LOSETUP -d "$dev" || { echo "losetup -d of a mounted device failed"; return 1; }
	expect_eq "autoclear while mounted" "$(sysfs_of "$dev" loop/autoclear)" 1 || return 1
	[ -d "/sys/block/$n/loop" ] || { echo "unbound while mounted"; return 1; }
	expect_eq "json autoclear" "$(json_field "$($LOSETUP --list --json "$dev")" autoclear)" true || return 1
	umount /mnt/lo || return 1
	wait_for test ! -d "/sys/block/$n/loop" || { echo "$dev still bound after umount"; return 1; }
	# The file system is whole.
	$E2FSCK -f -n "$f" || { echo "e2fsck found errors"; return 1; }
	# And mounts again from the image through a fresh device.
	dev=$($LOSETUP -f --show "$f") || return 1
	mount -t ext4 -o ro "$dev" /mnt/lo || return 1
	expect_eq "files" "$(ls /mnt/lo | grep -c '^files')" 8 || return 1
	umount /mnt/lo
	$LOSETUP -d "$dev"
}

# Four workers attach and detach their own file $WORKER_ROUNDS (20) times each, concurrently.
worker() {
	i=0
	while [ $i -lt "$WORKER_ROUNDS" ]; do
		dev=$($LOSETUP -f --show "$1") || { echo "worker $2 #$i: attach failed"; return 1; }
		bf=$(cat "/sys/block/${dev#/dev/}/loop/backing_file")
		[ "$bf" = "$1" ] || { echo "worker $2 #$i: $dev backs '$bf', not $1"; return 1; }
		got=$(dd if="$dev" bs=4096 count=1 2>/dev/null | head -c 9)
		[ "$got" = "worker-$2-" ] || { echo "worker $2 #$i: $dev reads '$got'"; return 1; }
		$LOSETUP -d "$dev" || { echo "worker $2 #$i: detach of $dev failed"; return 1; }
		i=$((i + 1))
	done
}

t_concurrent_setup_teardown() {
	for w in 1 2 3 4; do
		f=$(new_file "$VDB" w$w 1M) || return 1
		printf 'worker-%s-' $w | dd of="$f" conv=notrunc 2>/dev/null
		(worker "$f" $w >/tmp/loop-t/worker.$w 2>&1; echo $? >/tmp/loop-t/worker.$w.rc) &
	done
	wait
	rc=0
	for w in 1 2 3 4; do
		if [ "$(cat /tmp/loop-t/worker.$w.rc)" != 0 ]; then
			cat /tmp/loop-t/worker.$w
			rc=1
		fi
	done
	no_bound_devices || { echo "left bound: $(bound_devices)"; rc=1; }
	return $rc
}

# --- races (bounded by RACE_SECONDS): loop_race runs them, with a watchdog that reports a hang;
# the C driver's results are kept in /tmp/c-loop-* for loop_dio's to be compared with ---

# race_result NAME STATUS: prints what C loop gave for NAME (when this is loop_dio), keeps this
# run's output for C loop, and marks a hang (status 2).
race_result() {
	if [ "$DRV" = loop ]; then
		cp /tmp/loop-t/race.out "/tmp/c-loop-$1"
	elif [ -f "/tmp/c-loop-$1" ]; then
		echo "C loop gave:"
		sed 's/^/  /' "/tmp/c-loop-$1"
	fi
	if [ "$2" = 2 ]; then
		touch $HUNG
		echo "a task is hung in $DRV: the remaining tests are skipped"
	fi
	return "$2"
}

# Item 1 of issue 10: opening /dev/loopN while LOOP_CTL_REMOVE removes it and LOOP_CTL_ADD adds it
# again. Every call returns, with only the errnos C loop gives (ENXIO for an open racing the
# removal, EBUSY for a removal racing an open, EEXIST for an add racing an open that recreated
# the device); the debug kernel's KASAN sees a use of the freed device (dmesg-clean).
t_open_vs_remove() {
	mark=$(log_lines)
	./loop_race open-remove "$RACE_SECONDS" >/tmp/loop-t/race.out 2>&1
	rc=$?
	cat /tmp/loop-t/race.out
	# A device added again under its old name before the old one is gone: sysfs refuses the
	# duplicate (with a stack trace) and the add fails.
	if dmesg | tail -n +$((mark + 1)) | grep -E 'cannot create duplicate|kobject_add_internal failed|Call Trace|BUG|WARNING' >/tmp/loop-t/log; then
		echo "kernel reports during the race:"
		sed -n '1,12s/^/  log: /p' /tmp/loop-t/log
		[ $rc -ne 0 ] || rc=1
	fi
	race_result open-remove $rc
}

# Item 2: readers of /sys/block/loopN/loop/* while the device is attached and detached: no
# deadlock between the detach removing those files and a reader waiting inside one.
t_sysfs_vs_detach() {
	f=$(new_file "$VDB" sysfs.img 1M fill) || return 1
	./loop_race sysfs-detach "$RACE_SECONDS" "$f" >/tmp/loop-t/race.out 2>&1
	rc=$?
	cat /tmp/loop-t/race.out
	race_result sysfs-detach $rc
}

# Item 6: two devices swapped onto each other at once with LOOP_CHANGE_FD (read-only, same size):
# never both (a cycle of loop devices); the chain check is serialised with the swap.
t_change_fd_cycle() {
	x=$(new_file "$VDB" x.img 1M fill) || return 1
	y=$(new_file "$VDB" y.img 1M fill) || return 1
	./loop_race change-cycle "$RACE_SECONDS" "$x" "$y" >/tmp/loop-t/race.out 2>&1
	rc=$?
	cat /tmp/loop-t/race.out
	race_result change-cycle $rc
}

# Failed requests (the block_rq_error tracepoint: every one, where the kernel log's reports are
# rate-limited and their "N callbacks suppressed" lines may belong to an earlier test).
TRACE=/sys/kernel/tracing
rq_errors_start() {
	[ -d $TRACE/events/block/block_rq_error ] || return 1
	echo 0 >$TRACE/tracing_on
	: >$TRACE/trace
	echo 1 >$TRACE/events/block/block_rq_error/enable
	echo 1 >$TRACE/tracing_on
}

# rq_errors_stop MAJOR,MINOR: how many requests of that disk failed since rq_errors_start.
rq_errors_stop() {
	echo 0 >$TRACE/events/block/block_rq_error/enable
	grep -c "block_rq_error: $1 " $TRACE/trace
}

# Item 12: a partitioned image attached with partition scanning and detached, over and over,
# while blkid-like probers (udev's, which the guest lacks) read the disk and its partitions as
# they come and go. Some reads fail on both drivers: a prober that looked a partition up just
# before the detach dropped it opens it just after (the block layer's lookup and open are not
# atomic), and its reads reach the unbound device. The longer the detach holds the disk's
# open_mutex, the more probers are caught so. The counts move twofold from boot to boot, so what
# is asserted against C loop (run in the same boot) is the cause, the detach's duration (timed
# alone on the device, 20 times: at most 4 times C's mean plus 3 ms; a detach with two queue
# freezes took 10-40 times C's), and the effect only grossly: loop_dio's failed requests and
# failed probe reads per attach at most 3 times C's plus 10 (the issue saw 10 to 40 times).
t_partscan_probers() {
	f=$(new_file "$VDB" parts.img 8M fill) || return 1
	./mkmbr "$f" 2048 2048 6144 8192 || return 1
	mark=$(log_lines)
	rq_errors_start || { echo "no block_rq_error tracepoint"; return 1; }
	./loop_race partscan "$RACE_SECONDS" "$f" >/tmp/loop-t/race.out 2>&1
	rc=$?
	num=$(sed -n 's/^loop\([0-9]*\) through.*/\1/p' /tmp/loop-t/race.out)
	requests=$(rq_errors_stop "7,${num:-0}")
	logged=$(io_errors_since "$mark")
	attaches=$(sed -n 's/^LOOP_CONFIGURE: ok=\([0-9]*\).*/\1/p' /tmp/loop-t/race.out)
	attaches=${attaches:-0}
	failed=$(sed -n 's/^failed reads: //p' /tmp/loop-t/race.out)
	failed=${failed:-0}
	# In microseconds.
	detach=$(sed -n 's/^alone: detach: mean \([0-9.]*\) ms.*/\1/p' /tmp/loop-t/race.out |
		awk '{ printf "%d", $1 * 1000 }')
	echo "in $attaches attaches: $requests failed requests, $failed failed probe reads; kernel log: $logged I/O error reports (rate-limited: the suppressed counts it prints may be an earlier test's); detach alone ${detach:-?} us" >>/tmp/loop-t/race.out
	cat /tmp/loop-t/race.out
	dmesg | tail -n +$((mark + 1)) | grep -m 5 -i 'error' | sed 's/^/  log: /'
	if [ "$DRV" = loop_dio ] && [ -f /tmp/c-loop-partscan ] && [ $rc -eq 0 ]; then
		# shellcheck disable=SC2046
		set -- $(sed -n 's/^in \([0-9]*\) attaches: \([0-9]*\) failed requests, \([0-9]*\) failed probe.*detach alone \([0-9]*\) us$/\1 \2 \3 \4/p' /tmp/c-loop-partscan)
		c_attaches=${1:-0}
		[ "$c_attaches" -gt 0 ] || c_attaches=1
		allowed_detach=$((${4:-0} * 4 + 3000))
		allowed_rq=$((${2:-0} * attaches * 3 / c_attaches + 10))
		allowed_rd=$((${3:-0} * attaches * 3 / c_attaches + 10))
		echo "loop_dio: detach alone ${detach:-?} us (at most $allowed_detach: C's ${4:-?} us x 4 + 3 ms), $requests failed requests (at most $allowed_rq: C's rate x 3 + 10), $failed failed probe reads (at most $allowed_rd)"
		[ -n "$detach" ] && [ "$detach" -le "$allowed_detach" ] || rc=1
		[ "$requests" -le "$allowed_rq" ] || rc=1
		[ "$failed" -le "$allowed_rd" ] || rc=1
	fi
	race_result partscan $rc
}

# Item 10: on tmpfs (fallocate can punch holes but not zero a range) blkdiscard -z fails at the
# file's fallocate: the driver stops offering write-zeroes (queue/write_zeroes_max_bytes 0) after
# the first EOPNOTSUPP, so one request fails (and is logged), not one per call, and the block
# layer zeroes by writing; discard (punching holes) goes on working. As C loop, whose results
# are kept for loop_dio's. The failed requests are counted with the block_rq_error tracepoint.
C_TMPFS_ZEROES=/tmp/c-loop-tmpfs-zeroes
t_tmpfs_write_zeroes() {
	f=$(new_file /tmp/loop-t wz.img 8M fill) || return 1
	dev=$($LOSETUP -f --show "$f") || return 1
	n=${dev#/dev/}
	echo "attached: write_zeroes_max_bytes $(sysfs_of "$dev" queue/write_zeroes_max_bytes), discard_max_bytes $(sysfs_of "$dev" queue/discard_max_bytes)"
	mark=$(log_lines)
	rq_errors_start || { echo "no block_rq_error tracepoint"; return 1; }
	statuses=""
	for i in 1 2 3 4; do
		$BLKDISCARD -z -o $((i * 1048576)) -l 1048576 "$dev"
		statuses="$statuses $?"
	done
	# The failed requests (the kernel log's report of each is rate-limited: its count is not).
	errors=$(rq_errors_stop "$(sysfs_of "$dev" dev | tr : ,)")
	wz=$(sysfs_of "$dev" queue/write_zeroes_max_bytes)
	dmesg | tail -n +$((mark + 1)) | grep "dev $n," | sed 's/^/  log: /'
	zeroed=$(dd if="$f" bs=1M skip=1 count=4 2>/dev/null | tr -d '\000' | wc -c)
	$BLKDISCARD -o $((6 * 1048576)) -l 1048576 "$dev"
	discard=$?
	holes=$(dd if="$f" bs=1M skip=6 count=1 2>/dev/null | tr -d '\000' | wc -c)
	dm=$(sysfs_of "$dev" queue/discard_max_bytes)
	[ "$dm" -gt 0 ] 2>/dev/null && dm=on
	result="blkdiscard -z:$statuses; write_zeroes_max_bytes $wz; failed requests $errors; nonzero bytes left $zeroed; blkdiscard $discard, nonzero bytes left $holes, discard_max_bytes $dm"
	echo "$result"
	$LOSETUP -d "$dev" || return 1
	rc=0
	expect_eq "write_zeroes_max_bytes after blkdiscard -z" "$wz" 0 || rc=1
	[ "$errors" -le 1 ] || { echo "$errors failed write-zeroes requests on $n (each logged): at most one"; rc=1; }
	if [ "$DRV" = loop ]; then
		echo "$result" >$C_TMPFS_ZEROES
	elif [ -f $C_TMPFS_ZEROES ]; then
		expect_eq "as on C loop" "$result" "$(cat $C_TMPFS_ZEROES)" || rc=1
	fi
	return $rc
}

# --- data integrity: fio writes through the device with crc32c verification, then verifies
# the backing file itself after the device is gone ---

# fio_verify DIR DIRECT ENGINE
fio_verify() {
	f=$(new_file "$1" verify.img "$FIO_SIZE") || return 1
	if [ "$2" = 1 ]; then
		dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
		expect_eq "dio" "$(sysfs_of "$dev" loop/dio)" 1 || return 1
	else
		dev=$($LOSETUP -f --show "$f") || return 1
		expect_eq "dio" "$(sysfs_of "$dev" loop/dio)" 0 || return 1
	fi
	job="--name=verify --rw=randwrite --bs=4k --size=$FIO_SIZE --ioengine=$3 --iodepth=16 --verify=crc32c --verify_fatal=1"
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --direct="$2" --do_verify=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "fio through $dev failed:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
	grep -q 'err= 0' /tmp/loop-t/fio.out || { tail -n 30 /tmp/loop-t/fio.out; return 1; }
	$LOSETUP -d "$dev" || return 1
	echo 1 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2086
	$FIO $job --filename="$f" --direct=1 --verify_only=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "the backing file does not verify:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
}

t_fio_verify_buffered_vdb() { fio_verify "$VDB" 0 io_uring; }
t_fio_verify_direct_vdb() { fio_verify "$VDB" 1 io_uring; }
t_fio_verify_buffered_nvme() { fio_verify "$NVME" 0 libaio; }
t_fio_verify_direct_nvme() { fio_verify "$NVME" 1 libaio; }

# With direct I/O the backing file stays out of the page cache; without, it fills it.
t_dio_page_cache_footprint() {
	f=$(new_file "$VDB" footprint.img ${FOOTPRINT_MB}M fill) || return 1
	sync
	echo 1 >/proc/sys/vm/drop_caches
	set -- $(./pagecache "$f")
	echo "before: $1 of $2 pages resident"
	[ "$1" -le 16 ] || { echo "the file is cached before the run"; return 1; }
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	expect_eq "dio" "$(sysfs_of "$dev" loop/dio)" 1 || return 1
	$FIO --name=dio --filename="$dev" --rw=randrw --bs=4k --size=${FOOTPRINT_MB}M --io_size=$((FOOTPRINT_MB / 2))M --direct=1 \
		--ioengine=io_uring --iodepth=16 --minimal >/dev/null || return 1
	set -- $(./pagecache "$f")
	echo "after a direct-I/O run: $1 of $2 pages resident"
	[ "$1" -le 16 ] || { echo "direct I/O left $1 pages of the backing file cached"; return 1; }
	$LOSETUP -d "$dev"
	# The same through the page cache: the helper does see cached pages.
	echo 1 >/proc/sys/vm/drop_caches
	dev=$($LOSETUP -f --show "$f") || return 1
	$FIO --name=buffered --filename="$dev" --rw=randrw --bs=4k --size=${FOOTPRINT_MB}M --io_size=$((FOOTPRINT_MB / 2))M --direct=1 \
		--ioengine=io_uring --iodepth=16 --minimal >/dev/null || return 1
	set -- $(./pagecache "$f")
	echo "after a buffered-backing run: $1 of $2 pages resident"
	[ "$1" -ge $(($2 / 4)) ] || { echo "too few cached pages for a buffered backing file"; return 1; }
	$LOSETUP -d "$dev"
}

# --- polled I/O (io_uring IOPOLL): loop_dio passes it through to a backing device that polls
# (NVMe with poll queues) while direct I/O is on; the C driver offers none ---

IOPOLL=/rust44/tests/blk_poll/iopoll
# What a polled read on the C driver gives, recorded by its run for loop_dio's to compare.
C_IOPOLL_RESULT=/tmp/c-loop-iopoll-result

# NVMe interrupts so far, every queue and CPU: polled completions raise none.
nvme_irqs() {
	awk '/nvme0q/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

# iopoll_wanted: 1 where the driver under test polls, else 0.
iopoll_wanted() {
	if [ "$DRV" = loop_dio ]; then echo 1; else echo 0; fi
}

# A file on ext4 on NVMe, direct I/O: loop_dio offers polling and the IOPOLL kselftests pass
# through it; C loop offers none and a polled read fails (its result is the reference).
t_iopoll_nvme() {
	f=$(new_file "$NVME" polled.img 16M fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	expect_eq "io_poll" "$(sysfs_of "$dev" queue/io_poll)" "$(iopoll_wanted)" || return 1
	if [ "$DRV" = loop ]; then
		res=$($IOPOLL --read-result "$dev") || return 1
		echo "a polled read on C loop gives $res"
		[ "$res" -lt 0 ] || return 1
		echo "$res" >$C_IOPOLL_RESULT
		return 0
	fi
	BP_DEV=$dev $IOPOLL -t iopoll_write_read_verify -t polled_and_plain_io_see_the_same_data \
		-t polled_read_past_the_end_fails
}

# Polling follows direct I/O and the backing device: off without direct I/O, off on virtio-blk
# (no poll queues: a polled read fails as on C loop), off once detached.
t_iopoll_follows_dio_and_backing() {
	want=$(iopoll_wanted)
	f=$(new_file "$NVME" polled.img 16M fill) || return 1
	dev=$($LOSETUP -f --show "$f") || return 1
	expect_eq "io_poll without direct I/O" "$(sysfs_of "$dev" queue/io_poll)" 0 || return 1
	$LOSETUP --direct-io=on "$dev" || return 1
	expect_eq "io_poll after --direct-io=on" "$(sysfs_of "$dev" queue/io_poll)" "$want" || return 1
	$LOSETUP --direct-io=off "$dev" || return 1
	expect_eq "io_poll after --direct-io=off" "$(sysfs_of "$dev" queue/io_poll)" 0 || return 1
	$LOSETUP --direct-io=on "$dev" || return 1
	$LOSETUP -d "$dev" || return 1
	wait_for no_bound_devices || return 1
	expect_eq "io_poll detached" "$(sysfs_of "$dev" queue/io_poll)" 0 || return 1
	g=$(new_file "$VDB" nopoll.img 16M fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$g") || return 1
	expect_eq "io_poll on virtio-blk" "$(sysfs_of "$dev" queue/io_poll)" 0 || return 1
	res=$($IOPOLL --read-result "$dev") || return 1
	ref=$(cat $C_IOPOLL_RESULT 2>/dev/null || echo -95)
	expect_eq "polled read without a polling backing device (C loop's result)" "$res" "$ref"
}

# fio with crc32c verification through polled I/O; the NVMe device completes it without
# interrupts, while the same reads unpolled raise them (one by one at queue depth 1: deeper,
# QEMU's NVMe posts several completions per interrupt).
t_iopoll_fio_verify_nvme() {
	f=$(new_file "$NVME" polled.img "$FS_FIO_SIZE" fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	expect_eq "io_poll" "$(sysfs_of "$dev" queue/io_poll)" 1 || return 1
	ios=$(($(${BLOCKDEV} --getsize64 "$dev") / 4096))
	job="--name=polled --bs=4k --size=$FS_FIO_SIZE --ioengine=io_uring --iodepth=16 --direct=1"
	before=$(nvme_irqs)
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --hipri=1 --rw=randwrite --verify=crc32c --verify_fatal=1 --do_verify=1 \
		>/tmp/loop-t/fio.out 2>&1 || { tail -n 30 /tmp/loop-t/fio.out; return 1; }
	polled=$(($(nvme_irqs) - before))
	grep -q 'err= 0' /tmp/loop-t/fio.out || { tail -n 30 /tmp/loop-t/fio.out; return 1; }
	before=$(nvme_irqs)
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --hipri=0 --iodepth=1 --rw=randread >/tmp/loop-t/fio.out 2>&1 ||
		{ tail -n 30 /tmp/loop-t/fio.out; return 1; }
	plain=$(($(nvme_irqs) - before))
	echo "NVMe interrupts: $polled during $((2 * ios)) polled I/Os, $plain during $ios unpolled"
	[ "$polled" -lt $((ios / 32)) ] || { echo "polled I/O raised interrupts"; return 1; }
	[ "$plain" -ge $((ios / 2)) ] || { echo "the interrupt count does not see unpolled I/O"; return 1; }
	$LOSETUP -d "$dev" || return 1
	echo 1 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2086
	$FIO $job --filename="$f" --rw=randwrite --verify=crc32c --verify_only=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "the backing file does not verify:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
}

# A read-only loop device straight on the NVMe block device polls too.
t_iopoll_block_device() {
	dev=$($LOSETUP -r -f --show --direct-io=on "$NVME_DEV") || return 1
	expect_eq "io_poll" "$(sysfs_of "$dev" queue/io_poll)" 1 || return 1
	before=$(nvme_irqs)
	$FIO --name=polled --filename="$dev" --bs=4k --size=8M --ioengine=io_uring --iodepth=8 \
		--direct=1 --hipri=1 --rw=randread --readonly >/tmp/loop-t/fio.out 2>&1 ||
		{ tail -n 30 /tmp/loop-t/fio.out; return 1; }
	polled=$(($(nvme_irqs) - before))
	echo "NVMe interrupts during 2048 polled reads: $polled"
	[ "$polled" -lt 512 ] || return 1
	expect_eq "a polled read of the first block" "$($IOPOLL --read-result "$dev")" 4096
}

# Switching direct I/O off and on freezes the queue with polled requests in flight: they drain
# (the submitter polls them) and nothing hangs. While polling is off, polled I/O fails with
# EOPNOTSUPP (as on any device without it), which fio is told to step over.
t_iopoll_dio_toggle_under_io() {
	f=$(new_file "$NVME" polled.img 16M fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	$FIO --name=polled --filename="$dev" --bs=4k --ioengine=io_uring --iodepth=16 --direct=1 \
		--hipri=1 --rw=randread --time_based --runtime=6 --continue_on_error=all \
		--ignore_error=95 >/tmp/loop-t/fio.out 2>&1 &
	pid=$!
	sleep 2
	for _ in 1 2 3; do
		$LOSETUP --direct-io=off "$dev" || { kill $pid; return 1; }
		$LOSETUP --direct-io=on "$dev" || { kill $pid; return 1; }
	done
	wait $pid
	if grep -oE 'err= *[0-9]+' /tmp/loop-t/fio.out | grep -vqE 'err= *(0|95)$'; then
		tail -n 30 /tmp/loop-t/fio.out
		return 1
	fi
	ran=$(sed -n 's/.*run=\([0-9]*\)-.*/\1/p' /tmp/loop-t/fio.out | head -n1)
	echo "fio ran ${ran:-?} ms across 3 direct-I/O off/on switches"
	[ "${ran:-0}" -ge 5000 ] || { tail -n 30 /tmp/loop-t/fio.out; return 1; }
	expect_eq "io_poll" "$(sysfs_of "$dev" queue/io_poll)" 1 || return 1
	BP_DEV=$dev $IOPOLL -t polled_and_plain_io_see_the_same_data
}

# Item 4: more requests in flight than hw_queue_depth on both kinds of hardware queue at once
# (polled io_uring with hipri=1 on the poll queue, plain libaio on the default one), with loop_dio
# loaded with hw_queue_depth=4: fio's verification finds every block and no request ends in
# an error (a full queue is a reason to wait, never to fail).
t_queues_past_depth() {
	rmmod loop_dio || return 1
	# shellcheck disable=SC2086
	load_driver loop_dio $LOOP_DIO_PARAMS hw_queue_depth=4 || { load_driver loop_dio $LOOP_DIO_PARAMS; return 1; }
	queues_past_depth
	rc=$?
	$LOSETUP -D
	wait_for no_bound_devices
	# shellcheck disable=SC2086
	rmmod loop_dio && load_driver loop_dio $LOOP_DIO_PARAMS || rc=1
	return $rc
}

queues_past_depth() {
	f=$(new_file "$NVME" depth.img "$FS_FIO_SIZE") || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	n=${dev#/dev/}
	expect_eq "io_poll" "$(sysfs_of "$dev" queue/io_poll)" 1 || return 1
	echo "$n: hardware queues $(ls "/sys/block/$n/mq" | tr '\n' ' ')nr_requests $(sysfs_of "$dev" queue/nr_requests)"
	half=$(($(${BLOCKDEV} --getsize64 "$dev") / 2))
	rq_errors_start || { echo "no block_rq_error tracepoint"; return 1; }
	$FIO --filename="$dev" --direct=1 --bs=4k --rw=randwrite --iodepth=32 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --size=$half \
		--name=polled --ioengine=io_uring --hipri=1 --offset=0 \
		--name=plain --ioengine=libaio --offset=$half >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "fio failed:"; grep -E 'err=|error' /tmp/loop-t/fio.out; tail -n 20 /tmp/loop-t/fio.out; return 1; }
	[ "$(grep -c 'err= 0' /tmp/loop-t/fio.out)" = 2 ] || { tail -n 40 /tmp/loop-t/fio.out; return 1; }
	grep -E '^ +(read|write):' /tmp/loop-t/fio.out
	expect_eq "failed requests" "$(rq_errors_stop "$(sysfs_of "$dev" dev | tr : ,)")" 0 || return 1
	$LOSETUP -d "$dev"
}

# --- unloading ---

# The C driver takes a module reference per bound device (and the open files of its devices
# hold one): rmmod is refused (EAGAIN) while anything is bound or open. loop_dio must do the same.
t_rmmod_refused_while_bound() {
	f=$(new_file "$VDB" held 1M) || return 1
	dev=$($LOSETUP -f --show "$f") || return 1
	if rmmod "$DRV"; then
		echo "rmmod $DRV succeeded while $dev was bound"
		load_driver "$DRV"
		return 1
	fi
	[ -d "/sys/module/$DRV" ] && [ -d "/sys/block/${dev#/dev/}/loop" ] || { echo "the device went"; return 1; }
	$LOSETUP -d "$dev" || return 1
	# An open unbound device.
	exec 7<"$dev"
	if rmmod "$DRV"; then
		exec 7<&-
		echo "rmmod $DRV succeeded while $dev was open"
		load_driver "$DRV"
		return 1
	fi
	exec 7<&-
	# An open /dev/loop-control.
	exec 7</dev/loop-control
	if rmmod "$DRV"; then
		exec 7<&-
		echo "rmmod $DRV succeeded while /dev/loop-control was open"
		load_driver "$DRV"
		return 1
	fi
	exec 7<&-
	[ -d "/sys/module/$DRV" ]
}

t_rmmod() {
	no_bound_devices || { echo "bound: $(bound_devices)"; return 1; }
	rmmod "$DRV" || { echo "rmmod $DRV failed with no device bound"; return 1; }
	[ ! -e "/sys/module/$DRV" ] || { echo "still loaded"; return 1; }
	[ ! -e /sys/class/misc/loop-control ] || { echo "loop-control still registered"; return 1; }
	ls -d /sys/block/loop* 2>/dev/null && { echo "loop disks left"; return 1; }
	wait_for test ! -e /dev/loop-control || { echo "/dev/loop-control stayed"; return 1; }
	wait_for test ! -e /dev/loop0 || { echo "/dev/loop0 stayed"; return 1; }
	! grep -q '^  7 ' /proc/devices || { echo "block major 7 still registered"; return 1; }
}

# Only one driver can own major 7 and misc minor 237: the second one refuses to load.
t_refused_while_other_loaded() {
	other=$1
	load_driver "$other" || { echo "modprobe $other failed"; return 1; }
	if load_driver "$DRV"; then
		echo "modprobe $DRV succeeded while $other was loaded"
		rmmod "$DRV"
		rmmod "$other"
		return 1
	fi
	[ ! -e "/sys/module/$DRV" ] || { echo "$DRV is loaded"; return 1; }
	rmmod "$other" || { echo "rmmod $other failed"; return 1; }
}

# t_refuses_to_load OTHER: with $DRV loaded, modprobe OTHER fails.
t_refuses_to_load() {
	if load_driver "$1"; then
		echo "modprobe $1 succeeded while $DRV was loaded"
		rmmod "$1"
		return 1
	fi
	[ ! -e "/sys/module/$1" ] || { echo "$1 is loaded"; return 1; }
	[ -d "/sys/module/$DRV" ] || { echo "$DRV went away"; return 1; }
}

# --- inline submission (issue 18): loop_dio tries direct reads and writes from queue_rq with
# IOCB_NOWAIT (inline_dio=1, the default) and hands the worker what would wait ---

# inline_counters DEV: the device's inline_ios, worker_ios, nowait_retries (every attempt given
# back) and nowait_requeues (those given back after the file queued them: the backing device's
# EAGAIN), as "i w r q" (they count from the device's creation, across bindings).
inline_counters() {
	echo "$(sysfs_of "$1" loop/inline_ios) $(sysfs_of "$1" loop/worker_ios)" \
		"$(sysfs_of "$1" loop/nowait_retries) $(sysfs_of "$1" loop/nowait_requeues)"
}

# counters_since "I W R Q" "I W R Q": the second minus the first.
counters_since() {
	echo "$1 $2" | awk '{ print $5 - $1, $6 - $2, $7 - $3, $8 - $4 }'
}

t_inline_is_default() {
	expect_file_eq /sys/module/loop_dio/parameters/inline_dio 1
}

# inline_fio_verify FILE DIRECT HIPRI: fio randwrite with crc32c verification through a loop
# device on FILE, the backing file verified after detach; leaves the device's counters in
# $counters and the NVMe interrupts during the run through the device in $fio_irqs.
inline_fio_verify() {
	dev=$($LOSETUP -f --show --direct-io="$([ "$2" = 1 ] && echo on || echo off)" "$1") || return 1
	start=$(inline_counters "$dev")
	irqs0=$(nvme_irqs)
	job="--name=inline --rw=randwrite --bs=4k --size=$FS_FIO_SIZE --iodepth=16 --verify=crc32c --verify_fatal=1"
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --direct="$2" --ioengine=io_uring --hipri="$3" --do_verify=1 \
		>/tmp/loop-t/fio.out 2>&1 || { echo "fio through $dev failed:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
	grep -q 'err= 0' /tmp/loop-t/fio.out || { tail -n 30 /tmp/loop-t/fio.out; return 1; }
	fio_irqs=$(($(nvme_irqs) - irqs0))
	counters=$(counters_since "$start" "$(inline_counters "$dev")")
	echo "inline_ios worker_ios nowait_retries nowait_requeues during the run: $counters"
	$LOSETUP -d "$dev" || return 1
	echo 1 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2086
	$FIO $job --filename="$1" --direct=1 --ioengine=psync --verify_only=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "the backing file does not verify:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
}

# Direct I/O on an allocated file: reads and writes go inline.
t_inline_direct_nvme() {
	f=$(new_file "$NVME" inline.img "$FS_FIO_SIZE" fill) || return 1
	inline_fio_verify "$f" 1 0 || return 1
	set -- $counters
	[ "$1" -gt 0 ] || { echo "no request went inline"; return 1; }
}

# A sparse file: a direct write must allocate blocks, which ext4 refuses to do without waiting
# (EAGAIN, at once, with no I/O queued): those writes go to the worker from queue_rq, not
# through a requeue; the data verifies.
t_inline_eagain_sparse() {
	f=$(new_file "$NVME" sparse.img "$FS_FIO_SIZE") || return 1
	inline_fio_verify "$f" 1 0 || return 1
	set -- $counters
	[ "$3" -gt 0 ] || { echo "no inline attempt was given back on a sparse file"; return 1; }
	[ "$4" -lt "$3" ] || { echo "every refused write made the requeue round trip ($4 of $3)"; return 1; }
	[ "$2" -ge "$3" ] || { echo "fewer requests on the worker ($2) than given back ($3)"; return 1; }
	[ "$1" -gt 0 ] || { echo "no request went inline (the verify reads should)"; return 1; }
}

# The backing device's queue full: the NVMe namespace's nr_requests down to 4 while fio reads
# through the loop device at iodepth 32. An inline read finds no tag free (REQ_NOWAIT), fails
# with EAGAIN after ext4 queued it, is given back to the block layer whole and served by the
# worker; the data verifies through the device and in the backing file. The same reads at the
# namespace's own depth are never given back (reads of an allocated file: no blocks to
# allocate, no times to update, no writer holding the inode lock). No request of the loop device
# fails: io_uring reissues a read that ended with EAGAIN, so fio's verification alone would not
# see a build that ends them with the backing device's EAGAIN (one did: 5679 inline attempts for
# 2048 reads, none given back, data verified); the block_rq_error tracepoint does.
t_inline_eagain_full_queue() {
	nr=/sys/block/$(basename "$(readlink -f "$NVME_DEV")")/queue/nr_requests
	depth=$(cat "$nr") || return 1
	f=$(new_file "$NVME" full.img "$FS_FIO_SIZE" fill) || return 1
	dev=$($LOSETUP -f --show --direct-io=on "$f") || return 1
	job="--name=full --rw=randwrite --bs=4k --size=$FS_FIO_SIZE --verify=crc32c --verify_fatal=1 --direct=1"
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --ioengine=io_uring --iodepth=16 --do_verify=0 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "writing through $dev failed:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
	start=$(inline_counters "$dev")
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --ioengine=io_uring --iodepth=32 --verify_only=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "verifying through $dev failed:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
	quiet=$(counters_since "$start" "$(inline_counters "$dev")")
	echo 4 >"$nr" || { echo "cannot set $nr to 4"; return 1; }
	echo "$nr: $depth, set to $(cat "$nr")"
	start=$(inline_counters "$dev")
	rq_errors_start || { echo "$depth" >"$nr"; echo "no block_rq_error tracepoint"; return 1; }
	# Submitted 32 at a time: io_uring plugs a batch, so the namespace's requests of one batch all
	# take their tags before any is dispatched, and the fifth finds none (on a fast host, reads
	# submitted one by one as others complete may never meet a full queue).
	# shellcheck disable=SC2086
	$FIO $job --filename="$dev" --ioengine=io_uring --iodepth=32 --iodepth_batch_submit=32 \
		--verify_only=1 >/tmp/loop-t/fio.out 2>&1
	rc=$?
	full=$(counters_since "$start" "$(inline_counters "$dev")")
	failed=$(rq_errors_stop "$(sysfs_of "$dev" dev | tr : ,)")
	echo "$depth" >"$nr" || { echo "cannot set $nr back to $depth"; return 1; }
	[ $rc = 0 ] || { echo "verifying through $dev with the backing queue full failed:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
	echo "inline_ios worker_ios nowait_retries nowait_requeues: $quiet at depth $depth, $full at depth 4"
	set -- $quiet
	expect_eq "reads given back at depth $depth" "$3" 0 || return 1
	expect_eq "failed requests on $dev with the backing queue full" "$failed" 0 || return 1
	set -- $full
	[ "$4" -gt 0 ] || { echo "no inline read was given back with the backing queue full"; return 1; }
	[ "$2" -ge "$4" ] || { echo "fewer requests on the worker ($2) than given back ($4)"; return 1; }
	[ "$1" -gt 0 ] || { echo "no read went inline"; return 1; }
	$LOSETUP -d "$dev" || return 1
	echo 1 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2086
	$FIO $job --filename="$f" --ioengine=psync --verify_only=1 >/tmp/loop-t/fio.out 2>&1 ||
		{ echo "the backing file does not verify:"; tail -n 30 /tmp/loop-t/fio.out; return 1; }
}

# Polled direct I/O inline (IOCB_HIPRI | IOCB_NOWAIT): completed by polling, so (as in
# iopoll_fio_verify_nvme) fewer than one NVMe interrupt per 32 I/Os: the few there are come from
# ext4's journal on the same namespace.
t_inline_polled_nvme() {
	f=$(new_file "$NVME" inline.img "$FS_FIO_SIZE" fill) || return 1
	inline_fio_verify "$f" 1 1 || return 1
	ios=$((2 * $(echo "$FS_FIO_SIZE" | sed 's/M$//') * 256))
	echo "NVMe interrupts: $fio_irqs during $ios polled I/Os through the device"
	set -- $counters
	[ "$1" -gt 0 ] || { echo "no polled request went inline"; return 1; }
	[ "$fio_irqs" -lt $((ios / 32)) ] || { echo "polled inline I/O raised interrupts"; return 1; }
}

# Buffered I/O never goes inline.
t_inline_not_buffered() {
	f=$(new_file "$NVME" inline.img "$FS_FIO_SIZE" fill) || return 1
	inline_fio_verify "$f" 0 0 || return 1
	set -- $counters
	expect_eq "inline_ios with buffered I/O" "$1" 0 || return 1
	[ "$2" -gt 0 ] || { echo "worker_ios did not count the buffered requests"; return 1; }
}

# The worker pass: loop_dio with inline_dio=0 serves every request on its worker.
t_worker_loads() {
	if [ -d /sys/module/loop_dio ]; then rmmod loop_dio || return 1; fi
	# shellcheck disable=SC2086
	load_driver loop_dio $LOOP_DIO_PARAMS || { echo "loading loop_dio $LOOP_DIO_PARAMS failed"; return 1; }
	expect_file_eq /sys/module/loop_dio/parameters/inline_dio 0 || return 1
	wait_for test -b /dev/loop0
}

t_worker_direct_nvme() {
	f=$(new_file "$NVME" worker.img "$FS_FIO_SIZE" fill) || return 1
	inline_fio_verify "$f" 1 0 || return 1
	set -- $counters
	expect_eq "inline_ios with inline_dio=0" "$1" 0 || return 1
	expect_eq "nowait_retries with inline_dio=0" "$3" 0 || return 1
	[ "$2" -gt 0 ] || { echo "worker_ios did not count the requests"; return 1; }
}

t_worker_unload() {
	no_bound_devices || { echo "bound: $(bound_devices)"; return 1; }
	rmmod loop_dio
}

# --- the run ---

# lt NAME CMD...: ktap_test (which prints how long the test took), unless a hung task makes it moot.
# LOOP_ONLY (shell patterns, separated by spaces) runs only the tests whose names match one,
# while working on them.
lt_wanted() {
	[ -n "${LOOP_ONLY:-}" ] || return 0
	set -f
	for _p in $LOOP_ONLY; do
		# shellcheck disable=SC2254
		case "$1" in $_p) set +f; return 0 ;; esac
	done
	set +f
	return 1
}

# lt_full WHY NAME CMD...: lt, but on the debug kernel only in make check-full (CHECK_FULL=1):
# make check's debug run covers the test's rust44 paths with other tests (WHY says which), and
# the debug kernel's 40-60 s per fio run would put make check past its budget.
lt_full() {
	_why=$1
	shift
	if [ -n "$LIGHT" ] && [ "${CHECK_FULL:-0}" != 1 ]; then
		lt_wanted "$1" && ktap_skip "$1" "debug kernel: in make check-full; $_why"
		return 0
	fi
	lt "$@"
}

lt() {
	lt_wanted "$1" || return 0
	if [ -e $HUNG ]; then
		ktap_skip "$1" "a task hung in the driver in an earlier test"
		return 0
	fi
	ktap_test "$@"
}

ktap_begin
mkdir -p "$VDB" "$NVME"
# -F: run.sh may run twice in one boot (by hand, e.g. once per module build).
$MKFS -q -F -E nodiscard /dev/vdb && mount -t ext4 /dev/vdb "$VDB" || echo "# cannot set up ext4 on vdb"
nvme=${NVME_CONV:+/dev/$NVME_CONV}
[ -b "${nvme:-/dev/rust44/nvme-conv}" ] || nvme=/dev/rust44/nvme-conv
$MKFS -q -F -E nodiscard "$nvme" && mount -t ext4 "$nvme" "$NVME" || echo "# cannot set up ext4 on $nvme"
NVME_DEV=$nvme
mkdir -p "$VDB/t" "$NVME/t" /tmp/loop-t

done_drivers=""
for DRV in $DRIVERS; do
	# loop_ioctl asserts rust44's stricter direct I/O rules for loop_dio (see strict_dio()).
	export LOOP_DRIVER=$DRV
	if ! module_built "$DRV"; then
		ktap_skip "${DRV}_suite" "module $DRV is not built for $(uname -r) (not in modules.dep)"
		continue
	fi
	# The drivers tested before this one (loaded, then unloaded): with one loaded, the other
	# must refuse to load, both ways round.
	for other in $done_drivers; do
		[ "$other" = "$DRV" ] && continue
		ktap_test "${DRV}_refused_while_${other}_loaded" t_refused_while_other_loaded "$other"
	done
	if [ "$DRV" = loop_dio ]; then
		ktap_test "${DRV}_refuses_too_many_poll_queues" t_refuses_too_many_poll_queues
	fi
	lt "${DRV}_refuses_too_many_partitions" t_refuses_too_many_partitions
	ktap_test "${DRV}_module_loads" t_module_loads
	if [ ! -d "/sys/module/$DRV" ]; then
		ktap_skip "${DRV}_suite" "module $DRV did not load"
		continue
	fi
	lt "${DRV}_module_parameters" t_module_parameters
	for other in $done_drivers; do
		[ "$other" = "$DRV" ] && continue
		ktap_test "${other}_refused_while_${DRV}_loaded" t_refuses_to_load "$other"
	done
	lt_full "the ioctls run on tmpfs" "${DRV}_ioctl_ext4" t t_ioctl_ext4
	lt "${DRV}_ioctl_tmpfs" t t_ioctl_tmpfs
	lt "${DRV}_losetup_attach_list_detach" t t_losetup_attach_list_detach
	lt "${DRV}_losetup_options" t t_losetup_options
	lt "${DRV}_losetup_direct_io" t t_losetup_direct_io
	lt "${DRV}_losetup_capacity" t t_losetup_capacity
	lt "${DRV}_losetup_partscan" t t_losetup_partscan
	lt "${DRV}_losetup_detach_all" t t_losetup_detach_all
	lt "${DRV}_blkdiscard" t t_blkdiscard
	lt "${DRV}_autoclear_after_umount" t t_autoclear_after_umount
	lt "${DRV}_concurrent_setup_teardown" t t_concurrent_setup_teardown
	lt "${DRV}_open_vs_remove" t t_open_vs_remove
	lt "${DRV}_sysfs_vs_detach" t t_sysfs_vs_detach
	lt "${DRV}_partscan_probers" t t_partscan_probers
	lt "${DRV}_change_fd_cycle" t t_change_fd_cycle
	lt "${DRV}_tmpfs_write_zeroes" t t_tmpfs_write_zeroes
	lt "${DRV}_fio_verify_buffered_vdb" t t_fio_verify_buffered_vdb
	if [ -z "$LIGHT" ]; then
		lt "${DRV}_fio_verify_direct_vdb" t t_fio_verify_direct_vdb
		lt "${DRV}_fio_verify_buffered_nvme" t t_fio_verify_buffered_nvme
	else
		ktap_skip "${DRV}_fio_verify_direct_vdb" "debug kernel: direct I/O is verified on NVMe"
		ktap_skip "${DRV}_fio_verify_buffered_nvme" "debug kernel: buffered I/O is verified on vdb"
	fi
	lt "${DRV}_fio_verify_direct_nvme" t t_fio_verify_direct_nvme
	lt_full "a footprint, not a memory-safety path" "${DRV}_dio_page_cache_footprint" t t_dio_page_cache_footprint
	lt "${DRV}_iopoll_nvme" t t_iopoll_nvme
	lt "${DRV}_iopoll_follows_dio_and_backing" t t_iopoll_follows_dio_and_backing
	if [ "$DRV" = loop_dio ]; then
		lt "${DRV}_iopoll_fio_verify_nvme" t t_iopoll_fio_verify_nvme
		lt_full "polling is verified on a file" "${DRV}_iopoll_block_device" t t_iopoll_block_device
		lt "${DRV}_iopoll_dio_toggle_under_io" t t_iopoll_dio_toggle_under_io
		lt "${DRV}_queues_past_depth" t t_queues_past_depth
		lt "${DRV}_inline_is_default" t_inline_is_default
		lt_full "inline direct I/O is verified on a sparse file" "${DRV}_inline_direct_nvme" t t_inline_direct_nvme
		lt "${DRV}_inline_eagain_sparse" t t_inline_eagain_sparse
		if [ -z "$LIGHT" ]; then
			lt "${DRV}_inline_eagain_full_queue" t t_inline_eagain_full_queue
		else
			# Not in check-full either: the report is lockdep's, not this driver's bug.
			lt_wanted "${DRV}_inline_eagain_full_queue" && ktap_skip "${DRV}_inline_eagain_full_queue" \
				"debug kernel: changing nr_requests of the NVMe namespace under an inline loop_dio device makes lockdep report a cycle through lock classes all queues and tag sets share (README, inline direct I/O)"
		fi
		lt "${DRV}_inline_polled_nvme" t t_inline_polled_nvme
		lt_full "buffered I/O is verified on vdb" "${DRV}_inline_not_buffered" t t_inline_not_buffered
	fi
	if [ -e $HUNG ]; then
		ktap_skip "${DRV}_rmmod" "a task hung in the driver in an earlier test"
		break
	fi
	lt "${DRV}_rmmod_refused_while_bound" t t_rmmod_refused_while_bound
	cleanup
	ktap_test "${DRV}_rmmod" t_rmmod
	# Leave nothing loaded for the next driver.
	[ -d "/sys/module/$DRV" ] && { $LOSETUP -D; rmmod "$DRV"; }
	done_drivers="$done_drivers $DRV"
done
# The worker pass: loop_dio once more with inline_dio=0, every request on its worker (what
# inline attempts fall back to; make bench's worker-only rows).
case " $DRIVERS " in
*" loop_dio "*)
	DRV=loop_dio
	LOOP_DIO_PARAMS=inline_dio=0
	if module_built loop_dio && [ ! -e $HUNG ] && lt_wanted loop_dio_worker_loads; then
		ktap_test loop_dio_worker_loads t_worker_loads
		if [ -d /sys/module/loop_dio ]; then
			lt loop_dio_worker_direct_nvme t t_worker_direct_nvme
			lt_full "the worker's polled path is taken by polled requests refused inline" \
				loop_dio_iopoll_fio_verify_nvme_worker t t_iopoll_fio_verify_nvme
			lt_full "full queues are verified inline" loop_dio_queues_past_depth_worker t t_queues_past_depth
			lt_full "direct I/O is switched under polled I/O inline" \
				loop_dio_iopoll_dio_toggle_under_io_worker t t_iopoll_dio_toggle_under_io
			ktap_test loop_dio_worker_unload t_worker_unload
		fi
	fi
	;;
esac
umount "$VDB" "$NVME"
ktap_end
