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
 *   bpfrl nobody OP [ARG]                as uid 65534 without capabilities (what is root's to
 *                                        look up is looked up first), try OP and print "ok" or
 *                                        "errno E" (exit 0 either way):
 *                                          mapcreate       BPF_MAP_CREATE of a 1-entry array
 *                                          tpbtf MOD:EVENT a minimal tp_btf program on MOD's
 *                                                          EVENT (its BTF looked up as root)
 *                                          objget PATH     BPF_OBJ_GET of a pin
 *                                          perf SYS:EVENT  perf_event_open counting that trace
 *                                                          event for this task, kernel included
 *   bpfrl root tpbtf MOD:EVENT           the same tp_btf load as root
 *   bpfrl jumps KO                       KO's jump table: "KEY nop|jmp|?" per static branch,
 *                                        its key's symbol and the instruction at the branch
 *   bpfrl udp PORT COUNT DST SRC NETNS   as udp, to DST:PORT from SRC, sent from the network
 *                                        namespace NETNS (a path, e.g. /run/netns/X) and
 *                                        received in this one
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <grp.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* A UDP socket bound to @addr:@port (@addr in network order; not bound for INADDR_ANY:0). */
static int udp_socket_at(in_addr_t addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 4 << 20;

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	/* Room for every datagram: only the limiter may drop. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if ((port || addr != htonl(INADDR_ANY)) && bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("bind");
		close(fd);
		return -1;
	}
	return fd;
}

static int udp_socket(int port)
{
	return udp_socket_at(htonl(INADDR_LOOPBACK), port);
}

/*
 * Sends @count datagrams from @tx to @dst:@port, where @rx is bound; returns how many arrived.
 * Closes @tx.
 */
static int send_from_and_count(int tx, int rx, in_addr_t dst, int port, int count)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = dst };
	int received = 0, i;
	char buf[64] = "rust44";
	struct pollfd p = { .fd = rx, .events = POLLIN };

	if (tx < 0)
		return -1;
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

/* Sends @count datagrams to 127.0.0.1:@port, where @rx is bound; returns how many arrived. */
static int send_and_count(int rx, int port, int count)
{
	return send_from_and_count(udp_socket_at(htonl(INADDR_ANY), 0), rx, htonl(INADDR_LOOPBACK), port, count);
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

/*
 * Receives on @dst:@port here and sends from @src in the network namespace @netns: the datagrams
 * cross whatever links the two namespaces (a veth pair).
 */
static int cmd_udp_netns(int port, int count, const char *dst, const char *src, const char *netns)
{
	in_addr_t d = inet_addr(dst), s = inet_addr(src);
	int rx, tx, nsfd, got;

	if (d == INADDR_NONE || s == INADDR_NONE) {
		fprintf(stderr, "bad address %s or %s\n", dst, src);
		return 1;
	}
	rx = udp_socket_at(d, port);
	if (rx < 0)
		return 1;
	nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
		fprintf(stderr, "entering %s: %s\n", netns, strerror(errno));
		return 1;
	}
	close(nsfd);
	/* Sockets keep the namespace they were made in: rx stays in the first. */
	tx = udp_socket_at(s, 0);
	got = send_from_and_count(tx, rx, d, port, count);
	close(rx);
	if (got < 0)
		return 1;
	printf("sent %d received %d\n", count, got);
	return 0;
}

/* What the code at a jump table entry is: the 2- or 5-byte nop or jmp x86 uses, or "?". */
static const char *insn_kind(Elf *elf, GElf_Sym *sym, GElf_Sxword addend)
{
	Elf_Scn *scn = elf_getscn(elf, sym->st_shndx);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	size_t at = sym->st_value + addend;
	const unsigned char *b;

	if (!d || !d->d_buf || at + 2 > d->d_size)
		return "?";
	b = (const unsigned char *)d->d_buf + at;
	if ((b[0] == 0x0f && b[1] == 0x1f) || (b[0] == 0x66 && b[1] == 0x90))
		return "nop";
	if (b[0] == 0xeb || b[0] == 0xe9)
		return "jmp";
	return "?";
}

