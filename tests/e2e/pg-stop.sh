#!/usr/bin/env bash
# pg-stop.sh STATE_DIR - stops the server pg-start.sh started and removes
# its files.  Succeeds when there is nothing to stop.
set -euo pipefail

state=${1:?usage: pg-stop.sh STATE_DIR}
pgdir=$(cat "$state/pgdir" 2>/dev/null || true)
if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
  bindir=${IMS_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u "$(stat -c %U "$pgdir/data")" --)
  fi
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 stop >/dev/null
fi
case "$pgdir" in
  */ims-pg-*) rm -rf "$pgdir" ;;
esac
rm -rf "$state"
