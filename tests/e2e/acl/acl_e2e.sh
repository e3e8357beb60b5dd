#!/usr/bin/env bash
# tests/e2e/acl/acl_e2e.sh - security groups at the listeners, end to end
# (CTest label e2e; docs/security-groups.md).  One imscloud with every role
# (P-, I-, S-CSCF and HSS, Cx in-process, Diameter listening) on 127.0.0.1
# and a Neutron-shaped rules file.  Denied sources are other loopback
# addresses (127.0.0.2, 127.0.0.3: all of 127/8 is local on Linux, so sipp
# -i, svmap -b and acl_peer.py bind there without an alias).
#
#   acl_e2e.sh listeners   rules v1: SIP UDP/TCP on the P-CSCF from 127.0.0.1
#                          only, Diameter from 127.0.0.3 by an explicit rule
#     - OPTIONS over UDP from 127.0.0.1 answered, from 127.0.0.2 not (timeout)
#     - TCP from 127.0.0.2 reset at accept; from 127.0.0.1 answered
#     - a CER from 127.0.0.2 (not a peer, no rule) refused; from 127.0.0.3
#       (a rule names the Diameter port) and from 127.0.0.4 (the address of a
#       [diameter] peer line, no rule) accepted
#     - alice registers (sipp, Digest) and a TCP connection from 127.0.0.1 is
#       held open; rules v2 (UDP from 127.0.0.2 too, TCP rule gone) + SIGHUP:
#       127.0.0.2 answered now, a new TCP connection from 127.0.0.1 reset, the
#       held one still answered (established connections stay), and a
#       MESSAGE through the I-CSCF still reaches alice's sipp UAS (the
#       registration survived the reload)
#     - a bad file + SIGHUP: the v2 rules stay in force
#   acl_e2e.sh svmap       SIPVicious svmap scans 127.0.0.1-127.0.0.3 from an
#                          allowed source (-b 127.0.0.1: finds imscloud) and
#                          from a denied one (-b 127.0.0.2: finds nothing)
#
# Environment (CMake passes them): IMS_BIN, IMS_SEED, ACL_E2E_STATE;
# IMS_TEST_TIMEOUT_MULTIPLIER; CI=true (a skip fails).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMS_SIPP=$HERE/../ims/sipp
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
# shellcheck source=tests/e2e/lib.sh
. "$HERE/../lib.sh"
REALM=ims.test
export LSAN_OPTIONS="suppressions=$HERE/../hss/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

say() { printf 'e2e-acl: %s\n' "$*"; }
die() {
    printf 'e2e-acl: FAIL: %s\n' "$*" >&2
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
        echo "---- imscloud log (last 30 lines)" >&2
        tail -n 30 "$LOG" >&2
    fi
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'e2e-acl: SKIP: %s\n' "$*"
    exit 77
}
need() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "missing tool '$t'"; done
}

pick_ports() { # NAME...: free ports from 29000-29999
    local p=$((29000 + RANDOM % 1000)) name taken=" "
    for name in "$@"; do
        while :; do
            p=$((p + 1))
            [ $p -le 29999 ] || p=29000
            case $taken in *" $p "*) continue ;; esac
            port_busy "$p" || break
        done
        printf -v "$name" '%s' "$p"
        taken="$taken$p "
    done
}

udp_bound() { [ -n "$(ss -Hlnu "sport = :$1")" ]; }
tcp_bound() { [ -n "$(ss -Hlnt "sport = :$1")" ]; }

# ---------------------------------------------------------------- rules

rule() { # PROTO PORT CIDR: one ingress rule as Neutron's API returns it
    printf '    {"id": "r%s-%s", "direction": "ingress", "ethertype": "IPv4", "protocol": "%s",' \
        "$1" "$2" "$1"
    printf ' "port_range_min": %s, "port_range_max": %s, "remote_ip_prefix": "%s",' "$2" "$2" "$3"
    printf ' "remote_group_id": null, "description": "e2e"}'
}

