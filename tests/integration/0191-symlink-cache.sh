#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Symlink targets as the kernel caches them (FUSE_CAP_CACHE_SYMLINKS):
# - a symlink read again, or a path resolved through it again, costs no
#   READLINK (counted by the daemon in user.foliofs.stats as fuse_readlink):
#   a link's target never changes, a new target is a new link;
# - replacing the link shows the new target at once: removed and made again,
#   renamed over by another link, hard-linked over by rename; a link read
#   before a remount reads the same after it.
. "$(dirname "$0")/lib.sh"

readlinks() { stat_val fuse_readlink; }

mkimg 512M --format posix
mnt
mkdir -p "$MNT/a/b" || fail mkdir
echo payload >"$MNT/a/b/f" || fail "create a/b/f"
ln -s a/b "$MNT/l" || fail "symlink l"
ln -s a/b/f "$MNT/lf" || fail "symlink lf"
expect_eq "readlink l" "$(readlink "$MNT/l")" a/b
before=$(readlinks)
[ -n "$before" ] || fail "no fuse_readlink in user.foliofs.stats"
python3 - "$MNT" <<'PYEOF' || fail "reads through the links"
import os, sys
m = sys.argv[1]
for _ in range(200):
    if os.readlink(m + "/l") != "a/b":
        sys.exit("FAIL: readlink l")
    with open(m + "/l/f") as f:
        if f.read() != "payload\n":
            sys.exit("FAIL: l/f")
    if os.stat(m + "/lf").st_size != 8:
        sys.exit("FAIL: stat lf")
PYEOF
n=$(($(readlinks) - before))
note "200 readlinks and 400 resolutions through 2 links: $n READLINK requests"
((n <= 2)) || fail "200 readlinks and 400 resolutions through 2 links took $n READLINKs"
ok "a link's target is asked once: $n READLINKs"

# a new target shows at once, however the link is replaced
mkdir "$MNT/c" && echo other >"$MNT/c/f" || fail "make c/f"
rm "$MNT/l" && ln -s c "$MNT/l" || fail "remake l"
expect_eq "remade l" "$(readlink "$MNT/l")" c
expect_eq "through remade l" "$(cat "$MNT/l/f")" other
ln -s a/b "$MNT/l2" && mv -T "$MNT/l2" "$MNT/l" || fail "rename l2 over l"
expect_eq "l renamed over" "$(readlink "$MNT/l")" a/b
expect_eq "through l renamed over" "$(cat "$MNT/l/f")" payload
ln -s c/f "$MNT/l3" && ln "$MNT/l3" "$MNT/l4" && mv -T "$MNT/l4" "$MNT/lf" || fail "hard link over lf"
expect_eq "lf renamed over by a hard link" "$(readlink "$MNT/lf")" c/f
expect_eq "through lf" "$(cat "$MNT/lf")" other
remount
expect_eq "l after a remount" "$(readlink "$MNT/l")" a/b
expect_eq "lf after a remount" "$(cat "$MNT/lf")" other
umnt
fsck_rc 0 -n "$IMG"
