#!/bin/sh
# Guest side of the p9-cycle scenario (one attach): mount the share, read hello.txt, overwrite
# cycle.txt in place with "cycle NN" (xe2e.cycle=N on the kernel cmdline; the same size every
# time, so no cycle after the first allocates anything on the volume), read it back, unmount.
set -u
n=$(sed -n 's/.*xe2e\.cycle=\([0-9]*\).*/\1/p' /proc/cmdline)
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST CYCLE $n FAIL mount"; exit 1; }
sum=$(sha256sum /mnt/hello.txt | cut -d' ' -f1)
line=$(printf 'cycle %02d' "$n")
echo "$line" | dd of=/mnt/cycle.txt conv=notrunc 2>/dev/null || echo "XE2E-GUEST CYCLE $n FAIL write"
[ "$(cat /mnt/cycle.txt)" = "$line" ] || echo "XE2E-GUEST CYCLE $n FAIL read-back"
umount /mnt || echo "XE2E-GUEST CYCLE $n FAIL umount"
echo "XE2E-GUEST CYCLE $n done hello=$sum"
