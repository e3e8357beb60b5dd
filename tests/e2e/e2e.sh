#!/usr/bin/env bash
# tests/e2e/e2e.sh - the end-to-end harness (CTest label e2e; see docs/testing.md).
#
#   e2e.sh setup FIXTURE        start one server for every test of FIXTURE (FIXTURES_SETUP)
#   e2e.sh cleanup FIXTURE      SIGTERM it; fail unless it exits 0 with a clean log
#   e2e.sh test NAME FIXTURE    run one test against the running server
#
# Fixtures:
#   main    udp+tcp on SIP_PORT, tls on TLS_PORT (no client certificate asked);
#           routes: tcp.test -> UAS over TCP, * -> UAS over UDP
#   mtls    tls on TLS_PORT with tls_verify_client = yes
#   protos  udp on SIP_PORT; route * -> a sink on SINK_PORT (run by protos_send)
#
# Environment (CMake passes the first four):
#   IMS_BIN                 server binary ($<TARGET_FILE:imscloud>)
#   IMS_E2E_STATE           directory for per-fixture state and the kept logs
#   IMS_E2E_TOOLS           directory of protos_send and sip_send
#   IMS_E2E_PROTOS          directory of the extracted PROTOS test cases
#   IMS_E2E_SERVER          imscloud (default) or kamailio: the same tests against
#                           Kamailio 5.6 as a stand-in (tests/e2e/conf/kamailio.cfg.in)
#   IMS_E2E_NETNS           auto (default) | yes | no: run each fixture in its own
#                           network namespace (needs root and iproute2). Inside one only
#                           loopback exists, so fuzzed Via hosts cannot send a reply
#                           anywhere else, and fixed ports cannot collide.
#   IMS_TEST_TIMEOUT_MULTIPLIER  scales every wait (default 1)
#   CI=true                 a test that would be skipped (exit 77) fails instead
#
# Temporary files (certificates, configs) live in a mktemp dir that cleanup deletes;
# the server log is copied to $IMS_E2E_STATE/FIXTURE/server.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
KIND=${IMS_E2E_SERVER:-imscloud}
STATE_ROOT=${IMS_E2E_STATE:-${TMPDIR:-/tmp}/imscloud-e2e-state}
TOOLS=${IMS_E2E_TOOLS:-}
NETNS_MODE=${IMS_E2E_NETNS:-auto}

say() { printf 'e2e: %s\n' "$*"; }
die() {
    printf 'e2e: FAIL: %s\n' "$*" >&2
    exit 1
}
# Exit 77 (CTest SKIP_RETURN_CODE); under CI=true a skip is a failure.
# During setup the reason is also left in $SKIP_MARK, so that the fixture's tests
# skip too (CTest runs them even when their setup was skipped).
SKIP_MARK=
skip() {
    if [ -n "$SKIP_MARK" ]; then printf '%s\n' "$*" >"$SKIP_MARK"; fi
    if [ "${CI:-}" = true ]; then
        printf 'e2e: FAIL (CI=true, so this skip is a failure): %s\n' "$*" >&2
        exit 1
    fi
    printf 'e2e: SKIP: %s\n' "$*"
    exit 77
}

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "missing tool '$t' (Debian package $(pkg_of "$t"))"
    done
}

# ---------------------------------------------------------------- fixtures

# Sets the listeners and routes of fixture $1 from the ports in the environment.
#   LISTENS: "proto:ip:port" lines; ROUTES: "domain uri" lines
fixture_spec() {
    case $1 in
    main)
        LISTENS="udp:127.0.0.1:$SIP_PORT
tcp:127.0.0.1:$SIP_PORT
tls:127.0.0.1:$TLS_PORT"
        ROUTES="tcp.test sip:127.0.0.1:$UAS_PORT;transport=tcp
* sip:127.0.0.1:$UAS_PORT;transport=udp"
        TLS_VERIFY_CLIENT=no
        ;;
    mtls)
        LISTENS="tls:127.0.0.1:$TLS_PORT"
        ROUTES="* sip:127.0.0.1:$UAS_PORT;transport=tls"
        TLS_VERIFY_CLIENT=yes
        ;;
    protos)
        LISTENS="udp:127.0.0.1:$SIP_PORT"
        ROUTES="* sip:127.0.0.1:$SINK_PORT;transport=udp"
        TLS_VERIFY_CLIENT=no
        ;;
    *) die "unknown fixture '$1'" ;;
    esac
}