/*
 * @path's jump table (.rela__jump_table of a .ko): every static branch in the module's code is
 * an entry (struct jump_entry: s32 code, s32 target, long key, each relocated); prints each
 * entry's key symbol (for a tracepoint __tracepoint_<event>) and the instruction at its code,
 * "nop" while the key is off as the kernel expects it at load. Exit 3 when there is no entry.
 */
static int cmd_jumps(const char *path)
{
	int fd = open(path, O_RDONLY), found = 0;
	Elf_Scn *scn = NULL, *symscn;
	size_t shstrndx;
	Elf *elf;

	if (fd < 0 || elf_version(EV_CURRENT) == EV_NONE) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getshdrstrndx(elf, &shstrndx)) {
		fprintf(stderr, "%s: not ELF: %s\n", path, elf_errmsg(-1));
		return 1;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh, symsh;
		Elf_Data *rel, *syms;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
		    strcmp(elf_strptr(elf, shstrndx, sh.sh_name), ".rela__jump_table"))
			continue;
		symscn = elf_getscn(elf, sh.sh_link);
		rel = elf_getdata(scn, NULL);
		syms = symscn ? elf_getdata(symscn, NULL) : NULL;
		if (!rel || !syms || !gelf_getshdr(symscn, &symsh))
			break;
		n = sh.sh_size / sh.sh_entsize;
		/* Each entry's code relocation (offset 0 in its 16 bytes), then its key's (8). */
		for (i = 0; i < n; i++) {
			GElf_Rela code, key;
			GElf_Sym csym, ksym;
			const char *name;
			size_t j;

			if (!gelf_getrela(rel, i, &code) || code.r_offset % 16 != 0 ||
			    !gelf_getsym(syms, GELF_R_SYM(code.r_info), &csym))
				continue;
			for (j = 0; j < n; j++)
				if (gelf_getrela(rel, j, &key) && key.r_offset == code.r_offset + 8)
					break;
			if (j == n || !gelf_getsym(syms, GELF_R_SYM(key.r_info), &ksym))
				continue;
			name = elf_strptr(elf, symsh.sh_link, ksym.st_name);
			printf("%s %s\n", name && *name ? name : "?", insn_kind(elf, &csym, code.r_addend));
			found++;
		}
	}
	elf_end(elf);
	close(fd);
	return found ? 0 : 3;
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

static int report(int ok)
{
	if (ok)
		printf("ok\n");
	else
		printf("errno %d\n", errno);
	return 0;
}

/* The id tracefs gives SYS:EVENT, or -1. */
static long trace_event_id(const char *event)
{
	char path[256], sys[64];
	const char *colon = strchr(event, ':');
	long id = -1;
	FILE *f;

	if (!colon || colon - event >= (long)sizeof(sys))
		return -1;
	memcpy(sys, event, colon - event);
	sys[colon - event] = 0;
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/%s/id", sys, colon + 1);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &id) != 1)
		id = -1;
	fclose(f);
	return id;
}

/* The fd of the loaded BTF object called @name (a module's), or -1. */
static int btf_obj_fd(const char *name)
{
	__u32 id = 0;

	while (!bpf_btf_get_next_id(id, &id)) {
		char got[64] = "";
		struct bpf_btf_info info = { .name = (__u64)(unsigned long)got, .name_len = sizeof(got) };
		__u32 len = sizeof(info);
		int fd = bpf_btf_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_btf_get_info_by_fd(fd, &info, &len) && !strcmp(got, name))
			return fd;
		close(fd);
	}
	return -1;
}

/*
 * What a tp_btf program on MOD:EVENT needs from root (the module's BTF object and the event's
 * btf_trace_<event> type in it); the load itself is the caller's.
 */
struct tpbtf {
	int btf_fd;
	__u32 type_id;
};

