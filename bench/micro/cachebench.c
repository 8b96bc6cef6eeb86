// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cachebench: the cache alone, no FUSE, against the device layer's raw
 * throughput. A tiny in-process filesystem (the model is
 * tests/unit/test_cache.c) implements struct ff_cache_ops over an
 * emulated-zoned image: file 0 is conventional zone 0 (mapped in place),
 * file 1 is sequential zone 1 (appended through the zone queue in file
 * order, as zonefs maps it).
 * Raw runs use conventional zone 0 and sequential zone 2.
 *
 * It measures, printing tables:
 *   1. write amplification of 4 KiB FF_CW_DSYNC writes into a cached 2 MiB
 *      folio (a 2 MiB read first caches it) in the three modes: write-through
 *      with per-block state (default), sync_mode=writeback,
 *      dirty_granularity=folio: device bytes written / user bytes;
 *   2. cached (hit) 4 KiB and 1 MiB reads against raw ff_dev_read;
 *   3. write-through 4 KiB and 1 MiB sync writes, in place on the
 *      conventional zone and appended to the sequential zone, against raw
 *      ff_dev_write(FF_IO_DSYNC) (conventional) and ff_zoneq_append(FF_IO_DSYNC)
 *      (sequential: the zone queue is the only path there; single-threaded it
 *      adds a mutex round trip to ff_dev_write).
 * The machine is shared, so each cache/raw pair alternates in short slices
 * (SLICES per round, --secs per side per round), ROUNDS rounds; medians and
 * the median of the per-round ratios are reported.
 *
 *   cachebench [--dir DIR] [--rounds N] [--secs S] [--wa-writes N]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/cache.h"
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"

#define ZS	   (256ull << 20)
#define NZONES	   4 /* zone 0 conventional, 1..3 sequential */
#define BLK	   4096u
#define FOLIO	   (2u << 20)
#define READ_SPAN  (64ull << 20) /* cached region of file 0 for the read tests */
#define MAX_ROUNDS 15
#define SLICES	   10 /* a pair alternates in this many slices per round */

struct bfile {
	uint32_t zone;
	bool seq;
	_Atomic uint64_t size; /* bytes the user wrote (sequential: the file size) */
	struct ff_cinode *ci;
};

static struct ff_dev *g_dev;

static int b_map_read(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m)
{
	struct bfile *f = fs_inode;
	uint64_t zs = (uint64_t)f->zone * ZS;
	uint64_t end = f->seq ? ff_zoneq_wp(g_dev, f->zone) - zs : ZS;

	m->file_off = off;
	m->zone = f->zone;
	if (off >= end) {
		m->type = FF_MAP_HOLE;
		m->len = len;
		return 0;
	}
	m->type = FF_MAP_INPLACE;
	m->dev_off = zs + off;
	m->len = end - off < len ? end - off : len;
	return 0;
}

/* zonefs-like: in place, or appended at the zone's pointer in file order; see zonefs.c */
static int b_map_write(void *fs_inode, uint64_t off, uint64_t len, unsigned flags, struct ff_map *m)
{
	struct bfile *f = fs_inode;
	uint64_t zs = (uint64_t)f->zone * ZS, rp;

	m->zone = f->zone;
	m->file_off = off;
	m->dev_off = zs + off;
	if (!f->seq) {
		m->type = FF_MAP_INPLACE;
		m->len = len;
		return 0;
	}
	rp = ff_zoneq_wp(g_dev, f->zone) - zs;
	if (rp < off) {
		int ret = ff_cache_writeback_range(f->ci, rp, off,
						   flags & FF_MAPW_SYNC ? FF_CW_DSYNC : 0);

		if (ret)
			return ret;
		rp = ff_zoneq_wp(g_dev, f->zone) - zs;
		if (rp != off)
			return -EIO;
	}
	if (rp > off) {
		m->type = FF_MAP_STORED;
		m->len = rp - off < len ? rp - off : len;
		return 0;
	}
	m->type = FF_MAP_APPEND;
	m->len = (flags & FF_MAPW_TAIL) ? len - BLK : len;
	return 0;
}

