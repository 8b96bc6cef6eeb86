// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The zonefs format: a file per zone, over the cache and the device.
 *
 * The tree is the kernel's: the root holds cnv/ (conventional zones; one
 * file cnv/0 for all of them with aggr_cnv) and seq/ (sequential zones), each
 * file named by its index in its group; zone 0 holds the superblock and is
 * hidden; nothing can be created, removed or renamed. The device is the
 * metadata: a sequential file's size is its zone's write pointer — here, the
 * zone queue's reserve pointer plus buffered appends still in the cache — and
 * a conventional file's size is its capacity.
 *
 * Beyond the kernel, buffered writes to sequential files are accepted: the
 * cache holds them and writes them back through the zone queue in order;
 * with O_SYNC/O_DSYNC they go write-through and the reply means durable.
 * Sub-block rule: a sync write to a sequential file must end on a cache block
 * (4 KiB) boundary: one that does not is cut to its whole blocks, which are
 * written durably, and gets a short count; one without a whole block gets
 * EINVAL and nothing is written (the short count is what lets a large
 * aligned write from an unaligned user buffer through: FUSE splits it at a
 * page boundary of the buffer, mid-block); a buffered append may
 * end mid-block and its partial tail stays cached until it fills; fsync then
 * makes every whole block durable and returns EINVAL for the tail, which
 * cannot be made durable without changing the file.
 *
 * The cache asks where data lives through map_read/map_write/write_done
 * (the contract: src/cache/cache.c's essay): conventional files map in
 * place; sequential files append to their zone, in file order, which is this
 * format's rule and lives in zf_map_write (earlier data first, what is below
 * the pointer is stored, a partial tail block waits). A file's size moves
 * after ff_cache_write returns (size after data); resets, finishes and the
 * recovery truncate hold the cache's invalidate lock exclusive.
 *
 * Locking: zf_inode.io_lock serialises writes, truncates and opens for write
 * on one file (the kernel's i_rwsem); it is held across cache calls, and
 * taken before the cache's invalidate lock. The size and state fields are
 * atomics, read by the cache's map callbacks from any thread without io_lock
 * (a callback never takes it: the writer holding it may be the caller).
 * size_cv, with io_lock, is broadcast when the size moves. fs->ro is the
 * read-only flag of errors=.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "internal.h"

enum zf_state { ZF_OK = 0, ZF_RDONLY, ZF_OFFLINE };

struct zf_inode {
	struct zf_fs *fs;
	uint64_t ino;	 /* zone index of the first zone */
	uint32_t idx;	 /* the file's name: its index in cnv/ or seq/ */
	uint32_t zone;	 /* first zone */
	uint32_t nzones; /* > 1 for aggregated conventional zones */
	bool seq;
	uint64_t start; /* device offset of the file's first byte */
	uint64_t cap;	/* bytes the file can hold */
	_Atomic uint64_t size;
	_Atomic int state;		 /* enum zf_state */
	_Atomic uint32_t mode, uid, gid; /* chmod/chown, not persisted */
	struct ff_mutex io_lock;
	pthread_cond_t size_cv; /* size moved (with io_lock): out-of-order appends wait */
	int writers;		/* opens for write; guarded by io_lock */
	bool zopen;		/* explicit-open opened the zone for the writers (io_lock) */
	struct ff_cinode *ci;
	/*
	 * 1 + the file offset of the first write-back append that failed since
	 * the last recovery (0: none): the file's durable end when fsync or
	 * close meets the error. Atomic: set by write_done, taken by
	 * writeback_failed.
	 */
	_Atomic uint64_t wb_failed;
};

struct zf_dir {
	uint64_t ino;
	const char *name;
	uint32_t nfiles;
	struct zf_inode **files;
};

struct zf_fs {
	struct ff_fs base; /* first: what fs.c routes through */
	struct ff_dev *dev;
	struct ff_cache *cache;
	struct ff_fs_opts o;
	struct ff_zonefs_sb sb;
	uint32_t nr_zones, blk;
	struct zf_inode *inodes; /* one per file */
	uint32_t nfiles;
	/*
	 * The file whose inode number (its first zone) is the index, NULL for
	 * zone 0 and the zones an aggregated cnv/0 extends: a getattr, open or
	 * read finds its file in O(1). Set at mount, immutable after.
	 */
	struct zf_inode **by_ino;
	struct zf_dir dirs[2]; /* cnv, seq */
	_Atomic bool ro;       /* errors=remount-ro tripped, or mounted ro */
	/*
	 * Sequential files open for writing (zf_inode.writers > 0): the kernel's
	 * nr_wro_seq_files. Changed under the file's io_lock; the sum is an atomic.
	 */
	_Atomic uint32_t nr_wro;
	/*
	 * rel_gen counts the releases that ended a sequential file's writing
	 * (under rel_lock; rel_cv is broadcast at each). close(2) returns
	 * before the daemon has run its RELEASE: the kernel queues it in the
	 * background, and a worker may run the caller's next OPEN first. A
	 * write open refused for the open-zone budget waits for one, so that
	 * close then open behaves as on the kernel's zonefs.
	 */
	struct ff_mutex rel_lock;
	pthread_cond_t rel_cv;
	uint64_t rel_gen;
	uint32_t file_mode, dir_mode;
	struct timespec mount_time; /* every inode's times, as kernel zonefs sets them */
	/* root, cnv/, seq/: chmod/chown as the kernel allows them (not persisted) */
	_Atomic uint32_t dmode[3], duid[3], dgid[3];
};

static const struct ff_cache_ops zf_cache_ops;

/* The file of inode number ino, or NULL (a directory's or no inode). O(1). */
static struct zf_inode *file_of(struct zf_fs *fs, uint64_t ino)
{
	return ino < fs->nr_zones ? fs->by_ino[ino] : NULL;
}

/* The zonefs structure around what fs.c holds (base is its first member). */
static struct zf_fs *zf_of(struct ff_fs *gfs)
{
	return (struct zf_fs *)((char *)gfs - offsetof(struct zf_fs, base));
}

static uint64_t zf_root(const struct zf_fs *fs)
{
	return fs->nr_zones;
}

static uint64_t zf_root_ino(const struct ff_fs *gfs)
{
	return zf_root((const struct zf_fs *)gfs);
}

static int check_sb_msg(const char *path, int ret)
{
	switch (ret) {
	case 0:
		return 0;
	case -EINVAL:
		ff_zonefs_not_ours(path);
		return ret;
	case -EBADMSG:
		ff_err("%s: superblock checksum mismatch: the superblock is corrupt", path);
		return ret;
	case -EOPNOTSUPP:
		ff_err("%s: the superblock has unknown feature bits; this foliofs cannot mount it",
		       path);
		return ret;
	default:
		ff_err("%s: the superblock is invalid (%s)", path, strerror(-ret));
		return ret;
	}
}

static int read_sb(struct ff_dev *dev, const char *path, struct ff_zonefs_sb *sb)
{
	void *blk = NULL;
	struct iovec iov;
	ssize_t r;
	int ret;

	if (posix_memalign(&blk, 4096, FF_ZONEFS_SB_SIZE))
		return -ENOMEM;
	iov = (struct iovec){blk, FF_ZONEFS_SB_SIZE};
	r = ff_dev_read(dev, &iov, 1, 0);
	if (r != FF_ZONEFS_SB_SIZE) {
		ff_err("%s: cannot read the superblock: %s", path,
		       r < 0 ? strerror((int)-r) : "short read");
		free(blk);
		return r < 0 ? (int)r : -EIO;
	}
	ret = check_sb_msg(path, ff_zonefs_sb_decode(blk, sb));
	free(blk);
	/* mkfs records the zones of every device that has none of its own */
	if (!ret && !ff_dev_info(dev)->zones_recorded)
		ret = ff_zonefs_resized(path, false);
	return ret;
}

void ff_zonefs_not_ours(const char *path)
{
	uint8_t *b = malloc(65536);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = b && fd >= 0 ? pread(fd, b, 65536, 0) : -1;
	bool zero = n >= 0 && ff_all_zero(b, (size_t)n);
	char what[160];

	if (fd >= 0)
		close(fd);
	free(b);
	/* zeros at the start need not mean empty: btrfs begins at 64 KiB */
	if (ff_dev_signature(path, what, sizeof(what)) == 1)
		ff_err("%s is not a foliofs device: it holds %s; nothing was changed", path, what);
	else if (zero)
		ff_err("%s is not a foliofs device: it holds no filesystem (its first blocks are zeros); run mkfs.foliofs to format it",
		       path);
	else
		ff_err("%s is not a foliofs device: its first blocks hold other data (another filesystem? blkid %s tells); nothing was changed",
		       path, path);
}

int ff_zonefs_resized(const char *path, bool too_small)
{
	if (too_small)
		ff_err("%s has a zonefs superblock, but is too small for the zones on it: it was cut short since mkfs.foliofs (an image truncated, a copy that ran out of room, a partition shrunk?), and its end, where the zones are described, is gone. Nothing was changed: mount the whole device or copy, or give a shrunk partition back its size",
		       path);
	else
		ff_err("%s has a zonefs superblock, but not the description of its zones that mkfs.foliofs writes at the device's end: its size changed since (a partition or volume grown or shrunk, an image cut short and grown again?), or its last block was overwritten. Nothing was changed: mount the whole device or copy, or give a resized partition back its size",
		       path);
	return -EUCLEAN;
}

/* Whether the first bytes of path hold the zonefs magic (a raw peek for messages only). */
bool ff_zonefs_raw_has_magic(const char *path)
{
	uint8_t b[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool yes;

	if (fd < 0)
		return false;
	yes = pread(fd, b, 4, 0) == 4 &&
	      ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24) == FF_ZONEFS_MAGIC;
	close(fd);
	return yes;
}

static int zf_check(const char *path, bool read_only)
{
	struct ff_dev_opts o = {.read_only = true, .quiet_small = true};
	struct ff_zonefs_sb sb;
	struct ff_dev *dev;
	bool magic = ff_zonefs_raw_has_magic(path);
	int ret;

	(void)read_only;
	/*
	 * A device some other filesystem has mounted is no foliofs device
	 * either; say first what mkfs and fsck say of it, so that the user
	 * hears the same of one device from each command. (Here only: mkfs
	 * and fsck hold the device's lock themselves when they find it is
	 * not ours.)
	 */
	if (!magic)
		ff_dev_report_in_use(path);
	ret = ff_dev_open(path, &o, &dev);
	if (ret && ret != -ENOENT && ret != -EACCES && ret != -EISDIR && ret != -EBUSY && !magic) {
		/* not "too small for the default zone size": it was never formatted */
		ff_zonefs_not_ours(path);
		return -EINVAL;
	}
	if (ret == -ENOSPC)
		ret = ff_zonefs_resized(path, true);
	if (ret)
		return ret;
	ret = read_sb(dev, path, &sb);
	ff_dev_close(dev);
	return ret;
}

/* ---- mount ---- */

/*
 * A zone's condition at mount, as the kernel's zonefs_check_zone_condition
 * and zonefs_inode_update_mode see it. An offline zone can be neither read
 * nor written: size 0, mode 000. A read-only zone has no valid write pointer
 * (null_blk reports all ones), so the file's size cannot be known at mount:
 * the kernel gives it size 0 and mode 000 and refuses reads (EPERM) as for
 * an offline zone, which is the state it gets here. Called while the tree is
 * built, before any other thread sees zi.
 */
static void mount_condition(struct zf_inode *zi, const struct ff_zone *z)
{
	if (z->cond != FF_ZC_OFFLINE && z->cond != FF_ZC_RDONLY)
		return;
	ff_warn("%s/%u: zone %u is %s: the file is empty and cannot be accessed",
		zi->seq ? "seq" : "cnv", zi->idx, zi->zone,
		z->cond == FF_ZC_OFFLINE ? "offline" : "read-only");
	atomic_store(&zi->state, ZF_OFFLINE);
	atomic_store(&zi->size, 0);
	atomic_store(&zi->mode, atomic_load(&zi->mode) & ~0777u);
}

static int build_tree(struct zf_fs *fs)
{
	const struct ff_dev_info *di = ff_dev_info(fs->dev);
	struct ff_zone *zones = calloc(di->nr_zones, sizeof(*zones));
	uint32_t n = 0, ncnv = 0, nseq = 0;
	int ret;

	if (!zones)
		return -ENOMEM;
	ret = ff_dev_report(fs->dev, 0, di->nr_zones, zones);
	if (ret < 0)
		goto out;
	fs->inodes = calloc(di->nr_zones, sizeof(*fs->inodes));
	fs->dirs[0].files = calloc(di->nr_zones, sizeof(void *));
	fs->dirs[1].files = calloc(di->nr_zones, sizeof(void *));
	fs->by_ino = calloc(di->nr_zones, sizeof(void *));
	if (!fs->inodes || !fs->dirs[0].files || !fs->dirs[1].files || !fs->by_ino) {
		ret = -ENOMEM;
		goto out;
	}
	fs->dirs[0] = (struct zf_dir){fs->nr_zones + 1, "cnv", 0, fs->dirs[0].files};
	fs->dirs[1] = (struct zf_dir){fs->nr_zones + 2, "seq", 0, fs->dirs[1].files};
	/* zone 0 holds the superblock: skipped, as the kernel does */
	for (uint32_t i = 1; i < di->nr_zones; i++) {
		struct zf_inode *zi;
		bool seq = zones[i].type != FF_ZONE_CNV;

		if (!seq && (fs->sb.features & FF_ZONEFS_F_AGGRCNV) && ncnv) {
			/* aggregated: contiguous conventional zones extend cnv/0 */
			zi = fs->dirs[0].files[0];
			if (zi->zone + zi->nzones == i) {
				zi->nzones++;
				zi->cap += zones[i].cap;
				if (atomic_load(&zi->state) == ZF_OK)
					atomic_store(&zi->size, zi->cap);
				/* as the kernel: one bad zone makes the whole file so */
				mount_condition(zi, &zones[i]);
			}
			continue;
		}
		zi = &fs->inodes[n++];
		zi->fs = fs;
		zi->ino = i;
		zi->zone = i;
		zi->nzones = 1;
		zi->seq = seq;
		zi->start = zones[i].start;
		zi->cap = zones[i].cap;
		atomic_store(&zi->size,
			     seq ? (zones[i].cond == FF_ZC_FULL ? zones[i].cap
								: zones[i].wp - zones[i].start)
				 : zones[i].cap);
		atomic_store(&zi->mode, fs->file_mode);
		atomic_store(&zi->uid, fs->sb.uid);
		atomic_store(&zi->gid, fs->sb.gid);
		ff_mutex_init(&zi->io_lock);
		zi->idx = seq ? nseq : ncnv;
		fs->by_ino[i] = zi;
		mount_condition(zi, &zones[i]);
		if (seq)
			fs->dirs[1].files[nseq++] = zi;
		else
			fs->dirs[0].files[ncnv++] = zi;
		fs->dirs[0].nfiles = ncnv;
		fs->dirs[1].nfiles = nseq;
	}
	fs->nfiles = n;
	for (uint32_t i = 0; i < n; i++) {
		fs->inodes[i].ci = ff_cache_inode_new(fs->cache, &fs->inodes[i]);
		if (!fs->inodes[i].ci) {
			ret = -ENOMEM;
			goto out;
		}
		ff_cache_inode_set_size(fs->inodes[i].ci, atomic_load(&fs->inodes[i].size));
	}
	ret = 0;
out:
	free(zones);
	return ret;
}

static int zf_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **out)
{
	struct zf_fs *fs = calloc(1, sizeof(*fs));
	struct ff_dev_opts dopt = {.exclusive = true};
	int ret;

	if (!fs)
		return -ENOMEM;
	fs->base.fmt = &ff_fmt_zonefs;
	if (o)
		fs->o = *o;
	dopt.read_only = fs->o.read_only;
	dopt.lock_wait_s = fs->o.lock_wait_s; /* the device layer holds the one-mount lock */
	dopt.discard = fs->o.discard;
	ret = ff_dev_open(path, &dopt, &fs->dev);
	if (ret)
		goto out_free;
	ret = read_sb(fs->dev, path, &fs->sb);
	if (ret)
		goto out_close;
	fs->nr_zones = ff_dev_info(fs->dev)->nr_zones;
	fs->blk =
		ff_dev_info(fs->dev)->lblock_size < 4096 ? 4096 : ff_dev_info(fs->dev)->lblock_size;
	fs->file_mode = (fs->sb.features & FF_ZONEFS_F_PERM) ? fs->sb.perm : 0640;
	fs->dir_mode = 0555;
	for (int d = 0; d < 3; d++)
		atomic_store(&fs->dmode[d], fs->dir_mode);
	if (!(fs->sb.features & FF_ZONEFS_F_UID))
		fs->sb.uid = 0;
	if (!(fs->sb.features & FF_ZONEFS_F_GID))
		fs->sb.gid = 0;
	atomic_store(&fs->ro, fs->o.read_only);
	clock_gettime(CLOCK_REALTIME, &fs->mount_time);
	ret = ff_cache_create(fs->dev, &zf_cache_ops, &fs->o.cache, &fs->cache);
	if (ret) {
		ff_err("%s: bad cache options (cache_size must be at least 4x max_folio, max_folio a power of two)",
		       path);
		goto out_close;
	}
	ret = build_tree(fs);
	if (ret)
		goto out_cache;
	for (uint32_t i = 0; i < fs->nfiles; i++)
		pthread_cond_init(&fs->inodes[i].size_cv, NULL);
	ff_mutex_init(&fs->rel_lock);
	pthread_cond_init(&fs->rel_cv, NULL);
	*out = &fs->base;
	return 0;
out_cache:
	ff_cache_destroy(fs->cache);
out_close:
	ff_dev_close(fs->dev);
out_free:
	free(fs->inodes);
	free(fs->dirs[0].files);
	free(fs->dirs[1].files);
	free(fs->by_ino);
	free(fs);
	return ret;
}

