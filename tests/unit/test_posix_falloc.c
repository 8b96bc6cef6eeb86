// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the posix format's fallocate reservations (issue 11): after
 * fallocate (default mode or KEEP_SIZE) returns 0, writes anywhere in the
 * range never fail with ENOSPC, also on a device that other files then fill;
 * the space counts as used at once (statfs, st_blocks), survives a remount
 * and a crash copy once fsync'd, reads as zeros and as a hole to SEEK_DATA
 * (as XFS reports an unwritten extent), and punch, truncate and unlink (of an
 * open file too, freed at the next mount) give it back. After a fill the
 * garbage collector's reserve still lets overwrites go on. Buffered writes
 * take their room the same way at write time (delayed allocation): past the
 * free space they get ENOSPC instead of filling the cache with data no
 * write-back can place, and statfs counts their dirty blocks as used. Small
 * devices of 1 MiB zones, {emulated sequential, regular}.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "testutil.h"

#define ZS    (1ull << 20)
#define NZ    16
#define BLK   4096u
#define CHUNK (64u << 10)

struct fx {
	char path[256];
	struct ff_fs_opts o;
	struct ff_fs *fs;
	uint64_t root;
};

static const struct ff_cred cr = {1000, 1000};

static void do_mount(struct fx *p)
{
	assert_int_equal(ff_fs_mount(p->path, &p->o, &p->fs), 0);
	p->root = ff_fs_root_ino(p->fs);
}

static int setup_mk(void **state, bool emu, uint32_t max_open)
{
	struct fx *p = calloc(1, sizeof(*p));
	struct ff_mkfs_opts mo = {
		.format = FF_FMT_POSIX, .force = true, .zone_size = ZS, .zone_opts = true};
	char summary[512];

	assert_non_null(p);
	if (emu) {
		mo.emulate_zoned = true;
		mo.conv_zones = 1;
		mo.max_open = mo.max_active = max_open;
	}
	assert_int_equal(tu_make_image(p->path, sizeof(p->path), emu ? "fa-emu" : "fa-reg",
				       NZ * ZS + (1 << 20)),
			 0);
	assert_int_equal(ff_fs_mkfs(p->path, &mo, summary, sizeof(summary)), 0);
	do_mount(p);
	*state = p;
	return 0;
}

static int setup_emu(void **state)
{
	return setup_mk(state, true, 0);
}

/* two open and active zones: the log's and one writers' slot; GC's copies carry headers */
static int setup_emu_lim2(void **state)
{
	return setup_mk(state, true, 2);
}

static int setup_reg(void **state)
{
	return setup_mk(state, false, 0);
}

static int teardown(void **state)
{
	struct fx *p = *state;

	if (p->fs)
		assert_int_equal(ff_fs_unmount(p->fs), 0);
	unlink(p->path);
	free(p);
	return 0;
}

static uint64_t mkfile(struct fx *p, const char *name)
{
	struct stat st;

	assert_int_equal(ff_fs_create(p->fs, p->root, name, 0644, O_RDWR, &cr, &st, NULL), 0);
	assert_int_equal(ff_fs_release(p->fs, st.st_ino, O_RDWR), 0);
	ff_fs_forget(p->fs, st.st_ino, 1);
	return st.st_ino;
}

static uint64_t stat_of(struct fx *p, const char *key)
{
	char buf[4096], *s;
	int n = ff_fs_stats_text(p->fs, buf, sizeof(buf));

	assert_true(n > 0);
	s = strstr(buf, key);
	assert_non_null(s);
	return strtoull(s + strlen(key) + 1, NULL, 10);
}

static uint64_t bfree(struct fx *p)
{
	struct statvfs sv;

	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	return sv.f_bfree;
}

static uint64_t blocks512(struct fx *p, uint64_t ino)
{
	struct stat st;

	assert_int_equal(ff_fs_getattr(p->fs, ino, &st), 0);
	return (uint64_t)st.st_blocks;
}

static void fsck_problem(void *arg, const char *msg)
{
	(void)arg;
	print_message("fsck: %s\n", msg);
}

static void fsck_clean(struct fx *p)
{
	struct ff_fsck_report r = {.problem = fsck_problem};

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(ff_fs_fsck(p->path, FF_FSCK_READ_ONLY, &r), 0);
	assert_int_equal(r.problems, 0);
	do_mount(p);
}

