#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Injected EIO on device writes (FOLIOFS_FAULT, src/dev/fault.c), in each
# errors= mode: an O_SYNC appender gets EIO; a buffered appender's fsync gets
# EIO, and so does its close(2) when it did not fsync; the file size is resynced to the zone's write pointer; what was made
# durable before is intact after a remount; the daemon keeps serving; then
# the errors= mode decides what else is refused (kernel zonefs semantics:
# remount-ro: every write EROFS; zone-ro: that zone EPERM (immutable), others
# writable; zone-offline: that zone unreadable (EPERM); repair: that zone stays writable).
set -u
. "$(dirname "$0")/lib-crash.sh"
ZS=$((4 << 20))
Z1=$(((2 + 1) * ZS)) # seq/1 is device zone 3 (zones 0-1 conventional)
injected=0
for mode in remount-ro zone-ro zone-offline repair; do
	for kind in osync buffered close; do
		rm -f "$IMG"
		mkimg 2 $ZS 6
		# the 2nd data write to seq/1 fails (the 1st makes 16 KiB durable)
		FOLIOFS_FAULT="fail_write=2,range=$Z1:$((Z1 + ZS))" mnt "errors=$mode"
		python3 - "$MNT" "$mode" "$kind" <<'PY' || fail "errors=$mode $kind"
import errno, os, sys
mnt, mode, kind = sys.argv[1:]
s1, s2 = mnt + "/seq/1", mnt + "/seq/2"
good = os.urandom(16384)
fd = os.open(s1, os.O_WRONLY | os.O_SYNC)
assert os.pwrite(fd, good, 0) == 16384
os.close(fd)
bad = os.urandom(8192)
if kind == "osync":
    fd = os.open(s1, os.O_WRONLY | os.O_SYNC)
    try:
        os.pwrite(fd, bad, 16384)
        raise SystemExit("O_SYNC write did not fail")
    except OSError as e:
        assert e.errno == errno.EIO, e
    os.close(fd)
elif kind == "close":
    # close writes the file back (FUSE_FLUSH): its error is close's
    fd = os.open(s1, os.O_WRONLY)
    assert os.pwrite(fd, bad, 16384) == 8192   # cached
    try:
        os.close(fd)
        raise SystemExit("close of a file whose write-back failed did not fail")
    except OSError as e:
        assert e.errno == errno.EIO, e
else:
    fd = os.open(s1, os.O_WRONLY)
    assert os.pwrite(fd, bad, 16384) == 8192   # cached
    try:
        os.fsync(fd)
        raise SystemExit("fsync after a failed writeback did not fail")
    except OSError as e:
        assert e.errno == errno.EIO, e
    os.close(fd)
st = os.getxattr(mnt, "user.foliofs.stats").decode()
val = dict(l.split()[:2] for l in st.splitlines() if len(l.split()) >= 2)
# the one injected failure: one failed device write, one failed zone-queue write
assert val.get("dev_write_errors") == "1", st
assert val.get("zoneq_errors") == "1", st
# the size is the write pointer again: the failed bytes are not in the file
if mode != "zone-offline":
    assert os.stat(s1).st_size == 16384, os.stat(s1).st_size
    assert open(s1, "rb").read() == good
# other zones: readable always; writable unless the whole fs went read-only
fd = os.open(s2, os.O_WRONLY | os.O_SYNC) if mode != "remount-ro" else None
if mode == "remount-ro":
    try:
        os.open(s2, os.O_WRONLY)
        raise SystemExit("remount-ro: a write open still succeeds")
    except OSError as e:
        assert e.errno == errno.EROFS, e
else:
    assert os.pwrite(fd, good, 0) == 16384
    os.close(fd)
assert open(mnt + "/seq/0", "rb").read() == b""
# the failed zone itself
# (as the kernel: EROFS from a read-only mount, EPERM from an immutable file)
if mode in ("zone-ro", "remount-ro"):
    try:
        os.open(s1, os.O_WRONLY)
        raise SystemExit("%s: the failed zone is still writable" % mode)
    except OSError as e:
        assert e.errno == (errno.EROFS if mode == "remount-ro" else errno.EPERM), e
elif mode == "zone-offline":
    try:
        open(s1, "rb").read()
        raise SystemExit("zone-offline: the failed zone is still readable")
    except OSError as e:
        assert e.errno == errno.EPERM, e
else:  # repair: appends continue at the write pointer
    fd = os.open(s1, os.O_WRONLY | os.O_SYNC)
    assert os.pwrite(fd, bad, 16384) == 8192
    os.close(fd)
    assert open(s1, "rb").read() == good + bad
PY
		grep -q "fault: EIO injected" "$T/daemon.log" && injected=$((injected + 1))
		umnt
		# durable data survives a remount without faults
		mnt
		python3 - "$MNT" "$mode" <<'PY' || fail "errors=$mode $kind: after remount"
import os, sys
mnt, mode = sys.argv[1:]
n = os.stat(mnt + "/seq/1").st_size
assert n in (16384, 24576), n
assert len(open(mnt + "/seq/1", "rb").read()) == n
PY
		umnt
		: >"$T/daemon.log"
		echo "errors=$mode $kind: ok"
	done
done
[ "$injected" -eq 12 ] || fail "the fault was injected in $injected of the 12 runs"
echo "ok ($injected faults injected)"
