# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared by the RocksDB, dbench and stress-ng client tests (tests/clients/3x-,
4x-, 5x-) and bench/clients/: a foliofs posix image mounted with the real
daemon (optionally under FOLIOFS_FAULT, and killed with kill -9), a power cut
applied with tests/crash's ff-cut, fsck.foliofs -n, and XFS/ext4 on a loop
device for the comparisons.

Each mount remembers what it started and stops only that: the daemon's own
pid, its own mountpoint, its own loop device. Paths of the build come from
tests/conformance/fslib.py (FOLIOFS_BUILD).
"""
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "conformance"))
import fslib  # noqa: E402  (BUILD, FOLIOFS, MKFS, SKIP)

BUILD = fslib.BUILD
FOLIOFS = fslib.FOLIOFS
MKFS = fslib.MKFS
FSCK = os.path.join(BUILD, "src/cli/fsck.foliofs")
CUT = os.path.join(BUILD, "tests/crash/ff-cut")
SKIP = fslib.SKIP
LONG = os.environ.get("FOLIOFS_CLIENTS_LONG", "") not in ("", "0")


class Fail(Exception):
    pass


def run(cmd, check=False, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace", **kw)
    if check and r.returncode:
        raise Fail("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()[-600:]))
    return r


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def need(*programs):
    """Skip (77) unless root, a built tree and every program are here; returns
    each program's path (the first of its alternative names found)."""
    if os.geteuid() != 0:
        skip("the client tests mount filesystems: run them as root")
    for b in (FOLIOFS, MKFS, FSCK):
        if not os.access(b, os.X_OK):
            skip("%s missing: build first (meson setup build && ninja -C build)" % b)
    found = []
    for p in programs:
        names = p if isinstance(p, (list, tuple)) else [p]
        path = next((shutil.which(n) for n in names if shutil.which(n)), None)
        if not path:
            skip("%s not installed (scripts/install-deps)" % " or ".join(names))
        found.append(path)
    return found


def workdir(name):
    """A fresh scratch directory /tmp/h-kv/NAME (FOLIOFS_CLIENTS_DIR overrides the root)."""
    d = os.path.join(os.environ.get("FOLIOFS_CLIENTS_DIR", "/tmp/h-kv"), name)
    if os.path.ismount(os.path.join(d, "mnt")):
        run(["umount", "-l", os.path.join(d, "mnt")])
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "mnt"))
    return d


class Foliofs:
    """foliofs's posix format on DEV (an image file or a loop device), mounted
    at MNT by a daemon this object started in the foreground."""

    kind = "foliofs"

    def __init__(self, dev, mnt, log, size=None, force=False):
        """size: make DEV a new image file of this size at mkfs; force: mkfs
        over another filesystem (the benchmarks' shared loop device)."""
        self.dev, self.mnt, self.log, self.size, self.force = dev, mnt, log, size, force
        self.proc = None

    def mkfs(self, extra=()):
        if self.size is not None:
            with open(self.dev, "wb") as f:
                f.truncate(self.size)
        force = ["--force"] if self.force else []
        run([MKFS, "--format", "posix", *force, *extra, self.dev], check=True)

    def mount(self, opts=None, fault=None):
        env = dict(os.environ)
        env.pop("FOLIOFS_FAULT", None)
        if fault:
            env["FOLIOFS_FAULT"] = fault
        args = [FOLIOFS, "-f"] + (["-o", opts] if opts else []) + [self.dev, self.mnt]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        for _ in range(1000):
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise Fail("foliofs did not mount %s: %s" % (self.dev, self.tail()))

    def tail(self, n=8):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def umount(self):
        """umount, then wait for the daemon to exit: its exit status is the
        unmount's verdict (the write-back at unmount may fail)."""
        for _ in range(100):
            r = run(["umount", self.mnt])
            if r.returncode == 0 or "busy" not in r.stdout:
                break
            time.sleep(0.1)
        if r.returncode:
            raise Fail("umount %s: %s" % (self.mnt, r.stdout.strip()))
        try:
            rc = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise Fail("foliofs did not exit within 120 s of umount")
        self.proc = None
        if rc:
            raise Fail("foliofs exited %d after umount: %s" % (rc, self.tail()))

    def kill9(self):
        """kill -9 the daemon, drop its dead mount, and wait until its image
        lock is gone (its io_uring is torn down after the exit, and a write
        in flight may land until then)."""
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        run(["umount", "-l", self.mnt])
        fd = os.open(self.dev, os.O_RDONLY)
        try:
            for _ in range(1000):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    return
                except BlockingIOError:
                    time.sleep(0.01)
            raise Fail("the killed daemon's lock on %s was not released in 10 s" % self.dev)
        finally:
            os.close(fd)

    def fsck(self):
        """fsck.foliofs -n: raises Fail unless it exits 0."""
        r = run([FSCK, "-n", self.dev])
        if r.returncode:
            raise Fail("fsck.foliofs -n %s exited %d: %s" % (
                self.dev, r.returncode, " | ".join(r.stdout.splitlines()[-8:])))
        return r.stdout.strip()

    def close(self):
        """Best effort, for a test that failed half-way."""
        if self.proc is not None:
            if os.path.ismount(self.mnt):
                run(["umount", self.mnt])
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if os.path.ismount(self.mnt):
            run(["umount", "-l", self.mnt])


