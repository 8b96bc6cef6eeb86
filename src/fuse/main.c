// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * foliofs: the FUSE daemon. Decodes lowlevel FUSE requests, calls the
 * filesystem layer, replies. No policy lives here: option parsing for the
 * mount, the mapping of FUSE node ids to zonefs inode numbers (the root is
 * node 1; any other inode i is node i + 2), and the translation of open and
 * per-call flags (O_SYNC, O_DSYNC, RWF_DSYNC arriving as fi->flags) into the
 * cache's write flags.
 *
 * Writable opens are FOPEN_DIRECT_IO, so the reply to an O_SYNC write means
 * durable; read-only opens of conventional files are served by the kernel
 * page cache, kept coherent by kcache.c's invalidations (-o kernel_cache
 * widens that to every open but a sequential file's writable ones, -o
 * direct_io and -s narrow it to none). FSYNC is always
 * answered (never ENOSYS: the kernel would stop sending it). FLUSH (every
 * close) writes a file opened for writing back to the device, which is what
 * makes an unmount durable: the kernel does not wait for the daemon there.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <limits.h>
#include <malloc.h>
#include <mntent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "stat.h"
#include "internal.h"

#define MAX_IO	(1u << 20)
#define PAGE_SZ 4096u
/* the kernel's limit on a request's pages without /proc/sys/fs/fuse/max_pages_limit */
#define DEFAULT_MAX_PAGES 256u

struct opts {
	char *cache_size, *max_folio, *sync_mode, *dirty_gran, *errors;
	int explicit_open, kernel_cache, direct_io, ro, help, version;
	char *device;
};

static struct ff_fs *g_fs;
static struct opts g_o;

#define OPT(t, p)                              \
	{                                      \
		t, offsetof(struct opts, p), 1 \
	}
static const struct fuse_opt opt_spec[] = {
	OPT("cache_size=%s", cache_size),
	OPT("max_folio=%s", max_folio),
	OPT("sync_mode=%s", sync_mode),
	OPT("dirty_granularity=%s", dirty_gran),
	OPT("errors=%s", errors),
	OPT("explicit-open", explicit_open),
	OPT("kernel_cache", kernel_cache),
	OPT("direct_io", direct_io),
	OPT("ro", ro),
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP),
	OPT("-h", help),
	OPT("--help", help),
	OPT("-V", version),
	OPT("--version", version),
	FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct opts *o = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT && !o->device) {
		o->device = strdup(arg);
		return 0; /* the mountpoint stays for fuse_parse_cmdline */
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [-s] [-o OPT[,OPT...]] DEVICE MOUNTPOINT\n"
	       "       mount -t fuse.foliofs DEVICE MOUNTPOINT -o OPT[,OPT...]   (foliofs on the PATH)\n"
	       "       fstab: DEVICE MOUNTPOINT fuse.foliofs OPT[,OPT...] 0 0\n"
	       "Serves DEVICE (an image file or a disk formatted by mkfs.foliofs) as kernel zonefs\n"
	       "does: MOUNTPOINT/cnv/N and MOUNTPOINT/seq/N, one file per zone. close(2) of a\n"
	       "file opened for writing writes it back to the device (and returns its error),\n"
	       "so when umount MOUNTPOINT or fusermount3 -u MOUNTPOINT returns the data is on\n"
	       "the device. SIGTERM also unmounts and writes back.\n"
	       "    -h, --help                  this help;  -V, --version   the version\n"
	       "foliofs options:\n"
	       "    -o cache_size=SIZE          page cache budget (default 256M)\n"
	       "    -o max_folio=SIZE           largest folio (default 2M)\n"
	       "    -o sync_mode=writethrough|writeback   O_SYNC write path (default writethrough)\n"
	       "    -o dirty_granularity=block|folio     dirty tracking (default block)\n"
	       "    -o errors=remount-ro|zone-ro|zone-offline|repair   on write errors (default remount-ro)\n"
	       "    -o explicit-open            open zones explicitly while files are open for writing\n"
	       "    -o kernel_cache             the kernel page cache for writable opens too (shared\n"
	       "                                mmap of cnv files)\n"
	       "    -o direct_io                no kernel page cache: every read a FUSE request (the\n"
	       "                                default with -s)\n"
	       "    -o ro                       read-only\n"
	       "Live counters: getfattr --only-values -n user.foliofs.stats MOUNTPOINT\n"
	       "               getfattr --only-values -n user.foliofs.zone MOUNTPOINT/seq/N\n\n",
	       prog);
}

