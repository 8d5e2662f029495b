// SPDX-License-Identifier: GPL-2.0
/*
 * loop_race: races on one loop device for a bounded time, against whichever loop driver is
 * loaded, counting every call's result by errno.
 *
 *   loop_race open-remove SECONDS
 *     Two threads open a fresh /dev/loopN (through a node of their own, so devtmpfs's timing
 *     plays no part), ask it LOOP_GET_STATUS64 and BLKGETSIZE64, and close it, while a third
 *     removes loopN with LOOP_CTL_REMOVE and adds it again with LOOP_CTL_ADD. An opener whose
 *     ->open runs while the device is being removed must not use it after it is freed (issue 10,
 *     item 1: KASAN on the debug kernel sees a use after free).
 *
 *   loop_race sysfs-detach SECONDS FILE
 *     Three threads read /sys/block/loopN/loop/{backing_file,offset,sizelimit,autoclear,
 *     partscan,dio} in a loop while a fourth attaches FILE with LOOP_CONFIGURE and detaches it
 *     (LOOP_CLR_FD, then the last close). A detach that removes those files while holding a lock
 *     their readers wait for deadlocks (item 2).
 *
 *   loop_race partscan SECONDS FILE
 *     One thread attaches FILE (a partitioned image) with LOOP_CONFIGURE and LO_FLAGS_PARTSCAN
 *     and detaches it again, over and over, while six others do what udev's blkid does with
 *     each new disk and partition: open /dev/loopN, /dev/loopNp1, /dev/loopNp2 and read their
 *     first and last 64 KiB (buffered, through the block device's page cache). Reads that fail
 *     are counted, not judged: run.sh compares the kernel log's I/O errors with C loop's
 *     (item 12).
 *
 *   loop_race change-cycle SECONDS FILE_X FILE_Y
 *     loopA on FILE_X and loopB on FILE_Y (same size, read-only); two threads in lockstep swap
 *     each onto the other at once, LOOP_CHANGE_FD(A, /dev/loopB) and LOOP_CHANGE_FD(B,
 *     /dev/loopA), then put X and Y back. Both succeeding would make a cycle of loop devices:
 *     the backing-file chain check must be serialised with the swap (item 6; C:
 *     loop_validate_mutex). Fails when both ever succeed.
 *
 * The races run in a child; the parent waits SECONDS plus a grace period (LOOP_RACE_GRACE, 60 s
 * by default). A child still running then is hung in the kernel: its threads' kernel stacks are
 * printed, sysrq-w dumps the blocked tasks into the kernel log, and the exit status is 2.
 * Otherwise the status is 1 when any call failed with an errno outside the expected ones, or
 * when the race never happened (no open or no removal succeeded), else 0.
 * One line per operation says how often each result came: "open: ok=812 ENXIO=3".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/loop.h>

#define MAX_ERRNO 140

/* Results of one operation: [0] successes, [e] failures with errno e, shared by the threads. */
struct counts {
	const char *name;
	const int *allowed;		/* errnos expected, 0-terminated */
	atomic_ulong n[MAX_ERRNO + 1];
};

/* Shared with the parent (MAP_SHARED), so a hung child's counts can still be printed. */
struct shared {
	struct counts open, status, size, close, remove, add;
	struct counts attach, clear, attr_open, attr_read;
	struct counts part_open, part_size, part_read;
	/* How long attaching (LOOP_CONFIGURE) and the closes after LOOP_CLR_FD took, in us. */
	struct timing { atomic_ulong n, total, max; } t_attach, t_close;
	/* The same, alone on the device (no prober): the close after LOOP_CLR_FD is the detach. */
	struct timing t_quiet_attach, t_quiet_close;
	/* Rounds of change-cycle in which both devices ended up on each other. */
	atomic_ulong cycles_made;
	atomic_int stop;
};

static struct shared *sh;
static double deadline;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int running(void)
{
	if (atomic_load(&sh->stop))
		return 0;
	if (now() >= deadline) {
		atomic_store(&sh->stop, 1);
		return 0;
	}
	return 1;
}

