// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * foliofs: the FUSE daemon. Decodes lowlevel FUSE requests, calls the
 * filesystem layer, replies. No policy lives here: option parsing for the
 * mount, the mapping of FUSE node ids to the format's inode numbers (the
 * root is node 1; any other inode i is node i + 2), the translation of open
 * and per-call flags (O_SYNC, O_DSYNC, RWF_DSYNC arriving as fi->flags) into
 * the cache's write flags, and the FUSE side of a namespace: the lookup
 * counts the kernel holds (every reply with an entry takes one, FORGET gives
 * them back), the caller's ids for what it makes, and what the kernel
 * leaves to a daemon that ext4 leaves to the VFS (the umask, setuid
 * clearing on direct writes, ACLs: acl.c).
 *
 * Writable opens are FOPEN_DIRECT_IO by default, so the reply to an O_SYNC
 * write means durable in one round trip; read-only opens of a file whose
 * size never moves (a conventional zone's) are served by the kernel page
 * cache, kept coherent by kcache.c's invalidations. -o kernel_cache widens
 * that to every open but a sequential file's writable ones, -o direct_io
 * and -s narrow it to none (open_mode says why). FSYNC is always
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
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "acl.h"
#include "stat.h"
#include "internal.h"
#include "reqsize.h"
#include "remount.h"

#define MAX_IO	(1u << 20)
#define PAGE_SZ FF_REQ_PAGE_SZ

struct opts {
	char *cache_size, *max_folio, *sync_mode, *dirty_gran, *errors, *defrag, *commit;
	int explicit_open, kernel_cache, direct_io, ro, discard, noacl, help, version;
	int atime;	   /* enum ff_atime: the last of noatime, relatime, strictatime given */
	unsigned max_read; /* FUSE's own option, kept for fuse_session_new too (op_init) */
	char *device;
};

static struct ff_fs *g_fs;
static struct opts g_o;
/* set before the session loop starts, then immutable; outlives the session for remount_ro */
static char g_mountpoint[PATH_MAX];
/* the session loop has returned: remount_ro stops retrying */
static atomic_bool g_unmounting;

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
	OPT("defrag=%s", defrag),
	OPT("commit=%s", commit),
	OPT("explicit-open", explicit_open),
	OPT("kernel_cache", kernel_cache),
	OPT("direct_io", direct_io),
	OPT("discard", discard),
	{"nodiscard", offsetof(struct opts, discard), 0},
	OPT("noacl", noacl),
	{"acl", offsetof(struct opts, noacl), 0},
	OPT("ro", ro),
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP),
	/*
	 * atime: the daemon moves it (FUSE's kernel never asks), so the daemon
	 * must know the policy. noatime stays a kernel flag too, for the mount
	 * table; libfuse 3.14 knows none of the others, which are taken here.
	 * nodiratime and lazytime are what foliofs does anyway: a directory's
	 * atime never moves, and a moved atime is logged with the inode's next
	 * record (an fsync's, or the committer's tick), never by the read.
	 */
	{"noatime", offsetof(struct opts, atime), FF_ATIME_NONE},
	FUSE_OPT_KEY("noatime", FUSE_OPT_KEY_KEEP),
	{"relatime", offsetof(struct opts, atime), FF_ATIME_RELATIME},
	{"nostrictatime", offsetof(struct opts, atime), FF_ATIME_RELATIME},
	{"strictatime", offsetof(struct opts, atime), FF_ATIME_STRICT},
	{"norelatime", offsetof(struct opts, atime), FF_ATIME_STRICT},
	FUSE_OPT_KEY("nodiratime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("lazytime", FUSE_OPT_KEY_DISCARD),
	{"max_read=%u", offsetof(struct opts, max_read), 0},
	FUSE_OPT_KEY("max_read=", FUSE_OPT_KEY_KEEP),
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
	       "       mount -o remount,ro|rw MOUNTPOINT   (read-only, and back; foliofs(8))\n"
	       "Serves DEVICE (an image file or a disk formatted by mkfs.foliofs). The posix format\n"
	       "is a general filesystem (mounted by root: for every user, allow_other,dev,suid,\n"
	       "with the kernel's permission checks and POSIX ACLs); the zonefs format is served as\n"
	       "kernel zonefs does: MOUNTPOINT/cnv/N and MOUNTPOINT/seq/N, one file per zone. close(2) of a\n"
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
	       "    -o defrag=N|off             posix format, conventional zones only: defragment a\n"
	       "                                file after appends add N extents too (default: only\n"
	       "                                when an overwrite spans extents), or never\n"
	       "    -o commit=N                 posix format: changes nobody synced (renames, creates,\n"
	       "                                unlinks) are durable within N seconds (default 5;\n"
	       "                                sync(1) does not reach a FUSE filesystem)\n"
	       "    -o kernel_cache             the kernel page cache for every open but a sequential\n"
	       "                                file's writable ones (default: read-only opens of cnv\n"
	       "                                files; shared mmap of cnv files)\n"
	       "    -o direct_io                no kernel page cache: every read a FUSE request\n"
	       "    -o discard|nodiscard        emulated zoned device: a reset zone's blocks are\n"
	       "                                discarded (TRIM, holes in an image) or kept (default)\n"
	       "    -o acl|noacl                posix format: POSIX ACLs read, set, checked and\n"
	       "                                inherited (default), or none, as ext4's noacl: a\n"
	       "                                cold ls -l then asks for no ACL per file\n"
	       "    -o relatime|noatime|strictatime   posix format: a read moves atime when it is\n"
	       "                                older than mtime or ctime or a day old (default),\n"
	       "                                never, or always; nodiratime and lazytime are\n"
	       "                                accepted: a directory's atime never moves, and atime\n"
	       "                                is written lazily (next fsync or commit)\n"
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
 * Whether dev is the source of a foliofs mount now, by this name or another
 * (a loop device over the same file). If not and its image is
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
			 (realpath(m->mnt_fsname, got) && !strcmp(got, want)) ||
			 ff_fs_same_device(m->mnt_fsname, dev));
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

