// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-inode folio index: a treap keyed by the folio's file offset, so
 * finding the folio that covers an offset and walking folios in offset order
 * are O(log n) expected. Folios never overlap, so the covering folio is the
 * one with the greatest start not above the offset. The caller holds the
 * inode's lock for every call.
 */
#include "internal.h"

static struct folio *rot_right(struct folio *t)
{
	struct folio *l = t->left;

	t->left = l->right;
	l->right = t;
	return l;
}

static struct folio *rot_left(struct folio *t)
{
	struct folio *r = t->right;

	t->right = r->left;
	r->left = t;
	return r;
}

static struct folio *insert(struct folio *t, struct folio *f)
{
	if (!t)
		return f;
	if (f->off < t->off) {
		t->left = insert(t->left, f);
		if (t->left->prio > t->prio)
			t = rot_right(t);
	} else {
		t->right = insert(t->right, f);
		if (t->right->prio > t->prio)
			t = rot_left(t);
	}
	return t;
}

static struct folio *merge(struct folio *a, struct folio *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = merge(a->right, b);
		return a;
	}
	b->left = merge(a, b->left);
	return b;
}

static struct folio *erase(struct folio *t, struct folio *f)
{
	if (!t)
		return NULL;
	if (t == f)
		return merge(t->left, t->right);
	if (f->off < t->off)
		t->left = erase(t->left, f);
	else
		t->right = erase(t->right, f);
	return t;
}

struct folio *ff_idx_find(struct ff_cinode *ci, uint64_t off)
{
	struct folio *t = ci->root, *best = NULL;

	ff_assert_held(&ci->lock);
	while (t) {
		if (t->off <= off) {
			best = t;
			t = t->right;
		} else {
			t = t->left;
		}
	}
	return best && off < best->off + best->size ? best : NULL;
}

struct folio *ff_idx_ceil(struct ff_cinode *ci, uint64_t off)
{
	struct folio *t = ci->root, *best = NULL;

	ff_assert_held(&ci->lock);
	while (t) {
		if (t->off >= off) {
			best = t;
			t = t->left;
		} else {
			t = t->right;
		}
	}
	return best;
}

void ff_idx_insert(struct ff_cinode *ci, struct folio *f)
{
	static _Atomic uint32_t seed = 2463534242u;
	uint32_t x = atomic_fetch_add_explicit(&seed, 0x9e3779b9u, memory_order_relaxed);

	ff_assert_held(&ci->lock);
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	f->prio = x;
	f->left = f->right = NULL;
	ci->root = insert(ci->root, f);
	ci->nr_folios++;
}

void ff_idx_remove(struct ff_cinode *ci, struct folio *f)
{
	ff_assert_held(&ci->lock);
	ci->root = erase(ci->root, f);
	ci->nr_folios--;
}