static int b_write_done(void *fs_inode, const struct ff_map *m, uint64_t landed_at, ssize_t result,
			unsigned flags)
{
	(void)fs_inode;
	(void)m;
	(void)landed_at;
	(void)result;
	(void)flags;
	return 0; /* no metadata: zonefs-like, the device is the metadata */
}

static const struct ff_cache_ops bops = {b_map_read, b_map_write, b_write_done, NULL};

enum test_kind {
	T_READ_CACHE, /* hit in file 0's cached READ_SPAN */
	T_READ_RAW,   /* ff_dev_read in zone 0 */
	T_WT_CNV,     /* write-through in place, file 0 */
	T_RAW_CNV,    /* ff_dev_write DSYNC, zone 0 */
	T_WT_SEQ,     /* write-through appends, file 1 (zone 1) */
	T_RAW_SEQ,    /* ff_zoneq_append DSYNC, zone 2 */
	T_NR,
};

struct bench {
	struct ff_dev *dev;
	struct ff_cache *c;
	struct bfile f[2];
	void *buf; /* FOLIO bytes, aligned */
	double secs;
	uint64_t rng;
	uint64_t seq_pos[T_NR]; /* bytes appended so far by each sequential kind */
};

static uint64_t rnd(struct bench *b)
{
	b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
	return b->rng >> 33;
}

static void die(const char *what, long err)
{
	fprintf(stderr, "cachebench: %s: %s\n", what, strerror((int)-err));
	exit(1);
}

static void cache_open(struct bench *b, const struct ff_cache_opts *o)
{
	int ret = ff_cache_create(b->dev, &bops, o, &b->c);

	if (ret)
		die("ff_cache_create", ret);
	for (int i = 0; i < 2; i++) {
		b->f[i].ci = ff_cache_inode_new(b->c, &b->f[i]);
		if (!b->f[i].ci)
			die("ff_cache_inode_new", -ENOMEM);
		ff_cache_inode_set_size(b->f[i].ci, atomic_load(&b->f[i].size));
	}
}

static void cache_close(struct bench *b)
{
	int ret = ff_cache_destroy(b->c);

	if (ret)
		die("ff_cache_destroy", ret);
	b->c = NULL;
}

static void zone_reset(struct bench *b, uint32_t zone)
{
	int ret = ff_zoneq_zone_op(b->dev, zone, FF_ZOP_RESET);

	if (ret)
		die("zone reset", ret);
}

/* ---- 1. write amplification ---- */

struct wa_row {
	const char *name;
	double wa, iops;
	uint64_t dev_bytes, dev_writes, flushes, user_bytes;
	unsigned big_folios;
};

/* A WA row from the device counters around nwrites 4 KiB writes taking ns. */
static void fill_row(struct wa_row *r, const struct ff_dev_stats *s0, const struct ff_dev_stats *s1,
		     int nwrites, uint64_t ns)
{
	r->user_bytes = (uint64_t)nwrites * BLK;
	r->dev_bytes = s1->bytes_written - s0->bytes_written + s1->meta_bytes - s0->meta_bytes;
	r->dev_writes = s1->writes - s0->writes;
	r->flushes = s1->flushes - s0->flushes;
	r->wa = (double)r->dev_bytes / (double)r->user_bytes;
	r->iops = nwrites / ((double)ns / 1e9);
}

