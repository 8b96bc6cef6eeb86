#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# stress-ng's filesystem stressors on foliofs's posix format (--temp-path on
# the mount, --verify where a stressor has it), in three groups that each run
# concurrently: data (hdd, seek with hole punching, fallocate, fpunch, file
# mmap with msync, sync-file, iomix, readahead, aio), namespace (dentry, dir,
# dirdeep, dirmany, rename, link, symlink, mknod, getdent, filename, open,
# touch) and attributes and locks (chmod, chown, access, utime, fstat, xattr,
# chattr, inode-flags, fcntl, lockf, flock, locka, lockofd, lease, copy-file,
# fsize, file-ioctl, inotify, dnotify). Fails on a non-zero exit, a failed,
# skipped or untrustworthy stressor, an error line, an unclean unmount, or
# fsck.foliofs -n finding anything afterwards.
#
# Left out, and why:
#   fiemap   FUSE passes no FS_IOC_FIEMAP to the daemon; stress-ng skips it.
#   io       calls sync() and syncfs() on every mount of the machine, so it
#            waits on other filesystems (a wedged one hangs it in D state);
#            the data group's sync-file and hdd's fdatasync cover foliofs's sync.
#   handle   works on /proc, not on --temp-path.
#   fanotify, bind-mount, binderfs, procfs, verity: not about this filesystem
#            (fanotify marks mounts, verity needs fs-verity, which FUSE lacks).
# Shared mmap runs on the default mount (no -o kernel_cache): a direct_io
# open with the kernel's FUSE_DIRECT_IO_ALLOW_MMAP.
# CI: 5 s per group; FOLIOFS_CLIENTS_LONG=1: 60 s per group, 2 of each.
# Exit 0 pass, 77 skip (stress-ng missing, not root, not built), 1 fail.
# The image, mount, umount and fsck are lib.py's (`lib.py mounted`), which
# runs this script again with --mounted, WORK and MNT set.
set -u
T=5 N=1
if [ "${FOLIOFS_CLIENTS_LONG:-0}" != 0 ]; then T=60 N=2; fi

if [ "${1:-}" != --mounted ]; then
	command -v stress-ng >/dev/null || { echo "SKIP: stress-ng not installed (scripts/install-deps)"; exit 77; }
	exec python3 "$(dirname "$0")/lib.py" mounted stressng $((4 << 30)) bash "$0" --mounted
fi

fail() {
	echo "FAIL: $*"
	exit 1
}

# group NAME STRESSOR... [-- extra stress-ng options]: the stressors run
# together, N instances each, for T seconds.
group() {
	local name=$1 args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("--$1" "$N")
		shift
	done
	[ $# -gt 0 ] && shift
	mkdir -p "$MNT/$name"
	local out=$WORK/$name.out
	# the kill is a backstop for a hang: stress-ng stops its stressors at --timeout
	timeout -s KILL $((T * 4 + 120)) stress-ng "${args[@]}" "$@" --temp-path "$MNT/$name" \
		--timeout "${T}s" --verify --metrics-brief >"$out" 2>&1
	local rc=$?
	[ $rc -eq 0 ] || fail "stress-ng $name exited $rc: $(grep -iE 'fail|error' "$out" | head -5)"
	local bad
	bad=$(grep -iE 'fail|error|skipping|untrustworthy|abort|unexpected' "$out")
	[ -z "$bad" ] || fail "stress-ng $name reported: $(echo "$bad" | head -5)"
	grep -q 'successful run completed' "$out" || fail "stress-ng $name did not complete: $(tail -3 "$out")"
	rmdir "$MNT/$name" || fail "stress-ng $name left files behind (or rmdir failed)"
	echo "  $name: $(grep -c 'metrc.*[0-9] *$' "$out") lines of metrics, ok"
}

echo "50-stressng: three groups of ${T} s, $N instance(s) each"
# The data group must not fill the device: stress-ng's default sizes (1 GiB
# for each of hdd, iomix, sync-file and fallocate) would, now that fallocate
# reserves its space as XFS does (iomix then gives up, "out of system
# resources"), and near full an ENOSPC of an aiol write shows as aiol's
# "unexpected data mismatch": stress-ng checks the read-back of a failed
# write when the completions come in another order than the buffers. With
# 256 MiB each, the group needs about 1.5 GiB of the 4 GiB (sparse) image.
group data hdd seek fallocate fpunch mmap sync-file iomix readahead aio aiol -- \
	--hdd-opts wr-rnd,rd-rnd,fdatasync --seek-punch --mmap-file \
	--hdd-bytes 256m --iomix-bytes 256m --sync-file-bytes 256m --fallocate-bytes 256m
group namespace dentry dir dirdeep dirmany rename link symlink mknod getdent filename open touch
group attrs chmod chown access utime fstat xattr chattr inode-flags fcntl lockf flock locka lockofd \
	lease copy-file fsize file-ioctl inotify dnotify
