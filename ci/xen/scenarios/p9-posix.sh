#!/bin/sh
# p9-posix: the POSIX conformance suite pjdfstest (ci/xen/suites.sh: the Rust rewrite of
# pjd's suite, from crates.io, static) runs as root in a Linux guest on a read-write pvfs
# share, with a second share as its secondary file system; then fsx (the Rust port of the
# File System eXerciser) does 10,000 operations without mmap and 10,000 with mmap on a
# cache=mmap mount. Every result line is printed;
# the scenario passes when no test failed, the guest crashed no program, pvfs is alive
# afterwards with its stack peak and heap reported, and the volume is e2fsck-clean after
# pvfs shuts down. Tests the suite skips are listed with its reason (docs/posix.md).
# POSIX_SET picks the tests (pjdfstest's name filter, words joined by '+'): by default the
# groups that fit CI's budget; p9-posix-full runs the whole suite. With POSIX_BACKEND=qemu
# (scenario p9-posix-qemu) the whole suite runs against QEMU's 9pfs backend in dom0 on dom0's
# tmpfs, for comparison: its results are reported, not judged.
# xe2e-needs: linux-guest qemu-xen posix
. /xe2e/lib.sh
IMG=/tmp/xe2e-posix-volume.img
BACKEND=${POSIX_BACKEND:-pvfs}
SET=${POSIX_SET:-chmod+chown+link+mkdir+open+rename+rmdir+symlink+truncate+unlink+utimensat}

domu_initrd
g=g-posix-$BACKEND
if [ "$BACKEND" = pvfs ]; then
  [ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
  rm -rf /tmp/xe2e-posix-tree; mkdir -p /tmp/xe2e-posix-tree/exports/a /tmp/xe2e-posix-tree/exports/b
  step mkfs "mkfs.ext4 -d of two empty exports into a 256 MiB image" \
    make_volume /tmp/xe2e-posix-tree $IMG 256 || abort mkfs "mkfs.ext4 failed"
  p9_start_pvfs $IMG
  shares="'tag=share,path=/exports/a,security_model=none,backend=$name', 'tag=share2,path=/exports/b,security_model=none,backend=$name'"
else
  rm -rf /tmp/xe2e-posix-q; mkdir -p /tmp/xe2e-posix-q/a /tmp/xe2e-posix-q/b
  shares="'tag=share,path=/tmp/xe2e-posix-q/a,security_model=none', 'tag=share2,path=/tmp/xe2e-posix-q/b,security_model=none'"
fi
step create "xl create guest $g (two shares, $BACKEND)" xl create /etc/xen/guests/linux-pv.cfg "name=\"$g\"" \
  "p9=[ $shares ]" "extra=\"$GUEST_ARGS xe2e.guest=posix xe2e.posix=$SET\"" \
  || abort create "xl create failed; device model log: $(dm_log $g)"
gid=$(domid_of $g)
step started "pjdfstest started in $g" wait_until 120 console_has $g "XE2E-GUEST POSIX-START" || { fail started "no POSIX-START from $g"; diagnostics; }
step suite "pjdfstest ran to its end" wait_until ${XE2E_POSIX_TIMEOUT:-3000} console_has $g "XE2E-GUEST POSIX-SUMMARY" \
  || { fail suite "no POSIX-SUMMARY from $g"; diagnostics; }
[ -z "$gid" ] || wait_until 120 domain_gone $g "$gid" || { fail finished "$g still running"; xl destroy $g; }
log=$CONSOLE_DIR/guest-$g.log
tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$g] /"
summary=$(tr -d '\r' < "$log" | grep -a 'XE2E-GUEST POSIX-SUMMARY' | tail -1)
echo "XE2E INFO pjdfstest on $BACKEND: ${summary#*POSIX-SUMMARY } set=$SET"
tr -d '\r' < "$log" | grep -a ' FAILED$' | sed "s/.*POSIX /XE2E INFO pjdfstest $BACKEND FAILED /; s/ *FAILED\$//"
if [ "$BACKEND" != pvfs ]; then
  [ -n "$summary" ] && pass "ran-on-$BACKEND" || fail "ran-on-$BACKEND" "no summary"
  exit 0
fi
failed=$(echo "$summary" | sed -n 's/.* failed=\([0-9]*\).*/\1/p')
ok=$(echo "$summary" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
if [ -n "$failed" ] && [ "$failed" = 0 ] && [ "${ok:-0}" -gt 100 ]; then
  pass pjdfstest
else
  fail pjdfstest "$summary; failed: $(tr -d '\r' < "$log" | grep -a ' FAILED$' | sed 's/.*POSIX //; s/ *FAILED$//' | tr -s ' ' | tr '\n' ' ')"
fi
for k in nommap mmap; do
  if console_has $g "XE2E-GUEST FSX $k ok"; then pass "fsx-$k"; else fail "fsx-$k" "no 'FSX $k ok' from $g"; fi
done
if grep -aq 'XE2E-GUEST FAIL' "$log"; then fail guest "$(grep -a 'XE2E-GUEST FAIL' "$log" | head -3 | tr -d '\r' | tr '\n' ' ')"; else pass guest; fi
if grep -aqE 'XE2E-GUEST KMSG' "$log"; then fail crashed "$g crashed programs: $(grep -a 'XE2E-GUEST KMSG' "$log" | head -3 | tr -d '\r' | tr '\n' ' ')"; else pass no-crashed-programs; fi
check pvfs-alive "pvfs is gone after the suite" p9_pvfs_alive
echo "XE2E INFO pvfs after the suite: stack_peak_bytes=$(p9_stat stack_peak_bytes) heap_live_bytes=$(p9_stat heap_live_bytes) heap_peak_bytes=$(p9_stat heap_peak_bytes) requests=$(p9_stat requests)"
check stack-reported "pvfs reported no stack peak" sh -c '[ -n "$(xenstore-read /local/domain/'"$pvfs_domid"'/data/pvfs/stats | tr " " "\n" | sed -n "s/^stack_peak_bytes=//p")" ]'
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
if out=$(e2fsck -fn $IMG 2>&1); then pass e2fsck; else fail e2fsck "$(echo "$out" | tail -8 | tr '\n' ' ')"; fi
rm -f $IMG
