// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the regular device: random vectored I/O with verify, batches,
 * durable writes and flush, counters, and the refusal of bad paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/zoneq.h"
#include "testutil.h"
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <liburing.h>
#include <stdatomic.h>
#include <unistd.h>
#include "../../src/dev/internal.h" /* ff_uring_rw: the ring edge under test */

#define ZS   (4ull << 20)
#define SIZE (8 * ZS)
#define BLK  4096

struct fx {
	char path[256];
	struct ff_dev *dev;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_dev_opts o = {.zone_size = ZS};

	assert_int_equal(tu_make_image(f->path, sizeof(f->path), "dev", SIZE + 12345), 0);
	assert_int_equal(ff_dev_open(f->path, &o, &f->dev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ff_dev_close(f->dev);
	unlink(f->path);
	free(f);
	return 0;
}

static void test_dev_regular_geometry(void **state)
{
	struct fx *f = *state;
	const struct ff_dev_info *di = ff_dev_info(f->dev);
	struct ff_zone z[8];

	assert_int_equal(di->kind, FF_DEV_REGULAR);
	assert_int_equal(di->nr_zones, 8); /* the partial tail is not a zone */
	assert_int_equal(di->nr_cnv_zones, 8);
	assert_int_equal(di->size, SIZE);
	assert_int_equal(ff_dev_report(f->dev, 0, 8, z), 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(z[i].type, FF_ZONE_CNV);
		assert_int_equal(z[i].start, (uint64_t)i * ZS);
	}
	assert_int_equal(ff_dev_zone_op(f->dev, 1, FF_ZOP_RESET), -EINVAL);
	assert_int_equal(ff_dev_zone_of(f->dev, 3 * ZS + 5), 3);
}

static void test_dev_random_io_verify(void **state)
{
	struct fx *f = *state;
	const int nblk = (int)(SIZE / BLK), n = 2000;
	uint32_t *seed = calloc((size_t)nblk, sizeof(*seed));
	void *a = tu_alloc(BLK), *b = tu_alloc(BLK), *c = tu_alloc(2 * BLK);
	unsigned long long x = 42;

	for (int i = 0; i < n; i++) {
		int blk;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		blk = (int)((x >> 33) % (unsigned)(nblk - 1));
		/* a two-segment vectored write of two blocks */
		tu_fill(a, BLK, (unsigned)i * 2 + 1);
		tu_fill(b, BLK, (unsigned)i * 2 + 2);
		struct iovec iov[2] = {{a, BLK}, {b, BLK}};

		assert_int_equal(
			ff_dev_write(f->dev, iov, 2, (uint64_t)blk * BLK, i % 7 ? 0 : FF_IO_DSYNC),
			2 * BLK);
		seed[blk] = (uint32_t)i * 2 + 1;
		seed[blk + 1] = (uint32_t)i * 2 + 2;
	}
	for (int blk = 0; blk < nblk; blk++) {
		struct iovec iov = {c, BLK};

		if (!seed[blk])
			continue;
		assert_int_equal(ff_dev_read(f->dev, &iov, 1, (uint64_t)blk * BLK), BLK);
		tu_fill(a, BLK, seed[blk]);
		assert_memory_equal(c, a, BLK);
	}
	assert_int_equal(ff_dev_flush(f->dev), 0);
	free(seed);
	free(a);
	free(b);
	free(c);
}

static void test_dev_batch_and_stats(void **state)
{
	struct fx *f = *state;
	void *buf = tu_alloc(16 * BLK), *rd = tu_alloc(16 * BLK);
	struct iovec wv[16], rv[16];
	struct ff_io ios[16];
	struct ff_dev_stats st;

	tu_fill(buf, 16 * BLK, 7);
	for (int i = 0; i < 16; i++) {
		wv[i] = (struct iovec){(char *)buf + i * BLK, BLK};
		ios[i] = (struct ff_io){
			.iov = &wv[i], .iovcnt = 1, .off = (uint64_t)i * 3 * BLK, .write = true};
	}
	assert_int_equal(ff_dev_submit_batch(f->dev, ios, 16), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(ios[i].res, BLK);
		rv[i] = (struct iovec){(char *)rd + i * BLK, BLK};
		ios[i] = (struct ff_io){.iov = &rv[i], .iovcnt = 1, .off = (uint64_t)i * 3 * BLK};
	}
	assert_int_equal(ff_dev_submit_batch(f->dev, ios, 16), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(ios[i].res, BLK);
	assert_memory_equal(buf, rd, 16 * BLK);
	ff_dev_stats(f->dev, &st);
	assert_int_equal(st.writes, 16);
	assert_int_equal(st.reads, 16);
	assert_int_equal(st.bytes_written, 16 * BLK);
	assert_int_equal(st.bytes_read, 16 * BLK);
	free(buf);
	free(rd);
}

static void test_dev_rejects_bad_io(void **state)
{
	struct fx *f = *state;
	char *buf = tu_alloc(2 * BLK);
	struct iovec iov = {buf, BLK};

	iov.iov_len = 100;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 0, 0), -EINVAL); /* length */
	iov.iov_len = BLK;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 512, 0), -EINVAL);  /* offset */
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, SIZE, 0), -EINVAL); /* past the end */
	iov.iov_base = buf + 1;
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 0, 0), -EINVAL); /* buffer */
	free(buf);
}

