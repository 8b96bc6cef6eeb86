// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of fsck (ff_fs_fsck and the device layer's
 * ff_dev_check_records): a fresh and a written image are clean; a bad
 * superblock, a bad pointer record and garbage in an unused record slot are
 * problems, each named; a pointer rolled back after a lost write is a note,
 * not a problem; nothing is ever written; a device in use is not checked.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "testutil.h"

#define ZS  (1ull << 20) /* 1 MiB zones */
#define BLK 4096
#define NZ  8

struct fx {
	char path[256];
	void *buf;
	char last[256]; /* the last problem reported */
	unsigned nproblems, nnotes;
};

static void on_problem(void *arg, const char *msg)
{
	struct fx *f = arg;

	snprintf(f->last, sizeof(f->last), "%s", msg);
	f->nproblems++;
}

static void on_note(void *arg, const char *msg)
{
	struct fx *f = arg;

	(void)msg;
	f->nnotes++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_mkfs_opts o = {.format = FF_FMT_ZONEFS,
				 .force = true,
				 .emulate_zoned = true,
				 .zone_size = ZS,
				 .conv_zones = 2};

	ff_log_set_level(FF_LOG_ERR);
	f->buf = tu_alloc(4 * BLK);
	assert_int_equal(tu_fs_mkimage(f->path, sizeof(f->path), "fsck", NZ * ZS + (1 << 20), &o),
			 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->path);
	free(f->buf);
	free(f);
	return 0;
}

static int run_fsck(struct fx *f, struct ff_fsck_report *r)
{
	memset(r, 0, sizeof(*r));
	r->problem = on_problem;
	r->note = on_note;
	r->arg = f;
	f->nproblems = f->nnotes = 0;
	f->last[0] = 0;
	return ff_fs_fsck(f->path, FF_FSCK_READ_ONLY, r);
}

static uint32_t file_crc(const char *path)
{
	static uint8_t b[1 << 16];
	uint32_t crc = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	while ((n = read(fd, b, sizeof(b))) > 0)
		crc = ff_crc32c(crc, b, (size_t)n);
	close(fd);
	return crc;
}

static void poke(const char *path, uint64_t off, const void *p, size_t len)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* The byte offset of a zone's record slot, from the emulation trailer. */
static uint64_t slot_off(const char *path, uint32_t zone, unsigned slot)
{
	struct stat st;
	uint8_t t[64];
	uint64_t meta;
	uint32_t lb;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pread(fd, t, sizeof(t), (off_t)(st.st_size & ~4095ll) - 4096),
			 (ssize_t)sizeof(t));
	close(fd);
	memcpy(&lb, t + 12, 4);
	memcpy(&meta, t + 56, 8);
	return meta + ((uint64_t)zone * 2 + slot) * lb;
}

/*
 * A durable append of n blocks to zone (through the zone queue), then close;
 * or, with crashed, no close (as a power cut: the close would compact the
 * zone's record) and the open device in *crashed.
 */
static void append_dev(struct fx *f, uint32_t zone, unsigned n, unsigned seed,
		       struct ff_dev **crashed)
{
	struct ff_dev *dev;
	struct iovec iov = {.iov_base = f->buf, .iov_len = (size_t)n * BLK};
	uint64_t at;

	assert_int_equal(ff_dev_open(f->path, NULL, &dev), 0);
	tu_fill(f->buf, iov.iov_len, seed);
	assert_int_equal(ff_zoneq_append(dev, zone, &iov, 1, FF_IO_DSYNC, &at),
			 (ssize_t)iov.iov_len);
	if (crashed)
		*crashed = dev;
	else
		ff_dev_close(dev);
}

static void append(struct fx *f, uint32_t zone, unsigned n, unsigned seed)
{
	append_dev(f, zone, n, seed, NULL);
}

