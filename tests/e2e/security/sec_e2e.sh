#!/usr/bin/env bash
# tests/e2e/security/sec_e2e.sh - attack detectors, the dynamic deny group,
# the Prometheus endpoint and TLS hardening, end to end (CTest label e2e;
# docs/security.md).  Each test starts its own imscloud (P-, I-, S-CSCF and
# HSS in one process, Cx in-process) on 127.0.0.1 with [detect] on
# (127.0.0.1, the roles' own address, exempt), [metrics] on a free port and
# a TLS listener.  Attackers are other loopback addresses (all of 127/8 is
# local on Linux, so sipp -i, svmap -b, curl --interface and sec_peer.py
# bind there without an alias).
#
#   sec_e2e.sh scanner    svmap (User-Agent friendly-scanner) from 127.0.0.2
#                         finds nothing; a CADF monitor event names the
#                         scanner and its address; OPTIONS from 127.0.0.2
#                         are ignored while 127.0.0.3 gets 200; after
#                         [detect] block seconds 127.0.0.2 gets 200 again
#   sec_e2e.sh sweep      sipp REGISTERs 30 distinct users from 127.0.0.4
#                         (ordinary User-Agent): a sweep detection, audited
#   sec_e2e.sh malformed  a burst of unparseable datagrams from 127.0.0.5: a
#                         malformed detection, audited, source blocked
#   sec_e2e.sh metrics    GET /metrics (curl) before and after traffic: the
#                         request, detection and acl-denial counters move;
#                         the HTTP listener refuses a source in the deny group
#   sec_e2e.sh tls        s_client with TLS 1.1 fails, TLS 1.2 with a weak
#                         cipher (AES128-SHA) fails, TLS 1.2/1.3 defaults work
#   sec_e2e.sh mtls_client  a P-CSCF with [sip] tls_client_cert forwards a
#                         REGISTER over TLS to its I-CSCF URI, where openssl
#                         s_server demands a client certificate: the
#                         handshake presents pcscf-client's certificate
#   sec_e2e.sh tls_reload a TLS connection is held open; the certificate and
#                         key files are replaced and SIGHUP sent: a new
#                         connection sees the new certificate (fingerprint),
#                         the held one still gets its OPTIONS answered
#
# Environment (CMake passes them): IMS_BIN, IMS_SEED, SEC_E2E_STATE;
# IMS_TEST_TIMEOUT_MULTIPLIER; CI=true (a skip fails).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
# shellcheck source=tests/e2e/lib.sh
. "$HERE/../lib.sh"
REALM=ims.test
BLOCK=12 # [detect] block: seconds a detected source stays out
export LSAN_OPTIONS="suppressions=$HERE/../hss/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

say() { printf 'e2e-security: %s\n' "$*"; }
die() {
    printf 'e2e-security: FAIL: %s\n' "$*" >&2
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
        echo "---- imscloud log (last 30 lines)" >&2
        tail -n 30 "$LOG" >&2
    fi
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'e2e-security: SKIP: %s\n' "$*"
    exit 77
}
need() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "missing tool '$t' (package $(pkg_of "$t"))"; done
}

# Each test has its own 100 ports of 31000-31999 (PORT_BLOCK, set below from
# its name): two tests run side by side, and a port one has chosen but not
# bound yet looked free to the other (seen: "TLS 127.0.0.1:31102: Address
# already in use" at metrics' start while another test held it).
pick_ports() { # NAME...: free ports from this test's block
    local lo=$((31000 + 100 * PORT_BLOCK))
    local p=$((lo + RANDOM % 100)) name taken=" "
    for name in "$@"; do
        while port_busy "$p" || [[ $taken == *" $p "* ]]; do p=$((lo + (p - lo + 7) % 100)); done
        taken="$taken$p "
        printf -v "$name" '%s' "$p"
        p=$((lo + (p - lo + 13) % 100))
    done
}

udp_bound() { [ -n "$(ss -Hlnu "sport = :$1")" ]; }
tcp_bound() { [ -n "$(ss -Hlnt "sport = :$1")" ]; }

# ---------------------------------------------------------------- process

mkcert() { # NAME CN: a self-signed P-256 certificate and key in $TMP/NAME.{crt,key}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$2" -keyout "$TMP/$1.key" -out "$TMP/$1.crt" >"$OUT/mkcert-$1.log" 2>&1 ||
        die "openssl req: $(cat "$OUT/mkcert-$1.log")"
}

