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
 *   - write-through (FF_CW_SYNC/FF_CW_DSYNC, and FF_CW_DIRECT without FUA):
 *     copy in, mark the touched blocks writeback (never dirty; dirty ones
 *     join), map_write, submit exactly those blocks, wait, write_done,
 *     reply. The reply means durable (on the device, for FF_CW_DIRECT).
 *
 * The contract with the filesystem, in short (cache.c's essay in full):
 * size after data (the cache moves its size after the copy, the filesystem
 * publishes its own after ff_cache_write returns); map_write answers where
 * (in place, append to a zone, already stored, not yet) and owns the
 * format's order rules; write_done gets the offset the bytes landed at;
 * reads hold the invalidate lock shared across map_read and the device read,
 * resets and truncates hold it exclusive; fsync = writeback, commit, flush;
 * errors reach the writer (write-through) or the next fsync.
 */
#ifndef FOLIOFS_CACHE_H
#define FOLIOFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ff_dev;
struct ff_cache;
struct ff_cinode;

enum ff_map_type {
	FF_MAP_HOLE = 1, /* reads as zeros, no device I/O */
	FF_MAP_INPLACE,	 /* bytes live at dev_off; overwrite in place */
	FF_MAP_APPEND,	 /* append to sequential zone m->zone; write_done learns where it landed */
	FF_MAP_STORED,	 /* already on the device (e.g. below a zone's pointer): nothing to write */
};

/*
 * One mapping. map_read and map_write always map from the offset asked:
 * file_off is that offset, len the bytes mapped from it (may be less than
 * asked). dev_off is where file_off lives: the cache reads from it
 * (map_read's INPLACE) and writes at it (map_write's INPLACE). For
 * FF_MAP_APPEND it is FF_MAP_ANYWHERE (the bytes go wherever the zone's
 * pointer is, and write_done learns where), or the offset the zone's pointer
 * must be at: the zone queue then refuses the write (-EINVAL, nothing
 * written) if it is elsewhere, for a format whose file offsets are zone
 * offsets. Unused for STORED and HOLE.
 */
#define FF_MAP_ANYWHERE UINT64_MAX

struct ff_map {
	enum ff_map_type type;
	uint64_t file_off; /* start of the mapping in the file */
	uint64_t len;	   /* bytes mapped from file_off (may be less than asked) */
	uint64_t dev_off;  /* device offset of file_off (INPLACE, reads; APPEND: see above) */
	uint32_t zone;	   /* device zone holding dev_off, or the zone to append to */
	/*
	 * map_write only (0 for every other use): hdr_len > 0 asks for a
	 * header of hdr_len bytes (at most a cache block, a multiple of the
	 * device's logical block) written in the same I/O
	 * just before the data: ops->seal fills it, and it lands at
	 * dev_off - hdr_len (INPLACE, pinned APPEND) or at the zone's pointer
	 * (APPEND anywhere; landed_at is still where the data landed).
	 * io_flags are added to the write's own (FF_IO_PREFLUSH).
	 */
	uint32_t hdr_len;
	unsigned io_flags;
	/*
	 * Bytes that ops->more added after len: further ranges of the file
	 * written in the same I/O, right after len's bytes (0 otherwise).
	 * seal's iov and write_done's result cover them too.
	 */
	uint64_t more;
};

/* map_write and write_done flags */
#define FF_MAPW_SYNC (1u << 0) /* durable write: write_done must commit before returning */
#define FF_MAPW_TAIL (1u << 1) /* the range's last block is the file's partial tail block */
/*
 * map_write only: the cache holds in-place mappings of this inode that are
 * not written yet (it batches in-place writeback and submits the batch
 * together). Answer FF_MAP_INPLACE or FF_MAP_STORED without waiting for
 * anything; blocks that would go anywhere else get m->len == 0 with nothing
 * reserved, and the cache asks again without this flag once its batch is
 * written. A filesystem whose out-of-place path can wait for something that
 * an unwritten in-place mapping holds back (a GC move waiting for in-place
 * writes to land) must honour it; one whose map_write never waits may
 * ignore it.
 */
#define FF_MAPW_INPLACE (1u << 2)
/*
 * map_write only: nothing more of this write-back will join the write this
 * answer starts (its last run: ops->more is not called for it), so a
 * header need not leave room for more ranges. Write-throughs never gather.
 */
#define FF_MAPW_ALONE (1u << 3)

/*
 * The filesystem's side: the write-path contract (the cache's design essay
 * in src/cache/cache.c says it in full). fs_inode is the pointer given to
 * ff_cache_inode_new. Each returns 0 or -errno; each is called with no cache
 * lock held and may sleep, and may call back into the cache's writeback
 * (ff_cache_writeback_range) but never into its read or write paths.
 */
struct ff_cache_ops {
	/*
	 * Map [off, off+len) for reading. The cache holds the inode's
	 * invalidate lock shared from this call until its device read is
	 * done: a reset, finish, truncate or move of the data holds it
	 * exclusive (ff_cache_invalidate_begin), so what this returns stays
	 * valid for the read.
	 */
	int (*map_read)(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m);
	/*
	 * Where the blocks [off, off+len) go; off and len are block multiples.
	 * The cache decides what to write from its own per-block state; the
	 * filesystem decides where, and in which order. FF_MAPW_TAIL says the
	 * last block holds data only up to the cache's size (a partial tail):
	 * a format that cannot rewrite a block leaves it unmapped. The answer:
	 *  - FF_MAP_INPLACE: write at dev_off (no reservation needed);
	 *  - FF_MAP_APPEND: append len bytes to m->zone through the zone queue,
	 *    at FF_MAP_ANYWHERE or only at dev_off; the reservation is the zone
	 *    queue's (position taken at queue time), and write_done gets where
	 *    the bytes landed;
	 *  - FF_MAP_STORED: len bytes are on the device already; the cache
	 *    marks them clean and asks again for the rest;
	 *  - m->len == 0: nothing can be written now (a partial tail); the
	 *    cache leaves the blocks dirty.
	 * Ordering rules of a format (a sequential file's earlier data first)
	 * are the filesystem's: it may write back [x, off) first through
	 * ff_cache_writeback_range before answering.
	 */
	int (*map_write)(void *fs_inode, uint64_t off, uint64_t len, unsigned flags,
			 struct ff_map *m);
	/*
	 * After the write of m (file_off, len as written) completed with
	 * result (bytes or -errno); landed_at is the device offset where the
	 * bytes landed (for FF_MAP_APPEND, as the zone queue reported it).
	 * The filesystem records the extent; with FF_MAPW_SYNC it commits it
	 * durably before returning. A non-zero return fails the write.
	 */
	int (*write_done)(void *fs_inode, const struct ff_map *m, uint64_t landed_at,
			  ssize_t result, unsigned flags);
	/*
	 * fsync's commit point, between writeback and the device flush: the
	 * filesystem makes the metadata that finds the inode's written data
	 * durable-ready (group commit). May be NULL (nothing to commit).
	 */
	int (*commit)(void *fs_inode, bool datasync);
	/*
	 * For a map_write answer with hdr_len > 0, just before submission:
	 * fill hdr (hdr_len bytes, zeroed) for the data in iov (m->file_off,
	 * m->len as they will be written), e.g. with the data's checksum. A
	 * non-zero return fails the write (write_done is still called with
	 * it). May be NULL when the filesystem never asks for a header.
	 */
	int (*seal)(void *fs_inode, const struct ff_map *m, const struct iovec *iov, int iovcnt,
		    void *hdr);
	/*
	 * Writeback only, may be NULL. After map_write answered m, an append
	 * or out-of-place write with a header (hdr_len > 0) that takes its
	 * run of dirty blocks to the end, the cache offers the next runs of
	 * the same writeback one by one, [off, off+len) in increasing file
	 * order, each past the one before: true takes the whole range into m's
	 * write, its bytes right after those taken before, under m's one
	 * header (m->more grows by len); false leaves it, and the cache stops
	 * offering and maps that run itself. Called while m's write is
	 * reserved and not yet submitted; must not sleep or write back.
	 * flags as map_write's.
	 */
	bool (*more)(void *fs_inode, struct ff_map *m, uint64_t off, uint64_t len, unsigned flags);
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
#define FF_CW_SYNC  (1u << 0) /* O_SYNC or RWF_SYNC */
#define FF_CW_DSYNC (1u << 1) /* O_DSYNC or RWF_DSYNC */
/*
 * O_DIRECT from the application: the write completes on the device (write-
 * through without FUA, the device's error to the writer), as the kernel
 * completes an O_DIRECT write; the cache still does the alignment.
 */
#define FF_CW_DIRECT (1u << 2)
/*
 * Write-through (SYNC, DSYNC, DIRECT): an error after earlier batches of the
 * write were written fails the whole write with it, as the kernel's O_DIRECT
 * and O_DSYNC writes do (a count would claim those bytes are the write's
 * durable part while the filesystem may be shutting down), except ENOSPC:
 * then the count of what was written, as a buffered write near a full disk
 * gets. Without it, any such error gives that count (a format whose
 * sequential files end at the zone's pointer, whatever the reply).
 */
#define FF_CW_WHOLE (1u << 4)
/*
 * ff_cache_read: end the read at the cache's size, taken under the
 * invalidate lock: a read never spans a truncate or reset, so it returns
 * what the file held before it or after it, never a mix.
 */
#define FF_CR_EOF (1u << 3)

int ff_cache_create(struct ff_dev *dev, const struct ff_cache_ops *ops,
		    const struct ff_cache_opts *opts, struct ff_cache **out);
/* Writes back everything dirty, stops the flusher, frees. Returns the first error. */
int ff_cache_destroy(struct ff_cache *c);

struct ff_cinode *ff_cache_inode_new(struct ff_cache *c, void *fs_inode);
/* Writes back and drops the inode's folios. */
int ff_cache_inode_free(struct ff_cinode *ci);

/*
 * Set the cache's size of the file (at open, truncate, reset, recovery).
 * A write moves the size itself, after its bytes are in the cache (size
 * after data): the filesystem publishes its own size only after
 * ff_cache_write returns. The cache's size bounds read folios, folio-
 * granular dirtying, and says which block is a partial tail (FF_MAPW_TAIL).
 * Until it is first set the size is unknown and no block is a tail: a
 * filesystem that cannot rewrite blocks sets it when it opens the inode.
 */
void ff_cache_inode_set_size(struct ff_cinode *ci, uint64_t size);

/*
 * Read [off, off+len); the caller clamps to the file size. Takes the
 * invalidate lock shared. Returns bytes or -errno.
 */
ssize_t ff_cache_read(struct ff_cinode *ci, void *buf, size_t len, uint64_t off, unsigned flags);
/*
 * Write. With FF_CW_SYNC/DSYNC it returns once durable, with FF_CW_DIRECT
 * once on the device; the size moves past the bytes once they are copied
 * in. Takes the invalidate lock shared. Returns bytes or -errno.
 */
ssize_t ff_cache_write(struct ff_cinode *ci, const void *buf, size_t len, uint64_t off,
		       unsigned flags);
/*
 * fsync: write back the inode's dirty blocks, wait for every writeback on it
 * (any thread's), ops->commit, then flush the device. Returns the first
 * error, including one left by a failed background write or a failed write-
 * through that other writers' buffered blocks had joined.
 */
int ff_cache_fsync(struct ff_cinode *ci, bool datasync);
/* Dirty blocks of the inode now (a snapshot). */
uint64_t ff_cache_inode_dirty(struct ff_cinode *ci);
/* Whether a block of [off, off+len) is dirty or under writeback now (a snapshot). */
bool ff_cache_range_dirty(struct ff_cinode *ci, uint64_t off, uint64_t len);
/* Start writeback of every dirty block of the inode and wait for it. */
int ff_cache_writeback(struct ff_cinode *ci);
/*
 * Write back the dirty blocks of [lo, hi) and wait for all writeback there.
 * flags FF_CW_SYNC or FF_CW_DSYNC: durable. For the filesystem's map_write (a format's
 * "earlier data first" rule); no cache lock is held during callbacks.
 */
int ff_cache_writeback_range(struct ff_cinode *ci, uint64_t lo, uint64_t hi, unsigned flags);
/*
 * The invalidate lock, exclusive: reads of the device through map_read wait,
 * and no read is in flight. Held across a truncate and the reset, finish or
 * move it goes with, so no reader caches data of the old generation. Not
 * with the same inode's read or write calls in the same thread.
 */
void ff_cache_invalidate_begin(struct ff_cinode *ci);
void ff_cache_invalidate_end(struct ff_cinode *ci);
/*
 * Drop cached data at and beyond off (after a truncate or zone reset), dirty
 * or not, and set the cache's size to off. The caller holds the invalidate
 * lock (ff_cache_invalidate_begin).
 */
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
	uint64_t flusher_visits; /* inodes the background flusher looked at */
	uint64_t folios_by_order[32];
};
void ff_cache_stats(struct ff_cache *c, struct ff_cache_stats *out);

#endif
