// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the posix format's space management (issue 12): per-zone
 * valid-block counts against the extents through every operation that drops
 * or moves blocks (overwrite, truncate, punch, unlink, rename over, remount,
 * a crash copy), and garbage collection on small devices of 1 MiB zones:
 * overwrites and deletes many times the device's size must never see ENOSPC
 * while live data is a fraction of it, every file verifies against a model
 * after each phase and after a remount, fsck -n is clean, and writers running
 * in several threads with fsync and truncates lose nothing while the
 * collector moves their blocks; and the metadata log's rotation under a long
 * metadata churn. {emulated sequential, regular} x {buffered, O_DSYNC}; emulated
 * devices with three open and active zones (GC in a zone of its own, a tiny
 * cache) and with two (GC's copies through the writers' slot, with headers).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/falloc.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "testutil.h"
#include "../../src/fs/posix.h"
#include "../../src/fs/posix_int.h"

#define ZS  (1ull << 20)
#define NZ  32
#define BLK 4096u

struct gx {
	bool emu;
	/* mounted as if the metadata were short of room (FOLIOFS_META_PRESS=1) */
	bool press;
	char path[256];
	struct ff_fs_opts o;
	struct ff_fs *fs;
	uint64_t root;
};

static const struct ff_cred cr = {1000, 1000};

static void do_mount(struct gx *p)
{
	if (p->press)
		setenv("FOLIOFS_META_PRESS", "1", 1);
	tu_fs_mount(p->path, &p->o, &p->fs, &p->root);
	unsetenv("FOLIOFS_META_PRESS");
}

static int setup_mk(void **state, bool emu, uint32_t max_open, uint32_t max_active, bool tiny)
{
	struct gx *p = calloc(1, sizeof(*p));
	struct ff_mkfs_opts mo = {
		.format = FF_FMT_POSIX, .force = true, .zone_size = ZS, .zone_opts = true};

	assert_non_null(p);
	p->emu = emu;
	if (emu) {
		mo.emulate_zoned = true;
		mo.conv_zones = 1;
		mo.max_open = max_open;
		mo.max_active = max_active;
	}
	assert_int_equal(tu_fs_mkimage(p->path, sizeof(p->path), emu ? "gc-emu" : "gc-reg",
				       NZ * ZS + (1 << 20), &mo),
			 0);
	if (tiny)
		p->o.cache = (struct ff_cache_opts){.cache_size = 256 << 10, .max_folio = 64 << 10};
	do_mount(p);
	*state = p;
	return 0;
}

static int setup_emu(void **state)
{
	return setup_mk(state, true, 0, 0, false);
}

static int setup_emu_lim(void **state)
{
	return setup_mk(state, true, 3, 3, true);
}

/* two open and active zones: the log's and one writers' slot, none for GC's own (headers) */
static int setup_emu_lim2(void **state)
{
	return setup_mk(state, true, 2, 2, false);
}

static int setup_reg(void **state)
{
	return setup_mk(state, false, 0, 0, false);
}

static int teardown(void **state)
{
	struct gx *p = *state;

	tu_fs_unmount_rm(p->fs, p->path);
	free(p);
	return 0;
}

static uint64_t stat_of(struct gx *p, const char *key)
{
	return tu_fs_stat(p->fs, key);
}

static uint64_t mkfile(struct gx *p, const char *name)
{
	struct stat st;

	/* closed and forgotten at once: an unlink then frees it, as fsck expects */
	assert_int_equal(ff_fs_create(p->fs, p->root, name, 0644, O_RDWR, &cr, &st, NULL), 0);
	assert_int_equal(ff_fs_release(p->fs, st.st_ino, O_RDWR), 0);
	ff_fs_forget(p->fs, st.st_ino, 1);
	return st.st_ino;
}

/* Every data zone's valid-block count equals the blocks its extents hold. */
static void check_valid(struct gx *p)
{
	struct px_fs *fs = (struct px_fs *)p->fs;
	uint64_t *v = calloc(fs->nr_zones, sizeof(*v)), *x = calloc(fs->nr_zones, sizeof(*x));

	assert_non_null(v);
	assert_non_null(x);
	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			for (size_t k = 0; k < i->next; k++) {
				v[i->ext[k].dev / fs->zone_size] += i->ext[k].len / BLK;
				x[i->ext[k].dev / fs->zone_size]++;
			}
	for (uint32_t z = 0; z < fs->nr_zones; z++) {
		assert_int_equal(fs->zones[z].next, x[z]);
		if (fs->zones[z].valid != v[z])
			print_message("zone %u: valid %llu, extents %llu\n", z,
				      (unsigned long long)fs->zones[z].valid,
				      (unsigned long long)v[z]);
		assert_int_equal(fs->zones[z].valid, v[z]);
	}
	ff_mutex_unlock(&fs->ns);
	free(v);
	free(x);
}

static void fsck_problem(void *arg, const char *msg)
{
	(void)arg;
	print_message("fsck: %s\n", msg);
}

static void fsck_clean(struct gx *p)
{
	struct ff_fsck_report r = {.problem = fsck_problem};

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(ff_fs_fsck(p->path, FF_FSCK_READ_ONLY, &r), 0);
	assert_int_equal(r.problems, 0);
	do_mount(p);
}

/* ---- accounting ---- */

static void test_gc_valid_counts(void **state)
{
	struct gx *p = *state;
	uint8_t *buf = tu_alloc(256 << 10);
	struct stat st = {0};
	uint64_t a, b, c;
	char copy[300];

	tu_fill(buf, 256 << 10, 1);
	a = mkfile(p, "a");
	b = mkfile(p, "b");
	c = mkfile(p, "c");
	assert_int_equal(ff_fs_write(p->fs, a, buf, 256 << 10, 0, 0), 256 << 10);
	assert_int_equal(ff_fs_write(p->fs, b, buf, 128 << 10, 0, FF_CW_DSYNC), 128 << 10);
	assert_int_equal(ff_fs_write(p->fs, c, buf, 64 << 10, 0, 0), 64 << 10);
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	check_valid(p);
	/* overwrite, buffered and sync */
	assert_int_equal(ff_fs_write(p->fs, a, buf, 8192, 4096, 0), 8192);
	assert_int_equal(ff_fs_write(p->fs, b, buf, 4096, 65536, FF_CW_DSYNC), 4096);
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	check_valid(p);
	/* truncate down and up, punch */
	st.st_size = 100000;
	assert_int_equal(ff_fs_setattr(p->fs, a, &st, FF_SET_SIZE), 0);
	check_valid(p);
	st.st_size = 300000;
	assert_int_equal(ff_fs_setattr(p->fs, a, &st, FF_SET_SIZE), 0);
	assert_int_equal(
		ff_fs_fallocate(p->fs, b, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 16384),
		0);
	check_valid(p);
	/* rename over, unlink */
	assert_int_equal(ff_fs_rename(p->fs, p->root, "c", p->root, "b", 0, NULL), 0);
	check_valid(p);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "a"), 0);
	check_valid(p);
	/* a crash copy (what kill -9 leaves) and a remount rebuild the same counts */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	{
		struct ff_fs *fs2;
		struct gx q = *p;

		assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
		q.fs = fs2;
		check_valid(&q);
		assert_int_equal(ff_fs_unmount(fs2), 0);
	}
	unlink(copy);
	fsck_clean(p);
	check_valid(p);
	free(buf);
}

/* ---- garbage collection ---- */

#define NFILES 12
#define FSIZE  (2u << 20)

struct model {
	uint8_t *data[NFILES];
	uint64_t ino[NFILES];
	uint64_t size[NFILES];
};

