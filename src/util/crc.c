// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Table-driven crc32c (Castagnoli) for the posix format's records and the
 * emulated-zone state, and the kernel's crc32_le for the zonefs superblock.
 */
#include <pthread.h>
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

uint32_t ff_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&tab_once, tab_init);
	crc = ~crc;
	while (len--)
		crc = tab_c[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t ff_crc32_le(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&tab_once, tab_init);
	while (len--)
		crc = tab_le[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}
