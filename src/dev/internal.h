/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the device layer's own files share and nobody else sees: the device
 * structure, the backend table each kind implements, the per-thread io_uring
 * helpers, and the zone queue's hooks.
 */
#ifndef FOLIOFS_DEV_INTERNAL_H
#define FOLIOFS_DEV_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>
#include "foliofs/dev.h"
#include "foliofs/util.h"

struct ff_dev;
struct emu_state;
struct ff_zoneq_state;
struct ff_fault;

/*
 * One backend per kind. Every hook returns 0/count or -errno. A backend's
 * write hook is the raw primitive: for a sequential zone only the zone queue
 * calls it (invariant 1), and the backend refuses a write that a real
 * host-managed device would refuse.
 */
struct dev_backend {
	ssize_t (*rw)(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		      bool write, unsigned flags);
	int (*flush)(struct ff_dev *dev);
	int (*report)(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);
	int (*zone_op)(struct ff_dev *dev, uint32_t zone, enum ff_zone_op op);
	void (*close)(struct ff_dev *dev);
};

struct ff_dev {
	int fd;	      /* I/O fd (O_DIRECT unless direct is false) */
	int lock_fd;  /* the flock of the file under a loop device (loop.c), else -1 */
	bool direct;  /* false: the filesystem refused O_DIRECT (tmpfs) */
	bool discard; /* ff_dev_opts.discard: an emulated reset discards the zone */
	char *path;
	struct ff_dev_info info; /* immutable after open */
	const struct dev_backend *be;
	struct emu_state *emu;	   /* emulated zones, else NULL */
	struct ff_zoneq_state *zq; /* zone queues, see zoneq.c */
	struct ff_fault *fault;	   /* fault injection (FOLIOFS_FAULT), else NULL */
	/* counters: relaxed atomics */
	_Atomic uint64_t st_reads, st_writes, st_fua_writes, st_flushes, st_zone_ops;
	_Atomic uint64_t st_bytes_read, st_bytes_written, st_read_errors, st_write_errors;
	_Atomic uint64_t st_meta_bytes; /* emulation metadata written (not user data) */
	_Atomic uint64_t st_batch_max;	/* most I/Os one ff_dev_submit_batch() put in flight */
	/*
	 * Flush generations (seq_cst atomics), the device's REQ_PREFLUSH
	 * bookkeeping: ff_dev_flush() number g sets flush_started to g before it
	 * flushes and raises flush_done to g when it succeeded. A write that
	 * completed while flush_started was s is durable once flush_done >= s + 1
	 * (ff_dev_flush_gen_next() at completion). volatile_gen is the highest
	 * such generation of any non-durable write on the device.
	 */
	_Atomic uint64_t flush_started, flush_done, volatile_gen;
};

extern const struct dev_backend ff_dev_regular_be;
extern const struct dev_backend ff_dev_emu_be;
extern const struct dev_backend ff_dev_zbd_be;

/*
 * dev.c: the write every public path ends in, without the check that keeps
 * sequential zones out of ff_dev_write(); the zone queue alone calls it for
 * a sequential zone. Honours FF_IO_PREFLUSH, counts, and notes a non-durable
 * write's generation.
 */
ssize_t ff_dev_issue_write(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
			   unsigned flags);
/* The flush generation that makes a write completed now durable. */
uint64_t ff_dev_flush_gen_next(struct ff_dev *dev);
/* Whether every write noted with generation gen is durable (0: nothing to cover). */
bool ff_dev_gen_durable(struct ff_dev *dev, uint64_t gen);
/* Flush the device if a non-durable write may not be durable yet (REQ_PREFLUSH). */
int ff_dev_preflush(struct ff_dev *dev);

/* uring.c: synchronous I/O on the calling thread's ring. */
ssize_t ff_uring_rw(int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool write,
		    unsigned flags);
int ff_uring_fsync(int fd);
/* n independent I/Os on fd; each ios[i].res filled. Returns 0 or -errno (ring failure). */
int ff_uring_batch(int fd, struct ff_io *ios, int n);
/*
 * ff_uring_batch(), but the last n_late I/Os are not ready yet: the others
 * are submitted, then fill(arg) runs (making the late ones' buffers) while
 * they are in flight, then the late ones are submitted. fill runs unless
 * the ring fails before (the call then returns that error).
 */
int ff_uring_batch_late(int fd, struct ff_io *ios, int n, int n_late, void (*fill)(void *arg),
			void *arg);

/*
 * fault.c: every raw I/O on dev->fd after open goes through these; without
 * FOLIOFS_FAULT they are the ff_uring_* calls above.
 */
ssize_t ff_dev_raw_rw(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		      bool write, unsigned flags);
int ff_dev_raw_fsync(struct ff_dev *dev);
int ff_dev_raw_discard(struct ff_dev *dev, uint64_t off, uint64_t len); /* punch a hole */
int ff_dev_raw_batch(struct ff_dev *dev, struct ff_io *ios, int n);
int ff_dev_raw_batch_late(struct ff_dev *dev, struct ff_io *ios, int n, int n_late,
			  void (*fill)(void *arg), void *arg);
struct ff_fault *ff_fault_open(struct ff_dev *dev); /* NULL: off; (void *)-1: bad spec */
void ff_fault_close(struct ff_fault *f);
uint32_t ff_fault_lblock(const struct ff_fault *f); /* its lblock=, or 0 */

/* dev.c: flock fd (shared or exclusive), waiting up to wait_ms; -EBUSY said to the user */
int ff_flock_wait(int fd, const char *path, bool shared, unsigned wait_ms);

/*
 * loop.c. ff_loop_lock_backing: when blkfd is a loop device (or a partition
 * of one), the flock of the file under it, as ff_flock_wait takes it, into
 * *lock_fd (-1 when there is none to take). ff_loop_check_over: -EBUSY (said
 * to the user) when a loop device over image file fd is mounted or held.
 */
int ff_loop_lock_backing(int blkfd, const char *path, bool shared, unsigned wait_ms, int *lock_fd);
int ff_loop_check_over(int fd, const char *path);

/* emu.c */
/* 1 = emulated, 0 = not, -errno; formatted: ff_dev_opts.formatted_size */
int ff_emu_probe(struct ff_dev *dev, uint64_t raw_size, uint64_t formatted);
/* Some zone was written since its newest pointer record (a flush writes one). */
bool ff_emu_records_pending(struct ff_dev *dev);
/* A test hook: when set, called before every raw device write; a non-zero return fails it. */
extern int (*ff_dev_fault_hook)(struct ff_dev *dev, uint64_t off, size_t len);

/* zbd.c */
int ff_zbd_open(struct ff_dev *dev, const char *path, const struct ff_dev_opts *opts);

/* zoneq.c */
int ff_zoneq_init(struct ff_dev *dev);
void ff_zoneq_fini(struct ff_dev *dev);
/* Whether [off, off + len) touches a sequential zone; false before ff_zoneq_init(). */
bool ff_zoneq_touches_seq(const struct ff_dev *dev, uint64_t off, uint64_t len);

static inline size_t iov_len_sum(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

#endif
