#!/bin/sh
# Guest side of the p9 scenario: mount the share served by pvfs over the Xen 9pfs transport,
# report checksums of every file, and probe the export's limits. Lines for dom0 start with
# "XE2E-GUEST ".
set -u
mkdir -p /mnt
t0=$(cut -d' ' -f1 /proc/uptime)
if ! mount -t 9p -o trans=xen,version=9p2000.L share /mnt; then
  echo "XE2E-GUEST FAIL mount"; dmesg | tail -20; exit 1
fi
echo "XE2E-GUEST MOUNTED after $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')s"
grep ' 9p ' /proc/mounts | sed 's/^/XE2E-GUEST INFO mount: /'
ls -la /mnt | sed 's/^/XE2E-GUEST LS /'
(cd /mnt && find . -type f | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done) | sed 's/^/XE2E-GUEST SUM /'
# A symlink pointing outside the export resolves in the guest's own namespace, never on pvfs.
if [ -L /mnt/escape-link ]; then
  echo "XE2E-GUEST INFO escape-link -> $(readlink /mnt/escape-link)"
  if cat /mnt/escape-link >/dev/null 2>&1; then echo "XE2E-GUEST ESCAPE read-through-symlink"; else echo "XE2E-GUEST CONFINED symlink"; fi
fi
# ".." at the mount root is the guest's own directory, not the volume's.
if ls /mnt/../vm2 >/dev/null 2>&1 || ls /mnt/../exports >/dev/null 2>&1; then
  echo "XE2E-GUEST ESCAPE dotdot"
else
  echo "XE2E-GUEST CONFINED dotdot"
fi
# Writes: pvfs serves ext4 read-only until its write path lands.
if echo probe > /mnt/written-by-guest 2>/tmp/werr; then
  echo "XE2E-GUEST WRITE ok"
else
  echo "XE2E-GUEST WRITE refused: $(cat /tmp/werr)"
fi
t1=$(cut -d' ' -f1 /proc/uptime)
dd if=/mnt/data/big.bin of=/dev/null bs=1M 2>/tmp/dd.err
t2=$(cut -d' ' -f1 /proc/uptime)
echo "XE2E-GUEST READ big.bin bs=1M in $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2f", b-a}')s: $(tail -1 /tmp/dd.err)"
umount /mnt && echo "XE2E-GUEST UMOUNTED"
