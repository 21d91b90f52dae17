#!/bin/sh
# linux-pv-disk: dom0 makes an ext4 image from a known tree (mkfs.ext4 -d) and gives it to a
# Linux PV guest through blkback (disk=[...] with a file target, the same syntax as
# pvfs-stubdom.cfg); the guest reads every file and the checksums must match dom0's.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
NAME=linux-pv-disk
IMG=/tmp/xe2e-volume.img

domu_initrd
rm -rf /tmp/xe2e-tree
step tree "make a test tree (10 MiB)" make_test_tree /tmp/xe2e-tree || abort tree "cannot make the test tree"
step mkfs "mkfs.ext4 -d of the tree into a 64 MiB image" make_volume /tmp/xe2e-tree $IMG 64 \
  || abort mkfs "mkfs.ext4 failed"
tree_sums /tmp/xe2e-tree > /tmp/xe2e-want.sums

step create "xl create linux-pv with disk=[ target=$IMG ] (guest script: disk)" \
  xl create /etc/xen/guests/linux-pv.cfg "name=\"$NAME\"" \
  "disk=[ 'format=raw,vdev=xvda,access=ro,target=$IMG' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=disk\"" || abort create "xl create failed"
domid=$(domid_of $NAME)
info "$NAME is domain $domid"
be=/local/domain/0/backend/vbd/$domid/51712
info "blkback: state=$(xenstore-read $be/state 2>&1) params=$(xenstore-read $be/params 2>&1)"

if step run "guest boots, reads the volume and powers off" wait_until 120 domain_gone $NAME "$domid"; then
  pass poweroff
else
  fail poweroff "guest still running after 120s"
  diagnostics
fi
log=$CONSOLE_DIR/guest-$NAME.log
sed "s/^/[$NAME] /" "$log"
check guest-script "guest script did not report success" console_has $NAME "XE2E-GUEST DONE rc=0"
tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-got.sums
if [ -s /tmp/xe2e-want.sums ] && cmp -s /tmp/xe2e-want.sums /tmp/xe2e-got.sums; then
  pass checksums
  info "$(wc -l < /tmp/xe2e-want.sums) files read back with matching sha256"
else
  fail checksums "guest checksums differ from dom0's: $(diff /tmp/xe2e-want.sums /tmp/xe2e-got.sums | tr '\n' ' ' | cut -c1-300)"
fi
r=$(tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST INFO raw read of xvda: //p')
[ -n "$r" ] && info "blkback raw read from the guest: $r"
rm -f $IMG
