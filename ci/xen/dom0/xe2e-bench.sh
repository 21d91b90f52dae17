# The benchmark machinery of p9-bench and p9-baselines (sourced after /xe2e/lib.sh): one PV
# guest a round and column runs the same workload (ci/xen/domu/guest-p9bench.sh) against each
# column's backend, in alternating rounds (column 1, column 2, ..., then again: ROUNDS rounds)
# in one test-bed run, because the emulated machine's speed drifts by tens of percent within
# minutes. Each figure is the median over the rounds; pvfs's ratio to each other column is that
# of the medians. Prints every round's figures ("XE2E INFO bench-round ...") and the medians and
# ratios ("XE2E INFO bench ..."); fails only if a run does not complete.
#
# Columns (bench_run's arguments):
#   pvfs   pvfs's 9pfs backend (p9=[...,backend=<pvfs>]), its volume on dom0's RAM disk ram0
#   pvfs-loose  the same device mounted with cache=loose (the guest caches data and metadata;
#          meant for a share that only this guest writes)
#   pvfs-mmap  the same device mounted with cache=mmap (the guest's page cache for mmap only)
#   qemu   QEMU's 9pfs backend in dom0 (the standard p9=[...]), exporting $QEMU_DIR
#   9pfsd  xen-9pfsd in dom0 (Xen 4.19 and later; type=xen_9pfsd, 9P2000.u), exporting $SRV_DIR
#   nfs    dom0's kernel NFS server (v4 only, export option sync), exporting $SRV_DIR/nfs, over
#          the guest's netfront, dom0's netback and a point-to-point link (script xe2e-vif);
#          the guest mounts with the options mount -t nfs4 picks (NFS 4.2, TCP)
#   disk   the guest's own ext4 on a vbd (phy:/dev/ram2): the "local file system on a block
#          device" every 9pfs backend is measured against
# QEMU_DIR is dom0's tmpfs by default (p9-bench) or $SRV_DIR, a directory on an ext4 RAM disk
# (ram1) like the others' (p9-baselines).

VOL=/dev/ram0
SRV_DEV=/dev/ram1
SRV_DIR=/srv/xe2e-bench
DISK_DEV=/dev/ram2
QEMU_DIR=${QEMU_DIR:-/tmp/xe2e-qemu-share}
ROUNDS=${ROUNDS:-3}
# QEMU_ROUNDS: rounds of the qemu column, at most ROUNDS (its guest takes about 15 minutes a
# round on Debian 13: the source tree alone about 10)
QEMU_ROUNDS=${QEMU_ROUNDS:-$ROUNDS}
# columns that cannot run any more in this boot (bench_9pfsd_crashed)
BENCH_DROPPED=
BENCH_FILES=/tmp/xe2e-bench

# bench_prepare COLUMN...: the volumes and exports the columns need, each holding cold.bin
bench_prepare() {
  [ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
  domu_initrd
  rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/bench
  # A file the guest reads first: cold for every column (pvfs's block cache starts empty, the
  # guest's page cache too; dom0's page cache may hold the other columns' copies, said in
  # docs/benchmarks.md).
  dd if=/dev/urandom of=$P9_TREE/exports/bench/cold.bin bs=1M count=64 2>/dev/null || abort cold "no cold.bin"
  for c in "$@"; do
    case $c in
      pvfs)
        # 4 KiB blocks, as mkfs.ext4 picks for any volume over 512 MiB (it would pick 1 KiB here).
        step mkfs "mkfs.ext4 -b 4096 -d of the export (cold.bin) into 256 MiB of $VOL" make_volume $P9_TREE $VOL 256 -b 4096 || abort mkfs "mkfs.ext4 failed"
        # pvfs.log=debug: pvfs logs its per-request profile when the guest disconnects.
        p9_start_pvfs $VOL pvfs.log=debug ;;
      qemu)
        rm -rf $QEMU_DIR; mkdir -p $QEMU_DIR
        cp $P9_TREE/exports/bench/cold.bin $QEMU_DIR/ || abort cold "no room for cold.bin in $QEMU_DIR" ;;
      9pfsd)
        rm -rf $SRV_DIR/9pfsd; mkdir -p $SRV_DIR/9pfsd
        cp $P9_TREE/exports/bench/cold.bin $SRV_DIR/9pfsd/ || abort cold "no room for cold.bin in $SRV_DIR/9pfsd" ;;
      nfs)
        rm -rf $SRV_DIR/nfs; mkdir -p $SRV_DIR/nfs
        cp $P9_TREE/exports/bench/cold.bin $SRV_DIR/nfs/ || abort cold "no room for cold.bin in $SRV_DIR/nfs"
        step nfsd "dom0's NFS server (v4) exports $SRV_DIR/nfs" bench_nfsd || abort nfsd "the NFS server did not start" ;;
      disk)
        step mkfs-disk "mkfs.ext4 -b 4096 -d of cold.bin into 256 MiB of $DISK_DEV" make_volume $P9_TREE/exports/bench $DISK_DEV 256 -b 4096 || abort mkfs "mkfs.ext4 of $DISK_DEV failed" ;;
    esac
  done
  rm -rf $P9_TREE
}

