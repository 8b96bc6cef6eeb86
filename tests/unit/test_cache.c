// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the cache over a real emulated zoned image and a tiny test
 * filesystem (one file per zone: conventional zones map in place, sequential
 * zones appended through the zone queue in file order, as zonefs does, and
 * files sharing one zone with extent maps).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <cmocka.h>
#include "foliofs/cache.h"
#include "foliofs/dev.h"
#include "foliofs/zoneq.h"
#include "testutil.h"
#include "../../src/dev/internal.h"

#define ZS  (32ull << 20)
#define BLK 4096u
#define NZ  8
#define CNV 2 /* zones 0, 1 conventional */

/*
 * A test filesystem. A file of zone z owns it (zonefs-like: the file offset
 * is the zone offset), or, with shared, appends into zone z alongside other
 * shared files and keeps an extent map from write_done's landed offsets (the
 * general format's way: many files in one open zone).
 */
#define MAX_EXT 4096
struct ext {
	uint64_t file_off, dev_off, len;
};

struct tfile {
	uint32_t zone;
	bool seq, shared;
	_Atomic uint64_t size; /* bytes written by the user (seq: the file size) */
	_Atomic int done_calls, sync_done_calls, commit_calls;
	pthread_mutex_t ext_lock; /* guards ext, next */
	struct ext ext[MAX_EXT];
	int next;
	struct ff_cinode *ci;
};

struct fx {
	char path[256];
	struct ff_dev *dev;
	struct ff_cache *c;
	struct tfile f[NZ + 2]; /* NZ: shared files in zone SHZ */
};

#define SHZ (NZ - 1) /* the zone the shared files append to */
#define SHA NZ	     /* the shared files' indexes in fx.f */
#define SHB (NZ + 1)

static struct fx *g;

/* _Atomic hooks a test sets to stall map_read; NULL when unused */
static void (*_Atomic map_read_hook)(struct tfile *t);

static int ext_map_read(struct tfile *t, uint64_t off, uint64_t len, struct ff_map *m)
{
	uint64_t next_start = UINT64_MAX;

	m->file_off = off;
	m->zone = t->zone;
	pthread_mutex_lock(&t->ext_lock);
	for (int i = t->next - 1; i >= 0; i--) {
		struct ext *e = &t->ext[i];

		if (e->file_off <= off && off < e->file_off + e->len) {
			m->type = FF_MAP_INPLACE;
			m->dev_off = e->dev_off + (off - e->file_off);
			m->len =
				e->file_off + e->len - off < len ? e->file_off + e->len - off : len;
			pthread_mutex_unlock(&t->ext_lock);
			return 0;
		}
		if (e->file_off > off && e->file_off < next_start)
			next_start = e->file_off;
	}
	pthread_mutex_unlock(&t->ext_lock);
	m->type = FF_MAP_HOLE;
	m->len = next_start - off < len ? next_start - off : len;
	return 0;
}

static int t_map_read(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m)
{
	struct tfile *t = fs_inode;
	uint64_t zs = (uint64_t)t->zone * ZS, wp;
	void (*hook)(struct tfile *) = atomic_load(&map_read_hook);

	if (hook)
		hook(t);
	if (t->shared)
		return ext_map_read(t, off, len, m);
	wp = t->seq ? ff_zoneq_wp(g->dev, t->zone) - zs : ZS;
	m->file_off = off;
	m->zone = t->zone;
	if (off >= wp) {
		m->type = FF_MAP_HOLE;
		m->len = len;
		return 0;
	}
	m->type = FF_MAP_INPLACE;
	m->dev_off = zs + off;
	m->len = wp - off < len ? wp - off : len;
	return 0;
}

/* zonefs-like placement (zonefs.c's zf_map_write), or an append for a shared file */
static int t_map_write(void *fs_inode, uint64_t off, uint64_t len, unsigned flags, struct ff_map *m)
{
	struct tfile *t = fs_inode;
	uint64_t zs = (uint64_t)t->zone * ZS, rp;

	m->zone = t->zone;
	m->file_off = off;
	m->dev_off = zs + off;
	if (!t->seq) {
		m->type = FF_MAP_INPLACE;
		m->len = len;
		return 0;
	}
	if (t->shared) {
		m->type = FF_MAP_APPEND;
		m->dev_off = FF_MAP_ANYWHERE;
		m->len = (flags & FF_MAPW_TAIL) ? len - BLK : len;
		return 0;
	}
	rp = ff_zoneq_wp(g->dev, t->zone) - zs;
	if (rp < off) {
		int ret = ff_cache_writeback_range(t->ci, rp, off,
						   flags & FF_MAPW_SYNC ? FF_CW_DSYNC : 0);

		if (ret)
			return ret;
		rp = ff_zoneq_wp(g->dev, t->zone) - zs;
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

static int t_write_done(void *fs_inode, const struct ff_map *m, uint64_t landed_at, ssize_t result,
			unsigned flags)
{
	struct tfile *t = fs_inode;

	atomic_fetch_add(&t->done_calls, 1);
	if (flags & FF_MAPW_SYNC)
		atomic_fetch_add(&t->sync_done_calls, 1);
	if (result < 0)
		return 0;
	if (t->shared) {
		pthread_mutex_lock(&t->ext_lock);
		if (t->next == MAX_EXT) {
			pthread_mutex_unlock(&t->ext_lock);
			return -ENOSPC;
		}
		t->ext[t->next++] = (struct ext){m->file_off, landed_at, m->len};
		pthread_mutex_unlock(&t->ext_lock);
	} else if (m->type == FF_MAP_APPEND && landed_at != (uint64_t)t->zone * ZS + m->file_off) {
		return -EIO;
	}
	return 0;
}

static int t_commit(void *fs_inode, bool datasync)
{
	struct tfile *t = fs_inode;

	(void)datasync;
	atomic_fetch_add(&t->commit_calls, 1);
	return 0;
}

static const struct ff_cache_ops tops = {t_map_read, t_map_write, t_write_done, t_commit};

static void open_cache(struct fx *f, const struct ff_cache_opts *o)
{
	assert_int_equal(ff_cache_create(f->dev, &tops, o, &f->c), 0);
	for (uint32_t i = 0; i < NZ + 2; i++) {
		struct tfile *t = &f->f[i];

		t->ci = ff_cache_inode_new(f->c, t);
		assert_non_null(t->ci);
		/*
		 * A zonefs-like file's size is its zone's pointer, as zonefs
		 * tells its cache at mount; the cache moves it from there.
		 */
		if (t->seq && !t->shared)
			ff_cache_inode_set_size(t->ci, ff_zoneq_wp(f->dev, t->zone) -
							       (uint64_t)t->zone * ZS);
	}
}

static int setup_opts(void **state, const struct ff_cache_opts *o)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_emu_opts eo = {.zone_size = ZS, .nr_cnv = CNV};

	assert_int_equal(
		tu_emu_mkimage(f->path, sizeof(f->path), "cache", NZ * ZS + (1 << 20), &eo), 0);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	for (uint32_t i = 0; i < NZ + 2; i++) {
		f->f[i].zone = i < NZ ? i : SHZ;
		f->f[i].seq = i >= CNV;
		f->f[i].shared = i >= NZ;
		pthread_mutex_init(&f->f[i].ext_lock, NULL);
	}
	g = f;
	open_cache(f, o);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, NULL);
}

