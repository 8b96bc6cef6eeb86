// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness over what the posix format (docs/posix-format.md) reads
 * from an untrusted device: both superblock copies, the metadata zone
 * headers, the checkpoint and log records (apply_rec), the data headers that
 * roll-forward follows, and what fsck checks on the state a mount rebuilt.
 *
 * At start-up two small valid images are made, each with mkfs, namespace
 * operations, an unmount (a checkpoint), a second mount with more operations
 * and fsyncs, and a copy taken while that mount is still up (a crash image:
 * log records after the checkpoint, an EXTRUN among them, an orphan, a sync
 * write whose header is not yet covered by a committed EXTENT record):
 *   template 0: a regular image (every zone conventional);
 *   template 1: an emulated zoned image, zones 0-3 (superblock and
 *               metadata) conventional, the data zones sequential;
 *   template 2: an emulated zoned image with no conventional zone: the
 *               superblock's zone and the metadata zones are sequential,
 *               read up to their write pointers only; zone capacity below
 *               the zone size, and 4 open and active zones at most.
 * The metadata zone that the mount uses is parsed into its records once.
 *
 * Input: byte 0 says what to do with the image built from the rest:
 *   bit 0     the template (0 or 1), when bit 3 is clear;
 *   bit 1     run fsck (-n) instead of a read-only mount and a walk of the
 *             tree (readdir, getattr, read, readlink, xattrs, lseek, statfs);
 *   bit 2     recompute every checksum after the raw patches (superblocks,
 *             zone headers, each record in each metadata zone, data headers
 *             and their data), so that mutations reach the parsers; on an
 *             emulated image also each sequential zone's pointer record, to
 *             the same pointer with nothing under it left to check (else the
 *             emulation rolls the pointer back over bytes changed in the
 *             zone's last write, and the parsers never see them);
 *   bit 3     template 2.
 * then a list of operations, each one byte `op` then its arguments:
 *   op % 4 == 0  raw patch: u8 region, u16 offset, u8 n, n bytes. Regions:
 *                superblock 0, superblock 1, the current zone header, the
 *                record area, the first data zone that was written, the last
 *                header in it and its data (after the committed cursor: the
 *                one roll-forward applies);
 *   op % 4 == 1  replace the payload of record (u8 k % records) with u8 n
 *                bytes (type = op >> 4 when non-zero);
 *   op % 4 == 2  insert a record before record (u8 k % (records + 1)): type
 *                (op >> 2), flags (u8), u8 n bytes of payload;
 *   op % 4 == 3  drop record (u8 k % records).
 * After record operations the log is written back whole, with consecutive
 * seqs from the zone's first (each record's seqs after the last's) and
 * correct crcs, before any raw patch; on an
 * emulated image the metadata zone's write pointer is moved to its end.
 * A refused image is a fine outcome; a crash, leak, UB or hang is not.
 * Built by tests/fuzz/build.sh; run by scripts/test (stage fuzz).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "../../src/fs/posix.h"

#define ZS   (256u << 10)
#define NZ   12u
#define RAW  (NZ * ZS + (64u << 10))
#define MAXR 4096u

struct rec {
	uint16_t type, flags;
	uint32_t len;
	const uint8_t *p;
};

struct tmpl {
	uint8_t *img;
	size_t size;
	uint32_t cur_zone;     /* the metadata zone with the newest header */
	uint64_t first_seq;    /* its first record's seq */
	struct rec recs[MAXR]; /* its records (pointing into img) */
	uint32_t nrec;
	size_t data_lo, data_hi; /* the first written data zone's written part */
	size_t data_last;	 /* its last header: roll-forward reads it */
	/* emulated images: the emulation's trailer (src/dev/emu.c) */
	bool emu;
	uint64_t emu_meta; /* the pointer records' area */
	uint32_t emu_lb;   /* a record slot's size */
	uint32_t emu_nz;   /* zones */
	uint32_t emu_cnv;  /* conventional zones at the start */
	uint64_t emu_cap;  /* zone capacity */
};

/* A zone's write-pointer record in the emulation's metadata (src/dev/emu.c struct emu_rec). */
struct emu_rec {
	uint32_t magic, zone;
	uint64_t seq, wp, from;
	uint32_t data_crc, cond, crc, pad;
};

#define EMU_REC_MAGIC 0x5a524543u
#define NT	      3

static char g_path[128];
static struct tmpl g_t[NT];

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void check(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "fuzz_posix: template: %s: %d\n", what, r);
		abort();
	}
}

