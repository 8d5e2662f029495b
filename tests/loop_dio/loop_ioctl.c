// SPDX-License-Identifier: GPL-2.0
/*
 * The loop driver's ABI, ioctl by ioctl: /dev/loop-control (LOOP_CTL_*) and /dev/loopN
 * (LOOP_SET_FD, LOOP_CONFIGURE, LOOP_CHANGE_FD, LOOP_CLR_FD, LOOP_SET_STATUS(64),
 * LOOP_GET_STATUS(64), LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE), the sysfs
 * attributes, and what the block layer sees (sizes, block sizes, read-only, discard, zeroout,
 * partitions, data at the right offsets). The errnos are those of the C driver (loop.ko) on
 * Linux 7.3; the program knows nothing of the driver: it tests whichever one is loaded.
 *
 * Backing files are created in $LOOP_TEST_DIR (default /tmp); tests that need a file system with
 * O_DIRECT and hole punching skip when it has neither. Runs as root; a few parts drop to nobody.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/loop.h>

#include "kselftest_harness.h"
#include "rust44_child.h"

#define NOBODY 65534
#define KIB 1024ULL
#define MIB (1024 * KIB)
#define FILE_SIZE MIB
#define MAX_FILES 4
#define MAX_EXTRA 3

/* 0 on success, else the errno: ASSERT_EQ(EBUSY, io(fd, LOOP_SET_FD, bfd)). */
static int io(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg) < 0 ? errno : 0;
}

static int iop(int fd, unsigned long cmd, const void *arg)
{
	return io(fd, cmd, (unsigned long)arg);
}

/* The byte pattern of the test files: a function of the file offset and a seed. */
static uint64_t word_at(uint64_t off, uint64_t seed)
{
	return (off * 0x9E3779B97F4A7C15ULL) ^ seed ^ 0x5555aaaa5555aaaaULL;
}

static void fill(void *buf, size_t len, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = word_at(off + i, seed);

		memcpy((char *)buf + i, &w, 8);
	}
}

/* Offset of the first byte of @buf that is not the pattern, or -1. */
static long long mismatch(const void *buf, size_t len, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = word_at(off + i, seed);

		if (memcmp((const char *)buf + i, &w, 8))
			return off + i;
	}
	return -1;
}

static long long nonzero_at(const void *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (((const char *)buf)[i])
			return off + i;
	return -1;
}

/* Reads @len bytes at @off into a fresh buffer (NULL on a short read). */
static void *read_at(int fd, uint64_t off, size_t len)
{
	char *buf = malloc(len);

	if (buf && pread(fd, buf, len, off) != (ssize_t)len) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int sysfs_read(int num, const char *attr, char *out, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/block/loop%d/%s", num, attr);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	out[n] = 0;
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = 0;
	return 0;
}

/* A sysfs attribute of loop<num> as a number; -1 when it cannot be read. */
static long long sysfs_ll(int num, const char *attr)
{
	char buf[256];

	if (sysfs_read(num, attr, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 0);
}

static int sysfs_exists(int num, const char *attr)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/loop%d/%s", num, attr);
	return access(path, F_OK) == 0;
}

static uint64_t dev_size(int fd)
{
	uint64_t size = (uint64_t)-1;

	if (ioctl(fd, BLKGETSIZE64, &size))
		return (uint64_t)-1;
	return size;
}

static int dev_ssz(int fd)
{
	int ssz = -1;

	if (ioctl(fd, BLKSSZGET, &ssz))
		return -1;
	return ssz;
}

static int dev_ro(int fd)
{
	int ro = -1;

	if (ioctl(fd, BLKROGET, &ro))
		return -1;
	return ro;
}

/* lo_flags of the device, or -errno of LOOP_GET_STATUS64. */
/*
 * rust44's loop_dio never drops direct I/O silently where the C driver does: a change that would
 * make it impossible fails with EINVAL instead (issue 3). run.sh names the driver under test.
 */
static int strict_dio(void)
{
	const char *drv = getenv("LOOP_DRIVER");

	return drv && !strcmp(drv, "loop_dio");
}

static long long lo_flags(int fd)
{
	struct loop_info64 info;

	if (ioctl(fd, LOOP_GET_STATUS64, &info))
		return -errno;
	return info.lo_flags;
}

static char *dev_path(int num, char *buf, size_t len)
{
	snprintf(buf, len, "/dev/loop%d", num);
	return buf;
}

/*
 * devtmpfs creates nodes asynchronously after the disk is added: wait (bounded) for one to
 * appear or go. Returns whether it ended in the wanted state.
 */
static int wait_path(const char *path, int want)
{
	for (int i = 0; i < 500; i++) {
		if ((access(path, F_OK) == 0) == want)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

/* An MBR with primary Linux partitions at (start, sectors) pairs. */
static int write_mbr(int fd, const uint32_t parts[][2], int n)
{
	unsigned char mbr[512] = { 0 };

	for (int i = 0; i < n; i++) {
		unsigned char *e = mbr + 446 + 16 * i;

		e[0] = 0;		/* not bootable */
		e[1] = 0xfe;		/* CHS: unused, LBA only */
		e[2] = 0xff;
		e[3] = 0xff;
		e[4] = 0x83;		/* Linux */
		e[5] = 0xfe;
		e[6] = 0xff;
		e[7] = 0xff;
		put_le32(e + 8, parts[i][0]);
		put_le32(e + 12, parts[i][1]);
	}
	put_le32(mbr + 440, 0x52343434);	/* disk signature */
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	return pwrite(fd, mbr, sizeof(mbr), 0) == sizeof(mbr) ? 0 : -1;
}

FIXTURE(loop) {
	int ctl;			/* /dev/loop-control */
	int num;			/* the device under test, from LOOP_CTL_GET_FREE */
	int fd;				/* /dev/loop<num>, O_RDWR */
	char dev[64];
	int bfd;			/* the backing file, O_RDWR */
	char files[MAX_FILES][PATH_MAX];
	int nfiles;
	int extra_num[MAX_EXTRA];	/* devices added with LOOP_CTL_ADD, removed at the end */
	int extra_fd[MAX_EXTRA];
	int nextra;
	uint64_t seed;
};

/* A new test file of @size bytes filled with the pattern for @seed; returns its path. */
static const char *new_file(FIXTURE_DATA(loop) *self, uint64_t size, uint64_t seed)
{
	const char *dir = getenv("LOOP_TEST_DIR") ?: "/tmp";
	char *path = self->files[self->nfiles];
	size_t chunk = 256 * KIB;
	char *buf;
	int fd;

	if (self->nfiles >= MAX_FILES)
		return NULL;
	snprintf(path, PATH_MAX, "%s/loop-ioctl-%d-%d.img", dir, getpid(), self->nfiles);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return NULL;
	self->nfiles++;
	buf = malloc(chunk);
	for (uint64_t off = 0; buf && off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		fill(buf, n, off, seed);
		if (pwrite(fd, buf, n, off) != (ssize_t)n) {
			free(buf);
			close(fd);
			return NULL;
		}
	}
	free(buf);
	close(fd);
	return path;
}

/* A further loop device (LOOP_CTL_ADD), opened O_RDWR; its index in *num. */
static int extra_dev(FIXTURE_DATA(loop) *self, int *num)
{
	char path[64];
	int n, fd;

	if (self->nextra >= MAX_EXTRA)
		return -1;
	n = ioctl(self->ctl, LOOP_CTL_ADD, -1);
	if (n < 0)
		return -1;
	self->extra_num[self->nextra] = n;
	self->extra_fd[self->nextra] = -1;
	self->nextra++;
	dev_path(n, path, sizeof(path));
	if (!wait_path(path, 1))
		return -1;
	fd = open(path, O_RDWR);
	self->extra_fd[self->nextra - 1] = fd;
	*num = n;
	return fd;
}

FIXTURE_SETUP(loop)
{
	const char *file;

	self->fd = -1;
	self->bfd = -1;
	self->seed = 0x1000 + getpid();
	self->ctl = open("/dev/loop-control", O_RDWR);
	ASSERT_LE(0, self->ctl) TH_LOG("open /dev/loop-control: %s", strerror(errno));
	self->num = ioctl(self->ctl, LOOP_CTL_GET_FREE);
	ASSERT_LE(0, self->num) TH_LOG("LOOP_CTL_GET_FREE: %s", strerror(errno));
	dev_path(self->num, self->dev, sizeof(self->dev));
	ASSERT_TRUE(wait_path(self->dev, 1)) TH_LOG("%s did not appear", self->dev);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->dev, strerror(errno));
	file = new_file(self, FILE_SIZE, self->seed);
	ASSERT_NE(NULL, file) TH_LOG("cannot create a backing file: %s", strerror(errno));
	self->bfd = open(file, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(loop)
{
	/* Detach first (deferred where another device still holds one open), then close all. */
	for (int i = 0; i < self->nextra; i++)
		if (self->extra_fd[i] >= 0)
			ioctl(self->extra_fd[i], LOOP_CLR_FD, 0);
	if (self->fd >= 0)
		ioctl(self->fd, LOOP_CLR_FD, 0);
	for (int i = 0; i < self->nextra; i++)
		if (self->extra_fd[i] >= 0)
			close(self->extra_fd[i]);
	if (self->fd >= 0)
		close(self->fd);
	if (self->bfd >= 0)
		close(self->bfd);
	for (int i = self->nextra - 1; i >= 0; i--)
		ioctl(self->ctl, LOOP_CTL_REMOVE, self->extra_num[i]);
	for (int i = 0; i < self->nfiles; i++)
		unlink(self->files[i]);
	if (self->ctl >= 0)
		close(self->ctl);
}

/* Binds the device to the fixture's file with LOOP_CONFIGURE. */
static int configure(FIXTURE_DATA(loop) *self, uint64_t offset, uint64_t sizelimit,
		     uint32_t flags, uint32_t block_size)
{
	struct loop_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = self->bfd;
	cfg.block_size = block_size;
	cfg.info.lo_offset = offset;
	cfg.info.lo_sizelimit = sizelimit;
	cfg.info.lo_flags = flags;
	return iop(self->fd, LOOP_CONFIGURE, &cfg);
}

/* Whether the backing directory's file system does O_DIRECT on our file. */
static int fs_does_odirect(FIXTURE_DATA(loop) *self)
{
	int fd = open(self->files[0], O_RDONLY | O_DIRECT);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* --- /dev/loop-control --- */

TEST_F(loop, ctl_get_free_returns_an_unbound_device)
{
	struct loop_info64 info;
	struct stat st;

	ASSERT_EQ(0, stat(self->dev, &st));
	EXPECT_TRUE(S_ISBLK(st.st_mode));
	EXPECT_EQ(7, major(st.st_rdev));
	EXPECT_EQ(self->num, minor(st.st_rdev));
	EXPECT_EQ(ENXIO, iop(self->fd, LOOP_GET_STATUS64, &info));
	EXPECT_EQ(0, sysfs_ll(self->num, "size"));
	EXPECT_FALSE(sysfs_exists(self->num, "loop")) TH_LOG("loop/ exists while unbound");
	/* Asked again while still unbound: the same one. */
	EXPECT_EQ(self->num, ioctl(self->ctl, LOOP_CTL_GET_FREE));
}

TEST_F(loop, ctl_get_free_skips_bound_devices)
{
	int other;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	other = ioctl(self->ctl, LOOP_CTL_GET_FREE);
	ASSERT_LE(0, other) TH_LOG("LOOP_CTL_GET_FREE: %s", strerror(errno));
	EXPECT_NE(self->num, other);
}

TEST_F(loop, ctl_add_existing_is_eexist)
{
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_ADD, self->num));
	EXPECT_EQ(EEXIST, errno);
}

TEST_F(loop, ctl_add_and_remove)
{
	char path[64];
	int n, again;

	n = ioctl(self->ctl, LOOP_CTL_ADD, -1);
	ASSERT_LE(0, n) TH_LOG("LOOP_CTL_ADD(-1): %s", strerror(errno));
	EXPECT_TRUE(sysfs_exists(n, "size"));
	dev_path(n, path, sizeof(path));
	EXPECT_TRUE(wait_path(path, 1)) TH_LOG("%s did not appear", path);
	EXPECT_EQ(0, sysfs_ll(n, "size"));
	ASSERT_EQ(0, ioctl(self->ctl, LOOP_CTL_REMOVE, n)) TH_LOG("remove: %s", strerror(errno));
	EXPECT_FALSE(sysfs_exists(n, "size"));
	EXPECT_TRUE(wait_path(path, 0)) TH_LOG("%s did not go", path);
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_REMOVE, n));
	EXPECT_EQ(ENODEV, errno);
	/* A chosen index: returned as is. */
	again = ioctl(self->ctl, LOOP_CTL_ADD, n);
	EXPECT_EQ(n, again) TH_LOG("LOOP_CTL_ADD(%d): %s", n, strerror(errno));
	EXPECT_EQ(0, ioctl(self->ctl, LOOP_CTL_REMOVE, n));
}

TEST_F(loop, ctl_remove_errors)
{
	/* Bound: EBUSY, and the device keeps working. */
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_REMOVE, self->num));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_LE(0, lo_flags(self->fd));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
	/* Never existed. */
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_REMOVE, 999999));
	EXPECT_EQ(ENODEV, errno);
	/* A negative index. */
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_REMOVE, -1));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(loop, ctl_remove_open_unbound_is_ebusy)
{
	/* Our fd keeps it open, though nothing is bound. */
	EXPECT_EQ(-1, ioctl(self->ctl, LOOP_CTL_REMOVE, self->num));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_TRUE(sysfs_exists(self->num, "size"));
}

