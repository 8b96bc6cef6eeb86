// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the posix format through the public interface (ff_fs_*),
 * over an emulated-zoned image and a regular one: the namespace calls,
 * persistence across unmount/mount, replay after a crash (the image copied
 * while mounted, as kill -9 leaves it, and with a power cut through the fault
 * layer's volatile-cache log), group commit, the one-write sync append and
 * in-place overwrite (device write counts), sub-block sync writes, truncate /
 * fallocate / SEEK_HOLE, a large directory with stable cookies, and writers
 * sharing zones with readers checking, in a tiny cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <linux/falloc.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fault.h"
#include "foliofs/fs.h"
#include "testutil.h"
#include "../../src/dev/internal.h"
#include "../../src/fs/posix.h"
#include "../../src/fs/posix_int.h"

#define ZS  (8ull << 20)
#define NZ  24
#define BLK 4096u

struct px {
	char path[256];
	bool emu;
	struct ff_fs_opts o;
	struct ff_fs *fs;
	uint64_t root;
};

static const struct ff_cred cr = {1000, 1000};

static void do_mount_path(struct px *p, const char *path)
{
	tu_fs_mount(path, &p->o, &p->fs, &p->root);
	assert_int_equal(ff_fs_format(p->fs), FF_FMT_POSIX);
}

static void remount(struct px *p)
{
	tu_fs_remount(p->path, &p->o, &p->fs, &p->root);
	assert_int_equal(ff_fs_format(p->fs), FF_FMT_POSIX);
}

static int setup_geo(void **state, bool emu, const struct ff_fs_opts *o, uint32_t conv,
		     uint64_t cap, uint32_t max_open, uint32_t max_active, uint64_t zs, uint32_t nz)
{
	struct px *p = calloc(1, sizeof(*p));
	struct ff_mkfs_opts mo = {
		.format = FF_FMT_POSIX, .force = true, .zone_size = zs, .zone_opts = true};

	assert_non_null(p);
	p->emu = emu;
	if (emu) {
		mo.emulate_zoned = true;
		mo.conv_zones = conv;
		mo.zone_cap = cap;
		mo.max_open = max_open;
		mo.max_active = max_active;
	}
	assert_int_equal(tu_fs_mkimage(p->path, sizeof(p->path), emu ? "posix-emu" : "posix-reg",
				       nz * zs + (1 << 20), &mo),
			 0);
	if (o)
		p->o = *o;
	do_mount_path(p, p->path);
	*state = p;
	return 0;
}

static int setup_mk(void **state, bool emu, const struct ff_fs_opts *o, uint32_t conv, uint64_t cap,
		    uint32_t max_open, uint32_t max_active)
{
	return setup_geo(state, emu, o, conv, cap, max_open, max_active, ZS, NZ);
}

/*
 * 64 zones of 1 MiB: mkfs gives four metadata zones (1/16 of a device
 * this small), and a checkpoint of a few MiB spans two of them. All
 * sequential, with limits, or a regular file.
 */
#define SPAN_ZS (1ull << 20)
#define SPAN_NZ 64
static int setup_span_seq(void **state)
{
	return setup_geo(state, true, NULL, 0, 0, 3, 3, SPAN_ZS, SPAN_NZ);
}

static int setup_span_reg(void **state)
{
	return setup_geo(state, false, NULL, 0, 0, 0, 0, SPAN_ZS, SPAN_NZ);
}

static int setup_any(void **state, bool emu, const struct ff_fs_opts *o)
{
	return setup_mk(state, emu, o, 2, 0, 4, 6);
}

/*
 * Every zone sequential (zone 0 too), capacity below the zone size, and two
 * open and active zones at most: the log's and one data zone.
 */
static int setup_emu_seq_cap(void **state)
{
	return setup_mk(state, true, NULL, 0, ZS - (1 << 20) - 12288, 2, 2);
}

static int setup_emu_seq_cap_tiny(void **state)
{
	struct ff_fs_opts o = {.cache = {.cache_size = 256 << 10, .max_folio = 64 << 10}};

	return setup_mk(state, true, &o, 0, ZS - (1 << 20) - 12288, 3, 3);
}

static int setup_emu(void **state)
{
	return setup_any(state, true, NULL);
}

static int setup_reg(void **state)
{
	return setup_any(state, false, NULL);
}

static int setup_emu_tiny(void **state)
{
	struct ff_fs_opts o = {.cache = {.cache_size = 256 << 10, .max_folio = 64 << 10}};

	return setup_any(state, true, &o);
}

static int setup_reg_wbmode(void **state)
{
	struct ff_fs_opts o = {.cache = {.sync_mode = FF_SYNC_WRITEBACK}};

	return setup_any(state, false, &o);
}

static int setup_emu_wbmode(void **state)
{
	struct ff_fs_opts o = {.cache = {.sync_mode = FF_SYNC_WRITEBACK}};

	return setup_any(state, true, &o);
}

static int setup_reg_tiny(void **state)
{
	struct ff_fs_opts o = {.cache = {.cache_size = 256 << 10, .max_folio = 64 << 10}};

	return setup_any(state, false, &o);
}

static int teardown(void **state)
{
	struct px *p = *state;

	tu_fs_unmount_rm(p->fs, p->path);
	free(p);
	return 0;
}

static uint64_t stat_of(struct px *p, const char *key)
{
	return tu_fs_stat(p->fs, key);
}

static uint64_t mkfile(struct px *p, uint64_t dir, const char *name)
{
	struct stat st;

	assert_int_equal(ff_fs_create(p->fs, dir, name, 0644, O_RDWR, &cr, &st, NULL), 0);
	return st.st_ino;
}

static uint64_t lookup(struct px *p, uint64_t dir, const char *name)
{
	struct stat st;

	assert_int_equal(ff_fs_lookup(p->fs, dir, name, &st), 0);
	return st.st_ino;
}

/* What a crash now would leave: a copy of the image mounted, f reads want (len bytes). */
static void crash_reads(struct px *p, uint64_t f, const uint8_t *want, size_t len)
{
	char copy[300];
	struct ff_fs *fs2;
	uint8_t *rd = tu_alloc(len);

	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_read(fs2, f, rd, len, 0), (ssize_t)len);
	assert_memory_equal(rd, want, len);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
	free(rd);
}

/*
 * Buffered writes of n scattered blocks of f: every other block from block
 * first on, block k filled from seed + k, recorded in want too.
 */
static void write_scattered(struct px *p, uint64_t f, uint8_t *want, int n, int first,
			    unsigned seed)
{
	for (int k = 0; k < n; k++) {
		uint64_t off = (uint64_t)(2 * k + first) * BLK;

		tu_fill(want + off, BLK, seed + (unsigned)k);
		assert_int_equal(ff_fs_write(p->fs, f, want + off, BLK, off, 0), BLK);
	}
}

/* f reads want (len bytes) after a crash now, and after a clean remount. */
static void reads_after_crash_and_remount(struct px *p, uint64_t f, const uint8_t *want, size_t len)
{
	uint8_t *rd = tu_alloc(len);

	crash_reads(p, f, want, len);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, len, 0), (ssize_t)len);
	assert_memory_equal(rd, want, len);
	free(rd);
}

/* fsck of an unmounted image (section "fsck" below): its problem count */
static uint32_t fsck_run(const char *path, unsigned flags, uint32_t *repaired);

/* A clean unmount, then fsck -n finds nothing, then the mount again. */
static void unmount_fsck_mount(struct px *p)
{
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
	do_mount_path(p, p->path);
}

/* ---- namespace ---- */

static void test_posix_namespace(void **state)
{
	struct px *p = *state;
	struct stat st;
	char buf[256], name[300];
	uint64_t d, f, g, sub, c, next;
	int n;

	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), -EEXIST);
	f = mkfile(p, d, "f");
	assert_int_equal(ff_fs_write(p->fs, f, "hello", 5, 0, 0), 5);
	assert_int_equal(ff_fs_read(p->fs, f, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(ff_fs_link(p->fs, f, p->root, "h", &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(ff_fs_link(p->fs, d, p->root, "dl", &st), -EPERM);
	assert_int_equal(ff_fs_symlink(p->fs, p->root, "s", "d/f", &cr, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(ff_fs_readlink(p->fs, st.st_ino, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "d/f", 3);
	assert_int_equal(ff_fs_readlink(p->fs, f, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ff_fs_mknod(p->fs, p->root, "fifo", S_IFIFO | 0600, 0, &cr, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(
		ff_fs_mknod(p->fs, p->root, "chr", S_IFCHR | 0600, makedev(1, 3), &cr, &st), 0);
	assert_int_equal(st.st_rdev, makedev(1, 3));
	assert_int_equal(ff_fs_mknod(p->fs, p->root, "sock", S_IFSOCK | 0600, 0, &cr, &st), 0);
	/* 255-byte names, 256 refused */
	memset(name, 'n', 255);
	name[255] = 0;
	assert_int_equal(ff_fs_mknod(p->fs, d, name, S_IFREG | 0600, 0, &cr, &st), 0);
	name[255] = 'n';
	name[256] = 0;
	assert_int_equal(ff_fs_mknod(p->fs, d, name, S_IFREG | 0600, 0, &cr, &st), -ENAMETOOLONG);
	/* setgid directory: group and the bit inherited */
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "g", 0775, &cr, &st), 0);
	g = st.st_ino;
	st.st_mode = 02775;
	st.st_gid = 50;
	assert_int_equal(ff_fs_setattr(p->fs, g, &st, FF_SET_MODE | FF_SET_GID), 0);
	assert_int_equal(ff_fs_mkdir(p->fs, g, "sub", 0755, &cr, &st), 0);
	sub = st.st_ino;
	assert_int_equal(st.st_gid, 50);
	assert_true(st.st_mode & S_ISGID);
	c = mkfile(p, g, "c");
	assert_int_equal(ff_fs_getattr(p->fs, c, &st), 0);
	assert_int_equal(st.st_gid, 50);
	assert_false(st.st_mode & S_ISGID);
	assert_int_equal(ff_fs_getattr(p->fs, g, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	(void)sub;
	/* rename: NOREPLACE, over a name, EXCHANGE, into its own subtree */
	assert_int_equal(ff_fs_rename(p->fs, p->root, "h", d, "f", FF_RENAME_NOREPLACE, NULL),
			 -EEXIST);
	assert_int_equal(ff_fs_rename(p->fs, p->root, "g", g, "x", 0, NULL), -EINVAL);
	assert_int_equal(ff_fs_rename(p->fs, p->root, "fifo", d, "f", 0, NULL), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(ff_fs_rename(p->fs, p->root, "h", d, "f", FF_RENAME_EXCHANGE, NULL), 0);
	assert_true(lookup(p, d, "f") == f && lookup(p, p->root, "h") != f);
	assert_int_equal(ff_fs_rename(p->fs, p->root, "g", d, "g2", 0, NULL), 0);
	assert_int_equal(ff_fs_getattr(p->fs, d, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	assert_int_equal(ff_fs_getattr(p->fs, p->root, &st), 0);
	assert_int_equal(st.st_nlink, 3); /* root: ., .., d */
	assert_int_equal(ff_fs_rmdir(p->fs, p->root, "d"), -ENOTEMPTY);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "d"), -EISDIR);
	assert_int_equal(ff_fs_rmdir(p->fs, p->root, "s"), -ENOTDIR);
	/* xattrs */
	assert_int_equal(ff_fs_setxattr(p->fs, f, "user.a", "v1", 2, 0), 0);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "user.a", "v1", 2, XATTR_CREATE), -EEXIST);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "user.b", "v", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "trusted.t", "tt", 2, 0), 0);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "bogus.t", "tt", 2, 0), -EOPNOTSUPP);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "system.other", "tt", 2, 0), -EOPNOTSUPP);
	/* an empty name after the namespace prefix is invalid, as the VFS says */
	assert_int_equal(ff_fs_setxattr(p->fs, f, "user.", "v", 1, 0), -EINVAL);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "trusted.", "v", 1, 0), -EINVAL);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "security.", "v", 1, 0), -EINVAL);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ff_fs_removexattr(p->fs, f, "user."), -EINVAL);
	assert_int_equal(ff_fs_setxattr(p->fs, d, "system.posix_acl_default", "acl", 3, 0), 0);
	assert_int_equal(ff_fs_getxattr(p->fs, d, "system.posix_acl_default", buf, 3), 3);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.a", NULL, 0), 2);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.a", buf, 1), -ERANGE);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.zz", buf, 10), -ENODATA);
	assert_int_equal(ff_fs_listxattr(p->fs, f, NULL, 0), 17);
	/* readdir of d: f, the long name, g2 */
	n = 0;
	for (uint64_t ck = 0; ff_fs_readdir(p->fs, d, ck, buf, sizeof(buf), &st, &next) == 0;
	     ck = next)
		n++;
	assert_int_equal(n, 0 + 3);
	/* nanosecond times, set and kept */
	memset(&st, 0, sizeof(st));
	st.st_mtim.tv_sec = 1700000000;
	st.st_mtim.tv_nsec = 123456789;
	st.st_atim.tv_sec = 1600000000;
	st.st_atim.tv_nsec = 987654321;
	assert_int_equal(ff_fs_setattr(p->fs, c, &st, FF_SET_MTIME | FF_SET_ATIME), 0);
	remount(p);
	/* all of it after a remount */
	assert_int_equal(ff_fs_getattr(p->fs, c, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1700000000);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	assert_int_equal(st.st_atim.tv_nsec, 987654321);
	assert_true(st.st_ctim.tv_sec > 1700000000);
	assert_int_equal(lookup(p, d, "f"), f);
	assert_int_equal(ff_fs_read(p->fs, f, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.a", buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "v1", 2);
	g = lookup(p, d, "g2");
	assert_int_equal(ff_fs_getattr(p->fs, g, &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 02775);
	assert_int_equal(st.st_gid, 50);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "fifo", &st), -ENOENT);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "chr", &st), 0);
	assert_int_equal(st.st_rdev, makedev(1, 3));
	assert_int_equal(ff_fs_readlink(p->fs, lookup(p, p->root, "s"), buf, sizeof(buf)), 3);
	memset(name, 'n', 255);
	name[255] = 0;
	assert_int_equal(ff_fs_lookup(p->fs, d, name, &st), 0);
}

/* An unlinked open file lives until release and forget; a crash reclaims it. */
static void test_posix_orphan(void **state)
{
	struct px *p = *state;
	char copy[300], buf[64];
	struct stat st;
	struct ff_fs *fs2;
	uint64_t f;

	f = mkfile(p, p->root, "o");
	assert_int_equal(ff_fs_write(p->fs, f, "orphan", 6, 0, FF_CW_DSYNC), 6);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "o"), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(ff_fs_read(p->fs, f, buf, sizeof(buf), 0), 6);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	/* the crashed copy: the inode is gone */
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), -ENOENT);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
	/* the live one: gone after release and forget */
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	ff_fs_forget(p->fs, f, 1);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), -ENOENT);
}

/* ---- write counts ---- */

static void test_posix_sync_append_one_write(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK);
	uint64_t f, w0, b0, w1, b1;

	f = mkfile(p, p->root, "a");
	tu_fill(buf, BLK, 1);
	/* the first one also commits the create and opens a data zone */
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, FF_CW_DSYNC), BLK);
	for (int k = 1; k < 9; k++) {
		w0 = stat_of(p, "dev_writes");
		b0 = stat_of(p, "dev_bytes_written");
		assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, (uint64_t)k * BLK, FF_CW_DSYNC),
				 BLK);
		w1 = stat_of(p, "dev_writes");
		b1 = stat_of(p, "dev_bytes_written");
		/* one write of header + data: WA 2.0 */
		assert_int_equal(w1 - w0, 1);
		assert_int_equal(b1 - b0, 2 * BLK);
	}
	free(buf);
}

static void test_posix_inplace_dsync_overwrite(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(4 * BLK), *rd = tu_alloc(4 * BLK);
	uint64_t f, w0, b0;

	f = mkfile(p, p->root, "ip");
	tu_fill(buf, 4 * BLK, 2);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4 * BLK, 0, 0), 4 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	/*
	 * fsync left the extents to the headers: the first write in place
	 * commits their records first (a mount would drop a header whose data
	 * has changed), the others do not
	 */
	tu_fill(buf, BLK, 3);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 2 * BLK, FF_CW_DSYNC), BLK);
	w0 = stat_of(p, "dev_writes");
	b0 = stat_of(p, "dev_bytes_written");
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, BLK, FF_CW_DSYNC), BLK);
	assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
	/* conventional space: the block alone, in place; sequential: header + block */
	assert_int_equal(stat_of(p, "dev_bytes_written") - b0, p->emu ? 2 * BLK : BLK);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 4 * BLK, 0), 4 * BLK);
	assert_memory_equal(rd + BLK, buf, BLK);
	assert_memory_equal(rd + 2 * BLK, buf, BLK);
	free(buf);
	free(rd);
}

static bool ts_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/*
 * Data writes stamp mtime and ctime with the coarse clock: the writes of
 * one tick change the times once, so an fsync after the later ones has no
 * inode record to log and costs what an fdatasync does. Once the times
 * were read, the next write stamps a later time, which the reader sees,
 * and fsync logs it.
 */
static void test_posix_write_times_coarse(void **state)
{
	struct px *p = *state;
	struct px_fs *fs = (struct px_fs *)p->fs;
	uint8_t *buf = tu_alloc(2 * BLK), *rd = tu_alloc(BLK);
	struct stat st0, st1;
	struct timespec t;
	uint64_t f, w0, wds, wfs;

	f = mkfile(p, p->root, "ts");
	tu_fill(buf, 2 * BLK, 4);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 2 * BLK, 0, 0), 2 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	/* a coarse clock that stands still: the floor an hour ahead */
	clock_gettime(CLOCK_REALTIME, &t);
	atomic_store(&fs->time_floor, ((uint64_t)t.tv_sec + 3600) * 1000000000u);
	/* the tick's first write moves the times, its first read atime */
	assert_int_equal(ff_fs_write(p->fs, f, buf, 2 * BLK, 0, 0), 2 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, BLK, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	w0 = stat_of(p, "dev_writes");
	assert_int_equal(ff_fs_write(p->fs, f, buf, 2 * BLK, 0, 0), 2 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, BLK, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	wds = stat_of(p, "dev_writes") - w0;
	/* reads within the tick move no time either */
	w0 = stat_of(p, "dev_writes");
	assert_int_equal(ff_fs_write(p->fs, f, buf, 2 * BLK, 0, 0), 2 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, BLK, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	wfs = stat_of(p, "dev_writes") - w0;
	assert_int_equal(wfs, wds);
	/* read, then written: the change shows, and fsync logs it */
	assert_int_equal(ff_fs_getattr(p->fs, f, &st0), 0);
	w0 = stat_of(p, "dev_writes");
	assert_int_equal(ff_fs_write(p->fs, f, buf, 2 * BLK, 0, 0), 2 * BLK);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st1), 0);
	assert_true(ts_after(st1.st_mtim, st0.st_mtim));
	assert_true(ts_after(st1.st_ctim, st0.st_ctim));
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(stat_of(p, "dev_writes") - w0, wds + 1);
	remount(p);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st0), 0);
	assert_int_equal(st0.st_mtim.tv_sec, st1.st_mtim.tv_sec);
	assert_int_equal(st0.st_mtim.tv_nsec, st1.st_mtim.tv_nsec);
	assert_int_equal(st0.st_ctim.tv_nsec, st1.st_ctim.tv_nsec);
	free(buf);
	free(rd);
}

/* Blocks found by roll-forward after a crash are committed by the mount: overwritten in place. */
static void test_posix_inplace_after_rollforward(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(4 * BLK), *rd = tu_alloc(4 * BLK);
	char copy[300];
	struct ff_fs *live = p->fs;
	uint64_t f, w0, b0;

	f = mkfile(p, p->root, "rf");
	tu_fill(buf, 4 * BLK, 8);
	/* durable by their headers alone: their EXTENT records are not committed */
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4 * BLK, 0, FF_CW_DSYNC), 4 * BLK);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(copy, &p->o, &p->fs), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 4 * BLK, 0), 4 * BLK);
	assert_memory_equal(rd, buf, 4 * BLK);
	tu_fill(buf + BLK, BLK, 9);
	w0 = stat_of(p, "dev_writes");
	b0 = stat_of(p, "dev_bytes_written");
	assert_int_equal(ff_fs_write(p->fs, f, buf + BLK, BLK, BLK, FF_CW_DSYNC), BLK);
	assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
	assert_int_equal(stat_of(p, "dev_bytes_written") - b0, p->emu ? 2 * BLK : BLK);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	assert_int_equal(ff_fs_mount(copy, &p->o, &p->fs), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 4 * BLK, 0), 4 * BLK);
	assert_memory_equal(rd, buf, 4 * BLK);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = live;
	unlink(copy);
	free(buf);
	free(rd);
}

/*
 * Sync overwrites of blocks durable by their data headers alone (EXTENT
 * records not committed yet, as after fio's layout of a new file): on
 * conventional space the first commits the log, the rest are in place.
 */
static void test_posix_sync_overwrite_uncommitted(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(4 * BLK), *rd = tu_alloc(4 * BLK);
	uint64_t f, w0, b0;

	f = mkfile(p, p->root, "uc");
	tu_fill(buf, 4 * BLK, 4);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4 * BLK, 0, FF_CW_DSYNC), 4 * BLK);
	tu_fill(buf + BLK, BLK, 5);
	assert_int_equal(ff_fs_write(p->fs, f, buf + BLK, BLK, BLK, FF_CW_DSYNC), BLK);
	for (int k = 0; k < 8; k++) {
		uint64_t off = (uint64_t)(k % 4) * BLK;

		tu_fill(buf + off, BLK, 10 + k);
		w0 = stat_of(p, "dev_writes");
		b0 = stat_of(p, "dev_bytes_written");
		assert_int_equal(ff_fs_write(p->fs, f, buf + off, BLK, off, FF_CW_DSYNC), BLK);
		assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
		assert_int_equal(stat_of(p, "dev_bytes_written") - b0, p->emu ? 2 * BLK : BLK);
	}
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 4 * BLK, 0), 4 * BLK);
	assert_memory_equal(rd, buf, 4 * BLK);
	free(buf);
	free(rd);
}

