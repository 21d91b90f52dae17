#!/bin/sh
# Guest side of the p9-bench and p9-baselines scenarios: the same workload against whatever
# serves /mnt, chosen by xe2e.mnt= on the kernel cmdline: "9p" (default: the "share" tag in
# 9P2000.L, pvfs or QEMU in dom0), "9ploose" and "9pmmap" (the same with cache=loose or
# cache=mmap), "9pu" (the "share"
# tag in 9P2000.u, for xen-9pfsd, which speaks nothing else), "nfs" (dom0's NFS server at
# 10.9.0.1 over netfront, NFS 4.2) or "disk" (the guest's own ext4 on the vbd xvdb). The
# workload: dd of
# 64 MiB written (conv=fsync) then read at bs=1M and bs=64k; a metadata loop that creates, stats
# and unlinks 2000 files (p9meta); when the guest carries a source tree (/guest/src.tar.gz,
# e2fsprogs 1.47.0's), unpacking it followed by sync, a `find ! -type d | xargs stat` walk over it
# and its removal. The guest's page cache is dropped before every read (so a read reaches the
# backend whatever its cache mode), and the first round reads cold.bin, which no one has read.
# Each figure is printed as "XE2E-GUEST BENCH <name> <seconds>"; dom0 turns them into rates.
set -u
MNT=9p
for a in $(cat /proc/cmdline); do case $a in xe2e.mnt=*) MNT=${a#xe2e.mnt=} ;; esac; done
mkdir -p /mnt
# mount_it [OPTIONS]: mounts the backend under test on /mnt (OPTIONS are extra 9p options)
mount_it() {
  case $MNT in
    9p) mount -t 9p -o "trans=xen,version=9p2000.L${1:+,$1}" share /mnt ;;
    9ploose) mount -t 9p -o "trans=xen,version=9p2000.L,cache=loose${1:+,$1}" share /mnt ;;
    9pmmap) mount -t 9p -o "trans=xen,version=9p2000.L,cache=mmap${1:+,$1}" share /mnt ;;
    9pu) mount -t 9p -o "trans=xen,version=9p2000.u${1:+,$1}" share /mnt ;;
    nfs)
      for m in $(cat /etc/xe2e-modules-nfs 2>/dev/null); do
        insmod "/lib/modules/$m" || echo "XE2E-GUEST WARN insmod $m failed"
      done
      i=0
      until ifconfig eth0 >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "XE2E-GUEST FAIL no eth0 after 10s"; return 1; }
        sleep 0.1
      done
      ifconfig eth0 10.9.0.2 netmask 255.255.255.0 up || return 1
      # vers=4.2: what mount.nfs negotiates with this server (the kernel alone would take 4.0)
      mount -t nfs4 -o vers=4.2,addr=10.9.0.1,clientaddr=10.9.0.2 10.9.0.1:/ /mnt ;;
    disk)
      i=0
      until [ -b /dev/xvdb ]; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "XE2E-GUEST FAIL no /dev/xvdb after 10s"; return 1; }
        sleep 0.1
      done
      mount -t ext4 /dev/xvdb /mnt ;;
    *) echo "XE2E-GUEST FAIL unknown xe2e.mnt=$MNT"; return 1 ;;
  esac
}
# The first mount in the background: one that has not returned after 120 s is reported with
# the kernel's last messages, and the guest ends, rather than hang until dom0's limit.
echo "XE2E-GUEST MOUNTING $MNT uptime=$(cut -d' ' -f1 /proc/uptime)s"
( mount_it; echo $? > /tmp/mount.rc ) &
mpid=$!
i=0
while [ ! -f /tmp/mount.rc ]; do
  i=$((i + 1))
  if [ $i -gt 1200 ]; then
    echo "XE2E-GUEST FAIL mount of $MNT did not return in 120 s"
    # where it waits: the mount's kernel stack, the 9pfs devices' states, the kernel's messages
    # (all levels: the console shows only errors)
    for p in $(pidof mount 2>/dev/null) $mpid; do
      echo "XE2E-GUEST DIAG task $p $(cat /proc/$p/comm 2>/dev/null) $(tr '\n' '|' < /proc/$p/stack 2>/dev/null)"
    done
    for d in /sys/bus/xen/devices/9pfs-*; do
      [ -e "$d" ] && echo "XE2E-GUEST DIAG $d state $(cat $d/state 2>/dev/null)"
    done
    dmesg | tail -25 | sed 's/^/XE2E-GUEST DIAG dmesg /'
    exit 1
  fi
  sleep 0.1
