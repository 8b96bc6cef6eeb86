#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Finishing a zone (truncate to the capacity) after buffered appends: the
# finish record is durable, so the appended data must be durable before it,
# or a power cut leaves a FULL zone whose file shows zeros where the user's
# bytes were (bytes never written). Power cut on the fault device with a
# volatile cache that loses every non-durable write (ff-cut keep 0).
set -u
. "$(dirname "$0")/lib-crash.sh"
CUT=$B/tests/crash/ff-cut
[ -x "$CUT" ] || { echo "ff-cut not built"; exit 77; }
mkimg 2 $((4 << 20)) 6
FOLIOFS_FAULT="vlog=$T/vlog" mnt
python3 - "$MNT/seq/0" <<'PY' || fail "workload"
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY)
os.pwrite(fd, b"\x5a" * 65536, 0)  # buffered
os.close(fd)
os.truncate(p, 4 << 20)            # finish: acknowledged
PY
kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=
umount -l "$MNT"
"$CUT" "$IMG" "$T/vlog" 1 0 >/dev/null || fail "ff-cut"
mnt
python3 - "$MNT/seq/0" <<'PY' || fail "a finished zone lost the data written before the finish"
import sys
d = open(sys.argv[1], "rb").read()
assert len(d) == 4 << 20, len(d)
assert d[:65536] == b"\x5a" * 65536, "head is %s" % d[:8].hex()
assert not any(d[65536:])
PY
umnt
echo ok
