#!/usr/bin/env bash
# tests/e2e/hss/hss_e2e.sh - Cx/Sh end to end over TCP (and TLS) on loopback.
#
#   hss_e2e.sh setup FIXTURE       seed a store, start `imscloud` with roles = hss
#   hss_e2e.sh cleanup FIXTURE     SIGTERM it; fail unless it exits 0 with a clean log
#   hss_e2e.sh test NAME FIXTURE   run one client scenario against it
#
# Fixtures: hss (mode hss: TCP port and TLS port, allow-listed client names),
#           slf (mode slf, TCP only).
# Environment (from CMake): IMS_BIN (imscloud), IMS_HSS_TOOLS (dir of hss_seed and
# cx_client), IMS_E2E_STATE (kept logs), IMS_TEST_TIMEOUT_MULTIPLIER, CI.
set -euo pipefail

MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
STATE_ROOT=${IMS_E2E_STATE:-${TMPDIR:-/tmp}/imscloud-e2e-state}
TOOLS=${IMS_HSS_TOOLS:?IMS_HSS_TOOLS}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# freeDiameter/GnuTLS leak one buffer of the CA list at exit (lsan.supp says which)
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

say() { printf 'e2e-hss: %s\n' "$*"; }
die() {
    printf 'e2e-hss: FAIL: %s\n' "$*" >&2
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'e2e-hss: SKIP: %s\n' "$*"
    exit 77
}
scaled() { awk -v s="$1" -v m="$MULT" 'BEGIN { v = s * m; if (v < 1) v = 1; printf "%d", v + 0.5 }'; }

port_busy() { [ -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]; }
pick_port() {
    local p tries=0
    p=$((26000 + RANDOM % 900))
    while port_busy "$p" || [ "$p" = "${1:-}" ]; do
        tries=$((tries + 1))
        [ $tries -lt 1000 ] || die "no free port"
        p=$((26000 + RANDOM % 900))
    done
    echo "$p"
}

