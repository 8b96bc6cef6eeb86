#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ls -l of a posix directory (issue 12, fast listing), at a size CI can
# afford (bench/scale measures 100,000 entries):
# - a warm ls -l of 3,000 entries costs well under one FUSE request per
#   entry (counted by the daemon in user.foliofs.stats): no getxattr of
#   system.posix_acl_access per entry, which the kernel asks for whenever a
#   READDIRPLUS reply has dropped the ACL it had cached;
# - ACLs still work after listings: an access ACL set on a listed file
#   grants and, once removed, no longer grants a user read access; a
#   directory's default ACL is inherited by a file made after a listing; all
#   of it also after a remount;
# - what the kernel caches follows every change made through the mount:
#   names made, removed and renamed, and a link count, show in the next ls -l;
# - with -o noacl a cold ls -l also costs well under one request per entry
#   (EOPNOTSUPP for system.posix_acl_access tells ls that the filesystem has
#   no ACLs), and ACLs are neither read, set, listed, enforced nor inherited,
#   as with ext4's noacl; those stored are kept for the next mount.
. "$(dirname "$0")/lib.sh"
need runuser setfattr getfattr

N=3000
mkimg 2G --format posix
mnt
python3 -c "
import os, sys
d = sys.argv[1] + '/d'
os.mkdir(d)
for i in range($N):
    with open('%s/f%05d' % (d, i), 'wb') as f:
        f.write(b'p' * (i % 5))
os.mkdir(sys.argv[1] + '/inh')" "$MNT" || fail "create $N files"

count() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
reqs() {
	local s=$1 k t=0
	for k in fuse_lookup fuse_getattr fuse_getxattr fuse_readdir fuse_readdirplus; do
		t=$((t + $(count "$s" $k)))
	done
	echo $t
}

