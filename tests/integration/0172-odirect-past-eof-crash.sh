#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# After a kill -9, the blocks of an O_DIRECT append that did not become part
# of the file must not come back when the file grows (posix format). A file
# of 315392 bytes is made durable, an O_DIRECT write (no O_DSYNC) appends
# 40 KiB, the daemon is killed, and after the remount the file is truncated
# up to 500000 bytes: everything past the size the crash left reads zeros
# (POSIX: a file grown by truncate reads zeros there; XFS zeroes beyond the
# old end). The append's data header rolled forward carries the size before
# the append, so the mount used to keep its extent beyond the end
# (tests/model/posix_model.py found it). Regular and emulated-zoned images.
. "$(dirname "$0")/lib.sh"

one() {
	local kind=$1
	shift
	mkimg 64M --format posix --zone-size 2M "$@"
	MOUNTS+=("$MNT")
	python3 - "$FOLIOFS" "$IMG" "$MNT" <<'PY' || fail "$kind: the O_DIRECT append's blocks came back"
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
os.pwrite(fd, b"\x11" * 315392, 0)
os.fsync(fd)
d = os.open(f, os.O_WRONLY | os.O_DIRECT)
m = mmap.mmap(-1, 40960)
m[:] = b"\xdd" * 40960
os.pwrite(d, m, 315392)
p.kill()
p.wait()
subprocess.run(["umount", "-l", mnt])
for _ in range(500):  # the dead daemon's image lock goes with its ring
    if subprocess.run(["flock", "-n", img, "true"]).returncode == 0:
        break
    time.sleep(0.01)
p = mount()
try:
    size = os.stat(f).st_size
    os.truncate(f, 500000)
    with open(f, "rb") as fh:
        g = fh.read()
    bad = next((i for i in range(size, len(g)) if g[i]), None)
finally:
    subprocess.run(["umount", mnt])
    p.wait()
if size not in (315392, 356352):
    sys.exit("FAIL: size %d after the kill, want 315392 or 356352" % size)
if bad is not None:
    sys.exit("FAIL: size %d after the kill; grown to 500000, byte %d is %02x, want zeros" % (
        size, bad, g[bad]))
print("ok - size %d after the kill; the grown range reads zeros" % size)
PY
	ok "$kind: no block past the end came back"
}

one regular
one zoned --emulate-zoned --conv-zones 4
