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

# ---- zoned null_blk devices of a script's own, through configfs ----
NB=/sys/kernel/config/nullb

# nullb_make NAME BS NCONV [CAP_MIB [MAX_OPEN [MAX_ACTIVE [ZONE_MIB [SIZE_MIB]]]]]:
# a host-managed zoned null_blk of SIZE_MIB (default 1024) MiB in ZONE_MIB
# (default 64) MiB zones, memory-backed, with BS-byte blocks, NCONV
# conventional zones, a zone capacity of CAP_MIB MiB and at most MAX_OPEN
# open and MAX_ACTIVE active zones (0 or absent: none set, the zone size and
# no limits). Loads configfs and null_blk (no device of its
# own) when 00 did not. Prints the device's path: /dev/NAME, or
# /dev/nullb<index> on kernels that name the disk after its index.
nullb_make() {
	local d=$NB/$1
	[ -d /sys/kernel/config ] || insmod /lib/modules/configfs.ko 2>/dev/null
	[ -d /sys/module/null_blk ] || insmod /lib/modules/null_blk.ko nr_devices=0 2>/dev/null
	mountpoint -q $NB 2>/dev/null || mount -t configfs none /sys/kernel/config 2>/dev/null
	mkdir $d || return 1
	echo 1 >$d/zoned; echo ${7:-64} >$d/zone_size; echo $3 >$d/zone_nr_conv
	echo ${8:-1024} >$d/size
	echo 1 >$d/memory_backed; echo $2 >$d/blocksize
	[ "${4:-0}" = 0 ] || echo $4 >$d/zone_capacity
	[ "${5:-0}" = 0 ] || echo $5 >$d/zone_max_open
	[ "${6:-0}" = 0 ] || echo $6 >$d/zone_max_active
	nullb_power_on $1
}

# nullb_power_on NAME: power on a configured configfs null_blk and print its
# path once the disk appears (see nullb_make)
nullb_power_on() {
	local d=$NB/$1 i=0 n
	echo 1 >$d/power || return 1
	while [ $i -lt 50 ]; do
		[ -b /dev/$1 ] && { echo /dev/$1; return 0; }
		n=$(cat $d/index 2>/dev/null)
		[ -n "$n" ] && [ -b /dev/nullb$n ] && { echo /dev/nullb$n; return 0; }
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# nullb_remove NAME: power off and remove a device nullb_make made
nullb_remove() { echo 0 >$NB/$1/power; rmdir $NB/$1; }

# compare_answers TAG CASE KFILE FFILE: PASS TAG-CASE when foliofs answered
# (FFILE) as the kernel did (KFILE), or exactly as a "CASE|answer" line of
# the file $KNOWN documents; FAIL with both answers otherwise.
compare_answers() {
	if cmp -s "$3" "$4"; then
		echo "both: $(tr '\n' ';' <"$3")"
		pass "$1-$2"
	elif grep -qxF "$2|$(tr '\n' ';' <"$4")" $KNOWN; then
		pass "$1-$2 (documented difference: $(tr '\n' ';' <"$4"))"
	else
		echo "kernel:  $(tr '\n' ';' <"$3")"
		echo "foliofs: $(tr '\n' ';' <"$4")"
		fail "$1-$2"
	fi
}

# seq3_answers DIR: what the zonefs mount at DIR shows of seq/3 after a write
# error on it, a line each: its mode and size, whether seq/4 and seq/3 open
# for writing (or the error), whether seq/3 reads (or the error)
seq3_answers() {
	local w r
	echo "seq/3 $(stat -c '%a %s' $1/seq/3)"
	w=$( (command exec 3>>$1/seq/4) 2>&1 | sed 's/.*: //' | head -1)
	echo "seq/4 write open: ${w:-ok}"
	w=$( (command exec 3>>$1/seq/3) 2>&1 | sed 's/.*: //' | head -1)
	echo "seq/3 write open: ${w:-ok}"
	r=$(dd if=$1/seq/3 of=/dev/null bs=4096 count=1 2>&1 | grep -io 'operation not permitted\|input/output error' | head -1)
	echo "seq/3 read: ${r:-ok}"
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