TEST_F(loop, ctl_unknown_ioctl_is_enosys)
{
	EXPECT_EQ(-1, ioctl(self->ctl, 0x4C8F, 0));
	EXPECT_EQ(ENOSYS, errno);
}

/* Opening a node of major 7 whose device does not exist creates it (legacy autoload). */
TEST_F(loop, open_missing_minor_creates_the_device)
{
	char node[64], path[64];
	int n = 2000 + getpid() % 1000, fd;

	if (sysfs_exists(n, "size"))
		SKIP(return, "loop%d exists already", n);
	snprintf(node, sizeof(node), "/tmp/loop-ioctl-node-%d", n);
	unlink(node);
	ASSERT_EQ(0, mknod(node, S_IFBLK | 0600, makedev(7, n))) TH_LOG("mknod: %s", strerror(errno));
	fd = open(node, O_RDONLY);
	EXPECT_LE(0, fd) TH_LOG("open of 7:%d: %s", n, strerror(errno));
	unlink(node);
	EXPECT_TRUE(sysfs_exists(n, "size"));
	if (fd >= 0) {
		EXPECT_EQ(0, dev_size(fd));
		close(fd);
	}
	dev_path(n, path, sizeof(path));
	EXPECT_EQ(0, ioctl(self->ctl, LOOP_CTL_REMOVE, n)) TH_LOG("remove: %s", strerror(errno));
}

/* --- binding: LOOP_SET_FD / LOOP_CONFIGURE --- */

TEST_F(loop, set_fd_binds_the_file)
{
	struct loop_info64 info;
	struct stat st;
	char buf[PATH_MAX];
	void *data;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, fstat(self->bfd, &st));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	EXPECT_EQ(self->num, info.lo_number);
	EXPECT_EQ(st.st_dev, info.lo_device);
	EXPECT_EQ(st.st_ino, info.lo_inode);
	EXPECT_EQ(0, info.lo_rdevice);
	EXPECT_EQ(0, info.lo_offset);
	EXPECT_EQ(0, info.lo_sizelimit);
	EXPECT_EQ(0, info.lo_flags);
	EXPECT_EQ(0, info.lo_encrypt_type);
	EXPECT_STREQ("", (char *)info.lo_file_name);
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
	EXPECT_EQ(512, dev_ssz(self->fd));
	EXPECT_EQ(0, dev_ro(self->fd));
	EXPECT_EQ(FILE_SIZE / 512, sysfs_ll(self->num, "size"));
	EXPECT_EQ(0, sysfs_ll(self->num, "ro"));
	EXPECT_EQ(512, sysfs_ll(self->num, "queue/logical_block_size"));
	ASSERT_EQ(0, sysfs_read(self->num, "loop/backing_file", buf, sizeof(buf)));
	EXPECT_STREQ(self->files[0], buf);
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/offset"));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/sizelimit"));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/autoclear"));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/partscan"));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/dio"));
	ASSERT_EQ(0, sysfs_read(self->num, "queue/write_cache", buf, sizeof(buf)));
	EXPECT_STREQ("write back", buf);
	/* The file's bytes, through the device. */
	data = read_at(self->fd, 0, FILE_SIZE);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, FILE_SIZE, 0, self->seed));
	free(data);
}

TEST_F(loop, set_fd_bad_fd_is_ebadf)
{
	struct loop_config cfg = { .fd = 9999 };

	EXPECT_EQ(EBADF, io(self->fd, LOOP_SET_FD, 9999));
	EXPECT_EQ(EBADF, io(self->fd, LOOP_SET_FD, -1));
	EXPECT_EQ(EBADF, iop(self->fd, LOOP_CONFIGURE, &cfg));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

TEST_F(loop, set_fd_needs_a_regular_file_or_block_device)
{
	const char *dir = getenv("LOOP_TEST_DIR") ?: "/tmp";
	int pipefd[2], sv[2], fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, fd)) TH_LOG("a directory");
	close(fd);
	fd = open("/dev/null", O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, fd)) TH_LOG("a character device");
	close(fd);
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, pipefd[0])) TH_LOG("a pipe (read end)");
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, pipefd[1])) TH_LOG("a pipe (write end)");
	close(pipefd[0]);
	close(pipefd[1]);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, sv[0])) TH_LOG("a socket");
	close(sv[0]);
	close(sv[1]);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