static void remount(struct fx *p)
{
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	do_mount(p);
}

/* What kill -9 leaves, mounted in place of the image (p->fs unmounted first). */
static void crash_copy_mount(struct fx *p)
{
	char copy[300];

	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	assert_int_equal(rename(copy, p->path), 0);
	do_mount(p);
}

/* ---- accounting ---- */

static void test_falloc_accounting(void **state)
{
	struct fx *p = *state;
	uint8_t *rd = tu_alloc(ZS), *zero = tu_alloc(ZS), *buf = tu_alloc(CHUNK);
	uint64_t f, free0, free1, free2;
	struct stat st;

	f = mkfile(p, "f");
	free0 = bfree(p);
	/* default mode: size and space at once */
	assert_int_equal(ff_fs_fallocate(p->fs, f, 0, 0, ZS), 0);
	free1 = bfree(p);
	assert_int_equal(free0 - free1, ZS / BLK);
	assert_int_equal(blocks512(p, f), ZS / 512);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, ZS);
	/* KEEP_SIZE beyond the end */
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_KEEP_SIZE, ZS, ZS), 0);
	free2 = bfree(p);
	assert_int_equal(free1 - free2, ZS / BLK);
	assert_int_equal(stat_of(p, "reserved_blocks"), 2 * ZS / BLK);
	assert_int_equal(blocks512(p, f), 2 * ZS / 512);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, ZS);
	/* again over the same range: nothing more */
	assert_int_equal(ff_fs_fallocate(p->fs, f, 0, 0, ZS), 0);
	assert_int_equal(bfree(p), free2);
	/* zeros, and a hole to SEEK_DATA/SEEK_HOLE as XFS's unwritten extents */
	memset(rd, 0xaa, ZS);
	assert_int_equal(ff_fs_read(p->fs, f, rd, ZS, 0), ZS);
	assert_memory_equal(rd, zero, ZS);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_DATA), -ENXIO);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 0);
	/* a written block inside is data; the space it takes was reserved already */
	tu_fill(buf, CHUNK, 3);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 8 * BLK, FF_CW_DSYNC), BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_DATA), 8 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 8 * BLK, SEEK_HOLE), 9 * BLK);
	assert_int_equal(bfree(p), free2);
	assert_int_equal(blocks512(p, f), 2 * ZS / 512);
	/* a remount (its checkpoint) and a crash copy keep the reservation once fsync'd */
	remount(p);
	assert_int_equal(bfree(p), free2);
	assert_int_equal(blocks512(p, f), 2 * ZS / 512);
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_KEEP_SIZE, 2 * ZS, 4 * BLK), 0);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	crash_copy_mount(p);
	assert_int_equal(bfree(p), free2 - 4);
	assert_int_equal(blocks512(p, f), (2 * ZS + 4 * BLK) / 512);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 2 * BLK, 8 * BLK), 2 * BLK);
	assert_memory_equal(rd, buf, BLK);
	assert_memory_equal(rd + BLK, zero, BLK);
	fsck_clean(p);
	/* a truncate that grows the file into a KEEP_SIZE reservation keeps it */
	st.st_size = ZS + 3 * BLK;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(bfree(p), free2 - 4);
	assert_int_equal(blocks512(p, f), (2 * ZS + 4 * BLK) / 512);
	assert_int_equal(ff_fs_read(p->fs, f, rd, ZS, ZS / 2), ZS / 2 + 3 * BLK);
	assert_memory_equal(rd, zero, ZS / 2 + 3 * BLK);
	/* punch gives back, below the size and beyond it */
	assert_int_equal(
		ff_fs_fallocate(p->fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8 * BLK),
		0);
	assert_int_equal(bfree(p), free2 - 4 + 8);
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 2 * ZS, 4 * BLK),
			 0);
	assert_int_equal(bfree(p), free2 + 8);
	/* truncate gives back what lies beyond the new size */
	st.st_size = ZS / 2;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(blocks512(p, f), (ZS / 2 - 8 * BLK) / 512);
	assert_int_equal(bfree(p), free0 - (ZS / 2 / BLK - 8));
	fsck_clean(p);
	assert_int_equal(bfree(p), free0 - (ZS / 2 / BLK - 8));
	/* unlink gives back the rest */
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "f"), 0);
	assert_int_equal(bfree(p), free0);
	fsck_clean(p);
	assert_int_equal(bfree(p), free0);
	free(rd);
	free(zero);
	free(buf);
}

