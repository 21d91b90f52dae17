#!/bin/bash
# The real-Xen test bed: Debian's Xen + a Debian dom0 inside QEMU (TCG). dom0 runs the named
# scenarios (ci/xen/scenarios/<name>.sh) one after the other in a single boot.
#
# usage: ci/xen/run.sh [--shell] <scenario>[+<scenario>...] [kernel-elf]
#   e.g. ci/xen/run.sh boot+fault
#        ci/xen/run.sh linux-pv
#   kernel-elf   pvfs kernel ELF (default target/x86_64-unknown-none/release/pvfs-kernel)
#   --shell      interactive: console on this terminal, dom0 gives a shell after the scenarios
# env: XE2E_DEBIAN           Debian release of Xen, dom0 and guests: 12 (Xen 4.17, Linux 6.1)
#                             or 13 (Xen 4.20, Linux 6.12); default 13
#      W                      work dir (default <repo>/target/xen-testbed); each release has
#                             its own cache in $W/deb<N>, the logs are in $W/logs
#      XE2E_TIMEOUT           overall limit in seconds, QEMU start to result (default 420)
#      XE2E_SCENARIO_TIMEOUT  per-scenario limit inside dom0 (default 240)
#      XE2E_DOM0_LOGLEVEL     dom0 kernel console loglevel (default 4)
#      XEN_QEMU=1             also fetch qemu-system-xen (9pfs baseline; see fetch.sh)
#      XE2E_XEN_ARGS          extra Xen command-line options (e.g. sched=credit)
#      XE2E_DOM0_ARGS         extra dom0 kernel command-line words (e.g. xe2e.stress-pvfs)
#      XE2E_ACCEL             QEMU -accel value (default tcg; e.g. tcg,thread=single)
#      XE2E_SMP               emulated CPUs (default 2)
#      XE2E_CPU               QEMU -cpu value (default max,-rdtscp)
#      XE2E_SWEEP             the p9-sweep scenario's entries (see that scenario)
# stdout: the "XE2E ..." lines as they happen (contract in ci/xen/README.md).
# Full console log with host timestamps: $W/logs/deb<N>-<scenarios>-<time>.log.
# Exit status: 0 only when dom0 printed "XE2E RESULT PASS"; 1 failed, 2 timeout,
# 3 no result line, 4 setup error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SHELL_MODE=0
if [ "${1:-}" = --shell ]; then SHELL_MODE=1; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/{/^#/p}' "$0" >&2; exit 4; }
SCEN=$1
ELF=${2:-$REPO/target/x86_64-unknown-none/release/pvfs-kernel}
[[ $SCEN =~ ^[a-z0-9-]+(\+[a-z0-9-]+)*$ ]] || { say "bad scenario list '$SCEN'"; exit 4; }
for s in ${SCEN//+/ }; do
  [ -f "$XEN_DIR/scenarios/$s.sh" ] || {
    say "no scenario '$s' (have: $(cd "$XEN_DIR/scenarios" && ls *.sh | sed 's/\.sh$//' | tr '\n' ' '))"
    exit 4
  }
done

t0=$(date +%s.%N)
say "Debian $XE2E_DEBIAN ($DEB_SUITE): Xen $XEN_VER"
# xl 4.17 starts a PV device model in dom0 for any guest with a p9=[...] device, even with
# backend=<another domain>: scenarios that attach guests that way declare "qemu-xen".
for s in ${SCEN//+/ }; do
  grep -q '^# xe2e-needs:.*qemu-xen' "$XEN_DIR/scenarios/$s.sh" && export XEN_QEMU=1
done
"$XEN_DIR/fetch.sh" || exit 4
# the guest kernel costs dom0 ~3 s of boot time: include it only when a scenario needs it
XE2E_LINUX_GUEST=0
for s in ${SCEN//+/ }; do
  grep -q '^# xe2e-needs:.*linux-guest' "$XEN_DIR/scenarios/$s.sh" && XE2E_LINUX_GUEST=1
done
export XE2E_LINUX_GUEST
# the POSIX suite (ci/xen/suites.sh) for scenarios that declare "posix"
for s in ${SCEN//+/ }; do
  if grep -q '^# xe2e-needs:.*posix' "$XEN_DIR/scenarios/$s.sh"; then
    XE2E_SUITES=$("$XEN_DIR/suites.sh") || exit 4
    export XE2E_SUITES
  fi
done
# e2fsprogs' source tree as a tarball in the guests, for scenarios that declare "srctree"
for s in ${SCEN//+/ }; do
  if grep -q '^# xe2e-needs:.*srctree' "$XEN_DIR/scenarios/$s.sh"; then
    XE2E_SRCTREE=$("$XEN_DIR/suites.sh" --src) || exit 4
    export XE2E_SRCTREE
  fi
done
mkdir -p "$W"
XE2E_RUN_DIR=$(mktemp -d "$W/run.XXXXXX")
export XE2E_RUN_DIR
trap 'rm -rf "$XE2E_RUN_DIR"' EXIT
"$XEN_DIR/build-initrds.sh" "$ELF" || exit 4
say "prepared in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

# conring_size: Xen's console ring holds a whole run, so dom0 can search it (test-bed faults)
# spec-ctrl=eager-fpu: QEMU's TCG raises no #NM for XSAVE, XRSTOR and XSAVEOPT while CR0.TS is
# set (in QEMU 10.0, target/i386/tcg/emit.c.inc: gen_XSAVE and gen_XRSTOR lack the CR0.TS
# check that gen_FXSAVE and gen_FXRSTOR have). On an AMD CPU such as TCG's "max", Xen 4.17
# switches vCPUs' FPU state lazily and counts on that #NM: a guest kernel's XRSTOR of a task's
# state then goes unnoticed, and Xen later loads the vCPU's older state over it, so user
# programs run with another program's vector registers. Eager switching needs no #NM
# (ci/xen/README.md, "The emulator's XSAVE and lazy FPU switching").
XEN_ARGS="console=com1 com1=115200,8n1 conring_size=4M dom0_mem=1024M,max:1024M dom0_max_vcpus=1 loglvl=all guest_loglvl=all spec-ctrl=eager-fpu ${XE2E_XEN_ARGS:-}"
DOM0_ARGS="console=hvc0 earlyprintk=xen rodata=off loglevel=${XE2E_DOM0_LOGLEVEL:-4} xe2e=$SCEN xe2e.timeout=${XE2E_SCENARIO_TIMEOUT:-240} ${XE2E_DOM0_ARGS:-}"
[ $SHELL_MODE = 1 ] && DOM0_ARGS+=" xe2e.shell"
# -rdtscp: TCG's nested SVM reports RDTSCP as RDTSC and Xen injects #GP (README: pitfalls).
# QEMU splits -initrd on commas: the first "module" is dom0's kernel with its command line.
# shellcheck disable=SC2054 # the commas belong to -cpu and -initrd values
QEMU=(qemu-system-x86_64 -machine q35 -accel "${XE2E_ACCEL:-tcg}" -cpu "${XE2E_CPU:-max,-rdtscp}" -m 3072 -smp "${XE2E_SMP:-2}"
      -display none -monitor none -no-reboot
      -kernel "$W/xen.elf" -append "$XEN_ARGS"
      -initrd "$W/cache/vmlinux $DOM0_ARGS,$XE2E_RUN_DIR/dom0.cpio")

if [ $SHELL_MODE = 1 ]; then
  rc=0
  "${QEMU[@]}" -serial mon:stdio || rc=$?
  exit $rc
fi

mkdir -p "$XE2E_W/logs"
# keep the 50 newest logs
# (on a fresh checkout there is no log yet: ls fails, which must not end the run)
{ ls -1t "$XE2E_W"/logs/*.log 2>/dev/null || true; } | tail -n +50 | while read -r f; do rm -f "$f"; done
LOG=$XE2E_W/logs/deb$XE2E_DEBIAN-$SCEN-$(date +%Y%m%d-%H%M%S).log
say "booting Xen + dom0 for '$SCEN' (log: $LOG)"
rc=0
python3 "$XEN_DIR/console.py" --log "$LOG" --timeout "${XE2E_TIMEOUT:-420}" -- "${QEMU[@]}" -serial stdio || rc=$?
say "finished in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s, status $rc (log: $LOG)"
exit $rc
