#!/bin/sh
# p9-bench (benchmark, not a test): a PV guest runs the same 9pfs workload against pvfs
# (p9=[...,backend=pvfs]) and against QEMU's 9pfs backend in dom0 (the standard p9=[...]
# without backend=, sharing a dom0 tmpfs directory), in alternating rounds (pvfs, QEMU, pvfs,
# QEMU, ...: three rounds) in one test-bed run: the emulated machine's speed drifts by
# tens of percent within minutes, so each figure is the median over the rounds, and the ratio
# pvfs/QEMU is that of the medians. Prints every round's figures ("XE2E INFO bench-round ...")
# and the medians and ratios ("XE2E INFO bench ..."); fails only if a run does not complete.
# Figures go to docs/benchmarks.md.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
# The volume lives on dom0's RAM disk (brd, loaded by dom0's init), as QEMU's export lives on
# dom0's tmpfs: both backends are served from dom0's memory, and blkback reaches the RAM disk
# directly rather than through a loop device over an image file.
VOL=/dev/ram0
Q=/tmp/xe2e-qemu-share

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/bench
# A file the guest reads first: cold for pvfs (its block cache starts empty, so the data comes
# through blkfront), while QEMU's copy sits on dom0's tmpfs.
dd if=/dev/urandom of=$P9_TREE/exports/bench/cold.bin bs=1M count=64 2>/dev/null || abort cold "no cold.bin"
# 4 KiB blocks, as mkfs.ext4 picks for any volume over 512 MiB (it would pick 1 KiB here).
step mkfs "mkfs.ext4 -b 4096 -d of the export (cold.bin) into 256 MiB of $VOL" make_volume $P9_TREE $VOL 256 -b 4096 || abort mkfs "mkfs.ext4 failed"
# pvfs.log=debug: pvfs logs its per-request profile when the guest disconnects.
p9_start_pvfs $VOL pvfs.log=debug
rm -rf $Q; mkdir -p $Q
cp $P9_TREE/exports/bench/cold.bin $Q/ || abort cold "no room for cold.bin in $Q"
rm -rf $P9_TREE

ROUNDS=3
# run_guest NAME P9SPEC ROUND: one guest runs the workload; its times go to /tmp/xe2e-bench-NAME
run_guest() {
  step "create-$1" "xl create $1" xl create /etc/xen/guests/linux-pv.cfg "name=\"$1\"" "p9=[ '$2' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9bench xe2e.round=$3\"" || { fail "create-$1" "xl create failed; device model log: $(dm_log $1)"; return 1; }
  d=$(domid_of "$1")
  if [ -n "$d" ] && ! step "run-$1" "$1 runs the workload" wait_gone_quietly 900 "$1" "$d"; then
    fail "run-$1" "still running"; diagnostics; xl destroy "$1"; return 1
  fi
  log=$CONSOLE_DIR/guest-$1.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$1] /"
  if console_has "$1" "XE2E-GUEST BENCH DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then pass "run-$1"; else fail "run-$1" "workload did not complete"; return 1; fi
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST BENCH \([A-Za-z0-9-]*\) \([0-9.]*\)$/\1 \2/p' > "/tmp/xe2e-bench-$1"
}
# rate KEY SECONDS: MiB/s for the dd runs (64 MiB each), operations/s for the metadata loop
rate() {
  case $1 in write-*|read-*) a=64 ;; meta-6000) a=6000 ;; *) a=2000 ;; esac
  awk -v a="$a" -v t="$2" 'BEGIN { if (t > 0) printf "%.1f", a / t; else print 0 }'
}
unit() { case $1 in write-*|read-*) echo MiB/s ;; *) echo ops/s ;; esac; }
# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rm -f /tmp/xe2e-bench-*
r=1
while [ $r -le $ROUNDS ]; do
  run_guest g-pvfs-$r "tag=share,path=/exports/bench,security_model=none,backend=$name" $r
  run_guest g-qemu-$r "tag=share,path=$Q,security_model=none$(qemu_p9_type)" $r
  for b in pvfs qemu; do
    [ -f /tmp/xe2e-bench-g-$b-$r ] || continue
    while read -r k t; do
      echo "$k $(rate "$k" "$t")" >> /tmp/xe2e-bench-$b.rates
      info "bench-round $r $b $k $(rate "$k" "$t") $(unit "$k")"
    done < /tmp/xe2e-bench-g-$b-$r
  done
  r=$((r + 1))
done

# Medians over the rounds, and their ratio.
for k in $(awk '{ print $1 }' /tmp/xe2e-bench-pvfs.rates 2>/dev/null | awk '!seen[$0]++'); do
  p=$(awk -v k="$k" '$1 == k { print $2 }' /tmp/xe2e-bench-pvfs.rates | median)
  q=$(awk -v k="$k" '$1 == k { print $2 }' /tmp/xe2e-bench-qemu.rates 2>/dev/null | median)
  n=$(awk -v k="$k" '$1 == k' /tmp/xe2e-bench-pvfs.rates | wc -l)
  awk -v k="$k" -v p="$p" -v q="$q" -v u="$(unit "$k")" -v n="$n" 'BEGIN{
    printf "XE2E INFO bench %-15s pvfs %8.1f %s  qemu %8.1f %s  ratio %.2fx  (medians of %d)\n", k, p, u, q, u, (q > 0) ? p / q : 0, n }'
done
info "pvfs stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $VOL
rm -rf $Q /tmp/xe2e-bench-*
