#!/bin/sh
# Guest side of the p9-cycle scenario (one attach): mount the share, read hello.txt, write and
# read back a file named after the cycle (xe2e.cycle=N on the kernel cmdline), unmount.
set -u
n=$(sed -n 's/.*xe2e\.cycle=\([0-9]*\).*/\1/p' /proc/cmdline)
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST CYCLE $n FAIL mount"; exit 1; }
sum=$(sha256sum /mnt/hello.txt | cut -d' ' -f1)
echo "cycle $n" > /mnt/cycle-$n.txt || echo "XE2E-GUEST CYCLE $n FAIL write"
[ "$(cat /mnt/cycle-$n.txt)" = "cycle $n" ] || echo "XE2E-GUEST CYCLE $n FAIL read-back"
umount /mnt || echo "XE2E-GUEST CYCLE $n FAIL umount"
echo "XE2E-GUEST CYCLE $n done hello=$sum"