/* ---- a daemon's messages ---- */

/*
 * Once daemonised the terminal is gone, but warnings still matter (a write
 * error, a partial tail dropped at unmount): stderr becomes a pipe whose
 * lines this thread hands to syslog.
 */
static void *log_pump(void *arg)
{
	FILE *f = fdopen((int)(intptr_t)arg, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		syslog(LOG_WARNING, "%s", line);
	}
	free(line);
	fclose(f);
	return NULL;
}

/* Point stderr at syslog through log_pump. Returns whether *thr runs. */
static bool start_log_pump(pthread_t *thr)
{
	int p[2];

	if (pipe(p) < 0)
		return false;
	openlog("foliofs", LOG_PID, LOG_DAEMON);
	if (pthread_create(thr, NULL, log_pump, (void *)(intptr_t)p[0])) {
		close(p[0]);
		close(p[1]);
		return false;
	}
	dup2(p[1], 2);
	close(p[1]);
	return true;
}

/*
 * Whether dev is the source of a foliofs mount now. If not and its image is
 * still locked, a daemon that was just unmounted is writing back: worth
 * waiting for rather than failing.
 */
static bool device_mounted(const char *dev)
{
	char want[PATH_MAX], got[PATH_MAX];
	struct mntent *m;
	bool found = false;
	FILE *f = setmntent("/proc/self/mounts", "r");

	if (!f)
		return true;
	if (!realpath(dev, want))
		snprintf(want, sizeof(want), "%s", dev);
	while (!found && (m = getmntent(f)))
		found = !strcmp(m->mnt_type, "fuse.foliofs") &&
			(!strcmp(m->mnt_fsname, dev) ||
			 (realpath(m->mnt_fsname, got) && !strcmp(got, want)));
	endmntent(f);
	return found;
}

/* ---- node ids ---- */

static uint64_t to_ino(fuse_ino_t n)
{
	return n == FUSE_ROOT_ID ? ff_fs_root_ino(g_fs) : n - 2;
}

static fuse_ino_t to_node(uint64_t ino)
{
	return ino == ff_fs_root_ino(g_fs) ? FUSE_ROOT_ID : ino + 2;
}

static double attr_timeout(const struct stat *st)
{
	return S_ISDIR(st->st_mode) ? 3600.0 : 0.0; /* sizes move with every append */
}

/* ---- the size of a WRITE request ---- */

/*
 * The kernel splits a direct write into requests of at most max_write bytes
 * and at most max_pages pages of the user's buffer. A buffer that does not
 * start on a page needs one page more than its length in pages, so with
 * max_write = max_pages pages every request of a write from such a buffer
 * but the last is cut at a page of the buffer, not of the file: a sync
 * append of whole blocks then arrives as requests ending mid-block, which
 * the zonefs format must cut short. With max_write one page less than
 * max_pages, a request is always max_write bytes, block-aligned in the file.
 *
 * libfuse 3.14 offers no way to set max_pages: it derives it from max_write
 * in the INIT reply, one page short of what is needed. So the INIT reply is
 * sent through fuse_session_custom_io's writev, which raises max_pages by
 * one in it; every other message passes unchanged.
 */
static unsigned g_max_pages = DEFAULT_MAX_PAGES; /* set before the session starts */
static _Thread_local bool init_reply_next;

/* The kernel's max_pages_limit (sysctl), capped at DEFAULT_MAX_PAGES. */
static unsigned read_max_pages_limit(void)
{
	FILE *f = fopen("/proc/sys/fs/fuse/max_pages_limit", "r");
	unsigned v = DEFAULT_MAX_PAGES;

	if (f) {
		if (fscanf(f, "%u", &v) != 1 || v < 2)
			v = DEFAULT_MAX_PAGES;
		fclose(f);
	}
	return v < DEFAULT_MAX_PAGES ? v : DEFAULT_MAX_PAGES;
}