/* An orphan's reservation (unlinked while open, then a crash) is freed at mount. */
static void test_falloc_orphan(void **state)
{
	struct fx *p = *state;
	struct stat st;
	uint64_t free0;

	free0 = bfree(p);
	assert_int_equal(ff_fs_create(p->fs, p->root, "o", 0644, O_RDWR, &cr, &st, NULL), 0);
	assert_int_equal(ff_fs_fallocate(p->fs, st.st_ino, 0, 0, ZS), 0);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "o"), 0);
	/* open: still reserved */
	assert_int_equal(bfree(p), free0 - ZS / BLK);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	crash_copy_mount(p);
	assert_int_equal(bfree(p), free0);
	fsck_clean(p);
	assert_int_equal(bfree(p), free0);
}

/* ---- a full device ---- */

/*
 * Reserve, then fill the device with another file until ENOSPC: every write
 * into the reserved range still succeeds, sync and buffered, and after the
 * other file is gone, overwrites of the reserved range many times the free
 * space (garbage collection's reserve) go on.
 */
static void test_falloc_full_device(void **state)
{
	struct fx *p = *state;
	const uint64_t R = 2 * ZS;
	uint8_t *buf = tu_alloc(CHUNK), *rd = tu_alloc(CHUNK);
	uint64_t a, b, off = 0;
	ssize_t r = 0;
	int n;

	a = mkfile(p, "a");
	b = mkfile(p, "b");
	assert_int_equal(ff_fs_fallocate(p->fs, a, FALLOC_FL_KEEP_SIZE, 0, R), 0);
	tu_fill(buf, CHUNK, 7);
	for (n = 0; n < 100000; n++) {
		r = ff_fs_write(p->fs, b, buf, CHUNK, off, FF_CW_DSYNC);
		if (r != CHUNK)
			break;
		off += CHUNK;
	}
	assert_int_equal(r, -ENOSPC);
	/* the device is full outside the reservation: more space for b is refused too */
	assert_int_equal(ff_fs_fallocate(p->fs, b, 0, off, ZS), -ENOSPC);
	/* the first half of the reservation written sync, the second buffered */
	for (uint64_t o = 0; o < R / 2; o += CHUNK) {
		tu_fill(buf, CHUNK, 100 + o / CHUNK);
		assert_int_equal(ff_fs_write(p->fs, a, buf, CHUNK, o, FF_CW_DSYNC), CHUNK);
	}
	for (uint64_t o = R / 2; o < R; o += CHUNK) {
		tu_fill(buf, CHUNK, 100 + o / CHUNK);
		assert_int_equal(ff_fs_write(p->fs, a, buf, CHUNK, o, 0), CHUNK);
	}
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	for (uint64_t o = 0; o < R; o += CHUNK) {
		tu_fill(buf, CHUNK, 100 + o / CHUNK);
		assert_int_equal(ff_fs_read(p->fs, a, rd, CHUNK, o), CHUNK);
		assert_memory_equal(rd, buf, CHUNK);
	}
	assert_int_equal(blocks512(p, a), R / 512);
	assert_int_equal(stat_of(p, "reserved_blocks"), 0);
	/* the refused write's bytes stay cached for b's next fsync to report: cut them off */
	{
		struct stat st = {.st_size = (off_t)off};

		assert_int_equal(ff_fs_setattr(p->fs, b, &st, FF_SET_SIZE), 0);
	}
	fsck_clean(p);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "b"), 0);
	/* overwrites of a, ten times the device: the collector makes room */
	for (int round = 0; round < 10 * (int)(NZ * ZS / R); round++)
		for (uint64_t o = 0; o < R; o += CHUNK) {
			tu_fill(buf, CHUNK, 1000 + (uint64_t)round * 64 + o / CHUNK);
			assert_int_equal(ff_fs_write(p->fs, a, buf, CHUNK, o, FF_CW_DSYNC), CHUNK);
		}
	fsck_clean(p);
	free(buf);
	free(rd);
}

/*
 * As a database writes its preallocated log: 8 KiB O_DSYNC writes, each
 * with its own data header, into a reservation on a device that another
 * file filled; the headers the writes leave behind are reclaimed by the
 * collector as the writes go on.
 */
