// SPDX-License-Identifier: GPL-2.0-or-later
/* Logging, the owner-tracking mutex, size parsing and the clock. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "foliofs/util.h"

#if defined(__x86_64__)
#include <emmintrin.h>

void ff_copy_stream(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t head = (size_t)(-(uintptr_t)d & 15);

	if (n < 4096 + head) {
		memcpy(d, s, n);
		return;
	}
	memcpy(d, s, head);
	d += head;
	s += head;
	n -= head;
	for (; n >= 64; n -= 64, d += 64, s += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
		__m128i e = _mm_loadu_si128((const __m128i *)(s + 48));

		_mm_stream_si128((__m128i *)d, a);
		_mm_stream_si128((__m128i *)(d + 16), b);
		_mm_stream_si128((__m128i *)(d + 32), c);
		_mm_stream_si128((__m128i *)(d + 48), e);
	}
	/* the streamed stores are weakly ordered: make them visible before any later store */
	_mm_sfence();
	memcpy(d, s, n);
}
#else
void ff_copy_stream(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}
#endif

static _Atomic int log_level = FF_LOG_WARN;

void ff_log_set_level(enum ff_log_level lvl)
{
	atomic_store_explicit(&log_level, (int)lvl, memory_order_relaxed);
}

void ff_log(enum ff_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	fputs("foliofs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

bool ff_first_notice(const char *what, const char *path)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char said[8][320]; /* the last few notices, "what:path" */
	static unsigned next;
	char key[sizeof(said[0])];
	bool first = true;

	snprintf(key, sizeof(key), "%s:%s", what, path);
	pthread_mutex_lock(&lock);
	for (unsigned k = 0; k < 8 && first; k++)
		first = strcmp(said[k], key) != 0;
	if (first)
		snprintf(said[next++ % 8], sizeof(said[0]), "%s", key);
	pthread_mutex_unlock(&lock);
	return first;
}

bool ff_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

void ff_mutex_init(struct ff_mutex *mu)
{
	pthread_mutex_init(&mu->m, NULL);
	atomic_store_explicit(&mu->owner, (pthread_t)0, memory_order_relaxed);
}

void ff_mutex_destroy(struct ff_mutex *mu)
{
	pthread_mutex_destroy(&mu->m);
}

void ff_mutex_lock(struct ff_mutex *mu)
{
	pthread_mutex_lock(&mu->m);
	atomic_store_explicit(&mu->owner, pthread_self(), memory_order_relaxed);
}

bool ff_mutex_trylock(struct ff_mutex *mu)
{
	if (pthread_mutex_trylock(&mu->m))
		return false;
	atomic_store_explicit(&mu->owner, pthread_self(), memory_order_relaxed);
	return true;
}

void ff_mutex_unlock(struct ff_mutex *mu)
{
	atomic_store_explicit(&mu->owner, (pthread_t)0, memory_order_relaxed);
	pthread_mutex_unlock(&mu->m);
}

bool ff_mutex_held(struct ff_mutex *mu)
{
	return pthread_equal(atomic_load_explicit(&mu->owner, memory_order_relaxed),
			     pthread_self());
}

void ff_cond_wait(pthread_cond_t *cv, struct ff_mutex *mu)
{
	atomic_store_explicit(&mu->owner, (pthread_t)0, memory_order_relaxed);
	pthread_cond_wait(cv, &mu->m);
	atomic_store_explicit(&mu->owner, pthread_self(), memory_order_relaxed);
}

struct timespec ff_deadline_ms(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return ts;
}

int ff_cond_timedwait(pthread_cond_t *cv, struct ff_mutex *mu, const struct timespec *deadline)
{
	int r;

	atomic_store_explicit(&mu->owner, (pthread_t)0, memory_order_relaxed);
	r = pthread_cond_timedwait(cv, &mu->m, deadline);
	atomic_store_explicit(&mu->owner, pthread_self(), memory_order_relaxed);
	return r == ETIMEDOUT ? ETIMEDOUT : 0;
}

int ff_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'b' || *end == 'B') && shift)
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t ff_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
