// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsck for the zonefs format: checks a whole device read-only, as
 * fsck.foliofs runs it. The zonefs format keeps no metadata beyond the
 * superblock and the zones themselves (a file's size is its zone's write
 * pointer), so the check is: the superblock (magic, crc, features, the
 * reserved area, perm); the zone report (types, conditions, write pointers
 * within the capacity, the geometry the tree is built from); and on an
 * emulated device the pointer records the emulation keeps for each
 * sequential zone (ff_dev_check_records). Nothing is written: there is
 * nothing a repair could restore that the mount does not already do (a
 * pointer whose data did not become durable is rolled back at open), so
 * the repair flags change nothing and every problem stays uncorrected.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "internal.h"

#define REPORT_CHUNK 256u /* zones per REPORT ZONES */

__attribute__((format(printf, 2, 3))) static void problem(struct ff_fsck_report *r, const char *fmt,
							  ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->problems++;
	if (r->problem)
		r->problem(r->arg, msg);
}

__attribute__((format(printf, 2, 3))) static void note(struct ff_fsck_report *r, const char *fmt,
						       ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->notes++;
	if (r->note)
		r->note(r->arg, msg);
}

static void record_cb(void *arg, uint32_t zone, unsigned slot, const char *what)
{
	problem(arg, "zone %u: emulation record slot %u: %s", zone, slot, what);
}

static int check_sb(struct ff_dev *dev, struct ff_fsck_report *r)
{
	struct ff_zonefs_sb sb;
	void *blk = NULL;
	struct iovec iov;
	ssize_t n;
	int ret;

	if (posix_memalign(&blk, 4096, FF_ZONEFS_SB_SIZE))
		return -ENOMEM;
	iov = (struct iovec){blk, FF_ZONEFS_SB_SIZE};
	n = ff_dev_read(dev, &iov, 1, 0);
	if (n != FF_ZONEFS_SB_SIZE) {
		ret = n < 0 ? (int)n : -EIO;
		goto out;
	}
	ret = ff_zonefs_sb_decode(blk, &sb);
	switch (ret) {
	case 0:
		r->format = "zonefs";
		snprintf(r->label, sizeof(r->label), "%.*s", FF_ZONEFS_LABEL_LEN, sb.label);
		break;
	case -EINVAL:
		problem(r,
			"superblock: no zonefs magic at offset 0 (not formatted by mkfs.foliofs?)");
		break;
	case -EBADMSG:
		problem(r, "superblock: checksum mismatch");
		break;
	case -EOPNOTSUPP:
		problem(r, "superblock: unknown features 0x%llx",
			(unsigned long long)(sb.features & ~FF_ZONEFS_F_DEFINED));
		break;
	default:
		problem(r, "superblock: reserved area not zero or permissions out of range");
		break;
	}
	ret = 0;
out:
	free(blk);
	return ret;
}

static const char *cond_name(enum ff_zone_cond c)
{
	static const char *const cn[] = {"not-wp", "empty", "imp-open", "exp-open",
					 "closed", "full",  "rdonly",	"offline"};

	return (unsigned)c < 8 ? cn[c] : "unknown";
}

/* One zone of the report against the device's geometry. */
static void check_zone(const struct ff_dev_info *di, uint32_t i, const struct ff_zone *z,
		       struct ff_fsck_report *r)
{
	uint64_t used = z->wp - z->start;
	bool cnv = i < di->nr_cnv_zones;

	if (z->start != (uint64_t)i * di->zone_size || z->len != di->zone_size) {
		problem(r, "zone %u: at %llu+%llu, not where the device's geometry puts it", i,
			(unsigned long long)z->start, (unsigned long long)z->len);
		r->zones_bad++;
		return;
	}
	if (z->cap > z->len || (!z->cap && z->cond != FF_ZC_OFFLINE)) {
		problem(r, "zone %u: capacity %llu outside its size %llu", i,
			(unsigned long long)z->cap, (unsigned long long)z->len);
		r->zones_bad++;
		return;
	}
	if (cnv != (z->type == FF_ZONE_CNV)) {
		problem(r, "zone %u: %s zone among the %s zones", i,
			z->type == FF_ZONE_CNV ? "conventional" : "sequential",
			cnv ? "conventional" : "sequential");
		r->zones_bad++;
		return;
	}
	if (cnv) {
		if (z->cond != FF_ZC_NOT_WP) {
			problem(r, "zone %u: conventional zone in condition %s", i,
				cond_name(z->cond));
			r->zones_bad++;
		}
		return;
	}
	switch (z->cond) {
	case FF_ZC_EMPTY:
		if (z->wp != z->start)
			problem(r, "zone %u: empty with its write pointer at %llu", i,
				(unsigned long long)used);
		r->zones_empty++;
		return;
	case FF_ZC_IMP_OPEN:
	case FF_ZC_EXP_OPEN:
	case FF_ZC_CLOSED:
		if (z->wp < z->start || used > z->cap || (z->cond == FF_ZC_CLOSED && !used) ||
		    used == z->cap) {
			problem(r, "zone %u: %s with its write pointer at %llu of capacity %llu", i,
				cond_name(z->cond), (unsigned long long)used,
				(unsigned long long)z->cap);
			r->zones_bad++;
			return;
		}
		if (used % di->lblock_size)
			problem(r, "zone %u: write pointer %llu not on a %u-byte block", i,
				(unsigned long long)used, di->lblock_size);
		z->cond == FF_ZC_CLOSED ? r->zones_closed++ : r->zones_open++;
		r->bytes_used += used;
		return;
	case FF_ZC_FULL:
		r->zones_full++;
		r->bytes_used += z->cap;
		return;
	case FF_ZC_RDONLY:
	case FF_ZC_OFFLINE:
		/* the device's own verdict: the mount serves such a file empty and mode 000 */
		note(r, "zone %u is %s: its file cannot be accessed", i, cond_name(z->cond));
		r->zones_bad++;
		return;
	default:
		problem(r, "zone %u: sequential zone in condition %s", i, cond_name(z->cond));
		r->zones_bad++;
		return;
	}
}

