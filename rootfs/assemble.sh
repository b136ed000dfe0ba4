#!/usr/bin/env bash
# Assembles a minimal root filesystem directory around the init: the one feed of the Docker image
# and of the VM initramfs.
#
#   rootfs/assemble.sh --out DIR [--binary dist/starter-init] [--config FILE] [--with busybox] [--with tango] [--with tango-db]
#                      [--with starter-device] [--with rsync] [--servers FILE] [--hostname NAME]
#
# What goes in: the binary as /sbin/starter-init (and /init for an initramfs), exactly the shared
# libraries `ldd` lists for it and for every payload binary, the dynamic loader, /etc basics
# (passwd, group, nsswitch.conf, hosts naming the host — a Tango server hangs at start when its
# host name does not resolve), the empty mount points stage 1 fills, and optional payloads:
#   busybox  a static shell and tools (/bin/sh, cat, ps, kill, …)
#   tango    TangoTest from Debian's tango-test with its libraries
#   tango-db a Tango database: MariaDB's server and client, DataBaseds (Debian's tango-db), an empty
#            Tango database in /var/lib/mysql (rootfs/tango-db/make-datadir.sh), and the registration
#            step /usr/lib/tango-db/register.sh with /etc/tango-db/servers.conf (the demo's, or the
#            file given with --servers), the shutdown guard /usr/lib/tango-db/drain.sh; brings busybox
#   starter-device  the Tango Starter device of sources.tango.device: Debian's python3 with PyTango
#            (python3-tango, numpy) and the libraries they load, and the device's script as
#            /usr/lib/starter-init/starter-device.py (where the init looks first)
#   rsync    a real daemon for `type: forking`: Debian's rsync (`rsync --daemon` forks and exits) with
#            /etc/rsyncd.conf serving /srv on 127.0.0.1:873
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=""
binary="$top/dist/starter-init"
config=""
hostname="starter"
servers="$here/tango-db/servers.conf"
payloads=()

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --with) payloads+=("$2"); shift 2 ;;
    --hostname) hostname=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    *) echo "assemble: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "assemble: --out DIR is required" >&2; exit 2; }
