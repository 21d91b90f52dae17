#!/bin/sh
# blk: dom0 makes an ext4 image from a known tree (mkfs.ext4 -d) and starts pvfs with it as
# its disk (disk=[...] through blkback). pvfs connects blkfront, mounts the volume with its own
# ext4 engine, publishes data/pvfs/volume, reads every file and logs its sha256; the sums must
# equal dom0's. A raw sequential read of the whole 64 MiB disk in 1 MiB requests exercises indirect segments and
# reports blkfront throughput.
. /xe2e/lib.sh
IMG=/tmp/xe2e-pvfs-volume.img
READY_TIMEOUT=60

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
rm -rf /tmp/xe2e-tree
step tree "make a test tree (10 MiB)" make_test_tree /tmp/xe2e-tree || abort tree "cannot make the test tree"
step mkfs "mkfs.ext4 -d of the tree into a 64 MiB image" make_volume /tmp/xe2e-tree $IMG 64 || abort mkfs "mkfs.ext4 failed"
tree_sums /tmp/xe2e-tree > /tmp/xe2e-want.sums

step create "xl create $PVFS_CFG with disk=[ target=$IMG ]" xl create "$PVFS_CFG" \
  "disk=[ 'format=raw,vdev=xvda,access=rw,target=$IMG' ]" \
  'cmdline="pvfs.checksum_dir=/ pvfs.blkbench=64"' || abort create "xl create failed"
domid=$(domid_of "$name")
[ -n "$domid" ] || abort create "domain $name not listed after xl create"
info "$name is domain $domid"
status_ready() { [ "$(xenstore-read "/local/domain/$domid/data/pvfs/status" 2>/dev/null)" = ready ]; }
step ready "data/pvfs/status = ready" wait_until $READY_TIMEOUT status_ready || { fail ready "not ready"; diagnostics; }

vol=$(xenstore-read "/local/domain/$domid/data/pvfs/volume" 2>&1)
info "data/pvfs/volume: $vol"
case "$vol" in
  *'label="xe2evol"'*) pass volume ;;
  *) fail volume "data/pvfs/volume does not describe the xe2evol image: $vol" ;;
esac

log=$CONSOLE_DIR/guest-$name.log
check checksums-logged "pvfs did not finish its checksums" console_has "$name" "pvfs: checksums done"
tr -d '\r' < "$log" | sed -n 's|^pvfs: checksum \([0-9a-f]*\) [0-9]* /\(.*\)$|\1  ./\2|p' | LC_ALL=C sort -k2 > /tmp/xe2e-got.sums
LC_ALL=C sort -k2 /tmp/xe2e-want.sums > /tmp/xe2e-want.sorted
if [ -s /tmp/xe2e-want.sorted ] && cmp -s /tmp/xe2e-want.sorted /tmp/xe2e-got.sums; then
  pass checksums
  info "$(wc -l < /tmp/xe2e-want.sorted) files read through blkfront + pvfs ext4 with matching sha256"
else
  fail checksums "pvfs checksums differ from dom0's: $(diff /tmp/xe2e-want.sorted /tmp/xe2e-got.sums | tr '\n' ' ' | cut -c1-400)"
fi
bench=$(tr -d '\r' < "$log" | grep -o 'blkbench read .*' | head -1)
if [ -n "$bench" ]; then
  info "pvfs blkfront raw sequential read: $bench"
  pass blkbench
else
  fail blkbench "no blkbench line from pvfs"
fi

# The backend goes away under a running pvfs: it must drain, close cleanly and stay up.
if step detach "xl block-detach $name xvda" xl block-detach "$name" xvda; then pass detach; else fail detach "xl block-detach failed"; fi
check detach-seen "pvfs did not see its backend closing" dmesg_has "$domid" "backend is closing"
check detach-closed "pvfs did not release the vbd" dmesg_has "$domid" "vbd 51712 (backend domain 0) closed"
grants_released() { xenstore-read "/local/domain/$domid/data/pvfs/stats" 2>/dev/null | grep -q "grants_granted=0 "; }
check detach-grants "pvfs kept grants after the detach: $(xenstore-read /local/domain/$domid/data/pvfs/stats 2>&1)" wait_until 10 grants_released
# Pages blkback still mapped when pvfs ended their grants are leaked, never reused, and counted.
leaked=$(xenstore-read "/local/domain/$domid/data/pvfs/stats" 2>/dev/null | sed -n 's/.*blk_leaked_pages=\([0-9]*\).*/\1/p')
info "pages blkback still mapped at the detach (leaked and counted by pvfs): ${leaked:-not published}"
check leak-counted "data/pvfs/stats has no blk_leaked_pages" test -n "$leaked"
check alive-after-detach "pvfs is not running after the detach" sh -c "xl list $name >/dev/null 2>&1"

step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
check gone "domain $domid still exists after xl destroy" wait_until 10 domain_gone "$name" "$domid"
be=/local/domain/0/backend/vbd/$domid
check backend-cleaned "blkback directory $be left behind" sh -c "! xenstore-read $be/51712/state >/dev/null 2>&1"
rm -f $IMG
