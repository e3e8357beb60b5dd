#!/usr/bin/env bash
# tests/e2e/neutron/neutron_e2e.sh - the IMS edge managed as a Neutron security
# group (issue 7 part 4; docs/security-groups.md "Neutron as the source"),
# against the real Keystone + Neutron of the e2e_openstack fixture
# (tests/e2e/openstack).  CTest label e2e.
#
#   neutron_e2e.sh edge
#     - `openstack security group create` a group and a rule allowing UDP to
#       the P-CSCF port from 127.0.0.1/32
#     - imscloud (P-CSCF) with [security] neutron_group = that group,
#       neutron_refresh = 2, the fixture's admin as the [keystone] account
#     - OPTIONS from 127.0.0.1 answered, from 127.0.0.2 not (no rule, no entry)
#     - `openstack security group rule delete` the rule: after the refresh
#       127.0.0.1 is refused; `rule create` it back: answered again
#     - Neutron stopped (SIGSTOP): the last good rules stay (127.0.0.1 still
#       answered) and the outage is logged once over several refreshes;
#       SIGCONT: logged as available again
#     - a rule imscloud cannot apply (remote_group_id) added: refused and
#       reported with its id, the rules in force stay; deleted: accepted again
#     - with a rules_file too, the union is in force: the file's source and
#       the group's are answered; SIGHUP reads the group at once (a refresh
#       period of 3600 s would not): the group's rule gone, the file's stays;
#       a new file + SIGHUP while Neutron is stopped: the new file with the
#       group's last good read
#     - Neutron down at start: imscloud starts within a few seconds, default
#       deny (127.0.0.1 refused) until the group is read, then answered
#     - imscloud stops cleanly (exit 0, no sanitizer report)
#
# Environment (CMake passes them): IMS_BIN, NEUTRON_E2E_STATE, OS_STATE (the
# fixture's state dir with openstack.env); IMS_TEST_TIMEOUT_MULTIPLIER;
# CI=true (a skip fails).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MULT=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
# shellcheck source=tests/e2e/lib.sh
. "$HERE/../lib.sh"
OPTIONS_XML=$HERE/../acl/acl_options.xml
OS=/usr/bin/openstack

say() { printf 'e2e-neutron: %s\n' "$*"; }
die() {
    printf 'e2e-neutron: FAIL: %s\n' "$*" >&2
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
        echo "---- imscloud log (last 40 lines)" >&2
        tail -n 40 "$LOG" >&2
    fi
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then die "(CI=true, a skip is a failure) $*"; fi
    printf 'e2e-neutron: SKIP: %s\n' "$*"
    exit 77
}

pick_ports() { # NAME...: free ports from 33000-33999 (the fixture's are below 32768)
    local p=$((33000 + RANDOM % 1000)) name taken=" "
    for name in "$@"; do
        while :; do
            p=$((p + 1))
            [ $p -le 33999 ] || p=33000
            case $taken in *" $p "*) continue ;; esac
            port_busy "$p" || break
        done
        printf -v "$name" '%s' "$p"
        taken="$taken$p "
    done
}

udp_bound() { [ -n "$(ss -Hlnu "sport = :$1")" ]; }

os() { "$OS" "$@" 2>>"$OUT/openstack.err"; } # the admin's CLI (the fixture's env)

# ---------------------------------------------------------------- process

