// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fault injection for the crash and error tests (include/foliofs/fault.h has
 * the FOLIOFS_FAULT syntax). Every raw I/O the device layer makes to its fd
 * goes through ff_dev_raw_rw/_fsync/_batch below; with no FOLIOFS_FAULT in
 * the environment when the device was opened (dev->fault == NULL) they are
 * straight calls into uring.c.
 *
 * The volatile write cache model. A real device may acknowledge a write
 * before it is durable and, at a power cut, lose any of the writes not yet
 * covered by a FUA/RWF_DSYNC or a completed cache flush, in whatever order it
 * reordered them. Here the image always receives every write (so reads see
 * them, as from a device cache), and before each non-durable write the bytes
 * it overwrites are appended to the log file (vlog=). A completed flush
 * appends a marker: every write logged before the flush began is durable;
 * when nothing was logged meanwhile the log is simply emptied. A write
 * logged with FF_IO_DSYNC is durable by itself. After the process is gone
 * (kill -9: nothing is in flight any more), ff_fault_apply_cut() walks the
 * log newest first and undoes a random subset of the non-durable writes,
 * except on bytes a newer kept write already decided. That is exactly the
 * set of images a device could hold: each byte holds the newest surviving
 * write to it.
 *
 * A write in flight at the moment of the cut was logged before it was issued,
 * so it may be kept or dropped; a flush that completes after the device died
 * reports EIO (its writes may be undone, so it must not claim durability).
 *
 * Locking: f->lock guards every counter, the dead flag and the log file; it
 * is held across the read of the bytes a write is about to overwrite so that
 * log order is issue order. Only tests run with it on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/fault.h"
#include "internal.h"

#define VLOG_MAGIC   0x4c564646u /* "FFVL" */
#define VLOG_WRITE   1u
#define VLOG_FLUSH   2u
#define VLOG_DURABLE 1u
#define FAULT_DROP   1 /* hook result: acknowledge the write without doing it */

struct vlog_hdr {
	uint32_t magic;
	uint32_t type;
	uint64_t seq; /* WRITE: its sequence number; FLUSH: writes below are durable */
	uint64_t off;
	uint64_t len;	   /* WRITE: bytes written */
	uint64_t data_len; /* WRITE: bytes of old data following (0 when durable) */
	uint32_t flags;
	uint32_t keep; /* used by ff_fault_apply_cut() only */
};

struct ff_fault {
	struct ff_mutex lock;
	uint64_t dead_after, fail_write, fail_read, fail_flush, fail_count;
	uint64_t range_lo, range_hi; /* fail_* count only I/O overlapping [lo, hi) */
	uint64_t lblock;	     /* lblock=: the logical block a regular device reports */
	bool drop;		     /* dead_mode=drop */
	bool dead;
	uint64_t nwrites, nwrites_range, nreads_range, nflushes;
	uint64_t seq; /* next vlog write sequence number */
	int vlog_fd;  /* -1: no volatile cache model */
};

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return !errno && end != s && !*end;
}

struct ff_fault *ff_fault_open(struct ff_dev *dev)
{
	const char *env = getenv("FOLIOFS_FAULT");
	struct ff_fault *f;
	char *s, *tok, *save = NULL;

	if (!env || !*env)
		return NULL;
	f = calloc(1, sizeof(*f));
	s = strdup(env);
	if (!f || !s)
		goto out_bad;
	ff_mutex_init(&f->lock);
	f->vlog_fd = -1;
	f->fail_count = 1;
	f->range_hi = UINT64_MAX;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *v = strchr(tok, '=');
		bool ok = false;

