// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The format dispatch: which on-disk format a device holds, and every ff_fs_*
 * call routed to that format's table (internal.h). Detection reads the first
 * block of the device and asks each format whether it is its superblock; a
 * device no format recognises goes to the zonefs format's checks, whose
 * messages say what is wrong with it. An operation a format does not have
 * answers as a Linux filesystem without it: EPERM for the namespace calls
 * (as kernel zonefs), EACCES for O_CREAT of a new name, EOPNOTSUPP for
 * xattrs and fallocate, EINVAL for readlink of what is not a link.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/cache.h"
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "internal.h"

static const struct ff_fs_fmt *const formats[] = {&ff_fmt_zonefs, &ff_fmt_posix};

/* The default format of mkfs. */
#define DEFAULT_FORMAT FF_FMT_POSIX

static const struct ff_fs_fmt *fmt_by_id(enum ff_fs_format id)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i]->id == id)
			return formats[i];
	return NULL;
}

/*
 * The format whose superblock starts the device at path, or else the one
 * whose superblock copy is in its second block (the first overwritten or
 * damaged beyond recognition: that format's mount and fsck say how); NULL
 * for none, or a device that cannot be read. A raw read of the first
 * blocks: every kind of device keeps its block 0 at offset 0.
 */
static const struct ff_fs_fmt *probe_path(const char *path)
{
	const size_t nf = sizeof(formats) / sizeof(formats[0]);
	uint8_t *blk = NULL;
	int fd;
	const struct ff_fs_fmt *f = NULL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (!posix_memalign((void **)&blk, 4096, 8192) && pread(fd, blk, 8192, 0) == 8192) {
		for (size_t i = 0; i < nf && !f; i++)
			if (formats[i]->probe && formats[i]->probe(blk))
				f = formats[i];
		for (size_t i = 0; i < nf && !f; i++)
			if (formats[i]->probe_copy && formats[i]->probe_copy(blk + 4096))
				f = formats[i];
	}
	free(blk);
	close(fd);
	return f;
}

/* probe_path's format, or the zonefs format, whose checks explain a device that holds none. */
static const struct ff_fs_fmt *detect(const char *path)
{
	const struct ff_fs_fmt *f = probe_path(path);

	return f ? f : &ff_fmt_zonefs;
}

int ff_fs_mkfs(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len)
{
	const struct ff_fs_fmt *f = fmt_by_id(o->format ? o->format : DEFAULT_FORMAT), *old;
	int ret;

	if (!f) {
		ff_err("mkfs: this foliofs does not know that format");
		return -EINVAL;
	}
	ret = ff_dev_check_writable(path);
	if (ret)
		return ret;
	/* named here; the formats' own checks refuse any other contents */
	if (!o->force && (old = probe_path(path))) {
		ff_err("%s already holds a filesystem in foliofs's %s format; nothing was written. "
		       "Use --force to format it anyway",
		       path, old->name);
		return -EEXIST;
	}
	return f->mkfs(path, o, summary, len);
}

int ff_fs_check(const char *path, bool read_only)
{
	return detect(path)->check(path, read_only);
}

bool ff_fs_same_device(const char *a, const char *b)
{
	return ff_dev_same_storage(a, b);
}

int ff_fs_fsck(const char *path, unsigned flags, struct ff_fsck_report *r)
{
	const struct ff_fs_fmt *f = detect(path);

	if (!f->fsck) {
		ff_err("%s: fsck.foliofs cannot check the %s format yet", path, f->name);
		return -EOPNOTSUPP;
	}
	return f->fsck(path, flags, r);
}

int ff_fs_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **out)
{
	return detect(path)->mount(path, o, out);
}

int ff_fs_unmount(struct ff_fs *fs)
{
	return fs->fmt->unmount(fs);
}

enum ff_fs_format ff_fs_format(const struct ff_fs *fs)
{
	return fs->fmt->id;
}

uint64_t ff_fs_root_ino(const struct ff_fs *fs)
{
	return fs->fmt->root_ino(fs);
}

int ff_fs_lookup(struct ff_fs *fs, uint64_t dir, const char *name, struct stat *st)
{
	return fs->fmt->lookup(fs, dir, name, st);
}

void ff_fs_forget(struct ff_fs *fs, uint64_t ino, uint64_t nlookup)
{
	if (fs->fmt->forget)
		fs->fmt->forget(fs, ino, nlookup);
}

int ff_fs_getattr(struct ff_fs *fs, uint64_t ino, struct stat *st)
{
	return fs->fmt->getattr(fs, ino, st);
}