/*
 * How long the kernel may keep what a reply says. A namespace changes, but
 * only through this mount, and the kernel drops what a call of its own
 * changes (the entries of an unlink or rename, the attributes of a write,
 * link or setattr, the atime after a read, a directory's after a create or
 * remove in it), and the daemon's own changes of a size or mode come
 * through fs_changed: names and directories for an hour, a file's
 * attributes for FF_NS_FILE_ATTR_S. That is what keeps ls -l of a directory
 * listed before at a few requests in all (op_opendir): a listing whose
 * entries or attributes expired would cost a LOOKUP or GETATTR per entry,
 * and a LOOKUP drops the ACL the kernel cached, which costs a GETXATTR of
 * system.posix_acl_access per entry too (ls -l asks for it, file_has_acl).
 * The one attribute that moves on its own is st_blocks, when write-back
 * places data written before (the kernel dropped the attributes at the
 * WRITE, but a stat since may have cached the count of before): a file
 * whose blocks do not cover its size yet is kept a second only
 * (FF_NS_PENDING_ATTR_S). What is left (an overwrite whose new blocks are
 * placed before the old ones are freed, seen by a stat in between) is a
 * block count off for at most FF_NS_FILE_ATTR_S.
 *
 * The zonefs format's tree never changes: names and directories for an
 * hour. A file's attributes are cached too (FF_ZONEFS_FILE_ATTR_S), so that
 * ls -l of 61,434 files costs a READDIRPLUS per few dozen files, not a
 * GETATTR per file. That is correct because every change reaches the
 * kernel: a size moved by a write or truncate through this mount is dropped
 * by the kernel itself (fuse_write_update_attr invalidates the attributes
 * after every WRITE, successful or not, and a SETATTR or O_TRUNC open takes
 * the reply's); a size or mode the daemon changes on its own (a background
 * write-back that failed and moved the size back to the write pointer, a
 * zone made read-only or offline) comes through ff_fs_opts.changed, and
 * fs_changed invalidates the attributes with
 * fuse_lowlevel_notify_inval_inode. The timeout bounds what an unforeseen
 * change could leave stale; it is not what makes a write visible.
 */
#define FF_ZONEFS_FILE_ATTR_S 60.0
#define FF_NS_FILE_ATTR_S     60.0
#define FF_NS_PENDING_ATTR_S  1.0
#define FF_TREE_S	      3600.0

static struct fuse_session *g_se; /* set before the session runs */
static bool g_selinux;		  /* the host runs SELinux; set before the session runs */

/*
 * Requests that listing, stat and close cost, counted for user.foliofs.stats
 * (how many round trips an ls -l takes is what makes it fast or slow).
 * Relaxed atomics: counters only.
 */
enum {
	NR_LOOKUP,
	NR_GETATTR,
	NR_GETXATTR,
	NR_READDIR,
	NR_READDIRPLUS,
	NR_FLUSH,
	NR_READLINK,
	NR_COUNTED
};
static const char *const nr_names[NR_COUNTED] = {
	"fuse_lookup",	    "fuse_getattr", "fuse_getxattr", "fuse_readdir",
	"fuse_readdirplus", "fuse_flush",   "fuse_readlink"};
static _Atomic uint64_t g_nr[NR_COUNTED];

static void count_req(int which)
{
	atomic_fetch_add_explicit(&g_nr[which], 1, memory_order_relaxed);
}

/* Append the request counters to a stats text of len bytes; returns the new length. */
static int req_stats_text(char *buf, size_t size, int len)
{
	for (int i = 0; i < NR_COUNTED && len >= 0 && (size_t)len < size; i++)
		len += snprintf(
			buf + len, size - (size_t)len, "%s %llu\n", nr_names[i],
			(unsigned long long)atomic_load_explicit(&g_nr[i], memory_order_relaxed));
	return len >= 0 && (size_t)len < size ? len : -ERANGE;
}

static bool ns_format(void)
{
	return ff_fs_format(g_fs) != FF_FMT_ZONEFS;
}

