// SPDX-License-Identifier: GPL-2.0
/*
 * The writer and checker of power-cut trials (tools/vm.sh trials, README "Power-cut trials").
 *
 *   powercut fill DEV SEED
 *       every 4 KiB block of DEV gets version 0 of this trial (seed SEED), then fdatasync.
 *   powercut age DEV SEED PERCENT
 *       after fill: writes PERCENT % of DEV's size again, in random runs of 1..64 blocks, each
 *       block its version 0 again, then fdatasync. The data stays what fill made it; a device
 *       that maps blocks (an FTL) now holds stale copies to collect, as after long use.
 *   powercut load DEV SEED TAG LOG [-t THREADS] [-l MAXBLOCKS] [-m direct|dsync|fdatasync]
 *                 [-n WRITES] [-r READYFILE] [-L LIE]
 *       THREADS threads (one write in flight each) write runs of 1..MAXBLOCKS blocks at random
 *       places with O_DIRECT (dsync: O_DSYNC too, i.e. FUA writes; fdatasync: one after each
 *       write, before its ack). Each write gets the next sequence number, which every block it
 *       writes holds as its version. Before a write is submitted, "TAG I SEQ START LEN" is on LOG;
 *       after it completed, "TAG A SEQ". LOG is a serial port (tcdrain: the line is on the host
 *       before the writer goes on) or a file (fdatasync). A block is in one write at a time, so
 *       its versions only grow. READYFILE is created after the first 64 acks. Runs until killed,
 *       or for WRITES writes. -L LIE (a broken writer, to show the checker catches it): every
 *       LIE-th write is acknowledged without being written.
 *   powercut check DEV SEED TAG LOG
 *       reads every block and classifies it against LOG's lines of TAG:
 *         ok       a valid block of this trial holding its last acknowledged version (version 0
 *                  of the fill when none was) or the version of its last issued write
 *         lost     a valid block older than its last acknowledged version
 *         corrupt  not exactly a block of this trial for this place (magic, number, seed,
 *                  and every byte as the version it names would have it)
 *         changed  a valid block whose version was never issued for it (written though it was
 *                  not: a never-written block must keep version 0)
 *       Prints "TAG blocks=.. written=.. acked=.. ok=.. lost=.. corrupt=.. changed=.. at_rest=..
 *       issued=.. acks=.." (at_rest: bad blocks that had no write in flight at the cut) and the
 *       first bad blocks; exits 1 when any block is not ok, 2 on errors.
 *   powercut corrupt DEV BLOCK
 *       overwrites one block with garbage (a block the checker must call corrupt).
 *   powercut selftest
 *       the block checks reject what RAID5's write hole and torn writes make.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <linux/fs.h>

#define BS 4096
#define MAGIC 0x3130545543343452ULL /* "R44CUT01" */
#define CRC_AT (BS - 4)
#define FILL_BLOCKS 256

struct hdr {
	uint64_t magic, block, version, seed;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "powercut: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (c & 1 ? 0x82f63b78 : 0); /* CRC32C, reflected */
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Block BLOCK at VERSION of trial SEED: a header, payload derived from all three, a CRC. */
static void make_block(uint8_t *b, uint64_t seed, uint64_t block, uint64_t version)
{
	struct hdr h = { MAGIC, block, version, seed };
	uint64_t x = mix(seed ^ mix(block ^ mix(version)));

	memcpy(b, &h, sizeof(h));
	for (size_t i = sizeof(h); i < CRC_AT; i += 8) {
		x = mix(x + 0x9e3779b97f4a7c15ULL);
		memcpy(b + i, &x, CRC_AT - i < 8 ? CRC_AT - i : 8);
	}
	uint32_t crc = crc32c(b, CRC_AT);

	memcpy(b + CRC_AT, &crc, 4);
}

/*
 * 1 when B is exactly block BLOCK of trial SEED at the version its header names (in *version).
 * The CRC alone would not do: CRC32C is linear, so the XOR of three valid blocks of one place
 * (what RAID5 rebuilds from a stale parity: D ^ Y_old ^ Y_new) has a valid CRC, the right magic,
 * number and seed, and a version that is the XOR of the three. The whole block is compared.
 */
static int parse_block(const uint8_t *b, uint64_t seed, uint64_t block, uint64_t *version)
{
	static __thread uint8_t want[BS];
	struct hdr h;

	memcpy(&h, b, sizeof(h));
	if (h.magic != MAGIC || h.block != block || h.seed != seed)
		return 0;
	make_block(want, seed, block, h.version);
	if (memcmp(want, b, BS))
		return 0;
	*version = h.version;
	return 1;
}

static void *aligned(size_t n)
{
	void *p;

	if (posix_memalign(&p, BS, n))
		die("out of memory");
	return p;
}

static uint64_t device_blocks(int fd)
{
	uint64_t bytes;
	struct stat st;

	if (fstat(fd, &st))
		die("fstat: %s", strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes))
			die("BLKGETSIZE64: %s", strerror(errno));
	} else {
		bytes = st.st_size;
	}
	if (bytes < BS)
		die("the device holds no block");
	return bytes / BS;
}

