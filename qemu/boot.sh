#!/usr/bin/env bash
# Boots an initramfs with the init as PID 1 in a qemu microVM (TCG: no KVM needed), serial console on
# this terminal.
#
#   qemu/boot.sh [--kernel FILE] [--initrd FILE] [--disk FILE | --no-disk] [--memory MIB] [--smp N]
#                [--timeout SECONDS] [--verbose] [--hardened] [--dry-run] [--] [starter.key=value | other kernel words]…
#
#   --kernel FILE      uncompressed vmlinux (default: qemu/kernel.sh's, fetched on first use)
#   --initrd FILE      newc cpio (default build/qemu/initramfs.cpio, from qemu/initramfs.sh)
#   --disk FILE        read-only disk image attached as a virtio block device, /dev/vda in the VM
#                      (default: payload.erofs beside the initrd, when there is one)
#   --memory MIB       RAM (default 1024: an initramfs of S MiB needs more than 2·S MiB, and the
#                      Tango servers need room)
#   --smp N            virtual CPUs (default 2)
#   --timeout SECONDS  kill qemu after this long and exit 124 (headless tests); default none
#   --tsc-khz KHZ      the TSC rate given to the kernel (tsc_early_khz=); default: the host's, from
#                      dmesg or /proc/cpuinfo; 0 leaves the kernel to calibrate (see below)
#   --verbose          keep the kernel's boot messages (default: `quiet`)
#   --hardened         keep the kernel's hardening defaults (init_on_alloc, rodata) at the cost of
#                      about half a second of boot under TCG
#   --watchdog MODEL   a hardware watchdog: ib700 (ISA, on the microvm) or i6300esb (PCI: the machine
#                      becomes -M pc); its expiry resets the VM (load its module: starter.modules=)
#   --reboot           a reset or reboot boots again instead of ending qemu (default: -no-reboot)
#   --dry-run          print the qemu command line and exit
#
# Words after the options go on the kernel command line, e.g. starter.loglevel=debug
# starter.config=/etc/starter-init/vm/demo.yaml starter.maxlevel=2 starter.onfailure=poweroff
# starter.hostname=vm1 (simple key=value words only: the kernel strips quotes).
#
# Interactive on a terminal: ctrl-a x quits qemu, ctrl-a c the qemu monitor; `poweroff` inside powers
# the VM off and qemu exits. Headless (stdin not a terminal): console on stdout, the exit code is
# qemu's (0 after a power-off from inside; the kernel's reboot also ends qemu: -no-reboot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kernel=""
initrd="$top/build/qemu/initramfs.cpio"
disk=""
no_disk=false
memory=1024
smp=2
timeout=""
tsc_khz=""
quiet=quiet
hardened=false
dry_run=false
watchdog=""
reboot=false
words=()

while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --no-disk) no_disk=true; shift ;;
    --memory) memory=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --tsc-khz) tsc_khz=$2; shift 2 ;;
    --verbose) quiet=""; shift ;;
    --hardened) hardened=true; shift ;;
    --watchdog) watchdog=$2; shift 2 ;;
    --reboot) reboot=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --) shift; words+=("$@"); break ;;
    -*) echo "boot: unknown option $1" >&2; exit 2 ;;
    *) words+=("$1"); shift ;;
  esac
done

