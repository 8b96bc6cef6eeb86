#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Invariant 6: bad input gets a clear message, a non-zero exit, and leaves
# the device untouched (sha256 before == after), for the daemon and mkfs:
# not a zonefs device, truncated image, wrong block size, superblock crc
# mismatch, unknown feature bits, device too small, read-only image, device
# already mounted, mkfs over existing data without --force, unknown options.
set -u
. "$(dirname "$0")/lib-crash.sh"
ZS=$((4 << 20))
n=0
sum() { sha256sum "$1" | cut -d' ' -f1; }
# expect_refused WHAT PATTERN CMD...: CMD must exit non-zero, print PATTERN,
# leave $IMG as it was and mount nothing
expect_refused() {
	local what=$1 pat=$2 before out rc
	shift 2
	before=$(sum "$IMG")
	out=$(timeout 20 "$@" 2>&1)
	rc=$?
	if grep -q " $MNT " /proc/mounts; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT"
		fail "$what: it mounted"
	fi
	[ $rc -ne 0 ] || fail "$what: exit status 0 ($out)"
	[ $rc -ne 124 ] || fail "$what: hung"
	echo "$out" | grep -qiE "$pat" || fail "$what: message '$out' does not match /$pat/"
	[ "$(sum "$IMG")" = "$before" ] || fail "$what: the image changed"
	n=$((n + 1))
	echo "refused: $what: $(echo "$out" | grep -iE "$pat" | head -1)"
}
# patch the image: python3 - OFFSET HEXBYTES, optional crc fix of sb/trailer
patch() {
	python3 - "$IMG" "$@" <<'PY'
import struct, sys, zlib
img, what = sys.argv[1], sys.argv[2]
def crc32c(d, crc=0):
    crc ^= 0xffffffff
    for b in d:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
with open(img, "r+b") as f:
    if what == "sb-flip":            # a label byte: the crc no longer matches
        f.seek(10); b = f.read(1); f.seek(10); f.write(bytes([b[0] ^ 0xff]))
    elif what == "sb-features":      # an unknown feature bit, crc recomputed
        f.seek(0); sb = bytearray(f.read(4096))
        feat = struct.unpack_from("<Q", sb, 88)[0] | (1 << 40)
        struct.pack_into("<Q", sb, 88, feat)
        struct.pack_into("<I", sb, 4, 0)
        struct.pack_into("<I", sb, 4, zlib.crc32(bytes(sb)) ^ 0xffffffff)
        f.seek(0); f.write(sb)
    elif what == "trailer-lblock":   # block size 1024 in the emulation trailer, crc fixed
        f.seek(0, 2); end = f.tell()
        f.seek(end - 4096); t = bytearray(f.read(80))
        struct.pack_into("<I", t, 12, 1024)
        struct.pack_into("<I", t, 72, 0)
        struct.pack_into("<I", t, 72, crc32c(bytes(t)))
        f.seek(end - 4096); f.write(t)
PY
}
fresh() { rm -f "$IMG"; mkimg 2 $ZS 6; }

# 1. not a zonefs device (random bytes) — for the daemon and for mkfs without --force
# (a regular device large enough for two default 256 MiB zones, random at both ends)
rm -f "$IMG"
truncate -s 600M "$IMG"
head -c 1048576 /dev/urandom | dd of="$IMG" conv=notrunc status=none
head -c 1048576 /dev/urandom | dd of="$IMG" bs=1M seek=599 conv=notrunc status=none
expect_refused "not a zonefs device" "not a foliofs|not.*zonefs|mkfs" "$DAEMON" "$IMG" "$MNT"
# a small one: refused as too small for the default zone size (the message
# does not say it is unformatted: reported)
head -c $((6 * ZS + 1048576)) /dev/urandom >"$IMG"
expect_refused "not a zonefs device (small)" "not a foliofs|not.*zonefs|mkfs|too small" "$DAEMON" "$IMG" "$MNT"
expect_refused "mkfs over random data" "force|contains|holds|exist" "$MKFS" --format zonefs --emulate-zoned \
	--conv-zones 2 --zone-size $ZS "$IMG"
