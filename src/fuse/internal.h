// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the files of the FUSE daemon (src/fuse/) share and nobody else sees:
 * the kernel page cache policy of kcache.c, used by main.c's open, release,
 * write and setattr.
 */
#ifndef FOLIOFS_FUSE_INTERNAL_H
#define FOLIOFS_FUSE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;

/*
 * Let the kernel page cache serve some opens (on; main.c's op_open says
 * which), or keep every open direct_io (off). Call once, before the session
 * runs; se receives the invalidations.
 */
void ff_kcache_start(struct fuse_session *se, bool on);
/* Whether the kernel page cache is in use at all. */
bool ff_kcache_on(void);
/*
 * An open of node that the kernel page cache will serve (not direct_io).
 * *keep says whether the kernel may keep the pages it holds of node
 * (FOPEN_KEEP_CACHE): false when the daemon changed node's bytes while no
 * such open existed, so the kernel drops them at this open. -ENOMEM: the
 * open cannot be tracked and must be direct_io.
 */
int ff_kcache_open(uint64_t node, bool *keep);
/* The release of an open for which ff_kcache_open succeeded. */
void ff_kcache_release(uint64_t node);
/*
 * Bytes [off, off + len) of node changed without passing through the kernel
 * page cache (len 0: from off to the end); the kernel's attributes of node
 * are refreshed too, for a size it did not see change. Call after the
 * daemon's cache holds the new bytes and before the reply, so that a read
 * after the reply cannot find the old ones in the kernel.
 */
void ff_kcache_changed(uint64_t node, uint64_t off, uint64_t len);

#endif
