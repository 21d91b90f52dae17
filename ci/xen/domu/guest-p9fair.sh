#!/bin/sh
# Guest side of the p9-fair measurement (ci/xen/scenarios/p9-fair.sh). Two guests mount the
# same export through their own devices; xe2e.fair= on the kernel command line gives the role:
# - small: measures the latency of stat (p9lat: walk, getattr, clunk) alone, then waits for
#   the file "streaming" that its neighbour makes and measures again; then waits 40 s, in
#   which dom0 puts a rate limit on the neighbour's device, measures a third time and makes
#   "done";
# - stream: writes 1 MiB blocks (msize 512 KiB: each block is two 512 KiB Twrites) over and
#   over, makes "streaming" after the first 16 MiB, prints how long each 16 MiB took, and
#   stops when "done" appears.
# The files are the two guests' only channel: dom0 cannot see into pvfs's volume.
set -u
role=
N=2000
for a in $(cat /proc/cmdline); do
  case $a in xe2e.fair=*) role=${a#xe2e.fair=} ;; xe2e.fair_n=*) N=${a#xe2e.fair_n=} ;; esac
done
mkdir -p /mnt
up() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }
case $role in
small)
  mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
  echo "XE2E-GUEST FAIR MOUNTED"
  /guest/p9lat /mnt/hello.txt 200 warmup >/dev/null || echo "XE2E-GUEST FAIL warm-up"
  /guest/p9lat /mnt/hello.txt "$N" alone || echo "XE2E-GUEST FAIL p9lat alone"
  echo "XE2E-GUEST FAIR ALONE-DONE"
  end=$(($(up) + 900))
  while [ ! -e /mnt/streaming ]; do
    [ "$(up)" -lt $end ] || { echo "XE2E-GUEST FAIL no streaming neighbour within 900 s"; break; }
    sleep 1
  done
  /guest/p9lat /mnt/hello.txt "$N" with-stream || echo "XE2E-GUEST FAIL p9lat with-stream"
  echo "XE2E-GUEST FAIR WITH-DONE"
  sleep 40
  /guest/p9lat /mnt/hello.txt "$N" with-limited-stream || echo "XE2E-GUEST FAIL p9lat with-limited-stream"
  : > /mnt/done || echo "XE2E-GUEST FAIL done flag"
  umount /mnt || echo "XE2E-GUEST FAIL umount"
  echo "XE2E-GUEST FAIR DONE"
  ;;
stream)
  mount -t 9p -o trans=xen,version=9p2000.L,msize=524288 share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
  echo "XE2E-GUEST FAIR MOUNTED"
  end=$(($(up) + 900)) rounds=0
  while [ ! -e /mnt/done ]; do
    [ "$(up)" -lt $end ] || { echo "XE2E-GUEST FAIL the small guest never finished"; break; }
    t0=$(cut -d' ' -f1 /proc/uptime)
    dd if=/dev/zero of=/mnt/stream.bin bs=1M count=16 conv=notrunc 2>/tmp/dd.err || { echo "XE2E-GUEST FAIL write: $(tail -1 /tmp/dd.err)"; break; }
    t1=$(cut -d' ' -f1 /proc/uptime)
    rounds=$((rounds + 1))
    echo "XE2E-GUEST FAIR ROUND $rounds 16 MiB in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    [ $rounds = 1 ] && { : > /mnt/streaming || echo "XE2E-GUEST FAIL streaming flag"; }
  done
  echo "XE2E-GUEST FAIR STREAMED $((rounds * 16)) MiB"
  rm -f /mnt/stream.bin /mnt/streaming /mnt/done
  umount /mnt || echo "XE2E-GUEST FAIL umount"
  echo "XE2E-GUEST FAIR DONE"
  ;;
*) echo "XE2E-GUEST FAIL no xe2e.fair=small|stream" ;;
esac