int ff_fs_readdir(struct ff_fs *fs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		  struct stat *st, uint64_t *next)
{
	return fs->fmt->readdir(fs, dir, cookie, name, namelen, st, next);
}

int ff_fs_setattr(struct ff_fs *fs, uint64_t ino, const struct stat *st, unsigned which)
{
	return fs->fmt->setattr(fs, ino, st, which);
}

int ff_fs_open(struct ff_fs *fs, uint64_t ino, int flags, unsigned *open_flags)
{
	return fs->fmt->open(fs, ino, flags, open_flags);
}

int ff_fs_release(struct ff_fs *fs, uint64_t ino, int flags)
{
	return fs->fmt->release(fs, ino, flags);
}

ssize_t ff_fs_read(struct ff_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	return fs->fmt->read(fs, ino, buf, len, off);
}

ssize_t ff_fs_write(struct ff_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		    unsigned flags)
{
	return fs->fmt->write(fs, ino, buf, len, off, flags);
}

int ff_fs_fsync(struct ff_fs *fs, uint64_t ino, bool datasync)
{
	return fs->fmt->fsync(fs, ino, datasync);
}

int ff_fs_fsyncdir(struct ff_fs *fs, uint64_t ino, bool datasync)
{
	return fs->fmt->fsyncdir(fs, ino, datasync);
}

int ff_fs_flush(struct ff_fs *fs, uint64_t ino)
{
	return fs->fmt->flush(fs, ino);
}

int ff_fs_statfs(struct ff_fs *fs, struct statvfs *st)
{
	return fs->fmt->statfs(fs, st);
}

int ff_fs_stats_text(struct ff_fs *fs, char *buf, size_t len)
{
	return fs->fmt->stats_text(fs, buf, len);
}

int ff_fs_zone_text(struct ff_fs *fs, uint64_t ino, char *buf, size_t len)
{
	return fs->fmt->zone_text(fs, ino, buf, len);
}

int ff_fs_mknod(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		const struct ff_cred *cr, struct stat *st)
{
	return fs->fmt->mknod ? fs->fmt->mknod(fs, dir, name, mode, rdev, cr, st) : -EPERM;
}

int ff_fs_mkdir(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode,
		const struct ff_cred *cr, struct stat *st)
{
	return fs->fmt->mkdir ? fs->fmt->mkdir(fs, dir, name, mode, cr, st) : -EPERM;
}

int ff_fs_symlink(struct ff_fs *fs, uint64_t dir, const char *name, const char *target,
		  const struct ff_cred *cr, struct stat *st)
{
	return fs->fmt->symlink ? fs->fmt->symlink(fs, dir, name, target, cr, st) : -EPERM;
}

ssize_t ff_fs_readlink(struct ff_fs *fs, uint64_t ino, char *buf, size_t len)
{
	return fs->fmt->readlink ? fs->fmt->readlink(fs, ino, buf, len) : -EINVAL;
}

int ff_fs_link(struct ff_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
	       struct stat *st)
{
	return fs->fmt->link ? fs->fmt->link(fs, ino, newdir, newname, st) : -EPERM;
}

int ff_fs_unlink(struct ff_fs *fs, uint64_t dir, const char *name)
{
	return fs->fmt->unlink ? fs->fmt->unlink(fs, dir, name) : -EPERM;
}

int ff_fs_rmdir(struct ff_fs *fs, uint64_t dir, const char *name)
{
	return fs->fmt->rmdir ? fs->fmt->rmdir(fs, dir, name) : -EPERM;
}

int ff_fs_rename(struct ff_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		 const char *newname, unsigned flags, const struct ff_cred *cr)
{
	return fs->fmt->rename ? fs->fmt->rename(fs, dir, name, newdir, newname, flags, cr)
			       : -EPERM;
}

int ff_fs_create(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, int flags,
		 const struct ff_cred *cr, struct stat *st, unsigned *open_flags)
{
	/* the kernel's answer for O_CREAT of a new name in a directory without ->create */
	return fs->fmt->create ? fs->fmt->create(fs, dir, name, mode, flags, cr, st, open_flags)
			       : -EACCES;
}

int ff_fs_setxattr(struct ff_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
		   int flags)
{
	return fs->fmt->setxattr ? fs->fmt->setxattr(fs, ino, name, value, size, flags)
				 : -EOPNOTSUPP;
}

