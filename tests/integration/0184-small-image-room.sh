#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A small device formatted with mkfs's defaults gives its user most of its
# room, as XFS and ext4 do (about 94% and 90% of a 1 GiB image): the posix
# format's fixed costs are counted in zones (the superblock's, three or more
# metadata zones, the collector's reserve and its own zone, the geometry
# trailer's), so the default zone size of a small device must leave many
# zones. For regular and emulated zoned images of 256 MiB to 16 GiB, df's
# size and available space are read on a fresh mount and must be at least
# 90% of the image; a buffered fill then reaches the available space less
# one zone. The metadata room stays honest too: df -i offers at least 8,192
# inodes, and that many empty files are created.
. "$(dirname "$0")/lib.sh"

for size in 256M 1G 4G 16G; do
	for geo in "" "--emulate-zoned"; do
		# shellcheck disable=SC2086
		mkimg "$size" $geo
		zs=$(sed -n 's/.* zones of \([0-9]*\) MiB.*/\1/p' "$W/mkfs.out")
		[ -n "$zs" ] || fail "mkfs did not say its zone size: $(cat "$W/mkfs.out")"
		mnt
		img=$(stat -c %s "$IMG")
		read -r blocks avail files bs < <(stat -f -c '%b %a %c %S' "$MNT")
		note "$size ${geo:-regular}: zones of $zs MiB; df size $((blocks * bs >> 20)) MiB, available $((avail * bs >> 20)) MiB, $files inodes, of $((img >> 20)) MiB"
		[ $((blocks * bs)) -ge $((img / 10 * 9)) ] ||
			fail "$size ${geo:-regular}: df size $((blocks * bs)) is under 90% of the image ($img)"
		[ $((avail * bs)) -ge $((img / 10 * 9)) ] ||
			fail "$size ${geo:-regular}: df available $((avail * bs)) is under 90% of the image ($img)"
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
		fi
		umnt
		"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$size ${geo:-regular}: fsck -n"; }
		ok "$size ${geo:-regular}"
	done
done
ok
