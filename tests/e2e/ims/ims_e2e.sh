#!/usr/bin/env bash
# tests/e2e/ims/ims_e2e.sh - IMS registration end to end: sipp UEs register
# through the P-CSCF, I-CSCF and S-CSCF against the HSS (CTest label e2e;
# docs/internals/cscf.md).
#
#   ims_e2e.sh setup FIXTURE       seed a store, start the fixture (FIXTURES_SETUP)
#   ims_e2e.sh cleanup FIXTURE     SIGTERM it; fail unless every process exits 0
#                                  with a clean log
#   ims_e2e.sh test NAME FIXTURE   run one test (sipp UEs on the P-CSCF)
#   ims_e2e.sh hss_down            P, I and S with an HSS that never answers:
#                                  503 with Retry-After within the bounded time
#   ims_e2e.sh local_hops          the transactions one registration leaves alive,
#                                  with in-process hops and with kernel UDP ones
#   ims_e2e.sh local_batch         users register through one process, at once and
#                                  at a steady rate: all succeed, their Cx requests
#                                  ran in batches ([hss] batch_window_ms)
#   ims_e2e.sh icscf_dns           the P-CSCF finds its I-CSCF by DNS SRV (dnsmasq)
#   ims_e2e.sh ims_names           four processes whose CSCFs are known by host
#                                  names (dnsmasq): registration and a call, its
#                                  ACK along a route set of names
#
# Fixtures (127.0.0.1, or ::1 for ims6 and ims46; free ports from 28000-28989):
#   ims1  one imscloud, roles pcscf,icscf,scscf,hss: Cx in-process
#   ims4  four imscloud processes (hss, pcscf, icscf, scscf): Cx over Diameter
#   ims6  ims1 on IPv6 (t_ipv6.sh): the I- and S-CSCF on ::1 only, the
#         P-CSCF on ::1 and 127.0.0.1 (a dual-stack edge); the UEs on ::1
#         unless a test says otherwise
#   ims46 ims4 on IPv6 likewise, Diameter too (t_ipv6.sh)
#   UE --SIP--> P-CSCF :P --SIP--> I-CSCF :I --SIP--> S-CSCF :S
#                                    | Cx (UAR)          | Cx (MAR, SAR)
#                                    +------> HSS :DIA <--+
#
# Tests (each asserts on sipp's exit code and statistics, never on log text):
#   register_md5     alice, Digest MD5 (algorithm hint in the first REGISTER);
#                    the 200 has Service-Route ;orig, P-Associated-URI, Path, Contact
#   register_sha256  carol (SHA-256 HA1 only), Digest SHA-256 (sha256_auth.sh)
#   register_both    alice without a hint: the 401 has SHA-256 then MD5
#   register_aka     bob, Digest AKAv1-MD5 (RES vs XRES)
#   reregister       alice twice from one contact: one binding (RE_REGISTRATION)
#   deregister       alice, then Expires: 0: the 200 lists no Contact
#   wrong_password   dave: 401, 401, 401, then 403 ([scscf] auth_max_failures = 3)
#   stale_nonce      erin answers after nonce_ttl (3 s): 401 stale=true, then 200
#   unknown_user     nobody (UAA user unknown): 401, 401, 401, 403 like wrong_password
#   barred           frank (whole implicit set barred): 403
#   barred_member    greta's barred IMPU (her set has an unbarred one): 401, then
#                    403 Identity Barred from the S-CSCF after its SAR, and the HSS
#                    holds the IMPU not registered again (imscloudctl impu show)
#   not_registered   a MESSAGE from a UE that never registered: 403 from the P-CSCF;
#                    a BYE from it with a To tag but no Route to us: 403 too, and
#                    again once nora registered from that port (no dialog of ours)
#   malformed        bad Contact, bad Expires (sipp), no To, no From, broken
#                    Authorization (sip_send, to P, I and S): 400 each, from the port
#                    it was sent to, and the CSCF still answers
#   register_tcp     alice over TCP (the flow is the TCP connection)
#   lir              MESSAGEs from another network to the I-CSCF: unknown user 404,
#                    not registered 480; bob registered (AKA): LIR -> S-CSCF ->
#                    Path -> P-CSCF -> bob's flow, where a sipp UAS answers 200
#   implicit_set     alice registers sip:alice@ims.test; a MESSAGE to
#                    tel:+15550001 (same implicit set) reaches her contact
#   max_contacts     maxc registers five contacts, then a sixth: the one
#                    expiring first is replaced ([scscf] max_contacts = 5);
#                    Contact: * with Expires: 0 removes them all
#   expiry           dave registers for 2 s; after the sweep's SAR
#                    TIMEOUT_DEREGISTRATION a MESSAGE to him gets 480 (LIA)
#   local_hops       own processes: one registration through P, I and S of ONE
#                    process (one worker, /metrics on): the hops between the roles
#                    are in-process and timed as reliable, so only the P-CSCF's two
#                    transactions with the UE (UDP, Timer J) are left alive; with
#                    [sip] local_delivery = no the I- and S-CSCF keep theirs too
#   hss_slow (ims4)  the HSS process is stopped (SIGSTOP): a REGISTER gets 503 with
#                    Retry-After within the I-CSCF's hss_timeout_ms; after SIGCONT
#                    (the late UAA is dropped) registration works again
#
# Environment (CMake passes the first five): IMS_BIN, IMS_SEED, IMS_E2E_STATE,
# IMS_E2E_TOOLS (dir of sip_send), IMS_AKA_USIM (aka_usim, t_aka.sh), IMS_E2E_LOG_LEVEL (default info),
# IMS_TEST_TIMEOUT_MULTIPLIER, CI=true (a skip fails).
# Logs stay in $IMS_E2E_STATE/<fixture>/: one log per process, per test the sipp
# statistics, messages and errors.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
# shellcheck source=tests/e2e/lib.sh
. "$HERE/../lib.sh"
# per-topic tests (functions t_<name>, see runtest); sourced, so they share
# this file's helpers (ue, peer, register, deliver_to...)
for _t in "$HERE"/t_*.sh; do
    # shellcheck disable=SC1090
    [ -e "$_t" ] && . "$_t"
done
unset _t
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "missing tool '$t'"
    done
}
STATE_ROOT=${IMS_E2E_STATE:-${TMPDIR:-/tmp}/imscloud-e2e-state}
REALM=ims.test
# freeDiameter/GnuTLS leak one buffer at exit (see tests/e2e/hss/lsan.supp)
export LSAN_OPTIONS="suppressions=$HERE/../hss/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

say() { printf 'e2e-ims: %s\n' "$*"; }
die() {
    printf 'e2e-ims: FAIL: %s\n' "$*" >&2
    exit 1
}
SKIP_MARK=
skip() {
    if [ -n "$SKIP_MARK" ]; then printf '%s\n' "$*" >"$SKIP_MARK"; fi
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'e2e-ims: SKIP: %s\n' "$*"
    exit 77
}

