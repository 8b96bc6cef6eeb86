/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev: the device layer's whole interface. One handle over three kinds of
 * device (DESIGN.md "Devices"):
 *   - regular:  a file or block device opened O_DIRECT, cut into logical zones
 *               of opts->zone_size, all conventional;
 *   - emulated: a regular file or device formatted by ff_dev_format_emulated()
 *               whose zones behave as sequential-write-required zones (and at
 *               least as strictly as a host-managed device);
 *   - zoned:    a kernel zoned block device through libzbd.
 * ff_dev_open() picks the kind from what the path is and what is on it.
 *
 * Offsets and lengths are in bytes. Every function returns 0 or a count on
 * success and -errno on failure. All functions are thread-safe; I/O goes
 * through io_uring. Only this layer includes liburing or libzbd.
 *
 * Writes to a sequential zone go through the zone queue (zoneq.h) and
 * nowhere else: ff_dev_write() and ff_dev_submit_batch() refuse with -EINVAL,
 * before any I/O, a write whose range touches a sequential zone. The raw
 * write the zone queue issues is private to src/dev.
 *
 * Durability order (REQ_PREFLUSH|REQ_FUA): FF_IO_DSYNC makes a write durable
 * on completion, and only that write. FF_IO_PREFLUSH first makes every write
 * completed before it durable (a device flush, skipped when nothing written
 * since the last flush is waiting for one): a durable record that makes
 * earlier data reachable carries both. The zone queue adds the flush by
 * itself to a FF_IO_DSYNC write on a sequential zone that has non-durable
 * data below it, so the zone's pointer never becomes durable over data that
 * is not.
 */
#ifndef FOLIOFS_DEV_H
#define FOLIOFS_DEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ff_dev;

enum ff_dev_kind {
	FF_DEV_REGULAR = 1,
	FF_DEV_EMULATED,
	FF_DEV_ZONED,
};

enum ff_zone_type {
	FF_ZONE_CNV = 1, /* conventional: random writes */
	FF_ZONE_SWR,	 /* sequential write required */
	FF_ZONE_SWP,	 /* sequential write preferred (host-aware) */
};

enum ff_zone_cond {
	FF_ZC_NOT_WP = 0, /* conventional */
	FF_ZC_EMPTY,
	FF_ZC_IMP_OPEN,
	FF_ZC_EXP_OPEN,
	FF_ZC_CLOSED,
	FF_ZC_FULL,
	FF_ZC_RDONLY,
	FF_ZC_OFFLINE,
};

struct ff_zone {
	uint64_t start; /* byte offset of the zone on the device */
	uint64_t len;	/* zone size */
	uint64_t cap;	/* writable bytes from start (<= len) */
	uint64_t wp;	/* absolute write pointer; start + cap when FULL */
	enum ff_zone_type type;
	enum ff_zone_cond cond;
};

struct ff_dev_info {
	enum ff_dev_kind kind;
	uint64_t size;	      /* usable bytes (emulation metadata excluded) */
	uint32_t lblock_size; /* logical block: the unit of every I/O */
	uint32_t pblock_size; /* physical block */
	uint32_t write_gran;  /* zone write granularity (bytes) */
	uint64_t zone_size;
	uint32_t nr_zones;
	uint32_t nr_cnv_zones; /* conventional zones (all of them on regular) */
	uint32_t max_open;     /* 0 = no limit */
	uint32_t max_active;   /* 0 = no limit */
	bool host_aware;
	bool read_only;
	/*
	 * The zones are the device's own (a zoned device) or those mkfs laid
	 * and recorded on it (an emulated device, or a regular one with a
	 * trailer); false: a regular device cut into zones of
	 * ff_dev_opts.zone_size or the default, whose layout nothing records.
	 */
	bool zones_recorded;
};

struct ff_dev_opts {
	uint64_t zone_size; /* regular devices only: logical zone size (0 = default) */
	bool read_only;
	bool exclusive; /* O_EXCL on block devices, an flock on image files: one user at a time */
	unsigned lock_wait_s; /* exclusive and in use: wait this long for it (a daemon writing back)
			       */
	bool quiet_small;     /* no message for a device too small for its zone size (-ENOSPC): the
				 caller knows better what it is (unformatted, say) */
	/*
	 * The size the device had when mkfs laid its zones, when the caller
	 * knows it (0: not known). A device that grew since keeps its
	 * trailer there, not at its end.
	 */
	uint64_t formatted_size;
	/*
	 * An emulated zoned device discards a reset zone's blocks (a TRIM on
	 * an SSD, a hole punched in an image file). Off, the blocks stay
	 * where they are and read as zeros through the device all the same.
	 */
	bool discard;
};

