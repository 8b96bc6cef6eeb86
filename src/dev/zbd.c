// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Kernel zoned block devices through libzbd (host-managed and host-aware).
 *
 * libzbd is wrapped here and nowhere else: it mixes -1+errno with -errno
 * returns and keeps a global per-fd table, so each device is opened once with
 * zbd_open() and its errors are converted to -errno at this edge. Data I/O
 * uses the same fd (opened O_DIRECT) through io_uring; RWF_DSYNC becomes FUA.
 * The device itself enforces the zone rules: the zone queue above keeps the
 * writes in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libzbd/zbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

static int zbd_err(int ret)
{
	if (ret >= 0)
		return ret;
	return ret == -1 && errno ? -errno : ret;
}

static ssize_t zbd_rw(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		      bool write, unsigned flags)
{
	if (write && ff_dev_fault_hook) {
		int err = ff_dev_fault_hook(dev, off, iov_len_sum(iov, iovcnt));

		if (err)
			return err;
	}
	return ff_dev_raw_rw(dev, iov, iovcnt, off, write, flags);
}

static int zbd_flush(struct ff_dev *dev)
{
	return ff_dev_raw_fsync(dev);
}

static enum ff_zone_cond conv_cond(unsigned c)
{
	switch (c) {
	case ZBD_ZONE_COND_EMPTY:
		return FF_ZC_EMPTY;
	case ZBD_ZONE_COND_IMP_OPEN:
		return FF_ZC_IMP_OPEN;
	case ZBD_ZONE_COND_EXP_OPEN:
		return FF_ZC_EXP_OPEN;
	case ZBD_ZONE_COND_CLOSED:
		return FF_ZC_CLOSED;
	case ZBD_ZONE_COND_FULL:
		return FF_ZC_FULL;
	case ZBD_ZONE_COND_READONLY:
		return FF_ZC_RDONLY;
	case ZBD_ZONE_COND_OFFLINE:
		return FF_ZC_OFFLINE;
	default:
		return FF_ZC_NOT_WP;
	}
}

static int zbd_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out)
{
	struct zbd_zone *zz = calloc(n, sizeof(*zz));
	unsigned int nr = n;
	int ret;

	if (!zz)
		return -ENOMEM;
	errno = 0;
	ret = zbd_err(zbd_report_zones(dev->fd, (off_t)((uint64_t)first * dev->info.zone_size),
				       (off_t)((uint64_t)n * dev->info.zone_size), ZBD_RO_ALL, zz,
				       &nr));
	if (ret < 0) {
		free(zz);
		return ret;
	}
	for (unsigned i = 0; i < nr; i++) {
		out[i].start = zz[i].start;
		out[i].len = zz[i].len;
		out[i].cap = zz[i].capacity;
		out[i].wp = zz[i].wp;
		out[i].type = zz[i].type == ZBD_ZONE_TYPE_CNV	? FF_ZONE_CNV
			      : zz[i].type == ZBD_ZONE_TYPE_SWP ? FF_ZONE_SWP
								: FF_ZONE_SWR;
		out[i].cond = conv_cond(zz[i].cond);
		if (out[i].type == FF_ZONE_CNV)
			out[i].wp = out[i].start;
		else if (out[i].cond == FF_ZC_FULL)
			out[i].wp = out[i].start + out[i].cap;
	}
	free(zz);
	return (int)nr;
}

static int zbd_zone_op(struct ff_dev *dev, uint32_t zone, enum ff_zone_op op)
{
	static const enum zbd_zone_op ops[] = {
		[FF_ZOP_RESET] = ZBD_OP_RESET,
		[FF_ZOP_FINISH] = ZBD_OP_FINISH,
		[FF_ZOP_OPEN] = ZBD_OP_OPEN,
		[FF_ZOP_CLOSE] = ZBD_OP_CLOSE,
	};
	struct ff_zone z;
	int ret;

	if (op < FF_ZOP_RESET || op > FF_ZOP_CLOSE)
		return -EINVAL;
	ret = zbd_report(dev, zone, 1, &z);
	if (ret < 0)
		return ret;
	if (z.type == FF_ZONE_CNV)
		return -EINVAL;
	errno = 0;
	return zbd_err(zbd_zones_operation(dev->fd, ops[op], (off_t)z.start, (off_t)z.len));
}

static void zbd_close_be(struct ff_dev *dev)
{
	if (dev->fd >= 0)
		zbd_close(dev->fd);
	dev->fd = -1;
}

const struct dev_backend ff_dev_zbd_be = {
	.rw = zbd_rw,
	.flush = zbd_flush,
	.report = zbd_report,
	.zone_op = zbd_zone_op,
	.close = zbd_close_be,
};

static uint32_t sysfs_write_gran(const char *path, uint32_t dflt)
{
	char buf[256], *dup = strdup(path), *name;
	unsigned long v = 0;
	FILE *f;

	if (!dup)
		return dflt;
	name = basename(dup);
	snprintf(buf, sizeof(buf), "/sys/block/%s/queue/zone_write_granularity", name);
	free(dup);
	f = fopen(buf, "r");
	if (!f)
		return dflt;
	if (fscanf(f, "%lu", &v) != 1 || !v)
		v = dflt;
	fclose(f);
	return (uint32_t)v;
}

int ff_zbd_open(struct ff_dev *dev, const char *path, const struct ff_dev_opts *opts)
{
	struct zbd_info zi;
	struct ff_zone *zones;
	int flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_DIRECT;
	int fd, ret;

	zbd_set_log_level(ZBD_LOG_NONE);
	errno = 0;
	fd = zbd_open(path, flags | (opts->exclusive ? O_EXCL : 0), &zi);
	if (fd < 0) {
		ret = fd == -1 && errno ? -errno : fd;
		ff_err("cannot open zoned device %s: %s", path, strerror(-ret));
		return ret;
	}
	dev->fd = fd;
	dev->direct = true;
	dev->be = &ff_dev_zbd_be;
	dev->info.kind = FF_DEV_ZONED;
	dev->info.zones_recorded = true;
	dev->info.lblock_size = zi.lblock_size;
	dev->info.pblock_size = zi.pblock_size;
	dev->info.zone_size = zi.zone_size;
	dev->info.nr_zones = zi.nr_zones;
	dev->info.size = (uint64_t)zi.nr_zones * zi.zone_size;
	dev->info.max_open = zi.max_nr_open_zones;
	dev->info.max_active = zi.max_nr_active_zones;
	dev->info.host_aware = zi.model == ZBD_DM_HOST_AWARE;
	dev->info.write_gran = sysfs_write_gran(path, zi.lblock_size);
	zones = calloc(zi.nr_zones, sizeof(*zones));
	if (!zones) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = zbd_report(dev, 0, zi.nr_zones, zones);
	if (ret < 0) {
		ff_err("%s: zone report failed: %s", path, strerror(-ret));
		free(zones);
		goto out_close;
	}
	for (uint32_t i = 0; i < (uint32_t)ret; i++)
		dev->info.nr_cnv_zones += zones[i].type == FF_ZONE_CNV;
	free(zones);
	return 0;
out_close:
	zbd_close(fd);
	dev->fd = -1;
	dev->be = NULL;
	return ret;
}