static void verify(struct gx *p, struct model *m)
{
	uint8_t *got = tu_alloc(FSIZE);

	for (int f = 0; f < NFILES; f++) {
		struct stat st;

		if (!m->ino[f])
			continue;
		assert_int_equal(ff_fs_getattr(p->fs, m->ino[f], &st), 0);
		assert_int_equal((uint64_t)st.st_size, m->size[f]);
		assert_int_equal(ff_fs_read(p->fs, m->ino[f], got, FSIZE, 0), (ssize_t)m->size[f]);
		assert_memory_equal(got, m->data[f], m->size[f]);
	}
	free(got);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Live data about a third of the device; random overwrites (buffered and
 * O_DSYNC) totalling four times the device: without garbage collection the
 * device is full after one pass.
 */
static void test_gc_overwrite(void **state)
{
	struct gx *p = *state;
	struct model m = {0};
	uint64_t seed = 0x9e3779b97f4a7c15ull, written = 0;
	uint8_t *chunk = tu_alloc(64 << 10);
	char name[32];

	for (int f = 0; f < NFILES; f++) {
		snprintf(name, sizeof(name), "f%d", f);
		m.ino[f] = mkfile(p, name);
		m.data[f] = tu_alloc(FSIZE);
		m.size[f] = f % 3 ? FSIZE / 2 : FSIZE / 4;
		tu_fill(m.data[f], m.size[f], (unsigned long long)f + 10);
		assert_int_equal(ff_fs_write(p->fs, m.ino[f], m.data[f], m.size[f], 0, 0),
				 (ssize_t)m.size[f]);
	}
	/* four passes of the device, two under TSan (testutil.h: it judges races, not volume) */
	while (written < (TU_STEP > 1 ? 2 : 4) * NZ * ZS) {
		int f = (int)(rnd(&seed) % NFILES);
		uint64_t len = ((rnd(&seed) % 16) + 1) * BLK;
		uint64_t off = ff_round_down(rnd(&seed) % m.size[f], BLK);
		unsigned fl = rnd(&seed) % 4 ? 0 : FF_CW_DSYNC;
		ssize_t r;

		if (off + len > m.size[f])
			len = m.size[f] - off;
		tu_fill(chunk, len, rnd(&seed));
		r = ff_fs_write(p->fs, m.ino[f], chunk, len, off, fl);
		if (r != (ssize_t)len)
			print_message("write of %llu at %llu: %zd after %llu bytes\n",
				      (unsigned long long)len, (unsigned long long)off, r,
				      (unsigned long long)written);
		assert_int_equal(r, (ssize_t)len);
		memcpy(m.data[f] + off, chunk, len);
		written += len;
		if (rnd(&seed) % 64 == 0)
			assert_int_equal(ff_fs_fsync(p->fs, m.ino[f], false), 0);
	}
	for (int f = 0; f < NFILES; f++)
		assert_int_equal(ff_fs_fsync(p->fs, m.ino[f], false), 0);
	/* on conventional space overwrites are in place: no garbage */
	if (p->emu)
		assert_true(stat_of(p, "gc_zones_freed") > 0);
	verify(p, &m);
	check_valid(p);
	fsck_clean(p);
	verify(p, &m);
	check_valid(p);
	for (int f = 0; f < NFILES; f++)
		free(m.data[f]);
	free(chunk);
}

/*
 * Fill with files of mixed sizes until ENOSPC (or a short count), delete
 * every other one, fill again, three times: no ENOSPC while statfs says two
 * zones or more are available, and what is left verifies.
 */
/* File ino holds the len bytes tu_fill makes from seed (buf and got: scratch). */
static void expect_file(struct gx *p, uint64_t ino, uint64_t len, unsigned long long seed,
			uint8_t *buf, uint8_t *got)
{
	tu_fill(buf, len, seed);
	assert_int_equal(ff_fs_read(p->fs, ino, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, buf, len);
}

static void test_gc_fill_delete(void **state)
{
	struct gx *p = *state;
	enum { MAXF = 2048 };
	uint64_t *ino = calloc(MAXF, sizeof(*ino)), *len = calloc(MAXF, sizeof(*len));
	uint8_t *buf = tu_alloc(256 << 10), *got = tu_alloc(256 << 10);
	uint64_t seed = 12345;
	int n = 0;
	char name[32];

	assert_non_null(ino);
	assert_non_null(len);
	for (int round = 0; round < 3; round++) {
		for (;;) {
			struct statvfs sv;
			uint64_t l = (rnd(&seed) % 3 == 0) ? (rnd(&seed) % (256 << 10)) + 1
							   : (rnd(&seed) % 16384) + 1;
			ssize_t r;
			int slot = -1;

			for (int k = 0; k < n; k++)
				if (!ino[k]) {
					slot = k;
					break;
				}
			if (slot < 0) {
				assert_true(n < MAXF);
				slot = n++;
			}
			assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
			snprintf(name, sizeof(name), "r%d-%d", round, slot);
			ino[slot] = mkfile(p, name);
			tu_fill(buf, l, (unsigned long long)ino[slot]);
			r = ff_fs_write(p->fs, ino[slot], buf, l, 0, slot % 2 ? FF_CW_DSYNC : 0);
			if (r >= 0 && (uint64_t)r == l) {
				int e = ff_fs_fsync(p->fs, ino[slot], false);

				if (e)
					r = e;
			}
			/* full: ENOSPC, or a short count where the device filled part-way */
			if (r < 0 || (uint64_t)r < l) {
				struct statvfs sv2;

				assert_true(r >= 0 || r == -ENOSPC);
				assert_int_equal(ff_fs_statfs(p->fs, &sv2), 0);
				if (sv.f_bavail * BLK >= 2 * ZS) {
					char sb[4096];

					ff_fs_stats_text(p->fs, sb, sizeof(sb));
					print_message(
						"ENOSPC (file %d, %llu bytes) with %llu blocks available\n%s",
						slot, (unsigned long long)l,
						(unsigned long long)sv.f_bavail, sb);
				}
				assert_true(sv.f_bavail * BLK < 2 * ZS);
				assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
				ino[slot] = 0;
				break;
			}
			assert_int_equal(r, (ssize_t)l);
			len[slot] = l;
		}
		/* delete every other file, verify the rest */
		for (int k = 0; k < n; k++) {
			if (!ino[k])
				continue;
			if (k % 2 == round % 2) {
				char nm[32];
				int rr = -1;

				for (int rd = 0; rd <= round && rr; rd++) {
					snprintf(nm, sizeof(nm), "r%d-%d", rd, k);
					rr = ff_fs_unlink(p->fs, p->root, nm);
				}
				assert_int_equal(rr, 0);
				ino[k] = 0;
				continue;
			}
			expect_file(p, ino[k], len[k], ino[k], buf, got);
		}
		check_valid(p);
	}
	fsck_clean(p);
	for (int k = 0; k < n; k++) {
		if (!ino[k])
			continue;
		expect_file(p, ino[k], len[k], ino[k], buf, got);
	}
	free(ino);
	free(len);
	free(buf);
	free(got);
}

/*
 * A device filled with files to ENOSPC still takes overwrites of them, as a
 * full XFS or ext4 does: out-of-place space keeps room that new data cannot
 * have (overprovisioning), where an overwrite's new copy goes while the
 * collector reclaims the old ones. Buffered, O_DSYNC and O_DIRECT overwrites
 * of several times the free room, then the data is checked.
 */
static void test_gc_full_overwrite(void **state)
{
	struct gx *p = *state;
	enum { MAXF = 4096 };
	uint64_t *ino = calloc(MAXF, sizeof(*ino)), *len = calloc(MAXF, sizeof(*len));
	uint64_t *gen = calloc(MAXF, sizeof(*gen));
	uint8_t *buf = tu_alloc(256 << 10), *got = tu_alloc(256 << 10);
	uint64_t seed = 777, written = 0;
	int n = 0;
	char name[32];

	assert_non_null(ino);
	assert_non_null(len);
	assert_non_null(gen);
	for (;;) {
		uint64_t l = rnd(&seed) % 2 ? 16384 : 65536 + (rnd(&seed) % 4) * BLK;
		ssize_t r;

		assert_true(n < MAXF);
		snprintf(name, sizeof(name), "f%d", n);
		ino[n] = mkfile(p, name);
		tu_fill(buf, l, ino[n] * 1000);
		r = ff_fs_write(p->fs, ino[n], buf, l, 0, 0);
		if (r == (ssize_t)l)
			r = ff_fs_fsync(p->fs, ino[n], false);
		if (r) {
			assert_true(r == -ENOSPC || r < (ssize_t)l);
			assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
			break;
		}
		len[n++] = l;
	}
	assert_true(n > 8);
	/* whole files rewritten: as much as the device holds, 32 times the kept room */
	for (uint64_t k = 0; written < NZ * ZS; k++) {
		int f = (int)(rnd(&seed) % (uint64_t)n);
		unsigned fl = k % 3 == 0 ? 0 : k % 3 == 1 ? FF_CW_DSYNC : FF_CW_DIRECT;
		ssize_t r;

		gen[f]++;
		/* a file's whole content is regenerated from (file, generation) */
		tu_fill(buf, len[f], ino[f] * 1000 + gen[f]);
		r = ff_fs_write(p->fs, ino[f], buf, len[f], 0, fl);
		if (r != (ssize_t)len[f]) {
			char sb[4096];

			ff_fs_stats_text(p->fs, sb, sizeof(sb));
			print_message("overwrite %llu of file %d (%llu bytes, flags %u): %zd\n%s",
				      (unsigned long long)k, f, (unsigned long long)len[f], fl, r,
				      sb);
		}
		assert_int_equal(r, (ssize_t)len[f]);
		written += len[f];
		if (k % 64 == 63)
			assert_int_equal(ff_fs_fsync(p->fs, ino[f], false), 0);
	}
	for (int f = 0; f < n; f++) {
		assert_int_equal(ff_fs_fsync(p->fs, ino[f], false), 0);
		expect_file(p, ino[f], len[f], ino[f] * 1000 + gen[f], buf, got);
	}
	check_valid(p);
	fsck_clean(p);
	free(ino);
	free(len);
	free(gen);
	free(buf);
	free(got);
}

/* ---- rounds per zone reclaimed ---- */

/*
 * Two files written interleaved, one deleted (every zone half live), then as
 * much again: the collector must free zones in about one round each. Writers
 * that meet the reserve wait for a round; a round that freed nothing must not
 * be asked for again at once, by the same writer or the next write.
 */
static void test_gc_rounds_bound(void **state)
{
	struct gx *p = *state;
	enum { CH = 64 << 10 };
	uint8_t *buf = tu_alloc(CH);
	uint64_t a = mkfile(p, "a"), b = mkfile(p, "b"), c = mkfile(p, "c");
	uint64_t half = (NZ - 9) * ZS / 2, rounds, freed, waits; /* a zone is overwrites' */

	for (uint64_t off = 0; off < half; off += CH) {
		tu_fill(buf, CH, off);
		assert_int_equal(ff_fs_write(p->fs, a, buf, CH, off, FF_CW_DSYNC), CH);
		assert_int_equal(ff_fs_write(p->fs, b, buf, CH, off, FF_CW_DSYNC), CH);
	}
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "b"), 0);
	for (uint64_t off = 0; off < half; off += CH) {
		ssize_t r;

		tu_fill(buf, CH, off + 1);
		r = ff_fs_write(p->fs, c, buf, CH, off, FF_CW_DSYNC);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, CH);
	}
	(void)ff_fs_fsync(p->fs, c, false);
	rounds = stat_of(p, "gc_rounds");
	freed = stat_of(p, "gc_zones_freed");
	waits = stat_of(p, "gc_writer_waits");
	print_message("gc: %llu rounds, %llu zones freed, %llu writer waits\n",
		      (unsigned long long)rounds, (unsigned long long)freed,
		      (unsigned long long)waits);
	assert_true(freed >= 1);
	assert_true(rounds <= freed + freed / 2 + 8);
	assert_true(waits <= freed + freed / 2 + 8);
	check_valid(p);
	free(buf);
}