static int zf_unmount(struct ff_fs *gfs)
{
	struct zf_fs *fs = zf_of(gfs);
	int ret = 0;

	for (uint32_t i = 0; i < fs->nfiles; i++) {
		struct zf_inode *zi = &fs->inodes[i];
		uint64_t size = atomic_load(&zi->size);

		/*
		 * Only a tail the device does not hold is lost: not one that is
		 * below the write pointer (written in 512-byte sectors by the
		 * kernel's zonefs), nor a file whose zone is read-only/offline.
		 */
		if (zi->seq && size % fs->blk && atomic_load(&zi->state) == ZF_OK &&
		    ff_zoneq_wp(fs->dev, zi->zone) - zi->start < size)
			ff_warn("seq/%u: a partial tail block of %llu bytes cannot be written to a sequential zone and is dropped",
				zi->idx, (unsigned long long)(size % fs->blk));
	}
	ret = ff_cache_destroy(fs->cache);
	for (uint32_t i = 0; i < fs->nfiles; i++) {
		ff_mutex_destroy(&fs->inodes[i].io_lock);
		pthread_cond_destroy(&fs->inodes[i].size_cv);
	}
	ff_mutex_destroy(&fs->rel_lock);
	pthread_cond_destroy(&fs->rel_cv);
	ff_dev_close(fs->dev);
	free(fs->inodes);
	free(fs->dirs[0].files);
	free(fs->dirs[1].files);
	free(fs->by_ino);
	free(fs);
	return ret;
}

