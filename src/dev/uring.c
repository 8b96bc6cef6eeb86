// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * io_uring submission for the device layer, in one of two designs chosen
 * process-wide by ff_dev_set_uring_mode() (default: env FOLIOFS_URING, else
 * per-thread; see bench/RESULTS-micro.md for why):
 *
 *   per-thread - every submitting thread owns a ring, created lazily on its
 *                first I/O with IORING_SETUP_SINGLE_ISSUER where the kernel
 *                has it and freed by a thread-specific-data destructor when the
 *                thread exits. The submitter enters the kernel itself.
 *   io-thread  - one I/O thread owns one ring (also SINGLE_ISSUER: it made
 *                it). Submitters hand it a request by message (a mutex-guarded
 *                FIFO, and an eventfd write when the thread sleeps) and sleep
 *                on a semaphore until every operation of the request has
 *                completed. The thread takes everything queued, prepares it,
 *                submits it in one io_uring_enter with a read of the eventfd
 *                always armed, and reaps completions; so concurrent
 *                submitters' I/Os are batched into one system call.
 *
 * Either way every call here is synchronous: it returns once each operation
 * it submitted has completed. That is what keeps the zone queue's ordering
 * in both designs: the zone queue has at most one write per zone outstanding
 * and issues the next only after this layer returned the previous one's
 * completion, whichever ring carried it. A ring serves every fd, so one ring
 * covers any number of devices. Short transfers are resubmitted for the
 * remainder; -EINTR/-EAGAIN retried.
 *
 * fork(): a SINGLE_ISSUER ring refuses any other task (-EEXIST) and the I/O
 * thread does not exist in a child, so both designs remember the pid that made
 * their ring and make a new one in a child (the daemon checks the device, then
 * forks and mounts).
 *
 * Locking (io-thread): io_thread.lock guards head/tail/sleeping; the rest of
 * struct io_thread belongs to the I/O thread once it runs. A request's ops'
 * res fields are written by the I/O thread and read by the submitter after
 * sem_wait() on req->done (which orders them).
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "internal.h"

/*
 * liburing maps and unmaps its rings with raw system calls, which ThreadSanitizer
 * does not see. When a thread's ring is freed and a later thread's ring lands on
 * the same addresses, the new thread's writes to its SQEs look racy against the
 * dead thread's. The kernel orders the munmap before the mmap; tell TSan so:
 * a release before every unmap, an acquire after every map.
 */
#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif
#ifdef RING_TSAN
#include <sanitizer/tsan_interface.h>
static char ring_recycle; /* a TSan sync object, never read */
#define ring_unmapped() __tsan_release(&ring_recycle)
#define ring_mapped()	__tsan_acquire(&ring_recycle)
#else
#define ring_unmapped() ((void)0)
#define ring_mapped()	((void)0)
#endif

#define RING_DEPTH 64 /* per-thread ring; also the most ops in one request */
#define IOT_DEPTH  256

/* The faster design on the measurements in bench/RESULTS-micro.md. */
#define FF_URING_DEFAULT FF_URING_PER_THREAD

enum uop_kind { UOP_READ, UOP_WRITE, UOP_FSYNC };

/* ff_uring_batch_late()'s callback and how many ops at the end of the batch wait for it. */
struct late_fill {
	int n_late;
	void (*fill)(void *arg);
	void *arg;
};

struct ureq;

/* One io_uring operation and its result. */
struct uop {
	enum uop_kind kind;
	int fd;
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	unsigned flags;	  /* FF_IO_* */
	ssize_t res;	  /* out: cqe->res */
	struct ureq *req; /* io-thread: the request carrying this op */
};

/* ---- the mode knob ---- */

static _Atomic int uring_mode; /* 0 = not yet read from the environment */

const char *ff_dev_uring_mode_name(enum ff_uring_mode mode)
{
	return mode == FF_URING_IO_THREAD ? "io-thread" : "per-thread";
}

int ff_dev_parse_uring_mode(const char *s, enum ff_uring_mode *out)
{
	if (!strcmp(s, "per-thread") || !strcmp(s, "percpu") || !strcmp(s, "ring-per-thread")) {
		*out = FF_URING_PER_THREAD;
		return 0;
	}
	if (!strcmp(s, "io-thread") || !strcmp(s, "thread")) {
		*out = FF_URING_IO_THREAD;
		return 0;
	}
	return -EINVAL;
}

