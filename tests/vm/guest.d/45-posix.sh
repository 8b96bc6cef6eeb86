# SPDX-License-Identifier: GPL-2.0-or-later
# The posix format (issue 11) on host-managed null_blk devices of their own
# (configfs, so the device 40 wrote stays for 50):
#   px512: 00's geometry: 512 B blocks, 2 conventional + 14 sequential 64 MiB
#          zones, no limits;
#   px4k:  4 KiB blocks, zone capacity 48 MiB < zone size 64 MiB, 2
#          conventional zones, at most 3 open and 3 active zones (the log's
#          zone and two data zones).
# On each: mkfs.foliofs --format posix, a FUSE mount, namespace operations
# (mkdir, create, rename, link, unlink, rmdir), fio --directory with
# --verify=crc32c (O_SYNC 4 KiB appends, O_DSYNC 4 KiB overwrites, buffered
# 64 KiB writes + fsync, 4 O_SYNC writers; then 12 writers on 24 files, more
# than the open zones: no EOVERFLOW or ENOSPC while space is free; 16 MiB in
# all, small because every check reads it back through FUSE under TCG), zero
# dev_write_errors/zoneq_errors, a remount with the same names, sizes and
# checksums, and fsck.foliofs -n clean (exit 0).
. /foliofs/guest-lib.sh
have foliofs && have mkfs.foliofs && have fio || { skip posix "foliofs or fio missing"; exit 0; }
have fsck.foliofs || { skip posix "fsck.foliofs not packed"; exit 0; }
[ -c /dev/fuse ] || { skip posix "no /dev/fuse"; exit 0; }
M=/mnt/px

# fio_dir TAG ARGS...: fio in $M/TAG (made first), verified; its output in /tmp/px-TAG.out
fio_dir() {
	local t=$1
	shift
	mkdir -p $M/$t
	fio --directory=$M/$t --ioengine=psync --verify=crc32c --verify_fatal=1 "$@" \
		>/tmp/px-$t.out 2>&1 || { tail -15 /tmp/px-$t.out; return 1; }
}

# suite NAME DEV: every check on one device
suite() {
	local n=$1 dev=$2 bad="" f files
	mkfs.foliofs --format posix -f $dev >/tmp/px-mkfs.out 2>&1 && pass posix-$n-mkfs ||
		{ cat /tmp/px-mkfs.out; fail posix-$n-mkfs; return 1; }
	ff_mount $dev $M || { fail posix-$n-mount; return 1; }
	# namespace operations, each answer checked
	mkdir -p $M/a/b && echo hello >$M/a/f && mv $M/a/f $M/a/b/g && ln $M/a/b/g $M/h &&
		echo world >$M/a/x && rm $M/a/x && mkdir $M/c && rmdir $M/c || bad="$bad op-failed"
	[ "$(cat $M/a/b/g)" = hello ] || bad="$bad content"
	[ "$(stat -c %h $M/h)" = 2 ] || bad="$bad nlink-$(stat -c %h $M/h)"
	[ ! -e $M/a/f ] && [ ! -e $M/a/x ] && [ ! -e $M/c ] || bad="$bad removed-name-remains"
	[ "$(ls $M/a | tr '\n' ' ')" = "b " ] || bad="$bad ls-a-$(ls $M/a | tr '\n' ,)"
	[ -z "$bad" ] && pass posix-$n-namespace || fail posix-$n-namespace "$bad"
	fio_dir osync --name=osync --rw=write --bs=4k --size=1m --sync=1 &&
		pass posix-$n-osync-4k-appends || fail posix-$n-osync-4k-appends
	fio_dir odsync --name=odsync --rw=randwrite --bs=4k --size=1m --sync=dsync &&
		pass posix-$n-odsync-4k-overwrites || fail posix-$n-odsync-4k-overwrites
	fio_dir buf --name=buf --rw=write --bs=64k --size=4m --fsync=16 &&
		pass posix-$n-buffered-fsync || fail posix-$n-buffered-fsync
	fio_dir w4 --name=w4 --numjobs=4 --rw=write --bs=64k --size=1m --sync=1 &&
		pass posix-$n-4-writers || fail posix-$n-4-writers
	# 12 writers, 2 files each, interleaved: more files than open zones
	if fio_dir many --name=many --numjobs=12 --nrfiles=2 --file_service_type=roundrobin \
		--rw=write --bs=16k --size=512k --sync=1; then
		pass posix-$n-more-files-than-open-zones
	else
		grep -E -m3 'error|Value too large|No space' /tmp/px-many.out
		fail posix-$n-more-files-than-open-zones
	fi
	we=$(ff_stat $M dev_write_errors); qe=$(ff_stat $M zoneq_errors)
	[ "$we" = 0 ] && [ "$qe" = 0 ] && pass posix-$n-no-write-errors ||
		fail posix-$n-no-write-errors "dev '$we' zoneq '$qe'"
	files=$(cd $M && find . -type f | sort)
	(cd $M && for f in $files; do echo "$f $(stat -c %s $f)"; done) >/tmp/px-sizes
	sums $M $files >/tmp/px-sums
	ff_umount $M || fail posix-$n-umount
	ff_mount $dev $M || { fail posix-$n-remount; return 1; }
	(cd $M && for f in $(find . -type f | sort); do echo "$f $(stat -c %s $f)"; done) >/tmp/px-sizes2
	cmp -s /tmp/px-sizes /tmp/px-sizes2 && sums_check $M /tmp/px-sums &&
		[ "$(cat $M/a/b/g)" = hello ] && pass posix-$n-remount-same ||
		{ diff /tmp/px-sizes /tmp/px-sizes2 | head; fail posix-$n-remount-same; }
	# fio verifies again what it wrote, after the remount
	fio --directory=$M/osync --name=osync --rw=write --bs=4k --size=1m --verify=crc32c \
		--verify_only >/tmp/px-vo.out 2>&1 && pass posix-$n-remount-verify ||
		{ tail -5 /tmp/px-vo.out; fail posix-$n-remount-verify; }
	ff_umount $M || fail posix-$n-umount-2
	fsck.foliofs -n $dev >/tmp/px-fsck.out 2>&1
	rc=$?
	[ $rc = 0 ] && pass posix-$n-fsck-clean || { cat /tmp/px-fsck.out; fail posix-$n-fsck-clean "exit $rc"; }
}

D=$(nullb_make px512 512 2) || { fail posix-nullb "configfs null_blk px512"; exit 1; }
step "px512: $D, $(cat /sys/block/${D#/dev/}/queue/logical_block_size) B blocks"
suite 512 $D
nullb_remove px512
D=$(nullb_make px4k 4096 2 48 3 3) || { fail posix-nullb "configfs null_blk px4k"; exit 1; }
step "px4k: $D, $(cat /sys/block/${D#/dev/}/queue/logical_block_size) B blocks, $(blkzone report -c 3 $D | tail -1)"
suite 4k $D
nullb_remove px4k