/* Counts the result of a call that returned @rc (negative: failed with errno). */
static void count(struct counts *c, long rc)
{
	int e = rc < 0 ? errno : 0;

	atomic_fetch_add(&c->n[e > MAX_ERRNO || e < 0 ? MAX_ERRNO : e], 1);
}

static int allowed(const struct counts *c, int e)
{
	for (const int *a = c->allowed; a && *a; a++)
		if (*a == e)
			return 1;
	return 0;
}

/* Prints "name: ok=N EXXX=M"; returns how many results were not expected. */
static unsigned long report(const struct counts *c)
{
	unsigned long bad = 0, total = 0;

	printf("%s:", c->name);
	for (int e = 0; e <= MAX_ERRNO; e++) {
		unsigned long v = atomic_load(&c->n[e]);

		if (!v)
			continue;
		total += v;
		if (!e)
			printf(" ok=%lu", v);
		else
			printf(" %s=%lu", strerrorname_np(e) ?: "E?", v);
		if (e && !allowed(c, e)) {
			printf("(unexpected)");
			bad += v;
		}
	}
	if (!total)
		printf(" none");
	printf("\n");
	return bad;
}

static void timed(struct timing *t, double start)
{
	unsigned long us = (now() - start) * 1e6, max = atomic_load(&t->max);

	atomic_fetch_add(&t->n, 1);
	atomic_fetch_add(&t->total, us);
	while (us > max && !atomic_compare_exchange_weak(&t->max, &max, us))
		;
}

static void report_time(const char *name, struct timing *t)
{
	unsigned long n = atomic_load(&t->n);

	if (n)
		printf("%s: mean %.1f ms, max %.1f ms\n", name,
		       atomic_load(&t->total) / 1e3 / n, atomic_load(&t->max) / 1e3);
}

static unsigned long ok(const struct counts *c)
{
	return atomic_load(&c->n[0]);
}

/* --- open versus remove --- */

static int ctl = -1, num = -1;
static char node[64];

static void *opener(void *unused)
{
	struct loop_info64 info;
	uint64_t size;

	while (running()) {
		int fd = open(node, O_RDONLY | O_CLOEXEC);

		count(&sh->open, fd);
		if (fd < 0)
			continue;
		count(&sh->status, ioctl(fd, LOOP_GET_STATUS64, &info));
		count(&sh->size, ioctl(fd, BLKGETSIZE64, &size));
		count(&sh->close, close(fd));
	}
	return NULL;
}

static void *remover(void *unused)
{
	while (running()) {
		count(&sh->remove, ioctl(ctl, LOOP_CTL_REMOVE, num));
		count(&sh->add, ioctl(ctl, LOOP_CTL_ADD, num));
	}
	return NULL;
}

/* A block node of our own for loop<num>, from its sysfs dev file. */
static int make_node(void)
{
	char path[64], buf[32];
	unsigned int maj, min;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/loop%d/dev", num);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f) || sscanf(buf, "%u:%u", &maj, &min) != 2) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	fclose(f);
	snprintf(node, sizeof(node), "/tmp/loop-race-%d", getpid());
	unlink(node);
	if (mknod(node, S_IFBLK | 0600, makedev(maj, min))) {
		fprintf(stderr, "mknod %s: %s\n", node, strerror(errno));
		return -1;
	}
	return 0;
}

static const int open_errs[] = { ENXIO, ENODEV, 0 };
static const int status_errs[] = { ENXIO, 0 };
static const int remove_errs[] = { EBUSY, ENODEV, 0 };
static const int add_errs[] = { EEXIST, 0 };

