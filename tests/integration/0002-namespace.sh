#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Nothing can be created, removed, renamed or linked, with kernel zonefs's
# errnos (its directories have only lookup and setattr, so the VFS answers):
# open(O_CREAT) of a new name EACCES, mkdir/mknod/unlink/rmdir/rename/link/
# symlink EPERM; O_CREAT on an existing file opens it, O_EXCL gives EEXIST.
# chmod/chown of files work (not persisted across mounts), chmod adding write
# bits on a directory EPERM, without them allowed; xattrs other than foliofs's
# ENODATA, setxattr refused.
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt
tree0=$(ls -lR "$MNT")
zf EACCES open "$MNT/seq/new" wronly,creat
zf EACCES open "$MNT/new" wronly,creat
zf OK open "$MNT/seq/0" wronly,creat
zf EEXIST open "$MNT/seq/0" wronly,creat,excl
zf EPERM mkdir "$MNT/d"
zf EPERM mkdir "$MNT/seq/d"
zf EPERM mknod "$MNT/seq/n"
zf EPERM mkfifo "$MNT/seq/f"
zf EPERM unlink "$MNT/seq/0"
zf EPERM unlink "$MNT/cnv/0"
zf EPERM rmdir "$MNT/seq"
zf EPERM rename "$MNT/seq/0" "$MNT/seq/9"
zf EPERM rename "$MNT/seq/0" "$MNT/seq/1"
zf EPERM rename "$MNT/seq" "$MNT/sq"
zf EPERM link "$MNT/seq/0" "$MNT/seq/9"
zf EPERM symlink 0 "$MNT/seq/9"
zf EISDIR open "$MNT/seq" wronly
[ "$(ls -lR "$MNT")" = "$tree0" ] || fail "the tree changed: $(ls -lR "$MNT")"
ok "tree unchanged"

note "attributes"
zf OK chmod "$MNT/seq/1" 600
expect_eq "chmod seq/1" "$(stat -c %a "$MNT/seq/1")" 600
zf OK chown "$MNT/seq/1" 42 43
expect_eq "chown seq/1" "$(stat -c '%u %g' "$MNT/seq/1")" "42 43"
zf EPERM chmod "$MNT/seq" 755
zf OK chmod "$MNT/seq" 500
expect_eq "chmod seq dir" "$(stat -c %a "$MNT/seq")" 500
zf OK chmod "$MNT/seq" 555
zf ENODATA xattr "$MNT/seq/0" user.other
zf ENODATA xattr "$MNT/seq/0" user.foliofs.stats
expect_eq "listxattr root" "$($ZF listxattr "$MNT")" user.foliofs.stats
expect_eq "listxattr file" "$($ZF listxattr "$MNT/seq/0")" user.foliofs.zone
expect_eq "listxattr dir" "$($ZF listxattr "$MNT/seq")" ""
zf ENOTSUP setxattr "$MNT/seq/0" user.x
remount
expect_eq "modes not persisted (as zonefs)" "$(stat -c '%a %u %g' "$MNT/seq/1")" "640 0 0"
umnt
echo "PASS $TNAME"
