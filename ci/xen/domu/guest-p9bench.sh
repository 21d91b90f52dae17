#!/bin/sh
# Guest side of the p9-bench scenario: the same workload against whichever 9pfs backend serves
# the "share" tag (pvfs, or QEMU in dom0): dd of 64 MiB written then read at bs=1M and bs=64k,
# and a metadata loop that creates, stats and unlinks 2000 files (p9meta). Each figure is printed as
# "XE2E-GUEST BENCH <name> <seconds>"; dom0 turns them into rates and ratios.
set -u
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST MOUNTED"
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
# The volume's own file, never read before (see p9-bench.sh): the read from pvfs's disk. Only
# the first round has it.
if grep -qw 'xe2e.round=1' /proc/cmdline; then
  t0=$(up); dd if=/mnt/cold.bin of=/dev/null bs=1M 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read cold: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH read-1M-cold $(secs $t0 $t1)"
  rm -f /mnt/cold.bin
fi
for bs in 1M 64k; do
  case $bs in 1M) n=64 ;; 64k) n=1024 ;; esac
  t0=$(up); dd if=/dev/zero of=/mnt/bench-$bs bs=$bs count=$n conv=fsync 2>/tmp/dd.err || echo "XE2E-GUEST FAIL write $bs: $(tail -1 /tmp/dd.err)"; t1=$(up)
  echo "XE2E-GUEST BENCH write-$bs $(secs $t0 $t1)"
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
umount /mnt || echo "XE2E-GUEST FAIL umount"
# Throughput again with the largest msize Linux's Xen transport allows (512 KiB, ring order 9;
# both backends offer order 9): a 1 MiB dd block is 2 requests instead of 8.
mount -t 9p -o trans=xen,version=9p2000.L,msize=524288 share /mnt || { echo "XE2E-GUEST FAIL mount msize"; exit 1; }
echo "XE2E-GUEST MOUNT $(grep ' /mnt ' /proc/mounts)"
grep ' /mnt ' /proc/mounts | grep -q 'msize=524288' || echo "XE2E-GUEST FAIL msize not negotiated"
t0=$(up); dd if=/dev/zero of=/mnt/bench-m512k bs=1M count=64 conv=fsync 2>/tmp/dd.err || echo "XE2E-GUEST FAIL write m512k: $(tail -1 /tmp/dd.err)"; t1=$(up)
echo "XE2E-GUEST BENCH write-1M-m512k $(secs $t0 $t1)"
t0=$(up); dd if=/mnt/bench-m512k of=/dev/null bs=1M 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read m512k: $(tail -1 /tmp/dd.err)"; t1=$(up)
echo "XE2E-GUEST BENCH read-1M-m512k $(secs $t0 $t1)"
sz=$(stat -c %s /mnt/bench-m512k)
[ "$sz" = 67108864 ] || echo "XE2E-GUEST FAIL size m512k: $sz"
rm -f /mnt/bench-m512k
umount /mnt && echo "XE2E-GUEST BENCH DONE"
