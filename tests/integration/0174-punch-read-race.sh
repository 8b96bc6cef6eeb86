#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A read racing a hole punch must not bring the punched blocks back (posix
# format). Two threads read the file (O_DIRECT: every read reaches the
# daemon) while the main one writes 256 KiB and punches 61440-131072: the
# hole must read as zeros. A read that found the old extents after the punch
# had emptied the cache, but before its record unmapped them, used to cache
# the old blocks (the truncate race of 0171, in fallocate). Up to 8 s of
# rounds, on a regular and an emulated-zoned image.
. "$(dirname "$0")/lib.sh"

one() {
	local kind=$1
	shift
	mkimg 64M --format posix --zone-size 2M "$@"
	mnt -o cache_size=8M,max_folio=64K
	python3 - "$MNT" <<'PY' || fail "$kind: a read racing a punch cached the punched blocks"
import ctypes, mmap, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
f = os.path.join(sys.argv[1], "f")
fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
stop = False

def reader():
    rfd = os.open(f, os.O_RDONLY | os.O_DIRECT)
    m = mmap.mmap(-1, 256 << 10)
    while not stop:
        os.preadv(rfd, [m], 57344)
    os.close(rfd)

ths = [threading.Thread(target=reader) for _ in range(2)]
for t in ths:
    t.start()
chk = os.open(f, os.O_RDONLY | os.O_DIRECT)
m = mmap.mmap(-1, 256 << 10)
bad = rounds = 0
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < 8 and not bad:
        rounds += 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"\x22" * (256 << 10), 0)
        if libc.fallocate(fd, 3, 61440, 131072 - 61440):  # PUNCH_HOLE | KEEP_SIZE
            sys.exit("FAIL: fallocate: %s" % os.strerror(ctypes.get_errno()))
        n = os.preadv(chk, [m], 0)
        gap = m[61440:131072]
        if n != 262144 or gap.count(0) != len(gap):
            at = next((i for i in range(len(gap)) if gap[i]), -1)
            print("FAIL: round %d: size %d, byte %d of the hole is %02x, want zeros" % (
                rounds, n, 61440 + at, gap[at] if at >= 0 else 0))
            bad = 1
finally:
    stop = True
    for t in ths:
        t.join()
    os.close(chk)
    os.close(fd)
if not bad:
    print("ok - %d rounds of a write and a hole punch, reads racing" % rounds)
sys.exit(bad)
PY
	umnt
	ok "$kind: no punched block came back"
}

one regular
one zoned --emulate-zoned --conv-zones 4
