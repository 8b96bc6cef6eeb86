#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The tree as kernel zonefs shows it: root holds cnv/ and seq/ (no cnv/ when
# there are no conventional zones besides zone 0), one file per zone named by
# index, zone 0 hidden; directories 0555 root:root, files 0640 root:root unless
# mkfs --perm/--uid/--gid; sizes: cnv = capacity, seq = write pointer; inode
# numbers = zone index; timestamps = mount time, not 1970; --aggr-cnv gives
# one cnv/0 for all conventional zones; statfs counts as the kernel does.
. "$(dirname "$0")/lib.sh"

mkimg 512M --format zonefs --emulate-zoned --conv-zones 3 --zone-size 64M  # 7 zones (the emulation keeps a tail)
before=$(date +%s)
mnt
expect_eq "root entries" "$(ls "$MNT" | tr '\n' ' ')" "cnv seq "
expect_eq "cnv entries" "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 1 "
expect_eq "seq entries" "$(ls -v "$MNT/seq" | tr '\n' ' ')" "0 1 2 3 "
expect_eq "root mode" "$(stat -c '%a %U %G %F' "$MNT")" "555 root root directory"
expect_eq "cnv mode" "$(stat -c '%a %U %G %h' "$MNT/cnv")" "555 root root 2"
expect_eq "seq mode" "$(stat -c '%a %U %G %h' "$MNT/seq")" "555 root root 2"
expect_eq "root nlink" "$(stat -c %h "$MNT")" 4
expect_eq "seq dir size" "$(stat -c %s "$MNT/seq")" 4
expect_eq "cnv/0" "$(stat -c '%a %U %G %s %i %F' "$MNT/cnv/0")" "640 root root 67108864 1 regular file"
expect_eq "cnv/1 ino" "$(stat -c %i "$MNT/cnv/1")" 2
expect_eq "seq/0" "$(stat -c '%a %U %G %s %i %F' "$MNT/seq/0")" "640 root root 0 3 regular empty file"
expect_eq "seq/3 ino" "$(stat -c %i "$MNT/seq/3")" 6
for f in "$MNT" "$MNT/seq" "$MNT/cnv/0" "$MNT/seq/3"; do
	t=$(stat -c %Y "$f")
	[ "$t" -ge $((before - 5)) ] || fail "$f mtime $t is not the mount time (>= $before)"
	c=$(stat -c %Z "$f")
	[ "$c" -ge $((before - 5)) ] || fail "$f ctime $c is not the mount time"
done
ok "timestamps are the mount time"
expect_eq "no seq/4" "$(ls "$MNT/seq/4" 2>&1 >/dev/null | grep -c 'No such file')" 1
expect_eq "no seq/00" "$($ZF read "$MNT/seq/00" 0 1)" ENOENT
expect_eq "no seq/x" "$($ZF read "$MNT/seq/x" 0 1)" ENOENT
expect_eq "seq/0/x" "$($ZF read "$MNT/seq/0/x" 0 1)" ENOTDIR
# statfs: blocks = all file capacities, free = room left in seq zones
read -r bs blocks bfree files < <(stat -f -c '%S %b %f %c' "$MNT")
expect_eq "statfs bsize" "$bs" 4096
expect_eq "statfs blocks" "$blocks" $((6 * 64 * 256))
expect_eq "statfs free" "$bfree" $((4 * 64 * 256))
expect_eq "statfs files (kernel: files + 1 per group)" "$files" 8
$ZF fill "$MNT/seq/1" 0 1M 7 sync >/dev/null
expect_eq "statfs free after 1M" "$(stat -f -c %f "$MNT")" $((4 * 64 * 256 - 256))
umnt

note "mkfs --uid --gid --perm --aggr-cnv"
mkimg 512M --format zonefs --emulate-zoned --conv-zones 3 --zone-size 64M --uid 1234 --gid 567 --perm 604 --aggr-cnv
mnt
expect_eq "aggregated cnv entries" "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 "
expect_eq "aggregated cnv/0" "$(stat -c '%a %u %g %s %i' "$MNT/cnv/0")" "604 1234 567 134217728 1"
expect_eq "seq/0 owner" "$(stat -c '%a %u %g' "$MNT/seq/0")" "604 1234 567"
expect_eq "dirs stay root 0555" "$(stat -c '%a %u %g' "$MNT/seq")" "555 0 0"
umnt

note "one conventional zone (the superblock's): no cnv/"
mkimg 256M --format zonefs --emulate-zoned --conv-zones 1 --zone-size 64M
mnt
expect_eq "root entries" "$(ls "$MNT" | tr '\n' ' ')" "seq "
expect_eq "root nlink" "$(stat -c %h "$MNT")" 3
expect_eq "cnv lookup" "$($ZF read "$MNT/cnv" 0 1)" ENOENT
umnt

note "no --emulate-zoned: every zone conventional"
mkimg 256M --format zonefs --zone-size 64M
mnt
expect_eq "cnv entries (3 zones, zone 0 hidden)" "$(ls "$MNT/cnv" | tr "\n" " ")" "0 1 "
expect_eq "seq entries" "$(ls "$MNT/seq" | wc -l)" 0
umnt
echo "PASS $TNAME"
