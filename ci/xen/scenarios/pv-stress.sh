#!/bin/sh
# pv-stress: a check of the emulated machine itself, not of pvfs. Two Linux PV guests run
# short-lived pipelines at the same time (domu/guest-stress.sh); every pipeline must print
# the expected value and no program may crash. With xe2e.stress-pvfs on dom0's command line
# (XE2E_DOM0_ARGS) pvfs runs, idle, alongside; with xe2e.stress-one only one guest runs;
# with xe2e.stress-minutes=N rounds of guests run one after another until N minutes have
# passed (each round must be clean).
# xe2e-needs: linux-guest
. /xe2e/lib.sh
domu_initrd
if grep -q 'xe2e.stress-pvfs' /proc/cmdline; then
  IMG=/tmp/xe2e-stress.img
  p9_volume $IMG
  p9_start_pvfs $IMG
fi
GUESTS="s1 s2"
grep -q 'xe2e.stress-one' /proc/cmdline && GUESTS=s1
MINUTES=0
for a in $(cat /proc/cmdline); do case $a in xe2e.stress-minutes=*) MINUTES=${a#xe2e.stress-minutes=} ;; esac; done
end=$(( $(cut -d. -f1 /proc/uptime) + MINUTES * 60 ))
round=1
while :; do
  for v in $GUESTS; do
    step "create-$v" "round $round: xl create guest $v (guest script: stress)" \
      xl create /etc/xen/guests/linux-pv.cfg "name=\"g-$v\"" "extra=\"$GUEST_ARGS xe2e.guest=stress\"" \
      || fail "create-$v" "xl create failed"
  done
  for v in $GUESTS; do
    d=$(domid_of g-$v)
    [ -z "$d" ] || step "run-$v" "guest g-$v runs its pipelines" wait_until 900 domain_gone g-$v "$d" || fail "run-$v" "still running"
    tr -d '\r' < "$CONSOLE_DIR/guest-g-$v.log" | grep -a -E 'STRESS|KMSG' | sed "s/^/XE2E INFO round $round g-$v: /"
    check "stress-$v" "guest g-$v saw wrong pipeline output or crashed programs" console_has "g-$v" "XE2E-GUEST DONE rc=0"
    check "no-crash-$v" "guest g-$v crashed programs" sh -c "! grep -aq 'XE2E-GUEST KMSG' $CONSOLE_DIR/guest-g-$v.log"
    mv "$CONSOLE_DIR/guest-g-$v.log" "$CONSOLE_DIR/round-$round-g-$v.log" 2>/dev/null
  done
  [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || break
  round=$((round + 1))
done
echo "XE2E INFO pv-stress: $round round(s) of $GUESTS"
