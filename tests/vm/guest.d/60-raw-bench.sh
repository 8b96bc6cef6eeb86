# SPDX-License-Identifier: GPL-2.0-or-later
# The workloads of 40-foliofs-fuse.sh on the raw device, for VMBENCH lines to
# set beside foliofs's: --zonemode=zbd, O_DIRECT with the same sync flag and
# block size, each on its own zones (a sequential zone's write pointer is its
# file's size in foliofs). The raw device takes no buffered writes to
# sequential zones: the buffered+fsync workload runs direct with the same
# fsync cadence. Erases the device.
. /foliofs/guest-lib.sh
have fio || { skip raw-bench "fio not packed"; exit 0; }
zsect=$(cat /sys/block/nullb0/queue/chunk_sectors)
zb=$((zsect * 512))
blkzone reset $DEV || { fail raw-bench "blkzone reset"; exit 1; }
COMMON="--filename=$DEV --zonemode=zbd --direct=1 --ioengine=psync --verify=crc32c --do_verify=1 --group_reporting --output-format=terse"
raw() {
	local n=$1
	shift
	# zonemode=zbd wants a range of whole zones: --size is the range, --io_size the amount
	if fio $COMMON --name=$n "$@" >/tmp/raw-$n.out 2>&1; then
		vmbench $n raw /tmp/raw-$n.out
		pass raw-$n
	else
		cat /tmp/raw-$n.out
		fail raw-$n
	fi
}
raw seq-osync-4k --offset=$((2 * zb)) --rw=write --bs=4k --size=$zb --io_size=4m --sync=1
raw seq-osync-1m --offset=$((3 * zb)) --rw=write --bs=1m --size=$zb --io_size=32m --sync=1
raw cnv-odsync-4k-rand --offset=$((1 * zb)) --rw=randwrite --bs=4k --size=8m --sync=dsync
raw seq-buffered-64k-fsync --offset=$((4 * zb)) --rw=write --bs=64k --size=$zb --io_size=32m --fsync=32 --end_fsync=1
raw seq-osync-128k-4zones --offset=$((5 * zb)) --offset_increment=$zb --numjobs=4 --rw=write --bs=128k --size=$zb --io_size=16m --sync=1
blkzone reset $DEV