/*
 * Buffered overwrites, each made durable by fdatasync, of blocks durable by
 * their data headers alone (a SQLite WAL's second pass over the blocks its
 * first pass appended): on conventional space the first write-back commits
 * the log, the rest go in place, one write of the blocks each, and the file
 * keeps its extents instead of gaining one (and a header) per fdatasync.
 */
static void test_posix_buffered_overwrite_uncommitted(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(4 * BLK), *rd = tu_alloc(4 * BLK);
	uint64_t f, w0, b0, h0;

	f = mkfile(p, p->root, "bo");
	tu_fill(buf, 4 * BLK, 40);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4 * BLK, 0, 0), 4 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	for (int k = 0; k < 8; k++) {
		uint64_t off = (uint64_t)(k % 4) * BLK;

		tu_fill(buf + off, BLK, 41 + k);
		w0 = stat_of(p, "dev_writes");
		b0 = stat_of(p, "dev_bytes_written");
		h0 = stat_of(p, "data_header_writes");
		assert_int_equal(ff_fs_write(p->fs, f, buf + off, BLK, off, 0), BLK);
		assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
		if (k == 0)
			continue; /* the log commit, on conventional space */
		assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
		assert_int_equal(stat_of(p, "dev_bytes_written") - b0, p->emu ? 2 * BLK : BLK);
		assert_int_equal(stat_of(p, "data_header_writes") - h0, p->emu ? 1 : 0);
	}
	crash_reads(p, f, buf, 4 * BLK);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 4 * BLK, 0), 4 * BLK);
	assert_memory_equal(rd, buf, 4 * BLK);
	free(buf);
	free(rd);
}

/*
 * Unaligned buffered appends, each made durable by fdatasync (a WAL's first
 * pass): the block the last append ended in goes out of place with the new
 * ones, one write and no log write each, not a log commit to rewrite it in
 * place and a second write for the rest.
 */
static void test_posix_buffered_unaligned_append(void **state)
{
	struct px *p = *state;
	enum { FR = BLK + 24, N = 8 };
	uint8_t *buf = tu_alloc(N * FR + FR), *rd = tu_alloc(N * FR + FR);
	uint64_t f, w0, l0, off = 32;

	f = mkfile(p, p->root, "ua");
	tu_fill(buf, N * FR + FR, 50);
	assert_int_equal(ff_fs_write(p->fs, f, buf, off, 0, 0), off);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	for (int k = 0; k < N; k++, off += FR) {
		w0 = stat_of(p, "dev_writes");
		l0 = stat_of(p, "log_writes");
		assert_int_equal(ff_fs_write(p->fs, f, buf + off, FR, off, 0), FR);
		assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
		assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
		assert_int_equal(stat_of(p, "log_writes") - l0, 0);
	}
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, off, 0), off);
	assert_memory_equal(rd, buf, off);
	free(buf);
	free(rd);
}

/*
 * Small buffered appends, each made durable by fdatasync (RocksDB's WAL with
 * sync=1), also after an fsync has committed the last block's extent: the
 * block goes out of place with its header, which carries the size, one write
 * and no log write each, not in place with a log record for the size.
 */
static void test_posix_buffered_small_append(void **state)
{
	struct px *p = *state;
	enum { N = 24, R = 300 };
	uint8_t *buf = tu_alloc(N * R), *rd = tu_alloc(N * R);
	uint64_t f, w0, l0;

	f = mkfile(p, p->root, "sa");
	tu_fill(buf, N * R, 60);
	for (int k = 0; k < N; k++) {
		w0 = stat_of(p, "dev_writes");
		l0 = stat_of(p, "log_writes");
		assert_int_equal(ff_fs_write(p->fs, f, buf + k * R, R, (uint64_t)k * R, 0), R);
		assert_int_equal(ff_fs_fsync(p->fs, f, k % 8 != 0), 0);
		if (k % 8 == 0)
			continue; /* the fsync commits the log, and with it the block's extent */
		assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
		assert_int_equal(stat_of(p, "log_writes") - l0, 0);
	}
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, N * R, 0), N * R);
	assert_memory_equal(rd, buf, N * R);
	free(buf);
	free(rd);
}

/*
 * fdatasync of writes into holes inside the size: the data goes out of place
 * with its header, and a crash finds it by roll-forward, so fdatasync writes
 * no log, only flushes the device; the data survives a kill right after.
 */
static void test_posix_fdatasync_no_log_write(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(8 * BLK);
	struct stat st = {.st_size = 8 * BLK};
	uint64_t f, l0;

	f = mkfile(p, p->root, "ds");
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	memset(buf, 0, 8 * BLK);
	/* the first write opens a data zone: that is logged */
	tu_fill(buf, BLK, 19);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	for (int k = 0; k < 4; k++) {
		uint64_t off = (uint64_t)(2 * k + 1) * BLK;

		tu_fill(buf + off, BLK, 20 + k);
		l0 = stat_of(p, "log_writes");
		assert_int_equal(ff_fs_write(p->fs, f, buf + off, BLK, off, 0), BLK);
		assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
		assert_int_equal(stat_of(p, "log_writes") - l0, 0);
	}
	crash_reads(p, f, buf, 8 * BLK);
	free(buf);
}

/*
 * The close after an fsync, with no write between, writes nothing again;
 * after a write it makes it durable: one run of blocks as a FUA write with
 * no flush, several runs written plainly and then one flush.
 */
static void test_posix_close_after_fsync(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(8 * BLK), *rd = tu_alloc(8 * BLK);
	uint64_t f, fl, w, fua;

	f = mkfile(p, p->root, "cl");
	tu_fill(buf, 2 * BLK, 30);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	fl = stat_of(p, "dev_flushes");
	w = stat_of(p, "dev_writes");
	assert_int_equal(ff_fs_flush(p->fs, f), 0);
	assert_int_equal(stat_of(p, "dev_flushes") - fl, 0);
	assert_int_equal(stat_of(p, "dev_writes") - w, 0);
	assert_int_equal(ff_fs_write(p->fs, f, buf + BLK, BLK, BLK, 0), BLK);
	fl = stat_of(p, "dev_flushes");
	fua = stat_of(p, "dev_fua_writes");
	assert_int_equal(ff_fs_flush(p->fs, f), 0);
	assert_true(stat_of(p, "dev_fua_writes") - fua >= 1);
	assert_int_equal(stat_of(p, "dev_flushes") - fl, 0);
	/* two runs apart: no FUA, a flush after both */
	assert_int_equal(ff_fs_write(p->fs, f, buf + 2 * BLK, 6 * BLK, 2 * BLK, 0), 6 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	/*
	 * The first overwrite of blocks a data header placed commits their
	 * extents (a log write) unless a record fsync logged took them along:
	 * the second round is the measured one.
	 */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ff_fs_write(p->fs, f, buf + BLK, BLK, BLK, 0), BLK);
		assert_int_equal(ff_fs_write(p->fs, f, buf + 6 * BLK, BLK, 6 * BLK, 0), BLK);
		fl = stat_of(p, "dev_flushes");
		fua = stat_of(p, "dev_fua_writes");
		assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	}
	assert_int_equal(stat_of(p, "dev_fua_writes") - fua, 0);
	assert_true(stat_of(p, "dev_flushes") - fl >= 1);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 8 * BLK, 0), 8 * BLK);
	assert_memory_equal(rd, buf, 8 * BLK);
	free(buf);
	free(rd);
}

/* Sub-block sync writes of any length and alignment: full count, durable. */
static void test_posix_subblock_sync(void **state)
{
	struct px *p = *state;
	uint8_t model[3 * BLK] = {0}, rd[3 * BLK];
	char copy[300], vlog[300];
	struct ff_fs *fs2;
	uint64_t f, size = 0;
	unsigned seed = 7;

	f = mkfile(p, p->root, "sub");
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	for (int k = 0; k < 40; k++) {
		uint64_t off = rand_r(&seed) % (2 * BLK), len = 1 + rand_r(&seed) % 700;
		uint8_t data[700];

		tu_fill(data, len, (unsigned long long)k + 10);
		assert_int_equal(
			ff_fs_write(p->fs, f, data, len, off, k % 2 ? FF_CW_DSYNC : FF_CW_SYNC),
			(ssize_t)len);
		memcpy(model + off, data, len);
		if (off + len > size)
			size = off + len;
	}
	assert_int_equal(ff_fs_read(p->fs, f, rd, sizeof(rd), 0), (ssize_t)size);
	assert_memory_equal(rd, model, size);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	(void)vlog;
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	{
		struct stat st;
		ssize_t n;

		assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
		n = ff_fs_read(fs2, f, rd, sizeof(rd), 0);
		assert_int_equal(n, st.st_size);
		assert_int_equal(n, size);
		assert_memory_equal(rd, model, (size_t)n);
	}
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
}

/* create, write 4 KiB, fsync, close: a data write and a log write per file */
static void test_posix_small_file_writes(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK);
	uint64_t w0 = 0, b0 = 0, l0 = 0, h0 = 0, w, b;
	char nm[32];
	enum { N = 20 };

	tu_fill(buf, BLK, 5);
	/* the first ones open the data zones (one per slot, up to 4) */
	for (int k = 0; k < N + 4; k++) {
		uint64_t f;

		if (k == 4) {
			l0 = stat_of(p, "log_writes");
			h0 = stat_of(p, "data_header_writes");
			w0 = stat_of(p, "dev_writes");
			b0 = stat_of(p, "dev_bytes_written");
		}
		snprintf(nm, sizeof(nm), "small%d", k);
		f = mkfile(p, p->root, nm);
		assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
		assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
		assert_int_equal(ff_fs_flush(p->fs, f), 0);
		assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	}
	w = stat_of(p, "dev_writes") - w0;
	b = stat_of(p, "dev_bytes_written") - b0;
	print_message("small files: %.2f writes (%.2f log, %.2f data), %.1f KiB per file\n",
		      (double)w / N, (double)(stat_of(p, "log_writes") - l0) / N,
		      (double)(stat_of(p, "data_header_writes") - h0) / N, (double)b / N / 1024);
	assert_true(w <= 2 * N);
	free(buf);
}

/*
 * Every write of data (zone 4 on) or metadata (zones 1-3) takes slow_ms[1]
 * or slow_ms[0] in slow_writes (300 ms each unless a test says otherwise);
 * overlap counts those that began while one of the other kind was still
 * under way.
 */
static atomic_int slow_in[2], overlap, slow_ms[2] = {300, 300};

static int slow_writes(struct ff_dev *dev, uint64_t off, size_t len)
{
	int k = off >= 4 * ZS;

	(void)dev;
	(void)len;
	if (off < ZS)
		return 0;
	atomic_fetch_add(&slow_in[k], 1);
	if (atomic_load(&slow_in[!k]))
		atomic_fetch_add(&overlap, 1);
	usleep((useconds_t)atomic_load(&slow_ms[k]) * 1000);
	atomic_fetch_sub(&slow_in[k], 1);
	return 0;
}

/*
 * A file "first" of one block buf, fsync'ed: a data zone is open and its
 * opening logged, so that a test's writes after it open nothing.
 */
static void open_data_zone(struct px *p, const uint8_t *buf)
{
	uint64_t f = mkfile(p, p->root, "first");

	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
}

/*
 * fsync of a new file, and a close after writes to another: the create's
 * records (and the times) are written to the log while the data is written,
 * not after; both are durable when the call returns.
 */
static void test_posix_fsync_commits_beside_data(void **state)
{
	static const char *const names[] = {"fsynced", "closed"};
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	uint64_t f[2];
	struct ff_fs *fs2;
	char copy[300];
	struct stat st;

	tu_fill(buf, BLK, 47);
	open_data_zone(p, buf);
	for (int k = 0; k < 2; k++) {
		f[k] = mkfile(p, p->root, names[k]);
		assert_int_equal(ff_fs_write(p->fs, f[k], buf, BLK, 0, 0), BLK);
		atomic_store(&overlap, 0);
		ff_dev_fault_hook = slow_writes;
		assert_int_equal(k ? ff_fs_flush(p->fs, f[k]) : ff_fs_fsync(p->fs, f[k], false), 0);
		ff_dev_fault_hook = NULL;
		assert_int_equal(atomic_load(&overlap), 1);
	}
	/* a power cut now (a copy of the image): the names, the sizes and the data are there */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(ff_fs_lookup(fs2, p->root, names[k], &st), 0);
		assert_int_equal(st.st_ino, f[k]);
		assert_int_equal(st.st_size, BLK);
		assert_int_equal(ff_fs_read(fs2, f[k], rd, BLK, 0), BLK);
		assert_memory_equal(rd, buf, BLK);
	}
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
	free(buf);
	free(rd);
}

/*
 * The first O_SYNC or O_DSYNC write to a new file: the create's records are
 * written to the log while the data is written, not before; both are
 * durable when the write returns (the log write is the slower one here).
 */
static void test_posix_sync_write_commits_beside_data(void **state)
{
	static const char *const names[] = {"osync", "odsync"};
	static const unsigned how[] = {FF_CW_SYNC, FF_CW_DSYNC};
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	struct ff_fs *fs2;
	char copy[300];
	struct stat st;
	uint64_t f;

	tu_fill(buf, BLK, 49);
	open_data_zone(p, buf);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	for (int k = 0; k < 2; k++) {
		f = mkfile(p, p->root, names[k]);
		atomic_store(&overlap, 0);
		atomic_store(&slow_ms[0], 600);
		ff_dev_fault_hook = slow_writes;
		assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, how[k]), BLK);
		/* a power cut now (a copy of the image): the name, the size and the data are there
		 */
		tu_copy_image(p->path, copy);
		ff_dev_fault_hook = NULL;
		atomic_store(&slow_ms[0], 300);
		assert_int_equal(atomic_load(&overlap), 1);
		assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
		assert_int_equal(ff_fs_lookup(fs2, p->root, names[k], &st), 0);
		assert_int_equal(st.st_ino, f);
		assert_int_equal(st.st_size, BLK);
		assert_int_equal(ff_fs_read(fs2, f, rd, BLK, 0), BLK);
		assert_memory_equal(rd, buf, BLK);
		assert_int_equal(ff_fs_unmount(fs2), 0);
	}
	unlink(copy);
	free(buf);
	free(rd);
}

/*
 * Metadata writes (zones 1-3) wait in hold_meta_writes while meta_held is
 * set; data_writes counts the data writes (zone 4 on) that went through.
 */
static atomic_bool meta_held;
static atomic_int data_writes;

static int hold_meta_writes(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)len;
	if (off < ZS)
		return 0;
	if (off >= 4 * ZS) {
		atomic_fetch_add(&data_writes, 1);
		return 0;
	}
	while (atomic_load(&meta_held))
		usleep(1000);
	return 0;
}

struct fsync_arg {
	struct ff_fs *fs;
	uint64_t ino;
	int ret;
};

static void *fsync_thread(void *a)
{
	struct fsync_arg *fa = a;

	fa->ret = ff_fs_fsync(fa->fs, fa->ino, false);
	return NULL;
}

/*
 * A power cut after a new file's data reached the device and before its
 * create did (the log write held back): the mount has no such file. The
 * file made after it may get the same number (the log never had it), but
 * never the lost file's data: that mount's checkpoint puts the header
 * behind every later mount's roll-forward.
 */
static void test_posix_lost_create_data_stays_lost(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	struct fsync_arg fa = {0};
	struct ff_fs *fs2, *fs3;
	char copy[300], copy2[310];
	struct stat st;
	pthread_t th;
	uint64_t f;

	tu_fill(buf, BLK, 48);
	open_data_zone(p, buf);
	f = mkfile(p, p->root, "lost");
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
	atomic_store(&meta_held, true);
	atomic_store(&data_writes, 0);
	ff_dev_fault_hook = hold_meta_writes;
	fa = (struct fsync_arg){p->fs, f, 0};
	assert_int_equal(pthread_create(&th, NULL, fsync_thread, &fa), 0);
	for (int k = 0; k < 5000 && !atomic_load(&data_writes); k++)
		usleep(1000);
	assert_true(atomic_load(&data_writes) > 0);
	usleep(200 * 1000); /* the data write completes */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	atomic_store(&meta_held, false);
	assert_int_equal(pthread_join(th, NULL), 0);
	ff_dev_fault_hook = NULL;
	assert_int_equal(fa.ret, 0);

	/* the cut image: no "lost"; a new file is made and its name committed */
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_lookup(fs2, p->root, "lost", &st), -ENOENT);
	assert_int_equal(ff_fs_mknod(fs2, p->root, "new", S_IFREG | 0644, 0, &cr, &st), 0);
	assert_int_equal(ff_fs_fsyncdir(fs2, p->root, false), 0);
	/* a second cut: "new" is empty, whatever the number it got */
	snprintf(copy2, sizeof(copy2), "%s.crash2", p->path);
	tu_copy_image(copy, copy2);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	assert_int_equal(ff_fs_mount(copy2, &p->o, &fs3), 0);
	assert_int_equal(ff_fs_lookup(fs3, p->root, "new", &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(ff_fs_read(fs3, st.st_ino, rd, BLK, 0), 0);
	assert_int_equal(ff_fs_unmount(fs3), 0);
	unlink(copy);
	unlink(copy2);
	free(buf);
	free(rd);
}

/* A data write the device fails: the writer gets EIO, the next write works, nothing breaks. */
static void test_posix_data_write_error(void **state)
{
	struct px *p = *state;
	uint8_t *a = tu_alloc(2 * BLK), *b = tu_alloc(2 * BLK), *rd = tu_alloc(2 * BLK);
	char env[200];
	struct stat st;
	uint64_t f;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	/* the first raw write to the data zones (zone 4 on) fails */
	snprintf(env, sizeof(env), "fail_write=1,range=%llu:%llu", 4 * ZS,
		 (unsigned long long)NZ * ZS);
	setenv("FOLIOFS_FAULT", env, 1);
	do_mount_path(p, p->path);
	unsetenv("FOLIOFS_FAULT");
	f = mkfile(p, p->root, "e");
	tu_fill(a, 2 * BLK, 1);
	tu_fill(b, 2 * BLK, 2);
	assert_int_equal(ff_fs_write(p->fs, f, a, 2 * BLK, 0, FF_CW_DSYNC), -EIO);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(ff_fs_write(p->fs, f, b, 2 * BLK, 0, FF_CW_DSYNC), 2 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 2 * BLK, 0), 2 * BLK);
	assert_memory_equal(rd, b, 2 * BLK);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 2 * BLK, 0), 2 * BLK);
	assert_memory_equal(rd, b, 2 * BLK);
	free(a);
	free(b);
	free(rd);
}

/*
 * A log write the device fails: that fsync and every later commit fail (the
 * log stops, as XFS shuts down), the unmount reports it, and the image mounts
 * with what was committed before.
 */
static int fail_meta_writes(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)len;
	return off >= ZS && off < 4 * ZS ? -EIO : 0;
}

static void test_posix_log_write_error(void **state)
{
	struct px *p = *state;
	struct stat st;
	uint64_t f;

	assert_int_equal(ff_fs_mknod(p->fs, p->root, "before", S_IFREG | 0644, 0, &cr, &st), 0);
	remount(p);
	/* from now on the device fails every write to the metadata zones */
	ff_dev_fault_hook = fail_meta_writes;
	f = mkfile(p, p->root, "after");
	assert_int_equal(ff_fs_fsync(p->fs, f, false), -EIO);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), -EIO);
	assert_int_equal(ff_fs_unmount(p->fs), -EIO);
	p->fs = NULL;
	ff_dev_fault_hook = NULL;
	do_mount_path(p, p->path);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "before", &st), 0);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "after", &st), -ENOENT);
}

/*
 * The device dies (a pulled disk: every write and flush fails, as dead_after
 * in the crash drivers): every later change, write and fsync gets EIO, as
 * after XFS shuts down, whatever the half-done state would answer. Without
 * the shutdown, a zone reused after its data was truncated, whose opening
 * the log could not record, was never reset, and the next write there was
 * refused as out of order (EINVAL, for an O_DIRECT write, a punch and an
 * fsync); with an active-zone limit the zones the device could not finish
 * refused the next open (EOVERFLOW); truncate and fallocate succeeded. What
 * was durable before is there at the next mount, and nothing of the writes
 * that failed.
 */
