/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs: the filesystem layer's interface, over every on-disk format. A device
 * holds one format, chosen at mkfs time and detected at mount (src/fs/fs.c):
 *   - zonefs: the kernel zonefs superblock and tree — cnv/ and seq/, one file
 *     per zone, named by index — with buffered and O_SYNC writes accepted on
 *     sequential files. Inode numbers are kernel zonefs's: a file is its
 *     zone's index, the root is nr_zones, cnv/ nr_zones+1, seq/ nr_zones+2.
 *     It has no namespace operations: they answer as the kernel's zonefs
 *     (EPERM, EACCES for O_CREAT of a new name, EOPNOTSUPP for xattrs).
 *   - posix: a general namespace on zones (issue 11, docs/).
 * Every call returns 0/count or -errno.
 */
#ifndef FOLIOFS_FS_H
#define FOLIOFS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include "foliofs/cache.h"

struct ff_fs;

/* The kernel's struct zonefs_super: 4096 bytes, little-endian, at offset 0. */
#define FF_ZONEFS_MAGIC	    0x5a4f4653u
#define FF_ZONEFS_SB_SIZE   4096u
#define FF_ZONEFS_LABEL_LEN 64
#define FF_ZONEFS_UUID_SIZE 16
#define FF_ZONEFS_F_AGGRCNV (1ull << 0)
#define FF_ZONEFS_F_UID	    (1ull << 1)
#define FF_ZONEFS_F_GID	    (1ull << 2)
#define FF_ZONEFS_F_PERM    (1ull << 3)
#define FF_ZONEFS_F_DEFINED \
	(FF_ZONEFS_F_AGGRCNV | FF_ZONEFS_F_UID | FF_ZONEFS_F_GID | FF_ZONEFS_F_PERM)

struct ff_zonefs_sb {
	/* on disk: 64 bytes, NUL-padded, with no NUL when all 64 are used */
	char label[FF_ZONEFS_LABEL_LEN + 1];
	uint8_t uuid[FF_ZONEFS_UUID_SIZE];
	uint64_t features;
	uint32_t uid, gid, perm;
};

/* Encode sb into a 4096-byte block with its crc; decode and check one. */
void ff_zonefs_sb_encode(const struct ff_zonefs_sb *sb, void *blk);
/*
 * Returns 0, -EINVAL (not zonefs: bad magic), -EBADMSG (crc), -EOPNOTSUPP
 * (features), -EUCLEAN (perm out of range, or the reserved bytes not zero).
 */
int ff_zonefs_sb_decode(const void *blk, struct ff_zonefs_sb *sb);

enum ff_errors_mode {
	FF_ERRORS_REMOUNT_RO = 0,
	FF_ERRORS_ZONE_RO,
	FF_ERRORS_ZONE_OFFLINE,
	FF_ERRORS_REPAIR,
};

#define FF_DEFRAG_OFF	    UINT32_MAX
#define FF_COMMIT_DEFAULT_S 5
#define FF_COMMIT_MAX_S	    86400

/* When a read moves a file's atime (mount's relatime, noatime, strictatime). */
enum ff_atime {
	FF_ATIME_RELATIME, /* older than mtime or ctime, or a day old (the default) */
	FF_ATIME_NONE,	   /* never */
	FF_ATIME_STRICT,   /* at every read */
};

struct ff_fs_opts {
	struct ff_cache_opts cache;
	enum ff_atime atime; /* posix format */
	enum ff_errors_mode errors;
	bool explicit_open;
	bool read_only;
	bool discard; /* ff_dev_opts.discard: an emulated zoned device discards reset zones */
	unsigned lock_wait_s; /* an image file in use: wait this long for it (0: fail at once) */
	/*
	 * posix format on a device of conventional zones only: a file is
	 * defragmented when an in-place overwrite spans a small extent's end,
	 * and with defrag_min N > 0 also once appends gave it N more extents
	 * (0: not for appends; FF_DEFRAG_OFF: never).
	 */
	uint32_t defrag_min;
	/*
	 * posix format: metadata changes nobody made durable (a rename, a
	 * create, an unlink, a chmod) are committed within this many seconds,
	 * as ext4's commit=N: sync(2) and syncfs(2) never reach a FUSE daemon
	 * (the kernel sends FUSE_SYNCFS to virtiofs only). 0: FF_COMMIT_DEFAULT_S.
	 */
	uint32_t commit_s;
	/*
	 * Bytes [off, off + len) of inode ino changed (len 0: to the end; the
	 * size may have changed too) other than by the ff_fs_write or
	 * ff_fs_setattr call that is running: a size moved back to the write
	 * pointer after a background write error, a GC move. For the FUSE
	 * layer to drop what the kernel caches. NULL: nobody to tell. Called
	 * with no filesystem lock held; it may wait for a read to finish.
	 */
	void (*changed)(void *arg, uint64_t ino, uint64_t off, uint64_t len);
	void *changed_arg;
	/*
	 * The whole filesystem became read-only on its own (errors=remount-ro
	 * after a write error): every later write is refused with EROFS. For the
	 * FUSE layer to make the mount itself read-only, so that programs see
	 * ST_RDONLY in statvfs and the kernel refuses writes as it does for a
	 * kernel filesystem. Called once, from the thread that met the error,
	 * possibly inside a request: it must not wait for another request.
	 * Gets changed_arg. NULL: nobody to tell.
	 */
	void (*went_read_only)(void *arg);
};

