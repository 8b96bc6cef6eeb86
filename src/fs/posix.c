// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The posix format (issue 11; docs/posix-format.md is the on-disk layout): a
 * general namespace on zoned and regular devices over the cache and device
 * layers.
 *
 * State. Everything lives in memory: inodes in a hash table by number,
 * directories as a name hash plus an array in cookie order, extents per inode
 * in an array sorted by file offset, xattrs in a list, the zone table. Every
 * change is made by building its log records and applying them to memory with
 * the same function replay uses (apply_rec), so what the log says and what
 * memory holds cannot drift apart.
 *
 * Log. Records are queued in memory under the namespace lock in the order of
 * the changes and get their sequence numbers there. Commits are group
 * commits: a committer that needs seq S waits until a leader's write covers
 * it, or becomes the leader and writes every queued record in one
 * PREFLUSH+FUA write. When the metadata zone is full the leader writes a
 * checkpoint (the whole state) into the next metadata zone instead.
 *
 * Data. Appends and out-of-place writes go to one of a few open data zones
 * (slots) with a header block in the same I/O (the cache's seal hook), so a
 * sync write is one write; its EXTENT record is queued and committed with the
 * next group commit. A slot's mutex is held from map_write to write_done, so
 * a zone has one data write in flight and headers form a chain a mount can
 * roll forward. Overwrites of committed extents in conventional space are in
 * place. A regular file's cache inode is made at its first data access.
 *
 * Mount: the newest metadata zone with a whole checkpoint, its log replayed
 * to the first bad record, the open data zones rolled forward from their
 * committed cursors, orphans (nlink 0) freed, then a fresh checkpoint in the
 * next metadata zone, so the log never continues after a torn tail.
 *
 * Locks, in order: an inode's io_lock (its writers, truncates), a slot's mu,
 * fs->ns (inodes, dirs, extents, xattrs, zone table, counters), fs->log
 * (queued records, sequence numbers). A thread holding ns never waits for a
 * commit; the commit leader holds no lock during its I/O (the leader flag
 * keeps others out) and takes ns then log only to snapshot a checkpoint.
 */
#include <endian.h>
#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "internal.h"
#include "posix.h"
#include "posix_int.h"

#define PX_MAX_WRITE (4ull << 20)
#define PX_MAX_FILE  (1ull << 60)
/* zones mkfs aims at on an image or regular disk (default_zone_size) */
#define PX_DEFAULT_ZONES 256

/* ---- little-endian buffers ---- */

static void buf_need(struct px_buf *b, size_t n)
{
	if (b->err || b->len + n <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void put_bytes(struct px_buf *b, const void *v, size_t n)
{
	buf_need(b, n);
	if (b->err)
		return;
	if (n)
		memcpy(b->p + b->len, v, n);
	b->len += n;
}

static void put16(struct px_buf *b, uint16_t v)
{
	v = htole16(v);
	put_bytes(b, &v, 2);
}

static void put32(struct px_buf *b, uint32_t v)
{
	v = htole32(v);
	put_bytes(b, &v, 4);
}

static void put64(struct px_buf *b, uint64_t v)
{
	v = htole64(v);
	put_bytes(b, &v, 8);
}

static void put_ts(struct px_buf *b, const struct timespec *t)
{
	put64(b, (uint64_t)t->tv_sec);
	put32(b, (uint32_t)t->tv_nsec);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void set32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void set64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* A reader over a record's payload: running past the end sets bad. */
struct px_rd {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *rd_take(struct px_rd *r, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return NULL;
	}
	r->pos += n;
	return r->p + r->pos - n;
}

static uint16_t rd16(struct px_rd *r)
{
	const uint8_t *p = rd_take(r, 2);
	return p ? get16(p) : 0;
}

static uint32_t rd32(struct px_rd *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? get32(p) : 0;
}

static uint64_t rd64(struct px_rd *r)
{
	const uint8_t *p = rd_take(r, 8);
	return p ? get64(p) : 0;
}

static struct timespec rd_ts(struct px_rd *r)
{
	struct timespec t;

	t.tv_sec = (time_t)rd64(r);
	t.tv_nsec = rd32(r);
	if (t.tv_nsec >= 1000000000L)
		r->bad = true;
	return t;
}

static struct px_fs *px_of(struct ff_fs *gfs)
{
	return (struct px_fs *)gfs;
}

static uint64_t ts_ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
				 .tv_nsec = (long)(ns % 1000000000u)};
}

/* fs->time_floor = max(it, ns) */
static void floor_raise(struct px_fs *fs, uint64_t ns)
{
	uint64_t f = atomic_load(&fs->time_floor);

	while (f < ns && !atomic_compare_exchange_weak(&fs->time_floor, &f, ns))
		;
}

/*
 * The coarse clock, not below the floor (the kernel's current_time): for
 * atime, which reads move; a fine time there would raise the floor at
 * every read and give the next write of any file a new stamp.
 */
static struct timespec coarse_ts(struct px_fs *fs)
{
	struct timespec t;
	uint64_t f = atomic_load(&fs->time_floor);

	clock_gettime(CLOCK_REALTIME_COARSE, &t);
	return ts_ns(t) < f ? ns_ts(f) : t;
}

/* The fine clock, for every change but a data write's (write_stamp_locked) and atime's */
static struct timespec now_ts(struct px_fs *fs)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	floor_raise(fs, ts_ns(t));
	return t;
}

/*
 * The time a data write stamps on mtime and ctime, as Linux's multigrain
 * timestamps (fs/inode.c: current_time, inode_set_ctime_current). The
 * coarse clock, which moves once a tick (a few milliseconds): the writes
 * of one tick then change the times once, and an fsync after the later
 * ones has no inode record to log, as with XFS and ext4. The fine clock
 * when the file's times were handed out (fill_stat) since they last
 * changed and the coarse clock is not past them, so that whoever read them
 * sees this change. Every fine time handed out (now_ts) raises the floor,
 * below which no coarse time goes: a file changed later never shows an
 * earlier time than one changed before it. False: the times stay as they
 * are. Under fs->ns.
 */
static bool write_stamp_locked(struct px_fs *fs, struct px_inode *i, struct timespec *out)
{
	struct timespec t;
	uint64_t ns, c = ts_ns(i->ctime);

	ns = ts_ns(coarse_ts(fs));
	if (ns <= c && i->times_seen) {
		clock_gettime(CLOCK_REALTIME, &t);
		ns = ts_ns(t) > c ? ts_ns(t) : c + 1;
		floor_raise(fs, ns);
	}
	if (ns < c)
		ns = c; /* a clock set back: never backwards */
	*out = ns_ts(ns);
	return ns != c || ns != ts_ns(i->mtime);
}

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* ---- inode table ---- */

static struct px_inode *iget_locked(struct px_fs *fs, uint64_t ino)
{
	struct px_inode *i;

	ff_assert_held(&fs->ns);

	if (!fs->icap)
		return NULL;
	for (i = fs->itab[ino & (fs->icap - 1)]; i; i = i->hnext)
		if (i->ino == ino)
			return i;
	return NULL;
}

/*
 * A read or a write changed i's times (relatime's atime, mtime and ctime):
 * an INODE record carries them at the next fsync, or the committer's next
 * tick. By number, so that an inode freed meanwhile leaves nothing behind;
 * without memory for the number they wait for an fsync or the unmount's
 * checkpoint. Caller holds ns.
 */
static void attr_dirty_locked(struct px_fs *fs, struct px_inode *i)
{
	ff_assert_held(&fs->ns);
	i->attr_dirty = true;
	if (i->adq || fs->ro)
		return;
	if (fs->adq_n == fs->adq_cap) {
		size_t cap = fs->adq_cap ? 2 * fs->adq_cap : 64;
		uint64_t *q = realloc(fs->adq, cap * sizeof(*q));

		if (!q)
			return;
		fs->adq = q;
		fs->adq_cap = cap;
	}
	fs->adq[fs->adq_n++] = i->ino;
	i->adq = true;
}

/* A data write's stamp (write_stamp_locked) on i's times, to be logged. Under fs->ns. */
static void write_stamp_apply_locked(struct px_fs *fs, struct px_inode *i)
{
	struct timespec t;

	if (write_stamp_locked(fs, i, &t)) {
		i->mtime = i->ctime = t;
		i->times_seen = false;
		attr_dirty_locked(fs, i);
	}
}

/*
 * The growth step the two chained hash tables share (the inode table, keyed
 * by inode number; a directory's name hash, keyed by name_hash): before an
 * insert would put more than count entries in cap buckets, the table gets
 * twice the buckets (first when it has none) and every node of the old one
 * moves to bucket key & (cap - 1) of the new one. Returns 0, or -ENOMEM with
 * the old table kept. Written once and made a typed function for each node
 * type (both chain through hnext); the caller holds what guards the table.
 */
#define PX_HASH_GROW(name, type, key)                                           \
	static int name(type ***tabp, size_t *capp, size_t count, size_t first) \
	{                                                                       \
		size_t cap = *capp ? *capp * 2 : first;                         \
		type **t;                                                       \
                                                                                \
		if (count + 1 <= *capp)                                         \
			return 0;                                               \
		t = calloc(cap, sizeof(*t));                                    \
		if (!t)                                                         \
			return -ENOMEM;                                         \
		for (size_t k = 0; k < *capp; k++) {                            \
			type *x = (*tabp)[k], *nx;                              \
                                                                                \
			for (; x; x = nx) {                                     \
				nx = x->hnext;                                  \
				x->hnext = t[x->key & (cap - 1)];               \
				t[x->key & (cap - 1)] = x;                      \
			}                                                       \
		}                                                               \
		free(*tabp);                                                    \
		*tabp = t;                                                      \
		*capp = cap;                                                    \
		return 0;                                                       \
	}

PX_HASH_GROW(itab_grow, struct px_inode, ino)
PX_HASH_GROW(dir_ht_grow, struct px_dent, hash)

static int itab_insert_locked(struct px_fs *fs, struct px_inode *i)
{
	int ret;

	ff_assert_held(&fs->ns);
	ret = itab_grow(&fs->itab, &fs->icap, fs->icount, 1024);
	if (ret)
		return ret;
	i->hnext = fs->itab[i->ino & (fs->icap - 1)];
	fs->itab[i->ino & (fs->icap - 1)] = i;
	fs->icount++;
	return 0;
}

static void itab_remove_locked(struct px_fs *fs, struct px_inode *i)
{
	struct px_inode **pp = &fs->itab[i->ino & (fs->icap - 1)];

	ff_assert_held(&fs->ns);

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == i) {
			*pp = i->hnext;
			fs->icount--;
			return;
		}
	}
}

/* ---- directories ---- */

static struct px_dent *dir_find(struct px_dir *d, const char *name, size_t n)
{
	uint32_t h = name_hash(name, n);

	if (!d->hcap)
		return NULL;
	for (struct px_dent *e = d->ht[h & (d->hcap - 1)]; e; e = e->hnext)
		if (e->hash == h && e->nlen == n && !memcmp(e->name, name, n))
			return e;
	return NULL;
}

static int dir_add(struct px_dir *d, const char *name, size_t n, uint64_t ino, uint64_t cookie)
{
	struct px_dent *e;
	int ret = dir_ht_grow(&d->ht, &d->hcap, d->nlive, 16);

	if (ret)
		return ret;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct px_dent **a = realloc(d->ents, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		d->ents = a;
		d->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = malloc(n + 1))) {
		free(e);
		return -ENOMEM;
	}
	memcpy(e->name, name, n);
	e->name[n] = 0;
	e->nlen = (uint16_t)n;
	e->hash = name_hash(name, n);
	e->ino = ino;
	e->cookie = cookie;
	e->hnext = d->ht[e->hash & (d->hcap - 1)];
	d->ht[e->hash & (d->hcap - 1)] = e;
	/* cookies grow; a replayed checkpoint may list them in any order */
	size_t at = d->n;
	while (at > 0 && d->ents[at - 1]->cookie > cookie)
		at--;
	memmove(d->ents + at + 1, d->ents + at, (d->n - at) * sizeof(*d->ents));
	d->ents[at] = e;
	d->n++;
	d->nlive++;
	if (cookie >= d->next_cookie)
		d->next_cookie = cookie + 1;
	return 0;
}

static void dir_compact(struct px_dir *d)
{
	size_t k = 0;

	for (size_t j = 0; j < d->n; j++) {
		if (d->ents[j]->dead) {
			free(d->ents[j]->name);
			free(d->ents[j]);
		} else {
			d->ents[k++] = d->ents[j];
		}
	}
	d->n = k;
	d->ndead = 0;
}

static void dir_del(struct px_dir *d, struct px_dent *e)
{
	struct px_dent **pp = &d->ht[e->hash & (d->hcap - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	e->dead = true;
	d->ndead++;
	d->nlive--;
	if (d->ndead > 64 && d->ndead > d->n / 2)
		dir_compact(d);
}

/* The first live entry with a cookie greater than cookie, or NULL. */
static struct px_dent *dir_after(struct px_dir *d, uint64_t cookie)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->ents[mid]->cookie <= cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < d->n; lo++)
		if (!d->ents[lo]->dead)
			return d->ents[lo];
	return NULL;
}

static void dir_free(struct px_dir *d)
{
	if (!d)
		return;
	for (size_t j = 0; j < d->n; j++) {
		free(d->ents[j]->name);
		free(d->ents[j]);
	}
	free(d->ents);
	free(d->ht);
	free(d);
}

/* ---- extents ---- */

static uint32_t zone_of(struct px_fs *fs, uint64_t dev)
{
	return (uint32_t)(dev / fs->zone_size);
}

/*
 * The reverse map: each zone's owners (struct px_owner), kept by the extent
 * helpers below with the zone's extent count, so that a GC round finds the
 * inodes with blocks in its victim without a scan of every inode. A table
 * grows before an insert (own_reserve_locked, where an error can still be
 * returned), so that adding an owner never fails halfway through a change.
 */

static uint32_t own_home(const struct px_zone *zo, const struct px_inode *i)
{
	return (uint32_t)((i->ino * 0x9e3779b97f4a7c15ull) >> 32) & (zo->own_cap - 1);
}

/* i's entry in zo's owners, or NULL. Caller holds ns. */
static struct px_owner *own_find_locked(const struct px_zone *zo, const struct px_inode *i)
{
	if (!zo->own_n)
		return NULL;
	for (uint32_t k = own_home(zo, i);; k = (k + 1) & (zo->own_cap - 1)) {
		if (zo->own[k].i == i)
			return &zo->own[k];
		if (!zo->own[k].i)
			return NULL;
	}
}

/* Rehash zo's owners into a table of cap slots (0: free it). Caller holds ns. */
static int own_resize_locked(struct px_zone *zo, uint32_t cap)
{
	struct px_owner *old = zo->own, *t = NULL;
	uint32_t ocap = zo->own_cap;

	if (cap) {
		t = calloc(cap, sizeof(*t));
		if (!t)
			return -ENOMEM;
	}
	zo->own = t;
	zo->own_cap = cap;
	for (uint32_t k = 0; k < ocap; k++) {
		uint32_t h;

		if (!old[k].i)
			continue;
		for (h = own_home(zo, old[k].i); t[h].i; h = (h + 1) & (cap - 1))
			;
		t[h] = old[k];
	}
	free(old);
	return 0;
}

/* Room in zone z's owners for one more inode. Caller holds ns. */
static int own_reserve_locked(struct px_fs *fs, uint32_t z)
{
	struct px_zone *zo;

	ff_assert_held(&fs->ns);
	if (z >= fs->nr_zones)
		return 0;
	zo = &fs->zones[z];
	if ((zo->own_n + 1) * 4 <= zo->own_cap * 3)
		return 0;
	return own_resize_locked(zo, zo->own_cap ? zo->own_cap * 2 : 4);
}

/* Drop the entry at slot k, moving up the ones its removal would cut off. Caller holds ns. */
static void own_del_locked(struct px_zone *zo, uint32_t k)
{
	uint32_t mask = zo->own_cap - 1;

	for (uint32_t j = (k + 1) & mask; zo->own[j].i; j = (j + 1) & mask) {
		uint32_t h = own_home(zo, zo->own[j].i);

		/* j's entry may fill the hole at k when its home is not in (k, j] */
		if (((j - h) & mask) >= ((j - k) & mask)) {
			zo->own[k] = zo->own[j];
			k = j;
		}
	}
	zo->own[k] = (struct px_owner){0};
	zo->own_n--;
}

/*
 * Free zo's owner table when empty, halve it when sparse (best effort: a
 * failed allocation keeps the bigger one). Never in the middle of an extent
 * change, whose room for a new owner was reserved. Caller holds ns.
 */
static void own_trim_locked(struct px_zone *zo)
{
	if (!zo->own_n && zo->own_cap)
		(void)own_resize_locked(zo, 0);
	while (zo->own_cap > 16 && zo->own_n * 8 < zo->own_cap)
		if (own_resize_locked(zo, zo->own_cap / 2))
			break;
}

static void zone_changed_locked(struct px_fs *fs, struct px_zone *zo);

#define PX_CP_EXT 28u /* a checkpoint's bytes an extent (rec_extents: off, blocks, dev, dseq) */

/*
 * One extent of i more (n 1) or fewer (n -1) in the zone holding dev: the
 * zone's extent count and owners follow. An inode new to the zone needs room
 * reserved before (own_reserve_locked). Caller holds ns.
 */
static void next_add_locked(struct px_fs *fs, struct px_inode *i, uint64_t dev, int n)
{
	uint32_t z = zone_of(fs, dev);
	struct px_zone *zo;
	struct px_owner *o;

	/*
	 * An extent gone is PX_CP_EXT bytes less in the next checkpoint
	 * that the estimate still counts: counted as a change since the last
	 * measurement, so that removing a file of many extents has the room
	 * measured again soon (meta_now_locked).
	 */
	if (n < 0)
		fs->meta_since += PX_CP_EXT;
	if (z >= fs->nr_zones)
		return;
	zo = &fs->zones[z];
	zo->next += (uint64_t)(int64_t)n;
	o = own_find_locked(zo, i);
	if (n > 0) {
		if (!o) {
			uint32_t k;

			if ((zo->own_n + 1) * 4 > zo->own_cap * 3 && own_reserve_locked(fs, z)) {
				ff_err("posix: zone %u: no memory for its owners", z);
				return;
			}
			for (k = own_home(zo, i); zo->own[k].i; k = (k + 1) & (zo->own_cap - 1))
				;
			o = &zo->own[k];
			o->i = i;
			o->next = 0;
			zo->own_n++;
		}
		o->next++;
		return;
	}
	if (o && !--o->next)
		own_del_locked(zo, (uint32_t)(o - zo->own));
	zone_changed_locked(fs, zo);
}

/*
 * Something a GC round looks at changed so that a victim may be found where
 * the last round found none: blocks died, a zone left its slot or its writes
 * in flight ended. Any lock or none.
 */
static void gc_progress(struct px_fs *fs)
{
	atomic_fetch_add(&fs->gc_gen, 1);
}

/* A write into zo ended (its inflight dropped). Caller holds ns. */
static void inflight_done_locked(struct px_fs *fs, struct px_zone *zo)
{
	ff_assert_held(&fs->ns);
	zone_changed_locked(fs, zo);
	/* a zone out of its slot with writes in flight is no victim until the last ends */
	if (!zo->inflight && zo->slot < 0)
		gc_progress(fs);
}

/*
 * The len bytes of an extent at dev start (add) or stop counting: in their
 * zone's valid blocks, or for a reservation (PX_UNWRITTEN) in the reserved
 * total. Caller holds ns.
 */
static void valid_add_locked(struct px_fs *fs, uint64_t dev, uint64_t len, bool add)
{
	uint32_t z = zone_of(fs, dev);
	uint64_t nb = len / PX_BLK;

	if (dev == PX_UNWRITTEN) {
		fs->resv_blk = add ? fs->resv_blk + nb
				   : fs->resv_blk - (nb < fs->resv_blk ? nb : fs->resv_blk);
		return;
	}
	if (z >= fs->nr_zones)
		return;
	if (add) {
		fs->zones[z].valid += nb;
	} else {
		fs->zones[z].valid -= nb < fs->zones[z].valid ? nb : fs->zones[z].valid;
		gc_progress(fs);
	}
	zone_changed_locked(fs, &fs->zones[z]);
}

/* The device offset delta bytes into an extent at dev; a reservation has none. */
static uint64_t dev_at(uint64_t dev, uint64_t delta)
{
	return dev == PX_UNWRITTEN ? dev : dev + delta;
}

static int ext_reserve(struct px_inode *i, size_t more)
{
	if (i->next + more <= i->ecap)
		return 0;
	size_t cap = i->ecap ? i->ecap * 2 : 4;
	while (cap < i->next + more)
		cap *= 2;
	struct px_ext *e = realloc(i->ext, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	i->ext = e;
	i->ecap = cap;
	return 0;
}

/*
 * Map [off, off+len) to dev (PX_NO_DEV: unmap; PX_UNWRITTEN: reserve),
 * replacing whatever was there; the zones' valid-block counters and the
 * reserved-block total follow. Caller holds ns.
 */
static int ext_set_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len,
			  uint64_t dev, uint64_t dseq, uint64_t rseq)
{
	uint64_t end = off + len;
	size_t k = 0, first;
	int ret;

	ff_assert_held(&fs->ns);
	if (!len)
		return 0;
	ret = ext_reserve(i, 2);
	if (!ret && dev != PX_NO_DEV)
		ret = own_reserve_locked(fs, zone_of(fs, dev));
	if (ret)
		return ret;
	/* first extent ending after off */
	{
		size_t lo = 0, hi = i->next;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (i->ext[mid].off + i->ext[mid].len <= off)
				lo = mid + 1;
			else
				hi = mid;
		}
		k = lo;
	}
	first = k;
	/* split the extent straddling off */
	if (k < i->next && i->ext[k].off < off) {
		struct px_ext *e = &i->ext[k];
		struct px_ext right = *e;

		right.dev = dev_at(e->dev, off - e->off);
		right.len -= off - e->off;
		right.off = off;
		e->len = off - e->off;
		next_add_locked(fs, i, e->dev, 1);
		memmove(&i->ext[k + 2], &i->ext[k + 1], (i->next - k - 1) * sizeof(*e));
		i->ext[k + 1] = right;
		i->next++;
		k++;
		first = k;
	}
	/* drop what lies wholly inside, trim the one straddling end */
	size_t j = k;
	while (j < i->next && i->ext[j].off < end) {
		struct px_ext *e = &i->ext[j];

		if (e->off + e->len <= end) {
			valid_add_locked(fs, e->dev, e->len, false);
			i->ext_bytes -= e->len;
			next_add_locked(fs, i, e->dev, -1);
			j++;
			continue;
		}
		valid_add_locked(fs, e->dev, end - e->off, false);
		i->ext_bytes -= end - e->off;
		e->dev = dev_at(e->dev, end - e->off);
		e->len -= end - e->off;
		e->off = end;
		break;
	}
	memmove(&i->ext[first], &i->ext[j], (i->next - j) * sizeof(*i->ext));
	i->next -= j - first;
	if (dev == PX_NO_DEV)
		return 0;
	/* insert, merging with a neighbour contiguous in the file and on the device */
	if (first > 0) {
		struct px_ext *p = &i->ext[first - 1];

		if (p->off + p->len == off && dev_at(p->dev, p->len) == dev &&
		    zone_of(fs, p->dev) == zone_of(fs, dev)) {
			p->len += len;
			p->dseq = p->dseq > dseq ? p->dseq : dseq;
			p->rseq = p->rseq > rseq ? p->rseq : rseq;
			valid_add_locked(fs, dev, len, true);
			i->ext_bytes += len;
			return 0;
		}
	}
	memmove(&i->ext[first + 1], &i->ext[first], (i->next - first) * sizeof(*i->ext));
	i->ext[first] = (struct px_ext){off, len, dev, dseq, rseq};
	i->next++;
	valid_add_locked(fs, dev, len, true);
	i->ext_bytes += len;
	next_add_locked(fs, i, dev, 1);
	return 0;
}

/* The extent holding off, or the index of the first after it (*hole). Caller holds ns. */
static size_t ext_find(struct px_inode *i, uint64_t off, bool *inside)
{
	size_t lo = 0, hi = i->next;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (i->ext[mid].off + i->ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*inside = lo < i->next && i->ext[lo].off <= off;
	return lo;
}

/*
 * Roll-forward: map [off, off+len) to dev only where what is mapped now is
 * older (dseq) or nothing; *set becomes true if any of it was. Caller holds
 * ns.
 */
static int ext_set_newer_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len,
				uint64_t dev, uint64_t dseq, bool *set)
{
	uint64_t pos = off, end = off + len;
	int ret = 0;

	while (pos < end && !ret) {
		bool in;
		size_t k = ext_find(i, pos, &in);
		uint64_t stop;

		if (in) {
			stop = i->ext[k].off + i->ext[k].len;
			if (stop > end)
				stop = end;
			if (i->ext[k].dseq < dseq) {
				ret = ext_set_locked(fs, i, pos, stop - pos, dev + (pos - off),
						     dseq, 0);
				*set = true;
			}
		} else {
			stop = k < i->next ? i->ext[k].off : end;
			if (stop > end)
				stop = end;
			ret = ext_set_locked(fs, i, pos, stop - pos, dev + (pos - off), dseq, 0);
			*set = true;
		}
		pos = stop;
	}
	return ret;
}

/*
 * ---- delayed allocations: the ranges ----
 *
 * A file's blocks that buffered writes dirtied where no extent maps or
 * reserves them (the section "delayed allocation" says why and when), as a
 * sorted array of disjoint ranges that do not touch. Each changes i->da_blk
 * and fs->da_blk with it.
 */

/* The first delayed allocation of i ending after off. Caller holds ns. */
static size_t da_find(const struct px_inode *i, uint64_t off)
{
	size_t lo = 0, hi = i->nda;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (i->da[mid].off + i->da[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int da_reserve(struct px_inode *i, size_t more)
{
	size_t cap = i->dacap ? i->dacap * 2 : 4;
	struct px_da *d;

	if (i->nda + more <= i->dacap)
		return 0;
	while (cap < i->nda + more)
		cap *= 2;
	d = realloc(i->da, cap * sizeof(*d));
	if (!d)
		return -ENOMEM;
	i->da = d;
	i->dacap = cap;
	return 0;
}

/*
 * Blocks of [off, end) (block multiples) that were promised room: delayed
 * allocations and fallocate's reservations. Caller holds ns.
 */
static uint64_t promised_blocks_locked(struct px_inode *i, uint64_t off, uint64_t end)
{
	uint64_t n = 0;
	bool in;

	for (size_t k = da_find(i, off); k < i->nda && i->da[k].off < end; k++) {
		uint64_t a = i->da[k].off > off ? i->da[k].off : off;
		uint64_t b = i->da[k].off + i->da[k].len < end ? i->da[k].off + i->da[k].len : end;

		n += (b - a) / PX_BLK;
	}
	for (size_t k = ext_find(i, off, &in); k < i->next && i->ext[k].off < end; k++) {
		const struct px_ext *e = &i->ext[k];
		uint64_t a = e->off > off ? e->off : off;
		uint64_t b = e->off + e->len < end ? e->off + e->len : end;

		if (e->dev == PX_UNWRITTEN)
			n += (b - a) / PX_BLK;
	}
	return n;
}

/*
 * Add [off, end) (block multiples, none of it held yet) to i's delayed
 * allocations. Caller holds ns. Returns 0 or -ENOMEM (nothing added).
 */
static int da_add_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t end)
{
	size_t k, j;
	uint64_t lo = off, hi = end;

	ff_assert_held(&fs->ns);
	if (da_reserve(i, 1))
		return -ENOMEM;
	k = da_find(i, off);
	if (k > 0 && i->da[k - 1].off + i->da[k - 1].len == off)
		k--;
	/* the neighbours it touches merge with it */
	for (j = k; j < i->nda && i->da[j].off <= end; j++) {
		if (i->da[j].off < lo)
			lo = i->da[j].off;
		if (i->da[j].off + i->da[j].len > hi)
			hi = i->da[j].off + i->da[j].len;
	}
	if (j == k)
		memmove(&i->da[k + 1], &i->da[k], (i->nda - k) * sizeof(*i->da));
	else
		memmove(&i->da[k + 1], &i->da[j], (i->nda - j) * sizeof(*i->da));
	i->nda = i->nda + 1 - (j - k);
	i->da[k] = (struct px_da){lo, hi - lo};
	i->da_blk += (end - off) / PX_BLK;
	fs->da_blk += (end - off) / PX_BLK;
	return 0;
}

/*
 * Drop [off, end) (block multiples) from i's delayed allocations: an extent
 * maps the blocks now, or their cached data is gone. Caller holds ns.
 */
static void da_del_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t end)
{
	size_t k = da_find(i, off), j;
	uint64_t n = 0;

	ff_assert_held(&fs->ns);
	if (k >= i->nda || i->da[k].off >= end)
		return;
	if (i->da[k].off < off && i->da[k].off + i->da[k].len > end) {
		/* a hole in the middle of one */
		if (da_reserve(i, 1)) {
			/* kept whole: room held too long is safe, room given away is not */
			ff_err("posix: inode %llu: no memory to split a delayed allocation",
			       (unsigned long long)i->ino);
			return;
		}
		memmove(&i->da[k + 2], &i->da[k + 1], (i->nda - k - 1) * sizeof(*i->da));
		i->da[k + 1] = (struct px_da){end, i->da[k].off + i->da[k].len - end};
		i->da[k].len = off - i->da[k].off;
		i->nda++;
		n = (end - off) / PX_BLK;
		goto out;
	}
	if (i->da[k].off < off) {
		n += (i->da[k].off + i->da[k].len - off) / PX_BLK;
		i->da[k].len = off - i->da[k].off;
		k++;
	}
	for (j = k; j < i->nda && i->da[j].off + i->da[j].len <= end; j++)
		n += i->da[j].len / PX_BLK;
	if (j < i->nda && i->da[j].off < end) {
		n += (end - i->da[j].off) / PX_BLK;
		i->da[j].len -= end - i->da[j].off;
		i->da[j].off = end;
	}
	memmove(&i->da[k], &i->da[j], (i->nda - j) * sizeof(*i->da));
	i->nda -= j - k;
out:
	i->da_blk -= n;
	fs->da_blk -= n;
}

/* ---- inodes ---- */

static struct px_inode *inode_new_locked(struct px_fs *fs, uint64_t ino, uint32_t mode)
{
	struct px_inode *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->fs = fs;
	i->ino = ino;
	i->mode = mode;
	i->tail_ok = fs->live;
	ff_mutex_init(&i->io_lock);
	if (S_ISDIR(mode)) {
		i->dir = calloc(1, sizeof(*i->dir));
		if (!i->dir)
			goto fail;
		i->dir->next_cookie = 1;
		i->dir->parent = ino;
	}
	if (itab_insert_locked(fs, i))
		goto fail;
	if (ino >= fs->next_ino)
		fs->next_ino = ino + 1;
	return i;
fail:
	free(i->dir);
	ff_mutex_destroy(&i->io_lock);
	free(i);
	return NULL;
}

static void xattrs_free(struct px_xattr *x)
{
	while (x) {
		struct px_xattr *n = x->next;

		free(x->name);
		free(x->val);
		free(x);
		x = n;
	}
}

/*
 * Remove an inode: its extents stop counting, it leaves the table and goes on
 * fs->dead; its cache inode and memory are freed by reap() once ns is dropped.
 */
static void inode_remove_locked(struct px_fs *fs, struct px_inode *i)
{
	for (size_t k = 0; k < i->next; k++) {
		uint32_t z = zone_of(fs, i->ext[k].dev);

		valid_add_locked(fs, i->ext[k].dev, i->ext[k].len, false);
		next_add_locked(fs, i, i->ext[k].dev, -1);
		if (z < fs->nr_zones)
			own_trim_locked(&fs->zones[z]);
	}
	i->next = 0;
	i->ext_bytes = 0;
	/* its cached data goes nowhere now (map_write answers STORED) */
	fs->da_blk -= i->da_blk;
	i->da_blk = 0;
	i->nda = 0;
	itab_remove_locked(fs, i);
	i->freed = true;
	i->dead_next = fs->dead;
	fs->dead = i;
}

static void inode_free_mem(struct px_inode *i)
{
	dir_free(i->dir);
	free(i->ext);
	free(i->da);
	free(i->target);
	xattrs_free(i->xattrs);
	ff_mutex_destroy(&i->io_lock);
	free(i);
}

static int log_commit_all(struct px_fs *fs);
static bool data_zone(const struct px_zone *z);

/* Queued records past this are committed by the operation that queued them. */
#define PX_PEND_MAX (1u << 20)

/*
 * After an operation, with no lock held: free what inode_remove_locked set
 * aside, and commit the log when many records wait (nobody may fsync).
 */
static void log_maybe_commit(struct px_fs *fs)
{
	bool big;

	ff_mutex_lock(&fs->log);
	big = fs->pend.len > PX_PEND_MAX && !fs->ro;
	ff_mutex_unlock(&fs->log);
	if (big)
		(void)log_commit_all(fs);
}

static void reap(struct px_fs *fs)
{
	struct px_inode *list;

	log_maybe_commit(fs);

	ff_mutex_lock(&fs->ns);
	list = fs->dead;
	fs->dead = NULL;
	/* an inode garbage collection works on stays until it lets go (gc_unpin) */
	for (struct px_inode **pp = &list; *pp;) {
		struct px_inode *i = *pp;

		if (i->gc_pins) {
			*pp = i->dead_next;
			i->dead_next = fs->dead;
			fs->dead = i;
		} else {
			pp = &i->dead_next;
		}
	}
	ff_mutex_unlock(&fs->ns);
	while (list) {
		struct px_inode *n = list->dead_next;

		if (list->ci) {
			ff_cache_invalidate_begin(list->ci);
			ff_cache_truncate(list->ci, 0);
			ff_cache_invalidate_end(list->ci);
			ff_cache_inode_free(list->ci);
		}
		inode_free_mem(list);
		list = n;
	}
}

static struct px_xattr *xattr_find(struct px_inode *i, const char *name, struct px_xattr ***pp)
{
	struct px_xattr **p = &i->xattrs;

	for (; *p; p = &(*p)->next) {
		if (!strcmp((*p)->name, name)) {
			if (pp)
				*pp = p;
			return *p;
		}
	}
	return NULL;
}

/* ---- records ---- */

#define PX_INODE_TRUNC 1u /* INODE flags: the size is cut here (extents beyond dropped) */

static size_t rec_begin(struct px_buf *b, uint16_t type)
{
	size_t at = b->len;
	uint8_t z[PX_REC_HDR] = {0};

	put_bytes(b, z, sizeof(z));
	if (!b->err)
		b->p[at] = (uint8_t)type, b->p[at + 1] = (uint8_t)(type >> 8);
	return at;
}

static void rec_end(struct px_buf *b, size_t at)
{
	static const uint8_t z[8];

	if (b->err)
		return;
	set32(b->p + at + 4, (uint32_t)(b->len - at - PX_REC_HDR));
	put_bytes(b, z, (8 - b->len % 8) % 8);
}

/* An INODE record of i (a field added here goes into inode_rec_copy too). */
static void rec_inode(struct px_buf *b, const struct px_inode *i, uint64_t size, uint32_t flags)
{
	size_t at = rec_begin(b, PX_R_INODE);

	put64(b, i->ino);
	put32(b, i->mode);
	put32(b, i->uid);
	put32(b, i->gid);
	put32(b, i->nlink);
	put32(b, flags);
	put32(b, 0);
	put64(b, size);
	put64(b, i->rdev);
	put64(b, i->dseq_floor);
	put_ts(b, &i->atime);
	put_ts(b, &i->mtime);
	put_ts(b, &i->ctime);
	put_ts(b, &i->btime);
	put32(b, i->tlen);
	put_bytes(b, i->target, i->tlen);
	rec_end(b, at);
}

/*
 * The fields of i that rec_inode writes, into t: a record that changes some
 * of them is built from such a copy. Not a copy of the whole inode, whose
 * io_lock another thread (a writer, the collector) may be taking meanwhile.
 */
static void inode_rec_copy(struct px_inode *t, const struct px_inode *i)
{
	t->ino = i->ino;
	t->mode = i->mode;
	t->uid = i->uid;
	t->gid = i->gid;
	t->nlink = i->nlink;
	t->rdev = i->rdev;
	t->dseq_floor = i->dseq_floor;
	t->atime = i->atime;
	t->mtime = i->mtime;
	t->ctime = i->ctime;
	t->btime = i->btime;
	t->target = i->target;
	t->tlen = i->tlen;
}

static void rec_dirent_add(struct px_buf *b, uint64_t dir, uint64_t ino, uint64_t cookie,
			   const char *name, size_t n)
{
	size_t at = rec_begin(b, PX_R_DIRENT_ADD);

	put64(b, dir);
	put64(b, ino);
	put64(b, cookie);
	put16(b, (uint16_t)n);
	put_bytes(b, name, n);
	rec_end(b, at);
}

static void rec_dirent_del(struct px_buf *b, uint64_t dir, const char *name, size_t n)
{
	size_t at = rec_begin(b, PX_R_DIRENT_DEL);

	put64(b, dir);
	put16(b, (uint16_t)n);
	put_bytes(b, name, n);
	rec_end(b, at);
}

static void rec_extent(struct px_buf *b, uint64_t ino, uint64_t off, uint64_t len, uint64_t dev,
		       uint64_t dseq, uint64_t size)
{
	size_t at = rec_begin(b, PX_R_EXTENT);

	put64(b, ino);
	put64(b, off);
	put64(b, len);
	put64(b, dev);
	put64(b, dseq);
	put64(b, size);
	rec_end(b, at);
}

/* EXTRUN: the n EXTENT records of a run (log_compact) */
static void rec_extrun(struct px_buf *b, uint64_t ino, uint64_t off, uint64_t len, uint64_t dev,
		       uint64_t stride, uint64_t dseq, uint64_t size, uint32_t n)
{
	size_t at = rec_begin(b, PX_R_EXTRUN);

	put64(b, ino);
	put64(b, off);
	put64(b, len);
	put64(b, dev);
	put64(b, stride);
	put64(b, dseq);
	put64(b, size);
	put32(b, n);
	put32(b, 0);
	rec_end(b, at);
}

/*
 * A record's header, once its seq is known: flags (CONT when more records of
 * its operation follow), seq and crc.
 */
static void rec_seal(uint8_t *h, uint64_t seq, bool cont)
{
	h[2] = cont ? PX_REC_CONT : 0;
	h[3] = 0;
	set64(h + 8, seq);
	set32(h + 16, 0);
	set32(h + 16, ff_crc32c(0, h, PX_REC_HDR + get32(h + 4)));
}

/*
 * A checkpoint's list of an inode's extents, from ext[0] on, n of them
 * (at most PX_XS_PER_REC): 28 bytes an extent where EXTENT takes 72, for
 * files that random overwrites broke into many.
 */
static void rec_extents(struct px_buf *b, uint64_t ino, const struct px_ext *ext, size_t n)
{
	size_t at = rec_begin(b, PX_R_EXTENTS);

	put64(b, ino);
	put32(b, (uint32_t)n);
	put32(b, 0);
	for (size_t k = 0; k < n; k++) {
		put64(b, ext[k].off);
		put32(b, (uint32_t)(ext[k].len / PX_BLK));
		put64(b, ext[k].dev);
		put64(b, ext[k].dseq);
	}
	rec_end(b, at);
}

static void rec_xattr_set(struct px_buf *b, uint64_t ino, const char *name, const void *val,
			  uint32_t vlen)
{
	size_t at = rec_begin(b, PX_R_XATTR_SET);
	size_t n = strlen(name);

	put64(b, ino);
	put16(b, (uint16_t)n);
	put32(b, vlen);
	put_bytes(b, name, n);
	put_bytes(b, val, vlen);
	rec_end(b, at);
}

static void rec_xattr_del(struct px_buf *b, uint64_t ino, const char *name)
{
	size_t at = rec_begin(b, PX_R_XATTR_DEL);
	size_t n = strlen(name);

	put64(b, ino);
	put16(b, (uint16_t)n);
	put_bytes(b, name, n);
	rec_end(b, at);
}

static void rec_ifree(struct px_buf *b, uint64_t ino)
{
	size_t at = rec_begin(b, PX_R_IFREE);

	put64(b, ino);
	rec_end(b, at);
}

/* A ZONE record's bytes: every checkpoint holds one per data zone (geometry_ok) */
#define PX_ZONE_REC (PX_REC_HDR + 32u)

static void rec_zone(struct px_buf *b, uint32_t z, const struct px_zone *zo, uint64_t cursor)
{
	size_t at = rec_begin(b, PX_R_ZONE);

	put32(b, z);
	put32(b, zo->state);
	put64(b, zo->epoch);
	put64(b, cursor);
	put64(b, zo->valid);
	rec_end(b, at);
}

/* An EXTENT or EXTRUN record's size: the file is at least that long once its extents are in. */
static void ext_size_locked(struct px_inode *i, uint64_t size)
{
	if (size > i->disk_size)
		i->disk_size = size;
	if (size > i->size)
		i->size = size;
}

/*
 * An extent of an EXTENT or EXTENTS record with log seq seq: -EUCLEAN when
 * it cannot be one, else ext_set_locked's result (the data sequence moves
 * past dseq either way). Caller holds ns.
 */
static int apply_ext_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t elen,
			    uint64_t dev, uint64_t dseq, uint64_t seq)
{
	int ret;

	if (off % PX_BLK || elen % PX_BLK ||
	    (dev != PX_NO_DEV && dev != PX_UNWRITTEN &&
	     (dev % PX_BLK || zone_of(fs, dev) >= fs->nr_zones)))
		return -EUCLEAN;
	/* a reservation is made by fallocate only, within a file's limit */
	if (dev == PX_UNWRITTEN && (elen > PX_MAX_FILE || off > PX_MAX_FILE - elen))
		return -EUCLEAN;
	ret = ext_set_locked(fs, i, off, elen, dev, dseq, seq);
	if (dseq >= fs->next_dseq)
		fs->next_dseq = dseq + 1;
	return ret;
}

