#!/bin/sh
# fault: pvfs started with pvfs.fault=ud takes an invalid-opcode exception, prints a report
# (vector, rip, error code, stack) and shuts itself down as crashed.
. /xe2e/lib.sh
CRASH_TIMEOUT=30

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF (from $(cat /xe2e/pvfs-kernel-source); build it: cargo xtask build)"
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
[ -n "$name" ] || abort config "no name= in $PVFS_CFG"

# key=value arguments after the config file override its settings (xl: last one wins)
step create "xl create with cmdline=pvfs.fault=ud, on_crash=preserve" \
  xl create "$PVFS_CFG" 'on_crash="preserve"' 'cmdline="pvfs.fault=ud"' || abort create "xl create failed"
domid=$(domid_of "$name")
[ -n "$domid" ] || abort create "domain $name not listed after xl create"
info "$name is domain $domid"

crashed() { case $(state_of "$name") in *c*) return 0 ;; esac; return 1; }
if step crash "domain reaches the crashed state" wait_until $CRASH_TIMEOUT crashed; then
  pass crashed
else
  st=$(state_of "$name")
  fail crashed "domain $domid not crashed after ${CRASH_TIMEOUT}s (xl list state: ${st:-gone})"
  diagnostics
fi

info "report:"
xl dmesg | grep -F "(d$domid)" | tail -30 | sed "s/^/xl dmesg: /"
# the report format is kernel/src/fatal.rs's
check report-exception "no exception line from (d$domid) in xl dmesg" \
  dmesg_has "$domid" "pvfs: EXCEPTION #UD invalid opcode (vector 6)"
check report-registers "no rip/error code line from (d$domid)" dmesg_has "$domid" "rip=0x"
check report-error-code "no error code from (d$domid)" dmesg_has "$domid" "error code=0x"
check report-stack "no stack trace from (d$domid)" dmesg_has "$domid" "stack:"
check report-crash "no crash notice from (d$domid)" \
  dmesg_has "$domid" "pvfs: fatal exception, shutting down (crash)"
if xenstore-read "/local/domain/$domid/data/pvfs/status" 2>/dev/null | grep -qx ready; then
  info "note: status was 'ready' before the fault"
fi

step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
check gone "domain $domid still exists after xl destroy" wait_until 10 domain_gone "$name" "$domid"
