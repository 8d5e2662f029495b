// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: seeded, reproducible random and boundary-valued calls to rust44's user interfaces. The
 * calls depend on the seed only, never on what earlier calls returned, so a seed replays the same
 * sequence against any driver; each call's result goes to a trace, one line per call.
 *
 *   fuzz loop SEED ITERS DIR TRACE [aligned]
 *     ioctls to /dev/loop-control and to loop devices (nodes of its own in DIR, minors 0-5, 255
 *     and 1048575): every loop ioctl with random and boundary arguments (structures with random
 *     fields, bad pointers, every kind of file as backing: regular files read-write, read-only,
 *     O_DIRECT, empty and of odd size, a directory, /dev/null, a pipe, closed descriptors, loop
 *     devices), some generic block ioctls, random 'L' ioctl numbers, and direct reads and writes
 *     at boundary offsets. The trace holds each call's errno and what it read (the status
 *     fields, sizes, a hash of the data), so two drivers' traces for one seed must be equal.
 *     With 'aligned', offsets are multiples of 4096 and valid block sizes at least 4096:
 *     loop_dio refuses on purpose (EINVAL) the direct I/O C loop drops silently at an offset or
 *     block size direct I/O cannot use (README, loop_dio), and that one documented difference
 *     would make every later call differ.
 *     FUZZ_STATE=1 adds every device's read-only flag, size and backing file to each line.
 *   fuzz lockedmem SEED ITERS
 *     /dev/lockedmem: regions opened, sized (boundary sizes), random ioctls, mmap with random
 *     ranges, protections and flags (MAP_FIXED inside a reserved window), munmap, mprotect,
 *     madvise, mremap, mlock/munlock, touching pages (SIGSEGV and SIGBUS caught), fork with a
 *     child that touches what it inherited, closes. At the end every region is gone (the
 *     module's stats: regions 0, pages_held 0).
 *   fuzz configfs SEED ITERS ROOT
 *     blk_poll's configfs (ROOT): directories made and removed (good and bad names), random
 *     strings (boundary numbers, words, printable and binary bytes) written to every attribute,
 *     power on and off, every attribute read back.
 *
 * Every call must return: the body runs in a child and is called hung after FUZZ_LIMIT seconds
 * (default 600; the kernel stacks are printed). Exit 0 when it ran through, else the seed is
 * printed with the reason.
 */
#include "hard.h"
#include <linux/fs.h>
#include <linux/loop.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static uint64_t seed;
static long iters;
static const char *dir, *trace_path, *cfs_root;
static int aligned;
static FILE *trace;

#define TRACE(...) fprintf(trace, __VA_ARGS__)

/* The errno of a failed call, 0 after success: what the trace compares. */
static int err_of(long rc)
{
	return rc < 0 ? errno : 0;
}

static uint32_t hash(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* --- loop --- */

#define NDEV 8
static const unsigned int minors[NDEV] = { 0, 1, 2, 3, 4, 5, 255, 1048575 };
static int dev_fd[NDEV] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static char node[NDEV][256];
#define NBACK 10
static int back_fd[NBACK];
static int ctl;
/* A page whose last bytes are followed by an unmapped page: structures cut short (EFAULT). */
static char *edge;

static const int64_t values[] = {
	0, 1, 2, 7, 8, 255, 256, 511, 512, 513, 1024, 4095, 4096, 4097, 65536, 1 << 20, 1048575,
	1048576, 2 << 20, INT32_MAX, (int64_t)INT32_MAX + 1, UINT32_MAX, (int64_t)1 << 32,
	INT64_MAX, INT64_MAX - 511, -1, -512, INT64_MIN,
};

static uint64_t value(void)
{
	return below(5) ? (uint64_t)pick(values) : rnd();
}

/* An offset or size limit: boundary values, small ones, multiples of 512 when aligned. */
static uint64_t offset_value(void)
{
	uint64_t v;

	switch (below(4)) {
	case 0:
		v = pick(values);
		break;
	case 1:
		v = below(1 << 21);
		break;
	case 2:
		v = below(4096) * 512;
		break;
	default:
		v = 0;
	}
	return aligned ? v & ~4095ULL : v;
}

/*
 * A block size for LOOP_SET_BLOCK_SIZE and LOOP_CONFIGURE: valid and invalid ones. Aligned,
 * none that is valid but below 4096, the largest direct I/O granule of the backing files here
 * (a loop device with 4 KiB blocks), where loop_dio refuses what C does without direct I/O.
 */
static long block_size(void)
{
	static const long sizes[] = { 0, 1, 256, 511, 512, 513, 1024, 2048, 4096, 8192,
				      65536, -1, (1L << 32) | 512 };
	long v = pick(sizes);

	if (aligned && (v == 512 || v == 1024 || v == 2048))
		v = 4096;
	return v;
}

static int backing_fd(void)
{
	if (below(4) == 0)
		return dev_fd[below(NDEV)];
	return back_fd[below(NBACK)];
}

static void random_info64(struct loop_info64 *in)
{
	static const uint32_t flag_bits[] = { LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR,
					      LO_FLAGS_PARTSCAN, LO_FLAGS_DIRECT_IO, 1 << 5,
					      1u << 31 };

	if (below(4) == 0) {
		fill_random(in, sizeof(*in));
	} else {
		memset(in, 0, sizeof(*in));
		for (int i = 0; i < 3; i++)
			if (below(2))
				in->lo_flags |= pick(flag_bits);
		if (below(8) == 0)
			in->lo_encrypt_type = below(20);
		if (below(8) == 0)
			in->lo_encrypt_key_size = value();
		if (below(2))
			fill_random(in->lo_file_name, below(LO_NAME_SIZE + 1));
	}
	in->lo_offset = offset_value();
	in->lo_sizelimit = below(2) ? 0 : offset_value();
}

static void random_info(struct loop_info *in)
{
	if (below(4) == 0) {
		fill_random(in, sizeof(*in));
	} else {
		memset(in, 0, sizeof(*in));
		in->lo_flags = below(2) ? 0 : (int)below(16);
		if (below(8) == 0)
			in->lo_encrypt_type = below(20);
	}
	in->lo_offset = (int)offset_value();
	if (aligned)
		in->lo_offset &= ~4095;
}

/* The argument pointer: mostly @buf, sometimes NULL, a wild one, or cut short at a page end. */
static void *arg_ptr(void *buf, size_t len)
{
	switch (below(20)) {
	case 0:
		return NULL;
	case 1:
		return (void *)1;
	case 2:
		return edge + 4096 - (len > 8 ? len / 2 : 1);
	default:
		return buf;
	}
}

static void trace_info64(const struct loop_info64 *in)
{
	char name[LO_NAME_SIZE + 1];

	memcpy(name, in->lo_file_name, LO_NAME_SIZE);
	name[LO_NAME_SIZE] = 0;
	TRACE(" number=%u flags=%#x offset=%llu sizelimit=%llu name_hash=%08x", in->lo_number,
	      in->lo_flags, (unsigned long long)in->lo_offset,
	      (unsigned long long)in->lo_sizelimit, hash(name, strlen(name)));
}

static void dev_open(int i)
{
	static const int flags[] = { O_RDWR, O_RDONLY, O_RDWR | O_EXCL, O_RDONLY | O_NONBLOCK,
				     O_WRONLY, O_RDWR | O_DIRECT };
	int f = pick(flags);

	if (dev_fd[i] >= 0)
		close(dev_fd[i]);
	dev_fd[i] = open(node[i], f | O_CLOEXEC);
	TRACE("open %d %#x = %d\n", i, f, err_of(dev_fd[i]));
}

static void dev_close(int i)
{
	TRACE("close %d = %d\n", i, dev_fd[i] < 0 ? EBADF : err_of(close(dev_fd[i])));
	dev_fd[i] = -1;
}

static void ctl_ioctl(void)
{
	static const unsigned long cmds[] = { LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE,
					      0x4C83, 0x4C7F, 0x4C00 };
	unsigned long cmd = below(8) ? pick(cmds) : _IO('L', below(256));
	static const long args[] = { 0, 1, 2, 3, 5, 7, 8, 255, 1048575, 1048576, -1, INT32_MAX };
	long arg = below(6) ? pick(args) : (long)rnd();
	long rc = ioctl(ctl, cmd, arg);

	TRACE("ctl %#lx %ld = %d %ld\n", cmd, arg, err_of(rc), rc < 0 ? -1 : rc);
}

static void dev_ioctl(int i)
{
	static const unsigned long cmds[] = {
		LOOP_SET_FD, LOOP_CLR_FD, LOOP_SET_STATUS, LOOP_GET_STATUS, LOOP_SET_STATUS64,
		LOOP_GET_STATUS64, LOOP_CHANGE_FD, LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO,
		LOOP_SET_BLOCK_SIZE, LOOP_CONFIGURE, BLKGETSIZE64, BLKSSZGET, BLKFLSBUF, BLKRRPART,
		BLKROSET, BLKDISCARD, LOOP_CONFIGURE, LOOP_SET_FD, LOOP_SET_STATUS64,
	};
	union {
		struct loop_info64 i64;
		struct loop_info i;
		struct loop_config c;
		uint64_t range[2];
		uint64_t u64;
		int n;
		char raw[4096];
	} buf;
	unsigned long cmd = below(16) ? pick(cmds) : _IO('L', below(256));
	int fd = dev_fd[i];
	void *p = NULL;
	long rc, arg = 0;

	memset(&buf, 0, sizeof(buf));
	switch (cmd) {
	case LOOP_SET_FD:
	case LOOP_CHANGE_FD:
		arg = backing_fd();
		break;
	case LOOP_SET_STATUS64:
		random_info64(&buf.i64);
		p = arg_ptr(&buf, sizeof(buf.i64));
		break;
	case LOOP_SET_STATUS:
		random_info(&buf.i);
		p = arg_ptr(&buf, sizeof(buf.i));
		break;
	case LOOP_CONFIGURE:
		buf.c.fd = backing_fd();
		buf.c.block_size = block_size();
		random_info64(&buf.c.info);
		if (below(8) == 0)
			fill_random(buf.c.__reserved, sizeof(buf.c.__reserved));
		p = arg_ptr(&buf, sizeof(buf.c));
		break;
	case LOOP_GET_STATUS64:
	case LOOP_GET_STATUS:
	case BLKGETSIZE64:
	case BLKSSZGET:
		p = arg_ptr(&buf, 8);
		break;
	case LOOP_SET_DIRECT_IO:
		arg = below(4) ? (long)below(2) : (long)value();
		break;
	case LOOP_SET_BLOCK_SIZE:
		arg = block_size();
		break;
	case BLKROSET:
		buf.n = below(2);
		p = arg_ptr(&buf, sizeof(int));
		break;
	case BLKDISCARD:
		buf.range[0] = offset_value();
		buf.range[1] = offset_value();
		p = arg_ptr(&buf, sizeof(buf.range));
		break;
	case LOOP_CLR_FD:
	case LOOP_SET_CAPACITY:
	case BLKFLSBUF:
	case BLKRRPART:
		arg = below(4) ? 0 : (long)value();
		break;
	default:
		fill_random(buf.raw, sizeof(buf.raw));
		p = arg_ptr(&buf, sizeof(buf));
	}
	rc = ioctl(fd, cmd, p ? (long)p : arg);
	TRACE("ioctl %d %#lx = %d", i, cmd, err_of(rc));
	if (!rc && p == (void *)&buf) {
		if (cmd == LOOP_GET_STATUS64)
			trace_info64(&buf.i64);
		else if (cmd == LOOP_GET_STATUS)
			TRACE(" number=%d flags=%#x offset=%d", buf.i.lo_number, buf.i.lo_flags,
			      buf.i.lo_offset);
		else if (cmd == BLKGETSIZE64)
			TRACE(" size=%llu", (unsigned long long)buf.u64);
		else if (cmd == BLKSSZGET)
			TRACE(" ssz=%d", buf.n);
	}
	TRACE("\n");
}

/* A direct read or write through a descriptor of its own (no page cache to differ by). */
static void dev_io(int i)
{
	static const uint64_t offsets[] = { 0, 512, 4096, 65536, 1 << 20, (1 << 20) - 512,
					    (1 << 20) - 4096, 2 << 20, 1ULL << 40 };
	static const size_t lens[] = { 512, 4096, 8192, 65536, 1, 1000 };
	static char *io_buf;
	int write = below(2), fd, e;
	uint64_t off = below(2) ? pick(offsets) : below(4096) * 512;
	size_t len = pick(lens);
	ssize_t rc;

	if (!io_buf && posix_memalign((void **)&io_buf, 4096, 65536))
		abort();
	fd = open(node[i], (write ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		TRACE("io %d open = %d\n", i, errno);
		return;
	}
	if (write) {
		fill_random(io_buf, len);
		rc = pwrite(fd, io_buf, len, off);
	} else {
		memset(io_buf, 0xee, len);
		rc = pread(fd, io_buf, len, off);
	}
	e = err_of(rc);
	TRACE("io %d %s %llu %zu = %d %zd", i, write ? "w" : "r", (unsigned long long)off, len, e,
	      rc);
	if (!write && rc > 0)
		TRACE(" hash=%08x", hash(io_buf, rc));
	TRACE("\n");
	close(fd);
}

static int make_file(const char *name, size_t size)
{
	char path[512], *data = malloc(size + 1);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fill_random(data, size);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
		perror(path);
		exit(1);
	}
	free(data);
	close(fd);
	return 0;
}

static int open_file(const char *name, int flags)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags);
}

