#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Crash-consistency driver for foliofs's posix format (issue 11).

Each iteration, from one seed: format a small posix image (a regular image,
or an emulated-zoned one), mount it with the real daemon, run several
threads of mixed namespace and data operations (create, buffered / O_SYNC /
O_DSYNC writes at 8-byte granularity, fsync, fdatasync, rename over existing
names and across directories (a quarter of them with RENAME_WHITEOUT, as
overlayfs renames in its upper layer), link, unlink of closed and open files,
mkdir / rmdir, truncate both ways, fsync of directories), then crash, with
crash.py's two kinds of crash point:
  cut:  FOLIOFS_FAULT="dead_after=N,vlog=LOG" (the device dies after its Nth
        raw write), kill -9, then ff-cut keeps a random subset of the writes
        the device had not made durable;
  kill: plain kill -9 at a random moment.
Then remount and check, with XFS's rules:
  - the mount succeeds, and `fsck.foliofs -n` exits 0 (a format it cannot
    check yet, exit 8, is counted and reported, not failed);
  - a name made durable (fsync of its file, or of its directory) holds the
    inode it held then, or one a later operation on that name put there;
    a name a directory fsync saw absent stays absent unless later created;
    so a rename over a durable name leaves the old or the new inode there,
    never neither;
  - every name holds an inode that name held at some time (a whiteout's
    name: the file, or a character device 0/0 that was never written);
  - a fsync'd file's size is at least its fsync'd size (unless a later
    truncate lowered it) and at most the largest size it ever had; every
    word of a fsync'd or sync-written range holds its durable content or a
    later write's (or zero after a later truncate);
  - every nonzero 8-byte word of every file is a word written to that inode
    at that offset (each written word is unique: inode tag, write number,
    word index), so no file holds bytes it was never given;
  - a file's mtime is no older than the start (less 50 ms for the coarse
    clock) of its last acknowledged O_SYNC write (O_SYNC is file integrity:
    a header carries it, or the log when the write went in place), nor of
    the last write before a fsync of it.
Inode numbers identify files across the remount (the format keeps them
stable and never reuses them). 30% of the iterations mount with commit=1,
so that the committer's ticks (a group commit of what nobody synced, and the
INODE records of changed times) come before some crash points.

  FOLIOFS_PCRASH_GC     garbage-collection crash points: a fraction (0..1,
                        default 0.2) of the iterations format a tiny device
                        (1 MiB zones, 9 data zones), fill most of it with a
                        fsync'd ballast file and keep overwriting it with
                        O_DSYNC writes beside the workload, so the collector
                        moves blocks and resets victims at the crash point
  FOLIOFS_PCRASH_PRESS  a fraction (0..1, default 0.25) of the iterations
                        whose daemon finds the metadata short of room from
                        4 KiB of checkpoint on (FOLIOFS_META_PRESS), so files
                        of 64 extents or more (the ballast's overwrites on
                        sequential zones) are defragmented at the crash point
  FOLIOFS_PCRASH_ITERS  iterations (default 200; long mode e.g. 5000)
  FOLIOFS_PCRASH_SEED   first seed (default: from the time; printed)
  FOLIOFS_PCRASH_ONLY   replay a single seed (without it, the fixed crash
                        points of SCENARIOS run first: the smallest
                        sequences the random driver failed on, kill -9)
  FOLIOFS_BUILD         build dir (default ./build)
  FOLIOFS_CRASH_DIR     work dir (default /tmp/h-pcrash/crash)
