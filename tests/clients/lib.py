# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared by the real-client tests (tests/clients/NN-name.*): a posix-format
image made with `mkfs.foliofs --format posix`, mounted by the real daemon
(`-o allow_other,default_permissions`, so that a client running as another
user, postgres for one, can use it), the two crashes of tests/crash (kill -9
of the daemon; a power cut through the fault device: FOLIOFS_FAULT=vlog=...,
kill -9, then ff-cut undoes a random share of the writes the device had not
made durable), umount and `fsck.foliofs -n`.

The mount, kill -9 and unmount are tests/crash/crash.py's own helpers (they
read that module's IMG/MNT/DLOG globals, which Fs sets). Everything lives
under FOLIOFS_CLIENTS_DIR (default /tmp/foliofs-clients.PID/NAME), removed
when the test passes and kept, with the daemon's log, when it fails.

Conventions of a client test: read FOLIOFS_BUILD, exit 0 = pass, 77 = skip
(a needed program missing), anything else = fail, with the reason printed;
short by default, FOLIOFS_CLIENTS_LONG=1 for the long runs.
"""
import os
import shutil
import subprocess
import sys
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests/crash"))
import crash as C  # noqa: E402  (mount, kill -9, unmount of the real daemon)

BUILD = C.BUILD
MKFS = C.MKFS
DAEMON = C.DAEMON
CUT = C.CUT
FSCK = os.path.join(BUILD, "src/cli/fsck.foliofs")
LONG = os.environ.get("FOLIOFS_CLIENTS_LONG", "") not in ("", "0")
SKIP = 77
Fail = C.Fail
sh = C.sh


def skip(why):
    print("SKIP: %s" % why, flush=True)
    sys.exit(SKIP)


def need(*progs):
    """Skip the test unless it runs as root and every program is there."""
    if os.geteuid() != 0:
        skip("the client tests mount filesystems: run them as root")
    for exe in (MKFS, DAEMON, CUT, FSCK):
        if not os.access(exe, os.X_OK):
            skip("%s is not built (meson setup build && ninja -C build)" % exe)
    for p in progs:
        if not (os.access(p, os.X_OK) if os.path.isabs(p) else shutil.which(p)):
            skip("%s is not installed (scripts/install-deps)" % p)


def workdir(name):
    base = os.environ.get("FOLIOFS_CLIENTS_DIR") or "/tmp/foliofs-clients.%d" % os.getpid()
    d = os.path.join(base, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(base, 0o755)
    return d


def log(msg):
    print(msg, flush=True)


class Fs:
    """One posix-format image and its mount point, under work."""

    def __init__(self, work, size, mkfs_args=()):
        self.work, self.size, self.mkfs_args = work, size, list(mkfs_args)
        self.img = os.path.join(work, "img")
        self.mnt = os.path.join(work, "mnt")
        self.vlog = os.path.join(work, "vlog")
        self.dlog = os.path.join(work, "daemon.log")
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)
        # the mount point must be reachable for a client running as another user
        os.chmod(work, 0o755)

    def _globals(self):
        C.WORK, C.IMG, C.MNT, C.VLOG, C.DLOG = self.work, self.img, self.mnt, self.vlog, self.dlog

    def mkfs(self):
        with open(self.img, "wb") as f:
            f.truncate(self.size)
        sh([MKFS, "--format", "posix", "-f", *self.mkfs_args, self.img])

    def mount(self, fault=None, opts=None):
        """Mount. fault: None, or the device runs with the volatile-cache
        model plus these FOLIOFS_FAULT settings ("" for none, or
        "dead_after=N": the device dies after its Nth raw write)."""
        self._globals()
        if os.path.exists(self.vlog):
            os.unlink(self.vlog)
        o = "allow_other,default_permissions" + ("," + opts if opts else "")
        env = None
        if fault is not None:
            env = ",".join(x for x in (fault, "vlog=%s" % self.vlog) if x)
        self.log_off = os.path.getsize(self.dlog) if os.path.exists(self.dlog) else 0
        self.proc = C.mount(env, o)
        # the FUSE connection's number, to abort it if the daemon cannot die
        self.conn = os.minor(os.stat(self.mnt).st_dev)

    def abort(self):
        """Abort this mount's FUSE connection (fusectl): a daemon thread stuck
        in the kernel keeps a kill -9 from ending the daemon, and the
        clients waiting on the mount, until then."""
        d = "/sys/fs/fuse/connections"
        if not os.path.exists(os.path.join(d, str(self.conn))):
            subprocess.run(["mount", "-t", "fusectl", "none", d], stderr=subprocess.DEVNULL)
        try:
            with open(os.path.join(d, str(self.conn), "abort"), "w") as f:
                f.write("1")
        except OSError:
            pass  # the connection is gone already

    def device_died(self):
        """Whether the fault device's dead_after was reached in this mount
        (the daemon's log since the mount says so)."""
        with open(self.dlog, "rb") as f:
            f.seek(self.log_off)
            return b"fault: device dead" in f.read()

    def kill9(self):
        """kill -9 of the daemon; the mount is gone when this returns."""
        self._globals()
        if self.proc is not None:
            died = self.proc.poll()
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.abort()
                raise Fail("the daemon did not die in 10 s after kill -9 (a thread stuck in "
                           "the kernel; its FUSE connection aborted): %s" % self.tail())
            C.kill9(self.proc)
            self.proc = None
            if died is not None and died < 0:
                raise Fail("the daemon died by itself (signal %d): %s" % (-died, self.tail()))

    def cut(self, seed, keep_pct):
        """After kill9() of a fault mount: the power cut. Returns ff-cut's figures."""
        out = sh([CUT, self.img, self.vlog, str(seed), str(keep_pct)]).stdout.split()
        return dict(zip(out[0::2], map(int, out[1::2])))

    def umount(self):
        self._globals()
        if self.proc is not None:
            C.unmount(self.proc)
            self.proc = None

    def fsck(self):
        r = sh([FSCK, "-n", self.img], check=False)
        if r.returncode != 0:
            raise Fail("fsck.foliofs -n exited %d: %s" % (
                r.returncode, " | ".join(r.stdout.splitlines()[-8:])))

    def tail(self, n=8):
        self._globals()
        return C.tail_log(n)

    def close(self):
        """Best effort, for a test that failed half-way."""
        self._globals()
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.abort()
            try:
                C.kill9(self.proc)
            except Fail:
                pass
            self.proc = None
        C.force_unmount()


def main(name, fn):
    """Run fn(work) and exit as a client test does: 0, 77 or 1 with the reason."""
    work = workdir(name)
    try:
        fn(work)
    except Fail as e:
        log("FAIL %s: %s (evidence in %s)" % (name, e, work))
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        log("FAIL %s: unexpected error (evidence in %s)" % (name, work))
        sys.exit(1)
    log("PASS %s" % name)
    shutil.rmtree(work, ignore_errors=True)
    base = os.path.dirname(work)
    if not os.environ.get("FOLIOFS_CLIENTS_DIR"):
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(0)
