#!/usr/bin/env bash
# Fetches Debian's amd64 kernel and extracts the uncompressed vmlinux from its bzImage (the microvm
# machine boots an uncompressed ELF kernel fastest: no decompression under TCG), and the few modules
# a microVM with a payload disk needs (Debian builds the drivers as modules): modules/ beside the
# vmlinux, with a modules.dep for them (the init loads them; see init/pid1/kmod.ts).
#
#   qemu/kernel.sh [--version 6.1.0-NN-amd64] [--cache DIR]
#
# Prints the path of the vmlinux on stdout (progress goes to stderr). Without --version, the version
# is the one Debian's linux-image-amd64 meta-package depends on. Nothing is installed: the package is
# fetched with `apt-get download` and unpacked with `dpkg -x` into the cache
# (default: build/qemu/kernel/<version>/ under the repository). A cached vmlinux is reused, so a
# second run needs no network; `--version` pins the kernel for offline reruns.
# Among them the hardware watchdog drivers Debian builds as modules (ib700wdt, i6300esb, softdog and
# their watchdog core): a VM's init loads one when asked (qemu/initramfs.sh --load, or the kernel
# word starter.modules=).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
version=""
cache="$top/build/qemu/kernel"

while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "kernel: unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { echo "kernel: $*" >&2; }

# The newest kernel already in the cache, when apt cannot tell (offline).
cached_version() {
  local found
  found=$(ls -1d "$cache"/*/vmlinux 2>/dev/null | sort -V | tail -n 1) || true
  [ -n "$found" ] && basename "$(dirname "$found")"
}

if [ -z "$version" ]; then
  version=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n 1) || true
  if [ -z "$version" ]; then
    say "apt-cache knows no linux-image-amd64; running apt-get update"
    apt-get update -qq >&2 || true
    version=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n 1) || true
  fi
  [ -n "$version" ] || version=$(cached_version) || true
  [ -n "$version" ] || { say "cannot tell which kernel to fetch; pass --version 6.1.0-NN-amd64"; exit 1; }
fi

dir="$cache/$version"
vmlinux="$dir/vmlinux"
# A cache made before a module joined MODULES is made again.
if [ -s "$vmlinux" ] && [ -s "$dir/modules/modules.dep" ] && grep -q softdog "$dir/modules/modules.dep"; then
  echo "$vmlinux"
  exit 0
fi

# The payload disk's drivers: the virtio-mmio transport, the block device, the erofs filesystem
# (crc32c_generic before libcrc32c, which asks the crypto API for a crc32c when it loads); and the
# hardware watchdogs' drivers (qemu's ib700 and i6300esb; softdog without one).
MODULES=(virtio_ring virtio virtio_mmio virtio_blk crc32c_generic libcrc32c erofs watchdog ib700wdt i6300esb softdog)

mkdir -p "$dir"
work=$(mktemp -d "$dir/.work.XXXXXX")
chmod 755 "$work" # apt-get download hands the file to the _apt user
trap 'rm -rf "$work"' EXIT

say "downloading linux-image-$version"
if ! (cd "$work" && apt-get download "linux-image-$version" >&2); then
  say "apt-get download failed; trying after apt-get update"
  apt-get update -qq >&2 || true
  if ! (cd "$work" && apt-get download "linux-image-$version" >&2); then
    # Offline with an older kernel in the cache: better that one than none.
    fallback=$(cached_version) || true
    if [ -s "$vmlinux" ]; then
      say "cannot download linux-image-$version for its modules; the cached vmlinux has none beside it"
      echo "$vmlinux"
      exit 0
    fi
    [ -n "$fallback" ] || { say "cannot download linux-image-$version"; exit 1; }
    say "cannot download linux-image-$version; using the cached $fallback"
    echo "$cache/$fallback/vmlinux"
    exit 0
  fi
fi
deb=$(ls "$work"/linux-image-*.deb | head -n 1)
dpkg -x "$deb" "$work/root"

# modules/: each module of MODULES at its path under lib/modules/<version>/, and modules.dep in
# depmod's format (a module's dependencies listed so that loading them from the end is in order).
tree="$work/root/lib/modules/$version"
rm -rf "$dir/modules"
mkdir -p "$dir/modules"
module_path() { (cd "$tree" && find kernel -name "$1.ko" -o -name "${1//_/-}.ko" | head -n 1); }
module_deps() { readelf -p .modinfo "$tree/$(module_path "$1")" 2>/dev/null | sed -n 's/.*depends=//p' | tr ',' ' '; }
closure() { # name -> dependency names, dependencies of dependencies last
  local name=$1 dep out=""
  for dep in $(module_deps "$name"); do
    out="$out $dep $(closure "$dep")"
  done
  echo "$out" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' '
}
for name in "${MODULES[@]}"; do
  file=$(module_path "$name")
  [ -n "$file" ] || { say "module $name is not in $(basename "$deb")"; exit 1; }
  mkdir -p "$dir/modules/$(dirname "$file")"
  cp "$tree/$file" "$dir/modules/$file"
  line="$file:"
  for dep in $(closure "$name"); do line="$line $(module_path "$dep")"; done
  echo "$line" >>"$dir/modules/modules.dep"
done
bzimage=$(ls "$work"/root/boot/vmlinuz-* | head -n 1)
[ -f "$bzimage" ] || { say "no /boot/vmlinuz-* in $deb"; exit 1; }
cp "$bzimage" "$dir/bzImage"
config=$(ls "$work"/root/boot/config-* 2>/dev/null | head -n 1) || true
[ -n "$config" ] && cp "$config" "$dir/config"

# extract-vmlinux (scripts/extract-vmlinux of the kernel tree): find a compressor's magic in the
# bzImage, decompress from there, keep the first result that is an ELF file.
is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = "177ELF" ]; }
try_decompress() {
  local magic=$1 tool=$2
  local offsets
  offsets=$(LC_ALL=C grep -obUaP "$magic" "$bzimage" 2>/dev/null | cut -d: -f1) || true
  for offset in $offsets; do
    tail -c +"$((offset + 1))" "$bzimage" | $tool >"$work/vmlinux" 2>/dev/null || true
    if [ -s "$work/vmlinux" ] && is_elf "$work/vmlinux"; then
      return 0
    fi
  done
  return 1
}
if try_decompress '\xFD\x37\x7A\x58\x5A\x00' "xz -dc" ||
  try_decompress '\x28\xB5\x2F\xFD' "zstd -dc" ||
  try_decompress '\x1F\x8B\x08' "gzip -dc" ||
  try_decompress '\x5D\x00\x00\x00' "xz -dc --format=lzma" ||
  try_decompress '\x02\x21\x4C\x18' "lz4 -dc"; then
  mv "$work/vmlinux" "$vmlinux"
else
  say "no compressed ELF kernel found in $bzimage (is xz-utils / zstd / gzip installed?)"
  exit 1
fi
say "$vmlinux ($(du -h "$vmlinux" | cut -f1)) from $(basename "$deb")"
echo "$vmlinux"
