// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/lockedmem (mm_mlock2): the properties of mlock2(MLOCK_ONFAULT) memory, asserted on memory
 * that comes straight from mmap() of the device. Runs as root; the limit tests drop to nobody.
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "rust44_child.h"
#include "lockedmem.h"

#define NOBODY 65534
#define PAGES 64

static long page_kb(void)
{
	return sysconf(_SC_PAGESIZE) / 1024;
}

static size_t psz(void)
{
	return sysconf(_SC_PAGESIZE);
}

FIXTURE(region) {
	int fd;
	char *p;
	size_t len;
};

FIXTURE_SETUP(region)
{
	self->len = PAGES * psz();
	self->fd = lockedmem_region(self->len);
	ASSERT_LE(0, self->fd) TH_LOG("region of %zu bytes: %s", self->len, strerror(errno));
	self->p = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->p) TH_LOG("mmap: %s", strerror(errno));
}

FIXTURE_TEARDOWN(region)
{
	munmap(self->p, self->len);
	close(self->fd);
}

TEST_F(region, size_reads_back)
{
	uint64_t size = 0;

	ASSERT_EQ(0, ioctl(self->fd, LOCKEDMEM_GET_SIZE, &size));
	EXPECT_EQ(self->len, size);
}

TEST_F(region, rss_is_zero_after_mmap)
{
	EXPECT_EQ(0, smaps_field(self->p, "Rss:", NULL));
	EXPECT_EQ(0, smaps_field(self->p, "Locked:", NULL));
}

TEST_F(region, vma_is_lock_on_fault_dontcopy_dontdump)
{
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "lo"));
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "lf"));
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "dc"));
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "dd"));
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "sh"));
}

TEST_F(region, rss_and_locked_grow_one_page_per_page_touched)
{
	int touched[] = { 0, 1, 7, 31, PAGES - 1 };

	for (size_t i = 0; i < sizeof(touched) / sizeof(touched[0]); i++) {
		self->p[touched[i] * psz()] = 1;
		EXPECT_EQ((long)(i + 1) * page_kb(), smaps_field(self->p, "Rss:", NULL));
		EXPECT_EQ((long)(i + 1) * page_kb(), smaps_field(self->p, "Locked:", NULL));
	}
	/* Touching a page again, or reading it, adds nothing. */
	self->p[7 * psz() + 100] = 2;
	EXPECT_EQ(2, self->p[7 * psz() + 100]);
	EXPECT_EQ(5 * page_kb(), smaps_field(self->p, "Rss:", NULL));
	/* A read fault of an untouched page locks it too. */
	EXPECT_EQ(0, self->p[2 * psz()]);
	EXPECT_EQ(6 * page_kb(), smaps_field(self->p, "Locked:", NULL));
	EXPECT_EQ(6, lockedmem_stat("pages_held"));
}

#define KPF_MLOCKED 33

/* The /proc/kpageflags bits of the page mapped at @addr, or 0 when none is. */
static uint64_t kpageflags(void *addr)
{
	uint64_t entry = 0, flags = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);

	if (pm >= 0 && kf >= 0 &&
	    pread(pm, &entry, 8, (unsigned long)addr / psz() * 8) == 8 && (entry >> 63) &&
	    pread(kf, &flags, 8, (entry & ((1ULL << 55) - 1)) * 8) != 8)
		flags = 0;
	close(pm);
	close(kf);
	return flags;
}

/* Touched pages are mlocked pages (PG_mlocked), as after mlock2(MLOCK_ONFAULT). */
TEST_F(region, touched_pages_are_mlocked)
{
	int mlocked = 0;

	for (int i = 0; i < 8; i++)
		self->p[i * 2 * psz()] = 1;

	for (int i = 0; i < 8; i++)
		mlocked += !!(kpageflags(self->p + i * 2 * psz()) & (1ULL << KPF_MLOCKED));
	EXPECT_EQ(8, mlocked);
	/* An untouched page is not even there. */
	EXPECT_EQ(0, kpageflags(self->p + psz()));
}

