#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A device whose size changed after mkfs.foliofs, as an administrator makes
# one: an image file grown with truncate (room for later), an image cut short
# by a copy that ran out of space, a loop device over a grown image (a
# partition or volume extended).
# - A grown image file, or a grown block device of the posix format (whose
#   superblock says how large it was), mounts as it was made: the same
#   files, the same size in df, with a notice; fsck -n is clean, and
#   shrinking it back is harmless.
# - A device cut short is refused (non-zero exit) with a message that says
#   its size changed, and never that it should be formatted again;
#   fsck.foliofs refuses it too; not a byte of it changes. An image file cut
#   short has lost its end, where mkfs laid the zones' description, and
#   stays refused when grown back.
# For the posix format on a regular and an emulated-zoned image, and for the
# zonefs format.
set -u
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

put_files() {
	head -c 3000000 /dev/urandom >"$W/a" && head -c 5000 /dev/urandom >"$W/b" ||
		fail "making the test files"
	if [ "$1" = zonefs ]; then
		dd if="$W/a" of="$MNT/cnv/0" conv=notrunc status=none || fail "$1: writing cnv/0"
		# a sync write to a sequential zone ends on a block (0005-subblock)
		dd if="$W/a" of="$MNT/seq/0" bs=4096 count=2 oflag=sync conv=notrunc status=none ||
			fail "$1: writing seq/0"
	else
		cp "$W/a" "$MNT/a" && mkdir "$MNT/d" && cp "$W/b" "$MNT/d/b" || fail "$1: writing files"
	fi
}

check_files() { # $1 = format, $2 = what
	if [ "$1" = zonefs ]; then
		cmp -n 3000000 "$W/a" "$MNT/cnv/0" >/dev/null || fail "$2: cnv/0 differs"
		cmp -n 8192 "$W/a" "$MNT/seq/0" >/dev/null && [ "$(fsize "$MNT/seq/0")" = 8192 ] ||
			fail "$2: seq/0 differs"
	else
		cmp "$W/a" "$MNT/a" >/dev/null && cmp "$W/b" "$MNT/d/b" >/dev/null ||
			fail "$2: the files differ"
	fi
	ok "$2: the files read back"
}

# refused WHAT DEVICE: mount and fsck -n of DEVICE fail, say why, change nothing
refused() {
	local what=$1 dev=$2 sum out rc
	sum=$(sha1sum <"$dev")
	out=$("$FOLIOFS" "$dev" "$MNT" 2>&1)
	rc=$?
	mountpoint -q "$MNT" && fail "$what: it mounted"
	[ $rc -ne 0 ] || fail "$what: the mount exited 0"
	grep -qi "size changed\|cut short\|grew" <<<"$out" || fail "$what: the mount says: $out"
	grep -qi "mkfs" <<<"$out" && ! grep -qi "since mkfs\|after mkfs\|by mkfs\|at mkfs" <<<"$out" &&
		fail "$what: the mount tells to format it: $out"
	ok "$what: mount refused: $(head -1 <<<"$out")"
	out=$("$FSCK" -n "$dev" 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "$what: fsck -n exited 0: $out"
	grep -qi "size changed\|cut short\|grew" <<<"$out" || fail "$what: fsck -n says: $out"
	ok "$what: fsck -n refused (exit $rc)"
	[ "$(sha1sum <"$dev")" = "$sum" ] || fail "$what: the device changed"
	ok "$what: not a byte changed"
}

case_image() { # $1 = format name, then mkfs args
	local fmt=$1 size
	shift
	mkimg 512M "$@"
	mnt
	put_files "$fmt"
	local df0
	df0=$(df -B1 --output=size "$MNT" | tail -1)
	umnt
	size=$(fsize "$IMG")

	truncate -s 1G "$IMG"
	mnt
	grep -qi "grew" "$W/mount.out" || fail "$fmt: no notice that the image grew: $(cat "$W/mount.out")"
	# the mount's check and the daemon each open the device: one notice
	expect_eq "$fmt: notices that the image grew" "$(grep -ci "grew" "$W/mount.out")" 1
	check_files "$fmt" "$fmt, image grown to 1 GiB"
	expect_eq "$fmt, grown: df's size" "$(df -B1 --output=size "$MNT" | tail -1)" "$df0"
	umnt
	"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$fmt, grown: fsck -n"; }
	ok "$fmt, grown: fsck -n clean"
	expect_eq "$fmt: fsck's notices that the image grew" "$(grep -ci "grew" "$W/fsck.out")" 1

	truncate -s $((size - (64 << 20))) "$IMG"
	refused "$fmt, image cut short by 64 MiB" "$IMG"
	truncate -s 100M "$IMG"
	refused "$fmt, image cut to 100 MiB" "$IMG"
	truncate -s "$size" "$IMG"
	refused "$fmt, image cut short, then grown back" "$IMG"
}

case_image posix-regular
case_image posix-emulated --emulate-zoned --zone-size 16M
case_image zonefs --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M

# A loop device over an image that grew, as a partition or volume extended:
# the superblock says where the device ended at mkfs, and its zones are
# found there. Cut short, it is refused.
if LOOP=$(losetup -f --show "$IMG" 2>/dev/null); then
	trap 'losetup -d "$LOOP" 2>/dev/null; cleanup' EXIT
	"$MKFS" -f "$LOOP" >"$W/mkfs.out" 2>&1 || { cat "$W/mkfs.out"; fail "mkfs on $LOOP"; }
	IMG0=$IMG
	IMG=$LOOP
	mnt
	put_files posix
	df0=$(df -B1 --output=size "$MNT" | tail -1)
	umnt
	size=$(fsize "$IMG0")
	truncate -s $((size + (256 << 20))) "$IMG0"
	losetup -c "$LOOP" || fail "losetup -c"
	mnt
	grep -qi "grew" "$W/mount.out" || fail "loop: no notice that the device grew: $(cat "$W/mount.out")"
	expect_eq "loop: notices that the device grew" "$(grep -ci "grew" "$W/mount.out")" 1
	check_files posix "loop device grown by 256 MiB"
	expect_eq "loop, grown: df's size" "$(df -B1 --output=size "$MNT" | tail -1)" "$df0"
	umnt
	"$FSCK" -n "$LOOP" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "loop, grown: fsck -n"; }
	ok "loop, grown: fsck -n clean"
	truncate -s "$size" "$IMG0"
	losetup -c "$LOOP" || fail "losetup -c"
	mnt
	check_files posix "loop device given back its size"
	umnt
	truncate -s $((size - (64 << 20))) "$IMG0"
	losetup -c "$LOOP" || fail "losetup -c"
	refused "posix on a loop device cut short by 64 MiB" "$LOOP"
	IMG=$IMG0
else
	note "no loop device: the block device case is not run"
fi
