/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /dev/lockedmem (mm_mlock2) for the guest programs: the ioctls and the /proc readers the tests
 * and the benchmark share.
 */
#ifndef RUST44_LOCKEDMEM_H
#define RUST44_LOCKEDMEM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/mman.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOCKEDMEM_DEV "/dev/lockedmem"
/* Must match mm_mlock2/mm_mlock2.rs (its KUnit test checks the numbers). */
#define LOCKEDMEM_SET_SIZE _IOW('L', 1, uint64_t)
#define LOCKEDMEM_GET_SIZE _IOR('L', 2, uint64_t)
#define LOCKEDMEM_STATS "/sys/kernel/debug/mm_mlock2/stats"

/* A region of @size bytes: an open, sized /dev/lockedmem, or -1 with errno set. */
static inline int lockedmem_region(uint64_t size)
{
	int fd = open(LOCKEDMEM_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ioctl(fd, LOCKEDMEM_SET_SIZE, &size)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The value in kB of "@field:" in a /proc file such as /proc/self/status or /proc/meminfo, or -1. */
static inline long proc_kb(const char *path, const char *field)
{
	FILE *f = fopen(path, "r");
	size_t len = strlen(field);
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* A field of /proc/self/status in kB ("VmLck"), or -1. */
static inline long status_kb(const char *field)
{
	return proc_kb("/proc/self/status", field);
}

/*
 * A field of the /proc/self/smaps entry that starts at @addr: in kB for sizes ("Rss:"), or, for
 * "VmFlags:", 1 when @flag is among the flags and 0 when not. -1 when there is no such entry.
 */
static inline long smaps_field(void *addr, const char *field, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512], start[32];
	int in = 0;
	long v = -1;

	if (!f)
		return -1;
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!in) {
			in = !strncmp(line, start, strlen(start));
			continue;
		}
		if (strncmp(line, field, strlen(field)))
			continue;
		if (flag) {
			char *tok, *save;

			v = 0;
			for (tok = strtok_r(line + strlen(field), " \n", &save); tok;
			     tok = strtok_r(NULL, " \n", &save))
				if (!strcmp(tok, flag))
					v = 1;
		} else {
			v = strtol(line + strlen(field), NULL, 10);
		}
		break;
	}
	fclose(f);
	return v;
}

/* Whether some mapping in /proc/self/maps covers @addr. */
static inline int mapped(void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long a = (unsigned long)addr, s, e;
	char line[512];
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && a >= s && a < e)
			found = 1;
	fclose(f);
	return found;
}

/* A counter of LOCKEDMEM_STATS ("regions", "pages_held", "pages_wiped"), or -1. */
static inline long lockedmem_stat(const char *name)
{
	FILE *f = fopen(LOCKEDMEM_STATS, "r");
	char line[128];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':')
			v = strtol(line + strlen(name) + 1, NULL, 10);
	fclose(f);
	return v;
}

#endif
