#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad devices, images and options are refused with a clear message and a
# non-zero exit, nothing gets mounted, and the image bytes are unchanged
# (sha256 before and after): nonexistent path, a directory, an unformatted
# (zero) image, random bytes, an image too small, a zonefs superblock with a
# bad crc or unknown feature bits, an image already mounted, unknown and bad
# -o values, a mountpoint that is not a directory; and mkfs.foliofs over an
# existing filesystem or foliofs image without --force, on a read-only loop
# device, and on an image its user may not write.
. "$(dirname "$0")/lib.sh"

# refuse WHAT PATTERN CMD...: CMD fails, says PATTERN, mounts nothing.
refuse() {
	local what=$1 pat=$2 rc
	shift 2
	"$@" >"$W/out" 2>&1
	rc=$?
	[ $rc -ne 0 ] || { cat "$W/out"; fail "$what: exit 0"; }
	grep -qiE -- "$pat" "$W/out" || { cat "$W/out"; fail "$what: message does not say /$pat/"; }
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT"; fail "$what: mounted anyway"; }
	ok "$what: exit $rc, '$(head -1 "$W/out")'"
}
shaof() { sha256sum "$1" | cut -d' ' -f1; }

refuse "nonexistent device" "no such file" "$FOLIOFS" "$W/nothere" "$MNT"
mkdir "$W/adir"
refuse "a directory" "directory|not a (block device|regular)|is a directory" "$FOLIOFS" "$W/adir" "$MNT"

truncate -s 256M "$W/img.zero"
s=$(shaof "$W/img.zero")
refuse "unformatted image" "mkfs.foliofs|not a foliofs" "$FOLIOFS" "$W/img.zero" "$MNT"
# it was never formatted: not "too small for the default zone size" as well,
# nor "in use" (nobody uses it: the check must not trip on its own lock)
grep -qE "too small|in use" "$W/out" && { cat "$W/out"; fail "unformatted image: said to be too small or in use"; }
"$FOLIOFS_BUILD/src/cli/fsck.foliofs" -n "$W/img.zero" >"$W/out" 2>&1
expect_eq "fsck.foliofs -n of an unformatted image: exit" "$?" 8
grep -q "not a foliofs device" "$W/out" && ! grep -qE "too small|in use" "$W/out" ||
	{ cat "$W/out"; fail "fsck.foliofs of an unformatted image does not say it is not a foliofs device, or says more"; }
expect_eq "unformatted image unchanged" "$(shaof "$W/img.zero")" "$s"

head -c 64M /dev/urandom >"$W/img.rand"
s=$(shaof "$W/img.rand")
refuse "random bytes" "mkfs.foliofs|not a foliofs|superblock" "$FOLIOFS" "$W/img.rand" "$MNT"
expect_eq "random image unchanged" "$(shaof "$W/img.rand")" "$s"

truncate -s 1M "$W/img.small"
refuse "mkfs of a too small image" "small|size|zone" "$MKFS" --format zonefs --emulate-zoned --zone-size 64M "$W/img.small"
refuse "mount of a too small image" "not a foliofs" "$FOLIOFS" "$W/img.small" "$MNT"

mkimg 256M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
cp --sparse=always "$IMG" "$W/img.crc"
printf '\xff' | dd of="$W/img.crc" bs=1 seek=100 conv=notrunc status=none
s=$(shaof "$W/img.crc")
refuse "superblock with a bad crc" "checksum|crc|corrupt" "$FOLIOFS" "$W/img.crc" "$MNT"
expect_eq "bad-crc image unchanged" "$(shaof "$W/img.crc")" "$s"

cp --sparse=always "$IMG" "$W/img.feat"
python3 - "$W/img.feat" <<'PY'
import struct, sys, zlib
with open(sys.argv[1], 'r+b') as f:
    b = bytearray(f.read(4096))
    b[88:96] = struct.pack('<Q', 1 << 20)  # an unknown feature bit (s_features is at 88)
    b[4:8] = b'\0\0\0\0'
    crc = zlib.crc32(bytes(b)) ^ 0xffffffff  # the kernel's crc32_le(~0, ...), no final xor
    b[4:8] = struct.pack('<I', crc)
    f.seek(0)
    f.write(b)