int ff_dev_set_uring_mode(enum ff_uring_mode mode)
{
	if (mode != FF_URING_PER_THREAD && mode != FF_URING_IO_THREAD)
		return -EINVAL;
	atomic_store_explicit(&uring_mode, (int)mode, memory_order_relaxed);
	return 0;
}

enum ff_uring_mode ff_dev_uring_mode(void)
{
	int m = atomic_load_explicit(&uring_mode, memory_order_relaxed);

	if (!m) {
		const char *env = getenv("FOLIOFS_URING");
		enum ff_uring_mode pm = FF_URING_DEFAULT;
		int zero = 0;

		if (env && *env && ff_dev_parse_uring_mode(env, &pm))
			ff_warn("FOLIOFS_URING=%s is not per-thread or io-thread; using %s", env,
				ff_dev_uring_mode_name(FF_URING_DEFAULT));
		m = (int)pm;
		/* first reader wins; a concurrent ff_dev_set_uring_mode() wins over env */
		if (!atomic_compare_exchange_strong_explicit(
			    &uring_mode, &zero, m, memory_order_relaxed, memory_order_relaxed))
			m = zero;
	}
	return (enum ff_uring_mode)m;
}

/* ---- common ---- */

static void prep_op(struct io_uring_sqe *sqe, struct uop *op)
{
	switch (op->kind) {
	case UOP_READ:
		io_uring_prep_readv(sqe, op->fd, op->iov, (unsigned)op->iovcnt, op->off);
		break;
	case UOP_WRITE:
		io_uring_prep_writev(sqe, op->fd, op->iov, (unsigned)op->iovcnt, op->off);
		if (op->flags & FF_IO_DSYNC)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case UOP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
}

static int ring_init(struct io_uring *ring, unsigned depth)
{
	int ret;

#ifdef IORING_SETUP_SINGLE_ISSUER
	ret = io_uring_queue_init(depth, ring, IORING_SETUP_SINGLE_ISSUER);
	if (ret == -EINVAL)
#endif
		ret = io_uring_queue_init(depth, ring, 0);
	/* after the map: a recycled address was unmapped, and released, before it */
	ring_mapped();
	return ret;
}

/* ---- per-thread rings ---- */

static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

/* A thread's ring and the process that made it. */
struct thread_ring {
	struct io_uring ring;
	pid_t pid;
};

static void ring_free(void *p)
{
	struct thread_ring *tr = p;

	/*
	 * Released before the unmap: a thread whose new ring lands on these
	 * addresses maps it after the unmap, so its acquire follows this.
	 */
	ring_unmapped();
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
	/* room for RING_DEPTH ops and pt_abort()'s cancel */
	ret = ring_init(&tr->ring, 2 * RING_DEPTH);
	if (ret < 0) {
		free(tr);
		*err = ret;
		return NULL;
	}
	tr->pid = getpid();
	pthread_setspecific(ring_key, tr);
	return &tr->ring;
}

/* Drop the calling thread's ring: the next I/O on this thread makes a new one. */
static void thread_ring_drop(void)
{
	struct thread_ring *tr = pthread_getspecific(ring_key);

	pthread_setspecific(ring_key, NULL);
	if (tr)
		ring_free(tr);
}

/* Reap the completions ready; returns how many were ops' (not a cancel's). */
static unsigned reap(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	unsigned got = 0;

	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		struct uop *op = io_uring_cqe_get_data(cqe);

		if (op) {
			op->res = cqe->res;
			got++;
		}
		io_uring_cqe_seen(ring, cqe);
	}
	return got;
}

/*
 * The ring refused to submit or wait: ops it took still point into the
 * caller's stack and buffers. Cancel them (an async cancel of any request,
 * which also submits the ops never taken, and they are cancelled in turn)
 * and reap every completion owed before returning; then drop the ring, so
 * that nothing left in it is ever submitted later. left = ops not reaped.
 */
