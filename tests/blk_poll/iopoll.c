// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring IORING_SETUP_IOPOLL on blk_poll devices, without liburing: raw io_uring_setup /
 * io_uring_enter and the mmapped rings.
 *
 * Environment: BP_DEV (a blk_poll device with poll queues), BP_NOPOLL_DEV (a blk_poll device
 * without poll queues), NULLB_NOPOLL_DEV (null_blk with poll_queues=0). Tests whose device is
 * not given are skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>

#include "kselftest_harness.h"

#define BS 4096
#define QD 16

struct ring {
	int fd;
	unsigned int *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ptr, *cq_ptr;
	size_t sq_len, cq_len, sqes_len;
};

static int ring_init(struct ring *r, unsigned int entries, unsigned int flags)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	r->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -errno;
	r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	r->sq_ptr = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_ptr == MAP_FAILED)
		return -errno;
	r->cq_ptr = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_CQ_RING);
	if (r->cq_ptr == MAP_FAILED)
		return -errno;
	r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_head = (unsigned int *)((char *)r->sq_ptr + p.sq_off.head);
	r->sq_tail = (unsigned int *)((char *)r->sq_ptr + p.sq_off.tail);
	r->sq_mask = (unsigned int *)((char *)r->sq_ptr + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)((char *)r->sq_ptr + p.sq_off.array);
	r->cq_head = (unsigned int *)((char *)r->cq_ptr + p.cq_off.head);
	r->cq_tail = (unsigned int *)((char *)r->cq_ptr + p.cq_off.tail);
	r->cq_mask = (unsigned int *)((char *)r->cq_ptr + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)((char *)r->cq_ptr + p.cq_off.cqes);
	return 0;
}

static void ring_exit(struct ring *r)
{
	munmap(r->sqes, r->sqes_len);
	munmap(r->cq_ptr, r->cq_len);
	munmap(r->sq_ptr, r->sq_len);
	close(r->fd);
}

/* Queues one read or write; submitted by ring_wait. */
static void ring_queue(struct ring *r, int op, int fd, void *buf, unsigned int len, uint64_t off,
		       uint64_t user_data)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = user_data;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
}

/*
 * Submits what is queued and reaps `want` completions (polling them with IOPOLL); res[user_data]
 * gets each result. Returns 0 or -errno of io_uring_enter.
 */
static int ring_wait(struct ring *r, unsigned int submit, unsigned int want, int *res)
{
	unsigned int got = 0;

	while (got < want) {
		int ret = syscall(__NR_io_uring_enter, r->fd, submit, want - got,
				  IORING_ENTER_GETEVENTS, NULL, 0);
		unsigned int head, tail;

		if (ret < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (ret >= 0)
			submit = 0;
		head = *r->cq_head;
		tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
		for (; head != tail; head++, got++) {
			struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];

			res[cqe->user_data] = cqe->res;
		}
		__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
	}
	return 0;
}

static void fill(unsigned char *buf, uint64_t off, unsigned int seed)
{
	for (unsigned int i = 0; i < BS; i += 8) {
		uint64_t v = (off + i) * 0x9e3779b97f4a7c15ull ^ seed;

		memcpy(buf + i, &v, 8);
	}
}

#define NEED(fd) do { if ((fd) < 0) return; } while (0)

static int open_dev(struct __test_metadata *_metadata, const char *var, int flags)
{
	const char *dev = getenv(var);
	int fd;

	if (!dev || !*dev)
		SKIP(return -1, "%s not set", var);
	fd = open(dev, flags | O_DIRECT);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", dev, strerror(errno));
	return fd;
}

/* One polled read of the first block: the cqe's result, or -errno of the ring's setup. */
static int polled_read(int fd)
{
	struct ring r;
	void *buf;
	int res[1] = { 0 }, ret;

	if (posix_memalign(&buf, BS, BS))
		return -ENOMEM;
	ret = ring_init(&r, 4, IORING_SETUP_IOPOLL);
	if (!ret) {
		ring_queue(&r, IORING_OP_READ, fd, buf, BS, 0, 0);
		ret = ring_wait(&r, 1, 1, res);
		ring_exit(&r);
	}
	free(buf);
	return ret ? ret : res[0];
}

static int polled_read_result(struct __test_metadata *_metadata, int fd)
{
	int res = polled_read(fd);

	ASSERT_NE(-ENOMEM, res);
	return res;
}

