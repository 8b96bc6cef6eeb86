#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""RocksDB's db_bench (Debian's rocksdb-tools) on foliofs's posix format.

1. Workload: fillrandom and fillseq with --sync=1 (every Put's WAL record
   fdatasync'ed before it returns), overwrite, readrandom, with a small
   memtable so that flushes and compactions create, fsync, rename and delete
   SST, MANIFEST and CURRENT files while the sync writers run. Fails on a
   non-zero exit, an error line, or readrandom finding fewer keys than
   fillseq wrote; then umount, fsck.foliofs -n, remount, and the keys must
   all be found again and `ldb checkconsistency` pass.
2. Crash: fillseq --sync=1 (keys 0, 1, 2, ... in order; db_bench reports
   every 25 acknowledged Puts on stderr) on a regular or (by the seed) an
   emulated-zoned image, then at a random point:
     kill:  kill -9 of the daemon;
     cut:   the daemon runs under FOLIOFS_FAULT=vlog= (a volatile write cache
            model), kill -9, then ff-cut undoes a random subset of the writes
            not yet made durable: a power cut.
   Remount: the DB must open (ldb replays its WAL), `ldb checkconsistency`
   pass, its keys be exactly 0..k-1 for some k (RocksDB recovers a prefix of
   its WAL) with k at least the last count db_bench reported acknowledged,
   and fsck.foliofs -n be clean.
3. RocksDB's O_DIRECT and mmap modes (io_modes below), --num/2 each: all
   keys found, fsck -n clean.

CI: --num 3000 and one crash of each kind (about a minute on an idle
machine). FOLIOFS_CLIENTS_LONG=1: --num 20000 and five crashes of each kind.
Exit 0 pass, 77 skip (db_bench missing, not root, not built), 1 fail.
"""
import os
import random
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib as K  # noqa: E402

NUM = 20000 if K.LONG else 3000
CRASHES = 5 if K.LONG else 1
IMG_SIZE = 1 << 30
# small memtables and SSTs: flushes and compactions during a short run
DB_OPTS = ["--write_buffer_size=65536", "--target_file_size_base=131072",
           "--max_bytes_for_level_base=524288", "--compression_type=none"]
ERR_RE = re.compile(r"corruption|io error|error|fail", re.I)


def db_bench(db, benchmarks, extra=(), timeout=900, num=NUM):
    cmd = [DB_BENCH, "--db=" + db, "--benchmarks=" + benchmarks, "--num=%d" % num,
           "--seed=1", *DB_OPTS, *extra]
    r = K.run(cmd, timeout=timeout)
    if r.returncode:
        raise K.Fail("db_bench %s exited %d: %s" % (benchmarks, r.returncode,
                                                     r.stdout.strip()[-800:]))
    bad = [ln for ln in r.stdout.splitlines() if ERR_RE.search(ln)]
    if bad:
        raise K.Fail("db_bench %s reported: %s" % (benchmarks, " | ".join(bad[:5])))
    return r.stdout


def found(out):
    """readrandom's '(F of N found)'."""
    m = re.search(r"readrandom\s*:.*\((\d+) of (\d+) found\)", out)
    if not m:
        raise K.Fail("no readrandom result in db_bench's output: %s" % out[-400:])
    return int(m.group(1)), int(m.group(2))


def rates(out):
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(\w+)\s*:\s*[\d.]+ micros/op (\d+) ops/sec", out, re.M)}


def ldb(db, *args):
    r = K.run([LDB, "--db=" + db, *args], timeout=300)
    if r.returncode:
        raise K.Fail("ldb %s exited %d: %s" % (" ".join(args), r.returncode,
                                                r.stdout.strip()[-600:]))
    return r.stdout


def workload(work):
    fs = K.Fs(work, IMG_SIZE)
    db = os.path.join(fs.mnt, "db")
    try:
        fs.mkfs()
        fs.mount()
        # fillseq last of the fills: the DB then holds keys 0..NUM-1, and
        # readrandom must find every one it looks up
        out = db_bench(db, "fillrandom,fillseq", ["--sync=1"])
        out += db_bench(db, "overwrite,readrandom", ["--use_existing_db=1", "--sync=1"])
        f, n = found(out)
        if f != n:
            raise K.Fail("readrandom found %d of %d keys after fillseq" % (f, n))
        print("  %s" % ", ".join("%s %.0f ops/s" % kv for kv in rates(out).items()))
        fs.umount()
        fs.fsck()
        fs.mount()
        f, n = found(db_bench(db, "readrandom", ["--use_existing_db=1"]))
        if f != n:
            raise K.Fail("after a remount readrandom found %d of %d keys" % (f, n))
        if "OK" not in ldb(db, "checkconsistency"):
            raise K.Fail("ldb checkconsistency did not say OK after a remount")
        fs.umount()
        fs.fsck()
    finally:
        fs.close()


def io_modes(work):
    """RocksDB's other I/O modes, each on a fresh image: O_DIRECT reads and
    flush/compaction writes, then mmap reads and writes (MAP_SHARED), both at
    the default mount (the posix format's direct_io opens take shared
    mappings: FUSE_DIRECT_IO_ALLOW_MMAP)."""
    n = NUM // 2
    for opts, flags in ((None, ["--use_direct_reads=1",
                                "--use_direct_io_for_flush_and_compaction=1"]),
                        (None, ["--mmap_read=1", "--mmap_write=1"])):
        fs = K.Fs(work, IMG_SIZE)
        db = os.path.join(fs.mnt, "db")
        try:
            fs.mkfs()
            fs.mount(opts=opts)
            out = db_bench(db, "fillseq,overwrite,readrandom,compact,readseq",
                           ["--sync=1", *flags], num=n)
            f, total = found(out)
            if f != total:
                raise K.Fail("with %s readrandom found %d of %d keys" % (" ".join(flags), f,
                                                                          total))
            fs.umount()
            fs.fsck()
            print("  %s%s: ok" % (" ".join(flags), " (-o %s)" % opts if opts else ""))
        finally:
            fs.close()


def keys_of(db):
    """The integer keys of a fillseq DB (db_bench's key: 8 bytes big-endian, '0'-padded)."""
    keys = []
    for ln in ldb(db, "scan", "--key_hex", "--no_value").splitlines():
        ln = ln.strip()
        if not ln.startswith("0x"):
            raise K.Fail("ldb scan printed an unexpected line: %r" % ln[:200])
        keys.append(int(ln[2:18], 16))
    return keys


def crash(work, mode, seed):
    rng = random.Random(seed * 2 + (mode == "cut"))
    fs = K.Fs(work, IMG_SIZE)
    db = os.path.join(fs.mnt, "db")
    at = rng.randint(NUM // 10, NUM * 7 // 10)  # acknowledged Puts before the crash
    zoned = rng.random() < 0.5
    acked = 0
    try:
        fs.mkfs(["--emulate-zoned", "--conv-zones", "1"] if zoned else [])
        fs.mount(fault="" if mode == "cut" else None)
        cmd = [DB_BENCH, "--db=" + db, "--benchmarks=fillseq", "--num=%d" % NUM, "--sync=1",
               "--stats_interval=25", *DB_OPTS]
        bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, errors="replace")
        stat_re = re.compile(r"thread 0: \(\d+,(\d+)\) ops")
        t0 = time.monotonic()
        for ln in bench.stderr:
            m = stat_re.search(ln)
            if m:
                acked = int(m.group(1))
                if acked >= at:
                    break
            if time.monotonic() - t0 > 600:
                raise K.Fail("db_bench fillseq made no progress to %d Puts in 600 s" % at)
        if acked < at:
            raise K.Fail("db_bench ended after %d Puts, before the crash point %d (exit %s)" %
                         (acked, at, bench.wait()))
        fs.kill9()
        bench.stderr.close()
        bench.wait()
        cut = fs.cut(seed, rng.choice([0, 50, 100])) if mode == "cut" else {}
        fs.mount()
        keys = keys_of(db)
        if keys != list(range(len(keys))):
            missing = sorted(set(range(max(keys) + 1)) - set(keys))[:10] if keys else []
            raise K.Fail("the recovered keys are not a prefix 0..k-1: %d keys, max %s, "
                         "first missing %s" % (len(keys), max(keys) if keys else None, missing))
        if len(keys) < acked:
            raise K.Fail("db_bench reported %d Puts acknowledged (--sync=1) but the DB holds "
                         "only keys 0..%d after the %s" % (acked, len(keys) - 1, mode))
        if "OK" not in ldb(db, "checkconsistency"):
            raise K.Fail("ldb checkconsistency did not say OK after the %s" % mode)
        fs.umount()
        fs.fsck()
        print("  %s seed %d (%s): %d Puts acknowledged, %d keys recovered%s" % (
            mode, seed, "emulated zoned" if zoned else "regular", acked, len(keys),
            ", cut %s" % cut if cut else ""))
    finally:
        fs.close()


def run(work):
    seed = int(os.environ.get("FOLIOFS_CLIENTS_SEED", "0")) or int(time.time()) % 100000
    print("30-rocksdb: --num %d, %d crash(es) of each kind, seed %d" % (NUM, CRASHES, seed))
    try:
        workload(work)
        io_modes(work)
        for i in range(CRASHES):
            for mode in ("kill", "cut"):
                crash(work, mode, seed + i)
    except (K.Fail, subprocess.TimeoutExpired) as e:
        raise K.Fail("%s (replay with FOLIOFS_CLIENTS_SEED=%d)" % (e, seed))


if __name__ == "__main__":
    DB_BENCH, LDB = K.need(["db_bench", "rocksdb_db_bench"], ["ldb", "rocksdb_ldb"])
    K.main("rocksdb", run)