done
[ "$(cat /tmp/mount.rc)" = 0 ] || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST MOUNT $(grep ' /mnt ' /proc/mounts)"
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# The volume's own file, never read before (see p9-bench.sh): the read from pvfs's disk. Only
# the first round has it, and not the columns that share pvfs's export after it (xe2e.cold=0).
if grep -qw 'xe2e.round=1' /proc/cmdline && ! grep -qw 'xe2e.cold=0' /proc/cmdline; then
  cold
  t0=$(up); dd if=/mnt/cold.bin of=/dev/null bs=1M 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read cold: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH read-1M-cold $(secs $t0 $t1)"
  rm -f /mnt/cold.bin
fi
for bs in 1M 64k; do
  case $bs in 1M) n=64 ;; 64k) n=1024 ;; esac
  t0=$(up); dd if=/dev/zero of=/mnt/bench-$bs bs=$bs count=$n conv=fsync 2>/tmp/dd.err || echo "XE2E-GUEST FAIL write $bs: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH write-$bs $(secs $t0 $t1)"
  cold
  t0=$(up); dd if=/mnt/bench-$bs of=/dev/null bs=$bs 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read $bs: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH read-$bs $(secs $t0 $t1)"
  sz=$(stat -c %s /mnt/bench-$bs)
  [ "$sz" = 67108864 ] || echo "XE2E-GUEST FAIL size $bs: $sz"
  rm -f /mnt/bench-$bs
done
mkdir /mnt/meta
# One system call per operation (ci/xen/domu/p9meta.c): the guest shell would fork a process
# per rm, which costs more than the operation itself in the emulated test bed.
/guest/p9meta /mnt/meta 2000 || echo "XE2E-GUEST FAIL p9meta"
rmdir /mnt/meta || echo "XE2E-GUEST FAIL rmdir meta"
if [ -f /guest/src.tar.gz ]; then
  # unpacked into the guest's memory first, so that only the writes to /mnt are timed
  gunzip -c /guest/src.tar.gz > /tmp/src.tar || echo "XE2E-GUEST FAIL gunzip src.tar.gz"
  echo "XE2E-GUEST SRCFILES $(tar -tf /tmp/src.tar | wc -l)"
  mkdir /mnt/src
  t0=$(up); tar -xf /tmp/src.tar -C /mnt/src || echo "XE2E-GUEST FAIL tar -x"; sync; t1=$(up)
  echo "XE2E-GUEST BENCH tar-x $(secs $t0 $t1)"
  want=$(tar -tf /tmp/src.tar | grep -vc '/$')
  cold
  t0=$(up); got=$(find /mnt/src ! -type d | xargs stat -c %s | wc -l); t1=$(up)
  echo "XE2E-GUEST BENCH stat-walk $(secs $t0 $t1)"
  [ "$got" = "$want" ] || echo "XE2E-GUEST FAIL stat-walk saw $got files, the tar has $want"
  t0=$(up); rm -rf /mnt/src || echo "XE2E-GUEST FAIL rm -rf"; sync; t1=$(up)
  echo "XE2E-GUEST BENCH rm-tree $(secs $t0 $t1)"
  rm -f /tmp/src.tar
fi
umount /mnt || echo "XE2E-GUEST FAIL umount"
# Throughput again with the largest msize Linux's Xen transport allows (512 KiB, ring order 9;
# pvfs and QEMU offer order 9): a 1 MiB dd block is 2 requests instead of 8.
if [ "$MNT" = 9p ]; then
  mount_it msize=524288 || { echo "XE2E-GUEST FAIL mount msize"; exit 1; }
  echo "XE2E-GUEST MOUNT $(grep ' /mnt ' /proc/mounts)"
  grep ' /mnt ' /proc/mounts | grep -q 'msize=524288' || echo "XE2E-GUEST FAIL msize not negotiated"
  t0=$(up); dd if=/dev/zero of=/mnt/bench-m512k bs=1M count=64 conv=fsync 2>/tmp/dd.err || echo "XE2E-GUEST FAIL write m512k: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH write-1M-m512k $(secs $t0 $t1)"
  cold
  t0=$(up); dd if=/mnt/bench-m512k of=/dev/null bs=1M 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read m512k: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH read-1M-m512k $(secs $t0 $t1)"
  sz=$(stat -c %s /mnt/bench-m512k)
  [ "$sz" = 67108864 ] || echo "XE2E-GUEST FAIL size m512k: $sz"
  rm -f /mnt/bench-m512k
  umount /mnt || echo "XE2E-GUEST FAIL umount msize"
fi
echo "XE2E-GUEST BENCH DONE"
