#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A small device formatted with mkfs's defaults gives its user most of its
# room, as XFS and ext4 do (df available 90% and 89% of a 1 GiB image): the
# posix format's fixed costs are counted in zones (the superblock's, three
# or more metadata zones, the collector's reserve and its own zone, the
# geometry trailer's), so the default zone size of a small device must
# leave many zones. For regular and emulated zoned images of 256 MiB to
# 16 GiB, df's size and available space are read on a fresh mount and must
# be at least 90% of the image (80% at 256 MiB, whose zones stay 4 MiB so
# that its log is not checkpointed at every MiB); a buffered fill then
# reaches the available space less one zone. The metadata room stays honest
# too: df -i offers at least 8,192 inodes, and that many empty files are
# created. On the 256 MiB regular image, 3,000 files of 4 KiB, each
# fsync'd, then cost at most 10 checkpoints (6 with 4 MiB zones, 87 with
# 1 MiB ones).
. "$(dirname "$0")/lib.sh"

for size in 256M 1G 4G 16G; do
	for geo in "" "--emulate-zoned"; do
		# shellcheck disable=SC2086
		mkimg "$size" $geo
		zs=$(sed -n 's/.* zones of \([0-9]*\) MiB.*/\1/p' "$W/mkfs.out")
		[ -n "$zs" ] || fail "mkfs did not say its zone size: $(cat "$W/mkfs.out")"
		mnt
		img=$(stat -c %s "$IMG")
		pct=90
		[ "$size" = 256M ] && pct=80
		read -r blocks avail files bs < <(stat -f -c '%b %a %c %S' "$MNT")
		note "$size ${geo:-regular}: zones of $zs MiB; df size $((blocks * bs >> 20)) MiB, available $((avail * bs >> 20)) MiB, $files inodes, of $((img >> 20)) MiB"
		[ $((blocks * bs)) -ge $((img / 100 * pct)) ] ||
			fail "$size ${geo:-regular}: df size $((blocks * bs)) is under $pct% of the image ($img)"
		[ $((avail * bs)) -ge $((img / 100 * pct)) ] ||
			fail "$size ${geo:-regular}: df available $((avail * bs)) is under $pct% of the image ($img)"
		[ "$files" -ge 8192 ] || fail "$size ${geo:-regular}: df -i offers $files inodes"
		if [ "$size" = 256M ] || [ "$size" = 1G ]; then
			dd if=/dev/zero of="$MNT/fill" bs=1M conv=fsync status=none 2>/dev/null
			got=$(fsize "$MNT/fill")
			note "  a buffered fill wrote $((got >> 20)) MiB"
			[ "$got" -ge $((avail * bs - (zs << 20))) ] ||
				fail "$size ${geo:-regular}: the fill wrote $got bytes, df said $((avail * bs))"
			rm "$MNT/fill"
			mkdir "$MNT/d"
			(cd "$MNT/d" && seq 8192 | xargs touch) || fail "$size ${geo:-regular}: 8,192 empty files could not be made"
			if [ "$size" = 256M ] && [ -z "$geo" ]; then
				c0=$(stat_val checkpoints)
				python3 - "$MNT/s" <<'PY' || fail "3,000 fsync'd files"
import os, sys
os.mkdir(sys.argv[1])
for i in range(3000):
    fd = os.open("%s/f%05d" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
    os.close(fd)
PY
				c=$(($(stat_val checkpoints) - c0))
				note "  3,000 fsync'd files: $c checkpoints"
				[ "$c" -le 10 ] || fail "$size: 3,000 fsync'd files cost $c checkpoints"
			fi
		fi
		umnt
		"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$size ${geo:-regular}: fsck -n"; }
		ok "$size ${geo:-regular}"
	done
done
ok
