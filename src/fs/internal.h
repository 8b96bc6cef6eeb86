/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the filesystem layer's own files share: the one-mount-per-image lock.
 * A block device is opened O_EXCL by the device layer; an image file has no
 * such thing, so mount and mkfs hold an flock on it for as long as they use it.
 */
#ifndef FOLIOFS_FS_INTERNAL_H
#define FOLIOFS_FS_INTERNAL_H

#include <stdbool.h>

/*
 * Lock path if it is a regular file (shared for read-only use, else
 * exclusive), trying for up to wait_s seconds (a daemon that was just
 * unmounted may still be writing back). Sets *fd to the descriptor holding
 * the lock (-1 when nothing was locked: not a regular file). Returns 0,
 * -EBUSY when another mount or mkfs holds it (said to the user), or -errno.
 * May sleep.
 */
int ff_fs_lock_image(const char *path, bool shared, unsigned wait_s, int *fd);

#endif
