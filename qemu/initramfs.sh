#!/usr/bin/env bash
# Builds the VM's boot image from an assembled root (rootfs/assemble.sh): a small initramfs (an
# uncompressed newc cpio) with the init as /init and /sbin/init, and the rest of the root's /usr —
# the servers, their libraries, busybox — on a read-only erofs image, payload.erofs beside the cpio,
# that qemu/boot.sh attaches as a virtio disk and the init mounts on /usr in stage 1.
#
#   qemu/initramfs.sh [--out FILE] [--root DIR | --config FILE [--with PAYLOAD]… [--hostname NAME]]
#                     [--configs DIR] [--binary FILE] [--kernel FILE] [--no-disk] [--compress ALGO]
#                     [--load NAME]…
#
#   --out FILE      the cpio to write (default build/qemu/initramfs.cpio); the disk image is
#                   payload.erofs in the same directory
#   --root DIR      an already assembled root, copied as it is (it is not modified)
#   --config FILE   otherwise assemble a root around this config (/etc/starter-init/config.yaml)
#   --with PAYLOAD  payloads for rootfs/assemble.sh (default: busybox tango)
#   --configs DIR   also copy DIR/*.yaml and DIR/*.sh into /etc/starter-init/vm/ (pick a config at
#                   boot with the kernel word starter.config=/etc/starter-init/vm/NAME.yaml)
#   --binary FILE   the init (default build/qemu/starter-init: its startup snapshot made for qemu's
#                   CPU by `node native/sea.mjs --for-qemu`, done here when it is missing or older
#                   than dist/starter-init; a snapshot made for this machine's CPU would not load)
#   --kernel FILE   the vmlinux whose modules/ (qemu/kernel.sh) go into the initramfs (default: kernel.sh's)
#   --no-disk       everything in the cpio, no disk image (the layout before: ~120 MiB to unpack)
#   --compress ALGO erofs compression: none (default), lz4 or lz4hc. Under TCG reading the disk costs
#                   little (qemu does it, natively) and decompressing costs much (emulated):
#                   measured here, the first TangoTest were ready ≈ 0.3 s sooner from an
#                   uncompressed image (32 MiB) than from lz4hc (14 MiB)
#   --load NAME     a kernel module named in /etc/modules, loaded by the init in stage 1 (a hardware
#                   watchdog's driver: ib700wdt, i6300esb, softdog), from qemu/kernel.sh's modules/
#                   (or name them at boot with the kernel word starter.modules=a,b)
#
# Why the split: the kernel copies every byte of an initramfs into memory before the init runs (under
# TCG, seconds for 120 MiB), while a disk is read page by page as files are used. What the init needs
# before it has mounted the disk stays in the cpio: itself and its libraries, /etc, the kernel
# modules of the disk (virtio_mmio, virtio_blk, erofs: /etc/modules, init/pid1/kmod.ts) and /etc/fstab
# naming the disk. /bin is a link to usr/bin (busybox lives on the disk).
#
# VM additions, made on a staging copy: the /dev/console and /dev/null nodes (the kernel opens
# /dev/console for PID 1 before anything is mounted; without it the init starts with no stdio) —
# written as a second, hand-made newc archive appended to the first, so no root and no mknod are
# needed (the kernel unpacks concatenated archives); and, with busybox, `poweroff` / `reboot` /
# `halt` scripts that ask starter-init (busybox's applets would signal PID 1 the way busybox init
# expects: USR2 / TERM / USR1, which starter-init reads as "toggle debug" / "power off" / "status"),
# and an /etc/profile for the console shell that makes its `poweroff` those scripts (Debian's
# busybox shell prefers its applets to PATH). Scripts call /sbin/poweroff by its path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out="$top/build/qemu/initramfs.cpio"
root=""
config=""
configs=""
binary=""
kernel=""
disk=true
compress=none
hostname=""
payloads=()
loads=()

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --with) payloads+=("$2"); shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --no-disk) disk=false; shift ;;
    --compress) compress=$2; shift 2 ;;
    --hostname) hostname=$2; shift 2 ;;
    --load) loads+=("$2"); shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "initramfs: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v cpio >/dev/null || { echo "initramfs: cpio is missing (apt-get install cpio)" >&2; exit 1; }
if $disk; then
  command -v mkfs.erofs >/dev/null || { echo "initramfs: mkfs.erofs is missing (apt-get install erofs-utils)" >&2; exit 1; }
  case "$compress" in lz4 | lz4hc | none) ;; *) echo "initramfs: --compress lz4, lz4hc or none" >&2; exit 2 ;; esac
