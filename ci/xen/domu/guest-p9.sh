#!/bin/sh
# Guest side of the p9 scenario: mount the share served by pvfs over the Xen 9pfs transport,
# report checksums of every file, and probe the export's limits. Lines for dom0 start with
# "XE2E-GUEST ".
set -u
mkdir -p /mnt
t0=$(cut -d' ' -f1 /proc/uptime)
if ! mount -t 9p -o trans=xen,version=9p2000.L share /mnt; then
  echo "XE2E-GUEST FAIL mount"; dmesg | tail -20; exit 1
fi
echo "XE2E-GUEST MOUNTED after $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')s"
grep ' 9p ' /proc/mounts | sed 's/^/XE2E-GUEST INFO mount: /'
ls -la /mnt | sed 's/^/XE2E-GUEST LS /'
(cd /mnt && find . -type f | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done) | sed 's/^/XE2E-GUEST SUM /'
# A symlink pointing outside the export resolves in the guest's own namespace, never on pvfs.
if [ -L /mnt/escape-link ]; then
  echo "XE2E-GUEST INFO escape-link -> $(readlink /mnt/escape-link)"
  if cat /mnt/escape-link >/dev/null 2>&1; then echo "XE2E-GUEST ESCAPE read-through-symlink"; else echo "XE2E-GUEST CONFINED symlink"; fi
fi
# ".." at the mount root is the guest's own directory, not the volume's.
if ls /mnt/../vm2 >/dev/null 2>&1 || ls /mnt/../exports >/dev/null 2>&1; then
  echo "XE2E-GUEST ESCAPE dotdot"
else
  echo "XE2E-GUEST CONFINED dotdot"
fi
# Writes. A read-only export (pvfs.ro_exports) refuses them; a read-write one takes a small
# tree of new files, renames, links, removals and attribute changes, flushed with sync, and
# reports the checksums of what it wrote so dom0 can compare them with the volume after pvfs
# has shut down.
if echo probe > /mnt/written-by-guest 2>/tmp/werr; then
  echo "XE2E-GUEST WRITE ok"
  tw0=$(cut -d' ' -f1 /proc/uptime)
  mkdir -p /mnt/out/sub && echo "XE2E-GUEST W mkdir" || echo "XE2E-GUEST WFAIL mkdir"
  dd if=/dev/urandom of=/mnt/out/rand.bin bs=64k count=40 2>/dev/null && echo "XE2E-GUEST W dd" || echo "XE2E-GUEST WFAIL dd"
  i=0; while [ $i -lt 60 ]; do echo "small file $i of $(hostname)" > /mnt/out/sub/f$i || echo "XE2E-GUEST WFAIL small $i"; i=$((i+1)); done
  echo "appended line" >> /mnt/out/sub/f1 || echo "XE2E-GUEST WFAIL append"
  mv /mnt/out/sub/f2 /mnt/out/renamed && echo "XE2E-GUEST W rename" || echo "XE2E-GUEST WFAIL rename"
  ln /mnt/out/sub/f3 /mnt/out/hardlink && echo "XE2E-GUEST W link" || echo "XE2E-GUEST WFAIL link"
  ln -s sub/f4 /mnt/out/symlink && echo "XE2E-GUEST W symlink" || echo "XE2E-GUEST WFAIL symlink"
  rm /mnt/out/sub/f5 /mnt/written-by-guest && echo "XE2E-GUEST W unlink" || echo "XE2E-GUEST WFAIL unlink"
  chmod 600 /mnt/out/sub/f6 && echo "XE2E-GUEST W chmod" || echo "XE2E-GUEST WFAIL chmod"
  mkdir /mnt/out/empty && rmdir /mnt/out/empty && echo "XE2E-GUEST W rmdir" || echo "XE2E-GUEST WFAIL rmdir"
  sync
  tw1=$(cut -d' ' -f1 /proc/uptime)
  echo "XE2E-GUEST WROTE in $(awk -v a="$tw0" -v b="$tw1" 'BEGIN{printf "%.2f", b-a}')s"
  [ "$(stat -c %a /mnt/out/sub/f6)" = 600 ] && echo "XE2E-GUEST W mode-read-back" || echo "XE2E-GUEST WFAIL mode-read-back"
  [ "$(readlink /mnt/out/symlink)" = sub/f4 ] && echo "XE2E-GUEST W readlink" || echo "XE2E-GUEST WFAIL readlink"
  (cd /mnt && find out -type f | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done) | sed 's/^/XE2E-GUEST WSUM /'
  echo "XE2E-GUEST WRITES DONE"
else
  echo "XE2E-GUEST WRITE refused: $(cat /tmp/werr)"
fi
t1=$(cut -d' ' -f1 /proc/uptime)
dd if=/mnt/data/big.bin of=/dev/null bs=1M 2>/tmp/dd.err
t2=$(cut -d' ' -f1 /proc/uptime)
echo "XE2E-GUEST READ big.bin bs=1M in $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2f", b-a}')s: $(tail -1 /tmp/dd.err)"
umount /mnt && echo "XE2E-GUEST UMOUNTED"
