# SPDX-License-Identifier: GPL-2.0-or-later
# The device layer's libzbd tests and the zone report through foliofs-dev.
. /foliofs/guest-lib.sh
if have foliofs-dev; then
	if foliofs-dev report /dev/nullb0; then pass foliofs-dev-report; else fail foliofs-dev-report; fi
else
	skip foliofs-dev-report "not built"
fi
if have test_zoned; then
	if FOLIOFS_ZONED_DEV=/dev/nullb0 test_zoned; then pass test_zoned; else fail test_zoned "cmocka failures"; fi
else
	skip test_zoned "not built"
fi
if have foliofs-dev; then
	for bs in 4k 128k; do for z in 1 4; do
		foliofs-dev bench --bs $bs --zones $z --threads 4 --mib 32 --dsync /dev/nullb0 ||
			fail "zoneq-bench-$bs-$z"
	done; done
	pass zoneq-bench
fi