static void test_posix_dead_device_eio(void **state)
{
	struct px *p = *state;
	uint8_t *a = tu_alloc(1 << 20), *b = tu_alloc(64 << 10), *rd = tu_alloc(256 << 10);
	struct stat st = {0};
	uint64_t f, g;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	/* the fault layer on, nothing injected: ff_fault_kill below kills the device */
	setenv("FOLIOFS_FAULT", "dead_mode=eio", 1);
	do_mount_path(p, p->path);
	unsetenv("FOLIOFS_FAULT");
	f = mkfile(p, p->root, "f");
	g = mkfile(p, p->root, "g");
	tu_fill(a, 1 << 20, 3);
	tu_fill(b, 64 << 10, 4);
	assert_int_equal(ff_fs_write(p->fs, f, a, 256 << 10, 0, 0), 256 << 10);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	/* g fills a zone and more, then is cut to 0: a full zone with no live data, reused first */
	for (int k = 0; k < 9; k++)
		assert_int_equal(ff_fs_write(p->fs, g, a, 1 << 20, (uint64_t)k << 20, 0), 1 << 20);
	assert_int_equal(ff_fs_fsync(p->fs, g, false), 0);
	assert_int_equal(ff_fs_setattr(p->fs, g, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_fsync(p->fs, g, false), 0);
	ff_fault_kill(((struct px_fs *)p->fs)->dev);
	for (int k = 0; k < 3; k++) {
		uint64_t o = (uint64_t)k << 16;

		assert_int_equal(ff_fs_write(p->fs, f, b, 64 << 10, 0, FF_CW_DIRECT), -EIO);
		assert_int_equal(ff_fs_write(p->fs, g, b, 64 << 10, o, FF_CW_DIRECT), -EIO);
		assert_int_equal(ff_fs_write(p->fs, g, b, 64 << 10, o, FF_CW_DSYNC), -EIO);
		assert_int_equal(ff_fs_write(p->fs, f, b, 64 << 10, 4096, FF_CW_DSYNC), -EIO);
		assert_int_equal(ff_fs_fallocate(p->fs, f,
						 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000,
						 20000),
				 -EIO);
		assert_int_equal(ff_fs_write(p->fs, f, b, 100, 5000, 0), -EIO);
		st.st_size = 100000;
		assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), -EIO);
		assert_int_equal(ff_fs_fallocate(p->fs, g, 0, 0, 1 << 20), -EIO);
		assert_int_equal(ff_fs_fsync(p->fs, f, false), -EIO);
		assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), -EIO);
		assert_int_equal(ff_fs_mknod(p->fs, p->root, "late", S_IFREG | 0644, 0, &cr, &st),
				 -EIO);
	}
	/* what memory holds still reads */
	assert_int_equal(ff_fs_read(p->fs, f, rd, 64 << 10, 128 << 10), 64 << 10);
	assert_memory_equal(rd, a + (128 << 10), 64 << 10);
	assert_int_equal(ff_fs_unmount(p->fs), -EIO);
	p->fs = NULL;
	do_mount_path(p, p->path);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 256 << 10);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 256 << 10, 0), 256 << 10);
	assert_memory_equal(rd, a, 256 << 10);
	assert_int_equal(ff_fs_getattr(p->fs, g, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "late", &st), -ENOENT);
	free(a);
	free(b);
	free(rd);
}

/* Fails every device write of 64 KiB or more after the first one. */
static _Atomic int big_writes;
static int fail_after_first_batch(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)off;
	return len >= (64 << 10) && atomic_fetch_add(&big_writes, 1) >= 1 ? -EIO : 0;
}

/*
 * A sync or O_DIRECT write of four write-through batches (a quarter of the
 * tiny cache each) whose second batch the device fails: the writer gets EIO,
 * as from the kernel's O_DSYNC and O_DIRECT writes, not the count of the
 * first batch, which said a quarter of the write was done and durable. The
 * device is alive (its flushes work): the filesystem goes on, and the same
 * write then works.
 */
static void test_posix_sync_write_error_whole(void **state)
{
	static const unsigned fl[] = {FF_CW_DSYNC, FF_CW_DIRECT, FF_CW_DIRECT | FF_CW_DSYNC};
	struct px *p = *state;
	uint8_t *a = tu_alloc(256 << 10), *rd = tu_alloc(256 << 10);
	uint64_t f = mkfile(p, p->root, "w");

	tu_fill(a, 256 << 10, 5);
	for (size_t k = 0; k < sizeof(fl) / sizeof(fl[0]); k++) {
		atomic_store(&big_writes, 0);
		ff_dev_fault_hook = fail_after_first_batch;
		assert_int_equal(ff_fs_write(p->fs, f, a, 256 << 10, 0, fl[k]), -EIO);
		ff_dev_fault_hook = NULL;
		assert_int_equal(atomic_load(&big_writes), 2); /* it was the second batch */
	}
	assert_int_equal(ff_fs_write(p->fs, f, a, 256 << 10, 0, FF_CW_DSYNC), 256 << 10);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 256 << 10, 0), 256 << 10);
	assert_memory_equal(rd, a, 256 << 10);
	free(a);
	free(rd);
}

/*
 * f gets 1000 bytes of a, O_DSYNC; then an O_DIRECT append of 256 KiB of a
 * whose second batch (of the tiny cache) the device fails: EIO.
 */
static void failed_direct_append(struct px *p, uint64_t f, const uint8_t *a)
{
	assert_int_equal(ff_fs_write(p->fs, f, a, 1000, 0, FF_CW_DSYNC), 1000);
	atomic_store(&big_writes, 0);
	ff_dev_fault_hook = fail_after_first_batch;
	assert_int_equal(ff_fs_write(p->fs, f, a, 256 << 10, 1000, FF_CW_DIRECT), -EIO);
	ff_dev_fault_hook = NULL;
	assert_int_equal(atomic_load(&big_writes), 2);
}

/*
 * An O_DIRECT append whose second batch the device fails gets EIO and
 * leaves the size as it was: the first batch's blocks, written past the
 * size, are not the file's, and a truncate up then reads zeros there.
 */
static void test_posix_direct_append_error_past_eof(void **state)
{
	struct px *p = *state;
	uint8_t *a = tu_alloc(1 << 20), *rd = tu_alloc(1 << 20), *zero = tu_alloc(256 << 10);
	uint64_t f = mkfile(p, p->root, "w"), g = mkfile(p, p->root, "churn");
	struct stat st = {0};

	tu_fill(a, 1 << 20, 6);
	failed_direct_append(p, f, a);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 1000);
	/* the cache's copies first, then the device's, after another file went through it */
	for (int k = 0; k < 2; k++) {
		st.st_size = 1000 + (256 << 10);
		assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
		assert_int_equal(ff_fs_read(p->fs, f, rd, 1000 + (256 << 10), 0),
				 1000 + (256 << 10));
		assert_memory_equal(rd, a, 1000);
		assert_memory_equal(rd + 1000, zero, 256 << 10);
		st.st_size = 1000;
		assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
		assert_int_equal(ff_fs_write(p->fs, g, a, 1 << 20, 0, FF_CW_DSYNC), 1 << 20);
		assert_int_equal(ff_fs_read(p->fs, g, rd, 1 << 20, 0), 1 << 20);
	}
	assert_int_equal(ff_fs_release(p->fs, g, O_RDWR), 0);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	unmount_fsck_mount(p);
	free(a);
	free(rd);
	free(zero);
}

/* Fails the second device write to the data zones (zone 4 on) once armed. */
static _Atomic int data_writes;
static int fail_second_data_write(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)len;
	if (off < 4 * ZS || off >= (uint64_t)NZ * ZS)
		return 0;
	return atomic_fetch_add(&data_writes, 1) == 1 ? -EIO : 0;
}

/* Fails every device write to the data zones (zone 4 on). */
static int fail_data_writes(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)len;
	return off < 4 * ZS || off >= (uint64_t)NZ * ZS ? 0 : -EIO;
}

/*
 * A close whose write-back the device fails returns the error, and the
 * data stays owed: the next close of the file (another fd's, which wrote
 * nothing) writes it back, and a remount reads it. Two fds share the
 * file's written mark, so a failed flush must leave it set.
 */
static void test_posix_close_retries_failed_writeback(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK), *rd = tu_alloc(BLK);
	uint64_t f = mkfile(p, p->root, "cf"), w;

	tu_fill(buf, BLK, 41);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, 0), BLK);
	ff_dev_fault_hook = fail_data_writes;
	assert_int_equal(ff_fs_flush(p->fs, f), -EIO);
	ff_dev_fault_hook = NULL;
	w = stat_of(p, "dev_writes");
	assert_int_equal(ff_fs_flush(p->fs, f), 0);
	assert_true(stat_of(p, "dev_writes") - w >= 1);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, BLK, 0), BLK);
	assert_memory_equal(rd, buf, BLK);
	free(buf);
	free(rd);
}

/*
 * sync_mode=writeback: an O_DSYNC write past the size copies its bytes into
 * the cache as dirty blocks, then writes them back, and here the device
 * fails that: the writer gets EIO and the size stays. The dirty blocks past
 * the size are not the file's: the room they were promised is free again
 * (statfs as before), no later write-back places them, and a truncate up
 * reads zeros there.
 */
static void test_posix_wbmode_sync_error_past_eof(void **state)
{
	struct px *p = *state;
	uint8_t *a = tu_alloc(256 << 10), *rd = tu_alloc(256 << 10), *zero = tu_alloc(256 << 10);
	uint64_t f = mkfile(p, p->root, "w");
	struct statvfs s0, s1;
	struct stat st = {0};

	tu_fill(a, 256 << 10, 9);
	assert_int_equal(ff_fs_statfs(p->fs, &s0), 0);
	ff_dev_fault_hook = fail_data_writes;
	assert_int_equal(ff_fs_write(p->fs, f, a, 256 << 10, 0, FF_CW_DSYNC), -EIO);
	ff_dev_fault_hook = NULL;
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(ff_fs_statfs(p->fs, &s1), 0);
	assert_int_equal(s1.f_bavail, s0.f_bavail);
	/* the write-back's error, once (the cache's rule), then nothing owed */
	assert_int_equal(ff_fs_fsync(p->fs, f, false), -EIO);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	st.st_size = 256 << 10;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 256 << 10, 0), 256 << 10);
	assert_memory_equal(rd, zero, 256 << 10);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 256 << 10, 0), 256 << 10);
	assert_memory_equal(rd, zero, 256 << 10);
	free(a);
	free(rd);
	free(zero);
}

/*
 * A sync write that starts past the size, inside the last block: the bytes
 * between are zeroed on the device first (their own durable write), then the
 * data is written. The zeroing is not the data: until the data's write is
 * done, the size stays. Here the device fails the data's write: the writer
 * gets EIO and the size is the old one, in memory and after a remount, and
 * the same write then works.
 */
static void test_posix_sync_write_past_eof_size(void **state)
{
	enum { OLD = 5000, GAP = 1000, LEN = 100 };
	struct px *p = *state;
	uint8_t a[OLD], b[LEN], rd[3 * BLK], want[OLD + GAP + LEN] = {0};
	uint64_t f = mkfile(p, p->root, "gap");
	struct stat st;

	memset(a, 0xa5, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	memcpy(want, a, OLD);
	memcpy(want + OLD + GAP, b, LEN);
	/* the last block of the file is on the device, its record committed */
	assert_int_equal(ff_fs_write(p->fs, f, a, OLD, 0, FF_CW_DSYNC), OLD);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	atomic_store(&data_writes, 0);
	ff_dev_fault_hook = fail_second_data_write;
	assert_int_equal(ff_fs_write(p->fs, f, b, LEN, OLD + GAP, FF_CW_DSYNC), -EIO);
	ff_dev_fault_hook = NULL;
	assert_int_equal(atomic_load(&data_writes), 2); /* the zeros, then the data */
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, OLD);
	assert_int_equal(ff_fs_read(p->fs, f, rd, sizeof(rd), 0), OLD);
	assert_memory_equal(rd, a, OLD);
	remount(p);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, OLD);
	assert_int_equal(ff_fs_write(p->fs, f, b, LEN, OLD + GAP, FF_CW_DSYNC), LEN);
	assert_int_equal(ff_fs_read(p->fs, f, rd, sizeof(rd), 0), sizeof(want));
	assert_memory_equal(rd, want, sizeof(want));
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, sizeof(rd), 0), sizeof(want));
	assert_memory_equal(rd, want, sizeof(want));
}

/*
 * Sync appends by one writer, across zone boundaries: their deferred
 * EXTENT records reach the log as a few EXTRUN records, and a crash image
 * (the log, not an unmount's checkpoint) and a remount give back every byte.
 * A second file's appends between the first's break the runs.
 */
static void test_posix_sync_append_runs(void **state)
{
	enum { N = 300 };
	struct px *p = *state;
	uint8_t *want = tu_alloc((size_t)N * BLK), *want2 = tu_alloc(64 * BLK);
	uint8_t *rd = tu_alloc((size_t)N * BLK);
	uint64_t f = mkfile(p, p->root, "run"), g = mkfile(p, p->root, "other"), l0, l1, w0, w1;
	struct ff_fs *live = p->fs;
	char copy[300];
	struct stat st;

	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(ff_fs_fsync(p->fs, g, false), 0);
	l0 = stat_of(p, "log_bytes");
	w0 = stat_of(p, "log_writes");
	for (int k = 0; k < N; k++) {
		tu_fill(want + (size_t)k * BLK, BLK, 7000 + (unsigned)k);
		assert_int_equal(ff_fs_write(p->fs, f, want + (size_t)k * BLK, BLK,
					     (uint64_t)k * BLK, FF_CW_DSYNC),
				 BLK);
	}
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	l1 = stat_of(p, "log_bytes");
	w1 = stat_of(p, "log_writes");
	/*
	 * A log write at each zone the appends open, and the fsync's: each
	 * one block, where 300 EXTENT records alone would take 21,600 bytes
	 * (the fsync need not commit the last zone's: their headers say it).
	 */
	assert_true(w1 - w0 <= 4);
	assert_int_equal(l1 - l0, (w1 - w0) * BLK);
	/* the records of the two zones the appends filled, written as runs */
	assert_true(stat_of(p, "log_run_extents") >= 2 * (SPAN_ZS / (2 * BLK)) - 8);
	for (int k = 0; k < 64; k++) {
		tu_fill(want2 + (size_t)k * BLK, BLK, 9000 + (unsigned)k);
		assert_int_equal(ff_fs_write(p->fs, g, want2 + (size_t)k * BLK, BLK,
					     (uint64_t)k * BLK, FF_CW_DSYNC),
				 BLK);
		if (k % 2)
			continue;
		/* the first file's overwrites in between: runs of one record */
		tu_fill(want + (size_t)(k / 2) * BLK, BLK, 8000 + (unsigned)k);
		assert_int_equal(ff_fs_write(p->fs, f, want + (size_t)(k / 2) * BLK, BLK,
					     (uint64_t)(k / 2) * BLK, FF_CW_DSYNC),
				 BLK);
	}
	assert_int_equal(ff_fs_fsync(p->fs, g, true), 0);
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			assert_int_equal(ff_fs_mount(copy, &p->o, &p->fs), 0);
		else
			remount(p);
		assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
		assert_int_equal(st.st_size, (off_t)N * BLK);
		assert_int_equal(ff_fs_read(p->fs, f, rd, (size_t)N * BLK, 0), (ssize_t)N * BLK);
		assert_memory_equal(rd, want, (size_t)N * BLK);
		assert_int_equal(ff_fs_read(p->fs, g, rd, 64 * BLK, 0), 64 * BLK);
		assert_memory_equal(rd, want2, 64 * BLK);
		if (pass == 0) {
			assert_int_equal(ff_fs_unmount(p->fs), 0);
			p->fs = live;
		}
	}
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
	free(want);
	free(want2);
	free(rd);
}

/* ---- concurrency ---- */

struct gc_arg {
	struct px *p;
	uint64_t ino;
	int n;
	pthread_barrier_t *bar;
};

static void *gc_thread(void *a)
{
	struct gc_arg *g = a;
	uint8_t buf[BLK];

	for (int k = 0; k < g->n; k++) {
		tu_fill(buf, BLK, g->ino * 1000 + (unsigned)k);
		if (ff_fs_write(g->p->fs, g->ino, buf, BLK, (uint64_t)k * BLK, 0) != BLK)
			return (void *)1;
		pthread_barrier_wait(g->bar); /* the fsyncs of a round start together */
		if (ff_fs_fsync(g->p->fs, g->ino, true))
			return (void *)1;
	}
	return NULL;
}

/*
 * Group commit, deterministically: the records of many operations wait in
 * memory and the first fsync writes them all in one log write; the other
 * files' fsyncs find theirs durable and write nothing.
 */
static void test_posix_group_commit_batch(void **state)
{
	struct px *p = *state;
	enum { T = 8 };
	uint64_t ino[T], l0;
	struct stat st;

	for (int t = 0; t < T; t++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "b%d", t);
		ino[t] = mkfile(p, p->root, nm);
		st.st_mode = 0600;
		assert_int_equal(ff_fs_setattr(p->fs, ino[t], &st, FF_SET_MODE), 0);
		assert_int_equal(ff_fs_setxattr(p->fs, ino[t], "user.k", "v", 1, 0), 0);
	}
	l0 = stat_of(p, "log_writes");
	assert_int_equal(ff_fs_fsync(p->fs, ino[T - 1], false), 0);
	assert_int_equal(stat_of(p, "log_writes") - l0, 1);
	for (int t = 0; t < T - 1; t++)
		assert_int_equal(ff_fs_fsync(p->fs, ino[t], false), 0);
	assert_int_equal(stat_of(p, "log_writes") - l0, 1);
}

/* N concurrent fsyncs: fewer log writes than fsyncs (group commit). */
static void test_posix_group_commit(void **state)
{
	struct px *p = *state;
	enum { T = 8, N = 25 };
	pthread_t th[T];
	struct gc_arg a[T];
	pthread_barrier_t bar;
	uint64_t l0, l1;
	uint8_t buf[BLK], rd[BLK];

	pthread_barrier_init(&bar, NULL, T);
	for (int t = 0; t < T; t++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "g%d", t);
		a[t] = (struct gc_arg){p, mkfile(p, p->root, nm), N, &bar};
	}
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	l0 = stat_of(p, "log_writes");
	for (int t = 0; t < T; t++)
		assert_int_equal(pthread_create(&th[t], NULL, gc_thread, &a[t]), 0);
	for (int t = 0; t < T; t++) {
		void *r;

		pthread_join(th[t], &r);
		assert_null(r);
	}
	l1 = stat_of(p, "log_writes");
	print_message("group commit: %d fsyncs, %llu log writes\n", T * N,
		      (unsigned long long)(l1 - l0));
	assert_true(l1 - l0 < (uint64_t)(T * N));
	pthread_barrier_destroy(&bar);
	remount(p);
	for (int t = 0; t < T; t++)
		for (int k = 0; k < N; k++) {
			tu_fill(buf, BLK, a[t].ino * 1000 + (unsigned)k);
			assert_int_equal(ff_fs_read(p->fs, a[t].ino, rd, BLK, (uint64_t)k * BLK),
					 BLK);
			assert_memory_equal(rd, buf, BLK);
		}
}

struct mt_arg {
	struct px *p;
	uint64_t ino;
	unsigned seed;
	uint8_t *model;
	uint64_t size;
	pthread_mutex_t mu;
	_Atomic bool stop;
	int fail;
};

#define MT_MAX (512u << 10)

static void *mt_writer(void *arg)
{
	struct mt_arg *m = arg;
	uint8_t *buf = malloc(64 << 10);

	for (int k = 0; k < 150 && !m->fail; k++) {
		uint64_t len = 1 + rand_r(&m->seed) % (40 << 10);
		uint64_t off = rand_r(&m->seed) % 3 ? m->size : rand_r(&m->seed) % (m->size + 1);
		unsigned fl = (unsigned[]){0, FF_CW_DSYNC, FF_CW_SYNC}[rand_r(&m->seed) % 3];

		if (off + len > MT_MAX)
			off = rand_r(&m->seed) % (MT_MAX - len);
		tu_fill(buf, len, m->seed);
		pthread_mutex_lock(&m->mu);
		memcpy(m->model + off, buf, len);
		if (off + len > m->size)
			m->size = off + len;
		pthread_mutex_unlock(&m->mu);
		if (ff_fs_write(m->p->fs, m->ino, buf, len, off, fl) != (ssize_t)len)
			m->fail = 1;
		if (k % 17 == 0 && ff_fs_fsync(m->p->fs, m->ino, k % 2))
			m->fail = 2;
	}
	free(buf);
	atomic_store(&m->stop, true);
	return NULL;
}

/* Reads a block-aligned prefix that every writer already completed: checks stable bytes. */
static void *mt_reader(void *arg)
{
	struct mt_arg *m = arg;
	uint8_t *buf = malloc(MT_MAX);

	while (!atomic_load(&m->stop)) {
		ssize_t n = ff_fs_read(m->p->fs, m->ino, buf, MT_MAX, 0);

		if (n < 0)
			m->fail = 3;
	}
	free(buf);
	return NULL;
}

/* Several files sharing open zones, sync and buffered writers, readers, a tiny cache. */
static void test_posix_mt_shared_zones(void **state)
{
	struct px *p = *state;
	enum { T = 4 };
	struct mt_arg m[T];
	pthread_t w[T], r[T];
	uint8_t *rd = malloc(MT_MAX);

	for (int t = 0; t < T; t++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "mt%d", t);
		memset(&m[t], 0, sizeof(m[t]));
		m[t].p = p;
		m[t].ino = mkfile(p, p->root, nm);
		m[t].seed = 100 + (unsigned)t;
		m[t].model = calloc(1, MT_MAX);
		pthread_mutex_init(&m[t].mu, NULL);
	}
	for (int t = 0; t < T; t++) {
		assert_int_equal(pthread_create(&w[t], NULL, mt_writer, &m[t]), 0);
		assert_int_equal(pthread_create(&r[t], NULL, mt_reader, &m[t]), 0);
	}
	for (int t = 0; t < T; t++) {
		pthread_join(w[t], NULL);
		pthread_join(r[t], NULL);
		assert_int_equal(m[t].fail, 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int t = 0; t < T; t++) {
			struct stat st;

			assert_int_equal(ff_fs_getattr(p->fs, m[t].ino, &st), 0);
			assert_int_equal((uint64_t)st.st_size, m[t].size);
			assert_int_equal(ff_fs_read(p->fs, m[t].ino, rd, MT_MAX, 0),
					 (ssize_t)m[t].size);
			assert_memory_equal(rd, m[t].model, m[t].size);
		}
		if (!pass)
			remount(p);
	}
	for (int t = 0; t < T; t++) {
		free(m[t].model);
		pthread_mutex_destroy(&m[t].mu);
	}
	free(rd);
}

/* ---- truncate, fallocate, seek ---- */

