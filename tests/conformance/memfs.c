// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memfs: an in-memory filesystem behind include/foliofs/fs.h, linked with
 * src/fuse/main.c into foliofs-memfs, so the conformance tests can check
 * the FUSE layer's namespace calls (lookup counts, forget, readdirplus,
 * create, rename flags, setattr times, xattrs) against ext4 while no on-disk
 * format has a namespace, and apart from any format's own bugs. It keeps what
 * a Linux filesystem keeps (the setgid inheritance, link counts, the POSIX
 * timestamp updates, xattr flags) and nothing on disk: a remount starts
 * empty. Its whole state is under one mutex.
 *
 * The FUSE layer's lookup counting is checked here: a forget of more than
 * was counted is reported, and the daemon then exits non-zero at unmount.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "foliofs/fs.h"

#define ROOT_INO   1
#define MAX_INODES (1u << 22)

struct xattr {
	struct xattr *next;
	char *name;
	size_t len;
	char *val;
};

struct dent {
	struct dent *next;
	uint64_t cookie, ino;
	char *name;
};

struct inode {
	struct stat st;
	uint64_t nlookup, opens;
	char *data; /* regular files: cap bytes, the rest of st_size reads as zeros */
	size_t cap;
	char *target;		  /* symlinks */
	struct dent *ents, *last; /* directories, in cookie order */
	uint64_t next_cookie;
	struct xattr *xattrs;
};

struct ff_fs {
	int unused;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct inode **inodes; /* by number; guarded by mu */
static uint64_t next_ino = ROOT_INO;
static struct ff_fs the_fs;
static atomic_int forget_errors;

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static struct inode *get(uint64_t ino)
{
	return ino < next_ino ? inodes[ino] : NULL;
}

static struct inode *new_inode(mode_t mode, const struct ff_cred *cr, struct inode *dir)
{
	struct inode *i;