/* ---- concurrent writers while the collector moves their blocks ---- */

#define NTHR 3

struct wctx {
	struct gx *p;
	uint64_t ino;
	uint8_t *model;
	uint64_t size;
	int id;
	int err;
};

static void *writer(void *arg)
{
	struct wctx *w = arg;
	uint64_t seed = 77 + (uint64_t)w->id, done = 0;
	uint8_t *chunk = malloc(32 << 10);

	while (done < 2 * NZ * ZS / NTHR && !w->err) {
		uint64_t len = ((rnd(&seed) % 8) + 1) * BLK;
		uint64_t off = ff_round_down(rnd(&seed) % w->size, BLK);
		unsigned fl = rnd(&seed) % 3 ? 0 : FF_CW_DSYNC;
		ssize_t r;

		if (off + len > w->size)
			len = w->size - off;
		tu_fill(chunk, len, rnd(&seed));
		r = ff_fs_write(w->p->fs, w->ino, chunk, len, off, fl);
		if (r != (ssize_t)len) {
			w->err = r < 0 ? (int)r : -EIO;
			break;
		}
		memcpy(w->model + off, chunk, len);
		done += len;
		if (rnd(&seed) % 50 == 0) {
			/* truncate the tail away and write it back */
			struct stat st = {.st_size = (off_t)(w->size / 2)};

			if (ff_fs_setattr(w->p->fs, w->ino, &st, FF_SET_SIZE)) {
				w->err = -EIO;
				break;
			}
			r = ff_fs_write(w->p->fs, w->ino, w->model + w->size / 2, w->size / 2,
					w->size / 2, 0);
			if (r != (ssize_t)(w->size / 2)) {
				w->err = r < 0 ? (int)r : -EIO;
				break;
			}
		}
		if (rnd(&seed) % 40 == 0 && ff_fs_fsync(w->p->fs, w->ino, false))
			w->err = -EIO;
	}
	free(chunk);
	return NULL;
}

static void test_gc_concurrent(void **state)
{
	struct gx *p = *state;
	struct wctx w[NTHR];
	pthread_t t[NTHR];
	uint8_t *got = tu_alloc(2 << 20);
	char name[32];

	for (int k = 0; k < NTHR; k++) {
		w[k] = (struct wctx){.p = p, .id = k, .size = 1536u << 10};
		snprintf(name, sizeof(name), "w%d", k);
		w[k].ino = mkfile(p, name);
		w[k].model = tu_alloc(w[k].size);
		tu_fill(w[k].model, w[k].size, (unsigned long long)k + 100);
		assert_int_equal(ff_fs_write(p->fs, w[k].ino, w[k].model, w[k].size, 0, 0),
				 (ssize_t)w[k].size);
	}
	for (int k = 0; k < NTHR; k++)
		assert_int_equal(pthread_create(&t[k], NULL, writer, &w[k]), 0);
	for (int k = 0; k < NTHR; k++)
		pthread_join(t[k], NULL);
	for (int k = 0; k < NTHR; k++) {
		assert_int_equal(w[k].err, 0);
		assert_int_equal(ff_fs_read(p->fs, w[k].ino, got, w[k].size, 0),
				 (ssize_t)w[k].size);
		assert_memory_equal(got, w[k].model, w[k].size);
	}
	assert_true(stat_of(p, "gc_zones_freed") > 0);
	check_valid(p);
	fsck_clean(p);
	for (int k = 0; k < NTHR; k++) {
		assert_int_equal(ff_fs_read(p->fs, w[k].ino, got, w[k].size, 0),
				 (ssize_t)w[k].size);
		assert_memory_equal(got, w[k].model, w[k].size);
		free(w[k].model);
	}
	free(got);
}

/* ---- the metadata log's own cleaning ---- */

/*
 * Metadata churn (create, setxattr, unlink, each made durable by a directory
 * fsync) until the log has gone round its zones several times: each rotation
 * checkpoints into the next metadata zone and resets it, so the churn never
 * runs out of log space; the kept files and fsck survive a remount.
 */
