#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Open-zone limits (mkfs --max-open): with -o explicit-open, opening one more
# sequential file for writing than the device has open zones gives EBUSY (as
# kernel zonefs), closing one makes room at once (the daemon waits for the
# RELEASE that close(2) does not); without explicit-open, appends
# rotate over more zones than max-open (the device closes implicitly open
# zones) and all of it verifies.
. "$(dirname "$0")/lib.sh"

mkimg 512M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M --max-open 2
mnt -o explicit-open
exec 5>>"$MNT/seq/0" 6>>"$MNT/seq/1"
zf EBUSY open "$MNT/seq/2" wronly
zf OK open "$MNT/seq/2" rdonly
zf OK fill "$MNT/seq/0" 0 64K 1 sync
exec 5>&-
zf OK open "$MNT/seq/2" wronly
zf OK fill "$MNT/seq/2" 0 64K 3 sync
exec 6>&-
zf OK check "$MNT/seq/0" 0 64K 1
zf OK check "$MNT/seq/2" 0 64K 3
umnt

mnt
for round in 0 1 2 3; do
	for z in 0 1 2 3 4; do
		off=$(fsize "$MNT/seq/$z")
		zf OK fill "$MNT/seq/$z" "$off" 64K $((z + 20)) sync
	done
done
for z in 1 3 4; do zf OK check "$MNT/seq/$z" 0 256K $((z + 20)); done
expect_eq "zone queue errors" "$(stat_val zoneq_errors)" 0
umnt
echo "PASS $TNAME"
