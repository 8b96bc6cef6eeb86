#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# foliofs as a Debian administrator uses an installed filesystem, through
# the system's own tools and only the installed binaries: mkfs -t
# fuse.foliofs, mount -t fuse.foliofs, an fstab line with mount -a, fsck -t
# fuse.foliofs and fsck -A on that fstab (pass 2), fsck.foliofs, umount(8)
# (the data is there after it), foliofs stat, and the man pages.
# By default this build is installed (meson install --destdir) and bound on
# /usr/local/sbin in a private mount namespace (lib.sh in_installed_ns).
# With FOLIOFS_INSTALLED=1 (scripts/test's install stage, after meson
# install or apt-get install of the .deb) the machine's installed binaries
# are tested as they are, found on mount(8)'s standard PATH (in
# FOLIOFS_EXPECT_DIR, when given).
. "$(dirname "$0")/lib.sh"
need mount umount fsck mkfs man
STDPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "${FOLIOFS_INSTALLED:-0}" = 1 ]; then
	RUN=(env -i PATH=$STDPATH)
	MANPATHS=()
else
	in_installed_ns
	RUN=("${NS[@]}" env -i PATH=$STDPATH)
	MANPATHS=("$W/inst")
fi
run() { "${RUN[@]}" "$@"; }
want=$(run sh -c 'command -v foliofs') || fail "no foliofs on the standard PATH"
[ -z "${FOLIOFS_EXPECT_DIR:-}" ] || expect_eq "the foliofs on the standard PATH" "$want" "$FOLIOFS_EXPECT_DIR/foliofs"
for p in mkfs.foliofs fsck.foliofs fsck.fuse.foliofs mkfs.fuse.foliofs; do
	[ "$(run sh -c "command -v $p")" = "$(dirname "$want")/$p" ] ||
		fail "$p is not installed next to $want"
done
ok "installed: foliofs, mkfs.foliofs, fsck.foliofs, fsck.fuse.foliofs, mkfs.fuse.foliofs in $(dirname "$want")"

truncate -s 320M "$IMG"
run mkfs -t fuse.foliofs --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M -L inst "$IMG" >"$W/mkfs.out" 2>&1 ||
	{ cat "$W/mkfs.out"; fail "mkfs -t fuse.foliofs"; }
ok "mkfs -t fuse.foliofs"

is_mounted() { # $1 = what: a fuse.foliofs mount served by the installed daemon
	local pid
	run mountpoint -q "$MNT" || fail "$1: not mounted"
	MOUNTS+=("$MNT")
	run grep -qE "^[^ ]+ $MNT fuse\.foliofs " /proc/self/mounts || fail "$1: not fuse.foliofs"
	pid=$(daemon_pids "$IMG")
	expect_eq "$1: the daemon is the installed one" "$(readlink "/proc/$pid/exe")" "$want"
}
umounted() { # $1 = what
	run umount "$MNT" || fail "$1: umount"
	wait_daemon_gone "$IMG" 60 || fail "$1: the daemon did not exit after umount"
	ok "$1: umount(8)"
}

run mount -t fuse.foliofs "$IMG" "$MNT" -o cache_size=64M || fail "mount -t fuse.foliofs"
is_mounted "mount -t fuse.foliofs"
run python3 "$LIB_DIR/zf.py" fill "$MNT/seq/0" 0 2M 7 buffered >"$W/zf.out"
expect_eq "a buffered write" "$(cat "$W/zf.out")" OK
run foliofs stat --json "$MNT" | python3 -c 'import json, sys
s = json.load(sys.stdin); assert s["cache_user_bytes_written"] >= 2 << 20, s' ||
	fail "the installed foliofs stat --json"
ok "foliofs stat --json"
umounted "mount -t fuse.foliofs"
run fsck.foliofs -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck.foliofs -n: exit $?"; }
ok "fsck.foliofs -n: clean"
run fsck -t fuse.foliofs -n "$IMG" >"$W/fsck.out" 2>&1 ||
	{ cat "$W/fsck.out"; fail "fsck -t fuse.foliofs -n: exit $?"; }
ok "fsck -t fuse.foliofs -n: clean"

# the options administrators write in fstab: mount(8) and mount.fuse3 keep
# some of them for themselves, and foliofs must take the rest (fsck -A
# passes over a line with nofail or _netdev, so mount -a gets its own)
printf '%s %s fuse.foliofs defaults,noatime,nodiratime,lazytime,cache_size=32M 0 2\n' "$IMG" "$MNT" >"$W/fstab"
run env FSTAB_FILE="$W/fstab" fsck -A -n >"$W/fsck.out" 2>&1 ||
	{ cat "$W/fsck.out"; fail "fsck -A on an fstab with a fuse.foliofs line: exit $?"; }
grep -q "clean" "$W/fsck.out" || { cat "$W/fsck.out"; fail "fsck -A did not run fsck.fuse.foliofs"; }
ok "fsck -A (pass 2) runs fsck.fuse.foliofs: $(grep clean "$W/fsck.out")"
printf '%s %s fuse.foliofs defaults,nofail,_netdev,noatime,nodiratime,lazytime,cache_size=32M 0 2\n' "$IMG" "$MNT" >"$W/fstab"
run mount -a -T "$W/fstab" || fail "mount -a -T fstab"
is_mounted "fstab line, mount -a"
run python3 "$LIB_DIR/zf.py" check "$MNT/seq/0" 0 2M 7 >"$W/zf.out"
expect_eq "the data written before umount" "$(cat "$W/zf.out")" OK
run fsck.foliofs -n "$IMG" >/dev/null 2>&1
expect_eq "fsck.foliofs on the mounted image exits" $? 8
umounted "fstab line"

for m in foliofs mkfs.foliofs fsck.foliofs; do
	if [ ${#MANPATHS[@]} -gt 0 ]; then
		f=$(find "${MANPATHS[@]}" -path "*/man8/$m.8*" | head -1)
		[ -n "$f" ] && man -l "$f" >/dev/null 2>&1 || fail "man page $m(8) not installed"
	else
		man -w 8 "$m" >/dev/null 2>&1 || fail "man 8 $m finds no page"
	fi
done
ok "man pages foliofs(8), mkfs.foliofs(8), fsck.foliofs(8)"
echo "PASS $TNAME"
