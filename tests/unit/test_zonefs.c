// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the zonefs format's data path through its public interface
 * (ff_fs_*), over a real emulated zoned image: size after data under
 * concurrent writeback and readers, finishing a zone with a partial tail,
 * O_DIRECT completion and its capacity rule, split async direct writes out of
 * order, a failed write-through that other writers' blocks joined, and sync
 * appenders in a tiny cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "testutil.h"
#include "../../src/dev/internal.h"

#define ZS  (8ull << 20)
#define NZ  12
#define BLK 4096u

struct zfx {
	char path[256];
	struct ff_fs_opts o;
	struct ff_fs *fs;
};

static void do_mount(struct zfx *z)
{
	tu_fs_mount(z->path, &z->o, &z->fs, NULL);
}

static int setup_opts(void **state, const struct ff_fs_opts *o)
{
	struct zfx *z = calloc(1, sizeof(*z));
	struct ff_mkfs_opts mo = {.format = FF_FMT_ZONEFS,
				  .force = true,
				  .emulate_zoned = true,
				  .zone_size = ZS,
				  .conv_zones = 2,
				  .zone_opts = true};

	assert_non_null(z);
	assert_int_equal(
		tu_fs_mkimage(z->path, sizeof(z->path), "zonefs", NZ * ZS + (1 << 20), &mo), 0);
	if (o)
		z->o = *o;
	do_mount(z);
	*state = z;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, NULL);
}

static int setup_repair(void **state)
{
	struct ff_fs_opts o = {.errors = FF_ERRORS_REPAIR};

	return setup_opts(state, &o);
}

static int setup_tiny(void **state)
{
	struct ff_fs_opts o = {.cache = {.cache_size = 256 << 10, .max_folio = 64 << 10}};

	return setup_opts(state, &o);
}

static int setup_tiny_repair(void **state)
{
	struct ff_fs_opts o = {.cache = {.cache_size = 256 << 10, .max_folio = 64 << 10},
			       .errors = FF_ERRORS_REPAIR};

	return setup_opts(state, &o);
}

static int teardown(void **state)
{
	struct zfx *z = *state;

	/* the hook cleared after the flusher stopped: it reads the hook */
	tu_fs_unmount_rm(z->fs, z->path);
	ff_dev_fault_hook = NULL;
	free(z);
	return 0;
}

static void remount(struct zfx *z)
{
	tu_fs_remount(z->path, &z->o, &z->fs, NULL);
}

/* The inode of dir/name ("seq", "0"). */
static uint64_t ino_of(struct zfx *z, const char *dir, const char *name)
{
	struct stat st;

	assert_int_equal(ff_fs_lookup(z->fs, ff_fs_root_ino(z->fs), dir, &st), 0);
	assert_int_equal(ff_fs_lookup(z->fs, (uint64_t)st.st_ino, name, &st), 0);
	return (uint64_t)st.st_ino;
}

static uint64_t size_of(struct zfx *z, uint64_t ino)
{
	struct stat st;

	assert_int_equal(ff_fs_getattr(z->fs, ino, &st), 0);
	return (uint64_t)st.st_size;
}

