#!/bin/sh
# p9-multi (benchmark, `cargo xtask bench guests`): aggregate throughput and metadata rate of
# 1, 4 and 16 guests working at once (MULTI_COUNTS), on pvfs and on QEMU's 9pfs backend (one
# QEMU process in dom0 for each guest), in alternating rounds (MULTI_ROUNDS, default 3) in one
# test-bed run; each figure is the median over the rounds. The same total work is split among
# the guests of a run (64 MiB written with conv=fsync and read back at bs=1M, 2,000 files
# created, stat'ed and removed: each of N guests does 1/N of it, in its own directory, through
# its own device), and every phase starts in all guests together (domu/guest-p9multi.sh: a
# barrier in a directory next to theirs). A phase's aggregate rate is the work of all N guests over the slowest guest's
# time. Printed: every round's rates ("XE2E INFO multi-round ..."), the medians and the ratio
# pvfs/QEMU ("XE2E INFO multi ..."), and the resident memory of the QEMU processes in dom0 with
# all guests mounted, next to pvfs's domain memory. As in p9-bench, pvfs's volume is on dom0's
# RAM disk and QEMU's exports on dom0's tmpfs. Fails if a guest does not finish its work, pvfs
# does not release every device, or the volume is not e2fsck-clean.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
VOL=/dev/ram0
Q=/tmp/xe2e-qemu-multi
COUNTS=${MULTI_COUNTS:-1 4 16}
ROUNDS=${MULTI_ROUNDS:-3}
TOTAL_MIB=64 TOTAL_FILES=2000
max_n=0
for n in $COUNTS; do [ "$n" -gt $max_n ] && max_n=$n; done

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
rm -rf $P9_TREE $Q
i=1
while [ $i -le $max_n ]; do mkdir -p $P9_TREE/exports/g$i $Q/g$i; i=$((i + 1)); done
mkdir -p $P9_TREE/exports/common $Q/common
step mkfs "mkfs.ext4 -b 4096 -d of $max_n exports into 256 MiB of $VOL" make_volume $P9_TREE $VOL 256 -b 4096 || abort mkfs "mkfs.ext4 failed"
p9_start_pvfs $VOL
pvfs_mib=$(xl list "$name" | awk 'NR == 2 { print $3 }')
devices=0

