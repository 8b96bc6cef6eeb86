#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The live counters, read without unmounting: user.foliofs.stats on the root
# (device, zone queue and cache counters, write amplification) and
# user.foliofs.zone on a file (zone, type, start, capacity, wp, cond, size).
# Checks that they move as they should: write-through bytes grow by exactly
# what O_SYNC, O_DSYNC and per-call RWF_DSYNC appends wrote (the sync intent
# reached the daemon each time), write amplification of aligned sync appends
# is ~1, and while an O_SYNC writer holds seq/1 open the counters and the
# zone's write pointer follow each of its appends (in lockstep).
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt
for k in dev_writes dev_bytes_written zoneq_queued cache_writethrough_bytes cache_writeback_bytes \
	cache_dirty_bytes write_amplification read_only; do
	[ -n "$(stat_val $k)" ] || fail "no $k in user.foliofs.stats: $(stats)"
done
ok "user.foliofs.stats has its keys"
wt0=$(stat_val cache_writethrough_bytes)
zf OK fill "$MNT/seq/0" 0 1M 1 sync 4K
wt1=$(stat_val cache_writethrough_bytes)
expect_eq "O_SYNC write-through bytes" $((wt1 - wt0)) 1048576
zf OK fill "$MNT/seq/0" 1M 1M 1 dsync 64K
wt2=$(stat_val cache_writethrough_bytes)
expect_eq "O_DSYNC write-through bytes" $((wt2 - wt1)) 1048576
zf OK fill "$MNT/seq/0" 2M 1M 1 rwf_dsync 4K
wt3=$(stat_val cache_writethrough_bytes)
expect_eq "RWF_DSYNC write-through bytes" $((wt3 - wt2)) 1048576
zf OK fill "$MNT/cnv/0" 0 256K 1 buffered 4K
expect_eq "buffered writes are not write-through" "$(stat_val cache_writethrough_bytes)" "$wt3"
zf OK fsync "$MNT/cnv/0"
wa=$(stat_val write_amplification)
awk -v w="$wa" 'BEGIN { exit !(w >= 0.99 && w <= 1.2) }' || fail "write amplification $wa"
ok "write amplification $wa"
expect_eq "read_only" "$(stat_val read_only)" 0

Z=$($ZF xattr "$MNT/seq/0" user.foliofs.zone)
zv() { echo "$Z" | awk -v k="$1" '$1 == k { print $2 }'; }
expect_eq "zone type" "$(zv type)" seq
expect_eq "zone index" "$(zv zone)" 2
expect_eq "zone capacity" "$(zv capacity)" $((64 << 20))
expect_eq "zone wp" "$(zv wp)" $((3 << 20))
expect_eq "zone size" "$(zv size)" $((3 << 20))
expect_eq "zone cond" "$(zv cond)" imp-open
expect_eq "cnv zone type" "$($ZF xattr "$MNT/cnv/0" user.foliofs.zone | awk '$1 == "type" { print $2 }')" cnv

note "read while a writer runs: in lockstep with an O_SYNC writer holding seq/1 open"
WRITER='import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_SYNC)
for i in range(8):
    assert os.write(fd, os.urandom(1 << 20)) == 1 << 20
    print(i + 1, flush=True)
    sys.stdin.readline()
os.close(fd)
print("done", flush=True)'
dw=$(stat_val dev_writes)
coproc WR { python3 -c "$WRITER" "$MNT/seq/1"; }
# bash drops WR and WR_PID when the writer exits: keep copies
wpid=$WR_PID
exec {rfd}<&"${WR[0]}" {wfd}>&"${WR[1]}"
for i in 1 2 3 4 5 6 7 8; do
	read -r -t 60 step <&"$rfd" || fail "the writer stopped before step $i"
	expect_eq "writer step" "$step" "$i"
	st=$($ZF xattr "$MNT" user.foliofs.stats)
	d=$(echo "$st" | awk '$1 == "dev_writes" { print $2 }')
	[ -n "$d" ] && [ "$d" -gt "$dw" ] || fail "dev_writes did not grow at step $i: $st"
	dw=$d
	Z=$($ZF xattr "$MNT/seq/1" user.foliofs.zone)
	expect_eq "seq/1 wp with the writer at step $i" "$(zv wp)" $((i << 20))
	echo >&"$wfd"
done
read -r -t 60 step <&"$rfd"
expect_eq "writer" "$step" done
wait "$wpid" || fail "the writer failed"
umnt
echo "PASS $TNAME"
