#!/bin/sh
# p9: the vertical slice. dom0 makes an ext4 volume with two exports, starts pvfs with it,
# then two Linux PV guests at the same time, each with
#   p9=[ 'tag=share,path=/exports/vmN,security_model=none,backend=pvfs' ]
# Each guest mounts with trans=xen, and must see exactly its own export's files (sha256 equal
# to dom0's) and must not reach the other export. vm1's export is read-write: the guest makes
# files, renames, links, removes and chmods, syncs, and reports checksums. vm2's export is
# read-only (pvfs.ro_exports) and refuses writes. The guests' first reads of the volume's
# files miss pvfs's cache, so pvfs must have put Treads aside for the disk (deferred_reads).
# pvfs must end with no mapped grants and no connected devices; after `xl shutdown` of pvfs the volume must pass e2fsck -fn and hold
# exactly what vm1 wrote (read back in dom0 with debugfs). On Xen 4.19 and later dom0 must run no
# process (device model) for the guests.
# (Destroying a guest in the middle of its I/O is the p9-destroy scenario.)
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img

p9_setup $IMG "pvfs.ro_exports=/exports/vm2"
T=$P9_TREE

for v in vm1 vm2; do
  step "create-$v" "xl create guest $v with p9 backend=$name path=/exports/$v" \
    xl create /etc/xen/guests/linux-pv.cfg "name=\"g-$v\"" \
    "p9=[ 'tag=share,path=/exports/$v,security_model=none,backend=$name' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9\"" || fail "create-$v" "xl create failed; device model log: $(dm_log g-$v)"
done
info "backend keys: $(xenstore-ls -f /local/domain/$pvfs_domid/backend/9pfs 2>&1 | head -30 | tr '\n' ';')"
# Which dom0 processes serve the guests: xl 4.17 and 4.18 start a QEMU device model for any p9
# device; from 4.19 on, libxl starts one only for a device of type=qemu served by dom0, and
# these configs give no type=.
for v in vm1 vm2; do
  id=$(domid_of g-$v)
  [ -n "$id" ] || { info "g-$v already finished: no process list"; continue; }
  procs=$(dom0_procs_for "$id")
  info "dom0 processes for g-$v (domain $id): ${procs:-none}; xenstore device-model node: $(xenstore-list /local/domain/0/device-model/$id >/dev/null 2>&1 && echo present || echo absent)"
  if xen_at_least 4.19; then
    check "no-dom0-process-$v" "dom0 runs a process for g-$v: $(echo "$procs" | tr '\n' ' ' | cut -c1-200)" [ -z "$procs" ]
  fi
done

# Both guests run at the same time; one deadline for the pair.
id1=$(domid_of g-vm1) id2=$(domid_of g-vm2)
# (a guest without an id had already finished when asked)
both_gone() { { [ -z "$id1" ] || domain_gone g-vm1 "$id1"; } && { [ -z "$id2" ] || domain_gone g-vm2 "$id2"; }; }
# (stop waiting if pvfs itself went away)
done_or_pvfs_gone() { ! p9_pvfs_alive || both_gone; }
if step run "both guests mount, read, write and power off" wait_until 240 done_or_pvfs_gone && both_gone; then pass run; else fail run "a guest is still running"; diagnostics; fi
if ! p9_pvfs_alive; then
  xl dmesg | grep -a -A8 'Triple fault' | head -20
  abort pvfs-survived "pvfs (domain $pvfs_domid) died while serving the guests"
fi
pass pvfs-survived
for v in vm1 vm2; do
  log=$CONSOLE_DIR/guest-g-$v.log
  tr -d '\r' < "$log" | grep -a -v -E '^XE2E-GUEST (W|WSUM|SUM) ' | grep -a 'XE2E-GUEST' | sed "s/^/[g-$v] /"
  check "done-$v" "guest $v's script did not succeed" console_has "g-$v" "XE2E-GUEST DONE rc=0"
  if ! check "mount-$v" "guest $v did not mount" console_has "g-$v" "XE2E-GUEST MOUNTED"; then
    echo "---- full console of g-$v ----"; tr -d '\r' < "$log" | tail -80
  fi
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-got-$v.sums
  if [ -s /tmp/xe2e-want-$v.sums ] && cmp -s /tmp/xe2e-want-$v.sums /tmp/xe2e-got-$v.sums; then
    pass "checksums-$v"; info "$v: $(wc -l < /tmp/xe2e-want-$v.sums) files with matching sha256"
  else
    fail "checksums-$v" "$(diff /tmp/xe2e-want-$v.sums /tmp/xe2e-got-$v.sums | tr '\n' ' ' | cut -c1-300)"
  fi
  check "confined-dotdot-$v" "guest $v escaped with .." console_has "g-$v" "XE2E-GUEST CONFINED dotdot"
