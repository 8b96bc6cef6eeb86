#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# foliofs through mount(8) and mount.fuse3, as an /etc/fstab line would use
# it: `mount.fuse3 foliofs#IMG MNT -o ...` with the build dir on PATH; `mount
# -t fuse "PATH/foliofs#IMG"` and an fstab-style line (mount -T with a temp
# fstab) with foliofs options mixed with mount's own (rw, dev, suid, noauto,
# ro); `mount -t fuse.foliofs IMG MNT` and a fuse.foliofs fstab line with
# this build installed (meson install --destdir) on mount(8)'s standard PATH
# in a private mount namespace (mount(8) gives helpers a fixed PATH, so a
# build dir cannot serve them); umount(8) unmounts and the data is written
# back.
. "$(dirname "$0")/lib.sh"
need mount.fuse3 mount umount

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
export PATH=$(dirname "$FOLIOFS"):$PATH
check_mounted() { # $1 = what, $2 = option expected in /proc/mounts
	mountpoint -q "$MNT" || fail "$1: not mounted"
	MOUNTS+=("$MNT")
	grep -E "^[^ ]+ $MNT fuse\.foliofs " /proc/mounts | grep -q "$2" ||
		fail "$1: /proc/mounts says $(grep " $MNT " /proc/mounts)"
	ok "$1: mounted ($(grep " $MNT " /proc/mounts | cut -d' ' -f3,4))"
}

mount.fuse3 "foliofs#$IMG" "$MNT" -o cache_size=64M,errors=remount-ro || fail "mount.fuse3"
check_mounted "mount.fuse3 foliofs#IMG" "rw"
zf OK fill "$MNT/seq/0" 0 1M 1 buffered
umnt

mount -t fuse "$FOLIOFS#$IMG" "$MNT" -o cache_size=64M,max_folio=1M || fail "mount -t fuse"
check_mounted "mount -t fuse PATH#IMG" "rw"
zf OK check "$MNT/seq/0" 0 1M 1
zf OK fill "$MNT/seq/0" 1M 1M 1 sync
umount "$MNT" || fail "umount"
wait_daemon_gone "$IMG" 60 || fail "daemon did not exit after umount"
ok "umount(8)"

printf '%s %s fuse noauto,cache_size=64M,sync_mode=writethrough,ro 0 0\n' "$FOLIOFS#$IMG" "$MNT" >"$W/fstab"
mount -T "$W/fstab" "$MNT" || fail "mount -T fstab"
check_mounted "fstab line (ro)" "ro"
zf OK check "$MNT/seq/0" 0 2M 1
zf EROFS pwrite "$MNT/seq/0" 2M 4096 sync
umnt

note "the installed binaries: mount -t fuse.foliofs and a fuse.foliofs fstab line"
in_installed_ns
ns_mounted() { # $1 = what: mounted in the namespace, as fuse.foliofs, by the installed daemon
	local line pid
	"${NS[@]}" mountpoint -q "$MNT" || fail "$1: not mounted"
	line=$(grep -E "^[^ ]+ $MNT fuse\.foliofs " "/proc/$NSPID/mounts") ||
		fail "$1: not a fuse.foliofs mount: $(grep " $MNT " "/proc/$NSPID/mounts")"
	pid=$(daemon_pids "$IMG")
	expect_eq "$1: the daemon runs" "$(readlink "/proc/$pid/exe")" /usr/local/sbin/foliofs
	ok "$1: mounted ($(echo "$line" | cut -d' ' -f3,4))"
}
ns_umount() { # $1 = what
	"${NS[@]}" umount "$MNT" || fail "$1: umount"
	wait_daemon_gone "$IMG" 60 || fail "$1: daemon did not exit after umount"
}
"${NS[@]}" mount -t fuse.foliofs "$IMG" "$MNT" -o cache_size=64M || fail "mount -t fuse.foliofs"
ns_mounted "mount -t fuse.foliofs"
"${NS[@]}" $ZF fill "$MNT/seq/0" 2M 1M 1 sync >"$W/zf.out"
expect_eq "a write through it" "$(cat "$W/zf.out")" OK
ns_umount "mount -t fuse.foliofs"
printf '%s %s fuse.foliofs noauto,cache_size=32M 0 0\n' "$IMG" "$MNT" >"$W/fstab2"
"${NS[@]}" mount -T "$W/fstab2" "$MNT" || fail "mount -T (fuse.foliofs line)"
ns_mounted "fstab fuse.foliofs line"
"${NS[@]}" $ZF check "$MNT/seq/0" 0 3M 1 >"$W/zf.out"
expect_eq "the data through it" "$(cat "$W/zf.out")" OK
ns_umount "fstab fuse.foliofs line"
echo "PASS $TNAME"
