#!/bin/sh
# Guest side of the p9-dedup scenario. xe2e.role=writer: for xe2e.secs seconds, rewrites two
# files of its copy of the tree (s/f1: a line with a counter; s/f2: 64 KiB of fresh random
# bytes) every half second, then checks that both read back as last written and prints their
# checksums. xe2e.role=reader: checksums every file of its copy three times, 20 s apart,
# while pvfs deduplicates the volume, and prints the last pass. Lines for dom0 start with
# "XE2E-GUEST ".
set -u
role=$(sed -n 's/.*xe2e\.role=\([a-z]*\).*/\1/p' /proc/cmdline)
secs=$(sed -n 's/.*xe2e\.secs=\([0-9]*\).*/\1/p' /proc/cmdline)
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST DEDUP MOUNTED $role"
up() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }
case $role in
  writer)
    end=$(($(up) + ${secs:-120})) i=0
    while [ "$(up)" -lt $end ]; do
      i=$((i + 1))
      printf 'version %d of f1\n' $i > /mnt/tree/s/f1 || echo "XE2E-GUEST FAIL write f1 $i"
      dd if=/dev/urandom of=/tmp/f2 bs=4k count=16 2>/dev/null
      cat /tmp/f2 > /mnt/tree/s/f2 || echo "XE2E-GUEST FAIL write f2 $i"
      sleep 0.5
    done
    [ "$(cat /mnt/tree/s/f1)" = "version $i of f1" ] || echo "XE2E-GUEST FAIL f1 reads $(cat /mnt/tree/s/f1)"
    cmp -s /tmp/f2 /mnt/tree/s/f2 || echo "XE2E-GUEST FAIL f2 is not what was written last"
    echo "XE2E-GUEST DEDUP WRITES $i f1=$(sha256sum /mnt/tree/s/f1 | cut -d' ' -f1) f2=$(sha256sum /mnt/tree/s/f2 | cut -d' ' -f1)"
    ;;
  reader)
    for pass in 1 2 3; do
      (cd /mnt && find tree -type f | LC_ALL=C sort | xargs sha256sum) > /tmp/sums.$pass
      [ $pass = 1 ] || cmp -s /tmp/sums.1 /tmp/sums.$pass || echo "XE2E-GUEST FAIL pass $pass differs: $(diff /tmp/sums.1 /tmp/sums.$pass | head -3 | tr '\n' ' ')"
      [ $pass = 3 ] || sleep 20
    done
    sed 's/^/XE2E-GUEST SUM /' /tmp/sums.3
    ;;
  *) echo "XE2E-GUEST FAIL no xe2e.role" ;;
esac
umount /mnt || echo "XE2E-GUEST FAIL umount"
echo "XE2E-GUEST DEDUP DONE $role"
