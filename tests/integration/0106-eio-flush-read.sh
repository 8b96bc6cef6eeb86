#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Injected EIO on a device flush and on a read: the fsync that needed the
# flush reports EIO (never a silent success, invariant 5); a failed read
# reports EIO and the next read of the same bytes works (nothing cached
# from the failed read); the daemon keeps serving.
set -u
. "$(dirname "$0")/lib-crash.sh"
ZS=$((4 << 20))
mkimg 2 $ZS 6
FOLIOFS_FAULT="fail_flush=1" mnt "errors=repair"
python3 - "$MNT" <<'PY' || fail "flush EIO"
import errno, os, sys
mnt = sys.argv[1]
fd = os.open(mnt + "/seq/0", os.O_WRONLY)
# more than one FUA write's worth (256 KiB): an fsync of one small run writes
# it FUA and needs no flush, so only a larger write-back meets the fault
os.pwrite(fd, b"a" * (512 << 10), 0)
try:
    os.fsync(fd)
    raise SystemExit("fsync succeeded although the device flush failed")
except OSError as e:
    assert e.errno == errno.EIO, e
os.close(fd)
PY
grep -q "fault: EIO injected on flush" "$T/daemon.log" || fail "no flush fault injected"
umnt
rm -f "$IMG"
mkimg 2 $ZS 6
mnt
python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_WRONLY|os.O_SYNC); os.pwrite(fd,b"r"*65536,0)' \
	"$MNT/seq/1" || fail "write"
umnt
Z=$(((2 + 1) * ZS))
FOLIOFS_FAULT="fail_read=1,range=$Z:$((Z + ZS))" mnt
python3 - "$MNT" <<'PY' || fail "read EIO"
import errno, os, sys
mnt = sys.argv[1]
try:
    open(mnt + "/seq/1", "rb").read()
    raise SystemExit("the injected read error did not reach the reader")
except OSError as e:
    assert e.errno == errno.EIO, e
assert open(mnt + "/seq/1", "rb").read() == b"r" * 65536
fd = os.open(mnt + "/seq/2", os.O_WRONLY | os.O_SYNC)
assert os.pwrite(fd, b"s" * 4096, 0) == 4096
os.close(fd)
PY
grep -q "fault: EIO injected on read" "$T/daemon.log" || fail "no read fault injected"
umnt
echo ok