static ssize_t conn_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct fuse_init_out out;
	struct iovec v[2];

	(void)ud;
	if (!init_reply_next)
		return writev(fd, iov, count);
	init_reply_next = false;
	/* an error reply (EPROTO) has no body; an old protocol's has no max_pages */
	if (count != 2 || iov[1].iov_len < offsetof(struct fuse_init_out, map_alignment) ||
	    iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (out.max_pages && out.max_write == (g_max_pages - 1) * PAGE_SZ)
		out.max_pages = (uint16_t)g_max_pages;
	v[0] = iov[0];
	v[1] = (struct iovec){.iov_base = &out, .iov_len = iov[1].iov_len};
	return writev(fd, v, 2);
}

static ssize_t conn_read(int fd, void *buf, size_t len, void *ud)
{
	(void)ud;
	return read(fd, buf, len);
}

static const struct fuse_custom_io conn_io = {.writev = conn_writev, .read = conn_read};

/* ---- ops ---- */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->max_write = (g_max_pages - 1) * PAGE_SZ;
	init_reply_next = true; /* libfuse sends the reply from this thread, next */
	conn->max_readahead = MAX_IO;
	/* writeback_cache would strip the sync intent from WRITE (DESIGN.md) */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (ff_kcache_on()) {
		/*
		 * The daemon invalidates what changed (kcache.c): no GETATTR
		 * before every cached read, and no dropping of every page when
		 * an append moves the size.
		 */
		conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
		if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
			conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
	}
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = {0};
	int ret = ff_fs_lookup(g_fs, to_ino(parent), name, &e.attr);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	e.ino = to_node((uint64_t)e.attr.st_ino);
	e.attr_timeout = attr_timeout(&e.attr);
	e.entry_timeout = 3600.0; /* names never change */
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = ff_fs_getattr(g_fs, to_ino(ino), &st);

	(void)fi;
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	unsigned which = 0;
	struct stat st;
	int ret;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		which |= FF_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		which |= FF_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		which |= FF_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		which |= FF_SET_SIZE;
	ret = ff_fs_setattr(g_fs, to_ino(ino), attr, which);
	if (which & FF_SET_SIZE) /* a truncate, zone reset or finish */
		ff_kcache_changed(ino, 0, 0);
	if (!ret)
		ret = ff_fs_getattr(g_fs, to_ino(ino), &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *buf = calloc(1, size), name[256];
	size_t pos = 0, n;
	struct stat st;
	uint64_t cookie, next;

	/*
	 * Offsets: 1 after ".", 2 after "..", then 2 + the filesystem's cookie
	 * after each entry, so a listing resumes where it stopped even while
	 * the directory changes.
	 */
	(void)fi;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i < 2; i++) {
		memset(&st, 0, sizeof(st));
		st.st_ino = to_ino(ino);
		st.st_mode = S_IFDIR;
		n = fuse_add_direntry(req, buf + pos, size - pos, i == 0 ? "." : "..", &st, i + 1);
		if (n > size - pos)
			goto out;
		pos += n;
	}
	for (cookie = off > 2 ? (uint64_t)off - 2 : 0;; cookie = next) {
		int ret = ff_fs_readdir(g_fs, to_ino(ino), cookie, name, sizeof(name), &st, &next);

		if (ret == -ENOENT)
			break;
		if (ret) {
			free(buf);
			fuse_reply_err(req, -ret);
			return;
		}
		n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, (off_t)(next + 2));
		if (n > size - pos)
			break;
		pos += n;
	}
out:
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

