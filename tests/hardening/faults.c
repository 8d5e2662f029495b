// SPDX-License-Identifier: GPL-2.0
/*
 * faults: what the debug kernel's fault injection does to loop_dio and mm_mlock2 (issue 17).
 *
 * Sweeps (fail-nth: the Nth fault-injection point the calling task reaches fails, for N = 1, 2,
 * ... until a call gets through without reaching it; run.sh sets failslab and fail_page_alloc
 * to count sleeping and order-0 allocations too). Each attempt runs in a child of its own
 * (fail-nth is per task); afterwards the parent checks, without faults, that nothing was left
 * half done and the device works:
 *   faults ctl-add IDX NODE              LOOP_CTL_ADD of loopIDX: ok or ENOMEM; after a failure
 *                                        no device is left (GET_STATUS64 on a fresh open: the
 *                                        device is made again, unbound); after success it is
 *                                        unbound and LOOP_CTL_REMOVE removes it.
 *   faults configure NODE FILE           LOOP_CONFIGURE (direct I/O on every other attempt):
 *                                        ok or ENOMEM; a failure leaves the device unbound, a
 *                                        success reads FILE's data back; then detached.
 *   faults io NODE                       a bound device: a 64 KiB O_DIRECT write (tagged) or
 *                                        read: ok, EIO or ENOMEM; then read without faults:
 *                                        each 4 KiB block holds the new data when the write
 *                                        succeeded, the old or the new when it failed.
 *   faults lockedmem                     open, LOCKEDMEM_SET_SIZE, mmap twice, write through
 *                                        one mapping and read through the other, munmap,
 *                                        close: each step ok or ENOMEM (ENOSPC: shmem's
 *                                        inode), never a signal.
 * I/O errors from below (fail_make_request on DISK, the loop device's backing disk):
 *   faults below NODE DISK N             loop device NODE, bound to /dev/DISK with direct I/O
 *                                        and 4 KiB blocks, at depth 1: (1) every block written;
 *                                        (2) with the next K bios to DISK failing (times=K,
 *                                        probability 100), N alternating writes and reads: the
 *                                        first K get EIO, the rest succeed; (3) 25% of DISK's
 *                                        bios failing, N random writes and reads: each one ok or
 *                                        EIO, what a successful read returns is the last
 *                                        successful write; (4) without faults every block
 *                                        holds its last successful write (a failed one never
 *                                        reached DISK).
 * Exit 0 when every check held; the lines before say what did not.
 */
#include "hard.h"
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define LOCKEDMEM_SET_SIZE _IOW('L', 1, uint64_t)
#define MAX_ATTEMPTS 5000

/* What a child's attempt came to, in memory shared with the parent. */
static struct result {
	int rc;		/* 0, or the errno of the step that failed */
	int step;	/* which step failed */
	int left;	/* fail-nth after the attempt: 0 when the fault was injected */
} *res;

static int failures;

#define CHECK(cond, ...)                          \
	do {                                      \
		if (!(cond)) {                    \
			printf(__VA_ARGS__);      \
			printf("\n");             \
			failures++;               \
		}                                 \
	} while (0)

static int fail_nth_fd;

/* Arms fail-nth for the calling thread: the @n-th fault point from now fails. */
static void arm(int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fail_nth_fd < 0 || write(fail_nth_fd, buf, len) != len) {
		perror("fail-nth");
		_exit(99);
	}
}

/* What fail-nth has left (0: it fired); disarms it. */
static int disarm(void)
{
	char buf[16] = "";
	int left;

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) < 0)
		return -1;
	left = atoi(buf);
	if (write(fail_nth_fd, "0", 1) < 0)
		left = -1;
	close(fail_nth_fd);
	return left;
}

