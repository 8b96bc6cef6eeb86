// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The device handle: opening a path and picking its kind (regular, emulated
 * zoned, kernel zoned), the regular backend, and the dispatch of the public
 * ff_dev_* calls to the backend with their counters.
 *
 * Kind selection: a block device the kernel reports as zoned is opened through
 * libzbd (zbd.c); otherwise, if the last logical block holds the emulation
 * trailer written by ff_dev_format_emulated(), the device is emulated-zoned
 * (emu.c) — or regular with the trailer's zone size when the trailer says all
 * zones are conventional —; anything else is a regular device cut into zones
 * of opts->zone_size.
 */
#include <errno.h>
#include <fcntl.h>
#include <libzbd/zbd.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

int (*ff_dev_fault_hook)(struct ff_dev *dev, uint64_t off, size_t len);

const char *ff_dev_kind_name(enum ff_dev_kind kind)
{
	switch (kind) {
	case FF_DEV_REGULAR:
		return "regular";
	case FF_DEV_EMULATED:
		return "emulated-zoned";
	case FF_DEV_ZONED:
		return "zoned";
	}
	return "unknown";
}

/* Checks every I/O must pass on any kind: alignment and bounds. */
static int check_io(const struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		    size_t len)
{
	uint32_t lb = dev->info.lblock_size;

	if (iovcnt <= 0 || iovcnt > IOV_MAX || !len)
		return -EINVAL;
	if (off % lb || len % lb)
		return -EINVAL;
	if (off + len > dev->info.size || off + len < off)
		return -EINVAL;
	if (dev->direct) {
		for (int i = 0; i < iovcnt; i++)
			if ((uintptr_t)iov[i].iov_base % lb)
				return -EINVAL;
	}
	return 0;
}

/* ---- regular backend: every zone conventional ---- */

static ssize_t regular_rw(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
			  bool write, unsigned flags)
{
	if (write && ff_dev_fault_hook) {
		int err = ff_dev_fault_hook(dev, off, iov_len_sum(iov, iovcnt));

		if (err)
			return err;
	}
	if (!dev->direct && write && (flags & FF_IO_DSYNC)) {
		ssize_t r = ff_dev_raw_rw(dev, iov, iovcnt, off, true, 0);

		if (r >= 0) {
			int e = ff_dev_raw_fsync(dev);

			if (e)
				return e;
		}
		return r;
	}
	return ff_dev_raw_rw(dev, iov, iovcnt, off, write, flags);
}

static int regular_flush(struct ff_dev *dev)
{
	return ff_dev_raw_fsync(dev);
}

static int regular_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	const struct ff_dev_info *di = &dev->info;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t start = (uint64_t)(first + i) * di->zone_size;

		out[i] = (struct ff_zone){.start = start,
					  .len = di->zone_size,
					  .cap = di->zone_size,
					  .wp = start,
					  .type = FF_ZONE_CNV,
					  .cond = FF_ZC_NOT_WP};
	}
	return (int)n;
}

static int regular_zone_op(struct ff_dev *dev, uint32_t zone, enum ff_zone_op op)
{
	(void)dev;
	(void)zone;
	(void)op;
	return -EINVAL; /* conventional zones have no write pointer */
}

static void regular_close(struct ff_dev *dev)
{
	(void)dev;
}

const struct dev_backend ff_dev_regular_be = {
	.rw = regular_rw,
	.flush = regular_flush,
	.report = regular_report,
	.zone_op = regular_zone_op,
	.close = regular_close,
};

/* ---- open / close ---- */

/* How long a device's one user is waited for at least: a daemon killed or just unmounted */
#define LOCK_WAIT_MS 2000

/*
 * One mount per device: a second daemon on a mounted image file would keep
 * its own cache and write pointers over the same zones (O_EXCL does this for
 * block devices only), and mkfs must not format an image in use. Lock fd
 * (shared or exclusive), trying every 50 ms for wait_ms: a daemon just
 * killed releases its lock only when the kernel has torn down its io_uring
 * (asynchronously, after the exit), and one just unmounted may still be
 * writing back. Returns 0, -EBUSY (said to the user) or -errno. May sleep.
 */
