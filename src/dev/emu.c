// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Emulated zoned device: a regular file or block device whose zones behave as
 * sequential-write-required zones, at least as strictly as a host-managed
 * device, for machines without zoned hardware.
 *
 * Layout. The last logical block of the raw device holds the trailer (magic
 * "FFEMUZN1", geometry, crc32c). Below it, the record area: two record slots
 * of one logical block per zone. Zones start at offset 0, so zone 0 begins at
 * the start of the device as on a real one. Only the zones are exposed.
 *
 * Rules enforced (each failure is -EIO and changes nothing, as a device
 * would fail the command): a write to a sequential zone must start exactly at
 * its write pointer, be a multiple of the logical block, stay within the zone
 * capacity, and the zone must not be FULL/RDONLY/OFFLINE; a write may not
 * cross from a conventional zone into a sequential one. Conditions follow
 * ZBC/ZNS: a write implicitly opens an EMPTY or CLOSED zone; open makes it
 * EXP_OPEN (a FULL zone cannot be opened: -EIO); close makes an open zone
 * CLOSED (EMPTY if nothing written; closing a FULL or EMPTY zone is -EIO);
 * finish makes it FULL (an EMPTY zone needs an active slot); reset makes it
 * EMPTY. max_open counts IMP_OPEN+EXP_OPEN, max_active
 * counts open+CLOSED; an implicit open past max_open first closes another
 * implicitly open zone, and fails if all are explicitly open. Reads below
 * the write pointer return the data; reads beyond it return zeros (as ZNS).
 *
 * Persistence of the write pointer (the design essay). A naive emulator
 * would write a pointer record after every sync append: two serial durable
 * writes. Here each zone has two record slots used alternately (sequence
 * numbers pick the newer). A record says: write pointer W, and a checksum
 * (crc32c) of the data in [F, W). It is written:
 *   - with every durable (FF_IO_DSYNC) write, IN PARALLEL with the data (both
 *     RWF_DSYNC, one io_uring batch: the data first, the record once its crc
 *     is computed, while the data is in flight); then F is that write's start;
 *   - at ff_dev_flush() for zones written since their last record, before the
 *     device fsync; then F is the previous record's W;
 *   - durably, on reset/finish/open/close; and compacted (F = W) at close.
 * At open, the newest valid record is checked: if the data in [F, W) matches
 * its checksum the pointer is W, otherwise the record's data did not make it
 * and the pointer rolls back to F. F is never beyond data acknowledged
 * durable (everything acknowledged before the record was issued lies below
 * F), and W is only kept when its data is there: the pointer is never behind
 * durable data, and may be ahead of data that was never made durable, as on a
 * real device after a power cut. Non-durable writes cost no metadata I/O.
 * Model assumed: a single device write is atomic (kept whole or dropped).
 *
 * A record occupies a logical block's slot but is written as the raw
 * device's sector when that is smaller (rec_len: 512 B on a 512 B-sector
 * disk or loop device, or an image file on a file system that takes 512 B
 * direct I/O): the record fits in 512 B, a sector write is the device's unit
 * of atomicity, and a 4 KiB sync append then costs 512 B of metadata rather
 * than 4 KiB (write amplification 1.125, not 2.0). The rest of the slot is
 * never read.
 *
 * So a record's F must never stand above data that is not durable: the data
 * below F is not checked at mount. Each zone knows the fsync generation that
 * makes its data durable (nd_gen, from a write without FF_IO_DSYNC) and the
 * one that makes the data below its newest record's W durable (rec_need_gen).
 * A durable write whose zone holds non-durable data, and a flush record
 * chained onto a record whose data is not yet durable (a flush whose device
 * flush failed, or has not completed while another flush runs), first
 * fsync. The zone queue above already flushes before such a durable write,
 * so this costs nothing on its path; it keeps the emulation right by itself.
 *
 * Locking: emu->lock guards every field of struct emu_zone and the open and
 * active counts. No device I/O happens under it: a write marks its zone busy
 * (a second write to a busy zone fails as a device would, the pointer not
 * being where it aims), does its I/O, then takes the lock again to advance.
 * Flush and zone operations wait for a busy zone on emu->idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the emulation metadata is little-endian; add conversions for this host"
#endif

#define EMU_MAGIC	"FFEMUZN1"
#define EMU_VERSION	1
#define EMU_REC_MAGIC	0x5a524543u /* "ZREC" */
#define EMU_F_CONV_ONLY (1u << 0)

struct emu_trailer {
	char magic[8];
	uint32_t version;
	uint32_t lblock;
	uint64_t zone_size;
	uint64_t zone_cap;
	uint32_t nr_zones;
	uint32_t nr_cnv;
	uint32_t max_open;
	uint32_t max_active;
	uint32_t flags;
	uint32_t pad;
	uint64_t meta_start;
	uint64_t raw_size;
	uint32_t crc; /* crc32c of the struct with crc = 0 */
};

struct emu_rec {
	uint32_t magic;
	uint32_t zone;
	uint64_t seq;
	uint64_t wp;   /* relative to the zone start */
	uint64_t from; /* relative: start of the checked range */
	uint32_t data_crc;
	uint32_t cond;
	uint32_t crc; /* crc32c of the struct with crc = 0 */
	uint32_t pad;
};

struct emu_zone {
	uint64_t wp; /* relative write pointer */
	enum ff_zone_cond cond;
	bool busy;	       /* a write or record write is in flight */
	bool rec_busy;	       /* the in-flight write is a flush's record write */
	uint64_t seq;	       /* last record sequence number used */
	uint64_t rec_wp;       /* W of the newest record written */
	uint32_t acc_crc;      /* crc32c of [rec_wp, wp) written since */
	bool rec_dirty;	       /* wp moved since the newest record */
	uint64_t nd_gen;       /* fsync generation that makes the zone's data durable, 0 = it is */
	uint64_t rec_need_gen; /* fsync generation that makes the data below rec_wp durable */
	bool listed;	       /* on emu_state.dl, at dl_pos */
	uint32_t dl_pos;       /* see listed */
};

struct emu_state {
	struct ff_mutex lock;
	pthread_cond_t idle;  /* a zone stopped being busy */
	struct emu_trailer t; /* immutable */
	uint32_t rec_len;     /* immutable: bytes of a record write, a sector up to t.lblock */
	struct emu_zone *z;   /* guarded by lock */
	uint32_t nr_open;     /* IMP_OPEN + EXP_OPEN, guarded by lock */
	uint32_t nr_active;   /* open + CLOSED, guarded by lock */
	/*
	 * The zones with rec_dirty set (emu_zone.listed, dl_pos), in no
	 * order: a flush looks at these, not at every zone of the device. A
	 * zone leaves when its record is written, not when a flush takes it,
	 * so a flush running beside another still sees, and waits for, a
	 * record the other is writing. nr_zones entries; guarded by lock.
	 */
	uint32_t *dl, ndl;
	/* fsyncs started and the newest that succeeded, as in emu_fsync(); guarded by lock */
	uint64_t fs_started, fs_done;
};

