/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The posix format's on-disk constants (docs/posix-format.md says the layout
 * byte by byte): superblock, metadata zone header, record types, data header.
 * Shared by the format (posix.c) and the tools that read an image.
 */
#ifndef FOLIOFS_FS_POSIX_H
#define FOLIOFS_FS_POSIX_H

#include <stdint.h>

#define PX_BLK	       4096u
#define PX_VERSION     1u
#define PX_SB_MAGIC    "FOLIOPSX"
#define PX_MZ_MAGIC    "FOLIOMZH"
#define PX_DH_MAGIC    "FOLIODHD"
#define PX_SDH_MAGIC   "FOLIODHS"
#define PX_META_FIRST  1u
#define PX_META_COUNT  3u
#define PX_ROOT_INO    1ull
#define PX_NAME_MAX    255u
#define PX_SYMLINK_MAX 4095u
#define PX_XNAME_MAX   255u
#define PX_XVAL_MAX    65536u
#define PX_LINK_MAX    65000u

/* what a new file adds to a checkpoint, about (statfs's f_ffree) */
#define PX_INODE_EST 256u
/* the longest record: an XATTR_SET of the longest name and value, rounded to 8 */
#define PX_XREC_MAX (PX_REC_HDR + 14u + PX_XNAME_MAX + PX_XVAL_MAX + 7u)

/* superblock field offsets */
#define PX_SB_VERSION	 8
#define PX_SB_CRC	 12
#define PX_SB_UUID	 16
#define PX_SB_BLKSZ	 32
#define PX_SB_NR_ZONES	 36
#define PX_SB_ZONE_SIZE	 40
#define PX_SB_DEV_SIZE	 48
#define PX_SB_META_FIRST 56
#define PX_SB_META_COUNT 60
#define PX_SB_FEATURES	 64
#define PX_SB_NR_CNV	 72
#define PX_SB_COPY	 76
#define PX_SB_DHKEY	 80  /* 16 bytes, PX_FEAT_DHKEY filesystems only */
#define PX_SB_RAW_SIZE	 96  /* the device's bytes at mkfs (0: a zoned device, an older mkfs) */
#define PX_SB_LABEL	 104 /* 64 bytes, zero-padded: mkfs -L (none: zeros; an older mkfs) */

/* metadata zone header */
#define PX_MZ_VERSION	8
#define PX_MZ_CRC	12
#define PX_MZ_GEN	16
#define PX_MZ_FIRST_SEQ 24
#define PX_MZ_UUID	32
#define PX_MZ_PART	48 /* u32: 0 where a checkpoint starts, k in its k-th next zone */

/* superblock features */
/* a checkpoint may continue into the next metadata zones, and lists extents as EXTENTS */
#define PX_FEAT_MZCHAIN 1ull
/* the log may hold EXTRUN records */
#define PX_FEAT_EXTRUN 2ull
/*
 * data header crcs are keyed: crc32c of the superblock's 16-byte DHKEY, a
 * secret drawn by mkfs, followed by the header block, so that no file's
 * content and no older filesystem's header on the device can pass for one
 */
#define PX_FEAT_DHKEY 4ull
/*
 * a data header may carry a table of pieces (PX_DH_NPIECE): several ranges
 * of one file written after it in one write
 */
#define PX_FEAT_PIECES 8ull
/*
 * a data header may be short: its PX_SDH_LEN last bytes of the header block
 * (magic PX_SDH_MAGIC, one range), written alone with the data where the
 * device's logical block allows it, so that a 4 KiB sync append writes 4.5 KiB
 */
#define PX_FEAT_SHORTDH 16ull
#define PX_FEAT_KNOWN \
	(PX_FEAT_MZCHAIN | PX_FEAT_EXTRUN | PX_FEAT_DHKEY | PX_FEAT_PIECES | PX_FEAT_SHORTDH)
#define PX_META_MAX 16u /* metadata zones at most (mkfs: about 1/64 of the device) */

