// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Other programs' signatures on a device, through libblkid: what mkfs must
 * not format over without --force, and what it erases when it formats.
 *
 * A check of the first blocks is not enough: btrfs keeps its superblock at
 * 64 KiB and mkfs.btrfs zeroes everything before it; ZFS leaves its first
 * 8 KiB blank; MD RAID 1.0 and 0.90 keep theirs at the device's end.
 * libblkid knows where each of a hundred formats keeps its magic, and is
 * what mkfs.xfs, mke2fs and wipefs use for the same question.
 */
#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

static void enable_all(blkid_probe pr, bool wipe)
{
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						      (wipe ? BLKID_SUBLKS_MAGIC : 0));
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, wipe ? BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT : 0);
}

int ff_dev_signature(const char *path, char *what, size_t len)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	const char *type = NULL, *usage = NULL;
	int rc;

	if (!pr)
		return -errno ?: -EIO;
	enable_all(pr, false);
	rc = blkid_do_safeprobe(pr);
	if (rc == -2) {
		/* several signatures that contradict each other: still not empty */
		snprintf(what, len,
			 "the signatures of several filesystems (blkid -p %s lists them)", path);
		rc = 1;
	} else if (rc == 0) {
		if (!blkid_probe_lookup_value(pr, "TYPE", &type, NULL)) {
			blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
			snprintf(what, len, "%s of type %s (blkid)",
				 usage && !strcmp(usage, "filesystem") ? "a filesystem"
				 : usage && !strcmp(usage, "raid")     ? "a RAID or volume member"
								       : "a signature",
				 type);
		} else if (!blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL)) {
			snprintf(what, len, "a partition table of type %s (blkid)", type);
		} else {
			snprintf(what, len, "a signature blkid recognises");
		}
		rc = 1;
	} else {
		rc = rc == 1 ? 0 : -EIO;
	}
	blkid_free_probe(pr);
	return rc;
}

int ff_dev_wipe_signatures(const char *path)
{
	blkid_probe pr;
	int fd = open(path, O_RDWR | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0)) {
		ret = -ENOMEM;
		goto out;
	}
	enable_all(pr, true);
	/* each wipe steps the probe back, so the loop sees every signature, as wipefs -a */
	while (blkid_do_probe(pr) == 0) {
		if (blkid_do_wipe(pr, 0)) {
			ret = -errno ?: -EIO;
			break;
		}
	}
	if (!ret && fsync(fd))
		ret = -errno;
out:
	if (pr)
		blkid_free_probe(pr);
	close(fd);
	return ret;
}
