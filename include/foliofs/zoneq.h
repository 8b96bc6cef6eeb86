/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zoneq: the per-zone submission queue (DESIGN.md "Per-zone submission
 * queue"), the only path to a sequential zone. Position is reserved at queue
 * time at the zone's reserve pointer and reported on completion; at most one
 * write per zone is in flight; writes queued behind it are merged into one
 * vectored write when it completes. On a failed write the zone is reported,
 * the pointer resynced, and every queued write that depended on the failed
 * one fails with the error.
 *
 * Durability order: a FF_IO_DSYNC write to a zone holding data that no
 * completed flush covers is preceded by a device flush (REQ_PREFLUSH|FUA), so
 * a durable pointer or record never covers non-durable data; FF_IO_PREFLUSH
 * asks for the flush explicitly (see dev.h). Appends that are all FF_IO_DSYNC
 * never flush.
 *
 * Conventional zones bypass the queue: these calls on a conventional zone
 * write in place at the given offset (write_at) or fail -EINVAL (append).
 * Blocking calls; safe from any number of threads.
 */
#ifndef FOLIOFS_ZONEQ_H
#define FOLIOFS_ZONEQ_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ff_dev;

/* Append at the reserve pointer; *off_out = device offset written. */
ssize_t ff_zoneq_append(struct ff_dev *dev, uint32_t zone, const struct iovec *iov, int iovcnt,
			unsigned flags, uint64_t *off_out);
/*
 * Write at off, which must equal the zone's reserve pointer at queue time
 * (-EINVAL without touching the device otherwise).
 */
ssize_t ff_zoneq_write_at(struct ff_dev *dev, uint32_t zone, const struct iovec *iov, int iovcnt,
			  uint64_t off, unsigned flags);
/* The reserve pointer: the device write pointer plus what is queued. */
uint64_t ff_zoneq_wp(struct ff_dev *dev, uint32_t zone);
/*
 * How far the zone's data is known durable (absolute offset; the zone start
 * of a conventional zone): below it every completed write is durable.
 */
uint64_t ff_zoneq_durable_end(struct ff_dev *dev, uint32_t zone);
/* Wait until nothing is queued or in flight on the zone. */
int ff_zoneq_drain(struct ff_dev *dev, uint32_t zone);
/*
 * Drain, then reset/finish/open/close the zone and resync the pointer. A
 * finish over data no flush covers flushes the device first.
 */
int ff_zoneq_zone_op(struct ff_dev *dev, uint32_t zone, int op);
/* Report the zone and set the reserve pointer to the device's. */
int ff_zoneq_resync(struct ff_dev *dev, uint32_t zone);

struct ff_zoneq_stats {
	uint64_t queued;  /* writes handed to the queues */
	uint64_t issued;  /* device writes issued (merged) */
	uint64_t merged;  /* writes that rode along in another's device write */
	uint64_t errors;  /* failed zone writes */
	uint64_t resyncs; /* write pointer resyncs */
};
void ff_zoneq_stats(const struct ff_dev *dev, struct ff_zoneq_stats *out);

#endif