/* records */
#define PX_REC_HDR  24u
#define PX_REC_CONT 1u
enum px_rec_type {
	PX_R_PAD = 0,
	PX_R_CP_BEGIN = 1,
	PX_R_CP_END = 2,
	PX_R_INODE = 3,
	PX_R_DIRENT_ADD = 4,
	PX_R_DIRENT_DEL = 5,
	PX_R_EXTENT = 6,
	PX_R_XATTR_SET = 7,
	PX_R_XATTR_DEL = 8,
	PX_R_IFREE = 9,
	PX_R_ZONE = 10,
	PX_R_EXTENTS = 11, /* checkpoints of PX_FEAT_MZCHAIN filesystems only */
	PX_R_EXTRUN = 12,  /* the log of PX_FEAT_EXTRUN filesystems only */
};

/*
 * EXTRUN: u64 ino, u64 file_off, u64 len, u64 dev_off, u64 stride, u64 dseq,
 * u64 size, u32 count, u32 0. The count EXTENT records (seqs seq..seq+count-1)
 * of extents k = 0..count-1 at file_off + k*len, dev_off + k*stride, dseq +
 * k, all with this size: one record for a run of sync appends, each written
 * after its data header.
 */
#define PX_RUN_LEN   64u
#define PX_RUN_COUNT 56u
#define PX_RUN_MAX   (1u << 20)

/*
 * The seqs a whole record (header and payload in memory) stands for: its
 * count for an EXTRUN, else 1. Never 0, so that a reader walking a damaged
 * log moves on.
 */
static inline uint64_t px_rec_seqs(const uint8_t *rec)
{
	const uint8_t *c = rec + PX_REC_HDR + PX_RUN_COUNT;
	uint32_t len =
		rec[4] | (uint32_t)rec[5] << 8 | (uint32_t)rec[6] << 16 | (uint32_t)rec[7] << 24;
	uint32_t n;

	if ((rec[0] | rec[1] << 8) != PX_R_EXTRUN || len != PX_RUN_LEN)
		return 1;
	n = c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
	return n ? n : 1;
}

/* EXTENTS: u64 ino, u32 count, u32 0, then count of these (28 bytes each) */
#define PX_XS_HDR     16u
#define PX_XS_ENTRY   28u
#define PX_XS_PER_REC 1024u

/* zone states in ZONE records */
enum px_zone_state {
	PX_Z_FREE = 0,
	PX_Z_OPEN = 1,
	PX_Z_FULL = 2,
	PX_Z_META = 3,
	PX_Z_SUPER = 4,
};

/* data header */
#define PX_DH_VERSION  8
#define PX_DH_CRC      12
#define PX_DH_EPOCH    16
#define PX_DH_DSEQ     24
#define PX_DH_INO      32
#define PX_DH_FILE_OFF 40
#define PX_DH_LEN      48
#define PX_DH_SIZE     56
#define PX_DH_DATA_CRC 64
/*
 * u32: 0 for one range (FILE_OFF, LEN), else the number of pieces listed
 * from PX_DH_PIECES, each a u64 file offset and a u64 length, whose bytes
 * follow the header in that order (PX_FEAT_PIECES filesystems only)
 */
#define PX_DH_NPIECE 68
/*
 * u64: the file's mtime and ctime once this write is in, in ns since the
 * epoch, in the headers of O_SYNC writes (write(2) under the file's
 * io_lock); 0 in every other header
 */
#define PX_DH_MTIME	 72
#define PX_DH_PIECES	 128
#define PX_DH_PIECE_SZ	 16
#define PX_DH_PIECES_MAX ((PX_BLK - PX_DH_PIECES) / PX_DH_PIECE_SZ)
/*
 * A short header (PX_FEAT_SHORTDH): the same fields at the same offsets from
 * its own start, npiece 0, in the last PX_SDH_LEN bytes of the header block;
 * its crc covers those bytes alone
 */
#define PX_SDH_LEN 512u

#define PX_NO_DEV UINT64_MAX /* EXTENT dev_off: a hole */

#endif
