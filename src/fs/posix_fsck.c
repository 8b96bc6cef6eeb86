// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsck for the posix format (docs/posix-format.md), as fsck.foliofs runs it.
 * Three passes, each read-only:
 *
 * 1. Both superblock copies, read raw: magic, version, crc, copy number,
 *    geometry, and that the two agree.
 * 2. A read-only mount (the same code that mounts, so the check sees the
 *    state a mount would build): the newest metadata zone whose header is
 *    valid must hold the checkpoint the mount used; in that zone the record
 *    chain (crc, seq + 1) may end only at a torn tail, not at a damaged
 *    record that valid records follow (those would be committed operations
 *    the mount silently drops). Every other metadata zone's header is valid
 *    or blank.
 * 3. The rebuilt state: extents (block aligned, sorted and disjoint in each
 *    file, within one data zone, below its written part, disjoint across
 *    files), each zone's valid-block count against its extents (and the
 *    checkpoint's ZONE records' counts when nothing was written after it),
 *    link counts,
 *    the directory tree (every entry names an inode, every directory has one
 *    name and its parent, everything is reachable from the root) and orphans
 *    (nlink 0: a crash while a removed file was open).
 *
 * With FF_FSCK_REPAIR or FF_FSCK_PREEN, orphans and wrong valid-block counts
 * (leaked space, or space counted free while in use) are repaired by a
 * read-write mount, which frees orphans as every mount does, with the counts
 * set from the extents, and its unmount, which writes them in a checkpoint;
 * then the image is checked again and what is left counts as uncorrected.
 * Nothing else is ever written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "internal.h"
#include "posix.h"
#include "posix_int.h"

/* What a check found that a read-write mount repairs. */
struct fk {
	struct ff_fsck_report *r;
	uint32_t fixable; /* orphans and wrong valid counts */
	uint32_t other;	  /* everything else */
	/* valid-block counts of the ZONE records of a checkpoint no log follows, or NULL */
	uint64_t *cp_valid;
	uint32_t nr_zones;
	/* the zones' description is lost (check_sb): trailer_fix writes it again */
	bool trailer_bad;
	struct ff_emu_opts trailer_fix;
	/* the superblock copy a repair writes from sb_good (check_sb), or -1 */
	int sb_fix;
	uint8_t sb_good[PX_BLK];
};

__attribute__((format(printf, 3, 4))) static void problem(struct fk *k, bool fixable,
							  const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fixable)
		k->fixable++;
	else
		k->other++;
	if (k->r->problem)
		k->r->problem(k->r->arg, msg);
}

__attribute__((format(printf, 2, 3))) static void note(struct fk *k, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	k->r->notes++;
	if (k->r->note)
		k->r->note(k->r->arg, msg);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Read [off, off+len) (block multiples) into a new aligned buffer; NULL on an error. */
static uint8_t *read_range(struct ff_dev *dev, uint64_t off, uint64_t len)
{
	void *buf = NULL;

	if (!len || posix_memalign(&buf, PX_BLK, len))
		return NULL;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < (1u << 20) ? len - done : (1u << 20);
		struct iovec iov = {(uint8_t *)buf + done, n};

		if (ff_dev_read(dev, &iov, 1, off + done) != (ssize_t)n) {
			free(buf);
			return NULL;
		}
		done += n;
	}
	return buf;
}

/* ---- pass 1: the superblocks ---- */

/*
 * Copy `copy` at b: 0 valid; 1 damaged as a write that went wrong leaves
 * it (zeroed, or the magic with a bad crc); 2 anything else (other data, a
 * well-formed block that says something else). Each problem reported.
 */
static int sb_state(struct fk *k, const uint8_t *b, uint32_t copy)
{
	uint8_t tmp[PX_BLK];
	int st = 0;

	memcpy(tmp, b, PX_BLK);
	memset(tmp + PX_SB_CRC, 0, 4);
	if (ff_all_zero(b, PX_BLK)) {
		problem(k, false, "superblock copy %u: the block is zeroed", copy);
		return 1;
	}
	if (memcmp(b, PX_SB_MAGIC, 8)) {
		problem(k, false,
			"superblock copy %u: no superblock magic: block %u holds other data", copy,
			copy);
		return 2;
	}
	if (ff_crc32c(0, tmp, PX_BLK) != le32(b + PX_SB_CRC)) {
		problem(k, false, "superblock copy %u: bad crc", copy);
		return 1;
	}
	if (le32(b + PX_SB_VERSION) != PX_VERSION) {
		problem(k, false, "superblock copy %u: version %u, expected %u", copy,
			le32(b + PX_SB_VERSION), PX_VERSION);
		st = 2;
	}
	if (le32(b + PX_SB_COPY) != copy) {
		problem(k, false, "superblock copy %u: says it is copy %u", copy,
			le32(b + PX_SB_COPY));
		st = 2;
	}
	if (le32(b + PX_SB_BLKSZ) != PX_BLK || (le64(b + PX_SB_FEATURES) & ~PX_FEAT_KNOWN) ||
	    le32(b + PX_SB_META_COUNT) < 3 || le32(b + PX_SB_META_FIRST) < 1 ||
	    (uint64_t)le32(b + PX_SB_META_FIRST) + le32(b + PX_SB_META_COUNT) >
		    le32(b + PX_SB_NR_ZONES)) {
		problem(k, false, "superblock copy %u: bad geometry or features", copy);
		st = 2;
	}
	return st;
}

