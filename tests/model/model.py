#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Concurrent model checker for foliofs (issue 10, "How it is proven").

In the spirit of fsx/fsstress, but multi-threaded, and with the expected
content of every file kept in a model. It runs against the real daemon on a
FUSE mount of an emulated-zoned image mounted with a tiny cache
(cache_size=8M,max_folio=2M), two conventional files (cnv/0, cnv/1) and five
sequential ones (seq/0..4) on 4 MiB zones.

One iteration (one seed) formats an image and runs phases. In a phase:
  - writer threads pick a file, take its lock (the kernel serialises writes to
    one FUSE file, so a write and its model update are one step), and write
    through one of several fds of that file: buffered, O_APPEND, O_SYNC,
    O_DSYNC, RWF_DSYNC (pwritev), O_DIRECT (page-aligned mmap buffers, with or
    without O_DSYNC) or asynchronous O_DIRECT (Linux AIO). Sequential files get appends at their size (zonefs rules: sync
    appends end on a 4 KiB block, O_DIRECT appends are aligned, buffered
    appends any length), resets (truncate 0) and finishes (truncate to the
    capacity; the rest reads zeros). Conventional files get overwrites of any
    length and alignment (O_DIRECT too). Now and then an operation the zonefs
    rules refuse must fail with the kernel's errno and change nothing;
  - fsync threads call fsync/fdatasync on their own fds while writes run;
  - reader threads read ranges through their own fds (buffered and O_DIRECT)
    and check every byte against the model: a byte below a size acknowledged
    before the read began reads exactly; a byte a write touched during the
    read may hold the old or the new value, never anything else.
A phase ends with one of:
  clean: quiesce, unmount (umount or fusermount3 -u), wait for the daemon,
         check the zone write pointers, remount, and every acknowledged byte
         must be there exactly; and when umount returned, the image must
         already hold it (DESIGN.md invariant 4);
  kill:  kill -9 of the daemon mid-workload;
  cut:   a power cut: the daemon ran with FOLIOFS_FAULT=vlog=... (sometimes
         dead_after=N too), kill -9, then ff-cut drops a random subset of
         the writes the device had not made durable.
After kill and cut: remount, and every sync-acknowledged and every fsync'd
byte must be there; no byte that was never written may appear; each
sequential file's size equals its zone's write pointer. A kill -9 without a
power cut also keeps what O_DIRECT appends acknowledged (an O_DIRECT write
completes on the device, as in the kernel). The model then adopts what was
found and the next phase goes on from there.

  FOLIOFS_MODEL_SECONDS  time budget (default 180); long mode: e.g. 14400
  FOLIOFS_MODEL_SEED     first seed (default: from the time; printed)
  FOLIOFS_MODEL_ONLY     replay one seed (thread timing makes replays differ)
  FOLIOFS_MODEL_DIR      work dir (default /tmp/h-model/model)
  FOLIOFS_MODEL_ENDS     phase ends to pick from (default clean,kill,cut)
  FOLIOFS_MODEL_FILES    all (default), cnv or seq: the files that get operations
  FOLIOFS_MODEL_OPTS     mount options (default cache_size=8M,max_folio=2M)
  FOLIOFS_MODEL_SELFTEST change one checked byte on the image before each check:
                         the check must find it
  FOLIOFS_BUILD          build dir (default ./build)