static void test_dev_open_refusals(void **state)
{
	struct ff_dev *d = NULL;
	char small[256];

	(void)state;
	assert_int_equal(ff_dev_open("/nonexistent/foliofs.img", NULL, &d), -ENOENT);
	assert_int_equal(ff_dev_open("/var/tmp", NULL, &d), -EISDIR);
	assert_int_equal(ff_dev_open("/dev/null", NULL, &d), -ENODEV);
	assert_int_equal(tu_make_image(small, sizeof(small), "small", 1 << 20), 0);
	assert_int_equal(ff_dev_open(small, NULL, &d), -ENOSPC);
	assert_null(d);
	unlink(small);
}

/* ---- both io_uring designs (uring.c) ---- */

#define MT_THREADS 4
#define MT_ITERS   300
#define MT_BATCH   100 /* more than one ring's worth of operations (64) */

struct mt_arg {
	struct ff_dev *dev;
	int idx;
	int bad; /* out: verify or I/O failures */
};

/* A thread's private zone: vectored writes with verify, and big read batches. */
static void *mt_fn(void *p)
{
	struct mt_arg *a = p;
	uint64_t base = (uint64_t)(a->idx + 1) * ZS;
	void *w = tu_alloc(2 * BLK), *r = tu_alloc(2 * BLK), *bb = tu_alloc(MT_BATCH * BLK);
	struct iovec bv[MT_BATCH];
	struct ff_io ios[MT_BATCH];

	for (int i = 0; i < MT_ITERS; i++) {
		uint64_t off = base + (uint64_t)(i % 64) * 2 * BLK;
		struct iovec wv[2] = {{w, BLK}, {(char *)w + BLK, BLK}};
		struct iovec rv = {r, 2 * BLK};

		tu_fill(w, 2 * BLK, (unsigned)(a->idx * 100000 + i));
		if (ff_dev_write(a->dev, wv, 2, off, i % 5 ? 0 : FF_IO_DSYNC) != 2 * BLK ||
		    ff_dev_read(a->dev, &rv, 1, off) != 2 * BLK || memcmp(w, r, 2 * BLK))
			a->bad++;
		if (i % 50 == 49) {
			for (int k = 0; k < MT_BATCH; k++) {
				bv[k] = (struct iovec){(char *)bb + k * BLK, BLK};
				ios[k] = (struct ff_io){.iov = &bv[k],
							.iovcnt = 1,
							.off = base + (uint64_t)k * BLK};
			}
			if (ff_dev_submit_batch(a->dev, ios, MT_BATCH))
				a->bad++;
			for (int k = 0; k < MT_BATCH; k++)
				if (ios[k].res != BLK)
					a->bad++;
		}
	}
	free(w);
	free(r);
	free(bb);
	return NULL;
}

/*
 * Several threads do I/O while the ring design flips under them: every I/O
 * completes correctly in whichever design it started in.
 */
static void test_dev_uring_modes_concurrent(void **state)
{
	struct fx *f = *state;
	enum ff_uring_mode orig = ff_dev_uring_mode();
	struct mt_arg args[MT_THREADS];
	pthread_t th[MT_THREADS];

	for (int i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){.dev = f->dev, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, mt_fn, &args[i]), 0);
	}
	for (int i = 0; i < 200; i++) {
		ff_dev_set_uring_mode(i % 2 ? FF_URING_IO_THREAD : FF_URING_PER_THREAD);
		usleep(1000);
	}
	for (int i = 0; i < MT_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
	}
	ff_dev_set_uring_mode(orig);
	assert_int_equal(ff_dev_set_uring_mode(0), -EINVAL);
}

