// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu3d: the virtgpu_drm.h uAPI through raw ioctls, the same tests for the C virtio_gpu
 * (the reference) and rust44's virtio_gpu3d. The render node is $VGPU_NODE
 * (/dev/dri/renderD128 by default). What the device and driver report (version, parameters,
 * capsets) goes to $VGPU_RECORD, one "key value" a line, for run.sh to compare the two drivers.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kselftest_harness.h"
#include "vgpu.h"

#define TEX 64

static const char *node(void)
{
	const char *n = getenv("VGPU_NODE");

	return n ? n : "/dev/dri/renderD128";
}

static void record(const char *key, const char *fmt, unsigned long long v)
{
	const char *path = getenv("VGPU_RECORD");
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "%s ", key);
	fprintf(f, fmt, v);
	fputc('\n', f);
	fclose(f);
}

/* A BGRA pixel of the clear colour (r, g, b, a) in [0, 1]: B, G, R, A bytes in memory. */
static uint32_t bgra(unsigned int r, unsigned int g, unsigned int b, unsigned int a)
{
	return b | g << 8 | r << 16 | (uint32_t)a << 24;
}

/* The index of the first pixel of p (n of them) that is not want, or -1. */
static int first_other(const uint32_t *p, int n, uint32_t want)
{
	for (int i = 0; i < n; i++)
		if (p[i] != want)
			return i;
	return -1;
}

static int fence_status(int fence)
{
	struct sync_file_info info = { 0 };

	if (ioctl(fence, SYNC_IOC_FILE_INFO, &info))
		return -errno;
	return info.status;
}

FIXTURE(gpu)
{
	int fd;
};

FIXTURE_SETUP(gpu)
{
	self->fd = open(node(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", node(), strerror(errno));
}

FIXTURE_TEARDOWN(gpu)
{
	close(self->fd);
}

TEST_F(gpu, version)
{
	char name[64] = { 0 }, date[64] = { 0 }, desc[128] = { 0 };
	struct drm_version v = {
		.name = name, .name_len = sizeof(name) - 1, .date = date, .date_len = sizeof(date) - 1,
		.desc = desc, .desc_len = sizeof(desc) - 1,
	};

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VERSION, &v));
	TH_LOG("driver %s %d.%d.%d (%s)", name, v.version_major, v.version_minor,
	       v.version_patchlevel, desc);
	/* Mesa picks its driver (virtio_gpu_dri.so) by this name. */
	ASSERT_STREQ("virtio_gpu", name);
	ASSERT_EQ(0, v.version_major);
	record("version_major", "%llu", v.version_major);
}

TEST_F(gpu, getparam)
{
	static const struct {
		const char *name;
		uint64_t param;
	} params[] = {
		{ "3d_features", VIRTGPU_PARAM_3D_FEATURES },
		{ "capset_query_fix", VIRTGPU_PARAM_CAPSET_QUERY_FIX },
		{ "resource_blob", VIRTGPU_PARAM_RESOURCE_BLOB },
		{ "host_visible", VIRTGPU_PARAM_HOST_VISIBLE },
		{ "cross_device", VIRTGPU_PARAM_CROSS_DEVICE },
		{ "context_init", VIRTGPU_PARAM_CONTEXT_INIT },
		{ "supported_capset_ids", VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs },
		{ "explicit_debug_name", VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME },
	};
	int value;

	for (unsigned int i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		value = -1;
		ASSERT_EQ(0, vgpu_getparam(self->fd, params[i].param, &value)) TH_LOG("%s", params[i].name);
		TH_LOG("%s = %d", params[i].name, value);
		record(params[i].name, "%llu", value);
		if (params[i].param != VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs)
			ASSERT_TRUE(value == 0 || value == 1) TH_LOG("%s = %d", params[i].name, value);
	}
	/* QEMU's virtio-gpu-gl offers virgl; the capset fix is always there. */
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_3D_FEATURES, &value));
	ASSERT_EQ(1, value);
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_CAPSET_QUERY_FIX, &value));
	ASSERT_EQ(1, value);
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &value));
	ASSERT_NE(0, value & (1 << VIRTGPU_DRM_CAPSET_VIRGL));
	/* No blob alignment on this device: ENOENT, as for a parameter the device lacks. */
	ASSERT_EQ(-ENOENT, vgpu_getparam(self->fd, VIRTGPU_PARAM_BLOB_ALIGNMENT, &value));
	ASSERT_EQ(-EINVAL, vgpu_getparam(self->fd, 0, &value));
	ASSERT_EQ(-EINVAL, vgpu_getparam(self->fd, 1000, &value));
	ASSERT_EQ(-EFAULT, vgpu_getparam(self->fd, VIRTGPU_PARAM_3D_FEATURES, (int *)8));
}

