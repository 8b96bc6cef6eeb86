#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A damaged record in the middle of the posix format's metadata log: the
# log replay stops there, and what the records after it committed is not
# mounted. The mount must say so rather than mount a filesystem with files
# missing and nothing said:
# - 200 files, each created and fsync'd (a log write each), then kill -9;
# - on a copy, 16 bytes of the record that names f150 are overwritten;
# - fsck.foliofs -n finds the damage (exit 4);
# - the mount warns that the log stops at a damaged record with later
#   records after it, and mounts f0-f149;
# - the undamaged image, after the same kill -9, mounts all 200 files and
#   warns of nothing: a crash alone is not damage;
# - then its first superblock copy is overwritten: the mount says so once
#   (its check and the daemon each read it) and mounts from the second,
#   every file there; fsck -n finds it (exit 4).
. "$(dirname "$0")/lib.sh"

mkimg 512M --format posix
mnt
python3 - "$MNT" <<'EOF' || fail "200 fsync'd files"
import os, sys
for i in range(200):
    fd = os.open("%s/f%d" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"data %d\n" % i)
    os.fsync(fd)
    os.close(fd)
EOF
pids=$(daemon_pids "$IMG")
[ -n "$pids" ] || fail "no daemon for $IMG"
kill -9 $pids
wait_daemon_gone "$IMG" 30 || fail "the killed daemon did not exit"
fusermount3 -uz "$MNT" 2>/dev/null

cp --sparse=always "$IMG" "$W/good.img"
# the record that names f150: its name is in the first 64 MiB (the metadata
# zones); the bytes just before the name are the record's own fields
off=$(python3 - "$IMG" <<'EOF'
import sys
with open(sys.argv[1], "rb") as f:
    data = f.read(64 << 20)
i = data.find(b"f150")
print(i if i >= 0 else "")
EOF
)
[ -n "$off" ] || fail "no record names f150"
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef\xde\xad\xbe\xef\xde\xad\xbe\xef' |
	dd of="$IMG" bs=1 seek=$((off - 16)) conv=notrunc status=none || fail "dd"
note "overwrote 16 bytes at $((off - 16)), before the name f150"

"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1
rc=$?
expect_eq "fsck -n of the damaged log: exit" "$rc" 4
grep -q "damaged" "$W/fsck.out" || { cat "$W/fsck.out"; fail "fsck -n does not name the damage"; }

mnt
grep -q "the log stops at record seq" "$W/mount.out" ||
	{ cat "$W/mount.out"; fail "the mount of a damaged log says nothing"; }
ok "the mount warns: $(grep -o "metadata zone [0-9]*: the log stops at record seq [0-9]*" "$W/mount.out")"
n=$(ls "$MNT" | wc -l)
[ "$n" -ge 140 ] && [ "$n" -lt 200 ] || fail "damaged log: $n files, want f0 to about f149"
expect_eq "f149 before the damage" "$(cat "$MNT/f149")" "data 149"
[ ! -e "$MNT/f150" ] || fail "f150, whose record is damaged, is there"
ok "damaged log: $n of 200 files mounted, as the warning says"
umnt

IMG=$W/good.img
mnt
expect_eq "the undamaged image after kill -9: files" "$(ls "$MNT" | wc -l)" 200
grep -q "log stops" "$W/mount.out" && { cat "$W/mount.out"; fail "a warning after kill -9 alone"; }
ok "no warning after kill -9 alone"
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck -n of the undamaged image"; }

printf 'XXXXXXXXXXXXXXXX' | dd of="$IMG" bs=1 seek=100 conv=notrunc status=none || fail "dd"
mnt
expect_eq "notices of the damaged first superblock" "$(grep -c "first superblock is damaged" "$W/mount.out")" 1
expect_eq "files mounted from the second superblock" "$(ls "$MNT" | wc -l)" 200
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1
expect_eq "fsck -n of a damaged first superblock: exit" "$?" 4
ok
