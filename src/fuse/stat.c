// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * foliofs stat MNT [--watch [SECS]] [--count N] [--json]: the live counters
 * of a mount, read from the user.foliofs.stats xattr of its root (the
 * filesystem layer's ff_fs_stats_text, "name value" lines). Zone states at a
 * glance: on the posix format from the same text (its zone counts and
 * zone_map), on the zonefs format from the user.foliofs.zone xattr of every
 * file under seq/. Without --watch: totals (cache hit rate, dirty and
 * writeback bytes, write amplification, device I/O, zone states, and on the
 * posix format its log and garbage collection). With --watch: one line per
 * interval of rates per second over that interval. --json prints the same
 * as one JSON object (per interval with --watch) for scripts. Plain xattr
 * reads: no libfuse here, and any user who can read the mount can run it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "stat.h"

#define MAX_KEYS  96
#define STATS_BUF 8192
#define MAP_MAX	  128 /* zones shown one character each */

struct sample {
	int n;
	char key[MAX_KEYS][40];
	double val[MAX_KEYS];
	double t;		/* CLOCK_MONOTONIC seconds */
	char format[16];	/* the "format" line; zonefs when there is none */
	char zmap[MAP_MAX + 4]; /* the posix format's zone_map line */
};

enum { Z_EMPTY, Z_OPEN, Z_CLOSED, Z_FULL, Z_RDONLY, Z_OFFLINE, Z_OTHER, Z_NR };
static const char *const zname[Z_NR] = {"empty",  "open",    "closed", "full",
					"rdonly", "offline", "other"};
static const char zchar[Z_NR] = {'.', 'o', 'c', 'F', 'R', 'X', '?'};

struct zones {
	unsigned count[Z_NR];
	unsigned total;
	char map[MAP_MAX + 1];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_sample(const char *mnt, struct sample *s)
{
	char *buf = malloc(STATS_BUF), *line, *save = NULL;
	ssize_t n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	n = getxattr(mnt, "user.foliofs.stats", buf, STATS_BUF - 1);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	buf[n] = 0;
	s->n = 0;
	s->t = now_s();
	snprintf(s->format, sizeof(s->format), "zonefs");
	s->zmap[0] = 0;
	for (line = strtok_r(buf, "\n", &save); line && s->n < MAX_KEYS;
	     line = strtok_r(NULL, "\n", &save)) {
		char k[40];
		double v;

		if (!strncmp(line, "format ", 7)) {
			snprintf(s->format, sizeof(s->format), "%s", line + 7);
			continue;
		}
		if (!strncmp(line, "zone_map ", 9)) {
			snprintf(s->zmap, sizeof(s->zmap), "%s", line + 9);
			continue;
		}
		if (sscanf(line, "%39s %lf", k, &v) != 2)
			continue;
		snprintf(s->key[s->n], sizeof(s->key[0]), "%s", k);
		s->val[s->n++] = v;
	}
	if (!s->n)
		ret = -EPROTO;
out:
	free(buf);
	return ret;
}

static double get(const struct sample *s, const char *k)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->key[i], k))
			return s->val[i];
	return 0;
}

static bool is_posix(const struct sample *s)
{
	return !strcmp(s->format, "posix");
}

static int zone_class(const char *cond)
{
	if (!strcmp(cond, "empty"))
		return Z_EMPTY;
	if (!strcmp(cond, "imp-open") || !strcmp(cond, "exp-open"))
		return Z_OPEN;
	if (!strcmp(cond, "closed"))
		return Z_CLOSED;
	if (!strcmp(cond, "full"))
		return Z_FULL;
	if (!strcmp(cond, "rdonly"))
		return Z_RDONLY;
	if (!strcmp(cond, "offline"))
		return Z_OFFLINE;
	return Z_OTHER;
}

