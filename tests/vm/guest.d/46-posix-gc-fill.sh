# SPDX-License-Identifier: GPL-2.0-or-later
# Space under pressure on a real zoned device (issue 12): the posix format on
# a host-managed null_blk of its own, 4 KiB blocks, 2 conventional + 14
# sequential 4 MiB zones of capacity 3 MiB, at most 4 open and 4 active
# zones (small: every byte goes through FUSE under TCG). Three rounds: fill
# it to ENOSPC with files of mixed sizes (4 KiB to 512 KiB, buffered +
# fsync), check every file, delete every other one. ENOSPC may come only
# once statfs says less than two zones' capacity is available; no write
# fails with EOVERFLOW or anything else. The second and third fills
# need the collector (gc_zones_freed > 0); every file left verifies after a
# remount, the device saw no write error, and fsck.foliofs -n is clean.
. /foliofs/guest-lib.sh
have foliofs && have mkfs.foliofs && have fsck.foliofs && have sha256sum ||
	{ skip posix-gc-fill "foliofs, fsck.foliofs or sha256sum missing"; exit 0; }
[ -c /dev/fuse ] || { skip posix-gc-fill "no /dev/fuse"; exit 0; }
M=/mnt/pxgc
CAP_KIB=3072
SIZES="4 12 64 200 512 36 128 300"

D=$(nullb_make pxgc 4096 2 3 4 4 4 64) || { fail posix-gc-fill-nullb "configfs null_blk"; exit 1; }
step "pxgc: $D, $(blkzone report -c 3 $D | tail -1)"
mkfs.foliofs --format posix -f $D >/tmp/gc-mkfs.out 2>&1 ||
	{ cat /tmp/gc-mkfs.out; fail posix-gc-fill-mkfs; nullb_remove pxgc; exit 1; }
ff_mount $D $M || { fail posix-gc-fill-mount; nullb_remove pxgc; exit 1; }
dd if=/dev/urandom of=/tmp/gc-pat bs=1024 count=1024 2>/dev/null
# the expected checksum of a file of N KiB: the pattern's first N KiB
for k in $SIZES; do
	dd if=/tmp/gc-pat bs=1024 count=$k 2>/dev/null | sha256sum | cut -d' ' -f1 >/tmp/gc-sum-$k
done
: >/tmp/gc-live
bad=""
# check_all TAG: every live file has its size's checksum
check_all() {
	local n k s wrong=0
	while read -r n k; do
		s=$(sha256sum $M/$n | cut -d' ' -f1)
		[ "$s" = "$(cat /tmp/gc-sum-$k)" ] || wrong=$((wrong + 1))
	done </tmp/gc-live
	[ $wrong = 0 ] || { bad="$bad $1:$wrong-files-differ"; return 1; }
}
i=0
for r in 1 2 3; do
	got_enospc=""
	while [ $i -lt 100000 ]; do
		k=$(echo $SIZES | cut -d' ' -f$((i % 8 + 1)))
		if dd if=/tmp/gc-pat of=$M/f$i bs=4096 count=$((k / 4)) conv=fsync 2>/tmp/gc-dd.err; then
			echo "f$i $k" >>/tmp/gc-live
			i=$((i + 1))
			continue
		fi
		avail=$(df -k $M | awk 'NR==2 {print $4}')
		if grep -q "No space" /tmp/gc-dd.err; then
			[ "$avail" -lt $((2 * CAP_KIB)) ] ||
				bad="$bad round$r:ENOSPC-with-${avail}KiB-available"
			got_enospc=yes
		else
			bad="$bad round$r:$(tr ' \n' '__' </tmp/gc-dd.err)"
		fi
		rm -f $M/f$i
		i=$((i + 1))
		break
	done
	[ -n "$got_enospc" ] || bad="$bad round$r:no-ENOSPC"
	step "round $r: $(wc -l </tmp/gc-live) files live, $(df -k $M | awk 'NR==2 {print $3 " KiB used, " $4 " KiB available"}')"
	check_all round$r
	# delete every other live file
	awk 'NR % 2 == 0' /tmp/gc-live | while read -r n k; do rm -f $M/$n; done
	awk 'NR % 2 == 1' /tmp/gc-live >/tmp/gc-live2 && mv /tmp/gc-live2 /tmp/gc-live
	sync
done
freed=$(ff_stat $M gc_zones_freed)
[ "${freed:-0}" -gt 0 ] || bad="$bad no-zone-collected(${freed:-none})"
we=$(ff_stat $M dev_write_errors); qe=$(ff_stat $M zoneq_errors)
[ "$we" = 0 ] && [ "$qe" = 0 ] || bad="$bad write-errors:dev-$we-zoneq-$qe"
[ -z "$bad" ] && pass posix-gc-fill-rounds "collector freed $freed zones" ||
	fail posix-gc-fill-rounds "$bad"
bad=""
ff_umount $M || fail posix-gc-fill-umount
if ff_mount $D $M; then
	check_all remount && pass posix-gc-fill-remount || fail posix-gc-fill-remount "$bad"
	ff_umount $M || fail posix-gc-fill-umount-2
else
	fail posix-gc-fill-remount "mount failed"
fi
fsck.foliofs -n $D >/tmp/gc-fsck.out 2>&1
rc=$?
[ $rc = 0 ] && pass posix-gc-fill-fsck-clean || { cat /tmp/gc-fsck.out; fail posix-gc-fill-fsck-clean "exit $rc"; }
nullb_remove pxgc
