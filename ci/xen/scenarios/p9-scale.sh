#!/bin/sh
# p9-scale (a measurement, `cargo xtask bench scale`): SCALE_DEVICES 9pfs devices (default
# 1000) on one pvfs domain of 128 MiB. dom0 attaches every device to itself with `pvfs share
# add 0 --no-guest-wait` (one export, no guest needed; without the flag each add would give
# dom0's absent 9pfs driver 2 s to connect), then /usr/sbin/xfront load connects them all as a
# frontend (tools/xfront, over /dev/xen/gntalloc and /dev/xen/evtchn, one ring of at most
# order 3 each) and runs a session on each: version, attach, walk to a known file, open, read
# it (it must hold the known bytes), clunk. Every device must connect and answer. Printed:
# pvfs's heap before the first device and with all of them connected (so its heap per idle
# device), the ring orders pvfs offered (kernel/src/ringorder.rs), how long attaching and
# connecting took, and pvfs's own counters. Then xfront closes them as a frontend does, and
# pvfs must have released every device and stay up; the volume must be e2fsck-clean.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-scale-volume.img
PVFS=/usr/sbin/pvfs
XFRONT=/usr/sbin/xfront
N=${SCALE_DEVICES:-1000}
[ -x $PVFS ] || abort pvfs-binary "no $PVFS in dom0"
[ -x $XFRONT ] || abort xfront-binary "no $XFRONT in dom0"
[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
# dom0's own 9pfs frontend would take the devices made for dom0 (as in p9-hostile)
mods_9p=$(grep -E '/(9pnet_xen|9p)\.ko$' /etc/xe2e-modules)
rmmod 9p 2>/dev/null; rmmod 9pnet_xen 2>/dev/null
reload_9p() { for m in $mods_9p; do grep -q "^$(basename "$m" .ko) " /proc/modules || insmod "/lib/modules/$m"; done; }
trap reload_9p EXIT
# xfront grants 1 + 8 pages a device; the gntalloc driver allows 1024 pages by default
[ -w /sys/module/xen_gntalloc/parameters/limit ] && echo $((N * 9 + 1024)) > /sys/module/xen_gntalloc/parameters/limit

rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/scale
echo "known bytes for the scale test" > $P9_TREE/exports/scale/known.txt
cp $P9_TREE/exports/scale/known.txt /tmp/xe2e-known.txt
step mkfs "mkfs.ext4 -d of the export into a 64 MiB image" make_volume $P9_TREE $IMG 64 || abort mkfs "mkfs.ext4 failed"
# 128 MiB, and event channels for 1000 devices (two a device: xfront uses one ring, Linux two)
PVFS_XL_EXTRA="on_reboot=\"preserve\" memory=128 max_event_channels=$((N * 2 + 64))"
p9_start_pvfs $IMG
heap0=$(p9_stat heap_live_bytes)
t0=$(cut -d' ' -f1 /proc/uptime)
i=1 added=0
while [ $i -le $N ]; do
  if $PVFS share add 0 --tag s$i --path /exports/scale --timeout 60 --no-guest-wait --backend "$pvfs_domid" > /tmp/xe2e-add.out 2>&1; then
    added=$((added + 1))
  else
    echo "XE2E INFO share add s$i: $(cat /tmp/xe2e-add.out)"
    break
  fi
  [ $((i % 100)) = 0 ] && echo "XE2E INFO attached $i devices in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.0f", b - a }') s"
  i=$((i + 1))
done
check attached "only $added of $N devices attached" [ "$added" = "$N" ]
grep -q 'raised' /tmp/xe2e-add.out 2>/dev/null && cat /tmp/xe2e-add.out | sed 's/^/XE2E INFO /'
rm -f /tmp/xe2e-release
$XFRONT load s /known.txt /tmp/xe2e-known.txt /tmp/xe2e-release > /tmp/xe2e-load.out 2>&1 &
xpid=$!
if step connected "xfront connected and read from every device" wait_until 3600 grep -q 'XFRONT LOAD connected=' /tmp/xe2e-load.out; then
  grep 'XFRONT LOAD' /tmp/xe2e-load.out | head -20 | sed 's/^/XE2E INFO /'
  check all-answered "not every device answered: $(grep 'XFRONT LOAD connected=' /tmp/xe2e-load.out)" grep -q "XFRONT LOAD connected=$N answered=$N failed=0" /tmp/xe2e-load.out
  sleep 2
  heap1=$(p9_stat heap_live_bytes) cache1=$(p9_stat cache_bytes)
  echo "XE2E INFO pvfs with $N devices connected: heap_live_bytes $heap1 (cache $cache1), before the first $heap0: $(( (heap1 - cache1 - heap0) / N )) bytes a device outside the block cache"
  echo "XE2E INFO pvfs offered ring orders: $(xl dmesg | sed -n 's/.*offered ring order \([0-9]*\)).*/\1/p' | sort -n | uniq -c | awk '{ printf "%s at order %s, ", $1, $2 }')"
  echo "XE2E INFO pvfs status: $(p9_stat devices_connected) devices connected, $(p9_stat grants_mapped) grants mapped, $(p9_stat window_free_frames) window frames free"
  check connected-count "pvfs counts $(p9_stat devices_connected) devices connected" [ "$(p9_stat devices_connected)" = "$N" ]
else
  fail connected "xfront did not finish: $(tail -5 /tmp/xe2e-load.out | tr '\n' ' ')"
fi
: > /tmp/xe2e-release
wait $xpid
grep 'XFRONT LOAD closed' /tmp/xe2e-load.out | sed 's/^/XE2E INFO /'
# xfront closed every device as a frontend does: pvfs must have let go of each (its rings
# unmapped, its grants released); the devices' directories go with pvfs's domain below
if step released "pvfs released all $N devices" wait_until 120 p9_released "$added"; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
check pvfs-alive "pvfs is gone after $N devices" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