/* Read [0, len) of ino and compare with want. */
static void check_content(struct zfx *z, uint64_t ino, const uint8_t *want, size_t len)
{
	uint8_t *got = tu_alloc(len);

	assert_int_equal(ff_fs_read(z->fs, ino, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

/* ---- size after data ---- */

#define SAD_TOTAL (6u << 20)
#define SAD_FILES 3

struct sad {
	struct zfx *z;
	uint64_t ino;
	const uint8_t *src;
	_Atomic bool stop;
	int err;
};

static void *sad_fsync_fn(void *arg)
{
	struct sad *s = arg;

	while (!atomic_load(&s->stop)) {
		int r = ff_fs_fsync(s->z->fs, s->ino, true);

		if (r && r != -EINVAL) /* EINVAL: a partial tail stays cached */
			s->err = r;
	}
	return NULL;
}

static void *sad_reader_fn(void *arg)
{
	struct sad *s = arg;
	uint8_t *got = tu_alloc(64 << 10);

	while (!atomic_load(&s->stop) && !s->err) {
		uint64_t size = size_of(s->z, s->ino),
			 from = size > (64 << 10) ? size - (64 << 10) : 0;
		ssize_t n = ff_fs_read(s->z->fs, s->ino, got, (size_t)(size - from), from);

		/* every byte below the size a reader saw is the writer's */
		if (n != (ssize_t)(size - from) || memcmp(got, s->src + from, (size_t)n))
			s->err = -EILSEQ;
	}
	free(got);
	return NULL;
}

static void *sad_writer_fn(void *arg)
{
	struct sad *s = arg;
	uint64_t pos = 0;
	unsigned i = 0;

	while (pos < SAD_TOTAL && !s->err) {
		size_t n = 1 + (i++ * 7919u) % 3000;
		ssize_t r;

		if (n > SAD_TOTAL - pos)
			n = SAD_TOTAL - pos;
		r = ff_fs_write(s->z->fs, s->ino, s->src + pos, n, pos, 0);
		if (r != (ssize_t)n)
			s->err = r < 0 ? (int)r : -EIO;
		pos += n;
	}
	atomic_store(&s->stop, true);
	return NULL;
}

/*
 * Buffered appends of odd lengths to several files while other threads
 * fsync and read them: every acknowledged byte reads back, while running and
 * after a remount. The size must never run ahead of the cached bytes, or
 * writeback writes a tail block half-filled and skips the rest of it as
 * below the pointer.
 */
static void test_zonefs_size_after_data(void **state)
{
	struct zfx *z = *state;
	struct sad s[SAD_FILES];
	uint8_t *src = tu_alloc(SAD_TOTAL);
	pthread_t th[SAD_FILES][3];

	tu_fill(src, SAD_TOTAL, 42);
	for (int f = 0; f < SAD_FILES; f++) {
		char name[8];

		snprintf(name, sizeof(name), "%d", f);
		s[f] = (struct sad){.z = z, .ino = ino_of(z, "seq", name), .src = src};
		pthread_create(&th[f][0], NULL, sad_writer_fn, &s[f]);
		pthread_create(&th[f][1], NULL, sad_fsync_fn, &s[f]);
		pthread_create(&th[f][2], NULL, sad_reader_fn, &s[f]);
	}
	for (int f = 0; f < SAD_FILES; f++)
		for (int t = 0; t < 3; t++)
			pthread_join(th[f][t], NULL);
	for (int f = 0; f < SAD_FILES; f++) {
		assert_int_equal(s[f].err, 0);
		assert_int_equal(ff_fs_fsync(z->fs, s[f].ino, false), 0);
	}
	remount(z);
	for (int f = 0; f < SAD_FILES; f++) {
		assert_int_equal(size_of(z, s[f].ino), SAD_TOTAL);
		check_content(z, s[f].ino, src, SAD_TOTAL);
	}
	free(src);
}

/* ---- reads racing resets ---- */

struct rvr {
	struct zfx *z;
	uint64_t ino;
	_Atomic bool stop;
	_Atomic uint64_t reads, bad;
};

/* Every byte a writer puts in the file is non-zero: zeros read back were never written. */
static void *rvr_writer_fn(void *arg)
{
	struct rvr *r = arg;
	uint8_t *buf = tu_alloc(128 << 10);
	struct stat st = {.st_size = 0};

	for (unsigned gen = 0; !atomic_load(&r->stop); gen++) {
		uint64_t size = 0;

		memset(buf, 1 + (int)(gen % 250), 128 << 10);
		for (int i = 0; i < 4; i++) {
			size_t len = 4096u * (1 + (gen + (unsigned)i) % 16) + (i == 3 ? 100 : 0);
			ssize_t w = ff_fs_write(r->z->fs, r->ino, buf, len, size,
						i == 1 ? FF_CW_SYNC : 0);

			if (w != (ssize_t)len)
				break;
			size += len;
		}
		if (ff_fs_setattr(r->z->fs, r->ino, &st, FF_SET_SIZE))
			break;
	}
	free(buf);
	return NULL;
}

static void *rvr_reader_fn(void *arg)
{
	struct rvr *r = arg;
	uint8_t *buf = tu_alloc(256 << 10);

	while (!atomic_load(&r->stop)) {
		ssize_t n = ff_fs_read(r->z->fs, r->ino, buf, 256 << 10, 0);

		atomic_fetch_add(&r->reads, 1);
		for (ssize_t i = 0; i < n; i++) {
			if (!buf[i]) {
				atomic_fetch_add(&r->bad, 1);
				break;
			}
		}
	}
	free(buf);
	return NULL;
}

/*
 * A read racing a reset returns what the file held before it or after it,
 * never zeros below a size that the reset has already taken away.
 */
static void test_zonefs_reads_racing_resets(void **state)
{
	struct zfx *z = *state;
	struct rvr r = {.z = z, .ino = ino_of(z, "seq", "1")};
	pthread_t w, rd[2];
	struct timespec ts = {.tv_sec = 1, .tv_nsec = 500000000};

	pthread_create(&w, NULL, rvr_writer_fn, &r);
	for (int i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, rvr_reader_fn, &r);
	nanosleep(&ts, NULL); /* how long the race runs, not a wait for an event */
	atomic_store(&r.stop, true);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	assert_true(atomic_load(&r.reads) > 0);
	assert_int_equal(atomic_load(&r.bad), 0);
}

/* ---- finish ---- */

/* Truncate to the capacity finishes the zone: a buffered partial tail goes out first, padded. */
static void test_zonefs_finish_writes_partial_tail(void **state)
{
	struct zfx *z = *state;
	uint64_t ino = ino_of(z, "seq", "1");
	uint8_t *src = tu_alloc(3 * BLK), *want = tu_alloc(3 * BLK);
	struct stat st = {.st_size = (off_t)ZS};

	tu_fill(src, 3 * BLK, 7);
	memcpy(want, src, 2 * BLK + 1000);
	assert_int_equal(ff_fs_write(z->fs, ino, src, 2 * BLK + 1000, 0, 0), 2 * BLK + 1000);
	assert_int_equal(ff_fs_setattr(z->fs, ino, &st, FF_SET_SIZE), 0);
	assert_int_equal(size_of(z, ino), ZS);
	check_content(z, ino, want, 3 * BLK);
	remount(z);
	assert_int_equal(size_of(z, ino), ZS);
	check_content(z, ino, want, 3 * BLK); /* the data, then zeros */
	free(src);
	free(want);
}

/* ---- O_DIRECT ---- */

/* An O_DIRECT write completes on the device: the device's error reaches the writer. */
static void test_zonefs_direct_write_reaches_device(void **state)
{
	struct zfx *z = *state;
	uint64_t cnv = ino_of(z, "cnv", "0"), seq = ino_of(z, "seq", "2");
	uint8_t *buf = tu_alloc(64 << 10);

	tu_fill(buf, 64 << 10, 3);
	ff_dev_fault_hook = tu_fail_hook;
	tu_fail_writes(true);
	assert_int_equal(ff_fs_write(z->fs, cnv, buf, 64 << 10, 0, FF_CW_DIRECT), -EIO);
	assert_int_equal(ff_fs_write(z->fs, seq, buf, 64 << 10, 0, FF_CW_DIRECT), -EIO);
	assert_int_equal(size_of(z, seq), 0); /* a failed append leaves nothing */
	tu_fail_writes(false);
	assert_int_equal(ff_fs_write(z->fs, seq, buf, 64 << 10, 0, FF_CW_DIRECT), 64 << 10);
	remount(z);
	check_content(z, seq, buf, 64 << 10);
	free(buf);
}

static uint64_t dev_flushes(struct zfx *z)
{
	return tu_fs_stat(z->fs, "dev_flushes");
}

/*
 * fsync and the close-time flush cost the device a cache flush only when
 * something written is not durable yet: a close with nothing written, or an
 * fsync after O_SYNC writes, flushes nothing; a buffered write's fsync makes
 * it durable (one run of blocks: a FUA write, so no flush either).
 */
static void test_zonefs_flush_only_when_needed(void **state)
{
	struct zfx *z = *state;
	uint64_t seq = ino_of(z, "seq", "1"), cnv = ino_of(z, "cnv", "0"), n, fua;
	uint8_t *buf = tu_alloc(64 << 10);
	unsigned of = 0;

	tu_fill(buf, 64 << 10, 9);
	assert_int_equal(ff_fs_open(z->fs, seq, O_WRONLY, &of), 0);
	n = dev_flushes(z);
	assert_int_equal(ff_fs_flush(z->fs, seq), 0);
	assert_int_equal(ff_fs_fsync(z->fs, cnv, false), 0);
	assert_int_equal(dev_flushes(z), n);
	assert_int_equal(ff_fs_write(z->fs, seq, buf, 16 << 10, 0, FF_CW_SYNC), 16 << 10);
	n = dev_flushes(z);
	assert_int_equal(ff_fs_fsync(z->fs, seq, true), 0);
	assert_int_equal(dev_flushes(z), n);
	assert_int_equal(ff_fs_write(z->fs, seq, buf + (16 << 10), 16 << 10, 16 << 10, 0),
			 16 << 10);
	n = dev_flushes(z);
	fua = tu_fs_stat(z->fs, "dev_fua_writes");
	assert_int_equal(ff_fs_flush(z->fs, seq), 0);
	assert_int_equal(dev_flushes(z), n);
	assert_true(tu_fs_stat(z->fs, "dev_fua_writes") > fua);
	assert_int_equal(ff_fs_release(z->fs, seq, O_WRONLY), 0);
	remount(z);
	assert_int_equal(size_of(z, seq), 32 << 10);
	check_content(z, seq, buf, 32 << 10);
	free(buf);
}

struct dio {
	struct zfx *z;
	uint64_t ino, off;
	const uint8_t *buf;
	size_t len;
	ssize_t res;
};

static void *dio_fn(void *arg)
{
	struct dio *d = arg;

	d->res = ff_fs_write(d->z->fs, d->ino, d->buf, d->len, d->off, FF_CW_DIRECT);
	return NULL;
}

/*
 * FUSE splits an async O_DIRECT write of 2 MiB into two 1 MiB requests that
 * may run in either order: the second waits for the first.
 */
static void test_zonefs_split_direct_write_out_of_order(void **state)
{
	struct zfx *z = *state;
	uint64_t ino = ino_of(z, "seq", "3");
	uint8_t *src = tu_alloc(2 << 20);
	struct dio d;
	pthread_t th;
	ssize_t r;

	tu_fill(src, 2 << 20, 11);
	/* the first half from another thread, most likely after the second half arrived */
	d = (struct dio){z, ino, 0, src, 1 << 20, 0};
	pthread_create(&th, NULL, dio_fn, &d);
	r = ff_fs_write(z->fs, ino, src + (1 << 20), 1 << 20, 1 << 20, FF_CW_DIRECT);
	pthread_join(th, NULL);
	assert_int_equal(r, 1 << 20);
	assert_int_equal(d.res, 1 << 20);
	assert_int_equal(size_of(z, ino), 2 << 20);
	/* with no predecessor coming, the wait is bounded, and nothing is written */
	assert_int_equal(ff_fs_write(z->fs, ino, src, BLK, 3 << 20, FF_CW_DIRECT), -EINVAL);
	assert_int_equal(size_of(z, ino), 2 << 20);
	remount(z);
	check_content(z, ino, src, 2 << 20);
	free(src);
}

/*
 * A direct write crossing the capacity writes nothing and gets EFBIG (FUSE's
 * async direct I/O would turn a short count into EIO for written data); any
 * other write gets the kernel's short count.
 */
static void test_zonefs_direct_write_crossing_capacity(void **state)
{
	struct zfx *z = *state;
	uint64_t ino = ino_of(z, "seq", "4");
	uint8_t *buf = tu_alloc(1 << 20);
	uint64_t pos = 0;

	tu_fill(buf, 1 << 20, 5);
	while (pos < ZS - (1 << 20)) {
		assert_int_equal(ff_fs_write(z->fs, ino, buf, 1 << 20, pos, FF_CW_DSYNC), 1 << 20);
		pos += 1 << 20;
	}
	assert_int_equal(ff_fs_write(z->fs, ino, buf, 1 << 20, pos, 0), 1 << 20);
	pos += 1 << 20;
	assert_int_equal(size_of(z, ino), ZS);
	/* full: any write is EFBIG */
	assert_int_equal(ff_fs_write(z->fs, ino, buf, BLK, pos, FF_CW_DIRECT), -EFBIG);
	/* one block short of the capacity, on a fresh zone */
	ino = ino_of(z, "seq", "5");
	pos = 0;
	while (pos < ZS - BLK) {
		size_t n = ZS - BLK - pos < (1 << 20) ? (size_t)(ZS - BLK - pos) : 1 << 20;

		assert_int_equal(ff_fs_write(z->fs, ino, buf, n, pos, FF_CW_DSYNC), (ssize_t)n);
		pos += n;
	}
	assert_int_equal(ff_fs_write(z->fs, ino, buf, 2 * BLK, pos, FF_CW_DIRECT | FF_CW_DSYNC),
			 -EFBIG);
	assert_int_equal(size_of(z, ino), ZS - BLK);
	assert_int_equal(ff_fs_write(z->fs, ino, buf, 2 * BLK, pos, FF_CW_DSYNC), BLK);
	assert_int_equal(size_of(z, ino), ZS);
	/*
	 * A misaligned direct write is EINVAL before it is EFBIG, as the
	 * kernel checks the alignment of a write it has cut at the capacity:
	 * a buffered append leaves the size mid-block, 2 blocks short.
	 */
	ino = ino_of(z, "seq", "6");
	pos = 0;
	while (pos < ZS - 2 * BLK - 100) {
		uint64_t left = ZS - 2 * BLK - 100 - pos;
		size_t n = left < (1 << 20) ? (size_t)left : 1 << 20;

		assert_int_equal(ff_fs_write(z->fs, ino, buf, n, pos, 0), (ssize_t)n);
		pos += n;
	}
	assert_int_equal(ff_fs_write(z->fs, ino, buf, 3 * BLK, pos, FF_CW_DIRECT), -EINVAL);
	assert_int_equal(ff_fs_write(z->fs, ino, buf, 3 * BLK, pos, FF_CW_DIRECT | FF_CW_DSYNC),
			 -EINVAL);
	assert_int_equal(size_of(z, ino), ZS - 2 * BLK - 100);
	free(buf);
}

/* ---- errors ---- */

/*
 * A write-through that fails takes with it the dirty blocks of other writers
 * it joined: they stay dirty (their data is kept) and the next fsync reports
 * the error.
 */
static void test_zonefs_failed_write_through_keeps_joined_blocks(void **state)
{
	struct zfx *z = *state;
	uint64_t ino = ino_of(z, "cnv", "0");
	uint8_t *a = tu_alloc(BLK), *b = tu_alloc(BLK), *got = tu_alloc(BLK);

	tu_fill(a, BLK, 1);
	tu_fill(b, BLK, 2);
	assert_int_equal(ff_fs_write(z->fs, ino, a, BLK, 0, 0), BLK); /* buffered, acknowledged */
	ff_dev_fault_hook = tu_fail_hook;
	tu_fail_writes(true);
	assert_int_equal(ff_fs_write(z->fs, ino, b, BLK, BLK / 2, FF_CW_DSYNC), -EIO);
	tu_fail_writes(false);
	assert_int_equal(ff_fs_fsync(z->fs, ino, false), -EIO); /* the joined blocks' error */
	assert_int_equal(ff_fs_fsync(z->fs, ino, false), 0);
	remount(z);
	assert_int_equal(ff_fs_read(z->fs, ino, got, BLK / 2, 0), BLK / 2);
	assert_memory_equal(got, a, BLK / 2);
	free(a);
	free(b);
	free(got);
}

/* Fails the device write numbered fail_at (from 1) after arming, once. */
static _Atomic int write_calls, fail_at;
static int fail_nth_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)off;
	(void)len;
	return atomic_fetch_add(&write_calls, 1) + 1 == atomic_load(&fail_at) ? -EIO : 0;
}

/*
 * A sync write larger than a write-through batch (a quarter of a tiny cache)
 * fails in its third batch: the reply is the short count of what was
 * written, the file ends at the zone's pointer, and the next append goes
 * after it. An error reply with the file left shorter than the zone would
 * have the next append skip the old bytes as already stored, and read them
 * back after a remount in place of the new ones.
 */
static void test_zonefs_failed_batch_gives_short_count(void **state)
{
	struct zfx *z = *state;
	uint64_t ino = ino_of(z, "seq", "0"), size;
	uint8_t *a = tu_alloc(1 << 20), *b = tu_alloc(1 << 20), *want = tu_alloc(2 << 20);
	ssize_t r;

	tu_fill(a, 1 << 20, 31);
	tu_fill(b, 1 << 20, 32);
	atomic_store(&write_calls, 0);
	atomic_store(&fail_at, 3);
	ff_dev_fault_hook = fail_nth_hook;
	r = ff_fs_write(z->fs, ino, a, 1 << 20, 0, FF_CW_DSYNC);
	assert_true(r > 0 && r < (1 << 20) && r % BLK == 0);
	size = size_of(z, ino);
	assert_true(size >= (uint64_t)r && size < (1 << 20));
	memcpy(want, a, size);
	memcpy(want + size, b, 1 << 20);
	assert_int_equal(ff_fs_write(z->fs, ino, b, 1 << 20, size, FF_CW_DSYNC), 1 << 20);
	check_content(z, ino, want, size + (1 << 20));
	remount(z);
	assert_int_equal(size_of(z, ino), size + (1 << 20));
	check_content(z, ino, want, size + (1 << 20));
	free(a);
	free(b);
	free(want);
}

/* ---- memory ---- */

#define APPENDERS 8

struct app {
	struct zfx *z;
	uint64_t ino;
	int id;
	int err;
	_Atomic bool done;
};

static void *app_fn(void *arg)
{
	struct app *a = arg;
	uint8_t *buf = tu_alloc(1 << 20);
	uint64_t pos = 0;

	tu_fill(buf, 1 << 20, (unsigned)a->id);
	for (unsigned i = 0; !a->err; i++) {
		size_t n = (1 + (i * 37u + (unsigned)a->id * 11u) % 64) * BLK;
		ssize_t r;

		if (pos + n > ZS)
			break; /* the zone is full */
		r = ff_fs_write(a->z->fs, a->ino, buf, n, pos, FF_CW_DSYNC);

		if (r != (ssize_t)n)
			a->err = r < 0 ? (int)r : -EIO;
		pos += n;
	}
	free(buf);
	atomic_store(&a->done, true);
	return NULL;
}

/*
 * Sync appenders in a cache of 4 x max_folio: a writer holding pinned folios
 * must not wait for memory that only the others' pins hold.
 */
static void test_zonefs_tiny_cache_sync_appenders(void **state)
{
	struct zfx *z = *state;
	struct app a[APPENDERS];
	pthread_t th[APPENDERS];
	char name[8];

	for (int i = 0; i < APPENDERS; i++) {
		snprintf(name, sizeof(name), "%d", i);
		a[i] = (struct app){.z = z, .ino = ino_of(z, "seq", name), .id = i};
		pthread_create(&th[i], NULL, app_fn, &a[i]);
	}
	for (int i = 0; i < APPENDERS; i++) {
		struct timespec ts;

		/* a bound on a hang, not a wait for an event: a deadlock fails here */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 120;
		if (pthread_timedjoin_np(th[i], NULL, &ts)) {
			/* deadlocked: no teardown can run; fail the program */
			fprintf(stderr, "appender %d still waiting after 120 s: deadlock\n", i);
			abort();
		}
		assert_int_equal(a[i].err, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zonefs_size_after_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_reads_racing_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_finish_writes_partial_tail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_flush_only_when_needed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_direct_write_reaches_device,
						setup_repair, teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_split_direct_write_out_of_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_direct_write_crossing_capacity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_zonefs_failed_write_through_keeps_joined_blocks, setup_repair,
			teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_tiny_cache_sync_appenders, setup_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_zonefs_failed_batch_gives_short_count,
						setup_tiny_repair, teardown),
	};
	if (getenv("FOLIOFS_TEST_FILTER")) /* one test by name, for a bisect */
		cmocka_set_test_filter(getenv("FOLIOFS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