/* Runs @attempt(@n) in a child; fills *res. Returns the child's wait status. */
static int run_attempt(void (*attempt)(int), int n)
{
	int status;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->left = -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		attempt(n);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

/*
 * The next N of a sweep: every FAULT_STEP-th (1 unless set) up to 200, then every
 * FAULT_STRIDE-th (5), five times that past 1000. Each unwinding path is reached by a run of
 * neighbouring points, so make check's sample (every 6th, then every 50th) still reaches most.
 */
static int next_n(int n)
{
	static int step, stride;

	if (!step) {
		step = getenv("FAULT_STEP") ? atoi(getenv("FAULT_STEP")) : 1;
		stride = getenv("FAULT_STRIDE") ? atoi(getenv("FAULT_STRIDE")) : 5;
		if (step < 1)
			step = 1;
		if (stride < 1)
			stride = 1;
	}
	return n < 200 ? n + step : n < 1000 ? n + stride : n + 5 * stride;
}

static int allowed(int e, const int *ok)
{
	for (; *ok; ok++)
		if (*ok == e)
			return 1;
	return 0;
}

/*
 * The sweep: attempts with N = 1, ... until one gets through without its fault. @check runs in
 * the parent after each attempt. Prints the errnos seen.
 */
static int sweep(const char *what, void (*attempt)(int), void (*check)(int), const int *ok)
{
	int n, refused = 0, tolerated = 0, counts[134] = { 0 };

	for (n = 1; n < MAX_ATTEMPTS; n = next_n(n)) {
		int status = run_attempt(attempt, n);

		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			CHECK(0, "%s: fault %d: the attempt died (status %#x)", what, n, status);
			break;
		}
		if (res->left > 0 && res->rc == 0) {
			/* Got through without reaching the Nth point: all were tried. */
			check(n);
			break;
		}
		CHECK(res->left == 0 || res->rc == 0, "%s: fault %d: failed with %s without an injected fault (step %d)",
		      what, n, strerror(res->rc), res->step);
		if (res->rc) {
			refused++;
			counts[res->rc < 134 ? res->rc : 0]++;
			CHECK(allowed(res->rc, ok), "%s: fault %d: step %d failed with %s", what, n,
			      res->step, strerrorname_np(res->rc) ?: "?");
		} else {
			tolerated++;
		}
		check(n);
		if (failures > 10)
			break;
	}
	printf("%s: %d fault points tried: %d calls failed, %d got through despite the fault;", what,
	       n, refused, tolerated);
	for (int e = 0; e < 134; e++)
		if (counts[e])
			printf(" %s=%d", e ? strerrorname_np(e) : "other", counts[e]);
	printf("\n");
	CHECK(n < MAX_ATTEMPTS, "%s: still reaching injected faults after %d", what, n);
	return refused;
}

static const int enomem_only[] = { ENOMEM, 0 };
/*
 * A region is a shmem file: shmem_file_setup() answers a failed inode allocation with ENOSPC
 * (__shmem_get_inode()), as it does for memfd_create() and /dev/zero's shared mappings.
 */
static const int region_errors[] = { ENOMEM, ENOSPC, 0 };
static const int io_errors[] = { ENOMEM, EIO, 0 };

/* --- loop --- */

static int idx;
static const char *node, *file;
static int ctl;

static void ctl_add_attempt(int n)
{
	long rc;

	arm(n);
	rc = ioctl(ctl, LOOP_CTL_ADD, idx);
	res->rc = rc < 0 ? errno : 0;
	res->left = disarm();
}

static void ctl_add_check(int n)
{
	long rc;

	if (res->rc == 0) {
		rc = ioctl(ctl, LOOP_CTL_REMOVE, idx);
		CHECK(rc == 0, "ctl-add: fault %d: LOOP_CTL_REMOVE after the add: %s", n, strerror(errno));
	} else {
		/* Nothing left behind: the index is free for an add. */
		rc = ioctl(ctl, LOOP_CTL_ADD, idx);
		CHECK(rc == idx, "ctl-add: fault %d: LOOP_CTL_ADD without a fault after the failure: %s", n,
		      strerror(errno));
		rc = ioctl(ctl, LOOP_CTL_REMOVE, idx);
		CHECK(rc == 0, "ctl-add: fault %d: LOOP_CTL_REMOVE: %s", n, strerror(errno));
	}
}

