// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The large-folio page cache, and its contract with the filesystem.
 *
 * Folios. A folio holds 2^order bytes of one file, aligned in the file to its
 * size, from one logical block up to max_folio. Its size follows the access:
 * a miss or write at the end of the previous access (sequential) ramps the
 * order up one step per folio, like readahead, up to max_folio; a random one
 * gets the smallest folio that covers it. Each folio has per-block bitmaps:
 * uptodate, dirty, writeback (the kernel's iomap_folio_state), and joined (a
 * block that was dirty when a write-through took it).
 *
 * Writes. A buffered write copies in and sets the blocks dirty; a background
 * flusher writes dirty blocks back per inode in offset order, contiguous
 * dirty blocks (across folios) as one I/O, and writers that push the dirty
 * total above dirty_max_pct write back their own inode before going on.
 * Writeback (the flusher's and fsync's alike) takes a batch of such runs at
 * once: the ones the filesystem maps in place are in flight together, one
 * device round trip for all, and every other mapping (an append, a header,
 * a sequential zone) is written alone, in offset order, as before it, with
 * the runs after it that the filesystem takes into the same write behind
 * its one header (ops->more: scattered blocks that go out of place anyway
 * cost one write and one header, not one of each per run). A
 * sync write (FF_CW_SYNC/DSYNC) takes the write-through path: it copies in,
 * sets the touched blocks writeback (never dirty; touched blocks that were
 * dirty join the same write), asks the filesystem where they go (map_write),
 * submits exactly those blocks durably (FF_IO_DSYNC), waits, calls write_done
 * and clears writeback. An O_DIRECT write (FF_CW_DIRECT) takes the same path
 * without FUA: acknowledged once on the device, its error to the writer.
 * sync_mode=writeback makes a sync write dirty its blocks, then write back
 * and flush (what the kernel does); dirty_gran=folio makes every write dirty
 * (and write through) its whole folio (the kernel before per-block dirty).
 *
 * THE CONTRACT (struct ff_cache_ops; the kernel's iomap is the model).
 *
 *   Who calls what. The filesystem calls ff_cache_read/write/fsync/
 *   writeback/truncate for file data, holding whatever serialises its own
 *   writers (zonefs: io_lock); the flusher and reclaim call nothing of it
 *   but map_write/write_done. The cache calls map_read, map_write,
 *   write_done and commit with no cache lock held (only the invalidate lock
 *   shared, on the read path); a callback may sleep, do I/O and call
 *   ff_cache_writeback_range on any inode, never the read or write paths.
 *
 *   Size after data. ff_cache_write moves the cache's size (ci->isize) only
 *   after the bytes are copied into the folio, under ci->lock (iomap_write_
 *   end); the filesystem publishes its own size after ff_cache_write returns.
 *   So a reader that clamps to the published size finds the bytes, and
 *   writeback, which takes its size snapshot under ci->lock together with the
 *   dirty blocks, never sees a block as whole before it is. What to write
 *   comes from the per-block state and that snapshot alone: a last block
 *   reaching past the snapshot is a partial tail, and map_write is told so
 *   (FF_MAPW_TAIL); a format that cannot rewrite blocks leaves it dirty.
 *
 *   Where, and in which order: the filesystem's. map_write answers for the
 *   blocks [off, off+len): in place (dev_off), an append to a zone (the zone
 *   queue reserves the position at queue time, as zone append does; wherever
 *   the pointer is, or only at dev_off, refused elsewhere), already stored
 *   (the cache marks them clean), or nothing yet. write_done gets the
 *   offset the bytes landed at, as the zone queue reported it, and records
 *   the extent; for FF_MAPW_SYNC it commits before returning. Several files
 *   may append into one open zone. A format's order rules (zonefs: a file's
 *   earlier data first, blocks below the pointer are stored) live in its
 *   map_write, which may write back an earlier range through
 *   ff_cache_writeback_range first; the cache knows no on-disk format.
 *   While batched writeback holds in-place mappings of an inode that are not
 *   written yet, it asks map_write with FF_MAPW_INPLACE: only an in-place
 *   (or stored) answer, or nothing, without waiting, so that a filesystem
 *   does not wait for a slot or a GC move with those mappings held; the
 *   cache writes its batch and asks again without the flag.
 *
 *   Pins and the invalidate lock. Blocks under writeback stay in their folio
 *   (writeback bit) and are copied into only after it clears. A read holds
 *   the inode's invalidate lock shared from before it looks a folio up until
 *   its device reads are done (so map_read's answer holds for the read);
 *   writes hold it shared too, for their read-modify-write fills. A reset,
 *   finish, truncate or (later) move of data holds it exclusive around both
 *   the cache truncate and the device operation, so no reader caches data of
 *   the old generation. A folio's pins keep it in memory; the last unpin
 *   wakes a truncate waiting to drop it.
 *
 *   Commit. ff_cache_fsync = write back the inode's dirty blocks and wait for
 *   every writeback on it (any thread's), then ops->commit(inode, datasync)
 *   (the filesystem's group commit point), then the device flush, which
 *   ff_dev_sync skips when every completed write is durable already (all
 *   written FUA, or a later flush finished): an fsync after O_SYNC writes,
 *   or a close with nothing written, costs the device nothing.
 *
 *   Errors. A failed write-through returns the error to its writer and drops
 *   its own blocks' uptodate state (later reads go to the device); when
 *   blocks of it were written before the error, the writer gets their
 *   count instead, or with FF_CW_WHOLE the error (but for ENOSPC, see
 *   cache.h); blocks that had joined it are other writers' acknowledged
 *   data: they go back to dirty and the error is left on the inode for the
 *   next fsync. A failed background writeback keeps the blocks dirty (the
 *   data is not lost), records the error on the inode and stops the flusher
 *   retrying that inode; the next fsync retries and returns the error once.
 *   A non-zero write_done fails the write like a device error.
 *
 * Memory. Folios are allocated against cache_size: memory is reserved before
 * a folio is allocated, by reclaiming clean, unpinned folios with CLOCK; when
 * none is clean the flusher is kicked and the reserver waits, unless it
 * holds pinned folios itself (a write-through building a batch): it then
 * submits what it holds first, since pins are what nobody can reclaim. Only
 * in-flight I/O can push the cache past its budget.
 *
 * Locking. Order: the filesystem's locks, then ci->inval, then ci->lock, then
 * c->lock; the reclaimer, holding c->lock, only try-locks an inode. ci->lock
 * guards an inode's index, its size and every state bit and counter of its
 * folios; c->lock guards the CLOCK ring, the inode list, the dirty list and
 * memory accounting. No ci->lock or c->lock is held across device I/O or
 * calls into the filesystem: a folio being filled has f->filling set, blocks
 * being written have their writeback bit, and waiters sleep on ci->cv.
 *
 * Scale. Neither the flusher nor reclaim walks every inode or folio: an
 * inode whose dirty count leaves 0 joins the dirty list, and a flusher pass
 * visits the inodes on it; the CLOCK hand goes on from where it stopped and
 * the ring's length is counted, not walked.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "foliofs/dev.h"
#include "foliofs/zoneq.h"
#include "internal.h"

#define MAX_SEGS 256

struct seg {
	struct folio *f;
	uint32_t b0, b1; /* blocks [b0, b1) of f */
};

static void cnt_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void cnt_sub(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_sub_explicit(c, v, memory_order_relaxed);
}

static uint64_t cnt_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static uint8_t ilog2_u64(uint64_t v)
{
	return (uint8_t)(63 - __builtin_clzll(v));
}

static void timed_wait(pthread_cond_t *cv, struct ff_mutex *mu, long ms)
{
	struct timespec ts = ff_deadline_ms(ms);

	ff_cond_timedwait(cv, mu, &ts);
}

/* ---- memory: reservation, CLOCK reclaim ---- */

static void ring_insert_locked(struct ff_cache *c, struct folio *f)
{
	ff_assert_held(&c->lock);
	c->nr_ring++;
	if (!c->hand) {
		f->clk_next = f->clk_prev = f;
		c->hand = f;
		return;
	}
	f->clk_next = c->hand;
	f->clk_prev = c->hand->clk_prev;
	f->clk_prev->clk_next = f;
	c->hand->clk_prev = f;
}

static void ring_remove_locked(struct ff_cache *c, struct folio *f)
{
	ff_assert_held(&c->lock);
	c->nr_ring--;
	if (f->clk_next == f) {
		c->hand = NULL;
	} else {
		f->clk_prev->clk_next = f->clk_next;
		f->clk_next->clk_prev = f->clk_prev;
		if (c->hand == f)
			c->hand = f->clk_next;
	}
	f->clk_next = f->clk_prev = NULL;
}

/*
 * Folio data buffers are mmap'ed, so a freed one goes back to the system at
 * once: from malloc, freed folios stayed in glibc's per-thread arenas, and
 * with many writer threads the daemon's RSS grew past the cache budget by
 * tens of MiB (the soak: 190 MiB for a 64 MiB cache). The spare buffers
 * above spare most mmap/munmap calls. Page aligned, as O_DIRECT wants;
 * every folio is at least one cache block (4 KiB or more), a page multiple.
 * No transparent huge pages (MADV_HUGEPAGE): they cut a write-through's
 * pinning and faults, but each first fill of a buffer may wait for the
 * kernel's compaction, milliseconds at a time (bench/NOTES.md, W3).
 */
static void *data_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void data_free(void *p, size_t size)
{
	munmap(p, size);
}

/*
 * Bytes of spare buffers the cache may keep: what the budget has free
 * (folios and spares together stay within cache_size), and at least
 * FF_CACHE_SPARE_FOLIOS of the largest folio, so that streaming through a
 * full cache reuses what each reclaim frees. Caller holds c->lock.
 */
static uint64_t spare_room_locked(struct ff_cache *c)
{
	uint64_t floor = (uint64_t)FF_CACHE_SPARE_FOLIOS << c->max_order;
	uint64_t free_budget = c->used < c->o.cache_size ? c->o.cache_size - c->used : 0;

	ff_assert_held(&c->lock);
	return free_budget > floor ? free_budget : floor;
}

/* A spare data buffer of 2^order bytes, or NULL. Caller holds c->lock. */
static void *spare_get_locked(struct ff_cache *c, uint8_t order)
{
	void *p = c->spare[order];

	ff_assert_held(&c->lock);
	if (p) {
		c->spare[order] = *(void **)p;
		c->spare_bytes -= 1ull << order;
	}
	return p;
}

/*
 * Take spares off their lists, largest first and none of order keep, until
 * they and need more bytes fit the room; they are linked into *out for
 * spares_free(). Caller holds c->lock.
 */
static void spares_trim_locked(struct ff_cache *c, uint64_t need, uint8_t keep, void **out)
{
	uint64_t room = spare_room_locked(c);

	for (int o = c->max_order; o >= 0 && c->spare_bytes + need > room; o--) {
		while (o != keep && c->spare[o] && c->spare_bytes + need > room) {
			void *p = spare_get_locked(c, (uint8_t)o);

			*(void **)p = *out;
			((size_t *)p)[1] = (size_t)1 << o;
			*out = p;
		}
	}
}

/* Unmap buffers spares_trim_locked() took. */
static void spares_free(void *p)
{
	while (p) {
		void *next = *(void **)p;

		data_free(p, ((size_t *)p)[1]);
		p = next;
	}
}

/*
 * Free f, keeping its data buffer as a spare if there is room. want is the
 * order of the folio a reclaim makes room for (0 when none): a buffer of
 * that order is kept even where spares of other orders fill the room, and
 * those are unmapped instead. Otherwise small buffers freed first (a cache
 * full of 4 KiB folios) would hold the room for good, and every folio of a
 * stream that follows would be a fresh mapping, faulted in page by page.
 * Caller holds c->lock.
 */
static void folio_free_mem_locked(struct ff_cache *c, struct folio *f, uint8_t want)
{
	ff_assert_held(&c->lock);
	cnt_sub(&c->by_order[f->order], 1);
	if (f->order == want) {
		void *trimmed = NULL;

		spares_trim_locked(c, f->size, want, &trimmed);
		spares_free(trimmed);
	}
	if (c->spare_bytes + f->size <= spare_room_locked(c)) {
		*(void **)f->data = c->spare[f->order];
		c->spare[f->order] = f->data;
		c->spare_bytes += f->size;
	} else {
		data_free(f->data, f->size);
	}
	free(f);
}

/* ---- the flusher's dirty list ---- */

/* Put ci at the tail of the dirty list, if not on it. Caller holds c->lock. */
static void dirty_add_locked(struct ff_cache *c, struct ff_cinode *ci)
{
	ff_assert_held(&c->lock);
	if (ci->on_dirty)
		return;
	ci->on_dirty = true;
	ci->dnext = NULL;
	ci->dprev = c->dirty_tail;
	if (c->dirty_tail)
		c->dirty_tail->dnext = ci;
	else
		c->dirty_head = ci;
	c->dirty_tail = ci;
	c->nr_dirty_inodes++;
}

/* Take ci off the dirty list, if on it. Caller holds c->lock. */
static void dirty_del_locked(struct ff_cache *c, struct ff_cinode *ci)
{
	ff_assert_held(&c->lock);
	if (!ci->on_dirty)
		return;
	if (ci->dprev)
		ci->dprev->dnext = ci->dnext;
	else
		c->dirty_head = ci->dnext;
	if (ci->dnext)
		ci->dnext->dprev = ci->dprev;
	else
		c->dirty_tail = ci->dprev;
	ci->dprev = ci->dnext = NULL;
	ci->on_dirty = false;
	c->nr_dirty_inodes--;
}

/*
 * ci may have dirty blocks the flusher should see: on the dirty list unless
 * it has none or a failed write-back keeps it off until fsync. Caller holds
 * ci->lock (not c->lock, which this takes: the order is ci->lock, then
 * c->lock). Called when nr_dirty leaves 0, when the flusher is done with
 * ci, and when fsync clears wb_failed.
 */
static void dirty_note_locked(struct ff_cinode *ci)
{
	struct ff_cache *c = ci->c;

	ff_assert_held(&ci->lock);
	if (!ci->nr_dirty || ci->wb_failed)
		return;
	ff_mutex_lock(&c->lock);
	dirty_add_locked(c, ci);
	ff_mutex_unlock(&c->lock);
}

/*
 * Reclaim one clean unpinned folio. Caller holds c->lock. Returns bytes freed.
 * The hand goes on from where the last call stopped, so each folio is passed
 * over at most twice (once to clear its reference bit) between two visits:
 * O(1) amortized per folio reclaimed while clean folios exist, at most two
 * turns of the ring when none is.
 */
static uint64_t reclaim_one_locked(struct ff_cache *c, uint8_t want)
{
	uint64_t scanned = 0, limit = 2 * c->nr_ring;
	struct folio *f;

	ff_assert_held(&c->lock);
	for (; scanned < limit && c->hand; scanned++) {
		struct ff_cinode *ci;
		uint32_t size;

		f = c->hand;
		c->hand = f->clk_next;
		if (atomic_exchange_explicit(&f->referenced, false, memory_order_relaxed))
			continue;
		ci = f->ci;
		if (!ff_mutex_trylock(&ci->lock))
			continue;
		if (f->pins || f->filling || f->nr_dirty || f->nr_wb) {
			ff_mutex_unlock(&ci->lock);
			continue;
		}
		ff_idx_remove(ci, f);
		ring_remove_locked(c, f);
		ff_mutex_unlock(&ci->lock);
		size = f->size;
		c->used -= size;
		folio_free_mem_locked(c, f, want);
		cnt_add(&c->reclaims, 1);
		return size;
	}
	return 0;
}

/*
 * Reserve bytes of the budget, reclaiming or waiting. No inode lock held.
 * With nowait (the caller holds pinned folios, which nothing can reclaim
 * until it submits them), returns false instead of waiting: a caller that
 * waited while holding pins could wait for the pins of others who wait for
 * its own, with every byte of the budget pinned. Returns true when reserved.
 */
static bool reserve_mem(struct ff_cache *c, uint64_t bytes, bool nowait)
{
	uint8_t want = ilog2_u64(bytes); /* a folio's size: a power of two */
	bool ok = true;

	ff_mutex_lock(&c->lock);
	while (c->used + bytes > c->o.cache_size && c->used) {
		if (reclaim_one_locked(c, want))
			continue;
		c->kick = true;
		pthread_cond_signal(&c->flush_cv);
		if (nowait) {
			ok = false;
			goto out_unlock;
		}
		cnt_add(&c->throttle_waits, 1);
		timed_wait(&c->mem_cv, &c->lock, 20);
	}
	c->used += bytes;
out_unlock:
	ff_mutex_unlock(&c->lock);
	return ok;
}

static void unreserve_mem(struct ff_cache *c, uint64_t bytes)
{
	ff_mutex_lock(&c->lock);
	c->used -= bytes;
	pthread_cond_broadcast(&c->mem_cv);
	ff_mutex_unlock(&c->lock);
}

/* ---- folio lookup and creation ---- */

static bool range_free_locked(struct ff_cinode *ci, uint64_t s, uint64_t size)
{
	struct folio *n;

	if (ff_idx_find(ci, s))
		return false;
	n = ff_idx_ceil(ci, s);
	return !n || n->off >= s + size;
}

/* The order a new folio at off should have, given the access. Caller holds ci->lock. */
static uint8_t want_order_locked(struct ff_cinode *ci, uint64_t off, uint64_t len)
{
	struct ff_cache *c = ci->c;
	uint8_t o;

	ff_assert_held(&ci->lock);
	o = len <= c->blk ? c->blk_order : ilog2_u64(len - 1) + 1;
	if (o > c->max_order)
		o = c->max_order;
	if (o < c->blk_order)
		o = c->blk_order;
	if (off == ci->last_end && off) {
		/* sequential: ramp up one order per new folio */
		if (ci->seq_order < o)
			ci->seq_order = o;
		else if (ci->seq_order < c->max_order)
			ci->seq_order++;
		o = ci->seq_order;
	} else {
		ci->seq_order = o;
	}
	/* shrink until the aligned range holds off and overlaps no folio */
	while (o > c->blk_order) {
		uint64_t s = ff_round_down(off, 1ull << o);

		if (range_free_locked(ci, s, 1ull << o))
			break;
		o--;
	}
	return o;
}

/*
 * The folio covering off, created if absent, pinned. Called with ci->lock
 * held; may drop and retake it (to reserve memory). Returns NULL with *err
 * -ENOMEM, or -EAGAIN when nowait and the budget is full (see reserve_mem).
 */
static struct folio *get_folio_locked(struct ff_cinode *ci, uint64_t off, uint64_t len, bool nowait,
				      int *err)
{
	struct ff_cache *c = ci->c;
	struct folio *f;
	uint8_t order;
	uint64_t size;
	uint32_t nblk;

	ff_assert_held(&ci->lock);
	for (;;) {
		f = ff_idx_find(ci, off);
		if (f) {
			f->pins++;
			atomic_store_explicit(&f->referenced, true, memory_order_relaxed);
			return f;
		}
		order = want_order_locked(ci, off, len);
		size = 1ull << order;
		ff_mutex_unlock(&ci->lock);
		if (!reserve_mem(c, size, nowait)) {
			ff_mutex_lock(&ci->lock);
			*err = -EAGAIN;
			return NULL;
		}
		ff_mutex_lock(&ci->lock);
		if (!range_free_locked(ci, ff_round_down(off, size), size)) {
			unreserve_mem(c, size);
			continue; /* raced with another creator */
		}
		break;
	}
	nblk = (uint32_t)(size >> c->blk_order);
	f = calloc(1, sizeof(*f) + FST_NR * FST_WORDS(nblk) * sizeof(uint64_t));
	if (f) {
		void *trimmed = NULL;

		ff_mutex_lock(&c->lock);
		f->data = spare_get_locked(c, order);
		if (!f->data) /* no order is 0: every spare may go */
			spares_trim_locked(c, 0, 0, &trimmed);
		ff_mutex_unlock(&c->lock);
		spares_free(trimmed);
	}
	if (f && !f->data)
		f->data = data_alloc(size);
	if (!f || !f->data) {
		free(f);
		unreserve_mem(c, size);
		*err = -ENOMEM;
		return NULL;
	}
	f->off = ff_round_down(off, size);
	f->size = (uint32_t)size;
	f->nblk = nblk;
	f->order = order;
	f->ci = ci;
	f->pins = 1;
	ff_idx_insert(ci, f);
	cnt_add(&c->by_order[order], 1);
	ff_mutex_lock(&c->lock);
	ring_insert_locked(c, f);
	ff_mutex_unlock(&c->lock);
	return f;
}

/* Drop a pin; at 0, wake a truncate waiting to drop the folio. Caller holds ci->lock. */
static void unpin_locked(struct ff_cinode *ci, struct folio *f)
{
	ff_assert_held(&ci->lock);
	if (--f->pins == 0)
		pthread_cond_broadcast(&ci->cv);
}

/* ---- filling from the device ---- */

/*
 * Read blocks [b0, b1) of f from where the filesystem says they live. No
 * lock held but the invalidate lock, shared (by the read or write call), so
 * what map_read answers stays valid until the device read is done.
 */
static int read_blocks(struct ff_cinode *ci, struct folio *f, uint32_t b0, uint32_t b1)
{
	struct ff_cache *c = ci->c;
	uint64_t pos = f->off + ((uint64_t)b0 << c->blk_order);
	uint64_t end = f->off + ((uint64_t)b1 << c->blk_order);

	while (pos < end) {
		struct ff_map m = {0};
		uint8_t *dst = f->data + (pos - f->off);
		uint64_t n;
		int ret = c->ops->map_read(ci->fs_inode, pos, end - pos, &m);

		if (ret)
			return ret;
		n = m.len < end - pos ? m.len : end - pos;
		if (!n)
			return -EIO;
		if (m.type == FF_MAP_HOLE) {
			memset(dst, 0, n);
		} else {
			struct iovec iov = {dst, n};
			ssize_t r = ff_dev_read(c->dev, &iov, 1, m.dev_off + (pos - m.file_off));

			if (r < 0)
				return (int)r;
			if ((uint64_t)r != n)
				return -EIO;
			cnt_add(&c->read_bytes, n);
		}
		pos += n;
	}
	return 0;
}

/*
 * Make blocks [b0, b1) of f uptodate. Called with ci->lock held and f pinned;
 * drops the lock around the read. Blocks already uptodate (dirty ones are)
 * are never overwritten.
 */
static int make_uptodate_locked(struct ff_cinode *ci, struct folio *f, uint32_t b0, uint32_t b1)
{
	int ret = 0;

	ff_assert_held(&ci->lock);
	for (;;) {
		while (f->filling)
			ff_cond_wait(&ci->cv, &ci->lock);
		if (fst_all(f, FST_UPTODATE, b0, b1))
			return 0;
		f->filling = true;
		break;
	}
	for (uint32_t b = b0; b < b1 && !ret;) {
		uint32_t e;

		if (fst_test(f, FST_UPTODATE, b)) {
			b++;
			continue;
		}
		for (e = b; e < b1 && !fst_test(f, FST_UPTODATE, e); e++)
			;
		ff_mutex_unlock(&ci->lock);
		ret = read_blocks(ci, f, b, e);
		ff_mutex_lock(&ci->lock);
		if (!ret)
			for (uint32_t k = b; k < e; k++)
				fst_set(f, FST_UPTODATE, k);
		b = e;
	}
	f->filling = false;
	pthread_cond_broadcast(&ci->cv);
	return ret;
}

static void wait_wb_locked(struct ff_cinode *ci, struct folio *f, uint32_t b0, uint32_t b1)
{
	ff_assert_held(&ci->lock);
	while (f->filling || fst_any(f, FST_WB, b0, b1))
		ff_cond_wait(&ci->cv, &ci->lock);
}

/* ---- submission of blocks ---- */

static int writeback_range(struct ff_cinode *ci, uint64_t lo, uint64_t hi, unsigned io_flags);

/*
 * writeback_range's io_flags from fsync: when the dirty blocks are one run
 * of at most WB_FUA_MAX bytes (a database's commit, a small file), it goes
 * FF_IO_DSYNC, and the flush after the commit has nothing left to do. One
 * FUA write costs a device no more than a write and a flush, often less; an
 * emulated sequential zone writes the pointer record beside it, where the
 * flush would write it after it; a write-back of several runs stays one
 * flush for all.
 */
#define WB_FUA_ONE (1u << 30)
#define WB_FUA_MAX (256u << 10)

/* Whether map_write's answer m for [pos, end) is one the cache can write; *n = bytes to take. */
static bool map_ok(struct ff_cache *c, const struct ff_map *m, uint64_t pos, uint64_t end,
		   uint64_t *n)
{
	*n = m->len < end - pos ? m->len : end - pos;
	if (*n % c->blk || m->file_off != pos || m->hdr_len % ff_dev_info(c->dev)->lblock_size ||
	    m->hdr_len > c->blk || (m->hdr_len && (m->type == FF_MAP_STORED || !c->ops->seal)) ||
	    (m->type != FF_MAP_INPLACE && m->type != FF_MAP_APPEND && m->type != FF_MAP_STORED)) {
		ff_err("cache: map_write answered type %d, %llu bytes at %llu: not a block write",
		       (int)m->type, (unsigned long long)m->len, (unsigned long long)pos);
		return false;
	}
	return true;
}

/* The iovecs of file bytes [pos, pos+n) of segs, into iov; returns how many (<= nseg). */
static int segs_iov(const struct ff_cache *c, const struct seg *segs, int nseg, uint64_t pos,
		    uint64_t n, struct iovec *iov)
{
	uint64_t p = pos;
	int cnt = 0;

	for (int i = 0; i < nseg && p < pos + n; i++) {
		uint64_t e = segs[i].f->off + ((uint64_t)segs[i].b1 << c->blk_order);

		if (e <= p)
			continue;
		if (e > pos + n)
			e = pos + n;
		iov[cnt].iov_base = segs[i].f->data + (p - segs[i].f->off);
		iov[cnt].iov_len = e - p;
		cnt++;
		p = e;
	}
	return cnt;
}

/*
 * Write the m->len + m->more bytes of an INPLACE or APPEND answer, held by
 * iovs[1..cnt] (iovs[0] is the header's room), with the header the
 * filesystem asked for, wait, and call write_done. No lock held. Returns 0,
 * the device's error, or write_done's.
 */
static int write_mapped(struct ff_cinode *ci, struct ff_map *m, struct iovec *iovs, int cnt,
			unsigned fl, unsigned io_flags, bool through)
{
	struct ff_cache *c = ci->c;
	struct iovec *iov = iovs + 1;
	uint64_t n = m->len + m->more, landed = 0, hlen = m->hdr_len;
	int ret;
	void *hdr = NULL;
	ssize_t res;

	if (hlen) {
		/* the header rides in the same write, before the data */
		res = posix_memalign(&hdr, c->blk, hlen) ? -ENOMEM : 0;
		if (!res) {
			memset(hdr, 0, hlen);
			res = c->ops->seal(ci->fs_inode, m, iov, cnt, hdr);
		}
		if (res) {
			(void)c->ops->write_done(ci->fs_inode, m, 0, res, fl);
			free(hdr);
			return (int)res;
		}
		iov = iovs;
		iov[0].iov_base = hdr;
		iov[0].iov_len = hlen;
		cnt++;
	}
	if (m->type == FF_MAP_APPEND && m->dev_off == FF_MAP_ANYWHERE) {
		res = ff_zoneq_append(c->dev, m->zone, iov, cnt, io_flags | m->io_flags, &landed);
		landed += hlen;
	} else if (m->type == FF_MAP_APPEND) {
		landed = m->dev_off;
		res = ff_zoneq_write_at(c->dev, m->zone, iov, cnt, m->dev_off - hlen,
					io_flags | m->io_flags);
	} else {
		landed = m->dev_off;
		res = ff_dev_write(c->dev, iov, cnt, m->dev_off - hlen, io_flags | m->io_flags);
	}
	free(hdr);
	if (res >= 0)
		res = (uint64_t)res == n + hlen ? (ssize_t)n : -EIO;
	ret = c->ops->write_done(ci->fs_inode, m, landed, res, fl);
	if (res < 0)
		return (int)res;
	if (!ret)
		cnt_add(through ? &c->wt_bytes : &c->wb_bytes, n);
	return ret;
}

/*
 * Write the blocks of segs (contiguous in the file, all marked writeback by
 * the caller) where map_write says, one mapping after another. isize is the
 * cache's size when the blocks were taken (under ci->lock, so every byte
 * below it was copied in): a last block reaching past it is a partial tail,
 * and map_write is told so (FF_MAPW_TAIL). No lock held. *stopped is set
 * when the filesystem mapped nothing (a partial tail it cannot write yet):
 * the blocks from *done on were not written. Returns 0 or the first error;
 * *done = bytes written (or found stored) from the start of the first
 * segment.
 */
static int submit_segs(struct ff_cinode *ci, struct seg *segs, int nseg, uint64_t isize,
		       unsigned mapw_flags, unsigned io_flags, bool through, uint64_t *done,
		       bool *stopped)
{
	struct ff_cache *c = ci->c;
	uint64_t start = segs[0].f->off + ((uint64_t)segs[0].b0 << c->blk_order);
	uint64_t end = segs[nseg - 1].f->off + ((uint64_t)segs[nseg - 1].b1 << c->blk_order);
	unsigned fl = mapw_flags | (end > isize ? FF_MAPW_TAIL : 0);
	uint64_t pos = start;
	int ret = 0;

	*stopped = false;
	while (pos < end) {
		struct ff_map m = {0};
		uint64_t n;

		ret = c->ops->map_write(ci->fs_inode, pos, end - pos, fl, &m);
		if (ret)
			break;
		if (!map_ok(c, &m, pos, end, &n)) {
			ret = -EIO;
			break;
		}
		if (!n) {
			*stopped = true;
			break;
		}
		if (m.type != FF_MAP_STORED) {
			struct iovec iovs[MAX_SEGS + 1];

			m.file_off = pos;
			m.len = n;
			ret = write_mapped(ci, &m, iovs, segs_iov(c, segs, nseg, pos, n, iovs + 1),
					   fl, io_flags, through);
			if (ret)
				break;
		}
		pos += n; /* STORED: on the device already, these blocks are clean */
	}
	*done = pos - start;
	return ret;
}

/*
 * Batched writeback. Writeback takes several runs of dirty blocks at once
 * (a run: contiguous blocks, one I/O on the serial path). Their in-place
 * mappings (FF_MAP_INPLACE without a header: conventional space, where
 * order does not matter and nothing is reserved) are submitted together
 * through ff_dev_submit_batch and waited for at once, then each gets its
 * write_done; an fsync of 32 random blocks costs one device round trip
 * instead of 32. Every other answer (an append, a header, a zone) keeps the
 * serial path and its order: the batch is written first, then that one
 * mapping alone. While in-place mappings wait in the batch, map_write is
 * asked with FF_MAPW_INPLACE, so that a filesystem does not wait (for a
 * slot, or for GC) with them held. A run's blocks are clean up to its first
 * failed or unwritten mapping; the rest stay dirty, and the error goes to
 * the inode as on the serial path.
 */
#define WB_RUNS 64	       /* runs taken per batch */
#define WB_IOS	64	       /* in-place writes in flight together (the ring's depth) */
#define WB_SEGS (4 * MAX_SEGS) /* segments of all the runs of a batch */

struct wb_run {
	struct seg *segs;
	int nseg;
	uint64_t start, end, isize;
	uint64_t done; /* bytes from start written, or found stored */
	bool stopped;  /* nothing mapped from start + done (a partial tail) */
	int err;       /* the first error; the blocks from start + done stay dirty */
};

/* An in-place write waiting in the batch. */
struct wb_piece {
	struct ff_map m;
	int run;
	unsigned fl;
};

struct wb_batch {
	int max_runs, max_segs, max_ios, max_iovs;
	int nrun, nseg, nio, niov;
	struct wb_run *runs;
	struct seg *segs;
	struct wb_piece *pcs;
	struct ff_io *ios;
	struct iovec *iovs;
};

/* The one-run batch used when no memory is left for a real one: the serial path. */
struct wb_small {
	struct wb_run run;
	struct seg segs[MAX_SEGS];
	struct wb_piece pc;
	struct ff_io io;
	struct iovec iovs[MAX_SEGS + 1]; /* + a header's */
};

static struct wb_batch *wb_batch_new(struct wb_batch *small_b, struct wb_small *small)
{
	size_t iovs = WB_SEGS + WB_IOS;
	struct wb_batch *b =
		malloc(sizeof(*b) + WB_RUNS * sizeof(struct wb_run) + WB_SEGS * sizeof(struct seg) +
		       WB_IOS * sizeof(struct wb_piece) + WB_IOS * sizeof(struct ff_io) +
		       iovs * sizeof(struct iovec));

	if (!b) {
		*small_b = (struct wb_batch){
			1, MAX_SEGS,	1,	     MAX_SEGS,	 0,	     0,		 0,
			0, &small->run, small->segs, &small->pc, &small->io, small->iovs};
		return small_b;
	}
	*b = (struct wb_batch){WB_RUNS, WB_SEGS, WB_IOS, (int)iovs, 0,	  0,   0,
			       0,	NULL,	 NULL,	 NULL,	    NULL, NULL};
	b->runs = (struct wb_run *)(b + 1);
	b->segs = (struct seg *)(b->runs + WB_RUNS);
	b->pcs = (struct wb_piece *)(b->segs + WB_SEGS);
	b->ios = (struct ff_io *)(b->pcs + WB_IOS);
	b->iovs = (struct iovec *)(b->ios + WB_IOS);
	return b;
}

/*
 * Submit the batch's in-place writes together, wait for all, call each one's
 * write_done (in order), and account each to its run. No lock held.
 */
static void wb_drain(struct ff_cinode *ci, struct wb_batch *b)
{
	struct ff_cache *c = ci->c;
	int ret;

	if (!b->nio)
		return;
	ret = ff_dev_submit_batch(c->dev, b->ios, b->nio);
	for (int i = 0; i < b->nio; i++) {
		struct wb_piece *p = &b->pcs[i];
		struct wb_run *r = &b->runs[p->run];
		ssize_t res = ret ? ret : b->ios[i].res;
		int wd;

		if (res >= 0)
			res = (uint64_t)res == p->m.len ? (ssize_t)p->m.len : -EIO;
		wd = c->ops->write_done(ci->fs_inode, &p->m, p->m.dev_off, res, p->fl);
		if (res < 0)
			wd = (int)res;
		if (!wd)
			cnt_add(&c->wb_bytes, p->m.len);
		if (wd && !r->err)
			r->err = wd;
		else if (!wd && !r->err && p->m.file_off == r->start + r->done)
			r->done += p->m.len;
	}
	b->nio = b->niov = 0;
}

/* Queue the in-place mapping m (m->len bytes at m->file_off) of run ri. No lock held. */
static void wb_queue(struct ff_cinode *ci, struct wb_batch *b, int ri, const struct ff_map *m,
		     unsigned fl, unsigned io_flags)
{
	struct wb_run *r = &b->runs[ri];
	struct wb_piece *p;
	struct ff_io *io;

	if (b->nio == b->max_ios || b->niov + r->nseg > b->max_iovs)
		wb_drain(ci, b);
	p = &b->pcs[b->nio];
	io = &b->ios[b->nio];
	*p = (struct wb_piece){*m, ri, fl};
	*io = (struct ff_io){
		.iov = b->iovs + b->niov,
		.iovcnt = segs_iov(ci->c, r->segs, r->nseg, m->file_off, m->len, b->iovs + b->niov),
		.off = m->dev_off,
		.write = true,
		.flags = io_flags | m->io_flags};
	b->niov += io->iovcnt;
	b->nio++;
}

/*
 * Offer the runs after ri to the filesystem (ops->more) for m, the write of
 * run ri's end behind a header, while it takes them: one header and one I/O
 * for several runs, where each would cost a block of header and a device
 * write. Their iovecs go on from b->iovs[1 + *cnt]. Returns how many it
 * took. No lock held.
 */
static int wb_gather(struct ff_cinode *ci, struct wb_batch *b, int ri, struct ff_map *m,
		     unsigned mapw_flags, int *cnt)
{
	struct ff_cache *c = ci->c;
	int k;

	for (k = ri + 1; k < b->nrun; k++) {
		struct wb_run *g = &b->runs[k];
		unsigned fl = mapw_flags | (g->end > g->isize ? FF_MAPW_TAIL : 0);

		if (1 + *cnt + g->nseg > IOV_MAX || 1 + *cnt + g->nseg > b->max_iovs ||
		    !c->ops->more(ci->fs_inode, m, g->start, g->end - g->start, fl))
			break;
		*cnt += segs_iov(c, g->segs, g->nseg, g->start, g->end - g->start,
				 b->iovs + 1 + *cnt);
	}
	return k - ri - 1;
}

/*
 * Write the batch's runs, in order. In-place mappings are queued and written
 * together; any other is written alone, after the queue, with the runs after
 * it that the filesystem lets it gather (wb_gather). A run stops at its
 * first error or at nothing mapped; after an error on the serial path no
 * later run is started (a format's order rule may need the failed data
 * first). No lock held; every run's blocks are marked writeback.
 */
static void wb_submit(struct ff_cinode *ci, struct wb_batch *b, unsigned mapw_flags,
		      unsigned io_flags)
{
	struct ff_cache *c = ci->c;
	bool halt = false;

	for (int ri = 0; ri < b->nrun && !halt; ri++) {
		struct wb_run *r = &b->runs[ri];
		unsigned fl = mapw_flags | (r->end > r->isize ? FF_MAPW_TAIL : 0);
		uint64_t pos = r->start;
		int ng = 0;

		while (pos < r->end && !r->err) {
			struct ff_map m = {0};
			bool held = b->nio > 0;
			uint64_t n;
			int ret;

			ret = c->ops->map_write(ci->fs_inode, pos, r->end - pos,
						fl | (held ? FF_MAPW_INPLACE : 0) |
							(ri + 1 == b->nrun ? FF_MAPW_ALONE : 0),
						&m);
			if (!ret && !map_ok(c, &m, pos, r->end, &n))
				ret = -EIO;
			if (ret) {
				r->err = ret;
				halt = true;
				break;
			}
			if (!n && held) {
				wb_drain(ci,
					 b); /* it would go elsewhere: ask again, holding nothing */
				continue;
			}
			if (!n) {
				r->stopped = true;
				break;
			}
			m.file_off = pos;
			m.len = n;
			if (m.type == FF_MAP_INPLACE && !m.hdr_len) {
				wb_queue(ci, b, ri, &m, fl, io_flags);
			} else {
				/* the serial path: what is queued first, then this alone */
				wb_drain(ci, b);
				if (m.type != FF_MAP_STORED) {
					int cnt =
						segs_iov(c, r->segs, r->nseg, pos, n, b->iovs + 1);

					if (m.hdr_len && c->ops->more && pos + n == r->end)
						ng = wb_gather(ci, b, ri, &m, mapw_flags, &cnt);
					ret = write_mapped(ci, &m, b->iovs, cnt, fl, io_flags,
							   false);
					for (int k = ri + 1; k <= ri + ng; k++) {
						struct wb_run *g = &b->runs[k];

						if (ret)
							g->err = ret;
						else
							g->done = g->end - g->start;
					}
				}
				if (ret) {
					if (!r->err)
						r->err = ret;
					halt = true;
				} else if (!r->err && r->start + r->done == pos) {
					r->done += n;
				}
			}
			pos += n;
		}
		ri += ng; /* written with run ri */
	}
	wb_drain(ci, b);
}

/* ---- writeback ---- */

/*
 * Collect the first run of contiguous dirty blocks at or after *pos below hi,
 * at most max_segs segments, mark them writeback and pin their folios.
 * Returns the number of segments; *pos moves past the run. Caller holds
 * ci->lock.
 */
static int collect_dirty_locked(struct ff_cinode *ci, uint64_t *pos, uint64_t hi, struct seg *segs,
				int max_segs)
{
	struct ff_cache *c = ci->c;
	struct folio *f = ff_idx_find(ci, *pos);
	uint64_t bytes = 0, max_bytes = 4ull << 20;
	int n = 0;

	ff_assert_held(&ci->lock);
	/* nothing dirty left: no walk of the file's cached folios (fsync costs its dirty data) */
	if (!ci->nr_dirty)
		return 0;
	if (!f)
		f = ff_idx_ceil(ci, *pos);
	for (; f && f->off < hi; f = ff_idx_ceil(ci, f->off + f->size)) {
		uint32_t b = *pos > f->off ? (uint32_t)((*pos - f->off) >> c->blk_order) : 0, e;
		uint32_t bmax = f->nblk;

		if (hi < f->off + f->size)
			bmax = (uint32_t)(ff_round_up(hi - f->off, c->blk) >> c->blk_order);
		/*
		 * A folio a reader is filling (other blocks of it) is waited for,
		 * not passed over: fsync and a hole punch count on every dirty
		 * block of the range being written back when this returns. A run
		 * already taken ends before it instead, holding no wait.
		 */
		if (f->filling && f->nr_dirty && !n) {
			f->pins++;
			while (f->filling)
				ff_cond_wait(&ci->cv, &ci->lock);
			unpin_locked(ci, f);
		}
		if (f->filling || !f->nr_dirty) {
			if (n)
				break;
			continue;
		}
		if (n) {
			/* the run continues only into an adjacent folio starting dirty */
			struct seg *last = &segs[n - 1];

			if (last->f->off + last->f->size != f->off || last->b1 != last->f->nblk ||
			    !fst_test(f, FST_DIRTY, 0))
				break;
			b = 0;
		} else {
			while (b < bmax && !fst_test(f, FST_DIRTY, b))
				b++;
			if (b == bmax)
				continue;
		}
		for (e = b; e < bmax && fst_test(f, FST_DIRTY, e) && !fst_test(f, FST_WB, e); e++)
			;
		if (e == b)
			break;
		for (uint32_t k = b; k < e; k++) {
			fst_clear(f, FST_DIRTY, k);
			fst_set(f, FST_WB, k);
		}
		f->nr_dirty -= e - b;
		f->nr_wb += e - b;
		ci->nr_dirty -= e - b;
		ci->nr_wb += e - b;
		cnt_sub(&c->dirty_bytes, (uint64_t)(e - b) << c->blk_order);
		cnt_add(&c->wb_inflight, (uint64_t)(e - b) << c->blk_order);
		f->pins++;
		segs[n++] = (struct seg){f, b, e};
		bytes += (uint64_t)(e - b) << c->blk_order;
		if (e != f->nblk || n == max_segs || bytes >= max_bytes)
			break;
	}
	if (n)
		*pos = segs[n - 1].f->off + ((uint64_t)segs[n - 1].b1 << c->blk_order);
	return n;
}

/*
 * Finish a submission: clear writeback of segs, unpin. Blocks below done
 * bytes are clean. The rest were not written: writeback (redirty) makes them
 * dirty again, the data is not lost. A write-through (!redirty) drops their
 * uptodate state, its writer gets the error, except for blocks that were
 * dirty when it took them (joined): those hold other writers' acknowledged
 * data and go back to dirty, and an I/O error (ioerr) is left on the inode
 * for the next fsync; not ENOSPC, which loses nothing: the next write-back
 * of those dirty blocks finds room or says so itself. Caller holds ci->lock.
 */
static void finish_segs_locked(struct ff_cinode *ci, struct seg *segs, int nseg, uint64_t done,
			       bool redirty, int ioerr)
{
	struct ff_cache *c = ci->c;
	uint64_t left = done >> c->blk_order, was_dirty = ci->nr_dirty;

	ff_assert_held(&ci->lock);
	for (int i = 0; i < nseg; i++) {
		struct folio *f = segs[i].f;

		for (uint32_t k = segs[i].b0; k < segs[i].b1; k++) {
			bool joined = fst_test(f, FST_JOINED, k);

			fst_clear(f, FST_WB, k);
			fst_clear(f, FST_JOINED, k);
			if (left) {
				left--;
				continue;
			}
			if (redirty || joined) {
				fst_set(f, FST_DIRTY, k);
				f->nr_dirty++;
				ci->nr_dirty++;
				cnt_add(&c->dirty_bytes, c->blk);
				if (joined && ioerr && ioerr != -ENOSPC && !ci->error)
					ci->error = ioerr;
			} else {
				fst_clear(f, FST_UPTODATE, k);
			}
		}
		f->nr_wb -= segs[i].b1 - segs[i].b0;
		ci->nr_wb -= segs[i].b1 - segs[i].b0;
		cnt_sub(&c->wb_inflight, (uint64_t)(segs[i].b1 - segs[i].b0) << c->blk_order);
		unpin_locked(ci, f);
	}
	if (!was_dirty)
		dirty_note_locked(ci);
	pthread_cond_broadcast(&ci->cv);
}

/*
 * Wait until no block of [lo, hi) is under writeback. Caller holds ci->lock.
 * Blocks, not folios: a write-through that first writes back the dirty blocks
 * ahead of it in its zone holds its own blocks of the same folio under
 * writeback, beyond hi, and must not wait for itself.
 */
static void wait_range_wb_locked(struct ff_cinode *ci, uint64_t lo, uint64_t hi)
{
	struct ff_cache *c = ci->c;

	for (;;) {
		struct folio *f;
		bool busy = false;

		/* nothing under writeback in the inode: no walk of its cached folios */
		if (!ci->nr_wb)
			return;
		f = ff_idx_find(ci, lo);
		if (!f)
			f = ff_idx_ceil(ci, lo);
		for (; f && f->off < hi; f = ff_idx_ceil(ci, f->off + f->size)) {
			uint64_t s = lo > f->off ? lo - f->off : 0;
			uint64_t e = hi < f->off + f->size ? hi - f->off : f->size;

			if (f->nr_wb &&
			    fst_any(f, FST_WB, (uint32_t)(s >> c->blk_order),
				    (uint32_t)(ff_round_up(e, c->blk) >> c->blk_order))) {
				busy = true;
				break;
			}
		}
		if (!busy)
			return;
		ff_cond_wait(&ci->cv, &ci->lock);
	}
}

/*
 * Write back every dirty block of [lo, hi) in offset order and wait for all
 * writeback in the range (any thread's). What to write comes from the
 * per-block dirty state and the size snapshot taken with it, never from a
 * size the filesystem published. The runs are taken a batch at a time, and
 * the batch's in-place writes are in flight together (see wb_submit). No
 * lock held; may be re-entered from the filesystem's map_write for an
 * earlier range. Returns the first error.
 */
static int writeback_range(struct ff_cinode *ci, uint64_t lo, uint64_t hi, unsigned io_flags)
{
	struct wb_small small;
	struct wb_batch small_b, *b = wb_batch_new(&small_b, &small);
	bool fua_one = io_flags & WB_FUA_ONE; /* until the first batch: it must be the only one */
	unsigned mapw_flags, fl;
	uint64_t pos = lo;
	int ret = 0;

	io_flags &= ~WB_FUA_ONE;
	mapw_flags = io_flags & FF_IO_DSYNC ? FF_MAPW_SYNC : 0;
	ff_mutex_lock(&ci->lock);
	while (pos < hi) {
		bool stopped = false, more = true;

		b->nrun = b->nseg = 0;
		while (pos < hi && b->nrun < b->max_runs && b->nseg < b->max_segs) {
			int room = b->max_segs - b->nseg;
			struct wb_run *r = &b->runs[b->nrun];
			int n = collect_dirty_locked(ci, &pos, hi, b->segs + b->nseg,
						     room < MAX_SEGS ? room : MAX_SEGS);

			if (!n) {
				more = false;
				break;
			}
			*r = (struct wb_run){
				.segs = b->segs + b->nseg, .nseg = n, .isize = ci->isize};
			r->start =
				r->segs[0].f->off + ((uint64_t)r->segs[0].b0 << ci->c->blk_order);
			r->end = r->segs[n - 1].f->off +
				 ((uint64_t)r->segs[n - 1].b1 << ci->c->blk_order);
			b->nseg += n;
			b->nrun++;
		}
		if (!b->nrun)
			break;
		fl = io_flags;
		if (fua_one && !more && b->nrun == 1 &&
		    b->runs[0].end - b->runs[0].start <= WB_FUA_MAX)
			fl |= FF_IO_DSYNC;
		fua_one = false;
		ff_mutex_unlock(&ci->lock);
		wb_submit(ci, b, mapw_flags, fl);
		ff_mutex_lock(&ci->lock);
		for (int i = 0; i < b->nrun; i++) {
			struct wb_run *r = &b->runs[i];

			finish_segs_locked(ci, r->segs, r->nseg, r->done, true, 0);
			stopped |= r->stopped;
			if (!r->err)
				continue;
			if (!ci->error)
				ci->error = r->err;
			ci->wb_failed = true;
			if (!ret)
				ret = r->err;
		}
		if (ret || stopped)
			break; /* stopped: a partial tail, it stays cached until it fills */
	}
	wait_range_wb_locked(ci, lo, hi);
	ff_mutex_unlock(&ci->lock);
	if (b != &small_b)
		free(b);
	return ret;
}

/* ---- the flusher ---- */

static uint64_t dirty_bg(const struct ff_cache *c)
{
	return c->o.cache_size / 100 * c->o.dirty_bg_pct;
}

static uint64_t dirty_max(const struct ff_cache *c)
{
	return c->o.cache_size / 100 * c->o.dirty_max_pct;
}

static void *flusher_main(void *arg)
{
	struct ff_cache *c = arg;

	ff_mutex_lock(&c->lock);
	while (!c->stop) {
		struct ff_cinode *ci;
		uint64_t visited;

		if (!c->kick && cnt_get(&c->dirty_bytes) <= dirty_bg(c)) {
			timed_wait(&c->flush_cv, &c->lock, 1000);
			/* every second, old dirty data goes too (like dirty_expire) */
			if (!c->kick && cnt_get(&c->dirty_bytes) <= dirty_bg(c) &&
			    !cnt_get(&c->dirty_bytes))
				continue;
		}
		c->kick = false;
		/*
		 * One pass: the inodes on the dirty list now, oldest first, not
		 * every inode. One still dirty afterwards (redirtied meanwhile,
		 * or a partial tail that waits) goes back to the tail, for the
		 * next pass.
		 */
		visited = 0;
		for (uint64_t n = c->nr_dirty_inodes; n && !c->stop && (ci = c->dirty_head); n--) {
			bool skip;

			visited++;
			dirty_del_locked(c, ci);
			cnt_add(&c->flusher_visits, 1);
			ci->refs++;
			ff_mutex_unlock(&c->lock);
			ff_mutex_lock(&ci->lock);
			skip = ci->wb_failed || !ci->nr_dirty;
			ff_mutex_unlock(&ci->lock);
			if (!skip)
				writeback_range(ci, 0, UINT64_MAX, 0);
			ff_mutex_lock(&ci->lock);
			dirty_note_locked(ci);
			ff_mutex_unlock(&ci->lock);
			ff_mutex_lock(&c->lock);
			ci->refs--;
			pthread_cond_broadcast(&c->mem_cv);
		}
		/*
		 * Dirty data on no listed inode (a failed write-back waits for
		 * fsync) is nothing the flusher can write: sleep until kicked
		 * rather than spin with the cache lock.
		 */
		if (!visited && !c->stop)
			timed_wait(&c->flush_cv, &c->lock, 1000);
	}
	ff_mutex_unlock(&c->lock);
	return NULL;
}

static void throttle(struct ff_cinode *ci)
{
	struct ff_cache *c = ci->c;
	uint64_t d = cnt_get(&c->dirty_bytes);

	if (d > dirty_bg(c)) {
		ff_mutex_lock(&c->lock);
		c->kick = true;
		pthread_cond_signal(&c->flush_cv);
		ff_mutex_unlock(&c->lock);
	}
	if (d > dirty_max(c)) {
		cnt_add(&c->throttle_waits, 1);
		writeback_range(ci, 0, UINT64_MAX, 0);
	}
}

/* ---- public: create, inodes ---- */

int ff_cache_create(struct ff_dev *dev, const struct ff_cache_ops *ops,
		    const struct ff_cache_opts *opts, struct ff_cache **out)
{
	struct ff_cache *c = calloc(1, sizeof(*c));
	const struct ff_dev_info *di = ff_dev_info(dev);

	if (!c)
		return -ENOMEM;
	c->dev = dev;
	c->ops = ops;
	if (opts)
		c->o = *opts;
	if (!c->o.cache_size)
		c->o.cache_size = 256ull << 20;
	if (!c->o.max_folio)
		c->o.max_folio = 2u << 20;
	if (!c->o.dirty_bg_pct)
		c->o.dirty_bg_pct = 10;
	if (!c->o.dirty_max_pct)
		c->o.dirty_max_pct = 40;
	c->blk = di->lblock_size < 4096 ? 4096 : di->lblock_size;
	if (!ff_is_pow2(c->o.max_folio) || c->o.max_folio < c->blk || c->o.max_folio > (1u << 30) ||
	    c->o.dirty_bg_pct > 100 || c->o.dirty_max_pct > 100 ||
	    c->o.dirty_bg_pct > c->o.dirty_max_pct) {
		free(c);
		return -EINVAL;
	}
	if (c->o.cache_size < 4ull * c->o.max_folio) {
		free(c);
		return -EINVAL;
	}
	c->blk_order = ilog2_u64(c->blk);
	c->max_order = ilog2_u64(c->o.max_folio);
	ff_mutex_init(&c->lock);
	pthread_cond_init(&c->mem_cv, NULL);
	pthread_cond_init(&c->flush_cv, NULL);
	if (pthread_create(&c->flusher, NULL, flusher_main, c)) {
		ff_mutex_destroy(&c->lock);
		free(c);
		return -EAGAIN;
	}
	*out = c;
	return 0;
}

struct ff_cinode *ff_cache_inode_new(struct ff_cache *c, void *fs_inode)
{
	struct ff_cinode *ci = calloc(1, sizeof(*ci));

	if (!ci)
		return NULL;
	ci->c = c;
	ci->fs_inode = fs_inode;
	{
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&ci->inval, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	ff_mutex_init(&ci->lock);
	pthread_cond_init(&ci->cv, NULL);
	ci->isize = UINT64_MAX;
	ff_mutex_lock(&c->lock);
	ci->next = c->inodes;
	if (c->inodes)
		c->inodes->prev = ci;
	c->inodes = ci;
	ff_mutex_unlock(&c->lock);
	return ci;
}

void ff_cache_inode_set_size(struct ff_cinode *ci, uint64_t size)
{
	ff_mutex_lock(&ci->lock);
	ci->isize = size;
	ff_mutex_unlock(&ci->lock);
}

/* Drop every folio at or beyond off (blocks wholly beyond; the partial block zeroed past off). */
static void drop_from_locked(struct ff_cinode *ci, uint64_t off)
{
	struct ff_cache *c = ci->c;
	struct folio *f;

	ff_assert_held(&ci->lock);
	wait_range_wb_locked(ci, ff_round_down(off, c->o.max_folio), UINT64_MAX);
	f = ff_idx_find(ci, off);
	if (f && f->off < off) {
		uint32_t keep = (uint32_t)(ff_round_up(off - f->off, c->blk) >> c->blk_order);
		uint64_t in_blk = (off - f->off) % c->blk;

		while (f->filling)
			ff_cond_wait(&ci->cv, &ci->lock);
		if (in_blk)
			memset(f->data + (off - f->off), 0, c->blk - in_blk);
		for (uint32_t k = keep; k < f->nblk; k++) {
			if (fst_test(f, FST_DIRTY, k)) {
				f->nr_dirty--;
				ci->nr_dirty--;
				cnt_sub(&c->dirty_bytes, c->blk);
			}
			fst_clear(f, FST_DIRTY, k);
			fst_clear(f, FST_UPTODATE, k);
		}
		f = ff_idx_ceil(ci, f->off + f->size);
	} else if (!f) {
		f = ff_idx_ceil(ci, off);
	}
	while (f) {
		struct folio *next = ff_idx_ceil(ci, f->off + f->size);

		while (f->filling || f->pins)
			ff_cond_wait(&ci->cv, &ci->lock);
		ci->nr_dirty -= f->nr_dirty;
		cnt_sub(&c->dirty_bytes, (uint64_t)f->nr_dirty << c->blk_order);
		ff_idx_remove(ci, f);
		ff_mutex_lock(&c->lock);
		ring_remove_locked(c, f);
		c->used -= f->size;
		pthread_cond_broadcast(&c->mem_cv);
		folio_free_mem_locked(c, f, 0);
		ff_mutex_unlock(&c->lock);
		f = next;
	}
}

void ff_cache_invalidate_begin(struct ff_cinode *ci)
{
	pthread_rwlock_wrlock(&ci->inval);
	atomic_store_explicit(&ci->inval_owner, pthread_self(), memory_order_relaxed);
}

void ff_cache_invalidate_end(struct ff_cinode *ci)
{
	atomic_store_explicit(&ci->inval_owner, (pthread_t)0, memory_order_relaxed);
	pthread_rwlock_unlock(&ci->inval);
}

static bool inval_held(struct ff_cinode *ci)
{
	return pthread_equal(atomic_load_explicit(&ci->inval_owner, memory_order_relaxed),
			     pthread_self());
}

int ff_cache_truncate(struct ff_cinode *ci, uint64_t off)
{
	static _Atomic bool told;

	if (!inval_held(ci) && !atomic_exchange_explicit(&told, true, memory_order_relaxed))
		ff_err("cache: truncate without the invalidate lock: a reader may cache old data");
	ff_mutex_lock(&ci->lock);
	drop_from_locked(ci, off);
	ci->isize = off;
	ff_mutex_unlock(&ci->lock);
	return 0;
}

int ff_cache_inode_free(struct ff_cinode *ci)
{
	struct ff_cache *c = ci->c;
	int ret = writeback_range(ci, 0, UINT64_MAX, 0);

	ff_cache_invalidate_begin(ci);
	ff_mutex_lock(&ci->lock);
	if (ci->nr_dirty)
		ff_warn("cache: %llu dirty block(s) could not be written back and are dropped",
			(unsigned long long)ci->nr_dirty);
	drop_from_locked(ci, 0);
	ff_mutex_unlock(&ci->lock);
	ff_cache_invalidate_end(ci);
	ff_mutex_lock(&c->lock);
	while (ci->refs)
		ff_cond_wait(&c->mem_cv, &c->lock);
	dirty_del_locked(c, ci);
	if (ci->prev)
		ci->prev->next = ci->next;
	else
		c->inodes = ci->next;
	if (ci->next)
		ci->next->prev = ci->prev;
	ff_mutex_unlock(&c->lock);
	if (!ret)
		ret = ci->error;
	pthread_cond_destroy(&ci->cv);
	ff_mutex_destroy(&ci->lock);
	pthread_rwlock_destroy(&ci->inval);
	free(ci);
	return ret;
}

/* ---- public: read ---- */

ssize_t ff_cache_read(struct ff_cinode *ci, void *buf, size_t len, uint64_t off, unsigned flags)
{
	struct ff_cache *c = ci->c;
	size_t done = 0;
	int ret = 0;

	pthread_rwlock_rdlock(&ci->inval);
	ff_mutex_lock(&ci->lock);
	if ((flags & FF_CR_EOF) && ci->isize != UINT64_MAX)
		len = off >= ci->isize ? 0
				       : (size_t)(len < ci->isize - off ? len : ci->isize - off);
	while (done < len) {
		uint64_t pos = off + done;
		struct folio *f = ff_idx_find(ci, pos);
		uint32_t b0, b1;
		size_t n;
		bool hit = f && !f->filling;

		if (!f) {
			/* readahead: a sequential miss reads the rest of the request in one folio
			 */
			f = get_folio_locked(ci, pos, len - done, false, &ret);
			if (!f)
				break;
		} else {
			f->pins++;
		}
		n = f->off + f->size - pos;
		if (n > len - done)
			n = len - done;
		b0 = (uint32_t)((pos - f->off) >> c->blk_order);
		b1 = (uint32_t)(ff_round_up(pos + n - f->off, c->blk) >> c->blk_order);
		if (hit && fst_all(f, FST_UPTODATE, b0, b1)) {
			cnt_add(&c->hits, 1);
		} else {
			/* a miss reads the whole folio's missing blocks */
			uint32_t e = f->nblk;

			if (ci->isize != UINT64_MAX && f->off + f->size > ci->isize)
				e = (uint32_t)(ff_round_up(ci->isize > f->off ? ci->isize - f->off
									      : 0,
							   c->blk) >>
					       c->blk_order);
			if (e < b1)
				e = b1;
			cnt_add(&c->misses, 1);
			ret = make_uptodate_locked(ci, f, 0, e);
			if (ret) {
				unpin_locked(ci, f);
				break;
			}
		}
		memcpy((char *)buf + done, f->data + (pos - f->off), n);
		atomic_store_explicit(&f->referenced, true, memory_order_relaxed);
		unpin_locked(ci, f);
		done += n;
	}
	ci->last_end = off + done;
	ff_mutex_unlock(&ci->lock);
	pthread_rwlock_unlock(&ci->inval);
	cnt_add(&c->copied_out, done);
	return done ? (ssize_t)done : ret;
}

/* ---- public: write ---- */

#define STREAM_MIN (64u << 10) /* the smallest write-through copy streamed */

/*
 * Copy [off, off+n) into f (pinned), make the needed blocks uptodate first,
 * wait out writeback on them. Sets b0 and b1 to the blocks to dirty or write:
 * the touched ones, or the whole folio (below the file size) with
 * dirty_gran=folio. A large write-through (through) streams the copy past
 * the CPU caches (ff_copy_stream): the next reader of those bytes is the
 * device, and a plain store to a cold line reads it first. A small one is
 * not worth it and may be read back soon. Caller holds ci->lock.
 */
static int copy_in_locked(struct ff_cinode *ci, struct folio *f, const void *src, uint64_t off,
			  size_t n, bool through, uint32_t *b0, uint32_t *b1)
{
	struct ff_cache *c = ci->c;
	uint32_t t0 = (uint32_t)((off - f->off) >> c->blk_order);
	uint32_t t1 = (uint32_t)(ff_round_up(off + n - f->off, c->blk) >> c->blk_order);
	int ret;

	*b0 = t0;
	*b1 = t1;
	if (c->o.dirty_gran == FF_DIRTY_FOLIO) {
		uint64_t lim = ci->isize == UINT64_MAX ? f->off + f->size : ci->isize;

		if (lim < off + n)
			lim = off + n;
		*b0 = 0;
		*b1 = lim >= f->off + f->size
			      ? f->nblk
			      : (uint32_t)(ff_round_up(lim - f->off, c->blk) >> c->blk_order);
		ret = make_uptodate_locked(ci, f, *b0, *b1);
		if (ret)
			return ret;
	} else {
		/* partial head and tail blocks are read first */
		if ((off - f->off) % c->blk && !fst_test(f, FST_UPTODATE, t0)) {
			ret = make_uptodate_locked(ci, f, t0, t0 + 1);
			if (ret)
				return ret;
		}
		if ((off + n - f->off) % c->blk && !fst_test(f, FST_UPTODATE, t1 - 1)) {
			ret = make_uptodate_locked(ci, f, t1 - 1, t1);
			if (ret)
				return ret;
		}
	}
	wait_wb_locked(ci, f, *b0, *b1);
	if (through && n >= STREAM_MIN)
		ff_copy_stream(f->data + (off - f->off), src, n);
	else
		memcpy(f->data + (off - f->off), src, n);
	for (uint32_t k = t0; k < t1; k++)
		fst_set(f, FST_UPTODATE, k);
	atomic_store_explicit(&f->referenced, true, memory_order_relaxed);
	return 0;
}

static void set_dirty_locked(struct ff_cinode *ci, struct folio *f, uint32_t b0, uint32_t b1)
{
	struct ff_cache *c = ci->c;
	uint64_t was_dirty = ci->nr_dirty;

	for (uint32_t k = b0; k < b1; k++) {
		if (fst_test(f, FST_DIRTY, k))
			continue;
		fst_set(f, FST_DIRTY, k);
		f->nr_dirty++;
		ci->nr_dirty++;
		cnt_add(&c->dirty_bytes, c->blk);
	}
	if (!was_dirty)
		dirty_note_locked(ci);
}

/*
 * Blocks [b0, b1) of f go writeback for a write-through; dirty ones join
 * (marked joined: if the write fails, they are another writer's data).
 */
static void set_wb_locked(struct ff_cinode *ci, struct folio *f, uint32_t b0, uint32_t b1)
{
	struct ff_cache *c = ci->c;

	for (uint32_t k = b0; k < b1; k++) {
		if (fst_test(f, FST_DIRTY, k)) {
			fst_set(f, FST_JOINED, k);
			fst_clear(f, FST_DIRTY, k);
			f->nr_dirty--;
			ci->nr_dirty--;
			cnt_sub(&c->dirty_bytes, c->blk);
		}
		fst_set(f, FST_WB, k);
	}
	f->nr_wb += b1 - b0;
	ci->nr_wb += b1 - b0;
	cnt_add(&c->wb_inflight, (uint64_t)(b1 - b0) << c->blk_order);
}

/* The cache's size moves past a copy, never before it (iomap_write_end). Caller holds ci->lock. */
static void extend_size_locked(struct ff_cinode *ci, uint64_t end)
{
	ff_assert_held(&ci->lock);
	if (ci->isize != UINT64_MAX && end > ci->isize)
		ci->isize = end;
}

/*
 * Write-through: copy in, mark writeback, submit, wait, batch by batch. io_flags
 * FF_IO_DSYNC for a durable write (mapw_flags FF_MAPW_SYNC), 0 for an
 * O_DIRECT one (on the device, no FUA). A batch is at most a quarter of the
 * cache and is submitted early when memory is short: its pins cannot be
 * reclaimed, so it does not wait for memory while holding them.
 */
static ssize_t write_through(struct ff_cinode *ci, const void *buf, size_t len, uint64_t off,
			     unsigned io_flags, unsigned mapw_flags, bool whole)
{
	struct ff_cache *c = ci->c;
	struct seg segs[MAX_SEGS];
	size_t done = 0;
	int ret = 0;

	while (done < len && !ret) {
		uint64_t seg_bytes = 0, wdone = 0, isize, start;
		size_t chunk_start = done;
		bool stopped = false;
		int n = 0, ioerr;

		ff_mutex_lock(&ci->lock);
		while (done < len && n < MAX_SEGS && seg_bytes < c->o.cache_size / 4) {
			uint64_t pos = off + done;
			int err = 0;
			struct folio *f = get_folio_locked(ci, pos, len - done, n > 0, &err);
			uint32_t b0, b1;
			size_t k;

			if (!f) {
				if (err != -EAGAIN)
					ret = err;
				break; /* -EAGAIN: submit what is pinned, then go on */
			}
			k = f->off + f->size - pos;
			if (k > len - done)
				k = len - done;
			ret = copy_in_locked(ci, f, (const char *)buf + done, pos, k, true, &b0,
					     &b1);
			if (ret) {
				unpin_locked(ci, f);
				break;
			}
			if (n && (segs[n - 1].f->off + ((uint64_t)segs[n - 1].b1 << c->blk_order) !=
				  f->off + ((uint64_t)b0 << c->blk_order))) {
				/* not contiguous with the previous (folio granularity): new batch
				 */
				unpin_locked(ci, f);
				break;
			}
			set_wb_locked(ci, f, b0, b1);
			segs[n++] = (struct seg){f, b0, b1};
			seg_bytes += f->size;
			done += k;
			extend_size_locked(ci, pos + k);
		}
		ci->last_end = off + done;
		isize = ci->isize;
		ff_mutex_unlock(&ci->lock);
		if (!n)
			break;
		start = segs[0].f->off + ((uint64_t)segs[0].b0 << c->blk_order);
		ioerr = submit_segs(ci, segs, n, isize, mapw_flags, io_flags, true, &wdone,
				    &stopped);
		if (ioerr && !ret)
			ret = ioerr;
		if (!ret && stopped)
			ret = -EINVAL; /* a sync write must end where the fs can map it */
		ff_mutex_lock(&ci->lock);
		finish_segs_locked(ci, segs, n, wdone, false, ioerr);
		if (ret) {
			/*
			 * The count stops where this batch's writes did: the
			 * blocks before are on the device with their mappings
			 * (below, a short count, or with whole the error).
			 */
			uint64_t from = off + chunk_start, wend = start + wdone;
			size_t kept = 0;

			if (wend > from)
				kept = wend - from < done - chunk_start ? (size_t)(wend - from)
									: done - chunk_start;
			done = chunk_start + kept;
		}
		ff_mutex_unlock(&ci->lock);
	}
	cnt_add(&c->copied_in, done);
	/*
	 * An error after some of the write was written returns that count: a
	 * short write, as POSIX has it (it is durable, and on a sequential zone
	 * it is there whatever the reply says). With whole (FF_CW_WHOLE) the
	 * error, as the kernel's O_DIRECT and O_DSYNC writes return it, but for
	 * a full device, where what fit is written and durable and the count
	 * says so.
	 */
	if (ret && (!done || (whole && ret != -ENOSPC)))
		return ret;
	cnt_add(&c->user_written, done);
	return (ssize_t)done;
}

static ssize_t write_buffered(struct ff_cinode *ci, const void *buf, size_t len, uint64_t off)
{
	struct ff_cache *c = ci->c;
	size_t done = 0;
	int ret = 0;

	ff_mutex_lock(&ci->lock);
	while (done < len) {
		uint64_t pos = off + done;
		struct folio *f = get_folio_locked(ci, pos, len - done, false, &ret);
		uint32_t b0, b1;
		size_t k;

		if (!f)
			break;
		k = f->off + f->size - pos;
		if (k > len - done)
			k = len - done;
		ret = copy_in_locked(ci, f, (const char *)buf + done, pos, k, false, &b0, &b1);
		if (!ret) {
			set_dirty_locked(ci, f, b0, b1);
			extend_size_locked(ci, pos + k);
		}
		unpin_locked(ci, f);
		if (ret)
			break;
		done += k;
		if (cnt_get(&c->dirty_bytes) > dirty_bg(c)) {
			ff_mutex_unlock(&ci->lock);
			throttle(ci);
			ff_mutex_lock(&ci->lock);
		}
	}
	ci->last_end = off + done;
	ff_mutex_unlock(&ci->lock);
	cnt_add(&c->copied_in, done);
	cnt_add(&c->user_written, done);
	return done ? (ssize_t)done : ret;
}

ssize_t ff_cache_write(struct ff_cinode *ci, const void *buf, size_t len, uint64_t off,
		       unsigned flags)
{
	struct ff_cache *c = ci->c;
	bool sync = flags & (FF_CW_SYNC | FF_CW_DSYNC);
	bool direct = flags & FF_CW_DIRECT;
	ssize_t r;
	int ret = 0;

	if (!len)
		return 0;
	pthread_rwlock_rdlock(&ci->inval);
	if (!sync && !direct) {
		r = write_buffered(ci, buf, len, off);
		goto out_unlock;
	}
	if (c->o.sync_mode == FF_SYNC_WRITETHROUGH) {
		/* O_DIRECT alone: on the device when acknowledged, without FUA */
		r = write_through(ci, buf, len, off, sync ? FF_IO_DSYNC : FF_IO_STABLE,
				  sync ? FF_MAPW_SYNC : 0, flags & FF_CW_WHOLE);
		goto out_unlock;
	}
	/* sync_mode=writeback: dirty, then write back the folios touched, then flush */
	r = write_buffered(ci, buf, len, off);
	if (r < 0)
		goto out_unlock;
	ret = writeback_range(ci, ff_round_down(off, c->o.max_folio),
			      ff_round_up(off + len, c->o.max_folio), 0);
	if (!ret && sync)
		ret = ff_dev_flush(c->dev);
	if (ret)
		r = ret;
out_unlock:
	pthread_rwlock_unlock(&ci->inval);
	return r;
}

/* ---- public: sync ---- */

int ff_cache_writeback(struct ff_cinode *ci)
{
	return writeback_range(ci, 0, UINT64_MAX, 0);
}

int ff_cache_writeback_range(struct ff_cinode *ci, uint64_t lo, uint64_t hi, unsigned flags)
{
	return writeback_range(ci, lo, hi, flags & (FF_CW_SYNC | FF_CW_DSYNC) ? FF_IO_DSYNC : 0);
}

uint64_t ff_cache_inode_dirty(struct ff_cinode *ci)
{
	uint64_t n;

	ff_mutex_lock(&ci->lock);
	n = ci->nr_dirty;
	ff_mutex_unlock(&ci->lock);
	return n;
}

bool ff_cache_range_dirty(struct ff_cinode *ci, uint64_t off, uint64_t len)
{
	uint64_t pos = off, end = off + len;
	bool dirty = false;

	ff_mutex_lock(&ci->lock);
	while (pos < end && !dirty) {
		struct folio *f = ff_idx_find(ci, pos);
		uint64_t a, b;

		if (!f) {
			f = ff_idx_ceil(ci, pos);
			if (!f || f->off >= end)
				break;
		}
		a = (pos > f->off ? pos - f->off : 0) >> ci->c->blk_order;
		b = f->off + f->size < end
			    ? f->nblk
			    : ff_round_up(end - f->off, ci->c->blk) >> ci->c->blk_order;
		dirty = fst_any(f, FST_DIRTY, (uint32_t)a, (uint32_t)b) ||
			fst_any(f, FST_WB, (uint32_t)a, (uint32_t)b);
		pos = f->off + f->size;
	}
	ff_mutex_unlock(&ci->lock);
	return dirty;
}

int ff_cache_inode_error(struct ff_cinode *ci)
{
	int err;

	ff_mutex_lock(&ci->lock);
	err = ci->error;
	ci->error = 0;
	ci->wb_failed = false;
	dirty_note_locked(ci);
	ff_mutex_unlock(&ci->lock);
	return err;
}

int ff_cache_fsync(struct ff_cinode *ci, bool datasync)
{
	struct ff_cache *c = ci->c;
	int ret, err, cm = 0, fl;

	ret = writeback_range(ci, 0, UINT64_MAX, WB_FUA_ONE);
	err = ff_cache_inode_error(ci);
	if (c->ops->commit)
		cm = c->ops->commit(ci->fs_inode, datasync);
	fl = ff_dev_sync(c->dev);
	return err ? err : ret ? ret : cm ? cm : fl;
}

int ff_cache_sync_all(struct ff_cache *c)
{
	struct ff_cinode *ci;
	int ret = 0;

	ff_mutex_lock(&c->lock);
	for (ci = c->inodes; ci; ci = ci->next) {
		int r;

		ci->refs++;
		ff_mutex_unlock(&c->lock);
		r = writeback_range(ci, 0, UINT64_MAX, 0);
		if (r && !ret)
			ret = r;
		ff_mutex_lock(&c->lock);
		ci->refs--;
		pthread_cond_broadcast(&c->mem_cv);
	}
	ff_mutex_unlock(&c->lock);
	{
		int fl = ff_dev_flush(c->dev);

		if (!ret)
			ret = fl;
	}
	return ret;
}

int ff_cache_destroy(struct ff_cache *c)
{
	int ret;

	if (!c)
		return 0;
	ret = ff_cache_sync_all(c);
	ff_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->flush_cv);
	ff_mutex_unlock(&c->lock);
	pthread_join(c->flusher, NULL);
	while (c->inodes) {
		int r = ff_cache_inode_free(c->inodes);

		if (r && !ret)
			ret = r;
	}
	for (uint8_t o = 0; o < 32; o++) {
		void *p;

		while ((p = c->spare[o])) {
			c->spare[o] = *(void **)p;
			data_free(p, (size_t)1 << o);
		}
	}
	pthread_cond_destroy(&c->mem_cv);
	pthread_cond_destroy(&c->flush_cv);
	ff_mutex_destroy(&c->lock);
	free(c);
	return ret;
}

void ff_cache_stats(struct ff_cache *c, struct ff_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->hits = cnt_get(&c->hits);
	out->misses = cnt_get(&c->misses);
	out->bytes_copied_in = cnt_get(&c->copied_in);
	out->bytes_copied_out = cnt_get(&c->copied_out);
	out->wt_bytes = cnt_get(&c->wt_bytes);
	out->wb_bytes = cnt_get(&c->wb_bytes);
	out->read_bytes = cnt_get(&c->read_bytes);
	out->user_bytes_written = cnt_get(&c->user_written);
	out->dirty_bytes = cnt_get(&c->dirty_bytes);
	out->writeback_bytes = cnt_get(&c->wb_inflight);
	out->reclaims = cnt_get(&c->reclaims);
	out->throttle_waits = cnt_get(&c->throttle_waits);
	out->flusher_visits = cnt_get(&c->flusher_visits);
	for (int i = 0; i < 32; i++) {
		out->folios_by_order[i] = cnt_get(&c->by_order[i]);
		out->cached_bytes += out->folios_by_order[i] << i;
	}
}