A failure prints "FAIL seed=S phase P: what" and keeps the image, the daemon
log, the volatile-write log and the model's operation history in
$FOLIOFS_MODEL_DIR/fail-S/. Exit 0 when nothing failed, 1 otherwise, 77 when
/dev/fuse is unusable.
"""
import collections
import ctypes
import errno
import gc
import mmap
import os
import platform
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ.get("FOLIOFS_MODEL_DIR", "/tmp/h-model/model")
os.environ["FOLIOFS_CRASH_DIR"] = WORK  # crash.py's helpers use its paths
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "crash"))
import crash  # noqa: E402  (mount, kill -9, zone report: one implementation)

BLK = 4096
ZS = 4 << 20
NCNV = 3  # zone 0 (the superblock), cnv/0, cnv/1
NSEQ = 5
OPTS = os.environ.get("FOLIOFS_MODEL_OPTS", "cache_size=8M,max_folio=2M")
ENDS = os.environ.get("FOLIOFS_MODEL_ENDS", "clean,kill,cut").split(",")
FILES = os.environ.get("FOLIOFS_MODEL_FILES", "all")  # all, cnv or seq: which get operations
HANG_S = int(os.environ.get("FOLIOFS_MODEL_HANG_S", "60"))
IMG, MNT, VLOG, DLOG = crash.IMG, crash.MNT, crash.VLOG, crash.DLOG


def daemon_max_write():
    """The daemon's max_write (src/fuse/reqsize.h ff_req_max_pages): one
    page less than the pages a request may span, the kernel's
    fs.fuse.max_pages_limit up to 257 (256 without the sysctl). FUSE sends
    a longer write in pieces. Read when the daemon mounts: it reads it then."""
    try:
        with open("/proc/sys/fs/fuse/max_pages_limit") as f:
            pages = int(f.read())
    except (OSError, ValueError):
        pages = 256
    if pages < 2:
        pages = 256
    return (min(pages, 257) - 1) * 4096


MAX_WRITE = daemon_max_write()


def split_tail_short(how, size, n, w):
    """The one short count the rules allow a sync append that ends on a block.

    One that starts mid-block (after a buffered partial tail) and is longer
    than max_write reaches the daemon in pieces, the first ending mid-block;
    the daemon cannot know more follows, so it writes that piece's whole
    blocks and returns a short count (README, "Sub-block rule")."""
    if how in ("buf", "append") or size % BLK == 0 or n <= MAX_WRITE:
        return False
    return (size + w) % BLK == 0 and MAX_WRITE - BLK < w <= MAX_WRITE


class Fail(Exception):
    """A failure that ends the iteration: the model no longer knows the files."""


class SelfTestMissed(Exception):
    """FOLIOFS_MODEL_SELFTEST: a byte corrupted on the image went unnoticed."""


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, k, n=1):
        with self.lock:
            self.c[k] += n


STATS = Stats()
FIRST = {}  # failure kind -> the first seed that showed it


# ---- Linux AIO, with no library: fio's libaio path, stdlib only ----

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
# io_setup, io_destroy, io_getevents, io_submit
_NR = {"x86_64": (206, 207, 208, 209), "aarch64": (0, 1, 4, 2)}.get(platform.machine())


class Aio:
    """One Linux AIO context (the path fio's libaio engine takes): an O_DIRECT
    write submitted asynchronously, which FUSE may split into requests that
    run in parallel."""

    def __init__(self):
        self.ctx = ctypes.c_ulong(0)
        if _libc.syscall(ctypes.c_long(_NR[0]), ctypes.c_long(8), ctypes.byref(self.ctx)) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def close(self):
        _libc.syscall(ctypes.c_long(_NR[1]), self.ctx)

    def pwrite(self, fd, m, n, off):
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        cb = ctypes.create_string_buffer(
            struct.pack("<QIiHhIQQqQII", 0, 0, 0, 1, 0, fd, addr, n, off, 0, 0, 0), 64)
        ptr = (ctypes.c_void_p * 1)(ctypes.addressof(cb))
        if _libc.syscall(ctypes.c_long(_NR[3]), self.ctx, ctypes.c_long(1), ptr) != 1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        ev = ctypes.create_string_buffer(32)
        while True:
            r = _libc.syscall(ctypes.c_long(_NR[2]), self.ctx, ctypes.c_long(1), ctypes.c_long(1),
                              ev, None)
            if r == 1:
                break
            e = ctypes.get_errno()
            if r < 0 and e == errno.EINTR:
                continue
            raise OSError(e, os.strerror(e))
        res = struct.unpack("<QQqq", ev.raw)[2]
        if res < 0:
            raise OSError(-res, os.strerror(-res))
        return res


def aligned_buf(data):
    """A page-aligned buffer holding data (for O_DIRECT)."""
    m = mmap.mmap(-1, max(BLK, (len(data) + BLK - 1) // BLK * BLK))
    m[: len(data)] = data
    return m


def first_diff(a, b):
    n = min(len(a), len(b))
    lo = 0
    while lo < n:  # by blocks first: files are megabytes
        hi = min(n, lo + BLK)
        if a[lo:hi] != b[lo:hi]:
            return next(i for i in range(lo, hi) if a[i] != b[i])
        lo = hi
    return n if len(a) != len(b) else -1


def zeros_at(data, at, foff=0, upto=None):
    """' (zeros ...)' describing the run of zeros at data[at] (file offset
    foff + at) up to data[upto] (where the written bytes end), or '' if
    data[at] is not zero: a block's tail and whole blocks point at different
    bugs."""
    upto = len(data) if upto is None else min(upto, len(data))
    if at < 0 or at >= upto or data[at]:
        return ""
    end = at
    while end < upto and not any(data[end:end + 64]):
        end += 64
    end = min(end, upto)
    while end < upto and data[end] == 0:
        end += 1
    a, e = foff + at, foff + end
    if a % BLK and e - a < BLK and e % BLK == 0:
        shape = "the last %d bytes of a block" % (e - a)
    elif a % BLK == 0 and e % BLK == 0:
        shape = "%d whole blocks" % ((e - a) // BLK)
    else:
        shape = "%d bytes" % (e - a)
    return " (zeros: %s, to offset %d)" % (shape, e)


def show(data, at):
    return bytes(data[at:at + 8]).hex() or "(end)"


# ---- the model of one file ----


class File:
    """What the application was told about one file. wlock is held around a
    write (or truncate) and its model update; mlock, briefly, around every
    read or change of the fields below, so readers and fsyncs snapshot them
    while a write is in flight. evlog lists the recent changes (appends,
    writes, resets, finishes) numbered by evno, for readers whose read
    overlapped them."""

    def __init__(self, name, path, zone):
        self.name = name
        self.path = path
        self.zone = zone
        self.wlock = threading.Lock()
        self.mlock = threading.Lock()
        self.evno = 0  # guarded by mlock
        self.evlog = collections.deque(maxlen=256)  # (no, kind, off, data); mlock
        self.inflight = None  # the change under way, an evlog entry; mlock
        self.hist = collections.deque(maxlen=60)  # the last operations, for reports
        self.fds = {}  # flavour -> fd, opened per phase, used under wlock
        self.broken = False  # an op failed (the crash): no more ops; wlock
        self.drop_tail = 0  # a partial tail left for the unmount to drop
        self.ghosts = collections.deque(maxlen=16)  # (off, bytes) a short count left out

    def ghost_note(self, at, v):
        """Whether byte at holding v is from the unacknowledged rest of a short write."""
        for off, rest in self.ghosts:
            if off <= at < off + len(rest) and rest[at - off] == v:
                return "; it is the byte a short write at %d did not acknowledge" % off
        return ""

    def begin(self, kind, off=0, data=b""):
        with self.mlock:
            self.evno += 1
            self.inflight = (self.evno, kind, off, data)
            self.evlog.append(self.inflight)

    def window(self, no0, was_inflight):
        """The changes that overlapped a read that began at evno no0, or None
        if some of them already left the log (that read is not checked)."""
        first = no0 if was_inflight else no0 + 1
        with self.mlock:
            if self.evno >= first and (not self.evlog or self.evlog[0][0] > first):
                return None, self.inflight
            evs = [e for e in self.evlog if e[0] >= first]
            return evs, self.inflight


class SeqFile(File):
    seq = True

    def __init__(self, idx):
        super().__init__("seq/%d" % idx, os.path.join(MNT, "seq", str(idx)), NCNV + idx)
        self.gen = bytearray()  # the bytes appended since the last reset; mlock
        self.genid = 0
        self.dur = 0  # length acknowledged durable (sync append, fsync, finish)
        self.dio = 0  # length acknowledged by a sync or O_DIRECT append
        self.finished = False

    def size(self):
        return ZS if self.finished else len(self.gen)

    def view(self):
        return bytes(self.gen) + (bytes(ZS - len(self.gen)) if self.finished else b"")

    def view_range(self, off, n):
        """view()[off:off + n] without copying the whole file."""
        d = bytes(self.gen[off:off + n])
        if self.finished and len(d) < n:
            d += bytes(min(n, ZS - off) - len(d))
        return d

    def expected_clean(self):
        return self.view()

    def adopt(self, data):
        """After a crash, the file is what the checked remount found."""
        self.finished = len(data) == ZS
        self.gen = bytearray(data)  # a finished zone's zeros become part of it
        self.genid += 1
        self.dur = self.dio = len(self.gen)
        self.inflight = None

    def candidates(self):
        c = [(bytes(self.gen), self.dur, self.dio, self.finished)]
        if self.inflight:
            k = self.inflight[1]
            if k == "w":
                c.append((bytes(self.gen) + self.inflight[3], self.dur, self.dio, self.finished))
            elif k == "reset":
                c.append((b"", 0, 0, False))
            elif k == "finish":
                c.append((bytes(self.gen), len(self.gen), len(self.gen), True))
                # a finish first writes the partial tail padded with zeros,
                # then finishes the zone: a crash between leaves the padding
                pad = -len(self.gen) % BLK
                if pad:
                    c.append((bytes(self.gen) + bytes(pad), self.dur, self.dio, False))
        return c

    def check_crash(self, size, wp, data, killed_only):
        """None if (size, data) is a state the file may be in after the crash."""
        if size != wp:
            return "size %d != zone write pointer %d" % (size, wp)
        why = []
        for gen, dur, dio, fin in self.candidates():
            if fin and size == ZS:
                if data[: len(gen)] == gen and not any(data[len(gen):]):
                    return None
                at = first_diff(data[: len(gen)], gen)
                why.append("finished zone: byte %d is %s, want %s" % (
                    at if at >= 0 else len(gen), show(data, at if at >= 0 else len(gen)),
                    show(gen, at) if at >= 0 else "zeros"))
                continue
            if fin:
                why.append("a finished zone has size %d" % size)
                continue
            if size < dur:
                why.append("size %d < %d bytes acknowledged durable" % (size, dur))
                continue
            if killed_only and size < dio:
                why.append("size %d < %d bytes acknowledged by sync/O_DIRECT appends "
                           "(kill -9, no power cut)" % (size, dio))
                continue
            if size > len(gen):
                why.append("size %d > %d bytes ever appended" % (size, len(gen)))
                continue
            at = first_diff(data, gen[:size])
            if at >= 0:
                zeros = not any(data[at:at + 8])
                why.append("byte %d of %d (%d durable) is %s, want %s%s" % (
                    at, size, dur, show(data, at), show(gen, at),
                    zeros_at(data, at, 0, len(gen)) if zeros else
                    " (bytes never appended there%s)" % self.ghost_note(at, data[at])))
                continue
            return None
        return "; ".join(why)


class CnvFile(File):
    seq = False

    def __init__(self, idx):
        super().__init__("cnv/%d" % idx, os.path.join(MNT, "cnv", str(idx)), 1 + idx)
        self.acked = bytearray(ZS)  # content after every acknowledged write; mlock
        self.durimg = bytearray(ZS)  # what must survive a crash, per byte; mlock
        self.base = 0  # evno whose writes durimg holds in full (the last fsync)
        self.dur_after = []  # (evno, off, data) of sync writes after base; mlock
        self.pending = []  # (evno, off, data) of writes after base not durable; mlock

    def size(self):
        return ZS

    def view(self):
        return bytes(self.acked)

    def view_range(self, off, n):
        return bytes(self.acked[off:off + n])

    def expected_clean(self):
        return bytes(self.acked)

    def adopt(self, data):
        self.acked = bytearray(data)
        self.durimg = bytearray(data)
        self.base = self.evno
        self.dur_after, self.pending = [], []
        self.inflight = None

    def fsynced(self, snap, no0):
        """Every write acknowledged before the fsync began (evno <= no0, whose
        content is snap) is durable. Caller holds mlock."""
        if no0 < self.base:
            return
        self.durimg = bytearray(snap)
        self.base = no0
        self.dur_after = [d for d in self.dur_after if d[0] > no0]
        for no, off, d in self.dur_after:
            self.durimg[off:off + len(d)] = d
        self.pending = [p for p in self.pending if p[0] > no0]

    def check_crash(self, data):
        """None if every byte holds its durable content or that of a later
        write (acknowledged or in flight at the crash)."""
        later = list(self.pending)
        if self.inflight and self.inflight[1] == "w":
            later.append((self.inflight[0], self.inflight[2], self.inflight[3]))
        for b0 in range(0, ZS, BLK):
            got = data[b0:b0 + BLK]
            if got == self.durimg[b0:b0 + BLK] or got == self.acked[b0:b0 + BLK]:
                continue
            for i in range(b0, b0 + BLK):
                if data[i] == self.durimg[i]:
                    continue
                dseq = max([self.base] + [no for no, off, d in self.dur_after
                                          if off <= i < off + len(d)])
                ok = any(no > dseq and off <= i < off + len(d) and d[i - off] == data[i]
                         for no, off, d in later)
                if not ok:
                    return ("byte %d is %02x; durable %02x, acknowledged %02x, and no write "
                            "after the last durable one wrote it%s" % (
                                i, data[i], self.durimg[i], self.acked[i],
                                " (zeros)" if data[i] == 0 else
                                " (bytes never written there%s)" % self.ghost_note(i, data[i])))
        return None


# ---- the workload threads ----


def cut_short(w, n):
    """The error that ends a write the crash cut short (w of n bytes
    acknowledged), its rest left in flight: the worker ends as on the
    crash's own error, and no later op of its file replaces that rest
    (model.py's writer marks the file broken; posix_model.py's worker ends)."""
    return OSError(errno.EIO, "short count %d of %d at the crash" % (w, n))


class Phase:
    def __init__(self, it, files, expect_eio, cut):
        self.it = it
        self.files = files
        self.stop = threading.Event()
        self.killed = threading.Event()  # the daemon is being killed: errors are the crash
        self.expect_eio = expect_eio  # dead_after: the device dies mid-phase
        self.dead = threading.Event()  # it did: end the phase
        self.threads = []
        # what the threads saw on a device that was to die: reported only
        # when it did not die (a write error shrinks a file to its pointer)
        self.deferred = []
        # fsync pacing: from back to back to rare; rarer before a power cut,
        # where each flush empties the device's volatile cache
        self.fsync_pause = it.rng.choice([0.05, 0.3, 1.0, 3.0] if cut else [0, 0.001, 0.02, 0.2])
        # the share of sync writes: each one flushes the device, so a phase
        # that ends in a cut is often mostly buffered
        s = it.rng.choice([1, 0.1, 0.02] if cut else [1, 1, 0.1])
        self.seq_mix = [34, 6, 13 * s, 13 * s, 13 * s, 12, 6 * s, 2]
        self.cnv_mix = [40, 13 * s, 13 * s, 13 * s, 12, 6 * s, 3]


def soft(it, what, kind=None):
    it.soft_fail(what, kind)


def kinds_of(what):
    """The classes of bug a hard failure's message shows, for the summary."""
    k = []
    pre = "clean remount" if "clean unmount" in what else \
        "kill -9" if "after kill -9" in what else "power cut" if "power cut" in what else "run"
    for pat, name in (("async O_DIRECT", "an async O_DIRECT write failed"),
                      ("finished zone", "a finished zone lost appended bytes"),
                      ("acknowledged by sync/O_DIRECT", "O_DIRECT-acknowledged bytes lost"),
                      ("acknowledged durable", "durable bytes lost (size)"),
                      ("of a block", "zeros in the tail of a block"),
                      ("whole blocks", "zeros in whole blocks"),
                      (" bytes, to offset", "zeros in a run of bytes"),
                      ("(zeros)", "zeros in a conventional file"),
                      ("never written", "bytes never written there"),
                      ("never appended", "bytes never appended there"),
                      ("write pointer", "size differs from the write pointer"),
                      ("hung", "hang"), ("unexpected error", "unexpected error"),
                      ("the daemon died", "the daemon died")):
        if pat in what:
            k.append("%s: %s" % (pre, name))
    return k or ["%s: %s" % (pre, what[:60])]


class Worker(threading.Thread):
    def __init__(self, phase, rng, role):
        super().__init__(daemon=True)
        self.ph = phase
        self.rng = random.Random(rng.getrandbits(64))
        self.role = role
        self.err = None
        self.myfds = {}  # this thread's own fds: name (fsync), name!r, name!d (reads)
        self.aio = None  # this thread's AIO context, made at its first async write

    def run(self):
        try:
            self.loop()
        finally:
            if self.aio:
                self.aio.close()

    def loop(self):
        try:
            while not self.ph.stop.is_set():
                getattr(self, self.role)()
        except OSError as e:
            if self.ph.killed.is_set():
                return  # the crash: the op in flight stays in flight
            if self.ph.expect_eio and e.errno in (errno.EIO, errno.EROFS):
                self.ph.dead.set()
                return
            if e.errno in (errno.ECONNABORTED, errno.ENOTCONN) and self.daemon_gone():
                return  # the main thread reports the daemon's death
            self.err = e
            self.ph.it.hard_fail("%s thread: unexpected error %s%s" % (
                self.role, e, " in %s" % e.model_op if hasattr(e, "model_op") else ""))
            self.ph.stop.set()
        except Fail as e:
            self.err = e
            self.ph.it.hard_fail(str(e))
            self.ph.stop.set()
        except Exception as e:  # noqa: BLE001 - a checker bug must show
            self.err = e
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

    # -- writers --

    def writer(self):
        f = self.rng.choice(self.ph.files)
        with f.wlock:
            if self.ph.stop.is_set() or f.broken:
                return
            try:
                if f.seq:
                    self.seq_op(f)
                else:
                    self.cnv_op(f)
            except OSError as e:
                f.broken = True  # its op stays in flight in the model: no more on this file
                e.model_op = "%s %s" % (f.name, f.hist[-1] if f.hist else "")
                raise

    def length(self, room):
        r = self.rng
        k = r.random()
        if k < 0.2:
            n = r.randint(1, 100)
        elif k < 0.55:
            n = r.randint(1, 2 * BLK)
        elif k < 0.93:
            n = r.randint(1, 64 << 10)
        elif k < 0.97:
            n = r.randint(64 << 10, 1 << 20)
        else:
            n = (1 << 20) + r.choice([0, 0, BLK, r.randint(1, 1 << 20)])  # FUSE splits these
        return max(1, min(n, room))

    def do_write(self, f, how, off, data):
        """Write data at off through f's fd of flavour how; returns the count."""
        if how == "rwf_dsync":
            return os.pwritev(f.fds["buf"], [data], off, os.RWF_DSYNC)
        if how == "append":
            return os.write(f.fds[how], data)  # O_APPEND: at the size, wherever off is
        if how == "aio":
            return self.aio_write(f, off, data)
        if how in ("odirect", "odirect_dsync"):
            m = aligned_buf(data)
            try:
                return os.pwrite(f.fds[how], memoryview(m)[: len(data)], off)
            finally:
                m.close()
        return os.pwrite(f.fds[how], data, off)

    def aio_write(self, f, off, data):
        """An asynchronous O_DIRECT write, waited for. FUSE splits one over
        1 MiB into requests its workers handle in any order; the write must
        still succeed whole (or fail and leave nothing behind)."""
        if self.aio is None:
            try:
                self.aio = Aio() if _NR else False
            except OSError:
                self.aio = False  # no AIO here (aio-max-nr): a plain O_DIRECT write
        m = aligned_buf(data)
        try:
            if not self.aio:
                return os.pwrite(f.fds["odirect"], memoryview(m)[: len(data)], off)
            return self.aio.pwrite(f.fds["odirect"], m, len(data), off)
        except OSError as e:
            if self.ph.killed.is_set() or (
                    self.ph.expect_eio and e.errno in (errno.EIO, errno.EROFS)):
                raise
            raise Fail("%s: an async O_DIRECT write of %d bytes at %d failed: %s (size now %d) "
                       "[ops %s]" % (f.name, len(data), off, e, os.fstat(f.fds["buf"]).st_size,
                                     " ".join(list(f.hist)[-6:])))
        finally:
            m.close()

    def seq_op(self, f):
        r, size = self.rng, f.size()
        room = ZS - size
        k = r.random()
        if f.finished or room < BLK or k < 0.03:
            self.truncate(f, 0)
            return
        if k < 0.05:
            self.truncate(f, ZS)
            return
        if k < 0.07:
            self.refuse_seq(f)
            return
        how = r.choices(["buf", "append", "osync", "odsync", "rwf_dsync", "odirect",
                         "odirect_dsync", "aio"], self.ph.seq_mix)[0]
        mis = size % BLK
        if how in ("odirect", "odirect_dsync", "aio") and mis:
            how = "buf"
        if how in ("buf", "append"):
            n = self.length(room)
        else:
            # sync appends end on a block; O_DIRECT ones start on one as well
            nblk = min((room + mis) // BLK, max(1, self.length(2 << 20) // BLK))
            if how == "aio" and r.random() < 0.5:
                nblk = min((room + mis) // BLK, r.randint(257, 768))  # split by FUSE
            n = nblk * BLK - mis
        data = r.randbytes(n)
        f.hist.append("%s@%d+%d" % (how, size, n))
        f.begin("w", size, data)
        w = self.do_write(f, how, size, data)
        STATS.add("seq-append-" + how)
        if w != n:
            # A write longer than max_write reaches the daemon in pieces; a kill
            # between them ends it short, the pieces done acknowledged.
            if not self.ph.killed.is_set() and not split_tail_short(how, size, n, w):
                soft(self.ph.it, "%s: short count %d of a %d-byte %s append at %d" % (
                    f.name, w, n, how, size), "short-seq-" + how)
            f.ghosts.append((size + w, data[w:]))
            rest, data = data[w:], data[:w]
        # cut short by the crash: the kernel sends a long write as several
        # requests, and the one the crash interrupts may reach the device
        # without its reply, so the rest stays in flight (cut_short)
        cut = w != n and self.ph.killed.is_set()
        with f.mlock:
            f.gen += data
            if how not in ("buf", "append"):
                f.dio = len(f.gen)
            if how not in ("buf", "append", "odirect", "aio"):
                f.dur = len(f.gen)
            f.inflight = (f.inflight[0], "w", size + w, rest) if cut else None
        if cut:
            raise cut_short(w, n)
        f.hist.append("ok")

    def refused(self, f, what, want, op):
        """op() must fail with errno want and change nothing."""
        f.hist.append("refuse-" + what)
        try:
            op()
        except OSError as e:
            if e.errno != want and (self.ph.killed.is_set() or (
                    self.ph.expect_eio and e.errno in (errno.EIO, errno.EROFS))):
                raise  # the crash, not the rule
            if e.errno != want:
                raise Fail("%s: %s failed with %s, want %s" % (
                    f.name, what, errno.errorcode.get(e.errno), errno.errorcode[want]))
            STATS.add("refused-" + what)
            return
        raise Fail("%s: %s succeeded, want %s [ops %s]" % (
            f.name, what, errno.errorcode[want], " ".join(list(f.hist)[-6:])))

    def refuse_seq(self, f):
        """The zonefs rules, while everything else runs: a write not at the
        size EINVAL, at the capacity EFBIG, misaligned O_DIRECT EINVAL, a
        truncate to neither 0 nor the capacity EPERM."""
        r, size = self.rng, f.size()
        k = r.randrange(4)
        if k == 0:
            off = r.randrange(0, size) if size and r.random() < 0.7 else \
                r.randrange(size + 1, ZS)
            how = r.choice(["buf", "osync", "rwf_dsync"])
            self.refused(f, "write-%s-not-at-size" % how, errno.EINVAL,
                         lambda: self.do_write(f, how, off, r.randbytes(r.randint(1, 3 * BLK))))
        elif k == 1:
            self.refused(f, "write-at-capacity", errno.EFBIG,
                         lambda: self.do_write(f, r.choice(["buf", "osync"]), ZS, b"x" * BLK))
        elif k == 2:
            # at a misaligned size, EINVAL even when the write crosses the
            # capacity; at an aligned one, only a write inside it (the
            # kernel would cut a crossing one to a whole block and write it)
            n = r.randint(1, 3 * BLK) if size % BLK else \
                r.randint(1, BLK - 1) + BLK * r.randrange(2 if ZS - size >= 2 * BLK else 1)
            self.refused(f, "misaligned-odirect", errno.EINVAL,
                         lambda: self.do_write(f, "odirect", size, r.randbytes(n)))
        else:
            to = r.choice([r.randrange(1, ZS), size or BLK])
            self.refused(f, "truncate-to-%s" % ("size" if to == size else "other"), errno.EPERM,
                         lambda: os.ftruncate(f.fds["buf"], to))

    def refuse_cnv(self, f):
        """A conventional file: truncate EPERM, a write at the capacity EFBIG,
        O_APPEND EINVAL."""
        r = self.rng
        k = r.randrange(3)
        if k == 0:
            to = r.choice([0, ZS, r.randrange(1, ZS)])
            self.refused(f, "truncate-cnv", errno.EPERM, lambda: os.ftruncate(f.fds["buf"], to))
        elif k == 1:
            self.refused(f, "write-at-capacity", errno.EFBIG,
                         lambda: self.do_write(f, r.choice(["buf", "odsync"]), ZS, b"y" * 100))
        else:
            self.refused(f, "append-cnv", errno.EINVAL,
                         lambda: self.do_write(f, "append", 0, b"z" * r.randint(1, BLK)))

    def truncate(self, f, to):
        kind = "reset" if to == 0 else "finish"
        f.hist.append("%s@%d" % (kind, len(f.gen)))
        f.begin(kind, len(f.gen))
        if self.rng.random() < 0.5:
            os.ftruncate(f.fds["buf"], to)
        else:
            os.truncate(f.path, to)
        STATS.add("seq-" + kind)
        with f.mlock:
            if to == 0:
                f.gen, f.finished = bytearray(), False
                f.genid += 1
                f.dur = f.dio = 0
            else:
                f.finished = True
                f.dur = f.dio = len(f.gen)  # a finish is durable, with what it ends
            f.inflight = None
        f.hist.append("ok")

    def cnv_op(self, f):
        r = self.rng
        if r.random() < 0.02:
            self.refuse_cnv(f)
            return
        how = r.choices(["buf", "osync", "odsync", "rwf_dsync", "odirect", "odirect_dsync", "aio"],
                        self.ph.cnv_mix)[0]
        n = self.length(ZS)
        if how == "aio" and r.random() < 0.5:
            n = r.randint(257, 768) * BLK  # split by FUSE
        off = r.randrange(0, ZS - n + 1)
        if how == "aio" or r.random() < 0.5 or (how.startswith("odirect") and r.random() < 0.5):
            off -= off % BLK
            n = max(BLK, n - n % BLK)
        data = r.randbytes(n)
        f.hist.append("%s@%d+%d" % (how, off, n))
        f.begin("w", off, data)
        w = self.do_write(f, how, off, data)
        STATS.add("cnv-write-" + how)
        if w != n:
            if not self.ph.killed.is_set():  # not the kill's, as for appends
                soft(self.ph.it, "%s: short count %d of a %d-byte %s write at %d" % (
                    f.name, w, n, how, off), "short-cnv-" + how)
            f.ghosts.append((off + w, data[w:]))
            rest, data = data[w:], data[:w]
        cut = w != n and self.ph.killed.is_set()  # as for appends
        with f.mlock:
            no = f.inflight[0]
            f.acked[off:off + len(data)] = data
            if how in ("buf", "odirect", "aio"):
                f.pending.append((no, off, data))
            else:
                f.durimg[off:off + len(data)] = data
                f.dur_after.append((no, off, data))
            f.inflight = (no, "w", off + w, rest) if cut else None
        if cut:
            raise cut_short(w, n)
        f.hist.append("ok")

    # -- fsync from other threads and fds --

    def fsyncer(self):
        if self.ph.fsync_pause:
            self.ph.stop.wait(self.rng.uniform(0, 2 * self.ph.fsync_pause))
            if self.ph.stop.is_set():
                return
        f = self.rng.choice(self.ph.files)
        ds = self.rng.random() < 0.5
        fd = self.myfds[f.name]
        with f.mlock:
            no0, infl0 = f.evno, f.inflight is not None
            if f.seq:
                snap = (f.genid, len(f.gen), len(f.gen) % BLK != 0)
            else:
                snap = bytes(f.acked)
                if infl0:
                    no0 -= 1  # the write in flight is not covered
        try:
            (os.fdatasync if ds else os.fsync)(fd)
            err = 0
        except OSError as e:
            if not (f.seq and e.errno == errno.EINVAL):
                raise
            err = e.errno
        STATS.add(("fdatasync" if ds else "fsync") + ("-einval" if err else ""))
        with f.mlock:
            if not f.seq:
                f.fsynced(snap, no0)
                return
            genid, n, partial = snap
            if err:
                # EINVAL is only for a partial tail block; the whole blocks
                # below it are durable (README, sub-block rule)
                maybe = partial or infl0 or f.evno != no0 or f.inflight is not None
                if not maybe:
                    raise Fail("%s: fsync returned EINVAL with no partial tail (size %d, no "
                               "write during the call)" % (f.name, n))
                n -= n % BLK
            if genid == f.genid and not f.finished:
                f.dur = max(f.dur, n)

    # -- readers checking the model while writes run --

    def reader(self):
        f = self.rng.choice(self.ph.files)
        direct = self.rng.random() < 0.25
        with f.mlock:
            no0, infl0 = f.evno, f.inflight is not None
            size0 = f.size()
            if size0 == 0:
                return
            off = self.rng.randrange(0, size0)
            n = self.length(256 << 10)
            if direct:
                off -= off % BLK
                n = (n + BLK - 1) // BLK * BLK
            view0 = f.view_range(off, n)
        if direct:
            m = mmap.mmap(-1, n)
            try:
                got = bytes(m[: os.preadv(self.myfds[f.name + "!d"], [m], off)])
            finally:
                m.close()
        else:
            got = os.pread(self.myfds[f.name + "!r"], n, off)
        # A read the kill interrupts ends short, not in an error, once some of
        # it is copied: the kernel splits a page-cache read (and a long direct
        # one) into several READs and returns what the answered ones brought.
        cut = self.ph.killed.is_set()
        STATS.add("read-direct" if direct else "read")
        STATS.add("bytes-verified", len(got))
        evs, infl1 = f.window(no0, infl0)
        if evs is None:
            STATS.add("read-unchecked")
            return
        if cut and len(got) < len(view0):
            STATS.add("read-cut-short")
            view0 = view0[: len(got)]
        if not evs:
            if got != view0:
                at = first_diff(got, view0)
                self.read_fail(f, off, n, got, view0, at, "no write ran during the read")
            return
        if f.seq and all(e[1] == "w" for e in evs):
            # appends only: what was below the size stays; beyond it, appended bytes
            if got[: len(view0)] != view0 or len(got) < len(view0):
                at = first_diff(got[: len(view0)], view0)
                self.read_fail(f, off, n, got, view0, at, "appends only ran during the read")
                return
            with f.mlock:
                final = bytes(f.gen)
                if f.inflight and f.inflight[1] == "w":
                    final += f.inflight[3]
            ext = final[off + len(view0):off + len(got)]
            if got[len(view0):] != ext:
                at = len(view0) + max(0, first_diff(got[len(view0):], ext))
                self.read_fail(f, off, n, got, final[off:], at,
                               "beyond the size at the start: not the appended bytes")
            return
        # writes, resets or finishes overlapped the read: each byte holds the
        # value before the read or one those changes wrote
        if len(got) > n:
            self.read_fail(f, off, n, got, view0, n, "read more than asked")
            return
        for i in range(len(got)):
            p = off + i
            if i < len(view0) and got[i] == view0[i]:
                continue
            if any(e[1] == "w" and e[2] <= p < e[2] + len(e[3]) and e[3][p - e[2]] == got[i]
                   for e in evs):
                continue
            if got[i] == 0 and any(e[1] == "finish" and p >= e[2] for e in evs):
                continue
            self.read_fail(f, off, n, got, view0, i, "overlapping %s" % ",".join(
                sorted(set(e[1] for e in evs))))
            return

    def read_fail(self, f, off, n, got, want, at, why):
        STATS.add("read-failures")
        soft(self.ph.it, "%s: read of %d at %d returned %d bytes; byte %d (file offset %d) "
             "is %s, want %s%s (%s) [ops %s]" % (
                 f.name, n, off, len(got), at, off + at, show(got, at), show(want, at),
                 zeros_at(got, at, off), why,
                 " ".join(list(f.hist)[-8:])),
             "read of a %s file: %s (%s)" % (
                 "seq" if f.seq else "cnv",
                 "zeros" if at < len(got) and not any(got[at:at + 8]) else "wrong bytes", why))


# ---- one iteration: an image, several phases ----


class Iteration:
    """One seed: a fresh image, then phases, each begun by a mount (on the
    fault device when it ends in a power cut) and ended by a clean unmount, a
    kill -9 or a power cut, each checked against the model."""

    def __init__(self, seed, deadline):
        self.seed = seed
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.files = [CnvFile(i) for i in range(NCNV - 1)] + [SeqFile(i) for i in range(NSEQ)]
        self.lock = threading.Lock()
        self.fails = []  # (kind, first report)
        self.kinds = {}  # kind -> how many more of it
        self.hard = None
        self.phase_no = 0
        self.p = None
        self.expect = None  # after a clean unmount: what the next mount must show
        self.phase = None  # the phase running, while its threads run
        self.selftest = bool(os.environ.get("FOLIOFS_MODEL_SELFTEST"))
        self.corrupted = None  # (file name, offset) the self-test changed on the image

    def soft_fail(self, what, kind=None):
        """A failure after which the model still knows the files: recorded,
        the first of each kind in full, and the iteration goes on."""
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
            self.fails.append((kind, "phase %d: %s" % (self.phase_no, what)))

    def fail_lines(self):
        out = [self.hard] if self.hard else []
        for kind, what in self.fails:
            n = self.kinds[kind]
            out.append(what + (" (and %d more like it)" % n if n else ""))
        return out

    def hard_fail(self, what):
        with self.lock:
            if self.hard is None:
                self.hard = "phase %d: %s" % (self.phase_no, what)
                for k in kinds_of(what):
                    self.tally(k)

    def tally(self, kind):
        STATS.add("kind:" + kind)
        with STATS.lock:
            FIRST.setdefault(kind, self.seed)

    def run(self):
        crash.force_unmount()
        os.makedirs(MNT, exist_ok=True)
        for p in (IMG, VLOG, VLOG + ".orig", DLOG):
            if os.path.exists(p):
                os.unlink(p)
        with open(IMG, "wb") as f:
            f.truncate((NCNV + NSEQ) * ZS + (1 << 20))
        crash.sh([crash.MKFS, "--format", "zonefs", "--emulate-zoned", "--conv-zones", str(NCNV), "--zone-size",
                  str(ZS), IMG])
        nphases = self.rng.randint(4, 10)
        try:
            for i in range(nphases):
                self.phase_no = i
                self.one_phase()
                if self.hard or time.monotonic() > self.deadline:
                    break
            if not self.hard and self.expect is not None:
                self.mount(None)
                self.unmount_clean(crash_check=True)
        except Fail as e:
            if self.corrupted and self.corrupted[0] + ":" in str(e):
                STATS.add("selftest-detected")
            else:
                self.hard_fail(str(e))
        except SelfTestMissed as e:
            self.hard_fail(str(e))
        finally:
            if self.p:
                crash.kill9(self.p)
                self.p = None
            crash.force_unmount()
        return self.phase_no + 1

    def mount(self, fault):
        if os.path.exists(VLOG):
            os.unlink(VLOG)
        self.p = crash.mount(fault, OPTS)
        if self.expect is not None:
            self.check_clean()

    def check_clean(self):
        """After a clean unmount and this mount: every acknowledged byte, exactly."""
        expect, how = self.expect
        self.expect = None
        got = self.read_all()
        bad = []
        for f in self.files:
            e, g = expect[f.name], got[f.name]
            at = first_diff(g, e)
            if at >= 0:
                bad.append("%s: %s%d bytes, want %d; byte %d is %s, want %s%s [ops %s]" % (
                    f.name, "finished zone: " if f.seq and f.finished else "", len(g), len(e),
                    at, show(g, at), show(e, at),
                    zeros_at(g, at, 0, len(f.gen) if f.seq else len(e)),
                    " ".join(list(f.hist)[-6:])))
        STATS.add("bytes-verified", sum(len(g) for g in got.values()))
        if bad:
            STATS.add("failed-remount-checks")
            raise Fail("after a clean unmount (%s) and remount: %s" % (how, "; ".join(bad)))
        self.selftest_missed()

    def selftest_missed(self):
        if self.corrupted:
            raise SelfTestMissed("self-test: byte %d of %s was changed on the image and the "
                                 "check did not notice" % (self.corrupted[1], self.corrupted[0]))

    def corrupt(self, clean):
        """The self-test: change one byte that the next check must find
        (acknowledged after a clean unmount, durable after a crash)."""
        r = self.rng
        for _ in range(200):
            f = r.choice(self.files)
            if f.seq:
                n = len(f.gen) if clean else f.dur
                if n == 0 or (f.inflight and f.inflight[1] == "reset"):
                    continue
                b = r.randrange(n)
                allowed = {f.gen[b]}
            else:
                b = r.randrange(ZS)
                allowed = {f.acked[b]} if clean else {f.durimg[b]} | {
                    d[b - off] for no, off, d in f.pending + ([f.inflight[0:1] + f.inflight[2:]]
                                                             if f.inflight else [])
                    if off <= b < off + len(d)}
            v = next(x for x in range(256) if x not in allowed)
            with open(IMG, "r+b") as img:
                img.seek(f.zone * ZS + b)
                img.write(bytes([v]))
            self.corrupted = (f.name, b)
            return

    def open_fds(self, f):
        fl = {"buf": os.O_RDWR, "append": os.O_WRONLY | os.O_APPEND,
              "osync": os.O_WRONLY | os.O_SYNC,
              "odsync": os.O_WRONLY | os.O_DSYNC, "odirect": os.O_WRONLY | os.O_DIRECT,
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
                fault += ",dead_after=%d" % r.randint(20, 3000)
        self.mount(fault)
        ph = Phase(self, [f for f in self.files if FILES in ("all", f.name[:3])],
                   bool(fault and "dead_after" in fault), end == "cut")
        self.phase = ph
        logpos = os.path.getsize(DLOG)
        for f in self.files:
            f.broken = False
            self.open_fds(f)
        for role in ["writer"] * 3 + ["fsyncer"] * 2 + ["reader"] * 2:
            w = Worker(ph, r, role)
            for f in self.files:
                w.myfds[f.name] = os.open(f.path, os.O_WRONLY)
                w.myfds[f.name + "!r"] = os.open(f.path, os.O_RDONLY)
                w.myfds[f.name + "!d"] = os.open(f.path, os.O_RDONLY | os.O_DIRECT)
            ph.threads.append(w)
        dur = r.uniform(1.0, 6.0)
        print("model: seed %d phase %d: %.1f s, then %s%s" % (
            self.seed, self.phase_no, dur, end, " (%s)" % fault if fault else ""), flush=True)
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
            self.phase_end(ph, end, fault, logpos)
        finally:
            self.phase = None
            ph.threads.clear()  # workers and their phase refer to each other
            if ph.deferred and not self.device_died(logpos):
                for what, kind in ph.deferred:
                    self.soft_fail(what, kind)

    def daemon_died(self, ph):
        """The daemon exited with the workload running: a crash of its own."""
        rc = self.p.returncode
        ph.killed.set()  # the threads' errors are this death's
        ph.stop.set()
        self.p = None
        crash.force_unmount()
        self.join(ph)
        for f in self.files:
            self.close_fds(f.fds)
        raise Fail("the daemon died during the workload (%s): %s" % (
            "killed by signal %d" % -rc if rc < 0 else "exit status %d" % rc,
            crash.tail_log(4)))

    @staticmethod
    def device_died(logpos):
        with open(DLOG, errors="replace") as f:
            f.seek(logpos)
            return "fault:" in f.read()

    def phase_end(self, ph, end, fault, logpos):
        r = self.rng
        if end == "clean":
            ph.stop.set()
            self.join(ph)
            if not self.hard:
                self.fill_tails()
            for f in self.files:
                self.close_fds(f.fds)
            if not self.hard:
                self.unmount_clean()
            return
        # kill -9, the workload running
        ph.killed.set()
        ph.stop.set()
        crash.kill9(self.p)
        self.p = None
        self.join(ph)
        for f in self.files:
            self.close_fds(f.fds)
        if self.hard:
            return
        cut = None
        if fault and os.path.exists(VLOG):
            shutil.copy(VLOG, VLOG + ".orig")
            keep = r.choice([0, 0, 30, 70, 100])
            out = crash.sh([crash.CUT, IMG, VLOG, str(self.seed * 100 + self.phase_no),
                            str(keep)]).stdout.split()
            cut = dict(zip(out[0::2], out[1::2]))
            cut["keep%"] = keep
            STATS.add("cut-writes-dropped", int(cut.get("dropped", 0)))
            print("model: seed %d phase %d: power cut: %s" % (
                self.seed, self.phase_no, " ".join("%s %s" % kv for kv in cut.items())),
                flush=True)
        STATS.add("crash-" + ("cut" if fault else "kill"))
        self.check_after_crash(killed_only=not fault, cut=cut)

    def join(self, ph):
        t0 = time.monotonic()
        for w in ph.threads:
            w.join(max(0.1, HANG_S - (time.monotonic() - t0)))
            if w.is_alive():
                if self.p:
                    crash.hang_report(self.p)
                raise Fail("%s thread hung for %d s (daemon log: %s)" % (
                    w.role, HANG_S, crash.tail_log(4)))
            self.close_fds(w.myfds)

    def fill_tails(self):
        """Before a clean unmount: most seq files get their partial tail block
        filled (every acknowledged byte must then come back); the others keep
        it and it is dropped at the unmount, as the README says."""
        for f in self.files:
            f.drop_tail = 0
            if not f.seq or f.finished or len(f.gen) % BLK == 0:
                continue
            if self.rng.random() < 0.7:
                n = BLK - len(f.gen) % BLK
                data = self.rng.randbytes(n)
                f.hist.append("fill@%d+%d" % (len(f.gen), n))
                w = os.pwrite(f.fds["buf"], data, len(f.gen))
                if w != n:
                    raise Fail("%s: short buffered append %d of %d" % (f.name, w, n))
                f.gen += data
            else:
                f.drop_tail = len(f.gen) % BLK
                f.hist.append("unmount-drops-tail-%d" % f.drop_tail)
                STATS.add("unmount-with-partial-tail")

    def raw_image(self):
        out = {}
        with open(IMG, "rb") as img:
            for f in self.files:
                img.seek(f.zone * ZS)
                out[f.name] = img.read(ZS)
        return out

    def unmount_clean(self, crash_check=False):
        """Clean unmount: when umount returns the image holds every
        acknowledged byte; the daemon exits 0; the zone pointers are the
        sizes. The next mount checks the content (self.expect)."""
        how = self.rng.choice([["umount", MNT], ["fusermount3", "-u", MNT]])
        crash.sh(how)
        raw = self.raw_image()
        try:
            rc = self.p.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            crash.hang_report(self.p)
            raise Fail("daemon did not exit %d s after %s" % (HANG_S, " ".join(how)))
        self.p = None
        if rc != 0:
            self.soft_fail("daemon exited %d after %s: %s" % (rc, how[0], crash.tail_log(3)),
                           "daemon-exit")
        if crash_check:
            return
        STATS.add("clean-remounts")
        expect = {}
        early = []
        for f in self.files:
            e = f.expected_clean()
            if f.seq and f.drop_tail:
                with f.mlock:
                    f.gen = f.gen[: len(f.gen) - f.drop_tail]
                    f.dur, f.dio = min(f.dur, len(f.gen)), min(f.dio, len(f.gen))
                f.drop_tail = 0
                e = f.expected_clean()
            expect[f.name] = e
            # a finished zone's rest reads zeros whatever the image holds there
            n = len(f.gen) if f.seq else len(e)
            at = first_diff(raw[f.name][:n], e[:n])
            if at >= 0:
                early.append("%s byte %d" % (f.name, at))
        wps = crash.zone_wps()
        for f in self.files:
            if f.seq and wps[f.zone] != len(expect[f.name]):
                raise Fail("%s: after a clean unmount the zone write pointer is %d, the file "
                           "was %d bytes [ops %s]" % (f.name, wps[f.zone], len(expect[f.name]),
                                                     " ".join(list(f.hist)[-6:])))
        if self.selftest:
            self.corrupt(clean=True)
        if early:
            self.soft_fail("%s returned before the write-back: the image lacked %s then (the "
                           "daemon wrote it later)" % (how[0], ", ".join(early[:4])),
                           "umount-early")
        self.expect = (expect, how[0])

    def read_all(self):
        got = {}
        for f in self.files:
            with open(f.path, "rb") as fh:
                got[f.name] = fh.read()
            if os.stat(f.path).st_size != len(got[f.name]):
                raise Fail("%s: stat size %d, read %d bytes" % (
                    f.name, os.stat(f.path).st_size, len(got[f.name])))
        return got

    def check_after_crash(self, killed_only, cut):
        """Remount after kill -9 or a power cut, read every file, unmount, and
        check each against what the crash may have left; the model then
        adopts what was found."""
        if self.selftest:
            self.corrupt(clean=False)
        self.p = crash.mount(None, OPTS)
        got = self.read_all()
        crash.sh(["umount", MNT])
        try:
            rc = self.p.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            crash.hang_report(self.p)
            raise Fail("daemon did not exit %d s after umount" % HANG_S)
        self.p = None
        if rc != 0:
            self.soft_fail("daemon exited %d after umount: %s" % (rc, crash.tail_log(3)),
                           "daemon-exit")
        wps = crash.zone_wps()
        errs = []
        for f in self.files:
            g = got[f.name]
            if f.seq:
                e = f.check_crash(len(g), wps[f.zone], g, killed_only)
            else:
                e = f.check_crash(g)
            if e:
                errs.append("%s: %s [ops %s]" % (f.name, e, " ".join(list(f.hist)[-10:])))
        STATS.add("bytes-verified", sum(len(g) for g in got.values()))
        if errs:
            STATS.add("failed-crash-checks")
            raise Fail("after %s: %s%s" % ("kill -9" if killed_only else "a power cut",
                                          "; ".join(errs), " (cut %s)" % cut if cut else ""))
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
            out.write("seed %d phase %d\n" % (self.seed, self.phase_no))
            for what in self.fail_lines():
                out.write("FAIL %s\n" % what)
            for f in self.files:
                out.write("%s: %s\n" % (f.name, " ".join(f.hist)))
        return ev


def tame_malloc():
    """Large blocks straight from mmap and two arenas: the threads copy
    megabytes per operation, and glibc's defaults would keep hundreds of
    MiB of freed memory in this process (only this process: the daemon's
    environment is untouched)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 10)  # M_MMAP_THRESHOLD (a fixed one: no dynamic raise)
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def fuse_usable():
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
        return True
    except OSError:
        return False


def main():
    for exe in (crash.MKFS, crash.DAEMON, crash.DEVTOOL, crash.CUT):
        if not os.access(exe, os.X_OK):
            print("model: %s not built" % exe)
            return 1
    if not fuse_usable():
        print("model: /dev/fuse is unusable; skipped")
        return 77
    os.makedirs(WORK, exist_ok=True)
    tame_malloc()
    # a timeout's SIGTERM unwinds like an exception: the daemon is killed, the mount goes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    secs = float(os.environ.get("FOLIOFS_MODEL_SECONDS", "180"))
    only = os.environ.get("FOLIOFS_MODEL_ONLY")
    seed = int(only) if only else int(os.environ.get("FOLIOFS_MODEL_SEED",
                                                     str(int(time.time()) % 1000000 * 1000)))
    print("model: first seed %d, %.0f s; replay one with FOLIOFS_MODEL_ONLY=SEED" % (seed, secs),
          flush=True)
    t0 = time.monotonic()
    failed = []
    iters = phases = 0
    while True:
        it = Iteration(seed, t0 + secs)
        phases += it.run()
        gc.collect()  # phases and threads refer to each other: free the files' megabytes now
        iters += 1
        if it.hard or it.fails:
            ev = it.keep_evidence()
            for what in it.fail_lines():
                print("FAIL seed=%d %s" % (seed, what), flush=True)
            print("  evidence: %s; replay: FOLIOFS_MODEL_ONLY=%d %s" % (ev, seed, sys.argv[0]),
                  flush=True)
            failed.append(seed)
        if only or time.monotonic() - t0 >= secs:
            break
        seed += 1
    c = STATS.c
    kinds = sorted(k for k in c if k.startswith(("seq-", "cnv-", "fsync", "fdatasync", "read")))
    print("model: %d iterations, %d phases, %.0f s" % (iters, phases, time.monotonic() - t0))
    print("model: operations: %s" % ", ".join("%s %d" % (k, c[k]) for k in kinds))
    print("model: crash points %d (%d power cuts, %d kill -9), %d volatile writes dropped; "
          "%d clean remounts (%d seq files left a partial tail to it); %.1f MiB verified" % (
              c["crash-cut"] + c["crash-kill"], c["crash-cut"], c["crash-kill"],
              c["cut-writes-dropped"], c["clean-remounts"], c["unmount-with-partial-tail"],
              c["bytes-verified"] / (1 << 20)))
    for k in sorted(k for k in c if k.startswith("kind:")):
        print("model: failure %s: %d times, first seed %d" % (k[5:], c[k], FIRST[k[5:]]))
    if c["selftest-detected"]:
        print("model: self-test: %d changed bytes found" % c["selftest-detected"])
    print("model: %d failed%s" % (len(failed), (" (seeds %s)" % failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
