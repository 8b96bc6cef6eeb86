/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache: the userspace large-folio page cache (DESIGN.md "Cache"), generic
 * over the filesystem above it. The cache never learns what an extent or a
 * log record is: it asks the filesystem through struct ff_cache_ops
 * (map_read / map_write / write_done, modelled on iomap_begin/iomap_end) and
 * submits through the device layer (ff_dev_* for in-place I/O, ff_zoneq_*
 * for sequential zones).
 *
 * Write modes:
 *   - buffered: copy in, set blocks dirty, written back later in offset order;
 *   - write-through (FF_CW_SYNC/FF_CW_DSYNC): copy in, mark the touched blocks
 *     writeback (never dirty), map_write, submit exactly those blocks (plus
 *     already-dirty blocks that must go first on a sequential zone), wait,
 *     write_done, reply. The reply means durable.
 */
#ifndef FOLIOFS_CACHE_H
#define FOLIOFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ff_dev;
struct ff_cache;
struct ff_cinode;

enum ff_map_type {
	FF_MAP_HOLE = 1, /* reads as zeros, no device I/O */
	FF_MAP_INPLACE,	 /* bytes live at dev_off; overwrite in place */
	FF_MAP_SEQ,	 /* sequential zone: bytes go at dev_off == zone's reserve pointer */
};

struct ff_map {
	enum ff_map_type type;
	uint64_t file_off; /* start of the mapping in the file */
	uint64_t len;	   /* bytes mapped from file_off (may be less than asked) */
	uint64_t dev_off;  /* device offset of file_off (not for holes) */
	uint32_t zone;	   /* device zone holding dev_off */
};

/* map_write flags */
#define FF_MAPW_SYNC (1u << 0) /* write-through: write_done must commit durably */

/*
 * The filesystem's side. fs_inode is the pointer given to ff_cache_inode_new.
 * Each returns 0 or -errno; called without cache locks held, may sleep.
 */
struct ff_cache_ops {
	/* Map [off, off+len): fill *m for the extent or hole that starts at off. */
	int (*map_read)(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m);
	/*
	 * Where the bytes [off, off+len) go. May map fewer bytes than asked
	 * (m->len, 0 when nothing can be written yet: a partial tail block of a
	 * sequential file); the cache writes what was mapped and asks again.
	 * For FF_MAP_SEQ, m->file_off is the file offset at the zone's reserve
	 * pointer: when it is below off, the cache first writes back what lies
	 * in between, then asks again; when it is above off, [off, file_off) is
	 * already in the zone (immutable), and the cache skips it (whole-folio
	 * dirtying reaches back there).
	 */
	int (*map_write)(void *fs_inode, uint64_t off, uint64_t len, unsigned flags,
			 struct ff_map *m);
	/* After the write of m completed with result (bytes or -errno). */
	int (*write_done)(void *fs_inode, const struct ff_map *m, ssize_t result, unsigned flags);
};

enum ff_sync_mode {
	FF_SYNC_WRITETHROUGH = 0, /* default */
	FF_SYNC_WRITEBACK,	  /* sync write dirties, then writes and waits on the range */
};
enum ff_dirty_gran {
	FF_DIRTY_BLOCK = 0, /* default: per-block dirty tracking */
	FF_DIRTY_FOLIO,	    /* a write dirties its whole folio */
};

struct ff_cache_opts {
	uint64_t cache_size; /* memory budget, bytes (0 = 256 MiB) */
	uint32_t max_folio;  /* largest folio, power of two (0 = 2 MiB) */
	enum ff_sync_mode sync_mode;
	enum ff_dirty_gran dirty_gran;
	uint32_t dirty_bg_pct;	/* background flusher starts (0 = 10) */
	uint32_t dirty_max_pct; /* writers wait above (0 = 40) */
};

/* ff_cache_write / ff_cache_read flags */
#define FF_CW_SYNC   (1u << 0) /* O_SYNC or RWF_SYNC */
#define FF_CW_DSYNC  (1u << 1) /* O_DSYNC or RWF_DSYNC */
#define FF_CW_DIRECT (1u << 2) /* O_DIRECT from the application (a hint only) */

int ff_cache_create(struct ff_dev *dev, const struct ff_cache_ops *ops,
		    const struct ff_cache_opts *opts, struct ff_cache **out);
/* Writes back everything dirty, stops the flusher, frees. Returns the first error. */
int ff_cache_destroy(struct ff_cache *c);

struct ff_cinode *ff_cache_inode_new(struct ff_cache *c, void *fs_inode);
/* Writes back and drops the inode's folios. */
int ff_cache_inode_free(struct ff_cinode *ci);

/*
 * Tell the cache the file's size: folio-granular dirtying and read folios do
 * not reach past it. The filesystem calls it at open and on size changes.
 */
void ff_cache_inode_set_size(struct ff_cinode *ci, uint64_t size);

/* Read [off, off+len); the caller clamps to the file size. Returns bytes or -errno. */
ssize_t ff_cache_read(struct ff_cinode *ci, void *buf, size_t len, uint64_t off, unsigned flags);
/* Write; with FF_CW_SYNC/DSYNC returns only once durable. Returns bytes or -errno. */
ssize_t ff_cache_write(struct ff_cinode *ci, const void *buf, size_t len, uint64_t off,
		       unsigned flags);
/* Write back dirty blocks, wait for all writeback (any thread's), flush the device. */
int ff_cache_fsync(struct ff_cinode *ci, bool datasync);
/* Start writeback of every dirty block of the inode and wait for it. */
int ff_cache_writeback(struct ff_cinode *ci);
/* Drop cached data at and beyond off (after a truncate or zone reset). */
int ff_cache_truncate(struct ff_cinode *ci, uint64_t off);
/* Write back every inode and flush the device. */
int ff_cache_sync_all(struct ff_cache *c);
/* The error left by a failed background writeback, cleared when returned (fsync). */
int ff_cache_inode_error(struct ff_cinode *ci);

struct ff_cache_stats {
	uint64_t hits, misses;
	uint64_t bytes_copied_in, bytes_copied_out;
	uint64_t wt_bytes;   /* bytes submitted by write-through */
	uint64_t wb_bytes;   /* bytes submitted by writeback */
	uint64_t read_bytes; /* bytes read from the device */
	uint64_t user_bytes_written;
	uint64_t dirty_bytes, writeback_bytes, cached_bytes;
	uint64_t reclaims, throttle_waits;
	uint64_t folios_by_order[32];
};
void ff_cache_stats(struct ff_cache *c, struct ff_cache_stats *out);

#endif
