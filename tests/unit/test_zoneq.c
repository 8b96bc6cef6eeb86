// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the per-zone submission queue over an emulated zoned image:
 * many threads appending into few zones (every block where its completion
 * said, per-thread order kept, nothing lost, no device write error), merging
 * under contention, write_at at a wrong offset, full zones, zone ops, and an
 * injected write error failing its dependants and resyncing the pointer.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "testutil.h"
#include "../../src/dev/internal.h"

#define ZS	(8ull << 20)
#define BLK	4096
#define NTHR	8
#define NWRITES 1000
#define NZONES	4
#define FIRST	1 /* zone 0 conventional */

struct fx {
	char path[256];
	struct ff_dev *dev;
};

struct blkhdr {
	uint32_t thread, seq, zone, crc;
};

struct worker {
	struct fx *f;
	int id;
	uint64_t offs[NWRITES];
	int err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ff_emu_opts o = {.zone_size = ZS, .nr_cnv = 1};

	assert_int_equal(tu_emu_mkimage(f->path, sizeof(f->path), "zoneq", 12 * ZS, &o), 0);
	assert_int_equal(ff_dev_open(f->path, NULL, &f->dev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ff_dev_fault_hook = NULL;
	ff_dev_close(f->dev);
	unlink(f->path);
	free(f);
	return 0;
}

static void make_block(void *b, uint32_t t, uint32_t seq, uint32_t zone)
{
	struct blkhdr *h = b;

	tu_fill(b, BLK, ((uint64_t)t << 32) | seq);
	h->thread = t;
	h->seq = seq;
	h->zone = zone;
	h->crc = 0;
	h->crc = ff_crc32c(0, b, BLK);
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	void *b = tu_alloc(BLK);

	for (int i = 0; i < NWRITES; i++) {
		uint32_t zone = FIRST + (uint32_t)((w->id + i) % NZONES);
		struct iovec iov = {.iov_base = b, .iov_len = BLK};
		ssize_t r;

		make_block(b, (uint32_t)w->id, (uint32_t)i, zone);
		r = ff_zoneq_append(w->f->dev, zone, &iov, 1, (i % 16 == 0) ? FF_IO_DSYNC : 0,
				    &w->offs[i]);
		if (r != BLK) {
			w->err = r < 0 ? (int)r : -EIO;
			break;
		}
	}
	free(b);
	return NULL;
}

static void test_zoneq_many_threads_order(void **state)
{
	struct fx *f = *state;
	static struct worker w[NTHR];
	pthread_t th[NTHR];
	struct ff_dev_stats ds;
	struct ff_zoneq_stats qs;
	void *b = tu_alloc(BLK);
	uint64_t total = 0;

	for (int i = 0; i < NTHR; i++) {
		w[i] = (struct worker){.f = f, .id = i};
		pthread_create(&th[i], NULL, worker_fn, &w[i]);
	}
	for (int i = 0; i < NTHR; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHR; i++)
		assert_int_equal(w[i].err, 0);
	/* every block is where its completion said, intact */
	for (int t = 0; t < NTHR; t++) {
		uint64_t last[NZONES + FIRST] = {0};

		for (int i = 0; i < NWRITES; i++) {
			uint32_t zone = FIRST + (uint32_t)((t + i) % NZONES);
			struct iovec iov = {.iov_base = b, .iov_len = BLK};
			struct blkhdr h;
			uint32_t crc;

			assert_int_equal(ff_dev_zone_of(f->dev, w[t].offs[i]), zone);
			assert_int_equal(ff_dev_read(f->dev, &iov, 1, w[t].offs[i]), BLK);
			memcpy(&h, b, sizeof(h));
			assert_int_equal(h.thread, t);
			assert_int_equal(h.seq, i);
			assert_int_equal(h.zone, zone);
			crc = h.crc;
			((struct blkhdr *)b)->crc = 0;
			assert_int_equal(ff_crc32c(0, b, BLK), crc);
			/* a thread's writes to one zone land in the order it made them */
			if (last[zone])
				assert_true(w[t].offs[i] > last[zone]);
			last[zone] = w[t].offs[i];
		}
	}
	/* nothing lost or duplicated: the zones hold exactly all the blocks */
	for (uint32_t z = FIRST; z < FIRST + NZONES; z++) {
		struct ff_zone zi;

		assert_int_equal(ff_dev_report(f->dev, z, 1, &zi), 1);
		total += zi.wp - zi.start;
		assert_int_equal(ff_zoneq_wp(f->dev, z), zi.wp);
	}
	assert_int_equal(total, (uint64_t)NTHR * NWRITES * BLK);
	ff_dev_stats(f->dev, &ds);
	ff_zoneq_stats(f->dev, &qs);
	assert_int_equal(ds.write_errors, 0);
	assert_int_equal(qs.queued, (uint64_t)NTHR * NWRITES);
	assert_int_equal(qs.issued + qs.merged, qs.queued);
	print_message("zoneq: %llu queued, %llu device writes, %llu merged\n",
		      (unsigned long long)qs.queued, (unsigned long long)qs.issued,
		      (unsigned long long)qs.merged);
	free(b);
}

/*
 * A fault hook that holds the first device write until the test releases it
 * (once every other write is queued behind it): deterministic on a loaded
 * machine, where sleeps were not (TSan runs saw the writes not queue up).
 */
static _Atomic int hook_calls;
static _Atomic int hook_fail_at = -1;
static _Atomic bool hook_release;
static int slow_hook(struct ff_dev *dev, uint64_t off, size_t len)
{
	int n = atomic_fetch_add(&hook_calls, 1);

	(void)dev;
	(void)off;
	(void)len;
	for (int i = 0; n == 0 && !atomic_load(&hook_release) && i < 20000; i++)
		usleep(1000); /* at most 20 s, so a broken queue fails rather than hangs */
	return n == atomic_load(&hook_fail_at) ? -EIO : 0;
}

struct one {
	struct fx *f;
	uint32_t zone;
	ssize_t res;
	uint64_t off;
	unsigned seed;
};

static void *one_fn(void *arg)
{
	struct one *o = arg;
	void *b = tu_alloc(BLK);
	struct iovec iov = {.iov_base = b, .iov_len = BLK};

	tu_fill(b, BLK, o->seed);
	o->res = ff_zoneq_append(o->f->dev, o->zone, &iov, 1, 0, &o->off);
	free(b);
	return NULL;
}

static void run_contended(struct fx *f, uint32_t zone, struct one *ones, int n)
{
	struct ff_zoneq_stats qs;
	pthread_t th[16];

	atomic_store(&hook_release, false);
	ones[0] = (struct one){.f = f, .zone = zone, .seed = 100};
	pthread_create(&th[0], NULL, one_fn, &ones[0]);
	for (int i = 0; atomic_load(&hook_calls) == 0 && i < 20000; i++)
		usleep(1000); /* the first is in flight, held by the hook */
	assert_int_equal(atomic_load(&hook_calls), 1);
	for (int i = 1; i < n; i++) {
		ones[i] = (struct one){.f = f, .zone = zone, .seed = 100 + (unsigned)i};
		pthread_create(&th[i], NULL, one_fn, &ones[i]);
	}
	for (int i = 0; i < 20000; i++) {
		ff_zoneq_stats(f->dev, &qs);
		if (qs.queued >= (uint64_t)n)
			break;
		usleep(1000);
	}
	atomic_store(&hook_release, true);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void test_zoneq_merges_under_contention(void **state)
{
	struct fx *f = *state;
	struct one ones[8];
	struct ff_zoneq_stats qs;
	struct ff_dev_stats ds;

	atomic_store(&hook_calls, 0);
	atomic_store(&hook_fail_at, -1);
	ff_dev_fault_hook = slow_hook;
	run_contended(f, 2, ones, 8);
	ff_dev_fault_hook = NULL;
	ff_zoneq_stats(f->dev, &qs);
	ff_dev_stats(f->dev, &ds);
	for (int i = 0; i < 8; i++)
		assert_int_equal(ones[i].res, BLK);
	assert_int_equal(qs.queued, 8);
	assert_int_equal(qs.issued, 2); /* the 7 queued behind the first went as one write */
	assert_int_equal(ds.writes, qs.issued);
	assert_int_equal(ff_zoneq_wp(f->dev, 2), 2 * ZS + 8 * BLK);
}

static void test_zoneq_error_fails_dependants(void **state)
{
	struct fx *f = *state;
	struct one ones[6];
	struct ff_zoneq_stats qs;
	struct one after = {.f = f, .zone = 3, .seed = 999};
	void *b = tu_alloc(BLK), *want = tu_alloc(BLK);
	struct iovec iov = {.iov_base = b, .iov_len = BLK};

	atomic_store(&hook_calls, 0);
	atomic_store(&hook_fail_at, 0); /* the first (held) write fails */
	ff_dev_fault_hook = slow_hook;
	run_contended(f, 3, ones, 6);
	ff_dev_fault_hook = NULL;
	for (int i = 0; i < 6; i++)
		assert_int_equal(ones[i].res, -EIO);
	ff_zoneq_stats(f->dev, &qs);
	assert_int_equal(qs.errors, 1);
	assert_true(qs.resyncs >= 1);
	assert_int_equal(ff_zoneq_wp(f->dev, 3), 3 * ZS); /* resynced to the device */
	one_fn(&after);
	assert_int_equal(after.res, BLK);
	assert_int_equal(after.off, 3 * ZS);
	assert_int_equal(ff_dev_read(f->dev, &iov, 1, 3 * ZS), BLK);
	tu_fill(want, BLK, 999);
	assert_memory_equal(b, want, BLK);
	free(b);
	free(want);
}

static void test_zoneq_write_at_wrong_offset(void **state)
{
	struct fx *f = *state;
	void *b = tu_alloc(BLK);
	struct iovec iov = {.iov_base = b, .iov_len = BLK};
	struct ff_dev_stats before, after;

	ff_dev_stats(f->dev, &before);
	assert_int_equal(ff_zoneq_write_at(f->dev, 4, &iov, 1, 4 * ZS + BLK, 0), -EINVAL);
	ff_dev_stats(f->dev, &after);
	assert_int_equal(after.writes + after.write_errors, before.writes + before.write_errors);
	assert_int_equal(ff_zoneq_write_at(f->dev, 4, &iov, 1, 4 * ZS, 0), BLK);
	assert_int_equal(ff_zoneq_write_at(f->dev, 4, &iov, 1, 4 * ZS + BLK, FF_IO_DSYNC), BLK);
	/* conventional zones: write in place anywhere, no append */
	assert_int_equal(ff_zoneq_write_at(f->dev, 0, &iov, 1, 5 * BLK, 0), BLK);
	assert_int_equal(ff_zoneq_append(f->dev, 0, &iov, 1, 0, NULL), -EINVAL);
	free(b);
}

static void test_zoneq_full_zone_and_ops(void **state)
{
	struct fx *f = *state;
	void *b = tu_alloc(1 << 20);
	struct iovec iov = {.iov_base = b, .iov_len = 1 << 20};
	uint64_t off;

	for (int i = 0; i < 8; i++)
		assert_int_equal(ff_zoneq_append(f->dev, 5, &iov, 1, 0, &off), 1 << 20);
	iov.iov_len = BLK;
	assert_int_equal(ff_zoneq_append(f->dev, 5, &iov, 1, 0, &off), -ENOSPC);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 5, FF_ZOP_RESET), 0);
	assert_int_equal(ff_zoneq_wp(f->dev, 5), 5 * ZS);
	assert_int_equal(ff_zoneq_append(f->dev, 5, &iov, 1, 0, &off), BLK);
	assert_int_equal(off, 5 * ZS);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 5, FF_ZOP_FINISH), 0);
	assert_int_equal(ff_zoneq_wp(f->dev, 5), 6 * ZS);
	assert_int_equal(ff_zoneq_append(f->dev, 5, &iov, 1, 0, &off), -ENOSPC);
	assert_int_equal(ff_zoneq_drain(f->dev, 5), 0);
	assert_int_equal(ff_zoneq_resync(f->dev, 5), 0);
	free(b);
}

