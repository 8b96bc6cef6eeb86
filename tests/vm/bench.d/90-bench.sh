# SPDX-License-Identifier: GPL-2.0-or-later
# bench/guest's workloads, in one boot (tests/vm/run with FOLIOFS_VM_BENCH set;
# never part of the test run). O_SYNC appends of 4 KiB and of 1 MiB to a
# sequential zone, at queue depth 1, through five systems on memory-backed
# null_blk devices of 4 KiB blocks and 64 MiB zones:
#   raw        fio on the zoned /dev/nullbN: --zonemode=zbd, O_DIRECT|O_SYNC,
#              libaio at queue depth 1
#   zonefs     the kernel's zonefs on that device: O_DIRECT|O_SYNC appends to a
#              seq/ file, libaio at queue depth 1 (Debian 6.1's zonefs fails a
#              synchronous O_DIRECT append, so not psync)
#   null       bench/nullfs: FUSE with no I/O, buffered O_SYNC psync appends
#   foliofs    foliofs (zonefs format, libzbd backend) on the zoned device,
#              buffered O_SYNC psync appends to a seq/ file
#   foliofs-emu foliofs (zonefs format, emulated zones) on a regular null_blk
#              of the same size: the same appends, through the regular backend
#              (each durable append also writes its 4 KiB write-pointer record)
# Every round runs every system, in an order that rotates by round, so drift
# in the emulator hits all of them. Both FUSE daemons are warm: nullfs's
# memory faulted in, foliofs's cache filled to its budget and freed first. Each run prints
#   VMBENCH <workload> <system> iops=.. bw=..MiB/s p99=..us round=R
#           cpu_us=<busy CPU of the whole guest per write>
#           dcpu_us=<the FUSE daemon's CPU per write, FUSE systems only>
#           dusr_us=<the part of it in user space>
# ROUNDS and QUICK come from /foliofs/bench.env (tests/vm/run writes it).
. /foliofs/guest-lib.sh
ROUNDS=3
QUICK=0
[ -f /foliofs/bench.env ] && . /foliofs/bench.env
have fio || { fail guest-bench "fio not packed"; exit 1; }
have foliofs && have mkfs.foliofs || { fail guest-bench "foliofs not packed"; exit 1; }
ln -sf /proc/self/mounts /etc/mtab
grep -q fuse /proc/filesystems || insmod /lib/modules/fuse.ko 2>/dev/null
[ -c /dev/fuse ] || mknod /dev/fuse c 10 229
grep -q zonefs /proc/filesystems || insmod /lib/modules/zonefs.ko 2>/dev/null
grep -q zonefs /proc/filesystems || { fail guest-bench "zonefs.ko not loaded"; exit 1; }

ZB=67108864
if [ "$QUICK" = 1 ]; then S4K=1m; S1M=16m; else S4K=4m; S1M=64m; fi

ZDEV=$(nullb_make zbench 4096 2 0 0 0 64 1024) || { fail guest-bench "zoned null_blk"; exit 1; }
# the regular device: null_blk without zones, same size and block size
d=$NB/rbench
mkdir $d && echo 1024 >$d/size && echo 1 >$d/memory_backed && echo 4096 >$d/blocksize &&
	RDEV=$(nullb_power_on rbench) || { fail guest-bench "regular null_blk"; exit 1; }
echo "bench: zoned $ZDEV ($(cat /sys/block/$(basename $ZDEV)/queue/zoned)), regular $RDEV, rounds $ROUNDS"

mkfs.foliofs --format zonefs -f $ZDEV >/dev/null || { fail guest-bench "mkfs zoned"; exit 1; }
mkfs.foliofs --format zonefs --emulate-zoned --zone-size 64M --conv-zones 2 -f $RDEV >/dev/null ||
	{ fail guest-bench "mkfs emulated"; exit 1; }

# mark FILE [PID]: the guest's busy jiffies (all CPUs: user nice system irq
# softirq steal) and PID's utime and stime, on one line. fio calls it just
# before its job's first I/O and just after its last (exec_prerun and
# exec_postrun), so fio's own start-up is not counted.
cat >/tmp/mark <<'EOF'
#!/bin/sh
b=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
p="0 0"
[ -n "$2" ] && p=$(awk '{print $14, $15}' /proc/$2/stat 2>/dev/null)
echo "$b ${p:-0 0}" >"$1"
EOF
chmod +x /tmp/mark
HZ=100 # USER_HZ: /proc reports clock ticks of 1/100 s on Linux
# run SYSTEM WORKLOAD ROUND PID|- fio-args...: one fio run and its VMBENCH line
run() {
	local sys=$1 wl=$2 r=$3 p=$4 n b0 b1 u0 u1 s0 s1
	shift 4
	[ "$p" = - ] && p=
	rm -f /tmp/m0 /tmp/m1
	if ! (cd /tmp && fio --name=$wl --group_reporting --output-format=terse \
		--exec_prerun="/tmp/mark /tmp/m0 $p" --exec_postrun="/tmp/mark /tmp/m1 $p" \
		"$@" >/tmp/b.out 2>/tmp/b.err) || [ ! -s /tmp/m0 ] || [ ! -s /tmp/m1 ]; then
		cat /tmp/b.out /tmp/b.err
		fail "bench-$sys-$wl-r$r"
		return 1
	fi
	read -r b0 u0 s0 </tmp/m0
	read -r b1 u1 s1 </tmp/m1
	# writes issued: total write KiB (field 47) / block size
	n=$(awk -F';' -v bs="$BS" '$1 == "3" {print int($47 * 1024 / bs)}' /tmp/b.out)
	[ "$n" -gt 0 ] || n=1
	vmbench $wl $sys /tmp/b.out | awk -v r=$r -v c=$(((b1 - b0) * 1000000 / HZ / n)) \
		-v d=$([ -z "$p" ] && echo - || echo $(((u1 + s1 - u0 - s0) * 1000000 / HZ / n))) \
		-v u=$([ -z "$p" ] && echo - || echo $(((u1 - u0) * 1000000 / HZ / n))) \
		'{print $0 " round=" r " cpu_us=" c " dcpu_us=" d " dusr_us=" u}'
}

