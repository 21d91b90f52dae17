#!/bin/sh
# p9-baselines (benchmark, not a test): what a user would pick instead of pvfs, measured with
# the same guest and workload in one test-bed run (the machinery: ci/xen/dom0/xe2e-bench.sh):
# pvfs (also mounted with cache=loose and with cache=mmap); QEMU's 9pfs backend in dom0 (on
# Xen 4.19 and later started again once the guest exists, xl_create_qemu in
# ci/xen/dom0/xe2e-lib.sh), xen-9pfsd (Xen 4.19 and later) and on Debian 13 dom0's kernel NFS
# server, all exporting a directory on an ext4 RAM disk in dom0; and the guest's own ext4 on a vbd backed by a RAM disk. The workload adds unpacking a real source
# tree (e2fsprogs 1.47.0 without its one symbolic link: 2,683 entries, 32 MiB), a stat walk
# over it and its removal.
# Figures go to docs/benchmarks.md.
# xe2e-needs: linux-guest qemu-xen srctree nfs
. /xe2e/lib.sh
# QEMU's column runs one round unless QEMU_ROUNDS says more: its guest takes about 15 minutes a
# round on Debian 13, three rounds would add 45 minutes
QEMU_ROUNDS=${QEMU_ROUNDS:-1}
. /xe2e/bench.sh
QEMU_DIR=$SRV_DIR/qemu
if xen_at_least 4.19; then
  # xen-9pfsd's column reports the daemon's crash at a Linux guest's mount (bench_9pfsd_crashed)
  # and is left out of the later rounds; QEMU's comes up through xl_create_qemu
  cols="pvfs pvfs-loose pvfs-mmap 9pfsd qemu nfs disk"
else
  cols="pvfs pvfs-loose pvfs-mmap qemu disk"
  info "xen-9pfsd and NFS are left out: Xen $(sed -n "s/^xen_version *: *//p" /run/xe2e/xl-info) has no xen-9pfsd (4.19 and later do), and the NFS server is staged on Debian 13 only"
fi
# BASELINES_COLS (xe2e.env.BASELINES_COLS=pvfs+nfs): other columns, pvfs first
cols=$(echo "${BASELINES_COLS:-$cols}" | tr '+' ' ')
bench_srv
bench_prepare $cols
bench_run $cols
