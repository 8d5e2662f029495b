// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu3d benchmark: raw virtio-gpu 3D round trips on $VGPU_NODE.
 *   vgpu_bench roundtrip N   EXECBUFFER of a small virgl stream then a blocking WAIT on its
 *                            buffer, N times, for a stream that renders nothing ("nop_*") and
 *                            one that clears a 64x64 texture: see roundtrips()
 *   vgpu_bench transfer N    TRANSFER_TO_HOST of a 4 MiB texture (1024x1024 BGRA) then WAIT,
 *                            N times: "transfer_mibps MEDIAN" (MiB/s of the median transfer)
 * Each timed iteration runs on one guest CPU, the next on the next CPU: under QEMU the CPU a
 * process runs on changes the timings (see roundtrips()), and where the scheduler puts it is luck.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "vgpu.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Moves the process to online CPU number i modulo the online CPUs (outside the timed part). */
static void next_cpu(int i)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (ncpu < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(i % ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/*
 * n EXECBUFFERs of cs on bo, each followed by a blocking WAIT; prints PREFIX"roundtrip_us" (the
 * median), PREFIX"roundtrip_p10_us", PREFIX"roundtrip_slow_pct" (over 2 ms) and PREFIX"submit_us"
 * (the EXECBUFFER ioctl alone: the driver's submission path, whatever the host does).
 *
 * QEMU 7.2 looks at virglrenderer's fences right after a command and then every 10 ms: a round
 * trip is either fast or about 10 ms, depending on whether the host's renderer had finished at
 * the first look, a race of host threads. The tenth percentile is the fast ones'; the share of
 * slow ones depends on the guest CPU the process runs on (a different one in each boot, for both
 * drivers): hence the alternating CPUs. A stream that renders nothing never loses the race.
 */
static int roundtrips(int fd, const struct virgl_cs *cs, uint32_t bo, int n, uint64_t *t,
		      uint64_t *submit, const char *prefix)
{
	int slow = 0;

	for (int i = 0; i < n; i++) {
		next_cpu(i);
		uint64_t start = now_ns();

		if (vgpu_exec(fd, cs, &bo, 1, 0, NULL))
			return perror("execbuffer"), 1;
		submit[i] = now_ns() - start;
		if (vgpu_wait(fd, bo, 0))
			return perror("wait"), 1;
		t[i] = now_ns() - start;
	}
	printf("%ssubmit_us %.1f\n", prefix, median(submit, n) / 1000.0);
	printf("%sroundtrip_us %.1f\n", prefix, median(t, n) / 1000.0);
	for (int i = 0; i < n; i++)
		slow += t[i] > 2000000;
	printf("%sroundtrip_p10_us %.1f\n", prefix, t[n / 10] / 1000.0);
	printf("%sroundtrip_slow_pct %.1f\n", prefix, 100.0 * slow / n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *node = getenv("VGPU_NODE") ? getenv("VGPU_NODE") : "/dev/dri/renderD128";
	int n = argc > 2 ? atoi(argv[2]) : 0, fd;
	static struct virgl_cs cs;
	uint32_t bo, res;
	uint64_t *t, *submit;

	if (argc != 3 || n < 1) {
		fprintf(stderr, "usage: vgpu_bench roundtrip|transfer N\n");
		return 2;
	}
	t = calloc(n, sizeof(*t));
	submit = calloc(n, sizeof(*submit));
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !t || !submit) {
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
		/* A stream that renders nothing: the host's fence is done at QEMU's first look. */
		cs.n = 0;
		cs_emit(&cs, VIRGL_CMD(VIRGL_CCMD_SET_SUB_CTX, 0, 1));
		cs_emit(&cs, 1);
		if (roundtrips(fd, &cs, bo, n, t, submit, "nop_"))
			return 1;
		cs.n = 0;
		cs_clear(&cs, 0.5f, 0.25f, 0.125f, 1.0f);
		if (roundtrips(fd, &cs, bo, n, t, submit, ""))
			return 1;
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
			next_cpu(i);
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