static void test_falloc_full_device_small_writes(void **state)
{
	struct fx *p = *state;
	const uint64_t R = 2 * ZS;
	const size_t W = 8192;
	uint8_t *buf = tu_alloc(CHUNK), *rd = tu_alloc(CHUNK);
	uint64_t a, b, off = 0;
	ssize_t r = 0;

	a = mkfile(p, "a");
	b = mkfile(p, "b");
	assert_int_equal(ff_fs_fallocate(p->fs, a, 0, 0, R), 0);
	tu_fill(buf, CHUNK, 7);
	for (int n = 0; n < 100000; n++) {
		r = ff_fs_write(p->fs, b, buf, CHUNK, off, FF_CW_DSYNC);
		if (r != CHUNK)
			break;
		off += CHUNK;
	}
	assert_int_equal(r, -ENOSPC);
	for (uint64_t o = 0; o < R; o += W) {
		tu_fill(buf, W, 500 + o / W);
		assert_int_equal(ff_fs_write(p->fs, a, buf, W, o, FF_CW_DSYNC), (ssize_t)W);
	}
	for (uint64_t o = 0; o < R; o += W) {
		tu_fill(buf, W, 500 + o / W);
		assert_int_equal(ff_fs_read(p->fs, a, rd, W, o), (ssize_t)W);
		assert_memory_equal(rd, buf, W);
	}
	{
		struct stat st = {.st_size = (off_t)off};

		assert_int_equal(ff_fs_setattr(p->fs, b, &st, FF_SET_SIZE), 0);
	}
	fsck_clean(p);
	free(buf);
	free(rd);
}

/* ---- concurrent writers ---- */

struct filler {
	struct fx *p;
	uint64_t ino, off;
	int sync;
	ssize_t last;
};

/* Writes 64 KiB pieces of its own file until ENOSPC (or 64 MiB). */
static void *fill_main(void *arg)
{
	struct filler *f = arg;
	uint8_t *buf = tu_alloc(CHUNK);

	tu_fill(buf, CHUNK, f->ino);
	while (f->off < 64 * ZS) {
		f->last = ff_fs_write(f->p->fs, f->ino, buf, CHUNK, f->off,
				      f->sync ? FF_CW_DSYNC : 0);
		if (f->last <= 0)
			break;
		/* a short count where the device fills part-way: the next write gets the error */
		f->off += (uint64_t)f->last;
		if (!f->sync && f->off % (4 * CHUNK) == 0 && ff_fs_fsync(f->p->fs, f->ino, true)) {
			f->last = -ENOSPC;
			break;
		}
	}
	free(buf);
	return NULL;
}

/*
 * Three threads fill the device with their own files (O_DSYNC and buffered)
 * while a fourth writes a reserved range: the reserved writes all succeed
 * and verify, the fillers end with ENOSPC.
 */
static void test_falloc_concurrent(void **state)
{
	struct fx *p = *state;
	const uint64_t R = 2 * ZS;
	struct filler fl[3];
	pthread_t th[3];
	uint8_t *buf = tu_alloc(CHUNK), *rd = tu_alloc(CHUNK);
	uint64_t a;
	char name[16];

	a = mkfile(p, "a");
	assert_int_equal(ff_fs_fallocate(p->fs, a, 0, 0, R), 0);
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "fill%d", k);
		fl[k] = (struct filler){.p = p, .ino = mkfile(p, name), .sync = k != 1};
		assert_int_equal(pthread_create(&th[k], NULL, fill_main, &fl[k]), 0);
	}
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t o = 0; o < R; o += CHUNK) {
			tu_fill(buf, CHUNK, 100 + pass * 64 + o / CHUNK);
			assert_int_equal(
				ff_fs_write(p->fs, a, buf, CHUNK, o, pass ? FF_CW_DSYNC : 0),
				CHUNK);
			if (!pass && o % (8 * CHUNK) == 0)
				assert_int_equal(ff_fs_fsync(p->fs, a, true), 0);
		}
	for (int k = 0; k < 3; k++) {
		assert_int_equal(pthread_join(th[k], NULL), 0);
		assert_int_equal(fl[k].last, -ENOSPC);
		snprintf(name, sizeof(name), "fill%d", k);
		/* the refused bytes stay cached for the file's next fsync: cut them off */
		{
			struct stat st = {.st_size = (off_t)fl[k].off};

			assert_int_equal(ff_fs_setattr(p->fs, fl[k].ino, &st, FF_SET_SIZE), 0);
		}
	}
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	for (uint64_t o = 0; o < R; o += CHUNK) {
		tu_fill(buf, CHUNK, 100 + 64 + o / CHUNK);
		assert_int_equal(ff_fs_read(p->fs, a, rd, CHUNK, o), CHUNK);
		assert_memory_equal(rd, buf, CHUNK);
	}
	fsck_clean(p);
	free(buf);
	free(rd);
}