static void run_wa(struct bench *b, const struct ff_cache_opts *o, int nwrites, struct wa_row *r)
{
	struct ff_dev_stats s0, s1;
	struct ff_cache_stats cs;
	uint64_t t0, t1;
	ssize_t n;

	cache_open(b, o);
	n = ff_cache_read(b->f[0].ci, b->buf, FOLIO, 0, 0);
	if (n != FOLIO)
		die("WA: 2 MiB read", n < 0 ? n : -EIO);
	ff_cache_stats(b->c, &cs);
	r->big_folios = (unsigned)cs.folios_by_order[21];
	ff_dev_stats(b->dev, &s0);
	t0 = ff_now_ns();
	for (int i = 0; i < nwrites; i++) {
		uint64_t off = rnd(b) % (FOLIO / BLK) * BLK;

		n = ff_cache_write(b->f[0].ci, b->buf, BLK, off, FF_CW_DSYNC);
		if (n != BLK)
			die("WA: 4 KiB DSYNC write", n < 0 ? n : -EIO);
	}
	t1 = ff_now_ns();
	ff_dev_stats(b->dev, &s1);
	cache_close(b);
	fill_row(r, &s0, &s1, nwrites, t1 - t0);
}

/*
 * The same count of 4 KiB DSYNC writes as appends to the sequential file:
 * the emulated device also writes its write-pointer record (meta_bytes).
 */
static int run_wa_seq(struct bench *b, const struct ff_cache_opts *o, int nwrites, struct wa_row *r)
{
	struct bfile *sf = &b->f[1];
	struct ff_dev_stats s0, s1;
	uint64_t t0, t1;

	zone_reset(b, sf->zone);
	atomic_store(&sf->size, 0);
	cache_open(b, o);
	ff_dev_stats(b->dev, &s0);
	t0 = ff_now_ns();
	for (int i = 0; i < nwrites; i++) {
		uint64_t off = (uint64_t)i * BLK;
		ssize_t n;

		atomic_store(&sf->size, off + BLK);
		ff_cache_inode_set_size(sf->ci, off + BLK);
		n = ff_cache_write(sf->ci, b->buf, BLK, off, FF_CW_DSYNC);
		if (n != BLK) {
			/* a failed write: leave the zone empty for the next mode */
			ff_cache_destroy(b->c);
			b->c = NULL;
			zone_reset(b, sf->zone);
			return n < 0 ? (int)n : -EIO;
		}
	}
	t1 = ff_now_ns();
	ff_dev_stats(b->dev, &s1);
	cache_close(b);
	r->big_folios = 0;
	fill_row(r, &s0, &s1, nwrites, t1 - t0);
	return 0;
}

/* ---- 2, 3. throughput ---- */

/* Time and bytes one side of a pair has accumulated over its slices. */
struct tp_acc {
	uint64_t ns, bytes, ops;
	uint64_t dev_writes; /* device writes issued during the slices */
};

/* Empty the sequential zone a kind appends to (not timed). */
static void seq_rewind(struct bench *b, enum test_kind k)
{
	struct bfile *sf = &b->f[1];

	if (k == T_WT_SEQ) {
		ff_cache_invalidate_begin(sf->ci);
		ff_cache_truncate(sf->ci, 0);
		zone_reset(b, sf->zone);
		atomic_store(&sf->size, 0);
		ff_cache_inode_set_size(sf->ci, 0);
		ff_cache_invalidate_end(sf->ci);
	} else if (k == T_RAW_SEQ) {
		zone_reset(b, 2);
	}
	b->seq_pos[k] = 0;
}

/*
 * One slice of slice_ns of test k with bs-byte I/Os, added to *acc.
 * Sequential kinds go on appending where their previous slice stopped and
 * rewind (untimed) when the zone is full.
 */
static void run_slice(struct bench *b, enum test_kind k, size_t bs, uint64_t slice_ns,
		      struct tp_acc *acc)
{
	struct iovec iov = {b->buf, bs};
	uint64_t spans = READ_SPAN / bs, t0, t1, now, bytes = 0;
	struct bfile *sf = &b->f[1];

	struct ff_dev_stats s0, s1;