/*
 * With FUZZ_STATE set, each trace line ends with every device's read-only state and size as
 * sysfs shows them (the disk's own flag, not BLKROSET's), so two traces show where the
 * drivers' states part, not only where a later call's result does.
 */
static void trace_state(void)
{
	char path[64], val[64];

	TRACE(" |");
	for (int i = 0; i < NDEV; i++) {
		const char *attr[] = { "ro", "size", "loop/backing_file" };

		for (int a = 0; a < 3; a++) {
			FILE *f;

			snprintf(path, sizeof(path), "/sys/block/loop%u/%s", minors[i], attr[a]);
			f = fopen(path, "r");
			if (!f || !fgets(val, sizeof(val), f))
				strcpy(val, "-");
			if (f)
				fclose(f);
			val[strcspn(val, "\n")] = 0;
			TRACE("%s%s", a ? "/" : " ", val);
		}
	}
}

static int loop_body(void)
{
	int show_state = getenv("FUZZ_STATE") != NULL;

	int pipefd[2];

	rng_state = seed;
	trace = fopen(trace_path, "w");
	if (!trace) {
		perror(trace_path);
		return 1;
	}
	/* The backing files have the same contents for every run of a seed. */
	make_file("f0", 1 << 20);
	make_file("f1", 65537);
	make_file("f2", 0);
	for (int i = 0; i < NDEV; i++) {
		snprintf(node[i], sizeof(node[i]), "%s/l%u", dir, minors[i]);
		unlink(node[i]);
		if (mknod(node[i], S_IFBLK | 0600, makedev(7, minors[i]))) {
			perror(node[i]);
			return 1;
		}
	}
	if (pipe(pipefd))
		return 1;
	back_fd[0] = open_file("f0", O_RDWR);
	back_fd[1] = open_file("f0", O_RDONLY);
	back_fd[2] = open_file("f0", O_RDWR | O_DIRECT);
	back_fd[3] = open_file("f1", O_RDWR);
	back_fd[4] = open_file("f2", O_RDWR);
	back_fd[5] = open(dir, O_RDONLY | O_DIRECTORY);
	back_fd[6] = open("/dev/null", O_RDWR);
	back_fd[7] = pipefd[0];
	back_fd[8] = -1;
	back_fd[9] = 1000;
	ctl = open("/dev/loop-control", O_RDWR);
	if (ctl < 0) {
		perror("/dev/loop-control");
		return 1;
	}
	edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
		return 1;
	for (long n = 0; n < iters; n++) {
		int i = below(NDEV), r = below(100);

		TRACE("%ld ", n);
		if (r < 8)
			dev_open(i);
		else if (r < 11)
			dev_close(i);
		else if (r < 20)
			ctl_ioctl();
		else if (r < 85)
			dev_ioctl(i);
		else
			dev_io(i);
		if (show_state) {
			/* Each call ended its line: put the state before that newline. */
			fflush(trace);
			if (fseek(trace, -1, SEEK_CUR) == 0)
				trace_state();
			TRACE("\n");
		}
	}
	/* Leave nothing bound: close everything, then detach what is left. */
	for (int i = 0; i < NDEV; i++)
		if (dev_fd[i] >= 0)
			close(dev_fd[i]);
	for (int i = 0; i < NDEV; i++) {
		int fd = open(node[i], O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ioctl(fd, LOOP_CLR_FD, 0);
			close(fd);
		}
	}
	fclose(trace);
	return 0;
}

