#!/bin/bash
# Installs the host packages pvfs's build, tests and Xen test bed need on Debian 12.
# Run as root (xtask calls it when something is missing); prints the commands otherwise.
set -euo pipefail
PKGS=(qemu-system-x86 cpio e2fsprogs attr diod busybox-static xz-utils zstd binutils python3 gcc libc6-dev curl dosfstools mtools)
BACKPORTS=/etc/apt/sources.list.d/pvfs-bookworm-backports.sources
if [ "$(id -u)" != 0 ]; then
  echo "pvfs: missing host packages; run as root:" >&2
  echo "  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $BACKPORTS" >&2
  echo "  apt-get update && apt-get install -y -t bookworm-backports qemu-system-x86 && apt-get install -y ${PKGS[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$BACKPORTS"
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
apt-get install -y -qq "${PKGS[@]}" >/dev/null
qemu-system-x86_64 --version | head -1