static int setup_small(void **state)
{
	struct ff_cache_opts o = {.cache_size = 2 << 20, .max_folio = 256 << 10};

	return setup_opts(state, &o);
}

/* 4 x max_folio, the smallest cache allowed */
static int setup_tiny(void **state)
{
	struct ff_cache_opts o = {.cache_size = 1 << 20, .max_folio = 256 << 10};

	return setup_opts(state, &o);
}

static int setup_folio_mode(void **state)
{
	struct ff_cache_opts o = {.dirty_gran = FF_DIRTY_FOLIO};

	return setup_opts(state, &o);
}

static int setup_wb_mode(void **state)
{
	struct ff_cache_opts o = {.sync_mode = FF_SYNC_WRITEBACK};

	return setup_opts(state, &o);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(ff_cache_destroy(f->c), 0);
	ff_dev_fault_hook = NULL; /* after the flusher stopped: it reads the hook */
	ff_dev_close(f->dev);
	unlink(f->path);
	free(f);
	return 0;
}

/* Drop the cache (written back first) and open a fresh one: reads come from the device. */
static void recache(struct fx *f)
{
	assert_int_equal(ff_cache_destroy(f->c), 0);
	open_cache(f, NULL);
}

static ssize_t twrite(struct fx *f, uint32_t z, const void *buf, size_t len, uint64_t off,
		      unsigned flags)
{
	struct tfile *t = &f->f[z];

	if (off + len > t->size)
		t->size = off + len;
	return ff_cache_write(t->ci, buf, len, off, flags);
}

static void check_file(struct fx *f, uint32_t z, const uint8_t *want, size_t len)
{
	uint8_t *got = tu_alloc(len);

	assert_int_equal(ff_cache_read(f->f[z].ci, got, len, 0, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

/* The data matrix: {cnv, seq} x {buffered, SYNC, DSYNC, per-call DSYNC} x {aligned, unaligned}. */
static void run_matrix(struct fx *f, uint32_t z, unsigned flags, bool aligned)
{
	size_t total = 3 << 20;
	uint8_t *src = tu_alloc(total);
	size_t pos = 0;
	unsigned i = 0;
	bool seq = f->f[z].seq;

	tu_fill(src, total, z * 100 + flags * 10 + aligned);
	while (pos < total) {
		size_t n = aligned ? (i % 3 + 1) * 16384 : 1000 + (i * 7919) % 70000;
		unsigned fl = flags;

		if (n > total - pos)
			n = total - pos;
		if (seq && !aligned && fl) {
			/* a sync append to a sequential file must end on a block: make it so */
			size_t end = ff_round_up(pos + n, BLK);

			n = (end <= total ? end : total) - pos;
		}
		if (!seq && !aligned && i % 2) {
			/* conventional files: also write out of order (backwards) */
			size_t back = pos > 50000 ? pos - 50000 : 0;

			assert_int_equal(twrite(f, z, src + back, 3000, back, fl), 3000);
		}
		assert_int_equal(twrite(f, z, src + pos, n, pos, fl), (ssize_t)n);
		pos += n;
		i++;
	}
	check_file(f, z, src, total);
	if (flags) {
		struct ff_cache_stats st;

		ff_cache_stats(f->c, &st);
		assert_int_equal(st.dirty_bytes, 0); /* a sync write leaves nothing dirty */
	}
	assert_int_equal(ff_cache_fsync(f->f[z].ci, false), 0);
	recache(f);
	check_file(f, z, src, total);
	free(src);
}

static void test_cache_matrix(void **state)
{
	struct fx *f = *state;
	const unsigned modes[] = {0, FF_CW_SYNC, FF_CW_DSYNC, FF_CW_DSYNC | FF_CW_DIRECT};
	uint32_t zones[2][4] = {{0, 1, 0, 1}, {2, 3, 4, 5}}; /* per aligned: cnv, seq pairs */

	for (int a = 0; a < 2; a++)
		for (int m = 0; m < 4; m++) {
			/* conventional: zone a; sequential: a fresh zone each time */
			uint32_t cz = (uint32_t)a, sz = CNV + (uint32_t)(a * 4 + m) % (NZ - CNV);

			(void)zones;
			if (f->f[sz].size) {
				ff_cache_invalidate_begin(f->f[sz].ci);
				assert_int_equal(ff_cache_truncate(f->f[sz].ci, 0), 0);
				assert_int_equal(ff_zoneq_zone_op(f->dev, sz, FF_ZOP_RESET), 0);
				ff_cache_invalidate_end(f->f[sz].ci);
				f->f[sz].size = 0;
			}
			run_matrix(f, cz, modes[m], a == 0);
			run_matrix(f, sz, modes[m], a == 0);
		}
}

static void test_cache_sync_write_submits_only_touched(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = tu_alloc(2 << 20), *blk = tu_alloc(BLK);
	struct ff_dev_stats a, b;
	struct ff_cache_stats cs;

	/* a first read caches the file as one 2 MiB folio */
	assert_int_equal(ff_cache_read(f->f[0].ci, buf, 2 << 20, 0, 0), 2 << 20);
	ff_cache_stats(f->c, &cs);
	assert_int_equal(cs.folios_by_order[21], 1);
	tu_fill(blk, BLK, 5);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_write(f->f[0].ci, blk, BLK, 64 << 10, FF_CW_DSYNC), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.bytes_written - a.bytes_written, BLK);
	assert_int_equal(b.writes - a.writes, 1);
	/* a sub-block sync write is read-modify-write of its one block */
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_write(f->f[0].ci, blk, 100, 200 << 10, FF_CW_SYNC), 100);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.bytes_written - a.bytes_written, BLK);
	ff_cache_stats(f->c, &cs);
	assert_int_equal(cs.dirty_bytes, 0);
	free(buf);
	free(blk);
}

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/*
 * Memory the cache freed (a truncate here; a reclaim or unlink alike) is
 * kept for new folios while the budget has room for it: writing the same
 * amount again faults no fresh pages in. Each fresh page is a fault and a
 * kernel zeroing of a page the copy then overwrites whole; a 1 MiB append
 * into fresh memory took 256 of them.
 */