/*
 * Apply one record to memory: the only place state changes, live and at
 * replay. *ino_out gets the inode the record concerns (0: none). Caller holds
 * ns. Returns 0, -ENOMEM, or -EUCLEAN for a record that does not fit the
 * state (a corrupt log).
 */
static int apply_rec(struct px_fs *fs, uint16_t type, const uint8_t *p, size_t len, uint64_t seq,
		     uint64_t *ino_out)
{
	struct px_rd r = {p, len, 0, false};
	struct px_inode *i, *d;
	int ret = 0;

	ff_assert_held(&fs->ns);
	*ino_out = 0;
	switch (type) {
	case PX_R_CP_BEGIN: {
		rd64(&r);
		uint64_t ni = rd64(&r), nd = rd64(&r);

		if (ni > fs->next_ino)
			fs->next_ino = ni;
		if (nd > fs->next_dseq)
			fs->next_dseq = nd;
		break;
	}
	case PX_R_CP_END:
		break;
	case PX_R_INODE: {
		uint64_t ino = rd64(&r);
		uint32_t mode = rd32(&r), uid = rd32(&r), gid = rd32(&r), nlink = rd32(&r);
		uint32_t flags = rd32(&r);
		rd32(&r);
		uint64_t size = rd64(&r), rdev = rd64(&r), floor = rd64(&r);
		struct timespec at = rd_ts(&r), mt = rd_ts(&r), ct = rd_ts(&r), bt = rd_ts(&r);
		uint32_t tlen = rd32(&r);
		const uint8_t *t = rd_take(&r, tlen);

		if (r.bad || !ino || tlen > PX_SYMLINK_MAX)
			return -EUCLEAN;
		i = iget_locked(fs, ino);
		if (i && (i->mode & S_IFMT) != (mode & S_IFMT))
			return -EUCLEAN;
		if (!i && !(i = inode_new_locked(fs, ino, mode)))
			return -ENOMEM;
		if (tlen && !i->target) {
			i->target = malloc(tlen);
			if (!i->target)
				return -ENOMEM;
			memcpy(i->target, t, tlen);
			i->tlen = tlen;
		}
		i->mode = mode;
		i->uid = uid;
		i->gid = gid;
		i->nlink = nlink;
		i->rdev = rdev;
		i->dseq_floor = floor;
		i->atime = at;
		i->mtime = mt;
		i->ctime = ct;
		i->btime = bt;
		if (flags & PX_INODE_TRUNC) {
			ret = ext_set_locked(fs, i, ff_round_up(size, PX_BLK), UINT64_MAX / 2,
					     PX_NO_DEV, 0, 0);
			i->size = i->disk_size = size;
		} else {
			i->disk_size = size;
			if (size > i->size)
				i->size = size;
		}
		*ino_out = ino;
		break;
	}
	case PX_R_DIRENT_ADD: {
		uint64_t dir = rd64(&r), ino = rd64(&r), cookie = rd64(&r);
		uint16_t n = rd16(&r);
		const char *name = (const char *)rd_take(&r, n);

		if (r.bad || !n || n > PX_NAME_MAX || !(d = iget_locked(fs, dir)) || !d->dir ||
		    dir_find(d->dir, name, n))
			return -EUCLEAN;
		ret = dir_add(d->dir, name, n, ino, cookie);
		i = iget_locked(fs, ino);
		if (i && i->dir)
			i->dir->parent = dir;
		*ino_out = ino;
		break;
	}
	case PX_R_DIRENT_DEL: {
		uint64_t dir = rd64(&r);
		uint16_t n = rd16(&r);
		const char *name = (const char *)rd_take(&r, n);
		struct px_dent *e;

		if (r.bad || !(d = iget_locked(fs, dir)) || !d->dir ||
		    !(e = dir_find(d->dir, name, n)))
			return -EUCLEAN;
		dir_del(d->dir, e);
		break;
	}
	case PX_R_EXTENT: {
		uint64_t ino = rd64(&r), off = rd64(&r), elen = rd64(&r), dev = rd64(&r);
		uint64_t dseq = rd64(&r), size = rd64(&r);

		if (r.bad || !(i = iget_locked(fs, ino)))
			return -EUCLEAN;
		ret = apply_ext_locked(fs, i, off, elen, dev, dseq, seq);
		if (ret == -EUCLEAN)
			return ret;
		ext_size_locked(i, size);
		*ino_out = ino;
		break;
	}
	case PX_R_EXTENTS: {
		uint64_t ino = rd64(&r);
		uint32_t n = rd32(&r);

		rd32(&r);
		if (r.bad || !(fs->features & PX_FEAT_MZCHAIN) || !n || n > PX_XS_PER_REC ||
		    len != PX_XS_HDR + (size_t)n * PX_XS_ENTRY || !(i = iget_locked(fs, ino)))
			return -EUCLEAN;
		for (uint32_t k = 0; k < n && !ret; k++) {
			uint64_t off = rd64(&r), elen = (uint64_t)rd32(&r) * PX_BLK, dev = rd64(&r);
			uint64_t dseq = rd64(&r);

			/* as EXTENT's, without holes: a checkpoint lists what is mapped */
			if (!elen || dev == PX_NO_DEV)
				return -EUCLEAN;
			ret = apply_ext_locked(fs, i, off, elen, dev, dseq, seq);
			if (ret == -EUCLEAN)
				return ret;
		}
		*ino_out = ino;
		break;
	}
	case PX_R_EXTRUN: {
		uint64_t ino = rd64(&r), off = rd64(&r), elen = rd64(&r), dev = rd64(&r);
		uint64_t stride = rd64(&r), dseq = rd64(&r), size = rd64(&r);
		uint32_t n = rd32(&r);

		rd32(&r);
		if (r.bad || !(fs->features & PX_FEAT_EXTRUN) || len != PX_RUN_LEN || !n ||
		    n > PX_RUN_MAX || !elen || elen > PX_MAX_FILE / n ||
		    off > PX_MAX_FILE - n * elen || stride < elen || stride > PX_MAX_FILE / n ||
		    dev >= PX_MAX_FILE || dseq > UINT64_MAX - n || !(i = iget_locked(fs, ino)))
			return -EUCLEAN;
		/* as its EXTENT records would be, one after the other */
		for (uint32_t k = 0; k < n; k++) {
			ret = apply_ext_locked(fs, i, off + k * elen, elen, dev + k * stride,
					       dseq + k, seq + k);
			if (ret)
				return ret;
		}
		ext_size_locked(i, size);
		*ino_out = ino;
		break;
	}
	case PX_R_XATTR_SET: {
		uint64_t ino = rd64(&r);
		uint16_t n = rd16(&r);
		uint32_t vlen = rd32(&r);
		const uint8_t *name = rd_take(&r, n), *val = rd_take(&r, vlen);
		struct px_xattr *x;
		char nm[PX_XNAME_MAX + 1];
		void *v;

		if (r.bad || !n || n > PX_XNAME_MAX || vlen > PX_XVAL_MAX ||
		    !(i = iget_locked(fs, ino)))
			return -EUCLEAN;
		memcpy(nm, name, n);
		nm[n] = 0;
		v = malloc(vlen ? vlen : 1);
		if (!v)
			return -ENOMEM;
		memcpy(v, val, vlen);
		x = xattr_find(i, nm, NULL);
		if (!x) {
			x = calloc(1, sizeof(*x));
			if (!x || !(x->name = strdup(nm))) {
				free(x);
				free(v);
				return -ENOMEM;
			}
			x->next = i->xattrs;
			i->xattrs = x;
		}
		free(x->val);
		x->val = v;
		x->vlen = vlen;
		*ino_out = ino;
		break;
	}
	case PX_R_XATTR_DEL: {
		uint64_t ino = rd64(&r);
		uint16_t n = rd16(&r);
		const uint8_t *name = rd_take(&r, n);
		struct px_xattr *x, **pp;
		char nm[PX_XNAME_MAX + 1];

		if (r.bad || !n || n > PX_XNAME_MAX || !(i = iget_locked(fs, ino)))
			return -EUCLEAN;
		memcpy(nm, name, n);
		nm[n] = 0;
		x = xattr_find(i, nm, &pp);
		if (!x)
			return -EUCLEAN;
		*pp = x->next;
		x->next = NULL;
		xattrs_free(x);
		*ino_out = ino;
		break;
	}
	case PX_R_IFREE: {
		uint64_t ino = rd64(&r);

		if (r.bad || !(i = iget_locked(fs, ino)) || ino == PX_ROOT_INO)
			return -EUCLEAN;
		inode_remove_locked(fs, i);
		break;
	}
	case PX_R_ZONE: {
		uint32_t z = rd32(&r), st = rd32(&r);
		uint64_t epoch = rd64(&r), cursor = rd64(&r);

		rd64(&r);
		/*
		 * Only data zones have ZONE records, and never the roles the
		 * geometry gives (superblock, metadata): a record that made a
		 * metadata zone an open data zone would have data written over
		 * the log.
		 */
		if (r.bad || z >= fs->nr_zones || st >= PX_Z_META || !data_zone(&fs->zones[z]) ||
		    cursor < fs->zones[z].start || cursor > fs->zones[z].start + fs->zones[z].cap)
			return -EUCLEAN;
		fs->zones[z].state = st;
		gc_progress(fs); /* a zone given up may be a victim now */
		fs->zones[z].epoch = epoch;
		fs->zones[z].cursor = cursor;
		fs->zones[z].wp = cursor;
		own_trim_locked(&fs->zones[z]);
		zone_changed_locked(fs, &fs->zones[z]);
		break;
	}
	default:
		return -EUCLEAN;
	}
	if (r.bad)
		return -EUCLEAN;
	return ret;
}

/*
 * Apply an operation's records (built in b) to memory and queue them for the
 * log as one group (CONT on all but the last). Caller holds ns. Returns the
 * seq of the last record, or -errno (as a negative value cast) — *seq_out gets it.
 */
static int op_commit_locked(struct px_fs *fs, struct px_buf *b, uint64_t *seq_out)
{
	size_t pos = 0;
	uint64_t seq;
	int ret = 0;

	ff_assert_held(&fs->ns);
	if (b->err)
		return b->err;
	ff_mutex_lock(&fs->log);
	seq = fs->next_seq;
	ff_mutex_unlock(&fs->log);
	/* apply first: a failure (memory) leaves nothing queued */
	while (pos < b->len) {
		uint8_t *h = b->p + pos;
		uint32_t len = get32(h + 4);
		uint64_t ino;

		ret = apply_rec(fs, get16(h), h + PX_REC_HDR, len, seq, &ino);
		if (ret) {
			ff_err("posix: applying record type %u failed: %s", get16(h),
			       strerror(-ret));
			return ret;
		}
		if (ino) {
			struct px_inode *i = iget_locked(fs, ino);

			if (i)
				i->last_rseq = seq;
			if (i && (get16(h) == PX_R_INODE || get16(h) == PX_R_DIRENT_ADD))
				i->meta_rseq = seq;
		}
		seq++;
		pos += ff_round_up(PX_REC_HDR + len, 8);
	}
	ff_mutex_lock(&fs->log);
	pos = 0;
	while (pos < b->len) {
		uint8_t *h = b->p + pos;
		uint32_t len = get32(h + 4);
		size_t rl = ff_round_up(PX_REC_HDR + len, 8);

		rec_seal(h, fs->next_seq++, pos + rl < b->len);
		pos += rl;
	}
	put_bytes(&fs->pend, b->p, b->len);
	ret = fs->pend.err;
	*seq_out = fs->next_seq - 1;
	ff_mutex_unlock(&fs->log);
	fs->meta_est += b->len;
	fs->meta_since += b->len;
	return ret;
}

/* ---- the log: group commit, checkpoints ---- */

static int write_meta(struct px_fs *fs, uint32_t z, const struct px_buf *b, uint64_t off)
{
	size_t n = ff_round_up(b->len, PX_BLK);
	void *blk = NULL;
	ssize_t r;

	if (posix_memalign(&blk, PX_BLK, n))
		return -ENOMEM;
	memcpy(blk, b->p, b->len);
	memset((uint8_t *)blk + b->len, 0, n - b->len);
	struct iovec iov = {blk, n};
	r = ff_zoneq_write_at(fs->dev, z, &iov, 1, off, FF_IO_DSYNC | FF_IO_PREFLUSH);
	free(blk);
	atomic_fetch_add(&fs->st_log_writes, 1);
	atomic_fetch_add(&fs->st_log_bytes, n);
	return r == (ssize_t)n ? 0 : r < 0 ? (int)r : -EIO;
}

/* Give the records of the checkpoint buffer b from byte from on their seqs and crcs. */
static void seal_records(struct px_buf *b, size_t from, uint64_t *seq)
{
	size_t pos = from;

	while (pos < b->len) {
		uint8_t *h = b->p + pos;
		rec_seal(h, (*seq)++, false);
		pos += ff_round_up(PX_REC_HDR + get32(h + 4), 8);
	}
}

/* A metadata zone's header block (docs/posix-format.md section 3). */
static void mz_head_encode(struct px_fs *fs, uint8_t *blk, uint64_t gen, uint64_t first_seq,
			   uint32_t part)
{
	memset(blk, 0, PX_BLK);
	memcpy(blk, PX_MZ_MAGIC, 8);
	set32(blk + PX_MZ_VERSION, PX_VERSION);
	set64(blk + PX_MZ_GEN, gen);
	set64(blk + PX_MZ_FIRST_SEQ, first_seq);
	memcpy(blk + PX_MZ_UUID, fs->uuid, 16);
	set32(blk + PX_MZ_PART, part);
	set32(blk + PX_MZ_CRC, ff_crc32c(0, blk, PX_BLK));
}

/*
 * Split the sealed checkpoint in b (records from PX_BLK on) into the parts
 * that the metadata zones after the log's take: part k's records are
 * [starts[k], starts[k + 1]) of b, starts[nparts] = b->len. A record never
 * straddles two zones. -ENOSPC when more than max parts are needed.
 */
static int cp_split(struct px_fs *fs, const struct px_buf *b, uint32_t max, size_t *starts,
		    uint32_t *nparts)
{
	uint32_t k = 0, idx = (fs->log_idx + 1) % fs->meta_count;
	uint64_t room = fs->zones[fs->meta_first + idx].cap - PX_BLK, used = 0;
	size_t pos = PX_BLK;

	starts[0] = PX_BLK;
	while (pos < b->len) {
		size_t rl = ff_round_up(PX_REC_HDR + get32(b->p + pos + 4), 8);

		if (used + rl > room) {
			if (++k == max)
				return -ENOSPC;
			idx = (idx + 1) % fs->meta_count;
			room = fs->zones[fs->meta_first + idx].cap - PX_BLK;
			used = 0;
			starts[k] = pos;
			if (rl > room)
				return -ENOSPC;
		}
		used += rl;
		pos += rl;
	}
	starts[k + 1] = b->len;
	*nparts = k + 1;
	return 0;
}

/* A checkpoint's first record (generation gen) and its last (closing nrec records). */
static void rec_cp_begin(struct px_buf *b, const struct px_fs *fs, uint64_t gen)
{
	size_t at = rec_begin(b, PX_R_CP_BEGIN);

	put64(b, gen);
	put64(b, fs->next_ino);
	put64(b, fs->next_dseq);
	put32(b, fs->nr_zones);
	put32(b, 0);
	rec_end(b, at);
}

static void rec_cp_end(struct px_buf *b, uint64_t nrec)
{
	size_t at = rec_begin(b, PX_R_CP_END);

	put64(b, nrec);
	rec_end(b, at);
}

/* A measuring cp_emit_locked's scratch buffer: counted, and emptied when it has grown. */
static void cp_drain(struct px_buf *b, bool measure, uint64_t *total, size_t *from)
{
	if (measure && b->len >= (1u << 16)) {
		*total += b->len - *from;
		b->len = *from = 0;
	}
}

/*
 * The records of a checkpoint of the whole state, after its CP_BEGIN: every
 * data zone's, every inode's, every name's, extent's and xattr's. With
 * measure, nothing is changed and b is a scratch buffer, emptied as it
 * fills: the return is the bytes the records take. Caller holds ns.
 */
static uint64_t cp_emit_locked(struct px_fs *fs, struct px_buf *b, uint64_t first, bool measure)
{
	uint64_t total = 0;
	size_t from = b->len;

	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *d = &fs->zones[k];

		if (d->state == PX_Z_META || d->state == PX_Z_SUPER)
			continue;
		if (!d->inflight && !measure)
			d->cursor = d->wp;
		rec_zone(b, k, d, d->inflight ? d->cursor : d->wp);
		cp_drain(b, measure, &total, &from);
	}
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext) {
			rec_inode(b, i, i->disk_size, 0);
			cp_drain(b, measure, &total, &from);
		}
	for (size_t h = 0; h < fs->icap; h++) {
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext) {
			if (i->dir)
				for (size_t k = 0; k < i->dir->n; k++) {
					struct px_dent *e = i->dir->ents[k];

					if (!e->dead)
						rec_dirent_add(b, i->ino, e->ino, e->cookie,
							       e->name, e->nlen);
					cp_drain(b, measure, &total, &from);
				}
			/* known from a header only: committed with this checkpoint */
			for (size_t k = 0; k < i->next && !measure; k++)
				if (!i->ext[k].rseq)
					i->ext[k].rseq = first;
			for (size_t k = 0, n; k < i->next; k += n) {
				/* EXTENTS counts blocks in 32 bits; a longer extent: EXTENT */
				for (n = 0;
				     (fs->features & PX_FEAT_MZCHAIN) && k + n < i->next &&
				     n < PX_XS_PER_REC && i->ext[k + n].len / PX_BLK <= UINT32_MAX;
				     n++)
					;
				if (n) {
					rec_extents(b, i->ino, i->ext + k, n);
				} else {
					rec_extent(b, i->ino, i->ext[k].off, i->ext[k].len,
						   i->ext[k].dev, i->ext[k].dseq, 0);
					n = 1;
				}
				cp_drain(b, measure, &total, &from);
			}
			for (struct px_xattr *x = i->xattrs; x; x = x->next) {
				rec_xattr_set(b, i->ino, x->name, x->val, x->vlen);
				cp_drain(b, measure, &total, &from);
			}
		}
	}
	return total + b->len - from;
}

/*
 * What a checkpoint of the state would take now, its CP_BEGIN and CP_END and
 * the zone header of each part included. Caller holds ns.
 */
static uint64_t cp_measure_locked(struct px_fs *fs)
{
	struct px_buf t = {0};
	uint64_t n;

	rec_cp_begin(&t, fs, 0);
	rec_cp_end(&t, 0);
	n = PX_BLK + t.len; /* the zone header, CP_BEGIN and CP_END */
	t.len = 0;
	n += cp_emit_locked(fs, &t, 0, true);
	free(t.p);
	return n;
}

/*
 * The bytes a checkpoint may take and still leave the filesystem working:
 * it goes into the metadata zones the current one does not hold, so in
 * steady state half of them (one without MZCHAIN), less what a record that
 * would straddle two zones leaves at each zone's end, less a quarter of a
 * zone that the log keeps after the checkpoint's last part (a fuller last
 * part would take a checkpoint every few commits).
 */
static uint64_t cp_room_of(uint64_t cap, uint32_t meta_count, uint64_t features)
{
	uint64_t part = cap > 2 * (PX_BLK + PX_XREC_MAX) ? cap - PX_BLK - PX_XREC_MAX : cap / 2;
	uint32_t n = (features & PX_FEAT_MZCHAIN) ? meta_count / 2 : 1;

	return (n ? n : 1) * part - cap / 4;
}

static uint64_t cp_room(const struct px_fs *fs)
{
	return cp_room_of(fs->zones[fs->meta_first].cap, fs->meta_count, fs->features);
}

/*
 * The next checkpoint's bytes: the estimate, measured again (a walk of the
 * state, no I/O) once enough has been committed since the last measurement
 * to be worth it (1/64 of the room). The estimate counts every record since,
 * those that free something too. Caller holds ns.
 */
static uint64_t meta_now_locked(struct px_fs *fs)
{
	if (fs->meta_since > cp_room(fs) / 64) {
		fs->meta_est = cp_measure_locked(fs);
		fs->meta_since = 0;
	}
	return fs->meta_est;
}

/*
 * How full the metadata may get, in eighths of cp_room, and what happens
 * there. Names (inodes, links, xattrs) stop first, at 7/8, so that the
 * files there are can still be written: a file's data adds extents. Above
 * 1/2, a file that gets extents out of place is queued for defragmentation
 * (meta_note_locked) on any device, sequential zones included, where every
 * overwrite is an extent of its own; above 3/4 writers wait for those
 * passes (meta_throttle); above the room, a write that would not go in
 * place, and fallocate, get ENOSPC rather than a checkpoint that would not
 * fit. Write-back is never refused: it goes on into the quarter zone that
 * cp_room keeps back.
 */
#define PX_META_PRESS 4u
#define PX_META_WAIT  6u
#define PX_META_NAMES 7u
#define PX_META_FULL  8u

/*
 * Room for a change that adds need bytes of records to the next checkpoint
 * of names: 0, or -ENOSPC when that checkpoint would pass PX_META_NAMES.
 * Caller holds ns.
 */
static int meta_room_locked(struct px_fs *fs, size_t need)
{
	uint64_t room = cp_room(fs) / 8 * PX_META_NAMES;

	if (fs->meta_est + need <= room)
		return 0;
	return meta_now_locked(fs) + need <= room ? 0 : -ENOSPC;
}

/*
 * Whether the next checkpoint is past eighths/8 of the room. PX_META_PRESS
 * is lim_press bytes instead when that is set (FOLIOFS_META_PRESS, a test
 * knob: the model checkers make files of a few hundred extents, which no
 * real room would press). Caller holds ns.
 */
static bool meta_above_locked(struct px_fs *fs, uint32_t eighths)
{
	uint64_t lim = eighths == PX_META_PRESS && fs->lim_press ? fs->lim_press
								 : cp_room(fs) / 8 * eighths;

	return fs->meta_est > lim && meta_now_locked(fs) > lim;
}

/*
 * Write a checkpoint of the whole state into the metadata zones after the
 * log's and make the last of them the log's zone. Called by the commit
 * leader (or mount/unmount, alone) with no lock held. Queued records are
 * covered by the snapshot and dropped.
 *
 * A checkpoint longer than a zone goes on in the next zones (PX_FEAT_MZCHAIN),
 * each with a header of the same generation and its part number, each made
 * durable before the next is written. It may take every metadata zone but
 * those of the checkpoint and log it replaces, which must stay whole until
 * the new one is: a crash in between mounts the old one.
 */
static int checkpoint(struct px_fs *fs)
{
	uint32_t M = fs->meta_count, idx = (fs->log_idx + 1) % M;
	uint32_t old = fs->meta_first + fs->log_idx;
	uint32_t cur = (fs->log_idx + M - fs->cp_idx) % M + 1; /* zones of the current one */
	uint32_t max = (fs->features & PX_FEAT_MZCHAIN) ? M - cur : 1, nparts = 0;
	size_t starts[PX_META_MAX + 1];
	struct px_buf b = {0};
	uint64_t first, seq, nrec = 0, gen;
	int ret;

	if (!max)
		max = 1;
	/*
	 * Finish the old zone first (its data stays readable): the new one
	 * then never needs an open or active zone more than the log had.
	 */
	if (old != fs->meta_first + idx && fs->zones[old].seq &&
	    ff_zoneq_wp(fs->dev, old) != fs->zones[old].start)
		(void)ff_zoneq_zone_op(fs->dev, old, FF_ZOP_FINISH);
	buf_need(&b, PX_BLK);
	if (b.err)
		return b.err;
	memset(b.p, 0, PX_BLK);
	b.len = PX_BLK;
	ff_mutex_lock(&fs->ns);
	ff_mutex_lock(&fs->log);
	first = seq = fs->next_seq;
	gen = fs->gen + 1;
	rec_cp_begin(&b, fs, gen);
	cp_emit_locked(fs, &b, first, false);
	{
		/* count what CP_END closes: every record so far plus itself */
		size_t pos = PX_BLK;

		while (pos < b.len) {
			nrec++;
			pos += ff_round_up(PX_REC_HDR + get32(b.p + pos + 4), 8);
		}
	}
	rec_cp_end(&b, nrec + 1);
	seal_records(&b, PX_BLK, &seq);
	fs->next_seq = seq;
	fs->meta_est = b.len;
	fs->meta_since = 0;
	free(fs->pend.p);
	memset(&fs->pend, 0, sizeof(fs->pend));
	ff_mutex_unlock(&fs->log);
	ff_mutex_unlock(&fs->ns);
	if (b.err) {
		ret = b.err;
		goto out;
	}
	ret = cp_split(fs, &b, max, starts, &nparts);
	if (ret) {
		ff_err("posix: the checkpoint (%zu bytes) does not fit the %u metadata zone(s) of %llu bytes beside the current one",
		       b.len, max, (unsigned long long)fs->zones[fs->meta_first + idx].cap);
		goto out;
	}
	for (uint32_t k = 0; k < nparts; k++) {
		uint32_t z = fs->meta_first + (idx + k) % M;
		struct px_zone *zo = &fs->zones[z];
		/*
		 * Part k is its header and its records, written from b: the
		 * header goes in the block before them, the first block of b
		 * for part 0, records of parts already written for the others.
		 */
		struct px_buf pb = {b.p + starts[k] - PX_BLK, PX_BLK + starts[k + 1] - starts[k], 0,
				    0};

		if (zo->seq) {
			ret = ff_zoneq_zone_op(fs->dev, z, FF_ZOP_RESET);
			if (ret)
				goto out;
		}
		mz_head_encode(fs, pb.p, gen, get64(b.p + starts[k] + 8), k);
		ret = write_meta(fs, z, &pb, zo->start);
		if (ret)
			goto out;
		if (k + 1 < nparts && zo->seq) /* it takes no open or active zone from the next */
			(void)ff_zoneq_zone_op(fs->dev, z, FF_ZOP_FINISH);
		fs->log_off = zo->start + ff_round_up(pb.len, PX_BLK);
	}
	atomic_fetch_add(&fs->st_ckpts, 1);
	fs->cp_idx = idx;
	fs->log_idx = (idx + nparts - 1) % M;
	fs->gen = gen;
	ff_mutex_lock(&fs->log);
	if (atomic_load(&fs->committed) < seq - 1)
		atomic_store(&fs->committed, seq - 1);
	ff_mutex_unlock(&fs->log);
out:
	free(b.p);
	return ret;
}

#define PX_EXT_REC (PX_REC_HDR + 48u) /* an EXTENT record's length */

/* Whether the record at h is an EXTENT of an operation of its own that maps blocks. */
static bool run_ext(const uint8_t *h)
{
	return get16(h) == PX_R_EXTENT && get32(h + 4) == PX_EXT_REC - PX_REC_HDR && !h[2] &&
	       get64(h + PX_REC_HDR + 24) < PX_MAX_FILE;
}

/*
 * How many EXTENT records from the one at h on (of at most max) an EXTRUN
 * can stand for: each maps the file's next len bytes stride bytes further on
 * the device, with the next dseq and seq. *stride gets the stride.
 */
static uint32_t run_count(const uint8_t *h, size_t max, uint64_t *stride)
{
	const uint8_t *p = h + PX_REC_HDR;
	uint64_t off, elen, dev;
	uint32_t n = 1;

	/* max first: the record at h may be a shorter one, last in the buffer */
	if (max < 2 || !run_ext(h) || !run_ext(h + PX_EXT_REC))
		return 1;
	off = get64(p + 8);
	elen = get64(p + 16);
	dev = get64(p + 24);
	*stride = get64(h + PX_EXT_REC + PX_REC_HDR + 24) - dev;
	if (get64(h + PX_EXT_REC + PX_REC_HDR + 24) <= dev || *stride < elen)
		return 1;
	for (const uint8_t *q = h + PX_EXT_REC; n < max && n < PX_RUN_MAX && run_ext(q);
	     q += PX_EXT_REC, n++) {
		const uint8_t *qp = q + PX_REC_HDR;

		if (get64(qp) != get64(p) || get64(qp + 8) != off + n * elen ||
		    get64(qp + 16) != elen || get64(qp + 24) != dev + n * *stride ||
		    get64(qp + 32) != get64(p + 32) + n || get64(q + 8) != get64(h + 8) + n)
			break;
	}
	return n;
}

/*
 * Before a log write: each run of two or more EXTENT records that an
 * EXTRUN can stand for becomes one (88 bytes for 72 a record), in place. A
 * sync append's record is deferred to the next commit (its data header
 * already says what it says), so a writer appending alone leaves hundreds of
 * them that differ only by one block: without this the log would cost a
 * sync append 72 bytes of the 4 KiB it writes. Records keep their order and
 * seqs, so the log means what it meant. Only the log's writer (the leader)
 * holds b; the counters say how many runs it made, of how many records.
 */
static void log_compact(struct px_fs *fs, struct px_buf *b)
{
	size_t in = 0, out = 0;
	bool starts = true; /* the record at in starts an operation */

	while (in < b->len) {
		uint8_t *h = b->p + in, *o = b->p + out;
		size_t rl = ff_round_up(PX_REC_HDR + get32(h + 4), 8);
		uint64_t stride = 0, size = 0;
		uint8_t rec[PX_REC_HDR + PX_RUN_LEN];
		struct px_buf rb = {rec, 0, sizeof(rec), 0};
		uint32_t n = starts ? run_count(h, (b->len - in) / PX_EXT_REC, &stride) : 1;

		if (n < 2) {
			starts = !(h[2] & PX_REC_CONT);
			memmove(o, h, rl);
			in += rl;
			out += rl;
			continue;
		}
		for (uint32_t k = 0; k < n; k++) {
			uint64_t sz = get64(h + k * PX_EXT_REC + PX_REC_HDR + 40);

			size = sz > size ? sz : size;
		}
		/* built aside, as o may overlap the records it stands for; rb fits it exactly */
		rec_extrun(&rb, get64(h + PX_REC_HDR), get64(h + PX_REC_HDR + 8),
			   get64(h + PX_REC_HDR + 16), get64(h + PX_REC_HDR + 24), stride,
			   get64(h + PX_REC_HDR + 32), size, n);
		rec_seal(rec, get64(h + 8), false);
		memcpy(o, rec, sizeof(rec));
		in += (size_t)n * PX_EXT_REC;
		out += PX_REC_HDR + PX_RUN_LEN;
		atomic_fetch_add(&fs->st_runs, 1);
		atomic_fetch_add(&fs->st_run_exts, n);
	}
	b->len = out;
}

/* The leader's write of the records in b (a checkpoint instead when the zone is full). */
static int log_write(struct px_fs *fs, struct px_buf *b)
{
	uint32_t z = fs->meta_first + fs->log_idx;
	size_t n;
	int ret;

	if (fs->features & PX_FEAT_EXTRUN)
		log_compact(fs, b);
	n = ff_round_up(b->len, PX_BLK);
	if (!b->len)
		return 0;
	if (fs->log_off + n > fs->zones[z].start + fs->zones[z].cap)
		return checkpoint(fs);
	ret = write_meta(fs, z, b, fs->log_off);
	if (!ret)
		fs->log_off += n;
	return ret;
}

/*
 * Shut the filesystem down, as XFS does after a log I/O error: the log
 * writes nothing more (log_err), and every later change, open for writing,
 * fsync and writeback fails with EIO (px_writable, px_err). On a device
 * that has stopped writing, the paths would otherwise answer from the state
 * its failures left: zones given up as full with nothing the collector can
 * move (ENOSPC), zones it could not finish holding the active-zone limit
 * (EOVERFLOW), records applied in memory that never reach the log (a
 * truncate that "succeeds"). A program must not think its arguments bad or
 * the disk full when the disk is gone. Reads of what memory and the cache
 * hold go on. Caller holds fs->log.
 */
static void shutdown_locked(struct px_fs *fs, int err, const char *what)
{
	ff_assert_held(&fs->log);
	if (!fs->log_err)
		fs->log_err = err;
	if (!atomic_exchange(&fs->shut, true))
		ff_err("posix: %s failed (%s): the filesystem shuts down, every later change fails "
		       "with EIO",
		       what, strerror(-err));
	pthread_cond_broadcast(&fs->log_cv);
}

static void px_shutdown(struct px_fs *fs, int err, const char *what)
{
	ff_mutex_lock(&fs->log);
	shutdown_locked(fs, err, what);
	ff_mutex_unlock(&fs->log);
}

/* 0 when changes may be made, else -EROFS (read-only mount) or -EIO (shut down). */
static int px_writable(struct px_fs *fs)
{
	if (fs->ro)
		return -EROFS;
	return atomic_load(&fs->shut) ? -EIO : 0;
}

/* err as a change's caller sees it: EIO for any error once the filesystem is shut down. */
static int px_err(struct px_fs *fs, int err)
{
	return err && atomic_load(&fs->shut) ? -EIO : err;
}

/*
 * After the device failed a data write, a zone reset or a collector's move:
 * a flush tells a device that fails everything (a pulled disk, flushes
 * included) from one bad write, which its writer's EIO covers and after
 * which the filesystem goes on (the zone is given up, the next write goes
 * elsewhere). A failed flush shuts the filesystem down. No lock held but
 * possibly a slot's mu. May sleep.
 */
static void write_failed(struct px_fs *fs)
{
	int r;

	if (atomic_load(&fs->shut))
		return;
	r = ff_dev_flush(fs->dev);
	if (r)
		px_shutdown(fs, -EIO, "a device write, and the flush after it,");
}

/*
 * Make every record up to seq durable: group commit. No lock held; never
 * called with ns held. Returns 0 or the log's error (sticky: the log is
 * unusable after a failed write, and the filesystem shut down).
 */
static int log_commit(struct px_fs *fs, uint64_t seq)
{
	int ret;

	if (atomic_load(&fs->committed) >= seq)
		return 0;
	ff_mutex_lock(&fs->log);
	atomic_fetch_add(&fs->st_commits, 1);
	while (atomic_load(&fs->committed) < seq && !fs->log_err) {
		struct px_buf b;
		uint64_t last;

		if (fs->leader) {
			ff_cond_wait(&fs->log_cv, &fs->log);
			continue;
		}
		fs->leader = true;
		b = fs->pend;
		memset(&fs->pend, 0, sizeof(fs->pend));
		last = fs->next_seq - 1;
		ff_mutex_unlock(&fs->log);
		ret = log_write(fs, &b);
		free(b.p);
		ff_mutex_lock(&fs->log);
		if (ret) {
			shutdown_locked(fs, ret, "writing the metadata log");
		} else if (atomic_load(&fs->committed) < last) {
			atomic_store(&fs->committed, last);
		}
		fs->leader = false;
		pthread_cond_broadcast(&fs->log_cv);
	}
	ret = fs->log_err;
	ff_mutex_unlock(&fs->log);
	return ret;
}

static int log_commit_all(struct px_fs *fs)
{
	uint64_t s;

	ff_mutex_lock(&fs->log);
	s = fs->next_seq - 1;
	ff_mutex_unlock(&fs->log);
	return log_commit(fs, s);
}

/*
 * Ask the committer thread to commit every record up to want now, beside
 * whatever the caller writes meanwhile; the caller's log_commit(want) then
 * waits for that commit. Nothing when the committer does not run: that
 * log_commit writes it.
 */
static void cm_hand(struct px_fs *fs, uint64_t want)
{
	if (!fs->cm_on || want <= atomic_load(&fs->committed))
		return;
	ff_mutex_lock(&fs->cm_mu);
	if (want > fs->cm_want)
		fs->cm_want = want;
	pthread_cond_signal(&fs->cm_cv);
	ff_mutex_unlock(&fs->cm_mu);
}

/* ---- data zones: slots ---- */

static bool data_zone(const struct px_zone *z)
{
	return z->state != PX_Z_META && z->state != PX_Z_SUPER;
}

/* Set in the garbage collector's thread: its writes may open the reserved zones. */
static _Thread_local bool px_in_gc;