static int check_zones(struct ff_dev *dev, struct ff_fsck_report *r)
{
	const struct ff_dev_info *di = ff_dev_info(dev);
	struct ff_zone *zones = calloc(REPORT_CHUNK, sizeof(*zones));
	int ret = 0;

	if (!zones)
		return -ENOMEM;
	if (di->nr_cnv_zones > di->nr_zones || !di->nr_zones)
		problem(r, "device: %u conventional zones of %u", di->nr_cnv_zones, di->nr_zones);
	for (uint32_t first = 0; first < di->nr_zones; first += REPORT_CHUNK) {
		uint32_t n =
			di->nr_zones - first < REPORT_CHUNK ? di->nr_zones - first : REPORT_CHUNK;

		ret = ff_dev_report(dev, first, n, zones);
		if (ret < 0)
			goto out;
		if ((uint32_t)ret != n) {
			problem(r, "zone report: %d zones from zone %u, expected %u", ret, first,
				n);
			ret = 0;
			goto out;
		}
		for (uint32_t k = 0; k < n; k++)
			check_zone(di, first + k, &zones[k], r);
		if (r->progress)
			r->progress(r->arg, first + n, di->nr_zones);
	}
	ret = 0;
out:
	free(zones);
	return ret;
}

int ff_zonefs_fsck(const char *path, unsigned flags, struct ff_fsck_report *r)
{
	struct ff_dev_opts o = {.read_only = true, .quiet_small = true};
	struct ff_dev *dev = NULL;
	uint32_t rolled = 0;
	struct ff_dev_lock lk = {-1, -1};
	char what[160];
	int ret;

	(void)flags; /* read-only whatever the flags: see the top of this file */
	r->format = NULL;
	r->label[0] = 0;
	r->problems = r->notes = r->repaired = 0;
	r->zones_empty = r->zones_open = r->zones_closed = r->zones_full = r->zones_bad = 0;
	r->bytes_used = 0;
	ret = ff_dev_lock_image(path, &lk);
	if (ret)
		return ret; /* in use: a mounted device cannot be checked */
	if (!ff_zonefs_raw_has_magic(path) && ff_dev_signature(path, what, sizeof(what)) == 1) {
		/* another program's filesystem (or partition table): nothing of foliofs to check */
		ff_zonefs_not_ours(path);
		ret = -EMEDIUMTYPE;
		goto out;
	}
	ret = ff_dev_open(path, &o, &dev);
	if (ret == -EUCLEAN || ret == -EPROTONOSUPPORT) {
		/* the emulation's trailer is corrupt (the device layer said how) */
		problem(r, "device: the emulated-zone metadata is corrupt or unsupported");
		ret = 0;
		goto out;
	}
	if (ret == -ENOSPC) {
		/* too small for any zone size it could have: never formatted, or cut short */
		if (ff_zonefs_raw_has_magic(path)) {
			ff_zonefs_resized(path, true);
			ret = -EINVAL;
		} else {
			ff_zonefs_not_ours(path);
			ret = -EMEDIUMTYPE;
		}
	}
	if (ret)
		goto out;
	/* mkfs records the zones of every device that has none of its own */
	if (!ff_dev_info(dev)->zones_recorded && ff_zonefs_raw_has_magic(path)) {
		ret = ff_zonefs_resized(path, false);
		goto out;
	}
	r->nr_zones = ff_dev_info(dev)->nr_zones;
	r->nr_cnv_zones = ff_dev_info(dev)->nr_cnv_zones;
	ret = check_sb(dev, r);
	if (ret)
		goto out;
	ret = check_zones(dev, r);
	if (ret)
		goto out;
	ret = ff_dev_check_records(dev, record_cb, r, &rolled);
	if (ret < 0)
		goto out;
	ret = 0;
	if (rolled)
		note(r,
		     "%u zone(s) had data under their last pointer record that never became durable (a power cut): their write pointer was rolled back",
		     rolled);
out:
	ff_dev_close(dev);
	ff_dev_unlock_image(&lk);
	return ret;
}
