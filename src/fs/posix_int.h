/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The posix format's in-memory state, shared by the format (posix.c) and its
 * fsck (posix_fsck.c), which mounts an image read-only and checks the state
 * the mount rebuilt: inodes, directories, extents, xattrs, the zone table.
 * Nothing else includes this.
 */
#ifndef FOLIOFS_FS_POSIX_INT_H
#define FOLIOFS_FS_POSIX_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "foliofs/cache.h"
#include "foliofs/dev.h"
#include "foliofs/util.h"
#include "internal.h"
#include "posix.h"

#define PX_MAX_SLOTS 4
/* files waiting for the GC thread to defragment them (posix.c, defrag_inode) */
#define PX_DEFRAG_QUEUE 32

/*
 * An extent's dev (and an EXTENT record's dev_off) for blocks that fallocate
 * reserved and nobody wrote yet: they read as zeros, count as used (st_blocks,
 * statfs) and the space they need is kept free for them (fs->resv_blk).
 * PX_NO_DEV (posix.h) is the other special value: a hole, in records only.
 */
#define PX_UNWRITTEN (UINT64_MAX - 1)

/* A record batch being built (little-endian). */
struct px_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

struct px_ext {
	uint64_t off, len; /* file range, block multiples */
	uint64_t dev;	   /* device offset of off */
	uint64_t dseq;	   /* data sequence number of the write that put it there */
	uint64_t rseq;	   /* log seq of its EXTENT record (0: restored from a checkpoint/replay) */
};

/*
 * A range of a file's blocks that buffered writes dirtied where no extent
 * maps or reserves them: their room is taken (delayed allocation, posix.c
 * "delayed allocation") until write-back maps them.
 */
struct px_da {
	uint64_t off, len; /* file range, block multiples */
};

struct px_xattr {
	struct px_xattr *next;
	char *name;
	void *val;
	uint32_t vlen;
};

struct px_dent {
	struct px_dent *hnext;
	char *name;
	uint16_t nlen;
	uint32_t hash;
	uint64_t ino, cookie;
	bool dead;
};

struct px_dir {
	struct px_dent **ents; /* in cookie order; dead ones until compaction */
	size_t n, cap, ndead, nlive;
	struct px_dent **ht; /* name hash, chained */
	size_t hcap;
	uint64_t next_cookie;
	uint64_t parent;
};

struct px_fs;

/*
 * An inode. Every field but the ones marked otherwise is guarded by fs->ns.
 */
struct px_inode {
	struct px_inode *hnext;
	struct px_fs *fs; /* immutable */
	uint64_t ino;	  /* immutable */
	uint32_t mode, uid, gid, nlink;
	uint64_t size;	    /* what readers see */
	uint64_t disk_size; /* the size the log or a header says: data below it is written */
	uint64_t wsize;	    /* a sync write in progress ends here (headers carry it) */
	uint64_t rdev;
	uint64_t dseq_floor;
	struct timespec atime, mtime, ctime, btime;
	char *target; /* symlink */
	uint32_t tlen;
	struct px_dir *dir;
	struct px_ext *ext;
	size_t next, ecap;
	uint64_t ext_bytes; /* sum of ext[].len: st_blocks without a walk of the extents */
	struct px_da *da; /* delayed allocations: sorted, disjoint, not touching, no extent there */
	size_t nda, dacap;
	uint64_t da_blk; /* blocks in da */
	struct px_xattr *xattrs;
	uint64_t nlookup, nopen; /* runtime only */
	/* newest queued record about it that fsync commits (not the EXTENT of a data header) */
	uint64_t last_rseq;
	uint64_t meta_rseq; /* newest INODE or DIRENT_ADD record: a sync write needs it durable */
	bool attr_dirty;    /* times or size changed by writes, not logged yet */
	bool adq;	    /* its number is in fs->adq, for the committer to log its times */
	bool times_seen;    /* mtime/ctime handed out since a write last stamped them */
	bool written;	    /* written since the last close's flush or fsync */
	/*
	 * The last record of its create: while the log has not committed it, no
	 * record of the file is durable, and a mount ignores the file's data
	 * headers. A sync write then need not wait for the records before its
	 * data (px_write_once, early: ns).
	 */
	uint64_t new_rseq;
	bool early;
	/*
	 * The bytes past the size in its last block are zeros on the device, or
	 * were written since the mount: made by this mount, or px_write zeroed
	 * them durably at its first growth (grow_tail).
	 */
	bool tail_ok;
	bool freed;
	struct ff_cinode *ci; /* regular files, made at first use (ci_ensure_locked), then kept */
	struct ff_mutex io_lock; /* serialises writers and truncates; above ns */
	uint32_t gc_pins;	 /* garbage collection works on it: reap() keeps it */
	/*
	 * Defragmentation (posix.c, defrag_inode): while defrag is set no
	 * in-place overwrite is mapped into the file's blocks, and inplace_n
	 * counts those mapped and not done; defrag_at is the extent count at
	 * which an append queues the file again (0: fs->defrag_min); dq: in
	 * fs->dq; defrag_dry: its last pass joined nothing; oop_s: when its
	 * last write that was not in place ended (monotonic seconds);
	 * defrag_blk: the block the next pass starts from (where the last one
	 * stopped, PX_DEFRAG_PASS moved). All ns.
	 */
	uint32_t inplace_n, defrag_at, oop_s, defrag_blk;
	bool defrag, dq, defrag_dry;
	struct px_inode *dead_next;
};

