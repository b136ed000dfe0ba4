#!/usr/bin/env bash
# Installs what the demo or the tests need on a fresh Debian 12 machine, when it is missing, and
# starts a Docker engine for the tests. Usage: test/prereqs.sh demo|vm|soak|test|bench   (as root or with sudo)
set -euo pipefail
profile=${1:-test}

# util-linux: unshare; busybox-static: a shell and tools for minimal roots; tango-test and
# python3-tango: real Tango servers and a real client; file: checks on the built binary.
packages=(util-linux procps file busybox-static tango-test python3-tango cpio)
case "$profile" in
  # soak: the chaos soak needs unshare, a shell and python3 (an sd_notify server), all in the base list.
  demo | soak) ;;
  # qemu-system-x86 and xz-utils (to unpack Debian's kernel package): the microVM demo; qemu-user
  # (the VM's init gets its startup snapshot made under qemu's emulated CPU) and erofs-utils (the
  # VM's payload disk).
  vm) packages+=(qemu-system-x86 xz-utils qemu-user erofs-utils) ;;
  # docker.io: a real engine for the container tests; qemu-system-x86: the microVM tests;
  # tini and dumb-init: the peers compared in tests and benchmarks; prometheus: scrapes the HTTP
  # listener in the tests (which run their own; its service is kept stopped below); tango-starter:
  # Debian's Tango Starter, the reference the Starter device is compared with (test and bench);
  # gunicorn and dbus-daemon (with dbus-send, in dbus-bin): real programs that take their sockets
  # from the init (socket activation, test and bench); rsync: a real daemon (rsync --daemon forks and
  # exits) for type: forking, on the host and in the VM.
  test | bench) packages+=(docker.io qemu-system-x86 xz-utils qemu-user erofs-utils tini dumb-init curl iproute2 prometheus tango-starter gunicorn dbus-daemon dbus-bin rsync) ;;
  *) echo "prereqs: unknown profile $profile (demo, vm, soak, test, bench)" >&2; exit 2 ;;
esac

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "prereqs ($profile): installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists are read again only when they are too old to install from (.ci/run has just
  # updated them on a fresh machine).
  if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Debian's prometheus starts a service listening on :9090 when installed under systemd: the tests start
# their own, with their own config, storage and port; a host-wide one would only be in the way.
if [[ " ${missing[*]:-} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  "${sudo_cmd[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# A real Tango database for the Tango-DB tests and the Starter benchmark: Debian's tango-db creates
# the schema through dbconfig-common, which needs a running MariaDB while it is installed. The tests
# then run a private MariaDB and DataBaseds of their own from these binaries and schema files.
if { [ "$profile" = test ] || [ "$profile" = bench ]; } && ! dpkg-query -W -f='${Status}' tango-db 2>/dev/null | grep -q "install ok installed"; then
  echo "prereqs ($profile): installing mariadb-server and tango-db (with its schema)"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends mariadb-server dbconfig-mysql >/dev/null
  "${sudo_cmd[@]}" service mariadb start >/dev/null 2>&1 || "${sudo_cmd[@]}" /etc/init.d/mariadb start >/dev/null
  "${sudo_cmd[@]}" debconf-set-selections <<'SEED'
tango-db tango-db/dbconfig-install boolean true
tango-db tango-db/database-type select mysql
tango-db tango-db/mysql/method select Unix socket
tango-db tango-db/mysql/admin-user string root
tango-db tango-db/mysql/admin-pass password
tango-db tango-db/mysql/app-pass password tango
tango-db tango-db/app-password-confirm password tango
tango-db tango-db/db/app-user string tango@localhost
tango-db tango-db/db/dbname string tango
SEED
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends tango-db >/dev/null
fi

# A Docker engine: start dockerd when none answers (never a second one: it would delete the first
# one's bridge).
if [ "$profile" = test ] || [ "$profile" = bench ]; then
  ping_docker() { curl -sf --unix-socket /var/run/docker.sock http://docker/_ping >/dev/null 2>&1; }
  if ! ping_docker; then
    echo "prereqs: starting dockerd"
    "${sudo_cmd[@]}" setsid nohup dockerd >/tmp/starter-init-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 100); do ping_docker && break; sleep 0.2; done
    ping_docker || { echo "prereqs: dockerd did not come up; see /tmp/starter-init-dockerd.log" >&2; exit 1; }
  fi
fi