static void pwrite_all(int fd, const void *b, size_t n, off_t off)
{
	ssize_t r = pwrite(fd, b, n, off);

	if (r != (ssize_t)n)
		die("write of %zu bytes at %lld: %s", n, (long long)off, r < 0 ? strerror(errno) : "short");
}

static int cmd_fill(const char *dev, uint64_t seed)
{
	int fd = open(dev, O_WRONLY | O_DIRECT);
	uint8_t *buf = aligned(FILL_BLOCKS * BS);

	if (fd < 0)
		die("%s: %s", dev, strerror(errno));
	uint64_t n = device_blocks(fd);

	for (uint64_t b = 0; b < n; b += FILL_BLOCKS) {
		uint64_t k = n - b < FILL_BLOCKS ? n - b : FILL_BLOCKS;

		for (uint64_t i = 0; i < k; i++)
			make_block(buf + i * BS, seed, b + i, 0);
		pwrite_all(fd, buf, k * BS, b * BS);
	}
	if (fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	printf("filled %llu blocks\n", (unsigned long long)n);
	return 0;
}

static int cmd_age(const char *dev, uint64_t seed, uint64_t percent)
{
	int fd = open(dev, O_WRONLY | O_DIRECT);
	uint8_t *buf = aligned(64 * BS);
	uint64_t x = mix(seed ^ 0x6167650000000000ULL), written = 0;

	if (fd < 0)
		die("%s: %s", dev, strerror(errno));
	uint64_t n = device_blocks(fd), want = n * percent / 100;

	while (written < want) {
		x = mix(x + 1);
		uint64_t start = x % n, len = 1 + (x >> 32) % 64;

		if (len > n - start)
			len = n - start;
		for (uint64_t i = 0; i < len; i++)
			make_block(buf + i * BS, seed, start + i, 0);
		pwrite_all(fd, buf, len * BS, start * BS);
		written += len;
	}
	if (fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	printf("aged %llu of %llu blocks\n", (unsigned long long)written, (unsigned long long)n);
	return 0;
}

/*
 * The acknowledgement log, committed in groups: a thread appends its line and waits until a
 * flush that started after the append is done; one thread at a time writes out everything
 * appended so far and drains it, for every waiter.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t done;
	char buf[2][1 << 16];
	size_t len;
	int cur, busy, fd, tty;
	uint64_t appended, flushed;
} lg = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void log_line(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lg.lock);
	if (lg.len + n > sizeof(lg.buf[0]))
		die("log buffer full");
	memcpy(lg.buf[lg.cur] + lg.len, line, n);
	lg.len += n;
	uint64_t me = ++lg.appended;

	while (lg.flushed < me) {
		if (lg.busy) {
			pthread_cond_wait(&lg.done, &lg.lock);
			continue;
		}
		char *out = lg.buf[lg.cur];
		size_t len = lg.len;
		uint64_t upto = lg.appended;

		lg.busy = 1;
		lg.cur ^= 1;
		lg.len = 0;
		pthread_mutex_unlock(&lg.lock);
		for (size_t off = 0; off < len;) {
			ssize_t w = write(lg.fd, out + off, len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				die("log write: %s", strerror(errno));
			off += w;
		}
		/* On the host (serial port emptied) or on the disk before anyone goes on. */
		if (lg.tty ? tcdrain(lg.fd) : fdatasync(lg.fd))
			die("log drain: %s", strerror(errno));
		pthread_mutex_lock(&lg.lock);
		lg.flushed = upto;
		lg.busy = 0;
		pthread_cond_broadcast(&lg.done);
	}
	pthread_mutex_unlock(&lg.lock);
}