/* On-disk formats */
enum ff_fs_format {
	FF_FMT_ZONEFS = 1, /* the kernel's zonefs layout */
	FF_FMT_POSIX,	   /* the general namespace */
};

struct ff_mkfs_opts {
	enum ff_fs_format format; /* 0: the default format */
	bool force;
	bool emulate_zoned;
	uint64_t zone_size; /* regular / emulated (0 = 256 MiB) */
	uint64_t zone_cap;
	uint32_t conv_zones; /* emulated: conventional zones (zone 0 among them) */
	bool zone_opts;	     /* any zone geometry option was given */
	uint32_t max_open, max_active;
	struct ff_zonefs_sb sb; /* label, features, uid, gid, perm; uuid made by mkfs */
};

/* Format a device. Refuses (-EEXIST) one that holds data unless force. */
int ff_fs_mkfs(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len);
/* Open and check a device without mounting it (nothing is written). */
int ff_fs_check(const char *path, bool read_only);
/* Whether two paths name one device (ff_dev_same_storage: a loop device and its file too). */
bool ff_fs_same_device(const char *a, const char *b);

/*
 * fsck: check a whole device without mounting it and without writing to it
 * (the zonefs format has nothing a repair could restore that the mount does
 * not already: FF_FSCK_REPAIR and FF_FSCK_PREEN are accepted and change
 * nothing). Holds the device's one-user lock meanwhile: a mounted device is
 * -EBUSY. Each problem goes to r->problem and counts in r->problems; notes
 * (a state the mount handles, such as a pointer rolled back after a power
 * cut) go to r->note. r->progress, when set, is called as zones are checked.
 * Returns 0 when the check ran (r->problems says what it found) or -errno
 * when it could not run (the device cannot be opened or is in use).
 */
#define FF_FSCK_READ_ONLY (1u << 0) /* -n */
#define FF_FSCK_REPAIR	  (1u << 1) /* -y */
#define FF_FSCK_PREEN	  (1u << 2) /* -p / -a */
#define FF_FSCK_FORCE	  (1u << 3) /* -f */
struct ff_fsck_report {
	void (*problem)(void *arg, const char *msg);		    /* may be NULL */
	void (*note)(void *arg, const char *msg);		    /* may be NULL */
	void (*progress)(void *arg, uint64_t done, uint64_t total); /* may be NULL */
	void *arg;
	/* out */
	const char *format; /* "zonefs" once the superblock was read */
	char label[FF_ZONEFS_LABEL_LEN + 1];
	uint32_t nr_zones, nr_cnv_zones;
	uint32_t problems, notes, repaired;
	uint32_t zones_empty, zones_open, zones_closed, zones_full, zones_bad;
	uint64_t bytes_used; /* written bytes of sequential zones */
};
int ff_fs_fsck(const char *path, unsigned flags, struct ff_fsck_report *r);
int ff_fs_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **out);
/* Writes everything back, closes. Returns the first error. */
int ff_fs_unmount(struct ff_fs *fs);

uint64_t ff_fs_root_ino(const struct ff_fs *fs);
/* Which format is mounted. */
enum ff_fs_format ff_fs_format(const struct ff_fs *fs);
/*
 * Every call that returns an entry (lookup, create, mknod, mkdir, symlink,
 * link) counts one FUSE lookup of the inode; ff_fs_forget drops nlookup of
 * them. An inode whose link count is 0 lives until its lookups are forgotten
 * and its last open is released; a crash reclaims it at the next mount.
 */
int ff_fs_lookup(struct ff_fs *fs, uint64_t dir, const char *name, struct stat *st);
void ff_fs_forget(struct ff_fs *fs, uint64_t ino, uint64_t nlookup);
int ff_fs_getattr(struct ff_fs *fs, uint64_t ino, struct stat *st);
/*
 * The entry of a directory after cookie (0: the first; no . and ..), and in
 * *next the cookie that resumes after it. A cookie stays valid while the
 * directory changes: an entry present for the whole listing is returned
 * once. -ENOENT past the end.
 */