	if ((k == T_WT_SEQ || k == T_RAW_SEQ) && b->seq_pos[k] + 64 * bs > ZS)
		seq_rewind(b, k);
	ff_dev_stats(b->dev, &s0);
	t0 = ff_now_ns();
	for (;;) {
		uint64_t off = rnd(b) % spans * bs, pos = b->seq_pos[k];
		ssize_t n;

		switch (k) {
		case T_READ_CACHE:
			n = ff_cache_read(b->f[0].ci, b->buf, bs, off, 0);
			break;
		case T_READ_RAW:
			n = ff_dev_read(b->dev, &iov, 1, off);
			break;
		case T_WT_CNV:
			n = ff_cache_write(b->f[0].ci, b->buf, bs, off, FF_CW_DSYNC);
			break;
		case T_RAW_CNV:
			n = ff_dev_write(b->dev, &iov, 1, off, FF_IO_DSYNC);
			break;
		case T_WT_SEQ:
			if (pos + bs > ZS)
				goto out;
			atomic_store(&sf->size, pos + bs);
			ff_cache_inode_set_size(sf->ci, pos + bs);
			n = ff_cache_write(sf->ci, b->buf, bs, pos, FF_CW_DSYNC);
			break;
		case T_RAW_SEQ:
			if (pos + bs > ZS)
				goto out;
			n = ff_zoneq_append(b->dev, 2, &iov, 1, FF_IO_DSYNC, NULL);
			break;
		default:
			n = -EINVAL;
		}
		if (n != (ssize_t)bs)
			die("throughput I/O", n < 0 ? n : -EIO);
		bytes += bs;
		b->seq_pos[k] = pos + bs;
		now = ff_now_ns();
		if (now - t0 >= slice_ns)
			break;
	}
out:
	t1 = ff_now_ns();
	ff_dev_stats(b->dev, &s1);
	acc->ns += t1 - t0;
	acc->bytes += bytes;
	acc->ops += bytes / bs;
	acc->dev_writes += s1.writes - s0.writes;
}