static int open_remove(void)
{
	pthread_t t[3];
	int rc = 0;

	sh->open = (struct counts){ .name = "open", .allowed = open_errs };
	sh->status = (struct counts){ .name = "LOOP_GET_STATUS64", .allowed = status_errs };
	sh->size = (struct counts){ .name = "BLKGETSIZE64" };
	sh->close = (struct counts){ .name = "close" };
	sh->remove = (struct counts){ .name = "LOOP_CTL_REMOVE", .allowed = remove_errs };
	sh->add = (struct counts){ .name = "LOOP_CTL_ADD", .allowed = add_errs };
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("/dev/loop-control");
		return 1;
	}
	num = ioctl(ctl, LOOP_CTL_ADD, -1);
	if (num < 0) {
		perror("LOOP_CTL_ADD");
		return 1;
	}
	if (make_node())
		return 1;
	printf("loop%d through %s\n", num, node);
	fflush(stdout);
	pthread_create(&t[0], NULL, opener, NULL);
	pthread_create(&t[1], NULL, opener, NULL);
	pthread_create(&t[2], NULL, remover, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	/* Leave no device behind (an open that recreated it may still be closing). */
	for (int i = 0; i < 100 && ioctl(ctl, LOOP_CTL_REMOVE, num) && errno == EBUSY; i++)
		usleep(10000);
	unlink(node);
	return rc;
}

static int open_remove_verdict(void)
{
	unsigned long bad = 0;

	bad += report(&sh->open);
	bad += report(&sh->status);
	bad += report(&sh->size);
	bad += report(&sh->close);
	bad += report(&sh->remove);
	bad += report(&sh->add);
	if (bad) {
		printf("%lu results outside the expected errnos\n", bad);
		return 1;
	}
	if (!ok(&sh->open) || !ok(&sh->remove)) {
		printf("no race: every open or every removal failed\n");
		return 1;
	}
	return 0;
}

/* --- sysfs readers versus attach and detach --- */

static const char *const attrs[] = { "backing_file", "offset", "sizelimit", "autoclear",
				     "partscan", "dio" };
static const char *file;

static void *reader(void *arg)
{
	unsigned int i = (uintptr_t)arg;
	char path[96], buf[4096];

	while (running()) {
		int fd;

		snprintf(path, sizeof(path), "/sys/block/loop%d/loop/%s", num,
			 attrs[i++ % (sizeof(attrs) / sizeof(attrs[0]))]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		count(&sh->attr_open, fd);
		if (fd < 0)
			continue;
		count(&sh->attr_read, read(fd, buf, sizeof(buf)));
		close(fd);
	}
	return NULL;
}

static void *attacher(void *unused)
{
	char dev[64];
	int bfd = open(file, O_RDWR | O_CLOEXEC);

	snprintf(dev, sizeof(dev), "/dev/loop%d", num);
	while (bfd >= 0 && running()) {
		struct loop_config cfg = { .fd = bfd };
		int fd = open(node, O_RDWR | O_CLOEXEC);
		double start;

		count(&sh->open, fd);
		if (fd < 0)
			continue;
		start = now();
		count(&sh->attach, ioctl(fd, LOOP_CONFIGURE, &cfg));
		timed(&sh->t_attach, start);
		count(&sh->clear, ioctl(fd, LOOP_CLR_FD, 0));
		/* The detach itself happens here, at the last close. */
		start = now();
		count(&sh->close, close(fd));
		timed(&sh->t_close, start);
	}
	if (bfd < 0)
		perror(file);
	return NULL;
}

/* ENODEV: the file was being removed (kernfs deactivates it before it goes). */
static const int attr_open_errs[] = { ENOENT, ENODEV, 0 };
static const int attr_read_errs[] = { ENXIO, ENODEV, ENOENT, 0 };

static int sysfs_detach(void)
{
	pthread_t t[4];

	sh->open = (struct counts){ .name = "open" };
	sh->close = (struct counts){ .name = "close" };
	sh->attach = (struct counts){ .name = "LOOP_CONFIGURE" };
	sh->clear = (struct counts){ .name = "LOOP_CLR_FD" };
	sh->attr_open = (struct counts){ .name = "open loop/*", .allowed = attr_open_errs };
	sh->attr_read = (struct counts){ .name = "read loop/*", .allowed = attr_read_errs };
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("/dev/loop-control");
		return 1;
	}
	num = ioctl(ctl, LOOP_CTL_ADD, -1);
	if (num < 0) {
		perror("LOOP_CTL_ADD");
		return 1;
	}
	if (make_node())
		return 1;
	printf("loop%d through %s, backing file %s\n", num, node, file);
	fflush(stdout);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)(2 * i));
	pthread_create(&t[3], NULL, attacher, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ioctl(ctl, LOOP_CTL_REMOVE, num);
	unlink(node);
	return 0;
}

