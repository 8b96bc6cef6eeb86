// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nullfs: the FUSE ceiling for bench/run. A minimal lowlevel FUSE filesystem
 * that keeps its data in memory and does no I/O, mounted with the same FUSE
 * settings as foliofs (the kernel page cache for read-only opens without
 * O_DIRECT and FOPEN_DIRECT_IO for the others, or for every open with
 * -o direct_io; max_write one page less than max_pages, async DIO, no
 * writeback cache, no auto_inval_data, the multithreaded loop with the same
 * thread limits). Whatever foliofs measures above this is foliofs's own cost.
 * Unlike foliofs it sends no invalidations: nothing changes its files behind
 * the kernel's back but direct_io writes, which the kernel sees.
 *
 * The root holds NULLFS_FILES files named "0".."7" so that the multi-writer
 * workload (one file per writer, as on foliofs's seq/ zones) can run; each is
 * a sparse anonymous mapping of NULLFS_CAP bytes that only costs the memory
 * written into it. A write copies the data in (as foliofs copies into a
 * folio) and may extend the size; a read replies straight from memory;
 * truncate sets the size (memory is kept, and faulted in huge pages where THP
 * allows); fsync is a no-op.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "reqsize.h"

#define NULLFS_FILES 8
#define NULLFS_CAP   (4ull << 30)
#define MAX_IO	     (1u << 20)
#define PAGE_SZ	     FF_REQ_PAGE_SZ

struct nfile {
	char *mem;
	_Atomic uint64_t size;
	pthread_mutex_t lock; /* serialises size changes (appends, truncate) */
};

static struct nfile files[NULLFS_FILES];
static int direct_all; /* -o direct_io: FOPEN_DIRECT_IO on every open */

static const struct fuse_opt opt_spec[] = {
	{"direct_io", 0, 1},
	FUSE_OPT_END,
};

/*
 * foliofs's request size (src/fuse/main.c): max_pages the kernel's
 * max_pages_limit up to 257 (reqsize.h), max_write one page short of it,
 * and max_pages raised to that in the INIT reply, which libfuse 3.14
 * derives from max_write.
 */
static unsigned max_pages = FF_REQ_DEFAULT_PAGES;
static _Thread_local bool init_reply_next;

static ssize_t conn_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct fuse_init_out out;
	struct iovec v[2];

	(void)ud;
	if (!init_reply_next)
		return writev(fd, iov, count);
	init_reply_next = false;
	if (count != 2 || iov[1].iov_len < offsetof(struct fuse_init_out, map_alignment) ||
	    iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (out.max_pages && out.max_write == (max_pages - 1) * PAGE_SZ)
		out.max_pages = (uint16_t)max_pages;
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

/* node 1 is the root; file i is node i + 2 */
static struct nfile *node_file(fuse_ino_t ino)
{
	if (ino < 2 || ino >= 2 + NULLFS_FILES)
		return NULL;
	return &files[ino - 2];
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	struct nfile *f = node_file(ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (!f) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = (off_t)atomic_load_explicit(&f->size, memory_order_acquire);
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->max_write = (max_pages - 1) * PAGE_SZ;
	init_reply_next = true; /* libfuse sends the reply from this thread, next */
	conn->max_readahead = MAX_IO;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (!direct_all) {
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
	char *end;
	long i = strtol(name, &end, 10);

	if (parent != FUSE_ROOT_ID || *end || end == name || i < 0 || i >= NULLFS_FILES) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = (fuse_ino_t)i + 2;
	fill_attr(e.ino, &e.attr);
	e.attr_timeout = 0.0; /* sizes move with every append, as on foliofs */
	e.entry_timeout = 3600.0;
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && !node_file(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, ino == FUSE_ROOT_ID ? 3600.0 : 0.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct nfile *f = node_file(ino);
	struct stat st;

	(void)fi;
	if (f && (to_set & FUSE_SET_ATTR_SIZE)) {
		uint64_t ns = (uint64_t)attr->st_size, old;

		if (ns > NULLFS_CAP) {
			fuse_reply_err(req, EFBIG);
			return;
		}
		pthread_mutex_lock(&f->lock);
		old = atomic_load_explicit(&f->size, memory_order_relaxed);
		/*
		 * the memory is kept past a shrink (refaulting it on every append run
		 * would make the ceiling a page-fault benchmark); a grow reads as zeros
		 */
		if (ns > old)
			memset(f->mem + old, 0, ns - old);
		atomic_store_explicit(&f->size, ns, memory_order_release);
		pthread_mutex_unlock(&f->lock);
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 0.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char buf[4096], name[16];
	size_t pos = 0;
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (off_t i = off; i < NULLFS_FILES + 2; i++) {
		size_t n;

		memset(&st, 0, sizeof(st));
		if (i < 2) {
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
			snprintf(name, sizeof(name), "%s", i == 0 ? "." : "..");
		} else {
			st.st_ino = (ino_t)i;
			st.st_mode = S_IFREG;
			snprintf(name, sizeof(name), "%d", (int)(i - 2));
		}
		n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		if (n > size - pos)
			break;
		pos += n;
	}
	fuse_reply_buf(req, buf, pos);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!node_file(ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->direct_io = direct_all || (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_DIRECT);
	fi->keep_cache = !fi->direct_io;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct nfile *f = node_file(ino);
	uint64_t sz;

	(void)fi;
	if (!f) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	sz = atomic_load_explicit(&f->size, memory_order_acquire);
	if ((uint64_t)off >= sz) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > sz - (uint64_t)off)
		size = (size_t)(sz - (uint64_t)off);
	fuse_reply_buf(req, f->mem + off, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct nfile *f = node_file(ino);
	uint64_t end = (uint64_t)off + size;

	(void)fi;
	if (!f) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (end > NULLFS_CAP) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	memcpy(f->mem + off, buf, size);
	if (end > atomic_load_explicit(&f->size, memory_order_acquire)) {
		pthread_mutex_lock(&f->lock);
		if (end > atomic_load_explicit(&f->size, memory_order_relaxed))
			atomic_store_explicit(&f->size, end, memory_order_release);
		pthread_mutex_unlock(&f->lock);
	}
	fuse_reply_write(req, size);
}

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	op_ok(req, ino, fi);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.release = op_ok,
	.flush = op_ok,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	int ret = 1;

	if (fuse_parse_cmdline(&args, &cmd) != 0 || !cmd.mountpoint) {
		fprintf(stderr, "usage: %s [-f] [-o OPT,...] MOUNTPOINT\n", argv[0]);
		return 2;
	}
	if (fuse_opt_parse(&args, &direct_all, opt_spec, NULL) == -1)
		return 2;
	for (int i = 0; i < NULLFS_FILES; i++) {
		files[i].mem = mmap(NULL, NULLFS_CAP, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (files[i].mem == MAP_FAILED) {
			perror("nullfs: mmap");
			return 1;
		}
		madvise(files[i].mem, NULLFS_CAP, MADV_HUGEPAGE);
		pthread_mutex_init(&files[i].lock, NULL);
	}
	fuse_opt_add_arg(&args, "-ofsname=nullfs,subtype=nullfs");
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	max_pages = ff_req_max_pages();
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out_signals;
	if (fuse_session_custom_io(se, &conn_io, fuse_session_fd(se)) != 0)
		goto out_unmount;
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out_unmount;
	/* the same loop settings as foliofs (src/fuse/main.c) */
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, cmd.clone_fd);
	fuse_loop_cfg_set_max_threads(
		cfg, cmd.max_threads && cmd.max_threads <= 100000 ? cmd.max_threads : 16);
	fuse_loop_cfg_set_idle_threads(cfg, cmd.max_idle_threads ? cmd.max_idle_threads : 8);
	ret = fuse_session_loop_mt(se, cfg) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(cfg);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out:
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
