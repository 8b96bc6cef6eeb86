#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Regression: an fsync (a device flush, which writes the emulated zones'
# pointer records) racing buffered writeback to other sequential zones must
# not fail those writes. It used to: the data write found its zone busy with
# the record write, got EIO, and errors=remount-ro made the mount read-only.
# Here three buffered appenders run while another process fsyncs a
# conventional file in a loop; nothing may fail and the data must verify.
. "$(dirname "$0")/lib.sh"

mkimg 512M --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M
mnt -o cache_size=8M
python3 - "$MNT/cnv/0" "$W/stop" <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
n = 0
while not os.path.exists(sys.argv[2]):
    os.pwrite(fd, b'x' * 4096, (n % 1024) * 4096)
    os.fsync(fd)
    n += 1
print('fsyncs', n)
PY
fsyncer=$!
pids=()
for i in 0 1 2; do
	$ZF fill "$MNT/seq/$i" 0 40M $((i + 10)) buffered 64K >"$W/w$i" &
	pids+=($!)
done
for i in 0 1 2; do
	wait "${pids[$i]}"
	expect_eq "appender $i" "$(cat "$W/w$i")" OK
done
touch "$W/stop"
wait $fsyncer || fail "the fsync loop failed"
expect_eq "still writable" "$(stat_val read_only)" 0
expect_eq "zone queue errors" "$(stat_val zoneq_errors)" 0
for i in 0 1 2; do zf OK fsync "$MNT/seq/$i"; done
remount
for i in 0 1 2; do zf OK check "$MNT/seq/$i" 0 40M $((i + 10)); done
umnt
echo "PASS $TNAME"