static int sysfs_detach_verdict(void)
{
	unsigned long bad = 0;

	report_time("attach (LOOP_CONFIGURE)", &sh->t_attach);
	report_time("close after LOOP_CLR_FD (the detach when it is the last)", &sh->t_close);

	bad += report(&sh->open);
	bad += report(&sh->attach);
	bad += report(&sh->clear);
	bad += report(&sh->close);
	bad += report(&sh->attr_open);
	bad += report(&sh->attr_read);
	if (bad) {
		printf("%lu results outside the expected errnos\n", bad);
		return 1;
	}
	if (!ok(&sh->attach) || !ok(&sh->attr_read)) {
		printf("no race: no attach or no attribute read succeeded\n");
		return 1;
	}
	return 0;
}

/* --- partition scanning versus blkid-like readers --- */

/* What blkid reads of a new disk or partition: its size, its first and last 64 KiB. */
static void *prober(void *arg)
{
	unsigned int i = (uintptr_t)arg;
	const size_t len = 64 * 1024;
	char *b = malloc(len);
	char path[64];

	while (b && running()) {
		uint64_t size;
		int fd;

		if (i % 3)
			snprintf(path, sizeof(path), "/dev/loop%dp%u", num, i % 3);
		else
			snprintf(path, sizeof(path), "/dev/loop%d", num);
		i++;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		count(&sh->part_open, fd);
		if (fd < 0) {
			usleep(1000);
			continue;
		}
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			count(&sh->part_size, -1);
		} else {
			count(&sh->part_size, 0);
			if (size >= len) {
				count(&sh->part_read, pread(fd, b, len, 0));
				count(&sh->part_read, pread(fd, b, len, size - len));
			}
		}
		close(fd);
		/* udev probes in bursts, not back to back: the last close can come, and detach. */
		usleep(2000);
	}
	free(b);
	return NULL;
}

/* Waits (up to 2 s) until loop<num> is unbound: its loop/ directory in sysfs is gone. */
static void wait_unbound(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/block/loop%d/loop", num);
	for (int i = 0; i < 2000 && access(path, F_OK) == 0; i++)
		usleep(1000);
}

static void *partscan_attacher(void *unused)
{
	int bfd = open(file, O_RDONLY | O_CLOEXEC);

	while (bfd >= 0 && running()) {
		struct loop_config cfg = { .fd = bfd };
		int fd = open(node, O_RDONLY | O_CLOEXEC);

		double start;

		cfg.info.lo_flags = LO_FLAGS_PARTSCAN | LO_FLAGS_READ_ONLY;
		count(&sh->open, fd);
		if (fd < 0)
			continue;
		start = now();
		count(&sh->attach, ioctl(fd, LOOP_CONFIGURE, &cfg));
		timed(&sh->t_attach, start);
		/* Time for the probers to find the new partitions, as udev would. */
		usleep(20000);
		count(&sh->clear, ioctl(fd, LOOP_CLR_FD, 0));
		start = now();
		count(&sh->close, close(fd));
		timed(&sh->t_close, start);
		/* The detach happens at the last close, which may be a prober's. */
		wait_unbound();
	}
	if (bfd < 0)
		perror(file);
	return NULL;
}

/*
 * How long attaching and detaching take with nobody else on the device, QUIET_CYCLES times: the
 * detach (in the close after LOOP_CLR_FD) holds the disk's open_mutex all along, which is the
 * window in which a prober can open a partition it looked up before the detach dropped it.
 */
