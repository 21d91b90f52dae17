#!/bin/sh
# p9-attach: the `pvfs` commands in dom0 (/usr/sbin/pvfs, docs/pvfs-share.md) on a guest whose
# config has no p9 device, and on dom0 itself. pvfs share add attaches export vm1 as "late" to
# the running guest (domu/guest-attach.sh mounts, reads and writes it); share ls shows it;
# share set changes its quota live; dom0 attaches the same export to itself, mounts it, reads
# the guest's new file and writes one the guest reads. While the guest has the share mounted,
# share rm is refused (exit 11) and changes nothing; after the guest unmounts (its driver
# stays bound, Connected), share rm detaches it without --force and without an unbind, and
# dom0's own share likewise. The error cases a user meets are checked for their exit status,
# their one-line message and a clean xenstore, and so is xenstored's node quota on the live
# xenstored: refused with --no-raise-xenstore-quota, raised without. Afterwards no node of either device is left,
# pvfs has no device and no grant mapped, dom0 ran no process for the guest's share, and the
# volume is e2fsck-clean.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
IMG=/tmp/xe2e-attach-volume.img
p9_need_pvfs_cli

# expect_exit NAME STATUS TEXT CMD...: CMD must exit with STATUS and print TEXT (one line) on stderr
expect_exit() {
  _n=$1 _want=$2 _text=$3; shift 3
  _err=$("$@" 2>&1 >/dev/null); _rc=$?
  if [ "$_rc" = "$_want" ] && echo "$_err" | grep -qF -- "$_text" && [ "$(echo "$_err" | wc -l)" = 1 ]; then
    pass "$_n"; echo "XE2E INFO $_n: exit $_rc: $_err"
  else
    fail "$_n" "exit $_rc (want $_want), stderr: $(echo "$_err" | tr '\n' ' ')"
  fi
}
# nodes_of DOMID: how many xenstore nodes the guest's 9pfs devices have (frontend, backend,
# libxl), but the figures pvfs publishes while a device is in use (fids, stats), which come
# and go with the guest's requests (a directory left behind still counts)
nodes_of() {
  { xenstore-ls "/local/domain/$1/device/9pfs" 2>/dev/null
    xenstore-ls "/local/domain/$pvfs_domid/backend/9pfs/$1" 2>/dev/null
    xenstore-ls "/libxl/$1/device/9pfs" 2>/dev/null; } | grep -c -v -E '^ *(fids|stats) = '
}

domu_initrd
expect_exit no-pvfs 4 "pvfs" $PVFS share add 0 --tag t --path /exports/vm1 --timeout 3
p9_volume $IMG
p9_start_pvfs $IMG
step status "pvfs status --json" sh -c "$PVFS status --json | grep -q '\"ready\"'" || fail status "pvfs status --json does not say ready: $($PVFS status --json 2>&1 | head -3)"
expect_exit unknown-guest 5 "nosuchguest" $PVFS share add nosuchguest --tag t --path /exports/vm1

