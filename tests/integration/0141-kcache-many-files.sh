#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kernel page cache over many files at once: 150 conventional files, each
# with a read-only open that cached its pages, see the sync overwrites made
# to them through other opens (kcache.c tracks every file's page-cache opens
# in a table that grows past its first 64 slots here). Then, with every
# reader closed, overwrites mark the files stale, and a new reader of each
# sees them. With -o kernel_cache the same over 150 sequential files, whose
# read-only opens that mode also caches, with appends and a reset.
. "$(dirname "$0")/lib.sh"

cat >"$W/many.py" <<'EOF'
import os, sys
mnt, kind, n = sys.argv[1], sys.argv[2], 150
seq = kind == "seq"

def blk(i, k):
    return bytes([(i * 7 + k) % 251 + 1]) * 4096

def path(i):
    return "%s/%s/%d" % (mnt, kind, i)

def put(i, k):
    fd = os.open(path(i), os.O_WRONLY | (os.O_APPEND | os.O_SYNC if seq else os.O_DSYNC))
    if seq:
        os.write(fd, blk(i, k))
    else:
        os.pwrite(fd, blk(i, k), 4096 * k)
    os.close(fd)

def want(i, ks):
    return b"".join(blk(i, k) for k in ks)

for i in range(n):
    put(i, 0)
readers = [os.open(path(i), os.O_RDONLY) for i in range(n)]
for i, r in enumerate(readers):
    if os.pread(r, 4096, 0) != blk(i, 0):
        sys.exit("FAIL: %s/%d: first block" % (kind, i))
    os.pread(r, 8192, 4096)  # caches block 1 (zeros, or nothing on seq) too
for i in range(n):
    put(i, 1)
for i, r in enumerate(readers):
    if os.pread(r, 8192, 0) != want(i, (0, 1)):
        sys.exit("FAIL: %s/%d: an open reader misses a sync write" % (kind, i))
print("ok - %d open readers saw the sync writes to their %s files" % (n, kind))
for r in readers:
    os.close(r)
for i in range(n):
    put(i, 2)
if seq:
    os.truncate(path(0), 0)
for i in range(n):
    r = os.open(path(i), os.O_RDONLY)
    w = b"" if seq and i == 0 else want(i, (0, 1, 2))
    if os.pread(r, 12288, 0) != w:
        sys.exit("FAIL: %s/%d: a new reader misses a change made while none was open" %
                 (kind, i))
    os.close(r)
print("ok - new readers of %d %s files saw the changes made while none was open" % (n, kind))
EOF

mkimg 320M --format zonefs --emulate-zoned --conv-zones 152 --zone-size 1M
mnt
python3 "$W/many.py" "$MNT" cnv || fail "many cnv files"
note "-o kernel_cache: sequential files too"
remount -o kernel_cache
python3 "$W/many.py" "$MNT" seq || fail "many seq files with -o kernel_cache"
umnt
echo "PASS $TNAME"