static void test_dev_uring_mode_names(void **state)
{
	enum ff_uring_mode m;

	(void)state;
	assert_int_equal(ff_dev_parse_uring_mode("io-thread", &m), 0);
	assert_int_equal(m, FF_URING_IO_THREAD);
	assert_string_equal(ff_dev_uring_mode_name(m), "io-thread");
	assert_int_equal(ff_dev_parse_uring_mode("per-thread", &m), 0);
	assert_int_equal(m, FF_URING_PER_THREAD);
	assert_string_equal(ff_dev_uring_mode_name(m), "per-thread");
	assert_int_equal(ff_dev_parse_uring_mode("sqpoll", &m), -EINVAL);
}

/*
 * I/O in a forked child after the parent did I/O (the daemon checks the
 * device, forks, mounts): the child cannot use the parent's SINGLE_ISSUER
 * ring nor its I/O thread, and makes its own.
 */
static void test_dev_io_after_fork(void **state)
{
	struct fx *f = *state;
	void *a = tu_alloc(BLK), *b = tu_alloc(BLK);
	struct iovec wv = {a, BLK}, rv = {b, BLK};
	int status = 0;
	pid_t pid;

#ifdef TU_TSAN
	/* TSan refuses to start threads in the child of a multi-threaded process */
	if (ff_dev_uring_mode() == FF_URING_IO_THREAD) {
		free(a);
		free(b);
		skip();
	}
#endif
	tu_fill(a, BLK, 1);
	assert_int_equal(ff_dev_write(f->dev, &wv, 1, 0, FF_IO_DSYNC), BLK);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok;

		tu_fill(a, BLK, 2);
		ok = ff_dev_write(f->dev, &wv, 1, BLK, FF_IO_DSYNC) == BLK &&
		     ff_dev_read(f->dev, &rv, 1, BLK) == BLK && !memcmp(a, b, BLK) &&
		     ff_dev_flush(f->dev) == 0;
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the parent's ring or thread still works, and sees the child's write */
	assert_int_equal(ff_dev_read(f->dev, &rv, 1, BLK), BLK);
	tu_fill(a, BLK, 2); /* what the child wrote */
	assert_memory_equal(a, b, BLK);
	free(a);
	free(b);
}

/*
 * -Wl,--wrap=io_uring_submit_and_wait (tests/unit/meson.build): on the
 * armed thread, call 0 only submits (the op is then in flight) and call 1
 * fails as a broken ring would.
 */
int __real_io_uring_submit_and_wait(struct io_uring *ring, unsigned wait_nr);
int __wrap_io_uring_submit_and_wait(struct io_uring *ring, unsigned wait_nr);
static _Thread_local int submit_armed, submit_calls;

int __wrap_io_uring_submit_and_wait(struct io_uring *ring, unsigned wait_nr)
{
	if (submit_armed) {
		int n = submit_calls++;

		if (n == 0)
			return io_uring_submit(ring);
		if (n == 1)
			return -EBADFD;
	}
	return __real_io_uring_submit_and_wait(ring, wait_nr);
}

/*
 * When the ring fails with an op in flight (a read of an empty pipe), the
 * call must not return before that op is finished: it points into the
 * caller's stack. Then the pipe hits EOF: a read left in flight would
 * complete now, and the thread's next I/O would take its completion for its
 * own (and return 0 bytes).
 */
