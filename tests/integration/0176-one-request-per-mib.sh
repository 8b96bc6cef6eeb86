#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The size of a WRITE request against the kernel's fs.fuse.max_pages_limit.
# At 257 pages (what the installed sysctl.d file sets) a 1 MiB O_SYNC write
# arrives as one request and costs one device write; at the kernel's default
# of 256 it arrives as 1020 KiB + 4 KiB, two durable writes. Either way every
# request stays block-aligned whatever the alignment of the user's buffer,
# and every byte reads back, in the posix format and in a sequential zone
# file (which refuses a write not at its size). The sysctl is put back as it
# was found.
set -u
. "$(dirname "$0")/lib.sh"
KNOB=/proc/sys/fs/fuse/max_pages_limit
[ "$(id -u)" -eq 0 ] || skip "setting $KNOB needs root"
[ -w "$KNOB" ] || skip "this kernel has no $KNOB (before Linux 6.13): 256 pages, max_write 1020 KiB"
OLD=$(cat "$KNOB")
trap 'echo "$OLD" > "$KNOB"; cleanup' EXIT

# check WHAT FILE WANT-WRITES: after a first 4 KiB block, four 1 MiB O_SYNC
# writes (two from a page-aligned buffer, two from one starting 100 bytes
# into a page) write WANT-WRITES device writes each, and read back
check() {
	local what=$1 file=$2 want=$3 got
	got=$(python3 - "$MNT" "$file" <<'PY'
import mmap, os, sys
mnt, name = sys.argv[1], sys.argv[2]
def writes():
    s = os.getxattr(mnt, "user.foliofs.stats").decode()
    return int(next(l.split()[1] for l in s.splitlines() if l.split()[:1] == ["dev_writes"]))
m = mmap.mmap(-1, 3 << 20)
# a first block: the posix format's file creation is then on the device
want = os.urandom(4096)
fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_CREAT | os.O_SYNC, 0o644)
assert os.pwrite(fd, want, 0) == len(want)
per = []
for i in range(4):
    data = os.urandom(1 << 20)
    at = 0 if i % 2 == 0 else (1 << 20) + 100  # page-aligned, then not
    m[at:at + len(data)] = data
    w0 = writes()
    n = os.pwritev(fd, [memoryview(m)[at:at + len(data)]], len(want))
    assert n == len(data), "short write %d" % n
    per.append(writes() - w0)
    want += data
os.close(fd)
with open(os.path.join(mnt, name), "rb") as f:
    assert f.read() == want, "the bytes read back differ"
print(" ".join(map(str, per)))
PY
) || fail "$what: the 1 MiB O_SYNC writes"
	expect_eq "$what: device writes per 1 MiB O_SYNC write (aligned, unaligned buffer x2)" "$got" "$want $want $want $want"
}

for pages in 257 256; do
	echo "$pages" > "$KNOB" || fail "cannot set $KNOB to $pages"
	n=$((pages == 257 ? 1 : 2))
	# zones of 16 MiB: no write here is cut at a zone's end
	mkimg 256M --format posix --zone-size 16M
	# no background commit of the queued EXTENT records among the writes counted
	mnt -o commit=86400
	check "posix, max_pages_limit $pages" f "$n"
	umnt
	mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
	mnt
	check "zonefs seq file, max_pages_limit $pages" seq/0 "$n"
	umnt
done
ok "a 1 MiB O_SYNC write is one device write at max_pages_limit 257 and two at 256"
