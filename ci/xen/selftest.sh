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