/*
 * Sync writes of 64 KiB to ino from *off until one fails: its error. The
 * write that fills the device comes back short, with what fit.
 */
static ssize_t sync_fill(struct fx *p, uint64_t ino, uint64_t *off)
{
	uint8_t *buf = tu_alloc(CHUNK);
	ssize_t r = 0;

	tu_fill(buf, CHUNK, 7);
	for (int n = 0; n < 100000; n++) {
		r = ff_fs_write(p->fs, ino, buf, CHUNK, *off, FF_CW_DSYNC);
		if (r <= 0)
			break;
		assert_true(r % BLK == 0);
		*off += (uint64_t)r;
	}
	free(buf);
	return r;
}

/*
 * SEEK_DATA and SEEK_HOLE on a full device, with a file's data still cached:
 * lseek answers (the whole rest of the file as data is a valid answer), never
 * with an error, which no program expects from lseek. That data was admitted
 * before the device filled, so its write-back places it. Once the device is
 * full, a buffered write is refused at once.
 */
static void test_seek_full_device(void **state)
{
	struct fx *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	uint64_t b, c, off = 0;
	int64_t d, h;

	b = mkfile(p, "b");
	c = mkfile(p, "c");
	tu_fill(buf, BLK, 8);
	/* cached only: a hole of two blocks, then one block of data */
	assert_int_equal(ff_fs_write(p->fs, c, buf, BLK, 2 * BLK, 0), BLK);
	assert_int_equal(sync_fill(p, b, &off), -ENOSPC);
	d = ff_fs_lseek(p->fs, c, 0, SEEK_DATA);
	assert_true(d >= 0 && d <= 2 * BLK);
	h = ff_fs_lseek(p->fs, c, 2 * BLK, SEEK_HOLE);
	assert_int_equal(h, 3 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, c, 3 * BLK, SEEK_DATA), -ENXIO);
	/* what was admitted is written back */
	assert_int_equal(ff_fs_fsync(p->fs, c, false), 0);
	assert_int_equal(ff_fs_read(p->fs, c, rd, BLK, 2 * BLK), BLK);
	assert_memory_equal(rd, buf, BLK);
	/* the room sync writes left for it is theirs again: then no more cached data */
	assert_int_equal(sync_fill(p, b, &off), -ENOSPC);
	assert_int_equal(ff_fs_write(p->fs, c, buf, BLK, 4 * BLK, 0), -ENOSPC);
	assert_int_equal(ff_fs_lseek(p->fs, c, 3 * BLK, SEEK_DATA), -ENXIO);
	{
		struct stat st = {.st_size = (off_t)off};

		assert_int_equal(ff_fs_setattr(p->fs, b, &st, FF_SET_SIZE), 0);
	}
	fsck_clean(p);
	free(buf);
	free(rd);
}

/* ---- buffered writes: delayed allocation ---- */

/* A writer of 64 KiB buffered pieces of its own file from off until a write fails. */
struct bwriter {
	struct fx *p;
	uint64_t ino, off, limit;
	ssize_t last;
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* The bytes of piece k (at k * CHUNK) of a buffered writer's file. */
static void piece_fill(uint8_t *buf, uint64_t k)
{
	tu_fill(buf, CHUNK, 5000 + k);
}

static void *bwriter_main(void *arg)
{
	struct bwriter *w = arg;
	uint8_t *buf = tu_alloc(CHUNK);

	while (w->off < w->limit) {
		uint64_t in = w->off % CHUNK;

		/* after a short count the rest of the piece, then the next */
		piece_fill(buf, w->off / CHUNK);
		w->last = ff_fs_write(w->p->fs, w->ino, buf + in, CHUNK - in, w->off, 0);
		if (w->last <= 0)
			break;
		w->off += (uint64_t)w->last;
	}
	free(buf);
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Start a buffered writer of ino from off until a write fails or limit, in a thread. */
static void bwriter_start(struct bwriter *w, pthread_t *th, struct fx *p, uint64_t ino,
			  uint64_t off, uint64_t limit)
{
	*w = (struct bwriter){.p = p, .ino = ino, .off = off, .limit = limit};
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	assert_int_equal(pthread_create(th, NULL, bwriter_main, w), 0);
}

/*
 * Wait for a writer bwriter_start started, until deadline (CLOCK_REALTIME):
 * a writer that has not ended by then hangs (it waits for cache memory that
 * only dirty data no write-back can place holds), and the program ends there
 * with a failure, since nothing could unmount after it.
 */
static void bwriter_wait(struct bwriter *w, pthread_t th, const struct timespec *deadline)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, deadline) == ETIMEDOUT && !w->done) {
			print_message("buffered writer hung at %llu bytes\n",
				      (unsigned long long)w->off);
			fflush(NULL);
			_exit(1);
		}
	pthread_mutex_unlock(&w->mu);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* A buffered writer (bwriter_start), watched for 120 s. Returns the write that ended it. */