# Each fixture picks from its own 99-port block of 28000-28989, so that two
# fixtures running side by side (ctest -j) never pick the same UE port: a UE
# port is reserved for the fixture's lifetime but bound only while a sipp
# runs, so "is it bound" alone cannot tell.  IMS_E2E_PORT_BLOCK overrides
# (a harness that runs its own copy of a fixture: tests/e2e/audit).
port_block() {
    case ${IMS_E2E_PORT_BLOCK:-$fix} in
    ims1) echo 0 ;; ims4) echo 1 ;; imsk) echo 2 ;; imsk4) echo 3 ;; imsut) echo 4 ;;
    imsos) echo 5 ;; hss_down | local_hops) echo 6 ;; ims6) echo 8 ;; ims46) echo 9 ;;
    [0-9]) echo "$IMS_E2E_PORT_BLOCK" ;; *) echo 7 ;;
    esac
}

# pick_ports NAME...: one free port per name, from the fixture's block
pick_ports() {
    # the fixture's own ports are taken even while nothing is bound to them
    # (the UE ports between two sipp runs)
    local taken=" ${P_PORT:-} ${PT_PORT:-} ${I_PORT:-} ${S_PORT:-} ${DIA_PORT:-} ${UE_PORT:-} ${UE2_PORT:-} ${M_PORT:-} " p tries=0 name
    local lo=$((28000 + 99 * $(port_block)))
    local hi=$((lo + 98))
    # and so are the last 60 ports handed out to any test of this fixture
    # (tests run side by side): a port chosen but not bound yet, or still
    # named by a finished test's iFC or contact, would bring another test's
    # request to this one's sipp (seen: an INVITE for an AS of sess_ifc_as
    # at thirdparty_fail's AS)
    local recent=${FIXDIR:-}/ports.recent lockfd=
    if [ -n "${FIXDIR:-}" ] && [ -d "$FIXDIR" ]; then
        exec {lockfd}>>"$recent.lock"
        flock "$lockfd"
        : >>"$recent"
        taken="$taken$(tail -n 60 "$recent" | tr '\n' ' ') "
    fi
    p=$((lo + RANDOM % 99))
    for name in "$@"; do
        while :; do
            tries=$((tries + 1))
            [ $tries -lt 1000 ] || die "no free ports in $lo-$hi"
            p=$((p + 1))
            [ $p -le $hi ] || p=$lo
            case $taken in *" $p "*) continue ;; esac
            port_busy "$p" && continue
            break
        done
        printf -v "$name" '%s' "$p"
        taken="$taken$p "
        [ -z "$lockfd" ] || echo "$p" >>"$recent"
    done
    if [ -n "$lockfd" ]; then
        flock -u "$lockfd"
        exec {lockfd}>&-
    fi
}

# ---------------------------------------------------------------- processes

# start NAME CONF: imscloud in its own session, under a wrapper that records
# its pid ($FIXDIR/NAME.pid) and, when it ends, its exit code (NAME.rc)
start() {
    local name=$1 conf=$2
    "$IMS_BIN" -c "$conf" --check-config >"$FIXDIR/$name.check" 2>&1 ||
        die "imscloud --check-config rejected $name: $(cat "$FIXDIR/$name.check")"
    rm -f "$FIXDIR/$name.pid" "$FIXDIR/$name.rc"
    setsid bash -c '
        dir=$1 name=$2; shift 2
        "$@" </dev/null >"$dir/$name.log" 2>&1 &
        echo $! >"$dir/$name.pid.tmp" && mv "$dir/$name.pid.tmp" "$dir/$name.pid"
        wait $! && rc=0 || rc=$?
        echo $rc >"$dir/$name.rc.tmp" && mv "$dir/$name.rc.tmp" "$dir/$name.rc"
    ' ims-e2e-wrapper "$FIXDIR" "$name" "$IMS_BIN" -c "$conf" </dev/null >/dev/null 2>&1 &
    local deadline=$(($(date +%s) + $(scaled 10)))
    until [ -s "$FIXDIR/$name.pid" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "the $name wrapper did not start"
        sleep 0.05
    done
}

alive() { [ -s "$FIXDIR/$1.pid" ] && [ ! -e "$FIXDIR/$1.rc" ] && kill -0 "$(cat "$FIXDIR/$1.pid")" 2>/dev/null; }

wait_for() { # SECONDS WHAT CMD...
    local secs=$1 what=$2 p
    shift 2
    local deadline=$(($(date +%s) + $(scaled "$secs")))
    until "$@"; do
        for p in $PROCS; do
            [ -e "$FIXDIR/$p.rc" ] &&
                die "the $p exited while waiting for $what: $(tail -5 "$FIXDIR/$p.log")"
        done
        [ "$(date +%s)" -lt $deadline ] || die "timed out waiting for $what"
        sleep 0.1
    done
}
udp_bound() { [ -n "$(ss -Hlnu "sport = :$1")" ]; }
tcp_bound() { [ -n "$(ss -Hlnt "sport = :$1")" ]; }
dia_conns() { ss -Htn state established "( sport = :$DIA_PORT )" | grep -c . || true; }
two_peers() { [ "$(dia_conns)" -ge 2 ]; }

# stop NAME: SIGTERM, wait for the wrapper's exit code; prints why it is not
# a clean stop (exit 0, a stop line, no sanitizer report), nothing if it is.
stop() {
    local name=$1 pid rc
    [ -s "$FIXDIR/$name.pid" ] || return 0
    pid=$(cat "$FIXDIR/$name.pid")
    if [ ! -e "$FIXDIR/$name.rc" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$(($(date +%s) + $(scaled 20)))
        while [ ! -e "$FIXDIR/$name.rc" ]; do
            if [ "$(date +%s)" -ge $deadline ]; then
                kill -KILL "$pid" 2>/dev/null || true
                rm -f "$FIXDIR/$name.pid"
                echo "$name: no exit after SIGTERM"
                return 0
            fi
            sleep 0.1
        done
    fi
    rc=$(cat "$FIXDIR/$name.rc")
    rm -f "$FIXDIR/$name.pid" "$FIXDIR/$name.rc"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$FIXDIR/$name.log"; then
        echo "$name: sanitizer report in $FIXDIR/$name.log"
    elif ! grep -q 'event=stopped' "$FIXDIR/$name.log"; then
        echo "$name: no clean stop in $FIXDIR/$name.log"
    elif grep -q 'event=requests_abandoned_at_stop' "$FIXDIR/$name.log"; then
        # tests stop an idle fixture: a request still open is one that hung
        echo "$name: requests still in progress at the stop in $FIXDIR/$name.log"
    elif [ "$rc" != 0 ]; then
        echo "$name: exit status $rc"
    fi
}

# stop_checked NAME: stop NAME and fail (printing why) unless the stop was
# clean; its log is kept in $OUT, one copy per stop (tests that restart a
# process: t_persist.sh, t_scscfsel.sh)
stop_checked() {
    local name=$1 out
    out=$(stop "$name")
    cp "$FIXDIR/$name.log" "$OUT/$name.$(date +%s%N).log" 2>/dev/null || true
    [ -z "$out" ] || {
        tail -n 30 "$FIXDIR/$name.log" >&2
        say "FAIL: $out"
        return 1
    }
}

dump_logs() {
    local p
    for p in $PROCS; do
        [ -f "$FIXDIR/$p.log" ] || continue
        echo "---- $p.log (last ${1:-30} lines)" >&2
        tail -n "${1:-30}" "$FIXDIR/$p.log" >&2
    done
}

# ---------------------------------------------------------------- configs

common_sip() { # the [sip] and CSCF sections for the roles in $1 (one process or one role)
    local roles=$1
    local h=$HOST
    echo "[sip]"
    case ",$roles," in *,pcscf,*) printf 'listen = udp:%s:%s\nlisten = tcp:%s:%s\n' "$h" "$P_PORT" "$h" "$P_PORT" ;; esac
    case ",$roles,$h" in *,pcscf,*:*) printf 'listen = udp:127.0.0.1:%s\nlisten = tcp:127.0.0.1:%s\n' "$P_PORT" "$P_PORT" ;; esac # ims6: the edge takes IPv4 UEs too
    case ",$roles,${PT_PORT:-}" in *,pcscf,*[0-9]) printf 'listen = tls:%s:%s\ntls_cert = %s\ntls_key = %s\n' "$h" "$PT_PORT" "$TMP/certs/server.pem" "$TMP/certs/server.key" ;; esac # t_baresip.sh, t_secagree.sh
    case ",$roles," in *,icscf,*) printf 'listen = udp:%s:%s\n' "$h" "$I_PORT" ;; esac
    case ",$roles," in *,scscf,*) printf 'listen = udp:%s:%s\n' "$h" "$S_PORT" ;; esac
    echo
    case ",$roles," in *,pcscf,*) printf '[pcscf]\nports = %s%s\nicscf = sip:%s:%s\nflow_timer = 5\n\n' "$P_PORT" "${PT_PORT:+,$PT_PORT}" "$h" "$I_PORT" ;; esac # flow_timer: t_outbound.sh, t_baresip.sh
    case ",$roles," in *,icscf,*) printf '[icscf]\nports = %s\nhss_timeout_ms = %s\n\n' "$I_PORT" "$(scaled 2000)" ;; esac
    case ",$roles," in *,icscf,*,scscf,* | *,scscf,*,icscf,*) ;; *,icscf,*) printf '[icscf]\nscscf = sip:%s:%s\n\n' "$h" "$S_PORT" ;; esac # t_lockout.sh: unknown users' decoy S-CSCF
    case ",$roles," in *,scscf,*)
        printf '[scscf]\nports = %s\nuri = sip:%s:%s\nnonce_ttl = 3\nauth_max_failures = 3\n' "$S_PORT" "$h" "$S_PORT"
        printf 'as_timeout_ms = %s\n%s\n' "$(scaled 1000)" "$(case ",$roles," in *,icscf,*) ;; *) echo "icscf = sip:$h:$I_PORT" ;; esac)" # t_sessions.sh; ims1: its own I-CSCF by default
        printf 'min_expires = 1\nhss_timeout_ms = %s\ncontact_ring_s = %s\n\n' "$(scaled 2000)" "$(scaled 2)" # t_sessions.sh sess_ring_out
        ;;
    esac
}