		if (!v)
			break;
		*v++ = 0;
		if (!strcmp(tok, "dead_after"))
			ok = parse_u64(v, &f->dead_after);
		else if (!strcmp(tok, "fail_write"))
			ok = parse_u64(v, &f->fail_write);
		else if (!strcmp(tok, "fail_read"))
			ok = parse_u64(v, &f->fail_read);
		else if (!strcmp(tok, "fail_flush"))
			ok = parse_u64(v, &f->fail_flush);
		else if (!strcmp(tok, "fail_count"))
			ok = parse_u64(v, &f->fail_count);
		else if (!strcmp(tok, "lblock"))
			ok = parse_u64(v, &f->lblock) && f->lblock >= 512 &&
			     f->lblock <= dev->info.lblock_size && ff_is_pow2(f->lblock) &&
			     dev->info.kind == FF_DEV_REGULAR && !dev->emu;
		else if (!strcmp(tok, "dead_mode"))
			ok = (f->drop = !strcmp(v, "drop")) || !strcmp(v, "eio");
		else if (!strcmp(tok, "range")) {
			char *c = strchr(v, ':');

			if (c) {
				*c++ = 0;
				ok = parse_u64(v, &f->range_lo) && parse_u64(c, &f->range_hi);
			}
		} else if (!strcmp(tok, "vlog")) {
			f->vlog_fd =
				open(v, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
			ok = f->vlog_fd >= 0;
		}
		if (!ok) {
			ff_err("FOLIOFS_FAULT: cannot use '%s=%s' (see include/foliofs/fault.h)",
			       tok, v);
			goto out_bad;
		}
	}
	if (tok) {
		ff_err("FOLIOFS_FAULT: '%s' is not key=value", tok);
		goto out_bad;
	}
	free(s);
	ff_warn("fault: injection on for %s: %s", dev->path, env);
	return f;
out_bad:
	/* a test that asked for faults must not run silently without them */
	ff_err("FOLIOFS_FAULT is set but invalid; refusing to open the device");
	free(s);
	if (f && f->vlog_fd >= 0)
		close(f->vlog_fd);
	free(f);
	return (struct ff_fault *)(intptr_t)-1;
}

uint32_t ff_fault_lblock(const struct ff_fault *f)
{
	return f ? (uint32_t)f->lblock : 0;
}

void ff_fault_close(struct ff_fault *f)
{
	if (!f)
		return;
	if (f->vlog_fd >= 0)
		close(f->vlog_fd);
	ff_mutex_destroy(&f->lock);
	free(f);
}

void ff_fault_kill(struct ff_dev *dev)
{
	struct ff_fault *f = dev->fault;

	if (!f)
		return;
	ff_mutex_lock(&f->lock);
	f->dead = true;
	f->drop = false;
	ff_mutex_unlock(&f->lock);
}

static bool in_range(const struct ff_fault *f, uint64_t off, size_t len)
{
	return off < f->range_hi && off + len > f->range_lo;
}

static bool nth_hit(const struct ff_fault *f, uint64_t n, uint64_t which)
{
	return which && n >= which && n < which + f->fail_count;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Append the bytes [off, off+len) are about to lose. Caller holds f->lock. */
static int vlog_write_locked(struct ff_fault *f, struct ff_dev *dev, uint64_t off, size_t len,
			     bool durable)
{
	struct vlog_hdr h = {.magic = VLOG_MAGIC,
			     .type = VLOG_WRITE,
			     .seq = f->seq++,
			     .off = off,
			     .len = len,
			     .data_len = durable ? 0 : len,
			     .flags = durable ? VLOG_DURABLE : 0};
	void *old = NULL;
	int ret;

	ff_assert_held(&f->lock);
	if (durable) /* never undone: no need for its old bytes */
		return write_full(f->vlog_fd, &h, sizeof(h));
	if (posix_memalign(&old, 4096, len ? len : 1))
		return -ENOMEM;
	for (size_t done = 0; done < len;) {
		ssize_t r = pread(dev->fd, (char *)old + done, len - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) { /* beyond the end of a file: zeros */
			memset((char *)old + done, 0, len - done);
			break;
		}
		done += (size_t)r;
	}
	ret = write_full(f->vlog_fd, &h, sizeof(h));
	if (!ret)
		ret = write_full(f->vlog_fd, old, len);
	free(old);
	return ret;
}

/* 0: go ahead; FAULT_DROP: pretend; -errno: fail. */
static int fault_write(struct ff_fault *f, struct ff_dev *dev, uint64_t off, size_t len,
		       unsigned flags)
{
	int ret = 0;
	uint64_t n;

	ff_mutex_lock(&f->lock);
	n = ++f->nwrites;
	if (!f->dead && f->dead_after && n > f->dead_after) {
		f->dead = true;
		ff_warn("fault: device dead after write #%" PRIu64 " (%s)", f->dead_after,
			f->drop ? "later writes dropped" : "later writes fail with EIO");
	}
	if (f->dead) {
		ret = f->drop ? FAULT_DROP : -EIO;
		goto out_unlock;
	}
	if (in_range(f, off, len) && nth_hit(f, ++f->nwrites_range, f->fail_write)) {
		ff_warn("fault: EIO injected on write #%" PRIu64 " off=%" PRIu64 " len=%zu", n, off,
			len);
		ret = -EIO;
		goto out_unlock;
	}
	if (f->vlog_fd >= 0 && vlog_write_locked(f, dev, off, len, flags & FF_IO_DSYNC)) {
		ff_err("fault: cannot append to the volatile-write log");
		ret = -EIO;
	}
out_unlock:
	ff_mutex_unlock(&f->lock);
	return ret;
}

static int fault_read(struct ff_fault *f, uint64_t off, size_t len)
{
	int ret = 0;

	ff_mutex_lock(&f->lock);
	if (in_range(f, off, len) && nth_hit(f, ++f->nreads_range, f->fail_read)) {
		ff_warn("fault: EIO injected on read off=%" PRIu64 " len=%zu", off, len);
		ret = -EIO;
	}
	ff_mutex_unlock(&f->lock);
	return ret;
}

ssize_t ff_dev_raw_rw(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		      bool write, unsigned flags)
{
	struct ff_fault *f = dev->fault;
	size_t len;
	int r;

	if (!f)
		return ff_uring_rw(dev->fd, iov, iovcnt, off, write, flags);
	len = iov_len_sum(iov, iovcnt);
	r = write ? fault_write(f, dev, off, len, flags) : fault_read(f, off, len);
	if (r == FAULT_DROP)
		return (ssize_t)len;
	if (r)
		return r;
	return ff_uring_rw(dev->fd, iov, iovcnt, off, write, flags);
}

int ff_dev_raw_batch(struct ff_dev *dev, struct ff_io *ios, int n)
{
	struct ff_fault *f = dev->fault;
	struct ff_io *go;
	int *map, k = 0, ret = 0;

	if (!f)
		return ff_uring_batch(dev->fd, ios, n);
	go = calloc((size_t)n, sizeof(*go));
	map = calloc((size_t)n, sizeof(*map));
	if (!go || !map) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < n; i++) {
		size_t len = iov_len_sum(ios[i].iov, ios[i].iovcnt);
		int r = ios[i].write ? fault_write(f, dev, ios[i].off, len, ios[i].flags)
				     : fault_read(f, ios[i].off, len);

		if (r == FAULT_DROP) {
			ios[i].res = (ssize_t)len;
		} else if (r) {
			ios[i].res = r;
		} else {
			map[k] = i;
			go[k++] = ios[i];
		}
	}
	if (k)
		ret = ff_uring_batch(dev->fd, go, k);
	for (int j = 0; j < k && !ret; j++)
		ios[map[j]].res = go[j].res;
out_free:
	free(go);
	free(map);
	return ret;
}