static double attr_timeout(const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return FF_TREE_S;
	if (!ns_format())
		return FF_ZONEFS_FILE_ATTR_S;
	if (S_ISREG(st->st_mode) && (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size)
		return FF_NS_PENDING_ATTR_S;
	return FF_NS_FILE_ATTR_S;
}

static double entry_timeout(void)
{
	return FF_TREE_S;
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
static unsigned g_max_pages = FF_REQ_DEFAULT_PAGES; /* set before the session starts */
static _Thread_local bool init_reply_next;

/*
 * A daemonised mount's parent waits on this pipe and exits with the byte it
 * reads: 0 once the INIT reply has gone to the kernel (the mount serves),
 * READY_INIT_FAILED when the handshake failed (libfuse refused the INIT,
 * or the loop ended before it). Written once; -1 when in the foreground.
 */
#define READY_INIT_FAILED 3
static int g_ready_fd = -1;
static atomic_flag g_ready_sent = ATOMIC_FLAG_INIT;

static void ready(char status)
{
	if (g_ready_fd < 0 || atomic_flag_test_and_set(&g_ready_sent))
		return;
	if (write(g_ready_fd, &status, 1) != 1) {
		/* the parent is gone: nobody to tell */
	}
	close(g_ready_fd);
}

/*
 * Shared mappings of direct-I/O files. The kernel refuses MAP_SHARED on a
 * file opened with FOPEN_DIRECT_IO unless the daemon sets this INIT flag
 * (Linux 6.6 and later; libfuse 3.14 does not know it). With it, the
 * mapping's pages live in the kernel's page cache, are written back as
 * ordinary WRITE requests, and a direct write or read by another fd writes
 * back and drops the pages it covers first, so the mapping and the daemon
 * stay coherent. Only the posix format asks for it: it writes any block
 * anywhere. A zonefs sequential file could not take the kernel's write-back
 * out of order, so there the mapping stays refused (ENODEV).
 */
#define FF_FUSE_DIRECT_IO_ALLOW_MMAP (1ull << 36)
static uint32_t g_kernel_flags2; /* the kernel's INIT flags2; set by the INIT request */

static ssize_t conn_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct fuse_init_out out;
	struct iovec v[2];
	ssize_t n;

	(void)ud;
	if (!init_reply_next)
		return writev(fd, iov, count);
	init_reply_next = false;
	/* an error reply (EPROTO) has no body; an old protocol's has no max_pages */
	if (count != 2 || iov[1].iov_len < offsetof(struct fuse_init_out, map_alignment) ||
	    iov[1].iov_len > sizeof(out)) {
		n = writev(fd, iov, count);
		ready(n >= 0 && count == 2 ? 0 : READY_INIT_FAILED);
		return n;
	}
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (out.max_pages && out.max_write == (g_max_pages - 1) * PAGE_SZ)
		out.max_pages = (uint16_t)g_max_pages;
	if (ns_format() && (out.flags & FUSE_INIT_EXT) &&
	    (g_kernel_flags2 & (uint32_t)(FF_FUSE_DIRECT_IO_ALLOW_MMAP >> 32)))
		out.flags2 |= (uint32_t)(FF_FUSE_DIRECT_IO_ALLOW_MMAP >> 32);
	v[0] = iov[0];
	v[1] = (struct iovec){.iov_base = &out, .iov_len = iov[1].iov_len};
	n = writev(fd, v, 2);
	ready(n >= 0 ? 0 : READY_INIT_FAILED);
	return n;
}

static ssize_t conn_read(int fd, void *buf, size_t len, void *ud)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;

	(void)ud;
	if (n >= (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, unused)) &&
	    h->opcode == FUSE_INIT) {
		const struct fuse_init_in *in = (const void *)(h + 1);

		if (in->flags & FUSE_INIT_EXT)
			g_kernel_flags2 = in->flags2;
	}
	return n;
}

static const struct fuse_custom_io conn_io = {.writev = conn_writev, .read = conn_read};

/* ---- ops ---- */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	/* libfuse 3.14 fails the INIT (EPROTO) unless this repeats -o max_read */
	conn->max_read = g_o.max_read;
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
	if (ns_format()) {
		/*
		 * The kernel clears setuid and setgid on chown, truncate and
		 * write by one who may not keep them (setattr_prepare and
		 * file_remove_privs, sending the new mode), as for ext4.
		 */
		conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
		/*
		 * POSIX ACLs: the kernel checks them; acl.c keeps the mode
		 * and the ACLs in step (setfacl, chmod, inheritance), and the
		 * format stores them as the xattrs system.posix_acl_access
		 * and _default. With -o noacl the kernel checks the mode
		 * alone (it asks for no ACL without FUSE_CAP_POSIX_ACL), and
		 * the ACL xattrs answer EOPNOTSUPP (noacl_name).
		 */
		if ((conn->capable & FUSE_CAP_POSIX_ACL) && !g_o.noacl)
			conn->want |= FUSE_CAP_POSIX_ACL;
		/* the umask is applied here, and only where no default ACL applies instead */
		if (conn->capable & FUSE_CAP_DONT_MASK)
			conn->want |= FUSE_CAP_DONT_MASK;
		/*
		 * A symlink's target is kept in the kernel's page cache: a path
		 * through it resolves with no READLINK. A link's target never
		 * changes (a new target is a new link, and the kernel drops
		 * what it held with the old one's node).
		 */
		if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
			conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	}
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
}

static void reply_entry(fuse_req_t req, int ret, const struct stat *st);

/*
 * A name that is not there is answered as an entry of node 0, which the
 * kernel keeps as a negative dentry for the entry timeout, as a local
 * filesystem keeps one: SQLite's look for a hot journal at every
 * transaction, and a compiler's or an interpreter's probes of paths that
 * are not there, then cost no request after the first. A bare ENOENT would
 * be asked again every time. It is correct for the reason names are cached
 * (attr_timeout): a name appears only through this mount, and the kernel
 * puts the new node in place of the negative dentry at every create,
 * mkdir, mknod, symlink, link and rename that makes it (a whiteout's name
 * has no dentry left, as the rename moved it); O_EXCL and a rename's
 * target ask again whatever is cached.
 */
