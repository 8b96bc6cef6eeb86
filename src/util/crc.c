// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * crc32c (Castagnoli) for the posix format's records and the emulated-zone
 * state, and the kernel's crc32_le for the zonefs superblock.
 *
 * The emulated zoned device checksums every block appended to a sequential
 * zone, and the posix format's data headers carry their data's crc32c, so
 * crc32c is on the data path: on x86-64 with SSE4.2 it uses the crc32
 * instruction (8 bytes a step), elsewhere the byte table.
 *
 * One chain of crc32 instructions runs at the instruction's latency (3
 * cycles for 8 bytes), a third of its throughput. Buffers of at least three
 * lanes are therefore cut into three lanes of CRC_LANE bytes whose crcs are
 * computed interleaved, then joined: the raw crc register is linear in its
 * start value and the data, so crc(s, A|B) = shift(crc(s, A)) ^ crc(0, B),
 * where shift(x) is x run through CRC_LANE zero bytes, a linear map of 32
 * bits kept as four 256-entry tables (one per byte of x).
 */
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
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
#define CRC_LANE 1024

static uint32_t lane_shift[4][256]; /* x through CRC_LANE zero bytes, byte by byte of x */

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_chain(uint32_t crc, const uint8_t *p,
							       size_t len)
{
	uint64_t c;

	for (; len && ((uintptr_t)p & 7); len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	for (c = crc; len >= 8; len -= 8, p += 8)
		c = __builtin_ia32_crc32di(c, load64(p));
	for (crc = (uint32_t)c; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

static uint32_t shift_lane(uint32_t x)
{
	return lane_shift[0][x & 0xff] ^ lane_shift[1][(x >> 8) & 0xff] ^
	       lane_shift[2][(x >> 16) & 0xff] ^ lane_shift[3][x >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
							       size_t len)
{
	for (; len && ((uintptr_t)p & 7); len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	for (; len >= 3 * CRC_LANE; len -= 3 * CRC_LANE, p += 3 * CRC_LANE) {
		uint64_t a = crc, b = 0, c = 0;

		for (size_t i = 0; i < CRC_LANE; i += 8) {
			a = __builtin_ia32_crc32di(a, load64(p + i));
			b = __builtin_ia32_crc32di(b, load64(p + CRC_LANE + i));
			c = __builtin_ia32_crc32di(c, load64(p + 2 * CRC_LANE + i));
		}
		crc = shift_lane(shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
	}
	return crc32c_chain(crc, p, len);
}

static uint32_t (*crc32c_impl)(uint32_t, const uint8_t *, size_t);
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void impl_init(void)
{
	static const uint8_t zeros[CRC_LANE];

	__builtin_cpu_init();
	if (!__builtin_cpu_supports("sse4.2")) {
		crc32c_impl = crc32c_table;
		return;
	}
	for (int k = 0; k < 4; k++)
		for (uint32_t v = 0; v < 256; v++)
			lane_shift[k][v] = crc32c_chain(v << (8 * k), zeros, CRC_LANE);
	crc32c_impl = crc32c_sse42;
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

uint32_t ff_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++)
		crc = ff_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	return crc;
}

uint32_t ff_crc32_le(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&tab_once, tab_init);
	while (len--)
		crc = tab_le[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}