/*
 * With faults on, fill runs first: the decisions and the volatile-write log
 * need only offsets and lengths, and they are made in issue order as above.
 */
int ff_dev_raw_batch_late(struct ff_dev *dev, struct ff_io *ios, int n, int n_late,
			  void (*fill)(void *arg), void *arg)
{
	if (!dev->fault)
		return ff_uring_batch_late(dev->fd, ios, n, n_late, fill, arg);
	fill(arg);
	return ff_dev_raw_batch(dev, ios, n);
}

int ff_dev_raw_discard(struct ff_dev *dev, uint64_t off, uint64_t len)
{
	struct ff_fault *f = dev->fault;

	if (f) {
		/* a discard is a volatile write of zeros: counted, logged, dropped when dead */
		int r = fault_write(f, dev, off, (size_t)len, 0);

		if (r == FAULT_DROP)
			return 0;
		if (r)
			return r;
	}
	if (fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) <
	    0)
		return -errno;
	return 0;
}

int ff_dev_raw_fsync(struct ff_dev *dev)
{
	struct ff_fault *f = dev->fault;
	uint64_t tok;
	int ret = 0;

	if (!f)
		return ff_uring_fsync(dev->fd);
	ff_mutex_lock(&f->lock);
	if (f->dead)
		ret = f->drop ? FAULT_DROP : -EIO;
	else if (nth_hit(f, ++f->nflushes, f->fail_flush)) {
		ff_warn("fault: EIO injected on flush #%" PRIu64, f->nflushes);
		ret = -EIO;
	}
	tok = f->seq;
	ff_mutex_unlock(&f->lock);
	if (ret)
		return ret == FAULT_DROP ? 0 : ret;
	ret = ff_uring_fsync(dev->fd);
	if (ret)
		return ret;
	ff_mutex_lock(&f->lock);
	if (f->dead) {
		/* the device died before this flush completed: its writes may be lost */
		ret = f->drop ? 0 : -EIO;
	} else if (f->vlog_fd >= 0) {
		if (tok == f->seq) {
			if (ftruncate(f->vlog_fd, 0) < 0)
				ret = -EIO;
		} else {
			struct vlog_hdr h = {.magic = VLOG_MAGIC, .type = VLOG_FLUSH, .seq = tok};

			ret = write_full(f->vlog_fd, &h, sizeof(h)) ? -EIO : 0;
		}
	}
	ff_mutex_unlock(&f->lock);
	return ret;
}

