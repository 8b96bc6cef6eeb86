/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the cache's own files share: folios, inodes, the index and bitmaps. */
#ifndef FOLIOFS_CACHE_INTERNAL_H
#define FOLIOFS_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "foliofs/cache.h"
#include "foliofs/util.h"

#define FST_WORDS(nblk) (((nblk) + 63) / 64)

/*
 * A folio: 2^order bytes of one file, aligned in the file to its size.
 * Every field but the list links is guarded by its inode's lock; the list
 * links and the CLOCK bit by the cache's lock (the bit is atomic to let hits
 * set it without that lock).
 */
struct folio {
	uint64_t off;	   /* file offset, multiple of size */
	uint32_t size;	   /* bytes */
	uint32_t nblk;	   /* blocks */
	uint8_t order;	   /* log2(size) */
	bool filling;	   /* a read from the device fills it: wait on ci->cv */
	int pins;	   /* users outside the inode lock; ci->cv is broadcast at 0 */
	uint32_t nr_dirty; /* dirty blocks */
	uint32_t nr_wb;	   /* writeback blocks */
	uint8_t *data;	   /* aligned for O_DIRECT */
	struct ff_cinode *ci;
	/* treap index of the inode */
	struct folio *left, *right;
	uint32_t prio;
	/* the cache's CLOCK ring; guarded by cache lock */
	struct folio *clk_prev, *clk_next;
	_Atomic bool referenced;
	/*
	 * bitmaps: uptodate, dirty, writeback, joined (a block that was dirty
	 * when a write-through took it: another writer's acknowledged data),
	 * FST_WORDS(nblk) words each
	 */
	uint64_t st[];
};

struct ff_cinode {
	struct ff_cache *c;
	void *fs_inode;
	/*
	 * The invalidate lock (the kernel's invalidate_lock): shared by reads
	 * and writes of the cache (across map_read and the device read),
	 * exclusive for a truncate with the reset, finish or move it goes
	 * with. Writer-preferring, so a stream of readers cannot starve a
	 * reset. Taken before lock.
	 */
	pthread_rwlock_t inval;
	_Atomic(pthread_t) inval_owner; /* the exclusive holder, for assertions */
	struct ff_mutex lock; /* guards the index, every folio's state, the fields below */
	pthread_cond_t cv;    /* folio state changed (filling, writeback done) */
	struct folio *root;   /* treap by off */
	uint64_t nr_folios;
	uint64_t nr_dirty; /* dirty blocks in the inode */
	uint64_t nr_wb;	   /* writeback blocks in the inode */
	uint64_t isize;	   /* the cache's file size: moved by writes after the copy, or set */
	uint64_t last_end; /* end of the last read or write: sequential detection */
	uint8_t seq_order; /* folio order ramp for sequential access */
	int error;	   /* first failed background writeback, for fsync */
	bool wb_failed;	   /* skip in the background flusher until fsync */
	/* cache's inode list; guarded by cache lock */
	struct ff_cinode *prev, *next;
	int refs; /* flusher's hold; guarded by cache lock */
	/*
	 * The flusher's dirty list, guarded by the cache lock: an inode with
	 * dirty blocks (nr_dirty > 0) and no failed write-back is on it, or is
	 * in the flusher's hands, which puts it back if blocks are still dirty.
	 */
	struct ff_cinode *dprev, *dnext;
	bool on_dirty;
};

#define FF_CACHE_SPARE_FOLIOS 4 /* spares kept even with the budget full, x max_folio */

struct ff_cache {
	struct ff_dev *dev;
	const struct ff_cache_ops *ops;
	struct ff_cache_opts o;
	uint32_t blk; /* logical block */
	uint8_t blk_order, max_order;
	struct ff_mutex lock;	 /* guards the CLOCK ring, inode list, used, flusher state */
	pthread_cond_t mem_cv;	 /* memory freed or dirty data written */
	pthread_cond_t flush_cv; /* wake the flusher */
	struct folio *hand;	 /* CLOCK hand */
	uint64_t nr_ring;	 /* folios on the CLOCK ring; guarded by lock */
	struct ff_cinode *inodes;
	/* inodes with dirty blocks, oldest first (ff_cinode.on_dirty); guarded by lock */
	struct ff_cinode *dirty_head, *dirty_tail;
	uint64_t nr_dirty_inodes; /* on that list; guarded by lock */
	uint64_t used;		  /* bytes of folios allocated or reserved */
	/*
	 * Data buffers of freed folios kept for reuse, one list per order, linked
	 * through their first bytes: as many bytes as the budget has free
	 * (cache_size - used), and at least FF_CACHE_SPARE_FOLIOS x max_folio.
	 * A new folio of an order with a spare costs no page faults or zeroing:
	 * after a reclaim (streaming through a full cache) or after a truncate or
	 * unlink freed memory. A new reservation that leaves less room trims the
	 * rest (spares_trim_locked). Guarded by lock; not counted in used.
	 */
	void *spare[32];
	uint64_t spare_bytes;
	bool stop;
	bool kick;
	pthread_t flusher;
	/* counters */
	_Atomic uint64_t hits, misses, copied_in, copied_out, wt_bytes, wb_bytes, read_bytes;
	_Atomic uint64_t user_written, dirty_bytes, wb_inflight, reclaims, throttle_waits;
	_Atomic uint64_t flusher_visits;
	_Atomic uint64_t by_order[32];
};

/* index.c: the per-inode treap, all under ci->lock */
struct folio *ff_idx_find(struct ff_cinode *ci, uint64_t off); /* folio covering off */
struct folio *ff_idx_ceil(struct ff_cinode *ci, uint64_t off); /* first with start >= off */
void ff_idx_insert(struct ff_cinode *ci, struct folio *f);
void ff_idx_remove(struct ff_cinode *ci, struct folio *f);

/* bitmaps: blocks [b, e) of the bitmap with index which */
enum { FST_UPTODATE = 0, FST_DIRTY = 1, FST_WB = 2, FST_JOINED = 3, FST_NR = 4 };
static inline uint64_t *fst_map(struct folio *f, int which)
{
	return f->st + (size_t)which * FST_WORDS(f->nblk);
}
static inline bool fst_test(struct folio *f, int which, uint32_t b)
{
	return fst_map(f, which)[b / 64] >> (b % 64) & 1;
}
static inline void fst_set(struct folio *f, int which, uint32_t b)
{
	fst_map(f, which)[b / 64] |= 1ull << (b % 64);
}
static inline void fst_clear(struct folio *f, int which, uint32_t b)
{
	fst_map(f, which)[b / 64] &= ~(1ull << (b % 64));
}
/* true when every block of [b, e) has the bit */
static inline bool fst_all(struct folio *f, int which, uint32_t b, uint32_t e)
{
	for (; b < e; b++)
		if (!fst_test(f, which, b))
			return false;
	return true;
}
static inline bool fst_any(struct folio *f, int which, uint32_t b, uint32_t e)
{
	for (; b < e; b++)
		if (fst_test(f, which, b))
			return true;
	return false;
}

#endif
