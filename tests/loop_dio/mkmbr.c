// SPDX-License-Identifier: GPL-2.0
/*
 * mkmbr FILE START SECTORS [START SECTORS]...: writes an MBR partition table with up to four
 * primary Linux (0x83) partitions, in 512-byte sectors, into the first sector of FILE (the
 * guest has no sfdisk). The rest of FILE is left as it is.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

int main(int argc, char **argv)
{
	unsigned char mbr[512] = { 0 };
	int n = (argc - 2) / 2, fd;

	if (argc < 4 || argc % 2 || n > 4) {
		fprintf(stderr, "usage: mkmbr FILE START SECTORS [START SECTORS]...\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		unsigned char *e = mbr + 446 + 16 * i;

		memcpy(e, "\x00\xfe\xff\xff\x83\xfe\xff\xff", 8);
		put_le32(e + 8, strtoul(argv[2 + 2 * i], NULL, 0));
		put_le32(e + 12, strtoul(argv[3 + 2 * i], NULL, 0));
	}
	put_le32(mbr + 440, 0x52343434);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	fd = open(argv[1], O_WRONLY);
	if (fd < 0 || pwrite(fd, mbr, sizeof(mbr), 0) != sizeof(mbr) || fsync(fd)) {
		fprintf(stderr, "mkmbr: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}