/* A data zone that can be opened for writing. Caller holds ns. */
static bool zone_free_locked(struct px_fs *fs, const struct px_zone *zo)
{
	ff_assert_held(&fs->ns);
	return data_zone(zo) && zo->slot < 0 && !zo->inflight && !zo->victim &&
	       (zo->state == PX_Z_FREE || (zo->state == PX_Z_FULL && !zo->valid));
}

/* Zones free to open (zone_free_locked), counted as they change. Caller holds ns. */
static uint32_t free_zones_locked(struct px_fs *fs)
{
	ff_assert_held(&fs->ns);
	return fs->nfree;
}

/*
 * Ask the GC thread for a round. Caller may hold ns or a slot's mu (gc_mu is
 * a leaf). When the last round found nothing to reclaim and nothing it looks
 * at has changed since it started (gc_gen), another round would find nothing
 * again: none is asked for and -ENOSPC returned, so that a writer at the
 * reserve neither waits nor makes the collector spin. Else 0, and *round is
 * the rounds ended so far (for gc_wait_round).
 */
static int gc_kick(struct px_fs *fs, uint64_t *round)
{
	int ret = 0;

	ff_mutex_lock(&fs->gc_mu);
	if (fs->gc_none && fs->gc_none_gen == atomic_load(&fs->gc_gen)) {
		ret = -ENOSPC;
		goto out;
	}
	fs->gc_req = true;
	pthread_cond_signal(&fs->gc_cv);
	if (round) {
		fs->gc_need = true;
		*round = fs->gc_rounds;
	}
out:
	ff_mutex_unlock(&fs->gc_mu);
	return ret;
}

/*
 * Wait for the GC round after round to end (or the thread to stop). No lock
 * held. Returns the zones that round freed.
 */
static int gc_wait_round(struct px_fs *fs, uint64_t round)
{
	int freed;

	atomic_fetch_add(&fs->st_gc_waits, 1);
	ff_mutex_lock(&fs->gc_mu);
	while (fs->gc_on && fs->gc_rounds == round)
		ff_cond_wait(&fs->gc_done_cv, &fs->gc_mu);
	freed = !fs->gc_on || fs->gc_none ? -1 : (int)fs->gc_freed;
	ff_mutex_unlock(&fs->gc_mu);
	return freed;
}

/*
 * Before a write takes its inode's io_lock: when free zones are down to the
 * reserve and one more, wait for GC rounds until there are more, or the
 * collector finds nothing to reclaim. Waiting here, holding nothing, keeps
 * writers from waiting inside slot_zone with an io_lock the collector would
 * need.
 */
static void gc_throttle(struct px_fs *fs)
{
	for (int tries = 0; tries < 8 && atomic_load(&fs->gc_on); tries++) {
		uint32_t nfree;
		uint64_t round;

		ff_mutex_lock(&fs->ns);
		nfree = free_zones_locked(fs);
		ff_mutex_unlock(&fs->ns);
		if (nfree > fs->gc_reserve + 1)
			return;
		/* a round that freed nothing is not asked for again at once: slot_zone decides */
		if (gc_kick(fs, &round) || gc_wait_round(fs, round) <= 0)
			return;
	}
}

/*
 * The file whose write-through (px_write, sync) this thread is making, under
 * its io_lock, or 0; px_yielded is set when slot_zone gave that write ENOSPC
 * rather than wait on. The collector moves no block of a file whose io_lock
 * is held, and the victims may be this very file's (an overwrite's old
 * copies): a round wanted while the writer holds the lock frees nothing, and
 * going into the collector's reserve would take the zone it moves into.
 * Such a writer gives up instead, and px_write waits for a round without the
 * lock and writes again. Write-backs (the flusher, fsync, reclaim) hold no
 * io_lock of theirs and never yield.
 */
static _Thread_local uint64_t px_yield_ino;
static _Thread_local bool px_yielded;
/*
 * The same for a buffered write's admission (da_admit): px_write's thread
 * (px_in_write) gives up with px_yield_flush set to have the cache written
 * back without the io_lock, once a px_write (px_flushed): write-backs that
 * wait for the collector while this thread holds the lock would find its
 * victims busy, and go into its reserve.
 */
static _Thread_local bool px_in_write, px_yield_flush, px_flushed;
/* rounds a yielding write waits for before its ENOSPC */
#define PX_YIELD_TRIES 8

/*
 * Give slot s a zone with room for a header and one block. Caller holds s->mu
 * (not ns). A new zone gets a new epoch, logged and committed before any
 * header is written in it; a sequential zone is reset after that commit.
 *
 * Space. The last gc_reserve free zones are opened only by the garbage
 * collector (px_in_gc), so that it can always move a victim's live blocks
 * out. Anyone else who finds no more than that waits for a GC round, with
 * s->mu dropped (the collector may need a slot) but possibly holding its
 * inode's io_lock or folios under writeback, which the collector never waits
 * for (it skips an inode whose io_lock it cannot take). Six rounds in a row
 * that freed nothing (their victims busy) let the writer one zone further
 * into the reserve, but for a write that may yield (may_yield: px_write's
 * own write-through, px_yield_ino), which gets ENOSPC after one such round
 * and px_yielded set; ENOSPC when the collector found nothing to reclaim, or
 * no zone at all is free.
 */
static int slot_zone(struct px_fs *fs, struct px_slot *s, bool may_yield)
{
	uint32_t old, z;
	struct px_buf b;
	uint64_t seq, round;
	uint32_t floor = px_in_gc ? 0 : fs->gc_reserve;
	int ret, kicked, idle = 0;

	ff_assert_held(&s->mu);
again:
	old = z = UINT32_MAX;
	memset(&b, 0, sizeof(b));
	seq = 0;
	ret = 0;
	ff_mutex_lock(&fs->ns);
	if (s->zone != UINT32_MAX) {
		struct px_zone *zo = &fs->zones[s->zone];

		if (zo->start + zo->cap - zo->wp >= 2 * PX_BLK) {
			ff_mutex_unlock(&fs->ns);
			return 0;
		}
		old = s->zone;
		zo->slot = -1;
		s->zone = UINT32_MAX;
		zone_changed_locked(fs, zo);
		{
			struct px_zone tmp = *zo;

			tmp.state = PX_Z_FULL;
			rec_zone(&b, old, &tmp, zo->cursor);
		}
	}
	{
		uint32_t nfree = free_zones_locked(fs);

		if (nfree <= fs->gc_low && atomic_load(&fs->gc_on))
			(void)gc_kick(fs, NULL);
		if (floor && atomic_load(&fs->gc_on) && nfree <= floor) {
			/* wait for the collector: the zone given up is logged first */
			if (b.len)
				ret = op_commit_locked(fs, &b, &seq);
			kicked = gc_kick(fs, &round);
			ff_mutex_unlock(&fs->ns);
			free(b.p);
			if (ret)
				return ret;
			if (old != UINT32_MAX && fs->zones[old].seq)
				(void)ff_zoneq_zone_op(fs->dev, old, FF_ZOP_FINISH);
			if (kicked)
				return -ENOSPC;
			ff_mutex_unlock(&s->mu);
			ret = gc_wait_round(fs, round);
			ff_mutex_lock(&s->mu);
			/* nothing to reclaim: live data and the reserve fill the device */
			if (ret < 0)
				return -ENOSPC;
			/*
			 * Rounds that free nothing, their victims busy: the writers
			 * holding those io_locks may wait for this write (a
			 * write-back that frees the cache's memory), and ENOSPC
			 * would leave its dirty blocks stuck. The writer goes one
			 * zone into the reserve, and one more after six more such
			 * rounds: the collector keeps a zone to move into for as
			 * long as the writers can wait.
			 */
			if (!ret && may_yield) {
				px_yielded = true;
				return -ENOSPC;
			}
			if (!ret && ++idle >= 6) {
				floor--;
				idle = 0;
			}
			if (ret > 0)
				idle = 0;
			goto again;
		}
	}
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *zo = &fs->zones[k];

		if (zone_free_locked(fs, zo)) {
			struct px_zone tmp = *zo;

			tmp.state = PX_Z_OPEN;
			tmp.epoch = zo->epoch + 1;
			rec_zone(&b, k, &tmp, zo->start);
			z = k;
			break;
		}
	}
	if (b.len) {
		ret = op_commit_locked(fs, &b, &seq);
		if (!ret && z != UINT32_MAX) {
			fs->zones[z].slot = (int)(s - fs->slots);
			fs->zones[z].mtime = 0; /* no data yet: its age is its newest data's */
			s->zone = z;
			zone_changed_locked(fs, &fs->zones[z]);
			atomic_fetch_add(&fs->st_zone_opens, 1);
		}
	}
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	if (ret)
		return ret;
	if (old != UINT32_MAX && fs->zones[old].seq)
		(void)ff_zoneq_zone_op(fs->dev, old, FF_ZOP_FINISH);
	if (z == UINT32_MAX)
		return -ENOSPC;
	ret = log_commit(fs, seq);
	if (!ret && fs->zones[z].seq && ff_zoneq_wp(fs->dev, z) != fs->zones[z].start) {
		ret = ff_zoneq_zone_op(fs->dev, z, FF_ZOP_RESET);
		if (ret)
			write_failed(fs);
	}
	if (ret) {
		/*
		 * Not the slot's: the log does not say it is open, or it still
		 * holds old data, and a write at its start would be refused as out
		 * of order. Full with no live data, the next slot_zone to find it
		 * opens it again, with a new epoch and a reset.
		 */
		struct px_zone *zo = &fs->zones[z];

		ff_mutex_lock(&fs->ns);
		zo->slot = -1;
		zo->state = PX_Z_FULL;
		zo->wp = zo->start + zo->cap;
		s->zone = UINT32_MAX;
		zone_changed_locked(fs, zo);
		ff_mutex_unlock(&fs->ns);
	}
	return ret;
}

/*
 * A slot for a write of inode ino, its mu held: a free one that has a zone
 * (no zone to open), else any free one, else wait for ino's own.
 */
static struct px_slot *slot_get(struct px_fs *fs, uint64_t ino)
{
	int first = (int)(ino % (uint64_t)fs->nslots);

	for (int k = 0; k < fs->nslots; k++) {
		struct px_slot *s = &fs->slots[(first + k) % fs->nslots];

		if (ff_mutex_trylock(&s->mu)) {
			if (s->zone != UINT32_MAX)
				return s;
			ff_mutex_unlock(&s->mu);
		}
	}
	for (int k = 0; k < fs->nslots; k++) {
		struct px_slot *s = &fs->slots[(first + k) % fs->nslots];

		if (ff_mutex_trylock(&s->mu))
			return s;
	}
	ff_mutex_lock(&fs->slots[first].mu);
	return &fs->slots[first];
}

/*
 * slot_zone found no zone to open for slot skip (whose mu the caller dropped):
 * another writers' slot may still hold a zone with room, which
 * avail_blocks_locked() counts as writers' room, so a write of reserved
 * blocks may need it. Waits for each other slot in turn, holding no other
 * slot, and returns the first whose zone has room for a header and a block,
 * its mu held, or NULL.
 */
static struct px_slot *slot_with_room(struct px_fs *fs, const struct px_slot *skip)
{
	for (int k = 0; k < fs->nslots; k++) {
		struct px_slot *s = &fs->slots[k];
		bool room;

		if (s == skip)
			continue;
		ff_mutex_lock(&s->mu);
		ff_mutex_lock(&fs->ns);
		room = s->zone != UINT32_MAX &&
		       fs->zones[s->zone].start + fs->zones[s->zone].cap - fs->zones[s->zone].wp >=
			       2 * PX_BLK;
		ff_mutex_unlock(&fs->ns);
		if (room)
			return s;
		ff_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* ---- the cache's view ---- */

static int resv_admit_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len);

static int px_map_read(void *fs_inode, uint64_t off, uint64_t len, struct ff_map *m)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	bool in;
	size_t k;

	ff_mutex_lock(&fs->ns);
	k = ext_find(i, off, &in);
	m->file_off = off;
	if (in && i->ext[k].dev == PX_UNWRITTEN) {
		struct px_ext *e = &i->ext[k];

		/* reserved, never written: zeros, as a hole */
		m->type = FF_MAP_HOLE;
		m->len = e->off + e->len - off < len ? e->off + e->len - off : len;
	} else if (in) {
		struct px_ext *e = &i->ext[k];

		m->type = FF_MAP_INPLACE;
		m->dev_off = e->dev + (off - e->off);
		m->len = e->off + e->len - off < len ? e->off + e->len - off : len;
		m->zone = zone_of(fs, m->dev_off);
	} else {
		m->type = FF_MAP_HOLE;
		m->len = k < i->next && i->ext[k].off - off < len ? i->ext[k].off - off : len;
	}
	ff_mutex_unlock(&fs->ns);
	return 0;
}

/*
 * Where the blocks mapped without a gap from the k-th extent on end, at
 * most end (the k-th written, not merely reserved). Caller holds ns.
 */
static uint64_t mapped_end_locked(const struct px_inode *i, size_t k, uint64_t end)
{
	uint64_t e = i->ext[k].off;

	for (; k < i->next && i->ext[k].off == e && i->ext[k].dev != PX_UNWRITTEN && e < end; k++)
		e = i->ext[k].off + i->ext[k].len;
	return e < end ? e : end;
}

/*
 * Defragmentation, on a device whose data zones are all conventional
 * (fs->defrag_on). There an overwrite goes in place and the collector runs
 * only when free zones run short, but every write that is not in place
 * (an append: each behind its data header) is an extent of its own: a file
 * grown by small synced appends, a log or a database's write-ahead log, has
 * one extent per append, 40 bytes of memory and 28 of checkpoint each, and a
 * later overwrite of a few appends' worth costs a device write per extent
 * it spans. So when an in-place overwrite spans the end of a small extent
 * of a file that got no new extent for a second or two (and, with
 * -o defrag=N, once appends have given a file N extents more than its last
 * pass left), the file is queued for the GC thread, which copies its runs of
 * small file-contiguous extents into its own zone as one extent each
 * (defrag_inode). Only small extents move: a file's data is copied about
 * once in all, not once per pass. After a pass that found nothing to join,
 * only appends queue the file, at twice its extents. Appends alone do not
 * by default: a log only ever appended to would be copied once more in the
 * background (write amplification 3 instead of 2 for 4 KiB sync appends) to
 * save 40 bytes of memory per append.
 */
#define PX_DEFRAG_SMALL (256ull << 10) /* extents this long or longer stay */
#define PX_DEFRAG_PASS	(4ull << 20)   /* bytes one pass moves at most */
#define PX_DEFRAG_TRIES 50	       /* tries for the file's io_lock, 1 ms apart */

/* Queue i for a defragmentation pass, unless it is queued. Caller holds ns. */
static void defrag_queue_locked(struct px_fs *fs, struct px_inode *i)
{
	ff_assert_held(&fs->ns);
	if (i->dq || !atomic_load(&fs->gc_on))
		return;
	ff_mutex_lock(&fs->gc_mu);
	if (fs->dq_n < PX_DEFRAG_QUEUE) {
		fs->dq[fs->dq_n++] = i->ino;
		i->dq = true;
		pthread_cond_broadcast(&fs->gc_cv);
	}
	ff_mutex_unlock(&fs->gc_mu);
}

/* Monotonic seconds, for px_inode.oop_s. */
static uint32_t mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint32_t)t.tv_sec;
}

/* A write out of place added an extent to i: queue it once it has enough. Caller holds ns. */
static void defrag_note_locked(struct px_fs *fs, struct px_inode *i)
{
	ff_assert_held(&fs->ns);
	if (!fs->defrag_on)
		return;
	i->defrag_dry = false;
	i->oop_s = mono_s();
	if (fs->defrag_min && i->next >= (i->defrag_at ? i->defrag_at : fs->defrag_min))
		defrag_queue_locked(fs, i);
}

/*
 * Files with fewer extents than this are not worth a pass for the room of
 * the metadata: a pass joins a file's own neighbouring extents only.
 */
#define PX_META_PRESS_EXT 64u

/*
 * A write out of place added an extent to i: when the metadata is past
 * PX_META_PRESS (and -o defrag=off does not forbid moves), queue the file
 * for a pass that joins its small extents
 * (defrag_inode), again at every such write once a pass joined some (it
 * moves PX_DEFRAG_PASS at most), at twice its extents when it joined none.
 * Caller holds ns.
 */
static void meta_note_locked(struct px_fs *fs, struct px_inode *i)
{
	ff_assert_held(&fs->ns);
	if (fs->o.defrag_min == FF_DEFRAG_OFF || i->dq || i->next < PX_META_PRESS_EXT ||
	    (i->defrag_dry && i->next < i->defrag_at) || !meta_above_locked(fs, PX_META_PRESS))
		return;
	atomic_store(&fs->meta_press, true);
	defrag_queue_locked(fs, i);
}

/*
 * Where [off, off+len) goes: in place when the blocks are mapped by a
 * committed extent in conventional space (and a sync write does not move
 * the size), else a header + data append in a slot's zone. For the append
 * the slot's mutex stays held until write_done. A sync write of a file whose
 * records (its name) are not durable commits the log first.
 *
 * An overwrite of conventional blocks whose extent is not committed yet
 * (durable by its data header alone: roll-forward checks the data's crc, so
 * it must not be overwritten in place) commits the log up to that extent and
 * then writes in place: one group commit, after which every later overwrite
 * is one write of its blocks, where out of place each would cost a header
 * and leave a new uncommitted extent behind. A write-back does the same as
 * a sync write: an fdatasync never commits the extents its headers made
 * durable, so without it a file rewritten between fdatasyncs (a WAL's
 * later passes) would go out of place, a header and an extent more, forever.
 * Not an append's write-back that starts in the last block written before
 * (a partial block): that block goes out of place with the new ones, in one
 * write, where in place it would cost a second write after it (and a log
 * write first if its extent was not committed); the same when the block is
 * the whole write-back but holds bytes past the size on disk: its header
 * carries the new size, where in place the fsync would log it.
 */
static int px_map_write(void *fs_inode, uint64_t off, uint64_t len, unsigned flags,
			struct ff_map *m)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	bool sync = flags & FF_MAPW_SYNC, in, retried = false;
	uint64_t need;
	struct px_slot *s;
	struct px_zone *zo;
	size_t k;
	int ret;

	ret = px_writable(fs);
	if (ret)
		return ret;
	m->file_off = off;
again:
	need = 0;
	ff_mutex_lock(&fs->ns);
	if (i->freed) {
		ff_mutex_unlock(&fs->ns);
		m->type = FF_MAP_STORED; /* a removed file's data goes nowhere */
		m->len = len;
		return 0;
	}
	k = ext_find(i, off, &in);
	if (in && i->ext[k].dev != PX_UNWRITTEN) {
		struct px_ext *e = &i->ext[k];
		uint32_t z = zone_of(fs, e->dev);
		/*
		 * A write-back that is an append but for the block it starts
		 * in, or that moves the size on disk from that block: out of
		 * place whole.
		 */
		bool append = !sync &&
			      (off + len > e->off + e->len ||
			       (i->size > i->disk_size && off + len > i->disk_size)) &&
			      mapped_end_locked(i, k, off + len) - off <= PX_BLK;
		bool inplace = !fs->zones[z].seq && !fs->zones[z].victim && !i->defrag && e->rseq &&
			       !append && !(sync && i->wsize > i->disk_size);
		uint64_t done = atomic_load(&fs->committed);

		/*
		 * A sync write in place writes no record: the size it lies
		 * under must be durable already. disk_size is the log's, and
		 * a truncate that moved it may not be: then the log is
		 * committed first (below), as XFS forces its log for a
		 * datasync write after a size change.
		 */
		if (inplace && e->rseq <= done && !(sync && i->meta_rseq > done)) {
			/* until write_done: a GC move or a defragmentation waits for it */
			fs->zones[z].inplace++;
			i->inplace_n++;
			m->type = FF_MAP_INPLACE;
			m->dev_off = e->dev + (off - e->off);
			m->len = e->off + e->len - off < len ? e->off + e->len - off : len;
			m->zone = z;
			/*
			 * The write goes on into the next extent: a second I/O.
			 * Not while the file still gets new extents (written out
			 * of place within the last second or two): its blocks
			 * are still being laid out, by appends or by random
			 * writes into holes, and a pass now would be redone.
			 */
			if (m->len < len && e->len < PX_DEFRAG_SMALL && fs->defrag_on &&
			    !i->defrag_dry && mono_s() - i->oop_s >= 2)
				defrag_queue_locked(fs, i);
			ff_mutex_unlock(&fs->ns);
			atomic_fetch_add(&fs->st_inplace, 1);
			return 0;
		}
		if (inplace && !retried)
			need = e->rseq;
	}
	if (flags & FF_MAPW_INPLACE) {
		/* the cache holds in-place mappings, which a GC move waits for: no slot now */
		ff_mutex_unlock(&fs->ns);
		m->type = FF_MAP_INPLACE;
		m->len = 0;
		return 0;
	}
	if (sync && !i->early && i->meta_rseq > atomic_load(&fs->committed) && i->meta_rseq > need)
		need = i->meta_rseq;
	ff_mutex_unlock(&fs->ns);
	if (need) {
		ret = log_commit(fs, need);
		if (ret)
			return ret;
		if (!retried) {
			/* look again: committed now, unless writeback moved it meanwhile */
			retried = true;
			goto again;
		}
	}
	s = slot_get(fs, i->ino);
	/* only this write's own blocks, never a write-back of them in its way */
	ret = slot_zone(fs, s, sync && px_yield_ino == i->ino);
	if (ret) {
		ff_mutex_unlock(&s->mu);
		if (ret != -ENOSPC || atomic_load(&fs->shut) || !(s = slot_with_room(fs, s)))
			return px_err(fs, ret);
	}
	ff_mutex_lock(&fs->ns);
	zo = &fs->zones[s->zone];
	{
		uint64_t room = ff_round_down(zo->start + zo->cap - zo->wp - PX_BLK, PX_BLK);
		uint64_t n = len < room ? len : room;

		if (n > PX_MAX_WRITE)
			n = PX_MAX_WRITE;
		m->len = n;
	}
	/*
	 * New blocks outside a reservation must leave the reserved ones their
	 * room: checked with ns held until the zone's pointer has moved, so
	 * that concurrent writers are counted one after the other. Nothing
	 * is written once the filesystem has shut down, also when that
	 * happened after the check above (the slot's zone may be one the log
	 * could not record).
	 */
	ret = atomic_load(&fs->shut) ? -EIO : resv_admit_locked(fs, i, off, m->len);
	if (ret) {
		ff_mutex_unlock(&fs->ns);
		ff_mutex_unlock(&s->mu);
		return px_err(fs, ret);
	}
	/* the pointer moves past the promised blocks now: they are room taken, not promised */
	s->promised = promised_blocks_locked(i, off, ff_round_up(off + m->len, PX_BLK));
	fs->wb_promised += s->promised;
	m->type = zo->seq ? FF_MAP_APPEND : FF_MAP_INPLACE;
	m->zone = s->zone;
	m->dev_off = zo->wp + PX_BLK;
	/*
	 * The header of a write that no other range will join (a sync
	 * write's, a write-back's last run) is its block's last 512 bytes
	 * where the device writes 512 B blocks: the rest of the block is left
	 * as it was (a conventional zone's chain passes a block once per
	 * epoch, but for the retry after a failed write, and the roll-forward
	 * tries the short header first). A sequential zone takes whole blocks
	 * only, and a write-back that more runs may join keeps the whole
	 * block for their pieces.
	 */
	m->hdr_len =
		(sync || (flags & FF_MAPW_ALONE)) && !zo->seq && fs->short_dh ? PX_SDH_LEN : PX_BLK;
	s->sync = sync;
	s->npiece = 1;
	s->piece[0] = (struct px_piece){off, m->len};
	/* the chain of headers must not have a hole below a durable one */
	m->io_flags = sync && !zo->seq ? FF_IO_PREFLUSH : 0;
	zo->wp += PX_BLK + m->len;
	zo->inflight++;
	zone_changed_locked(fs, zo);
	ff_mutex_unlock(&fs->ns);
	return 0; /* s->mu held until write_done */
}

/*
 * The size a written segment's header and EXTENT record may give the file:
 * up to the size a sync write in flight moves it to (wsize) only for that
 * write's own segments, whose bytes are in the cache. Another write-back
 * meanwhile (the flusher, an fsync), of the partial last block say, must not
 * publish that size: the record moves the size in memory, and reads would
 * see the sync write's range before its bytes are copied. Caller holds ns.
 */
static uint64_t wsize_lim_locked(const struct px_inode *i, bool sync)
{
	return sync && i->wsize > i->size ? i->wsize : i->size;
}

/*
 * The file whose O_SYNC write(2) this thread is making, under the file's
 * io_lock, or 0. px_write stamps such a write's times before its data goes
 * out; its headers carry them (PX_DH_MTIME), and px_write_done queues an
 * INODE record with them beside its EXTENT record when they changed (once a
 * clock tick). The times are then as durable as the header. While the log
 * lacks the EXTENT record, the mount rolls the header forward and takes its
 * time: no later time of the file can be in the log, which is committed in
 * order, since the io_lock keeps every change of mtime (a utimes, a
 * truncate, a punch) from coming between the stamp and that record. Once
 * the log has the EXTENT record, it has the INODE record too. The flusher's
 * and fsync's write-backs hold no io_lock and carry no time.
 */
static _Thread_local uint64_t px_stamp_ino;

/*
 * A data header (docs/posix-format.md) in the hlen bytes at h (PX_BLK, or
 * PX_SDH_LEN for a short one, which has one range): a write of len bytes of
 * inode ino at file offset off, the data's crc data_crc, which makes the file
 * size bytes long; epoch is its zone's, dseq the write's data sequence
 * number; np > 1 pieces pc (the ranges, in file order, whose bytes make up
 * the len) are listed in its table (PX_FEAT_PIECES); mtime, in ns, is the
 * file's mtime and ctime once the write is in, or 0 (px_stamp_ino says when
 * a header may carry it). A writer's (px_seal) and a GC move's (gc_write,
 * with no time: a move changes none).
 */
static void dh_encode(const struct px_fs *fs, uint8_t *h, uint32_t hlen, uint64_t epoch,
		      uint64_t dseq, uint64_t ino, uint64_t off, uint64_t len, uint64_t size,
		      uint32_t data_crc, uint64_t mtime, const struct px_piece *pc, uint32_t np)
{
	memset(h, 0, hlen);
	memcpy(h, hlen == PX_BLK ? PX_DH_MAGIC : PX_SDH_MAGIC, 8);
	set32(h + PX_DH_VERSION, PX_VERSION);
	set64(h + PX_DH_EPOCH, epoch);
	set64(h + PX_DH_DSEQ, dseq);
	set64(h + PX_DH_INO, ino);
	set64(h + PX_DH_FILE_OFF, off);
	set64(h + PX_DH_LEN, len);
	set64(h + PX_DH_SIZE, size);
	set32(h + PX_DH_DATA_CRC, data_crc);
	set64(h + PX_DH_MTIME, mtime);
	if (np > 1) {
		set32(h + PX_DH_NPIECE, np);
		for (uint32_t k = 0; k < np; k++) {
			set64(h + PX_DH_PIECES + k * PX_DH_PIECE_SZ, pc[k].off);
			set64(h + PX_DH_PIECES + k * PX_DH_PIECE_SZ + 8, pc[k].len);
		}
	}
	set32(h + PX_DH_CRC, ff_crc32c(fs->dh_seed, h, hlen));
}

static int px_seal(void *fs_inode, const struct ff_map *m, const struct iovec *iov, int iovcnt,
		   void *hdr)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	struct px_zone *zo = &fs->zones[m->zone];
	struct px_slot *s = &fs->slots[zo->slot];
	const struct px_piece *last = &s->piece[s->npiece - 1];
	uint64_t end = last->off + last->len, lim, size, dseq, epoch, mtime = 0;
	uint32_t crc = 0;

	ff_mutex_lock(&fs->ns);
	dseq = fs->next_dseq++;
	if (px_stamp_ino == i->ino && i->mtime.tv_sec > 0)
		mtime = ts_ns(i->mtime);
	lim = wsize_lim_locked(i, fs->slots[zo->slot].sync);
	size = end < lim ? end : lim;
	if (size < i->disk_size)
		size = i->disk_size;
	epoch = zo->epoch;
	fs->slots[zo->slot].dseq = dseq;
	ff_mutex_unlock(&fs->ns);
	crc = ff_crc32c_iov(crc, iov, iovcnt);
	dh_encode(fs, hdr, m->hdr_len, epoch, dseq, i->ino, m->file_off, m->len + m->more, size,
		  crc, mtime, s->piece, s->npiece);
	return 0;
}

/*
 * Take [off, off+len), a further run of the same writeback, into the write
 * of m (the cache's ops->more): its bytes follow m's in the zone, listed in
 * m's header as a piece (PX_FEAT_PIECES). Only what goes out of place
 * anyway: a run that overlaps data in conventional space may be written in
 * place, and is left to map_write. Holds s->mu through m's write already.
 */
static bool px_more(void *fs_inode, struct ff_map *m, uint64_t off, uint64_t len, unsigned flags)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	struct px_zone *zo = &fs->zones[m->zone];
	struct px_slot *s = &fs->slots[zo->slot];
	uint64_t promised;
	bool in, ok = false;

	if (!(fs->features & PX_FEAT_PIECES) || s->npiece >= PX_DH_PIECES_MAX ||
	    m->hdr_len != PX_BLK || (flags & FF_MAPW_SYNC) || s->sync || len % PX_BLK ||
	    off < s->piece[s->npiece - 1].off + s->piece[s->npiece - 1].len)
		return false;
	ff_mutex_lock(&fs->ns);
	if (i->freed || atomic_load(&fs->shut) || zo->wp + len > zo->start + zo->cap ||
	    m->len + m->more + len > PX_MAX_WRITE)
		goto out;
	for (size_t k = ext_find(i, off, &in); k < i->next && i->ext[k].off < off + len; k++) {
		const struct px_ext *e = &i->ext[k];

		if (e->dev != PX_UNWRITTEN && !fs->zones[zone_of(fs, e->dev)].seq)
			goto out;
	}
	if (resv_admit_locked(fs, i, off, len))
		goto out;
	promised = promised_blocks_locked(i, off, off + len);
	s->promised += promised;
	fs->wb_promised += promised;
	zo->wp += len;
	zone_changed_locked(fs, zo);
	s->piece[s->npiece++] = (struct px_piece){off, len};
	m->more += len;
	ok = true;
out:
	ff_mutex_unlock(&fs->ns);
	return ok;
}

static int px_write_done(void *fs_inode, const struct ff_map *m, uint64_t landed_at, ssize_t result,
			 unsigned flags)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	struct px_zone *zo;
	struct px_slot *s;
	struct px_buf b = {0};
	uint64_t seq, dseq, lim, size;
	int ret = 0;

	if (!m->hdr_len) {
		/* in place: the extent is there already */
		ff_mutex_lock(&fs->ns);
		fs->zones[m->zone].inplace--;
		i->inplace_n--;
		ff_mutex_unlock(&fs->ns);
		return 0;
	}
	zo = &fs->zones[m->zone];
	s = &fs->slots[zo->slot];
	if (result < 0) {
		if (zo->seq) {
			(void)ff_zoneq_resync(fs->dev, m->zone);
			ff_mutex_lock(&fs->ns);
			zo->inflight--;
			inflight_done_locked(fs, zo);
			zo->wp = zo->start + zo->cap; /* the chain may be broken: no more in it */
		} else {
			ff_mutex_lock(&fs->ns);
			zo->inflight--;
			inflight_done_locked(fs, zo);
			zo->wp -= PX_BLK + m->len + m->more;
		}
		/* the blocks stay dirty and unmapped: promised again, for the retry */
		fs->wb_promised -= s->promised;
		s->promised = 0;
		ff_mutex_unlock(&fs->ns);
		ff_mutex_unlock(&s->mu);
		write_failed(fs);
		return 0;
	}
	ff_mutex_lock(&fs->ns);
	zo->inflight--;
	inflight_done_locked(fs, zo);
	fs->wb_promised -= s->promised;
	s->promised = 0;
	dseq = s->dseq;
	if (dseq > zo->mtime)
		zo->mtime = dseq;
	if (!i->freed) {
		const struct px_piece *last = &s->piece[s->npiece - 1];
		uint64_t end = last->off + last->len, need = i->last_rseq, at = landed_at;
		uint64_t meta = i->meta_rseq;
		bool times = px_stamp_ino == i->ino && i->attr_dirty;

		lim = wsize_lim_locked(i, flags & FF_MAPW_SYNC);
		size = end < lim ? end : lim;
		if (size < i->disk_size)
			size = i->disk_size;
		/* the pieces of one write (px_more), one record each, committed as one */
		for (uint32_t k = 0; k < s->npiece; k++) {
			rec_extent(&b, i->ino, s->piece[k].off, s->piece[k].len, at, dseq, size);
			at += s->piece[k].len;
		}
		/*
		 * The times its header carries, when no INODE record has them yet
		 * (once a clock tick): whoever commits the log commits this
		 * record, and a mount then applies no header of it. Not a record
		 * a sync write must see durable first (meta_rseq), nor one fsync
		 * commits (the header has the times, the mount applies it).
		 */
		if (times)
			rec_inode(&b, i, size, 0);
		ret = op_commit_locked(fs, &b, &seq);
		if (!ret && times) {
			i->attr_dirty = false;
			i->meta_rseq = meta;
		}
		/* the extent holds the room the blocks' delayed allocation kept for them */
		for (uint32_t k = 0; k < s->npiece && !ret; k++)
			da_del_locked(fs, i, s->piece[k].off,
				      ff_round_up(s->piece[k].off + s->piece[k].len, PX_BLK));
		/*
		 * The header written with the data says what this record says, and
		 * a mount rolls it forward: fsync need not commit it (a sync write
		 * never did), the device flush after the commit is enough.
		 */
		i->last_rseq = need;
		if (!ret && !zo->seq)
			defrag_note_locked(fs, i);
		if (!ret)
			meta_note_locked(fs, i);
	}
	ff_mutex_unlock(&fs->ns);
	atomic_fetch_add(&fs->st_pieces, s->npiece - 1);
	ff_mutex_unlock(&s->mu);
	free(b.p);
	atomic_fetch_add(&fs->st_hdr_writes, 1);
	log_maybe_commit(fs);
	return ret;
}

/* fsync's commit point: the size and times, then every record about the inode. */
static int px_commit(void *fs_inode, bool datasync)
{
	struct px_inode *i = fs_inode;
	struct px_fs *fs = i->fs;
	struct px_buf b = {0};
	uint64_t seq, target;
	int ret = 0;

	if (fs->ro)
		return 0;
	if (atomic_load(&fs->shut))
		return -EIO;
	ff_mutex_lock(&fs->ns);
	if (!i->freed && (i->disk_size != i->size || (!datasync && i->attr_dirty))) {
		rec_inode(&b, i, i->size, 0);
		ret = op_commit_locked(fs, &b, &seq);
		i->attr_dirty = false;
	}
	target = i->last_rseq;
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	if (ret)
		return ret;
	return log_commit(fs, target);
}

static const struct ff_cache_ops px_cache_ops = {
	.map_read = px_map_read,
	.map_write = px_map_write,
	.write_done = px_write_done,
	.commit = px_commit,
	.seal = px_seal,
	.more = px_more,
};

/* ---- attributes ---- */

/* st_blocks: mapped and reserved blocks, and those buffered writes promised (delalloc) */
static uint64_t blocks_of(const struct px_inode *i)
{
	return (i->da_blk * PX_BLK + i->ext_bytes) / 512;
}

/* i's attributes, for a caller outside; its times are then seen (write_stamp_locked) */
static void fill_stat(struct px_inode *i, struct stat *st)
{
	i->times_seen = true;
	memset(st, 0, sizeof(*st));
	st->st_ino = i->ino;
	st->st_mode = i->mode;
	st->st_nlink = i->nlink;
	st->st_uid = i->uid;
	st->st_gid = i->gid;
	st->st_rdev = (dev_t)i->rdev;
	st->st_size = i->dir ? PX_BLK : (off_t)i->size;
	st->st_blksize = PX_BLK;
	st->st_blocks = i->dir ? PX_BLK / 512 : (blkcnt_t)blocks_of(i);
	st->st_atim = i->atime;
	st->st_mtim = i->mtime;
	st->st_ctim = i->ctime;
}

static int check_name(const char *name, size_t *n)
{
	*n = strlen(name);
	if (!*n)
		return -ENOENT;
	if (*n > PX_NAME_MAX)
		return -ENAMETOOLONG;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

/* The directory dir, alive. Caller holds ns. */
static int dir_get_locked(struct px_fs *fs, uint64_t dir, struct px_inode **out)
{
	struct px_inode *d;

	ff_assert_held(&fs->ns);
	d = iget_locked(fs, dir);
	if (!d)
		return -ENOENT;
	if (!d->dir)
		return -ENOTDIR;
	if (!d->nlink)
		return -ENOENT;
	*out = d;
	return 0;
}

/* Queue IFREE for an inode nobody names, looks up or has open. Caller holds ns. */
static void maybe_free_locked(struct px_fs *fs, struct px_inode *i)
{
	struct px_buf b = {0};
	uint64_t seq;

	ff_assert_held(&fs->ns);
	if (i->freed || i->nlink || i->nlookup || i->nopen || i->ino == PX_ROOT_INO || fs->ro)
		return;
	rec_ifree(&b, i->ino);
	(void)op_commit_locked(fs, &b, &seq);
	free(b.p);
}

static uint64_t px_root_ino(const struct ff_fs *gfs)
{
	(void)gfs;
	return PX_ROOT_INO;
}

static int px_lookup(struct ff_fs *gfs, uint64_t dir, const char *name, struct stat *st)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *d, *i;
	struct px_dent *e;
	size_t n;
	int ret = check_name(name, &n);

	if (ret == -EINVAL)
		ret = -ENOENT;
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	ret = dir_get_locked(fs, dir, &d);
	if (ret)
		goto out;
	e = dir_find(d->dir, name, n);
	i = e ? iget_locked(fs, e->ino) : NULL;
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	i->nlookup++;
	fill_stat(i, st);
out:
	ff_mutex_unlock(&fs->ns);
	return ret;
}

static void px_forget(struct ff_fs *gfs, uint64_t ino, uint64_t nlookup)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i) {
		i->nlookup -= nlookup < i->nlookup ? nlookup : i->nlookup;
		maybe_free_locked(fs, i);
	}
	ff_mutex_unlock(&fs->ns);
	reap(fs);
}

static int px_getattr(struct ff_fs *gfs, uint64_t ino, struct stat *st)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	int ret = 0;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i)
		fill_stat(i, st);
	else
		ret = -ENOENT;
	ff_mutex_unlock(&fs->ns);
	return ret;
}