static void pt_abort(struct io_uring *ring, unsigned left)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	unsigned untaken;

	if (sqe) {
		io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data(sqe, NULL);
		(void)io_uring_submit(ring);
	}
	/*
	 * Ops the kernel never took owe no completion (the ring is dropped
	 * below, so they never will be). The cancel is last in the queue: if
	 * anything is left untaken, it is among them.
	 */
	untaken = io_uring_sq_ready(ring);
	if (sqe && untaken)
		untaken--;
	left = untaken < left ? left - untaken : 0;
	while (left) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(ring, &cqe);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN)
			usleep(1000); /* completions still arrive in the mapped ring */
		left -= reap(ring);
	}
	thread_ring_drop();
}

/*
 * Submit n (<= RING_DEPTH) ops on the calling thread's ring and wait for all
 * of them; 0, or -errno when the ring failed (every op then completed or was
 * cancelled before this returns: they point into the caller's stack). With
 * late, its last n_late ops are prepared after the others went to the kernel
 * and late->fill ran.
 */
static int pt_exec(struct uop *ops, int n, const struct late_fill *late)
{
	int n_early = late ? n - late->n_late : n;
	struct io_uring *ring;
	unsigned left = (unsigned)n;
	int ret = 0;

	ring = thread_ring(&ret);
	if (!ring)
		return ret;
	/* cannot happen: every call leaves the ring empty */
	if (io_uring_sq_space_left(ring) < (unsigned)n + 1) {
		ff_err("io_uring: submission queue not empty between calls");
		return -EIO;
	}
	for (int i = 0; i < n_early; i++)
		prep_op(io_uring_get_sqe(ring), &ops[i]);
	if (late) {
		/* on -EINTR/-EAGAIN/-EBUSY the ops stay queued for the submit below */
		ret = io_uring_submit(ring);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			pt_abort(ring, (unsigned)n_early - reap(ring));
			return ret;
		}
		late->fill(late->arg);
		for (int i = n_early; i < n; i++)
			prep_op(io_uring_get_sqe(ring), &ops[i]);
	}
	while (left) {
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			pt_abort(ring, left - reap(ring));
			return ret;
		}
		left -= reap(ring);
	}
	return 0;
}

/* ---- one I/O thread ---- */

/* What a submitter hands the I/O thread: n ops, done posted when all completed. */
struct ureq {
	struct uop *ops;
	int n;
	int left; /* ops not yet completed; I/O thread only */
	sem_t done;
	struct ureq *next;
};

struct io_thread {
	struct ff_mutex lock;
	struct ureq *head, *tail; /* requests not yet taken; guarded by lock */
	bool sleeping;		  /* the thread may block: wake it by efd; guarded by lock */
	int efd;		  /* eventfd that wakes the thread */
	pid_t pid;		  /* immutable: the process the thread runs in */
	pthread_t thr;
	sem_t started;	      /* posted once the ring exists (or failed) */
	int start_err;	      /* ring_init() result, read after started */
	struct io_uring ring; /* the thread's own */
	uint64_t ebuf;	      /* eventfd read buffer; the thread's own */
};

static pthread_mutex_t iot_create_lock = PTHREAD_MUTEX_INITIALIZER;
static struct io_thread *_Atomic iot;

/* Prepare every op of r; the caller checked there is room. Returns the ops prepared. */
static unsigned iot_prep(struct io_thread *t, struct ureq *r)
{
	unsigned prepared = 0;

	for (int i = 0; i < r->n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

		/* cannot happen: at most IOT_DEPTH prepared between submits */
		if (!sqe) {
			ff_err("io-thread: submission queue full");
			r->ops[i].res = -EBUSY;
			if (--r->left == 0)
				sem_post(&r->done);
			continue;
		}
		prep_op(sqe, &r->ops[i]);
		prepared++;
	}
	return prepared;
}

