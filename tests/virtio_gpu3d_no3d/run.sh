# virtio_gpu3d_no3d: the C virtio_gpu and then rust44's virtio_gpu3d on a virtio-gpu without 3D
# (vm.conf), in one boot: GETPARAM 3D_FEATURES is 0, the 3D ioctls fail cleanly, 2D resources
# work (tests/virtio_gpu3d/src/vgpu_no3d.c, built by that suite); unbind and rmmod clean.
. /rust44/ktap.sh
cd /rust44/tests/virtio_gpu3d || exit 1
. ./lib.sh

no3d_kselftest() {
	VGPU_NODE=$NODE ./vgpu_no3d
}

# driver_suite TAG MODULE
driver_suite() {
	ktap_test "${1}_binds" bind_driver "$2" "$2"
	NODE=$(render_node)
	if [ -z "$NODE" ]; then
		ktap_skip "${1}_no3d_kselftest" "$2 did not bind"
		return
	fi
	ktap_test "${1}_no3d_kselftest" no3d_kselftest
	ktap_test "${1}_unbinds" unbind_driver "$2" "$2"
}

ktap_begin
if [ -z "$GPU" ]; then
	ktap_skip virtio_gpu3d_no3d_suite "no virtio-gpu device (vm.conf)"
	ktap_end
	exit
fi
driver_suite c virtio_gpu
if virtio_gpu3d_built; then
	driver_suite rust virtio_gpu3d
else
	ktap_skip rust_suite "virtio_gpu3d is not built yet"
fi
ktap_end
