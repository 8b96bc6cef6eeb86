#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# -o kernel_cache and shared mmap. A sequential file cannot take a writable
# MAP_SHARED mapping (its pages would be written back out of order, or not at
# all): the mmap fails (ENODEV, as the kernel refuses a shared mapping of a
# direct-I/O file) instead of succeeding and losing the data. Read-only
# opens of it keep the page cache, so a read-only shared mapping works. A
# conventional file takes a writable shared mapping; its pages, written
# back by the kernel at munmap with no msync and the file already closed,
# are on the device when umount returns: a power cut right after (kill -9,
# ff-cut dropping every non-durable write) keeps them.
. "$(dirname "$0")/lib.sh"
need fio flock
CUT=$FOLIOFS_BUILD/tests/crash/ff-cut
[ -x "$CUT" ] || skip "build $CUT first"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
FOLIOFS_FAULT="vlog=$W/vlog" mnt -o kernel_cache
zf OK fill "$MNT/seq/0" 0 256K 5 sync
zf ENODEV mmap "$MNT/seq/0" 0 256K 5 write
zf ENODEV mmap "$MNT/seq/0" 0 256K 5 write-unmap
zf OK mmap "$MNT/seq/0" 0 256K 5
expect_eq "seq/0 size" "$(fsize "$MNT/seq/0")" $((256 << 10))
note "fio's mmap engine on a full sequential file fails instead of writing nothing"
zf OK fill "$MNT/seq/1" 0 64M 6 buffered
fio --name=mmap-seq --filename="$MNT/seq/1" --ioengine=mmap --rw=write --bs=64k --size=64m \
	--allow_file_create=0 --unlink=0 --fallocate=none --output="$W/fio.out" &&
	{ cat "$W/fio.out"; fail "fio --ioengine=mmap on seq/1 succeeded"; }
ok "fio --ioengine=mmap on seq/1 refused"
zf OK check "$MNT/seq/1" 0 64M 6
zf OK mmap "$MNT/cnv/0" 1M 64K 7 write
zf OK check "$MNT/cnv/0" 1M 64K 7
# power_cut: kill -9 the daemon (after an unmount it may be gone already),
# wait for its ring to go (the image lock goes with it), then drop every
# write that was not durable.
power_cut() {
	local pid
	pid=$(daemon_pids "$IMG")
	[ -n "$pid" ] && kill -9 $pid
	for ((i = 0; i < 100; i++)); do
		flock -xn "$IMG" true && break
		sleep 0.1
	done
	mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
	"$CUT" "$IMG" "$W/vlog" 1 0 >"$W/cut.out" || fail "ff-cut: $(cat "$W/cut.out")"
	note "power cut: $(cat "$W/cut.out")"
}
note "munmap of a written shared mapping, no msync, file closed before: durable when munmap returns"
zf OK mmap "$MNT/cnv/0" 2M 256K 8 write-unmap
power_cut
FOLIOFS_FAULT="vlog=$W/vlog" mnt -o kernel_cache
zf OK check "$MNT/cnv/0" 1M 64K 7
zf OK check "$MNT/cnv/0" 2M 256K 8
zf OK check "$MNT/seq/0" 0 256K 5
zf OK check "$MNT/seq/1" 0 64M 6
note "and after umount"
zf OK mmap "$MNT/cnv/0" 4M 1M 9 write-unmap
[ -n "$(daemon_pids "$IMG")" ] || fail "no daemon pid"
umount "$MNT" || fail "umount"
power_cut
mnt
zf OK check "$MNT/cnv/0" 2M 256K 8
zf OK check "$MNT/cnv/0" 4M 1M 9
umnt
echo "PASS $TNAME"