/* locked_vm counts the whole lock-on-fault VMA, as after mlock2(MLOCK_ONFAULT). */
TEST(vmlck_accounts_the_mapping_as_mlock2_does)
{
	size_t len = PAGES * psz();
	long before = status_kb("VmLck");
	int fd = lockedmem_region(len);
	char *p, *q;

	ASSERT_LE(0, fd);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(before + PAGES * page_kb(), status_kb("VmLck"));

	/* The same through mlock2(MLOCK_ONFAULT) on anonymous memory. */
	q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, syscall(__NR_mlock2, q, len, MLOCK_ONFAULT));
	EXPECT_EQ(before + 2 * PAGES * page_kb(), status_kb("VmLck"));
	munmap(q, len);

	ASSERT_EQ(0, munmap(p, len));
	EXPECT_EQ(before, status_kb("VmLck"));
	close(fd);
}

TEST_F(region, munlock_behaves_as_on_mlock2_onfault_memory)
{
	long before = status_kb("VmLck");

	self->p[0] = 1;
	self->p[3 * psz()] = 1;
	ASSERT_EQ(0, munlock(self->p, self->len));
	EXPECT_EQ(before - PAGES * page_kb(), status_kb("VmLck"));
	EXPECT_EQ(0, smaps_field(self->p, "Locked:", NULL));
	EXPECT_EQ(0, smaps_field(self->p, "VmFlags:", "lo"));
	EXPECT_EQ(0, smaps_field(self->p, "VmFlags:", "lf"));
	/* The data stays, and so do the pages. */
	EXPECT_EQ(1, self->p[3 * psz()]);
	EXPECT_EQ(2 * page_kb(), smaps_field(self->p, "Rss:", NULL));

	/* Locking again on fault works as on any mapping. */
	ASSERT_EQ(0, syscall(__NR_mlock2, self->p, self->len, MLOCK_ONFAULT));
	EXPECT_EQ(before, status_kb("VmLck"));
	EXPECT_EQ(2 * page_kb(), smaps_field(self->p, "Locked:", NULL));
	self->p[9 * psz()] = 1;
	EXPECT_EQ(3 * page_kb(), smaps_field(self->p, "Locked:", NULL));
}

/* munlock of part of the VMA splits it; both halves keep working and unmap cleanly. */
TEST_F(region, partial_munlock_splits)
{
	ASSERT_EQ(0, munlock(self->p + 8 * psz(), 8 * psz()));
	EXPECT_EQ(1, smaps_field(self->p, "VmFlags:", "lo"));
	EXPECT_EQ(0, smaps_field(self->p + 8 * psz(), "VmFlags:", "lo"));
	EXPECT_EQ(1, smaps_field(self->p + 16 * psz(), "VmFlags:", "lo"));
	self->p[9 * psz()] = 1;
	self->p[20 * psz()] = 1;
	EXPECT_EQ(page_kb(), smaps_field(self->p + 16 * psz(), "Locked:", NULL));
	EXPECT_EQ(0, smaps_field(self->p + 8 * psz(), "Locked:", NULL));
}

/* Two mappings of one region, and a child that maps the same fd, share the memory. */
static int child_sees_shared_bytes(void *arg)
{
	int fd = *(int *)arg;
	char *c = mmap(NULL, psz(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, psz());

	if (c == MAP_FAILED)
		return 2;
	if (c[5] != 42)
		return 3;
	c[6] = 43;
	return 0;
}

TEST_F(region, shared_by_fd)
{
	char *again = mmap(NULL, self->len, PROT_READ, MAP_SHARED, self->fd, 0);

	ASSERT_NE(MAP_FAILED, again);
	self->p[psz() + 5] = 42;
	EXPECT_EQ(42, again[psz() + 5]);
	EXPECT_EQ(0, in_child(child_sees_shared_bytes, &self->fd));
	EXPECT_EQ(43, self->p[psz() + 6]);
	munmap(again, self->len);
}

static int child_lacks_mapping(void *arg)
{
	return mapped(arg) == 0 ? 0 : 1;
}

TEST_F(region, fork_child_does_not_get_it)
{
	self->p[0] = 7;
	EXPECT_EQ(1, mapped(self->p));
	EXPECT_EQ(0, in_child(child_lacks_mapping, self->p));
	EXPECT_EQ(7, self->p[0]);
}

/* A pattern made in place from a seed, so no copy of it is on the stack or in the binary. */
static void fill_pattern(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		p[i] = seed >> 24;
	}
}