write_conf() { # FILE ROLES STATE DIA_IDENTITY [peer]
    local f=$1 roles=$2 state=$3 id=$4 peer=${5:-}
    {
        printf '[core]\nworkers = 2\nroles = %s\nstate_dir = %s\nlog_level = %s\n\n' \
            "$roles" "$state" "${IMS_E2E_LOG_LEVEL:-info}"
        if [ "$roles" != hss ]; then common_sip "$roles"; fi
        printf '[diameter]\nidentity = %s\nrealm = %s\nlisten = %s\nport = %s\ntc_timer = 2\n' \
            "$id" "$REALM" "$ADDR" "$DIA_PORT"
        if [ -n "$peer" ]; then printf 'peer = hss.ims.test %s:%s\n' "$HOST" "$peer"; fi
    } >"$f"
}

# metrics_conf FILE: the fixture's P-CSCF serves /metrics on M_PORT
# (t_outbound.sh, t_baresip.sh: STUN keep-alives answered)
metrics_conf() { printf '\n[metrics]\nlisten = 127.0.0.1:%s\n' "$M_PORT" >>"$1"; }

# trust_conf FILE: in four processes the I- and S-CSCF know the P- and
# I-CSCF as peers of the trust domain by their ports (t_integrity.sh: only
# from them is integrity-protected believed); the UEs' ports stay outside
trust_conf() { printf '\n[privacy]\ntrusted = %s:%s,%s:%s\n' "$HOST" "$P_PORT" "$HOST" "$I_PORT" >>"$1"; }

# stun_answered: the P-CSCF's imscloud_stun_answered_total (its /metrics)
stun_answered() {
    curl -sf "http://127.0.0.1:$M_PORT/metrics" |
        awk '$1 == "imscloud_stun_answered_total" { print $2; f = 1 } END { if (!f) exit 1 }'
}

# ---------------------------------------------------------------- setup / cleanup

cmd=${1:?usage}
case $cmd in
test)
    name=${2:?usage: test NAME FIXTURE}
    fix=${3:?usage: test NAME FIXTURE}
    ;;
setup | cleanup) fix=${2:?usage} ;;
hss_down | local_hops | local_batch | icscf_dns | ims_names) fix=$cmd ;;
*) die "usage: $0 setup|cleanup FIXTURE | test NAME FIXTURE | hss_down | local_hops | local_batch | icscf_dns | ims_names" ;;
esac
FIXDIR=$STATE_ROOT/$fix
ENVF=$FIXDIR/env
case $fix in
ims1 | ims6 | hss_down | local_hops | local_batch | icscf_dns) PROCS=ims ;;
ims_names) PROCS="hss pcscf icscf scscf" ;;
imsk) PROCS=ims ;; # t_bearer.sh: ims1 plus the Keystone fixture ([keystone], a policy)
imsk4) PROCS="hss pcscf icscf scscf" ;; # t_bearer.sh: ims4 plus the Keystone fixture
imsut) PROCS=ims ;; # t_ut.sh: ims1 plus [ut] and the Keystone fixture
imsos) PROCS=ims ;; # t_cloudas.sh: ims1 plus the cloud AS (role as) and the OpenStack fixture
ims4 | ims46) PROCS="hss pcscf icscf scscf" ;;
*) die "unknown fixture $fix" ;;
esac
# the configuration imscloudctl reaches the fixture's HSS store by
hss_conf() { case " $PROCS " in *" hss "*) echo "$TMP/hss.conf" ;; *) echo "$TMP/ims.conf" ;; esac; }
# The address the fixture's SIP listens on and its UEs send from: ADDR as
# sipp -i takes it, HOST as a SIP URI writes it (RFC 3261 §19.1.1: an IPv6
# reference in brackets).  A test may set UE_ADDR for one UE of another
# family (t_ipv6.sh: an IPv4 UE at ims6's dual-stack P-CSCF).
uri_host() { case $1 in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }
case $fix in
ims6 | ims46) ADDR=::1 ;;
*) ADDR=127.0.0.1 ;;
esac
HOST=$(uri_host "$ADDR")

