# shellcheck shell=sh disable=SC2034
# Helpers for the scenario scripts (sourced by /xe2e/scenarios/*.sh inside dom0).
# Lines printed for the harness (ci/xen/run.sh) all start with "XE2E ":
#   XE2E STEP <scenario>/<step> <seconds>s <what happened>
#   XE2E PASS <scenario>/<check>
#   XE2E FAIL <scenario>/<check>: <reason>
#   XE2E INFO <text>
# /init adds "XE2E PASS|FAIL <scenario>" per scenario and the final "XE2E RESULT PASS|FAIL".
# (the Xen tools of whichever Xen this dom0 has: xen-4.17 on Debian 12, xen-4.20 on 13)
export PATH=$(echo /usr/lib/xen-*/bin):/usr/sbin:/usr/bin:/sbin:/bin
. /xe2e/walk.sh
S=${XE2E_SCENARIO:?run by /init with XE2E_SCENARIO set}
PVFS_CFG=/etc/xen/pvfs-stubdom.cfg
PVFS_ELF=/usr/lib/pvfs/pvfs-kernel
CONSOLE_DIR=/var/log/xen/console

now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
info() { echo "XE2E INFO $*"; }
pass() { echo "XE2E PASS $S/$1"; echo "$S/$1" >> /run/xe2e/passes; }
fail() { echo "XE2E FAIL $S/$1: $2"; echo "$S/$1" >> /run/xe2e/failures; }
# check NAME REASON CMD...: PASS if CMD succeeds, else FAIL with REASON; returns CMD's status
check() {
  _n=$1 _r=$2
  shift 2
  if "$@"; then pass "$_n"; else fail "$_n" "$_r"; return 1; fi
}
# abort NAME REASON: FAIL, print diagnostics, end the scenario
abort() { fail "$1" "$2"; diagnostics; exit 1; }

# step NAME DESCRIPTION CMD...: run CMD, print its duration; returns CMD's status
step() {
  _n=$1 _d=$2
  shift 2
  _t=$(now)
  "$@"
  _rc=$?
  if [ $_rc = 0 ]; then
    echo "XE2E STEP $S/$_n $(since "$_t")s $_d"
  else
    echo "XE2E STEP $S/$_n $(since "$_t")s $_d (failed: status $_rc)"
  fi
  return $_rc
}

