/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the filesystem layer's files share and nobody else sees: the format
 * table. A mounted filesystem is one format's structure whose first member is
 * struct ff_fs; fs.c checks what the device holds, picks the format, and
 * routes every ff_fs_* call through its table. An operation a format leaves
 * NULL answers as the kernel does for a filesystem without it (fs.c says
 * which errno).
 */
#ifndef FOLIOFS_FS_INTERNAL_H
#define FOLIOFS_FS_INTERNAL_H

#include "foliofs/fs.h"

struct ff_fs_fmt;

struct ff_fs {
	const struct ff_fs_fmt *fmt; /* immutable after mount */
};

struct ff_fs_fmt {
	const char *name;
	enum ff_fs_format id;
	/* Whether the first 4096 bytes of a device hold this format's superblock. */
	bool (*probe)(const void *blk0);
	/* Whether the next 4096 bytes hold the copy of it kept there (NULL: none is kept). */
	bool (*probe_copy)(const void *blk1);
	int (*mkfs)(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len);
	int (*check)(const char *path, bool read_only);
	/* fsck.foliofs's check of a device this format recognised (fs.h ff_fs_fsck) */
	int (*fsck)(const char *path, unsigned flags, struct ff_fsck_report *r);
	int (*mount)(const char *path, const struct ff_fs_opts *o, struct ff_fs **out);
	int (*unmount)(struct ff_fs *fs);
	uint64_t (*root_ino)(const struct ff_fs *fs);
	int (*lookup)(struct ff_fs *fs, uint64_t dir, const char *name, struct stat *st);
	void (*forget)(struct ff_fs *fs, uint64_t ino, uint64_t nlookup);
	int (*getattr)(struct ff_fs *fs, uint64_t ino, struct stat *st);
	int (*readdir)(struct ff_fs *fs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		       struct stat *st, uint64_t *next);
	int (*setattr)(struct ff_fs *fs, uint64_t ino, const struct stat *st, unsigned which);
	int (*open)(struct ff_fs *fs, uint64_t ino, int flags, unsigned *open_flags);
	int (*release)(struct ff_fs *fs, uint64_t ino, int flags);
	ssize_t (*read)(struct ff_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off);
	ssize_t (*write)(struct ff_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
			 unsigned flags);
	int (*fsync)(struct ff_fs *fs, uint64_t ino, bool datasync);
	int (*fsyncdir)(struct ff_fs *fs, uint64_t ino, bool datasync);
	int (*flush)(struct ff_fs *fs, uint64_t ino);
	int (*statfs)(struct ff_fs *fs, struct statvfs *st);
	int (*stats_text)(struct ff_fs *fs, char *buf, size_t len);
	int (*zone_text)(struct ff_fs *fs, uint64_t ino, char *buf, size_t len);
	/* the namespace; NULL where the format has none */
	int (*mknod)(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		     const struct ff_cred *cr, struct stat *st);
	int (*mkdir)(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode,
		     const struct ff_cred *cr, struct stat *st);
	int (*symlink)(struct ff_fs *fs, uint64_t dir, const char *name, const char *target,
		       const struct ff_cred *cr, struct stat *st);
	ssize_t (*readlink)(struct ff_fs *fs, uint64_t ino, char *buf, size_t len);
	int (*link)(struct ff_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
		    struct stat *st);
	int (*unlink)(struct ff_fs *fs, uint64_t dir, const char *name);
	int (*rmdir)(struct ff_fs *fs, uint64_t dir, const char *name);
	int (*rename)(struct ff_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		      const char *newname, unsigned flags, const struct ff_cred *cr);
	int (*create)(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, int flags,
		      const struct ff_cred *cr, struct stat *st, unsigned *open_flags);
	int (*setxattr)(struct ff_fs *fs, uint64_t ino, const char *name, const void *value,
			size_t size, int flags);
	ssize_t (*getxattr)(struct ff_fs *fs, uint64_t ino, const char *name, void *buf,
			    size_t size);
	ssize_t (*listxattr)(struct ff_fs *fs, uint64_t ino, char *buf, size_t size);
	int (*removexattr)(struct ff_fs *fs, uint64_t ino, const char *name);
	int (*fallocate)(struct ff_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
	int64_t (*lseek)(struct ff_fs *fs, uint64_t ino, int64_t off, int whence);
};

extern const struct ff_fs_fmt ff_fmt_zonefs;
extern const struct ff_fs_fmt ff_fmt_posix;

/*
 * fs.c: the device, zone-queue and cache counters and the write
 * amplification, in the lines every format's stats_text gives (foliofs stat
 * and the tests read them by name). snprintf's return.
 */
int ff_fs_io_stats_text(struct ff_dev *dev, struct ff_cache *cache, char *buf, size_t len);

/* fs.c: a zone size for mkfs's summary, "256 MiB", or "128 KiB" under a MiB; buf returned */
const char *ff_fs_zone_size_text(uint64_t size, char *buf, size_t len);

/* super.c: the zonefs format's mkfs; zonefs_fsck.c: its fsck */
int ff_zonefs_mkfs(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len);
int ff_zonefs_fsck(const char *path, unsigned flags, struct ff_fsck_report *r);
/* Whether path's first 4 bytes are the zonefs superblock's magic (a plain read). */
bool ff_zonefs_raw_has_magic(const char *path);
/*
 * Say why a device with a zonefs superblock has no zones mkfs.foliofs laid
 * (too_small: not even two at the default zone size): its size changed, or
 * its end was overwritten. Returns -EUCLEAN.
 */
int ff_zonefs_resized(const char *path, bool too_small);
/*
 * Say that path holds no foliofs filesystem: never formatted (its first
 * 64 KiB are zeros: run mkfs.foliofs), or it holds something else.
 */
void ff_zonefs_not_ours(const char *path);

#endif
