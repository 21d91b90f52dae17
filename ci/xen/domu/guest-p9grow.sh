#!/bin/sh
# Guest side of p9-grow: the volume under the share grows while this guest is mounted and
# writing. 1. Write 8 MiB (fits the 32 MiB volume), print GROW READY with the size statfs
# reports. 2. Keep writing a small file with fsync (so pvfs's disk sees requests: blkback looks
# at its backing file's size when it serves one) until statfs reports more than 32 MiB, at
# most 120 s; print GROW SEEN with the size and how long it took. 3. Write 28 MiB, which only
# fits in the new space, read both files back against their checksums, print GROW WROTE.
# No copy of the data is kept in the guest's memory. Failures print "XE2E-GUEST FAIL grow <step> …".
set -u
mkdir -p /mnt
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL grow mount"; exit 1; }
size_kib() { stat -f -c '%b %S' /mnt | awk '{ printf "%d", $1 * $2 / 1024 }'; }
up() { cut -d' ' -f1 /proc/uptime; }
before=$(size_kib)
# write_new FILE MIB: MIB MiB of random bytes into FILE (no copy in the guest's memory);
# prints their checksum, fails if the file does not end up that long
write_new() {
  sum=$(dd if=/dev/urandom bs=1M count="$2" 2>/dev/null | tee "$1" | sha256sum | cut -d' ' -f1)
  sync
  [ "$(stat -c %s "$1")" = $(($2 * 1048576)) ] || return 1
  echo "$sum"
}
a=$(write_new /mnt/before.bin 8) || { echo "XE2E-GUEST FAIL grow write-before"; exit 1; }
echo "XE2E-GUEST GROW READY size=${before}KiB"
t0=$(up) i=0 seen=
while [ $i -lt 240 ]; do
  s=$(size_kib)
  if [ "$s" -gt 32768 ]; then seen=$s; break; fi
  echo "$i" > /mnt/tick && sync
  sleep 0.5; i=$((i + 1))
done
[ -n "$seen" ] || { echo "XE2E-GUEST FAIL grow size stayed at $(size_kib) KiB for 120 s"; exit 1; }
echo "XE2E-GUEST GROW SEEN size=${seen}KiB after $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }') s"
b=$(write_new /mnt/after.bin 28) || { echo "XE2E-GUEST FAIL grow write-after (free $(stat -f -c '%a %S' /mnt | awk '{ printf "%d", $1 * $2 / 1024 }') KiB)"; exit 1; }
[ "$(sha256sum /mnt/before.bin | cut -d' ' -f1)" = "$a" ] || { echo "XE2E-GUEST FAIL grow before.bin differs"; exit 1; }
[ "$(sha256sum /mnt/after.bin | cut -d' ' -f1)" = "$b" ] || { echo "XE2E-GUEST FAIL grow after.bin differs"; exit 1; }
echo "XE2E-GUEST GROW WROTE ok size=$(size_kib)KiB sums=$a $b "
umount /mnt || echo "XE2E-GUEST FAIL grow umount"
echo "XE2E-GUEST GROW DONE"