# _uptime_cs: sets $_cs to dom0's uptime in centiseconds without starting a process (the
# test bed's emulated machine is slow to start processes, and crashes some of them under load)
_uptime_cs() { read -r _u _x < /proc/uptime; _cs=${_u%.*}${_u#*.}; }
# wait_until SECONDS CMD...: poll CMD until it succeeds (every 0.1 s for the first 2 s, then
# every 0.5 s); 1 on timeout. SECONDS is a whole number.
wait_until() {
  _uptime_cs
  _end=$((_cs + $1 * 100)) _polls=0
  shift
  while :; do
    "$@" && return 0
    _uptime_cs
    [ "$_cs" -ge "$_end" ] && return 1
    _polls=$((_polls + 1))
    if [ $_polls -lt 20 ]; then sleep 0.1; else sleep 0.5; fi
  done
}

# domid_of NAME: numeric domain id, empty when no such domain
domid_of() { xl domid "$1" 2>/dev/null; }
# xen_at_least MAJOR.MINOR: the running Xen is that version or newer
xen_at_least() {
  sed -n 's/^xen_version *: *//p' /run/xe2e/xl-info | awk -F. -v want="$1" '{split(want, w, ".");
    exit !($1 > w[1] || ($1 == w[1] && $2 + 0 >= w[2]))}'
}
# qemu_p9_type: what a p9 device that QEMU in dom0 serves adds to its spec: from Xen 4.19 on,
# libxl starts the device model only for a device of type=qemu (xl 4.17 and 4.18 know no
# type= and start it for any p9 device)
qemu_p9_type() { if xen_at_least 4.19; then echo ",type=qemu"; fi; }
# xl_create_qemu ARGS...: `xl create ARGS...` (ARGS with name="…") for a guest whose p9 devices
# QEMU in dom0 serves. From Xen 4.19 on libxl writes a p9 device to xenstore only after it has
# started the device model, and QEMU (10.0) adds a legacy Xen backend that appears while it runs
# as a hotplugged device, which its Xen backend type refuses: it stops at once with "Device
# 'xen-backend' does not support hotplugging" and the device stays in state 1 (docs/posix.md).
# A device already in xenstore when QEMU starts is found by its first scan and served. So there
# the guest is created paused, libxl's QEMU is let stop (ended after 10 s if it has not), QEMU is
# started again for the domain with the arguments libxl gives a PV guest's device model, its pid
# goes where libxl keeps the device model's (so that destroying the domain ends it), and the
# guest is unpaused once every 9pfs backend of the domain waits for its frontend (state 2 or
# more). Xen 4.17 and 4.18 add the device first: plain `xl create` there.
QEMU_DM=/usr/libexec/xen-qemu-system-i386
xl_create_qemu() {
  xen_at_least 4.19 || { xl create "$@"; return; }
  _qn=
  for _qa in "$@"; do
    case $_qa in name=*) _qn=${_qa#name=}; _qn=${_qn#\"}; _qn=${_qn%\"} ;; esac
  done
  xl create -p "$@" || return
  _qd=$(domid_of "$_qn")
  [ -n "$_qd" ] || { echo "xl_create_qemu: no domain $_qn after xl create -p"; return 1; }
  _qp=$(xenstore-read "/local/domain/$_qd/image/device-model-pid" 2>/dev/null)
  if [ -n "$_qp" ] && ! wait_until 10 _qemu_gone "$_qp"; then kill "$_qp"; wait_until 5 _qemu_gone "$_qp"; fi
  setsid $QEMU_DM -xen-domid "$_qd" -no-shutdown \
    -chardev "socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-$_qd,server=on,wait=off" \
    -mon chardev=libxl-cmd,mode=control -nodefaults -no-user-config -xen-attach -name "$_qn" \
    -display none -nographic -machine xenpv \
    < /dev/null >> "/var/log/xen/qemu-dm-$_qn.log" 2>&1 &
  xenstore-write "/local/domain/$_qd/image/device-model-pid" $!
  info "QEMU for $_qn (domain $_qd) started again after libxl's${_qp:+ (pid $_qp)} stopped: pid $!"
  wait_until 30 _qemu_p9_waiting "$_qd" || {
    echo "xl_create_qemu: the 9pfs backends of $_qn do not wait for their frontends: $(xenstore-ls -f "/local/domain/0/backend/9pfs/$_qd" 2>&1 | grep '/state ' | tr '\n' ' ')"
    return 1
  }
  xl unpause "$_qn"
}
# _qemu_gone PID: no such process, or only its zombie
_qemu_gone() { ! awk '$3 != "Z" { f = 1 } END { exit !f }' "/proc/$1/stat" 2>/dev/null; }
# _qemu_p9_waiting DOMID: the domain has 9pfs backends in dom0 and each is in state 2 or more
_qemu_p9_waiting() {
  _qs=$(xenstore-list "/local/domain/0/backend/9pfs/$1" 2>/dev/null)
  [ -n "$_qs" ] || return 1
  for _qv in $_qs; do
    [ "$(xenstore-read "/local/domain/0/backend/9pfs/$1/$_qv/state" 2>/dev/null || echo 0)" -ge 2 ] || return 1
  done
}
# dom0_procs_for DOMID: dom0's processes that serve domain DOMID, one "pid args" line each: a
# device model (libxl gives QEMU "-xen-domid DOMID") or xen-9pfsd; nothing when there is none
dom0_procs_for() {
  ps -o pid,args 2>/dev/null | awk -v d="$1" '/awk/ {next} $0 ~ ("-xen-domid " d "( |$)") || /xen-9pfsd/ {print}'
}
# state_of NAME: the state column of xl list (e.g. "-b----", "--c---"), empty if gone
state_of() { xl list "$1" 2>/dev/null | awk 'NR == 2 {print $5}'; }
# domain_gone NAME DOMID: neither xl nor xenstore know the domain any more
domain_gone() {
  # Under heavy load a single xl or xenstore call can fail transiently: only a domain that is
  # missing on two looks a second apart counts as gone.
  ! xl domid "$1" >/dev/null 2>&1 && ! xenstore-exists "/local/domain/$2" 2>/dev/null || return 1
  sleep 1
  ! xl domid "$1" >/dev/null 2>&1 && ! xenstore-exists "/local/domain/$2" 2>/dev/null
}
# wait_gone_quietly SECS NAME DOMID: waits until the domain is gone, like
# `wait_until SECS domain_gone NAME DOMID`, but looks only every 2 s and only at xenstore
# (xenstore-exists is small; every `xl` call is a heavy program in dom0 under emulation), so
# that dom0 takes as little CPU as it can from a benchmark that runs meanwhile. The guests time
# their own work; this only has to notice the end. With a command after DOMID, that command
# runs at every look, and the wait ends with status 2 once it fails (something the guest needs
# is gone); 1 means SECS passed.
wait_gone_quietly() {
  _uptime_cs
  _end=$((_cs + $1 * 100)) _wg_name=$2 _wg_dom=$3
  shift 3
  while xenstore-exists "/local/domain/$_wg_dom" 2>/dev/null; do
    [ $# = 0 ] || "$@" || return 2
    _uptime_cs
    [ "$_cs" -ge "$_end" ] && return 1
    sleep 2
  done
  wait_until 10 domain_gone "$_wg_name" "$_wg_dom"
}
# dmesg_has DOMID TEXT: Xen's log has a line from (d<DOMID>) containing TEXT
dmesg_has() { xl dmesg | grep -F "(d$1)" | grep -qF -- "$2"; }
# console_has NAME TEXT: the domain's PV console log (xenconsoled --log=guest) contains TEXT
console_has() { grep -qF -- "$2" "$CONSOLE_DIR/guest-$1.log" 2>/dev/null; }
# console_why NAME: why a guest printed no verdict, for a failure message: its last XE2E-GUEST
# FAIL lines, or else the last lines of its console (a kernel that ran out of memory, an
# initramfs that did not unpack), on one line
console_why() {
  _l=$CONSOLE_DIR/guest-$1.log
  [ -s "$_l" ] || { echo "no console output"; return; }
  if grep -aq 'XE2E-GUEST FAIL' "$_l"; then
    grep -a 'XE2E-GUEST FAIL' "$_l" | head -3 | tr -d '\r' | tr '\n' ' '
  else
    echo "no verdict; console ends: $(tail -6 "$_l" | tr -d '\r' | tr '\n' '|' | cut -c1-600)"
  fi
}

# dm_log NAME: the last lines of the domain's device-model log (libxl starts dom0's QEMU for
# every guest with a p9 device, whatever its backend), on one line, for "xl create failed"
dm_log() { tail -3 "/var/log/xen/qemu-dm-$1.log" 2>/dev/null | tr -d '\r' | tr '\n' ' '; }

# diagnostics: what the machine looks like after a failure. A short summary as "XE2E DIAG"
# lines (which reach CI's output, at most about 60 of them): the domains and their states,
# pvfs's vCPU state and counters, pvfs's last warnings, and the last lines of each guest's
# console; then the long form for the log.
diagnostics() {
  {
    xl list 2>&1 | awk 'NR > 1 { print "domain", $1, "id", $2, "state", $5 }'
    xl vcpu-list 2>&1 | awk -v n="${name:-pvfs}" '$1 == n { print "pvfs vcpu", $3, "state", $5, "time", $6 "s" }'
    [ -z "${pvfs_domid:-}" ] || echo "pvfs stats: $(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" 2>&1 | cut -c1-400)"
    [ -z "${pvfs_domid:-}" ] || xl dmesg | grep -a "(d$pvfs_domid) .*\[\(WARN\|ERROR\)\]" | tail -5 | sed 's/^/pvfs log: /'
    for f in "$CONSOLE_DIR"/guest-*.log; do
      [ -s "$f" ] || continue
      g=${f##*/guest-}; g=${g%.log}
      tr -d '\r' < "$f" | grep -av '^ *$' | tail -6 | cut -c1-200 | sed "s/^/[$g] /"
    done
  } 2>&1 | head -60 | sed 's/^/XE2E DIAG /'
  echo "---- xl list ----"; xl list
  # r = running, b = blocked: tells a pvfs that waits from one that spins
  echo "---- xl vcpu-list ----"; xl vcpu-list
  if [ -n "${pvfs_domid:-}" ]; then
    echo "---- pvfs stats ----"; xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" 2>&1
  fi
  echo "---- xl dmesg (tail) ----"; xl dmesg | tail -40
  for f in "$CONSOLE_DIR"/guest-*.log; do
    [ -f "$f" ] && { echo "---- $f (tail) ----"; tail -40 "$f"; }
  done
  for f in /var/log/xen/xl-*.log; do
    [ -f "$f" ] && { echo "---- $f (tail) ----"; tail -20 "$f"; }
  done
}

# PV Linux guests: the base initramfs (busybox, 9p modules) plus this run's /init and
# guest scripts, and what the running scenario declares on its "# xe2e-needs:" line: "posix"
# (the POSIX suites), "srctree" (a source tarball), "nfs" (the NFS client's modules). Made
# again by every scenario (domu_initrd): each guest unpacks all of it into its memory, so a
# scenario of small guests must not carry another's suites.
DOMU_INITRD=/run/xe2e/domu-initrd.cpio
# kernel arguments for Linux PV guests (rodata=off skips a 2 s W+X page-table walk under TCG;
# panic=2: a guest whose /init died reboots, which destroys it, instead of hanging);
# scenarios add xe2e.guest=<script>
GUEST_ARGS="console=hvc0 loglevel=4 rodata=off panic=2"
domu_initrd() {
  [ -f /domu/vmlinux ] || abort guest-kernel "no /domu/vmlinux: the scenario must declare '# xe2e-needs: linux-guest'"
  _parts="/domu/base.cpio /domu/guest.cpio"
  for _need in $(domu_needs); do
    case $_need in
      posix | srctree)
        [ -f /domu/$_need.cpio ] || abort guest-initrd "no /domu/$_need.cpio for '# xe2e-needs: $_need'"
        _parts="$_parts /domu/$_need.cpio" ;;
      # (Debian 13's test bed only: Debian 12's has no NFS column)
      nfs) [ ! -f /domu/nfs.cpio ] || _parts="$_parts /domu/nfs.cpio" ;;
    esac
  done
  # shellcheck disable=SC2086
  cat $_parts > $DOMU_INITRD.tmp && mv $DOMU_INITRD.tmp $DOMU_INITRD || abort guest-initrd "cannot write $DOMU_INITRD"
}
# domu_needs: the words of the running scenario's "# xe2e-needs:" line
domu_needs() {
  sed -n 's/^# xe2e-needs://p' "/xe2e/scenarios/${XE2E_SCENARIO:-none}.sh" 2>/dev/null | head -1
}

