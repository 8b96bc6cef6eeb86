#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Concurrent model checker for foliofs's posix format.

model.py's checker (fsx/fsstress in spirit, multi-threaded, the expected bytes
of every file kept in a model) for the default on-disk format. One iteration
(one seed) formats a small posix image, a regular one or an emulated-zoned one
(1-4 MiB zones; in some iterations a tiny device with a fsync'd ballast file
that a churn thread keeps overwriting with O_DSYNC writes, so the collector
moves blocks during the workload), creates a handful of files, and runs
phases. Each phase mounts with options drawn from cache_size=1M/4M/8M,
max_folio=64K/2M, sometimes sync_mode=writeback, sometimes
dirty_granularity=folio, in half of them commit=1 (the committer commits
what nobody synced every second, among the writers), and runs:
  - three writers: pick a file, take its lock (the kernel serialises writes to
    one FUSE file, so a write and its model update are one step), and do an
    overwrite anywhere of any length and alignment (buffered, O_SYNC, O_DSYNC,
    pwritev RWF_DSYNC; O_DIRECT and O_DIRECT|O_DSYNC block-aligned from mmap
    buffers), an O_APPEND append, a truncate down or up, fallocate (default
    and KEEP_SIZE), a PUNCH_HOLE or a ZERO_RANGE (with and without
    KEEP_SIZE: what px_fallocate accepts). Every write's bytes are random and
    never zero: zero only ever means a hole, a gap, a truncate, a punch or a
    zeroed range, and a byte written by no write at that offset shows;
  - two fsync/fdatasync threads on their own fds;
  - two readers (buffered through the kernel page cache, and O_DIRECT) that
    check every byte against the model while the writers run: a byte holds
    its value when the read began, or one that a change overlapping the read
    put there; with no change overlapping, the read is exact.
A phase ends with one of:
  clean: stop, unmount (umount or fusermount3 -u), wait for the daemon (exit
         0), fsck.foliofs -n (exit 0); the next mount reads every file, which
         must equal the model exactly, with the mtime it had before;
  kill:  kill -9 of the daemon mid-workload;
  cut:   a power cut: FOLIOFS_FAULT=vlog=... (in 40 % of them dead_after=N
         too: the device dies mid-phase), kill -9, then ff-cut drops a random
         share of the writes the device had not made durable.
After kill and cut: remount, read every file, unmount, fsck -n, and each file
must obey XFS's rules (docs/posix-format.md, "Durability rules"):
  - its size is at least its last fsync'd or sync-written size (less what a
    later truncate took) and at most the largest size it had since its last
    fsync;
  - every byte of a range made durable (fsync, fdatasync, or an acknowledged
    O_SYNC / O_DSYNC / RWF_DSYNC / O_DIRECT|O_DSYNC write) holds its durable
    content or what a later write, truncate or punch put there (zeros for
    the last two); a byte beyond the durable size holds zero or what a later
    change put there; so no byte holds data never written to that file at
    that offset.
The model then adopts what the remount found and the next phase goes on from
that content: recovery runs again on an image that recovery already
touched, and one iteration covers several crash points (as model.py does).

  FOLIOFS_PMODEL_SECONDS  time budget (default 90); long mode: e.g. 14400
  FOLIOFS_PMODEL_SEED     first seed (default: from the time; printed)
  FOLIOFS_PMODEL_ONLY     replay one seed (thread timing makes replays differ)
  FOLIOFS_PMODEL_DIR      work dir (default /tmp/h-pmodel/pmodel)
  FOLIOFS_PMODEL_ENDS     phase ends to pick from (default clean,kill,cut)
  FOLIOFS_PMODEL_GC       share of iterations on a tiny device (default 0.25)
  FOLIOFS_PMODEL_PRESS    share of iterations whose daemon finds the metadata
                          short of room from 4 KiB of checkpoint on
                          (FOLIOFS_META_PRESS): files of 64 extents or more
                          are defragmented, on sequential zones too
                          (default 0.3)
  FOLIOFS_PMODEL_FILES    how many files (default 4)
  FOLIOFS_PMODEL_MIX      focus: the writers' weights of buf, append, osync, odsync,
                          rwf_dsync, odirect, odirect_dsync (e.g. 0,0,0,1,0,0,0)
  FOLIOFS_PMODEL_META     focus: the share of truncates and fallocates (0..1)
  FOLIOFS_PMODEL_KCACHE   share of mounts with -o kernel_cache (default 0; see
                          the README: a kill -9 can wedge such a mount)
  FOLIOFS_PMODEL_PARANOID each writer reads its whole file back after each change
  FOLIOFS_PMODEL_SELFTEST before each check one byte of the model is made
                          wrong: the check must report it
  FOLIOFS_BUILD           build dir (default ./build)