#define QUIET_CYCLES 20

static void quiet_cycles(void)
{
	int bfd = open(file, O_RDONLY | O_CLOEXEC);

	wait_unbound();
	for (int i = 0; bfd >= 0 && i < QUIET_CYCLES; i++) {
		struct loop_config cfg = { .fd = bfd };
		int fd = open(node, O_RDONLY | O_CLOEXEC);
		double start;

		if (fd < 0)
			break;
		cfg.info.lo_flags = LO_FLAGS_PARTSCAN | LO_FLAGS_READ_ONLY;
		start = now();
		if (ioctl(fd, LOOP_CONFIGURE, &cfg)) {
			close(fd);
			break;
		}
		timed(&sh->t_quiet_attach, start);
		ioctl(fd, LOOP_CLR_FD, 0);
		start = now();
		close(fd);
		timed(&sh->t_quiet_close, start);
	}
	if (bfd >= 0)
		close(bfd);
}

static const int part_open_errs[] = { ENOENT, ENXIO, ENODEV, 0 };
/* A prober's open may delay the detach to its close: the next attach finds the device bound. */
static const int cycle_open_errs[] = { ENXIO, 0 };
static const int cycle_attach_errs[] = { EBUSY, 0 };
static const int cycle_clear_errs[] = { ENXIO, 0 };
static const int part_read_errs[] = { EIO, 0 };

#define PROBERS 6

static int partscan(void)
{
	pthread_t t[PROBERS + 1];

	sh->open = (struct counts){ .name = "open", .allowed = cycle_open_errs };
	sh->close = (struct counts){ .name = "close" };
	sh->attach = (struct counts){ .name = "LOOP_CONFIGURE", .allowed = cycle_attach_errs };
	sh->clear = (struct counts){ .name = "LOOP_CLR_FD", .allowed = cycle_clear_errs };
	sh->part_open = (struct counts){ .name = "probe: open", .allowed = part_open_errs };
	sh->part_size = (struct counts){ .name = "probe: BLKGETSIZE64" };
	sh->part_read = (struct counts){ .name = "probe: read 64 KiB", .allowed = part_read_errs };
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		perror("/dev/loop-control");
		return 1;
	}
	num = ioctl(ctl, LOOP_CTL_ADD, -1);
	if (num < 0) {
		perror("LOOP_CTL_ADD");
		return 1;
	}
	if (make_node())
		return 1;
	printf("loop%d through %s, backing file %s\n", num, node, file);
	fflush(stdout);
	for (int i = 0; i < PROBERS; i++)
		pthread_create(&t[i], NULL, prober, (void *)(uintptr_t)i);
	pthread_create(&t[PROBERS], NULL, partscan_attacher, NULL);
	for (int i = 0; i <= PROBERS; i++)
		pthread_join(t[i], NULL);
	quiet_cycles();
	for (int i = 0; i < 100 && ioctl(ctl, LOOP_CTL_REMOVE, num) && errno == EBUSY; i++)
		usleep(10000);
	unlink(node);
	return 0;
}

static int partscan_verdict(void)
{
	unsigned long bad = 0;

	report_time("attach (LOOP_CONFIGURE)", &sh->t_attach);
	report_time("close after LOOP_CLR_FD (the detach when it is the last)", &sh->t_close);
	report_time("alone: attach", &sh->t_quiet_attach);
	report_time("alone: detach", &sh->t_quiet_close);

	bad += report(&sh->open);
	bad += report(&sh->attach);
	bad += report(&sh->clear);
	bad += report(&sh->close);
	bad += report(&sh->part_open);
	bad += report(&sh->part_size);
	bad += report(&sh->part_read);
	printf("failed reads: %lu\n", atomic_load(&sh->part_read.n[EIO]));
	if (bad) {
		printf("%lu results outside the expected errnos\n", bad);
		return 1;
	}
	if (ok(&sh->attach) < 2 || !ok(&sh->part_read)) {
		printf("no race: too few attaches or no read succeeded\n");
		return 1;
	}
	if (atomic_load(&sh->t_quiet_close.n) < QUIET_CYCLES) {
		printf("only %lu of %d attach/detach cycles alone\n",
		       atomic_load(&sh->t_quiet_close.n), QUIET_CYCLES);
		return 1;
	}
	return 0;
}

