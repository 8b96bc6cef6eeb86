#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# statfs's f_bavail is what can still be written, within one zone (issue 12):
# on a regular image, an emulated zoned one, and one with 2 open and active
# zones at most (where the collector has no zone of its own), df's available
# space is read on a fresh mount, then a buffered dd (1 MiB writes, fsync at
# the end) fills a file to ENOSPC; the file is removed, and after a remount
# a second fill with O_DSYNC follows, then one with O_DIRECT. Each fill must
# reach f_bavail less one zone, and not more than one zone past it. The
# write that meets the full device writes what fits and says so (dd's file
# is as long as dd wrote), what it could not write is not the file's: grown
# by a truncate, the file reads zeros past its end; and fsck -n finds the
# space counts right after the unmount.
. "$(dirname "$0")/lib.sh"

ZS=$((16 << 20))
fill() { # FLAGS: bytes written by dd to ENOSPC
	# shellcheck disable=SC2086 # no flags, or one
	dd if=/dev/urandom of="$MNT/fill" bs=1M $1 conv=fsync status=none 2>/dev/null
	stat -c %s "$MNT/fill"
}
for geo in "" "--emulate-zoned" "--emulate-zoned --max-open 2 --max-active 2"; do
	# shellcheck disable=SC2086
	mkimg 512M --format posix --zone-size 16M $geo
	for flags in "" "oflag=dsync" "oflag=direct"; do
		mnt
		avail=$(stat -f -c '%a*%S' "$MNT")
		avail=$((avail))
		got=$(fill "$flags")
		echo "# ${geo:-regular} ${flags:-buffered}: f_bavail $((avail >> 20)) MiB, dd wrote $((got >> 20)) MiB"
		[ "$got" -ge $((avail - ZS)) ] || fail "${geo:-regular} ${flags:-buffered}: dd wrote $got bytes, f_bavail said $avail (more than a zone less)"
		[ "$got" -le $((avail + ZS)) ] || fail "${geo:-regular} ${flags:-buffered}: dd wrote $got bytes, f_bavail said $avail (more than a zone more)"
		truncate -s $((got + (4 << 20))) "$MNT/fill" || fail "truncate of the full file"
		tail -c $((4 << 20)) "$MNT/fill" | cmp -s - <(head -c $((4 << 20)) /dev/zero) ||
			fail "${geo:-regular} ${flags:-buffered}: grown past what dd wrote, the file does not read zeros there"
		umnt
		fsck_rc 0 -n "$IMG"
		mnt
		rm "$MNT/fill"
		umnt
	done
done
ok
