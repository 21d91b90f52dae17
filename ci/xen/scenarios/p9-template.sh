#!/bin/sh
# p9-template: TEMPLATE_GUESTS Linux guests (default 8) boot at once with their root file
# system on pvfs (root=root rootfstype=9p rootflags=trans=xen,version=9p2000.L, mounted by the
# guests' initramfs as Debian's would), each from a template share: its own directory
# /guests/vmN merged with the template /templates/debian (`pvfs share add --template`). The
# template is made from the Debian 13 (or 12) packages the test bed fetches: dom0's loader, C
# library, bash, e2fsprogs and busybox, and an /sbin/init (below). Each guest, from its template
# root: runs bash (its loader and libraries read through pvfs), checks a template file's
# checksum, writes its own /etc/hostname (a copy-up), installs /usr/local/bin/hello (a new
# file where the template has a directory), removes /etc/issue (a whiteout) and chmods
# /etc/motd (a metadata copy-up), then checks that it sees its own changes and nothing of the
# other guests'. Afterwards: every guest passed its checks, pvfs released every device, the
# template is byte for byte what it was, each guest's directory holds its own changes, the
# volume is e2fsck-clean, and the space the guests used is printed: the template once, plus
# what the guests changed.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
p9_need_pvfs_cli
IMG=/tmp/xe2e-template.img
N=${TEMPLATE_GUESTS:-8}
T=/tmp/xe2e-template-tree
D=$T/templates/debian

domu_initrd
rm -rf $T
mkdir -p $D/bin $D/sbin $D/etc $D/proc $D/sys $D/dev $D/tmp $D/root $D/usr/local/bin $D/usr/bin $D/usr/sbin
# The Debian part: trixie's (or bookworm's) loader and every library in dom0's tree, bash,
# and the e2fsprogs programs, as the packages ship them.
cp -a /lib64 $D/lib64 && mkdir -p $D/lib && cp -a /lib/x86_64-linux-gnu $D/lib/ || abort template "cannot copy dom0's libraries"
cp /bin/bash $D/bin/bash && cp /sbin/mkfs.ext4 /sbin/e2fsck /sbin/debugfs $D/usr/sbin/ || abort template "cannot copy dom0's programs"
cp /bin/busybox $D/bin/busybox || abort template "no busybox"
for a in sh cat echo sed grep ls mount umount mkdir chmod sync poweroff sha256sum stat uname cut tr head wc rm printf test hostname; do
  ln -s busybox $D/bin/$a
done
echo template > $D/etc/hostname
echo "Debian GNU/Linux (pvfs template)" > $D/etc/issue
echo "welcome" > $D/etc/motd
chmod 644 $D/etc/motd
(cd $D && sha256sum lib/x86_64-linux-gnu/libc.so.6) > $D/etc/xe2e-libc.sha256
cat > $D/sbin/init <<'EOF'
#!/bin/sh
# The template's init: runs in each guest as PID 1 from its pvfs root, checks, changes a few
# things, checks again, and powers off. Lines for dom0 start with "XE2E-GUEST ".
PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null
vm=$(sed -n 's/.*xe2e\.vm=\([^ ]*\).*/\1/p' /proc/cmdline)
ok=1
bad() { echo "XE2E-GUEST FAIL $vm: $*"; ok=0; }
echo "XE2E-GUEST TEMPLATE ROOT $vm $(grep ' / ' /proc/mounts | head -1)"
v=$(/bin/bash -c 'echo "$BASH_VERSION"') && [ -n "$v" ] || bad "bash from the template does not run"
sha256sum -c /etc/xe2e-libc.sha256 >/dev/null 2>&1 || bad "libc.so.6 does not match the template's checksum"
[ "$(cat /etc/hostname)" = template ] || bad "hostname before: $(cat /etc/hostname)"
[ -e /usr/local/bin/hello ] && bad "another guest's /usr/local/bin/hello is visible"
echo "$vm" > /etc/hostname || bad "cannot write /etc/hostname"
printf '#!/bin/sh\necho "hello from %s"\n' "$vm" > /usr/local/bin/hello && chmod 755 /usr/local/bin/hello || bad "cannot install /usr/local/bin/hello"
rm /etc/issue || bad "cannot remove /etc/issue"
chmod 600 /etc/motd || bad "cannot chmod /etc/motd"
sync
[ "$(cat /etc/hostname)" = "$vm" ] || bad "hostname after: $(cat /etc/hostname)"
[ "$(/usr/local/bin/hello)" = "hello from $vm" ] || bad "hello says: $(/usr/local/bin/hello 2>&1)"
[ "$(ls /usr/local/bin)" = hello ] || bad "/usr/local/bin holds: $(ls /usr/local/bin | tr '\n' ' ')"
[ -e /etc/issue ] && bad "/etc/issue is still there"
[ "$(stat -c %a /etc/motd)" = 600 ] || bad "/etc/motd mode $(stat -c %a /etc/motd)"
[ "$(cat /etc/motd)" = welcome ] || bad "/etc/motd reads: $(cat /etc/motd)"
ls -a /etc | grep -q pvfs && bad "/etc shows pvfs's own entries: $(ls -a /etc | tr '\n' ' ')"
ls -a / | grep -q pvfs && bad "/ shows pvfs's own entries: $(ls -a / | tr '\n' ' ')"
[ $ok = 1 ] && echo "XE2E-GUEST TEMPLATE OK $vm bash $v"
sync
echo "XE2E-GUEST DONE"
poweroff -f
echo o > /proc/sysrq-trigger
EOF
chmod 755 $D/sbin/init
tree_sums $D > /tmp/xe2e-template.sums
i=1
while [ $i -le $N ]; do mkdir -p $T/guests/vm$i; i=$((i + 1)); done
info "template: $(find $D -type f | wc -l) files, $(du -sk $D | cut -f1) KiB"
step mkfs "mkfs.ext4 -d of the template and $N empty guest directories into a 512 MiB image" make_volume $T $IMG 512 || abort mkfs "mkfs.ext4 failed"
# used_kib IMG: the image's used space (blocks in use, from the superblock), in KiB
used_kib() { debugfs -R stats "$1" 2>/dev/null | awk '/^Block count:/ {b=$3} /^Free blocks:/ {f=$3} /^Block size:/ {s=$3} END {print (b - f) * s / 1024}'; }
used0=$(used_kib $IMG)
p9_start_pvfs $IMG
i=1
while [ $i -le $N ]; do
  step "create-vm$i" "xl create -p vm$i" xl create -p /etc/xen/guests/linux-pv.cfg "name=\"vm$i\"" "memory=96" \
    "extra=\"$GUEST_ARGS root=root rootfstype=9p rootflags=trans=xen,version=9p2000.L xe2e.vm=vm$i\"" || fail "create-vm$i" "xl create failed"
  step "share-vm$i" "pvfs share add vm$i --template" $PVFS share add vm$i --tag root --path /guests/vm$i --template /templates/debian \
    || fail "share-vm$i" "pvfs share add failed"
  eval "dom_vm$i=\$(domid_of vm$i)"
  i=$((i + 1))