rules_v1() { # the P-CSCF from 127.0.0.1 only; Diameter from 127.0.0.3 by a rule
    {
        echo '{"security_group_rules": ['
        rule udp "$P_PORT" 127.0.0.1/32; echo ,
        rule tcp "$P_PORT" 127.0.0.1/32; echo ,
        rule udp "$I_PORT" 127.0.0.1/32; echo ,
        rule udp "$S_PORT" 127.0.0.1/32; echo ,
        rule tcp "$DIA_PORT" 127.0.0.3/32; echo ,
        echo '    {"direction": "egress", "ethertype": "IPv4", "protocol": null},'
        echo '    {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "remote_ip_prefix": "127.0.0.0/8"}'
        echo ']}'
    } >"$1"
}

rules_v2() { # + UDP from 127.0.0.2 on the P-CSCF; no TCP rule: new TCP denied
    {
        echo '{"security_group_rules": ['
        rule udp "$P_PORT" 127.0.0.1/32; echo ,
        rule udp "$P_PORT" 127.0.0.2/32; echo ,
        rule udp "$I_PORT" 127.0.0.1/32; echo ,
        rule udp "$S_PORT" 127.0.0.1/32
        echo ']}'
    } >"$1"
}

bad_rules() { # rule 0 has a port out of range
    printf '{"security_group_rules": [\n  {"direction": "ingress", "protocol": "udp", "port_range_min": 0}\n]}\n' >"$1"
}

# ---------------------------------------------------------------- process

