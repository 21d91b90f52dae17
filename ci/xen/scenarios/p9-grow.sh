#!/bin/sh
# p9-grow: the volume grows online. pvfs serves a 32 MiB ext4 volume (4 KiB blocks) from an
# image file behind a loop device; a guest mounted on it writes 8 MiB, then dom0 grows the
# image to 256 MiB (`truncate`, then `losetup -c`, which tells the loop device and so blkback,
# which rewrites the vbd's `sectors` and `state` at its next request). pvfs must notice it
# (blkfront), grow the volume (`Filesystem::grow`; `data/pvfs/volume` then says 256 MiB) and
# the guest's statfs (df) show more than 32 MiB within 120 s, while it keeps writing; a 28 MiB
# write that fits only in the new space (the 32 MiB volume has about 26 MiB free before the
# first file) must succeed and both files read back intact (domu/guest-p9grow.sh). After pvfs shuts
# down, the volume must be e2fsck-clean, have the new size (debugfs's stats) and hold both files
# with the guest's checksums (debugfs).
# xe2e-needs: linux-guest
. /xe2e/lib.sh
IMG=/tmp/xe2e-grow-volume.img
[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/vm1
step mkfs "mkfs.ext4 -b 4096 of a 32 MiB image" make_volume $P9_TREE $IMG 32 -b 4096 || abort mkfs "mkfs.ext4 failed"
p9_start_pvfs $IMG
step create "xl create g-grow" xl create /etc/xen/guests/linux-pv.cfg 'name="g-grow"' \
  "p9=[ 'tag=share,path=/exports/vm1,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9grow\"" || abort create "xl create failed; device model log: $(dm_log g-grow)"
dom=$(domid_of g-grow)
step ready "the guest wrote 8 MiB" wait_until 300 console_has g-grow "XE2E-GUEST GROW READY" || abort ready "no GROW READY: $(grep -a 'XE2E-GUEST' "$CONSOLE_DIR/guest-g-grow.log" | tail -3 | tr -d '\r' | tr '\n' ' ')"
loop=$(losetup -a | grep -F "$IMG" | head -1 | cut -d: -f1)
[ -n "$loop" ] || abort loop "no loop device for $IMG: $(losetup -a | tr '\n' ' ')"
step grow "truncate -s 256M $IMG; losetup -c $loop" sh -c "truncate -s 256M $IMG && losetup -c $loop" || abort grow "growing the image failed"
info "grow: $loop is $(($(cat /sys/block/${loop#/dev/}/size) / 2048)) MiB now"
wait_until 300 domain_gone g-grow "$dom" || { fail finished "g-grow still running"; xl destroy g-grow; }
tr -d '\r' < "$CONSOLE_DIR/guest-g-grow.log" | grep -a 'XE2E-GUEST' | sed 's/^/[g-grow] /'
check seen "the guest's statfs did not show the new size" console_has g-grow "XE2E-GUEST GROW SEEN"
check wrote "28 MiB did not fit in the new space, or a file came back different" console_has g-grow "XE2E-GUEST GROW WROTE ok"
xl dmesg | grep -a "(d$pvfs_domid)" | grep -a -E 'grew|grown|cannot grow|volume: the disk' | sed 's/^/XE2E INFO pvfs: /'
vol=$(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/volume" 2>&1)
check volume-key "data/pvfs/volume does not show the new size: $vol" sh -c "echo '$vol' | grep -q 'size=256MiB'"
check pvfs-alive "pvfs is gone after the grow" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
blocks=$(debugfs -R stats $IMG 2>/dev/null | sed -n 's/^Block count: *//p')
info "grow: the volume has $blocks blocks of 4 KiB after pvfs shut down ($((blocks / 256)) MiB)"
check new-size "the volume has $blocks blocks, not the 65536 of 256 MiB" [ "$blocks" = 65536 ]
want=$(tr -d '\r' < "$CONSOLE_DIR/guest-g-grow.log" | sed -n 's/.*GROW WROTE ok .*sums=\([0-9a-f]*\) \([0-9a-f]*\).*/\1 \2/p')
got=""
for f in before after; do
  debugfs -R "dump /exports/vm1/$f.bin /tmp/xe2e-grow-$f.bin" $IMG >/dev/null 2>&1
  got="$got$(sha256sum /tmp/xe2e-grow-$f.bin 2>/dev/null | cut -d' ' -f1) "
done
check files "the files on the volume are not what the guest wrote (guest: $want; volume: $got)" [ "$want " = "$got" ]
rm -f $IMG /tmp/xe2e-grow-*.bin