/* ---- the cache's view ---- */

static int zf_map_read(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m)
{
	struct zf_inode *zi = fs_inode;
	uint64_t valid = zi->seq ? ff_zoneq_wp(zi->fs->dev, zi->zone) - zi->start : zi->cap;

	m->file_off = off;
	m->zone = zi->zone;
	if (off >= valid) {
		m->type = FF_MAP_HOLE;
		m->len = len;
		return 0;
	}
	m->type = FF_MAP_INPLACE;
	m->dev_off = zi->start + off;
	m->len = valid - off < len ? valid - off : len;
	return 0;
}

/*
 * Where the blocks [off, off+len) go. Conventional: in place. Sequential:
 * appended to the zone, whose pointer is the file's size, so this file's
 * data reaches the zone in file order, and that order is this format's rule,
 * not the cache's: buffered data below off that is not in the zone yet goes
 * first (written back here, durably for a sync write), and what is already
 * below the pointer (whole-folio dirtying reaches back there) is reported
 * stored. A partial tail block (FF_MAPW_TAIL) is never written: a zone
 * cannot rewrite it when it fills. Called by the cache, without its locks,
 * from any thread, with or without io_lock held by a writer: never takes it.
 */
static int zf_map_write(void *fs_inode, uint64_t off, uint64_t len, unsigned flags,
			struct ff_map *m)
{
	struct zf_inode *zi = fs_inode;
	struct ff_dev *dev = zi->fs->dev;
	uint64_t rp;
	int ret;