static uint64_t trailer_off(uint64_t raw_size, uint32_t lb)
{
	return ff_round_down(raw_size, lb) - lb;
}

static uint32_t trailer_crc(const struct emu_trailer *t)
{
	struct emu_trailer c = *t;

	c.crc = 0;
	return ff_crc32c(0, &c, sizeof(c));
}

static uint32_t rec_crc(const struct emu_rec *r)
{
	struct emu_rec c = *r;

	c.crc = 0;
	return ff_crc32c(0, &c, sizeof(c));
}

static uint64_t slot_off(const struct emu_state *e, uint32_t zone, unsigned slot)
{
	return e->t.meta_start + ((uint64_t)zone * 2 + slot) * e->t.lblock;
}

static bool is_seq(const struct emu_state *e, uint32_t zone)
{
	return zone >= e->t.nr_cnv && !(e->t.flags & EMU_F_CONV_ONLY);
}

static bool cond_open(enum ff_zone_cond c)
{
	return c == FF_ZC_IMP_OPEN || c == FF_ZC_EXP_OPEN;
}

static bool cond_active(enum ff_zone_cond c)
{
	return cond_open(c) || c == FF_ZC_CLOSED;
}

/* Zone idx's pointer moved past its newest record: a flush writes one. Caller holds e->lock. */
static void rec_dirty_locked(struct emu_state *e, uint32_t idx)
{
	struct emu_zone *z = &e->z[idx];

	ff_assert_held(&e->lock);
	z->rec_dirty = true;
	if (!z->listed) {
		z->listed = true;
		z->dl_pos = e->ndl;
		e->dl[e->ndl++] = idx;
	}
}

bool ff_emu_records_pending(struct ff_dev *dev)
{
	struct emu_state *e = dev->emu;
	bool pending;

	ff_mutex_lock(&e->lock);
	pending = e->ndl > 0;
	ff_mutex_unlock(&e->lock);
	return pending;
}

/* Zone idx's newest record holds its pointer. Caller holds e->lock. */
static void rec_clean_locked(struct emu_state *e, uint32_t idx)
{
	struct emu_zone *z = &e->z[idx];

	ff_assert_held(&e->lock);
	z->rec_dirty = false;
	if (z->listed) {
		uint32_t last = e->dl[--e->ndl];

		e->dl[z->dl_pos] = last;
		e->z[last].dl_pos = z->dl_pos;
		z->listed = false;
	}
}

/* Change a zone's condition keeping the open/active counts. Caller holds e->lock. */
static void set_cond_locked(struct emu_state *e, struct emu_zone *z, enum ff_zone_cond c)
{
	ff_assert_held(&e->lock);
	e->nr_open -= cond_open(z->cond);
	e->nr_active -= cond_active(z->cond);
	z->cond = c;
	e->nr_open += cond_open(c);
	e->nr_active += cond_active(c);
}

/*
 * Make room to open zone idx (implicitly when expl is false). Returns 0 or
 * -EIO when the device limits forbid it. Caller holds e->lock.
 */
static int open_zone_locked(struct emu_state *e, uint32_t idx, bool expl)
{
	struct emu_zone *z = &e->z[idx];

	ff_assert_held(&e->lock);
	if (z->cond == FF_ZC_EXP_OPEN || (z->cond == FF_ZC_IMP_OPEN && !expl))
		return 0;
	if (z->cond == FF_ZC_IMP_OPEN) {
		set_cond_locked(e, z, FF_ZC_EXP_OPEN);
		return 0;
	}
	/* the kernel's errnos for zone resources: BLK_STS_ZONE_{ACTIVE,OPEN}_RESOURCE */
	if (z->cond == FF_ZC_EMPTY && e->t.max_active && e->nr_active >= e->t.max_active)
		return -EOVERFLOW;
	if (e->t.max_open && e->nr_open >= e->t.max_open) {
		uint32_t victim = UINT32_MAX;

		for (uint32_t i = e->t.nr_cnv; i < e->t.nr_zones; i++)
			if (e->z[i].cond == FF_ZC_IMP_OPEN && !e->z[i].busy) {
				victim = i;
				break;
			}
		if (victim == UINT32_MAX)
			return -ETOOMANYREFS;
		set_cond_locked(e, &e->z[victim], FF_ZC_CLOSED);
	}
	set_cond_locked(e, z, expl ? FF_ZC_EXP_OPEN : FF_ZC_IMP_OPEN);
	return 0;
}

static ssize_t raw_write(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
			 unsigned flags)
{
	if (ff_dev_fault_hook) {
		int err = ff_dev_fault_hook(dev, off, iov_len_sum(iov, iovcnt));

		if (err)
			return err;
	}
	if (!dev->direct && (flags & FF_IO_DSYNC)) {
		ssize_t r = ff_dev_raw_rw(dev, iov, iovcnt, off, true, 0);

		if (r >= 0) {
			int e = ff_dev_raw_fsync(dev);

			if (e)
				return e;
		}
		return r;
	}
	return ff_dev_raw_rw(dev, iov, iovcnt, off, true, flags);
}

/* Fill a record block for zone idx. Caller holds e->lock. */
static void make_rec_locked(struct emu_state *e, uint32_t idx, uint64_t wp, uint64_t from,
			    uint32_t data_crc, enum ff_zone_cond cond, void *blk)
{
	struct emu_rec *r = blk;

	ff_assert_held(&e->lock);
	memset(blk, 0, e->t.lblock);
	r->magic = EMU_REC_MAGIC;
	r->zone = idx;
	r->seq = ++e->z[idx].seq;
	r->wp = wp;
	r->from = from;
	r->data_crc = data_crc;
	r->cond = (uint32_t)cond;
	r->crc = rec_crc(r);
}

static void *blk_alloc(const struct emu_state *e)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, e->t.lblock))
		return NULL;
	return p;
}

/* Wait until zone idx is not busy, then mark it busy. Caller holds e->lock. */
static void claim_zone_locked(struct emu_state *e, uint32_t idx)
{
	ff_assert_held(&e->lock);
	while (e->z[idx].busy)
		ff_cond_wait(&e->idle, &e->lock);
	e->z[idx].busy = true;
}

static void release_zone_locked(struct emu_state *e, uint32_t idx)
{
	ff_assert_held(&e->lock);
	e->z[idx].busy = false;
	pthread_cond_broadcast(&e->idle);
}

/* Whether the fsync generation gen (0: none needed) has completed. Caller holds e->lock. */
static bool gen_done_locked(struct emu_state *e, uint64_t gen)
{
	ff_assert_held(&e->lock);
	return gen <= e->fs_done;
}

/*
 * A device fsync that advances the generations: every write completed
 * before it started is durable once it succeeded. Takes e->lock; may sleep.
 */
static int emu_fsync(struct ff_dev *dev)
{
	struct emu_state *e = dev->emu;
	uint64_t gen;
	int ret;

	ff_mutex_lock(&e->lock);
	gen = ++e->fs_started;
	ff_mutex_unlock(&e->lock);
	ret = ff_dev_raw_fsync(dev);
	if (!ret) {
		ff_mutex_lock(&e->lock);
		if (e->fs_done < gen)
			e->fs_done = gen;
		ff_mutex_unlock(&e->lock);
	}
	return ret;
}

