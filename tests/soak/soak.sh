#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Soak: rounds of 16 fio writers (8 sequential zones appended, half O_SYNC,
# half buffered with periodic fsync; 8 writers over a conventional file) and
# 4 readers, all with verify, then zone resets / finishes and a remount, for
# FOLIOFS_SOAK_SECONDS (default 120). The daemon's RSS is sampled all along.
# Passes with zero verify failures, zero device write errors, and an RSS
# within the cache budget plus a fixed overhead.
set -u
B=${FOLIOFS_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
DAEMON=$B/src/fuse/foliofs
MKFS=$B/src/cli/mkfs.foliofs
SECS=${FOLIOFS_SOAK_SECONDS:-120}
CACHE_MB=${FOLIOFS_SOAK_CACHE_MB:-64}
# The daemon's own memory beside the cache (whose cache_cached_bytes stays at
# the budget, measured): libfuse's up to 16 workers' 1 MiB request buffers,
# the cache's 8 MiB of spare folio buffers, malloc arenas, and about 30 MiB
# not yet attributed. Measured peaks on an idle 2-core machine: 140-162 MiB
# (was 190 before folio data was mmap'ed and arenas capped), so 64 + 128.
OVERHEAD_MB=${FOLIOFS_SOAK_OVERHEAD_MB:-128}
ZS=$((32 << 20))
command -v fio >/dev/null || { echo "soak: no fio"; exit 77; }
[ -x "$DAEMON" ] || { echo "soak: not built"; exit 77; }
mkdir -p /tmp/h-crash
T=$(mktemp -d /tmp/h-crash/soak.XXXXXX)
IMG=$T/img
MNT=$T/mnt
mkdir -p "$MNT"
DPID=
SPID=
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	grep -q " $MNT " /proc/mounts && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "soak: FAIL: $*"; tail -5 "$T/daemon.log"; exit 1; }
truncate -s $((11 * ZS + (1 << 20))) "$IMG"
"$MKFS" --format zonefs --emulate-zoned --conv-zones 3 --zone-size $ZS "$IMG" >/dev/null 2>&1 || fail mkfs
maxrss=0
mnt() {
	"$DAEMON" -f -o "cache_size=${CACHE_MB}M" "$IMG" "$MNT" >>"$T/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 500); do
		grep -q " $MNT " /proc/mounts && break
		kill -0 $DPID 2>/dev/null || fail "mount"
		sleep 0.01
	done
	(while kill -0 $DPID 2>/dev/null; do
		awk '/VmRSS/{print $2}' /proc/$DPID/status 2>/dev/null
		sleep 0.5
	done >>"$T/rss") &
	SPID=$!
}
umnt() {
	umount "$MNT" || fail umount
	wait $DPID || fail "daemon exit $?"
	DPID=
	kill $SPID 2>/dev/null
	wait $SPID 2>/dev/null
	SPID=
}
job() { # round
	local r=$1
	echo "[global]"
	echo "ioengine=psync"
	echo "verify=crc32c"
	echo "do_verify=1"
	echo "verify_fatal=1"
	echo "verify_state_save=0"
	echo "group_reporting=0"
	for z in 0 1 2 3 4 5 6 7; do
		echo "[seq$z]"
		echo "filename=$MNT/seq/$z"
		echo "create_on_open=0"
		echo "allow_file_create=0"
		echo "file_append=1"
		echo "unlink=0"
		echo "rw=write"
		echo "bs=$(((z % 4 + 1) * 16))k"
		echo "size=$(((r % 3 + 1) * 2))m"
		if [ $((z % 2)) -eq 0 ]; then echo "sync=1"; else echo "fsync=8"; fi
	done
	for w in 0 1 2 3 4 5 6 7; do
		echo "[cnv$w]"
		echo "filename=$MNT/cnv/0"
		echo "rw=randwrite"
		echo "bs=4k"
		echo "offset=$((w * 4))m"
		echo "size=2m"
		[ $((w % 2)) -eq 0 ] && echo "sync=1"
		echo "randseed=$((r * 100 + w))"
	done
	for rd in 0 1 2 3; do
		echo "[read$rd]"
		echo "filename=$MNT/cnv/1"
		echo "rw=randread"
		echo "bs=$((4 << rd))k"
		echo "size=16m"
		echo "verify=0"
		echo "do_verify=0"
		echo "runtime=5"
		echo "time_based=1"
	done
}
cd "$T" # fio leaves its state files in the working directory
start=$(date +%s)
round=0
mnt
# the readers' file gets content once
fio --name=prep --filename="$MNT/cnv/1" --rw=write --bs=1m --size=16m --ioengine=psync \
	--output="$T/prep.out" || fail "prep"
while [ $(($(date +%s) - start)) -lt "$SECS" ]; do
	round=$((round + 1))
	job $round >"$T/job.fio"
	fio "$T/job.fio" --output="$T/fio.out" || { cat "$T/fio.out" | tail -30; fail "fio (round $round)"; }
	grep -qi "verify.*fail\|bad magic\|crc32c.*mismatch" "$T/fio.out" && fail "verify (round $round)"
	st=$(python3 -c 'import os,sys;print(os.getxattr(sys.argv[1],"user.foliofs.stats").decode())' "$MNT")
	echo "$st" | grep -q "^dev_write_errors 0$" || fail "device write errors: $(echo "$st" | grep errors)"
	echo "$st" | grep -q "^zoneq_errors 0$" || fail "zone queue errors"
	# resets, a finish now and then, and a remount every other round
	for z in 0 1 2 3 4 5 6 7; do
		if [ $(((z + round) % 5)) -eq 0 ]; then
			truncate -s $ZS "$MNT/seq/$z" || fail "finish seq/$z"
		fi
		truncate -s 0 "$MNT/seq/$z" || fail "reset seq/$z"
	done
	if [ $((round % 2)) -eq 0 ]; then
		umnt
		mnt
	fi
	r=$(sort -n "$T/rss" | tail -1)
	echo "soak: round $round done at $(($(date +%s) - start)) s, max RSS ${r:-0} KiB"
done
umnt
maxrss=$(sort -n "$T/rss" | tail -1)
limit=$(((CACHE_MB + OVERHEAD_MB) * 1024))
echo "soak: $round rounds in $(($(date +%s) - start)) s, 0 verify failures, 0 write errors, max RSS $maxrss KiB (limit $limit KiB)"
[ "$maxrss" -le "$limit" ] || fail "RSS $maxrss KiB over ${CACHE_MB}M cache + ${OVERHEAD_MB}M overhead"
echo ok