static void test_cache_freed_memory_is_reused(void **state)
{
	struct fx *f = *state;
	const uint32_t chunk = 1 << 20, total = 24 << 20;
	uint8_t *buf = tu_alloc(chunk);
	long before, faults;

	tu_fill(buf, chunk, 9);
	for (int pass = 0; pass < 2; pass++) {
		before = minor_faults();
		for (uint32_t off = 0; off < total; off += chunk)
			assert_int_equal(ff_cache_write(f->f[0].ci, buf, chunk, off, FF_CW_SYNC),
					 chunk);
		faults = minor_faults() - before;
		ff_cache_invalidate_begin(f->f[0].ci);
		assert_int_equal(ff_cache_truncate(f->f[0].ci, 0), 0);
		ff_cache_invalidate_end(f->f[0].ci);
	}
	/* 6144 pages were written; the second pass found them all mapped */
	assert_in_range(faults, 0, 256);
	free(buf);
}

/*
 * Spares of one order must not keep out those of another. A 2 MiB cache
 * full of 4 KiB folios (random sync writes), then a stream of 256 KiB
 * folios: once the stream reclaims its own folios, it reuses their buffers,
 * although the small ones freed first filled the spare room.
 */
static void test_cache_spares_follow_the_stream(void **state)
{
	struct fx *f = *state;
	const uint32_t chunk = 256 << 10;
	uint8_t *buf = tu_alloc(chunk);
	long before, faults;

	tu_fill(buf, chunk, 3);
	for (uint32_t i = 0; i < 512; i++)
		assert_int_equal(
			ff_cache_write(f->f[0].ci, buf, BLK, (uint64_t)i * 64 * 1024, FF_CW_SYNC),
			BLK);
	for (uint32_t off = 0; off < (8u << 20); off += chunk)
		assert_int_equal(ff_cache_write(f->f[1].ci, buf, chunk, off, FF_CW_SYNC), chunk);
	before = minor_faults();
	for (uint32_t off = 8u << 20; off < (16u << 20); off += chunk)
		assert_int_equal(ff_cache_write(f->f[1].ci, buf, chunk, off, FF_CW_SYNC), chunk);
	faults = minor_faults() - before;
	/* 2048 pages written into folios of 64 pages: fresh buffers would fault them all */
	assert_in_range(faults, 0, 128);
	free(buf);
}

static void test_cache_folio_mode_writes_whole_folio(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = tu_alloc(2 << 20), *blk = tu_alloc(BLK);
	struct ff_dev_stats a, b;

	assert_int_equal(ff_cache_read(f->f[0].ci, buf, 2 << 20, 0, 0), 2 << 20);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_write(f->f[0].ci, blk, BLK, 64 << 10, FF_CW_DSYNC), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.bytes_written - a.bytes_written, 2 << 20);
	free(buf);
	free(blk);
}

/*
 * Folio granularity on a sequential zone: the folio's blocks below the write
 * pointer are already in the zone and cannot be rewritten; the write goes on
 * from the pointer (it used to fail with EIO, rewriting below it).
 */
static void test_cache_folio_mode_seq_append(void **state)
{
	struct fx *f = *state;
	struct tfile *t = &f->f[CNV];
	uint8_t *buf = tu_alloc(256 << 10), *rd = tu_alloc(256 << 10);
	struct ff_dev_stats a, b;

	tu_fill(buf, 256 << 10, 7);
	for (int i = 0; i < 4; i++) {
		atomic_store(&t->size, (uint64_t)(i + 1) * (64 << 10));
		ff_cache_inode_set_size(t->ci, atomic_load(&t->size));
		ff_dev_stats(f->dev, &a);
		assert_int_equal(ff_cache_write(t->ci, buf + i * (64 << 10), 64 << 10,
						(uint64_t)i * (64 << 10), FF_CW_DSYNC),
				 64 << 10);
		ff_dev_stats(f->dev, &b);
		assert_int_equal(b.bytes_written - a.bytes_written, 64 << 10);
	}
	assert_int_equal(ff_zoneq_wp(f->dev, t->zone) - (uint64_t)t->zone * ZS, 256 << 10);
	ff_cache_invalidate_begin(t->ci);
	assert_int_equal(ff_cache_truncate(t->ci, 0), 0);
	ff_cache_inode_set_size(t->ci, 256 << 10);
	ff_cache_invalidate_end(t->ci);
	assert_int_equal(ff_cache_read(t->ci, rd, 256 << 10, 0, 0), 256 << 10);
	assert_memory_equal(rd, buf, 256 << 10);
	free(buf);
	free(rd);
}

static void test_cache_writeback_mode_sync_write(void **state)
{
	struct fx *f = *state;
	uint8_t *blk = tu_alloc(BLK);
	struct ff_dev_stats a, b;
	struct ff_cache_stats cs;

	tu_fill(blk, BLK, 9);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_write(f->f[0].ci, blk, BLK, 8192, FF_CW_DSYNC), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.bytes_written - a.bytes_written, BLK); /* per-block dirty */
	assert_true(b.flushes > a.flushes);			  /* written then flushed */
	ff_cache_stats(f->c, &cs);
	assert_int_equal(cs.dirty_bytes, 0);
	assert_int_equal(cs.wt_bytes, 0);
	assert_int_equal(cs.wb_bytes, BLK);
	recache(f);
	check_file(f, 0, (uint8_t[BLK]){0}, 0);
	{
		uint8_t *got = tu_alloc(BLK);

		assert_int_equal(ff_cache_read(f->f[0].ci, got, BLK, 8192, 0), BLK);
		assert_memory_equal(got, blk, BLK);
		free(got);
	}
	free(blk);
}

/* A gate the device's write hook waits at until the test opens it. */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool entered, open, fsync_called;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};

static int gate_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)off;
	(void)len;
	pthread_mutex_lock(&gate.m);
	gate.entered = true;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.m);
	pthread_mutex_unlock(&gate.m);
	return 0;
}

/* Opens the gate once the test is about to call fsync. */
static void *gate_opener_fn(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate.m);
	while (!gate.fsync_called)
		pthread_cond_wait(&gate.cv, &gate.m);
	gate.open = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.m);
	return NULL;
}

struct wt_arg {
	struct fx *f;
	uint8_t *buf;
	ssize_t res;
};

