#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The superblock is the kernel's struct zonefs_super, both ways, checked with
# a second implementation written from the kernel's documented layout
# (tests/vm/zonefs_sb.py, not foliofs's code): what mkfs.foliofs writes for
# every feature (aggr_cnv, uid, gid, perm) and a 64-byte label reads back
# with the kernel's offsets and crc; a superblock written by that writer
# mounts in foliofs with its features (one cnv/0 aggregating the conventional
# zones, the owner and mode of every file); and explicit-open on a full file
# succeeds, with the kernel's nr_wro/nr_active counters in user.foliofs.stats,
# and a close followed at once by an open never finds the budget still taken;
# an O_TRUNC open refused for the budget leaves the file whole.
. "$(dirname "$0")/lib.sh"
SB="python3 $LIB_DIR/../vm/zonefs_sb.py"
DEVTOOL=$FOLIOFS_BUILD/src/cli/foliofs-dev
ZS=$((4 << 20))
L64=0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF

# 1. mkfs.foliofs -> the kernel's layout
mkimg 64M --format zonefs --emulate-zoned --conv-zones 3 --zone-size 4M --aggr-cnv --uid 1000 --gid 2000 \
	--perm 600 --label "$L64"
dump=$($SB dump "$IMG")
for kv in "crc_ok 1" "features 0xf" "uid 1000" "gid 2000" "perm 600" "label $L64" \
	"reserved_zero 1" "magic 0x5a4f4653"; do
	echo "$dump" | grep -qxF "$kv" || { echo "$dump"; fail "mkfs.foliofs superblock: no '$kv'"; }
done
ok "mkfs.foliofs --aggr-cnv --uid 1000 --gid 2000 --perm 600 --label <64 bytes>: kernel layout"
"$MKFS" --format zonefs --force --label "${L64}x" "$IMG" >/dev/null 2>&1 && fail "mkfs took a 65-byte label"
ok "a 65-byte label is refused"
for f in uid gid perm; do
	case $f in uid) a="--uid 7" want="features 0x2" ;; gid) a="--gid 8" want="features 0x4" ;;
	perm) a="--perm 604" want="features 0x8" ;; esac
	# shellcheck disable=SC2086
	mkimg 64M --format zonefs --emulate-zoned --conv-zones 3 --zone-size 4M $a
	# the whole dump first: grep -q closing the pipe early would break the writer
	d=$($SB dump "$IMG") || fail "zonefs_sb.py dump failed"
	grep -qxF "$want" <<<"$d" || fail "mkfs $a: want $want"
done
ok "each feature alone sets only its bit"

# 2. the independent writer -> foliofs
check_mount() { # WRITER-ARGS... : format-emulated, write the superblock, mount, look
	rm -f "$IMG"
	truncate -s 64M "$IMG"
	"$DEVTOOL" format-emulated --zone-size 4M --conv-zones 3 "$IMG" >/dev/null ||
		fail "foliofs-dev format-emulated"
	$SB write "$IMG" "$@" || fail "zonefs_sb.py write $*"
	mnt
}
check_mount --aggr-cnv --uid 1000 --gid 2000 --perm 600 --label mkzonefs-like
expect_eq "aggr_cnv: cnv entries" "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 "
expect_eq "aggr_cnv: cnv/0" "$(stat -c '%a %u %g %s' "$MNT/cnv/0")" "600 1000 2000 $((2 * ZS))"
expect_eq "seq/0" "$(stat -c '%a %u %g %s' "$MNT/seq/0")" "600 1000 2000 0"
umnt
check_mount --uid 5
expect_eq "uid only: cnv entries" "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 1 "
expect_eq "uid only: cnv/1" "$(stat -c '%a %u %g %s' "$MNT/cnv/1")" "640 5 0 $ZS"
umnt
check_mount --gid 6 --perm 444
expect_eq "gid+perm: seq/3" "$(stat -c '%a %u %g' "$MNT/seq/3")" "444 0 6"
umnt
check_mount
expect_eq "no features: seq/1" "$(stat -c '%a %u %g' "$MNT/seq/1")" "640 0 0"
umnt
rm -f "$IMG"
truncate -s 64M "$IMG"
"$DEVTOOL" format-emulated --zone-size 4M --conv-zones 3 "$IMG" >/dev/null
$SB write "$IMG" --features 0x10
"$FOLIOFS" "$IMG" "$MNT" >"$W/feat.out" 2>&1 && { umnt; fail "an unknown feature bit mounted"; }
grep -qi feature "$W/feat.out" || { cat "$W/feat.out"; fail "no word about the feature bit"; }
ok "an unknown feature bit (written by the other implementation) is refused"