A failure prints "FAIL seed=S phase P: what" and keeps the image, the daemon
log, the volatile-write log and model.txt (each file's operations and the
changes not yet durable) in $FOLIOFS_PMODEL_DIR/fail-S/. Exit 0 when nothing
failed, 1 otherwise, 77 when /dev/fuse is unusable.
"""
import collections
import ctypes
import errno
import gc
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ.get("FOLIOFS_PMODEL_DIR", "/tmp/h-pmodel/pmodel")
os.environ["FOLIOFS_CRASH_DIR"] = WORK  # crash.py's paths (model.py sets the same)
sys.path.insert(0, HERE)
import model as M  # noqa: E402  (AIO-free helpers: aligned buffers, diffs, fuse check)

C = M.crash  # mount, kill -9, ff-cut: one implementation
C.WORK = WORK
C.IMG = os.path.join(WORK, "img")
C.MNT = os.path.join(WORK, "mnt")
C.VLOG = os.path.join(WORK, "vlog")
C.DLOG = os.path.join(WORK, "daemon.log")
IMG, MNT, VLOG, DLOG = C.IMG, C.MNT, C.VLOG, C.DLOG
FSCK = os.path.join(C.BUILD, "src/cli/fsck.foliofs")

BLK = 4096
NFILES = int(os.environ.get("FOLIOFS_PMODEL_FILES", "4"))
MIX = os.environ.get("FOLIOFS_PMODEL_MIX")  # focus: the writers' flavour weights
META = os.environ.get("FOLIOFS_PMODEL_META")  # focus: the share of truncates and fallocates
ENDS = os.environ.get("FOLIOFS_PMODEL_ENDS", "clean,kill,cut").split(",")
GC_SHARE = float(os.environ.get("FOLIOFS_PMODEL_GC", "0.25"))
PRESS_SHARE = float(os.environ.get("FOLIOFS_PMODEL_PRESS", "0.3"))
KCACHE = float(os.environ.get("FOLIOFS_PMODEL_KCACHE", "0"))  # share of mounts with kernel_cache
PARANOID = bool(os.environ.get("FOLIOFS_PMODEL_PARANOID"))
HANG_S = int(os.environ.get("FOLIOFS_PMODEL_HANG_S", "60"))
GC_ZS, GC_NZONES, GC_BALLAST = 1 << 20, 24, 6 << 20
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10
NOZERO = bytes([1]) + bytes(range(1, 256))  # translate(): a written byte is never zero

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd, mode, off, n):
    if _libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


Fail = M.Fail
FAILS = (M.Fail, C.Fail)  # crash.py's helpers raise their own
first_diff, show, aligned_buf = M.first_diff, M.show, M.aligned_buf


class SelfTestMissed(Exception):
    """FOLIOFS_PMODEL_SELFTEST: a wrong byte in the model went unnoticed."""


STATS = M.Stats()
FIRST = {}  # failure kind -> the first seed that showed it


# ---- the model of one file ----


class Ev:
    """One change to a file, recorded before its syscall (so a crash or a
    failure leaves it possible). It covers [lo, hi): zeros over [lo, dlo)
    (the gap a write past the size leaves, a truncate, a punch, a growing
    fallocate), then data over [dlo, hi)."""

    __slots__ = ("no", "kind", "lo", "dlo", "hi", "data", "size", "sync", "acked")

    def __init__(self, no, kind, lo, hi, data, size, sync):
        self.no, self.kind, self.lo, self.hi, self.data = no, kind, lo, hi, data
        self.dlo = hi - len(data)
        self.size = size  # the file's size once it is done
        self.sync = sync  # durable when acknowledged
        self.acked = False

    def val(self, p):
        return 0 if p < self.dlo else self.data[p - self.dlo]

    def content(self):
        return bytes(self.dlo - self.lo) + self.data

    def __repr__(self):
        return "#%d %s[%d,%d)%s%s" % (self.no, self.kind, self.lo, self.hi,
                                      " sync" if self.sync else "",
                                      "" if self.acked else " unacked")


class File:
    """What the application was told about one file. wlock is held around a
    change and its model update; mlock, briefly, around every read or change
    of the fields below (readers and fsyncs snapshot them while a change is in
    flight).

    acked is the content after every acknowledged change; durimg what a crash
    must keep, per byte (zeros beyond the durable size), as of the last fsync
    (evno base) with the acknowledged sync writes since applied; evs the
    changes after base (acknowledged or not); points the (evno, size) pairs a
    fsync or sync write made durable; evlog the recent changes, for readers."""

    def __init__(self, idx, name, maxf):
        self.idx = idx
        self.name = name
        self.path = os.path.join(MNT, name)
        self.maxf = maxf
        self.wlock = threading.Lock()
        self.mlock = threading.Lock()
        self.evno = 0
        self.inflight = None
        self.acked = bytearray()
        self.durimg = bytearray(maxf)
        self.base = 0
        self.base_size = 0
        self.evs = []
        self.points = [(0, 0)]
        self.evlog = collections.deque(maxlen=512)
        self.hist = collections.deque(maxlen=80)
        self.fds = {}
        self.broken = False
        self.churn_only = False

    def size(self):
        return len(self.acked)

    def begin(self, kind, lo, hi, data=b"", size=None, sync=False):
        """Before the syscall of a change. Caller holds wlock."""
        with self.mlock:
            self.evno += 1
            ev = Ev(self.evno, kind, lo, hi, data, len(self.acked) if size is None else size, sync)
            self.inflight = ev
            self.evs.append(ev)
            self.evlog.append(ev)
        self.hist.append(repr(ev).replace(" unacked", ""))
        return ev

    def done(self, ev):
        """The change was acknowledged: apply it. Caller holds wlock."""
        with self.mlock:
            if ev.kind in ("trunc", "falloc"):
                if ev.size < len(self.acked):
                    del self.acked[ev.size:]
                else:
                    self.acked += bytes(ev.size - len(self.acked))
            elif ev.kind in ("punch", "zero-keep"):
                hi = min(ev.hi, len(self.acked))
                if hi > ev.lo:
                    self.acked[ev.lo:hi] = bytes(hi - ev.lo)
            elif ev.kind != "keep":
                if len(self.acked) < ev.lo:
                    self.acked += bytes(ev.lo - len(self.acked))
                self.acked[ev.lo:ev.hi] = ev.content()
            ev.acked = True
            if ev.sync:
                self.durimg[ev.lo:ev.hi] = ev.content()
                self.points.append((ev.no, ev.hi))
            self.inflight = None
        self.hist.append("ok")

    def fsynced(self, no0, snap):
        """Every change acknowledged before the fsync began (evno <= no0, whose
        content is snap) is durable. Caller holds mlock."""
        if no0 < self.base:
            return
        self.durimg = bytearray(snap) + bytes(self.maxf - len(snap))
        self.base, self.base_size = no0, len(snap)
        self.evs = [e for e in self.evs if e.no > no0]
        for e in self.evs:
            if e.sync and e.acked:
                self.durimg[e.lo:e.hi] = e.content()
        # an older point is dominated: the size at no0 reflects what came between
        self.points = [(no0, len(snap))] + [p for p in self.points if p[0] > no0]

    def adopt(self, data):
        """After a crash and a checked remount: the file is what was found,
        and (the remount's unmount wrote it all) durable."""
        self.acked = bytearray(data)
        self.durimg = bytearray(data) + bytes(self.maxf - len(data))
        self.base, self.base_size = self.evno, len(data)
        self.evs, self.points = [], [(self.evno, len(data))]
        self.inflight = None

    def floor(self):
        """The durable size: the largest size made durable, less what a later
        truncate took."""
        lo = 0
        for no, s in self.points:
            for e in self.evs:
                if e.no > no and e.kind == "trunc":
                    s = min(s, e.size)
            lo = max(lo, s)
        return lo

    def ceiling(self):
        return max([self.base_size] + [e.size for e in self.evs])

    def check_crash(self, data):
        """None if data is a state the file may be in after the crash."""
        size, lo, hi = len(data), self.floor(), self.ceiling()
        if size < lo:
            return "size %d < %d made durable (fsync or sync write, less later truncates)" % (
                size, lo)
        if size > hi:
            return "size %d > %d, the largest it had since its last fsync" % (size, hi)
        ackz = bytes(self.acked) + bytes(max(0, size - len(self.acked)))
        for b0 in range(0, size, BLK):
            b1 = min(size, b0 + BLK)
            got = data[b0:b1]
            if got == self.durimg[b0:b1] or got == ackz[b0:b1]:
                continue
            near = [e for e in self.evs if e.lo < b1 and e.hi > b0]
            for i in range(b0, b1):
                v = data[i]
                if v == self.durimg[i] or v == ackz[i]:
                    continue
                dseq = max([self.base] + [e.no for e in near
                                          if e.sync and e.acked and e.lo <= i < e.hi])
                if any(e.no > dseq and e.lo <= i < e.hi and e.val(i) == v for e in near):
                    continue
                return ("byte %d of %d is %02x; durable %02x, acknowledged %02x, and no change "
                        "after the last durable one (evno %d) put it there%s" % (
                            i, size, v, self.durimg[i], ackz[i], dseq,
                            " (zeros%s)" % M.zeros_at(data, i) if v == 0 else
                            " (a byte never written there)"))
        return None

    def dump(self):
        return "%s: size %d, base evno %d size %d, floor %d, points %s\n  ops %s\n  since " \
               "base: %s\n" % (self.name, len(self.acked), self.base, self.base_size,
                               self.floor(), self.points[-6:], " ".join(self.hist),
                               " ".join(repr(e) for e in self.evs[-60:]))


# ---- the workload threads ----


class Phase:
    def __init__(self, it, expect_eio, cut):
        self.it = it
        self.stop = threading.Event()
        self.killed = threading.Event()  # the daemon is being killed: errors are the crash
        self.expect_eio = expect_eio  # dead_after: the device dies mid-phase
        self.dead = threading.Event()
        self.threads = []
        self.deferred = []  # what readers saw on a device that was to die
        r = it.rng
        self.fsync_pause = r.choice([0.05, 0.3, 1.0] if cut else [0, 0.002, 0.02, 0.2])
        s = r.choice([1, 0.1, 0.02] if cut else [1, 1, 0.1])
        # buf, append, osync, odsync, rwf_dsync, odirect, odirect_dsync
        self.mix = [40, 10, 8 * s, 8 * s, 8 * s, 10, 5 * s]
        self.meta = r.choice([0.05, 0.12, 0.25])  # the share of truncates and fallocates
        if MIX:
            self.mix = [float(x) for x in MIX.split(",")]
        if META:
            self.meta = float(META)


class Worker(threading.Thread):
    def __init__(self, ph, rng, role, files):
        super().__init__(daemon=True)
        self.ph = ph
        self.rng = random.Random(rng.getrandbits(64))
        self.role = role
        self.files = files
        self.myfds = {}

    def run(self):
        try:
            while not self.ph.stop.is_set():
                getattr(self, self.role)()
        except OSError as e:
            if self.ph.killed.is_set():
                return  # the crash: the change in flight stays in flight
            if self.ph.expect_eio and e.errno in (errno.EIO, errno.EROFS):
                self.ph.dead.set()
                return
            if e.errno in (errno.ECONNABORTED, errno.ENOTCONN) and self.daemon_gone():
                return
            self.ph.it.hard_fail("%s thread: unexpected error %s%s" % (
                self.role, e, " in %s" % e.model_op if hasattr(e, "model_op") else ""))
            self.ph.stop.set()
        except FAILS as e:
            self.ph.it.hard_fail(str(e))
            self.ph.stop.set()
        except Exception as e:  # noqa: BLE001 - a checker bug must show
            import traceback
            traceback.print_exc()
            self.ph.it.hard_fail("checker error in %s: %r" % (self.role, e))
            self.ph.stop.set()

    def daemon_gone(self):
        p = self.ph.it.p
        for _ in range(200):
            if p is None or p.poll() is not None:
                return True
            time.sleep(0.01)
        return False

    def length(self, room):
        r = self.rng
        k = r.random()
        if k < 0.25:
            n = r.randint(1, 100)
        elif k < 0.6:
            n = r.randint(1, 2 * BLK)
        elif k < 0.95:
            n = r.randint(1, 64 << 10)
        else:
            n = r.randint(64 << 10, 1 << 20)
        return max(1, min(n, room))

    # -- writers --

    def writer(self):
        f = self.rng.choice([f for f in self.files if not f.churn_only])
        with f.wlock:
            if self.ph.stop.is_set() or f.broken:
                return
            try:
                self.op(f)
                if PARANOID:
                    self.paranoid(f)
            except OSError as e:
                f.broken = True  # its change stays in flight in the model
                e.model_op = "%s %s" % (f.name, f.hist[-1] if f.hist else "")
                raise

    def paranoid(self, f):
        """FOLIOFS_PMODEL_PARANOID: the whole file, read O_DIRECT right after
        each change (the writer still holds the file), equals the model."""
        got = b""
        m = mmap.mmap(-1, 1 << 20)
        try:
            while True:  # a direct_io read may be short (the daemon's max_read)
                n = os.preadv(self.myfds[f.name + "!d"], [m], len(got))
                if n <= 0:
                    break
                got += m[:n]
        finally:
            m.close()
        if got != bytes(f.acked):
            at = first_diff(got, bytes(f.acked))
            end = at
            while end < min(len(got), len(f.acked)) and got[end] != f.acked[end]:
                end += 1
            src = [e for e in f.evlog if e.lo <= at < e.hi and at < len(got) and
                   e.val(at) == got[at] and got[at]]
            raise Fail("%s: right after %s the file (%d bytes) differs from the model (%d): "
                       "bytes %d-%d are %s, want %s%s [ops %s]" % (
                           f.name, f.hist[-2], len(got), len(f.acked), at, end, show(got, at),
                           show(f.acked, at), "; they are from %s" % src[-1] if src else "",
                           " ".join(list(f.hist)[-12:])))

    def op(self, f):
        r, size = self.rng, f.size()
        k = r.random()
        if k < self.ph.meta * 0.45:
            return self.truncate(f)
        if k < self.ph.meta:
            return self.falloc(f)
        how = r.choices(["buf", "append", "osync", "odsync", "rwf_dsync", "odirect",
                         "odirect_dsync"], self.ph.mix)[0]
        if how == "append":
            if size >= f.maxf:
                return self.truncate(f)
            off = size
            n = self.length(f.maxf - size)
        else:
            n = self.length(f.maxf)
            if r.random() < 0.3:  # near the size: appends and growth, without O_APPEND
                off = min(f.maxf - n, max(0, size + r.randint(-2 * BLK, 2 * BLK)))
            else:
                off = r.randrange(0, f.maxf - n + 1)
            if how.startswith("odirect") or r.random() < 0.2:
                off -= off % BLK
                n = max(BLK, n - n % BLK)
        data = r.randbytes(n).translate(NOZERO)
        lo = min(off, size)
        ev = f.begin("w-" + how, lo, off + n, data, max(size, off + n),
                     sync=how in ("osync", "odsync", "rwf_dsync", "odirect_dsync"))
        w = self.do_write(f, how, off, data)
        STATS.add("write-" + how)
        if w != n:
            # a short count leaves the rest possibly written: not acknowledged.
            # The kernel sends a long write as several requests; after the crash
            # began, a short count is its interruption and the write stays in
            # flight, all of it possible (the worker ends as on the crash's error)
            if self.ph.killed.is_set():
                raise M.cut_short(w, n)
            raise Fail("%s: short count %d of a %d-byte %s write at %d [ops %s]" % (
                f.name, w, n, how, off, " ".join(list(f.hist)[-8:])))
        f.done(ev)

    def do_write(self, f, how, off, data):
        if how == "rwf_dsync":
            return os.pwritev(f.fds["buf"], [data], off, os.RWF_DSYNC)
        if how == "append":
            return os.write(f.fds["append"], data)
        if how.startswith("odirect"):
            m = aligned_buf(data)
            try:
                return os.pwrite(f.fds[how], memoryview(m)[: len(data)], off)
            finally:
                m.close()
        return os.pwrite(f.fds[how], data, off)

    def truncate(self, f):
        r, size = self.rng, f.size()
        to = r.randrange(0, size + 1) if size and r.random() < 0.6 else r.randrange(0, f.maxf + 1)
        if r.random() < 0.3:
            to -= to % BLK
        ev = f.begin("trunc", min(size, to), max(size, to), b"", to)
        if r.random() < 0.5:
            os.ftruncate(f.fds["buf"], to)
        else:
            os.truncate(f.path, to)
        STATS.add("truncate-" + ("down" if to < size else "up"))
        f.done(ev)

    def falloc(self, f):
        r, size = self.rng, f.size()
        off = r.randrange(0, f.maxf)
        n = max(1, min(f.maxf - off, self.length(f.maxf)))
        if r.random() < 0.4:
            off -= off % BLK
            n = min(f.maxf - off, max(BLK, n - n % BLK))
        mode = r.choice(["default", "keep", "punch", "zero", "zero-keep"])
        if mode == "punch":
            ev = f.begin("punch", off, off + n)
            fl = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        elif mode == "zero":
            ev = f.begin("zero", min(off, size), off + n, b"", max(size, off + n))
            fl = FALLOC_FL_ZERO_RANGE
        elif mode == "zero-keep":
            ev = f.begin("zero-keep", off, off + n)
            fl = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
        elif mode == "keep":
            ev = f.begin("keep", off, off)
            fl = FALLOC_FL_KEEP_SIZE
        else:
            ev = f.begin("falloc", size, max(size, off + n), b"", max(size, off + n))
            fl = 0
        fallocate(f.fds["buf"], fl, off, n)
        STATS.add("fallocate-" + mode)
        f.done(ev)

    def churn(self):
        """The ballast of a tiny device: O_DSYNC overwrites, so full zones
        hold dead blocks and the collector moves the live ones."""
        f = next(f for f in self.files if f.churn_only)
        with f.wlock:
            if self.ph.stop.is_set() or f.broken:
                return
            n = self.rng.choice([4096, 16384, 65536])
            off = self.rng.randrange(0, (f.size() - n) // BLK + 1) * BLK
            data = self.rng.randbytes(n).translate(NOZERO)
            ev = f.begin("w-churn", off, off + n, data, f.size(), sync=True)
            try:
                if os.pwrite(f.fds["odsync"], data, off) != n:
                    raise Fail("%s: short churn write" % f.name)
            except OSError as e:
                f.broken = True
                e.model_op = "%s %s" % (f.name, f.hist[-1])
                raise
            STATS.add("write-churn")
            f.done(ev)

    # -- fsync from other threads and fds --

    def fsyncer(self):
        if self.ph.fsync_pause:
            self.ph.stop.wait(self.rng.uniform(0, 2 * self.ph.fsync_pause))
            if self.ph.stop.is_set():
                return
        f = self.rng.choice(self.files)
        ds = self.rng.random() < 0.5
        with f.mlock:
            no0 = f.evno - (1 if f.inflight else 0)  # the change in flight is not covered
            snap = bytes(f.acked)
        (os.fdatasync if ds else os.fsync)(self.myfds[f.name])
        STATS.add("fdatasync" if ds else "fsync")
        with f.mlock:
            f.fsynced(no0, snap)

    # -- readers checking the model while writes run --

    def reader(self):
        f = self.rng.choice(self.files)
        direct = self.rng.random() < 0.3
        with f.mlock:
            first = f.evno if f.inflight else f.evno + 1
            size0 = f.size()
            off = self.rng.randrange(0, size0 + BLK)
            n = self.length(256 << 10)
            if direct:
                off -= off % BLK
                n = (n + BLK - 1) // BLK * BLK
            view0 = bytes(f.acked[off:off + n])
        if direct:
            m = mmap.mmap(-1, n)
            try:
                got = bytes(m[: os.preadv(self.myfds[f.name + "!d"], [m], off)])
            finally:
                m.close()
        else:
            got = os.pread(self.myfds[f.name + "!r"], n, off)
        # A read the crash interrupts ends short, not in an error, once some
        # of it is copied: the kernel splits a page-cache read (and a long
        # direct one) into several READs and returns what the answered ones
        # brought. After the crash began only its bytes are checked.
        cut = self.ph.killed.is_set()
        STATS.add("read-direct" if direct else "read")
        STATS.add("bytes-verified", len(got))
        with f.mlock:
            if f.evno >= first and (not f.evlog or f.evlog[0].no > first):
                STATS.add("read-unchecked")
                return
            win = [e for e in f.evlog if e.no >= first]
            view1 = bytes(f.acked[off:off + n])
        if not win:
            if cut and len(got) < len(view0) and view0.startswith(got):
                STATS.add("read-cut-short")
                return
            if got != view0:
                self.read_fail(f, off, n, got, view0, max(0, first_diff(got, view0)),
                               "no change ran during the read", direct)
            return
        sizes = [size0] + [e.size for e in win]
        want_lo = min(n, max(0, min(sizes) - off))
        want_hi = min(n, max(0, max(sizes) - off))
        if cut and len(got) < want_lo:
            STATS.add("read-cut-short")
            want_lo = len(got)
        if not want_lo <= len(got) <= want_hi:
            self.read_fail(f, off, n, got, view0, min(len(got), len(view0)),
                           "%d bytes read, the size during the read allows %d to %d (%s)" % (
                               len(got), want_lo, want_hi, " ".join(map(repr, win[-6:]))), direct)
            return
        for b0 in range(0, len(got), BLK):
            b1 = min(len(got), b0 + BLK)
            if got[b0:b1] == view0[b0:b1] or got[b0:b1] == view1[b0:b1]:
                continue
            for i in range(b0, b1):
                v, p = got[i], off + i
                if (i < len(view0) and v == view0[i]) or (i < len(view1) and v == view1[i]):
                    continue
                if any(e.lo <= p < e.hi and e.val(p) == v for e in win):
                    continue
                self.read_fail(f, off, n, got, view0, i, "changes overlapping: %s" % " ".join(
                    repr(e) for e in win[-6:]), direct)
                return

    def read_fail(self, f, off, n, got, want, at, why, direct):
        STATS.add("read-failures")
        with f.mlock:
            self.ph.it.note_dump(f.dump())
        how = "an O_DIRECT" if direct else "a buffered (page cache)"
        self.ph.it.soft_fail(
            "%s: %s read of %d at %d returned %d bytes; byte %d (file offset %d) is %s, want "
            "%s%s (%s) [ops %s]" % (f.name, how, n, off, len(got), at, off + at,
                                    show(got, at), show(want, at), M.zeros_at(got, at, off),
                                    why, " ".join(list(f.hist)[-8:])),
            "%s read: %s (%s)" % (how, "zeros" if at < len(got) and got[at] == 0 else "wrong bytes",
                               why.split(":")[0].split("(")[0].strip()))


# ---- one iteration: an image, several phases ----


class Iteration:
    def __init__(self, seed, deadline):
        self.seed = seed
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.lock = threading.Lock()
        self.fails = []
        self.dumps = []  # files' operations at failed reads (note_dump)
        self.kinds = {}
        self.hard = None
        self.phase_no = 0
        self.phase = None
        self.p = None
        self.expect = None
        self.selftest = bool(os.environ.get("FOLIOFS_PMODEL_SELFTEST"))
        self.corrupted = None
        self.cur_opts = ""
        r = self.rng
        self.gc = r.random() < GC_SHARE
        if self.gc:
            self.zs, self.nz, self.zoned = GC_ZS, GC_NZONES, True
            maxf = r.choice([256 << 10, 512 << 10])
        else:
            self.zs = r.choice([1, 2, 4]) << 20
            self.nz, self.zoned = (64 << 20) // self.zs, r.random() < 0.5
            maxf = r.choice([256 << 10, 1 << 20, 2 << 20])
        self.conv = r.choice([1, 4])
        # metadata pressure from a few KiB of checkpoint on: a file of 64
        # extents or more is defragmented, on sequential zones too
        self.press = r.random() < PRESS_SHARE
        self.files = [File(i, "f%d" % i, maxf) for i in range(NFILES)]
        if self.gc:
            b = File(NFILES, "ballast", GC_BALLAST)
            b.churn_only = True
            self.files.append(b)
        # half the regular images take I/O as a 512 B-sector disk (short data
        # headers); drawn apart from r, as press is below
        self.lb512 = not self.zoned and random.Random(self.seed ^ 0x512).random() < 0.5
        self.desc = "%s, %d x %d MiB zones%s, files up to %d KiB" % (
            "emulated-zoned (conv %d)" % self.conv if self.zoned else
            "regular" + (" (512 B blocks)" if self.lb512 else ""), self.nz,
            self.zs >> 20, ", tiny device with ballast (GC)" if self.gc else "", maxf >> 10)
        if self.press:
            self.desc += ", metadata pressure (FOLIOFS_META_PRESS=4096)"

    # -- failures --

    def soft_fail(self, what, kind=None):
        """A failure after which the model still knows the files."""
        kind = kind or what
        ph = self.phase
        if ph is not None and ph.expect_eio:
            with self.lock:
                ph.deferred.append((what, kind))
            return
        self.tally(kind)
        with self.lock:
            if kind in self.kinds:
                self.kinds[kind] += 1
                return
            self.kinds[kind] = 0
            self.fails.append((kind, "phase %d (%s): %s" % (self.phase_no, self.cur_opts, what)))

    def note_dump(self, text):
        """A file's operations at the moment a check failed, for model.txt."""
        with self.lock:
            if len(self.dumps) < 4:
                self.dumps.append("phase %d: %s" % (self.phase_no, text))

    def hard_fail(self, what):
        with self.lock:
            if self.hard is None:
                self.hard = "phase %d (%s): %s" % (self.phase_no, self.cur_opts, what)
                self.tally(what[:70])

    def tally(self, kind):
        STATS.add("kind:" + kind)
        with STATS.lock:
            FIRST.setdefault(kind, self.seed)

    def fail_lines(self):
        out = [self.hard] if self.hard else []
        for kind, what in self.fails:
            n = self.kinds[kind]
            out.append(what + (" (and %d more like it)" % n if n else ""))
        return out

    # -- the run --

    def opts(self):
        r = self.rng
        # cache_size must be at least 4 x max_folio
        o = [r.choice(["cache_size=1M,max_folio=64K", "cache_size=4M,max_folio=64K",
                       "cache_size=4M,max_folio=1M", "cache_size=8M,max_folio=64K",
                       "cache_size=8M,max_folio=2M"])]
        if r.random() < 0.3:
            o.append("sync_mode=writeback")
        if r.random() < 0.25:
            o.append("dirty_granularity=folio")
        if KCACHE and r.random() < KCACHE:
            o.append("kernel_cache")
        # defragmentation (regular images) after very few extents: many passes
        if r.random() < 0.5:
            o.append(r.choice(["defrag=2", "defrag=8"]))
        # the committer ticks a few times within the phase; drawn apart from
        # r, so that a seed replays the sequence it drew before this choice
        if random.Random(self.seed * 100 + self.phase_no).random() < 0.5:
            o.append("commit=1")
        return ",".join(o)

    def run(self):
        C.force_unmount()
        os.makedirs(MNT, exist_ok=True)
        for p in (IMG, VLOG, VLOG + ".orig", DLOG):
            if os.path.exists(p):
                os.unlink(p)
        with open(IMG, "wb") as f:
            f.truncate(self.nz * self.zs)
        args = [C.MKFS, "--format", "posix", "--zone-size", str(self.zs)]
        if self.zoned:
            args += ["--emulate-zoned", "--conv-zones", str(self.conv)]
        print("pmodel: seed %d: %s" % (self.seed, self.desc), flush=True)
        if self.press:
            os.environ["FOLIOFS_META_PRESS"] = "4096"
        else:
            os.environ.pop("FOLIOFS_META_PRESS", None)
        nphases = self.rng.randint(3, 8)
        C.LBLOCK[0] = 512 if self.lb512 else None
        try:
            C.sh(args + [IMG])
            self.setup()
            for i in range(nphases):
                self.phase_no = i
                self.one_phase()
                if self.hard or time.monotonic() > self.deadline:
                    break
            if not self.hard and self.expect is not None:
                self.mount(None, None)
                self.unmount_clean(final=True)
        except FAILS as e:
            if self.corrupted and "%s:" % self.corrupted[0] in str(e) and \
                    "byte %d " % self.corrupted[1] in str(e):
                STATS.add("selftest-detected")
            else:
                self.hard_fail(str(e))
        except SelfTestMissed as e:
            self.hard_fail(str(e))
        finally:
            if self.p:
                C.kill9(self.p)
                self.p = None
            C.force_unmount()
        return self.phase_no + 1

    def setup(self):
        """The files (and the ballast), made durable with their names."""
        self.p = C.mount(None, self.opts())
        for f in self.files:
            fd = os.open(f.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            try:
                if f.churn_only:
                    data = self.rng.randbytes(f.maxf).translate(NOZERO)
                    os.pwrite(fd, data, 0)
                    f.acked = bytearray(data)
                os.fsync(fd)
                f.adopt(bytes(f.acked))
            finally:
                os.close(fd)
        fd = os.open(MNT, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        C.unmount(self.p)
        self.p = None

    def mount(self, fault, opts):
        if os.path.exists(VLOG):
            os.unlink(VLOG)
        self.p = C.mount(fault, opts)
        if self.expect is not None:
            self.check_clean()

    def open_fds(self, f):
        fl = {"buf": os.O_RDWR, "append": os.O_WRONLY | os.O_APPEND,
              "osync": os.O_WRONLY | os.O_SYNC, "odsync": os.O_WRONLY | os.O_DSYNC,
              "odirect": os.O_WRONLY | os.O_DIRECT,
              "odirect_dsync": os.O_WRONLY | os.O_DIRECT | os.O_DSYNC}
        f.fds = {k: os.open(f.path, v) for k, v in fl.items()}

    @staticmethod
    def close_fds(fds):
        for fd in fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        fds.clear()

    def one_phase(self):
        r = self.rng
        end = r.choices(["clean", "kill", "cut"], [4 * ("clean" in ENDS), 3 * ("kill" in ENDS),
                                                   4 * ("cut" in ENDS)])[0]
        fault = None
        if end == "cut":
            fault = "vlog=%s" % VLOG
            if r.random() < 0.4:
                fault += ",dead_after=%d" % r.randint(20, 2000)
        opts = self.opts()
        self.cur_opts = "-o %s, then %s%s" % (opts, end, " (%s)" % fault if fault else "")
        logpos = os.path.getsize(DLOG) if os.path.exists(DLOG) else 0
        dur = r.uniform(1.0, 5.0)
        print("pmodel: seed %d phase %d: -o %s, %.1f s, then %s%s" % (
            self.seed, self.phase_no, opts, dur, end, " (%s)" % fault if fault else ""),
            flush=True)
        try:
            self.mount(fault, opts)
        except FAILS:
            if not (fault and "dead_after" in fault and "dead" in C.tail_log(20)):
                raise
            # the device died under the mount's own writes: a crash point too
            STATS.add("crash-in-mount")
            self.p = None
            self.after_kill(r, fault)
            return
        ph = Phase(self, bool(fault and "dead_after" in fault), end == "cut")
        self.phase = ph
        for f in self.files:
            f.broken = False
            self.open_fds(f)
        roles = ["writer"] * 3 + ["fsyncer"] * 2 + ["reader"] * 2 + ["churn"] * self.gc
        for role in roles:
            w = Worker(ph, r, role, self.files)
            for f in self.files:
                w.myfds[f.name] = os.open(f.path, os.O_WRONLY)
                w.myfds[f.name + "!r"] = os.open(f.path, os.O_RDONLY)
                w.myfds[f.name + "!d"] = os.open(f.path, os.O_RDONLY | os.O_DIRECT)
            ph.threads.append(w)
        for w in ph.threads:
            w.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < dur and not ph.stop.is_set() and not ph.dead.is_set():
            if self.p.poll() is not None:
                break
            time.sleep(0.01)
        try:
            if self.p.poll() is not None:
                self.daemon_died(ph)
            self.phase_end(ph, end, fault)
        finally:
            self.phase = None
            ph.threads.clear()
            if ph.deferred and not self.device_died(logpos):
                for what, kind in ph.deferred:
                    self.soft_fail(what, kind)

    @staticmethod
    def device_died(logpos):
        with open(DLOG, errors="replace") as f:
            f.seek(logpos)
            return "fault:" in f.read()

    def daemon_died(self, ph):
        rc = self.p.returncode
        ph.killed.set()
        ph.stop.set()
        self.p = None
        C.force_unmount()
        self.join(ph)
        for f in self.files:
            self.close_fds(f.fds)
        raise Fail("the daemon died during the workload (%s): %s" % (
            "killed by signal %d" % -rc if rc < 0 else "exit status %d" % rc, C.tail_log(4)))

    def join(self, ph):
        t0 = time.monotonic()
        for w in ph.threads:
            w.join(max(0.1, HANG_S - (time.monotonic() - t0)))
            if w.is_alive():
                if self.p:
                    C.hang_report(self.p)
                raise Fail("%s thread hung for %d s (daemon log: %s)" % (
                    w.role, HANG_S, C.tail_log(4)))
            self.close_fds(w.myfds)

    def phase_end(self, ph, end, fault):
        if end == "clean":
            ph.stop.set()
            self.join(ph)
            for f in self.files:
                self.close_fds(f.fds)
            if not self.hard:
                self.unmount_clean()
            return
        ph.killed.set()
        ph.stop.set()
        C.kill9(self.p)
        self.p = None
        self.join(ph)
        for f in self.files:
            self.close_fds(f.fds)
        if not self.hard:
            self.after_kill(self.rng, fault)

    def after_kill(self, r, fault):
        cut = None
        if fault and os.path.exists(VLOG):
            shutil.copy(VLOG, VLOG + ".orig")
            keep = r.choice([0, 0, 30, 70, 100])
            out = C.sh([C.CUT, IMG, VLOG, str(self.seed * 100 + self.phase_no),
                        str(keep)]).stdout.split()
            cut = dict(zip(out[0::2], out[1::2]))
            cut["keep%"] = keep
            STATS.add("cut-writes-dropped", int(cut.get("dropped", 0)))
            print("pmodel: seed %d phase %d: power cut: %s" % (
                self.seed, self.phase_no, " ".join("%s %s" % kv for kv in cut.items())),
                flush=True)
        STATS.add("crash-" + ("cut" if fault else "kill"))
        self.check_after_crash(bool(fault), cut)

    def fsck(self, when):
        r = C.sh([FSCK, "-n", IMG], check=False)
        STATS.add("fsck")
        if r.returncode != 0:
            raise Fail("fsck.foliofs -n exited %d %s: %s" % (
                r.returncode, when, " | ".join(r.stdout.splitlines()[-8:])))

    def unmount_clean(self, final=False):
        how = self.rng.choice([["umount", MNT], ["fusermount3", "-u", MNT]])
        try:  # what defragmentation and writeback pieces did in this mount, for the summary
            for line in os.getxattr(MNT, "user.foliofs.stats").decode().splitlines():
                k, _, v = line.partition(" ")
                if k in ("defrag_passes", "defrag_bytes", "data_pieces_joined"):
                    STATS.add(k, int(v))
        except (OSError, ValueError):
            pass
        # every fd is closed: the times a clean unmount must keep
        mtimes = {f.name: os.stat(f.path).st_mtime_ns for f in self.files}
        C.sh(how)
        try:
            rc = self.p.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            C.hang_report(self.p)
            raise Fail("daemon did not exit %d s after %s" % (HANG_S, " ".join(how)))
        self.p = None
        if rc != 0:
            self.soft_fail("daemon exited %d after %s: %s" % (rc, how[0], C.tail_log(3)),
                           "daemon-exit")
        self.fsck("after a clean unmount")
        if final:
            return
        STATS.add("clean-remounts")
        self.expect = ({f.name: bytes(f.acked) for f in self.files}, how[0], mtimes)
        if self.selftest:
            f = self.rng.choice([f for f in self.files if f.acked] or [None])
            if f is not None:
                b = self.rng.randrange(len(f.acked))
                e = bytearray(self.expect[0][f.name])
                e[b] ^= 0x5A
                self.expect[0][f.name] = bytes(e)
                self.corrupted = (f.name, b)

    def read_all(self):
        got = {}
        for f in self.files:
            with open(f.path, "rb") as fh:
                got[f.name] = fh.read()
            st = os.stat(f.path).st_size
            if st != len(got[f.name]):
                raise Fail("%s: stat size %d, read %d bytes" % (f.name, st, len(got[f.name])))
        return got

    def check_clean(self):
        """After a clean unmount and this mount: every acknowledged byte, and
        every file's mtime, exactly."""
        expect, how, mtimes = self.expect
        self.expect = None
        now = {f.name: os.stat(f.path).st_mtime_ns for f in self.files}
        bad = ["%s: mtime %d ns, %d before the unmount" % (n, now[n], mtimes[n])
               for n in now if now[n] != mtimes[n]]
        got = self.read_all()
        for f in self.files:
            e, g = expect[f.name], got[f.name]
            at = first_diff(g, e)
            if at >= 0:
                bad.append("%s: %d bytes, want %d; byte %d is %s, want %s%s [ops %s]" % (
                    f.name, len(g), len(e), at, show(g, at), show(e, at),
                    M.zeros_at(g, at), " ".join(list(f.hist)[-8:])))
        STATS.add("bytes-verified", sum(len(g) for g in got.values()))
        if bad:
            raise Fail("after a clean unmount (%s) and remount: %s" % (how, "; ".join(bad)))
        self.selftest_missed()

    def selftest_missed(self):
        if self.corrupted:
            raise SelfTestMissed("self-test: byte %d of %s was made wrong in the model and the "
                                 "check did not notice" % (self.corrupted[1], self.corrupted[0]))

    def corrupt_durable(self):
        """The self-test after a crash: one byte below the durable size that
        no change since touched gets a wrong durable value."""
        r = self.rng
        for _ in range(200):
            f = r.choice(self.files)
            lo = f.floor()
            if not lo:
                continue
            b = r.randrange(lo)
            if any(e.lo <= b < e.hi for e in f.evs):
                continue
            f.durimg[b] ^= 0x5A
            if b < len(f.acked):
                f.acked[b] ^= 0x5A
            self.corrupted = (f.name, b)
            return

    def check_after_crash(self, cut, cutinfo):
        """Remount after kill -9 or a power cut, read every file, unmount,
        fsck, and check each file against what the crash may leave; the
        model then adopts what was found."""
        if self.selftest:
            self.corrupt_durable()
        self.p = C.mount(None, None)
        got = self.read_all()
        C.sh(["umount", MNT])
        try:
            rc = self.p.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            C.hang_report(self.p)
            raise Fail("daemon did not exit %d s after umount" % HANG_S)
        self.p = None
        if rc != 0:
            self.soft_fail("daemon exited %d after umount: %s" % (rc, C.tail_log(3)),
                           "daemon-exit")
        self.fsck("after %s" % ("a power cut" if cut else "kill -9"))
        errs = []
        for f in self.files:
            e = f.check_crash(got[f.name])
            if e:
                errs.append("%s: %s [ops %s]" % (f.name, e, " ".join(list(f.hist)[-10:])))
        STATS.add("bytes-verified", sum(len(g) for g in got.values()))
        if errs:
            raise Fail("after %s: %s%s" % ("a power cut" if cut else "kill -9", "; ".join(errs),
                                           " (cut %s)" % cutinfo if cutinfo else ""))
        self.selftest_missed()
        for f in self.files:
            with f.mlock:
                f.adopt(got[f.name])
            f.hist.append("crash-adopted")

    def keep_evidence(self):
        ev = os.path.join(WORK, "fail-%d" % self.seed)
        os.makedirs(ev, exist_ok=True)
        for p in (IMG, DLOG, VLOG + ".orig"):
            if os.path.exists(p):
                shutil.copy(p, ev)
        with open(os.path.join(ev, "model.txt"), "w") as out:
            out.write("seed %d phase %d: %s\n" % (self.seed, self.phase_no, self.desc))
            for what in self.fail_lines():
                out.write("FAIL %s\n" % what)
            for f in self.files:
                out.write(f.dump())
            for d in self.dumps:
                out.write("at a failed read, %s" % d)
        return ev


def main():
    for exe in (C.MKFS, C.DAEMON, C.CUT, FSCK):
        if not os.access(exe, os.X_OK):
            print("pmodel: %s not built" % exe)
            return 1
    if not M.fuse_usable():
        print("pmodel: /dev/fuse is unusable; skipped")
        return 77
    os.makedirs(WORK, exist_ok=True)
    M.tame_malloc()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    secs = float(os.environ.get("FOLIOFS_PMODEL_SECONDS", "90"))
    only = os.environ.get("FOLIOFS_PMODEL_ONLY")
    seed = int(only) if only else int(os.environ.get("FOLIOFS_PMODEL_SEED",
                                                     str(int(time.time()) % 1000000 * 1000)))
    print("pmodel: first seed %d, %.0f s; replay one with FOLIOFS_PMODEL_ONLY=SEED" % (
        seed, secs), flush=True)
    t0 = time.monotonic()
    failed = []
    iters = phases = 0
    while True:
        it = Iteration(seed, t0 + secs)
        phases += it.run()
        gc.collect()
        iters += 1
        if it.hard or it.fails:
            ev = it.keep_evidence()
            for what in it.fail_lines():
                print("FAIL seed=%d %s" % (seed, what), flush=True)
            print("  evidence: %s; replay: FOLIOFS_PMODEL_ONLY=%d %s" % (ev, seed, sys.argv[0]),
                  flush=True)
            failed.append(seed)
        if only or time.monotonic() - t0 >= secs:
            break
        seed += 1
    c = STATS.c
    kinds = sorted(k for k in c if k.startswith(("write-", "truncate-", "fallocate-", "fsync",
                                                 "fdatasync", "read")))
    print("pmodel: %d iterations, %d phases, %.0f s" % (iters, phases, time.monotonic() - t0))
    print("pmodel: operations: %s" % ", ".join("%s %d" % (k, c[k]) for k in kinds))
    print("pmodel: crash points %d (%d power cuts, %d of them in the mount; %d kill -9), %d "
          "volatile writes dropped; %d clean remounts; %d fsck -n runs; %.1f MiB verified" % (
              c["crash-cut"] + c["crash-kill"], c["crash-cut"], c["crash-in-mount"],
              c["crash-kill"], c["cut-writes-dropped"], c["clean-remounts"], c["fsck"],
              c["bytes-verified"] / (1 << 20)))
    print("pmodel: defragmentation: %d passes moved %.1f MiB; %d writeback pieces joined "
          "another's data header (counted at clean unmounts)" % (
              c["defrag_passes"], c["defrag_bytes"] / (1 << 20), c["data_pieces_joined"]))
    for k in sorted(k for k in c if k.startswith("kind:")):
        print("pmodel: failure %s: %d times, first seed %d" % (k[5:], c[k], FIRST[k[5:]]))
    if os.environ.get("FOLIOFS_PMODEL_SELFTEST"):
        print("pmodel: self-test: %d wrong model bytes found" % c["selftest-detected"])
    print("pmodel: %d failed%s" % (len(failed), (" (seeds %s)" % failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