/* Namespace operations on a mounted image; keep is an open file left open. */
static void populate(struct ff_fs *fs, int round, uint64_t *keep)
{
	struct ff_cred cr = {0, 0};
	uint64_t root = ff_fs_root_ino(fs);
	struct stat d, f, g;
	char buf[10000];
	char name[32];

	memset(buf, 'a' + round, sizeof(buf));
	snprintf(name, sizeof(name), "dir%d", round);
	check(ff_fs_mkdir(fs, root, name, 0755, &cr, &d), "mkdir");
	check(ff_fs_create(fs, d.st_ino, "file", 0644, O_RDWR, &cr, &f, NULL), "create");
	check((int)ff_fs_write(fs, f.st_ino, buf, sizeof(buf), 0, FF_CW_SYNC), "sync write");
	check((int)ff_fs_write(fs, f.st_ino, buf, 5000, 20000, 0), "buffered write");
	check(ff_fs_fsync(fs, f.st_ino, false), "fsync");
	check(ff_fs_setxattr(fs, f.st_ino, "user.k", "value", 5, 0), "setxattr");
	check(ff_fs_symlink(fs, d.st_ino, "sym", "../some/target", &cr, &g), "symlink");
	check(ff_fs_link(fs, f.st_ino, root, round ? "hard1" : "hard0", &g), "link");
	check(ff_fs_mknod(fs, d.st_ino, "fifo", S_IFIFO | 0600, 0, &cr, &g), "mknod");
	check(ff_fs_rename(fs, d.st_ino, "fifo", root, round ? "fifo1" : "fifo0", 0, NULL),
	      "rename");
	check(ff_fs_release(fs, f.st_ino, O_RDWR), "release");
	check(ff_fs_create(fs, root, "gone", 0600, O_RDWR, &cr, &g, NULL), "create gone");
	check((int)ff_fs_write(fs, g.st_ino, buf, 4096, 0, FF_CW_DSYNC), "write gone");
	check(ff_fs_unlink(fs, root, "gone"), "unlink");
	if (keep) {
		*keep = g.st_ino; /* an orphan in the crash image */
	} else {
		check(ff_fs_release(fs, g.st_ino, O_RDWR), "release gone");
		ff_fs_forget(fs, g.st_ino, 1);
	}
	/* sync appends by one writer, made durable: an EXTRUN record in the log */
	check(ff_fs_create(fs, d.st_ino, "run", 0644, O_RDWR, &cr, &g, NULL), "create run");
	for (int k = 0; k < 4; k++)
		check((int)ff_fs_write(fs, g.st_ino, buf, 4096, (uint64_t)k * 4096, FF_CW_DSYNC),
		      "run append");
	check(ff_fs_fsync(fs, g.st_ino, true), "fsync run");
	check(ff_fs_release(fs, g.st_ino, O_RDWR), "release run");
	/* scattered buffered blocks written back as pieces behind one data header */
	check(ff_fs_create(fs, d.st_ino, "pieces", 0644, O_RDWR, &cr, &g, NULL), "create pieces");
	for (int k = 0; k < 3; k++)
		check((int)ff_fs_write(fs, g.st_ino, buf, 4096, (uint64_t)k * 8192, 0), "piece");
	check(ff_fs_fsync(fs, g.st_ino, true), "fsync pieces");
	check(ff_fs_release(fs, g.st_ino, O_RDWR), "release pieces");
	check(ff_fs_fsyncdir(fs, root, false), "fsyncdir");
	/* a sync append whose EXTENT record is queued, not committed: roll-forward finds it */
	check(ff_fs_open(fs, f.st_ino, O_RDWR, NULL), "open");
	check((int)ff_fs_write(fs, f.st_ino, buf, 4096, 10000, FF_CW_SYNC), "sync append");
	check(ff_fs_release(fs, f.st_ino, O_RDWR), "release");
}

