# SPDX-License-Identifier: GPL-2.0-or-later
# Make a host-managed zoned null_blk device: 2 conventional + 14 sequential
# 64 MiB zones, memory backed (kernel zonefs needs it), 512-byte blocks.
. /foliofs/guest-lib.sh
insmod /lib/modules/configfs.ko || { fail nullblk "configfs.ko did not load"; exit 1; }
insmod /lib/modules/null_blk.ko zoned=1 zone_size=64 zone_nr_conv=2 gb=1 memory_backed=1 bs=512 ||
	{ fail nullblk "null_blk.ko did not load"; exit 1; }
i=0
while [ ! -b /dev/nullb0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/nullb0 ] || { fail nullblk "/dev/nullb0 did not appear"; exit 1; }
model=$(cat /sys/block/nullb0/queue/zoned)
[ "$model" = host-managed ] || { fail nullblk "nullb0 is '$model', not host-managed"; exit 1; }
echo "zoned model: $model, $(cat /sys/block/nullb0/queue/nr_zones) zones, chunk $(cat /sys/block/nullb0/queue/chunk_sectors) sectors"
blkzone report /dev/nullb0 | sed 's/^/blkzone: /'
pass nullblk
