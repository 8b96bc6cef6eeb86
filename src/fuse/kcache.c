// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel page cache in front of foliofs's cache: by default for the
 * read-only opens of files whose size never moves (conventional zone
 * files), with -o kernel_cache for every open but a sequential file's
 * writable ones (no FOPEN_DIRECT_IO), so a hot read costs no FUSE round trip
 * (main.c's open_mode decides; with -o direct_io or -s, and on the posix
 * format without the option, every open is direct_io and nothing here
 * runs). foliofs's cache stays the authority:
 * the kernel page cache only ever holds bytes it read from the daemon or
 * wrote through it.
 *
 * Bytes that change without passing through the kernel page cache (a write
 * on a direct_io open, a truncate, a zone reset or finish, a failed write
 * that moved the size back to the write pointer) are invalidated in the
 * kernel with fuse_lowlevel_notify_inval_inode, after the daemon's cache has
 * them and before the reply. The kernel locks a page while its READ is in
 * flight and the invalidation waits for that lock, so a read that raced the
 * change cannot leave the old bytes behind.
 *
 * An invalidation costs a system call, so it is only sent for a node that
 * has a page-cache open now (count > 0). A change while it has none marks
 * the node stale, and its next page-cache open is answered without
 * FOPEN_KEEP_CACHE: the kernel then drops all of the node's pages at that
 * open. One mutex orders the two: a change sees the open's count, or the
 * open sees the change's mark. A writable shared mapping holds its open
 * until munmap, so its pages are covered too.
 *
 * The invalidation can wait for a READ of the same page, served by another
 * worker: a single-threaded daemon (-s) therefore keeps every open
 * direct_io.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include "foliofs/util.h"
#include "internal.h"

/* one node's page-cache opens; every field guarded by kc.lock */
struct kc_node {
	uint64_t node;	/* 0: free slot (FUSE never uses node 0) */
	unsigned opens; /* page-cache opens now */
	bool stale;	/* changed while opens was 0 */
};

static struct {
	struct fuse_session *se; /* set before the session runs */
	bool on;		 /* set before the session runs */
	struct ff_mutex lock;
	struct kc_node *tab; /* guarded by lock; open addressing, never shrinks */
	size_t cap, used;    /* guarded by lock; cap a power of two or 0 */
} kc;

void ff_kcache_start(struct fuse_session *se, bool on)
{
	ff_mutex_init(&kc.lock);
	kc.se = se;
	kc.on = on;
}

bool ff_kcache_on(void)
{
	return kc.on;
}

static size_t slot_of(uint64_t node, size_t cap)
{
	return (size_t)(node * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

/* node's entry, or NULL. The caller must hold kc.lock. */
static struct kc_node *find_locked(uint64_t node)
{
	ff_assert_held(&kc.lock);
	if (!kc.cap)
		return NULL;
	for (size_t i = slot_of(node, kc.cap);; i = (i + 1) & (kc.cap - 1)) {
		if (kc.tab[i].node == node)
			return &kc.tab[i];
		if (!kc.tab[i].node)
			return NULL;
	}
}

/* node's entry, made if missing; NULL without memory. The caller must hold kc.lock. */
static struct kc_node *get_locked(uint64_t node)
{
	struct kc_node *e = find_locked(node);
	size_t i;

	ff_assert_held(&kc.lock);
	if (e)
		return e;
	if (2 * (kc.used + 1) > kc.cap) {
		size_t ncap = kc.cap ? 2 * kc.cap : 64;
		struct kc_node *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return NULL;
		for (size_t j = 0; j < kc.cap; j++) {
			if (!kc.tab[j].node)
				continue;
			for (i = slot_of(kc.tab[j].node, ncap); nt[i].node;
			     i = (i + 1) & (ncap - 1))
				;
			nt[i] = kc.tab[j];
		}
		free(kc.tab);
		kc.tab = nt;
		kc.cap = ncap;
	}
	for (i = slot_of(node, kc.cap); kc.tab[i].node; i = (i + 1) & (kc.cap - 1))
		;
	kc.tab[i] = (struct kc_node){.node = node};
	kc.used++;
	return &kc.tab[i];
}

int ff_kcache_open(uint64_t node, bool *keep)
{
	struct kc_node *e;
	int ret = -ENOMEM;

	ff_mutex_lock(&kc.lock);
	e = get_locked(node);
	if (e) {
		*keep = !e->stale;
		e->stale = false;
		e->opens++;
		ret = 0;
	}
	ff_mutex_unlock(&kc.lock);
	return ret;
}

void ff_kcache_release(uint64_t node)
{
	struct kc_node *e;

	ff_mutex_lock(&kc.lock);
	e = find_locked(node);
	if (e && e->opens)
		e->opens--;
	ff_mutex_unlock(&kc.lock);
}

void ff_kcache_changed(uint64_t node, uint64_t off, uint64_t len)
{
	struct kc_node *e;
	bool send = false;
	int ret;

	if (!kc.on)
		return;
	ff_mutex_lock(&kc.lock);
	e = find_locked(node);
	/* no entry: no page-cache open since the mount, so no pages */
	if (e && e->opens)
		send = true;
	else if (e)
		e->stale = true;
	ff_mutex_unlock(&kc.lock);
	if (!send)
		return;
	ret = fuse_lowlevel_notify_inval_inode(kc.se, (fuse_ino_t)node, (off_t)off, (off_t)len);
	/* ENOENT: the kernel has forgotten the inode, and its pages with it */
	if (ret && ret != -ENOENT)
		ff_warn("invalidating the kernel's cache of node %llu failed: %d",
			(unsigned long long)node, ret);
}
