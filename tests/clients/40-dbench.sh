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
# The image, mount, umount and fsck are lib.py's (`lib.py mounted`), which
# runs this script again with --mounted, WORK and MNT set.
set -u
LOADFILE=/usr/share/dbench/client.txt
T1=12 T2=8
if [ "${FOLIOFS_CLIENTS_LONG:-0}" != 0 ]; then T1=120 T2=60; fi

if [ "${1:-}" != --mounted ]; then
	if ! command -v dbench >/dev/null || [ ! -r $LOADFILE ]; then
		echo "SKIP: dbench not installed (scripts/install-deps)"
		exit 77
	fi
	exec python3 "$(dirname "$0")/lib.py" mounted dbench $((2 << 30)) bash "$0" --mounted
fi

fail() {
	echo "FAIL: $*"
	exit 1
}

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
