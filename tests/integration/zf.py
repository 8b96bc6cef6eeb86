#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Exact-errno system calls for the integration tests.

One call per run: `zf.py OP ARGS...` prints OK (or a value) on success and the
errno name (EINVAL, EFBIG...) on failure, so the shell tests can compare what
foliofs returns with what kernel zonefs returns. Data written by `fill` is a
deterministic pattern of (seed, file offset) that `check` verifies.
"""
import errno
import hashlib
import mmap
import os
import struct
import sys

PAT = None


FILLER = {}


def pattern(seed, off, n):
    """Bytes of the pattern at file offset off: each 4 KiB block of the file
    starts with (seed, block offset) and goes on with filler made from the
    seed, so a misplaced or stale block is caught, not just a wrong byte."""
    if seed not in FILLER:
        import random
        FILLER[seed] = random.Random(seed).randbytes(4096)
    fill = FILLER[seed]
    start = off - off % 4096
    blocks = [struct.pack('<QQ', seed, o) + fill[16:]
              for o in range(start, off + n, 4096)]
    b = b''.join(blocks)
    return b[off - start:off - start + n]


def num(s):
    """An integer with an optional K/M/G suffix (powers of 1024)."""
    mul = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}.get(s[-1:].upper(), 1)
    return int(s[:-1] if mul > 1 else s, 0) * mul


FLAGS = {
    'sync': os.O_SYNC, 'dsync': os.O_DSYNC, 'direct': os.O_DIRECT,
    'buffered': 0, 'append': os.O_APPEND,
}


def oflags(spec):
    f = 0
    for s in spec.split(','):
        if s and s not in ('rwf_dsync', 'unaligned'):
            f |= FLAGS[s]
    return f


def aligned(data, unaligned=False):
    """A page-aligned copy of data (or one starting 512 bytes into a page):
    FUSE splits a direct write at page boundaries of the user's buffer, so
    an unaligned 1 MiB buffer arrives as two WRITE requests."""
    shift = 512 if unaligned else 0
    m = mmap.mmap(-1, len(data) + shift + 4096)
    m[shift:shift + len(data)] = data
    return memoryview(m)[shift:shift + len(data)]


def do_write(path, off, n, seed, spec, bs):
    fd = os.open(path, os.O_WRONLY | oflags(spec))
    try:
        done = 0
        while done < n:
            chunk = min(bs, n - done)
            data = aligned(pattern(seed, off + done, chunk), 'unaligned' in spec)
            if 'rwf_dsync' in spec:
                w = os.pwritev(fd, [data], off + done, os.RWF_DSYNC)
            elif 'append' in spec.split(','):
                w = os.write(fd, data)
            else:
                w = os.pwrite(fd, data, off + done)
            if w <= 0:
                raise OSError(errno.EIO, 'short write')
            done += w
        return done
    finally:
        os.close(fd)


def mmap_write_unmap(path, off, n, seed):
    """Write through a shared mapping of a file already closed, then munmap
    with no msync. Python's mmap keeps a dup of the fd (its close would send
    FUSE_FLUSH), so this maps with libc directly."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.open(path, os.O_RDWR)
    try:
        p = libc.mmap(None, off + n, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
        if p == ctypes.c_void_p(-1).value:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(fd)
    ctypes.memmove(p + off, pattern(seed, off, n), n)
    if libc.munmap(p, off + n):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 'OK'


def main(a):
    op = a[0]
    if op == 'pwrite':  # PATH OFF LEN [FLAGS] [SEED] -> bytes written
        path, off, n = a[1], num(a[2]), num(a[3])
        spec = a[4] if len(a) > 4 else ''
        seed = int(a[5]) if len(a) > 5 else 1
        fd = os.open(path, os.O_WRONLY | oflags(spec))
        try:
            data = aligned(pattern(seed, off, n), 'unaligned' in spec)
            if 'rwf_dsync' in spec:
                w = os.pwritev(fd, [data], off, os.RWF_DSYNC)
            else:
                w = os.pwrite(fd, data, off)
        finally:
            os.close(fd)
        return 'OK' if w == n else 'SHORT %d' % w
    if op == 'fill':  # PATH OFF LEN SEED [FLAGS] [BS]: write all of it
        path, off, n, seed = a[1], num(a[2]), num(a[3]), int(a[4])
        spec = a[5] if len(a) > 5 else ''
        bs = num(a[6]) if len(a) > 6 else 1 << 20
        do_write(path, off, n, seed, spec, bs)
        return 'OK'
    if op == 'check':  # PATH OFF LEN SEED: the pattern is there
        path, off, n, seed = a[1], num(a[2]), num(a[3]), int(a[4])
        fd = os.open(path, os.O_RDONLY)
        try:
            pos = 0
            while pos < n:
                chunk = min(1 << 20, n - pos)
                got = os.pread(fd, chunk, off + pos)
                if got != pattern(seed, off + pos, chunk):
                    return 'MISMATCH near %d (got %d bytes)' % (off + pos, len(got))
                pos += chunk
        finally:
            os.close(fd)
        return 'OK'
    if op == 'read':  # PATH OFF LEN -> number of bytes read
        fd = os.open(a[1], os.O_RDONLY)
        try:
            return str(len(os.pread(fd, num(a[3]), num(a[2]))))
        finally:
            os.close(fd)
    if op == 'nonzero':  # PATH OFF LEN -> how many of those bytes are not zero
        fd = os.open(a[1], os.O_RDONLY)
        try:
            b = os.pread(fd, num(a[3]), num(a[2]))
        finally:
            os.close(fd)
        return str(len(b) - b.count(0))
    if op == 'sha':  # PATH [LEN]
        h = hashlib.sha256()
        with open(a[1], 'rb') as f:
            left = num(a[2]) if len(a) > 2 else None
            while left is None or left > 0:
                b = f.read(1 << 20 if left is None else min(1 << 20, left))
                if not b:
                    break
                h.update(b)
                if left is not None:
                    left -= len(b)
        return h.hexdigest()
    if op == 'truncate':
        os.truncate(a[1], num(a[2]))
        return 'OK'
    if op == 'ftruncate':  # through an open fd (O_WRONLY)
        fd = os.open(a[1], os.O_WRONLY)
        try:
            os.ftruncate(fd, num(a[2]))
        finally:
            os.close(fd)
        return 'OK'
    if op == 'open':  # PATH FLAGS (rdonly|wronly|rdwr|creat|excl|trunc|...)
        f = 0
        for s in a[2].split(','):
            f |= {'rdonly': os.O_RDONLY, 'wronly': os.O_WRONLY, 'rdwr': os.O_RDWR,
                  'creat': os.O_CREAT, 'excl': os.O_EXCL, 'trunc': os.O_TRUNC,
                  'directory': os.O_DIRECTORY, 'sync': os.O_SYNC,
                  'dsync': os.O_DSYNC, 'direct': os.O_DIRECT, 'append': os.O_APPEND}[s]
        os.close(os.open(a[1], f, 0o644))
        return 'OK'
    if op == 'fsync' or op == 'fdatasync':
        fd = os.open(a[1], os.O_WRONLY if len(a) < 3 else os.O_RDONLY)
        try:
            (os.fsync if op == 'fsync' else os.fdatasync)(fd)
        finally:
            os.close(fd)
        return 'OK'
    if op == 'mkdir':
        os.mkdir(a[1])
        return 'OK'
    if op == 'rmdir':
        os.rmdir(a[1])
        return 'OK'
    if op == 'unlink':
        os.unlink(a[1])
        return 'OK'
    if op == 'rename':
        os.rename(a[1], a[2])
        return 'OK'
    if op == 'link':
        os.link(a[1], a[2])
        return 'OK'
    if op == 'symlink':
        os.symlink(a[1], a[2])
        return 'OK'
    if op == 'mknod':
        os.mknod(a[1], 0o644 | 0o100000)
        return 'OK'
    if op == 'mkfifo':
        os.mkfifo(a[1])
        return 'OK'
    if op == 'chmod':
        os.chmod(a[1], int(a[2], 8))
        return 'OK'
    if op == 'chown':
        os.chown(a[1], int(a[2]), int(a[3]))
        return 'OK'
    if op == 'utime':
        os.utime(a[1], (1000000000, 1000000000))
        return 'OK'
    if op == 'xattr':  # PATH NAME -> value
        return os.getxattr(a[1], a[2]).decode().rstrip('\n')
    if op == 'setxattr':
        os.setxattr(a[1], a[2], b'x')
        return 'OK'
    if op == 'listxattr':
        return ','.join(os.listxattr(a[1]))
    if op == 'mmap':  # PATH OFF LEN SEED [write|write-unmap]: read (and write) through a mapping
        # write: msync before munmap; write-unmap: close the file first, then
        # write and munmap with no msync (the kernel writes the pages back then)
        path, off, n, seed = a[1], num(a[2]), num(a[3]), int(a[4])
        mode = a[5] if len(a) > 5 else ''
        if mode == 'write-unmap':
            return mmap_write_unmap(path, off, n, seed)
        wr = mode == 'write'
        fd = os.open(path, os.O_RDWR if wr else os.O_RDONLY)
        try:
            m = mmap.mmap(fd, off + n, mmap.MAP_SHARED,
                          mmap.PROT_READ | (mmap.PROT_WRITE if wr else 0))
        finally:
            os.close(fd)
        if wr:
            m[off:off + n] = pattern(seed, off, n)
            if mode == 'write':
                m.flush()
        elif m[off:off + n] != pattern(seed, off, n):
            return 'MISMATCH'
        m.close()
        return 'OK'
    raise SystemExit('zf.py: unknown op ' + op)


if __name__ == '__main__':
    try:
        print(main(sys.argv[1:]))
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