TEST_F(loop, set_fd_on_itself_is_ebadf)
{
	EXPECT_EQ(EBADF, io(self->fd, LOOP_SET_FD, self->fd));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

TEST_F(loop, set_fd_on_an_unbound_loop_device_is_einval)
{
	int n, fd = extra_dev(self, &n);

	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_FD, fd));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

TEST_F(loop, set_fd_twice_is_ebusy)
{
	struct loop_config cfg = { .fd = self->bfd };

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(EBUSY, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(EBUSY, iop(self->fd, LOOP_CONFIGURE, &cfg));
	EXPECT_EQ(0, lo_flags(self->fd));
}

/* Another opener holds the device exclusively (O_EXCL): binding through another fd is EBUSY. */
TEST_F(loop, set_fd_while_claimed_exclusively_is_ebusy)
{
	int excl = open(self->dev, O_RDWR | O_EXCL);

	ASSERT_LE(0, excl) TH_LOG("O_EXCL open: %s", strerror(errno));
	EXPECT_EQ(EBUSY, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(EBUSY, io(self->fd, LOOP_SET_BLOCK_SIZE, 4096)) TH_LOG("unbound, claimed");
	/* The exclusive holder itself may. */
	EXPECT_EQ(0, io(excl, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(0, lo_flags(self->fd));
	close(excl);
}

/* A bound loop device can back another; the data comes through both. */
TEST_F(loop, set_fd_stacks_on_a_bound_loop_device)
{
	int n, top = extra_dev(self, &n), lower;
	void *data;

	ASSERT_LE(0, top);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	/* The upper device holds its own open file of the lower one. */
	lower = open(self->dev, O_RDWR);
	ASSERT_LE(0, lower);
	ASSERT_EQ(0, io(top, LOOP_SET_FD, lower));
	close(lower);
	EXPECT_EQ(FILE_SIZE, dev_size(top));
	data = read_at(top, 0, FILE_SIZE);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, FILE_SIZE, 0, self->seed));
	free(data);
	/* The lower device is held open by the upper: LOOP_CLR_FD is deferred. */
	EXPECT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(self->fd));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, lo_flags(top));
	/* Unbinding the upper one closes the lower's last opener: that one goes too. */
	EXPECT_EQ(0, io(top, LOOP_CLR_FD, 0));
	close(top);
	self->extra_fd[0] = -1;
	EXPECT_FALSE(sysfs_exists(n, "loop"));
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_FALSE(sysfs_exists(self->num, "loop"));
}

/*
 * Stacked on the very fd we opened (the same open file): there is one opener, so LOOP_CLR_FD
 * on the lower device starts its rundown at once, though the upper still reads through it.
 */
TEST_F(loop, set_fd_stacks_on_the_same_open_file)
{
	int n, top = extra_dev(self, &n);

	ASSERT_LE(0, top);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(top, LOOP_SET_FD, self->fd));
	EXPECT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_EQ(0, lo_flags(top));
	EXPECT_EQ(FILE_SIZE, dev_size(top));
}

TEST_F(loop, set_fd_read_only_device_or_file)
{
	int robfd;

	/* The device opened read-only (the only opener). */
	close(self->fd);
	self->fd = open(self->dev, O_RDONLY);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(LO_FLAGS_READ_ONLY, lo_flags(self->fd));
	EXPECT_EQ(1, dev_ro(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "ro"));
	EXPECT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	/* (The C driver leaves the disk's read-only flag set until the next binding.) */
	/* The file opened read-only. */
	robfd = open(self->files[0], O_RDONLY);
	ASSERT_LE(0, robfd);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, robfd));
	close(robfd);
	EXPECT_EQ(LO_FLAGS_READ_ONLY, lo_flags(self->fd));
	EXPECT_EQ(1, dev_ro(self->fd));
}

/* A backing fd opened O_DIRECT turns direct I/O on. */
TEST_F(loop, set_fd_o_direct_file_enables_dio)
{
	int dfd;

	if (!fs_does_odirect(self))
		SKIP(return, "no O_DIRECT on the backing file system");
	dfd = open(self->files[0], O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, dfd));
	close(dfd);
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/dio"));
}

TEST_F(loop, configure_sets_everything)
{
	struct loop_config cfg;
	struct loop_info64 info;
	const uint32_t flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
	void *data;

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = self->bfd;
	cfg.block_size = 4096;
	cfg.info.lo_offset = 4096;
	cfg.info.lo_sizelimit = 512 * KIB;
	cfg.info.lo_flags = flags;
	strcpy((char *)cfg.info.lo_file_name, "rust44-configure");
	ASSERT_EQ(0, iop(self->fd, LOOP_CONFIGURE, &cfg));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	EXPECT_EQ(flags, info.lo_flags);
	EXPECT_EQ(4096, info.lo_offset);
	EXPECT_EQ(512 * KIB, info.lo_sizelimit);
	EXPECT_STREQ("rust44-configure", (char *)info.lo_file_name);
	EXPECT_EQ(512 * KIB, dev_size(self->fd));
	EXPECT_EQ(4096, dev_ssz(self->fd));
	EXPECT_EQ(1, dev_ro(self->fd));
	EXPECT_EQ(4096, sysfs_ll(self->num, "queue/logical_block_size"));
	EXPECT_EQ(4096, sysfs_ll(self->num, "queue/physical_block_size"));
	EXPECT_EQ(4096, sysfs_ll(self->num, "loop/offset"));
	EXPECT_EQ(512 * KIB, sysfs_ll(self->num, "loop/sizelimit"));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/autoclear"));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/partscan"));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/dio"));
	EXPECT_EQ(1, sysfs_ll(self->num, "ro"));
	data = read_at(self->fd, 0, 512 * KIB);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 512 * KIB, 4096, self->seed));
	free(data);
}

TEST_F(loop, configure_rejects_unknown_flags)
{
	/* 2 was LO_FLAGS_USE_AOPS; 32 and up were never defined. */
	EXPECT_EQ(EINVAL, configure(self, 0, 0, 2, 0));
	EXPECT_EQ(EINVAL, configure(self, 0, 0, 32, 0));
	EXPECT_EQ(EINVAL, configure(self, 0, 0, 0x80000000u, 0));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_EQ(0, configure(self, 0, 0, 0, 0));
}

TEST_F(loop, configure_rejects_bad_block_sizes)
{
	const uint32_t bad[] = { 1, 256, 511, 513, 1000, 3000, 2 * 4096, 65536 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(EINVAL, configure(self, 0, 0, 0, bad[i])) TH_LOG("block size %u", bad[i]);
		EXPECT_EQ(-ENXIO, lo_flags(self->fd)) TH_LOG("bound after block size %u", bad[i]);
	}
	EXPECT_EQ(0, configure(self, 0, 0, 0, 2048));
	EXPECT_EQ(2048, dev_ssz(self->fd));
}

/*
 * C sets the disk's read-only state before the block layer refuses the block size, so a refused
 * LOOP_CONFIGURE leaves the unbound disk read-only or writable as it asked: writes then fail
 * with EPERM or ENOSPC (past the end of an empty disk). loop_dio did not (tests/hardening).
 */
TEST_F(loop, configure_refused_block_size_leaves_read_only_as_asked)
{
	char buf[512] = { 1 };

	EXPECT_EQ(EINVAL, configure(self, 0, 0, LO_FLAGS_READ_ONLY, 513));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "ro"));
	EXPECT_EQ(1, dev_ro(self->fd));
	EXPECT_EQ(-1, pwrite(self->fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(EINVAL, configure(self, 0, 0, 0, 3000));
	EXPECT_EQ(0, sysfs_ll(self->num, "ro"));
	EXPECT_EQ(0, dev_ro(self->fd));
	EXPECT_EQ(-1, pwrite(self->fd, buf, sizeof(buf), 0));
	EXPECT_EQ(ENOSPC, errno);
	ASSERT_EQ(0, configure(self, 0, 0, 0, 0));
	EXPECT_EQ(0, dev_ro(self->fd));
	EXPECT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 0));
}