static void test_posix_truncate_falloc_seek(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(8 * BLK), *rd = tu_alloc(8 * BLK), *zero = tu_alloc(8 * BLK);
	struct stat st = {0};
	uint64_t f;

	f = mkfile(p, p->root, "t");
	tu_fill(buf, 8 * BLK, 9);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 8 * BLK, 0, 0), 8 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	st.st_size = 5000;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	st.st_size = 20000;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 8 * BLK, 0), 20000);
	assert_memory_equal(rd, buf, 5000);
	assert_memory_equal(rd + 5000, zero, BLK - 5000 % BLK);
	assert_memory_equal(rd + 2 * BLK, zero, 20000 - 2 * BLK);
	/* sparse: a hole from block 2 on */
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 2 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 2 * BLK, SEEK_DATA), -ENXIO);
	/* fallocate: grow, keep size, punch */
	assert_int_equal(ff_fs_fallocate(p->fs, f, 0, 0, 8 * BLK), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 8 * BLK);
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_KEEP_SIZE, 0, 16 * BLK), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 8 * BLK);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 8 * BLK, 0, 0), 8 * BLK);
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 BLK + 100, 3 * BLK),
			 0);
	memset(buf + BLK + 100, 0, 3 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 8 * BLK, 0), 8 * BLK);
	assert_memory_equal(rd, buf, 8 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 2 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 2 * BLK, SEEK_DATA), 4 * BLK);
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_PUNCH_HOLE, 0, BLK), -EOPNOTSUPP);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 8 * BLK, 0), 8 * BLK);
	assert_memory_equal(rd, buf, 8 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 2 * BLK);
	free(buf);
	free(rd);
	free(zero);
}

/*
 * The largest file is 1 EiB (2^60 bytes), for every way of growing one: a
 * truncate past it gets EFBIG as a write there does (as on ext4), not a
 * size no write can reach.
 */
static void test_posix_max_file_size(void **state)
{
	struct px *p = *state;
	uint64_t f = mkfile(p, p->root, "big"), max = 1ull << 60;
	struct stat st = {0};
	uint8_t b = 7, rd = 1;

	st.st_size = (off_t)max + 1;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), -EFBIG);
	st.st_size = INT64_MAX;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), -EFBIG);
	assert_int_equal(ff_fs_write(p->fs, f, &b, 1, max, 0), -EFBIG);
	assert_int_equal(ff_fs_fallocate(p->fs, f, 0, max, BLK), -EFBIG);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 0);
	st.st_size = (off_t)max;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_write(p->fs, f, &b, 1, max - 1, FF_CW_DSYNC), 1);
	remount(p);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, max);
	assert_int_equal(ff_fs_read(p->fs, f, &rd, 1, max - 1), 1);
	assert_int_equal(rd, 7);
}
/*
 * FALLOC_FL_ZERO_RANGE: the range reads as zeros and stays allocated
 * (st_blocks kept), its whole blocks reserved and unwritten, which
 * SEEK_HOLE reports as a hole, as XFS and ext4 report unwritten extents;
 * without KEEP_SIZE a range past the size grows the file; all of it after
 * a remount.
 */
static void test_posix_zero_range(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(16 * BLK), *rd = tu_alloc(16 * BLK);
	struct stat st = {0};
	blkcnt_t blocks;
	uint64_t f;

	f = mkfile(p, p->root, "z");
	tu_fill(buf, 8 * BLK, 5);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 8 * BLK, 0, 0), 8 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	blocks = st.st_blocks;
	/* within the size, partial blocks at both ends */
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_ZERO_RANGE, BLK + 100, 3 * BLK), 0);
	memset(buf + BLK + 100, 0, 3 * BLK);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 16 * BLK, 0), 8 * BLK);
	assert_memory_equal(rd, buf, 8 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 2 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 2 * BLK, SEEK_DATA), 4 * BLK);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 8 * BLK);
	assert_int_equal(st.st_blocks, blocks);
	/* KEEP_SIZE past the size: zeros below it, the size kept */
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					 7 * BLK + 10, 4 * BLK),
			 0);
	memset(buf + 7 * BLK + 10, 0, BLK - 10);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 8 * BLK);
	assert_true(st.st_blocks >= blocks + 3 * (BLK / 512));
	/* growing: the size moves to the end of the range */
	assert_int_equal(ff_fs_fallocate(p->fs, f, FALLOC_FL_ZERO_RANGE, 6 * BLK, 6 * BLK + 7), 0);
	memset(buf + 6 * BLK, 0, 6 * BLK + 7);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, 12 * BLK + 7);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 16 * BLK, 0), 12 * BLK + 7);
	assert_memory_equal(rd, buf, 12 * BLK + 7);
	assert_int_equal(
		ff_fs_fallocate(p->fs, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE, 0, BLK),
		-EOPNOTSUPP);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 16 * BLK, 0), 12 * BLK + 7);
	assert_memory_equal(rd, buf, 12 * BLK + 7);
	assert_int_equal(ff_fs_lseek(p->fs, f, 0, SEEK_HOLE), 2 * BLK);
	assert_int_equal(ff_fs_lseek(p->fs, f, 2 * BLK, SEEK_DATA), 4 * BLK);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_true(st.st_blocks >= 13 * (BLK / 512));
	free(buf);
	free(rd);
}

/* ---- directories ---- */

static void test_posix_big_dir_cookies(void **state)
{
	struct px *p = *state;
	enum { N = 20000 };
	char name[64], got[300];
	uint8_t *seen = calloc(N, 1);
	struct stat st;
	uint64_t d, ck = 0, next;
	int n = 0;

	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "big", 0755, &cr, &st), 0);
	d = st.st_ino;
	for (int k = 0; k < N; k++) {
		snprintf(name, sizeof(name), "entry-%06d", k);
		assert_int_equal(ff_fs_mknod(p->fs, d, name, S_IFREG | 0644, 0, &cr, &st), 0);
	}
	/* list while removing entries not yet listed and adding new ones */
	while (ff_fs_readdir(p->fs, d, ck, got, sizeof(got), &st, &next) == 0) {
		int k = atoi(got + 6);

		if (!strncmp(got, "entry-", 6)) {
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
		}
		if (n % 10 == 0 && k + 5000 < N && k % 2 == 0) {
			snprintf(name, sizeof(name), "entry-%06d", k + 5001);
			if (!seen[k + 5001])
				assert_int_equal(ff_fs_unlink(p->fs, d, name), 0);
			seen[k + 5001] = 2;
			snprintf(name, sizeof(name), "new-%06d", n);
			assert_int_equal(ff_fs_mknod(p->fs, d, name, S_IFREG | 0644, 0, &cr, &st),
					 0);
		}
		ck = next;
		n++;
	}
	for (int k = 0; k < N; k++)
		assert_true(seen[k] != 0);
	remount(p);
	snprintf(name, sizeof(name), "entry-%06d", 4);
	assert_int_equal(ff_fs_lookup(p->fs, d, name, &st), 0);
	free(seen);
}

/* ---- crash ---- */

/*
 * Mount p again with the fault layer logging every write that is not
 * durable into vlog (p->path + ".vlog").
 */
static void mount_vlog(struct px *p, char *vlog, size_t n)
{
	char env[400];

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	snprintf(vlog, n, "%s.vlog", p->path);
	snprintf(env, sizeof(env), "vlog=%s", vlog);
	setenv("FOLIOFS_FAULT", env, 1);
	do_mount_path(p, p->path);
	unsetenv("FOLIOFS_FAULT");
}

/*
 * A power cut now: a copy of the image (copy, p->path + ".crash") keeps
 * none of the writes vlog holds; mounted, it is returned in *fs2.
 */
static void cut_mount(struct px *p, const char *vlog, char *copy, char *vcopy, size_t n,
		      struct ff_fs **fs2)
{
	struct ff_cut_stats cs;

	snprintf(copy, n, "%s.crash", p->path);
	snprintf(vcopy, n, "%s.crash.vlog", p->path);
	tu_copy_image(p->path, copy);
	tu_copy_image(vlog, vcopy);
	assert_int_equal(ff_fault_apply_cut(copy, vcopy, 1, 0, &cs), 0);
	assert_int_equal(ff_fs_mount(copy, &p->o, fs2), 0);
}

/* After cut_mount's checks: the crash image unmounts, fsck finds it clean, the files go. */
static void cut_done(struct ff_fs *fs2, const char *copy, const char *vcopy, const char *vlog)
{
	assert_int_equal(ff_fs_unmount(fs2), 0);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
	unlink(vcopy);
	unlink(vlog);
}

/*
 * On a device of 512-byte blocks (a loop device, most disks), a sync append
 * in conventional space writes a short header, the header block's last 512
 * bytes, with its data: 4.5 KiB for 4 KiB (WA 1.125), still one write; so
 * does a write-back of one run. Whole headers (a write-back of several
 * runs, listed as pieces) and short ones share a zone's chain, and a
 * power cut before the log holds any of their records leaves every
 * acknowledged byte and size, read back by a mount of 4 KiB blocks too.
 */
static void test_posix_short_header(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300], env[400];
	uint8_t *buf = tu_alloc(16 * BLK), *exp = tu_alloc(16 * BLK), *rd = tu_alloc(16 * BLK);
	uint64_t f, g, w0, b0, size;
	struct ff_fs *fs2;
	struct stat st;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	snprintf(vlog, sizeof(vlog), "%s.vlog", p->path);
	snprintf(env, sizeof(env), "lblock=512,vlog=%s", vlog);
	setenv("FOLIOFS_FAULT", env, 1);
	do_mount_path(p, p->path);
	unsetenv("FOLIOFS_FAULT");
	f = mkfile(p, p->root, "f");
	g = mkfile(p, p->root, "g");
	tu_fill(buf, 16 * BLK, 21);
	memset(exp, 0, 16 * BLK);
	/* the first one also commits the creates and opens a data zone */
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 0, FF_CW_DSYNC), BLK);
	for (int k = 1; k < 6; k++) {
		w0 = stat_of(p, "dev_writes");
		b0 = stat_of(p, "dev_bytes_written");
		assert_int_equal(ff_fs_write(p->fs, f, buf + k * BLK, BLK, (uint64_t)k * BLK,
					     k % 2 ? FF_CW_SYNC : FF_CW_DSYNC),
				 BLK);
		assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
		assert_int_equal(stat_of(p, "dev_bytes_written") - b0, BLK + 512);
	}
	memcpy(exp, buf, 6 * BLK);
	/*
	 * write-backs between them: two runs, one write with a whole header
	 * listing both; then one run, nothing to join it: a short header
	 */
	assert_int_equal(ff_fs_write(p->fs, g, buf + 8 * BLK, BLK, 0, 0), BLK);
	assert_int_equal(ff_fs_write(p->fs, g, buf + 10 * BLK, BLK, 2 * BLK, 0), BLK);
	w0 = stat_of(p, "dev_writes");
	b0 = stat_of(p, "dev_bytes_written");
	assert_int_equal(ff_fs_fsync(p->fs, g, true), 0);
	assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
	assert_int_equal(stat_of(p, "dev_bytes_written") - b0, 3 * BLK);
	assert_int_equal(ff_fs_write(p->fs, g, buf + 9 * BLK, BLK, BLK, 0), BLK);
	w0 = stat_of(p, "dev_writes");
	b0 = stat_of(p, "dev_bytes_written");
	assert_int_equal(ff_fs_fsync(p->fs, g, true), 0);
	assert_int_equal(stat_of(p, "dev_writes") - w0, 1);
	assert_int_equal(stat_of(p, "dev_bytes_written") - b0, BLK + 512);
	/* sub-block sync appends: the partial block written padded, twice */
	assert_int_equal(ff_fs_write(p->fs, f, buf + 7 * BLK, 100, 6 * BLK, FF_CW_DSYNC), 100);
	assert_int_equal(
		ff_fs_write(p->fs, f, buf + 7 * BLK + 100, 300, 6 * BLK + 100, FF_CW_DSYNC), 300);
	memcpy(exp + 6 * BLK, buf + 7 * BLK, 400);
	size = 6 * BLK + 400;
	assert_int_equal(ff_fs_read(p->fs, f, rd, 16 * BLK, 0), size);
	assert_memory_equal(rd, exp, size);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, size);
	memset(rd, 0xee, 16 * BLK);
	assert_int_equal(ff_fs_read(fs2, f, rd, 16 * BLK, 0), size);
	assert_memory_equal(rd, exp, size);
	assert_int_equal(ff_fs_read(fs2, g, rd, 16 * BLK, 0), 3 * BLK);
	assert_memory_equal(rd, buf + 8 * BLK, 3 * BLK);
	/* it goes on: a mount of 4 KiB blocks writes whole headers after the short ones */
	assert_int_equal(ff_fs_write(fs2, f, buf + 9 * BLK, BLK, 7 * BLK, FF_CW_DSYNC), BLK);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	memcpy(exp + 7 * BLK, buf + 9 * BLK, BLK);
	assert_int_equal(ff_fs_read(fs2, f, rd, 16 * BLK, 0), 8 * BLK);
	assert_memory_equal(rd, exp, 8 * BLK);
	cut_done(fs2, copy, vcopy, vlog);
	/* and the live mount's own unmount and mount */
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 16 * BLK, 0), size);
	assert_memory_equal(rd, exp, size);
	free(buf);
	free(exp);
	free(rd);
}

/*
 * The same failed O_DIRECT append, then a buffered write past the size and
 * an O_DSYNC write further on, then a power cut that keeps nothing the
 * device was not told to make durable. The failed write's bytes in the
 * file's last block, past its size, are on the device; the buffered
 * write's gap zeroes them in the cache only, unless the growth after a
 * failed write zeroes them durably first: after the cut they must read as
 * zeros, inside the size the O_DSYNC write made durable.
 */
static void test_posix_direct_append_error_tail_cut(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300];
	uint8_t *a = tu_alloc(256 << 10), *rd = tu_alloc(BLK);
	uint64_t f;
	struct ff_fs *fs2;
	struct stat st;

	mount_vlog(p, vlog, sizeof(vlog));
	f = mkfile(p, p->root, "w");
	tu_fill(a, 256 << 10, 8);
	failed_direct_append(p, f, a);
	assert_int_equal(ff_fs_write(p->fs, f, a, 100, 3 * BLK, 0), 100);
	assert_int_equal(ff_fs_write(p->fs, f, a, 100, 8 * BLK, FF_CW_DSYNC), 100);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, 8 * BLK + 100);
	assert_int_equal(ff_fs_read(fs2, f, rd, BLK, 0), BLK);
	assert_memory_equal(rd, a, 1000);
	for (uint32_t k = 1000; k < BLK; k++)
		if (rd[k])
			fail_msg("byte %u is %#x: the failed write's, past the size it had", k,
				 rd[k]);
	cut_done(fs2, copy, vcopy, vlog);
	free(a);
	free(rd);
}

/*
 * Power cut: the fault layer logs every non-durable write; the crashed copy
 * keeps none of them. What was fsync'd (data, names, a rename) is there.
 */
/* The names of dir, in readdir order, joined by spaces. */
static void dir_names(struct ff_fs *fs, uint64_t dir, char *out, size_t len)
{
	uint64_t cookie = 0, next;
	char name[300];
	struct stat st;

	out[0] = 0;
	while (ff_fs_readdir(fs, dir, cookie, name, sizeof(name), &st, &next) == 0) {
		strncat(out, name, len - strlen(out) - 2);
		strcat(out, " ");
		cookie = next;
	}
}

/* A whiteout: a character device 0/0, mode 0, owned by cr. */
static void assert_whiteout(struct ff_fs *fs, uint64_t dir, const char *name)
{
	struct stat st;

	assert_int_equal(ff_fs_lookup(fs, dir, name, &st), 0);
	assert_int_equal(st.st_mode, S_IFCHR);
	assert_int_equal(st.st_rdev, 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, cr.uid);
	assert_int_equal(st.st_gid, cr.gid);
}

/*
 * RENAME_WHITEOUT (overlayfs's): the file moves, a whiteout takes the old
 * name, in one operation: over an existing name (freed), across
 * directories, both names listed by readdir, and so after a remount and
 * after a power cut that follows the directory's fsync. With EXCHANGE it is
 * EINVAL; with NOREPLACE over a name, EEXIST, and nothing changes.
 */
static void test_posix_rename_whiteout(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300], names[256];
	struct ff_fs *fs2;
	struct stat st;
	uint64_t d, a, b, x;

	mount_vlog(p, vlog, sizeof(vlog));
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	a = mkfile(p, d, "a");
	assert_int_equal(ff_fs_write(p->fs, a, "alpha", 5, 0, 0), 5);
	b = mkfile(p, d, "b");
	x = mkfile(p, p->root, "x");
	assert_int_equal(
		ff_fs_rename(p->fs, d, "a", d, "b", FF_RENAME_WHITEOUT | FF_RENAME_EXCHANGE, &cr),
		-EINVAL);
	assert_int_equal(
		ff_fs_rename(p->fs, d, "a", d, "b", FF_RENAME_WHITEOUT | FF_RENAME_NOREPLACE, &cr),
		-EEXIST);
	assert_int_equal(lookup(p, d, "a"), a);
	assert_int_equal(ff_fs_rename(p->fs, d, "a", d, "b", FF_RENAME_WHITEOUT, &cr), 0);
	assert_int_equal(lookup(p, d, "b"), a);
	assert_whiteout(p->fs, d, "a");
	assert_int_equal(ff_fs_getattr(p->fs, b, &st), 0); /* replaced: no name, still looked up */
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(ff_fs_release(p->fs, b, O_RDWR), 0);
	ff_fs_forget(p->fs, b, 1);
	assert_int_equal(ff_fs_getattr(p->fs, b, &st), -ENOENT); /* freed with its last use */
	assert_int_equal(ff_fs_rename(p->fs, p->root, "x", d, "y", FF_RENAME_WHITEOUT, &cr), 0);
	assert_int_equal(lookup(p, d, "y"), x);
	assert_whiteout(p->fs, p->root, "x");
	dir_names(p->fs, d, names, sizeof(names));
	assert_string_equal(names, "b a y ");
	assert_int_equal(ff_fs_fsyncdir(p->fs, d, false), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_whiteout(fs2, d, "a");
	assert_whiteout(fs2, p->root, "x");
	assert_int_equal(ff_fs_lookup(fs2, d, "b", &st), 0);
	assert_int_equal(st.st_ino, a);
	dir_names(fs2, d, names, sizeof(names));
	assert_string_equal(names, "b a y ");
	cut_done(fs2, copy, vcopy, vlog);
	remount(p);
	assert_whiteout(p->fs, d, "a");
	assert_int_equal(lookup(p, d, "b"), a);
	assert_int_equal(lookup(p, d, "y"), x);
	{
		char rd[8];

		assert_int_equal(ff_fs_read(p->fs, a, rd, sizeof(rd), 0), 5);
		assert_memory_equal(rd, "alpha", 5);
	}
	/* a whiteout is a name like any: it goes with unlink */
	assert_int_equal(ff_fs_unlink(p->fs, d, "a"), 0);
	assert_int_equal(ff_fs_lookup(p->fs, d, "a", &st), -ENOENT);
}

/*
 * The end block of a file that a crash left with bytes past its size (an
 * O_DIRECT rewrite of that block, out of place with its data header, whose
 * size the crash lost), grown later by buffered writes over it and then by
 * an O_DSYNC write further on, then a power cut: the bytes between the old
 * size and the sync write read zeros (or the buffered data), never the old
 * write's. On sequential zones only: on conventional space the rewrite is
 * in place, with no header to tell the mount (docs/posix-format.md, 7).
 */
/*
 * A write past the end that the first cut loses leaves its bytes on the
 * device past the size; after the remount the file grows past them again,
 * by a buffered write that covers them only in the cache, and a sync write
 * makes the larger size durable: the second cut must not show them. at_end:
 * the sync write appends at the size (no zeros of its own before it), else
 * it leaves a hole.
 */
static void stale_tail_after_two_cuts(struct px *p, bool at_end)
{
	char vlog[300], copy[300], vcopy[300];
	uint8_t *buf = tu_alloc(8 * BLK), *rd = tu_alloc(8 * BLK);
	const uint64_t S = 16 * BLK + 1000, B = 16 * BLK, W = at_end ? B + 500 + 3 * BLK : 40 * BLK;
	struct ff_cut_stats cs;
	struct ff_fs *fs2;
	struct stat st;
	uint64_t f;

	f = mkfile(p, p->root, "f");
	memset(buf, 0x11, 8 * BLK);
	for (uint64_t o = 0; o < S; o += 1000)
		assert_int_equal(ff_fs_write(p->fs, f, buf, o + 1000 > S ? S - o : 1000, o, 0),
				 (ssize_t)(o + 1000 > S ? S - o : 1000));
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	mount_vlog(p, vlog, sizeof(vlog));
	memset(buf, 0xdd, BLK);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, B, FF_CW_DIRECT), BLK);
	/* the first cut keeps every write the device took: the header, not the size */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	snprintf(vcopy, sizeof(vcopy), "%s.crash.vlog", p->path);
	tu_copy_image(p->path, copy);
	tu_copy_image(vlog, vcopy);
	assert_int_equal(ff_fault_apply_cut(copy, vcopy, 1, 100, &cs), 0);
	unlink(vcopy);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	unlink(vlog);
	tu_copy_image(copy, p->path);
	unlink(copy);
	do_mount_path(p, p->path);
	mount_vlog(p, vlog, sizeof(vlog));
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, S);
	memset(buf, 0x22, 8 * BLK);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 3 * BLK, B + 500, 0), 3 * BLK);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 100, W, FF_CW_DSYNC), 100);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, W + 100);
	assert_int_equal(ff_fs_read(fs2, f, rd, BLK, B), BLK);
	for (uint64_t k = S - B; k < BLK; k++)
		if (rd[k] != 0 && rd[k] != 0x22)
			fail_msg("byte %llu is %#x: the old write's, past the size it had",
				 (unsigned long long)(B + k), rd[k]);
	cut_done(fs2, copy, vcopy, vlog);
	free(buf);
	free(rd);
}