/* fi->fh: the open's flags, and how the kernel serves the open */
#define FH_FLAGS  0xffffffffull
#define FH_DIRECT (1ull << 32) /* FOPEN_DIRECT_IO: writes bypass the kernel page cache */
#define FH_KCACHE (1ull << 33) /* counted by ff_kcache_open */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	unsigned of = 0;
	bool keep = false, cached;
	int ret = ff_fs_open(g_fs, to_ino(ino), fi->flags, &of);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uint64_t)(unsigned)fi->flags;
	/*
	 * The kernel page cache serves read-only opens without O_DIRECT of
	 * conventional files, so a hot read costs no round trip. Not those
	 * of sequential files (the files that refuse a writable shared
	 * mapping): FUSE's cached read path takes no lock against a truncate,
	 * so a read racing a zone reset can fill pages from the emptied zone
	 * while the kernel still has the old size, and return zeros in place
	 * of data that was there (the model checker found it); a direct_io
	 * read is pinned against the reset in the daemon. Writable opens stay
	 * direct_io: a sync write's reply means durable in one round trip,
	 * and a buffered write through the kernel page cache (without
	 * writeback_cache, still one WRITE per write(2)) measured slower than
	 * a direct one (bench/NOTES.md). -o kernel_cache lets the page cache
	 * serve every open but a sequential file's writable ones (the kernel
	 * would write its pages back out of order): the kernel answers a
	 * MAP_SHARED mmap of a direct_io open with ENODEV, while read-only
	 * opens keep read-only shared mappings.
	 */
	if (g_o.kernel_cache)
		cached = !((of & FF_OPEN_NO_SHARED_WRITE_MMAP) &&
			   (fi->flags & O_ACCMODE) != O_RDONLY);
	else
		cached = (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_DIRECT) &&
			 !(of & FF_OPEN_NO_SHARED_WRITE_MMAP);
	cached = cached && ff_kcache_on();
	if (cached && ff_kcache_open(ino, &keep))
		cached = false;
	fi->direct_io = !cached;
	fi->keep_cache = keep;
	fi->fh |= cached ? FH_KCACHE : FH_DIRECT;
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh & FH_KCACHE)
		ff_kcache_release(ino);
	ff_fs_release(g_fs, to_ino(ino), (int)(fi->fh & FH_FLAGS));
	fuse_reply_err(req, 0);
}

/*
 * FUSE_FLUSH: sent on every close(2) of the file, and close waits for the
 * reply. A file opened for writing is written back and the device flushed
 * here, so that when the last close has returned (and umount needs every
 * file closed) what was written is on the device: a non-fuseblk unmount
 * returns without waiting for the daemon. The write-back's error is close's.
 */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int ret = 0;

	if (((int)(fi->fh & FH_FLAGS) & O_ACCMODE) != O_RDONLY)
		ret = ff_fs_flush(g_fs, to_ino(ino));
	fuse_reply_err(req, -ret);
}

/*
 * Each worker's read buffer, made on its first READ. libfuse starts and ends
 * workers as load comes and goes, so the buffer belongs to the thread: the
 * key's destructor frees it when the worker exits.
 */
static pthread_key_t io_buf_key;