static int check_sb(const char *path, struct fk *k)
{
	struct ff_dev_opts dopt = {.read_only = true,
				   .exclusive = true,
				   .quiet_small = true,
				   .formatted_size = px_formatted_size(path)};
	struct ff_dev *dev;
	struct ff_zone z0;
	bool cnv0;
	uint8_t *b;
	int st0, st1;
	int ret = ff_dev_open(path, &dopt, &dev);

	/*
	 * A regular device of the size it had at mkfs whose last block no
	 * longer describes its zones: damage the superblock can undo. Nothing
	 * else can be checked before that.
	 */
	if ((ret == -EUCLEAN || ret == -ENOSPC || (!ret && !ff_dev_info(dev)->zones_recorded)) &&
	    !px_trailer_plan(path, &k->trailer_fix)) {
		struct ff_emu_plan pl;

		if (!ret)
			ff_dev_close(dev);
		if (!ff_dev_plan_emulated(path, &k->trailer_fix, &pl))
			k->r->nr_zones = k->r->nr_cnv_zones = pl.nr_zones;
		problem(k, true,
			"the description of the zones in the device's last 4 KiB is damaged or was overwritten; the superblock describes them");
		k->trailer_bad = true;
		return 0;
	}
	/* a device whose size changed since mkfs is not checked: it is not damaged */
	if (ret == -ENOSPC)
		return px_too_small(path);
	if (ret)
		return ret;
	ret = px_explain_resize(path, ff_dev_info(dev));
	if (ret) {
		ff_dev_close(dev);
		return ret;
	}
	b = read_range(dev, 0, 2 * PX_BLK);
	cnv0 = ff_dev_report(dev, 0, 1, &z0) == 1 && z0.type == FF_ZONE_CNV;
	ff_dev_close(dev);
	if (!b)
		return -EIO;
	st0 = sb_state(k, b, 0);
	st1 = sb_state(k, b + PX_BLK, 1);
	/* mkfs writes the copies alike but for their copy number and crc */
	if (!st0 && !st1 &&
	    (memcmp(b + 16, b + PX_BLK + 16, PX_SB_COPY - 16) ||
	     memcmp(b + PX_SB_COPY + 4, b + PX_BLK + PX_SB_COPY + 4, PX_BLK - PX_SB_COPY - 4)))
		problem(k, false, "the two superblock copies differ");
	if (!st0 || !st1) {
		const uint8_t *s = !st0 ? b : b + PX_BLK;

		k->r->nr_zones = le32(s + PX_SB_NR_ZONES);
		k->r->nr_cnv_zones = le32(s + PX_SB_NR_CNV);
		snprintf(k->r->label, sizeof(k->r->label), "%.*s", FF_ZONEFS_LABEL_LEN,
			 (const char *)s + PX_SB_LABEL);
	}
	/*
	 * One copy damaged as a torn or lost write leaves it, the other valid:
	 * the damaged one can be written again from the other, in place, where
	 * zone 0 is conventional. In a sequential zone 0 that would take a
	 * reset, which would leave no superblock at all until the rewrite.
	 */
	if ((st0 == 1 && !st1) || (!st0 && st1 == 1)) {
		if (cnv0) {
			k->sb_fix = st0 ? 0 : 1;
			memcpy(k->sb_good, st0 ? b + PX_BLK : b, PX_BLK);
			k->other--;
			k->fixable++;
		} else {
			note(k,
			     "superblock copy %d is left as it is: zone 0 is sequential, and rewriting it would take a reset of the zone, leaving no superblock until the rewrite",
			     st0 ? 0 : 1);
		}
	}
	free(b);
	return 0;
}

