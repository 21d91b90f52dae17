#!/bin/sh
# p9-sweep (tuning, not a test): one PV guest runs a short 9pfs workload against pvfs started
# with each command line of the sweep in turn, three rounds in one test-bed run, so that
# settings are compared under the same conditions. Prints "XE2E INFO sweep r<round> <entry>
# <figure> <rate>" lines and pvfs's stats after each; fails only if a run does not complete.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
# Entries (XE2E_SWEEP on the host, separated by spaces): CMDLINE[@pin|@split][@ram][@w512], where
# CMDLINE's options are joined with "+" (pvfs.poll_us=0+pvfs.cache_mib=64); @pin runs pvfs on
# physical CPU 1 and the guest on CPU 0; @split also moves dom0 to CPU 1, so the guest has
# CPU 0 alone; @ram puts the volume on dom0's RAM disk /dev/ram0 instead of an image file
# (which blkback reaches through a loop device); @w512 gives pvfs twice the default credit
# scheduler weight (xl cpu_weight=512).
SWEEP=$(cat /xe2e/sweep 2>/dev/null)
SWEEP="${SWEEP:-pvfs.poll_us=0 pvfs.poll_us=1000 pvfs.poll_us=10000}"
[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
for round in 1 2 3; do
for c in $SWEEP; do
  cmd=${c%%@*}; pvfs_cpus=; guest_cpus=; vol=$IMG
  case $c in *@pin*|*@split*) pvfs_cpus='cpus="1"'; guest_cpus='cpus="0"' ;; esac
  case $c in *@split*) xl vcpu-pin Domain-0 all 1 ;; esac
  case $c in *@w512*) pvfs_cpus="$pvfs_cpus cpu_weight=512" ;; esac
  case $c in *@ram*) vol=/dev/ram0 ;; esac
  cmd="pvfs.log=debug $(echo "$cmd" | tr '+' ' ')"
  rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/bench
  make_volume $P9_TREE $vol 256 -b 4096 >/dev/null 2>&1 || abort mkfs "mkfs.ext4 failed"
  PVFS_XL_EXTRA=$pvfs_cpus p9_start_pvfs $vol "$cmd"
  g=g-sweep
  xl create /etc/xen/guests/linux-pv.cfg $guest_cpus "name=\"$g\"" "p9=[ 'tag=share,path=/exports/bench,security_model=none,backend=$name' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9sweep\"" || fail "create-$c" "xl create failed"
  d=$(domid_of "$g")
  [ -z "$d" ] || wait_gone_quietly 600 "$g" "$d" || { fail "run-$c" "still running"; xl destroy "$g"; }
  log=$CONSOLE_DIR/guest-$g.log
  if console_has "$g" "XE2E-GUEST BENCH DONE"; then pass "run-$c"; else fail "run-$c" "workload did not complete"; fi
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST BENCH \([A-Za-z0-9-]*\) \([0-9.]*\)$/\1 \2/p' | while read -r k t; do
    case $k in write-*|read-*) a=32; u=MiB/s ;; *) a=900; u=ops/s ;; esac
    awk -v k="$k" -v t="$t" -v a="$a" -v u="$u" -v c="$c" -v r="$round" 'BEGIN{ if (t > 0) printf "XE2E INFO sweep r%s %-22s %-10s %8.1f %s\n", r, c, k, a / t, u }'
  done
  info "sweep r$round $c stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
  rm -f "$log"
  xl shutdown "$name" >/dev/null 2>&1
  wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
  case $c in *@split*) xl vcpu-pin Domain-0 all all ;; esac
done
done
rm -f $IMG
