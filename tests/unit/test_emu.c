// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the emulated zoned device: every rule a host-managed device
 * enforces, conditions and limits, persistence of write pointers across
 * reopen, and the roll-back of a pointer record whose data is not there.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "testutil.h"
#include "../../src/dev/internal.h" /* ff_dev_issue_write: the raw write */

#define ZS  (1ull << 20) /* 1 MiB zones */
#define BLK 4096

struct fx {
	char path[256];
	struct ff_dev *dev;
	void *buf;
};

static int fmt_open(struct fx *f, uint32_t nr_cnv, uint32_t max_open, uint32_t max_active,
		    uint64_t cap)
{
	struct ff_emu_opts o = {.zone_size = ZS,
				.zone_cap = cap,
				.nr_cnv = nr_cnv,
				.max_open = max_open,
				.max_active = max_active};

	if (tu_emu_mkimage(f->path, sizeof(f->path), "emu", 16 * ZS + (1 << 20), &o))
		return -1;
	return ff_dev_open(f->path, NULL, &f->dev);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->buf = tu_alloc(4 * ZS);
	assert_int_equal(fmt_open(f, 2, 0, 0, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unlink(f->path);
	free(f->buf);
	free(f);
	return 0;
}

/*
 * The backend's raw write (src/dev/internal.h), not the zone queue: these
 * tests check that the emulation refuses what a host-managed device refuses,
 * which the zone queue never lets through.
 */
static ssize_t wr(struct fx *f, uint64_t off, size_t len, unsigned flags, unsigned seed)
{
	struct iovec iov = {.iov_base = f->buf, .iov_len = len};

	tu_fill(f->buf, len, seed);
	return ff_dev_issue_write(f->dev, &iov, 1, off, flags);
}

static struct ff_zone zone(struct fx *f, uint32_t i)
{
	struct ff_zone z;

	assert_int_equal(ff_dev_report(f->dev, i, 1, &z), 1);
	return z;
}

static void test_emu_geometry(void **state)
{
	struct fx *f = *state;
	const struct ff_dev_info *di = ff_dev_info(f->dev);

	assert_int_equal(di->kind, FF_DEV_EMULATED);
	assert_int_equal(di->zone_size, ZS);
	assert_int_equal(di->nr_zones, 16);
	assert_int_equal(di->nr_cnv_zones, 2);
	assert_int_equal(di->lblock_size, BLK);
	assert_int_equal(zone(f, 0).type, FF_ZONE_CNV);
	assert_int_equal(zone(f, 2).type, FF_ZONE_SWR);
	assert_int_equal(zone(f, 2).cond, FF_ZC_EMPTY);
	assert_int_equal(zone(f, 2).wp, 2 * ZS);
}

static void test_emu_write_rules(void **state)
{
	struct fx *f = *state;
	uint64_t z2 = 2 * ZS;
	struct iovec iov;

	/* not at the write pointer */
	assert_int_equal(wr(f, z2 + BLK, BLK, 0, 1), -EIO);
	assert_int_equal(zone(f, 2).wp, z2);
	assert_int_equal(zone(f, 2).cond, FF_ZC_EMPTY);
	/* at the write pointer */
	assert_int_equal(wr(f, z2, 2 * BLK, 0, 1), 2 * BLK);
	assert_int_equal(zone(f, 2).wp, z2 + 2 * BLK);
	assert_int_equal(zone(f, 2).cond, FF_ZC_IMP_OPEN);
	/* behind the write pointer (a rewrite) */
	assert_int_equal(wr(f, z2, BLK, 0, 2), -EIO);
	/* misaligned length and offset: refused before any I/O */
	iov = (struct iovec){.iov_base = f->buf, .iov_len = 512};
	assert_true(ff_dev_issue_write(f->dev, &iov, 1, z2 + 2 * BLK, 0) < 0);
	assert_true(wr(f, z2 + 2 * BLK + 512, BLK, 0, 3) < 0);
	/* crossing the zone end */
	assert_int_equal(wr(f, z2 + 2 * BLK, ZS, 0, 3), -EIO);
	/* crossing from a conventional zone into a sequential one */
	assert_int_equal(wr(f, 2 * ZS - BLK, 2 * BLK, 0, 3), -EIO);
	assert_int_equal(zone(f, 2).wp, z2 + 2 * BLK);
	/* conventional zones take random writes */
	assert_int_equal(wr(f, 5 * BLK, BLK, 0, 4), BLK);
	assert_int_equal(wr(f, 1 * BLK, BLK, FF_IO_DSYNC, 5), BLK);
	assert_int_equal(wr(f, 5 * BLK, BLK, 0, 6), BLK);
}

static void test_emu_read_beyond_wp_zeros(void **state)
{
	struct fx *f = *state;
	uint64_t z3 = 3 * ZS;
	unsigned char *p = f->buf;
	struct iovec iov = {.iov_base = f->buf, .iov_len = 2 * BLK};
	void *want = tu_alloc(BLK);

	assert_int_equal(wr(f, z3, BLK, 0, 7), BLK);
	tu_fill(want, BLK, 7);
	memset(f->buf, 0xaa, 2 * BLK);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, z3), 2 * BLK);
	assert_memory_equal(p, want, BLK);
	for (int i = BLK; i < 2 * BLK; i++)
		assert_int_equal(p[i], 0);
	free(want);
}