static void test_gc_meta_churn(void **state)
{
	struct gx *p = *state;
	uint64_t keep[8], ck0 = stat_of(p, "checkpoints");
	char name[32];

	for (int k = 0; k < 8; k++) {
		snprintf(name, sizeof(name), "keep%d", k);
		keep[k] = mkfile(p, name);
		assert_int_equal(ff_fs_write(p->fs, keep[k], name, strlen(name), 0, 0),
				 (ssize_t)strlen(name));
	}
	for (int n = 0; stat_of(p, "checkpoints") < ck0 + 10; n++) {
		uint64_t ino;

		assert_true(n < 200000);
		snprintf(name, sizeof(name), "churn%d", n);
		ino = mkfile(p, name);
		assert_int_equal(ff_fs_setxattr(p->fs, ino, "user.k", name, strlen(name), 0), 0);
		assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
		assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	}
	fsck_clean(p);
	for (int k = 0; k < 8; k++) {
		char got[32];

		snprintf(name, sizeof(name), "keep%d", k);
		assert_int_equal(ff_fs_read(p->fs, keep[k], got, sizeof(got), 0),
				 (ssize_t)strlen(name));
		assert_memory_equal(got, name, strlen(name));
	}
	check_valid(p);
}

/* ---- scale: a GC round with many inodes and zones ---- */

/*
 * A GC round finds the victim's live extents through the zone's owners, not a
 * scan of every inode, and its victim among the candidate zones, not a scan
 * of every zone: rounds cost about the same with many files as with few.
 * FOLIOFS_GC_SCALE_FILES sets the files (default 4000; the bench/NOTES.md
 * figure uses 100000 across 1,000 zones of 1 MiB).
 */
struct scale {
	struct gx g;
	uint32_t nz;
	uint64_t nfiles, zs;
};

static int setup_scale(void **state)
{
	struct scale *sc = calloc(1, sizeof(*sc));
	struct ff_mkfs_opts mo = {.format = FF_FMT_POSIX,
				  .force = true,
				  .zone_opts = true,
				  .emulate_zoned = true,
				  .conv_zones = 1};
	const char *e = getenv("FOLIOFS_GC_SCALE_FILES"), *ez = getenv("FOLIOFS_GC_SCALE_ZONES");
	char summary[512];

	assert_non_null(sc);
	sc->nfiles = e ? strtoull(e, NULL, 10) : 4000;
	sc->nz = ez ? (uint32_t)strtoul(ez, NULL, 10) : 64;
	/* a checkpoint (about 200 bytes a file) fits in one metadata zone */
	sc->zs = ZS;
	while (sc->zs < sc->nfiles * 512)
		sc->zs *= 2;
	/* a 4 KiB file is a header and a block */
	if (sc->nz < sc->nfiles * 2 * BLK / sc->zs * 2 + 16)
		sc->nz = (uint32_t)(sc->nfiles * 2 * BLK / sc->zs * 2 + 16);
	mo.zone_size = sc->zs;
	sc->g.emu = true;
	assert_int_equal(tu_make_image(sc->g.path, sizeof(sc->g.path), "gc-scale",
				       (unsigned long long)sc->nz * sc->zs + (1 << 20)),
			 0);
	assert_int_equal(ff_fs_mkfs(sc->g.path, &mo, summary, sizeof(summary)), 0);
	do_mount(&sc->g);
	*state = sc;
	return 0;
}

static int teardown_scale(void **state)
{
	struct scale *sc = *state;

	if (sc->g.fs)
		assert_int_equal(ff_fs_unmount(sc->g.fs), 0);
	unlink(sc->g.path);
	free(sc);
	return 0;
}

/* Run one GC round now (whatever the free zones) and wait for its end; returns its ns. */
static uint64_t force_round(struct px_fs *fs)
{
	struct timespec t0, t1;
	uint64_t r0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ff_mutex_lock(&fs->gc_mu);
	r0 = fs->gc_rounds;
	fs->gc_req = fs->gc_need = fs->gc_force = true;
	pthread_cond_signal(&fs->gc_cv);
	while (fs->gc_rounds == r0)
		ff_cond_wait(&fs->gc_done_cv, &fs->gc_mu);
	ff_mutex_unlock(&fs->gc_mu);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)t1.tv_nsec -
	       (uint64_t)t0.tv_nsec;
}

/*
 * The live blocks random overwrites leave in a victim are single blocks far
 * apart in the file. Here one file's zone keeps every fourth of its blocks
 * live; a forced round moves them into the collector's own zone with their
 * reads in flight together and a few writes for all of them (one per
 * PX_GC_PIECES pieces), where each block cost a device write; through a
 * writers' slot (two open zones: none for the collector's own), under one
 * data header listing them. The file reads the same, from a copy of the
 * image taken then (a crash) and after a remount, and fsck is clean.
 */