int ff_flock_wait(int fd, const char *path, bool shared, unsigned wait_ms)
{
	for (unsigned waited = 0;; waited += 50) {
		if (!flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (waited >= wait_ms)
			break;
		if (waited == LOCK_WAIT_MS)
			ff_warn("%s: waiting up to %us for the previous foliofs to finish writing back",
				path, wait_ms / 1000);
		usleep(50000);
	}
	ff_err("%s is in use by another foliofs (mounted, or being formatted); unmount it first",
	       path);
	return -EBUSY;
}

/* ff_dev_lock_image(), waiting up to wait_ms for the device's user to let go */
static int lock_image(const char *path, struct ff_dev_lock *lk, unsigned wait_ms)
{
	struct stat st;
	int fd, ret;

	lk->fd = lk->backing_fd = -1;
	if (stat(path, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)))
		return 0; /* the open that follows says what is wrong */
	if (S_ISBLK(st.st_mode)) {
		/*
		 * The kernel's claim: fails while mounted or held by another
		 * O_EXCL open, tried for wait_ms as ff_flock_wait does, for a
		 * daemon just unmounted that is exiting.
		 */
		for (unsigned waited = 0;; waited += 50) {
			fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
			if (fd >= 0 || errno != EBUSY || waited >= wait_ms)
				break;
			usleep(50000);
		}
		if (fd < 0) {
			ret = -errno;
			if (ret == -EBUSY)
				ff_err("%s is in use (mounted, or opened by another foliofs or tool); unmount it first",
				       path);
			else
				ff_err("cannot open %s: %s", path, strerror(-ret));
			return ret;
		}
		/* a loop device: the file under it is the same device (loop.c) */
		ret = ff_loop_lock_backing(fd, path, false, wait_ms, &lk->backing_fd);
		if (ret) {
			close(fd);
			return ret;
		}
		lk->fd = fd;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ff_flock_wait(fd, path, false, wait_ms);
	if (!ret)
		ret = ff_loop_check_over(fd, path);
	if (ret) {
		close(fd);
		return ret;
	}
	lk->fd = fd;
	return 0;
}

int ff_dev_lock_image(const char *path, struct ff_dev_lock *lk)
{
	return lock_image(path, lk, LOCK_WAIT_MS);
}

int ff_dev_check_writable(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), ro = 0, err;
	struct stat st;

	if (fd < 0) {
		err = -errno;
		if (err != -EROFS && err != -EACCES && err != -EPERM)
			return 0;
		ff_err("cannot open %s for writing: %s; nothing was written", path, strerror(-err));
		return err;
	}
	/* the kernel lets a read-only block device be opened for writing */
	err = !fstat(fd, &st) && S_ISBLK(st.st_mode) && !ioctl(fd, BLKROGET, &ro) && ro ? -EROFS
											: 0;
	close(fd);
	if (err)
		ff_err("%s is a read-only device; nothing was written", path);
	return err;
}

bool ff_dev_report_in_use(const char *path)
{
	struct ff_dev_lock lk;
	int ret = lock_image(path, &lk, 0);

	ff_dev_unlock_image(&lk);
	return ret == -EBUSY;
}

void ff_dev_unlock_image(struct ff_dev_lock *lk)
{
	if (lk->fd >= 0)
		close(lk->fd);
	if (lk->backing_fd >= 0)
		close(lk->backing_fd);
	lk->fd = lk->backing_fd = -1;
}

