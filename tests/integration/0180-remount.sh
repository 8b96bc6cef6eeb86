#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# mount -o remount,ro and remount,rw of a fuse.foliofs mount, with the
# installed binaries as mount(8) runs them (through mount.fuse3):
# - remount,ro makes the mount read-only (writes get EROFS, reads work)
#   and, when it returns, what nobody synced is on the device: a rename and
#   a mkdir made under commit=60 survive a kill -9 of the daemon right
#   after it (and do not without the remount: the check is live);
# - it is refused (EBUSY, said) while a file is open for writing;
# - remount,rw makes it writable again; remount,ro,noexec sets noexec too;
# - remount,rw of a mount whose daemon has the device read-only (-o ro)
#   is refused, and the mount stays read-only;
# - a mount has suid and dev by default, and -o nosuid,nodev,noexec sets
#   all three.
set -u
. "$(dirname "$0")/lib.sh"
need mount umount

mkimg 256M
in_installed_ns
opts() { grep -E "^[^ ]+ $MNT " "/proc/$NSPID/mounts" | cut -d' ' -f4; }
ns() { "${NS[@]}" "$@"; }
kill_daemon() {
	local p
	for p in $(daemon_pids "$IMG"); do kill -9 "$p"; done
	wait_daemon_gone "$IMG" 10 || fail "the daemon survived kill -9"
	ns umount "$MNT" 2>/dev/null || ns umount -l "$MNT"
}

ns mount -t fuse.foliofs "$IMG" "$MNT" -o commit=60 || fail "mount -t fuse.foliofs"
ns sh -c "mkdir $MNT/q && echo a >$MNT/q/a && echo keep >$MNT/k" || fail "first files"
ns umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"

# what nobody synced, with and without the remount
for mode in none remount; do
	ns mount -t fuse.foliofs "$IMG" "$MNT" -o commit=60 || fail "$mode: mount"
	ns sh -c "mv $MNT/q/a $MNT/q/b-$mode && mkdir $MNT/q/d-$mode" || fail "$mode: rename, mkdir"
	if [ $mode = remount ]; then
		ns mount -o remount,ro "$MNT" >"$W/out" 2>&1 || { cat "$W/out"; fail "remount,ro"; }
		opts | grep -qE '(^|,)ro(,|$)' || fail "remount,ro: not ro: $(opts)"
		ok "remount,ro: $(opts)"
		ns sh -c "echo x >$MNT/q/new" 2>"$W/err" && fail "a create on the read-only mount"
		grep -q "Read-only" "$W/err" || fail "a create on the read-only mount: $(cat "$W/err")"
		expect_eq "a read on the read-only mount" "$(ns cat "$MNT/k")" keep
	fi
	kill_daemon
	ns mount -t fuse.foliofs "$IMG" "$MNT" || fail "$mode: mount after kill -9"
	got=$(ns ls "$MNT/q" | tr '\n' ' ')
	if [ $mode = remount ]; then
		expect_eq "after remount,ro and kill -9: the rename and the mkdir" "$got" "b-remount d-remount "
	else
		# commit=60: neither was synced, so neither is there (the check above is live)
		expect_eq "after kill -9 without the remount" "$got" "a "
	fi
	ns umount "$MNT" || fail "umount"
	wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"
done

ns mount -t fuse.foliofs "$IMG" "$MNT" || fail "mount"
# a file open for writing keeps it read-write
ns sh -c "exec 7>$MNT/held; mount -o remount,ro $MNT" >"$W/out" 2>&1 && fail "remount,ro with a file open for writing"
grep -q "open for writing" "$W/out" || { cat "$W/out"; fail "remount,ro while busy: unclear message"; }
opts | grep -qE '(^|,)rw(,|$)' || fail "the busy remount left it not rw: $(opts)"
ok "remount,ro refused while a file is open for writing: $(head -1 "$W/out")"
ns mount -o remount,ro,noexec "$MNT" || fail "remount,ro,noexec"
opts | grep -qE '(^|,)ro,noexec(,|$)' || fail "remount,ro,noexec: $(opts)"
ok "remount,ro,noexec: $(opts)"
ns mount -o remount,rw,exec "$MNT" || fail "remount,rw"
opts | grep -qE '(^|,)rw(,|$)' || fail "remount,rw: $(opts)"
ns sh -c "echo y >$MNT/after" || fail "a write after remount,rw"
expect_eq "a write after remount,rw" "$(ns cat "$MNT/after")" y
ns umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"

# a daemon with the device read-only cannot become writable
ns mount -t fuse.foliofs "$IMG" "$MNT" -o ro || fail "mount -o ro"
ns mount -o remount,rw "$MNT" >"$W/out" 2>&1 && fail "remount,rw of a -o ro daemon"
grep -q "started with -o ro" "$W/out" || { cat "$W/out"; fail "remount,rw of -o ro: unclear message"; }
opts | grep -qE '(^|,)ro(,|$)' || fail "remount,rw of -o ro: not ro any more: $(opts)"
ok "remount,rw of a -o ro daemon refused: $(head -1 "$W/out")"
ns umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"

# root's mount honours setuid files and device nodes, as a kernel
# filesystem's does, unless the user asks otherwise: nosuid and nodev
# then hold (a setuid program there must not run as its owner)
ns mount -t fuse.foliofs "$IMG" "$MNT" || fail "mount"
opts | grep -qE '(^|,)(nosuid|nodev)(,|$)' && fail "a default mount: $(opts)"
ok "a default mount has suid and dev: $(opts)"
ns umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"
ns mount -t fuse.foliofs "$IMG" "$MNT" -o nosuid,nodev,noexec || fail "mount -o nosuid,nodev,noexec"
for o in nosuid nodev noexec; do
	opts | grep -qE "(^|,)$o(,|$)" || fail "-o nosuid,nodev,noexec: no $o in $(opts)"
done
ok "-o nosuid,nodev,noexec: $(opts)"
ns umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "the daemon did not exit"
echo "PASS $TNAME"
