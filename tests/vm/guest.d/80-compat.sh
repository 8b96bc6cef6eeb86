# SPDX-License-Identifier: GPL-2.0-or-later
# Kernel zonefs fidelity, case by case: each case runs once through the
# kernel's zonefs and once through foliofs on the same null_blk device in the
# same boot, and the two answers are compared (the kernel's is the expected
# one; a difference the README documents is listed in KNOWN below with the
# exact answer foliofs gives instead). Cases:
#   - every superblock feature (aggr_cnv, uid, gid, perm, all, none), on a
#     device formatted by mkfs.foliofs and on one whose superblock was written
#     by tests/vm/zonefs_sb.py (the independent writer; blocks made on the
#     host by tests/vm/run);
#   - read-only and offline zones at mount (null_blk's zone_readonly and
#     zone_offline attributes) and at I/O time;
#   - explicit-open with a full, a partly written and an empty file, past the
#     device's open limit, and the counters of /sys/fs/zonefs/<dev>/;
#   - a write to a fourth zone past the device's active limit (3);
#   - the four errors= modes after a write that fails because the zone was
#     written behind the file's back (asynchronous O_DIRECT: Debian 6.1's
#     zonefs fails synchronous O_DIRECT appends).
. /foliofs/guest-lib.sh
grep -q fuse /proc/filesystems || insmod /lib/modules/fuse.ko 2>/dev/null
grep -q zonefs /proc/filesystems || insmod /lib/modules/zonefs.ko 2>/dev/null
grep -q zonefs /proc/filesystems || { skip compat "zonefs.ko not loaded"; exit 0; }
have mkfs.foliofs && have foliofs || { skip compat "foliofs not packed"; exit 0; }
K=/mnt/kz
F=/mnt/fz
mkdir -p $K $F
ZSECT=131072 # 64 MiB zones in 512-byte sectors
ZB=67108864

# KNOWN: "case|foliofs's answer" lines for differences the README documents.
KNOWN=/tmp/compat.known
# active-limit: Debian 6.1's zonefs handles the device's refusal of a fourth
# active zone as a write error, so errors=remount-ro makes the whole mount
# read-only; foliofs fails only that write (EOVERFLOW) and stays writable
# (DESIGN.md: a zone-resource refusal is the writer's error only).
cat >$KNOWN <<'EOF'
active-limit|0 write ok;1 write ok;2 write ok;3 write failed;seq/3 640 0;seq/4 write open: ok;3 write ok;
EOF

# compare CASE KFILE FFILE: PASS compat-CASE when foliofs answered as the
# kernel did, or exactly as KNOWN documents; FAIL with both answers otherwise.
compare() { compare_answers compat "$@"; }

# a second null_blk device through configfs: 4 KiB blocks, 4 conventional +
# 12 sequential 64 MiB zones (so aggr_cnv has 3 zones to join), at most 3 open
# and 3 active zones; seq/k is zone NCONV + k
NCONV=4
D1=$(nullb_make nullb9 4096 $NCONV 0 3 3) || { fail compat-nullb "configfs null_blk device"; exit 1; }
step "device $D1"

kmount() { mount -t zonefs "$@"; }
fmount() { # DEV MNT [opts]
	local dev=$1 mnt=$2
	shift 2
	ff_mount "$dev" "$mnt" "$@"
}
fumount() { ff_umount "$1" >/dev/null 2>&1; }

# ---- 1. superblock features, both ways ----
look() { # DIR: the tree and the owner, mode and size of a few files
	echo "cnv $(ls $1/cnv 2>/dev/null | wc -l) seq $(ls $1/seq | wc -l)"
	for f in cnv/0 cnv/1 cnv/2 seq/0 seq/11; do
		[ -e $1/$f ] && echo "$f $(stat -c '%a %u %g %s' $1/$f)"
	done
}
one_feature() { # NAME HOW(mkfs|indep) MKFS-ARGS...
	local name=$1 how=$2
	shift 2
	mkfs.foliofs --format zonefs --force "$@" $D1 >/tmp/mkfs.out 2>&1 || { cat /tmp/mkfs.out; fail "compat-sb-$how-$name mkfs"; return; }
	if [ $how = indep ]; then
		dd if=/foliofs/sb/$name.blk of=$D1 bs=4096 count=1 conv=notrunc,fsync 2>/dev/null ||
			{ fail "compat-sb-$how-$name dd"; return; }
	fi
	if kmount $D1 $K; then look $K >/tmp/k.out; umount $K; else echo "mount failed" >/tmp/k.out; fi
	if fmount $D1 $F; then look $F >/tmp/f.out; fumount $F; else echo "mount failed" >/tmp/f.out; fi
	compare "sb-$how-$name" /tmp/k.out /tmp/f.out
}
step "superblock features"
one_feature none mkfs
one_feature aggr mkfs --aggr-cnv
one_feature uid mkfs --uid 1000
one_feature gid mkfs --gid 2000
one_feature perm mkfs --perm 600
one_feature all mkfs --aggr-cnv --uid 1000 --gid 2000 --perm 600
if [ -d /foliofs/sb ]; then
	for n in none aggr uid gid perm all; do one_feature $n indep; done