static void free_io_buf(void *buf)
{
	free(buf);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *io_buf = pthread_getspecific(io_buf_key);
	ssize_t r = 0;
	size_t got;

	if (!io_buf) {
		if (posix_memalign((void **)&io_buf, 4096, MAX_IO)) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		if (pthread_setspecific(io_buf_key, io_buf)) {
			free(io_buf);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	if (size > MAX_IO)
		size = MAX_IO;
	/*
	 * A short count is not always the end of the file: the cache stops
	 * at a folio it cannot get (memory pressure), so the rest is asked
	 * again until the end (0) or an error. The kernel page cache takes a
	 * short READ for the end of the file and shrinks its size to it, so
	 * for a page-cache open an error after some bytes fails the whole
	 * READ (the kernel then reads the page it needs on its own); a
	 * direct_io open gets the bytes read, a short read.
	 */
	for (got = 0; got < size; got += (size_t)r) {
		r = ff_fs_read(g_fs, to_ino(ino), io_buf + got, size - got, (uint64_t)off + got);
		if (r <= 0)
			break;
	}
	if (r < 0 && (!got || (fi->fh & FH_KCACHE)))
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_buf(req, io_buf, got);
}

static unsigned write_flags(int flags)
{
	unsigned f = 0;

	if ((flags & O_SYNC) == O_SYNC)
		f |= FF_CW_SYNC;
	else if (flags & O_DSYNC)
		f |= FF_CW_DSYNC;
	if (flags & O_DIRECT)
		f |= FF_CW_DIRECT;
	if (flags & O_APPEND)
		f |= FF_FS_APPEND;
	return f;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	/*
	 * The open's flags and this call's (RWF_DSYNC arrives as O_DSYNC). A
	 * write from the kernel's page cache (-o kernel_cache: a shared mmap
	 * written back) goes write-through: the kernel sends it when the
	 * mapping is unmapped or synced, after the file's last FLUSH, and
	 * nothing later would make it durable before umount returns.
	 */
	int flags = fi->flags | (int)(fi->fh & FH_FLAGS) | (fi->writepage ? O_DSYNC : 0);
	ssize_t r = ff_fs_write(g_fs, to_ino(ino), buf, size, (uint64_t)off, write_flags(flags));

	/*
	 * A direct_io write did not pass through the kernel page cache, which
	 * may hold these bytes for other opens. A failed write (either kind)
	 * may have moved the size back to the write pointer: everything goes.
	 */
	if (r < 0)
		ff_kcache_changed(ino, 0, 0);
	else if (fi->fh & FH_DIRECT)
		ff_kcache_changed(ino, (uint64_t)off, size);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, -ff_fs_fsync(g_fs, to_ino(ino), datasync));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, -ff_fs_fsyncdir(g_fs, to_ino(ino), datasync));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	ff_fs_statfs(g_fs, &st);
	fuse_reply_statfs(req, &st);
}

static void reply_text(fuse_req_t req, const char *text, int len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if ((size_t)len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, text, (size_t)len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char text[4096];
	int len;

	if (ino == FUSE_ROOT_ID && !strcmp(name, "user.foliofs.stats"))
		len = ff_fs_stats_text(g_fs, text, sizeof(text));
	else if (!strcmp(name, "user.foliofs.zone"))
		len = ff_fs_zone_text(g_fs, to_ino(ino), text, sizeof(text));
	else
		len = -ENODATA;
	if (len < 0)
		fuse_reply_err(req, -len);
	else
		reply_text(req, text, len, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct stat st;
	static const char root[] = "user.foliofs.stats", file[] = "user.foliofs.zone";

	if (ino == FUSE_ROOT_ID)
		reply_text(req, root, sizeof(root), size);
	else if (!ff_fs_getattr(g_fs, to_ino(ino), &st) && S_ISREG(st.st_mode))
		reply_text(req, file, sizeof(file), size);
	else
		reply_text(req, "", 0, size);
}

static void op_eperm_entry(fuse_req_t req)
{
	fuse_reply_err(req, EPERM);
}

static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d)
{
	(void)p, (void)n, (void)m, (void)d;
	op_eperm_entry(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p, (void)n, (void)m;
	op_eperm_entry(req);
}

static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{
	(void)p, (void)n;
	op_eperm_entry(req);
}

static void op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{
	(void)l, (void)p, (void)n;
	op_eperm_entry(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
		      unsigned int f)
{
	(void)p, (void)n, (void)np, (void)nn, (void)f;
	op_eperm_entry(req);
}

static void op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t p, const char *n)
{
	(void)i, (void)p, (void)n;
	op_eperm_entry(req);
}

static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p, (void)n, (void)m, (void)fi;
	/* the kernel's answer for O_CREAT of a new name in a dir without ->create */
	fuse_reply_err(req, EACCES);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{
	(void)i, (void)n, (void)v, (void)s, (void)f;
	fuse_reply_err(req, EOPNOTSUPP); /* as kernel zonefs, which has no xattr handlers */
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.release = op_release,
	.flush = op_flush,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
};

/* ---- options into fs options ---- */

/* ff_fs_opts.changed: the filesystem changed bytes on its own (kcache.c drops them) */
static void fs_changed(void *arg, uint64_t ino, uint64_t off, uint64_t len)
{
	(void)arg;
	ff_kcache_changed(to_node(ino), off, len);
}

/* The index of val in names[n], or -1 after saying what opt accepts. */
static int pick_name(const char *opt, const char *val, const char *const names[], int n,
		     const char *accepted)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(val, names[i]))
			return i;
	ff_err("bad value for %s: '%s' (%s)", opt, val, accepted);
	return -1;
}