/* --- two LOOP_CHANGE_FD onto each other --- */

static int dev_a = -1, dev_b = -1;
static const char *file_y;
static pthread_barrier_t lockstep;

static void *changer(void *arg)
{
	int self = (uintptr_t)arg;
	int fd = self ? dev_b : dev_a;
	char other[64];

	snprintf(other, sizeof(other), "/dev/loop%d", self ? num : num + 1);
	for (;;) {
		int ofd;

		pthread_barrier_wait(&lockstep);
		if (atomic_load(&sh->stop))
			break;
		ofd = open(other, O_RDONLY | O_CLOEXEC);
		count(&sh->attach, ofd < 0 ? ofd : ioctl(fd, LOOP_CHANGE_FD, ofd));
		if (ofd >= 0)
			close(ofd);
		pthread_barrier_wait(&lockstep);
	}
	return NULL;
}

static int change_cycle(void)
{
	int fx = open(file, O_RDONLY | O_CLOEXEC), fy = open(file_y, O_RDONLY | O_CLOEXEC);
	struct loop_config cfg = { .info.lo_flags = LO_FLAGS_READ_ONLY };
	char path[64];
	pthread_t t[2];
	int a, b;

	sh->attach = (struct counts){ .name = "LOOP_CHANGE_FD onto the other" };
	sh->clear = (struct counts){ .name = "LOOP_CHANGE_FD back" };
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0 || fx < 0 || fy < 0) {
		perror("open");
		return 1;
	}
	/* Two consecutive free indexes, so each thread knows the other's name. */
	for (num = 64; num < 1000; num += 2) {
		a = ioctl(ctl, LOOP_CTL_ADD, num);
		if (a < 0)
			continue;
		b = ioctl(ctl, LOOP_CTL_ADD, num + 1);
		if (b >= 0)
			break;
		ioctl(ctl, LOOP_CTL_REMOVE, num);
	}
	snprintf(path, sizeof(path), "/dev/loop%d", num);
	for (int i = 0; i < 500 && access(path, F_OK); i++)
		usleep(10000);
	dev_a = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/dev/loop%d", num + 1);
	for (int i = 0; i < 500 && access(path, F_OK); i++)
		usleep(10000);
	dev_b = open(path, O_RDONLY | O_CLOEXEC);
	cfg.fd = fx;
	if (dev_a < 0 || dev_b < 0 || ioctl(dev_a, LOOP_CONFIGURE, &cfg)) {
		perror("loopA");
		return 1;
	}
	cfg.fd = fy;
	if (ioctl(dev_b, LOOP_CONFIGURE, &cfg)) {
		perror("loopB");
		return 1;
	}
	printf("loop%d on %s, loop%d on %s\n", num, file, num + 1, file_y);
	fflush(stdout);
	pthread_barrier_init(&lockstep, NULL, 3);
	pthread_create(&t[0], NULL, changer, (void *)(uintptr_t)0);
	pthread_create(&t[1], NULL, changer, (void *)(uintptr_t)1);
	while (running()) {
		struct loop_info64 ia, ib;
		unsigned long before = atomic_load(&sh->attach.n[0]);

		pthread_barrier_wait(&lockstep);	/* go */
		pthread_barrier_wait(&lockstep);	/* both done */
		if (atomic_load(&sh->attach.n[0]) - before == 2 ||
		    (!ioctl(dev_a, LOOP_GET_STATUS64, &ia) && !ioctl(dev_b, LOOP_GET_STATUS64, &ib) &&
		     major(ia.lo_rdevice) == 7 && major(ib.lo_rdevice) == 7))
			atomic_fetch_add(&sh->cycles_made, 1);
		/* A first (it may sit on B), then B. */
		count(&sh->clear, ioctl(dev_a, LOOP_CHANGE_FD, fx));
		count(&sh->clear, ioctl(dev_b, LOOP_CHANGE_FD, fy));
	}
	atomic_store(&sh->stop, 1);
	pthread_barrier_wait(&lockstep);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	ioctl(dev_a, LOOP_CLR_FD, 0);
	ioctl(dev_b, LOOP_CLR_FD, 0);
	close(dev_a);
	close(dev_b);
	for (int i = 0; i < 100 && ioctl(ctl, LOOP_CTL_REMOVE, num) && errno == EBUSY; i++)
		usleep(10000);
	for (int i = 0; i < 100 && ioctl(ctl, LOOP_CTL_REMOVE, num + 1) && errno == EBUSY; i++)
		usleep(10000);
	return 0;
}

