#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Extents fill the metadata (issue 12): on sequential zones every overwrite
# goes out of place, so random 4 KiB overwrites cut a file into one extent
# per block, and a checkpoint takes 28 bytes an extent. A 256 MiB emulated
# zoned image of 128 KiB zones has the most metadata zones there are (16),
# whose half holds about 1 MB of checkpoint: a 170 MiB file cut into 4 KiB
# pieces (43,520 extents, 1.2 MB) does not fit. Random overwrites of such a
# file, buffered with an fsync every 256 and then O_SYNC:
# - never fail (the device is 70% full: there is room for every block);
# - the filesystem never shuts down, the defragmenter joins the pieces;
# - the file reads back as written, after a remount too, and fsck is clean.
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

mkimg 256M --zone-size 128K --emulate-zoned
mnt
cat >"$W/ow.py" <<'PY'
import os, random, struct, sys
mnt, phase = sys.argv[1], sys.argv[2]
path = os.path.join(mnt, "big")
BLK, NBLK = 4096, (170 << 20) // 4096
state = os.path.join(mnt, "..", "gens")

def block(b, g):
    head = struct.pack("<QQ", b, g)
    return (head * (BLK // len(head)))

def check(gens):
    fd = os.open(path, os.O_RDONLY)
    for b in range(NBLK):
        got = os.pread(fd, BLK, b * BLK)
        if got != block(b, gens[b]):
            sys.exit("FAIL: block %d: %r, want generation %d" % (b, got[:16], gens[b]))
    os.close(fd)

if phase == "fill":
    gens = [0] * NBLK
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    for b in range(NBLK):
        os.pwrite(fd, block(b, 0), b * BLK)
    os.fsync(fd)
    os.close(fd)
elif phase in ("buffered", "sync"):
    gens = list(struct.unpack("<%dQ" % NBLK, open(state, "rb").read()))
    rnd = random.Random(163 if phase == "buffered" else 631)
    flags = os.O_WRONLY | (os.O_SYNC if phase == "sync" else 0)
    fd = os.open(path, flags)
    n = 30000 if phase == "buffered" else 8000
    for k in range(n):
        b = rnd.randrange(NBLK)
        gens[b] += 1
        try:
            os.pwrite(fd, block(b, gens[b]), b * BLK)
            if phase == "buffered" and k % 256 == 255:
                os.fsync(fd)
        except OSError as e:
            sys.exit("FAIL: %s overwrite %d of block %d: %s" % (phase, k, b, e))
    os.fsync(fd)
    os.close(fd)
    print("# %d %s overwrites" % (n, phase))
else:
    gens = list(struct.unpack("<%dQ" % NBLK, open(state, "rb").read()))
check(gens)
open(state, "wb").write(struct.pack("<%dQ" % NBLK, *gens))
PY
python3 "$W/ow.py" "$MNT" fill || fail "writing the file"
ok "a 170 MiB file written on 128 KiB sequential zones"
python3 "$W/ow.py" "$MNT" buffered || fail "buffered overwrites"
ok "random buffered overwrites (fsync every 256) all succeed and read back"
python3 "$W/ow.py" "$MNT" sync || fail "O_SYNC overwrites"
ok "random O_SYNC overwrites all succeed and read back"
stats=$(getfattr -n user.foliofs.stats --only-values "$MNT")
dp=$(awk '$1 == "defrag_passes" {print $2}' <<<"$stats")
echo "# $(grep -E '^(defrag_passes|defrag_bytes|checkpoints|gc_zones_freed) ' <<<"$stats" | tr '\n' ' ')"
[ "${dp:-0}" -gt 0 ] || fail "no defragmentation pass ran"
ok "the defragmenter ran ($dp passes)"
remount
python3 "$W/ow.py" "$MNT" check || fail "after the remount"
ok "every block as last written after a remount"
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck.foliofs -n"; }
ok "fsck.foliofs -n clean"
exit 0