TEST_F(loop, configure_rejects_encryption_and_overflow)
{
	struct loop_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = self->bfd;
	cfg.info.lo_encrypt_type = LO_CRYPT_XOR;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("LO_CRYPT_XOR");
	cfg.info.lo_encrypt_type = LO_CRYPT_CRYPTOAPI;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("LO_CRYPT_CRYPTOAPI");
	cfg.info.lo_encrypt_type = 7;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("encrypt type 7");
	cfg.info.lo_encrypt_type = 0;
	cfg.info.lo_encrypt_key_size = LO_KEY_SIZE + 1;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("key size 33");
	cfg.info.lo_encrypt_key_size = 0;
	cfg.info.lo_offset = 1ULL << 63;
	EXPECT_EQ(EOVERFLOW, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("offset 2^63");
	cfg.info.lo_offset = 0;
	cfg.info.lo_sizelimit = ~0ULL;
	EXPECT_EQ(EOVERFLOW, iop(self->fd, LOOP_CONFIGURE, &cfg)) TH_LOG("sizelimit 2^64-1");
	EXPECT_EQ(EFAULT, iop(self->fd, LOOP_CONFIGURE, NULL));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

/* An offset past the end of the file is accepted: the device is empty. */
TEST_F(loop, configure_offset_beyond_the_file_gives_size_zero)
{
	char c;

	ASSERT_EQ(0, configure(self, 2 * FILE_SIZE, 0, 0, 0));
	EXPECT_EQ(0, dev_size(self->fd));
	EXPECT_EQ(0, sysfs_ll(self->num, "size"));
	EXPECT_EQ(2 * FILE_SIZE, sysfs_ll(self->num, "loop/offset"));
	EXPECT_EQ(0, pread(self->fd, &c, 1, 0));
}

/* --- unbinding: LOOP_CLR_FD, autoclear --- */

TEST_F(loop, unbound_device_ioctls_are_enxio)
{
	struct loop_info64 info64;
	struct loop_info info;

	memset(&info64, 0, sizeof(info64));
	memset(&info, 0, sizeof(info));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(ENXIO, iop(self->fd, LOOP_GET_STATUS64, &info64));
	EXPECT_EQ(ENXIO, iop(self->fd, LOOP_GET_STATUS, &info));
	EXPECT_EQ(ENXIO, iop(self->fd, LOOP_SET_STATUS64, &info64));
	EXPECT_EQ(ENXIO, iop(self->fd, LOOP_SET_STATUS, &info));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_SET_DIRECT_IO, 0));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_SET_BLOCK_SIZE, 4096));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_SET_BLOCK_SIZE, 512));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_CHANGE_FD, self->bfd));
	/* A NULL buffer is checked first. */
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_GET_STATUS64, NULL));
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_GET_STATUS, NULL));
}

/* Commands the driver does not know, on the block device: EINVAL (not ENOTTY). */
TEST_F(loop, unknown_ioctl_on_the_device_is_einval)
{
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CTL_ADD, 0));
	EXPECT_EQ(EINVAL, io(self->fd, 0x4C7F, 0));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CTL_ADD, 0));
	EXPECT_EQ(EINVAL, io(self->fd, 0x4C7F, 0));
}

/* The only opener: unbound at close; meanwhile the device is going (ENXIO). */
TEST_F(loop, clr_fd_detaches_at_last_close)
{
	int again;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_EQ(ENXIO, io(self->fd, LOOP_CLR_FD, 0));
	again = open(self->dev, O_RDONLY);
	EXPECT_EQ(-1, again) TH_LOG("opened while being cleared");
	EXPECT_EQ(ENXIO, errno);
	if (again >= 0)
		close(again);
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_EQ(0, dev_size(self->fd));
	EXPECT_EQ(0, sysfs_ll(self->num, "size"));
	EXPECT_FALSE(sysfs_exists(self->num, "loop"));
	EXPECT_EQ(512, dev_ssz(self->fd));
	/* Reusable at once. */
	EXPECT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
}

/* Another opener: LOOP_CLR_FD only marks it autoclear; the last close unbinds. */
TEST_F(loop, clr_fd_with_other_openers_is_deferred)
{
	int other = open(self->dev, O_RDONLY);
	void *data;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(other));
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/autoclear"));
	data = read_at(other, 0, 64 * KIB);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 64 * KIB, 0, self->seed));
	free(data);
	close(other);
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(self->fd)) TH_LOG("still open here: still bound");
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

/*
 * The only opener's LOOP_CLR_FD runs the device down: the file stays until the last close, but
 * I/O the opener still sends through its descriptor fails (C's loop_queue_rq(): EIO), and
 * nothing reaches the file. loop_dio discarded (tests/hardening).
 */
TEST_F(loop, clr_fd_run_down_fails_the_openers_io)
{
	uint64_t range[2] = { 256 * KIB, 256 * KIB };
	char *data;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	if (sysfs_ll(self->num, "queue/discard_max_bytes") <= 0)
		SKIP(return, "no discard on this backing file system");
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd)) TH_LOG("the file stays until the last close");
	EXPECT_EQ(EIO, iop(self->fd, BLKDISCARD, range));
	EXPECT_EQ(EIO, iop(self->fd, BLKZEROOUT, range));
	data = read_at(self->bfd, 0, FILE_SIZE);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, FILE_SIZE, 0, self->seed)) TH_LOG("the file changed");
	free(data);
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
}

TEST_F(loop, autoclear_unbinds_at_last_close)
{
	int other;

	ASSERT_EQ(0, configure(self, 0, 0, LO_FLAGS_AUTOCLEAR, 0));
	other = open(self->dev, O_RDONLY);
	ASSERT_LE(0, other);
	close(self->fd);
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(other)) TH_LOG("one opener left");
	close(other);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	EXPECT_EQ(-ENXIO, lo_flags(self->fd));
	EXPECT_FALSE(sysfs_exists(self->num, "loop"));
}

/* --- LOOP_SET_STATUS(64) / LOOP_GET_STATUS(64) --- */

TEST_F(loop, set_status64_round_trip)
{
	struct loop_info64 in, out;
	void *data;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &in));
	in.lo_offset = 8192;
	in.lo_sizelimit = 64 * KIB;
	in.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
	strcpy((char *)in.lo_file_name, "status64-name");
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &in));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &out));
	EXPECT_EQ(8192, out.lo_offset);
	EXPECT_EQ(64 * KIB, out.lo_sizelimit);
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN, out.lo_flags);
	EXPECT_STREQ("status64-name", (char *)out.lo_file_name);
	EXPECT_EQ(self->num, out.lo_number);
	EXPECT_EQ(64 * KIB, dev_size(self->fd));
	EXPECT_EQ(64 * KIB / 512, sysfs_ll(self->num, "size"));
	EXPECT_EQ(8192, sysfs_ll(self->num, "loop/offset"));
	EXPECT_EQ(64 * KIB, sysfs_ll(self->num, "loop/sizelimit"));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/autoclear"));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/partscan"));
	data = read_at(self->fd, 0, 64 * KIB);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 64 * KIB, 8192, self->seed));
	free(data);
	/* Back to the whole file. */
	out.lo_offset = 0;
	out.lo_sizelimit = 0;
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &out));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
}

/*
 * Only AUTOCLEAR and PARTSCAN can be set, only AUTOCLEAR cleared; READ_ONLY and DIRECT_IO are
 * ignored without an error.
 */
TEST_F(loop, set_status64_flag_rules)
{
	struct loop_info64 info;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO | 0x100;
	EXPECT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	EXPECT_EQ(0, lo_flags(self->fd));
	EXPECT_EQ(0, dev_ro(self->fd));
	info.lo_flags = LO_FLAGS_PARTSCAN | LO_FLAGS_AUTOCLEAR;
	EXPECT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	EXPECT_EQ(LO_FLAGS_PARTSCAN | LO_FLAGS_AUTOCLEAR, lo_flags(self->fd));
	info.lo_flags = 0;
	EXPECT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	EXPECT_EQ(LO_FLAGS_PARTSCAN, lo_flags(self->fd));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/autoclear"));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/partscan"));
}

TEST_F(loop, set_status64_file_name_is_truncated)
{
	struct loop_info64 info;
	char want[LO_NAME_SIZE];

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	memset(info.lo_file_name, 'n', LO_NAME_SIZE);
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	memset(want, 'n', LO_NAME_SIZE - 1);
	want[LO_NAME_SIZE - 1] = 0;
	EXPECT_EQ(0, memcmp(want, info.lo_file_name, LO_NAME_SIZE));
	EXPECT_EQ(0, info.lo_crypt_name[0]);
	EXPECT_EQ(0, info.lo_encrypt_key[0]);
}