/* A durable write's record, made by rec_fill() from its data. */
struct rec_fill {
	struct emu_state *e;
	uint32_t idx;
	const struct iovec *iov;
	int iovcnt;
	uint64_t wp, from;
	void *blk;
};

static void rec_fill(void *arg)
{
	struct rec_fill *rf = arg;
	struct emu_state *e = rf->e;
	uint32_t crc = ff_crc32c_iov(0, rf->iov, rf->iovcnt);

	ff_mutex_lock(&e->lock);
	make_rec_locked(e, rf->idx, rf->wp, rf->from, crc, e->z[rf->idx].cond, rf->blk);
	ff_mutex_unlock(&e->lock);
}

static ssize_t seq_write(struct ff_dev *dev, uint32_t idx, const struct iovec *iov, int iovcnt,
			 uint64_t off, size_t len, unsigned flags)
{
	struct emu_state *e = dev->emu;
	struct emu_zone *z = &e->z[idx];
	uint64_t rel = off - (uint64_t)idx * e->t.zone_size;
	bool dsync = flags & FF_IO_DSYNC, preflush = false;
	struct iovec riov;
	uint64_t rec_off = 0;
	uint32_t crc;
	void *blk = NULL;
	ssize_t res;
	int ret = 0;

	if (dsync) {
		blk = blk_alloc(e);
		if (!blk)
			return -ENOMEM;
	}
	ff_mutex_lock(&e->lock);
	/*
	 * A flush's record write is the device's own metadata, not a second
	 * writer: wait for it (failing here turned an fsync of one file into
	 * EIO for a concurrent writer of another zone).
	 */
	while (z->busy && z->rec_busy)
		ff_cond_wait(&e->idle, &e->lock);
	if (z->busy || rel != z->wp || rel + len > e->t.zone_cap || z->cond == FF_ZC_FULL ||
	    z->cond == FF_ZC_RDONLY || z->cond == FF_ZC_OFFLINE)
		ret = -EIO;
	else
		ret = open_zone_locked(e, idx, false);
	if (ret) {
		ff_mutex_unlock(&e->lock);
		free(blk);
		return ret;
	}
	z->busy = true;
	/* a non-durable write extends the running crc (a durable one's record checks its own) */
	crc = z->acc_crc;
	/* its record's F is this write's start: what lies below must be durable first */
	preflush = dsync && !gen_done_locked(e, z->nd_gen);
	ff_mutex_unlock(&e->lock);

	if (ff_dev_fault_hook && (ret = ff_dev_fault_hook(dev, off, len))) {
		res = ret;
	} else if (preflush && (ret = emu_fsync(dev))) {
		res = ret;
	} else if (dsync) {
		struct rec_fill rf = {.e = e,
				      .idx = idx,
				      .iov = iov,
				      .iovcnt = iovcnt,
				      .wp = rel + len,
				      .from = rel,
				      .blk = blk};

		/* the zone is busy: nothing else writes a record for it meanwhile */
		ff_mutex_lock(&e->lock);
		rec_off = slot_off(e, idx, (unsigned)((z->seq + 1) % 2));
		ff_mutex_unlock(&e->lock);
		riov = (struct iovec){.iov_base = blk, .iov_len = e->rec_len};
		if (!dev->direct) {
			rec_fill(&rf);
			res = raw_write(dev, iov, iovcnt, off, flags);
			if (res >= 0 && raw_write(dev, &riov, 1, rec_off, FF_IO_DSYNC) < 0)
				res = -EIO;
		} else {
			struct ff_io ios[2] = {
				{.iov = iov,
				 .iovcnt = iovcnt,
				 .off = off,
				 .write = true,
				 .flags = flags},
				{.iov = &riov,
				 .iovcnt = 1,
				 .off = rec_off,
				 .write = true,
				 .flags = FF_IO_DSYNC},
			};

			/*
			 * The record carries the data's crc, which is computed
			 * while the data is on its way: the two are independent
			 * writes, and a mount checks one against the other.
			 */
			ret = ff_dev_raw_batch_late(dev, ios, 2, 1, rec_fill, &rf);
			res = ret ? ret : ios[0].res;
			if (res >= 0 && ios[1].res < 0)
				res = ios[1].res;
		}
		if (res >= 0)
			atomic_fetch_add_explicit(&dev->st_meta_bytes, e->rec_len,
						  memory_order_relaxed);
	} else {
		crc = ff_crc32c_iov(crc, iov, iovcnt);
		res = ff_dev_raw_rw(dev, iov, iovcnt, off, true, flags);
	}

	ff_mutex_lock(&e->lock);
	if (res >= 0 && (size_t)res != len)
		res = -EIO;
	if (res >= 0) {
		z->wp += len;
		if (dsync) {
			z->rec_wp = z->wp;
			z->acc_crc = 0;
			rec_clean_locked(e, idx);
			z->nd_gen = 0;
			z->rec_need_gen = 0;
		} else {
			z->acc_crc = crc;
			rec_dirty_locked(e, idx);
			z->nd_gen = e->fs_started + 1;
		}
		if (z->wp == e->t.zone_cap)
			set_cond_locked(e, z, FF_ZC_FULL);
	}
	release_zone_locked(e, idx);
	ff_mutex_unlock(&e->lock);
	free(blk);
	return res;
}

static ssize_t emu_rw(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		      bool write, unsigned flags)
{
	struct emu_state *e = dev->emu;
	size_t len = iov_len_sum(iov, iovcnt);
	uint32_t first = (uint32_t)(off / e->t.zone_size);
	uint32_t last = (uint32_t)((off + len - 1) / e->t.zone_size);
	ssize_t res;

	if (off % e->t.lblock || len % e->t.lblock)
		return write ? -EIO : -EINVAL;
	if (write) {
		if (!is_seq(e, first) && !is_seq(e, last))
			return raw_write(dev, iov, iovcnt, off, flags);
		if (first != last)
			return -EIO; /* a sequential write may not cross its zone */
		return seq_write(dev, first, iov, iovcnt, off, len, flags);
	}
	res = ff_dev_raw_rw(dev, iov, iovcnt, off, false, 0);
	if (res < 0)
		return res;
	/* what lies beyond a sequential zone's write pointer reads as zeros */
	for (uint32_t zi = first; zi <= last; zi++) {
		uint64_t zs = (uint64_t)zi * e->t.zone_size, wp, lo, hi, pos = off;

		if (!is_seq(e, zi))
			continue;
		ff_mutex_lock(&e->lock);
		wp = zs + e->z[zi].wp;
		ff_mutex_unlock(&e->lock);
		lo = wp > off ? wp : off;
		hi = zs + e->t.zone_size < off + len ? zs + e->t.zone_size : off + len;
		for (int i = 0; i < iovcnt && lo < hi; i++) {
			uint64_t b = pos, en = pos + iov[i].iov_len;

			pos = en;
			if (en <= lo || b >= hi)
				continue;
			uint64_t s = lo > b ? lo : b, t = hi < en ? hi : en;

			memset((char *)iov[i].iov_base + (s - b), 0, t - s);
		}
	}
	return res;
}

