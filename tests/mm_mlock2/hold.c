// SPDX-License-Identifier: GPL-2.0
/*
 * Holds a /dev/lockedmem region through a mapping alone: opens and sizes a region, maps it,
 * touches a page, closes the file descriptor, says "ready" and waits to be killed. run.sh uses it
 * to show that the module stays loaded while a region is mapped anywhere.
 */
#include "lockedmem.h"

int main(void)
{
	size_t len = 4 * sysconf(_SC_PAGESIZE);
	int fd = lockedmem_region(len);
	char *p;

	if (fd < 0) {
		perror("region");
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	p[0] = 1;
	close(fd);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
