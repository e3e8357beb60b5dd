#!/usr/bin/env bash
# pg-start.sh STATE_DIR - starts a throw-away PostgreSQL server for the store
# tests: Debian's postgresql binaries, a fresh cluster in a temp dir, on
# 127.0.0.1 at a free port, trust authentication, no Unix socket.  Writes
# the libpq DSN to STATE_DIR/dsn (the tests read it through pg-run.sh as
# IMS_TEST_PG_DSN).  Stop it with pg-stop.sh STATE_DIR.
#
# initdb refuses to run as root, so as root the server runs as $IMS_PG_USER
# (default: nobody).  Exit 77 (skipped) when PostgreSQL is not installed,
# unless CI=true, where a missing server is a failure.
set -euo pipefail

state=${1:?usage: pg-start.sh STATE_DIR}
skip() {
  echo "pg-start: $*" >&2
  if [ "${CI:-}" = true ]; then exit 1; fi
  exit 77
}

bindir=${IMS_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] ||
  skip "PostgreSQL server binaries not found (apt-get install postgresql)"

# A leftover server from an interrupted run is stopped first.
"$(dirname "$0")/pg-stop.sh" "$state" || true
mkdir -p "$state"

# The cluster lives in its own temp directory (the build tree may not be
# reachable for the server's user); STATE_DIR/pgdir points at it.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  pguser=${IMS_PG_USER:-nobody}
  id "$pguser" >/dev/null 2>&1 || skip "user $pguser does not exist"
  as_pg=(runuser -u "$pguser" --)
fi
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/ims-pg-XXXXXX")
echo "$pgdir" >"$state/pgdir"
[ ${#as_pg[@]} -eq 0 ] || chown "$pguser" "$pgdir"

"${as_pg[@]}" "$bindir/initdb" -D "$pgdir/data" -U ims -A trust -E UTF8 --locale=C \
  --no-sync >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  port_free "$port" || continue
  if "${as_pg[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c fsync=off \
          -c max_connections=40" start >/dev/null; then
    echo "host=127.0.0.1 port=$port user=ims dbname=postgres connect_timeout=10" >"$state/dsn"
    echo "pg-start: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    exit 0
  fi
  grep -q "could not bind\|Address already in use" "$pgdir/server.log" 2>/dev/null || break
done
cat "$pgdir/server.log" >&2 || true
exit 1