ssize_t ff_fs_getxattr(struct ff_fs *fs, uint64_t ino, const char *name, void *buf, size_t size)
{
	return fs->fmt->getxattr ? fs->fmt->getxattr(fs, ino, name, buf, size) : -EOPNOTSUPP;
}

ssize_t ff_fs_listxattr(struct ff_fs *fs, uint64_t ino, char *buf, size_t size)
{
	return fs->fmt->listxattr ? fs->fmt->listxattr(fs, ino, buf, size) : 0;
}

int ff_fs_removexattr(struct ff_fs *fs, uint64_t ino, const char *name)
{
	return fs->fmt->removexattr ? fs->fmt->removexattr(fs, ino, name) : -EOPNOTSUPP;
}

int ff_fs_fallocate(struct ff_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	return fs->fmt->fallocate ? fs->fmt->fallocate(fs, ino, mode, off, len) : -EOPNOTSUPP;
}

int64_t ff_fs_lseek(struct ff_fs *fs, uint64_t ino, int64_t off, int whence)
{
	struct stat st;
	int ret;

	if (fs->fmt->lseek)
		return fs->fmt->lseek(fs, ino, off, whence);
	/* no holes: all of the file is data (the generic_file_llseek answer) */
	ret = ff_fs_getattr(fs, ino, &st);
	if (ret)
		return ret;
	if (off < 0 || off >= st.st_size)
		return -ENXIO;
	return whence == SEEK_DATA ? off : st.st_size;
}

const char *ff_fs_zone_size_text(uint64_t size, char *buf, size_t len)
{
	if (size % (1u << 20))
		snprintf(buf, len, "%llu KiB", (unsigned long long)(size >> 10));
	else
		snprintf(buf, len, "%llu MiB", (unsigned long long)(size >> 20));
	return buf;
}

int ff_fs_io_stats_text(struct ff_dev *dev, struct ff_cache *cache, char *buf, size_t len)
{
	struct ff_dev_stats d;
	struct ff_zoneq_stats q;
	struct ff_cache_stats c;

	ff_dev_stats(dev, &d);
	ff_zoneq_stats(dev, &q);
	ff_cache_stats(cache, &c);
	return snprintf(
		buf, len,
		"dev_reads %llu\ndev_writes %llu\ndev_fua_writes %llu\ndev_flushes %llu\n"
		"dev_zone_ops %llu\n"
		"dev_bytes_read %llu\ndev_bytes_written %llu\ndev_meta_bytes %llu\n"
		"dev_read_errors %llu\ndev_write_errors %llu\n"
		"zoneq_queued %llu\nzoneq_issued %llu\nzoneq_merged %llu\nzoneq_errors %llu\n"
		"zoneq_resyncs %llu\n"
		"cache_hits %llu\ncache_misses %llu\ncache_bytes_copied_in %llu\n"
		"cache_bytes_copied_out %llu\ncache_user_bytes_written %llu\n"
		"cache_writethrough_bytes %llu\ncache_writeback_bytes %llu\n"
		"cache_read_bytes %llu\ncache_dirty_bytes %llu\ncache_writeback_inflight %llu\n"
		"cache_cached_bytes %llu\ncache_reclaims %llu\ncache_throttle_waits %llu\n"
		"write_amplification %.4f\n",
		(unsigned long long)d.reads, (unsigned long long)d.writes,
		(unsigned long long)d.fua_writes, (unsigned long long)d.flushes,
		(unsigned long long)d.zone_ops, (unsigned long long)d.bytes_read,
		(unsigned long long)d.bytes_written, (unsigned long long)d.meta_bytes,
		(unsigned long long)d.read_errors, (unsigned long long)d.write_errors,
		(unsigned long long)q.queued, (unsigned long long)q.issued,
		(unsigned long long)q.merged, (unsigned long long)q.errors,
		(unsigned long long)q.resyncs, (unsigned long long)c.hits,
		(unsigned long long)c.misses, (unsigned long long)c.bytes_copied_in,
		(unsigned long long)c.bytes_copied_out, (unsigned long long)c.user_bytes_written,
		(unsigned long long)c.wt_bytes, (unsigned long long)c.wb_bytes,
		(unsigned long long)c.read_bytes, (unsigned long long)c.dirty_bytes,
		(unsigned long long)c.writeback_bytes, (unsigned long long)c.cached_bytes,
		(unsigned long long)c.reclaims, (unsigned long long)c.throttle_waits,
		c.user_bytes_written ? (double)d.bytes_written / (double)c.user_bytes_written
				     : 0.0);
}