static int open_fd(struct ff_dev *dev, const char *path, const struct ff_dev_opts *o, bool blk)
{
	int flags = (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	if (blk && o->exclusive)
		flags |= O_EXCL;
	dev->fd = open(path, flags | O_DIRECT);
	dev->direct = true;
	if (dev->fd < 0 && errno == EINVAL) {
		ff_warn("%s: O_DIRECT refused by its filesystem; using buffered I/O", path);
		dev->fd = open(path, flags);
		dev->direct = false;
	}
	if (dev->fd < 0) {
		int err = -errno;

		if (err == -EBUSY)
			ff_err("%s is in use (mounted or opened exclusively)", path);
		else if (!o->read_only && (err == -EROFS || err == -EACCES))
			ff_err("cannot open %s for writing: %s (a read-only device mounts with -o ro)",
			       path, strerror(-err));
		else
			ff_err("cannot open %s: %s", path, strerror(-err));
		return err;
	}
	if (o->exclusive) {
		/* LOCK_WAIT_MS at least (a killed daemon's lock), or the caller's lock_wait_s */
		unsigned wait =
			o->lock_wait_s > LOCK_WAIT_MS / 1000 ? o->lock_wait_s * 1000 : LOCK_WAIT_MS;
		int ret = ff_flock_wait(dev->fd, path, o->read_only, wait);

		/* a loop device and the file under it are one device (loop.c) */
		if (!ret)
			ret = blk ? ff_loop_lock_backing(dev->fd, path, o->read_only, wait,
							 &dev->lock_fd)
				  : ff_loop_check_over(dev->fd, path);
		if (ret == -EBUSY) {
			close(dev->fd);
			dev->fd = -1;
			return -EBUSY;
		}
	}
	return 0;
}

int ff_dev_open(const char *path, const struct ff_dev_opts *opts, struct ff_dev **out)
{
	struct ff_dev_opts defo = {0};
	struct ff_dev *dev;
	struct stat st;
	uint64_t raw_size;
	bool blk;
	int ret;

	*out = NULL;
	if (!opts)
		opts = &defo;
	if (stat(path, &st) < 0) {
		ret = -errno;
		ff_err("cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		ff_err("%s is a directory, not a device or image file", path);
		return -EISDIR;
	}
	blk = S_ISBLK(st.st_mode);
	if (!blk && !S_ISREG(st.st_mode)) {
		ff_err("%s is neither a block device nor a regular file", path);
		return -ENODEV;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fd = dev->lock_fd = -1;
	dev->discard = opts->discard;
	dev->path = strdup(path);
	if (!dev->path) {
		ret = -ENOMEM;
		goto out_free;
	}
	dev->info.read_only = opts->read_only;
	if (blk && zbd_device_is_zoned(path) == 1) {
		ret = ff_zbd_open(dev, path, opts);
		if (ret)
			goto out_free;
		goto out_zoneq;
	}
	ret = open_fd(dev, path, opts, blk);
	if (ret)
		goto out_free;
	if (blk) {
		int lbs = 512, pbs = 512;
		uint64_t sz = 0;

		if (ioctl(dev->fd, BLKGETSIZE64, &sz) < 0 || ioctl(dev->fd, BLKSSZGET, &lbs) < 0) {
			ret = -errno;
			ff_err("%s: cannot read the block device's size", path);
			goto out_close;
		}
		if (ioctl(dev->fd, BLKPBSZGET, &pbs) < 0)
			pbs = lbs;
		{
			int ro = 0;

			/* the kernel lets a read-only device be opened for writing */
			if (!opts->read_only && ioctl(dev->fd, BLKROGET, &ro) == 0 && ro) {
				ff_err("%s is a read-only device; mount it with -o ro", path);
				ret = -EROFS;
				goto out_close;
			}
		}
		raw_size = sz;
		dev->info.lblock_size = (uint32_t)lbs;
		dev->info.pblock_size = (uint32_t)pbs;
	} else {
		raw_size = (uint64_t)st.st_size;
		dev->info.lblock_size = 4096;
		dev->info.pblock_size = 4096;
	}
	dev->info.write_gran = dev->info.lblock_size;
	ret = ff_emu_probe(dev, raw_size, opts->formatted_size);
	if (ret < 0)
		goto out_close;
	if (ret == 0) {
		uint64_t zs = opts->zone_size ? opts->zone_size : FF_DEV_DEFAULT_ZONE_SIZE;

		if (zs % dev->info.lblock_size) {
			ff_err("%s: zone size %llu is not a multiple of the %u-byte block", path,
			       (unsigned long long)zs, dev->info.lblock_size);
			ret = -EINVAL;
			goto out_close;
		}
		dev->be = &ff_dev_regular_be;
		dev->info.kind = FF_DEV_REGULAR;
		dev->info.zone_size = zs;
		/* a trailing partial zone is not used */
		dev->info.nr_zones = (uint32_t)(raw_size / zs);
		dev->info.nr_cnv_zones = dev->info.nr_zones;
		dev->info.size = (uint64_t)dev->info.nr_zones * zs;
	}
	if (dev->info.nr_zones < 2) {
		if (!opts || !opts->quiet_small)
			ff_err("%s is too small: %llu bytes make %u zone(s) of %llu bytes; at least 2 needed (give a smaller --zone-size to mkfs.foliofs)",
			       path, (unsigned long long)raw_size, dev->info.nr_zones,
			       (unsigned long long)dev->info.zone_size);
		ret = -ENOSPC;
		goto out_close;
	}
out_zoneq:
	dev->fault = ff_fault_open(dev);
	if (dev->fault == (struct ff_fault *)(intptr_t)-1) {
		dev->fault = NULL;
		ret = -EINVAL;
		goto out_close;
	}
	if (ff_fault_lblock(dev->fault))
		dev->info.lblock_size = dev->info.write_gran = dev->info.pblock_size =
			ff_fault_lblock(dev->fault);
	ret = ff_zoneq_init(dev);
	if (ret)
		goto out_close;
	*out = dev;
	return 0;
out_close:
	ff_fault_close(dev->fault);
	if (dev->be)
		dev->be->close(dev);
	if (dev->fd >= 0)
		close(dev->fd);
	if (dev->lock_fd >= 0)
		close(dev->lock_fd);
out_free:
	free(dev->path);
	free(dev);
	return ret;
}

void ff_dev_close(struct ff_dev *dev)
{
	if (!dev)
		return;
	ff_zoneq_fini(dev);
	dev->be->close(dev);
	ff_fault_close(dev->fault);
	if (dev->fd >= 0)
		close(dev->fd);
	if (dev->lock_fd >= 0)
		close(dev->lock_fd);
	free(dev->path);
	free(dev);
}

const struct ff_dev_info *ff_dev_info(const struct ff_dev *dev)
{
	return &dev->info;
}

/* ---- I/O dispatch ---- */

static void count_io(struct ff_dev *dev, bool write, unsigned flags, ssize_t res)
{
	if (res < 0) {
		atomic_fetch_add_explicit(write ? &dev->st_write_errors : &dev->st_read_errors, 1,
					  memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(write ? &dev->st_writes : &dev->st_reads, 1,
				  memory_order_relaxed);
	if (write && (flags & FF_IO_DSYNC))
		atomic_fetch_add_explicit(&dev->st_fua_writes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(write ? &dev->st_bytes_written : &dev->st_bytes_read,
				  (uint64_t)res, memory_order_relaxed);
}

ssize_t ff_dev_read(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	size_t len = iov_len_sum(iov, iovcnt);
	ssize_t res = check_io(dev, iov, iovcnt, off, len);

	if (!res)
		res = dev->be->rw(dev, iov, iovcnt, off, false, 0);
	count_io(dev, false, 0, res);
	return res;
}

uint64_t ff_dev_flush_gen_next(struct ff_dev *dev)
{
	return atomic_load(&dev->flush_started) + 1;
}

bool ff_dev_gen_durable(struct ff_dev *dev, uint64_t gen)
{
	return atomic_load(&dev->flush_done) >= gen;
}

/* A write without FF_IO_DSYNC completed: it is durable only after a later flush. */
static void note_volatile(struct ff_dev *dev)
{
	uint64_t gen = ff_dev_flush_gen_next(dev), cur = atomic_load(&dev->volatile_gen);

	while (cur < gen && !atomic_compare_exchange_weak(&dev->volatile_gen, &cur, gen))
		;
}

int ff_dev_preflush(struct ff_dev *dev)
{
	if (ff_dev_gen_durable(dev, atomic_load(&dev->volatile_gen)))
		return 0;
	return ff_dev_flush(dev);
}

ssize_t ff_dev_issue_write(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
			   unsigned flags)
{
	size_t len = iov_len_sum(iov, iovcnt);
	ssize_t res;

	if (dev->info.read_only)
		return -EROFS;
	res = check_io(dev, iov, iovcnt, off, len);
	if (!res && (flags & FF_IO_PREFLUSH))
		res = ff_dev_preflush(dev);
	if (!res)
		res = dev->be->rw(dev, iov, iovcnt, off, true, flags & FF_IO_DSYNC);
	count_io(dev, true, flags, res);
	if (res > 0 && !(flags & FF_IO_DSYNC))
		note_volatile(dev);
	return res;
}

ssize_t ff_dev_write(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		     unsigned flags)
{
	/* invariant 1: a sequential zone is written through its queue only */
	if (ff_zoneq_touches_seq(dev, off, iov_len_sum(iov, iovcnt)))
		return -EINVAL;
	return ff_dev_issue_write(dev, iov, iovcnt, off, flags);
}

/*
 * Whether ios may go to the device together in one ring submission: the fd
 * is O_DIRECT (a buffered one makes FF_IO_DSYNC a write and an fsync), every
 * I/O is valid, and none touches a sequential zone (writes there go through
 * the zone queue; reads there are cut at the pointer by the backend). Every
 * backend writes and reads conventional space with the same raw I/O, so
 * such a batch is one ff_dev_raw_batch() whatever the kind.
 */
static bool batchable(struct ff_dev *dev, struct ff_io *ios, int n)
{
	if (!dev->direct)
		return false;
	for (int i = 0; i < n; i++) {
		size_t len = iov_len_sum(ios[i].iov, ios[i].iovcnt);

		if (check_io(dev, ios[i].iov, ios[i].iovcnt, ios[i].off, len))
			return false;
		if (ios[i].write && dev->info.read_only)
			return false;
		if (ff_zoneq_touches_seq(dev, ios[i].off, len))
			return false;
	}
	return true;
}

static void note_batch(struct ff_dev *dev, int k)
{
	uint64_t cur = atomic_load_explicit(&dev->st_batch_max, memory_order_relaxed);

	while (cur < (uint64_t)k &&
	       !atomic_compare_exchange_weak_explicit(&dev->st_batch_max, &cur, (uint64_t)k,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/*
 * The I/Os that the test hook lets through go to the ring together; the hook
 * fails the others one by one, as it fails a single write. Returns 0 or the
 * ring's error, which every I/O submitted then carries.
 */
static int batch_go(struct ff_dev *dev, struct ff_io *ios, int n)
{
	struct ff_io *go = ios;
	int *map = NULL, k = n, ret = 0;

	if (ff_dev_fault_hook) {
		go = calloc((size_t)n, sizeof(*go));
		map = calloc((size_t)n, sizeof(*map));
		if (!go || !map) {
			for (int i = 0; i < n; i++)
				ios[i].res = -ENOMEM;
			goto out_free;
		}
		k = 0;
		for (int i = 0; i < n; i++) {
			size_t len = iov_len_sum(ios[i].iov, ios[i].iovcnt);
			int err = ios[i].write ? ff_dev_fault_hook(dev, ios[i].off, len) : 0;

			if (err) {
				ios[i].res = err;
				continue;
			}
			map[k] = i;
			go[k++] = ios[i];
		}
	}
	if (k) {
		note_batch(dev, k);
		ret = ff_dev_raw_batch(dev, go, k);
	}
	for (int j = 0; j < k; j++)
		ios[go == ios ? j : map[j]].res = ret ? ret : go[j].res;
out_free:
	if (go != ios)
		free(go);
	free(map);
	return ret;
}

int ff_dev_submit_batch(struct ff_dev *dev, struct ff_io *ios, int n)
{
	bool preflush = false;
	int ret;

	if (n <= 0)
		return 0;
	if (!batchable(dev, ios, n)) {
		/* one I/O at a time for the zone checks: ff_dev_write refuses sequential zones */
		for (int i = 0; i < n; i++)
			ios[i].res = ios[i].write ? ff_dev_write(dev, ios[i].iov, ios[i].iovcnt,
								 ios[i].off, ios[i].flags)
						  : ff_dev_read(dev, ios[i].iov, ios[i].iovcnt,
								ios[i].off);
		return 0;
	}
	for (int i = 0; i < n; i++)
		preflush |= ios[i].write && (ios[i].flags & FF_IO_PREFLUSH);
	if (preflush && (ret = ff_dev_preflush(dev))) {
		for (int i = 0; i < n; i++)
			ios[i].res = ret;
		return 0;
	}
	ret = batch_go(dev, ios, n);
	for (int i = 0; i < n; i++) {
		count_io(dev, ios[i].write, ios[i].flags, ios[i].res);
		if (ios[i].write && ios[i].res > 0 && !(ios[i].flags & FF_IO_DSYNC))
			note_volatile(dev);
	}
	return ret;
}

int ff_dev_flush(struct ff_dev *dev)
{
	uint64_t gen = atomic_fetch_add(&dev->flush_started, 1) + 1, cur;
	int ret = dev->be->flush(dev);

	if (!ret) {
		atomic_fetch_add_explicit(&dev->st_flushes, 1, memory_order_relaxed);
		cur = atomic_load(&dev->flush_done);
		while (cur < gen && !atomic_compare_exchange_weak(&dev->flush_done, &cur, gen))
			;
	}
	return ret;
}

int ff_dev_sync(struct ff_dev *dev)
{
	if (ff_dev_gen_durable(dev, atomic_load(&dev->volatile_gen)) &&
	    (!dev->emu || !ff_emu_records_pending(dev)))
		return 0;
	return ff_dev_flush(dev);
}

uint32_t ff_dev_zone_of(const struct ff_dev *dev, uint64_t off)
{
	return (uint32_t)(off / dev->info.zone_size);
}

int ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	if (first >= dev->info.nr_zones)
		return -EINVAL;
	if (n > dev->info.nr_zones - first)
		n = dev->info.nr_zones - first;
	return dev->be->report(dev, first, n, out);
}

int ff_dev_zone_op(struct ff_dev *dev, uint32_t zone, enum ff_zone_op op)
{
	int ret;

	if (zone >= dev->info.nr_zones)
		return -EINVAL;
	if (dev->info.read_only)
		return -EROFS;
	ret = dev->be->zone_op(dev, zone, op);
	if (!ret)
		atomic_fetch_add_explicit(&dev->st_zone_ops, 1, memory_order_relaxed);
	return ret;
}

void ff_dev_stats(const struct ff_dev *dev, struct ff_dev_stats *out)
{
	struct ff_dev *d = (struct ff_dev *)dev;

	out->reads = atomic_load_explicit(&d->st_reads, memory_order_relaxed);
	out->writes = atomic_load_explicit(&d->st_writes, memory_order_relaxed);
	out->flushes = atomic_load_explicit(&d->st_flushes, memory_order_relaxed);
	out->fua_writes = atomic_load_explicit(&d->st_fua_writes, memory_order_relaxed);
	out->zone_ops = atomic_load_explicit(&d->st_zone_ops, memory_order_relaxed);
	out->bytes_read = atomic_load_explicit(&d->st_bytes_read, memory_order_relaxed);
	out->bytes_written = atomic_load_explicit(&d->st_bytes_written, memory_order_relaxed);
	out->read_errors = atomic_load_explicit(&d->st_read_errors, memory_order_relaxed);
	out->write_errors = atomic_load_explicit(&d->st_write_errors, memory_order_relaxed);
	out->meta_bytes = atomic_load_explicit(&d->st_meta_bytes, memory_order_relaxed);
	out->batch_max = atomic_load_explicit(&d->st_batch_max, memory_order_relaxed);
}
