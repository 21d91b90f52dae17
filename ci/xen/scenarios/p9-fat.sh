#!/bin/sh
# p9-fat: pvfs serves a FAT volume (FAT_TYPE, default 32; made by dom0's mkfs.fat) to a Linux
# guest, which writes and checks a tree of long, Unicode and colliding names, nested
# directories and files up to 3 MiB, and is refused what FAT cannot store
# (domu/guest-p9fat.sh). Afterwards pvfs must have released the device and be alive, the
# volume must be clean for `fsck.fat -n`, and every file must read back from the volume in
# dom0 (`pvfs image cat`) with the checksum the guest printed.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
p9_need_pvfs_cli
VOL=/dev/ram0
FT=${FAT_TYPE:-32}
domu_initrd
step mkfs "mkfs.fat -F $FT of 256 MiB" mkfs.fat -F "$FT" -n PVFSFAT -C /tmp/xe2e-fat.img 262144 || abort mkfs "mkfs.fat failed"
dd if=/tmp/xe2e-fat.img of=$VOL bs=1M 2>/dev/null && rm -f /tmp/xe2e-fat.img
p9_start_pvfs $VOL
info "volume: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/volume 2>&1)"
# (guest consoles are logged per domain name and appended to: a name of its own)
step create "xl create gfat" xl create /etc/xen/guests/linux-pv.cfg 'name="gfat"' "memory=128" \
  "p9=[ 'tag=share,path=/,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9fat\"" || abort create "xl create failed"
d=$(domid_of gfat)
[ -z "$d" ] || wait_until 900 domain_gone gfat "$d" || { fail finished "gfat still running"; xl destroy gfat; }
log=$CONSOLE_DIR/guest-gfat.log
tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | grep -av 'XE2E-GUEST SUM ' | sed 's/^/[gfat] /'
if console_has gfat "XE2E-GUEST FAT DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then pass guest; else
  fail guest "$(grep -a 'XE2E-GUEST FAIL' "$log" | head -3 | tr -d '\r' | tr '\n' ' ')"
fi
if step released "pvfs released the device" wait_until 30 p9_released 1; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
check pvfs-alive "pvfs is gone" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
if out=$(fsck.fat -n $VOL 2>&1); then pass fsck-fat; else fail fsck-fat "$(echo "$out" | tail -5 | tr '\n' ' ')"; fi
n=0 badsum=0
tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-fat.sums
while read -r sum path; do
  n=$((n + 1))
  got=$($PVFS image cat $VOL "/${path#./}" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$sum" ] || { badsum=$((badsum + 1)); info "differs on the volume: $path"; }
done < /tmp/xe2e-fat.sums
check volume-contents "$badsum of $n files differ on the volume" sh -c "[ $n -ge 9 ] && [ $badsum = 0 ]"