static double mibs(const struct tp_acc *a)
{
	return (double)a->bytes / (1 << 20) / ((double)a->ns / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Write the whole image once so that no run pays the image file's block allocation. */
static int prefill(const char *path, uint64_t size)
{
	void *z = NULL;
	int fd, ret = 0;

	if (posix_memalign(&z, 4096, 4 << 20))
		return -ENOMEM;
	memset(z, 0, 4 << 20);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	for (uint64_t off = 0; off < size; off += 4 << 20) {
		if (pwrite(fd, z, 4 << 20, (off_t)off) != 4 << 20) {
			ret = -EIO;
			break;
		}
	}
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
out_free:
	free(z);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"dir", required_argument, NULL, 'd'},
					   {"rounds", required_argument, NULL, 'r'},
					   {"secs", required_argument, NULL, 's'},
					   {"wa-writes", required_argument, NULL, 'w'},
					   {NULL, 0, NULL, 0}};
	const char *dir = "/var/tmp/h-micro";
	int rounds = 3, wa_writes = 512, c, ret;
	struct ff_emu_opts eo = {.zone_size = ZS, .nr_cnv = 1};
	struct ff_cache_opts co = {.cache_size = 1ull << 30};
	struct bench b = {.secs = 1.0, .rng = 42};
	char path[512];

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			b.secs = atof(optarg);
			break;
		case 'w':
			wa_writes = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: cachebench [--dir DIR] [--rounds N] [--secs S] [--wa-writes N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || b.secs <= 0 || wa_writes < 1) {
		fprintf(stderr, "cachebench: bad --rounds (1..%d), --secs or --wa-writes\n",
			MAX_ROUNDS);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/cachebench-%d.img", dir, (int)getpid());
	ret = prefill(path, NZONES * ZS + (4 << 20));
	if (!ret)
		ret = ff_dev_format_emulated(path, &eo, true);
	if (!ret)
		ret = ff_dev_open(path, NULL, &b.dev);
	if (ret) {
		fprintf(stderr, "cachebench: cannot make the image %s: %s\n", path, strerror(-ret));
		unlink(path);
		return 1;
	}
	g_dev = b.dev;
	b.f[0] = (struct bfile){.zone = 0, .seq = false, .size = ZS};
	b.f[1] = (struct bfile){.zone = 1, .seq = true, .size = 0};
	if (posix_memalign(&b.buf, 4096, FOLIO))
		die("alloc", -ENOMEM);
	memset(b.buf, 0x5a, FOLIO);
	printf("# cachebench: %ld cpus, io_uring %s, %d rounds, %.1f s per run, image %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), ff_dev_uring_mode_name(ff_dev_uring_mode()), rounds,
	       b.secs, path);

	/* 1. WA */
	{
		struct ff_cache_opts m[3] = {co, co, co};
		const char *names[3] = {"write-through, per-block (default)", "sync_mode=writeback",
					"dirty_granularity=folio"};
		struct wa_row rows[3];

		m[1].sync_mode = FF_SYNC_WRITEBACK;
		m[2].dirty_gran = FF_DIRTY_FOLIO;
		printf("\n## Write amplification: %d random 4 KiB FF_CW_DSYNC writes into a cached 2 MiB folio (conventional zone)\n\n",
		       wa_writes);
		printf("| mode | 2 MiB folios cached | user bytes | device bytes written | WA | device writes | device flushes | sync writes/s |\n");
		printf("|---|---|---|---|---|---|---|---|\n");
		for (int i = 0; i < 3; i++) {
			rows[i].name = names[i];
			run_wa(&b, &m[i], wa_writes, &rows[i]);
			printf("| %s | %u | %llu | %llu | %.2f | %llu | %llu | %.0f |\n",
			       rows[i].name, rows[i].big_folios,
			       (unsigned long long)rows[i].user_bytes,
			       (unsigned long long)rows[i].dev_bytes, rows[i].wa,
			       (unsigned long long)rows[i].dev_writes,
			       (unsigned long long)rows[i].flushes, rows[i].iops);
			fflush(stdout);
		}
		for (int i = 0; i < 3; i++) {
			struct wa_row sr = {0};
			int err = run_wa_seq(&b, &m[i], wa_writes, &sr);

			if (err) {
				printf("| (appends) %s | - | - | - | fails: %s | - | - | - |\n",
				       names[i], strerror(-err));
				continue;
			}
			printf("| (appends) %s | - | %llu | %llu (%llu of them write-pointer records) | %.2f | %llu | %llu | %.0f |\n",
			       names[i], (unsigned long long)sr.user_bytes,
			       (unsigned long long)sr.dev_bytes,
			       (unsigned long long)(sr.dev_bytes - sr.user_bytes), sr.wa,
			       (unsigned long long)sr.dev_writes, (unsigned long long)sr.flushes,
			       sr.iops);
			fflush(stdout);
		}
		printf("\n(appends): the same count of 4 KiB DSYNC writes as appends to the sequential file (zone 1); the emulated device adds its write-pointer record per durable append.\n");
	}

	/* 2, 3. throughput, default cache options */
	{
		static const struct {
			const char *name;
			enum test_kind cache, raw;
			size_t bs;
		} pairs[] = {
			{"read 4 KiB, cache hit / ff_dev_read", T_READ_CACHE, T_READ_RAW, 4096},
			{"read 1 MiB, cache hit / ff_dev_read", T_READ_CACHE, T_READ_RAW, 1 << 20},
			{"DSYNC write 4 KiB in place (cnv) / ff_dev_write", T_WT_CNV, T_RAW_CNV,
			 4096},
			{"DSYNC write 1 MiB in place (cnv) / ff_dev_write", T_WT_CNV, T_RAW_CNV,
			 1 << 20},
			{"DSYNC append 4 KiB (seq) / ff_zoneq_append", T_WT_SEQ, T_RAW_SEQ, 4096},
			{"DSYNC append 1 MiB (seq) / ff_zoneq_append", T_WT_SEQ, T_RAW_SEQ,
			 1 << 20},
		};
		enum { NP = sizeof(pairs) / sizeof(pairs[0]) };
		double cv[NP][MAX_ROUNDS], rv[NP][MAX_ROUNDS], ratio[NP][MAX_ROUNDS];
		double cw[NP][MAX_ROUNDS], rw[NP][MAX_ROUNDS]; /* device writes per op */
		uint64_t slice_ns = (uint64_t)(b.secs * 1e9 / SLICES);

		cache_open(&b, &co);
		/* cache READ_SPAN of file 0 in 2 MiB folios */
		for (uint64_t off = 0; off < READ_SPAN; off += 1 << 20) {
			ssize_t n = ff_cache_read(b.f[0].ci, b.buf, 1 << 20, off, 0);

			if (n != 1 << 20)
				die("warming the cache", n < 0 ? n : -EIO);
		}
		for (int k = 0; k < T_NR; k++)
			if (k == T_WT_SEQ || k == T_RAW_SEQ)
				seq_rewind(&b, (enum test_kind)k);
		for (int r = 0; r < rounds; r++) {
			for (int p = 0; p < (int)NP; p++) {
				struct tp_acc ca = {0}, ra = {0};

				/* cache and raw alternate in slices; who starts alternates too */
				for (int sl = 0; sl < SLICES; sl++) {
					if ((sl + r) % 2) {
						run_slice(&b, pairs[p].raw, pairs[p].bs, slice_ns,
							  &ra);
						run_slice(&b, pairs[p].cache, pairs[p].bs, slice_ns,
							  &ca);
					} else {
						run_slice(&b, pairs[p].cache, pairs[p].bs, slice_ns,
							  &ca);
						run_slice(&b, pairs[p].raw, pairs[p].bs, slice_ns,
							  &ra);
					}
				}
				cv[p][r] = mibs(&ca);
				rv[p][r] = mibs(&ra);
				ratio[p][r] = cv[p][r] / rv[p][r];
				cw[p][r] = (double)ca.dev_writes / (double)ca.ops;
				rw[p][r] = (double)ra.dev_writes / (double)ra.ops;
				fprintf(stderr, "round %d %s: cache %.1f raw %.1f MiB/s (%.2f)\n",
					r + 1, pairs[p].name, cv[p][r], rv[p][r], ratio[p][r]);
			}
		}
		printf("\n## Throughput of the cache alone against the device layer, 1 thread\n\n");
		printf("Median of %d rounds; in each round cache and raw alternate in %d slices of %.2f s each; the ratio is the median of the per-round ratios.\n\n",
		       rounds, SLICES, b.secs / SLICES);
		printf("| test (cache / raw) | cache MiB/s | raw MiB/s | cache/raw | device writes per op, cache / raw |\n");
		printf("|---|---|---|---|---|\n");
		for (int p = 0; p < (int)NP; p++) {
			double cm = median(cv[p], rounds), rm = median(rv[p], rounds);

			printf("| %s | %.1f | %.1f | %.2f | %.2f / %.2f |\n", pairs[p].name, cm, rm,
			       median(ratio[p], rounds), median(cw[p], rounds),
			       median(rw[p], rounds));
		}
		{
			struct ff_cache_stats cs;

			ff_cache_stats(b.c, &cs);
			printf("\n(cache: %llu hits, %llu misses, %llu bytes read from the device during the runs and warm-up)\n",
			       (unsigned long long)cs.hits, (unsigned long long)cs.misses,
			       (unsigned long long)cs.read_bytes);
		}
		cache_close(&b);
	}
	ff_dev_close(b.dev);
	unlink(path);
	free(b.buf);
	return 0;
}