static void test_dev_ring_failure_reaps_in_flight(void **state)
{
	struct fx *f = *state;
	enum ff_uring_mode mode = ff_dev_uring_mode();
	void *b = tu_alloc(BLK), *want = tu_alloc(BLK);
	struct iovec iov = {.iov_base = b, .iov_len = BLK};
	int p[2], fd;
	ssize_t r;

	assert_int_equal(ff_dev_set_uring_mode(FF_URING_PER_THREAD), 0);
	fd = open(f->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	tu_fill(want, BLK, 77);
	assert_int_equal(pwrite(fd, want, BLK, 0), BLK);
	assert_int_equal(pipe(p), 0);
	submit_armed = 1;
	submit_calls = 0;
	r = ff_uring_rw(p[0], &iov, 1, 0, false, 0);
	submit_armed = 0;
	assert_int_equal(submit_calls, 2);
	assert_true(r < 0);
	close(p[1]);
	assert_int_equal(ff_uring_rw(fd, &iov, 1, 0, false, 0), BLK);
	assert_memory_equal(b, want, BLK);
	close(p[0]);
	close(fd);
	ff_dev_set_uring_mode(mode);
	free(b);
	free(want);
}

struct late_arg {
	int peer;	/* the other end of the socket pair */
	bool early;	/* an early write should have reached peer */
	bool saw_early; /* it had, with its bytes, when the fill ran */
	void *late_buf;
	int calls;
};

/* Looks for the early write's bytes at the peer, then makes the late write's. */
static void late_fill(void *arg)
{
	struct late_arg *a = arg;
	struct pollfd pfd = {.fd = a->peer, .events = POLLIN};
	void *got = tu_alloc(BLK), *want = tu_alloc(BLK);

	a->calls++;
	tu_fill(want, BLK, 31);
	a->saw_early = a->early && poll(&pfd, 1, 10000) == 1 &&
		       recv(a->peer, got, BLK, MSG_WAITALL) == BLK && !memcmp(got, want, BLK);
	tu_fill(a->late_buf, BLK, 32);
	free(got);
	free(want);
}

/*
 * ff_uring_batch_late: the early op is in flight when the fill runs (its
 * bytes have reached the socket's other end), and the late op carries what
 * the fill made.
 */
static void test_dev_batch_late_fills_in_flight(void **state)
{
	void *early = tu_alloc(BLK), *late = tu_alloc(BLK), *want = tu_alloc(BLK),
	     *got = tu_alloc(BLK);
	struct iovec ev = {early, BLK}, lv = {late, BLK};
	struct ff_io ios[2] = {{.iov = &ev, .iovcnt = 1, .write = true},
			       {.iov = &lv, .iovcnt = 1, .write = true}};
	struct late_arg a = {.late_buf = late, .early = true};
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a.peer = sv[1];
	tu_fill(early, BLK, 31);
	assert_int_equal(ff_uring_batch_late(sv[0], ios, 2, 1, late_fill, &a), 0);
	assert_int_equal(a.calls, 1);
	assert_true(a.saw_early);
	assert_int_equal(ios[0].res, BLK);
	assert_int_equal(ios[1].res, BLK);
	assert_int_equal(recv(sv[1], got, BLK, MSG_WAITALL), BLK);
	tu_fill(want, BLK, 32);
	assert_memory_equal(got, want, BLK);
	/* nothing to overlap: the fill runs first, then the batch */
	a = (struct late_arg){.peer = sv[1], .late_buf = late};
	ios[0] = (struct ff_io){.iov = &lv, .iovcnt = 1, .write = true};
	assert_int_equal(ff_uring_batch_late(sv[0], ios, 1, 1, late_fill, &a), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(ios[0].res, BLK);
	assert_int_equal(recv(sv[1], got, BLK, MSG_WAITALL), BLK);
	assert_memory_equal(got, want, BLK);
	close(sv[0]);
	close(sv[1]);
	free(early);
	free(late);
	free(want);
	free(got);
}

/* Attach path to a free loop device: its fd (name in buf), or -1 (no loop devices here). */
static int loop_attach(const char *path, char *buf, size_t len)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), n, lfd = -1, bfd;

	if (ctl < 0)
		return -1;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -1;
	snprintf(buf, len, "/dev/loop%d", n);
	bfd = open(path, O_RDWR | O_CLOEXEC);
	if (bfd >= 0)
		lfd = open(buf, O_RDWR | O_CLOEXEC);
	if (lfd >= 0 && ioctl(lfd, LOOP_SET_FD, bfd) < 0) {
		close(lfd);
		lfd = -1;
	}
	if (bfd >= 0)
		close(bfd);
	return lfd;
}

/*
 * The one-user lock on a block device (what mkfs holds while it formats) is
 * the kernel's O_EXCL claim: a second locker, an exclusive open (a mount)
 * and any O_EXCL opener are refused while it is held; the holder's own
 * non-exclusive opens still work.
 */
static int loop_fd = -1;

