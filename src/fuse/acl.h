/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * POSIX ACLs for a namespace format, kept by the FUSE layer over the
 * format's xattrs (acl.c says what the kernel leaves to the daemon). Each
 * call returns 0 or -errno.
 */
#ifndef FOLIOFS_FUSE_ACL_H
#define FOLIOFS_FUSE_ACL_H

#include "foliofs/fs.h"

extern const char ff_acl_access[], ff_acl_default[];

/* setxattr: an ACL name is checked and keeps the mode in step; any other name is stored. */
int ff_acl_set(struct ff_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
	       int flags);
/* After a chmod of ino to mode: its access ACL's owner, mask (or group) and other entries. */
int ff_acl_chmod(struct ff_fs *fs, uint64_t ino, mode_t mode);
/* The mode to make a node with in dir: the umask applies only without a default ACL. */
mode_t ff_acl_create_mode(struct ff_fs *fs, uint64_t dir, mode_t mode, mode_t umask);
/* After making ino (mode: its type and bits) in dir: what dir's default ACL gives it. */
int ff_acl_inherit(struct ff_fs *fs, uint64_t dir, uint64_t ino, mode_t mode);

#endif