TEST_F(loop, set_status64_errors)
{
	struct loop_info64 info;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	info.lo_offset = 4096;
	info.lo_encrypt_type = LO_CRYPT_XOR;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_SET_STATUS64, &info));
	info.lo_encrypt_type = 0;
	info.lo_encrypt_key_size = LO_KEY_SIZE + 1;
	EXPECT_EQ(EINVAL, iop(self->fd, LOOP_SET_STATUS64, &info));
	info.lo_encrypt_key_size = 0;
	info.lo_offset = 1ULL << 63;
	EXPECT_EQ(EOVERFLOW, iop(self->fd, LOOP_SET_STATUS64, &info));
	info.lo_offset = 0;
	info.lo_sizelimit = 1ULL << 63;
	EXPECT_EQ(EOVERFLOW, iop(self->fd, LOOP_SET_STATUS64, &info));
	EXPECT_EQ(EFAULT, iop(self->fd, LOOP_SET_STATUS64, NULL));
	/* Nothing changed. */
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	EXPECT_EQ(0, info.lo_offset);
	EXPECT_EQ(0, info.lo_sizelimit);
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
}

/* The old struct loop_info: an int offset, no sizelimit (setting it resets the sizelimit). */
TEST_F(loop, set_status_old_round_trip)
{
	struct loop_info64 info64;
	struct loop_info info;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info64));
	info64.lo_sizelimit = 128 * KIB;
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info64));
	EXPECT_EQ(128 * KIB, dev_size(self->fd));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS, &info));
	EXPECT_EQ(self->num, info.lo_number);
	EXPECT_EQ(0, info.lo_offset);
	info.lo_offset = 4096;
	info.lo_flags = LO_FLAGS_AUTOCLEAR;
	strcpy(info.lo_name, "old-status");
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS, &info));
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS, &info));
	EXPECT_EQ(4096, info.lo_offset);
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, info.lo_flags);
	EXPECT_STREQ("old-status", info.lo_name);
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info64));
	EXPECT_EQ(0, info64.lo_sizelimit);
	EXPECT_STREQ("old-status", (char *)info64.lo_file_name);
	EXPECT_EQ(FILE_SIZE - 4096, dev_size(self->fd));
}

/* LOOP_GET_STATUS cannot report an offset beyond INT_MAX. */
TEST_F(loop, get_status_old_offset_overflow)
{
	struct loop_info64 info64;
	struct loop_info info;

	ASSERT_EQ(0, configure(self, 1ULL << 32, 0, 0, 0));
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info64));
	EXPECT_EQ(1ULL << 32, info64.lo_offset);
	EXPECT_EQ(EOVERFLOW, iop(self->fd, LOOP_GET_STATUS, &info));
}

/* --- LOOP_SET_CAPACITY --- */

TEST_F(loop, set_capacity_follows_the_file)
{
	struct loop_info64 info;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, ftruncate(self->bfd, 3 * FILE_SIZE));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd)) TH_LOG("grew before LOOP_SET_CAPACITY");
	ASSERT_EQ(0, io(self->fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(3 * FILE_SIZE, dev_size(self->fd));
	EXPECT_EQ(3 * FILE_SIZE / 512, sysfs_ll(self->num, "size"));
	ASSERT_EQ(0, ftruncate(self->bfd, FILE_SIZE / 2));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(FILE_SIZE / 2, dev_size(self->fd));
	/* With a sizelimit the size stops there. */
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	info.lo_sizelimit = FILE_SIZE;
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	EXPECT_EQ(FILE_SIZE / 2, dev_size(self->fd));
	ASSERT_EQ(0, ftruncate(self->bfd, 4 * FILE_SIZE));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
	/* A size that is not a whole sector is rounded down. */
	ASSERT_EQ(0, ftruncate(self->bfd, 1000));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_CAPACITY, 0));
	EXPECT_EQ(512, dev_size(self->fd));
}

/* --- LOOP_SET_BLOCK_SIZE --- */

TEST_F(loop, set_block_size_valid_sizes)
{
	const int sizes[] = { 512, 1024, 2048, 4096 };
	char *buf = NULL, *back;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int bs = sizes[i], pbs = 0;

		ASSERT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, bs)) TH_LOG("block size %d", bs);
		EXPECT_EQ(bs, dev_ssz(self->fd));
		EXPECT_EQ(0, ioctl(self->fd, BLKPBSZGET, &pbs));
		EXPECT_EQ(bs, pbs);
		EXPECT_EQ(bs, sysfs_ll(self->num, "queue/logical_block_size"));
		EXPECT_EQ(bs, sysfs_ll(self->num, "queue/minimum_io_size"));
		EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
		/* A block written at block 3 lands at 3 * bs in the file. */
		free(buf);
		buf = malloc(bs);
		ASSERT_NE(NULL, buf);
		fill(buf, bs, 3 * bs, ~self->seed);
		ASSERT_EQ(bs, pwrite(self->fd, buf, bs, 3 * bs));
		ASSERT_EQ(0, fsync(self->fd));
		back = read_at(self->bfd, 3 * bs, bs);
		ASSERT_NE(NULL, back);
		EXPECT_EQ(-1, mismatch(back, bs, 3 * bs, ~self->seed)) TH_LOG("block size %d", bs);
		free(back);
	}
	free(buf);
}

TEST_F(loop, set_block_size_rejects_bad_sizes)
{
	const unsigned long bad[] = { 1, 256, 511, 1000, 1536, 3000, 2 * 4096, 65536 };

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 1024));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_BLOCK_SIZE, bad[i])) TH_LOG("%lu", bad[i]);
		EXPECT_EQ(1024, dev_ssz(self->fd));
	}
	/* The current size again: nothing to do. */
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 1024));
}

/* Block size 0 means the default: 512 without direct I/O. */
/*
 * C stores LOOP_SET_BLOCK_SIZE's unsigned long in the queue's unsigned int limit: only the low
 * 32 bits count (2^32 + 2048 sets 2048, 2^32 the default). loop_dio refused these
 * (tests/hardening, seeds 362033076 and 1491717590).
 */
TEST_F(loop, set_block_size_takes_the_low_32_bits)
{
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, (1UL << 32) | 2048));
	EXPECT_EQ(2048, dev_ssz(self->fd));
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 1UL << 32));
	EXPECT_EQ(512, dev_ssz(self->fd));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_BLOCK_SIZE, (1UL << 32) | 513));
	EXPECT_EQ(512, dev_ssz(self->fd));
}

TEST_F(loop, set_block_size_zero_is_the_default)
{
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 4096));
	EXPECT_EQ(4096, dev_ssz(self->fd));
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 0));
	EXPECT_EQ(512, dev_ssz(self->fd));
}

/* --- LOOP_SET_DIRECT_IO --- */

TEST_F(loop, set_direct_io_toggles)
{
	char *buf, *back;

	if (!fs_does_odirect(self))
		SKIP(return, "no O_DIRECT on the backing file system");
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/dio"));
	/* Again: no change, no error. Any non-zero argument means on. */
	EXPECT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 7));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	buf = malloc(64 * KIB);
	ASSERT_NE(NULL, buf);
	fill(buf, 64 * KIB, 128 * KIB, ~self->seed);
	ASSERT_EQ(64 * KIB, pwrite(self->fd, buf, 64 * KIB, 128 * KIB));
	ASSERT_EQ(0, fsync(self->fd));
	back = read_at(self->bfd, 128 * KIB, 64 * KIB);
	ASSERT_NE(NULL, back);
	EXPECT_EQ(-1, mismatch(back, 64 * KIB, 128 * KIB, ~self->seed));
	free(back);
	free(buf);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 0));
	EXPECT_EQ(0, lo_flags(self->fd));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/dio"));
}

/* An offset that is not a multiple of the backing's direct I/O alignment rules it out. */
TEST_F(loop, set_direct_io_misaligned_offset_is_einval)
{
	struct loop_info64 info;

	if (!fs_does_odirect(self))
		SKIP(return, "no O_DIRECT on the backing file system");
	ASSERT_EQ(0, configure(self, 256, 0, 0, 0));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(0, lo_flags(self->fd));
	/* Aligned: fine; moving the offset off alignment again turns it off silently. */
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	info.lo_offset = 4096;
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	info.lo_offset = 256;
	if (strict_dio()) {
		/* Refused, nothing changed; allowed once direct I/O is off. */
		EXPECT_EQ(EINVAL, iop(self->fd, LOOP_SET_STATUS64, &info));
		EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
		EXPECT_EQ(4096, sysfs_ll(self->num, "loop/offset"));
		EXPECT_EQ(1, sysfs_ll(self->num, "loop/dio"));
		ASSERT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 0));
		EXPECT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
		EXPECT_EQ(256, sysfs_ll(self->num, "loop/offset"));
	} else {
		EXPECT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
		EXPECT_EQ(0, lo_flags(self->fd));
		EXPECT_EQ(0, sysfs_ll(self->num, "loop/dio"));
	}
	/* LOOP_CONFIGURE with DIRECT_IO and a misaligned offset: C binds without direct I/O. */
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	if (strict_dio()) {
		EXPECT_EQ(EINVAL, configure(self, 256, 0, LO_FLAGS_DIRECT_IO, 0));
		EXPECT_EQ(ENXIO, iop(self->fd, LOOP_GET_STATUS64, &info)) TH_LOG("left bound");
		ASSERT_EQ(0, configure(self, 256, 0, 0, 0));
	} else {
		ASSERT_EQ(0, configure(self, 256, 0, LO_FLAGS_DIRECT_IO, 0));
	}
	EXPECT_EQ(0, lo_flags(self->fd));
}