static void test_emu_capacity(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unlink(f->path);
	assert_int_equal(fmt_open(f, 1, 0, 0, ZS / 2), 0);
	assert_int_equal(zone(f, 1).cap, ZS / 2);
	assert_int_equal(wr(f, ZS, ZS / 2 + BLK, 0, 1), -EIO);
	assert_int_equal(wr(f, ZS, ZS / 2, 0, 1), ZS / 2);
	assert_int_equal(zone(f, 1).cond, FF_ZC_FULL);
	assert_int_equal(wr(f, ZS + ZS / 2, BLK, 0, 1), -EIO);
}

static void test_emu_zone_ops(void **state)
{
	struct fx *f = *state;
	uint64_t z4 = 4 * ZS;

	assert_int_equal(ff_dev_zone_op(f->dev, 0, FF_ZOP_RESET), -EINVAL); /* conventional */
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_OPEN), 0);
	assert_int_equal(zone(f, 4).cond, FF_ZC_EXP_OPEN);
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_CLOSE), 0);
	assert_int_equal(zone(f, 4).cond, FF_ZC_EMPTY); /* nothing written: back to empty */
	assert_int_equal(wr(f, z4, BLK, 0, 1), BLK);
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_CLOSE), 0);
	assert_int_equal(zone(f, 4).cond, FF_ZC_CLOSED);
	assert_int_equal(wr(f, z4 + BLK, BLK, 0, 1), BLK); /* a closed zone reopens implicitly */
	assert_int_equal(zone(f, 4).cond, FF_ZC_IMP_OPEN);
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_FINISH), 0);
	assert_int_equal(zone(f, 4).cond, FF_ZC_FULL);
	assert_int_equal(zone(f, 4).wp, z4 + ZS);
	assert_int_equal(wr(f, z4 + ZS - BLK, BLK, 0, 1), -EIO);
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_RESET), 0);
	assert_int_equal(zone(f, 4).cond, FF_ZC_EMPTY);
	assert_int_equal(zone(f, 4).wp, z4);
	assert_int_equal(wr(f, z4, BLK, 0, 1), BLK);
}

static void test_emu_open_limits(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unlink(f->path);
	assert_int_equal(fmt_open(f, 1, 2, 3, 0), 0);
	assert_int_equal(ff_dev_info(f->dev)->max_open, 2);
	assert_int_equal(ff_dev_info(f->dev)->max_active, 3);
	/* two explicit opens fill max_open: a third zone cannot open implicitly */
	assert_int_equal(ff_dev_zone_op(f->dev, 1, FF_ZOP_OPEN), 0);
	assert_int_equal(ff_dev_zone_op(f->dev, 2, FF_ZOP_OPEN), 0);
	assert_int_equal(wr(f, 3 * ZS, BLK, 0, 1), -ETOOMANYREFS);
	assert_int_equal(ff_dev_zone_op(f->dev, 3, FF_ZOP_OPEN), -ETOOMANYREFS);
	/* closing one (written, so CLOSED: still active) frees an open slot */
	assert_int_equal(wr(f, 1 * ZS, BLK, 0, 1), BLK);
	assert_int_equal(ff_dev_zone_op(f->dev, 1, FF_ZOP_CLOSE), 0);
	assert_int_equal(wr(f, 3 * ZS, BLK, 0, 1), BLK); /* active = 3 now */
	/* implicit open past max_open closes an implicitly open zone instead */
	assert_int_equal(ff_dev_zone_op(f->dev, 2, FF_ZOP_CLOSE), 0); /* empty again */
	assert_int_equal(wr(f, 1 * ZS + BLK, BLK, 0, 1), BLK);
	assert_int_equal(zone(f, 1).cond, FF_ZC_IMP_OPEN);
	assert_int_equal(zone(f, 3).cond, FF_ZC_IMP_OPEN);
	/* max_active (3): zones 1 and 3 active; a fourth active zone is refused */
	assert_int_equal(wr(f, 2 * ZS, BLK, 0, 1), BLK); /* closes 1 or 3 implicitly */
	assert_int_equal(wr(f, 4 * ZS, BLK, 0, 1), -EOVERFLOW);
	/* finishing one releases it */
	assert_int_equal(ff_dev_zone_op(f->dev, 3, FF_ZOP_FINISH), 0);
	assert_int_equal(wr(f, 4 * ZS, BLK, 0, 1), BLK);
}