fi
[ ${#payloads[@]} -gt 0 ] || payloads=(busybox tango)

if [ -z "$binary" ]; then
  binary="$top/build/qemu/starter-init"
  dist="$top/dist/starter-init"
  [ -x "$dist" ] || { echo "initramfs: $dist is missing; run npm run build" >&2; exit 1; }
  if [ ! -x "$binary" ] || [ "$binary" -ot "$dist" ]; then
    echo "initramfs: making the init for qemu's CPU ($binary)" >&2
    node "$top/native/sea.mjs" --for-qemu "$binary" >&2
  fi
fi

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
image="$(dirname "$out")/payload.erofs"
stage="$out.root"
rm -rf "$stage"

if [ -n "$root" ]; then
  [ -x "$root/sbin/starter-init" ] || { echo "initramfs: $root/sbin/starter-init is missing: not an assembled root" >&2; exit 1; }
  cp -a "$root" "$stage"
else
  args=(--out "$stage" --binary "$binary")
  [ -n "$config" ] && args+=(--config "$config")
  [ -n "$hostname" ] && args+=(--hostname "$hostname")
  for payload in "${payloads[@]}"; do args+=(--with "$payload"); done
  bash "$top/rootfs/assemble.sh" "${args[@]}" >&2
fi

# /init and /sbin/init: the assembler makes them; make sure of it for a root assembled elsewhere.
[ -e "$stage/init" ] || ln -s sbin/starter-init "$stage/init"
[ -e "$stage/sbin/init" ] || ln -s starter-init "$stage/sbin/init"
mkdir -p "$stage/dev" "$stage/proc" "$stage/sys" "$stage/run" "$stage/tmp" "$stage/root"


if [ -n "$configs" ]; then
  mkdir -p "$stage/etc/starter-init/vm"
  for file in "$configs"/*.yaml "$configs"/*.sh; do
    [ -e "$file" ] || continue
    cp "$file" "$stage/etc/starter-init/vm/"
    case "$file" in *.sh) chmod 0755 "$stage/etc/starter-init/vm/$(basename "$file")" ;; esac
  done
fi

if [ -x "$stage/bin/busybox" ]; then
  # Power commands for a person at the console, as starter-init understands them (busybox's applets
  # would send busybox init's signals): power off and halt are the signals the init documents
  # (TERM = ordered shutdown then power off, QUIT = then halt), sent at once; a restart has no
  # signal of its own and goes through the control socket (`starter-init reboot`, a second Node
  # start: seconds under TCG), with INT (ctrl-alt-del: power off) only if that fails.
  for spec in poweroff:TERM:signal halt:QUIT:signal reboot:INT:client; do
    IFS=: read -r name signal how <<<"$spec"
    rm -f "$stage/bin/$name" "$stage/sbin/$name"
    if [ "$how" = signal ]; then ask="kill -$signal 1"; else ask="/sbin/starter-init $name 2>/dev/null || kill -$signal 1"; fi
    cat >"$stage/sbin/$name" <<EOF
#!/bin/sh
# starter-init's $name (the busybox applet would send busybox init's signal to PID 1).
case "\$1" in -f) exec /bin/busybox $name -f ;; esac
$ask
EOF
    chmod 0755 "$stage/sbin/$name"
  done
  cat >"$stage/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PS1='\h:\w\$ '
# Debian's busybox runs its own applets before searching PATH: functions win over both.
poweroff() { /sbin/poweroff "$@"; }
reboot() { /sbin/reboot "$@"; }
halt() { /sbin/halt "$@"; }
echo "starter-init VM: 'starter-init --help', 'poweroff', 'reboot'; ctrl-a x quits qemu"
EOF
fi

if $disk; then
  [ -n "$kernel" ] || kernel=$(bash "$here/kernel.sh")
  modules="$(dirname "$kernel")/modules"
  release=$(basename "$(dirname "$kernel")")
  [ -s "$modules/modules.dep" ] || { echo "initramfs: $modules/modules.dep is missing (qemu/kernel.sh puts the modules beside the vmlinux)" >&2; exit 1; }

  # Merged /usr, as Debian's: /bin (busybox) and /lib (the libraries ldd found there) go to usr/ on
  # the disk, and become links to it. A file already in usr/ stays (the same library by its other path).
  for dir in bin lib; do
    [ -d "$stage/$dir" ] && [ ! -L "$stage/$dir" ] || continue
    mkdir -p "$stage/usr/$dir"
    cp -an "$stage/$dir/." "$stage/usr/$dir/"
    rm -rf "${stage:?}/$dir"
    ln -s "usr/$dir" "$stage/$dir"
  done
  # The disk: all of /usr. The cpio keeps of /usr only the init's own libraries (ldd), which the
  # mount then hides (the disk holds the same files).
  rm -f "$image"
  erofs_args=(--all-root -T 0 --quiet)
  [ "$compress" = none ] || erofs_args+=("-z$compress")
  mkfs.erofs "${erofs_args[@]}" "$image" "$stage/usr" >&2
  keep="$out.usr"
  rm -rf "$keep"
  keep_file() { # a path of the root: copied (a link as a link, and what it points to)
    local file=${1#/}
    case "$file" in
      lib/*) file="usr/$file" ;;
      usr/*) ;;
      *) # stays in the cpio (the loader's link in lib64/): what it points to is kept
        [ -L "$stage/$file" ] && keep_file "$(readlink "$stage/$file")"
        return 0 ;;
    esac
    [ -e "$stage/$file" ] || [ -L "$stage/$file" ] || return 0
    mkdir -p "$keep/$(dirname "$file")"
    cp -a "$stage/$file" "$keep/$file"
    if [ -L "$stage/$file" ]; then
      local target
      target=$(readlink "$stage/$file")
      case "$target" in /*) keep_file "$target" ;; *) keep_file "/$(dirname "$file")/$target" ;; esac
    fi
  }
  for library in $(ldd "$stage/sbin/starter-init" | grep -oE '/[^ )]+'); do keep_file "$library"; done
  rm -rf "$stage/usr"
  mkdir -p "$stage/usr"
  cp -a "$keep/usr/." "$stage/usr/"
  rm -rf "$keep"

  # What stage 1 loads and mounts (init/pid1/kmod.ts, init/pid1/fstab.ts). /lib is usr/lib: the
  # modules are in the cpio's usr/, hidden once the disk is mounted (they are loaded by then).
  mkdir -p "$stage/usr/lib/modules/$release"
  cp -a "$modules/." "$stage/usr/lib/modules/$release/"
  cat >"$stage/etc/modules" <<'EOF'
# Loaded by starter-init in stage 1 (VM), with their dependencies (modules.dep): the payload disk's
# virtio-mmio transport and block driver, and its erofs filesystem.
virtio_mmio
virtio_blk
crc32c_generic
erofs
EOF
  cat >"$stage/etc/fstab" <<'EOF'
# Mounted by starter-init in stage 1 (VM): the payload disk qemu/boot.sh attaches.
/dev/vda /usr erofs ro 0 0
EOF
else
  rm -f "$image"
fi

# Modules asked for with --load: from the same modules/ beside the kernel (the disk's are there
# already), named in /etc/modules after the disk's.
if [ ${#loads[@]} -gt 0 ]; then
  if ! $disk; then
    [ -n "$kernel" ] || kernel=$(bash "$here/kernel.sh")
    modules="$(dirname "$kernel")/modules"
    release=$(basename "$(dirname "$kernel")")
    [ -s "$modules/modules.dep" ] || { echo "initramfs: $modules/modules.dep is missing (qemu/kernel.sh puts the modules beside the vmlinux)" >&2; exit 1; }
    mkdir -p "$stage/lib/modules/$release"
    cp -a "$modules/." "$stage/lib/modules/$release/"
  fi
  for name in "${loads[@]}"; do
    grep -qE "/(${name}|${name//_/-})\.ko:" "$modules/modules.dep" || { echo "initramfs: module $name is not among qemu/kernel.sh's modules" >&2; exit 1; }
  done
  mkdir -p "$stage/etc"
  printf '%s\n' "${loads[@]}" >>"$stage/etc/modules"
fi

# The main archive: everything owned by root, directories before what they hold.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"

# The appended archive: device nodes the kernel needs before /dev is mounted.
newc_entry() { # name mode(octal) rdevmajor rdevminor
  local name=$1 mode=$2 major=$3 minor=$4
  local namesize=$((${#name} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$((RANDOM + 900000))" "$((8#$mode))" 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  # header (110) + name padded to a multiple of 4
  local pad=$(((4 - (110 + namesize) % 4) % 4))
  head -c "$pad" /dev/zero
}
{
  newc_entry dev 040755 0 0
  newc_entry dev/console 020600 5 1
  newc_entry dev/null 020666 1 3
  newc_entry dev/ttyS0 020660 4 64
  newc_entry TRAILER!!! 0 0 0
} >>"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$stage"
if [ -e "$image" ]; then
  echo "initramfs: $out ($(du -m "$out" | cut -f1) MiB), disk $image ($(du -m "$image" | cut -f1) MiB, erofs $compress)" >&2
else
  echo "initramfs: $out ($(du -m "$out" | cut -f1) MiB)" >&2
fi
echo "$out"