else
	skip compat-sb-indep "no superblocks from tests/vm/zonefs_sb.py (python3 missing on the host)"
fi

# ---- 2. read-only and offline zones at mount and at I/O time ----
zone_cond() { # readonly|offline ZONE: toggles the condition (null_blk: a second write restores EMPTY)
	echo $(($2 * ZSECT)) >$NB/nullb9/zone_$1
}
ro_look() { # DIR: size, mode, and what a read and a write open say, for seq/2 seq/3
	for f in seq/2 seq/3; do
		r=$(dd if=$1/$f of=/dev/null bs=4096 count=1 2>&1 | grep -io 'operation not permitted\|input/output error\|permission denied' | head -1)
		w=$( (command exec 3>>$1/$f) 2>&1 | sed 's/.*: //' | head -1)
		echo "$f $(stat -c '%a %s' $1/$f) read:${r:-ok} write:${w:-ok}"
	done
}
Z2=$((NCONV + 2)) Z3=$((NCONV + 3)) # the zones of seq/2 and seq/3
if [ -e $NB/nullb9/zone_readonly ]; then
	step "read-only/offline zones at mount"
	mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
	# write 64 KiB into seq/2 and seq/3 first
	fio --name=w --filename=$D1 --offset=$((Z2 * ZB)) --size=64k --bs=64k --rw=write --direct=1 >/dev/null 2>&1
	fio --name=w --filename=$D1 --offset=$((Z3 * ZB)) --size=64k --bs=64k --rw=write --direct=1 >/dev/null 2>&1
	zone_cond readonly $Z2
	zone_cond offline $Z3
	blkzone report -o $((Z2 * ZSECT)) -c 2 $D1 | sed 's/^/blkzone: /'
	if kmount $D1 $K; then ro_look $K >/tmp/k.out; umount $K; else echo "mount failed" >/tmp/k.out; fi
	if fmount $D1 $F; then ro_look $F >/tmp/f.out; fumount $F && echo "umount clean" >>/tmp/f.out ||
		echo "umount failed" >>/tmp/f.out; else echo "mount failed" >/tmp/f.out; fi
	echo "umount clean" >>/tmp/k.out
	grep -q "partial tail" /tmp/foliofs-fz.log && echo "warns: partial tail" >>/tmp/f.out
	compare ro-offline-at-mount /tmp/k.out /tmp/f.out
	zone_cond readonly $Z2
	zone_cond offline $Z3
	step "read-only/offline zones at I/O time"
	mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
	io_case() { # DIR: seq/2 and seq/3 written, then made read-only/offline, then used
		fio --name=w --filename=$1/seq/2 --size=64k --bs=64k --rw=write --direct=1 --sync=1 --ioengine=libaio \
			--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1
		fio --name=w --filename=$1/seq/3 --size=64k --bs=64k --rw=write --direct=1 --sync=1 --ioengine=libaio \
			--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1
		zone_cond readonly $Z2
		zone_cond offline $Z3
		# a write to each meets the new condition
		for f in seq/2 seq/3; do
			fio --name=e --filename=$1/$f --size=4k --bs=4k --rw=write --direct=1 --sync=1 --ioengine=libaio \
				--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1 &&
				echo "$f write ok" || echo "$f write failed"
		done
		ro_look $1
		zone_cond readonly $Z2
		zone_cond offline $Z3
	}
	if kmount $D1 $K -o errors=repair; then io_case $K >/tmp/k.out; umount $K; fi
	mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
	if fmount $D1 $F -o errors=repair; then io_case $F >/tmp/f.out; fumount $F; fi
	compare ro-offline-at-io /tmp/k.out /tmp/f.out
else
	skip compat-ro-offline "this null_blk has no zone_readonly/zone_offline"
fi

