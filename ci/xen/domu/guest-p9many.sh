#!/bin/sh
# Guest side of p9-many: one of many guests at once, each on its own share. Mounts it,
# prints the checksums of what it finds (dom0 compares them with the export it made), then
# runs rounds (xe2e.rounds, default 3) of mixed work: the write probe (new files, renames,
# links, removals, a chmod), files (xe2e.meta, default 300) created, stat'ed and removed, and
# 4 MiB of random bytes written and compared after reading back; each round's end is printed
# with the guest's uptime. System calls only (p9check, p9meta), few processes: see p9check.c.
set -u
rounds=3 meta=300
for a in $(cat /proc/cmdline); do
  case $a in xe2e.rounds=*) rounds=${a#xe2e.rounds=} ;; xe2e.meta=*) meta=${a#xe2e.meta=} ;; esac
done
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST MANY MOUNTED"
/guest/p9check sums /mnt || echo "XE2E-GUEST FAIL sums"
dd if=/dev/urandom of=/tmp/rand.bin bs=1M count=4 2>/dev/null || echo "XE2E-GUEST FAIL urandom"
r=1
while [ $r -le "$rounds" ]; do
  mkdir -p /mnt/round$r
  /guest/p9check writes /mnt/round$r || echo "XE2E-GUEST FAIL writes round $r"
  mkdir /mnt/round$r/meta && /guest/p9meta /mnt/round$r/meta "$meta" || echo "XE2E-GUEST FAIL meta round $r"
  rmdir /mnt/round$r/meta || echo "XE2E-GUEST FAIL rmdir meta round $r"
  cp /tmp/rand.bin /mnt/round$r/rand.bin && cmp /tmp/rand.bin /mnt/round$r/rand.bin || echo "XE2E-GUEST FAIL rand round $r"
  echo "XE2E-GUEST MANY ROUND $r ok at $(cut -d' ' -f1 /proc/uptime) s"
  r=$((r + 1))
done
umount /mnt || echo "XE2E-GUEST FAIL umount"
echo "XE2E-GUEST MANY DONE"
