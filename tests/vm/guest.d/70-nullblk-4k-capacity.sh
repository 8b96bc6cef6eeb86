# SPDX-License-Identifier: GPL-2.0-or-later
# A second device: 4096-byte logical blocks, zone capacity (48 MiB) below
# the zone size (64 MiB), and at most 2 open zones (4 writers go beyond). foliofs: sizes stop at the capacity (EFBIG after),
# O_SYNC appends fill a zone, zero write errors; the kernel's zonefs sees the
# same files, sizes and contents, and foliofs reads what the kernel appends.
. /foliofs/guest-lib.sh
have foliofs && have mkfs.foliofs && have fio || { skip nullblk-4k "foliofs or fio missing"; exit 0; }
[ -c /dev/fuse ] || { skip nullblk-4k "no /dev/fuse"; exit 0; }
rmmod null_blk || { fail nullblk-4k "rmmod null_blk"; exit 1; }
insmod /lib/modules/null_blk.ko zoned=1 zone_size=64 zone_capacity=48 zone_nr_conv=2 gb=1 \
	memory_backed=1 bs=4096 zone_max_open=2 || { fail nullblk-4k "null_blk.ko with bs=4096 zone_capacity=48"; exit 1; }
i=0
while [ ! -b $DEV ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
lbs=$(cat /sys/block/nullb0/queue/logical_block_size)
[ "$lbs" = 4096 ] || { fail nullblk-4k "logical block $lbs"; exit 1; }
blkzone report -c 3 $DEV | sed 's/^/blkzone: /'
cap=$((48 << 20))
nseq=$(($(cat /sys/block/nullb0/queue/nr_zones) - 2))
APP="--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0"

mkfs.foliofs --format zonefs -f $DEV && pass mkfs-4k-cap || { fail mkfs-4k-cap; exit 1; }
ff_mount $DEV $MNT || { fail foliofs-mount-4k-cap; exit 1; }
getfattr --only-values -n user.foliofs.zone $MNT/seq/0 | tr '\n' ' '; echo
c=$(getfattr --only-values -n user.foliofs.zone $MNT/seq/0 | awk '$1 == "capacity" {print $2}')
[ "$c" = $cap ] && [ "$(ls $MNT/seq | wc -l)" -eq $nseq ] && pass foliofs-4k-capacity ||
	fail foliofs-4k-capacity "capacity '$c', $(ls $MNT/seq | wc -l) seq files"
# fill seq/0 to its capacity, then one block more must fail
fio --name=fill --filename=$MNT/seq/0 $APP --ioengine=psync --rw=write --bs=1m --size=48m --sync=1 \
	--iomem_align=4k --verify=crc32c >/tmp/fill.out 2>&1 && [ "$(stat -c %s $MNT/seq/0)" = $cap ] &&
	pass foliofs-4k-fill-to-capacity || { cat /tmp/fill.out; stat -c %s $MNT/seq/0; fail foliofs-4k-fill-to-capacity; }
if dd if=/dev/zero of=$MNT/seq/0 bs=4096 count=1 seek=$((cap / 4096)) conv=notrunc 2>/tmp/efbig; then
	fail foliofs-4k-past-capacity "append past the capacity succeeded, size $(stat -c %s $MNT/seq/0)"
else
	grep -i -E 'too large|error' /tmp/efbig
	[ "$(stat -c %s $MNT/seq/0)" = $cap ] && pass foliofs-4k-past-capacity ||
		fail foliofs-4k-past-capacity "size $(stat -c %s $MNT/seq/0)"
fi
# the same through O_APPEND (busybox head ignores write errors: dd it is)
if dd if=/dev/zero of=$MNT/seq/0 bs=4096 count=1 oflag=append conv=notrunc 2>/tmp/efbig; then
	fail foliofs-4k-append-past-capacity "O_APPEND past the capacity succeeded, size $(stat -c %s $MNT/seq/0)"
else
	grep -i -E 'too large|error' /tmp/efbig
	[ "$(stat -c %s $MNT/seq/0)" = $cap ] && pass foliofs-4k-append-past-capacity ||
		fail foliofs-4k-append-past-capacity "size $(stat -c %s $MNT/seq/0)"
fi
fio --name=s4 --filename=$MNT/seq/1 $APP --ioengine=psync --rw=write --bs=4k --size=4m --sync=1 \
	--verify=crc32c >/tmp/s4.out 2>&1 &&
fio --name=c4 --filename=$MNT/cnv/0 --ioengine=psync --rw=randwrite --bs=4k --size=4m --sync=dsync \
	--verify=crc32c >>/tmp/s4.out 2>&1 && pass foliofs-4k-sync-writes || { cat /tmp/s4.out; fail foliofs-4k-sync-writes; }
multi=""
for z in 3 4 5 6; do multi="$multi --name=m$z --filename=$MNT/seq/$z"; done
fio $APP --ioengine=psync --rw=write --bs=64k --size=2m --sync=1 --verify=crc32c $multi >/tmp/m4.out 2>&1 &&
	pass foliofs-4k-4-writers-max-open-2 || { cat /tmp/m4.out; fail foliofs-4k-4-writers-max-open-2; }
we=$(ff_stat $MNT dev_write_errors); qe=$(ff_stat $MNT zoneq_errors)
[ "$we" = 0 ] && [ "$qe" = 0 ] && pass foliofs-4k-no-write-errors || fail foliofs-4k-no-write-errors "dev $we zoneq $qe"
files="cnv/0 seq/0 seq/1 seq/2"
: >/tmp/s4.sizes
for f in $files; do echo "$f $(stat -c %s $MNT/$f)" >>/tmp/s4.sizes; done
sums $MNT $files >/tmp/s4.sums
ff_umount $MNT || fail foliofs-umount-4k

# the kernel's zonefs on it
if grep -q zonefs /proc/filesystems && mkdir -p /mnt/zk && mount -t zonefs $DEV /mnt/zk; then
	: >/tmp/s4.ksizes
	for f in $files; do echo "$f $(stat -c %s /mnt/zk/$f)" >>/tmp/s4.ksizes; done
	cmp -s /tmp/s4.sizes /tmp/s4.ksizes && sums_check /mnt/zk /tmp/s4.sums &&
		pass zonefs-4k-same || { diff /tmp/s4.sizes /tmp/s4.ksizes; fail zonefs-4k-same; }
	fio --name=k2 --filename=/mnt/zk/seq/2 $APP --ioengine=libaio --direct=1 --iodepth=1 --rw=write \
		--bs=64k --size=4m --verify=crc32c >/tmp/k2.out 2>&1 || { cat /tmp/k2.out; fail zonefs-4k-kernel-write; }
	k2=$(stat -c %s /mnt/zk/seq/2)
	sums /mnt/zk seq/2 >/tmp/k2.sum
	umount /mnt/zk
	ff_mount $DEV $MNT && [ "$(stat -c %s $MNT/seq/2)" = "$k2" ] && sums_check $MNT /tmp/k2.sum &&
		pass foliofs-4k-reads-zonefs-writes || fail foliofs-4k-reads-zonefs-writes "size $(stat -c %s $MNT/seq/2) vs $k2"
	ff_umount $MNT || fail foliofs-umount-4k-2
else
	dmesg | tail -3
	fail zonefs-4k-same "kernel zonefs mount failed"
fi

# the active zone limit (null_blk zone_max_active=2): a write the device
# refuses without writing is that writer's error only (EOVERFLOW, as the
# kernel's zonefs); errors= does not apply and the filesystem stays writable
rmmod null_blk && insmod /lib/modules/null_blk.ko zoned=1 zone_size=64 zone_nr_conv=2 gb=1 \
	memory_backed=1 bs=4096 zone_max_active=2 || { fail nullblk-max-active "reload"; exit 1; }
i=0
while [ ! -b $DEV ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mkfs.foliofs --format zonefs -f $DEV >/dev/null && ff_mount $DEV $MNT || { fail foliofs-max-active "mkfs/mount"; exit 1; }
w() { fio --name=w --filename=$MNT/seq/$1 $APP --ioengine=psync --rw=write --bs=4k --size=4k --sync=1 >/tmp/w.out 2>&1; }
bad=""
w 0 && w 1 || bad="$bad first-two-zones"
if w 2; then bad="$bad third-active-zone-accepted"; else grep -m1 -o 'error=.*' /tmp/w.out; fi
[ "$(ff_stat $MNT read_only)" = 0 ] || bad="$bad read-only"
[ "$(stat -c %s $MNT/seq/2)" = 0 ] || bad="$bad seq/2-size-$(stat -c %s $MNT/seq/2)"
w 0 || bad="$bad append-after-refusal"
truncate -s $((64 << 20)) $MNT/seq/0 || bad="$bad finish-by-truncate"
w 2 || bad="$bad third-zone-after-finish"
[ -z "$bad" ] && pass foliofs-max-active-refusal || { tail -3 /tmp/foliofs-ff.log; fail foliofs-max-active-refusal "$bad"; }
ff_umount $MNT || fail foliofs-umount-max-active