TEST_F(gpu, get_caps)
{
	uint32_t caps[512];
	int mask = 0;

	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &mask));
	for (uint32_t id = VIRTGPU_DRM_CAPSET_VIRGL; id <= VIRTGPU_DRM_CAPSET_VIRGL2; id++) {
		struct drm_virtgpu_get_caps gc = {
			.cap_set_id = id, .cap_set_ver = id, .addr = (uintptr_t)caps, .size = sizeof(caps),
		};
		uint32_t sum = 0;
		char key[32];

		if (!(mask & (1 << id)))
			continue;
		memset(caps, 0xa5, sizeof(caps));
		ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc)) TH_LOG("capset %u: %s", id, strerror(errno));
		/* virgl_caps_v1.max_version, then the formats the host renders. */
		TH_LOG("capset %u: max_version %u", id, caps[0]);
		ASSERT_NE(0, caps[0]);
		ASSERT_NE(0xa5a5a5a5, caps[0]);
		for (unsigned int i = 0; i < sizeof(caps) / 4; i++)
			sum = sum * 31 + caps[i];
		snprintf(key, sizeof(key), "capset%u_sum", id);
		record(key, "%08llx", sum);
		/* Again, from the driver's cache: the same bytes. */
		uint32_t again[512];

		memset(again, 0xa5, sizeof(again));
		gc.addr = (uintptr_t)again;
		ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc));
		ASSERT_EQ(0, memcmp(caps, again, sizeof(caps)));
		/* A short buffer gets the first bytes only. */
		memset(again, 0x5a, sizeof(again));
		gc.size = 8;
		ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc));
		ASSERT_EQ(caps[0], again[0]);
		ASSERT_EQ(0x5a5a5a5a, again[2]);
	}
	struct drm_virtgpu_get_caps bad = { .cap_set_id = 1, .cap_set_ver = 1, .addr = (uintptr_t)caps };

	bad.size = 0;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &bad));
	EXPECT_EQ(EINVAL, errno);
	bad.size = sizeof(caps);
	bad.cap_set_id = 99;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &bad));
	EXPECT_EQ(EINVAL, errno);
	bad.cap_set_id = 1;
	bad.cap_set_ver = 99;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &bad));
	EXPECT_EQ(EINVAL, errno);
	bad.cap_set_ver = 1;
	bad.addr = 8;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &bad));
	EXPECT_EQ(EFAULT, errno);
}

static uint32_t pattern(uint32_t i)
{
	return 0x01000000u * (i & 0xff) + i * 2654435761u % 0xffffff;
}