[ -x "$binary" ] || { echo "assemble: $binary is missing; run npm run build" >&2; exit 1; }
binary=$(readlink -f "$binary")
[ -z "$config" ] || [ -f "$config" ] || { echo "assemble: config $config not found" >&2; exit 1; }
[ -f "$servers" ] || { echo "assemble: servers file $servers not found" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"/{sbin,bin,etc,proc,sys,dev,run,tmp,var/tmp,var/log,root,usr/lib}
# /run is sticky and world-writable like /tmp: an init started as any non-root user (docker run
# --user, OpenShift's random uid) can create its control socket there, and Docker gives a --tmpfs
# mounted on it the same mode. A VM's init mounts a tmpfs over the empty /run anyway.
chmod 1777 "$out/tmp" "$out/var/tmp" "$out/run"

# Copies a file to the same path under the root, following symlinks but keeping the link name too.
copy_path() {
  local source=$1
  local target="$out$source"
  [ -e "$target" ] && return 0
  mkdir -p "$(dirname "$target")"
  if [ -L "$source" ]; then
    local resolved
    resolved=$(readlink -f "$source")
    copy_path "$resolved"
    ln -sf "$resolved" "$target"
  else
    cp -a "$source" "$target"
  fi
}

# Copies every library ldd lists for a binary (the loader included), not the binary itself.
copy_libraries() {
  local file=$1 listing
  listing=$(ldd "$file" 2>&1) || { echo "assemble: ldd $file failed: $listing" >&2; exit 1; }
  # A statically linked module lists no library (grep then finds nothing, which is no error).
  { grep -oE '/[^ )]+' || true; } <<<"$listing" | while read -r library; do
    copy_path "$library"
  done
}

# Copies a binary to the same path under the root, and its libraries.
copy_with_libraries() {
  copy_path "$1"
  copy_libraries "$1"
}

install -m 0755 "$binary" "$out/sbin/starter-init"
copy_libraries "$binary"
# A packager may ship the addon as a file beside the binary; the init loads it from there first.
addon="$(dirname "$binary")/starter_native.node"
[ -f "$addon" ] && install -m 0644 "$addon" "$out/sbin/starter_native.node"
ln -sf sbin/starter-init "$out/init"
ln -sf starter-init "$out/sbin/init"

cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tango:x:1000:1000:tango:/var/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
tty:x:5:
tango:x:1000:
nogroup:x:65534:
EOF
cat >"$out/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
echo "$hostname" >"$out/etc/hostname"
cat >"$out/etc/hosts" <<EOF
127.0.0.1 localhost
127.0.1.1 $hostname
::1 localhost ip6-localhost ip6-loopback
EOF

install_busybox() {
  [ -x /bin/busybox ] || { echo "assemble: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }
  cp /bin/busybox "$out/bin/busybox"
  for tool in $("$out/bin/busybox" --list); do
    [ -e "$out/bin/$tool" ] || ln -s busybox "$out/bin/$tool"
  done
}

# Debian's python3 with PyTango: the interpreter, the standard library without what a device server
# never loads (tests, Tk, IDLE, the static library, …), PyTango and numpy, and every library their
# extension modules need.
install_pytango() {
  /usr/bin/python3 -c 'import tango' 2>/dev/null || { echo "assemble: /usr/bin/python3 cannot import tango (apt-get install python3-tango)" >&2; exit 1; }
  local python version stdlib packages
  python=$(readlink -f /usr/bin/python3)
  version=$(basename "$python")
  stdlib=/usr/lib/$version
  packages=/usr/lib/python3/dist-packages
  copy_with_libraries "$python"
  ln -sf "$version" "$out/usr/bin/python3"
  mkdir -p "$out$stdlib" "$out$packages"
  tar -C "$stdlib" -cf - --exclude='./config-*' --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
    --exclude=./ensurepip --exclude=./lib2to3 --exclude=./pydoc_data --exclude=./venv --exclude=./dist-packages --exclude=./site-packages . |
    tar -C "$out$stdlib" -xf -
  cp -a "$packages/tango" "$packages/numpy" "$out$packages/"
  # six: PyTango 9.3 still imports it.
  for module in PyTango.py six.py; do
    if [ -e "$packages/$module" ]; then cp -a "$packages/$module" "$out$packages/"; fi
  done
  find "$out$stdlib/lib-dynload" "$out$packages" -name '*.so' | while read -r module; do
    copy_libraries "$module"
  done
  mkdir -p "$out/etc/omniORB"
  [ -e "$out/etc/omniORB.cfg" ] || : >"$out/etc/omniORB.cfg"
}

for payload in "${payloads[@]}"; do
  case "$payload" in
    busybox)
      install_busybox
      ;;
    tango)
      [ -x /usr/lib/tango/TangoTest ] || { echo "assemble: /usr/lib/tango/TangoTest missing (apt-get install tango-test)" >&2; exit 1; }
      copy_with_libraries /usr/lib/tango/TangoTest
      # omniORB reads its config if present; an empty one keeps it from complaining.
      mkdir -p "$out/etc/omniORB" && : >"$out/etc/omniORB.cfg"
      ;;
    tango-db)
      for needed in /usr/sbin/mariadbd /usr/bin/mariadb /usr/lib/tango/DataBaseds; do
        [ -x "$needed" ] || { echo "assemble: $needed missing (apt-get install mariadb-server, then tango-db)" >&2; exit 1; }
      done
      copy_with_libraries /usr/sbin/mariadbd
      copy_with_libraries /usr/bin/mariadb
      copy_with_libraries /usr/lib/tango/DataBaseds
      # mariadbd's error messages and character sets (its --lc-messages-dir and --character-sets-dir).
      mkdir -p "$out/usr/share/mysql"
      cp -a /usr/share/mysql/english /usr/share/mysql/charsets "$out/usr/share/mysql/"
      mkdir -p "$out/etc/omniORB" && : >"$out/etc/omniORB.cfg"
      bash "$here/tango-db/make-datadir.sh" "$out/var/lib/mysql" >/dev/null
      install -D -m 0755 "$here/tango-db/register.sh" "$out/usr/lib/tango-db/register.sh"
      install -D -m 0755 "$here/tango-db/drain.sh" "$out/usr/lib/tango-db/drain.sh"
      install -D -m 0644 "$servers" "$out/etc/tango-db/servers.conf"
      [ -x "$out/bin/busybox" ] || install_busybox
      ;;
    rsync)
      [ -x /usr/bin/rsync ] || { echo "assemble: /usr/bin/rsync missing (apt-get install rsync)" >&2; exit 1; }
      copy_with_libraries /usr/bin/rsync
      mkdir -p "$out/srv"
      cat >"$out/etc/rsyncd.conf" <<'EOF'
# starter-init's rsync payload: a daemon on 127.0.0.1:873 serving /srv, for type: forking.
address = 127.0.0.1
port = 873
use chroot = no
log file = /var/log/rsyncd.log
[srv]
path = /srv
EOF
      ;;
    starter-device)
      install_pytango
      install -D -m 0644 "$top/init/starter-device/starter_device.py" "$out/usr/lib/starter-init/starter-device.py"
      ;;
    *) echo "assemble: unknown payload $payload" >&2; exit 2 ;;
  esac
done

if [ -n "$config" ]; then
  mkdir -p "$out/etc/starter-init"
  cp "$config" "$out/etc/starter-init/config.yaml"
fi
echo "assemble: $out ($(du -sh "$out" | cut -f1))"
