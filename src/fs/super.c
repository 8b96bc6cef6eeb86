// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The zonefs superblock (the kernel's struct zonefs_super, as mkzonefs writes
 * it), its checks, and mkfs. Layout, little-endian, 4096 bytes at offset 0 of
 * zone 0 (fs/zonefs/zonefs.h): magic 0x5a4f4653 at 0, crc32 at 4, label[64]
 * at 8, uuid[16] at 72, features (le64) at 88, uid at 96, gid at 100, perm
 * at 104 (le32), then 3988 reserved bytes that must be zero (the kernel
 * refuses to mount otherwise). The crc is the kernel's:
 * crc32_le(~0, block with s_crc = 0, 4096), no final inversion.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"
#include "internal.h"

#define OFF_MAGIC    0
#define OFF_CRC	     4
#define OFF_LABEL    8
#define OFF_UUID     72
#define OFF_FEATURES 88
#define OFF_UID	     96
#define OFF_GID	     100
#define OFF_PERM     104
#define OFF_RESERVED 108

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

void ff_zonefs_sb_encode(const struct ff_zonefs_sb *sb, void *blk)
{
	uint8_t *p = blk;

	memset(p, 0, FF_ZONEFS_SB_SIZE);
	put_le32(p + OFF_MAGIC, FF_ZONEFS_MAGIC);
	memcpy(p + OFF_LABEL, sb->label, strnlen(sb->label, FF_ZONEFS_LABEL_LEN));
	memcpy(p + OFF_UUID, sb->uuid, FF_ZONEFS_UUID_SIZE);
	put_le64(p + OFF_FEATURES, sb->features);
	put_le32(p + OFF_UID, sb->uid);
	put_le32(p + OFF_GID, sb->gid);
	put_le32(p + OFF_PERM, sb->perm);
	put_le32(p + OFF_CRC, ff_crc32_le(~0u, p, FF_ZONEFS_SB_SIZE));
}

int ff_zonefs_sb_decode(const void *blk, struct ff_zonefs_sb *sb)
{
	uint8_t copy[FF_ZONEFS_SB_SIZE];
	uint32_t crc;

	memcpy(copy, blk, sizeof(copy));
	if (get_le32(copy + OFF_MAGIC) != FF_ZONEFS_MAGIC)
		return -EINVAL;
	crc = get_le32(copy + OFF_CRC);
	put_le32(copy + OFF_CRC, 0);
	if (ff_crc32_le(~0u, copy, sizeof(copy)) != crc)
		return -EBADMSG;
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->label, copy + OFF_LABEL, FF_ZONEFS_LABEL_LEN);
	memcpy(sb->uuid, copy + OFF_UUID, FF_ZONEFS_UUID_SIZE);
	sb->features = get_le64(copy + OFF_FEATURES);
	sb->uid = get_le32(copy + OFF_UID);
	sb->gid = get_le32(copy + OFF_GID);
	sb->perm = get_le32(copy + OFF_PERM);
	if (sb->features & ~FF_ZONEFS_F_DEFINED)
		return -EOPNOTSUPP;
	if (!ff_all_zero(copy + OFF_RESERVED, FF_ZONEFS_SB_SIZE - OFF_RESERVED))
		return -EUCLEAN; /* as the kernel: "Reserved area is being used" */
	if ((sb->features & FF_ZONEFS_F_PERM) && (sb->perm & ~07777u))
		return -EUCLEAN;
	return 0;
}

/* What is on the raw path: 0 nothing, else a short description in what. */
static int probe_existing(const char *path, char *what, size_t len)
{
	uint8_t *buf = malloc(65536);
	struct ff_zonefs_sb sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), found = 0;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	n = pread(fd, buf, 65536, 0);
	if (n >= (ssize_t)FF_ZONEFS_SB_SIZE && ff_zonefs_sb_decode(buf, &sb) != -EINVAL) {
		snprintf(what, len, "a zonefs superblock");
		found = 1;
	} else if (n > 0 && !ff_all_zero(buf, (size_t)n)) {
		snprintf(what, len, "data in its first %zd bytes (a filesystem or other contents)",
			 n);
		found = 1;
	}
	close(fd);
	free(buf);
	if (!found)
		found = ff_dev_signature(path, what, len) == 1;
	if (!found) {
		struct ff_dev *dev;
		/*
		 * Only whether emulated zones are laid over it: a small zone size
		 * keeps a small regular image from being refused (and said to be
		 * too small) at the default one, and one growing with the size
		 * keeps the zones of a large one few (the device layer keeps
		 * state per zone).
		 */
		struct ff_dev_opts o = {.read_only = true, .zone_size = 4096};
		int sfd = open(path, O_RDONLY | O_CLOEXEC);
		off_t size = sfd >= 0 ? lseek(sfd, 0, SEEK_END) : 0;

		if (sfd >= 0)
			close(sfd);
		while (size > 0 && (uint64_t)size / o.zone_size > 65536)
			o.zone_size *= 2;
		if (ff_dev_open(path, &o, &dev) == 0) {
			if (ff_dev_info(dev)->kind == FF_DEV_EMULATED) {
				snprintf(what, len, "emulated zones (foliofs-dev format)");
				found = 1;
			}
			ff_dev_close(dev);
		}
	}
	return found;
}

