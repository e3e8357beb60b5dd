#!/usr/bin/env bash
# pg-run.sh STATE_DIR COMMAND... - runs COMMAND with IMS_TEST_PG_DSN set to
# the DSN of the server pg-start.sh STATE_DIR started (left unset when there
# is none: the test then skips, or fails under CI=true).
set -euo pipefail

state=${1:?usage: pg-run.sh STATE_DIR COMMAND...}
shift
if [ -z "${IMS_TEST_PG_DSN:-}" ] && [ -f "$state/dsn" ]; then
  IMS_TEST_PG_DSN=$(cat "$state/dsn")
  export IMS_TEST_PG_DSN
fi
exec "$@"
