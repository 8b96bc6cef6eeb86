#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the libFuzzer harnesses with clang (ASan+UBSan) into $1 (default build-fuzz):
# fuzz_mount (the zonefs superblock, the emulation's metadata, mount checks) and
# fuzz_posix (the posix format's superblocks, log, checkpoints, data headers, fsck).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build-fuzz}
mkdir -p "$OUT"
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || CC=$(ls /usr/bin/clang-1[0-9] 2>/dev/null | tail -1)
lib=(src/util/*.c src/dev/*.c src/cache/*.c src/fs/*.c)
# libblkid's header lives in its own directory (src/dev/sig.c)
read -ra blkid_cflags <<<"$(pkg-config --cflags blkid)"
read -ra blkid_libs <<<"$(pkg-config --libs blkid)"
for h in fuzz_mount fuzz_posix; do
	newer=0
	for f in "${lib[@]}" tests/fuzz/$h.c include/foliofs/*.h src/*/internal.h src/fs/*.h; do
		[ "$f" -nt "$OUT/$h" ] && newer=1
	done
	[ -x "$OUT/$h" ] && [ $newer -eq 0 ] && continue
	"$CC" -std=gnu17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread \
		-Iinclude "${blkid_cflags[@]}" "${lib[@]}" tests/fuzz/$h.c -luring -lzbd \
		"${blkid_libs[@]}" -o "$OUT/$h"
done