/* Write copy k->sb_fix from the valid other copy (check_sb), durably. */
static int fix_sb(const char *path, struct fk *k)
{
	struct ff_dev_opts dopt = {
		.exclusive = true, .quiet_small = true, .formatted_size = px_formatted_size(path)};
	struct ff_dev *dev;
	uint8_t *blk = NULL;
	int ret = ff_dev_open(path, &dopt, &dev);

	if (ret)
		return ret;
	if (posix_memalign((void **)&blk, PX_BLK, PX_BLK)) {
		ff_dev_close(dev);
		return -ENOMEM;
	}
	memcpy(blk, k->sb_good, PX_BLK);
	blk[PX_SB_COPY] = (uint8_t)k->sb_fix;
	memset(blk + PX_SB_CRC, 0, 4);
	{
		uint32_t crc = ff_crc32c(0, blk, PX_BLK);
		struct iovec iov = {blk, PX_BLK};

		for (int i = 0; i < 4; i++)
			blk[PX_SB_CRC + i] = (uint8_t)(crc >> (8 * i));
		ret = (int)ff_dev_write(dev, &iov, 1, (uint64_t)k->sb_fix * PX_BLK, 0);
		ret = ret == PX_BLK ? ff_dev_flush(dev) : ret < 0 ? ret : -EIO;
	}
	free(blk);
	ff_dev_close(dev);
	return ret;
}

/* ---- pass 2: the metadata zones ---- */

struct mzone {
	bool valid;
	uint64_t gen, first_seq;
	uint32_t part; /* 0: a checkpoint starts here; k: its k-th next zone */
	uint8_t *buf;  /* the zone's written part */
	uint64_t len;
};

/* A record at off of m whose header, payload and crc are whole; its seq in *seq. */
static bool rec_ok(const struct mzone *m, uint64_t off, uint64_t *seq, uint64_t *next)
{
	uint8_t hdr[PX_REC_HDR];
	uint32_t len;

	if (off + PX_REC_HDR > m->len || !le16(m->buf + off) || le16(m->buf + off) > PX_R_EXTRUN)
		return false;
	len = le32(m->buf + off + 4);
	if (len > m->len - off - PX_REC_HDR)
		return false;
	memcpy(hdr, m->buf + off, PX_REC_HDR);
	memset(hdr + 16, 0, 4);
	if (ff_crc32c(ff_crc32c(0, hdr, PX_REC_HDR), m->buf + off + PX_REC_HDR, len) !=
	    le32(m->buf + off + 16))
		return false;
	*seq = le64(m->buf + off + 8);
	*next = off + ff_round_up(PX_REC_HDR + len, 8);
	return true;
}

/*
 * Whether a valid CP_END at or after from is followed by the next record:
 * the checkpoint was made durable (the flush that ends it) and the log went on.
 */
static bool log_after_cp(const struct mzone *m, uint64_t from)
{
	uint64_t seq, next, s2, n2;

	for (uint64_t at = ff_round_up(from, 8); at + PX_REC_HDR + 8 <= m->len; at += 8) {
		if (le16(m->buf + at) != PX_R_CP_END || le32(m->buf + at + 4) != 8 ||
		    !rec_ok(m, at, &seq, &next))
			continue;
		if (next + PX_REC_HDR <= m->len && !le16(m->buf + next))
			next = ff_round_up(next, PX_BLK);
		return rec_ok(m, next, &s2, &n2) && s2 == seq + 1;
	}
	return false;
}

/* Where a walk of a checkpoint's record chain stands, across its zones. */
struct walk {
	uint64_t expect, nrec, after;
	bool begun, ended;
};

/* Walk one zone's part of a record chain; returns where it ends. */
static uint64_t walk_zone(struct fk *k, const struct mzone *m, struct walk *w)
{
	uint64_t pos = PX_BLK, seq, next;

	while (pos + PX_REC_HDR <= m->len) {
		if (!le16(m->buf + pos)) {
			if (pos % PX_BLK == 0)
				break;
			pos = ff_round_up(pos, PX_BLK);
			continue;
		}
		if (!rec_ok(m, pos, &seq, &next) || seq != w->expect)
			break;
		if (le16(m->buf + pos) == PX_R_CP_BEGIN)
			w->begun = w->nrec == 0;
		if (w->ended)
			w->after++;
		if (le16(m->buf + pos) == PX_R_ZONE && !w->ended && k->cp_valid &&
		    le32(m->buf + pos + 4) >= 32 && le32(m->buf + pos + PX_REC_HDR) < k->nr_zones)
			k->cp_valid[le32(m->buf + pos + PX_REC_HDR)] =
				le64(m->buf + pos + PX_REC_HDR + 24);
		if (le16(m->buf + pos) == PX_R_CP_END && w->begun)
			w->ended = true;
		w->nrec++;
		w->expect += px_rec_seqs(m->buf + pos);
		pos = next;
	}
	return pos;
}

/*
 * The end of the record chain of a metadata zone (the last of a checkpoint
 * longer than a zone): the chain must hold a whole checkpoint, and where it
 * ends no valid record of a later seq may follow (a torn tail is followed by
 * nothing, or by an older use's records). fallback: the chain has the newest
 * header but the mount used an older one; a crash while its checkpoint was
 * written (before the flush that ends it) leaves any subset of it, which is
 * a problem only when the log went on after it. A fallback past a chain that
 * holds its whole checkpoint is damage: the mount refused a record whose crc
 * is valid (apply_rec: it does not fit).
 */