/* Options of ff_dev_format_emulated(). */
struct ff_emu_opts {
	uint64_t zone_size;	/* bytes, multiple of the logical block */
	uint64_t zone_cap;	/* 0 = zone_size */
	uint32_t nr_cnv;	/* conventional zones at the start */
	uint32_t max_open;	/* 0 = no limit */
	uint32_t max_active;	/* 0 = no limit */
	uint32_t lblock_size;	/* 0 = 4096 */
	bool conventional_only; /* all zones conventional (a regular device with a fixed zone size)
				 */
};

#define FF_DEV_DEFAULT_ZONE_SIZE (256ull << 20)

/* I/O flags */
#define FF_IO_DSYNC    (1u << 0) /* durable on completion: RWF_DSYNC / FUA */
#define FF_IO_PREFLUSH (1u << 1) /* earlier completed writes made durable first */
/*
 * On the device when it completes, as an O_DIRECT write: it survives the
 * process (not a power cut). A device whose zone state lives in this process
 * (the emulation's write pointers) writes that state with it, durably.
 */
#define FF_IO_STABLE (1u << 2)

int ff_dev_open(const char *path, const struct ff_dev_opts *opts, struct ff_dev **out);
void ff_dev_close(struct ff_dev *dev);
const struct ff_dev_info *ff_dev_info(const struct ff_dev *dev);
const char *ff_dev_kind_name(enum ff_dev_kind kind);

/*
 * Lay emulated zones over a regular file or block device. Refuses (-EEXIST)
 * when the path already holds emulation metadata unless force is set. The
 * caller holds the device's one-user lock (ff_dev_lock_image()) meanwhile.
 */
int ff_dev_format_emulated(const char *path, const struct ff_emu_opts *opts, bool force);
/*
 * The zones ff_dev_format_emulated() would lay over path with opts, every
 * option checked as it checks them (said to the user), without writing: so
 * that mkfs refuses a geometry its format cannot use before anything on the
 * device is changed.
 */
struct ff_emu_plan {
	uint32_t lblock_size, nr_zones;
	uint64_t zone_size, zone_cap;
	uint64_t size; /* the zones' bytes, as the device's ff_dev_info.size will say */
};
int ff_dev_plan_emulated(const char *path, const struct ff_emu_opts *opts, struct ff_emu_plan *p);
/*
 * Hold a device's one-user lock without opening it as a device, as mkfs and
 * foliofs-dev do while they write, until ff_dev_unlock_image(). For an image
 * file it is the flock an exclusive ff_dev_open() takes; for a block device
 * an O_EXCL open (the kernel's claim, which a mount or an exclusive
 * ff_dev_open() also takes; non-exclusive opens by the holder still work).
 * A loop device and the file under it are one device: either name's lock
 * holds the other too (an exclusive ff_dev_open() does the same). Fails
 * with -EBUSY (said to the user) when it is still in use after 2 s (a
 * daemon just unmounted holds it while it exits, as ff_dev_open() waits
 * for); holds nothing when the path is neither (the open that follows
 * reports it). May sleep.
 */
struct ff_dev_lock {
	int fd, backing_fd; /* -1: none */
};
int ff_dev_lock_image(const char *path, struct ff_dev_lock *lk);
void ff_dev_unlock_image(struct ff_dev_lock *lk);
/*
 * Whether path is in use by another user now (mounted, held through a loop
 * device, or locked by another foliofs), said to the user as
 * ff_dev_lock_image() says it; no waiting, and nothing held afterwards. For
 * an error path whose own message would leave that out.
 */
bool ff_dev_report_in_use(const char *path);
/*
 * For a command about to write path: -EROFS when it is a read-only block
 * device, or open's error when it cannot be opened for writing (a file's
 * permissions, a read-only filesystem), each said in a message; else 0
 * (a missing path is left to the caller's own message).
 */
int ff_dev_check_writable(const char *path);
/*
 * Whether paths a and b are one device: the same image file (by any name),
 * the same block device, or a loop device and the file under it.
 */
bool ff_dev_same_storage(const char *a, const char *b);
/*
 * Whether libblkid recognises another program's signature on path (a
 * filesystem, a partition table, a RAID or volume member), anywhere it
 * looks: 1 with a description in what ("a filesystem of type btrfs (blkid)"), 0
 * none, -errno when it cannot tell. foliofs's own formats are not among
 * what it knows.
 */
