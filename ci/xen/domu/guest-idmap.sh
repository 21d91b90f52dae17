#!/bin/sh
# Guest side of the p9-idmap scenario, as vm1 or vm2 (xe2e.idrole= on the kernel command
# line). dom0 attaches the share "ids" with `pvfs share add` (vm1: ranges given to add; vm2:
# ranges set afterwards with `pvfs share set`). The guest, as root:
#   1. mounts it (retrying until the device appears) and waits until the export's root shows
#      uid 0 (on disk it is owned by 100000 or 200000: the range maps it to guest root);
#   2. creates a file and a directory, which it sees owned by 0:0: "IDMAP created ok";
#   3. vm1: reads "private", mode 0600 owned by guest uid 1 (root of a range is privileged
#      over the ids of its range): "IDMAP own-range ok"; dom0 then squashes guest root
#      (`pvfs share set … --squash-root`) and the next read must fail with EACCES:
#      "IDMAP squashed-denied ok";
#   4. vm2: keeps a file open for writing, prints "IDMAP ready" and writes until dom0 has made
#      the share read-only (`pvfs share set … --ro`): a new file must fail with EROFS ("IDMAP
#      erofs ok") and a write through the open file must fail ("IDMAP erofs-open ok": EROFS,
#      or EIO from Linux 6.12's netfs, which does not pass the server's errno through).
# Each step prints "XE2E-GUEST IDMAP <step> ok" or "XE2E-GUEST FAIL idmap <step> …".
set -u
role=
for a in $(cat /proc/cmdline); do case $a in xe2e.idrole=*) role=${a#xe2e.idrole=} ;; esac; done
mkdir -p /mnt
i=0
until mount -t 9p -o trans=xen,version=9p2000.L ids /mnt 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 240 ] || { echo "XE2E-GUEST FAIL idmap mount: no share after 120 s"; exit 1; }
  sleep 0.5
done
i=0
until [ "$(stat -c %u /mnt)" = 0 ]; do
  i=$((i + 1)); [ $i -lt 240 ] || { echo "XE2E-GUEST FAIL idmap root-uid: the export's root stays uid $(stat -c %u /mnt)"; exit 1; }
  sleep 0.5
done
echo "XE2E-GUEST IDMAP mounted ok role=$role root=$(stat -c %u:%g /mnt)"
echo "made by $role's root" > /mnt/made-by-root || { echo "XE2E-GUEST FAIL idmap create"; exit 1; }
mkdir /mnt/dir-by-root || { echo "XE2E-GUEST FAIL idmap mkdir"; exit 1; }
f=$(stat -c %u:%g /mnt/made-by-root) d=$(stat -c %u:%g /mnt/dir-by-root)
if [ "$f" = 0:0 ] && [ "$d" = 0:0 ]; then
  echo "XE2E-GUEST IDMAP created ok file=$f dir=$d"
else
  echo "XE2E-GUEST FAIL idmap created: file $f dir $d (want 0:0)"
fi
sync
case $role in
vm1)
  if out=$(cat /mnt/private 2>&1) && [ "$out" = "private of uid 1" ]; then
    echo "XE2E-GUEST IDMAP own-range ok ($(stat -c '%a %u:%g' /mnt/private))"
  else
    echo "XE2E-GUEST FAIL idmap own-range: $out"
  fi
  i=0
  while out=$(cat /mnt/private 2>&1); do
    i=$((i + 1)); [ $i -lt 600 ] || { echo "XE2E-GUEST FAIL idmap squashed-denied: still readable after 300 s"; exit 1; }
    sleep 0.5
  done
  case $out in
    *"Permission denied"*) echo "XE2E-GUEST IDMAP squashed-denied ok ($out)" ;;
    *) echo "XE2E-GUEST FAIL idmap squashed-denied: $out" ;;
  esac
  ;;
vm2)
  exec 3>/mnt/open-file || { echo "XE2E-GUEST FAIL idmap open"; exit 1; }
  echo "XE2E-GUEST IDMAP ready"
  i=0
  while out=$(echo "x $i" 2>&1 > "/mnt/w-$i"); do
    i=$((i + 1)); [ $i -lt 600 ] || { echo "XE2E-GUEST FAIL idmap erofs: still writable after 300 s"; exit 1; }
    sleep 0.5
  done
  case $out in
    *"Read-only file system"*) echo "XE2E-GUEST IDMAP erofs ok after $i writes ($out)" ;;
    *) echo "XE2E-GUEST FAIL idmap erofs: $out" ;;
  esac
  if out=$( (echo more >&3) 2>&1); then
    echo "XE2E-GUEST FAIL idmap erofs-open: a write through an open file succeeded"
  else
    case $out in
      *"Read-only file system"*) echo "XE2E-GUEST IDMAP erofs-open ok ($out)" ;;
      # Linux 6.12's 9p client writes through netfs, which reports a write the server
      # refused as EIO (as with p9-quota's EDQUOT on Debian 13, ci/xen/README.md); Linux 6.1
      # passes pvfs's EROFS through.
      *"Input/output error"*) echo "XE2E-GUEST IDMAP erofs-open ok (refused; Linux $(uname -r) reports: $out)" ;;
      *) echo "XE2E-GUEST FAIL idmap erofs-open: $out" ;;
    esac
  fi
  exec 3>&-
  ;;
*) echo "XE2E-GUEST FAIL idmap role: '$role'" ;;
esac
echo "XE2E-GUEST IDMAP done"
# stay up until dom0 has checked everything (it destroys this guest)
sleep 600
