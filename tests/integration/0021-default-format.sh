#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# mkfs.foliofs's default format: without --format it makes the posix format
# (a general filesystem) on a regular image and on an emulated zoned image,
# with no error message on the way; the mount is then a namespace where mkdir,
# create, rename and unlink work, and fsck.foliofs -n finds it clean.
# --format zonefs still makes the kernel zonefs layout (cnv/ and seq/, no
# mkdir). mkfs over a filesystem of the other format is refused without
# --force (exit 1, image unchanged) and formats it with --force. -L labels
# either format. The options only the zonefs superblock holds (--uid, --gid,
# --perm, --aggr-cnv) are refused without --format zonefs (exit 2, image
# unchanged).
. "$(dirname "$0")/lib.sh"

shaof() { sha256sum <"$1"; }

# is_posix WHAT: $IMG, formatted, holds the posix format with a working namespace
is_posix() {
	grep -q "posix format" "$W/mkfs.out" || { cat "$W/mkfs.out"; fail "$1: mkfs summary is not posix"; }
	[ -s "$W/mkfs.out.err" ] && { cat "$W/mkfs.out.err"; fail "$1: mkfs printed an error and succeeded"; }
	mnt
	[ -e "$MNT/seq" ] || [ -e "$MNT/cnv" ] && fail "$1: the zonefs layout (seq/, cnv/) is there"
	mkdir "$MNT/d" || fail "$1: mkdir"
	echo hello >"$MNT/d/a" || fail "$1: create"
	mv "$MNT/d/a" "$MNT/b" || fail "$1: rename"
	expect_eq "$1: the renamed file" "$(cat "$MNT/b")" hello
	rm "$MNT/b" && rmdir "$MNT/d" || fail "$1: unlink, rmdir"
	echo kept >"$MNT/kept"
	umnt
	"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$1: fsck.foliofs -n: exit $?"; }
	ok "$1: posix format, namespace works, fsck clean ($(head -1 "$W/mkfs.out"))"
}
# mkfs_img SIZE [mkfs args...]: as mkimg, with mkfs's stderr apart
mkfs_img() {
	local size=$1
	shift
	rm -f "$IMG"
	truncate -s "$size" "$IMG" || fail "truncate $IMG"
	"$MKFS" "$@" "$IMG" >"$W/mkfs.out" 2>"$W/mkfs.out.err" ||
		{ cat "$W/mkfs.out" "$W/mkfs.out.err"; fail "mkfs.foliofs $* failed"; }
}
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

# 1. the default on a regular image (no zone options at all) and on an emulated zoned one
mkfs_img 256M
is_posix "default, regular image"
mkfs_img 320M --emulate-zoned --conv-zones 2 --zone-size 16M
grep -q "emulated-zoned" "$W/mkfs.out" || fail "not an emulated zoned device: $(cat "$W/mkfs.out")"
is_posix "default, emulated zoned image"

# 2. --format zonefs: the kernel zonefs layout, no namespace operations
mkfs_img 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 16M
mnt
[ -e "$MNT/cnv/0" ] && [ -e "$MNT/seq/0" ] || fail "--format zonefs: no cnv/0 and seq/0"
mkdir "$MNT/d" 2>/dev/null && fail "--format zonefs: mkdir worked"
umnt
ok "--format zonefs: cnv/ and seq/, mkdir refused"

# 3. mkfs over the other format: refused without --force (the refusal
# names the format there), done with it
s=$(shaof "$IMG")
"$MKFS" --emulate-zoned --conv-zones 2 --zone-size 16M "$IMG" >"$W/out" 2>&1
expect_eq "default mkfs over a zonefs image without --force: exit" $? 1
grep -q -- "--force" "$W/out" || { cat "$W/out"; fail "the refusal does not mention --force"; }
grep -q "holds a filesystem in foliofs's zonefs format" "$W/out" || { cat "$W/out"; fail "the refusal does not name the zonefs format"; }
expect_eq "the zonefs image after the refused mkfs" "$(shaof "$IMG")" "$s"
"$MKFS" --force --emulate-zoned --conv-zones 2 --zone-size 16M "$IMG" >"$W/mkfs.out" 2>"$W/mkfs.out.err" ||
	fail "mkfs --force over zonefs"