static int px_readdir(struct ff_fs *gfs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		      struct stat *st, uint64_t *next)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *d, *i;
	struct px_dent *e;
	int ret;

	ff_mutex_lock(&fs->ns);
	d = iget_locked(fs, dir);
	if (!d || !d->dir) {
		ret = d ? -ENOTDIR : -ENOENT;
		goto out;
	}
	e = dir_after(d->dir, cookie);
	if (!e) {
		ret = -ENOENT;
		goto out;
	}
	if (namelen < (size_t)e->nlen + 1) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	memcpy(name, e->name, e->nlen + 1);
	i = iget_locked(fs, e->ino);
	if (i) {
		fill_stat(i, st);
	} else {
		memset(st, 0, sizeof(*st));
		st->st_ino = e->ino;
	}
	*next = e->cookie;
	ret = 0;
out:
	ff_mutex_unlock(&fs->ns);
	return ret;
}

/*
 * Make a node (any type) named name in dir: its INODE, the entry, the
 * parent's times (and link count for a directory) in one group. Owner from
 * cr; the group and a directory's setgid bit from a setgid parent.
 */
static int make_node(struct px_fs *fs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		     const char *target, const struct ff_cred *cr, bool open, struct stat *st)
{
	struct px_inode *d, *i, tmp, td;
	struct px_buf b = {0};
	struct timespec now = now_ts(fs);
	uint64_t ino, seq;
	size_t n;
	int ret;

	ret = px_writable(fs);
	if (ret)
		return ret;
	ret = check_name(name, &n);
	if (ret == -EINVAL || ret == -ENOENT)
		ret = -EEXIST;
	if (ret)
		return ret;
	if (target && strlen(target) > PX_SYMLINK_MAX)
		return -ENAMETOOLONG;
	ff_mutex_lock(&fs->ns);
	ret = dir_get_locked(fs, dir, &d);
	if (ret)
		goto out;
	if (dir_find(d->dir, name, n)) {
		ret = -EEXIST;
		goto out;
	}
	ino = fs->next_ino;
	memset(&tmp, 0, sizeof(tmp));
	tmp.ino = ino;
	tmp.mode = mode;
	tmp.uid = cr ? cr->uid : 0;
	tmp.gid = cr ? cr->gid : 0;
	if (d->mode & S_ISGID) {
		tmp.gid = d->gid;
		if (S_ISDIR(mode))
			tmp.mode |= S_ISGID;
	}
	tmp.nlink = S_ISDIR(mode) ? 2 : 1;
	tmp.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? (uint64_t)rdev : 0;
	tmp.atime = tmp.mtime = tmp.ctime = tmp.btime = now;
	if (target) {
		tmp.target = (char *)target;
		tmp.tlen = (uint32_t)strlen(target);
	}
	rec_inode(&b, &tmp, tmp.tlen, 0);
	rec_dirent_add(&b, dir, ino, d->dir->next_cookie, name, n);
	inode_rec_copy(&td, d);
	td.mtime = td.ctime = now;
	if (S_ISDIR(mode))
		td.nlink++;
	rec_inode(&b, &td, d->disk_size, 0);
	ret = meta_room_locked(fs, b.len);
	if (!ret)
		ret = op_commit_locked(fs, &b, &seq);
	if (ret)
		goto out;
	i = iget_locked(fs, ino);
	if (!i) {
		ret = -EIO;
		goto out;
	}
	i->new_rseq = seq;
	i->nlookup++;
	if (open)
		i->nopen++;
	fill_stat(i, st);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

static int px_mknod(struct ff_fs *gfs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		    const struct ff_cred *cr, struct stat *st)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return make_node(px_of(gfs), dir, name, mode, rdev, NULL, cr, false, st);
}

static int px_mkdir(struct ff_fs *gfs, uint64_t dir, const char *name, mode_t mode,
		    const struct ff_cred *cr, struct stat *st)
{
	return make_node(px_of(gfs), dir, name, S_IFDIR | (mode & 07777), 0, NULL, cr, false, st);
}

static int px_symlink(struct ff_fs *gfs, uint64_t dir, const char *name, const char *target,
		      const struct ff_cred *cr, struct stat *st)
{
	if (!*target)
		return -ENOENT;
	return make_node(px_of(gfs), dir, name, S_IFLNK | 0777, 0, target, cr, false, st);
}

static int px_create(struct ff_fs *gfs, uint64_t dir, const char *name, mode_t mode, int flags,
		     const struct ff_cred *cr, struct stat *st, unsigned *open_flags)
{
	(void)flags;
	if (open_flags)
		*open_flags = 0;
	return make_node(px_of(gfs), dir, name, S_IFREG | (mode & 07777), 0, NULL, cr, true, st);
}

static ssize_t px_readlink(struct ff_fs *gfs, uint64_t ino, char *buf, size_t len)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	ssize_t ret;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i)
		ret = -ENOENT;
	else if (!S_ISLNK(i->mode))
		ret = -EINVAL;
	else {
		ret = i->tlen < len ? i->tlen : (ssize_t)len;
		memcpy(buf, i->target, (size_t)ret);
	}
	ff_mutex_unlock(&fs->ns);
	return ret;
}

static int px_link(struct ff_fs *gfs, uint64_t ino, uint64_t newdir, const char *newname,
		   struct stat *st)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *d, *i, ti, td;
	struct px_buf b = {0};
	struct timespec now = now_ts(fs);
	uint64_t seq;
	size_t n;
	int ret;

	ret = px_writable(fs);
	if (ret)
		return ret;
	ret = check_name(newname, &n);
	if (ret == -EINVAL || ret == -ENOENT)
		ret = -EEXIST;
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (i->dir) {
		ret = -EPERM;
		goto out;
	}
	if (!i->nlink) {
		ret = -ENOENT;
		goto out;
	}
	if (i->nlink >= PX_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = dir_get_locked(fs, newdir, &d);
	if (ret)
		goto out;
	if (dir_find(d->dir, newname, n)) {
		ret = -EEXIST;
		goto out;
	}
	inode_rec_copy(&ti, i);
	ti.nlink++;
	ti.ctime = now;
	rec_inode(&b, &ti, i->disk_size, 0);
	rec_dirent_add(&b, newdir, ino, d->dir->next_cookie, newname, n);
	inode_rec_copy(&td, d);
	td.mtime = td.ctime = now;
	rec_inode(&b, &td, d->disk_size, 0);
	ret = meta_room_locked(fs, b.len);
	if (!ret)
		ret = op_commit_locked(fs, &b, &seq);
	if (ret)
		goto out;
	i->nlookup++;
	fill_stat(i, st);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

static int remove_entry(struct px_fs *fs, uint64_t dir, const char *name, bool isdir)
{
	struct px_inode *d, *i, ti, td;
	struct px_buf b = {0};
	struct timespec now = now_ts(fs);
	struct px_dent *e;
	uint64_t seq;
	size_t n;
	int ret;

	ret = px_writable(fs);
	if (ret)
		return ret;
	ret = check_name(name, &n);
	if (ret == -EINVAL)
		ret = isdir ? (!strcmp(name, ".") ? -EINVAL : -ENOTEMPTY) : -EISDIR;
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	ret = dir_get_locked(fs, dir, &d);
	if (ret)
		goto out;
	e = dir_find(d->dir, name, n);
	i = e ? iget_locked(fs, e->ino) : NULL;
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (isdir && !i->dir) {
		ret = -ENOTDIR;
		goto out;
	}
	if (!isdir && i->dir) {
		ret = -EISDIR;
		goto out;
	}
	if (isdir && i->dir->nlive) {
		ret = -ENOTEMPTY;
		goto out;
	}
	rec_dirent_del(&b, dir, name, n);
	inode_rec_copy(&ti, i);
	ti.nlink = isdir ? 0 : i->nlink - 1;
	ti.ctime = now;
	rec_inode(&b, &ti, i->disk_size, 0);
	inode_rec_copy(&td, d);
	td.mtime = td.ctime = now;
	if (isdir)
		td.nlink--;
	rec_inode(&b, &td, d->disk_size, 0);
	ret = op_commit_locked(fs, &b, &seq);
	if (!ret)
		maybe_free_locked(fs, i);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

static int px_unlink(struct ff_fs *gfs, uint64_t dir, const char *name)
{
	return remove_entry(px_of(gfs), dir, name, false);
}

static int px_rmdir(struct ff_fs *gfs, uint64_t dir, const char *name)
{
	return remove_entry(px_of(gfs), dir, name, true);
}

/* Whether directory a is anc or lies below it. Caller holds ns. */
static bool is_below_locked(struct px_fs *fs, uint64_t a, uint64_t anc)
{
	for (int depth = 0; depth < 4096; depth++) {
		struct px_inode *x;

		if (a == anc)
			return true;
		if (a == PX_ROOT_INO)
			return false;
		x = iget_locked(fs, a);
		if (!x || !x->dir)
			return false;
		a = x->dir->parent;
	}
	return true;
}

/*
 * rename(2) and renameat2's flags. RENAME_WHITEOUT (overlayfs's, as ext4
 * and XFS have it): in the same operation, a whiteout (a character device
 * 0/0, mode 0, owned by cr) takes the old name, so after a crash either the
 * name holds the old file and the target is unchanged, or the name holds
 * the whiteout and the target the file.
 */
static int px_rename(struct ff_fs *gfs, uint64_t dir, const char *name, uint64_t newdir,
		     const char *newname, unsigned flags, const struct ff_cred *cr)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *d1, *d2, *i1, *i2 = NULL, t;
	struct px_dent *e1, *e2;
	struct px_buf b = {0};
	struct timespec now = now_ts(fs);
	uint64_t seq, c1, c2;
	int dl1 = 0, dl2 = 0;
	size_t n1, n2;
	int ret;

	ret = px_writable(fs);
	if (ret)
		return ret;
	if ((flags & ~(FF_RENAME_NOREPLACE | FF_RENAME_EXCHANGE | FF_RENAME_WHITEOUT)) ||
	    (flags & FF_RENAME_NOREPLACE && flags & FF_RENAME_EXCHANGE) ||
	    (flags & FF_RENAME_WHITEOUT && flags & FF_RENAME_EXCHANGE))
		return -EINVAL;
	ret = check_name(name, &n1);
	if (!ret)
		ret = check_name(newname, &n2);
	if (ret == -EINVAL)
		ret = -EBUSY;
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	ret = dir_get_locked(fs, dir, &d1);
	if (!ret)
		ret = dir_get_locked(fs, newdir, &d2);
	if (ret)
		goto out;
	e1 = dir_find(d1->dir, name, n1);
	i1 = e1 ? iget_locked(fs, e1->ino) : NULL;
	if (!i1) {
		ret = -ENOENT;
		goto out;
	}
	e2 = dir_find(d2->dir, newname, n2);
	if (e2)
		i2 = iget_locked(fs, e2->ino);
	if (e2 && !i2) {
		ret = -EIO;
		goto out;
	}
	if ((flags & FF_RENAME_NOREPLACE) && i2) {
		ret = -EEXIST;
		goto out;
	}
	if ((flags & FF_RENAME_EXCHANGE) && !i2) {
		ret = -ENOENT;
		goto out;
	}
	if (i2 == i1) {
		ret = 0; /* two names of one inode: nothing to do, as POSIX says */
		goto out;
	}
	if (i1->dir && d2 != d1 && is_below_locked(fs, newdir, i1->ino)) {
		ret = -EINVAL;
		goto out;
	}
	if ((flags & FF_RENAME_EXCHANGE) && i2->dir && d2 != d1 &&
	    is_below_locked(fs, dir, i2->ino)) {
		ret = -EINVAL;
		goto out;
	}
	if (i2 && !(flags & FF_RENAME_EXCHANGE)) {
		if (i1->dir && !i2->dir) {
			ret = -ENOTDIR;
			goto out;
		}
		if (!i1->dir && i2->dir) {
			ret = -EISDIR;
			goto out;
		}
		if (i2->dir && i2->dir->nlive) {
			ret = -ENOTEMPTY;
			goto out;
		}
	}
	c1 = d1->dir->next_cookie;
	c2 = d2 == d1 ? c1 + 1 : d2->dir->next_cookie;
	rec_dirent_del(&b, dir, name, n1);
	if (i2)
		rec_dirent_del(&b, newdir, newname, n2);
	if (flags & FF_RENAME_EXCHANGE) {
		rec_dirent_add(&b, dir, i2->ino, c1, name, n1);
		rec_dirent_add(&b, newdir, i1->ino, c2, newname, n2);
		if (d1 != d2) {
			if (i1->dir)
				dl1--, dl2++;
			if (i2->dir)
				dl2--, dl1++;
		}
		inode_rec_copy(&t, i2);
		t.ctime = now;
		rec_inode(&b, &t, i2->disk_size, 0);
	} else {
		if (i2) {
			inode_rec_copy(&t, i2);
			t.nlink = i2->dir ? 0 : i2->nlink - 1;
			t.ctime = now;
			rec_inode(&b, &t, i2->disk_size, 0);
			if (i2->dir)
				dl2--;
		}
		rec_dirent_add(&b, newdir, i1->ino, c2, newname, n2);
		if (i1->dir && d1 != d2)
			dl1--, dl2++;
		if (flags & FF_RENAME_WHITEOUT) {
			memset(&t, 0, sizeof(t));
			t.ino = fs->next_ino;
			t.mode = S_IFCHR;
			t.uid = cr ? cr->uid : 0;
			t.gid = cr ? cr->gid : 0;
			t.nlink = 1;
			t.atime = t.mtime = t.ctime = t.btime = now;
			rec_inode(&b, &t, 0, 0);
			/* after the new name's cookie when both are in one directory */
			rec_dirent_add(&b, dir, t.ino, d1 == d2 ? c2 + 1 : c1, name, n1);
		}
	}
	inode_rec_copy(&t, i1);
	t.ctime = now;
	rec_inode(&b, &t, i1->disk_size, 0);
	inode_rec_copy(&t, d1);
	t.mtime = t.ctime = now;
	t.nlink = (uint32_t)((int)t.nlink + dl1 + (d1 == d2 ? dl2 : 0));
	rec_inode(&b, &t, d1->disk_size, 0);
	if (d2 != d1) {
		inode_rec_copy(&t, d2);
		t.mtime = t.ctime = now;
		t.nlink = (uint32_t)((int)t.nlink + dl2);
		rec_inode(&b, &t, d2->disk_size, 0);
	}
	/* a whiteout is an inode more: the room creates need */
	if (flags & FF_RENAME_WHITEOUT)
		ret = meta_room_locked(fs, b.len);
	if (!ret)
		ret = op_commit_locked(fs, &b, &seq);
	if (!ret && i2 && !(flags & FF_RENAME_EXCHANGE))
		maybe_free_locked(fs, i2);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

/* ---- data ---- */

/*
 * The cache inode of a regular file, made at its first use: a directory of a
 * million files never read costs no cache inodes. Once made it stays until the
 * inode is removed, so a thread that saw it set under ns may use it unlocked.
 */
static int ci_ensure_locked(struct px_fs *fs, struct px_inode *i)
{
	ff_assert_held(&fs->ns);
	if (i->ci)
		return 0;
	i->ci = ff_cache_inode_new(fs->cache, i);
	if (!i->ci)
		return -ENOMEM;
	ff_cache_inode_set_size(i->ci, i->size);
	return 0;
}

static struct px_inode *file_get(struct px_fs *fs, uint64_t ino, int *err)
{
	struct px_inode *i;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	*err = !i ? -ENOENT : S_ISDIR(i->mode) ? -EISDIR : !S_ISREG(i->mode) ? -EINVAL : 0;
	if (!*err)
		*err = ci_ensure_locked(fs, i);
	ff_mutex_unlock(&fs->ns);
	return *err ? NULL : i;
}

/*
 * ---- delayed allocation ----
 *
 * A buffered write leaves dirty blocks that write-back places later, after
 * the write returned. Their room is taken at write time, as XFS takes a
 * delalloc reservation: the cache can neither drop dirty data nor free the
 * memory it holds, so blocks that no write-back can place would fill the
 * cache for good and the next writer would wait for memory without end.
 *
 * A write that dirties blocks no extent maps, no fallocate reservation
 * (PX_UNWRITTEN) covers and no earlier write holds adds them to its inode's
 * delayed allocations (i->da) when they fit beside every other promise of
 * room (promised_locked), costed as fallocate's reservations are
 * (resv_cost_blk: their data headers, zone ends, the collector's zone), in
 * what can be written (avail_blocks_locked). Else the write is cut to the
 * blocks that fit (a short count, as the kernel's write that fills a device)
 * or refused with ENOSPC, before anything is cached. A rewrite of blocks it
 * holds costs nothing more. So every block a write-back writes out of place
 * was counted when it was dirtied, and the write-back does not meet ENOSPC.
 *
 * The blocks leave it, under ns with the change that takes their place: when
 * write_done's extent maps them, when fallocate reserves them (PX_UNWRITTEN
 * holds the room then), and when their cached data is dropped (truncate,
 * punch, the inode's removal). A write-back that fails keeps the blocks dirty
 * for the next fsync to retry, and their room with them. None of it is on the
 * device: a mount starts with none. While a write of promised blocks is in
 * flight, its zone's pointer has taken their room already and its extent is
 * not there yet: the slot counts them (s->promised, fs->wb_promised) so that
 * they are not counted twice meanwhile.
 *
 * Write-through writes (O_SYNC, O_DSYNC, O_DIRECT) dirty nothing: their
 * map_write places the blocks at once and refuses (ENOSPC) what would take
 * the room of the promises (resv_admit_locked).
 */

static uint64_t avail_blocks_locked(struct px_fs *fs);
static uint64_t resv_cost_blk(const struct px_fs *fs, uint64_t blk);

/*
 * Blocks promised room that no write has taken yet: fallocate's reservations
 * and delayed allocations, less what writes in flight place (their zone's
 * pointer counts them already). Caller holds ns.
 */
static uint64_t promised_locked(const struct px_fs *fs)
{
	uint64_t p = fs->resv_blk + fs->da_blk;

	return p > fs->wb_promised ? p - fs->wb_promised : 0;
}

/*
 * The most blocks that may be promised beside the promises there are: the
 * largest x with resv_cost_blk(promised_locked() + x) in
 * avail_blocks_locked(). Caller holds ns.
 */
static uint64_t promise_room_locked(struct px_fs *fs)
{
	uint64_t promised = promised_locked(fs), avail = avail_blocks_locked(fs);
	uint64_t lo = 0, hi = avail + 1;

	ff_assert_held(&fs->ns);
	if (resv_cost_blk(fs, promised) > avail)
		return 0;
	/* resv_cost_blk only grows with its argument: the last x that fits */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (resv_cost_blk(fs, promised + mid) <= avail)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Whether blk blocks fit in what can be written (avail_blocks_locked). The
 * free zones beyond the collector's reserve, counted as they change, answer
 * without a walk of the zone table while the device is far from full: a
 * write's admission costs no walk then. Caller holds ns.
 */
static bool blocks_fit_locked(struct px_fs *fs, uint64_t blk)
{
	uint64_t gcr = (uint64_t)fs->gc_reserve * (fs->zone_size / PX_BLK);

	ff_assert_held(&fs->ns);
	/* free_blk less at most the reserve's rooms is no more than avail_blocks_locked() */
	if (fs->free_blk > gcr + fs->op_blk && blk <= fs->free_blk - gcr - fs->op_blk)
		return true;
	return blk <= avail_blocks_locked(fs);
}

/* Whether need blocks more may be promised (promise_room_locked). Caller holds ns. */
static bool promise_fits_locked(struct px_fs *fs, uint64_t need)
{
	return blocks_fit_locked(fs, resv_cost_blk(fs, promised_locked(fs) + need));
}

/*
 * Blocks of [off, end) (block multiples) that no extent maps or reserves and
 * no delayed allocation holds: what a buffered write of them must promise,
 * and what a write-through of them writes as new data. With pieces, the
 * first at most max of them as ranges (*npieces set), for
 * da_admit_locked. Caller holds ns.
 */
static uint64_t unreserved_blocks_locked(struct px_inode *i, uint64_t off, uint64_t end,
					 struct px_da *pieces, size_t max, size_t *npieces)
{
	uint64_t p = off, n = 0;
	size_t np = 0;

	while (p < end) {
		bool in;
		size_t k = ext_find(i, p, &in), d;
		uint64_t stop;

		if (in) {
			p = i->ext[k].off + i->ext[k].len;
			continue;
		}
		stop = k < i->next && i->ext[k].off < end ? i->ext[k].off : end;
		/* the gap [p, stop) less the delayed allocations in it */
		for (d = da_find(i, p); p < stop; d++) {
			uint64_t a = d < i->nda && i->da[d].off < stop ? i->da[d].off : stop;

			if (a > p) {
				n += (a - p) / PX_BLK;
				if (pieces && np < max)
					pieces[np] = (struct px_da){p, a - p};
				np++;
			}
			p = a < stop ? i->da[d].off + i->da[d].len : stop;
		}
	}
	if (npieces)
		*npieces = np;
	return n;
}

/* GC rounds a write whose blocks do not fit waits for before its short count or ENOSPC */
#define PX_DA_GC_WAITS 6

/* What a write that dirties [off, off+len) holds: the ranges it added to i->da. */
struct da_hold {
	struct px_da *v;
	size_t n;
	struct px_da small[8];
};

/*
 * The blocks a buffered write of [off, off+len) may dirty: its own, or with
 * dirty_granularity=folio every block of the folios it touches up to the
 * file's size or the write's end (a folio is at most max_folio, aligned to
 * its size). Caller holds ns.
 */
static void da_span_locked(struct px_fs *fs, const struct px_inode *i, uint64_t off, uint64_t len,
			   uint64_t *lo, uint64_t *hi)
{
	uint64_t mf = fs->o.cache.max_folio ? fs->o.cache.max_folio : 2u << 20, lim;

	*lo = ff_round_down(off, PX_BLK);
	*hi = ff_round_up(off + len, PX_BLK);
	if (fs->o.cache.dirty_gran != FF_DIRTY_FOLIO)
		return;
	lim = ff_round_up(i->size, PX_BLK) > *hi ? ff_round_up(i->size, PX_BLK) : *hi;
	*lo = ff_round_down(off, mf);
	*hi = ff_round_up(off + len, mf) < lim ? ff_round_up(off + len, mf) : lim;
}

/*
 * Admit a write that dirties [off, off+*len): promise the blocks of its span
 * (da_span_locked) that need it, or as many as fit from the start, cutting
 * *len to the blocks promised (with dirty_granularity=folio all or none: a
 * folio's blocks below the size are dirtied whatever the write's length).
 * The ranges added go to h. io_lock held, ns taken here; may wait for
 * garbage collection rounds. Returns 0, -ENOSPC (nothing fits, nothing
 * promised) or -ENOMEM.
 */
static int da_admit(struct px_fs *fs, struct px_inode *i, uint64_t off, size_t *len,
		    struct da_hold *h)
{
	uint64_t lo, hi, need, room, cut, round;
	size_t np = 0;
	int ret = 0, waits = 0;

	ff_assert_held(&i->io_lock);
again:
	h->v = h->small;
	h->n = 0;
	ff_mutex_lock(&fs->ns);
	if (i->freed)
		goto out_unlock; /* its data goes nowhere (map_write: STORED) */
	da_span_locked(fs, i, off, *len, &lo, &hi);
	need = unreserved_blocks_locked(i, lo, hi, h->small, sizeof(h->small) / sizeof(h->small[0]),
					&np);
	if (!need)
		goto out_unlock;
	if (np > sizeof(h->small) / sizeof(h->small[0])) {
		h->v = malloc(np * sizeof(*h->v));
		if (!h->v) {
			h->v = h->small;
			ret = -ENOMEM;
			goto out_unlock;
		}
		unreserved_blocks_locked(i, lo, hi, h->v, np, &np);
	}
	if (!promise_fits_locked(fs, need) && waits < PX_DA_GC_WAITS && atomic_load(&fs->gc_on) &&
	    !gc_kick(fs, &round)) {
		/*
		 * What the collector is moving counts as room only once it is
		 * done: wait for its round, as a writer at the reserve does
		 * (slot_zone), unless the last one found nothing to reclaim.
		 * It never waits for this io_lock (it skips a busy inode).
		 */
		ff_mutex_unlock(&fs->ns);
		if (h->v != h->small)
			free(h->v);
		waits++;
		(void)gc_wait_round(fs, round);
		goto again;
	}
	/*
	 * A promise costs its worst case (resv_cost_blk: a header per block or
	 * per 16), what the dirty blocks cost once written is far less when
	 * they go out in large runs: near a full device they are written back
	 * first and the write tried again, as ext4 and btrfs flush delayed
	 * allocations before ENOSPC. Then a buffered fill reaches what statfs
	 * shows. The write-backs wait for the collector, which skips a file
	 * whose io_lock is held: they go without it (px_write, px_yield_flush).
	 */
	if (!promise_fits_locked(fs, need) && !px_flushed && px_in_write && fs->da_blk) {
		/* nothing is admitted yet: px_write writes the cache back without the io_lock */
		px_yielded = px_yield_flush = true;
		ret = -ENOSPC;
		goto out_unlock;
	}
	if (!promise_fits_locked(fs, need)) {
		room = fs->o.cache.dirty_gran == FF_DIRTY_FOLIO ? 0 : promise_room_locked(fs);
		/* the first room blocks of the pieces, in file order */
		for (size_t k = 0; k < np; k++) {
			uint64_t nb = h->v[k].len / PX_BLK;

			if (nb >= room) {
				h->v[k].len = room * PX_BLK;
				np = h->v[k].len ? k + 1 : k;
				break;
			}
			room -= nb;
		}
		cut = np ? h->v[np - 1].off + h->v[np - 1].len : lo;
		if (!np || cut <= off) {
			ret = -ENOSPC;
			goto out_unlock;
		}
		if (cut - off < *len)
			*len = (size_t)(cut - off);
	}
	for (; h->n < np; h->n++) {
		ret = da_add_locked(fs, i, h->v[h->n].off, h->v[h->n].off + h->v[h->n].len);
		if (ret)
			break;
	}
	for (; ret && h->n; h->n--)
		da_del_locked(fs, i, h->v[h->n - 1].off, h->v[h->n - 1].off + h->v[h->n - 1].len);
out_unlock:
	ff_mutex_unlock(&fs->ns);
	if (ret && h->v != h->small) {
		free(h->v);
		h->v = h->small;
	}
	return ret;
}

/* Give back the promise of [off, end) of i (da_settle). io_lock held, ns taken here. */
static void da_giveback(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t end)
{
	ff_mutex_lock(&fs->ns);
	da_del_locked(fs, i, off, end);
	ff_mutex_unlock(&fs->ns);
}

/*
 * After the cache took the bytes [off, off+written) of an admitted write
 * (written <= 0: none): the blocks it promised that nothing dirtied are
 * given back. No block past the bytes' own, or past their folios with
 * dirty_granularity=folio, is dirty; the blocks of those folios around the
 * bytes are when their folio was that large, which the cache tells. Only
 * writers dirty blocks, and the caller's io_lock keeps them out. io_lock
 * held.
 */
static void da_settle(struct px_fs *fs, struct px_inode *i, struct da_hold *h, uint64_t off,
		      ssize_t written)
{
	uint64_t mf = fs->o.cache.max_folio ? fs->o.cache.max_folio : 2u << 20;
	uint64_t wlo = 0, whi = 0, from = 0;

	ff_assert_held(&i->io_lock);
	if (written > 0) {
		wlo = ff_round_down(off, PX_BLK);
		whi = ff_round_up(off + (uint64_t)written, PX_BLK);
		from = fs->o.cache.dirty_gran == FF_DIRTY_FOLIO
			       ? ff_round_up(off + (uint64_t)written, mf)
			       : whi;
	}
	for (size_t k = 0; k < h->n; k++) {
		uint64_t p = h->v[k].off, end = h->v[k].off + h->v[k].len;

		while (p < end) {
			if (p >= from) {
				da_giveback(fs, i, p, end);
				break;
			}
			if (p >= wlo && p < whi) {
				p = whi < end ? whi : end;
				continue;
			}
			/* a block of a folio around the bytes (dirty_granularity=folio) */
			if (!ff_cache_range_dirty(i->ci, p, PX_BLK))
				da_giveback(fs, i, p, p + PX_BLK);
			p += PX_BLK;
		}
	}
	if (h->v != h->small)
		free(h->v);
}

/*
 * ff_cache_write for the posix format: a write that dirties blocks (buffered,
 * or any with sync_mode=writeback) is admitted first (da_admit) and may come
 * back short or with ENOSPC; a write-through is the cache's alone. io_lock
 * held. Returns bytes or -errno.
 */
static ssize_t px_cache_write(struct px_fs *fs, struct px_inode *i, const void *buf, size_t len,
			      uint64_t off, unsigned wflags)
{
	bool through = wflags & (FF_CW_SYNC | FF_CW_DSYNC | FF_CW_DIRECT);
	struct da_hold h;
	ssize_t r;
	int ret;

	if (through && fs->o.cache.sync_mode != FF_SYNC_WRITEBACK)
		return ff_cache_write(i->ci, buf, len, off, wflags);
	ret = da_admit(fs, i, off, &len, &h);
	if (ret)
		return ret;
	r = ff_cache_write(i->ci, buf, len, off, wflags);
	/*
	 * A buffered write's error means nothing copied; sync_mode=writeback's
	 * may come after the copy, from its write-back: its blocks keep theirs.
	 */
	if (r < 0 && through)
		h.n = 0;
	da_settle(fs, i, &h, off, r);
	return r;
}

/*
 * Zero the bytes past s in s's block before the file grows past them (they
 * may hold what a truncate cut off). wflags FF_CW_DSYNC when the record that
 * moves the size may be durable before any later write-back (a truncate, a
 * sync write): the block's old bytes on the device would otherwise come back
 * after a crash. io_lock held.
 */
static int zero_tail(struct px_inode *i, uint64_t s, unsigned wflags)
{
	static const uint8_t zeros[PX_BLK];
	struct px_fs *fs = i->fs;
	bool in;
	ssize_t r;

	if (!(s % PX_BLK))
		return 0;
	ff_mutex_lock(&fs->ns);
	ext_find(i, ff_round_down(s, PX_BLK), &in);
	ff_mutex_unlock(&fs->ns);
	if (!in)
		return 0;
	r = px_cache_write(fs, i, zeros, PX_BLK - s % PX_BLK, s, wflags);
	ff_cache_inode_set_size(i->ci, s);
	return r < 0 ? (int)r : 0;
}

/*
 * The first growth of i since the mount, from its size s: the bytes past s
 * in its block may be on the device from a write whose size a crash lost (an
 * O_DIRECT write or a write-back in place past the end, a rolled-forward
 * header's block past the size it carries). Zeroed in the cache alone, they
 * would come back after the next crash, were a larger size made durable (a
 * sync write, a write-back further on) before that block's write-back: so
 * they are zeroed durably, once. The bytes a later growth finds there are
 * this mount's, written while the file was that long, or zeroed by a
 * truncate (zero_tail) when it was cut. Costs one block write per file and
 * mount, none when s is a block's end. io_lock held.
 */
static int grow_tail(struct px_inode *i, uint64_t s)
{
	int ret = zero_tail(i, s, FF_CW_DSYNC);

	if (!ret) {
		ff_mutex_lock(&i->fs->ns);
		i->tail_ok = true;
		ff_mutex_unlock(&i->fs->ns);
	}
	return ret;
}

/*
 * Drop the cache's blocks past size, and the room promised to the dirty
 * ones among them: they are gone (a truncate down), or were never the
 * file's (a failed write past the size). io_lock held.
 */
static void cache_cut(struct px_fs *fs, struct px_inode *i, uint64_t size)
{
	ff_cache_invalidate_begin(i->ci);
	ff_cache_truncate(i->ci, size);
	ff_mutex_lock(&fs->ns);
	da_del_locked(fs, i, ff_round_up(size, PX_BLK), UINT64_MAX);
	ff_mutex_unlock(&fs->ns);
	ff_cache_invalidate_end(i->ci);
}

/* Set the size to size (truncate either way). io_lock held. */
static int truncate_locked(struct px_fs *fs, struct px_inode *i, uint64_t size)
{
	struct px_buf b = {0};
	struct px_inode t;
	uint64_t old, seq;
	int ret = 0;

	ff_assert_held(&i->io_lock);
	ff_mutex_lock(&fs->ns);
	old = i->size;
	ff_mutex_unlock(&fs->ns);
	if (size < old) {
		cache_cut(fs, i, size);
		/*
		 * The last block's bytes beyond the new size, zeroed on the device
		 * before the record (as XFS writes its zeroed tail page back at a
		 * truncate): a later write may cover them only in the cache while a
		 * sync write makes a larger size durable, and a crash would then
		 * show the cut-off bytes.
		 */
		ret = zero_tail(i, size, FF_CW_DSYNC);
		if (ret)
			return ret;
	} else if (size > old) {
		ret = grow_tail(i, old);
		if (ret)
			return ret;
	}
	ff_mutex_lock(&fs->ns);
	inode_rec_copy(&t, i);
	t.dseq_floor = fs->next_dseq - 1; /* headers written before this record */
	t.mtime = t.ctime = now_ts(fs);
	rec_inode(&b, &t, size, PX_INODE_TRUNC);
	if (size > old) {
		/*
		 * The record drops every extent beyond the new size; reservations
		 * there (fallocate KEEP_SIZE) stay, as XFS keeps them, re-made in
		 * the same operation.
		 */
		uint64_t cut = ff_round_up(size, PX_BLK);

		for (size_t k = 0; k < i->next; k++) {
			struct px_ext *e = &i->ext[k];

			if (e->dev == PX_UNWRITTEN && e->off + e->len > cut) {
				uint64_t from = e->off > cut ? e->off : cut;

				rec_extent(&b, i->ino, from, e->off + e->len - from, PX_UNWRITTEN,
					   0, 0);
			}
		}
	}
	ret = op_commit_locked(fs, &b, &seq);
	ff_mutex_unlock(&fs->ns);
	ff_cache_inode_set_size(i->ci, size);
	free(b.p);
	return ret;
}

static int px_setattr(struct ff_fs *gfs, uint64_t ino, const struct stat *st, unsigned which)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i, t;
	struct px_buf b = {0};
	struct timespec now;
	uint64_t seq;
	bool times;
	int ret = 0;

	ret = px_writable(fs);
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	ret = !i ? -ENOENT : i->dir ? -EISDIR : !S_ISREG(i->mode) ? -EINVAL : 0;
	if (!ret && (which & FF_SET_SIZE))
		ret = ci_ensure_locked(fs, i);
	ff_mutex_unlock(&fs->ns);
	if (!i)
		return -ENOENT;
	if (which & FF_SET_SIZE) {
		if (ret)
			return ret;
		if (st->st_size < 0)
			return -EINVAL;
		/* no size past the largest file a write can make */
		if ((uint64_t)st->st_size > PX_MAX_FILE)
			return -EFBIG;
		ff_mutex_lock(&i->io_lock);
		ret = truncate_locked(fs, i, (uint64_t)st->st_size);
		ff_mutex_unlock(&i->io_lock);
		if (ret)
			return px_err(fs, ret);
	}
	if (!(which & ~FF_SET_SIZE))
		return 0;
	/* a new mtime does not come between a write's stamp and its record (px_stamp_ino) */
	times = which & (FF_SET_MTIME | FF_SET_MTIME_NOW);
	if (times)
		ff_mutex_lock(&i->io_lock);
	now = now_ts(fs);
	ff_mutex_lock(&fs->ns);
	inode_rec_copy(&t, i);
	if (which & FF_SET_MODE)
		t.mode = (i->mode & S_IFMT) | (st->st_mode & 07777);
	if (which & FF_SET_UID)
		t.uid = st->st_uid;
	if (which & FF_SET_GID)
		t.gid = st->st_gid;
	if (which & FF_SET_ATIME)
		t.atime = st->st_atim;
	if (which & FF_SET_ATIME_NOW)
		t.atime = now;
	if (which & FF_SET_MTIME)
		t.mtime = st->st_mtim;
	if (which & FF_SET_MTIME_NOW)
		t.mtime = now;
	t.ctime = (which & FF_SET_CTIME) ? st->st_ctim : now;
	rec_inode(&b, &t, i->disk_size, 0);
	ret = op_commit_locked(fs, &b, &seq);
	ff_mutex_unlock(&fs->ns);
	if (times)
		ff_mutex_unlock(&i->io_lock);
	free(b.p);
	reap(fs);
	return ret;
}

static int px_open(struct ff_fs *gfs, uint64_t ino, int flags, unsigned *open_flags)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	int ret = 0;

	if (open_flags)
		*open_flags = 0;
	if ((flags & O_ACCMODE) != O_RDONLY) {
		ret = px_writable(fs);
		if (ret)
			return ret;
	}
	bool reg = false;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i) {
		i->nopen++;
		reg = S_ISREG(i->mode);
		if (reg && (flags & O_TRUNC))
			ret = ci_ensure_locked(fs, i);
	}
	ff_mutex_unlock(&fs->ns);
	if (!i)
		return -ENOENT;
	if (!ret && (flags & O_TRUNC) && reg && (flags & O_ACCMODE) != O_RDONLY) {
		ff_mutex_lock(&i->io_lock);
		if (i->size)
			ret = truncate_locked(fs, i, 0);
		ff_mutex_unlock(&i->io_lock);
	}
	return ret;
}

static int px_release(struct ff_fs *gfs, uint64_t ino, int flags)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;

	(void)flags;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i) {
		if (i->nopen)
			i->nopen--;
		maybe_free_locked(fs, i);
	}
	ff_mutex_unlock(&fs->ns);
	reap(fs);
	return 0;
}

static ssize_t px_read(struct ff_fs *gfs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	uint64_t size;
	int err;

	i = file_get(fs, ino, &err);
	if (!i)
		return err;
	ff_mutex_lock(&fs->ns);
	size = i->size;
	/*
	 * relatime (the default): atime moves when older than mtime/ctime or a
	 * day old; strictatime: always; noatime: never. Logged with the next
	 * INODE.
	 */
	if (!fs->ro && fs->o.atime != FF_ATIME_NONE) {
		struct timespec now = coarse_ts(fs);

		if ((fs->o.atime == FF_ATIME_STRICT || i->atime.tv_sec < i->mtime.tv_sec ||
		     (i->atime.tv_sec == i->mtime.tv_sec && i->atime.tv_nsec <= i->mtime.tv_nsec) ||
		     i->atime.tv_sec < i->ctime.tv_sec || now.tv_sec - i->atime.tv_sec > 86400) &&
		    ts_ns(now) != ts_ns(i->atime)) {
			i->atime = now;
			attr_dirty_locked(fs, i);
		}
	}
	ff_mutex_unlock(&fs->ns);
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	/*
	 * FF_CR_EOF: clamped again to the cache's size under the invalidate
	 * lock. A truncate down sets that size as it empties the cache, but
	 * drops the extents only when its record commits, after; a read that
	 * took the size before the truncate would otherwise find the old
	 * extents and cache the cut-off blocks, which a later growth of the
	 * file would show.
	 */
	return ff_cache_read(i->ci, buf, len, off, FF_CR_EOF);
}