start_ims() { # the P-CSCF alone on $P_PORT, its rules from the group $SG_NAME
    cat >"$TMP/ims.conf" <<EOF
[core]
workers = 2
roles = pcscf
state_dir = $TMP/state
log_level = info

[sip]
listen = udp:127.0.0.1:$P_PORT

[pcscf]
ports = $P_PORT
icscf = sip:127.0.0.1:$I_PORT

[keystone]
url = $OS_AUTH_URL
user = $OS_USERNAME
password_file = $TMP/ks.pw
project = $OS_PROJECT_NAME
timeout_ms = $(scaled 1000)

[security]
neutron_group = $SG_NAME
neutron_refresh = ${REFRESH:-2}
${RULES_FILE:+rules_file = $RULES_FILE}
EOF
    printf '%s\n' "$OS_PASSWORD" >"$TMP/ks.pw"
    LOG=$OUT/${LOG_NAME:-ims}.log
    "$IMS_BIN" -c "$TMP/ims.conf" --check-config >"$OUT/check.log" 2>&1 ||
        die "--check-config: $(cat "$OUT/check.log")"
    "$IMS_BIN" -c "$TMP/ims.conf" </dev/null >"$LOG" 2>&1 &
    IMS_PID=$!
    local deadline=$(($(date +%s) + $(scaled 20)))
    until udp_bound "$P_PORT" && grep -q 'mod=core event=started' "$LOG"; do
        kill -0 "$IMS_PID" 2>/dev/null || die "imscloud exited at start"
        [ "$(date +%s)" -lt $deadline ] || die "imscloud did not start"
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

count() { grep -c -- "$1" "$LOG" || true; }

# wait_log PATTERN BEFORE SECONDS: until PATTERN has more than BEFORE lines
wait_log() {
    local deadline=$(($(date +%s) + $(scaled "$3")))
    until [ "$(count "$1")" -gt "$2" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "no new '$1' within $3 s"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- probes

# options NAME SRC: OPTIONS over UDP from SRC to the P-CSCF; 0 when answered
options() {
    local name=$1 src=$2 secs rc=0 ok
    secs=$(scaled 2)
    (cd "$OUT" && timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" -sf "$OPTIONS_XML" \
        -i "$src" -p "$UAC_PORT" -m 1 -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_msg -message_file "$name.msg" -timeout "${secs}s" -timeout_error \
        >"$name.out" 2>&1) || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    say "$name: OPTIONS from $src: sipp exit $rc, answered $ok"
    [ "$rc" = 0 ] && [ "$ok" = 1 ]
}

answered() { options "$1" "$2" || die "$1: OPTIONS from $2 not answered"; }
refused() { ! options "$1" "$2" || die "$1: OPTIONS from $2 answered"; }

# ---------------------------------------------------------------- the test

file_rule() { # SRC: a rules file allowing UDP to the P-CSCF from SRC
    printf '{"security_group_rules": [{"direction": "ingress", "ethertype": "IPv4", '
    printf '"protocol": "udp", "port_range_min": %s, "port_range_max": %s, ' "$P_PORT" "$P_PORT"
    printf '"remote_ip_prefix": "%s/32"}]}\n' "$1"
}

neutron_pgid() { awk '$1=="neutron"{print $2}' "$OS_STACK_DIR/pids"; }

allow_rule() { # -> the new rule's id
    os security group rule create --ingress --ethertype IPv4 --protocol udp \
        --dst-port "$P_PORT:$P_PORT" --remote-ip 127.0.0.1/32 \
        --description "imscloud e2e: the P-CSCF from 127.0.0.1" -f value -c id "$SG"
}

t_edge() {
    SG_NAME=ims-edge-$$-$RANDOM
    SG=$(os security group create "$SG_NAME" --description "imscloud e2e edge" -f value -c id) ||
        die "openstack security group create: $(tail -n 5 "$OUT/openstack.err")"
    say "group $SG_NAME = $SG"
    pick_ports P_PORT I_PORT UAC_PORT # the rule names the P-CSCF port
    RULE=$(allow_rule) || die "rule create: $(tail -n 5 "$OUT/openstack.err")"
    start_ims
    grep -q "event=neutron_loaded group=$SG_NAME id=$SG" "$LOG" || die "no neutron_loaded at start"
    answered allowed-1 127.0.0.1
    refused denied-1 127.0.0.2

    local n
    n=$(count 'event=neutron_loaded')
    os security group rule delete "$RULE" || die "rule delete"
    wait_log 'event=neutron_loaded' "$n" 10
    refused gone 127.0.0.1

    n=$(count 'event=neutron_loaded')
    RULE=$(allow_rule) || die "rule create (again)"
    wait_log 'event=neutron_loaded' "$n" 10
    answered back 127.0.0.1

    # Neutron stopped: its API times out; the rules stay, one log line
    local pg
    pg=$(neutron_pgid)
    [ -n "$pg" ] || die "no neutron pid in $OS_STACK_DIR/pids"
    kill -STOP -- "-$pg"
    trap 'kill -CONT -- "-'"$pg"'" 2>/dev/null || true; cleanup' EXIT
    wait_log 'event=neutron_unavailable' 0 10
    sleep "$(scaled 5)" # two more refresh periods, each failing
    [ "$(count 'event=neutron_unavailable')" = 1 ] || die "the outage was not logged once"
    answered outage 127.0.0.1
    refused outage-denied 127.0.0.2
    kill -CONT -- "-$pg"
    wait_log 'event=neutron_available' 0 15

    # a rule that cannot be applied: refused whole, reported with its id
    n=$(count 'event=neutron_refused')
    local bad
    bad=$(os security group rule create --ingress --ethertype IPv4 --protocol udp \
        --remote-group "$SG" -f value -c id "$SG") || die "remote-group rule create"
    wait_log 'event=neutron_refused' "$n" 10
    grep 'event=neutron_refused' "$LOG" | tail -n 1 | grep -q "remote_group_id.*rule id $bad" ||
        die "the refusal does not name remote_group_id and rule $bad"
    answered kept 127.0.0.1
    refused kept-denied 127.0.0.2
    n=$(count 'event=neutron_accepted')
    os security group rule delete "$bad" || die "rule delete (remote group)"
    wait_log 'event=neutron_accepted' "$n" 10
    answered accepted 127.0.0.1
    stop_ims

    # with a rules file too: the union; SIGHUP reads the group at once,
    # whatever the refresh period
    file_rule 127.0.0.2 >"$TMP/rules.json"
    RULES_FILE=$TMP/rules.json REFRESH=3600 LOG_NAME=ims-hup start_ims
    answered hup-group 127.0.0.1
    answered hup-file 127.0.0.2
    n=$(count 'event=neutron_loaded')
    os security group rule delete "$RULE" || die "rule delete (hup)"
    kill -HUP "$IMS_PID"
    wait_log 'event=neutron_loaded' "$n" 10
    refused hup-group-gone 127.0.0.1
    answered hup-file-kept 127.0.0.2
    # a new file during an outage: in force with the group's last good read
    kill -STOP -- "-$pg"
    file_rule 127.0.0.3 >"$TMP/rules.json"
    n=$(count 'event=neutron_loaded')
    kill -HUP "$IMS_PID"
    wait_log 'event=neutron_loaded' "$n" 10
    grep -q 'event=neutron_unavailable' "$LOG" || die "no neutron_unavailable"
    answered outage-file-new 127.0.0.3
    refused outage-file-old 127.0.0.2
    refused outage-group 127.0.0.1
    kill -CONT -- "-$pg"
    stop_ims

    # Neutron down at start: default deny until the group is read
    RULE=$(allow_rule) || die "rule create (down at start)"
    kill -STOP -- "-$pg"
    LOG_NAME=ims-down start_ims
    grep -q 'event=neutron_unavailable' "$LOG" || die "no neutron_unavailable at start"
    refused down-start 127.0.0.1
    n=$(count 'event=neutron_loaded')
    kill -CONT -- "-$pg"
    wait_log 'event=neutron_loaded' "$n" 15
    answered down-start-read 127.0.0.1
    stop_ims
}

cleanup() {
    stop_ims >/dev/null 2>&1 || true
    if [ -n "${SG:-}" ]; then "$OS" security group delete "$SG" >/dev/null 2>&1 || true; fi
    rm -rf "$TMP"
}

# ---------------------------------------------------------------- main

name=${1:?usage: neutron_e2e.sh edge}
[ -n "${IMS_BIN:-}" ] && [ -x "$IMS_BIN" ] || skip "no imscloud binary"
for t in sipp ss "$OS"; do command -v "$t" >/dev/null 2>&1 || skip "missing tool '$t'"; done
[ -f "${OS_STATE:-}/openstack.env" ] || skip "no e2e_openstack fixture ($OS_STATE/openstack.env)"
# shellcheck disable=SC1091
. "$OS_STATE/openstack.env"
OUT=${NEUTRON_E2E_STATE:?}/$name
rm -rf "$OUT"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/neutron-e2e.XXXXXX")
mkdir -p "$TMP/state"
trap cleanup EXIT
"t_$name"
say "PASS $name"