# make_test_tree DIR: a small known tree for volume scenarios: text, a nested file, an empty
# file, a symlink, and files of 1 MiB and 8 MiB of random bytes (the latter spans many block
# requests, and indirect segments where the frontend uses them).
make_test_tree() {
  mkdir -p "$1/dir/sub"
  echo "hello from the xe2e test tree" > "$1/hello.txt"
  echo "nested" > "$1/dir/sub/nested.txt"
  : > "$1/empty"
  ln -s hello.txt "$1/link-to-hello"
  dd if=/dev/urandom of="$1/dir/random-1m.bin" bs=1M count=1 2>/dev/null
  dd if=/dev/urandom of="$1/random-8m.bin" bs=1M count=8 2>/dev/null
}
# tree_sums DIR: "sha256  ./path" for every regular file, sorted by path
tree_sums() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum); }
# make_volume DIR IMAGE MIB: an ext4 image of DIR (mkfs.ext4 -d), label xe2evol
# make_volume DIR IMG MIB [MKFS-OPTION...]
make_volume() { local d=$1 img=$2 mib=$3; shift 3; mkfs.ext4 -q -F -L xe2evol "$@" -d "$d" "$img" "${mib}M"; }

# p9_volume IMG: the two-export tree used by the 9pfs scenarios (vm1: hello.txt, data/big.bin,
# a symlink into vm2; vm2: a secret and data.bin) as a 64 MiB ext4 image IMG; the expected
# checksums go to /tmp/xe2e-want-vmN.sums. The tree stays in $P9_TREE.
P9_TREE=/tmp/xe2e-p9-tree
p9_volume() {
  rm -rf $P9_TREE; mkdir -p $P9_TREE/exports/vm1/data $P9_TREE/exports/vm2
  echo "hello vm1" > $P9_TREE/exports/vm1/hello.txt
  dd if=/dev/urandom of=$P9_TREE/exports/vm1/data/big.bin bs=1M count=4 2>/dev/null
  ln -s ../vm2/secret.txt $P9_TREE/exports/vm1/escape-link
  echo "vm2 secret $(date +%s%N)" > $P9_TREE/exports/vm2/secret.txt
  dd if=/dev/urandom of=$P9_TREE/exports/vm2/data.bin bs=64k count=3 2>/dev/null
  step mkfs "mkfs.ext4 -d of two exports into a 64 MiB image" make_volume $P9_TREE "$1" 64 || abort mkfs "mkfs.ext4 failed"
  for v in vm1 vm2; do tree_sums $P9_TREE/exports/$v > /tmp/xe2e-want-$v.sums; done
}

