#!/bin/sh
# Guest side of p9-destroy's victim: mount the share and read data/big.bin back to back (no
# pause) until dom0 destroys this guest in the middle of its I/O.
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST LOOPING"
/guest/p9check steady /mnt/data/big.bin 100000 0
