#!/bin/sh
# Guest side of p9-multi: one of N guests that run the same workload at the same time, each
# through its own device ("share") in its own directory gIDX of the export, all meeting at
# barriers in its directory "common" (p9check barrier). Phases, each started together by all N guests: dd of MIB MiB
# written with conv=fsync at bs=1M, read back at bs=1M, and FILES files created, stat'ed and
# removed (p9meta). Each guest prints "XE2E-GUEST BENCH <phase> <seconds>"; dom0 divides the
# work of all N guests by the slowest guest's time.
set -u
idx=0 n=1 run=r mib=64 files=2000
for a in $(cat /proc/cmdline); do
  case $a in
    xe2e.idx=*) idx=${a#xe2e.idx=} ;; xe2e.n=*) n=${a#xe2e.n=} ;; xe2e.run=*) run=${a#xe2e.run=} ;;
    xe2e.mib=*) mib=${a#xe2e.mib=} ;; xe2e.files=*) files=${a#xe2e.files=} ;;
  esac
done
mkdir -p /m
mount -t 9p -o trans=xen,version=9p2000.L share /m || { echo "XE2E-GUEST FAIL mount"; exit 1; }
W=/m/g$idx C=/m/common
[ -d "$W" ] && [ -d "$C" ] || { echo "XE2E-GUEST FAIL no $W or $C in the export"; exit 1; }
echo "XE2E-GUEST MULTI MOUNTED"
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
meet() { /guest/p9check barrier "$C" "$run-$1" "$idx" "$n" || { echo "XE2E-GUEST FAIL barrier $1"; exit 1; }; }
meet start
t0=$(up); dd if=/dev/zero of="$W/multi.bin" bs=1M count="$mib" conv=fsync 2>/tmp/dd.err || echo "XE2E-GUEST FAIL write: $(tail -1 /tmp/dd.err)"; t1=$(up)
echo "XE2E-GUEST BENCH write-1M $(secs $t0 $t1)"
meet read
echo 3 > /proc/sys/vm/drop_caches
t0=$(up); dd if="$W/multi.bin" of=/dev/null bs=1M 2>/tmp/dd.err || echo "XE2E-GUEST FAIL read: $(tail -1 /tmp/dd.err)"; t1=$(up)
echo "XE2E-GUEST BENCH read-1M $(secs $t0 $t1)"
sz=$(stat -c %s "$W/multi.bin")
[ "$sz" = $((mib * 1048576)) ] || echo "XE2E-GUEST FAIL size: $sz"
rm -f "$W/multi.bin"
meet meta
mkdir "$W/meta"
t0=$(up); /guest/p9meta "$W/meta" "$files" > /tmp/meta.out || echo "XE2E-GUEST FAIL p9meta: $(grep FAIL /tmp/meta.out | head -1)"; t1=$(up)
echo "XE2E-GUEST BENCH meta $(secs $t0 $t1)"
rmdir "$W/meta" || echo "XE2E-GUEST FAIL rmdir meta"
umount /m && echo "XE2E-GUEST BENCH DONE"
