#!/bin/sh
# Guest script "stress": many short-lived processes and pipes, no 9pfs. Checks that the
# emulated machine runs user programs correctly while other domains are busy (the pv-stress
# scenario runs two of these at once). Every iteration's pipeline output is compared with the
# expected value; a crashed program shows up as a mismatch (and as a KMSG segfault line).
want=$(echo "xe2e stress" | sha256sum | cut -d' ' -f1)
bad=0 i=0
while [ $i -lt 150 ]; do
  got=$(echo "xe2e stress" | sha256sum | cut -d' ' -f1 | sed 's/x/x/')
  [ "$got" = "$want" ] || bad=$((bad + 1))
  i=$((i + 1))
done
echo "XE2E-GUEST STRESS iterations=$i bad=$bad"
[ $bad = 0 ]