static void read_image(struct tmpl *t)
{
	int fd = open(g_path, O_RDONLY);

	t->size = RAW;
	t->img = malloc(RAW);
	if (fd < 0 || !t->img || pread(fd, t->img, RAW, 0) != (ssize_t)RAW)
		abort();
	close(fd);
	/* the emulation's trailer: the last 4 KiB (magic, version, lblock, ...) */
	{
		const uint8_t *tr = t->img + RAW / 4096 * 4096 - 4096;

		t->emu = !memcmp(tr, "FFEMUZN1", 8);
		if (t->emu) {
			t->emu_lb = get32(tr + 12);
			t->emu_cap = get64(tr + 24);
			t->emu_nz = get32(tr + 32);
			t->emu_cnv = get32(tr + 36);
			t->emu_meta = get64(tr + 56);
			if (!t->emu_lb || t->emu_meta + (uint64_t)t->emu_nz * 2 * t->emu_lb > RAW)
				abort();
		}
	}
}

/* The data header in the header block b: a whole one, or a short one in its last 512 bytes. */
static uint8_t *dh_at(const uint8_t *b)
{
	if (!memcmp(b + PX_BLK - PX_SDH_LEN, PX_SDH_MAGIC, 8))
		return (uint8_t *)b + PX_BLK - PX_SDH_LEN;
	return memcmp(b, PX_DH_MAGIC, 8) ? NULL : (uint8_t *)b;
}

/* Find the newest metadata zone, parse its records, find the first written data zone. */
static void parse_template(struct tmpl *t)
{
	uint64_t best = 0;
	size_t pos, end;
	uint64_t seq;

	for (uint32_t z = PX_META_FIRST; z < PX_META_FIRST + PX_META_COUNT; z++) {
		const uint8_t *h = t->img + (size_t)z * ZS;

		if (!memcmp(h, PX_MZ_MAGIC, 8) && get64(h + PX_MZ_GEN) > best) {
			best = get64(h + PX_MZ_GEN);
			t->cur_zone = z;
			t->first_seq = get64(h + PX_MZ_FIRST_SEQ);
		}
	}
	if (!best)
		abort();
	pos = (size_t)t->cur_zone * ZS + PX_BLK;
	end = (size_t)(t->cur_zone + 1) * ZS;
	seq = t->first_seq;
	while (pos + PX_REC_HDR <= end && t->nrec < MAXR) {
		const uint8_t *r = t->img + pos;
		uint16_t type = get16(r);
		uint32_t len;

		if (type == PX_R_PAD) {
			if (pos % PX_BLK == 0)
				break;
			pos = ff_round_up(pos, PX_BLK);
			continue;
		}
		len = get32(r + 4);
		if (pos + PX_REC_HDR + len > end || get64(r + 8) != seq)
			break;
		seq += px_rec_seqs(r);
		t->recs[t->nrec++] = (struct rec){type, get16(r + 2), len, r + PX_REC_HDR};
		pos += ff_round_up(PX_REC_HDR + len, 8);
	}
	for (uint32_t z = PX_META_FIRST + PX_META_COUNT; z < NZ; z++) {
		const uint8_t *h = t->img + (size_t)z * ZS;

		if (dh_at(h)) {
			t->data_lo = (size_t)z * ZS;
			t->data_hi = t->data_lo;
			while (t->data_hi + PX_BLK <= (size_t)(z + 1) * ZS &&
			       dh_at(t->img + t->data_hi)) {
				t->data_last = t->data_hi;
				t->data_hi +=
					PX_BLK + get64(dh_at(t->img + t->data_hi) + PX_DH_LEN);
			}
			break;
		}
	}
	if (t->nrec < 8 || t->data_hi <= t->data_lo)
		abort();
}