done
check write-refused-vm2 "read-only export accepted a write" console_has g-vm2 "XE2E-GUEST WRITE refused"
check writes-vm1 "vm1 did not finish its writes" console_has g-vm1 "XE2E-GUEST WRITES DONE"
wlog=$CONSOLE_DIR/guest-g-vm1.log
if grep -a 'XE2E-GUEST WFAIL' "$wlog"; then fail write-ops-vm1 "$(tr -d '\r' < "$wlog" | grep -a 'WFAIL' | tr '\n' ' ' | cut -c1-300)"; else pass write-ops-vm1; fi
tr -d '\r' < "$wlog" | sed -n 's/^XE2E-GUEST WSUM //p' > /tmp/xe2e-wsum-guest
check confined-symlink "vm1 read vm2's secret through a symlink" console_has g-vm1 "XE2E-GUEST CONFINED symlink"
if grep -qF "$(cat $T/exports/vm2/secret.txt)" "$CONSOLE_DIR/guest-g-vm1.log"; then fail isolation "vm2's secret appeared in vm1's output"; else pass isolation; fi

if step released "pvfs released both guests' rings" wait_until 20 p9_released 2; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
info "pvfs stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
# The guests' first reads of the volume's files miss pvfs's cache: pvfs puts such a Tread
# aside while blkfront fetches its data, and runs the ring's other requests meanwhile.
d=$(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>/dev/null | tr ' ' '\n' | sed -n 's/^deferred_reads=//p')
check cold-reads-put-aside "no Tread was put aside while the disk fetched its data (deferred_reads=$d)" test "${d:-0}" -gt 0
check backend-dirs-removed "backend directories left behind" sh -c "[ -z \"\$(xenstore-list /local/domain/$pvfs_domid/backend/9pfs 2>/dev/null)\" ]"
check pvfs-alive "pvfs is gone" p9_status_ready

# A clean shutdown writes the volume back and marks it clean; dom0 then checks it.
step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
if step gone "pvfs powered off" wait_until 60 domain_gone "$name" "$pvfs_domid"; then pass gone; else fail gone "pvfs still running"; xl destroy "$name"; fi
check volume-closed "pvfs did not report a clean close" console_has "$name" "volume: written back and marked clean"
check_volume $IMG
D=/tmp/xe2e-p9-dump; rm -rf $D; mkdir -p $D
debugfs -R "rdump /exports/vm1/out $D" $IMG >/dev/null 2>&1
(cd $D && find out -type f | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done) > /tmp/xe2e-wsum-volume
info "vm1 wrote $(wc -l < /tmp/xe2e-wsum-guest) files; the volume holds $(wc -l < /tmp/xe2e-wsum-volume)"
if [ -s /tmp/xe2e-wsum-guest ] && cmp -s /tmp/xe2e-wsum-guest /tmp/xe2e-wsum-volume; then
  pass written-data-on-volume
else
  fail written-data-on-volume "$(diff /tmp/xe2e-wsum-guest /tmp/xe2e-wsum-volume | head -8 | tr '\n' ' ')"
fi
check written-mode "chmod 600 not on the volume" sh -c "debugfs -R 'stat /exports/vm1/out/sub/f6' $IMG 2>/dev/null | grep -q 'Mode:  0600'"
check written-symlink "symlink not on the volume" sh -c "debugfs -R 'stat /exports/vm1/out/symlink' $IMG 2>/dev/null | grep -q 'Fast link dest: \"sub/f4\"'"
check written-unlink "removed file still on the volume" sh -c "! debugfs -R 'stat /exports/vm1/out/sub/f5' $IMG 2>&1 | grep -q 'Inode:'"
debugfs -R "rdump /exports/vm2 $D" $IMG >/dev/null 2>&1
if [ -d $D/vm2 ] && [ "$(tree_sums $D/vm2)" = "$(cat /tmp/xe2e-want-vm2.sums)" ]; then pass vm2-untouched; else fail vm2-untouched "vm2's export differs from what mkfs put there"; fi
rm -rf $IMG $D