/* ---- applying a power cut, after the process died ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define CUT_UNIT 512u

int ff_fault_apply_cut(const char *img_path, const char *log_path, uint64_t seed, unsigned keep_pct,
		       struct ff_cut_stats *st)
{
	struct ff_cut_stats s = {0};
	uint8_t *buf = NULL, *decided = NULL;
	size_t *ent = NULL, nent = 0, cap = 0, pos = 0, size = 0;
	uint64_t upto = 0, max_end = 0, rng = seed;
	int lfd, ifd = -1, ret = 0;

	lfd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (lfd < 0)
		return -errno;
	{
		off_t sz = lseek(lfd, 0, SEEK_END);

		if (sz < 0 || !(buf = malloc((size_t)sz + 1))) {
			ret = -ENOMEM;
			goto out;
		}
		size = (size_t)sz;
		for (size_t got = 0; got < size;) {
			ssize_t r = pread(lfd, buf + got, size - got, (off_t)got);

			if (r <= 0) {
				ret = r < 0 ? -errno : -EIO;
				goto out;
			}
			got += (size_t)r;
		}
	}
	/* index the whole records; a torn last one (killed mid-append) is ignored */
	while (pos + sizeof(struct vlog_hdr) <= size) {
		struct vlog_hdr h;

		memcpy(&h, buf + pos, sizeof(h));
		if (h.magic != VLOG_MAGIC || (h.type != VLOG_WRITE && h.type != VLOG_FLUSH)) {
			ret = -EINVAL;
			goto out;
		}
		if (h.data_len > size - pos - sizeof(h))
			break;
		if (h.type == VLOG_WRITE && h.data_len && h.data_len != h.len) {
			ret = -EINVAL;
			goto out;
		}
		if (h.type == VLOG_WRITE && h.off % CUT_UNIT) {
			ret = -EINVAL;
			goto out;
		}
		if (h.type == VLOG_FLUSH) {
			if (h.seq > upto)
				upto = h.seq;
		} else {
			if (nent == cap) {
				size_t *n2 =
					realloc(ent, (cap = cap ? 2 * cap : 256) * sizeof(*ent));

				if (!n2) {
					ret = -ENOMEM;
					goto out;
				}
				ent = n2;
			}
			ent[nent++] = pos;
			if (h.off + h.len > max_end)
				max_end = h.off + h.len;
		}
		pos += sizeof(h) + h.data_len;
	}
	s.torn_tail = size - pos;
	decided = calloc(max_end / CUT_UNIT + 1, 1);
	ifd = open(img_path, O_WRONLY | O_CLOEXEC);
	if (!decided || ifd < 0) {
		ret = ifd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	/* the draws go oldest first so that a seed means the same choice for a prefix */
	for (size_t i = 0; i < nent; i++) {
		struct vlog_hdr *h = (struct vlog_hdr *)(buf + ent[i]);
		bool durable = !h->data_len || h->seq < upto;

		h->keep = durable || splitmix64(&rng) % 100 < keep_pct;
		s.entries++;
		s.durable += durable;
		s.kept += !durable && h->keep;
		s.dropped += !h->keep;
	}
	for (size_t i = nent; i-- > 0;) {
		struct vlog_hdr *h = (struct vlog_hdr *)(buf + ent[i]);
		const uint8_t *old = buf + ent[i] + sizeof(*h);
		uint64_t u0 = h->off / CUT_UNIT, nu = (h->len + CUT_UNIT - 1) / CUT_UNIT;

		for (uint64_t u = 0; u < nu; u++) {
			if (decided[u0 + u])
				continue;
			if (h->keep) {
				decided[u0 + u] = 1;
			} else if (pwrite(ifd, old + u * CUT_UNIT, CUT_UNIT,
					  (off_t)(h->off + u * CUT_UNIT)) != CUT_UNIT) {
				ret = -EIO;
				goto out;
			}
		}
	}
	if (fsync(ifd) < 0)
		ret = -errno;
out:
	if (st)
		*st = s;
	if (ifd >= 0)
		close(ifd);
	close(lfd);
	free(decided);
	free(ent);
	free(buf);
	return ret;
}