static char *block_buf(void)
{
	void *p;

	if (posix_memalign(&p, 4096, 65536))
		abort();
	return p;
}

static int status_of(int fd)
{
	struct loop_info64 info;

	return ioctl(fd, LOOP_GET_STATUS64, &info) ? errno : 0;
}

static void configure_attempt(int n)
{
	struct loop_config cfg = { 0 };
	int fd = open(node, O_RDWR), bfd = open(file, O_RDWR);

	if (fd < 0 || bfd < 0) {
		res->rc = errno;
		res->step = 1;
		return;
	}
	cfg.fd = bfd;
	cfg.info.lo_flags = n % 2 ? LO_FLAGS_DIRECT_IO : 0;
	arm(n);
	res->rc = ioctl(fd, LOOP_CONFIGURE, &cfg) ? errno : 0;
	res->left = disarm();
	res->step = 2;
	close(bfd);
	/* fd stays open to the exit: the parent checks the device's state after the last close. */
	close(fd);
}

static void configure_check(int n)
{
	int fd = open(node, O_RDWR), bfd;
	char *a = block_buf(), *b = block_buf();

	if (fd < 0) {
		CHECK(0, "configure: fault %d: open: %s", n, strerror(errno));
		return;
	}
	if (res->rc) {
		CHECK(status_of(fd) == ENXIO, "configure: fault %d: bound after a failed LOOP_CONFIGURE", n);
	} else {
		bfd = open(file, O_RDONLY);
		CHECK(pread(fd, a, 65536, 0) == 65536 && pread(bfd, b, 65536, 0) == 65536 &&
			      !memcmp(a, b, 65536),
		      "configure: fault %d: the device does not read its file's data", n);
		close(bfd);
		CHECK(ioctl(fd, LOOP_CLR_FD, 0) == 0, "configure: fault %d: LOOP_CLR_FD: %s", n,
		      strerror(errno));
	}
	close(fd);
	free(a);
	free(b);
}

/* io: a tagged 64 KiB write (odd attempts) or read (even ones) at a place that depends on n. */
static uint64_t io_seq[16 * 16];

static void tag(char *buf, int block, uint64_t seq)
{
	for (int i = 0; i < 4096; i += 8) {
		uint64_t v = ((uint64_t)block << 40) ^ (seq << 8) ^ i;

		memcpy(buf + i, &v, 8);
	}
}

static void io_attempt(int n)
{
	int fd = open(node, O_RDWR | O_DIRECT), slot = n % 16;
	char *buf = block_buf();
	ssize_t rc;

	if (fd < 0) {
		res->rc = errno;
		res->step = 1;
		return;
	}
	if (n % 2) {
		for (int b = 0; b < 16; b++)
			tag(buf + b * 4096, slot * 16 + b, n);
		arm(n);
		rc = pwrite(fd, buf, 65536, (off_t)slot * 65536);
	} else {
		arm(n);
		rc = pread(fd, buf, 65536, (off_t)slot * 65536);
	}
	res->rc = rc == 65536 ? 0 : rc < 0 ? errno : EIO;
	res->left = disarm();
	res->step = 2;
	close(fd);
}

static void io_check(int n)
{
	int fd = open(node, O_RDONLY | O_DIRECT), slot = n % 16;
	char *buf = block_buf(), want[4096];

	if (fd < 0 || pread(fd, buf, 65536, (off_t)slot * 65536) != 65536) {
		CHECK(0, "io: fault %d: reading back without faults failed: %s", n, strerror(errno));
		return;
	}
	for (int b = 0; b < 16; b++) {
		int blk = slot * 16 + b, is_old, is_new = 0;

		tag(want, blk, io_seq[blk]);
		is_old = !memcmp(want, buf + b * 4096, 4096);
		if (n % 2) {
			tag(want, blk, n);
			is_new = !memcmp(want, buf + b * 4096, 4096);
		}
		if (n % 2 && res->rc == 0) {
			CHECK(is_new, "io: fault %d: block %d lacks a write that succeeded", n, blk);
		} else {
			CHECK(is_old || is_new, "io: fault %d: block %d holds neither the old nor the new data", n, blk);
		}
		if (is_new)
			io_seq[blk] = n;
	}
	close(fd);
	free(buf);
}

