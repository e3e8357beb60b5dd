# shellcheck shell=bash
# tests/e2e/ims/t_outbound.sh - RFC 5626 outbound end to end (sourced by
# ims_e2e.sh; docs/internals/cscf.md "Outbound").  The fixture's P-CSCF has
# [pcscf] flow_timer = 5.
#
#   outbound_flows  olga registers two flows of one instance: reg-id 1 over UDP
#                   from UE_PORT, reg-id 2 over TCP from UE2_PORT.  Each 200 has
#                   Require: outbound, the P-CSCF's Path marked ;ob, Flow-Timer:
#                   5, and every flow of the instance (+sip.instance, reg-id).
#                   Then flow 2's connection closes (its sipp exits); a MESSAGE
#                   for olga goes to flow 2 first (the newest), the P-CSCF answers
#                   430 Flow Failed, and the S-CSCF sends it on flow 1, where the
#                   UE answers 200
#   outbound_edge   oleg asks for outbound straight at the I-CSCF (no edge proxy
#                   marks its Path ;ob): 439 First Hop Lacks Outbound Support.
#                   With a reg-id but without Supported: outbound the reg-id is
#                   ignored there (a plain binding, no Require: outbound); through
#                   the P-CSCF the flow is kept but, unasked, no Require: outbound
#   outbound_call   olga calls bob from her flow with a Contact that reaches
#                   nothing but ";ob": the P-CSCF's Record-Route carries her
#                   flow token and ;ob, and bob's BYE reaches her on the flow
#   outbound_callee bob calls olga, who answers on her flow with such a Contact:
#                   bob's ACK (forwarded statelessly) and BYE reach her on it
#   outbound_stun   STUN keep-alives on the P-CSCF's UDP port (RFC 5626 §8): an
#                   RFC 8489 client (turnutils_stunclient) and an RFC 3489 one
#                   (stun) learn their own address and port, and the P-CSCF's
#                   /metrics counts the answers

# ob_200 NAME: the last 200 sipp NAME received (its trace $OUT/NAME.msg), without CRs
ob_200() {
    perl -e '
        my ($file) = @ARGV;
        local $/; open(my $f, "<", $file) or exit 1; my $all = <$f>;
        my $last;
        for my $blk (split /^-{10,}.*$/m, $all) {
            next unless $blk =~ /message received/;
            my ($msg) = $blk =~ /\n\s*\n(.*)/s or next;
            $last = $msg if $msg =~ /^SIP\/2\.0 200/;
        }
        defined $last or exit 1;
        $last =~ s/\r//g;
        print $last;
    ' "$OUT/$1.msg"
}

# ob_has NAME REGEX...: the last 200 of NAME has a line matching each REGEX;
# a REGEX starting with ! must match no line
ob_has() {
    local name=$1 msg re rc=0
    shift
    msg=$(ob_200 "$name") || {
        echo "$name: no 200 in $OUT/$name.msg" >&2
        return 1
    }
    for re in "$@"; do
        if [ "${re#!}" != "$re" ]; then
            if grep -qE -- "${re#!}" <<<"$msg"; then
                echo "$name: the 200 has a line matching '${re#!}'" >&2
                rc=1
            fi
        elif ! grep -qE -- "$re" <<<"$msg"; then
            echo "$name: the 200 has no line matching '$re'" >&2
            rc=1
        fi
    done
    [ $rc = 0 ] || printf '%s\n' "---- $name: the 200" "$msg" >&2
    return $rc
}