is_posix "default mkfs --force over a zonefs image"
s=$(shaof "$IMG")
"$MKFS" --format zonefs --emulate-zoned --conv-zones 2 --zone-size 16M "$IMG" >"$W/out" 2>&1
expect_eq "mkfs --format zonefs over a posix image without --force: exit" $? 1
grep -q -- "--force" "$W/out" || { cat "$W/out"; fail "the refusal does not mention --force"; }
grep -q "holds a filesystem in foliofs's posix format" "$W/out" || { cat "$W/out"; fail "the refusal does not name the posix format"; }
expect_eq "the posix image after the refused mkfs" "$(shaof "$IMG")" "$s"
"$MKFS" --format zonefs --force --emulate-zoned --conv-zones 2 --zone-size 16M "$IMG" >/dev/null 2>&1 ||
	fail "mkfs --format zonefs --force over posix"
mnt
[ -e "$MNT/seq/0" ] && [ ! -e "$MNT/kept" ] || fail "zonefs over posix: not the zonefs layout"
umnt
ok "mkfs --format zonefs --force over a posix image: the zonefs layout"

# 4. a label: -L on the posix format too; mkfs's summary and fsck show it,
# a 65-byte one is refused (exit 2, nothing written)
L64=0123456789012345678901234567890123456789012345678901234567890123
for opt in "-L" "--label"; do
	"$MKFS" --force $opt "data $opt" --zone-size 16M "$IMG" >"$W/out" 2>&1 || { cat "$W/out"; fail "mkfs $opt"; }
	grep -q "label 'data $opt'" "$W/out" || { cat "$W/out"; fail "mkfs $opt: the summary lacks the label"; }
	"$FSCK" -n -v "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck after mkfs $opt"; }
	grep -q "label 'data $opt'" "$W/fsck.out" || { cat "$W/fsck.out"; fail "fsck -v lacks the label"; }
done
"$MKFS" --force -L "$L64" --zone-size 16M "$IMG" >"$W/out" 2>&1 || { cat "$W/out"; fail "mkfs -L <64 bytes>"; }
"$FSCK" -n -v "$IMG" | grep -q "label '$L64'" || fail "fsck -v lacks the 64-byte label"
mnt
umnt
s=$(shaof "$IMG")
"$MKFS" --force -L "${L64}x" --zone-size 16M "$IMG" >"$W/out" 2>&1
expect_eq "mkfs -L <65 bytes>: exit" $? 2
expect_eq "the image after the refused label" "$(shaof "$IMG")" "$s"
ok "posix labels: $(grep -o "label '[^']*'" "$W/fsck.out" | head -1)"

# 5. zonefs-only options without --format zonefs: exit 2, nothing written
s=$(shaof "$IMG")
for opt in "--uid 1" "--gid 1" "--perm 600" "--aggr-cnv"; do
	for fmt in "" "--format posix"; do
		# shellcheck disable=SC2086
		"$MKFS" --force $fmt $opt --zone-size 16M "$IMG" >"$W/out" 2>&1
		rc=$?
		[ $rc -eq 2 ] || { cat "$W/out"; fail "mkfs $fmt $opt: exit $rc, want 2"; }
		grep -q -- "--format zonefs" "$W/out" || { cat "$W/out"; fail "mkfs $fmt $opt: no hint"; }
	done
done
expect_eq "the image after the refused zonefs-only options" "$(shaof "$IMG")" "$s"
ok "zonefs-only options without --format zonefs: exit 2 ($(head -1 "$W/out"))"
echo "PASS $TNAME"
