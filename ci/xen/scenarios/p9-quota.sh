#!/bin/sh
# p9-quota: an export's quota changes while a guest is mounted. The guest (domu/guest-p9quota.sh)
# writes 1 MiB into export vm1, which already holds 4 MiB; dom0 then writes max-space=8 (MiB)
# into the device's backend keys under pvfs; the guest must see the quota as its file
# system's size (statfs) with what the export already held counted (at most 3 MiB free), and
# have a 4 MiB write refused with EDQUOT (pvfs's `quota_refusals` counter shows it answered
# Rlerror(EDQUOT); a Linux 6.12 guest's client reports it as EIO), and the device's own
# figures (`pvfs top --json`) show the write, the refusal and the export's use. dom0 then removes
# max-space; the guest must see the volume's size again and the same write must succeed. Xen 4.17's xl has no p9 quota options, so writing the keys
# (before or after the guest attaches) is how an administrator sets a quota there.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
IMG=/tmp/xe2e-p9-volume.img

p9_setup $IMG
g=g-quota
step create "xl create guest $g (export vm1, no quota)" xl create /etc/xen/guests/linux-pv.cfg "name=\"$g\"" \
  "p9=[ 'tag=share,path=/exports/vm1,security_model=none,backend=$name' ]" \
  "extra=\"$GUEST_ARGS xe2e.guest=p9quota\"" || abort create "xl create failed; device model log: $(dm_log $g)"
gid=$(domid_of $g)
be=/local/domain/$pvfs_domid/backend/9pfs/$gid/0
if step wrote "$g wrote 1 MiB without a quota" wait_until 120 console_has $g "XE2E-GUEST QUOTA WROTE-1M ok"; then
  step set "xenstore-write $be/max-space 8" xenstore-write "$be/max-space" 8 || fail set "xenstore-write failed"
else
  fail wrote "no WROTE-1M from $g"; diagnostics
fi
# The device's own figures (its `stats` key), as `pvfs top --json` prints them: one share.
top_num() { pvfs top --json --backend "$pvfs_domid" | tr '{,' '\n\n' | sed -n "s/^\"$1\":\([0-9]*\)\$/\1/p" | head -1; }
# What the guest has done so far shows there (pvfs publishes at most once a second): the
# 1 MiB written, the refusal, and the export's use measured with the quota (4 + 1 MiB).
device_figures_agree() {
  [ "$(top_num written_bytes)" -ge 1048576 ] 2>/dev/null &&
    [ "$(top_num quota_refusals)" -ge 1 ] 2>/dev/null &&
    [ "$(top_num used_bytes)" -ge 5242880 ] 2>/dev/null &&
    [ "$(top_num lat_count)" -ge 1 ] 2>/dev/null
}
if step limited "$g saw the limit and was refused" wait_until 120 console_has $g "XE2E-GUEST QUOTA LIMITED ok"; then
  if wait_until 10 device_figures_agree; then pass device-stats; else fail device-stats "pvfs top --json: $(pvfs top --json --backend "$pvfs_domid" 2>&1 | head -c 1500)"; fi
  pvfs top -b -n 1 --backend "$pvfs_domid" 2>&1 | sed 's/^/XE2E INFO top: /'
  pvfs share ls --backend "$pvfs_domid" 2>&1 | sed 's/^/XE2E INFO share ls: /'
  step lift "xenstore-rm $be/max-space" xenstore-rm "$be/max-space" || fail lift "xenstore-rm failed"
else
  fail limited "no LIMITED from $g"; diagnostics
fi
d=$gid
[ -z "$d" ] || wait_until 120 domain_gone $g "$d" || { fail finished "$g still running"; xl destroy $g; }
log=$CONSOLE_DIR/guest-$g.log
tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$g] /"
for k in sees-limit counts-old refused write-after-lift read-back; do
  if console_has $g "XE2E-GUEST QUOTA $k ok"; then pass "$k"; else fail "$k" "no 'QUOTA $k ok' from $g"; fi
done
# The refusal must come from pvfs as EDQUOT on the wire (Rlerror 122), whatever the guest's
# client turned it into (Linux 6.12 reports EIO: ci/xen/README.md, "Known client differences").
refusals=$(p9_stat quota_refusals)
echo "XE2E INFO pvfs answered ${refusals:-?} requests with Rlerror(EDQUOT)"
check edquot-on-wire "pvfs sent no Rlerror(EDQUOT) (quota_refusals=${refusals:-none})" [ "${refusals:-0}" -ge 1 ]
if console_has $g "XE2E-GUEST QUOTA refused-as-eio"; then
  echo "XE2E INFO $g's client reported EIO for pvfs's EDQUOT ($(uname -r) dom0; guest: see above)"
fi
if grep -aq 'XE2E-GUEST FAIL' "$log"; then fail guest "$(grep -a 'XE2E-GUEST FAIL' "$log" | head -3 | tr -d '\r' | tr '\n' ' ')"; else pass guest; fi
check pvfs-alive "pvfs is gone after the quota changes" p9_pvfs_alive
check logged "pvfs did not log the new quota" sh -c "xl dmesg | grep -q 'quota now'"
check measured "pvfs did not measure the export's usage" sh -c "xl dmesg | grep -q 'quota usage measured'"
# With its mapping window empty, pvfs offers a new device full-size rings (kernel/src/ringorder.rs).
check ring-offer "pvfs did not offer ring order 9 to the first device" sh -c "xl dmesg | grep -q 'offered ring order 9)'"
xl shutdown "$name" >/dev/null 2>&1
wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
check_volume $IMG
rm -f $IMG