static struct {
	int fd, sync_mode, maxlen, lie;
	uint64_t seed, nblocks, limit;
	const char *tag, *ready;
	uint8_t *busy;
	uint64_t seq, acks;
} ld;

enum { MODE_DIRECT, MODE_DSYNC, MODE_FDATASYNC };

static uint64_t next_rand(uint64_t *s)
{
	*s = mix(*s + 0x9e3779b97f4a7c15ULL);
	return *s;
}

/* Takes blocks [start, start + len) for this thread, or none when one is in another's write. */
static int take(uint64_t start, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++) {
		uint8_t free = 0;

		if (!__atomic_compare_exchange_n(&ld.busy[start + i], &free, 1, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED)) {
			while (i--)
				__atomic_store_n(&ld.busy[start + i], 0, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return 1;
}

static void *writer(void *arg)
{
	uint64_t rnd = ld.seed ^ mix((uintptr_t)arg + 1);
	uint8_t *buf = aligned((size_t)ld.maxlen * BS);

	for (;;) {
		uint64_t start = next_rand(&rnd) % ld.nblocks;
		uint64_t len = 1 + next_rand(&rnd) % ld.maxlen;

		if (start + len > ld.nblocks)
			len = ld.nblocks - start;
		if (!take(start, len))
			continue;
		uint64_t seq = __atomic_add_fetch(&ld.seq, 1, __ATOMIC_RELAXED);

		if (ld.limit && seq > ld.limit)
			break;
		for (uint64_t i = 0; i < len; i++)
			make_block(buf + i * BS, ld.seed, start + i, seq);
		log_line("%s I %llu %llu %llu\n", ld.tag, (unsigned long long)seq,
			 (unsigned long long)start, (unsigned long long)len);
		if (!(ld.lie && seq % ld.lie == 0)) {
			pwrite_all(ld.fd, buf, len * BS, start * BS);
			if (ld.sync_mode == MODE_FDATASYNC && fdatasync(ld.fd))
				die("fdatasync: %s", strerror(errno));
		}
		log_line("%s A %llu\n", ld.tag, (unsigned long long)seq);
		for (uint64_t i = 0; i < len; i++)
			__atomic_store_n(&ld.busy[start + i], 0, __ATOMIC_RELEASE);
		if (__atomic_add_fetch(&ld.acks, 1, __ATOMIC_RELAXED) == 64 && ld.ready) {
			int r = open(ld.ready, O_WRONLY | O_CREAT, 0644);

			if (r >= 0)
				close(r);
		}
	}
	free(buf);
	return NULL;
}

static int cmd_load(int argc, char **argv)
{
	int threads = 16, opt;
	const char *mode = "direct";

	ld.maxlen = 1;
	while ((opt = getopt(argc, argv, "t:l:m:n:r:L:")) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 'l': ld.maxlen = atoi(optarg); break;
		case 'm': mode = optarg; break;
		case 'n': ld.limit = strtoull(optarg, NULL, 0); break;
		case 'r': ld.ready = optarg; break;
		case 'L': ld.lie = atoi(optarg); break;
		default: die("unknown option");
		}
	}
	if (argc - optind != 4 || threads < 1 || threads > 256 || ld.maxlen < 1 || ld.maxlen > 256)
		die("usage: powercut load DEV SEED TAG LOG [-t THREADS] [-l MAXBLOCKS] [-m MODE] [-n WRITES] [-r READYFILE] [-L LIE]");
	int flags = O_RDWR | O_DIRECT;

	if (!strcmp(mode, "dsync")) {
		ld.sync_mode = MODE_DSYNC;
		flags |= O_DSYNC;
	} else if (!strcmp(mode, "fdatasync")) {
		ld.sync_mode = MODE_FDATASYNC;
	} else if (strcmp(mode, "direct")) {
		die("mode is direct, dsync or fdatasync, not %s", mode);
	}
	ld.fd = open(argv[optind], flags);
	if (ld.fd < 0)
		die("%s: %s", argv[optind], strerror(errno));
	ld.seed = strtoull(argv[optind + 1], NULL, 0);
	ld.tag = argv[optind + 2];
	ld.nblocks = device_blocks(ld.fd);
	ld.busy = calloc(ld.nblocks, 1);
	lg.fd = open(argv[optind + 3], O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY, 0644);
	if (lg.fd < 0 || !ld.busy)
		die("%s: %s", argv[optind + 3], strerror(errno));
	lg.tty = isatty(lg.fd);

	pthread_t tid[256];

	for (long i = 0; i < threads; i++)
		if (pthread_create(&tid[i], NULL, writer, (void *)i))
			die("pthread_create");
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	printf("%s: %llu writes acknowledged\n", ld.tag, (unsigned long long)ld.acks);
	return 0;
}

struct range {
	uint64_t start, len;
};

static int cmd_check(const char *dev, uint64_t seed, const char *tag, const char *logpath)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	FILE *log = fopen(logpath, "r");

	if (fd < 0)
		die("%s: %s", dev, strerror(errno));
	if (!log)
		die("%s: %s", logpath, strerror(errno));
	uint64_t n = device_blocks(fd);
	uint64_t *acked = calloc(n, 8), *issued = calloc(n, 8);
	struct range *writes = NULL;
	uint64_t nwrites = 0, cap = 0, nissued = 0, nacks = 0;
	char line[256], t[64], kind;
	unsigned long long seq, start, len;

	if (!acked || !issued)
		die("out of memory");
	while (fgets(line, sizeof(line), log)) {
		/* A line the cut tore (no newline) was never drained, so it is not an ack. */
		if (!strchr(line, '\n'))
			continue;
		if (sscanf(line, "%63s %c %llu", t, &kind, &seq) != 3 || strcmp(t, tag))
			continue;
		if (kind == 'I') {
			if (sscanf(line, "%*s %*c %*u %llu %llu", &start, &len) != 2 || !len ||
			    start + len > n || seq == 0)
				die("bad log line: %s", line);
			if (seq >= cap) {
				cap = (seq + 1) * 2;
				writes = realloc(writes, cap * sizeof(*writes));
				if (!writes)
					die("out of memory");
			}
			while (nwrites <= seq)
				writes[nwrites++] = (struct range){ 0, 0 };
			writes[seq] = (struct range){ start, len };
			nissued++;
			for (uint64_t b = start; b < start + len; b++)
				if (issued[b] < seq)
					issued[b] = seq;
		} else if (kind == 'A') {
			if (seq >= nwrites || !writes[seq].len)
				die("ack of write %llu, which was never issued", seq);
			nacks++;
			for (uint64_t b = writes[seq].start; b < writes[seq].start + writes[seq].len; b++)
				if (acked[b] < seq)
					acked[b] = seq;
		}
	}
	fclose(log);

	uint8_t *buf = aligned(FILL_BLOCKS * BS);
	uint64_t ok = 0, lost = 0, corrupt = 0, changed = 0, written = 0, nacked = 0, shown = 0;
	uint64_t at_rest = 0;

	for (uint64_t b0 = 0; b0 < n; b0 += FILL_BLOCKS) {
		uint64_t k = n - b0 < FILL_BLOCKS ? n - b0 : FILL_BLOCKS;
		ssize_t r = pread(fd, buf, k * BS, b0 * BS);

		if (r != (ssize_t)(k * BS))
			die("read at block %llu: %s", (unsigned long long)b0, r < 0 ? strerror(errno) : "short");
		for (uint64_t i = 0; i < k; i++) {
			uint64_t b = b0 + i, v;
			const char *what = NULL;

			written += issued[b] != 0;
			nacked += acked[b] != 0;
			if (!parse_block(buf + i * BS, seed, b, &v)) {
				corrupt++;
				what = "corrupt";
			} else if (v == acked[b] || v == issued[b]) {
				ok++;
			} else if (v < acked[b]) {
				lost++;
				what = "lost";
			} else {
				changed++;
				what = "changed";
			}
			/* Bad though no write to it was in flight at the cut: data at rest damaged. */
			if (what && issued[b] == acked[b])
				at_rest++;
			if (what && shown++ < 8) {
				struct hdr h;

				memcpy(&h, buf + i * BS, sizeof(h));
				printf("%s %s: block %llu holds version %llu of block %llu (seed %llu%s); last acked %llu, last issued %llu\n",
				       tag, what, (unsigned long long)b, (unsigned long long)h.version,
				       (unsigned long long)h.block, (unsigned long long)h.seed,
				       h.magic == MAGIC ? "" : ", no magic", (unsigned long long)acked[b],
				       (unsigned long long)issued[b]);
			}
		}
	}
	printf("%s blocks=%llu written=%llu acked=%llu ok=%llu lost=%llu corrupt=%llu changed=%llu at_rest=%llu issued=%llu acks=%llu\n",
	       tag, (unsigned long long)n, (unsigned long long)written, (unsigned long long)nacked,
	       (unsigned long long)ok, (unsigned long long)lost, (unsigned long long)corrupt,
	       (unsigned long long)changed, (unsigned long long)at_rest, (unsigned long long)nissued,
	       (unsigned long long)nacks);
	return ok == n ? 0 : 1;
}

