#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A posix superblock copy that is damaged while the other is valid, as an
# administrator meets it. On a regular image and on an emulated zoned one
# (zone 0, which holds both copies, is conventional on both):
# - a bad crc in either copy: fsck -n exits 4 and changes nothing; fsck -y
#   (or -p) rewrites the copy from the other and exits 1, leaving the image
#   byte for byte as it was before the damage; the mount then says nothing;
# - block 0 zeroed: fsck still finds the filesystem (through block 1) and
#   names copy 0 rather than calling the device unformatted; the mount
#   mounts from copy 1 and says that fsck restores copy 0; fsck -y does;
# - block 0 holding other data (another program wrote there): fsck -n and
#   -y exit 4 and change nothing, the mount refuses, and both say why;
# - both copies damaged, or the two copies valid but different: fsck -y
#   exits 4 and changes nothing, as does fsck -y through a read-only loop
#   device, saying it is read-only;
# - the description of the zones in the device's last 4 KiB overwritten
#   (other bytes, or a bad crc): on the regular image the mount refuses and
#   says fsck -y mends it, fsck -n exits 4, fsck -y exits 1 with the image
#   byte for byte as before; on the emulated image (whose zone capacity and
#   limits are recorded there alone) nothing mends it and fsck -y changes
#   nothing. A zeroed last block (an image cut short and grown again, which
#   lost more than that block) is never mended.
. "$(dirname "$0")/lib.sh"
[ -x "$FSCK" ] || fail "no $FSCK"

poke() { # OFFSET HEXBYTES
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$IMG" "$1" "$2"
}
fill() { # BLOCK BYTE-PATTERN-HEX: block BLOCK (4096 bytes) repeated pattern
	python3 -c 'import sys
b = bytes.fromhex(sys.argv[3]); b = (b * (4096 // len(b) + 1))[:4096]
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) * 4096); f.write(b)' "$IMG" "$1" "$2"
}
sha() { sha256sum <"$IMG" | cut -c1-64; }
same_as_good() { expect_eq "$1" "$(sha)" "$GOOD"; }
unchanged_by() { # $1 = expected exit, rest = args: the image must not change
	local s
	s=$(sha)
	fsck_rc "$@"
	expect_eq "image unchanged by fsck.foliofs ${*:2}" "$(sha)" "$s"
}
has() { grep -q -- "$1" "$2" || { cat "$2"; fail "$3"; }; }