# ob_log_count EVENT: lines of the fixture's logs with event=EVENT
ob_log_count() { cat "$FIXDIR"/*.log | grep -c "event=$1 " || true; }

ob_no_tcp() { [ -z "$(ss -Htn state established "( sport = :$P_PORT )")" ]; }

ob_reg() { # NAME PORT USER REGID UUID SUPPORTED [sipp args]
    local name=$1 port=$2 user=$3 regid=$4 uuid=$5 sup=$6
    shift 6
    ue "$name" "$port" ob_register.xml -s "$user" -au "$user@$REALM" -ap "$user-secret" \
        -key expires 600 -key regid "$regid" -key uuid "$uuid" -key sup "$sup" "$@"
}

t_outbound_flows() {
    local rc=0 uuid=00000000-0000-4000-8000-0000000000f1 failed0 over0
    local inst="\\+sip.instance=\"<urn:uuid:$uuid>\""
    ob_reg ob1 "$UE_PORT" olga 1 "$uuid" "path, outbound" || rc=1
    ob_has ob1 '^Require: *outbound' '^Path: <sip:term-[^>]*;lr;ob>' '^Flow-Timer: *5$' \
        "^Contact: <sip:olga@127.0.0.1:$UE_PORT;ob>;expires=[0-9]+;$inst;reg-id=1" || rc=1
    ob_reg ob2 "$UE2_PORT" olga 2 "$uuid" "path, outbound" -t t1 || rc=1
    ob_has ob2 '^Require: *outbound' '^Flow-Timer: *5$' "^Contact: .*;$inst;reg-id=1" \
        "^Contact: .*;transport=tcp;ob>;expires=[0-9]+;$inst;reg-id=2|^Contact: <sip:olga@127.0.0.1:$UE2_PORT;ob>;expires=[0-9]+;$inst;reg-id=2" ||
        rc=1
    # flow 2's connection went with its sipp
    wait_for 10 "flow 2's TCP connection to the P-CSCF to close" ob_no_tcp
    failed0=$(ob_log_count flow_failed)
    over0=$(ob_log_count flow_failover)
    deliver_to olga message_200.xml ob_uas.xml || rc=1
    local failed over
    failed=$(($(ob_log_count flow_failed) - failed0))
    over=$(($(ob_log_count flow_failover) - over0))
    say "P-CSCF flow_failed: $failed, S-CSCF flow_failover: $over (want 1, 1)"
    [ "$failed" = 1 ] && [ "$over" = 1 ] || rc=1
    return $rc
}

t_outbound_edge() {
    local rc=0 uuid=00000000-0000-4000-8000-0000000000e1
    local inst="\\+sip.instance=\"<urn:uuid:$uuid>\""
    # RFC 5626 §6: asked for, but no edge proxy keeps the flow
    peer ob439 ob_register_439.xml -s oleg -key uuid "$uuid" || rc=1
    # not asked for (no Supported: outbound): the reg-id is ignored
    local save=$P_PORT
    P_PORT=$I_PORT
    ob_reg obplain "$UE2_PORT" oleg 1 "$uuid" path || rc=1
    P_PORT=$save
    ob_has obplain "^Contact: <sip:oleg@127.0.0.1:$UE2_PORT;ob>;expires=[0-9]+;$inst\$" \
        '!^Require:' '!reg-id' || rc=1
    # through the P-CSCF: a flow (its Path is marked ;ob), but unasked, so
    # no Require: outbound in the 200
    ob_reg obunasked "$UE_PORT" olga 7 "$uuid" path || rc=1
    ob_has obunasked '^Path: <sip:term-[^>]*;lr;ob>' "^Contact: .*;$inst;reg-id=7" \
        '!^Require:' '!^Flow-Timer:' || rc=1
    return $rc
}

t_outbound_stun() {
    need turnutils_stunclient stun curl
    local rc=0 out n0 n1
    n0=$(stun_answered) || die "no imscloud_stun_answered_total in the P-CSCF's /metrics"
    out=$(timeout "$(scaled 10)" turnutils_stunclient -p "$P_PORT" 127.0.0.1 2>&1) || rc=1
    printf '%s\n' "$out" >"$OUT/turnutils_stunclient.out"
    if grep -qE 'UDP reflexive addr: 127\.0\.0\.1:[0-9]+' <<<"$out"; then
        say "turnutils_stunclient: $(grep -m1 -oE 'reflexive addr: [0-9.:]+' <<<"$out")"
    else
        echo "turnutils_stunclient got no reflexive address: $out" >&2
        rc=1
    fi
    # RFC 3489: no magic cookie, MAPPED-ADDRESS; its first test asks to change
    # nothing, its later ones for another address or port (420: we have none)
    out=$(timeout "$(scaled 20)" stun "127.0.0.1:$P_PORT" -v 2>&1) || true
    printf '%s\n' "$out" >"$OUT/stun.out"
    if grep -qE 'MappedAddress = 127\.0\.0\.1:[0-9]+' <<<"$out"; then
        say "stun: $(grep -m1 -oE 'MappedAddress = [0-9.:]+' <<<"$out")"
    else
        echo "stun (RFC 3489) got no MappedAddress: $(tail -n 5 <<<"$out")" >&2
        rc=1
    fi
    n1=$(stun_answered) || rc=1
    say "imscloud_stun_answered_total: $n0 -> $n1 (want at least 2 more)"
    [ "$((n1 - n0))" -ge 2 ] || rc=1
    return $rc
}

# outbound_call: olga (a flow, reg-id 1, UDP) calls bob with a Contact that
# reaches nothing but ";ob": the P-CSCF record-routes with her flow token
# (RFC 5626 §5.3), so bob's BYE reaches her on the flow
t_outbound_call() {
    local rc=0 uuid=00000000-0000-4000-8000-0000000000c1
    ob_reg obc "$UE_PORT" olga 1 "$uuid" "path, outbound" || rc=1
    sess_reg_bob || rc=1
    sess_bg uas_ob "$UE2_PORT" ob_call_uas.xml -s bob -key caller olga -key realm "$REALM"
    ue call_ob "$UE_PORT" ob_call_uac.xml -s bob -key caller olga || rc=1
    sess_wait uas_ob || rc=1
    return $rc
}

# outbound_callee: bob calls olga, who answers on her flow (reg-id 1, UDP)
# with a Contact that reaches nothing but ";ob": the INVITE came with the
# P-CSCF's flow-token Record-Route, so bob's ACK (which the core forwards
# statelessly) and BYE reach her on the flow
t_outbound_callee() {
    local rc=0 uuid=00000000-0000-4000-8000-0000000000c2
    ob_reg obe "$UE_PORT" olga 1 "$uuid" "path, outbound" || rc=1
    sess_reg_bob || rc=1
    sess_bg uas_obe "$UE_PORT" ob_callee_uas.xml -s olga
    ue call_obe "$UE2_PORT" sess_call_uac.xml -s olga -key caller bob || rc=1
    sess_wait uas_obe || rc=1
    return $rc
}