static void test_gc_scattered_one_write(void **state)
{
	enum { N = 192 };
	struct gx *p = *state;
	struct px_fs *fs = (struct px_fs *)p->fs;
	uint8_t *want = tu_alloc(N * BLK), *got = tu_alloc(N * BLK);
	uint64_t f = mkfile(p, "sc"), w0, m0, z0;
	struct ff_fs *fs2;
	char copy[300];

	tu_fill(want, N * BLK, 77);
	assert_int_equal(ff_fs_write(p->fs, f, want, N * BLK, 0, 0), N * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	for (int k = 0; k < N; k++) {
		if (k % 4 == 0)
			continue;
		tu_fill(want + (uint64_t)k * BLK, BLK, (unsigned)k + 1000);
		assert_int_equal(ff_fs_write(p->fs, f, want + (uint64_t)k * BLK, BLK,
					     (uint64_t)k * BLK, FF_CW_DSYNC),
				 BLK);
	}
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	w0 = stat_of(p, "dev_writes");
	m0 = stat_of(p, "gc_bytes_moved");
	z0 = stat_of(p, "gc_zones_freed");
	force_round(fs);
	print_message("gc round: %llu bytes moved, %llu device writes, %llu zones freed\n",
		      (unsigned long long)(stat_of(p, "gc_bytes_moved") - m0),
		      (unsigned long long)(stat_of(p, "dev_writes") - w0),
		      (unsigned long long)(stat_of(p, "gc_zones_freed") - z0));
	assert_true(stat_of(p, "gc_zones_freed") > z0);
	assert_true(stat_of(p, "gc_bytes_moved") - m0 >= (uint64_t)N / 4 * BLK);
	assert_true(stat_of(p, "dev_writes") - w0 <= 12);
	assert_int_equal(ff_fs_read(p->fs, f, got, N * BLK, 0), N * BLK);
	assert_memory_equal(got, want, N * BLK);
	/* a crash now: the copies' records or headers (a writers' slot) find them */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	memset(got, 0, N * BLK);
	assert_int_equal(ff_fs_read(fs2, f, got, N * BLK, 0), N * BLK);
	assert_memory_equal(got, want, N * BLK);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
	check_valid(p);
	fsck_clean(p);
	assert_int_equal(ff_fs_read(p->fs, f, got, N * BLK, 0), N * BLK);
	assert_memory_equal(got, want, N * BLK);
	free(want);
	free(got);
}

/* The zone holding the first block of ino (UINT32_MAX: none). */
static uint32_t zone_of_ino(struct px_fs *fs, uint64_t ino)
{
	uint32_t z = UINT32_MAX;

	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap && z == UINT32_MAX; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			if (i->ino == ino && i->next) {
				z = (uint32_t)(i->ext[0].dev / fs->zone_size);
				break;
			}
	ff_mutex_unlock(&fs->ns);
	return z;
}

static void test_gc_scale_round(void **state)
{
	struct scale *sc = *state;
	struct gx *p = &sc->g;
	struct px_fs *fs = (struct px_fs *)p->fs;
	enum { NVICT = 8 };
	uint64_t *ino = calloc(sc->nfiles, sizeof(*ino));
	uint32_t *zof = calloc(sc->nfiles, sizeof(*zof));
	uint32_t vict[NVICT], nv = 0;
	uint64_t keep[NVICT], total_ns = 0, max_ns = 0, freed0, rounds0, find0;
	uint8_t blk[BLK], got[BLK];
	char name[32];

	assert_non_null(ino);
	assert_non_null(zof);
	for (uint64_t k = 0; k < sc->nfiles; k++) {
		snprintf(name, sizeof(name), "s%llu", (unsigned long long)k);
		ino[k] = mkfile(p, name);
		tu_fill(blk, BLK, ino[k]);
		assert_int_equal(ff_fs_write(p->fs, ino[k], blk, BLK, 0, 0), BLK);
	}
	assert_int_equal(ff_cache_sync_all(fs->cache), 0);
	for (uint64_t k = 0; k < sc->nfiles; k++)
		zof[k] = zone_of_ino(fs, ino[k]);
	/* the first NVICT zones (full: not the last file's) keep one file each: cheap victims */
	for (uint64_t k = 0; k < sc->nfiles && nv < NVICT; k++) {
		uint32_t z = zof[k];
		uint64_t kept = 0;
		bool seen = z == zof[sc->nfiles - 1];

		assert_true(z != UINT32_MAX);
		for (uint32_t v = 0; v < nv; v++)
			seen |= vict[v] == z;
		if (seen)
			continue;
		for (uint64_t j = 0; j < sc->nfiles; j++) {
			if (zof[j] != z)
				continue;
			if (!kept) {
				kept = ino[j];
				continue;
			}
			snprintf(name, sizeof(name), "s%llu", (unsigned long long)j);
			assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
			ino[j] = 0;
		}
		vict[nv] = z;
		keep[nv++] = kept;
	}
	assert_int_equal(nv, NVICT);
	freed0 = stat_of(p, "gc_zones_freed");
	rounds0 = stat_of(p, "gc_rounds");
	find0 = atomic_load(&fs->gc_find_ns);
	for (uint32_t r = 0; r < NVICT; r++) {
		uint64_t ns = force_round(fs);

		total_ns += ns;
		if (ns > max_ns)
			max_ns = ns;
	}
	print_message("gc scale: %llu files, %u zones of %llu MiB: %u rounds, mean %.3f ms (max "
		      "%.3f), finding victims and owners %.3f ms a round\n",
		      (unsigned long long)sc->nfiles, sc->nz, (unsigned long long)(sc->zs >> 20),
		      NVICT, (double)total_ns / NVICT / 1e6, (double)max_ns / 1e6,
		      (double)(atomic_load(&fs->gc_find_ns) - find0) / NVICT / 1e6);
	/* each forced round frees one of the victims: one round per zone, no more */
	assert_int_equal(stat_of(p, "gc_zones_freed") - freed0, NVICT);
	assert_int_equal(stat_of(p, "gc_rounds") - rounds0, NVICT);
	for (uint32_t v = 0; v < NVICT; v++) {
		tu_fill(blk, BLK, keep[v]);
		assert_int_equal(ff_fs_read(p->fs, keep[v], got, BLK, 0), BLK);
		assert_memory_equal(got, blk, BLK);
	}
	check_valid(p);
	free(ino);
	free(zof);
}

/* ---- the zone indexes GC keeps: owners, free zones, candidates ---- */

/*
 * Every zone's owners are the inodes with extents in it, each with its count;
 * the free-zone count and blocks match the zone table; every zone a GC round
 * may take is a candidate, and the candidate array and the zones' indexes
 * into it agree.
 */
static void check_index(struct gx *p)
{
	struct px_fs *fs = (struct px_fs *)p->fs;
	uint32_t nfree = 0, *owners = calloc(fs->nr_zones, sizeof(*owners));
	uint64_t free_blk = 0;

	assert_non_null(owners);
	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext) {
			/* extents are in file order, not zone order: count per zone */
			for (size_t k = 0; k < i->next; k++) {
				uint32_t z = (uint32_t)(i->ext[k].dev / fs->zone_size);
				struct px_zone *zo = &fs->zones[z];
				uint64_t cnt = 0;
				bool first = true, found = false;

				for (size_t j = 0; j < i->next; j++) {
					if (i->ext[j].dev / fs->zone_size != z)
						continue;
					cnt++;
					first &= j >= k;
				}
				if (!first)
					continue;
				owners[z]++;
				for (uint32_t o = 0; o < zo->own_cap; o++)
					if (zo->own[o].i == i) {
						assert_false(found);
						assert_int_equal(zo->own[o].next, cnt);
						found = true;
					}
				assert_true(found);
			}
		}
	for (uint32_t z = 0; z < fs->nr_zones; z++) {
		struct px_zone *zo = &fs->zones[z];
		bool data = zo->state != PX_Z_META && zo->state != PX_Z_SUPER;
		bool isfree = data && zo->slot < 0 && !zo->inflight && !zo->victim &&
			      (zo->state == PX_Z_FREE || (zo->state == PX_Z_FULL && !zo->valid));
		uint64_t room = zo->cap / BLK - 1, cost;

		assert_int_equal(zo->own_n, owners[z]);
		assert_true(zo->own_n * 4 <= zo->own_cap * 3);
		if (isfree) {
			nfree++;
			free_blk += room;
		}
		assert_int_equal(zo->isfree, isfree);
		cost = fs->gc_slot ? zo->valid + 1 : zo->valid + zo->next + zo->valid / 256 + 1;
		if (data && zo->state == PX_Z_FULL && zo->slot < 0 && zo->valid &&
		    cost + room / 32 <= room)
			assert_int_not_equal(zo->cand, UINT32_MAX);
		if (zo->cand != UINT32_MAX) {
			assert_true(zo->cand < fs->gc_ncand);
			assert_int_equal(fs->gc_cand[zo->cand], z);
		}
	}
	assert_int_equal(fs->nfree, nfree);
	assert_int_equal(fs->free_blk, free_blk);
	for (uint32_t j = 0; j < fs->gc_ncand; j++)
		assert_int_equal(fs->zones[fs->gc_cand[j]].cand, j);
	ff_mutex_unlock(&fs->ns);
	free(owners);
}

/*
 * Creates, writes (buffered and O_DSYNC, in place and out of place),
 * truncates, punches, renames over and unlinks, many times the device's
 * size, with the collector running: the indexes hold after every few
 * operations, after the collector's rounds and after a remount.
 */
static void test_gc_index(void **state)
{
	struct gx *p = *state;
	enum { NF = 16, FMAX = 1 << 20 };
	uint64_t ino[NF] = {0}, seed = 0xfeedf00dull, written = 0;
	uint8_t *buf = tu_alloc(64 << 10);
	char name[32], name2[32];

	for (int op = 0; written < 4 * NZ * ZS; op++) {
		int f = (int)(rnd(&seed) % NF);
		uint64_t r = rnd(&seed) % 100;

		snprintf(name, sizeof(name), "x%d", f);
		if (!ino[f]) {
			ino[f] = mkfile(p, name);
			continue;
		}
		if (r < 70) {
			uint64_t len = ((rnd(&seed) % 16) + 1) * BLK;
			uint64_t off = ff_round_down(rnd(&seed) % FMAX, BLK);
			ssize_t w;

			tu_fill(buf, len, seed);
			w = ff_fs_write(p->fs, ino[f], buf, len, off, r % 3 ? 0 : FF_CW_DSYNC);
			assert_int_equal(w, (ssize_t)len);
			written += len;
		} else if (r < 83) {
			struct stat st = {.st_size = (off_t)(rnd(&seed) % FMAX)};

			assert_int_equal(ff_fs_setattr(p->fs, ino[f], &st, FF_SET_SIZE), 0);
		} else if (r < 90) {
			uint64_t off = ff_round_down(rnd(&seed) % FMAX, BLK);

			assert_int_equal(ff_fs_fallocate(p->fs, ino[f],
							 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
							 off, 4 * BLK),
					 0);
		} else if (r < 93) {
			int g = (int)(rnd(&seed) % NF);

			if (g == f || !ino[g])
				continue;
			snprintf(name2, sizeof(name2), "x%d", g);
			assert_int_equal(
				ff_fs_rename(p->fs, p->root, name, p->root, name2, 0, NULL), 0);
			ino[g] = ino[f];
			ino[f] = 0;
		} else if (r < 95) {
			assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
			ino[f] = 0;
		} else {
			assert_int_equal(ff_fs_fsync(p->fs, ino[f], false), 0);
		}
		if (op % 64 == 0)
			check_index(p);
		if (op % 512 == 0 && p->emu) {
			(void)force_round((struct px_fs *)p->fs);
			check_index(p);
		}
	}
	for (int f = 0; f < NF; f++)
		if (ino[f])
			assert_int_equal(ff_fs_fsync(p->fs, ino[f], false), 0);
	check_index(p);
	check_valid(p);
	if (p->emu)
		assert_true(stat_of(p, "gc_zones_freed") > 0);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	do_mount(p);
	check_index(p);
	free(buf);
}

