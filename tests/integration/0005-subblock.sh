#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The sub-block rule for sequential files (src/fs/zonefs.c header): a sync
# write (O_SYNC, O_DSYNC, RWF_DSYNC) must end on a 4 KiB block (EINVAL, nothing
# written); a buffered append may end mid-block and its tail stays cached and
# readable; fsync/fdatasync then write every whole block and return EINVAL for
# the tail; a sync append that completes the tail block is accepted and makes
# all of it durable; an unmount with a tail pending warns and drops the tail
# (the size comes back rounded down to the block). Also: a sync 1 MiB write
# from a user buffer that does not start on a page is written whole (FUSE's
# requests of it stay block-aligned: see max_write in src/fuse/main.c).
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
"$FOLIOFS" -f -o max_folio=64K "$IMG" "$MNT" >"$W/mount.out" 2>&1 &
FG=$!
for i in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || fail "foreground mount did not come up"
MOUNTS+=("$MNT")
S=$MNT/seq/0
zf EINVAL pwrite "$S" 0 100 sync
zf EINVAL pwrite "$S" 0 100 dsync
zf EINVAL pwrite "$S" 0 100 rwf_dsync
expect_eq "nothing written" "$(fsize "$S")" 0
expect_eq "sync 6000 bytes: whole block only" "$($ZF pwrite "$S" 0 6000 sync 21)" "SHORT 4096"
expect_eq "size" "$(fsize "$S")" 4096
zf OK pwrite "$S" 4096 1904 buffered 21
expect_eq "buffered tail accepted" "$(fsize "$S")" 6000
zf OK check "$S" 0 6000 21
zf EINVAL fsync "$S"
zf EINVAL fdatasync "$S"
expect_eq "whole block written by fsync" "$($ZF xattr "$S" user.foliofs.zone | awk '$1=="wp"{print $2}')" 4096
zf OK check "$S" 0 6000 21
zf EINVAL pwrite "$S" 6000 100 sync
zf OK pwrite "$S" 6000 2192 sync 21
expect_eq "tail completed by a sync append" "$(fsize "$S")" 8192
expect_eq "wp" "$($ZF xattr "$S" user.foliofs.zone | awk '$1=="wp"{print $2}')" 8192
zf OK fsync "$S"
zf OK check "$S" 0 8192 21
zf OK pwrite "$S" 8192 5000 buffered 21
zf OK pwrite "$S" 13192 3192 buffered 21
expect_eq "buffered appends filling the block" "$(fsize "$S")" 16384
zf OK fsync "$S"
zf OK check "$S" 0 16384 21
zf OK pwrite "$S" 16384 100 buffered 21

note "unaligned user buffer, O_SYNC 1 MiB appends: never short (every request FUSE makes of it is block-aligned)"
S2=$MNT/seq/1
zf OK pwrite "$S2" 0 1M sync,unaligned 22
zf OK pwrite "$S2" 1M 1M dsync,unaligned 22
zf OK pwrite "$S2" 2M 1M rwf_dsync,unaligned 22
zf OK fill "$S2" 3M 3M 22 sync,unaligned 1M
expect_eq "size" "$(fsize "$S2")" $((6 << 20))
zf OK fsync "$S2"
zf OK check "$S2" 0 6M 22

note "unmount drops the tail with a warning"
fusermount3 -u "$MNT" || fail "unmount"
wait $FG
rc=$?
cat "$W/mount.out"
expect_eq "daemon exit status" "$rc" 0
grep -q "partial tail block of 100 bytes" "$W/mount.out" || fail "no warning about the dropped tail"
ok "warned about the dropped tail"
mnt
expect_eq "size rounded down to the block" "$(fsize "$S")" 16384
zf OK check "$S" 0 16384 21
zf OK check "$S2" 0 6M 22
umnt
echo "PASS $TNAME"
