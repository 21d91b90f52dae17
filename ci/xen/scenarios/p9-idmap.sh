#!/bin/sh
# p9-idmap: two guests, one volume, disjoint owners. pvfs share add gives g-id1 export vm1
# with uid and gid ranges 0:100000:65536; g-id2 gets export vm2 with pvfs share add and then
# the ranges 0:200000:65536 with pvfs share set, while it is attached. Each guest's root
# (domu/guest-idmap.sh) creates a file and a directory and sees them owned by 0:0; g-id1's root
# reads a 0600 file of guest uid 1 (root of a range is privileged over its range). Then
# g-id2's share is made read-only live (share set --ro): its next write, and a write through
# a file it holds open, fail with EROFS; g-id1's root is squashed live (share set
# --squash-root) and can no longer read that 0600 file (EACCES). A policy key that does not
# parse is logged and changes nothing. After pvfs shut down, debugfs shows the guests' files
# owned by 100000 and 200000 on the volume, which is e2fsck-clean.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
IMG=/tmp/xe2e-idmap-volume.img
p9_need_pvfs_cli

# owner_on_disk PATH: "uid:gid" of PATH in the volume image, from debugfs
owner_on_disk() {
  debugfs -R "stat $1" $IMG 2>/dev/null | sed -n 's/.*User: *\([0-9]*\) *Group: *\([0-9]*\).*/\1:\2/p' | head -1
}

domu_initrd
T=/tmp/xe2e-idmap-tree
rm -rf $T; mkdir -p $T/exports/vm1 $T/exports/vm2
echo "private of uid 1" > $T/exports/vm1/private
chmod 600 $T/exports/vm1/private
chown 100001:100001 $T/exports/vm1/private
chown 100000:100000 $T/exports/vm1
chown 200000:200000 $T/exports/vm2
step mkfs "mkfs.ext4 -d of exports vm1 (owned by 100000) and vm2 (200000)" make_volume $T $IMG 64 || abort mkfs "mkfs.ext4 failed"
p9_start_pvfs $IMG

for n in 1 2; do
  step create-$n "xl create guest g-id$n with no p9 device" xl create /etc/xen/guests/linux-pv.cfg "name=\"g-id$n\"" \
    "extra=\"$GUEST_ARGS xe2e.guest=idmap xe2e.idrole=vm$n\"" || abort create "xl create failed"
done
step add-1 "pvfs share add g-id1 --tag ids --path /exports/vm1 --uid-map 0:100000:65536 --gid-map 0:100000:65536" \
  $PVFS share add g-id1 --tag ids --path /exports/vm1 --uid-map 0:100000:65536 --gid-map 0:100000:65536 --timeout 60 \
  || fail add-1 "share add failed"
step add-2 "pvfs share add g-id2 --tag ids --path /exports/vm2" $PVFS share add g-id2 --tag ids --path /exports/vm2 --timeout 60 \
  || fail add-2 "share add failed"
step set-2 "pvfs share set g-id2 ids --uid-map 0:200000:65536 --gid-map 0:200000:65536" \
  $PVFS share set g-id2 ids --uid-map 0:200000:65536 --gid-map 0:200000:65536 || fail set-2 "share set failed"
echo "XE2E INFO share ls: $($PVFS share ls 2>&1 | tr '\n' '|')"
out=$($PVFS share ls --json 2>&1)
check ls-json "share ls --json does not show the maps: $out" sh -c "echo '$out' | grep -q '\"uid_map\":\"0:100000:65536\"' && echo '$out' | grep -q '\"uid_map\":\"0:200000:65536\"'"
expect_bad() {
  _err=$("$@" 2>&1 >/dev/null); _rc=$?
  if [ "$_rc" = 2 ] && [ "$(echo "$_err" | wc -l)" = 1 ]; then pass bad-map; echo "XE2E INFO bad-map: exit 2: $_err"
  else fail bad-map "exit $_rc (want 2): $(echo "$_err" | tr '\n' ' ')"; fi
}
expect_bad $PVFS share set g-id1 ids --uid-map 0:100000:65536,10:300000:5

for n in 1 2; do
  step created-$n "g-id$n's root created files it sees as 0:0" wait_until 180 console_has g-id$n "XE2E-GUEST IDMAP created ok" \
    || { fail created-$n "no 'created ok' from g-id$n"; diagnostics; }
done
step own-range "g-id1's root reads a 0600 file of its range" wait_until 60 console_has g-id1 "XE2E-GUEST IDMAP own-range ok" \
  || fail own-range "no 'own-range ok' from g-id1"
if step ready-2 "g-id2 writes" wait_until 60 console_has g-id2 "XE2E-GUEST IDMAP ready"; then
  step ro "pvfs share set g-id2 ids --ro" $PVFS share set g-id2 ids --ro || fail ro "share set --ro failed"
  step erofs "g-id2's next write fails with EROFS" wait_until 120 console_has g-id2 "XE2E-GUEST IDMAP erofs ok" \
    || fail erofs "no 'erofs ok' from g-id2"
else
  fail ready-2 "no 'ready' from g-id2"
fi
step squash "pvfs share set g-id1 ids --squash-root" $PVFS share set g-id1 ids --squash-root || fail squash "share set --squash-root failed"
step denied "g-id1's squashed root cannot read the 0600 file" wait_until 120 console_has g-id1 "XE2E-GUEST IDMAP squashed-denied ok" \
  || fail denied "no 'squashed-denied ok' from g-id1"
be1=/local/domain/$pvfs_domid/backend/9pfs/$(domid_of g-id1)/0
xenstore-write "$be1/uid-map" "0:100000:0"
check bad-key-logged "pvfs did not log the bad key" wait_until 30 sh -c "xl dmesg | grep -q 'policy keys not valid'"
check policy-logged "pvfs did not log the policy changes" sh -c "xl dmesg | grep -q 'policy now ro'"
for g in g-id1 g-id2; do
  tr -d '\r' < "$CONSOLE_DIR/guest-$g.log" | grep -a 'XE2E-GUEST' | sed "s/^/[$g] /"
  if grep -aq 'XE2E-GUEST FAIL' "$CONSOLE_DIR/guest-$g.log"; then
    fail guest-$g "$(grep -a 'XE2E-GUEST FAIL' "$CONSOLE_DIR/guest-$g.log" | head -3 | tr -d '\r' | tr '\n' ' ')"
  else
    pass guest-$g
  fi
done
check erofs-open "no 'erofs-open ok' from g-id2" console_has g-id2 "XE2E-GUEST IDMAP erofs-open ok"
xl destroy g-id1; xl destroy g-id2
check pvfs-alive "pvfs is gone" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
for v in vm1:100000 vm2:200000; do
  for f in made-by-root dir-by-root; do
    p=/exports/${v%:*}/$f o=$(owner_on_disk /exports/${v%:*}/$f)
    echo "XE2E INFO on disk: $p $o"
    check "disk-${v%:*}-$f" "$p is $o on the volume, not ${v#*:}:${v#*:}" [ "$o" = "${v#*:}:${v#*:}" ]
  done
done
check_volume $IMG
rm -f $IMG; rm -rf $T
