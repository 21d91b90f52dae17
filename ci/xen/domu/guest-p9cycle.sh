#!/bin/sh
# Guest side of the p9-cycle scenario: attach and detach the 9pfs device 20 times from inside
# the guest. Each cycle mounts the share, reads hello.txt, writes and reads back a file,
# unmounts, and unloads the 9pnet_xen frontend (the device goes Closing/Closed and pvfs
# releases it); loading the module again attaches it anew. After cycles 5 and 20 the guest
# pauses so dom0 can sample pvfs's counters while nothing is attached.
set -u
mod=$(grep '9pnet_xen' /etc/xe2e-modules)
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
  rmmod 9pnet_xen || { echo "XE2E-GUEST CYCLE $i FAIL rmmod"; break; }
  echo "XE2E-GUEST CYCLE $i detached hello=$sum"
  case $i in 5|20) sleep 6 ;; esac
  if [ $i -lt 20 ]; then
    insmod "/lib/modules/$mod" || { echo "XE2E-GUEST CYCLE $i FAIL insmod"; break; }
  fi
  i=$((i+1))
done
echo "XE2E-GUEST CYCLES done $((i-1))"
