#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""PostgreSQL 15 on foliofs's posix format: initdb on the mount, the server
with fsync=on and synchronous_commit=on, pgbench -i and a pgbench run (no
failed transaction), then two crashes in the middle of a run of pgbench plus
a client that inserts ids one by one into a table and records each id only
after its INSERT (autocommit: its commit) returned:
  kill:  kill -9 of every postgres process, then of the foliofs daemon;
  cut:   a power cut: the daemon runs with the fault device's volatile-cache
         model, kill -9 of the daemon and of postgres, then ff-cut undoes a
         random share of the writes the device had not made durable;
  dead:  the same, but the device first dies at a random raw write within
         the run (postgres meets EIO), then kill -9 and ff-cut.
After each: remount, the server starts (crash recovery), every recorded id
is there, pg_amcheck finds the tables and indexes intact, and after a clean
stop and umount `fsck.foliofs -n` is clean.

  FOLIOFS_CLIENTS_LONG=1  pgbench -i -s 10 and -T 60 (default -s 2, -T 10),
                          longer runs before each crash
  FOLIOFS_CLIENTS_SEED    the seed (default: from the time; printed)
"""
import os
import pwd
import random
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

PGBIN = os.environ.get("FOLIOFS_PGBIN", "/usr/lib/postgresql/15/bin")
SCALE = 10 if lib.LONG else 2
SECS = 60 if lib.LONG else 10
ROUND = 10**9  # crash round k inserts ids k * ROUND + 1, + 2, ...
CRASH_AFTER = (5, 30) if lib.LONG else (2, 5)  # seconds of load before a crash


def pg(*args, check=True, timeout=600):
    """A PostgreSQL program, run as user postgres."""
    r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PGBIN, args[0]),
                        *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if check and r.returncode:
        raise lib.Fail("%s exited %d: %s" % (args[0], r.returncode,
                                             " | ".join(r.stdout.splitlines()[-6:])))
    return r.stdout


def pg_popen(*args, **kw):
    return subprocess.Popen(["runuser", "-u", "postgres", "--", os.path.join(PGBIN, args[0]),
                             *args[1:]], **kw)


class Server:
    def __init__(self, work, data):
        self.postmaster = None
        self.data, self.sock = data, os.path.join(work, "sock")
        self.log = os.path.join(work, "postgres.log")
        self.pids = []
        os.makedirs(self.sock, exist_ok=True)
        open(self.log, "a").close()
        pw = pwd.getpwnam("postgres")
        for p in (self.sock, self.log):
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def start(self):
        self.postmaster = None
        opts = "-k %s -c listen_addresses= -c fsync=on -c synchronous_commit=on" % self.sock
        r = pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "300", "-o", opts,
               "start", check=False)
        if "server started" not in r:
            raise lib.Fail("the server did not start: %s | log: %s" % (
                r.strip()[-300:], self.tail()))
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.postmaster = int(f.readline())

    def stop(self):
        pg("pg_ctl", "-D", self.data, "-w", "-t", "300", "-m", "fast", "stop")

    def kill9(self):
        """kill -9 of the postmaster and every process it started."""
        if self.postmaster is None:
            return  # not started, or killed already
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == self.postmaster:
                            kids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        for p in [self.postmaster] + kids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # until they are reaped, a restart takes the old postmaster for a live one
        for _ in range(3000):
            if not any(os.path.exists("/proc/%d" % p) for p in [self.postmaster] + kids):
                self.postmaster = None
                return
            time.sleep(0.01)
        raise lib.Fail("postgres processes %s still there 30 s after kill -9" % (
            [self.postmaster] + kids))

    def tail(self, n=6):
        with open(self.log, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-n:])

    def sql(self, q):
        return pg("psql", "-h", self.sock, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                  "-c", q, "postgres")


class IdClient(threading.Thread):
    """Inserts ids first, first+1, ... one statement (one commit) at a time;
    an id is recorded once psql printed it back, after its commit returned."""

    def __init__(self, srv, first):
        super().__init__(daemon=True)
        self.srv, self.next = srv, first
        self.done = []
        self.p = pg_popen("psql", "-h", srv.sock, "-X", "-q", "-A", "-t", "-v",
                          "ON_ERROR_STOP=1", "postgres", stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          bufsize=1)

    def run(self):
        try:
            while True:
                self.p.stdin.write("INSERT INTO ids VALUES (%d) RETURNING id;\n" % self.next)
                self.p.stdin.flush()
                line = self.p.stdout.readline()
                if not line:
                    break
                self.done.append(int(line))
                self.next += 1
        except (OSError, ValueError):
            pass  # the server or the mount died under it
        finally:
            self.p.kill()
            self.p.wait()


def pgbench_tps(out):
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    raise lib.Fail("pgbench printed no tps: %s" % out[-300:])


def dev_writes(fs):
    """The mount's raw device writes so far (its statistics attribute)."""
    for line in os.getxattr(fs.mnt, "user.foliofs.stats").decode().splitlines():
        k, _, v = line.partition(" ")
        if k == "dev_writes":
            return int(v)
    raise lib.Fail("no dev_writes in user.foliofs.stats")


