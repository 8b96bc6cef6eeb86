#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# scripts/main-job in its quick mode: with no argument (an image in /var/tmp,
# removed after), and with an existing empty image as argument (formatted,
# kept; a path that does not exist is made and removed like the default); a path
# that holds data is refused without FOLIOFS_FORCE=1 and left unchanged. The
# job formats the default format (posix), so fio makes its own files in the
# mount (--directory): its results table has every sync and buffered job with
# verify OK, the files fio made are listed, fsck.foliofs -n is clean after the
# unmount, and the remount verifies them again. On the zonefs layout fio
# cannot create a file and the job fails.
. "$(dirname "$0")/lib.sh"
need fio
ROOT=$(cd "$LIB_DIR/../.." && pwd)
export TMPDIR=$W FOLIOFS_BUILD FOLIOFS_QUICK=1

before=$(ls /var/tmp | grep -c '^foliofs-main-job' || true)
"$ROOT/scripts/main-job" >"$W/out" 2>&1 || { rc=$?; cat "$W/out"; fail "main-job exited $rc"; }
cat "$W/out"
for j in sync-append-4k sync-randwrite-4k sync-append-4k-x4 buffered-write-1m buffered-randwrite-4k; do
	grep -qE "^$j +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +OK$" "$W/out" || fail "no OK line for $j"
done
grep -q "posix format" "$W/out" || fail "mkfs did not make the posix format"
# fio's files: one per job, four for the x4 job
expect_eq "files made by fio" "$(grep -oE '^== files made by fio: [0-9]+' "$W/out")" "== files made by fio: 8"
grep -qE "^[^ ]+: clean" "$W/out" || fail "no clean fsck.foliofs -n line"
grep -q "remount: fio verify_only OK, the sha256 of 8 files unchanged" "$W/out" || fail "no re-verify after the remount"
grep -qE "write amplification +[0-9.]+" "$W/out" || fail "no write amplification"
expect_eq "main-job: OK" "$(tail -1 "$W/out")" "main-job: OK"
expect_eq "image removed" "$(ls /var/tmp | grep -c '^foliofs-main-job' || true)" "$before"
expect_eq "nothing left mounted" "$(grep -c "$W" /proc/mounts)" 0

truncate -s 4G "$W/img.job"
"$ROOT/scripts/main-job" "$W/img.job" >"$W/out2" 2>&1 || { rc=$?; cat "$W/out2"; fail "main-job IMAGE exited $rc"; }
expect_eq "main-job IMAGE" "$(tail -1 "$W/out2")" "main-job: OK"
[ -s "$W/img.job" ] || fail "the image given was removed"
ok "the image given is kept"

head -c 1M /dev/urandom >"$W/img.data"
truncate -s 2G "$W/img.data"
s=$(sha256sum <"$W/img.data")
"$ROOT/scripts/main-job" "$W/img.data" >"$W/out3" 2>&1 && fail "main-job formatted an image holding data"
grep -q "force" "$W/out3" || { cat "$W/out3"; fail "no hint about --force/FOLIOFS_FORCE"; }
expect_eq "image with data unchanged" "$(sha256sum <"$W/img.data")" "$s"
echo "PASS $TNAME"
