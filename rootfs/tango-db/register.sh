#!/bin/sh
# Registers device servers in the Tango database for this host (or for the hosts named), once: the
# setup step of a Tango system image (run by starter-init as the preStart of DataBaseds, when MariaDB
# is ready).
#
#   register.sh SERVERS_FILE [HOST...]
#
# Without HOST, for this machine's short host name. With HOSTs (a fleet's database registering the
# servers of every host of the fleet), the file is read once per host, with every `{host}` in it
# replaced by that host's name: `TangoTest/{host}-1 ... fleet/{host}/1` gives each host servers and
# devices of its own (names are unique in a Tango database).
#
# SERVERS_FILE, one entry per line (# starts a comment):
#   SERVER/INSTANCE  CLASS  LEVEL  MODE  DEVICE[,DEVICE…]     a device server and its devices
#   property NAME VALUE[,VALUE…]                             a property of tango/admin/<host> (the Starter's)
#   free-property OBJECT NAME VALUE[,VALUE…]                 a free property (Jive's "Property" tree)
#
# It writes what Jive (DbAddServer), the server's first run on this host (DbExportDevice: the host of
# its admin device) and Astor (DbPutServerInfo: controlled = MODE 1, startup LEVEL) leave in the
# database, straight in SQL: DataBaseds is not running yet. Idempotent: an entry already there (a
# server, a device, its server info, a property) is left as it is, so a restart changes nothing and
# what Astor changed later stays. Connects with the MYSQL_* variables DataBaseds uses.
set -eu

file=${1:?usage: register.sh SERVERS_FILE [HOST...]}
shift
[ -r "$file" ] || { echo "register: cannot read $file" >&2; exit 2; }
if [ $# -eq 0 ]; then
  host=$(hostname)
  set -- "${host%%.*}"
fi
case "${MYSQL_HOST:-localhost}" in
  *:*) db_host=${MYSQL_HOST%:*}; db_port=${MYSQL_HOST##*:} ;;
  *) db_host=${MYSQL_HOST:-localhost}; db_port=3306 ;;
esac
db=${MYSQL_DATABASE:-tango}

# Every value goes between single quotes: refuse the characters that could end them.
check() {
  case "$1" in
    *"'"* | *"\\"* | *'"'*) echo "register: refusing a value with quotes or backslashes: $1" >&2; exit 2 ;;
  esac
}

sql=""
add() { sql="$sql$1
"; }

device_row() { # NAME SERVER CLASS HOST
  check "$1"
  domain=${1%%/*}
  rest=${1#*/}
  family=${rest%%/*}
  member=${rest#*/}
  add "INSERT INTO device (name, domain, family, member, exported, ior, host, server, pid, class, version)
  SELECT '$1', '$domain', '$family', '$member', 0, 'nada', '$4', '$2', 0, '$3', 'nada' FROM DUAL
  WHERE NOT EXISTS (SELECT 1 FROM device WHERE name = '$1');"
}

# A property with its values (one row each, `count` from 1), unless the property is there already.
#   property_rows TABLE KEY-COLUMN KEY NAME VALUES EXTRA-COLUMNS EXTRA-VALUES
property_rows() {
  check "$3"
  check "$4"
  check "$5"
  rows=""
  index=1
  old_ifs=$IFS
  IFS=,
  for value in $5; do
    rows="$rows${rows:+ UNION ALL }SELECT $index AS c, '$value' AS v"
    index=$((index + 1))
  done
  IFS=$old_ifs
  add "INSERT INTO $1 ($2, name, count, value, updated, accessed$6)
  SELECT '$3', '$4', c, v, NOW(), NOW()$7 FROM ($rows) AS vals
  WHERE NOT EXISTS (SELECT 1 FROM $1 WHERE $2 = '$3' AND name = '$4');"
}

count=0
for host in "$@"; do
  check "$host"
  case "$host" in "" | */* | *" "* | *{* | *}*) echo "register: not a host name: '$host'" >&2; exit 2 ;; esac
  # The file with this host's name for {host}, read from a here-document: a pipe into the loop
  # would run it in a subshell, and what it adds would be lost.
  entries=$(sed "s/{host}/$host/g" "$file")
  while read -r first class level mode devices rest; do
    case "$first" in '' | '#'*) continue ;; esac
    if [ "$first" = property ]; then
      property_rows property_device device "tango/admin/$host" "$class" "$level" ", domain, family, member" ", 'tango', 'admin', '$host'"
      continue
    fi
    if [ "$first" = free-property ]; then
      property_rows property object "$class" "$level" "$mode" "" ""
      continue
    fi
    for word in "$first" "$class" "$level" "$mode" "$devices"; do check "$word"; done
    case "$level$mode" in *[!0-9]*) echo "register: $first: LEVEL and MODE are numbers" >&2; exit 2 ;; esac
    [ -n "$devices" ] || { echo "register: $first: no device" >&2; exit 2; }
    server_name=${first%%/*}
    instance=${first#*/}
    old_ifs=$IFS
    IFS=,
    for device in $devices; do device_row "$device" "$first" "$class" "$host"; done
    IFS=$old_ifs
    # The admin device, with the host a first run would have exported it from.
    device_row "dserver/$server_name/$instance" "$first" DServer "$host"
    lower=$(echo "$first" | tr 'A-Z' 'a-z')
    add "INSERT INTO server (name, host, mode, level) SELECT '$lower', '$host', $mode, $level FROM DUAL
    WHERE NOT EXISTS (SELECT 1 FROM server WHERE name = '$lower');"
    count=$((count + 1))
  done <<ENTRIES
$entries
ENTRIES
done

printf '%s' "$sql" | mariadb --no-defaults -h "$db_host" -P "$db_port" -u "${MYSQL_USER:-root}" ${MYSQL_PASSWORD:+-p"$MYSQL_PASSWORD"} "$db"
if [ $# -eq 1 ]; then hosts="host $1"; else hosts="hosts $*"; fi
echo "register: $count server(s) for $hosts in $db"