/*
 * An owner of a zone: an inode with next extents in it. A zone's owners are
 * an open-addressed table (linear probing, by inode number), so that GC finds
 * the inodes to move without a scan of all of them. Guarded by fs->ns.
 */
struct px_owner {
	struct px_inode *i; /* NULL: an empty slot of the table */
	uint64_t next;
};

/*
 * A zone. start, cap, seq are immutable after mount; the rest is guarded by fs->ns.
 * Memory: 112 bytes a zone and 4 in fs->gc_cand, and 16 bytes a table slot
 * of its owners (at most 3/4 full; halved below 1/8 and freed when empty, at
 * an unlink or a zone state change).
 */
struct px_zone {
	uint64_t start, cap;
	bool seq;
	uint32_t state;
	uint64_t epoch;
	uint64_t cursor; /* committed cursor: roll-forward starts here (absolute) */
	uint64_t wp;	 /* next data write (absolute) */
	uint64_t valid;	 /* valid data blocks */
	uint64_t next;	 /* extents in it (a move writes a header for each) */
	int inflight;	 /* data writes mapped, not done */
	int inplace;	 /* in-place overwrites mapped, not done */
	int slot;	 /* -1: not an open slot */
	bool victim;	 /* being emptied by garbage collection: no in-place write, not opened */
	uint64_t mtime;	 /* data sequence clock when it last changed (its age, for GC) */
	struct px_owner *own; /* the inodes with extents in it: own_cap slots (0 or a power of 2) */
	uint32_t own_cap, own_n;
	uint32_t cand; /* its index in fs->gc_cand, UINT32_MAX: not a GC candidate */
	bool isfree;   /* counted in fs->nfree (zone_free_locked, as last computed) */
};

struct px_slot {
	struct ff_mutex mu; /* held from map_write to write_done of one write */
	uint32_t zone;	    /* UINT32_MAX: none; written with mu and ns held, read with either */
	uint64_t dseq;	    /* the write in flight; guarded by mu */
	bool sync;	    /* the write in flight is a sync write's own (FF_MAPW_SYNC); mu */
	/* blocks of the write in flight that were promised (fs->wb_promised); mu and ns */
	uint64_t promised;
	/* the ranges of the write in flight, in the order written (px_more); mu */
	uint32_t npiece;
	struct px_piece {
		uint64_t off, len;
	} piece[PX_DH_PIECES_MAX];
};

struct px_fs {
	/* immutable after mount */
	struct ff_fs base;
	struct ff_fs_opts o;
	struct ff_dev *dev;
	struct ff_cache *cache;
	uint8_t uuid[16];
	uint8_t dhkey[16]; /* PX_SB_DHKEY */
	uint32_t dh_seed;  /* crc32c of dhkey: a data header's crc starts from it (0 without) */
	uint32_t nr_zones, meta_first, meta_count;
	uint64_t features; /* PX_FEAT_*, from the superblock */
	/*
	 * PX_FEAT_SHORTDH on a device of 512 B logical and physical blocks: a
	 * write in a conventional zone that no other range joins writes a
	 * short header (px_map_write)
	 */
	bool short_dh;
	uint64_t zone_size;
	bool ro;
	int nslots;
	bool gc_slot;	     /* GC writes into a zone of its own, without data headers */
	bool defrag_on;	     /* every data zone conventional and gc_slot: files are defragmented */
	uint32_t defrag_min; /* extents appends add before a pass (-o defrag=N; 0: none) */