static void make_template(int which)
{
	struct ff_mkfs_opts mo = {.format = FF_FMT_POSIX,
				  .force = true,
				  .zone_size = ZS,
				  .zone_opts = true,
				  .emulate_zoned = which >= 1,
				  .conv_zones = which == 1 ? 4 : 0};

	if (which == 2) {
		mo.zone_cap = ZS - (32u << 10);
		mo.max_open = mo.max_active = 4;
	}
	struct ff_fs_opts o = {0};
	struct ff_fs *fs;
	char summary[512];
	uint64_t keep;
	int fd;

	fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, RAW) < 0)
		abort();
	close(fd);
	o.cache.cache_size = 1u << 20;
	o.cache.max_folio = 64u << 10;
	check(ff_fs_mkfs(g_path, &mo, summary, sizeof(summary)), "mkfs");
	/* the regular image written as on a 512 B-sector disk: its sync writes' headers are short
	 */
	if (which == 0)
		setenv("FOLIOFS_FAULT", "lblock=512", 1);
	check(ff_fs_mount(g_path, &o, &fs), "mount");
	populate(fs, 0, NULL);
	check(ff_fs_unmount(fs), "unmount");
	check(ff_fs_mount(g_path, &o, &fs), "mount 2");
	populate(fs, 1, &keep);
	read_image(&g_t[which]); /* while mounted: what a crash leaves */
	check(ff_fs_release(fs, keep, O_RDWR), "release kept");
	check(ff_fs_unmount(fs), "unmount 2");
	unsetenv("FOLIOFS_FAULT");
	parse_template(&g_t[which]);
	if (which == 0) {
		bool sh = false;

		for (size_t p = g_t[0].data_lo; p < g_t[0].data_hi && !sh;
		     p += PX_BLK + get64(dh_at(g_t[0].img + p) + PX_DH_LEN))
			sh = dh_at(g_t[0].img + p) != g_t[0].img + p;
		if (!sh) {
			fprintf(stderr,
				"fuzz_posix: the regular template has no short data header\n");
			abort();
		}
	}
}

/*
 * Give sequential zone z of an emulated image the write pointer max(its own,
 * min_wp), with nothing below it left to check (the record's checked range
 * empty), as a device keeps whatever it wrote below its pointer. The newest
 * of the zone's two record slots is rewritten; a zone with no valid record
 * (empty) is left alone.
 */
static void emu_seal(const struct tmpl *t, uint8_t *img, uint32_t z, uint64_t min_wp)
{
	struct emu_rec r[2], *best = NULL;
	uint8_t *slot[2];

	if (!t->emu || z < t->emu_cnv || z >= t->emu_nz)
		return;
	for (unsigned s = 0; s < 2; s++) {
		struct emu_rec c;

		slot[s] = img + t->emu_meta + ((uint64_t)z * 2 + s) * t->emu_lb;
		memcpy(&r[s], slot[s], sizeof(r[s]));
		c = r[s];
		c.crc = 0;
		if (r[s].magic == EMU_REC_MAGIC && r[s].zone == z &&
		    r[s].crc == ff_crc32c(0, &c, sizeof(c)) && r[s].from <= r[s].wp &&
		    r[s].wp <= t->emu_cap && (!best || r[s].seq > best->seq))
			best = &r[s];
	}
	if (!best)
		return;
	if (min_wp > best->wp)
		best->wp = min_wp < t->emu_cap ? min_wp : t->emu_cap;
	best->from = best->wp;
	best->data_crc = 0;
	best->crc = 0;
	best->crc = ff_crc32c(0, best, sizeof(*best));
	memcpy(slot[best - r], best, sizeof(*best));
}

/* Checksums as src/fs/posix.c computes them (seed: 0, or a data header's key's). */
static void fix_block_crc(uint8_t *b, size_t at, uint32_t seed)
{
	put32(b + at, 0);
	put32(b + at, ff_crc32c(seed, b, PX_BLK));
}

