#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL cluster on loopback for the test suite.
# Usage: tools/pg_cluster.sh start|stop [DIR] [PORT]   (prints the DATABASE_URL on start)
set -euo pipefail
action=${1:-start}
dir=${2:-/tmp/keybin-pg}
port=${3:-54329}
# KEYBIN_PG_BIN names another PostgreSQL's bin directory (Debian's newest by default).
bin=${KEYBIN_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
  exit 1
fi
run() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
  start)
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres "$dir"
      run "$bin/initdb" -D "$dir" -U keybin --auth=trust -E UTF8 >/dev/null
    fi
    if ! run "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      run "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
    fi
    echo "postgres://keybin@127.0.0.1:$port/postgres"
    ;;
  stop)
    run "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