	if (off + len > zi->cap || off + len < off)
		return -EFBIG;
	m->file_off = off;
	if (!zi->seq) {
		m->type = FF_MAP_INPLACE;
		m->dev_off = zi->start + off;
		m->len = len;
		m->zone = ff_dev_zone_of(dev, m->dev_off);
		return 0;
	}
	m->zone = zi->zone;
	rp = ff_zoneq_wp(dev, zi->zone) - zi->start;
	if (rp < off) {
		ret = ff_cache_writeback_range(zi->ci, rp, off,
					       flags & FF_MAPW_SYNC ? FF_CW_DSYNC : 0);
		if (ret)
			return ret;
		rp = ff_zoneq_wp(dev, zi->zone) - zi->start;
		if (rp != off) {
			ff_err("seq/%u: zone pointer at file offset %llu after writing back below %llu",
			       zi->idx, (unsigned long long)rp, (unsigned long long)off);
			return -EIO;
		}
	}
	if (rp > off) {
		m->type = FF_MAP_STORED;
		m->dev_off = zi->start + off;
		m->len = rp - off < len ? rp - off : len;
		return 0;
	}
	m->type = FF_MAP_APPEND;
	m->dev_off = zi->start + off; /* only there: the zone queue refuses it elsewhere */
	m->len = (flags & FF_MAPW_TAIL) ? len - zi->fs->blk : len;
	return 0;
}

/* After a failed write: the kernel's recovery, and the errors= policy. */
static void zf_io_error(struct zf_inode *zi, int err)
{
	struct zf_fs *fs = zi->fs;

	ff_err("%s/%u: write error (%s)", zi->seq ? "seq" : "cnv", zi->idx, strerror(-err));
	if (zi->seq) {
		struct ff_zone z;

		if (ff_zoneq_resync(fs->dev, zi->zone) == 0 &&
		    ff_dev_report(fs->dev, zi->zone, 1, &z) == 1) {
			if (z.cond == FF_ZC_OFFLINE)
				atomic_store(&zi->state, ZF_OFFLINE);
			else if (z.cond == FF_ZC_RDONLY)
				atomic_store(&zi->state, ZF_RDONLY);
		}
	}
	/*
	 * As the kernel's zonefs_io_error_cb: what the device reports wins; the
	 * policy can make a zone read-only or offline, never less than that.
	 */
	switch (fs->o.errors) {
	case FF_ERRORS_REMOUNT_RO:
		if (!atomic_exchange(&fs->ro, true)) {
			ff_err("errors=remount-ro: the filesystem is now read-only");
			if (fs->o.went_read_only)
				fs->o.went_read_only(fs->o.changed_arg);
		}
		break;
	case FF_ERRORS_ZONE_RO:
		if (atomic_load(&zi->state) != ZF_OFFLINE)
			atomic_store(&zi->state, ZF_RDONLY);
		break;
	case FF_ERRORS_ZONE_OFFLINE:
		atomic_store(&zi->state, ZF_OFFLINE);
		break;
	case FF_ERRORS_REPAIR:
		break;
	}
}

/*
 * The device is the metadata: nothing to record or commit. An append must
 * have landed where the file's size said (this file is the zone's only
 * writer): anywhere else is a broken pointer, reported as an I/O error. A
 * failed write is handled by its writer (ff_fs_write) or the next fsync.
 */
static int zf_write_done(void *fs_inode, const struct ff_map *m, uint64_t landed_at, ssize_t result,
			 unsigned flags)
{
	struct zf_inode *zi = fs_inode;

	(void)flags;
	if (result < 0 && m->type == FF_MAP_APPEND) {
		uint64_t was = atomic_load(&zi->wb_failed);

		while ((!was || m->file_off + 1 < was) &&
		       !atomic_compare_exchange_weak(&zi->wb_failed, &was, m->file_off + 1))
			;
	}
	if (result < 0 || m->type != FF_MAP_APPEND || landed_at == zi->start + m->file_off)
		return 0;
	ff_err("seq/%u: %llu bytes for file offset %llu landed at zone offset %llu", zi->idx,
	       (unsigned long long)m->len, (unsigned long long)m->file_off,
	       (unsigned long long)(landed_at - zi->start));
	return -EIO;
}

/* fsync's commit point: the zone's pointer is the only metadata, made durable by the flush. */
static int zf_commit(void *fs_inode, bool datasync)
{
	(void)fs_inode;
	(void)datasync;
	return 0;
}

static const struct ff_cache_ops zf_cache_ops = {zf_map_read, zf_map_write, zf_write_done,
						 zf_commit};

/* ---- namespace ---- */

static void fill_dir_stat(struct zf_fs *fs, uint64_t ino, struct stat *st)
{
	uint64_t d = ino - fs->nr_zones;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | atomic_load(&fs->dmode[d]);
	st->st_nlink = 2;
	st->st_uid = atomic_load(&fs->duid[d]);
	st->st_gid = atomic_load(&fs->dgid[d]);
	st->st_blksize = fs->blk;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mount_time;
	if (ino == zf_root(fs)) {
		st->st_nlink = 2 + (fs->dirs[0].nfiles > 0) + 1;
		st->st_size = 2;
	} else {
		st->st_size = fs->dirs[ino - fs->nr_zones - 1].nfiles;
	}
}

static void fill_file_stat(struct zf_fs *fs, struct zf_inode *zi, struct stat *st)
{
	uint64_t size = atomic_load(&zi->size);

	memset(st, 0, sizeof(*st));
	st->st_ino = zi->ino;
	st->st_mode = S_IFREG | atomic_load(&zi->mode);
	st->st_nlink = 1;
	st->st_uid = atomic_load(&zi->uid);
	st->st_gid = atomic_load(&zi->gid);
	st->st_size = atomic_load(&zi->state) == ZF_OFFLINE ? 0 : (off_t)size;
	st->st_blksize = fs->blk;
	st->st_blocks = (blkcnt_t)(zi->cap >> 9);
	st->st_atim = st->st_mtim = st->st_ctim = fs->mount_time;
	/* as the kernel: a read-only zone loses its write bits, an offline one all */
	if (atomic_load(&zi->state) == ZF_OFFLINE)
		st->st_mode &= ~(mode_t)0777;
	else if (atomic_load(&zi->state) != ZF_OK)
		st->st_mode &= ~(mode_t)0222;
}

static int zf_getattr(struct ff_fs *gfs, uint64_t ino, struct stat *st)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi;

	if (ino == zf_root(fs) || ino == fs->nr_zones + 1 || ino == fs->nr_zones + 2) {
		if (ino == fs->nr_zones + 1 && !fs->dirs[0].nfiles)
			return -ENOENT;
		fill_dir_stat(fs, ino, st);
		return 0;
	}
	zi = file_of(fs, ino);
	if (!zi)
		return -ENOENT;
	fill_file_stat(fs, zi, st);
	return 0;
}

