# SPDX-License-Identifier: GPL-2.0-or-later
# foliofs on the real zoned device: mkfs, mount through fuse.ko, the zonefs
# tree, fio sync workloads with crc32c verify through the mount (their write
# figures are printed as VMBENCH lines), zero zone write errors, write
# pointers equal to file sizes, and the same sizes and contents after a
# remount. Leaves the device written for 50-zonefs-interop.sh; the checksums
# taken through foliofs are in /tmp/sums.foliofs.
. /foliofs/guest-lib.sh
have foliofs && have mkfs.foliofs || { skip foliofs-fuse "foliofs not built"; exit 0; }
have fio || { skip foliofs-fuse "fio not packed"; exit 0; }
[ -c /dev/fuse ] || { skip foliofs-fuse "no /dev/fuse"; exit 0; }
ln -sf /proc/self/mounts /etc/mtab

zsect=$(cat /sys/block/nullb0/queue/chunk_sectors)
zbytes=$((zsect * 512))
nz=$(cat /sys/block/nullb0/queue/nr_zones)
nconv=$(blkzone report $DEV | grep -c CONVENTIONAL)
nseq=$((nz - nconv))
echo "device: $nz zones ($nconv conventional), zone $zbytes bytes, lbs $(cat /sys/block/nullb0/queue/logical_block_size)"

if mkfs.foliofs --format zonefs -f $DEV; then pass mkfs-zoned; else fail mkfs-zoned; exit 1; fi
ff_mount $DEV $MNT || { fail foliofs-mount; exit 1; }
pass foliofs-mount

# the tree: cnv/ and seq/; zone 0 (superblock) hidden
t=$(ls $MNT | tr '\n' ' ')
nc=$(ls $MNT/cnv | wc -l); ns=$(ls $MNT/seq | wc -l)
bad=""
[ "$t" = "cnv seq " ] || bad="$bad root='$t'"
[ "$nc" -eq $((nconv - 1)) ] || bad="$bad cnv=$nc"
[ "$ns" -eq $nseq ] || bad="$bad seq=$ns"
[ "$(stat -c %s $MNT/cnv/0)" -eq $zbytes ] || bad="$bad cnv/0 size $(stat -c %s $MNT/cnv/0)"
for i in $(seq 0 $((nseq - 1))); do
	s=$(stat -c %s $MNT/seq/$i 2>/dev/null) || { bad="$bad no seq/$i"; continue; }
	[ "$s" -eq 0 ] || bad="$bad seq/$i=$s"
done
[ -z "$bad" ] && pass foliofs-tree || fail foliofs-tree "$bad"

# fio through the mount; each workload also runs raw in 60-raw-bench.sh
APP="--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0"
COMMON="--ioengine=psync --verify=crc32c --do_verify=1 --group_reporting --output-format=terse"
fio_ff() { # name, then fio args (options before the first --name are global)
	local n=$1
	shift
	if fio $COMMON "$@" >/tmp/fio-$n.out 2>/tmp/fio-$n.err; then
		vmbench $n foliofs /tmp/fio-$n.out
		pass fio-$n
	else
		cat /tmp/fio-$n.out /tmp/fio-$n.err
		tail -5 /tmp/foliofs-ff.log
		fail fio-$n
	fi
}
fio_ff seq-osync-4k --name=seq-osync-4k --filename=$MNT/seq/0 $APP --rw=write --bs=4k --size=4m --sync=1
# page-aligned buffers: FUSE (256 pages a request on 6.1) splits a 1 MiB write
# from an unaligned buffer in two, and foliofs answers the first piece with a
# short write of its whole blocks (fio's figures then count the pieces)
fio_ff seq-osync-1m --name=seq-osync-1m --filename=$MNT/seq/1 $APP --rw=write --bs=1m --size=32m --sync=1 --iomem_align=4k
fio_ff cnv-odsync-4k-rand --name=cnv-odsync-4k-rand --filename=$MNT/cnv/0 --rw=randwrite --bs=4k --size=8m --sync=dsync
fio_ff seq-buffered-64k-fsync --name=seq-buffered-64k-fsync --filename=$MNT/seq/2 $APP --rw=write --bs=64k --size=32m --fsync=32 --end_fsync=1
# several writers on several zones at once (one fio job per zone file)
multi=""
for z in 3 4 5 6; do multi="$multi --name=z$z --filename=$MNT/seq/$z"; done
fio_ff seq-osync-128k-4zones $APP --rw=write --bs=128k --size=16m --sync=1 $multi

