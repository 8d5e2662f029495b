// SPDX-License-Identifier: GPL-2.0
/*
 * stress: configuration racing I/O, for a bounded time, with every write that succeeded checked.
 *
 *   stress loop SECONDS DIR SEED
 *     /dev/loopN (a node of its own in DIR, minor 0) on DIR/back (8 MiB). Writer threads each own
 *     a set of 4 KiB blocks and write them with O_DIRECT through the device, each write tagged
 *     (block, sequence number), read it back at once and compare (when both succeeded), and
 *     reopen the device now and then; racer threads meanwhile detach and re-attach the same file
 *     (LOOP_CLR_FD, LOOP_SET_FD, LOOP_CONFIGURE with random direct I/O, read-only and block
 *     size), LOOP_SET_STATUS64 (flags only: the offset stays 0), LOOP_SET_DIRECT_IO,
 *     LOOP_SET_BLOCK_SIZE, LOOP_CHANGE_FD to the same file, LOOP_CTL_REMOVE and LOOP_CTL_ADD, and
 *     run 'losetup -D'. Afterwards the backing file itself must hold, for every block, the last
 *     write that succeeded, or a later one whose result was an error (it may or may not have
 *     landed): no write that succeeded is lost.
 *   stress loop-io SECONDS DIR SEED direct|buffered
 *     The writers alone on a device bound once (LOOP_CONFIGURE, with or without direct I/O): for
 *     run.sh's fault injection in the device's worker, where writes may fail (EIO, ENOMEM) but
 *     none that succeeded may be lost, and what is read back at once is what was written.
 *   stress lockedmem SECONDS SEED
 *     Threads each open /dev/lockedmem regions, map them twice, write through one mapping and
 *     read through the other, close the descriptor before or after, fork children that touch
 *     what they inherited (MADV_DOFORK at random) and unmap in random order, all in one address
 *     space; then every region must be gone (the module's stats).
 *
 * Hung (still running 90 s after SECONDS; STRESS_GRACE): kernel stacks, sysrq-w, status 2.
 */
#include "hard.h"
#include <linux/fs.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define BLOCK 4096
#define NBLOCKS 2048 /* 8 MiB */
#define WRITERS 3
#define RACERS 2
#define MAGIC 0x5275737434344844ULL

static uint64_t seed;
static int seconds;
static double deadline;
static atomic_int stop;
static const char *dir;
static char node[256], back[256];
static int ctl;
static atomic_int last_write_errno;
static atomic_ulong n_write_ok, n_write_err, n_read_ok, n_verify_bad, n_ops[16], n_ops_ok[16];

/* Per block: the last sequence number whose write succeeded, the highest that failed after it. */
static struct shadow {
	uint64_t committed, maybe;
} shadow[NBLOCKS];

static int running(void)
{
	if (atomic_load(&stop))
		return 0;
	if (now() >= deadline) {
		atomic_store(&stop, 1);
		return 0;
	}
	return 1;
}

/* The thread's own generator (rnd() shares one state). */
static uint64_t trnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void make_block(uint64_t *buf, uint64_t block, uint64_t seq)
{
	buf[0] = MAGIC;
	buf[1] = block;
	buf[2] = seq;
	for (int i = 3; i < BLOCK / 8; i++)
		buf[i] = block * 1000003 + seq * 7919 + i;
}

/* The sequence number a block holds (0: never written), or -1 when it is torn or foreign. */
static int64_t block_seq(const uint64_t *buf, uint64_t block)
{
	uint64_t want[BLOCK / 8];
	int zero = 1;

	for (int i = 0; i < BLOCK / 8 && zero; i++)
		zero = !buf[i];
	if (zero)
		return 0;
	if (buf[0] != MAGIC || buf[1] != block)
		return -1;
	make_block(want, block, buf[2]);
	return memcmp(want, buf, BLOCK) ? -1 : (int64_t)buf[2];
}