# bench_srv: dom0's ext4 RAM disk ram1 on $SRV_DIR, for the exports served from dom0
bench_srv() {
  # A retried attempt (dom0's init runs a scenario again after the emulated CPU's fault) finds
  # the previous attempt's NFS server and mount: stop and unmount them first.
  if grep -q " $SRV_DIR " /proc/mounts; then
    [ ! -e /proc/fs/nfsd/threads ] || { rpc.nfsd 0; exportfs -ua; } 2>/dev/null
    pkill rpc.mountd 2>/dev/null
    umount $SRV_DIR || umount -l $SRV_DIR
  fi
  mkdir -p $SRV_DIR
  step mkfs-srv "mkfs.ext4 of 256 MiB of $SRV_DEV, mounted on $SRV_DIR" sh -c "mkfs.ext4 -q -F -b 4096 $SRV_DEV 256M && mount -t ext4 $SRV_DEV $SRV_DIR" \
    || abort mkfs-srv "cannot make or mount ext4 on $SRV_DEV"
}

# bench_nfsd: dom0's kernel NFS server, NFS 4 only (no rpcbind), exporting $SRV_DIR/nfs to the
# point-to-point link; a grace period of 10 s instead of 90 (no client state to recover)
bench_nfsd() {
  mkdir -p /proc/fs/nfsd /var/lib/nfs
  grep -q ' /proc/fs/nfsd ' /proc/mounts || mount -t nfsd nfsd /proc/fs/nfsd || return 1
  echo 10 > /proc/fs/nfsd/nfsv4gracetime
  echo 10 > /proc/fs/nfsd/nfsv4leasetime
  : > /var/lib/nfs/etab; : > /var/lib/nfs/rmtab
  echo "$SRV_DIR/nfs 10.9.0.0/24(rw,sync,no_subtree_check,no_root_squash,fsid=0)" > /etc/exports
  exportfs -ra || return 1
  rpc.mountd -N 3 -u || return 1
  rpc.nfsd -N 3 -U -p 2049 4 || return 1
  info "nfsd: versions $(cat /proc/fs/nfsd/versions), exports: $(exportfs -v | tr -s ' \t\n' ' ')"
}