# 1 MiB O_SYNC appends from unaligned buffers (the short writes): contents verified
fio --name=unaligned --filename=$MNT/seq/8 $APP --ioengine=psync --rw=write --bs=1m --size=8m --sync=1 \
	--iomem_align=16 --verify=crc32c --do_verify=1 >/tmp/fio-ua.out 2>&1 &&
	pass fio-seq-osync-1m-unaligned-buffer || { cat /tmp/fio-ua.out; fail fio-seq-osync-1m-unaligned-buffer; }

# zero write errors in the daemon's counters
getfattr --only-values -n user.foliofs.stats $MNT >/tmp/stats.1 2>&1
grep -E 'write_errors|zoneq_errors|resyncs|read_only|write_amplification' /tmp/stats.1
we=$(ff_stat $MNT dev_write_errors); qe=$(ff_stat $MNT zoneq_errors); ro=$(ff_stat $MNT read_only)
[ "$we" = 0 ] && [ "$qe" = 0 ] && [ "$ro" = 0 ] && pass foliofs-no-write-errors ||
	fail foliofs-no-write-errors "dev_write_errors=$we zoneq_errors=$qe read_only=$ro"

# sizes and checksums through foliofs
step checksums
: >/tmp/sizes.foliofs
for f in cnv/0 $(for i in $(seq 0 $((nseq - 1))); do echo seq/$i; done); do
	echo "$f $(stat -c %s $MNT/$f)" >>/tmp/sizes.foliofs
done
sums $MNT cnv/0 seq/0 seq/1 seq/2 seq/3 seq/4 seq/5 seq/6 seq/7 >/tmp/sums.foliofs
cat /tmp/sizes.foliofs | tr '\n' ' '; echo
step umount
if ff_umount $MNT; then pass foliofs-umount; else fail foliofs-umount; fi

# write pointers = file sizes
bad=""
for i in $(seq 0 $((nseq - 1))); do
	z=$((nconv + i))
	wp=$(blkzone report -o $((z * zsect)) -c 1 $DEV | sed -E 's/.*wptr 0x([0-9a-f]+).*/\1/')
	s=$(awk -v f=seq/$i '$1 == f {print $2}' /tmp/sizes.foliofs)
	[ $((0x$wp * 512)) -eq "$s" ] || bad="$bad seq/$i:wp=$((0x$wp * 512)),size=$s"
done
[ -z "$bad" ] && pass foliofs-wp-equals-size || fail foliofs-wp-equals-size "$bad"

# remount: same sizes, same contents
step remount
ff_mount $DEV $MNT || { fail foliofs-remount; exit 1; }
: >/tmp/sizes.2
for f in $(awk '{print $1}' /tmp/sizes.foliofs); do echo "$f $(stat -c %s $MNT/$f)" >>/tmp/sizes.2; done
sums_check $MNT /tmp/sums.foliofs >/tmp/sumcheck 2>&1 && cmp -s /tmp/sizes.foliofs /tmp/sizes.2 &&
	pass foliofs-remount-same || { cat /tmp/sumcheck; diff /tmp/sizes.foliofs /tmp/sizes.2; fail foliofs-remount-same; }
# observed, not asserted: the kernel's zonefs takes 512 B O_DIRECT appends on a
# 512 B device; foliofs's sync appends must end on its 4 KiB cache block
if fio --name=s512 --filename=$MNT/seq/13 $APP --ioengine=psync --rw=write --bs=512 --size=512 \
	--sync=1 >/tmp/s512.out 2>&1; then
	echo "info: foliofs: a 512 B O_SYNC append on a 512 B-block device worked"
else
	echo "info: foliofs: a 512 B O_SYNC append on a 512 B-block device failed: $(grep -m1 -o 'error=.*' /tmp/s512.out)"
fi
truncate -s 0 $MNT/seq/13
ff_umount $MNT || fail foliofs-umount-2