PY
s=$(shaof "$W/img.feat")
refuse "unknown feature bits" "feature" "$FOLIOFS" "$W/img.feat" "$MNT"
expect_eq "unknown-feature image unchanged" "$(shaof "$W/img.feat")" "$s"

note "options"
s=$(shaof "$IMG")
refuse "unknown -o option" "unknown|invalid|bad|option" "$FOLIOFS" -o frobnicate "$IMG" "$MNT"
refuse "bad cache_size" "cache_size" "$FOLIOFS" -o cache_size=lots "$IMG" "$MNT"
refuse "zero cache_size" "cache_size" "$FOLIOFS" -o cache_size=0 "$IMG" "$MNT"
refuse "cache_size below 4 x max_folio" "cache_size" "$FOLIOFS" -o cache_size=1M "$IMG" "$MNT"
refuse "bad max_folio" "max_folio" "$FOLIOFS" -o max_folio=3000 "$IMG" "$MNT"
refuse "bad sync_mode" "sync_mode" "$FOLIOFS" -o sync_mode=maybe "$IMG" "$MNT"
refuse "bad dirty_granularity" "dirty_granularity" "$FOLIOFS" -o dirty_granularity=byte "$IMG" "$MNT"
refuse "bad defrag" "defrag" "$FOLIOFS" -o defrag=0 "$IMG" "$MNT"
refuse "bad errors=" "errors" "$FOLIOFS" -o errors=panic "$IMG" "$MNT"
touch "$W/afile"
refuse "mountpoint not a directory" "not a directory" "$FOLIOFS" "$IMG" "$W/afile"
refuse "missing mountpoint" "usage" "$FOLIOFS" "$IMG"
expect_eq "image unchanged by refused mounts" "$(shaof "$IMG")" "$s"

note "an image already mounted"
mnt
mkdir -p "$W/mnt2"
MOUNTS+=("$W/mnt2")
"$FOLIOFS" "$IMG" "$W/mnt2" >"$W/out" 2>&1
rc=$?
if mountpoint -q "$W/mnt2"; then
	fusermount3 -u "$W/mnt2"
	fail "the same image mounted twice (exit $rc)"
fi
[ $rc -ne 0 ] || fail "second mount of the same image: exit 0"
grep -qiE "in use|busy|already" "$W/out" || { cat "$W/out"; fail "second mount: unclear message"; }
ok "second mount refused: $(head -1 "$W/out")"
zf OK fill "$MNT/seq/0" 0 64K 3 sync
"$MKFS" --format zonefs --force --emulate-zoned --zone-size 64M "$IMG" >"$W/out" 2>&1 && fail "mkfs --force of a mounted image: exit 0"
grep -q "in use" "$W/out" || { cat "$W/out"; fail "mkfs --force of a mounted image: unclear message"; }
ok "mkfs --force of a mounted image refused: $(head -1 "$W/out")"
zf OK check "$MNT/seq/0" 0 64K 3
umnt

note "mkfs over existing data needs --force"
s=$(shaof "$IMG")
refuse "mkfs over a foliofs image" "force" "$MKFS" --format zonefs --emulate-zoned --zone-size 64M "$IMG"
expect_eq "foliofs image unchanged" "$(shaof "$IMG")" "$s"
if command -v mkfs.ext4 >/dev/null; then
	truncate -s 64M "$W/img.ext4"
	mkfs.ext4 -q -F "$W/img.ext4" || fail "mkfs.ext4"
	s=$(shaof "$W/img.ext4")
	refuse "mkfs over ext4" "force" "$MKFS" --format zonefs --zone-size 16M "$W/img.ext4"
	expect_eq "ext4 image unchanged" "$(shaof "$W/img.ext4")" "$s"
fi
s=$(shaof "$W/img.rand")
refuse "mkfs over random data" "force" "$MKFS" --format zonefs --zone-size 16M "$W/img.rand"
expect_eq "random image unchanged by mkfs" "$(shaof "$W/img.rand")" "$s"
"$MKFS" --format zonefs --force --emulate-zoned --conv-zones 2 --zone-size 64M "$IMG" >/dev/null || fail "mkfs --force"
mnt
expect_eq "reformatted: seq/0 empty" "$(fsize "$MNT/seq/0")" 0