static void *wt_fn(void *arg)
{
	struct wt_arg *w = arg;

	w->res = ff_cache_write(w->f->f[1].ci, w->buf, 64 << 10, 1 << 20, FF_CW_DSYNC);
	return NULL;
}

/*
 * fsync waits for a write-through another thread has in flight: the write is
 * held at the device until fsync has been called, and when fsync returns the
 * bytes are on the device. fsync also runs the filesystem's commit.
 */
static void test_cache_fsync_waits_for_other_write_through(void **state)
{
	struct fx *f = *state;
	struct wt_arg w = {.f = f, .buf = tu_alloc(64 << 10)};
	uint8_t *got = tu_alloc(64 << 10);
	struct iovec iov = {got, 64 << 10};
	pthread_t th, opener;

	tu_fill(w.buf, 64 << 10, 77);
	gate.entered = gate.open = gate.fsync_called = false;
	ff_dev_fault_hook = gate_hook;
	pthread_create(&th, NULL, wt_fn, &w);
	pthread_create(&opener, NULL, gate_opener_fn, NULL);
	pthread_mutex_lock(&gate.m);
	while (!gate.entered) /* the write-through is at the device, held */
		pthread_cond_wait(&gate.cv, &gate.m);
	gate.fsync_called = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.m);
	assert_int_equal(ff_cache_fsync(f->f[1].ci, true), 0);
	/* fsync returned: the other thread's data is on the device */
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 1 * ZS + (1 << 20)), 64 << 10);
	assert_memory_equal(got, w.buf, 64 << 10);
	pthread_join(th, NULL);
	pthread_join(opener, NULL);
	assert_int_equal(w.res, 64 << 10); /* the open gate stays as the hook until teardown */
	assert_true(atomic_load(&f->f[1].commit_calls) > 0);
	free(w.buf);
	free(got);
}

static void test_cache_eviction_keeps_dirty(void **state)
{
	struct fx *f = *state;
	size_t total = 24 << 20, chunk = 64 << 10;
	uint8_t *src = tu_alloc(total), *got = tu_alloc(chunk);
	struct ff_cache_stats cs;

	tu_fill(src, total, 1234);
	for (size_t pos = 0; pos < total; pos += chunk) {
		assert_int_equal(twrite(f, 0, src + pos, chunk, pos, 0), (ssize_t)chunk);
		ff_cache_stats(f->c, &cs);
		assert_true(cs.cached_bytes <= (2 << 20) + (256 << 10));
	}
	/* and a sequential file, buffered */
	for (size_t pos = 0; pos < total; pos += chunk)
		assert_int_equal(twrite(f, 2, src + pos, chunk, pos, 0), (ssize_t)chunk);
	for (size_t pos = 0; pos < total; pos += chunk) {
		assert_int_equal(ff_cache_read(f->f[0].ci, got, chunk, pos, 0), (ssize_t)chunk);
		assert_memory_equal(got, src + pos, chunk);
		assert_int_equal(ff_cache_read(f->f[2].ci, got, chunk, pos, 0), (ssize_t)chunk);
		assert_memory_equal(got, src + pos, chunk);
	}
	ff_cache_stats(f->c, &cs);
	assert_true(cs.reclaims > 0);
	assert_true(cs.cached_bytes <= 2 << 20);
	free(src);
	free(got);
}

static void test_cache_errors_reach_writer_and_fsync(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = tu_alloc(64 << 10), *got = tu_alloc(64 << 10);

	tu_fill(buf, 64 << 10, 3);
	ff_dev_fault_hook = tu_fail_hook;
	tu_fail_writes(true);
	/* write-through: the writer gets the error */
	assert_int_equal(ff_cache_write(f->f[0].ci, buf, 16384, 0, FF_CW_SYNC), -EIO);
	assert_int_equal(twrite(f, 3, buf, 16384, 0, FF_CW_DSYNC), -EIO);
	f->f[3].size = 0;
	assert_int_equal(ff_zoneq_wp(f->dev, 3), 3 * ZS); /* nothing advanced */
	/* buffered: the next fsync gets it, the data stays cached */
	assert_int_equal(ff_cache_write(f->f[1].ci, buf, 64 << 10, 0, 0), 64 << 10);
	assert_int_equal(ff_cache_fsync(f->f[1].ci, false), -EIO);
	assert_int_equal(ff_cache_read(f->f[1].ci, got, 64 << 10, 0, 0), 64 << 10);
	assert_memory_equal(got, buf, 64 << 10);
	/* the device recovers: the retained data goes out on the next fsync */
	tu_fail_writes(false);
	assert_int_equal(ff_cache_fsync(f->f[1].ci, false), 0);
	recache(f);
	assert_int_equal(ff_cache_read(f->f[1].ci, got, 64 << 10, 0, 0), 64 << 10);
	assert_memory_equal(got, buf, 64 << 10);
	free(buf);
	free(got);
}

#define NT 8
struct ct {
	struct fx *f;
	int id;
	bool many;
	int err;
};

static void *ct_fn(void *arg)
{
	struct ct *t = arg;
	uint32_t z = t->many ? (uint32_t)t->id % CNV : 0;
	uint64_t base = t->many ? (uint64_t)(t->id / CNV) * (1 << 20) : (uint64_t)t->id * (1 << 20);
	uint8_t *buf = tu_alloc(1 << 20), *got = tu_alloc(1 << 20);

	tu_fill(buf, 1 << 20, (unsigned)t->id);
	for (int r = 0; r < 20 && !t->err; r++) {
		size_t o = ((unsigned)r * 53197u) % (1 << 20),
		       n = 1 + ((unsigned)r * 7753u) % 60000;
		unsigned fl = r % 3 == 0 ? FF_CW_DSYNC : 0;

		if (o + n > (1 << 20))
			n = (1 << 20) - o;
		if (ff_cache_write(t->f->f[z].ci, buf + o, n, base + o, fl) != (ssize_t)n)
			t->err = 1;
		if (r % 5 == 4 && ff_cache_fsync(t->f->f[z].ci, true))
			t->err = 2;
	}
	/* the whole region once more, then read back */
	if (ff_cache_write(t->f->f[z].ci, buf, 1 << 20, base, 0) != 1 << 20)
		t->err = 3;
	if (ff_cache_read(t->f->f[z].ci, got, 1 << 20, base, 0) != 1 << 20 ||
	    memcmp(got, buf, 1 << 20))
		t->err = 4;
	free(buf);
	free(got);
	return NULL;
}

