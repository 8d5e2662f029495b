// SPDX-License-Identifier: GPL-2.0
/*
 * Drives one /dev/lockedmem region through what mm_mlock2 traces: sized (and a second, refused
 * size: EBUSY), mapped 4 pages, 2 of them touched, unmapped and closed (wiped). tests/bpf_ext
 * checks the events against this.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOCKEDMEM_SET_SIZE 0x40084c01

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t size = 4 * page;
	char *p;
	int fd = open("/dev/lockedmem", O_RDWR);

	if (fd < 0) {
		perror("open /dev/lockedmem");
		return 1;
	}
	if (ioctl(fd, LOCKEDMEM_SET_SIZE, &size)) {
		perror("LOCKEDMEM_SET_SIZE");
		return 1;
	}
	if (ioctl(fd, LOCKEDMEM_SET_SIZE, &size) == 0 || errno != EBUSY) {
		fprintf(stderr, "a second size was not refused with EBUSY\n");
		return 1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	p[0] = 1;
	p[2 * page] = 1;
	munmap(p, size);
	close(fd);
	return 0;
}