int ff_dev_signature(const char *path, char *what, size_t len);
/* Erase the magic of every signature libblkid finds on path, as wipefs -a; durable. */
int ff_dev_wipe_signatures(const char *path);

/*
 * Synchronous vectored I/O. Buffers and offsets must be lblock aligned.
 * ff_dev_write() writes conventional space only (-EINVAL on a range touching
 * a sequential zone: use ff_zoneq_write_at/append).
 */
ssize_t ff_dev_read(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off);
ssize_t ff_dev_write(struct ff_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off,
		     unsigned flags);
/*
 * A batch of independent I/Os submitted together and all waited for; the
 * writes obey ff_dev_write()'s rules (a sequential zone gets -EINVAL). When
 * the fd is O_DIRECT and no I/O touches a sequential zone, on any kind of
 * device, they are in flight together (one ring submission, up to the
 * ring's depth at a time); otherwise they are done one after another. Each
 * ios[i].res is filled either way. Returns 0, or the ring's failure (which
 * every submitted I/O's res then carries too).
 */
struct ff_io {
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	bool write;
	unsigned flags;
	ssize_t res; /* out: bytes or -errno */
};
int ff_dev_submit_batch(struct ff_dev *dev, struct ff_io *ios, int n);
/*
 * Make every completed write durable (device cache flush; on an emulated
 * device also the pointer records of the zones written since their last).
 */
int ff_dev_flush(struct ff_dev *dev);
/*
 * What fsync needs: ff_dev_flush() unless every write completed so far is
 * durable already (each was written with FF_IO_DSYNC, or a flush that
 * started after it completed has finished, and no emulated zone's pointer
 * record is pending). Writes still in flight are not covered.
 */
int ff_dev_sync(struct ff_dev *dev);

/* Zones. */
uint32_t ff_dev_zone_of(const struct ff_dev *dev, uint64_t off);
int ff_dev_report(struct ff_dev *dev, uint32_t first, uint32_t n, struct ff_zone *out);
enum ff_zone_op { FF_ZOP_RESET = 1, FF_ZOP_FINISH, FF_ZOP_OPEN, FF_ZOP_CLOSE };
int ff_dev_zone_op(struct ff_dev *dev, uint32_t zone, enum ff_zone_op op);

/*
 * How the device layer drives io_uring (DESIGN.md "Devices"), process-wide:
 * a ring per submitting thread, or one I/O thread that owns a ring and takes
 * the other threads' I/O by message. Every call stays synchronous either way.
 * The default comes from the environment, FOLIOFS_URING=per-thread|io-thread,
 * else the faster one (bench/RESULTS-micro.md). ff_dev_set_uring_mode() may be
 * called at any time: each I/O runs in the mode current when it starts.
 */
enum ff_uring_mode {
	FF_URING_PER_THREAD = 1,
	FF_URING_IO_THREAD,
};
int ff_dev_set_uring_mode(enum ff_uring_mode mode);
enum ff_uring_mode ff_dev_uring_mode(void);
const char *ff_dev_uring_mode_name(enum ff_uring_mode mode);
/* "per-thread" or "io-thread"; 0 or -EINVAL. */
int ff_dev_parse_uring_mode(const char *s, enum ff_uring_mode *out);

/*
 * fsck: check an emulated device's pointer records without writing. Each
 * record slot of a sequential zone must be either never written (all zero)
 * or a whole valid record of that zone (magic, zone, checksum, F <= W <=
 * capacity, the rest of the block zero). report() is called for each slot
 * that is neither. *rolled_back (may be NULL) counts the zones whose newest
 * record's data was incomplete, so that the open rolled their pointer back
 * (the normal state after a power cut). Returns the number of bad slots, 0
 * on a device that is not emulated, or -errno.
 */
typedef void (*ff_dev_check_cb)(void *arg, uint32_t zone, unsigned slot, const char *what);
int ff_dev_check_records(struct ff_dev *dev, ff_dev_check_cb report, void *arg,
			 uint32_t *rolled_back);

struct ff_dev_stats {
	uint64_t reads, writes, flushes, zone_ops;
	uint64_t fua_writes; /* of the writes, those durable on completion (FF_IO_DSYNC) */
	uint64_t bytes_read, bytes_written;
	uint64_t read_errors, write_errors;
	uint64_t meta_bytes; /* emulation metadata written, not counted in bytes_written */
	uint64_t batch_max;  /* most I/Os one ff_dev_submit_batch() had in flight together */
};
void ff_dev_stats(const struct ff_dev *dev, struct ff_dev_stats *out);

#endif