static void *writer(void *arg)
{
	long id = (long)arg;
	uint64_t s = seed ^ (id * 0x1234567), *buf, *rbuf, seq = 0;
	int fd = -1, uses = 0;

	if (posix_memalign((void **)&buf, BLOCK, BLOCK) || posix_memalign((void **)&rbuf, BLOCK, BLOCK))
		abort();
	while (running()) {
		uint64_t block = (trnd(&s) % (NBLOCKS / WRITERS)) * WRITERS + id;
		ssize_t rc;

		/* Short opens: a detach (LOOP_CLR_FD while open) happens at the last close. */
		if (fd < 0 || ++uses > (int)(trnd(&s) % 4)) {
			if (fd >= 0)
				close(fd);
			if (trnd(&s) % 2)
				usleep(trnd(&s) % 500);
			fd = open(node, O_RDWR | O_DIRECT | O_CLOEXEC);
			uses = 0;
			if (fd < 0) {
				usleep(1000);
				continue;
			}
		}
		seq++;
		make_block(buf, block, seq);
		rc = pwrite(fd, buf, BLOCK, block * BLOCK);
		if (rc != BLOCK) {
			atomic_fetch_add(&n_write_err, 1);
			atomic_store(&last_write_errno, rc < 0 ? errno : 0);
			shadow[block].maybe = seq;
			close(fd);
			fd = -1;
			continue;
		}
		atomic_fetch_add(&n_write_ok, 1);
		shadow[block].committed = seq;
		shadow[block].maybe = 0;
		memset(rbuf, 0, BLOCK);
		if (pread(fd, rbuf, BLOCK, block * BLOCK) == BLOCK) {
			atomic_fetch_add(&n_read_ok, 1);
			if (block_seq(rbuf, block) != (int64_t)seq) {
				printf("block %llu: wrote sequence %llu, read back %lld at once\n",
				       (unsigned long long)block, (unsigned long long)seq,
				       (long long)block_seq(rbuf, block));
				atomic_fetch_add(&n_verify_bad, 1);
			}
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

enum { OP_CLR, OP_SET_FD, OP_CONFIGURE, OP_STATUS, OP_DIO, OP_BSIZE, OP_CHANGE, OP_REMOVE,
       OP_ADD, OP_LOSETUP_D, NOPS };
static const char *const op_names[NOPS] = { "clr_fd", "set_fd", "configure", "set_status64",
					    "set_direct_io", "set_block_size", "change_fd",
					    "ctl_remove", "ctl_add", "losetup_-D" };

static void *racer(void *arg)
{
	uint64_t s = seed ^ ((long)arg * 0x9876543);
	int rw = open(back, O_RDWR | O_CLOEXEC), ro = open(back, O_RDONLY | O_CLOEXEC);

	while (running()) {
		int op = trnd(&s) % NOPS, fd, rc = -1;
		struct loop_config cfg;
		struct loop_info64 info;

		if (op == OP_LOSETUP_D && trnd(&s) % 8)
			op = OP_SET_FD;
		if (op == OP_ADD || op == OP_REMOVE) {
			rc = ioctl(ctl, op == OP_ADD ? LOOP_CTL_ADD : LOOP_CTL_REMOVE, 0);
		} else if (op == OP_LOSETUP_D) {
			rc = system("/usr/sbin/losetup -D >/dev/null 2>&1");
		} else {
			fd = open(node, O_RDWR | O_CLOEXEC);
			if (fd < 0) {
				usleep(1000);
				continue;
			}
			switch (op) {
			case OP_CLR:
				rc = ioctl(fd, LOOP_CLR_FD, 0);
				break;
			case OP_SET_FD:
				rc = ioctl(fd, LOOP_SET_FD, trnd(&s) % 4 ? rw : ro);
				break;
			case OP_CONFIGURE:
				memset(&cfg, 0, sizeof(cfg));
				cfg.fd = trnd(&s) % 4 ? rw : ro;
				cfg.block_size = (const unsigned int[]){ 0, 512, 1024, 4096 }[trnd(&s) % 4];
				cfg.info.lo_flags = (trnd(&s) % 2 ? LO_FLAGS_DIRECT_IO : 0) |
						    (trnd(&s) % 8 ? 0 : LO_FLAGS_READ_ONLY);
				rc = ioctl(fd, LOOP_CONFIGURE, &cfg);
				break;
			case OP_STATUS:
				rc = ioctl(fd, LOOP_GET_STATUS64, &info);
				if (!rc) {
					info.lo_flags ^= trnd(&s) % 2 ? LO_FLAGS_AUTOCLEAR : 0;
					info.lo_flags &= ~LO_FLAGS_AUTOCLEAR;
					snprintf((char *)info.lo_file_name, LO_NAME_SIZE, "stress-%llu",
						 (unsigned long long)(trnd(&s) % 100));
					rc = ioctl(fd, LOOP_SET_STATUS64, &info);
				}
				break;
			case OP_DIO:
				rc = ioctl(fd, LOOP_SET_DIRECT_IO, trnd(&s) % 2);
				break;
			case OP_BSIZE:
				rc = ioctl(fd, LOOP_SET_BLOCK_SIZE, (const int[]){ 512, 1024, 4096 }[trnd(&s) % 3]);
				break;
			case OP_CHANGE:
				rc = ioctl(fd, LOOP_CHANGE_FD, ro);
				break;
			}
			close(fd);
		}
		atomic_fetch_add(&n_ops[op], 1);
		if (rc == 0)
			atomic_fetch_add(&n_ops_ok[op], 1);
		usleep(trnd(&s) % 2000);
	}
	close(rw);
	close(ro);
	return NULL;
}

static int racers = RACERS, io_flags;

static int loop_body(void)
{
	pthread_t w[WRITERS], r[RACERS];
	struct loop_config cfg;
	uint64_t *buf;
	int fd, lost = 0, torn = 0, bad;

	snprintf(node, sizeof(node), "%s/loopstress", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	unlink(node);
	if (mknod(node, S_IFBLK | 0600, makedev(7, 0))) {
		perror(node);
		return 1;
	}
	fd = open(back, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)NBLOCKS * BLOCK)) {
		perror(back);
		return 1;
	}
	close(fd);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("/dev/loop-control");
		return 1;
	}
	if (!racers) {
		/* I/O alone (loop-io): the device bound once, here. */
		int dev = open(node, O_RDWR | O_CLOEXEC);

		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = open(back, O_RDWR | O_CLOEXEC);
		cfg.info.lo_flags = io_flags;
		if (dev < 0 || ioctl(dev, LOOP_CONFIGURE, &cfg)) {
			perror("LOOP_CONFIGURE");
			return 1;
		}
		close(cfg.fd);
		/*
		 * Detached at the last close (LOOP_CLR_FD with another opener: autoclear); that
		 * opener is held here until the writers end.
		 */
		fd = open(node, O_RDWR | O_CLOEXEC);
		ioctl(dev, LOOP_CLR_FD, 0);
		close(dev);
	}
	deadline = now() + seconds;
	for (long i = 0; i < WRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)i);
	for (long i = 0; i < racers; i++)
		pthread_create(&r[i], NULL, racer, (void *)i);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < racers; i++)
		pthread_join(r[i], NULL);
	if (!racers)
		close(fd);
	for (int op = 0; op < NOPS; op++)
		printf("%s: %lu calls, %lu succeeded\n", op_names[op], atomic_load(&n_ops[op]),
		       atomic_load(&n_ops_ok[op]));
	printf("writes: %lu succeeded, %lu failed (the last with %s); %lu read back at once, %lu of them wrong\n",
	       atomic_load(&n_write_ok), atomic_load(&n_write_err),
	       strerrorname_np(atomic_load(&last_write_errno)) ?: "-", atomic_load(&n_read_ok),
	       atomic_load(&n_verify_bad));
	/* Detach for good (the last close ends an autoclear), then read the file itself. */
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		ioctl(fd, LOOP_CLR_FD, 0);
		close(fd);
	}
	(void)cfg;
	fd = open(back, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || posix_memalign((void **)&buf, BLOCK, BLOCK))
		return 1;
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		int64_t got;

		if (pread(fd, buf, BLOCK, b * BLOCK) != BLOCK) {
			perror("pread back");
			return 1;
		}
		got = block_seq(buf, b);
		if (got < 0) {
			if (torn++ < 5)
				printf("block %llu: torn or foreign contents\n", (unsigned long long)b);
		} else if (got != (int64_t)shadow[b].committed &&
			   !(shadow[b].maybe && (uint64_t)got > shadow[b].committed &&
			     (uint64_t)got <= shadow[b].maybe)) {
			if (lost++ < 5)
				printf("block %llu: holds sequence %lld, the last write that succeeded was %llu (failed after it: up to %llu)\n",
				       (unsigned long long)b, (long long)got,
				       (unsigned long long)shadow[b].committed,
				       (unsigned long long)shadow[b].maybe);
		}
	}
	close(fd);
	bad = lost || torn || atomic_load(&n_verify_bad);
	if (bad)
		printf("%d blocks lost a write that succeeded, %d torn (seed %llu)\n", lost, torn,
		       (unsigned long long)seed);
	if (!atomic_load(&n_write_ok) ||
	    (racers && (!atomic_load(&n_ops_ok[OP_CLR]) ||
			!atomic_load(&n_ops_ok[OP_CONFIGURE]) + !atomic_load(&n_ops_ok[OP_SET_FD]) > 1))) {
		printf("no race: no write or no detach and re-attach succeeded\n");
		bad = 1;
	}
	return bad;
}

