#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A read racing a truncate down must not bring the cut-off blocks back
# (posix format). Two threads read the file (O_DIRECT: every read reaches the
# daemon) while the main one writes 256 KiB, truncates to 59153 bytes and
# writes past the end: the gap from 59153 must read as zeros. A read that
# found the old extents after the truncate had emptied the cache, but before
# its record dropped them, used to cache the old blocks beyond the new size,
# and the write past the end then showed them (tests/model/posix_model.py
# found it). Up to 8 s of rounds, on a regular and an emulated-zoned image.
. "$(dirname "$0")/lib.sh"

one() {
	local kind=$1
	shift
	mkimg 64M --format posix --zone-size 2M "$@"
	mnt -o cache_size=8M,max_folio=64K
	python3 - "$MNT" <<'PY' || fail "$kind: a read racing a truncate cached the cut-off blocks"
import mmap, os, sys, threading, time
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
        os.ftruncate(fd, 59153)
        os.pwrite(fd, b"\xbb" * 1000, 199704)
        n = os.preadv(chk, [m], 0)
        gap = m[59153:199704]
        if n != 200704 or gap.count(0) != len(gap):
            at = next((i for i in range(len(gap)) if gap[i]), -1)
            print("FAIL: round %d: size %d, byte %d of the gap is %02x, want zeros" % (
                rounds, n, 59153 + at, gap[at] if at >= 0 else 0))
            bad = 1
finally:
    stop = True
    for t in ths:
        t.join()
    os.close(chk)
    os.close(fd)
if not bad:
    print("ok - %d rounds of truncate down and a write past the end, reads racing" % rounds)
sys.exit(bad)
PY
	umnt
	ok "$kind: no cut-off block came back"
}

one regular
one zoned --emulate-zoned --conv-zones 4