def power_cut(img, vlog, seed, keep_pct):
    """Undo a random subset of the writes a FOLIOFS_FAULT=vlog= daemon (now
    dead) had not made durable; returns ff-cut's counters."""
    out = run([CUT, img, vlog, str(seed), str(keep_pct)], check=True).stdout.split()
    return dict(zip(out[0::2], map(int, out[1::2])))


class Kernel:
    """XFS or ext4 (mkfs defaults, with its journal) on a block device."""

    def __init__(self, kind, dev, mnt):
        self.kind, self.dev, self.mnt = kind, dev, mnt

    def mkfs(self):
        cmd = ["mkfs.xfs", "-q", "-f"] if self.kind == "xfs" else ["mkfs.ext4", "-q", "-F"]
        run(cmd + [self.dev], check=True)

    def mount(self):
        run(["mount", "-t", self.kind, self.dev, self.mnt], check=True)

    def umount(self):
        run(["umount", self.mnt], check=True)

    def close(self):
        if os.path.ismount(self.mnt):
            run(["umount", self.mnt])


def loop_attach(img, size):
    """A loop device (--direct-io=on, as bench/run's) over a new image of size bytes."""
    with open(img, "wb") as f:
        f.truncate(size)
    return run(["losetup", "--direct-io=on", "-f", "--show", img], check=True).stdout.strip()


def loop_detach(dev):
    run(["losetup", "-d", dev])


def machine_lines():
    """System lines for a markdown report: kernel, cpu, load, versions."""
    def first(cmd):
        r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        lines = r.stdout.strip().splitlines()
        return lines[0] if lines else "?"
    top = os.path.dirname(os.path.dirname(_HERE))
    return [
        ("kernel", first("uname -r")),
        ("cpu", first("lscpu | sed -n 's/^Model name: *//p'") + ", %d online" % os.cpu_count()),
        ("load average at start", "%.2f %.2f %.2f" % os.getloadavg()),
        ("distro", first(". /etc/os-release; echo $PRETTY_NAME")),
        ("foliofs", first("git -C %s describe --always --dirty" % top)),
    ]


def bench_systems(loop, mnt, log):
    """The systems a client benchmark compares, all on the one loop device
    (each formats it in turn): XFS and ext4 with mkfs defaults, and foliofs's
    posix format with mount defaults."""
    return [Kernel("xfs", loop, mnt), Kernel("ext4", loop, mnt),
            Foliofs(loop, mnt, log, force=True)]


def bench_setup(name, size):
    """A loop device over BENCH_IMGDIR/NAME.img (default /var/tmp/h-kv-bench) and
    a mountpoint under BENCH_MNTDIR (default /tmp/h-kv-bench); returns
    (loop, mnt, daemon log, image path)."""
    imgdir = os.environ.get("BENCH_IMGDIR", "/var/tmp/h-kv-bench")
    mnt = os.path.join(os.environ.get("BENCH_MNTDIR", "/tmp/h-kv-bench"), name)
    os.makedirs(imgdir, exist_ok=True)
    os.makedirs(mnt, exist_ok=True)
    if os.path.ismount(mnt):
        raise Fail("%s is mounted already (a previous run?): umount it first" % mnt)
    img = os.path.join(imgdir, name + ".img")
    return loop_attach(img, size), mnt, os.path.join(imgdir, name + "-daemon.log"), img


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"
