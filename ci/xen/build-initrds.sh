#!/bin/bash
# Builds the dom0 initramfs for the test bed as two newc cpio archives, concatenated:
#   $W/cache/dom0-base.cpio  big and static (busybox, Xen tools and their libs, kernel modules,
#                            (dom0-base-qemu.cpio: the same with the device model, see QEMU_DM)
#                            mkfs.ext4, the Linux kernel + base initramfs for PV domUs).
#                            Rebuilt only when the packages or this script change.
#   $RUN/dom0-run.cpio       small, rebuilt every run: dom0 /init, the scenario scripts, the
#                            pvfs kernel ELF, pvfs-stubdom.cfg, guest configs and guest scripts.
#   $RUN/dom0.cpio           base [+ guestkernel] + run, what run.sh hands to Linux (the initramfs loader
#                            unpacks concatenated archives in order; later files win).
#   $W/cache/dom0-guestkernel.cpio  the Linux kernel ELF for PV guests (66 MiB), included
#                            unless XE2E_LINUX_GUEST=0 (run.sh sets it from the scenarios).
# $RUN is $XE2E_RUN_DIR (run.sh makes one per run, so concurrent runs do not collide) or
# $W/run. The cached parts are built under a lock ($W/.lock).
# usage: ci/xen/build-initrds.sh [kernel-elf]
#   kernel-elf defaults to target/x86_64-unknown-none/release/pvfs-kernel; when it does not
#   exist the dom0 initramfs has no /usr/lib/pvfs/pvfs-kernel (scenarios that need it fail).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ELF=${1:-$REPO/target/x86_64-unknown-none/release/pvfs-kernel}
R=$W/root
[ -f "$W/root.stamp" ] || die "run ci/xen/fetch.sh first"
KVER=$(cat "$W/kver")
MD=$R/lib/modules/$KVER
[ -d "$MD" ] || MD=$R/usr/lib/modules/$KVER   # Debian 13
XB=/usr/lib/xen-$XEN_VER/bin
# Path of the pvfs kernel inside dom0: must match kernel= in pvfs-stubdom.cfg.
PVFS_ELF_PATH=/usr/lib/pvfs/pvfs-kernel

# 9pnet_xen and 9p: dom0 attaches shares to itself and mounts them (scenario p9-attach);
# crc32c_generic and ext4: dom0 mounts an ext4 RAM disk for the exports it serves, xen-netback
# and nfsd: dom0 serves NFS to a guest's netfront (p9-baselines)
DOM0_MODULES=(xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback loop brd 9pnet_xen 9p crc32c_generic ext4)
[ "$XE2E_DEBIAN" = 12 ] || DOM0_MODULES+=(xen-netback nfsd)
DOMU_MODULES=(crc32c_generic 9pnet_xen 9p xen-blkfront ext4)
# The guests' NFS client (p9-baselines): an archive of its own (domu/nfs.cpio), in the guests'
# initramfs only for scenarios that declare "# xe2e-needs: nfs", and loaded only by the guest
# script that mounts NFS (/etc/xe2e-modules-nfs). Every megabyte of initramfs is unpacked into
# each guest's memory, and 96 MiB guests (p9-many, p9-template) would not boot with it.
DOMU_NFS_MODULES=(xen-netfront nfsv4)

# Module files (relative to $MD) for the given module names, dependencies first. The
# dependencies come from each module's .modinfo "depends=" string, so no depmod is needed.
# Debian 13's modules are xz-compressed (.ko.xz; mk_modules unpacks them); modules built
# into the kernel (modules.builtin) are left out.
mod_closure() {
  python3 - "$MD" "$@" <<'PY'
import lzma, os, re, sys
md, names = sys.argv[1], sys.argv[2:]
index = {}
for d, _, fs in os.walk(md):
    for f in fs:
        for ext in ('.ko', '.ko.xz'):
            if f.endswith(ext):
                index[f[:-len(ext)].replace('-', '_')] = os.path.relpath(os.path.join(d, f), md)
builtin = set()
if os.path.exists(os.path.join(md, 'modules.builtin')):
    for line in open(os.path.join(md, 'modules.builtin')):
        builtin.add(os.path.basename(line.strip())[:-3].replace('-', '_'))
out = []
def add(name, chain=()):
    key = name.replace('-', '_')
    if key not in index and key in builtin:
        return
    if key not in index:
        sys.exit('module %s not found (needed by %s)' % (name, ' <- '.join(chain) or 'request'))
    path = index[key]
    if path in out:
        return
    data = open(os.path.join(md, path), 'rb').read()
    if path.endswith('.xz'):
        data = lzma.decompress(data)
    m = re.search(rb'\0depends=([^\0]*)\0', data)
    for dep in (m.group(1).decode().split(',') if m and m.group(1) else []):
        add(dep, chain + (name,))
    out.append(path)
for n in names:
    add(n)
print('\n'.join(out))
PY
}

