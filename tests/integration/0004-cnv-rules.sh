#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Conventional zone files: fixed size (truncate to anything EPERM, even to the
# same size), random writes anywhere below the capacity in every mode,
# including unaligned sub-block O_DIRECT|O_DSYNC (pg_test_fsync does that), a
# write at the capacity EFBIG and one crossing it short; the data survives a
# remount. O_APPEND writes EINVAL (as the kernel: no end to append at).
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 3 --zone-size 64M
CAP=$((64 << 20))
mnt
C=$MNT/cnv/0
zf EPERM truncate "$C" 0
zf EPERM truncate "$C" $CAP
zf EPERM truncate "$C" 4096
zf EPERM open "$C" wronly,trunc
expect_eq "size fixed" "$(fsize "$C")" $CAP
zf EINVAL fill "$C" 0 4K 1 append
zf EINVAL fill "$C" 0 4K 1 append,sync
zf OK fill "$C" 1M 64K 11 sync 4K
zf OK fill "$C" 0 64K 12 dsync 4K
zf OK fill "$C" 8M 128K 13 rwf_dsync 8K
zf OK fill "$C" 4M 1M 14 buffered 1M
zf OK fill "$C" 16789012 1000 15 direct,dsync 1000
zf OK fill "$C" 20M 3000 16 direct,sync 100
zf OK fill "$C" 30M 2M 17 unaligned,sync 1M
zf OK fill "$C" $((CAP - 4096)) 4096 18 sync
zf EFBIG pwrite "$C" $CAP 4096 sync
zf EFBIG pwrite "$C" $CAP 4096
expect_eq "a write crossing the capacity is short" "$($ZF pwrite "$C" $((CAP - 100)) 4096 dsync)" "SHORT 100"
# everything the writes above put in the file, by seed
check_written() {
	zf OK check "$C" 1M 64K 11
	zf OK check "$C" 0 64K 12
	zf OK check "$C" 8M 128K 13
	zf OK check "$C" 4M 1M 14
	zf OK check "$C" 16789012 1000 15
	zf OK check "$C" 20M 3000 16
	zf OK check "$C" 30M 2M 17
	zf OK check "$C" $((CAP - 4096)) 3996 18
}
check_written
zf OK fsync "$C"
expect_eq "read at capacity" "$($ZF read "$C" $CAP 4096)" 0
remount
check_written
expect_eq "untouched space reads zeros" "$($ZF nonzero "$C" 40M 1M)" 0
umnt
echo "PASS $TNAME"
