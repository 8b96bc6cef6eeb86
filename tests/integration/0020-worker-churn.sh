#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# libfuse's worker threads come and go (-o max_idle_threads=1: every worker
# beyond one exits as soon as it is idle). Each worker's 1 MiB read buffer
# goes with it: 150 bursts of 8 concurrent 1 MiB reads, each burst starting
# up to 7 workers that then exit, leave the daemon's RSS within 24 MiB of
# where it was after the first bursts (a buffer kept per exited worker would
# be about 1 GiB).
. "$(dirname "$0")/lib.sh"

mkimg 320M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt -o max_idle_threads=1
zf OK fill "$MNT/cnv/0" 0 8M 1 buffered
pid=$(daemon_pids "$IMG")
[ -n "$pid" ] || fail "no daemon pid"
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status"; }
burst() { # $1 = how many bursts
	python3 - "$MNT/cnv/0" "$1" <<'PY' || fail "readers"
import os, sys, threading
path, rounds = sys.argv[1], int(sys.argv[2])
bar = threading.Barrier(8)
def reader(i):
    fd = os.open(path, os.O_RDONLY)
    for _ in range(rounds):
        bar.wait()
        assert len(os.pread(fd, 1 << 20, i << 20)) == 1 << 20
    os.close(fd)
ts = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
}
burst 10
r0=$(rss)
burst 150
r1=$(rss)
note "daemon RSS $r0 KiB after 10 bursts, $r1 KiB after 150 more"
[ $((r1 - r0)) -le $((24 << 10)) ] || fail "RSS grew by $(((r1 - r0) >> 10)) MiB over 150 bursts of worker churn"
ok "RSS grew by $(((r1 - r0) >> 10)) MiB"
umnt
echo "PASS $TNAME"
