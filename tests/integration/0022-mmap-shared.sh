#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Shared writable mappings on the posix format's default (direct-I/O) mount,
# as programs expect of a Linux filesystem: SQLite's WAL index (-shm) and
# RocksDB's mmap mode need them. A shared mapping's stores reach other fds'
# reads after msync and the device by umount; a direct write from another fd
# is seen through the mapping. The zonefs format still refuses a writable
# shared mapping of a sequential file (its pages would go back out of order).
. "$(dirname "$0")/lib.sh"

mkimg 256M --format posix
mnt
python3 - "$MNT" <<'PY' || fail "shared mapping on the posix format"
import mmap, os, sys
mnt = sys.argv[1]
p = mnt + "/f"
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
a = os.urandom(65536)
m[4096:4096 + len(a)] = a
m.flush()
other = os.open(p, os.O_RDONLY)
assert os.pread(other, len(a), 4096) == a, "another fd does not read what msync wrote"
b = os.urandom(8192)
w = os.open(p, os.O_WRONLY)
assert os.pwrite(w, b, 8192) == 8192
os.close(w)
assert m[8192:8192 + len(b)] == b, "the mapping does not see a write from another fd"
c = os.urandom(4096)
m[524288:524288 + 4096] = c
m.close()  # no msync: written back by the kernel, at the latest by umount
os.close(fd)
os.close(other)
open(mnt + "/expect", "wb").write(a[:4096] + b + a[12288:] + c)
PY
umnt
mnt
python3 - "$MNT" <<'PY' || fail "after a remount"
import sys
mnt = sys.argv[1]
e = open(mnt + "/expect", "rb").read()
d = open(mnt + "/f", "rb").read()
assert d[4096:4096 + 65536] == e[:65536], "msync'd data lost at remount"
assert d[524288:524288 + 4096] == e[65536:], "unmapped data not written back by umount"
PY
ok "posix: shared writable mapping, coherent with other fds, durable by umount"
python3 - "$MNT" <<'PY' || fail "sqlite WAL on the default mount"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/t.db")
assert db.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
db.execute("pragma synchronous=full")
db.execute("create table t(x)")
with db:
    db.executemany("insert into t values(?)", [(i,) for i in range(1000)])
db.close()
db = sqlite3.connect(sys.argv[1] + "/t.db")
assert db.execute("select count(*) from t").fetchone()[0] == 1000
assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
PY
ok "sqlite journal_mode=WAL works on the default mount"
umnt

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt
zf OK fill "$MNT/seq/0" 0 256K 5 sync
zf ENODEV mmap "$MNT/seq/0" 0 256K 5 write
ok "zonefs: a writable shared mapping of a sequential file is still refused"
umnt
