# SPDX-License-Identifier: GPL-2.0-or-later
# fio itself on the zoned device: proves the guest plumbing (zonemode=zbd, verify).
. /foliofs/guest-lib.sh
have fio || { skip fio-zbd "fio not packed"; exit 0; }
if fio --name=zbd --filename=/dev/nullb0 --direct=1 --zonemode=zbd --ioengine=io_uring \
	--rw=write --bs=64k --offset=256m --size=128m --iodepth=1 --verify=crc32c \
	--do_verify=1 --output-format=terse >/tmp/fio.out 2>&1; then
	pass fio-zbd
else
	cat /tmp/fio.out; fail fio-zbd
fi
blkzone reset -o $((256 * 2048)) -l $((128 * 2048)) /dev/nullb0 2>/dev/null || true