fp_of_file() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }

start_ims() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/sec-e2e.XXXXXX")
    trap 'stop_ims >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
    pick_ports P_PORT T_PORT I_PORT S_PORT DIA_PORT M_PORT UE_PORT
    mkdir -m 700 "$TMP/hss"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:127.0.0.1:$S_PORT" \
        >"$OUT/seed.log" 2>&1 || die "seeding failed: $(cat "$OUT/seed.log")"
    mkcert tls pcscf1.ims.test
    cat >"$TMP/ims.conf" <<EOF
[core]
workers = 2
roles = pcscf,icscf,scscf,hss
state_dir = $TMP/hss
log_level = info

[sip]
listen = udp:127.0.0.1:$P_PORT
listen = tls:127.0.0.1:$T_PORT
listen = udp:127.0.0.1:$I_PORT
listen = udp:127.0.0.1:$S_PORT
tls_cert = $TMP/tls.crt
tls_key = $TMP/tls.key

[pcscf]
ports = $P_PORT,$T_PORT
icscf = sip:127.0.0.1:$I_PORT

[icscf]
ports = $I_PORT

[scscf]
ports = $S_PORT
uri = sip:127.0.0.1:$S_PORT

[diameter]
identity = hss.ims.test
realm = $REALM
listen = 127.0.0.1
port = $DIA_PORT

[detect]
enabled = yes
exempt = 127.0.0.1
sweep_users = 20
sweep_window = 60
malformed_max = 10
malformed_window = 10
block = $BLOCK

[metrics]
listen = 127.0.0.1:$M_PORT
EOF
    LOG=$OUT/ims.log
    AUDIT=$TMP/hss/audit.jsonl
    "$IMS_BIN" -c "$TMP/ims.conf" --check-config >"$OUT/check.log" 2>&1 ||
        die "--check-config: $(cat "$OUT/check.log")"
    "$IMS_BIN" -c "$TMP/ims.conf" </dev/null >"$LOG" 2>&1 &
    IMS_PID=$!
    local deadline=$(($(date +%s) + $(scaled 20)))
    until udp_bound "$P_PORT" && tcp_bound "$T_PORT" && tcp_bound "$M_PORT"; do
        kill -0 "$IMS_PID" 2>/dev/null || die "imscloud exited at start"
        [ "$(date +%s)" -lt $deadline ] || die "imscloud did not open its listeners"
        sleep 0.1
    done
}

stop_ims() { # SIGTERM; fails unless exit 0 with a clean log
    [ -n "${IMS_PID:-}" ] || return 0
    local rc=0 pid=$IMS_PID
    IMS_PID=
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || die "imscloud exit status $rc"
    ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$LOG" ||
        die "sanitizer report in $LOG"
    grep -q 'event=stopped' "$LOG" || die "no clean stop in $LOG"
}

# ---------------------------------------------------------------- probes

# options NAME SRC: OPTIONS over UDP from SRC to the P-CSCF; 0 when answered
options() {
    local name=$1 src=$2 secs rc=0 ok
    secs=$(scaled 3)
    (cd "$OUT" && timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" -sf "$HERE/sipp/sec_options.xml" \
        -i "$src" -p "$UE_PORT" -m 1 -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_msg -message_file "$name.msg" -timeout "${secs}s" -timeout_error \
        >"$name.out" 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    say "$name: OPTIONS from $src: sipp exit $rc, answered $ok"
    [ "$rc" = 0 ] && [ "$ok" = 1 ]
}

# wait_log REGEX: until the log has a line matching REGEX
wait_log() {
    local deadline=$(($(date +%s) + $(scaled 10)))
    until grep -qE "$1" "$LOG"; do
        [ "$(date +%s)" -lt $deadline ] || die "no log line matching '$1'"
        sleep 0.1
    done
}

# audit_detect KIND SRC: the trail holds a CADF monitor event for KIND from SRC
audit_detect() {
    local deadline=$(($(date +%s) + $(scaled 10)))
    until [ -f "$AUDIT" ] && grep '"eventType":"monitor"' "$AUDIT" | grep "\"reasonCode\":\"$1\"" |
        grep -q "\"address\":\"$2\""; do
        [ "$(date +%s)" -lt $deadline ] || die "no CADF monitor event for $1 from $2 in $AUDIT"
        sleep 0.1
    done
    say "audit: $(grep "\"reasonCode\":\"$1\"" "$AUDIT" | head -n 1 | cut -c1-400)"
}