/*
 * Invariant 1 in the device layer: the public write refuses a sequential
 * zone, even at its write pointer, before any I/O; a batch likewise. Only
 * the zone queue reaches the zone.
 */
static void test_zoneq_dev_write_refuses_seq(void **state)
{
	struct fx *f = *state;
	void *b = tu_alloc(2 * BLK);
	struct iovec iov = {.iov_base = b, .iov_len = BLK};
	struct iovec iov2 = {.iov_base = b, .iov_len = 2 * BLK};
	struct ff_dev_stats before, after;
	struct ff_io ios[2] = {
		{.iov = &iov, .iovcnt = 1, .off = 2 * ZS, .write = true},
		{.iov = &iov, .iovcnt = 1, .off = BLK, .write = true},
	};
	struct ff_zone z;

	memset(b, 0x5a, 2 * BLK);
	ff_dev_stats(f->dev, &before);
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 2 * ZS, 0), -EINVAL);
	assert_int_equal(ff_dev_write(f->dev, &iov, 1, 2 * ZS, FF_IO_DSYNC), -EINVAL);
	/* a range from conventional zone 0 into sequential zone 1 */
	assert_int_equal(ff_dev_write(f->dev, &iov2, 1, ZS - BLK, 0), -EINVAL);
	assert_int_equal(ff_dev_submit_batch(f->dev, ios, 2), 0);
	assert_int_equal(ios[0].res, -EINVAL);
	assert_int_equal(ios[1].res, BLK); /* conventional: in place */
	ff_dev_stats(f->dev, &after);
	assert_int_equal(after.writes, before.writes + 1);
	assert_int_equal(after.write_errors, before.write_errors);
	assert_int_equal(ff_dev_report(f->dev, 2, 1, &z), 1);
	assert_int_equal(z.wp, 2 * ZS);
	assert_int_equal(z.cond, FF_ZC_EMPTY);
	/* the zone queue does reach it */
	assert_int_equal(ff_zoneq_write_at(f->dev, 2, &iov, 1, 2 * ZS, 0), BLK);
	assert_int_equal(ff_zoneq_wp(f->dev, 2), 2 * ZS + BLK);
	free(b);
}

