#!/bin/sh
# p9-cycle: one Linux guest attaches and detaches its pvfs share 20 times (mount, read, write,
# umount, unbind and rebind the device from the 9pnet_xen frontend driver). Every cycle must work, and pvfs's own
# counters (data/pvfs/stats) sampled while nothing is attached after cycle 5 and after cycle 20
# must show no growth: no mapped grants, the same free frames in the mapping window, and the
# same heap use.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
p9_volume $IMG
p9_start_pvfs $IMG
want=$(sed -n 's/  *\.\/hello\.txt$//p' /tmp/xe2e-want-vm1.sums)

step create-guest "xl create g-cycle (export vm1)" \
  xl create /etc/xen/guests/linux-pv.cfg 'name="g-cycle"' \
  "p9=[ 'tag=share,path=/exports/vm1,security_model=none,backend=$name' ]" \
  'extra="console=hvc0 loglevel=4 xe2e.guest=p9cycle"' || abort create-guest "xl create failed"
d=$(domid_of g-cycle)

detached_idle() { [ "$(p9_stat devices_connected)" = 0 ] && [ "$(p9_stat grants_mapped)" = 0 ]; }
sample() {
  step "cycle-$1" "cycle $1 done and detached" wait_until 240 console_has g-cycle "XE2E-GUEST CYCLE $1 detached" \
    || { fail "cycle-$1" "guest never finished cycle $1"; diagnostics; return 1; }
  wait_until 5 detached_idle || { fail "idle-$1" "pvfs still holds the device: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats)"; return 1; }
  sleep 1
  xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" > /tmp/xe2e-stats-$1
  info "stats after cycle $1: $(cat /tmp/xe2e-stats-$1)"
}
sample 5
sample 20
step guest-done "g-cycle powers off" wait_until 60 domain_gone g-cycle "$d" || fail guest-done "g-cycle still running"

log=$CONSOLE_DIR/guest-g-cycle.log
tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | head -40
check cycles-done "not all 20 cycles ran" console_has g-cycle "XE2E-GUEST CYCLES done 20"
if grep -aq 'XE2E-GUEST CYCLE .* FAIL' "$log"; then fail cycle-ops "$(tr -d '\r' < "$log" | grep -a 'FAIL' | tr '\n' ' ' | cut -c1-300)"; else pass cycle-ops; fi
n=$(tr -d '\r' < "$log" | grep -ac "detached hello=$want")
if [ "$n" = 20 ]; then pass cycle-reads; else fail cycle-reads "$n of 20 cycles read hello.txt correctly"; fi
get() { tr ' ' '\n' < "/tmp/xe2e-stats-$1" | sed -n "s/^$2=//p"; }
for k in grants_mapped window_free_frames heap_live_bytes heap_live_allocs; do
  a=$(get 5 $k) b=$(get 20 $k)
  if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "flat-$k"; info "$k: $a after cycle 5 and after cycle 20"; else fail "flat-$k" "$k $a after cycle 5, $b after cycle 20"; fi
done
c=$(get 20 connects) x=$(get 20 disconnects)
if [ "$c" = 20 ] && [ "$x" = 20 ]; then pass connects; else fail connects "connects=$c disconnects=$x (want 20 each)"; fi
check pvfs-alive "pvfs is gone" p9_status_ready
step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
rm -f $IMG