# each system's two workloads, with its own files and fio options
sys_raw() {
	blkzone reset -o $((6 * ZB / 512)) -c 2 $ZDEV
	BS=4096 run raw seq-osync-4k $1 - --filename=$ZDEV --zonemode=zbd --offset=$((6 * ZB)) \
		--size=$ZB --io_size=$S4K --direct=1 --ioengine=libaio --iodepth=1 --sync=1 --rw=write --bs=4k
	BS=1048576 run raw seq-osync-1m $1 - --filename=$ZDEV --zonemode=zbd --offset=$((7 * ZB)) \
		--size=$ZB --io_size=$S1M --direct=1 --ioengine=libaio --iodepth=1 --sync=1 --rw=write --bs=1m
}
APP="--create_on_open=0 --allow_file_create=0 --file_append=1 --unlink=0 --rw=write"
sys_zonefs() {
	mkdir -p /mnt/kz
	mount -t zonefs $ZDEV /mnt/kz || { fail "bench-zonefs-mount-r$1"; return 1; }
	truncate -s 0 /mnt/kz/seq/0 /mnt/kz/seq/1
	BS=4096 run zonefs seq-osync-4k $1 - --filename=/mnt/kz/seq/0 $APP --size=$S4K \
		--direct=1 --ioengine=libaio --iodepth=1 --sync=1 --bs=4k
	BS=1048576 run zonefs seq-osync-1m $1 - --filename=/mnt/kz/seq/1 $APP --size=$S1M \
		--direct=1 --ioengine=libaio --iodepth=1 --sync=1 --bs=1m
	umount /mnt/kz
}
sys_null() {
	local pid
	mkdir -p /mnt/nf
	nullfs -f /mnt/nf >/tmp/nullfs.log 2>&1 &
	pid=$!
	for i in $(seq 100); do grep -q " /mnt/nf fuse" /proc/mounts && break; sleep 0.1; done
	grep -q " /mnt/nf fuse" /proc/mounts || { cat /tmp/nullfs.log; fail "bench-null-mount-r$1"; return 1; }
	# fault the files' memory in once, as bench/run does: first-touch page
	# faults are not what FUSE costs
	for f in 0 1; do dd if=/dev/zero of=/mnt/nf/$f bs=1M count=64 2>/dev/null; truncate -s 0 /mnt/nf/$f; done
	BS=4096 run null seq-osync-4k $1 $pid --filename=/mnt/nf/0 $APP --size=$S4K \
		--ioengine=psync --sync=1 --bs=4k
	BS=1048576 run null seq-osync-1m $1 $pid --filename=/mnt/nf/1 $APP --size=$S1M \
		--ioengine=psync --sync=1 --bs=1m --iomem_align=4k
	umount /mnt/nf
	wait $pid
}
# sys_ff SYSTEM DEV: foliofs on DEV
sys_ff() {
	local sys=$1 dev=$2 r=$3 mnt=/mnt/$1
	ff_mount $dev $mnt || { fail "bench-$sys-mount-r$r"; return 1; }
	# a mount that has run a while: its cache filled to the budget (256 MiB,
	# four zones written and fsync'ed), then freed by truncating them, as
	# nullfs's memory is faulted in above. The first fill of a fresh mount
	# faults every page in; later folios reuse the freed buffers.
	for z in 6 7 8 9; do
		dd if=/dev/zero of=$mnt/seq/$z bs=1M count=64 conv=fsync 2>/dev/null
	done
	truncate -s 0 $mnt/seq/6 $mnt/seq/7 $mnt/seq/8 $mnt/seq/9 $mnt/seq/2 $mnt/seq/3
	BS=4096 run $sys seq-osync-4k $r "$(cat /tmp/foliofs-$sys.pid)" --filename=$mnt/seq/2 $APP \
		--size=$S4K --ioengine=psync --sync=1 --bs=4k
	# page-aligned buffers: a 1 MiB write from an unaligned one is two FUSE
	# requests on this kernel (256 pages a request)
	BS=1048576 run $sys seq-osync-1m $r "$(cat /tmp/foliofs-$sys.pid)" --filename=$mnt/seq/3 $APP \
		--size=$S1M --ioengine=psync --sync=1 --bs=1m --iomem_align=4k
	ff_umount $mnt || fail "bench-$sys-umount-r$r"
}

SYSTEMS="raw zonefs null foliofs foliofs-emu"
nsys=5
ok=1
for r in $(seq 1 $ROUNDS); do
	step "round $r"
	# rotate the order: round r starts at system (r-1) mod 5
	order=$(echo $SYSTEMS $SYSTEMS | awk -v k=$(((r - 1) % nsys)) -v n=$nsys \
		'{for (i = k + 1; i <= k + n; i++) printf "%s ", $i}')
	for s in $order; do
		case $s in
		raw) sys_raw $r || ok=0 ;;
		zonefs) sys_zonefs $r || ok=0 ;;
		null) sys_null $r || ok=0 ;;
		foliofs) sys_ff foliofs $ZDEV $r || ok=0 ;;
		foliofs-emu) sys_ff foliofs-emu $RDEV $r || ok=0 ;;
		esac
	done
done
[ $ok = 1 ] && pass guest-bench || fail guest-bench