static const int change_errs[] = { EINVAL, EBADF, 0 };

static int change_cycle_verdict(void)
{
	unsigned long bad = 0;

	sh->attach.allowed = change_errs;
	bad += report(&sh->attach);
	bad += report(&sh->clear);
	printf("rounds where both swaps succeeded (a cycle): %lu\n", atomic_load(&sh->cycles_made));
	if (bad) {
		printf("%lu results outside the expected errnos\n", bad);
		return 1;
	}
	if (atomic_load(&sh->cycles_made)) {
		printf("loop devices were made to back each other\n");
		return 1;
	}
	if (!ok(&sh->attach)) {
		printf("no race: no swap succeeded\n");
		return 1;
	}
	return 0;
}

/* --- the watchdog --- */

/* Prints the kernel stack of every thread of @pid. */
static void dump_stacks(pid_t pid)
{
	char path[320], line[256];
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	while (dir && (d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, d->d_name);
		printf("thread %s:\n", d->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			printf("  %s", line);
		if (f)
			fclose(f);
	}
	if (dir)
		closedir(dir);
}

int main(int argc, char **argv)
{
	int (*run)(void), (*verdict)(void), status, seconds;
	double grace = getenv("LOOP_RACE_GRACE") ? atof(getenv("LOOP_RACE_GRACE")) : 60;
	pid_t pid;

	if (argc >= 3 && !strcmp(argv[1], "open-remove")) {
		run = open_remove;
		verdict = open_remove_verdict;
	} else if (argc >= 4 && !strcmp(argv[1], "sysfs-detach")) {
		run = sysfs_detach;
		verdict = sysfs_detach_verdict;
		file = argv[3];
	} else if (argc >= 5 && !strcmp(argv[1], "change-cycle")) {
		run = change_cycle;
		verdict = change_cycle_verdict;
		file = argv[3];
		file_y = argv[4];
	} else if (argc >= 4 && !strcmp(argv[1], "partscan")) {
		run = partscan;
		verdict = partscan_verdict;
		file = argv[3];
	} else {
		fprintf(stderr, "usage: loop_race open-remove SECONDS | sysfs-detach SECONDS FILE | partscan SECONDS FILE | change-cycle SECONDS FILE_X FILE_Y\n");
		return 2;
	}
	seconds = atoi(argv[2]);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	deadline = now() + seconds;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0)
		_exit(run());
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now() > deadline + grace) {
			printf("hung: the race did not end %.0f s after its %d s; kernel stacks:\n",
			       grace, seconds);
			atomic_store(&sh->stop, 1);
			dump_stacks(pid);
			verdict();
			fflush(stdout);
			/* The blocked tasks, into the kernel log. */
			int fd = open("/proc/sysrq-trigger", O_WRONLY);

			if (fd >= 0) {
				if (write(fd, "w", 1) != 1)
					perror("sysrq-trigger");
				close(fd);
			}
			return 2;
		}
		usleep(100000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("the racing child failed (status 0x%x)\n", status);
		verdict();
		return 1;
	}
	return verdict();
}