A failure prints "FAIL seed=S" with what differed, keeps the image and logs
in $FOLIOFS_CRASH_DIR/fail-S/; replay with FOLIOFS_PCRASH_ONLY=S (thread
timing makes some replays differ). Exits 0 when every iteration passed.
"""
import ctypes
import errno
import os
import random
import shutil
import stat
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash as C  # noqa: E402  (the mount, kill and cut helpers)

WORK = os.environ.get("FOLIOFS_CRASH_DIR", "/tmp/h-pcrash/crash")
FSCK = os.path.join(C.BUILD, "src/cli/fsck.foliofs")
ZS = 2 << 20
NZONES = 16
ABSENT = 0  # no inode has number 0
MAXSZ = 96 << 10  # files stay small: a crash point is cheap
# the raw write after which the device dies: the mount itself writes a few
# (its checkpoint), a workload a few hundred
DEAD_MAX = int(os.environ.get("FOLIOFS_PCRASH_DEAD_MAX", "150"))

# crash.py's helpers read these module globals
C.WORK = WORK
C.IMG = os.path.join(WORK, "img")
C.MNT = os.path.join(WORK, "mnt")
C.VLOG = os.path.join(WORK, "vlog")
C.DLOG = os.path.join(WORK, "daemon.log")
Fail = C.Fail


LIBC = ctypes.CDLL(None, use_errno=True)
RENAME_WHITEOUT = 4  # linux/fs.h


def rename_whiteout(a, b):
    """renameat2(a, b, RENAME_WHITEOUT), as overlayfs asks of its upper
    layer: a whiteout (a character device 0/0) is left at a."""
    if LIBC.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), RENAME_WHITEOUT):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def word(fid, wseq, idx):
    """The unique 8 bytes a write puts at word idx of a file (never zero)."""
    return struct.pack("<HHI", fid, wseq & 0xFFFF, idx)


class FileM:
    """One inode: its current content (as acknowledged), the content a crash
    must keep (per word: None = unconstrained, else the allowed values), the
    durable size floor, every word ever written at each index."""

    def __init__(self, ino, fid, isdir=False):
        self.ino = ino
        self.fid = fid
        self.isdir = isdir
        self.cur = bytearray()
        self.wseq = 0
        self.dur = {}  # word index -> set of allowed 8-byte values
        self.size_lo = None  # durable size floor
        self.size_hi = 0  # the largest size it ever had (or may have had)
        self.ever = {}  # word index -> set of values ever written there
        self.names = set()  # current paths
        self.wh = False  # a whiteout a rename left: a character device 0/0, never written
        self.hist = []
        # mtime floor (ns): an acknowledged O_SYNC write's stamp is durable
        # with it, a fsync makes the last write's durable, and nothing here
        # sets a time back
        self.mtime_lo = 0
        self.last_t0 = 0  # the start of the last acknowledged write, less the slack

    # before an operation: what it may leave behind if it is in flight
    def may_write(self, off, data):
        self.size_hi = max(self.size_hi, off + len(data))
        for i in range(len(data) // 8):
            w = data[i * 8:i * 8 + 8]
            self.ever.setdefault(off // 8 + i, set()).add(w)
            if off // 8 + i in self.dur:
                self.dur[off // 8 + i].add(w)
        # a gap between the old size and off reads as zeros
        for i in range(len(self.cur) // 8, off // 8):
            if i in self.dur:
                self.dur[i].add(bytes(8))

    def may_truncate(self, size):
        self.size_hi = max(self.size_hi, size)
        if self.size_lo is not None:
            self.size_lo = min(self.size_lo, size)
        for i, s in self.dur.items():
            if i >= size // 8:
                s.add(bytes(8))

    # after it was acknowledged
    def did_write(self, off, data):
        if len(self.cur) < off:
            self.cur += bytes(off - len(self.cur))
        self.cur[off:off + len(data)] = data

    def did_truncate(self, size):
        if size < len(self.cur):
            del self.cur[size:]
        else:
            self.cur += bytes(size - len(self.cur))

    def durable_range(self, off, n):
        for i in range(off // 8, (off + n) // 8):
            self.dur[i] = {bytes(self.cur[i * 8:i * 8 + 8])}

    def durable_all(self):
        self.durable_range(0, len(self.cur))
        # words beyond the size must not come back (they read as zeros if
        # the file grows again, and are beyond the size otherwise)
        for i in list(self.dur):
            if i >= len(self.cur) // 8:
                self.dur[i] = {bytes(8)}
        self.size_lo = len(self.cur)

    def sync_written(self, off, n):
        self.durable_range(off, n)
        self.size_lo = max(self.size_lo or 0, off + n)

    def check(self, size, data, mtime=None):
        if self.size_lo is not None and size < self.size_lo:
            return "size %d < durable size %d" % (size, self.size_lo)
        if mtime is not None and mtime < self.mtime_lo:
            return "mtime %d ns is older than an acknowledged O_SYNC write's (%d ns or later)" % (
                mtime, self.mtime_lo)
        if size > self.size_hi:
            return "size %d > largest size it ever had %d" % (size, self.size_hi)
        for i in range(len(data) // 8):
            w = data[i * 8:i * 8 + 8]
            if w != bytes(8) and w not in self.ever.get(i, ()):
                fid, ws, idx = struct.unpack("<HHI", w)
                return "word %d (byte %d) holds %s (fid %d write %d word %d), never written there" % (
                    i, i * 8, w.hex(), fid, ws, idx)
            a = self.dur.get(i)
            if a is not None and w not in a:
                return "word %d (byte %d of %d) holds %s, not its durable content %s" % (
                    i, i * 8, size, w.hex(), "/".join(x.hex() for x in a))
        return None


class Model:
    """The namespace: per path the inode now there, what a crash must leave
    there (None = unconstrained, else a set of inode numbers, ABSENT = 0)
    and every inode ever there."""

    def __init__(self):
        self.lock = threading.Lock()
        self.at = {}  # path -> ino (current)
        self.dur = {}  # path -> set
        self.ever = {}  # path -> set of inos
        self.files = {}  # ino -> FileM
        self.children = {}  # dir path -> set of names ever in it
        self.creating = set()  # paths of creates whose inode is not known yet
        self.nfid = 0

    def new_fid(self):
        with self.lock:
            self.nfid += 1
            return self.nfid

    def may_bind(self, path, ino):
        """Before an op that may leave ino (or ABSENT) at path."""
        with self.lock:
            if path in self.dur:
                self.dur[path].add(ino)
            if ino != ABSENT:
                self.ever.setdefault(path, set()).add(ino)
            d, n = os.path.split(path)
            self.children.setdefault(d, set()).add(n)

    def did_bind(self, path, ino):
        with self.lock:
            old = self.at.pop(path, None)
            if old and old in self.files:
                self.files[old].names.discard(path)
            if ino != ABSENT:
                self.at[path] = ino
                self.files[ino].names.add(path)

    def durable_name(self, path):
        with self.lock:
            self.dur[path] = {self.at.get(path, ABSENT)}

    def durable_dir(self, d):
        for n in list(self.children.get(d, ())):
            self.durable_name(os.path.join(d, n))


GC_FRACTION = float(os.environ.get("FOLIOFS_PCRASH_GC", "0.2"))
LIMIT2_FRACTION = float(os.environ.get("FOLIOFS_PCRASH_LIMIT2", "0.25"))
PRESS_FRACTION = float(os.environ.get("FOLIOFS_PCRASH_PRESS", "0.25"))
GC_ZS = 1 << 20
GC_NZONES = 13  # zone 0, 3 metadata zones, 9 data zones (2 the collector's, 1 kept for overwrites)
GC_BALLAST = 3 << 20
STATS_SHORT = [0]  # writes the full tiny device cut short (counted across threads; GIL)
STATS_WH = [0]  # renames with RENAME_WHITEOUT acknowledged


class GcChurn(threading.Thread):
    """Overwrites the ballast file with O_DSYNC writes: dead blocks in full
    zones, so the collector runs (moves, victim resets) during the crash."""

    def __init__(self, rng, m, f, nops, stop):
        super().__init__(daemon=True)
        self.r = random.Random(rng.getrandbits(64))
        self.m, self.f, self.nops, self.stop = m, f, nops, stop
        self.press = "FOLIOFS_META_PRESS" in os.environ
        self.idx = -1
        self.acked = 0
        self.err = None
        self.log = []

    def run(self):
        f = self.f
        try:
            fd = os.open(os.path.join(C.MNT, "ballast"), os.O_WRONLY | os.O_DSYNC)
        except OSError as e:
            self.err = e
            return
        try:
            for _ in range(self.nops):
                if self.stop.is_set():
                    break
                # within what the ballast's setup wrote (a short count on a full device)
                size = len(f.cur) // 4096 * 4096
                # under metadata pressure, 4 KiB pieces: the most extents for
                # a defragmentation pass to join before the crash
                sizes = [k for k in ((4096,) if self.press else (4096, 16384, 65536)) if k <= size]
                if not sizes:
                    break
                n = self.r.choice(sizes)
                off = self.r.randrange(0, (size - n) // 4096 + 1) * 4096
                f.wseq += 1
                data = b"".join(word(f.fid, f.wseq, off // 8 + i) for i in range(n // 8))
                self.log.append("churn odsync@%d+%d" % (off, n))
                f.may_write(off, data)
                if os.pwrite(fd, data, off) != n:
                    raise Fail("short churn write")
                f.did_write(off, data)
                f.sync_written(off, n)
                self.acked += 1
        except OSError as e:
            self.err = e
        except Exception as e:  # noqa: BLE001 - a driver bug must show
            self.err = e
        finally:
            try:
                os.close(fd)
            except OSError:
                pass

    def close_all(self):
        pass


def rel(p):
    return os.path.relpath(p, C.MNT)


class Worker(threading.Thread):
    """One thread: its own two directories (renames across them), its files
    and leaf subdirectories."""

    def __init__(self, rng, idx, m, nops, stop):
        super().__init__(daemon=True)
        self.r = random.Random(rng.getrandbits(64))
        self.idx = idx
        self.m = m
        self.nops = nops
        self.stop = stop
        self.dirs = ["t%da" % idx, "t%db" % idx]
        self.fds = {}  # ino -> fd kept open (also across its unlink)
        self.acked = 0
        self.err = None
        self.log = []

    def run(self):
        try:
            for _ in range(self.nops):
                if self.stop.is_set():
                    break
                self.one()
                self.acked += 1
        except OSError as e:
            self.err = e  # the crash: this op stays in flight
        except Exception as e:  # noqa: BLE001 - a driver bug must show
            self.err = e

    def path(self, name=None):
        d = self.r.choice(self.dirs)
        return "%s/%s" % (d, name or "f%d" % self.r.randrange(6))

    def files_here(self):
        with self.m.lock:
            return [(p, i) for p, i in self.m.at.items()
                    if p.split("/")[0] in self.dirs and not self.m.files[i].isdir
                    and not self.m.files[i].wh]

    def a(self, p):
        return os.path.join(C.MNT, p)

    def one(self):
        r, m = self.r, self.m
        k = r.random()
        fl = self.files_here()
        if not fl or k < 0.12:
            return self.create()
        p, ino = r.choice(fl)
        f = m.files[ino]
        if k < 0.50:
            return self.write(p, f)
        if k < 0.58:
            return self.fsync(p, f, r.random() < 0.5)
        if k < 0.64:
            return self.truncate(p, f)
        if k < 0.74:
            return self.rename(p, f)
        if k < 0.78:
            return self.link(p, f)
        if k < 0.86:
            return self.unlink(p, f)
        if k < 0.93:
            return self.dirop()
        return self.fsync_dir(r.choice(self.dirs))

    def create(self):
        p = self.path()
        if p in self.m.at:
            return self.unlink(p, self.m.files[self.m.at[p]])
        self.log.append("create %s" % p)
        # the inode number is known only after the create: until then, an
        # unknown empty inode at p is allowed
        self.m.may_bind(p, ABSENT)
        self.m.creating.add(p)
        fd = os.open(self.a(p), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        ino = os.fstat(fd).st_ino
        with self.m.lock:
            if ino in self.m.files:
                raise Fail("inode number %d reused for %s" % (ino, p))
            self.m.files[ino] = FileM(ino, self.m.nfid + 1)
            self.m.nfid += 1
        self.m.may_bind(p, ino)
        self.m.did_bind(p, ino)
        if self.r.random() < 0.5:
            self.fds[ino] = fd
        else:
            os.close(fd)

    def write(self, p, f):
        r = self.r
        size = len(f.cur)
        if r.random() < 0.5 or size == 0:
            off = size  # append
        else:
            off = r.randrange(0, size // 8 + 1) * 8
        n = r.choice([1, 1, 2, 8, 64, 512, 1024]) * 8 * r.randint(1, 4)
        n = max(8, min(n, MAXSZ - off))
        if off >= MAXSZ:
            return self.truncate(p, f)
        f.wseq += 1
        data = b"".join(word(f.fid, f.wseq, off // 8 + i) for i in range(n // 8))
        how = r.choice(["buf", "buf", "osync", "odsync", "rwf_dsync"])
        f.hist.append("%s@%d+%d" % (how, off, n))
        self.log.append("write %s ino %d %s@%d+%d" % (p, f.ino, how, off, n))
        flags = os.O_WRONLY | (os.O_SYNC if how == "osync" else os.O_DSYNC if how == "odsync" else 0)
        fd = self.fds.get(f.ino) if how in ("buf", "rwf_dsync") else None
        own = fd is None
        if own:
            fd = os.open(self.a(p), flags)
        # the write's stamp is the coarse clock (a tick behind at most) at its
        # start or later
        t0 = time.time_ns() - 50 * 1000 * 1000
        try:
            f.may_write(off, data)
            if how == "rwf_dsync":
                w = os.pwritev(fd, [data], off, os.RWF_DSYNC)
            else:
                w = os.pwrite(fd, data, off)
            if w != n:
                # the device filled part-way (the tiny GC device): a short
                # count as the kernel's, which ends this worker as ENOSPC
                # would; may_write covered the whole range
                STATS_SHORT[0] += 1
                raise OSError(errno.ENOSPC, "short write %d of %d to %s" % (w, n, p))
            f.did_write(off, data)
            if how != "buf":
                f.sync_written(off, n)
            f.last_t0 = max(f.last_t0, t0)
            if how == "osync":
                f.mtime_lo = max(f.mtime_lo, t0)
        finally:
            if own:
                os.close(fd)

    def fsync(self, p, f, data_only):
        self.log.append("%s %s ino %d" % ("fdatasync" if data_only else "fsync", p, f.ino))
        f.hist.append("fdatasync" if data_only else "fsync")
        fd = self.fds.get(f.ino)
        own = fd is None
        if own:
            fd = os.open(self.a(p), os.O_RDONLY)
        try:
            (os.fdatasync if data_only else os.fsync)(fd)
            f.durable_all()
            if not data_only:
                f.mtime_lo = max(f.mtime_lo, f.last_t0)
                for q in list(f.names):
                    self.m.durable_name(q)
        finally:
            if own:
                os.close(fd)

    def truncate(self, p, f):
        size = self.r.randrange(0, MAXSZ // 8) * 8 if self.r.random() < 0.3 else \
            self.r.randrange(0, len(f.cur) // 8 + 1) * 8
        self.log.append("truncate %s ino %d %d" % (p, f.ino, size))
        f.hist.append("trunc%d" % size)
        f.may_truncate(size)
        os.truncate(self.a(p), size)
        f.did_truncate(size)

    def rename(self, p, f):
        q = self.path()
        if q == p:
            return
        m = self.m
        tgt = m.at.get(q)
        if tgt and m.files[tgt].isdir:
            return
        self.log.append("rename %s -> %s (ino %d over %s)" % (p, q, f.ino, tgt))
        if tgt == f.ino:
            # two links of one inode: POSIX says rename does nothing
            os.rename(self.a(p), self.a(q))
            return
        if self.r.random() < 0.25:
            return self.rename_whiteout(p, q, f)
        m.may_bind(p, ABSENT)
        m.may_bind(q, f.ino)
        os.rename(self.a(p), self.a(q))
        m.did_bind(p, ABSENT)
        m.did_bind(q, f.ino)

    def rename_whiteout(self, p, q, f):
        """The rename and the whiteout at p are one operation: p holds the
        file or the whiteout, whose number is known only after it."""
        m = self.m
        self.log.append("rename whiteout %s -> %s (ino %d)" % (p, q, f.ino))
        m.creating.add(p)
        m.may_bind(q, f.ino)
        rename_whiteout(self.a(p), self.a(q))
        m.did_bind(q, f.ino)
        st = os.lstat(self.a(p))
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != 0:
            raise Fail("%s: the whiteout is mode %o rdev %d" % (p, st.st_mode, st.st_rdev))
        with m.lock:
            if st.st_ino in m.files:
                raise Fail("inode number %d reused for the whiteout at %s" % (st.st_ino, p))
            w = FileM(st.st_ino, 0)
            w.wh = True
            m.files[st.st_ino] = w
        m.may_bind(p, st.st_ino)
        m.did_bind(p, st.st_ino)
        STATS_WH[0] += 1

    def link(self, p, f):
        q = self.path()
        if q in self.m.at:
            return
        self.log.append("link %s -> %s (ino %d)" % (p, q, f.ino))
        self.m.may_bind(q, f.ino)
        os.link(self.a(p), self.a(q))
        self.m.did_bind(q, f.ino)

    def unlink(self, p, f):
        self.log.append("unlink %s (ino %d%s)" % (p, f.ino, ", open" if f.ino in self.fds else ""))
        self.m.may_bind(p, ABSENT)
        os.unlink(self.a(p))
        self.m.did_bind(p, ABSENT)
        if not f.names and f.ino in self.fds and self.r.random() < 0.5:
            os.close(self.fds.pop(f.ino))

    def dirop(self):
        m = self.m
        p = self.path("s%d" % self.r.randrange(2))
        ino = m.at.get(p)
        if ino is None:
            self.log.append("mkdir %s" % p)
            m.may_bind(p, ABSENT)
            m.creating.add(p)
            os.mkdir(self.a(p))
            ino = os.stat(self.a(p)).st_ino
            with m.lock:
                if ino in m.files:
                    raise Fail("inode number %d reused for %s" % (ino, p))
                m.files[ino] = FileM(ino, 0, isdir=True)
            m.may_bind(p, ino)
            m.did_bind(p, ino)
        else:
            self.log.append("rmdir %s (ino %d)" % (p, ino))
            m.may_bind(p, ABSENT)
            os.rmdir(self.a(p))
            m.did_bind(p, ABSENT)

    def fsync_dir(self, d):
        self.log.append("fsync dir %s" % d)
        fd = os.open(self.a(d), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
            self.m.durable_dir(d)
        finally:
            os.close(fd)

    def close_all(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()


def walk():
    """{path: (ino, isdir, size, data, mtime in ns, mode)} of the mounted tree."""
    out = {}
    for d, dns, fns in os.walk(C.MNT):
        for n in dns + fns:
            a = os.path.join(d, n)
            st = os.lstat(a)
            isdir = stat.S_ISDIR(st.st_mode)
            data = b""
            if stat.S_ISCHR(st.st_mode):
                if st.st_rdev != 0 or st.st_size:
                    raise Fail("%s: a character device %d of %d bytes, not a whiteout" % (
                        rel(a), st.st_rdev, st.st_size))
            elif not isdir:
                with open(a, "rb") as f:
                    data = f.read()
                if len(data) != st.st_size:
                    raise Fail("%s: read %d bytes of a %d-byte file" % (rel(a), len(data), st.st_size))
            out[rel(a)] = (st.st_ino, isdir, st.st_size, data, st.st_mtime_ns, st.st_mode)
    return out


def check(m, tree):
    errs = []
    for p, a in sorted(m.dur.items()):
        got = tree.get(p, (ABSENT,))[0]
        if got not in a and not (p in m.creating and got not in m.files):
            errs.append("%s holds inode %s, durable: %s" % (
                p, got or "none", "/".join(str(x) if x else "none" for x in sorted(a))))
    seen = {}
    for p, (ino, isdir, size, data, mtime, mode) in sorted(tree.items()):
        if p in ("lost+found",):
            continue
        if ino not in m.ever.get(p, ()) and not (p in m.creating and ino not in m.files
                                                  and (isdir or size == 0)):
            errs.append("%s holds inode %d, which was never there (there: %s)" % (
                p, ino, sorted(m.ever.get(p, ()))))
            continue
        if ino in m.files and m.files[ino].wh != stat.S_ISCHR(mode):
            errs.append("%s (ino %d): mode %o, %s" % (
                p, ino, mode, "a whiteout was there" if m.files[ino].wh else "not a whiteout"))
            continue
        if isdir or ino in seen or ino not in m.files:
            continue
        seen[ino] = p
        e = m.files[ino].check(size, data, mtime)
        if e:
            errs.append("%s (ino %d): %s [ops %s]" % (p, ino, e, " ".join(m.files[ino].hist[-10:])))
    # a fsync'd file whose names are constrained must be found
    return errs


def one_iteration(seed, stats):
    rng = random.Random(seed)
    mode = "kill" if rng.random() < 0.2 else "cut"
    C.force_unmount()
    for f in (C.IMG, C.VLOG, C.DLOG, C.VLOG + ".orig"):
        if os.path.exists(f):
            os.unlink(f)
    gc = rng.random() < GC_FRACTION
    zoned = gc or rng.random() < 0.5
    # half the regular images take I/O as a 512 B-sector disk (short data
    # headers), drawn apart from rng as press is
    C.LBLOCK[0] = 512 if not zoned and random.Random(seed ^ 0x512).random() < 0.5 else None
    if C.LBLOCK[0]:
        stats["lb512"] += 1
    # drawn apart from rng, so that a seed replays the sequence it drew before
    # this choice existed
    press = random.Random(seed ^ 0x9E55).random() < PRESS_FRACTION
    if press:
        os.environ["FOLIOFS_META_PRESS"] = "4096"
        stats["press"] += 1
    else:
        os.environ.pop("FOLIOFS_META_PRESS", None)
    # the ballast and its O_DSYNC churn: dead blocks for the collector on a
    # tiny device, a file of many extents for pressure's passes on zones
    churn = gc or (press and zoned)
    zs, nz = (GC_ZS, GC_NZONES) if gc else (ZS, NZONES)
    with open(C.IMG, "wb") as f:
        f.truncate(nz * zs)
    args = [C.MKFS, "--format", "posix", "--zone-size", str(zs)]
    if zoned:
        # metadata zones sequential, or conventional (zones 1-3) before
        # sequential data zones
        args += ["--emulate-zoned", "--conv-zones", str(rng.choice([1, 4]))]
        # two open and active zones: one writers' slot and no zone of the
        # collector's own, so its copies go behind data headers
        if rng.random() < LIMIT2_FRACTION:
            args += ["--max-open", "2", "--max-active", "2"]
    C.sh(args + [C.IMG])
    fault = None
    if mode == "cut":
        # a GC iteration writes its ballast first: the crash comes after it
        lo, hi = (40, 40 + 4 * DEAD_MAX) if churn else (1, DEAD_MAX)
        fault = "dead_after=%d,vlog=%s" % (rng.randint(lo, hi), C.VLOG)
    opts = rng.choice([None, "cache_size=8M", "cache_size=16M,max_folio=64K", "cache_size=1M,max_folio=64K", "sync_mode=writeback,cache_size=8M", "dirty_granularity=folio,max_folio=64K", "defrag=2,cache_size=8M"])
    # the committer ticks (every second) during the longer workloads; drawn
    # apart from rng, as press is
    if random.Random(seed ^ 0xC0FF).random() < 0.3:
        opts = "commit=1" + ("," + opts if opts else "")
    m = Model()
    nthr = rng.randint(2, 4)
    ws = []
    ballast = None
    try:
        p = C.mount(fault, opts)
    except Fail:
        # the device died under the mount's own writes: a crash point too
        if mode != "cut" or "device dead" not in C.tail_log(20):
            raise
        stats["in_mount"] += 1
        p = None
    try:
        if p is None:
            raise EOFError
        # the threads' directories, made durable before the workload
        try:
            for i in range(nthr):
                for d in ("t%da" % i, "t%db" % i):
                    os.mkdir(os.path.join(C.MNT, d))
                    ino = os.stat(os.path.join(C.MNT, d)).st_ino
                    m.files[ino] = FileM(ino, 0, isdir=True)
                    m.may_bind(d, ino)
                    m.did_bind(d, ino)
            fd = os.open(C.MNT, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            m.durable_dir("")
            if churn:
                bf = m.new_fid()
                fd = os.open(os.path.join(C.MNT, "ballast"), os.O_CREAT | os.O_RDWR, 0o644)
                ino = os.fstat(fd).st_ino
                m.files[ino] = ballast = FileM(ino, bf)
                m.may_bind("ballast", ino)
                m.did_bind("ballast", ino)
                try:
                    data = b"".join(word(bf, 0, i) for i in range(GC_BALLAST // 8))
                    ballast.may_write(0, data)
                    # a short count near a full device: only its bytes were written
                    data = data[:os.pwrite(fd, data, 0)]
                    ballast.did_write(0, data)
                    os.fsync(fd)
                    ballast.durable_all()
                    m.durable_name("ballast")
                finally:
                    os.close(fd)
        except OSError:
            pass  # the device died during the setup: nothing is durable
        stop = threading.Event()
        ws = [Worker(rng, i, m, rng.randint(10, 60), stop) for i in range(nthr)]
        if churn and ballast is not None and ballast.size_lo:
            ws.append(GcChurn(rng, m, ballast, rng.randint(100, 400), stop))
        kill_at = rng.uniform(0.0, 0.15) if mode == "kill" else None
        t0 = time.monotonic()
        for w in ws:
            w.start()
        while any(w.is_alive() for w in ws):
            if kill_at is not None and time.monotonic() - t0 >= kill_at:
                break
            if mode == "cut" and any(w.err for w in ws):
                break
            if time.monotonic() - t0 > C.HANG_S:
                C.hang_report(p)
                raise Fail("workload hung for %d s: %s" % (C.HANG_S, C.tail_log()))
            time.sleep(0.002)
        stop.set()
        if mode == "cut":
            for w in ws:
                w.join(5)
        if churn:
            # did the collector, or a pass, run before the crash? (counted, not required)
            try:
                st = os.getxattr(C.MNT, "user.foliofs.stats").decode()
                moved = int(st.split("gc_bytes_moved ")[1].split()[0])
                stats["gc_moved"] += gc and moved > 0
                moved = int(st.split("defrag_bytes ")[1].split()[0])
                stats["press_moved"] += moved > 0
            except (OSError, IndexError, ValueError):
                pass
    except EOFError:
        pass
    finally:
        if p is not None:
            died = p.poll()
            C.kill9(p)
            if died is not None and died < 0:
                raise Fail("the daemon died by itself (signal %d) before the kill: %s" % (
                    -died, C.tail_log()))
    if "device dead" in C.tail_log(1000):
        stats["died"] += 1
    for w in ws:
        w.join(10)
        if w.is_alive():
            raise Fail("a worker is stuck after kill -9")
        if w.err and not isinstance(w.err, OSError):
            raise Fail("driver error: %r" % w.err)
        w.close_all()
    stats["acked"] += sum(w.acked for w in ws)
    cutinfo = None
    if mode == "cut" and os.path.exists(C.VLOG):
        shutil.copy(C.VLOG, C.VLOG + ".orig")
        cut = C.sh([C.CUT, C.IMG, C.VLOG, str(seed), str(rng.choice([0, 30, 50, 70, 100]))]).stdout.split()
        cutinfo = dict(zip(cut[0::2], map(int, cut[1::2])))
        stats["dropped"] += cutinfo["dropped"]
        stats["logged"] += cutinfo["entries"]
    stats[mode] += 1
    errs = []
    try:
        p = C.mount()
    except Fail as e:
        errs.append("remount failed: %s" % e)
        p = None
    if p:
        try:
            tree = walk()
        except (OSError, Fail) as e:
            errs.append("reading the tree: %s" % e)
            tree = None
        finally:
            try:
                C.unmount(p)
            except Fail as e:
                errs.append(str(e))
        if tree is not None:
            errs += check(m, tree)
        r = C.sh([FSCK, "-n", C.IMG], check=False)
        if r.returncode == 8 and "cannot check" in r.stdout:
            stats["fsck_skipped"] += 1
        elif r.returncode != 0:
            errs.append("fsck -n exited %d: %s" % (r.returncode, " | ".join(r.stdout.splitlines()[-6:])))
    if errs:
        ev = os.path.join(WORK, "fail-%d" % seed)
        os.makedirs(ev, exist_ok=True)
        for f in (C.IMG, C.DLOG, C.VLOG + ".orig"):
            if os.path.exists(f):
                shutil.copy(f, ev)
        with open(os.path.join(ev, "ops.txt"), "w") as f:
            for w in ws:
                f.write("thread %d (err %r):\n  %s\n" % (w.idx, w.err, "\n  ".join(w.log)))
        raise Fail("%s [mode %s, %s%s, %s, opts %s; cut %s; evidence in %s]" % (
            "; ".join(errs[:6]), mode, "zoned" if zoned else "regular", ", gc" if gc else "",
            fault, opts, cutinfo, ev))
    if gc:
        stats["gc"] += 1


# ---- fixed crash points: the smallest sequences the random driver failed on ----


def sc_trunc_then_dsync(fd):
    """A sync write right after a truncate: its data header must count."""
    os.ftruncate(fd, 48)
    os.pwritev(fd, [b"S" * 16384], 16, os.RWF_DSYNC)
    return 16400, {(16, 16400): b"S"}


def sc_writeback_dsync_extend(fd):
    """sync_mode=writeback: an RWF_DSYNC write that extends the file inside
    a block already written in place (conventional space)."""
    g = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_SYNC)
    try:
        os.pwrite(g, b"A" * 16, 0)
    finally:
        os.close(g)
    os.pwritev(fd, [b"B" * 64], 16, os.RWF_DSYNC)
    return 80, {(0, 16): b"A", (16, 80): b"B"}


def sc_grow_after_partial_truncate(fd):
    """Truncate into a block, fsync, grow the file, then a sync write
    elsewhere: the bytes cut off by the truncate must read as zeros."""
    os.pwrite(fd, b"A" * 16384, 0)
    os.fsync(fd)
    os.ftruncate(fd, 2712)
    os.fsync(fd)
    os.ftruncate(fd, 27896)
    os.pwritev(fd, [b"B" * 256], 14392, os.RWF_DSYNC)
    return 27896, {(0, 2712): b"A", (2712, 14392): b"\0", (14392, 14648): b"B",
                   (14648, 27896): b"\0"}


SCENARIOS = [  # (name, mkfs args, mount options, function)
    ("trunc-then-dsync", [], None, sc_trunc_then_dsync),
    ("trunc-then-dsync-zoned", ["--emulate-zoned"], None, sc_trunc_then_dsync),
    ("writeback-dsync-extend", [], "sync_mode=writeback", sc_writeback_dsync_extend),
    ("grow-after-partial-truncate", [], None, sc_grow_after_partial_truncate),
    ("grow-after-partial-truncate-zoned", ["--emulate-zoned"], None,
     sc_grow_after_partial_truncate),
]


def one_scenario(name, mkfs, opts, fn):
    """Run fn on a fresh file, kill -9 the daemon, remount: the file holds
    exactly the size and the bytes fn says are durable."""
    C.LBLOCK[0] = None
    C.force_unmount()
    for f in (C.IMG, C.VLOG, C.DLOG):
        if os.path.exists(f):
            os.unlink(f)
    with open(C.IMG, "wb") as f:
        f.truncate(NZONES * ZS)
    C.sh([C.MKFS, "--format", "posix", "--zone-size", str(ZS), "-f"] + mkfs + [C.IMG])
    p = C.mount(None, opts)
    fd = None
    try:
        fd = os.open(os.path.join(C.MNT, "f"), os.O_CREAT | os.O_RDWR, 0o644)
        os.fsync(fd)
        dfd = os.open(C.MNT, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        size, want = fn(fd)
    finally:
        # killed with the file open: its close would write it back
        C.kill9(p)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    p = C.mount()
    try:
        with open(os.path.join(C.MNT, "f"), "rb") as f:
            data = f.read()
    finally:
        C.unmount(p)
    if len(data) != size:
        raise Fail("%s: size %d after kill -9, %d acknowledged durable" % (name, len(data), size))
    for (a, b), ch in sorted(want.items()):
        bad = next((i for i in range(a, b) if data[i:i + 1] != ch), None)
        if bad is not None:
            raise Fail("%s: byte %d is %r, durable %r" % (name, bad, data[bad:bad + 1], ch))


def main():
    for exe in (C.MKFS, C.DAEMON, C.CUT, FSCK):
        if not os.access(exe, os.X_OK):
            print("pcrash: %s not built" % exe)
            return 1
    os.makedirs(C.MNT, exist_ok=True)
    only = os.environ.get("FOLIOFS_PCRASH_ONLY")
    if only:
        seeds = [int(only)]
    else:
        first = int(os.environ.get("FOLIOFS_PCRASH_SEED", str(int(time.time()) % 1000000 * 1000)))
        n = int(os.environ.get("FOLIOFS_PCRASH_ITERS", "200"))
        seeds = range(first, first + n)
        print("pcrash: %d iterations, seeds %d..%d" % (n, first, first + n - 1), flush=True)
    stats = dict(cut=0, kill=0, acked=0, dropped=0, fsck_skipped=0, in_mount=0, died=0,
                 logged=0, gc=0, gc_moved=0, press=0, press_moved=0, lb512=0)
    fails = []
    t0 = time.monotonic()
    try:
        for sc in SCENARIOS if not only else []:
            stats["kill"] += 1
            try:
                one_scenario(*sc)
            except Fail as e:
                fails.append(sc[0])
                print("FAIL scenario %s" % e, flush=True)
                print("  daemon log: %s" % C.tail_log(6), flush=True)
        for i, s in enumerate(seeds):
            try:
                one_iteration(s, stats)
            except Fail as e:
                fails.append(s)
                print("FAIL seed=%d: %s" % (s, e), flush=True)
                print("  replay: FOLIOFS_PCRASH_ONLY=%d %s" % (s, sys.argv[0]), flush=True)
                print("  daemon log: %s" % C.tail_log(12), flush=True)
                if os.environ.get("FOLIOFS_CRASH_KEEP"):
                    return 1
            if (i + 1) % 25 == 0:
                print("pcrash: %d done, %d failed, %.0f s" % (i + 1, len(fails),
                      time.monotonic() - t0), flush=True)
    finally:
        C.force_unmount()
    print("pcrash: %d crash points (%d power cuts: %d in the workload, %d in the mount; "
          "%d kill -9; %d on a tiny device, GC moving blocks in %d; %d under metadata "
          "pressure, defragmenting in %d; %d on 512 B blocks), %d ops acknowledged (%d renames leaving a whiteout), "
          "%d volatile writes logged, %d dropped, fsck skipped %d, short writes %d; %d failed%s; "
          "%.0f s" % (
              stats["cut"] + stats["kill"], stats["cut"], stats["died"] - stats["in_mount"],
              stats["in_mount"], stats["kill"], stats["gc"], stats["gc_moved"], stats["press"],
              stats["press_moved"], stats["lb512"], stats["acked"], STATS_WH[0],
              stats["logged"], stats["dropped"], stats["fsck_skipped"], STATS_SHORT[0], len(fails),
              (" (%s)" % fails) if fails else "", time.monotonic() - t0))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
