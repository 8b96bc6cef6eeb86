#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# fio with --verify=crc32c through the mount, on both zone kinds: sequential
# appends with O_SYNC, O_DSYNC and buffered (+ final fsync) at 4 KiB, 64 KiB
# and 1 MiB; conventional random writes with O_SYNC, O_DSYNC and buffered;
# then reads of just-written buffered data before any fsync; then every file
# re-verified by fio after unmount and remount. (fio 3.33 has no per-call
# RWF_DSYNC; zf.py's rwf_dsync covers it in 0003/0004/0005/0009.)
. "$(dirname "$0")/lib.sh"
need fio

mkimg 1200M --format zonefs --emulate-zoned --conv-zones 4 --zone-size 64M
mnt
# page-aligned buffers: FUSE splits a write at the user buffer's pages, and a
# mid-block piece of a sync append comes back short, which fio 3.33 mishandles
# with file_append (it drops the remainder of the last write)
V="--verify=crc32c --verify_fatal=1 --do_verify=1 --ioengine=psync --iodepth=1 --iomem_align=4k"
i=0
for sync in sync dsync none; do
	for bs in 4k 64k 1m; do
		size=8m
		[ $bs = 4k ] && size=4m
		extra=""
		[ $sync = none ] && extra="--end_fsync=1"
		run_fio "seq$i-$sync-$bs" --filename="$MNT/seq/$i" $FIO_SEQ --rw=write --bs=$bs \
			--size=$size --sync=$sync $extra $V
		expect_eq "seq/$i size" "$(fsize "$MNT/seq/$i")" $(( ${size%m} << 20 ))
		i=$((i + 1))
	done
done
c=0
for sync in sync dsync none; do
	run_fio "cnv$c-$sync" --filename="$MNT/cnv/$c" $FIO_CNV --rw=randwrite --bs=4k --size=64m \
		--io_size=4m --randrepeat=0 --norandommap=0 --sync=$sync $V
	c=$((c + 1))
done
run_fio "cnv0-buffered-unaligned-bs" --filename="$MNT/cnv/0" $FIO_CNV --rw=randwrite --bs=6000 \
	--offset=32m --size=8m --sync=none $V

note "reads of just-written buffered data, before any fsync"
run_fio "seq9-buffered-read-own" --filename="$MNT/seq/9" $FIO_SEQ --rw=write --bs=64k --size=4m \
	--sync=none $V
zf OK fill "$MNT/seq/10" 0 3M 31 buffered 64K
zf OK pwrite "$MNT/seq/10" 3M 1000 buffered 31
zf OK check "$MNT/seq/10" 0 3146728 31

note "remount: every file verifies again"
zf EINVAL fsync "$MNT/seq/10"
sha_before=$(for f in "$MNT"/seq/[0-9] "$MNT"/cnv/[0-2]; do $ZF sha "$f"; done | sha256sum)
remount
i=0
for sync in sync dsync none; do
	for bs in 4k 64k 1m; do
		size=8m
		[ $bs = 4k ] && size=4m
		run_fio "reverify-seq$i" --filename="$MNT/seq/$i" --readwrite=write --bs=$bs --size=$size \
			$FIO_CNV --file_append=0 --verify_only --verify=crc32c --verify_fatal=1
		i=$((i + 1))
	done
done
zf OK check "$MNT/seq/10" 0 3M 31
expect_eq "seq/10: the partial tail was dropped" "$(fsize "$MNT/seq/10")" 3145728
sha_after=$(for f in "$MNT"/seq/[0-9] "$MNT"/cnv/[0-2]; do $ZF sha "$f"; done | sha256sum)
expect_eq "checksums of all files across remount" "$sha_after" "$sha_before"
umnt
echo "PASS $TNAME"