static void test_fsck_clean(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	uint32_t crc;

	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 0);
	assert_string_equal(r.format, "zonefs");
	assert_int_equal(r.nr_zones, NZ);
	assert_int_equal(r.nr_cnv_zones, 2);
	assert_int_equal(r.zones_empty, NZ - 2);
	append(f, 3, 2, 1);
	append(f, 4, 1, 2);
	crc = file_crc(f->path);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 0);
	assert_int_equal(r.notes, 0);
	assert_int_equal(r.zones_closed, 2);
	assert_int_equal(r.bytes_used, 3 * BLK);
	assert_int_equal(file_crc(f->path), crc);
}

static void test_fsck_bad_superblock(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	uint32_t crc;

	poke(f->path, 8, "X", 1); /* a label byte: the checksum fails */
	crc = file_crc(f->path);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 1);
	assert_null(r.format);
	assert_non_null(strstr(f->last, "checksum"));
	assert_int_equal(file_crc(f->path), crc);
	poke(f->path, 0, "\0\0\0\0", 4);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 1);
	assert_non_null(strstr(f->last, "magic"));
}

static void test_fsck_bad_record(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	uint64_t off;
	uint8_t b = 0xff;
	uint32_t crc;

	append(f, 5, 1, 3);
	off = slot_off(f->path, 5, 0);
	{
		uint8_t rec[8];
		int fd = open(f->path, O_RDONLY);

		assert_int_equal(pread(fd, rec, sizeof(rec), (off_t)off), (ssize_t)sizeof(rec));
		close(fd);
		if (!rec[0]) /* the record is in the other slot */
			off = slot_off(f->path, 5, 1);
	}
	poke(f->path, off + 16, &b, 1); /* its write pointer: the record's checksum fails */
	crc = file_crc(f->path);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 1);
	assert_non_null(strstr(f->last, "zone 5: emulation record"));
	assert_non_null(strstr(f->last, "checksum"));
	assert_int_equal(file_crc(f->path), crc);
}

static void test_fsck_garbage_in_unused_slot(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;

	poke(f->path, slot_off(f->path, 6, 1) + 100, "junk", 4);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 1);
	assert_non_null(strstr(f->last, "zone 6: emulation record slot 1"));
}

static void test_fsck_rollback_is_a_note(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	struct ff_dev *crashed;
	uint8_t junk[BLK];

	append(f, 7, 2, 4);
	append_dev(f, 7, 2, 5, &crashed);
	/* the second append's last block never reached the media */
	memset(junk, 0x5c, sizeof(junk));
	poke(f->path, 7 * ZS + 3 * BLK, junk, sizeof(junk));
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(r.problems, 0);
	assert_int_equal(r.notes, 1);
	assert_int_equal(f->nnotes, 1);
	assert_int_equal(r.bytes_used, 2 * BLK);
	ff_dev_close(crashed);
}

static void test_fsck_in_use(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	struct ff_dev_lock lk;

	assert_int_equal(ff_dev_lock_image(f->path, &lk), 0);
	assert_int_equal(run_fsck(f, &r), -EBUSY);
	ff_dev_unlock_image(&lk);
	assert_int_equal(run_fsck(f, &r), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ff_fs_fsck("/nonexistent/foliofs.img", 0, &r), -ENOENT);
}

static void *close_later(void *arg)
{
	usleep(300000);
	ff_dev_unlock_image(arg);
	return NULL;
}

/*
 * A daemon just unmounted holds the device a moment more while it exits:
 * `umount && fsck.foliofs` waits for it, as the mount does, rather than
 * calling the device busy.
 */
static void test_fsck_waits_for_exit(void **state)
{
	struct fx *f = *state;
	struct ff_fsck_report r;
	pthread_t th;
	struct ff_dev_lock lk;

	assert_int_equal(ff_dev_lock_image(f->path, &lk), 0);
	assert_int_equal(pthread_create(&th, NULL, close_later, &lk), 0);
	assert_int_equal(run_fsck(f, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fsck_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_waits_for_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_bad_superblock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_bad_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_garbage_in_unused_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_rollback_is_a_note, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsck_in_use, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