static void fix_crcs(const struct tmpl *t, uint8_t *img)
{
	uint32_t seed;

	fix_block_crc(img, PX_SB_CRC, 0);
	fix_block_crc(img + PX_BLK, PX_SB_CRC, 0);
	for (uint32_t z = PX_META_FIRST; z < PX_META_FIRST + PX_META_COUNT; z++) {
		size_t pos = (size_t)z * ZS, end = pos + ZS;

		if (memcmp(img + pos, PX_MZ_MAGIC, 8))
			continue;
		fix_block_crc(img + pos, PX_MZ_CRC, 0);
		pos += PX_BLK;
		while (pos + PX_REC_HDR <= end) {
			uint8_t *r = img + pos;
			uint32_t len = get32(r + 4);

			if (get16(r) == PX_R_PAD) {
				if (pos % PX_BLK == 0)
					break;
				pos = ff_round_up(pos, PX_BLK);
				continue;
			}
			if (len > end - pos - PX_REC_HDR)
				break;
			put32(r + 16, 0);
			put32(r + 16, ff_crc32c(0, r, PX_REC_HDR + len));
			pos += ff_round_up(PX_REC_HDR + len, 8);
		}
	}
	seed = get64(img + PX_SB_FEATURES) & PX_FEAT_DHKEY ? ff_crc32c(0, img + PX_SB_DHKEY, 16)
							   : 0;
	for (size_t pos = t->data_lo; pos + PX_BLK <= t->data_hi;) {
		uint8_t *h = dh_at(img + pos);
		uint32_t hl = h == img + pos ? PX_BLK : PX_SDH_LEN;
		uint64_t len = h ? get64(h + PX_DH_LEN) : 0;

		if (!h || len > t->data_hi - pos - PX_BLK)
			break;
		put32(h + PX_DH_DATA_CRC, ff_crc32c(0, img + pos + PX_BLK, len));
		/* keyed by the superblock's DHKEY, as the mount checks it (block 0's) */
		put32(h + PX_DH_CRC, 0);
		put32(h + PX_DH_CRC, ff_crc32c(seed, h, hl));
		if (!len)
			break;
		pos += PX_BLK + len;
	}
	for (uint32_t z = 0; z < NZ; z++)
		emu_seal(t, img, z, 0);
}

/*
 * Write recs[0..n) into the current metadata zone, consecutive seqs, crcs
 * set; the zone's write pointer (emulated sequential zones) then covers them.
 */
static void write_log(const struct tmpl *t, uint8_t *img, const struct rec *recs, uint32_t n)
{
	size_t start = (size_t)t->cur_zone * ZS, pos = start + PX_BLK, end = start + ZS;
	uint64_t seq = t->first_seq;

	memset(img + pos, 0, end - pos);
	for (uint32_t k = 0; k < n; k++) {
		size_t need = ff_round_up(PX_REC_HDR + recs[k].len, 8);
		uint8_t *r = img + pos;

		if (need > end - pos)
			break;
		put16(r, recs[k].type);
		put16(r + 2, recs[k].flags);
		put32(r + 4, recs[k].len);
		put64(r + 8, seq);
		put32(r + 16, 0);
		put32(r + 20, 0);
		memcpy(r + PX_REC_HDR, recs[k].p, recs[k].len);
		seq += px_rec_seqs(r);
		put32(r + 16, ff_crc32c(0, r, PX_REC_HDR + recs[k].len));
		pos += need;
	}
	emu_seal(t, img, t->cur_zone, ff_round_up(pos - start, PX_BLK));
}

static void region(const struct tmpl *t, unsigned sel, size_t *lo, size_t *hi)
{
	switch (sel % 6) {
	case 0:
		*lo = 0, *hi = PX_BLK;
		break;
	case 1:
		*lo = PX_BLK, *hi = 2 * PX_BLK;
		break;
	case 2:
		*lo = (size_t)t->cur_zone * ZS, *hi = *lo + PX_BLK;
		break;
	case 3:
		*lo = (size_t)t->cur_zone * ZS + PX_BLK, *hi = (size_t)(t->cur_zone + 1) * ZS;
		break;
	case 4:
		*lo = t->data_lo, *hi = t->data_hi;
		break;
	default:
		*lo = t->data_last, *hi = t->data_hi;
		break;
	}
}