/*
 * Whether a flush must write zone z's record: written since its last one,
 * or (compact) its record does not sit at the pointer. Caller holds e->lock.
 */
static bool rec_needed_locked(struct emu_state *e, const struct emu_zone *z, bool compact)
{
	ff_assert_held(&e->lock);
	return z->rec_dirty || (compact && z->rec_wp != z->wp);
}

/*
 * Write the record of every zone written since its last one, then fsync.
 * A flush takes the zones on the dirty list; a compacting one (at close)
 * looks at every zone.
 */
static int emu_flush_records(struct ff_dev *dev, bool compact)
{
	struct emu_state *e = dev->emu;
	void *blk = blk_alloc(e);
	uint32_t *todo = NULL, ntodo = 0;
	int ret = 0;

	if (!blk || !(todo = malloc(((size_t)e->t.nr_zones + 1) * sizeof(*todo)))) {
		free(blk);
		return -ENOMEM;
	}
	ff_mutex_lock(&e->lock);
	if (compact) {
		for (uint32_t i = e->t.nr_cnv; i < e->t.nr_zones && is_seq(e, i); i++)
			todo[ntodo++] = i;
	} else {
		memcpy(todo, e->dl, (size_t)e->ndl * sizeof(*todo));
		ntodo = e->ndl;
	}
	ff_mutex_unlock(&e->lock);
	/*
	 * A compacted record (from == wp) checks nothing at mount: the data
	 * under it must be durable before it is written, not only after.
	 */
	if (compact && (ret = emu_fsync(dev)))
		goto out_free;
	for (uint32_t k = 0; k < ntodo; k++) {
		uint32_t i = todo[k];
		struct emu_zone *z = &e->z[i];
		struct iovec riov = {.iov_base = blk, .iov_len = e->rec_len};
		uint64_t wp, roff, need;
		ssize_t r;

		ff_mutex_lock(&e->lock);
		if (!rec_needed_locked(e, z, compact)) {
			ff_mutex_unlock(&e->lock);
			continue;
		}
		claim_zone_locked(e, i);
		/*
		 * Waiting for the zone dropped the lock: another flush may have
		 * written this record meanwhile. One more, with from == wp, would
		 * have no checksum to check at mount, and a power cut could keep it
		 * over data never made durable.
		 */
		if (!rec_needed_locked(e, z, compact)) {
			release_zone_locked(e, i);
			ff_mutex_unlock(&e->lock);
			continue;
		}
		z->rec_busy = true;
		/* this record's F is the last one's W: the data below must be durable */
		if (!compact && !gen_done_locked(e, z->rec_need_gen)) {
			int r2;

			ff_mutex_unlock(&e->lock);
			r2 = emu_fsync(dev);
			ff_mutex_lock(&e->lock);
			if (r2) {
				if (!ret)
					ret = r2;
				z->rec_busy = false;
				release_zone_locked(e, i);
				ff_mutex_unlock(&e->lock);
				continue;
			}
		}
		wp = z->wp;
		need = z->nd_gen;
		if (compact)
			make_rec_locked(e, i, wp, wp, 0, z->cond, blk);
		else
			make_rec_locked(e, i, wp, z->rec_wp, z->acc_crc, z->cond, blk);
		roff = slot_off(e, i, (unsigned)(z->seq % 2));
		ff_mutex_unlock(&e->lock);
		r = raw_write(dev, &riov, 1, roff, 0);
		ff_mutex_lock(&e->lock);
		if (r >= 0) {
			z->rec_wp = wp;
			z->acc_crc = 0;
			rec_clean_locked(e, i);
			/* compacted: the fsync above made everything below wp durable */
			z->rec_need_gen = compact ? 0 : need;
			atomic_fetch_add_explicit(&dev->st_meta_bytes, e->rec_len,
						  memory_order_relaxed);
		} else if (!ret) {
			ret = (int)r;
		}
		z->rec_busy = false;
		release_zone_locked(e, i);
		ff_mutex_unlock(&e->lock);
	}
	if (!ret)
		ret = emu_fsync(dev);
out_free:
	free(todo);
	free(blk);
	return ret;
}

static int emu_flush(struct ff_dev *dev)
{
	return emu_flush_records(dev, false);
}

static int emu_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	struct emu_state *e = dev->emu;

	ff_mutex_lock(&e->lock);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t zi = first + i;
		uint64_t start = (uint64_t)zi * e->t.zone_size;

		out[i].start = start;
		out[i].len = e->t.zone_size;
		if (is_seq(e, zi)) {
			out[i].cap = e->t.zone_cap;
			out[i].type = FF_ZONE_SWR;
			out[i].cond = e->z[zi].cond;
			out[i].wp = start + e->z[zi].wp;
		} else {
			out[i].cap = e->t.zone_size;
			out[i].type = FF_ZONE_CNV;
			out[i].cond = FF_ZC_NOT_WP;
			out[i].wp = start;
		}
	}
	ff_mutex_unlock(&e->lock);
	return (int)n;
}