/*
 * Over a backing device with 4 KiB sectors (another loop device), direct I/O needs 4 KiB
 * blocks: LOOP_CONFIGURE with DIRECT_IO and block size 0 picks 4096; 512 turns it off.
 */
TEST_F(loop, direct_io_block_size_follows_the_backing_device)
{
	struct loop_config cfg;
	int n, lower = extra_dev(self, &n);

	ASSERT_LE(0, lower);
	ASSERT_EQ(0, io(lower, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, io(lower, LOOP_SET_BLOCK_SIZE, 4096));
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = lower;
	cfg.info.lo_flags = LO_FLAGS_DIRECT_IO;
	ASSERT_EQ(0, iop(self->fd, LOOP_CONFIGURE, &cfg));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	EXPECT_EQ(4096, dev_ssz(self->fd));
	if (strict_dio()) {
		/* Refused while direct I/O is on; fine once it is off. */
		EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_BLOCK_SIZE, 512));
		EXPECT_EQ(4096, dev_ssz(self->fd));
		EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
		ASSERT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 0));
	}
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 512));
	EXPECT_EQ(512, dev_ssz(self->fd));
	EXPECT_EQ(0, lo_flags(self->fd)) TH_LOG("direct I/O stayed on with 512-byte blocks");
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(0, io(self->fd, LOOP_SET_BLOCK_SIZE, 4096));
	EXPECT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
}

/* tmpfs (/dev/shm) accepts O_DIRECT, so direct I/O can be switched on over it. */
TEST_F(loop, set_direct_io_on_tmpfs)
{
	char path[64];
	int fd, tfd;

	snprintf(path, sizeof(path), "/dev/shm/loop-ioctl-%d.img", getpid());
	tfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, tfd);
	fd = open(path, O_RDWR | O_DIRECT);
	EXPECT_LE(0, fd) TH_LOG("O_DIRECT on tmpfs: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path);
	ASSERT_EQ(0, ftruncate(tfd, FILE_SIZE));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, tfd));
	close(tfd);
	EXPECT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 1));
	EXPECT_EQ(LO_FLAGS_DIRECT_IO, lo_flags(self->fd));
	EXPECT_EQ(512, dev_ssz(self->fd));
}

/*
 * ramfs cannot do O_DIRECT: LOOP_SET_DIRECT_IO is EINVAL, and LOOP_CONFIGURE with DIRECT_IO
 * binds without it.
 */
TEST_F(loop, set_direct_io_without_o_direct_support_is_einval)
{
	char dir[64], path[96];
	int rfd, fd;

	snprintf(dir, sizeof(dir), "/tmp/loop-ioctl-ramfs-%d", getpid());
	ASSERT_EQ(0, mkdir(dir, 0700));
	if (mount("ramfs", dir, "ramfs", 0, NULL)) {
		rmdir(dir);
		SKIP(return, "cannot mount ramfs: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/backing", dir);
	rfd = open(path, O_RDWR | O_CREAT, 0600);
	EXPECT_LE(0, rfd);
	fd = open(path, O_RDWR | O_DIRECT);
	EXPECT_EQ(-1, fd) TH_LOG("ramfs took O_DIRECT");
	EXPECT_EQ(EINVAL, errno);
	if (fd >= 0)
		close(fd);
	if (rfd >= 0 && ftruncate(rfd, FILE_SIZE) == 0 &&
	    io(self->fd, LOOP_SET_FD, rfd) == 0) {
		EXPECT_EQ(EINVAL, io(self->fd, LOOP_SET_DIRECT_IO, 1));
		EXPECT_EQ(0, lo_flags(self->fd));
		EXPECT_EQ(0, io(self->fd, LOOP_SET_DIRECT_IO, 0));
		EXPECT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
		close(self->fd);
		self->fd = open(self->dev, O_RDWR);
		EXPECT_LE(0, self->fd);
		self->bfd = dup2(rfd, self->bfd);
		if (strict_dio()) {
			/* Refused outright, nothing bound; fine without direct I/O. */
			EXPECT_EQ(EINVAL, configure(self, 0, 0, LO_FLAGS_DIRECT_IO, 0));
			EXPECT_EQ(ENXIO, io(self->fd, LOOP_CLR_FD, 0)) TH_LOG("left bound");
			EXPECT_EQ(0, configure(self, 0, 0, 0, 0));
		} else {
			EXPECT_EQ(0, configure(self, 0, 0, LO_FLAGS_DIRECT_IO, 0));
		}
		EXPECT_EQ(0, lo_flags(self->fd)) TH_LOG("direct I/O on over ramfs");
		EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
		EXPECT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
		close(self->fd);
		self->fd = -1;
	} else {
		EXPECT_TRUE(0) TH_LOG("cannot bind a ramfs file: %s", strerror(errno));
	}
	if (rfd >= 0)
		close(rfd);
	close(self->bfd);
	self->bfd = -1;
	EXPECT_EQ(0, umount2(dir, MNT_DETACH));
	rmdir(dir);
}

/* --- LOOP_CHANGE_FD --- */

TEST_F(loop, change_fd_swaps_the_file_of_a_read_only_device)
{
	const char *other = new_file(self, FILE_SIZE, ~self->seed);
	char buf[PATH_MAX];
	int ofd, rofd;
	void *data;

	ASSERT_NE(NULL, other);
	rofd = open(self->files[0], O_RDONLY);
	ASSERT_LE(0, rofd);
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, rofd));
	close(rofd);
	ASSERT_EQ(LO_FLAGS_READ_ONLY, lo_flags(self->fd));
	ofd = open(other, O_RDONLY);
	ASSERT_LE(0, ofd);
	ASSERT_EQ(0, io(self->fd, LOOP_CHANGE_FD, ofd));
	close(ofd);
	EXPECT_EQ(LO_FLAGS_READ_ONLY, lo_flags(self->fd));
	ASSERT_EQ(0, sysfs_read(self->num, "loop/backing_file", buf, sizeof(buf)));
	EXPECT_STREQ(other, buf);
	/* The media changed: a fresh read sees the new file. */
	EXPECT_EQ(0, io(self->fd, BLKFLSBUF, 0));
	data = read_at(self->fd, 0, FILE_SIZE);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, FILE_SIZE, 0, ~self->seed));
	free(data);
}

TEST_F(loop, change_fd_errors)
{
	const char *big = new_file(self, 2 * FILE_SIZE, 1);
	int bigfd, rofd, pipefd[2], dirfd;

	ASSERT_NE(NULL, big);
	bigfd = open(big, O_RDONLY);
	ASSERT_LE(0, bigfd);
	/* Read-write: EINVAL even for a file of the same size. */
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	rofd = open(self->files[0], O_RDONLY);
	ASSERT_LE(0, rofd);
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CHANGE_FD, rofd));
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	close(self->fd);
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	/* Read-only now: another size is EINVAL, bad fds EBADF, non-files EINVAL. */
	ASSERT_EQ(0, configure(self, 0, 0, LO_FLAGS_READ_ONLY, 0));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CHANGE_FD, bigfd));
	EXPECT_EQ(EBADF, io(self->fd, LOOP_CHANGE_FD, 9999));
	EXPECT_EQ(EBADF, io(self->fd, LOOP_CHANGE_FD, self->fd)) TH_LOG("itself");
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CHANGE_FD, pipefd[0])) TH_LOG("a pipe");
	close(pipefd[0]);
	close(pipefd[1]);
	dirfd = open(getenv("LOOP_TEST_DIR") ?: "/tmp", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, dirfd);
	EXPECT_EQ(EINVAL, io(self->fd, LOOP_CHANGE_FD, dirfd)) TH_LOG("a directory");
	close(dirfd);
	/* Still on the first file. */
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
	EXPECT_EQ(0, io(self->fd, LOOP_CHANGE_FD, rofd)) TH_LOG("the same file again");
	close(rofd);
	close(bigfd);
}

/* --- what the block device does --- */

