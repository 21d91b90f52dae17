#!/bin/sh
# linux-pv: a stock Debian Linux PV guest boots with the test bed's busybox initramfs, reaches
# its /init, runs the guest script named by xe2e.guest= and powers off.
# xe2e-needs: linux-guest
. /xe2e/lib.sh
NAME=linux-pv
BOOT_TIMEOUT=90

domu_initrd
# extra= given on the command line overrides the one in the config file
step create "xl create guests/linux-pv.cfg (guest script: hello)" \
  xl create /etc/xen/guests/linux-pv.cfg "extra=\"$GUEST_ARGS xe2e.guest=hello xe2e.override=1\"" \
  || abort create "xl create failed"
domid=$(domid_of $NAME)
info "$NAME is domain $domid"

if step init "guest kernel boots and reaches /init" wait_until $BOOT_TIMEOUT console_has $NAME "XE2E-GUEST READY"; then
  pass init
else
  fail init "no 'XE2E-GUEST READY' on the guest console after ${BOOT_TIMEOUT}s"
  diagnostics
  exit 1
fi
if step run "guest script runs and the guest powers off" wait_until 30 domain_gone $NAME "$domid"; then
  pass poweroff
else
  fail poweroff "guest still running 30s after reaching /init"
fi
echo "---- guest console ----"
sed "s/^/[$NAME] /" "$CONSOLE_DIR/guest-$NAME.log"
check guest-script "guest script did not report success" console_has $NAME "XE2E-GUEST DONE rc=0"
# proves xl's "key=value after the config file" overrides (fault relies on it for cmdline=)
check override "extra= given to xl create not seen by the guest" console_has $NAME "xe2e.override=1"