/*
 * Before a buffered write takes its inode's io_lock: while its blocks (at
 * most len's, and a partial block at each end) cannot be promised, wait for
 * collector rounds, holding nothing. The admission under io_lock
 * (px_cache_write) waits too, but the collector skips an inode whose io_lock
 * is held, so room held in this inode's own blocks would never come back
 * there: the write would end short while statfs shows the space free.
 */
static void da_throttle(struct px_fs *fs, uint64_t len)
{
	uint64_t need = len / PX_BLK + 2;

	for (int tries = 0; tries < PX_DA_GC_WAITS && atomic_load(&fs->gc_on); tries++) {
		uint64_t round;
		bool fits;

		ff_mutex_lock(&fs->ns);
		fits = promise_fits_locked(fs, need);
		ff_mutex_unlock(&fs->ns);
		if (fits || gc_kick(fs, &round) || gc_wait_round(fs, round) < 0)
			return;
	}
}

/*
 * Before a write of i takes its io_lock: when the metadata is past
 * PX_META_WAIT, wait for the defragmentation passes queued, i among them
 * (a few passes), so that writers cutting files into extents go no faster
 * than the passes joining them; past the room, for more of them while
 * there are any (px_write refuses what still does not fit). Holding
 * nothing, as gc_throttle.
 */
static void meta_throttle(struct px_fs *fs, struct px_inode *i)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t from;
		bool over, queued;

		ff_mutex_lock(&fs->ns);
		if (!meta_above_locked(fs, PX_META_WAIT)) {
			ff_mutex_unlock(&fs->ns);
			return;
		}
		over = meta_above_locked(fs, PX_META_FULL);
		if (!i->freed)
			meta_note_locked(fs, i);
		ff_mutex_unlock(&fs->ns);
		ff_mutex_lock(&fs->gc_mu);
		from = fs->dq_passes;
		queued = fs->dq_n || fs->dq_busy;
		while (fs->gc_on && (fs->dq_n || fs->dq_busy) && fs->dq_passes - from < 4)
			ff_cond_wait(&fs->gc_done_cv, &fs->gc_mu);
		ff_mutex_unlock(&fs->gc_mu);
		if (!queued || !over)
			return;
	}
}

/*
 * Whether a write of [off, off+len) of i would go in place, as far as its
 * mapping tells now (px_map_write): every block mapped by a written extent
 * in conventional space. Caller holds ns.
 */
static bool inplace_range_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len)
{
	uint64_t pos = off, end = off + len;
	bool in;

	for (size_t k = ext_find(i, pos, &in); pos < end; k++) {
		const struct px_ext *e = &i->ext[k];

		if (k >= i->next || e->off > pos || e->dev == PX_UNWRITTEN ||
		    fs->zones[zone_of(fs, e->dev)].seq)
			return false;
		pos = e->off + e->len;
	}
	return true;
}

static ssize_t px_write_once(struct px_fs *fs, struct px_inode *i, const void *buf, size_t len,
			     uint64_t off, unsigned flags);

static ssize_t px_write(struct ff_fs *gfs, uint64_t ino, const void *buf, size_t len, uint64_t off,
			unsigned flags)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	size_t done = 0;
	ssize_t r;
	int err;

	r = px_writable(fs);
	if (r)
		return r;
	i = file_get(fs, ino, &err);
	if (!i)
		return err;
	if (!len)
		return 0;
	/*
	 * A write-through that gave up its zone wait (px_yielded: the
	 * collector's rounds freed nothing while this write held the file's
	 * io_lock) waits for a round without it, and what of it was not
	 * written is made again; ENOSPC (or the count written) once rounds
	 * free nothing more. A buffered
	 * write whose admission wanted the cache written back (px_yield_flush)
	 * has it written back, holding nothing, and is made again.
	 */
	px_flushed = false;
	for (int tries = 0;; tries++) {
		uint64_t round;

		px_yielded = px_yield_flush = false;
		px_in_write = true;
		/* with FF_FS_APPEND the offset is the size again */
		r = px_write_once(fs, i, (const uint8_t *)buf + done, len - done, off + done,
				  flags);
		px_in_write = false;
		if (r > 0)
			done += (size_t)r;
		if (!px_yielded || done == len || (r < 0 && r != -ENOSPC) ||
		    tries == PX_YIELD_TRIES)
			break;
		atomic_fetch_add(&fs->st_gc_yields, 1);
		if (px_yield_flush) {
			px_flushed = true;
			(void)ff_cache_sync_all(fs->cache);
			continue;
		}
		if (!atomic_load(&fs->gc_on) || gc_kick(fs, &round) || gc_wait_round(fs, round) < 0)
			break;
	}
	px_yielded = px_yield_flush = false;
	return done ? (ssize_t)done : r;
}

/*
 * Unmap i's data extents wholly past its last block: in memory (b NULL), or
 * by hole records added to b, which the caller commits. They are not the
 * file's, and a later growth must read zeros there (POSIX; XFS zeroes
 * beyond the old end). Two writers leave them:
 *   - an O_DIRECT write past the end moves the size only when the whole
 *     write is done, so when it fails or comes back short, or a crash
 *     comes first, its first blocks are mapped past the size;
 *   - a data header carries the size its writer knew when it sealed it,
 *     for such a write the size before it: a roll-forward maps its blocks
 *     past the size the file came back with.
 * The mount trims in memory (its checkpoint follows); a live filesystem
 * logs the holes, or a replay would map the blocks again. Reservations
 * (fallocate KEEP_SIZE) stay. Caller holds ns.
 */
static int trim_past_eof_locked(struct px_fs *fs, struct px_inode *i, struct px_buf *b)
{
	uint64_t cut = ff_round_up(i->size, PX_BLK);
	int ret = 0;

	ff_assert_held(&fs->ns);
	for (size_t k = i->next; k-- > 0 && !ret;) {
		const struct px_ext *e = &i->ext[k];
		uint64_t from;

		if (e->off + e->len <= cut)
			break;
		if (e->dev == PX_UNWRITTEN)
			continue;
		from = e->off > cut ? e->off : cut;
		if (b)
			rec_extent(b, i->ino, from, e->off + e->len - from, PX_NO_DEV, 0, 0);
		else
			ret = ext_set_locked(fs, i, from, e->off + e->len - from, PX_NO_DEV, 0, 0);
	}
	return ret;
}

/* After a write past the size that failed or came back short (trim_past_eof_locked). */
static void drop_past_eof_locked(struct px_fs *fs, struct px_inode *i)
{
	struct px_buf b = {0};
	uint64_t seq;
	int ret;

	trim_past_eof_locked(fs, i, &b);
	if ((b.len || b.err) && (ret = op_commit_locked(fs, &b, &seq)))
		ff_err("posix: inode %llu: the blocks a failed write left past the size stay "
		       "mapped (%s)",
		       (unsigned long long)i->ino, strerror(-ret));
	free(b.p);
}

/* One px_write: the file's io_lock held throughout. */
static ssize_t px_write_once(struct px_fs *fs, struct px_inode *i, const void *buf, size_t len,
			     uint64_t off, unsigned flags)
{
	unsigned through = flags & (FF_CW_SYNC | FF_CW_DSYNC | FF_CW_DIRECT);
	bool sync = flags & (FF_CW_SYNC | FF_CW_DSYNC), tail_ok, times, past, early = false;
	uint64_t size, meta = 0;
	ssize_t r;

	gc_throttle(fs);
	meta_throttle(fs, i);
	if (!through)
		da_throttle(fs, len);
	ff_mutex_lock(&i->io_lock);
	ff_mutex_lock(&fs->ns);
	size = i->size;
	tail_ok = i->tail_ok;
	if (flags & FF_FS_APPEND)
		off = size;
	if (off >= PX_MAX_FILE || len > PX_MAX_FILE - off) {
		ff_mutex_unlock(&fs->ns);
		r = -EFBIG;
		goto out;
	}
	/*
	 * A write that is not in place is an extent more, now or at its
	 * write-back: not once the next checkpoint is past its room (cp_room),
	 * which the defragmentation passes (meta_throttle) could not bring it
	 * back under. Write-back itself is never refused.
	 */
	if (meta_above_locked(fs, PX_META_FULL) && !inplace_range_locked(fs, i, off, len)) {
		ff_mutex_unlock(&fs->ns);
		r = -ENOSPC;
		goto out;
	}
	/*
	 * An O_SYNC write is stamped before its data goes out, as Linux's
	 * file_modified stamps a write before it copies: its headers carry the
	 * time (px_stamp_ino), so that an acknowledged O_SYNC append has its
	 * mtime durable with no log write, as file integrity asks (O_DSYNC's
	 * data integrity does not). The stamp after the write below then
	 * changes nothing unless the times were read meanwhile.
	 */
	if (flags & FF_CW_SYNC) {
		write_stamp_apply_locked(fs, i);
		px_stamp_ino = i->ino;
	}
	/*
	 * A sync write to a file whose create is not durable yet: the
	 * committer writes the file's records while the data is written, and
	 * the write returns once both are durable (below), one device round
	 * trip, as fsync of a new file (commit_early). Until the create is
	 * durable a mount ignores the file's data headers, so a crash leaves
	 * no file, an empty one, or the data, as a committer's tick could.
	 */
	early = sync && i->new_rseq > atomic_load(&fs->committed);
	i->early = early;
	meta = i->meta_rseq;
	ff_mutex_unlock(&fs->ns);
	if (early)
		cm_hand(fs, meta);
	/*
	 * The zeros between the size and off go first, as a write of their
	 * own, and wsize is set only after them: their header and EXTENT
	 * record must not carry the size this write moves to. The record
	 * moves the size in memory, and a read would then find the range of
	 * the data as zeros, before its bytes are in the cache (and a crash,
	 * or a failed data write, would leave the file that long).
	 */
	if (off + len > size && !tail_ok) {
		r = grow_tail(i, size);
		if (r)
			goto out_wsize;
	} else if (off > size) {
		r = zero_tail(i, size, flags & (FF_CW_SYNC | FF_CW_DSYNC));
		if (r)
			goto out_wsize;
	}
	if (sync) {
		ff_mutex_lock(&fs->ns);
		i->wsize = off + len > size ? off + len : size;
		ff_mutex_unlock(&fs->ns);
	}
	/* FF_CW_WHOLE: an I/O error fails the whole write, as the kernel's O_DIRECT and O_DSYNC */
	if (through)
		px_yield_ino = i->ino;
	r = px_cache_write(fs, i, buf, len, off, through | FF_CW_WHOLE);
	px_yield_ino = 0;
out_wsize:
	px_stamp_ino = 0;
	ff_mutex_lock(&fs->ns);
	i->early = false;
	meta = i->meta_rseq;
	/*
	 * The stamp an O_SYNC write made before its data is still not logged:
	 * the write went in place, where no header carries it, and
	 * px_write_done queued no record (below). A change the stamp after
	 * the data makes (the clock ticked meanwhile) goes as other writes'.
	 */
	times = r > 0 && (flags & FF_CW_SYNC) && i->attr_dirty;
	if (r > 0) {
		if (off + (uint64_t)r > i->size)
			i->size = off + (uint64_t)r;
		write_stamp_apply_locked(fs, i);
		i->written = true;
	}
	i->wsize = 0;
	/*
	 * A write past the size that failed or came back short: what it
	 * placed past the size is not the file's (trim_past_eof_locked), nor
	 * are the cache's copies, nor (sync_mode=writeback, whose write-back
	 * failed after the copy) its dirty blocks there; and its last block's
	 * bytes past the size are zeroed durably before the file grows.
	 */
	past = r != (ssize_t)len && off + len > i->size;
	if (past) {
		drop_past_eof_locked(fs, i);
		i->tail_ok = false;
		size = i->size;
	}
	ff_mutex_unlock(&fs->ns);
	if (past)
		cache_cut(fs, i, size);
	/* the records the data did not wait for (early, above) */
	if (early && r > 0) {
		int c = log_commit(fs, meta);

		if (c)
			r = c;
	}
	/*
	 * sync_mode=writeback wrote the data back without write_done's commit
	 * of a durable write: the size it moved is committed here, as fsync
	 * would. An O_SYNC write in place whose stamp changed the times (once
	 * a clock tick) commits them too, as XFS forces its log for an O_SYNC
	 * write that changed the inode's timestamps: O_SYNC is file integrity.
	 * Written out of place, its headers carry them.
	 */
	if (r > 0 && sync && (fs->o.cache.sync_mode == FF_SYNC_WRITEBACK || times)) {
		int c = px_commit(i, !(flags & FF_CW_SYNC));

		if (c)
			r = c;
	}
out:
	ff_mutex_unlock(&i->io_lock);
	return r < 0 ? px_err(fs, (int)r) : r;
}

/*
 * fsync writes the file's dirty data back, then commits the records it
 * needs (px_commit): a create's, a rename's, a truncate's, the times;
 * never the write-back's own extents, whose headers a mount rolls forward.
 * Those records do not wait for the data, so the committer writes them
 * while the data is written: one device round trip for a new file's fsync,
 * not two. The times go in an INODE record with the size on disk, as the
 * committer's own (log_times): the write-back's EXTENT records move the
 * size once its data is there. The committer's commit is one of those it
 * makes every commit_ms, so a crash can leave no state it could not leave
 * before: the records with the data not yet there (as after a create, a
 * truncate or a utimes), or the data with no record (headers of an inode
 * the log does not have, which a mount ignores). fsync returns once both
 * are durable: its own commit (px_commit) waits for the committer's. When
 * the committer is busy, fsync's commit is made by whoever comes first, as
 * before.
 */
static void commit_early(struct px_fs *fs, struct px_inode *i, bool datasync)
{
	struct px_buf b = {0};
	uint64_t want, seq;

	if (!fs->cm_on || px_writable(fs) || !ff_cache_inode_dirty(i->ci))
		return;
	ff_mutex_lock(&fs->ns);
	/* a failure (memory) queued nothing: px_commit tries again */
	if (!datasync && i->attr_dirty && !i->freed) {
		rec_inode(&b, i, i->disk_size, 0);
		if (!op_commit_locked(fs, &b, &seq))
			i->attr_dirty = false;
	}
	want = i->last_rseq;
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	cm_hand(fs, want);
}

static int px_fsync(struct ff_fs *gfs, uint64_t ino, bool datasync)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	int ret;

	struct ff_cinode *ci = NULL;
	bool reg = false, written = false;

	/* shut down: nothing written since is durable, nor will be */
	if (atomic_load(&fs->shut))
		return -EIO;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i) {
		ci = i->ci;
		reg = S_ISREG(i->mode);
		/* what this fsync makes durable, the close after it need not flush again */
		if (ci) {
			written = i->written;
			i->written = false;
		}
	}
	ff_mutex_unlock(&fs->ns);
	if (!i)
		return -ENOENT;
	if (ci) {
		commit_early(fs, i, datasync);
		ret = ff_cache_fsync(ci, datasync);
		if (ret && written) {
			ff_mutex_lock(&fs->ns);
			i->written = true;
			ff_mutex_unlock(&fs->ns);
		}
		return px_err(fs, ret);
	}
	if (reg) {
		/* never read or written here: its records, then the flush */
		ret = px_commit(i, datasync);
		return ret ? ret : ff_dev_sync(fs->dev);
	}
	ret = log_commit_all(fs);
	return ret ? ret : ff_dev_sync(fs->dev);
}

static int px_fsyncdir(struct ff_fs *gfs, uint64_t ino, bool datasync)
{
	struct px_fs *fs = px_of(gfs);
	int ret;

	(void)ino;
	(void)datasync;
	if (atomic_load(&fs->shut))
		return -EIO;
	ret = log_commit_all(fs);
	return ret ? ret : ff_dev_sync(fs->dev);
}

static int px_flush(struct ff_fs *gfs, uint64_t ino)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	struct ff_cinode *ci = NULL;
	bool written = false;
	int ret;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (i) {
		written = i->written;
		i->written = false;
		ci = i->ci;
	}
	ff_mutex_unlock(&fs->ns);
	/* a close after writes: what was written is on the device when umount returns */
	if (!ci || fs->ro || !written)
		return 0;
	commit_early(fs, i, true);
	ret = ff_cache_fsync(ci, true);
	/* failed: the next close (or fsync) of the file tries again, as after px_fsync */
	if (ret) {
		ff_mutex_lock(&fs->ns);
		i->written = true;
		ff_mutex_unlock(&fs->ns);
	}
	return ret;
}

/* ---- xattrs ---- */

static int xattr_name_ok(const char *name)
{
	size_t n = strlen(name);

	/* POSIX ACLs are kept as the kernel hands them over (FUSE_POSIX_ACL) */
	if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) &&
	    strncmp(name, "security.", 9) && strcmp(name, "system.posix_acl_access") &&
	    strcmp(name, "system.posix_acl_default"))
		return -EOPNOTSUPP;
	if (n > PX_XNAME_MAX)
		return -ERANGE;
	/* the VFS refuses a name that is only a namespace prefix */
	if (name[n - 1] == '.')
		for (const char *const *pre =
			     (const char *const[]){"user.", "trusted.", "security.", NULL};
		     *pre; pre++)
			if (!strcmp(name, *pre))
				return -EINVAL;
	return 0;
}

static int px_setxattr(struct ff_fs *gfs, uint64_t ino, const char *name, const void *value,
		       size_t size, int flags)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i, t;
	struct px_buf b = {0};
	uint64_t seq;
	int ret = xattr_name_ok(name);

	if (ret)
		return ret;
	if (size > PX_XVAL_MAX)
		return -E2BIG;
	ret = px_writable(fs);
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if ((flags & XATTR_CREATE) && xattr_find(i, name, NULL)) {
		ret = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !xattr_find(i, name, NULL)) {
		ret = -ENODATA;
		goto out;
	}
	rec_xattr_set(&b, ino, name, value, (uint32_t)size);
	inode_rec_copy(&t, i);
	t.ctime = now_ts(fs);
	rec_inode(&b, &t, i->disk_size, 0);
	ret = meta_room_locked(fs, b.len);
	if (!ret)
		ret = op_commit_locked(fs, &b, &seq);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

static ssize_t px_getxattr(struct ff_fs *gfs, uint64_t ino, const char *name, void *buf,
			   size_t size)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	struct px_xattr *x;
	ssize_t ret = xattr_name_ok(name);

	if (ret == -ERANGE)
		return -ENODATA;
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	x = i ? xattr_find(i, name, NULL) : NULL;
	if (!i)
		ret = -ENOENT;
	else if (!x)
		ret = -ENODATA;
	else if (!size)
		ret = x->vlen;
	else if (size < x->vlen)
		ret = -ERANGE;
	else {
		memcpy(buf, x->val, x->vlen);
		ret = x->vlen;
	}
	ff_mutex_unlock(&fs->ns);
	return ret;
}

static ssize_t px_listxattr(struct ff_fs *gfs, uint64_t ino, char *buf, size_t size)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	size_t need = 0;
	ssize_t ret;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	for (struct px_xattr *x = i->xattrs; x; x = x->next)
		need += strlen(x->name) + 1;
	if (!size) {
		ret = (ssize_t)need;
		goto out;
	}
	if (size < need) {
		ret = -ERANGE;
		goto out;
	}
	need = 0;
	for (struct px_xattr *x = i->xattrs; x; x = x->next) {
		size_t n = strlen(x->name) + 1;

		memcpy(buf + need, x->name, n);
		need += n;
	}
	ret = (ssize_t)need;
out:
	ff_mutex_unlock(&fs->ns);
	return ret;
}

static int px_removexattr(struct ff_fs *gfs, uint64_t ino, const char *name)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i, t;
	struct px_buf b = {0};
	uint64_t seq;
	int ret = xattr_name_ok(name);

	if (ret == -ERANGE)
		return -ENODATA;
	if (ret)
		return ret;
	ret = px_writable(fs);
	if (ret)
		return ret;
	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i)
		ret = -ENOENT;
	else if (!xattr_find(i, name, NULL))
		ret = -ENODATA;
	if (ret)
		goto out;
	rec_xattr_del(&b, ino, name);
	inode_rec_copy(&t, i);
	t.ctime = now_ts(fs);
	rec_inode(&b, &t, i->disk_size, 0);
	ret = op_commit_locked(fs, &b, &seq);
out:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	reap(fs);
	return ret;
}

/* ---- fallocate, lseek, statfs, stats ---- */

/*
 * A data zone's blocks that hold no live data: its room less one header and
 * its valid blocks. A removed file's blocks count at once, also in a zone that
 * still holds other data, where only garbage collection (issue 12) can make
 * them writable again; avail_blocks_locked() is what can be written.
 */
static uint64_t zone_unused_blk(const struct px_zone *z)
{
	uint64_t room = z->cap / PX_BLK - 1;

	return room - (z->valid < room ? z->valid : room);
}

/*
 * The next run of [*p, end) that no extent maps or reserves: *p moves past
 * mapped blocks to the run's start and *stop is its end; false when no such
 * run is left. Caller holds ns.
 */
static bool next_gap_locked(struct px_inode *i, uint64_t *p, uint64_t end, uint64_t *stop)
{
	while (*p < end) {
		bool in;
		size_t k = ext_find(i, *p, &in);

		if (!in) {
			*stop = k < i->next && i->ext[k].off < end ? i->ext[k].off : end;
			return true;
		}
		*p = i->ext[k].off + i->ext[k].len;
	}
	return false;
}

/*
 * Blocks of [off, off+len), rounded out to whole blocks, that no extent maps
 * or reserves. Caller holds ns.
 */
static uint64_t unmapped_blocks_locked(struct px_inode *i, uint64_t off, uint64_t len)
{
	uint64_t p = ff_round_down(off, PX_BLK), end = ff_round_up(off + len, PX_BLK), n = 0, stop;

	for (; next_gap_locked(i, &p, end, &stop); p = stop)
		n += (stop - p) / PX_BLK;
	return n;
}

/*
 * fallocate's reservation: every block of [off, off+len) that nothing maps
 * becomes PX_UNWRITTEN (EXTENT records, durable with the next commit, as any
 * record of the file: fsync), or -ENOSPC and nothing changed when they do not
 * fit beside the reservations there are (resv_cost_blk). io_lock held.
 */
static int reserve(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len)
{
	uint64_t lo = ff_round_down(off, PX_BLK), hi = ff_round_up(off + len, PX_BLK), need, seq;
	struct px_buf b = {0};
	int ret = 0;

	ff_assert_held(&i->io_lock);
	ff_mutex_lock(&fs->ns);
	need = unmapped_blocks_locked(i, lo, hi - lo);
	if (!need)
		goto out_unlock;
	/* blocks that buffered writes hold (delayed allocation) are promised already */
	if (!promise_fits_locked(fs, unreserved_blocks_locked(i, lo, hi, NULL, 0, NULL))) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	/* dseq 0: any data header rolled forward over it is newer */
	for (uint64_t p = lo, stop; next_gap_locked(i, &p, hi, &stop); p = stop)
		rec_extent(&b, i->ino, p, stop - p, PX_UNWRITTEN, 0, 0);
	ret = op_commit_locked(fs, &b, &seq);
	/* the reservation holds the room of the delayed allocations it covers now */
	if (!ret)
		da_del_locked(fs, i, lo, hi);
out_unlock:
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	return ret;
}

static int px_fallocate(struct ff_fs *gfs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[PX_BLK];
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	struct px_buf b = {0};
	uint64_t size, end, lo, hi, seq;
	int ret = 0, err;

	ret = px_writable(fs);
	if (ret)
		return ret;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (!len || off + len < off || off + len > PX_MAX_FILE)
		return len ? -EFBIG : -EINVAL;
	i = file_get(fs, ino, &err);
	if (!i)
		return err == -EINVAL ? -ENODEV : err;
	ff_mutex_lock(&i->io_lock);
	ff_mutex_lock(&fs->ns);
	size = i->size;
	/*
	 * A reservation, or a punch that splits an extent in two, is an extent
	 * more: not once the next checkpoint is past its room (as px_write;
	 * XFS too can refuse a punch with ENOSPC). Truncates and unlinks give
	 * the room back.
	 */
	if (meta_above_locked(fs, PX_META_FULL)) {
		ff_mutex_unlock(&fs->ns);
		ret = -ENOSPC;
		goto out;
	}
	ff_mutex_unlock(&fs->ns);
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		goto reserve;
	/*
	 * Zeros in the cache for the partial blocks below the size; every whole
	 * block in the range unmapped, beyond the size too (a reservation that
	 * fallocate KEEP_SIZE made there is given back, as XFS does). A
	 * ZERO_RANGE then reserves the range again, as the default mode does:
	 * its blocks read as zeros and stay allocated. Between the two a crash
	 * leaves a hole, which reads as zeros too.
	 */
	end = off + len < size ? off + len : size;
	lo = ff_round_up(off, PX_BLK);
	hi = off + len >= size ? ff_round_up(off + len, PX_BLK) : ff_round_down(off + len, PX_BLK);
	ret = ff_cache_writeback(i->ci);
	if (ret)
		goto out;
	if (lo < hi) {
		struct px_inode t;

		/*
		 * The invalidate lock stays held until the record has unmapped the
		 * blocks: a read in between would find the old extents and cache
		 * the punched bytes again (ci->inval before ns, as a read's
		 * map_read takes them).
		 */
		ff_cache_invalidate_begin(i->ci);
		ff_cache_truncate(i->ci, lo);
		ff_cache_inode_set_size(i->ci, size);
		ff_mutex_lock(&fs->ns);
		/* the cache dropped its blocks from lo on, dirty or not: their room goes too */
		da_del_locked(fs, i, lo, UINT64_MAX);
		rec_extent(&b, ino, lo, hi - lo, PX_NO_DEV, 0, 0);
		inode_rec_copy(&t, i);
		t.dseq_floor = fs->next_dseq - 1; /* headers written before this record */
		t.mtime = t.ctime = now_ts(fs);
		rec_inode(&b, &t, i->disk_size, 0);
		ret = op_commit_locked(fs, &b, &seq);
		ff_mutex_unlock(&fs->ns);
		ff_cache_invalidate_end(i->ci);
		if (ret)
			goto out;
	}
	if (off < lo && off < end) {
		ssize_t r = px_cache_write(fs, i, zeros, (lo < end ? lo : end) - off, off, 0);

		ret = r < 0 ? (int)r : 0;
	}
	if (!ret && hi < end && hi >= lo) {
		ssize_t r = px_cache_write(fs, i, zeros, end - hi, hi, 0);

		ret = r < 0 ? (int)r : 0;
	}
	if (ret || !(mode & FALLOC_FL_ZERO_RANGE))
		goto out;
reserve:
	ret = reserve(fs, i, off, len);
	if (!ret && !(mode & FALLOC_FL_KEEP_SIZE) && off + len > size)
		ret = truncate_locked(fs, i, off + len);
out:
	ff_mutex_unlock(&i->io_lock);
	free(b.p);
	return px_err(fs, ret);
}

static int64_t px_lseek(struct ff_fs *gfs, uint64_t ino, int64_t off, int whence)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	int64_t ret;
	uint64_t size, pos = (uint64_t)off;
	bool in;
	size_t k;
	int err;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	i = file_get(fs, ino, &err);
	if (!i)
		return err;
	/*
	 * What is only cached is data too: written back, it has extents. When
	 * the write-back fails (a full device, a device error), the error is
	 * the next fsync's to report, not lseek's: the answer is then the
	 * coarse one POSIX allows, the rest of the file as data.
	 */
	err = ff_cache_writeback(i->ci);
	ff_mutex_lock(&fs->ns);
	size = i->size;
	if (pos >= size) {
		ret = -ENXIO;
		goto out;
	}
	if (err) {
		ret = whence == SEEK_DATA ? (int64_t)pos : (int64_t)size;
		goto out;
	}
	/*
	 * Reserved blocks never written are a hole here, as XFS reports its
	 * unwritten extents once the page cache holds nothing there (the
	 * write-back above makes sure of that).
	 */
	if (whence == SEEK_DATA) {
		k = ext_find(i, pos, &in);
		while (k < i->next && i->ext[k].dev == PX_UNWRITTEN)
			k++;
		if (k < i->next && i->ext[k].off < size)
			ret = (int64_t)(i->ext[k].off > pos ? i->ext[k].off : pos);
		else
			ret = -ENXIO;
		goto out;
	}
	for (;;) {
		k = ext_find(i, pos, &in);
		if (!in || i->ext[k].dev == PX_UNWRITTEN)
			break;
		pos = i->ext[k].off + i->ext[k].len;
	}
	ret = (int64_t)(pos < size ? pos : size);
out:
	ff_mutex_unlock(&fs->ns);
	return ret;
}

/* ---- garbage collection ---- */

/*
 * Garbage collection makes the dead blocks of FULL data zones writable
 * again: a victim's live blocks are copied to an open zone, its extents
 * re-pointed through the log, and once that is durable the victim is freed
 * (reset on a sequential zone) for a new epoch.
 *
 * Victims. Cost-benefit as in LFS and F2FS: among FULL zones that hold dead
 * blocks, the one with the highest (1 - u) * age / (1 + u), u its live
 * fraction and age how long since data was last written into it (the data
 * sequence counter is the clock: a zone's mtime is its newest data's, a
 * writer's or the collector's copies', never moved by blocks dying in it,
 * which under random overwrites would make every zone young). A zone whose live blocks and their
 * headers would fill what freeing it gains is never chosen. The choice looks only at the candidates
 * (fs->gc_cand: every zone with something to gain, kept as zones change by zone_changed_locked),
 * and the free zones are counted as they change (fs->nfree): a round does not scan every zone, and
 * a writer's check for free zones is a read of the count.
 *
 * Moves. Per inode with blocks in the victim (the victim's owners: a reverse
 * map each zone keeps, so no scan of every inode), holding its io_lock
 * (writers and truncates of the file wait; the collector only try-locks it,
 * since a writer may hold it while waiting for a round) and a pin (gc_pins:
 * the inode and its cache inode outlive an unlink meanwhile): the blocks are
 * read from the victim and written at a slot's zone with a data header,
 * through the zone queue like any write. The victim is marked first, so that
 * no new in-place overwrite lands in it, and the in-place writes already
 * mapped there are waited for: what is read is the newest data of each
 * block. The read goes to the device, not through the cache, so that the
 * collector never waits for cache memory, which a flusher waiting for free
 * zones would hold. That is not worth changing: a block dirty in the cache
 * is newer than the copy, and its write-back later replaces the re-pointed
 * extent (and wins a roll-forward by its higher data sequence number), so
 * nothing stale survives (test_gc_dirty_cached); and a clean cached block
 * would save one device read of a cold victim (cost-benefit prefers old
 * data), in runs of up to PX_GC_CHUNK, against a write of the same size. The
 * header keeps the moved extent's data sequence number, so a mount's
 * roll-forward never prefers the copy to anything written later. The extent
 * is re-pointed only where it still maps the blocks read (a write, truncate
 * or punch since wins), with an EXTENT record. Then the inode's invalidate
 * lock is taken and dropped: a read that mapped the victim before the
 * re-point has finished before the victim can be reset.
 *
 * Freeing. When the victim holds no live block: the device is flushed and
 * the log committed (the copies and their records are durable), then a ZONE
 * record makes the victim FREE and, committed, a sequential victim is reset.
 * A crash before that commit leaves the victim as it was, its extents
 * intact.
 */

#define PX_GC_CHUNK (1ull << 20)

/* A monotonic clock in ns, for gc_find_ns. */
static uint64_t gc_clock_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Blocks a zone can hold: its room less the one header a single write needs. */
static uint64_t zone_room_blk(const struct px_zone *zo)
{
	return zo->cap / PX_BLK - 1;
}

static uint64_t gc_cost(const struct px_fs *fs, const struct px_zone *zo);

/* A victim must gain at least 1/PX_GC_MIN_GAIN of a zone: the move's write amplification stays
 * below it. */
#define PX_GC_MIN_GAIN 32

/*
 * The blocks freeing zone zo gains once its live blocks are moved (their
 * headers counted), or 0 when that is less than
 * 1/PX_GC_MIN_GAIN of the zone: near a full device a collector that takes
 * such victims only churns.
 * statfs counts the same gain as available. Caller holds ns.
 */
static uint64_t gc_gain_locked(struct px_fs *fs, const struct px_zone *zo)
{
	uint64_t room = zone_room_blk(zo);
	uint64_t cost = gc_cost(fs, zo);

	if (!data_zone(zo) || zo->state != PX_Z_FULL || zo->slot >= 0 || !zo->valid ||
	    cost + room / PX_GC_MIN_GAIN > room)
		return 0;
	return room - cost;
}

/*
 * What moving zo's live blocks writes at most: the blocks, and a header for
 * each extent (runs only merge them) and each megabyte.
 */
static uint64_t gc_cost(const struct px_fs *fs, const struct px_zone *zo)
{
	if (fs->gc_slot)
		return zo->valid + 1;
	return zo->valid + zo->next + zo->valid / (PX_GC_CHUNK / PX_BLK) + 1;
}

/* Blocks the collector can write now: free zones (the reserve too) and open rooms. */
static uint64_t gc_room_locked(struct px_fs *fs)
{
	uint64_t n = fs->free_blk;

	ff_assert_held(&fs->ns);
	for (int s = 0; s < fs->nslots + fs->gc_slot; s++) {
		struct px_zone *zo;

		if (fs->slots[s].zone == UINT32_MAX)
			continue;
		zo = &fs->zones[fs->slots[s].zone];
		if (zo->start + zo->cap - zo->wp >= 2 * PX_BLK)
			n += (zo->start + zo->cap - zo->wp) / PX_BLK - 1;
	}
	return n;
}

/* Zone z leaves the GC candidates (swapped with the last). Caller holds ns. */
static void cand_del_locked(struct px_fs *fs, uint32_t z)
{
	uint32_t at = fs->zones[z].cand, last = fs->gc_cand[--fs->gc_ncand];

	fs->gc_cand[at] = last;
	fs->zones[last].cand = at;
	fs->zones[z].cand = UINT32_MAX;
}

/*
 * Something zone_free_locked or gc_gain_locked look at changed in zo: its
 * slot, state, writes in flight, victim mark, valid blocks or extents. Keeps
 * fs->nfree and fs->free_blk exact, and fs->gc_cand holding every zone a
 * round may take: a zone joins when its gain becomes positive here (only a
 * change that calls this can make it so) and leaves when gc_pick_locked finds
 * none. Caller holds ns (or is the mount, alone).
 */
static void zone_changed_locked(struct px_fs *fs, struct px_zone *zo)
{
	bool f = data_zone(zo) && zo->slot < 0 && !zo->inflight && !zo->victim &&
		 (zo->state == PX_Z_FREE || (zo->state == PX_Z_FULL && !zo->valid));

	if (f != zo->isfree) {
		zo->isfree = f;
		fs->nfree += f ? 1 : -1u;
		fs->free_blk += f ? zone_room_blk(zo) : -zone_room_blk(zo);
	}
	if (zo->cand == UINT32_MAX && fs->gc_cand && gc_gain_locked(fs, zo)) {
		zo->cand = fs->gc_ncand;
		fs->gc_cand[fs->gc_ncand++] = (uint32_t)(zo - fs->zones);
	}
}

/*
 * Recount fs->nfree, fs->free_blk and the GC candidates from the zone table:
 * the mount, once its replay and roll-forward set the zones. Caller holds ns.
 */
static void gc_index_rebuild_locked(struct px_fs *fs)
{
	uint64_t seq_blk = 0, zone_max = 0;

	fs->nfree = 0;
	fs->free_blk = 0;
	fs->gc_ncand = 0;
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *zo = &fs->zones[k];

		zo->isfree = false;
		zo->cand = UINT32_MAX;
		zone_changed_locked(fs, zo);
		if (data_zone(zo) && zo->seq) {
			seq_blk += zone_room_blk(zo);
			if (zone_room_blk(zo) > zone_max)
				zone_max = zone_room_blk(zo);
		}
	}
	/*
	 * Overprovisioning, as F2FS keeps: an overwrite in a sequential zone
	 * writes its new copy before the old one is garbage, so a device whose
	 * sequential zones were all live data would take no overwrite at all.
	 * New data leaves this much of them (a zone, or 1/32 of them when more)
	 * to overwrites' new copies while the collector reclaims the old ones;
	 * conventional space is overwritten in place and needs none.
	 */
	fs->op_blk = seq_blk ? (seq_blk / 32 > zone_max ? seq_blk / 32 : zone_max) : 0;
}

/*
 * The best victim, or UINT32_MAX: by cost-benefit in the background, greedy
 * (fewest live blocks) once free zones are down to the reserve and one more.
 * Caller holds ns.
 */
static uint32_t gc_pick_locked(struct px_fs *fs)
{
	uint32_t best = UINT32_MAX;
	double best_score = -1;
	uint64_t can = gc_room_locked(fs);
	/* writers wait: the cheapest victim now (greedy), as F2FS's foreground GC */
	bool greedy = free_zones_locked(fs) <= fs->gc_reserve + 1;

	ff_assert_held(&fs->ns);
	for (uint32_t j = 0; j < fs->gc_ncand;) {
		uint32_t k = fs->gc_cand[j];
		struct px_zone *zo = &fs->zones[k];
		uint64_t room = zone_room_blk(zo);
		double u, age, score;

		if (!gc_gain_locked(fs, zo)) {
			cand_del_locked(fs, k); /* j now holds the last one */
			continue;
		}
		j++;
		/* never start a victim whose moves may not fit: it would eat the reserve */
		if (zo->inflight || zo->victim || gc_cost(fs, zo) > can)
			continue;
		u = (double)zo->valid / (double)room;
		age = (double)(fs->next_dseq -
			       (zo->mtime <= fs->next_dseq ? zo->mtime : fs->next_dseq)) +
		      1;
		score = greedy ? 1 - u : (1 - u) * age / (1 + u);
		if (score > best_score) {
			best_score = score;
			best = k;
		}
	}
	return best;
}

static void gc_unpin(struct px_fs *fs, struct px_inode *i)
{
	ff_mutex_lock(&fs->ns);
	i->gc_pins--;
	ff_mutex_unlock(&fs->ns);
}

/* A piece of a GC run: file range [off, off+len) read from dev. */
struct gc_piece {
	uint64_t off, len, dev;
};

#define PX_GC_PIECES 64

/*
 * Write the np pieces pc of inode i (their bytes one after the other in buf,
 * read from the victim; len in all) at a slot's zone. Caller holds i's
 * io_lock and a pin. Returns the bytes written (maybe fewer than len: the
 * zone filled) with *landed their device offset, or -errno.
 *
 * Through a writers' slot the data gets a header carrying dseq, as any
 * write's (dh_encode), listing the pieces it holds when they are not one
 * file range (PX_FEAT_PIECES). In the collector's own zone (fs->gc_slot) the data
 * goes alone, with no header, and a ZONE record moving the zone's committed
 * cursor past it is queued before the EXTENT records that re-point to it.
 * Nothing but the collector writes in that zone, so a mount's roll-forward
 * finds no header there past the cursor (a copied block that looks like one
 * fails the header crc, keyed by the superblock's DHKEY): a copy is
 * reachable only once its records are committed (log writes flush the
 * device first), and until then the victim still holds the blocks.
 */
