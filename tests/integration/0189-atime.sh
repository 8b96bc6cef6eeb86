#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The atime mount options on the posix format. The daemon moves atime (the
# kernel never asks FUSE to), so it must follow the mount's policy:
# - relatime (the default, and -o relatime, -o nostrictatime): a read moves
#   an atime older than mtime, and not again while it is newer;
# - noatime: a read never moves it, and it stays so across a remount;
# - strictatime (and -o norelatime): every read that reaches the daemon;
# - nodiratime and lazytime are accepted (fstab lines carry them), alone and
#   with the others, and the mount table shows noatime when asked.
# An unknown option is still refused.
. "$(dirname "$0")/lib.sh"

mkimg 256M
atime() { stat -c %X "$MNT/f"; }
# read: a read that reaches the daemon (direct_io: no kernel page cache)
rd() { cat "$MNT/f" >/dev/null; }

try() { # WANT-FIRST WANT-SECOND OPTIONS: does the first read, then a second, move atime?
	local first=$1 second=$2 a0 a1 a2
	shift 2
	mnt -o direct_io${1:+,$1}
	echo data >"$MNT/f"
	touch -a -d 2020-01-01 "$MNT/f"
	a0=$(atime)
	rd
	a1=$(atime)
	sleep 1.1
	rd
	a2=$(atime)
	expect_eq "-o ${1:-(none)}: the first read moves atime" "$([ "$a1" != "$a0" ] && echo yes || echo no)" "$first"
	expect_eq "-o ${1:-(none)}: a second read moves it" "$([ "$a2" != "$a1" ] && echo yes || echo no)" "$second"
	umnt
}
try yes no ""
try yes no relatime
try yes no nostrictatime
try no no noatime
try no no noatime,nodiratime
try yes yes strictatime
try yes yes norelatime
try yes no lazytime,nodiratime

mnt -o noatime
grep " $MNT " /proc/mounts | grep -q noatime || { grep " $MNT " /proc/mounts; fail "the mount table does not show noatime"; }
ok "the mount table shows noatime"
echo data >"$MNT/f"
touch -a -d 2020-01-01 "$MNT/f"
umnt
mnt -o noatime,direct_io
rd
expect_eq "noatime after a remount: atime" "$(date -d @"$(atime)" +%F)" 2020-01-01
umnt

"$FOLIOFS" -o noatime,nosuchoption "$IMG" "$MNT" >"$W/out" 2>&1 && { MOUNTS+=("$MNT"); fail "an unknown option beside noatime was taken"; }
grep -q nosuchoption "$W/out" || { cat "$W/out"; fail "the refusal does not name the unknown option"; }
ok "an unknown option is still refused"
echo "PASS $TNAME"
