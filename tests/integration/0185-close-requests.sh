#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What close(2) costs in FUSE requests, and what it still guarantees:
# - the close of a read-only open sends no FUSE_FLUSH (FOPEN_NOFLUSH): it
#   has nothing to write back, and a round trip of about 20 us at every
#   close of a file read (cat, a compiler's headers, git) buys nothing. On
#   both formats, and with -o direct_io (no open served by the kernel page
#   cache) as without it;
# - the close of a writable open still sends FUSE_FLUSH, one per close,
#   whether it wrote or not, and what it wrote is on the device when close
#   returns: after kill -9 of the daemon, the next mount reads it back;
# - a read-only open's close while another fd holds unwritten data of the
#   same file does not write it back, and the writer's close does.
. "$(dirname "$0")/lib.sh"

flushes() { stat_val fuse_flush; }

# ro_loop FILE N: N opens of FILE read-only, each read whole and compared
ro_loop() {
	python3 - "$1" "$2" <<'EOF' || fail "read-only opens of $1"
import os, sys
p, n = sys.argv[1], int(sys.argv[2])
want = open(p, "rb").read()
for _ in range(n):
    fd = os.open(p, os.O_RDONLY)
    got = os.read(fd, len(want) + 1)
    os.close(fd)
    if got != want:
        sys.exit("FAIL: %s read %d bytes, not its %d" % (p, len(got), len(want)))
EOF
}

for fmt in posix zonefs; do
	if [ $fmt = posix ]; then
		mkimg 256M --format posix --zone-size 16M
	else
		mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
	fi
	mnt
	if [ $fmt = posix ]; then
		F=$MNT/f
		head -c 12345 /dev/urandom >"$F" || fail "write $F"
	else
		F=$MNT/seq/0
		head -c 65536 /dev/urandom >>"$F" || fail "append to $F"
	fi
	sync -f "$F"
	b=$(flushes)
	[ -n "$b" ] || fail "user.foliofs.stats has no fuse_flush"
	ro_loop "$F" 200
	expect_eq "$fmt: FUSE_FLUSH requests for 200 read-only opens' closes" $(($(flushes) - b)) 0
	remount -o direct_io
	b=$(flushes)
	ro_loop "$F" 50
	expect_eq "$fmt, -o direct_io: FUSE_FLUSH requests for 50 read-only opens' closes" $(($(flushes) - b)) 0

	# writable opens: one FLUSH per close, and the data durable at close
	b=$(flushes)
	python3 - "$F" $fmt <<'EOF' || fail "writable opens of $F"
import os, sys
p, fmt = sys.argv[1], sys.argv[2]
for i in range(20):
    fd = os.open(p, os.O_RDWR | (os.O_APPEND if fmt == "zonefs" else 0))
    if i % 2 == 0:
        data = b"%04d" % i * 1024
        if fmt == "zonefs":
            os.write(fd, data)
        else:
            os.pwrite(fd, data, 4096 * i)
    os.close(fd)
EOF
	expect_eq "$fmt: FUSE_FLUSH requests for 20 writable opens' closes" $(($(flushes) - b)) 20
	sum=$(md5sum <"$F")
	size=$(fsize "$F")

	# an fd left open with unwritten data; read-only closes beside it (one
	# process: a child that inherits an fd closes it at exit, a FLUSH too)
	python3 - "$F" $fmt "$MNT" >"$W/beside.out" <<'EOF' || fail "$fmt: the writer beside readers"
import hashlib, os, sys
p, fmt, mnt = sys.argv[1], sys.argv[2], sys.argv[3]
def flushes():
    for l in os.getxattr(mnt, "user.foliofs.stats").decode().splitlines():
        k, v = l.split()[:2]
        if k == "fuse_flush":
            return int(v)
w = os.open(p, os.O_RDWR | (os.O_APPEND if fmt == "zonefs" else 0))
if fmt == "zonefs":
    os.write(w, b"late" * 1024)
else:
    os.pwrite(w, b"late" * 1024, 0)
b = flushes()
for _ in range(5):
    fd = os.open(p, os.O_RDONLY)
    data = b""
    while True:
        c = os.read(fd, 1 << 20)
        if not c:
            break
        data += c
    os.close(fd)
    if not data.startswith(b"late") and not data.endswith(b"late"):
        sys.exit("FAIL: a reader does not see the open writer's data")
print("beside", flushes() - b)
os.close(w)
print("writer", flushes() - b)
print("sum", hashlib.md5(data).hexdigest(), len(data))
EOF
	expect_eq "$fmt: FUSE_FLUSH requests beside an open writer" "$(awk '$1 == "beside" {print $2}' "$W/beside.out")" 0
	expect_eq "$fmt: FUSE_FLUSH requests for the writer's close" "$(awk '$1 == "writer" {print $2}' "$W/beside.out")" 1
	sum2=$(awk '$1 == "sum" {print $2 "  -"}' "$W/beside.out")
	size2=$(awk '$1 == "sum" {print $3}' "$W/beside.out")
	expect_eq "$fmt: what readers read is the file" "$(md5sum <"$F")" "$sum2"

	# kill -9 now: every close above has returned, so all of it is there
	pids=$(daemon_pids "$IMG")
	[ -n "$pids" ] || fail "no daemon for $IMG"
	kill -9 $pids
	wait_daemon_gone "$IMG" 30 || fail "the killed daemon did not exit"
	fusermount3 -uz "$MNT" 2>/dev/null
	mnt
	expect_eq "$fmt: size after kill -9 and a new mount" "$(fsize "$F")" "$size2"
	expect_eq "$fmt: contents after kill -9 and a new mount" "$(md5sum <"$F")" "$sum2"
	[ "$sum" != "$sum2" ] && [ "$size" -le "$size2" ] || fail "$fmt: the writer's data made no change"
	umnt
	"$FSCK" -n "$IMG" >"$W/fsck.out" 2>&1 || { cat "$W/fsck.out"; fail "$fmt: fsck -n"; }
	ok "$fmt: fsck -n clean"
done
ok
