// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * POSIX ACLs over a namespace format's xattrs. With FUSE_CAP_POSIX_ACL the
 * kernel checks the ACLs it reads from system.posix_acl_access and
 * _default, but leaves the rest to the daemon, which does what the kernel's
 * posix_acl helpers do for ext4 or XFS: an access ACL sets the mode's
 * owner, group (the mask) and other bits, and one that says no more than
 * the mode is not stored (posix_acl_update_mode); chmod rewrites those
 * entries (posix_acl_chmod); a new node in a directory with a default ACL
 * gets it, masked by the mode asked for, in place of the umask, and a new
 * directory inherits the default ACL too (posix_acl_create). The format
 * only stores bytes; all of it goes through ff_fs_* calls.
 *
 * The value is the kernel's posix_acl_xattr layout: a 4-byte version (2),
 * then 8-byte entries {u16 tag, u16 perm, u32 id}, little-endian.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "acl.h"

#define ACL_VERSION   2u
#define ACL_USER_OBJ  0x01
#define ACL_USER      0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP     0x08
#define ACL_MASK      0x10
#define ACL_OTHER     0x20
#define ACL_MAX_SIZE  65536

const char ff_acl_access[] = "system.posix_acl_access";
const char ff_acl_default[] = "system.posix_acl_default";

