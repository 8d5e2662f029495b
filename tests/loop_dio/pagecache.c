// SPDX-License-Identifier: GPL-2.0
/*
 * pagecache FILE: prints how many of FILE's pages are in the page cache, then the file's size
 * in pages ("RESIDENT TOTAL"), from mincore(2) over a read-only shared mapping. Mapping the
 * file faults nothing in: mincore only looks.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long psz = sysconf(_SC_PAGESIZE);
	unsigned long resident = 0, pages;
	unsigned char *vec;
	struct stat st;
	void *map;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: pagecache FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "pagecache: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	pages = (st.st_size + psz - 1) / psz;
	if (!pages) {
		printf("0 0\n");
		return 0;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	vec = malloc(pages);
	if (map == MAP_FAILED || !vec || mincore(map, st.st_size, vec)) {
		fprintf(stderr, "pagecache: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (unsigned long i = 0; i < pages; i++)
		resident += vec[i] & 1;
	printf("%lu %lu\n", resident, pages);
	return 0;
}