# xenstored's node quota for unprivileged domains (docs/pvfs-share.md), on the live xenstored:
# lowered to what pvfs's domain uses now plus 2, fewer than a device needs. share add with
# --no-raise-xenstore-quota must refuse (exit 9) and write nothing; without it, it must raise
# the quota and attach. No other unprivileged domain runs yet; the setting is put back after.
qnum() { sed -n "s/^$1 *: *\([0-9]*\).*/\1/p" | head -1; }
q0=$(xenstore-control quota 2>&1 | qnum nodes)
used=$(xenstore-control quota "$pvfs_domid" 2>&1 | qnum nodes)
echo "XE2E INFO xenstored: node quota $q0, pvfs's domain uses $used"
if [ -n "$q0" ] && [ -n "$used" ] && step xs-lower "xenstore-control quota set nodes $((used + 2))" xenstore-control quota set nodes $((used + 2)); then
  before=$(nodes_of 0)
  expect_exit xs-quota 9 "quota" $PVFS share add 0 --tag qt --path /exports/vm1 --no-raise-xenstore-quota --timeout 30
  check xs-quota-clean "a share refused for the quota left nodes ($before before, $(nodes_of 0) after)" [ "$before" = "$(nodes_of 0)" ]
  out=$($PVFS share add 0 --tag qt --path /exports/vm1 --timeout 60 2>&1); rc=$?
  echo "XE2E INFO share add with the quota short: exit $rc: $(echo "$out" | tr '\n' ' ')"
  q1=$(xenstore-control quota 2>&1 | qnum nodes)
  check xs-raised "share add did not raise the node quota and attach (exit $rc, quota now $q1)" \
    sh -c "[ $rc = 0 ] && [ ${q1:-0} -gt $((used + 2)) ] && echo \"\$1\" | grep -q 'raised xenstored' " _ "$out"
  step xs-rm "pvfs share rm 0 qt" $PVFS share rm 0 qt --timeout 30 || fail xs-rm "share rm failed"
  check xs-nodes-gone "the quota test's share left nodes: $(nodes_of 0)" [ "$(nodes_of 0)" = 0 ]
  check xs-restore "could not put the node quota back to $q0" xenstore-control quota set nodes "$q0"
else
  fail xs-quota "xenstored's quotas could not be read or set: $(xenstore-control quota 2>&1 | head -2 | tr '\n' ' ')"
fi

g=g-attach
step create "xl create guest $g with no p9 device" xl create /etc/xen/guests/linux-pv.cfg "name=\"$g\"" \
  "extra=\"$GUEST_ARGS xe2e.guest=attach\"" || abort create "xl create failed"
gid=$(domid_of $g)
step add "pvfs share add $g --tag late --path /exports/vm1" $PVFS share add $g --tag late --path /exports/vm1 --timeout 60 \
  || fail add "pvfs share add failed"
expect_exit duplicate-tag 7 "late" $PVFS share add $g --tag late --path /exports/vm2
# The guest may still be booting when `share add` returns ("accepted by pvfs; the guest has
# not connected yet"): its driver's keys come when it connects, so count after that.
wait_until 120 sh -c "[ \"\$(xenstore-read /local/domain/$gid/device/9pfs/0/state 2>/dev/null)\" = 4 ]" \
  || fail late-connected "g-attach's device 0 did not connect"
before=$(nodes_of $gid)
expect_exit not-a-directory 8 "not a directory" $PVFS share add $g --tag bad --path /exports/vm1/hello.txt --timeout 30
after=$(nodes_of $gid)
check refused-clean "a refused share left nodes behind ($before before, $after after)" [ "$before" = "$after" ]
step mounted "$g mounted the share it was given" wait_until 150 console_has $g "XE2E-GUEST ATTACH mounted ok" || { fail mounted "no 'mounted ok' from $g"; diagnostics; }
out=$($PVFS share ls --json 2>&1)
check ls "share ls --json does not show the share: $out" sh -c "echo '$out' | grep -q '\"late\"' && echo '$out' | grep -q '/exports/vm1'"
echo "XE2E INFO share ls: $($PVFS share ls 2>&1 | tr '\n' '|')"
check no-dm "dom0 runs a process for $g: $(ps | grep -E "qemu|9pfsd" | grep -v grep | tr '\n' ' ')" sh -c "! ps | grep -v grep | grep -qE 'qemu-system|xen-9pfsd'"
step set "pvfs share set $g late --max-space 8" $PVFS share set $g late --max-space 8 || fail set "share set failed"
step quota "$g sees the 8 MiB quota" wait_until 150 console_has $g "XE2E-GUEST ATTACH quota ok" || fail quota "no 'quota ok' from $g"

# dom0 as a frontend of the same export
mkdir -p /mnt/d0
step dom0-add "pvfs share add 0 --tag dom0 --path /exports/vm1" $PVFS share add 0 --tag dom0 --path /exports/vm1 --timeout 60 \
  || fail dom0-add "share add for dom0 failed"
