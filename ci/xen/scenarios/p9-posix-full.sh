#!/bin/sh
# p9-posix-full: the whole pjdfstest suite on a pvfs share (p9-posix runs the groups that fit
# CI's budget), fsx with four seeds each way, and fsstress with 4,000 operations a process.
# `cargo xtask posix` runs it next to p9-posix-qemu.
# xe2e-needs: linux-guest qemu-xen posix
POSIX_SET=all
POSIX_FSX_SEEDS=${POSIX_FSX_SEEDS:-4}
POSIX_FSSTRESS=${POSIX_FSSTRESS:-4000}
# link::link_count_max alone makes 32,000 links and removes them again: over 40 minutes
# under emulation on a loaded host
XE2E_POSIX_TIMEOUT=${XE2E_POSIX_TIMEOUT:-5400}
. /xe2e/scenarios/p9-posix.sh