/* ---- GC moves under a dirty cache ---- */

static struct px_inode *inode_of(struct px_fs *fs, uint64_t ino)
{
	struct px_inode *r = NULL;

	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap && !r; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			if (i->ino == ino)
				r = i;
	ff_mutex_unlock(&fs->ns);
	return r;
}

/* Whether any block of ino lies in zone z. */
static bool ino_in_zone(struct px_fs *fs, uint64_t ino, uint32_t z)
{
	struct px_inode *i = inode_of(fs, ino);
	bool in = false;

	ff_mutex_lock(&fs->ns);
	for (size_t k = 0; i && k < i->next; k++)
		in |= i->ext[k].dev / fs->zone_size == z;
	ff_mutex_unlock(&fs->ns);
	return in;
}

/*
 * The collector reads a victim's live blocks from the device, not through
 * the cache. A block dirty in the cache is newer than what the device holds:
 * the move copies the older device data and re-points the extent to the
 * copy, and the dirty block, written back later, lands elsewhere and wins
 * (its extent replaces the copy's, and a mount's roll-forward prefers its
 * higher data sequence number to the copy's). Reads see the cache's data
 * throughout, and after fsync and a remount the device's. A clean cached
 * block is the device's data, read again.
 */
static void test_gc_dirty_cached(void **state)
{
	struct gx *p = *state;
	struct px_fs *fs = (struct px_fs *)p->fs;
	enum { AL = 64 << 10, DL = 16 << 10 };
	uint8_t *old = tu_alloc(AL), *want = tu_alloc(AL), *got = tu_alloc(AL), *big = tu_alloc(ZS);
	uint64_t a = mkfile(p, "a"), c = mkfile(p, "c"), freed0;
	uint32_t z;

	tu_fill(old, AL, 1);
	assert_int_equal(ff_fs_write(p->fs, a, old, AL, 0, 0), AL);
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	/* c fills the rest of a's zone and spills over: the zone is full */
	tu_fill(big, ZS, 2);
	assert_int_equal(ff_fs_write(p->fs, c, big, ZS, 0, 0), (ssize_t)ZS);
	assert_int_equal(ff_fs_fsync(p->fs, c, false), 0);
	assert_int_equal(ff_fs_read(p->fs, a, got, AL, 0), AL);
	assert_memory_equal(got, old, AL);
	z = zone_of_ino(fs, a);
	assert_true(z != UINT32_MAX);
	assert_true(ino_in_zone(fs, c, z));
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "c"), 0);
	ff_mutex_lock(&fs->ns);
	assert_int_equal(fs->zones[z].state, PX_Z_FULL);
	assert_true(fs->zones[z].slot < 0);
	ff_mutex_unlock(&fs->ns);
	/* a's first blocks newer in the cache than on the device */
	memcpy(want, old, AL);
	tu_fill(want, DL, 3);
	assert_int_equal(ff_fs_write(p->fs, a, want, DL, 0, 0), DL);
	assert_true(ff_cache_inode_dirty(inode_of(fs, a)->ci) > 0);
	freed0 = stat_of(p, "gc_zones_freed");
	(void)force_round(fs);
	assert_int_equal(stat_of(p, "gc_zones_freed"), freed0 + 1);
	assert_false(ino_in_zone(fs, a, z));
	assert_int_equal(ff_fs_read(p->fs, a, got, AL, 0), AL);
	assert_memory_equal(got, want, AL);
	assert_int_equal(ff_fs_fsync(p->fs, a, false), 0);
	check_valid(p);
	check_index(p);
	fsck_clean(p);
	fs = (struct px_fs *)p->fs;
	assert_int_equal(ff_fs_read(p->fs, a, got, AL, 0), AL);
	assert_memory_equal(got, want, AL);
	free(old);
	free(want);
	free(got);
	free(big);
}

/* ---- many zones: a write does not scan them ---- */

/*
 * A regular image of FOLIOFS_GC_MANY_ZONES zones of 16 MiB (default 4096;
 * 61434 is a 20 TB SMR disk's count): buffered 4 KiB writes, each of which
 * asks whether free zones are short (gc_throttle), cost the same as on a
 * small device, since the free zones are counted, not scanned. Prints the
 * time a write; the counts are checked against the zone table.
 */
static void test_gc_many_zones_writes(void **state)
{
	const char *e = getenv("FOLIOFS_GC_MANY_ZONES");
	uint32_t nz = e ? (uint32_t)strtoul(e, NULL, 10) : 4096;
	struct ff_mkfs_opts mo = {
		.format = FF_FMT_POSIX, .force = true, .zone_size = 16 << 20, .zone_opts = true};
	struct gx g = {0};
	uint8_t blk[BLK];
	char summary[512];
	struct timespec t0, t1;
	uint64_t f, seed = 5;
	enum { NW = 20000 };

	(void)state;
	assert_int_equal(tu_make_image(g.path, sizeof(g.path), "gc-many",
				       (unsigned long long)nz * (16 << 20)),
			 0);
	assert_int_equal(ff_fs_mkfs(g.path, &mo, summary, sizeof(summary)), 0);
	do_mount(&g);
	f = mkfile(&g, "f");
	memset(blk, 7, sizeof(blk));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int k = 0; k < NW; k++)
		assert_int_equal(ff_fs_write(g.fs, f, blk, BLK, (rnd(&seed) % 256) * BLK, 0), BLK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%u zones: %d buffered 4 KiB writes, %.2f us a write\n", nz, NW,
		      ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
			      NW / 1e3);
	assert_int_equal(ff_fs_fsync(g.fs, f, false), 0);
	check_index(&g);
	assert_int_equal(ff_fs_unmount(g.fs), 0);
	unlink(g.path);
}

/* ---- when the collector stops ---- */

/* Wait until the GC thread is idle: no round running, none asked for. */
static void gc_wait_idle(struct px_fs *fs)
{
	ff_mutex_lock(&fs->gc_mu);
	while (fs->gc_req || fs->gc_busy)
		ff_cond_wait(&fs->gc_done_cv, &fs->gc_mu);
	ff_mutex_unlock(&fs->gc_mu);
}

/*
 * The collector runs while free zones are at or below gc_low, and stops
 * once it has freed one more: the free zones it keeps above the reserve hold
 * no garbage, so more of them make fuller victims. Random 4 KiB overwrites
 * of a file of 60% of the available blocks, twice its size, with an fsync
 * every 64 writes; once no writer is left and the collector is idle, no
 * more than gc_low + 1 zones are free.
 */
static void test_gc_stops_above_low(void **state)
{
	struct gx *p = *state;
	struct px_fs *fs = (struct px_fs *)p->fs;
	uint64_t ino = mkfile(p, "f"), seed = 0x5eedull, size, nfree;
	struct statvfs sv;
	uint8_t *buf = tu_alloc(1 << 20);

	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	size = ff_round_down((uint64_t)sv.f_bavail * BLK * 6 / 10, 1 << 20);
	tu_fill(buf, 1 << 20, 3);
	for (uint64_t off = 0; off < size; off += 1 << 20)
		assert_int_equal(ff_fs_write(p->fs, ino, buf, 1 << 20, off, 0), 1 << 20);
	assert_int_equal(ff_fs_fsync(p->fs, ino, false), 0);
	for (uint64_t n = 0; n < 2 * size / BLK; n++) {
		uint64_t off = rnd(&seed) % (size / BLK) * BLK;

		assert_int_equal(ff_fs_write(p->fs, ino, buf + off % (1 << 20), BLK, off, 0), BLK);
		if (n % 64 == 63)
			assert_int_equal(ff_fs_fsync(p->fs, ino, false), 0);
	}
	assert_int_equal(ff_fs_fsync(p->fs, ino, false), 0);
	gc_wait_idle(fs);
	ff_mutex_lock(&fs->ns);
	nfree = fs->nfree;
	ff_mutex_unlock(&fs->ns);
	assert_true(stat_of(p, "gc_zones_freed") > 0);
	if (nfree > fs->gc_low + 1) {
		char sb[4096];

		ff_fs_stats_text(p->fs, sb, sizeof(sb));
		print_message("%llu zones free, gc_low %u\n%s", (unsigned long long)nfree,
			      fs->gc_low, sb);
	}
	assert_true(nfree <= fs->gc_low + 1);
	check_valid(p);
	free(buf);
}