def crash_round(fs, srv, rng, crash, first, seed, up):
    """Load, crash, remount, restart. Returns the ids recorded and a note.
    up: whether the server is running (a device that died in its start: no)."""
    bench = ids = None
    est = {}
    if up:
        w0, t0 = dev_writes(fs), time.monotonic()
        bench = pg_popen("pgbench", "-h", srv.sock, "-c", "2", "-j", "1", "-T", "600",
                         "postgres", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ids = IdClient(srv, first)
        ids.start()
        until = time.monotonic() + rng.uniform(*CRASH_AFTER)
        if crash == "dead":  # the device dies by itself: wait for it
            until += CRASH_AFTER[1] * 2
        while time.monotonic() < until:
            if crash == "dead" and fs.device_died():
                time.sleep(1)  # postgres meets the errors
                break
            if crash != "dead" and (not ids.is_alive() or bench.poll() is not None):
                raise lib.Fail("%s: the load died before the crash: %s" % (crash, srv.tail()))
            time.sleep(0.05)
        if crash == "kill":
            est["rate"] = (dev_writes(fs) - w0) / (time.monotonic() - t0)
    # a dead round whose device outlived the run is a plain power cut
    died = crash == "dead" and fs.device_died()
    if crash == "kill":
        srv.kill9()
        fs.kill9()
    else:  # the power goes: the device first
        fs.kill9()
        srv.kill9()
    if up:
        bench.kill()
        bench.wait()
        ids.join(60)
        if ids.is_alive():
            raise lib.Fail("%s: the id client is stuck after the crash" % crash)
    info = ""
    if crash != "kill":
        keep = rng.choice([0, 30, 50, 70, 100])
        st = fs.cut(seed, keep)
        info = "; power cut%s: %d of %d logged writes undone (keep %d%%)" % (
            (" (the device died at its write %d)" if died else
             " (the device outlived the run: dead_after=%d)") % fs.dead_after
            if crash == "dead" else "",
            st["dropped"], st["entries"], keep)
    fs.mount()
    srv.start()
    est["start"] = dev_writes(fs)
    return (ids.done if ids else []), info, est


def check(srv, rounds, what):
    """rounds: (first id, ids recorded) of each crash round so far."""
    got = set(int(x) for x in srv.sql("SELECT id FROM ids").split())
    want = [i for _, done in rounds for i in done]
    missing = sorted(set(want) - got)
    if missing:
        raise lib.Fail("%s: %d of %d committed ids missing after recovery (first %s)" % (
            what, len(missing), len(want), missing[:5]))
    for first, done in rounds:
        # beyond the last recorded id, only the one in flight at the crash
        top = (max(done) if done else first - 1) + 1
        extra = sorted(i for i in got if top < i < first + ROUND)
        if extra:
            raise lib.Fail("%s: ids never committed are there: %s" % (what, extra[:5]))
    r = pg("pg_amcheck", "-h", srv.sock, "--heapallindexed", "postgres",
           check=False)
    if r.strip() or "error" in r.lower():
        raise lib.Fail("%s: pg_amcheck: %s" % (what, " | ".join(r.splitlines()[:6])))
    return len(got)


def run(work):
    seed = int(os.environ.get("FOLIOFS_CLIENTS_SEED", str(int(time.time()) % 1000000)))
    rng = random.Random(seed)
    lib.log("postgres: pgbench -s %d -T %d, seed %d" % (SCALE, SECS, seed))
    fs = lib.Fs(work, (2 << 30) if lib.LONG else (1 << 30))
    srv = None
    try:
        fs.mkfs()
        fs.mount()
        pw = pwd.getpwnam("postgres")
        top = os.path.join(fs.mnt, "pg")
        os.mkdir(top, 0o700)
        os.chown(top, pw.pw_uid, pw.pw_gid)
        data = os.path.join(top, "data")
        t0 = time.monotonic()
        pg("initdb", "-D", data, "-A", "trust", "-U", "postgres")
        srv = Server(work, data)
        srv.start()
        lib.log("initdb and start: %.1f s" % (time.monotonic() - t0))
        pg("pgbench", "-h", srv.sock, "-i", "-q", "-s", str(SCALE), "postgres")
        out = pg("pgbench", "-h", srv.sock, "-c", "4", "-j", "2", "-T", str(SECS), "postgres",
                 timeout=SECS + 300)
        if "number of failed transactions: 0 " not in out:
            raise lib.Fail("pgbench had failed transactions: %s" % out[-400:])
        lib.log("pgbench -c 4 -j 2 -T %d: %.0f tps" % (SECS, pgbench_tps(out)))
        srv.sql("CREATE TABLE ids (id bigint PRIMARY KEY); CREATE EXTENSION amcheck")

        rounds = []
        est = {}
        for k, crash in enumerate(("kill", "cut", "dead")):
            up = True
            if crash != "kill":
                # the next mount runs the fault device's volatile-cache model;
                # "dead": the device also dies at a raw write within the load
                # (from the kill round's writes at a start and per second)
                srv.stop()
                fs.umount()
                fs.fsck()
                fault = ""
                if crash == "dead":
                    fs.dead_after = est["start"] + rng.randint(
                        1, int(est["rate"] * CRASH_AFTER[1]) + 1)
                    fault = "dead_after=%d" % fs.dead_after
                fs.mount(fault=fault)
                try:
                    srv.start()
                except lib.Fail:
                    if not fs.device_died():
                        raise
                    up = False  # the device died in the server's start
            done, info, e = crash_round(fs, srv, rng, crash, k * ROUND + 1, seed, up)
            est.update(e)
            rounds.append((k * ROUND + 1, done))
            n = check(srv, rounds, crash)
            lib.log("ok %s: %d ids committed in the run, %d rows after recovery%s" % (
                crash, len(done), n, info))
        srv.stop()
        srv = None
        fs.umount()
        fs.fsck()
    finally:
        if srv is not None:
            srv.kill9()
        fs.close()


if __name__ == "__main__":
    lib.need(*(os.path.join(PGBIN, x) for x in ("initdb", "pg_ctl", "pgbench", "psql",
                                                 "pg_amcheck")), "runuser")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        lib.skip("no user postgres (the postgresql-15 package makes it)")
    lib.main("20-postgres", run)