int ff_fs_readdir(struct ff_fs *fs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		  struct stat *st, uint64_t *next);
/* chmod/chown (not persisted, as in zonefs); truncate when FF_SET_SIZE. */
#define FF_SET_MODE	 (1u << 0)
#define FF_SET_UID	 (1u << 1)
#define FF_SET_GID	 (1u << 2)
#define FF_SET_SIZE	 (1u << 3)
#define FF_SET_ATIME	 (1u << 4) /* st_atim */
#define FF_SET_MTIME	 (1u << 5) /* st_mtim */
#define FF_SET_ATIME_NOW (1u << 6)
#define FF_SET_MTIME_NOW (1u << 7)
#define FF_SET_CTIME	 (1u << 8) /* st_ctim */
int ff_fs_setattr(struct ff_fs *fs, uint64_t ino, const struct stat *st, unsigned which);
/*
 * Open for flags (O_ACCMODE, O_TRUNC); *open_flags gets FF_OPEN_* hints for
 * the FUSE layer (may be NULL).
 */
#define FF_OPEN_NO_SHARED_WRITE_MMAP (1u << 0) /* refuse writable MAP_SHARED (sequential files) */
#define FF_OPEN_FIXED_SIZE	     (1u << 1) /* the size never moves (conventional zone files) */
int ff_fs_open(struct ff_fs *fs, uint64_t ino, int flags, unsigned *open_flags);
int ff_fs_release(struct ff_fs *fs, uint64_t ino, int flags);
ssize_t ff_fs_read(struct ff_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off);
/* flags: FF_CW_SYNC / FF_CW_DSYNC / FF_CW_DIRECT, and FF_FS_APPEND for an O_APPEND open */
#define FF_FS_APPEND (1u << 16)
ssize_t ff_fs_write(struct ff_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		    unsigned flags);
int ff_fs_fsync(struct ff_fs *fs, uint64_t ino, bool datasync);
/* fsync of a directory: its entries are durable when it returns. */
int ff_fs_fsyncdir(struct ff_fs *fs, uint64_t ino, bool datasync);
/*
 * At close (FUSE_FLUSH): write back what the file has dirty and make it
 * durable, so that what was written before the last close is on the device
 * when umount returns. Unlike fsync, a partial tail block that the format
 * cannot write yet is not an error. Returns 0 or the write-back's -errno.
 */
int ff_fs_flush(struct ff_fs *fs, uint64_t ino);
int ff_fs_statfs(struct ff_fs *fs, struct statvfs *st);
/* Text for user.foliofs.stats (root) and user.foliofs.zone (a file). Returns length. */
int ff_fs_stats_text(struct ff_fs *fs, char *buf, size_t len);
int ff_fs_zone_text(struct ff_fs *fs, uint64_t ino, char *buf, size_t len);

/* ---- the namespace (the posix format) ---- */

/* Who asks: the FUSE request's fsuid/fsgid, for the owner of what it makes. */
struct ff_cred {
	uint32_t uid, gid;
};
/* mknod of S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK */
int ff_fs_mknod(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		const struct ff_cred *cr, struct stat *st);
int ff_fs_mkdir(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode,
		const struct ff_cred *cr, struct stat *st);
int ff_fs_symlink(struct ff_fs *fs, uint64_t dir, const char *name, const char *target,
		  const struct ff_cred *cr, struct stat *st);
/* The target's length; not NUL-terminated. */
ssize_t ff_fs_readlink(struct ff_fs *fs, uint64_t ino, char *buf, size_t len);
int ff_fs_link(struct ff_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
	       struct stat *st);
int ff_fs_unlink(struct ff_fs *fs, uint64_t dir, const char *name);
int ff_fs_rmdir(struct ff_fs *fs, uint64_t dir, const char *name);
#define FF_RENAME_NOREPLACE (1u << 0) /* RENAME_NOREPLACE */
#define FF_RENAME_EXCHANGE  (1u << 1) /* RENAME_EXCHANGE */
/* RENAME_WHITEOUT: a whiteout (character device 0/0, owned by cr) takes the old name */
#define FF_RENAME_WHITEOUT (1u << 2)
int ff_fs_rename(struct ff_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		 const char *newname, unsigned flags, const struct ff_cred *cr);
/* Create a regular file and open it (flags as ff_fs_open). */
int ff_fs_create(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, int flags,
		 const struct ff_cred *cr, struct stat *st, unsigned *open_flags);
/* flags: XATTR_CREATE / XATTR_REPLACE. get and list return the size, or -ERANGE. */
int ff_fs_setxattr(struct ff_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
		   int flags);
ssize_t ff_fs_getxattr(struct ff_fs *fs, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t ff_fs_listxattr(struct ff_fs *fs, uint64_t ino, char *buf, size_t size);
int ff_fs_removexattr(struct ff_fs *fs, uint64_t ino, const char *name);
/* fallocate(2) modes: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE */
int ff_fs_fallocate(struct ff_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* SEEK_DATA / SEEK_HOLE: the offset found, or -ENXIO */
int64_t ff_fs_lseek(struct ff_fs *fs, uint64_t ino, int64_t off, int whence);

#endif
