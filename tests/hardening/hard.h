/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the hardening programs: a seeded generator (the same seed gives the same calls), the
 * clock, and the watchdog that runs a body in a child and calls it hung when it outlives its time.
 */
#ifndef RUST44_HARD_H
#define RUST44_HARD_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: small, fast, and every seed (0 too) gives a good stream. */
static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A value in [0, n). */
static inline uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* One of the @n values of @v. */
#define pick(v) ((v)[below(sizeof(v) / sizeof((v)[0]))])

static inline void fill_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		uint64_t r = rnd();
		size_t n = len < 8 ? len : 8;

		memcpy(p, &r, n);
		p += n;
		len -= n;
	}
}

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints the kernel stack of every thread of @pid. */
static inline void dump_stacks(pid_t pid)
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

/*
 * Runs @body in a child and waits up to @limit seconds for it. A child still there then is hung
 * in the kernel (every call the programs make returns in far less): its threads' kernel stacks
 * are printed, sysrq-w puts the blocked tasks into the kernel log, and the result is 2. Else the
 * child's exit status (1 for a signal).
 */
static inline int bounded(int (*body)(void), double limit, uint64_t seed)
{
	double end = now() + limit;
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		int rc = body();

		fflush(stdout);
		_exit(rc);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now() > end) {
			int fd;

			printf("hung: still running after %.0f s (seed %llu); kernel stacks:\n", limit,
			       (unsigned long long)seed);
			dump_stacks(pid);
			fflush(stdout);
			fd = open("/proc/sysrq-trigger", O_WRONLY);
			if (fd >= 0) {
				if (write(fd, "w", 1) != 1)
					perror("sysrq-trigger");
				close(fd);
			}
			return 2;
		}
		usleep(50000);
	}
	if (WIFSIGNALED(status)) {
		printf("killed by signal %d (seed %llu)\n", WTERMSIG(status),
		       (unsigned long long)seed);
		return 1;
	}
	return WEXITSTATUS(status);
}

#endif