static void test_posix_stale_tail_after_two_cuts(void **state)
{
	stale_tail_after_two_cuts(*state, false);
}

static void test_posix_stale_tail_sync_append(void **state)
{
	stale_tail_after_two_cuts(*state, true);
}

static void test_posix_power_cut(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300];
	uint8_t *buf = tu_alloc(16 * BLK), *rd = tu_alloc(16 * BLK);
	struct ff_fs *fs2;
	struct stat st;
	uint64_t d, f, g, h;

	mount_vlog(p, vlog, sizeof(vlog));
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	f = mkfile(p, d, "f");
	tu_fill(buf, 16 * BLK, 77);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 10 * BLK + 123, 0, 0), 10 * BLK + 123);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	g = mkfile(p, d, "g");
	assert_int_equal(ff_fs_write(p->fs, g, buf, 3 * BLK, 0, FF_CW_DSYNC), 3 * BLK);
	h = mkfile(p, p->root, "tmp");
	assert_int_equal(ff_fs_write(p->fs, h, "new", 3, 0, 0), 3);
	assert_int_equal(ff_fs_fsync(p->fs, h, false), 0);
	assert_int_equal(ff_fs_rename(p->fs, p->root, "tmp", d, "f", 0, NULL), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, d, false), 0);
	/* not synced: may or may not survive, must not break anything */
	assert_int_equal(ff_fs_write(p->fs, g, buf, 2 * BLK, 3 * BLK, 0), 2 * BLK);
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "late", 0755, &cr, &st), 0);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_lookup(fs2, p->root, "d", &st), 0);
	assert_int_equal(ff_fs_lookup(fs2, d, "f", &st), 0);
	assert_int_equal(st.st_ino, h); /* the rename */
	assert_int_equal(ff_fs_read(fs2, h, rd, 16, 0), 3);
	assert_memory_equal(rd, "new", 3);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), -ENOENT); /* replaced, freed */
	assert_int_equal(ff_fs_lookup(fs2, d, "g", &st), 0);
	assert_true(st.st_size == 3 * BLK || st.st_size == 5 * BLK);
	assert_int_equal(ff_fs_read(fs2, g, rd, 3 * BLK, 0), 3 * BLK);
	assert_memory_equal(rd, buf, 3 * BLK);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	/* mount again: the crashed copy stays consistent */
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_lookup(fs2, d, "f", &st), 0);
	cut_done(fs2, copy, vcopy, vlog);
	(void)f;
	free(buf);
	free(rd);
}

/*
 * An O_DSYNC write inside the size, in place, after truncates that are not
 * durable (the file grew from 56 bytes to 58136, then shrank to 2024): the
 * write is acknowledged, so a power cut must leave the file at least as
 * long as its end, with its bytes, as XFS does (a truncate is a change a
 * datasync write makes durable). The write goes in place, where it writes
 * no record: the truncates' records must be committed before it.
 */
static void test_posix_dsync_after_truncate(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300];
	uint8_t buf[1024], rd[1024];
	struct ff_fs *fs2;
	struct stat st;
	uint64_t f;

	mount_vlog(p, vlog, sizeof(vlog));
	f = mkfile(p, p->root, "f");
	tu_fill(buf, sizeof(buf), 5);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 56, 0, 0), 56);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	st.st_size = 58136;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	st.st_size = 2024;
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	tu_fill(buf, sizeof(buf), 6);
	assert_int_equal(ff_fs_write(p->fs, f, buf, sizeof(buf), 608, FF_CW_DSYNC), sizeof(buf));
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_true(st.st_size >= 608 + (off_t)sizeof(buf));
	assert_int_equal(ff_fs_read(fs2, f, rd, sizeof(rd), 608), sizeof(rd));
	assert_memory_equal(rd, buf, sizeof(buf));
	cut_done(fs2, copy, vcopy, vlog);
}

/*
 * Changes nobody syncs (a mkdir, a create with no write, a rename, an
 * unlink, a chmod, the mtime of a write that logs nothing) are durable
 * within the commit interval, as ext4's commit=N makes them: sync(2)
 * never reaches a FUSE daemon, so nothing else would bound what a power
 * cut an hour later takes back.
 */
static void test_posix_commit_interval(void **state)
{
	struct px *p = *state;
	char vlog[300], copy[300], vcopy[300];
	struct ff_fs *fs2;
	struct stat st;
	struct timespec mt;
	char rd[9];
	uint64_t d, a, gone, m, n0, n, t;

	gone = mkfile(p, p->root, "gone");
	m = mkfile(p, p->root, "m");
	assert_int_equal(ff_fs_write(p->fs, m, "old bytes", 9, 0, 0), 9);
	assert_int_equal(ff_fs_fsync(p->fs, m, false), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	p->o.commit_s = 1;
	mount_vlog(p, vlog, sizeof(vlog));
	/* changes while the committer runs: for the sanitizers, and its ticks land among them */
	n0 = stat_of(p, "log_writes");
	for (t = 0; stat_of(p, "log_writes") < n0 + 2 && t < 60000; t++) {
		uint64_t x = mkfile(p, p->root, "x");

		assert_int_equal(ff_fs_rename(p->fs, p->root, "x", p->root, "y", 0, NULL), 0);
		assert_int_equal(ff_fs_unlink(p->fs, p->root, "y"), 0);
		ff_fs_forget(p->fs, x, 1);
		usleep(1000);
	}
	assert_true(stat_of(p, "log_writes") >= n0 + 2);
	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	a = mkfile(p, p->root, "a");
	assert_int_equal(ff_fs_rename(p->fs, p->root, "a", d, "b", 0, NULL), 0);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "gone"), 0);
	st.st_mode = S_IFDIR | 0700;
	assert_int_equal(ff_fs_setattr(p->fs, d, &st, FF_SET_MODE), 0);
	/* an O_DSYNC overwrite writes its data alone (in place, or a data header): its mtime */
	assert_int_equal(ff_fs_getattr(p->fs, m, &st), 0);
	mt = st.st_mtim;
	assert_int_equal(ff_fs_write(p->fs, m, "new", 3, 0, FF_CW_DSYNC), 3);
	assert_int_equal(ff_fs_getattr(p->fs, m, &st), 0);
	assert_true(st.st_mtim.tv_sec != mt.tv_sec || st.st_mtim.tv_nsec != mt.tv_nsec);
	mt = st.st_mtim;
	/*
	 * The committer writes the log (log_writes counts a write once it is
	 * done); one that started between two of the changes is followed by
	 * another, so wait for the count to stand still for two intervals.
	 */
	n0 = stat_of(p, "log_writes");
	for (t = 0; stat_of(p, "log_writes") == n0 && t < 600; t++)
		usleep(100 * 1000);
	assert_true(stat_of(p, "log_writes") > n0);
	do {
		n = stat_of(p, "log_writes");
		usleep(2500 * 1000);
	} while (stat_of(p, "log_writes") != n);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_lookup(fs2, p->root, "d", &st), 0);
	assert_int_equal(st.st_ino, d);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(ff_fs_lookup(fs2, d, "b", &st), 0);
	assert_int_equal(st.st_ino, a);
	assert_int_equal(ff_fs_lookup(fs2, p->root, "a", &st), -ENOENT);
	assert_int_equal(ff_fs_lookup(fs2, p->root, "gone", &st), -ENOENT);
	assert_int_equal(ff_fs_getattr(fs2, gone, &st), -ENOENT);
	assert_int_equal(ff_fs_getattr(fs2, m, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, mt.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, mt.tv_nsec);
	assert_int_equal(ff_fs_read(fs2, m, rd, 9, 0), 9);
	assert_memory_equal(rd, "new bytes", 9);
	cut_done(fs2, copy, vcopy, vlog);
}

/*
 * O_SYNC is file integrity (POSIX's synchronized I/O): an acknowledged
 * O_SYNC append has its mtime durable as well as its bytes and size, with no
 * log write of its own. Two ways, both checked: the header written with the
 * data carries the time, and the mount applies the time of a file's newest
 * header that it rolls forward (f and h: the last appends, after the last
 * commit); once another file's fsync commits the append's EXTENT record the
 * mount applies no header of it, and the INODE record queued with that
 * record has the time (k). A time set into the future, then replaced by an
 * append's stamp, comes back as the stamp (h: the newest header's time, not
 * the latest time); a utimes made durable after an append stands (g).
 */
static void test_posix_sync_append_mtime(void **state)
{
	struct px *p = *state;
	struct px_fs *fs;
	char vlog[300], copy[300], vcopy[300];
	uint8_t *buf = tu_alloc(3 * BLK);
	struct ff_fs *fs2;
	struct stat st, sf, sh, sk;
	struct timespec t;
	uint64_t f, g, h, k, floor_ns, lw;

	f = mkfile(p, p->root, "f");
	g = mkfile(p, p->root, "g");
	h = mkfile(p, p->root, "h");
	k = mkfile(p, p->root, "k");
	tu_fill(buf, 3 * BLK, 21);
	for (size_t n = 0; n < 4; n++) {
		uint64_t x = (uint64_t[]){f, g, h, k}[n];

		assert_int_equal(ff_fs_write(p->fs, x, buf, BLK, 0, 0), BLK);
		assert_int_equal(ff_fs_fsync(p->fs, x, false), 0);
	}
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	mount_vlog(p, vlog, sizeof(vlog));
	fs = (struct px_fs *)p->fs;
	/* the coarse clock stands at the floor: each write's stamp is the floor set before it */
	clock_gettime(CLOCK_REALTIME, &t);
	floor_ns = ((uint64_t)t.tv_sec + 3600) * 1000000000u;
	/* h: a time in the future, durable */
	st.st_mtim.tv_sec = t.tv_sec + 86400;
	st.st_mtim.tv_nsec = 5;
	assert_int_equal(ff_fs_setattr(p->fs, h, &st, FF_SET_MTIME), 0);
	assert_int_equal(ff_fs_fsync(p->fs, h, false), 0);
	/* f and k appended, g appended then given an old mtime, all committed by g's fsync */
	atomic_store(&fs->time_floor, floor_ns);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, BLK, FF_CW_SYNC), BLK);
	atomic_store(&fs->time_floor, floor_ns + 1000);
	assert_int_equal(ff_fs_write(p->fs, k, buf, BLK, BLK, FF_CW_SYNC), BLK);
	assert_int_equal(ff_fs_getattr(p->fs, k, &sk), 0);
	assert_int_equal(sk.st_mtim.tv_sec, (time_t)((floor_ns + 1000) / 1000000000u));
	assert_int_equal(sk.st_mtim.tv_nsec, (long)((floor_ns + 1000) % 1000000000u));
	assert_int_equal(ff_fs_write(p->fs, g, buf, BLK, BLK, FF_CW_SYNC), BLK);
	st.st_mtim.tv_sec = 1000;
	st.st_mtim.tv_nsec = 7;
	assert_int_equal(ff_fs_setattr(p->fs, g, &st, FF_SET_MTIME), 0);
	assert_int_equal(ff_fs_fsync(p->fs, g, false), 0);
	/* f and h appended after the last commit: only their headers have the times */
	lw = stat_of(p, "log_writes");
	atomic_store(&fs->time_floor, floor_ns + 2000);
	assert_int_equal(ff_fs_write(p->fs, f, buf + BLK, 2 * BLK, 2 * BLK, FF_CW_SYNC), 2 * BLK);
	assert_int_equal(ff_fs_write(p->fs, h, buf, BLK, BLK, FF_CW_SYNC), BLK);
	assert_int_equal(stat_of(p, "log_writes"), lw);
	assert_int_equal(ff_fs_getattr(p->fs, f, &sf), 0);
	assert_int_equal(sf.st_mtim.tv_sec, (time_t)((floor_ns + 2000) / 1000000000u));
	assert_int_equal(sf.st_mtim.tv_nsec, (long)((floor_ns + 2000) % 1000000000u));
	assert_int_equal(ff_fs_getattr(p->fs, h, &sh), 0);
	assert_true(sh.st_mtim.tv_sec < t.tv_sec + 86400);
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, 4 * BLK);
	assert_int_equal(st.st_mtim.tv_sec, sf.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, sf.st_mtim.tv_nsec);
	assert_int_equal(st.st_ctim.tv_sec, sf.st_ctim.tv_sec);
	assert_int_equal(st.st_ctim.tv_nsec, sf.st_ctim.tv_nsec);
	assert_int_equal(ff_fs_getattr(fs2, h, &st), 0);
	assert_int_equal(st.st_size, 2 * BLK);
	assert_int_equal(st.st_mtim.tv_sec, sh.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, sh.st_mtim.tv_nsec);
	assert_int_equal(ff_fs_getattr(fs2, k, &st), 0);
	assert_int_equal(st.st_size, 2 * BLK);
	assert_int_equal(st.st_mtim.tv_sec, sk.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, sk.st_mtim.tv_nsec);
	assert_int_equal(ff_fs_getattr(fs2, g, &st), 0);
	assert_int_equal(st.st_size, 2 * BLK);
	assert_int_equal(st.st_mtim.tv_sec, 1000);
	assert_int_equal(st.st_mtim.tv_nsec, 7);
	cut_done(fs2, copy, vcopy, vlog);
	free(buf);
}

/*
 * O_SYNC is file integrity: an overwrite's new mtime is durable when the
 * write returns, also in place on conventional space, where no header
 * carries it (the log is committed then, once a clock tick).
 */
static void test_posix_sync_overwrite_mtime(void **state)
{
	struct px *p = *state;
	struct px_fs *fs;
	char vlog[300], copy[300], vcopy[300];
	uint8_t *buf = tu_alloc(4 * BLK);
	struct ff_fs *fs2;
	struct stat st, sf;
	struct timespec t;
	uint64_t f, floor_ns, lw;

	f = mkfile(p, p->root, "f");
	tu_fill(buf, 4 * BLK, 23);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4 * BLK, 0, 0), 4 * BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	mount_vlog(p, vlog, sizeof(vlog));
	fs = (struct px_fs *)p->fs;
	clock_gettime(CLOCK_REALTIME, &t);
	floor_ns = ((uint64_t)t.tv_sec + 3600) * 1000000000u;
	atomic_store(&fs->time_floor, floor_ns);
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, BLK, FF_CW_SYNC), BLK);
	/* the same tick, the times not read since: they do not change, nothing more is logged */
	lw = stat_of(p, "log_writes");
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 2 * BLK, FF_CW_SYNC), BLK);
	assert_int_equal(stat_of(p, "log_writes"), lw);
	assert_int_equal(ff_fs_getattr(p->fs, f, &sf), 0);
	assert_int_equal(sf.st_mtim.tv_sec, (time_t)(floor_ns / 1000000000u));
	cut_mount(p, vlog, copy, vcopy, sizeof(copy), &fs2);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, 4 * BLK);
	assert_int_equal(st.st_mtim.tv_sec, sf.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, sf.st_mtim.tv_nsec);
	assert_int_equal(st.st_ctim.tv_sec, sf.st_ctim.tv_sec);
	cut_done(fs2, copy, vcopy, vlog);
	free(buf);
}

/* ---- power cut under concurrent writers ---- */

#define PC_MAX (2u << 20)

struct pc_arg {
	struct px *p;
	uint64_t ino;
	unsigned seed;
	uint8_t *model;	  /* what was written, by offset */
	uint8_t *durable; /* 1: this byte is durable (fsync'd or written by a sync write) */
	uint64_t size, fsync_size;
	pthread_rwlock_t *gate;
	_Atomic bool *stop;
	_Atomic int *ops;
	int fail;
};

static void *pc_writer(void *arg)
{
	struct pc_arg *a = arg;
	uint8_t *buf = malloc(32 << 10);

	while (!atomic_load(a->stop) && !a->fail) {
		uint64_t len = 1 + rand_r(&a->seed) % (24 << 10), off = a->size;
		int kind = rand_r(&a->seed) % 4;

		if (off + len > PC_MAX)
			break;
		tu_fill(buf, len, a->seed);
		pthread_rwlock_rdlock(a->gate);
		if (ff_fs_write(a->p->fs, a->ino, buf, len, off, kind == 1 ? FF_CW_DSYNC : 0) !=
		    (ssize_t)len)
			a->fail = 1;
		memcpy(a->model + off, buf, len);
		a->size = off + len;
		if (kind == 1)
			memset(a->durable + off, 1, len);
		if (kind == 2) {
			if (ff_fs_fsync(a->p->fs, a->ino, rand_r(&a->seed) % 2))
				a->fail = 2;
			memset(a->durable, 1, a->size);
			a->fsync_size = a->size;
		}
		pthread_rwlock_unlock(a->gate);
		atomic_fetch_add(a->ops, 1);
	}
	free(buf);
	return NULL;
}

struct pc_exp {
	uint8_t *model, *durable;
	uint64_t fsync_size, size;
};

/* Mount the cut copy and check each file against what was expected at the cut. */
static void pc_check(struct px *p, const char *copy, struct pc_arg *a, struct pc_exp *e, int nf)
{
	uint8_t *rd = malloc(PC_MAX);
	struct ff_fs *fs2;

	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	for (int t = 0; t < nf; t++) {
		struct stat st;
		uint64_t n;

		assert_int_equal(ff_fs_getattr(fs2, a[t].ino, &st), 0);
		n = (uint64_t)st.st_size;
		print_message("cut: file %d size %llu (fsync'd %llu, written %llu)\n", t,
			      (unsigned long long)n, (unsigned long long)e[t].fsync_size,
			      (unsigned long long)e[t].size);
		assert_true(n >= e[t].fsync_size);
		assert_true(n <= e[t].size);
		assert_int_equal(ff_fs_read(fs2, a[t].ino, rd, PC_MAX, 0), (ssize_t)n);
		for (uint64_t k = 0; k < n; k++)
			if (e[t].durable[k] || rd[k])
				assert_int_equal(rd[k], e[t].model[k]);
		for (uint64_t k = n; k < PC_MAX; k++)
			assert_false(e[t].durable[k]);
	}
	assert_int_equal(ff_fs_unmount(fs2), 0);
	free(rd);
}

/*
 * Writers append to their files (buffered, O_DSYNC, fsync) while the image
 * is cut at three points, keeping none of the non-durable writes: each file
 * is at least as long as when last fsync'd, every durable byte holds what was
 * written, and every other byte holds what was written or zero.
 */
static void test_posix_power_cut_writers(void **state)
{
	struct px *p = *state;
	enum { T = 3 };
	static const int cut_at[] = {10, 60, 200};
	char vlog[300], copy[300], vcopy[300], env[400];
	pthread_rwlock_t gate;
	pthread_rwlockattr_t ga;
	_Atomic bool stop = false;
	_Atomic int ops = 0;
	struct pc_arg a[T];
	struct pc_exp e[T];
	pthread_t th[T];

	/* the cut must not wait behind a stream of writers */
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&gate, &ga);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	snprintf(vlog, sizeof(vlog), "%s.vlog", p->path);
	snprintf(env, sizeof(env), "vlog=%s", vlog);
	setenv("FOLIOFS_FAULT", env, 1);
	do_mount_path(p, p->path);
	unsetenv("FOLIOFS_FAULT");
	for (int t = 0; t < T; t++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "pc%d", t);
		a[t] = (struct pc_arg){.p = p,
				       .ino = mkfile(p, p->root, nm),
				       .seed = 500 + (unsigned)t,
				       .model = calloc(1, PC_MAX),
				       .durable = calloc(1, PC_MAX),
				       .gate = &gate,
				       .stop = &stop,
				       .ops = &ops};
		e[t].model = malloc(PC_MAX);
		e[t].durable = malloc(PC_MAX);
	}
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	for (int t = 0; t < T; t++)
		assert_int_equal(pthread_create(&th[t], NULL, pc_writer, &a[t]), 0);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	snprintf(vcopy, sizeof(vcopy), "%s.crash.vlog", p->path);
	for (size_t c = 0; c < sizeof(cut_at) / sizeof(cut_at[0]); c++) {
		while (atomic_load(&ops) < cut_at[c])
			usleep(200); /* a trigger, not a check: the cut lands after that many ops */
		/* the cut: no operation in flight, the expectations as they are */
		pthread_rwlock_wrlock(&gate);
		tu_copy_image(p->path, copy);
		tu_copy_image(vlog, vcopy);
		for (int t = 0; t < T; t++) {
			memcpy(e[t].model, a[t].model, PC_MAX);
			memcpy(e[t].durable, a[t].durable, PC_MAX);
			e[t].fsync_size = a[t].fsync_size;
			e[t].size = a[t].size;
		}
		pthread_rwlock_unlock(&gate);
		assert_int_equal(ff_fault_apply_cut(copy, vcopy, c + 1, 0, NULL), 0);
		pc_check(p, copy, a, e, T);
		assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(a[t].fail, 0);
		free(a[t].model);
		free(a[t].durable);
		free(e[t].model);
		free(e[t].durable);
	}
	pthread_rwlock_destroy(&gate);
	pthread_rwlockattr_destroy(&ga);
	unlink(copy);
	unlink(vcopy);
	unlink(vlog);
}