TEST_F(loop, offset_and_sizelimit_shift_the_data)
{
	const uint64_t off = 64 * KIB, limit = 128 * KIB;
	char *a = malloc(4 * KIB), *b = malloc(4 * KIB), *back;
	char c = 0;

	ASSERT_TRUE(a && b);
	ASSERT_EQ(0, configure(self, off, limit, 0, 0));
	EXPECT_EQ(limit, dev_size(self->fd));
	memset(a, 'A', 4 * KIB);
	memset(b, 'B', 4 * KIB);
	ASSERT_EQ(4 * KIB, pwrite(self->fd, a, 4 * KIB, 0));
	ASSERT_EQ(4 * KIB, pwrite(self->fd, b, 4 * KIB, limit - 4 * KIB));
	ASSERT_EQ(0, fsync(self->fd));
	back = read_at(self->bfd, off, 4 * KIB);
	ASSERT_NE(NULL, back);
	EXPECT_EQ(0, memcmp(a, back, 4 * KIB));
	free(back);
	back = read_at(self->bfd, off + limit - 4 * KIB, 4 * KIB);
	ASSERT_NE(NULL, back);
	EXPECT_EQ(0, memcmp(b, back, 4 * KIB));
	free(back);
	/* Outside the window nothing moved. */
	back = read_at(self->bfd, 0, FILE_SIZE);
	ASSERT_NE(NULL, back);
	EXPECT_EQ(-1, mismatch(back, off, 0, self->seed));
	EXPECT_EQ(-1, mismatch(back + off + limit, FILE_SIZE - off - limit, off + limit,
			       self->seed));
	free(back);
	/* The end of the device. */
	EXPECT_EQ(-1, pwrite(self->fd, a, 512, limit));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(0, pread(self->fd, &c, 1, limit));
	free(a);
	free(b);
}

TEST_F(loop, read_only_rejects_writes)
{
	char buf[512] = { 1 }, wc[32];
	uint64_t range[2] = { 0, 4096 };

	ASSERT_EQ(0, configure(self, 0, 0, LO_FLAGS_READ_ONLY, 0));
	EXPECT_EQ(1, dev_ro(self->fd));
	EXPECT_EQ(1, sysfs_ll(self->num, "ro"));
	EXPECT_EQ(-1, pwrite(self->fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(EPERM, iop(self->fd, BLKDISCARD, range));
	ASSERT_EQ(0, sysfs_read(self->num, "queue/write_cache", wc, sizeof(wc)));
	EXPECT_STREQ("write through", wc);
	EXPECT_EQ(1, pread(self->fd, buf, 1, 0));
}

TEST_F(loop, discard_punches_a_hole)
{
	uint64_t range[2] = { 256 * KIB, 256 * KIB };
	struct stat before, after;
	char *data;

	if (fallocate(self->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FILE_SIZE - 4096,
		      4096))
		SKIP(return, "no hole punching on the backing file system: %s", strerror(errno));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_LT(0, sysfs_ll(self->num, "queue/discard_max_bytes"));
	ASSERT_EQ(0, fsync(self->bfd));
	ASSERT_EQ(0, fstat(self->bfd, &before));
	ASSERT_EQ(0, iop(self->fd, BLKDISCARD, range));
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ(0, fstat(self->bfd, &after));
	EXPECT_LE(after.st_blocks, before.st_blocks - 256 * KIB / 512)
		TH_LOG("st_blocks %lld -> %lld", (long long)before.st_blocks,
		       (long long)after.st_blocks);
	EXPECT_EQ(FILE_SIZE, after.st_size);
	EXPECT_EQ(256 * KIB, (uint64_t)lseek(self->bfd, 256 * KIB, SEEK_HOLE));
	data = read_at(self->bfd, 0, FILE_SIZE - 4096);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 256 * KIB, 0, self->seed));
	EXPECT_EQ(-1, nonzero_at(data + 256 * KIB, 256 * KIB, 256 * KIB));
	EXPECT_EQ(-1, mismatch(data + 512 * KIB, FILE_SIZE - 4096 - 512 * KIB, 512 * KIB,
			       self->seed));
	free(data);
	EXPECT_EQ(0, io(self->fd, BLKFLSBUF, 0));
	data = read_at(self->fd, 256 * KIB, 256 * KIB);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, nonzero_at(data, 256 * KIB, 256 * KIB));
	free(data);
}

TEST_F(loop, zeroout_zeroes)
{
	uint64_t range[2] = { 512 * KIB, 64 * KIB };
	char *data;

	if (fallocate(self->bfd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, FILE_SIZE - 4096,
		      4096) &&
	    fallocate(self->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FILE_SIZE - 4096,
		      4096))
		SKIP(return, "no zeroing fallocate on the backing file system");
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, iop(self->fd, BLKZEROOUT, range));
	ASSERT_EQ(0, fsync(self->fd));
	data = read_at(self->bfd, 0, FILE_SIZE - 4096);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 512 * KIB, 0, self->seed));
	EXPECT_EQ(-1, nonzero_at(data + 512 * KIB, 64 * KIB, 512 * KIB));
	EXPECT_EQ(-1, mismatch(data + 576 * KIB, FILE_SIZE - 4096 - 576 * KIB, 576 * KIB,
			       self->seed));
	free(data);
	data = read_at(self->fd, 512 * KIB, 64 * KIB);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, nonzero_at(data, 64 * KIB, 512 * KIB));
	free(data);
}

/*
 * Where @file's bytes [0, @len) lie on its block device, compared with the pattern for @seed:
 * the extents (FIEMAP, without FIEMAP_FLAG_SYNC, which would write them back itself) read
 * straight from the device with O_DIRECT. Neither reading the file with O_DIRECT (which writes
 * dirty pages back first) nor dropping caches (which keeps dirty pages) tells whether a flush
 * reached the storage. Returns a message, or NULL when every byte is there.
 */
static const char *on_disk_mismatch(int file, uint64_t len, uint64_t seed, char *msg, size_t n)
{
	struct fiemap *fm = calloc(1, sizeof(*fm) + 8 * sizeof(struct fiemap_extent));
	char node[64];
	uint64_t covered = 0;
	struct stat st;
	int dev;

	if (!fm || fstat(file, &st))
		return "fstat";
	snprintf(node, sizeof(node), "/tmp/loop-ioctl-disk-%d", getpid());
	unlink(node);
	if (mknod(node, S_IFBLK | 0600, st.st_dev))
		return "mknod of the file system's device";
	dev = open(node, O_RDONLY | O_DIRECT);
	unlink(node);
	if (dev < 0)
		return "open of the file system's device";
	fm->fm_start = 0;
	fm->fm_length = len;
	fm->fm_extent_count = 8;
	if (ioctl(file, FS_IOC_FIEMAP, fm)) {
		close(dev);
		return "FS_IOC_FIEMAP";
	}
	for (unsigned int i = 0; i < fm->fm_mapped_extents && covered < len; i++) {
		struct fiemap_extent *e = &fm->fm_extents[i];
		uint64_t start = e->fe_logical, end = e->fe_logical + e->fe_length;
		void *buf;

		if (e->fe_flags & (FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN |
				   FIEMAP_EXTENT_UNWRITTEN)) {
			snprintf(msg, n, "bytes %llu..%llu are not on the device (extent flags 0x%x)",
				 (unsigned long long)start, (unsigned long long)end, e->fe_flags);
			close(dev);
			return msg;
		}
		if (end > len)
			end = len;
		if (start != covered || posix_memalign(&buf, 4096, end - start)) {
			snprintf(msg, n, "extent at %llu, expected one at %llu",
				 (unsigned long long)start, (unsigned long long)covered);
			close(dev);
			return msg;
		}
		if (pread(dev, buf, end - start, e->fe_physical) != (ssize_t)(end - start)) {
			free(buf);
			close(dev);
			return "O_DIRECT read of the device";
		}
		if (mismatch(buf, end - start, start, seed) >= 0) {
			snprintf(msg, n, "the device holds other bytes at file offset %lld (of extent %llu..%llu): the flush did not write the backing file",
				 mismatch(buf, end - start, start, seed), (unsigned long long)start,
				 (unsigned long long)end);
			free(buf);
			close(dev);
			return msg;
		}
		free(buf);
		covered = end;
	}
	close(dev);
	if (covered < len) {
		snprintf(msg, n, "only %llu of %llu bytes mapped", (unsigned long long)covered,
			 (unsigned long long)len);
		return msg;
	}
	return NULL;
}

/*
 * A flush through the device reaches the backing file's storage: with the backing file on a
 * block device, what fsync() of the loop device wrote is on that device (read past every
 * cache), not only in the backing file's page cache. On tmpfs the page cache is the storage.
 */