setup() {
    mkdir -p "$FIXDIR"
    SKIP_MARK=$FIXDIR/skipped
    rm -f "$SKIP_MARK"
    need sipp ss awk setsid timeout sha256sum perl
    # a kernel without IPv6 (ipv6.disable=1) cannot run ims6: say so
    [ "$ADDR" = 127.0.0.1 ] || (exec 3<>"/dev/udp/$ADDR/9") 2>/dev/null ||
        skip "no IPv6 on this machine ($ADDR): fixture $fix needs it"
    [ -x "${IMS_BIN:-}" ] || die "IMS_BIN not set or not executable"
    [ -x "${IMS_SEED:-}" ] || die "IMS_SEED not set or not executable (the ims_seed target)"
    local p
    for p in $PROCS; do stop "$p" >/dev/null || true; done
    local old
    old=$(sed -n 's/^TMP=//p' "$ENVF" 2>/dev/null || true)
    [ -n "$old" ] && rm -rf "$old"
    rm -f "$FIXDIR"/*.log "$FIXDIR"/*.pid "$ENVF"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-e2e.XXXXXX")
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT UE2_PORT PT_PORT M_PORT
    mkdir -m 700 "$TMP/hss" "$TMP/p" "$TMP/i" "$TMP/s"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:$HOST:$S_PORT" \
        >"$FIXDIR/seed.log" 2>&1 || die "seeding failed: $(cat "$FIXDIR/seed.log")"
    printf 'TMP=%s\nP_PORT=%s\nI_PORT=%s\nS_PORT=%s\nDIA_PORT=%s\nUE_PORT=%s\nUE2_PORT=%s\n' \
        "$TMP" "$P_PORT" "$I_PORT" "$S_PORT" "$DIA_PORT" "$UE_PORT" "$UE2_PORT" >"$ENVF"
    echo "PT_PORT=$PT_PORT" >>"$ENVF" && "$HERE/../../../tools/dev-certs.sh" "$TMP/certs" # P-CSCF TLS
    echo "M_PORT=$M_PORT" >>"$ENVF"
    if [ "$fix" = ims1 ] || [ "$fix" = ims6 ] || [ "$fix" = imsk ] || [ "$fix" = imsut ] || [ "$fix" = imsos ]; then
        write_conf "$TMP/ims.conf" pcscf,icscf,scscf,hss "$TMP/hss" hss.ims.test
        metrics_conf "$TMP/ims.conf"
        [ "$fix" != imsk ] || kb_conf "$TMP/ims.conf" # t_bearer.sh
        [ "$fix" != imsk ] || kc_conf "$TMP/ims.conf" # t_kscred.sh
        [ "$fix" != imsut ] || ut_conf "$TMP/ims.conf" # t_ut.sh
        [ "$fix" != imsos ] || cas_conf "$TMP/ims.conf" # t_cloudas.sh
        start ims "$TMP/ims.conf"
    else
        write_conf "$TMP/hss.conf" hss "$TMP/hss" hss.ims.test
        write_conf "$TMP/pcscf.conf" pcscf "$TMP/p" pcscf.ims.test
        metrics_conf "$TMP/pcscf.conf"
        write_conf "$TMP/icscf.conf" icscf "$TMP/i" icscf.ims.test "$DIA_PORT"
        write_conf "$TMP/scscf.conf" scscf "$TMP/s" scscf.ims.test "$DIA_PORT"
        trust_conf "$TMP/icscf.conf"
        trust_conf "$TMP/scscf.conf"
        [ "$fix" != imsk4 ] || kb_conf "$TMP/scscf.conf" # t_bearer.sh
        [ "$fix" != imsk4 ] || kc_conf "$TMP/hss.conf" keystone # t_kscred.sh
        start hss "$TMP/hss.conf"
        wait_for 20 "the HSS on Diameter port $DIA_PORT" tcp_bound "$DIA_PORT"
        start pcscf "$TMP/pcscf.conf"
        start icscf "$TMP/icscf.conf"
        start scscf "$TMP/scscf.conf"
        wait_for 20 "the I-CSCF and S-CSCF to connect to the HSS" two_peers
    fi
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the I-CSCF on udp $I_PORT" udp_bound "$I_PORT"
    wait_for 20 "the S-CSCF on udp $S_PORT" udp_bound "$S_PORT"
    say "fixture $fix up: P-CSCF $P_PORT, I-CSCF $I_PORT, S-CSCF $S_PORT, HSS diameter $DIA_PORT; logs in $FIXDIR"
}

cleanup() {
    [ -f "$ENVF" ] || {
        say "fixture $fix was not started"
        exit 0
    }
    # shellcheck disable=SC1090
    . "$ENVF"
    local p out bad=""
    # the Diameter clients first, the HSS last
    for p in $(echo "$PROCS" | tr ' ' '\n' | tac); do
        out=$(stop "$p")
        [ -z "$out" ] || bad="$bad
$out"
    done
    rm -rf "$TMP" "$ENVF"
    [ -z "$bad" ] || {
        dump_logs 20
        die "$bad"
    }
    say "fixture $fix stopped: every process exited 0 with a clean log"
}

# ---------------------------------------------------------------- sipp


# ue NAME PORT SCENARIO sipp-args...: one sipp UE against the P-CSCF in $OUT;
# passes when sipp exits 0 with 1 successful and 0 failed calls.
ue() {
    local name=$1 port=$2 sf=$3
    shift 3
    local secs rc=0 ok fail addr=${UE_ADDR:-$ADDR}
    secs=$(scaled 30)
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "$(uri_host "$addr"):$P_PORT" -sf "$HERE/sipp/$sf" \
        -i "$addr" -p "$port" -key realm "$REALM" -m 1 -nostdin \
        -trace_stat -stf "$name.stat.csv" -fd 1 -trace_msg -message_file "$name.msg" \
        -trace_err -error_file "$name.err.log" -trace_counts \
        -timeout "${secs}s" -timeout_error "$@" >"$name.out" 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    fail=$(sipp_stat "$OUT/$name.stat.csv" 'FailedCall(C)' 2>/dev/null || echo '?')
    say "$name: sipp exit $rc, successful $ok, failed $fail (want 0, 1, 0)"
    if [ "$rc" != 0 ] || [ "$ok" != 1 ] || [ "$fail" != 0 ]; then
        {
            echo "---- $name: SIP seen by sipp (all in $OUT/$name.msg)"
            grep -E '^(SIP/2\.0 [0-9]|[A-Z]+ sip:[^ ]* SIP/2\.0|WWW-Authenticate|Authorization)' \
                "$OUT/$name.msg" 2>/dev/null | head -n 30 || true
            echo "---- $name: sipp errors"
            head -n 20 "$OUT/$name.err.log" 2>/dev/null || true
        } >&2
        return 1
    fi
}

# peer NAME SCENARIO sipp-args...: a UAC of another network, sending to the I-CSCF
peer() {
    local name=$1 sf=$2
    shift 2
    local save=$P_PORT rc=0
    P_PORT=$I_PORT
    ue "$name" "$UE2_PORT" "$sf" "$@" || rc=$?
    P_PORT=$save
    return $rc
}

# deliver_to TARGET SCENARIO [UAS_SCENARIO]: a sipp UAS (message_uas.xml) on
# UE_PORT (the flow the last registration came from; on UAS_ADDR if set) and
# a MESSAGE to TARGET through the I-CSCF; both must succeed.
deliver_to() {
    local target=$1 sf=$2 uas=${3:-message_uas.xml} secs uas_pid rc=0 rc_uas=0 ok
    secs=$(scaled 20)
    (cd "$OUT" && exec timeout -k 5 "$((secs + 5))" sipp -sf "$HERE/sipp/$uas" \
        -i "${UAS_ADDR:-$ADDR}" -p "$UE_PORT" -m 1 -nostdin -trace_stat -stf uas.stat.csv -fd 1 \
        -trace_msg -message_file uas.msg -trace_err -error_file uas.err.log \
        -timeout "${secs}s" -timeout_error >uas.out 2>&1) &
    uas_pid=$!
    local deadline=$(($(date +%s) + $(scaled 10)))
    until udp_bound "$UE_PORT"; do
        kill -0 $uas_pid 2>/dev/null && [ "$(date +%s)" -lt $deadline ] ||
            die "the sipp UAS did not listen on $UE_PORT"
        sleep 0.1
    done
    peer deliver "$sf" -s "$target" || rc=1
    wait $uas_pid || rc_uas=$?
    ok=$(sipp_stat "$OUT/uas.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    say "uas: sipp exit $rc_uas, successful $ok (want 0, 1)"
    [ "$rc_uas" = 0 ] && [ "$ok" = 1 ] || rc=1
    return $rc
}

register() { # NAME SCENARIO USER PASSWORD EXPIRES [args]
    local name=$1 sf=$2 user=$3 pw=$4 exp=$5
    shift 5
    ue "$name" "$UE_PORT" "$sf" -s "$user" -au "$user@$REALM" -ap "$pw" -key expires "$exp" "$@"
}

runtest() {
    [ ! -f "$FIXDIR/skipped" ] || skip "the fixture was skipped: $(cat "$FIXDIR/skipped")"
    [ -f "$ENVF" ] || die "fixture $fix is not running (did its setup fail?)"
    # shellcheck disable=SC1090
    . "$ENVF"
    local p
    for p in $PROCS; do alive "$p" || die "the $p of fixture $fix is not running"; done
    OUT=$FIXDIR/$name
    rm -rf "$OUT"
    mkdir -p "$OUT"
    local rc=0
    case $name in
    register_md5)
        register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1 ;;
    register_sha256)
        ue reg "$UE_PORT" register_sha256.xml -s carol -key expires 600 -key pw carol-secret \
            -key helper "$HERE/sha256_auth.sh" || rc=1 ;;
    register_both)
        ue reg "$UE_PORT" register_both.xml -s alice -key expires 600 || rc=1 ;;
    register_aka)
        ue reg "$UE_PORT" register_aka.xml -s bob -au "bob@$REALM" -key expires 600 || rc=1 ;;
    reregister)
        register reg1 register.xml alice alice-secret 600 -key alg MD5 || rc=1
        register reg2 reregister.xml alice alice-secret 600 -key alg MD5 || rc=1
        ;;
    deregister)
        register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1
        register dereg deregister.xml alice alice-secret 0 -key alg MD5 || rc=1
        ;;
    wrong_password)
        register wrong register_wrong.xml dave not-dave-secret 600 || rc=1 ;;
    stale_nonce)
        register stale register_stale.xml erin erin-secret 600 || rc=1 ;;
    unknown_user) # t_lockout.sh: exactly what a known user's wrong password gets
        register unknown register_wrong.xml nobody any-password 600 || rc=1 ;;
    barred)
        ue barred "$UE_PORT" register_403.xml -s frank -key expires 600 || rc=1 ;;
    barred_member)
        ue barred "$UE_PORT" register_barred.xml -s greta-barred -au "greta@$REALM" \
            -ap greta-secret -key impi "greta@$REALM" -key expires 600 || rc=1
        # the S-CSCF's USER_DEREGISTRATION went out before its 403: wait for
        # the HSS to have it (over Diameter in ims4)
        local conf ctl state= i
        conf=$(hss_conf)
        ctl=$(dirname "$IMS_BIN")/imscloudctl
        for i in $(seq 1 50); do
            state=$("$ctl" -c "$conf" impu show "sip:greta-barred@$REALM" 2>&1) || true
            case $state in *not-registered*) break ;; esac
            sleep 0.1
        done
        case $state in
        *not-registered*) say "barred_member: the HSS holds greta-barred not registered" ;;
        *) echo "barred_member: the HSS still holds a registration: $state" >&2; rc=1 ;;
        esac
        ;;
    not_registered) # from a port no test registers from (UE2_PORT may be registered by now)
        local np
        pick_ports np
        ue msg "$np" message_unregistered.xml -s bob || rc=1
        ue bye "$np" bye_stray.xml -s bob || rc=1
        # registered from that port now: a BYE in no dialog of ours is still 403
        # (nora: no other test registers her, so her de-registration leaves
        # no binding, as deregister.xml checks)
        ue reg "$np" register.xml -s nora -au "nora@$REALM" -ap nora-secret \
            -key expires 600 -key alg MD5 || rc=1
        ue bye2 "$np" bye_stray.xml -s bob || rc=1
        ue dereg "$np" deregister.xml -s nora -au "nora@$REALM" -ap nora-secret \
            -key expires 0 -key alg MD5 || rc=1
        ;;
    malformed)
        ue bad "$UE_PORT" malformed.xml -s alice || rc=1
        local tools=${IMS_E2E_TOOLS:-}
        [ -x "$tools/sip_send" ] || die "IMS_E2E_TOOLS has no sip_send"
        # every role's port: each answer must come from the port it was sent to
        # (RFC 3581 §4), which in one process is not the first listener's
        local port
        for port in "$P_PORT" "$I_PORT" "$S_PORT"; do
            "$tools/sip_send" --host "$ADDR" --port "$port" --timeout-ms "$(scaled 3000)" \
                "$HERE"/malformed/*.sip >"$OUT/sip_send-$port.out" 2>&1 || {
                cat "$OUT/sip_send-$port.out" >&2
                rc=1
            }
            tail -n 1 "$OUT/sip_send-$port.out"
        done
        ;;
    register_tcp)
        register reg register.xml alice alice-secret 600 -key alg MD5 -t t1 || rc=1 ;;
    lir)
        peer unknown message_404.xml -s nobody || rc=1
        peer unreg message_480.xml -s frank || rc=1
        ue reg "$UE_PORT" register_aka.xml -s bob -au "bob@$REALM" -key expires 600 || rc=1
        deliver_to bob message_200.xml || rc=1
        ;;
    implicit_set)
        register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1
        deliver_to +15550001 message_tel.xml || rc=1
        ;;
    max_contacts)
        register mc max_contacts.xml maxc maxc-secret 600 -key alg MD5 || rc=1 ;;
    expiry)
        register reg register.xml dave dave-secret 2 -key alg MD5 || rc=1
        sleep "$(scaled 4)"
        peer gone message_480.xml -s dave || rc=1
        ;;
    hss_slow)
        [ "$fix" = ims4 ] || die "hss_slow needs the HSS in its own process (ims4)"
        local hpid t0 t1 ms limit
        hpid=$(cat "$FIXDIR/hss.pid")
        kill -STOP "$hpid"
        trap 'kill -CONT '"$hpid"' 2>/dev/null || true' EXIT
        t0=$(date +%s%N)
        ue slow "$UE_PORT" register_503.xml -s alice -key expires 600 || rc=1
        t1=$(date +%s%N)
        kill -CONT "$hpid"
        trap - EXIT
        ms=$(((t1 - t0) / 1000000))
        limit=$(scaled 6000)
        say "503 after $ms ms (bound $limit ms; [icscf] hss_timeout_ms = $(scaled 2000))"
        [ $ms -le "$limit" ] || rc=1
        sleep 1 # the HSS answers what queued while it was stopped: dropped as late
        register again register.xml alice alice-secret 600 -key alg MD5 || rc=1
        ;;
    *)
        # tests of one topic live in t_<topic>.sh as functions t_<name>
        declare -F "t_$name" >/dev/null || die "unknown test $name"
        "t_$name" || rc=1
        ;;
    esac
    for p in $PROCS; do
        alive "$p" || {
            dump_logs 40
            die "the $p died during $name"
        }
    done
    if [ $rc != 0 ]; then
        dump_logs 25
        die "$name failed (artifacts in $OUT)"
    fi
    say "$name passed"
}

# ---------------------------------------------------------------- HSS down

hss_down() {
    mkdir -p "$FIXDIR"
    need sipp ss awk setsid timeout
    [ -x "${IMS_BIN:-}" ] || die "IMS_BIN not set or not executable"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-e2e.XXXXXX")
    trap 'stop ims >/dev/null || true; rm -rf "$TMP"' EXIT
    rm -f "$FIXDIR"/*.log
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT DEAD_PORT
    mkdir -m 700 "$TMP/s"
    # nothing listens on DEAD_PORT: the Diameter peer never opens
    write_conf "$TMP/ims.conf" pcscf,icscf,scscf "$TMP/s" cscf.ims.test "$DEAD_PORT"
    sed -i 's/^hss_timeout_ms = .*/hss_timeout_ms = 1000/' "$TMP/ims.conf"
    start ims "$TMP/ims.conf"
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    OUT=$FIXDIR/run
    rm -rf "$OUT"
    mkdir -p "$OUT"
    local t0 t1 rc=0
    t0=$(date +%s%N)
    ue down "$UE_PORT" register_503.xml -s alice -key expires 600 || rc=1
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000)) limit
    limit=$(scaled 5000)
    say "503 after $ms ms (bound $limit ms: the Cx deadline is 1000 ms)"
    [ $ms -le "$limit" ] || rc=1
    local out
    out=$(stop ims)
    trap - EXIT
    rm -rf "$TMP"
    [ -z "$out" ] || die "$out"
    [ $rc = 0 ] || die "hss_down failed (artifacts in $OUT, log $FIXDIR/ims.log)"
    say "hss_down passed"
}

