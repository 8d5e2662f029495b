/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw virtio-gpu 3D access for rust44's tests and benchmark: the virtgpu_drm.h ioctls and a few
 * commands of the virgl protocol (virglrenderer's virgl_protocol.h), written into a buffer that
 * DRM_IOCTL_VIRTGPU_EXECBUFFER hands to the host. No Mesa.
 */
#ifndef RUST44_VGPU_H
#define RUST44_VGPU_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/virtgpu_drm.h>
#include <linux/sync_file.h>

/* virgl_protocol.h: a command's first dword is (length << 16) | (object type << 8) | command. */
#define VIRGL_CMD(cmd, obj, len) ((uint32_t)(cmd) | ((uint32_t)(obj) << 8) | ((uint32_t)(len) << 16))
#define VIRGL_CCMD_CREATE_OBJECT 1
#define VIRGL_CCMD_DESTROY_OBJECT 3
#define VIRGL_CCMD_SET_FRAMEBUFFER_STATE 5
#define VIRGL_CCMD_CLEAR 7
#define VIRGL_CCMD_RESOURCE_COPY_REGION 17
#define VIRGL_CCMD_SET_SUB_CTX 28
#define VIRGL_CCMD_CREATE_SUB_CTX 29
#define VIRGL_OBJECT_SURFACE 8
#define PIPE_CLEAR_COLOR0 (1 << 2)

/* Gallium's resource targets, formats and bind flags, as virgl takes them. */
#define PIPE_BUFFER 0
#define PIPE_TEXTURE_2D 2
#define VIRGL_FORMAT_B8G8R8A8_UNORM 1
#define VIRGL_FORMAT_R8_UNORM 64
#define VIRGL_BIND_RENDER_TARGET (1 << 1)
#define VIRGL_BIND_SAMPLER_VIEW (1 << 3)
#define VIRGL_BIND_VERTEX_BUFFER (1 << 4)

/* A command stream being written. */
struct virgl_cs {
	uint32_t buf[4096];
	uint32_t n;
};

static inline void cs_emit(struct virgl_cs *cs, uint32_t dw)
{
	if (cs->n < sizeof(cs->buf) / sizeof(cs->buf[0]))
		cs->buf[cs->n++] = dw;
}

static inline uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

/* The context's own sub-context, as Mesa's virgl driver starts every context. */
static inline void cs_sub_ctx(struct virgl_cs *cs, uint32_t id)
{
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_CREATE_SUB_CTX, 0, 1));
	cs_emit(cs, id);
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_SET_SUB_CTX, 0, 1));
	cs_emit(cs, id);
}

/* A surface of level 0, layer 0 of resource res, the one colour buffer of the framebuffer. */
static inline void cs_surface_fb(struct virgl_cs *cs, uint32_t surf, uint32_t res, uint32_t format)
{
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_CREATE_OBJECT, VIRGL_OBJECT_SURFACE, 5));
	cs_emit(cs, surf);
	cs_emit(cs, res);
	cs_emit(cs, format);
	cs_emit(cs, 0);
	cs_emit(cs, 0);
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_SET_FRAMEBUFFER_STATE, 0, 3));
	cs_emit(cs, 1);
	cs_emit(cs, 0);
	cs_emit(cs, surf);
}

static inline void cs_destroy_surface(struct virgl_cs *cs, uint32_t surf)
{
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_DESTROY_OBJECT, VIRGL_OBJECT_SURFACE, 1));
	cs_emit(cs, surf);
}

static inline void cs_clear(struct virgl_cs *cs, float r, float g, float b, float a)
{
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_CLEAR, 0, 8));
	cs_emit(cs, PIPE_CLEAR_COLOR0);
	cs_emit(cs, fbits(r));
	cs_emit(cs, fbits(g));
	cs_emit(cs, fbits(b));
	cs_emit(cs, fbits(a));
	cs_emit(cs, 0); /* depth, a double */
	cs_emit(cs, 0);
	cs_emit(cs, 0); /* stencil */
}