static void check_chain_end(struct fk *k, uint32_t z, const struct mzone *m, uint64_t pos,
			    const struct walk *w, bool fallback)
{
	uint64_t expect = w->expect, seq, next;
	bool ended = w->ended;

	if (fallback && ended) {
		/* a whole chain with its checkpoint, yet the mount did not use it */
		problem(k, false,
			"metadata zone %u: its checkpoint and log are whole but a record in them does not fit the state; the mount uses the older zone's and loses what was committed here",
			z);
		return;
	}
	if (fallback && !log_after_cp(m, pos)) {
		note(k,
		     "metadata zone %u: a checkpoint interrupted by a crash; the mount uses the one before",
		     z);
		return;
	}
	if (!ended)
		problem(k, false, "metadata zone %u: no whole checkpoint (chain ends at seq %llu)",
			z, (unsigned long long)expect);
	if (k->cp_valid && (!ended || w->after)) {
		/* log records changed the counts since: nothing to compare */
		free(k->cp_valid);
		k->cp_valid = NULL;
	}
	/* a valid record of a later seq after the end: something in between is damaged */
	for (uint64_t at = pos; at + PX_REC_HDR <= m->len;
	     at = at == pos ? ff_round_up(pos + 1, PX_BLK) : at + PX_BLK) {
		if (at % 8)
			continue;
		if (rec_ok(m, at, &seq, &next) && seq > expect && seq < expect + (1ull << 32)) {
			problem(k, false,
				"metadata zone %u: record seq %llu at offset %llu is damaged; records up to seq %llu follow it and are lost",
				z, (unsigned long long)expect, (unsigned long long)pos,
				(unsigned long long)seq);
			return;
		}
		/* the record right after a damaged one of plausible length */
		if (at == pos && pos + PX_REC_HDR <= m->len) {
			uint64_t skip = pos + ff_round_up(PX_REC_HDR + le32(m->buf + pos + 4), 8);

			if (le16(m->buf + pos) && skip < m->len && rec_ok(m, skip, &seq, &next) &&
			    seq == expect + 1) {
				problem(k, false,
					"metadata zone %u: record seq %llu at offset %llu is damaged; the records after it are lost",
					z, (unsigned long long)expect, (unsigned long long)pos);
				return;
			}
		}
	}
	if (pos + PX_REC_HDR <= m->len && le16(m->buf + pos))
		note(k,
		     "metadata zone %u: the log ends before seq %llu (what follows is a torn write or an older use's records)",
		     z, (unsigned long long)expect);
}

/*
 * Walk the record chain that starts in metadata zone meta_first + j, into the
 * next zones while its checkpoint goes on there (each read whole in turn),
 * and check where it ends.
 */
static void chain_zone(struct fk *k, struct px_fs *fs, uint32_t j, struct mzone *m, bool fallback)
{
	struct walk w = {.expect = m[j].first_seq};
	uint32_t z, part = 0;
	uint64_t pos;

	for (;;) {
		uint32_t jn = (j + 1) % fs->meta_count;

		z = fs->meta_first + j;
		m[j].buf = read_range(fs->dev, fs->zones[z].start, m[j].len);
		if (!m[j].buf) {
			problem(k, false, "metadata zone %u: read error", z);
			return;
		}
		pos = walk_zone(k, &m[j], &w);
		if (w.ended || !(fs->features & PX_FEAT_MZCHAIN) || part + 1 >= fs->meta_count ||
		    !m[jn].valid || m[jn].gen != m[j].gen || m[jn].part != part + 1 ||
		    m[jn].first_seq != w.expect)
			break;
		free(m[j].buf);
		m[j].buf = NULL;
		j = jn;
		part++;
	}
	check_chain_end(k, z, &m[j], pos, &w, fallback);
	free(m[j].buf);
	m[j].buf = NULL;
}