TEST_F(loop, fsync_and_flush)
{
	char *buf = malloc(128 * KIB), *back, msg[256];
	const char *err;
	struct stat st;
	char wc[32];

	ASSERT_NE(NULL, buf);
	/* The old bytes on the device first: the blocks are allocated and hold the old pattern. */
	ASSERT_EQ(0, fsync(self->bfd));
	ASSERT_EQ(0, fstat(self->bfd, &st));
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	ASSERT_EQ(0, sysfs_read(self->num, "queue/write_cache", wc, sizeof(wc)));
	EXPECT_STREQ("write back", wc);
	fill(buf, 128 * KIB, 0, ~self->seed);
	ASSERT_EQ(128 * KIB, pwrite(self->fd, buf, 128 * KIB, 0));
	EXPECT_EQ(0, fsync(self->fd));
	if (major(st.st_dev)) {
		err = on_disk_mismatch(self->bfd, 128 * KIB, ~self->seed, msg, sizeof(msg));
		EXPECT_EQ(NULL, err) TH_LOG("after fsync of %s: %s", self->dev, err);
	} else {
		TH_LOG("backing file on %u:%u (no block device): its page cache is its storage",
		       major(st.st_dev), minor(st.st_dev));
	}
	EXPECT_EQ(0, fdatasync(self->fd));
	EXPECT_EQ(0, io(self->fd, BLKFLSBUF, 0));
	back = read_at(self->bfd, 0, 128 * KIB);
	ASSERT_NE(NULL, back);
	EXPECT_EQ(-1, mismatch(back, 128 * KIB, 0, ~self->seed));
	free(back);
	free(buf);
}

/* --- partitions --- */

TEST_F(loop, partscan_creates_partitions)
{
	const uint32_t parts[][2] = { { 64, 640 }, { 1024, 1024 } };
	struct loop_info64 info;
	char p1[80], p2[80];
	void *data;
	int pfd;

	ASSERT_EQ(0, write_mbr(self->bfd, parts, 2));
	ASSERT_EQ(0, fsync(self->bfd));
	snprintf(p1, sizeof(p1), "loop%dp1", self->num);
	snprintf(p2, sizeof(p2), "loop%dp2", self->num);
	/* Without PARTSCAN: none. */
	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	EXPECT_FALSE(sysfs_exists(self->num, p1));
	EXPECT_EQ(0, sysfs_ll(self->num, "loop/partscan"));
	/* PARTSCAN through LOOP_SET_STATUS64: both appear, with their sizes. */
	ASSERT_EQ(0, iop(self->fd, LOOP_GET_STATUS64, &info));
	info.lo_flags = LO_FLAGS_PARTSCAN;
	ASSERT_EQ(0, iop(self->fd, LOOP_SET_STATUS64, &info));
	snprintf(p1, sizeof(p1), "loop%dp1/start", self->num);
	EXPECT_EQ(64, sysfs_ll(self->num, p1));
	snprintf(p1, sizeof(p1), "loop%dp1/size", self->num);
	EXPECT_EQ(640, sysfs_ll(self->num, p1));
	snprintf(p2, sizeof(p2), "loop%dp2/start", self->num);
	EXPECT_EQ(1024, sysfs_ll(self->num, p2));
	snprintf(p2, sizeof(p2), "loop%dp2/size", self->num);
	EXPECT_EQ(1024, sysfs_ll(self->num, p2));
	snprintf(p1, sizeof(p1), "%sp1", self->dev);
	ASSERT_TRUE(wait_path(p1, 1)) TH_LOG("%s did not appear", p1);
	pfd = open(p1, O_RDONLY);
	ASSERT_LE(0, pfd) TH_LOG("open %s: %s", p1, strerror(errno));
	EXPECT_EQ(640 * 512, dev_size(pfd));
	data = read_at(pfd, 0, 640 * 512);
	close(pfd);
	ASSERT_NE(NULL, data);
	EXPECT_EQ(-1, mismatch(data, 640 * 512, 64 * 512, self->seed));
	free(data);
	/* Unbinding removes them. */
	ASSERT_EQ(0, io(self->fd, LOOP_CLR_FD, 0));
	close(self->fd);
	self->fd = -1;
	snprintf(p1, sizeof(p1), "loop%dp1", self->num);
	EXPECT_FALSE(sysfs_exists(self->num, p1));
	self->fd = open(self->dev, O_RDWR);
	ASSERT_LE(0, self->fd);
	/* LOOP_CONFIGURE with PARTSCAN: there at once. */
	ASSERT_EQ(0, configure(self, 0, 0, LO_FLAGS_PARTSCAN, 0));
	snprintf(p2, sizeof(p2), "loop%dp2/size", self->num);
	EXPECT_EQ(1024, sysfs_ll(self->num, p2));
	EXPECT_EQ(1, sysfs_ll(self->num, "loop/partscan"));
	/* A rescan on request. */
	EXPECT_EQ(0, io(self->fd, BLKRRPART, 0));
	EXPECT_EQ(1024, sysfs_ll(self->num, p2));
}

/* --- who may do what --- */

struct nobody_args {
	int ro_fd, rw_fd, ctl;
};

/* Runs as nobody with fds opened by root: exit 0 when every errno is the expected one. */
static int nobody_ioctls(void *p)
{
	struct nobody_args *a = p;
	struct loop_info64 info;
	struct loop_info old;
	int bad = 0, n;

#define CHECK(want, got) do { \
		int __g = (got); \
		if (__g != (want)) { \
			fprintf(stderr, "# %s:%d: %s: got %d (%s), want %d\n", __FILE__, \
				__LINE__, #got, __g, strerror(__g), (want)); \
			bad = 1; \
		} \
	} while (0)

	if (setgid(NOBODY) || setuid(NOBODY))
		return 2;
	/* The node is root's: nobody cannot open it. */
	CHECK(-1, open("/dev/loop-control", O_RDWR));
	CHECK(EACCES, errno);
	/* Reading the status needs nothing. */
	CHECK(0, iop(a->ro_fd, LOOP_GET_STATUS64, &info));
	CHECK(0, iop(a->ro_fd, LOOP_GET_STATUS, &old));
	/* Changing it needs a writable open or CAP_SYS_ADMIN. */
	CHECK(EPERM, iop(a->ro_fd, LOOP_SET_STATUS64, &info));
	CHECK(EPERM, iop(a->ro_fd, LOOP_SET_STATUS, &old));
	CHECK(EPERM, io(a->ro_fd, LOOP_SET_BLOCK_SIZE, 4096));
	CHECK(EPERM, io(a->ro_fd, LOOP_SET_CAPACITY, 0));
	CHECK(EPERM, io(a->ro_fd, LOOP_SET_DIRECT_IO, 0));
	CHECK(0, iop(a->rw_fd, LOOP_SET_STATUS64, &info));
	CHECK(0, io(a->rw_fd, LOOP_SET_CAPACITY, 0));
	CHECK(0, io(a->rw_fd, LOOP_SET_BLOCK_SIZE, 1024));
	/* /dev/loop-control checks no capability: the open was the gate. */
	n = ioctl(a->ctl, LOOP_CTL_ADD, -1);
	if (n < 0) {
		fprintf(stderr, "# LOOP_CTL_ADD as nobody: %s\n", strerror(errno));
		bad = 1;
	} else {
		CHECK(0, ioctl(a->ctl, LOOP_CTL_REMOVE, n) < 0 ? errno : 0);
	}
	/* Nor does LOOP_CLR_FD. */
	CHECK(0, io(a->ro_fd, LOOP_CLR_FD, 0));
#undef CHECK
	return bad;
}

TEST_F(loop, non_admin_callers)
{
	struct nobody_args a = { .ctl = self->ctl };
	int status;

	ASSERT_EQ(0, io(self->fd, LOOP_SET_FD, self->bfd));
	a.ro_fd = open(self->dev, O_RDONLY);
	ASSERT_LE(0, a.ro_fd);
	a.rw_fd = self->fd;
	status = in_child(nobody_ioctls, &a);
	EXPECT_EQ(0, status);
	close(a.ro_fd);
	/* The deferred LOOP_CLR_FD from nobody: still bound while we hold it open. */
	EXPECT_EQ(LO_FLAGS_AUTOCLEAR, lo_flags(self->fd));
	EXPECT_EQ(1024, dev_ssz(self->fd));
}

/* A writable fd passed to nobody is enough to bind a file. */
static int nobody_binds(void *p)
{
	struct nobody_args *a = p;

	if (setgid(NOBODY) || setuid(NOBODY))
		return 2;
	if (ioctl(a->rw_fd, LOOP_SET_FD, a->ro_fd)) {
		fprintf(stderr, "# LOOP_SET_FD as nobody: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

TEST_F(loop, non_admin_caller_with_an_open_fd_can_bind)
{
	struct nobody_args a = { .ro_fd = self->bfd, .rw_fd = self->fd, .ctl = -1 };

	EXPECT_EQ(0, in_child(nobody_binds, &a));
	EXPECT_EQ(0, lo_flags(self->fd));
	EXPECT_EQ(FILE_SIZE, dev_size(self->fd));
}

TEST_HARNESS_MAIN
