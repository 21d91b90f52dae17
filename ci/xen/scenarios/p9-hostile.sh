#!/bin/sh
# p9-hostile: a hostile 9pfs frontend next to a well-behaved guest. A guest (g-steady) reads
# its export in a loop, checking every read against the first and timing each one. Meanwhile
# dom0 attaches one device after another to itself (pvfs share add 0) and drives each with
# /usr/sbin/xfront (tools/xfront), a frontend with its own grants and event channel, through
# one hostile case: a size field below a header (torn-short), a message published in part
# and completed 2 s later (torn-long), out_prod far beyond the ring (lying-index), a 1 GiB size
# field (oversize), requests without reading replies (flood), walks to new fids until refused
# (fids), and a Tflush storm (flush-storm). For each, pvfs must disconnect the device or
# answer with errors, and stay up; the guest must see no failed or wrong read and no read
# longer than 1 s while the hostile devices run; after the last device is gone pvfs's heap must
# be back near where it was before the first, and it must hold only the guest's device and
# grants. The guest reads for BASELINE seconds before the first hostile device: when the
# emulated machine itself (a loaded host) already stalls reads then, the limit is twice the
# longest read of that quiet window, and the scenario says so.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-hostile-volume.img
PVFS=/usr/sbin/pvfs
XFRONT=/usr/sbin/xfront
# the guest's read loop: longer than every case together (3-6 min under TCG, with a loaded
# host); the guest is destroyed once they are done, its log judged as it stands
STEADY=${HOSTILE_STEADY:-1200}
BASELINE=30
# how far above its level before the first hostile device pvfs's heap may stay afterwards
HEAP_SLACK=262144
CASES="torn-short torn-long lying-index oversize flood fids flush-storm"

