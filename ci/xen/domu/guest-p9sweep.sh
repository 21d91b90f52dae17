#!/bin/sh
# Guest side of the p9-sweep scenario: a short version of p9-bench's workload (dd of 32 MiB
# written with fsync and read back at bs=1M and bs=64k, and 300 files created, stat'ed and
# unlinked), printed as "XE2E-GUEST BENCH <name> <seconds>".
set -u
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
for bs in 1M 64k; do
  case $bs in 1M) n=32 ;; 64k) n=512 ;; esac
  t0=$(up); dd if=/dev/zero of=/mnt/s-$bs bs=$bs count=$n conv=fsync 2>/dev/null || echo "XE2E-GUEST FAIL write $bs"; t1=$(up)
  echo "XE2E-GUEST BENCH write-$bs $(secs $t0 $t1)"
  t0=$(up); dd if=/mnt/s-$bs of=/dev/null bs=$bs 2>/dev/null || echo "XE2E-GUEST FAIL read $bs"; t1=$(up)
  echo "XE2E-GUEST BENCH read-$bs $(secs $t0 $t1)"
  rm -f /mnt/s-$bs
done
mkdir /mnt/meta
t0=$(up); /guest/p9meta /mnt/meta 300 >/dev/null || echo "XE2E-GUEST FAIL p9meta"; t1=$(up)
echo "XE2E-GUEST BENCH meta-900 $(secs $t0 $t1)"
rmdir /mnt/meta
umount /mnt && echo "XE2E-GUEST BENCH DONE"
