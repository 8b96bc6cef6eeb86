// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the fault-injecting device (src/dev/fault.c): the Nth write,
 * read or flush failing, a dead device failing or dropping every later write,
 * the range filter, and the volatile write cache model — a power cut applied
 * from the log leaves exactly the durable writes plus the chosen subset.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/fault.h"
#include "foliofs/zoneq.h"
#include "testutil.h"
#include "../../src/dev/internal.h" /* ff_dev_issue_write: the raw write */

#define ZS  (1ull << 20)
#define BLK 4096

struct fx {
	char path[256];
	char log[300];
	struct ff_dev *dev;
	void *buf, *rbuf;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_emu_opts o = {.zone_size = ZS, .nr_cnv = 2};

	f->buf = tu_alloc(4 * BLK);
	f->rbuf = tu_alloc(4 * BLK);
	assert_int_equal(tu_emu_mkimage(f->path, sizeof(f->path), "fault", 8 * ZS + ZS, &o), 0);
	snprintf(f->log, sizeof(f->log), "%s.vlog", f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unsetenv("FOLIOFS_FAULT");
	unlink(f->path);
	unlink(f->log);
	free(f->buf);
	free(f->rbuf);
	free(f);
	return 0;
}

/*
 * Open the image with FOLIOFS_FAULT = spec (%s: the volatile-write log) and
 * device options (NULL: the defaults).
 */
static void open_opts(struct fx *f, const char *spec, const struct ff_dev_opts *o)
{
	char env[512];

	snprintf(env, sizeof(env), spec, f->log);
	setenv("FOLIOFS_FAULT", env, 1);
	assert_int_equal(ff_dev_open(f->path, o, &f->dev), 0);
}

/* open_opts with the defaults */
static void open_with(struct fx *f, const char *spec)
{
	open_opts(f, spec, NULL);
}

static ssize_t wr(struct fx *f, uint64_t off, unsigned seed, unsigned flags)
{
	struct iovec iov = {.iov_base = f->buf, .iov_len = BLK};

	tu_fill(f->buf, BLK, seed);
	if (off >= 2 * ZS) /* zones 0 and 1 are conventional */
		return ff_zoneq_write_at(f->dev, (uint32_t)(off / ZS), &iov, 1, off, flags);
	return ff_dev_write(f->dev, &iov, 1, off, flags);
}

/* The emulation's own raw write, below the zone queue and its preflush. */
static ssize_t raw_wr(struct fx *f, uint64_t off, unsigned seed, unsigned flags)
{
	struct iovec iov = {.iov_base = f->buf, .iov_len = BLK};

	tu_fill(f->buf, BLK, seed);
	return ff_dev_issue_write(f->dev, &iov, 1, off, flags);
}

static ssize_t rd(struct fx *f, uint64_t off)
{
	struct iovec iov = {.iov_base = f->rbuf, .iov_len = BLK};

	return ff_dev_read(f->dev, &iov, 1, off);
}

/* f->rbuf holds the pattern of seed (0: zeros). */
static void assert_rbuf(struct fx *f, unsigned seed)
{
	if (seed)
		tu_fill(f->buf, BLK, seed);
	else
		memset(f->buf, 0, BLK);
	assert_memory_equal(f->rbuf, f->buf, BLK);
}

/* The block at off holds the pattern of seed (0: zeros). */
static void assert_blk(struct fx *f, uint64_t off, unsigned seed)
{
	assert_int_equal(rd(f, off), BLK);
	assert_rbuf(f, seed);
}

static void test_fault_nth_write_fails(void **state)
{
	struct fx *f = *state;

	open_with(f, "fail_write=2");
	assert_int_equal(wr(f, 0, 1, 0), BLK);
	assert_int_equal(wr(f, BLK, 2, 0), -EIO);
	assert_int_equal(wr(f, BLK, 3, 0), BLK);
	assert_blk(f, 0, 1);
	assert_blk(f, BLK, 3);
}

static void test_fault_range_counts_only_inside(void **state)
{
	struct fx *f = *state;

	/* the first write to zone 2 (sequential) fails; zone 0 is never touched */
	open_with(f, "fail_write=1,fail_count=2,range=2097152:3145728");
	assert_int_equal(wr(f, 0, 1, 0), BLK);
	assert_int_equal(wr(f, 2 * ZS, 2, FF_IO_DSYNC), -EIO);
	assert_int_equal(wr(f, 2 * ZS, 2, 0), -EIO);
	assert_int_equal(wr(f, 0, 4, 0), BLK);
	/* the pointer did not move: the next write at the start works */
	assert_int_equal(wr(f, 2 * ZS, 5, FF_IO_DSYNC), BLK);
	assert_blk(f, 2 * ZS, 5);
}

static void test_fault_read_and_flush(void **state)
{
	struct fx *f = *state;

	open_with(f, "fail_read=2,fail_flush=1");
	assert_int_equal(wr(f, 0, 1, 0), BLK);
	assert_int_equal(rd(f, 0), BLK);
	assert_int_equal(rd(f, 0), -EIO);
	assert_int_equal(rd(f, 0), BLK);
	assert_int_equal(ff_dev_flush(f->dev), -EIO);
	assert_int_equal(ff_dev_flush(f->dev), 0);
}

static void test_fault_dead_device_fails(void **state)
{
	struct fx *f = *state;

	open_with(f, "dead_after=2");
	assert_int_equal(wr(f, 0, 1, 0), BLK);
	assert_int_equal(wr(f, BLK, 2, 0), BLK);
	assert_int_equal(wr(f, 2 * BLK, 3, 0), -EIO);
	assert_int_equal(wr(f, 3 * BLK, 4, FF_IO_DSYNC), -EIO);
	assert_int_equal(ff_dev_flush(f->dev), -EIO);
	assert_blk(f, BLK, 2); /* reads keep working */
	assert_blk(f, 2 * BLK, 0);
}

static void test_fault_dead_device_drops(void **state)
{
	struct fx *f = *state;

	open_with(f, "dead_after=1,dead_mode=drop");
	assert_int_equal(wr(f, 0, 1, 0), BLK);
	assert_int_equal(wr(f, BLK, 2, FF_IO_DSYNC), BLK); /* acknowledged, not written */
	assert_int_equal(ff_dev_flush(f->dev), 0);
	assert_blk(f, BLK, 0);
}

static void cut(struct fx *f, unsigned keep_pct, struct ff_cut_stats *st)
{
	ff_fault_kill(f->dev);
	ff_dev_close(f->dev);
	f->dev = NULL;
	assert_int_equal(ff_fault_apply_cut(f->path, f->log, 42, keep_pct, st), 0);
	unsetenv("FOLIOFS_FAULT");
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
}

static void write_history(struct fx *f)
{
	open_with(f, "vlog=%s");
	assert_int_equal(wr(f, 0, 1, 0), BLK); /* A: flushed below */
	assert_int_equal(ff_dev_flush(f->dev), 0);
	assert_int_equal(wr(f, 0, 2, 0), BLK);		       /* B over A: volatile */
	assert_int_equal(wr(f, BLK, 3, FF_IO_DSYNC), BLK);     /* C: durable */
	assert_int_equal(wr(f, 2 * BLK, 4, 0), BLK);	       /* D: volatile */
	assert_int_equal(wr(f, 3 * BLK, 5, 0), BLK);	       /* E: volatile, then */
	assert_int_equal(wr(f, 3 * BLK, 6, FF_IO_DSYNC), BLK); /* F durable over it */
	assert_int_equal(wr(f, 4 * BLK, 7, 0), BLK);	       /* G, H: two volatile */
	assert_int_equal(wr(f, 4 * BLK, 8, 0), BLK);
}

static void test_fault_cut_drops_all_volatile(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;

	write_history(f);
	cut(f, 0, &st);
	assert_int_equal(st.entries, 7);
	assert_int_equal(st.durable, 2);
	assert_int_equal(st.dropped, 5);
	assert_blk(f, 0, 1);
	assert_blk(f, BLK, 3);
	assert_blk(f, 2 * BLK, 0);
	assert_blk(f, 3 * BLK, 6); /* a dropped older write never undoes a durable newer one */
	assert_blk(f, 4 * BLK, 0);
}

static void test_fault_cut_keeps_all(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;

	write_history(f);
	cut(f, 100, &st);
	assert_int_equal(st.dropped, 0);
	assert_blk(f, 0, 2);
	assert_blk(f, BLK, 3);
	assert_blk(f, 2 * BLK, 4);
	assert_blk(f, 3 * BLK, 6);
	assert_blk(f, 4 * BLK, 8);
}

static void test_fault_cut_random_subset_is_possible(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	static const unsigned ok4[] = {0, 7, 8};

	write_history(f);
	cut(f, 50, &st);
	assert_int_equal(st.kept + st.dropped + st.durable, st.entries);
	assert_blk(f, BLK, 3);
	assert_blk(f, 3 * BLK, 6);
	/* block 4 holds one of: nothing, G, H */
	assert_int_equal(rd(f, 4 * BLK), BLK);
	bool found = false;
	for (unsigned i = 0; i < 3; i++) {
		if (ok4[i])
			tu_fill(f->buf, BLK, ok4[i]);
		else
			memset(f->buf, 0, BLK);
		found |= !memcmp(f->buf, f->rbuf, BLK);
	}
	assert_true(found);
}

static void test_fault_cut_seq_zone_pointer(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	struct ff_zone z;

	/* durable appends survive; volatile appends after them roll back with their record */
	open_with(f, "vlog=%s");
	assert_int_equal(wr(f, 3 * ZS, 1, FF_IO_DSYNC), BLK);
	assert_int_equal(wr(f, 3 * ZS + BLK, 2, FF_IO_DSYNC), BLK);
	assert_int_equal(wr(f, 3 * ZS + 2 * BLK, 3, 0), BLK);
	assert_int_equal(ff_dev_flush(f->dev), 0);
	assert_int_equal(wr(f, 3 * ZS + 3 * BLK, 4, 0), BLK);
	cut(f, 0, &st);
	assert_int_equal(ff_dev_report(f->dev, 3, 1, &z), 1);
	assert_true(z.wp >= 3 * ZS + 3 * BLK);
	assert_blk(f, 3 * ZS, 1);
	assert_blk(f, 3 * ZS + BLK, 2);
	assert_blk(f, 3 * ZS + 2 * BLK, 3);
}

/* ff_dev_fault_hook (src/dev/internal.h): a record write that takes a while */
extern int (*ff_dev_fault_hook)(struct ff_dev *dev, uint64_t off, size_t len);
static atomic_int slow_once;

static int slow_record_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)len;
	if (off >= 8 * ZS && atomic_exchange(&slow_once, 0))
		usleep(200000);
	return 0;
}

