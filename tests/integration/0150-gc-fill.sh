#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Garbage collection through the mount (issue 12): an emulated zoned posix
# image of 64 zones of 4 MiB with 4 open and 4 active zones at most is filled
# to ENOSPC with files of mixed sizes (4 KiB to 1 MiB, O_DSYNC and buffered +
# fsync), half of them are deleted, and it is filled again, three times.
# ENOSPC may come only once statfs says less than two zones are available, no
# call fails with EOVERFLOW (or anything but ENOSPC), every surviving file
# verifies after each round and after a remount, the collector freed zones
# in at most two rounds each (and 16). Then, filled once more, the device takes
# overwrites of its files, and fsck.foliofs -n is clean after the unmount.
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs

mkimg 260M --format posix --emulate-zoned --conv-zones 1 --zone-size 4M --max-open 4 --max-active 4
mnt
python3 - "$MNT" "$W/files.json" <<'PY' || fail "fill/delete rounds failed"
import errno, hashlib, json, os, random, sys
mnt, state = sys.argv[1], sys.argv[2]
ZONE = 4 << 20
rng = random.Random(150)
live = {}  # name -> (seed, size)

def content(seed, size):
    r = random.Random(seed)
    return r.randbytes(size)

n = 0
for rnd in range(3):
    enospc = False
    while not enospc:
        size = rng.choice([4096, 12345, 65536, 200000, 1 << 20, rng.randint(1, 1 << 20)])
        name = "f%05d" % n
        n += 1
        seed = rng.randrange(1 << 30)
        data = content(seed, size)
        sv = os.statvfs(mnt)
        avail = sv.f_bavail * sv.f_frsize
        sync = rng.random() < 0.5
        path = os.path.join(mnt, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DSYNC if sync else 0), 0o644)
            try:
                off = 0
                while off < size:
                    off += os.write(fd, data[off:off + (256 << 10)])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                print("FAIL: %s (%d bytes): %s" % (name, size, e))
                sys.exit(1)
            if avail >= 2 * ZONE:
                print("FAIL: ENOSPC on %s with %d bytes (%.1f zones) available" % (name, avail, avail / ZONE))
                sys.exit(1)
            os.unlink(path)
            enospc = True
            print("# round %d: ENOSPC with %.2f zones available, %d files, %.1f MiB live" % (
                rnd, avail / ZONE, len(live), sum(s for _, s in live.values()) / 2**20))
            continue
        live[name] = (seed, size)
    for name in sorted(live):
        seed, size = live[name]
        with open(os.path.join(mnt, name), "rb") as f:
            if f.read() != content(seed, size):
                print("FAIL: %s does not verify after round %d" % (name, rnd))
                sys.exit(1)
    for name in sorted(live)[rnd % 2::2]:
        os.unlink(os.path.join(mnt, name))
        del live[name]
json.dump(live, open(state, "w"))
PY
ok "3 rounds of fill to ENOSPC / delete half: ENOSPC only below 2 zones available"
freed=$(stat_val gc_zones_freed)
[ "${freed:-0}" -gt 0 ] || fail "the collector freed no zone (gc_zones_freed '${freed:-}')"
rounds=$(stat_val gc_rounds)
# rounds that free nothing (victims busy, or nothing worth it at ENOSPC) are
# not asked for again until something changed: a spinning collector fails here
[ "${rounds:-0}" -le $((2 * freed + 16)) ] ||
	fail "GC took $rounds rounds to free $freed zones (more than 2 per zone + 16)"
ok "the collector freed $freed zones in $rounds rounds, moved $(stat_val gc_bytes_moved) bytes"
remount
python3 - "$MNT" "$W/files.json" <<'PY' || fail "files do not verify after the remount"
import json, os, random, sys
mnt, live = sys.argv[1], json.load(open(sys.argv[2]))
for name, (seed, size) in live.items():
    with open(os.path.join(mnt, name), "rb") as f:
        if f.read() != random.Random(seed).randbytes(size):
            print("FAIL: %s" % name)
            sys.exit(1)
PY
ok "every surviving file verifies after a remount"
# Full, it still takes overwrites, as XFS does: fill to ENOSPC once more, then
# rewrite files in place (O_DSYNC, buffered + fsync, O_DIRECT) for 4 times the
# room new data leaves to overwrites; none may fail.
python3 - "$MNT" "$W/files.json" <<'PY' || fail "overwrites of a full device failed"
import errno, json, mmap, os, random, sys
mnt, state = sys.argv[1], sys.argv[2]
live = json.load(open(state))
rng = random.Random(151)
n = 0
while True:
    name, seed = "g%05d" % n, rng.randrange(1 << 30)
    n += 1
    data = random.Random(seed).randbytes(65536)
    path = os.path.join(mnt, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            got = os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            print("FAIL: filling %s: %s" % (name, e))
            sys.exit(1)
        os.unlink(path)
        break
    if got < len(data):
        # the device filled part-way: the file is what was written
        os.unlink(path)
        break
    live[name] = (seed, 65536)
names = sorted(k for k, (_, size) in live.items() if 0 < size <= 65536)
done = 0
buf = mmap.mmap(-1, 65536)
while done < 16 << 20:
    name = rng.choice(names)
    size = live[name][1]
    seed = rng.randrange(1 << 30)
    data = random.Random(seed).randbytes(size)
    how = rng.choice(["dsync", "buffered", "direct"])
    fl = os.O_WRONLY | {"dsync": os.O_DSYNC, "buffered": 0, "direct": os.O_DIRECT}[how]
    try:
        fd = os.open(os.path.join(mnt, name), fl)
        try:
            if how == "direct":
                # whole blocks only: the file's size is kept
                nb = size // 4096 * 4096
                if not nb:
                    continue
                buf[:nb] = data[:nb]
                v = live[name]
                old = bytes.fromhex(v[2]) if v[0] is None else random.Random(v[0]).randbytes(size)
                data = data[:nb] + old[nb:]
                os.pwrite(fd, memoryview(buf)[:nb], 0)
            else:
                os.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        print("FAIL: %s overwrite of %s (%d bytes) on a full device after %d bytes: %s" % (
            how, name, size, done, e))
        sys.exit(1)
    if how == "direct":
        # its content is no longer a seed's: keep the bytes' digest instead
        live[name] = (None, size, data.hex())
    else:
        live[name] = (seed, size)
    done += size
json.dump(live, open(state, "w"))
print("# %d files filled the device again, then %d MiB of overwrites" % (n - 1, done >> 20))
PY
ok "a full device takes 16 MiB of overwrites (O_DSYNC, buffered, O_DIRECT)"
remount
python3 - "$MNT" "$W/files.json" <<'PY' || fail "files do not verify after the overwrites and a remount"
import json, os, random, sys
mnt, live = sys.argv[1], json.load(open(sys.argv[2]))
for name, v in live.items():
    want = bytes.fromhex(v[2]) if v[0] is None else random.Random(v[0]).randbytes(v[1])
    with open(os.path.join(mnt, name), "rb") as f:
        got = f.read()
    if got != want:
        i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)
        print("FAIL: %s: %d bytes, want %d; first difference at %s" % (name, len(got), len(want), i))
        sys.exit(1)
PY
ok "every file verifies after the overwrites and a remount"
umnt
"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "fsck.foliofs -n after the rounds"; }
ok "fsck.foliofs -n clean"
