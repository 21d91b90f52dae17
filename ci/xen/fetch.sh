#!/bin/bash
# Downloads the Debian packages of the test bed (XE2E_DEBIAN=12: bookworm, through the
# host's apt; 13: trixie, through an apt configuration of its own in $W/apt) into $W/debs and
# extracts them into $W/root ($W is the release's work dir, <work dir>/deb<N>). Idempotent: a
# package file already in $W/debs is not downloaded again, and the extraction is skipped when
# $W/root was made from exactly the same package versions.
#
# usage: ci/xen/fetch.sh [--with-qemu-xen]
#   --with-qemu-xen  also fetch qemu-system-xen (the dom0 9pfs backend, only needed for the
#                    9pfs baseline benchmark); same as XEN_QEMU=1. Debian 13 always fetches
#                    it; there build-initrds.sh puts it into dom0 when XEN_QEMU=1.
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
# Before the per-release directories, the Debian 12 cache sat in the work dir itself: move
# it, so that nothing is downloaded again.
if [ "$XE2E_DEBIAN" = 12 ] && [ -f "$XE2E_W/root.stamp" ] && [ ! -e "$W" ]; then
  say "moving the Debian 12 cache from $XE2E_W into $W"
  mkdir -p "$W"
  for f in debs debs-qemu root root.stamp kver vmlinuz xen.elf cache; do
    [ ! -e "$XE2E_W/$f" ] || mv "$XE2E_W/$f" "$W/$f"
  done
fi
mkdir -p "$W"
exec 9> "$W/.lock"   # one fetch or initramfs build at a time per $W
flock 9
mkdir -p "$W/debs"
deb_of() { ls "$W/debs/${1}_${2//:/%3a}"_*.deb 2>/dev/null | head -1 || true; }  # apt encodes ':' as %3a
wanted=()
declare -A ver=()   # package name -> version

