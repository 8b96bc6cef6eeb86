/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the unit test programs: scratch images and buffers, and
 * the parts every fixture repeats: an image formatted as an emulated zoned
 * device or by mkfs, a filesystem mounted, remounted and unmounted, a stats
 * counter. Each program keeps its own fixture struct and setup/teardown
 * functions; these take the fields they need.
 */
#ifndef FOLIOFS_TESTUTIL_H
#define FOLIOFS_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"

/*
 * ThreadSanitizer builds (scripts/test's tsan stage) run these programs 10 to
 * 30 times slower. TSan reports a race from the happens-before order of the
 * accesses it sees, not from a wrong result, so a stress loop's later rounds
 * repeat interleavings it has already judged: under TSan the longest loops
 * run TU_ROUNDS(n), a quarter of their rounds (at least one), and the
 * crash-point sweeps take every TU_STEP-th point. The plain and ASan runs
 * keep them all.
 */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#ifdef TU_TSAN
#define TU_STEP 4
#else
#define TU_STEP 1
#endif
#define TU_ROUNDS(n) ((n) / TU_STEP ? (n) / TU_STEP : 1)

/* Copy image from to to, holes kept (what a crash leaves, or the image to go back to). */
static inline void tu_copy_image(const char *from, const char *to)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

/* A sparse image file of size bytes under /var/tmp; path written to buf. */
static inline int tu_make_image(char *buf, size_t buflen, const char *tag, unsigned long long size)
{
	int fd;

	if (!buf || !buflen)
		return -1; /* also tells GCC (ASan builds, -O2) buf is not NULL */
	snprintf(buf, buflen, "/var/tmp/foliofs-test-%s-%d.img", tag, (int)getpid());
	fd = open(buf, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static inline void *tu_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len ? len : 4096))
		return NULL;
	memset(p, 0, len);
	return p;
}

/* Fill with a pattern derived from seed so any block can be checked later. */
static inline void tu_fill(void *buf, size_t len, unsigned long long seed)
{
	unsigned long long x = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

/* Whether tu_fail_hook fails writes (one flag a program: a static inline's own static). */
static inline _Atomic bool *tu_fail_writes_flag(void)
{
	static _Atomic bool on;

	return &on;
}

/* Make tu_fail_hook fail every write from now (on) or pass them again. */
static inline void tu_fail_writes(bool on)
{
	atomic_store(tu_fail_writes_flag(), on);
}

/* A device fault hook (ff_dev_fault_hook): EIO for every write while tu_fail_writes(true). */
static inline int tu_fail_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	(void)dev;
	(void)off;
	(void)len;
	return atomic_load(tu_fail_writes_flag()) ? -EIO : 0;
}

/*
 * A fresh image of size bytes (tag names it, as tu_make_image) formatted as
 * an emulated zoned device with eo. Returns 0, -1 when the image could not
 * be made, or ff_dev_format_emulated's -errno.
 */
static inline int tu_emu_mkimage(char *path, size_t pathlen, const char *tag,
				 unsigned long long size, const struct ff_emu_opts *eo)
{
	if (tu_make_image(path, pathlen, tag, size))
		return -1;
	return ff_dev_format_emulated(path, eo, false);
}

/*
 * A fresh image of size bytes (tag names it, as tu_make_image) formatted by
 * ff_fs_mkfs with mo. Returns 0, -1 when the image could not be made, or
 * ff_fs_mkfs's -errno.
 */
static inline int tu_fs_mkimage(char *path, size_t pathlen, const char *tag,
				unsigned long long size, const struct ff_mkfs_opts *mo)
{
	char summary[512];

	if (tu_make_image(path, pathlen, tag, size))
		return -1;
	return ff_fs_mkfs(path, mo, summary, sizeof(summary));
}

/*
 * Mount path with o into *fs; the root's inode to *root unless root is
 * NULL. Without an explicit commit_s, the posix committer's
 * interval is the longest: tests count the log writes and flushes of an
 * operation, and a background commit would land in those windows at
 * random. test_posix_commit_interval sets it.
 */
static inline void tu_fs_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **fs,
			       uint64_t *root)
{
	struct ff_fs_opts oo = {0};

	if (o)
		oo = *o;
	if (!oo.commit_s)
		oo.commit_s = FF_COMMIT_MAX_S;
	assert_int_equal(ff_fs_mount(path, &oo, fs), 0);
	if (root)
		*root = ff_fs_root_ino(*fs);
}

/*
 * Unmount *fs and mount path again with o. *fs is NULL in between, so a
 * mount that fails leaves teardown nothing to unmount.
 */
static inline void tu_fs_remount(const char *path, const struct ff_fs_opts *o, struct ff_fs **fs,
				 uint64_t *root)
{
	assert_int_equal(ff_fs_unmount(*fs), 0);
	*fs = NULL;
	tu_fs_mount(path, o, fs, root);
}

/* Teardown's part: unmount fs unless it is NULL (it must succeed), remove the image. */
static inline void tu_fs_unmount_rm(struct ff_fs *fs, const char *path)
{
	if (fs)
		assert_int_equal(ff_fs_unmount(fs), 0);
	unlink(path);
}

/* The number after key in fs's stats text (user.foliofs.stats); key must be there. */
static inline uint64_t tu_fs_stat(struct ff_fs *fs, const char *key)
{
	char buf[4096], *s;
	int n = ff_fs_stats_text(fs, buf, sizeof(buf));

	assert_true(n > 0);
	s = strstr(buf, key);
	assert_non_null(s);
	return strtoull(s + strlen(key) + 1, NULL, 10);
}

#endif