# ---- 3. explicit-open: full, partly written, empty; the open limit; counters ----
SYS=/sys/fs/zonefs/$(basename $D1)
counters() { # SYSTEM DIR: the four counters
	if [ $1 = k ]; then
		for c in max_wro_seq_files nr_wro_seq_files max_active_seq_files nr_active_seq_files; do
			echo "$c $(cat $SYS/$c 2>/dev/null)"
		done
	else
		# a file closed just before is counted until the daemon runs its
		# FUSE_RELEASE, which close(2) does not wait for
		sleep 0.5
		for c in max_wro_seq_files nr_wro_seq_files max_active_seq_files nr_active_seq_files; do
			echo "$c $(ff_stat $2 $c)"
		done
	fi
}
try_open() { # FD FILE: hold FILE open for writing on FD; prints ok or the error
	local e
	e=$(eval "command exec $1>>$2" 2>&1 >/dev/null) # in a subshell: only the verdict
	[ -z "$e" ] && eval "exec $1>>$2" && echo "open $(basename $2) ok" || echo "open $(basename $2) ${e##*: }"
}
eo_case() { # SYSTEM DIR
	truncate -s $ZB $2/seq/0 && echo "finish ok" || echo "finish failed"
	fio --name=p --filename=$2/seq/1 --size=64k --bs=64k --rw=write --direct=1 --sync=1 --ioengine=libaio \
		--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1 &&
		echo "partial ok" || echo "partial failed"
	counters $1 $2
	try_open 3 $2/seq/0
	try_open 4 $2/seq/1
	try_open 5 $2/seq/2
	counters $1 $2
	try_open 6 $2/seq/3 # a fourth file: past the open limit (3)
	exec 6>&- 2>/dev/null
	echo "conds $(blkzone report -c $((NCONV + 4)) $D1 2>/dev/null | grep -o 'zcond: *[0-9]*([a-z]*)' | tail -4 | tr -d ' ' | tr '\n' ' ')"
	exec 3>&- 4>&- 5>&-
	counters $1 $2
}
step "explicit-open"
mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
if kmount $D1 $K -o explicit-open; then eo_case k $K >/tmp/k.out; umount $K; else echo "mount failed" >/tmp/k.out; fi
mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
if fmount $D1 $F -o explicit-open; then eo_case f $F >/tmp/f.out; fumount $F; else echo "mount failed" >/tmp/f.out; fi
compare explicit-open /tmp/k.out /tmp/f.out

# ---- 4. the active limit: three partly written files, then a fourth ----
w4k() { # FILE: one 4 KiB O_DIRECT|O_SYNC append; prints ok or failed
	fio --name=w --filename=$1 --size=4k --bs=4k --rw=write --direct=1 --sync=1 --ioengine=libaio \
		--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1 &&
		echo "$(basename $1) write ok" || echo "$(basename $1) write failed"
}
al_case() { # DIR
	for n in 0 1 2 3; do w4k $1/seq/$n; done
	echo "seq/3 $(stat -c '%a %s' $1/seq/3)"
	w=$( (command exec 3>>$1/seq/4) 2>&1 | sed 's/.*: //' | head -1)
	echo "seq/4 write open: ${w:-ok}"
	truncate -s $ZB $1/seq/0 2>&1 | sed 's/.*: //'
	w4k $1/seq/3
}
step "active limit"
mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
if kmount $D1 $K; then al_case $K >/tmp/k.out; umount $K; else echo "mount failed" >/tmp/k.out; fi
mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
if fmount $D1 $F; then al_case $F >/tmp/f.out; fumount $F; else echo "mount failed" >/tmp/f.out; fi
compare active-limit /tmp/k.out /tmp/f.out

# ---- 5. errors=: a write meets a zone written behind the file's back ----
err_case() { # DIR
	fio --name=a --filename=$1/seq/3 --size=128k --bs=64k --rw=write --direct=1 --sync=1 --ioengine=libaio \
		--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1
	# 64 KiB written to the zone directly, at its write pointer
	fio --name=b --filename=$D1 --offset=$((Z3 * ZB + 131072)) --size=64k --bs=64k --rw=write \
		--direct=1 >/dev/null 2>&1
	fio --name=c --filename=$1/seq/3 --size=4k --bs=4k --rw=write --direct=1 --sync=1 --ioengine=libaio \
		--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 >/dev/null 2>&1 &&
		echo "write ok" || echo "write failed"
	seq3_answers $1
}
for m in remount-ro zone-ro zone-offline repair; do
	step "errors=$m"
	mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
	if kmount $D1 $K -o errors=$m; then err_case $K >/tmp/k.out; umount $K; else echo "mount failed" >/tmp/k.out; fi
	mkfs.foliofs --format zonefs --force $D1 >/dev/null 2>&1
	if fmount $D1 $F -o errors=$m; then err_case $F >/tmp/f.out; fumount $F; else echo "mount failed" >/tmp/f.out; fi
	compare errors-$m /tmp/k.out /tmp/f.out
done
nullb_remove nullb9
