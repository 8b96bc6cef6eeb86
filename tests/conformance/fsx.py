#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""An fsx-style random-operation checker, extended to the namespace.

Random calls (create, unlink, rename, link, truncate, write, read, fsync,
mkdir, rmdir, and writes and reads through descriptors held open across
unlinks and renames) on a small tree, each checked against a model of what
a POSIX filesystem must answer: the errno, then the size, type and link
count of what it touched; reads compare every byte. Every few hundred calls
the whole tree is walked and compared with the model, and on foliofs the
filesystem is unmounted and mounted again (closing what was open first) and
compared once more.

Seeded and replayable: a failure prints the seed, the call's number and the
calls before it; `fsx.py --fs KIND --seed S --ops N` runs the same calls.
  fsx.py [--fs foliofs|ext4|xfs] [--seed S] [--ops N | --seconds T] [--remount-every N]
Exit: 0 passed, 1 a call answered otherwise than the model, 77 the posix
format is not built yet (then it runs on ext4 instead, checking the model).
"""
import argparse
import errno
import os
import random
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib  # noqa: E402
from fslib import ename  # noqa: E402

DIRS = ["A", "B", "A/C", "B/D"]
FILES = ["f0", "f1", "f2", "f3"]
MAX_SIZE = 256 << 10
MAX_FDS = 3


class Mismatch(Exception):
    pass


class Inode:
    n = 0

    def __init__(self, kind):
        Inode.n += 1
        self.id, self.kind, self.data = Inode.n, kind, bytearray()
        self.nlink = 2 if kind == "d" else 1
        self.target = None  # a symlink's (never resolving: the tree has no /nonexistent)
        self.xattrs = {}


class Model:
    """The tree: path -> Inode; the root is ''."""

    def __init__(self):
        self.names = {"": Inode("d")}

    def parent(self, path):
        return path.rsplit("/", 1)[0] if "/" in path else ""

    def get(self, path):
        return self.names.get(path)

    def children(self, path):
        pre = path + "/" if path else ""
        return [n for n in self.names if n != path and n.startswith(pre) and "/" not in n[len(pre):]]

    def lookup_err(self, path):
        """The errno of resolving path's parent, or 0."""
        parts = path.split("/")[:-1]
        for k in range(1, len(parts) + 1):  # resolved from the root down, as namei does
            i = self.names.get("/".join(parts[:k]))
            if i is None or i.kind == "l":  # a symlink's target never exists
                return errno.ENOENT
            if i.kind != "d":
                return errno.ENOTDIR
        return 0


def rand_path(rng, m, kind=None):
    dirs = [""] + DIRS
    if kind == "d":
        return rng.choice(DIRS)
    if kind == "f" or rng.random() < 0.8:
        d = rng.choice(dirs)
        return (d + "/" if d else "") + rng.choice(FILES)
    return rng.choice(DIRS)


