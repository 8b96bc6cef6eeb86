#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The zone queue's throughput in both io_uring designs (per-thread rings and
# one I/O thread), interleaved in one process per configuration:
# 4 KiB and 128 KiB appends, 1 and 4 zones, with and without RWF_DSYNC.
# Environment: ROUNDS rounds (default 3), THREADS threads (default 4),
# MIB_4K/MIB_128K MiB per run (default 64/240: one 256 MiB zone must hold a
# run). Prints every run and a median summary per configuration.
#
#   bench/micro/run-ring.sh BUILD_DIR [IMAGE_DIR]     (defaults: build, /var/tmp/h-micro)
#
# The image is written in full first (dd) so that no run pays for the image
# file's block allocation; it is removed at the end.
set -eu
build=${1:-build}
dir=${2:-/var/tmp/h-micro}
rounds=${ROUNDS:-3}
threads=${THREADS:-4}
dev="$build/src/cli/foliofs-dev"
img="$dir/ring.img"
mkdir -p "$dir"
trap 'rm -f "$img"' EXIT
dd if=/dev/zero of="$img" bs=4M count=512 oflag=direct status=none
"$dev" format-emulated --zone-size 256M "$img"
echo "# $(nproc) cpus, $(uname -r), $(date -u +%FT%TZ)"
for sync in "" --dsync; do
	for bs in 4k 128k; do
		if [ "$bs" = 4k ]; then mib=${MIB_4K:-64}; else mib=${MIB_128K:-240}; fi
		for zones in 1 4; do
			"$dev" bench --bs $bs --zones $zones --threads "$threads" --mib "$mib" $sync \
				--ring both --rounds "$rounds" "$img"
		done
	done
done