static int cmp_num(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* The condition of every sequential zone, from seq/N's user.foliofs.zone. */
static void read_zones(const char *mnt, struct zones *z)
{
	char path[4096], buf[512];
	unsigned long *idx = NULL;
	size_t nidx = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	memset(z, 0, sizeof(*z));
	snprintf(path, sizeof(path), "%s/seq", mnt);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long v = strtoul(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end)
			continue;
		if (nidx == cap) {
			unsigned long *p = realloc(idx, (cap = cap ? cap * 2 : 64) * sizeof(*idx));

			if (!p)
				break;
			idx = p;
		}
		idx[nidx++] = v;
	}
	closedir(d);
	qsort(idx, nidx, sizeof(*idx), cmp_num);
	for (size_t i = 0; i < nidx; i++) {
		const char *c;
		ssize_t n;
		int k = Z_OTHER;

		snprintf(path, sizeof(path), "%s/seq/%lu", mnt, idx[i]);
		n = getxattr(path, "user.foliofs.zone", buf, sizeof(buf) - 1);
		if (n >= 0) {
			buf[n] = 0;
			c = strstr(buf, "\ncond ");
			if (c) {
				char cond[32];

				if (sscanf(c + 6, "%31s", cond) == 1)
					k = zone_class(cond);
			}
		}
		z->count[k]++;
		if (z->total < MAP_MAX)
			z->map[z->total] = zchar[k];
		z->total++;
	}
	free(idx);
}