	if (next_ino >= MAX_INODES)
		return NULL;
	i = calloc(1, sizeof(*i));
	if (!i)
		return NULL;
	i->st.st_ino = next_ino;
	i->st.st_mode = mode;
	i->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	i->st.st_uid = cr ? cr->uid : 0;
	i->st.st_gid = cr ? cr->gid : 0;
	i->st.st_blksize = 4096;
	/* inode_init_owner: a setgid directory gives its group, and to directories its bit */
	if (dir && (dir->st.st_mode & S_ISGID)) {
		i->st.st_gid = dir->st.st_gid;
		if (S_ISDIR(mode))
			i->st.st_mode |= S_ISGID;
	}
	now(&i->st.st_atim);
	i->st.st_mtim = i->st.st_ctim = i->st.st_atim;
	inodes[next_ino++] = i;
	return i;
}

static void free_inode(struct inode *i)
{
	struct xattr *x, *xn;

	for (x = i->xattrs; x; x = xn) {
		xn = x->next;
		free(x->name);
		free(x->val);
		free(x);
	}
	inodes[i->st.st_ino] = NULL;
	free(i->data);
	free(i->target);
	free(i);
}

/* An inode with no name, no lookup and no open is gone. */
static void maybe_free(struct inode *i)
{
	if (i && i->st.st_nlink == 0 && i->nlookup == 0 && i->opens == 0 &&
	    i->st.st_ino != ROOT_INO)
		free_inode(i);
}

static struct dent *find(struct inode *d, const char *name)
{
	for (struct dent *e = d->ents; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

static bool timespec_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

static void touch(struct inode *i, bool m)
{
	now(&i->st.st_ctim);
	if (m)
		i->st.st_mtim = i->st.st_ctim;
}

static int add_dent(struct inode *d, const char *name, uint64_t ino)
{
	struct dent *e = calloc(1, sizeof(*e));

	if (!e || !(e->name = strdup(name))) {
		free(e);
		return -ENOMEM;
	}
	e->ino = ino;
	e->cookie = ++d->next_cookie;
	if (d->last)
		d->last->next = e;
	else
		d->ents = e;
	d->last = e;
	touch(d, true);
	return 0;
}

static void del_dent(struct inode *d, struct dent *e)
{
	struct dent **pp = &d->ents, *prev = NULL;

	while (*pp != e) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = e->next;
	if (d->last == e)
		d->last = prev;
	free(e->name);
	free(e);
	touch(d, true);
}

static void fill(struct inode *i, struct stat *st)
{
	*st = i->st;
	st->st_blocks = (blkcnt_t)((i->cap + 511) / 512);
}

static int dir_of(uint64_t ino, struct inode **out)
{
	struct inode *d = get(ino);

	if (!d)
		return -ENOENT;
	if (!S_ISDIR(d->st.st_mode))
		return -ENOTDIR;
	*out = d;
	return 0;
}

/* ---- the interface ---- */

/* memfs has no device: only the same name is the same */
bool ff_fs_same_device(const char *a, const char *b)
{
	return !strcmp(a, b);
}

int ff_fs_check(const char *path, bool read_only)
{
	(void)path, (void)read_only;
	return 0;
}

int ff_fs_mount(const char *path, const struct ff_fs_opts *o, struct ff_fs **out)
{
	(void)path, (void)o;
	inodes = calloc(MAX_INODES, sizeof(*inodes));
	if (!inodes)
		return -ENOMEM;
	new_inode(S_IFDIR | 0755, NULL, NULL);
	*out = &the_fs;
	return 0;
}

int ff_fs_unmount(struct ff_fs *fs)
{
	(void)fs;
	if (atomic_load(&forget_errors)) {
		fprintf(stderr, "memfs: %d forgets of more lookups than were counted\n",
			atomic_load(&forget_errors));
		return -EUCLEAN;
	}
	return 0;
}

uint64_t ff_fs_root_ino(const struct ff_fs *fs)
{
	(void)fs;
	return ROOT_INO;
}

enum ff_fs_format ff_fs_format(const struct ff_fs *fs)
{
	(void)fs;
	return FF_FMT_POSIX;
}

int ff_fs_lookup(struct ff_fs *fs, uint64_t dir, const char *name, struct stat *st)
{
	struct inode *d, *i;
	struct dent *e;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = dir_of(dir, &d);
	if (ret)
		goto out;
	if (strlen(name) > 255) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	e = find(d, name);
	if (!e) {
		ret = -ENOENT;
		goto out;
	}
	i = get(e->ino);
	i->nlookup++;
	fill(i, st);
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

void ff_fs_forget(struct ff_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct inode *i;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i || i->nlookup < nlookup) {
		fprintf(stderr, "memfs: forget %llu of inode %llu, which has %llu\n",
			(unsigned long long)nlookup, (unsigned long long)ino,
			(unsigned long long)(i ? i->nlookup : 0));
		atomic_fetch_add(&forget_errors, 1);
		if (i)
			i->nlookup = 0;
	} else {
		i->nlookup -= nlookup;
	}
	maybe_free(i);
	pthread_mutex_unlock(&mu);
}

int ff_fs_getattr(struct ff_fs *fs, uint64_t ino, struct stat *st)
{
	struct inode *i;
	int ret = 0;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (i)
		fill(i, st);
	else
		ret = -ENOENT;
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_readdir(struct ff_fs *fs, uint64_t dir, uint64_t cookie, char *name, size_t namelen,
		  struct stat *st, uint64_t *next)
{
	struct inode *d;
	struct dent *e;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = dir_of(dir, &d);
	if (ret)
		goto out;
	for (e = d->ents; e && e->cookie <= cookie; e = e->next)
		;
	if (!e) {
		ret = -ENOENT;
		goto out;
	}
	snprintf(name, namelen, "%s", e->name);
	fill(get(e->ino), st);
	*next = e->cookie;
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

static int resize(struct inode *i, uint64_t size)
{
	if (size < i->cap) {
		memset(i->data + size, 0, i->cap - size);
		i->cap = size;
	}
	i->st.st_size = (off_t)size;
	return 0;
}

/* Make bytes [0, end) of i's buffer real. */
static int reserve(struct inode *i, uint64_t end)
{
	char *p;

	if (end <= i->cap)
		return 0;
	if (end > (1ull << 32))
		return -EFBIG;
	p = realloc(i->data, end);
	if (!p)
		return -ENOMEM;
	memset(p + i->cap, 0, end - i->cap);
	i->data = p;
	i->cap = end;
	return 0;
}

int ff_fs_setattr(struct ff_fs *fs, uint64_t ino, const struct stat *st, unsigned which)
{
	struct inode *i;
	int ret = 0;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (which & FF_SET_SIZE) {
		if (!S_ISREG(i->st.st_mode)) {
			ret = -EISDIR;
			goto out;
		}
		if (st->st_size > (1ll << 44)) {
			ret = -EFBIG;
			goto out;
		}
		resize(i, (uint64_t)st->st_size);
		touch(i, true);
	}
	if (which & FF_SET_MODE)
		i->st.st_mode = (i->st.st_mode & S_IFMT) | (st->st_mode & 07777);
	if (which & FF_SET_UID)
		i->st.st_uid = st->st_uid;
	if (which & FF_SET_GID)
		i->st.st_gid = st->st_gid;
	if (which & FF_SET_ATIME)
		i->st.st_atim = st->st_atim;
	if (which & FF_SET_MTIME)
		i->st.st_mtim = st->st_mtim;
	if (which & FF_SET_ATIME_NOW)
		now(&i->st.st_atim);
	if (which & FF_SET_MTIME_NOW)
		now(&i->st.st_mtim);
	now(&i->st.st_ctim);
	if (which & FF_SET_CTIME)
		i->st.st_ctim = st->st_ctim;
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_open(struct ff_fs *fs, uint64_t ino, int flags, unsigned *open_flags)
{
	struct inode *i;
	int ret = 0;

	(void)fs;
	if (open_flags)
		*open_flags = 0;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	i->opens++;
	if ((flags & O_TRUNC) && S_ISREG(i->st.st_mode) && i->st.st_size) {
		resize(i, 0);
		touch(i, true);
	}
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_release(struct ff_fs *fs, uint64_t ino, int flags)
{
	struct inode *i;

	(void)fs, (void)flags;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (i && i->opens) {
		i->opens--;
		maybe_free(i);
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

ssize_t ff_fs_read(struct ff_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct inode *i;
	ssize_t ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (off >= (uint64_t)i->st.st_size) {
		ret = 0;
		goto out;
	}
	if (len > (uint64_t)i->st.st_size - off)
		len = (size_t)((uint64_t)i->st.st_size - off);
	/* relatime */
	if (timespec_le(&i->st.st_atim, &i->st.st_mtim) ||
	    timespec_le(&i->st.st_atim, &i->st.st_ctim) ||
	    i->st.st_atim.tv_sec + 86400 < time(NULL))
		now(&i->st.st_atim);
	memset(buf, 0, len);
	if (off < i->cap)
		memcpy(buf, i->data + off, off + len <= i->cap ? len : i->cap - off);
	ret = (ssize_t)len;
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

ssize_t ff_fs_write(struct ff_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		    unsigned flags)
{
	struct inode *i;
	ssize_t ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (flags & FF_FS_APPEND)
		off = (uint64_t)i->st.st_size;
	ret = reserve(i, off + len);
	if (ret)
		goto out;
	memcpy(i->data + off, buf, len);
	if (off + len > (uint64_t)i->st.st_size)
		i->st.st_size = (off_t)(off + len);
	touch(i, true);
	ret = (ssize_t)len;
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_fsync(struct ff_fs *fs, uint64_t ino, bool datasync)
{
	(void)fs, (void)ino, (void)datasync;
	return 0;
}

int ff_fs_fsyncdir(struct ff_fs *fs, uint64_t ino, bool datasync)
{
	(void)fs, (void)ino, (void)datasync;
	return 0;
}

int ff_fs_flush(struct ff_fs *fs, uint64_t ino)
{
	(void)fs, (void)ino;
	return 0;
}

int ff_fs_statfs(struct ff_fs *fs, struct statvfs *st)
{
	uint64_t used = 0, files = 0;

	(void)fs;
	pthread_mutex_lock(&mu);
	for (uint64_t n = ROOT_INO; n < next_ino; n++) {
		if (inodes[n]) {
			used += (inodes[n]->cap + 4095) / 4096;
			files++;
		}
	}
	pthread_mutex_unlock(&mu);
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = 1u << 20;
	st->f_bfree = st->f_bavail = st->f_blocks - used;
	st->f_files = MAX_INODES;
	st->f_ffree = st->f_favail = MAX_INODES - files;
	st->f_namemax = 255;
	return 0;
}

/* How many lookups the kernel holds, of how many inodes, and how many of those have no name. */
int ff_fs_stats_text(struct ff_fs *fs, char *buf, size_t len)
{
	uint64_t held = 0, inos = 0, orphans = 0;

	(void)fs;
	pthread_mutex_lock(&mu);
	for (uint64_t n = ROOT_INO + 1; n < next_ino; n++) {
		if (inodes[n] && inodes[n]->nlookup) {
			held += inodes[n]->nlookup;
			inos++;
			orphans += inodes[n]->st.st_nlink == 0;
		}
	}
	pthread_mutex_unlock(&mu);
	return snprintf(
		buf, len, "lookups_held %llu\ninodes_looked_up %llu\norphans_looked_up %llu\n",
		(unsigned long long)held, (unsigned long long)inos, (unsigned long long)orphans);
}

int ff_fs_zone_text(struct ff_fs *fs, uint64_t ino, char *buf, size_t len)
{
	(void)fs, (void)ino, (void)buf, (void)len;
	return -ENODATA;
}

/* Make an entry name in dir for a new inode of mode; *st gets it, counted as a lookup. */
static int make(uint64_t dir, const char *name, mode_t mode, const struct ff_cred *cr,
		struct stat *st, struct inode **out)
{
	struct inode *d, *i;
	int ret = dir_of(dir, &d);

	if (ret)
		return ret;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (find(d, name))
		return -EEXIST;
	i = new_inode(mode, cr, d);
	if (!i)
		return -ENOSPC;
	ret = add_dent(d, name, i->st.st_ino);
	if (ret) {
		free_inode(i);
		return ret;
	}
	if (S_ISDIR(mode))
		d->st.st_nlink++;
	i->nlookup++;
	fill(i, st);
	if (out)
		*out = i;
	return 0;
}

int ff_fs_mknod(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, dev_t rdev,
		const struct ff_cred *cr, struct stat *st)
{
	struct inode *i;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = make(dir, name, mode, cr, st, &i);
	if (!ret)
		st->st_rdev = i->st.st_rdev = rdev;
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_mkdir(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode,
		const struct ff_cred *cr, struct stat *st)
{
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = make(dir, name, S_IFDIR | (mode & 07777), cr, st, NULL);
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_symlink(struct ff_fs *fs, uint64_t dir, const char *name, const char *target,
		  const struct ff_cred *cr, struct stat *st)
{
	struct inode *i;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = make(dir, name, S_IFLNK | 0777, cr, st, &i);
	if (!ret) {
		i->target = strdup(target);
		st->st_size = i->st.st_size = (off_t)strlen(target);
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

ssize_t ff_fs_readlink(struct ff_fs *fs, uint64_t ino, char *buf, size_t len)
{
	struct inode *i;
	ssize_t ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i || !i->target) {
		ret = i ? -EINVAL : -ENOENT;
	} else {
		ret = (ssize_t)strlen(i->target);
		if ((size_t)ret > len)
			ret = (ssize_t)len;
		memcpy(buf, i->target, (size_t)ret);
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_link(struct ff_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
	       struct stat *st)
{
	struct inode *d, *i;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = dir_of(newdir, &d);
	if (ret)
		goto out;
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (S_ISDIR(i->st.st_mode)) {
		ret = -EPERM;
		goto out;
	}
	if (find(d, newname)) {
		ret = -EEXIST;
		goto out;
	}
	ret = add_dent(d, newname, ino);
	if (ret)
		goto out;
	i->st.st_nlink++;
	i->nlookup++;
	touch(i, false);
	fill(i, st);
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

/* Remove name from d: the entry, and a link of what it names. */
static int remove_locked(struct inode *d, const char *name, int want_dir)
{
	struct dent *e = find(d, name);
	struct inode *i;

	if (!e)
		return -ENOENT;
	i = get(e->ino);
	if (want_dir == 1 && !S_ISDIR(i->st.st_mode))
		return -ENOTDIR;
	if (want_dir == 0 && S_ISDIR(i->st.st_mode))
		return -EISDIR;
	if (S_ISDIR(i->st.st_mode) && i->ents)
		return -ENOTEMPTY;
	del_dent(d, e);
	if (S_ISDIR(i->st.st_mode)) {
		d->st.st_nlink--;
		i->st.st_nlink = 0;
	} else {
		i->st.st_nlink--;
	}
	touch(i, false);
	maybe_free(i);
	return 0;
}

int ff_fs_unlink(struct ff_fs *fs, uint64_t dir, const char *name)
{
	struct inode *d;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = dir_of(dir, &d);
	if (!ret)
		ret = remove_locked(d, name, 0);
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_rmdir(struct ff_fs *fs, uint64_t dir, const char *name)
{
	struct inode *d;
	int ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	ret = dir_of(dir, &d);
	if (!ret)
		ret = remove_locked(d, name, 1);
	pthread_mutex_unlock(&mu);
	return ret;
}

/* Whether directory ino is a or below it (walking up through each directory's "..") */
static bool is_under(uint64_t ino, uint64_t a);

int ff_fs_rename(struct ff_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		 const char *newname, unsigned flags, const struct ff_cred *cr)
{
	struct inode *d, *nd, *si, *di = NULL;
	struct dent *se, *de;
	int ret;

	(void)fs;
	(void)cr;
	if (flags & FF_RENAME_WHITEOUT)
		return -EINVAL;
	pthread_mutex_lock(&mu);
	ret = dir_of(dir, &d);
	if (!ret)
		ret = dir_of(newdir, &nd);
	if (ret)
		goto out;
	se = find(d, name);
	if (!se) {
		ret = -ENOENT;
		goto out;
	}
	si = get(se->ino);
	de = find(nd, newname);
	if (de)
		di = get(de->ino);
	if ((flags & FF_RENAME_NOREPLACE) && de) {
		ret = -EEXIST;
		goto out;
	}
	if ((flags & FF_RENAME_EXCHANGE) && !de) {
		ret = -ENOENT;
		goto out;
	}
	if (si == di)
		goto out;
	if (S_ISDIR(si->st.st_mode) && is_under(newdir, si->st.st_ino)) {
		ret = -EINVAL;
		goto out;
	}
	if ((flags & FF_RENAME_EXCHANGE)) {
		if (S_ISDIR(di->st.st_mode) && is_under(dir, di->st.st_ino)) {
			ret = -EINVAL;
			goto out;
		}
		se->ino = di->st.st_ino;
		de->ino = si->st.st_ino;
		if (d != nd && S_ISDIR(si->st.st_mode) != S_ISDIR(di->st.st_mode)) {
			if (S_ISDIR(si->st.st_mode)) {
				d->st.st_nlink--;
				nd->st.st_nlink++;
			} else {
				d->st.st_nlink++;
				nd->st.st_nlink--;
			}
		}
		touch(si, false);
		touch(di, false);
		touch(d, true);
		touch(nd, true);
		goto out;
	}
	if (di) {
		if (S_ISDIR(si->st.st_mode) && !S_ISDIR(di->st.st_mode)) {
			ret = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(si->st.st_mode) && S_ISDIR(di->st.st_mode)) {
			ret = -EISDIR;
			goto out;
		}
		ret = remove_locked(nd, newname, S_ISDIR(di->st.st_mode));
		if (ret)
			goto out;
	}
	ret = add_dent(nd, newname, si->st.st_ino);
	if (ret)
		goto out;
	del_dent(d, find(d, name));
	if (S_ISDIR(si->st.st_mode)) {
		d->st.st_nlink--;
		nd->st.st_nlink++;
	}
	touch(si, false);
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_create(struct ff_fs *fs, uint64_t dir, const char *name, mode_t mode, int flags,
		 const struct ff_cred *cr, struct stat *st, unsigned *open_flags)
{
	struct inode *i;
	int ret;

	(void)fs, (void)flags;
	if (open_flags)
		*open_flags = 0;
	pthread_mutex_lock(&mu);
	ret = make(dir, name, S_IFREG | (mode & 07777), cr, st, &i);
	if (!ret)
		i->opens++;
	pthread_mutex_unlock(&mu);
	return ret;
}

static struct xattr **xfind(struct inode *i, const char *name)
{
	struct xattr **pp;

	for (pp = &i->xattrs; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name))
			break;
	return pp;
}

static bool known_ns(const char *name)
{
	if (!strcmp(name, "user.") || !strcmp(name, "trusted.") || !strcmp(name, "security."))
		return false;
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9) || !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default");
}

int ff_fs_setxattr(struct ff_fs *fs, uint64_t ino, const char *name, const void *value, size_t size,
		   int flags)
{
	struct inode *i;
	struct xattr **pp, *x;
	int ret = 0;

	(void)fs;
	if (!known_ns(name))
		return strchr(name, '.')[1] ? -EOPNOTSUPP : -EINVAL;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	pp = xfind(i, name);
	if ((flags & XATTR_CREATE) && *pp) {
		ret = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !*pp) {
		ret = -ENODATA;
		goto out;
	}
	x = *pp;
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x || !(x->name = strdup(name))) {
			free(x);
			ret = -ENOMEM;
			goto out;
		}
		*pp = x;
	}
	free(x->val);
	x->val = malloc(size ? size : 1);
	memcpy(x->val, value, size);
	x->len = size;
	touch(i, false);
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

ssize_t ff_fs_getxattr(struct ff_fs *fs, uint64_t ino, const char *name, void *buf, size_t size)
{
	struct inode *i;
	struct xattr *x;
	ssize_t ret;

	(void)fs;
	if (!known_ns(name))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&mu);
	i = get(ino);
	x = i ? *xfind(i, name) : NULL;
	if (!i)
		ret = -ENOENT;
	else if (!x)
		ret = -ENODATA;
	else if (size && size < x->len)
		ret = -ERANGE;
	else {
		if (size)
			memcpy(buf, x->val, x->len);
		ret = (ssize_t)x->len;
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

ssize_t ff_fs_listxattr(struct ff_fs *fs, uint64_t ino, char *buf, size_t size)
{
	struct inode *i;
	size_t n = 0;
	ssize_t ret;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	for (struct xattr *x = i->xattrs; x; x = x->next) {
		size_t l = strlen(x->name) + 1;

		if (size && n + l <= size)
			memcpy(buf + n, x->name, l);
		n += l;
	}
	ret = size && n > size ? -ERANGE : (ssize_t)n;
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_removexattr(struct ff_fs *fs, uint64_t ino, const char *name)
{
	struct inode *i;
	struct xattr **pp, *x;
	int ret = 0;

	(void)fs;
	if (!known_ns(name))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	pp = xfind(i, name);
	x = *pp;
	if (!x) {
		ret = -ENODATA;
		goto out;
	}
	*pp = x->next;
	free(x->name);
	free(x->val);
	free(x);
	touch(i, false);
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int ff_fs_fallocate(struct ff_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	struct inode *i;
	int ret = 0;

	(void)fs;
	pthread_mutex_lock(&mu);
	i = get(ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (off < i->cap)
			memset(i->data + off, 0, off + len <= i->cap ? len : i->cap - off);
		touch(i, true);
	} else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE) {
		ret = reserve(i, off + len);
		if (!ret) {
			memset(i->data + off, 0, len);
			if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > (uint64_t)i->st.st_size)
				i->st.st_size = (off_t)(off + len);
			touch(i, true);
		}
	} else if (mode & ~FALLOC_FL_KEEP_SIZE) {
		ret = -EOPNOTSUPP;
	} else {
		ret = reserve(i, off + len);
		if (!ret && !(mode & FALLOC_FL_KEEP_SIZE) && off + len > (uint64_t)i->st.st_size) {
			i->st.st_size = (off_t)(off + len);
			touch(i, true);
		}
	}
out:
	pthread_mutex_unlock(&mu);
	return ret;
}

int64_t ff_fs_lseek(struct ff_fs *fs, uint64_t ino, int64_t off, int whence)
{
	struct stat st;
	int ret = ff_fs_getattr(fs, ino, &st);

	/* all of a file is data, as generic_file_llseek says */
	if (ret)
		return ret;
	if (off < 0 || off >= st.st_size)
		return -ENXIO;
	return whence == SEEK_DATA ? off : st.st_size;
}

/* Directories know their parent only by search: fine at test sizes. */
static uint64_t parent_of(uint64_t dir)
{
	for (uint64_t n = ROOT_INO; n < next_ino; n++) {
		struct inode *d = inodes[n];

		if (!d || !S_ISDIR(d->st.st_mode))
			continue;
		for (struct dent *e = d->ents; e; e = e->next)
			if (e->ino == dir)
				return n;
	}
	return 0;
}

static bool is_under(uint64_t ino, uint64_t a)
{
	while (ino && ino != ROOT_INO) {
		if (ino == a)
			return true;
		ino = parent_of(ino);
	}
	return ino == a;
}
