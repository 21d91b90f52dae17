#!/bin/sh
# p9-cycle: a Linux guest with a pvfs share is created and destroyed 20 times (xl 4.17 has no
# p9-attach; Linux 6.1's 9pfs frontend does not reconnect after an unbind). Each guest mounts,
# reads, overwrites one small file in place (so pvfs's block cache holds the same blocks in
# every cycle), unmounts and powers off. Every cycle must work, pvfs must release each device
# (backend directory removed), and its counters (data/pvfs/stats) after cycle 10 and after
# cycle 20 must show no growth: no mapped grants, the same free frames in the mapping window
# and the same number of heap allocations (bytes within a small bound, see below). Takes
# about 4 minutes in the emulated test bed (part of
# `cargo xtask test`; alone: XE2E_SCENARIO_TIMEOUT=900 ci/xen/run.sh p9-cycle).
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img

p9_setup $IMG
want=$(sed -n 's/  *\.\/hello\.txt$//p' /tmp/xe2e-want-vm1.sums)

released() {
  [ "$(p9_stat devices_connected)" = 0 ] && [ "$(p9_stat grants_mapped)" = 0 ] &&
    [ -z "$(xenstore-list /local/domain/$pvfs_domid/backend/9pfs 2>/dev/null)" ]
}
ok=0
i=1
while [ $i -le 20 ]; do
  t0=$(now)
  xl create /etc/xen/guests/linux-pv.cfg "name=\"g-cycle$i\"" \
    "p9=[ 'tag=share,path=/exports/vm1,security_model=none,backend=$name' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9once xe2e.cycle=$i\"" >/dev/null 2>&1 || { fail "cycle-$i" "xl create failed; device model log: $(dm_log g-cycle$i)"; break; }
  d=$(domid_of "g-cycle$i")
  [ -z "$d" ] || wait_until 180 domain_gone "g-cycle$i" "$d" || {
    fail "cycle-$i" "guest still running (frontend state $(xenstore-read /local/domain/$d/device/9pfs/0/state 2>&1), backend state $(xenstore-read /local/domain/$pvfs_domid/backend/9pfs/$d/0/state 2>&1))"
    diagnostics; xl destroy "g-cycle$i"; break; }
  wait_until 30 released || { fail "cycle-$i" "pvfs did not release the device: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats)"; break; }
  if console_has "g-cycle$i" "XE2E-GUEST CYCLE $i done hello=$want" && ! grep -aq "CYCLE $i FAIL" "$CONSOLE_DIR/guest-g-cycle$i.log"; then
    ok=$((ok+1))
  else
    fail "cycle-$i" "$(tr -d '\r' < "$CONSOLE_DIR/guest-g-cycle$i.log" | grep -a 'XE2E-GUEST' | tr '\n' ' ' | cut -c1-300)"
  fi
  info "cycle $i: $(since $t0)s"
  case $i in 10|20) xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" > /tmp/xe2e-stats-$i; info "stats after cycle $i: $(cat /tmp/xe2e-stats-$i)" ;; esac
  i=$((i+1))
done
if [ $ok = 20 ]; then pass cycles; else fail cycles "$ok of 20 cycles worked"; fi
get() { tr ' ' '\n' < "/tmp/xe2e-stats-$1" 2>/dev/null | sed -n "s/^$2=//p"; }
# Counters after cycle 10 and after cycle 20 (guest domids have two digits in both, so the
# xenstore paths pvfs handles have the same lengths).
for k in grants_mapped window_free_frames heap_live_allocs; do
  a=$(get 10 $k) b=$(get 20 $k)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "flat-$k"; info "$k: $a after cycle 10 and after cycle 20"; else fail "flat-$k" "$k '$a' after cycle 10, '$b' after cycle 20"; fi
done
# A leaked allocation shows in heap_live_allocs above. Heap bytes with the same allocations
# can still differ by buffers that are reused and sized by the messages in flight when the
# line is written (the stats line's own length follows the counters' digits): allow that
# line's length change plus 256 bytes, which ten cycles of a per-cycle growth would exceed.
a=$(get 10 heap_live_bytes) b=$(get 20 heap_live_bytes)
d=$(wc -c < /tmp/xe2e-stats-20) e=$(wc -c < /tmp/xe2e-stats-10)
abs() { if [ "$1" -lt 0 ]; then echo $((0 - $1)); else echo "$1"; fi; }
if [ -n "$a" ] && [ -n "$b" ] && [ "$(abs $((b - a)))" -le $(($(abs $((d - e))) + 256)) ]; then
  pass flat-heap_live_bytes; info "heap_live_bytes: $a after cycle 10, $b after cycle 20 (stats line $e and $d bytes)"
else
  fail flat-heap_live_bytes "heap_live_bytes $a after cycle 10, $b after cycle 20 (stats line $e and $d bytes)"
fi
c=$(get 20 connects) x=$(get 20 disconnects)
if [ "$c" = 20 ] && [ "$x" = 20 ]; then pass connects; else fail connects "connects=$c disconnects=$x (want 20 each)"; fi
check pvfs-alive "pvfs is gone" p9_status_ready
step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
got=$(debugfs -R "cat /exports/vm1/cycle.txt" $IMG 2>/dev/null)
if [ "$got" = "cycle 20" ]; then pass cycle-file; else fail cycle-file "cycle.txt holds '$got', not 'cycle 20'"; fi
rm -f $IMG