# 3. explicit-open of a full file, and the kernel's counters
mkimg 64M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 4M --max-open 2 --max-active 2
mnt -o explicit-open
zf OK truncate "$MNT/seq/0" $ZS # finish: FULL
python3 - "$MNT" <<'PY' || fail "explicit-open"
import errno, os, sys, time
mnt = sys.argv[1]
def stat(k):
    t = os.getxattr(mnt, "user.foliofs.stats").decode()
    return int([l.split()[1] for l in t.splitlines() if l.split()[0] == k][0])
full = os.open(mnt + "/seq/0", os.O_WRONLY)          # a FULL zone: not opened, no EBUSY
assert stat("nr_wro_seq_files") == 1 and stat("nr_active_seq_files") == 0
part = os.open(mnt + "/seq/1", os.O_WRONLY | os.O_SYNC)
assert os.write(part, b"p" * 4096) == 4096
assert stat("nr_wro_seq_files") == 2 and stat("nr_active_seq_files") == 1
try:
    os.open(mnt + "/seq/2", os.O_WRONLY)
    raise SystemExit("a third write open past max_wro_seq_files (2) succeeded")
except OSError as e:
    assert e.errno == errno.EBUSY, e
os.close(full)
empty = os.open(mnt + "/seq/2", os.O_WRONLY)         # empty: opened, so active
assert stat("nr_active_seq_files") == 2, stat("nr_active_seq_files")
os.close(empty)
# close(2) returns before the daemon runs the RELEASE; the next open still
# finds the budget free, as on the kernel's zonefs
for i in range(1000):
    for f in ("/seq/2", "/seq/3"):
        try:
            os.close(os.open(mnt + f, os.O_WRONLY))
        except OSError as e:
            raise SystemExit(f"close then open of {f}, round {i}: {e}")
# an O_TRUNC open refused for the budget leaves the file whole: the kernel
# truncates only a file whose open succeeded
d = os.open(mnt + "/seq/3", os.O_WRONLY | os.O_SYNC)
assert os.write(d, b"d" * 8192) == 8192
os.close(d)
hold = os.open(mnt + "/seq/0", os.O_WRONLY)          # full: counted, not active
try:
    os.open(mnt + "/seq/3", os.O_WRONLY | os.O_TRUNC)
    raise SystemExit("an O_TRUNC open past max_wro_seq_files (2) succeeded")
except OSError as e:
    assert e.errno == errno.EBUSY, e
assert os.stat(mnt + "/seq/3").st_size == 8192, os.stat(mnt + "/seq/3").st_size
os.close(hold)
# one that is admitted empties the file and keeps its zone open, as the kernel
# re-opens a zone it resets under a writer; the same for a truncate to 0
def cond(f):
    z = os.getxattr(mnt + f, "user.foliofs.zone").decode().splitlines()
    return [l.split()[1] for l in z if l.split()[0] == "cond"][0]
t = os.open(mnt + "/seq/3", os.O_WRONLY | os.O_TRUNC)
assert os.stat(mnt + "/seq/3").st_size == 0 and cond("/seq/3") == "exp-open", cond("/seq/3")
assert os.write(t, b"t" * 4096) == 4096
os.ftruncate(t, 0)
assert cond("/seq/3") == "exp-open", cond("/seq/3")
assert os.pwrite(t, b"t" * 4096, 0) == 4096
os.close(t)
os.close(part)
# the counters move when the daemon runs the RELEASE, a moment after close
for _ in range(200):
    if stat("nr_wro_seq_files") == 0:
        break
    time.sleep(0.01)
assert stat("nr_wro_seq_files") == 0
assert stat("nr_active_seq_files") == 2               # seq/1 and seq/3 are partly written
assert stat("max_wro_seq_files") == 2 and stat("max_active_seq_files") == 2
PY
ok "explicit-open: full, partly written and empty files; counters as /sys/fs/zonefs; 2000 close-then-opens"
umnt
echo "PASS $TNAME"