static void test_emu_persist_reopen(void **state)
{
	struct fx *f = *state;
	struct iovec iov = {.iov_base = f->buf, .iov_len = BLK};
	void *want = tu_alloc(BLK);

	assert_int_equal(wr(f, 5 * ZS, 3 * BLK, 0, 11), 3 * BLK);
	assert_int_equal(wr(f, 6 * ZS, 2 * BLK, FF_IO_DSYNC, 12), 2 * BLK);
	assert_int_equal(ff_dev_zone_op(f->dev, 7, FF_ZOP_FINISH), 0);
	ff_dev_close(f->dev);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(zone(f, 5).wp, 5 * ZS + 3 * BLK);
	assert_int_equal(zone(f, 5).cond, FF_ZC_CLOSED);
	assert_int_equal(zone(f, 6).wp, 6 * ZS + 2 * BLK);
	assert_int_equal(zone(f, 7).cond, FF_ZC_FULL);
	assert_int_equal(zone(f, 8).cond, FF_ZC_EMPTY);
	tu_fill(want, BLK, 12);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 6 * ZS), BLK);
	assert_memory_equal(f->buf, want, BLK);
	/* appends continue where they stopped */
	assert_int_equal(wr(f, 5 * ZS + 3 * BLK, BLK, 0, 13), BLK);
	free(want);
}

/* Overwrite bytes of the image behind the device's back (a lost write). */
static void scribble(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_RDWR);
	char *junk = calloc(1, len);

	memset(junk, 0x5c, len);
	assert_int_equal(pwrite(fd, junk, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(junk);
}

static void test_emu_durable_write_survives_crash(void **state)
{
	struct fx *f = *state;
	struct ff_dev *crashed = f->dev;

	/* a durable append, then a "crash": the device is reopened without a close */
	assert_int_equal(wr(f, 9 * ZS, 4 * BLK, FF_IO_DSYNC, 21), 4 * BLK);
	assert_int_equal(wr(f, 9 * ZS + 4 * BLK, BLK, FF_IO_DSYNC, 22), BLK);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_true(zone(f, 9).wp >= 9 * ZS + 5 * BLK);
	ff_dev_close(f->dev);
	f->dev = crashed; /* closed by teardown... after swapping back */
	ff_dev_close(crashed);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

/*
 * ff_dev_sync (what fsync calls) flushes only when a completed write is not
 * durable yet, and never twice for the same writes; what it skips survives
 * a crash all the same.
 */
static void test_emu_sync_flushes_only_when_needed(void **state)
{
	struct fx *f = *state;
	struct ff_dev *crashed;
	struct ff_dev_stats st;
	uint64_t n;

	ff_dev_stats(f->dev, &st);
	n = st.flushes;
	assert_int_equal(ff_dev_sync(f->dev), 0);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.flushes, n); /* nothing written */
	/* volatile writes to a conventional and a sequential zone: one flush */
	assert_int_equal(wr(f, ZS, BLK, 0, 31), BLK);
	assert_int_equal(wr(f, 9 * ZS, BLK, 0, 32), BLK);
	assert_int_equal(ff_dev_sync(f->dev), 0);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.flushes, n + 1);
	assert_int_equal(ff_dev_sync(f->dev), 0);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.flushes, n + 1); /* nothing new */
	/* durable writes need no flush */
	assert_int_equal(wr(f, ZS + BLK, BLK, FF_IO_DSYNC, 33), BLK);
	assert_int_equal(ff_dev_sync(f->dev), 0);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.flushes, n + 1);
	/* a durable append, synced: its pointer survives a crash */
	assert_int_equal(wr(f, 9 * ZS + BLK, BLK, FF_IO_DSYNC, 34), BLK);
	assert_int_equal(ff_dev_sync(f->dev), 0);
	crashed = f->dev;
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_true(zone(f, 9).wp >= 9 * ZS + 2 * BLK);
	ff_dev_close(f->dev);
	ff_dev_close(crashed);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