struct dump_args {
	int fd;
	char *anon;
	uint64_t seed;
};

/* The child maps the region itself: fork() does not give it the parent's mapping. */
static int child_dumps_core(void *arg)
{
	struct dump_args *a = arg;
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	char *region = mmap(NULL, psz(), PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);

	if (region == MAP_FAILED || setrlimit(RLIMIT_CORE, &unlimited))
		return 2;
	fill_pattern((unsigned char *)region, 256, a->seed);
	fill_pattern((unsigned char *)a->anon, 256, a->seed + 1);
	a->seed = 0;
	abort();
}

/* Whether the file contains the 64 first bytes of the pattern of @seed. */
static int file_has_pattern(const char *path, uint64_t seed)
{
	unsigned char want[64], *buf;
	struct stat st;
	int fd = open(path, O_RDONLY), found = 0;

	if (fd < 0 || fstat(fd, &st))
		return -1;
	buf = malloc(st.st_size);
	if (!buf || read(fd, buf, st.st_size) != st.st_size)
		return -1;
	fill_pattern(want, sizeof(want), seed);
	for (off_t i = 0; i + (off_t)sizeof(want) <= st.st_size; i++)
		if (!memcmp(buf + i, want, sizeof(want))) {
			found = 1;
			break;
		}
	free(buf);
	close(fd);
	return found;
}

/* run.sh sets core_pattern to /tmp/lockedmem-core/core (no pid), so the file name is known. */
TEST_F(region, core_dump_lacks_it)
{
	struct dump_args a = { self->fd, NULL, 0x2545f4914f6cdd1dULL ^ getpid() };
	uint64_t seed = a.seed;
	char pattern[128] = "";
	FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");

	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(pattern, sizeof(pattern), f));
	fclose(f);
	if (strcmp(pattern, "/tmp/lockedmem-core/core\n"))
		SKIP(return, "core_pattern is '%s'", pattern);
	a.anon = mmap(NULL, psz(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, a.anon);
	mkdir("/tmp/lockedmem-core", 0755);
	unlink("/tmp/lockedmem-core/core");
	ASSERT_EQ(128 + SIGABRT, in_child(child_dumps_core, &a));
	/* The control: the anonymous page is in the dump, the region's page is not. */
	EXPECT_EQ(1, file_has_pattern("/tmp/lockedmem-core/core", seed + 1));
	EXPECT_EQ(0, file_has_pattern("/tmp/lockedmem-core/core", seed));
	unlink("/tmp/lockedmem-core/core");
	munmap(a.anon, psz());
}

/*
 * The wipe, as far as user space can see it, and where the rest is proven:
 * - Here: when the last mapping goes (not at close while a mapping holds the region), the module
 *   wipes exactly the pages that hold data: pages_wiped grows by exactly the pages the region held
 *   (pages_held), here a dense run, scattered pages and the last page written and one page only
 *   read (a read fault of shared tmpfs memory allocates a page too); the untouched pages are holes
 *   and are not counted. A module that skips the wipe, wipes at close, counts every page of the
 *   size, or stops before the last page fails here.
 * - That the wiped pages hold zeros when they are freed cannot be read from user space (they are
 *   gone with the region, and this kernel has neither /dev/mem nor /proc/kcore): the KUnit test
 *   rust44_mm_shmem::wipe_zeroes_the_pages_that_hold_data reads them back after
 *   ShmemFile::wipe(), which the module's release calls and whose count pages_wiped adds up.
 * - A fresh region reading zeros is not tested: tmpfs zeroes every new page, so it would pass
 *   whatever the module does.
 */