# Certificates whose names are the Diameter identities (freeDiameter checks both ways).
gen_certs() {
    local d=$1
    mkdir -p "$d"
    (
        cd "$d"
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=imscloud e2e hss CA" \
            -keyout ca.key -out ca.pem 2>/dev/null
        for n in hss.ims.test client-tls.ims.test; do
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$n.key" -out "$n.csr" \
                2>/dev/null
            printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$n" >ext
            openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile ext -out "$n.pem" 2>/dev/null
        done
        # a client certificate from a CA the HSS does not trust (mutual TLS check);
        # the client itself trusts both CAs, so only the HSS can refuse it
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rogue CA" \
            -keyout rogue-ca.key -out rogue-ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=client-rogue.ims.test" \
            -keyout client-rogue.key -out client-rogue.csr 2>/dev/null
        printf 'subjectAltName=DNS:client-rogue.ims.test\nextendedKeyUsage=clientAuth\n' >ext
        openssl x509 -req -in client-rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key \
            -CAcreateserial -days 2 -extfile ext -out client-rogue.pem 2>/dev/null
        openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out dh.pem 2>/dev/null
        rm -f ./*.csr ext ./*.srl
    ) || die "could not make certificates with openssl"
}

cmd=${1:?usage}
if [ "$cmd" = test ]; then
    name=${2:?usage: test NAME FIXTURE}
    fix=${3:?usage: test NAME FIXTURE}
else
    fix=${2:?usage}
fi
FIXDIR=$STATE_ROOT/hss-$fix
ENVF=$FIXDIR/env

setup() {
    command -v ss >/dev/null || skip "missing ss (iproute2)"
    command -v openssl >/dev/null || skip "missing openssl"
    [ -x "${IMS_BIN:-}" ] || die "IMS_BIN not set or not executable"
    rm -rf "$FIXDIR"
    mkdir -p "$FIXDIR"
    local tmp port tls_port mode_lines=""
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ims-hss-e2e.XXXXXX")
    port=$(pick_port)
    tls_port=$(pick_port "$port")
    gen_certs "$tmp/certs"
    mkdir -p -m 700 "$tmp/var"
    "$TOOLS/hss_seed" "sqlite:$tmp/var/hss.db" "$tmp/var/keys" >"$FIXDIR/seed.log" 2>&1 ||
        die "seeding failed: $(cat "$FIXDIR/seed.log")"
    if [ "$fix" = slf ]; then
        mode_lines="mode = slf
slf_route = sip:*@ims.test hss-a.ims.test
slf_route = *@ims.test hss-a.ims.test"
        tls_port=0
    fi
    cat >"$tmp/imscloud.conf" <<EOF
[core]
roles = hss
state_dir = $tmp/var
log_level = ${IMS_E2E_LOG_LEVEL:-info}

[hss]
store_threads = 2
$mode_lines

[diameter]
identity = hss.ims.test
realm = ims.test
listen = 127.0.0.1
port = $port
tls_port = $tls_port
tls_cert = $tmp/certs/hss.ims.test.pem
tls_key = $tmp/certs/hss.ims.test.key
tls_ca = $tmp/certs/ca.pem
tls_dh = $tmp/certs/dh.pem
allow_hosts = scscf*.ims.test, icscf*.ims.test, client*.ims.test, as*.ims.test
tc_timer = 2
EOF
    local asan=${ASAN_OPTIONS:-}
    # peers that vanish mid-request: freeDiameter 1.2.1 itself now and then
    # loses such a request with its error answer (about 1 run in 25 of
    # peer_vanishes, ~3.5 KiB); that fixture's HSS runs without leak checks
    # (every other ASan check stays), so the others keep theirs
    [ "$fix" = vanish ] && asan="${asan:+$asan:}detect_leaks=0"
    ASAN_OPTIONS=$asan setsid "$IMS_BIN" -c "$tmp/imscloud.conf" >"$FIXDIR/server.log" 2>&1 \
        </dev/null &
    local pid=$!
    printf 'TMP=%s\nPID=%s\nPORT=%s\nTLS_PORT=%s\n' "$tmp" "$pid" "$port" "$tls_port" >"$ENVF"
    local deadline=$(($(date +%s) + $(scaled 20)))
    while ! port_busy "$port"; do
        kill -0 "$pid" 2>/dev/null || die "imscloud exited: $(tail -20 "$FIXDIR/server.log")"
        [ "$(date +%s)" -lt "$deadline" ] || die "imscloud did not listen on $port"
        sleep 0.2
    done
    say "hss fixture $fix up: pid $pid port $port tls_port $tls_port"
}

cleanup() {
    [ -f "$ENVF" ] || exit 0
    # shellcheck disable=SC1090
    . "$ENVF"
    local rc=0
    if kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        local deadline=$(($(date +%s) + $(scaled 20)))
        while kill -0 "$PID" 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || { kill -KILL "$PID"; die "no exit after SIGTERM"; }
            sleep 0.2
        done
        wait "$PID" 2>/dev/null || rc=$?
    fi
    rm -rf "$TMP"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$FIXDIR/server.log"; then
        die "sanitizer report in $FIXDIR/server.log"
    fi
    grep -q 'event=stopped' "$FIXDIR/server.log" || die "no clean stop in $FIXDIR/server.log"
    say "hss fixture $fix stopped"
    [ "$rc" = 0 ] || [ "$rc" = 127 ] || die "imscloud exit status $rc"
}

client() { # ID PORT SCENARIO [extra args]
    local id=$1 port=$2 sc=$3
    shift 3
    local run
    run=$(mktemp -d "${TMPDIR:-/tmp}/ims-cx-client.XXXXXX")
    local rc=0
    timeout "$(scaled 60)" "$TOOLS/cx_client" -i "$id" -H hss.ims.test -p "$port" -d "$run" \
        "$@" "$sc" || rc=$?
    rm -rf "$run"
    return $rc
}

runtest() {
    local name=$1
    [ -f "$ENVF" ] || skip "fixture $fix is not running"
    # shellcheck disable=SC1090
    . "$ENVF"
    case $name in
    cx) client scscf.ims.test "$PORT" cx ;;
    sh) client as1.ims.test "$PORT" sh ;;
    unknown_peer) client rogue.ims.test "$PORT" unknown-peer -w 5 ;;
    reconnect)
        local run pid
        run=$(mktemp -d "${TMPDIR:-/tmp}/ims-cx-client.XXXXXX")
        "$TOOLS/cx_client" -i client1.ims.test -H hss.ims.test -p "$PORT" -d "$run" hold \
            >"$FIXDIR/hold.log" 2>&1 &
        pid=$!
        local deadline=$(($(date +%s) + $(scaled 20)))
        until grep -q holding "$FIXDIR/hold.log"; do
            kill -0 $pid 2>/dev/null || die "first client died: $(cat "$FIXDIR/hold.log")"
            [ "$(date +%s)" -lt "$deadline" ] || die "first client got no answer"
            sleep 0.2
        done
        kill -KILL $pid
        wait $pid 2>/dev/null || true
        rm -rf "$run"
        say "first client killed; the same peer connects again"
        client client1.ims.test "$PORT" ping -w 30
        ;;
    tls)
        [ "$TLS_PORT" != 0 ] || die "no TLS port"
        local c=$TMP/certs
        client client-tls.ims.test "$TLS_PORT" ping \
            -T "$c/client-tls.ims.test.pem,$c/client-tls.ims.test.key,$c/ca.pem,$c/dh.pem"
        ;;
    tls_untrusted_client)
        [ "$TLS_PORT" != 0 ] || die "no TLS port"
        local c=$TMP/certs
        # freeDiameter leaks its connection state after a failed handshake: the
        # client's leak check is off for this one (the HSS's still runs at cleanup)
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            client client-rogue.ims.test "$TLS_PORT" unknown-peer -w 5 \
            -T "$c/client-rogue.pem,$c/client-rogue.key,$c/ca.pem+$c/rogue-ca.pem,$c/dh.pem"
        ;;
    bad_session_id)
        # one UAR each whose Session-Id freeDiameter cannot take (V flag, NUL
        # byte, empty): each once aborted the HSS or shut its Diameter down
        DIA_RAW_TIMEOUT=$(scaled 5) python3 "$HERE/dia_raw.py" 127.0.0.1 "$PORT" \
            client-raw.ims.test ims.test session-ids || die "a raw UAR went unanswered"
        local why
        for why in "V flag set" "NUL byte" "empty"; do
            grep -q "event=bad_session_id peer=client-raw.ims.test cmd=300 why=\"$why: removed\"" \
                "$FIXDIR/server.log" || die "no event=bad_session_id ($why) in the log"
        done
        grep -qiE 'shutdown sequence|Assertion' "$FIXDIR/server.log" &&
            die "freeDiameter stopped: $(grep -iE 'shutdown sequence|Assertion' "$FIXDIR/server.log")"
        say "every bad Session-Id removed and logged; a freeDiameter peer is still served"
        client scscf.ims.test "$PORT" ping
        ;;
    bad_proxy_info)
        # a UAR with an empty Proxy-Info sent with the V flag: freeDiameter
        # could not build its answer and leaked (the HSS's leak check runs at
        # cleanup); removed and logged, the good Proxy-Info echoed
        DIA_RAW_TIMEOUT=$(scaled 5) python3 "$HERE/dia_raw.py" 127.0.0.1 "$PORT" \
            client-proxyinfo.ims.test ims.test proxy-info || die "the UAR's answer was wrong or missing"
        grep -q "event=bad_proxy_info peer=client-proxyinfo.ims.test cmd=300 why=\"V flag set: removed\"" \
            "$FIXDIR/server.log" || die "no event=bad_proxy_info in the log"
        say "the bad Proxy-Info removed and logged, the good one answered back"
        ;;
    bad_server_name)
        # a SAR whose Server-Name holds a NUL byte: the peer's error (5004,
        # Failed-AVP), not a store failure of ours
        DIA_RAW_TIMEOUT=$(scaled 5) python3 "$HERE/dia_raw.py" 127.0.0.1 "$PORT" \
            client-servername.ims.test ims.test server-name || die "the SAR's answer was wrong or missing"
        grep -q "event=store_failed" "$FIXDIR/server.log" &&
            die "logged as a store failure: $(grep event=store_failed "$FIXDIR/server.log")"
        say "answered DIAMETER_INVALID_AVP_VALUE naming Server-Name"
        ;;
    peer_vanishes)
        # requests freeDiameter answers itself with an error (another realm or
        # host, a loop), each from a peer that closes at once: its send of that
        # error to a peer without a connection once stopped the node (fd_guard.h)
        DIA_RAW_TIMEOUT=$(scaled 5) python3 "$HERE/dia_raw.py" 127.0.0.1 "$PORT" \
            client-gone.ims.test ims.test vanish || die "the HSS stopped answering"
        grep -qiE 'shutdown sequence|Assertion' "$FIXDIR/server.log" &&
            die "freeDiameter stopped: $(grep -iE 'shutdown sequence|Assertion' "$FIXDIR/server.log")"
        say "$(grep -c 'event=send_dropped' "$FIXDIR/server.log") answer(s) to a vanished peer dropped; still served"
        client scscf.ims.test "$PORT" ping
        ;;
    slf) client icscf.ims.test "$PORT" slf ;;
    *) die "unknown test $name" ;;
    esac
}

case $cmd in
setup) setup ;;
cleanup) cleanup ;;
test) runtest "$name" ;;
*) die "usage: $0 setup|cleanup FIXTURE | test NAME FIXTURE" ;;
esac