/*
 * On a raw device that takes 512 B writes, a durable append's pointer record
 * is one 512 B sector, not a 4 KiB block: a 4 KiB sync append writes 4.5 KiB.
 * The record still brings the pointer back after a crash.
 */
static void test_emu_record_is_a_sector(void **state)
{
	struct fx *f = *state;
	struct ff_dev *crashed = f->dev;
	struct ff_dev_stats a, b;
	struct statx stx;
	int fd = open(f->path, O_RDONLY | O_DIRECT);

	if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) ||
	    !(stx.stx_mask & STATX_DIOALIGN) || stx.stx_dio_offset_align != 512) {
		if (fd >= 0)
			close(fd);
		skip(); /* the image's file system takes no 512 B direct I/O */
	}
	close(fd);
	ff_dev_stats(f->dev, &a);
	for (int i = 0; i < 8; i++)
		assert_int_equal(wr(f, 11 * ZS + (uint64_t)i * BLK, BLK, FF_IO_DSYNC, 40 + i), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.meta_bytes - a.meta_bytes, 8 * 512);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(zone(f, 11).wp, 11 * ZS + 8 * BLK);
	ff_dev_close(f->dev);
	ff_dev_close(crashed);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

static void test_emu_record_rollback(void **state)
{
	struct fx *f = *state;
	struct ff_dev *crashed = f->dev;

	assert_int_equal(wr(f, 10 * ZS, 2 * BLK, FF_IO_DSYNC, 31), 2 * BLK);
	assert_int_equal(wr(f, 10 * ZS + 2 * BLK, 2 * BLK, FF_IO_DSYNC, 32), 2 * BLK);
	/* the second write's blocks never reached the media: its record must roll back */
	scribble(f->path, 10 * ZS + 3 * BLK, BLK);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(zone(f, 10).wp, 10 * ZS + 2 * BLK);
	/* and the device accepts the append again at the rolled-back pointer */
	assert_int_equal(wr(f, 10 * ZS + 2 * BLK, BLK, FF_IO_DSYNC, 33), BLK);
	ff_dev_close(f->dev);
	/* the crashed handle would write its records at close: drop them by reopening after */
	ff_dev_close(crashed);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

static void test_emu_flush_persists_buffered(void **state)
{
	struct fx *f = *state;
	struct ff_dev *crashed = f->dev;

	assert_int_equal(wr(f, 11 * ZS, 3 * BLK, 0, 41), 3 * BLK);
	assert_int_equal(ff_dev_flush(f->dev), 0);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(zone(f, 11).wp, 11 * ZS + 3 * BLK);
	ff_dev_close(f->dev);
	ff_dev_close(crashed);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

static void test_emu_format_refuses_existing(void **state)
{
	struct fx *f = *state;
	struct ff_emu_opts o = {.zone_size = ZS, .nr_cnv = 1};

	assert_int_equal(ff_dev_format_emulated(f->path, &o, false), -EEXIST);
	o.zone_size = 12345;
	assert_int_equal(ff_dev_format_emulated(f->path, &o, true), -EINVAL);
	o.zone_size = 64ull << 30; /* larger than the image */
	assert_int_equal(ff_dev_format_emulated(f->path, &o, true), -ENOSPC);
	assert_int_equal(zone(f, 0).type, FF_ZONE_CNV);
}

static void test_emu_corrupt_trailer_refused(void **state)
{
	struct fx *f = *state;
	struct ff_dev *d = NULL;
	struct stat st;

	ff_dev_close(f->dev);
	f->dev = NULL;
	assert_int_equal(stat(f->path, &st), 0);
	scribble(f->path, ((uint64_t)st.st_size & ~4095ull) - 4096 + 20, 4);
	assert_int_equal(ff_dev_open(f->path, NULL, &d), -EUCLEAN);
	assert_null(d);
	/* teardown needs a device */
	unlink(f->path);
	assert_int_equal(tu_make_image(f->path, sizeof(f->path), "emu2", 8 * ZS), 0);
	{
		struct ff_dev_opts o = {.zone_size = ZS};

		assert_int_equal(ff_dev_open(f->path, &o, &f->dev), 0);
	}
	assert_int_equal(ff_dev_info(f->dev)->kind, FF_DEV_REGULAR);
	assert_int_equal(ff_dev_info(f->dev)->nr_zones, 8);
}

/*
 * An image grown after the format (a truncate to a larger size): its zones,
 * their pointers and data are as they were, the new tail is not used. Grown
 * with data instead of a hole (zeros written), the trailer is not at the end
 * of the data either: a regular device whose zones nothing records, so the
 * filesystem above can refuse it.
 */
static void test_emu_grown_image(void **state)
{
	struct fx *f = *state;
	struct iovec iov = {.iov_base = f->buf, .iov_len = 2 * BLK};
	void *want = tu_alloc(2 * BLK);
	struct stat st;
	int fd;

	assert_true(ff_dev_info(f->dev)->zones_recorded);
	assert_int_equal(wr(f, 6 * ZS, 2 * BLK, FF_IO_DSYNC, 21), 2 * BLK);
	ff_dev_close(f->dev);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(truncate(f->path, st.st_size + 40 * ZS + 512), 0);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(ff_dev_info(f->dev)->kind, FF_DEV_EMULATED);
	assert_true(ff_dev_info(f->dev)->zones_recorded);
	assert_int_equal(ff_dev_info(f->dev)->nr_zones, 16);
	assert_int_equal(ff_dev_info(f->dev)->nr_cnv_zones, 2);
	assert_int_equal(zone(f, 6).wp, 6 * ZS + 2 * BLK);
	tu_fill(want, 2 * BLK, 21);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 6 * ZS), 2 * BLK);
	assert_memory_equal(f->buf, want, 2 * BLK);
	/* written and reopened, grown as it is */
	assert_int_equal(wr(f, 6 * ZS + 2 * BLK, BLK, FF_IO_DSYNC, 22), BLK);
	ff_dev_close(f->dev);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(zone(f, 6).wp, 6 * ZS + 3 * BLK);
	ff_dev_close(f->dev);
	f->dev = NULL;
	/* a tail of written zeros hides the trailer */
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	memset(want, 0, BLK);
	assert_int_equal(pwrite(fd, want, BLK, st.st_size + 40 * ZS - BLK), BLK);
	close(fd);
	{
		struct ff_dev_opts o = {.zone_size = ZS};

		assert_int_equal(ff_dev_open(f->path, &o, &f->dev), 0);
	}
	assert_int_equal(ff_dev_info(f->dev)->kind, FF_DEV_REGULAR);
	assert_false(ff_dev_info(f->dev)->zones_recorded);
	free(want);
}