/* Write through mmap, push to the host, clear the pages, pull back: the host kept every byte. */
TEST_F(gpu, transfer_round_trip)
{
	const size_t size = TEX * TEX * 4;
	struct drm_virtgpu_resource_info info = { 0 };
	uint32_t bo = 0, res = 0, *p;

	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bo, &res));
	ASSERT_NE(0, res);
	info.bo_handle = bo;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info));
	ASSERT_EQ(res, info.res_handle);
	ASSERT_EQ(size, info.size);
	p = vgpu_mmap(self->fd, bo, size);
	ASSERT_NE(NULL, p);
	for (unsigned int i = 0; i < TEX * TEX; i++)
		p[i] = pattern(i);
	ASSERT_EQ(0, vgpu_transfer(self->fd, 1, bo, TEX, TEX));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	memset(p, 0, size);
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bo, TEX, TEX));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	for (unsigned int i = 0; i < TEX * TEX; i++) {
		ASSERT_EQ(pattern(i), p[i]) TH_LOG("pixel %u", i);
	}
	/* A part: only the box comes back. */
	memset(p, 0, size);
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bo, TEX, 2));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	ASSERT_EQ(pattern(5), p[5]);
	ASSERT_EQ(0, p[TEX * 2 + 1]);
	munmap(p, size);
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
}

/*
 * A virgl command stream clears texture A to red and copies its left half to texture B, cleared
 * blue first; the out-fence signals, and both textures read back exactly.
 */
TEST_F(gpu, execbuffer_clear_and_copy)
{
	const size_t size = TEX * TEX * 4;
	uint32_t bos[2] = { 0 }, res[2] = { 0 }, *pa, *pb;
	struct virgl_cs cs = { 0 };
	int fence = -1;

	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bos[0], &res[0]));
	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bos[1], &res[1]));
	pa = vgpu_mmap(self->fd, bos[0], size);
	pb = vgpu_mmap(self->fd, bos[1], size);
	ASSERT_NE(NULL, pa);
	ASSERT_NE(NULL, pb);
	cs_sub_ctx(&cs, 1);
	cs_surface_fb(&cs, 1, res[1], VIRGL_FORMAT_B8G8R8A8_UNORM);
	cs_clear(&cs, 0, 0, 1, 1);
	cs_destroy_surface(&cs, 1);
	cs_surface_fb(&cs, 2, res[0], VIRGL_FORMAT_B8G8R8A8_UNORM);
	cs_clear(&cs, 1, 0, 0, 1);
	cs_destroy_surface(&cs, 2);
	cs_copy(&cs, res[1], res[0], 0, 0, TEX / 2, TEX);
	ASSERT_EQ(0, vgpu_exec(self->fd, &cs, bos, 2, VIRTGPU_EXECBUF_FENCE_FD_OUT, &fence));
	ASSERT_LE(0, fence);
	struct pollfd pfd = { .fd = fence, .events = POLLIN };

	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	ASSERT_EQ(1, fence_status(fence));
	close(fence);
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bos[0], TEX, TEX));
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bos[1], TEX, TEX));
	ASSERT_EQ(0, vgpu_wait(self->fd, bos[0], 0));
	ASSERT_EQ(0, vgpu_wait(self->fd, bos[1], 0));
	ASSERT_EQ(-1, first_other(pa, TEX * TEX, bgra(255, 0, 0, 255))) TH_LOG("A: %08x", pa[0]);
	for (int y = 0; y < TEX; y++) {
		ASSERT_EQ(-1, first_other(pb + y * TEX, TEX / 2, bgra(255, 0, 0, 255))) TH_LOG("B row %d", y);
		ASSERT_EQ(-1, first_other(pb + y * TEX + TEX / 2, TEX / 2, bgra(0, 0, 255, 255)))
			TH_LOG("B row %d: %08x", y, pb[y * TEX + TEX / 2]);
	}
	munmap(pa, size);
	munmap(pb, size);
}

/*
 * Fences: a submission waits for an in-fence (the previous one's out-fence) and its own
 * out-fence signals after it; the second clear wins. sync_file names the fence's driver.
 */
