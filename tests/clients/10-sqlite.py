#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""SQLite (Python's sqlite3) on foliofs's posix format, crashed mid-run.

For each journal mode (WAL, then the rollback journal, DELETE, both on a
default mount), always with synchronous=FULL, and for each crash (kill -9 of the daemon; a power cut:
the fault device's volatile-cache model, kill -9, ff-cut), on a regular and
an emulated-zoned image: a writer process commits transactions one by one
(each inserts row id with a payload derived from id, and updates a counter
row) and reports each id on its stdout only after its COMMIT returned. After
a random number of them the daemon is killed mid-transaction. Remount:
`PRAGMA integrity_check` is ok, every reported id is there with its payload,
no id beyond the one in flight is there, and `fsck.foliofs -n` is clean.

  FOLIOFS_CLIENTS_LONG=1  more transactions per case (5000 instead of 150)
  FOLIOFS_CLIENTS_SEED    the seed (default: from the time; printed)
  FOLIOFS_CLIENTS_ONLY    only the cases whose name holds this (wal-full-cut-zoned...)
"""
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

NTX = 5000 if lib.LONG else 150
ZS = 4 << 20
# WAL's index (the -shm file) is a MAP_SHARED mapping: the posix format's
# default (direct_io) mount allows it (FUSE_DIRECT_IO_ALLOW_MMAP)
OPTS = {"WAL": None, "DELETE": None}
ONLY = os.environ.get("FOLIOFS_CLIENTS_ONLY", "")  # run the cases whose name has it
HANG_S = 20  # a writer that has not moved for this long is stuck
CASE_S = 60 if not lib.LONG else 1200
# raw device writes per transaction, about: where a power cut may land
WRITES_PER_TX = {"WAL": 3, "DELETE": 8}


def payload(i):
    n = 64 + (i * 7919) % 3000  # a few hundred bytes to a few pages
    h = hashlib.sha256(str(i).encode()).digest()
    return (h * (n // len(h) + 1))[:n]


def writer(db, mode, sync, ntx):
    """The client: commit ntx transactions, print each id once committed."""
    c = sqlite3.connect(db, isolation_level=None, timeout=30)
    got = c.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
    if got.lower() != mode.lower():
        print("journal_mode %s gave %s" % (mode, got), file=sys.stderr)
        sys.exit(2)
    c.execute("PRAGMA synchronous=%s" % sync)
    c.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, h BLOB, v BLOB)")
    c.execute("CREATE INDEX IF NOT EXISTS t_h ON t(h)")
    c.execute("CREATE TABLE IF NOT EXISTS n (k INTEGER PRIMARY KEY, c INTEGER)")
    c.execute("INSERT OR IGNORE INTO n VALUES (0, 0)")
    print("ready", flush=True)
    for i in range(1, ntx + 1):
        v = payload(i)
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (?, ?, ?)", (i, hashlib.sha256(v).digest(), v))
        c.execute("UPDATE n SET c = ? WHERE k = 0", (i,))
        c.execute("COMMIT")
        # SQLite's unixDelete skips the directory fsync, and reports success,
        # when it cannot open the directory: after a kill -9 of the daemon
        # that open fails (ENOTCONN) and COMMIT returns with the journal's
        # unlink not durable. An open of the directory reaches the daemon
        # (OPENDIR): once it succeeds, SQLite's own open and fsync did too.
        os.close(os.open(os.path.dirname(db), os.O_RDONLY | os.O_DIRECTORY))
        print(i, flush=True)
    c.close()


def hung(w, fs, name, when):
    """The writer is stuck: say where, free it, fail."""
    try:
        with open("/proc/%d/stack" % w.pid) as f:
            where = " <- ".join(x.split()[1].split("+")[0] for x in f.read().splitlines()[:6])
    except OSError:
        where = "?"
    w.kill()
    fs.close()
    fs.abort()
    raise lib.Fail("%s: the writer hung %s, in the kernel at %s; daemon: %s" % (
        name, when, where, fs.tail(4)))


def one_case(work, seed, mode, sync, crash, zoned):
    rng = random.Random(seed)
    name = "%s-%s-%s-%s" % (mode.lower(), sync.lower(), crash, "zoned" if zoned else "regular")
    fs = lib.Fs(os.path.join(work, name), 256 << 20,
                ["--zone-size", str(ZS), "--emulate-zoned"] if zoned else [])
    try:
        fs.mkfs()
        # kill: kill -9 of the daemon after a random number of commits;
        # cut: the device dies at a random raw write (the writer then gets
        # EIO), then kill -9 and ff-cut
        fault, at = None, rng.randint(NTX // 4, NTX)
        if crash == "cut":
            fault, at = "dead_after=%d" % rng.randint(10, WRITES_PER_TX[mode] * NTX // 2), NTX
        fs.mount(fault, opts=OPTS[mode])
        db = os.path.join(fs.mnt, "db.sqlite")
        w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", db, mode,
                              sync, str(NTX)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        lines = []  # what the writer printed; a thread reads it
        rd = threading.Thread(target=lambda: lines.extend(x.strip() for x in w.stdout),
                              daemon=True)
        rd.start()
        t0 = time.monotonic()
        dead_at = None
        while w.poll() is None and len(lines) <= at:
            now = time.monotonic()
            if dead_at is None and crash == "cut" and fs.device_died():
                dead_at = now
            if dead_at is not None and now - dead_at > HANG_S:
                hung(w, fs, name, "%d s after the device died" % HANG_S)
            if now - t0 > CASE_S:
                hung(w, fs, name, "%d s into the run" % CASE_S)
            time.sleep(0.02)
        secs = time.monotonic() - t0
        # the crash, mid-transaction: the writer is committing the next one
        fs.kill9()
        # a writer blocked on the dead mount gets ENOTCONN; its stdout keeps
        # every id whose commit returned before that
        try:
            w.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            hung(w, fs, name, "%d s after the kill -9 of the daemon" % HANG_S)
        rd.join(HANG_S)
        err = w.stderr.read()
        done = [int(x) for x in lines if x.isdigit()]
        died = crash == "cut" and fs.device_died()
        if len(done) < at and not died:
            raise lib.Fail("%s: the writer failed after %d of %d commits: %s | daemon: %s" % (
                name, len(done), at, err.strip()[-400:], fs.tail()))
        cutinfo = ""
        if crash == "cut":
            keep = rng.choice([0, 30, 50, 70, 100])
            st = fs.cut(seed, keep)
            cutinfo = ", power cut %s: %d of %d logged writes undone (keep %d%%)" % (
                "at " + fault if died else "after the run", st["dropped"], st["entries"], keep)
        fs.mount(opts=OPTS[mode])
        c = sqlite3.connect(db, isolation_level=None)
        ic = [r[0] for r in c.execute("PRAGMA integrity_check").fetchall()]
        try:
            rows = {r[0]: (r[1], r[2]) for r in c.execute("SELECT id, h, v FROM t")}
            cnt = (c.execute("SELECT c FROM n WHERE k = 0").fetchone() or (0,))[0]
        except sqlite3.OperationalError as e:
            if done:
                raise lib.Fail("%s: %d commits acknowledged, then: %s" % (name, len(done), e))
            rows, cnt = {}, 0  # the device died before the first commit
        c.close()
        fs.umount()
        errs = []
        if ic != ["ok"]:
            errs.append("integrity_check: %s" % "; ".join(ic[:5]))
        last = max(done) if done else 0
        missing = [i for i in done if i not in rows]
        # synchronous=FULL in DELETE mode does not fsync the directory after
        # the journal's unlink, the commit point: SQLite documents that the
        # last transaction may roll back at a crash then (EXTRA syncs it)
        lost_last = mode == "DELETE" and sync == "FULL" and missing == [last]
        if missing and not lost_last:
            errs.append("%d committed ids missing (first %s)" % (len(missing), missing[:5]))
        extra = sorted(i for i in rows if i > last + 1)
        if extra:
            errs.append("ids never committed are there: %s" % extra[:5])
        bad = [i for i, (h, v) in rows.items() if v != payload(i) or h != hashlib.sha256(v).digest()]
        if bad:
            errs.append("rows with a wrong payload: %s" % bad[:5])
        if rows and (cnt != max(rows) or len(rows) != cnt):
            errs.append("counter row %d, %d rows up to id %d" % (cnt, len(rows), max(rows)))
        fs.fsck()
        if errs:
            raise lib.Fail("%s (seed %d): %s" % (name, seed, "; ".join(errs)))
        lib.log("ok %s: %d commits (%.0f/s), crash, %d rows after%s%s" % (
            name, len(done), len(done) / secs if secs else 0, len(rows),
            " (the last rolled back, as FULL allows)" if lost_last else "", cutinfo))
    finally:
        fs.close()


def run(work):
    seed = int(os.environ.get("FOLIOFS_CLIENTS_SEED", str(int(time.time()) % 1000000)))
    lib.log("sqlite %s: %d transactions per case, seed %d" % (sqlite3.sqlite_version, NTX, seed))
    k = 0
    for mode, sync in (("WAL", "FULL"), ("DELETE", "FULL"), ("DELETE", "EXTRA")):
        for crash in ("kill", "cut"):
            for zoned in (False, True):
                k += 1
                name = "%s-%s-%s-%s" % (mode.lower(), sync.lower(), crash,
                                        "zoned" if zoned else "regular")
                if ONLY and ONLY not in name:
                    continue
                one_case(work, seed + k - 1, mode, sync, crash, zoned)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--writer":
        writer(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    lib.need()
    lib.main("10-sqlite", run)