static int emu_zone_op(struct ff_dev *dev, uint32_t idx, enum ff_zone_op op)
{
	struct emu_state *e = dev->emu;
	struct emu_zone *z = &e->z[idx];
	enum ff_zone_cond old_cond;
	uint64_t old_wp;
	struct iovec riov;
	bool unsynced;
	void *blk;
	ssize_t r;
	int ret = 0;

	if (!is_seq(e, idx))
		return -EINVAL;
	blk = blk_alloc(e);
	if (!blk)
		return -ENOMEM;
	ff_mutex_lock(&e->lock);
	claim_zone_locked(e, idx);
	old_wp = z->wp;
	old_cond = z->cond;
	switch (op) {
	case FF_ZOP_RESET:
		z->wp = 0;
		set_cond_locked(e, z, FF_ZC_EMPTY);
		break;
	case FF_ZOP_FINISH:
		/* an empty zone passes through the active state: the limit applies */
		if (z->cond == FF_ZC_EMPTY && e->t.max_active && e->nr_active >= e->t.max_active) {
			ret = -EOVERFLOW;
			break;
		}
		if (z->cond != FF_ZC_FULL) {
			z->wp = e->t.zone_cap;
			set_cond_locked(e, z, FF_ZC_FULL);
		}
		break;
	case FF_ZOP_OPEN:
		/* ZNS "Zone Is Full", null_blk BLK_STS_IOERR: a full zone cannot open */
		if (z->cond == FF_ZC_FULL) {
			ret = -EIO;
			break;
		}
		ret = open_zone_locked(e, idx, true);
		break;
	case FF_ZOP_CLOSE:
		/* ZNS and null_blk refuse to close a full or an empty zone */
		if (z->cond == FF_ZC_FULL || z->cond == FF_ZC_EMPTY) {
			ret = -EIO;
			break;
		}
		if (cond_open(z->cond))
			set_cond_locked(e, z, z->wp ? FF_ZC_CLOSED : FF_ZC_EMPTY);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret) {
		release_zone_locked(e, idx);
		ff_mutex_unlock(&e->lock);
		free(blk);
		return ret;
	}
	make_rec_locked(e, idx, z->wp, z->wp, 0, z->cond, blk);
	riov = (struct iovec){.iov_base = blk, .iov_len = e->rec_len};
	/* data not yet durable below the pointer: this record checks nothing (from == wp) */
	unsynced = op != FF_ZOP_RESET && !gen_done_locked(e, z->nd_gen);
	{
		uint64_t roff = slot_off(e, idx, (unsigned)(z->seq % 2));
		bool exposes =
			op == FF_ZOP_FINISH && old_cond != FF_ZC_FULL && old_wp < e->t.zone_cap;

		ff_mutex_unlock(&e->lock);
		r = 0;
		/*
		 * A finish makes [old_wp, cap) readable, and a real device reads
		 * it as zeros. The reset's discard is no guarantee of that here: a
		 * power cut may have undone it after its record was durable. So
		 * the range is discarded again, and made durable with the rest.
		 */
		if (exposes) {
			r = ff_dev_raw_discard(dev, (uint64_t)idx * e->t.zone_size + old_wp,
					       e->t.zone_cap - old_wp);
			unsynced = true;
		}
		/* so it must be durable before the record claims it */
		if (r >= 0 && unsynced)
			r = emu_fsync(dev);
		if (r >= 0)
			r = raw_write(dev, &riov, 1, roff, FF_IO_DSYNC);
		/*
		 * Asked to (-o discard), hand the reset zone's blocks back, as a
		 * real device deallocates them: a TRIM, a hole in an image file.
		 * Not by default: the writes that refill the zone would then cost
		 * an image's file system an allocation and a journal commit each
		 * (4 KiB O_SYNC appends on a loop device over ext4 lose a quarter
		 * to a third of their rate), and the old blocks need no erasing
		 * to stay unseen: reads past the pointer are zeros (emu_rw) and a
		 * finish discards what it exposes. The zone is busy: no write
		 * races this. After the durable record: a crash before it must
		 * leave the zone as it was, not holes under the old pointer.
		 */
		if (r >= 0 && op == FF_ZOP_RESET && dev->discard) {
			int d = ff_dev_raw_discard(dev, (uint64_t)idx * e->t.zone_size,
						   e->t.zone_cap);

			if (d)
				ff_warn("%s: zone %u: cannot discard the data of a reset zone (%s); a later finish may expose it",
					dev->path, idx, strerror(-d));
		}
		ff_mutex_lock(&e->lock);
	}
	if (r >= 0) {
		z->rec_wp = z->wp;
		z->acc_crc = 0;
		rec_clean_locked(e, idx);
		if (op == FF_ZOP_RESET || unsynced) {
			z->nd_gen = 0;
			z->rec_need_gen = 0;
		}
		atomic_fetch_add_explicit(&dev->st_meta_bytes, e->rec_len, memory_order_relaxed);
	} else {
		/* the command failed: the zone stays as it was */
		ret = (int)r;
		z->wp = old_wp;
		set_cond_locked(e, z, old_cond);
	}
	release_zone_locked(e, idx);
	ff_mutex_unlock(&e->lock);
	free(blk);
	return ret;
}

static void emu_close(struct ff_dev *dev)
{
	struct emu_state *e = dev->emu;

	if (!e)
		return;
	if (!dev->info.read_only && emu_flush_records(dev, true))
		ff_warn("%s: could not write the zone records at close; write pointers will be rechecked at the next open",
			dev->path);
	pthread_cond_destroy(&e->idle);
	ff_mutex_destroy(&e->lock);
	free(e->z);
	free(e->dl);
	free(e);
	dev->emu = NULL;
}

const struct dev_backend ff_dev_emu_be = {
	.rw = emu_rw,
	.flush = emu_flush,
	.report = emu_report,
	.zone_op = emu_zone_op,
	.close = emu_close,
};

/* ---- open: find the trailer, rebuild the zone state from the records ---- */

static int read_block(int fd, void *blk, uint32_t lb, uint64_t off)
{
	struct iovec iov = {.iov_base = blk, .iov_len = lb};
	ssize_t r = ff_uring_rw(fd, &iov, 1, off, false, 0);

	if (r < 0)
		return (int)r;
	return (size_t)r == lb ? 0 : -EIO;
}

static bool rec_valid(const struct emu_rec *r, uint32_t idx, uint64_t cap)
{
	return r->magic == EMU_REC_MAGIC && r->zone == idx && r->crc == rec_crc(r) &&
	       r->from <= r->wp && r->wp <= cap;
}

/*
 * Rebuild zone idx from its two record slots, slots[0] and slots[1] (each
 * one logical block as read from the device; NULL for a slot known to be
 * unwritten, in a hole of the record area).
 */
static int load_zone(struct ff_dev *dev, uint32_t idx, const uint8_t *const slots[2])
{
	struct emu_state *e = dev->emu;
	struct emu_zone *z = &e->z[idx];
	struct emu_rec recs[2];
	bool ok[2];
	int best = -1;

	for (unsigned s = 0; s < 2; s++) {
		ok[s] = false;
		if (!slots[s])
			continue;
		memcpy(&recs[s], slots[s], sizeof(recs[s]));
		ok[s] = rec_valid(&recs[s], idx, e->t.zone_cap);
		if (ok[s] && (best < 0 || recs[s].seq > recs[best].seq))
			best = (int)s;
	}
	z->cond = FF_ZC_EMPTY;
	if (best < 0)
		return 0;
	{
		const struct emu_rec *r = &recs[best];
		uint64_t zs = (uint64_t)idx * e->t.zone_size, pos = r->from;
		uint32_t crc = 0;
		size_t chunk = 1 << 20;
		void *buf = NULL;

		z->seq = r->seq;
		z->wp = r->wp;
		if (r->from < r->wp) {
			if (posix_memalign(&buf, 4096, chunk))
				return -ENOMEM;
			while (pos < r->wp) {
				size_t n = r->wp - pos < chunk ? (size_t)(r->wp - pos) : chunk;
				struct iovec iov = {.iov_base = buf, .iov_len = n};
				ssize_t rr = ff_uring_rw(dev->fd, &iov, 1, zs + pos, false, 0);

				if (rr != (ssize_t)n) {
					free(buf);
					return rr < 0 ? (int)rr : -EIO;
				}
				crc = ff_crc32c(crc, buf, n);
				pos += n;
			}
			free(buf);
			if (crc != r->data_crc) {
				ff_warn("%s: zone %u: data under the last pointer record is incomplete; write pointer rolled back from %llu to %llu",
					dev->path, idx, (unsigned long long)r->wp,
					(unsigned long long)r->from);
				z->wp = r->from;
			}
		}
		z->rec_wp = z->wp;
		if (z->wp == e->t.zone_cap)
			z->cond = FF_ZC_FULL;
		else if (z->wp)
			z->cond = FF_ZC_CLOSED; /* open zones come back closed after a restart */
		if (r->cond == FF_ZC_FULL && r->from == r->wp) {
			z->cond = FF_ZC_FULL; /* finished early */
			z->wp = r->wp;
		}
	}
	return 0;
}

