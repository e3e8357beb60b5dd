# shellcheck shell=bash
# tests/e2e/ims/t_privacy.sh - privacy at the trust-domain boundary (RFC 3323,
# RFC 3325; docs/privacy.md), sourced by ims_e2e.sh.  alice (UE_PORT) sends a
# MESSAGE to bob, registered on UE2_PORT where a sipp UAS checks what arrived
# (pv_uas_*.xml); every MESSAGE also carries a P-Asserted-Identity of the UE's
# own and the identifying headers of RFC 3323 §4.1, and bob's 200 asks for
# Privacy: id itself, so every caller checks that bob's PAI and Server did not
# reach it and that its From came back as sent (pv_*_uac.xml).  Uses the
# session helpers of t_sessions.sh (sess_bg, sess_wait, sess_reg_bob).
#
#   privacy_id      Privacy: id -> bob gets no PAI, no Privacy; nothing else changes
#   privacy_plain   no Privacy -> bob gets the PAI the P-CSCF asserted (alice's
#                   registered identity, not the UE's forged one): TS 24.229 lets
#                   the UE have it when no privacy is asked for
#   privacy_user    Privacy: user -> anonymous From (same tag), none of the
#                   identifying headers
#   privacy_none    Privacy: none -> nothing removed, Privacy: none arrives
#   privacy_critical Privacy: session;critical -> 500 Privacy Not Available, bob
#                   gets nothing
#   privacy_out     a MESSAGE to sip:bob@127.0.0.1:UE2_PORT (not a home domain,
#                   not a trusted peer): the S-CSCF removes PAI on the way out
#   privacy_call    an INVITE with Privacy: id;user: bob sees an anonymous From
#                   and no PAI, alice gets 180/200 with her own From, ACK and BYE
#                   complete the dialog

# pv_send NAME UAC UAS [sipp args]: bob's UAS (UAS) on UE2_PORT, alice sends UAC
# to bob@${PV_TARGET:-$REALM}
pv_send() {
    local name=$1 uac=$2 uas=$3 rc=0
    shift 3
    sess_bg "uas_$name" "$UE2_PORT" "$uas"
    ue "$name" "$UE_PORT" "$uac" -s bob -key caller alice -key target "${PV_TARGET:-$REALM}" \
        "$@" || rc=1
    sess_wait "uas_$name" || rc=1
    return $rc
}

pv_register() {
    register rega register.xml alice alice-secret 600 -key alg MD5 && sess_reg_bob
}

t_privacy_id() {
    pv_register || return 1
    pv_send id pv_msg_uac.xml pv_uas_id.xml -key privacy id
}

t_privacy_plain() {
    pv_register || return 1
    pv_send plain pv_plain_uac.xml pv_uas_pai.xml
}

t_privacy_user() {
    pv_register || return 1
    pv_send user pv_msg_uac.xml pv_uas_user.xml -key privacy user
}

t_privacy_none() {
    pv_register || return 1
    pv_send none pv_msg_uac.xml pv_uas_none.xml -key privacy none
}

t_privacy_critical() {
    local rc=0
    pv_register || return 1
    # bob listens but must get nothing: a message would show in its trace
    sess_bg uas_crit "$UE2_PORT" pv_uas_id.xml
    ue crit "$UE_PORT" pv_reject_uac.xml -s bob -key caller alice -key target "$REALM" \
        -key privacy "session;critical" || rc=1
    sleep "$(scaled 1)"
    local pidv=SESS_PID_uas_crit
    kill "${!pidv}" 2>/dev/null || true
    wait "${!pidv}" 2>/dev/null || true
    if grep -q 'MESSAGE sip:' "$OUT/uas_crit.msg" 2>/dev/null; then
        echo "the callee got the MESSAGE the P-CSCF should have refused" >&2
        rc=1
    fi
    # without critical the same request goes through ('session' is ignored)
    pv_send nocrit pv_msg_uac.xml pv_uas_id.xml -key privacy "session;id" || rc=1
    return $rc
}

t_privacy_out() {
    pv_register || return 1
    # the S-CSCF routes it by the Request-URI to a peer of another network
    PV_TARGET="127.0.0.1:$UE2_PORT" pv_send out pv_msg_uac.xml pv_uas_id.xml -key privacy id
}

t_privacy_call() {
    local rc=0
    pv_register || return 1
    sess_bg uas_call "$UE2_PORT" pv_call_uas.xml -s bob
    ue call "$UE_PORT" pv_call_uac.xml -s bob -key caller alice || rc=1
    sess_wait uas_call || rc=1
    return $rc
}
