// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of kernel zonefs fidelity: the on-disk superblock pinned byte by
 * byte against a block built here from the kernel's struct zonefs_super
 * (fs/zonefs/zonefs.h: the offsets are written literally, not taken from
 * foliofs), and what a mount shows for zones the device reports read-only or
 * offline, explicit-open of full files, the errors= policies and the
 * kernel's sysfs counters in user.foliofs.stats.
 *
 * Zone conditions an emulated image cannot take (read-only, offline) are
 * injected at the device interface's report with -Wl,--wrap=ff_dev_report;
 * warnings are counted with -Wl,--wrap=ff_log.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "testutil.h"

/* ---- injection at the device interface ---- */

int __real_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);
int __wrap_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);
void __real_ff_log(enum ff_log_level lvl, const char *fmt, ...);
void __wrap_ff_log(enum ff_log_level lvl, const char *fmt, ...);

#define MAX_Z 64
/* a condition forced on a zone's report (0: as the device says) */
static enum ff_zone_cond g_force[MAX_Z];
/* bytes added to a zone's reported write pointer: data the device wrote unasked */
static uint64_t g_wp_add[MAX_Z];
static unsigned g_warns_tail; /* warnings about a partial tail block */

int __wrap_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	int r = __real_ff_dev_report(dev, first, n, out);

	for (int i = 0; i < r; i++) {
		uint32_t z = first + (uint32_t)i;

		if (z < MAX_Z && g_force[z]) {
			out[i].cond = g_force[z];
			/* as null_blk: the write pointer of such a zone is invalid, all ones */
			if (g_force[z] == FF_ZC_RDONLY || g_force[z] == FF_ZC_OFFLINE)
				out[i].wp = UINT64_MAX;
		}
		if (z < MAX_Z && g_wp_add[z])
			out[i].wp += g_wp_add[z];
	}
	return r;
}

void __wrap_ff_log(enum ff_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strstr(msg, "partial tail"))
		g_warns_tail++;
	__real_ff_log(lvl, "%s", msg);
}

/* ---- an independent zonefs superblock (struct zonefs_super, little-endian) ---- */

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* The kernel's crc32_le(~0, p, n): reflected polynomial 0xedb88320, no final xor. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = ~0u;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0xedb88320u : 0);
	}
	return crc;
}

/*
 * s_magic 0, s_crc 4, s_label[64] 8, s_uuid[16] 72, s_features 88, s_uid 96,
 * s_gid 100, s_perm 104, s_reserved[3988] 108
 */
static void ref_block(uint8_t *b, const char *label, const uint8_t *uuid, uint64_t features,
		      uint32_t uid, uint32_t gid, uint32_t perm)
{
	memset(b, 0, 4096);
	le32(b + 0, 0x5a4f4653u);
	memcpy(b + 8, label, strnlen(label, 64));
	memcpy(b + 72, uuid, 16);
	le32(b + 88, (uint32_t)features);
	le32(b + 92, (uint32_t)(features >> 32));
	le32(b + 96, uid);
	le32(b + 100, gid);
	le32(b + 104, perm);
	le32(b + 4, ref_crc32(b, 4096));
}

static const uint8_t uuid_a[16] = {0x8f, 0x1d, 0x2e, 0x8a, 0x7a, 0x6d, 0x43, 0x96,
				   0xac, 0x81, 0xb1, 0x51, 0xef, 0xe9, 0x34, 0xd7};