/* --- lockedmem --- */

#define LOCKEDMEM_SET_SIZE _IOW('L', 1, uint64_t)
static atomic_ulong lm_regions, lm_forks, lm_bad;

static void *lm_worker(void *arg)
{
	uint64_t s = seed ^ ((long)arg * 0x5555);

	while (running()) {
		uint64_t pages = 1 + trnd(&s) % 64, size = pages * 4096;
		int fd = open("/dev/lockedmem", O_RDWR | O_CLOEXEC), early = trnd(&s) % 2;
		char *a, *b;

		if (fd < 0 || ioctl(fd, LOCKEDMEM_SET_SIZE, &size)) {
			printf("region: %s\n", strerror(errno));
			atomic_fetch_add(&lm_bad, 1);
			if (fd >= 0)
				close(fd);
			continue;
		}
		a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		b = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (early)
			close(fd);
		if (a == MAP_FAILED || b == MAP_FAILED) {
			printf("mmap: %s\n", strerror(errno));
			atomic_fetch_add(&lm_bad, 1);
		} else {
			for (uint64_t p = 0; p < pages; p += 1 + trnd(&s) % 4)
				a[p * 4096 + (long)arg] = (char)(p + 1);
			if (trnd(&s) % 2)
				madvise(b, size, MADV_DOFORK);
			if (trnd(&s) % 4 == 0) {
				pid_t pid = fork();

				if (pid == 0) {
					volatile char sum = 0;

					/* b is there only with MADV_DOFORK: only touch it then. */
					if (mincore(b, 4096, (unsigned char *)&sum) == 0)
						for (uint64_t p = 0; p < pages; p++)
							sum += b[p * 4096];
					_exit(0);
				}
				if (pid > 0) {
					waitpid(pid, NULL, 0);
					atomic_fetch_add(&lm_forks, 1);
				}
			}
			for (uint64_t p = 0; p < pages; p++) {
				char want = a[p * 4096 + (long)arg];

				if (b[p * 4096 + (long)arg] != want) {
					printf("page %llu differs between two mappings of one region\n",
					       (unsigned long long)p);
					atomic_fetch_add(&lm_bad, 1);
					break;
				}
			}
			if (trnd(&s) % 2) {
				munmap(a, size);
				munmap(b, size);
			} else {
				munmap(b, size);
				munmap(a, size);
			}
		}
		if (!early)
			close(fd);
		atomic_fetch_add(&lm_regions, 1);
	}
	return NULL;
}

