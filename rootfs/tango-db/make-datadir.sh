#!/usr/bin/env bash
# Creates a MariaDB data directory holding an empty Tango database, with the schema Debian's tango-db
# package installs (its dbconfig-common install script: tables, stored procedures, the default
# entries), and a user for DataBaseds and the init's `tango` source.
#
#   rootfs/tango-db/make-datadir.sh DIR [--user tango] [--password tango] [--database tango]
#
# Needs mariadb-server and tango-db installed (the schema files come from tango-db). A temporary
# mariadbd runs on a socket inside DIR with networking off, and is shut down at the end: nothing on
# this machine is touched. The files belong to the calling user (mariadbd later runs as that user,
# e.g. root with --user=root). ~5 s.
set -euo pipefail

dir=""
user=tango
password=tango
database=tango
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift 2 ;;
    --password) password=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    -*) echo "make-datadir: unknown option $1" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || { echo "usage: make-datadir.sh DIR [--user U] [--password P] [--database D]" >&2; exit 2; }

schema=/usr/share/dbconfig-common/data/tango-db/install/mysql
for needed in /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/bin/mariadb "$schema"; do
  [ -e "$needed" ] || { echo "make-datadir: $needed missing (apt-get install mariadb-server, then tango-db)" >&2; exit 1; }
done

rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
run_as=$(id -un)
# A small redo log (the default is 96 MiB): the image stays small. mariadbd must then be started
# with the same --innodb-log-file-size (8M), or it resizes the log at its first start.
mariadb-install-db --no-defaults --datadir="$dir" --user="$run_as" --auth-root-authentication-method=socket \
  --skip-test-db --innodb-log-file-size=8M >"$dir/.install.log" 2>&1 || { cat "$dir/.install.log" >&2; exit 1; }

socket="$dir/.bootstrap.sock"
/usr/sbin/mariadbd --no-defaults --datadir="$dir" --user="$run_as" --socket="$socket" --skip-networking --innodb-log-file-size=8M \
  --pid-file="$dir/.bootstrap.pid" --log-error="$dir/.bootstrap.err" 2>>"$dir/.bootstrap.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  mariadb --no-defaults -S "$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$dir/.bootstrap.err" >&2; exit 1; }
  sleep 0.1
done

# The dbconfig-common script (as tango-db's postinst runs it) into the database, then the user
# DataBaseds connects as (MYSQL_USER / MYSQL_PASSWORD), from anywhere: in a container the init and
# DataBaseds connect over TCP on 127.0.0.1.
mariadb --no-defaults -S "$socket" -uroot <<EOF
CREATE DATABASE \`$database\`;
USE \`$database\`;
SOURCE $schema;
CREATE USER '$user'@'localhost' IDENTIFIED BY '$password';
CREATE USER '$user'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$database\`.* TO '$user'@'localhost';
GRANT ALL PRIVILEGES ON \`$database\`.* TO '$user'@'%';
FLUSH PRIVILEGES;
EOF

mariadb-admin --no-defaults -S "$socket" -uroot shutdown
wait $server || true
trap - EXIT
rm -f "$dir"/.bootstrap.* "$dir/.install.log"
echo "make-datadir: $dir (database $database, user $user)"