static void *flush_thread(void *arg)
{
	return (void *)(intptr_t)ff_dev_flush(arg);
}

/*
 * Two flushes at once: the second waits for the zone the first is writing
 * the record of, and must then see that the record is written. Writing one
 * more with from == wp (no checksum to check at mount) would let a power cut
 * keep a pointer over data that was never made durable (crash.py found it).
 */
static void test_fault_concurrent_flushes_one_record(void **state)
{
	struct fx *f = *state;
	struct ff_dev_stats st;
	uint64_t rec_bytes;
	pthread_t th;
	void *res;

	open_with(f, "vlog=%s");
	/* the size of one record (a sector of the image's file system, up to a block) */
	assert_int_equal(wr(f, 4 * ZS, 1, FF_IO_DSYNC), BLK);
	ff_dev_stats(f->dev, &st);
	rec_bytes = st.meta_bytes;
	assert_true(rec_bytes == 512 || rec_bytes == BLK);
	assert_int_equal(wr(f, 3 * ZS, 1, 0), BLK);
	atomic_store(&slow_once, 1);
	ff_dev_fault_hook = slow_record_hook;
	assert_int_equal(pthread_create(&th, NULL, flush_thread, f->dev), 0);
	usleep(50000);
	assert_int_equal(ff_dev_flush(f->dev), 0);
	assert_int_equal(pthread_join(th, &res), 0);
	ff_dev_fault_hook = NULL;
	assert_int_equal((intptr_t)res, 0);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.meta_bytes, 2 * rec_bytes); /* the DSYNC write's and one flush's */
}

