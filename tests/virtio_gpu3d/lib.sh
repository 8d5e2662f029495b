# virtio_gpu3d: what run.sh and bench.sh share: the GPU's virtio device, binding and unbinding
# its drivers, the Mesa image's chroot. Sourced (after /rust44/ktap.sh) in the suite's directory.
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
	if [ "${MESA:-0}" = 1 ] && [ "${UNBIND_WHILE_RENDERING:-1}" = 1 ] && [ "$1" != virtio_gpu ]; then
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

# The Mesa image (tools/guest-image.sh mesa) at /mesa, with the pseudo file systems and this suite's
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

# virtio_gpu3d_built: rust44's module is there, built out of tree or in the tree.
virtio_gpu3d_built() {
	[ -f /rust44/extmod/virtio_gpu3d.ko ] || grep -q '/virtio_gpu3d\.ko:' "/lib/modules/$(uname -r)/modules.dep"
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

