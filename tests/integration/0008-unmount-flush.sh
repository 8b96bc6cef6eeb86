#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Everything dirty reaches the device when the filesystem goes away cleanly:
# fusermount3 -u, SIGTERM and SIGINT to the daemon (each unmounts, writes back
# and exits 0). Buffered data written without any fsync - on sequential and
# conventional files - is all there after the next mount, checksums equal.
# A mount right after an unmount waits for the old daemon's write-back.
. "$(dirname "$0")/lib.sh"

mkimg 512M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
# a large cache and no early flushing, so the data is still dirty at unmount
OPTS="-o cache_size=512M"
round() { # $1 = how to stop, $2 = seed
	local how=$1 seed=$2 pid
	mnt $OPTS
	zf OK fill "$MNT/seq/$seed" 0 24M "$seed" buffered 256K
	zf OK fill "$MNT/cnv/0" $((seed * 4))M 2M "$seed" buffered 64K
	note "dirty before $how: $(stat_val cache_dirty_bytes) bytes"
	pid=$(daemon_pids "$IMG")
	[ -n "$pid" ] || fail "no daemon pid"
	case $how in
	fusermount) fusermount3 -u "$MNT" || fail "fusermount3 -u" ;;
	SIGTERM) kill -TERM "$pid" ;;
	SIGINT) kill -INT "$pid" ;;
	esac
	wait_daemon_gone "$IMG" 60 || fail "daemon still running 60 s after $how"
	mountpoint -q "$MNT" && fail "still mounted after $how"
	ok "$how: unmounted, daemon gone"
	grep -v '^$' "$W/mount.out" && fail "daemon printed something on $how"
	mnt
	expect_eq "seq/$seed size after $how" "$(fsize "$MNT/seq/$seed")" $((24 << 20))
	zf OK check "$MNT/seq/$seed" 0 24M "$seed"
	zf OK check "$MNT/cnv/0" $((seed * 4))M 2M "$seed"
	umnt
}
round fusermount 1
round SIGTERM 2
round SIGINT 3

note "mounting again right after fusermount3 -u waits for the write-back"
mnt $OPTS
zf OK fill "$MNT/seq/4" 0 48M 4 buffered 1M
fusermount3 -u "$MNT" || fail "fusermount3 -u"
mnt
expect_eq "seq/4 size after an immediate remount" "$(fsize "$MNT/seq/4")" $((48 << 20))
zf OK check "$MNT/seq/4" 0 48M 4
umnt
echo "PASS $TNAME"