class Fsx:
    def __init__(self, root, seed, mount=None):
        self.root, self.rng, self.m, self.mount = root, random.Random(seed), Model(), mount
        self.fds = []  # (fd, Inode, path at open)
        self.log = []
        self.count = 0
        self.seed = seed

    def p(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def call(self, desc, fn, want):
        """Run fn; want is 0 (success) or an errno. Returns fn's value."""
        self.log.append(desc)
        try:
            r = fn()
            got = 0
        except OSError as e:
            r, got = None, e.errno
        if got != want:
            raise Mismatch(f"{desc}: got {ename(got) if got else 'success'}, "
                           f"model says {ename(want) if want else 'success'}")
        return r

    def check_stat(self, path):
        i = self.m.get(path)
        try:
            s = os.lstat(self.p(path))
        except OSError as e:
            if i is None and e.errno in (errno.ENOENT, errno.ENOTDIR):
                return
            raise Mismatch(f"lstat {path}: {ename(e.errno)}, model has {i and i.kind}")
        if i is None:
            raise Mismatch(f"lstat {path}: exists, the model has no such name")
        kind = "d" if stat.S_ISDIR(s.st_mode) else "l" if stat.S_ISLNK(s.st_mode) else "f"
        if kind != i.kind:
            raise Mismatch(f"lstat {path}: a {kind}, the model has a {i.kind}")
        if kind == "f" and s.st_size != len(i.data):
            raise Mismatch(f"lstat {path}: size {s.st_size}, model {len(i.data)}")
        if s.st_nlink != i.nlink:
            raise Mismatch(f"lstat {path}: nlink {s.st_nlink}, model {i.nlink}")

    def check_all(self):
        seen = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel
            for n in dirnames + filenames:
                seen[(rel + "/" if rel else "") + n] = True
        names = set(self.m.names) - {""}
        if set(seen) != names:
            raise Mismatch(f"tree: extra {sorted(set(seen) - names)}, "
                           f"missing {sorted(names - set(seen))}")
        for n, i in self.m.names.items():
            self.check_stat(n)
            if i.kind == "f":
                with open(self.p(n), "rb") as f:
                    d = f.read()
                if d != i.data:
                    raise Mismatch(f"content of {n}: {first_diff(d, i.data)}")
            if i.kind == "l" and os.readlink(self.p(n)) != i.target:
                raise Mismatch(f"readlink {n}: {os.readlink(self.p(n))!r}, model {i.target!r}")
            if i.kind != "l":
                got = {k: os.getxattr(self.p(n), k) for k in os.listxattr(self.p(n))
                       if k.startswith("user.")}
                if got != i.xattrs:
                    raise Mismatch(f"xattrs of {n}: {sorted(got)}, model {sorted(i.xattrs)}")

    # ---- the calls ----

    def op_create(self):
        path = rand_path(self.rng, self.m, "f")
        e = self.m.lookup_err(path) or (errno.EEXIST if self.m.get(path) else 0)
        self.call(f"create {path}", lambda: os.close(os.open(
            self.p(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)), e)
        if not e:
            self.m.names[path] = Inode("f")
        self.check_stat(path)

    def op_mkdir(self):
        path = rand_path(self.rng, self.m, "d")
        e = self.m.lookup_err(path) or (errno.EEXIST if self.m.get(path) else 0)
        self.call(f"mkdir {path}", lambda: os.mkdir(self.p(path)), e)
        if not e:
            self.m.names[path] = Inode("d")
            self.m.names[self.m.parent(path)].nlink += 1
        self.check_stat(path)
        self.check_stat(self.m.parent(path))

    def op_rmdir(self):
        path = rand_path(self.rng, self.m)
        i = self.m.get(path)
        e = (self.m.lookup_err(path) or (errno.ENOENT if i is None else 0) or
             (errno.ENOTDIR if i.kind != "d" else 0) or
             (errno.ENOTEMPTY if self.m.children(path) else 0))
        self.call(f"rmdir {path}", lambda: os.rmdir(self.p(path)), e)
        if not e:
            del self.m.names[path]
            self.m.names[self.m.parent(path)].nlink -= 1
        self.check_stat(path)

    def op_unlink(self):
        path = rand_path(self.rng, self.m)
        i = self.m.get(path)
        e = (self.m.lookup_err(path) or (errno.ENOENT if i is None else 0) or
             (errno.EISDIR if i.kind == "d" else 0))
        self.call(f"unlink {path}", lambda: os.unlink(self.p(path)), e)
        if not e:
            del self.m.names[path]
            i.nlink -= 1
        self.check_stat(path)

    def op_link(self):
        src, dst = rand_path(self.rng, self.m, "f"), rand_path(self.rng, self.m, "f")
        i = self.m.get(src)
        e = (self.m.lookup_err(src) or (errno.ENOENT if i is None else 0) or
             self.m.lookup_err(dst) or (errno.EEXIST if self.m.get(dst) else 0) or
             (errno.EPERM if i.kind == "d" else 0))
        self.call(f"link {src} {dst}", lambda: os.link(self.p(src), self.p(dst)), e)
        if not e:
            self.m.names[dst] = i
            i.nlink += 1
        self.check_stat(src)
        self.check_stat(dst)

    def rename_err(self, src, dst, flags=0):
        """do_renameat2's order of checks, then vfs_rename's."""
        m = self.m
        si, di = m.get(src), m.get(dst)
        # both parents are resolved before the source's own name is looked up
        e = m.lookup_err(src) or m.lookup_err(dst) or (errno.ENOENT if si is None else 0)
        if e:
            return e
        if (flags & fslib.RENAME_NOREPLACE) and di is not None:
            return errno.EEXIST
        if (flags & fslib.RENAME_EXCHANGE) and di is None:
            return errno.ENOENT
        if src == dst:
            return 0
        # the VFS's checks against its rename lock's trap come before the types'
        if (dst + "/").startswith(src + "/"):
            return errno.EINVAL
        if (src + "/").startswith(dst + "/"):
            return errno.EINVAL if flags & fslib.RENAME_EXCHANGE else errno.ENOTEMPTY
        if si is di or flags & fslib.RENAME_EXCHANGE:
            return 0
        if di is not None:
            if si.kind == "d" and di.kind != "d":
                return errno.ENOTDIR
            if si.kind != "d" and di.kind == "d":
                return errno.EISDIR
            if di.kind == "d" and m.children(dst):
                return errno.ENOTEMPTY
        return 0

    def op_rename(self):
        kind = "d" if self.rng.random() < 0.2 else None
        src, dst = rand_path(self.rng, self.m, kind), rand_path(self.rng, self.m, kind)
        e = self.rename_err(src, dst)
        self.call(f"rename {src} {dst}", lambda: os.rename(self.p(src), self.p(dst)), e)
        m = self.m
        if not e and m.get(src) is not m.get(dst):
            si, di = m.get(src), m.get(dst)
            if di is not None:
                di.nlink -= 2 if di.kind == "d" else 1
                if di.kind == "d":
                    m.names[m.parent(dst)].nlink -= 1
            moved = {n: i for n, i in m.names.items() if n == src or n.startswith(src + "/")}
            for n in moved:
                del m.names[n]
            for n, i in moved.items():
                m.names[dst + n[len(src):]] = i
            if si.kind == "d":
                m.names[m.parent(src)].nlink -= 1
                m.names[m.parent(dst)].nlink += 1
        for x in (src, dst, self.m.parent(src), self.m.parent(dst)):
            self.check_stat(x)

    def op_rename2(self):
        """renameat2 with RENAME_NOREPLACE or RENAME_EXCHANGE."""
        flags = self.rng.choice([fslib.RENAME_NOREPLACE, fslib.RENAME_EXCHANGE])
        kind = "d" if self.rng.random() < 0.2 else None
        src, dst = rand_path(self.rng, self.m, kind), rand_path(self.rng, self.m, None)
        e = self.rename_err(src, dst, flags)
        name = "NOREPLACE" if flags == fslib.RENAME_NOREPLACE else "EXCHANGE"
        self.call(f"renameat2 {src} {dst} {name}",
                  lambda: fslib.renameat2(self.p(src), self.p(dst), flags), e)
        m = self.m
        si, di = m.get(src), m.get(dst)
        if not e and si is not di and flags == fslib.RENAME_NOREPLACE:
            moved = {n: i for n, i in m.names.items() if n == src or n.startswith(src + "/")}
            for n in moved:
                del m.names[n]
            for n, i in moved.items():
                m.names[dst + n[len(src):]] = i
            if si.kind == "d":
                m.names[m.parent(src)].nlink -= 1
                m.names[m.parent(dst)].nlink += 1
        elif not e and si is not di:
            ms = {n: i for n, i in m.names.items() if n == src or n.startswith(src + "/")}
            md = {n: i for n, i in m.names.items() if n == dst or n.startswith(dst + "/")}
            for n in list(ms) + list(md):
                del m.names[n]
            for n, i in ms.items():
                m.names[dst + n[len(src):]] = i
            for n, i in md.items():
                m.names[src + n[len(dst):]] = i
            ps, pd = m.parent(src), m.parent(dst)
            if ps != pd and (si.kind == "d") != (di.kind == "d"):
                m.names[ps].nlink += -1 if si.kind == "d" else 1
                m.names[pd].nlink += 1 if si.kind == "d" else -1
        for x in (src, dst, self.m.parent(src), self.m.parent(dst)):
            self.check_stat(x)

    def file_err(self, path, write):
        """Opening path (following a symlink, whose target never exists)."""
        i = self.m.get(path)
        return (self.m.lookup_err(path) or (errno.ENOENT if i is None or i.kind == "l" else 0) or
                (errno.EISDIR if i.kind == "d" and write else 0))

    def op_symlink(self):
        path = rand_path(self.rng, self.m, "f")
        target = f"/nonexistent/{self.rng.randrange(1 << 20)}" + "t" * self.rng.choice([0, 200])
        e = self.m.lookup_err(path) or (errno.EEXIST if self.m.get(path) else 0)
        self.call(f"symlink {path}", lambda: os.symlink(target, self.p(path)), e)
        if not e:
            i = self.m.names[path] = Inode("l")
            i.target = target
        self.check_stat(path)

    def op_readlink(self):
        path = rand_path(self.rng, self.m, "f")
        i = self.m.get(path)
        e = (self.m.lookup_err(path) or (errno.ENOENT if i is None else 0) or
             (errno.EINVAL if i.kind != "l" else 0))
        t = self.call(f"readlink {path}", lambda: os.readlink(self.p(path)), e)
        if not e and t != i.target:
            raise Mismatch(f"readlink {path}: {t!r}, model {i.target!r}")

    def op_xattr(self):
        path = rand_path(self.rng, self.m)
        name = f"user.k{self.rng.randrange(3)}"
        e = self.file_err(path, False)
        i = self.m.get(path)
        what = self.rng.choice(["set", "set", "get", "remove"])
        if what == "set":
            v = self.rng.randbytes(self.rng.choice([0, 5, 300]))
            self.call(f"setxattr {path} {name} {len(v)}",
                      lambda: os.setxattr(self.p(path), name, v), e)
            if not e:
                i.xattrs[name] = v
        elif what == "get":
            e = e or (errno.ENODATA if name not in i.xattrs else 0)
            v = self.call(f"getxattr {path} {name}", lambda: os.getxattr(self.p(path), name), e)
            if not e and v != i.xattrs[name]:
                raise Mismatch(f"getxattr {path} {name}: {v!r}, model {i.xattrs[name]!r}")
        else:
            e = e or (errno.ENODATA if name not in i.xattrs else 0)
            self.call(f"removexattr {path} {name}", lambda: os.removexattr(self.p(path), name), e)
            if not e:
                del i.xattrs[name]

    def op_punch(self):
        """fallocate(PUNCH_HOLE|KEEP_SIZE) through an open descriptor."""
        if not self.fds:
            return self.op_open()
        fd, i, path = self.rng.choice(self.fds)
        off = self.rng.randrange(MAX_SIZE)
        n = self.rng.choice([1, 4096, self.rng.randrange(1, 70000)])
        self.call(f"punch fd of {path} {off}+{n}", lambda: fslib.fallocate(
            fd, fslib.FALLOC_FL_PUNCH_HOLE | fslib.FALLOC_FL_KEEP_SIZE, off, n), 0)
        end = min(off + n, len(i.data))
        if off < end:
            i.data[off:end] = bytes(end - off)

    def op_truncate(self):
        path = rand_path(self.rng, self.m, "f")
        size = self.rng.choice([0, self.rng.randrange(MAX_SIZE), self.rng.randrange(4096)])
        e = self.file_err(path, True)
        self.call(f"truncate {path} {size}", lambda: os.truncate(self.p(path), size), e)
        if not e:
            resize(self.m.get(path).data, size)
        self.check_stat(path)

    def op_write(self):
        path = rand_path(self.rng, self.m, "f")
        off, data, flags = self.rand_write()
        e = self.file_err(path, True)

        def w():
            fd = os.open(self.p(path), os.O_WRONLY | flags)
            try:
                if os.pwrite(fd, data, off) != len(data):
                    raise Mismatch(f"write {path}: short")
            finally:
                os.close(fd)

        self.call(f"write {path} {off}+{len(data)} flags={flags:#x}", w, e)
        if not e:
            apply_write(self.m.get(path).data, off, data)
        self.check_stat(path)

    def rand_write(self):
        r = self.rng
        off = r.choice([0, r.randrange(MAX_SIZE), r.randrange(8192), r.randrange(64) * 4096])
        n = r.choice([1, r.randrange(1, 9000), r.randrange(1, 65536), 4096])
        n = max(1, min(n, MAX_SIZE - off))
        flags = r.choice([0, 0, os.O_SYNC, os.O_DSYNC])
        return off, r.randbytes(n), flags

    def op_read(self):
        path = rand_path(self.rng, self.m, "f")
        e = self.file_err(path, False)
        i = self.m.get(path)
        if not e and i.kind == "d":
            e = errno.EISDIR

        def rd():
            with open(self.p(path), "rb") as f:
                return f.read()

        d = self.call(f"read {path}", rd, e)
        if not e and d != i.data:
            raise Mismatch(f"read {path}: {first_diff(d, i.data)}")

    def op_fsync(self):
        path = rand_path(self.rng, self.m)
        e = self.file_err(path, False)

        def fs():
            fd = os.open(self.p(path), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        self.call(f"fsync {path}", fs, e)

    def op_open(self):
        if len(self.fds) >= MAX_FDS:
            return self.op_close()
        path = rand_path(self.rng, self.m, "f")
        e = self.file_err(path, True)
        fd = self.call(f"open {path}", lambda: os.open(self.p(path), os.O_RDWR), e)
        if not e:
            self.fds.append((fd, self.m.get(path), path))

    def op_close(self):
        if not self.fds:
            return self.op_open()
        fd, _, path = self.fds.pop(self.rng.randrange(len(self.fds)))
        self.call(f"close fd of {path}", lambda: os.close(fd), 0)

    def op_fdwrite(self):
        if not self.fds:
            return self.op_open()
        fd, i, path = self.rng.choice(self.fds)
        off, data, _ = self.rand_write()
        n = self.call(f"pwrite fd of {path} {off}+{len(data)}", lambda: os.pwrite(fd, data, off), 0)
        if n != len(data):
            raise Mismatch(f"pwrite fd of {path}: {n} of {len(data)}")
        apply_write(i.data, off, data)
        if os.fstat(fd).st_size != len(i.data) or os.fstat(fd).st_nlink != i.nlink:
            raise Mismatch(f"fstat fd of {path}: size {os.fstat(fd).st_size} nlink "
                           f"{os.fstat(fd).st_nlink}, model {len(i.data)} {i.nlink}")

    def op_fdread(self):
        if not self.fds:
            return self.op_open()
        fd, i, path = self.rng.choice(self.fds)
        d = self.call(f"pread fd of {path}", lambda: os.pread(fd, MAX_SIZE + 1, 0), 0)
        if d != i.data:
            raise Mismatch(f"pread fd of {path}: {first_diff(d, i.data)}")

    def op_fdfsync(self):
        if not self.fds:
            return self.op_open()
        fd, i, path = self.rng.choice(self.fds)
        self.call(f"fdatasync fd of {path}", lambda: os.fdatasync(fd), 0)

    OPS = [("create", 8), ("mkdir", 3), ("rmdir", 3), ("unlink", 6), ("link", 4), ("rename", 8), ("rename2", 4),
           ("truncate", 6), ("write", 14), ("read", 8), ("fsync", 3), ("open", 4), ("close", 3),
           ("fdwrite", 6), ("fdread", 4), ("fdfsync", 2), ("symlink", 3), ("readlink", 2),
           ("xattr", 5), ("punch", 3)]

    def step(self):
        names, weights = zip(*self.OPS)
        op = self.rng.choices(names, weights)[0]
        self.count += 1
        getattr(self, "op_" + op)()

    def remount(self):
        for fd, _, _ in self.fds:
            os.close(fd)
        self.fds = []
        self.log.append("remount")
        rel = os.path.relpath(self.root, self.mount.path)
        self.mount.remount()
        self.root = os.path.join(self.mount.path, rel)


def resize(buf, size):
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(bytes(size - len(buf)))


def apply_write(buf, off, data):
    if off > len(buf):
        buf.extend(bytes(off - len(buf)))
    buf[off:off + len(data)] = data


def first_diff(got, want):
    n = min(len(got), len(want))
    for k in range(n):
        if got[k] != want[k]:
            return (f"first difference at byte {k}: got {got[k]:#x}, model {want[k]:#x} "
                    f"(got {len(got)} bytes, model {len(want)})")
    return f"got {len(got)} bytes, model {len(want)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fs", default="foliofs", choices=["foliofs", "memfs", "ext4", "xfs"])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=0, help="stop after N calls")
    ap.add_argument("--seconds", type=float, default=100, help="stop after T s (no --ops)")
    ap.add_argument("--check-every", type=int, default=200)
    ap.add_argument("--remount-every", type=int, default=1000, help="foliofs: 0 = never")
    a = ap.parse_args()
    fslib.need_root()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    work = fslib.scratch()
    kind = a.fs
    skip_why = ""
    if kind == "foliofs":
        ok, why = fslib.posix_format_available(work)
        if not ok:
            kind, skip_why = "ext4", why
            a.seconds = min(a.seconds, 20)
    if kind == "memfs" and not os.access(fslib.MEMFS, os.X_OK):
        print(f"SKIP: no {fslib.MEMFS}")
        return fslib.SKIP
    m = fslib.Mount(kind, work)
    rc = 0
    print(f"fsx: {kind}, seed {seed} (replay: fsx.py --fs {kind} --seed {seed} --ops N)")
    try:
        m.mkfs()
        m.mount()
        root = os.path.join(m.path, "fsx")
        os.mkdir(root)
        f = Fsx(root, seed, m)
        t_end = time.monotonic() + a.seconds
        remounts = 0
        while (f.count < a.ops) if a.ops else (time.monotonic() < t_end):
            f.step()
            if f.count % a.check_every == 0:
                f.check_all()
            if kind == "foliofs" and a.remount_every and f.count % a.remount_every == 0:
                f.remount()
                remounts += 1
                f.check_all()
        for fd, _, _ in f.fds:
            os.close(fd)
        f.fds = []
        f.check_all()
        if kind in ("foliofs", "memfs"):
            m.umount()  # its exit status counts (memfs: the lookup counts added up)
        print(f"fsx: {f.count} calls, {remounts} remounts, seed {seed}: the model held")
    except RuntimeError as e:
        print(f"FAIL fsx: {kind}, seed {seed}: {e}")
        rc = 1
    except Mismatch as e:
        print(f"FAIL fsx: {kind}, seed {seed}, call {f.count}: {e}")
        print("  the calls before it:\n    " + "\n    ".join(f.log[-25:]))
        print(f"  replay: fsx.py --fs {a.fs} --seed {seed} --ops {f.count}")
        rc = 1
    finally:
        m.close()
        fslib.cleanup_dir(work)
    if rc == 0 and skip_why:
        print(f"SKIP: foliofs's posix format is not built yet ({skip_why}); ran on ext4")
        return fslib.SKIP
    return rc


if __name__ == "__main__":
    sys.exit(main())
