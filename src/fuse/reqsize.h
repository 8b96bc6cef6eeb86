/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pages a FUSE request may span, shared by the daemon (main.c) and the
 * bench's null filesystem, which must ask for the same request size.
 *
 * The kernel caps max_pages at its max_pages_limit sysctl. At its default
 * of 256 max_write (one page less, main.c says why) is 1020 KiB and a 1 MiB
 * sync write arrives as two requests, each made durable on its own: two
 * device flushes where one would do. The installed sysctl.d file raises the
 * limit to 257 (Linux 6.13 and later have the sysctl; older kernels allow
 * 256 pages, no file).
 */
#ifndef FOLIOFS_FUSE_REQSIZE_H
#define FOLIOFS_FUSE_REQSIZE_H

#include <stdio.h>

#define FF_REQ_PAGE_SZ 4096u
/* the kernel's limit on a request's pages without /proc/sys/fs/fuse/max_pages_limit */
#define FF_REQ_DEFAULT_PAGES 256u
/* pages a request may span so that max_write (one page less) is 1 MiB */
#define FF_REQ_WANT_PAGES ((1u << 20) / FF_REQ_PAGE_SZ + 1)

/* The kernel's max_pages_limit, capped at FF_REQ_WANT_PAGES. */
static inline unsigned ff_req_max_pages(void)
{
	FILE *f = fopen("/proc/sys/fs/fuse/max_pages_limit", "r");
	unsigned v = FF_REQ_DEFAULT_PAGES;

	if (f) {
		if (fscanf(f, "%u", &v) != 1 || v < 2)
			v = FF_REQ_DEFAULT_PAGES;
		fclose(f);
	}
	return v < FF_REQ_WANT_PAGES ? v : FF_REQ_WANT_PAGES;
}

#endif