static void human(double b, char *out, size_t len)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* The counters print_text shows by name; any other (a newer format's) goes on a line of its own. */
static const char *const shown[] = {
	"cache_hits",
	"cache_misses",
	"cache_cached_bytes",
	"cache_dirty_bytes",
	"cache_writeback_inflight",
	"cache_user_bytes_written",
	"dev_bytes_written",
	"dev_meta_bytes",
	"write_amplification",
	"cache_writethrough_bytes",
	"cache_writeback_bytes",
	"cache_throttle_waits",
	"cache_reclaims",
	"dev_bytes_read",
	"dev_reads",
	"dev_writes",
	"dev_fua_writes",
	"dev_flushes",
	"dev_zone_ops",
	"dev_read_errors",
	"dev_write_errors",
	"zoneq_queued",
	"zoneq_issued",
	"zoneq_merged",
	"zoneq_errors",
	"zoneq_resyncs",
	"max_wro_seq_files",
	"max_active_seq_files",
	"nr_wro_seq_files",
	"nr_active_seq_files",
	"read_only",
	"cache_bytes_copied_in",
	"cache_bytes_copied_out",
	"cache_read_bytes",
	"fuse_lookup",
	"fuse_getattr",
	"fuse_getxattr",
	"fuse_readdir",
	"fuse_readdirplus",
	"fuse_flush",
	"fuse_readlink",
	/* the posix format's */
	"inodes",
	"zones_total",
	"zones_free",
	"zones_open",
	"zones_full",
	"zones_meta",
	"zones_collecting",
	"log_writes",
	"log_bytes",
	"log_commit_calls",
	"checkpoints",
	"log_extent_runs",
	"log_run_extents",
	"data_header_writes",
	"inplace_writes",
	"zone_opens",
	"gc_rounds",
	"gc_zones_freed",
	"gc_bytes_moved",
	"gc_blocks_moved",
	"gc_writer_waits",
	"gc_writer_yields",
	"gc_reserve_zones",
	"gc_low_zones",
	"gc_victims",
	"gc_victim_valid_blocks",
	"gc_victim_blocks",
	"gc_header_writes",
	"defrag_passes",
	"defrag_bytes",
	"data_pieces_joined",
	"committer_commits",
	"committer_times",
	"reserved_blocks",
	"delalloc_blocks",
};

static void print_others(const struct sample *s)
{
	int n = 0;

	for (int i = 0; i < s->n; i++) {
		size_t k = 0;

		while (k < sizeof(shown) / sizeof(shown[0]) && strcmp(shown[k], s->key[i]))
			k++;
		if (k < sizeof(shown) / sizeof(shown[0]))
			continue;
		printf("%s%s %.17g", n++ ? ", " : "  other      ", s->key[i], s->val[i]);
	}
	if (n)
		printf("\n");
}

/* The posix format's log, garbage collection and zone states. */
static void print_posix(const struct sample *s)
{
	char a[32];

	human(get(s, "log_bytes"), a, sizeof(a));
	printf("  log        %.0f writes (%s) for %.0f commits, %.0f checkpoints; %.0f data headers, %.0f in-place writes; %.0f inodes\n",
	       get(s, "log_writes"), a, get(s, "log_commit_calls"), get(s, "checkpoints"),
	       get(s, "data_header_writes"), get(s, "inplace_writes"), get(s, "inodes"));
	printf("             %.0f extent runs written for %.0f sync appends' records; %.0f writeback pieces joined a data header\n",
	       get(s, "log_extent_runs"), get(s, "log_run_extents"), get(s, "data_pieces_joined"));
	printf("             %.0f commits of what nobody synced (commit=), %.0f inodes' times logged with them\n",
	       get(s, "committer_commits"), get(s, "committer_times"));
	human(get(s, "gc_bytes_moved"), a, sizeof(a));
	printf("  gc         %.0f rounds, %.0f zones reclaimed, %.0f blocks moved (%s), %.0f writer waits (%.0f writes let go of their file to wait); %.0f zones opened for data\n",
	       get(s, "gc_rounds"), get(s, "gc_zones_freed"), get(s, "gc_blocks_moved"), a,
	       get(s, "gc_writer_waits"), get(s, "gc_writer_yields"), get(s, "zone_opens"));
	printf("             %.0f victims, %.1f%% of their blocks live when picked; %.0f data headers written by GC\n",
	       get(s, "gc_victims"),
	       get(s, "gc_victim_blocks") > 0
		       ? 100 * get(s, "gc_victim_valid_blocks") / get(s, "gc_victim_blocks")
		       : 0,
	       get(s, "gc_header_writes"));
	human(get(s, "defrag_bytes"), a, sizeof(a));
	printf("  defrag     %.0f passes joined files' small extents, %s moved\n",
	       get(s, "defrag_passes"), a);
	printf("  zones      %.0f zones: %.0f free, %.0f open, %.0f full, %.0f being collected, %.0f metadata\n",
	       get(s, "zones_total"), get(s, "zones_free"), get(s, "zones_open"),
	       get(s, "zones_full"), get(s, "zones_collecting"), get(s, "zones_meta"));
	printf("             reserve %.0f free zones for GC only; GC runs at %.0f free or fewer; %.0f blocks reserved by fallocate, %.0f by dirty cached data\n",
	       get(s, "gc_reserve_zones"), get(s, "gc_low_zones"), get(s, "reserved_blocks"),
	       get(s, "delalloc_blocks"));
	if (s->zmap[0])
		printf("             [%s]  (. free, o open, F full, G being collected, M metadata, S superblock)\n",
		       s->zmap);
}

static void print_text(const char *mnt, const struct sample *s, const struct zones *z)
{
	char a[32], b[32], c[32], d[32];
	double hits = get(s, "cache_hits"), miss = get(s, "cache_misses");

	printf("foliofs (%s) on %s%s\n", s->format, mnt,
	       get(s, "read_only") ? " (read-only: -o ro, or after errors)" : "");
	human(get(s, "cache_cached_bytes"), a, sizeof(a));
	human(get(s, "cache_dirty_bytes"), b, sizeof(b));
	human(get(s, "cache_writeback_inflight"), c, sizeof(c));
	printf("  cache      hit rate %.1f%% (%.0f hits, %.0f misses); cached %s, dirty %s, writeback in flight %s\n",
	       100 * ratio(hits, hits + miss), hits, miss, a, b, c);
	human(get(s, "cache_user_bytes_written"), a, sizeof(a));
	human(get(s, "dev_bytes_written"), b, sizeof(b));
	human(get(s, "dev_meta_bytes"), c, sizeof(c));
	printf("  writes     %s by users, %s to the device (+%s metadata): write amplification %.3f\n",
	       a, b, c, get(s, "write_amplification"));
	human(get(s, "cache_writethrough_bytes"), a, sizeof(a));
	human(get(s, "cache_writeback_bytes"), b, sizeof(b));
	printf("             write-through %s, write-back %s; %.0f throttle waits, %.0f reclaims\n",
	       a, b, get(s, "cache_throttle_waits"), get(s, "cache_reclaims"));
	human(get(s, "dev_bytes_read"), a, sizeof(a));
	human(get(s, "dev_bytes_written"), b, sizeof(b));
	printf("  device     %.0f reads (%s), %.0f writes (%s; %.0f FUA), %.0f flushes, %.0f zone ops; errors: %.0f read, %.0f write\n",
	       get(s, "dev_reads"), a, get(s, "dev_writes"), b, get(s, "dev_fua_writes"),
	       get(s, "dev_flushes"), get(s, "dev_zone_ops"), get(s, "dev_read_errors"),
	       get(s, "dev_write_errors"));
	printf("  zone queue %.0f queued, %.0f issued, %.0f merged, %.0f errors, %.0f resyncs\n",
	       get(s, "zoneq_queued"), get(s, "zoneq_issued"), get(s, "zoneq_merged"),
	       get(s, "zoneq_errors"), get(s, "zoneq_resyncs"));
	if (is_posix(s)) {
		print_posix(s);
		goto others;
	}
	snprintf(a, sizeof(a), "%.0f", get(s, "max_wro_seq_files"));
	snprintf(b, sizeof(b), "%.0f", get(s, "max_active_seq_files"));
	printf("  zones      %u sequential: %u empty, %u open, %u closed, %u full", z->total,
	       z->count[Z_EMPTY], z->count[Z_OPEN], z->count[Z_CLOSED], z->count[Z_FULL]);
	if (z->count[Z_RDONLY] || z->count[Z_OFFLINE] || z->count[Z_OTHER])
		printf(", %u read-only, %u offline, %u unknown", z->count[Z_RDONLY],
		       z->count[Z_OFFLINE], z->count[Z_OTHER]);
	printf("\n             open for writing %.0f (limit %s), active %.0f (limit %s)\n",
	       get(s, "nr_wro_seq_files"), strcmp(a, "0") ? a : "none",
	       get(s, "nr_active_seq_files"), strcmp(b, "0") ? b : "none");
	if (z->total) {
		snprintf(d, sizeof(d), "%s", z->total > MAP_MAX ? " ..." : "");
		printf("             [%s]%s  (. empty, o open, c closed, F full, R read-only, X offline)\n",
		       z->map, d);
	}
others:
	printf("  requests   %.0f lookups, %.0f getattrs, %.0f getxattrs, %.0f readdirs, %.0f readdirplus, %.0f flushes (closes), %.0f readlinks\n",
	       get(s, "fuse_lookup"), get(s, "fuse_getattr"), get(s, "fuse_getxattr"),
	       get(s, "fuse_readdir"), get(s, "fuse_readdirplus"), get(s, "fuse_flush"),
	       get(s, "fuse_readlink"));
	print_others(s);
}

static void print_json(const struct sample *s, const struct zones *z)
{
	double hits = get(s, "cache_hits"), miss = get(s, "cache_misses");

	printf("{\"format\": \"%s\", ", s->format);
	for (int i = 0; i < s->n; i++)
		printf("\"%s\": %.17g, ", s->key[i], s->val[i]);
	printf("\"cache_hit_rate\": %.6f, \"zones\": {", ratio(hits, hits + miss));
	if (is_posix(s)) {
		printf("\"empty\": %.0f, \"open\": %.0f, \"full\": %.0f, \"collecting\": %.0f, "
		       "\"metadata\": %.0f, \"total\": %.0f, \"map\": \"%s\"}}\n",
		       get(s, "zones_free"), get(s, "zones_open"), get(s, "zones_full"),
		       get(s, "zones_collecting"), get(s, "zones_meta"), get(s, "zones_total"),
		       s->zmap);
		return;
	}
	for (int k = 0; k < Z_NR; k++)
		printf("\"%s\": %u, ", zname[k], z->count[k]);
	printf("\"total\": %u}}\n", z->total);
}

/* Rates per second between two samples. */
static void print_rates(const struct sample *a, const struct sample *b, bool json)
{
	double dt = b->t - a->t;
	double hits = get(b, "cache_hits") - get(a, "cache_hits");
	double miss = get(b, "cache_misses") - get(a, "cache_misses");
	double user = get(b, "cache_user_bytes_written") - get(a, "cache_user_bytes_written");
	double devw = get(b, "dev_bytes_written") - get(a, "dev_bytes_written");
	double devr = get(b, "dev_bytes_read") - get(a, "dev_bytes_read");
	double fl = get(b, "dev_flushes") - get(a, "dev_flushes");
	double wr = get(b, "dev_writes") - get(a, "dev_writes");
	double gc = get(b, "gc_bytes_moved") - get(a, "gc_bytes_moved");
	char x[32], y[32], z[32], w[32];

	if (dt <= 0)
		dt = 1e-9;
	if (json) {
		printf("{\"interval_s\": %.3f, \"user_write_bytes_per_s\": %.1f, "
		       "\"dev_write_bytes_per_s\": %.1f, \"dev_read_bytes_per_s\": %.1f, "
		       "\"dev_writes_per_s\": %.1f, \"dev_flushes_per_s\": %.1f, "
		       "\"cache_hit_rate\": %.6f, \"write_amplification\": %.6f, "
		       "\"cache_dirty_bytes\": %.0f, \"cache_writeback_inflight\": %.0f",
		       dt, user / dt, devw / dt, devr / dt, wr / dt, fl / dt,
		       ratio(hits, hits + miss), ratio(devw, user), get(b, "cache_dirty_bytes"),
		       get(b, "cache_writeback_inflight"));
		if (is_posix(b))
			printf(", \"gc_bytes_moved_per_s\": %.1f, \"zones_free\": %.0f", gc / dt,
			       get(b, "zones_free"));
		printf("}\n");
	} else {
		human(user / dt, x, sizeof(x));
		human(devw / dt, y, sizeof(y));
		human(devr / dt, z, sizeof(z));
		human(get(b, "cache_dirty_bytes"), w, sizeof(w));
		printf("%10s/s written %10s/s to device %10s/s read %8.0f writes/s %7.0f flushes/s  hit %5.1f%%  WA %5.2f  dirty %s",
		       x, y, z, wr / dt, fl / dt, 100 * ratio(hits, hits + miss), ratio(devw, user),
		       w);
		if (is_posix(b)) {
			human(gc / dt, x, sizeof(x));
			printf("  gc %s/s  free zones %.0f", x, get(b, "zones_free"));
		}
		printf("\n");
	}
	fflush(stdout);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: foliofs stat [--json] [--watch [SECS]] [--count N] MOUNTPOINT\n"
		"Prints the live counters of a foliofs mount: cache hit rate, dirty and writeback\n"
		"bytes, write amplification, device I/O, the state of every zone and, on the\n"
		"posix format, its metadata log and garbage collection.\n"
		"  --json          one JSON object (per interval with --watch), for scripts\n"
		"  --watch [SECS]  rates per second every SECS seconds (default 1) until interrupted\n"
		"  --count N       with --watch: stop after N intervals\n");
}