static void check_meta(struct fk *k, struct px_fs *fs)
{
	struct mzone m[PX_META_MAX] = {0};
	uint32_t newest = UINT32_MAX;

	for (uint32_t j = 0; j < fs->meta_count && j < PX_META_MAX; j++) {
		uint32_t z = fs->meta_first + j;
		struct px_zone *zo = &fs->zones[z];
		uint64_t end = zo->seq ? ff_zoneq_wp(fs->dev, z) : zo->start + zo->cap;
		uint8_t tmp[PX_BLK];

		m[j].len = end > zo->start ? end - zo->start : 0;
		/* the header now; a whole zone only when its chain is checked */
		m[j].buf = m[j].len ? read_range(fs->dev, zo->start, PX_BLK) : NULL;
		if (m[j].len && !m[j].buf) {
			problem(k, false, "metadata zone %u: read error", z);
			continue;
		}
		if (!m[j].buf || !memcmp(m[j].buf, "\0\0\0\0\0\0\0\0", 8))
			continue; /* never used */
		memcpy(tmp, m[j].buf, PX_BLK);
		memset(tmp + PX_MZ_CRC, 0, 4);
		if (memcmp(m[j].buf, PX_MZ_MAGIC, 8) ||
		    le32(m[j].buf + PX_MZ_VERSION) != PX_VERSION ||
		    ff_crc32c(0, tmp, PX_BLK) != le32(m[j].buf + PX_MZ_CRC)) {
			problem(k, false, "metadata zone %u: damaged zone header", z);
			continue;
		}
		if (memcmp(m[j].buf + PX_MZ_UUID, fs->uuid, 16)) {
			note(k, "metadata zone %u: a header of another filesystem (ignored)", z);
			continue;
		}
		m[j].valid = true;
		m[j].gen = le64(m[j].buf + PX_MZ_GEN);
		m[j].first_seq = le64(m[j].buf + PX_MZ_FIRST_SEQ);
		m[j].part = le32(m[j].buf + PX_MZ_PART);
		if (m[j].part && !(fs->features & PX_FEAT_MZCHAIN))
			problem(k, false,
				"metadata zone %u: a checkpoint's part %u on a filesystem without them",
				z, m[j].part);
		if (!m[j].part && (newest == UINT32_MAX || m[j].gen > m[newest].gen))
			newest = j;
	}
	for (uint32_t a = 0; a < fs->meta_count && a < PX_META_MAX; a++)
		for (uint32_t b = a + 1; b < fs->meta_count && b < PX_META_MAX; b++)
			if (m[a].valid && m[b].valid && m[a].gen == m[b].gen &&
			    m[a].part == m[b].part)
				problem(k, false, "metadata zones %u and %u: same generation %llu",
					fs->meta_first + a, fs->meta_first + b,
					(unsigned long long)m[a].gen);
	for (uint32_t j = 0; j < PX_META_MAX; j++) {
		free(m[j].buf);
		m[j].buf = NULL;
	}
	if (newest == UINT32_MAX)
		problem(k, false, "no valid metadata zone header");
	else if (newest != fs->cp_idx)
		/* the mount fell back to an older checkpoint: check_chain_end says why */
		chain_zone(k, fs, newest, m, true);
	if (fs->cp_idx < PX_META_MAX && m[fs->cp_idx].valid) {
		k->nr_zones = fs->nr_zones;
		k->cp_valid = malloc(fs->nr_zones * sizeof(*k->cp_valid));
		for (uint32_t z = 0; k->cp_valid && z < fs->nr_zones; z++)
			k->cp_valid[z] = UINT64_MAX;
		chain_zone(k, fs, fs->cp_idx, m, false);
	}
}

/* ---- pass 3: the state ---- */

struct dext {
	uint64_t dev, len, ino;
};

static int dext_cmp(const void *a, const void *b)
{
	const struct dext *x = a, *y = b;

	return x->dev < y->dev ? -1 : x->dev > y->dev;
}

static size_t zone_idx(const struct px_fs *fs, uint64_t dev)
{
	return (size_t)(dev / fs->zone_size);
}

static bool is_data(const struct px_zone *z)
{
	return z->state != PX_Z_META && z->state != PX_Z_SUPER;
}

/*
 * Each file's extents: aligned, sorted and disjoint in the file, and each
 * mapped one inside a data zone's written part (counted in valid[] and listed
 * in *all for the check across files). A reservation (PX_UNWRITTEN) has no
 * device blocks: its blocks are summed in *resv.
 */