scrape() { # NAME [CURL ARGS...]: GET /metrics into $OUT/NAME.prom
    local name=$1
    shift
    curl -sS --max-time "$(scaled 5)" "$@" "http://127.0.0.1:$M_PORT/metrics" >"$OUT/$name.prom"
}

metric() { # FILE SERIES: the value of one series (0 when absent)
    awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"
}

# register_alice: Digest REGISTER of the seeded user from 127.0.0.1 (exempt)
register_alice() {
    local secs rc=0
    secs=$(scaled 20)
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "127.0.0.1:$P_PORT" -sf "$HERE/../ims/sipp/register.xml" \
        -i 127.0.0.1 -p "$UE_PORT" -key realm "$REALM" -m 1 -nostdin -s alice \
        -au "alice@$REALM" -ap alice-secret -key expires 600 -key alg MD5 \
        -trace_stat -stf reg.stat.csv -fd 1 -timeout "${secs}s" -timeout_error >reg.out 2>&1) || rc=$?
    say "register alice: sipp exit $rc"
    [ "$rc" = 0 ]
}

# ---------------------------------------------------------------- tests

t_scanner() {
    need sipp ss timeout svmap openssl
    start_ims
    options scan-before 127.0.0.3 || die "OPTIONS from 127.0.0.3 not answered before the scan"
    HOME=$TMP timeout -k 5 "$(scaled 60)" svmap -b 127.0.0.2 -x 127.0.0.2 -p "$P_PORT" -t 0.05 \
        127.0.0.1 >"$OUT/svmap.out" 2>&1 || true
    n=$(grep -cE "127\.0\.0\.1:$P_PORT" "$OUT/svmap.out" || true)
    say "svmap from 127.0.0.2 found $n device(s)"
    [ "$n" = 0 ] || die "svmap found imscloud: $(cat "$OUT/svmap.out")"
    wait_log 'event=attack_detected kind=scanner src=127\.0\.0\.2 .*blocked_s='"$BLOCK"
    audit_detect scanner 127.0.0.2
    local t0
    t0=$(date +%s)
    ! options scan-denied 127.0.0.2 || die "OPTIONS from the blocked scanner answered"
    options scan-other 127.0.0.3 || die "OPTIONS from another source not answered"
    grep -q 'event=acl_deny src=127.0.0.2 listener=sip-udp port='"$P_PORT"' group=dynamic' "$LOG" ||
        die "no acl_deny group=dynamic for 127.0.0.2"
    # the group forgets the scanner after [detect] block seconds
    local deadline=$((t0 + BLOCK + $(scaled 20)))
    until options scan-after 127.0.0.2; do
        [ "$(date +%s)" -lt $deadline ] || die "127.0.0.2 still blocked long after $BLOCK s"
        sleep 1
    done
    say "scanner passed (allowed again after $(($(date +%s) - t0)) s)"
    stop_ims
}