fetch12() {
  # Exactly the packages the bed uses (no recursive dependency walk: the remaining shared libs,
  # libc and friends, come from the host, which is the same Debian release).
  PKGS=(
    "xen-hypervisor-$XEN_VER-amd64" "xen-utils-$XEN_VER" xen-utils-common xenstore-utils
    libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
    libxenhypfs1 "libxenmisc$XEN_VER" libxenstore4 libxentoolcore1 libxentoollog1 libyajl2
    busybox-static dosfstools
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

  while read -r n v; do ver[$n]=$v; done < <(candidates "${PKGS[@]}")
  missing=()
  for p in "${PKGS[@]}"; do
    v=${ver[$p]:-}
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "no candidate version for $p"
    [ -n "$(deb_of "$p" "$v")" ] || missing+=("$p=$v")
  done
  # Download what is missing, then list every package's file: the same steps as fetch13's,
  # which asks Debian 13's own apt configuration (APT13) and walks a computed closure rather
  # than PKGS; each release's fetch is kept whole so that either can change alone.
  if [ ${#missing[@]} -gt 0 ]; then
    say "downloading ${#missing[@]} packages: ${missing[*]}"
    (cd "$W/debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null) \
      || die "apt-get download failed"
  fi
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
}

# Debian 13: the host is Debian 12, so dom0 brings trixie's own libc and every library its
# programs need. The packages are the named ones plus the library packages they depend on,
# resolved from trixie's Packages index (debclosure.py); build-initrds.sh then checks, with
# trixie's dynamic loader, that every program it copies finds its libraries among them.
fetch13() {
  local A=$W/apt lists top closure_key list p n v
  mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/none"
  [ -f "$A/state/status" ] || : > "$A/state/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DEB_SUITE main" > "$A/sources.list"
  lists=$(ls "$A"/state/lists/*_dists_"${DEB_SUITE}"_main_binary-amd64_Packages* 2>/dev/null | head -1 || true)
  # refresh the index once a day (point releases); without the network, an older one will do
  if [ -z "$lists" ] || [ -n "$(find "$lists" -mmin +1440)" ]; then
    say "apt-get update for Debian $XE2E_DEBIAN ($DEB_SUITE) into $A"
    if ! apt-get "${APT13[@]}" update -qq >/dev/null; then
      [ -n "$lists" ] || die "apt-get update for $DEB_SUITE failed"
      say "warning: apt-get update for $DEB_SUITE failed; using the index of $(date -r "$lists")"
    fi
    lists=$(ls "$A"/state/lists/*_dists_"${DEB_SUITE}"_main_binary-amd64_Packages* 2>/dev/null | head -1 || true)
    [ -n "$lists" ] || die "no $DEB_SUITE Packages index after apt-get update"
  fi
  KPKG=$(apt-cache "${APT13[@]}" depends linux-image-amd64 2>/dev/null | sed -n 's/^  Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
  [ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 in $DEB_SUITE"
  # The device model is always fetched and extracted (build-initrds.sh puts it into dom0 only
  # with XEN_QEMU=1), so that switching XEN_QEMU does not extract everything again.
  top=("xen-hypervisor-$XEN_VER-amd64" "xen-utils-$XEN_VER" xen-utils-common xenstore-utils
       busybox-static e2fsprogs bash mount util-linux "$KPKG" qemu-system-xen qemu-system-data
       nfs-kernel-server dosfstools)
  # the closure is computed again only when the index or the list changes (it costs ~4 s)
  closure_key=$( { stat -c '%n %s %Y' "$lists"; printf '%s\n' "${top[@]}"; sha256sum "$XEN_DIR/debclosure.py"; } | sha256sum | cut -d' ' -f1)
  if [ "$(head -1 "$A/closure" 2>/dev/null)" != "$closure_key" ]; then
    list=$(apt-cache "${APT13[@]}" dumpavail | python3 "$XEN_DIR/debclosure.py" "${top[@]}") || die "cannot resolve the $DEB_SUITE packages"
    printf '%s\n%s\n' "$closure_key" "$list" > "$A/closure"
  fi
  missing=()
  while IFS== read -r n v; do
    ver[$n]=$v
    [ -n "$(deb_of "$n" "$v")" ] || missing+=("$n=$v")
  done < <(tail -n +2 "$A/closure")
  # Download what is missing, then list every package's file: the same steps as fetch12's,
  # which uses the host's apt and the fixed list PKGS; each release's fetch is kept whole so
  # that either can change alone.
  if [ ${#missing[@]} -gt 0 ]; then
    say "downloading ${#missing[@]} $DEB_SUITE packages"
    (cd "$W/debs" && apt-get "${APT13[@]}" download -q "${missing[@]}" >/dev/null) \
      || die "apt-get download from $DEB_SUITE failed"
  fi
  for n in "${!ver[@]}"; do
    p=$(deb_of "$n" "${ver[$n]}")
    [ -n "$p" ] || die "$n ${ver[$n]} missing after download"
    wanted+=("$(basename "$p")")
  done
}

if [ "$XE2E_DEBIAN" = 12 ]; then fetch12; else fetch13; fi

key=$(printf '%s\n' "${wanted[@]}" | LC_ALL=C sort)
if [ -f "$W/root.stamp" ] && [ "$(cat "$W/root.stamp")" = "$key" ] && [ -f "$W/xen.elf" ]; then
  say "packages unchanged; $W/root is up to date"
  exit 0
fi

say "extracting ${#wanted[@]} packages into $W/root"
rm -rf "$W/root" "$W/root.stamp"
mkdir -p "$W/root"
for f in "${wanted[@]}"; do dpkg-deb -x "$W/debs/$f" "$W/root"; done
KVER=
for d in "$W/root/lib/modules" "$W/root/usr/lib/modules"; do  # Debian 13 ships /usr/lib/modules
  [ -d "$d" ] && KVER=$(ls "$d" | head -1) && break
done
[ -n "$KVER" ] || die "no kernel modules in $KPKG"
echo "$KVER" > "$W/kver"
zcat "$W/root/boot/xen-$XEN_VER-amd64.gz" > "$W/xen.elf.tmp" && mv "$W/xen.elf.tmp" "$W/xen.elf"
cp "$W/root/boot/vmlinuz-$KVER" "$W/vmlinuz"
printf '%s\n' "$key" > "$W/root.stamp"
# anything built from the old root is stale now
rm -f "$W"/cache/*.stamp 2>/dev/null || true
say "ready: Debian $XE2E_DEBIAN, xen ${ver[xen-utils-$XEN_VER]}, linux $KVER"