/* 64 bytes: the whole field, no terminating NUL on disk */
static const char label64[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF";

static void test_compat_sb_encode_matches_kernel_layout(void **state)
{
	struct ff_zonefs_sb sb = {0};
	uint8_t ref[4096], got[4096];

	(void)state;
	assert_int_equal(sizeof(sb.label), 64 + 1); /* the whole s_label, and a NUL */
	memcpy(sb.label, label64, sizeof(sb.label) - 1 < 64 ? sizeof(sb.label) - 1 : 64);
	memcpy(sb.uuid, uuid_a, 16);
	sb.features = FF_ZONEFS_F_AGGRCNV | FF_ZONEFS_F_UID | FF_ZONEFS_F_GID | FF_ZONEFS_F_PERM;
	sb.uid = 1000;
	sb.gid = 2000;
	sb.perm = 0600;
	ff_zonefs_sb_encode(&sb, got);
	ref_block(ref, label64, uuid_a, 0xf, 1000, 2000, 0600);
	for (size_t i = 0; i < sizeof(ref); i++)
		if (ref[i] != got[i])
			fail_msg("byte %zu: foliofs wrote 0x%02x, the kernel's layout has 0x%02x",
				 i, got[i], ref[i]);
}

static void test_compat_sb_decode_kernel_block(void **state)
{
	struct ff_zonefs_sb sb;
	uint8_t b[4096];

	(void)state;
	ref_block(b, label64, uuid_a, FF_ZONEFS_F_UID | FF_ZONEFS_F_PERM, 4242, 77, 0604);
	assert_int_equal(ff_zonefs_sb_decode(b, &sb), 0);
	assert_int_equal(sizeof(sb.label), 64 + 1);
	assert_int_equal(strnlen(sb.label, sizeof(sb.label)), 64);
	assert_memory_equal(sb.label, label64, strnlen(sb.label, sizeof(sb.label)));
	assert_memory_equal(sb.uuid, uuid_a, 16);
	assert_int_equal(sb.features, FF_ZONEFS_F_UID | FF_ZONEFS_F_PERM);
	assert_int_equal(sb.uid, 4242);
	assert_int_equal(sb.gid, 77);
	assert_int_equal(sb.perm, 0604);

	/* an unknown feature bit in s_features (88) */
	ref_block(b, "x", uuid_a, 1ull << 40, 0, 0, 0);
	assert_int_equal(ff_zonefs_sb_decode(b, &sb), -EOPNOTSUPP);
	/* the kernel refuses a reserved byte (108..4095) that is not zero */
	ref_block(b, "x", uuid_a, 0, 0, 0, 0);
	b[4095] = 1;
	le32(b + 4, 0);
	le32(b + 4, ref_crc32(b, 4096));
	assert_int_equal(ff_zonefs_sb_decode(b, &sb), -EUCLEAN);
	/* the crc covers the whole block */
	ref_block(b, "x", uuid_a, 0, 0, 0, 0);
	b[2000] ^= 1;
	assert_int_equal(ff_zonefs_sb_decode(b, &sb), -EBADMSG);
}

/* ---- mounts of an emulated image: 2 conventional zones (0: the superblock), 14 sequential ---- */

#define ZS     (1ull << 20)
#define NZ     16u
#define BLK    4096u
#define SEQ(i) (2u + (i)) /* inode (= zone index) of seq/i */

struct errors_case;

struct fx {
	char path[256];
	struct ff_fs *fs;
	void *buf;
	const struct errors_case *ecase; /* the errors= case test_compat_errors_case runs */
};

static int fmt(struct fx *f, uint32_t max_open, uint32_t max_active, uint64_t features)
{
	struct ff_mkfs_opts o = {.format = FF_FMT_ZONEFS,
				 .force = true,
				 .emulate_zoned = true,
				 .zone_size = ZS,
				 .conv_zones = 2,
				 .zone_opts = true,
				 .max_open = max_open,
				 .max_active = max_active};

	o.sb.features = features;
	return tu_fs_mkimage(f->path, sizeof(f->path), "compat", NZ * ZS + (1 << 20), &o);
}

static int mnt(struct fx *f, enum ff_errors_mode errors, bool explicit_open)
{
	struct ff_fs_opts o = {.errors = errors, .explicit_open = explicit_open};

	return ff_fs_mount(f->path, &o, &f->fs);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	memset(g_force, 0, sizeof(g_force));
	memset(g_wp_add, 0, sizeof(g_wp_add));
	g_warns_tail = 0;
	f->buf = tu_alloc(64 * BLK);
	tu_fill(f->buf, 64 * BLK, 7);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->fs)
		ff_fs_unmount(f->fs);
	unsetenv("FOLIOFS_FAULT");
	unlink(f->path);
	free(f->buf);
	free(f);
	return 0;
}

static void append_sync(struct fx *f, uint64_t ino, uint64_t off, size_t len)
{
	assert_int_equal(ff_fs_write(f->fs, ino, f->buf, len, off, FF_CW_SYNC), (ssize_t)len);
}

static long stat_counter(struct fx *f, const char *name)
{
	char text[4096], key[80];
	const char *p;

	assert_true(ff_fs_stats_text(f->fs, text, sizeof(text)) > 0);
	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	if (!p)
		fail_msg("user.foliofs.stats has no %s", name);
	return strtol(p + strlen(key), NULL, 10);
}

/*
 * A zone the device reports read-only at mount has no valid write pointer
 * (null_blk: all ones). The kernel cannot know the file's size: it shows
 * size 0 and mode 000, as for an offline zone; unmount has nothing to say.
 */