	/* nanoseconds: the newest fine-clock time handed out (posix.c, now_ts); atomic */
	_Atomic uint64_t time_floor;

	/* guarded by ns: */
	struct ff_mutex ns;
	struct px_inode **itab;
	size_t icap, icount;
	uint64_t resv_blk; /* blocks of every PX_UNWRITTEN extent: reserved by fallocate */
	uint64_t da_blk;   /* blocks of every inode's delayed allocations (i->da_blk) */
	/*
	 * Blocks of resv_blk and da_blk that a write in flight places: its
	 * zone's pointer has moved past them already (the slots' promised).
	 */
	uint64_t wb_promised;
	/*
	 * The next checkpoint's bytes, as measured (cp_measure_locked, or the
	 * last checkpoint's length) plus every record committed since, and
	 * how much of it is records since (meta_room_locked).
	 */
	uint64_t meta_est, meta_since;
	uint64_t lim_press; /* FOLIOFS_META_PRESS (meta_above_locked); 0: none */
	uint64_t next_ino, next_dseq;
	bool live; /* the mount's replay is over: an inode made now is a new file */
	struct px_zone *zones;
	struct px_inode *dead; /* removed inodes whose cache inode reap() frees */
	/* zones free to open (zone_free_locked) and the blocks they hold (zone_changed_locked) */
	uint32_t nfree;
	uint64_t free_blk;
	/*
	 * GC candidates: every zone a round may take (gc_gain_locked > 0), maybe
	 * more; nr_zones entries allocated, gc_ncand used (zone_changed_locked).
	 */
	uint32_t *gc_cand, gc_ncand;
	/* each with its own mu (see struct px_slot); slots[nslots] is GC's when gc_slot */
	struct px_slot slots[PX_MAX_SLOTS + 1];

	struct ff_mutex log; /* guards the fields down to leader */
	pthread_cond_t log_cv;
	struct px_buf pend;
	uint64_t next_seq;
	_Atomic uint64_t committed;
	bool leader;
	int log_err;	  /* set once, by a failed log write or px_shutdown; never cleared */
	uint32_t log_idx; /* meta zone in use: meta_first + log_idx (leader only) */
	uint32_t cp_idx;  /* where its checkpoint starts: log_idx or a zone before (leader only) */
	uint64_t log_off; /* absolute, block aligned (leader only) */
	uint64_t gen;	  /* its generation (leader only) */

	/*
	 * Shut down (posix.c, px_shutdown): the log failed, or the device
	 * failed a data write and then a flush. Set once with log_err, never
	 * cleared; read without a lock at the start of every change, which then
	 * fails with EIO.
	 */
	_Atomic bool shut;

	/*
	 * Garbage collection (posix.c, section "garbage collection"). gc_reserve
	 * and gc_low are immutable after mount; the rest is guarded by gc_mu, a
	 * leaf lock (taken with ns or a slot's mu held, never the other way).
	 */
	uint32_t gc_reserve; /* free data zones only GC may open */
	uint32_t gc_low;     /* the GC thread runs while free zones are at most this */
	uint64_t op_blk;     /* sequential room new data may not take (set at mount, under ns) */
	struct ff_mutex gc_mu;
	pthread_cond_t gc_cv;	   /* wakes the GC thread */
	pthread_cond_t gc_done_cv; /* a GC round ended: throttled writers retry */
	pthread_t gc_thread;
	/* the committer: every commit_ms, the records nobody committed (commit_main) */
	struct ff_mutex cm_mu;
	pthread_cond_t cm_cv;
	pthread_t cm_thread;
	bool cm_on, cm_stop;
	uint32_t commit_ms;
	/* a log seq an fsync asked written now (commit_early), 0 = none; under cm_mu */
	uint64_t cm_want;
	/* inodes whose times reads or writes changed (attr_dirty), by number; under ns */
	uint64_t *adq;
	size_t adq_n, adq_cap;
	_Atomic bool gc_on;   /* the thread runs (read-write mount); read without gc_mu */
	bool gc_stop;	      /* unmount: the thread ends */
	bool gc_req;	      /* someone needs free zones */
	bool gc_need;	      /* a writer waits for the round (gc_kick with round) */
	bool gc_force;	      /* the next round runs whatever the free zones (unit tests) */
	uint64_t gc_rounds;   /* rounds ended */
	uint32_t gc_freed;    /* zones freed by the last round */
	bool gc_none;	      /* the last round found nothing it could reclaim */
	bool gc_busy;	      /* a round is running */
	uint64_t gc_none_gen; /* gc_gen when that round started */
	/* bumped (gc_progress) when a round might find a victim it did not; atomic, no lock */
	_Atomic uint64_t gc_gen;
	/* time rounds spent choosing victims and finding their owners (ns); atomic, no lock */
	_Atomic uint64_t gc_find_ns;
	/* files queued for the GC thread to defragment (defrag_queue_locked); gc_mu */
	uint64_t dq[PX_DEFRAG_QUEUE];
	uint32_t dq_n;
	/* a pass is running, and passes done (meta_throttle waits for them); gc_mu */
	bool dq_busy;
	uint64_t dq_passes;
	/* the metadata was past PX_META_PRESS at the last pass: passes go before rounds */
	_Atomic bool meta_press;