# ls_check WHAT NAMES...: ls -l d lists exactly NAMES (f* files of size
# number % 5); prints the FUSE requests it took
ls_check() {
	local what=$1 before after
	shift
	before=$(stats)
	ls -l "$MNT/d" >"$W/ls.out" || fail "ls -l d ($what)"
	after=$(stats)
	python3 - "$W/ls.out" "$@" <<'EOF' || fail "ls -l d ($what)"
import sys
lines = [l.split() for l in open(sys.argv[1]) if not l.startswith("total")]
want = sorted(sys.argv[2:])
got = sorted(l[8] for l in lines)
if got != want:
    sys.exit("FAIL: names differ: missing %s, extra %s" %
             (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
for l in lines:
    if l[8].startswith("f") and int(l[4]) != int(l[8][1:6]) % 5:
        sys.exit("FAIL: %s size %s" % (l[8], l[4]))
EOF
	echo $(($(reqs "$after") - $(reqs "$before")))
}

names=$(seq -f 'f%05g' 0 $((N - 1)))
# shellcheck disable=SC2086
for pass in first warm; do
	r=$(ls_check $pass $names) || exit 1
	note "ls -l of $N entries ($pass): $r FUSE requests"
	[ $pass = warm ] && warm=$r
done
# well below one a entry: a READDIRPLUS per few dozen entries is ~0.05
((warm * 10 < N)) || fail "warm ls -l of $N entries took $warm requests (at least 0.1 an entry)"
ok "warm ls -l of $N entries: $warm requests"

# --- ACLs after listings ---
# acl_set PATH NAME ENTRIES...: set a system.posix_acl_* xattr; ENTRIES are
# tag:perm[:id], tags u U g G m o as in the kernel's posix_acl_xattr layout
acl_set() {
	python3 - "$@" <<'EOF'
import os, sys
tags = {"u": 2, "U": 1, "g": 8, "G": 4, "m": 0x10, "o": 0x20}
v = (2).to_bytes(4, "little")
for e in sys.argv[3:]:
    t, perm, *ident = e.split(":")
    v += tags[t].to_bytes(2, "little") + int(perm).to_bytes(2, "little")
    v += (int(ident[0]) if ident else 0xffffffff).to_bytes(4, "little")
os.setxattr(sys.argv[1], "system.posix_acl_" + sys.argv[2], v)
EOF
}
# acl_has PATH NAME UID: whether the ACL has a named user entry for UID
acl_has() {
	python3 - "$@" <<'EOF'
import os, sys
try:
    v = os.getxattr(sys.argv[1], "system.posix_acl_" + sys.argv[2])
except OSError:
    sys.exit(1)
ents = [v[o:o + 8] for o in range(4, len(v), 8)]
sys.exit(0 if any(int.from_bytes(e[:2], "little") == 2 and
                  int.from_bytes(e[4:], "little") == int(sys.argv[3]) for e in ents) else 1)
EOF
}
NOBODY=$(id -u nobody) || skip "no user nobody"
as_nobody_reads() { runuser -u nobody -- cat "$1" >/dev/null 2>&1; }
F=$MNT/d/f00007
chmod 600 "$F" || fail "chmod 600 $F"
chmod 755 "$MNT/d" "$MNT" || fail "chmod 755 d"
as_nobody_reads "$F" && fail "nobody reads a 600 file of root's"
acl_set "$F" access U:6 u:4:"$NOBODY" G:0 m:4 o:0 || fail "set an access ACL on $F"
ls_check "after setfacl" $names >/dev/null || exit 1
acl_has "$F" access "$NOBODY" || fail "the access ACL is gone after ls -l"
as_nobody_reads "$F" || fail "the access ACL does not let nobody read after ls -l"
grep -q '^-rw-r-----+ .* f00007$' "$W/ls.out" || fail "ls -l shows no ACL (+) or the mask for f00007: $(grep f00007 "$W/ls.out")"
ok "an access ACL set on a listed file: kept, shown and checked after ls -l"

acl_set "$MNT/inh" default U:7 u:5:"$NOBODY" G:5 m:7 o:0 || fail "set a default ACL on inh"
ls -l "$MNT" >/dev/null || fail "ls -l of the root"
echo x >"$MNT/inh/new" || fail "create inh/new"
ls -l "$MNT/inh" >/dev/null || fail "ls -l inh"
acl_has "$MNT/inh/new" access "$NOBODY" || fail "inh/new did not inherit the default ACL"
as_nobody_reads "$MNT/inh/new" || fail "the inherited ACL does not let nobody read inh/new"
ok "a default ACL is inherited after listings, and checked"

python3 -c "import os, sys; os.removexattr(sys.argv[1], 'system.posix_acl_access')" "$F" ||
	fail "remove the ACL of $F"
ls_check "after removing the ACL" $names >/dev/null || exit 1
as_nobody_reads "$F" && fail "nobody still reads $F after its ACL was removed and ls -l"
ok "a removed ACL no longer grants after ls -l"
acl_set "$F" access U:6 u:4:"$NOBODY" G:0 m:4 o:0 || fail "set the access ACL of $F again"

remount
for pass in remounted warm; do
	ls_check $pass $names >/dev/null || exit 1
	acl_has "$F" access "$NOBODY" || fail "the access ACL of $F is gone ($pass)"
	as_nobody_reads "$F" || fail "nobody cannot read $F through its ACL ($pass)"
	acl_has "$MNT/inh/new" access "$NOBODY" || fail "inh/new lost its ACL ($pass)"
	acl_has "$MNT/inh" default "$NOBODY" || fail "inh lost its default ACL ($pass)"
	as_nobody_reads "$MNT/inh/new" || fail "nobody cannot read inh/new through its ACL ($pass)"
done
ok "ACLs kept and checked after a remount and listings"

# --- changes through the mount show in the next listing ---
echo n >"$MNT/d/new" || fail "create d/new"
rm "$MNT/d/f00010" || fail "rm d/f00010"
mv "$MNT/d/f00011" "$MNT/d/moved" || fail "rename d/f00011"
ln "$MNT/d/f00012" "$MNT/d/hard" || fail "link d/f00012"
want=$(echo "$names" | grep -vx -e f00010 -e f00011)
# shellcheck disable=SC2086
ls_check "after changes" $want new moved hard >/dev/null || exit 1
[ "$(awk '$9 == "f00012" { print $2 }' "$W/ls.out")" = 2 ] || fail "f00012 link count not 2 after ln"
rm "$MNT/d/hard" || fail "rm d/hard"
# shellcheck disable=SC2086
ls_check "after rm of a link" $want new moved >/dev/null || exit 1
[ "$(awk '$9 == "f00012" { print $2 }' "$W/ls.out")" = 1 ] || fail "f00012 link count not 1 after rm"
ok "names made, removed, renamed and a link count show in the next ls -l"

# --- -o noacl: a listing asks for no ACL, and none is used (ext4's noacl) ---
remount -o noacl
cold=$(ls_check "noacl, cold" $want new moved) || exit 1
note "ls -l of $N entries (noacl, cold): $cold FUSE requests"
((cold * 10 < N)) || fail "cold ls -l of $N entries with -o noacl took $cold requests (at least 0.1 an entry)"
ok "cold ls -l of $N entries with -o noacl: $cold requests"
xattr_err() {
	python3 - "$@" <<'EOF2'
import errno, os, sys
op, path, name = sys.argv[1:4]
try:
    if op == "get":
        os.getxattr(path, name)
    elif op == "set":
        os.setxattr(path, name, bytes.fromhex("02000000" "01000600ffffffff" "04000400ffffffff" "20000000ffffffff"))
    else:
        os.removexattr(path, name)
except OSError as e:
    print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode[e.errno])
    sys.exit(0)
print("OK")
EOF2
}
for op in get set remove; do
	expect_eq "noacl: $op system.posix_acl_access of a file" \
		"$(xattr_err $op "$F" system.posix_acl_access)" EOPNOTSUPP
	expect_eq "noacl: $op system.posix_acl_default of a directory" \
		"$(xattr_err $op "$MNT/inh" system.posix_acl_default)" EOPNOTSUPP
done
python3 -c "
import os, sys
names = os.listxattr(sys.argv[1])
sys.exit('listxattr shows %s' % names if any(n.startswith('system.posix_acl') for n in names) else 0)" "$F" ||
	fail "noacl: the stored ACL is listed"
setfattr -n user.k -v v "$F" && [ "$(getfattr --only-values -n user.k "$F" 2>/dev/null)" = v ] ||
	fail "noacl: user xattrs do not work"
as_nobody_reads "$F" && fail "noacl: the stored access ACL of $F (600) still lets nobody read"
grep -q '^-rw-r----- .* f00007$' "$W/ls.out" || fail "noacl: ls -l of f00007 (no +): $(grep f00007 "$W/ls.out")"
(umask 022 && echo y >"$MNT/inh/noacl-new") || fail "create inh/noacl-new"
[ "$(stat -c %a "$MNT/inh/noacl-new")" = 644 ] ||
	fail "noacl: inh/noacl-new is $(stat -c %a "$MNT/inh/noacl-new"), want 644 (umask, no default ACL)"
ok "-o noacl: no ACL read, set, listed, enforced or inherited; the umask applies"
remount
acl_has "$F" access "$NOBODY" || fail "the access ACL of $F is gone after a noacl mount"
as_nobody_reads "$F" || fail "nobody cannot read $F through its ACL after a noacl mount"
acl_has "$MNT/inh/new" access "$NOBODY" || fail "inh/new lost its ACL after a noacl mount"
ok "ACLs stored before a noacl mount are back, and checked, at the next mount"
exit 0