/* A zone reset the device fails changes nothing, as on a real device (emu.c rule). */
static void test_fault_failed_reset_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct ff_zone z;

	open_with(f, "fail_count=0");
	assert_int_equal(wr(f, 4 * ZS, 1, FF_IO_DSYNC), BLK);
	ff_dev_close(f->dev);
	/* the 1st raw write after this open is the reset's record: make it fail */
	open_with(f, "fail_write=1");
	assert_int_equal(ff_dev_zone_op(f->dev, 4, FF_ZOP_RESET), -EIO);
	assert_int_equal(ff_dev_report(f->dev, 4, 1, &z), 1);
	assert_int_equal(z.wp, 4 * ZS + BLK);
	assert_blk(f, 4 * ZS, 1);
	/* and the device still takes the next append at the old pointer */
	assert_int_equal(wr(f, 4 * ZS + BLK, 2, FF_IO_DSYNC), BLK);
}

/*
 * A zone close (or open/finish) writes a durable pointer record with nothing
 * to checksum: the buffered data below the pointer must be durable first, or
 * a power cut leaves the pointer over zeros.
 */
static void test_fault_close_record_after_volatile_data(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	struct ff_zone z;

	open_with(f, "vlog=%s");
	assert_int_equal(wr(f, 5 * ZS, 7, 0), BLK); /* volatile */
	assert_int_equal(ff_dev_zone_op(f->dev, 5, FF_ZOP_CLOSE), 0);
	cut(f, 0, &st);
	/* the close made the data durable before its record: both survive */
	assert_int_equal(ff_dev_report(f->dev, 5, 1, &z), 1);
	assert_int_equal(z.wp, 5 * ZS + BLK);
	assert_int_equal(z.cond, FF_ZC_CLOSED);
	assert_blk(f, 5 * ZS, 7);
}