start_ims() { # one process, every role; $RULES as [security] rules_file
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/acl-e2e.XXXXXX")
    trap 'stop_ims >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
    pick_ports P_PORT I_PORT S_PORT DIA_PORT UE_PORT UE2_PORT DEAD_PORT
    mkdir -m 700 "$TMP/hss"
    "$IMS_SEED" "sqlite:$TMP/hss/hss.db" "$TMP/hss/keys" "sip:127.0.0.1:$S_PORT" \
        >"$OUT/seed.log" 2>&1 || die "seeding failed: $(cat "$OUT/seed.log")"
    RULES=$TMP/rules.json
    rules_v1 "$RULES"
    cat >"$TMP/ims.conf" <<EOF
[core]
workers = 2
roles = pcscf,icscf,scscf,hss
state_dir = $TMP/hss
log_level = info

[sip]
listen = udp:127.0.0.1:$P_PORT
listen = tcp:127.0.0.1:$P_PORT
listen = udp:127.0.0.1:$I_PORT
listen = udp:127.0.0.1:$S_PORT

[pcscf]
ports = $P_PORT
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
# a configured peer (nothing listens there: freeDiameter's connects fail,
# harmlessly); its address may connect in despite diameter_default_deny
peer = peer4.ims.test 127.0.0.4:$DEAD_PORT

[security]
rules_file = $RULES
diameter_default_deny = yes
EOF
    LOG=$OUT/ims.log
    "$IMS_BIN" -c "$TMP/ims.conf" --check-config >"$OUT/check.log" 2>&1 ||
        die "--check-config: $(cat "$OUT/check.log")"
    "$IMS_BIN" -c "$TMP/ims.conf" </dev/null >"$LOG" 2>&1 &
    IMS_PID=$!
    local deadline=$(($(date +%s) + $(scaled 20)))
    until udp_bound "$P_PORT" && udp_bound "$S_PORT" && tcp_bound "$DIA_PORT"; do
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

hup() { # FILE-CONTENT-FN EVENT: rewrite the rules, SIGHUP, wait for EVENT's next line
    local before
    before=$(grep -c "$2" "$LOG" || true)
    "$1" "$RULES"
    kill -HUP "$IMS_PID"
    local deadline=$(($(date +%s) + $(scaled 10)))
    until [ "$(grep -c "$2" "$LOG" || true)" -gt "$before" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "no $2 after SIGHUP"
        sleep 0.05
    done
}

# ---------------------------------------------------------------- probes

# options NAME SRC: OPTIONS over UDP from SRC to the P-CSCF; 0 when answered
options() {
    local name=$1 src=$2 secs rc=0 ok
    secs=$(scaled 3)
    (cd "$OUT" && timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" -sf "$HERE/acl_options.xml" \
        -i "$src" -p "$UE2_PORT" -m 1 -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_msg -message_file "$name.msg" -timeout "${secs}s" -timeout_error \
        >"$name.out" 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    say "$name: OPTIONS from $src: sipp exit $rc, answered $ok"
    [ "$rc" = 0 ] && [ "$ok" = 1 ]
}

tcp_probe() { # NAME SRC: 0 answered, 3 refused, 4 timeout
    local rc=0
    ACL_PEER_TIMEOUT=$(scaled 5) python3 "$HERE/acl_peer.py" sip-tcp "$2" 127.0.0.1 "$P_PORT" \
        >"$OUT/$1.out" 2>&1 || rc=$?
    say "$1: TCP from $2: $(cat "$OUT/$1.out")"
    return $rc
}

cer_probe() { # NAME SRC ORIGIN-HOST
    local rc=0
    ACL_PEER_TIMEOUT=$(scaled 5) python3 "$HERE/acl_peer.py" cer "$2" 127.0.0.1 "$DIA_PORT" \
        "$3" "$REALM" >"$OUT/$1.out" 2>&1 || rc=$?
    say "$1: CER from $2: $(cat "$OUT/$1.out")"
    return $rc
}

sipp_ok() { # NAME: sipp's statistics say one successful call
    [ "$(sipp_stat "$OUT/$1.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)" = 1 ]
}

register_alice() {
    local secs rc=0
    secs=$(scaled 20)
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "127.0.0.1:$P_PORT" -sf "$IMS_SIPP/register.xml" \
        -i 127.0.0.1 -p "$UE_PORT" -key realm "$REALM" -m 1 -nostdin -s alice \
        -au "alice@$REALM" -ap alice-secret -key expires 600 -key alg MD5 \
        -trace_stat -stf reg.stat.csv -fd 1 -trace_msg -message_file reg.msg \
        -timeout "${secs}s" -timeout_error >reg.out 2>&1) || rc=$?
    say "register alice: sipp exit $rc"
    [ "$rc" = 0 ] && sipp_ok reg
}

# deliver_alice: alice's UAS on UE_PORT, a MESSAGE to her from another
# network (127.0.0.1:UE2_PORT) through the I-CSCF; both must succeed
deliver_alice() {
    local secs uas rc=0 rc_uas=0
    secs=$(scaled 20)
    (cd "$OUT" && exec timeout -k 5 "$((secs + 5))" sipp -sf "$IMS_SIPP/message_uas.xml" \
        -i 127.0.0.1 -p "$UE_PORT" -m 1 -nostdin -trace_stat -stf uas.stat.csv -fd 1 \
        -trace_msg -message_file uas.msg -timeout "${secs}s" -timeout_error >uas.out 2>&1) &
    uas=$!
    local deadline=$(($(date +%s) + $(scaled 10)))
    until udp_bound "$UE_PORT"; do
        [ "$(date +%s)" -lt $deadline ] || die "the sipp UAS did not listen on $UE_PORT"
        sleep 0.1
    done
    (cd "$OUT" && timeout -k 5 "$((secs + 5))" sipp "127.0.0.1:$I_PORT" -sf "$IMS_SIPP/message_200.xml" \
        -i 127.0.0.1 -p "$UE2_PORT" -key realm "$REALM" -m 1 -nostdin -s alice \
        -trace_stat -stf msg.stat.csv -fd 1 -trace_msg -message_file msg.msg \
        -timeout "${secs}s" -timeout_error >msg.out 2>&1) || rc=$?
    wait $uas || rc_uas=$?
    say "MESSAGE to alice: sender sipp exit $rc, UAS sipp exit $rc_uas"
    [ "$rc" = 0 ] && [ "$rc_uas" = 0 ] && sipp_ok msg && sipp_ok uas
}

# ---------------------------------------------------------------- tests

t_listeners() {
    need sipp ss python3 timeout
    start_ims
    say "imscloud up: P-CSCF $P_PORT (udp, tcp), I $I_PORT, S $S_PORT, Diameter $DIA_PORT"

    options opt_allowed 127.0.0.1 || die "OPTIONS from an allowed source was not answered"
    ! options opt_denied 127.0.0.2 || die "OPTIONS from 127.0.0.2 was answered (rule v1 denies it)"

    tcp_probe tcp_allowed 127.0.0.1 || die "TCP from 127.0.0.1 not answered"
    local rc=0
    tcp_probe tcp_denied 127.0.0.2 || rc=$?
    [ $rc = 3 ] || die "TCP from 127.0.0.2: want refused (3), got $rc"

    rc=0
    cer_probe cer_nonpeer 127.0.0.2 intruder.ims.test || rc=$?
    [ $rc = 3 ] || die "CER from a non-peer: want refused (3), got $rc"
    cer_probe cer_rule 127.0.0.3 friend.ims.test || die "CER from 127.0.0.3 (explicit rule) refused"
    cer_probe cer_peer 127.0.0.4 other4.ims.test ||
        die "CER from 127.0.0.4 (a [diameter] peer line's address, no rule) refused"

    register_alice || die "alice could not register"
    rm -f "$TMP/go"
    ACL_PEER_TIMEOUT=$(scaled 5) python3 "$HERE/acl_peer.py" sip-tcp-hold 127.0.0.1 127.0.0.1 \
        "$P_PORT" "$TMP/go" >"$OUT/held.out" 2>&1 &
    local held=$!
    local deadline=$(($(date +%s) + $(scaled 10)))
    until grep -q answered "$OUT/held.out" 2>/dev/null; do
        kill -0 $held 2>/dev/null || die "the held TCP connection failed: $(cat "$OUT/held.out")"
        [ "$(date +%s)" -lt $deadline ] || die "the held TCP connection got no answer"
        sleep 0.05
    done

    hup rules_v2 'event=acl_loaded'
    say "reloaded rules v2 (SIGHUP)"
    options opt_flipped 127.0.0.2 || die "OPTIONS from 127.0.0.2 not answered after the reload"
    options opt_still 127.0.0.1 || die "OPTIONS from 127.0.0.1 not answered after the reload"
    rc=0
    tcp_probe tcp_new_denied 127.0.0.1 || rc=$?
    [ $rc = 3 ] || die "a new TCP connection after the reload: want refused (3), got $rc"
    touch "$TMP/go"
    rc=0
    wait $held || rc=$?
    say "held TCP connection: $(tail -n 1 "$OUT/held.out")"
    [ $rc = 0 ] || die "the TCP connection established before the reload was not kept"
    deliver_alice || die "the MESSAGE did not reach alice: her registration did not survive"


    hup bad_rules 'event=acl_reload_failed'
    grep 'event=acl_reload_failed' "$LOG" | tail -n 1 | grep -q 'rule 0: port_range_min' ||
        die "the reload error does not name the rule and field"
    options opt_kept 127.0.0.2 || die "a bad file on SIGHUP dropped the rules in force"

    grep -q 'event=acl_deny .*listener=sip-udp' "$LOG" || die "no acl_deny line for sip-udp"
    stop_ims
    say "listeners passed"
}

# svmap lists devices as "| 127.0.0.1:PORT | User-Agent |"
svmap_finds() { # SRC: prints the number of devices svmap found
    HOME=$TMP timeout -k 5 "$(scaled 60)" svmap -b "$1" -x "$1" -p "$P_PORT" -t 0.05 \
        127.0.0.1-127.0.0.3 >"$OUT/svmap-$1.out" 2>&1 || true
    grep -cE "127\.0\.0\.[0-9]+:$P_PORT" "$OUT/svmap-$1.out" || true
}

t_svmap() {
    need sipp ss python3 timeout svmap
    start_ims
    local n1 n2
    n1=$(svmap_finds 127.0.0.1)
    n2=$(svmap_finds 127.0.0.2)
    say "svmap from 127.0.0.1 found $n1 device(s), from 127.0.0.2 $n2"
    [ "$n1" -ge 1 ] || die "svmap from an allowed source found nothing: $(cat "$OUT/svmap-127.0.0.1.out")"
    [ "$n2" = 0 ] || die "svmap from a denied source found imscloud: $(cat "$OUT/svmap-127.0.0.2.out")"
    grep -q 'event=acl_deny src=127.0.0.2 listener=sip-udp' "$LOG" || die "no acl_deny for svmap"
    stop_ims
    say "svmap passed"
}

name=${1:?usage: acl_e2e.sh listeners|svmap}
[ -x "${IMS_BIN:-}" ] || die "IMS_BIN not set or not executable"
[ -x "${IMS_SEED:-}" ] || die "IMS_SEED not set or not executable"
OUT=${ACL_E2E_STATE:-${TMPDIR:-/tmp}/acl-e2e-state}/$name
rm -rf "$OUT"
mkdir -p "$OUT"
case $name in
listeners) t_listeners ;;
svmap) t_svmap ;;
*) die "unknown test $name" ;;
esac
trap - EXIT
rm -rf "$TMP"
