// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu3d benchmark: raw virtio-gpu 3D round trips on $VGPU_NODE.
 *   vgpu_bench roundtrip N   EXECBUFFER of a small virgl stream (one clear of a 64x64 texture)
 *                            then a blocking WAIT on its buffer, N times: "roundtrip_us MEDIAN",
 *                            "roundtrip_p10_us P10" and "roundtrip_slow_pct SHARE" (over 2 ms)
 *   vgpu_bench transfer N    TRANSFER_TO_HOST of a 4 MiB texture (1024x1024 BGRA) then WAIT,
 *                            N times: "transfer_mibps MEDIAN" (MiB/s of the median transfer)
 */
#include <stdio.h>
#include <stdlib.h>

#include "vgpu.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	const char *node = getenv("VGPU_NODE") ? getenv("VGPU_NODE") : "/dev/dri/renderD128";
	int n = argc > 2 ? atoi(argv[2]) : 0, fd;
	static struct virgl_cs cs;
	uint32_t bo, res;
	uint64_t *t;

	if (argc != 3 || n < 1) {
		fprintf(stderr, "usage: vgpu_bench roundtrip|transfer N\n");
		return 2;
	}
	t = calloc(n, sizeof(*t));
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !t) {
		perror(node);
		return 1;
	}
	if (!strcmp(argv[1], "roundtrip")) {
		if (vgpu_create_tex(fd, 64, 64, &bo, &res))
			return perror("create"), 1;
		cs_sub_ctx(&cs, 1);
		cs_surface_fb(&cs, 1, res, VIRGL_FORMAT_B8G8R8A8_UNORM);
		if (vgpu_exec(fd, &cs, &bo, 1, 0, NULL) || vgpu_wait(fd, bo, 0))
			return perror("setup"), 1;
		cs.n = 0;
		cs_clear(&cs, 0.5f, 0.25f, 0.125f, 1.0f);
		for (int i = 0; i < n; i++) {
			uint64_t start = now_ns();

			if (vgpu_exec(fd, &cs, &bo, 1, 0, NULL) || vgpu_wait(fd, bo, 0))
				return perror("execbuffer"), 1;
			t[i] = now_ns() - start;
		}
		printf("roundtrip_us %.1f\n", median(t, n) / 1000.0);
		/*
		 * QEMU looks at virglrenderer's fences right after a command and then every 10 ms:
		 * round trips are either fast or about 10 ms. The tenth percentile is the fast
		 * ones' (the drivers' own path); the share of slow ones says how often the host's
		 * renderer had not finished at the first look.
		 */
		int slow = 0;

		for (int i = 0; i < n; i++)
			slow += t[i] > 2000000;
		printf("roundtrip_p10_us %.1f\n", t[n / 10] / 1000.0);
		printf("roundtrip_slow_pct %.1f\n", 100.0 * slow / n);
	} else if (!strcmp(argv[1], "transfer")) {
		const uint32_t w = 1024, h = 1024;
		uint32_t *p;

		if (vgpu_create_tex(fd, w, h, &bo, &res))
			return perror("create"), 1;
		p = vgpu_mmap(fd, bo, w * h * 4);
		if (!p)
			return perror("mmap"), 1;
		memset(p, 0x5a, w * h * 4);
		for (int i = 0; i < n; i++) {
			uint64_t start = now_ns();

			if (vgpu_transfer(fd, 1, bo, w, h) || vgpu_wait(fd, bo, 0))
				return perror("transfer"), 1;
			t[i] = now_ns() - start;
		}
		printf("transfer_mibps %.1f\n", 4.0 * 1e9 / median(t, n));
	} else {
		fprintf(stderr, "unknown benchmark %s\n", argv[1]);
		return 2;
	}
	return 0;
}
