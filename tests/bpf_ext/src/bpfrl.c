// SPDX-License-Identifier: GPL-2.0
/*
 * bpfrl: the guest side of tests/bpf_ext, linked with libbpf built from the kernel tree.
 *
 *   bpfrl attach OBJ IFNAME              load OBJ's tc program, attach it at IFNAME's tcx ingress,
 *                                        print "attached", hold it until killed
 *   bpfrl udp PORT COUNT                 send COUNT datagrams to 127.0.0.1:PORT, print
 *                                        "sent N received M"
 *   bpfrl sockfilter OBJ PORT COUNT [nobody]
 *                                        load OBJ's socket filter (as nobody: the object is
 *                                        prepared as root, its program loaded after dropping to
 *                                        uid 65534 and every capability), attach it to a UDP
 *                                        socket on PORT, send COUNT datagrams: print "loaded
 *                                        received M", or "rejected errno E" and exit 3
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int udp_socket(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 4 << 20;

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Room for every datagram: only the limiter may drop. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (port && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("bind");
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends @count datagrams to 127.0.0.1:@port, where @rx is bound; returns how many arrived. */
static int send_and_count(int rx, int port, int count)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int tx = udp_socket(0), received = 0, i;
	char buf[64] = "rust44";
	struct pollfd p = { .fd = rx, .events = POLLIN };

	if (tx < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < count; i++) {
		if (sendto(tx, buf, 16, 0, (struct sockaddr *)&a, sizeof(a)) != 16) {
			perror("sendto");
			close(tx);
			return -1;
		}
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			received++;
	}
	/* Stragglers: loopback delivers within sendto as a rule. */
	while (poll(&p, 1, 200) == 1 && recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		received++;
	close(tx);
	return received;
}

static struct bpf_object *open_obj(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	return obj;
}

static int cmd_attach(const char *path, const char *ifname)
{
	struct bpf_object *obj = open_obj(path);
	struct bpf_program *prog;
	struct bpf_link *link;
	int ifindex = if_nametoindex(ifname), err;

	if (!obj)
		return 1;
	if (!ifindex) {
		fprintf(stderr, "no interface %s\n", ifname);
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load: %s\n", strerror(-err));
		return 1;
	}
	prog = bpf_object__next_program(obj, NULL);
	link = bpf_program__attach_tcx(prog, ifindex, NULL);
	if (!link) {
		fprintf(stderr, "tcx attach: %s\n", strerror(errno));
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	/* The link goes when the process does. */
	for (;;)
		pause();
}

static int cmd_udp(int port, int count)
{
	int rx = udp_socket(port), got;

	if (rx < 0)
		return 1;
	got = send_and_count(rx, port, count);
	close(rx);
	if (got < 0)
		return 1;
	printf("sent %d received %d\n", count, got);
	return 0;
}

static int drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534)) {
		perror("dropping to nobody");
		return -1;
	}
	return 0;
}

static int cmd_sockfilter(const char *path, int port, int count, int nobody)
{
	struct bpf_object *obj = open_obj(path);
	int err, rx, fd, got;

	if (!obj)
		return 1;
	/* BTF, externs (the kfunc's module BTF) and relocations, with root's rights. */
	err = bpf_object__prepare(obj);
	if (err) {
		fprintf(stderr, "prepare: %s\n", strerror(-err));
		return 1;
	}
	if (nobody && drop_to_nobody())
		return 1;
	err = bpf_object__load(obj);
	if (err) {
		printf("rejected errno %d\n", -err);
		return 3;
	}
	fd = bpf_program__fd(bpf_object__next_program(obj, NULL));
	rx = udp_socket(port);
	if (rx < 0)
		return 1;
	if (setsockopt(rx, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd))) {
		perror("SO_ATTACH_BPF");
		return 1;
	}
	got = send_and_count(rx, port, count);
	if (got < 0)
		return 1;
	printf("loaded received %d\n", got);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(print_libbpf);
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return cmd_attach(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "udp"))
		return cmd_udp(atoi(argv[2]), atoi(argv[3]));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "sockfilter"))
		return cmd_sockfilter(argv[2], atoi(argv[3]), atoi(argv[4]),
				      argc == 6 && !strcmp(argv[5], "nobody"));
	fprintf(stderr, "usage: see the head of bpfrl.c\n");
	return 2;
}
