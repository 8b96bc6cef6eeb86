#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An image file and a loop device over it are one device: two daemons, or a
# daemon and mkfs, one on each name, would each keep their own metadata over
# the same blocks. Each way round, the second is refused with a message and
# a non-zero exit, and the image is left as it was:
#   - a mount of /dev/loopN, then a mount, an mkfs and an fsck of the file;
#   - a mount of the file, then a mount and an mkfs of /dev/loopN over it;
#   - XFS mounted on /dev/loopN, then an mkfs and a mount of the file, and a
#     mount and an fsck of /dev/loopN.
# The files written before are read back, and fsck.foliofs -n (xfs_repair -n
# for XFS) is clean afterwards: a refused command wrote nothing. A loop
# device that nobody holds does not keep the file from being mounted.
. "$(dirname "$0")/lib.sh"
need losetup
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs
LOOP=
MNT2=$W/mnt2
mkdir -p "$MNT2"
end() {
	local m
	for m in "$MNT2" "$MNT"; do
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	[ -n "$LOOP" ] && { wait_daemon_gone "$LOOP" 20; losetup -d "$LOOP" 2>/dev/null; }
	cleanup
}
trap end EXIT
# refused WHAT CMD...: CMD exits non-zero and says the device is in use (or
# matches $PAT); nothing is mounted on $MNT2
PAT="in use"
refused() {
	local what=$1 out rc
	shift
	out=$(timeout 20 "$@" 2>&1)
	rc=$?
	if mountpoint -q "$MNT2"; then
		umount "$MNT2" 2>/dev/null || umount -l "$MNT2"
		fail "$what: it mounted"
	fi
	[ $rc -ne 0 ] || fail "$what: exit status 0 ($out)"
	[ $rc -ne 124 ] || fail "$what: hung"
	echo "$out" | grep -qiE "$PAT" || fail "$what: message '$out' does not match /$PAT/"
	ok "refused: $what: $(echo "$out" | grep -iE "$PAT" | head -1)"
}

mkimg 512M --format posix --zone-size 16M # mkfs.xfs needs 300 MB
LOOP=$(losetup --direct-io=on -f --show "$IMG") || skip "no loop device"

# 1. the loop device mounted: the file's name is the same device
MOUNTS+=("$MNT")
"$FOLIOFS" "$LOOP" "$MNT" || fail "mount $LOOP"
echo data >"$MNT/f"
sync -f "$MNT/f"
refused "mount of the file under a mounted $LOOP" "$FOLIOFS" "$IMG" "$MNT2"
refused "mkfs of the file under a mounted $LOOP" "$MKFS" -f "$IMG"
refused "fsck -n of the file under a mounted $LOOP" "$FSCK" -n "$IMG"
# a loop device writes 512 B blocks: a 4 KiB O_DSYNC append is its data and
# a 512-byte data header, one write (4.5 KiB, not the 8 KiB of a 4 KiB header)
head -c 1M /dev/urandom >"$W/app"
stat_of() { "$FOLIOFS" stat --json "$MNT" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
b0=$(stat_of dev_bytes_written)
dd if="$W/app" of="$MNT/app" bs=4k oflag=dsync status=none || fail "O_DSYNC appends on $LOOP"
b1=$(stat_of dev_bytes_written)
[ $((b1 - b0)) -le $((1048576 * 5 / 4)) ] ||
	fail "256 O_DSYNC appends of 4 KiB on $LOOP wrote $((b1 - b0)) bytes, more than 1.25 MiB"
ok "256 O_DSYNC appends of 4 KiB on $LOOP wrote $((b1 - b0)) bytes"
umount "$MNT"
wait_daemon_gone "$LOOP" 30 || fail "the daemon for $LOOP did not exit"

# 2. the file mounted: the loop device over it is the same device
mnt
echo more >"$MNT/g"
refused "mount of $LOOP over a mounted file" "$FOLIOFS" "$LOOP" "$MNT2"
refused "mkfs of $LOOP over a mounted file" "$MKFS" -f "$LOOP"
refused "fsck -n of $LOOP over a mounted file" "$FSCK" -n "$LOOP"
umnt

# 3. a loop device that nobody holds keeps nothing from the file
mnt
expect_eq "the file mounts beside an idle $LOOP" "$(cat "$MNT/f" "$MNT/g" | tr '\n' ' ')" "data more "
cmp -s "$W/app" "$MNT/app" || fail "the appends made through $LOOP read back wrong from the file"
umnt
"$FSCK" -n "$IMG" >/dev/null || fail "fsck -n after the refusals"
ok "fsck -n clean"

# 4. another filesystem on the loop device
if command -v mkfs.xfs >/dev/null; then
	mkfs.xfs -q -f "$LOOP" || fail "mkfs.xfs"
	mount "$LOOP" "$MNT" || fail "mount -t xfs $LOOP"
	echo xfs >"$MNT/x"
	refused "mkfs of the file under XFS on $LOOP" "$MKFS" -f "$IMG"
	# XFS is no foliofs device either, but the mount says what mkfs says
	refused "mount of the file under XFS on $LOOP" "$FOLIOFS" "$IMG" "$MNT2"
	refused "mount of $LOOP with XFS on it" "$FOLIOFS" "$LOOP" "$MNT2"
	refused "fsck -n of $LOOP with XFS on it" "$FSCK" -n "$LOOP"
	umount "$MNT"
	xfs_repair -n "$LOOP" >/dev/null 2>&1 || fail "xfs_repair -n after the refusals"
	mount "$LOOP" "$MNT" || fail "mount -t xfs $LOOP again"
	expect_eq "XFS's file after the refusals" "$(cat "$MNT/x")" xfs
	umount "$MNT"
else
	note "mkfs.xfs not installed: the XFS case is not run"
fi
ok