static void run_threads(struct fx *f, bool many)
{
	struct ct t[NT];
	pthread_t th[NT];

	for (int i = 0; i < NT; i++) {
		t[i] = (struct ct){f, i, many, 0};
		pthread_create(&th[i], NULL, ct_fn, &t[i]);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].err, 0);
	}
}

static void test_cache_threads_one_inode(void **state)
{
	run_threads(*state, false);
}

static void test_cache_threads_many_inodes(void **state)
{
	run_threads(*state, true);
}

static void test_cache_holes_read_zero(void **state)
{
	struct fx *f = *state;
	uint8_t *got = tu_alloc(1 << 20);
	struct ff_dev_stats a, b;

	memset(got, 0xee, 1 << 20);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_read(f->f[4].ci, got, 1 << 20, 0, 0), 1 << 20);
	ff_dev_stats(f->dev, &b);
	for (int i = 0; i < 1 << 20; i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(b.reads, a.reads); /* no device I/O for a hole */
	free(got);
}

/* ---- two files appending into one zone ---- */

#define SH_TOTAL (4u << 20)

struct shw {
	struct fx *f;
	int idx;		/* SHA or SHB */
	uint8_t *src;		/* the file's content */
	_Atomic uint64_t acked; /* bytes acknowledged */
	_Atomic bool stop;
	int err;
};

static void *sh_writer_fn(void *arg)
{
	struct shw *w = arg;
	struct ff_cinode *ci = w->f->f[w->idx].ci;
	uint64_t pos = 0;
	unsigned i = 0;

	while (pos < SH_TOTAL && !w->err) {
		size_t n = 1 + (i * 7919u + (unsigned)w->idx * 131u) % 40000;
		unsigned fl = i % 3 == 0 ? FF_CW_DSYNC : 0;
		ssize_t r;

		if (fl || pos + n > SH_TOTAL) /* a sync write ends on a block */
			n = (size_t)(ff_round_up(pos + n, BLK) - pos);
		if (pos + n > SH_TOTAL)
			n = SH_TOTAL - pos;
		r = ff_cache_write(ci, w->src + pos, n, pos, fl);
		if (r != (ssize_t)n)
			w->err = r < 0 ? (int)r : -EIO;
		pos += n;
		atomic_store(&w->acked, pos);
		if (i % 7 == 6 && ff_cache_fsync(ci, i % 2) && !w->err)
			w->err = -EIO;
		i++;
	}
	atomic_store(&w->stop, true);
	return NULL;
}

static void *sh_reader_fn(void *arg)
{
	struct shw *w = arg;
	uint8_t *got = tu_alloc(256 << 10);

	while (!atomic_load(&w->stop) && !w->err) {
		uint64_t acked = atomic_load(&w->acked);
		uint64_t from = acked > (256 << 10) ? acked - (256 << 10) : 0;
		ssize_t r = ff_cache_read(w->f->f[w->idx].ci, got, acked - from, from, 0);

		if (r != (ssize_t)(acked - from) || memcmp(got, w->src + from, (size_t)r))
			w->err = -EILSEQ;
	}
	free(got);
	return NULL;
}

/*
 * Two files append into the same sequential zone, each through the cache
 * with buffered and sync writes, fsyncs and readers running: the zone queue
 * places each write, write_done learns where it landed, and map_read finds
 * it there, before and after the cache is dropped.
 */
static void test_cache_shared_zone_two_inodes(void **state)
{
	struct fx *f = *state;
	struct shw w[2] = {{.f = f, .idx = SHA}, {.f = f, .idx = SHB}};
	pthread_t th[2][2];
	uint64_t zs = (uint64_t)SHZ * ZS, lo[2] = {UINT64_MAX, UINT64_MAX}, hi[2] = {0, 0};

	for (int k = 0; k < 2; k++) {
		/* empty files: the cache's size says which block is a partial tail */
		ff_cache_inode_set_size(f->f[w[k].idx].ci, 0);
		w[k].src = tu_alloc(SH_TOTAL);
		tu_fill(w[k].src, SH_TOTAL, 500 + (unsigned)k);
		pthread_create(&th[k][0], NULL, sh_writer_fn, &w[k]);
		pthread_create(&th[k][1], NULL, sh_reader_fn, &w[k]);
	}
	for (int k = 0; k < 2; k++) {
		pthread_join(th[k][0], NULL);
		pthread_join(th[k][1], NULL);
	}
	for (int k = 0; k < 2; k++) {
		assert_int_equal(w[k].err, 0);
		assert_int_equal(ff_cache_fsync(f->f[w[k].idx].ci, false), 0);
	}
	/* every byte of both files is in the zone once, and the two interleave */
	assert_int_equal(ff_zoneq_wp(f->dev, SHZ) - zs, 2ull * SH_TOTAL);
	for (int k = 0; k < 2; k++) {
		struct tfile *t = &f->f[w[k].idx];

		for (int i = 0; i < t->next; i++) {
			assert_true(t->ext[i].dev_off >= zs && t->ext[i].dev_off < zs + ZS);
			if (t->ext[i].dev_off < lo[k])
				lo[k] = t->ext[i].dev_off;
			if (t->ext[i].dev_off > hi[k])
				hi[k] = t->ext[i].dev_off;
		}
	}
	assert_true(lo[0] < hi[1] && lo[1] < hi[0]);
	recache(f);
	for (int k = 0; k < 2; k++) {
		check_file(f, w[k].idx, w[k].src, SH_TOTAL);
		free(w[k].src);
	}
}

/* ---- readers against resets ---- */

#define RR_SPAN (256u << 10)

struct rr {
	struct fx *f;
	_Atomic bool stop;
	int err;
};

static void *rr_reader_fn(void *arg)
{
	struct rr *r = arg;
	uint8_t *got = tu_alloc(RR_SPAN);

	while (!atomic_load(&r->stop)) {
		if (ff_cache_read(r->f->f[2].ci, got, RR_SPAN, 0, 0) != RR_SPAN)
			r->err = -EIO;
	}
	free(got);
	return NULL;
}

/*
 * Readers run while a zone is reset and rewritten with shorter data, again
 * and again: no reader may cache what the zone held before the reset (its
 * map_read and device read would straddle the reset), so after each round
 * the file reads as the new data, then zeros. A stress test: without the
 * invalidate lock it fails in about one run of two.
 */
