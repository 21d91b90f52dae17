#!/bin/bash
# Builds the third-party suites that the p9-posix scenarios run in a guest, from crates.io,
# linked statically so that the guest's busybox initramfs needs no libc: pjdfstest (the Rust
# rewrite of pjd's POSIX file system test suite) and fsx (the Rust port of the File System
# eXerciser). Cached by version under $XE2E_W/cache/suites/ (static, so one build serves both
# Debian releases); nothing is built again while the versions are the same.
#
# usage: ci/xen/suites.sh          prints the directory holding bin/pjdfstest and bin/fsx
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUITES=(pjdfstest@0.2.0 fsx@0.3.2)
dir=$XE2E_W/cache/suites/$(printf '%s-' "${SUITES[@]}" | tr '@' '-')bin
mkdir -p "$XE2E_W/cache/suites"
exec 8> "$XE2E_W/cache/suites/.lock"
flock 8
if [ ! -x "$dir/bin/pjdfstest" ] || [ ! -x "$dir/bin/fsx" ]; then
  rm -rf "$dir.tmp"
  for c in "${SUITES[@]}"; do
    say "building ${c%@*} ${c#*@} (static) from crates.io"
    (cd "$XE2E_W/cache/suites" && RUSTFLAGS="-C target-feature=+crt-static" \
       cargo install --quiet --locked "${c%@*}" --version "${c#*@}" \
         --root "$dir.tmp" --target x86_64-unknown-linux-gnu) >&2 \
      || die "building ${c%@*} ${c#*@} failed"
  done
  mv "$dir.tmp" "$dir"
fi
echo "$dir"
