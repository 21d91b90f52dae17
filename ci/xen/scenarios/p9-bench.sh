#!/bin/sh
# p9-bench (benchmark, not a test): one PV guest runs the same 9pfs workload twice in one
# test-bed run, first against pvfs (p9=[...,backend=pvfs]), then against QEMU's 9pfs backend
# in dom0 (the standard p9=[...] without backend=, sharing a dom0 tmpfs directory). Prints
# each figure for both and the ratio pvfs/QEMU as "XE2E INFO bench ..." lines; fails only if a
# run does not complete. Figures go to docs/benchmarks.md.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
Q=/tmp/xe2e-qemu-share

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/bench
# A file the guest reads first: cold for pvfs (its block cache starts empty, so the data comes
# through blkfront), while QEMU's copy sits on dom0's tmpfs.
dd if=/dev/urandom of=$P9_TREE/exports/bench/cold.bin bs=1M count=64 2>/dev/null || abort cold "no cold.bin"
# 4 KiB blocks, as mkfs.ext4 picks for any volume over 512 MiB (it would pick 1 KiB here).
step mkfs "mkfs.ext4 -b 4096 -d of the export (cold.bin) into a 256 MiB image" make_volume $P9_TREE $IMG 256 -b 4096 || abort mkfs "mkfs.ext4 failed"
p9_start_pvfs $IMG
rm -rf $Q; mkdir -p $Q
cp $P9_TREE/exports/bench/cold.bin $Q/ || abort cold "no room for cold.bin in $Q"
rm -rf $P9_TREE

run_guest() { # NAME P9SPEC
  step "create-$1" "xl create $1" xl create /etc/xen/guests/linux-pv.cfg "name=\"$1\"" "p9=[ '$2' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9bench\"" || { fail "create-$1" "xl create failed"; return 1; }
  d=$(domid_of "$1")
  if [ -n "$d" ] && ! step "run-$1" "$1 runs the workload" wait_until 600 domain_gone "$1" "$d"; then
    fail "run-$1" "still running"; diagnostics; xl destroy "$1"; return 1
  fi
  log=$CONSOLE_DIR/guest-$1.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$1] /"
  if console_has "$1" "XE2E-GUEST BENCH DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then pass "run-$1"; else fail "run-$1" "workload did not complete"; return 1; fi
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST BENCH \([A-Za-z0-9-]*\) \([0-9.]*\)$/\1 \2/p' > "/tmp/xe2e-bench-$1"
}
run_guest g-pvfs "tag=share,path=/exports/bench,security_model=none,backend=$name"
run_guest g-qemu "tag=share,path=$Q,security_model=none"

# Rates: MiB/s for the dd runs (64 MiB each), operations/s for the metadata loop.
while read -r k p; do
  q=$(sed -n "s/^$k //p" /tmp/xe2e-bench-g-qemu)
  [ -n "$q" ] || continue
  case $k in write-*|read-*) unit=MiB/s; amount=64 ;; meta-6000) unit=ops/s; amount=6000 ;; *) unit=ops/s; amount=2000 ;; esac
  awk -v k="$k" -v p="$p" -v q="$q" -v a="$amount" -v u="$unit" 'BEGIN{
    rp = (p > 0) ? a / p : 0; rq = (q > 0) ? a / q : 0;
    printf "XE2E INFO bench %-15s pvfs %8.1f %s  qemu %8.1f %s  ratio %.2fx\n", k, rp, u, rq, u, (rq > 0) ? rp / rq : 0 }'
done < /tmp/xe2e-bench-g-pvfs
info "pvfs stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
if out=$(e2fsck -fn $IMG 2>&1); then pass e2fsck; else fail e2fsck "$(echo "$out" | tail -8 | tr '\n' ' ')"; fi
rm -rf $IMG $Q
