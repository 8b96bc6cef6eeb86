#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# errors=remount-ro makes the mount itself read-only, as the kernel's zonefs
# does: after a write error, statvfs shows ST_RDONLY and the kernel refuses a
# write open with EROFS before it reaches the daemon; reads still work and the
# mount unmounts cleanly. Other errors= modes leave the mount writable.
set -u
. "$(dirname "$0")/lib-crash.sh"
ZS=$((4 << 20))
Z1=$(((2 + 1) * ZS)) # seq/1 is device zone 3 (zones 0-1 conventional)
for mode in remount-ro zone-ro; do
	rm -f "$IMG"
	mkimg 2 $ZS 6
	FOLIOFS_FAULT="fail_write=1,range=$Z1:$((Z1 + ZS))" mnt "errors=$mode"
	python3 - "$MNT" "$mode" <<'PY' || fail "errors=$mode"
import errno, os, sys, time
mnt, mode = sys.argv[1:]
before = os.statvfs(mnt).f_flag
assert not before & os.ST_RDONLY, "read-only before any error"
good = os.urandom(8192)
fd = os.open(mnt + "/seq/2", os.O_WRONLY | os.O_SYNC)
assert os.pwrite(fd, good, 0) == 8192
os.close(fd)
fd = os.open(mnt + "/seq/1", os.O_WRONLY | os.O_SYNC)
try:
    os.pwrite(fd, os.urandom(4096), 0)
    raise SystemExit("the injected write error did not reach the writer")
except OSError as e:
    assert e.errno == errno.EIO, e
os.close(fd)
if mode == "remount-ro":
    # the remount runs in a thread of the daemon: give it up to 10 s
    deadline = time.monotonic() + 10
    while not os.statvfs(mnt).f_flag & os.ST_RDONLY:
        if time.monotonic() > deadline:
            raise SystemExit("statvfs never showed ST_RDONLY after errors=remount-ro")
        time.sleep(0.05)
    # the other per-mount flags (nosuid, nodev, ...) stay as they were
    assert os.statvfs(mnt).f_flag == before | os.ST_RDONLY, (before, os.statvfs(mnt).f_flag)
    for path, fl in ((mnt + "/seq/2", os.O_WRONLY), (mnt + "/cnv/0", os.O_RDWR)):
        try:
            os.open(path, fl)
            raise SystemExit("%s: a write open succeeded on a read-only mount" % path)
        except OSError as e:
            assert e.errno == errno.EROFS, e
else:
    time.sleep(0.5)  # a wrong remount would have happened by now
    assert not os.statvfs(mnt).f_flag & os.ST_RDONLY, "errors=%s made the mount read-only" % mode
    fd = os.open(mnt + "/seq/2", os.O_WRONLY | os.O_SYNC)
    assert os.pwrite(fd, good, 8192) == 8192
    os.close(fd)
assert open(mnt + "/seq/2", "rb").read(8192) == good
PY
	umnt
done
echo PASS