/* The idx-th entry of a directory (no . and ..): -ENOENT past the end. */
static int dir_entry(struct zf_fs *fs, uint64_t dir, uint64_t idx, char *name, size_t namelen,
		     struct stat *st)
{
	if (dir == zf_root(fs)) {
		uint64_t k = 0;

		for (int d = 0; d < 2; d++) {
			if (d == 0 && !fs->dirs[0].nfiles)
				continue;
			if (k++ == idx) {
				snprintf(name, namelen, "%s", fs->dirs[d].name);
				fill_dir_stat(fs, fs->dirs[d].ino, st);
				return 0;
			}
		}
		return -ENOENT;
	}
	if (dir == fs->nr_zones + 1 || dir == fs->nr_zones + 2) {
		struct zf_dir *d = &fs->dirs[dir - fs->nr_zones - 1];

		if (idx >= d->nfiles)
			return -ENOENT;
		snprintf(name, namelen, "%llu", (unsigned long long)idx);
		fill_file_stat(fs, d->files[idx], st);
		return 0;
	}
	return file_of(fs, dir) ? -ENOTDIR : -ENOENT;
}

/* The tree never changes: an entry's cookie is its index plus one. */
static int zf_readdir(struct ff_fs *gfs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		      struct stat *st, uint64_t *next)
{
	int ret = dir_entry(zf_of(gfs), dir, cookie, name, namelen, st);

	if (!ret)
		*next = cookie + 1;
	return ret;
}

static int zf_lookup(struct ff_fs *gfs, uint64_t dir, const char *name, struct stat *st)
{
	struct zf_fs *fs = zf_of(gfs);
	char buf[32], *end;
	unsigned long long idx;
	int ret;

	if (dir == zf_root(fs)) {
		for (uint64_t i = 0; dir_entry(fs, dir, i, buf, sizeof(buf), st) == 0; i++)
			if (!strcmp(buf, name))
				return 0;
		return -ENOENT;
	}
	/* files are named by their index in the group: "0", "1", ... */
	if (!name[0] || (name[0] == '0' && name[1]) || name[0] < '0' || name[0] > '9')
		return file_of(fs, dir) ? -ENOTDIR : -ENOENT;
	errno = 0;
	idx = strtoull(name, &end, 10);
	if (*end || errno)
		return -ENOENT;
	ret = dir_entry(fs, dir, idx, buf, sizeof(buf), st);
	return ret == -ENOTDIR ? ret : ret ? -ENOENT : 0;
}

static int zf_setattr(struct ff_fs *gfs, uint64_t ino, const struct stat *st, unsigned which)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);
	int ret = 0;

	if (!zi) {
		uint64_t d = ino - fs->nr_zones;

		if (ino < fs->nr_zones || d > 2)
			return -ENOENT;
		if (which & FF_SET_SIZE)
			return -EISDIR;
		/* as the kernel: no write permission on directories, chown allowed */
		if ((which & FF_SET_MODE) && (st->st_mode & 0222))
			return -EPERM;
		if (which & FF_SET_MODE)
			atomic_store(&fs->dmode[d], (uint32_t)(st->st_mode & 07777));
		if (which & FF_SET_UID)
			atomic_store(&fs->duid[d], (uint32_t)st->st_uid);
		if (which & FF_SET_GID)
			atomic_store(&fs->dgid[d], (uint32_t)st->st_gid);
		return 0;
	}
	if (atomic_load(&zi->state) != ZF_OK)
		return -EPERM; /* as the kernel: a read-only or offline zone's file is immutable */
	if (which & FF_SET_SIZE) {
		uint64_t size = (uint64_t)st->st_size;

		if (atomic_load(&fs->ro))
			return -EROFS;
		if (!zi->seq)
			return -EPERM; /* conventional files have a fixed size */
		if (size != 0 && size != zi->cap)
			return -EPERM;
		ff_mutex_lock(&zi->io_lock);
		/* readers wait: none may cache what the reset or finish changes */
		ff_cache_invalidate_begin(zi->ci);
		if (size == 0) {
			ret = ff_cache_truncate(zi->ci, 0);
			if (!ret)
				ret = ff_zoneq_zone_op(fs->dev, zi->zone, FF_ZOP_RESET);
			/*
			 * As the kernel: a reset closes the zone, and a zone that
			 * explicit-open opened for the file's writers is opened
			 * again.
			 */
			if (!ret && zi->zopen)
				ret = ff_zoneq_zone_op(fs->dev, zi->zone, FF_ZOP_OPEN);
		} else {
			uint64_t cur = atomic_load(&zi->size);

			/*
			 * What the user wrote goes out, durably, before the zone is
			 * finished: the finish is durable at once, and a FULL zone over
			 * data a power cut dropped would show bytes never written. A
			 * partial tail block goes too, padded with the zeros a
			 * finished zone reads past its data: the cache's size moves
			 * to the block's end so the block is written whole.
			 */
			if (cur % fs->blk)
				ff_cache_inode_set_size(zi->ci, ff_round_up(cur, fs->blk));
			/*
			 * A writeback the flusher began before the size moved may
			 * have left the tail dirty (a partial block then), and
			 * it must not reach the zone after the finish: write back
			 * until nothing is dirty. No writer runs (io_lock), so a
			 * second pass ends it.
			 */
			ret = ff_cache_writeback(zi->ci);
			for (int pass = 0; !ret && ff_cache_inode_dirty(zi->ci); pass++) {
				if (pass == 3) {
					ff_err("seq/%u: dirty blocks remain after write-back; the zone is not finished",
					       zi->idx);
					ret = -EIO;
					break;
				}
				ret = ff_cache_writeback(zi->ci);
			}
			if (!ret)
				ret = ff_dev_flush(fs->dev);
			if (!ret)
				ret = ff_zoneq_zone_op(fs->dev, zi->zone, FF_ZOP_FINISH);
			if (!ret)
				zi->zopen = false; /* a full zone is closed for good */
			if (!ret)
				ret = ff_cache_truncate(zi->ci, size);
			else
				ff_cache_inode_set_size(zi->ci, cur);
		}
		if (!ret) {
			atomic_store(&zi->size, size);
			ff_cache_inode_set_size(zi->ci, size);
			pthread_cond_broadcast(&zi->size_cv);
		}
		ff_cache_invalidate_end(zi->ci);
		ff_mutex_unlock(&zi->io_lock);
		if (ret)
			return ret;
	}
	if (which & FF_SET_MODE)
		atomic_store(&zi->mode, (uint32_t)(st->st_mode & 07777));
	if (which & FF_SET_UID)
		atomic_store(&zi->uid, (uint32_t)st->st_uid);
	if (which & FF_SET_GID)
		atomic_store(&zi->gid, (uint32_t)st->st_gid);
	return 0;
}

/* How long a write open refused for the open-zone budget waits for a release. */
#define ZF_RELEASE_WAIT_MS 500

