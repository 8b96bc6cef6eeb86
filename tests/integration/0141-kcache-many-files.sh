#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kernel page cache over many files at once: 150 sequential files, each
# with a read-only open that cached its pages, see the sync appends made to
# them through other opens (kcache.c tracks every file's page-cache opens in
# a table that grows past its first 64 slots here). Then with every reader
# closed, appends mark the files stale, and a new reader of each sees them.
. "$(dirname "$0")/lib.sh"

mkimg 200M --emulate-zoned --conv-zones 2 --zone-size 1M
mnt
python3 - "$MNT" <<'EOF' || fail "many files"
import os, sys
mnt, n = sys.argv[1], 150

def blk(i, k):
    return bytes([(i * 7 + k) % 251 + 1]) * 4096

def path(i):
    return "%s/seq/%d" % (mnt, i)

for i in range(n):
    fd = os.open(path(i), os.O_WRONLY | os.O_APPEND | os.O_SYNC)
    os.write(fd, blk(i, 0))
    os.close(fd)
readers = [os.open(path(i), os.O_RDONLY) for i in range(n)]
for i, r in enumerate(readers):
    if os.pread(r, 65536, 0) != blk(i, 0):
        sys.exit("FAIL: seq/%d: first block" % i)
for i in range(n):
    fd = os.open(path(i), os.O_WRONLY | os.O_APPEND | os.O_SYNC)
    os.write(fd, blk(i, 1))
    os.close(fd)
for i, r in enumerate(readers):
    if os.pread(r, 65536, 0) != blk(i, 0) + blk(i, 1):
        sys.exit("FAIL: seq/%d: an open reader misses the append" % i)
print("ok - %d open readers saw the appends to their files" % n)
for r in readers:
    os.close(r)
for i in range(n):
    fd = os.open(path(i), os.O_WRONLY | os.O_APPEND | os.O_SYNC)
    os.write(fd, blk(i, 2))
    os.close(fd)
os.truncate(path(0), 0)
for i in range(n):
    r = os.open(path(i), os.O_RDONLY)
    want = b"" if i == 0 else blk(i, 0) + blk(i, 1) + blk(i, 2)
    if os.pread(r, 65536, 0) != want:
        sys.exit("FAIL: seq/%d: a new reader misses a change made while none was open" % i)
    os.close(r)
print("ok - new readers of %d files saw the changes made while none was open" % n)
EOF
umnt
echo "PASS $TNAME"