static ssize_t bwriter_run(struct fx *p, uint64_t ino, uint64_t *off, uint64_t limit)
{
	struct bwriter w;
	struct timespec ts;
	pthread_t th;

	bwriter_start(&w, &th, p, ino, *off, limit);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 120;
	bwriter_wait(&w, th, &ts);
	*off = w.off;
	return w.last;
}

static void verify_pieces(struct fx *p, uint64_t ino, uint64_t len)
{
	uint8_t *buf = tu_alloc(CHUNK), *rd = tu_alloc(CHUNK);

	for (uint64_t o = 0; o < len; o += CHUNK) {
		size_t n = len - o < CHUNK ? (size_t)(len - o) : CHUNK;

		piece_fill(buf, o / CHUNK);
		assert_int_equal(ff_fs_read(p->fs, ino, rd, n, o), (ssize_t)n);
		assert_memory_equal(rd, buf, n);
	}
	free(buf);
	free(rd);
}

/*
 * Buffered writes in a loop past the free space, with a cache of cache_size:
 * a write gets ENOSPC (maybe after a short count), as on XFS, and does not
 * wait without end for cache memory that dirty data no write-back can place
 * holds. They end near what statfs said was available. Everything admitted
 * is written back: fsync succeeds, a remount reads it back, fsck is clean.
 * Once another file is unlinked, the writes go on.
 */
static void buffered_full(struct fx *p, uint64_t cache_size)
{
	struct statvfs sv;
	uint8_t *buf = tu_alloc(CHUNK);
	uint64_t a, b, off = 0, avail0;
	ssize_t r;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.cache.cache_size = cache_size;
	p->o.cache.max_folio = CHUNK;
	do_mount(p);
	a = mkfile(p, "a");
	tu_fill(buf, CHUNK, 9);
	for (uint64_t o = 0; o < 2 * ZS; o += CHUNK)
		assert_int_equal(ff_fs_write(p->fs, a, buf, CHUNK, o, FF_CW_DSYNC), CHUNK);
	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	avail0 = sv.f_bavail * BLK;
	b = mkfile(p, "b");
	r = bwriter_run(p, b, &off, 4 * NZ * ZS);
	print_message("cache %llu MiB: writes ended (%zd) after %llu of %llu bytes available\n",
		      (unsigned long long)(cache_size >> 20), r, (unsigned long long)off,
		      (unsigned long long)avail0);
	assert_int_equal(r, -ENOSPC);
	/*
	 * what statfs said fits, within a zone: the write-backs of a small
	 * cache carry more headers than statfs's one per PX_MAX_WRITE
	 */
	assert_true(off + ZS >= avail0);
	assert_true(off <= avail0 + ZS);
	assert_true(off <= NZ * ZS);
	assert_int_equal(ff_fs_fsync(p->fs, b, false), 0);
	verify_pieces(p, b, off);
	/*
	 * a's room comes back: the writes go on. Its two zones come back as
	 * free zones, of which the collector's reserve keeps two: half a zone
	 * more always fits, a whole one only when the write-back has placed b's
	 * promised blocks (their header margin given back) in time.
	 */
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "a"), 0);
	r = bwriter_run(p, b, &off, off + ZS / 2);
	if (r != CHUNK) {
		char sb[4096];

		ff_fs_stats_text(p->fs, sb, sizeof(sb));
		print_message("after unlinking a: %zd at %llu\n%s", r, (unsigned long long)off, sb);
	}
	assert_int_equal(r, CHUNK);
	assert_int_equal(ff_fs_fsync(p->fs, b, false), 0);
	assert_int_equal(stat_of(p, "delalloc_blocks"), 0);
	remount(p);
	verify_pieces(p, b, off);
	fsck_clean(p);
	verify_pieces(p, b, off);
	free(buf);
}

