#!/bin/sh
# Guest script "hello": the guest runs as a Xen PV domain and has the 9p-over-Xen transport.
rc=0
if grep -q 9pnet_xen /proc/modules; then echo "XE2E-GUEST OK 9pnet_xen loaded"
else echo "XE2E-GUEST FAIL 9pnet_xen not loaded"; rc=1; fi
if grep -qw 9p /proc/filesystems; then echo "XE2E-GUEST OK 9p filesystem registered"
else echo "XE2E-GUEST FAIL 9p filesystem missing"; rc=1; fi
if [ -d /sys/bus/xen ]; then echo "XE2E-GUEST OK xenbus present"
else echo "XE2E-GUEST FAIL /sys/bus/xen missing"; rc=1; fi
exit $rc
