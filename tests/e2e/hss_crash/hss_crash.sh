#!/usr/bin/env bash
# tests/e2e/hss_crash/hss_crash.sh - kill -9 of the HSS under AKA load, restart on the
# same store: no subscriber lost, no SQN reused.
#
#   hss_crash.sh sqlite|pg
#
# 1. Seeds SUBS subscribers (bench/hss/hss_bench.h: K/OPc known to the client) into a
#    fresh store (SQLite file, or a throw-away PostgreSQL server: tests/e2e/pg-start.sh)
#    and counts them (hss_bench_seed check).
# 2. Starts `imscloud` (roles = hss) on it; hss_load sends AKA MARs (2 vectors each) to
#    those subscribers over 2 connections, checks every vector as a USIM would
#    (ims_aka_ue_check: MAC-A, XRES, CK, IK) and appends "<subscriber> <SQN>" to
#    before.txt as each answer arrives.
# 3. Once enough vectors arrived, while the client is still sending, SIGKILL the HSS.
# 4. Restarts it on the same store and runs a second client into after.txt (no error
#    allowed), then stops it with SIGTERM (clean exit required).
# 5. Asserts: the same subscribers (counts, associations, K/OPc) before and after; no
#    (subscriber, SQN) pair handed out twice; for each subscriber every SQN after the
#    restart is greater than every SQN before it; the stored SQN_HE is at least the last
#    one handed out.
# Environment (from CMake): IMS_BIN, HSS_LOAD, HSS_SEED, IMS_E2E_STATE (kept logs),
# IMS_E2E_DIR (tests/e2e, for pg-start.sh), IMS_TEST_TIMEOUT_MULTIPLIER, CI.
# Exit 0 pass, 1 fail, 77 skipped (no PostgreSQL; a failure when CI=true).
set -euo pipefail

BACKEND=${1:?usage: hss_crash.sh sqlite|pg}
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
SUBS=8
STATE=${IMS_E2E_STATE:-${TMPDIR:-/tmp}/imscloud-e2e-state}/hss-crash-$BACKEND
: "${IMS_BIN:?}" "${HSS_LOAD:?}" "${HSS_SEED:?}"

say() { printf 'hss-crash: %s\n' "$*"; }
die() {
    printf 'hss-crash: FAIL: %s\n' "$*" >&2
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'hss-crash: SKIP: %s\n' "$*"
    exit 77
}
scaled() {
    awk -v s="$1" -v m="$MULT" 'BEGIN { v = s * m; if (v < 1) v = 1; printf "%d", v + 0.5 }'
}
# rfield NAME FILE: NAME=value from hss_load's "result ..." line in FILE
rfield() { sed -n "s/^result .* $1=\([0-9.]*\).*/\1/p" "$2"; }
port_busy() { [ -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]; }
pick_port() {
    local p tries=0
    p=$((24000 + RANDOM % 900))
    while port_busy "$p"; do
        tries=$((tries + 1))
        [ $tries -lt 1000 ] || die "no free port"
        p=$((24000 + RANDOM % 900))
    done
    echo "$p"
}
command -v ss >/dev/null || skip "missing ss (iproute2)"