/*
 * The device is closed (records compacted, from == wp) and the power goes
 * before the closing flush completes: the data must not be lost under a
 * kept compacted record. Seed 1 at 50% drops the data write and keeps the
 * record write (the two entries of the log).
 */
static void test_fault_close_compaction_after_volatile_data(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	struct ff_zone z;

	open_with(f, "vlog=%s,fail_flush=1");
	assert_int_equal(wr(f, 6 * ZS, 9, 0), BLK); /* volatile */
	ff_dev_close(f->dev);
	f->dev = NULL;
	assert_int_equal(ff_fault_apply_cut(f->path, f->log, 1, 50, &st), 0);
	unsetenv("FOLIOFS_FAULT");
	/* the seed did drop the data: the case this test is about */
	assert_int_equal(st.dropped, 1);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(ff_dev_report(f->dev, 6, 1, &z), 1);
	/* the closing flush failed, so no record may claim the lost block */
	assert_int_equal(z.wp, 6 * ZS);
	assert_blk(f, 6 * ZS, 0);
}

/*
 * The reproduction of issue 10: 64 KiB written back to a sequential zone
 * without FF_IO_DSYNC, then a 4 KiB FF_IO_DSYNC append at the pointer, then a
 * power cut keeping none of the non-durable writes. The append was
 * acknowledged durable, so the pointer after it must survive, and so must
 * every byte below it: the zone queue flushes before the durable write
 * (PREFLUSH|FUA), once.
 */
