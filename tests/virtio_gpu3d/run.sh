# virtio_gpu3d: one virtio-gpu with virgl 3D (vm.conf), driven first by the C virtio_gpu (the
# reference) and then by rust44's virtio_gpu3d, in the same boot: the device is unbound from one
# driver (rmmod) and the other is loaded, which binds it. Each driver runs the raw-ioctl kselftest
# (vgpu_test) and Debian's unmodified Mesa (gltest, in the chroot of the suite's Mesa image);
# what each reports and renders must match. rust44's half is skipped while its module is not built.
. /rust44/ktap.sh
cd /rust44/tests/virtio_gpu3d || exit 1
HERE=$PWD
VIRTIO_ID_GPU=0x0010

# The virtio device of the GPU (virtioN), and the render node its driver made.
gpu_dev() {
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device")" = "$VIRTIO_ID_GPU" ] && { basename "$d"; return 0; }
	done
	return 1
}
GPU=$(gpu_dev)

render_node() {
	for r in /sys/bus/virtio/devices/"$GPU"/drm/renderD* /sys/bus/virtio/devices/"$GPU"/../drm/renderD*; do
		[ -e "$r" ] && { echo "/dev/dri/${r##*/}"; return 0; }
	done
	return 1
}

# bind_driver MODULE DRIVER: loads MODULE, which binds the GPU; waits for its render node.
bind_driver() {
	if [ "$1" = virtio_gpu ]; then
		modprobe virtio_gpu || return 1
	else
		load_checkout_module "$1" || return 1
	fi
	i=0
	while ! NODE=$(render_node) || [ ! -c "$NODE" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "no render node after loading $1"; ls -l /sys/bus/virtio/devices/"$GPU"/; return 1; }
		sleep 0.1
	done
	drv=$(basename "$(readlink "/sys/bus/virtio/devices/$GPU/driver")")
	expect_eq "driver of $GPU" "$drv" "$2" || return 1
	echo "$GPU bound to $drv, render node $NODE"
}

# unbind_driver MODULE DRIVER: unbinds the GPU (sysfs) and unloads the module; rust44's while a
# Mesa process renders (its commands in flight, its buffers mapped), which then ends. (The C
# virtio_gpu WARNs in drm_mm_takedown when the last file of an unbound device closes with its
# objects' mmap offsets left: not the reference's test.)
unbind_driver() {
	SPIN_PID=""
	if [ "$MESA" = 1 ] && [ "$1" != virtio_gpu ]; then
		gl_spin /tmp/spin-unbind
		sleep 2
		kill -0 "$SPIN_PID" 2>/dev/null || { echo "the renderer ended early:"; cat /tmp/spin-unbind; return 1; }
	fi
	echo "$GPU" >"/sys/bus/virtio/drivers/$2/unbind" || return 1
	[ ! -e "/sys/bus/virtio/devices/$GPU/driver" ] || { echo "$GPU still bound"; return 1; }
	[ -z "$(render_node)" ] || { echo "render node $(render_node) still there"; return 1; }
	if [ -n "$SPIN_PID" ]; then
		sleep 1
		kill -9 "$SPIN_PID"
		wait "$SPIN_PID"
		echo "the renderer after the unbind: $(sort -u /tmp/spin-unbind | head -n 3 | tr '\n' ' ')"
	fi
	# Files of the processes that just ended may still be closing.
	i=0
	while ! rmmod "$1" 2>/tmp/rmmod.err; do
		i=$((i + 1))
		[ $i -lt 50 ] || { cat /tmp/rmmod.err; lsmod; return 1; }
		sleep 0.1
	done
	[ $i = 0 ] || echo "rmmod took $i retries"
}

# kselftest TAG: the raw-ioctl kselftest on the bound driver; its record in /tmp/record-TAG.
kselftest() {
	rm -f "/tmp/record-$1"
	VGPU_NODE=$NODE VGPU_RECORD=/tmp/record-$1 ./vgpu_test
}

same_record() {
	[ -f /tmp/record-c ] || { echo "no record of the C driver"; return 1; }
	if ! diff /tmp/record-c "/tmp/record-$1"; then
		echo "the drivers report differently (- C, + rust44)"
		return 1
	fi
	cat "/tmp/record-$1"
}

# The Mesa image (tools/guest-mesa.sh) at /mesa, with the pseudo file systems and this suite's
# directory (/rust44) bound into it for the chroot.
mesa_mount() {
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = rust44mesa ] && MESA_DEV=/dev/${b##*/}
	done
	[ -n "${MESA_DEV:-}" ] || return 1
	mkdir -p /mesa
	mount -t ext4 -o ro "$MESA_DEV" /mesa || return 1
	mount -o bind /dev /mesa/dev && mount -o bind /proc /mesa/proc && mount -o bind /sys /mesa/sys &&
		mount -t tmpfs tmpfs /mesa/tmp && mount -o bind "$HERE" /mesa/rust44
}