rm -rf "$STATE"
mkdir -p "$STATE"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-hss-crash.XXXXXX")
mkdir -p "$TMP/var" "$TMP/client"
chmod 700 "$TMP/var" "$TMP/client"
SERVER_PID=
WRAP_PID=
CLIENT_PID=
PG_STATE=
cleanup() {
    [ -z "$CLIENT_PID" ] || kill -KILL "$CLIENT_PID" 2>/dev/null || true
    [ -z "$SERVER_PID" ] || kill -KILL "$SERVER_PID" 2>/dev/null || true
    [ -z "$PG_STATE" ] || "${IMS_E2E_DIR:?}/pg-stop.sh" "$PG_STATE" >/dev/null 2>&1 || true
    cp "$TMP"/*.txt "$TMP"/*.log "$TMP"/imscloud.conf "$STATE"/ 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

case $BACKEND in
sqlite) URL="sqlite:$TMP/var/hss.db" ;;
pg)
    PG_STATE=$TMP/pg
    rc=0
    "${IMS_E2E_DIR:?}/pg-start.sh" "$PG_STATE" >"$TMP/pg-start.log" 2>&1 || rc=$?
    [ $rc != 77 ] || skip "no PostgreSQL: $(tail -1 "$TMP/pg-start.log")"
    [ $rc = 0 ] || die "pg-start.sh failed: $(tail -5 "$TMP/pg-start.log")"
    URL="pg:$(cat "$PG_STATE/dsn")"
    ;;
*) die "unknown backend $BACKEND" ;;
esac

KEYS=$TMP/var/keys
"$HSS_SEED" seed -b 4 "$URL" "$KEYS" "$SUBS" >"$TMP/seed.log" 2>&1 ||
    die "seed: $(tail -3 "$TMP/seed.log")"
"$HSS_SEED" check -q "$URL" "$KEYS" "$SUBS" >"$TMP/check-before.txt" 2>&1 ||
    die "check before: $(tail -3 "$TMP/check-before.txt")"
COUNT_BEFORE=$(grep '^subs=' "$TMP/check-before.txt")
say "store ($BACKEND) before: $COUNT_BEFORE"

PORT=$(pick_port)
cat >"$TMP/imscloud.conf" <<EOF
[core]
roles = hss
state_dir = $TMP/var
log_level = notice

[hss]
store = $URL
keys_dir = $KEYS
store_threads = 2

[diameter]
identity = hss.ims.bench
realm = ims.bench
listen = 127.0.0.1
port = $PORT
allow_hosts = crash*.ims.bench
EOF

# The server runs under a subshell that waits for it and writes its exit status to
# $TMP/<LOG>.rc (bash's "Killed" note for the SIGKILL goes to the log, not the test output).
start_server() { # LOG
    rm -f "$TMP/$1.pid" "$TMP/$1.rc"
    (
        setsid "$IMS_BIN" -c "$TMP/imscloud.conf" </dev/null >"$TMP/$1" 2>&1 &
        echo $! >"$TMP/$1.pid"
        rc=0
        wait $! || rc=$?
        echo $rc >"$TMP/$1.rc"
    ) 2>>"$TMP/$1" &
    WRAP_PID=$!
    local deadline=$(($(date +%s) + $(scaled 20)))
    while [ ! -s "$TMP/$1.pid" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "imscloud did not start"
        sleep 0.05
    done
    SERVER_PID=$(cat "$TMP/$1.pid")
    deadline=$(($(date +%s) + $(scaled 20)))
    while ! port_busy "$PORT"; do
        [ ! -f "$TMP/$1.rc" ] || die "imscloud exited: $(tail -20 "$TMP/$1")"
        [ "$(date +%s)" -lt "$deadline" ] || die "imscloud did not listen on $PORT"
        sleep 0.1
    done
}

client() { # RECORD SECONDS [extra args]
    local rec=$1 secs=$2
    shift 2
    "$HSS_LOAD" -H hss.ims.bench -p "$PORT" -d "$TMP/client" -i crash -s mar-aka -N "$SUBS" \
        -n 2 -c 2 -w 8 -t "$secs" -T "$(scaled 2)000" -R "$TMP/$rec" "$@"
}

wait_exit() { # LOG: waits for the server's exit status file (20 s, scaled)
    local deadline=$(($(date +%s) + $(scaled 20)))
    while [ ! -f "$TMP/$1.rc" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "imscloud did not exit"
        sleep 0.05
    done
    wait "$WRAP_PID" 2>/dev/null || true
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# ---- load, then SIGKILL mid-load
start_server server1.log
say "HSS up (pid $SERVER_PID, port $PORT); AKA load from 2 connections"
: >"$TMP/before.txt"
client before.txt "$(scaled 30)" -e >"$TMP/client1.log" 2>&1 &
CLIENT_PID=$!
deadline=$(($(date +%s) + $(scaled 30)))
while [ "$(lines "$TMP/before.txt")" -lt 400 ]; do
    kill -0 "$CLIENT_PID" 2>/dev/null || die "client 1 ended early: $(tail -5 "$TMP/client1.log")"
    [ "$(date +%s)" -lt "$deadline" ] ||
        die "too few vectors before the kill: $(lines "$TMP/before.txt")"
    sleep 0.05
done
kill -0 "$CLIENT_PID" 2>/dev/null || die "client 1 not running at the kill"
kill -KILL "$SERVER_PID"
wait_exit server1.log
SERVER_PID=
AT_KILL=$(lines "$TMP/before.txt")
say "SIGKILL with the client sending ($AT_KILL vectors received so far)"
rc=0
wait "$CLIENT_PID" || rc=$?
CLIENT_PID=
[ $rc = 0 ] || die "client 1 exit $rc: $(tail -5 "$TMP/client1.log")"
C1=$TMP/client1.log
[ "$(rfield bad_vectors "$C1")" = 0 ] || die "client 1: bad vectors: $(grep '^result' "$C1")"
[ "$(rfield errors "$C1")" -gt 0 ] ||
    die "client 1 saw no failed request: the kill was not mid-load ($(grep '^result' "$C1"))"
say "client 1: sent $(rfield sent "$C1"), answered $(rfield ok "$C1")," \
    "failed $(rfield errors "$C1") (each window slot stops at its first failure);" \
    "$(lines "$TMP/before.txt") vectors recorded"

"$HSS_SEED" check -q "$URL" "$KEYS" "$SUBS" >"$TMP/check-killed.txt" 2>&1 ||
    die "store after the kill: $(tail -3 "$TMP/check-killed.txt")"

# ---- restart on the same store, more MARs
start_server server2.log
say "HSS restarted (pid $SERVER_PID)"
: >"$TMP/after.txt"
client after.txt 2 >"$TMP/client2.log" 2>&1 || die "client 2: $(tail -5 "$TMP/client2.log")"
C2=$TMP/client2.log
say "client 2: answered $(rfield ok "$C2"), failed $(rfield errors "$C2");" \
    "$(lines "$TMP/after.txt") vectors recorded"
kill -TERM "$SERVER_PID"
wait_exit server2.log
SERVER_PID=
rc=$(cat "$TMP/server2.log.rc")
[ "$rc" = 0 ] || die "imscloud exit status $rc after SIGTERM: $(tail -5 "$TMP/server2.log")"
grep -q 'event=stopped' "$TMP/server2.log" || die "no clean stop in server2.log"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP"/server*.log; then
    die "sanitizer report in a server log"
fi

# ---- the checks
"$HSS_SEED" check "$URL" "$KEYS" "$SUBS" >"$TMP/check-after.txt" 2>&1 ||
    die "check after: $(tail -3 "$TMP/check-after.txt")"
COUNT_AFTER=$(grep '^subs=' "$TMP/check-after.txt")
say "store after: $COUNT_AFTER"
[ "$COUNT_BEFORE" = "$COUNT_AFTER" ] ||
    die "subscribers differ: before '$COUNT_BEFORE', after '$COUNT_AFTER'"

dups=$(cat "$TMP/before.txt" "$TMP/after.txt" | sort | uniq -d | head -5)
[ -z "$dups" ] || die "SQN handed out twice (subscriber sqn): $dups"

# per subscriber: max before < min after <= max after <= stored SQN_HE; everyone got some
awk -v n="$SUBS" '
    FILENAME == ARGV[1] { if (!($1 in bmax) || $2 > bmax[$1]) bmax[$1] = $2; nb[$1]++; next }
    FILENAME == ARGV[2] {
        if (!($1 in amin) || $2 < amin[$1]) amin[$1] = $2
        if (!($1 in amax) || $2 > amax[$1]) amax[$1] = $2
        na[$1]++; next
    }
    $1 == "sqn" { stored[$2] = $3 }
    END {
        bad = 0
        for (i = 0; i < n; i++) {
            if (!(i in nb) || !(i in na)) {
                printf "subscriber %d: %d vectors before, %d after\n", i, nb[i], na[i]
                bad = 1
                continue
            }
            if (amin[i] <= bmax[i]) {
                printf "subscriber %d: SQN %s after the restart <= %s before it\n", i, amin[i],
                    bmax[i]
                bad = 1
            }
            if (!(i in stored) || stored[i] < amax[i]) {
                printf "subscriber %d: stored SQN_HE %s < last handed out %s\n", i, stored[i],
                    amax[i]
                bad = 1
            }
            printf "subscriber %d: %d before (max SQN %s), %d after (SQN %s..%s), SQN_HE %s\n",
                i, nb[i], bmax[i], na[i], amin[i], amax[i], stored[i]
        }
        exit bad
    }' "$TMP/before.txt" "$TMP/after.txt" "$TMP/check-after.txt" >"$TMP/verdict.log" || {
    cat "$TMP/verdict.log"
    die "SQN order across the restart"
}
cat "$TMP/verdict.log"
say "PASS ($BACKEND): $SUBS subscribers kept; $(lines "$TMP/before.txt") SQNs before the kill," \
    "$(lines "$TMP/after.txt") after, none reused, every one after > every one before"