[ -x $PVFS ] || abort pvfs-binary "no $PVFS in dom0"
[ -x $XFRONT ] || abort xfront-binary "no $XFRONT in dom0"
[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"

# dom0's own 9pfs frontend (Linux's 9pnet_xen) would take the devices made for dom0: unload
# it for this scenario, and load it again at the end for the scenarios after this one.
mods_9p=$(grep -E '/(9pnet_xen|9p)\.ko$' /etc/xe2e-modules)
rmmod 9p 2>/dev/null; rmmod 9pnet_xen 2>/dev/null
check no-dom0-frontend "9pnet_xen is still loaded in dom0" sh -c "! grep -q '^9pnet_xen ' /proc/modules"
reload_9p() { for m in $mods_9p; do grep -q "^$(basename "$m" .ko) " /proc/modules || insmod "/lib/modules/$m"; done; }
trap reload_9p EXIT   # also when the scenario aborts
# dom0's frontend nodes of an earlier attempt whose pvfs died (the test bed retries a fault
# of the emulated machine) outlive that pvfs, and `share add 0` would refuse their tags
xenstore-rm /local/domain/0/device/9pfs 2>/dev/null

domu_initrd
p9_volume $IMG
p9_start_pvfs $IMG
# the longest read (reads over 500 ms are printed with their start; 0: none) from $1 to $2 s
# of g-steady's loop
longest() {
  tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | sed -n 's/.*STEADY slow read at \([0-9.]*\)s: \([0-9]*\) ms.*/\1 \2/p' |
    awk -v a="$1" -v b="$2" 'BEGIN { m = 0 } $1 >= a && $1 < b && $2 > m { m = $2 } END { print m }'
}
since_loop() { awk -v a="$t_loop" -v b="$1" 'BEGIN { printf "%.1f", b - a }'; }
pvfs_says() { xl dmesg | tr -d '\r' | grep -a -F "(d$pvfs_domid)" | grep -a -E "$1"; }

# The bystander as p9-destroy.sh starts its own, with this scenario's read interval and file,
# and a failure that ends the scenario (every case is judged by the bystander's reads).
step create-steady "xl create g-steady (export vm2, reads secret.txt every 20 ms for ${STEADY}s)" \
  xl create /etc/xen/guests/linux-pv.cfg 'name="g-steady"' \
  "p9=[ 'tag=share,path=/exports/vm2,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9steady xe2e.steady=$STEADY xe2e.pause=20 xe2e.file=secret.txt\"" || abort create-steady "xl create failed"
steady_id=$(domid_of g-steady)
step steady-reading "g-steady mounted and reads" wait_until 180 console_has g-steady "XE2E-GUEST STEADY at" \
  || abort steady-reading "g-steady never started reading"
# g-steady's loop started about 2 s before its first progress line: times below are on its clock
t_loop=$(awk -v t="$(now)" 'BEGIN { printf "%.1f", t - 2 }')
step baseline "g-steady reads with no hostile device for ${BASELINE}s" sleep $BASELINE
# pvfs's heap outside its block cache (which keeps what it read)
heap_other() { echo $(( $(p9_stat heap_live_bytes) - $(p9_stat cache_bytes || true) + 0 )); }
heap0=$(heap_other); allocs0=$(p9_stat heap_live_allocs); grants0=$(p9_stat grants_mapped)
info "pvfs before the hostile devices: heap outside the block cache $heap0 bytes, heap_live_allocs=$allocs0 grants_mapped=$grants0"
t_hostile=$(now); h_from=$(since_loop "$t_hostile")
peak=$heap0
for c in $CASES; do
  tag=h-$c
  if ! step add-$c "pvfs share add 0 --tag $tag" $PVFS share add 0 --tag $tag --path /exports/vm1 --timeout 30; then
    fail add-$c "share add failed"; continue
  fi
  t0=$(now)
  out=$($XFRONT $c --tag $tag 2>&1); rc=$?
  echo "$out" | sed 's/^/XE2E INFO /'
  echo "XE2E STEP p9-hostile/xfront-$c $(since $t0)s xfront $c exited $rc (from $(since_loop $t0)s to $(since_loop "$(now)")s of g-steady's loop)"
  if [ $rc = 0 ]; then pass $c; else fail $c "$(echo "$out" | tail -1)"; fi
  h=$(heap_other); [ "${h:-0}" -gt "$peak" ] && peak=$h
  if ! p9_pvfs_alive; then
    fail alive-$c "pvfs is gone after $c"
    pvfs_says "." | tail -20 | sed 's/^/XE2E INFO pvfs: /'
    pvfs_postmortem
    PVFS_CRASHED=1   # check_volume replays the journal into a copy first
    break
  fi
  pass alive-$c
  step rm-$c "pvfs share rm 0 $tag --force" $PVFS share rm 0 $tag --force --timeout 30 || fail rm-$c "share rm failed"
done
echo "XE2E STEP p9-hostile/hostile-phase $(since $t_hostile)s all cases"
h_to=$(since_loop "$(now)")
# what pvfs logged about dom0's devices: the evidence of each disconnect
pvfs_says "guest 0 |device 0/" | sed 's/^/XE2E INFO pvfs: /'
# g-steady prints its progress every 2 s: it must still have been reading after the last case
last_at() { tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | sed -n 's/.*STEADY at \([0-9.]*\)s .*/\1/p' | tail -1; }
read_past() { awk -v a="$(last_at)" -v b="$h_to" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
step steady-outlasted "g-steady still reads after the last case" wait_until 30 read_past
check steady-outlasted "g-steady's last progress at $(last_at)s of its loop, the cases ended at ${h_to}s" read_past

only_guest() { [ "$(p9_stat devices_connected)" = 1 ] && [ "$(p9_stat grants_mapped)" = "$grants0" ]; }
if step released "pvfs holds only g-steady's device and grants" wait_until 30 only_guest; then pass released
else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
heap_back() { [ "$(heap_other)" -le $((heap0 + HEAP_SLACK)) ]; }
step heap-back "pvfs's heap back within $HEAP_SLACK bytes of $heap0" wait_until 20 heap_back
heap1=$(heap_other); allocs1=$(p9_stat heap_live_allocs)
info "pvfs heap outside the block cache: before $heap0 bytes ($allocs0 allocations in all), highest after a case $peak, after $heap1 ($allocs1 allocations); cache_bytes=$(p9_stat cache_bytes)"
check heap-back "heap outside the block cache $heap1 bytes after, $heap0 before (slack $HEAP_SLACK)" heap_back
check pvfs-alive "pvfs is gone" p9_pvfs_alive

tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | grep -a -E 'STEADY error|STEADY mismatch|STEADY slow|FAIL' | sed 's/^/[g-steady] /'
no_bad_read() { ! grep -a -q -E 'STEADY error|STEADY mismatch|XE2E-GUEST FAIL|bad=[1-9]' "$CONSOLE_DIR/guest-g-steady.log"; }
check steady-correct "g-steady saw a failed or wrong read" no_bad_read
echo "XE2E INFO g-steady: $(tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | grep -a 'STEADY at' | tail -1)"
step destroy-steady "xl destroy g-steady" xl destroy g-steady
max_ms=$(longest 0 100000)
base_ms=$(longest 0 "$h_from"); hostile_ms=$(longest "$h_from" "$h_to")
limit=1000; [ $((2 * base_ms)) -gt $limit ] && limit=$((2 * base_ms))
info "g-steady's longest read: ${max_ms:-?} ms over its loop; ${base_ms} ms in the ${BASELINE}s before the hostile devices (0 = none over 500 ms), ${hostile_ms} ms while they ran (${h_from}s to ${h_to}s of its loop)"
[ $limit = 1000 ] || info "the emulated machine stalled reads up to ${base_ms} ms with no hostile device: the limit is ${limit} ms instead of 1000"
no_stall() { [ -n "$max_ms" ] && [ "$hostile_ms" -lt $limit ]; }
check no-stall "g-steady's longest read while the hostile devices ran took ${hostile_ms} ms (limit $limit)" no_stall

step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
reload_9p
check dom0-frontend-back "9pnet_xen could not be loaded again" grep -q '^9pnet_xen ' /proc/modules