TEST_F(gpu, fence_fds)
{
	struct sync_file_info info = { 0 };
	struct virgl_cs cs1 = { 0 }, cs2 = { 0 };
	uint32_t bo = 0, res = 0, *p;
	int f1 = -1, f2;

	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bo, &res));
	p = vgpu_mmap(self->fd, bo, TEX * TEX * 4);
	ASSERT_NE(NULL, p);
	cs_sub_ctx(&cs1, 1);
	cs_surface_fb(&cs1, 1, res, VIRGL_FORMAT_B8G8R8A8_UNORM);
	for (int i = 0; i < 20; i++)
		cs_clear(&cs1, 0, 1, 0, 1);
	ASSERT_EQ(0, vgpu_exec(self->fd, &cs1, &bo, 1, VIRTGPU_EXECBUF_FENCE_FD_OUT, &f1));
	cs_clear(&cs2, 1, 1, 1, 1);
	f2 = f1;
	ASSERT_EQ(0, vgpu_exec(self->fd, &cs2, &bo, 1, VIRTGPU_EXECBUF_FENCE_FD_IN | VIRTGPU_EXECBUF_FENCE_FD_OUT, &f2));
	ASSERT_NE(f1, f2);
	struct pollfd pfd = { .fd = f2, .events = POLLIN };

	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	/* In order on the one timeline: the first is done too. */
	ASSERT_EQ(1, fence_status(f1));
	ASSERT_EQ(1, fence_status(f2));
	struct sync_fence_info fi[2] = { 0 };

	info.num_fences = 2;
	info.sync_fence_info = (uintptr_t)fi;
	ASSERT_EQ(0, ioctl(f2, SYNC_IOC_FILE_INFO, &info));
	ASSERT_EQ(1, info.num_fences);
	ASSERT_EQ(1, fi[0].status);
	/* A signalled fence is detached from its driver: no names to compare. */
	TH_LOG("out-fence: driver %s, timeline %s", fi[0].driver_name, fi[0].obj_name);
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bo, TEX, TEX));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	ASSERT_EQ(-1, first_other(p, TEX * TEX, bgra(255, 255, 255, 255))) TH_LOG("%08x", p[0]);
	/* A merged sync_file is a fence too. */
	struct sync_merge_data merge = { .name = "rust44", .fd2 = f2 };

	ASSERT_EQ(0, ioctl(f1, SYNC_IOC_MERGE, &merge));
	ASSERT_EQ(1, fence_status(merge.fence));
	close(merge.fence);
	close(f1);
	close(f2);
	munmap(p, TEX * TEX * 4);
}

/* WAIT with NOWAIT is EBUSY while the host works; a blocking WAIT waits it out. */
TEST_F(gpu, wait_nowait_busy)
{
	const uint32_t big = 1024;
	struct virgl_cs cs = { 0 };
	int busy = 0, tries;
	uint32_t bo = 0, res = 0;

	ASSERT_EQ(0, vgpu_create_tex(self->fd, big, big, &bo, &res));
	cs_sub_ctx(&cs, 1);
	cs_surface_fb(&cs, 1, res, VIRGL_FORMAT_B8G8R8A8_UNORM);
	for (int i = 0; i < 200; i++)
		cs_clear(&cs, i & 1, 0, 0, 1);
	/* The host may be quicker than the NOWAIT once: a few tries. */
	for (tries = 0; tries < 5 && !busy; tries++) {
		ASSERT_EQ(0, vgpu_exec(self->fd, &cs, &bo, 1, 0, NULL));
		int ret = vgpu_wait(self->fd, bo, VIRTGPU_WAIT_NOWAIT);

		ASSERT_TRUE(ret == 0 || ret == -EBUSY) TH_LOG("NOWAIT: %d", ret);
		busy = ret == -EBUSY;
		ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
		ASSERT_EQ(0, vgpu_wait(self->fd, bo, VIRTGPU_WAIT_NOWAIT));
	}
	TH_LOG("EBUSY on try %d", tries);
	ASSERT_TRUE(busy);
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
}

