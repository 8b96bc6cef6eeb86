# SPDX-License-Identifier: GPL-2.0-or-later
# The zonefs format's errors= modes against the kernel's zonefs, per kind of
# write (issue 15), on a configfs null_blk of its own (4 KiB blocks, 4
# conventional + 12 sequential 64 MiB zones, 3 open / 3 active, as 80):
#   for each of remount-ro, zone-ro, zone-offline, repair, and each write kind
#     osync   synchronous buffered write (O_SYNC), through foliofs only;
#     async   buffered write, then fsync (the error comes at the fsync);
#     direct  O_DIRECT write without O_SYNC (psync: the write itself);
#   seq/3 holds 128 KiB, 64 KiB are written at the zone's write pointer
#   behind the file's back, then the file's own append fails. The answers
#   (the write's verdict, the file's mode and size, whether seq/3 and seq/4
#   open for writing and seq/3 reads) are compared with the kernel's zonefs
#   after the same sequence with an asynchronous O_DIRECT write (libaio):
#   the kernel refuses buffered writes to sequential files (EINVAL, the
#   documented difference), and Debian 6.1's zonefs fails synchronous
#   O_DIRECT appends, so its libaio answer is the expected one for every kind.
# Then asynchronous O_DIRECT writes of 2-8 MiB at queue depth 8 (fio libaio)
# through foliofs and through the kernel: both complete, verify, and leave
# the same size; VMBENCH lines for both.
. /foliofs/guest-lib.sh
grep -q fuse /proc/filesystems || insmod /lib/modules/fuse.ko 2>/dev/null
grep -q zonefs /proc/filesystems || insmod /lib/modules/zonefs.ko 2>/dev/null
grep -q zonefs /proc/filesystems || { skip errors-matrix "zonefs.ko not loaded"; exit 0; }
have mkfs.foliofs && have foliofs && have fio || { skip errors-matrix "foliofs or fio not packed"; exit 0; }
K=/mnt/ek
F=/mnt/ef
mkdir -p $K $F
ZB=67108864
NCONV=4
Z3=$((NCONV + 3))
D=$(nullb_make errmx 4096 $NCONV 0 3 3) || { fail errors-matrix-nullb "configfs null_blk device"; exit 1; }
step "device $D"

# KNOWN: "case|foliofs's answer" lines for differences the README documents.
KNOWN=/tmp/errmx.known
: >$KNOWN

APP="--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0"
# write_kind KIND FILE: one 4 KiB append of that kind; prints "write ok" or "write failed"
write_kind() {
	case $1 in
	osync) set -- --ioengine=psync --direct=0 --sync=1 --filename=$2 ;;
	async) set -- --ioengine=psync --direct=0 --end_fsync=1 --filename=$2 ;;
	direct) set -- --ioengine=psync --direct=1 --filename=$2 ;;
	kaio) set -- --ioengine=libaio --direct=1 --iodepth=1 --filename=$2 ;;
	esac
	fio --name=c "$@" --size=4k --bs=4k --rw=write $APP >/tmp/errmx-w.out 2>&1 &&
		echo "write ok" || echo "write failed"
}
err_case() { # DIR KIND
	fio --name=a --filename=$1/seq/3 --size=128k --bs=64k --rw=write --direct=1 --ioengine=libaio \
		$APP >/dev/null 2>&1 || echo "first writes failed"
	# 64 KiB written to the zone directly, at its write pointer
	fio --name=b --filename=$D --offset=$((Z3 * ZB + 131072)) --size=64k --bs=64k --rw=write \
		--direct=1 >/dev/null 2>&1 || echo "write behind the back failed"
	write_kind $2 $1/seq/3
	seq3_answers $1
}
compare() { compare_answers errors "$@"; } # CASE KFILE FFILE
for m in remount-ro zone-ro zone-offline repair; do
	step "errors=$m"
	mkfs.foliofs --format zonefs --force $D >/dev/null 2>&1
	if mount -t zonefs -o errors=$m $D $K; then
		err_case $K kaio >/tmp/errmx-k.out
		umount $K
	else
		echo "mount failed" >/tmp/errmx-k.out
	fi
	for kind in osync async direct; do
		mkfs.foliofs --format zonefs --force $D >/dev/null 2>&1
		if ff_mount $D $F -o errors=$m; then
			err_case $F $kind >/tmp/errmx-f.out
			ff_umount $F >/dev/null 2>&1
		else
			echo "mount failed" >/tmp/errmx-f.out
		fi
		compare $m-$kind /tmp/errmx-k.out /tmp/errmx-f.out
	done
done

# ---- asynchronous O_DIRECT, 2-8 MiB, queue depth 8 ----
aio() { # DIR SYSTEM: fio on seq/5, verified; prints the verdict and the size
	fio --name=aio --filename=$1/seq/5 $APP --ioengine=libaio --direct=1 --iodepth=8 \
		--rw=write --bsrange=2m-8m --bs_unaligned=0 --size=48m --verify=crc32c --verify_fatal=1 \
		--randseed=42 --group_reporting --output-format=terse,normal >/tmp/errmx-aio-$2.out 2>&1 &&
		echo "aio ok" || echo "aio failed"
	vmbench seq-aio-dio-2m-8m-qd8 $2 /tmp/errmx-aio-$2.out >&2
	# (fio's verify headers carry a time stamp: the contents differ, the sizes must not)
	echo "seq/5 $(stat -c %s $1/seq/5)"
}
step "async O_DIRECT 2-8 MiB QD8"
mkfs.foliofs --format zonefs --force $D >/dev/null 2>&1
if mount -t zonefs $D $K; then aio $K kernel >/tmp/errmx-k.out; umount $K; else echo "mount failed" >/tmp/errmx-k.out; fi
mkfs.foliofs --format zonefs --force $D >/dev/null 2>&1
if ff_mount $D $F; then aio $F foliofs >/tmp/errmx-f.out; ff_umount $F >/dev/null 2>&1; else echo "mount failed" >/tmp/errmx-f.out; fi
grep -q "aio ok" /tmp/errmx-k.out || tail -5 /tmp/errmx-aio-kernel.out
grep -q "aio ok" /tmp/errmx-f.out || tail -5 /tmp/errmx-aio-foliofs.out
compare aio-dio-2m-8m-qd8 /tmp/errmx-k.out /tmp/errmx-f.out
nullb_remove errmx