# LIVE=the transactions alive (one worker: its count at its last received
# message, which is the OPTIONS sip_send sends after the registration)
txns_live_after_registration() { # MODE(yes|no)
    local mode=$1
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT M_PORT
    rm -rf "$TMP/hss"
    mkdir -m 700 "$TMP/hss"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:127.0.0.1:$S_PORT" \
        >"$FIXDIR/seed.log" 2>&1 || die "seeding failed: $(cat "$FIXDIR/seed.log")"
    write_conf "$TMP/ims.conf" pcscf,icscf,scscf,hss "$TMP/hss" hss.ims.test
    sed -i -e 's/^workers = .*/workers = 1/' -e "/^\[sip\]/a local_delivery = $mode" "$TMP/ims.conf"
    printf '\n[metrics]\nlisten = 127.0.0.1:%s\n' "$M_PORT" >>"$TMP/ims.conf"
    start ims "$TMP/ims.conf"
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the metrics endpoint on tcp $M_PORT" tcp_bound "$M_PORT"
    register "reg-$mode" register.xml alice alice-secret 600 -key alg MD5 ||
        die "local_delivery=$mode: the registration failed (artifacts in $OUT)"
    "$IMS_E2E_TOOLS/sip_send" --host 127.0.0.1 --port "$P_PORT" --timeout-ms "$(scaled 3000)" \
        "$TMP/any-options.sip" >"$OUT/sip_send-$mode.out" 2>&1 ||
        die "local_delivery=$mode: no answer to OPTIONS: $(cat "$OUT/sip_send-$mode.out")"
    curl -sf "http://127.0.0.1:$M_PORT/metrics" >"$OUT/metrics-$mode.prom" ||
        die "local_delivery=$mode: GET /metrics failed"
    LIVE=$(awk '$1 == "imscloud_sip_transactions_live" { print $2 }' "$OUT/metrics-$mode.prom")
    local out
    out=$(stop ims)
    [ -z "$out" ] || die "$out"
    [ -n "$LIVE" ] || die "local_delivery=$mode: no imscloud_sip_transactions_live in /metrics"
}