/*
 * Many zones, more than one batch of the open's record read: the format
 * writes no per-zone record (the record area of a fresh image is a hole,
 * the image allocates only its trailer), every zone of a fresh image is
 * empty, and pointers written in zones far apart, with unwritten record
 * slots between them, come back at reopen.
 */
static void test_emu_many_zones_format_and_reload(void **state)
{
	struct fx *f = *state;
	const uint64_t zs = 64 << 10;
	const uint32_t nr = 1200;
	struct ff_emu_opts o = {.zone_size = zs, .nr_cnv = 1};
	const uint32_t hit[] = {3, 700, nr - 1};
	struct stat st;

	ff_dev_close(f->dev);
	f->dev = NULL;
	unlink(f->path);
	assert_int_equal(tu_make_image(f->path, sizeof(f->path), "emu-many",
				       nr * zs + (uint64_t)nr * 2 * BLK + 2 * BLK),
			 0);
	assert_int_equal(ff_dev_format_emulated(f->path, &o, false), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= 2 * BLK);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(ff_dev_info(f->dev)->nr_zones, nr);
	for (uint32_t i = 1; i < nr; i++) {
		struct ff_zone z = zone(f, i);

		assert_int_equal(z.cond, FF_ZC_EMPTY);
		assert_int_equal(z.wp, z.start);
	}
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(wr(f, hit[k] * zs, (k + 1) * BLK, k == 1 ? FF_IO_DSYNC : 0, k),
				 (ssize_t)(k + 1) * BLK);
	assert_int_equal(ff_dev_zone_op(f->dev, 900, FF_ZOP_FINISH), 0);
	ff_dev_close(f->dev);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	for (uint32_t i = 1; i < nr; i++) {
		struct ff_zone z = zone(f, i);
		unsigned k;

		for (k = 0; k < 3 && hit[k] != i; k++)
			;
		if (k < 3) {
			assert_int_equal(z.cond, FF_ZC_CLOSED);
			assert_int_equal(z.wp, z.start + (k + 1) * BLK);
		} else if (i == 900) {
			assert_int_equal(z.cond, FF_ZC_FULL);
		} else {
			assert_int_equal(z.cond, FF_ZC_EMPTY);
			assert_int_equal(z.wp, z.start);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_emu_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_write_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_read_beyond_wp_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_zone_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_open_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_persist_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_durable_write_survives_crash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_emu_sync_flushes_only_when_needed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_emu_record_is_a_sector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_record_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_flush_persists_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_format_refuses_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_corrupt_trailer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_grown_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emu_many_zones_format_and_reload, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
