#!/bin/sh
# boot: pvfs starts from pvfs-stubdom.cfg, reports ready through xenstore, prints its banner
# through port 0xE9 (Xen logs it as "(d<N>) pvfs ..."), and is destroyed cleanly.
. /xe2e/lib.sh
READY_TIMEOUT=30

[ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF (from $(cat /xe2e/pvfs-kernel-source); build it: cargo xtask build)"
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
[ -n "$name" ] || abort config "no name= in $PVFS_CFG"

step create "xl create $PVFS_CFG" xl create "$PVFS_CFG" || abort create "xl create failed"
domid=$(domid_of "$name")
[ -n "$domid" ] || abort create "domain $name not listed after xl create"
info "$name is domain $domid"

status_ready() { [ "$(xenstore-read "/local/domain/$domid/data/pvfs/status" 2>/dev/null)" = ready ]; }
if step ready "data/pvfs/status = ready" wait_until $READY_TIMEOUT status_ready; then
  pass ready
else
  last=$(xenstore-read "/local/domain/$domid/data/pvfs/status" 2>&1)
  fail ready "/local/domain/$domid/data/pvfs/status is not 'ready' after ${READY_TIMEOUT}s (state $(state_of "$name"), read: $last)"
  diagnostics
fi

banner=$(xl dmesg | grep -F "(d$domid) pvfs" | head -1)
if [ -n "$banner" ]; then
  info "banner: $banner"
  pass banner
else
  fail banner "no line starting with 'pvfs' from (d$domid) in xl dmesg"
fi

# Grant table: pvfs grants a page to itself and copies through the grant at boot.
check grants "no 'grant self-check ok' from (d$domid)" dmesg_has "$domid" "grant self-check ok"

step destroy "xl destroy $name" xl destroy "$name" || fail destroy "xl destroy failed"
check gone "domain $domid still exists after xl destroy" wait_until 10 domain_gone "$name" "$domid"
