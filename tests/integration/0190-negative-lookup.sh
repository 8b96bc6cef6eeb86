#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Names that do not exist, as the kernel caches them (negative entries):
# - a name looked up and missing is asked of the daemon once, not at every
#   stat or open: SQLite looks for its hot journal at every transaction, a
#   compiler or an interpreter probes many paths that are not there (counted
#   by the daemon in user.foliofs.stats), on the posix and zonefs formats;
# - every way of making that name through the mount shows it at once:
#   create, mkdir, symlink, mknod, link, rename (also RENAME_NOREPLACE),
#   and the whiteout a RENAME_WHITEOUT leaves at the old name; removing it
#   makes it missing again; another user and a path through another
#   directory fd see the same; all of it after a remount too.
. "$(dirname "$0")/lib.sh"
need runuser

lookups() { stat_val fuse_lookup; }

# misses PATH N: N stats of a missing PATH; prints the FUSE lookups they took
misses() {
	local before after
	before=$(lookups)
	python3 - "$1" "$2" <<'EOF' || fail "stat of a missing name"
import os, sys
for _ in range(int(sys.argv[2])):
    try:
        os.stat(sys.argv[1])
        sys.exit("FAIL: %s exists" % sys.argv[1])
    except FileNotFoundError:
        pass
EOF
	after=$(lookups)
	echo $((after - before))
}

# --- posix ---
mkimg 512M --format posix
mnt
mkdir "$MNT/d" || fail mkdir
echo other >"$MNT/d/other" || fail "create other"
n=$(misses "$MNT/d/missing" 200)
note "200 stats of a missing name: $n FUSE lookups"
((n <= 2)) || fail "200 stats of a missing name took $n lookups (a negative entry is not cached)"
ok "a missing name is looked up once: $n lookups for 200 stats"

# each change below runs after a stat has cached the name as missing
gone() { [ ! -e "$MNT/d/x" ] && [ ! -L "$MNT/d/x" ] || fail "d/x still there after $1"; }
cache_missing() { misses "$MNT/d/x" 3 >/dev/null; }

cache_missing
echo made >"$MNT/d/x" || fail "create over a cached missing name"
expect_eq "create: content" "$(cat "$MNT/d/x")" made
rm "$MNT/d/x" && gone unlink
cache_missing
mkdir "$MNT/d/x" || fail "mkdir over a cached missing name"
[ -d "$MNT/d/x" ] || fail "mkdir: d/x is not a directory"
rmdir "$MNT/d/x" && gone rmdir
cache_missing
ln -s target "$MNT/d/x" || fail "symlink over a cached missing name"
expect_eq "symlink: target" "$(readlink "$MNT/d/x")" target
rm "$MNT/d/x" && gone "unlink of a symlink"
cache_missing
mkfifo "$MNT/d/x" || fail "mknod over a cached missing name"
[ -p "$MNT/d/x" ] || fail "mknod: d/x is not a fifo"
rm "$MNT/d/x" && gone "unlink of a fifo"
cache_missing
ln "$MNT/d/other" "$MNT/d/x" || fail "link over a cached missing name"
expect_eq "link: same inode" "$(stat -c %i "$MNT/d/x")" "$(stat -c %i "$MNT/d/other")"
rm "$MNT/d/x" && gone "unlink of a link"
cache_missing
misses "$MNT/d/other2" 3 >/dev/null
mv "$MNT/d/other" "$MNT/d/x" || fail "rename onto a cached missing name"
expect_eq "rename: content" "$(cat "$MNT/d/x")" other
[ ! -e "$MNT/d/other" ] || fail "rename: the old name is still there"
python3 - "$MNT/d" <<'EOF' || fail "renameat2"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
NOREPLACE, WHITEOUT = 1, 4
d = sys.argv[1]

def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)

# RENAME_NOREPLACE onto a name cached as missing
try:
    os.stat(d + "/other2")
    sys.exit("FAIL: other2 exists")
except FileNotFoundError:
    pass
renameat2(d + "/x", d + "/other2", NOREPLACE)
if open(d + "/other2").read() != "other\n":
    sys.exit("FAIL: RENAME_NOREPLACE: content")
# the whiteout left at a name that was cached as missing before it was made
for _ in range(3):
    try:
        os.stat(d + "/x")
        sys.exit("FAIL: x exists")
    except FileNotFoundError:
        pass
open(d + "/x", "w").write("w\n")
renameat2(d + "/x", d + "/w", WHITEOUT)
st = os.lstat(d + "/x")
import stat
if not stat.S_ISCHR(st.st_mode) or st.st_rdev != 0:
    sys.exit("FAIL: RENAME_WHITEOUT: x is not a 0/0 character device: %o" % st.st_mode)
os.unlink(d + "/x")
os.rename(d + "/other2", d + "/other")
EOF
ok "create, mkdir, symlink, mknod, link, rename, RENAME_NOREPLACE and a whiteout show over a cached missing name"

# another directory fd and another user see the same names
cache_missing
chmod 0777 "$MNT/d"
python3 - "$MNT/d" <<'EOF' || fail "openat through a directory fd"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
try:
    os.stat("x", dir_fd=fd)
    sys.exit("FAIL: x exists")
except FileNotFoundError:
    pass
f = os.open("x", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=fd)
os.write(f, b"via dirfd\n")
os.close(f)
EOF
expect_eq "made through a directory fd, read by path" "$(cat "$MNT/d/x")" "via dirfd"
runuser -u nobody -- rm -f "$MNT/d/x" || fail "rm as nobody"
[ ! -e "$MNT/d/x" ] || fail "d/x still there after nobody removed it"
runuser -u nobody -- sh -c "echo nobody >'$MNT/d/x'" || fail "create as nobody"
expect_eq "made by another user" "$(cat "$MNT/d/x")" nobody
rm "$MNT/d/x"

# and after a remount: the names as they were left
cache_missing
remount
[ ! -e "$MNT/d/x" ] || fail "d/x after a remount"
expect_eq "other after a remount" "$(cat "$MNT/d/other")" other
[ -e "$MNT/d/w" ] || fail "w after a remount"
echo again >"$MNT/d/x" || fail "create after a remount"
expect_eq "made after a remount" "$(cat "$MNT/d/x")" again
umnt
fsck_rc 0 -n "$IMG"

# --- zonefs ---
mkimg 1G --format zonefs --emulate-zoned --conv-zones 1 --zone-size 64M
mnt
n=$(misses "$MNT/seq/999" 200)
note "zonefs: 200 stats of a missing name: $n FUSE lookups"
((n <= 2)) || fail "zonefs: 200 stats of a missing name took $n lookups"
[ -e "$MNT/seq/0" ] || fail "zonefs: seq/0 missing"
ok "zonefs: a missing name is looked up once: $n lookups for 200 stats"
umnt