t_sweep() {
    need sipp ss timeout openssl
    start_ims
    local secs rc=0
    secs=$(scaled 30)
    (cd "$OUT" && timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" -sf "$HERE/sipp/sec_sweep.xml" \
        -i 127.0.0.4 -p "$UE_PORT" -key realm "$REALM" -m 30 -r 20 -nostdin \
        -trace_stat -stf sweep.stat.csv -fd 1 -timeout "${secs}s" >sweep.out 2>&1) || rc=$?
    say "sweep: sipp exit $rc"
    wait_log 'event=attack_detected kind=sweep src=127\.0\.0\.4 '
    audit_detect sweep 127.0.0.4
    ! options sweep-denied 127.0.0.4 || die "OPTIONS from the sweeping source answered"
    options sweep-other 127.0.0.3 || die "OPTIONS from another source not answered"
    say "sweep passed"
    stop_ims
}

t_malformed() {
    need sipp ss timeout python3 openssl
    start_ims
    python3 "$HERE/sec_peer.py" junk 127.0.0.5 127.0.0.1 "$P_PORT" 15 >"$OUT/junk.out" 2>&1 ||
        die "sec_peer.py junk: $(cat "$OUT/junk.out")"
    wait_log 'event=attack_detected kind=malformed src=127\.0\.0\.5 '
    audit_detect malformed 127.0.0.5
    ! options bad-denied 127.0.0.5 || die "OPTIONS from the malformed source answered"
    options bad-other 127.0.0.3 || die "OPTIONS from another source not answered"
    say "malformed passed"
    stop_ims
}

t_metrics() {
    need sipp ss timeout curl svmap openssl
    start_ims
    scrape m0 || die "GET /metrics failed"
    grep -q '^# TYPE imscloud_detections_total counter$' "$OUT/m0.prom" || die "no TYPE line"
    grep -q '^# HELP imscloud_sip_requests_received_total ' "$OUT/m0.prom" || die "no HELP line"
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$M_PORT/other")
    [ "$code" = 404 ] || die "GET /other: $code"
    options m-ok 127.0.0.3 || die "OPTIONS not answered"
    register_alice || die "alice's REGISTER failed"
    HOME=$TMP timeout -k 5 "$(scaled 60)" svmap -b 127.0.0.2 -x 127.0.0.2 -p "$P_PORT" -t 0.05 \
        127.0.0.1 >"$OUT/svmap.out" 2>&1 || true
    wait_log 'event=attack_detected kind=scanner src=127\.0\.0\.2 '
    ! options m-denied 127.0.0.2 || die "OPTIONS from the blocked scanner answered"
    # a source in the deny group cannot scrape either (the HTTP listener checks it)
    if curl -sS --max-time "$(scaled 3)" --interface 127.0.0.2 \
        "http://127.0.0.1:$M_PORT/metrics" >"$OUT/denied.prom" 2>"$OUT/denied.err"; then
        die "the blocked source scraped /metrics"
    fi
    scrape m1 || die "GET /metrics failed after the scan"
    local s
    for s in 'imscloud_sip_requests_received_total{method="OPTIONS"}' imscloud_detections_total \
        imscloud_detect_blocks_total imscloud_acl_dynamic_denied_total \
        'imscloud_acl_denied_total{listener="sip-udp"}' 'imscloud_acl_denied_total{listener="http"}'; do
        local a b
        a=$(metric "$OUT/m0.prom" "$s")
        b=$(metric "$OUT/m1.prom" "$s")
        say "metrics: $s $a -> $b"
        [ "$b" -gt "$a" ] || die "$s did not move ($a -> $b)"
    done
    [ "$(metric "$OUT/m1.prom" imscloud_acl_dynamic_sources)" = 1 ] || die "acl_dynamic_sources != 1"
    [ "$(metric "$OUT/m1.prom" imscloud_registrations_active)" -ge 1 ] || die "registrations_active is 0"
    [ "$(metric "$OUT/m1.prom" imscloud_auth_successes_total)" -ge 1 ] || die "auth_successes_total is 0"
    grep -q '^imscloud_sip_transactions_live [0-9]' "$OUT/m1.prom" || die "no sip_transactions_live"
    # the HSS's identity cache: alice's second UAR and her SAR found her rows
    [ "$(metric "$OUT/m1.prom" imscloud_hss_cache_hits_total)" -ge 1 ] || die "hss_cache_hits_total is 0"
    [ "$(metric "$OUT/m1.prom" imscloud_hss_cache_capacity)" -ge 1 ] || die "hss_cache_capacity is 0"
    # what top -H and perf --per-thread show: the workers and the HSS threads by name
    local comms
    comms=$(cat /proc/"$IMS_PID"/task/*/comm | sort | tr '\n' ' ')
    say "threads: $comms"
    local t
    for t in ims-w0 ims-hss ims-store-flush ims-audit; do
        case " $comms" in *" $t "*) ;; *) die "no thread named $t" ;; esac
    done
    say "metrics passed"
    stop_ims
}

# s_client NAME ARGS...: a handshake with the TLS listener; 0 when it completed
s_client() {
    local name=$1
    shift
    timeout -k 2 "$(scaled 10)" openssl s_client -connect "127.0.0.1:$T_PORT" "$@" </dev/null \
        >"$OUT/$name.out" 2>&1 || return 1
    grep -qE '^New, TLSv1\.[23], Cipher is [A-Z]' "$OUT/$name.out"
}

t_tls() {
    need ss timeout openssl
    start_ims
    ! s_client tls11 -tls1_1 || die "a TLS 1.1 handshake completed"
    say "TLS 1.1: refused ($(grep -m1 -iE 'alert|error' "$OUT/tls11.out" | cut -c1-120))"
    ! s_client weak -tls1_2 -cipher AES128-SHA || die "TLS 1.2 with AES128-SHA completed"
    say "TLS 1.2 AES128-SHA: refused"
    ! s_client cbc -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256 || die "TLS 1.2 with a CBC suite completed"
    say "TLS 1.2 ECDHE-ECDSA-AES128-SHA256: refused"
    s_client tls12 -tls1_2 || die "TLS 1.2 default handshake failed: $(tail -n 5 "$OUT/tls12.out")"
    grep -qE 'ECDHE.*(GCM|CHACHA20)' "$OUT/tls12.out" || die "TLS 1.2 suite not ECDHE+AEAD"
    s_client tls13 -tls1_3 || die "TLS 1.3 handshake failed"
    say "TLS 1.2: $(grep -m1 '^New,' "$OUT/tls12.out"); TLS 1.3: $(grep -m1 '^New,' "$OUT/tls13.out")"
    say "tls passed"
    stop_ims
}

# A P-CSCF alone whose I-CSCF is `openssl s_server` requiring a client
# certificate: the REGISTER goes out over TLS with [sip] tls_client_cert
# (not the listener's tls_cert, which s_server would refuse).
t_mtls_client() {
    need sipp ss timeout openssl
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/sec-e2e.XXXXXX")
    trap '[ -z "${SRV_PID:-}" ] || kill "$SRV_PID" 2>/dev/null || true; stop_ims >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
    pick_ports P_PORT T_PORT X_PORT UE_PORT
    mkcert srv icscf.ims.test
    mkcert tls pcscf-server.ims.test
    mkcert cli pcscf-client.ims.test
    # the I-CSCF stand-in trusts exactly that client certificate; its stdin
    # is a FIFO we hold open (at EOF on stdin s_server closes the connection)
    mkfifo "$TMP/srv.in"
    exec 7<>"$TMP/srv.in"
    openssl s_server -accept "127.0.0.1:$X_PORT" -cert "$TMP/srv.crt" -key "$TMP/srv.key" \
        -Verify 1 -verify_return_error -CAfile "$TMP/cli.crt" -naccept 1 -crlf \
        <"$TMP/srv.in" >"$OUT/s_server.out" 2>&1 &
    SRV_PID=$!
    cat >"$TMP/ims.conf" <<EOF
[core]
workers = 1
roles = pcscf
state_dir = $TMP
log_level = info

[sip]
listen = udp:127.0.0.1:$P_PORT
listen = tls:127.0.0.1:$T_PORT
tls_cert = $TMP/tls.crt
tls_key = $TMP/tls.key
tls_client_cert = $TMP/cli.crt
tls_client_key = $TMP/cli.key

[pcscf]
ports = $P_PORT
icscf = sip:127.0.0.1:$X_PORT;transport=tls

[audit]
enabled = no
EOF
    LOG=$OUT/ims.log
    local deadline=$(($(date +%s) + $(scaled 10)))
    until tcp_bound "$X_PORT"; do
        [ "$(date +%s)" -lt $deadline ] || die "openssl s_server did not listen"
        sleep 0.1
    done
    "$IMS_BIN" -c "$TMP/ims.conf" </dev/null >"$LOG" 2>&1 &
    IMS_PID=$!
    deadline=$(($(date +%s) + $(scaled 20)))
    until udp_bound "$P_PORT"; do
        kill -0 "$IMS_PID" 2>/dev/null || die "imscloud exited at start"
        [ "$(date +%s)" -lt $deadline ] || die "imscloud did not open its listeners"
        sleep 0.1
    done
    local secs uac rc=0
    secs=$(scaled 20)
    (cd "$OUT" && exec timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" \
        -sf "$HERE/sipp/sec_register_403.xml" -i 127.0.0.1 -p "$UE_PORT" -key realm "$REALM" -m 1 \
        -nostdin -timeout "${secs}s" -timeout_error >uac.out 2>&1) &
    uac=$!
    deadline=$(($(date +%s) + $(scaled 10)))
    until grep -q '^REGISTER sip:' "$OUT/s_server.out"; do
        [ "$(date +%s)" -lt $deadline ] || die "no REGISTER reached s_server over TLS: $(cat "$OUT/s_server.out")"
        sleep 0.1
    done
    grep -q 'CN *= *pcscf-client.ims.test' "$OUT/s_server.out" ||
        die "s_server saw no client certificate: $(head -n 20 "$OUT/s_server.out")"
    say "s_server: $(grep -m1 'CN *= *pcscf-client' "$OUT/s_server.out")"
    # answer it (403), so that no transaction is left at the stop
    awk 'BEGIN { print "SIP/2.0 403 Forbidden" }
         /^REGISTER sip:/ { on = 1; next }
         on && /^\r?$/ { exit }
         on && /^(Via|From|Call-ID|CSeq):/ { sub(/\r$/, ""); print }
         on && /^To:/ { sub(/\r$/, ""); print $0 ";tag=srv" }
         END { print "Content-Length: 0"; print "" }' "$OUT/s_server.out" >"$OUT/answer.txt"
    cat "$OUT/answer.txt" >&7
    wait $uac || rc=$?
    [ "$rc" = 0 ] || die "the 403 did not come back through the TLS connection (sipp exit $rc)"
    kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
    say "mtls_client passed"
    stop_ims
}

t_tls_reload() {
    need ss timeout openssl python3
    start_ims
    local fp_old fp_new fp_seen go=$TMP/go hold rc=0
    fp_old=$(fp_of_file "$TMP/tls.crt")
    SEC_PEER_TIMEOUT=$(scaled 10) python3 "$HERE/sec_peer.py" tls-hold 127.0.0.1 "$T_PORT" "$go" \
        >"$OUT/hold.out" 2>&1 &
    hold=$!
    local deadline=$(($(date +%s) + $(scaled 15)))
    until grep -q '^ready ' "$OUT/hold.out"; do
        kill -0 $hold 2>/dev/null || die "held TLS connection failed: $(cat "$OUT/hold.out")"
        [ "$(date +%s)" -lt $deadline ] || die "held TLS connection not ready"
        sleep 0.1
    done
    [ "$(awk '/^ready/ { print $2 }' "$OUT/hold.out")" = "$fp_old" ] || die "held connection saw another certificate"
    # new key and certificate in place (rename: the files change at once), then SIGHUP
    mkcert new pcscf2.ims.test
    fp_new=$(fp_of_file "$TMP/new.crt")
    [ "$fp_new" != "$fp_old" ] || die "openssl made the same certificate twice"
    mv "$TMP/new.key" "$TMP/tls.key"
    mv "$TMP/new.crt" "$TMP/tls.crt"
    local before
    before=$(grep -c 'event=tls_reloaded' "$LOG" || true)
    kill -HUP "$IMS_PID"
    deadline=$(($(date +%s) + $(scaled 10)))
    until [ "$(grep -c 'event=tls_reloaded' "$LOG" || true)" -gt "$before" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "no event=tls_reloaded after SIGHUP"
        sleep 0.05
    done
    s_client after -tls1_3 || die "handshake after the reload failed"
    fp_seen=$(openssl x509 -noout -fingerprint -sha256 <"$OUT/after.out" | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
    say "certificate before $fp_old, file now $fp_new, new connection sees $fp_seen"
    [ "$fp_seen" = "$fp_new" ] || die "a new connection does not see the new certificate"
    touch "$go"
    wait $hold || rc=$?
    say "held connection: $(tail -n 1 "$OUT/hold.out")"
    [ "$rc" = 0 ] || die "the established TLS connection broke with the reload"
    # a bad file keeps the certificate in force
    echo garbage >"$TMP/tls.crt"
    kill -HUP "$IMS_PID"
    wait_log 'event=tls_reload_failed action=kept_previous'
    s_client after-bad -tls1_2 || die "handshake after a failed reload"
    say "tls_reload passed"
    stop_ims
}

TESTS=(scanner sweep malformed metrics tls mtls_client tls_reload) # at most 10: one port block each
name=${1:?usage: sec_e2e.sh ${TESTS[*]}}
: "${IMS_BIN:?}" "${IMS_SEED:?}" "${SEC_E2E_STATE:?}"
PORT_BLOCK=
for i in "${!TESTS[@]}"; do [ "${TESTS[$i]}" = "$name" ] && PORT_BLOCK=$i; done
[ -n "$PORT_BLOCK" ] || { echo "unknown test $name" >&2; exit 2; }
OUT=$SEC_E2E_STATE/$name
rm -rf "$OUT"
mkdir -p "$OUT"
"t_$name"