static int tpbtf_lookup(const char *arg, struct tpbtf *t)
{
	char mod[64];
	const char *colon = arg ? strchr(arg, ':') : NULL;
	struct btf *vmlinux, *btf;
	char type[128];
	int id;

	if (!colon || colon - arg >= (long)sizeof(mod))
		return -1;
	memcpy(mod, arg, colon - arg);
	mod[colon - arg] = 0;
	vmlinux = btf__load_vmlinux_btf();
	btf = vmlinux ? btf__load_module_btf(mod, vmlinux) : NULL;
	if (!btf) {
		fprintf(stderr, "no BTF for %s\n", mod);
		return -1;
	}
	snprintf(type, sizeof(type), "btf_trace_%s", colon + 1);
	id = btf__find_by_name_kind(btf, type, BTF_KIND_TYPEDEF);
	t->btf_fd = btf_obj_fd(mod);
	if (id < 0 || t->btf_fd < 0) {
		fprintf(stderr, "no %s in %s's BTF\n", type, mod);
		return -1;
	}
	t->type_id = id;
	return 0;
}

static int tpbtf_load(const struct tpbtf *t)
{
	/* r0 = 0; exit */
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_TRACE_RAW_TP,
		    .attach_btf_id = t->type_id, .attach_btf_obj_fd = t->btf_fd);

	return report(bpf_prog_load(BPF_PROG_TYPE_TRACING, "tpbtf", "GPL", insns, 2, &o) >= 0);
}

static int cmd_root(const char *op, const char *arg)
{
	struct tpbtf t;

	if (strcmp(op, "tpbtf"))
		return 2;
	if (tpbtf_lookup(arg, &t))
		return 1;
	return tpbtf_load(&t);
}

static int cmd_nobody(const char *op, const char *arg)
{
	struct tpbtf t;
	long id = -1;
	int fd;

	if (!strcmp(op, "tpbtf")) {
		if (tpbtf_lookup(arg, &t))
			return 1;
	} else if (!strcmp(op, "perf")) {
		id = arg ? trace_event_id(arg) : -1;
		if (id < 0) {
			fprintf(stderr, "no trace event %s\n", arg ? arg : "");
			return 1;
		}
	} else if (strcmp(op, "mapcreate") && strcmp(op, "objget")) {
		return 2;
	}
	if (drop_to_nobody())
		return 1;
	if (!strcmp(op, "mapcreate")) {
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nobody", 4, 8, 1, NULL);
		return report(fd >= 0);
	}
	if (!strcmp(op, "objget")) {
		fd = arg ? bpf_obj_get(arg) : -1;
		return report(fd >= 0);
	}
	if (!strcmp(op, "perf")) {
		struct perf_event_attr a = {
			.type = PERF_TYPE_TRACEPOINT,
			.size = sizeof(a),
			.config = id,
		};

		fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
		return report(fd >= 0);
	}
	return tpbtf_load(&t);
}

int main(int argc, char **argv)
{
	libbpf_set_print(print_libbpf);
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return cmd_attach(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "udp"))
		return cmd_udp(atoi(argv[2]), atoi(argv[3]));
	if (argc == 7 && !strcmp(argv[1], "udp"))
		return cmd_udp_netns(atoi(argv[2]), atoi(argv[3]), argv[4], argv[5], argv[6]);
	if (argc == 3 && !strcmp(argv[1], "jumps"))
		return cmd_jumps(argv[2]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "sockfilter"))
		return cmd_sockfilter(argv[2], atoi(argv[3]), atoi(argv[4]),
				      argc == 6 && !strcmp(argv[5], "nobody"));
	if (argc == 4 && !strcmp(argv[1], "root"))
		return cmd_root(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "nobody"))
		return cmd_nobody(argv[2], argc == 4 ? argv[3] : NULL);
	fprintf(stderr, "usage: see the head of bpfrl.c\n");
	return 2;
}