/*
 * Zones whose record slots are read by one device read at open: 4 MiB of
 * slots at 4 KiB blocks.
 */
#define EMU_LOAD_ZONES 512u

/*
 * Rebuild every sequential zone from the record area. The slots are read in
 * large batches, not two reads per zone, and a run of the area that the
 * device reports as a hole (SEEK_DATA on a sparse image: zones never written
 * since mkfs, which leaves the area a hole) is not read at all: mount time
 * follows the zones written, not the zones there are. A block device
 * reports everything as data and is read in batches.
 */
static int load_zones(struct ff_dev *dev)
{
	struct emu_state *e = dev->emu;
	size_t slot_pair = 2 * (size_t)e->t.lblock;
	uint8_t *buf = NULL;
	uint32_t i = e->t.nr_cnv;
	int ret = 0;

	if (posix_memalign((void **)&buf, 4096, EMU_LOAD_ZONES * slot_pair))
		return -ENOMEM;
	/* a zone whose slots lie in a hole has no record: empty */
	for (uint32_t k = e->t.nr_cnv; k < e->t.nr_zones; k++)
		e->z[k].cond = FF_ZC_EMPTY;
	while (i < e->t.nr_zones) {
		uint64_t off = slot_off(e, i, 0);
		off_t d = lseek(dev->fd, (off_t)off, SEEK_DATA);
		uint32_t n;
		ssize_t r;

		if (d < 0 && errno == ENXIO)
			break; /* a hole up to the end: every zone left is empty */
		if (d > (off_t)off) {
			uint64_t skip = ((uint64_t)d - off) / slot_pair;

			if (skip) {
				i = skip >= e->t.nr_zones - i ? e->t.nr_zones : i + (uint32_t)skip;
				continue;
			}
		}
		n = e->t.nr_zones - i < EMU_LOAD_ZONES ? e->t.nr_zones - i : EMU_LOAD_ZONES;
		{
			struct iovec iov = {.iov_base = buf, .iov_len = n * slot_pair};

			r = ff_uring_rw(dev->fd, &iov, 1, off, false, 0);
		}
		if (r != (ssize_t)(n * slot_pair)) {
			ret = r < 0 ? (int)r : -EIO;
			goto out;
		}
		for (uint32_t k = 0; k < n; k++) {
			const uint8_t *slots[2] = {buf + k * slot_pair,
						   buf + k * slot_pair + e->t.lblock};

			ret = load_zone(dev, i + k, slots);
			if (ret)
				goto out;
			e->nr_active += cond_active(e->z[i + k].cond);
		}
		i += n;
	}
out:
	free(buf);
	return ret;
}

static int emu_check_trailer(const char *path, const struct emu_trailer *t, uint64_t raw_size,
			     uint32_t dev_lb)
{
	if (memcmp(t->magic, EMU_MAGIC, 8))
		return 0;
	if (t->crc != trailer_crc(t)) {
		ff_err("%s: the description of its zones that mkfs.foliofs wrote in its last 4 KiB fails its checksum: it is corrupt, and without it the zones cannot be found. Nothing was changed",
		       path);
		return -EUCLEAN;
	}
	if (t->version != EMU_VERSION) {
		ff_err("%s: emulated-zone metadata version %u is not supported (expected %u)", path,
		       t->version, EMU_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (!t->lblock || t->lblock % dev_lb || !ff_is_pow2(t->lblock) || !t->zone_size ||
	    t->zone_size % t->lblock || !t->zone_cap || t->zone_cap > t->zone_size ||
	    t->zone_cap % t->lblock || t->nr_cnv > t->nr_zones ||
	    t->meta_start < (uint64_t)t->nr_zones * t->zone_size || t->raw_size > raw_size ||
	    /* bounds first, so that the products below cannot overflow */
	    t->lblock > (1u << 20) || t->zone_size > raw_size ||
	    t->nr_zones > raw_size / t->zone_size || t->meta_start > raw_size ||
	    t->meta_start + (uint64_t)t->nr_zones * 2 * t->lblock >
		    trailer_off(t->raw_size, 4096)) {
		ff_err("%s: the description of its zones in its last 4 KiB gives an impossible geometry: it is corrupt, or the device was cut short; nothing was changed",
		       path);
		return -EUCLEAN;
	}
	return 1;
}

/*
 * The smallest write the raw device takes, for a record: a block device's
 * logical block raw_lb, or the
 * direct I/O alignment of an image file's file system; never below 512 B nor
 * above the emulated block.
 */
static uint32_t rec_write_len(struct ff_dev *dev, uint32_t raw_lb, uint32_t lblock)
{
	struct statx stx;
	uint32_t len = lblock;

	if (statx(dev->fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_DIOALIGN, &stx) == 0) {
		if (S_ISBLK(stx.stx_mode))
			len = raw_lb;
		else if (!dev->direct)
			len = 512;
		else if ((stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align &&
			 stx.stx_dio_mem_align <= 4096)
			len = stx.stx_dio_offset_align;
	}
	if (len < 512 || !ff_is_pow2(len) || len > lblock || len < sizeof(struct emu_rec))
		len = lblock;
	return len;
}

/*
 * Where an image file's data ends: the end of its last data extent, or 0.
 * SEEK_HOLE answers the file's end on a file system that does not track
 * holes, and on a block device.
 */
static uint64_t data_end(int fd, uint64_t size)
{
	uint64_t end = 0;
	off_t off = 0;

	/* bounded: an image of a million extents is a pathological one */
	for (unsigned n = 0; n < (1u << 20) && (uint64_t)off < size; n++) {
		off_t d = lseek(fd, off, SEEK_DATA), h;

		if (d < 0)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h <= d)
			break;
		end = (uint64_t)h;
		off = h;
	}
	return end;
}

/* The trailer at end (its last byte + 1) if there is one that says it is there. */
static int trailer_at(struct ff_dev *dev, uint64_t raw_size, uint64_t end, void *blk,
		      struct emu_trailer *t)
{
	uint64_t at;
	int ret;

	end = ff_round_down(end, 4096);
	if (end < 2 * 4096 || end >= ff_round_down(raw_size, 4096))
		return 0;
	at = end - 4096;
	ret = read_block(dev->fd, blk, 4096, at);
	if (ret)
		return ret;
	memcpy(t, blk, sizeof(*t));
	if (memcmp(t->magic, EMU_MAGIC, 8))
		return 0;
	ret = emu_check_trailer(dev->path, t, raw_size, dev->info.lblock_size);
	if (ret <= 0)
		return ret;
	return trailer_off(t->raw_size, 4096) == at;
}

/*
 * The trailer of a device that grew after its zones were laid (an image
 * truncated to a larger size to make room, a partition or volume
 * extended): at the size it was formatted at, which the caller may know
 * (formatted, from the filesystem's superblock), and which an image file's
 * data shows, its new tail being a hole. It says itself that it is there (its
 * raw_size puts it there). Such a device is used as it was made; its new
 * tail is not. 1 with *t filled, 0 when there is none, or < 0.
 */
static int grown_trailer(struct ff_dev *dev, uint64_t raw_size, uint64_t formatted, void *blk,
			 struct emu_trailer *t)
{
	struct stat st;
	int ret = 0;

	if (formatted && formatted < raw_size)
		ret = trailer_at(dev, raw_size, formatted, blk, t);
	if (!ret && fstat(dev->fd, &st) == 0 && S_ISREG(st.st_mode))
		ret = trailer_at(dev, raw_size, data_end(dev->fd, raw_size), blk, t);
	if (ret <= 0)
		return ret;
	if (ff_first_notice("grew", dev->path))
		ff_warn("%s is %llu bytes, but its zones were laid over its first %llu: the device grew since it was formatted. The filesystem stays the size it was made; the %llu bytes after it are not used",
			dev->path, (unsigned long long)raw_size, (unsigned long long)t->raw_size,
			(unsigned long long)(raw_size - t->raw_size));
	return 1;
}

int ff_emu_probe(struct ff_dev *dev, uint64_t raw_size, uint64_t formatted)
{
	struct emu_trailer t;
	struct emu_state *e;
	void *blk = NULL;
	uint32_t raw_lb = dev->info.lblock_size; /* before the emulated block replaces it */
	int ret;

	if (raw_size < 2 * 4096)
		return 0;
	if (posix_memalign(&blk, 4096, 4096))
		return -ENOMEM;
	ret = read_block(dev->fd, blk, 4096, trailer_off(raw_size, 4096));
	if (ret) {
		free(blk);
		return ret;
	}
	memcpy(&t, blk, sizeof(t));
	ret = emu_check_trailer(dev->path, &t, raw_size, dev->info.lblock_size);
	if (ret == 0)
		ret = grown_trailer(dev, raw_size, formatted, blk, &t);
	if (ret <= 0) {
		free(blk);
		return ret;
	}
	dev->info.zone_size = t.zone_size;
	dev->info.nr_zones = t.nr_zones;
	dev->info.size = (uint64_t)t.nr_zones * t.zone_size;
	dev->info.zones_recorded = true;
	/*
	 * Conventional zones only: no write pointer to keep in blocks of the
	 * recorded size, so I/O stays in the device's own blocks (a 512
	 * B-sector disk takes the posix format's short headers)
	 */
	if (t.flags & EMU_F_CONV_ONLY) {
		dev->be = &ff_dev_regular_be;
		dev->info.kind = FF_DEV_REGULAR;
		dev->info.nr_cnv_zones = t.nr_zones;
		free(blk);
		return 1;
	}
	dev->info.lblock_size = t.lblock;
	dev->info.pblock_size = t.lblock > dev->info.pblock_size ? t.lblock : dev->info.pblock_size;
	dev->info.write_gran = t.lblock;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->z = calloc(t.nr_zones, sizeof(*e->z))) ||
	    !(e->dl = calloc(t.nr_zones, sizeof(*e->dl)))) {
		if (e)
			free(e->z);
		free(e);
		free(blk);
		return -ENOMEM;
	}
	e->t = t;
	e->rec_len = rec_write_len(dev, raw_lb, t.lblock);
	ff_mutex_init(&e->lock);
	pthread_cond_init(&e->idle, NULL);
	dev->emu = e;
	dev->be = &ff_dev_emu_be;
	dev->info.kind = FF_DEV_EMULATED;
	dev->info.nr_cnv_zones = t.nr_cnv;
	dev->info.max_open = t.max_open;
	dev->info.max_active = t.max_active;
	free(blk);
	blk = NULL;
	ret = load_zones(dev);
	if (ret)
		goto out_err;
	return 1;
out_err:
	dev->info.read_only = true; /* nothing to write back at this close */
	emu_close(dev);
	dev->be = NULL;
	return ret;
}

