#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# -o discard / nodiscard on an emulated zoned image: by default (nodiscard)
# resetting a sequential zone file (truncate to 0) leaves the image's blocks
# allocated, so that refilling the zone costs the image's file system no
# allocation; with -o discard the reset punches the zone's blocks out of the
# image. Either way the reset file reads empty, a finish (truncate to the
# zone size) reads zeros past the old data, and the data written after the
# reset reads back after a remount. A bad value is refused.
set -u
. "$(dirname "$0")/lib.sh"
ZS=$((64 << 20))
alloc_mib() { echo $(($(stat -c '%b*%B' "$IMG") / 1048576)); }

check() { # $1 = mount options ("" for the defaults), $2 = keep|discard
	mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
	if [ -n "$1" ]; then mnt -o "$1"; else mnt; fi
	dd if=/dev/urandom of="$MNT/seq/0" bs=1M count=32 oflag=sync conv=notrunc status=none ||
		fail "$2: writing 32 MiB to seq/0"
	local before after
	before=$(alloc_mib)
	truncate -s 0 "$MNT/seq/0" || fail "$2: reset of seq/0"
	after=$(alloc_mib)
	if [ "$2" = keep ]; then
		[ $((before - after)) -lt 4 ] ||
			fail "nodiscard: the reset freed $((before - after)) MiB of the image (before $before, after $after)"
	else
		[ $((before - after)) -ge 30 ] ||
			fail "discard: the reset freed only $((before - after)) MiB of the image (before $before, after $after)"
	fi
	ok "$2: image allocation $before MiB -> $after MiB across the reset"
	expect_eq "$2: size after the reset" "$(fsize "$MNT/seq/0")" 0
	python3 - "$MNT/seq/0" <<'PY' || fail "$2: write, finish and read back"
import os, sys
p = sys.argv[1]
d = os.urandom(1 << 20)
fd = os.open(p, os.O_WRONLY | os.O_SYNC)
os.write(fd, d)
os.close(fd)
os.truncate(p, 64 << 20)  # finish: the rest of the zone becomes readable
with open(p, "rb") as f:
    assert f.read(1 << 20) == d, "the data written after the reset"
    rest = f.read()
    assert len(rest) == (63 << 20) and not any(rest), "past the data: not all zeros"
PY
	remount ${1:+-o "$1"}
	python3 - "$MNT/seq/0" <<'PY' || fail "$2: after a remount"
import sys
with open(sys.argv[1], "rb") as f:
    d = f.read()
assert len(d) == 64 << 20 and any(d[: 1 << 20]) and not any(d[1 << 20:]), len(d)
PY
	umnt
	ok "$2: reset, refill, finish and remount"
}

check "" keep
check nodiscard keep
check discard discard
mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
"$FOLIOFS" -o discard=yes "$IMG" "$MNT" >"$W/bad.out" 2>&1 && { umnt; fail "-o discard=yes was accepted"; }
ok "-o discard=yes refused: $(head -1 "$W/bad.out")"
