#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Holes fill the metadata (issue 12): a punch in the middle of an extent
# splits it in two, without a write, and no defragmentation joins extents
# across a hole. On a 256 MiB emulated zoned image of 128 KiB zones (about
# 480 KB of checkpoint room, 0163), punching every other 4 KiB block of a
# 170 MiB file would make 21,760 extents (610 KB):
# - a punch gets ENOSPC once the room is gone (XFS can refuse a punch with
#   ENOSPC too), never EIO: the filesystem does not shut down;
# - every block reads as punched or as written;
# - removing the file gives the room back: a new file is written and read;
# - after a remount the same, and fsck.foliofs -n is clean.
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

mkimg 256M --zone-size 128K --emulate-zoned
mnt
cat >"$W/punch.py" <<'PY'
import ctypes, errno, os, sys
mnt, phase = sys.argv[1], sys.argv[2]
path, state = os.path.join(mnt, "big"), os.path.join(mnt, "..", "punched")
BLK, NBLK = 4096, (170 << 20) // 4096
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

def block(b):
    return (b"%08d" % b) * (BLK // 8)

def check(punched):
    fd = os.open(path, os.O_RDONLY)
    for b in range(NBLK):
        got = os.pread(fd, BLK, b * BLK)
        want = bytes(BLK) if b < punched and b % 2 else block(b)
        if got != want:
            sys.exit("FAIL: block %d: %r, want %r" % (b, got[:8], want[:8]))
    os.close(fd)

if phase == "punch":
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    for b in range(0, NBLK, 256):
        os.pwrite(fd, b"".join(block(k) for k in range(b, min(b + 256, NBLK))), b * BLK)
    os.fsync(fd)
    punched = NBLK
    for b in range(1, NBLK, 2):
        if libc.fallocate(fd, 3, b * BLK, BLK):  # PUNCH_HOLE | KEEP_SIZE
            e = ctypes.get_errno()
            if e != errno.ENOSPC:
                sys.exit("FAIL: punch of block %d: %s, want ENOSPC" % (b, os.strerror(e)))
            punched = b
            break
    os.fsync(fd)
    os.close(fd)
    if punched == NBLK:
        sys.exit("FAIL: %d punches and no ENOSPC: the room is larger than this test thinks"
                 % (NBLK // 2))
    print("# ENOSPC at the punch of block %d (%d punches)" % (punched, punched // 2))
    open(state, "w").write(str(punched))
    check(punched)
elif phase == "check":
    check(int(open(state).read()))
elif phase == "again":
    os.unlink(path)
    data = os.urandom(64 << 20)
    fd = os.open(os.path.join(mnt, "new"), os.O_CREAT | os.O_RDWR, 0o644)
    for off in range(0, len(data), 1 << 20):
        os.pwrite(fd, data[off:off + (1 << 20)], off)
    os.fsync(fd)
    if os.pread(fd, len(data), 0) != data:
        sys.exit("FAIL: the new file does not read back")
    os.close(fd)
PY
python3 "$W/punch.py" "$MNT" punch || fail "punching holes"
ok "punches end with ENOSPC, every block reads as punched or written"
remount
python3 "$W/punch.py" "$MNT" check || fail "after the remount"
ok "the same after a remount"
python3 "$W/punch.py" "$MNT" again || fail "writing after removing the file"
ok "once the file is removed, a 64 MiB file is written and read"
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck.foliofs -n"; }
ok "fsck.foliofs -n clean"
exit 0