/* Writes the tags of sequence 0 everywhere io's attempts go, without faults. */
static int io_prepare(void)
{
	int fd = open(node, O_RDWR | O_DIRECT);
	char *buf = block_buf();

	for (int s = 0; s < 16 && fd >= 0; s++) {
		for (int b = 0; b < 16; b++)
			tag(buf + b * 4096, s * 16 + b, 0);
		if (pwrite(fd, buf, 65536, (off_t)s * 65536) != 65536)
			return -1;
	}
	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

/* --- lockedmem --- */

static void lockedmem_attempt(int n)
{
	uint64_t size = 8 * 4096;
	char *a = MAP_FAILED, *b = MAP_FAILED;
	int fd;

	arm(n);
	res->step = 1;
	fd = open("/dev/lockedmem", O_RDWR);
	if (fd < 0)
		goto out;
	res->step = 2;
	if (ioctl(fd, LOCKEDMEM_SET_SIZE, &size))
		goto out;
	res->step = 3;
	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED)
		goto out;
	res->step = 4;
	b = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		goto out;
	res->step = 5;
	for (int p = 0; p < 8; p += 3)
		a[p * 4096] = (char)(p + 1);
	for (int p = 0; p < 8; p += 3)
		if (b[p * 4096] != (char)(p + 1)) {
			errno = EILSEQ; /* not an allowed errno: counted as a failure */
			goto out;
		}
	errno = 0;
out:
	res->rc = errno;
	if (b != MAP_FAILED)
		munmap(b, size);
	if (a != MAP_FAILED)
		munmap(a, size);
	if (fd >= 0)
		close(fd);
	res->left = disarm();
	if (!res->rc)
		res->step = 0;
}

static void no_check(int n)
{
	(void)n;
}

/* --- I/O errors from below --- */

