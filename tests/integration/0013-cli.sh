#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The command lines: foliofs -h/--help and -V/--version exit 0 and say what
# they should; no arguments is a usage error (exit 2); mkfs.foliofs --help,
# -V, bad values (exit 2, nothing written), zone options without
# --emulate-zoned, --conv-zones 0, and the summary it prints.
. "$(dirname "$0")/lib.sh"

for h in -h --help; do
	"$FOLIOFS" $h >"$W/out" 2>&1 || fail "foliofs $h: exit $?"
	for w in usage cache_size max_folio sync_mode dirty_granularity errors= explicit-open kernel_cache \
		commit= "-o ro" user.foliofs.stats fuse.foliofs; do
		grep -q -- "$w" "$W/out" || fail "foliofs $h does not mention $w"
	done
	ok "foliofs $h"
done
# every mount option of foliofs's own (--help, up to -o ro; libfuse's follow) is in foliofs(8)
MAN=$LIB_DIR/../../man/foliofs.8
if [ -f "$MAN" ]; then
	"$FOLIOFS" --help 2>&1 | python3 -c '
import re, sys
man = open(sys.argv[1]).read().replace("\\-", "-")
names = []
for line in sys.stdin:
    m = re.match(r"\s+-o (\S+)", line)
    if m:
        names.append(re.split(r"[=|]", m.group(1))[0])
        if names[-1] == "ro":
            break
missing = [n for n in names if not re.search(r"\b%s\b" % re.escape(n), man)]
if len(names) < 10 or missing:
    sys.exit("foliofs(8) lacks %s (options: %s)" % (missing, names))
' "$MAN" || fail "foliofs(8) does not list every option of foliofs --help"
	ok "foliofs(8) lists every option of foliofs --help"
fi
for v in -V --version; do
	expect_eq "foliofs $v" "$("$FOLIOFS" $v 2>&1 | head -1 | grep -cE '^foliofs [0-9]+\.[0-9]+')" 1
done
"$FOLIOFS" >"$W/out" 2>&1
expect_eq "foliofs without arguments exits" $? 2
grep -q usage "$W/out" || fail "no usage line"
"$MKFS" --help >"$W/out" 2>&1 || fail "mkfs.foliofs --help"
grep -q -- --emulate-zoned "$W/out" || fail "mkfs --help does not list --emulate-zoned"
ok "mkfs.foliofs --help"
expect_eq "mkfs.foliofs -V" "$("$MKFS" -V | grep -cE '^mkfs.foliofs [0-9]')" 1

truncate -s 512M "$IMG"
s=$(sha256sum <"$IMG")
for bad in "--zone-size lots" "--zone-size 0" "--conv-zones x" "--perm 999" "--uid -1" \
	"--label 0123456789012345678901234567890123456789012345678901234567890123x" "--conv-zones 2" "--emulate-zoned --conv-zones 0" \
	"--format bogus" "--max-open -3" "--bogus" ""; do
	"$MKFS" $bad ${bad:+"$IMG"} >"$W/out" 2>&1
	rc=$?
	[ $rc -eq 2 ] || { cat "$W/out"; fail "mkfs.foliofs $bad: exit $rc, want 2"; }
	# a bad value names its option and what it takes
	case "$bad" in "--conv-zones 2" | "--emulate-zoned --conv-zones 0") ;; # refused whole, not a value
	--*\ *)
		opt=${bad%% *}
		grep -q "bad value .* for $opt: " "$W/out" ||
			{ cat "$W/out"; fail "mkfs.foliofs $bad: the message does not name $opt and what it takes"; } ;;
	esac
	ok "mkfs.foliofs $bad: exit 2 ($(grep -v '^ ' "$W/out" | head -1))"
done
expect_eq "image untouched by refused mkfs" "$(sha256sum <"$IMG")" "$s"
"$MKFS" --format zonefs --emulate-zoned --conv-zones 2 --zone-size 64M -L mylabel "$IMG" >"$W/out" 2>&1 || fail "mkfs"
grep -qE "emulated-zoned device, [0-9]+ zones of 64 MiB \(2 conventional, [0-9]+ sequential" "$W/out" ||
	fail "mkfs summary: $(cat "$W/out")"
grep -q "label 'mylabel'" "$W/out" || fail "mkfs summary lacks the label"
ok "mkfs summary: $(cat "$W/out")"
echo "PASS $TNAME"