/* Writes `n` blocks with IOPOLL, QD at a time, then reads them back with IOPOLL and compares. */
TEST(iopoll_write_read_verify)
{
	int fd = open_dev(_metadata, "BP_DEV", O_RDWR);
	unsigned char *bufs;
	struct ring r;
	int res[QD];
	const unsigned int n = 256;
	off_t size;

	NEED(fd);
	size = lseek(fd, 0, SEEK_END);

	ASSERT_LT(0, size);
	ASSERT_EQ(0, posix_memalign((void **)&bufs, BS, BS * QD));
	ASSERT_EQ(0, ring_init(&r, QD, IORING_SETUP_IOPOLL));
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 0; i < n; i += QD) {
			for (unsigned int j = 0; j < QD; j++) {
				/* Spread over the device: a stride that is not a power of two. */
				uint64_t off = ((uint64_t)(i + j) * 7919 * BS) % size;

				if (pass == 0)
					fill(bufs + j * BS, off, 1);
				else
					memset(bufs + j * BS, 0, BS);
				ring_queue(&r, pass == 0 ? IORING_OP_WRITE : IORING_OP_READ, fd,
					   bufs + j * BS, BS, off, j);
			}
			memset(res, 0, sizeof(res));
			ASSERT_EQ(0, ring_wait(&r, QD, QD, res));
			for (unsigned int j = 0; j < QD; j++) {
				uint64_t off = ((uint64_t)(i + j) * 7919 * BS) % size;
				unsigned char want[BS];

				ASSERT_EQ(BS, res[j]) TH_LOG("%s at %llu: res %d",
					pass ? "read" : "write", (unsigned long long)off, res[j]);
				if (pass == 1) {
					fill(want, off, 1);
					ASSERT_EQ(0, memcmp(want, bufs + j * BS, BS))
						TH_LOG("data differs at %llu", (unsigned long long)off);
				}
			}
		}
	}
	ring_exit(&r);
	free(bufs);
	close(fd);
}

/* Data written with polled I/O is what plain (interrupt-driven) direct reads return, and back. */
TEST(polled_and_plain_io_see_the_same_data)
{
	int fd = open_dev(_metadata, "BP_DEV", O_RDWR);
	unsigned char *buf, want[BS];
	struct ring r;
	int res[1];
	const uint64_t off = 3 * 1024 * 1024;

	NEED(fd);
	ASSERT_EQ(0, posix_memalign((void **)&buf, BS, BS));
	ASSERT_EQ(0, ring_init(&r, 4, IORING_SETUP_IOPOLL));
	fill(buf, off, 7);
	ring_queue(&r, IORING_OP_WRITE, fd, buf, BS, off, 0);
	ASSERT_EQ(0, ring_wait(&r, 1, 1, res));
	ASSERT_EQ(BS, res[0]);
	memset(buf, 0, BS);
	ASSERT_EQ(BS, pread(fd, buf, BS, off));
	fill(want, off, 7);
	ASSERT_EQ(0, memcmp(want, buf, BS));

	fill(buf, off + BS, 9);
	ASSERT_EQ(BS, pwrite(fd, buf, BS, off + BS));
	memset(buf, 0, BS);
	ring_queue(&r, IORING_OP_READ, fd, buf, BS, off + BS, 0);
	ASSERT_EQ(0, ring_wait(&r, 1, 1, res));
	ASSERT_EQ(BS, res[0]);
	fill(want, off + BS, 9);
	ASSERT_EQ(0, memcmp(want, buf, BS));
	ring_exit(&r);
	free(buf);
	close(fd);
}

/* Reading past the end with polling fails like the block layer says, without hanging. */
TEST(polled_read_past_the_end_fails)
{
	int fd = open_dev(_metadata, "BP_DEV", O_RDONLY);
	off_t size;
	unsigned char *buf;
	struct ring r;
	int res[1];

	NEED(fd);
	size = lseek(fd, 0, SEEK_END);
	ASSERT_EQ(0, posix_memalign((void **)&buf, BS, BS));
	ASSERT_EQ(0, ring_init(&r, 4, IORING_SETUP_IOPOLL));
	ring_queue(&r, IORING_OP_READ, fd, buf, BS, size, 0);
	ASSERT_EQ(0, ring_wait(&r, 1, 1, res));
	/* At the end: 0 bytes (EOF), as for any block device. */
	ASSERT_EQ(0, res[0]);
	ring_exit(&r);
	free(buf);
	close(fd);
}

/* Without poll queues IOPOLL gets the same error from blk_poll as from C null_blk. */
TEST(iopoll_without_poll_queues_fails_like_null_blk)
{
	int fd = open_dev(_metadata, "BP_NOPOLL_DEV", O_RDONLY);
	int nfd, ours, theirs;

	NEED(fd);
	nfd = open_dev(_metadata, "NULLB_NOPOLL_DEV", O_RDONLY);
	NEED(nfd);
	ours = polled_read_result(_metadata, fd);
	theirs = polled_read_result(_metadata, nfd);

	TH_LOG("blk_poll: %d (%s), null_blk: %d (%s)", ours, strerror(-ours), theirs,
	       strerror(-theirs));
	ASSERT_GT(0, theirs);
	ASSERT_EQ(theirs, ours);
	close(fd);
	close(nfd);
}

/*
 * `iopoll --read-result DEV` prints the result of one polled read of DEV's first block (for
 * suites that compare a device's answer with another's, e.g. the C loop driver's); otherwise
 * the kselftest harness runs.
 */
int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--read-result")) {
		int fd = open(argv[2], O_RDONLY | O_DIRECT);

		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
		printf("%d\n", polled_read(fd));
		close(fd);
		return 0;
	}
	return test_harness_run(argc, argv);
}
