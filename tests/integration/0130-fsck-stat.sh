#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# fsck.foliofs's exit codes (e2fsck's): 0 on a freshly formatted image and on
# one written through a mount; 4 on a superblock with a bad checksum, bad
# magic or a used reserved area, and on a bad emulation pointer record or
# trailer, with the image byte for byte unchanged by -n (and by -y: nothing
# in the format is repaired); 8 on a mounted image and a missing one; 16 on
# a usage error. Progress stays off when stdout is not a terminal. The posix
# format: 0 clean (written through a mount, and with -y), 8 while mounted, 4
# on a damaged superblock copy with the image unchanged by -n. The clean
# summary names the format, and --help describes both. And `foliofs stat` on
# either format: --json parsed by python with the counters a write through
# the mount must move (on posix also zone states, write amplification >= 1
# after sync writes, and GC's counters after a collection forced by removing
# one of two interleaved files), the text form, and --watch --count.
. "$(dirname "$0")/lib.sh"
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs
[ -x "$FSCK" ] || fail "no $FSCK"

# poke OFFSET HEXBYTES: overwrite bytes of the image in place
poke() {
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$IMG" "$1" "$2"
}
# the byte offset of zone $1's record slot $2 (from the emulation trailer)
slot_off() {
	python3 -c 'import os, struct, sys
f = open(sys.argv[1], "rb"); size = os.path.getsize(sys.argv[1])
f.seek((size // 4096) * 4096 - 4096); t = f.read(64)
lb = struct.unpack_from("<I", t, 12)[0]; meta = struct.unpack_from("<Q", t, 56)[0]
print(meta + (int(sys.argv[2]) * 2 + int(sys.argv[3])) * lb)' "$IMG" "$1" "$2"
}
unchanged_by() { # $1 = expected exit, rest = args: the image must not change
	local s
	s=$(sha256sum <"$IMG")
	fsck_rc "$@"
	expect_eq "image unchanged by fsck.foliofs ${*:2}" "$(sha256sum <"$IMG")" "$s"
}

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M -L fscklabel
fsck_rc 0 "$IMG"
grep -q "clean, zonefs format" "$W/fsck.out" || fail "fsck's summary does not name the zonefs format"
"$FSCK" --help >"$W/help.out" || fail "fsck.foliofs --help"
for w in posix zonefs "log" "write-pointer records"; do
	grep -q "$w" "$W/help.out" || { cat "$W/help.out"; fail "fsck.foliofs --help does not mention '$w'"; }
done
ok "fsck.foliofs --help describes both formats"
fsck_rc 0 -n -f "$IMG"
fsck_rc 0 -p "$IMG"
"$FSCK" -nv "$IMG" | grep -q "label 'fscklabel'" || fail "fsck -v does not show the label"
grep -q checking "$W/fsck.out" && fail "progress printed although stdout is not a terminal"
ok "no progress off a terminal"
fsck_rc 16 "$IMG" extra
fsck_rc 16 -n -y "$IMG"
fsck_rc 16 --bogus "$IMG"
fsck_rc 8 "$W/missing"

note "written through a mount, then unmounted"
mnt
zf OK fill "$MNT/seq/0" 0 3M 1 sync
zf OK fill "$MNT/seq/1" 0 1M 2 buffered

note "foliofs stat"
"$FOLIOFS" stat --json "$MNT" >"$W/stat.json" || fail "foliofs stat --json"
python3 - "$W/stat.json" <<'EOF' || fail "foliofs stat --json is not what it should be"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["cache_user_bytes_written"] >= 4 << 20, s
assert s["dev_bytes_written"] >= 3 << 20, s
assert 0 <= s["cache_hit_rate"] <= 1, s
assert s["zones"]["total"] == 2, s["zones"]
assert s["zones"]["open"] + s["zones"]["closed"] == 2, s["zones"]
assert "write_amplification" in s and "cache_dirty_bytes" in s
EOF
ok "foliofs stat --json parses and counts the writes"
"$FOLIOFS" stat "$MNT" >"$W/stat.txt" || fail "foliofs stat"
for w in "hit rate" "dirty" "write amplification" "writeback in flight" "2 sequential"; do
	grep -q "$w" "$W/stat.txt" || { cat "$W/stat.txt"; fail "foliofs stat does not show '$w'"; }
done
ok "foliofs stat text"
"$FOLIOFS" stat --watch 0.2 --count 2 --json "$MNT" >"$W/watch.json" || fail "stat --watch"
python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all("dev_write_bytes_per_s" in r for r in rows), rows' "$W/watch.json" ||
	fail "stat --watch --json"
ok "foliofs stat --watch 0.2 --count 2 --json: two rows of rates"
"$FOLIOFS" stat "$W" >/dev/null 2>&1
expect_eq "foliofs stat on a directory that is not a mount exits" $? 1
"$FOLIOFS" stat >/dev/null 2>&1
expect_eq "foliofs stat without a mountpoint exits" $? 2

fsck_rc 8 -n "$IMG"
umnt
fsck_rc 0 -n "$IMG"
cp "$IMG" "$W/img.good"
restore() { cp "$W/img.good" "$IMG"; }

note "corrupt superblocks"
poke 8 58 # a label byte: the crc no longer matches
unchanged_by 4 -n "$IMG"
grep -q "checksum" "$W/fsck.out" || fail "fsck does not say checksum"
unchanged_by 4 -y "$IMG"
restore
poke 0 00000000 # no magic
unchanged_by 4 -n "$IMG"
restore
poke 200 01 # the reserved area (crc left wrong too: either is reported)
unchanged_by 4 -n "$IMG"
restore
fsck_rc 0 -n "$IMG"

note "bad emulation records"
off=$(slot_off 2 0)
off1=$(slot_off 2 1)
python3 -c 'import sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); a = f.read(4096); f.seek(int(sys.argv[3])); b = f.read(4096)
sys.exit(0 if any(a) or any(b) else 1)' "$IMG" "$off" "$off1" || fail "zone 2 has no pointer record after a sync write"
# slot 0's write pointer: a record's checksum fails, or an empty slot is no longer zero
poke $((off + 16)) ff
unchanged_by 4 -n "$IMG"
grep -q "zone 2: emulation record" "$W/fsck.out" || fail "fsck does not name the zone"
restore
poke "$(slot_off 3 1)" deadbeef # garbage in a never-written slot
unchanged_by 4 -n "$IMG"
restore
size=$(fsize "$IMG")
poke $(((size / 4096) * 4096 - 4096 + 20)) 01 # the trailer's geometry: its crc fails
unchanged_by 4 -n "$IMG"
restore
fsck_rc 0 -n "$IMG"

note "the posix format"
mkimg 256M --format posix --zone-size 16M
fsck_rc 0 -n "$IMG"
mnt
mkdir -p "$MNT/d/e"
head -c 3M /dev/urandom >"$MNT/d/f"
ln "$MNT/d/f" "$MNT/h"
ln -s f "$MNT/d/s"
head -c 1M /dev/urandom >"$MNT/gone"
rm "$MNT/gone"
sync
dd if=/dev/urandom of="$MNT/sync" bs=64k count=32 oflag=sync status=none || fail "sync writes"
head -c 1M "$MNT/sync" >/dev/null

note "foliofs stat on the posix format"
"$FOLIOFS" stat --json "$MNT" >"$W/stat.json" || fail "foliofs stat --json (posix)"
python3 - "$W/stat.json" <<'EOF' || { cat "$W/stat.json"; fail "foliofs stat --json (posix) is not what it should be"; }
import json, sys
s = json.load(open(sys.argv[1]))
assert s["format"] == "posix", s
# 3 MiB + 1 MiB + 2 MiB of sync writes through the cache
assert s["cache_user_bytes_written"] >= 6 << 20, s
assert s["dev_bytes_written"] >= s["cache_user_bytes_written"], s
assert s["write_amplification"] >= 1, s
assert 0 <= s["cache_hit_rate"] <= 1, s
assert s["cache_hits"] + s["cache_misses"] > 0, s
for k in ("cache_dirty_bytes", "cache_writeback_inflight", "zoneq_queued", "zoneq_issued",
          "gc_rounds", "gc_zones_freed", "gc_blocks_moved", "gc_reserve_zones"):
    assert k in s and s[k] >= 0, k
z = s["zones"]
# 256 MiB in 16 MiB zones, less the emulation's own space at the end
assert z["total"] in (15, 16) and len(z["map"]) == z["total"], z
assert z["empty"] + z["open"] + z["full"] + z["metadata"] + z["collecting"] == z["total"], z
assert z["open"] >= 1 and z["metadata"] >= 2, z
assert z["empty"] >= s["gc_reserve_zones"], (z, s)
assert set(z["map"]) <= set(".oFMGS") and z["map"][0] == "S", z
EOF
ok "foliofs stat --json on posix: cache, GC, zone states, write amplification >= 1"
"$FOLIOFS" stat "$MNT" >"$W/stat.txt" || fail "foliofs stat (posix)"
for w in "(posix)" "hit rate" "writeback in flight" "write amplification" "zone queue" \
	"gc " "zones reclaimed" "blocks moved" "reserve" "zones: " "free"; do
	grep -qF "$w" "$W/stat.txt" || { cat "$W/stat.txt"; fail "foliofs stat (posix) does not show '$w'"; }
done
grep -q "other" "$W/stat.txt" && { cat "$W/stat.txt"; fail "foliofs stat (posix) leaves counters unnamed"; }
wa=$(sed -n 's/.*write amplification \([0-9.]*\).*/\1/p' "$W/stat.txt")
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 1 else 1)' "$wa" ||
	{ cat "$W/stat.txt"; fail "write amplification '$wa' < 1 after sync writes"; }
ok "foliofs stat text on posix (write amplification $wa)"
"$FOLIOFS" stat --watch 0.2 --count 2 --json "$MNT" >"$W/watch.json" || fail "stat --watch (posix)"
python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all("gc_bytes_moved_per_s" in r for r in rows), rows' "$W/watch.json" ||
	fail "stat --watch --json (posix)"
ok "foliofs stat --watch on posix: GC rates"
note "foliofs stat after garbage collection (posix)"
# two files interleaved, zone by zone, then one removed: most full zones are
# half live, and 40 MiB more needs zones only GC can free (11 data zones;
# dirty data is promised what GC will gain less the room of the collector's
# own zone and of data headers: df says 47 MiB here, and a write-back slower
# than the writer must not make it fail). The counters are read before the
# fill: 126 MiB of 11 zones already reaches the low watermark, so GC may run
# during it, and when it does its moves and the writers' slot choice (by
# inode, or whichever slot is free) can leave a zone all "a", which the rm
# frees without a collection
"$FOLIOFS" stat --json "$MNT" >"$W/before.json" || fail "foliofs stat --json before GC"
python3 - "$MNT" <<'EOF' || fail "interleaved writes"
import os, sys
m = sys.argv[1]
a = os.open(m + "/a", os.O_WRONLY | os.O_CREAT, 0o644)
b = os.open(m + "/b", os.O_WRONLY | os.O_CREAT, 0o644)
blk = os.urandom(1 << 20)
for k in range(60):
    for f in (a, b):
        os.write(f, blk)
        os.fsync(f)
os.close(a)
os.close(b)
EOF
rm "$MNT/a"
df -B1M "$MNT" | sed 's/^/# /'
head -c 40M /dev/urandom >"$MNT/c" || fail "writing past the free zones"
sync
"$FOLIOFS" stat --json "$MNT" >"$W/after.json" || fail "foliofs stat --json after GC"
python3 - "$W/before.json" "$W/after.json" <<'EOF' || { cat "$W/after.json"; fail "GC counters after a collection"; }
import json, sys
b, s = (json.load(open(f)) for f in sys.argv[1:3])
assert s["gc_zones_freed"] >= 1 and s["gc_zones_freed"] > b["gc_zones_freed"], (b, s)
assert s["gc_blocks_moved"] > 0 and s["gc_bytes_moved"] == s["gc_blocks_moved"] * 4096, s
assert s["gc_rounds"] >= s["gc_zones_freed"], s
# a round frees a zone or finds nothing worth it, and is not asked for again
# until something changed: rounds stay about one per zone freed (a collector
# spinning on rounds that free nothing fails here)
rounds = s["gc_rounds"] - b["gc_rounds"]
freed = s["gc_zones_freed"] - b["gc_zones_freed"]
assert rounds <= 2 * freed + 4, ("GC rounds per zone freed", rounds, freed)
# what GC moved is written to the device but was never written by a user
assert s["dev_bytes_written"] - b["dev_bytes_written"] >= \
    (s["cache_user_bytes_written"] - b["cache_user_bytes_written"]) + \
    (s["gc_bytes_moved"] - b["gc_bytes_moved"]), (b, s)
assert s["write_amplification"] > b["write_amplification"] >= 1, (b, s)
assert s["zone_opens"] > b["zone_opens"], (b, s)
z = s["zones"]
assert z["empty"] + z["open"] + z["full"] + z["metadata"] + z["collecting"] == z["total"], z
assert z["full"] >= 1, z
EOF
ok "GC: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%d zones reclaimed in %d rounds, %d blocks moved, WA %.2f" % (s["gc_zones_freed"], s["gc_rounds"], s["gc_blocks_moved"], s["write_amplification"]))' "$W/after.json")"
fsck_rc 8 -n "$IMG"
umnt
fsck_rc 0 -n "$IMG"
grep -q "clean, posix format" "$W/fsck.out" || fail "fsck's summary does not name the posix format"
fsck_rc 0 -y "$IMG"
cp "$IMG" "$W/img.good"
poke $((4096 + 100)) 58 # the second superblock copy: its crc no longer matches
unchanged_by 4 -n "$IMG"
grep -q "superblock copy 1: bad crc" "$W/fsck.out" || fail "fsck does not name the superblock copy"
restore
fsck_rc 0 -n "$IMG"
echo "PASS $TNAME"
