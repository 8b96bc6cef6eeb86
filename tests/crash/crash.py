#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Crash-consistency driver for foliofs (DESIGN.md invariants 4 and 5).

Each iteration, from one seed: format a small emulated-zoned image, mount it
with the real daemon, run several writer threads (one file each: sequential
zones written by O_SYNC / O_DSYNC / RWF_DSYNC appends, buffered appends with
and without fsync, zone resets and finishes; a conventional file overwritten
with the same mix), record every operation acknowledged to the application,
then crash:
  cut:  the daemon runs with FOLIOFS_FAULT="dead_after=N,vlog=LOG": after its
        Nth raw device write the device is dead (writes and flushes fail);
        then kill -9, then ff-cut undoes a random subset of the writes the
        device had not made durable (its volatile cache at the power cut);
  kill: plain kill -9 of the daemon at a random moment (no fault device).
Then remount and check: the mount succeeds; every seq file's size is its
zone's write pointer (foliofs-dev report on the image, unmounted); every
acknowledged sync write and every fsync'd byte is present and exact; a seq
file holds exactly the bytes appended in its current generation, up to its
size (no byte that was never written); every conventional block holds its
last durable content or a later write to it.

  FOLIOFS_CRASH_ITERS  iterations (default 200; long mode e.g. 5000)
  FOLIOFS_CRASH_SEED   first seed (default: from the time; printed)
  FOLIOFS_CRASH_ONLY   replay a single seed
  FOLIOFS_BUILD        build dir (default ./build)
A failure prints "FAIL seed=S" with what differed; replay with
FOLIOFS_CRASH_ONLY=S. Exits 0 when every iteration passed.
"""
import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FOLIOFS_BUILD", os.path.join(ROOT, "build"))
WORK = os.environ.get("FOLIOFS_CRASH_DIR", "/tmp/h-crash/crash")
MKFS = os.path.join(BUILD, "src/cli/mkfs.foliofs")
DAEMON = os.path.join(BUILD, "src/fuse/foliofs")
DEVTOOL = os.path.join(BUILD, "src/cli/foliofs-dev")
CUT = os.path.join(BUILD, "tests/crash/ff-cut")
ZS = 4 << 20  # small zones: finishes and resets are cheap
NCNV = 2  # zone 0 (superblock) + cnv/0
NSEQ = 6
BLK = 4096
IMG = os.path.join(WORK, "img")
MNT = os.path.join(WORK, "mnt")
VLOG = os.path.join(WORK, "vlog")
DLOG = os.path.join(WORK, "daemon.log")


HANG_S = int(os.environ.get("FOLIOFS_CRASH_HANG_S", "30"))


def hang_report(p):
    """Where the daemon's threads are waiting (gdb if present), for a hang report."""
    try:
        r = subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        path = os.path.join(WORK, "hang-%d.txt" % p.pid)
        with open(path, "w") as f:
            f.write(r.stdout)
        print("  daemon stacks: %s" % path, flush=True)
    except (OSError, subprocess.TimeoutExpired):
        pass


class Fail(Exception):
    pass


