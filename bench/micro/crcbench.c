// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * crc32c throughput: ff_crc32c (three interleaved lanes on SSE4.2) against
 * one chain of crc32 instructions (the baseline, kept here), interleaved in
 * one process, medians over rounds. bench/RESULTS-micro.md has the figures.
 *
 *   crcbench [ROUNDS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "foliofs/util.h"

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t one_chain(uint32_t crc, const uint8_t *p,
							    size_t len)
{
	uint64_t c = ~crc;

	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (crc = (uint32_t)c; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return ~crc;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {4096, 65536, 1 << 20};
	int rounds = argc > 1 ? atoi(argv[1]) : 9;
	uint8_t *b = aligned_alloc(4096, 1 << 20);
	double *base = calloc((size_t)rounds, sizeof(double));
	double *lanes = calloc((size_t)rounds, sizeof(double));
	double *ratio = calloc((size_t)rounds, sizeof(double));
	volatile uint32_t sink = 0;

	if (!b || !base || !lanes || !ratio || rounds < 1)
		return 1;
	for (size_t i = 0; i < (1u << 20); i++)
		b[i] = (uint8_t)(i * 7 + 3);
	if (ff_crc32c(0, b, 1 << 20) != one_chain(0, b, 1 << 20)) {
		fprintf(stderr, "crcbench: the two disagree\n");
		return 1;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], it = (64u << 20) / n;

		for (int r = 0; r < rounds; r++) {
			double t0 = now(), t1, t2;

			for (size_t i = 0; i < it; i++)
				sink ^= one_chain(0, b, n);
			t1 = now();
			for (size_t i = 0; i < it; i++)
				sink ^= ff_crc32c(0, b, n);
			t2 = now();
			base[r] = 64.0 * 1.048576 / 1000 / (t1 - t0);
			lanes[r] = 64.0 * 1.048576 / 1000 / (t2 - t1);
			ratio[r] = (t1 - t0) / (t2 - t1);
		}
		qsort(base, (size_t)rounds, sizeof(double), cmp_d);
		qsort(lanes, (size_t)rounds, sizeof(double), cmp_d);
		qsort(ratio, (size_t)rounds, sizeof(double), cmp_d);
		printf("%7zu B: one chain %.2f GB/s, ff_crc32c %.2f GB/s, ratio %.2f (%.2f-%.2f)\n",
		       n, base[rounds / 2], lanes[rounds / 2], ratio[rounds / 2], ratio[0],
		       ratio[rounds - 1]);
	}
	return 0;
}
#else
int main(void)
{
	puts("crcbench: x86-64 only");
	return 0;
}
#endif