# run_multi BACKEND N ROUND: N guests run the workload at once; rates go to /tmp/xe2e-multi-*
run_multi() {
  b=$1 n=$2 r=$3 run=$1$2r$3
  # guests' names are unique to the run: each name has its own console log
  mib=$((TOTAL_MIB / n)) files=$((TOTAL_FILES / n))
  i=1
  while [ $i -le "$n" ]; do
    # one device a guest (QEMU's backend in this test bed hangs a guest with two), on the
    # directory that holds every guest's own directory and the barriers
    if [ "$b" = pvfs ]; then
      spec="tag=share,path=/exports,security_model=none,backend=$name"
      devices=$((devices + 1)) create="xl create"
    else
      spec="tag=share,path=$Q,security_model=none$(qemu_p9_type)" create=xl_create_qemu
    fi
    step "create-$run-$i" "xl create $run-m$i ($b, $n guests, round $r)" $create /etc/xen/guests/linux-pv.cfg "name=\"$run-m$i\"" "memory=96" \
      "p9=[ '$spec' ]" \
      "extra=\"$GUEST_ARGS xe2e.guest=p9multi xe2e.idx=$i xe2e.n=$n xe2e.run=$run xe2e.mib=$mib xe2e.files=$files\"" ||
      { fail "create-$run-$i" "xl create failed; device model log: $(dm_log "$run-m$i")"; return 1; }
    eval "dom_m$i=\$(domid_of $run-m$i)"
    i=$((i + 1))
  done
  all_mounted() {
    j=1
    while [ $j -le "$n" ]; do console_has "$run-m$j" "XE2E-GUEST MULTI MOUNTED" || return 1; j=$((j + 1)); done
  }
  if ! step "mounted-$run" "all $n guests mounted" wait_until $((120 + 20 * n)) all_mounted; then
    j=1
    while [ $j -le "$n" ]; do
      console_has "$run-m$j" "XE2E-GUEST MULTI MOUNTED" ||
        fail "mounted-$run-m$j" "console: $(tail -5 "$CONSOLE_DIR/guest-$run-m$j.log" 2>&1 | tr -d '\r' | tr '\n' ' '); device model: $(dm_log "$run-m$j")"
      j=$((j + 1))
    done
  elif [ "$b" = qemu ]; then
    # the device models' resident memory, every guest mounted
    rss=0 procs=0 j=1
    while [ $j -le "$n" ]; do
      eval "d=\$dom_m$j"
      for p in $(dom0_procs_for "$d" | awk '{ print $1 }'); do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        rss=$((rss + ${kb:-0})) procs=$((procs + 1))
      done
      j=$((j + 1))
    done
    info "multi-memory round $r: $n guests on QEMU: $procs QEMU processes in dom0, resident $((rss / 1024)) MiB in all; pvfs's domain has $pvfs_mib MiB for any number of guests"
    echo "$n $((rss / 1024)) $procs" >> /tmp/xe2e-multi-qemu-rss
  fi
  ok=1 i=1
  : > "/tmp/xe2e-multi-times"
  while [ $i -le "$n" ]; do
    eval "d=\$dom_m$i"
    [ -z "$d" ] || wait_gone_quietly 1200 "$run-m$i" "$d" || { fail "finished-$run-$i" "$run-m$i still running"; diagnostics; xl destroy "$run-m$i"; }
    log=$CONSOLE_DIR/guest-$run-m$i.log
    if console_has "$run-m$i" "XE2E-GUEST BENCH DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then
      tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST BENCH \([A-Za-z0-9-]*\) \([0-9.]*\)$/\1 \2/p' >> /tmp/xe2e-multi-times
    else
      ok=0
      fail "run-$run-m$i" "$(tr -d '\r' < "$log" 2>/dev/null | grep -a 'XE2E-GUEST FAIL' | head -3 | tr '\n' ' ')"
    fi
    i=$((i + 1))
  done
  [ $ok = 1 ] || return 1
  pass "run-$run"
  # the slowest guest's time for each phase, and the rate of all n guests' work
  for k in write-1M read-1M meta; do
    t=$(awk -v k="$k" '$1 == k && $2 > m { m = $2 } END { print m + 0 }' /tmp/xe2e-multi-times)
    case $k in meta) work=$((3 * files * n)) u=ops/s ;; *) work=$((mib * n)) u=MiB/s ;; esac
    rate=$(awk -v a="$work" -v t="$t" 'BEGIN { if (t > 0) printf "%.1f", a / t; else print 0 }')
    info "multi-round $r $b n=$n $k $rate $u (slowest guest ${t} s)"
    echo "$n $k $rate" >> "/tmp/xe2e-multi-$b.rates"
  done
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rm -f /tmp/xe2e-multi-*
r=1
while [ $r -le "$ROUNDS" ]; do
  for n in $COUNTS; do
    run_multi pvfs "$n" $r
    run_multi qemu "$n" $r
    rm -rf "${Q:?}"/common/*
  done
  r=$((r + 1))
done
for n in $COUNTS; do
  for k in write-1M read-1M meta; do
    p=$(awk -v n="$n" -v k="$k" '$1 == n && $2 == k { print $3 }' /tmp/xe2e-multi-pvfs.rates 2>/dev/null | median)
    q=$(awk -v n="$n" -v k="$k" '$1 == n && $2 == k { print $3 }' /tmp/xe2e-multi-qemu.rates 2>/dev/null | median)
    u=MiB/s; [ $k = meta ] && u=ops/s
    awk -v n="$n" -v k="$k" -v p="$p" -v q="$q" -v u="$u" 'BEGIN {
      printf "XE2E INFO multi %2d guests %-9s pvfs %8.1f %s  qemu %8.1f %s  ratio %.2fx\n", n, k, p, u, q, u, (q > 0) ? p / q : 0 }'
  done
  m=$(awk -v n="$n" '$1 == n { print $2 }' /tmp/xe2e-multi-qemu-rss 2>/dev/null | median)
  info "multi $n guests: QEMU's processes in dom0 resident $m MiB (median), pvfs's domain $pvfs_mib MiB"
done
if step released "pvfs released all $devices devices" wait_until 60 p9_released $devices; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
check pvfs-alive "pvfs is gone after the runs" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $VOL
rm -rf $Q /tmp/xe2e-multi-*