/* ---- defragmentation (regular devices) ---- */

/* Extents of inode ino, and whether it is being defragmented. */
static size_t nr_ext(struct gx *p, uint64_t ino)
{
	struct px_fs *fs = (struct px_fs *)p->fs;
	size_t n = SIZE_MAX;

	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap && n == SIZE_MAX; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			if (i->ino == ino)
				n = i->next;
	ff_mutex_unlock(&fs->ns);
	assert_true(n != SIZE_MAX);
	return n;
}

/* Wait (up to 60 s) until ino has at most max extents; returns how many it has. */
static size_t wait_ext(struct gx *p, uint64_t ino, size_t max)
{
	size_t n = nr_ext(p, ino);

	for (int t = 0; t < 6000 && n > max; t++) {
		usleep(10000);
		n = nr_ext(p, ino);
	}
	return n;
}

/*
 * Wait up to a minute for stat key to reach min: a defragmentation pass
 * counts its pass and bytes after the re-points that wait_ext sees.
 */
static uint64_t wait_stat(struct gx *p, const char *key, uint64_t min)
{
	uint64_t v = stat_of(p, key);

	for (int t = 0; t < 6000 && v < min; t++) {
		usleep(10000);
		v = stat_of(p, key);
	}
	return v;
}

#define WAL_N	200
#define WAL_REC (4 * 4120) /* four frames of a write-ahead log: unaligned */

/*
 * A file grown by WAL_N O_DSYNC appends of WAL_REC bytes has an extent per
 * append (each behind its data header). On a regular device an overwrite
 * across two of them queues the file and the GC thread joins them: a few
 * extents are left, every byte reads back, the valid-block
 * counts and fsck agree, a remount reads the same, and an O_DSYNC overwrite
 * of one append's bytes is one in-place write with no header. On emulated
 * zones nothing is defragmented, unless the metadata is short of room
 * (setup_emu_press): then the appends queue the file from their 64th extent
 * on, and the passes join them on the sequential zones.
 */
static void test_defrag_appends(void **state)
{
	struct gx *p = *state;
	uint8_t *data = tu_alloc(WAL_N * WAL_REC), *got = tu_alloc(WAL_N * WAL_REC);
	uint64_t ino = mkfile(p, "wal"), ip, hd;
	size_t n;

	tu_fill(data, WAL_N * WAL_REC, 77);
	for (int k = 0; k < WAL_N; k++)
		assert_int_equal(ff_fs_write(p->fs, ino, data + k * WAL_REC, WAL_REC,
					     (uint64_t)k * WAL_REC, FF_CW_DSYNC),
				 WAL_REC);
	if (p->emu && !p->press) {
		usleep(200000);
		assert_int_equal(stat_of(p, "defrag_passes"), 0);
		assert_true(nr_ext(p, ino) >= WAL_N);
	} else {
		/*
		 * Appends alone do not queue it (default options): an overwrite
		 * across two does, once the file got no new extent for 2 s.
		 */
		uint64_t off = (WAL_N - 3) * WAL_REC + 24;

		usleep(2500000);
		tu_fill(data + off, WAL_REC, 79);
		assert_int_equal(ff_fs_write(p->fs, ino, data + off, WAL_REC, off, FF_CW_DSYNC),
				 WAL_REC);
		/*
		 * Under pressure, passes ran while the appends went on and a
		 * file is queued only from 64 extents on: fewer are left, as
		 * many as the appends made faster than the passes joined them.
		 */
		size_t most = p->press ? 63 : 8;

		n = wait_ext(p, ino, most);
		(void)wait_stat(p, "defrag_bytes", (uint64_t)WAL_N * WAL_REC / 2);
		print_message("%zu extents after %llu passes, %llu bytes moved\n", n,
			      (unsigned long long)stat_of(p, "defrag_passes"),
			      (unsigned long long)stat_of(p, "defrag_bytes"));
		/* runs of at most 1 MiB: the file's 3.2 MiB in 4 or 5, or a few more */
		assert_true(n <= most);
		assert_true(stat_of(p, "defrag_bytes") >= (uint64_t)WAL_N * WAL_REC / 2);
	}
	assert_int_equal(ff_fs_read(p->fs, ino, got, WAL_N * WAL_REC, 0), WAL_N * WAL_REC);
	assert_memory_equal(got, data, WAL_N * WAL_REC);
	check_valid(p);
	if (!p->emu) {
		/* in the first joined run: in place, one write */
		uint64_t off = 10 * WAL_REC + 100;

		ip = stat_of(p, "inplace_writes");
		hd = stat_of(p, "data_header_writes");
		tu_fill(data + off, 4000, 78);
		assert_int_equal(ff_fs_write(p->fs, ino, data + off, 4000, off, FF_CW_DSYNC), 4000);
		assert_int_equal(stat_of(p, "inplace_writes") - ip, 1);
		assert_int_equal(stat_of(p, "data_header_writes") - hd, 0);
	}
	fsck_clean(p);
	assert_int_equal(ff_fs_read(p->fs, ino, got, WAL_N * WAL_REC, 0), WAL_N * WAL_REC);
	assert_memory_equal(got, data, WAL_N * WAL_REC);
	check_valid(p);
	free(data);
	free(got);
}

/*
 * Power cuts during a defragmentation pass: a file of WAL_N synced appends
 * (its extent per append) is made durable and the image kept; then, for each
 * number n of device writes, the kept image is mounted with writes after the
 * n-th dropped (a power cut the daemon does not notice; the mount, the
 * overwrite and the pass write about 13 times, the unmount a few more), an overwrite with
 * the same bytes across two appends queues the file, the pass runs, and the
 * image is mounted again as the cut left it: every byte of the file reads
 * as before and fsck is clean, whichever of the pass's copies, records and
 * zone changes reached the device.
 */
static void test_defrag_crash(void **state)
{
	struct gx *p = *state;
	uint8_t *data = tu_alloc(WAL_N * WAL_REC), *got = tu_alloc(WAL_N * WAL_REC);
	uint64_t ino = mkfile(p, "wal"), off = (WAL_N - 3) * WAL_REC + 24;
	char base[300], env[64];
	int points = 0;

	tu_fill(data, WAL_N * WAL_REC, 91);
	/* mounted with defragmentation off, so that every pass runs under a cut */
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.defrag_min = FF_DEFRAG_OFF;
	do_mount(p);
	for (int k = 0; k < WAL_N; k++)
		assert_int_equal(ff_fs_write(p->fs, ino, data + k * WAL_REC, WAL_REC,
					     (uint64_t)k * WAL_REC, FF_CW_DSYNC),
				 WAL_REC);
	assert_int_equal(ff_fs_fsync(p->fs, ino, false), 0);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	p->o.defrag_min = 0;
	snprintf(base, sizeof(base), "%s.base", p->path);
	tu_copy_image(p->path, base);
	for (int n = 1; n <= 32; n += TU_STEP) {
		tu_copy_image(base, p->path);
		snprintf(env, sizeof(env), "dead_after=%d,dead_mode=drop", n);
		setenv("FOLIOFS_FAULT", env, 1);
		do_mount(p);
		unsetenv("FOLIOFS_FAULT");
		assert_int_equal(ff_fs_write(p->fs, ino, data + off, WAL_REC, off, FF_CW_DSYNC),
				 WAL_REC);
		(void)wait_ext(p, ino, 8);
		(void)ff_fs_unmount(p->fs);
		p->fs = NULL;
		do_mount(p);
		assert_int_equal(ff_fs_read(p->fs, ino, got, WAL_N * WAL_REC, 0), WAL_N * WAL_REC);
		assert_memory_equal(got, data, WAL_N * WAL_REC);
		check_valid(p);
		fsck_clean(p);
		assert_int_equal(ff_fs_unmount(p->fs), 0);
		p->fs = NULL;
		points++;
	}
	print_message("defragmentation crash points: %d\n", points);
	unlink(base);
	do_mount(p);
	free(data);
	free(got);
}

