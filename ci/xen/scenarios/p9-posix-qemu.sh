#!/bin/sh
# p9-posix-qemu: the p9-posix-full suite (all of pjdfstest, fsx with four seeds, fsstress with
# 4,000 operations a process) against QEMU's 9pfs backend in dom0, for comparison (`cargo
# xtask posix` prints both sides by test). Its failures are reported, not judged.
# xe2e-needs: linux-guest qemu-xen posix
POSIX_BACKEND=qemu
POSIX_SET=${POSIX_SET:-all}
POSIX_FSX_SEEDS=${POSIX_FSX_SEEDS:-4}
POSIX_FSSTRESS=${POSIX_FSSTRESS:-4000}
# link::link_count_max alone makes 32,000 links and removes them again: over 40 minutes
# under emulation on a loaded host
XE2E_POSIX_TIMEOUT=${XE2E_POSIX_TIMEOUT:-5400}
. /xe2e/scenarios/p9-posix.sh
