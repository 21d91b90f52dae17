#!/bin/sh
# p9: the vertical slice. dom0 makes an ext4 volume with two exports, starts pvfs with it,
# then two Linux PV guests at the same time, each with
#   p9=[ 'tag=share,path=/exports/vmN,security_model=none,backend=pvfs' ]
# Each guest mounts with trans=xen, and must see exactly its own export's files (sha256 equal
# to dom0's), must not reach the other export, and gets its writes refused (read-only until
# the ext4 write path lands). pvfs must end with no mapped grants and no connected devices.
# (Destroying a guest in the middle of its I/O is the p9-destroy scenario.)
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
READY_TIMEOUT=60

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
T=/tmp/xe2e-p9-tree
rm -rf $T; mkdir -p $T/exports/vm1/data $T/exports/vm2
echo "hello vm1" > $T/exports/vm1/hello.txt
dd if=/dev/urandom of=$T/exports/vm1/data/big.bin bs=1M count=4 2>/dev/null
ln -s ../vm2/secret.txt $T/exports/vm1/escape-link
echo "vm2 secret $(date +%s%N)" > $T/exports/vm2/secret.txt
dd if=/dev/urandom of=$T/exports/vm2/data.bin bs=64k count=3 2>/dev/null
step mkfs "mkfs.ext4 -d of two exports into a 64 MiB image" make_volume $T $IMG 64 || abort mkfs "mkfs.ext4 failed"
for v in vm1 vm2; do tree_sums $T/exports/$v > /tmp/xe2e-want-$v.sums; done

step create "xl create $PVFS_CFG with the volume" xl create "$PVFS_CFG" \
  "disk=[ 'format=raw,vdev=xvda,access=rw,target=$IMG' ]" || abort create "xl create failed"
pvfs_domid=$(domid_of "$name")
status_ready() { [ "$(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/status" 2>/dev/null)" = ready ]; }
step ready "pvfs ready" wait_until $READY_TIMEOUT status_ready || abort ready "pvfs not ready"

for v in vm1 vm2; do
  step "create-$v" "xl create guest $v with p9 backend=$name path=/exports/$v" \
    xl create /etc/xen/guests/linux-pv.cfg "name=\"g-$v\"" \
    "p9=[ 'tag=share,path=/exports/$v,security_model=none,backend=$name' ]" \
    'extra="console=hvc0 loglevel=4 xe2e.guest=p9"' || fail "create-$v" "xl create failed"
done
info "backend keys: $(xenstore-ls -f /local/domain/$pvfs_domid/backend/9pfs 2>&1 | head -30 | tr '\n' ';')"

for v in vm1 vm2; do
  d=$(domid_of g-$v)
  if [ -z "$d" ]; then
    # Already finished (guests run concurrently): its console log tells how it ended.
    if console_has "g-$v" "XE2E-GUEST DONE rc=0"; then pass "run-$v"; else fail "run-$v" "guest g-$v is gone without finishing"; fi
    continue
  fi
  if step "run-$v" "guest g-$v mounts, reads and powers off" wait_until 180 domain_gone g-$v "$d"; then pass "run-$v"; else fail "run-$v" "still running"; diagnostics; fi
done
for v in vm1 vm2; do
  log=$CONSOLE_DIR/guest-g-$v.log
  sed "s/^/[g-$v] /" "$log" | grep -E 'XE2E-GUEST|9p|9P' | head -60
  check "mount-$v" "guest $v did not mount" console_has "g-$v" "XE2E-GUEST MOUNTED"
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-got-$v.sums
  if [ -s /tmp/xe2e-want-$v.sums ] && cmp -s /tmp/xe2e-want-$v.sums /tmp/xe2e-got-$v.sums; then
    pass "checksums-$v"; info "$v: $(wc -l < /tmp/xe2e-want-$v.sums) files with matching sha256"
  else
    fail "checksums-$v" "$(diff /tmp/xe2e-want-$v.sums /tmp/xe2e-got-$v.sums | tr '\n' ' ' | cut -c1-300)"
  fi
  check "confined-dotdot-$v" "guest $v escaped with .." console_has "g-$v" "XE2E-GUEST CONFINED dotdot"
  check "write-refused-$v" "read-only export accepted a write" console_has "g-$v" "XE2E-GUEST WRITE refused"
  grep -a 'XE2E-GUEST READ' "$log" | sed 's/^XE2E-GUEST /XE2E INFO '"$v"' /'
done
check confined-symlink "vm1 read vm2's secret through a symlink" console_has g-vm1 "XE2E-GUEST CONFINED symlink"
if grep -qF "$(cat $T/exports/vm2/secret.txt)" "$CONSOLE_DIR/guest-g-vm1.log"; then fail isolation "vm2's secret appeared in vm1's output"; else pass isolation; fi

stats_clean() {
  s=$(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" 2>/dev/null)
  case "$s" in *"grants_mapped=0 "*"devices_connected=0 connects=2 disconnects=2"*) return 0 ;; esac
  return 1
}
if step released "pvfs released both guests' rings" wait_until 20 stats_clean; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
info "pvfs stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
check backend-dirs-removed "backend directories left behind" sh -c "[ -z \"\$(xenstore-list /local/domain/$pvfs_domid/backend/9pfs 2>/dev/null)\" ]"
check pvfs-alive "pvfs is gone" status_ready
step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
rm -f $IMG