static void test_fault_dsync_after_volatile_flushes_first(void **state)
{
	struct fx *f = *state;
	struct ff_dev_stats a, b;
	struct ff_cut_stats st;
	struct ff_zone z;

	open_with(f, "vlog=%s");
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(wr(f, 7 * ZS + i * BLK, 100 + i, 0), BLK);
	assert_true(ff_zoneq_durable_end(f->dev, 7) < 7 * ZS + 16 * BLK);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(wr(f, 7 * ZS + 16 * BLK, 200, FF_IO_DSYNC), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.flushes, a.flushes + 1);
	assert_int_equal(ff_zoneq_durable_end(f->dev, 7), 7 * ZS + 17 * BLK);
	cut(f, 0, &st);
	assert_int_equal(ff_dev_report(f->dev, 7, 1, &z), 1);
	assert_int_equal(z.wp, 7 * ZS + 17 * BLK);
	for (unsigned i = 0; i < 16; i++)
		assert_blk(f, 7 * ZS + i * BLK, 100 + i);
	assert_blk(f, 7 * ZS + 16 * BLK, 200);
}

/* W2's cost: a stream of FF_IO_DSYNC appends has nothing below to flush. */
static void test_fault_dsync_stream_never_flushes(void **state)
{
	struct fx *f = *state;
	struct ff_dev_stats a, b;

	open_with(f, "vlog=%s");
	ff_dev_stats(f->dev, &a);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(wr(f, 7 * ZS + i * BLK, 1 + i, FF_IO_DSYNC), BLK);
	/* another zone's volatile data is not this zone's business */
	assert_int_equal(wr(f, 6 * ZS, 50, 0), BLK);
	assert_int_equal(wr(f, 7 * ZS + 8 * BLK, 9, FF_IO_DSYNC), BLK);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.flushes, a.flushes);
	assert_int_equal(ff_zoneq_durable_end(f->dev, 7), 7 * ZS + 9 * BLK);
	/* an explicit PREFLUSH does flush the other zone's data */
	assert_int_equal(wr(f, 7 * ZS + 9 * BLK, 10, FF_IO_DSYNC | FF_IO_PREFLUSH), BLK);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(a.flushes, b.flushes + 1);
	assert_int_equal(ff_zoneq_durable_end(f->dev, 6), 6 * ZS + BLK);
}

/* A finish makes the zone reachable to its capacity: a flush first, as for a durable write. */
static void test_fault_finish_flushes_volatile_data(void **state)
{
	struct fx *f = *state;
	struct ff_dev_stats a, b;

	open_with(f, "vlog=%s");
	assert_int_equal(wr(f, 5 * ZS, 1, FF_IO_DSYNC), BLK);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 5, FF_ZOP_FINISH), 0);
	ff_dev_stats(f->dev, &b);
	assert_int_equal(b.flushes, a.flushes); /* nothing volatile below */
	assert_int_equal(wr(f, 6 * ZS, 2, 0), BLK);
	assert_int_equal(ff_zoneq_durable_end(f->dev, 6), 6 * ZS);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 6, FF_ZOP_FINISH), 0);
	ff_dev_stats(f->dev, &a);
	assert_int_equal(a.flushes, b.flushes + 1);
	assert_int_equal(ff_zoneq_durable_end(f->dev, 6), 6 * ZS + BLK);
}

/*
 * The emulation keeps its own rule below the zone queue: a durable write's
 * record (which checks only that write) never goes out over non-durable
 * data in its zone.
 */