note "a mount point a killed daemon left behind"
for p in $(daemon_pids "$IMG"); do kill -9 "$p"; done
wait_daemon_gone "$IMG" 10 || fail "the daemon survived kill -9"
"$FOLIOFS" "$IMG" "$MNT" >"$W/out" 2>&1 && fail "a mount over a dead mount point: exit 0"
grep -q "daemon is gone" "$W/out" && grep -q "umount $MNT" "$W/out" ||
	{ cat "$W/out"; fail "a mount over a dead mount point: unclear message"; }
ok "a mount over a dead mount point refused: $(head -1 "$W/out")"
umount "$MNT" || fail "umount of the dead mount point"
mnt
expect_eq "mounted again after the umount: seq/0 empty" "$(fsize "$MNT/seq/0")" 0
umnt

# zones too small for the device: every checkpoint holds a record per zone,
# and the metadata zones would have no room left for files. mkfs refuses
# before it writes, even with --force: the filesystem there stays.
mkimg 512M --format posix
mnt
echo kept >"$MNT/k"
umnt
s=$(shaof "$IMG")
for zs in 16K 64K; do
	refuse "mkfs --force --zone-size $zs of a 512 MiB image" "larger --zone-size" "$MKFS" --force --zone-size $zs "$IMG"
	refuse "mkfs --force --emulate-zoned --zone-size $zs of a 512 MiB image" "larger --zone-size" "$MKFS" --force --emulate-zoned --zone-size $zs "$IMG"
	expect_eq "the image after the refused mkfs --zone-size $zs" "$(shaof "$IMG")" "$s"
done
# a zone size that leaves room: files can be made
"$MKFS" --force --zone-size 256K "$IMG" >/dev/null || fail "mkfs --zone-size 256K"
mnt
python3 -c "
import os, sys
for i in range(2000):
    open('%s/f%d' % (sys.argv[1], i), 'w').write('x')" "$MNT" || fail "2000 files with 256 KiB zones"
ok "2000 files with 256 KiB zones on 512 MiB"
umnt

# mkfs on what cannot be written: a read-only loop device (which the kernel
# lets a program open for writing) and an image its user may not write.
# On a writable 256 MiB loop device, no word about the default zone size.
truncate -s 256M "$W/img.ro"
s=$(shaof "$W/img.ro")
if LOOP=$(losetup -r -f --show "$W/img.ro" 2>/dev/null); then
	refuse "mkfs.foliofs on a read-only loop device" "read-only" "$MKFS" "$LOOP"
	refuse "mkfs.foliofs --format zonefs on a read-only loop device" "read-only" "$MKFS" --format zonefs "$LOOP"
	losetup -d "$LOOP"
	expect_eq "the read-only loop device's image unchanged" "$(shaof "$W/img.ro")" "$s"
	LOOP=$(losetup -f --show "$W/img.ro") || fail "losetup"
	"$MKFS" "$LOOP" >"$W/out" 2>&1 || { losetup -d "$LOOP"; cat "$W/out"; fail "mkfs.foliofs on a 256 MiB loop device"; }
	losetup -d "$LOOP"
	grep -q "too small" "$W/out" && { cat "$W/out"; fail "mkfs.foliofs on a 256 MiB loop device speaks of a size it did not use"; }
	ok "mkfs.foliofs on a 256 MiB loop device: '$(tail -1 "$W/out")'"
else
	note "no loop devices: the read-only device is not tried"
fi
if id nobody >/dev/null 2>&1; then
	truncate -s 256M "$W/img.ro"
	chmod 644 "$W/img.ro"
	chmod 755 "$W"
	s=$(shaof "$W/img.ro")
	refuse "mkfs.foliofs on an image its user may not write" "permission denied" su nobody -s /bin/sh -c "'$MKFS' '$W/img.ro'"
	expect_eq "the image unchanged" "$(shaof "$W/img.ro")" "$s"
fi
echo "PASS $TNAME"
