#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Sequential zone files, rule by rule, with kernel zonefs's errnos: writes
# only at the write pointer (EINVAL elsewhere, O_APPEND goes there), a write
# starting at or past the capacity EFBIG and one crossing it short; misaligned
# O_DIRECT EINVAL; truncate to 0 resets the zone, to the capacity finishes it
# (size = capacity, then EFBIG), any other size EPERM; open(O_TRUNC) resets;
# read-only opens cannot write (EBADF); reads stop at the write pointer.
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
CAP=$((64 << 20))
mnt
S=$MNT/seq/0
zf OK pwrite "$S" 0 8192 sync
expect_eq "size after 8K" "$(fsize "$S")" 8192
zf EINVAL pwrite "$S" 0 4096 sync
zf EINVAL pwrite "$S" 4096 4096 sync
zf EINVAL pwrite "$S" 16384 4096 sync
zf EINVAL pwrite "$S" 16384 4096
zf EINVAL pwrite "$S" 0 4096
zf OK pwrite "$S" 8192 4096 dsync
zf OK pwrite "$S" 12288 4096 rwf_dsync
zf OK pwrite "$S" 16384 4096 direct
zf EINVAL pwrite "$S" 20480 100 direct
zf OK fill "$S" 20480 4096 1 append
expect_eq "O_APPEND lands at the write pointer" "$(fsize "$S")" 24576
zf OK check "$S" 0 24576 1
expect_eq "read past the write pointer" "$($ZF read "$S" 24576 4096)" 0
expect_eq "read across the write pointer" "$($ZF read "$S" 20480 8192)" 4096

zf OK fsync "$S" rdonly

note "capacity"
zf OK truncate "$S" 0
expect_eq "truncate 0 resets" "$(fsize "$S")" 0
expect_eq "zone empty" "$($ZF xattr "$S" user.foliofs.zone | awk '$1=="cond"{print $2}')" empty
zf EFBIG pwrite "$S" $CAP 4096 sync
zf EFBIG pwrite "$S" $((CAP + 4096)) 4096
zf OK fill "$S" 0 $((CAP - 4096)) 3 buffered 1M
zf OK fsync "$S"
expect_eq "size at cap-4K" "$(fsize "$S")" $((CAP - 4096))
expect_eq "a write crossing the capacity is short" "$($ZF pwrite "$S" $((CAP - 4096)) 8192 sync)" "SHORT 4096"
expect_eq "size = capacity" "$(fsize "$S")" $CAP
zf EFBIG pwrite "$S" $CAP 4096 sync
zf OK check "$S" 0 $((CAP - 4096)) 3
expect_eq "zone full" "$($ZF xattr "$S" user.foliofs.zone | awk '$1=="cond"{print $2}')" full

note "truncate"
S1=$MNT/seq/1
zf OK fill "$S1" 0 1M 5 sync
zf EPERM truncate "$S1" 4096
zf EPERM truncate "$S1" 1M
zf EPERM truncate "$S1" $((CAP + 4096))
zf EPERM truncate "$S1" $((CAP - 4096))
expect_eq "size kept" "$(fsize "$S1")" 1048576
zf OK truncate "$S1" $CAP
expect_eq "truncate to capacity finishes" "$(fsize "$S1")" $CAP
expect_eq "zone finished" "$($ZF xattr "$S1" user.foliofs.zone | awk '$1=="cond"{print $2}')" full
zf EFBIG pwrite "$S1" $CAP 4096 sync
zf OK check "$S1" 0 1M 5
expect_eq "finished zone reads zeros after the data" "$($ZF nonzero "$S1" 1M 1M)" 0
zf OK truncate "$S1" $CAP
zf OK ftruncate "$S1" 0
expect_eq "ftruncate 0" "$(fsize "$S1")" 0
zf OK fill "$S1" 0 64K 6 sync
zf OK open "$S1" wronly,trunc
expect_eq "O_TRUNC resets" "$(fsize "$S1")" 0
zf OK fill "$S1" 0 64K 8 dsync
zf OK truncate "$S1" 0
zf OK truncate "$S1" 0

note "after remount"
remount
expect_eq "seq/0 full" "$(fsize "$S")" $CAP
zf OK check "$S" 0 $((CAP - 4096)) 3
expect_eq "seq/1 empty" "$(fsize "$S1")" 0
umnt

note "the device is the metadata: zones changed while unmounted"
DEVTOOL=$FOLIOFS_BUILD/src/cli/foliofs-dev
"$DEVTOOL" finish "$IMG" 3 >/dev/null || fail "foliofs-dev finish"
"$DEVTOOL" reset "$IMG" 2 >/dev/null || fail "foliofs-dev reset"
mnt
expect_eq "seq/1 (zone 3) finished outside: size = capacity" "$(fsize "$S1")" $CAP
expect_eq "seq/0 (zone 2) reset outside: size 0" "$(fsize "$S")" 0
zf OK fill "$S" 0 64K 9 sync
umnt
echo "PASS $TNAME"