/* Enough metadata to rotate the log through every metadata zone, then remount. */
static void test_posix_log_rotation(void **state)
{
	struct px *p = *state;
	struct stat st;
	char name[64];
	uint8_t *val = tu_alloc(60000), *rd = tu_alloc(60000);
	uint64_t c0 = stat_of(p, "checkpoints"), f = mkfile(p, p->root, "x");

	for (int k = 0; k < 600; k++) {
		snprintf(name, sizeof(name), "r%d", k % 50);
		if (ff_fs_mknod(p->fs, p->root, name, S_IFREG | 0644, 0, &cr, &st) == -EEXIST)
			assert_int_equal(ff_fs_unlink(p->fs, p->root, name), 0);
		tu_fill(val, 60000, (unsigned)k);
		assert_int_equal(ff_fs_setxattr(p->fs, f, "user.big", val, 60000, 0), 0);
		assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	}
	assert_true(stat_of(p, "checkpoints") - c0 >= 3);
	assert_int_equal(ff_fs_mknod(p->fs, p->root, "final", S_IFREG | 0644, 0, &cr, &st), 0);
	remount(p);
	/* each name was made and removed 6 times */
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "r48", &st), -ENOENT);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "final", &st), 0);
	assert_int_equal(ff_fs_getxattr(p->fs, f, "user.big", rd, 60000), 60000);
	assert_memory_equal(rd, val, 60000);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
	free(val);
	free(rd);
}

/* ---- checkpoints longer than a metadata zone ---- */

#define SPAN_FILES 20
#define SPAN_VAL   60000

static void span_val(uint8_t *v, int it, int f)
{
	tu_fill(v, SPAN_VAL, (unsigned)(it * 131 + f + 1));
}

/* SPAN_FILES files with a 60000-byte xattr each (iteration -1): a checkpoint of 1.2 MB */
static void span_build(struct px *p, uint64_t *ino)
{
	uint8_t *v = tu_alloc(SPAN_VAL);
	struct stat st;
	char name[32];

	for (int f = 0; f < SPAN_FILES; f++) {
		snprintf(name, sizeof(name), "x%02d", f);
		assert_int_equal(ff_fs_mknod(p->fs, p->root, name, S_IFREG | 0644, 0, &cr, &st), 0);
		ino[f] = st.st_ino;
		span_val(v, -1, f);
		assert_int_equal(ff_fs_setxattr(p->fs, ino[f], "user.big", v, SPAN_VAL, 0), 0);
	}
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	free(v);
}

/*
 * Iterations it0.. of rewriting file it % SPAN_FILES's xattr and fsyncing it,
 * until one fails (the device died) or n ran; done[f] gets the last iteration
 * whose fsync succeeded, *tried the one that failed (or -2). *spanned: a
 * checkpoint took more than one zone.
 */
static void span_run(struct px *p, const uint64_t *ino, int n, int *done, int *tried, bool *spanned)
{
	struct px_fs *px = (struct px_fs *)p->fs;
	uint8_t *v = tu_alloc(SPAN_VAL);

	*tried = -2;
	for (int it = 0; it < n; it++) {
		int f = it % SPAN_FILES;

		span_val(v, it, f);
		if (ff_fs_setxattr(p->fs, ino[f], "user.big", v, SPAN_VAL, 0) ||
		    ff_fs_fsync(p->fs, ino[f], false)) {
			*tried = it;
			break;
		}
		done[f] = it;
		if (spanned && px->cp_idx != px->log_idx)
			*spanned = true;
	}
	free(v);
}

/* Each file's xattr is its done[] iteration's, or the failed one's on its file. */
static void span_check(struct px *p, const uint64_t *ino, const int *done, int tried)
{
	uint8_t *v = tu_alloc(SPAN_VAL), *rd = tu_alloc(SPAN_VAL);

	for (int f = 0; f < SPAN_FILES; f++) {
		assert_int_equal(ff_fs_getxattr(p->fs, ino[f], "user.big", rd, SPAN_VAL), SPAN_VAL);
		span_val(v, done[f], f);
		if (memcmp(rd, v, SPAN_VAL) && tried >= 0 && tried % SPAN_FILES == f)
			span_val(v, tried, f);
		if (memcmp(rd, v, SPAN_VAL))
			fail_msg("file %d: its xattr is not iteration %d's (nor %d's)", f, done[f],
				 tried);
	}
	free(v);
	free(rd);
}

static void test_posix_checkpoint_spans_zones(void **state)
{
	struct px *p = *state;
	struct px_fs *px = (struct px_fs *)p->fs;
	uint64_t ino[SPAN_FILES], c0;
	int done[SPAN_FILES], tried;
	bool spanned = false;

	assert_int_equal(px->meta_count, 4);
	assert_true(px->features & PX_FEAT_MZCHAIN);
	span_build(p, ino);
	for (int f = 0; f < SPAN_FILES; f++)
		done[f] = -1;
	c0 = stat_of(p, "checkpoints");
	span_run(p, ino, 200, done, &tried, &spanned);
	assert_int_equal(tried, -2);
	assert_true(spanned);
	assert_true(stat_of(p, "checkpoints") - c0 >= 4); /* round the four zones at least once */
	remount(p);
	span_check(p, ino, done, -2);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
}

/*
 * Names fill the room a checkpoint has (four metadata zones of 1 MiB: two of
 * them, less their ends and the log's quarter zone): a create, a link and
 * an xattr then get ENOSPC, statfs shows no inode free, and the filesystem
 * goes on: writes and fsyncs of existing files, unlinks, and creates again
 * once names are gone; all of it through a remount, fsck clean.
 */
static void test_posix_metadata_full(void **state)
{
	struct px *p = *state;
	struct statvfs sv;
	struct stat st;
	uint8_t blk[BLK];
	char name[64];
	uint64_t d, f0 = 0;
	int n = 0, left;

	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	assert_true(sv.f_ffree > 4000 && sv.f_ffree < 10000);
	for (;; n++) {
		int r;

		snprintf(name, sizeof(name), "a-file-name-of-some-length-%06d", n);
		r = ff_fs_mknod(p->fs, d, name, S_IFREG | 0644, 0, &cr, &st);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		if (!n)
			f0 = st.st_ino;
		else /* the kernel's forget: an unlinked inode still looked up stays */
			ff_fs_forget(p->fs, (uint64_t)st.st_ino, 1);
		assert_true(n < 20000);
	}
	assert_true(n > 4000);
	/* a link takes less than a create: the room left holds a few at most */
	for (int k = 0;; k++) {
		int r;

		snprintf(name, sizeof(name), "link-%d", k);
		r = ff_fs_link(p->fs, f0, d, name, &st);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		ff_fs_forget(p->fs, f0, 1);
		assert_true(k < 8);
	}
	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	assert_true(sv.f_ffree <= 2);
	memset(blk, 'v', BLK);
	assert_int_equal(ff_fs_setxattr(p->fs, f0, "user.k", blk, BLK, 0), -ENOSPC);
	/* not shut down: data still goes in, and names go */
	tu_fill(blk, BLK, 3);
	assert_int_equal(ff_fs_write(p->fs, f0, blk, BLK, 0, 0), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f0, false), 0);
	for (int k = n - 1; k >= n - 2000; k--) {
		snprintf(name, sizeof(name), "a-file-name-of-some-length-%06d", k);
		assert_int_equal(ff_fs_unlink(p->fs, d, name), 0);
	}
	assert_int_equal(ff_fs_statfs(p->fs, &sv), 0);
	for (left = n - 2000; left < n - 1000; left++) {
		snprintf(name, sizeof(name), "a-file-name-of-some-length-%06d", left);
		assert_int_equal(ff_fs_mknod(p->fs, d, name, S_IFREG | 0644, 0, &cr, &st), 0);
		ff_fs_forget(p->fs, (uint64_t)st.st_ino, 1);
	}
	assert_int_equal(ff_fs_fsyncdir(p->fs, d, false), 0);
	ff_fs_forget(p->fs, f0, 1);
	remount(p);
	assert_int_equal(ff_fs_lookup(p->fs, p->root, "d", &st), 0);
	d = st.st_ino;
	for (int k = 0; k < n; k++) {
		snprintf(name, sizeof(name), "a-file-name-of-some-length-%06d", k);
		assert_int_equal(ff_fs_lookup(p->fs, d, name, &st), k < left ? 0 : -ENOENT);
		if (k < left)
			ff_fs_forget(p->fs, (uint64_t)st.st_ino, 1);
	}
	snprintf(name, sizeof(name), "a-file-name-of-some-length-%06d", 0);
	assert_int_equal(ff_fs_lookup(p->fs, d, name, &st), 0);
	assert_int_equal(ff_fs_read(p->fs, (uint64_t)st.st_ino, blk, BLK, 0), BLK);
	ff_fs_forget(p->fs, (uint64_t)st.st_ino, 1);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
}

/*
 * The device dies after each number of writes in turn, so that a crash
 * falls between every two parts of the checkpoints the run writes: the
 * mount then uses the whole one before, every fsync'd xattr is there, and
 * fsck finds nothing.
 */
static void test_posix_checkpoint_spans_crash(void **state)
{
	struct px *p = *state;
	char base[300], env[64];
	uint64_t ino[SPAN_FILES];
	int points = 0;

	span_build(p, ino);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	snprintf(base, sizeof(base), "%s.base", p->path);
	tu_copy_image(p->path, base);
	for (int n = 1;; n += TU_STEP) {
		int done[SPAN_FILES], tried, r;

		for (int f = 0; f < SPAN_FILES; f++)
			done[f] = -1;
		tu_copy_image(base, p->path);
		snprintf(env, sizeof(env), "dead_after=%d,dead_mode=eio", n);
		setenv("FOLIOFS_FAULT", env, 1);
		r = ff_fs_mount(p->path, &p->o, &p->fs);
		unsetenv("FOLIOFS_FAULT");
		tried = -3; /* the mount's own checkpoint met the dead device */
		if (r == 0) {
			span_run(p, ino, 60, done, &tried, NULL);
			(void)ff_fs_unmount(p->fs);
		}
		p->fs = NULL;
		do_mount_path(p, p->path);
		span_check(p, ino, done, tried);
		assert_int_equal(ff_fs_unmount(p->fs), 0);
		p->fs = NULL;
		assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
		points++;
		if (tried == -2)
			break; /* the device outlived the run */
	}
	print_message("checkpoint crash points: %d\n", points);
	assert_true(points * TU_STEP > 20);
	unlink(base);
	do_mount_path(p, p->path);
}

static void test_posix_statfs(void **state)
{
	struct px *p = *state;
	struct statvfs a, b;
	uint8_t *buf = tu_alloc(256 << 10);
	uint64_t f = mkfile(p, p->root, "sf");

	assert_int_equal(ff_fs_statfs(p->fs, &a), 0);
	assert_int_equal(a.f_namemax, 255);
	assert_true(a.f_bfree > 0 && a.f_bfree <= a.f_blocks);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 256 << 10, 0, FF_CW_DSYNC), 256 << 10);
	assert_int_equal(ff_fs_statfs(p->fs, &b), 0);
	assert_true(a.f_bfree - b.f_bfree >= 64);
	free(buf);
}

/*
 * Blocks of a removed file count as free at once, even in a zone that still
 * holds another file's data; f_bavail (what can be written now, without
 * garbage collection) stays at most f_bfree.
 */
/*
 * A buffered write's blocks count in st_blocks at once, before write-back
 * places them (as XFS counts delayed allocations): du and cp --sparse see
 * the file's size on disk, and it does not change at the fsync.
 */
static void test_posix_stblocks_delalloc(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(64 << 10);
	uint64_t f = mkfile(p, p->root, "da");
	struct stat st;

	tu_fill(buf, 64 << 10, 9);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 64 << 10, 0, 0), 64 << 10);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 100, (1 << 20) + 5, 0),
			 100); /* one block more */
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_blocks, ((64 << 10) + BLK) / 512);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_blocks, ((64 << 10) + BLK) / 512);
	/* an overwrite of placed blocks adds nothing */
	assert_int_equal(ff_fs_write(p->fs, f, buf, 8192, 4096, 0), 8192);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_blocks, ((64 << 10) + BLK) / 512);
	free(buf);
}

/*
 * st_blocks is kept as a running sum of the extents' lengths (a getattr of a
 * fragmented file must not walk its extents): after overwrites that split
 * and trim extents, holes punched, truncates and preallocation, it matches
 * the sum rebuilt from the checkpoint at the next mount.
 */
static void test_posix_stblocks_running_sum(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(64 << 10);
	uint64_t f = mkfile(p, p->root, "frag");
	uint64_t seed = 77;
	struct stat st;
	blkcnt_t before;

	tu_fill(buf, 64 << 10, 3);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 64 << 10, 0, FF_CW_DSYNC), 64 << 10);
	for (int n = 0; n < 400; n++) {
		uint64_t r, off, len;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		r = seed >> 33;
		off = (r % 96) * 1024 + (r % 7) * 100;
		len = 1 + (r >> 8) % (12 << 10);
		switch ((r >> 20) % 6) {
		case 0:
		case 1:
			assert_int_equal(ff_fs_write(p->fs, f, buf, len, off, FF_CW_DSYNC),
					 (ssize_t)len);
			break;
		case 2:
			assert_int_equal(ff_fs_write(p->fs, f, buf, len, off, 0), (ssize_t)len);
			break;
		case 3:
			assert_int_equal(ff_fs_fallocate(p->fs, f,
							 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
							 off, len),
					 0);
			break;
		case 4:
			assert_int_equal(ff_fs_fallocate(p->fs, f,
							 (r >> 24) & 1 ? FALLOC_FL_KEEP_SIZE : 0,
							 off, len),
					 0);
			break;
		default:
			memset(&st, 0, sizeof(st));
			st.st_size = (off_t)off;
			assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
			break;
		}
	}
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	before = st.st_blocks;
	assert_true(before > 0);
	remount(p);
	f = lookup(p, p->root, "frag");
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_blocks, before);
	free(buf);
}

static void test_posix_statfs_unlink(void **state)
{
	struct px *p = *state;
	struct statvfs a, b, c;
	uint8_t *buf = tu_alloc(1 << 20);
	uint64_t keep = mkfile(p, p->root, "keep"), f;

	assert_int_equal(ff_fs_write(p->fs, keep, buf, 8192, 0, FF_CW_DSYNC), 8192);
	assert_int_equal(ff_fs_statfs(p->fs, &a), 0);
	f = mkfile(p, p->root, "gone");
	for (int k = 0; k < 3; k++)
		assert_int_equal(
			ff_fs_write(p->fs, f, buf, 1 << 20, (uint64_t)k << 20, FF_CW_DSYNC),
			1 << 20);
	assert_int_equal(ff_fs_write(p->fs, keep, buf, 8192, 8192, FF_CW_DSYNC), 8192);
	assert_int_equal(ff_fs_statfs(p->fs, &b), 0);
	assert_true(a.f_bfree - b.f_bfree >= 3 * 256);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "gone"), 0);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	ff_fs_forget(p->fs, f, 1);
	assert_int_equal(ff_fs_statfs(p->fs, &c), 0);
	/* back but for keep's two new blocks */
	assert_true(c.f_bfree + 2 >= a.f_bfree);
	assert_true(c.f_bavail <= c.f_bfree);
	/* and the same after a remount */
	remount(p);
	assert_int_equal(ff_fs_statfs(p->fs, &c), 0);
	assert_true(c.f_bfree + 2 >= a.f_bfree);
	free(buf);
}

/*
 * Writes of 1 MiB (flags fl) fill the device. A write that meets the full
 * device returns what it wrote, or ENOSPC when it wrote nothing, and the
 * size says the same: what a write that failed placed past the size is not
 * the file's. Growing the file then reads zeros there (POSIX), and the
 * zones' valid-block counts match the extents, also in the checkpoint the
 * unmount writes (fsck -n finds no leaked space).
 */
static void full_write_case(struct px *p, unsigned fl)
{
	uint8_t *buf = tu_alloc(1 << 20), *rd = tu_alloc(2 << 20), *zero = tu_alloc(2 << 20);
	uint64_t f = mkfile(p, p->root, "full"), size = 0;
	struct stat st = {0};
	ssize_t r = 0;

	tu_fill(buf, 1 << 20, 17);
	for (int k = 0; k < 4096; k++) {
		r = ff_fs_write(p->fs, f, buf, 1 << 20, size, fl);
		if (r <= 0)
			break;
		assert_true(r % BLK == 0);
		size += (uint64_t)r;
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(size > 0);
	assert_int_equal(ff_fs_getattr(p->fs, f, &st), 0);
	assert_int_equal(st.st_size, size);
	st.st_size = (off_t)(size + (2 << 20));
	assert_int_equal(ff_fs_setattr(p->fs, f, &st, FF_SET_SIZE), 0);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 2 << 20, size), 2 << 20);
	assert_memory_equal(rd, zero, 2 << 20);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	unmount_fsck_mount(p);
	free(buf);
	free(rd);
	free(zero);
}

static void test_posix_full_direct(void **state)
{
	full_write_case(*state, FF_CW_DIRECT);
}

static void test_posix_full_direct_dsync(void **state)
{
	full_write_case(*state, FF_CW_DIRECT | FF_CW_DSYNC);
}

static void test_posix_full_sync(void **state)
{
	full_write_case(*state, FF_CW_SYNC);
}

/*
 * A filesystem made with --force over an older one: the old log's records
 * are still in the conventional metadata zones past the new log's end, with
 * valid crcs. The same workload on both (five files made and fsync'd, then
 * one) puts an old record, of the seq the new log expects next, right where
 * the new log ends; a crash there must not bring the old filesystem's files
 * (and their data) back, nor may the mount or fsck take the old records for
 * damage of the new log.
 */
static void test_posix_mkfs_over_old_log(void **state)
{
	static const char *names[] = {"a", "b", "c", "d", "e"};
	struct px *p = *state;
	struct ff_mkfs_opts mo = {.format = FF_FMT_POSIX, .force = true, .zone_size = ZS};
	char copy[300], summary[512];
	struct stat st;
	struct ff_fs *fs2;
	uint64_t root2;

	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < (round ? 1 : 5); k++) {
			uint64_t f = mkfile(p, p->root, names[k]);

			assert_int_equal(ff_fs_write(p->fs, f, names[k], 1, 0, FF_CW_DSYNC), 1);
			assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
			assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
		}
		if (round)
			break;
		assert_int_equal(ff_fs_unmount(p->fs), 0);
		p->fs = NULL;
		assert_int_equal(ff_fs_mkfs(p->path, &mo, summary, sizeof(summary)), 0);
		do_mount_path(p, p->path);
	}
	/* a crash now: the image as the device holds it */
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	tu_fs_mount(copy, &p->o, &fs2, &root2);
	assert_int_equal(ff_fs_lookup(fs2, root2, "a", &st), 0);
	for (int k = 1; k < 5; k++)
		if (ff_fs_lookup(fs2, root2, names[k], &st) != -ENOENT)
			fail_msg("'%s', a file of the filesystem mkfs replaced, is back", names[k]);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
}

/* ---- fsck ---- */

struct fsck_msgs {
	char last[256];
	int n;
};

static void fsck_msg(void *arg, const char *msg)
{
	struct fsck_msgs *m = arg;

	snprintf(m->last, sizeof(m->last), "%s", msg);
	m->n++;
}

static void fsck_note(void *arg, const char *msg)
{
	(void)arg;
	print_message("fsck note: %s\n", msg);
}

static uint32_t fsck_run(const char *path, unsigned flags, uint32_t *repaired)
{
	struct fsck_msgs m = {0};
	struct ff_fsck_report r = {.problem = fsck_msg, .note = fsck_note, .arg = &m};

	assert_int_equal(ff_fs_fsck(path, flags, &r), 0);
	assert_string_equal(r.format, "posix");
	if (flags & FF_FSCK_READ_ONLY)
		assert_int_equal(r.problems, (uint32_t)m.n);
	if (repaired)
		*repaired = r.repaired;
	if (m.n)
		print_message("fsck: %d problem(s), last: %s\n", m.n, m.last);
	return r.problems;
}

static void same_bytes(const char *a, const char *b)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	assert_int_equal(system(cmd), 0);
}

static void patch_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

/*
 * A superblock with a feature this foliofs does not know (a newer one made
 * it) is refused with EOPNOTSUPP, by the mount and by fsck, and nothing on
 * the image changes.
 */
/* Set and clear feature bits in both superblock copies of the unmounted image at path. */
static void sb_features(const char *path, uint64_t set, uint64_t clear)
{
	uint8_t *sb = tu_alloc(2 * BLK);
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, sb, 2 * BLK, 0), 2 * BLK);
	for (int c = 0; c < 2; c++) {
		uint8_t *b = sb + c * BLK;
		uint64_t f;
		uint32_t crc;

		memcpy(&f, b + PX_SB_FEATURES, 8);
		f = (f | set) & ~clear;
		memcpy(b + PX_SB_FEATURES, &f, 8);
		memset(b + PX_SB_CRC, 0, 4);
		crc = ff_crc32c(0, b, BLK);
		memcpy(b + PX_SB_CRC, &crc, 4);
	}
	assert_int_equal(pwrite(fd, sb, 2 * BLK, 0), 2 * BLK);
	close(fd);
	free(sb);
}

static void test_posix_newer_features_refused(void **state)
{
	struct px *p = *state;
	char copy[300];
	struct ff_fs *fs2 = NULL;
	struct ff_fsck_report r = {0};

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	sb_features(p->path, 1ull << 40, 0);
	snprintf(copy, sizeof(copy), "%s.copy", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(p->path, &p->o, &fs2), -EOPNOTSUPP);
	assert_int_equal(ff_fs_fsck(p->path, FF_FSCK_READ_ONLY, &r), 0);
	assert_true(r.problems > 0);
	same_bytes(p->path, copy);
	unlink(copy);
}

/*
 * An image made before PIECES (the bit clear): a writeback's scattered runs
 * are written as before, a header each (an older daemon mounting it would
 * not read a piece table), and read back after a crash and a remount.
 */
static void test_posix_pieces_need_feature(void **state)
{
	enum { N = 16 };
	struct px *p = *state;
	uint8_t *want = tu_alloc(2 * N * BLK);
	uint64_t f, h0, j0;

	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	sb_features(p->path, 0, PX_FEAT_PIECES);
	do_mount_path(p, p->path);
	memset(want, 0, 2 * N * BLK);
	f = mkfile(p, p->root, "np");
	write_scattered(p, f, want, N, 0, 3);
	h0 = stat_of(p, "data_header_writes");
	j0 = stat_of(p, "data_pieces_joined");
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	assert_int_equal(stat_of(p, "data_header_writes") - h0, N);
	assert_int_equal(stat_of(p, "data_pieces_joined") - j0, 0);
	reads_after_crash_and_remount(p, f, want, (2 * N - 1) * BLK);
	free(want);
}

