#!/bin/sh
# Guest side of the p9 scenario's mid-I/O destroy: mount the share and read a file in a loop
# until dom0 destroys this guest.
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST LOOPING"
while :; do cat /mnt/data/big.bin > /dev/null; done