static int cmd_corrupt(const char *dev, uint64_t block)
{
	int fd = open(dev, O_WRONLY | O_DIRECT);
	uint8_t *buf = aligned(BS);

	if (fd < 0)
		die("%s: %s", dev, strerror(errno));
	if (block >= device_blocks(fd))
		die("no block %llu", (unsigned long long)block);
	/* A valid block of another place: only its number is wrong. */
	make_block(buf, 0, block + 1, 1);
	pwrite_all(fd, buf, BS, block * BS);
	if (fdatasync(fd))
		die("fdatasync: %s", strerror(errno));
	return 0;
}

static int expect(int cond, const char *what)
{
	printf("%s %s\n", cond ? "ok:" : "FAILED:", what);
	return !cond;
}

static int cmd_selftest(void)
{
	uint8_t *a = aligned(BS), *b = aligned(BS), *c = aligned(BS);
	uint64_t v = 0;
	uint32_t crc;
	int bad = 0;

	make_block(a, 9, 100, 3);
	bad |= expect(parse_block(a, 9, 100, &v) && v == 3, "a block reads back as its version");
	bad |= expect(!parse_block(a, 9, 101, &v) && !parse_block(a, 8, 100, &v),
		      "a block of another place or trial is refused");
	/* A parity rebuild from a stale parity: D ^ Y_old ^ Y_new, all of one place here. */
	make_block(b, 9, 100, 5);
	make_block(c, 9, 100, 6);
	for (int i = 0; i < BS; i++)
		a[i] ^= b[i] ^ c[i];
	memcpy(&crc, a + CRC_AT, 4);
	bad |= expect(crc == crc32c(a, CRC_AT), "the XOR of three blocks has a valid CRC32C");
	bad |= expect(!parse_block(a, 9, 100, &v), "and is refused");
	/* A torn write: the first half new, the rest old. */
	make_block(a, 9, 100, 3);
	memcpy(a + BS / 2, b + BS / 2, BS / 2);
	bad |= expect(!parse_block(a, 9, 100, &v), "a torn block is refused");
	make_block(a, 9, 100, 3);
	a[2000] ^= 1;
	bad |= expect(!parse_block(a, 9, 100, &v), "a flipped bit is refused");
	return bad;
}

int main(int argc, char **argv)
{
	crc_init();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], strtoull(argv[3], NULL, 0));
	if (argc >= 5 && !strcmp(argv[1], "age"))
		return cmd_age(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return cmd_load(argc - 1, argv + 1);
	if (argc >= 6 && !strcmp(argv[1], "check"))
		return cmd_check(argv[2], strtoull(argv[3], NULL, 0), argv[4], argv[5]);
	if (argc >= 4 && !strcmp(argv[1], "corrupt"))
		return cmd_corrupt(argv[2], strtoull(argv[3], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "selftest"))
		return cmd_selftest();
	fprintf(stderr, "usage: powercut fill DEV SEED | age DEV SEED PERCENT | load DEV SEED TAG LOG [options] | check DEV SEED TAG LOG | corrupt DEV BLOCK | selftest\n");
	return 2;
}