# own_stack_begin NAME: a topic test's own stack beside the fixture's
# processes (t_persist.sh, t_lockout.sh, t_dereg.sh): the fixture's ports
# saved, fresh P, I, S and Diameter ports, STACK_DIR=$TMP/NAME with a seeded
# store in STACK_DIR/hss (its users on the S-CSCF at S_PORT).
# own_stack_end puts the fixture's ports and PROCS back.
own_stack_begin() {
    local name=$1
    STACK_SAVE="$P_PORT $I_PORT $S_PORT $DIA_PORT ${PT_PORT:-} $PROCS"
    pick_ports P_PORT I_PORT S_PORT DIA_PORT
    PT_PORT=
    STACK_DIR=$TMP/$name
    rm -rf "$STACK_DIR"
    mkdir -p "$STACK_DIR"
    mkdir -m 700 "$STACK_DIR/hss"
    "$IMS_SEED" "sqlite:$STACK_DIR/hss/hss.db" "$STACK_DIR/hss/keys" "sip:127.0.0.1:$S_PORT" \
        >"$OUT/$name.seed.log" 2>&1 || die "seeding failed: $(cat "$OUT/$name.seed.log")"
}
own_stack_end() {
    read -r P_PORT I_PORT S_PORT DIA_PORT PT_PORT PROCS <<<"$STACK_SAVE" || true
}