/*
 * -Wl,--wrap (tests/unit/meson.build) at the edges zoneq.c calls: each
 * thread counts the mutexes it holds; a REPORT ZONES (ff_dev_report) issued
 * while the calling thread holds one is counted; and a thread given a role
 * says when it goes to sleep on a condition variable.
 */
void __real_ff_mutex_lock(struct ff_mutex *mu);
bool __real_ff_mutex_trylock(struct ff_mutex *mu);
void __real_ff_mutex_unlock(struct ff_mutex *mu);
void __real_ff_cond_wait(pthread_cond_t *cv, struct ff_mutex *mu);
int __real_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);
void __wrap_ff_mutex_lock(struct ff_mutex *mu);
bool __wrap_ff_mutex_trylock(struct ff_mutex *mu);
void __wrap_ff_mutex_unlock(struct ff_mutex *mu);
void __wrap_ff_cond_wait(pthread_cond_t *cv, struct ff_mutex *mu);
int __wrap_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);

static _Thread_local int locks_held;
static _Thread_local int role; /* 0 none, else index into sleeping[] */
static _Atomic int reports, reports_locked;
static _Atomic bool sleeping[3];

void __wrap_ff_mutex_lock(struct ff_mutex *mu)
{
	__real_ff_mutex_lock(mu);
	locks_held++;
}

