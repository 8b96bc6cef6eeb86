// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mkfs.foliofs: format a regular file or device (all conventional zones, or
 * emulated sequential zones after N conventional ones), or a kernel zoned
 * block device, with the posix format (the default: a general filesystem) or
 * the kernel zonefs layout (--format zonefs). Both superblocks hold a
 * label (-L). The options that only the zonefs superblock can hold (uid,
 * gid, perm, aggr_cnv) are refused with any other format rather than
 * implying zonefs: a user who adds --uid to the default command line wants
 * a general filesystem, and a zonefs layout in its place would be a
 * filesystem where nothing can be created.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/fs.h"
#include "foliofs/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mkfs.foliofs [-f|--force] [--zone-size SIZE] [--emulate-zoned] [--conv-zones N]\n"
		"                    [--zone-cap SIZE] [--max-open N] [--max-active N] [-L|--label LABEL]\n"
		"                    [--uid N] [--gid N] [--perm OCTAL] [--aggr-cnv]\n"
		"                    [--format posix|zonefs] DEVICE\n"
		"Formats DEVICE (an image file, a disk, or a zoned block device). The default format,\n"
		"posix, is a general filesystem (directories, rename, links, xattrs) on any of them;\n"
		"--format zonefs makes the kernel zonefs layout instead (one file per zone, cnv/ and seq/).\n"
		"  -f, --force        format even if DEVICE holds data or a filesystem\n"
		"  --zone-size SIZE   zone size of an image or regular disk (default 256M; posix on a\n"
		"                     device under 64G: the largest power of two up to 1/256 of it,\n"
		"                     4M at least while that leaves 64 zones)\n"
		"  --emulate-zoned    make the zones after the conventional ones sequential (emulated)\n"
		"  --conv-zones N     conventional zones, zone 0 (the superblock) among them (default 1)\n"
		"  --zone-cap SIZE    capacity of each emulated sequential zone (default: the zone size)\n"
		"  --max-open N, --max-active N   emulated open/active zone limits (default none)\n"
		"  --format F         posix (the default: a general filesystem) or zonefs (the kernel\n"
		"                     zonefs layout, for programs written for kernel zonefs)\n"
		"  -L, --label LABEL  the superblock's label (up to 64 bytes; fsck.foliofs -v shows it)\n"
		"zonefs format only (refused with the posix format):\n"
		"  --uid N, --gid N, --perm OCTAL   owner and mode of every file (default 0, 0, 640)\n"
		"  --aggr-cnv         one file cnv/0 for all conventional zones\n"
		"  -h, --help; -V, --version\n");
}