def sh(args, check=True, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise Fail("%s exited %d: %s" % (" ".join(args), r.returncode, r.stdout.strip()))
    return r


def force_unmount():
    if os.path.ismount(MNT):
        subprocess.run(["umount", "-l", MNT], stderr=subprocess.DEVNULL)
    # a dead FUSE connection fails ismount's stat; umount -l it anyway
    subprocess.run(["umount", "-l", MNT], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


# The FUSE connection of the last mount (its minor device number, as fusectl names it).
CONN = [None]


def mount_conn():
    """The connection number of the FUSE mount at MNT (its st_dev minor), from mountinfo:
    a stat of MNT would be a request to the daemon."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == MNT and ":" in fields[2]:
                return fields[2].split(":")[1]
    return None


def abort_conn():
    """Abort the last mount's FUSE connection through fusectl (mounted if need be).
    True if it was aborted."""
    conns = "/sys/fs/fuse/connections"
    if CONN[0] is None:
        return False
    if not os.path.exists(os.path.join(conns, CONN[0])):
        subprocess.run(["mount", "-t", "fusectl", "none", conns],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(os.path.join(conns, CONN[0], "abort"), "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


# A logical block for the fault layer to report (FOLIOFS_FAULT lblock=), or
# None: set by a driver for an iteration on a regular image, so that the
# mount writes as on a 512 B-sector disk (the posix format's short headers).
LBLOCK = [None]


def mount(env_fault=None, opts=None):
    env = dict(os.environ)
    env.pop("FOLIOFS_FAULT", None)
    if LBLOCK[0]:
        env_fault = ",".join(x for x in (env_fault, "lblock=%d" % LBLOCK[0]) if x)
    if env_fault:
        env["FOLIOFS_FAULT"] = env_fault
    args = [DAEMON, "-f"]
    if opts:
        args += ["-o", opts]
    log = open(DLOG, "ab")
    p = subprocess.Popen(args + [IMG, MNT], env=env, stdout=log, stderr=log)
    log.close()
    for _ in range(500):
        if os.path.ismount(MNT):
            CONN[0] = mount_conn()
            return p
        if p.poll() is not None:
            raise Fail("mount failed (exit %d): %s" % (p.returncode, tail_log()))
        time.sleep(0.01)
    p.kill()
    raise Fail("mount did not appear in 5 s")


def tail_log(n=8):
    try:
        with open(DLOG, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-n:])
    except OSError:
        return ""


def unmount(p):
    sh(["umount", MNT])
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Fail("daemon did not exit after umount")
    if rc != 0:
        raise Fail("daemon exited %d after umount: %s" % (rc, tail_log()))


def kill9(p):
    try:
        p.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    # A worker killed inside the kernel's invalidation of a page (a file with
    # a page-cache open, a conventional file's read-only one by default:
    # fuse_reverse_inval_inode waits, unkillable, for the lock of a page
    # whose READ is in flight) never exits: it holds /dev/fuse
    # open, so the READ is never failed and the process never ends. Only
    # aborting the connection frees it, as an administrator would.
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print("  the killed daemon did not exit in 10 s: FUSE connection %s aborted (%s)" % (
            CONN[0], abort_conn()), flush=True)
        p.wait(timeout=60)
    force_unmount()
    # The dead daemon's io_uring is torn down after its exit, and writes in
    # flight may still land until then; its image lock goes with the ring.
    # Wait for it, so that ff-cut is not overwritten by a late write.
    fd = os.open(IMG, os.O_RDONLY)
    try:
        for _ in range(500):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                break
            except BlockingIOError:
                time.sleep(0.01)
        else:
            raise Fail("the killed daemon's image lock was not released in 5 s")
    finally:
        os.close(fd)


def zone_wps():
    """{zone index: wp relative to the zone start} from the unmounted image."""
    out = sh([DEVTOOL, "report", IMG]).stdout
    wps = {}
    for line in out.splitlines():
        if not line.startswith("zone "):
            continue
        f = line.replace(":", "").split()
        d = dict(zip(f[2::2], f[3::2]))
        if d.get("type") != "cnv":
            wps[int(f[1])] = int(d["wp"])  # printed relative to the zone start
    return wps


# ---- models of what each file may hold after the crash ----


class SeqModel:
    """A sequential file: the bytes appended since its last reset (gen), the
    length acknowledged durable (dur), and the op in flight at the crash."""

    def __init__(self, idx):
        self.idx = idx
        self.gen = bytearray()
        self.dur = 0
        self.finished = False
        self.inflight = None  # ("append", bytes) | ("reset",) | ("finish",)
        self.hist = []  # the last operations, for a failure report
        self.allgens = []  # (bytes, finished) of every earlier generation

    def candidates(self):
        cur = (bytes(self.gen), self.dur, self.finished)
        c = [cur]
        if self.inflight:
            k = self.inflight[0]
            if k == "append":
                c.append((bytes(self.gen) + self.inflight[1], self.dur, self.finished))
            elif k == "reset":
                c.append((b"", 0, False))
            elif k == "finish":
                c.append((bytes(self.gen), len(self.gen), True))
        return c

    def check(self, size, wp, data, lenient=False):
        if size != wp:
            return "size %d != write pointer %d" % (size, wp)
        if lenient:
            # a device that acknowledged writes it dropped: no durability
            # promise holds, but the file is still a prefix of some
            # generation it had (never bytes that were never written)
            for gen, fin in self.allgens + [(bytes(c[0]), c[2]) for c in self.candidates()]:
                if fin and size == ZS and data[:len(gen)] == gen and not any(data[len(gen):]):
                    return None
                if size <= len(gen) and data == gen[:size]:
                    return None
            return "not a prefix of any generation (size %d) [ops %s]" % (size, " ".join(self.hist[-8:]))
        why = []
        for gen, dur, fin in self.candidates():
            if fin:
                # a finished zone: the file is the whole capacity, zeros after gen
                if size == ZS and data[: len(gen)] == gen and not any(data[len(gen):]):
                    return None
                if size == ZS:
                    why.append("finished zone differs from the appended bytes")
                    continue
            if size < dur:
                why.append("size %d < %d bytes acknowledged durable" % (size, dur))
                continue
            if size > len(gen) and not (fin and size == ZS):
                why.append("size %d > %d bytes ever appended" % (size, len(gen)))
                continue
            if data != gen[:size]:
                bad = next(i for i in range(size) if data[i] != gen[i])
                why.append(
                    "content differs at byte %d (of %d, %d durable): got %s want %s"
                    % (bad, size, dur, data[bad:bad + 8].hex(), gen[bad:bad + 8].hex())
                )
                continue
            return None
        nz = next((i for i, b in enumerate(data) if b), -1)
        return "; ".join(why) + " [gen %d dur %d finished %s inflight %s; first nonzero byte %d; ops %s]" % (
            len(self.gen), self.dur, self.finished, self.inflight and self.inflight[0], nz,
            " ".join(self.hist[-8:]))


class CnvModel:
    """A conventional file: per block, its durable content and the later
    (not yet durable, or in flight) contents it may hold instead."""

    def __init__(self, nblk):
        self.dur = {}  # block -> bytes (absent: zeros)
        self.later = {}  # block -> [bytes...]
        self.ever = {}  # block -> every content written to it
        self.inflight = None

    def allowed(self, b):
        a = [self.dur.get(b, bytes(BLK))]
        a += self.later.get(b, [])
        if self.inflight:
            off, data = self.inflight
            if off // BLK <= b < (off + len(data)) // BLK:
                a.append(data[(b - off // BLK) * BLK:][:BLK])
        return a

    def check(self, data, lenient=False):
        if lenient:
            for b, vals in self.ever.items():
                got = data[b * BLK:(b + 1) * BLK]
                if got != bytes(BLK) and got not in vals:
                    return "cnv block %d holds bytes never written there" % b
            return None
        blocks = set(self.dur) | set(self.later)
        if self.inflight:
            off, d = self.inflight
            blocks |= set(range(off // BLK, (off + len(d)) // BLK))
        for b in sorted(blocks):
            got = data[b * BLK:(b + 1) * BLK]
            if got not in self.allowed(b):
                durable = got == self.dur.get(b, bytes(BLK))
                return "cnv block %d holds %s... (not its durable content%s)" % (
                    b, got[:8].hex(), "" if not durable else "?")
        # blocks never written stay zero
        for b in range(len(data) // BLK):
            if b not in blocks and any(data[b * BLK:(b + 1) * BLK]):
                return "cnv block %d was never written but is not zero" % b
        return None


# ---- the workload ----


class Writer(threading.Thread):
    def __init__(self, rng, path, model, nops, stop):
        super().__init__(daemon=True)
        self.rng = random.Random(rng.getrandbits(64))
        self.path = path
        self.m = model
        self.nops = nops
        self.stop = stop
        self.acked = 0
        self.err = None

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


def open_for_write(path, how):
    """Open path for writing with the O_SYNC/O_DSYNC of the write flavour how."""
    flags = os.O_WRONLY
    if how == "osync":
        flags |= os.O_SYNC
    elif how == "odsync":
        flags |= os.O_DSYNC
    return os.open(path, flags)


class SeqWriter(Writer):
    def one(self):
        m, r = self.m, self.rng
        room = ZS - len(m.gen)
        k = r.random()
        if m.finished or room < 16 * BLK or k < 0.04:
            m.hist.append("reset")
            m.allgens.append((bytes(m.gen), m.finished))
            m.inflight = ("reset",)
            os.truncate(self.path, 0)
            m.gen, m.dur, m.finished, m.inflight = bytearray(), 0, False, None
            return
        if k < 0.06:
            m.hist.append("finish@%d" % len(m.gen))
            m.inflight = ("finish",)
            os.truncate(self.path, ZS)
            m.finished, m.dur, m.inflight = True, len(m.gen), None
            return
        n = r.randint(1, min(16, room // BLK - 1)) * BLK
        data = r.randbytes(n)
        how = r.choice(["osync", "odsync", "rwf_dsync", "buf_fsync", "buf", "buf", "buf",
                        "buf_fdatasync"])
        m.inflight = ("append", data)
        m.hist.append("%s@%d+%d" % (how, len(m.gen), n))
        fd = open_for_write(self.path, how)
        try:
            off = len(m.gen)
            if how == "rwf_dsync":
                w = os.pwritev(fd, [data], off, os.RWF_DSYNC)
            else:
                w = os.pwrite(fd, data, off)
            if w != n:
                raise Fail("short write %d of %d" % (w, n))
            m.gen += data
            if how in ("osync", "odsync", "rwf_dsync"):
                m.inflight = None
                m.dur = len(m.gen)
            elif how == "buf":
                m.inflight = None
            else:
                m.inflight = None
                # the bytes are appended (not durable) until the fsync returns
                (os.fsync if how == "buf_fsync" else os.fdatasync)(fd)
                m.dur = len(m.gen)
        finally:
            os.close(fd)


class CnvWriter(Writer):
    def one(self):
        m, r = self.m, self.rng
        nblk = r.randint(1, 8)
        b0 = r.randrange(0, 64)
        off = b0 * BLK
        data = r.randbytes(nblk * BLK)
        how = r.choice(["osync", "odsync", "buf_fsync", "buf", "buf", "buf"])
        m.inflight = (off, data)
        for i in range(nblk):
            m.ever.setdefault(b0 + i, set()).add(data[i * BLK:(i + 1) * BLK])
        fd = open_for_write(self.path, how)
        try:
            if os.pwrite(fd, data, off) != len(data):
                raise Fail("short write")
            blocks = range(b0, b0 + nblk)
            if how in ("osync", "odsync"):
                for i, b in enumerate(blocks):
                    m.dur[b] = data[i * BLK:(i + 1) * BLK]
                    m.later.pop(b, None)
                m.inflight = None
            else:
                for i, b in enumerate(blocks):
                    m.later.setdefault(b, []).append(data[i * BLK:(i + 1) * BLK])
                m.inflight = None
                if how == "buf_fsync":
                    os.fsync(fd)
                    # everything written to this file before the fsync is durable
                    for b, vals in list(m.later.items()):
                        m.dur[b] = vals[-1]
                    m.later.clear()
        finally:
            os.close(fd)


def one_iteration(seed, stats):
    rng = random.Random(seed)
    k = rng.random()
    mode = "kill" if k < 0.2 else "drop" if k < 0.3 else "cut"
    force_unmount()
    for f in (IMG, VLOG, DLOG):
        if os.path.exists(f):
            os.unlink(f)
    with open(IMG, "wb") as f:
        f.truncate((NCNV + NSEQ) * ZS + (1 << 20))
    sh([MKFS, "--format", "zonefs", "--emulate-zoned", "--conv-zones", str(NCNV), "--zone-size", str(ZS), IMG])
    nseq = rng.randint(1, 4)
    zones = rng.sample(range(NSEQ), nseq)
    fault = None
    if mode in ("cut", "drop"):
        dead_after = rng.randint(1, 160)
        fault = "dead_after=%d,vlog=%s" % (dead_after, VLOG)
        if mode == "drop":
            fault += ",dead_mode=drop"  # the device dies silently: writes still acknowledged
    opts = rng.choice([None, "cache_size=16M,max_folio=256K", "max_folio=64K,cache_size=8M",
                       "explicit-open,cache_size=16M"])
    p = mount(fault, opts)
    try:
        run_workload(rng, mode, p, zones, seed, stats, fault)
    except BaseException:
        kill9(p)
        raise


def run_workload(rng, mode, p, zones, seed, stats, fault):
    stop = threading.Event()
    seqm = {z: SeqModel(z) for z in zones}
    cnvm = CnvModel(64) if rng.random() < 0.7 else None
    ws = [SeqWriter(rng, os.path.join(MNT, "seq", str(z)), seqm[z], rng.randint(5, 40), stop)
          for z in zones]
    if cnvm:
        ws.append(CnvWriter(rng, os.path.join(MNT, "cnv", "0"), cnvm, rng.randint(5, 40), stop))
    kill_at = rng.uniform(0.0, 0.6) if mode == "kill" else None
    t0 = time.monotonic()
    for w in ws:
        w.start()
    while any(w.is_alive() for w in ws):
        if kill_at is not None and time.monotonic() - t0 >= kill_at:
            break
        if mode == "cut" and any(w.err for w in ws):
            break  # the device died: stop, as the power cut stops everything
        if time.monotonic() - t0 > HANG_S:
            hang_report(p)
            raise Fail("workload hung for %d s: %s" % (HANG_S, tail_log()))
        time.sleep(0.002)
    stop.set()
    if mode == "cut":
        for w in ws:
            w.join(5)
    kill9(p)
    for w in ws:
        w.join(10)
        if w.is_alive():
            raise Fail("a writer is stuck after kill -9")
        if w.err and not isinstance(w.err, OSError):
            raise Fail("driver error: %r" % w.err)
    stats["acked"] += sum(w.acked for w in ws)
    cutinfo = None
    if mode in ("cut", "drop") and os.path.exists(VLOG):
        shutil.copy(VLOG, VLOG + ".orig")
        cut = sh([CUT, IMG, VLOG, str(seed), str(rng.choice([0, 30, 50, 70, 100]))]).stdout.split()
        d = dict(zip(cut[0::2], map(int, cut[1::2])))
        cutinfo = d
        stats["dropped"] += d["dropped"]
        stats["logged"] += d["entries"]
    stats[mode] += 1
    # remount: must succeed; then read everything back
    p = mount()
    try:
        got = {}
        for z in zones:
            with open(os.path.join(MNT, "seq", str(z)), "rb") as f:
                got[z] = f.read()
        cnvdata = None
        if cnvm:
            with open(os.path.join(MNT, "cnv", "0"), "rb") as f:
                cnvdata = f.read(64 * BLK + 8 * BLK)
        sizes = {z: os.stat(os.path.join(MNT, "seq", str(z))).st_size for z in range(NSEQ)}
    finally:
        unmount(p)
    wps = zone_wps()
    errs = []
    for z in range(NSEQ):
        if z not in zones and sizes[z] != 0:
            errs.append("seq/%d never written but has size %d" % (z, sizes[z]))
    for z in zones:
        e = seqm[z].check(sizes[z], wps[NCNV + z], got[z], lenient=mode == "drop")
        if e:
            errs.append("seq/%d: %s" % (z, e))
    if cnvm:
        e = cnvm.check(cnvdata, lenient=mode == "drop")
        if e:
            errs.append(e)
    if errs:
        ev = os.path.join(WORK, "fail-%d" % seed)
        os.makedirs(ev, exist_ok=True)
        for f in (IMG, DLOG):
            if os.path.exists(f):
                shutil.copy(f, ev)
        if os.path.exists(VLOG + ".orig"):
            shutil.copy(VLOG + ".orig", ev)
        raise Fail("%s [mode %s, %s; cut %s; evidence in %s]" % ("; ".join(errs), mode, fault,
                                                              cutinfo, ev))


def main():
    for exe in (MKFS, DAEMON, DEVTOOL, CUT):
        if not os.access(exe, os.X_OK):
            print("crash: %s not built" % exe)
            return 1
    os.makedirs(MNT, exist_ok=True)
    only = os.environ.get("FOLIOFS_CRASH_ONLY")
    if only:
        seeds = [int(only)]
    else:
        first = int(os.environ.get("FOLIOFS_CRASH_SEED", str(int(time.time()) % 1000000 * 1000)))
        n = int(os.environ.get("FOLIOFS_CRASH_ITERS", "200"))
        seeds = range(first, first + n)
        print("crash: %d iterations, seeds %d..%d" % (n, first, first + n - 1), flush=True)
    stats = dict(cut=0, kill=0, drop=0, acked=0, dropped=0, logged=0)
    fails = []
    t0 = time.monotonic()
    try:
        for i, s in enumerate(seeds):
            try:
                one_iteration(s, stats)
            except Fail as e:
                fails.append(s)
                print("FAIL seed=%d: %s" % (s, e), flush=True)
                print("  replay: FOLIOFS_CRASH_ONLY=%d %s" % (s, sys.argv[0]), flush=True)
                print("  daemon log: %s" % tail_log(12), flush=True)
                if os.environ.get("FOLIOFS_CRASH_KEEP"):
                    return 1
            if (i + 1) % 25 == 0:
                print("crash: %d done, %d failed, %.0f s" % (i + 1, len(fails),
                      time.monotonic() - t0), flush=True)
    finally:
        force_unmount()
    print("crash: %d crash points (%d power cuts on the fault device, %d silent device deaths, "
          "%d kill -9), %d ops acknowledged, %d device writes logged, %d volatile writes dropped; "
          "%d failed%s; %.0f s" % (stats["cut"] + stats["kill"] + stats["drop"], stats["cut"],
                                   stats["drop"], stats["kill"],
                                   stats["acked"], stats["logged"], stats["dropped"],
                                   len(fails), (" (seeds %s)" % fails) if fails else "",
                                   time.monotonic() - t0))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
