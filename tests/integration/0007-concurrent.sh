#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Several writers on several zones at once, in one fio run: O_SYNC and
# buffered appends to six sequential files, O_DSYNC random writes to two
# conventional files, plus two readers of a file filled beforehand; all with
# crc32c verify; zone order held (no zone queue errors), and the data is the
# same after a remount.
. "$(dirname "$0")/lib.sh"
need fio

mkimg 1G --format zonefs --emulate-zoned --conv-zones 3 --zone-size 64M
mnt
zf OK fill "$MNT/seq/7" 0 8M 41 sync 1M
cat >"$W/jobs.fio" <<JOBS
[global]
ioengine=psync
iomem_align=4k
verify=crc32c
verify_fatal=1
do_verify=1
verify_state_save=0
unlink=0
fallocate=none
allow_file_create=0
JOBS
for i in 0 1 2; do
	printf '[seq%s-sync]\nfilename=%s\ncreate_on_open=0\nfile_append=1\nrw=write\nbs=16k\nsize=8m\nsync=sync\n' \
		$i "$MNT/seq/$i" >>"$W/jobs.fio"
done
for i in 3 4 5; do
	printf '[seq%s-buffered]\nfilename=%s\ncreate_on_open=0\nfile_append=1\nrw=write\nbs=128k\nsize=16m\nend_fsync=1\n' \
		$i "$MNT/seq/$i" >>"$W/jobs.fio"
done
for i in 0 1; do
	printf '[cnv%s-dsync]\nfilename=%s\nrw=randwrite\nbs=4k\nsize=64m\nio_size=4m\nsync=dsync\n' \
		$i "$MNT/cnv/$i" >>"$W/jobs.fio"
done
for i in 0 1; do
	printf '[reader%s]\nfilename=%s\nrw=randread\nbs=4k\nsize=8m\nio_size=8m\ndo_verify=0\nverify=0\n' \
		$i "$MNT/seq/7" >>"$W/jobs.fio"
done
(cd "$W" && fio --output="$W/fio.out" "$W/jobs.fio") || { cat "$W/fio.out"; fail "fio"; }
grep -qE 'err= *[1-9]' "$W/fio.out" && { cat "$W/fio.out"; fail "a fio job reported an error"; }
ok "10 concurrent jobs with verify"
for i in 0 1 2; do expect_eq "seq/$i size" "$(fsize "$MNT/seq/$i")" $((8 << 20)); done
for i in 3 4 5; do expect_eq "seq/$i size" "$(fsize "$MNT/seq/$i")" $((16 << 20)); done
expect_eq "zone queue errors" "$(stat_val zoneq_errors)" 0
expect_eq "device write errors" "$(stat_val dev_write_errors)" 0
zf OK check "$MNT/seq/7" 0 8M 41
sums=$(for f in "$MNT"/seq/[0-7] "$MNT"/cnv/[01]; do $ZF sha "$f"; done)
remount
expect_eq "checksums after remount" "$(for f in "$MNT"/seq/[0-7] "$MNT"/cnv/[01]; do $ZF sha "$f"; done)" "$sums"
umnt
echo "PASS $TNAME"