TEST(pages_with_data_are_wiped_when_the_last_mapping_goes)
{
	size_t len = PAGES * psz();
	int written[] = { 0, 1, 2, 3, 9, 31, PAGES - 1 };
	size_t nwritten = sizeof(written) / sizeof(written[0]);
	int read_only = 40;
	long wiped = lockedmem_stat("pages_wiped");
	long held = lockedmem_stat("pages_held");
	volatile char *p;
	int fd;

	ASSERT_LE(0, wiped);
	ASSERT_LE(0, held);
	fd = lockedmem_region(len);
	ASSERT_LE(0, fd);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (size_t i = 0; i < nwritten; i++)
		memset((char *)p + written[i] * psz(), 0xa5, psz());
	EXPECT_EQ(0, p[read_only * psz()]);
	EXPECT_EQ(held + (long)nwritten + 1, lockedmem_stat("pages_held"));
	/* Closing the fd is not enough: the mapping still holds the region and its data. */
	close(fd);
	EXPECT_EQ(wiped, lockedmem_stat("pages_wiped"));
	EXPECT_EQ(held + (long)nwritten + 1, lockedmem_stat("pages_held"));
	for (size_t i = 0; i < nwritten; i++) {
		EXPECT_EQ((char)0xa5, p[written[i] * psz()]);
		EXPECT_EQ((char)0xa5, p[(written[i] + 1) * psz() - 1]);
	}
	ASSERT_EQ(0, munmap((void *)p, len));
	EXPECT_EQ(wiped + (long)nwritten + 1, lockedmem_stat("pages_wiped"));
	EXPECT_EQ(held, lockedmem_stat("pages_held"));
}