static int teardown_loop(void **state)
{
	if (loop_fd >= 0) {
		ioctl(loop_fd, LOOP_CLR_FD, 0);
		close(loop_fd);
		loop_fd = -1;
	}
	return teardown(state);
}

static void test_dev_lock_image_block_device(void **state)
{
	struct fx *f = *state;
	struct ff_dev_opts ex = {.exclusive = true, .zone_size = ZS}, plain = {.zone_size = ZS};
	struct ff_dev *d2;
	struct ff_dev_lock lk, lk2;
	char loop[64];
	int probe;

	loop_fd = loop_attach(f->path, loop, sizeof(loop));
	if (loop_fd < 0)
		skip();
	assert_int_equal(ff_dev_lock_image(loop, &lk), 0);
	assert_true(lk.fd >= 0);
	probe = open(loop, O_RDONLY | O_EXCL | O_CLOEXEC);
	assert_true(probe < 0 && errno == EBUSY);
	assert_int_equal(ff_dev_lock_image(loop, &lk2), -EBUSY);
	assert_int_equal(lk2.fd, -1);
	assert_int_equal(ff_dev_open(loop, &ex, &d2), -EBUSY);
	assert_int_equal(ff_dev_open(loop, &plain, &d2), 0);
	ff_dev_close(d2);
	ff_dev_unlock_image(&lk);
	assert_int_equal(ff_dev_lock_image(loop, &lk), 0);
	ff_dev_unlock_image(&lk);
}

/*
 * A loop device and the file under it are one device: the lock of either
 * name keeps the other from being formatted or opened exclusively, and an
 * idle loop device keeps nothing from the file.
 */
static void test_dev_lock_loop_and_its_file(void **state)
{
	struct fx *f = *state;
	struct ff_dev_opts ex = {.exclusive = true, .zone_size = ZS};
	struct ff_dev_opts ro = {.exclusive = true, .read_only = true, .zone_size = ZS};
	struct ff_dev *d, *d2;
	struct ff_dev_lock lk, lk2;
	char loop[64];

	loop_fd = loop_attach(f->path, loop, sizeof(loop));
	if (loop_fd < 0)
		skip();
	/* the loop device held: the file is in use */
	assert_int_equal(ff_dev_lock_image(loop, &lk), 0);
	assert_true(lk.backing_fd >= 0);
	assert_int_equal(ff_dev_lock_image(f->path, &lk2), -EBUSY);
	assert_int_equal(ff_dev_open(f->path, &ex, &d2), -EBUSY);
	assert_int_equal(ff_dev_open(f->path, &ro, &d2), -EBUSY);
	ff_dev_unlock_image(&lk);
	assert_int_equal(ff_dev_open(loop, &ex, &d), 0);
	assert_int_equal(ff_dev_lock_image(f->path, &lk2), -EBUSY);
	ff_dev_close(d);
	/* the file held: the loop device over it is in use */
	assert_int_equal(ff_dev_lock_image(f->path, &lk), 0);
	assert_int_equal(ff_dev_lock_image(loop, &lk2), -EBUSY);
	assert_int_equal(ff_dev_open(loop, &ex, &d2), -EBUSY);
	ff_dev_unlock_image(&lk);
	assert_int_equal(ff_dev_open(f->path, &ex, &d), 0);
	assert_int_equal(ff_dev_open(loop, &ex, &d2), -EBUSY);
	ff_dev_close(d);
	/* neither held: both are free, the idle loop device attached all along */
	assert_int_equal(ff_dev_open(f->path, &ex, &d), 0);
	ff_dev_close(d);
	assert_int_equal(ff_dev_open(loop, &ex, &d), 0);
	ff_dev_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dev_regular_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_random_io_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_batch_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dev_rejects_bad_io, setup, teardown),
		cmocka_unit_test(test_dev_open_refusals),
		cmocka_unit_test_setup_teardown(test_dev_uring_modes_concurrent, setup, teardown),
		cmocka_unit_test(test_dev_uring_mode_names),
		cmocka_unit_test_setup_teardown(test_dev_io_after_fork, setup, teardown),
		cmocka_unit_test(test_dev_batch_late_fills_in_flight),
		cmocka_unit_test_setup_teardown(test_dev_ring_failure_reaps_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dev_lock_image_block_device, setup,
						teardown_loop),
		cmocka_unit_test_setup_teardown(test_dev_lock_loop_and_its_file, setup,
						teardown_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