static void test_fault_emu_record_covers_durable_only(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	struct ff_zone z;

	open_with(f, "vlog=%s");
	assert_int_equal(raw_wr(f, 4 * ZS, 1, 0), BLK);
	assert_int_equal(raw_wr(f, 4 * ZS + BLK, 2, 0), BLK);
	assert_int_equal(raw_wr(f, 4 * ZS + 2 * BLK, 3, FF_IO_DSYNC), BLK);
	cut(f, 0, &st);
	assert_int_equal(ff_dev_report(f->dev, 4, 1, &z), 1);
	assert_int_equal(z.wp, 4 * ZS + 3 * BLK);
	assert_blk(f, 4 * ZS, 1);
	assert_blk(f, 4 * ZS + BLK, 2);
	assert_blk(f, 4 * ZS + 2 * BLK, 3);
}

static int copy_file(const char *from, const char *to)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	return system(cmd);
}

/*
 * A flush writes a zone's record (from = the previous record's pointer) and
 * fails before its device flush completes; the next flush must not chain a
 * new record onto that one while it is not durable, or a power cut can keep
 * the new record and lose the old one and the data under it: the pointer
 * then stands over zeros. Every cut of 64 seeds is checked: whatever
 * survives, every block below the pointer holds its data.
 */
static void test_fault_record_chain_only_on_durable_records(void **state)
{
	struct fx *f = *state;
	char img[320], log[320];

	open_with(f, "vlog=%s,fail_flush=1,fail_count=2");
	assert_int_equal(wr(f, 3 * ZS, 1, 0), BLK);
	assert_int_equal(ff_dev_flush(f->dev), -EIO);
	assert_int_equal(wr(f, 3 * ZS + BLK, 2, 0), BLK);
	assert_int_equal(ff_dev_flush(f->dev), -EIO);
	ff_fault_kill(f->dev);
	ff_dev_close(f->dev);
	f->dev = NULL;
	unsetenv("FOLIOFS_FAULT");
	snprintf(img, sizeof(img), "%s.cut", f->path);
	snprintf(log, sizeof(log), "%s.cut", f->log);
	for (uint64_t seed = 0; seed < 64; seed++) {
		struct ff_zone z;

		assert_int_equal(copy_file(f->path, img), 0);
		assert_int_equal(copy_file(f->log, log), 0);
		assert_int_equal(ff_fault_apply_cut(img, log, seed, 50, NULL), 0);
		assert_int_equal(ff_dev_open(img, NULL, &f->dev), 0);
		assert_int_equal(ff_dev_report(f->dev, 3, 1, &z), 1);
		assert_true(z.wp <= 3 * ZS + 2 * BLK);
		for (unsigned i = 0; 3 * ZS + i * BLK < z.wp; i++)
			assert_blk(f, 3 * ZS + i * BLK, 1 + i);
		ff_dev_close(f->dev);
		f->dev = NULL;
	}
	unlink(img);
	unlink(log);
}

/*
 * kill -9 of the process that holds an emulated device keeps what the image
 * file was given, not what the process meant to write later: an O_DIRECT
 * write (FF_IO_STABLE) is acknowledged on the device, so the pointer that
 * says it is there must be on the image when it completes. A plain write is
 * the counter-check: its pointer may be lost with the process.
 */
static void test_fault_stable_write_survives_kill(void **state)
{
	struct fx *f = *state;
	struct ff_zone z;

	open_with(f, "vlog=%s");
	assert_int_equal(wr(f, 5 * ZS, 1, 0), BLK);
	assert_int_equal(wr(f, 5 * ZS + BLK, 2, FF_IO_STABLE), BLK);
	assert_int_equal(wr(f, 6 * ZS, 3, 0), BLK);
	ff_fault_kill(f->dev); /* the process dies: nothing more reaches the image */
	ff_dev_close(f->dev);
	f->dev = NULL;
	unsetenv("FOLIOFS_FAULT");
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	assert_int_equal(ff_dev_report(f->dev, 5, 1, &z), 1);
	assert_int_equal(z.wp, 5 * ZS + 2 * BLK);
	assert_blk(f, 5 * ZS, 1);
	assert_blk(f, 5 * ZS + BLK, 2);
	assert_int_equal(ff_dev_report(f->dev, 6, 1, &z), 1);
	assert_int_equal(z.wp, 6 * ZS);
}

