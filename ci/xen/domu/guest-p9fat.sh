#!/bin/sh
# Guest side of the p9-fat scenario: on a share of pvfs's FAT volume, writes a tree with long,
# Unicode and 8.3-colliding names, nested directories and files of 0 bytes, 1 KiB, 64 KiB and
# 3 MiB; reads it back after a remount and checks it; checks what FAT cannot store is refused
# (a symlink, a hard link, a device node: EPERM as Linux's vfat gives); renames and removes;
# prints the checksums of what stays ("XE2E-GUEST SUM"), for dom0 to compare with the volume.
set -u
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL mount"; exit 1; }
echo "XE2E-GUEST FAT MOUNTED $(grep ' /mnt ' /proc/mounts)"
bad() { echo "XE2E-GUEST FAIL $*"; }
cd /mnt || exit 1
mkdir -p "Long Directory Name/nested/deeper/still deeper" || bad "mkdir nested"
: > empty.txt || bad "empty file"
head -c 1024 /dev/urandom > "A file with a rather long name.bin" || bad "long name"
head -c 65536 /dev/urandom > "Long Directory Name/nested/Ünïcödé ñame.dat" || bad "unicode name"
head -c 3145728 /dev/urandom > "Long Directory Name/nested/deeper/still deeper/big.bin" || bad "3 MiB file"
for n in 1 2 3 4 5 6; do echo "collide $n" > "collision name number $n.txt" || bad "collision $n"; done
ln -s empty.txt link 2>/tmp/e && bad "a symlink was made" || grep -q "Operation not permitted" /tmp/e || bad "symlink: $(cat /tmp/e)"
ln empty.txt hard 2>/tmp/e && bad "a hard link was made" || grep -q "Operation not permitted" /tmp/e || bad "link: $(cat /tmp/e)"
mknod dev c 1 3 2>/tmp/e && bad "a device node was made" || grep -q "Operation not permitted" /tmp/e || bad "mknod: $(cat /tmp/e)"
mv "collision name number 6.txt" "Long Directory Name/moved.txt" || bad "rename"
rm "collision name number 5.txt" || bad "unlink"
cd /
# sums: "checksum ./path" of every file under /mnt (names with spaces included)
sums() { (cd /mnt && find . -type f | LC_ALL=C sort | while read -r f; do echo "$(sha256sum < "$f" | cut -d' ' -f1) $f"; done); }
sums > /tmp/before
umount /mnt || bad "umount"
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { bad "remount"; exit 1; }
sums > /tmp/after
cmp -s /tmp/before /tmp/after || bad "the tree differs after a remount: $(diff /tmp/before /tmp/after | head -3 | tr '\n' ' ')"
[ -e "/mnt/collision name number 5.txt" ] && bad "a removed file is back"
df -k /mnt | tail -1 | sed 's/^/XE2E-GUEST DF /'
sed 's/^/XE2E-GUEST SUM /' /tmp/after
umount /mnt || bad "umount 2"
echo "XE2E-GUEST FAT DONE"