# gl ARGS...: gltest on Debian's Mesa; no shader cache (the image is read-only).
gl() {
	HOME=/tmp MESA_SHADER_CACHE_DISABLE=true chroot /mesa /rust44/gltest "$@"
}

# gl_spin OUT: gltest spin in the background, its pid (gltest's own: the subshell execs) in
# SPIN_PID.
gl_spin() {
	(HOME=/tmp MESA_SHADER_CACHE_DISABLE=true exec chroot /mesa /rust44/gltest spin) >"$1" 2>&1 &
	SPIN_PID=$!
}

# What Mesa says about the display and context (with eglinfo's own report), and the renderer
# must be virgl: Mesa loaded virtio_gpu_dri.so for this driver, not its software fallback.
mesa_info() {
	gl info >"/tmp/info-$1" || { cat "/tmp/info-$1"; return 1; }
	cat "/tmp/info-$1"
	echo "--- eglinfo"
	# Without its tables of configurations.
	HOME=/tmp chroot /mesa /usr/bin/eglinfo.x86_64-linux-gnu 2>&1 |
		grep -v -e '^ *0x' -e '^ *bf lv' -e '^ *id sz' -e '^----' | head -n 80
	grep -q '^GL_RENDERER: virgl' "/tmp/info-$1" || { echo "the renderer is not virgl"; return 1; }
}

mesa_render() {
	gl render >"/tmp/render-$1"
	rc=$?
	cat "/tmp/render-$1"
	[ $rc = 0 ] || return 1
	grep -q '^GL_RENDERER: virgl' "/tmp/render-$1" || { echo "the renderer is not virgl"; return 1; }
}

# The same strings and the same pixels as through the C driver.
mesa_same_as_c() {
	bad=0
	for f in info render; do
		diff "/tmp/$f-c" "/tmp/$f-$1" || { echo "$f differs from the C driver's (- C, + rust44)"; bad=1; }
	done
	return $bad
}

# Four processes render at once, each its own clear colour; each checks its own pixels.
mesa_parallel() {
	pids=""
	for i in 1 2 3 4; do
		gl render $((i * 40)) $((i * 20)) $((255 - i * 30)) >"/tmp/par-$i" 2>&1 &
		pids="$pids $!"
	done
	bad=0 i=0
	for p in $pids; do
		i=$((i + 1))
		wait "$p" || { echo "process $i failed:"; cat "/tmp/par-$i"; bad=1; }
		grep -q '^GL_RENDERER: virgl' "/tmp/par-$i" || { echo "process $i did not render with virgl:"; cat "/tmp/par-$i"; bad=1; }
	done
	return $bad
}

# A process killed (SIGKILL) while it renders: its context goes with it, and the next one renders.
mesa_killed() {
	gl_spin /tmp/spin
	sleep 3
	kill -0 "$SPIN_PID" 2>/dev/null || { echo "the renderer ended before it was killed:"; cat /tmp/spin; return 1; }
	kill -9 "$SPIN_PID"
	wait "$SPIN_PID"
	gl render >/tmp/after-kill || { cat /tmp/after-kill; return 1; }
	diff "/tmp/render-$1" /tmp/after-kill || { echo "rendering after the kill differs"; return 1; }
}

# driver_suite TAG MODULE DRIVER
driver_suite() {
	tag=$1 mod=$2 drv=$3
	ktap_test "${tag}_binds" bind_driver "$mod" "$drv" || true
	NODE=$(render_node)
	if [ -z "$NODE" ]; then
		ktap_skip "${tag}_kselftest" "$mod did not bind"
		return
	fi
	ktap_test "${tag}_kselftest" kselftest "$tag"
	[ "$tag" = c ] || ktap_test "${tag}_reports_as_c" same_record "$tag"
	if [ "$MESA" = 1 ]; then
		ktap_test "${tag}_mesa_info" mesa_info "$tag"
		ktap_test "${tag}_mesa_render" mesa_render "$tag"
		[ "$tag" = c ] || ktap_test "${tag}_mesa_same_as_c" mesa_same_as_c "$tag"
		ktap_test "${tag}_mesa_parallel" mesa_parallel
		ktap_test "${tag}_mesa_killed_mid_render" mesa_killed "$tag"
	else
		ktap_test "${tag}_mesa" sh -c 'echo "no Mesa image (make deps makes it: tools/guest-mesa.sh)"; exit 1'
	fi
	ktap_test "${tag}_unbinds" unbind_driver "$mod" "$drv"
}

ktap_begin
if [ -z "$GPU" ]; then
	ktap_skip virtio_gpu3d_suite "no virtio-gpu device (vm.conf)"
	ktap_end
	exit
fi
MESA=0
mesa_mount && MESA=1
driver_suite c virtio_gpu virtio_gpu
if [ -f /rust44/extmod/virtio_gpu3d.ko ] || grep -q '/virtio_gpu3d\.ko:' "/lib/modules/$(uname -r)/modules.dep"; then
	driver_suite rust virtio_gpu3d virtio_gpu3d
else
	ktap_skip rust_suite "virtio_gpu3d is not built yet"
fi
ktap_end
