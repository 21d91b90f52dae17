#!/bin/sh
# Guest script "disk": mounts the ext4 volume on xvda read-only and prints the sha256 of every
# regular file ("XE2E-GUEST SUM <hash>  ./<path>"), then the raw read throughput of the vbd.
i=0
until [ -b /dev/xvda ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "XE2E-GUEST FAIL no /dev/xvda after 10s"; exit 1; }
  sleep 0.1
done
mkdir -p /mnt
mount -t ext4 -o ro /dev/xvda /mnt || { echo "XE2E-GUEST FAIL mount /dev/xvda failed"; dmesg | tail; exit 1; }
echo "XE2E-GUEST OK mounted $(grep ' /mnt ' /proc/mounts)"
(cd /mnt && find . -type f | LC_ALL=C sort | xargs sha256sum) | sed 's/^/XE2E-GUEST SUM /'
umount /mnt
t0=$(cut -d' ' -f1 /proc/uptime)
mib=$(($(cat /sys/block/xvda/size) / 2048))
dd if=/dev/xvda of=/dev/null bs=1M 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
echo "XE2E-GUEST INFO raw read of xvda: $mib MiB in $(awk -v a="$t0" -v b="$t1" -v m="$mib" 'BEGIN{d=b-a; if (d <= 0) d = 0.01; printf "%.2f s = %.1f MiB/s", d, m/d}')"