/* A tree with every kind of object, data, a hard link and a removed file. */
static void fsck_tree(struct px *p)
{
	struct stat st;
	uint8_t *buf = tu_alloc(64 << 10);
	uint64_t d, f, g;

	assert_int_equal(ff_fs_mkdir(p->fs, p->root, "d", 0755, &cr, &st), 0);
	d = st.st_ino;
	assert_int_equal(ff_fs_mkdir(p->fs, d, "e", 0755, &cr, &st), 0);
	f = mkfile(p, d, "f");
	assert_int_equal(ff_fs_write(p->fs, f, buf, 64 << 10, 0, FF_CW_DSYNC), 64 << 10);
	assert_int_equal(ff_fs_write(p->fs, f, buf, 4096, 8192, FF_CW_DSYNC), 4096);
	assert_int_equal(ff_fs_link(p->fs, f, p->root, "hard", &st), 0);
	assert_int_equal(ff_fs_symlink(p->fs, d, "s", "f", &cr, &st), 0);
	g = mkfile(p, p->root, "g");
	assert_int_equal(ff_fs_write(p->fs, g, buf, 3000, 0, 0), 3000);
	assert_int_equal(ff_fs_fsync(p->fs, g, false), 0);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "g"), 0);
	assert_int_equal(ff_fs_release(p->fs, g, O_RDWR), 0);
	ff_fs_forget(p->fs, g, 1);
	assert_int_equal(ff_fs_setxattr(p->fs, f, "user.x", "y", 1, 0), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	free(buf);
}

/* The offset of the metadata zone with the newest valid-looking header. */
static uint64_t newest_meta_zone(const char *path)
{
	int fd = open(path, O_RDONLY);
	uint64_t best = 0, best_gen = 0;

	assert_true(fd >= 0);
	for (uint64_t z = 1; z <= 3; z++) {
		uint8_t h[24];

		assert_int_equal(pread(fd, h, sizeof(h), (off_t)(z * ZS)), (ssize_t)sizeof(h));
		if (!memcmp(h, "FOLIOMZH", 8)) {
			uint64_t gen;

			memcpy(&gen, h + 16, 8);
			if (gen > best_gen) {
				best_gen = gen;
				best = z * ZS;
			}
		}
	}
	close(fd);
	assert_true(best);
	return best;
}

/* A clean image, unmounted or as a crash leaves it, has no problem. */
static void test_posix_fsck_clean(void **state)
{
	struct px *p = *state;
	char copy[300];

	fsck_tree(p);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_fsck(p->path, FF_FSCK_READ_ONLY, &(struct ff_fsck_report){0}),
			 -EBUSY);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
}

/* A damaged superblock copy and a damaged checkpoint record are found; -n writes nothing. */
static void test_posix_fsck_corrupt(void **state)
{
	struct px *p = *state;
	char ref[300], copy[300];

	fsck_tree(p);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	/* the second superblock copy */
	patch_byte(p->path, PX_BLK + 100);
	tu_copy_image(p->path, ref);
	assert_true(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL) >= 1);
	same_bytes(p->path, ref);
	patch_byte(p->path, PX_BLK + 100);
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
	/*
	 * the unmount's checkpoint, which nothing follows, damaged: as a crash
	 * while it was written leaves it, and the mount uses the older one
	 */
	{
		uint64_t at = newest_meta_zone(p->path) + PX_BLK + 200;

		patch_byte(p->path, at);
		assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
		patch_byte(p->path, at);
	}
	/*
	 * A record inside the newest checkpoint, which log writes follow (on an
	 * emulated sequential zone a damaged last write reads as one that never
	 * became durable, which the mount rightly ignores): the mount falls back
	 * to the older checkpoint and would lose what came after it.
	 */
	do_mount_path(p, p->path);
	for (int k = 0; k < 4; k++) {
		char name[16];
		uint64_t f;

		snprintf(name, sizeof(name), "n%d", k);
		f = mkfile(p, p->root, name);
		assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
		assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	}
	tu_copy_image(p->path, copy);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	patch_byte(copy, newest_meta_zone(copy) + PX_BLK + 200);
	tu_copy_image(copy, ref);
	assert_true(fsck_run(copy, FF_FSCK_READ_ONLY, NULL) >= 1);
	same_bytes(copy, ref);
	unlink(ref);
	unlink(copy);
}

/*
 * A damaged record of the log after the checkpoint, that other records
 * follow: the mount would drop the committed operations after it, and fsck
 * -n reports it. The other kinds of damage keep the record's crc valid, so
 * the chain is whole but the mount must not apply the record: it uses the
 * older zone's checkpoint, which loses committed operations too.
 */
enum log_damage {
	DAMAGE_BYTE,	  /* a payload byte: the crc no longer matches */
	DAMAGE_TYPE,	  /* a type no record has */
	DAMAGE_META_ZONE, /* a ZONE record that makes a metadata zone an open data zone */
};

static void corrupt_log(struct px *p, enum log_damage how)
{
	char copy[300], ref[300];
	uint64_t mz, pos = PX_BLK, recs[4096], nrec = 0, cp_end = 0;
	uint8_t *buf = tu_alloc(ZS);
	int fd;

	fsck_tree(p);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	mz = newest_meta_zone(copy);
	fd = open(copy, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, ZS, (off_t)mz), (ssize_t)ZS);
	close(fd);
	/* the record chain (docs/posix-format.md section 3) */
	while (pos + PX_REC_HDR <= ZS && nrec < 4096) {
		uint16_t t = (uint16_t)(buf[pos] | buf[pos + 1] << 8);
		uint32_t len;

		if (!t) {
			if (pos % PX_BLK == 0)
				break;
			pos = (pos + PX_BLK - 1) / PX_BLK * PX_BLK;
			continue;
		}
		memcpy(&len, buf + pos + 4, 4);
		if (t == PX_R_CP_END)
			cp_end = nrec;
		recs[nrec++] = pos;
		pos += (PX_REC_HDR + len + 7) / 8 * 8;
	}
	free(buf);
	/* the log holds the tree's operations after the checkpoint */
	assert_true(cp_end && nrec > cp_end + 4);
	if (how != DAMAGE_BYTE) {
		uint64_t at = mz + recs[(cp_end + nrec) / 2], z = PX_META_FIRST;
		uint8_t h[PX_REC_HDR], *r;
		uint32_t len, crc;
		size_t k;

		fd = open(copy, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, h, sizeof(h), (off_t)at), (ssize_t)sizeof(h));
		memcpy(&len, h + 4, 4);
		if (how == DAMAGE_META_ZONE) {
			/* a record long enough for a ZONE payload (extra bytes are ignored) */
			for (k = (cp_end + nrec) / 2; k < nrec; k++) {
				at = mz + recs[k];
				assert_int_equal(pread(fd, h, sizeof(h), (off_t)at),
						 (ssize_t)sizeof(h));
				memcpy(&len, h + 4, 4);
				if (len >= 32)
					break;
			}
			assert_true(k < nrec);
		}
		r = tu_alloc(PX_REC_HDR + len);
		assert_int_equal(pread(fd, r, PX_REC_HDR + len, (off_t)at),
				 (ssize_t)(PX_REC_HDR + len));
		r[0] = how == DAMAGE_TYPE ? 200 : PX_R_ZONE; /* 200: no such type */
		r[1] = 0;
		if (how == DAMAGE_META_ZONE) {
			uint32_t zz = (uint32_t)z, st = PX_Z_OPEN;
			uint64_t epoch = 99, cursor = z * ZS + PX_BLK, valid = 0;

			memset(r + PX_REC_HDR, 0, len);
			memcpy(r + PX_REC_HDR, &zz, 4);
			memcpy(r + PX_REC_HDR + 4, &st, 4);
			memcpy(r + PX_REC_HDR + 8, &epoch, 8);
			memcpy(r + PX_REC_HDR + 16, &cursor, 8);
			memcpy(r + PX_REC_HDR + 24, &valid, 8);
		}
		memset(r + 16, 0, 4);
		crc = ff_crc32c(0, r, PX_REC_HDR + len);
		memcpy(r + 16, &crc, 4);
		assert_int_equal(pwrite(fd, r, PX_REC_HDR + len, (off_t)at),
				 (ssize_t)(PX_REC_HDR + len));
		close(fd);
		free(r);
	} else {
		/* a payload byte of a record in the middle of the log */
		patch_byte(copy, mz + recs[(cp_end + nrec) / 2] + PX_REC_HDR + 1);
	}
	tu_copy_image(copy, ref);
	assert_true(fsck_run(copy, FF_FSCK_READ_ONLY, NULL) >= 1);
	same_bytes(copy, ref);
	unlink(copy);
	unlink(ref);
}

static void test_posix_fsck_corrupt_log(void **state)
{
	corrupt_log(*state, DAMAGE_BYTE);
}

static void test_posix_fsck_unfit_record(void **state)
{
	corrupt_log(*state, DAMAGE_TYPE);
}

static void test_posix_fsck_meta_zone_record(void **state)
{
	corrupt_log(*state, DAMAGE_META_ZONE);
}

/* A data header's crc seed in the image open at fd: its superblock's DHKEY (PX_FEAT_DHKEY). */
static uint32_t dh_seed(int fd)
{
	uint8_t sb[BLK];
	uint64_t feat;

	assert_int_equal(pread(fd, sb, BLK, 0), BLK);
	memcpy(&feat, sb + PX_SB_FEATURES, 8);
	assert_true(feat & PX_FEAT_DHKEY);
	return ff_crc32c(0, sb + PX_SB_DHKEY, 16);
}

/* The newest data header of inode f in the image open at fd: its offset, its bytes to h. */
static uint64_t newest_header(int fd, uint64_t f, uint8_t *h)
{
	uint64_t at = UINT64_MAX, dseq = 0, v;
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	for (uint64_t off = 0; off + BLK <= (uint64_t)st.st_size; off += BLK) {
		assert_int_equal(pread(fd, h, BLK, (off_t)off), BLK);
		memcpy(&v, h + PX_DH_INO, 8);
		if (!memcmp(h, PX_DH_MAGIC, 8) && v == f) {
			memcpy(&v, h + PX_DH_DSEQ, 8);
			if (v > dseq)
				dseq = v, at = off;
		}
	}
	assert_true(at != UINT64_MAX);
	assert_int_equal(pread(fd, h, BLK, (off_t)at), BLK);
	return at;
}

/*
 * A copy of p's image as it is now, at copy (p's path + suffix), open for
 * writing: its fd; *at and h get the newest data header of inode f in it.
 */
static int copy_with_header(struct px *p, const char *suffix, char *copy, size_t n, uint64_t f,
			    uint8_t *h, uint64_t *at)
{
	int fd;

	snprintf(copy, n, "%s%s", p->path, suffix);
	tu_copy_image(p->path, copy);
	fd = open(copy, O_RDWR);
	assert_true(fd >= 0);
	*at = newest_header(fd, f, h);
	return fd;
}

/*
 * A data header with a valid crc whose file offset is not block aligned
 * (a damaged or forged image) ends the roll-forward chain, as any invalid
 * header does: the mount maps nothing from it (misaligned extents would
 * follow), and fsck -n finds the image clean (the uncommitted append it
 * carried is lost, as after a torn write). Regular images only: on an
 * emulated sequential zone the emulation rolls the pointer back over bytes
 * changed under it.
 */
static void test_posix_rollforward_unaligned_header(void **state)
{
	struct px *p = *state;
	uint8_t *buf = tu_alloc(BLK), *h = tu_alloc(BLK);
	uint64_t f, at, v;
	char copy[300];
	uint32_t crc;
	int fd;

	f = mkfile(p, p->root, "ua");
	tu_fill(buf, BLK, 3);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	/* a sync append: its header is rolled forward, its EXTENT record not committed */
	assert_int_equal(ff_fs_write(p->fs, f, buf, BLK, 2 * BLK, FF_CW_DSYNC), BLK);
	fd = copy_with_header(p, ".ua", copy, sizeof(copy), f, h, &at);
	v = 2 * BLK + 100;
	memcpy(h + PX_DH_FILE_OFF, &v, 8);
	memset(h + PX_DH_CRC, 0, 4);
	crc = ff_crc32c(dh_seed(fd), h, BLK);
	memcpy(h + PX_DH_CRC, &crc, 4);
	assert_int_equal(pwrite(fd, h, BLK, (off_t)at), BLK);
	close(fd);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
	free(buf);
	free(h);
}

/*
 * A writeback of scattered dirty blocks that go out of place (new blocks
 * between holes here; every block on sequential zones) writes a batch of
 * runs as one device write behind one data header that lists them as
 * pieces (PX_FEAT_PIECES), where each run cost a write and a header block
 * of zone room. A crash after the fdatasync (the extents maybe only in the
 * headers) and a remount read every block back, holes as zeros. On a
 * regular image, a header whose piece table does not add up to its length
 * ends the roll-forward chain like any invalid header: fsck -n is clean.
 */
static void test_posix_writeback_pieces(void **state)
{
	enum { N = 48 };
	struct px *p = *state;
	uint8_t *want = tu_alloc(2 * N * BLK), *rd = tu_alloc(2 * N * BLK), *h = tu_alloc(BLK);
	uint64_t f, h0, w0, j0, at, v;
	uint32_t np, crc;
	char copy[300];
	int fd;

	memset(want, 0, 2 * N * BLK);
	f = mkfile(p, p->root, "pc");
	for (int pass = 0; pass < 2; pass++) {
		write_scattered(p, f, want, N, pass, (unsigned)(100 * pass));
		h0 = stat_of(p, "data_header_writes");
		w0 = stat_of(p, "dev_writes");
		j0 = stat_of(p, "data_pieces_joined");
		assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
		assert_int_equal(stat_of(p, "data_pieces_joined") - j0, N - 1);
		print_message("pass %d: %llu header writes, %llu device writes for %d runs\n", pass,
			      (unsigned long long)(stat_of(p, "data_header_writes") - h0),
			      (unsigned long long)(stat_of(p, "dev_writes") - w0), N);
		assert_true(stat_of(p, "data_header_writes") - h0 <= 2);
		assert_true(stat_of(p, "dev_writes") - w0 <= 4);
		crash_reads(p, f, want, (2 * N - 1 + pass) * BLK);
	}
	fd = copy_with_header(p, ".pc", copy, sizeof(copy), f, h, &at);
	memcpy(&np, h + PX_DH_NPIECE, 4);
	assert_int_equal(np, N);
	memcpy(&v, h + PX_DH_PIECES + PX_DH_PIECE_SZ + 8, 8);
	assert_int_equal(v, BLK);
	if (!p->emu) {
		v = 2 * BLK;
		memcpy(h + PX_DH_PIECES + PX_DH_PIECE_SZ + 8, &v, 8);
		memset(h + PX_DH_CRC, 0, 4);
		crc = ff_crc32c(dh_seed(fd), h, BLK);
		memcpy(h + PX_DH_CRC, &crc, 4);
		assert_int_equal(pwrite(fd, h, BLK, (off_t)at), BLK);
	}
	close(fd);
	if (!p->emu)
		assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
	remount(p);
	assert_int_equal(ff_fs_read(p->fs, f, rd, 2 * N * BLK, 0), 2 * N * BLK);
	assert_memory_equal(rd, want, 2 * N * BLK);
	free(want);
	free(rd);
	free(h);
}

/* Fails the first device write of 64 KiB or more once armed. */
static _Atomic int big_fails;
static int fail_first_big_write(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)off;
	return len >= (64 << 10) && atomic_fetch_add(&big_fails, 1) == 0 ? -EIO : 0;
}

/*
 * The device fails a writeback's write of many pieces behind one header:
 * every piece stays dirty (none is marked clean, none mapped), the fsync
 * gets EIO, and the next fsync writes them all; the crash copy and a
 * remount read every block.
 */
static void test_posix_writeback_pieces_error(void **state)
{
	enum { N = 32 };
	struct px *p = *state;
	uint8_t *want = tu_alloc(2 * N * BLK), *rd = tu_alloc(2 * N * BLK);
	uint64_t f, j0;

	memset(want, 0, 2 * N * BLK);
	f = mkfile(p, p->root, "pe");
	write_scattered(p, f, want, N, 0, 7);
	atomic_store(&big_fails, 0);
	ff_dev_fault_hook = fail_first_big_write;
	assert_int_equal(ff_fs_fsync(p->fs, f, true), -EIO);
	ff_dev_fault_hook = NULL;
	assert_int_equal(atomic_load(&big_fails), 1);
	assert_int_equal(ff_fs_read(p->fs, f, rd, (2 * N - 1) * BLK, 0), (2 * N - 1) * BLK);
	assert_memory_equal(rd, want, (2 * N - 1) * BLK);
	j0 = stat_of(p, "data_pieces_joined");
	assert_int_equal(ff_fs_fsync(p->fs, f, true), 0);
	assert_int_equal(stat_of(p, "data_pieces_joined") - j0, N - 1);
	reads_after_crash_and_remount(p, f, want, (2 * N - 1) * BLK);
	free(want);
	free(rd);
}

/*
 * A block of a file's own content where the roll-forward chain goes on
 * (past a zone's committed cursor: the collector's bare copies in its own
 * zone before their ZONE record is committed, or stale blocks past the
 * chain of a conventional zone) is never taken for a data header, whatever
 * its owner wrote in it: here it is a header in every field a user can
 * know or guess (the magic, the zone's epoch, a newer dseq, the victim
 * file's inode, the crc of the block after it), sealed with the crc32c
 * anyone can compute. The header crc is keyed by the superblock's secret
 * (PX_SB_DHKEY), so the victim reads as before and fsck -n is clean.
 */
static void test_posix_rollforward_forged_header(void **state)
{
	struct px *p = *state;
	uint8_t *want = tu_alloc(BLK), *h = tu_alloc(2 * BLK), *got = tu_alloc(2 * BLK);
	uint64_t f, at, pos, v;
	struct ff_fs *fs2;
	char copy[300];
	struct stat st;
	uint32_t crc;
	int fd;

	f = mkfile(p, p->root, "victim");
	tu_fill(want, BLK, 5);
	assert_int_equal(ff_fs_write(p->fs, f, want, BLK, 0, FF_CW_DSYNC), BLK);
	assert_int_equal(ff_fs_fsync(p->fs, f, false), 0);
	fd = copy_with_header(p, ".forge", copy, sizeof(copy), f, h, &at);
	memcpy(&v, h + PX_DH_LEN, 8);
	pos = at + BLK + v; /* where the chain goes on */
	memcpy(&v, h + PX_DH_DSEQ, 8);
	v += 1000;
	memcpy(h + PX_DH_DSEQ, &v, 8);
	v = 0;
	memcpy(h + PX_DH_FILE_OFF, &v, 8);
	v = BLK;
	memcpy(h + PX_DH_LEN, &v, 8);
	memcpy(h + PX_DH_SIZE, &v, 8);
	tu_fill(h + BLK, BLK, 6);
	crc = ff_crc32c(0, h + BLK, BLK);
	memcpy(h + PX_DH_DATA_CRC, &crc, 4);
	memset(h + PX_DH_CRC, 0, 4);
	crc = ff_crc32c(0, h, BLK);
	memcpy(h + PX_DH_CRC, &crc, 4);
	assert_int_equal(pwrite(fd, h, 2 * BLK, (off_t)pos), 2 * BLK);
	close(fd);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_getattr(fs2, f, &st), 0);
	assert_int_equal(st.st_size, BLK);
	assert_int_equal(ff_fs_read(fs2, f, got, 2 * BLK, 0), BLK);
	assert_memory_equal(got, want, BLK);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	unlink(copy);
	free(want);
	free(h);
	free(got);
}

/*
 * A device formatted again holds the old filesystem's data headers where
 * the new one has not written yet. The same work in both (one file, the
 * same inode number, 4 KiB O_DSYNC appends) puts the new chain's end on an
 * old header of the same zone epoch and inode: after a crash, the roll-
 * forward must stop there, and the new file must not grow into the old
 * one's deleted blocks. Each mkfs draws its own header key.
 */
static void test_posix_rollforward_after_mkfs(void **state)
{
	struct px *p = *state;
	struct ff_mkfs_opts mo = {
		.format = FF_FMT_POSIX, .force = true, .zone_size = ZS, .zone_opts = true};
	uint8_t *old = tu_alloc(8 * BLK), *fresh = tu_alloc(8 * BLK), *got = tu_alloc(8 * BLK);
	char summary[512], copy[300];
	uint64_t f, f2;
	struct ff_fs *fs2;
	struct stat st;

	tu_fill(old, 8 * BLK, 7);
	tu_fill(fresh, 8 * BLK, 8);
	f = mkfile(p, p->root, "log");
	for (int k = 0; k < 8; k++)
		assert_int_equal(
			ff_fs_write(p->fs, f, old + k * BLK, BLK, (uint64_t)k * BLK, FF_CW_DSYNC),
			BLK);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	ff_fs_forget(p->fs, f, 1);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(ff_fs_mkfs(p->path, &mo, summary, sizeof(summary)), 0);
	do_mount_path(p, p->path);
	f2 = mkfile(p, p->root, "log");
	assert_int_equal(f2, f);
	for (int k = 0; k < 4; k++)
		assert_int_equal(ff_fs_write(p->fs, f2, fresh + k * BLK, BLK, (uint64_t)k * BLK,
					     FF_CW_DSYNC),
				 BLK);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	tu_copy_image(p->path, copy);
	assert_int_equal(ff_fs_mount(copy, &p->o, &fs2), 0);
	assert_int_equal(ff_fs_getattr(fs2, f2, &st), 0);
	assert_int_equal(st.st_size, 4 * BLK);
	assert_int_equal(ff_fs_read(fs2, f2, got, 8 * BLK, 0), 4 * BLK);
	assert_memory_equal(got, fresh, 4 * BLK);
	assert_int_equal(ff_fs_unmount(fs2), 0);
	unlink(copy);
	free(old);
	free(fresh);
	free(got);
}

