# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the integration tests: sourced, not run. Each test gets a
# scratch directory under /tmp/h-int/ (image files and mountpoints), an EXIT
# trap that unmounts whatever it mounted and waits for its daemons, and small
# assertions. FOLIOFS_BUILD is the build directory (scripts/test sets it).
# Exit codes: 0 pass, 77 skip, anything else fail.
set -uo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FOLIOFS_BUILD=${FOLIOFS_BUILD:-$(cd "$LIB_DIR/../.." && pwd)/build}
FOLIOFS=$FOLIOFS_BUILD/src/fuse/foliofs
MKFS=$FOLIOFS_BUILD/src/cli/mkfs.foliofs
FSCK=$FOLIOFS_BUILD/src/cli/fsck.foliofs
ZF="python3 $LIB_DIR/zf.py"
TNAME=$(basename "$0" .sh)
W=/tmp/h-int/$TNAME.$$
IMG=$W/img
MNT=$W/mnt
MOUNTS=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
note() { echo "# $*"; }

[ -x "$FOLIOFS" ] && [ -x "$MKFS" ] || skip "build $FOLIOFS_BUILD first"
[ -e /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null || skip "fusermount3 not installed"
command -v python3 >/dev/null || skip "python3 not installed"
need() { for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }

# The pids of the foliofs daemons serving image $1 (matched on the exact argv).
daemon_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$1" &&
			tr '\0' '\n' <"$p/cmdline" 2>/dev/null | head -1 | grep -q 'foliofs$'; then
			echo "${p#/proc/}"
		fi
	done
}

# Wait (up to $2 s, default 30) for every daemon serving image $1 to exit.
wait_daemon_gone() {
	local img=$1 t=${2:-30} i
	for ((i = 0; i < t * 10; i++)); do
		[ -z "$(daemon_pids "$img")" ] && return 0
		sleep 0.1
	done
	return 1
}

cleanup() {
	local m
	for m in "${MOUNTS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for m in "$W"/img*; do
		[ -e "$m" ] && wait_daemon_gone "$m" 20
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W" "$MNT"

# mkimg SIZE [mkfs args...]: a sparse image file at $IMG, formatted.
mkimg() {
	local size=$1
	shift
	rm -f "$IMG"
	truncate -s "$size" "$IMG" || fail "truncate $IMG"
	"$MKFS" "$@" "$IMG" >"$W/mkfs.out" 2>&1 || { cat "$W/mkfs.out"; fail "mkfs.foliofs $* failed"; }
}

# mnt [foliofs args...]: mount $IMG on $MNT (daemonised, as a user would).
# With FOLIOFS_TEST_FG=1 the daemon runs in the foreground (-f) with its
# messages in /tmp/h-int/daemon.log, for debugging.
mnt() {
	MOUNTS+=("$MNT")
	if [ "${FOLIOFS_TEST_FG:-0}" = 1 ]; then
		"$FOLIOFS" -f "$@" "$IMG" "$MNT" >>/tmp/h-int/daemon.log 2>&1 &
		for _ in $(seq 100); do
			mountpoint -q "$MNT" && return 0
			sleep 0.05
		done
		fail "foliofs -f $* $IMG $MNT did not mount"
	fi
	"$FOLIOFS" "$@" "$IMG" "$MNT" >"$W/mount.out" 2>&1 || {
		cat "$W/mount.out"
		fail "foliofs $* $IMG $MNT failed"
	}
	mountpoint -q "$MNT" || fail "$MNT is not a mountpoint after foliofs returned"
}

# umnt: unmount $MNT and wait for the daemon to finish writing back and exit.
umnt() {
	local i
	# a reader that has just exited may still hold a file for a moment
	for ((i = 0; i < 20; i++)); do
		fusermount3 -u "$MNT" 2>"$W/umount.err" && break
		grep -q busy "$W/umount.err" || break
		sleep 0.2
	done
	mountpoint -q "$MNT" && { cat "$W/umount.err"; fail "fusermount3 -u $MNT failed"; }
	wait_daemon_gone "$IMG" 60 || fail "the daemon for $IMG did not exit after unmount"
}

remount() {
	umnt
	mnt "$@"
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
	ok "$1 = $3"
}

# zf EXPECT OP ARGS...: run one call of the python helper and check its result
# (OK, or an errno name such as EINVAL).
zf() {
	local want=$1 got
	shift
	got=$($ZF "$@" 2>&1 | tail -1)
	[ "$got" = "$want" ] || fail "$* -> $got, want $want"
	ok "$* -> $want"
}

# fsck_rc WANT ARGS...: fsck.foliofs ARGS exits WANT; its output in $W/fsck.out
fsck_rc() { # $1 = expected exit, rest = args
	local want=$1 rc
	shift
	"$FSCK" "$@" >"$W/fsck.out" 2>&1
	rc=$?
	[ $rc -eq "$want" ] || { cat "$W/fsck.out"; fail "fsck.foliofs $*: exit $rc, want $want"; }
	ok "fsck.foliofs $*: exit $want ($(tail -1 "$W/fsck.out"))"
}

fsize() { stat -c %s "$1"; }
stats() { $ZF xattr "$MNT" user.foliofs.stats; }
stat_val() { stats | awk -v k="$1" '$1 == k { print $2 }'; }

# run_fio NAME ARGS...: fio with the output kept; fails the test on error.
run_fio() {
	local name=$1
	shift
	fio --name="$name" --output="$W/fio-$name.out" --verify_state_save=0 "$@" ||
		{ cat "$W/fio-$name.out"; fail "fio $name failed"; }
	grep -q 'verify' "$W/fio-$name.out" && grep -qiE 'verify: bad|crc32c: verify failed' "$W/fio-$name.out" &&
		{ cat "$W/fio-$name.out"; fail "fio $name: verify failed"; }
	ok "fio $name"
}

# Flags fio needs on a sequential zone file (no layout, no unlink, append).
FIO_SEQ="--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 --fallocate=none"
FIO_CNV="--allow_file_create=0 --unlink=0 --fallocate=none"

# in_installed_ns: install this build (meson install --destdir $W/inst) and
# start a private mount namespace where its bin directory is bound on
# /usr/local/sbin, the first directory of the standard PATH that mount(8)
# gives helpers. Sets NS=(nsenter ...) to run a command in it; the EXIT trap
# unmounts $MNT there and ends the namespace.
NS=()
in_installed_ns() {
	local bin i
	need meson unshare nsenter
	meson install -C "$FOLIOFS_BUILD" --no-rebuild --quiet --destdir "$W/inst" >"$W/install.out" 2>&1 ||
		{ cat "$W/install.out"; fail "meson install --destdir"; }
	bin=$(dirname "$(find "$W/inst" -type f -name foliofs -perm -u+x | head -1)")
	[ -x "$bin/foliofs" ] || fail "meson install put no foliofs under $W/inst"
	unshare -m --propagation private sleep infinity &
	NSPID=$!
	trap 'nsenter -t "$NSPID" -m umount "$MNT" 2>/dev/null; kill "$NSPID" 2>/dev/null; cleanup' EXIT
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink "/proc/$NSPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
		sleep 0.05
	done
	NS=(nsenter -t "$NSPID" -m)
	"${NS[@]}" mount --bind "$bin" /usr/local/sbin || fail "bind $bin on /usr/local/sbin"
	expect_eq "mount(8)'s standard PATH finds the installed foliofs" \
		"$("${NS[@]}" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'command -v foliofs')" \
		/usr/local/sbin/foliofs
}
