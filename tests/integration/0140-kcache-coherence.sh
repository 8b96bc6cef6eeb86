#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# With -o kernel_cache the kernel page cache serves every open but a
# sequential file's writable ones, and foliofs's cache stays the
# authority. A hot read through such an open costs no FUSE request (the
# daemon copies nothing out for it). Bytes changed outside the kernel page
# cache are seen by every open at once: a sync (direct_io) write seen by a
# buffered reader, by its shared read-only mapping and by a reader opened
# after the last cached open closed; a buffered write seen by a sync reader;
# a buffered append, a zone reset and a zone finish of a sequential file seen
# by a reader that cached its pages; and a reader thread checking a sync
# writer's generations while they run. By default only the read-only opens
# of conventional files (whose size never moves) are cached: the same checks
# pass, and a hot read of cnv/0 costs no FUSE request either. With -o
# direct_io every read reaches the daemon.
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt
zf OK fill "$MNT/cnv/0" 0 4M 1 buffered
zf OK fill "$MNT/seq/0" 0 1M 2 sync

# hot: a second read of 4 MiB of cnv/0 through a read-only open copies
# (nearly) nothing out of the daemon; the margin is for pages the kernel may
# reclaim in between on a busy machine
hot_out() {
	local before after
	python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.read(4 << 20)' "$MNT/cnv/0"
	before=$(stat_val cache_bytes_copied_out)
	python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.read(4 << 20)' "$MNT/cnv/0"
	after=$(stat_val cache_bytes_copied_out)
	echo $((after - before))
}
got=$(hot_out)
[ "$got" -lt $((1 << 20)) ] || fail "default: a hot 4 MiB read of cnv/0 copied $got bytes out of the daemon"
ok "default: a hot 4 MiB read of cnv/0 served by the kernel page cache ($got bytes from the daemon)"

cat >"$W/coherence.py" <<'EOF'
import mmap, os, sys, threading, time
mnt = sys.argv[1]
cnv, seq = mnt + "/cnv/0", mnt + "/seq/0"

def ok(m): print("ok -", m, flush=True)

def expect(what, got, want):
    if got != want:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                 min(len(got), len(want)))
        sys.exit("FAIL: %s: %d bytes, want %d; first difference at %d" %
                 (what, len(got), len(want), i))
    ok(what)

def pread(fd, n, off):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b:
            break
        out += b
    return out

r = os.open(cnv, os.O_RDONLY)
pread(r, 1 << 20, 0)  # cache the first MiB in the kernel
mm = mmap.mmap(r, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ)
mm[:]  # and fault it into the mapping
s = os.open(cnv, os.O_RDWR | os.O_DSYNC)
a = bytes([0xa1]) * 4096 + bytes(range(256)) * 4
os.pwrite(s, a, 8192)
expect("sync write seen by a buffered reader", pread(r, len(a), 8192), a)
expect("sync write seen by its shared mapping", mm[8192:8192 + len(a)], a)
b = b"\xb2" * 1000  # sub-block, unaligned
os.pwrite(s, b, 70001)
expect("sub-block sync write seen by a buffered reader", pread(r, 1000, 70001), b)
w = os.open(cnv, os.O_RDWR)
c = b"\xc3" * 5000
os.pwrite(w, c, 200000)
expect("buffered write seen by a sync reader", pread(s, 5000, 200000), c)
expect("buffered write seen by a buffered reader", pread(r, 5000, 200000), c)
d = os.urandom(3 << 20)  # larger than one request: the kernel splits it
os.pwrite(s, d, 1 << 20)
expect("3 MiB sync write seen by a buffered reader", pread(r, len(d), 1 << 20), d)
mm.close()
os.close(r)
os.close(w)
# no buffered open left: the kernel's pages of cnv/0 stay, and are stale now
e = b"\xe5" * 4096
os.pwrite(s, e, 8192)
r = os.open(cnv, os.O_RDONLY)
expect("sync write while no buffered open: seen by the next one", pread(r, 4096, 8192), e)
os.close(r)

# a reader thread against a sync writer: after write k returned, a read
# started later never sees a generation below k
stop, bad, done = False, [], [0]
def reader():
    fd = os.open(cnv, os.O_RDONLY)
    while not stop:
        floor = done[0]
        g = int.from_bytes(pread(fd, 8, 3 << 20), "little")
        if g < floor:
            bad.append((g, floor))
    os.close(fd)
t = threading.Thread(target=reader)
t.start()
end = time.time() + 2
k = 0
while time.time() < end:
    k += 1
    os.pwrite(s, k.to_bytes(8, "little") * 512, 3 << 20)
    done[0] = k
stop = True
t.join()
os.close(s)
if bad:
    sys.exit("FAIL: a reader saw generation %d after %d was written" % bad[0])
ok("a reader thread saw every one of %d sync writes once written" % k)

# sequential file: the pages of its tail are cached by a reader
r = os.open(seq, os.O_RDONLY)
old = pread(r, 2 << 20, 0)
expect("seq/0 read", len(old).to_bytes(8, "little"), (1 << 20).to_bytes(8, "little"))
ap = os.open(seq, os.O_WRONLY | os.O_APPEND)
f = b"\xf6" * 1500  # a buffered sub-block append: it stays in foliofs's cache
os.write(ap, f)
expect("buffered append seen by a reader", pread(r, 4096, 1 << 20), f)
os.close(ap)
os.truncate(seq, 0)
expect("reset seen by a reader", pread(r, 4096, 0), b"")
ap = os.open(seq, os.O_WRONLY | os.O_APPEND | os.O_SYNC)
g = b"\x97" * 8192
os.write(ap, g)
expect("sync append after a reset seen by a reader", pread(r, 65536, 0), g)
os.close(ap)
cap = 64 << 20
os.truncate(seq, cap)
expect("finish seen by a reader", pread(r, 4096, 8192), bytes(4096))
os.close(r)
EOF
python3 "$W/coherence.py" "$MNT" || fail "coherence by default"
note "-o kernel_cache: writable opens use the page cache too"
remount -o kernel_cache
truncate -s 0 "$MNT/seq/0" || fail "reset seq/0"
zf OK fill "$MNT/seq/0" 0 1M 2 sync
python3 "$W/coherence.py" "$MNT" || fail "coherence with -o kernel_cache"
got=$(hot_out)
[ "$got" -lt $((1 << 20)) ] || fail "-o kernel_cache: a hot 4 MiB read copied $got bytes out of the daemon"
ok "-o kernel_cache: a hot 4 MiB read served by the kernel page cache ($got bytes from the daemon)"

note "-o direct_io: every read reaches the daemon"
remount -o direct_io
got=$(hot_out)
[ "$got" -ge $((4 << 20)) ] || fail "-o direct_io: a 4 MiB read copied only $got bytes"
ok "-o direct_io: hot reads reach the daemon ($got bytes)"
umnt
echo "PASS $TNAME"
