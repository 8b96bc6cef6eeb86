/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util: the bottom layer. Checksums, logging, a mutex that knows its owner
 * (so lock preconditions can be asserted), and small helpers. Depends on
 * nothing above it.
 */
#ifndef FOLIOFS_UTIL_H
#define FOLIOFS_UTIL_H

#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* crc32c (Castagnoli), seed 0 for a fresh checksum; chainable. */
uint32_t ff_crc32c(uint32_t crc, const void *buf, size_t len);
struct iovec;
/* ff_crc32c over the bytes of iov[0..iovcnt), in order. */
uint32_t ff_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt);
/*
 * The kernel's crc32_le(seed, buf, len): reflected IEEE 802.3 polynomial, no
 * pre- or post-inversion of its own (the caller passes ~0 as zonefs does).
 */
uint32_t ff_crc32_le(uint32_t seed, const void *buf, size_t len);

/*
 * memcpy for a large copy into memory the CPU will not read soon (a folio
 * written through to the device): on x86-64 non-temporal stores, which do
 * not read the destination's cache lines first; memcpy elsewhere.
 */
void ff_copy_stream(void *dst, const void *src, size_t n);

enum ff_log_level { FF_LOG_ERR, FF_LOG_WARN, FF_LOG_INFO, FF_LOG_DEBUG };
void ff_log_set_level(enum ff_log_level lvl);
void ff_log(enum ff_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ff_err(...)   ff_log(FF_LOG_ERR, __VA_ARGS__)
#define ff_warn(...)  ff_log(FF_LOG_WARN, __VA_ARGS__)
#define ff_info(...)  ff_log(FF_LOG_INFO, __VA_ARGS__)
#define ff_debug(...) ff_log(FF_LOG_DEBUG, __VA_ARGS__)
/*
 * Whether this process (or the one it was forked from) has not yet said
 * notice what of device path: true the first time, and remembered. A
 * mount's check and the daemon it forks, or fsck's lock and its open,
 * each open a device; a notice about the device is for the user once.
 */
bool ff_first_notice(const char *what, const char *path);
/* Whether the n bytes at p are all zero. */
bool ff_all_zero(const void *p, size_t n);

/* A mutex that records its owner so that ff_assert_held() can check it. */
struct ff_mutex {
	pthread_mutex_t m;
	_Atomic(pthread_t) owner;
};
void ff_mutex_init(struct ff_mutex *mu);
void ff_mutex_destroy(struct ff_mutex *mu);
void ff_mutex_lock(struct ff_mutex *mu);
bool ff_mutex_trylock(struct ff_mutex *mu);
void ff_mutex_unlock(struct ff_mutex *mu);
bool ff_mutex_held(struct ff_mutex *mu);
/* Wait on cv, releasing and re-taking mu; keeps the owner record right. */
void ff_cond_wait(pthread_cond_t *cv, struct ff_mutex *mu);
/* The CLOCK_REALTIME time ms milliseconds from now: a deadline for ff_cond_timedwait. */
struct timespec ff_deadline_ms(long ms);
/* ff_cond_wait until the deadline: ETIMEDOUT once it has passed, else 0. */
int ff_cond_timedwait(pthread_cond_t *cv, struct ff_mutex *mu, const struct timespec *deadline);

/* Logs once per call site and is meant to be followed by return -EIO. */
#define ff_assert_held(mu)                                                                      \
	do {                                                                                    \
		if (!ff_mutex_held(mu))                                                         \
			ff_log(FF_LOG_ERR, "%s:%d: lock %s not held", __FILE__, __LINE__, #mu); \
	} while (0)

/* Parse "4096", "64k", "256M", "2G" (binary units). Returns 0 or -EINVAL. */
int ff_parse_size(const char *s, uint64_t *out);

static inline uint64_t ff_round_down(uint64_t v, uint64_t a)
{
	return v - v % a;
}
static inline uint64_t ff_round_up(uint64_t v, uint64_t a)
{
	return ff_round_down(v + a - 1, a);
}
static inline bool ff_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}
uint64_t ff_now_ns(void);

#endif
