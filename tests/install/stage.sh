#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# scripts/test's install stage: foliofs installed on this machine the two
# ways an administrator installs it, each tested with only the installed
# binaries (tests/integration/0131-installed.sh with FOLIOFS_INSTALLED=1):
#   1. meson install of the build (PREFIX/sbin), then ninja uninstall;
#   2. the Debian package: dpkg-buildpackage -b -us -uc on a copy of the
#      tree, apt-get install ./foliofs_*.deb, then apt-get purge.
# The machine is left as it was found. FOLIOFS_BUILD is the build directory.
# Exit 0 pass, 77 skip (not root, or a foliofs package is already installed
# by someone else), anything else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FOLIOFS_BUILD:-$ROOT/build}
T0=$(date +%s)
WORK=$(mktemp -d /tmp/foliofs-install.XXXXXX)
installed_meson=0
installed_deb=0
KNOB=/proc/sys/fs/fuse/max_pages_limit
knob0=$(cat "$KNOB" 2>/dev/null)

fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
	[ $installed_meson = 1 ] && ninja -C "$BUILD" uninstall >/dev/null 2>&1
	[ $installed_deb = 1 ] && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq foliofs >/dev/null 2>&1
	# the package's postinst raises the running kernel's FUSE request limit
	[ -n "$knob0" ] && [ -w "$KNOB" ] && echo "$knob0" >"$KNOB"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "SKIP: installing needs root"; exit 77; }
if dpkg-query -W -f='${Status}' foliofs 2>/dev/null | grep -q 'install ok installed'; then
	echo "SKIP: a foliofs package is installed already; not touching it"
	exit 77
fi

# data_files PREFIX present|absent: the sysctl.d and modules-load.d files
data_files() {
	local f
	for f in "$1/lib/sysctl.d/50-foliofs.conf" "$1/lib/modules-load.d/foliofs.conf"; do
		if [ "$2" = present ]; then
			[ -f "$f" ] || fail "$f is not installed"
		else
			[ -e "$f" ] && fail "$f is left after the removal"
		fi
	done
	return 0
}

echo "# 1. meson install"
sbin=$(meson introspect "$BUILD" --buildoptions | python3 -c 'import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print("/sbin" if o.get("sbin_root") else os.path.join(o["prefix"], o["sbindir"]))')
prefix=$(meson introspect "$BUILD" --buildoptions | python3 -c 'import json, sys
print(next(x["value"] for x in json.load(sys.stdin) if x["name"] == "prefix"))')
installed_meson=1
meson install -C "$BUILD" --quiet >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "meson install"; }
data_files "$prefix" present
grep -qx -- '-fs.fuse.max_pages_limit = 257' "$prefix/lib/sysctl.d/50-foliofs.conf" ||
	fail "$prefix/lib/sysctl.d/50-foliofs.conf does not set fs.fuse.max_pages_limit to 257"
FOLIOFS_BUILD=$BUILD FOLIOFS_INSTALLED=1 FOLIOFS_EXPECT_DIR=$sbin \
	bash "$ROOT/tests/integration/0131-installed.sh" || fail "the meson-installed binaries (in $sbin)"
ninja -C "$BUILD" uninstall >/dev/null 2>&1 || fail "ninja uninstall"
installed_meson=0
[ -e "$sbin/foliofs" ] && fail "ninja uninstall left $sbin/foliofs"
data_files "$prefix" absent
echo "ok - meson install, tested, uninstalled"

echo "# 2. the Debian package"
command -v dpkg-buildpackage >/dev/null || fail "dpkg-buildpackage missing (scripts/install-deps installs dpkg-dev and debhelper)"
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$WORK/src" ||
	fail "copying the tree"
(cd "$WORK/src" && dpkg-buildpackage -b -us -uc -j2) >"$WORK/deb.log" 2>&1 ||
	{ tail -40 "$WORK/deb.log"; fail "dpkg-buildpackage -b -us -uc"; }
deb=$(ls "$WORK"/foliofs_*.deb | head -1)
[ -f "$deb" ] || fail "no foliofs_*.deb built"
echo "ok - dpkg-buildpackage built $(basename "$deb")"
installed_deb=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$WORK/apt.log" 2>&1 ||
	{ cat "$WORK/apt.log"; fail "apt-get install ./$(basename "$deb")"; }
data_files /usr present
if [ -w "$KNOB" ]; then
	[ "$(cat "$KNOB")" -ge 257 ] || fail "the package's postinst left $KNOB at $(cat "$KNOB"), below 257"
fi
FOLIOFS_BUILD=$BUILD FOLIOFS_INSTALLED=1 FOLIOFS_EXPECT_DIR=/usr/sbin \
	bash "$ROOT/tests/integration/0131-installed.sh" || fail "the packaged binaries"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq foliofs >"$WORK/apt.log" 2>&1 ||
	{ cat "$WORK/apt.log"; fail "apt-get purge foliofs"; }
installed_deb=0
[ -e /usr/sbin/foliofs ] && fail "apt-get purge left /usr/sbin/foliofs"
data_files /usr absent
echo "ok - apt-get install, tested, purged"
echo "PASS install ($(($(date +%s) - T0)) s)"
