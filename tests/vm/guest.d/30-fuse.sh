# SPDX-License-Identifier: GPL-2.0-or-later
# fuse.ko and zonefs.ko load; /dev/fuse exists.
. /foliofs/guest-lib.sh
insmod /lib/modules/fuse.ko || { fail fuse "fuse.ko did not load"; exit 1; }
[ -c /dev/fuse ] || mknod /dev/fuse c 10 229
[ -c /dev/fuse ] && pass fuse || fail fuse "/dev/fuse missing"
insmod /lib/modules/zonefs.ko && grep -q zonefs /proc/filesystems && pass zonefs-module || fail zonefs-module
