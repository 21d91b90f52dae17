#!/bin/sh
# Guest side of the p9-attach scenario. The guest starts with no 9pfs device; dom0 attaches
# the share "late" with `pvfs share add`. The guest then:
#   1. mounts it (retrying until the device appears), reads hello.txt, writes from-guest:
#      "ATTACH mounted ok";
#   2. waits until statfs shows the 8 MiB quota dom0 sets with `pvfs share set`: "quota ok";
#   3. waits for from-dom0, which dom0 writes through its own mount of the export, and checks
#      its contents: "dom0-file ok";
#   4. keeps the share mounted until dom0, after its `pvfs share rm` was refused, writes
#      may-unmount: "still-mounted ok"; then unmounts, leaving its driver bound (Connected):
#      "unmounted ok";
#   5. waits until dom0's `pvfs share rm` (no --force) made the device go: "device-gone ok".
# Each step prints "XE2E-GUEST ATTACH <step> ok" or "XE2E-GUEST FAIL attach <step> …".
set -u
# One more wait of 0.5 s in a loop counting in i; after 240 of them (120 s) the step fails
# with the message "$1".
waited() {
  i=$((i + 1)); [ $i -lt 240 ] || { echo "XE2E-GUEST FAIL attach $1"; exit 1; }
  sleep 0.5
}
mkdir -p /mnt
i=0
until mount -t 9p -o trans=xen,version=9p2000.L late /mnt 2>/dev/null; do
  waited "mount: no share after 120 s"
done
got=$(cat /mnt/hello.txt 2>&1)
[ "$got" = "hello vm1" ] || { echo "XE2E-GUEST FAIL attach read hello.txt: $got"; exit 1; }
echo "written by the guest" > /mnt/from-guest || { echo "XE2E-GUEST FAIL attach write"; exit 1; }
sync
echo "XE2E-GUEST ATTACH mounted ok"
size_kib() { stat -f -c '%b %S' /mnt | awk '{ printf "%d", $1 * $2 / 1024 }'; }
i=0
until [ "$(size_kib)" -le 8192 ]; do
  # Not `waited`: the message's size is read only when the wait fails.
  i=$((i + 1)); [ $i -lt 240 ] || { echo "XE2E-GUEST FAIL attach quota: size stayed $(size_kib) KiB"; exit 1; }
  sleep 0.5
done
echo "XE2E-GUEST ATTACH quota ok size=$(size_kib)KiB"
i=0
until [ -f /mnt/from-dom0 ]; do
  waited "dom0-file: none after 120 s"
done
got=$(cat /mnt/from-dom0)
[ "$got" = "written by dom0" ] || { echo "XE2E-GUEST FAIL attach dom0-file: $got"; exit 1; }
echo "XE2E-GUEST ATTACH dom0-file ok"
# dom0 now tries `pvfs share rm` while this guest has the share mounted (it must be refused),
# then writes may-unmount through its own mount.
i=0
until [ -f /mnt/may-unmount ]; do
  waited "still-mounted: no may-unmount after 120 s"
done
got=$(cat /mnt/hello.txt 2>&1)
[ "$got" = "hello vm1" ] || { echo "XE2E-GUEST FAIL attach still-mounted: hello.txt reads $got"; exit 1; }
echo "XE2E-GUEST ATTACH still-mounted ok"
umount /mnt || { echo "XE2E-GUEST FAIL attach umount"; exit 1; }
# The driver stays bound (and Connected): dom0's `share rm` without --force detaches it.
echo "XE2E-GUEST ATTACH unmounted ok ($(ls -d /sys/bus/xen/devices/9pfs-* 2>/dev/null | tr '\n' ' '))"
i=0
while ls -d /sys/bus/xen/devices/9pfs-* >/dev/null 2>&1; do
  waited "device-gone: still there after 120 s"
done
echo "XE2E-GUEST ATTACH device-gone ok"
# stay up until dom0 has checked the detach (it destroys this guest)
sleep 600
