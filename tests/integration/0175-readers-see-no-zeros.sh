#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Buffered readers never see bytes nobody wrote while a sync writer appends
# and truncates (posix format, default mount). The writer appends runs of a
# non-zero byte with O_DSYNC, of random lengths, and truncates to 0 past
# 900 KiB; two reader threads read the whole file through a read-only open
# and look for a zero byte. Every byte of the file was written non-zero, so
# a zero is a read that saw neither the file before a change nor after it.
# Both orders: the read-only open first, and the writer's first.
#
# This is what keeps the kernel page cache off by default. With it (-o
# kernel_cache, or a read-only open cached beside a direct_io writer), FUSE
# returns zeros here: a READ answered short while a truncate's SETATTR is in
# flight (FUSE_I_SIZE_UNSTABLE set) leaves a zero-filled page that the reader
# copies within the old size, and a direct_io write that moves the size lets
# a reader's GETATTR see the new size before the write's invalidation drops
# the old last page, with the zeros after the old end.
. "$(dirname "$0")/lib.sh"

mkimg 256M --format posix
mnt -o sync_mode=writeback
for order in reader-first writer-first; do
	python3 - "$MNT/z" "$order" <<'PY' || fail "$order: a reader saw zeros"
import os, random, sys, threading, time
path, order = sys.argv[1], sys.argv[2]
os.close(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644))
stop, bad, reads = False, [], [0]

def reader(fd):
    while not stop:
        b = os.pread(fd, 1 << 20, 0)
        reads[0] += 1
        z = b.find(b"\0")
        if z >= 0:
            bad.append((z, len(b)))

if order == "reader-first":
    r = os.open(path, os.O_RDONLY)
    w = os.open(path, os.O_WRONLY | os.O_DSYNC)
else:
    w = os.open(path, os.O_WRONLY | os.O_DSYNC)
    r = os.open(path, os.O_RDONLY)
ths = [threading.Thread(target=reader, args=(r,)) for _ in range(2)]
for t in ths:
    t.start()
rng, off, k, trunc = random.Random(1), 0, 0, 0
end = time.monotonic() + 4
while time.monotonic() < end:
    k += 1
    n = rng.randrange(1, 9000)
    os.pwrite(w, bytes([k % 250 + 1]) * n, off)
    off += n
    if off > 900 << 10:
        os.ftruncate(w, 0)
        off, trunc = 0, trunc + 1
stop = True
for t in ths:
    t.join()
os.close(r)
os.close(w)
if bad:
    sys.exit("FAIL: %d of %d reads found a zero, e.g. at %d of %d bytes" % (
        len(bad), reads[0], bad[0][0], bad[0][1]))
print("ok - %s: %d reads, %d writes, %d truncates, no zero" % (order, reads[0], k, trunc))
PY
done
umnt
echo "PASS $TNAME"
