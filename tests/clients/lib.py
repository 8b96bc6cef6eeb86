# SPDX-License-Identifier: GPL-2.0-or-later
"""The one helper module of the real-client tests (tests/clients/NN-name.*)
and the client benchmarks (bench/clients/*).

Fs: foliofs's posix format (`mkfs.foliofs --format posix`) on an image file
or a block device, mounted by the real daemon (`-o
allow_other,default_permissions`, so that a client running as another user,
postgres for one, can use it); the two crashes of tests/crash (kill -9 of
the daemon; a power cut through the fault device: FOLIOFS_FAULT=vlog=...,
kill -9, then ff-cut undoes a random share of the writes the device had not
made durable); umount, whose verdict is the daemon's exit status; and
`fsck.foliofs -n`. Kernel: XFS or ext4 on a block device, for the
comparisons; loop_attach, bench_setup and bench_systems set up the one loop
device a benchmark formats with each system in turn.

The mount and kill -9 are tests/crash/crash.py's own helpers (they read
that module's IMG/MNT/DLOG globals, which Fs sets). A test's files live
under FOLIOFS_CLIENTS_DIR (default /tmp/foliofs-clients.PID/NAME), removed
when the test passes and kept, with the daemon's log, when it fails.

Conventions of a client test: read FOLIOFS_BUILD, exit 0 = pass, 77 = skip
(a needed program missing), anything else = fail, with the reason printed;
short by default, FOLIOFS_CLIENTS_LONG=1 for the long runs.
"""
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests/crash"))
import crash as C  # noqa: E402  (mount and kill -9 of the real daemon)

BUILD = C.BUILD
MKFS = C.MKFS
DAEMON = C.DAEMON
FOLIOFS = DAEMON
CUT = C.CUT
FSCK = os.path.join(BUILD, "src/cli/fsck.foliofs")
LONG = os.environ.get("FOLIOFS_CLIENTS_LONG", "") not in ("", "0")
SKIP = 77
Fail = C.Fail
sh = C.sh


def run(cmd, check=False, **kw):
    """cmd with stdout and stderr together (undecodable bytes replaced);
    check: raise Fail on a non-zero exit."""
    return sh(cmd, check=check, errors="replace", **kw)


def skip(why):
    print("SKIP: %s" % why, flush=True)
    sys.exit(SKIP)


def need(*progs):
    """Skip the test unless it runs as root, the tree is built and every
    program is there. A program is a path, a name on PATH, or a list of
    alternative names; returns each one's path (the first alternative found)."""
    if os.geteuid() != 0:
        skip("the client tests mount filesystems: run them as root")
    for exe in (MKFS, DAEMON, CUT, FSCK):
        if not os.access(exe, os.X_OK):
            skip("%s is not built (meson setup build && ninja -C build)" % exe)
    found = []
    for p in progs:
        names = p if isinstance(p, (list, tuple)) else [p]
        paths = [n if os.path.isabs(n) else shutil.which(n) for n in names]
        path = next((x for x in paths if x and os.access(x, os.X_OK)), None)
        if not path:
            skip("%s is not installed (scripts/install-deps)" % " or ".join(names))
        found.append(path)
    return found


def workdir(name):
    base = os.environ.get("FOLIOFS_CLIENTS_DIR") or "/tmp/foliofs-clients.%d" % os.getpid()
    d = os.path.join(base, name)
    if os.path.ismount(os.path.join(d, "mnt")):
        run(["umount", "-l", os.path.join(d, "mnt")])
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(base, 0o755)
    return d


def log(msg):
    print(msg, flush=True)


class Fs:
    """foliofs's posix format: a new image file WORK/img of size bytes, or
    the block device dev (size None); mounted at mnt (default WORK/mnt), the
    daemon's log in WORK/daemon.log."""

    kind = "foliofs"

    def __init__(self, work, size=None, mkfs_args=(), dev=None, mnt=None):
        self.work, self.size, self.mkfs_args = work, size, list(mkfs_args)
        self.img = dev or os.path.join(work, "img")
        self.mnt = mnt or os.path.join(work, "mnt")
        self.vlog = os.path.join(work, "vlog")
        self.dlog = os.path.join(work, "daemon.log")
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)
        # the mount point must be reachable for a client running as another user
        os.chmod(work, 0o755)
        os.chmod(self.mnt, 0o755)

    def _globals(self):
        C.WORK, C.IMG, C.MNT, C.VLOG, C.DLOG = self.work, self.img, self.mnt, self.vlog, self.dlog

    def mkfs(self, extra=()):
        """mkfs.foliofs --format posix -f (over whatever DEV held)."""
        if self.size is not None:
            with open(self.img, "wb") as f:
                f.truncate(self.size)
        return run([MKFS, "--format", "posix", "-f", *self.mkfs_args, *extra, self.img],
                   check=True)

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
        os.chmod(self.mnt, 0o755)
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
        """kill -9 of the daemon; the mount is gone, and the dead daemon's
        image lock released, when this returns."""
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
        out = run([CUT, self.img, self.vlog, str(seed), str(keep_pct)], check=True).stdout.split()
        return dict(zip(out[0::2], map(int, out[1::2])))

    def umount(self):
        """umount (retried while busy: a client's last close may still be on
        its way), then wait for the daemon: its exit status is the unmount's
        verdict (the write-back at unmount may fail)."""
        self._globals()
        if self.proc is None:
            return
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
            raise Fail("the daemon did not exit within 120 s of umount")
        self.proc = None
        if rc:
            raise Fail("the daemon exited %d after umount: %s" % (rc, self.tail()))

    def fsck(self):
        """fsck.foliofs -n: raises Fail unless it exits 0; returns its output."""
        r = run([FSCK, "-n", self.img])
        if r.returncode != 0:
            raise Fail("fsck.foliofs -n exited %d: %s" % (
                r.returncode, " | ".join(r.stdout.splitlines()[-8:])))
        return r.stdout.strip()

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