static ssize_t gc_write(struct px_fs *fs, struct px_inode *i, const struct gc_piece *pc, int np,
			uint64_t len, uint64_t dseq, void *buf, uint64_t *landed)
{
	bool own = fs->gc_slot;
	uint64_t hl = own ? 0 : PX_BLK, n = 0, at = 0, size, epoch, seq, end = 0, sum = 0;
	struct px_piece hp[PX_GC_PIECES];
	uint32_t nh = 0;
	struct px_buf b = {0};
	struct px_slot *s;
	struct px_zone *zo;
	uint8_t *h = NULL;
	uint32_t z;
	ssize_t r = 0;
	int ret;

	if (own) {
		s = &fs->slots[fs->nslots];
		ff_mutex_lock(&s->mu);
	} else {
		s = slot_get(fs, i->ino);
	}
	ret = slot_zone(fs, s, false);
	if (ret)
		goto out_unlock;
	if (!own && posix_memalign((void **)&h, PX_BLK, PX_BLK)) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ff_mutex_lock(&fs->ns);
	z = s->zone;
	zo = &fs->zones[z];
	n = ff_round_down(zo->start + zo->cap - zo->wp - hl, PX_BLK);
	if (n > len)
		n = len;
	at = zo->wp;
	zo->wp += hl + n;
	zo->inflight++;
	zone_changed_locked(fs, zo);
	epoch = zo->epoch;
	/* the pieces the n bytes hold, the last maybe cut short */
	while (nh < (uint32_t)np && sum < n) {
		hp[nh] = (struct px_piece){pc[nh].off, pc[nh].len < n - sum ? pc[nh].len : n - sum};
		sum += hp[nh].len;
		end = hp[nh].off + hp[nh].len;
		nh++;
	}
	size = end < i->disk_size ? end : i->disk_size;
	ff_mutex_unlock(&fs->ns);
	/* contiguous pieces (gc_run_locked's) are one range in any format */
	if (h)
		dh_encode(fs, h, PX_BLK, epoch, dseq, i->ino, pc[0].off, n, size,
			  ff_crc32c(0, buf, n), 0, hp, (fs->features & PX_FEAT_PIECES) ? nh : 0);
	{
		struct iovec iov[2] = {{h, hl}, {buf, n}};
		struct iovec *v = h ? iov : iov + 1;
		int cnt = h ? 2 : 1;

		if (zo->seq)
			r = ff_zoneq_write_at(fs->dev, z, v, cnt, at, 0);
		else
			r = ff_dev_write(fs->dev, v, cnt, at, 0);
	}
	if (r >= 0 && (uint64_t)r != hl + n)
		r = -EIO;
	if (r < 0 && zo->seq)
		(void)ff_zoneq_resync(fs->dev, z);
	ff_mutex_lock(&fs->ns);
	zo->inflight--;
	inflight_done_locked(fs, zo);
	if (r < 0) {
		/* as a failed data write: the zone's chain may be broken, no more in it */
		if (zo->seq)
			zo->wp = zo->start + zo->cap;
		else
			zo->wp -= hl + n;
		ret = (int)r;
	} else if (own) {
		struct px_zone tmp = *zo;

		rec_zone(&b, z, &tmp, at + n);
		ret = op_commit_locked(fs, &b, &seq);
	}
	if (r >= 0 && dseq > zo->mtime)
		zo->mtime = dseq;
	ff_mutex_unlock(&fs->ns);
	*landed = at + hl;
	if (h) {
		atomic_fetch_add(&fs->st_hdr_writes, 1);
		atomic_fetch_add(&fs->st_gc_hdrs, 1);
	}
out_unlock:
	ff_mutex_unlock(&s->mu);
	free(b.p);
	free(h);
	if (r < 0)
		write_failed(fs);
	return ret ? ret : (ssize_t)n;
}

/*
 * Re-point [off, off+len) of i from old to new where it still maps old (a
 * write, truncate or punch since the read wins). Caller holds ns.
 */
static int gc_repoint_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len,
			     uint64_t old, uint64_t new)
{
	struct px_buf b = {0};
	uint64_t pos = off, end = off + len, seq;
	int ret = 0;

	ff_assert_held(&fs->ns);
	while (pos < end && !i->freed) {
		bool in;
		size_t k = ext_find(i, pos, &in);
		struct px_ext *e;
		uint64_t stop;

		if (!in) {
			if (k >= i->next)
				break;
			pos = i->ext[k].off;
			continue;
		}
		e = &i->ext[k];
		stop = e->off + e->len < end ? e->off + e->len : end;
		if (e->dev + (pos - e->off) == old + (pos - off))
			rec_extent(&b, i->ino, pos, stop - pos, new + (pos - off), e->dseq, 0);
		pos = stop;
	}
	if (b.len)
		ret = op_commit_locked(fs, &b, &seq);
	free(b.p);
	return ret;
}

#define PX_GC_WINDOW (64ull << 10)

/*
 * The run of blocks one GC write through a writers' slot moves (its header
 * names one file range; the collector's own zone takes gc_gather_locked's
 * pieces instead), for the victim's extent k of i from file offset off: that
 * piece, and the victim's other extents contiguous with
 * it in the file within its 64 KiB window, so that blocks of one file that
 * scattered small writes left in the victim cost one header per window
 * rather than per block. Neighbours in other zones are left: moving them
 * would spend free space now (and on conventional space an in-place
 * overwrite of one may be in flight). *dseq gets the oldest
 * data sequence number of the run: the header never wins a roll-forward over
 * anything written after any of its pieces. Caller holds ns. Returns the
 * pieces in pc, in file order, at most PX_GC_CHUNK bytes in all.
 */
static int gc_run_locked(struct px_fs *fs, struct px_inode *i, size_t k, uint64_t off, uint32_t z,
			 struct gc_piece *pc, uint64_t *dseq)
{
	uint64_t ws = ff_round_down(off, PX_GC_WINDOW), total, end;
	struct px_ext *e = &i->ext[k];
	size_t lo = k, hi = k;
	int np = 0;

	ff_assert_held(&fs->ns);
#define GC_OK(x) (zone_of(fs, (x)->dev) == z)
	/* backwards within the window */
	while (lo > 0 && i->ext[lo - 1].off + i->ext[lo - 1].len == i->ext[lo].off &&
	       i->ext[lo].off > ws && GC_OK(&i->ext[lo - 1]))
		lo--;
	total = 0;
	for (size_t j = lo; j <= hi; j++) {
		struct px_ext *x = &i->ext[j];
		uint64_t a = j == k ? off : x->off > ws ? x->off : ws;
		uint64_t b = x->off + x->len;

		if (j == k && b - a > PX_GC_CHUNK - total)
			b = a + (PX_GC_CHUNK - total);
		pc[np++] = (struct gc_piece){a, b - a, x->dev + (a - x->off)};
		total += b - a;
		if (x->dseq < *dseq)
			*dseq = x->dseq;
	}
	(void)e;
	/* forwards within the window of the run's end */
	end = pc[np - 1].off + pc[np - 1].len;
	{
		uint64_t we = ff_round_up(end, PX_GC_WINDOW);

		while (hi + 1 < i->next && np < PX_GC_PIECES && total < PX_GC_CHUNK &&
		       i->ext[hi].off + i->ext[hi].len == end && end == i->ext[hi + 1].off &&
		       end < we && GC_OK(&i->ext[hi + 1])) {
			struct px_ext *x = &i->ext[++hi];
			uint64_t b = x->off + x->len;

			if (b > we)
				b = we;
			if (b - x->off > PX_GC_CHUNK - total)
				b = x->off + (PX_GC_CHUNK - total);
			pc[np++] = (struct gc_piece){x->off, b - x->off, x->dev};
			total += b - x->off;
			end = b;
			if (x->dseq < *dseq)
				*dseq = x->dseq;
		}
	}
#undef GC_OK
	return np;
}

/*
 * Copy the np pieces pc (in file order, at most PX_GC_CHUNK bytes; contiguous
 * in the file unless they go to the collector's own zone, where no header
 * describes them) of inode i: read them from the device into buf, all in
 * flight together, write them as one at a slot's zone (gc_write, dseq their
 * oldest data sequence number), and re-point each where it still maps the
 * blocks read. Caller holds i's io_lock and a pin. Returns the bytes moved
 * (fewer than the pieces' when the zone filled), or -errno; *next is the file
 * offset the move stopped at.
 */
static ssize_t gc_move_run(struct px_fs *fs, struct px_inode *i, const struct gc_piece *pc, int np,
			   uint64_t dseq, void *buf, uint64_t *next)
{
	struct ff_io ios[PX_GC_PIECES];
	struct iovec iov[PX_GC_PIECES];
	uint64_t total = 0, landed = 0, at = 0;
	ssize_t r;
	int ret = 0;

	for (int k = 0; k < np; k++) {
		iov[k] = (struct iovec){(uint8_t *)buf + total, pc[k].len};
		ios[k] = (struct ff_io){.iov = &iov[k], .iovcnt = 1, .off = pc[k].dev};
		total += pc[k].len;
	}
	ret = ff_dev_submit_batch(fs->dev, ios, np);
	for (int k = 0; k < np && !ret; k++)
		if (ios[k].res != (ssize_t)pc[k].len)
			ret = ios[k].res < 0 ? (int)ios[k].res : -EIO;
	if (ret)
		return ret;
	r = gc_write(fs, i, pc, np, total, dseq, buf, &landed);
	if (r < 0)
		return r;
	*next = pc[0].off;
	ff_mutex_lock(&fs->ns);
	for (int k = 0; k < np && !ret && at < (uint64_t)r; k++) {
		uint64_t n = pc[k].len < (uint64_t)r - at ? pc[k].len : (uint64_t)r - at;

		ret = gc_repoint_locked(fs, i, pc[k].off, n, pc[k].dev, landed + at);
		at += n;
		*next = pc[k].off + n;
	}
	ff_mutex_unlock(&fs->ns);
	return ret ? ret : r;
}

/*
 * The pieces of i's extents in victim zone z from file offset pos on, in
 * file order, whatever lies between them: at most PX_GC_PIECES and
 * PX_GC_CHUNK bytes, for one write into the collector's own zone, where the
 * copies need no header (gc_write). The live blocks random overwrites leave
 * in a victim are single blocks far apart in the file: one read of each in
 * flight together and one write for them all, where each would cost a
 * device round trip of its own. *dseq gets their oldest data sequence
 * number. Caller holds ns.
 */
static int gc_gather_locked(struct px_fs *fs, struct px_inode *i, uint64_t pos, uint32_t z,
			    struct gc_piece *pc, uint64_t *dseq)
{
	uint64_t total = 0;
	int np = 0;
	bool in;

	ff_assert_held(&fs->ns);
	for (size_t k = ext_find(i, pos, &in); !i->freed && k < i->next; k++) {
		const struct px_ext *e = &i->ext[k];
		uint64_t a = e->off > pos ? e->off : pos, n = e->off + e->len - a;

		if (e->dev == PX_UNWRITTEN || zone_of(fs, e->dev) != z)
			continue;
		if (n > PX_GC_CHUNK - total)
			n = PX_GC_CHUNK - total;
		pc[np++] = (struct gc_piece){a, n, e->dev + (a - e->off)};
		total += n;
		if (e->dseq < *dseq)
			*dseq = e->dseq;
		if (np == PX_GC_PIECES || total == PX_GC_CHUNK)
			break;
	}
	return np;
}

/*
 * Move every live block of inode ino out of victim zone z. Returns 0 (done,
 * or the inode is gone), -EBUSY (its io_lock is held: try later) or -errno.
 * No lock held.
 */
static int gc_move_inode(struct px_fs *fs, uint32_t z, uint64_t ino, void *buf)
{
	/* a header can list pieces apart in the file, or there is none */
	bool gather = fs->gc_slot || (fs->features & PX_FEAT_PIECES);
	struct px_inode *i;
	uint64_t pos = 0;
	int ret = 0;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i || !S_ISREG(i->mode) || ci_ensure_locked(fs, i)) {
		ff_mutex_unlock(&fs->ns);
		return 0;
	}
	i->gc_pins++;
	ff_mutex_unlock(&fs->ns);
	if (!ff_mutex_trylock(&i->io_lock)) {
		gc_unpin(fs, i);
		return -EBUSY;
	}
	for (;;) {
		struct gc_piece pc[PX_GC_PIECES];
		uint64_t dseq = UINT64_MAX, next = 0;
		int np = 0;
		ssize_t r;
		bool in;

		ff_mutex_lock(&fs->ns);
		/* from the extent holding pos on: what lies before it was moved */
		if (gather)
			np = gc_gather_locked(fs, i, pos, z, pc, &dseq);
		for (size_t k = ext_find(i, pos, &in); !gather && !i->freed && k < i->next; k++) {
			struct px_ext *e = &i->ext[k];
			uint64_t off;

			if (zone_of(fs, e->dev) != z)
				continue;
			off = e->off > pos ? e->off : pos;
			np = gc_run_locked(fs, i, k, off, z, pc, &dseq);
			break;
		}
		ff_mutex_unlock(&fs->ns);
		if (!np)
			break;
		r = gc_move_run(fs, i, pc, np, dseq, buf, &next);
		if (r < 0) {
			ret = (int)r;
			break;
		}
		atomic_fetch_add(&fs->st_gc_bytes, (uint64_t)r);
		if (next > pos)
			pos = next;
	}
	/* a read that mapped the victim before the re-point is done after this */
	ff_cache_invalidate_begin(i->ci);
	ff_cache_invalidate_end(i->ci);
	ff_mutex_unlock(&i->io_lock);
	gc_unpin(fs, i);
	return ret;
}

/*
 * The next run a defragmentation pass joins, from file offset *pos on: two
 * or more written extents on conventional space (with seq, on any space),
 * each shorter than PX_DEFRAG_SMALL, contiguous in the file, at most PX_GC_CHUNK bytes and
 * PX_GC_PIECES pieces. Returns the pieces in pc (0: none left); *pos moves
 * past them. Caller holds ns.
 */
static int defrag_run_locked(struct px_fs *fs, struct px_inode *i, uint64_t *pos,
			     struct gc_piece *pc, uint64_t *dseq, bool seq)
{
	bool in;

	ff_assert_held(&fs->ns);
	for (size_t k = ext_find(i, *pos, &in); k < i->next; k++) {
		uint64_t total = 0, old = UINT64_MAX;
		int np = 0;

		for (size_t j = k; j < i->next && np < PX_GC_PIECES; j++) {
			const struct px_ext *x = &i->ext[j];

			if (x->off < *pos || x->dev == PX_UNWRITTEN || x->len >= PX_DEFRAG_SMALL ||
			    (fs->zones[zone_of(fs, x->dev)].seq && !seq) ||
			    total + x->len > PX_GC_CHUNK ||
			    (np && pc[np - 1].off + pc[np - 1].len != x->off))
				break;
			pc[np++] = (struct gc_piece){x->off, x->len, x->dev};
			total += x->len;
			if (x->dseq < old)
				old = x->dseq;
		}
		if (np >= 2) {
			*pos = pc[np - 1].off + pc[np - 1].len;
			*dseq = old;
			return np;
		}
	}
	*pos = UINT64_MAX;
	return 0;
}

/*
 * One defragmentation pass over inode ino (see defrag_queue_locked): its runs
 * of small extents are read from the device and written into the
 * collector's zone as one extent each, and re-pointed where they still map
 * the blocks read, as a GC move does (gc_write, gc_repoint_locked; the
 * copies are reachable only through committed records, and the blocks left
 * behind are garbage the collector reclaims). Holding the file's io_lock
 * keeps writers and truncates out; i->defrag makes write-back map no new
 * in-place overwrite into the file (it goes out of place meanwhile), and
 * the in-place writes mapped before are waited for, so that what is read is
 * each block's newest content. A write-back already in flight holds the
 * file's slot, so every extent moved is older than it (its header still
 * wins a roll-forward). Only when free zones are above gc_low + 1: it never
 * takes the room the collector keeps.
 *
 * When the metadata is past PX_META_PRESS, the pass joins extents on
 * sequential zones too, and runs down to gc_reserve + 1 free zones: the
 * blocks it leaves behind are garbage the collector gets back, and without
 * it the next checkpoint would not fit. No lock held; returns 0 or -errno.
 */
static int defrag_inode(struct px_fs *fs, uint64_t ino)
{
	struct px_inode *i;
	uint64_t pos = 0, from, moved = 0;
	uint32_t floor;
	void *buf = NULL;
	bool press, wrapped = false;
	int ret = 0;

	ff_mutex_lock(&fs->ns);
	press = meta_above_locked(fs, PX_META_PRESS);
	atomic_store(&fs->meta_press, press);
	floor = press ? fs->gc_reserve + 1 : fs->gc_low + 1;
	i = iget_locked(fs, ino);
	if (i)
		i->dq = false;
	if (!i || !S_ISREG(i->mode) || i->freed || free_zones_locked(fs) <= floor ||
	    (!fs->defrag_on && !press) || ci_ensure_locked(fs, i)) {
		if (i)
			i->defrag_at = 0;
		ff_mutex_unlock(&fs->ns);
		return 0;
	}
	i->gc_pins++;
	ff_mutex_unlock(&fs->ns);
	if (posix_memalign(&buf, PX_BLK, PX_GC_CHUNK)) {
		gc_unpin(fs, i);
		return -ENOMEM;
	}
	/*
	 * The append or overwrite that queued the file holds its io_lock until
	 * its reply, and a writer of the file may hold it while it waits for a
	 * collector round: try for a while, and give up at once when a round
	 * is wanted; the file's next spanning overwrite (or, with -o defrag=N,
	 * append) queues it again.
	 */
	for (int t = 0; !ff_mutex_trylock(&i->io_lock); t++) {
		bool wanted;

		ff_mutex_lock(&fs->gc_mu);
		wanted = fs->gc_req || fs->gc_stop;
		ff_mutex_unlock(&fs->gc_mu);
		if (wanted || t == PX_DEFRAG_TRIES) {
			ff_mutex_lock(&fs->ns);
			i->defrag_at = 0;
			ff_mutex_unlock(&fs->ns);
			gc_unpin(fs, i);
			free(buf);
			return 0;
		}
		usleep(1000);
	}
	ff_mutex_lock(&fs->ns);
	i->defrag = true;
	pos = (uint64_t)i->defrag_blk * PX_BLK;
	from = pos;
	while (i->inplace_n) {
		ff_mutex_unlock(&fs->ns);
		sched_yield();
		ff_mutex_lock(&fs->ns);
	}
	ff_mutex_unlock(&fs->ns);
	while (moved < PX_DEFRAG_PASS && !atomic_load(&fs->shut)) {
		struct gc_piece pc[PX_GC_PIECES];
		uint64_t dseq = UINT64_MAX, next = 0;
		int np;
		ssize_t r;

		ff_mutex_lock(&fs->ns);
		np = i->freed || free_zones_locked(fs) <= floor
			     ? 0
			     : defrag_run_locked(fs, i, &pos, pc, &dseq, press);
		if (!np && from && !wrapped && pos == UINT64_MAX && !i->freed) {
			/* the end: on from the file's start up to where this pass began */
			pos = 0;
			wrapped = true;
			np = defrag_run_locked(fs, i, &pos, pc, &dseq, press);
		}
		if (wrapped && np && pc[0].off >= from)
			np = 0;
		ff_mutex_unlock(&fs->ns);
		if (!np)
			break;
		r = gc_move_run(fs, i, pc, np, dseq, buf, &next);
		if (r < 0) {
			ret = (int)r;
			break;
		}
		moved += (uint64_t)r;
		/* the zone filled: the rest of the run goes on in the next one */
		if ((uint64_t)r < pc[np - 1].off + pc[np - 1].len - pc[0].off)
			pos = next;
	}
	ff_mutex_lock(&fs->ns);
	i->defrag = false;
	/* the next pass goes on from here once this one moved its most */
	i->defrag_blk =
		moved >= PX_DEFRAG_PASS && pos / PX_BLK < UINT32_MAX ? (uint32_t)(pos / PX_BLK) : 0;
	/* nothing to join: wait for twice the extents; else for defrag_min more */
	i->defrag_dry = !moved && !ret;
	if (!moved)
		i->defrag_at = i->next < UINT32_MAX / 2 ? (uint32_t)i->next * 2 : UINT32_MAX;
	else
		i->defrag_at = i->next < UINT32_MAX - fs->defrag_min
				       ? (uint32_t)i->next + fs->defrag_min
				       : UINT32_MAX;
	ff_mutex_unlock(&fs->ns);
	/* a read that mapped the old blocks before the re-point is done after this */
	ff_cache_invalidate_begin(i->ci);
	ff_cache_invalidate_end(i->ci);
	ff_mutex_unlock(&i->io_lock);
	gc_unpin(fs, i);
	free(buf);
	atomic_fetch_add(&fs->st_defrag_passes, 1);
	atomic_fetch_add(&fs->st_defrag_bytes, moved);
	if (ret && ret != -ENOSPC)
		ff_err("posix: defragmentation of inode %llu failed: %s", (unsigned long long)ino,
		       strerror(-ret));
	return ret;
}

/*
 * Empty zone z and free it. No lock held; the caller set zo->victim and
 * clears it. Returns
 * 1 when the zone was freed, 0 when live blocks stay (an inode was busy), or
 * -errno.
 */
static int gc_zone(struct px_fs *fs, uint32_t z)
{
	struct px_zone *zo = &fs->zones[z];
	uint64_t *inos = NULL, seq, t0;
	size_t n = 0;
	struct px_buf b = {0};
	void *buf = NULL;
	int ret = 0;
	bool busy = false;

	if (posix_memalign(&buf, PX_BLK, PX_GC_CHUNK))
		return -ENOMEM;
	ff_mutex_lock(&fs->ns);
	/* in-place overwrites mapped before the mark land first: the copy reads them */
	while (zo->inplace) {
		ff_mutex_unlock(&fs->ns);
		sched_yield();
		ff_mutex_lock(&fs->ns);
	}
	t0 = gc_clock_ns();
	/* the inodes with blocks in it: its owners */
	if (zo->own_n) {
		inos = malloc(zo->own_n * sizeof(*inos));
		if (!inos)
			ret = -ENOMEM;
	}
	for (uint32_t k = 0; k < zo->own_cap && !ret; k++)
		if (zo->own[k].i)
			inos[n++] = zo->own[k].i->ino;
	atomic_fetch_add(&fs->gc_find_ns, gc_clock_ns() - t0);
	ff_mutex_unlock(&fs->ns);
	for (size_t k = 0; k < n && !ret; k++) {
		ret = gc_move_inode(fs, z, inos[k], buf);
		if (ret == -EBUSY) {
			busy = true;
			ret = 0;
		}
	}
	reap(fs);
	ff_mutex_lock(&fs->ns);
	if (!ret && (busy || zo->valid))
		ret = 0;
	else if (!ret)
		ret = 1;
	ff_mutex_unlock(&fs->ns);
	if (ret == 1) {
		/* the copies and their EXTENT records are durable before the victim goes */
		int r = ff_dev_flush(fs->dev);

		if (!r)
			r = log_commit_all(fs);
		ff_mutex_lock(&fs->ns);
		if (!r) {
			struct px_zone tmp = *zo;

			tmp.state = PX_Z_FREE;
			rec_zone(&b, z, &tmp, zo->start);
			r = op_commit_locked(fs, &b, &seq);
		}
		ff_mutex_unlock(&fs->ns);
		if (!r)
			r = log_commit(fs, seq);
		if (!r && zo->seq)
			r = ff_zoneq_zone_op(fs->dev, z, FF_ZOP_RESET);
		if (r)
			ret = r;
		else
			atomic_fetch_add(&fs->st_gc_zones, 1);
	}
	free(b.p);
	free(inos);
	free(buf);
	return ret;
}

/*
 * One round: pick a victim and empty it. Returns the zones freed (0 or 1),
 * or 0 with *none set when there is no victim worth it.
 */
static uint32_t gc_round(struct px_fs *fs, bool *none)
{
	uint32_t tried[4];
	int n = 0, r = 0;

	*none = true;
	/* shut down: nothing can be moved (and every writer gets EIO, not ENOSPC) */
	while (n < 4 && !atomic_load(&fs->shut)) {
		uint64_t t0;
		uint32_t z;

		ff_mutex_lock(&fs->ns);
		t0 = gc_clock_ns();
		/* a victim left busy stays marked until the round ends: the next best */
		z = gc_pick_locked(fs);
		if (z != UINT32_MAX) {
			atomic_fetch_add(&fs->st_gc_victims, 1);
			atomic_fetch_add(&fs->st_gc_victim_valid, fs->zones[z].valid);
			atomic_fetch_add(&fs->st_gc_victim_room, zone_room_blk(&fs->zones[z]));
			fs->zones[z].victim = true;
			zone_changed_locked(fs, &fs->zones[z]);
		}
		atomic_fetch_add(&fs->gc_find_ns, gc_clock_ns() - t0);
		ff_mutex_unlock(&fs->ns);
		if (z == UINT32_MAX)
			break;
		*none = false;
		tried[n++] = z;
		r = gc_zone(fs, z);
		if (r < 0) {
			/* no room to move to: as if there were nothing to reclaim */
			*none = true;
			if (r != -ENOSPC)
				ff_err("posix: garbage collection of zone %u failed: %s", z,
				       strerror(-r));
			break;
		}
		if (r == 1)
			break;
	}
	ff_mutex_lock(&fs->ns);
	for (int k = 0; k < n; k++) {
		fs->zones[tried[k]].victim = false;
		zone_changed_locked(fs, &fs->zones[tried[k]]);
	}
	ff_mutex_unlock(&fs->ns);
	return r == 1;
}

/*
 * The GC thread: asleep until a writer finds free zones at or below gc_low
 * (or none for it), then rounds while free zones stay at or below gc_low
 * and victims are found; each round's end wakes throttled writers. A round
 * a writer asked for and waits for ends at once when free zones are above
 * gc_low by then (see below). It stops at gc_low + 1: every free zone kept
 * above the reserve is room that holds no garbage, so the victims are fuller
 * and each zone freed costs more.
 */
static void *gc_main(void *arg)
{
	struct px_fs *fs = arg;
	bool passed = false;

	px_in_gc = true;
	ff_mutex_lock(&fs->gc_mu);
	while (!fs->gc_stop) {
		uint32_t freed, nfree;
		uint64_t gen;
		bool none, need, force;

		/*
		 * A file queued for defragmentation when no round is wanted;
		 * when the metadata is short of room, every other time even
		 * if one is: a device kept at gc_low by writers always wants
		 * one, and the checkpoint must keep fitting as much as the
		 * data.
		 */
		if (fs->dq_n && (!fs->gc_req || (atomic_load(&fs->meta_press) && !passed))) {
			uint64_t ino = fs->dq[--fs->dq_n];

			fs->dq_busy = true;
			ff_mutex_unlock(&fs->gc_mu);
			(void)defrag_inode(fs, ino);
			ff_mutex_lock(&fs->gc_mu);
			fs->dq_busy = false;
			fs->dq_passes++;
			pthread_cond_broadcast(&fs->gc_done_cv);
			passed = true;
			continue;
		}
		passed = false;
		if (!fs->gc_req) {
			ff_cond_wait(&fs->gc_cv, &fs->gc_mu);
			continue;
		}
		need = fs->gc_need;
		force = fs->gc_force;
		fs->gc_req = fs->gc_need = fs->gc_force = false;
		fs->gc_busy = true;
		/* what the round sees is at least this new */
		gen = atomic_load(&fs->gc_gen);
		ff_mutex_unlock(&fs->gc_mu);
		/*
		 * A request made at gc_low can wait behind a round that
		 * has since freed the zone: none runs above it. A writer
		 * that asked (need) waits for a round's end and is told
		 * this one freed nothing; what it waited for (free zones
		 * above the reserve, or its throttle's gc_low) is there,
		 * and a round does not make room for promises (a victim's
		 * gain counts as room already).
		 */
		ff_mutex_lock(&fs->ns);
		nfree = free_zones_locked(fs);
		ff_mutex_unlock(&fs->ns);
		if (nfree > fs->gc_low && !force) {
			ff_mutex_lock(&fs->gc_mu);
			fs->gc_busy = false;
			if (need) {
				fs->gc_rounds++;
				fs->gc_freed = 0;
				fs->gc_none = false;
			}
			pthread_cond_broadcast(&fs->gc_done_cv);
			continue;
		}
		freed = gc_round(fs, &none);
		ff_mutex_lock(&fs->ns);
		nfree = free_zones_locked(fs);
		ff_mutex_unlock(&fs->ns);
		ff_mutex_lock(&fs->gc_mu);
		fs->gc_rounds++;
		fs->gc_freed = freed;
		fs->gc_none = none;
		fs->gc_none_gen = gen;
		fs->gc_busy = false;
		if (freed && nfree <= fs->gc_low)
			fs->gc_req = true;
		pthread_cond_broadcast(&fs->gc_done_cv);
	}
	ff_mutex_unlock(&fs->gc_mu);
	return NULL;
}

static int gc_start(struct px_fs *fs)
{
	int ret;

	fs->gc_stop = false;
	ret = -pthread_create(&fs->gc_thread, NULL, gc_main, fs);
	if (ret)
		return ret;
	ff_mutex_lock(&fs->gc_mu);
	fs->gc_on = true;
	ff_mutex_unlock(&fs->gc_mu);
	return 0;
}

/* Stop the GC thread; writers waiting for it go on (into the reserve). */
static void gc_stop(struct px_fs *fs)
{
	ff_mutex_lock(&fs->gc_mu);
	if (!fs->gc_on) {
		ff_mutex_unlock(&fs->gc_mu);
		return;
	}
	fs->gc_on = false;
	fs->gc_stop = true;
	pthread_cond_broadcast(&fs->gc_cv);
	pthread_cond_broadcast(&fs->gc_done_cv);
	ff_mutex_unlock(&fs->gc_mu);
	pthread_join(fs->gc_thread, NULL);
}

/*
 * The committer's INODE records for the times reads and writes changed
 * (attr_dirty_locked), at the size the log already holds: a write's size
 * goes with its data (its header, its EXTENT record or fsync's INODE), never
 * ahead of it. ext4 and XFS log timestamps as they change, so a crash keeps
 * the mtime of a write a commit interval old.
 */
static void log_times(struct px_fs *fs)
{
	struct px_buf b = {0};
	uint64_t *q, seq;
	size_t n;

	ff_mutex_lock(&fs->ns);
	q = fs->adq;
	n = fs->adq_n;
	fs->adq = NULL;
	fs->adq_n = fs->adq_cap = 0;
	for (size_t k = 0; k < n; k++) {
		struct px_inode *i = iget_locked(fs, q[k]);

		if (!i)
			continue;
		i->adq = false;
		if (!i->freed && i->attr_dirty) {
			rec_inode(&b, i, i->disk_size, 0);
			i->attr_dirty = false;
			atomic_fetch_add(&fs->st_cm_times, 1);
		}
	}
	/* a failure (memory) queued nothing: the times wait for the next tick */
	if (b.len && op_commit_locked(fs, &b, &seq))
		for (size_t k = 0; k < n; k++) {
			struct px_inode *i = iget_locked(fs, q[k]);

			if (i && !i->freed)
				attr_dirty_locked(fs, i);
		}
	ff_mutex_unlock(&fs->ns);
	free(b.p);
	free(q);
}

/*
 * The committer: the log's records nobody has made durable, every
 * commit_ms, and the device flushed after them, as fsyncdir does. A rename,
 * an unlink or a create without a write would otherwise stay in memory
 * until an fsync, a close after writes or the unmount: sync(2) never
 * reaches a FUSE daemon, so nothing else bounds how much a power cut takes
 * back. ext4 commits every 5 s and XFS forces its log every 30 s.
 */
static void *commit_main(void *arg)
{
	struct px_fs *fs = arg;
	struct timespec dl = ff_deadline_ms((long)fs->commit_ms);

	ff_mutex_lock(&fs->cm_mu);
	while (!fs->cm_stop) {
		uint64_t last, want;
		int r = 0;

		while (!fs->cm_stop && !fs->cm_want && r != ETIMEDOUT)
			r = ff_cond_timedwait(&fs->cm_cv, &fs->cm_mu, &dl);
		if (fs->cm_stop)
			break;
		want = fs->cm_want;
		fs->cm_want = 0;
		ff_mutex_unlock(&fs->cm_mu);
		if (want) {
			/* an fsync's records, written while it writes its data (px_fsync) */
			if (!px_writable(fs))
				(void)log_commit(fs, want);
			ff_mutex_lock(&fs->cm_mu);
			continue;
		}
		dl = ff_deadline_ms((long)fs->commit_ms);
		/* a shut-down filesystem logs nothing more, nor flushes */
		if (!px_writable(fs)) {
			log_times(fs);
			ff_mutex_lock(&fs->log);
			last = fs->next_seq - 1;
			ff_mutex_unlock(&fs->log);
			if (atomic_load(&fs->committed) < last)
				atomic_fetch_add(&fs->st_cm_commits, 1);
			/*
			 * log_commit returns at once when nothing is pending; a
			 * failed commit shuts the filesystem down, as an
			 * fsync's would. The flush also covers in-place
			 * write-back, which writes no record (the cache's
			 * flusher writes dirty data back within about a
			 * second); it costs nothing when no write is volatile.
			 */
			if (!log_commit(fs, last))
				(void)ff_dev_sync(fs->dev);
		}
		ff_mutex_lock(&fs->cm_mu);
	}
	ff_mutex_unlock(&fs->cm_mu);
	return NULL;
}

static int committer_start(struct px_fs *fs)
{
	int ret;

	fs->cm_stop = false;
	ret = -pthread_create(&fs->cm_thread, NULL, commit_main, fs);
	if (!ret)
		fs->cm_on = true;
	return ret;
}

static void committer_stop(struct px_fs *fs)
{
	if (!fs->cm_on)
		return;
	ff_mutex_lock(&fs->cm_mu);
	fs->cm_stop = true;
	pthread_cond_broadcast(&fs->cm_cv);
	ff_mutex_unlock(&fs->cm_mu);
	pthread_join(fs->cm_thread, NULL);
	fs->cm_on = false;
}

/* The room of the free zones only garbage collection may open. Caller holds ns. */
static uint64_t gc_reserve_blk_locked(struct px_fs *fs)
{
	uint64_t n = 0;

	for (uint32_t k = 0, r = 0; k < fs->nr_zones && r < fs->gc_reserve; k++) {
		struct px_zone *zo = &fs->zones[k];

		if (zone_free_locked(fs, zo)) {
			n += zone_room_blk(zo);
			r++;
		}
	}
	return n;
}

/* What zo adds to avail_blocks_locked's sum. Caller holds ns. */
static uint64_t zone_avail_locked(struct px_fs *fs, const struct px_zone *zo)
{
	uint64_t left = zo->start + zo->cap - zo->wp, n = 0;

	if (zone_free_locked(fs, zo))
		n += zone_room_blk(zo);
	/* the collector's own zone is where the gains below are made: not writers' room */
	else if (data_zone(zo) && zo->slot >= 0 && zo->slot < fs->nslots && left >= 2 * PX_BLK)
		n += left / PX_BLK - 1;
	return n + gc_gain_locked(fs, zo);
}

/*
 * Blocks that new data can fill, now or once garbage collection has taken
 * every victim it would: free and open rooms and each victim's gain, less the
 * collector's reserve and the room kept for overwrites (op_blk). Caller holds
 * ns.
 */
static uint64_t avail_blocks_locked(struct px_fs *fs)
{
	uint64_t n = 0, gcr = gc_reserve_blk_locked(fs);

	ff_assert_held(&fs->ns);
	for (uint32_t k = 0; k < fs->nr_zones; k++)
		n += zone_avail_locked(fs, &fs->zones[k]);
	gcr += fs->op_blk;
	return n > gcr ? n - gcr : 0;
}

/*
 * Reserved blocks are written with a data header per write. When the
 * collector has a zone of its own, it reclaims the headers of small writes
 * (a zone of them gains more than 1/PX_GC_MIN_GAIN of its room once its data
 * is copied without headers), so a reservation keeps room for one header per
 * PX_RESV_HDR_EVERY blocks, what writes of 64 KiB or more leave. Without
 * that zone every copy carries headers too and the collector would not take
 * such a zone: one header per block, what 4 KiB sync writes leave.
 */
#define PX_RESV_HDR_EVERY 16

/*
 * What blk reserved blocks need when they are written: the blocks, their
 * headers (see PX_RESV_HDR_EVERY), one header per zone they may span (a write
 * cut at a zone's end) and two more, and, when the collector writes into a
 * zone of its own, that zone's room: what a victim gains is made there, and
 * the room it has left when no victim remains is no writer's.
 */
static uint64_t resv_cost_blk(const struct px_fs *fs, uint64_t blk)
{
	uint64_t zone_blk = fs->zone_size / PX_BLK - 1;
	uint64_t hdr = fs->gc_slot ? blk / PX_RESV_HDR_EVERY : blk;

	return blk + hdr + blk / zone_blk + 2 + (fs->gc_slot ? zone_blk : 0);
}

/*
 * Whether a write of [off, off+len) that is not in place may go on: its blocks
 * that no extent maps or reserves and no delayed allocation holds are new live
 * data (a write-through's), which must leave the promises (fallocate's
 * reservations, buffered writes' delayed allocations) their room
 * (resv_cost_blk) in what can be written (avail_blocks_locked); -ENOSPC when
 * it does not, and the room kept for overwrites (op_blk) too. A write-back of
 * blocks that were promised has none such. Without promises or sequential
 * zones the zones' own accounting and the collector give the same limit, and
 * the collector's moves bring no new data. Caller holds ns. Returns 0 or
 * -ENOSPC.
 */
static int resv_admit_locked(struct px_fs *fs, struct px_inode *i, uint64_t off, uint64_t len)
{
	uint64_t need, promised = promised_locked(fs);

	ff_assert_held(&fs->ns);
	if ((!promised && !fs->op_blk) || px_in_gc)
		return 0;
	need = unreserved_blocks_locked(i, ff_round_down(off, PX_BLK),
					ff_round_up(off + len, PX_BLK), NULL, 0, NULL);
	if (!need)
		return 0;
	if (!promised)
		return blocks_fit_locked(fs, need) ? 0 : -ENOSPC;
	return blocks_fit_locked(fs, need + 1 + resv_cost_blk(fs, promised)) ? 0 : -ENOSPC;
}

/*
 * The dead blocks of an open zone (an unlinked file's, a rewrite's old
 * copy): what the collector gains from it once it is full, as for a full
 * zone (gc_gain_locked), the blocks written into it meanwhile being live.
 * Admission leaves them out (the zone must fill first); statfs counts them,
 * since a fill goes through them. Caller holds ns.
 */
static uint64_t open_gain_locked(struct px_fs *fs, const struct px_zone *zo)
{
	uint64_t used = (zo->wp - zo->start) / PX_BLK, cost;

	ff_assert_held(&fs->ns);
	if (!data_zone(zo) || zo->state != PX_Z_OPEN || zo->victim)
		return 0;
	cost = gc_cost(fs, zo);
	return used > cost && used - cost >= zone_room_blk(zo) / PX_GC_MIN_GAIN ? used - cost : 0;
}

