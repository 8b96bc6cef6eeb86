#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# After a zone reset, the zone's old data must never come back: truncate to 0
# (reset) then to the capacity (finish) must read as zeros, before and after
# a remount, as on a real zoned device (found by tests/crash/crash.py: a
# finished zone showed bytes of the generation before its reset).
set -u
. "$(dirname "$0")/lib-crash.sh"
mkimg 2 $((4 << 20)) 6
mnt
python3 - "$MNT/seq/0" <<'PY' || fail "stale data visible after reset + finish"
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_SYNC)
os.pwrite(fd, b"\xab" * 65536, 0)
os.close(fd)
os.truncate(p, 0)
os.truncate(p, 4 << 20)
d = open(p, "rb").read()
assert len(d) == 4 << 20 and not any(d), "%d stale bytes" % sum(1 for b in d if b)
PY
umnt
mnt
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(len(d) != 4<<20 or any(d))' \
	"$MNT/seq/0" || fail "stale data visible after remount"
umnt
echo ok