done
i=1
while [ $i -le $N ]; do xl unpause vm$i; i=$((i + 1)); done
i=1
while [ $i -le $N ]; do
  eval "d=\$dom_vm$i"
  [ -z "$d" ] || wait_until 900 domain_gone vm$i "$d" || { fail "finished-vm$i" "vm$i still running"; xl destroy vm$i; }
  log=$CONSOLE_DIR/guest-vm$i.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[vm$i] /"
  if console_has vm$i "XE2E-GUEST TEMPLATE OK vm$i" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then
    pass "guest-vm$i"
  else
    fail "guest-vm$i" "$(console_why vm$i)"
  fi
  i=$((i + 1))
done
if step released "pvfs released all $N devices" wait_until 30 p9_released $N; then pass released; else fail released "stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"; fi
check pvfs-alive "pvfs is gone after $N guests" p9_pvfs_alive
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
# The template, read back from the volume, is what it was.
rm -rf /tmp/xe2e-template-after; mkdir -p /tmp/xe2e-template-after
debugfs -R "rdump /templates/debian /tmp/xe2e-template-after" $IMG >/dev/null 2>&1
tree_sums /tmp/xe2e-template-after/debian > /tmp/xe2e-template-after.sums
if cmp -s /tmp/xe2e-template.sums /tmp/xe2e-template-after.sums; then pass template-unchanged; else
  fail template-unchanged "$(diff /tmp/xe2e-template.sums /tmp/xe2e-template-after.sums | head -4 | tr '\n' ' ')"
fi
# Each guest's directory holds its own changes.
i=1
while [ $i -le $N ]; do
  h=$(debugfs -R "cat /guests/vm$i/etc/hostname" $IMG 2>/dev/null)
  s=$(debugfs -R "cat /guests/vm$i/usr/local/bin/hello" $IMG 2>/dev/null | grep -c "hello from vm$i")
  if [ "$h" = "vm$i" ] && [ "$s" = 1 ]; then pass "own-changes-vm$i"; else fail "own-changes-vm$i" "hostname '$h', hello lines $s"; fi
  i=$((i + 1))
done
used1=$(used_kib $IMG)
tk=$(du -sk $D | cut -f1)
info "space: template $tk KiB once; volume used $used0 KiB before the guests, $used1 KiB after $N guests: $((used1 - used0)) KiB for all their changes, $(((used1 - used0) / N)) KiB a guest"
check space "the guests' changes took more than 1 MiB a guest" [ $((used1 - used0)) -le $((N * 1024)) ]
rm -rf $IMG $T /tmp/xe2e-template-after
