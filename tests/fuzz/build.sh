#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the libFuzzer harness with clang (ASan+UBSan) into $1 (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build-fuzz}
mkdir -p "$OUT"
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || CC=$(ls /usr/bin/clang-1[0-9] 2>/dev/null | tail -1)
src=(src/util/*.c src/dev/*.c src/cache/*.c src/fs/*.c tests/fuzz/fuzz_mount.c)
newer=0
for f in "${src[@]}" include/foliofs/*.h src/*/internal.h; do
	[ "$f" -nt "$OUT/fuzz_mount" ] && newer=1
done
[ -x "$OUT/fuzz_mount" ] && [ $newer -eq 0 ] && exit 0
"$CC" -std=gnu17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread \
	-Iinclude "${src[@]}" -luring -lzbd -o "$OUT/fuzz_mount"
