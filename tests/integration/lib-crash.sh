# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the 01NN integration tests (h-crash): an emulated-zoned image
# and a mount under /tmp/h-crash, torn down by the EXIT trap.
B=${FOLIOFS_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
MKFS=$B/src/cli/mkfs.foliofs
DAEMON=$B/src/fuse/foliofs
DEVTOOL=$B/src/cli/foliofs-dev
[ -x "$DAEMON" ] && [ -x "$MKFS" ] || { echo "not built: $B"; exit 77; }
[ -e /dev/fuse ] || { echo "no /dev/fuse"; exit 77; }
mkdir -p /tmp/h-crash
T=$(mktemp -d /tmp/h-crash/it.XXXXXX)
IMG=$T/img
MNT=$T/mnt
mkdir -p "$MNT"
DPID=
cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null || grep -q " $MNT " /proc/mounts; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/daemon.log" ] && tail -5 "$T/daemon.log"; exit 1; }
# mkimg NCNV ZONE_SIZE NZONES_TOTAL
mkimg() {
	truncate -s $(($3 * $2 + 1048576)) "$IMG"
	"$MKFS" --format zonefs --emulate-zoned --conv-zones "$1" --zone-size "$2" "$IMG" >/dev/null 2>&1 ||
		fail "mkfs"
}
# mnt [opts]: foreground daemon in the background; waits for the mount
mnt() {
	local o=()
	[ -n "${1:-}" ] && o=(-o "$1")
	"$DAEMON" -f "${o[@]}" "$IMG" "$MNT" >>"$T/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 500); do
		grep -q " $MNT " /proc/mounts && return 0
		kill -0 "$DPID" 2>/dev/null || fail "mount failed: $(tail -3 "$T/daemon.log")"
		sleep 0.01
	done
	fail "mount did not appear"
}
umnt() {
	umount "$MNT" || fail "umount"
	wait "$DPID" || fail "daemon exited $? at unmount"
	DPID=
}
stats() { python3 -c 'import os,sys;print(os.getxattr(sys.argv[1],"user.foliofs.stats").decode())' "$MNT"; }
stat_of() { stats | awk -v k="$1" '$1==k{print $2}'; }