/* Errors for bad arguments, and nothing lost: the file still works afterwards. */
TEST_F(gpu, bad_arguments)
{
	uint32_t bo = 0, res = 0, bos[3], *p;
	struct virgl_cs cs = { 0 };
	int fence, devnull;

	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bo, &res));
	/* Handles. */
	EXPECT_EQ(-ENOENT, vgpu_wait(self->fd, bo + 100, 0));
	EXPECT_EQ(-ENOENT, vgpu_wait(self->fd, 0, 0));
	EXPECT_EQ(-ENOENT, vgpu_transfer(self->fd, 1, bo + 100, TEX, TEX));
	EXPECT_EQ(-ENOENT, vgpu_transfer(self->fd, 0, bo + 100, TEX, TEX));
	struct drm_virtgpu_resource_info info = { .bo_handle = bo + 100 };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info));
	EXPECT_EQ(ENOENT, errno);
	struct drm_virtgpu_map map = { .handle = bo + 100 };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_MAP, &map));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-EINVAL, vgpu_close(self->fd, bo + 100));
	/* Strides are the host's to choose for a guest-backed resource. */
	struct drm_virtgpu_3d_transfer_to_host t = { .bo_handle = bo, .box = { .w = TEX, .h = TEX, .d = 1 }, .stride = 256 };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST, &t));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST, &t));
	EXPECT_EQ(EINVAL, errno);
	/* Offsets: mmap only at the object's own offset, and not past its end. */
	map.handle = bo;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_MAP, &map));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, TEX * TEX * 4 + 4096, PROT_READ, MAP_SHARED, self->fd, map.offset));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, map.offset + TEX * TEX * 4));
	EXPECT_EQ(EINVAL, errno);
	/* Execbuffer: flags, rings, bo lists, pointers, fences. */
	cs_sub_ctx(&cs, 1);
	EXPECT_EQ(-EINVAL, vgpu_exec(self->fd, &cs, NULL, 0, 0x80, NULL));
	EXPECT_EQ(-EINVAL, vgpu_exec(self->fd, &cs, NULL, 0, VIRTGPU_EXECBUF_RING_IDX, NULL));
	bos[0] = bo;
	bos[1] = bo + 100;
	EXPECT_EQ(-ENOENT, vgpu_exec(self->fd, &cs, bos, 2, 0, NULL));
	bos[1] = 0;
	EXPECT_EQ(-ENOENT, vgpu_exec(self->fd, &cs, bos, 2, 0, NULL));
	EXPECT_EQ(-EFAULT, vgpu_exec(self->fd, &cs, (uint32_t *)8, 1, 0, NULL));
	struct drm_virtgpu_execbuffer eb = { .size = 64, .command = 8 };

	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb));
	EXPECT_EQ(EFAULT, errno);
	devnull = open("/dev/null", O_RDONLY);
	ASSERT_LE(0, devnull);
	fence = devnull;
	EXPECT_EQ(-EINVAL, vgpu_exec(self->fd, &cs, NULL, 0, VIRTGPU_EXECBUF_FENCE_FD_IN, &fence));
	fence = 1000;
	EXPECT_EQ(-EINVAL, vgpu_exec(self->fd, &cs, NULL, 0, VIRTGPU_EXECBUF_FENCE_FD_IN, &fence));
	close(devnull);
	/* No blob resources and no context parameters on this device. */
	int blob = -1, ctx_init = -1;

	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_RESOURCE_BLOB, &blob));
	ASSERT_EQ(0, vgpu_getparam(self->fd, VIRTGPU_PARAM_CONTEXT_INIT, &ctx_init));
	if (!blob) {
		struct drm_virtgpu_resource_create_blob rb = { .blob_mem = VIRTGPU_BLOB_MEM_GUEST, .size = 4096 };

		EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &rb));
		EXPECT_EQ(EINVAL, errno);
	}
	if (!ctx_init) {
		struct drm_virtgpu_context_set_param cp = { VIRTGPU_CONTEXT_PARAM_CAPSET_ID, VIRTGPU_DRM_CAPSET_VIRGL2 };
		struct drm_virtgpu_context_init ci = { .num_params = 1, .ctx_set_params = (uintptr_t)&cp };

		EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &ci));
		EXPECT_EQ(EINVAL, errno);
	}
	/* An ioctl number past the driver's. */
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOWR(DRM_COMMAND_BASE + 0x30, struct drm_virtgpu_getparam), &info));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing was lost: the resource still round-trips. */
	p = vgpu_mmap(self->fd, bo, TEX * TEX * 4);
	ASSERT_NE(NULL, p);
	p[7] = 0x12345678;
	ASSERT_EQ(0, vgpu_transfer(self->fd, 1, bo, TEX, TEX));
	/* The host reads the pages when it gets to the transfer. */
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	p[7] = 0;
	ASSERT_EQ(0, vgpu_transfer(self->fd, 0, bo, TEX, TEX));
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	ASSERT_EQ(0x12345678, p[7]);
	munmap(p, TEX * TEX * 4);
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
	EXPECT_EQ(-EINVAL, vgpu_close(self->fd, bo));
	EXPECT_EQ(-ENOENT, vgpu_wait(self->fd, bo, 0));
}

