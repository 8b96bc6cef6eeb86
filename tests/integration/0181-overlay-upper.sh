#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A posix-format mount as overlayfs's upper layer, as container engines use
# a filesystem: overlayfs needs RENAME_WHITEOUT of its upper filesystem (and
# trusted.* xattrs, d_type). Through the overlay: a file created, one of the
# lower layer deleted (a whiteout), one of the lower layer changed (copied
# up), a directory of the lower layer removed and made again (opaque), a
# rename. After the overlay and foliofs are unmounted and mounted again,
# the overlay shows the same tree, the lower layer is untouched, and
# fsck.foliofs -n is clean.
set -u
. "$(dirname "$0")/lib.sh"
need mount umount
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"

LOWER=$W/lower
OVL=$W/ovl
mkdir -p "$LOWER/sub" "$LOWER/gone" "$OVL"
echo low >"$LOWER/l"
echo low2 >"$LOWER/sub/s"
echo g >"$LOWER/gone/x"
lower_sum=$(cd "$LOWER" && find . -type f -exec md5sum {} + | sort)

mkimg 256M
mnt
mkdir "$MNT/up" "$MNT/work" || fail "upper and work directories"
ovl_mount() {
	mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$MNT/up,workdir=$MNT/work" "$OVL" \
		2>"$W/ovl.err" || { cat "$W/ovl.err"; dmesg | tail -5; fail "mount -t overlay with a foliofs upper"; }
}
trap 'umount "$OVL" 2>/dev/null; cleanup' EXIT
ovl_mount
ok "overlayfs mounted with a foliofs upper layer"
echo new >"$OVL/new" || fail "create through the overlay"
rm "$OVL/l" || fail "delete a lower file through the overlay"
echo more >>"$OVL/sub/s" || fail "change a lower file through the overlay"
rm -r "$OVL/gone" && mkdir "$OVL/gone" && echo fresh >"$OVL/gone/y" || fail "opaque directory"
mv "$OVL/new" "$OVL/new2" || fail "rename through the overlay"
tree() { (cd "$OVL" && find . -printf '%y %p\n' | sort && cat new2 sub/s gone/y); }
before=$(tree)
[ -c "$MNT/up/l" ] || fail "no whiteout for the deleted lower file in the upper layer"
ok "the deleted lower file is a whiteout in the foliofs upper layer"
umount "$OVL" || fail "umount the overlay"
remount
ovl_mount
expect_eq "the overlay after remounting both" "$(tree)" "$before"
[ -e "$OVL/l" ] && fail "the deleted lower file is back"
[ -e "$OVL/gone/x" ] && fail "the removed lower directory's file is back"
umount "$OVL" || fail "umount the overlay"
expect_eq "the lower layer untouched" "$(cd "$LOWER" && find . -type f -exec md5sum {} + | sort)" "$lower_sum"
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck -n after the overlay"; }
ok "fsck -n clean"
echo "PASS $TNAME"
