/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the unit test programs: scratch images and buffers. */
#ifndef FOLIOFS_TESTUTIL_H
#define FOLIOFS_TESTUTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A sparse image file of size bytes under /var/tmp; path written to buf. */
static inline int tu_make_image(char *buf, size_t buflen, const char *tag, unsigned long long size)
{
	int fd;

	if (!buf || !buflen)
		return -1; /* also tells GCC (ASan builds, -O2) buf is not NULL */
	snprintf(buf, buflen, "/var/tmp/foliofs-test-%s-%d.img", tag, (int)getpid());
	fd = open(buf, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static inline void *tu_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len ? len : 4096))
		return NULL;
	memset(p, 0, len);
	return p;
}

/* Fill with a pattern derived from seed so any block can be checked later. */
static inline void tu_fill(void *buf, size_t len, unsigned long long seed)
{
	unsigned long long x = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

#endif