static int num(const char *s, unsigned long *v, int base, unsigned long max)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, base);
	return (errno || end == s || *end || *v > max || s[0] == '-') ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"force", no_argument, NULL, 'f'},
		{"zone-size", required_argument, NULL, 's'},
		{"emulate-zoned", no_argument, NULL, 'e'},
		{"conv-zones", required_argument, NULL, 'n'},
		{"zone-cap", required_argument, NULL, 'c'},
		{"max-open", required_argument, NULL, 'o'},
		{"max-active", required_argument, NULL, 'a'},
		{"label", required_argument, NULL, 'L'},
		{"uid", required_argument, NULL, 'u'},
		{"gid", required_argument, NULL, 'g'},
		{"perm", required_argument, NULL, 'p'},
		{"aggr-cnv", no_argument, NULL, 'A'},
		{"format", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ff_mkfs_opts o = {.conv_zones = 1};
	const char *zonefs_opt = NULL; /* the first zonefs-only option given */
	char summary[512];
	unsigned long v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "fL:hV", lo, NULL)) != -1) {
		const char *want = NULL; /* what the option takes, when its value is bad */
		int bad = 0;

		switch (c) {
		case 'f':
			o.force = true;
			break;
		case 's':
			bad = ff_parse_size(optarg, &o.zone_size) || !o.zone_size;
			want = "a size above 0, such as 64M or 1G";
			o.zone_opts = true;
			break;
		case 'c':
			bad = ff_parse_size(optarg, &o.zone_cap) || !o.zone_cap;
			want = "a size above 0, such as 64M or 1G";
			o.zone_opts = true;
			break;
		case 'e':
			o.emulate_zoned = true;
			break;
		case 'n':
			bad = num(optarg, &v, 10, 1u << 20);
			want = "a number of zones, 0 to 1048576";
			o.conv_zones = (uint32_t)v;
			o.zone_opts = true;
			break;
		case 'o':
			bad = num(optarg, &v, 10, 1u << 20);
			want = "a number of zones, 0 (no limit) to 1048576";
			o.max_open = (uint32_t)v;
			o.zone_opts = true;
			break;
		case 'a':
			bad = num(optarg, &v, 10, 1u << 20);
			want = "a number of zones, 0 (no limit) to 1048576";
			o.max_active = (uint32_t)v;
			o.zone_opts = true;
			break;
		case 'L':
			bad = strlen(optarg) > FF_ZONEFS_LABEL_LEN;
			want = "up to 64 bytes";
			snprintf(o.sb.label, sizeof(o.sb.label), "%s", optarg);
			break;
		case 'u':
			zonefs_opt = zonefs_opt ? zonefs_opt : "--uid";
			bad = num(optarg, &v, 10, UINT32_MAX);
			want = "a numeric user id";
			o.sb.uid = (uint32_t)v;
			o.sb.features |= FF_ZONEFS_F_UID;
			break;
		case 'g':
			zonefs_opt = zonefs_opt ? zonefs_opt : "--gid";
			bad = num(optarg, &v, 10, UINT32_MAX);
			want = "a numeric group id";
			o.sb.gid = (uint32_t)v;
			o.sb.features |= FF_ZONEFS_F_GID;
			break;
		case 'p':
			zonefs_opt = zonefs_opt ? zonefs_opt : "--perm";
			bad = num(optarg, &v, 8, 0777);
			want = "octal permission bits, 0 to 777";
			o.sb.perm = (uint32_t)v;
			o.sb.features |= FF_ZONEFS_F_PERM;
			break;
		case 'A':
			zonefs_opt = zonefs_opt ? zonefs_opt : "--aggr-cnv";
			o.sb.features |= FF_ZONEFS_F_AGGRCNV;
			break;
		case 'F':
			o.format = !strcmp(optarg, "posix")    ? FF_FMT_POSIX
				   : !strcmp(optarg, "zonefs") ? FF_FMT_ZONEFS
							       : 0;
			bad = !o.format;
			want = "posix or zonefs";
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mkfs.foliofs 0.1.0\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			const struct option *o2 = lo;

			while (o2->name && o2->val != c)
				o2++;
			fprintf(stderr, "mkfs.foliofs: bad value '%s' for --%s: %s\n", optarg,
				o2->name, want);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (zonefs_opt && o.format != FF_FMT_ZONEFS) {
		fprintf(stderr,
			"mkfs.foliofs: %s is an option of the zonefs format only; the %s format has none. Add --format zonefs for the kernel zonefs layout, or drop %s\n",
			zonefs_opt, o.format == FF_FMT_POSIX ? "posix" : "default (posix)",
			zonefs_opt);
		return 2;
	}
	if ((o.conv_zones != 1 || o.zone_cap || o.max_open || o.max_active) && !o.emulate_zoned) {
		fprintf(stderr,
			"mkfs.foliofs: --conv-zones, --zone-cap, --max-open and --max-active need --emulate-zoned\n");
		return 2;
	}
	if (o.emulate_zoned && o.conv_zones < 1) {
		fprintf(stderr,
			"mkfs.foliofs: --conv-zones must be at least 1: zone 0 holds the superblock\n");
		return 2;
	}
	/* progress on a terminal only: scripts get the summary line alone */
	if (isatty(STDOUT_FILENO)) {
		printf("mkfs.foliofs: laying out zones, resetting sequential zones and writing the superblock on %s...\n",
		       argv[optind]);
		fflush(stdout);
	}
	ret = ff_fs_mkfs(argv[optind], &o, summary, sizeof(summary));
	if (ret) {
		fprintf(stderr, "mkfs.foliofs: %s was not formatted (%s)\n", argv[optind],
			strerror(-ret));
		return 1;
	}
	printf("%s\n", summary);
	return 0;
}
