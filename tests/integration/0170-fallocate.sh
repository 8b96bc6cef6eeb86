#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# fallocate reserves space through the mount (issue 11), on an emulated zoned
# and on a regular posix image of 4 MiB zones: `fallocate -l 32M` makes the
# space used at once (df's free blocks drop by exactly 32 MiB, st_blocks
# covers it) and reads as zeros; fio with --fallocate=native lays out, writes
# and verifies a file; another file then fills the device to ENOSPC; every
# write of the 32 MiB range still succeeds (O_DSYNC and buffered + fsync), a
# further `fallocate -l 8M` is refused with ENOSPC; after a remount the data
# verifies and the space is still counted; unlinking gives it back;
# reservations made durable by fsync (default mode and KEEP_SIZE) survive a
# kill -9 of the daemon; and fsck.foliofs -n is clean after the unmount.
. "$(dirname "$0")/lib.sh"
need fallocate fio
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

one() {
	local kind=$1
	shift
	mkimg 130M --format posix --zone-size 4M "$@"
	mnt
	python3 - "$MNT" <<'PY' || fail "$kind: reservation through the mount"
import os, subprocess, sys
mnt = sys.argv[1]
wal = os.path.join(mnt, "wal")
before = os.statvfs(mnt).f_bfree
subprocess.run(["fallocate", "-l", "32M", wal], check=True)
after = os.statvfs(mnt).f_bfree
st = os.stat(wal)
if before - after != 8192:
    sys.exit("FAIL: f_bfree dropped by %d blocks at fallocate -l 32M, want 8192" % (before - after))
if st.st_size != 32 << 20 or st.st_blocks != 65536:
    sys.exit("FAIL: size %d blocks %d after fallocate -l 32M" % (st.st_size, st.st_blocks))
with open(wal, "rb") as f:
    if f.read() != bytes(32 << 20):
        sys.exit("FAIL: the reserved range does not read as zeros")
print("ok - fallocate -l 32M: f_bfree -8192, st_blocks 65536, zeros")
PY
	run_fio native --directory="$MNT" --filename=laidout --size=16M --fallocate=native \
		--rw=write --bs=256k --verify=crc32c --do_verify=1 --unlink=0
	python3 - "$MNT" <<'PY' || fail "$kind: writes into the reservation on a full device"
import errno, os, random, subprocess, sys
mnt = sys.argv[1]
wal = os.path.join(mnt, "wal")
chunk = os.urandom(1 << 20)
fd = os.open(os.path.join(mnt, "fill"), os.O_WRONLY | os.O_CREAT, 0o644)
off = 0
try:
    while True:
        os.pwrite(fd, chunk, off)
        os.fsync(fd)
        off += len(chunk)
except OSError as e:
    if e.errno != errno.ENOSPC:
        sys.exit("FAIL: filling: %s" % e)
    os.ftruncate(fd, off)  # the refused bytes stay cached otherwise
os.close(fd)
print("ok - another file filled the device to ENOSPC at %d MiB" % (off >> 20))
r = subprocess.run(["fallocate", "-l", "8M", os.path.join(mnt, "more")], capture_output=True, text=True)
if r.returncode == 0 or "No space left" not in r.stderr:
    sys.exit("FAIL: fallocate -l 8M on a full device: rc %d %s" % (r.returncode, r.stderr))
print("ok - fallocate -l 8M refused with ENOSPC")
rng = random.Random(170)
data = rng.randbytes(32 << 20)
fd = os.open(wal, os.O_WRONLY | os.O_DSYNC)
for o in range(0, 16 << 20, 64 << 10):
    os.pwrite(fd, data[o:o + (64 << 10)], o)
os.close(fd)
fd = os.open(wal, os.O_WRONLY)
for o in range(16 << 20, 32 << 20, 1 << 20):
    os.pwrite(fd, data[o:o + (1 << 20)], o)
os.fsync(fd)
os.close(fd)
with open(wal, "rb") as f:
    if f.read() != data:
        sys.exit("FAIL: the reserved range does not verify")
print("ok - 32 MiB written into the reservation (O_DSYNC and buffered) on the full device")
PY
	remount
	python3 - "$MNT" "$W/bfree" <<'PY' || fail "$kind: after the remount"
import os, random, sys
mnt = sys.argv[1]
wal = os.path.join(mnt, "wal")
data = random.Random(170).randbytes(32 << 20)
with open(wal, "rb") as f:
    if f.read() != data:
        sys.exit("FAIL: wal does not verify after the remount")
if os.stat(wal).st_blocks != 65536:
    sys.exit("FAIL: st_blocks %d after the remount" % os.stat(wal).st_blocks)
print("ok - verifies after the remount, st_blocks 65536")
with open(sys.argv[2], "w") as f:
    f.write(str(os.statvfs(mnt).f_bfree))
os.unlink(wal)
PY
	# the inode is freed once the kernel forgets it: certainly by the unmount
	remount
	python3 - "$MNT" "$W/bfree" <<'PY' || fail "$kind: after the unlink, or reserving before the kill"
import os, sys
mnt = sys.argv[1]
back = os.statvfs(mnt).f_bfree - int(open(sys.argv[2]).read())
# statfs counts a zone's room less one header: a zone the collector filled
# with copies (no header) gives back one block less than it held
if not 8192 - 8 <= back <= 8192:
    sys.exit("FAIL: unlink gave back %d blocks, want 8192 (less one per zone)" % back)
print("ok - the unlink gave %d of the 8192 blocks back" % back)
# reservations made durable by fsync, then the daemon killed
import subprocess
for name, args in (("res", []), ("res-keep", ["-n"])):
    path = os.path.join(mnt, name)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))  # fallocate -n does not create
    subprocess.run(["fallocate"] + args + ["-l", "8M", path], check=True)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
dfd = os.open(mnt, os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)
with open(sys.argv[2], "w") as f:
    f.write(str(os.statvfs(mnt).f_bfree))
PY
	# kill -9 the daemon this test started (the only one serving $IMG)
	pids=$(daemon_pids "$IMG")
	[ -n "$pids" ] || fail "$kind: no daemon for $IMG"
	kill -9 $pids
	fusermount3 -uz "$MNT" 2>/dev/null
	wait_daemon_gone "$IMG" 30 || fail "$kind: the killed daemon did not go"
	mnt
	python3 - "$MNT" "$W/bfree" <<'PY' || fail "$kind: reservations after kill -9"
import os, sys
mnt = sys.argv[1]
for name, size in (("res", 8 << 20), ("res-keep", 0)):
    st = os.stat(os.path.join(mnt, name))
    if st.st_size != size or st.st_blocks != 16384:
        sys.exit("FAIL: %s after kill -9: size %d st_blocks %d, want %d and 16384" % (
            name, st.st_size, st.st_blocks, size))
bfree, was = os.statvfs(mnt).f_bfree, int(open(sys.argv[2]).read())
if bfree != was:
    sys.exit("FAIL: f_bfree %d after kill -9 and remount, %d before" % (bfree, was))
print("ok - fsync'd reservations (default and KEEP_SIZE) survive kill -9: st_blocks, f_bfree")
PY
	umnt
	"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$kind: fsck.foliofs -n"; }
	ok "$kind: fsck.foliofs -n clean"
}

one emulated-zoned --emulate-zoned --conv-zones 1
one regular