/* ---- fsck: the records, read-only ---- */

static bool blk_zero_from(const uint8_t *p, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int ff_dev_check_records(struct ff_dev *dev, ff_dev_check_cb report, void *arg,
			 uint32_t *rolled_back)
{
	struct emu_state *e = dev->emu;
	uint8_t *blk = NULL;
	int bad = 0, ret = 0;

	if (rolled_back)
		*rolled_back = 0;
	if (!e)
		return 0;
	if (posix_memalign((void **)&blk, 4096, e->t.lblock))
		return -ENOMEM;
	for (uint32_t i = e->t.nr_cnv; i < e->t.nr_zones; i++) {
		struct emu_rec r, newest = {0};
		bool have = false;

		for (unsigned s = 0; s < 2; s++) {
			const char *what = NULL;

			ret = read_block(dev->fd, blk, e->t.lblock, slot_off(e, i, s));
			if (ret)
				goto out;
			memcpy(&r, blk, sizeof(r));
			if (blk_zero_from(blk, 0, e->t.lblock))
				continue; /* never written */
			if (r.magic != EMU_REC_MAGIC)
				what = "not a pointer record (bad magic)";
			else if (r.crc != rec_crc(&r))
				what = "pointer record checksum mismatch";
			else if (r.zone != i)
				what = "pointer record of another zone";
			else if (r.from > r.wp || r.wp > e->t.zone_cap)
				what = "pointer record beyond the zone capacity";
			else if (!blk_zero_from(blk, sizeof(r), e->t.lblock))
				what = "pointer record block has data after the record";
			if (what) {
				bad++;
				if (report)
					report(arg, i, s, what);
				continue;
			}
			if (!have || r.seq > newest.seq)
				newest = r;
			have = true;
		}
		if (have && rolled_back) {
			uint64_t wp;

			ff_mutex_lock(&e->lock);
			wp = e->z[i].wp;
			ff_mutex_unlock(&e->lock);
			*rolled_back += wp != newest.wp;
		}
	}
out:
	free(blk);
	return ret ? ret : bad;
}

/* ---- format ---- */

/*
 * Clear the record area [start, end) without writing it: a hole punched in
 * an image file (which load_zones then skips unread), or the block device's
 * own zeroing (BLKZEROOUT: write-zeroes, a discard that reads back zeros,
 * or the kernel's own write of zeros). Returns start if the caller must
 * write the zeros itself, end when done.
 */
static uint64_t zero_records_fast(int fd, bool blkdev, uint64_t start, uint64_t end)
{
	if (end <= start)
		return end;
	if (blkdev) {
		uint64_t range[2] = {start, end - start};

		return ioctl(fd, BLKZEROOUT, range) == 0 ? end : start;
	}
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
		      (off_t)(end - start)) == 0)
		return end;
	return start;
}

/*
 * The zones o lays over a raw device of raw_size bytes and dev_lb-byte
 * sectors: their block, size and count, each option checked (said to the
 * user). Writes nothing.
 */