/*
 * Wait until a release that ends a file's writing comes after gen, or the
 * deadline (set on the first call, from 0) passes. True when one came.
 */
static bool wait_release(struct zf_fs *fs, uint64_t gen, struct timespec *deadline)
{
	bool came;

	if (!deadline->tv_sec)
		*deadline = ff_deadline_ms(ZF_RELEASE_WAIT_MS);
	ff_mutex_lock(&fs->rel_lock);
	while (fs->rel_gen == gen && !ff_cond_timedwait(&fs->rel_cv, &fs->rel_lock, deadline))
		;
	came = fs->rel_gen != gen;
	ff_mutex_unlock(&fs->rel_lock);
	return came;
}

/* A write open of a sequential file: its part of zf_open, under io_lock. */
static int write_open(struct zf_fs *fs, struct zf_inode *zi)
{
	int ret = 0;

	ff_mutex_lock(&zi->io_lock);
	if (zi->writers == 0) {
		/* the kernel's zonefs_seq_file_write_open */
		uint32_t wro = atomic_fetch_add(&fs->nr_wro, 1) + 1;
		uint32_t max_wro = ff_dev_info(fs->dev)->max_open;

		if (fs->o.explicit_open && max_wro && wro > max_wro)
			ret = -EBUSY;
		/* a full zone is not opened: the device would refuse it */
		else if (fs->o.explicit_open && atomic_load(&zi->size) < zi->cap) {
			ret = ff_zoneq_zone_op(fs->dev, zi->zone, FF_ZOP_OPEN);
			zi->zopen = !ret;
		}
		if (ret == -ETOOMANYREFS || ret == -EOVERFLOW || ret == -EIO)
			ret = -EBUSY; /* too many open or active zones */
		if (ret)
			atomic_fetch_sub(&fs->nr_wro, 1);
	}
	if (!ret)
		zi->writers++;
	ff_mutex_unlock(&zi->io_lock);
	return ret;
}

static int zf_release(struct ff_fs *gfs, uint64_t ino, int flags);

static int zf_open(struct ff_fs *gfs, uint64_t ino, int flags, unsigned *open_flags)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	int ret = 0;

	if (open_flags)
		*open_flags = !zi ? 0 : zi->seq ? FF_OPEN_NO_SHARED_WRITE_MMAP : FF_OPEN_FIXED_SIZE;
	if (!zi)
		return zf_getattr(&fs->base, ino, &(struct stat){0}) ? -ENOENT : -EISDIR;
	/*
	 * As the kernel: a read-only mount refuses a write open (EROFS), and the
	 * file of a read-only or offline zone is immutable (EPERM); an offline
	 * one opens for reading, and its reads fail.
	 */
	if (wr && atomic_load(&fs->ro))
		return -EROFS;
	if (wr && atomic_load(&zi->state) != ZF_OK)
		return -EPERM;
	if (wr && zi->seq) {
		struct timespec deadline = {0};
		uint64_t gen;

		do {
			ff_mutex_lock(&fs->rel_lock);
			gen = fs->rel_gen;
			ff_mutex_unlock(&fs->rel_lock);
			ret = write_open(fs, zi);
		} while (ret == -EBUSY && wait_release(fs, gen, &deadline));
		if (ret)
			return ret;
	}
	/*
	 * O_TRUNC after the open-zone budget, as the kernel truncates only a
	 * file whose open succeeded: an open refused EBUSY leaves the file
	 * whole. A failed truncate undoes the write open.
	 */
	if ((flags & O_TRUNC) && wr) {
		struct stat st = {.st_size = 0};

		ret = zf_setattr(&fs->base, ino, &st, FF_SET_SIZE);
		if (ret && zi->seq)
			zf_release(&fs->base, ino, flags);
	}
	return ret;
}

static int zf_release(struct ff_fs *gfs, uint64_t ino, int flags)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);

	if (!zi || (flags & O_ACCMODE) == O_RDONLY || !zi->seq)
		return 0;
	ff_mutex_lock(&zi->io_lock);
	if (zi->writers == 0)
		goto out_unlock;
	if (--zi->writers == 0) {
		struct ff_zone z;

		atomic_fetch_sub(&fs->nr_wro, 1);
		if (fs->o.explicit_open && ff_dev_report(fs->dev, zi->zone, 1, &z) == 1 &&
		    z.cond == FF_ZC_EXP_OPEN) {
			ff_cache_writeback(zi->ci);
			ff_zoneq_zone_op(fs->dev, zi->zone, FF_ZOP_CLOSE);
		}
		zi->zopen = false;
		ff_mutex_lock(&fs->rel_lock);
		fs->rel_gen++;
		pthread_cond_broadcast(&fs->rel_cv);
		ff_mutex_unlock(&fs->rel_lock);
	}
out_unlock:
	ff_mutex_unlock(&zi->io_lock);
	return 0;
}

/* ---- data ---- */

static ssize_t zf_read(struct ff_fs *gfs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);

	if (!zi)
		return -EISDIR;
	if (atomic_load(&zi->state) == ZF_OFFLINE)
		return -EPERM; /* as the kernel: an offline zone's file is immutable, mode 000 */
	/*
	 * The cache ends the read at its own size, under the invalidate lock
	 * that a reset or finish holds exclusive: a size read here could
	 * already be stale.
	 */
	if (off >= zi->cap)
		return 0;
	return ff_cache_read(zi->ci, buf, len, off, FF_CR_EOF);
}

/*
 * After a failed write to a sequential file whose size was size before it:
 * true when the zone is usable and its write pointer is still at size, i.e.
 * the device refused the write without writing. Only for the zone resource
 * errors (open or active zone limit: ETOOMANYREFS, EOVERFLOW), which are not
 * I/O errors: the caller gets the error and errors= does not apply. Any other
 * write error goes to errors= even with the pointer unchanged, as the
 * kernel's zonefs_handle_io_error does for writes. Called with io_lock held.
 */
static bool zone_untouched(struct zf_inode *zi, uint64_t size)
{
	struct ff_zone z;

	if (ff_zoneq_resync(zi->fs->dev, zi->zone) ||
	    ff_dev_report(zi->fs->dev, zi->zone, 1, &z) != 1)
		return false;
	if (z.cond == FF_ZC_OFFLINE || z.cond == FF_ZC_RDONLY || z.cond == FF_ZC_FULL)
		return false;
	return z.wp - z.start == size;
}

/*
 * Recovery after a failed write or fsync of a sequential file whose size was
 * isize, as the kernel's zonefs_io_error_cb sets it: the file of an offline
 * zone is empty; with errors=repair the file ends at the zone's write
 * pointer, also when the failed write left data beyond isize; otherwise at
 * the write pointer or isize, whichever is lower (nothing the writer was told
 * failed becomes visible). The cache drops what lies beyond. Called with
 * io_lock held.
 */