static int lockedmem_body(void)
{
	pthread_t t[4];

	deadline = now() + seconds;
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, lm_worker, (void *)i);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("regions: %lu, forks: %lu, problems: %lu\n", atomic_load(&lm_regions),
	       atomic_load(&lm_forks), atomic_load(&lm_bad));
	return atomic_load(&lm_bad) || !atomic_load(&lm_regions);
}

int main(int argc, char **argv)
{
	double grace = getenv("STRESS_GRACE") ? atof(getenv("STRESS_GRACE")) : 90;
	int (*body)(void), rc;

	if (argc >= 5 && !strcmp(argv[1], "loop")) {
		body = loop_body;
		dir = argv[3];
		seed = strtoull(argv[4], NULL, 0);
	} else if (argc >= 6 && !strcmp(argv[1], "loop-io")) {
		body = loop_body;
		dir = argv[3];
		seed = strtoull(argv[4], NULL, 0);
		racers = 0;
		io_flags = !strcmp(argv[5], "direct") ? LO_FLAGS_DIRECT_IO : 0;
	} else if (argc >= 4 && !strcmp(argv[1], "lockedmem")) {
		body = lockedmem_body;
		seed = strtoull(argv[3], NULL, 0);
	} else {
		fprintf(stderr, "usage: stress loop SECONDS DIR SEED | loop-io SECONDS DIR SEED direct|buffered | lockedmem SECONDS SEED\n");
		return 2;
	}
	seconds = atoi(argv[2]);
	rng_state = seed;
	printf("stress %s: %d s, seed %llu\n", argv[1], seconds, (unsigned long long)seed);
	rc = bounded(body, seconds + grace, seed);
	if (rc)
		printf("stress %s failed (seed %llu)\n", argv[1], (unsigned long long)seed);
	return rc;
}
