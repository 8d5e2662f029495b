// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

__rust_helper bool rust_helper_virtio_has_feature(const struct virtio_device *vdev,
						  unsigned int fbit)
{
	return virtio_has_feature(vdev, fbit);
}

__rust_helper int rust_helper_virtio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
					      struct virtqueue *vqs[],
					      struct virtqueue_info vqs_info[],
					      struct irq_affinity *desc)
{
	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, desc);
}

__rust_helper void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

__rust_helper u8 rust_helper_virtio_cread8(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread8(vdev, offset);
}

__rust_helper u16 rust_helper_virtio_cread16(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread16(vdev, offset);
}

__rust_helper u32 rust_helper_virtio_cread32(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread32(vdev, offset);
}

__rust_helper u64 rust_helper_virtio_cread64(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread64(vdev, offset);
}

__rust_helper void rust_helper_virtio_cwrite32(struct virtio_device *vdev, unsigned int offset,
					       u32 val)
{
	virtio_cwrite32(vdev, offset, val);
}

__rust_helper bool rust_helper_virt_addr_valid(const void *addr)
{
	return virt_addr_valid(addr);
}
