// SPDX-License-Identifier: GPL-2.0
/*
 * httpc: a raw HTTP client for the tcp_listener suite. Sends stdin as is to ADDR:PORT, shuts
 * down its side (unless -k) and copies what the server sends until it closes to stdout.
 *
 *   httpc [-b] [-k] [-n COUNT] [-s MS] [-r MS] [-m MSS] ADDR PORT <request
 *     -b        print only the body of the first response (after its empty line)
 *     -k        keep the sending side open: wait for the server to close
 *     -n COUNT  make COUNT connections one after another (stdin is read once); print the last
 *     -s MS     wait MS milliseconds after connecting, before sending
 *     -r MS     wait MS milliseconds after sending, before reading (a slow reader)
 *     -m MSS    TCP_MAXSEG: segments of at most MSS bytes, so the server's send buffer (sized
 *               by segments) is small and a response of a few hundred KiB fills it
 *
 * Exits 0 when every connection connected and the server closed it, 1 otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char req[1 << 20];
static size_t req_len;
static char resp[8 << 20];

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int mss;

static int one(const struct sockaddr_storage *sa, socklen_t len, int keep, int wait_ms,
	       int read_wait_ms, size_t *got)
{
	int fd = socket(sa->ss_family, SOCK_STREAM, 0);
	size_t off = 0;

	if (fd >= 0 && mss && setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0) {
		perror("httpc: TCP_MAXSEG");
		return 1;
	}
	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, len) < 0) {
		perror("httpc: connect");
		return 1;
	}
	if (wait_ms)
		sleep_ms(wait_ms);
	while (off < req_len) {
		ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);

		if (n <= 0) {
			perror("httpc: send");
			close(fd);
			return 1;
		}
		off += n;
	}
	if (!keep)
		shutdown(fd, SHUT_WR);
	if (read_wait_ms)
		sleep_ms(read_wait_ms);
	*got = 0;
	for (;;) {
		ssize_t n = recv(fd, resp + *got, sizeof(resp) - *got, 0);

		if (n == 0)
			break;
		if (n < 0) {
			perror("httpc: recv");
			close(fd);
			return 1;
		}
		*got += n;
		if (*got == sizeof(resp)) {
			fprintf(stderr, "httpc: response too long\n");
			close(fd);
			return 1;
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage sa = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&sa;
	int body = 0, keep = 0, count = 1, wait_ms = 0, read_wait_ms = 0, opt, i;
	socklen_t len;
	size_t got = 0;
	ssize_t n;

	while ((opt = getopt(argc, argv, "bkn:s:r:m:")) != -1) {
		switch (opt) {
		case 'b': body = 1; break;
		case 'k': keep = 1; break;
		case 'n': count = atoi(optarg); break;
		case 's': wait_ms = atoi(optarg); break;
		case 'r': read_wait_ms = atoi(optarg); break;
		case 'm': mss = atoi(optarg); break;
		default: return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: httpc [-b] [-k] [-n COUNT] [-s MS] [-r MS] [-m MSS] ADDR PORT <request\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[optind], &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(argv[optind + 1]));
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, argv[optind], &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(atoi(argv[optind + 1]));
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "httpc: bad address %s\n", argv[optind]);
		return 2;
	}
	while ((n = read(0, req + req_len, sizeof(req) - req_len)) > 0)
		req_len += n;
	for (i = 0; i < count; i++)
		if (one(&sa, len, keep, wait_ms, read_wait_ms, &got))
			return 1;
	if (body) {
		char *end = memmem(resp, got, "\r\n\r\n", 4);

		if (!end)
			return 1;
		end += 4;
		fwrite(end, 1, got - (end - resp), stdout);
	} else {
		fwrite(resp, 1, got, stdout);
	}
	return 0;
}