/* Copies a w x h box at (x, y) of src's level 0 to the same place in dst. */
static inline void cs_copy(struct virgl_cs *cs, uint32_t dst, uint32_t src, uint32_t x, uint32_t y,
			   uint32_t w, uint32_t h)
{
	cs_emit(cs, VIRGL_CMD(VIRGL_CCMD_RESOURCE_COPY_REGION, 0, 13));
	cs_emit(cs, dst);
	cs_emit(cs, 0);
	cs_emit(cs, x);
	cs_emit(cs, y);
	cs_emit(cs, 0);
	cs_emit(cs, src);
	cs_emit(cs, 0);
	cs_emit(cs, x);
	cs_emit(cs, y);
	cs_emit(cs, 0);
	cs_emit(cs, w);
	cs_emit(cs, h);
	cs_emit(cs, 1);
}

static inline int vgpu_getparam(int fd, uint64_t param, int *value)
{
	struct drm_virtgpu_getparam gp = { .param = param, .value = (uintptr_t)value };

	return ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp) ? -errno : 0;
}

/* A 3D resource with guest backing; its GEM handle in *bo, the host's resource id in *res. */
static inline int vgpu_create(int fd, uint32_t target, uint32_t format, uint32_t bind, uint32_t width,
			      uint32_t height, uint32_t size, uint32_t *bo, uint32_t *res)
{
	struct drm_virtgpu_resource_create rc = {
		.target = target, .format = format, .bind = bind, .width = width, .height = height,
		.depth = 1, .array_size = 1, .size = size,
	};

	if (ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &rc))
		return -errno;
	*bo = rc.bo_handle;
	if (res)
		*res = rc.res_handle;
	return 0;
}

/* A w x h BGRA texture that can be rendered to and sampled. */
static inline int vgpu_create_tex(int fd, uint32_t w, uint32_t h, uint32_t *bo, uint32_t *res)
{
	return vgpu_create(fd, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8A8_UNORM,
			   VIRGL_BIND_RENDER_TARGET | VIRGL_BIND_SAMPLER_VIEW, w, h, w * h * 4, bo, res);
}

static inline int vgpu_close(int fd, uint32_t bo)
{
	struct drm_gem_close gc = { .handle = bo };

	return ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc) ? -errno : 0;
}

/* Maps the whole object (size bytes) through DRM_IOCTL_VIRTGPU_MAP and mmap. */
static inline void *vgpu_mmap(int fd, uint32_t bo, size_t size)
{
	struct drm_virtgpu_map map = { .handle = bo };
	void *p;

	if (ioctl(fd, DRM_IOCTL_VIRTGPU_MAP, &map))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, map.offset);
	return p == MAP_FAILED ? NULL : p;
}

static inline int vgpu_transfer(int fd, int to_host, uint32_t bo, uint32_t w, uint32_t h)
{
	struct drm_virtgpu_3d_transfer_to_host t = { .bo_handle = bo, .box = { .w = w, .h = h, .d = 1 } };
	unsigned long req = to_host ? DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST : DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST;

	/* The two argument structures are the same. */
	return ioctl(fd, req, &t) ? -errno : 0;
}

static inline int vgpu_wait(int fd, uint32_t bo, uint32_t flags)
{
	struct drm_virtgpu_3d_wait w = { .handle = bo, .flags = flags };

	return ioctl(fd, DRM_IOCTL_VIRTGPU_WAIT, &w) ? -errno : 0;
}

/*
 * Submits cs with the objects in bos; flags VIRTGPU_EXECBUF_FENCE_FD_IN takes *fence as the
 * fence to wait for, VIRTGPU_EXECBUF_FENCE_FD_OUT returns the new out-fence in *fence.
 */
static inline int vgpu_exec(int fd, const struct virgl_cs *cs, const uint32_t *bos, uint32_t nbos,
			    uint32_t flags, int *fence)
{
	struct drm_virtgpu_execbuffer eb = {
		.flags = flags, .size = cs->n * 4, .command = (uintptr_t)cs->buf,
		.bo_handles = (uintptr_t)bos, .num_bo_handles = nbos, .fence_fd = fence ? *fence : -1,
	};

	if (ioctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb))
		return -errno;
	if (fence && (flags & VIRTGPU_EXECBUF_FENCE_FD_OUT))
		*fence = eb.fence_fd;
	return 0;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#endif
