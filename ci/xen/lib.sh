# shellcheck shell=bash disable=SC2034
# Shared settings for the host-side test-bed scripts (sourced, not executed).
# Everything the bed downloads or builds lives under the work dir (W on the command line,
# default <repo>/target/xen-testbed), one cache per Debian release in $W/deb<N>: inside the
# scripts, $W is that release's directory and $XE2E_W the common one (logs).
XEN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$XEN_DIR/../.." && pwd)
XE2E_W=${XE2E_W:-${W:-$REPO/target/xen-testbed}}
export XE2E_W

say() { printf 'xen-testbed: %s\n' "$*" >&2; }
die() { printf 'xen-testbed: error: %s\n' "$*" >&2; exit 1; }

# The Debian release of Xen, dom0 and guests: XE2E_DEBIAN=13 (the default; trixie: Xen 4.20,
# Linux 6.12, dom0 brings trixie's own libc and libraries) or 12 (bookworm: Xen 4.17, Linux
# 6.1, dom0's shared libraries from this host, which is Debian 12).
XE2E_DEBIAN=${XE2E_DEBIAN:-13}
export XE2E_DEBIAN
case $XE2E_DEBIAN in
  12) DEB_SUITE=bookworm XEN_VER=4.17 ;;
  13) DEB_SUITE=trixie XEN_VER=4.20 ;;
  *) die "XE2E_DEBIAN=$XE2E_DEBIAN: the test bed knows Debian 12 and 13" ;;
esac
W=$XE2E_W/deb$XE2E_DEBIAN
# Debian 13's packages come through an apt configuration of their own under $W/apt (the
# host's apt knows only its own release): apt-get "${APT13[@]}" ...
APT13=(-o "Dir::Etc::SourceList=$W/apt/sources.list" -o "Dir::Etc::SourceParts=$W/apt/none"
       -o "Dir::Etc::Preferences=$W/apt/none/preferences" -o "Dir::Etc::PreferencesParts=$W/apt/none"
       -o "Dir::State=$W/apt/state" -o "Dir::State::status=$W/apt/state/status"
       -o "Dir::Cache=$W/apt/cache" -o APT::Architectures=amd64 -o APT::Sandbox::User=root)

# Host tools the bed needs; runs ci/host-deps.sh (root) when one is missing.
need_host_tools() {
  local missing=() t
  for t in qemu-system-x86_64 cpio python3 dpkg-deb apt-get mkfs.ext4 xz zstd readelf; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    local v
    v=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
    [ "${v:-0}" -ge 10 ] || missing+=("qemu-system-x86>=10")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing host tools: ${missing[*]}; running ci/host-deps.sh"
    "$REPO/ci/host-deps.sh" || die "host prerequisites missing (${missing[*]})"
  fi
}
