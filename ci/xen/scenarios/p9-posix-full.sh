#!/bin/sh
# p9-posix-full: the whole pjdfstest suite on a pvfs share (p9-posix runs the groups that fit
# CI's budget), and fsx with four seeds each way. `cargo xtask posix` runs it next to
# p9-posix-qemu.
# xe2e-needs: linux-guest qemu-xen posix
POSIX_SET=all
POSIX_FSX_SEEDS=${POSIX_FSX_SEEDS:-4}
# link::link_count_max alone makes 32,000 links and removes them again: over 40 minutes
# under emulation on a loaded host
XE2E_POSIX_TIMEOUT=${XE2E_POSIX_TIMEOUT:-5400}
. /xe2e/scenarios/p9-posix.sh