/* The cache larger than the device: nothing need be written back before ENOSPC. */
static void test_buffered_full_big_cache(void **state)
{
	buffered_full(*state, 64ull << 20);
}

/* The cache smaller than the free space: write-back goes on while the writer fills. */
static void test_buffered_full_small_cache(void **state)
{
	buffered_full(*state, 4ull << 20);
}

static uint64_t bavail(struct fx *p)
{
	struct statvfs sv;

	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	return sv.f_bavail;
}

struct fsyncer {
	struct fx *p;
	const uint64_t *ino;
	int n;
	_Atomic bool stop;
	int err;
};

static void *fsyncer_main(void *arg)
{
	struct fsyncer *f = arg;

	for (int k = 0; !atomic_load(&f->stop); k++) {
		int r = ff_fs_fsync(f->p->fs, f->ino[k % f->n], k % 2);

		if (r && r != -ENOSPC && !f->err)
			f->err = r;
		usleep(2000);
	}
	return NULL;
}

/*
 * Three buffered writers of three files past the free space at once, a
 * fourth thread fsyncing their files meanwhile, a small cache: each write
 * that finds no room writes the dirty blocks back (all writers') and tries
 * again, and the three end with ENOSPC near what statfs said all together.
 * Everything admitted is written back, reads back after a remount, and
 * fsck is clean.
 */
static void test_buffered_full_concurrent(void **state)
{
	struct fx *p = *state;
	struct bwriter w[3];
	struct fsyncer fy = {0};
	struct timespec ts;
	pthread_t th[3], fth;
	uint64_t ino[3], avail0, sum = 0;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.cache.cache_size = 2ull << 20;
	p->o.cache.max_folio = CHUNK;
	do_mount(p);
	avail0 = bavail(p) * BLK;
	for (int k = 0; k < 3; k++) {
		char name[8];

		snprintf(name, sizeof(name), "w%d", k);
		ino[k] = mkfile(p, name);
	}
	fy = (struct fsyncer){.p = p, .ino = ino, .n = 3};
	assert_int_equal(pthread_create(&fth, NULL, fsyncer_main, &fy), 0);
	for (int k = 0; k < 3; k++)
		bwriter_start(&w[k], &th[k], p, ino[k], 0, 4 * NZ * ZS);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 120;
	for (int k = 0; k < 3; k++)
		bwriter_wait(&w[k], th[k], &ts);
	atomic_store(&fy.stop, true);
	assert_int_equal(pthread_join(fth, NULL), 0);
	assert_int_equal(fy.err, 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(w[k].last, -ENOSPC);
		sum += w[k].off;
	}
	print_message("three writers wrote %llu bytes, %llu available\n", (unsigned long long)sum,
		      (unsigned long long)avail0);
	assert_true(sum + ZS >= avail0);
	assert_true(sum <= avail0 + ZS);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(ff_fs_fsync(p->fs, ino[k], false), 0);
		verify_pieces(p, ino[k], w[k].off);
	}
	assert_int_equal(stat_of(p, "delalloc_blocks"), 0);
	remount(p);
	for (int k = 0; k < 3; k++)
		verify_pieces(p, ino[k], w[k].off);
	fsck_clean(p);
}

/*
 * statfs counts dirty data that no extent maps yet as used: f_bfree drops by
 * its blocks, and f_bavail by them and the headers its admission counts,
 * whether the write-back happened meanwhile or not; an unlink gives f_bfree
 * back.
 */
static void test_buffered_statfs(void **state)
{
	struct fx *p = *state;
	const uint64_t N = ZS / BLK;
	uint8_t *buf = tu_alloc(ZS);
	uint64_t f, free0, avail0, free1, avail1;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.cache.cache_size = 64ull << 20;
	do_mount(p);
	f = mkfile(p, "f");
	free0 = bfree(p);
	avail0 = bavail(p);
	tu_fill(buf, ZS, 3);
	assert_int_equal(ff_fs_write(p->fs, f, buf, ZS, 0, 0), ZS);
	free1 = bfree(p);
	avail1 = bavail(p);
	assert_int_equal(free0 - free1, N);
	assert_true(avail1 + N - N / 16 - 2 <= avail0);
	/* a rewrite of the same dirty blocks costs nothing more */
	assert_int_equal(ff_fs_write(p->fs, f, buf, ZS, 0, 0), ZS);
	assert_int_equal(bfree(p), free1);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "f"), 0);
	assert_int_equal(bfree(p), free0);
	assert_int_equal(stat_of(p, "delalloc_blocks"), 0);
	assert_true(bavail(p) >= avail1);
	fsck_clean(p);
	assert_int_equal(bfree(p), free0);
	free(buf);
}

