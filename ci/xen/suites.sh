#!/bin/bash
# Builds the third-party POSIX suite that the p9-posix scenario runs in a guest: pjdfstest
# (the Rust rewrite of pjd's POSIX file system test suite, from crates.io), linked statically
# so that the guest's busybox initramfs needs no libc. Cached by version under
# $W/cache/suites/; nothing is built again while the version is the same.
#
# usage: ci/xen/suites.sh          prints the path of the pjdfstest binary
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PJDFSTEST_VERSION=0.2.0
dir=$W/cache/suites/pjdfstest-$PJDFSTEST_VERSION
bin=$dir/bin/pjdfstest
mkdir -p "$W/cache/suites"
exec 8> "$W/cache/suites/.lock"
flock 8
if [ ! -x "$bin" ]; then
  say "building pjdfstest $PJDFSTEST_VERSION (static) from crates.io"
  rm -rf "$dir.tmp"
  (cd "$W/cache/suites" && RUSTFLAGS="-C target-feature=+crt-static" \
     cargo install --quiet --locked pjdfstest --version "$PJDFSTEST_VERSION" \
       --root "$dir.tmp" --target x86_64-unknown-linux-gnu) >&2 \
    || die "building pjdfstest $PJDFSTEST_VERSION failed"
  mv "$dir.tmp" "$dir"
fi
echo "$bin"