# Copy file $2 (from the extracted packages if there, else from the host) into stage $1,
# with the shared libraries it needs (same rule). Fails when a library cannot be found.
# Debian 13 (copy_bin13) takes nothing from the host.
copy_bin() {
  local S=$1 f=$2 src lib dst libs
  if [ "$XE2E_DEBIAN" != 12 ]; then copy_bin13 "$@"; return; fi
  if [ -e "$R$f" ]; then src=$R$f; elif [ -e "$f" ]; then src=$f; else die "$f not found"; fi
  mkdir -p "$S$(dirname "$f")"
  # The stage may hold a busybox applet link at that path (an absolute link to /bin/busybox):
  # replace the link, never write through it (that would overwrite the host's busybox).
  rm -f "$S$f"
  cp -L "$src" "$S$f"
  # ldd fails on static binaries and scripts: nothing more to copy then
  libs=$(LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu ldd "$src" 2>/dev/null) || return 0
  if grep -q 'not found' <<<"$libs"; then
    die "$f needs a library that is neither in the packages nor on the host: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')"
  fi
  awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/lib64\// {print $1}' <<<"$libs" |
    while read -r lib; do
      case $lib in /lib64/*) dst=$lib ;; *) dst=/lib/x86_64-linux-gnu/$(basename "$lib") ;; esac
      [ -e "$S$dst" ] || { mkdir -p "$S$(dirname "$dst")"; cp -L "$lib" "$S$dst"; }
    done
}

# Debian 13: copy file $2 of the extracted packages into stage $1 at the same path (or, for
# /bin/x and /sbin/x, from /usr/bin/x and /usr/sbin/x: Debian 13 ships everything under /usr,
# the test bed's dom0 has no merged /usr). Its shared libraries are resolved by trixie's own
# dynamic loader among the packages' libraries only, and go to /lib/x86_64-linux-gnu; the
# loader itself to /lib64 (the interpreter path of every program).
LD13=$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
LIBS13=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu
copy_bin13() {
  local S=$1 f=$2 src name path libs
  if [ -e "$R$f" ]; then src=$R$f; elif [ -e "$R/usr$f" ]; then src=$R/usr$f; else die "$f is not in the Debian $XE2E_DEBIAN packages"; fi
  mkdir -p "$S$(dirname "$f")"
  rm -f "$S$f"   # (a busybox applet link: replace it, never write through it)
  cp -L "$src" "$S$f"
  readelf -l "$src" 2>/dev/null | grep -q 'program interpreter' || return 0   # static, or a script
  libs=$("$LD13" --library-path "$LIBS13" --list "$src") || die "trixie's ld.so cannot resolve $f: $libs"
  if grep -q 'not found' <<<"$libs"; then
    die "$f needs a library that the Debian $XE2E_DEBIAN packages lack: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')"
  fi
  while read -r name path; do
    case $path in "$R"/*) ;; *) die "$f: $name resolved outside the Debian $XE2E_DEBIAN packages ($path)" ;; esac
    case $name in
      /lib64/*) mkdir -p "$S/lib64"; [ -e "$S$name" ] || cp -L "$path" "$S$name" ;;
      *) mkdir -p "$S/lib/x86_64-linux-gnu"; [ -e "$S/lib/x86_64-linux-gnu/$name" ] || cp -L "$path" "$S/lib/x86_64-linux-gnu/$name" ;;
    esac
  done < <(awk '$2 == "=>" {print $1, $3}' <<<"$libs")
}

# Debian 13: every dynamic program in stage $1 must run with the stage's own loader and find
# all its libraries in the stage (an ldd of the initramfs, with trixie's loader), and the
# loader and libc must be trixie's.
check_stage13() {
  local S=$1 f libs bad=0
  cmp -s "$S/lib64/ld-linux-x86-64.so.2" "$LD13" || die "dom0's /lib64/ld-linux-x86-64.so.2 is not Debian $XE2E_DEBIAN's"
  cmp -s "$S/lib/x86_64-linux-gnu/libc.so.6" "$R/usr/lib/x86_64-linux-gnu/libc.so.6" || die "dom0's libc.so.6 is not Debian $XE2E_DEBIAN's"
  while read -r f; do
    readelf -l "$f" 2>/dev/null | grep -q 'program interpreter: /lib64/ld-linux-x86-64.so.2' || continue
    libs=$("$S/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$S/lib/x86_64-linux-gnu" --list "$f" 2>&1) || { say "${f#"$S"}: $libs"; bad=1; continue; }
    if awk -v s="$S/" '$2 == "=>" && index($3, s) != 1 {print; n++} END {exit n > 0}' <<<"$libs" >/dev/null; then :; else
      say "${f#"$S"} resolves a library outside the stage: $(awk -v s="$S/" '$2 == "=>" && index($3, s) != 1' <<<"$libs" | tr -s ' \t\n' ' ')"; bad=1
    fi
  done < <(find "$S" -type f \( -perm -u+x -o -name '*.so*' \))
  [ $bad = 0 ] || die "dom0's programs do not all run on the initramfs' own libraries"
  say "dom0 runs $("$S/lib64/ld-linux-x86-64.so.2" --version | head -1) with its own libraries (checked: $(find "$S" -type f \( -perm -u+x -o -name '*.so*' \) -exec readelf -l {} \; 2>/dev/null | grep -c 'program interpreter') dynamic ELF files)"
}

mk_busybox() {
  local S=$1 a
  mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc,mnt,root}
  local bb=$R/bin/busybox
  [ -e "$bb" ] || bb=$R/usr/bin/busybox   # Debian 13
  cp "$bb" "$S/bin/busybox"
  for a in $("$bb" --list-full); do
    [ -e "$S/$a" ] || ln -s /bin/busybox "$S/$a"
  done
  echo "root:x:0:0:root:/root:/bin/sh" > "$S/etc/passwd"
  echo "root:x:0:" > "$S/etc/group"
}

mk_modules() {
  local S=$1 m list=${MODLIST:-xe2e-modules}
  shift
  mod_closure "$@" > "$S/etc/xe2e-modules.src" || die "module closure failed"
  while read -r m; do
    mkdir -p "$S/lib/modules/$(dirname "$m")"
    case $m in
      *.xz) xz -dc "$MD/$m" > "$S/lib/modules/${m%.xz}" ;;
      *) cp "$MD/$m" "$S/lib/modules/$m" ;;
    esac
    echo "${m%.xz}"
  done < "$S/etc/xe2e-modules.src" > "$S/etc/$list"
  rm "$S/etc/xe2e-modules.src"
}

pack() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$2.tmp" && mv "$2.tmp" "$2"; }

RUN=${XE2E_RUN_DIR:-$W/run}
mkdir -p "$W/cache" "$RUN"
exec 9> "$W/.lock"
flock 9

# ---------------- static part (cached) ----------------
# The device model (qemu-system-xen) goes into dom0 when it is in the extracted packages: on
# Debian 12 that is when fetch.sh ran with XEN_QEMU=1; Debian 13 always extracts it and puts
# it into dom0 only with XEN_QEMU=1, so switching XEN_QEMU re-extracts nothing there. The two
# variants of the base archive are cached side by side.
QEMU_DM=0
if [ -e "$R/usr/libexec/xen-qemu-system-i386" ] && { [ "$XE2E_DEBIAN" = 12 ] || [ "${XEN_QEMU:-0}" = 1 ]; }; then QEMU_DM=1; fi
BASE=$W/cache/dom0-base.cpio BASE_STAMP=$W/cache/base.stamp
[ $QEMU_DM = 0 ] || BASE=$W/cache/dom0-base-qemu.cpio BASE_STAMP=$W/cache/base-qemu.stamp
base_key=$( { cat "$W/root.stamp"; cat "$0" "$XEN_DIR/lib.sh"; } | sha256sum | cut -d' ' -f1)
if [ -f "$BASE" ] && [ "$(cat "$BASE_STAMP" 2>/dev/null)" = "$base_key" ]; then
  say "dom0 base initramfs up to date"
else
  t0=$(date +%s.%N)
  # PV domU base: busybox + 9p modules; its /init and guest scripts come with each run.
  S=$W/cache/stage-domu; rm -rf "$S"; mkdir -p "$S"
  mk_busybox "$S"
  mk_modules "$S" "${DOMU_MODULES[@]}"
  pack "$S" "$W/cache/domu-base.cpio"
  rm -f "$W/cache/domu-nfs.cpio"
  if [ "$XE2E_DEBIAN" != 12 ]; then
    # the NFS client's modules that the base does not have, and their list
    N=$W/cache/stage-domu-nfs; rm -rf "$N"; mkdir -p "$N/etc" "$N/lib/modules"
    MODLIST=xe2e-modules-nfs.all mk_modules "$N" "${DOMU_NFS_MODULES[@]}"
    grep -vxF -f "$S/etc/xe2e-modules" "$N/etc/xe2e-modules-nfs.all" > "$N/etc/xe2e-modules-nfs"
    rm "$N/etc/xe2e-modules-nfs.all"
    (cd "$N/lib/modules" && find . -name '*.ko' | sed 's|^\./||' | LC_ALL=C sort) |
      grep -vxF -f "$N/etc/xe2e-modules-nfs" | (cd "$N/lib/modules" && xargs -r rm -f)
    pack "$N" "$W/cache/domu-nfs.cpio"
    rm -rf "$N"
  fi

  S=$W/cache/stage-dom0; rm -rf "$S"; mkdir -p "$S"
  mk_busybox "$S"
  mk_modules "$S" "${DOM0_MODULES[@]}"
  for b in xl xenstored xenconsoled xenconsole xen-init-dom0 libxl-save-helper xenstore-control \
           lsevtchn xenctx xen-hvmctx readnotes xentop; do
    copy_bin "$S" "$XB/$b"
  done
  # xen-9pfsd, Xen's own 9pfs backend daemon (4.19 and later), which libxl starts for a
  # type=xen_9pfsd device (p9-baselines' column)
  [ ! -x "$R$XB/xen-9pfsd" ] || copy_bin "$S" "$XB/xen-9pfsd"
  for b in "$R"/usr/bin/xenstore*; do copy_bin "$S" "/usr/bin/$(basename "$b")"; done
  if [ "$XE2E_DEBIAN" = 12 ]; then
    copy_bin "$S" /lib/x86_64-linux-gnu/libgcc_s.so.1
  else
    # (glibc loads it for pthread_cancel; no program names it)
    cp -L "$R/usr/lib/x86_64-linux-gnu/libgcc_s.so.1" "$S/lib/x86_64-linux-gnu/libgcc_s.so.1"
  fi
  # tools for later scenarios: ext4 images (mkfs.ext4 -d), and the hotplug "block" script
  # (bash, losetup, flock) that libxl runs for file-backed disks
  for b in /sbin/mkfs.ext4 /sbin/mke2fs /sbin/e2fsck /sbin/debugfs /bin/bash /sbin/losetup /usr/bin/flock; do
    copy_bin "$S" "$b"
  done
  # FAT volumes (mkfs.fat, fsck.fat); on Debian 13, the kernel NFS server's programs and the
  # hotplug script that puts a guest's vif on dom0's side of a point-to-point link (p9-baselines)
  for b in /sbin/mkfs.fat /sbin/fsck.fat; do copy_bin "$S" "$b"; done
  if [ "$XE2E_DEBIAN" != 12 ]; then
    for b in /usr/sbin/rpc.nfsd /usr/sbin/rpc.mountd /usr/sbin/exportfs; do copy_bin "$S" "$b"; done
    mkdir -p "$S/var/lib/nfs"
  fi
  # the 9pfs baseline's device model, present when fetched with --with-qemu-xen (XEN_QEMU=1);
  # libxl passes -vnc none but QEMU still loads a keymap
  if [ $QEMU_DM = 1 ]; then
    copy_bin "$S" /usr/libexec/xen-qemu-system-i386
    KM=$R/usr/share/qemu/keymaps; [ -d "$KM" ] || [ "$XE2E_DEBIAN" != 12 ] || KM=/usr/share/qemu/keymaps
    mkdir -p "$S/usr/share/qemu"; cp -a "$KM" "$S/usr/share/qemu/keymaps"
  fi
  mkdir -p "$S/etc/xen" "$S/var/lib" "$S/var/log" "$S/usr/lib/pvfs" "$S/domu"
  cp -a "$R/etc/xen/." "$S/etc/xen/"
  ln -s /run "$S/var/run"
  cp "$W/cache/domu-base.cpio" "$S/domu/base.cpio"
  [ ! -f "$W/cache/domu-nfs.cpio" ] || cp "$W/cache/domu-nfs.cpio" "$S/domu/nfs.cpio"
  [ "$XE2E_DEBIAN" = 12 ] || check_stage13 "$S"
  pack "$S" "$BASE"

  # The Linux kernel as a plain ELF, for dom0 (Xen would spend ~3 s under TCG un-xz-ing the
  # bzImage) and for PV guests (libxenguest would spend ~6 s on every xl create). The guest
  # copy is a separate archive, added only for scenarios that declare "# xe2e-needs: linux-guest".
  # (Debian 12's bzImage holds an xz stream, Debian 13's a zstd frame; zstd reports the
  # bytes after the frame as an error, the ELF check below is what counts)
  python3 - "$R/boot/vmlinuz-$KVER" "$W/cache/vmlinux.packed" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
for magic, kind in ((b'\xfd7zXZ\x00', 'xz'), (b'\x28\xb5\x2f\xfd', 'zstd')):
    i = d.find(magic)
    if i >= 0:
        break
else:
    sys.exit('no xz or zstd payload in ' + sys.argv[1])
open(sys.argv[2], 'wb').write(d[i:])
PY
  case $(python3 -c 'import sys; print("xz" if open(sys.argv[1], "rb").read(6) == b"\xfd7zXZ\x00" else "zstd")' "$W/cache/vmlinux.packed") in
    xz) xz -dc --single-stream "$W/cache/vmlinux.packed" > "$W/cache/vmlinux" ;;
    zstd) zstd -q -dc "$W/cache/vmlinux.packed" > "$W/cache/vmlinux" 2>/dev/null || true ;;
  esac
  rm "$W/cache/vmlinux.packed"
  [ "$(head -c 4 "$W/cache/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || die "extracted vmlinux is not an ELF"
  S=$W/cache/stage-guestkernel; rm -rf "$S"; mkdir -p "$S/domu"
  cp "$W/cache/vmlinux" "$S/domu/vmlinux"
  pack "$S" "$W/cache/dom0-guestkernel.cpio"
  rm -rf "$S"
  echo "$base_key" > "$BASE_STAMP"
  say "built dom0 base initramfs $(basename "$BASE") ($(du -m "$BASE" | cut -f1) MiB) in $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1-$2}') s"
fi

# ---------------- per-run part ----------------
S=$RUN/stage; rm -rf "$S"; mkdir -p "$S/xe2e/scenarios" "$S/etc/xen/guests" "$S/usr/lib/pvfs" "$S/domu/guest"
install -m 755 "$XEN_DIR/dom0/init" "$S/init"
install -m 644 "$XEN_DIR/dom0/xe2e-lib.sh" "$S/xe2e/lib.sh"
install -m 644 "$XEN_DIR/dom0/xe2e-walk.sh" "$S/xe2e/walk.sh"
install -m 644 "$XEN_DIR/dom0/xe2e-bench.sh" "$S/xe2e/bench.sh"
mkdir -p "$S/etc/xen/scripts"
install -m 755 "$XEN_DIR/dom0/xe2e-vif" "$S/etc/xen/scripts/xe2e-vif"
install -m 755 "$XEN_DIR"/scenarios/*.sh "$S/xe2e/scenarios/"
install -m 644 "$XEN_DIR"/guests/*.cfg "$S/etc/xen/guests/"
install -m 644 "$REPO/pvfs-stubdom.cfg" "$S/etc/xen/pvfs-stubdom.cfg"
if [ -f "$ELF" ]; then
  install -m 644 "$ELF" "$S$PVFS_ELF_PATH"
  echo "$ELF" > "$S/xe2e/pvfs-kernel-source"
else
  echo "$ELF (missing on the host)" > "$S/xe2e/pvfs-kernel-source"
  say "warning: no pvfs kernel at $ELF; scenarios that start pvfs will fail"
fi
# stage_sbin BIN NAME WITHOUT: the host's binary BIN as dom0's /usr/sbin/NAME, or a warning
# that without it WITHOUT.
stage_sbin() {
  if [ -x "$1" ]; then
    mkdir -p "$S/usr/sbin"
    install -m 755 "$1" "$S/usr/sbin/$2"
  else
    say "warning: no $2 binary at $1; $3"
  fi
}
# The pvfs binary for dom0 (`pvfs share …`, `pvfs status`), as a user installs it.
PVFS_BIN=${XE2E_PVFS_BIN:-$REPO/target/release/pvfs}
stage_sbin "$PVFS_BIN" pvfs "scenarios that use it fail (cargo build --release -p pvfs-cli)"
# The hostile 9pfs frontend of p9-hostile (tools/xfront), a test-bed tool.
XFRONT_BIN=${XE2E_XFRONT_BIN:-$REPO/target/release/xfront}
stage_sbin "$XFRONT_BIN" xfront "p9-hostile fails (cargo build --release -p pvfs-xfront)"
# The p9-sweep scenario's list of pvfs command lines, from the host's environment.
[ -z "${XE2E_SWEEP:-}" ] || printf '%s\n' "$XE2E_SWEEP" > "$S/xe2e/sweep"
# The PV domU's /init and guest scripts: a small archive dom0 appends to domu/base.cpio.
G=$RUN/stage-guest; rm -rf "$G"; mkdir -p "$G/guest"
install -m 755 "$XEN_DIR/domu/init" "$G/init"
install -m 755 "$XEN_DIR"/domu/guest-*.sh "$G/guest/"
# The metadata benchmark loop (one system call per operation), static so the guest needs no libc.
# The guest side of the 9pfs scenarios (checksums, confinement, writes) in one process.
# p9-fair's stat latency probe.
for t in p9meta p9check p9lat; do
  cc -static -O2 -Wall -Werror -o "$G/guest/$t" "$XEN_DIR/domu/$t.c" || die "cannot build ci/xen/domu/$t.c (needs cc and libc6-dev)"
done
pack "$G" "$S/domu/guest.cpio"
rm -rf "$G"
# The POSIX suites, for scenarios that declare "# xe2e-needs: posix" (run.sh builds them with
# ci/xen/suites.sh and sets XE2E_SUITES to their directory): domu/posix.cpio, added to the
# guests' initramfs of those scenarios only (xe2e-lib.sh, domu_initrd).
if [ -n "${XE2E_SUITES:-}" ]; then
  mkdir -p "$G/usr/bin" "$G/etc"
  install -m 755 "$XE2E_SUITES/bin/pjdfstest" "$XE2E_SUITES/bin/fsx" "$XE2E_SUITES/bin/fsstress" "$G/usr/bin/"
  install -m 644 "$XEN_DIR/domu/pjdfstest.toml" "$XEN_DIR"/domu/fsx-*.toml "$G/etc/"
  pack "$G" "$S/domu/posix.cpio"
  rm -rf "$G"
fi
# A source tree for p9-baselines' unpack and walk rows (run.sh sets XE2E_SRCTREE for scenarios
# that declare "# xe2e-needs: srctree"), without its symbolic links: xen-9pfsd makes no links
# (tools/9pfsd/xen-9pfsd.c says so), and every column gets the same tree. domu/srctree.cpio,
# for those scenarios' guests only.
if [ -n "${XE2E_SRCTREE:-}" ]; then
  t=$RUN/srctree; rm -rf "$t"; mkdir -p "$t" "$G/guest"
  tar xzf "$XE2E_SRCTREE" -C "$t" || die "cannot unpack $XE2E_SRCTREE"
  find "$t" -type l -delete
  tar czf "$G/guest/src.tar.gz" -C "$t" --owner=0 --group=0 . || die "cannot pack the source tree"
  rm -rf "$t"
  pack "$G" "$S/domu/srctree.cpio"
  rm -rf "$G"
fi
pack "$S" "$RUN/dom0-run.cpio"
parts=("$BASE")
[ "${XE2E_LINUX_GUEST:-1}" = 1 ] && parts+=("$W/cache/dom0-guestkernel.cpio")
cat "${parts[@]}" "$RUN/dom0-run.cpio" > "$RUN/dom0.cpio.tmp"
mv "$RUN/dom0.cpio.tmp" "$RUN/dom0.cpio"
rm -rf "$S" "$G" "$RUN/dom0-run.cpio"