if step dom0-mount "dom0 mounts its share" mount -t 9p -o trans=xen,version=9p2000.L dom0 /mnt/d0; then
  check dom0-reads "dom0 cannot read the guest's new file" sh -c '[ "$(cat /mnt/d0/from-guest)" = "written by the guest" ]'
  echo "written by dom0" > /mnt/d0/from-dom0 && sync
  step dom0-file "$g reads dom0's file" wait_until 150 console_has $g "XE2E-GUEST ATTACH dom0-file ok" || fail dom0-file "no 'dom0-file ok' from $g"
  # rm of a share the guest has mounted: refused, and nothing changes
  bd=/local/domain/$pvfs_domid/backend/9pfs/$gid/$(xenstore-list "/local/domain/$pvfs_domid/backend/9pfs/$gid" | head -1)
  wait_until 10 sh -c "[ \"\$(xenstore-read $bd/fids 2>/dev/null)\" -gt 0 ]"
  echo "XE2E INFO $g's share in use: fids=$(xenstore-read $bd/fids 2>&1)"
  before=$(xenstore-ls "/local/domain/$gid/device/9pfs"; xenstore-ls "$bd")
  expect_exit rm-mounted 11 "mounted" $PVFS share rm $g late --timeout 30
  after=$(xenstore-ls "/local/domain/$gid/device/9pfs"; xenstore-ls "$bd")
  # (fids and the device's figures, stats, may move meanwhile; everything else must be as it
  # was, without a detach request)
  b1=$(echo "$before" | grep -v -e '^fids ' -e '^stats ' | md5sum); a1=$(echo "$after" | grep -v -e '^fids ' -e '^stats ' | md5sum)
  check rm-mounted-intact "rm of the mounted share changed xenstore: $(echo "$before" | tr '\n' ' ') -> $(echo "$after" | tr '\n' ' ')" \
    [ "$b1" = "$a1" ]
  echo may > /mnt/d0/may-unmount && sync
  step still-mounted "$g still reads its mount" wait_until 150 console_has $g "XE2E-GUEST ATTACH still-mounted ok" || fail still-mounted "no 'still-mounted ok' from $g"
  step dom0-umount "dom0 unmounts" umount /mnt/d0 || fail dom0-umount "umount failed"
  step dom0-rm "pvfs share rm 0 dom0 (no --force; dom0's driver still bound)" $PVFS share rm 0 dom0 --timeout 30 || fail dom0-rm "share rm for dom0 failed"
else
  fail dom0-mount "mount failed: $(dmesg | tail -3 | tr '\n' ' ')"
fi
step unmounted "$g unmounted (its driver stays bound)" wait_until 150 console_has $g "XE2E-GUEST ATTACH unmounted ok" || fail unmounted "no 'unmounted ok' from $g"
echo "XE2E INFO $g's frontend state after umount: $(xenstore-read /local/domain/$gid/device/9pfs/0/state 2>&1)"
step rm "pvfs share rm $g late (no --force, no unbind)" $PVFS share rm $g late --timeout 30 || fail rm "share rm failed"
step device-gone "$g's driver let go of the device" wait_until 150 console_has $g "XE2E-GUEST ATTACH device-gone ok" || fail device-gone "no 'device-gone ok' from $g"
check nodes-gone "nodes left after share rm: $(nodes_of $gid)" [ "$(nodes_of $gid)" = 0 ]
check dom0-nodes-gone "dom0's share left nodes" [ "$(nodes_of 0)" = 0 ]
step released-in-pvfs "pvfs holds no device and maps no grant" wait_until 30 sh -c \
  "xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats | grep -q 'grants_mapped=0 .*devices_connected=0 '" \
  || fail released-in-pvfs "$(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats)"
tr -d '\r' < "$CONSOLE_DIR/guest-$g.log" | grep -a 'XE2E-GUEST' | sed "s/^/[$g] /"
if grep -aq 'XE2E-GUEST FAIL' "$CONSOLE_DIR/guest-$g.log"; then fail guest "$(grep -a 'XE2E-GUEST FAIL' "$CONSOLE_DIR/guest-$g.log" | head -3 | tr -d '\r' | tr '\n' ' ')"; else pass guest; fi
xl destroy $g
check pvfs-alive "pvfs is gone" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