static void zf_end_at_wp_locked(struct zf_inode *zi, uint64_t isize)
{
	uint64_t rp = ff_zoneq_wp(zi->fs->dev, zi->zone) - zi->start;
	uint64_t end = rp < isize ? rp : isize;

	ff_assert_held(&zi->io_lock);
	if (atomic_load(&zi->state) == ZF_OFFLINE)
		end = 0;
	else if (zi->fs->o.errors == FF_ERRORS_REPAIR && atomic_load(&zi->state) == ZF_OK &&
		 rp <= zi->cap)
		end = rp;
	ff_cache_invalidate_begin(zi->ci);
	ff_cache_truncate(zi->ci, end);
	atomic_store(&zi->wb_failed, 0); /* recovered: a later failure starts afresh */
	atomic_store(&zi->size, end);
	ff_cache_inode_set_size(zi->ci, end);
	ff_cache_invalidate_end(zi->ci);
	pthread_cond_broadcast(&zi->size_cv);
}

/* How long an append beyond the size waits for the writes before it (a split async write). */
#define ZF_APPEND_WAIT_MS 2000

/*
 * Wait, with io_lock held (released while waiting), until the file's size
 * reaches off or the deadline passes. Returns the size.
 */
static uint64_t wait_size_locked(struct zf_inode *zi, uint64_t off)
{
	struct timespec ts = ff_deadline_ms(ZF_APPEND_WAIT_MS);
	uint64_t size;

	ff_assert_held(&zi->io_lock);
	while ((size = atomic_load(&zi->size)) < off) {
		if (ff_cond_timedwait(&zi->size_cv, &zi->io_lock, &ts))
			return atomic_load(&zi->size);
	}
	return size;
}

/*
 * Write. Sequential files take appends at the size only. An append beyond
 * the size waits (ZF_APPEND_WAIT_MS) for the writes before it: FUSE splits
 * an async O_DIRECT write into 1 MiB requests that worker threads run out of
 * order. The size moves after ff_cache_write returns, once the bytes are in
 * the cache (size after data), so neither a reader nor the cache's writeback
 * ever sees a size ahead of its bytes; io_lock keeps the next append waiting
 * until then. A failed append leaves nothing: the file ends where it was (or
 * at the zone's pointer, if lower).
 */
static ssize_t zf_write(struct ff_fs *gfs, uint64_t ino, const void *buf, size_t len, uint64_t off,
			unsigned flags)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);
	bool sync = flags & (FF_CW_SYNC | FF_CW_DSYNC);
	uint64_t size;
	ssize_t r;

	if (!zi)
		return -EISDIR;
	if (atomic_load(&zi->state) != ZF_OK)
		return -EPERM; /* as the kernel: immutable (read-only or offline zone) */
	if (atomic_load(&fs->ro))
		return -EROFS;
	if (!len)
		return 0;
	if ((flags & FF_FS_APPEND) && !zi->seq)
		return -EINVAL; /* as the kernel: a conventional file has no end to append at */
	flags &= ~FF_FS_APPEND;
	ff_mutex_lock(&zi->io_lock);
	size = atomic_load(&zi->size);
	if (off >= zi->cap) {
		r = -EFBIG;
		goto out;
	}
	/*
	 * Misaligned O_DIRECT to a sequential file, as the kernel: it checks
	 * the alignment after cutting the write at the capacity, so a
	 * misaligned start is EINVAL even for a write that crosses it.
	 */
	if (zi->seq && (flags & FF_CW_DIRECT) && off % fs->blk) {
		r = -EINVAL;
		goto out;
	}
	if (len > zi->cap - off) {
		/*
		 * The kernel's short write up to the capacity, except for
		 * O_DIRECT: FUSE's async direct I/O turns any short count into
		 * EIO although the bytes were written, so a direct write
		 * crossing the capacity writes nothing and gets EFBIG.
		 */
		if (flags & FF_CW_DIRECT) {
			r = -EFBIG;
			goto out;
		}
		len = (size_t)(zi->cap - off);
	}
	if (zi->seq) {
		if (off > size)
			size = wait_size_locked(zi, off);
		if (off != size) {
			r = -EINVAL; /* appends only */
			goto out;
		}
		if ((flags & FF_CW_DIRECT) && len % fs->blk) {
			r = -EINVAL; /* misaligned O_DIRECT, as the kernel (the start: above) */
			goto out;
		}
		if (sync && (off + len) % fs->blk) {
			/*
			 * A durable append must end on a block: write the whole
			 * blocks and return a short count (FUSE splits a large
			 * write from an unaligned user buffer at a page, so the
			 * first piece of an aligned write can end mid-block);
			 * with no whole block in it, EINVAL and nothing written.
			 */
			uint64_t end = ff_round_down(off + len, fs->blk);

			if (end <= off) {
				r = -EINVAL;
				goto out;
			}
			len = (size_t)(end - off);
		}
	}
	r = ff_cache_write(zi->ci, buf, len, off, flags);
	if (r >= 0 && (size_t)r < len && (sync || (flags & FF_CW_DIRECT))) {
		/*
		 * A write-through comes back short only when an error stopped
		 * it after earlier batches were written: the error policy
		 * applies, and a sequential file ends at its zone's pointer, so
		 * that what landed is the file's and the next append goes after
		 * it.
		 */
		zf_io_error(zi, -EIO);
		if (zi->seq)
			zf_end_at_wp_locked(zi, UINT64_MAX);
	} else if (r < 0 && zi->seq) {
		if ((r == -EOVERFLOW || r == -ETOOMANYREFS) && zone_untouched(zi, size))
			ff_err("seq file of zone %u: write refused by the device (%s); nothing written",
			       zi->zone, strerror((int)-r));
		else
			zf_io_error(zi, (int)r);
		zf_end_at_wp_locked(zi, size); /* the zone says how far the file goes */
	} else if (r < 0 && (sync || (flags & FF_CW_DIRECT))) {
		zf_io_error(zi, (int)r);
	} else if (r > 0 && zi->seq) {
		atomic_store(&zi->size, off + (uint64_t)r);
		pthread_cond_broadcast(&zi->size_cv);
	}
out:
	ff_mutex_unlock(&zi->io_lock);
	return r;
}

/*
 * A write-back that fsync or close waited for failed: apply errors= and, on
 * a sequential file, end the file as after a failed write: at the zone's
 * write pointer or where the failed append began (what was durable before
 * it), as zf_end_at_wp_locked decides per errors= mode. Not at the size the
 * buffered writes gave it: their bytes never reached the device.
 */
static void writeback_failed(struct zf_fs *fs, struct zf_inode *zi, int err)
{
	uint64_t failed = atomic_exchange(&zi->wb_failed, 0);
	bool moved = false;

	zf_io_error(zi, err);
	if (zi->seq) {
		uint64_t size, isize;

		ff_mutex_lock(&zi->io_lock);
		size = isize = atomic_load(&zi->size);
		if (failed && failed - 1 < isize)
			isize = failed - 1;
		if (ff_zoneq_wp(fs->dev, zi->zone) - zi->start != size || isize != size) {
			zf_end_at_wp_locked(zi, isize);
			moved = atomic_load(&zi->size) != size;
		}
		ff_mutex_unlock(&zi->io_lock);
	}
	/*
	 * The size moved back, or errors= changed the file's mode, behind the
	 * writer's call: what the kernel caches (pages, attributes) goes. Only
	 * bytes past the write pointer changed, so with the size unmoved no
	 * page is dropped.
	 */
	if (fs->o.changed)
		fs->o.changed(fs->o.changed_arg, zi->ino, moved ? 0 : atomic_load(&zi->size),
			      moved ? 0 : 1);
}

