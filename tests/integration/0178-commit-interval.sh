#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Changes nobody syncs are durable within the commit interval (posix format,
# -o commit=N, default 5 s, as ext4's commit=): sync(1) never reaches a FUSE
# daemon, so without it a mkdir, a create with no write, a rename, an unlink
# or a chmod stayed in the daemon's memory until an fsync, a close after
# writes or the unmount, and a kill -9 an hour later took them back, with
# the write-back of a file kept open on sequential zones. Here: those
# changes and buffered writes to a file that stays open, a wait of a few
# intervals, kill -9 of the daemon, and the remount has every one of them. A bad commit= value is refused with a
# message, nothing mounted and the image unchanged. Regular and
# emulated-zoned images.
. "$(dirname "$0")/lib.sh"

# changes, wait $1 s, kill -9, remount: every change is there
one() {
	local kind=$1 wait=$2 p
	shift 2
	mnt "$@"
	mkdir "$MNT/keep" && touch "$MNT/gone" || fail "$kind: setup"
	umnt
	mnt "$@"
	mkdir "$MNT/d" && touch "$MNT/a" && mv "$MNT/a" "$MNT/d/b" && rm "$MNT/gone" &&
		chmod 700 "$MNT/d" && mv "$MNT/keep" "$MNT/kept" || fail "$kind: changes"
	# and buffered writes to a file that stays open (no close, no fsync)
	python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"\x5a" * 65536)
print("written", flush=True)
time.sleep(600)' "$MNT/open" >"$W/writer.out" 2>&1 &
	local wpid=$! i
	for ((i = 0; i < 100; i++)); do
		grep -q written "$W/writer.out" && break
		sleep 0.05
	done
	grep -q written "$W/writer.out" || fail "$kind: the writer did not write"
	sleep "$wait"
	[ "$(stat_val committer_commits)" -ge 1 ] && [ "$(stat_val committer_times)" -ge 1 ] ||
		fail "$kind: the committer counted no commit, or no times: $(stats | grep committer)"
	p=$(daemon_pids "$IMG")
	[ -n "$p" ] || fail "$kind: no daemon"
	kill -9 $p
	kill -9 $wpid 2>/dev/null
	wait $wpid 2>/dev/null
	fusermount3 -uz "$MNT" 2>/dev/null
	wait_daemon_gone "$IMG" 30 || fail "$kind: the killed daemon did not go"
	mnt "$@"
	[ -d "$MNT/d" ] || fail "$kind: a mkdir $wait s old was lost to kill -9"
	expect_eq "$kind: mode of the chmod'ed directory" "$(stat -c %a "$MNT/d")" 700
	[ -f "$MNT/d/b" ] && [ ! -e "$MNT/a" ] || fail "$kind: a rename $wait s old was lost"
	[ ! -e "$MNT/gone" ] || fail "$kind: an unlink $wait s old was lost"
	[ -d "$MNT/kept" ] && [ ! -e "$MNT/keep" ] || fail "$kind: a directory rename was lost"
	expect_eq "$kind: an open file's buffered bytes" \
		"$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read() == b"\x5a" * 65536)' "$MNT/open")" True
	umnt
	"$FOLIOFS_BUILD/src/cli/fsck.foliofs" -n "$IMG" >"$W/fsck.out" 2>&1 ||
		{ cat "$W/fsck.out"; fail "$kind: fsck after the kill"; }
	ok "$kind: changes nobody synced survived kill -9 after $wait s"
}

mkimg 64M --format posix --zone-size 2M
one "regular, commit=1" 3 -o commit=1
mkimg 64M --format posix --zone-size 2M --emulate-zoned
one "emulated zoned, commit=1" 3 -o commit=1
mkimg 64M --format posix --zone-size 2M --emulate-zoned
one "emulated zoned, the default (5 s)" 8

for bad in x -1 1.5 86401 99999999999999999999 ""; do
	sum=$(md5sum <"$IMG")
	if "$FOLIOFS" -o "commit=$bad" "$IMG" "$MNT" >"$W/bad.out" 2>&1; then
		fusermount3 -u "$MNT"
		fail "commit=$bad was accepted"
	fi
	grep -q "bad value for commit" "$W/bad.out" || { cat "$W/bad.out"; fail "commit=$bad: no message"; }
	mountpoint -q "$MNT" && fail "commit=$bad: mounted"
	expect_eq "commit=$bad: image unchanged" "$(md5sum <"$IMG")" "$sum"
done
