// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu3d on a virtio-gpu without 3D (tests/virtio_gpu3d_no3d): GETPARAM says so, the 3D
 * ioctls fail cleanly, and 2D resources still work. The same for the C virtio_gpu and rust44's
 * virtio_gpu3d; the render node is $VGPU_NODE.
 */
#include <stdlib.h>

#include "kselftest_harness.h"
#include "vgpu.h"

FIXTURE(no3d)
{
	int fd;
};

FIXTURE_SETUP(no3d)
{
	const char *node = getenv("VGPU_NODE") ? getenv("VGPU_NODE") : "/dev/dri/renderD128";

	self->fd = open(node, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", node, strerror(errno));
}

FIXTURE_TEARDOWN(no3d)
{
	close(self->fd);
}

TEST_F(no3d, getparam)
{
	int value = -1;

	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_3D_FEATURES, &value));
	ASSERT_EQ(0, value);
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_CAPSET_QUERY_FIX, &value));
	ASSERT_EQ(1, value);
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &value));
	ASSERT_EQ(0, value);
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_CONTEXT_INIT, &value));
	ASSERT_EQ(0, value);
}

/*
 * The 3D ioctls: ENOSYS (as the C driver says); a resource with 3D parameters is refused with
 * EINVAL (both drivers make 2D resources).
 */
static int refused_3d(int ret)
{
	return ret == -EINVAL;
}

TEST_F(no3d, errors_for_3d)
{
	uint32_t caps[16], bo = 0, res = 0;
	struct drm_virtgpu_get_caps gc = { .cap_set_id = 1, .cap_set_ver = 1, .addr = (uintptr_t)caps, .size = sizeof(caps) };
	struct virgl_cs cs = { 0 };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc));
	EXPECT_EQ(ENOSYS, errno);
	cs_sub_ctx(&cs, 1);
	EXPECT_EQ(-ENOSYS, vgpu_exec(self->fd, &cs, NULL, 0, 0, NULL));
	/* A 3D target, depth, samples, levels or layers. */
	EXPECT_TRUE(refused_3d(vgpu_create(self->fd, PIPE_BUFFER, VIRGL_FORMAT_R8_UNORM, 0, 4096, 1, 4096, &bo, &res)));
	struct drm_virtgpu_resource_create rc = {
		.target = PIPE_TEXTURE_2D, .format = VIRGL_FORMAT_B8G8R8A8_UNORM, .width = 16, .height = 16,
		.depth = 2, .array_size = 1, .size = 1024,
	};

	EXPECT_TRUE(refused_3d(ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &rc) ? -errno : 0));
	rc.depth = 1;
	rc.nr_samples = 4;
	EXPECT_TRUE(refused_3d(ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &rc) ? -errno : 0));
	rc.nr_samples = 0;
	rc.array_size = 2;
	EXPECT_TRUE(refused_3d(ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &rc) ? -errno : 0));
	struct drm_virtgpu_context_set_param cp = { VIRTGPU_CONTEXT_PARAM_CAPSET_ID, VIRTGPU_DRM_CAPSET_VIRGL };
	struct drm_virtgpu_context_init ci = { .num_params = 1, .ctx_set_params = (uintptr_t)&cp };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &ci));
	EXPECT_EQ(EINVAL, errno);
	/* A 2D resource: no transfer back from the host. */
	ASSERT_EQ(0, vgpu_create(self->fd, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8A8_UNORM, 0, 16, 16, 1024, &bo, &res));
	EXPECT_EQ(-ENOSYS, vgpu_transfer(self->fd, 0, bo, 16, 16));
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
}

/* 2D resources: create, map, write, transfer to the host, wait. */
TEST_F(no3d, resource_2d)
{
	struct drm_virtgpu_resource_info info = { 0 };
	uint32_t bo = 0, res = 0, *p;

	ASSERT_EQ(0, vgpu_create(self->fd, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8A8_UNORM, 0, 64, 64, 64 * 64 * 4, &bo, &res));
	ASSERT_NE(0, res);
	info.bo_handle = bo;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info));
	ASSERT_EQ(res, info.res_handle);
	p = vgpu_mmap(self->fd, bo, 64 * 64 * 4);
	ASSERT_NE(NULL, p);
	for (int i = 0; i < 64 * 64; i++)
		p[i] = i;
	ASSERT_EQ(0, vgpu_transfer(self->fd, 1, bo, 64, 64));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	ASSERT_EQ(-ENOENT, vgpu_wait(self->fd, bo + 100, 0));
	munmap(p, 64 * 64 * 4);
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
}

TEST_HARNESS_MAIN