static void check_extents(struct fk *k, struct px_fs *fs, uint64_t *valid, struct dext **all,
			  size_t *nall, size_t *call, uint64_t *resv)
{
	for (size_t h = 0; h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			for (size_t e = 0; e < i->next; e++) {
				struct px_ext *x = &i->ext[e];
				size_t z = zone_idx(fs, x->dev);
				struct px_zone *zo = z < fs->nr_zones ? &fs->zones[z] : NULL;
				uint64_t wend;

				if (!x->len || x->off % PX_BLK || x->len % PX_BLK ||
				    (e && i->ext[e - 1].off + i->ext[e - 1].len > x->off))
					problem(k, false,
						"inode %llu: extent at file offset %llu overlaps or is misaligned",
						(unsigned long long)i->ino,
						(unsigned long long)x->off);
				if (x->dev == PX_NO_DEV)
					continue;
				if (x->dev == PX_UNWRITTEN) {
					*resv += x->len / PX_BLK;
					continue;
				}
				if (!zo || !is_data(zo) || x->dev < zo->start ||
				    x->dev + x->len > zo->start + zo->cap || x->dev % PX_BLK) {
					problem(k, false,
						"inode %llu: extent at file offset %llu lies outside a data zone",
						(unsigned long long)i->ino,
						(unsigned long long)x->off);
					continue;
				}
				wend = zo->state == PX_Z_OPEN	? zo->wp
				       : zo->state == PX_Z_FULL ? zo->start + zo->cap
								: zo->start;
				if (x->dev + x->len > wend)
					problem(k, false,
						"inode %llu: extent at file offset %llu lies beyond zone %zu's written part",
						(unsigned long long)i->ino,
						(unsigned long long)x->off, z);
				valid[z] += x->len / PX_BLK;
				if (*nall == *call) {
					size_t c = *call ? *call * 2 : 256;
					struct dext *n = realloc(*all, c * sizeof(*n));

					if (!n)
						continue;
					*all = n;
					*call = c;
				}
				(*all)[(*nall)++] = (struct dext){x->dev, x->len, i->ino};
			}
}

/* Link counts and the directory tree. Caller holds fs->ns. */
static void check_names_locked(struct fk *k, struct px_fs *fs)
{
	struct px_ns_ent *v, *root;
	struct px_ns_ent **stack = NULL;
	size_t n, nstack = 0;

	if (px_ns_table_locked(fs, &v, &n)) {
		problem(k, false, "the inode table is inconsistent");
		free(v);
		return;
	}
	root = px_ns_find(v, n, PX_ROOT_INO);
	if (!root || !root->i->dir) {
		problem(k, false, "no root directory");
		free(v);
		return;
	}
	for (size_t x = 0; x < n; x++) {
		struct px_inode *d = v[x].i;
		uint64_t subdirs = 0;

		uint64_t cookie = 0;

		switch (d->mode & S_IFMT) {
		case S_IFREG:
		case S_IFDIR:
		case S_IFLNK:
		case S_IFIFO:
		case S_IFSOCK:
		case S_IFCHR:
		case S_IFBLK:
			if (!(d->mode & ~(uint32_t)(S_IFMT | 07777)))
				break;
			/* fall through */
		default:
			problem(k, false, "inode %llu: mode %#o is no file type",
				(unsigned long long)d->ino, d->mode);
		}
		if (S_ISLNK(d->mode) && !d->tlen)
			problem(k, false, "symlink %llu has no target", (unsigned long long)d->ino);
		if (S_ISDIR(d->mode) != (d->dir != NULL)) {
			problem(k, false, "inode %llu: mode and directory data disagree",
				(unsigned long long)d->ino);
			continue;
		}
		if (!d->dir)
			continue;
		for (size_t e = 0; e < d->dir->n; e++) {
			struct px_dent *de = d->dir->ents[e];
			struct px_ns_ent *c;

			if (de->dead)
				continue;
			if (de->cookie <= cookie)
				problem(k, false,
					"directory %llu: entry '%.*s' has readdir cookie %llu, not above the previous entry's %llu",
					(unsigned long long)d->ino, (int)de->nlen, de->name,
					(unsigned long long)de->cookie, (unsigned long long)cookie);
			cookie = de->cookie;
			if (!de->nlen || de->nlen > PX_NAME_MAX ||
			    memchr(de->name, '/', de->nlen) || memchr(de->name, 0, de->nlen) ||
			    (de->nlen <= 2 && !memcmp(de->name, "..", de->nlen))) {
				problem(k, false, "directory %llu: a bad name",
					(unsigned long long)d->ino);
				continue;
			}
			c = px_ns_find(v, n, de->ino);
			if (!c) {
				problem(k, false,
					"directory %llu: entry '%.*s' names inode %llu, which does not exist",
					(unsigned long long)d->ino, (int)de->nlen, de->name,
					(unsigned long long)de->ino);
				continue;
			}
			if (c == root)
				problem(k, false,
					"directory %llu: entry '%.*s' names the root directory (a directory cycle)",
					(unsigned long long)d->ino, (int)de->nlen, de->name);
			c->names++;
			if (c->i->dir) {
				subdirs++;
				if (c->i->dir->parent != d->ino)
					problem(k, false,
						"directory %llu: its parent says %llu, its name is in %llu",
						(unsigned long long)c->i->ino,
						(unsigned long long)c->i->dir->parent,
						(unsigned long long)d->ino);
			}
		}
		if (!d->nlink && d->dir->nlive)
			problem(k, false,
				"directory %llu: removed (link count 0) but it holds %zu entries",
				(unsigned long long)d->ino, d->dir->nlive);
		if (d->nlink && d->nlink != 2 + subdirs)
			problem(k, false,
				"directory %llu: link count %u, it has %llu subdirectories",
				(unsigned long long)d->ino, d->nlink, (unsigned long long)subdirs);
	}
	/* reachability: directories are walked from the root, each at most once */
	stack = malloc(sizeof(*stack) * (n + 1));
	if (stack) {
		stack[nstack++] = root;
		root->reached = true;
	}
	while (nstack) {
		struct px_dir *d = stack[--nstack]->i->dir;

		for (size_t e = 0; e < d->n; e++) {
			struct px_ns_ent *c =
				d->ents[e]->dead ? NULL : px_ns_find(v, n, d->ents[e]->ino);

			if (!c || c->reached)
				continue;
			c->reached = true;
			if (c->i->dir)
				stack[nstack++] = c;
		}
	}
	for (size_t x = 0; stack && x < n; x++) {
		struct px_ns_ent *c = &v[x];

		if (c == root)
			continue;
		if (!c->i->nlink) {
			if (c->names)
				problem(k, false, "inode %llu: link count 0 with %llu names",
					(unsigned long long)c->i->ino,
					(unsigned long long)c->names);
			else if (!c->i->dir || !c->i->dir->nlive)
				problem(k, true,
					"inode %llu: orphan (removed while open; link count 0)",
					(unsigned long long)c->i->ino);
			continue;
		}
		if (c->i->dir ? c->names != 1 : c->names != c->i->nlink)
			problem(k, false, "inode %llu: link count %u, %llu names",
				(unsigned long long)c->i->ino, c->i->nlink,
				(unsigned long long)c->names);
		else if (!c->reached)
			problem(k, false, "inode %llu: not reachable from the root",
				(unsigned long long)c->i->ino);
	}
	free(stack);
	free(v);
}

/* Extents and valid counts. Caller holds fs->ns. */
static void check_space_locked(struct fk *k, struct px_fs *fs)
{
	uint64_t *valid = calloc(fs->nr_zones, sizeof(*valid));
	struct dext *all = NULL;
	size_t nall = 0, call = 0;
	uint64_t resv = 0, live = 0, room = 0;

	ff_assert_held(&fs->ns);
	if (!valid) {
		problem(k, false, "out of memory");
		return;
	}
	/* data rolled forward past a committed cursor moved counts the checkpoint predates */
	for (uint32_t z = 0; k->cp_valid && z < fs->nr_zones; z++)
		if (fs->zones[z].state == PX_Z_OPEN && fs->zones[z].wp != fs->zones[z].cursor) {
			free(k->cp_valid);
			k->cp_valid = NULL;
		}
	check_extents(k, fs, valid, &all, &nall, &call, &resv);
	if (nall) /* no extents: all may be NULL, which qsort must not get */
		qsort(all, nall, sizeof(*all), dext_cmp);
	for (size_t e = 1; e < nall; e++)
		if (all[e - 1].dev + all[e - 1].len > all[e].dev)
			problem(k, false, "inodes %llu and %llu share device blocks at %llu",
				(unsigned long long)all[e - 1].ino, (unsigned long long)all[e].ino,
				(unsigned long long)all[e].dev);
	free(all);
	for (uint32_t z = 0; z < fs->nr_zones; z++) {
		struct px_zone *zo = &fs->zones[z];

		if (!is_data(zo))
			continue;
		if (zo->state == PX_Z_FREE)
			k->r->zones_empty++;
		else if (zo->state == PX_Z_OPEN)
			k->r->zones_open++;
		else
			k->r->zones_full++;
		k->r->bytes_used += valid[z] * PX_BLK;
		live += valid[z];
		room += zo->cap / PX_BLK;
		if (zo->valid != valid[z])
			problem(k, true,
				"zone %u: %llu valid blocks counted, its extents hold %llu%s", z,
				(unsigned long long)zo->valid, (unsigned long long)valid[z],
				zo->valid > valid[z] ? " (leaked space)" : "");
		else if (k->cp_valid && k->cp_valid[z] != UINT64_MAX && k->cp_valid[z] != valid[z])
			problem(k, true,
				"zone %u: the checkpoint says %llu valid blocks, its extents hold %llu%s",
				z, (unsigned long long)k->cp_valid[z], (unsigned long long)valid[z],
				k->cp_valid[z] > valid[z] ? " (leaked space)" : "");
	}
	/* the mount sums the reservations from the same extents: a mismatch is a bug */
	if (fs->resv_blk != resv)
		problem(k, false, "%llu blocks counted reserved, the files' reservations hold %llu",
			(unsigned long long)fs->resv_blk, (unsigned long long)resv);
	if (live + resv > room)
		problem(k, false,
			"live data (%llu blocks) and reservations (%llu blocks) exceed the data zones (%llu blocks)",
			(unsigned long long)live, (unsigned long long)resv,
			(unsigned long long)room);
	free(valid);
}

/* Passes 2 and 3 over a read-only mount. */
static int check_mounted(const char *path, struct fk *k)
{
	struct ff_fs *gfs;
	struct px_fs *fs;
	int ret = ff_posix_mount_fsck(path, &gfs);

	if (ret == -EBUSY)
		return ret;
	if (ret) {
		problem(k, false, "the image does not mount (%s)", strerror(-ret));
		return 0;
	}
	fs = (struct px_fs *)gfs;
	check_meta(k, fs);
	ff_mutex_lock(&fs->ns);
	check_space_locked(k, fs);
	check_names_locked(k, fs);
	ff_mutex_unlock(&fs->ns);
	free(k->cp_valid);
	k->cp_valid = NULL;
	return ff_fmt_posix.unmount(gfs);
}

/* The repair: a read-write mount frees orphans; the valid counts are set from the extents. */
static int repair(const char *path)
{
	struct ff_fs *gfs;
	struct px_fs *fs;
	uint64_t *valid;
	int ret = ff_fmt_posix.mount(path, NULL, &gfs);

	if (ret)
		return ret;
	fs = (struct px_fs *)gfs;
	valid = calloc(fs->nr_zones, sizeof(*valid));
	ff_mutex_lock(&fs->ns);
	for (size_t h = 0; valid && h < fs->icap; h++)
		for (struct px_inode *i = fs->itab[h]; i; i = i->hnext)
			for (size_t e = 0; e < i->next; e++)
				if (i->ext[e].dev != PX_NO_DEV &&
				    zone_idx(fs, i->ext[e].dev) < fs->nr_zones)
					valid[zone_idx(fs, i->ext[e].dev)] +=
						i->ext[e].len / PX_BLK;
	for (uint32_t z = 0; valid && z < fs->nr_zones; z++)
		if (is_data(&fs->zones[z]))
			fs->zones[z].valid = valid[z];
	ff_mutex_unlock(&fs->ns);
	free(valid);
	/* the unmount's checkpoint writes the counts */
	return ff_fmt_posix.unmount(gfs) ?: (valid ? 0 : -ENOMEM);
}

static void reset_counts(struct ff_fsck_report *r)
{
	r->problems = r->notes = r->repaired = 0;
	r->zones_empty = r->zones_open = r->zones_closed = r->zones_full = r->zones_bad = 0;
	r->bytes_used = 0;
}

int ff_posix_fsck(const char *path, unsigned flags, struct ff_fsck_report *r)
{
	struct fk *k = calloc(2, sizeof(*k)), *again = k + 1;
	uint32_t before;
	int ret;

	if (!k)
		return -ENOMEM;
	reset_counts(r);
	r->format = "posix";
	k->r = r;
	k->sb_fix = -1;
	ret = check_sb(path, k);
	if (!ret && !k->trailer_bad)
		ret = check_mounted(path, k);
	if (ret || !k->fixable || (flags & FF_FSCK_READ_ONLY) ||
	    !(flags & (FF_FSCK_REPAIR | FF_FSCK_PREEN)))
		goto out;
	before = k->fixable;
	/* a read-only device: the problems stay, said once, and the check stands */
	if (ff_dev_check_writable(path))
		goto out;
	if (k->trailer_bad) {
		/* the rest is checked (and repaired) once the zones can be found */
		struct ff_dev_lock lk;

		ret = ff_dev_lock_image(path, &lk);
		if (!ret) {
			ret = ff_dev_format_emulated(path, &k->trailer_fix, true);
			ff_dev_unlock_image(&lk);
		}
		if (ret) {
			ff_err("%s: writing the zones' description failed (%s)", path,
			       strerror(-ret));
			ret = 0;
			goto out;
		}
		k->fixable = k->other = 0;
		k->trailer_bad = false;
		k->sb_fix = -1;
		reset_counts(r);
		ret = check_sb(path, k);
		if (!ret)
			ret = check_mounted(path, k);
		if (ret || !k->fixable) {
			r->repaired = 1;
			goto out;
		}
		before += k->fixable;
	}
	/* the superblock first: the repair's mount then reads the copy it would read anyway */
	if (k->sb_fix >= 0) {
		ret = fix_sb(path, k);
		if (ret)
			ff_err("%s: rewriting superblock copy %d failed (%s)", path, k->sb_fix,
			       strerror(-ret));
	}
	if (!ret && k->fixable > (k->sb_fix >= 0)) {
		ret = repair(path);
		if (ret)
			ff_err("%s: the repair's mount failed (%s)", path, strerror(-ret));
	}
	if (ret) {
		ret = 0;
		goto out;
	}
	reset_counts(r);
	again->r = r;
	again->sb_fix = -1;
	ret = check_sb(path, again);
	if (!ret && !again->trailer_bad)
		ret = check_mounted(path, again);
	if (ret)
		goto out;
	r->repaired = before > again->fixable ? before - again->fixable : 0;
	*k = *again;
out:
	r->problems = k->fixable + k->other;
	free(k);
	return ret;
}