for word in "${words[@]}"; do
  case "$word" in
    *[\'\"\ ]*) echo "boot: kernel word \"$word\" has quotes or spaces; the kernel would mangle it" >&2; exit 2 ;;
  esac
done

[ -n "$kernel" ] || kernel=$(bash "$here/kernel.sh")
[ -f "$kernel" ] || { echo "boot: kernel $kernel not found (qemu/kernel.sh fetches one)" >&2; exit 1; }
[ -f "$initrd" ] || { echo "boot: initramfs $initrd not found (qemu/initramfs.sh builds one)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }
if ! $no_disk && [ -z "$disk" ] && [ -f "$(dirname "$initrd")/payload.erofs" ]; then disk="$(dirname "$initrd")/payload.erofs"; fi
[ -z "$disk" ] || [ -f "$disk" ] || { echo "boot: disk image $disk not found" >&2; exit 1; }

# Under TCG the guest's TSC is the host's (qemu's rdtsc reads the host counter), but the microvm has
# no HPET or ACPI PM timer, so the kernel can calibrate the TSC only against the PIT, and on a busy
# host that fails ("tsc: Unable to calibrate against PIT", "Marking TSC unstable") and the boot
# hangs for good (measured: 4 of 4 boots with 4 VMs at once on 2 cores). Telling the kernel the rate
# (tsc_early_khz=) skips the calibration.
host_tsc_khz() {
  local mhz
  mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n 1) || true
  [ -n "$mhz" ] || mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n 1) || true
  # In a VM (or when the CPU reports it) "cpu MHz" is the TSC rate; on bare metal it may be the
  # current clock, so it is trusted only there.
  if [ -z "$mhz" ] && grep -qwE 'tsc_known_freq|hypervisor' /proc/cpuinfo 2>/dev/null; then
    mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
  fi
  [ -n "$mhz" ] && awk -v mhz="$mhz" 'BEGIN { printf "%d", mhz * 1000 }'
}
[ -n "$tsc_khz" ] || tsc_khz=$(host_tsc_khz) || true
tsc_word=""
if [ -n "$tsc_khz" ] && [ "$tsc_khz" != 0 ]; then
  tsc_word="tsc_early_khz=$tsc_khz"
elif [ -z "$tsc_khz" ]; then
  echo "boot: the host's TSC rate is unknown; the kernel calibrates it, which can hang on a busy host (--tsc-khz KHZ)" >&2
fi

# console=ttyS0: everything on the serial line; rdinit=/init: the init is PID 1 of the initramfs;
# panic=-1: a panic reboots at once, and -no-reboot turns that into qemu's exit (tests look for
# "Kernel panic" in the output); no_timer_check and tsc=reliable spare TCG's slow calibrations.
# Boot time under TCG, where every instruction of the kernel is emulated: cryptomgr.notests skips
# the self-tests of the crypto algorithms (about half a second); unless --hardened, init_on_alloc=0
# (Debian zeroes every page it hands out) and rodata=off (no remapping of the kernel read-only, no
# W+X scan of its page tables) give up two hardening defaults of a general-purpose kernel that cost
# another half second: this VM runs one init and its servers, no other user.
fast="cryptomgr.notests"
$hardened || fast="$fast init_on_alloc=0 rodata=off"
append="console=ttyS0 rdinit=/init panic=-1 $tsc_word tsc=reliable no_timer_check 8250.nr_uarts=1 $fast $quiet ${words[*]}"
machine=(-M microvm,pit=on)
extra=()
case "$watchdog" in
  "") ;;
  ib700) extra+=(-device ib700 -action watchdog=reset) ;;
  # The microvm has no PCI bus: the PC machine has (and boots slower).
  i6300esb)
    [ -z "$disk" ] || { echo "boot: --watchdog i6300esb needs --no-disk (the PC machine has no virtio-mmio for the payload disk)" >&2; exit 2; }
    machine=(-M pc); extra+=(-device i6300esb -action watchdog=reset) ;;
  *) echo "boot: unknown watchdog $watchdog (ib700, i6300esb)" >&2; exit 2 ;;
esac
$reboot || extra+=(-no-reboot)
command=(
  qemu-system-x86_64
  "${machine[@]}" -cpu max -smp "$smp" -m "$memory"
  -nographic "${extra[@]}"
  -kernel "$kernel" -initrd "$initrd"
  -append "$append"
)
# The payload disk, read-only: several VMs may boot the same image at once.
[ -z "$disk" ] || command+=(-drive "if=none,id=payload,file=$disk,format=raw,readonly=on" -device virtio-blk-device,drive=payload)
if $dry_run; then
  printf '%q ' "${command[@]}"
  echo
  exit 0
fi
if [ -n "$timeout" ]; then
  # -k: a qemu that ignores SIGTERM is killed 5 s later. --foreground keeps the terminal usable.
  exec timeout --foreground -k 5 "$timeout" "${command[@]}"
fi
exec "${command[@]}"