# p9_start_pvfs IMG [CMDLINE]: xl create pvfs with IMG as its volume; sets $name and
# $pvfs_domid and waits for data/pvfs/status = ready (abort otherwise). CMDLINE defaults to
# $PVFS_ARGS (xe2e.env.PVFS_ARGS=pvfs.trace9p=1 traces every scenario's 9P messages into the
# host's log of the run, through Xen's console).
p9_start_pvfs() {
  set -- "$1" "${2:-${PVFS_ARGS:-}}"
  name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$PVFS_CFG")
  # kept after a reboot (a triple fault is one), so that its saved state can be read
  # (triple_watch in /init, pvfs_postmortem); PVFS_XL_EXTRA= (empty) restores xl's default
  extra=${PVFS_XL_EXTRA-on_reboot=\"preserve\"}
  # PVFS_CPUS=LIST pins pvfs's vCPU to those physical CPUs (xl's cpus=); OTHER_CPUS=LIST pins
  # dom0 and every guest started from linux-pv.cfg after this to those, so that pvfs does not
  # share its CPU with the guests it serves
  [ -z "${PVFS_CPUS:-}" ] || extra="$extra cpus=\"$PVFS_CPUS\""
  # PVFS_WEIGHT=N: the scheduler weight of pvfs's domain (xl's cpu_weight; guests have 256)
  [ -z "${PVFS_WEIGHT:-}" ] || extra="$extra cpu_weight=$PVFS_WEIGHT"
  if [ -n "${OTHER_CPUS:-}" ]; then
    xl vcpu-pin Domain-0 all "$OTHER_CPUS"
    grep -q '^cpus' /etc/xen/guests/linux-pv.cfg || echo "cpus = \"$OTHER_CPUS\"" >> /etc/xen/guests/linux-pv.cfg
  fi
  step create "xl create $PVFS_CFG with the volume${2:+ ($2)}" xl create "$PVFS_CFG" \
    "disk=[ 'format=raw,vdev=xvda,access=rw,target=$1' ]" "cmdline=\"${2:-}\"" $extra || abort create "xl create failed"
  pvfs_domid=$(domid_of "$name")
  step ready "pvfs ready" wait_until 60 p9_status_ready || abort ready "pvfs not ready"
}
# p9_setup IMG [CMDLINE]: the start of a 9pfs scenario: the pvfs kernel must be in dom0 (abort
# otherwise), then the guests' initramfs (domu_initrd), the two-export volume IMG (p9_volume)
# and pvfs on it (p9_start_pvfs IMG CMDLINE).
p9_setup() {
  [ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
  domu_initrd
  p9_volume "$1"
  p9_start_pvfs "$@"
}
# p9_need_pvfs_cli: sets PVFS to dom0's pvfs binary (`pvfs share …`); aborts the scenario
# without it or without the pvfs kernel.
p9_need_pvfs_cli() {
  PVFS=/usr/sbin/pvfs
  [ -x $PVFS ] || abort pvfs-binary "no $PVFS in dom0"
  [ -f "$PVFS_ELF" ] || abort kernel "no pvfs kernel at $PVFS_ELF"
}
# p9_pvfs_alive: the pvfs domain p9_start_pvfs started still runs (xl restarts a domain that
# reboots, e.g. after a triple fault, under a new id). Like domain_gone, it takes two looks a
# second apart to call it gone: a single xl call can fail here (ci/xen/README.md).
p9_pvfs_alive() {
  [ "$(domid_of "$name")" = "$pvfs_domid" ] || { sleep 1; [ "$(domid_of "$name")" = "$pvfs_domid" ]; } || return 1
  # a domain kept after its end (on_reboot/on_crash="preserve") is listed, shut down or crashed
  case "$(xl list "$name" 2>/dev/null | awk 'NR == 2 { print $5 }')" in *s* | *c* | *d*) return 1 ;; esac
}
# pvfs_postmortem: what Xen kept of a pvfs domain that ended while preserved (started with
# on_reboot="preserve"): its state and the CPU record of its saved context (xen-hvmctx),
# descriptor-table bases and limits among it, to tell a corrupted table from a delivery that
# failed with intact ones.
pvfs_postmortem() {
  echo "XE2E INFO pvfs post-mortem: $(xl list "$name" 2>&1 | tail -1 | tr -s ' ')"
  xen-hvmctx "$pvfs_domid" 2>&1 | tr -d '\r' | grep -a -i -E 'idtr|gdtr|tr_|ldtr|cr[0-4]|efer|rip|rsp|rflags|pending|intr|event|shadow|activity' | head -40 | sed 's/^/XE2E INFO pvfs post-mortem: /'
  _vmcb=$(vmcb_summary "$(vmcb_dump "$pvfs_domid")")
  [ -z "$_vmcb" ] || echo "XE2E INFO pvfs post-mortem: vmcb: $_vmcb"
}
p9_status_ready() { [ "$(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/status" 2>/dev/null)" = ready ]; }
# p9_released N: pvfs's counters show N devices connected and N disconnected over the run,
# none connected now and no grant mapped (one xenstore read)
p9_released() {
  case "$(xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" 2>/dev/null)" in
    *"grants_mapped=0 "*"devices_connected=0 connects=$1 disconnects=$1 "*) return 0 ;;
  esac
  return 1
}
# check_volume IMG: e2fsck -fn of a volume pvfs has let go of, as a pass or fail of step
# "e2fsck". After a clean shutdown the journal is empty. After a crash it may still hold
# transactions (feature needs_recovery), which e2fsck -n does not replay: it would check the
# un-replayed state and report what the replay repairs. So when the scenario has seen pvfs die
# (PVFS_CRASHED=1), the journal is replayed into a copy first, as the next mount would, and the
# copy is checked; after a clean shutdown a journal still to replay is itself a failure.
check_volume() {
  _img=$1
  if debugfs -R features "$_img" 2>/dev/null | grep -q needs_recovery; then
    [ "${PVFS_CRASHED:-0}" = 1 ] || { fail e2fsck "pvfs shut down, but the journal of $_img still holds transactions to replay (needs_recovery)"; return; }
    echo "XE2E INFO $_img: the journal holds transactions (pvfs did not shut down cleanly); replaying them into a copy, then checking it"
    cp "$_img" "$_img.replayed" && e2fsck -E journal_only -y "$_img.replayed" >/dev/null 2>&1
    if debugfs -R features "$_img.replayed" 2>/dev/null | grep -q needs_recovery; then
      fail e2fsck "e2fsck could not replay the journal of $_img"; rm -f "$_img.replayed"; return
    fi
    _img=$_img.replayed
  fi
  if _out=$(e2fsck -fn "$_img" 2>&1); then pass e2fsck; else fail e2fsck "$(echo "$_out" | tail -8 | tr '\n' ' ')"; fi
  rm -f "$1.replayed"
}
# p9_stat KEY: one counter from pvfs's data/pvfs/stats
p9_stat() { xenstore-read "/local/domain/$pvfs_domid/data/pvfs/stats" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p"; }
