#!/usr/bin/env bash
# Builds the two images of the Tango fleet on Docker Swarm (fleet.yaml), FROM scratch, from roots
# assembled on this machine by rootfs/assemble.sh (nothing is pulled from a registry):
#
#   the database  MariaDB, DataBaseds, an empty Tango database, the registration step; busybox
#   a host        TangoTest and its libraries (a site adds its own device servers' binaries)
#
# Each image holds its init config (tango-db.yaml, tango-host.yaml) so it runs alone too; the stack
# mounts the same files as Swarm configs over them.
#
#   rootfs/swarm/build.sh [--binary dist/starter-init] [--db-image starter-init/tango-db] [--host-image starter-init/tango-host]
#
# Needs dist/starter-init (npm run build), docker, and the Debian packages of the payloads
# (busybox-static, tango-test, mariadb-server then tango-db). On a swarm of several nodes, push the
# images to a registry the nodes can reach and give their names in TANGO_DB_IMAGE and TANGO_HOST_IMAGE.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
binary="$top/dist/starter-init"
db_image=starter-init/tango-db
host_image=starter-init/tango-host
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --db-image) db_image=$2; shift 2 ;;
    --host-image) host_image=$2; shift 2 ;;
    *) echo "build: unknown argument $1" >&2; exit 2 ;;
  esac
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$top/Dockerfile" "$context/Dockerfile"

# build IMAGE ASSEMBLE-ARGS…: the root in $context/root, then the top-level Dockerfile over it.
build() {
  local image=$1
  shift
  rm -rf "$context/root"
  bash "$top/rootfs/assemble.sh" --out "$context/root" --binary "$binary" "$@"
  docker build --quiet --build-arg ROOTFS=root -t "$image" "$context" >/dev/null
  echo "build: $image"
}

build "$db_image" --with busybox --with tango-db --servers "$here/fleet.conf" --config "$here/tango-db.yaml" --hostname tango-db
build "$host_image" --with tango --config "$here/tango-host.yaml" --hostname tango-host
