#!/bin/sh
# p9-many: MANY_GUESTS Linux guests (default 16) at once on one pvfs domain of 128 MiB, each
# with its own share (/exports/gN, made by dom0 with a known file of 1 MiB), each doing mixed
# reads, writes and metadata at the same time (domu/guest-p9many.sh: checksums of its export,
# then MANY_ROUNDS rounds (default 3) of the write probe, MANY_META files (default 300)
# created, stat'ed and removed, and 4 MiB written and compared). Every guest must see exactly its own export and finish every
# round; `pvfs top` is printed while they run; afterwards pvfs must have released every
# device (as many connects as disconnects, no grant mapped), be alive, and the volume must be
# e2fsck-clean. Guests get 96 MiB each so that 16 fit next to dom0 in the test bed's memory.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img
N=${MANY_GUESTS:-16}
ROUNDS=${MANY_ROUNDS:-3}
META=${MANY_META:-300}

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
domu_initrd
rm -rf $P9_TREE
i=1
while [ $i -le $N ]; do
  mkdir -p $P9_TREE/exports/g$i
  echo "guest $i's own file" > $P9_TREE/exports/g$i/hello.txt
  dd if=/dev/urandom of=$P9_TREE/exports/g$i/data.bin bs=1M count=1 2>/dev/null
  tree_sums $P9_TREE/exports/g$i > /tmp/xe2e-want-g$i.sums
  i=$((i + 1))
done
step mkfs "mkfs.ext4 -d of $N exports into a 512 MiB image" make_volume $P9_TREE $IMG 512 || abort mkfs "mkfs.ext4 failed"
p9_start_pvfs $IMG
i=1
while [ $i -le $N ]; do
  step "create-g$i" "xl create g$i" xl create /etc/xen/guests/linux-pv.cfg "name=\"g$i\"" "memory=96" \
    "p9=[ 'tag=share,path=/exports/g$i,security_model=none,backend=$name' ]" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9many xe2e.rounds=$ROUNDS xe2e.meta=$META\"" || fail "create-g$i" "xl create failed; device model log: $(dm_log g$i)"
  eval "dom_g$i=\$(domid_of g$i)"
  i=$((i + 1))
done
all_mounted() {
  j=1
  while [ $j -le $N ]; do console_has g$j "XE2E-GUEST MANY MOUNTED" || return 1; j=$((j + 1)); done
}
if step mounted "all $N guests mounted their shares" wait_until 900 all_mounted; then
  pvfs top -b -n 2 --backend "$pvfs_domid" 2>&1 | sed 's/^/XE2E INFO top: /'
else
  fail mounted "not every guest mounted"
fi
i=1
while [ $i -le $N ]; do
  eval "d=\$dom_g$i"
  [ -z "$d" ] || wait_until 1200 domain_gone g$i "$d" || { fail "finished-g$i" "g$i still running"; xl destroy g$i; }
  log=$CONSOLE_DIR/guest-g$i.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | grep -av -E '^XE2E-GUEST (SUM|W|WSUM|BENCH) ' | sed "s/^/[g$i] /"
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-got-g$i.sums
  if cmp -s /tmp/xe2e-want-g$i.sums /tmp/xe2e-got-g$i.sums; then pass "own-export-g$i"; else fail "own-export-g$i" "g$i does not see exactly /exports/g$i: $(diff /tmp/xe2e-want-g$i.sums /tmp/xe2e-got-g$i.sums | head -4 | tr '\n' ' ')"; fi
  if console_has g$i "XE2E-GUEST MANY DONE" && console_has g$i "XE2E-GUEST MANY ROUND $ROUNDS ok" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then
    pass "work-g$i"
  else
    fail "work-g$i" "$(console_why g$i)"
  fi
  i=$((i + 1))
done
if step released "pvfs released all $N devices" wait_until 30 p9_released $N; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
echo "XE2E INFO pvfs after $N guests: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1 | tr ' ' '\n' | grep -E '^(heap_live_bytes|heap_peak_bytes|requests|cache_bytes|stack_peak_bytes)=' | tr '\n' ' ')"
check pvfs-alive "pvfs is gone after $N guests" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
