# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared by the conformance tests: mounting the filesystems they compare
(ext4 and XFS on a loop device, foliofs's posix format on an image file),
running a piece of a test as another uid, and the syscalls Python lacks
(renameat2, fallocate, utimensat with UTIME_OMIT, lseek's SEEK_DATA/HOLE).

Everything lives under a scratch directory (FOLIOFS_CONF_DIR, default
/tmp/foliofs-conf.PID). Each mount remembers what it started, and umount()
stops only that: the daemon's own pid, the loop mount's own mountpoint.
"""
import ctypes
import ctypes.util
import errno
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FOLIOFS_BUILD", os.path.join(ROOT, "build"))
FOLIOFS = os.path.join(BUILD, "src/fuse/foliofs")
MKFS = os.path.join(BUILD, "src/cli/mkfs.foliofs")
# the FUSE layer over an in-memory filesystem (tests/conformance/memfs.c)
MEMFS = os.path.join(BUILD, "tests/conformance/foliofs-memfs")
# how mkfs.foliofs is asked for the posix format
POSIX_MKFS_ARGS = os.environ.get("FOLIOFS_POSIX_MKFS_ARGS", "--format posix").split()
SKIP = 77

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.lseek.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int]
_libc.lseek.restype = ctypes.c_int64
_libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.getxattr.restype = ctypes.c_ssize_t


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec),
                            ctypes.c_int]

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10
SEEK_DATA = 3
SEEK_HOLE = 4
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100


def _check(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def renameat2(old, new, flags):
    return _check(_libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags))


def fallocate(fd, mode, off, length):
    return _check(_libc.fallocate(fd, mode, off, length))


def lseek(fd, off, whence):
    return _check(_libc.lseek(fd, off, whence))


def utimensat(path, atime, mtime):
    """atime/mtime: (sec, nsec), UTIME_NOW or UTIME_OMIT as the nsec."""
    ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    return _check(_libc.utimensat(AT_FDCWD, path.encode(), ts, 0))


def getxattr_size(path, name, size):
    """getxattr(2) with a buffer of size bytes: the value's length (ERANGE if too small)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    return _check(_libc.getxattr(path.encode(), name.encode(), buf if size else None, size))


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


class Mount:
    """One filesystem mounted for a test: .path is its root."""

    def __init__(self, kind, work, size=512 << 20):
        self.kind, self.work, self.size = kind, work, size
        self.img = os.path.join(work, f"{kind}.img")
        self.path = os.path.join(work, f"{kind}.mnt")
        self.proc = None
        os.makedirs(self.path, exist_ok=True)

    def mkfs(self):
        with open(self.img, "wb") as f:
            f.truncate(self.size)
        if self.kind == "memfs":
            return
        if self.kind == "ext4":
            r = run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", self.img])
        elif self.kind == "xfs":
            r = run(["mkfs.xfs", "-q", "-f", self.img])
        else:
            r = run([MKFS, *POSIX_MKFS_ARGS, self.img])
        if r.returncode:
            raise RuntimeError(f"mkfs {self.kind}: {r.stdout.strip()}")

    def mount(self):
        if self.kind in ("ext4", "xfs"):
            r = run(["mount", "-o", "loop", self.img, self.path])
            if r.returncode:
                raise RuntimeError(f"mount {self.kind}: {r.stdout.strip()}")
            return
        log = open(os.path.join(self.work, "foliofs.log"), "a")
        exe = MEMFS if self.kind == "memfs" else FOLIOFS
        # e.g. "-o cache_size=8M,max_folio=2M" to put the cache under pressure
        opts = os.environ.get("FOLIOFS_MOUNT_OPTS", "").split()
        self.proc = subprocess.Popen([exe, "-f", *opts, self.img, self.path], stdout=log,
                                     stderr=log)
        for _ in range(200):
            if os.path.ismount(self.path):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"foliofs did not mount {self.img} (see {log.name})")

    def umount(self):
        if self.kind in ("ext4", "xfs"):
            r = run(["umount", self.path])
            if r.returncode:
                raise RuntimeError(f"umount {self.path}: {r.stdout.strip()}")
            return
        for _ in range(50):
            r = run(["fusermount3", "-u", self.path])
            if r.returncode == 0 or "busy" not in r.stdout:
                break
            time.sleep(0.1)
        if r.returncode:
            raise RuntimeError(f"fusermount3 -u {self.path}: {r.stdout.strip()}")
        if self.proc.wait(timeout=120):
            raise RuntimeError(f"foliofs exited {self.proc.returncode} at unmount")
        self.proc = None

    def remount(self):
        self.umount()
        self.mount()

    def close(self):
        """Best effort, for a test that failed half-way."""
        if os.path.ismount(self.path):
            if self.kind in ("ext4", "xfs"):
                run(["umount", "-l", self.path])
            else:
                run(["fusermount3", "-u", self.path])
        if self.proc:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def posix_format_available(work):
    """Whether this build's mkfs.foliofs makes the posix format (and why not)."""
    if not (os.access(FOLIOFS, os.X_OK) and os.access(MKFS, os.X_OK)):
        return False, f"build {BUILD} first"
    img = os.path.join(work, "probe.img")
    with open(img, "wb") as f:
        f.truncate(512 << 20)  # as large as the test images (sparse)
    r = run([MKFS, *POSIX_MKFS_ARGS, img])
    os.unlink(img)
    if r.returncode:
        return False, ("mkfs.foliofs " + " ".join(POSIX_MKFS_ARGS) +
                       f" fails: {r.stdout.strip()[:200]}")
    return True, ""


def scratch():
    d = os.environ.get("FOLIOFS_CONF_DIR") or f"/tmp/foliofs-conf.{os.getpid()}"
    os.makedirs(d, exist_ok=True)
    return d


def as_user(uid, gid, groups, fn, *args):
    """Run fn(*args) in a child with these ids; returns what fn returns (a list of str)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            out = fn(*args)
            os.write(wfd, "\n".join(out).encode())
        except BaseException as e:  # the parent reports it
            os.write(wfd, f"CHILD EXCEPTION {type(e).__name__}: {e}".encode())
            code = 1
        finally:
            os.close(wfd)
            os._exit(code)
    os.close(wfd)
    data = b""
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        data += b
    os.close(rfd)
    os.waitpid(pid, 0)
    return data.decode().split("\n") if data else []


def ename(e):
    return errno.errorcode.get(e, str(e))


def need_root():
    if os.geteuid() != 0:
        print("SKIP: the conformance tests mount filesystems: run them as root")
        sys.exit(SKIP)


def cleanup_dir(d):
    if not os.environ.get("FOLIOFS_CONF_DIR"):
        shutil.rmtree(d, ignore_errors=True)
