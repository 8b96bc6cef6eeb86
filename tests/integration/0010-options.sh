#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Mount options, each on a real mount with data verified: cache_size and
# max_folio (a small cache under a larger working set), sync_mode=writeback,
# dirty_granularity=folio, kernel_cache (mmap works: read and shared-write
# on a conventional file, read on a sequential one), errors= (every value
# accepted), explicit-open (the zone is explicitly open while a file is open
# for writing and closed after), ro (no write, no truncate: EROFS; the image
# bytes unchanged).
. "$(dirname "$0")/lib.sh"
need fio

mkimg 512M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
V="--verify=crc32c --verify_fatal=1 --do_verify=1 --ioengine=psync --iomem_align=4k"

note "cache_size=4M,max_folio=256K: a 32 MiB working set through a 4 MiB cache"
mnt -o cache_size=4M,max_folio=256K
run_fio small-cache-seq --filename="$MNT/seq/0" $FIO_SEQ --rw=write --bs=64k --size=32m $V
run_fio small-cache-cnv --filename="$MNT/cnv/0" $FIO_CNV --rw=randwrite --bs=16k --size=32m \
	--io_size=8m $V
cached=$(stat_val cache_cached_bytes)
[ "$cached" -le $((4 << 20)) ] || fail "cache holds $cached bytes, budget 4 MiB"
ok "cache within its budget ($cached bytes), $(stat_val cache_reclaims) reclaims"
umnt

note "sync_mode=writeback, dirty_granularity=folio (on seq files too: the folio's blocks below the pointer are skipped)"
for o in sync_mode=writeback dirty_granularity=folio sync_mode=writeback,dirty_granularity=folio; do
	mnt -o $o
	run_fio "$o-seq" --filename="$MNT/seq/1" $FIO_SEQ --rw=write --bs=4k --size=2m --sync=sync $V
	run_fio "$o-seq-buffered" --filename="$MNT/seq/4" $FIO_SEQ --rw=write --bs=64k --size=4m $V
	expect_eq "still writable" "$(stat_val read_only)" 0
	run_fio "$o-cnv" --filename="$MNT/cnv/0" $FIO_CNV --rw=randwrite --bs=4k --size=16m \
		--io_size=2m --sync=dsync $V
	run_fio "$o-cnv-buffered" --filename="$MNT/cnv/0" $FIO_CNV --rw=randwrite --bs=4k --offset=32m --size=16m \
		--io_size=2m $V
	zf OK truncate "$MNT/seq/1" 0
	zf OK truncate "$MNT/seq/4" 0
	umnt
done

note "kernel_cache: mmap"
mnt -o kernel_cache
zf OK fill "$MNT/seq/2" 0 256K 5 sync
zf OK mmap "$MNT/seq/2" 0 256K 5
zf OK mmap "$MNT/cnv/0" 1M 64K 6 write
zf OK fsync "$MNT/cnv/0"
zf OK check "$MNT/cnv/0" 1M 64K 6
run_fio kernel-cache-seq --filename="$MNT/seq/3" $FIO_SEQ --rw=write --bs=4k --size=2m --sync=sync $V
umnt
mnt
zf OK check "$MNT/cnv/0" 1M 64K 6
zf OK check "$MNT/seq/2" 0 256K 5
umnt

note "errors="
for e in remount-ro zone-ro zone-offline repair; do
	mnt -o errors=$e
	zf OK fill "$MNT/seq/4" $(( $(fsize "$MNT/seq/4") )) 4K 7 sync
	umnt
done
ok "every errors= value mounts and writes"

note "explicit-open"
mnt -o explicit-open
cond() { $ZF xattr "$1" user.foliofs.zone | awk '$1 == "cond" { print $2 }'; }
expect_eq "closed zone before open" "$(cond "$MNT/seq/1")" empty
exec 7>>"$MNT/seq/1"
expect_eq "open for writing: exp-open" "$(cond "$MNT/seq/1")" exp-open
zf OK fill "$MNT/seq/1" 0 64K 8 sync
exec 7>&-
# the kernel sends RELEASE asynchronously after the last close: wait for it,
# up to 10 s, for the zone to be closed
for ((i = 0; i < 200; i++)); do
	c=$(cond "$MNT/seq/1")
	[ "$c" = closed ] && break
	sleep 0.05
done
expect_eq "zone condition after the last writer closed" "$c" closed
zf OK check "$MNT/seq/1" 0 64K 8
umnt

note "ro"
sha0=$($ZF sha "$IMG")
mnt -o ro
zf EROFS pwrite "$MNT/seq/0" "$(fsize "$MNT/seq/0")" 4096 sync
zf EROFS open "$MNT/cnv/0" wronly
zf EROFS truncate "$MNT/seq/0" 0
zf OK check "$MNT/seq/2" 0 256K 5
expect_eq "stats read_only" "$(stat_val read_only)" 1
grep -E " $MNT " /proc/mounts | grep -q '[ ,]ro[ ,]' || fail "not ro in /proc/mounts: $(grep " $MNT " /proc/mounts)"
ok "ro in /proc/mounts"
umnt
expect_eq "image unchanged by a ro mount" "$($ZF sha "$IMG")" "$sha0"

# FUSE's own max_read: libfuse 3.14 fails the INIT unless the daemon repeats
# it, and the mount must not report success for a mount that then died
note "max_read (FUSE's option)"
mnt -o max_read=65536
grep -E " $MNT " /proc/mounts | grep -q 'max_read=65536' ||
	fail "max_read not in /proc/mounts: $(grep " $MNT " /proc/mounts)"
zf OK check "$MNT/seq/2" 0 256K 5
ok "mounted with max_read=65536, reads served"
umnt
echo "PASS $TNAME"
