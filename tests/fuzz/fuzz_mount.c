// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness over what foliofs reads from an untrusted device before
 * it mounts: the zonefs superblock (ff_zonefs_sb_decode), the emulated-zone
 * trailer and write-pointer records (src/dev/emu.c, through ff_dev_open),
 * and mount-time validation (ff_fs_check, and a read-only ff_fs_mount).
 *
 * Input: byte 0 picks the target (bit 7: recompute every checksum after the
 * change, so that the fuzzer gets past them into the geometry and pointer
 * checks), bytes 1-2 an offset (little-endian) inside
 * that target's region of a small valid image made at start-up, the rest the
 * bytes written there:
 *   0  ff_zonefs_sb_decode on the bytes alone (a 4096-byte block)
 *   1  the emulation trailer (last 4096 bytes), then ff_fs_check
 *   2  the record area (two slots per zone), then ff_fs_check
 *   3  the superblock (zone 0), then ff_fs_check
 *   4  the record area, then a read-only mount and unmount
 * Built by scripts/test (stage fuzz) with clang -fsanitize=fuzzer,address,undefined.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "foliofs/dev.h"
#include "foliofs/fs.h"
#include "foliofs/util.h"
#include "foliofs/zoneq.h"

#define ZS  (64u << 10)
#define NZ  6u
#define RAW (NZ * ZS + (64u << 10))
#define BLK 4096u

static char g_path[128];
static uint8_t *g_tmpl;
static size_t g_size;

static void make_template(void)
{
	struct ff_mkfs_opts o = {.format = FF_FMT_ZONEFS,
				 .force = true,
				 .emulate_zoned = true,
				 .zone_size = ZS,
				 .conv_zones = 2,
				 .zone_opts = true};
	char summary[256];
	int fd;

	snprintf(g_path, sizeof(g_path), "/tmp/foliofs-fuzz-%d.img", (int)getpid());
	fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, RAW) < 0)
		abort();
	close(fd);
	if (ff_fs_mkfs(g_path, &o, summary, sizeof(summary)))
		abort();
	{
		/* a few appends so the records hold pointers and checksums */
		struct ff_dev *dev;
		void *b;

		if (ff_dev_open(g_path, NULL, &dev) || posix_memalign(&b, 4096, 2 * BLK))
			abort();
		memset(b, 0x5a, 2 * BLK);
		struct iovec iov = {.iov_base = b, .iov_len = 2 * BLK};
		(void)ff_zoneq_write_at(dev, 2, &iov, 1, 2 * ZS, FF_IO_DSYNC);
		(void)ff_zoneq_write_at(dev, 3, &iov, 1, 3 * ZS, 0);
		(void)ff_dev_flush(dev);
		(void)ff_zoneq_write_at(dev, 3, &iov, 1, 3 * ZS + 2 * BLK, 0);
		ff_dev_close(dev);
		free(b);
	}
	fd = open(g_path, O_RDONLY);
	g_size = RAW;
	g_tmpl = malloc(g_size);
	if (fd < 0 || !g_tmpl || pread(fd, g_tmpl, g_size, 0) != (ssize_t)g_size)
		abort();
	close(fd);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Checksums as src/dev/emu.c and src/fs/super.c compute them (little-endian host). */
static void fix_crcs(uint8_t *img)
{
	uint8_t *t = img + g_size - BLK;

	put32(t + 72, 0);
	put32(t + 72, ff_crc32c(0, t, 80));
	for (size_t o = (size_t)NZ * ZS; o + BLK <= g_size - BLK; o += BLK) {
		uint8_t *r = img + o;

		if (memcmp(r, "CERZ", 4))
			continue; /* EMU_REC_MAGIC 0x5a524543 */
		put32(r + 40, 0);
		put32(r + 40, ff_crc32c(0, r, 48));
	}
	put32(img + 4, 0);
	put32(img + 4, ff_crc32_le(~0u, img, FF_ZONEFS_SB_SIZE));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_image(void)
{
	unlink(g_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ff_log_set_level(FF_LOG_ERR);
	make_template();
	atexit(remove_image);
	ff_log_set_level(getenv("FOLIOFS_FUZZ_VERBOSE") ? FF_LOG_DEBUG : (enum ff_log_level) - 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t target, fix, *img;
	size_t off, lo, hi, n;
	int fd;

	if (size < 3)
		return 0;
	target = (data[0] & 0x7f) % 5;
	fix = data[0] & 0x80;
	off = data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	if (target == 0) {
		uint8_t blk[FF_ZONEFS_SB_SIZE] = {0};
		struct ff_zonefs_sb sb;

		memcpy(blk, data, size < sizeof(blk) ? size : sizeof(blk));
		(void)ff_zonefs_sb_decode(blk, &sb);
		return 0;
	}
	switch (target) {
	case 1:
		lo = g_size - BLK, hi = g_size;
		break;
	case 3:
		lo = 0, hi = BLK;
		break;
	default: /* the record area lies between the zones and the trailer */
		lo = (size_t)NZ * ZS, hi = g_size - BLK;
		break;
	}
	img = malloc(g_size);
	if (!img)
		return 0;
	memcpy(img, g_tmpl, g_size);
	off = lo + off % (hi - lo);
	n = size < hi - off ? size : hi - off;
	memcpy(img + off, data, n);
	if (fix)
		fix_crcs(img);
	fd = open(g_path, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, img, g_size) != (ssize_t)g_size)
		abort();
	close(fd);
	free(img);
	if (target == 4) {
		struct ff_fs_opts o = {.read_only = true};
		struct ff_fs *fs;

		o.cache.cache_size = 1u << 20;
		o.cache.max_folio = 64u << 10;
		if (!ff_fs_mount(g_path, &o, &fs))
			(void)ff_fs_unmount(fs);
	} else {
		(void)ff_fs_check(g_path, true);
	}
	return 0;
}