static void put(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, value, strlen(value)) < 0) {
		printf("%s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

#define FMR "/sys/kernel/debug/fail_make_request/"

static int errors_from_below(const char *disk, int ops)
{
	char path[256], *buf = block_buf(), *want = block_buf();
	int fd = open(node, O_RDWR | O_DIRECT), nblocks, eio = 0, ok = 0, first_ok = -1, k = 17;
	uint64_t size = 0, *last, seq = 1;

	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size)) {
		perror(node);
		return 1;
	}
	nblocks = size / 4096;
	if (nblocks > 1024)
		nblocks = 1024;
	last = calloc(nblocks, sizeof(*last));
	/* (1) Every block written, with no faults. */
	for (int b = 0; b < nblocks; b++) {
		tag(buf, b, 1);
		last[b] = 1;
		if (pwrite(fd, buf, 4096, (off_t)b * 4096) != 4096) {
			perror("initial write");
			return 1;
		}
	}
	snprintf(path, sizeof(path), "/sys/block/%s/make-it-fail", disk);
	put(FMR "verbose", "0");
	put(FMR "interval", "1");
	put(FMR "space", "0");
	put(FMR "task-filter", "N");
	/* (2) Exactly the next k bios fail: the first k requests, one bio each at depth 1. */
	put(FMR "probability", "100");
	snprintf(buf, 16, "%d", k);
	put(FMR "times", buf);
	put(path, "1");
	for (int i = 0; i < ops; i++) {
		int b = i % nblocks;
		ssize_t rc;

		if (i % 2) {
			tag(buf, b, ++seq);
			rc = pwrite(fd, buf, 4096, (off_t)b * 4096);
			if (rc == 4096)
				last[b] = seq;
		} else {
			rc = pread(fd, buf, 4096, (off_t)b * 4096);
			if (rc == 4096) {
				tag(want, b, last[b]);
				CHECK(!memcmp(want, buf, 4096), "exact: block %d: a read returned other data than its last write", b);
			}
		}
		if (rc == 4096) {
			ok++;
			if (first_ok < 0)
				first_ok = i;
		} else {
			CHECK(rc < 0 && errno == EIO, "exact: request %d: %zd (%s), not EIO", i, rc,
			      strerror(errno));
			CHECK(first_ok < 0, "exact: request %d failed after request %d succeeded", i, first_ok);
			eio++;
		}
	}
	printf("exactly %d bios failing: %d requests got EIO, %d succeeded\n", k, eio, ok);
	CHECK(eio == k, "%d requests failed where %d bios did", eio, k);
	/* (3) A quarter of the bios fail. */
	put(FMR "probability", "25");
	put(FMR "times", "-1");
	eio = ok = 0;
	for (int i = 0; i < ops; i++) {
		int b = rnd() % nblocks;
		ssize_t rc;

		if (rnd() % 2) {
			tag(buf, b, ++seq);
			rc = pwrite(fd, buf, 4096, (off_t)b * 4096);
			if (rc == 4096)
				last[b] = seq;
		} else {
			rc = pread(fd, buf, 4096, (off_t)b * 4096);
			if (rc == 4096) {
				tag(want, b, last[b]);
				CHECK(!memcmp(want, buf, 4096), "random: block %d: a read returned other data than its last successful write", b);
			}
		}
		if (rc == 4096)
			ok++;
		else {
			CHECK(rc < 0 && errno == EIO, "random: %zd (%s), not EIO", rc, strerror(errno));
			eio++;
		}
	}
	put(path, "0");
	put(FMR "probability", "0");
	printf("a quarter of the bios failing: %d requests got EIO, %d succeeded\n", eio, ok);
	CHECK(eio > 0 && ok > 0, "no mix of failed and successful requests");
	/* (4) Every block holds its last successful write. */
	for (int b = 0; b < nblocks; b++) {
		if (pread(fd, buf, 4096, (off_t)b * 4096) != 4096) {
			CHECK(0, "final read of block %d: %s", b, strerror(errno));
			break;
		}
		tag(want, b, last[b]);
		CHECK(!memcmp(want, buf, 4096), "block %d does not hold its last successful write", b);
		if (failures > 10)
			break;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return 1;
	if (!strcmp(mode, "ctl-add") && argc >= 3) {
		idx = atoi(argv[2]);
		ctl = open("/dev/loop-control", O_RDWR);
		if (ctl < 0)
			return 1;
		sweep("ctl-add", ctl_add_attempt, ctl_add_check, enomem_only);
	} else if (!strcmp(mode, "configure") && argc >= 4) {
		node = argv[2];
		file = argv[3];
		sweep("configure", configure_attempt, configure_check, enomem_only);
	} else if (!strcmp(mode, "io") && argc >= 3) {
		node = argv[2];
		if (io_prepare()) {
			printf("io: cannot write the initial data: %s\n", strerror(errno));
			return 1;
		}
		sweep("io", io_attempt, io_check, io_errors);
	} else if (!strcmp(mode, "lockedmem")) {
		sweep("lockedmem", lockedmem_attempt, no_check, region_errors);
	} else if (!strcmp(mode, "below") && argc >= 5) {
		node = argv[2];
		rng_state = 17;
		if (errors_from_below(argv[3], atoi(argv[4])))
			return 1;
	} else {
		fprintf(stderr, "usage: faults ctl-add IDX | configure NODE FILE | io NODE | lockedmem | below NODE DISK N\n");
		return 2;
	}
	return failures ? 1 : 0;
}
