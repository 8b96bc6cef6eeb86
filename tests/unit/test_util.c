// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of src/util: checksums against published check values, sizes, locks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <cmocka.h>
#include "foliofs/util.h"

static void test_crc32c_check_value(void **state)
{
	(void)state;
	/* the standard check value of CRC-32C over "123456789" */
	assert_int_equal(ff_crc32c(0, "123456789", 9), 0xe3069283u);
	/* chaining gives the same answer as one call */
	assert_int_equal(ff_crc32c(ff_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

/* a bitwise reference, to check the fast paths at every length and alignment */
static uint32_t crc32c_ref(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static void test_crc32c_lengths_and_alignments(void **state)
{
	static unsigned char buf[4096 + 16];
	uint32_t seed = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
	for (size_t a = 0; a < 9; a++)
		for (size_t n = 0; n < 80; n++)
			assert_int_equal(ff_crc32c(0x1234u, buf + a, n),
					 crc32c_ref(0x1234u, buf + a, n));
	assert_int_equal(ff_crc32c(0, buf + 3, 4096), crc32c_ref(0, buf + 3, 4096));
	/* chaining across an odd split matches one call */
	assert_int_equal(ff_crc32c(ff_crc32c(0, buf, 4093), buf + 4093, 7),
			 ff_crc32c(0, buf, 4100));
}

/* Long buffers go through three interleaved lanes joined by a shift: every
 * length around the lane multiples, at every alignment, and 1 MiB. */
/* ff_crc32c_iov equals ff_crc32c over the same bytes in one piece, empty pieces included */
static void test_crc32c_iov(void **state)
{
	static const char text[] = "the quick brown fox jumps over the lazy dog";
	struct iovec iov[4] = {{(void *)text, 9},
			       {(void *)(text + 9), 0},
			       {(void *)(text + 9), 20},
			       {(void *)(text + 29), sizeof(text) - 29}};

	(void)state;
	assert_int_equal(ff_crc32c_iov(7, iov, 4), ff_crc32c(7, text, sizeof(text)));
	assert_int_equal(ff_crc32c_iov(7, iov, 0), 7);
}

static void test_crc32c_lanes(void **state)
{
	size_t big = (1 << 20) + 77;
	unsigned char *buf = malloc(big + 8);
	uint32_t seed = 7;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < big + 8; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
	for (size_t a = 0; a < 8; a += 3)
		for (size_t m = 1; m <= 7; m++)
			for (size_t n = m * 3072 - 9; n <= m * 3072 + 9; n++)
				assert_int_equal(ff_crc32c(0xdeadbeefu, buf + a, n),
						 crc32c_ref(0xdeadbeefu, buf + a, n));
	for (size_t a = 0; a < 8; a++)
		assert_int_equal(ff_crc32c(0, buf + a, big), crc32c_ref(0, buf + a, big));
	/* all-zero and all-one data, where a wrong shift table shows at once */
	memset(buf, 0, 8192);
	assert_int_equal(ff_crc32c(0, buf, 8192), crc32c_ref(0, buf, 8192));
	memset(buf, 0xff, 8192);
	assert_int_equal(ff_crc32c(0x1u, buf, 8192), crc32c_ref(0x1u, buf, 8192));
	free(buf);
}

/*
 * ff_copy_stream copies exactly n bytes whatever the alignment of either side
 * and the length (below, at and above its streaming threshold), and writes
 * nothing outside the destination.
 */
static void test_copy_stream(void **state)
{
	const size_t cap = (1 << 20) + 256;
	unsigned char *src = malloc(cap), *dst = malloc(cap + 64), *want = malloc(cap + 64);
	static const size_t lens[] = {0,    1,	  15,	16,   63,   64,	   4095,
				      4096, 4097, 4111, 4112, 4160, 65535, 1 << 20};
	unsigned x = 7;

	(void)state;
	for (size_t i = 0; i < cap; i++) {
		x = x * 1103515245u + 12345u;
		src[i] = (unsigned char)(x >> 16);
	}
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (size_t so = 0; so < 3; so++)
			for (size_t dof = 0; dof < 40; dof += 13) {
				size_t n = lens[l];

				memset(dst, 0xa5, cap + 64);
				memset(want, 0xa5, cap + 64);
				memcpy(want + dof, src + so, n);
				ff_copy_stream(dst + dof, src + so, n);
				assert_memory_equal(dst, want, cap + 64);
			}
	free(src);
	free(dst);
	free(want);
}

static void test_crc32_le_check_value(void **state)
{
	(void)state;
	/* CRC-32 (IEEE) of "123456789" is 0xcbf43926 = ~crc32_le(~0, ...) */
	assert_int_equal(~ff_crc32_le(~0u, "123456789", 9), 0xcbf43926u);
}

static void test_parse_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(ff_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(ff_parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(ff_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ull << 20);
	assert_int_equal(ff_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(ff_parse_size("", &v), -EINVAL);
	assert_int_equal(ff_parse_size("-1", &v), -EINVAL);
	assert_int_equal(ff_parse_size("12q", &v), -EINVAL);
	assert_int_equal(ff_parse_size("99999999999T", &v), -EINVAL);
}

static void test_mutex_held(void **state)
{
	struct ff_mutex mu;

	(void)state;
	ff_mutex_init(&mu);
	assert_false(ff_mutex_held(&mu));
	ff_mutex_lock(&mu);
	assert_true(ff_mutex_held(&mu));
	ff_mutex_unlock(&mu);
	assert_false(ff_mutex_held(&mu));
	assert_true(ff_mutex_trylock(&mu));
	assert_true(ff_mutex_held(&mu));
	ff_mutex_unlock(&mu);
	ff_mutex_destroy(&mu);
}

static void test_round(void **state)
{
	(void)state;
	assert_int_equal(ff_round_up(4097, 4096), 8192);
	assert_int_equal(ff_round_down(4097, 4096), 4096);
	assert_true(ff_is_pow2(4096));
	assert_false(ff_is_pow2(0));
	assert_false(ff_is_pow2(12));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_crc32c_lengths_and_alignments),
		cmocka_unit_test(test_crc32c_iov),
		cmocka_unit_test(test_crc32c_lanes),
		cmocka_unit_test(test_copy_stream),
		cmocka_unit_test(test_crc32_le_check_value),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_mutex_held),
		cmocka_unit_test(test_round),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
