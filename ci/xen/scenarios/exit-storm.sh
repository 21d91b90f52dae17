#!/bin/sh
# exit-storm: a test of the platform, not of pvfs. pvfs boots with pvfs.exitstorm=SECS and,
# before it serves, spends SECS seconds with interrupts on (kernel/src/run/storm.rs) in rounds
# of EVTCHNOP_send to an event channel bound to its own vCPU (every hypercall comes back with
# an upcall to inject, the moment at which pvfs's triple faults were seen) and rounds of
# halting until a timer 20 us ahead, writing random pages of a 96 MiB buffer between signals
# and checking its CPU tables after every round.
# dom0 keeps the other CPU busy with xenstore traffic meanwhile (STORM_LOAD=0: idle).
# Options (xe2e.env.NAME=VALUE): STORM_SECS (default 30, what `cargo xtask test` runs; the
# runs in ci/xen/README.md used 240 and 420), STORM_LOAD (default 1).
. /xe2e/lib.sh
SECS=${STORM_SECS:-30}

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF (from $(cat /xe2e/pvfs-kernel-source); build it: cargo xtask build)"
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
[ -n "$name" ] || abort config "no name= in $PVFS_CFG"

step create "xl create with pvfs.exitstorm=$SECS, kept if it ends" \
  xl create "$PVFS_CFG" 'on_reboot="preserve"' 'on_crash="preserve"' "cmdline=\"pvfs.exitstorm=$SECS\"" ||
  abort create "xl create failed"
pvfs_domid=$(domid_of "$name")
[ -n "$pvfs_domid" ] || abort create "domain $name not listed after xl create"

loadpid=
if [ "${STORM_LOAD:-1}" = 1 ]; then
  (while :; do xenstore-ls /local >/dev/null 2>&1; done) &
  loadpid=$!
fi
# the post-mortem's walk of pvfs's IDT (/xe2e/walk.sh), tried on the live domain: the test
# the retry rule applies (walk_intact) must find every level present and both gates intact
xen-hvmctx "$pvfs_domid" > /tmp/storm-ctx 2>&1
walk=$(idt_walk "$pvfs_domid" /tmp/storm-ctx)
info "$walk"
check idt-walk "the walk of the live pvfs's IDT is not intact: ${walk:-no output}" walk_intact "$walk"
# the post-mortem's reading of the VMCB (vmcb_dump, vmcb_summary), tried on the live domain:
# Xen keeps V_INTR_MASKING set in every VMCB it runs, so a post-mortem that finds it clear
# shows a VMCB last written by something else
vmcb=$(vmcb_summary "$(vmcb_dump "$pvfs_domid")")
info "live vmcb: ${vmcb:-not read}"
check vmcb-read "the live pvfs's VMCB does not read with V_INTR_MASKING set: ${vmcb:-no dump}" \
  sh -c 'case "$1" in *"V_INTR_MASKING set"*) exit 0 ;; esac; exit 1' sh "$vmcb"
storm_over() { dmesg_has "$pvfs_domid" "exit storm: done" || ! p9_pvfs_alive; }
step storm "pvfs's exit storm ($SECS s)" wait_until $((SECS + 180)) storm_over
[ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null
xl dmesg | grep -F "(d$pvfs_domid)" | grep -F "exit storm" | tail -3 | sed 's/^/XE2E INFO /'
if dmesg_has "$pvfs_domid" "exit storm: done"; then
  pass storm
else
  fail storm "pvfs ended during its exit storm (state $(state_of "$name"))"
  pvfs_postmortem
  xl dmesg | tail -12 | sed 's/^/XE2E INFO xl dmesg: /'
fi
step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
