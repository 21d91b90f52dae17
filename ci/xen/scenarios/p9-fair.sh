#!/bin/sh
# p9-fair (a measurement, `cargo xtask bench fairness`): does a guest that streams large writes
# slow down another guest's small requests? Two guests mount the same export, each through its
# own device (domu/guest-p9fair.sh). The small one measures the latency of stat (three round
# trips: walk, getattr, clunk) over FAIR_N stats alone, then again while its neighbour writes
# 1 MiB blocks (two 512 KiB Twrites each) without pause. The figure is the ratio of the two
# medians; the bar is at most 2 (issue: "a guest that streams 1 MiB writes cannot starve one
# that does stats"). pvfs serves its rings in turn, one request each per pass
# (kernel/src/p9back.rs, `Service::poll`), so the small guest waits behind at most one write
# of its neighbour. pvfs's own figures for both devices (`pvfs top`) are printed while the
# neighbour streams. Fails if the ratio is over 2, a guest does not finish, pvfs is gone, or
# the volume is not e2fsck-clean.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
N=${FAIR_N:-2000}

p9_setup $IMG
share="tag=share,path=/exports/vm1,security_model=none,backend=$name"
step create-small "xl create g-small" xl create /etc/xen/guests/linux-pv.cfg 'name="g-small"' \
  "p9=[ '$share' ]" "extra=\"$GUEST_ARGS xe2e.guest=p9fair xe2e.fair=small xe2e.fair_n=$N\"" || abort create-small "xl create failed; device model log: $(dm_log g-small)"
small=$(domid_of g-small)
step alone "g-small measured stat alone" wait_until 600 console_has g-small "XE2E-GUEST FAIR ALONE-DONE" || abort alone "no ALONE-DONE from g-small"
step create-stream "xl create g-stream" xl create /etc/xen/guests/linux-pv.cfg 'name="g-stream"' \
  "p9=[ '$share' ]" "extra=\"$GUEST_ARGS xe2e.guest=p9fair xe2e.fair=stream\"" || abort create-stream "xl create failed; device model log: $(dm_log g-stream)"
stream=$(domid_of g-stream)
if step with "g-small measured stat next to the stream" wait_until 900 console_has g-small "XE2E-GUEST LAT with-stream"; then
  # the neighbour still streams until it sees "done" (at most one more 16 MiB round)
  pvfs top -b -n 2 --backend "$pvfs_domid" 2>&1 | sed 's/^/XE2E INFO top: /'
fi
for g in g-small:$small g-stream:$stream; do
  n=${g%%:*} d=${g#*:}
  [ -z "$d" ] || wait_until 600 domain_gone "$n" "$d" || { fail "finished-$n" "$n still running"; xl destroy "$n"; }
  log=$CONSOLE_DIR/guest-$n.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$n] /"
  if console_has "$n" "XE2E-GUEST FAIR DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then pass "run-$n"; else fail "run-$n" "$(grep -a 'XE2E-GUEST FAIL' "$log" | head -3 | tr -d '\r' | tr '\n' ' ')"; fi
done
# lat LABEL KEY: a figure of the small guest's LAT line
lat() { tr -d '\r' < "$CONSOLE_DIR/guest-g-small.log" | sed -n "s/^XE2E-GUEST LAT $1 .*$2=\([0-9]*\).*/\1/p" | head -1; }
a=$(lat alone p50_us) w=$(lat with-stream p50_us)
echo "XE2E INFO fair stat latency alone: n=$N p50 $(lat alone p50_us) us, p90 $(lat alone p90_us) us, p99 $(lat alone p99_us) us"
echo "XE2E INFO fair stat latency next to a stream: p50 $(lat with-stream p50_us) us, p90 $(lat with-stream p90_us) us, p99 $(lat with-stream p99_us) us"
if [ -n "$a" ] && [ -n "$w" ] && [ "$a" -gt 0 ]; then
  ratio=$(awk -v a="$a" -v w="$w" 'BEGIN { printf "%.2f", w / a }')
  echo "XE2E INFO fair median stat latency with a streaming neighbour / alone: $ratio (bar: at most 2)"
  check ratio "the median stat latency grew $ratio times next to the stream (bar: 2)" awk -v r="$ratio" 'BEGIN { exit !(r <= 2) }'
else
  fail ratio "no latency figures from g-small"
fi
check pvfs-alive "pvfs is gone after the run" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