static int px_statfs(struct ff_fs *gfs, struct statvfs *st)
{
	struct px_fs *fs = px_of(gfs);
	uint64_t total = 0, unused = 0, zavail = 0, ogain = 0;

	memset(st, 0, sizeof(*st));
	ff_mutex_lock(&fs->ns);
	/*
	 * One walk of the zone table, under the namespace lock that every
	 * change takes: each zone's unused blocks (zone_unused_blk), its part
	 * of avail_blocks_locked and its open gain (open_gain_locked).
	 */
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *zo = &fs->zones[k];

		if (!data_zone(zo))
			continue;
		total += zo->cap / PX_BLK;
		unused += zone_unused_blk(zo);
		zavail += zone_avail_locked(fs, zo);
		ogain += open_gain_locked(fs, zo);
	}
	{
		/*
		 * Free: what holds no live data, less the zones only garbage
		 * collection may open, the blocks fallocate reserved and those
		 * dirty cached data holds (delayed allocations). Available: what
		 * writes can still fill, now or after garbage collection (of the
		 * open zones too, open_gain_locked): the room left once the
		 * promises have theirs (resv_cost_blk, with the collector's
		 * zone), less the headers of large writes (one per
		 * PX_MAX_WRITE, one per zone). fallocate's promise costs more
		 * (promise_room_locked): a header per 16 blocks or per block,
		 * what small writes into it may leave.
		 */
		uint64_t gcr0 = gc_reserve_blk_locked(fs) + fs->op_blk;
		uint64_t gcr = gcr0 + fs->resv_blk + fs->da_blk;
		uint64_t avail = (zavail > gcr0 ? zavail - gcr0 : 0) + ogain;
		uint64_t cost = resv_cost_blk(fs, promised_locked(fs));
		uint64_t r = avail > cost ? avail - cost : 0;

		st->f_bfree = unused > gcr ? unused - gcr : 0;
		st->f_bavail = r - r / (PX_MAX_WRITE / PX_BLK + 1) - r / (fs->zone_size / PX_BLK);
		if (st->f_bavail > st->f_bfree)
			st->f_bavail = st->f_bfree;
	}
	/*
	 * Inodes: those there are, and as many more as the room left for the
	 * checkpoint holds at PX_INODE_EST bytes each (a file's INODE and
	 * DIRENT_ADD with a name of some 30 bytes): what meta_room_locked lets
	 * creates have, as measured again after enough changes (meta_now_locked:
	 * removed files show as free inodes).
	 */
	{
		uint64_t room = cp_room(fs) / 8 * PX_META_NAMES, est = meta_now_locked(fs);

		st->f_ffree = est < room ? (room - est) / PX_INODE_EST : 0;
		st->f_favail = st->f_ffree;
		st->f_files = fs->icount + st->f_ffree;
	}
	ff_mutex_unlock(&fs->ns);
	st->f_bsize = st->f_frsize = PX_BLK;
	st->f_blocks = total;
	st->f_namemax = PX_NAME_MAX;
	return 0;
}

/*
 * user.foliofs.stats: "name value" lines, as the zonefs format's, with the
 * same names for what both have (device, zone queue, cache, write
 * amplification) so that foliofs stat reads either; then this format's log,
 * GC and zone states. zone_map is one character per zone, in zone order
 * (. free, o open, F full, G being collected, M metadata, S superblock),
 * the one line whose value is not a number.
 */
#define PX_MAP_MAX 128

static int px_stats_text(struct ff_fs *gfs, char *buf, size_t len)
{
	static const char zc[] = {[PX_Z_FREE] = '.',
				  [PX_Z_OPEN] = 'o',
				  [PX_Z_FULL] = 'F',
				  [PX_Z_META] = 'M',
				  [PX_Z_SUPER] = 'S'};
	struct px_fs *fs = px_of(gfs);
	uint32_t nfree = 0, nopen = 0, nfull = 0, nmeta = 0, nvictim = 0;
	char map[PX_MAP_MAX + 4];
	uint64_t rounds;
	size_t n;
	int r;

	ff_mutex_lock(&fs->ns);
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		const struct px_zone *z = &fs->zones[k];
		/*
		 * Free as the allocator and GC count it (full with nothing valid
		 * is free too); a free zone that cannot be opened is being opened.
		 */
		char ch = zone_free_locked(fs, z) ? '.'
			  : z->victim		  ? 'G'
			  : z->state == PX_Z_FREE ? 'o'
			  : z->state < sizeof(zc) ? zc[z->state]
						  : '?';

		nfree += ch == '.';
		nopen += ch == 'o';
		nfull += ch == 'F';
		nmeta += ch == 'M' || ch == 'S';
		nvictim += ch == 'G';
		if (k < PX_MAP_MAX)
			map[k] = ch;
	}
	snprintf(map + (fs->nr_zones < PX_MAP_MAX ? fs->nr_zones : PX_MAP_MAX), 4, "%s",
		 fs->nr_zones > PX_MAP_MAX ? "..." : "");
	r = snprintf(buf, len,
		     "format posix\nread_only %d\ninodes %zu\nzones_total %u\nzones_free %u\n"
		     "zones_open %u\nzones_full %u\nzones_meta %u\nzones_collecting %u\n"
		     "zone_map %s\nreserved_blocks %llu\ndelalloc_blocks %llu\n",
		     fs->ro, fs->icount, fs->nr_zones, nfree, nopen, nfull, nmeta, nvictim, map,
		     (unsigned long long)fs->resv_blk, (unsigned long long)fs->da_blk);
	ff_mutex_unlock(&fs->ns);
	if (r < 0 || (size_t)r >= len)
		goto out;
	n = (size_t)r;
	ff_mutex_lock(&fs->gc_mu);
	rounds = fs->gc_rounds;
	ff_mutex_unlock(&fs->gc_mu);
	r = snprintf(
		buf + n, len - n,
		"log_writes %llu\nlog_bytes %llu\nlog_commit_calls %llu\ncheckpoints %llu\n"
		"data_header_writes %llu\ninplace_writes %llu\nzone_opens %llu\n"
		"gc_rounds %llu\ngc_zones_freed %llu\ngc_bytes_moved %llu\ngc_blocks_moved %llu\n"
		"gc_writer_waits %llu\ngc_writer_yields %llu\ngc_reserve_zones %u\ngc_low_zones %u\n"
		"gc_victims %llu\ngc_victim_valid_blocks %llu\ngc_victim_blocks %llu\n"
		"gc_header_writes %llu\nlog_extent_runs %llu\nlog_run_extents %llu\n"
		"defrag_passes %llu\ndefrag_bytes %llu\ndata_pieces_joined %llu\n"
		"committer_commits %llu\ncommitter_times %llu\n",
		(unsigned long long)atomic_load(&fs->st_log_writes),
		(unsigned long long)atomic_load(&fs->st_log_bytes),
		(unsigned long long)atomic_load(&fs->st_commits),
		(unsigned long long)atomic_load(&fs->st_ckpts),
		(unsigned long long)atomic_load(&fs->st_hdr_writes),
		(unsigned long long)atomic_load(&fs->st_inplace),
		(unsigned long long)atomic_load(&fs->st_zone_opens), (unsigned long long)rounds,
		(unsigned long long)atomic_load(&fs->st_gc_zones),
		(unsigned long long)atomic_load(&fs->st_gc_bytes),
		(unsigned long long)(atomic_load(&fs->st_gc_bytes) / PX_BLK),
		(unsigned long long)atomic_load(&fs->st_gc_waits),
		(unsigned long long)atomic_load(&fs->st_gc_yields), fs->gc_reserve, fs->gc_low,
		(unsigned long long)atomic_load(&fs->st_gc_victims),
		(unsigned long long)atomic_load(&fs->st_gc_victim_valid),
		(unsigned long long)atomic_load(&fs->st_gc_victim_room),
		(unsigned long long)atomic_load(&fs->st_gc_hdrs),
		(unsigned long long)atomic_load(&fs->st_runs),
		(unsigned long long)atomic_load(&fs->st_run_exts),
		(unsigned long long)atomic_load(&fs->st_defrag_passes),
		(unsigned long long)atomic_load(&fs->st_defrag_bytes),
		(unsigned long long)atomic_load(&fs->st_pieces),
		(unsigned long long)atomic_load(&fs->st_cm_commits),
		(unsigned long long)atomic_load(&fs->st_cm_times));
	/* then the lines every format gives */
	if (r >= 0 && (size_t)r < len - n) {
		n += (size_t)r;
		r = ff_fs_io_stats_text(fs->dev, fs->cache, buf + n, len - n);
	}
	if (r >= 0)
		r += (int)n;
out:
	return r < 0 ? -EIO : (size_t)r >= len ? (int)len - 1 : r;
}

static int px_zone_text(struct ff_fs *gfs, uint64_t ino, char *buf, size_t len)
{
	struct px_fs *fs = px_of(gfs);
	struct px_inode *i;
	size_t n = 0;

	ff_mutex_lock(&fs->ns);
	i = iget_locked(fs, ino);
	if (!i) {
		ff_mutex_unlock(&fs->ns);
		return -ENOENT;
	}
	n += (size_t)snprintf(buf, len, "extents %zu\n", i->next);
	for (size_t k = 0; k < i->next && k < 16 && n < len; k++) {
		if (i->ext[k].dev == PX_UNWRITTEN)
			n += (size_t)snprintf(buf + n, len - n, "%llu+%llu reserved\n",
					      (unsigned long long)i->ext[k].off,
					      (unsigned long long)i->ext[k].len);
		else
			n += (size_t)snprintf(buf + n, len - n, "%llu+%llu @zone %u\n",
					      (unsigned long long)i->ext[k].off,
					      (unsigned long long)i->ext[k].len,
					      zone_of(fs, i->ext[k].dev));
	}
	ff_mutex_unlock(&fs->ns);
	return n >= len ? (int)len - 1 : (int)n;
}

/* ---- superblock, setup, mkfs ---- */

/*
 * How many metadata zones mkfs gives a device: about 1/64 of it, 3 at
 * least (a checkpoint and its log, the next one, and one more so that a
 * checkpoint longer than a zone fits beside the one it replaces), at most
 * PX_META_MAX. A checkpoint takes 28 bytes an extent and about 200 an
 * inode; it may fill all metadata zones but those of the one before it, so
 * about half of them: 1/128 of the device, and a device whose every 4 KiB
 * block were an extent of its own needs 1/146 of it for them. That is room
 * for some 24,000 files a GiB (PX_INODE_EST each); a device under 2 GiB
 * gets up to 1/16 of it, 32 MiB at most, so that a small image holds some
 * 50,000 files (some 24,000 under 512 MiB), as many as ext4 gives it inodes
 * within a factor of three.
 */
static uint32_t meta_zones_for(const struct ff_dev_info *di)
{
	uint64_t want = di->size / 64, n;

	if (want < (32ull << 20))
		want = di->size / 16 < (32ull << 20) ? di->size / 16 : 32ull << 20;
	n = di->zone_size ? (want + di->zone_size - 1) / di->zone_size : 0;

	if (n < PX_META_COUNT)
		n = PX_META_COUNT;
	if (n > PX_META_MAX)
		n = PX_META_MAX;
	return (uint32_t)n;
}

static uint64_t path_bytes(const char *path);

static void sb_encode(uint8_t *blk, const struct px_fs *fs, uint64_t dev_size, uint64_t raw_size,
		      uint32_t nr_cnv, uint32_t copy, const char *label)
{
	memset(blk, 0, PX_BLK);
	memcpy(blk, PX_SB_MAGIC, 8);
	set32(blk + PX_SB_VERSION, PX_VERSION);
	memcpy(blk + PX_SB_UUID, fs->uuid, 16);
	set32(blk + PX_SB_BLKSZ, PX_BLK);
	set32(blk + PX_SB_NR_ZONES, fs->nr_zones);
	set64(blk + PX_SB_ZONE_SIZE, fs->zone_size);
	set64(blk + PX_SB_DEV_SIZE, dev_size);
	set32(blk + PX_SB_META_FIRST, fs->meta_first);
	set32(blk + PX_SB_META_COUNT, fs->meta_count);
	set64(blk + PX_SB_FEATURES, fs->features);
	set32(blk + PX_SB_NR_CNV, nr_cnv);
	set32(blk + PX_SB_COPY, copy);
	set64(blk + PX_SB_RAW_SIZE, raw_size);
	memcpy(blk + PX_SB_LABEL, label, strnlen(label, FF_ZONEFS_LABEL_LEN));
	if (fs->features & PX_FEAT_DHKEY)
		memcpy(blk + PX_SB_DHKEY, fs->dhkey, 16);
	set32(blk + PX_SB_CRC, ff_crc32c(0, blk, PX_BLK));
}

/* 0, or -EINVAL (not this format), -EBADMSG (crc), -EOPNOTSUPP (version, features). */
static int sb_check(const uint8_t *blk)
{
	uint8_t tmp[PX_BLK];

	if (memcmp(blk, PX_SB_MAGIC, 8))
		return -EINVAL;
	memcpy(tmp, blk, PX_BLK);
	set32(tmp + PX_SB_CRC, 0);
	if (ff_crc32c(0, tmp, PX_BLK) != get32(blk + PX_SB_CRC))
		return -EBADMSG;
	if (get32(blk + PX_SB_VERSION) != PX_VERSION ||
	    (get64(blk + PX_SB_FEATURES) & ~PX_FEAT_KNOWN) || get32(blk + PX_SB_BLKSZ) != PX_BLK)
		return -EOPNOTSUPP;
	return 0;
}

static bool px_probe(const void *blk0)
{
	return !memcmp(blk0, PX_SB_MAGIC, 8) &&
	       get32((const uint8_t *)blk0 + PX_SB_VERSION) == PX_VERSION;
}

/* The zone table and slots from the device. fs->dev, meta_first/count set. */
static int fs_setup(struct px_fs *fs)
{
	const struct ff_dev_info *di = ff_dev_info(fs->dev);
	struct ff_zone *zr;
	uint32_t lim;
	bool any_seq = false;
	int ret = 0;

	fs->nr_zones = di->nr_zones;
	fs->zone_size = di->zone_size;
	fs->zones = calloc(fs->nr_zones, sizeof(*fs->zones));
	fs->gc_cand = calloc(fs->nr_zones, sizeof(*fs->gc_cand));
	zr = calloc(fs->nr_zones, sizeof(*zr));
	if (!fs->zones || !fs->gc_cand || !zr) {
		free(zr);
		return -ENOMEM;
	}
	if (ff_dev_report(fs->dev, 0, fs->nr_zones, zr) != (int)fs->nr_zones) {
		ret = -EIO;
		goto out;
	}
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *z = &fs->zones[k];

		z->start = zr[k].start;
		z->cap = ff_round_down(zr[k].cap, PX_BLK);
		z->seq = zr[k].type != FF_ZONE_CNV;
		any_seq |= z->seq;
		z->slot = -1;
		z->cand = UINT32_MAX;
		z->wp = z->cursor = z->start;
		z->state = k == 0 ? PX_Z_SUPER
			   : (k >= fs->meta_first && k < fs->meta_first + fs->meta_count)
				   ? PX_Z_META
				   : PX_Z_FREE;
	}
	lim = di->max_open;
	if (di->max_active && (!lim || di->max_active < lim))
		lim = di->max_active;
	/*
	 * The log's zone, the writers' slots and, when the limits leave room
	 * for it, the collector's own zone.
	 */
	fs->nslots = PX_MAX_SLOTS;
	fs->gc_slot = !lim || lim >= 3;
	fs->defrag_min = fs->o.defrag_min == FF_DEFRAG_OFF ? 0 : fs->o.defrag_min;
	fs->commit_ms =
		1000 * (fs->o.commit_s && fs->o.commit_s <= FF_COMMIT_MAX_S ? fs->o.commit_s
									    : FF_COMMIT_DEFAULT_S);
	fs->defrag_on = fs->gc_slot && !any_seq && fs->o.defrag_min != FF_DEFRAG_OFF;
	{
		const char *e = getenv("FOLIOFS_META_PRESS");

		fs->lim_press = e ? strtoull(e, NULL, 10) : 0;
	}
	if (lim && (int)lim - 1 - fs->gc_slot < fs->nslots)
		fs->nslots = lim > 1 ? (int)lim - 1 - fs->gc_slot : 1;
	for (int s = 0; s < fs->nslots + fs->gc_slot; s++) {
		ff_mutex_init(&fs->slots[s].mu);
		fs->slots[s].zone = UINT32_MAX;
	}
	ff_mutex_init(&fs->ns);
	ff_mutex_init(&fs->log);
	pthread_cond_init(&fs->log_cv, NULL);
	ff_mutex_init(&fs->gc_mu);
	pthread_cond_init(&fs->gc_cv, NULL);
	ff_mutex_init(&fs->cm_mu);
	pthread_cond_init(&fs->cm_cv, NULL);
	pthread_cond_init(&fs->gc_done_cv, NULL);
	{
		uint32_t ndata =
			fs->nr_zones > fs->meta_count + 1 ? fs->nr_zones - fs->meta_count - 1 : 0;

		/* GC moves one victim at a time: its live blocks fit one zone and a bit */
		fs->gc_reserve = ndata >= 8 ? 2 : ndata >= 4 ? 1 : 0;
		fs->gc_low = fs->gc_reserve + 1 + ndata / 32;
	}
	fs->next_ino = PX_ROOT_INO + 1;
	fs->next_dseq = 1;
	fs->next_seq = 1;
out:
	free(zr);
	return ret;
}

/* Drop every inode (no cache inode is touched: reap or the cache's destroy does that). */
static void state_clear(struct px_fs *fs)
{
	for (size_t h = 0; h < fs->icap; h++) {
		struct px_inode *i = fs->itab[h], *n;

		for (; i; i = n) {
			n = i->hnext;
			i->hnext = NULL;
			i->freed = true;
			i->dead_next = fs->dead;
			fs->dead = i;
		}
	}
	free(fs->itab);
	fs->itab = NULL;
	fs->icap = fs->icount = 0;
	fs->da_blk = 0;
	/* no inode has extents now: the zones' owners go too */
	for (uint32_t k = 0; fs->zones && k < fs->nr_zones; k++) {
		free(fs->zones[k].own);
		fs->zones[k].own = NULL;
		fs->zones[k].own_cap = fs->zones[k].own_n = 0;
	}
}

static void fs_teardown(struct px_fs *fs)
{
	state_clear(fs);
	while (fs->dead) {
		struct px_inode *n = fs->dead->dead_next;

		inode_free_mem(fs->dead);
		fs->dead = n;
	}
	for (int s = 0; s < fs->nslots + fs->gc_slot; s++)
		ff_mutex_destroy(&fs->slots[s].mu);
	ff_mutex_destroy(&fs->ns);
	ff_mutex_destroy(&fs->log);
	pthread_cond_destroy(&fs->log_cv);
	ff_mutex_destroy(&fs->gc_mu);
	pthread_cond_destroy(&fs->gc_cv);
	ff_mutex_destroy(&fs->cm_mu);
	pthread_cond_destroy(&fs->cm_cv);
	pthread_cond_destroy(&fs->gc_done_cv);
	free(fs->pend.p);
	free(fs->adq);
	free(fs->gc_cand);
	free(fs->zones);
}

/*
 * The format's fixed costs are counted in zones: the superblock's, three or
 * more metadata zones, the collector's reserve and its own zone, and the one
 * the geometry trailer cuts short, some nine in all. A device gets about 256
 * zones (256 MiB at most), so that these cost under 4% of a small one as
 * they do of a large one; but zones of 4 MiB at least while that leaves 64:
 * the log starts a checkpoint each time it fills a metadata zone, and 1 MiB
 * ones made a 256 MiB image of 8,000 files write 15 times its checkpoints.
 */
static uint64_t default_zone_size(uint64_t size)
{
	uint64_t zs = 1ull << 20;

	while (zs < FF_DEV_DEFAULT_ZONE_SIZE &&
	       (zs * 2 <= size / PX_DEFAULT_ZONES || (zs < (4u << 20) && zs * 2 <= size / 64)))
		zs *= 2;
	return zs;
}

/*
 * Whether nr zones of zone_size bytes (metadata zones of cap bytes) over a
 * device of size bytes make a filesystem with room for files, said to the
 * user when not. Every checkpoint holds a record per data zone, so small
 * zones on a large device leave the metadata zones too little room besides;
 * the zone table may take a quarter of the checkpoint's room at most (the
 * rest holds names, inodes and extents). mkfs asks before it writes.
 */
static int geometry_ok(const char *path, uint32_t nr, uint64_t zone_size, uint64_t cap,
		       uint64_t size)
{
	struct ff_dev_info di = {.size = size, .zone_size = zone_size, .nr_zones = nr};
	uint32_t meta = meta_zones_for(&di);
	uint64_t table, room;

	if (nr < PX_META_FIRST + PX_META_COUNT + 1) {
		ff_err("%s: %u zones: the posix format needs at least %u (superblock, %u metadata zones, data); use a smaller --zone-size",
		       path, nr, PX_META_FIRST + PX_META_COUNT + 1, PX_META_COUNT);
		return -ENOSPC;
	}
	table = (uint64_t)(nr - PX_META_FIRST - meta) * PX_ZONE_REC;
	room = cp_room_of(cap, meta, PX_FEAT_MZCHAIN);
	if (table > room / 4) {
		ff_err("%s: %u zones of %llu bytes are too many for %u metadata zones of that size: their table alone would take %llu KiB of the %llu KiB each checkpoint has; give mkfs.foliofs a larger --zone-size",
		       path, nr, (unsigned long long)zone_size, meta,
		       (unsigned long long)(table >> 10), (unsigned long long)(room >> 10));
		return -ENOSPC;
	}
	return 0;
}

