#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Names fill the metadata before the blocks (issue 12, ENOSPC): a posix image
# of 64 MiB in 1 MiB zones has three metadata zones of 1 MiB, room for some
# 3,000 files' records in a checkpoint. Creating empty files through the
# mount until it fails:
# - the failure is ENOSPC (never EIO: the filesystem does not shut down),
#   and df -i said about as many inodes were free at the start;
# - after it df -i shows no inode free, df still shows the free blocks;
#   once 500 files are removed df -i shows most of them free again;
# - the files made are there, a write and fsync of one still work, and once
#   500 are removed 450 can be made again (a removed file's inode stays
#   until the kernel forgets it, which it does when it likes);
# - everything is there after a remount, and fsck.foliofs -n is clean.
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

mkimg 64M --format posix --zone-size 1M
mnt
python3 - "$MNT" <<'PY' || fail "filling the metadata"
import errno, os, sys
mnt = sys.argv[1]
sv = os.statvfs(mnt)
free0 = sv.f_ffree
name = lambda i: os.path.join(mnt, "d", "a-file-of-some-name-length-%06d" % i)
os.mkdir(os.path.join(mnt, "d"))
n = 0
while True:
    try:
        os.close(os.open(name(n), os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError as e:
        if e.errno != errno.ENOSPC:
            sys.exit("FAIL: create %d: %s, want ENOSPC" % (n, e))
        break
    n += 1
    if n > 20000:
        sys.exit("FAIL: 20000 files and no ENOSPC")
print("# %d files made, df -i said %d free at the start" % (n, free0))
if not (free0 * 0.8 <= n <= free0 * 1.5):
    sys.exit("FAIL: %d files made, df -i said %d free" % (n, free0))
sv = os.statvfs(mnt)
if sv.f_ffree > 2 or sv.f_bfree < 8192:
    sys.exit("FAIL: after ENOSPC f_ffree %d (want 0-2), f_bfree %d" % (sv.f_ffree, sv.f_bfree))
fd = os.open(name(0), os.O_WRONLY)
os.write(fd, b"x" * 8192)
os.fsync(fd)
os.close(fd)
for i in range(n - 500, n):
    os.unlink(name(i))
sv = os.statvfs(mnt)
if sv.f_ffree < 300:
    sys.exit("FAIL: 500 files removed, df -i says %d free" % sv.f_ffree)
for i in range(n - 500, n - 50):
    os.close(os.open(name(i), os.O_CREAT | os.O_WRONLY, 0o644))
n -= 50
open(os.path.join(mnt, "count"), "w").write(str(n))
print("ok - ENOSPC at %d files, df -i honest, the filesystem goes on" % n)
PY
remount
python3 - "$MNT" <<'PY' || fail "after the remount"
import os, sys
mnt = sys.argv[1]
n = int(open(os.path.join(mnt, "count")).read())
names = sorted(os.listdir(os.path.join(mnt, "d")))
if len(names) != n:
    sys.exit("FAIL: %d files after the remount, want %d" % (len(names), n))
if open(os.path.join(mnt, "d", names[0]), "rb").read() != b"x" * 8192:
    sys.exit("FAIL: the file written at ENOSPC lost its data")
print("ok - %d files and the data written after ENOSPC kept through a remount" % n)
PY
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck.foliofs -n"; }
ok "fsck.foliofs -n clean"
exit 0
