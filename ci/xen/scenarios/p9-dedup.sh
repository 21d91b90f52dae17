#!/bin/sh
# p9-dedup: live dedup on real Xen. The volume holds two guests' copies of one tree
# (/exports/g1/tree and /exports/g2/tree: dom0's loader and libraries from the fetched packages
# and 300 small files of random bytes). Guest dw keeps rewriting two files of g1's copy
# (domu/guest-p9dedup.sh, writer) and dr checksums g2's copy three times (reader) while
# `pvfs dedup` in dom0 makes the running pvfs merge the volume's identical files. Checks:
# the run merged the copies and saved most of one tree; the reader saw its files unchanged in
# every pass; the writer's files hold what it wrote last, in the guest and on the volume
# afterwards (`pvfs image cat`, which reads shared files); the volume is e2fsck-clean; and the
# two copies take at most 1.1 times the space of one (blocks in use beyond an empty volume's,
# against a volume made with one copy).
# xe2e-needs: linux-guest
. /xe2e/lib.sh
p9_need_pvfs_cli
VOL=/dev/ram0
T=$P9_TREE
SECS=${DEDUP_WRITE_SECS:-60}

domu_initrd
rm -rf $T; mkdir -p $T/exports/g1/tree/lib $T/exports/g1/tree/s
cp -a /lib64/. /lib/x86_64-linux-gnu/. $T/exports/g1/tree/lib/ || abort tree "cannot copy dom0's libraries"
i=0
while [ $i -lt 300 ]; do
  mkdir -p $T/exports/g1/tree/d$((i % 10))
  head -c $((512 + i * 37 % 16000)) /dev/urandom > $T/exports/g1/tree/d$((i % 10))/f$i
  i=$((i + 1))
done
echo "version 0 of f1" > $T/exports/g1/tree/s/f1
dd if=/dev/urandom of=$T/exports/g1/tree/s/f2 bs=4k count=16 2>/dev/null
cp -a $T/exports/g1 $T/exports/g2
(cd $T/exports/g2 && find tree -type f | LC_ALL=C sort | xargs sha256sum) > /tmp/xe2e-dedup-want.sums
info "tree: $(find $T/exports/g1/tree -type f | wc -l) files, $(du -sk $T/exports/g1/tree | cut -f1) KiB, twice on the volume"
# used_kib DEV: blocks in use (superblock counts), in KiB
used_kib() { debugfs -R stats "$1" 2>/dev/null | awk '/^Block count:/ {b=$3} /^Free blocks:/ {f=$3} /^Block size:/ {s=$3} END {print (b - f) * s / 1024}'; }
# reference volumes of the same size: empty, and with one copy
mkdir -p /tmp/xe2e-dedup-empty /tmp/xe2e-dedup-one/exports
cp -a $T/exports/g1 /tmp/xe2e-dedup-one/exports/
make_volume /tmp/xe2e-dedup-empty /tmp/xe2e-dedup-ref.img 256 -b 4096 && u_empty=$(used_kib /tmp/xe2e-dedup-ref.img)
make_volume /tmp/xe2e-dedup-one /tmp/xe2e-dedup-ref.img 256 -b 4096 && u_one=$(used_kib /tmp/xe2e-dedup-ref.img)
rm -rf /tmp/xe2e-dedup-ref.img /tmp/xe2e-dedup-empty /tmp/xe2e-dedup-one
step mkfs "mkfs.ext4 -d of both copies into 256 MiB of $VOL" make_volume $T $VOL 256 -b 4096 || abort mkfs "mkfs.ext4 failed"
u_two=$(used_kib $VOL)
rm -rf $T
p9_start_pvfs $VOL
step create-dw "xl create dw (writer)" xl create /etc/xen/guests/linux-pv.cfg 'name="dw"' "memory=128" \
  "p9=[ 'tag=share,path=/exports/g1,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9dedup xe2e.role=writer xe2e.secs=$SECS\"" || fail create-dw "xl create failed"
