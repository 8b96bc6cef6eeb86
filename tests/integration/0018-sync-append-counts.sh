#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A sync append of whole blocks never comes back short because of how FUSE
# split it: os.write of 1 MiB with O_SYNC (and O_DSYNC, and RWF_DSYNC) from a
# buffer starting 1..4095 bytes into a page returns 1048576 on a sequential
# file; fio --bs=1m --sync=1 (and 2m, and an unaligned iomem) writes the file
# to its full size. The one short count left is a sync append that really
# ends mid-block: cut to its whole blocks.
. "$(dirname "$0")/lib.sh"
need fio

mkimg 640M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt
python3 - "$MNT" <<'PY' || fail "unaligned sync appends"
import mmap, os, sys
mnt = sys.argv[1]
MIB = 1 << 20
arena = mmap.mmap(-1, 4 * MIB + 8192)
bad = []
n = 0
for name, oflag, rwf in (("O_SYNC", os.O_SYNC, 0), ("O_DSYNC", os.O_DSYNC, 0),
                         ("RWF_DSYNC", 0, os.RWF_DSYNC)):
    path = mnt + "/seq/" + {"O_SYNC": "0", "O_DSYNC": "1", "RWF_DSYNC": "2"}[name]
    fd = os.open(path, os.O_WRONLY | oflag)
    pos = 0
    for shift in (1, 512, 2048, 4095, 0, 4096 + 7):
        for size in (MIB, 2 * MIB, 3 * MIB + 4096):
            buf = memoryview(arena)[shift:shift + size]
            buf[:] = os.urandom(size)
            w = os.pwritev(fd, [buf], pos, rwf) if rwf else os.pwrite(fd, buf, pos)
            n += 1
            if w != size:
                bad.append("%s shift %d size %d at %d: %d" % (name, shift, size, pos, w))
                pos += w
            else:
                pos += size
    os.close(fd)
    if os.stat(path).st_size != pos:
        bad.append("%s: size %d, wrote %d" % (name, os.stat(path).st_size, pos))
# a sync append that ends mid-block is cut to its whole blocks
fd = os.open(mnt + "/seq/3", os.O_WRONLY | os.O_SYNC)
w = os.write(fd, memoryview(arena)[100:100 + MIB + 100])
os.close(fd)
if w != MIB:
    bad.append("O_SYNC append of 1 MiB + 100 bytes: %d, want %d" % (w, MIB))
print("\n".join(bad) if bad else "%d unaligned sync appends, none short" % n)
sys.exit(1 if bad else 0)
PY
ok "unaligned sync appends of whole blocks return their full count"
V="--verify=crc32c --verify_fatal=1 --do_verify=1"
run_fio sync-1m --filename="$MNT/seq/4" $FIO_SEQ --rw=write --bs=1m --size=32m --sync=1 $V
expect_eq "fio --bs=1m --sync=1: seq/4 size" "$(fsize "$MNT/seq/4")" $((32 << 20))
run_fio sync-2m --filename="$MNT/seq/5" $FIO_SEQ --rw=write --bs=2m --size=32m --sync=1 $V
expect_eq "fio --bs=2m --sync=1: seq/5 size" "$(fsize "$MNT/seq/5")" $((32 << 20))
run_fio sync-1m-unaligned --filename="$MNT/seq/6" $FIO_SEQ --rw=write --bs=1m --size=32m \
	--sync=1 --mem_align=100 $V
expect_eq "fio --bs=1m --sync=1, buffer 100 bytes into a page: seq/6 size" \
	"$(fsize "$MNT/seq/6")" $((32 << 20))
umnt
echo "PASS $TNAME"