# bench_guest NAME COLUMN ROUND: one guest runs the workload; its times go to $BENCH_FILES-NAME
bench_guest() {
  create="xl create" limit=1200
  case $2 in
    pvfs) dev="p9=[ 'tag=share,path=/exports/bench,security_model=none,backend=$name' ]"; mnt=9p ;;
    # (the same export as the pvfs column, whose first round read and removed its cold.bin:
    # these columns have no cold read)
    pvfs-loose) dev="p9=[ 'tag=share,path=/exports/bench,security_model=none,backend=$name' ]"; mnt="9ploose xe2e.cold=0" ;;
    pvfs-mmap) dev="p9=[ 'tag=share,path=/exports/bench,security_model=none,backend=$name' ]"; mnt="9pmmap xe2e.cold=0" ;;
    qemu) dev="p9=[ 'tag=share,path=$QEMU_DIR,security_model=none$(qemu_p9_type)' ]"; mnt=9p; create=xl_create_qemu
      # QEMU 10 on Debian 13 unpacked the source tree at 4.5 files/s (600 s) and had not
      # finished the workload after 1,200 s (a second test bed loading the host)
      limit=2700 ;;
    9pfsd) dev="p9=[ 'tag=share,path=$SRV_DIR/9pfsd,security_model=none,type=xen_9pfsd' ]"; mnt=9pu ;;
    nfs) dev="vif=[ 'script=xe2e-vif' ]"; mnt=nfs ;;
    disk) dev="disk=[ 'phy:$DISK_DEV,xvdb,w' ]"; mnt=disk ;;
  esac
  # xenconsoled appends to the console log of a name; an earlier benchmark scenario of the same
  # boot used the same guest names, and its lines must not count again
  rm -f "$CONSOLE_DIR/guest-$1.log"
  step "create-$1" "xl create $1" $create /etc/xen/guests/linux-pv.cfg "name=\"$1\"" "$dev" \
    "extra=\"$GUEST_ARGS xe2e.guest=p9bench xe2e.round=$3 xe2e.mnt=$mnt\"" || { fail "create-$1" "xl create failed; device model log: $(dm_log $1)"; return 1; }
  d=$(domid_of "$1")
  # xen-9pfsd's device must connect (backend state 4) within a minute; otherwise say what
  # xenstore and the daemon show, rather than wait for the guest's mount to time out
  if [ "$2" = 9pfsd ] && [ -n "$d" ] && ! wait_until 60 bench_9pfsd_connected "$d"; then
    fail "connect-$1" "xen-9pfsd's device for $1 is not connected: $(bench_9pfsd_state "$d")"
    xl destroy "$1"; return 1
  fi
  if [ "$2" = 9pfsd ] && [ -n "$d" ]; then
    # 0: the guest is gone; 2: xen-9pfsd ended while the guest ran; 1: 1200 s passed
    wait_gone_quietly 1200 "$1" "$d" bench_9pfsd_alive; w=$?
    if [ $w = 2 ]; then
      bench_9pfsd_crashed "$1" "$d"; return 1
    elif [ $w != 0 ]; then
      fail "run-$1" "still running"; diagnostics; xl destroy "$1"; return 1
    fi
  elif [ -n "$d" ] && ! step "run-$1" "$1 runs the workload" wait_gone_quietly $limit "$1" "$d"; then
    fail "run-$1" "still running"; diagnostics; xl destroy "$1"; return 1
  fi
  log=$CONSOLE_DIR/guest-$1.log
  tr -d '\r' < "$log" | grep -a 'XE2E-GUEST' | sed "s/^/[$1] /"
  if console_has "$1" "XE2E-GUEST BENCH DONE" && ! grep -aq 'XE2E-GUEST FAIL' "$log"; then pass "run-$1"; else fail "run-$1" "workload did not complete"; return 1; fi
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST BENCH \([A-Za-z0-9-]*\) \([0-9.]*\)$/\1 \2/p' > "$BENCH_FILES-$1"
  tr -d '\r' < "$log" | sed -n 's/^XE2E-GUEST SRCFILES \([0-9]*\)$/\1/p' | tail -1 > $BENCH_FILES-srcfiles.new
  [ -s $BENCH_FILES-srcfiles.new ] && mv $BENCH_FILES-srcfiles.new $BENCH_FILES-srcfiles
  rm -f $BENCH_FILES-srcfiles.new
}
# bench_9pfsd_connected DOMID: the guest's xen-9pfsd device is connected (backend state 4)
bench_9pfsd_connected() { [ "$(xenstore-read "/local/domain/0/backend/xen_9pfs/$1/0/state" 2>/dev/null)" = 4 ]; }
# bench_9pfsd_state DOMID: the device's backend and frontend states and the daemon, on one line
bench_9pfsd_state() {
  echo "backend: $(xenstore-ls "/local/domain/0/backend/xen_9pfs/$1/0" 2>&1 | tr -s ' \n' ' ' | cut -c1-400);" \
    "frontend state $(xenstore-read "/local/domain/$1/device/9pfs/0/state" 2>&1);" \
    "daemon: $(xenstore-read /local/domain/0/libxl/xen-9pfs/state 2>&1), pid $(xenstore-read /local/domain/0/libxl/xen-9pfs/pid 2>&1), $(ps | grep -c '[x]en-9pfsd') running"
}
# bench_9pfsd_alive: xen-9pfsd runs (the condition of a guest's wait on its column)
bench_9pfsd_alive() { pidof xen-9pfsd >/dev/null; }
# bench_9pfsd_crashed NAME DOMID: xen-9pfsd ended under the guest. Xen 4.20's daemon answers a
# Tstat of the attach's root fid by dereferencing strrchr(".", '/') + 1 (tools/9pfsd/io.c,
# p9_stat), and Linux's 9P2000.u mount stats its root: the daemon dies of a segfault at
# address 1 during every Linux guest's mount, and that guest's mount then waits for a reply
# that never comes. The column has no figures; what happened is reported (the kernel's line
# about the daemon, and the guest's mount's kernel stack after its 120 s watchdog), the
# column is dropped from the later rounds (libxl does not start the daemon again: its state
# node says running) and the run goes on.
bench_9pfsd_crashed() {
  info "9pfsd: no figures: xen-9pfsd ended while $1 mounted its device: $(dmesg | grep 'xen-9pfsd' | grep -E "segfault at|traps:" | tail -1)"
  wait_until 150 console_has "$1" "XE2E-GUEST DONE" || true
  tr -d '\r' < "$CONSOLE_DIR/guest-$1.log" | grep -a -E 'XE2E-GUEST (FAIL|DIAG task)' | sed "s/^/XE2E INFO 9pfsd: [$1] /"
  xl destroy "$1" 2>/dev/null
  BENCH_DROPPED="$BENCH_DROPPED 9pfsd"
}
# bench_rate KEY SECONDS: MiB/s for the dd runs (64 MiB each), operations/s for the metadata
# loop, entries/s for the source tree rows
bench_rate() {
  case $1 in
    write-*|read-*) a=64 ;;
    tar-*|stat-walk|rm-*) a=$(cat $BENCH_FILES-srcfiles 2>/dev/null || echo 0) ;;
    # the metadata loop's rows name their operation counts: create-2000 ... meta-6000
    *-[0-9]*) a=${1##*-} ;;
    *) a=2000 ;;
  esac
  awk -v a="$a" -v t="$2" 'BEGIN { if (t > 0) printf "%.1f", a / t; else print 0 }'
}
bench_unit() { case $1 in write-*|read-*) echo MiB/s ;; tar-*|stat-walk|rm-*) echo files/s ;; *) echo ops/s ;; esac; }
# median of the numbers on stdin
bench_median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench_run COLUMN...: ROUNDS alternating rounds over the columns, then the medians and pvfs's
# ratio to every other column (the first column must be pvfs)
bench_run() {
  rm -f $BENCH_FILES-*
  r=1
  while [ $r -le $ROUNDS ]; do
    for c in "$@"; do
      case " $BENCH_DROPPED " in *" $c "*) continue ;; esac
      [ "$c" != qemu ] || [ $r -le "$QEMU_ROUNDS" ] || continue
      bench_guest g-$c-$r $c $r || continue
      while read -r k t; do
        echo "$k $(bench_rate "$k" "$t")" >> $BENCH_FILES-$c.rates
        info "bench-round $r $c $k $(bench_rate "$k" "$t") $(bench_unit "$k")"
      done < $BENCH_FILES-g-$c-$r
    done
    r=$((r + 1))
  done
  for k in $(awk '{ print $1 }' $BENCH_FILES-pvfs.rates 2>/dev/null | awk '!seen[$0]++'); do
    line=$(printf '%-15s' "$k")
    p=$(awk -v k="$k" '$1 == k { print $2 }' $BENCH_FILES-pvfs.rates | bench_median)
    for c in "$@"; do
      v=$(awk -v k="$k" '$1 == k { print $2 }' $BENCH_FILES-$c.rates 2>/dev/null | bench_median)
      if ! awk -v k="$k" '$1 == k { f = 1 } END { exit !f }' $BENCH_FILES-$c.rates 2>/dev/null; then
        line="$line  $c        - (no figure)"
      elif [ "$c" = pvfs ]; then
        line="$line $(printf 'pvfs %8.1f %s' "$v" "$(bench_unit "$k")")"
      else
        line="$line $(awk -v c="$c" -v v="$v" -v p="$p" 'BEGIN { printf "  %s %8.1f (pvfs %.2fx)", c, v, (v > 0) ? p / v : 0 }')"
      fi
    done
    n=$(awk -v k="$k" '$1 == k' $BENCH_FILES-pvfs.rates | wc -l)
    echo "XE2E INFO bench $line  (medians of $n)"
  done
  info "pvfs stats: $(xenstore-read /local/domain/$pvfs_domid/data/pvfs/stats 2>&1)"
  step shutdown "xl shutdown $name" xl shutdown "$name" || fail shutdown "xl shutdown failed"
  wait_until 60 domain_gone "$name" "$pvfs_domid" || xl destroy "$name"
}