bool __wrap_ff_mutex_trylock(struct ff_mutex *mu)
{
	bool got = __real_ff_mutex_trylock(mu);

	locks_held += got;
	return got;
}

void __wrap_ff_mutex_unlock(struct ff_mutex *mu)
{
	locks_held--;
	__real_ff_mutex_unlock(mu);
}

void __wrap_ff_cond_wait(pthread_cond_t *cv, struct ff_mutex *mu)
{
	if (role)
		atomic_store(&sleeping[role], true);
	__real_ff_cond_wait(cv, mu);
}

int __wrap_ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	atomic_fetch_add(&reports, 1);
	if (locks_held)
		atomic_fetch_add(&reports_locked, 1);
	return __real_ff_dev_report(dev, first, n, out);
}

/* REPORT ZONES may sleep on the device: never under a zone lock. */
static void test_zoneq_report_without_zone_lock(void **state)
{
	struct fx *f = *state;
	struct one ones[3];

	atomic_store(&reports, 0);
	atomic_store(&reports_locked, 0);
	assert_int_equal(ff_zoneq_resync(f->dev, 2), 0);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 2, FF_ZOP_FINISH), 0);
	assert_int_equal(ff_zoneq_zone_op(f->dev, 2, FF_ZOP_RESET), 0);
	/* and the resync after a failed write */
	atomic_store(&hook_calls, 0);
	atomic_store(&hook_fail_at, 0);
	ff_dev_fault_hook = slow_hook;
	run_contended(f, 3, ones, 3);
	ff_dev_fault_hook = NULL;
	assert_int_equal(ones[0].res, -EIO);
	assert_int_equal(atomic_load(&reports), 4);
	assert_int_equal(atomic_load(&reports_locked), 0);
}