static int mkfs_locked(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t slen)
{
	struct ff_dev_opts dopt = {
		.read_only = true, .zone_size = o->zone_size, .quiet_small = true};
	struct px_fs *fs = calloc(1, sizeof(*fs));
	const struct ff_dev_info *di;
	struct px_buf b = {0};
	struct px_inode root;
	struct ff_dev *dev = NULL;
	uint8_t *blk = NULL;
	bool zoned = false;
	uint64_t dev_size = 0, seq;
	struct stat st;
	int ret;

	if (!fs)
		return -ENOMEM;
	if (stat(path, &st) < 0) {
		ret = -errno;
		ff_err("cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ff_err("%s is neither a block device nor an image file", path);
		ret = -ENODEV;
		goto out;
	}
	if (posix_memalign((void **)&blk, PX_BLK, 16 * PX_BLK)) {
		ret = -ENOMEM;
		goto out;
	}
	if (!o->force) {
		/* foliofs's superblocks (a copy in block 1 too), or anything else there */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? pread(fd, blk, 16 * PX_BLK, 0) : 0;
		char what[160];

		if (fd >= 0)
			close(fd);
		if (n > 0 && !ff_all_zero(blk, (size_t)n)) {
			ff_err("%s already holds data in its first %zd bytes (a filesystem?); nothing was written. Use --force to format it anyway",
			       path, n);
			ret = -EEXIST;
			goto out;
		}
		if (ff_dev_signature(path, what, sizeof(what)) == 1) {
			ff_err("%s holds %s; nothing was written. Use --force to format it anyway",
			       path, what);
			ret = -EEXIST;
			goto out;
		}
	}
	/*
	 * Only a block device can be a kernel zoned device: an image file is not
	 * opened here, where a small one would be said to be too small for the
	 * default zone size on a mkfs that then succeeds.
	 */
	ret = S_ISBLK(st.st_mode) ? ff_dev_open(path, &dopt, &dev) : -ENODEV;
	if (!ret) {
		zoned = ff_dev_info(dev)->kind == FF_DEV_ZONED;
		dev_size = ff_dev_info(dev)->size;
		ff_dev_close(dev);
		dev = NULL;
	} else {
		dev_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	}
	if (zoned && (o->emulate_zoned || o->zone_opts)) {
		ff_err("%s is a zoned block device: its zones are the device's own; drop the zone options",
		       path);
		ret = -EINVAL;
		goto out;
	}
	if (!zoned) {
		struct ff_emu_opts eo = {
			.zone_size = o->zone_size ? o->zone_size : default_zone_size(dev_size),
			.zone_cap = o->zone_cap,
			.nr_cnv = o->emulate_zoned ? o->conv_zones : 0,
			.max_open = o->max_open,
			.max_active = o->max_active,
			.conventional_only = !o->emulate_zoned,
		};
		struct ff_emu_plan pl;

		/* nothing is written before the geometry is known to work */
		ret = ff_dev_plan_emulated(path, &eo, &pl);
		if (!ret)
			ret = geometry_ok(path, pl.nr_zones, pl.zone_size, pl.zone_cap, pl.size);
		/* other signatures would still name the device after mkfs (blkid, udev, mount) */
		if (!ret) {
			ret = ff_dev_wipe_signatures(path);
			if (ret)
				ff_err("%s: erasing the signatures already there failed: %s", path,
				       strerror(-ret));
		}
		if (!ret)
			ret = ff_dev_format_emulated(path, &eo, true);
		if (ret)
			goto out;
	}
	ret = ff_dev_open(path, NULL, &dev);
	if (ret)
		goto out;
	di = ff_dev_info(dev);
	fs->dev = dev;
	fs->meta_first = PX_META_FIRST;
	fs->meta_count = meta_zones_for(di);
	fs->features =
		PX_FEAT_MZCHAIN | PX_FEAT_EXTRUN | PX_FEAT_DHKEY | PX_FEAT_PIECES | PX_FEAT_SHORTDH;
	/* a zoned device's own zones: checked here, before anything is written */
	if (zoned) {
		struct ff_zone z;
		uint64_t cap = di->zone_size;

		if (ff_dev_report(dev, PX_META_FIRST, 1, &z) == 1)
			cap = z.cap;
		ret = geometry_ok(path, di->nr_zones, di->zone_size, cap, di->size);
		if (ret)
			goto out;
	}
	ret = fs_setup(fs);
	if (ret)
		goto out;
	for (uint32_t k = 0; k < di->nr_zones; k++) {
		struct ff_zone z;

		if (ff_dev_report(dev, k, 1, &z) == 1 && z.type != FF_ZONE_CNV &&
		    z.cond != FF_ZC_EMPTY) {
			ret = ff_zoneq_zone_op(dev, k, FF_ZOP_RESET);
			if (ret) {
				ff_err("%s: resetting zone %u failed: %s", path, k, strerror(-ret));
				goto out_setup;
			}
		}
	}
	if (getrandom(fs->uuid, sizeof(fs->uuid), 0) != sizeof(fs->uuid) ||
	    getrandom(fs->dhkey, sizeof(fs->dhkey), 0) != sizeof(fs->dhkey) ||
	    getrandom(&seq, sizeof(seq), 0) != sizeof(seq)) {
		ret = -EIO;
		goto out_setup;
	}
	fs->dh_seed = ff_crc32c(0, fs->dhkey, sizeof(fs->dhkey));
	/*
	 * The log's first seq is drawn at random, from 2^40 to below 2^62 (far
	 * from wrapping): the conventional metadata zones keep an older
	 * filesystem's records past the new log's end, crcs valid, and the
	 * replay takes a record for the log's next by its seq alone, as the
	 * damage probe takes one for a later record. The same workload on the
	 * old filesystem would otherwise have left, where the new log ends
	 * after a crash, a record of the very seq it expects.
	 */
	fs->next_seq = (1ull << 40) + seq % ((1ull << 62) - (1ull << 40));
	atomic_store(&fs->committed, fs->next_seq - 1);
	fs->uuid[6] = (uint8_t)((fs->uuid[6] & 0x0f) | 0x40);
	fs->uuid[8] = (uint8_t)((fs->uuid[8] & 0x3f) | 0x80);
	/* conventional metadata zones: no old header may look current */
	for (uint32_t k = fs->meta_first; k < fs->meta_first + fs->meta_count; k++) {
		if (!fs->zones[k].seq) {
			struct iovec iov = {blk, PX_BLK};

			memset(blk, 0, PX_BLK);
			if (ff_dev_write(dev, &iov, 1, fs->zones[k].start, 0) != PX_BLK) {
				ret = -EIO;
				goto out_setup;
			}
		}
	}
	/* the root directory, then the first checkpoint (generation 1) */
	memset(&root, 0, sizeof(root));
	root.ino = PX_ROOT_INO;
	root.mode = S_IFDIR | 0755;
	root.nlink = 2;
	root.atime = root.mtime = root.ctime = root.btime = now_ts(fs);
	ff_mutex_lock(&fs->ns);
	rec_inode(&b, &root, 0, 0);
	ret = op_commit_locked(fs, &b, &seq);
	ff_mutex_unlock(&fs->ns);
	if (ret)
		goto out_setup;
	fs->log_idx = fs->cp_idx = fs->meta_count - 1;
	ret = checkpoint(fs);
	if (ret)
		goto out_setup;
	{
		/* where the device layer finds its trailer once the device grew */
		uint64_t raw = zoned ? 0 : path_bytes(path);

		sb_encode(blk, fs, di->size, raw, di->nr_cnv_zones, 0, o->sb.label);
		sb_encode(blk + PX_BLK, fs, di->size, raw, di->nr_cnv_zones, 1, o->sb.label);
	}
	{
		struct iovec iov = {blk, 2 * PX_BLK};
		ssize_t r = ff_zoneq_write_at(dev, 0, &iov, 1, 0, FF_IO_DSYNC);

		ret = r == 2 * PX_BLK ? 0 : r < 0 ? (int)r : -EIO;
	}
	if (!ret)
		ret = ff_dev_flush(dev);
	/* a sequential zone 0 holds nothing more: it must not count as active */
	if (!ret && fs->zones[0].seq)
		ret = ff_zoneq_zone_op(dev, 0, FF_ZOP_FINISH);
	if (ret) {
		ff_err("%s: writing the superblock failed: %s", path, strerror(-ret));
		goto out_setup;
	}
	if (summary) {
		char zs[32];

		snprintf(
			summary, slen,
			"%s: posix format (%s device), label '%.64s', %u zones of %s (%u conventional), superblock in zone 0, metadata zones %u-%u, %u data zones, %d open data zones at a time",
			path, ff_dev_kind_name(di->kind), o->sb.label, di->nr_zones,
			ff_fs_zone_size_text(di->zone_size, zs, sizeof(zs)), di->nr_cnv_zones,
			fs->meta_first, fs->meta_first + fs->meta_count - 1,
			di->nr_zones - 1 - fs->meta_count, fs->nslots);
	}
out_setup:
	fs_teardown(fs);
out:
	free(b.p);
	free(blk);
	if (dev)
		ff_dev_close(dev);
	free(fs);
	return ret;
}

static int px_mkfs(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len)
{
	struct ff_dev_lock lk;
	int ret;

	ret = ff_dev_lock_image(path, &lk);
	if (ret)
		return ret;
	ret = mkfs_locked(path, o, summary, len);
	ff_dev_unlock_image(&lk);
	return ret;
}

/* ---- mount: checkpoint + log replay, roll-forward ---- */

/*
 * A metadata zone's bytes, read on demand. The buffer doubles as it grows
 * and the device reads land in it directly (it is aligned for O_DIRECT), so
 * reading a checkpoint of n bytes copies O(n) bytes, not O(n^2 / 1 MiB).
 */
struct mz_reader {
	struct px_fs *fs;
	uint64_t start, end; /* absolute */
	uint8_t *buf;	     /* bytes [start, start+have), PX_BLK-aligned */
	uint64_t have;
	uint64_t cap; /* bytes allocated at buf */
};

/* the first read of a zone; later ones grow with what was read, up to 16 MiB */
#define MZ_READ_CHUNK (1ull << 20)

/* Make [start, upto) readable. false when beyond the zone's data or on an error. */
static bool mz_ensure(struct mz_reader *r, uint64_t upto)
{
	if (upto > r->end)
		return false;
	while (r->start + r->have < upto) {
		uint64_t n = r->have < MZ_READ_CHUNK ? MZ_READ_CHUNK : r->have,
			 off = r->start + r->have;
		struct iovec iov;

		if (n > 16 * MZ_READ_CHUNK)
			n = 16 * MZ_READ_CHUNK;

		if (off + n > r->end)
			n = r->end - off;
		if (r->have + n > r->cap) {
			uint64_t cap = r->cap ? r->cap : MZ_READ_CHUNK;
			void *nb = NULL;

			while (cap < r->have + n)
				cap *= 2;
			if (posix_memalign(&nb, PX_BLK, cap))
				return false;
			if (r->have)
				memcpy(nb, r->buf, r->have);
			free(r->buf);
			r->buf = nb;
			r->cap = cap;
		}
		iov.iov_base = r->buf + r->have;
		iov.iov_len = n;
		if (ff_dev_read(r->fs->dev, &iov, 1, off) != (ssize_t)n)
			return false;
		r->have += n;
	}
	return true;
}

/* A reader of metadata zone z's written part, nothing read yet. */
static struct mz_reader mz_reader_of(struct px_fs *fs, uint32_t z)
{
	uint64_t start = fs->zones[z].start;

	return (struct mz_reader){
		fs,   start, fs->zones[z].seq ? ff_zoneq_wp(fs->dev, z) : start + fs->zones[z].cap,
		NULL, 0,     0};
}

/* A metadata zone's header, as the mount read it (valid: it passed mz_header). */
struct mz_head {
	bool valid;
	uint64_t gen, first_seq;
	uint32_t part;
};

static int mz_header(struct px_fs *fs, uint32_t z, struct mz_head *h)
{
	struct mz_reader r = mz_reader_of(fs, z);
	uint8_t tmp[PX_BLK];
	int ret = -EINVAL;

	if (!mz_ensure(&r, r.start + PX_BLK))
		goto out;
	memcpy(tmp, r.buf, PX_BLK);
	set32(tmp + PX_MZ_CRC, 0);
	if (memcmp(r.buf, PX_MZ_MAGIC, 8) || get32(r.buf + PX_MZ_VERSION) != PX_VERSION ||
	    ff_crc32c(0, tmp, PX_BLK) != get32(r.buf + PX_MZ_CRC) ||
	    memcmp(r.buf + PX_MZ_UUID, fs->uuid, 16))
		goto out;
	h->gen = get64(r.buf + PX_MZ_GEN);
	h->first_seq = get64(r.buf + PX_MZ_FIRST_SEQ);
	h->part = get32(r.buf + PX_MZ_PART);
	h->valid = true;
	ret = 0;
out:
	free(r.buf);
	return ret;
}

/*
 * Whether heads[idx] continues the checkpoint of generation gen whose part
 * is part - 1 and whose next record is seq expect: only the writer of that
 * checkpoint (checkpoint()) makes such a header, and generations are never
 * reused (the mount takes the newest it saw), so a stale zone does not.
 */
static bool mz_continues(const struct px_fs *fs, const struct mz_head *nh, uint64_t gen,
			 uint32_t part, uint64_t expect)
{
	return (fs->features & PX_FEAT_MZCHAIN) && part < fs->meta_count && nh->valid &&
	       nh->gen == gen && nh->part == part && nh->first_seq == expect;
}

/* A whole record at at whose crc holds: true, with its seq. */
static bool rec_valid_at(struct mz_reader *r, uint64_t at, uint64_t *seq)
{
	uint8_t hdr[PX_REC_HDR], *rh;
	uint32_t len;

	if (at % 8 || !mz_ensure(r, at + PX_REC_HDR))
		return false;
	rh = r->buf + (at - r->start);
	len = get32(rh + 4);
	if (!get16(rh) || len > (64u << 20) || !mz_ensure(r, at + PX_REC_HDR + len))
		return false;
	rh = r->buf + (at - r->start);
	memcpy(hdr, rh, PX_REC_HDR);
	set32(hdr + 16, 0);
	if (ff_crc32c(ff_crc32c(0, hdr, PX_REC_HDR), rh + PX_REC_HDR, len) != get32(rh + 16))
		return false;
	*seq = get64(rh + 8);
	return true;
}

/* How far past the log's end the mount looks for records of later seqs */
#define PX_LOG_PROBE (1ull << 20)

/*
 * The log that load_meta replayed ends at pos, where record seq expect
 * would be. Whether a record of a later seq follows (the one right after
 * the record at pos, or one that starts a block within PX_LOG_PROBE bytes),
 * as fsck.foliofs looks for them: then the record at pos is damaged, not
 * the log's end, and the user is told what the mount leaves out. The mount
 * goes on (a crash that cut a multi-block log write short can leave such a
 * record too, and nothing in that write was acknowledged); its next commit
 * writes over them.
 */
static void log_damage_note(struct mz_reader *r, uint32_t z, uint64_t pos, uint64_t expect)
{
	uint64_t seq = 0, later = 0;

	if (mz_ensure(r, pos + PX_REC_HDR)) {
		uint8_t *rh = r->buf + (pos - r->start);
		uint32_t len = get32(rh + 4);

		if (get16(rh) && len <= (64u << 20) &&
		    rec_valid_at(r, pos + ff_round_up(PX_REC_HDR + len, 8), &seq) &&
		    seq == expect + 1)
			later = seq;
	}
	for (uint64_t at = ff_round_up(pos + 1, PX_BLK); !later && at < pos + PX_LOG_PROBE;
	     at += PX_BLK) {
		if (at + PX_REC_HDR > r->end)
			break;
		if (rec_valid_at(r, at, &seq) && seq > expect && seq < expect + (1ull << 32))
			later = seq;
	}
	if (later)
		ff_warn("posix: metadata zone %u: the log stops at record seq %llu (offset %llu), which is damaged, and records up to seq %llu or more follow it: what they hold is not mounted, and the next commit writes over them. A crash that cut a log write short leaves this (nothing in that write was acknowledged); otherwise the device damaged the log. fsck.foliofs -n tells more; a read-only mount (-o ro) changes nothing",
			z, (unsigned long long)expect, (unsigned long long)(pos - r->start),
			(unsigned long long)later);
}

/*
 * Load the checkpoint that starts in metadata zone idx (following it into
 * the next zones while it goes on there) and replay the log after it.
 * heads: every metadata zone's header. Returns 0 (the state is loaded, the
 * log position set), -EAGAIN (no complete checkpoint there: try an older
 * zone), or -errno.
 */
static int load_meta(struct px_fs *fs, uint32_t idx, const struct mz_head *heads)
{
	const struct mz_head *h = &heads[idx];
	uint32_t z = fs->meta_first + idx, part = 0, first_idx = idx;
	struct mz_reader r = mz_reader_of(fs, z);
	uint64_t pos, expect = h->first_seq, good_end, grp_seqs = 0, nseq;
	size_t *grp = NULL, ngrp = 0, cgrp = 0;
	bool cp_done = false;
	int ret = 0;

	if (h->part)
		return -EAGAIN; /* the middle of a checkpoint */
	pos = good_end = r.start + PX_BLK;
	for (;;) {
		uint8_t *rh;
		uint16_t type, flags;
		uint32_t len;
		uint64_t seq;

		if (!mz_ensure(&r, pos + PX_REC_HDR))
			goto zone_end;
		rh = r.buf + (pos - r.start);
		type = get16(rh);
		if (type == PX_R_PAD) {
			if (pos % PX_BLK == 0)
				goto zone_end;
			pos = ff_round_up(pos, PX_BLK);
			continue;
		}
		if (!rec_valid_at(&r, pos, &seq) || seq != expect)
			goto zone_end;
		rh = r.buf + (pos - r.start);
		len = get32(rh + 4);
		flags = get16(rh + 2);
		if (expect == h->first_seq && type != PX_R_CP_BEGIN)
			break;
		if (ngrp == cgrp) {
			size_t *g = realloc(grp, (cgrp ? cgrp * 2 : 16) * sizeof(*g));

			if (!g) {
				ret = -ENOMEM;
				goto out;
			}
			grp = g;
			cgrp = cgrp ? cgrp * 2 : 16;
		}
		grp[ngrp++] = pos;
		pos += ff_round_up(PX_REC_HDR + len, 8);
		nseq = px_rec_seqs(rh);
		expect += nseq;
		grp_seqs += nseq;
		if (flags & PX_REC_CONT)
			continue;
		/* a whole operation: apply it */
		ff_mutex_lock(&fs->ns);
		for (size_t k = 0; k < ngrp && !ret; k++) {
			uint8_t *q = r.buf + (grp[k] - r.start);
			uint64_t ino;

			ret = apply_rec(fs, get16(q), q + PX_REC_HDR, get32(q + 4), get64(q + 8),
					&ino);
			if (get16(q) == PX_R_CP_END)
				cp_done = true;
		}
		ff_mutex_unlock(&fs->ns);
		if (ret) {
			ff_err("posix: metadata zone %u: record seq %llu does not fit the state (%s)",
			       z, (unsigned long long)(expect - 1), strerror(-ret));
			goto out;
		}
		ngrp = 0;
		grp_seqs = 0;
		good_end = pos;
		continue;
zone_end:
		/*
		 * A checkpoint longer than a zone goes on in the next one; the
		 * log after it never does (a full zone starts a checkpoint).
		 */
		if (cp_done || ngrp ||
		    !mz_continues(fs, &heads[(idx + 1) % fs->meta_count], h->gen, part + 1, expect))
			break;
		idx = (idx + 1) % fs->meta_count;
		part++;
		z = fs->meta_first + idx;
		free(r.buf);
		r = mz_reader_of(fs, z);
		pos = good_end = r.start + PX_BLK;
	}
	if (!cp_done) {
		ret = -EAGAIN;
		goto out;
	}
	log_damage_note(&r, z, pos, expect);
	fs->cp_idx = first_idx;
	fs->log_idx = idx;
	fs->log_off = ff_round_up(good_end, PX_BLK);
	fs->gen = h->gen;
	/* the next record follows the last whole operation */
	{
		uint64_t last = expect - 1 - grp_seqs;

		fs->next_seq = last + 1;
		atomic_store(&fs->committed, last);
	}
out:
	free(grp);
	free(r.buf);
	return ret;
}

/*
 * Whether the piece table of the header hb, of len bytes of data, is sound:
 * none (*np = 0), or pieces of whole blocks in increasing file order that
 * add up to len, on a filesystem that writes them (PX_FEAT_PIECES).
 */
static bool pieces_ok(const struct px_fs *fs, const uint8_t *hb, uint64_t len, uint32_t *np)
{
	uint64_t sum = 0, next = 0;

	*np = get32(hb + PX_DH_NPIECE);
	if (!*np)
		return true;
	if (!(fs->features & PX_FEAT_PIECES) || *np < 2 || *np > PX_DH_PIECES_MAX)
		return false;
	for (uint32_t k = 0; k < *np; k++) {
		const uint8_t *pc = hb + PX_DH_PIECES + k * PX_DH_PIECE_SZ;
		uint64_t off = get64(pc), n = get64(pc + 8);

		if (!n || n % PX_BLK || off % PX_BLK || off < next || n > len - sum ||
		    off > UINT64_MAX - n)
			return false;
		sum += n;
		next = off + n;
	}
	return sum == len;
}

/*
 * Whether the hlen bytes at h are a data header of zone zo's epoch: a whole
 * one (PX_BLK) or a short one (PX_SDH_LEN, one range), its magic, version
 * and keyed crc. What it says of the data is checked by the caller.
 */
static bool dh_valid(const struct px_fs *fs, const struct px_zone *zo, const uint8_t *h,
		     uint32_t hlen)
{
	uint8_t tmp[PX_BLK];

	if (memcmp(h, hlen == PX_BLK ? PX_DH_MAGIC : PX_SDH_MAGIC, 8) ||
	    get32(h + PX_DH_VERSION) != PX_VERSION || get64(h + PX_DH_EPOCH) != zo->epoch ||
	    (hlen != PX_BLK && get32(h + PX_DH_NPIECE)))
		return false;
	memcpy(tmp, h, hlen);
	set32(tmp + PX_DH_CRC, 0);
	return ff_crc32c(fs->dh_seed, tmp, hlen) == get32(h + PX_DH_CRC);
}

/*
 * The times of the headers a roll-forward applied (PX_DH_MTIME), gathered
 * over every open zone: a file's headers may lie in several, whose order is
 * not the writes' order. Its newest header's (dseq) time is the file's.
 */
struct rf_time {
	uint64_t ino, dseq, ns;
};

struct rf_times {
	struct rf_time *v;
	size_t n, cap;
};

static int rf_time_cmp(const void *a, const void *b)
{
	const struct rf_time *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->dseq < y->dseq ? -1 : x->dseq > y->dseq;
}

static int rf_time_add(struct rf_times *rt, uint64_t ino, uint64_t dseq, uint64_t ns)
{
	if (rt->n == rt->cap) {
		size_t cap = rt->cap ? 2 * rt->cap : 64;
		struct rf_time *v = realloc(rt->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rt->v = v;
		rt->cap = cap;
	}
	rt->v[rt->n++] = (struct rf_time){ino, dseq, ns};
	return 0;
}

/*
 * Give each file the time of its newest applied header: mtime as it is
 * (a utimes before the write set it to anything, the write replaced it),
 * ctime only forward (nothing sets it back). Frees rt. Caller holds ns.
 */
static void rf_times_apply_locked(struct px_fs *fs, struct rf_times *rt)
{
	ff_assert_held(&fs->ns);
	if (rt->n)
		qsort(rt->v, rt->n, sizeof(*rt->v), rf_time_cmp);
	for (size_t k = 0; k < rt->n; k++) {
		struct px_inode *i;
		struct timespec t;

		if (k + 1 < rt->n && rt->v[k + 1].ino == rt->v[k].ino)
			continue;
		i = iget_locked(fs, rt->v[k].ino);
		if (!i)
			continue;
		t = ns_ts(rt->v[k].ns);
		i->mtime = t;
		if (i->ctime.tv_sec < t.tv_sec ||
		    (i->ctime.tv_sec == t.tv_sec && i->ctime.tv_nsec < t.tv_nsec))
			i->ctime = t;
	}
	free(rt->v);
	*rt = (struct rf_times){0};
}

/*
 * Roll forward an open data zone from its committed cursor: apply each valid
 * header of the zone's epoch (docs/posix-format.md section 4). Its crc is
 * keyed (fs->dh_seed): the blocks where a chain ends may be a file's content
 * or an older filesystem's headers, and neither passes. Sets the
 * zone's write position after the last valid one; *clean says whether that
 * is where the device's pointer is (sequential zones). The times of the
 * headers it applies go to rt.
 */
static int roll_forward(struct px_fs *fs, uint32_t z, bool *clean, struct rf_times *rt)
{
	struct px_zone *zo = &fs->zones[z];
	uint64_t pos = zo->cursor, limit = zo->seq ? ff_zoneq_wp(fs->dev, z) : zo->start + zo->cap;
	uint8_t *hb = NULL, *data = NULL;
	size_t dcap = 0;
	int ret = 0;

	if (posix_memalign((void **)&hb, PX_BLK, PX_BLK))
		return -ENOMEM;
	while (pos + PX_BLK <= limit) {
		struct iovec iov = {hb, PX_BLK};
		uint64_t len, ino, off, dseq, size;
		const uint8_t *h;
		struct px_inode *i;
		uint32_t np;
		bool data_ok;

		if (ff_dev_read(fs->dev, &iov, 1, pos) != PX_BLK)
			break;
		/*
		 * A short header first: a write of one leaves the bytes before
		 * it in the block as they were, and a whole header of this
		 * epoch there would be one whose write failed, in a
		 * conventional zone, before this one took its place.
		 */
		h = hb + PX_BLK - PX_SDH_LEN;
		if (!(fs->features & PX_FEAT_SHORTDH) || !dh_valid(fs, zo, h, PX_SDH_LEN))
			h = dh_valid(fs, zo, hb, PX_BLK) ? hb : NULL;
		if (!h)
			break;
		len = get64(h + PX_DH_LEN);
		if (!len || len % PX_BLK || len > zo->cap || pos + PX_BLK + len > limit ||
		    get64(h + PX_DH_FILE_OFF) % PX_BLK ||
		    get64(h + PX_DH_FILE_OFF) > UINT64_MAX - len || !pieces_ok(fs, h, len, &np))
			break; /* an invalid header (file ranges are whole blocks) ends the chain */
		if (len > dcap) {
			free(data);
			data = NULL;
			if (posix_memalign((void **)&data, PX_BLK, len)) {
				ret = -ENOMEM;
				goto out;
			}
			dcap = len;
		}
		iov.iov_base = data;
		iov.iov_len = len;
		if (ff_dev_read(fs->dev, &iov, 1, pos + PX_BLK) != (ssize_t)len)
			break;
		data_ok = ff_crc32c(0, data, len) == get32(h + PX_DH_DATA_CRC);
		ino = get64(h + PX_DH_INO);
		off = get64(h + PX_DH_FILE_OFF);
		dseq = get64(h + PX_DH_DSEQ);
		size = get64(h + PX_DH_SIZE);
		ff_mutex_lock(&fs->ns);
		i = iget_locked(fs, ino);
		if (data_ok) {
			if (i && S_ISREG(i->mode) && dseq > i->dseq_floor) {
				uint64_t at = 0, mt = get64(h + PX_DH_MTIME);
				bool set = false;

				if (!np) {
					ret = ext_set_newer_locked(fs, i, off, len, pos + PX_BLK,
								   dseq, &set);
				}
				for (uint32_t k = 0; k < np && !ret; k++) {
					const uint8_t *pc = h + PX_DH_PIECES + k * PX_DH_PIECE_SZ;

					ret = ext_set_newer_locked(fs, i, get64(pc), get64(pc + 8),
								   pos + PX_BLK + at, dseq, &set);
					at += get64(pc + 8);
				}
				/*
				 * Applied: its EXTENT record is not in the log, nor is
				 * anything queued after it (px_stamp_ino says why)
				 */
				if (!ret && set && mt)
					ret = rf_time_add(rt, ino, dseq, mt);
				if (size > i->disk_size)
					i->disk_size = size;
				if (size > i->size)
					i->size = size;
			}
			if (dseq >= fs->next_dseq)
				fs->next_dseq = dseq + 1;
		}
		/*
		 * A data crc that does not match is a block overwritten in place
		 * since (the log maps it) or a torn write, the last of its zone's
		 * epoch (one write in flight per zone; a mount bumps the epoch of
		 * a conventional zone): either way the header is skipped, not
		 * applied, and the chain goes on.
		 */
		ff_mutex_unlock(&fs->ns);
		if (ret)
			goto out;
		pos += PX_BLK + len;
	}
	zo->wp = pos;
	*clean = !zo->seq || pos == limit;
out:
	free(hb);
	free(data);
	return ret;
}

int px_too_small(const char *path)
{
	int ret = px_explain_resize(path, NULL);

	if (!ret) {
		ff_err("%s is too small to hold a posix filesystem", path);
		ret = -ENOSPC;
	}
	return ret;
}

/* The bytes of a device or image file (its end, as lseek sees it), or 0. */
static uint64_t path_bytes(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;

	if (fd >= 0)
		close(fd);
	return end > 0 ? (uint64_t)end : 0;
}

/*
 * A valid superblock copy of path into sb (PX_BLK bytes), read from the
 * path itself, not through the device layer: for what must be known before
 * the device opens, or when it will not. false when neither copy is valid.
 */
static bool raw_sb(const char *path, uint8_t *sb)
{
	uint8_t *blk = NULL;
	bool ok = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (!posix_memalign((void **)&blk, PX_BLK, 2 * PX_BLK) &&
	    pread(fd, blk, 2 * PX_BLK, 0) == 2 * PX_BLK) {
		for (int c = 0; c < 2 && !ok; c++) {
			if (!sb_check(blk + c * PX_BLK)) {
				memcpy(sb, blk + c * PX_BLK, PX_BLK);
				ok = true;
			}
		}
	}
	close(fd);
	free(blk);
	return ok;
}

uint64_t px_formatted_size(const char *path)
{
	uint8_t *sb = malloc(PX_BLK);
	uint64_t n = sb && raw_sb(path, sb) ? get64(sb + PX_SB_RAW_SIZE) : 0;

	free(sb);
	return n;
}

/*
 * Whether path's last 4 KiB are zeros: the trailer not overwritten but
 * gone, as when an image was cut short and grown again, which lost the
 * blocks before it too.
 */
static bool tail_zero(const char *path)
{
	uint8_t *b = malloc(PX_BLK);
	uint64_t bytes = path_bytes(path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool z = b && fd >= 0 && bytes >= PX_BLK &&
		 pread(fd, b, PX_BLK, (off_t)(bytes / PX_BLK * PX_BLK - PX_BLK)) == PX_BLK &&
		 ff_all_zero(b, PX_BLK);

	if (fd >= 0)
		close(fd);
	free(b);
	return z;
}

int px_explain_resize(const char *path, const struct ff_dev_info *di)
{
	uint8_t *s = malloc(PX_BLK);
	uint64_t bytes = path_bytes(path), zs, least;
	uint32_t nr;
	bool same;

	if (!s || !raw_sb(path, s) ||
	    (di && di->zones_recorded && di->nr_zones == get32(s + PX_SB_NR_ZONES) &&
	     di->zone_size == get64(s + PX_SB_ZONE_SIZE))) {
		free(s);
		return 0;
	}
	nr = get32(s + PX_SB_NR_ZONES);
	zs = get64(s + PX_SB_ZONE_SIZE);
	least = (uint64_t)nr * zs;
	same = get64(s + PX_SB_RAW_SIZE) == bytes && !tail_zero(path);
	free(s);
	if (!px_trailer_plan(path, NULL))
		ff_err("%s: the description of its zones that mkfs.foliofs wrote in its last 4 KiB is not there (that block was overwritten or damaged), although the device has the size it had at mkfs. Nothing was changed: fsck.foliofs -y %s writes it again from the superblock",
		       path, path);
	else if (same)
		ff_err("%s: the description of its emulated zones that mkfs.foliofs wrote in its last 4 KiB is not there (that block was overwritten or damaged), although the device has the size it had at mkfs. Nothing was changed, and nothing can write it again: the capacity and limits of emulated sequential zones are recorded there alone",
		       path);
	else if (bytes < least)
		ff_err("%s is %llu bytes, but the posix filesystem on it spans %u zones of %llu bytes (%llu bytes): it was cut short since mkfs.foliofs (an image truncated, a copy that ran out of room, a partition shrunk?), and its end, where the zones are described, is gone. Nothing was changed: mount the whole device or copy, or give a shrunk partition back its size",
		       path, (unsigned long long)bytes, nr, (unsigned long long)zs,
		       (unsigned long long)least);
	else
		ff_err("%s is %llu bytes, and the posix filesystem on it spans %u zones of %llu bytes, but the description of its zones that mkfs.foliofs wrote at the device's end is not there: its size changed since (a partition or volume grown or shrunk, an image cut short and grown again?), or its last block was overwritten. Nothing was changed: mount the whole device or copy, or give a resized partition back its size",
		       path, (unsigned long long)bytes, nr, (unsigned long long)zs);
	return -EUCLEAN;
}

int px_trailer_plan(const char *path, struct ff_emu_opts *eo)
{
	uint8_t *s = malloc(PX_BLK);
	struct ff_emu_opts o = {.conventional_only = true};
	struct ff_emu_plan pl;
	bool ok = s && raw_sb(path, s) && get32(s + PX_SB_NR_CNV) == get32(s + PX_SB_NR_ZONES) &&
		  get64(s + PX_SB_RAW_SIZE) && get64(s + PX_SB_RAW_SIZE) == path_bytes(path) &&
		  !tail_zero(path);

	if (ok) {
		o.zone_size = get64(s + PX_SB_ZONE_SIZE);
		ok = !ff_dev_plan_emulated(path, &o, &pl) &&
		     pl.nr_zones == get32(s + PX_SB_NR_ZONES) && pl.zone_size == o.zone_size &&
		     pl.size == get64(s + PX_SB_DEV_SIZE);
	}
	free(s);
	if (ok && eo)
		*eo = o;
	return ok ? 0 : -EUCLEAN;
}

/* After the device layer refused path's zones' description: what mends it, when something does. */
static void hint_trailer(const char *path)
{
	if (!px_trailer_plan(path, NULL) && ff_first_notice("trailer-fsck", path))
		ff_err("%s: the device has the size it had at mkfs: fsck.foliofs -y %s writes the description of its zones again from the superblock",
		       path, path);
}

/*
 * The superblock: copy 0 if valid, else copy 1. A block 0 that holds
 * neither copy 0 nor zeros holds something another program wrote over the
 * device's start (another mkfs?): the mount refuses to write there, since
 * it may be that program's data now. fsck (for_fsck) checks the rest
 * through copy 1 all the same and reports block 0 itself.
 */
static int read_sb(struct px_fs *fs, const char *path, bool for_fsck)
{
	uint8_t *blk = NULL;
	int ret = -EINVAL;
	bool other0;

	if (posix_memalign((void **)&blk, PX_BLK, 2 * PX_BLK))
		return -ENOMEM;
	{
		struct iovec iov = {blk, 2 * PX_BLK};

		if (ff_dev_read(fs->dev, &iov, 1, 0) != 2 * PX_BLK) {
			ret = -EIO;
			goto out;
		}
	}
	other0 = memcmp(blk, PX_SB_MAGIC, 8) && !ff_all_zero(blk, PX_BLK);
	for (int c = 0; c < 2; c++) {
		uint8_t *s = blk + c * PX_BLK;
		const struct ff_dev_info *di = ff_dev_info(fs->dev);

		ret = sb_check(s);
		if (ret == -EOPNOTSUPP) {
			/* not damage: formatting again would destroy a newer foliofs's filesystem
			 */
			ff_err("%s: superblock copy %d has version %u, features %#llx; this foliofs knows version %u, features %#llx: a newer foliofs made it",
			       path, c, get32(s + PX_SB_VERSION),
			       (unsigned long long)get64(s + PX_SB_FEATURES), PX_VERSION,
			       (unsigned long long)PX_FEAT_KNOWN);
			goto out;
		}
		if (ret)
			continue;
		/* mkfs records the zones of every device that has none of its own */
		if (!di->zones_recorded || get32(s + PX_SB_NR_ZONES) != di->nr_zones ||
		    get64(s + PX_SB_ZONE_SIZE) != di->zone_size) {
			ret = px_explain_resize(path, di);
			if (ret)
				goto out;
		}
		if (get32(s + PX_SB_NR_ZONES) != di->nr_zones ||
		    get64(s + PX_SB_ZONE_SIZE) != di->zone_size ||
		    get32(s + PX_SB_META_COUNT) < 3 || get32(s + PX_SB_META_FIRST) < 1 ||
		    (uint64_t)get32(s + PX_SB_META_FIRST) + get32(s + PX_SB_META_COUNT) >=
			    di->nr_zones) {
			ff_err("%s: the superblock's geometry does not match the device", path);
			ret = -EUCLEAN;
			continue;
		}
		memcpy(fs->uuid, s + PX_SB_UUID, 16);
		fs->meta_first = get32(s + PX_SB_META_FIRST);
		fs->meta_count = get32(s + PX_SB_META_COUNT);
		fs->features = get64(s + PX_SB_FEATURES);
		fs->short_dh = (fs->features & PX_FEAT_SHORTDH) &&
			       PX_SDH_LEN % di->lblock_size == 0 && di->pblock_size <= PX_SDH_LEN;
		if (fs->features & PX_FEAT_DHKEY) {
			memcpy(fs->dhkey, s + PX_SB_DHKEY, 16);
			fs->dh_seed = ff_crc32c(0, fs->dhkey, sizeof(fs->dhkey));
		}
		if (c && other0 && !for_fsck) {
			ff_err("%s: its first block holds other data, but its second holds a copy of a foliofs posix superblock: something other than foliofs wrote over the start of the device (another mkfs?). Nothing was changed. If nothing but foliofs should be on %s, zero its first 4096 bytes: the mount then uses the copy, and fsck.foliofs -y restores the first",
			       path, path);
			ret = -EUCLEAN;
			goto out;
		}
		if (c && !for_fsck && ff_first_notice("sb0", path)) {
			struct ff_zone z0;
			bool cnv = ff_dev_report(fs->dev, 0, 1, &z0) == 1 && z0.type == FF_ZONE_CNV;

			ff_warn("%s: the first superblock is %s; using the second%s", path,
				ff_all_zero(blk, PX_BLK) ? "zeroed" : "damaged",
				cnv ? " (fsck.foliofs -y rewrites the first from it)" : "");
		}
		break;
	}
	if (ret)
		ff_err("%s: neither copy of its posix superblock is valid (%s): it is damaged or was overwritten. Nothing was changed; mkfs.foliofs --force would make a new, empty filesystem there",
		       path, strerror(-ret));
out:
	free(blk);
	return ret;
}

static int ns_ent_cmp(const void *a, const void *b)
{
	const struct px_ns_ent *x = a, *y = b;

	return x->i->ino < y->i->ino ? -1 : x->i->ino > y->i->ino;
}

int px_ns_table_locked(struct px_fs *fs, struct px_ns_ent **out, size_t *nout)
{
	struct px_ns_ent *v = calloc(fs->icount + 1, sizeof(*v));
	size_t n = 0;

	ff_assert_held(&fs->ns);
	*out = v;
	*nout = 0;
	if (!v)
		return -ENOMEM;
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i && n <= fs->icount; i = i->hnext)
			v[n++].i = i;
	if (n > fs->icount)
		return -EUCLEAN;
	qsort(v, n, sizeof(*v), ns_ent_cmp);
	*nout = n;
	return 0;
}

struct px_ns_ent *px_ns_find(struct px_ns_ent *v, size_t n, uint64_t ino)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].i->ino == ino)
			return &v[mid];
		if (v[mid].i->ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A type an inode can have: what mknod, mkdir, symlink and create make. */
static bool ns_mode_ok(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return !(mode & ~(uint32_t)(S_IFMT | 07777));
	default:
		return false;
	}
}

/* A name an entry can have: no '/' or NUL, not "." or "..". */
static bool ns_name_ok(const char *name, size_t n)
{
	return n && n <= PX_NAME_MAX && !memchr(name, '/', n) && !memchr(name, 0, n) &&
	       !(n <= 2 && !memcmp(name, "..", n));
}

#define NS_BAD(...)                                      \
	do {                                             \
		snprintf(msg, sizeof(msg), __VA_ARGS__); \
		goto out;                                \
	} while (0)

/*
 * The namespace the log rebuilt must be a tree before anything is served or
 * freed: records with valid crcs can still describe a directory with two
 * parents or inside itself (rename's ancestor walk would never end, the
 * kernel's dcache would see a loop), an entry naming an inode that is gone, a
 * link count that lets an unlink free a named inode, a removed directory
 * whose entries the orphan reclaim would strand, a name the VFS cannot take
 * ("..", "a/b"), a readdir cookie that readdir would skip (0, or not above
 * the previous entry's), an inode of no file type, or a symlink with no
 * target (symlink(2) refuses an empty one). Checked on the whole state
 * once, in O(inodes log inodes + entries), because a checkpoint lists entries
 * in any order, so no single record can be judged alone. The same rules as
 * fsck's (posix_fsck.c), which reports every fault where this stops at the
 * first. Caller holds ns. Returns 0, -ENOMEM, or -EUCLEAN after a message
 * naming the inode.
 */
static int ns_check_locked(struct px_fs *fs, const char *path)
{
	struct px_ns_ent *v, *root, **stack = NULL;
	size_t n, nstack = 0;
	char msg[400];
	int ret = -EUCLEAN, r = px_ns_table_locked(fs, &v, &n);

	msg[0] = 0;
	if (r == -ENOMEM) {
		ret = r;
		goto out;
	}
	if (r)
		NS_BAD("the inode table holds more inodes than it counts");
	root = px_ns_find(v, n, PX_ROOT_INO);
	if (!root || !root->i->dir)
		NS_BAD("there is no root directory");
	for (size_t x = 0; x < n; x++) {
		struct px_inode *d = v[x].i;
		uint64_t subdirs = 0, live = 0, cookie = 0;

		if (!ns_mode_ok(d->mode))
			NS_BAD("inode %llu: mode %#o is no file type", (unsigned long long)d->ino,
			       d->mode);
		if (S_ISLNK(d->mode) && !d->tlen)
			NS_BAD("symlink %llu has no target", (unsigned long long)d->ino);
		if (!d->dir)
			continue;
		for (size_t k = 0; k < d->dir->n; k++) {
			struct px_dent *e = d->dir->ents[k];
			struct px_ns_ent *c;

			if (e->dead)
				continue;
			live++;
			if (!ns_name_ok(e->name, e->nlen))
				NS_BAD("directory %llu: an entry has a name no file can have ('%.*s')",
				       (unsigned long long)d->ino, (int)e->nlen, e->name);
			if (e->cookie <= cookie)
				NS_BAD("directory %llu: entry '%.*s' has readdir cookie %llu, not above the previous entry's %llu",
				       (unsigned long long)d->ino, (int)e->nlen, e->name,
				       (unsigned long long)e->cookie, (unsigned long long)cookie);
			cookie = e->cookie;
			c = px_ns_find(v, n, e->ino);
			if (!c)
				NS_BAD("directory %llu: entry '%.*s' names inode %llu, which does not exist (never made, or freed)",
				       (unsigned long long)d->ino, (int)e->nlen, e->name,
				       (unsigned long long)e->ino);
			if (c == root)
				NS_BAD("directory %llu: entry '%.*s' names the root directory (a directory cycle)",
				       (unsigned long long)d->ino, (int)e->nlen, e->name);
			if (c->i->dir) {
				if (c->names)
					NS_BAD("directory %llu has two names, in directories %llu and %llu (a directory cycle or two parents)",
					       (unsigned long long)e->ino,
					       (unsigned long long)c->parent,
					       (unsigned long long)d->ino);
				subdirs++;
			}
			c->names++;
			c->parent = d->ino;
		}
		if (!d->nlink && live)
			NS_BAD("directory %llu: removed (link count 0) but it holds %llu entries",
			       (unsigned long long)d->ino, (unsigned long long)live);
		if (d->nlink && d->nlink != 2 + subdirs)
			NS_BAD("directory %llu: link count %u, but it has %llu subdirectories",
			       (unsigned long long)d->ino, d->nlink, (unsigned long long)subdirs);
	}
	for (size_t x = 0; x < n; x++) {
		struct px_ns_ent *c = &v[x];

		if (c == root)
			continue;
		if (c->i->dir ? c->names != (c->i->nlink ? 1 : 0) : c->names != c->i->nlink)
			NS_BAD("inode %llu: link count %u, but %llu names",
			       (unsigned long long)c->i->ino, c->i->nlink,
			       (unsigned long long)c->names);
		if (c->i->dir && c->names && c->i->dir->parent != c->parent)
			NS_BAD("directory %llu: its name is in directory %llu, its parent says %llu",
			       (unsigned long long)c->i->ino, (unsigned long long)c->parent,
			       (unsigned long long)c->i->dir->parent);
	}
	/*
	 * Every directory but the root has one name now, in the directory its
	 * parent pointer says: one the walk from the root does not reach is on
	 * a cycle of parents, or below one.
	 */
	stack = malloc(sizeof(*stack) * (n + 1));
	if (!stack) {
		ret = -ENOMEM;
		goto out;
	}
	stack[nstack++] = root;
	root->reached = true;
	while (nstack) {
		struct px_dir *d = stack[--nstack]->i->dir;

		for (size_t k = 0; k < d->n; k++) {
			struct px_ns_ent *c =
				d->ents[k]->dead ? NULL : px_ns_find(v, n, d->ents[k]->ino);

			if (!c || c->reached)
				continue;
			c->reached = true;
			if (c->i->dir)
				stack[nstack++] = c;
		}
	}
	for (size_t x = 0; x < n; x++)
		if (v[x].i->dir && v[x].i->nlink && !v[x].reached)
			NS_BAD("directory %llu is not reachable from the root (a directory cycle, through its parent %llu)",
			       (unsigned long long)v[x].i->ino,
			       (unsigned long long)v[x].i->dir->parent);
	ret = 0;
out:
	if (ret == -EUCLEAN)
		ff_err("%s: the namespace is damaged: %s; the image is not mounted (run fsck.foliofs -n)",
		       path, msg);
	free(stack);
	free(v);
	return ret;
}

#undef NS_BAD

/*
 * The mount. check_ns: refuse a namespace that is not a tree (ns_check_locked);
 * fsck's mount keeps it, read-only, to report every fault itself.
 */
static int mount_common(const char *path, const struct ff_fs_opts *o, bool check_ns,
			struct ff_fs **out)
{
	struct px_fs *fs = calloc(1, sizeof(*fs));
	struct ff_dev_opts dopt = {.exclusive = true};
	struct mz_head heads[PX_META_MAX] = {0};
	struct rf_times rt = {0};
	uint32_t order[PX_META_MAX], nh = 0;
	uint64_t max_gen = 0;
	int ret;

	if (!fs)
		return -ENOMEM;
	fs->base.fmt = &ff_fmt_posix;
	if (o)
		fs->o = *o;
	fs->ro = fs->o.read_only;
	dopt.read_only = fs->o.read_only;
	dopt.lock_wait_s = fs->o.lock_wait_s;
	dopt.discard = fs->o.discard;
	dopt.quiet_small = true;
	dopt.formatted_size = px_formatted_size(path);
	ret = ff_dev_open(path, &dopt, &fs->dev);
	if (ret == -ENOSPC)
		ret = px_too_small(path);
	if (ret == -EUCLEAN && check_ns)
		hint_trailer(path);
	if (ret)
		goto out_free;
	ret = read_sb(fs, path, !check_ns);
	if (ret)
		goto out_close;
	if (fs->meta_count > PX_META_MAX) {
		ret = -EUCLEAN;
		goto out_close;
	}
	ret = fs_setup(fs);
	if (ret)
		goto out_close;
	ret = ff_cache_create(fs->dev, &px_cache_ops, &fs->o.cache, &fs->cache);
	if (ret) {
		ff_err("%s: bad cache options (cache_size must be at least 4x max_folio, max_folio a power of two)",
		       path);
		goto out_setup;
	}
	/* the newest metadata zone with a whole checkpoint */
	for (uint32_t k = 0; k < fs->meta_count; k++) {
		if (mz_header(fs, fs->meta_first + k, &heads[k]) == 0) {
			uint32_t at = nh++;

			if (heads[k].gen > max_gen)
				max_gen = heads[k].gen;
			while (at > 0 && heads[order[at - 1]].gen < heads[k].gen) {
				order[at] = order[at - 1];
				at--;
			}
			order[at] = k;
		}
	}
	ret = -EUCLEAN;
	for (uint32_t c = 0; c < nh && ret; c++) {
		ret = load_meta(fs, order[c], heads);
		if (ret) {
			ff_mutex_lock(&fs->ns);
			state_clear(fs);
			for (uint32_t k = 0; k < fs->nr_zones; k++) {
				struct px_zone *z = &fs->zones[k];

				if (data_zone(z)) {
					z->state = PX_Z_FREE;
					z->epoch = z->valid = z->next = 0;
					z->wp = z->cursor = z->start;
				}
			}
			fs->next_ino = PX_ROOT_INO + 1;
			fs->next_dseq = 1;
			ff_mutex_unlock(&fs->ns);
			reap(fs);
		}
	}
	if (ret) {
		ff_err("%s: no metadata zone holds a complete checkpoint: the filesystem is damaged",
		       path);
		ret = -EUCLEAN;
		goto out_cache;
	}
	/*
	 * The next checkpoint's generation is above every header's, also those
	 * of a newer checkpoint a crash cut short: its zones beyond the one the
	 * next checkpoint starts in must never read as that one's continuation.
	 */
	fs->gen = max_gen;
	if (check_ns) {
		ff_mutex_lock(&fs->ns);
		ret = ns_check_locked(fs, path);
		ff_mutex_unlock(&fs->ns);
		if (ret)
			goto out_cache;
	}
	/* data written after the log: roll forward; then the open zones get slots */
	for (uint32_t k = 0; k < fs->nr_zones; k++) {
		struct px_zone *z = &fs->zones[k];
		bool clean = true;
		int s;

		if (z->state != PX_Z_OPEN)
			continue;
		ret = roll_forward(fs, k, &clean, &rt);
		if (ret) {
			free(rt.v);
			goto out_cache;
		}
		for (s = 0; s < fs->nslots && fs->slots[s].zone != UINT32_MAX; s++)
			;
		if (fs->ro)
			continue;
		if (!clean || s == fs->nslots) {
			z->state = PX_Z_FULL;
			if (z->seq)
				(void)ff_zoneq_zone_op(fs->dev, k, FF_ZOP_FINISH);
			continue;
		}
		if (!z->seq)
			z->epoch++; /* what lies beyond the chain's end is never read as a header */
		z->slot = s;
		fs->slots[s].zone = k;
	}
	/* orphans: unlinked while open when the filesystem stopped */
	ff_mutex_lock(&fs->ns);
	rf_times_apply_locked(fs, &rt);
	for (size_t h = 0; h < fs->icap && !ret; h++) {
		struct px_inode *i = fs->itab[h], *n;

		for (; i && !ret; i = n) {
			n = i->hnext;
			if (!i->nlink && i->ino != PX_ROOT_INO && !fs->ro)
				inode_remove_locked(fs, i);
			else if (S_ISREG(i->mode))
				ret = trim_past_eof_locked(fs, i, NULL);
		}
	}
	if (ret) {
		ff_mutex_unlock(&fs->ns);
		goto out_cache;
	}
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			if (i->ci)
				ff_cache_inode_set_size(i->ci, i->size);
	gc_index_rebuild_locked(fs);
	fs->live = true;
	/* a read-write mount measures it with its checkpoint below */
	if (fs->ro)
		fs->meta_est = cp_measure_locked(fs);
	ff_mutex_unlock(&fs->ns);
	reap(fs);
	if (!fs->ro) {
		ret = checkpoint(fs);
		if (ret == -ENOSPC)
			ff_err("posix: the metadata no longer fits its zones for writing; a read-only "
			       "mount (-o ro) reads every file");
		if (!ret)
			ret = gc_start(fs);
		if (!ret) {
			ret = committer_start(fs);
			if (ret)
				gc_stop(fs);
		}
		if (ret)
			goto out_cache;
	}
	*out = &fs->base;
	return 0;
out_cache:
	ff_cache_destroy(fs->cache);
	fs->cache = NULL;
out_setup:
	fs_teardown(fs);
out_close:
	ff_dev_close(fs->dev);
out_free:
	free(fs);
	return ret;
}

static int px_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **out)
{
	return mount_common(path, o, true, out);
}

int ff_posix_mount_fsck(const char *path, struct ff_fs **out)
{
	struct ff_fs_opts o = {.read_only = true};

	return mount_common(path, &o, false, out);
}

static int px_unmount(struct ff_fs *gfs)
{
	struct px_fs *fs = px_of(gfs);
	int ret, r;

	committer_stop(fs);
	gc_stop(fs);
	reap(fs);
	ret = ff_cache_destroy(fs->cache);
	ff_mutex_lock(&fs->log);
	r = fs->log_err;
	ff_mutex_unlock(&fs->log);
	if (r) {
		/* shut down (px_shutdown): nothing more is written, as XFS after a shutdown */
		ff_err("posix: unmounting a filesystem shut down by a write error; what was not "
		       "committed before it is lost");
		if (!ret)
			ret = r;
	} else if (!fs->ro) {
		/* everything is written back: the sizes are on the device */
		ff_mutex_lock(&fs->ns);
		for (size_t h = 0; h < fs->icap; h++)
			for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
				if (i->disk_size < i->size)
					i->disk_size = i->size;
		ff_mutex_unlock(&fs->ns);
		r = checkpoint(fs);
		if (r && !ret)
			ret = r;
		r = ff_dev_flush(fs->dev);
		if (r && !ret)
			ret = r;
	}
	/* the cache is gone: its inodes with it */
	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			i->ci = NULL;
	ff_mutex_unlock(&fs->ns);
	fs_teardown(fs);
	ff_dev_close(fs->dev);
	free(fs);
	return ret;
}

static int px_check(const char *path, bool read_only)
{
	struct px_fs *fs = calloc(1, sizeof(*fs));
	struct ff_dev_opts dopt = {.read_only = read_only,
				   .quiet_small = true,
				   .formatted_size = px_formatted_size(path)};
	int ret;

	if (!fs)
		return -ENOMEM;
	ret = ff_dev_open(path, &dopt, &fs->dev);
	if (ret == -ENOSPC)
		ret = px_too_small(path);
	if (ret == -EUCLEAN)
		hint_trailer(path);
	if (!ret) {
		ret = read_sb(fs, path, false);
		ff_dev_close(fs->dev);
	}
	free(fs);
	return ret;
}

const struct ff_fs_fmt ff_fmt_posix = {
	.name = "posix",
	.id = FF_FMT_POSIX,
	.probe = px_probe,
	.probe_copy = px_probe,
	.mkfs = px_mkfs,
	.check = px_check,
	.fsck = ff_posix_fsck,
	.mount = px_mount,
	.unmount = px_unmount,
	.root_ino = px_root_ino,
	.lookup = px_lookup,
	.forget = px_forget,
	.getattr = px_getattr,
	.readdir = px_readdir,
	.setattr = px_setattr,
	.open = px_open,
	.release = px_release,
	.read = px_read,
	.write = px_write,
	.fsync = px_fsync,
	.fsyncdir = px_fsyncdir,
	.flush = px_flush,
	.statfs = px_statfs,
	.stats_text = px_stats_text,
	.zone_text = px_zone_text,
	.mknod = px_mknod,
	.mkdir = px_mkdir,
	.symlink = px_symlink,
	.readlink = px_readlink,
	.link = px_link,
	.unlink = px_unlink,
	.rmdir = px_rmdir,
	.rename = px_rename,
	.create = px_create,
	.setxattr = px_setxattr,
	.getxattr = px_getxattr,
	.listxattr = px_listxattr,
	.removexattr = px_removexattr,
	.fallocate = px_fallocate,
	.lseek = px_lseek,
};
