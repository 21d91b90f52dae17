#!/bin/sh
# Guest side of the p9 scenario: mount the share served by pvfs over the Xen 9pfs transport,
# report checksums of every file, probe the export's limits, write (on a read-write export)
# and read. The work is done by /guest/p9check (ci/xen/domu/p9check.c), one static process per
# step, so that the guest starts few processes (see p9check.c for why). Lines for dom0 start
# with "XE2E-GUEST ".
set -u
mkdir -p /mnt
if ! mount -t 9p -o trans=xen,version=9p2000.L share /mnt; then
  echo "XE2E-GUEST FAIL mount"; dmesg | tail -20; exit 1
fi
echo "XE2E-GUEST MOUNTED"
rc=0
/guest/p9check sums /mnt || rc=1
/guest/p9check confine /mnt || rc=1
# A read-only export (pvfs.ro_exports) refuses the write probe ("WRITE refused"); a read-write
# one takes a small tree of new files, renames, links, removals and a chmod, flushed with sync,
# and reports the checksums of what it wrote ("WSUM") for dom0 to compare with the volume.
/guest/p9check writes /mnt || rc=1
[ ! -f /mnt/data/big.bin ] || /guest/p9check read /mnt/data/big.bin || rc=1
umount /mnt && echo "XE2E-GUEST UMOUNTED" || rc=1
exit $rc