/*
 * Each open file has its own handles (and host context); PRIME moves an object between them: the
 * importer sees the same host resource and the exporter's data.
 */
TEST_F(gpu, files_and_prime)
{
	uint32_t bo = 0, res = 0, *p, *q;
	int other;

	other = open(node(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, vgpu_create_tex(self->fd, TEX, TEX, &bo, &res));
	struct drm_virtgpu_resource_info info = { .bo_handle = bo };

	ASSERT_EQ(-1, ioctl(other, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info));
	ASSERT_EQ(ENOENT, errno);
	/* The other file may not map this file's object at its offset. */
	struct drm_virtgpu_map map = { .handle = bo };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VIRTGPU_MAP, &map));
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, other, map.offset));
	ASSERT_EQ(EACCES, errno);

	p = vgpu_mmap(self->fd, bo, TEX * TEX * 4);
	ASSERT_NE(NULL, p);
	for (int i = 0; i < TEX * TEX; i++)
		p[i] = i * 7;
	struct drm_prime_handle exp = { .handle = bo, .flags = DRM_CLOEXEC | DRM_RDWR };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp));
	struct drm_prime_handle imp = { .fd = exp.fd };

	ASSERT_EQ(0, ioctl(other, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	info.bo_handle = imp.handle;
	ASSERT_EQ(0, ioctl(other, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info));
	ASSERT_EQ(res, info.res_handle);
	ASSERT_EQ(TEX * TEX * 4, info.size);
	q = vgpu_mmap(other, imp.handle, TEX * TEX * 4);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(7 * 100, q[100]);
	/* Importing again gives the same handle; the exporter's own import is its handle. */
	struct drm_prime_handle again = { .fd = exp.fd };

	ASSERT_EQ(0, ioctl(other, DRM_IOCTL_PRIME_FD_TO_HANDLE, &again));
	ASSERT_EQ(imp.handle, again.handle);
	again.handle = 0;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &again));
	ASSERT_EQ(bo, again.handle);
	/* A bad fd or handle. */
	struct drm_prime_handle bad = { .fd = 1000 };

	ASSERT_EQ(-1, ioctl(other, DRM_IOCTL_PRIME_FD_TO_HANDLE, &bad));
	bad.handle = bo + 100;
	bad.flags = DRM_CLOEXEC;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &bad));
	ASSERT_EQ(ENOENT, errno);
	/* The object outlives the exporter's handle and file. */
	munmap(p, TEX * TEX * 4);
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
	close(exp.fd);
	ASSERT_EQ(7 * 200, q[200]);
	munmap(q, TEX * TEX * 4);
	ASSERT_EQ(0, vgpu_close(other, imp.handle));
	close(other);
}

/*
 * Implicit synchronisation: the driver puts a command's fence in its buffers' reservation
 * objects, so the buffer's dma-buf polls busy until the host is done (what any dma-buf consumer
 * sees), and WAIT on the handle another file imported waits for it too.
 */