static void test_cache_readers_vs_resets(void **state)
{
	struct fx *f = *state;
	struct tfile *t = &f->f[2];
	struct rr r = {.f = f};
	uint8_t *buf = tu_alloc(RR_SPAN), *got = tu_alloc(RR_SPAN);
	pthread_t th[3];

	for (int k = 0; k < 3; k++)
		pthread_create(&th[k], NULL, rr_reader_fn, &r);
	for (unsigned gen = 1; gen <= TU_ROUNDS(400); gen++) {
		size_t len = (1 + (gen * 13u) % 64) * BLK, bad = RR_SPAN;

		ff_cache_invalidate_begin(t->ci);
		assert_int_equal(ff_cache_truncate(t->ci, 0), 0);
		assert_int_equal(ff_zoneq_zone_op(f->dev, t->zone, FF_ZOP_RESET), 0);
		ff_cache_invalidate_end(t->ci);
		memset(buf, (int)gen, len);
		assert_int_equal(ff_cache_write(t->ci, buf, len, 0, FF_CW_DSYNC), (ssize_t)len);
		assert_int_equal(ff_cache_read(t->ci, got, RR_SPAN, 0, 0), RR_SPAN);
		for (size_t i = 0; i < RR_SPAN && bad == RR_SPAN; i++)
			if (got[i] != (i < len ? (uint8_t)gen : 0))
				bad = i;
		if (bad != RR_SPAN)
			fail_msg("round %u: byte %zu of %zu written reads %u", gen, bad, len,
				 got[bad]);
	}
	atomic_store(&r.stop, true);
	for (int k = 0; k < 3; k++)
		pthread_join(th[k], NULL);
	assert_int_equal(r.err, 0);
	free(buf);
	free(got);
}

/* An O_DIRECT write without O_SYNC is on the device when it returns: no dirty data. */
static void test_cache_direct_write_is_written_through(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = tu_alloc(64 << 10), *got = tu_alloc(64 << 10);
	struct iovec iov = {got, 64 << 10};
	struct ff_cache_stats cs;
	struct ff_dev_stats a, b;

	tu_fill(buf, 64 << 10, 17);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_write(f->f[0].ci, buf, 64 << 10, 0, FF_CW_DIRECT), 64 << 10);
	ff_dev_stats(f->dev, &b);
	ff_cache_stats(f->c, &cs);
	assert_int_equal(cs.dirty_bytes, 0);
	assert_int_equal(b.bytes_written - a.bytes_written, 64 << 10);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 0), 64 << 10);
	assert_memory_equal(got, buf, 64 << 10);
	free(buf);
	free(got);
}

/* ---- memory: no wait while holding pins ---- */

#define PW 8 /* writers: together their first folios fill the whole budget */

static pthread_barrier_t pw_barrier;
static _Atomic int pw_calls;

/* The first map_read of each writer (its head block) waits for all the writers. */
static void pw_hook(struct tfile *t)
{
	(void)t;
	if (atomic_fetch_add(&pw_calls, 1) < PW)
		pthread_barrier_wait(&pw_barrier);
}

struct pw {
	struct fx *f;
	int id;
	ssize_t res;
};

static void *pw_fn(void *arg)
{
	struct pw *w = arg;
	uint32_t half = 128 << 10; /* max_folio / 2 */
	uint64_t off = (uint64_t)(w->id / CNV) * (1 << 20) + half + 100;
	uint8_t *buf = tu_alloc(half);

	tu_fill(buf, half, (unsigned)w->id);
	/* a half-folio folio, then a block-sized one: the second needs memory */
	w->res = ff_cache_write(w->f->f[w->id % CNV].ci, buf, half, off, FF_CW_DSYNC);
	free(buf);
	return NULL;
}

/*
 * Sync writers in a cache of 4 x max_folio whose first folios, pinned, fill
 * the whole budget before any asks for its second: one that waited for
 * memory while holding its pins would wait for the others' pins, and they
 * for its. Each submits what it holds instead. A hang fails at the bound.
 */
static void test_cache_write_through_no_wait_holding_pins(void **state)
{
	struct fx *f = *state;
	struct pw w[PW];
	pthread_t th[PW];
	struct timespec ts;

	pthread_barrier_init(&pw_barrier, NULL, PW);
	atomic_store(&pw_calls, 0);
	atomic_store(&map_read_hook, pw_hook);
	for (int i = 0; i < PW; i++) {
		w[i] = (struct pw){f, i, 0};
		pthread_create(&th[i], NULL, pw_fn, &w[i]);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60; /* a bound on a hang, not a wait for an event */
	for (int i = 0; i < PW; i++) {
		if (pthread_timedjoin_np(th[i], NULL, &ts)) {
			/* deadlocked: no teardown can run; fail the program */
			fprintf(stderr, "writer %d still waiting after 60 s: deadlock\n", i);
			abort();
		}
		assert_int_equal(w[i].res, 128 << 10);
	}
	atomic_store(&map_read_hook, NULL);
	pthread_barrier_destroy(&pw_barrier);
}

/* ---- writeback does not pass over a folio a reader is filling ---- */

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool armed, entered, open;
} fg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};

/* Once armed, a map_read (a reader's fill) waits until the test opens the gate. */
static void fill_gate_hook(struct tfile *t)
{
	(void)t;
	pthread_mutex_lock(&fg.m);
	if (fg.armed) {
		fg.entered = true;
		pthread_cond_broadcast(&fg.cv);
		while (!fg.open)
			pthread_cond_wait(&fg.cv, &fg.m);
	}
	pthread_mutex_unlock(&fg.m);
}

struct fill_reader {
	struct ff_cinode *ci;
	uint8_t *buf;
	ssize_t res;
};

static void *fill_reader_fn(void *arg)
{
	struct fill_reader *r = arg;

	r->res = ff_cache_read(r->ci, r->buf, 128 << 10, 128 << 10, 0);
	return NULL;
}

static void *fill_opener_fn(void *arg)
{
	(void)arg;
	usleep(200 * 1000); /* lets an fsync that passes over the filling folio return first */
	pthread_mutex_lock(&fg.m);
	fg.open = true;
	pthread_cond_broadcast(&fg.cv);
	pthread_mutex_unlock(&fg.m);
	return NULL;
}

/*
 * fsync while a reader fills other blocks of the same folio: the dirty block
 * is written back before fsync returns. A writeback that skipped the folio
 * while it was filling returned with the block still dirty (fsync'd data not
 * on the device; a hole punch then dropped it from the cache for good).
 */
