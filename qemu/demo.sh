#!/usr/bin/env bash
# The VM demo for a person (npm run vm): fetches the kernel when needed, builds an initramfs whose
# config is test/fixtures/vm/demo.yaml (six TangoTest servers over three levels, then a shell on the
# console), and boots it on this terminal.
#
#   qemu/demo.sh [--config FILE] [boot.sh options] [starter.key=value …]
#
# The other VM configs are in the image too (/etc/starter-init/vm/), e.g.
#   qemu/demo.sh starter.config=/etc/starter-init/vm/broken.yaml starter.onfailure=stay
# ctrl-a x quits qemu; `poweroff` (or `reboot`) at the VM's shell stops the servers in order first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
config="$top/test/fixtures/vm/demo.yaml"
if [ "${1:-}" = "--config" ]; then
  config=$2
  shift 2
fi
case "${1:-}" in -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac

kernel=$(bash "$here/kernel.sh")
initrd=$(bash "$here/initramfs.sh" --config "$config" --configs "$top/test/fixtures/vm" --out "$top/build/qemu/demo/initramfs.cpio")
[ -t 0 ] && echo "demo: booting; ctrl-a x quits qemu, 'poweroff' at the VM's shell powers it off" >&2
exec bash "$here/boot.sh" --kernel "$kernel" --initrd "$initrd" "$@"