for kind in regular emulated; do
	note "$kind image"
	if [ $kind = regular ]; then mkimg 256M; else mkimg 256M --emulate-zoned --conv-zones 2; fi
	mnt
	seq 1 50000 >"$MNT/f"
	umnt
	fsck_rc 0 -n "$IMG"
	GOOD=$(sha)
	cp "$IMG" "$W/img.good"

	for copy in 0 1; do
		poke $((copy * 4096 + 100)) 5a
		unchanged_by 4 -n "$IMG"
		has "superblock copy $copy: bad crc" "$W/fsck.out" "fsck does not name copy $copy"
		opt=-y
		[ $copy = 1 ] && opt=-p
		fsck_rc 1 $opt "$IMG"
		has "1 problem(s) corrected; clean now" "$W/fsck.out" "fsck $opt does not say what it corrected"
		same_as_good "copy $copy rewritten by fsck $opt: the image as before the damage"
		fsck_rc 0 -n "$IMG"
	done
	mnt
	has_warn=$(cat "$W/mount.out")
	expect_eq "the mount's messages after the repair" "$has_warn" ""
	cmp -s "$MNT/f" <(seq 1 50000) || fail "f differs after the repair"
	umnt

	if [ $kind = regular ] && LOOP=$(losetup -r -f --show "$IMG" 2>/dev/null); then
		poke 100 5a
		s=$(sha)
		"$FSCK" -y "$LOOP" >"$W/fsck.out" 2>&1
		rc=$?
		losetup -d "$LOOP"
		expect_eq "fsck -y on a read-only loop device: exit" "$rc" 4
		has "read-only" "$W/fsck.out" "fsck -y on a read-only device does not say it is read-only"
		expect_eq "image unchanged by fsck -y through a read-only device" "$(sha)" "$s"
		cp "$W/img.good" "$IMG"
	fi

	note "block 0 zeroed"
	cp "$W/img.good" "$IMG"
	fill 0 00
	unchanged_by 4 -n "$IMG"
	has "superblock copy 0" "$W/fsck.out" "fsck -n on a zeroed block 0 does not name copy 0"
	grep -q zonefs "$W/fsck.out" && { cat "$W/fsck.out"; fail "fsck took a zeroed block 0 for the zonefs format"; }
	mnt
	has "fsck.foliofs -y" "$W/mount.out" "the mount from copy 1 does not say that fsck restores copy 0"
	cmp -s "$MNT/f" <(seq 1 50000) || fail "f differs when mounted from copy 1"
	umnt
	fsck_rc 1 -y "$IMG"
	fsck_rc 0 -n "$IMG"
	cmp -s <(head -c 8192 "$IMG") <(head -c 8192 "$W/img.good") || fail "the restored superblock differs from mkfs's"
	ok "both copies as mkfs wrote them"

	note "block 0 overwritten with other data"
	cp "$W/img.good" "$IMG"
	fill 0 58465342deadbeef # XFSB and more: another program's block
	unchanged_by 4 -n "$IMG"
	has "other data" "$W/fsck.out" "fsck does not say block 0 holds other data"
	unchanged_by 4 -y "$IMG"
	s=$(sha)
	"$FOLIOFS" "$IMG" "$MNT" >"$W/mount.out" 2>&1 && { MOUNTS+=("$MNT"); fail "mounted over other data in block 0"; }
	has "other data" "$W/mount.out" "the mount's refusal does not say why"
	expect_eq "image unchanged by the refused mount" "$(sha)" "$s"

	note "both copies damaged; two valid copies that differ"
	cp "$W/img.good" "$IMG"
	poke 100 5a
	poke $((4096 + 100)) 5a
	unchanged_by 4 -y "$IMG"
	cp "$W/img.good" "$IMG"
	# a valid copy 1 of another filesystem: its crc holds, its uuid differs
	rm -f "$W/other"
	truncate -s 256M "$W/other"
	"$MKFS" "$W/other" >/dev/null 2>&1 || fail "mkfs of a second image"
	dd if="$W/other" of="$IMG" bs=4096 skip=1 seek=1 count=1 conv=notrunc status=none
	unchanged_by 4 -y "$IMG"
	has "differ" "$W/fsck.out" "fsck does not say the copies differ"
	cp "$W/img.good" "$IMG"

	note "the zones' description (the device's last 4 KiB) damaged"
	last=$(($(fsize "$IMG") / 4096 - 1))
	for how in garbage crc zeros; do
		cp "$W/img.good" "$IMG"
		case $how in
		garbage) fill $last 0123456789abcdef ;;
		crc) poke $((last * 4096 + 20)) 01 ;;
		zeros) fill $last 00 ;; # as an image cut short and grown again: not mended
		esac
		s=$(sha)
		"$FOLIOFS" "$IMG" "$MNT" >"$W/mount.out" 2>&1 && { MOUNTS+=("$MNT"); fail "mounted with the zones' description $how"; }
		expect_eq "image unchanged by the refused mount ($how)" "$(sha)" "$s"
		if [ $kind = regular ] && [ $how != zeros ]; then
			has "fsck.foliofs -y" "$W/mount.out" "the mount does not say that fsck mends the zones' description ($how)"
			unchanged_by 4 -n "$IMG"
			has "last 4 KiB is damaged" "$W/fsck.out" "fsck -n does not name the zones' description ($how)"
			fsck_rc 1 -y "$IMG"
			same_as_good "the zones' description written again ($how): the image as before the damage"
			mnt
			cmp -s "$MNT/f" <(seq 1 50000) || fail "f differs after the zones' description was written again"
			umnt
		else
			grep -q "fsck.foliofs -y" "$W/mount.out" && { cat "$W/mount.out"; fail "the mount offers fsck -y where it cannot mend ($kind, $how)"; }
			"$FSCK" -y "$IMG" >"$W/fsck.out" 2>&1 && { cat "$W/fsck.out"; fail "fsck -y exits 0 with the zones' description lost ($kind, $how)"; }
			expect_eq "image unchanged by fsck -y ($kind, $how: not mendable)" "$(sha)" "$s"
		fi
	done
	cp "$W/img.good" "$IMG"
done
echo "PASS $TNAME"