static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int ret;

	count_req(NR_LOOKUP);
	ret = ff_fs_lookup(g_fs, to_ino(parent), name, &st);
	if (ret == -ENOENT) {
		struct fuse_entry_param e = {.ino = 0, .entry_timeout = entry_timeout()};

		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, ret, &st);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	(void)fi;
	count_req(NR_GETATTR);
	ret = ff_fs_getattr(g_fs, to_ino(ino), &st);
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
	/* utimensat's UTIME_NOW arrives as ATIME|ATIME_NOW: the _NOW alone says it */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		which |= FF_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		which |= FF_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		which |= FF_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		which |= FF_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_CTIME)
		which |= FF_SET_CTIME;
	ret = ff_fs_setattr(g_fs, to_ino(ino), attr, which);
	if (!ret && (which & FF_SET_MODE) && ns_format() && !g_o.noacl)
		ret = ff_acl_chmod(g_fs, to_ino(ino), attr->st_mode);
	if (which & FF_SET_SIZE) /* a truncate, zone reset or finish */
		ff_kcache_changed(ino, 0, 0);
	if (!ret)
		ret = ff_fs_getattr(g_fs, to_ino(ino), &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

/*
 * A namespace format's directory listings are kept in the kernel's page
 * cache (cache_readdir, and keep_cache so that the next opendir does not
 * drop them): a directory listed before lists again with no READDIR or
 * READDIRPLUS at all. That is correct for the reason the timeouts are
 * (attr_timeout): the names change only through this mount, and every
 * create, link, unlink and rename in a directory bumps its version in the
 * kernel, which drops the cached listing at the next read from its start.
 *
 * It is also what keeps the ACLs the kernel cached: linking a READDIRPLUS
 * entry to an inode the kernel holds already drops that inode's cached
 * ACLs (fuse_direntplus_link calls forget_all_cached_acls
 * unconditionally), so every listing by READDIRPLUS cost a GETXATTR of
 * system.posix_acl_access per entry when ls -l asked for it next. ACLs
 * change only through this mount too, and the kernel updates or drops its
 * copy at setxattr and setattr, so the copy kept is right.
 */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (ns_format()) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *buf = calloc(1, size), name[256];
	size_t pos = 0, n;
	struct stat st;
	uint64_t cookie, next;

	count_req(NR_READDIR);
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

/* How the kernel serves an open of node ino (OPEN and CREATE alike): fi's fh and modes. */
static void open_mode(fuse_ino_t ino, struct fuse_file_info *fi, unsigned of)
{
	bool keep = false, cached, wr = (fi->flags & O_ACCMODE) != O_RDONLY;

	fi->fh = (uint64_t)(unsigned)fi->flags;
	/*
	 * By default the kernel page cache serves only the read-only opens
	 * (not O_DIRECT) of files whose size never moves, so a hot read costs
	 * no round trip, and every writable open is direct_io, so a sync
	 * write's reply means durable in one round trip (a cached open's
	 * O_SYNC write costs a FUSE_FSYNC and a GETXATTR besides its WRITE).
	 * A file whose size moves stays direct_io: FUSE's cached read path
	 * takes no lock against a truncate, and a READ answered short while a
	 * SETATTR is in flight leaves a zero-filled page that a reader copies
	 * within the old size; and a direct_io write that moves the size lets
	 * a reader's GETATTR see the new size before the write's invalidation
	 * drops the old last page with its zero tail (tests/integration/0175).
	 * -o kernel_cache caches every open but a sequential file's writable
	 * ones (the files that refuse a writable shared mapping: the kernel
	 * would write their pages back out of order, and it answers a
	 * MAP_SHARED mmap of a direct_io open with ENODEV), those races and
	 * all. Without ff_kcache_on (-o direct_io, -s) every open is direct_io.
	 */
	if (g_o.kernel_cache)
		cached = !((of & FF_OPEN_NO_SHARED_WRITE_MMAP) && wr);
	else
		cached = !wr && (of & FF_OPEN_FIXED_SIZE) && !(fi->flags & O_DIRECT);
	cached = cached && ff_kcache_on();
	if (cached && ff_kcache_open(ino, &keep))
		cached = false;
	fi->direct_io = !cached;
	fi->keep_cache = keep;
	/*
	 * FOPEN_NOFLUSH: a read-only open's close has nothing to write back
	 * (op_flush), so the kernel need not ask; it saves a round trip at
	 * every close of a file read. A writable open's close keeps its
	 * FUSE_FLUSH, which makes the writes durable before close returns.
	 */
	fi->noflush = !wr;
	fi->fh |= cached ? FH_KCACHE : FH_DIRECT;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	unsigned of = 0;
	int ret = ff_fs_open(g_fs, to_ino(ino), fi->flags, &of);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	open_mode(ino, fi, of);
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

	count_req(NR_FLUSH);
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
		if (posix_memalign((void **)&io_buf, 4096, (size_t)g_max_pages * PAGE_SZ)) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		if (pthread_setspecific(io_buf_key, io_buf)) {
			free(io_buf);
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	/* a READ spans at most max_pages pages; the kernel never asks more */
	if (size > (size_t)g_max_pages * PAGE_SZ)
		size = (size_t)g_max_pages * PAGE_SZ;
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

/*
 * A write or fallocate by one who may not keep them clears setuid, and
 * setgid with group execute (the kernel's file_remove_privs and
 * should_remove_suid, which a direct_io write never reaches). Root (the
 * holder of CAP_FSETID, as far as a request tells) keeps them.
 */
static void remove_privs(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	if (!ns_format() || fuse_req_ctx(req)->uid == 0 || ff_fs_getattr(g_fs, to_ino(ino), &st))
		return;
	if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		st.st_mode &= ~(mode_t)S_ISGID;
	else if (!(st.st_mode & S_ISUID))
		return;
	st.st_mode &= ~(mode_t)S_ISUID;
	ff_fs_setattr(g_fs, to_ino(ino), &st, FF_SET_MODE);
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
	ssize_t r;

	if (!fi->writepage)
		remove_privs(req, ino);
	r = ff_fs_write(g_fs, to_ino(ino), buf, size, (uint64_t)off, write_flags(flags));

	/*
	 * A write-back of the kernel's own pages keeps its folio under
	 * writeback until this reply, and an invalidation of the node waits
	 * for that writeback: it goes after the reply, or this worker waits
	 * for itself. On success there is nothing to invalidate: the bytes
	 * came from the kernel page cache.
	 */
	if (fi->writepage) {
		if (r < 0)
			fuse_reply_err(req, (int)-r);
		else
			fuse_reply_write(req, (size_t)r);
		if (r < 0)
			ff_kcache_changed(ino, 0, 0);
		return;
	}
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

/* system.posix_acl_access or _default */
static bool acl_name(const char *name)
{
	return !strncmp(name, "system.posix_acl_", 17);
}

/*
 * -o noacl: the ACL xattrs are not this mount's, as with ext4's noacl. Their
 * EOPNOTSUPP is also what tells ls -l (gnulib's file_has_acl) that the
 * filesystem has no ACLs, so that a listing asks once, not once a file.
 * Those stored are kept for the next mount with ACLs.
 */
static bool noacl_name(const char *name)
{
	return g_o.noacl && ns_format() && acl_name(name);
}

/* A namespace format's own xattrs (up to XATTR_SIZE_MAX, the VFS's limit). */
static void ns_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (noacl_name(name)) {
		free(buf);
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = ff_fs_getxattr(g_fs, to_ino(ino), name, buf, size);
	/* the kernel asks for ACLs on its own: a format without them has none, not an error */
	if (n == -EOPNOTSUPP && acl_name(name))
		n = -ENODATA;
	/*
	 * No SELinux label on a host without SELinux: EOPNOTSUPP, "this file
	 * system has no labels" to libselinux, which is what GNU ls (getfilecon)
	 * needs to stop asking for every file of the mount: ENODATA cost one
	 * round trip per file of an ls -l. A label set anyway is still
	 * returned.
	 */
	if (n == -ENODATA && !g_selinux && !strcmp(name, "security.selinux"))
		n = -EOPNOTSUPP;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/*
 * user.foliofs.stats (the root) and user.foliofs.zone (a file) are made up
 * on every read, in every format. The zonefs format has no other xattrs; a
 * namespace format stores them, and does not list the made-up ones, so that
 * listxattr answers as ext4 or XFS would.
 */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char text[4096];
	int len;

	count_req(NR_GETXATTR);
	if (ino == FUSE_ROOT_ID && !strcmp(name, "user.foliofs.stats")) {
		len = ff_fs_stats_text(g_fs, text, sizeof(text));
		if (len >= 0)
			len = req_stats_text(text, sizeof(text), len);
	} else if (!strcmp(name, "user.foliofs.zone"))
		len = ff_fs_zone_text(g_fs, to_ino(ino), text, sizeof(text));
	else
		len = !ns_format() && (!strncmp(name, "security.", 9) ||
				       !strncmp(name, "system.", 7))
			      ? -EOPNOTSUPP
			      : -ENODATA;
	/*
	 * The zonefs format has no security label nor ACL namespace (kernel
	 * zonefs has no xattrs at all): EOPNOTSUPP, which also tells ls -l
	 * (getfilecon, file_has_acl) to stop asking for every file of the
	 * device, where ENODATA costs two round trips per file.
	 */
	if (len < 0 && ns_format()) {
		ns_getxattr(req, ino, name, size);
		return;
	}
	if (len < 0)
		fuse_reply_err(req, -len);
	else
		reply_text(req, text, len, size);
}

/* -o noacl: inode ino's xattr names but the ACLs' into out (size 0: the length only) */
static ssize_t listxattr_noacl(uint64_t ino, char *out, size_t size)
{
	for (;;) {
		ssize_t n = ff_fs_listxattr(g_fs, ino, NULL, 0);
		size_t k = 0;
		char *all;

		if (n <= 0)
			return n;
		all = malloc((size_t)n);
		if (!all)
			return -ENOMEM;
		n = ff_fs_listxattr(g_fs, ino, all, (size_t)n);
		if (n == -ERANGE) { /* a name was added in between */
			free(all);
			continue;
		}
		for (char *p = all; n > 0 && p < all + n; p += strlen(p) + 1) {
			size_t len = strlen(p) + 1;

			if (acl_name(p))
				continue;
			if (size && k + len > size) {
				n = -ERANGE;
				break;
			}
			if (size)
				memcpy(out + k, p, len);
			k += len;
		}
		free(all);
		return n < 0 ? n : (ssize_t)k;
	}
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct stat st;
	static const char root[] = "user.foliofs.stats", file[] = "user.foliofs.zone";

	if (ns_format()) {
		char *buf = size ? malloc(size) : NULL;
		ssize_t n;

		if (size && !buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = g_o.noacl ? listxattr_noacl(to_ino(ino), buf, size)
			      : ff_fs_listxattr(g_fs, to_ino(ino), buf, size);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else if (size == 0)
			fuse_reply_xattr(req, (size_t)n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
	} else if (ino == FUSE_ROOT_ID)
		reply_text(req, root, sizeof(root), size);
	else if (!ff_fs_getattr(g_fs, to_ino(ino), &st) && S_ISREG(st.st_mode))
		reply_text(req, file, sizeof(file), size);
	else
		reply_text(req, "", 0, size);
}

/* ---- the namespace ---- */

/* Who asks, for the owner of what a call makes. */
static struct ff_cred req_cred(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	return (struct ff_cred){.uid = (uint32_t)c->uid, .gid = (uint32_t)c->gid};
}

/*
 * Reply to a call that returned an entry (ret 0, *st filled): the filesystem
 * counted one lookup of it, which the kernel now holds. If the reply cannot
 * be sent (the request was interrupted), the kernel never learnt of it and
 * the count is dropped here.
 */
static void reply_entry(fuse_req_t req, int ret, const struct stat *st)
{
	struct fuse_entry_param e = {0};

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	e.attr = *st;
	e.ino = to_node((uint64_t)st->st_ino);
	e.attr_timeout = attr_timeout(st);
	e.entry_timeout = entry_timeout();
	if (fuse_reply_entry(req, &e))
		ff_fs_forget(g_fs, (uint64_t)st->st_ino, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ff_fs_forget(g_fs, to_ino(ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		ff_fs_forget(g_fs, to_ino(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

/*
 * The mode a new node is made with: the kernel leaves the umask to us
 * (FUSE_CAP_DONT_MASK), which a default ACL of the directory replaces.
 */
static mode_t create_mode(fuse_req_t req, fuse_ino_t parent, mode_t mode)
{
	if (!ns_format())
		return mode; /* the kernel applied the umask */
	if (g_o.noacl)
		return mode & ~fuse_req_ctx(req)->umask;
	return ff_acl_create_mode(g_fs, to_ino(parent), mode, fuse_req_ctx(req)->umask);
}

/* After a node was made: what the directory's default ACL gives it, and *st anew. */
static void inherit_acl(fuse_ino_t parent, struct stat *st)
{
	int ret;

	if (!ns_format() || g_o.noacl)
		return;
	ret = ff_acl_inherit(g_fs, to_ino(parent), (uint64_t)st->st_ino, st->st_mode);

	if (!ret)
		ret = ff_fs_getattr(g_fs, (uint64_t)st->st_ino, st);
	/* the node is made and counted: failing now would leak its lookup */
	if (ret)
		ff_err("inheriting a default ACL for inode %llu: %s",
		       (unsigned long long)st->st_ino, strerror(-ret));
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct ff_cred cr = req_cred(req);
	struct stat st;
	int ret = ff_fs_mknod(g_fs, to_ino(parent), name, create_mode(req, parent, mode), rdev, &cr,
			      &st);

	if (!ret)
		inherit_acl(parent, &st);
	reply_entry(req, ret, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct ff_cred cr = req_cred(req);
	struct stat st;
	int ret = ff_fs_mkdir(g_fs, to_ino(parent), name, create_mode(req, parent, mode), &cr, &st);

	if (!ret)
		inherit_acl(parent, &st);
	reply_entry(req, ret, &st);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct ff_cred cr = req_cred(req);
	struct stat st;

	reply_entry(req, ff_fs_symlink(g_fs, to_ino(parent), name, target, &cr, &st), &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct stat st;

	reply_entry(req, ff_fs_link(g_fs, to_ino(ino), to_ino(newparent), newname, &st), &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n;

	count_req(NR_READLINK);
	n = ff_fs_readlink(g_fs, to_ino(ino), buf, sizeof(buf) - 1);

	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -ff_fs_unlink(g_fs, to_ino(parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -ff_fs_rmdir(g_fs, to_ino(parent), name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct ff_cred cr = req_cred(req);
	unsigned f = 0;

	/* anything newer than RENAME_WHITEOUT (overlayfs's): not supported */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= FF_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= FF_RENAME_EXCHANGE;
	if (flags & RENAME_WHITEOUT)
		f |= FF_RENAME_WHITEOUT;
	fuse_reply_err(
		req, -ff_fs_rename(g_fs, to_ino(parent), name, to_ino(newparent), newname, f, &cr));
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {0};
	struct ff_cred cr = req_cred(req);
	unsigned of = 0;
	int ret = ff_fs_create(g_fs, to_ino(parent), name, create_mode(req, parent, mode),
			       fi->flags, &cr, &e.attr, &of);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	inherit_acl(parent, &e.attr);
	e.ino = to_node((uint64_t)e.attr.st_ino);
	e.attr_timeout = attr_timeout(&e.attr);
	e.entry_timeout = entry_timeout();
	open_mode(e.ino, fi, of);
	/* the kernel never saw the open nor the entry: undo both */
	if (fuse_reply_create(req, &e, fi)) {
		if (fi->fh & FH_KCACHE)
			ff_kcache_release(e.ino);
		ff_fs_release(g_fs, (uint64_t)e.attr.st_ino, (int)(fi->fh & FH_FLAGS));
		ff_fs_forget(g_fs, (uint64_t)e.attr.st_ino, 1);
	}
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	remove_privs(req, ino);
	fuse_reply_err(req,
		       -ff_fs_fallocate(g_fs, to_ino(ino), mode, (uint64_t)off, (uint64_t)len));
}

/* Only SEEK_DATA and SEEK_HOLE reach here: the kernel answers the others itself. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	int64_t r;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = ff_fs_lseek(g_fs, to_ino(ino), (int64_t)off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, (off_t)r);
}

/*
 * READDIRPLUS: READDIR's entries and offsets (op_readdir), each with its
 * attributes and a node id, which the kernel counts as a lookup. So each
 * entry but . and .. (which carry node id 0: no count, as the kernel skips
 * them) is looked up again by name, which takes the count; an entry that
 * does not fit is forgotten again, and so is every entry of a reply that
 * could not be sent. An entry gone between the two calls is left out.
 */
static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	char *buf = calloc(1, size), name[256];
	uint64_t *taken = NULL, cookie, next;
	size_t pos = 0, n, ntaken = 0, cap = 0;
	struct fuse_entry_param e;
	struct stat st;
	int ret = 0;

	(void)fi;
	count_req(NR_READDIRPLUS);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i < 2; i++) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = to_ino(ino);
		e.attr.st_mode = S_IFDIR;
		n = fuse_add_direntry_plus(req, buf + pos, size - pos, i == 0 ? "." : "..", &e,
					   i + 1);
		if (n > size - pos)
			goto out_reply;
		pos += n;
	}
	for (cookie = off > 2 ? (uint64_t)off - 2 : 0;; cookie = next) {
		ret = ff_fs_readdir(g_fs, to_ino(ino), cookie, name, sizeof(name), &st, &next);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret)
			goto out_reply;
		memset(&e, 0, sizeof(e));
		ret = ff_fs_lookup(g_fs, to_ino(ino), name, &e.attr);
		if (ret == -ENOENT) {
			ret = 0;
			continue;
		}
		if (ret)
			goto out_reply;
		if (ntaken == cap) {
			uint64_t *t = realloc(taken, (cap ? cap * 2 : 32) * sizeof(*t));

			if (!t) {
				ff_fs_forget(g_fs, (uint64_t)e.attr.st_ino, 1);
				ret = -ENOMEM;
				goto out_reply;
			}
			taken = t;
			cap = cap ? cap * 2 : 32;
		}
		e.ino = to_node((uint64_t)e.attr.st_ino);
		e.attr_timeout = attr_timeout(&e.attr);
		e.entry_timeout = entry_timeout();
		n = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, (off_t)(next + 2));
		if (n > size - pos) {
			ff_fs_forget(g_fs, (uint64_t)e.attr.st_ino, 1);
			break;
		}
		taken[ntaken++] = (uint64_t)e.attr.st_ino;
		pos += n;
	}
out_reply:
	/* an error after some entries: return those, the error comes again on the next call */
	if (ret && pos == 0) {
		fuse_reply_err(req, -ret);
	} else if (fuse_reply_buf(req, buf, pos)) {
		for (size_t i = 0; i < ntaken; i++)
			ff_fs_forget(g_fs, taken[i], 1);
	}
	free(taken);
	free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	if (noacl_name(name))
		fuse_reply_err(req, EOPNOTSUPP);
	else if (ns_format())
		fuse_reply_err(req, -ff_acl_set(g_fs, to_ino(ino), name, value, size, flags));
	else
		fuse_reply_err(req, -ff_fs_setxattr(g_fs, to_ino(ino), name, value, size, flags));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (noacl_name(name))
		fuse_reply_err(req, EOPNOTSUPP);
	else
		fuse_reply_err(req, -ff_fs_removexattr(g_fs, to_ino(ino), name));
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
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
	.removexattr = op_removexattr,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.readdirplus = op_readdirplus,
};

/* ---- options into fs options ---- */

/*
 * ff_fs_opts.changed: the filesystem changed bytes, a size or a mode on its
 * own. kcache.c drops the bytes from the kernel page cache; the attributes
 * are dropped here, for every format (see attr_timeout).
 */
static void fs_changed(void *arg, uint64_t ino, uint64_t off, uint64_t len)
{
	int ret;

	(void)arg;
	ff_kcache_changed(to_node(ino), off, len);
	if (!g_se)
		return;
	ret = fuse_lowlevel_notify_inval_inode(g_se, to_node(ino), -1, 0);
	/* ENOENT: the kernel holds no inode, so no attributes, for it */
	if (ret && ret != -ENOENT)
		ff_warn("invalidating the kernel's attributes of inode %llu failed: %d",
			(unsigned long long)ino, ret);
}

/*
 * The filesystem went read-only (errors=remount-ro). FUSE's statfs reply has
 * no flags, so ST_RDONLY only reaches programs from the mount's own flags:
 * remount this mount point read-only, keeping its other per-mount flags (a
 * bind remount replaces them all), read from the mount table: a FUSE
 * request from this thread (statvfs of the mount point) could be left
 * unanswered when the daemon exits, and the thread, holding the device open,
 * would then keep the process from ever exiting. It runs in a thread of its
 * own, never inside the request that met the error. The kernel refuses the remount while a file is
 * open for writing, so it happens when the last such file is closed; until then, and without the
 * privilege (a user mount), the filesystem refuses every write with EROFS itself and only the flag
 * is missing.
 */
static void *remount_ro(void *arg)
{
	static const char *const keep[] = {"nosuid",  "nodev",	    "noexec",
					   "noatime", "nodiratime", "relatime"};
	static const unsigned long as[] = {MS_NOSUID,  MS_NODEV,      MS_NOEXEC,
					   MS_NOATIME, MS_NODIRATIME, MS_RELATIME};
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;

	(void)arg;
	/* the mount table, not statvfs: a request to this daemon could outlive it */
	while (f && (m = getmntent(f)))
		if (!strcmp(m->mnt_dir, g_mountpoint)) {
			flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
			for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
				if (hasmntopt(m, keep[k]))
					flags |= as[k];
		}
	if (f)
		endmntent(f);
	/* EBUSY: a file is open for writing; the kernel waits for none, so retry */
	while (mount(NULL, g_mountpoint, NULL, flags, NULL) != 0) {
		if (errno != EBUSY || atomic_load(&g_unmounting)) {
			ff_err("cannot remount %s read-only (%s): writes still fail with EROFS",
			       g_mountpoint, strerror(errno));
			break;
		}
		usleep(100 * 1000);
	}
	return NULL;
}

/* ff_fs_opts.went_read_only */
static void fs_went_read_only(void *arg)
{
	pthread_t t;

	(void)arg;
	if (!g_mountpoint[0] || pthread_create(&t, NULL, remount_ro, NULL) != 0)
		return;
	pthread_detach(t);
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
	if (g_o.defrag) {
		char *end;
		unsigned long v = strtoul(g_o.defrag, &end, 10);

		if (!strcmp(g_o.defrag, "off")) {
			fo->defrag_min = FF_DEFRAG_OFF;
		} else if (*g_o.defrag < '1' || *g_o.defrag > '9' || *end || v > 1000000) {
			ff_err("bad value for defrag: '%s' (off, or extents from 1 to 1000000)",
			       g_o.defrag);
			return -EINVAL;
		} else {
			fo->defrag_min = (uint32_t)v;
		}
	}
	fo->atime = (enum ff_atime)g_o.atime;
	if (g_o.commit) {
		char *end;
		unsigned long v = strtoul(g_o.commit, &end, 10);

		/* 0 is the default, as ext4's commit=0 */
		if (*g_o.commit < '0' || *g_o.commit > '9' || *end || v > FF_COMMIT_MAX_S) {
			ff_err("bad value for commit: '%s' (seconds, 0 to %u; 0: the default, %u)",
			       g_o.commit, FF_COMMIT_MAX_S, FF_COMMIT_DEFAULT_S);
			return -EINVAL;
		}
		fo->commit_s = (uint32_t)v;
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
	fo->discard = g_o.discard;
	fo->changed = fs_changed;
	fo->went_read_only = fs_went_read_only;
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
	struct statvfs sv;
	int pipefd[2] = {-1, -1}, ret = 1, r;
	bool log_pumping = false;
	pthread_t log_thr;

	if (argc > 1 && !strcmp(argv[1], "stat"))
		return ff_stat_main(argc - 1, argv + 1);
	r = ff_remount_main(argc, argv);
	if (r >= 0)
		return r;
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
	/*
	 * What a killed FUSE daemon leaves mounted answers ENOTCONN, though a
	 * stat may still be answered from the attributes the kernel cached: a
	 * statfs never is. A mount there would stack on the dead one.
	 */
	errno = 0; /* a stat that succeeds leaves it as it is */
	if (stat(cmd.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    (statvfs(cmd.mountpoint, &sv) < 0 && errno == ENOTCONN)) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"foliofs: mount point %s is a FUSE mount whose daemon is gone (killed?); unmount it first: umount %s\n",
				cmd.mountpoint, cmd.mountpoint);
		else if (errno)
			fprintf(stderr, "foliofs: mount point %s: %s\n", cmd.mountpoint,
				strerror(errno));
		else
			fprintf(stderr, "foliofs: mount point %s is not a directory\n",
				cmd.mountpoint);
		return 1;
	}
	/* check the device before anything is mounted: errors reach the terminal */
	if (ff_fs_check(g_o.device, g_o.ro))
		return 1;
	/* the kernel's permission checks, the setgid and sticky rules among them */
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
			if (status == READY_INIT_FAILED) {
				fprintf(stderr,
					"foliofs: the kernel's FUSE handshake failed (the daemon's messages are in the system log: journalctl -t foliofs); nothing is mounted\n");
				status = 1;
			}
			_exit(status);
		}
		close(pipefd[0]);
		setsid();
	}
	r = ff_fs_mount(g_o.device, &fo, &g_fs);
	if (r) {
		fprintf(stderr, "foliofs: cannot mount %s: %s\n", g_o.device, strerror(-r));
		goto out;
	}
	/*
	 * A namespace is for every user, as a kernel filesystem's is: mounted
	 * by root, others may use it too (default_permissions checks them),
	 * and its device nodes and setuid files work (FUSE's default is nodev,
	 * nosuid). Only root may ask that without user_allow_other in
	 * /etc/fuse.conf. Put before the user's options, which libfuse
	 * applies in order: -o nodev,nosuid still wins.
	 */
	if (ns_format() && geteuid() == 0)
		fuse_opt_insert_arg(&args, 1, "-oallow_other,dev,suid");
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) {
		fprintf(stderr,
			"foliofs: unknown or bad mount option(s) (see above); nothing was mounted\n");
		goto out_fs;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	g_max_pages = ff_req_max_pages();
	if (fuse_session_mount(se, cmd.mountpoint) != 0) {
		fprintf(stderr, "foliofs: cannot mount on %s\n", cmd.mountpoint);
		goto out_signals;
	}
	snprintf(g_mountpoint, sizeof(g_mountpoint), "%s", cmd.mountpoint);
	if (fuse_session_custom_io(se, &conn_io, fuse_session_fd(se)) != 0)
		goto out_unmount;
	/*
	 * kcache.c's invalidation may wait on a READ that only another worker
	 * can serve (not -s). The posix format has no fixed-size file: by
	 * default none of its opens is cached, and its mounts keep the
	 * kernel's own invalidation on attribute changes
	 * (FUSE_CAP_AUTO_INVAL_DATA) for its mappings.
	 */
	ff_kcache_start(se,
			!cmd.singlethread && !g_o.direct_io && (g_o.kernel_cache || !ns_format()));
	g_se = se;
	g_selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
	if (!cmd.foreground) {
		int nul = open("/dev/null", O_RDWR);

		/* the parent exits once the INIT is answered (conn_writev) */
		g_ready_fd = pipefd[1];
		pipefd[1] = -1;
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
	ready(READY_INIT_FAILED); /* the loop ended before the INIT was answered */
	atomic_store(&g_unmounting, true);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	/* everything dirty goes to the device before the daemon exits */
	r = ff_fs_unmount(g_fs);
	if (r) {
		ff_err("%s: writing back at unmount failed: %s", g_o.device, strerror(-r));
		ret = 1;
	}
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
