#!/bin/bash
# Checks that the test bed reports failures: the "boot" scenario must FAIL (non-zero exit,
# with the reason) when the pvfs kernel is missing, and when a kernel boots and prints its
# banner but never writes data/pvfs/status (selftest/stub-pvh.S); "fault" must FAIL when that
# kernel neither crashes nor prints a report. Takes about 1.5 minutes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$W/selftest"
STUB=$W/selftest/stub-pvh.elf
gcc -m32 -c "$XEN_DIR/selftest/stub-pvh.S" -o "$W/selftest/stub-pvh.o"
ld -m elf_i386 -Ttext=0x100000 --section-start=.note.Xen=0x100800 -e _start -z noexecstack \
  -o "$STUB" "$W/selftest/stub-pvh.o"

failed=0
expect() {  # expect NAME WANT_STATUS OUTPUT_FILE PATTERN...
  local name=$1 want=$2 out=$3 got=$4 p
  shift 4
  if [ "$got" != "$want" ]; then echo "SELFTEST FAIL $name: exit status $got, want $want"; failed=1; fi
  for p in "$@"; do
    grep -qE "$p" "$out" || { echo "SELFTEST FAIL $name: no line matching '$p'"; failed=1; }
  done
}

# the console watcher's verdicts, without QEMU
cw() { python3 "$XEN_DIR/console.py" --log "$W/selftest/cw.log" --timeout "$1" -- sh -c "$2" > "$W/selftest/cw.out"; }
rc=0; cw 10 'echo "(XEN) boot"; echo "XE2E RESULT PASS"' || rc=$?
expect cw-pass 0 "$W/selftest/cw.out" $rc '^XE2E RESULT PASS$'
rc=0; cw 10 'echo "XE2E FAIL x/y: z"; echo "XE2E RESULT FAIL"' || rc=$?
expect cw-fail 1 "$W/selftest/cw.out" $rc '^XE2E FAIL x/y: z$'
rc=0; cw 10 'echo "XE2E PASS x"; exit 0' || rc=$?
expect cw-no-result 3 "$W/selftest/cw.out" $rc '^XE2E FAIL harness: .*without a result line' '^XE2E RESULT FAIL$'
rc=0; cw 2 'echo "XE2E PASS x"; sleep 30' || rc=$?
expect cw-timeout 2 "$W/selftest/cw.out" $rc '^XE2E FAIL harness: timed out' '^XE2E RESULT FAIL$'
rc=0; cw 10 'echo "XE2E DOM0-READY uptime=1s"; echo "XE2E RESULT PASS"' || rc=$?
expect cw-dom0-step 0 "$W/selftest/cw.out" $rc '^XE2E STEP dom0-boot [0-9.]+s '
[ $failed = 0 ] && echo "SELFTEST console watcher ok"

out=$W/selftest/missing.out
rc=0; "$XEN_DIR/run.sh" boot "$W/selftest/does-not-exist" > "$out" || rc=$?
cat "$out"
expect missing-kernel 1 "$out" $rc '^XE2E FAIL boot/kernel: no pvfs kernel' '^XE2E RESULT FAIL$'

out=$W/selftest/stub.out
rc=0; "$XEN_DIR/run.sh" boot+fault "$STUB" > "$out" || rc=$?
cat "$out"
expect stub-kernel 1 "$out" $rc '^XE2E FAIL boot/ready: .*not .ready. after' '^XE2E PASS boot/banner$' \
  '^XE2E PASS boot/gone$' '^XE2E FAIL fault/crashed: .*not crashed after' \
  '^XE2E FAIL fault/report-exception: ' '^XE2E FAIL fault/report-crash: ' '^XE2E PASS fault/gone$' \
  '^XE2E RESULT FAIL$'

[ $failed = 0 ] && echo "SELFTEST PASS" || { echo "SELFTEST FAIL"; exit 1; }