static int build_fs_opts(struct ff_fs_opts *fo)
{
	memset(fo, 0, sizeof(*fo));
	if (g_o.cache_size &&
	    (ff_parse_size(g_o.cache_size, &fo->cache.cache_size) || !fo->cache.cache_size)) {
		ff_err("bad value for cache_size: '%s' (e.g. 256M)", g_o.cache_size);
		return -EINVAL;
	}
	if (g_o.max_folio) {
		uint64_t v;

		if (ff_parse_size(g_o.max_folio, &v) || !ff_is_pow2(v) || v < 4096 ||
		    v > (1ull << 30)) {
			ff_err("bad value for max_folio: '%s' (a power of two from 4k to 1G)",
			       g_o.max_folio);
			return -EINVAL;
		}
		fo->cache.max_folio = (uint32_t)v;
	}
	if (g_o.sync_mode) {
		static const char *const names[] = {"writethrough", "writeback"};
		int i = pick_name("sync_mode", g_o.sync_mode, names, 2,
				  "writethrough or writeback");

		if (i < 0)
			return -EINVAL;
		fo->cache.sync_mode = (enum ff_sync_mode)i; /* in enum ff_sync_mode's order */
	}
	if (g_o.dirty_gran) {
		static const char *const names[] = {"block", "folio"};
		int i = pick_name("dirty_granularity", g_o.dirty_gran, names, 2, "block or folio");

		if (i < 0)
			return -EINVAL;
		fo->cache.dirty_gran = (enum ff_dirty_gran)i; /* in enum ff_dirty_gran's order */
	}
	if (g_o.errors) {
		static const char *const names[] = {"remount-ro", "zone-ro", "zone-offline",
						    "repair"};
		int i = pick_name("errors", g_o.errors, names, 4,
				  "remount-ro, zone-ro, zone-offline or repair");

		if (i < 0)
			return -EINVAL;
		fo->errors = (enum ff_errors_mode)i; /* in enum ff_errors_mode's order */
	}
	{
		uint64_t cs = fo->cache.cache_size ? fo->cache.cache_size : 256ull << 20;
		uint64_t mf = fo->cache.max_folio ? fo->cache.max_folio : 2u << 20;

		if (cs < 4 * mf) {
			ff_err("cache_size must be at least 4 x max_folio (%llu bytes)",
			       (unsigned long long)(4 * mf));
			return -EINVAL;
		}
	}
	fo->lock_wait_s = device_mounted(g_o.device) ? 0 : 30;
	fo->explicit_open = g_o.explicit_open;
	fo->read_only = g_o.ro;
	fo->changed = fs_changed;
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct ff_fs_opts fo;
	struct stat st;
	int pipefd[2] = {-1, -1}, ret = 1, r;
	bool log_pumping = false;
	pthread_t log_thr;

	if (argc > 1 && !strcmp(argv[1], "stat"))
		return ff_stat_main(argc - 1, argv + 1);
	ff_log_set_level(FF_LOG_WARN);
	/*
	 * Keep the daemon's RSS near the cache budget (the folio data itself is
	 * mmap'ed by the cache): every FUSE worker thread would get a malloc
	 * arena of its own, each keeping what it frees; and libfuse's workers
	 * come and go, each freeing a 1 MiB request buffer, which raises
	 * glibc's dynamic mmap threshold so later buffers land in arenas and
	 * stay there. A few arenas and a fixed threshold.
	 */
	mallopt(M_ARENA_MAX, 4);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	if (fuse_opt_parse(&args, &g_o, opt_spec, opt_proc) == -1) {
		fprintf(stderr, "foliofs: cannot parse the options\n");
		return 2;
	}
	if (g_o.help) {
		usage(argv[0]);
		fflush(stdout);
		fuse_lowlevel_help();
		return 0;
	}
	if (g_o.version) {
		printf("foliofs 0.1.0\n");
		fflush(stdout); /* before fusermount3 prints its own version */
		fuse_lowlevel_version();
		return 0;
	}
	if (pthread_key_create(&io_buf_key, free_io_buf)) {
		fprintf(stderr, "foliofs: out of memory\n");
		return 1;
	}
	if (fuse_parse_cmdline(&args, &cmd) != 0) {
		fprintf(stderr, "foliofs: bad command line; see foliofs --help\n");
		return 2;
	}
	if (!g_o.device || !cmd.mountpoint) {
		fprintf(stderr, "usage: foliofs [-f] [-d] [-o OPT[,OPT...]] DEVICE MOUNTPOINT\n");
		return 2;
	}
	if (build_fs_opts(&fo))
		return 2;
	if (stat(cmd.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "foliofs: mount point %s is not a directory\n", cmd.mountpoint);
		return 1;
	}
	/* check the device before anything is mounted: errors reach the terminal */
	if (ff_fs_check(g_o.device, g_o.ro))
		return 1;
	fuse_opt_add_arg(&args, "-odefault_permissions");
	{
		char fsname[PATH_MAX + 16];

		snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=foliofs", g_o.device);
		fuse_opt_add_arg(&args, fsname);
	}
	if (!cmd.foreground) {
		/* the parent waits for the child to be mounted and serving */
		if (pipe(pipefd) < 0)
			return 1;
		r = fork();
		if (r < 0)
			return 1;
		if (r > 0) {
			char status = 1;

			close(pipefd[1]);
			if (read(pipefd[0], &status, 1) != 1)
				status = 1;
			_exit(status);
		}
		close(pipefd[0]);
		setsid();
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) {
		fprintf(stderr,
			"foliofs: unknown or bad mount option(s) (see above); nothing was mounted\n");
		goto out;
	}
	r = ff_fs_mount(g_o.device, &fo, &g_fs);
	if (r) {
		fprintf(stderr, "foliofs: cannot mount %s: %s\n", g_o.device, strerror(-r));
		goto out_session;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_fs;
	g_max_pages = read_max_pages_limit();
	if (fuse_session_mount(se, cmd.mountpoint) != 0) {
		fprintf(stderr, "foliofs: cannot mount on %s\n", cmd.mountpoint);
		goto out_signals;
	}
	if (fuse_session_custom_io(se, &conn_io, fuse_session_fd(se)) != 0)
		goto out_unmount;
	/* kcache.c's invalidation may wait on a READ that only another worker can serve */
	ff_kcache_start(se, !cmd.singlethread && !g_o.direct_io);
	if (!cmd.foreground) {
		int nul = open("/dev/null", O_RDWR);
		char ok = 0;

		if (write(pipefd[1], &ok, 1) != 1)
			goto out_unmount;
		close(pipefd[1]);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			log_pumping = start_log_pump(&log_thr);
			if (!log_pumping)
				dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (chdir("/"))
			goto out_unmount;
	}
	if (cmd.singlethread) {
		r = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, cmd.clone_fd);
		fuse_loop_cfg_set_max_threads(
			cfg, cmd.max_threads && cmd.max_threads <= 100000 ? cmd.max_threads : 16);
		/* libfuse 3.14 reports an unset max_idle_threads as UINT_MAX */
		fuse_loop_cfg_set_idle_threads(cfg, cmd.max_idle_threads &&
								    cmd.max_idle_threads <= 100000
							    ? cmd.max_idle_threads
							    : 8);
		r = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	ret = r < 0 ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_fs:
	/* everything dirty goes to the device before the daemon exits */
	r = ff_fs_unmount(g_fs);
	if (r) {
		ff_err("%s: writing back at unmount failed: %s", g_o.device, strerror(-r));
		ret = 1;
	}
out_session:
	fuse_session_destroy(se);
out:
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	if (log_pumping) {
		/* the last messages (unmount's) reach syslog before we exit */
		fflush(stderr);
		close(2);
		pthread_join(log_thr, NULL);
	}
	return ret;
}