static void test_cache_fsync_waits_for_fill(void **state)
{
	struct fx *f = *state;
	struct ff_cinode *ci = f->f[0].ci;
	uint8_t *buf = tu_alloc(256 << 10), *got = tu_alloc(BLK);
	struct fill_reader r = {ci, tu_alloc(128 << 10), 0};
	struct iovec iov = {got, BLK};
	struct ff_cache_stats st;
	pthread_t rd, op;

	/* one 256 KiB folio, written back, then its second half not uptodate */
	tu_fill(buf, 256 << 10, 41);
	assert_int_equal(twrite(f, 0, buf, 256 << 10, 0, 0), 256 << 10);
	assert_int_equal(ff_cache_fsync(ci, true), 0);
	ff_cache_invalidate_begin(ci);
	assert_int_equal(ff_cache_truncate(ci, 128 << 10), 0);
	ff_cache_invalidate_end(ci);
	ff_cache_inode_set_size(ci, 256 << 10);
	/* block 0 dirty in that folio */
	tu_fill(buf, BLK, 42);
	assert_int_equal(twrite(f, 0, buf, BLK, 0, 0), BLK);
	fg.armed = true;
	fg.entered = fg.open = false;
	atomic_store(&map_read_hook, fill_gate_hook);
	pthread_create(&rd, NULL, fill_reader_fn, &r);
	pthread_mutex_lock(&fg.m);
	while (!fg.entered) /* the reader is filling the folio's second half, held */
		pthread_cond_wait(&fg.cv, &fg.m);
	pthread_mutex_unlock(&fg.m);
	pthread_create(&op, NULL, fill_opener_fn, NULL);
	assert_int_equal(ff_cache_fsync(ci, true), 0);
	ff_cache_stats(f->c, &st);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 0), BLK);
	assert_memory_equal(got, buf, BLK);
	pthread_join(op, NULL);
	pthread_join(rd, NULL);
	atomic_store(&map_read_hook, NULL);
	fg.armed = false;
	assert_int_equal(r.res, 128 << 10);
	free(r.buf);
	free(buf);
	free(got);
}

/*
 * The background flusher visits the inodes that have dirty blocks, not
 * every inode: with 2,000 clean inodes beside it, one dirty file is written
 * back by passes that look at a handful of inodes.
 */
static void test_cache_flusher_visits_only_dirty_inodes(void **state)
{
	struct fx *f = *state;
	enum { NCLEAN = 2000 };
	struct ff_cinode **clean = calloc(NCLEAN, sizeof(*clean));
	uint8_t *buf = tu_alloc(BLK);
	struct ff_cache_stats st;

	for (int i = 0; i < NCLEAN; i++) {
		clean[i] = ff_cache_inode_new(f->c, &f->f[0]); /* never read nor written */
		assert_non_null(clean[i]);
	}
	tu_fill(buf, BLK, 3);
	assert_int_equal(twrite(f, 0, buf, BLK, 0, 0), BLK);
	/* the flusher takes old dirty data within a second or so; wait for it (bounded) */
	for (int i = 0; i < 3000; i++) {
		ff_cache_stats(f->c, &st);
		if (!st.dirty_bytes && !st.writeback_bytes)
			break;
		usleep(10000);
	}
	assert_int_equal(st.dirty_bytes, 0);
	assert_true(st.flusher_visits >= 1);
	assert_true(st.flusher_visits <= 4);
	check_file(f, 0, buf, BLK);
	for (int i = 0; i < NCLEAN; i++)
		assert_int_equal(ff_cache_inode_free(clean[i]), 0);
	free(clean);
	free(buf);
}

/* ---- batched writeback: in-place runs in flight together ---- */

/* Read n bytes at device offset off. */
static void dev_get(struct fx *f, void *buf, size_t n, uint64_t off)
{
	struct iovec iov = {buf, n};

	assert_int_equal(ff_dev_read(f->dev, &iov, 1, off), (ssize_t)n);
}

/*
 * fsync of 32 dirty blocks scattered over a conventional file (W7's pattern:
 * 4 KiB random writes, fsync every 32) writes them back as one batch in
 * flight together, not one write after another, and all of them land.
 */
static void test_cache_fsync_writes_runs_in_parallel(void **state)
{
	struct fx *f = *state;
	enum { NR = 32 };
	uint8_t *buf = tu_alloc(NR * BLK), *got = tu_alloc(BLK);
	struct ff_dev_stats a, b;

	tu_fill(buf, NR * BLK, 71);
	for (int i = 0; i < NR; i++) {
		uint64_t off =
			(uint64_t)((i * 37) % 64) * (128 << 10); /* distinct, never adjacent */

		assert_int_equal(twrite(f, 0, buf + i * BLK, BLK, off, 0), BLK);
	}
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_cache_fsync(f->f[0].ci, false), 0);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(ff_cache_inode_dirty(f->f[0].ci), 0);
	assert_int_equal(b.write_errors, a.write_errors);
	/* every block was written once, and more than one was in flight at a time */
	assert_true(b.bytes_written - a.bytes_written <= (uint64_t)NR * BLK);
	assert_true(b.batch_max >= 2);
	assert_true(b.batch_max <= NR);
	for (int i = 0; i < NR; i++) {
		uint64_t off = (uint64_t)((i * 37) % 64) * (128 << 10);

		dev_get(f, got, BLK, off); /* file 0 is zone 0, in place */
		assert_memory_equal(got, buf + i * BLK, BLK);
	}
	free(buf);
	free(got);
}

static _Atomic uint64_t bad_off = UINT64_MAX;
static int fail_at_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	uint64_t bad = atomic_load(&bad_off);

	(void)dev;
	return bad >= off && bad < off + len ? -EIO : 0;
}

/*
 * One run of a batch fails: only its blocks stay dirty, the other runs are
 * on the device and clean, the error reaches fsync once, and the next fsync
 * writes the retained block.
 */
static void test_cache_fsync_failed_run_stays_dirty(void **state)
{
	struct fx *f = *state;
	enum { NR = 8, BAD = 4 };
	uint8_t *buf = tu_alloc(NR * BLK), *got = tu_alloc(BLK), *zero = calloc(1, BLK);

	tu_fill(buf, NR * BLK, 72);
	for (int i = 0; i < NR; i++)
		assert_int_equal(twrite(f, 1, buf + i * BLK, BLK, (uint64_t)i * (256 << 10), 0),
				 BLK);
	atomic_store(&bad_off, ZS + (uint64_t)BAD * (256 << 10)); /* file 1 is zone 1 */
	ff_dev_fault_hook = fail_at_hook;
	assert_int_equal(ff_cache_fsync(f->f[1].ci, false), -EIO);
	assert_int_equal(ff_cache_inode_dirty(f->f[1].ci), 1);
	for (int i = 0; i < NR; i++) {
		dev_get(f, got, BLK, ZS + (uint64_t)i * (256 << 10));
		assert_memory_equal(got, i == BAD ? zero : buf + i * BLK, BLK);
	}
	/* the cache still serves the failed block's data */
	assert_int_equal(ff_cache_read(f->f[1].ci, got, BLK, (uint64_t)BAD * (256 << 10), 0), BLK);
	assert_memory_equal(got, buf + BAD * BLK, BLK);
	/* the device recovers: the next fsync writes it and succeeds */
	atomic_store(&bad_off, UINT64_MAX);
	assert_int_equal(ff_cache_fsync(f->f[1].ci, false), 0);
	assert_int_equal(ff_cache_inode_dirty(f->f[1].ci), 0);
	dev_get(f, got, BLK, ZS + (uint64_t)BAD * (256 << 10));
	assert_memory_equal(got, buf + BAD * BLK, BLK);
	free(buf);
	free(got);
	free(zero);
}

