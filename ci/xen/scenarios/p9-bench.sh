#!/bin/sh
# p9-bench (benchmark, not a test): a PV guest runs the same 9pfs workload against pvfs
# (p9=[...,backend=pvfs]) and against QEMU's 9pfs backend in dom0 (the standard p9=[...]
# without backend=, sharing a dom0 tmpfs directory), in alternating rounds in one test-bed run
# (the machinery and what it prints: ci/xen/dom0/xe2e-bench.sh). Figures go to
# docs/benchmarks.md. p9-baselines adds xen-9pfsd and the guest's own disk.
# xe2e-needs: linux-guest qemu-xen
. /xe2e/lib.sh
. /xe2e/bench.sh
bench_prepare pvfs qemu
bench_run pvfs qemu
