// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * io_uring submission for the device layer: one ring per submitting thread.
 *
 * A ring belongs to one thread (STYLE.md): it is created lazily on a thread's
 * first I/O, with IORING_SETUP_SINGLE_ISSUER where the kernel has it, and
 * freed by a thread-specific-data destructor when the thread exits. All calls
 * here are synchronous: submit, then wait for every completion submitted.
 * A ring serves every fd, so one ring per thread covers any number of devices.
 * Short transfers are resubmitted for the remainder; -EINTR/-EAGAIN retried.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

#define RING_DEPTH 64

static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

/*
 * A thread's ring and the process that made it. After fork() the child's
 * thread inherits the parent's thread-specific pointer, but a
 * SINGLE_ISSUER ring refuses any other task (-EEXIST): the child makes its
 * own (the daemon checks the device, then forks and mounts).
 */
struct thread_ring {
	struct io_uring ring;
	pid_t pid;
};

static void ring_free(void *p)
{
	struct thread_ring *tr = p;

	io_uring_queue_exit(&tr->ring); /* after fork: unmaps the child's copy only */
	free(tr);
}

static void ring_key_init(void)
{
	pthread_key_create(&ring_key, ring_free);
}

static struct io_uring *thread_ring(int *err)
{
	struct thread_ring *tr;
	int ret;

	pthread_once(&ring_once, ring_key_init);
	tr = pthread_getspecific(ring_key);
	if (tr && tr->pid == getpid())
		return &tr->ring;
	if (tr) {
		/* inherited across fork(): the parent's ring is not ours to use */
		pthread_setspecific(ring_key, NULL);
		ring_free(tr);
	}
	tr = calloc(1, sizeof(*tr));
	if (!tr) {
		*err = -ENOMEM;
		return NULL;
	}
#ifdef IORING_SETUP_SINGLE_ISSUER
	ret = io_uring_queue_init(RING_DEPTH, &tr->ring, IORING_SETUP_SINGLE_ISSUER);
	if (ret == -EINVAL)
#endif
		ret = io_uring_queue_init(RING_DEPTH, &tr->ring, 0);
	if (ret < 0) {
		free(tr);
		*err = ret;
		return NULL;
	}
	tr->pid = getpid();
	pthread_setspecific(ring_key, tr);
	return &tr->ring;
}

/* Advance an iovec array by done bytes into scratch; returns the new count. */
static int iov_advance(const struct iovec *iov, int iovcnt, size_t done, struct iovec *scratch)
{
	int n = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		scratch[n].iov_base = (char *)iov[i].iov_base + done;
		scratch[n].iov_len = iov[i].iov_len - done;
		done = 0;
		n++;
	}
	return n;
}

static void prep_rw(struct io_uring_sqe *sqe, int fd, const struct iovec *iov, int iovcnt,
		    uint64_t off, bool write, unsigned flags)
{
	if (write)
		io_uring_prep_writev(sqe, fd, iov, iovcnt, off);
	else
		io_uring_prep_readv(sqe, fd, iov, iovcnt, off);
	if (write && (flags & FF_IO_DSYNC))
		sqe->rw_flags = RWF_DSYNC;
}

/* Submit what is queued and wait for want completions; fills res[user_data]. */
static int submit_wait(struct io_uring *ring, unsigned want, ssize_t *res)
{
	struct io_uring_cqe *cqe;
	int ret;

	while (want) {
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN)
			return ret;
		while (want && io_uring_peek_cqe(ring, &cqe) == 0) {
			res[cqe->user_data] = cqe->res;
			io_uring_cqe_seen(ring, cqe);
			want--;
		}
	}
	return 0;
}

ssize_t ff_uring_rw(int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool write,
		    unsigned flags)
{
	size_t total = iov_len_sum(iov, iovcnt), done = 0;
	struct iovec scratch[IOV_MAX];
	struct io_uring *ring;
	int err = 0;

	if (iovcnt <= 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	ring = thread_ring(&err);
	if (!ring)
		return err;
	while (done < total) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		ssize_t res = 0;
		int n = iov_advance(iov, iovcnt, done, scratch);

		if (!sqe)
			return -EBUSY;
		prep_rw(sqe, fd, scratch, n, off + done, write, flags);
		io_uring_sqe_set_data64(sqe, 0);
		err = submit_wait(ring, 1, &res);
		if (err)
			return err;
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res < 0)
			return res;
		if (res == 0)
			return write ? -EIO : (ssize_t)done; /* EOF on read */
		done += (size_t)res;
	}
	return (ssize_t)done;
}

int ff_uring_fsync(int fd)
{
	struct io_uring *ring;
	ssize_t res = 0;
	int err = 0;

	ring = thread_ring(&err);
	if (!ring)
		return err;
	for (;;) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		if (!sqe)
			return -EBUSY;
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, 0);
		err = submit_wait(ring, 1, &res);
		if (err)
			return err;
		if (res != -EINTR && res != -EAGAIN)
			return (int)res;
	}
}

int ff_uring_batch(int fd, struct ff_io *ios, int n)
{
	ssize_t res[RING_DEPTH];
	struct io_uring *ring;
	int err = 0;

	ring = thread_ring(&err);
	if (!ring)
		return err;
	for (int base = 0; base < n; base += RING_DEPTH) {
		int cnt = n - base < RING_DEPTH ? n - base : RING_DEPTH;

		for (int i = 0; i < cnt; i++) {
			struct ff_io *io = &ios[base + i];
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe)
				return -EBUSY;
			prep_rw(sqe, fd, io->iov, io->iovcnt, io->off, io->write, io->flags);
			io_uring_sqe_set_data64(sqe, (uint64_t)i);
		}
		err = submit_wait(ring, (unsigned)cnt, res);
		if (err)
			return err;
		for (int i = 0; i < cnt; i++) {
			struct ff_io *io = &ios[base + i];
			size_t want = iov_len_sum(io->iov, io->iovcnt);

			io->res = res[i];
			/* a short or interrupted one is finished synchronously */
			if (io->res == -EINTR || io->res == -EAGAIN ||
			    (io->res >= 0 && (size_t)io->res < want && io->res > 0)) {
				struct iovec scratch[IOV_MAX];
				size_t done = io->res > 0 ? (size_t)io->res : 0;
				int k = iov_advance(io->iov, io->iovcnt, done, scratch);
				ssize_t r = ff_uring_rw(fd, scratch, k, io->off + done, io->write,
							io->flags);

				io->res = r < 0 ? r : (ssize_t)(done + (size_t)r);
			}
		}
	}
	return 0;
}