TEST_F(gpu, implicit_sync_dmabuf)
{
	const uint32_t big = 1024;
	struct virgl_cs cs = { 0 };
	uint32_t bo = 0, res = 0;
	int other, busy = 0, tries;

	other = open(node(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, vgpu_create_tex(self->fd, big, big, &bo, &res));
	struct drm_prime_handle exp = { .handle = bo, .flags = DRM_CLOEXEC | DRM_RDWR };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp));
	struct drm_prime_handle imp = { .fd = exp.fd };

	ASSERT_EQ(0, ioctl(other, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	struct pollfd pd = { .fd = exp.fd, .events = POLLIN | POLLOUT };

	/* Idle once WAIT says so (C fences the creation too). */
	ASSERT_EQ(0, vgpu_wait(self->fd, bo, 0));
	ASSERT_EQ(1, poll(&pd, 1, 0));
	cs_sub_ctx(&cs, 1);
	cs_surface_fb(&cs, 1, res, VIRGL_FORMAT_B8G8R8A8_UNORM);
	for (int i = 0; i < 200; i++)
		cs_clear(&cs, i & 1, 0, 0, 1);
	/* The host may finish before the first look: a few tries. */
	for (tries = 0; tries < 5 && !busy; tries++) {
		int fence = -1, ready, nowait;

		ASSERT_EQ(0, vgpu_exec(self->fd, &cs, &bo, 1, VIRTGPU_EXECBUF_FENCE_FD_OUT, &fence));
		pd.revents = 0;
		ready = poll(&pd, 1, 0);
		nowait = vgpu_wait(other, imp.handle, VIRTGPU_WAIT_NOWAIT);
		ASSERT_TRUE(nowait == 0 || nowait == -EBUSY) TH_LOG("NOWAIT: %d", nowait);
		/* Pending after both looks: both must have seen the buffer busy. */
		if (fence_status(fence) == 0) {
			ASSERT_EQ(0, ready) TH_LOG("the dma-buf polled idle with its command's fence pending");
			ASSERT_EQ(-EBUSY, nowait);
			busy = 1;
		}
		/* It turns idle when the fence signals. */
		pd.revents = 0;
		ASSERT_EQ(1, poll(&pd, 1, 10000));
		ASSERT_EQ(1, fence_status(fence));
		ASSERT_EQ(0, vgpu_wait(other, imp.handle, VIRTGPU_WAIT_NOWAIT));
		close(fence);
	}
	TH_LOG("busy on try %d", tries);
	ASSERT_TRUE(busy);
	close(exp.fd);
	ASSERT_EQ(0, vgpu_close(other, imp.handle));
	ASSERT_EQ(0, vgpu_close(self->fd, bo));
	close(other);
}

/* Closing a file with objects mapped and work in flight leaves the mappings usable. */
TEST_F(gpu, close_with_work_in_flight)
{
	struct virgl_cs cs = { 0 };
	uint32_t bo = 0, res = 0, *p;
	int fd2, fence = -1;

	fd2 = open(node(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, vgpu_create_tex(fd2, 512, 512, &bo, &res));
	p = vgpu_mmap(fd2, bo, 512 * 512 * 4);
	ASSERT_NE(NULL, p);
	cs_sub_ctx(&cs, 1);
	cs_surface_fb(&cs, 1, res, VIRGL_FORMAT_B8G8R8A8_UNORM);
	for (int i = 0; i < 100; i++)
		cs_clear(&cs, 0, 0, i & 1, 1);
	ASSERT_EQ(0, vgpu_exec(fd2, &cs, &bo, 1, VIRTGPU_EXECBUF_FENCE_FD_OUT, &fence));
	ASSERT_EQ(0, vgpu_transfer(fd2, 1, bo, 512, 512));
	close(fd2);
	p[0] = 42;
	ASSERT_EQ(42, p[0]);
	struct pollfd pfd = { .fd = fence, .events = POLLIN };

	/* The out-fence still signals. */
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	ASSERT_EQ(1, fence_status(fence));
	close(fence);
	munmap(p, 512 * 512 * 4);
}

TEST_HARNESS_MAIN