static void test_compat_mount_rdonly_offline_zones(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(fmt(f, 0, 0, 0), 0);
	assert_int_equal(mnt(f, FF_ERRORS_REMOUNT_RO, false), 0);
	append_sync(f, SEQ(1), 0, 2 * BLK);
	append_sync(f, SEQ(2), 0, 2 * BLK);
	assert_int_equal(ff_fs_unmount(f->fs), 0);
	f->fs = NULL;

	g_force[SEQ(1)] = FF_ZC_RDONLY;
	g_force[SEQ(2)] = FF_ZC_OFFLINE;
	assert_int_equal(mnt(f, FF_ERRORS_REMOUNT_RO, false), 0);
	for (uint32_t i = 1; i <= 2; i++) {
		assert_int_equal(ff_fs_getattr(f->fs, SEQ(i), &st), 0);
		assert_int_equal(st.st_size, 0);
		assert_int_equal(st.st_mode, S_IFREG);
		/* as the kernel: immutable, unreadable */
		assert_int_equal(ff_fs_open(f->fs, SEQ(i), O_WRONLY, NULL), -EPERM);
		assert_int_equal(ff_fs_write(f->fs, SEQ(i), f->buf, BLK, 0, FF_CW_SYNC), -EPERM);
		assert_int_equal(ff_fs_open(f->fs, SEQ(i), O_RDONLY, NULL), 0);
		assert_int_equal(ff_fs_read(f->fs, SEQ(i), f->buf, BLK, 0), -EPERM);
	}
	/* the others are as they were */
	assert_int_equal(ff_fs_getattr(f->fs, SEQ(0), &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(ff_fs_unmount(f->fs), 0);
	f->fs = NULL;
	assert_int_equal(g_warns_tail, 0);
}

/* The emulation refuses what a host-managed device refuses. */
static void test_compat_emu_zone_state_rules(void **state)
{
	struct fx *f = *state;
	struct ff_dev *dev;

	assert_int_equal(fmt(f, 0, 2, 0), 0);
	assert_int_equal(ff_dev_open(f->path, NULL, &dev), 0);
	assert_int_equal(ff_dev_zone_op(dev, 2, FF_ZOP_FINISH), 0);
	assert_int_equal(ff_dev_zone_op(dev, 2, FF_ZOP_OPEN), -EIO);  /* full */
	assert_int_equal(ff_dev_zone_op(dev, 2, FF_ZOP_CLOSE), -EIO); /* full */
	assert_int_equal(ff_dev_zone_op(dev, 3, FF_ZOP_CLOSE), -EIO); /* empty */
	/* two active zones (the limit): finishing an empty one needs a third */
	assert_int_equal(ff_dev_zone_op(dev, 3, FF_ZOP_OPEN), 0);
	assert_int_equal(ff_dev_zone_op(dev, 4, FF_ZOP_OPEN), 0);
	assert_int_equal(ff_dev_zone_op(dev, 5, FF_ZOP_FINISH), -EOVERFLOW);
	assert_int_equal(ff_dev_zone_op(dev, 3, FF_ZOP_FINISH), 0); /* an active one may */
	assert_int_equal(ff_dev_zone_op(dev, 5, FF_ZOP_FINISH), 0);
	ff_dev_close(dev);
}

/*
 * explicit-open: the kernel opens the zone of a file opened for writing only
 * when the file is not full; opening a full file succeeds.
 */
static void test_compat_explicit_open_full_file(void **state)
{
	struct fx *f = *state;
	struct stat st = {.st_size = (off_t)ZS};

	assert_int_equal(fmt(f, 2, 2, 0), 0);
	assert_int_equal(mnt(f, FF_ERRORS_REMOUNT_RO, true), 0);
	assert_int_equal(ff_fs_setattr(f->fs, SEQ(0), &st, FF_SET_SIZE), 0); /* finish */
	assert_int_equal(ff_fs_open(f->fs, SEQ(0), O_WRONLY, NULL), 0);
	assert_int_equal(stat_counter(f, "nr_wro_seq_files"), 1);
	assert_int_equal(stat_counter(f, "nr_active_seq_files"), 0);
	/* an empty and a partly written file open their zones (active) */
	assert_int_equal(ff_fs_open(f->fs, SEQ(1), O_WRONLY, NULL), 0);
	append_sync(f, SEQ(1), 0, BLK);
	assert_int_equal(stat_counter(f, "nr_wro_seq_files"), 2);
	assert_int_equal(stat_counter(f, "nr_active_seq_files"), 1);
	/* max_wro_seq_files (the open limit, 2) reached: EBUSY as the kernel */
	assert_int_equal(ff_fs_open(f->fs, SEQ(2), O_RDWR, NULL), -EBUSY);
	assert_int_equal(ff_fs_release(f->fs, SEQ(0), O_WRONLY), 0);
	assert_int_equal(ff_fs_open(f->fs, SEQ(2), O_RDWR, NULL), 0);
	assert_int_equal(stat_counter(f, "nr_active_seq_files"), 2);
	assert_int_equal(ff_fs_release(f->fs, SEQ(1), O_WRONLY), 0);
	assert_int_equal(ff_fs_release(f->fs, SEQ(2), O_RDWR), 0);
	assert_int_equal(stat_counter(f, "nr_wro_seq_files"), 0);
	/* seq/1 is partly written: still active once closed */
	assert_int_equal(stat_counter(f, "nr_active_seq_files"), 1);
	assert_int_equal(stat_counter(f, "max_wro_seq_files"), 2);
	assert_int_equal(stat_counter(f, "max_active_seq_files"), 2);
}

/* Without limits the kernel publishes 0 ("no limit") for both maxima. */
static void test_compat_counters_no_limits(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fmt(f, 0, 0, 0), 0);
	assert_int_equal(mnt(f, FF_ERRORS_REMOUNT_RO, false), 0);
	assert_int_equal(stat_counter(f, "max_wro_seq_files"), 0);
	assert_int_equal(stat_counter(f, "max_active_seq_files"), 0);
	assert_int_equal(ff_fs_open(f->fs, SEQ(3), O_WRONLY, NULL), 0);
	assert_int_equal(ff_fs_open(f->fs, SEQ(3), O_WRONLY, NULL), 0);
	assert_int_equal(stat_counter(f, "nr_wro_seq_files"), 1); /* files, not opens */
	append_sync(f, SEQ(3), 0, BLK);
	assert_int_equal(stat_counter(f, "nr_active_seq_files"), 1);
	assert_int_equal(ff_fs_release(f->fs, SEQ(3), O_WRONLY), 0);
	assert_int_equal(ff_fs_release(f->fs, SEQ(3), O_WRONLY), 0);
	assert_int_equal(stat_counter(f, "nr_wro_seq_files"), 0);
}

/* FOLIOFS_FAULT for the mount to come: the nth data write into seq/0's zone fails */
static void fault_seq0(unsigned nth)
{
	char env[96];

	snprintf(env, sizeof(env), "fail_write=%u,range=%llu:%llu", nth,
		 (unsigned long long)(SEQ(0) * ZS), (unsigned long long)((SEQ(0) + 1) * ZS));
	setenv("FOLIOFS_FAULT", env, 1);
}

/*
 * The errors= cases, one row each: the second data write into seq/0's zone
 * fails (its first block written before), provoked as `error` says, and the
 * row gives seq/0's size (and mode) that the policy leaves.
 *
 * zone-ro, the zone reported OFFLINE after the write error: the hardware's
 * condition wins (kernel zonefs_io_error_cb): offline, size 0, mode 000, not
 * merely read-only.
 *
 * A write error that left data in the zone beyond the file's size (a write
 * the device took in part, 2 blocks): errors=repair moves the size to the
 * write pointer, as the kernel; errors=remount-ro keeps the old size (the
 * kernel does not expose data the writer was told failed). The same after a
 * buffered append whose write-back fails at fsync, the zone having been
 * written behind the file's back: errors=repair ends the file at the write
 * pointer, errors=remount-ro at the size that was on the device before the
 * failed write-back, not at the size the buffered write gave it (the kernel's
 * answer in tests/vm/guest.d/85-errors-matrix.sh).
 */
enum errors_error {
	ERR_ZONE_OFFLINE,   /* a sync write fails, the zone reported offline */
	ERR_SYNC_PAST_SIZE, /* a sync write fails, the device took 2 of its blocks */
	ERR_WB_PAST_SIZE,   /* a buffered write's write-back fails at fsync, the same */
};

struct errors_case {
	const char *name;
	enum ff_errors_mode mode;
	enum errors_error error;
	off_t want_size;
	mode_t want_mode; /* 0: not checked */
};

static const struct errors_case errors_cases[] = {
	{"test_compat_errors_zone_ro_offline_zone", FF_ERRORS_ZONE_RO, ERR_ZONE_OFFLINE, 0,
	 S_IFREG},
	/* 1 + the 2 the device took */
	{"test_compat_errors_repair_size_is_wp", FF_ERRORS_REPAIR, ERR_SYNC_PAST_SIZE, 3 * BLK, 0},
	{"test_compat_errors_remount_ro_keeps_size", FF_ERRORS_REMOUNT_RO, ERR_SYNC_PAST_SIZE, BLK,
	 0},
	{"test_compat_errors_repair_writeback_size_is_wp", FF_ERRORS_REPAIR, ERR_WB_PAST_SIZE,
	 3 * BLK, 0},
	{"test_compat_errors_remount_ro_writeback_keeps_size", FF_ERRORS_REMOUNT_RO,
	 ERR_WB_PAST_SIZE, BLK, 0},
};

/* setup, with the row the test runs (cmocka's initial state) kept in the fixture */
static int setup_errors_case(void **state)
{
	const struct errors_case *c = *state;
	int ret = setup(state);

	((struct fx *)*state)->ecase = c;
	return ret;
}

static void test_compat_errors_case(void **state)
{
	struct fx *f = *state;
	const struct errors_case *c = f->ecase;
	struct stat st;

	assert_int_equal(fmt(f, 0, 0, 0), 0);
	fault_seq0(2);
	assert_int_equal(mnt(f, c->mode, false), 0);
	append_sync(f, SEQ(0), 0, BLK);
	switch (c->error) {
	case ERR_ZONE_OFFLINE:
		g_force[SEQ(0)] = FF_ZC_OFFLINE;
		assert_true(ff_fs_write(f->fs, SEQ(0), f->buf, BLK, BLK, FF_CW_SYNC) < 0);
		break;
	case ERR_SYNC_PAST_SIZE:
		g_wp_add[SEQ(0)] = 2 * BLK;
		assert_int_equal(ff_fs_write(f->fs, SEQ(0), f->buf, 4 * BLK, BLK, FF_CW_SYNC),
				 -EIO);
		break;
	case ERR_WB_PAST_SIZE:
		assert_int_equal(ff_fs_write(f->fs, SEQ(0), f->buf, BLK, BLK, 0), (ssize_t)BLK);
		g_wp_add[SEQ(0)] = 2 * BLK;
		assert_true(ff_fs_fsync(f->fs, SEQ(0), false) < 0);
		break;
	}
	assert_int_equal(ff_fs_getattr(f->fs, SEQ(0), &st), 0);
	assert_int_equal(st.st_size, c->want_size);
	if (c->want_mode)
		assert_int_equal(st.st_mode, c->want_mode);
	/* the device as it was, before teardown unmounts */
	g_force[SEQ(0)] = 0;
	g_wp_add[SEQ(0)] = 0;
}

/* statfs says ST_RDONLY once the whole mount is read-only (errors=remount-ro) */
static void test_compat_statfs_rdonly(void **state)
{
	struct fx *f = *state;
	struct statvfs sv;

	assert_int_equal(fmt(f, 0, 0, 0), 0);
	fault_seq0(1);
	assert_int_equal(mnt(f, FF_ERRORS_REMOUNT_RO, false), 0);
	assert_int_equal(ff_fs_statfs(f->fs, &sv), 0);
	assert_int_equal(sv.f_flag & ST_RDONLY, 0);
	assert_true(ff_fs_write(f->fs, SEQ(0), f->buf, BLK, 0, FF_CW_SYNC) < 0);
	assert_int_equal(ff_fs_write(f->fs, SEQ(1), f->buf, BLK, 0, FF_CW_SYNC), -EROFS);
	assert_int_equal(ff_fs_statfs(f->fs, &sv), 0);
	assert_int_equal(sv.f_flag & ST_RDONLY, ST_RDONLY);
}

#define NR_ERRORS_CASES (sizeof(errors_cases) / sizeof(errors_cases[0]))

int main(void)
{
	struct CMUnitTest tests[7 + NR_ERRORS_CASES] = {
		cmocka_unit_test(test_compat_sb_encode_matches_kernel_layout),
		cmocka_unit_test(test_compat_sb_decode_kernel_block),
		cmocka_unit_test_setup_teardown(test_compat_mount_rdonly_offline_zones, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_compat_emu_zone_state_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compat_explicit_open_full_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_compat_counters_no_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compat_statfs_rdonly, setup, teardown),
	};

	/* a test a row of errors_cases, named by the row */
	for (size_t i = 0; i < NR_ERRORS_CASES; i++)
		tests[7 + i] = (struct CMUnitTest){.name = errors_cases[i].name,
						   .test_func = test_compat_errors_case,
						   .setup_func = setup_errors_case,
						   .teardown_func = teardown,
						   .initial_state = (void *)&errors_cases[i]};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