static void wait_sleeping(int r)
{
	while (!atomic_load(&sleeping[r]))
		sched_yield();
}

static void *op_fn(void *arg)
{
	struct fx *f = arg;

	role = 1;
	return (void *)(intptr_t)ff_zoneq_zone_op(f->dev, 2, FF_ZOP_RESET);
}

static void *late_writer_fn(void *arg)
{
	role = 2;
	return one_fn(arg);
}

/*
 * A zone op waiting for the queue to empty is not overtaken by writers that
 * come after it: with a write in flight, a reset waiting, and then one more
 * append, the append lands after the reset, at the zone start. (A writer
 * joining the queue behind the in-flight write would keep the op waiting as
 * long as writers keep coming.)
 */
static void test_zoneq_op_not_starved_by_writers(void **state)
{
	struct fx *f = *state;
	struct one first = {.f = f, .zone = 2, .seed = 1}, late = {.f = f, .zone = 2, .seed = 2};
	pthread_t t1, top, t2;
	void *opres;

	atomic_store(&hook_calls, 0);
	atomic_store(&hook_fail_at, -1);
	atomic_store(&hook_release, false);
	atomic_store(&sleeping[1], false);
	atomic_store(&sleeping[2], false);
	ff_dev_fault_hook = slow_hook;
	assert_int_equal(pthread_create(&t1, NULL, one_fn, &first), 0);
	while (atomic_load(&hook_calls) == 0)
		sched_yield(); /* the first append is in flight, held by the hook */
	assert_int_equal(pthread_create(&top, NULL, op_fn, f), 0);
	wait_sleeping(1); /* the reset waits for the queue */
	assert_int_equal(pthread_create(&t2, NULL, late_writer_fn, &late), 0);
	wait_sleeping(2); /* the late append waits too, behind or in the queue */
	atomic_store(&hook_release, true);
	pthread_join(t1, NULL);
	pthread_join(top, &opres);
	pthread_join(t2, NULL);
	ff_dev_fault_hook = NULL;
	assert_int_equal(first.res, BLK);
	assert_int_equal(first.off, 2 * ZS);
	assert_int_equal((intptr_t)opres, 0);
	assert_int_equal(late.res, BLK);
	assert_int_equal(late.off, 2 * ZS);
	assert_int_equal(ff_zoneq_wp(f->dev, 2), 2 * ZS + BLK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zoneq_many_threads_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_merges_under_contention, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_error_fails_dependants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_write_at_wrong_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_full_zone_and_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_dev_write_refuses_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_report_without_zone_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zoneq_op_not_starved_by_writers, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
