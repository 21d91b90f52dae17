#!/bin/bash
# Downloads the Debian bookworm packages of the test bed into $W/debs and extracts them
# into $W/root. Idempotent: a package file already in $W/debs is not downloaded again, and
# the extraction is skipped when $W/root was made from exactly the same package versions.
#
# usage: ci/xen/fetch.sh [--with-qemu-xen]
#   --with-qemu-xen  also fetch qemu-system-xen (the dom0 9pfs backend, only needed for the
#                    9pfs baseline benchmark); same as XEN_QEMU=1.
# Outputs: $W/xen.elf (hypervisor, multiboot ELF), $W/vmlinuz (Linux bzImage), $W/kver,
#          $W/root/ (the extracted packages).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WITH_QEMU=${XEN_QEMU:-0}
for a in "$@"; do
  case $a in
    --with-qemu-xen) WITH_QEMU=1 ;;
    *) die "unknown option $a" ;;
  esac
done

need_host_tools
mkdir -p "$W"
exec 9> "$W/.lock"   # one fetch or initramfs build at a time per $W
flock 9

# Exactly the packages the bed uses (no recursive dependency walk: the remaining shared libs,
# libc and friends, come from the host, which is the same Debian release).
PKGS=(
  "xen-hypervisor-$XEN_VER-amd64" "xen-utils-$XEN_VER" xen-utils-common xenstore-utils
  libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
  libxenhypfs1 "libxenmisc$XEN_VER" libxenstore4 libxentoolcore1 libxentoollog1 libyajl2
  busybox-static
)

candidate() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p'; }
# "name version" for each argument, in one apt-cache call (each call costs ~0.4 s)
candidates() {
  apt-cache policy "$@" 2>/dev/null | awk '/^[^ ].*:$/ {n=substr($0,1,length($0)-1)} /^  Candidate: / {print n, $2}'
}

# linux-image-amd64 is a metapackage; pin the real image package it points at.
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^  Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1
}

KPKG=$(kernel_pkg)
if [ -z "$KPKG" ] || [ -z "$(candidate "xen-utils-$XEN_VER")" ]; then
  say "apt lists do not know the Xen packages yet; running apt-get update"
  apt-get update -qq || die "apt-get update failed (run as root?)"
  KPKG=$(kernel_pkg)
fi
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64"
PKGS+=("$KPKG")

mkdir -p "$W/debs"
deb_of() { ls "$W/debs/${1}_${2//:/%3a}"_*.deb 2>/dev/null | head -1 || true; }  # apt encodes ':' as %3a
declare -A ver
while read -r n v; do ver[$n]=$v; done < <(candidates "${PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do
  v=${ver[$p]:-}
  [ -n "$v" ] && [ "$v" != "(none)" ] || die "no candidate version for $p"
  [ -n "$(deb_of "$p" "$v")" ] || missing+=("$p=$v")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "downloading ${#missing[@]} packages: ${missing[*]}"
  (cd "$W/debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null) \
    || die "apt-get download failed"
fi
wanted=()
for p in "${PKGS[@]}"; do
  f=$(deb_of "$p" "${ver[$p]}")
  [ -n "$f" ] || die "$p ${ver[$p]} missing after download"
  wanted+=("$(basename "$f")")
done

if [ "$WITH_QEMU" = 1 ]; then
  # The device model has a large library closure; let apt resolve what the host lacks.
  say "fetching qemu-system-xen (opt-in)"
  mkdir -p "$W/debs-qemu"
  apt-get install -y -q --download-only -o APT::Sandbox::User=root -o Dir::Cache::archives="$W/debs-qemu" \
    qemu-system-xen >/dev/null || die "downloading qemu-system-xen failed"
  for f in "$W"/debs-qemu/*.deb; do wanted+=("../debs-qemu/$(basename "$f")"); done
fi

key=$(printf '%s\n' "${wanted[@]}" | LC_ALL=C sort)
if [ -f "$W/root.stamp" ] && [ "$(cat "$W/root.stamp")" = "$key" ] && [ -f "$W/xen.elf" ]; then
  say "packages unchanged; $W/root is up to date"
  exit 0
fi

say "extracting ${#wanted[@]} packages into $W/root"
rm -rf "$W/root" "$W/root.stamp"
mkdir -p "$W/root"
for f in "${wanted[@]}"; do dpkg-deb -x "$W/debs/$f" "$W/root"; done
KVER=$(ls "$W/root/lib/modules" | head -1)
[ -n "$KVER" ] || die "no kernel modules in $KPKG"
echo "$KVER" > "$W/kver"
zcat "$W/root/boot/xen-$XEN_VER-amd64.gz" > "$W/xen.elf.tmp" && mv "$W/xen.elf.tmp" "$W/xen.elf"
cp "$W/root/boot/vmlinuz-$KVER" "$W/vmlinuz"
printf '%s\n' "$key" > "$W/root.stamp"
# anything built from the old root is stale now
rm -f "$W"/cache/*.stamp 2>/dev/null || true
say "ready: xen ${ver[xen-utils-$XEN_VER]}, linux $KVER"