/* An orphan left by a crash is found by -n and repaired by -y. */
static void test_posix_fsck_orphan(void **state)
{
	struct px *p = *state;
	char copy[300], ref[300];
	uint32_t repaired = 0;
	uint64_t f;

	f = mkfile(p, p->root, "o");
	assert_int_equal(ff_fs_write(p->fs, f, "orphan", 6, 0, FF_CW_DSYNC), 6);
	assert_int_equal(ff_fs_unlink(p->fs, p->root, "o"), 0);
	assert_int_equal(ff_fs_fsyncdir(p->fs, p->root, false), 0);
	snprintf(copy, sizeof(copy), "%s.crash", p->path);
	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	tu_copy_image(p->path, copy);
	tu_copy_image(copy, ref);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 1);
	same_bytes(copy, ref);
	assert_int_equal(fsck_run(copy, FF_FSCK_REPAIR, &repaired), 0);
	assert_true(repaired >= 1);
	assert_int_equal(fsck_run(copy, FF_FSCK_READ_ONLY, NULL), 0);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	ff_fs_forget(p->fs, f, 1);
	unlink(copy);
	unlink(ref);
}

/* A zone's valid-block count above what its extents hold (leaked space): -n finds it, -y repairs
 * it. */
static void test_posix_fsck_leak(void **state)
{
	struct px *p = *state;
	struct px_fs *fs;
	uint32_t repaired = 0, z = UINT32_MAX;
	uint8_t *buf = tu_alloc(64 << 10);
	uint64_t f = mkfile(p, p->root, "l");

	assert_int_equal(ff_fs_write(p->fs, f, buf, 64 << 10, 0, FF_CW_DSYNC), 64 << 10);
	assert_int_equal(ff_fs_release(p->fs, f, O_RDWR), 0);
	/* the count is damaged in memory; the unmount's checkpoint writes it */
	fs = (struct px_fs *)p->fs;
	ff_mutex_lock(&fs->ns);
	for (uint32_t k = 0; k < fs->nr_zones && z == UINT32_MAX; k++)
		if (fs->zones[k].state == PX_Z_OPEN && fs->zones[k].valid)
			z = k;
	assert_true(z != UINT32_MAX);
	fs->zones[z].valid += 5;
	ff_mutex_unlock(&fs->ns);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 1);
	assert_int_equal(fsck_run(p->path, FF_FSCK_REPAIR, &repaired), 0);
	assert_int_equal(repaired, 1);
	assert_int_equal(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL), 0);
	free(buf);
}

/* ---- corrupt namespaces: records appended to the log with valid crcs ---- */

#include "foliofs/zoneq.h" /* the appends below go through the zone queue, as the log's do */

/* Records of one operation, built as src/fs/posix.c lays them out (docs/posix-format.md). */
struct xlog {
	uint8_t b[8192];
	size_t len, last; /* bytes; the newest record's offset */
};

static void xput(struct xlog *l, const void *v, size_t n)
{
	assert_true(l->len + n <= sizeof(l->b));
	memcpy(l->b + l->len, v, n);
	l->len += n;
}

static void xput16(struct xlog *l, uint16_t v)
{
	xput(l, &v, 2);
}

static void xput32(struct xlog *l, uint32_t v)
{
	xput(l, &v, 4);
}

static void xput64(struct xlog *l, uint64_t v)
{
	xput(l, &v, 8);
}

static void xbegin(struct xlog *l, uint16_t type)
{
	uint8_t hdr[PX_REC_HDR] = {0};

	l->last = l->len;
	memcpy(hdr, &type, 2);
	xput(l, hdr, sizeof(hdr));
}

/* Close the newest record: its length, then padding to 8 bytes. */
static void xend(struct xlog *l)
{
	uint32_t n = (uint32_t)(l->len - l->last - PX_REC_HDR);
	static const uint8_t zero[8];

	memcpy(l->b + l->last + 4, &n, 4);
	xput(l, zero, (8 - l->len % 8) % 8);
}

/* An INODE record: the whole inode, times zero. */
static void x_inode(struct xlog *l, uint64_t ino, uint32_t mode, uint32_t nlink)
{
	static const uint8_t ts[12 * 4];

	xbegin(l, PX_R_INODE);
	xput64(l, ino);
	xput32(l, mode);
	xput32(l, 1000);
	xput32(l, 1000);
	xput32(l, nlink);
	xput32(l, 0);
	xput32(l, 0);
	xput64(l, 0);
	xput64(l, 0);
	xput64(l, 0);
	xput(l, ts, sizeof(ts));
	xput32(l, 0);
	xend(l);
}

static void x_add(struct xlog *l, uint64_t dir, uint64_t ino, uint64_t cookie, const char *name)
{
	xbegin(l, PX_R_DIRENT_ADD);
	xput64(l, dir);
	xput64(l, ino);
	xput64(l, cookie);
	xput16(l, (uint16_t)strlen(name));
	xput(l, name, strlen(name));
	xend(l);
}

static void x_del(struct xlog *l, uint64_t dir, const char *name)
{
	xbegin(l, PX_R_DIRENT_DEL);
	xput64(l, dir);
	xput16(l, (uint16_t)strlen(name));
	xput(l, name, strlen(name));
	xend(l);
}

static void x_ifree(struct xlog *l, uint64_t ino)
{
	xbegin(l, PX_R_IFREE);
	xput64(l, ino);
	xend(l);
}

/*
 * Append l's records to the log of the unmounted image at path as one
 * operation (CONT on all but the last), after the newest metadata zone's last
 * record, with the next seqs and valid crcs, through the device layer (so an
 * emulated sequential zone's write pointer moves as a mount's commit moves
 * it). A mount then applies them: what refuses the image is the check of the
 * state they make, not a damaged record.
 */
static void log_append(const char *path, struct xlog *l)
{
	struct ff_dev_opts dopt = {.exclusive = true};
	uint64_t mz = newest_meta_zone(path), pos = mz + PX_BLK, seq = 0, end;
	uint32_t z = (uint32_t)(mz / ZS);
	struct ff_dev *dev;
	uint8_t *buf = tu_alloc(ZS), *w;
	struct iovec iov;
	size_t wlen;

	assert_int_equal(ff_dev_open(path, &dopt, &dev), 0);
	iov = (struct iovec){buf, ZS};
	assert_int_equal(ff_dev_read(dev, &iov, 1, mz), (ssize_t)ZS);
	/* the chain: consecutive seqs from the checkpoint's CP_BEGIN */
	while (pos + PX_REC_HDR <= mz + ZS) {
		uint8_t *r = buf + (pos - mz);
		uint16_t t;
		uint32_t len;
		uint64_t s;

		memcpy(&t, r, 2);
		if (!t) {
			if (pos % PX_BLK == 0)
				break;
			pos = (pos + PX_BLK - 1) / PX_BLK * PX_BLK;
			continue;
		}
		memcpy(&len, r + 4, 4);
		memcpy(&s, r + 8, 8);
		if (seq && s != seq + 1)
			break;
		seq = s;
		pos += (PX_REC_HDR + len + 7) / 8 * 8;
	}
	assert_true(seq > 0);
	end = (pos + PX_BLK - 1) / PX_BLK * PX_BLK;
	wlen = (l->len + PX_BLK - 1) / PX_BLK * PX_BLK;
	w = tu_alloc(wlen);
	memset(w, 0, wlen);
	memcpy(w, l->b, l->len);
	for (size_t at = 0; at < l->len;) {
		uint8_t *r = w + at;
		uint32_t len, crc;
		uint16_t fl = at == l->last ? 0 : PX_REC_CONT;

		memcpy(&len, r + 4, 4);
		memcpy(r + 2, &fl, 2);
		seq++;
		memcpy(r + 8, &seq, 8);
		memset(r + 16, 0, 4);
		crc = ff_crc32c(0, r, PX_REC_HDR + len);
		memcpy(r + 16, &crc, 4);
		at += (PX_REC_HDR + len + 7) / 8 * 8;
	}
	iov = (struct iovec){w, wlen};
	assert_int_equal(ff_zoneq_write_at(dev, z, &iov, 1, end, FF_IO_DSYNC), (ssize_t)wlen);
	assert_int_equal(ff_dev_flush(dev), 0);
	ff_dev_close(dev);
	free(w);
	free(buf);
	l->len = l->last = 0;
}

/* The tree of fsck_tree, unmounted: root/d (a directory), root/d/e (a directory), root/d/f. */
struct xtree {
	uint64_t d, e, f, s;
};

static void xtree_make(struct px *p, struct xtree *t)
{
	fsck_tree(p);
	t->d = lookup(p, p->root, "d");
	t->e = lookup(p, t->d, "e");
	t->f = lookup(p, t->d, "f");
	t->s = lookup(p, t->d, "s");
	ff_fs_forget(p->fs, t->d, 1);
	ff_fs_forget(p->fs, t->e, 1);
	ff_fs_forget(p->fs, t->f, 1);
	ff_fs_forget(p->fs, t->s, 1);
	assert_int_equal(ff_fs_unmount(p->fs), 0);
	p->fs = NULL;
}

/*
 * The mount refuses the image with -EUCLEAN, and fsck -n reports it (at
 * least one problem) and writes nothing.
 */
static void refused(struct px *p)
{
	char ref[300];
	struct ff_fs *fs = NULL;
	int ret;

	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	tu_copy_image(p->path, ref);
	assert_true(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL) >= 1);
	same_bytes(p->path, ref);
	ret = ff_fs_mount(p->path, &p->o, &fs);
	if (!ret)
		assert_int_equal(ff_fs_unmount(fs), 0);
	assert_int_equal(ret, -EUCLEAN);
	same_bytes(p->path, ref);
	unlink(ref);
}

/* A directory given a second name inside its own subdirectory: a cycle, d in e in d. */
static void test_posix_corrupt_dir_cycle(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.e, t.d, 1000, "loop");
	x_inode(&l, t.e, S_IFDIR | 0755, 3);
	log_append(p->path, &l);
	refused(p);
}

/* A directory moved into its own subdirectory: d in e in d, unreachable, one name each. */
static void test_posix_corrupt_dir_own_ancestor(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_del(&l, p->root, "d");
	x_add(&l, t.e, t.d, 1000, "d");
	x_inode(&l, p->root, S_IFDIR | 0755, 2);
	x_inode(&l, t.e, S_IFDIR | 0755, 3);
	log_append(p->path, &l);
	refused(p);
}

/* A directory holding an entry that names itself. */
static void test_posix_corrupt_dir_self(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.d, t.d, 1000, "self");
	x_inode(&l, t.d, S_IFDIR | 0755, 4);
	log_append(p->path, &l);
	refused(p);
}

/* An inode freed while entries still name it. */
static void test_posix_corrupt_dirent_freed(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_ifree(&l, t.f);
	log_append(p->path, &l);
	refused(p);
}

/* An entry naming an inode that was never made. */
static void test_posix_corrupt_dirent_missing(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.d, 999999, 1000, "ghost");
	log_append(p->path, &l);
	refused(p);
}

/* A directory whose link count is not 2 + its subdirectories. */
static void test_posix_corrupt_dir_nlink(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_inode(&l, t.d, S_IFDIR | 0755, 7);
	log_append(p->path, &l);
	refused(p);
}

/* A file whose link count is below its names: its last unlink would free a named inode. */
static void test_posix_corrupt_file_nlink(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_inode(&l, t.f, S_IFREG | 0644, 1);
	log_append(p->path, &l);
	refused(p);
}

/* A removed directory (link count 0, no name) that still has entries. */
static void test_posix_corrupt_orphan_dir(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_del(&l, p->root, "d");
	x_inode(&l, t.d, S_IFDIR | 0755, 0);
	x_inode(&l, p->root, S_IFDIR | 0755, 2);
	log_append(p->path, &l);
	refused(p);
}

/*
 * An entry added to a symlink: a record that does not fit the state, which
 * the mount does not apply (it uses the older metadata zone's checkpoint, as
 * for any such record) and fsck -n reports.
 */
static void test_posix_corrupt_dirent_in_file(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;
	struct stat st;
	char ref[300];

	xtree_make(p, &t);
	x_add(&l, t.s, t.f, 1000, "x");
	x_inode(&l, t.f, S_IFREG | 0644, 3);
	log_append(p->path, &l);
	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	tu_copy_image(p->path, ref);
	assert_true(fsck_run(p->path, FF_FSCK_READ_ONLY, NULL) >= 1);
	same_bytes(p->path, ref);
	unlink(ref);
	do_mount_path(p, p->path);
	assert_int_equal(ff_fs_getattr(p->fs, t.f, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(ff_fs_lookup(p->fs, t.s, "x", &st), -ENOTDIR);
}

/* An entry naming the root: root/d/r is the root again, with every count consistent. */
static void test_posix_corrupt_root_named(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.d, p->root, 1000, "r");
	x_inode(&l, t.d, S_IFDIR | 0755, 4);
	log_append(p->path, &l);
	refused(p);
}

/* A removed directory with entries is not an orphan that -y frees: its entries would be lost. */
static void test_posix_corrupt_orphan_dir_repair(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;
	char ref[300];

	xtree_make(p, &t);
	x_del(&l, p->root, "d");
	x_inode(&l, t.d, S_IFDIR | 0755, 0);
	x_inode(&l, p->root, S_IFDIR | 0755, 2);
	log_append(p->path, &l);
	snprintf(ref, sizeof(ref), "%s.ref", p->path);
	tu_copy_image(p->path, ref);
	assert_true(fsck_run(p->path, FF_FSCK_REPAIR, NULL) >= 1);
	same_bytes(p->path, ref);
	unlink(ref);
}

/* An entry with a name the VFS never gives a filesystem. */
static void bad_name(struct px *p, const char *name)
{
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.d, t.f, 1000, name);
	x_inode(&l, t.f, S_IFREG | 0644, 3);
	log_append(p->path, &l);
	refused(p);
}

static void test_posix_corrupt_dirent_dotdot(void **state)
{
	bad_name(*state, "..");
}

static void test_posix_corrupt_dirent_dot(void **state)
{
	bad_name(*state, ".");
}

static void test_posix_corrupt_dirent_slash(void **state)
{
	bad_name(*state, "a/b");
}

/* An entry with readdir cookie 0, which no readdir lists (it resumes above a cookie). */
static void test_posix_corrupt_dirent_cookie(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_add(&l, t.d, t.f, 0, "zero");
	x_inode(&l, t.f, S_IFREG | 0644, 3);
	log_append(p->path, &l);
	refused(p);
}

/* A named inode of no file type (S_IFMT 0). */
static void test_posix_corrupt_inode_type(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_inode(&l, 777777, 0644, 1);
	x_add(&l, t.d, 777777, 1000, "typeless");
	log_append(p->path, &l);
	refused(p);
}

/* A named symlink with no target, which symlink(2) never makes. */
static void test_posix_corrupt_symlink_empty(void **state)
{
	struct px *p = *state;
	struct xlog l = {0};
	struct xtree t;

	xtree_make(p, &t);
	x_inode(&l, 777777, S_IFLNK | 0777, 1);
	x_add(&l, t.d, 777777, 1000, "empty");
	log_append(p->path, &l);
	refused(p);
}

/*
 * The namespace checks are device-independent: each corruption test runs on
 * one image kind, sequential metadata zones (all-sequential emulation) or a
 * regular image in turn; the cycle, the fallback and the repair on all three.
 */
#define T1SEQ(fn) cmocka_unit_test_setup_teardown(fn, setup_emu_seq_cap, teardown)
#define T1REG(fn) cmocka_unit_test_setup_teardown(fn, setup_reg, teardown)

#define T2(fn)                                                            \
	cmocka_unit_test_setup_teardown(fn, setup_emu, teardown),         \
		cmocka_unit_test_setup_teardown(fn, setup_reg, teardown), \
		cmocka_unit_test_setup_teardown(fn, setup_emu_seq_cap, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T2(test_posix_namespace),
		T2(test_posix_rename_whiteout),
		T2(test_posix_stale_tail_after_two_cuts),
		T2(test_posix_stale_tail_sync_append),
		T2(test_posix_sync_overwrite_mtime),
		T2(test_posix_orphan),
		T2(test_posix_sync_append_one_write),
		T2(test_posix_inplace_dsync_overwrite),
		T1REG(test_posix_short_header),
		T2(test_posix_write_times_coarse),
		T2(test_posix_inplace_after_rollforward),
		T2(test_posix_sync_overwrite_uncommitted),
		T2(test_posix_buffered_overwrite_uncommitted),
		T2(test_posix_buffered_unaligned_append),
		T2(test_posix_buffered_small_append),
		T2(test_posix_fdatasync_no_log_write),
		T2(test_posix_close_after_fsync),
		T2(test_posix_close_retries_failed_writeback),
		T2(test_posix_subblock_sync),
		T2(test_posix_small_file_writes),
		T2(test_posix_fsync_commits_beside_data),
		T2(test_posix_sync_write_commits_beside_data),
		T2(test_posix_lost_create_data_stays_lost),
		T2(test_posix_data_write_error),
		cmocka_unit_test_setup_teardown(test_posix_log_write_error, setup_emu, teardown),
		cmocka_unit_test_setup_teardown(test_posix_log_write_error, setup_reg, teardown),
		T2(test_posix_dead_device_eio),
		cmocka_unit_test_setup_teardown(test_posix_sync_write_error_whole, setup_emu_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_sync_write_error_whole, setup_reg_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_wbmode_sync_error_past_eof,
						setup_reg_wbmode, teardown),
		cmocka_unit_test_setup_teardown(test_posix_wbmode_sync_error_past_eof,
						setup_emu_wbmode, teardown),
		cmocka_unit_test_setup_teardown(test_posix_direct_append_error_past_eof,
						setup_emu_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_posix_direct_append_error_past_eof,
						setup_reg_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_posix_direct_append_error_tail_cut,
						setup_emu_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_posix_direct_append_error_tail_cut,
						setup_reg_tiny, teardown),
		T2(test_posix_sync_write_past_eof_size),
		T2(test_posix_group_commit_batch),
		T2(test_posix_group_commit),
		cmocka_unit_test_setup_teardown(test_posix_mt_shared_zones, setup_emu_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_mt_shared_zones, setup_reg_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_mt_shared_zones, setup_emu_seq_cap_tiny,
						teardown),
		T2(test_posix_truncate_falloc_seek),
		T2(test_posix_zero_range),
		T2(test_posix_big_dir_cookies),
		T2(test_posix_power_cut),
		T2(test_posix_dsync_after_truncate),
		T2(test_posix_commit_interval),
		T2(test_posix_sync_append_mtime),
		T2(test_posix_power_cut_writers),
		T2(test_posix_log_rotation),
		T2(test_posix_stblocks_delalloc),
		T2(test_posix_stblocks_running_sum),
		T1REG(test_posix_newer_features_refused),
		T2(test_posix_pieces_need_feature),
		cmocka_unit_test_setup_teardown(test_posix_sync_append_runs, setup_span_seq,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_sync_append_runs, setup_span_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_metadata_full, setup_span_seq, teardown),
		cmocka_unit_test_setup_teardown(test_posix_metadata_full, setup_span_reg, teardown),
		cmocka_unit_test_setup_teardown(test_posix_checkpoint_spans_zones, setup_span_seq,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_checkpoint_spans_zones, setup_span_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_checkpoint_spans_crash, setup_span_seq,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_checkpoint_spans_crash, setup_span_reg,
						teardown),
		T2(test_posix_statfs),
		T2(test_posix_statfs_unlink),
		T1REG(test_posix_mkfs_over_old_log),
		T1REG(test_posix_max_file_size),
		T2(test_posix_full_direct),
		T2(test_posix_full_direct_dsync),
		T2(test_posix_full_sync),
		T2(test_posix_fsck_clean),
		T2(test_posix_fsck_corrupt),
		T2(test_posix_fsck_corrupt_log),
		T2(test_posix_fsck_unfit_record),
		T2(test_posix_fsck_meta_zone_record),
		T2(test_posix_writeback_pieces),
		T2(test_posix_writeback_pieces_error),
		cmocka_unit_test_setup_teardown(test_posix_rollforward_unaligned_header, setup_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_rollforward_forged_header, setup_reg,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_rollforward_after_mkfs, setup_reg,
						teardown),
		T2(test_posix_fsck_orphan),
		T2(test_posix_fsck_leak),
		T2(test_posix_corrupt_dir_cycle),
		T1SEQ(test_posix_corrupt_dir_own_ancestor),
		T1REG(test_posix_corrupt_dir_self),
		T1SEQ(test_posix_corrupt_dirent_freed),
		T1REG(test_posix_corrupt_dirent_missing),
		T1SEQ(test_posix_corrupt_dir_nlink),
		T1REG(test_posix_corrupt_file_nlink),
		T1SEQ(test_posix_corrupt_orphan_dir),
		T2(test_posix_corrupt_dirent_in_file),
		T1REG(test_posix_corrupt_root_named),
		T2(test_posix_corrupt_orphan_dir_repair),
		T1SEQ(test_posix_corrupt_dirent_dotdot),
		T1REG(test_posix_corrupt_dirent_dot),
		T1SEQ(test_posix_corrupt_dirent_slash),
		T1REG(test_posix_corrupt_dirent_cookie),
		T1SEQ(test_posix_corrupt_inode_type),
		T1REG(test_posix_corrupt_symlink_empty),
	};

	if (getenv("FOLIOFS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FOLIOFS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