/*
 * f_bavail is what writes can fill; fallocate's promise costs more (the
 * headers small writes into it may leave), so the largest reservation that
 * fits is below it, by a header per 16 blocks and the collector's zone, or
 * by half without that zone. Once it is made nothing more is available and
 * no new block can be written; the unlink gives it all back.
 */
static void test_statfs_falloc_fits(void **state)
{
	struct fx *p = *state;
	uint64_t f = mkfile(p, "f"), g = mkfile(p, "g"), avail = bavail(p), lo = 0, hi;

	assert_true(avail > 0);
	assert_int_equal(ff_fs_fallocate(p->fs, g, 0, 0, (avail + 1) * BLK), -ENOSPC);
	/* the largest reservation that fits: lo fits, hi does not */
	hi = avail + 1;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		int r = ff_fs_fallocate(p->fs, g, FALLOC_FL_KEEP_SIZE, 0, mid * BLK);

		if (r == 0) {
			lo = mid;
			assert_int_equal(ff_fs_unlink(p->fs, p->root, "g"), 0);
			g = mkfile(p, "g");
		} else {
			assert_int_equal(r, -ENOSPC);
			hi = mid;
		}
	}
	print_message("f_bavail %llu blocks, fallocate fits %llu\n", (unsigned long long)avail,
		      (unsigned long long)lo);
	assert_true(lo >= avail / 2 - 4);
	assert_int_equal(ff_fs_fallocate(p->fs, f, 0, 0, lo * BLK), 0);
	assert_true(bavail(p) <= 1);
	assert_int_equal(ff_fs_fallocate(p->fs, g, 0, 0, BLK), -ENOSPC);
	assert_int_equal(ff_fs_write(p->fs, g, &avail, sizeof(avail), 0, 0), -ENOSPC);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "f"), 0);
	assert_int_equal(bavail(p), avail);
	fsck_clean(p);
}

/*
 * With dirty_granularity=folio a write promises the blocks of the largest
 * folio it may dirty; those its folio did not cover are given back at once,
 * and the rest when written back: nothing stays promised after fsync.
 */
static void test_buffered_folio_giveback(void **state)
{
	struct fx *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	uint64_t f, free0;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.cache.dirty_gran = FF_DIRTY_FOLIO;
	p->o.cache.max_folio = CHUNK;
	do_mount(p);
	f = mkfile(p, "f");
	free0 = bfree(p);
	tu_fill(buf, BLK, 4);
	/* the size first, then scattered blocks in holes below it */
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, ZS, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	for (uint64_t o = 2 * BLK; o < ZS; o += 5 * CHUNK / 2)
		assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, o, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(stat_of(p, "delalloc_blocks"), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, BLK, 2 * BLK), BLK);
	assert_memory_equal(rd, buf, BLK);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "f"), 0);
	assert_int_equal(bfree(p), free0);
	fsck_clean(p);
	free(buf);
	free(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_falloc_accounting, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_accounting, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_orphan, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_orphan, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device, setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device_small_writes, setup_emu,
						teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device_small_writes, setup_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_falloc_full_device_small_writes,
						setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_concurrent, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_falloc_concurrent, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_seek_full_device, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_seek_full_device, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_big_cache, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_big_cache, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_big_cache, setup_emu_lim2,
						teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_concurrent, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_concurrent, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_concurrent, setup_emu_lim2,
						teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_small_cache, setup_emu,
						teardown),
		cmocka_unit_test_setup_teardown(test_buffered_full_small_cache, setup_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_buffered_statfs, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_statfs, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_folio_giveback, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_statfs_falloc_fits, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_statfs_falloc_fits, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_statfs_falloc_fits, setup_emu_lim2, teardown),
	};

	if (getenv("FOLIOFS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FOLIOFS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