static int emu_geometry(const char *path, const struct ff_emu_opts *o, uint64_t raw_size,
			uint32_t dev_lb, uint32_t *lb_out, uint64_t *zs_out, uint32_t *nr_out)
{
	uint64_t meta, zs;
	uint32_t lb, nr;

	lb = o->lblock_size ? o->lblock_size : 4096;
	zs = o->zone_size ? o->zone_size : FF_DEV_DEFAULT_ZONE_SIZE;
	if (!ff_is_pow2(lb) || lb < dev_lb || lb < 4096 || lb > 65536) {
		ff_err("block size %u is not a power of two between 4096 (and the device's %u) and 65536",
		       lb, dev_lb);
		return -EINVAL;
	}
	if (zs % lb) {
		ff_err("zone size %llu is not a multiple of the %u-byte block",
		       (unsigned long long)zs, lb);
		return -EINVAL;
	}
	if (zs < 4 * (uint64_t)lb) {
		ff_err("zone size %llu is too small: a zone holds 4 blocks at least (%llu bytes)",
		       (unsigned long long)zs, 4 * (unsigned long long)lb);
		return -EINVAL;
	}
	if ((o->zone_cap && (o->zone_cap > zs || o->zone_cap % lb))) {
		ff_err("zone capacity %llu must be a multiple of %u and at most the zone size",
		       (unsigned long long)o->zone_cap, lb);
		return -EINVAL;
	}
	nr = (uint32_t)(raw_size / zs);
	for (;;) {
		meta = ((uint64_t)nr * 2 + 1) * lb;
		if (!nr || (uint64_t)nr * zs + meta <= ff_round_down(raw_size, lb))
			break;
		nr--;
	}
	if (nr < 2 || nr <= o->nr_cnv) {
		ff_err("%s is too small: %llu bytes hold %u zone(s) of %llu bytes; need at least 2 and more than the %u conventional (give a smaller --zone-size or fewer --conv-zones)",
		       path, (unsigned long long)raw_size, nr, (unsigned long long)zs, o->nr_cnv);
		return -ENOSPC;
	}
	if (o->max_active && o->max_open > o->max_active) {
		ff_err("max-open (%u) cannot exceed max-active (%u)", o->max_open, o->max_active);
		return -EINVAL;
	}
	*lb_out = lb;
	*zs_out = zs;
	*nr_out = nr;
	return 0;
}

/* fd's size and logical sector (512 for an image file). */
static int raw_geometry(int fd, const struct stat *st, uint64_t *raw_size, uint32_t *dev_lb)
{
	*dev_lb = 512;
	if (S_ISBLK(st->st_mode)) {
		int l = 512;

		if (ioctl(fd, BLKGETSIZE64, raw_size) < 0 || ioctl(fd, BLKSSZGET, &l) < 0)
			return -errno;
		*dev_lb = (uint32_t)l;
	} else {
		*raw_size = (uint64_t)st->st_size;
	}
	return 0;
}

int ff_dev_plan_emulated(const char *path, const struct ff_emu_opts *o, struct ff_emu_plan *p)
{
	uint64_t raw_size = 0, zs;
	uint32_t lb, dev_lb, nr;
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		ff_err("cannot open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = raw_geometry(fd, &st, &raw_size, &dev_lb);
	close(fd);
	if (!ret)
		ret = emu_geometry(path, o, raw_size, dev_lb, &lb, &zs, &nr);
	if (ret)
		return ret;
	p->lblock_size = lb;
	p->zone_size = zs;
	p->zone_cap = o->zone_cap ? o->zone_cap : zs;
	p->nr_zones = nr;
	p->size = (uint64_t)nr * zs;
	return 0;
}

int ff_dev_format_emulated(const char *path, const struct ff_emu_opts *o, bool force)
{
	struct emu_trailer t = {0};
	uint64_t raw_size, zs;
	uint32_t lb, dev_lb, nr;
	struct stat st;
	void *blk = NULL, *zero = NULL;
	int fd, ret;

	if (stat(path, &st) < 0) {
		ret = -errno;
		ff_err("cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ff_err("%s is neither a block device nor a regular file", path);
		return -ENODEV;
	}
	/* not O_EXCL: the caller holds the one-user lock (ff_dev_lock_image), an O_EXCL fd */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		ff_err("cannot open %s for writing: %s", path, strerror(errno));
		return ret;
	}
	ret = raw_geometry(fd, &st, &raw_size, &dev_lb);
	if (ret)
		goto out_close;
	ret = emu_geometry(path, o, raw_size, dev_lb, &lb, &zs, &nr);
	if (ret)
		goto out_close;
	if (posix_memalign(&blk, 4096, lb) || posix_memalign(&zero, 4096, 1 << 20)) {
		ret = -ENOMEM;
		goto out_free;
	}
	{
		struct iovec iov = {.iov_base = blk, .iov_len = 4096};

		if (raw_size >= 8192 && lb >= 4096 &&
		    ff_uring_rw(fd, &iov, 1, trailer_off(raw_size, 4096), false, 0) == 4096) {
			struct emu_trailer old;

			memcpy(&old, blk, sizeof(old));
			if (!memcmp(old.magic, EMU_MAGIC, 8) && !force) {
				ff_err("%s already holds emulated zones; use --force to format it again",
				       path);
				ret = -EEXIST;
				goto out_free;
			}
		}
	}
	memcpy(t.magic, EMU_MAGIC, 8);
	t.version = EMU_VERSION;
	t.lblock = lb;
	t.zone_size = zs;
	t.zone_cap = o->zone_cap ? o->zone_cap : zs;
	t.nr_zones = nr;
	t.nr_cnv = o->conventional_only ? nr : o->nr_cnv;
	t.max_open = o->max_open;
	t.max_active = o->max_active;
	t.flags = o->conventional_only ? EMU_F_CONV_ONLY : 0;
	t.raw_size = raw_size;
	/* the trailer sits in the last 4 KiB; records end just below it */
	t.meta_start = trailer_off(raw_size, 4096) - (uint64_t)nr * 2 * lb;
	t.meta_start = ff_round_down(t.meta_start, lb);
	if (t.meta_start < (uint64_t)nr * zs) {
		ret = -ENOSPC;
		goto out_free;
	}
	t.crc = trailer_crc(&t);
	memset(zero, 0, 1 << 20);
	for (uint64_t off = zero_records_fast(fd, S_ISBLK(st.st_mode), t.meta_start,
					      trailer_off(raw_size, 4096));
	     off < trailer_off(raw_size, 4096);) {
		uint64_t n = trailer_off(raw_size, 4096) - off;
		struct iovec iov = {.iov_base = zero, .iov_len = n < (1 << 20) ? n : (1 << 20)};
		ssize_t r = ff_uring_rw(fd, &iov, 1, off, true, 0);

		if (r <= 0) {
			ret = r < 0 ? (int)r : -EIO;
			goto out_free;
		}
		off += (uint64_t)r;
	}
	memset(blk, 0, lb);
	memcpy(blk, &t, sizeof(t));
	{
		struct iovec iov = {.iov_base = blk, .iov_len = 4096};
		ssize_t r =
			ff_uring_rw(fd, &iov, 1, trailer_off(raw_size, 4096), true, FF_IO_DSYNC);

		ret = r == 4096 ? 0 : (r < 0 ? (int)r : -EIO);
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
out_free:
	free(blk);
	free(zero);
out_close:
	close(fd);
	return ret;
}