static int zf_fsync(struct ff_fs *gfs, uint64_t ino, bool datasync)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);
	int ret;

	if (!zi)
		return ff_dev_sync(fs->dev);
	ret = ff_cache_fsync(zi->ci, datasync);
	if (ret) {
		writeback_failed(fs, zi, ret);
		return ret;
	}
	if (zi->seq && atomic_load(&zi->size) % fs->blk)
		return -EINVAL; /* the partial tail block stays cached: see the file comment */
	return 0;
}

static int zf_flush(struct ff_fs *gfs, uint64_t ino)
{
	struct zf_fs *fs = zf_of(gfs);
	struct zf_inode *zi = file_of(fs, ino);
	int ret;

	if (!zi)
		return 0;
	/* fsync's write-back, flush and error (reported once, here) */
	ret = ff_cache_fsync(zi->ci, true);
	if (ret)
		writeback_failed(fs, zi, ret);
	return ret;
}

static int zf_statfs(struct ff_fs *gfs, struct statvfs *st)
{
	struct zf_fs *fs = zf_of(gfs);
	uint64_t total = 0, avail = 0;

	for (uint32_t i = 0; i < fs->nfiles; i++) {
		struct zf_inode *zi = &fs->inodes[i];

		total += zi->cap;
		if (zi->seq)
			avail += zi->cap - atomic_load(&zi->size);
	}
	memset(st, 0, sizeof(*st));
	st->f_bsize = fs->blk;
	st->f_frsize = fs->blk;
	st->f_blocks = total / fs->blk;
	st->f_bfree = avail / fs->blk;
	st->f_bavail = avail / fs->blk;
	/* as the kernel: each non-empty group counts its files and itself */
	for (int d = 0; d < 2; d++)
		if (fs->dirs[d].nfiles)
			st->f_files += fs->dirs[d].nfiles + 1;
	st->f_ffree = 0;
	st->f_namemax = 255;
	if (atomic_load(&fs->ro))
		st->f_flag |= ST_RDONLY; /* errors=remount-ro tripped, or mounted read-only */
	return 0;
}

/*
 * The kernel's nr_active_seq_files: sequential files whose zone is active,
 * i.e. partly written (0 < size < capacity) or explicitly open; files of
 * read-only or offline zones are not. -errno if the zones cannot be reported.
 */
static long nr_active_seq_files(struct zf_fs *fs)
{
	struct ff_zone *zones = calloc(fs->nr_zones, sizeof(*zones));
	long n = 0;
	int ret;

	if (!zones)
		return -ENOMEM;
	ret = ff_dev_report(fs->dev, 0, fs->nr_zones, zones);
	if (ret < 0) {
		n = ret;
		goto out;
	}
	for (uint32_t i = 0; i < fs->nfiles; i++) {
		struct zf_inode *zi = &fs->inodes[i];
		uint64_t size = atomic_load(&zi->size);

		if (!zi->seq || atomic_load(&zi->state) != ZF_OK)
			continue;
		if ((size > 0 && size < zi->cap) ||
		    ((int)zi->zone < ret && zones[zi->zone].cond == FF_ZC_EXP_OPEN))
			n++;
	}
out:
	free(zones);
	return n;
}

static int zf_stats_text(struct ff_fs *gfs, char *buf, size_t len)
{
	struct zf_fs *fs = zf_of(gfs);
	const struct ff_dev_info *di = ff_dev_info(fs->dev);
	long nr_active = nr_active_seq_files(fs);
	int n = ff_fs_io_stats_text(fs->dev, fs->cache, buf, len), r;

	if (n < 0 || (size_t)n >= len)
		return n;
	r = snprintf(buf + n, len - (size_t)n,
		     "read_only %d\nmax_wro_seq_files %u\nnr_wro_seq_files %u\n"
		     "max_active_seq_files %u\nnr_active_seq_files %ld\n",
		     (int)atomic_load(&fs->ro), di->max_open, (unsigned)atomic_load(&fs->nr_wro),
		     di->max_active, nr_active);
	return r < 0 ? r : n + r;
}

static int zf_zone_text(struct ff_fs *gfs, uint64_t ino, char *buf, size_t len)
{
	struct zf_fs *fs = zf_of(gfs);
	static const char *const cn[] = {"not-wp", "empty", "imp-open", "exp-open",
					 "closed", "full",  "rdonly",	"offline"};
	struct zf_inode *zi = file_of(fs, ino);
	struct ff_zone z;
	int ret;

	if (!zi)
		return -ENODATA;
	ret = ff_dev_report(fs->dev, zi->zone, 1, &z);
	if (ret < 0)
		return ret;
	return snprintf(buf, len,
			"zone %u\ntype %s\nstart %llu\nlen %llu\ncapacity %llu\nwp %llu\ncond %s\n"
			"size %llu\nreserve_pointer %llu\n",
			zi->zone, zi->seq ? "seq" : "cnv", (unsigned long long)z.start,
			(unsigned long long)((uint64_t)zi->nzones * z.len),
			(unsigned long long)zi->cap, (unsigned long long)(z.wp - z.start),
			cn[z.cond < 8 ? z.cond : 0], (unsigned long long)atomic_load(&zi->size),
			(unsigned long long)(ff_zoneq_wp(fs->dev, zi->zone) - zi->start));
}

/* A directory's entries never change: the device flush is all there is to make durable. */
static int zf_fsyncdir(struct ff_fs *gfs, uint64_t ino, bool datasync)
{
	(void)ino;
	(void)datasync;
	return ff_dev_sync(zf_of(gfs)->dev);
}

static bool zf_probe(const void *blk0)
{
	struct ff_zonefs_sb sb;

	return ff_zonefs_sb_decode(blk0, &sb) == 0;
}

const struct ff_fs_fmt ff_fmt_zonefs = {
	.name = "zonefs",
	.id = FF_FMT_ZONEFS,
	.probe = zf_probe,
	.mkfs = ff_zonefs_mkfs,
	.check = zf_check,
	.fsck = ff_zonefs_fsck,
	.mount = zf_mount,
	.unmount = zf_unmount,
	.root_ino = zf_root_ino,
	.lookup = zf_lookup,
	.getattr = zf_getattr,
	.readdir = zf_readdir,
	.setattr = zf_setattr,
	.open = zf_open,
	.release = zf_release,
	.read = zf_read,
	.write = zf_write,
	.fsync = zf_fsync,
	.fsyncdir = zf_fsyncdir,
	.flush = zf_flush,
	.statfs = zf_statfs,
	.stats_text = zf_stats_text,
	.zone_text = zf_zone_text,
};