static unsigned get16(const unsigned char *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* Whether an ACL value is well formed: version 2, whole entries, one of each *_OBJ. */
static bool acl_valid(const unsigned char *v, size_t len)
{
	unsigned seen = 0;

	if (len < 4 || (len - 4) % 8 ||
	    (v[0] | v[1] << 8 | v[2] << 16 | (unsigned)v[3] << 24) != ACL_VERSION)
		return false;
	for (size_t o = 4; o < len; o += 8) {
		unsigned tag = get16(v + o), perm = get16(v + o + 2);

		if (perm & ~7u)
			return false;
		switch (tag) {
		case ACL_USER_OBJ:
		case ACL_GROUP_OBJ:
		case ACL_MASK:
		case ACL_OTHER:
			if (seen & tag)
				return false;
			seen |= tag;
			break;
		case ACL_USER:
		case ACL_GROUP:
			seen |= tag;
			break;
		default:
			return false;
		}
	}
	if ((seen & (ACL_USER | ACL_GROUP)) && !(seen & ACL_MASK))
		return false;
	return (seen & (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER)) ==
	       (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER);
}

/* The permission bits an ACL gives; *extended whether it says more than they do. */
static mode_t acl_mode(const unsigned char *v, size_t len, bool *extended)
{
	mode_t m = 0, group = 0, mask = 0;
	bool has_mask = false;

	*extended = false;
	for (size_t o = 4; o < len; o += 8) {
		unsigned perm = get16(v + o + 2);

		switch (get16(v + o)) {
		case ACL_USER_OBJ:
			m |= perm << 6;
			break;
		case ACL_GROUP_OBJ:
			group = perm;
			break;
		case ACL_MASK:
			mask = perm;
			has_mask = true;
			*extended = true;
			break;
		case ACL_OTHER:
			m |= perm;
			break;
		default:
			*extended = true;
		}
	}
	return m | (has_mask ? mask : group) << 3;
}

/* Set the *_OBJ/MASK/OTHER entries from mode's bits; with mask_only, only lower them. */
static void acl_apply_mode(unsigned char *v, size_t len, mode_t mode, bool mask_only)
{
	bool has_mask = false;

	for (size_t o = 4; o < len; o += 8)
		has_mask |= get16(v + o) == ACL_MASK;
	for (size_t o = 4; o < len; o += 8) {
		unsigned tag = get16(v + o), perm = get16(v + o + 2), want;

		if (tag == ACL_USER_OBJ)
			want = (mode >> 6) & 7;
		else if (tag == ACL_OTHER)
			want = mode & 7;
		else if (tag == ACL_MASK || (tag == ACL_GROUP_OBJ && !has_mask))
			want = (mode >> 3) & 7;
		else
			continue;
		put16(v + o + 2, mask_only ? (perm & want) : want);
	}
}

/* A file's mode with its permission bits replaced by perm. */
static int set_perm_bits(struct ff_fs *fs, uint64_t ino, mode_t perm)
{
	struct stat st;
	int ret = ff_fs_getattr(fs, ino, &st);

	if (ret)
		return ret;
	st.st_mode = (st.st_mode & ~(mode_t)0777) | (perm & 0777);
	return ff_fs_setattr(fs, ino, &st, FF_SET_MODE);
}

int ff_acl_set(struct ff_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
	       int flags)
{
	bool extended;
	mode_t perm;
	struct stat st;
	int ret;

	if (strcmp(name, ff_acl_access) && strcmp(name, ff_acl_default))
		return ff_fs_setxattr(fs, ino, name, value, size, flags);
	if (!acl_valid(value, size))
		return -EINVAL;
	if (!strcmp(name, ff_acl_default)) {
		ret = ff_fs_getattr(fs, ino, &st);
		if (ret)
			return ret;
		return S_ISDIR(st.st_mode) ? ff_fs_setxattr(fs, ino, name, value, size, flags)
					   : -EACCES;
	}
	perm = acl_mode(value, size, &extended);
	/* an ACL that says no more than the mode is the mode, and not stored */
	if (extended) {
		ret = ff_fs_setxattr(fs, ino, name, value, size, flags);
		if (ret)
			return ret;
	} else {
		ret = ff_fs_removexattr(fs, ino, name);
		if (ret && ret != -ENODATA)
			return ret;
	}
	return set_perm_bits(fs, ino, perm);
}

/*
 * Read an ACL of ino into a malloc'ed buffer: its length, 0 when it has none
 * (or the format keeps no ACLs), or -errno. Most nodes have none: one call
 * asks the size first.
 */
static ssize_t acl_get(struct ff_fs *fs, uint64_t ino, const char *name, unsigned char **out)
{
	unsigned char *v;
	ssize_t n = ff_fs_getxattr(fs, ino, name, NULL, 0);

	*out = NULL;
	if (n == -ENODATA || n == -EOPNOTSUPP || n == 0)
		return 0;
	if (n < 0)
		return n;
	if (n > ACL_MAX_SIZE)
		return 0;
	v = malloc(ACL_MAX_SIZE);
	if (!v)
		return -ENOMEM;
	n = ff_fs_getxattr(fs, ino, name, v, ACL_MAX_SIZE);
	if (n == -ENODATA || n == -EOPNOTSUPP || (n >= 0 && !acl_valid(v, (size_t)n)))
		n = 0;
	if (n > 0)
		*out = v;
	else
		free(v);
	return n;
}

int ff_acl_chmod(struct ff_fs *fs, uint64_t ino, mode_t mode)
{
	unsigned char *v;
	ssize_t n = acl_get(fs, ino, ff_acl_access, &v);
	int ret;

	if (n <= 0)
		return (int)n;
	acl_apply_mode(v, (size_t)n, mode, false);
	ret = ff_fs_setxattr(fs, ino, ff_acl_access, v, (size_t)n, 0);
	free(v);
	return ret;
}

mode_t ff_acl_create_mode(struct ff_fs *fs, uint64_t dir, mode_t mode, mode_t umask)
{
	unsigned char *v;

	if (acl_get(fs, dir, ff_acl_default, &v) <= 0)
		return mode & ~umask;
	free(v);
	return mode; /* masked by the default ACL in ff_acl_inherit */
}

int ff_acl_inherit(struct ff_fs *fs, uint64_t dir, uint64_t ino, mode_t mode)
{
	unsigned char *v;
	ssize_t n = acl_get(fs, dir, ff_acl_default, &v);
	bool extended;
	mode_t perm;
	int ret;

	if (n <= 0)
		return (int)n;
	if (S_ISDIR(mode)) {
		ret = ff_fs_setxattr(fs, ino, ff_acl_default, v, (size_t)n, 0);
		if (ret)
			goto out_free;
	}
	acl_apply_mode(v, (size_t)n, mode, true);
	perm = acl_mode(v, (size_t)n, &extended);
	ret = set_perm_bits(fs, ino, perm);
	if (!ret && extended)
		ret = ff_fs_setxattr(fs, ino, ff_acl_access, v, (size_t)n, 0);
out_free:
	free(v);
	return ret;
}
