// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * foliofs-dev: the device layer from the command line. Lays emulated zones
 * over a file or disk, prints a device's geometry and zone report, runs zone
 * operations, and measures the zone queue (bench).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: foliofs-dev format-emulated [--zone-size SIZE] [--zone-cap SIZE] [--conv-zones N]\n"
		"                                   [--max-open N] [--max-active N] [--force] PATH\n"
		"       foliofs-dev info PATH\n"
		"       foliofs-dev report PATH\n"
		"       foliofs-dev reset|finish|open|close PATH ZONE\n"
		"       foliofs-dev bench [--bs SIZE] [--zones N] [--threads N] [--mib N] [--dsync]\n"
		"                         [--ring per-thread|io-thread|both] [--rounds N] PATH\n"
		"\n"
		"bench appends through the zone queues from --threads threads into the first --zones\n"
		"sequential zones (thread i writes zone i %% zones), reset before and after each run.\n"
		"--ring both runs the two io_uring designs interleaved, --rounds times each, and\n"
		"prints the median of each and their ratio.\n");
}

static const char *cond_name(enum ff_zone_cond c)
{
	static const char *const n[] = {"not-wp", "empty", "imp-open", "exp-open",
					"closed", "full",  "rdonly",   "offline"};

	return (unsigned)c < sizeof(n) / sizeof(n[0]) ? n[c] : "?";
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int cmd_format(int argc, char **argv)
{
	static const struct option lo[] = {{"zone-size", required_argument, NULL, 's'},
					   {"zone-cap", required_argument, NULL, 'c'},
					   {"conv-zones", required_argument, NULL, 'n'},
					   {"max-open", required_argument, NULL, 'o'},
					   {"max-active", required_argument, NULL, 'a'},
					   {"force", no_argument, NULL, 'f'},
					   {NULL, 0, NULL, 0}};
	struct ff_emu_opts o = {.nr_cnv = 1};
	bool force = false;
	struct ff_dev_lock lk;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 's':
			bad = ff_parse_size(optarg, &o.zone_size);
			break;
		case 'c':
			bad = ff_parse_size(optarg, &o.zone_cap);
			break;
		case 'n':
			bad = parse_u32(optarg, &o.nr_cnv);
			break;
		case 'o':
			bad = parse_u32(optarg, &o.max_open);
			break;
		case 'a':
			bad = parse_u32(optarg, &o.max_active);
			break;
		case 'f':
			force = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "foliofs-dev: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	/* one writer per device: not while it is mounted or another tool writes it */
	ret = ff_dev_lock_image(argv[optind], &lk);
	if (!ret) {
		ret = ff_dev_format_emulated(argv[optind], &o, force);
		ff_dev_unlock_image(&lk);
	}
	if (ret) {
		fprintf(stderr, "foliofs-dev: formatting %s failed: %s\n", argv[optind],
			strerror(-ret));
		return 1;
	}
	return 0;
}

/*
 * Open for a command: one that writes (zone ops, bench) takes the one-user
 * lock and is refused while the device is mounted or in use; info/report
 * only read (read-only: not even the emulation's records are written back).
 */
static int open_dev(const char *path, bool write, struct ff_dev **dev)
{
	struct ff_dev_opts o = {.exclusive = write, .read_only = !write};
	int ret = ff_dev_open(path, &o, dev);

	if (ret)
		fprintf(stderr, "foliofs-dev: cannot open %s: %s\n", path, strerror(-ret));
	return ret;
}

static int cmd_info(const char *path, bool report)
{
	struct ff_dev *dev;
	const struct ff_dev_info *di;

	if (open_dev(path, false, &dev))
		return 1;
	di = ff_dev_info(dev);
	printf("device %s: %s, %llu bytes, %u zones of %llu bytes (%u conventional), logical block %u, physical block %u, write granularity %u, max open %u, max active %u%s\n",
	       path, ff_dev_kind_name(di->kind), (unsigned long long)di->size, di->nr_zones,
	       (unsigned long long)di->zone_size, di->nr_cnv_zones, di->lblock_size,
	       di->pblock_size, di->write_gran, di->max_open, di->max_active,
	       di->host_aware ? ", host-aware" : "");
	if (report) {
		struct ff_zone z;

		for (uint32_t i = 0; i < di->nr_zones; i++) {
			if (ff_dev_report(dev, i, 1, &z) != 1)
				break;
			printf("zone %u: start %llu len %llu cap %llu wp %llu type %s cond %s\n", i,
			       (unsigned long long)z.start, (unsigned long long)z.len,
			       (unsigned long long)z.cap, (unsigned long long)(z.wp - z.start),
			       z.type == FF_ZONE_CNV   ? "cnv"
			       : z.type == FF_ZONE_SWR ? "swr"
						       : "swp",
			       cond_name(z.cond));
		}
	}
	ff_dev_close(dev);
	return 0;
}

static int cmd_zone_op(const char *op, const char *path, const char *zs)
{
	enum ff_zone_op o = !strcmp(op, "reset")    ? FF_ZOP_RESET
			    : !strcmp(op, "finish") ? FF_ZOP_FINISH
			    : !strcmp(op, "open")   ? FF_ZOP_OPEN
						    : FF_ZOP_CLOSE;
	struct ff_dev *dev;
	uint32_t zone;
	int ret;

	if (parse_u32(zs, &zone)) {
		fprintf(stderr, "foliofs-dev: bad zone number '%s'\n", zs);
		return 2;
	}
	if (open_dev(path, true, &dev))
		return 1;
	ret = ff_zoneq_zone_op(dev, zone, o);
	if (ret)
		fprintf(stderr, "foliofs-dev: %s of zone %u failed: %s\n", op, zone,
			strerror(-ret));
	ff_dev_close(dev);
	return ret ? 1 : 0;
}

struct bw {
	struct ff_dev *dev;
	uint32_t zone;
	uint64_t bytes, bs;
	unsigned flags;
	int err;
};

static void *bench_fn(void *arg)
{
	struct bw *w = arg;
	void *buf = NULL;
	struct iovec iov;

	if (posix_memalign(&buf, 4096, w->bs)) {
		w->err = -ENOMEM;
		return NULL;
	}
	memset(buf, 0xa5, w->bs);
	iov = (struct iovec){buf, w->bs};
	for (uint64_t done = 0; done < w->bytes; done += w->bs) {
		ssize_t r = ff_zoneq_append(w->dev, w->zone, &iov, 1, w->flags, NULL);

		if (r < 0) {
			w->err = (int)r;
			break;
		}
	}
	free(buf);
	return NULL;
}

struct bench_cfg {
	uint64_t bs;
	uint32_t nz, nt, mib, first;
	unsigned flags;
};

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/*
 * One run: reset the zones, append mib MiB from nt threads, reset. Returns
 * MiB/s or -errno; *cpu_us the process's CPU time (all its threads, the I/O
 * thread and io_uring's workers included) per append.
 */
static double bench_run(struct ff_dev *dev, const struct bench_cfg *cfg, uint64_t *issued,
			uint64_t *queued, double *cpu_us)
{
	struct bw w[256];
	pthread_t th[256];
	uint64_t per = ((uint64_t)cfg->mib << 20) / cfg->nt / cfg->bs * cfg->bs;
	struct ff_zoneq_stats q0, q1;
	uint64_t t0, t1, c0, c1;
	int err = 0;

	for (uint32_t z = cfg->first; z < cfg->first + cfg->nz; z++)
		ff_zoneq_zone_op(dev, z, FF_ZOP_RESET);
	ff_zoneq_stats(dev, &q0);
	c0 = cpu_ns();
	t0 = ff_now_ns();
	for (uint32_t i = 0; i < cfg->nt; i++) {
		w[i] = (struct bw){dev, cfg->first + i % cfg->nz, per, cfg->bs, cfg->flags, 0};
		pthread_create(&th[i], NULL, bench_fn, &w[i]);
	}
	for (uint32_t i = 0; i < cfg->nt; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err && !err)
			err = w[i].err;
	}
	t1 = ff_now_ns();
	c1 = cpu_ns();
	*cpu_us = (double)(c1 - c0) / 1e3 / (double)(per * cfg->nt / cfg->bs);
	ff_zoneq_stats(dev, &q1);
	*issued = q1.issued - q0.issued;
	*queued = q1.queued - q0.queued;
	for (uint32_t z = cfg->first; z < cfg->first + cfg->nz; z++)
		ff_zoneq_zone_op(dev, z, FF_ZOP_RESET);
	if (err) {
		fprintf(stderr, "foliofs-dev: bench write failed: %s\n", strerror(-err));
		return err;
	}
	return (double)(per * cfg->nt) / (1 << 20) / ((double)(t1 - t0) / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Appends through the zone queue from several threads into several zones,
 * in one or both io_uring designs; with both, rounds alternate which goes
 * first so that drift on a shared machine hits both alike.
 */
static int cmd_bench(int argc, char **argv)
{
	static const struct option lo[] = {
		{"bs", required_argument, NULL, 'b'},	   {"zones", required_argument, NULL, 'z'},
		{"threads", required_argument, NULL, 't'}, {"mib", required_argument, NULL, 'm'},
		{"dsync", no_argument, NULL, 'd'},	   {"ring", required_argument, NULL, 'r'},
		{"rounds", required_argument, NULL, 'n'},  {NULL, 0, NULL, 0}};
	struct bench_cfg cfg = {.bs = 4096, .nz = 1, .nt = 1, .mib = 64, .first = UINT32_MAX};
	enum ff_uring_mode modes[2] = {ff_dev_uring_mode(), 0};
	uint32_t nmodes = 1, rounds = 1;
	double mbs[2][64], cpu[2][64];
	struct ff_dev *dev;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'b':
			bad = ff_parse_size(optarg, &cfg.bs);
			break;
		case 'z':
			bad = parse_u32(optarg, &cfg.nz);
			break;
		case 't':
			bad = parse_u32(optarg, &cfg.nt);
			break;
		case 'm':
			bad = parse_u32(optarg, &cfg.mib);
			break;
		case 'd':
			cfg.flags = FF_IO_DSYNC;
			break;
		case 'r':
			if (!strcmp(optarg, "both")) {
				modes[0] = FF_URING_PER_THREAD;
				modes[1] = FF_URING_IO_THREAD;
				nmodes = 2;
			} else {
				bad = ff_dev_parse_uring_mode(optarg, &modes[0]);
				nmodes = 1;
			}
			break;
		case 'n':
			bad = parse_u32(optarg, &rounds);
			break;
		default:
			usage(stderr);
			return 2;
		}
		if (bad || !cfg.nz || !cfg.nt || cfg.nt > 256 || !cfg.bs || !rounds ||
		    rounds > 64) {
			fprintf(stderr, "foliofs-dev: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (open_dev(argv[optind], true, &dev))
		return 1;
	for (uint32_t i = 0; i < ff_dev_info(dev)->nr_zones; i++) {
		struct ff_zone z;

		if (ff_dev_report(dev, i, 1, &z) == 1 && z.type != FF_ZONE_CNV) {
			cfg.first = i;
			break;
		}
	}
	if (cfg.first == UINT32_MAX || cfg.first + cfg.nz > ff_dev_info(dev)->nr_zones) {
		fprintf(stderr, "foliofs-dev: not enough sequential zones for the bench\n");
		ff_dev_close(dev);
		return 1;
	}
	for (uint32_t r = 0; r < rounds && !err; r++) {
		for (uint32_t k = 0; k < nmodes && !err; k++) {
			uint32_t m = (k + r) % nmodes; /* alternate who goes first */
			uint64_t issued, queued;
			double v, cu;

			ff_dev_set_uring_mode(modes[m]);
			v = bench_run(dev, &cfg, &issued, &queued, &cu);
			if (v < 0) {
				err = (int)v;
				break;
			}
			mbs[m][r] = v;
			cpu[m][r] = cu;
			printf("bench bs=%llu zones=%u threads=%u %s ring=%s round=%u: %.1f MiB/s, %.0f IOPS, %.1f us CPU per write, %llu device writes for %llu queued\n",
			       (unsigned long long)cfg.bs, cfg.nz, cfg.nt,
			       cfg.flags ? "dsync" : "nosync", ff_dev_uring_mode_name(modes[m]),
			       r + 1, v, v * (1 << 20) / (double)cfg.bs, cu,
			       (unsigned long long)issued, (unsigned long long)queued);
			fflush(stdout);
		}
	}
	if (!err && (rounds > 1 || nmodes > 1)) {
		double med[2], ratio[64], rmin = 1e300, rmax = 0;

		/* per-round ratios first: median() sorts in place */
		for (uint32_t r = 0; r < rounds && nmodes == 2; r++) {
			ratio[r] = mbs[1][r] / mbs[0][r];
			rmin = ratio[r] < rmin ? ratio[r] : rmin;
			rmax = ratio[r] > rmax ? ratio[r] : rmax;
		}
		for (uint32_t m = 0; m < nmodes; m++)
			med[m] = median(mbs[m], rounds);
		printf("summary bs=%llu zones=%u threads=%u %s rounds=%u:",
		       (unsigned long long)cfg.bs, cfg.nz, cfg.nt, cfg.flags ? "dsync" : "nosync",
		       rounds);
		for (uint32_t m = 0; m < nmodes; m++)
			printf(" %s %.1f MiB/s %.1f us-cpu/write", ff_dev_uring_mode_name(modes[m]),
			       med[m], median(cpu[m], rounds));
		if (nmodes == 2)
			printf(" io-thread/per-thread %.2f (per round: median %.2f, range %.2f-%.2f)",
			       med[1] / med[0], median(ratio, rounds), rmin, rmax);
		printf("\n");
	}
	ff_dev_close(dev);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "format-emulated"))
		return cmd_format(argc - 1, argv + 1);
	if (!strcmp(cmd, "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if ((!strcmp(cmd, "info") || !strcmp(cmd, "report")) && argc == 3)
		return cmd_info(argv[2], !strcmp(cmd, "report"));
	if ((!strcmp(cmd, "reset") || !strcmp(cmd, "finish") || !strcmp(cmd, "open") ||
	     !strcmp(cmd, "close")) &&
	    argc == 4)
		return cmd_zone_op(cmd, argv[2], argv[3]);
	usage(stderr);
	return 2;
}