static int mkfs_locked(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t slen)
{
	struct ff_dev_opts dopt = {0};
	struct ff_zonefs_sb sb = o->sb;
	struct ff_dev *dev = NULL;
	const struct ff_dev_info *di;
	char what[128];
	struct stat st;
	void *blk = NULL;
	struct ff_zone z0;
	bool zoned = false;
	int ret;

	if (stat(path, &st) < 0) {
		ret = -errno;
		ff_err("cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ff_err("%s is neither a block device nor an image file", path);
		return -ENODEV;
	}

	/* what kind is it (a kernel zoned device is detected by the device layer) */
	dopt.read_only = true;
	dopt.zone_size = o->zone_size;
	ret = ff_dev_open(path, &dopt, &dev);
	if (ret && ret != -EUCLEAN && !(ret == -ENOSPC && o->emulate_zoned))
		return ret; /* missing, unreadable, too small: already said */
	if (!ret) {
		zoned = ff_dev_info(dev)->kind == FF_DEV_ZONED;
		ff_dev_close(dev);
		dev = NULL;
	}
	if (zoned && (o->emulate_zoned || o->zone_opts)) {
		ff_err("%s is a zoned block device: its zones are the device's own; drop the zone options",
		       path);
		return -EINVAL;
	}
	if (probe_existing(path, what, sizeof(what)) && !o->force) {
		ff_err("%s already holds %s; nothing was written. Use --force to format it anyway",
		       path, what);
		return -EEXIST;
	}
	if (!zoned) {
		/* regular or emulated: lay the zones (a trailer records the geometry) */
		struct ff_emu_opts eo = {
			.zone_size = o->zone_size,
			.zone_cap = o->zone_cap,
			.nr_cnv = o->emulate_zoned ? o->conv_zones : 0,
			.max_open = o->max_open,
			.max_active = o->max_active,
			.conventional_only = !o->emulate_zoned,
		};
		struct ff_emu_plan pl;

		/* nothing is written before the geometry is known to work */
		ret = ff_dev_plan_emulated(path, &eo, &pl);
		if (ret)
			return ret;
		/* other signatures would still name the device after mkfs (blkid, udev, mount) */
		ret = ff_dev_wipe_signatures(path);
		if (ret) {
			ff_err("%s: erasing the signatures already there failed: %s", path,
			       strerror(-ret));
			return ret;
		}
		ret = ff_dev_format_emulated(path, &eo, true);
		if (ret)
			return ret;
	}
	ret = ff_dev_open(path, NULL, &dev);
	if (ret)
		return ret;
	di = ff_dev_info(dev);
	/* every sequential zone starts empty */
	for (uint32_t i = 0; i < di->nr_zones; i++) {
		struct ff_zone z;

		if (ff_dev_report(dev, i, 1, &z) == 1 && z.type != FF_ZONE_CNV &&
		    z.cond != FF_ZC_EMPTY) {
			ret = ff_zoneq_zone_op(dev, i, FF_ZOP_RESET);
			if (ret) {
				ff_err("%s: resetting zone %u failed: %s", path, i, strerror(-ret));
				goto out;
			}
		}
	}
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
		ret = -EIO;
		goto out;
	}
	sb.uuid[6] = (uint8_t)((sb.uuid[6] & 0x0f) | 0x40); /* version 4 */
	sb.uuid[8] = (uint8_t)((sb.uuid[8] & 0x3f) | 0x80);
	if (posix_memalign(&blk, 4096, FF_ZONEFS_SB_SIZE)) {
		ret = -ENOMEM;
		goto out;
	}
	ff_zonefs_sb_encode(&sb, blk);
	ret = ff_dev_report(dev, 0, 1, &z0);
	if (ret >= 0) {
		struct iovec iov = {blk, FF_ZONEFS_SB_SIZE};
		ssize_t r = ff_zoneq_write_at(dev, 0, &iov, 1, 0, FF_IO_DSYNC);

		ret = r == FF_ZONEFS_SB_SIZE ? 0 : r < 0 ? (int)r : -EIO;
	}
	if (!ret)
		ret = ff_dev_flush(dev);
	if (ret) {
		ff_err("%s: writing the superblock failed: %s", path, strerror(-ret));
		goto out;
	}
	if (summary) {
		uint32_t seq = di->nr_zones - di->nr_cnv_zones;
		char zs[32];

		snprintf(
			summary, slen,
			"%s: %s device, %u zones of %s (%u conventional, %u sequential; zone 0 holds the superblock), block %u; label '%s', features 0x%llx",
			path, ff_dev_kind_name(di->kind), di->nr_zones,
			ff_fs_zone_size_text(di->zone_size, zs, sizeof(zs)), di->nr_cnv_zones, seq,
			di->lblock_size, sb.label, (unsigned long long)sb.features);
	}
out:
	free(blk);
	ff_dev_close(dev);
	return ret;
}

int ff_zonefs_mkfs(const char *path, const struct ff_mkfs_opts *o, char *summary, size_t len)
{
	struct ff_dev_lock lk;
	int ret;

	ret = ff_dev_lock_image(path, &lk);
	if (ret)
		return ret;
	ret = mkfs_locked(path, o, summary, len);
	ff_dev_unlock_image(&lk);
	return ret;
}
