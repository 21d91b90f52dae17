#!/bin/sh
# Guest side of the p9-cycle scenario: attach and detach the 9pfs device 20 times from inside
# the guest. Each cycle mounts the share, reads hello.txt, writes and reads back a file,
# unmounts, and unbinds the device from the 9pnet_xen frontend driver (the frontend goes
# Closed and pvfs releases the rings); binding it again attaches it anew (the frontend
# reinitialises and pvfs maps fresh rings). (Unloading the module is not possible: Linux 6.1
# keeps a module reference after the first mount.) After cycles 5 and 20 the guest pauses so
# dom0 can sample pvfs's counters while nothing is attached.
set -u
dev=9pfs-0
drv=$(readlink -f /sys/bus/xen/devices/$dev/driver)
[ -d "$drv" ] || { echo "XE2E-GUEST CYCLE 0 FAIL no driver bound to $dev"; echo "XE2E-GUEST CYCLES done 0"; exit 1; }
mkdir -p /mnt
i=1
while [ $i -le 20 ]; do
  if ! mount -t 9p -o trans=xen,version=9p2000.L share /mnt; then
    echo "XE2E-GUEST CYCLE $i FAIL mount"; break
  fi
  sum=$(sha256sum /mnt/hello.txt | cut -d' ' -f1)
  echo "cycle $i" > /mnt/cycle-$i.txt || echo "XE2E-GUEST CYCLE $i FAIL write"
  [ "$(cat /mnt/cycle-$i.txt)" = "cycle $i" ] || echo "XE2E-GUEST CYCLE $i FAIL read-back"
  umount /mnt || { echo "XE2E-GUEST CYCLE $i FAIL umount"; break; }
  echo $dev > "$drv/unbind" || { echo "XE2E-GUEST CYCLE $i FAIL unbind"; break; }
  echo "XE2E-GUEST CYCLE $i detached hello=$sum"
  case $i in 5|20) sleep 6 ;; esac
  if [ $i -lt 20 ]; then
    echo $dev > "$drv/bind" || { echo "XE2E-GUEST CYCLE $i FAIL bind"; break; }
  fi
  i=$((i+1))
done
echo "XE2E-GUEST CYCLES done $((i-1))"
