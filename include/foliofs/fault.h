/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fault: fault injection in the device layer, for the crash and error tests.
 * Off unless the environment variable FOLIOFS_FAULT is set when a device is
 * opened; then every raw I/O to the device (data, emulation records, flushes)
 * passes through src/dev/fault.c. FOLIOFS_FAULT is a comma-separated list:
 *
 *   dead_after=N     writes after the Nth raw write fail (the device died);
 *                    flushes fail too; reads keep working
 *   dead_mode=eio|drop   a dead device fails writes with EIO (default) or
 *                    acknowledges them without writing anything
 *   fail_write=N     the Nth raw write (counted inside range=, if given) fails
 *                    with EIO; fail_count=K makes it K consecutive ones
 *   fail_read=N      the same for reads
 *   fail_flush=N     the Nth flush fails with EIO (fail_count=K: K of them)
 *   range=A:B        only raw I/O overlapping bytes [A, B) counts for fail_*
 *   lblock=N         a regular (not emulated) device reports logical and
 *                    physical blocks of N bytes (512 <= N <= its own, a
 *                    power of two): an image file then takes I/O as a
 *                    512 B-sector disk does, where the file's filesystem
 *                    allows O_DIRECT at N
 *   vlog=PATH        volatile write cache: each write not made durable by
 *                    FF_IO_DSYNC is logged to PATH with the bytes it
 *                    overwrote; a completed flush marks everything before it
 *                    durable. After the process dies, ff_fault_apply_cut()
 *                    undoes a random subset of the non-durable writes: the
 *                    image then holds what a device with a volatile cache
 *                    could hold after a power cut at that moment.
 *
 * Every injected fault is logged as "foliofs: fault: ..." on stderr.
 */
#ifndef FOLIOFS_FAULT_H
#define FOLIOFS_FAULT_H

#include <stdint.h>

struct ff_dev;

/*
 * The device dies now (as dead_after reached): later writes and flushes
 * fail. For in-process tests that then close the device and apply a cut.
 * Does nothing on a device opened without FOLIOFS_FAULT.
 */
void ff_fault_kill(struct ff_dev *dev);

struct ff_cut_stats {
	uint64_t entries;   /* writes in the log */
	uint64_t durable;   /* of which durable (DSYNC or flushed) */
	uint64_t dropped;   /* non-durable writes undone */
	uint64_t kept;	    /* non-durable writes kept */
	uint64_t torn_tail; /* bytes of a partial last log record ignored */
};

/*
 * Apply a power cut to the image at img_path from the volatile-write log at
 * log_path: each non-durable write is kept with probability keep_pct/100
 * (drawn from seed), the rest are undone, newest first, so that every byte
 * ends holding the newest kept or durable write to it (or what was there
 * before the log began). Returns 0 or -errno; fills *st if not NULL.
 */
int ff_fault_apply_cut(const char *img_path, const char *log_path, uint64_t seed, unsigned keep_pct,
		       struct ff_cut_stats *st);

#endif
