#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Zone full / device full: a write past a sequential zone's capacity gets
# EFBIG (a write crossing it is cut short at the capacity, as the kernel
# does), a write past a conventional file's fixed size gets EFBIG; nothing
# else changes (sizes, contents, other zones), and the fs stays writable.
set -u
. "$(dirname "$0")/lib-crash.sh"
ZS=$((4 << 20))
mkimg 2 $ZS 6
mnt
python3 - "$MNT" $ZS <<'PY' || fail "full zone"
import errno, mmap, os, sys
mnt, zs = sys.argv[1], int(sys.argv[2])
def aligned(b):
    # a page-aligned buffer: FUSE splits a write from an unaligned one at
    # page boundaries, and a sync append piece must end on a block
    m = mmap.mmap(-1, len(b))
    m[:] = b
    return m
s0, c0 = mnt + "/seq/0", mnt + "/cnv/0"
data = os.urandom(zs)
fd = os.open(s0, os.O_WRONLY | os.O_SYNC)
assert os.pwrite(fd, aligned(data[:zs - 8192]), 0) == zs - 8192
# crossing the capacity: short write up to it
assert os.pwrite(fd, aligned(data[zs - 8192:] + b"y" * 8192), zs - 8192) == 8192
os.close(fd)
def refused_past(path, off, flags, what):
    fd = os.open(path, os.O_WRONLY | flags)
    try:
        os.pwrite(fd, b"z" * 4096, off)
        raise SystemExit("write past %s did not fail" % what)
    except OSError as e:
        assert e.errno in (errno.EFBIG, errno.ENOSPC), e
    finally:
        os.close(fd)
refused_past(s0, zs, os.O_SYNC, "a full zone (O_SYNC)")
refused_past(s0, zs, 0, "a full zone (buffered)")
assert os.stat(s0).st_size == zs
assert open(s0, "rb").read() == data
csz = os.stat(c0).st_size
refused_past(c0, csz, 0, "a conventional file's size")
assert os.stat(c0).st_size == csz
# still writable elsewhere
fd = os.open(mnt + "/seq/1", os.O_WRONLY | os.O_SYNC)
assert os.pwrite(fd, b"k" * 4096, 0) == 4096
os.close(fd)
st = os.getxattr(mnt, "user.foliofs.stats").decode()
assert "read_only 0" in st, st
PY
umnt
mnt
python3 -c 'import os,sys; assert os.stat(sys.argv[1]+"/seq/0").st_size == int(sys.argv[2])' "$MNT" $ZS ||
	fail "size after remount"
umnt
echo ok
