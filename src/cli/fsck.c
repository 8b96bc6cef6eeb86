// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsck.foliofs: check a foliofs device without mounting it, as fsck(8)
 * runs a filesystem's checker (also as fsck.fuse.foliofs, the name fsck -t
 * fuse.foliofs looks for). Options and exit codes are e2fsck's, so that
 * fsck(8), systemd-fsck and scripts read the result the same way: 0 clean,
 * 1 problems corrected, 4 problems left uncorrected, 8 operational error
 * (cannot open, in use), 16 usage error. The check itself is the format's
 * (ff_fs_fsck, posix or zonefs, read from the superblock); only the posix
 * format's repairs (-y, -p) write to the device. Progress goes to a terminal
 * only, or to the descriptor fsck(8) gives with -C.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/fs.h"
#include "foliofs/util.h"

#define FSCK_OK		 0
#define FSCK_CORRECTED	 1
#define FSCK_UNCORRECTED 4
#define FSCK_ERROR	 8
#define FSCK_USAGE	 16

struct ctx {
	const char *dev;
	FILE *progress; /* NULL: no progress */
	bool verbose;
	bool progress_shown;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fsck.foliofs [-n|-y|-p|-a] [-f] [-v] [-C FD] DEVICE\n"
		"Checks DEVICE (an image file or disk formatted by mkfs.foliofs) without mounting\n"
		"it and without writing to it. The format is read from the superblock:\n"
		"  posix     both superblock copies, the metadata log and its checkpoint, every\n"
		"            extent (no block in two files), each zone's valid-block count, link\n"
		"            counts, the directory tree and orphans\n"
		"  zonefs    the superblock, the zone report and its file per zone\n"
		"and on either, for emulated zones, the write-pointer records and the trailer.\n"
		"Only the posix format has repairs: orphans and wrong valid-block counts (made by\n"
		"a mount and its unmount), and a superblock copy zeroed or with a bad checksum\n"
		"(rewritten from the other, where zone 0 is conventional); on a regular device of\n"
		"its mkfs size, the zones' description in its last 4 KiB (from the superblock).\n"
		"Nothing else is ever written.\n"
		"  -n        read-only: answer no to every repair; the device is not written\n"
		"  -y        answer yes to every repair (zonefs: nothing to repair)\n"
		"  -p, -a    preen: repair what is safe without asking, as at boot\n"
		"  -f        check even if the device looks clean (every check is whole anyway)\n"
		"  -v        verbose: print a summary and every note\n"
		"  -C FD     progress to file descriptor FD (fsck(8) -C); 0 means standard output\n"
		"  -h, --help; -V, --version\n"
		"Exit: 0 clean, 1 problems corrected, 4 problems left uncorrected, 8 operational\n"
		"error (cannot open, in use), 16 usage error.\n");
}

static void say_problem(void *arg, const char *msg)
{
	struct ctx *c = arg;

	if (c->progress_shown) {
		fputc('\n', c->progress);
		c->progress_shown = false;
	}
	printf("%s: %s\n", c->dev, msg);
}

static void say_note(void *arg, const char *msg)
{
	struct ctx *c = arg;

	if (c->verbose)
		printf("%s: note: %s\n", c->dev, msg);
}

static void say_progress(void *arg, uint64_t done, uint64_t total)
{
	struct ctx *c = arg;

	if (!c->progress || !total)
		return;
	fprintf(c->progress, "\r%s: checking zones %llu/%llu (%llu%%)", c->dev,
		(unsigned long long)done, (unsigned long long)total,
		(unsigned long long)(done * 100 / total));
	fflush(c->progress);
	c->progress_shown = true;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctx c = {0};
	struct ff_fsck_report r = {0};
	unsigned flags = 0;
	int opt, ret, progress_fd = -1;

	while ((opt = getopt_long(argc, argv, "nypafvC:hVtTlM", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			flags |= FF_FSCK_READ_ONLY;
			break;
		case 'y':
			flags |= FF_FSCK_REPAIR;
			break;
		case 'p':
		case 'a':
			flags |= FF_FSCK_PREEN;
			break;
		case 'f':
			flags |= FF_FSCK_FORCE;
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'C': {
			char *end;

			errno = 0;
			progress_fd = (int)strtol(optarg, &end, 10);
			if (errno || *end || progress_fd < 0) {
				fprintf(stderr, "fsck.foliofs: bad -C descriptor '%s'\n", optarg);
				return FSCK_USAGE;
			}
			break;
		}
		case 't':
		case 'T':
		case 'l':
		case 'M':
			break; /* fsck(8)'s own options, sometimes passed on: nothing to do */
		case 'h':
			usage(stdout);
			return FSCK_OK;
		case 'V':
			printf("fsck.foliofs 0.1.0\n");
			return FSCK_OK;
		default:
			usage(stderr);
			return FSCK_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return FSCK_USAGE;
	}
	if ((flags & FF_FSCK_READ_ONLY) && (flags & (FF_FSCK_REPAIR | FF_FSCK_PREEN))) {
		fprintf(stderr, "fsck.foliofs: -n cannot be combined with -y or -p\n");
		return FSCK_USAGE;
	}
	c.dev = argv[optind];
	if (progress_fd == 0)
		c.progress = stdout;
	else if (progress_fd > 0)
		c.progress = fdopen(progress_fd, "w");
	else if (isatty(STDOUT_FILENO))
		c.progress = stdout;
	r.problem = say_problem;
	r.note = say_note;
	r.progress = say_progress;
	r.arg = &c;
	ret = ff_fs_fsck(c.dev, flags, &r);
	if (c.progress_shown)
		fputc('\n', c.progress);
	if (ret) {
		fprintf(stderr, "fsck.foliofs: %s was not checked: %s%s\n", c.dev,
			ret == -EMEDIUMTYPE ? "it is not a foliofs device" : strerror(-ret),
			ret == -EBUSY ? " (mounted? unmount it first)" : "");
		return FSCK_ERROR;
	}
	if (c.verbose || r.problems)
		printf("%s: %s, label '%s': %u zones (%u conventional); sequential: %u empty, %u open, %u closed, %u full, %u unusable; %llu MiB written\n",
		       c.dev, r.format ? r.format : "no valid superblock", r.label, r.nr_zones,
		       r.nr_cnv_zones, r.zones_empty, r.zones_open, r.zones_closed, r.zones_full,
		       r.zones_bad, (unsigned long long)(r.bytes_used >> 20));
	if (r.problems && r.repaired) {
		printf("%s: %u problem(s) corrected, %u left uncorrected\n", c.dev, r.repaired,
		       r.problems);
		return FSCK_UNCORRECTED;
	}
	if (r.problems) {
		printf("%s: %u problem(s) found, none corrected%s\n", c.dev, r.problems,
		       flags & FF_FSCK_READ_ONLY ? " (-n)" : "");
		return FSCK_UNCORRECTED;
	}
	if (r.repaired) {
		printf("%s: %u problem(s) corrected; clean now, %s format, %u zones\n", c.dev,
		       r.repaired, r.format ? r.format : "unknown", r.nr_zones);
		return FSCK_CORRECTED;
	}
	printf("%s: clean, %s format, %u zones\n", c.dev, r.format ? r.format : "unknown",
	       r.nr_zones);
	return FSCK_OK;
}
