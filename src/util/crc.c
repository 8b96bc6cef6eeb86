// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * crc32c (Castagnoli) for the posix format's records and the emulated-zone
 * state, and the kernel's crc32_le for the zonefs superblock.
 *
 * The emulated zoned device checksums every block appended to a sequential
 * zone, so crc32c is on the data path: on x86-64 with SSE4.2 it uses the
 * crc32 instruction (8 bytes a step), elsewhere the byte table.
 */
#include <pthread.h>
#include <string.h>
#include "foliofs/util.h"

static uint32_t tab_c[256];
static uint32_t tab_le[256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i, l = i;
		for (int k = 0; k < 8; k++) {
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			l = (l & 1) ? (l >> 1) ^ 0xedb88320u : l >> 1;
		}
		tab_c[i] = c;
		tab_le[i] = l;
	}
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
	pthread_once(&tab_once, tab_init);
	while (len--)
		crc = tab_c[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
							       size_t len)
{
	uint64_t c;

	for (; len && ((uintptr_t)p & 7); len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	for (c = crc; len >= 8; len -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (crc = (uint32_t)c; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

static uint32_t (*crc32c_impl)(uint32_t, const uint8_t *, size_t);
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void impl_init(void)
{
	__builtin_cpu_init();
	crc32c_impl = __builtin_cpu_supports("sse4.2") ? crc32c_sse42 : crc32c_table;
}
#endif

uint32_t ff_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	pthread_once(&impl_once, impl_init);
	return ~crc32c_impl(~crc, buf, len);
#else
	return ~crc32c_table(~crc, buf, len);
#endif
}

uint32_t ff_crc32_le(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&tab_once, tab_init);
	while (len--)
		crc = tab_le[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}
