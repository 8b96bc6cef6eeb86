#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# After a truncate down into a block, that block's bytes beyond the new size
# must never come back (posix format), even when a later write covers them
# only in the cache and a sync write makes a larger size durable before it is
# written back. A file of 64 KiB (0xdd) is made durable, truncated to 5000
# bytes and fsync'd; a buffered write covers 4096-12288 (0x0c); an O_DSYNC
# write at 20000 makes the size 20100 durable; then kill -9 (the buffered
# bytes are lost). After the remount 5000-12288 holds 0x0c or zeros, never
# 0xdd: XFS zeroes the tail of the last block on disk at the truncate. The
# truncate used to zero it in the cache only (tests/model/posix_model.py
# found it after a power cut). Regular and emulated-zoned images.
. "$(dirname "$0")/lib.sh"

one() {
	local kind=$1
	shift
	mkimg 64M --format posix --zone-size 2M "$@"
	MOUNTS+=("$MNT")
	python3 - "$FOLIOFS" "$IMG" "$MNT" <<'PY' || fail "$kind: bytes cut off by a truncate came back"
import mmap, os, subprocess, sys, time
daemon, img, mnt = sys.argv[1:]

def mount():
    p = subprocess.Popen([daemon, "-f", "-o", "cache_size=8M", img, mnt])
    for _ in range(500):
        if os.path.ismount(mnt):
            return p
        time.sleep(0.01)
    sys.exit("FAIL: no mount")

p = mount()
f = os.path.join(mnt, "f")
fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
d = os.open(f, os.O_WRONLY | os.O_DIRECT)
m = mmap.mmap(-1, 65536)
m[:] = b"\xdd" * 65536
os.pwrite(d, m, 0)
os.fsync(fd)
os.ftruncate(fd, 5000)
os.fsync(fd)
os.pwrite(fd, b"\x0c" * 8192, 4096)
s = os.open(f, os.O_WRONLY | os.O_DSYNC)
os.pwrite(s, b"\x5e" * 100, 20000)
p.kill()
p.wait()
subprocess.run(["umount", "-l", mnt])
for _ in range(500):  # the dead daemon's image lock goes with its ring
    if subprocess.run(["flock", "-n", img, "true"]).returncode == 0:
        break
    time.sleep(0.01)
p = mount()
try:
    with open(f, "rb") as fh:
        g = fh.read()
finally:
    subprocess.run(["umount", mnt])
    p.wait()
if len(g) != 20100 or g[20000:] != b"\x5e" * 100 or g[:5000] != b"\xdd" * 5000:
    sys.exit("FAIL: size %d after the kill, want 20100 with the durable bytes" % len(g))
bad = next((i for i in range(5000, 12288) if g[i] not in (0, 0x0c)), None)
if bad is not None:
    sys.exit("FAIL: byte %d is %02x after the kill, want 0c or zeros (dd was cut off by a "
             "durable truncate)" % (bad, g[bad]))
print("ok - the bytes a durable truncate cut off stayed gone")
PY
	ok "$kind: the truncated block's tail stayed zero"
}

one regular
one zoned --emulate-zoned --conv-zones 4