/*
 * A filesystem with both kinds of blocks in one file, alternating every
 * 64 KiB: even ones in place (zone 1), odd ones appended to zone 2 (out of
 * place, as the posix format's slots). While in-place mappings wait in a
 * batch, map_write is asked with FF_MAPW_INPLACE and refuses the
 * out-of-place blocks; the cache writes its batch first and asks again. So
 * no out-of-place answer (which may wait, for a slot or for GC) is given
 * while an in-place mapping is held, and every block lands.
 */
#define MX_STEP (64u << 10)
struct mx {
	_Atomic int held;      /* in-place mappings given and not done yet */
	_Atomic int refused;   /* FF_MAPW_INPLACE answers of len 0 */
	_Atomic int violation; /* out-of-place answers while held > 0 */
	_Atomic int appends;
	pthread_mutex_t lock; /* guards landed */
	uint64_t landed[64];  /* by file offset / MX_STEP: where an appended block landed */
};

static int mx_map_read(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m)
{
	(void)fs_inode;
	m->type = FF_MAP_HOLE; /* the test reads the device directly */
	m->file_off = off;
	m->len = len;
	return 0;
}

static int mx_map_write(void *fs_inode, uint64_t off, uint64_t len, unsigned flags,
			struct ff_map *m)
{
	struct mx *x = fs_inode;

	m->file_off = off;
	if (!((off / MX_STEP) % 2)) {
		uint64_t room = ff_round_up(off + 1, MX_STEP) - off;

		m->type = FF_MAP_INPLACE;
		m->zone = 1;
		m->dev_off = ZS + off;
		m->len = room < len ? room : len;
		atomic_fetch_add(&x->held, 1);
		return 0;
	}
	if (flags & FF_MAPW_INPLACE) {
		atomic_fetch_add(&x->refused, 1);
		m->type = FF_MAP_INPLACE;
		m->len = 0;
		return 0;
	}
	if (atomic_load(&x->held))
		atomic_fetch_add(&x->violation, 1);
	m->type = FF_MAP_APPEND;
	m->zone = 2;
	m->dev_off = FF_MAP_ANYWHERE;
	m->len = BLK; /* one block per append: where each landed is recorded */
	return 0;
}

static int mx_write_done(void *fs_inode, const struct ff_map *m, uint64_t landed_at, ssize_t result,
			 unsigned flags)
{
	struct mx *x = fs_inode;

	(void)flags;
	if (m->type == FF_MAP_INPLACE) {
		atomic_fetch_sub(&x->held, 1);
		return 0;
	}
	atomic_fetch_add(&x->appends, 1);
	if (result >= 0) {
		pthread_mutex_lock(&x->lock);
		x->landed[m->file_off / MX_STEP] = landed_at;
		pthread_mutex_unlock(&x->lock);
	}
	return 0;
}

static void test_cache_batch_never_holds_inplace_across_out_of_place(void **state)
{
	struct fx *f = *state;
	static const struct ff_cache_ops ops = {mx_map_read, mx_map_write, mx_write_done, NULL};
	struct mx *x = calloc(1, sizeof(*x));
	struct ff_cache *c;
	struct ff_cinode *ci;
	enum { NR = 24 };
	uint8_t *buf = tu_alloc(NR * BLK), *got = tu_alloc(BLK);
	uint64_t offs[NR];

	pthread_mutex_init(&x->lock, NULL);
	assert_int_equal(ff_cache_create(f->dev, &ops, NULL, &c), 0);
	ci = ff_cache_inode_new(c, x);
	assert_non_null(ci);
	tu_fill(buf, NR * BLK, 73);
	for (int i = 0; i < NR; i++) {
		offs[i] = (uint64_t)i * MX_STEP;
		assert_int_equal(ff_cache_write(ci, buf + i * BLK, BLK, offs[i], 0), BLK);
	}
	assert_int_equal(ff_cache_fsync(ci, false), 0);
	assert_int_equal(ff_cache_inode_dirty(ci), 0);
	assert_int_equal(atomic_load(&x->held), 0);
	assert_int_equal(atomic_load(&x->violation), 0);
	assert_int_equal(atomic_load(&x->refused), NR / 2);
	assert_int_equal(atomic_load(&x->appends), NR / 2);
	for (int i = 0; i < NR; i++) {
		uint64_t at = i % 2 ? x->landed[i] : ZS + offs[i];

		assert_true(at >= ZS && at < 3 * ZS);
		dev_get(f, got, BLK, at);
		assert_memory_equal(got, buf + i * BLK, BLK);
	}
	assert_int_equal(ff_cache_inode_free(ci), 0);
	assert_int_equal(ff_cache_destroy(c), 0);
	pthread_mutex_destroy(&x->lock);
	free(x);
	free(buf);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_flusher_visits_only_dirty_inodes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_freed_memory_is_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_spares_follow_the_stream, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_sync_write_submits_only_touched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_folio_mode_writes_whole_folio,
						setup_folio_mode, teardown),
		cmocka_unit_test_setup_teardown(test_cache_folio_mode_seq_append, setup_folio_mode,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_writeback_mode_sync_write, setup_wb_mode,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_fsync_waits_for_other_write_through,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_eviction_keeps_dirty, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_errors_reach_writer_and_fsync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_threads_one_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_threads_many_inodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_holes_read_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_shared_zone_two_inodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_readers_vs_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_direct_write_is_written_through, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_fsync_waits_for_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_write_through_no_wait_holding_pins,
						setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_cache_fsync_writes_runs_in_parallel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_fsync_failed_run_stays_dirty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_cache_batch_never_holds_inplace_across_out_of_place, setup, teardown),
	};
	if (getenv("FOLIOFS_TEST_FILTER")) /* one test by name, for a bisect */
		cmocka_set_test_filter(getenv("FOLIOFS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