# The start of a test with a process of its own (local_hops, local_batch): its
# tools and binaries, a scratch dir $TMP that goes at exit, a fresh $OUT.
own_begin() {
    mkdir -p "$FIXDIR"
    need sipp ss awk setsid timeout curl
    [ -x "${IMS_BIN:-}" ] || die "IMS_BIN not set or not executable"
    [ -x "${IMS_SEED:-}" ] || die "IMS_SEED not set or not executable (the ims_seed target)"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/ims-e2e.XXXXXX")
    trap 'stop ims >/dev/null || true; rm -rf "$TMP"' EXIT
    rm -f "$FIXDIR"/*.log
    OUT=$FIXDIR/run
    rm -rf "$OUT"
    mkdir -p "$OUT"
}

local_hops() {
    own_begin
    [ -x "${IMS_E2E_TOOLS:-}/sip_send" ] || die "IMS_E2E_TOOLS has no sip_send"
    printf '%s\n' "OPTIONS sip:<Host>:<Port> SIP/2.0" \
        "Via: SIP/2.0/UDP <From-Address>:<Local-Port>;branch=<Branch-ID>;rport" \
        "Max-Forwards: 70" "From: <sip:probe@ims.test>;tag=lh1" "To: <sip:<Host>:<Port>>" \
        "Call-ID: <Call-ID>" "CSeq: 1 OPTIONS" "Content-Length: 0" "" >"$TMP/any-options.sip"
    local inproc kernel
    txns_live_after_registration yes
    inproc=$LIVE
    txns_live_after_registration no
    kernel=$LIVE
    trap - EXIT
    rm -rf "$TMP"
    say "transactions alive after one registration: $inproc in-process hops (want 2), $kernel over the kernel (want at least 6)"
    [ "$inproc" = 2 ] && [ "$kernel" -ge 6 ] ||
        die "local_hops failed (artifacts in $OUT, log $FIXDIR/ims.log)"
    say "local_hops passed"
}

# batch_phase NAME FIRST N RATE [HSS_KEY=VALUE]: one process with every role,
# users u<FIRST>.. u<FIRST+N-1> of the seeded $BATCH_USERS registering at RATE/s,
# each UE its own socket; sets REQ and TXNS (the in-process Cx requests the
# workers ran and the store transactions they took, from /metrics) and fails
# the test unless every registration succeeded.
batch_phase() {
    local name=$1 first=$2 n=$3 rate=$4 hss_key=${5:-} rc=0 ok fail secs
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT M_PORT
    rm -rf "$TMP/hss"
    mkdir -m 700 "$TMP/hss"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:127.0.0.1:$S_PORT" "$BATCH_USERS" \
        >"$FIXDIR/seed.log" 2>&1 || die "seeding failed: $(cat "$FIXDIR/seed.log")"
    write_conf "$TMP/ims.conf" pcscf,icscf,scscf,hss "$TMP/hss" hss.ims.test
    printf '\n[metrics]\nlisten = 127.0.0.1:%s\n' "$M_PORT" >>"$TMP/ims.conf"
    # what is measured is the batching: the overload control stays off, or a
    # crowd on a loaded CI machine (ASan, tests in parallel) gets some 503s
    printf '\n[limits]\noverload_target_ms = 0\n' >>"$TMP/ims.conf"
    [ -z "$hss_key" ] || printf '\n[hss]\n%s\n' "${hss_key/=/ = }" >>"$TMP/ims.conf"
    start ims "$TMP/ims.conf"
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the metrics endpoint on tcp $M_PORT" tcp_bound "$M_PORT"
    awk -v first="$first" -v n="$n" -v realm="$REALM" 'BEGIN {
        print "SEQUENTIAL"
        for (i = first; i < first + n; i++)
            printf "u%04d;u%04d@%s;[authentication username=u%04d@%s password=pw-%d]\n",
                i, i, realm, i, realm, i
    }' >"$OUT/$name.csv"
    secs=$(scaled 60)
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "127.0.0.1:$P_PORT" \
        -sf "$HERE/sipp/register_crowd.xml" -inf "$name.csv" -i 127.0.0.1 -t un \
        -max_socket "$((n + 10))" -key realm "$REALM" -key expires 600 \
        -m "$n" -r "$rate" -rp 1000 -l "$n" -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_err -error_file "$name.err.log" -timeout "${secs}s" -timeout_error \
        >"$name.out" 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    fail=$(sipp_stat "$OUT/$name.stat.csv" 'FailedCall(C)' 2>/dev/null || echo '?')
    curl -sf "http://127.0.0.1:$M_PORT/metrics" >"$OUT/$name.prom" || rc=1
    REQ=$(awk '$1 == "imscloud_store_inline_requests_total" { print $2 }' "$OUT/$name.prom")
    TXNS=$(awk '$1 == "imscloud_store_inline_transactions_total" { print $2 }' "$OUT/$name.prom")
    local out
    out=$(stop ims)
    [ -z "$out" ] || die "$out"
    say "$name: sipp exit $rc, successful $ok, failed $fail (want 0, $n, 0); store requests run by the workers ${REQ:-?} (want at least $((4 * n))) in ${TXNS:-?} transactions"
    [ "$rc" = 0 ] && [ "$ok" = "$n" ] && [ "$fail" = 0 ] && [ -n "$REQ" ] && [ -n "$TXNS" ] &&
        [ "$REQ" -ge $((4 * n)) ] && [ "$TXNS" -ge 1 ] ||
        die "local_batch: $name failed (artifacts in $OUT, log $FIXDIR/ims.log)"
}

# The in-process Cx requests of one process share store transactions
# (hss.c, store/exec.c: one per batch).  The requests: UAR, MAR, UAR, SAR per
# registration, at least (a retransmission passed on may add some).
#  crowd:  150 users register at once (opened within about 0.1 s): fewer
#          transactions than requests, with the default [hss] batch_window_ms.
#  steady: 100 users at a steady 100/s, each registration's four requests
#          one after another, so that a loop turn rarely holds two: without a
#          window (0) 401 requests took 401 transactions (checked by hand when
#          the window was added).  With a window of 50 ms (about 20 requests
#          in each, over the workers) a transaction must hold two or more on
#          average.
local_batch() {
    own_begin
    BATCH_USERS=250
    batch_phase crowd 0 150 1500
    [ "$TXNS" -lt "$REQ" ] || die "local_batch: crowd: as many transactions as requests"
    batch_phase steady 150 100 100 batch_window_ms=50
    [ "$REQ" -ge $((2 * TXNS)) ] ||
        die "local_batch: steady: $REQ requests in $TXNS transactions, want 2 or more in each"
    trap - EXIT
    rm -rf "$TMP"
    say "local_batch passed"
}

# The P-CSCF finds its I-CSCF by DNS (RFC 3263 §4.2): [pcscf] icscf names a
# host without a port, and a dnsmasq on loopback ([sip] dns_servers) answers the
# SRV record of _sip._udp at that name and the A record of its target.  A
# registration through P, I and S of one process succeeds, and dnsmasq logged
# the SRV query (pointed at a port nobody listens on, the test fails).
icscf_dns() {
    own_begin
    need dnsmasq sipp
    local rc=0 dpid
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT DNS_PORT
    mkdir -m 700 "$TMP/hss"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:127.0.0.1:$S_PORT" \
        >"$FIXDIR/seed.log" 2>&1 || die "seeding failed: $(cat "$FIXDIR/seed.log")"
    dnsmasq -k --conf-file=/dev/null --user="$(id -un)" --port="$DNS_PORT" \
        --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --log-queries \
        --log-facility="$OUT/dnsmasq.log" \
        --srv-host="_sip._udp.icscf.$REALM,i1.$REALM,$I_PORT,0,10" \
        --host-record="i1.$REALM,127.0.0.1" >"$OUT/dnsmasq.out" 2>&1 &
    dpid=$!
    trap 'kill "$dpid" 2>/dev/null || true; stop ims >/dev/null || true; rm -rf "$TMP"' EXIT
    wait_for 20 "dnsmasq on udp $DNS_PORT" udp_bound "$DNS_PORT"
    write_conf "$TMP/ims.conf" pcscf,icscf,scscf,hss "$TMP/hss" hss.ims.test
    grep -q "^icscf = sip:127.0.0.1:$I_PORT\$" "$TMP/ims.conf" || die "no [pcscf] icscf line to replace"
    sed -i -e "s|^icscf = sip:127.0.0.1:$I_PORT\$|icscf = sip:icscf.$REALM|" \
        -e "/^\[sip\]/a dns_servers = 127.0.0.1:$DNS_PORT" "$TMP/ims.conf"
    start ims "$TMP/ims.conf"
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    register dns register.xml alice alice-secret 600 -key alg MD5 || rc=1
    grep -q "query\[SRV\] _sip._udp.icscf.$REALM" "$OUT/dnsmasq.log" || rc=2
    local out
    out=$(stop ims)
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
    trap - EXIT
    rm -rf "$TMP"
    [ -z "$out" ] || die "$out"
    case $rc in
    1) die "icscf_dns: the registration through an I-CSCF found by DNS failed (artifacts in $OUT, log $FIXDIR/ims.log)" ;;
    2) die "icscf_dns: dnsmasq saw no SRV query for _sip._udp.icscf.$REALM ($OUT/dnsmasq.log)" ;;
    esac
    say "icscf_dns passed"
}

# ims_names: the four-process deployment with its CSCFs known by host names
# ([sip] server_name; a dnsmasq on loopback holds their A records, every
# CSCF asks it: [sip] dns_servers).  The P-CSCF reaches the I-CSCF, the
# I-CSCF the S-CSCF (the HSS names it) and the S-CSCF the P-CSCF (Path) by
# name; Service-Route, Path, Via and Record-Route carry the names.  alice
# calls bob: the Record-Route hops are the names, and the ACK for the 200,
# which the P- and S-CSCF forward statelessly along that route set, reaches
# bob after their RFC 3263 lookups (sess_call_uas.xml waits for it).
ims_names() {
    own_begin
    need dnsmasq
    local rc=0 dpid p out bad="" ns
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT UE2_PORT DNS_PORT
    ns=127.0.0.1:$DNS_PORT
    mkdir -m 700 "$TMP/hss" "$TMP/p" "$TMP/i" "$TMP/s"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:scscf.$REALM:$S_PORT" \
        >"$FIXDIR/seed.log" 2>&1 || die "seeding failed: $(cat "$FIXDIR/seed.log")"
    dnsmasq -k --conf-file=/dev/null --user="$(id -un)" --port="$DNS_PORT" \
        --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --log-queries \
        --log-facility="$OUT/dnsmasq.log" --host-record="pcscf.$REALM,127.0.0.1" \
        --host-record="icscf.$REALM,127.0.0.1" --host-record="scscf.$REALM,127.0.0.1" \
        >"$OUT/dnsmasq.out" 2>&1 &
    dpid=$!
    trap 'kill "$dpid" 2>/dev/null || true; for p in scscf icscf pcscf hss; do stop "$p" >/dev/null || true; done; rm -rf "$TMP"' EXIT
    wait_for 20 "dnsmasq on udp $DNS_PORT" udp_bound "$DNS_PORT"
    write_conf "$TMP/hss.conf" hss "$TMP/hss" hss.ims.test
    write_conf "$TMP/pcscf.conf" pcscf "$TMP/p" pcscf.ims.test
    write_conf "$TMP/icscf.conf" icscf "$TMP/i" icscf.ims.test "$DIA_PORT"
    write_conf "$TMP/scscf.conf" scscf "$TMP/s" scscf.ims.test "$DIA_PORT"
    trust_conf "$TMP/icscf.conf"
    trust_conf "$TMP/scscf.conf"
    for p in pcscf icscf scscf; do
        sed -i -e "/^\[sip\]/a server_name = $p.$REALM\ndns_servers = $ns" \
            -e "s|^icscf = sip:127.0.0.1:$I_PORT\$|icscf = sip:icscf.$REALM:$I_PORT|" \
            -e "s|^uri = sip:127.0.0.1:$S_PORT\$|uri = sip:scscf.$REALM:$S_PORT|" "$TMP/$p.conf"
    done
    grep -q "^icscf = sip:icscf.$REALM:$I_PORT\$" "$TMP/pcscf.conf" &&
        grep -q "^uri = sip:scscf.$REALM:$S_PORT\$" "$TMP/scscf.conf" ||
        die "the CSCF configurations did not take the names"
    start hss "$TMP/hss.conf"
    wait_for 20 "the HSS on Diameter port $DIA_PORT" tcp_bound "$DIA_PORT"
    for p in pcscf icscf scscf; do start "$p" "$TMP/$p.conf"; done
    wait_for 20 "the I-CSCF and S-CSCF to connect to the HSS" two_peers
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the S-CSCF on udp $S_PORT" udp_bound "$S_PORT"
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1
    sess_call call alice "pcscf.$REALM:$P_PORT scscf.$REALM:$S_PORT scscf.$REALM:$S_PORT pcscf.$REALM:$P_PORT" ||
        rc=1
    for p in pcscf icscf scscf; do
        grep -q "query\[A\] $p.$REALM from" "$OUT/dnsmasq.log" || {
            echo "ims_names: dnsmasq saw no A query for $p.$REALM ($OUT/dnsmasq.log)" >&2
            rc=1
        }
    done
    for p in scscf icscf pcscf hss; do
        out=$(stop "$p")
        [ -z "$out" ] || bad="$bad $out"
    done
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
    trap - EXIT
    rm -rf "$TMP"
    [ -z "$bad" ] || die "$bad"
    [ $rc = 0 ] || die "ims_names failed (artifacts in $OUT, logs in $FIXDIR)"
    say "ims_names passed"
}

case $cmd in
setup) setup ;;
cleanup) cleanup ;;
test) runtest ;;
hss_down) hss_down ;;
local_hops) local_hops ;;
local_batch) local_batch ;;
icscf_dns) icscf_dns ;;
ims_names) ims_names ;;
esac