/* The image file's own block at off, below the device: the pattern of seed (0: zeros). */
static void assert_image_blk(struct fx *f, uint64_t off, unsigned seed)
{
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, f->rbuf, BLK, (off_t)off), BLK);
	close(fd);
	assert_rbuf(f, seed);
}

/*
 * By default a reset leaves the zone's old blocks where they are (no
 * discard: the image keeps its space, the writes that refill the zone cost
 * its file system no allocation): the device still reads zeros past the
 * pointer, and a finish, which makes the whole zone readable, reads zeros
 * there too, also after a power cut.
 */
static void test_fault_reset_without_discard_reads_zeros(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;

	open_with(f, "vlog=%s");
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(wr(f, 4 * ZS + i * BLK, 10 + i, FF_IO_DSYNC), BLK);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 4, FF_ZOP_RESET), 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_image_blk(f, 4 * ZS + i * BLK, 10 + i); /* not discarded */
		assert_blk(f, 4 * ZS + i * BLK, 0);
	}
	assert_int_equal(wr(f, 4 * ZS, 20, FF_IO_DSYNC), BLK);
	cut(f, 0, &st);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 4, FF_ZOP_FINISH), 0);
	assert_blk(f, 4 * ZS, 20);
	for (unsigned i = 1; i < 4; i++)
		assert_blk(f, 4 * ZS + i * BLK, 0);
}

/* With the discard option a reset discards the zone's blocks: a hole in the image. */
static void test_fault_reset_discards_when_asked(void **state)
{
	struct fx *f = *state;
	struct ff_dev_opts o = {.discard = true};

	open_opts(f, "vlog=%s", &o);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(wr(f, 4 * ZS + i * BLK, 10 + i, FF_IO_DSYNC), BLK);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 4, FF_ZOP_RESET), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_image_blk(f, 4 * ZS + i * BLK, 0);
}

/*
 * A finish makes the whole zone readable: what lies past the pointer must
 * read as zeros even when a power cut undid the discard of the reset before
 * it (the discard is a volatile write; the reset's record is durable).
 */
static void test_fault_finish_after_undone_discard_reads_zeros(void **state)
{
	struct fx *f = *state;
	struct ff_cut_stats st;
	struct ff_dev_opts o = {.discard = true};

	open_opts(f, "vlog=%s", &o);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(wr(f, 4 * ZS + i * BLK, 10 + i, FF_IO_DSYNC), BLK);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 4, FF_ZOP_RESET), 0);
	cut(f, 0, &st);
	assert_true(st.dropped > 0); /* the discard was undone: old data under an empty zone */
	assert_int_equal(ff_zoneq_zone_op(f->dev, 4, FF_ZOP_FINISH), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_blk(f, 4 * ZS + i * BLK, 0);
}

static void test_fault_bad_spec_refuses(void **state)
{
	struct fx *f = *state;

	setenv("FOLIOFS_FAULT", "fail_write=x", 1);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), -EINVAL);
	assert_null(f->dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fault_nth_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_range_counts_only_inside, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_read_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dead_device_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dead_device_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_cut_drops_all_volatile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_cut_keeps_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_cut_random_subset_is_possible, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_cut_seq_zone_pointer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_concurrent_flushes_one_record, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_failed_reset_changes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_close_record_after_volatile_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_close_compaction_after_volatile_data,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_stable_write_survives_kill, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_reset_without_discard_reads_zeros, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_reset_discards_when_asked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_finish_after_undone_discard_reads_zeros,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_bad_spec_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dsync_after_volatile_flushes_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dsync_stream_never_flushes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_emu_record_covers_durable_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_finish_flushes_volatile_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_record_chain_only_on_durable_records,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