/* --- lockedmem --- */

#define LOCKEDMEM_SET_SIZE _IOW('L', 1, uint64_t)
#define LOCKEDMEM_GET_SIZE _IOR('L', 2, uint64_t)
#define WINDOW (64UL << 20)
#define NREG 4

static char *window;
static int reg_fd[NREG] = { -1, -1, -1, -1 };
static sigjmp_buf touch_jmp;
static volatile sig_atomic_t faults;

static void on_fault(int sig)
{
	faults++;
	siglongjmp(touch_jmp, sig);
}

/* A page-aligned range inside the window. */
static void window_range(char **start, size_t *len)
{
	size_t pages = WINDOW / 4096, first = below(pages);
	size_t n = below(4) ? 1 + below(16) : 1 + below(pages - first);

	if (first + n > pages)
		n = pages - first;
	*start = window + first * 4096;
	*len = n * 4096;
}

static void touch(char *p, int write)
{
	if (sigsetjmp(touch_jmp, 1) == 0) {
		if (write)
			*(volatile char *)p = (char)rnd();
		else
			(void)*(volatile char *)p;
	}
}

static int lockedmem_body(void)
{
	static const uint64_t sizes[] = { 0, 1, 4095, 4096, 4097, 1 << 20, 16 << 20, WINDOW,
					  1ULL << 40, UINT64_MAX, UINT64_MAX - 4095, INT64_MAX };
	static const int advice[] = { MADV_NORMAL, MADV_RANDOM, MADV_DONTNEED, MADV_REMOVE,
				      MADV_DONTFORK, MADV_DOFORK, MADV_DONTDUMP, MADV_DODUMP,
				      MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT,
				      MADV_FREE, MADV_MERGEABLE, MADV_HUGEPAGE, MADV_WILLNEED,
				      MADV_POPULATE_READ, MADV_POPULATE_WRITE, 1000 };
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE,
				     PROT_EXEC | PROT_READ };
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };
	long counts[8] = { 0 };

	rng_state = seed;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	window = mmap(NULL, WINDOW, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (window == MAP_FAILED)
		return 1;
	for (long n = 0; n < iters; n++) {
		int r = below(100), k = below(NREG), fd = reg_fd[k];
		char *start;
		size_t len;
		uint64_t u;
		long rc;

		window_range(&start, &len);
		if (r < 8) {
			if (fd >= 0)
				close(fd);
			reg_fd[k] = open("/dev/lockedmem", below(8) ? O_RDWR : O_RDONLY);
		} else if (r < 12) {
			if (fd >= 0)
				close(fd);
			reg_fd[k] = -1;
		} else if (r < 22) {
			u = pick(sizes);
			if (below(2))
				u = below(2) ? (u & ~4095ULL) + 4096 * below(64) : 4096 * (1 + below(64));
			rc = ioctl(fd, LOCKEDMEM_SET_SIZE, below(10) ? (void *)&u : (void *)8);
			counts[0] += !rc;
		} else if (r < 26) {
			rc = ioctl(fd, below(4) ? LOCKEDMEM_GET_SIZE : _IOC(below(4), 'L', below(8), below(16)),
				   below(10) ? (void *)&u : (void *)8);
		} else if (r < 50) {
			int flags = below(10) ? MAP_SHARED : below(2) ? MAP_PRIVATE : MAP_SHARED_VALIDATE;
			off_t off = below(3) ? 0 : below(2) ? (off_t)below(64) * 4096 : (off_t)pick(sizes);
			void *m;

			if (below(4))
				flags |= MAP_FIXED;
			else
				flags |= MAP_FIXED_NOREPLACE;
			m = mmap(start, len, pick(prots), flags, fd, off);
			counts[1] += m != MAP_FAILED;
			if (m != MAP_FAILED && m != start) {
				/* Not where asked (cannot be with MAP_FIXED): put the window back. */
				munmap(m, len);
			}
		} else if (r < 56) {
			/* What is unmapped goes back to the reserved window. */
			rc = mmap(start, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED;
			counts[2] += !rc;
		} else if (r < 62) {
			mprotect(start, len, pick(prots));
		} else if (r < 70) {
			int a = pick(advice);

			/* Populating a large range of a large region takes that much memory. */
			if ((a == MADV_POPULATE_READ || a == MADV_POPULATE_WRITE) && len > 64 * 4096)
				len = 64 * 4096;
			counts[3] += !madvise(start, len, a);
		} else if (r < 74) {
			char *to;
			size_t to_len;
			void *m;

			window_range(&to, &to_len);
			if (below(2))
				m = mremap(start, len, to_len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
			else
				m = mremap(start, len, to_len, 0);
			counts[4] += m != MAP_FAILED;
			/* A region moved out of the window (never: FIXED lands inside it). */
		} else if (r < 78) {
			if (len > 64 * 4096)
				len = 64 * 4096;
			if (below(2))
				counts[5] += !mlock(start, len);
			else if (below(2))
				munlock(start, len);
			else
				syscall(SYS_mlock2, start, len, below(3));
		} else if (r < 96) {
			for (int t = 0; t < 4; t++)
				touch(start + below(len / 4096) * 4096, below(2));
		} else {
			pid_t pid;
			int status;

			fflush(stdout);
			pid = fork();
			if (pid == 0) {
				for (int t = 0; t < 8; t++)
					touch(window + below(WINDOW / 4096) * 4096, below(2));
				if (below(2))
					close(reg_fd[k]);
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, &status, 0);
			counts[6]++;
		}
	}
	munmap(window, WINDOW);
	for (int k = 0; k < NREG; k++)
		if (reg_fd[k] >= 0)
			close(reg_fd[k]);
	printf("sized %ld, mapped %ld, unmapped %ld, advised %ld, remapped %ld, mlocked %ld, forks %ld, faults caught %d\n",
	       counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	       (int)faults);
	return 0;
}

/* --- blk_poll configfs --- */

static const char *const attrs[] = { "size", "blocksize", "submit_queues", "poll_queues",
				     "hw_queue_depth", "completion_nsec", "irqmode", "poll_mode",
				     "power", "stats", "features" };
static const char *const names[] = { "hz0", "hz1", "hz2", "a", "hz_with_a_name_of_31_chars_xxxx",
				     "hz_with_a_name_of_32_chars_xxxxx", "hz.x", ".hz", "hz-" };

static void random_string(char *s, size_t *len)
{
	static const char *const words[] = {
		"0", "1", "2", "-1", "4", "512", "4096", "4097", "65536", "1000000000",
		"1000000001", "4294967295", "4294967296", "18446744073709551615",
		"18446744073709551616", "99999999999999999999999", "0x10", "010", "1e3", " 1",
		"1 ", "1\n", "\n", "", "+1", "classic", "hybrid", "classic\n", "Hybrid", "on",
		"off", "true", "1\n1",
	};

	switch (below(6)) {
	case 0: /* printable */
		*len = below(64);
		for (size_t i = 0; i < *len; i++)
			s[i] = 32 + below(95);
		break;
	case 1: /* any bytes, up to a page */
		*len = below(3) ? below(64) : below(4097);
		fill_random(s, *len);
		break;
	default:
		strcpy(s, pick(words));
		*len = strlen(s);
	}
}

static int configfs_body(void)
{
	char path[512], s[4200];
	long written = 0, accepted = 0, powered = 0;

	rng_state = seed;
	for (long n = 0; n < iters; n++) {
		const char *name = below(8) ? names[below(3)] : pick(names);
		int r = below(100), fd;
		size_t len;

		if (r < 10) {
			snprintf(path, sizeof(path), "%s/%s", cfs_root, name);
			mkdir(path, 0755);
		} else if (r < 14) {
			snprintf(path, sizeof(path), "%s/%s/power", cfs_root, name);
			fd = open(path, O_WRONLY);
			if (fd >= 0) {
				if (write(fd, "0", 1) < 0)
					errno = 0;
				close(fd);
			}
			snprintf(path, sizeof(path), "%s/%s", cfs_root, name);
			rmdir(path);
		} else if (r < 80) {
			const char *attr = pick(attrs);

			/* Power-on stays rare: each makes a disk. */
			if (!strcmp(attr, "power") && below(3) == 0) {
				strcpy(s, below(2) ? "1" : "0");
				len = 1;
			} else {
				random_string(s, &len);
				if (!strcmp(attr, "size") && below(2))
					len = snprintf(s, sizeof(s), "%llu", (unsigned long long)(1 + below(64)));
			}
			snprintf(path, sizeof(path), "%s/%s/%s", cfs_root, name, attr);
			fd = open(path, O_WRONLY);
			if (fd >= 0) {
				written++;
				if (write(fd, s, len) == (ssize_t)len) {
					accepted++;
					powered += !strcmp(attr, "power") && s[0] == '1';
				}
				close(fd);
			}
		} else {
			const char *attr = pick(attrs);

			snprintf(path, sizeof(path), "%s/%s/%s", cfs_root, name, attr);
			fd = open(path, O_RDONLY);
			if (fd >= 0) {
				if (read(fd, s, sizeof(s)) < 0)
					errno = 0;
				close(fd);
			}
		}
	}
	/* Leave nothing behind. */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/power", cfs_root, names[i]);
		int fd = open(path, O_WRONLY);

		if (fd >= 0) {
			if (write(fd, "0", 1) < 0)
				errno = 0;
			close(fd);
		}
		snprintf(path, sizeof(path), "%s/%s", cfs_root, names[i]);
		if (rmdir(path) && errno != ENOENT) {
			printf("rmdir %s: %s (seed %llu)\n", path, strerror(errno),
			       (unsigned long long)seed);
			return 1;
		}
	}
	printf("writes %ld, accepted %ld, power-ons %ld\n", written, accepted, powered);
	return 0;
}

int main(int argc, char **argv)
{
	double limit = getenv("FUZZ_LIMIT") ? atof(getenv("FUZZ_LIMIT")) : 600;
	int (*body)(void);
	int rc;

	if (argc >= 6 && !strcmp(argv[1], "loop")) {
		body = loop_body;
		dir = argv[4];
		trace_path = argv[5];
		aligned = argc >= 7 && !strcmp(argv[6], "aligned");
	} else if (argc >= 4 && !strcmp(argv[1], "lockedmem")) {
		body = lockedmem_body;
	} else if (argc >= 5 && !strcmp(argv[1], "configfs")) {
		body = configfs_body;
		cfs_root = argv[4];
	} else {
		fprintf(stderr, "usage: fuzz loop SEED ITERS DIR TRACE [aligned] | lockedmem SEED ITERS | configfs SEED ITERS ROOT\n");
		return 2;
	}
	seed = strtoull(argv[2], NULL, 0);
	iters = atol(argv[3]);
	printf("fuzz %s: seed %llu, %ld calls\n", argv[1], (unsigned long long)seed, iters);
	rc = bounded(body, limit, seed);
	if (rc)
		printf("fuzz %s failed: seed %llu (rerun: fuzz %s %llu %ld ...)\n", argv[1],
		       (unsigned long long)seed, argv[1], (unsigned long long)seed, iters);
	return rc;
}