TEST(map_private_is_einval)
{
	int fd = lockedmem_region(psz());

	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, psz(), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, psz(), PROT_READ, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(unsupported_requests_fail)
{
	int fd = open(LOCKEDMEM_DEV, O_RDWR);
	uint64_t size = 0;

	ASSERT_LE(0, fd);
	/* No size yet. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, psz(), PROT_READ, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, LOCKEDMEM_SET_SIZE, &size));
	EXPECT_EQ(EINVAL, errno);
	size = 3 * psz() - 1;
	ASSERT_EQ(0, ioctl(fd, LOCKEDMEM_SET_SIZE, &size));
	ASSERT_EQ(0, ioctl(fd, LOCKEDMEM_GET_SIZE, &size));
	EXPECT_EQ(3 * psz(), size) TH_LOG("the size is rounded up to pages");
	/* The size is set once. */
	EXPECT_EQ(-1, ioctl(fd, LOCKEDMEM_SET_SIZE, &size));
	EXPECT_EQ(EBUSY, errno);
	/* Past the end. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4 * psz(), PROT_READ, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, psz(), PROT_READ, MAP_SHARED, fd, 3 * psz()));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, _IO('L', 9)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, LOCKEDMEM_GET_SIZE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* The last page, by offset. */
	char *p = mmap(NULL, psz(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * psz());

	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	munmap(p, psz());
	close(fd);
}

struct limit_args {
	int fd;
	rlim_t limit;
	size_t pages;
	int want_errno;
};

/* As nobody (no CAP_IPC_LOCK) with RLIMIT_MEMLOCK at @limit, maps @pages of the region. */
static int child_maps_as_nobody(void *arg)
{
	struct limit_args *a = arg;
	struct rlimit r = { a->limit, a->limit };
	void *p;

	if (setrlimit(RLIMIT_MEMLOCK, &r) || setgid(NOBODY) || setuid(NOBODY))
		return 10;
	p = mmap(NULL, a->pages * psz(), PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->want_errno == 0) {
		if (p == MAP_FAILED)
			return 11;
		((char *)p)[0] = 1;
		return 0;
	}
	if (p != MAP_FAILED)
		return 12;
	return errno == a->want_errno ? 0 : 13;
}

/* The errors are those of mlock2() under the same limit. */
static int child_mlock2_as_nobody(void *arg)
{
	struct limit_args *a = arg;
	struct rlimit r = { a->limit, a->limit };
	void *p = mmap(NULL, a->pages * psz(), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long ret;

	if (p == MAP_FAILED || setrlimit(RLIMIT_MEMLOCK, &r) || setgid(NOBODY) || setuid(NOBODY))
		return 10;
	ret = syscall(__NR_mlock2, p, a->pages * psz(), MLOCK_ONFAULT);
	if (a->want_errno == 0)
		return ret == 0 ? 0 : 11;
	return ret == -1 && errno == a->want_errno ? 0 : 13;
}

TEST(unprivileged_limit_is_enforced_like_mlock2)
{
	int fd = lockedmem_region(PAGES * psz());
	struct limit_args within = { fd, 16 * psz(), 16, 0 };
	struct limit_args over = { fd, 16 * psz(), 17, ENOMEM };
	struct limit_args none = { fd, 0, 1, EPERM };

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, in_child(child_maps_as_nobody, &within));
	EXPECT_EQ(0, in_child(child_maps_as_nobody, &over));
	EXPECT_EQ(0, in_child(child_maps_as_nobody, &none));
	EXPECT_EQ(0, in_child(child_mlock2_as_nobody, &within));
	EXPECT_EQ(0, in_child(child_mlock2_as_nobody, &over));
	EXPECT_EQ(0, in_child(child_mlock2_as_nobody, &none));
	close(fd);
}

/* Existing locked memory counts against the limit too. */
static int child_limit_counts_existing(void *arg)
{
	int fd = *(int *)arg;
	struct rlimit r = { 16 * psz(), 16 * psz() };
	void *a, *b;

	if (setrlimit(RLIMIT_MEMLOCK, &r) || setgid(NOBODY) || setuid(NOBODY))
		return 10;
	a = mmap(NULL, 10 * psz(), PROT_READ, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED)
		return 11;
	b = mmap(NULL, 10 * psz(), PROT_READ, MAP_SHARED, fd, 0);
	if (b != MAP_FAILED || errno != ENOMEM)
		return 12;
	munmap(a, 10 * psz());
	b = mmap(NULL, 10 * psz(), PROT_READ, MAP_SHARED, fd, 0);
	return b == MAP_FAILED ? 13 : 0;
}

TEST(limit_counts_memory_already_locked)
{
	int fd = lockedmem_region(PAGES * psz());

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, in_child(child_limit_counts_existing, &fd));
	close(fd);
}

/* Root keeps CAP_IPC_LOCK: the limit does not apply. */
static int child_privileged_over_limit(void *arg)
{
	int fd = *(int *)arg;
	struct rlimit r = { psz(), psz() };
	char *p;

	if (setrlimit(RLIMIT_MEMLOCK, &r))
		return 10;
	p = mmap(NULL, PAGES * psz(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 11;
	p[0] = 1;
	return 0;
}

TEST(cap_ipc_lock_bypasses_the_limit)
{
	int fd = lockedmem_region(PAGES * psz());

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, in_child(child_privileged_over_limit, &fd));
	close(fd);
}

/* Many processes, each with several regions, at once. */
static int child_many_regions(void *arg)
{
	int id = *(int *)arg, fds[4];
	unsigned char *p[4];

	for (int r = 0; r < 4; r++) {
		fds[r] = lockedmem_region(PAGES * psz());
		if (fds[r] < 0)
			return 10;
		p[r] = mmap(NULL, PAGES * psz(), PROT_READ | PROT_WRITE, MAP_SHARED, fds[r], 0);
		if (p[r] == MAP_FAILED)
			return 11;
	}
	for (int round = 0; round < 4; round++)
		for (int r = 0; r < 4; r++)
			for (int i = round; i < PAGES; i += 4)
				p[r][i * psz()] = id * 16 + r;
	for (int r = 0; r < 4; r++)
		for (int i = 0; i < PAGES; i++)
			if (p[r][i * psz()] != id * 16 + r)
				return 12;
	if (smaps_field(p[0], "Locked:", NULL) != PAGES * page_kb())
		return 13;
	return 0;
}

TEST(many_processes_and_regions)
{
	long regions = lockedmem_stat("regions");
	pid_t pids[8];
	int ids[8];

	ASSERT_LE(0, regions);
	for (int i = 0; i < 8; i++) {
		ids[i] = i;
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(child_many_regions(&ids[i]));
	}
	for (int i = 0; i < 8; i++) {
		int status;

		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child %d", i);
	}
	/* Every region went away with its process. */
	EXPECT_EQ(regions, lockedmem_stat("regions"));
}

TEST_HARNESS_MAIN
