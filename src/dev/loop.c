// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loop devices and the files under them. An image file and a loop device
 * over it are two names of one device, and the one-user locks of dev.c (an
 * flock on an image file, the kernel's O_EXCL claim on a block device) each
 * see one name only: a daemon on /dev/loopN and another, or mkfs, on the
 * file would each keep their own metadata over the same blocks.
 *
 * So an exclusive user of a loop device (or of a partition of one) takes
 * the flock of the file under it as well, which is the lock any foliofs
 * user of the file takes; and a user of an image file looks for a loop
 * device over it that the kernel holds (mounted by any filesystem, or
 * claimed by a device mapper, md or swap: its holders), which takes no
 * flock. An idle loop device keeps nothing from the file, as mount(8)
 * allows.
 *
 * Loop devices are found through sysfs (/sys/block/loopN/loop/backing_file)
 * and never opened here: opening and closing one set up by mount -o loop
 * (autoclear) can detach it. The file's identity is its device and inode,
 * not its name, so another name of it (a bind mount, a hard link) is still
 * the same file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "internal.h"

/* The first line of a sysfs file into buf, without its newline: 0, or -1 when unreadable. */
static int sysfs_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

/*
 * The sysfs directory of the loop device that block device rdev is, or holds
 * as a partition, into dir: 0, or -1 when it is no loop device's.
 */
static int loop_sysfs_dir(dev_t rdev, char *dir, size_t len)
{
	char p[96];
	struct stat st;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/loop", major(rdev), minor(rdev));
	if (stat(p, &st) == 0) {
		snprintf(dir, len, "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
		return 0;
	}
	/* a partition's directory sits in its disk's */
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../loop", major(rdev), minor(rdev));
	if (stat(p, &st) == 0) {
		snprintf(dir, len, "/sys/dev/block/%u:%u/..", major(rdev), minor(rdev));
		return 0;
	}
	return -1;
}

int ff_loop_lock_backing(int blkfd, const char *path, bool shared, unsigned wait_ms, int *lock_fd)
{
	char dir[96], p[128], file[PATH_MAX];
	struct loop_info64 li;
	struct stat st;
	int fd, ret;

	*lock_fd = -1;
	if (fstat(blkfd, &st) < 0 || !S_ISBLK(st.st_mode) ||
	    loop_sysfs_dir(st.st_rdev, dir, sizeof(dir)))
		return 0;
	snprintf(p, sizeof(p), "%s/loop/backing_file", dir);
	/* detached meanwhile, or a file this namespace cannot name: nothing to lock */
	if (sysfs_line(p, file, sizeof(file)) || ioctl(blkfd, LOOP_GET_STATUS64, &li) < 0)
		return 0;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	/* the name may stand for another file now (renamed, replaced): the loop's own only */
	if (fstat(fd, &st) < 0 || st.st_ino != li.lo_inode || st.st_dev != (dev_t)li.lo_device) {
		close(fd);
		return 0;
	}
	ret = ff_flock_wait(fd, file, shared, wait_ms);
	if (ret) {
		close(fd);
		if (ret == -EBUSY)
			ff_err("%s is a loop device over %s: the same device", path, file);
		return ret;
	}
	*lock_fd = fd;
	return 0;
}

/* Whether block device rdev (a loop device or a partition of one) is mounted. */
static bool dev_mounted(dev_t rdev)
{
	char line[4096], want[32];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	if (!f)
		return false;
	/* "ID PARENT MAJ:MIN ...": the third field */
	snprintf(want, sizeof(want), " %u:%u ", major(rdev), minor(rdev));
	while (!found && fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' ');

		sp = sp ? strchr(sp + 1, ' ') : NULL;
		found = sp && !strncmp(sp, want, strlen(want));
	}
	fclose(f);
	return found;
}

/* Whether sysfs block directory dir (a disk or a partition) lists a holder. */
static bool has_holders(const char *dir)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *de;
	bool any = false;

	snprintf(p, sizeof(p), "%s/holders", dir);
	d = opendir(p);
	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = de->d_name[0] != '.';
	closedir(d);
	return any;
}

/* The dev_t that sysfs block directory dir names ("MAJ:MIN" in its dev file), or 0. */
static dev_t sysfs_dev(const char *dir)
{
	char p[PATH_MAX], v[32];
	unsigned ma, mi;

	snprintf(p, sizeof(p), "%s/dev", dir);
	if (sysfs_line(p, v, sizeof(v)) || sscanf(v, "%u:%u", &ma, &mi) != 2)
		return 0;
	return makedev(ma, mi);
}

/*
 * Whether loop device name (its sysfs directory under /sys/block) or one of
 * its partitions is mounted or held.
 */
static bool loop_held(const char *name)
{
	char dir[320], sub[sizeof(dir) + 260]; /* names are up to 255 bytes */
	DIR *d;
	struct dirent *de;
	bool held;

	snprintf(dir, sizeof(dir), "/sys/block/%s", name);
	held = dev_mounted(sysfs_dev(dir)) || has_holders(dir);
	d = opendir(dir);
	if (!d)
		return held;
	while (!held && (de = readdir(d))) {
		/* partitions are the subdirectories named after the disk: loop0p1 */
		if (strncmp(de->d_name, name, strlen(name)) || !de->d_name[strlen(name)])
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		held = dev_mounted(sysfs_dev(sub)) || has_holders(sub);
	}
	closedir(d);
	return held;
}

int ff_loop_check_over(int fd, const char *path)
{
	char p[PATH_MAX], file[PATH_MAX];
	struct stat me, st;
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (fstat(fd, &me) < 0 || !S_ISREG(me.st_mode))
		return 0;
	d = opendir("/sys/block");
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
		/* an unattached loop device has no backing_file */
		if (sysfs_line(p, file, sizeof(file)) || stat(file, &st) < 0 ||
		    st.st_dev != me.st_dev || st.st_ino != me.st_ino)
			continue;
		if (loop_held(de->d_name)) {
			ff_err("%s is in use through /dev/%s (mounted, or held by another device); unmount it first",
			       path, de->d_name);
			ret = -EBUSY;
		}
	}
	closedir(d);
	return ret;
}

/*
 * What path's storage is: an image file's device and inode; a whole loop
 * device's file's (a partition, or a loop device over part of its file, is
 * not the whole file); another block device's number. 0, or -1 when path
 * cannot be looked at.
 */
static int storage_of(const char *path, dev_t *dev, ino_t *ino, bool *blk)
{
	char p[128], file[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	*blk = false;
	if (S_ISBLK(st.st_mode)) {
		struct stat fst;
		char off[32];

		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/loop/offset", major(st.st_rdev),
			 minor(st.st_rdev));
		if (!sysfs_line(p, off, sizeof(off)) && !strcmp(off, "0")) {
			snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/loop/backing_file",
				 major(st.st_rdev), minor(st.st_rdev));
			if (!sysfs_line(p, file, sizeof(file)) && !stat(file, &fst)) {
				*dev = fst.st_dev;
				*ino = fst.st_ino;
				return 0;
			}
		}
		*blk = true;
		*dev = st.st_rdev;
		*ino = 0;
		return 0;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

bool ff_dev_same_storage(const char *a, const char *b)
{
	dev_t da, db;
	ino_t ia, ib;
	bool ba, bb;

	if (storage_of(a, &da, &ia, &ba) || storage_of(b, &db, &ib, &bb))
		return false;
	return ba == bb && da == db && ia == ib;
}
