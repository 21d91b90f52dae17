# shellcheck shell=bash disable=SC2034
# Shared settings for the host-side test-bed scripts (sourced, not executed).
# Everything the bed downloads or builds lives under $W (default: <repo>/target/xen-testbed).
XEN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$XEN_DIR/../.." && pwd)
W=${W:-$REPO/target/xen-testbed}
export W
XEN_VER=4.17

say() { printf 'xen-testbed: %s\n' "$*" >&2; }
die() { printf 'xen-testbed: error: %s\n' "$*" >&2; exit 1; }

# Host tools the bed needs; runs ci/host-deps.sh (root) when one is missing.
need_host_tools() {
  local missing=() t
  for t in qemu-system-x86_64 cpio python3 dpkg-deb apt-get mkfs.ext4 xz; do
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
