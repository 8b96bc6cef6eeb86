// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mount -o remount,ro|rw MOUNTPOINT. mount(8) hands a remount of a
 * fuse.foliofs mount to its helper (mount.fuse3), which runs
 * "foliofs DEVICE MOUNTPOINT -o <the mount's options>,remount,...": not a
 * new mount, but a change of the existing one's flags, which the kernel
 * makes itself (FUSE takes MS_REMOUNT; the daemon is not asked). So this
 * process changes them with mount(2) and exits; the daemon serving the
 * mount goes on.
 *
 * Read-only, as on ext4: the kernel refuses while a file is open for
 * writing (EBUSY), and every close of one has written its data back
 * (FLUSH). What nobody synced yet (the posix format's names, within
 * commit= seconds) is made durable by an fsync of the root. The daemon is
 * not told: a collector or defragmentation pass under way ends on its own,
 * and nothing new starts one, as no change comes in. Read-write again
 * is refused for a daemon that was started with -o ro: it has the device
 * open read-only and would refuse every change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "remount.h"

/* A mount option's flag for mount(2), set or cleared in *on: the last one given wins. */
static void opt_flag(const char *o, unsigned long *on)
{
	static const struct {
		const char *name;
		unsigned long flag;
		bool set;
	} map[] = {
		{"ro", MS_RDONLY, true},
		{"rw", MS_RDONLY, false},
		{"nosuid", MS_NOSUID, true},
		{"suid", MS_NOSUID, false},
		{"nodev", MS_NODEV, true},
		{"dev", MS_NODEV, false},
		{"noexec", MS_NOEXEC, true},
		{"exec", MS_NOEXEC, false},
		{"sync", MS_SYNCHRONOUS, true},
		{"async", MS_SYNCHRONOUS, false},
		{"dirsync", MS_DIRSYNC, true},
		{"noatime", MS_NOATIME, true},
		{"atime", MS_NOATIME, false},
		{"nodiratime", MS_NODIRATIME, true},
		{"diratime", MS_NODIRATIME, false},
		{"relatime", MS_RELATIME, true},
		{"norelatime", MS_RELATIME, false},
		{"strictatime", MS_STRICTATIME, true},
		{"lazytime", MS_LAZYTIME, true},
		{"nolazytime", MS_LAZYTIME, false},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(o, map[i].name))
			continue;
		if (map[i].set)
			*on |= map[i].flag;
		else
			*on &= ~map[i].flag;
		return;
	}
}

/* Whether the daemon serving mnt has its device read-only (-o ro). */
static bool daemon_read_only(const char *mnt)
{
	char buf[8192];
	ssize_t n = getxattr(mnt, "user.foliofs.stats", buf, sizeof(buf) - 1);
	const char *p;

	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strstr(buf, "\nread_only ");
	return p && p[11] == '1';
}

int ff_remount_main(int argc, char **argv)
{
	unsigned long on = 0;
	const char *pos[2] = {NULL, NULL};
	bool remount = false;
	int npos = 0;

	for (int a = 1; a < argc; a++) {
		char *list, *save = NULL;

		if (!strcmp(argv[a], "-o") && a + 1 < argc)
			list = argv[++a];
		else if (!strncmp(argv[a], "-o", 2))
			list = argv[a] + 2;
		else {
			if (argv[a][0] != '-' && npos < 2)
				pos[npos++] = argv[a];
			continue;
		}
		list = strdup(list);
		if (!list)
			return 1;
		for (char *o = strtok_r(list, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			if (!strcmp(o, "remount"))
				remount = true;
			else
				opt_flag(o, &on);
		}
		free(list);
	}
	if (!remount)
		return -1;
	if (npos < 2) {
		fprintf(stderr, "foliofs: -o remount needs DEVICE and MOUNTPOINT\n");
		return 2;
	}
	if (!(on & MS_RDONLY) && daemon_read_only(pos[1])) {
		fprintf(stderr,
			"foliofs: %s is served by a daemon started with -o ro, which has the device open read-only: unmount it and mount it again without -o ro\n",
			pos[1]);
		return 1;
	}
	if (mount(NULL, pos[1], NULL, MS_REMOUNT | on, NULL) < 0) {
		int err = errno;

		fprintf(stderr, "foliofs: cannot remount %s: %s%s\n", pos[1], strerror(err),
			err == EBUSY && (on & MS_RDONLY) ? " (a file is open for writing)" : "");
		return 1;
	}
	if (on & MS_RDONLY) {
		int fd = open(pos[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0) {
			fprintf(stderr,
				"foliofs: %s is read-only now, but making what it holds durable failed: %s\n",
				pos[1], strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
	}
	return 0;
}
