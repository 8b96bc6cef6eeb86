# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by guest scripts: report helpers. Each result is one line.
# Each line ends with the seconds since the script started, e.g. "[12s]".
T0=$(date +%s)
pass() { echo "VMTEST PASS $* [$(($(date +%s) - T0))s]"; }
fail() { echo "VMTEST FAIL $* [$(($(date +%s) - T0))s]"; }
skip() { echo "VMTEST SKIP $*"; }
step() { echo "step: $* [$(($(date +%s) - T0))s]"; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---- foliofs helpers ----
DEV=${DEV:-/dev/nullb0}
MNT=${MNT:-/mnt/ff}

# ff_mount DEV MNT [-o opts]: the daemon in the foreground, in the background
# (busybox has no fusermount3; as root libfuse mounts directly). Its log is
# /tmp/foliofs-<basename MNT>.log and its pid /tmp/foliofs-<basename MNT>.pid.
ff_mount() {
	local dev=$1 mnt=$2 log
	shift 2
	log=/tmp/foliofs-$(basename "$mnt")
	mkdir -p "$mnt"
	foliofs -f "$@" "$dev" "$mnt" >"$log.log" 2>&1 &
	echo $! >"$log.pid"
	i=0
	while ! grep -q " $mnt fuse" /proc/mounts && [ $i -lt 100 ]; do
		kill -0 "$(cat "$log.pid")" 2>/dev/null || break
		sleep 0.1; i=$((i + 1))
	done
	grep -q " $mnt fuse" /proc/mounts && return 0
	cat "$log.log"
	return 1
}

# ff_umount MNT: unmount and wait for the daemon; its exit status is ours.
ff_umount() {
	local mnt=$1 log pid rc
	log=/tmp/foliofs-$(basename "$mnt")
	pid=$(cat "$log.pid")
	umount "$mnt" || { kill -TERM "$pid"; }
	wait "$pid"
	rc=$?
	[ $rc -eq 0 ] || { echo "foliofs daemon exited $rc:"; cat "$log.log"; }
	return $rc
}

# ff_stat MNT KEY: one counter of user.foliofs.stats
ff_stat() {
	getfattr --only-values -n user.foliofs.stats "$1" 2>/dev/null | awk -v k="$2" '$1 == k {print $2}'
}

# fio_terse_line WORKLOAD SYSTEM FILE: a VMBENCH line from fio's terse (v3)
# output with group_reporting: write bw (KiB/s, field 48), iops (49), and
# the 99th percentile of completion latency (usec, fields 59-78).
vmbench() {
	awk -F';' -v w="$1" -v s="$2" '$1 == "3" {
		p99 = "?"
		for (i = 59; i <= 78; i++) if ($i ~ /^99\.000000%=/) { split($i, a, "="); p99 = a[2] }
		printf "VMBENCH %s %s iops=%d bw=%.1fMiB/s p99=%sus\n", w, s, $49, $48 / 1024, p99
	}' "$3"
}

# sums DIR FILE...: "sha256 FILE" lines; each file is read 1 MiB at a time
# (one FUSE request a read: sha256sum's own 32 KiB reads are ~30x the requests)
sums() {
	local d=$1 f
	shift
	for f in "$@"; do
		echo "$(dd if="$d/$f" bs=1048576 2>/dev/null | sha256sum | cut -d' ' -f1) $f"
	done
}
# sums_check DIR LISTFILE: the files of LISTFILE (from sums) have those sums
sums_check() {
	sums "$1" $(awk '{print $2}' "$2") >/tmp/sums_check.$$
	diff "$2" /tmp/sums_check.$$
}
