// SPDX-License-Identifier: GPL-2.0
/*
 * Talks to /dev/rust44_selftest (tests/selftest_mod): its ioctl answers through
 * kernel::capability, a rust44 addition to the kernel crate.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define RUST44_SELFTEST_CAPABLE _IO('r', 0x44)
#define NOBODY 65534

FIXTURE(selftest) {
	int fd;
};

FIXTURE_SETUP(selftest)
{
	self->fd = open("/dev/rust44_selftest", O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/rust44_selftest: %s", strerror(errno));
}

FIXTURE_TEARDOWN(selftest)
{
	close(self->fd);
}

TEST_F(selftest, root_is_capable)
{
	EXPECT_EQ(1, ioctl(self->fd, RUST44_SELFTEST_CAPABLE));
}

/* capable() looks at the caller's credentials, not at who opened the file. */
TEST_F(selftest, nobody_is_not_capable)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(2);
		_exit(ioctl(self->fd, RUST44_SELFTEST_CAPABLE) == 0 ? 0 : 1);
	}
	int status;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(selftest, unknown_ioctl_is_enotty)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO('r', 0x45)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST(nobody_cannot_open)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(2);
		int fd = open("/dev/rust44_selftest", O_RDWR);

		_exit(fd < 0 && errno == EACCES ? 0 : 1);
	}
	int status;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
