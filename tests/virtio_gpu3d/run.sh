# virtio_gpu3d: one virtio-gpu with virgl 3D (vm.conf), driven first by the C virtio_gpu (the
# reference) and then by rust44's virtio_gpu3d, in the same boot: the device is unbound from one
# driver (rmmod) and the other is loaded, which binds it. Each driver runs the raw-ioctl kselftest
# (vgpu_test) and Debian's unmodified Mesa (gltest, in the chroot of the suite's Mesa image);
# what each reports and renders must match. rust44's half is skipped while its module is not built.
. /rust44/ktap.sh
cd /rust44/tests/virtio_gpu3d || exit 1
. ./lib.sh

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
		ktap_test "${tag}_mesa" sh -c 'echo "no Mesa image (make deps makes it: tools/guest-image.sh mesa)"; exit 1'
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
if virtio_gpu3d_built; then
	driver_suite rust virtio_gpu3d virtio_gpu3d
else
	ktap_skip rust_suite "virtio_gpu3d is not built yet"
fi
ktap_end
