#!/bin/bash
# Builds the third-party suites that the p9-posix scenarios run in a guest. From crates.io,
# linked statically so that the guest's busybox initramfs needs no libc: pjdfstest (the Rust
# rewrite of pjd's POSIX file system test suite) and fsx (the Rust port of the File System
# eXerciser). From Debian's archive: fsstress, built static from the e2fsprogs source
# package (below). Cached by version under $XE2E_W/cache/suites/ (static, so one build serves
# both Debian releases); nothing is built again while the versions are the same.
#
# usage: ci/xen/suites.sh          prints the directory holding bin/pjdfstest, bin/fsx and
#                                  bin/fsstress
#        ci/xen/suites.sh --src    prints the path of e2fsprogs 1.47.0's source tarball (the
#                                  tree p9-baselines unpacks in its guests), fetching it if needed
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# e2fsprogs' source, from Debian's archive (Debian 12's), checked against the hash its .dsc
# lists: fsstress comes from it, and p9-baselines unpacks it in its guests.
E2FS_ORIG=e2fsprogs_1.47.0.orig.tar.gz
E2FS_SHA256=6667afde56eef0c6af26684974400e4d2288ea49e9441bf5e6229195d51a3578
E2FS_URL=http://deb.debian.org/debian/pool/main/e/e2fsprogs/$E2FS_ORIG
mkdir -p "$XE2E_W/cache/suites"
# e2fs_src: makes sure the tarball is in the cache, verified, and prints its path
e2fs_src() {
  local src=$XE2E_W/cache/suites/$E2FS_ORIG
  if [ "$(sha256sum "$src" 2>/dev/null | cut -d' ' -f1)" != "$E2FS_SHA256" ]; then
    say "downloading $E2FS_ORIG from Debian's archive"
    curl -fsS --retry 3 -m 300 -o "$src.part" "$E2FS_URL" || die "cannot download $E2FS_URL"
    [ "$(sha256sum "$src.part" | cut -d' ' -f1)" = "$E2FS_SHA256" ] || die "$E2FS_ORIG: sha256 is not the one Debian lists"
    mv "$src.part" "$src"
  fi
  echo "$src"
}
if [ "${1:-}" = --src ]; then
  exec 8> "$XE2E_W/cache/suites/.lock"
  flock 8
  e2fs_src
  exit 0
fi

SUITES=(pjdfstest@0.2.0 fsx@0.3.2)
dir=$XE2E_W/cache/suites/$(printf '%s-' "${SUITES[@]}" | tr '@' '-')bin
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

# fsstress: SGI's file system stress program, the one LTP's fsstress descends from, as the
# e2fsprogs source package ships it (contrib/fsstress.c; LTP is in no registry CI reaches).
if [ ! -x "$dir/bin/fsstress" ]; then
  t=$XE2E_W/cache/suites/fsstress.tmp
  rm -rf "$t"; mkdir -p "$t"
  src=$(e2fs_src) || exit 1
  tar xzf "$src" -C "$t" --strip-components=2 e2fsprogs-1.47.0/contrib/fsstress.c || die "no contrib/fsstress.c in $E2FS_ORIG"
  say "building fsstress (static) from e2fsprogs 1.47.0's contrib/fsstress.c"
  cc -static -O2 -o "$t/fsstress" "$t/fsstress.c" >&2 || die "building fsstress failed (needs cc and libc6-dev)"
  install -m 755 "$t/fsstress" "$dir/bin/fsstress"
  rm -rf "$t"
fi
echo "$dir"
