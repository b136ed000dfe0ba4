#!/bin/sh
# Keeps a Tango database up at shutdown while device servers of other hosts still need it: run by
# starter-init as a server above DataBaseds (rootfs/swarm/tango-db.yaml), it does nothing until it is
# told to stop, and then exits only once no device server is exported in the database any more —
# every one has unexported itself, as a Tango server does on its way out — or after MAX_SECONDS.
# Only then does the init stop DataBaseds and MariaDB.
#
#   drain.sh [MAX_SECONDS]      (default 10)
#
# Why: `docker stack rm` of a fleet stops the database and the hosts at the same moment, and a Tango
# device server whose database is gone hangs for half a minute on its way out (retrying
# DbUnExportServer) until its init kills it. Connects with the MYSQL_* variables DataBaseds uses.
set -u

max=${1:-10}
case "$max" in '' | *[!0-9]*) echo "drain: MAX_SECONDS is a whole number of seconds, got '$max'" >&2; exit 2 ;; esac
case "${MYSQL_HOST:-localhost}" in
  *:*) db_host=${MYSQL_HOST%:*}; db_port=${MYSQL_HOST##*:} ;;
  *) db_host=${MYSQL_HOST:-localhost}; db_port=3306 ;;
esac
db=${MYSQL_DATABASE:-tango}

# Device servers still exported, the database's own DataBaseds left out.
exported() {
  mariadb --no-defaults -h "$db_host" -P "$db_port" -u "${MYSQL_USER:-root}" ${MYSQL_PASSWORD:+-p"$MYSQL_PASSWORD"} -N -B \
    -e "SELECT COUNT(*) FROM device WHERE class = 'DServer' AND exported = 1 AND name NOT LIKE 'dserver/DataBaseds/%'" "$db"
}

# Hundredths of a second since boot (/proc/uptime has two decimals).
now() {
  read -r up _ </proc/uptime
  echo "${up%.*}${up#*.}"
}

drain() {
  started=$(now)
  count=$(exported) || count="?"
  echo "drain: stop asked; $count device server(s) still exported, waiting for them (at most $max s)"
  while [ "$count" != 0 ] && [ $(($(now) - started)) -lt $((max * 100)) ]; do
    sleep 0.2
    count=$(exported) || count="?"
  done
  took=$(($(now) - started))
  if [ "$count" = 0 ]; then
    echo "drain: no device server exported any more after $((took / 100)).$((took % 100 / 10)) s"
  else
    echo "drain: $count device server(s) still exported after $max s; going on"
  fi
  exit 0
}

trap drain TERM INT
echo "drain: ready; at shutdown the database stays up while device servers are exported (at most $max s)"
# A shell runs its trap once the command it waits for returns: wait on a background sleep, which the
# signal interrupts at once (the init signals the whole process group: the sleep ends too, and the
# shell's note that it was terminated goes nowhere).
while :; do
  sleep 3600 &
  wait $! 2>/dev/null
done
