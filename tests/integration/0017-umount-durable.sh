#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# When `umount MNT` or `fusermount3 -u MNT` returns, everything written
# before it is on the device: 100 MiB of buffered appends to a sequential
# file and 4 MiB of buffered overwrites of a conventional one, never
# fsync'd, then the unmount, then a power cut at once (kill -9 of the daemon
# that may still be running, and ff-cut undoing every write that was not
# durable yet: FOLIOFS_FAULT=vlog). After a remount all of it is there.
# Rounds: fusermount3 -u; umount(8); and the installed binaries (meson
# install --destdir, put on mount(8)'s standard PATH in a private mount
# namespace) mounted from an fstab line with fuse.foliofs and unmounted with
# umount(8).
. "$(dirname "$0")/lib.sh"
need flock
CUT=$FOLIOFS_BUILD/tests/crash/ff-cut
[ -x "$CUT" ] || skip "build $CUT first"

mkimg 1G --format zonefs --emulate-zoned --conv-zones 2 --zone-size 128M

# power_cut PID: kill -9 the daemon, wait for its ring to go (the image lock
# goes with it), then drop every write that was not durable.
power_cut() {
	local i
	kill -9 "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		flock -xn "$IMG" true && break
		sleep 0.1
	done
	flock -xn "$IMG" true || fail "the killed daemon's image lock is still held"
	"$CUT" "$IMG" "$W/vlog" 1 0 >"$W/cut.out" || fail "ff-cut: $(cat "$W/cut.out")"
	note "power cut: $(cat "$W/cut.out")"
}

# round HOW SEED MOUNT-COMMAND...: write, unmount with HOW, power cut, check.
round() {
	local how=$1 seed=$2 pid
	shift 2
	rm -f "$W/vlog"
	FOLIOFS_FAULT="vlog=$W/vlog" "${NS[@]}" "$@" || fail "$how: mount failed"
	"${NS[@]}" mountpoint -q "$MNT" || fail "$how: not mounted"
	MOUNTS+=("$MNT")
	"${NS[@]}" $ZF fill "$MNT/seq/$seed" 0 100M "$seed" buffered 1M >"$W/fill.out"
	expect_eq "$how: 100 MiB buffered to seq/$seed" "$(cat "$W/fill.out")" OK
	"${NS[@]}" $ZF fill "$MNT/cnv/0" $((seed * 8))M 4M "$seed" buffered 64K >"$W/fill.out"
	expect_eq "$how: 4 MiB buffered to cnv/0" "$(cat "$W/fill.out")" OK
	pid=$(daemon_pids "$IMG")
	[ -n "$pid" ] || fail "$how: no daemon pid"
	[ "$how" = installed ] &&
		expect_eq "$how: the daemon runs" "$(readlink "/proc/$pid/exe")" /usr/local/sbin/foliofs
	case $how in
	fusermount3) "${NS[@]}" fusermount3 -u "$MNT" || fail "fusermount3 -u" ;;
	*) "${NS[@]}" umount "$MNT" || fail "umount" ;;
	esac
	power_cut "$pid"
	mnt
	expect_eq "$how: seq/$seed size after umount and power cut" "$(fsize "$MNT/seq/$seed")" \
		$((100 << 20))
	zf OK check "$MNT/seq/$seed" 0 100M "$seed"
	zf OK check "$MNT/cnv/0" $((seed * 8))M 4M "$seed"
	umnt
}

round fusermount3 1 "$FOLIOFS" -o cache_size=512M "$IMG" "$MNT"
round umount 2 "$FOLIOFS" -o cache_size=512M "$IMG" "$MNT"

note "the installed binaries, from an fstab line with type fuse.foliofs"
need mount umount
in_installed_ns
printf '%s %s fuse.foliofs noauto,cache_size=512M 0 0\n' "$IMG" "$MNT" >"$W/fstab"
round installed 3 mount -T "$W/fstab" "$MNT"
echo "PASS $TNAME"
