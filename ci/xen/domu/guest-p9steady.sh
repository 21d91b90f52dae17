#!/bin/sh
# Guest side of p9-destroy's bystander: mount the share and read data.bin (xe2e.file=NAME
# another file of the export) every 50 ms for xe2e.steady=SECONDS (default 60; xe2e.pause=MS
# sets the pause), checking every read against
# the first and printing progress every 2 s, while dom0 destroys another guest of the same pvfs
# mid-I/O (p9-destroy) or drives hostile devices at it (p9-hostile).
mkdir -p /mnt
secs=60 pause=50 file=data.bin
for a in $(cat /proc/cmdline); do
  case $a in
    xe2e.steady=*) secs=${a#xe2e.steady=} ;;
    xe2e.pause=*) pause=${a#xe2e.pause=} ;;
    xe2e.file=*) file=${a#xe2e.file=} ;;
  esac
done
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST MOUNTED"
rc=0
/guest/p9check steady "/mnt/$file" "$secs" "$pause" || rc=1
umount /mnt && echo "XE2E-GUEST UMOUNTED" || rc=1
exit $rc
