#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# mkfs.foliofs and other programs' filesystems. btrfs keeps its superblock at
# 64 KiB and mkfs.btrfs zeroes everything before it, so a look at the first
# blocks sees an empty device. On such an image, for both formats:
# - mkfs.foliofs without --force refuses, names btrfs, and writes nothing;
# - with --force it formats, and blkid no longer finds btrfs there (a stale
#   signature would still make blkid, udev and mount(8) call it btrfs);
#   the posix filesystem then mounts, takes a file and checks clean.
# The same for XFS and ext4 (their superblocks start the device), and for a
# GPT partition table, whose backup header is at the device's end. Before
# mkfs, the mount refuses each and fsck -n exits 8, both naming what blkid
# found, never telling to format it, and changing nothing.
. "$(dirname "$0")/lib.sh"
need blkid mkfs.btrfs mkfs.xfs mkfs.ext4

sha() { sha256sum <"$IMG" | cut -c1-64; }
foreign() { # TYPE: make an image holding it
	rm -f "$IMG"
	truncate -s 512M "$IMG"
	case $1 in
	btrfs) mkfs.btrfs -q "$IMG" >/dev/null 2>&1 ;;
	xfs) mkfs.xfs -q "$IMG" >/dev/null 2>&1 ;;
	ext4) mkfs.ext4 -q -F "$IMG" >/dev/null 2>&1 ;;
	gpt) printf 'label: gpt\n,\n' | sfdisk -q "$IMG" >/dev/null 2>&1 ;;
	esac || fail "making $1 on the image"
	blkid -p "$IMG" >/dev/null 2>&1 || fail "blkid does not see the $1 just made"
}

kinds="btrfs xfs ext4"
command -v sfdisk >/dev/null && kinds="$kinds gpt"
for kind in $kinds; do
	for fmt in posix zonefs; do
		args=(--format "$fmt")
		[ $fmt = zonefs ] && args+=(--zone-size 64M)
		foreign $kind
		s=$(sha)
		if [ $fmt = posix ]; then
			# the mount and fsck name what is there, and never offer to format it
			"$FOLIOFS" "$IMG" "$MNT" >"$W/mount.out" 2>&1 && { MOUNTS+=("$MNT"); fail "mounted $kind"; }
			grep -q "type $kind" "$W/mount.out" || { cat "$W/mount.out"; fail "the mount does not name $kind"; }
			grep -q "run mkfs" "$W/mount.out" && { cat "$W/mount.out"; fail "the mount offers to format $kind"; }
			"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1
			expect_eq "fsck -n's exit on $kind" "$?" 8
			grep -q "type $kind" "$W/fsck.out" || { cat "$W/fsck.out"; fail "fsck does not name $kind"; }
			expect_eq "$kind image unchanged by the mount and fsck" "$(sha)" "$s"
		fi
		"$MKFS" "${args[@]}" "$IMG" >"$W/mkfs.out" 2>&1 && { cat "$W/mkfs.out"; fail "mkfs.foliofs ${args[*]} formatted over $kind without --force"; }
		grep -Eq "$kind|data in its first" "$W/mkfs.out" || { cat "$W/mkfs.out"; fail "mkfs.foliofs does not say what it found ($kind)"; }
		expect_eq "$kind image unchanged by mkfs.foliofs ${args[*]} without --force" "$(sha)" "$s"
		"$MKFS" --force "${args[@]}" "$IMG" >"$W/mkfs.out" 2>&1 || { cat "$W/mkfs.out"; fail "mkfs.foliofs --force ${args[*]} over $kind"; }
		got=$(blkid -p -o value -s TYPE "$IMG" 2>/dev/null; blkid -p -o value -s PTTYPE "$IMG" 2>/dev/null)
		want=""
		[ $fmt = zonefs ] && want=zonefs # blkid knows the kernel zonefs superblock
		expect_eq "blkid after mkfs.foliofs --force ${args[*]} over $kind" "$(echo $got)" "$want"
	done
	"$MKFS" --force "$IMG" >"$W/mkfs.out" 2>&1 || { cat "$W/mkfs.out"; fail "mkfs.foliofs --force over zonefs"; }
	mnt
	echo hello >"$MNT/f"
	umnt
	"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck after mkfs over $kind"; }
	ok "posix over $kind: mounts, writes, checks clean"
done
echo "PASS $TNAME"