int ff_stat_main(int argc, char **argv)
{
	const char *mnt = NULL;
	bool json = false, watch = false;
	double secs = 1;
	long count = -1;
	struct sample *a = calloc(2, sizeof(*a)), *b;
	struct zones z;
	int ret = 2;

	if (!a)
		return 1;
	b = a + 1;
	for (int i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--watch")) {
			watch = true;
			if (i + 1 < argc && (secs = strtod(argv[i + 1], &end), *end == 0) &&
			    end != argv[i + 1]) {
				i++;
				if (!(secs > 0 && secs <= 86400))
					goto usage;
			} else {
				secs = 1;
			}
		} else if (!strncmp(argv[i], "--watch=", 8)) {
			watch = true;
			secs = strtod(argv[i] + 8, &end);
			if (*end || !(secs > 0 && secs <= 86400))
				goto usage;
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtol(argv[++i], &end, 10);
			if (*end || count < 1)
				goto usage;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			ret = 0;
			goto out;
		} else if (argv[i][0] == '-' || mnt) {
			goto usage;
		} else {
			mnt = argv[i];
		}
	}
	if (!mnt)
		goto usage;
	ret = read_sample(mnt, a);
	if (ret) {
		fprintf(stderr, "foliofs stat: %s: cannot read its counters (%s)%s\n", mnt,
			strerror(-ret),
			ret == -ENODATA || ret == -ENOTSUP ? ": not a foliofs mount?" : "");
		ret = 1;
		goto out;
	}
	if (!watch) {
		read_zones(mnt, &z);
		json ? print_json(a, &z) : print_text(mnt, a, &z);
		ret = 0;
		goto out;
	}
	for (long n = 0; count < 0 || n < count; n++) {
		struct sample *t;

		usleep((useconds_t)(secs * 1e6));
		ret = read_sample(mnt, b);
		if (ret) {
			fprintf(stderr, "foliofs stat: %s: %s\n", mnt, strerror(-ret));
			ret = 1;
			goto out;
		}
		print_rates(a, b, json);
		t = a;
		a = b;
		b = t;
	}
	ret = 0;
	goto out;
usage:
	usage(stderr);
	ret = 2;
out:
	free(a < b ? a : b);
	return ret;
}
