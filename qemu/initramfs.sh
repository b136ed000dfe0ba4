#!/usr/bin/env bash
# Builds the VM's initramfs: an uncompressed newc cpio of an assembled root (rootfs/assemble.sh) with
# the init as /init and /sbin/init, plus what only a VM's root needs.
#
#   qemu/initramfs.sh [--out FILE] [--root DIR | --config FILE [--with PAYLOAD]… [--hostname NAME]]
#                     [--configs DIR] [--binary FILE] [--modules DIR [--load NAME]…]
#
#   --out FILE      the cpio to write (default build/qemu/initramfs.cpio)
#   --root DIR      an already assembled root, copied as it is (it is not modified)
#   --config FILE   otherwise assemble a root around this config (/etc/starter-init/config.yaml)
#   --with PAYLOAD  payloads for rootfs/assemble.sh (default: busybox tango)
#   --configs DIR   also copy DIR/*.yaml and DIR/*.sh into /etc/starter-init/vm/ (pick a config at
#                   boot with the kernel word starter.config=/etc/starter-init/vm/NAME.yaml)
#   --binary FILE   the init (default dist/starter-init)
#   --modules DIR   a tree laid over the root (qemu/kernel.sh's modules/: lib/modules/<version>/…), for
#                   kernel modules the init loads in stage 1
#   --load NAME     a module named in /etc/modules, loaded at boot (or name them with the kernel word
#                   starter.modules=a,b)
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
binary="$top/dist/starter-init"
hostname=""
payloads=()
modules=""
loads=()

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --with) payloads+=("$2"); shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --hostname) hostname=$2; shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --load) loads+=("$2"); shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "initramfs: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v cpio >/dev/null || { echo "initramfs: cpio is missing (apt-get install cpio)" >&2; exit 1; }
[ ${#payloads[@]} -gt 0 ] || payloads=(busybox tango)

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
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

if [ -n "$modules" ]; then
  [ -d "$modules" ] || { echo "initramfs: modules tree $modules not found (qemu/kernel.sh makes one)" >&2; exit 1; }
  cp -a "$modules"/. "$stage"/
fi
if [ ${#loads[@]} -gt 0 ]; then
  mkdir -p "$stage/etc"
  printf '%s\n' "${loads[@]}" >>"$stage/etc/modules"
fi

if [ -n "$configs" ]; then
  mkdir -p "$stage/etc/starter-init/vm"
  for file in "$configs"/*.yaml "$configs"/*.sh; do
    [ -e "$file" ] || continue
    cp "$file" "$stage/etc/starter-init/vm/"
    case "$file" in *.sh) chmod 0755 "$stage/etc/starter-init/vm/$(basename "$file")" ;; esac
  done
fi

if [ -x "$stage/bin/busybox" ]; then
  # Power commands for a person at the console: through the init's control socket when the CLI has
  # the command, else the signal the init documents (TERM/PWR = power off, INT = reboot, QUIT = halt).
  for spec in poweroff:TERM reboot:INT halt:QUIT; do
    name=${spec%%:*} signal=${spec#*:}
    rm -f "$stage/bin/$name" "$stage/sbin/$name"
    cat >"$stage/sbin/$name" <<EOF
#!/bin/sh
# starter-init's $name (the busybox applet would send busybox init's signal to PID 1).
case "\$1" in -f) exec /bin/busybox $name -f ;; esac
/sbin/starter-init $name 2>/dev/null || kill -$signal 1
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
echo "initramfs: $out ($(du -m "$out" | cut -f1) MiB)" >&2
echo "$out"
