#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# dbench (Debian's dbench, its stock client.txt load: a file server's mix of
# create, write, read, rename, unlink, find, lock, flush) on foliofs's posix
# format, 4 clients: once plain, once with O_SYNC opens, synchronous
# directory changes and xattrs (-s -S -x). Fails on a non-zero exit, any
# error or unexpected-result line in dbench's output, a missing throughput
# line, an unclean unmount, or fsck.foliofs -n finding anything afterwards.
# CI: 12 s + 8 s; FOLIOFS_CLIENTS_LONG=1: 120 s + 60 s.
# Exit 0 pass, 77 skip (dbench missing, not root, not built), 1 fail.
set -u
BUILD=${FOLIOFS_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
FOLIOFS=$BUILD/src/fuse/foliofs
MKFS=$BUILD/src/cli/mkfs.foliofs
FSCK=$BUILD/src/cli/fsck.foliofs
LOADFILE=/usr/share/dbench/client.txt
WORK=${FOLIOFS_CLIENTS_DIR:-/tmp/h-kv}/dbench
MNT=$WORK/mnt
IMG=$WORK/img
T1=12 T2=8
if [ "${FOLIOFS_CLIENTS_LONG:-0}" != 0 ]; then T1=120 T2=60; fi

[ "$(id -u)" -eq 0 ] || { echo "SKIP: mounts need root"; exit 77; }
if ! command -v dbench >/dev/null || [ ! -r $LOADFILE ]; then
	echo "SKIP: dbench not installed (scripts/install-deps)"
	exit 77
fi
for b in "$FOLIOFS" "$MKFS" "$FSCK"; do
	[ -x "$b" ] || { echo "SKIP: $b missing: build first"; exit 77; }
done

pid=
cleanup() {
	if [ -n "$pid" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $* (evidence in $WORK)"
	exit 1
}

mountpoint -q "$MNT" && umount -l "$MNT"
rm -rf "$WORK"
mkdir -p "$MNT"
truncate -s 2G "$IMG"
# FOLIOFS_CLIENTS_MKFS_ARGS: more mkfs options, e.g. "--emulate-zoned --conv-zones 1"
# shellcheck disable=SC2086
"$MKFS" --format posix ${FOLIOFS_CLIENTS_MKFS_ARGS:-} "$IMG" >"$WORK/mkfs.out" 2>&1 || fail "mkfs: $(cat "$WORK/mkfs.out")"
# FOLIOFS_MOUNT_OPTS (as the conformance tests read it), e.g. "-o cache_size=8M"
# shellcheck disable=SC2086
"$FOLIOFS" -f ${FOLIOFS_MOUNT_OPTS:-} "$IMG" "$MNT" >"$WORK/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 500); do
	mountpoint -q "$MNT" && break
	kill -0 $pid 2>/dev/null || fail "foliofs did not mount: $(tail -5 "$WORK/daemon.log")"
	sleep 0.02
done
mountpoint -q "$MNT" || fail "foliofs did not mount in 10 s"

# run_dbench NAME SECONDS [dbench options]: fails on any sign of an error.
# dbench says "failed to create barrier semaphore" when SysV semaphores are
# unavailable (containers) and then starts its clients without one: not the
# filesystem's doing.
run_dbench() {
	local name=$1 t=$2 out=$WORK/$1.out
	shift 2
	mkdir -p "$MNT/$name"
	dbench -t "$t" "$@" -D "$MNT/$name" -c $LOADFILE 4 >"$out" 2>&1
	local rc=$?
	[ $rc -eq 0 ] || fail "dbench $name exited $rc: $(tail -5 "$out")"
	local bad
	bad=$(grep -iE 'error|fail|expected|warning|denied|no such|not supported' "$out" |
		grep -v 'failed to create barrier semaphore')
	[ -z "$bad" ] || fail "dbench $name reported: $(echo "$bad" | head -5)"
	grep -q '^Throughput' "$out" || fail "dbench $name printed no throughput: $(tail -5 "$out")"
	echo "  $name: $(grep '^Throughput' "$out")"
}

echo "40-dbench: ${T1} s plain, ${T2} s -s -S -x, 4 clients"
run_dbench plain $T1
run_dbench sync $T2 -s -S -x
rm -rf "$MNT/plain" "$MNT/sync" || fail "rm -rf of dbench's directories failed"

umount "$MNT" || fail "umount failed"
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || fail "foliofs exited $rc after umount: $(tail -5 "$WORK/daemon.log")"
"$FSCK" -n "$IMG" >"$WORK/fsck.out" 2>&1 || fail "fsck.foliofs -n exited $?: $(tail -8 "$WORK/fsck.out")"
echo PASS