step create-dr "xl create dr (reader)" xl create /etc/xen/guests/linux-pv.cfg 'name="dr"' "memory=128" \
  "p9=[ 'tag=share,path=/exports/g2,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9dedup xe2e.role=reader\"" || fail create-dr "xl create failed"
d1=$(domid_of dw) d2=$(domid_of dr)
both_mounted() { console_has dw "XE2E-GUEST DEDUP MOUNTED" && console_has dr "XE2E-GUEST DEDUP MOUNTED"; }
step mounted "both guests mounted" wait_until 300 both_mounted || fail mounted "a guest did not mount"
if out=$(step dedup "pvfs dedup while the guests work" $PVFS dedup --json --wait 900 2>&1); then
  info "pvfs dedup: $out"
  merged=$(echo "$out" | sed -n 's/.*"files_merged": *\([0-9]*\).*/\1/p')
  saved=$(echo "$out" | sed -n 's/.*"bytes_saved": *\([0-9]*\).*/\1/p')
  check dedup-merged "merged ${merged:-?} files, saved ${saved:-?} bytes" [ "${merged:-0}" -ge 300 ]
else
  fail dedup "$out"
fi
for g in dw dr; do
  case $g in dw) d=$d1 ;; *) d=$d2 ;; esac
  [ -z "$d" ] || wait_until 600 domain_gone $g "$d" || { fail "finished-$g" "$g still running"; xl destroy $g; }
  tr -d '\r' < $CONSOLE_DIR/guest-$g.log | grep -a 'XE2E-GUEST' | grep -av 'XE2E-GUEST SUM ' | sed "s/^/[$g] /"
  if console_has $g "XE2E-GUEST DEDUP DONE" && ! grep -aq 'XE2E-GUEST FAIL' $CONSOLE_DIR/guest-$g.log; then pass "guest-$g"; else
    fail "guest-$g" "$(grep -a 'XE2E-GUEST FAIL' $CONSOLE_DIR/guest-$g.log | head -3 | tr -d '\r' | tr '\n' ' ')"
  fi
done
tr -d '\r' < $CONSOLE_DIR/guest-dr.log | sed -n 's/^XE2E-GUEST SUM //p' > /tmp/xe2e-dedup-got.sums
if cmp -s /tmp/xe2e-dedup-want.sums /tmp/xe2e-dedup-got.sums; then pass reader-sees-its-files; else
  fail reader-sees-its-files "$(diff /tmp/xe2e-dedup-want.sums /tmp/xe2e-dedup-got.sums | head -4 | tr '\n' ' ')"
fi
w=$(tr -d '\r' < $CONSOLE_DIR/guest-dw.log | sed -n 's/^XE2E-GUEST DEDUP WRITES //p' | tail -1)
info "writer: $w"
if step released "pvfs released both devices" wait_until 30 p9_released 2; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
check pvfs-alive "pvfs is gone" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $VOL
f1=$($PVFS image cat $VOL /exports/g1/tree/s/f1 | sha256sum | cut -d' ' -f1)
f2=$($PVFS image cat $VOL /exports/g1/tree/s/f2 | sha256sum | cut -d' ' -f1)
case "$w" in *"f1=$f1 f2=$f2"*) pass writer-on-disk ;; *) fail writer-on-disk "on the volume f1=$f1 f2=$f2, the writer last wrote: $w" ;; esac
g2f1=$($PVFS image cat $VOL /exports/g2/tree/s/f1)
check reader-copy-on-disk "g2's s/f1 on the volume reads '$g2f1'" [ "$g2f1" = "version 0 of f1" ]
u_after=$(used_kib $VOL)
ratio=$(awk -v a="$u_after" -v e="$u_empty" -v o="$u_one" 'BEGIN { printf "%.3f", (a - e) / (o - e) }')
info "space beyond an empty volume: one copy $((u_one - u_empty)) KiB, two copies $((u_two - u_empty)) KiB before dedup, $((u_after - u_empty)) KiB after: ${ratio}x one copy"
check space "two copies after live dedup take ${ratio}x one" awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }'