/* The file model of test_defrag_concurrent: writes and checks hold mu. */
struct dfc {
	struct gx *p;
	uint64_t ino;
	pthread_mutex_t mu;
	uint8_t *data;
	uint64_t size;
	_Atomic bool stop;
	uint64_t reads;
};

#define DFC_MAX (6u << 20)

static void *dfc_reader(void *arg)
{
	struct dfc *d = arg;
	uint8_t *got = tu_alloc(DFC_MAX);

	while (!atomic_load(&d->stop)) {
		pthread_mutex_lock(&d->mu);
		assert_int_equal(ff_fs_read(d->p->fs, d->ino, got, DFC_MAX, 0), (ssize_t)d->size);
		assert_memory_equal(got, d->data, d->size);
		d->reads++;
		pthread_mutex_unlock(&d->mu);
		usleep(2000);
	}
	free(got);
	return NULL;
}

static void *dfc_overwriter(void *arg)
{
	struct dfc *d = arg;
	uint64_t seed = 0x51ed2701ull;
	uint8_t *buf = tu_alloc(64 << 10);

	while (!atomic_load(&d->stop)) {
		uint64_t len = 1 + rnd(&seed) % (40 << 10), off;
		unsigned fl = rnd(&seed) % 3 ? 0 : FF_CW_DSYNC;

		pthread_mutex_lock(&d->mu);
		if (d->size > len) {
			off = rnd(&seed) % (d->size - len);
			tu_fill(buf, len, rnd(&seed));
			assert_int_equal(ff_fs_write(d->p->fs, d->ino, buf, len, off, fl),
					 (ssize_t)len);
			memcpy(d->data + off, buf, len);
		}
		pthread_mutex_unlock(&d->mu);
		if (rnd(&seed) % 8 == 0)
			assert_int_equal(ff_fs_fsync(d->p->fs, d->ino, true), 0);
	}
	free(buf);
	return NULL;
}

/*
 * Defragmentation under load: one thread appends (O_DSYNC, and buffered with
 * an fdatasync), another overwrites anywhere (buffered and O_DSYNC, with
 * fdatasyncs), a reader checks the whole file against the model between
 * them, the cache is tiny (the flusher writes back while passes run), and
 * the GC thread joins the appends' extents meanwhile (-o defrag=4). Then the file reads
 * back exactly, after a remount too, and fsck is clean.
 */
static void test_defrag_concurrent(void **state)
{
	struct gx *p = *state;
	struct dfc d = {.p = p, .ino = mkfile(p, "busy"), .data = tu_alloc(DFC_MAX)};
	uint8_t *buf = tu_alloc(64 << 10), *got;
	uint64_t seed = 0xdef7a9ull;
	pthread_t th[2];

	/* passes every 4 appended extents: the appender never lets the overwrites start them */
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->o.defrag_min = 4;
	do_mount(p);
	pthread_mutex_init(&d.mu, NULL);
	pthread_create(&th[0], NULL, dfc_reader, &d);
	pthread_create(&th[1], NULL, dfc_overwriter, &d);
	while (d.size < DFC_MAX - (64 << 10)) {
		uint64_t len = 100 + rnd(&seed) % (20 << 10);
		bool sync = rnd(&seed) % 2;

		tu_fill(buf, len, rnd(&seed));
		pthread_mutex_lock(&d.mu);
		assert_int_equal(
			ff_fs_write(p->fs, d.ino, buf, len, d.size, sync ? FF_CW_DSYNC : 0),
			(ssize_t)len);
		memcpy(d.data + d.size, buf, len);
		d.size += len;
		pthread_mutex_unlock(&d.mu);
		if (!sync)
			assert_int_equal(ff_fs_fsync(p->fs, d.ino, true), 0);
	}
	atomic_store(&d.stop, true);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	print_message("%llu bytes, %zu extents, %llu passes moved %llu bytes, %llu reads\n",
		      (unsigned long long)d.size, nr_ext(p, d.ino),
		      (unsigned long long)stat_of(p, "defrag_passes"),
		      (unsigned long long)stat_of(p, "defrag_bytes"), (unsigned long long)d.reads);
	assert_true(stat_of(p, "defrag_bytes") > 0);
	got = tu_alloc(DFC_MAX);
	assert_int_equal(ff_fs_read(p->fs, d.ino, got, DFC_MAX, 0), (ssize_t)d.size);
	assert_memory_equal(got, d.data, d.size);
	check_valid(p);
	fsck_clean(p);
	assert_int_equal(ff_fs_read(p->fs, d.ino, got, DFC_MAX, 0), (ssize_t)d.size);
	assert_memory_equal(got, d.data, d.size);
	check_valid(p);
	pthread_mutex_destroy(&d.mu);
	free(d.data);
	free(buf);
	free(got);
}

static int setup_reg_tiny(void **state)
{
	return setup_mk(state, false, 0, 0, true);
}

/*
 * Emulated zones whose metadata is short of room from the first byte on:
 * a file of 64 extents or more that gets one out of place is defragmented,
 * on sequential zones too (meta_note_locked).
 */
static int setup_press(void **state, bool tiny, uint32_t lim)
{
	struct gx *p;
	int ret;

	setenv("FOLIOFS_META_PRESS", "1", 1);
	ret = setup_mk(state, true, lim, lim, tiny);
	unsetenv("FOLIOFS_META_PRESS");
	p = *state;
	p->press = true;
	return ret;
}

static int setup_emu_press(void **state)
{
	return setup_press(state, false, 0);
}

static int setup_emu_press_tiny(void **state)
{
	return setup_press(state, true, 0);
}

/* two open and active zones: no collector's zone, the passes write through the file's slot */
static int setup_emu_press_lim2(void **state)
{
	return setup_press(state, false, 2);
}

static int setup_emu_press_lim2_tiny(void **state)
{
	return setup_press(state, true, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gc_valid_counts, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_valid_counts, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_gc_overwrite, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_overwrite, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_gc_overwrite, setup_emu_lim, teardown),
		cmocka_unit_test_setup_teardown(test_gc_overwrite, setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_gc_fill_delete, setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_gc_fill_delete, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_fill_delete, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_gc_full_overwrite, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_full_overwrite, setup_emu_lim, teardown),
		cmocka_unit_test_setup_teardown(test_gc_scattered_one_write, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_scattered_one_write, setup_emu_lim2,
						teardown),
		cmocka_unit_test_setup_teardown(test_gc_rounds_bound, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_rounds_bound, setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_gc_concurrent, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_concurrent, setup_emu_lim, teardown),
		cmocka_unit_test_setup_teardown(test_gc_meta_churn, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_scale_round, setup_scale, teardown_scale),
		cmocka_unit_test_setup_teardown(test_gc_index, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_index, setup_emu_lim2, teardown),
		cmocka_unit_test_setup_teardown(test_gc_index, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_gc_dirty_cached, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_dirty_cached, setup_emu_lim2, teardown),
		cmocka_unit_test(test_gc_many_zones_writes),
		cmocka_unit_test_setup_teardown(test_gc_stops_above_low, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_gc_stops_above_low, setup_emu_lim, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_appends, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_appends, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_concurrent, setup_reg_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_crash, setup_reg, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_appends, setup_emu_press, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_concurrent, setup_emu_press_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_defrag_crash, setup_emu_press, teardown),
		cmocka_unit_test_setup_teardown(test_defrag_appends, setup_emu_press_lim2,
						teardown),
		cmocka_unit_test_setup_teardown(test_defrag_concurrent, setup_emu_press_lim2_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_defrag_crash, setup_emu_press_lim2, teardown),
	};

	if (getenv("FOLIOFS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FOLIOFS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
