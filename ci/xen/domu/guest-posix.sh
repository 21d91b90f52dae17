#!/bin/sh
# Guest side of the p9-posix scenarios: pjdfstest (ci/xen/suites.sh) as root on a read-write
# 9pfs share, with a second share as the secondary file system (EXDEV across mounts;
# pjdfstest.toml names it).
# xe2e.posix=all runs the whole suite; xe2e.posix=chmod+chown+... only the tests whose names
# contain one of those words (pjdfstest's own filter). Prints every result line as it comes
# as "XE2E-GUEST POSIX <line>" and a summary
# "XE2E-GUEST POSIX-SUMMARY ok=N failed=N skipped=N xfail=N xpass=N rc=N" (xfail: the
# expected failures of pjdfstest.toml; xpass: one of those that passed).
set -u
cat > /etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
tests:x:1001:1001:tests:/:/bin/false
pjdfstest:x:1002:1002:pjdfstest:/:/bin/false
P
cat > /etc/group <<'G'
root:x:0:
nogroup:x:65534:
tests:x:1001:
pjdfstest:x:1002:
G
# A static glibc resolves users through the files source only.
printf 'passwd: files\ngroup: files\n' > /etc/nsswitch.conf
mkdir -p /mnt /mnt2
mount -t 9p -o trans=xen,version=9p2000.L share /mnt || { echo "XE2E-GUEST FAIL posix mount share"; exit 1; }
mount -t 9p -o trans=xen,version=9p2000.L share2 /mnt2 || { echo "XE2E-GUEST FAIL posix mount share2"; exit 1; }
mkdir -p /mnt/pjd /mnt2/pjd
chmod 0777 /mnt/pjd /mnt2/pjd
cd /mnt/pjd || exit 1
echo "XE2E-GUEST POSIX-START uptime=$(cut -d' ' -f1 /proc/uptime)s"
SET=all
FSX=1
SEEDS=1
for a in $(cat /proc/cmdline); do
  case $a in
    xe2e.posix=*) SET=${a#xe2e.posix=} ;;
    xe2e.fsx=*) FSX=${a#xe2e.fsx=} ;;
    xe2e.fsx-seeds=*) SEEDS=${a#xe2e.fsx-seeds=} ;;
  esac
done
[ "$SET" = all ] && PATTERNS= || PATTERNS=$(echo "$SET" | tr '+' ' ')
echo "XE2E-GUEST POSIX-SET $SET"
# shellcheck disable=SC2086 # the patterns are words
{ /usr/bin/pjdfstest -c /etc/pjdfstest.toml -p /mnt/pjd $PATTERNS 2>&1; echo $? > /tmp/pjd.rc; } |
  while IFS= read -r l; do echo "$l" >> /tmp/pjd.out; echo "XE2E-GUEST POSIX $l"; done
rc=$(cat /tmp/pjd.rc)
ok=$(grep -c ' ok$' /tmp/pjd.out)
failed=$(grep -c ' FAILED$' /tmp/pjd.out)
skipped=$(grep -c ' skipped$' /tmp/pjd.out)
xfail=$(grep -c ' failed as expected$' /tmp/pjd.out)
xpass=$(grep -c ' PASSED UNEXPECTEDLY$' /tmp/pjd.out)
echo "XE2E-GUEST POSIX-SUMMARY ok=$ok failed=$failed skipped=$skipped xfail=$xfail xpass=$xpass rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)s"
# fsx, 10,000 operations a run, with seeds 1.. (xe2e.fsx-seeds=N runs, default 1): on the
# cache=none share without mmap, then on the second share mounted with cache=mmap with reads
# and writes through mmap too (seeds 101..).
cd /
umount /mnt2
[ "$FSX" = 1 ] || { umount /mnt; exit 0; }
# fsx logs every operation (-v); every 60 s the last one is printed, so that a run that stops
# moving shows the operation it stopped at.
fsx_run() {
  /usr/bin/fsx -v -N 10000 -S "$2" -f "/etc/fsx-$1.toml" -P /tmp "$3" > "/tmp/fsx-$1.out" 2>&1 &
  pid=$!
  t=0
  while kill -0 $pid 2>/dev/null; do
    sleep 5; t=$((t + 5))
    [ $((t % 60)) != 0 ] || echo "XE2E-GUEST FSX-PROGRESS $1 ${t}s: $(tail -1 "/tmp/fsx-$1.out")"
  done
  if wait $pid; then
    echo "XE2E-GUEST FSX $1 ok seed=$2 ${t}s $(tail -1 "/tmp/fsx-$1.out")"
  else
    echo "XE2E-GUEST FAIL fsx $1 seed=$2: $(tail -3 "/tmp/fsx-$1.out" | tr '\n' ' ')"
  fi
}
i=1
while [ $i -le "$SEEDS" ]; do fsx_run nommap $i /mnt/pjd/fsx.data; i=$((i + 1)); done
# Each mmap run has a mount of its own: the share is mounted again on the device the previous
# mount used (the mount lines, with the guest's uptime, tell a hung mount from a hung run).
i=1
while [ $i -le "$SEEDS" ]; do
  echo "XE2E-GUEST FSX-MOUNT share2 cache=mmap uptime=$(cut -d' ' -f1 /proc/uptime)s"
  mount -t 9p -o trans=xen,version=9p2000.L,cache=mmap share2 /mnt2 || echo "XE2E-GUEST FAIL fsx mount cache=mmap"
  echo "XE2E-GUEST FSX-MOUNTED share2 uptime=$(cut -d' ' -f1 /proc/uptime)s"
  fsx_run mmap $((100 + i)) /mnt2/fsx.data
  umount /mnt2 || echo "XE2E-GUEST FAIL fsx umount share2"
  i=$((i + 1))
done
echo "XE2E-GUEST FSX-END seeds=$SEEDS"
umount /mnt