static void *iot_main(void *arg)
{
	struct io_thread *t = arg;
	struct ureq *pend = NULL, *pend_tail = NULL; /* taken, not yet prepared */
	unsigned inflight = 0;
	bool efd_armed = false, warned = false;

	t->start_err = ring_init(&t->ring, IOT_DEPTH);
	sem_post(&t->started);
	if (t->start_err < 0)
		return NULL;
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		ff_mutex_lock(&t->lock);
		if (t->head) {
			if (pend_tail)
				pend_tail->next = t->head;
			else
				pend = t->head;
			pend_tail = t->tail;
			t->head = t->tail = NULL;
		}
		t->sleeping = true;
		ff_mutex_unlock(&t->lock);

		/* one slot stays for the eventfd read */
		while (pend && inflight + (unsigned)pend->n < IOT_DEPTH) {
			struct ureq *r = pend;

			pend = r->next;
			if (!pend)
				pend_tail = NULL;
			inflight += iot_prep(t, r);
		}
		if (!efd_armed) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

			if (sqe) {
				io_uring_prep_read(sqe, t->efd, &t->ebuf, sizeof(t->ebuf), 0);
				io_uring_sqe_set_data(sqe, NULL);
				efd_armed = true;
			}
		}
		ret = io_uring_submit_and_wait(&t->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && !warned) {
			ff_err("io-thread: io_uring_enter failed: %s; retrying", strerror(-ret));
			warned = true;
		}

		ff_mutex_lock(&t->lock);
		t->sleeping = false; /* awake: requests queued from now are taken next round */
		ff_mutex_unlock(&t->lock);

		io_uring_for_each_cqe(&t->ring, head, cqe)
		{
			struct uop *op = io_uring_cqe_get_data(cqe);

			seen++;
			if (!op) {
				efd_armed = false;
				continue;
			}
			op->res = cqe->res;
			inflight--;
			if (--op->req->left == 0)
				sem_post(&op->req->done);
		}
		io_uring_cq_advance(&t->ring, seen);
	}
	return NULL;
}

/* The process's I/O thread, started on first use (and again in a forked child). */
static struct io_thread *io_thread_get(int *err)
{
	struct io_thread *t = atomic_load_explicit(&iot, memory_order_acquire);
	sigset_t all, old;
	int ret;

	if (t && t->pid == getpid())
		return t;
	pthread_mutex_lock(&iot_create_lock);
	t = atomic_load_explicit(&iot, memory_order_acquire);
	if (t && t->pid == getpid())
		goto out_unlock;
	/* a parent's thread (after fork) is left alone: its lock may be held */
	t = calloc(1, sizeof(*t));
	if (!t) {
		*err = -ENOMEM;
		goto out_unlock;
	}
	ff_mutex_init(&t->lock);
	sem_init(&t->started, 0, 0);
	t->pid = getpid();
	t->efd = eventfd(0, EFD_CLOEXEC);
	if (t->efd < 0) {
		*err = -errno;
		goto out_free;
	}
	/* the I/O thread takes no signals: the daemon's handlers run elsewhere */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&t->thr, NULL, iot_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		*err = -ret;
		goto out_close;
	}
	while (sem_wait(&t->started) && errno == EINTR)
		;
	if (t->start_err < 0) {
		*err = t->start_err;
		pthread_join(t->thr, NULL);
		goto out_close;
	}
	pthread_detach(t->thr);
	atomic_store_explicit(&iot, t, memory_order_release);
out_unlock:
	pthread_mutex_unlock(&iot_create_lock);
	return t;
out_close:
	close(t->efd);
out_free:
	sem_destroy(&t->started);
	ff_mutex_destroy(&t->lock);
	free(t);
	t = NULL;
	goto out_unlock;
}

