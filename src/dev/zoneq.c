// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-zone submission queue: the only path to a sequential zone
 * (ff_dev_write() refuses one; this file alone calls ff_dev_issue_write()
 * there).
 *
 * States of a sequential zone's queue (all under zq_zone.lock):
 *   idle     - nothing queued, no write in flight;
 *   issuing  - one thread (the leader) has one device write in flight, built
 *              from one or more queued requests; others queue behind it;
 *   op       - a zone operation or a resync runs; new writes wait before they
 *              reserve a position. Once an operation waits for the queue to
 *              empty (op_waiters), new writes wait too, so a steady stream of
 *              writers cannot starve it.
 * A request reserves its position (the reserve pointer rp, advanced by its
 * length) when it is queued, so positions follow queue order, exactly like
 * zone append. When the leader's write completes it completes every request
 * it carried and hands leadership to the request now at the head of the FIFO,
 * which takes everything queued by then and issues it as ONE vectored write
 * (up to FF_ZONEQ_MAX_MERGE bytes and IOV_MAX segments). So at most one write
 * per zone is in flight (io_uring does not keep issue order at depth 2 or
 * more), submitting threads do their own I/O on their own rings, and merging
 * grows with contention. No thread of its own is needed.
 *
 * Durability order. Each zone knows how far its data is durable (dur_end)
 * and, for the newest write made without FF_IO_DSYNC, the flush generation
 * that covers it (nd_gen, see ff_dev_flush_gen_next()). A durable write at
 * the pointer makes everything below it reachable (the device's pointer, an
 * emulated zone's record), so a FF_IO_DSYNC write issued while the zone holds
 * data no completed flush covers is preceded by ff_dev_flush(): PREFLUSH|FUA.
 * A stream of FF_IO_DSYNC appends leaves nothing uncovered and never flushes.
 * FF_IO_PREFLUSH from the caller flushes whatever the device holds volatile.
 *
 * On a failed write: the carried requests fail with the error, and so does
 * every request queued behind them (their positions depended on it); then the
 * zone is reported and rp set to the device's write pointer. Writes queued
 * after that start from the resynced pointer.
 *
 * Invariants: rp >= device write pointer; rp - device wp = bytes queued or in
 * flight; requests in the FIFO have strictly increasing contiguous offsets;
 * dur_end <= device write pointer.
 * Lock order: zq_zone.lock is a leaf; it is never held across device I/O or a
 * zone report (op or issuing keeps writers and other ops out meanwhile).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "foliofs/zoneq.h"
#include "internal.h"

#define FF_ZONEQ_MAX_MERGE (1u << 20)

struct zq_req {
	const struct iovec *iov;
	int iovcnt;
	size_t len;
	unsigned flags;
	uint64_t off; /* reserved device offset */
	ssize_t res;  /* bytes or -errno, valid when done */
	bool done;
	bool lead; /* handed leadership: issue the head of the queue */
	struct zq_req *next;
};

struct zq_zone {
	struct ff_mutex lock;
	pthread_cond_t cv;
	bool seq;		    /* immutable: sequential zone */
	uint64_t start, cap_end;    /* immutable: zone start, start + capacity */
	uint64_t rp;		    /* reserve pointer; guarded by lock */
	bool issuing;		    /* a leader has a write in flight; guarded by lock */
	bool op;		    /* a zone op/resync runs; guarded by lock */
	unsigned op_waiters;	    /* ops waiting for the queue to empty; guarded by lock */
	struct zq_req *head, *tail; /* FIFO of queued requests; guarded by lock */
	uint64_t dur_end;	    /* data below is durable; guarded by lock */
	uint64_t nd_gen;	    /* flush generation covering [dur_end, nd_end), 0 = none;
				     * guarded by lock */
	uint64_t nd_end;	    /* end of the newest non-durable write; guarded by lock */
};

struct ff_zoneq_state {
	uint32_t nr;
	struct zq_zone *z;
	_Atomic uint64_t queued, issued, merged, errors, resyncs;
};

static void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

int ff_zoneq_init(struct ff_dev *dev)
{
	uint32_t n = dev->info.nr_zones;
	struct ff_zoneq_state *q;
	struct ff_zone *zones;
	int ret;

	q = calloc(1, sizeof(*q));
	zones = calloc(n, sizeof(*zones));
	if (!q || !zones || !(q->z = calloc(n, sizeof(*q->z)))) {
		free(q);
		free(zones);
		return -ENOMEM;
	}
	ret = ff_dev_report(dev, 0, n, zones);
	if (ret < 0) {
		free(q->z);
		free(q);
		free(zones);
		return ret;
	}
	q->nr = n;
	for (uint32_t i = 0; i < n; i++) {
		struct zq_zone *z = &q->z[i];

		ff_mutex_init(&z->lock);
		pthread_cond_init(&z->cv, NULL);
		z->seq = zones[i].type != FF_ZONE_CNV;
		z->start = zones[i].start;
		z->cap_end = zones[i].start + zones[i].cap;
		z->rp = z->seq ? zones[i].wp : z->start;
		if (z->seq && zones[i].cond == FF_ZC_FULL)
			z->rp = z->cap_end;
		/* what the device shows at open is what survived: durable */
		z->dur_end = z->rp;
	}
	free(zones);
	dev->zq = q;
	return 0;
}

void ff_zoneq_fini(struct ff_dev *dev)
{
	struct ff_zoneq_state *q = dev->zq;

	if (!q)
		return;
	for (uint32_t i = 0; i < q->nr; i++) {
		pthread_cond_destroy(&q->z[i].cv);
		ff_mutex_destroy(&q->z[i].lock);
	}
	free(q->z);
	free(q);
	dev->zq = NULL;
}

bool ff_zoneq_touches_seq(const struct ff_dev *dev, uint64_t off, uint64_t len)
{
	const struct ff_zoneq_state *q = dev->zq;
	uint64_t zs = dev->info.zone_size;

	if (!q || !len)
		return false;
	for (uint64_t zi = off / zs; zi <= (off + len - 1) / zs && zi < q->nr; zi++)
		if (q->z[zi].seq)
			return true;
	return false;
}

/*
 * Fold a flush that completed since into dur_end. Caller holds z->lock.
 * Returns whether the zone holds data that no completed flush covers.
 */
static bool volatile_below_locked(struct ff_dev *dev, struct zq_zone *z)
{
	ff_assert_held(&z->lock);
	if (z->nd_gen && ff_dev_gen_durable(dev, z->nd_gen)) {
		if (z->nd_end > z->dur_end)
			z->dur_end = z->nd_end;
		z->nd_gen = 0;
	}
	return z->nd_gen != 0;
}

/*
 * Report the zone and move rp to the device's pointer. Caller holds z->lock,
 * has set z->op or z->issuing (writers and ops stay out), and the queue is
 * empty; the lock is dropped for the report and retaken. May sleep.
 */
static int resync(struct ff_dev *dev, uint32_t zone, struct zq_zone *z)
{
	struct ff_zone rep;
	int ret;

	ff_assert_held(&z->lock);
	ff_mutex_unlock(&z->lock);
	ret = ff_dev_report(dev, zone, 1, &rep);
	ff_mutex_lock(&z->lock);
	if (ret < 0)
		return ret;
	z->rp = rep.cond == FF_ZC_FULL ? rep.start + rep.cap : rep.wp;
	if (rep.cond == FF_ZC_EMPTY) {
		/* reset: nothing left to flush */
		z->nd_gen = 0;
		z->nd_end = z->rp;
	}
	if (z->dur_end > z->rp || rep.cond == FF_ZC_EMPTY)
		z->dur_end = z->rp;
	stat_add(&dev->zq->resyncs, 1);
	return 0;
}

/*
 * Issue the head of the queue, merged, as the leader. Called with z->lock
 * held and z->issuing set; returns with z->lock held. May sleep.
 */
static void lead_locked(struct ff_dev *dev, uint32_t zone, struct zq_zone *z)
{
	struct iovec iov[IOV_MAX];
	struct zq_req *first = z->head, *last = first, *r;
	unsigned flags = 0;
	size_t bytes = 0;
	int cnt = 0, nreq = 0;
	bool flush;
	ssize_t res = 0;

	ff_assert_held(&z->lock);
	for (r = first; r; r = r->next) {
		if (r != first &&
		    (bytes + r->len > FF_ZONEQ_MAX_MERGE || cnt + r->iovcnt > IOV_MAX))
			break;
		memcpy(&iov[cnt], r->iov, sizeof(*iov) * (size_t)r->iovcnt);
		cnt += r->iovcnt;
		bytes += r->len;
		flags |= r->flags;
		last = r;
		nreq++;
	}
	/*
	 * An emulated zone's pointer lives in this process until its record is
	 * written: a write that must survive the process carries it durably.
	 */
	if ((flags & FF_IO_STABLE) && dev->emu)
		flags |= FF_IO_DSYNC;
	/* durable over data that is not: flush that data first (PREFLUSH|FUA) */
	flush = (flags & FF_IO_DSYNC) && volatile_below_locked(dev, z);
	ff_mutex_unlock(&z->lock);

	if (flush || (flags & FF_IO_PREFLUSH))
		res = flush ? ff_dev_flush(dev) : ff_dev_preflush(dev);
	if (!res) {
		res = ff_dev_issue_write(dev, iov, cnt, first->off, flags & FF_IO_DSYNC);
		stat_add(&dev->zq->issued, 1);
		stat_add(&dev->zq->merged, (uint64_t)(nreq - 1));
	}

	ff_mutex_lock(&z->lock);
	if (res >= 0 && (size_t)res != bytes)
		res = -EIO;
	if (res >= 0 && (flags & FF_IO_DSYNC)) {
		/* durable below (flushed above if it was not), and this write by itself */
		if (!volatile_below_locked(dev, z))
			z->dur_end = first->off + bytes;
	} else if (res >= 0) {
		z->nd_gen = ff_dev_flush_gen_next(dev);
		z->nd_end = first->off + bytes;
	}
	z->head = last->next;
	if (!z->head)
		z->tail = NULL;
	for (r = first;; r = r->next) {
		r->res = res < 0 ? res : (ssize_t)r->len;
		r->done = true;
		if (r == last)
			break;
	}
	if (res < 0) {
		/* everything queued behind depended on this write */
		stat_add(&dev->zq->errors, 1);
		for (r = z->head; r; r = r->next) {
			r->res = res;
			r->done = true;
		}
		z->head = z->tail = NULL;
		/* new writes wait (z->op) until rp is the device's pointer again */
		z->op = true;
		if (resync(dev, zone, z))
			ff_err("%s: zone %u: cannot re-read the write pointer after a write error",
			       dev->path, zone);
		z->op = false;
	}
	if (z->head)
		z->head->lead = true;
	else
		z->issuing = false;
	pthread_cond_broadcast(&z->cv);
}

static ssize_t queue_write(struct ff_dev *dev, uint32_t zone, const struct iovec *iov, int iovcnt,
			   const uint64_t *want_off, unsigned flags, uint64_t *off_out)
{
	struct ff_zoneq_state *q = dev->zq;
	struct zq_zone *z;
	struct zq_req req = {.iov = iov, .iovcnt = iovcnt, .flags = flags};

	if (zone >= q->nr || iovcnt <= 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	z = &q->z[zone];
	req.len = iov_len_sum(iov, iovcnt);
	if (!req.len)
		return -EINVAL;
	if (!z->seq) {
		uint64_t off;

		if (!want_off)
			return -EINVAL; /* no write pointer to append at */
		off = *want_off;
		if (off < z->start || off + req.len > z->cap_end)
			return -EINVAL;
		if (off_out)
			*off_out = off;
		return ff_dev_issue_write(dev, iov, iovcnt, off, flags);
	}
	ff_mutex_lock(&z->lock);
	/* behind a waiting op too: a stream of writers would starve it */
	while (z->op || z->op_waiters)
		ff_cond_wait(&z->cv, &z->lock);
	if (want_off && *want_off != z->rp) {
		uint64_t rp = z->rp;

		ff_mutex_unlock(&z->lock);
		/* the caller's order broke: nothing is written, and it is said */
		ff_err("%s: zone %u: a write at %llu refused: the zone's pointer is at %llu",
		       dev->path, zone, (unsigned long long)*want_off, (unsigned long long)rp);
		return -EINVAL;
	}
	if (z->rp + req.len > z->cap_end) {
		ff_mutex_unlock(&z->lock);
		return -ENOSPC;
	}
	req.off = z->rp;
	z->rp += req.len;
	if (z->tail)
		z->tail->next = &req;
	else
		z->head = &req;
	z->tail = &req;
	stat_add(&q->queued, 1);
	if (!z->issuing) {
		z->issuing = true;
		req.lead = true;
	}
	while (!req.done) {
		if (req.lead) {
			lead_locked(dev, zone, z);
			continue;
		}
		ff_cond_wait(&z->cv, &z->lock);
	}
	ff_mutex_unlock(&z->lock);
	if (req.res >= 0 && off_out)
		*off_out = req.off;
	return req.res;
}

ssize_t ff_zoneq_append(struct ff_dev *dev, uint32_t zone, const struct iovec *iov, int iovcnt,
			unsigned flags, uint64_t *off_out)
{
	return queue_write(dev, zone, iov, iovcnt, NULL, flags, off_out);
}

ssize_t ff_zoneq_write_at(struct ff_dev *dev, uint32_t zone, const struct iovec *iov, int iovcnt,
			  uint64_t off, unsigned flags)
{
	return queue_write(dev, zone, iov, iovcnt, &off, flags, NULL);
}

uint64_t ff_zoneq_wp(struct ff_dev *dev, uint32_t zone)
{
	struct zq_zone *z;
	uint64_t rp;

	if (zone >= dev->zq->nr)
		return 0;
	z = &dev->zq->z[zone];
	ff_mutex_lock(&z->lock);
	rp = z->rp;
	ff_mutex_unlock(&z->lock);
	return rp;
}

/* Wait for the queue to empty and take the zone for an operation. */
static struct zq_zone *begin_op(struct ff_dev *dev, uint32_t zone)
{
	struct zq_zone *z = &dev->zq->z[zone];

	ff_mutex_lock(&z->lock);
	z->op_waiters++;
	while (z->op || z->issuing || z->head)
		ff_cond_wait(&z->cv, &z->lock);
	z->op_waiters--;
	z->op = true;
	return z;
}

static void end_op(struct zq_zone *z)
{
	ff_assert_held(&z->lock);
	z->op = false;
	pthread_cond_broadcast(&z->cv);
	ff_mutex_unlock(&z->lock);
}

int ff_zoneq_drain(struct ff_dev *dev, uint32_t zone)
{
	if (zone >= dev->zq->nr)
		return -EINVAL;
	end_op(begin_op(dev, zone));
	return 0;
}

int ff_zoneq_zone_op(struct ff_dev *dev, uint32_t zone, int op)
{
	struct zq_zone *z;
	bool flush;
	int ret, ret2;

	if (zone >= dev->zq->nr)
		return -EINVAL;
	z = begin_op(dev, zone);
	/*
	 * A finish makes the whole zone reachable (FULL: its size is the
	 * capacity): data below that no flush covers is flushed first, as for
	 * a durable write.
	 */
	flush = op == FF_ZOP_FINISH && z->seq && volatile_below_locked(dev, z);
	/* the op itself runs without the lock; z->op keeps writers out */
	ff_mutex_unlock(&z->lock);
	ret = flush ? ff_dev_flush(dev) : 0;
	if (!ret)
		ret = ff_dev_zone_op(dev, zone, (enum ff_zone_op)op);
	ff_mutex_lock(&z->lock);
	ret2 = z->seq ? resync(dev, zone, z) : 0;
	end_op(z);
	return ret ? ret : ret2;
}

int ff_zoneq_resync(struct ff_dev *dev, uint32_t zone)
{
	struct zq_zone *z;
	int ret;

	if (zone >= dev->zq->nr)
		return -EINVAL;
	z = begin_op(dev, zone);
	ret = z->seq ? resync(dev, zone, z) : 0;
	end_op(z);
	return ret;
}

uint64_t ff_zoneq_durable_end(struct ff_dev *dev, uint32_t zone)
{
	struct zq_zone *z;
	uint64_t end;

	if (zone >= dev->zq->nr)
		return 0;
	z = &dev->zq->z[zone];
	if (!z->seq)
		return z->start;
	ff_mutex_lock(&z->lock);
	volatile_below_locked(dev, z);
	end = z->dur_end;
	ff_mutex_unlock(&z->lock);
	return end;
}

void ff_zoneq_stats(const struct ff_dev *dev, struct ff_zoneq_stats *out)
{
	struct ff_zoneq_state *q = dev->zq;

	out->queued = atomic_load_explicit(&q->queued, memory_order_relaxed);
	out->issued = atomic_load_explicit(&q->issued, memory_order_relaxed);
	out->merged = atomic_load_explicit(&q->merged, memory_order_relaxed);
	out->errors = atomic_load_explicit(&q->errors, memory_order_relaxed);
	out->resyncs = atomic_load_explicit(&q->resyncs, memory_order_relaxed);
}