	_Atomic uint64_t st_log_writes, st_log_bytes, st_ckpts, st_hdr_writes, st_inplace,
		st_commits, st_gc_zones, st_gc_bytes, st_gc_waits, st_gc_yields, st_zone_opens;
	/* victims picked, their live and total blocks at pick time, headers GC wrote */
	_Atomic uint64_t st_gc_victims, st_gc_victim_valid, st_gc_victim_room, st_gc_hdrs;
	/* EXTRUN records the log's writer made, and the EXTENT records they stand for */
	_Atomic uint64_t st_runs, st_run_exts;
	/* pieces written behind another's data header (px_more) */
	_Atomic uint64_t st_pieces;
	/* the committer's commits, and its INODE records of changed times */
	_Atomic uint64_t st_cm_commits, st_cm_times;
	/* defragmentation passes run, and the bytes they moved */
	_Atomic uint64_t st_defrag_passes, st_defrag_bytes;
};

/*
 * posix.c: a read-only mount for fsck that keeps a namespace the mount would
 * refuse (a directory cycle, an entry naming a freed inode...), for fsck to
 * report every fault in it.
 */
int ff_posix_mount_fsck(const char *path, struct ff_fs **out);

/* An inode as the namespace checks (the mount's and fsck's) count it. */
struct px_ns_ent {
	struct px_inode *i;
	uint64_t names;	 /* live entries naming it */
	uint64_t parent; /* the directory of its last name counted (the mount's check) */
	bool reached;	 /* from the root */
};

/*
 * posix.c: every inode of fs's table in *out (calloc'd, the caller frees it,
 * also on error), sorted by number, *nout of them. Caller holds ns. Returns
 * 0, -ENOMEM, or -EUCLEAN when the table holds more inodes than it counts.
 */
int px_ns_table_locked(struct px_fs *fs, struct px_ns_ent **out, size_t *nout);
/* posix.c: the entry of inode ino in a table px_ns_table_locked made, or NULL. */
struct px_ns_ent *px_ns_find(struct px_ns_ent *v, size_t n, uint64_t ino);

/*
 * posix.c: when the superblock at the start of path (read from the path,
 * not through the device layer) is valid and its geometry differs from di's
 * (di NULL: the device would not open, being too small), say that the
 * device's size changed since mkfs.foliofs and return -EUCLEAN; else 0.
 */
int px_explain_resize(const char *path, const struct ff_dev_info *di);
/*
 * posix.c: whether the emulation trailer of path (the description of its
 * zones in its last 4 KiB) can be written again from its superblock: a
 * layout of conventional zones only (a regular device), the device as
 * large as at mkfs, and the zones that layout gives the superblock's. 0
 * with the options that write it (ff_dev_format_emulated) in *eo (may be
 * NULL), else -EUCLEAN. Emulated sequential zones are not: their capacity
 * and limits are in the trailer alone.
 */
int px_trailer_plan(const char *path, struct ff_emu_opts *eo);
/*
 * posix.c: the device's size at mkfs, from the superblock at the start of
 * path (ff_dev_opts.formatted_size), or 0.
 */
uint64_t px_formatted_size(const char *path);
/*
 * posix.c: say why path is too small for the default zone size
 * (ff_dev_opts.quiet_small): px_explain_resize's reason, or that it is too
 * small for the format. Returns -EUCLEAN or -ENOSPC.
 */
int px_too_small(const char *path);

/* posix_fsck.c: the format table's fsck (fs.h ff_fs_fsck) */
int ff_posix_fsck(const char *path, unsigned flags, struct ff_fsck_report *r);

#endif
