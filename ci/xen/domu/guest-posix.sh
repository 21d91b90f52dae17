#!/bin/sh
# Guest side of the p9-posix scenarios: pjdfstest (ci/xen/suites.sh) as root on a read-write
# 9pfs share, with a second share as the secondary file system (EXDEV across mounts;
# pjdfstest.toml names it).
# xe2e.posix=all runs the whole suite; xe2e.posix=chmod+chown+... only the tests whose names
# contain one of those words (pjdfstest's own filter). Prints every result line as it comes
# as "XE2E-GUEST POSIX <line>" and a summary
# "XE2E-GUEST POSIX-SUMMARY ok=N failed=N skipped=N xfail=N xpass=N rc=N" (xfail: the
# expected failures of pjdfstest.toml; xpass: one of those that passed).
# Then fsx (xe2e.fsx=0: none) and fsstress (xe2e.fsstress=N operations a process, 0: none),
# each ending with a line of its own (FSX-END, FSSTRESS-END).
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
FSSTRESS=0
for a in $(cat /proc/cmdline); do
  case $a in
    xe2e.posix=*) SET=${a#xe2e.posix=} ;;
    xe2e.fsx=*) FSX=${a#xe2e.fsx=} ;;
    xe2e.fsx-seeds=*) SEEDS=${a#xe2e.fsx-seeds=} ;;
    xe2e.fsstress=*) FSSTRESS=${a#xe2e.fsstress=} ;;
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
# and writes through mmap too (seeds 101..), then with cache=loose (seeds 201..).
cd /
umount /mnt2
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
while [ "$FSX" = 1 ] && [ $i -le "$SEEDS" ]; do fsx_run nommap $i /mnt/pjd/fsx.data; i=$((i + 1)); done
# Each mmap run has a mount of its own: the share is mounted again on the device the previous
# mount used (the mount lines, with the guest's uptime, tell a hung mount from a hung run).
i=1
while [ "$FSX" = 1 ] && [ $i -le "$SEEDS" ]; do
  echo "XE2E-GUEST FSX-MOUNT share2 cache=mmap uptime=$(cut -d' ' -f1 /proc/uptime)s"
  mount -t 9p -o trans=xen,version=9p2000.L,cache=mmap share2 /mnt2 || echo "XE2E-GUEST FAIL fsx mount cache=mmap"
  echo "XE2E-GUEST FSX-MOUNTED share2 uptime=$(cut -d' ' -f1 /proc/uptime)s"
  fsx_run mmap $((100 + i)) /mnt2/fsx.data
  umount /mnt2 || echo "XE2E-GUEST FAIL fsx umount share2"
  i=$((i + 1))
done
# Then cache=loose, the mode for a share that only this guest writes (README): fsx checks what
# the guest reads through its cache, and the file's checksum through the cache must equal the
# one read afterwards on a cache=none mount, from pvfs (seeds 201..).
i=1
while [ "$FSX" = 1 ] && [ $i -le "$SEEDS" ]; do
  echo "XE2E-GUEST FSX-MOUNT share2 cache=loose uptime=$(cut -d' ' -f1 /proc/uptime)s"
  mount -t 9p -o trans=xen,version=9p2000.L,cache=loose share2 /mnt2 || echo "XE2E-GUEST FAIL fsx mount cache=loose"
  fsx_run loose $((200 + i)) /mnt2/fsx.data
  cached=$(sha256sum < /mnt2/fsx.data)
  umount /mnt2 || echo "XE2E-GUEST FAIL fsx umount share2"
  mount -t 9p -o trans=xen,version=9p2000.L share2 /mnt2 || echo "XE2E-GUEST FAIL fsx mount cache=none"
  served=$(sha256sum < /mnt2/fsx.data)
  if [ "$cached" = "$served" ]; then
    echo "XE2E-GUEST FSX-LOOSE-SAME seed=$((200 + i))"
  else
    echo "XE2E-GUEST FAIL fsx loose seed=$((200 + i)): the guest's cache held ${cached%% *}, pvfs serves ${served%% *}"
  fi
  rm -f /mnt2/fsx.data
  umount /mnt2 || echo "XE2E-GUEST FAIL fsx umount share2"
  i=$((i + 1))
done
[ "$FSX" != 1 ] || echo "XE2E-GUEST FSX-END seeds=$SEEDS"
# fsstress (SGI's, from e2fsprogs' source: ci/xen/suites.sh), FSSTRESS operations a process.
# First one process with a fixed seed and no cleanup, on the share and then on Linux's own
# ext4 (the guest's disk xvda, made by dom0 with the same mkfs.ext4 options as pvfs's volume,
# so the same block size and limits): its log (every operation with its arguments and its
# result) and the tree it leaves (names, types, sizes, modes, link counts, owners, symlink
# targets) must be the same on both. Then four processes at once on the share, each FSSTRESS
# operations; fsstress must end with status 0 and remove everything it made. O_DIRECT reads
# and writes are left out (a cache=none 9p mount and ext4 treat O_DIRECT differently).
# fss_tree DIR: one line per entry of the tree under DIR, in name order (no size for
# directories: Linux's ext4 and pvfs grow directory blocks differently)
fss_tree() {
  (cd "$1" && find . | LC_ALL=C sort | while IFS= read -r f; do
    if [ -L "$f" ]; then echo "$(stat -c '%n %F %h %u %g' "$f") -> $(readlink "$f")"
    elif [ -d "$f" ]; then stat -c '%n %F %a %h %u %g' "$f"
    else stat -c '%n %F %s %a %h %u %g' "$f"; fi
  done)
}
if [ "$FSSTRESS" != 0 ]; then
  echo "XE2E-GUEST FSSTRESS-START ops=$FSSTRESS uptime=$(cut -d' ' -f1 /proc/uptime)s"
  mkdir -p /mnt/pjd/fss1 /tmp/fss-ref
  i=0
  until [ -b /dev/xvda ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
  mount -t ext4 /dev/xvda /tmp/fss-ref && mkdir -p /tmp/fss-ref/fss1 \
    || echo "XE2E-GUEST FAIL fsstress: cannot mount the reference ext4 on xvda"
  for side in share:/mnt/pjd/fss1 ext4:/tmp/fss-ref/fss1; do
    d=${side#*:}; side=${side%%:*}
    /usr/bin/fsstress -d "$d" -n "$FSSTRESS" -p 1 -s 1 -v -c -f dread=0 -f dwrite=0 > "/tmp/fss1-$side.log" 2>&1 \
      || echo "XE2E-GUEST FAIL fsstress on the $side: status $? $(tail -2 "/tmp/fss1-$side.log" | tr '\n' ' ')"
    fss_tree "$d" > "/tmp/fss1-$side.tree"
  done
  if ! cmp -s /tmp/fss1-share.log /tmp/fss1-ext4.log; then
    echo "XE2E-GUEST FAIL fsstress: the share's log differs from Linux ext4's: $(diff /tmp/fss1-ext4.log /tmp/fss1-share.log | grep '^[-+][^-+]' | head -6 | tr '\n' ' ')"
  elif ! cmp -s /tmp/fss1-share.tree /tmp/fss1-ext4.tree; then
    echo "XE2E-GUEST FAIL fsstress: the share's tree differs from Linux ext4's: $(diff /tmp/fss1-ext4.tree /tmp/fss1-share.tree | grep '^[-+][^-+]' | head -6 | tr '\n' ' ')"
  else
    echo "XE2E-GUEST FSSTRESS same seed=1 ops=$FSSTRESS: $(wc -l < /tmp/fss1-share.log) log lines and $(wc -l < /tmp/fss1-share.tree) entries as on Linux ext4 ($(grep -c ' 0$' /tmp/fss1-share.log) operations returned 0) uptime=$(cut -d' ' -f1 /proc/uptime)s"
  fi
  rm -rf /mnt/pjd/fss1
  umount /tmp/fss-ref
  mkdir -p /mnt/pjd/fss4
  if /usr/bin/fsstress -d /mnt/pjd/fss4 -n "$FSSTRESS" -p 4 -s 2 -f dread=0 -f dwrite=0 > /tmp/fss4.log 2>&1; then
    left=$(ls -A /mnt/pjd/fss4 | head -5 | tr '\n' ' ')
    if [ -z "$left" ]; then
      echo "XE2E-GUEST FSSTRESS parallel seed=2 ops=4x$FSSTRESS ok uptime=$(cut -d' ' -f1 /proc/uptime)s"
    else
      echo "XE2E-GUEST FAIL fsstress with 4 processes left behind: $left"
    fi
  else
    echo "XE2E-GUEST FAIL fsstress with 4 processes: status $? $(tail -3 /tmp/fss4.log | tr '\n' ' ')"
  fi
  rm -rf /mnt/pjd/fss4
  echo "XE2E-GUEST FSSTRESS-END uptime=$(cut -d' ' -f1 /proc/uptime)s"
fi
umount /mnt