# Picks the fixture's ports. Inside a private netns every port is free, so they are
# fixed; otherwise scan 25060-25999 from a random start for ports free for UDP and TCP.
pick_ports() {
    if [ -n "$NS" ]; then
        SIP_PORT=25060 TLS_PORT=25061 UAS_PORT=25070 SINK_PORT=25090
        return
    fi
    need ss
    local names=(SIP_PORT TLS_PORT UAS_PORT SINK_PORT) taken=" " p i=0 tries=0
    p=$((25060 + RANDOM % 900))
    while [ $i -lt ${#names[@]} ]; do
        tries=$((tries + 1))
        [ $tries -lt 2000 ] || die "no free ports in 25060-25999"
        p=$((p + 1))
        [ $p -le 25999 ] || p=25060
        case $taken in *" $p "*) continue ;; esac
        port_busy "$p" && continue
        printf -v "${names[$i]}" '%s' "$p"
        taken="$taken$p "
        i=$((i + 1))
    done
}

# A throw-away CA, a server certificate (127.0.0.1, localhost) and a client certificate.
gen_certs() {
    local d=$1
    mkdir -p "$d"
    (
        cd "$d"
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=imscloud e2e CA" -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >srv.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile srv.ext -out server.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=e2e-client" -keyout client.key -out client.csr 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >cli.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile cli.ext -out client.pem 2>/dev/null
        cat client.pem client.key >client-combined.pem
        rm -f ./*.csr ./*.ext ca.srl
        chmod 644 ca.pem server.pem client.pem
    ) || die "could not make test certificates with openssl"
}

# render TEMPLATE OUT: replaces @NAME@ by the value of the shell variable R_NAME
# (multi-line values allowed).
render() {
    local tmpl=$1 out=$2 v
    local -a envs=()
    for v in $(compgen -v R_); do envs+=("$v=${!v}"); done
    env "${envs[@]}" awk '{
        line = $0
        while (match(line, /@[A-Z_]+@/)) {
            name = "R_" substr(line, RSTART + 1, RLENGTH - 2)
            val = (name in ENVIRON) ? ENVIRON[name] : ""
            printf "%s%s", substr(line, 1, RSTART - 1), val
            line = substr(line, RSTART + RLENGTH)
        }
        print line
    }' "$tmpl" >"$out"
}

# shellcheck disable=SC2034 # R_* are read by render() through compgen
render_imscloud() {
    local l d u
    R_LOG_LEVEL=${IMS_E2E_LOG_LEVEL:-info}
    R_CERTS=$TMP/certs
    R_TLS_VERIFY_CLIENT=$TLS_VERIFY_CLIENT
    R_LISTEN=
    while read -r l; do R_LISTEN+="listen = $l"$'\n'; done <<<"$LISTENS"
    R_ROUTES=
    while read -r d u; do R_ROUTES+="route = $d $u"$'\n'; done <<<"$ROUTES"
    render "$HERE/conf/imscloud.conf.in" "$TMP/imscloud.conf"
    CONF=$TMP/imscloud.conf
}

# shellcheck disable=SC2034 # R_* are read by render() through compgen
render_kamailio() {
    local l d u tls=no
    R_KAM_DEBUG=${IMS_E2E_KAM_DEBUG:-1}
    R_CERTS=$TMP/certs
    R_KAM_LISTEN=
    while read -r l; do
        R_KAM_LISTEN+="listen=$l"$'\n'
        case $l in tls:*) tls=yes ;; esac
    done <<<"$LISTENS"
    R_KAM_TLS_ENABLE='' R_KAM_TLS_MODULE=''
    if [ $tls = yes ]; then
        R_KAM_TLS_ENABLE="enable_tls=yes"
        R_KAM_TLS_MODULE="loadmodule \"tls.so\"
modparam(\"tls\", \"config\", \"$TMP/kamailio-tls.cfg\")"
        R_KAM_TLS_VERIFY=$TLS_VERIFY_CLIENT
        render "$HERE/conf/kamailio-tls.cfg.in" "$TMP/kamailio-tls.cfg"
    fi
    R_KAM_ROUTES=
    while read -r d u; do
        if [ "$d" = "*" ]; then
            R_KAM_ROUTES+="    \$du = \"$u\"; return;"$'\n'
        else
            R_KAM_ROUTES+="    if (\$rd == \"$d\") { \$du = \"$u\"; return; }"$'\n'
        fi
    done <<<"$ROUTES"
    render "$HERE/conf/kamailio.cfg.in" "$TMP/kamailio.cfg"
    CONF=$TMP/kamailio.cfg
}

# NSP: the command prefix that runs a program in the fixture's network namespace
# (empty without one). Use as: "${NSP[@]}" prog args
set_nsp() {
    NSP=()
    if [ -n "$NS" ]; then NSP=(ip netns exec "$NS"); fi
}

state_load() {
    FIX=$1
    SDIR=$STATE_ROOT/$FIX
    [ -f "$SDIR/env" ] || return 1
    # shellcheck disable=SC1091
    . "$SDIR/env"
    set_nsp
}

server_alive() { [ ! -e "$SDIR/rc" ] && kill -0 "$PID" 2>/dev/null; }

# Stops a server left over by an aborted earlier run of this fixture (one we started).
stop_stale() {
    [ -f "$SDIR/env" ] || return 0
    local NS='' PID='' PGID='' TMP=''
    # shellcheck disable=SC1091
    . "$SDIR/env" || true
    if [ -n "$PGID" ] && kill -0 "$PGID" 2>/dev/null; then
        say "stopping a stale server of an earlier run (pgid $PGID)"
        kill -KILL -- "-$PGID" 2>/dev/null || true
    fi
    if [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then rm -rf "$TMP"; fi
    rm -f "$SDIR/env"
}

# On a failed setup: stop what was started, keep the log, remove the rest.
setup_undo() {
    local rc=$?
    trap - EXIT
    [ $rc = 0 ] && return 0
    if [ -n "${PGID:-}" ]; then kill -KILL -- "-$PGID" 2>/dev/null || true; fi
    if [ -n "${TMP:-}" ] && [ -f "$TMP/server.log" ]; then cp "$TMP/server.log" "$SDIR/server.log" || true; fi
    if [ -n "${NS:-}" ]; then ip netns del "$NS" 2>/dev/null || true; fi
    if [ -n "${TMP:-}" ]; then rm -rf "$TMP"; fi
    rm -f "$SDIR/env"
    exit $rc
}

cmd_setup() {
    FIX=$1
    SDIR=$STATE_ROOT/$FIX
    PGID='' TMP='' NS=''
    mkdir -p "$SDIR"
    rm -f "$SDIR/skipped"
    SKIP_MARK=$SDIR/skipped
    need openssl awk timeout setsid
    case $KIND in
    imscloud)
        [ -n "${IMS_BIN:-}" ] || skip "IMS_BIN is not set (no imscloud target in this build)"
        [ -x "$IMS_BIN" ] || die "IMS_BIN=$IMS_BIN is not an executable"
        ;;
    kamailio)
        need kamailio
        IMS_BIN=$(command -v kamailio)
        ;;
    *) die "IMS_E2E_SERVER must be imscloud or kamailio, not '$KIND'" ;;
    esac

    mkdir -p "$SDIR"
    stop_stale
    rm -f "$SDIR/rc" "$SDIR/server.log" "$SDIR/pid" "$SDIR/pgid"

    trap setup_undo EXIT
    trap 'exit 143' TERM INT # so that a CTest timeout still runs setup_undo
    local use_ns=no
    case $NETNS_MODE in
    no) ;;
    yes) use_ns=yes ;;
    auto) if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then use_ns=yes; fi ;;
    *) die "IMS_E2E_NETNS must be auto, yes or no" ;;
    esac
    if [ $use_ns = yes ]; then
        need ip
        NS=imse2e-$FIX-$$
        ip netns add "$NS" || die "ip netns add failed (IMS_E2E_NETNS=no runs without)"
        ip -n "$NS" link set lo up
    fi
    set_nsp

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/imscloud-e2e-$FIX.XXXXXX")
    pick_ports
    fixture_spec "$FIX"
    gen_certs "$TMP/certs"

    local -a argv
    if [ "$KIND" = imscloud ]; then
        render_imscloud
        argv=("$IMS_BIN" -c "$CONF")
        "${NSP[@]}" "$IMS_BIN" -c "$CONF" --check-config >"$TMP/check.out" 2>&1 ||
            die "imscloud --check-config rejected $CONF: $(cat "$TMP/check.out")"
    else
        render_kamailio
        # -DD: stay in the foreground (children still fork); -E: log to stderr
        argv=("$IMS_BIN" -f "$CONF" -DD -E -m 64 -M 8 -Y "$TMP/run" -P "$TMP/kamailio.pid")
        mkdir -p "$TMP/run"
        "${NSP[@]}" "$IMS_BIN" -c -f "$CONF" >"$TMP/check.out" 2>&1 ||
            die "kamailio -c rejected $CONF: $(tail -5 "$TMP/check.out")"
    fi

    local log=$TMP/server.log
    # The wrapper records the server's pid and, when it ends, its exit code. setsid
    # detaches it from CTest (which must not wait for the server's stdout).
    setsid bash -c '
        sdir=$1 log=$2; shift 2
        echo $$ >"$sdir/pgid"
        "$@" </dev/null >"$log" 2>&1 &
        echo $! >"$sdir/pid"
        wait $! && rc=0 || rc=$?
        echo $rc >"$sdir/rc.tmp" && mv "$sdir/rc.tmp" "$sdir/rc"
    ' e2e-wrapper "$SDIR" "$log" "${NSP[@]}" "${argv[@]}" </dev/null >/dev/null 2>&1 &
    disown

    local deadline=$(($(date +%s) + $(scaled 10)))
    while [ ! -s "$SDIR/pid" ] || [ ! -s "$SDIR/pgid" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "the server wrapper did not start"
        sleep 0.05
    done
    PID=$(cat "$SDIR/pid")
    PGID=$(cat "$SDIR/pgid")
    cat >"$SDIR/env" <<EOF
KIND=$KIND
NS=$NS
TMP=$TMP
PID=$PID
PGID=$PGID
LOG=$log
CERTS=$TMP/certs
SIP_PORT=$SIP_PORT
TLS_PORT=$TLS_PORT
UAS_PORT=$UAS_PORT
SINK_PORT=$SINK_PORT
EOF

    # Ready when it printed one "listening" line per listener (imscloud), or when
    # every port is bound (Kamailio prints no such lines).
    local want n
    want=$(grep -c . <<<"$LISTENS")
    while :; do
        if [ -e "$SDIR/rc" ]; then
            cp "$log" "$SDIR/server.log" 2>/dev/null || true
            die "the server exited (rc $(cat "$SDIR/rc")) during startup; log:
$(tail -n 40 "$log")"
        fi
        if [ "$KIND" = imscloud ]; then
            # one "listening proto=udp addr=127.0.0.1:25060" line per listener (any case)
            n=0
            local l
            while read -r l; do
                awk -v p="proto=${l%%:*}" -v a="addr=${l#*:}" '
                    tolower($1) == "listening" && tolower($2) == tolower(p) && $3 == a { f = 1 }
                    END { exit !f }' "$log" && n=$((n + 1))
            done <<<"$LISTENS"
        else
            n=0
            local l proto port
            while read -r l; do
                proto=${l%%:*} port=${l##*:}
                if [ "$proto" = udp ]; then
                    [ -n "$("${NSP[@]}" ss -Hlnu "sport = :$port")" ] && n=$((n + 1))
                else
                    [ -n "$("${NSP[@]}" ss -Hlnt "sport = :$port")" ] && n=$((n + 1))
                fi
            done <<<"$LISTENS"
        fi
        [ "$n" -ge "$want" ] && break
        [ "$(date +%s)" -lt $deadline ] || die "the server did not report $want listeners in time; log:
$(tail -n 40 "$log")"
        sleep 0.1
    done
    trap - EXIT
    say "fixture $FIX: $KIND pid $PID${NS:+ in netns $NS}, sip $SIP_PORT, tls $TLS_PORT, uas $UAS_PORT, sink $SINK_PORT"
    say "config: $CONF"
    [ "$KIND" = kamailio ] || sed 's/^/  | /' "$CONF" | grep -v '^  | *[;#]' | grep -v '^  | *$' || true
    grep '^listening' "$log" | sed 's/^/  | /' || true
}

# Prints the sanitizer or leak lines of a log (none: prints nothing).
# (Kamailio's tls module warns about "openssl bug #1491 (crash/mem leaks on low
# memory)" at every start: not a leak report, ignored for the stand-in.)
bad_log_lines() {
    grep -Ein 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|MemorySanitizer|runtime error:|leak' "$1" |
        { if [ "$KIND" = kamailio ]; then grep -v 'openssl bug #1491'; else cat; fi; } | head -n 40 || true
}

cmd_cleanup() {
    FIX=$1
    if ! state_load "$FIX"; then
        say "fixture $FIX was not started; nothing to stop"
        exit 0
    fi
    local early='' rc bad
    if [ -e "$SDIR/rc" ]; then
        early=yes
    else
        kill -TERM "$PID" 2>/dev/null || true
        local deadline=$(($(date +%s) + $(scaled 15)))
        while [ ! -e "$SDIR/rc" ] && [ "$(date +%s)" -lt $deadline ]; do sleep 0.1; done
        if [ ! -e "$SDIR/rc" ]; then
            kill -KILL -- "-$PGID" 2>/dev/null || true
            sleep 0.5
            cp "$LOG" "$SDIR/server.log" 2>/dev/null || true
            [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
            rm -rf "$TMP" "$SDIR/env"
            die "the server did not exit within $(scaled 15) s of SIGTERM (killed); log in $SDIR/server.log"
        fi
    fi
    rc=$(cat "$SDIR/rc")
    # Kamailio's children can outlive the main process for a moment.
    kill -KILL -- "-$PGID" 2>/dev/null || true
    cp "$LOG" "$SDIR/server.log" 2>/dev/null || true
    if [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
    rm -rf "$TMP" "$SDIR/env" "$SDIR/pid" "$SDIR/pgid"
    bad=$(bad_log_lines "$SDIR/server.log")
    [ -z "$early" ] || die "the server had exited before cleanup (rc $rc); log in $SDIR/server.log:
$(tail -n 30 "$SDIR/server.log")"
    [ "$rc" = 0 ] || die "the server exited with $rc after SIGTERM (want 0); log in $SDIR/server.log:
$(tail -n 30 "$SDIR/server.log")"
    [ -z "$bad" ] || die "sanitizer report or leak in the server log ($SDIR/server.log):
$bad"
    say "fixture $FIX: $KIND stopped cleanly (exit 0, no sanitizer or leak report)"
}

# ---------------------------------------------------------------- sipp helpers



# run_sipp NAME SECONDS sipp-args...: runs sipp in $OUT with statistics files
# NAME.stat.csv and NAME.err.log, output in NAME.out; returns sipp's exit code.
run_sipp() {
    local name=$1 secs=$2
    shift 2
    local rc=0
    (cd "$OUT" && timeout -k 5 "$secs" "${NSP[@]}" sipp "$@" -nostdin \
        -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_err -error_file "$name.err.log" \
        -trace_counts \
        -timeout "${secs}s" -timeout_error >"$name.out" 2>&1) || rc=$?
    return $rc
}

# check_sipp NAME RC N: sipp exited 0 and its statistics show N successful, 0 failed calls.
check_sipp() {
    local name=$1 rc=$2 n=$3 ok fail
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    fail=$(sipp_stat "$OUT/$name.stat.csv" 'FailedCall(C)' 2>/dev/null || echo '?')
    say "$name: sipp exit $rc, successful $ok, failed $fail (want $n, 0)"
    if [ "$rc" != 0 ] || [ "$ok" != "$n" ] || [ "$fail" != 0 ]; then
        {
            echo "---- $name: sipp output (tail)"
            tail -n 30 "$OUT/$name.out" 2>/dev/null || true
            echo "---- $name: sipp errors (head)"
            head -n 40 "$OUT/$name.err.log" 2>/dev/null || true
        } >&2
        return 1
    fi
}

# The counts file sipp -trace_counts wrote for scenario file $1 (sipp names it itself).
counts_file() { ls -t "$OUT/${1%.xml}"_*_counts.csv 2>/dev/null | head -n 1; }

# ---------------------------------------------------------------- tests

t_options() {
    local t=$1 port=$SIP_PORT n=20
    need sipp
    local rc=0
    run_sipp "options_$t" "$(scaled 30)" "127.0.0.1:$port" -i 127.0.0.1 -sf "$HERE/sipp/options_uac.xml" \
        -t "$t" -m $n -r 20 -l 5 || rc=$?
    check_sipp "options_$t" $rc $n
}

# OPTIONS over TLS: sipp when it was built with TLS, else sipsak (Debian's sipp has no
# TLS). sipsak checks the server certificate against our CA; Debian's sipsak (GnuTLS)
# cannot present a client certificate, hence the separate mtls fixture.
t_options_tls() {
    if command -v sipp >/dev/null && sipp -v 2>&1 | grep -qi tls; then
        local rc=0 n=20
        run_sipp options_tls "$(scaled 30)" "127.0.0.1:$TLS_PORT" -i 127.0.0.1 \
            -sf "$HERE/sipp/options_uac.xml" -t l1 -m $n -r 20 -l 5 \
            -tls_cert "$CERTS/client.pem" -tls_key "$CERTS/client.key" || rc=$?
        check_sipp options_tls $rc $n
        return
    fi
    need sipsak
    # Debian's sipsak (0.9.8.1, GnuTLS) mistakes TLS 1.3's post-handshake session
    # tickets for a failed read, so this client is held to TLS 1.2 (GnuTLS system
    # priority override); TLS 1.3 is covered by the mtls test (openssl s_client).
    # It also cuts a 5-digit port off the -s URI, so the request comes from a file
    # (sipsak adds its Via) and -s only names the host to verify the certificate against.
    printf '[overrides]\ndisabled-version = tls1.3\n' >"$OUT/gnutls-priority.cfg"
    local i rc
    for i in 1 2 3 4 5; do
        printf 'OPTIONS sip:127.0.0.1:%s SIP/2.0\r\nFrom: <sip:e2e@127.0.0.1>;tag=tls%s\r\nTo: <sip:127.0.0.1:%s>\r\nCall-ID: e2e-tls-%s-%s@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' \
            "$TLS_PORT" "$i" "$TLS_PORT" "$i" $$ >"$OUT/options_$i.sip"
        rc=0
        GNUTLS_SYSTEM_PRIORITY_FILE=$OUT/gnutls-priority.cfg timeout "$(scaled 20)" "${NSP[@]}" \
            sipsak -f "$OUT/options_$i.sip" -s sip:localhost --remote-port="$TLS_PORT" \
            --transport=tls --tls-ca-cert "$CERTS/ca.pem" -vv >"$OUT/sipsak_$i.out" 2>&1 || rc=$?
        say "sipsak OPTIONS over TLS #$i: exit $rc (0 = a 200 arrived)"
        if [ $rc != 0 ] || ! grep -q '^SIP/2.0 200' "$OUT/sipsak_$i.out"; then
            sed 's/^/  | /' "$OUT/sipsak_$i.out" >&2
            return 1
        fi
    done
}

# mtls fixture (tls_verify_client = yes): without a client certificate no answer,
# with one a 200. Client: openssl s_client sending a raw OPTIONS (no SIP client in
# Debian can present a client certificate: sipp lacks TLS, sipsak's GnuTLS path
# loads only the CA).
t_tls_client_cert_required() {
    need openssl
    local rc=0 out=$OUT/s_client.out
    printf 'OPTIONS sip:127.0.0.1:%s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;rport;branch=z9hG4bK-nocert-%s\r\nMax-Forwards: 70\r\nFrom: <sip:nocert@127.0.0.1>;tag=nocert\r\nTo: <sip:127.0.0.1:%s>\r\nCall-ID: nocert-%s@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' \
        "$TLS_PORT" $$ "$TLS_PORT" $$ >"$OUT/options.sip"
    { cat "$OUT/options.sip"; sleep 2; } | timeout "$(scaled 15)" "${NSP[@]}" openssl s_client \
        -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" -quiet -no_ign_eof -verify_return_error \
        >"$out" 2>&1 || rc=$?
    if grep -q 'SIP/2.0 200' "$out"; then
        sed 's/^/  | /' "$out" >&2
        die "a TLS client without a certificate got a 200"
    fi
    say "no answer without a client certificate (openssl s_client exit $rc)"
    # and with one the same path works, so the refusal above was about the certificate
    rc=0
    { cat "$OUT/options.sip"; sleep 2; } | timeout "$(scaled 15)" "${NSP[@]}" openssl s_client \
        -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" -quiet -no_ign_eof -verify_return_error \
        -cert "$CERTS/client.pem" -key "$CERTS/client.key" >"$out.ok" 2>&1 || rc=$?
    if ! grep -q 'SIP/2.0 200' "$out.ok"; then
        sed 's/^/  | /' "$out.ok" >&2
        die "with a client certificate, OPTIONS over TLS got no 200 (openssl s_client exit $rc)"
    fi
    say "with the client certificate: 200"
}

# A call UAC -> server -> UAS. $1: u1|t1, $2: R-URI domain, $3: calls, $4: extra sipp args
t_call() {
    local t=$1 dom=$2 n=$3 lossy=${4:-}
    need sipp
    local secs uas_pid rc_uas=0 rc_uac=0 lossargs=()
    if [ -n "$lossy" ]; then
        secs=$(scaled 120)
        # 5% on every sipp send and receive, on both sides: 8 to 16 losses a run
        # (asserted below: sipp's "lost" marks), rare enough that a transaction losing
        # all of its ~7 tries (sipp then fails the call) stays out of the suite's
        # noise; at 10% a BYE (4 loss points a try) failed a run now and then.
        # -trace_msg keeps both sides' messages (call_ua[cs]_<pid>_messages.log) in
        # the artifacts: a rare failure is only explained by them.
        lossargs=(-lost 5 -trace_msg)
    else
        secs=$(scaled 60)
    fi
    (cd "$OUT" && exec timeout -k 5 "$((secs + 10))" "${NSP[@]}" sipp -sf "$HERE/sipp/call_uas.xml" \
        -i 127.0.0.1 -p "$UAS_PORT" -t "$t" -m "$n" "${lossargs[@]}" -nostdin \
        -trace_stat -stf uas.stat.csv -fd 1 -trace_err -error_file uas.err.log -trace_counts \
        -timeout "$((secs + 10))s" -timeout_error >uas.out 2>&1) &
    uas_pid=$!
    # the UAS must listen before the first INVITE arrives
    local deadline=$(($(date +%s) + $(scaled 10))) opt=-Hlnu
    [ "$t" = t1 ] && opt=-Hlnt
    until [ -n "$("${NSP[@]}" ss $opt "sport = :$UAS_PORT")" ]; do
        if ! kill -0 $uas_pid 2>/dev/null || [ "$(date +%s)" -ge $deadline ]; then
            cat "$OUT/uas.out" >&2 || true
            die "the sipp UAS did not start listening on $UAS_PORT"
        fi
        sleep 0.1
    done
    run_sipp uac "$secs" "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -sf "$HERE/sipp/call_uac.xml" -t "$t" \
        -s bob -key rdomain "$dom" -m "$n" -r 10 -l 10 "${lossargs[@]}" || rc_uac=$?
    # the UAS ends a few seconds after the last call (its timewait); do not let a UAS
    # that waits for calls which will never come hold the test until its timeout
    local until_t=$(($(date +%s) + $(scaled 20)))
    while kill -0 $uas_pid 2>/dev/null && [ "$(date +%s)" -lt $until_t ]; do sleep 0.2; done
    kill -TERM $uas_pid 2>/dev/null || true
    wait $uas_pid || rc_uas=$?
    local ok=0
    check_sipp uac $rc_uac "$n" || ok=1
    check_sipp uas $rc_uas "$n" || ok=1
    if [ -z "$lossy" ] && [ $ok = 0 ]; then
        # no loss: every 180 reached the UAC and every ACK reached the UAS
        local c v
        c=$(counts_file call_uac.xml)
        v=$(sipp_count "$c" '_180_Recv$' 2>/dev/null || echo '?')
        say "UAC received 180: $v (want $n)"
        [ "$v" = "$n" ] || ok=1
        c=$(counts_file call_uas.xml)
        v=$(sipp_count "$c" '_ACK_Recv$' 2>/dev/null || echo '?')
        say "UAS received ACK: $v (want $n)"
        [ "$v" = "$n" ] || ok=1
    fi
    if [ -n "$lossy" ] && [ $ok = 0 ]; then
        # the loss must have bitten: sipp dropped messages, and every call still
        # completed.  Who recovered varies: a lost INVITE to the UAS is resent by
        # our proxy, a lost 180 needs no one; sipp's own retransmissions were 0 in
        # one CI run (as few as 2 in 25 runs here), so they are reported, not asserted.
        local lost r1 r2
        lost=$(cat "$OUT"/call_ua[cs]_*_messages.log 2>/dev/null | grep -c 'lost (' || true)
        r1=$(sipp_stat "$OUT/uac.stat.csv" 'Retransmissions(C)' 2>/dev/null || echo 0)
        r2=$(sipp_stat "$OUT/uas.stat.csv" 'Retransmissions(C)' 2>/dev/null || echo 0)
        say "messages sipp dropped: $lost (want some); sipp retransmissions: UAC $r1, UAS $r2"
        [ "${lost:-0}" -gt 0 ] || ok=1
    fi
    return $ok
}

t_malformed() {
    local rc=0
    [ -x "$TOOLS/sip_send" ] || die "sip_send not built (IMS_E2E_TOOLS=$TOOLS)"
    "${NSP[@]}" "$TOOLS/sip_send" --port "$SIP_PORT" --timeout-ms "$(scaled_ms 2000)" \
        "$HERE"/malformed/* || rc=$?
    [ $rc = 0 ] || return 1
    # and the server still answers OPTIONS (sipp, statistics checked)
    t_options u1
}

t_protos() {
    [ -x "$TOOLS/protos_send" ] || die "protos_send not built (IMS_E2E_TOOLS=$TOOLS)"
    local dir=${IMS_E2E_PROTOS:-}
    [ -n "$dir" ] && [ -f "$dir/0000000" ] || die "PROTOS cases not found (IMS_E2E_PROTOS=$dir)"
    local guard=()
    [ -n "$NS" ] || guard=(--loopback-guard)
    local range=()
    [ -z "${IMS_E2E_PROTOS_LAST:-}" ] || range=(--last "$IMS_E2E_PROTOS_LAST")
    "${NSP[@]}" "$TOOLS/protos_send" --port "$SIP_PORT" --sink "$SINK_PORT" \
        --timeout-ms "$(scaled_ms 1000)" --tries 5 "${guard[@]}" "${range[@]}" "$dir"
}

cmd_test() {
    local name=$1
    FIX=$2
    # tools first: a missing tool is a skip even if the fixture could not start
    case $name in
    options_udp | options_tcp | call_* | malformed_udp) need sipp ss ;;
    options_tls) command -v sipp >/dev/null && sipp -v 2>&1 | grep -qi tls || need sipsak ;;
    tls_client_cert_required) need openssl ;;
    esac
    if [ -f "$STATE_ROOT/$FIX/skipped" ]; then
        skip "fixture $FIX was skipped: $(cat "$STATE_ROOT/$FIX/skipped")"
    fi
    state_load "$FIX" || die "fixture $FIX is not running (did e2e_${FIX}_setup fail?)"
    server_alive || die "the server of fixture $FIX is not running (rc $(cat "$SDIR/rc" 2>/dev/null || echo '?'))"
    OUT=$SDIR/$name
    rm -rf "$OUT"
    mkdir -p "$OUT"
    say "test $name on $KIND (fixture $FIX${NS:+, netns $NS}); artifacts in $OUT"
    local rc=0
    case $name in
    options_udp) t_options u1 || rc=$? ;;
    options_tcp) t_options t1 || rc=$? ;;
    options_tls) t_options_tls || rc=$? ;;
    tls_client_cert_required) t_tls_client_cert_required || rc=$? ;;
    call_udp) t_call u1 udp.test 20 || rc=$? ;;
    call_tcp) t_call t1 tcp.test 20 || rc=$? ;;
    call_udp_lossy) t_call u1 udp.test 20 lossy || rc=$? ;;
    malformed_udp) t_malformed || rc=$? ;;
    protos) t_protos || rc=$? ;;
    *) die "unknown test '$name'" ;;
    esac
    if ! server_alive; then
        die "the server died during $name (rc $(cat "$SDIR/rc" 2>/dev/null || echo '?')); log:
$(tail -n 30 "$LOG" 2>/dev/null)"
    fi
    [ $rc = 0 ] || die "$name failed (artifacts in $OUT)"
    say "$name passed"
}

main() {
    [ $# -ge 2 ] || {
        echo "usage: $0 setup|cleanup FIXTURE | test NAME FIXTURE" >&2
        exit 2
    }
    NS=
    NSP=()
    case $1 in
    setup) cmd_setup "$2" ;;
    cleanup) cmd_cleanup "$2" ;;
    test)
        [ $# -ge 3 ] || die "usage: $0 test NAME FIXTURE"
        cmd_test "$2" "$3"
        ;;
    *) die "unknown command '$1'" ;;
    esac
}

main "$@"
