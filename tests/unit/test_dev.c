// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the regular device: random vectored I/O with verify, batches,
 * durable writes and flush, counters, and the refusal of bad paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/zoneq.h"
#include "testutil.h"

#define ZS   (4ull << 20)
#define SIZE (8 * ZS)
#define BLK  4096

struct fx {
	char path[256];
	struct ff_dev *dev;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_dev_opts o = {.zone_size = ZS};

	assert_int_equal(tu_make_image(f->path, sizeof(f->path), "dev", SIZE + 12345), 0);
	assert_int_equal(ff_dev_open(f->path, &o, &f->dev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unlink(f->path);
	free(f);
	return 0;
}

static void test_dev_regular_geometry(void **state)
{
	struct fx *f = *state;
	const struct ff_dev_info *di = ff_dev_info(f->dev);
	struct ff_zone z[8];

	assert_int_equal(di->kind, FF_DEV_REGULAR);
	assert_int_equal(di->nr_zones, 8); /* the partial tail is not a zone */
	assert_int_equal(di->nr_cnv_zones, 8);
	assert_int_equal(di->size, SIZE);
	assert_int_equal(ff_dev_report(f->dev, 0, 8, z), 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(z[i].type, FF_ZONE_CNV);
		assert_int_equal(z[i].start, (uint64_t)i * ZS);
	}
	assert_int_equal(ff_dev_zone_op(f->dev, 1, FF_ZOP_RESET), -EINVAL);
	assert_int_equal(ff_dev_zone_of(f->dev, 3 * ZS + 5), 3);
}

static void test_dev_random_io_verify(void **state)
{
	struct fx *f = *state;
	const int nblk = (int)(SIZE / BLK), n = 2000;
	uint32_t *seed = calloc((size_t)nblk, sizeof(*seed));
	void *a = tu_alloc(BLK), *b = tu_alloc(BLK), *c = tu_alloc(2 * BLK);
	unsigned long long x = 42;

	for (int i = 0; i < n; i++) {
		int blk;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		blk = (int)((x >> 33) % (unsigned)(nblk - 1));
		/* a two-segment vectored write of two blocks */
		tu_fill(a, BLK, (unsigned)i * 2 + 1);
		tu_fill(b, BLK, (unsigned)i * 2 + 2);
		struct iovec iov[2] = {{a, BLK}, {b, BLK}};

		assert_int_equal(
			ff_dev_write(f->dev, iov, 2, (uint64_t)blk * BLK, i % 7 ? 0 : FF_IO_DSYNC),
			2 * BLK);
		seed[blk] = (uint32_t)i * 2 + 1;
		seed[blk + 1] = (uint32_t)i * 2 + 2;
	}
	for (int blk = 0; blk < nblk; blk++) {
		struct iovec iov = {c, BLK};

		if (!seed[blk])
			continue;
		assert_int_equal(ff_dev_read(f->dev, &iov, 1, (uint64_t)blk * BLK), BLK);
		tu_fill(a, BLK, seed[blk]);
		assert_memory_equal(c, a, BLK);
	}
	assert_int_equal(ff_dev_flush(f->dev), 0);
	free(seed);
	free(a);
	free(b);
	free(c);
}

static void test_dev_batch_and_stats(void **state)
{
	struct fx *f = *state;
	void *buf = tu_alloc(16 * BLK), *rd = tu_alloc(16 * BLK);
	struct iovec wv[16], rv[16];
	struct ff_io ios[16];
	struct ff_dev_stats st;

	tu_fill(buf, 16 * BLK, 7);
	for (int i = 0; i < 16; i++) {
		wv[i] = (struct iovec){(char *)buf + i * BLK, BLK};
		ios[i] = (struct ff_io){
			.iov = &wv[i], .iovcnt = 1, .off = (uint64_t)i * 3 * BLK, .write = true};
	}
	assert_int_equal(ff_dev_submit_batch(f->dev, ios, 16), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(ios[i].res, BLK);
		rv[i] = (struct iovec){(char *)rd + i * BLK, BLK};
		ios[i] = (struct ff_io){.iov = &rv[i], .iovcnt = 1, .off = (uint64_t)i * 3 * BLK};
	}
	assert_int_equal(ff_dev_submit_batch(f->dev, ios, 16), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(ios[i].res, BLK);
	assert_memory_equal(buf, rd, 16 * BLK);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.writes, 16);
	assert_int_equal(st.reads, 16);
	assert_int_equal(st.bytes_written, 16 * BLK);
	assert_int_equal(st.bytes_read, 16 * BLK);
	free(buf);
	free(rd);
}

static void test_dev_rejects_bad_io(void **state)
{
	struct fx *f = *state;
	char *buf = tu_alloc(2 * BLK);
	struct iovec iov = {buf, BLK};

	iov.iov_len = 100;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 0, 0), -EINVAL); /* length */
	iov.iov_len = BLK;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 512, 0), -EINVAL);  /* offset */
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, SIZE, 0), -EINVAL); /* past the end */
	iov.iov_base = buf + 1;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 0, 0), -EINVAL); /* buffer */
	free(buf);
}

static void test_dev_open_refusals(void **state)
{
	struct ff_dev *d = NULL;
	char small[256];

	(void)state;
	assert_int_equal(ff_dev_open("/nonexistent/foliofs.img", NULL, &d), -ENOENT);
	assert_int_equal(ff_dev_open("/var/tmp", NULL, &d), -EISDIR);
	assert_int_equal(ff_dev_open("/dev/null", NULL, &d), -ENODEV);
	assert_int_equal(tu_make_image(small, sizeof(small), "small", 1 << 20), 0);
	assert_int_equal(ff_dev_open(small, NULL, &d), -ENOSPC);
	assert_null(d);
	unlink(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dev_regular_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_random_io_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_batch_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_rejects_bad_io, setup, teardown),
		cmocka_unit_test(test_dev_open_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
