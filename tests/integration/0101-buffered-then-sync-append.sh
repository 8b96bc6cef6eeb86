#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A buffered append to a sequential file followed by an O_SYNC append that
# lands in the same folio: the sync append first writes the buffered blocks
# ahead of it in zone order, and must not wait on its own writeback blocks
# (found by tests/crash/crash.py seed 10: the daemon hung forever).
set -u
. "$(dirname "$0")/lib-crash.sh"
mkimg 2 $((4 << 20)) 6
mnt "max_folio=64K,cache_size=8M"
python3 - "$MNT/seq/0" <<'PY' &
import os, sys
p = sys.argv[1]
want = b""
for i in range(24):
    # buffered appends ramp the folio size up; a sync append then lands in a
    # folio whose first blocks are still dirty
    n = (1 + (i * 7) % 15) * 4096
    d = os.urandom(n)
    fd = os.open(p, os.O_WRONLY | (os.O_SYNC if i % 3 == 2 else 0))
    os.pwrite(fd, d, len(want))
    os.close(fd)
    want += d
with open(p, "rb") as f:
    assert f.read() == want
PY
W=$!
for _ in $(seq 100); do kill -0 $W 2>/dev/null || break; sleep 0.1; done
if kill -0 $W 2>/dev/null; then
	kill -9 "$DPID"; DPID=
	umount -l "$MNT"
	fail "the O_SYNC append after a buffered append hung (10 s)"
fi
wait $W || fail "content or error"
umnt
echo ok