/* Queue r (n ops from ops) for the I/O thread, waking it if it sleeps. */
static void iot_queue(struct io_thread *t, struct ureq *r, struct uop *ops, int n)
{
	bool wake;

	*r = (struct ureq){.ops = ops, .n = n, .left = n};
	sem_init(&r->done, 0, 0);
	for (int i = 0; i < n; i++)
		ops[i].req = r;
	ff_mutex_lock(&t->lock);
	if (t->tail)
		t->tail->next = r;
	else
		t->head = r;
	t->tail = r;
	wake = t->sleeping;
	t->sleeping = false; /* one wake-up is enough */
	ff_mutex_unlock(&t->lock);
	if (wake) {
		uint64_t one = 1;

		while (write(t->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

static void iot_wait(struct ureq *r)
{
	while (sem_wait(&r->done) && errno == EINTR)
		;
	sem_destroy(&r->done);
}

/*
 * Hand n ops to the I/O thread and wait until all have completed; with late,
 * its last n_late ops go as a second request once late->fill ran. May sleep.
 */
static int iot_exec(struct uop *ops, int n, const struct late_fill *late)
{
	int n_early = late ? n - late->n_late : n;
	struct ureq r[2];
	struct io_thread *t;
	int err = 0;

	t = io_thread_get(&err);
	if (!t)
		return err;
	if (n_early)
		iot_queue(t, &r[0], ops, n_early);
	if (late) {
		late->fill(late->arg);
		iot_queue(t, &r[1], ops + n_early, n - n_early);
	}
	if (n_early)
		iot_wait(&r[0]);
	if (late)
		iot_wait(&r[1]);
	return 0;
}

/* Run n (<= RING_DEPTH) ops in the current mode; 0, or -errno when the ring failed. */
static int ring_exec(struct uop *ops, int n, const struct late_fill *late)
{
	if (ff_dev_uring_mode() == FF_URING_IO_THREAD)
		return iot_exec(ops, n, late);
	return pt_exec(ops, n, late);
}

/* ---- the calls the backends make ---- */

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

ssize_t ff_uring_rw(int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool write,
		    unsigned flags)
{
	size_t total = iov_len_sum(iov, iovcnt), done = 0;
	struct iovec scratch[IOV_MAX];

	if (iovcnt <= 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	while (done < total) {
		struct uop op = {.kind = write ? UOP_WRITE : UOP_READ,
				 .fd = fd,
				 .iov = scratch,
				 .iovcnt = iov_advance(iov, iovcnt, done, scratch),
				 .off = off + done,
				 .flags = flags};
		int err = ring_exec(&op, 1, NULL);

		if (err)
			return err;
		if (op.res == -EINTR || op.res == -EAGAIN)
			continue;
		if (op.res < 0)
			return op.res;
		if (op.res == 0)
			return write ? -EIO : (ssize_t)done; /* EOF on read */
		done += (size_t)op.res;
	}
	return (ssize_t)done;
}

int ff_uring_fsync(int fd)
{
	for (;;) {
		struct uop op = {.kind = UOP_FSYNC, .fd = fd};
		int err = ring_exec(&op, 1, NULL);

		if (err)
			return err;
		if (op.res != -EINTR && op.res != -EAGAIN)
			return (int)op.res;
	}
}

/* One ring's worth (n <= RING_DEPTH) of ff_uring_batch(), late as in pt_exec(). */
static int batch_chunk(int fd, struct ff_io *ios, int n, const struct late_fill *late)
{
	struct uop ops[RING_DEPTH];
	int err;

	for (int i = 0; i < n; i++) {
		struct ff_io *io = &ios[i];

		ops[i] = (struct uop){.kind = io->write ? UOP_WRITE : UOP_READ,
				      .fd = fd,
				      .iov = io->iov,
				      .iovcnt = io->iovcnt,
				      .off = io->off,
				      .flags = io->flags};
	}
	err = ring_exec(ops, n, late);
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		struct ff_io *io = &ios[i];
		size_t want = iov_len_sum(io->iov, io->iovcnt);

		io->res = ops[i].res;
		/* a short or interrupted one is finished synchronously */
		if (io->res == -EINTR || io->res == -EAGAIN ||
		    (io->res > 0 && (size_t)io->res < want)) {
			struct iovec scratch[IOV_MAX];
			size_t done = io->res > 0 ? (size_t)io->res : 0;
			int k = iov_advance(io->iov, io->iovcnt, done, scratch);
			ssize_t r =
				ff_uring_rw(fd, scratch, k, io->off + done, io->write, io->flags);

			io->res = r < 0 ? r : (ssize_t)(done + (size_t)r);
		}
	}
	return 0;
}

int ff_uring_batch(int fd, struct ff_io *ios, int n)
{
	for (int base = 0; base < n; base += RING_DEPTH) {
		int err = batch_chunk(fd, ios + base, n - base < RING_DEPTH ? n - base : RING_DEPTH,
				      NULL);

		if (err)
			return err;
	}
	return 0;
}

int ff_uring_batch_late(int fd, struct ff_io *ios, int n, int n_late, void (*fill)(void *arg),
			void *arg)
{
	struct late_fill late = {.n_late = n_late, .fill = fill, .arg = arg};

	if (n > RING_DEPTH || n_late < 1 || n_late > n) {
		fill(arg);
		return ff_uring_batch(fd, ios, n);
	}
	return batch_chunk(fd, ios, n, &late);
}