class Kernel:
    """XFS or ext4 (mkfs defaults, with its journal) on a block device."""

    def __init__(self, kind, dev, mnt):
        self.kind, self.dev, self.mnt = kind, dev, mnt

    def mkfs(self):
        """mkfs; retried for up to 10 s while the device is held exclusively
        (mkfs.ext4: "apparently in use by the system"), which a just
        unmounted device may still be for a moment."""
        cmd = ["mkfs.xfs", "-q", "-f"] if self.kind == "xfs" else ["mkfs.ext4", "-q", "-F"]
        for _ in range(100):
            r = run(cmd + [self.dev])
            if r.returncode == 0 or "in use" not in r.stdout:
                break
            time.sleep(0.1)
        if r.returncode:
            raise Fail("%s exited %d: %s" % (" ".join(cmd + [self.dev]), r.returncode,
                                             r.stdout.strip()[-600:]))

    def mount(self, opts=None):
        run(["mount", "-t", self.kind] + (["-o", opts] if opts else []) + [self.dev, self.mnt],
            check=True)
        os.chmod(self.mnt, 0o755)

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
    return [
        ("kernel", first("uname -r")),
        ("cpu", first("lscpu | sed -n 's/^Model name: *//p'") + ", %d online" % os.cpu_count()),
        ("load average at start", "%.2f %.2f %.2f" % os.getloadavg()),
        ("distro", first(". /etc/os-release; echo $PRETTY_NAME")),
        ("foliofs", first("git -C %s describe --always --dirty" % ROOT)),
    ]


def bench_setup(name, size):
    """A loop device over BENCH_IMGDIR/NAME.img (default /var/tmp/foliofs-bench)
    and a mount point BENCH_MNTDIR/NAME (default /tmp/foliofs-bench); returns
    (loop, mnt, work, image path), work being where the daemon's log goes."""
    imgdir = os.environ.get("BENCH_IMGDIR", "/var/tmp/foliofs-bench")
    mnt = os.path.join(os.environ.get("BENCH_MNTDIR", "/tmp/foliofs-bench"), name)
    work = os.path.join(imgdir, name)
    os.makedirs(work, exist_ok=True)
    os.makedirs(mnt, exist_ok=True)
    os.chmod(os.path.dirname(mnt), 0o755)
    if os.path.ismount(mnt):
        raise Fail("%s is mounted already (a previous run?): umount it first" % mnt)
    img = os.path.join(imgdir, name + ".img")
    return loop_attach(img, size), mnt, work, img


def bench_systems(loop, mnt, work):
    """The systems a client benchmark compares, all on the one loop device
    (each formats it in turn): XFS and ext4 with mkfs defaults, and foliofs's
    posix format with mount defaults (plus allow_other,default_permissions)."""
    return [Kernel("xfs", loop, mnt), Kernel("ext4", loop, mnt), Fs(work, dev=loop, mnt=mnt)]


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"


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


def mount_opts():
    """The -o options in FOLIOFS_MOUNT_OPTS (as the conformance tests read
    it, e.g. "-o cache_size=8M"), joined by commas; None if there are none."""
    opts, words = [], os.environ.get("FOLIOFS_MOUNT_OPTS", "").split()
    while words:
        w = words.pop(0)
        if w == "-o" and words:
            opts.append(words.pop(0))
        elif w.startswith("-o") and len(w) > 2:
            opts.append(w[2:])
        else:
            raise Fail("FOLIOFS_MOUNT_OPTS: %r is not a -o option" % w)
    return ",".join(opts) or None


def mounted(name, size, cmd):
    """A client test in another language: a posix-format image of size bytes
    (more mkfs options in FOLIOFS_CLIENTS_MKFS_ARGS, e.g. "--emulate-zoned
    --conv-zones 1"), mounted with FOLIOFS_MOUNT_OPTS; cmd runs with WORK and
    MNT in its environment, and fails the test by a non-zero exit (its
    reason printed); then umount (the daemon must exit 0) and fsck.foliofs -n
    clean. Exits as main() does."""
    def fn(work):
        fs = Fs(work, size, shlex.split(os.environ.get("FOLIOFS_CLIENTS_MKFS_ARGS", "")))
        try:
            fs.mkfs()
            fs.mount(opts=mount_opts())
            env = dict(os.environ, WORK=work, MNT=fs.mnt)
            rc = subprocess.run(cmd, env=env).returncode
            if rc:
                raise Fail("%s exited %d" % (" ".join(cmd), rc))
            fs.umount()
            fs.fsck()
        finally:
            fs.close()
    need()
    main(name, fn)


if __name__ == "__main__":
    # lib.py mounted NAME SIZE CMD...: mounted() for the shell tests
    if len(sys.argv) < 5 or sys.argv[1] != "mounted":
        sys.exit("usage: lib.py mounted NAME SIZE CMD...")
    mounted(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