# 2. truncated image
fresh
truncate -s $((3 * ZS)) "$IMG"
expect_refused "truncated image" "truncat|too small|corrupt|not a foliofs|zonefs" "$DAEMON" "$IMG" "$MNT"
# 3. wrong block size in the emulation metadata
fresh
patch trailer-lblock
expect_refused "wrong block size" "block|geometry|corrupt" "$DAEMON" "$IMG" "$MNT"
# 4. superblock checksum mismatch
fresh
patch sb-flip
expect_refused "superblock crc mismatch" "checksum|crc|corrupt" "$DAEMON" "$IMG" "$MNT"
# 5. unknown feature bits
fresh
patch sb-features
expect_refused "unknown feature bits" "feature" "$DAEMON" "$IMG" "$MNT"
# 6. device too small
rm -f "$IMG"
truncate -s 1M "$IMG"
expect_refused "mkfs on a too small device" "small" "$MKFS" --format zonefs --emulate-zoned --conv-zones 2 \
	--zone-size $ZS "$IMG"
expect_refused "mount of a too small device" "small|not a foliofs" "$DAEMON" "$IMG" "$MNT"
# 7. mkfs over an existing foliofs without --force
fresh
expect_refused "mkfs over a foliofs without --force" "force|contains|holds|exist|already" \
	"$MKFS" --format zonefs --emulate-zoned --conv-zones 2 --zone-size $ZS "$IMG"
# 8. unknown and bad options
expect_refused "unknown mount option" "unknown|bad|invalid|option" "$DAEMON" -o no_such_option=1 \
	"$IMG" "$MNT"
expect_refused "bad errors= value" "errors" "$DAEMON" -o errors=explode "$IMG" "$MNT"
expect_refused "bad cache_size" "cache_size|size" "$DAEMON" -o cache_size=banana "$IMG" "$MNT"
expect_refused "unknown mkfs option" "usage|unknown|unrecognized|invalid" "$MKFS" --frobnicate "$IMG"
# 9. device already mounted: the second mount is refused, the first keeps working
fresh
mnt
M2=$T/mnt2
mkdir -p "$M2"
python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_WRONLY|os.O_SYNC); os.pwrite(fd,b"x"*4096,0)' \
	"$MNT/seq/0" || fail "write on the first mount"
before=$(sum "$IMG")
out=$(timeout 20 "$DAEMON" "$IMG" "$M2" 2>&1)
rc=$?
if grep -q " $M2 " /proc/mounts; then
	umount "$M2"
	fail "a second mount of the same image succeeded: two daemons with two caches on one device"
fi
[ $rc -ne 0 ] || fail "second mount: exit 0"
echo "$out" | grep -qiE "in use|busy|already|mounted|lock" || fail "second mount: message '$out'"
[ "$(sum "$IMG")" = "$before" ] || fail "second mount changed the image"
python3 -c 'import sys; assert open(sys.argv[1],"rb").read()==b"x"*4096' "$MNT/seq/0" ||
	fail "first mount broken by the second attempt"
echo "refused: already mounted: $out"
n=$((n + 1))
umnt
# 10. read-only image: a read-only loop device (root ignores chmod 0444)
fresh
if LOOP=$(losetup -r -f --show "$IMG" 2>/dev/null); then
	before=$(sum "$IMG")
	out=$(timeout 20 "$DAEMON" "$LOOP" "$MNT" 2>&1)
	rc=$?
	if grep -q " $MNT " /proc/mounts; then
		# mounting read-only is also acceptable if writes are then refused
		python3 -c 'import os,sys,errno
try:
    os.open(sys.argv[1], os.O_WRONLY); sys.exit(1)
except OSError as e:
    sys.exit(0 if e.errno == errno.EROFS else 1)' "$MNT/seq/0"
		wr=$?
		umount "$MNT"
		sleep 0.2
		[ $wr -eq 0 ] || { losetup -d "$LOOP"; fail "read-only device mounted writable"; }
		echo "read-only device: mounted read-only"
	else
		[ $rc -ne 0 ] || { losetup -d "$LOOP"; fail "read-only device: exit 0, not mounted"; }
		echo "refused: read-only device: $out"
	fi
	losetup -d "$LOOP"
	[ "$(sum "$IMG")" = "$before" ] || fail "read-only device: image changed"
	n=$((n + 1))
else
	echo "skip: read-only loop device (no loop devices)"
fi
echo "ok ($n refusals)"
