#!/bin/sh
# p9-destroy: a guest is destroyed in the middle of its I/O. g-loop reads back to back; a
# bystander guest of the same pvfs, started once g-loop reads, reads its own export (every
# read checked against the first) while g-loop is destroyed mid-read and afterwards. pvfs
# must stay up and release g-loop's device, the bystander must keep reading correctly through
# and after the destroy, and a new guest must attach afterwards and read its export correctly.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
STEADY=120

p9_setup $IMG "pvfs.ro_exports=/exports/vm2"

steady_lines() { grep -a -c 'XE2E-GUEST STEADY at' "$CONSOLE_DIR/guest-g-steady.log" 2>/dev/null; }
# g-loop first, then the bystander: the bystander's fixed window of reads (STEADY) starts
# once it is mounted, right before the destroy, however long either guest took to come up
# (Linux 6.12 guests took 50-70 s to mount under TCG next to a busy guest).
step create-loop "xl create guest g-loop (export vm1, reads back to back)" \
  xl create /etc/xen/guests/linux-pv.cfg 'name="g-loop"' \
  "p9=[ 'tag=share,path=/exports/vm1,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9loop\"" || fail create-loop "xl create failed"
step loop-reading "g-loop mounted and reads" wait_until 180 console_has g-loop "XE2E-GUEST LOOPING" \
  || { fail loop-reading "g-loop never started reading"; diagnostics; }
# The bystander as p9-hostile.sh starts its own, with this scenario's read interval and file,
# and a failure that lets the scenario go on to the destroy.
step create-steady "xl create bystander g-steady (export vm2, reads every 50 ms for ${STEADY}s)" \
  xl create /etc/xen/guests/linux-pv.cfg 'name="g-steady"' \
  "p9=[ 'tag=share,path=/exports/vm2,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9steady xe2e.steady=$STEADY\"" || fail create-steady "xl create failed"
steady_id=$(domid_of g-steady)
step steady-reading "g-steady mounted and reads" wait_until 180 console_has g-steady "XE2E-GUEST STEADY at" \
  || { fail steady-reading "g-steady never started reading"; diagnostics; }
sleep 3
step destroy-loop "xl destroy g-loop in the middle of its reads" xl destroy g-loop || fail destroy-loop "xl destroy failed"
n0=$(steady_lines)
check pvfs-alive-after-destroy "pvfs is gone after a guest was destroyed mid-I/O" p9_status_ready
steady_moved() { [ "$(steady_lines)" -ge $((n0 + 2)) ]; }
if step steady-after "g-steady keeps reading after the destroy" wait_until 30 steady_moved; then
  pass bystander-unaffected
else
  fail bystander-unaffected "g-steady printed no progress after g-loop's destroy"
fi
loop_released() { [ "$(p9_stat devices_connected)" = 1 ] && [ "$(p9_stat disconnects)" = 1 ]; }
if step loop-released "pvfs released g-loop's device" wait_until 30 loop_released; then pass loop-released; else fail loop-released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi

step create-after "xl create guest g-after (export vm2) after the destroy" \
  xl create /etc/xen/guests/linux-pv.cfg 'name="g-after"' \
  "p9=[ 'tag=share,path=/exports/vm2,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9\"" || fail create-after "xl create failed"
after_id=$(domid_of g-after)
after_gone() { [ -z "$after_id" ] || domain_gone g-after "$after_id"; }
step run-after "g-after mounts, reads and powers off" wait_until 120 after_gone || { fail run-after "still running"; diagnostics; }
tr -d '\r' < "$CONSOLE_DIR/guest-g-after.log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-got-after.sums
if cmp -s /tmp/xe2e-want-vm2.sums /tmp/xe2e-got-after.sums; then pass served-after-destroy; else fail served-after-destroy "g-after did not read vm2 correctly"; fi

steady_gone() { [ -z "$steady_id" ] || domain_gone g-steady "$steady_id"; }
step steady-done "g-steady finishes its ${STEADY}s of reads" wait_until 120 steady_gone || { fail steady-done "g-steady still running"; diagnostics; }
tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | grep -a -E 'STEADY DONE|STEADY error|STEADY mismatch|FAIL' | sed 's/^/[g-steady] /'
check steady-correct "g-steady saw a failed or wrong read" console_has g-steady "XE2E-GUEST DONE rc=0"
sum=$(tr -d '\r' < "$CONSOLE_DIR/guest-g-steady.log" | sed -n 's/.*STEADY DONE .* sha256=//p')
if grep -q "^$sum  ./data.bin\$" /tmp/xe2e-want-vm2.sums 2>/dev/null && [ -n "$sum" ]; then pass steady-data; else fail steady-data "g-steady's data.bin sha256 '$sum' is not the image's"; fi

if step released "pvfs released every ring" wait_until 20 p9_released 3; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
if step gone "pvfs powered off" wait_until 60 domain_gone "$name" "$pvfs_domid"; then pass gone; else fail gone "pvfs still running"; xl destroy "$name"; fi
check_volume $IMG
rm -f $IMG