/* Visit the tree: every call a mount answers from the state it rebuilt. */
static void walk(struct ff_fs *fs, uint64_t dir, int depth, int *budget)
{
	char name[PX_NAME_MAX + 1], buf[8192];
	uint64_t cookie = 0, next;
	struct stat st;

	while (depth < 6 && (*budget)-- > 0 &&
	       !ff_fs_readdir(fs, dir, cookie, name, sizeof(name), &st, &next)) {
		cookie = next;
		if (ff_fs_lookup(fs, dir, name, &st))
			continue;
		(void)ff_fs_getattr(fs, st.st_ino, &st);
		(void)ff_fs_listxattr(fs, st.st_ino, buf, sizeof(buf));
		(void)ff_fs_getxattr(fs, st.st_ino, "user.k", buf, sizeof(buf));
		if (S_ISDIR(st.st_mode)) {
			walk(fs, st.st_ino, depth + 1, budget);
		} else if (S_ISLNK(st.st_mode)) {
			(void)ff_fs_readlink(fs, st.st_ino, buf, sizeof(buf));
		} else if (S_ISREG(st.st_mode) && !ff_fs_open(fs, st.st_ino, O_RDONLY, NULL)) {
			for (uint64_t off = 0; off < 65536 && off < (uint64_t)st.st_size;
			     off += sizeof(buf))
				if (ff_fs_read(fs, st.st_ino, buf, sizeof(buf), off) <= 0)
					break;
			(void)ff_fs_lseek(fs, st.st_ino, 0, SEEK_DATA);
			(void)ff_fs_lseek(fs, st.st_ino, 0, SEEK_HOLE);
			(void)ff_fs_release(fs, st.st_ino, O_RDONLY);
		}
		ff_fs_forget(fs, st.st_ino, 1);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void say(void *arg, const char *msg)
{
	fprintf(stderr, "fsck %s: %s\n", (const char *)arg, msg);
}

static void remove_image(void)
{
	unlink(g_path);
}

/* The template byte 0 of an input selects. */
static int template_of(uint8_t mode)
{
	return mode & 8 ? 2 : mode & 1;
}

/*
 * FOLIOFS_FUZZ_SEEDS=DIR: write the seed corpus there: per template and mode,
 * the template as it is, and for each record type the first and the last of
 * its first 256 records replaced by its own payload (the fuzzer mutates real
 * records from there). FOLIOFS_FUZZ_SEED_TEMPLATE=N: template N's only.
 */
static void write_seeds(const char *dir)
{
	const char *only = getenv("FOLIOFS_FUZZ_SEED_TEMPLATE");
	uint8_t in[1 + 3 + 255 + 4];
	char p[512];

	for (int m = 0; m < 16; m++) {
		const struct tmpl *t = &g_t[template_of((uint8_t)m)];
		int tn = template_of((uint8_t)m);
		FILE *f;

		if ((m & 9) == 9 || (only && atoi(only) != tn))
			continue; /* bit 0 is ignored with bit 3 set: one copy */
		in[0] = (uint8_t)m;
		snprintf(p, sizeof(p), "%s/posix-t%d-m%d", dir, tn, (m >> 1) & 3);
		if ((f = fopen(p, "w"))) {
			fwrite(in, 1, 1, f);
			fclose(f);
		}
		if (m & 4)
			continue;
		for (uint32_t k = 0; k < t->nrec && k < 256; k++) {
			uint32_t len = t->recs[k].len > 255 ? 255 : t->recs[k].len;
			bool first = true, last = true;

			for (uint32_t j = 0; j < t->nrec && j < 256; j++)
				if (t->recs[j].type == t->recs[k].type) {
					first &= j >= k;
					last &= j <= k;
				}
			if (!first && !last)
				continue;
			in[1] = 1;
			in[2] = (uint8_t)k;
			in[3] = (uint8_t)len;
			memcpy(in + 4, t->recs[k].p, len);
			snprintf(p, sizeof(p), "%s/posix-t%d-m%d-r%03u-type%u", dir, tn,
				 (m >> 1) & 3, k, t->recs[k].type);
			if ((f = fopen(p, "w"))) {
				fwrite(in, 1, 4 + len, f);
				fclose(f);
			}
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ff_log_set_level(FF_LOG_ERR);
	/* tmpfs when there is one: a disk-backed image costs a device flush per run */
	snprintf(g_path, sizeof(g_path), "%s/foliofs-fuzz-posix-%d.img",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm", (int)getpid());
	atexit(remove_image);
	for (int k = 0; k < NT; k++)
		make_template(k);
	if (getenv("FOLIOFS_FUZZ_SEEDS"))
		write_seeds(getenv("FOLIOFS_FUZZ_SEEDS"));
	ff_log_set_level(getenv("FOLIOFS_FUZZ_VERBOSE") ? FF_LOG_DEBUG : (enum ff_log_level) - 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec recs[MAXR + 256];
	const struct tmpl *t;
	uint8_t mode, *img;
	uint32_t n;
	bool relog = false;
	size_t at;
	int fd;

	if (size < 1)
		return 0;
	mode = data[0];
	t = &g_t[template_of(mode)];
	img = malloc(t->size);
	if (!img)
		return 0;
	memcpy(img, t->img, t->size);
	memcpy(recs, t->recs, t->nrec * sizeof(*recs));
	n = t->nrec;
	/* record operations first, then the log is rewritten, then raw patches */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && relog)
			write_log(t, img, recs, n);
		at = 1;
		while (at + 2 <= size) {
			uint8_t op = data[at], k = data[at + 1], ln;
			size_t lo, hi, off;

			at += 2;
			switch (op % 4) {
			case 0:
				if (at + 3 > size)
					goto done;
				region(t, k, &lo, &hi);
				off = data[at] | (size_t)data[at + 1] << 8;
				ln = data[at + 2];
				at += 3;
				if (ln > size - at)
					ln = (uint8_t)(size - at);
				if (pass == 1 && hi > lo) {
					off = lo + off % (hi - lo);
					memcpy(img + off, data + at, ln < hi - off ? ln : hi - off);
				}
				at += ln;
				break;
			case 1:
				if (at + 1 > size)
					goto done;
				ln = data[at++];
				if (ln > size - at)
					ln = (uint8_t)(size - at);
				if (pass == 0 && n) {
					struct rec *r = &recs[k % n];

					if (op >> 4)
						r->type = op >> 4;
					r->p = data + at;
					r->len = ln;
					relog = true;
				}
				at += ln;
				break;
			case 2:
				if (at + 2 > size)
					goto done;
				{
					uint8_t fl = data[at];

					ln = data[at + 1];
					at += 2;
					if (ln > size - at)
						ln = (uint8_t)(size - at);
					if (pass == 0 && n < MAXR + 255) {
						uint32_t w = k % (n + 1);

						memmove(&recs[w + 1], &recs[w],
							(n - w) * sizeof(*recs));
						recs[w] = (struct rec){op >> 2, fl, ln, data + at};
						n++;
						relog = true;
					}
					at += ln;
				}
				break;
			default:
				if (pass == 0 && n) {
					uint32_t w = k % n;

					memmove(&recs[w], &recs[w + 1],
						(n - w - 1) * sizeof(*recs));
					n--;
					relog = true;
				}
				break;
			}
		}
done:;
	}
	if (mode & 4)
		fix_crcs(t, img);
	fd = open(g_path, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, img, t->size) != (ssize_t)t->size)
		abort();
	close(fd);
	free(img);
	if (mode & 2) {
		struct ff_fsck_report r = {0};

		if (getenv("FOLIOFS_FUZZ_VERBOSE")) {
			r.problem = say;
			r.note = say;
			r.arg = (void *)"says";
		}
		(void)ff_fs_fsck(g_path, FF_FSCK_READ_ONLY, &r);
	} else {
		struct ff_fs_opts o = {.read_only = true};
		struct ff_fs *fs;
		struct statvfs sv;
		char stats[4096];
		int budget = 2000;

		o.cache.cache_size = 1u << 20;
		o.cache.max_folio = 64u << 10;
		if (!ff_fs_mount(g_path, &o, &fs)) {
			walk(fs, ff_fs_root_ino(fs), 0, &budget);
			(void)ff_fs_statfs(fs, &sv);
			(void)ff_fs_stats_text(fs, stats, sizeof(stats));
			(void)ff_fs_unmount(fs);
		}
	}
	return 0;
}
