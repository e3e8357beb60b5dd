# shellcheck shell=bash
# tests/e2e/ims/t_policy.sh: policy follow-ups (docs/keystone.md, docs/audit.md):
# audit events for denials, ims:subscribe, SIGHUP reload, --check-config, and
# Bearer tokens kept inside the trust domain.  Sourced by ims_e2e.sh; uses
# t_bearer.sh's helpers (kb_user, kb_py, kb_reg) and t_regevent.sh's re_user.
#   policy_audit        nina (reader only) registers with her token: 403, and
#                       the trail gets a CADF line: outcome failure, reason
#                       {policy, ims:register}, initiator her Keystone user id
#                       with the UE's address, target the Request-URI
#   policy_subscribe    ims:subscribe changed to admin-only + SIGHUP: a Digest
#                       user's reg-event SUBSCRIBE gets 403 naming the rule
#                       (audited); the old policy back + SIGHUP: 200
#   policy_subscribe_token  ims:subscribe needs TOTP + SIGHUP: tom registers
#                       with a password+TOTP token, then SUBSCRIBEs (reg event)
#                       with a fresh password-only token of his own: the
#                       request's token decides (validated while the SUBSCRIBE
#                       is held): 403; with the TOTP token: 200
#   policy_bad_reload   a policy file that does not parse + SIGHUP: the log
#                       names file:line, the old policy still decides
#   policy_check_config imscloud --check-config with a bad [scscf] policy_file:
#                       exit 2, stderr names file:line
#   policy_strip_ue     (ims1) a MESSAGE carrying Authorization and
#                       Proxy-Authorization Bearer: the callee UE gets neither
#                       (the terminating P-CSCF strips them)
#   policy_ut_reload    (imsut) [ut] policy_file: ut:read changed to admin-only
#                       + SIGHUP: nina (reader) gets 403 for carol's settings;
#                       the old file + SIGHUP: 200 again
#   policy_strip_out    (ims1) the same with Privacy: id to another network
#                       (sip:bob@127.0.0.1:UE2_PORT): the S-CSCF's privacy path
#                       strips them (t_privacy.sh's privacy_out plus tokens)

pol_file() { echo "$TMP/policy.yaml"; }

# pol_audit_wait PATTERN...: until one line of the trail matches every
# PATTERN (fixed strings), at most 10 s (scaled: the writer is a thread).
pol_audit_wait() {
    local f=$TMP/hss/audit.jsonl deadline=$(($(date +%s) + $(scaled 10))) p line
    while :; do
        while IFS= read -r line; do
            for p in "$@"; do
                case $line in *"$p"*) ;; *) continue 2 ;; esac
            done
            printf '%s\n' "$line" >"$OUT/audit.line"
            return 0
        done <"$f"
        [ "$(date +%s)" -lt $deadline ] || {
            say "no audit line with: $*"
            return 1
        }
        sleep 0.2
    done
}

# pol_hup NEWFILE WANT [POLICY]: installs NEWFILE as the fixture's policy
# (default: the S-CSCF's) and SIGHUPs the process; waits for a new log line
# matching WANT (how the reload went).
pol_hup() {
    local want=$2 log=$FIXDIR/ims.log before
    before=$(grep -c "$want" "$log" || true)
    cp "$1" "${3:-$(pol_file)}"
    kill -HUP "$(cat "$FIXDIR/ims.pid")"
    local deadline=$(($(date +%s) + $(scaled 10)))
    until [ "$(grep -c "$want" "$log" || true)" -gt "$before" ]; do
        [ "$(date +%s)" -lt $deadline ] || {
            say "no '$want' in the log after SIGHUP"
            return 1
        }
        sleep 0.1
    done
}

pol_keep() { cp "$(pol_file)" "$OUT/policy.orig"; }
pol_restore() { pol_hup "$OUT/policy.orig" 'event=policy_reloaded'; }

t_policy_audit() {
    local tok uid
    kb_user nina || return 1
    tok=$(kb_py token nina ninapw) || return 1
    kb_reg reg kb_register_403.xml nina "$tok" 600 || return 1
    pol_audit_wait '"reasonType":"policy"' '"reasonCode":"ims:register"' '"outcome":"failure"' \
        '"name":"sip:nina@ims.test"' '"address":"127.0.0.1"' '"target":{"id":"sip:ims.test"' ||
        return 1
    uid=$(sed -n 's/.*"initiator":{"host":{[^}]*},"id":"\([^"]*\)".*/\1/p' "$OUT/audit.line")
    say "audited: initiator id=$uid"
    # the Keystone user id (32 hex digits), not the IMPI
    [[ $uid =~ ^[0-9a-f]{32}$ ]] || return 1
    grep -q 'event=policy_denied rule=ims:register' "$FIXDIR/ims.log"
}

t_policy_subscribe() {
    local rc=0
    re_user polsub || return 1
    pol_keep
    sed 's/^"ims:subscribe":.*/"ims:subscribe": "role:admin"/' "$OUT/policy.orig" >"$OUT/p2.yaml"
    pol_hup "$OUT/p2.yaml" 'event=policy_reloaded' || return 1
    register denied pol_subscribe_403.xml polsub polsub-secret 600 -key alg MD5 || rc=1
    pol_audit_wait '"reasonCode":"ims:subscribe"' '"name":"sip:polsub@ims.test"' \
        '"action":"read"' || rc=1
    pol_restore || return 1
    register allowed re_subscribe.xml polsub polsub-secret 600 -key alg MD5 || rc=1
    return $rc
}

t_policy_bad_reload() {
    local rc=0
    re_user polbad || return 1
    pol_keep
    { cat "$OUT/policy.orig"; printf '"ims:subscribe": [broken\n'; } >"$OUT/bad.yaml"
    pol_hup "$OUT/bad.yaml" 'event=policy_reload_failed' || rc=1
    grep 'event=policy_reload_failed' "$FIXDIR/ims.log" | tail -n 1 >"$OUT/reload.err"
    say "$(cat "$OUT/reload.err")"
    grep -q "policy.yaml:[0-9]" "$OUT/reload.err" || rc=1
    # the old policy (ims:subscribe for members) still decides
    register kept re_subscribe.xml polbad polbad-secret 600 -key alg MD5 || rc=1
    cp "$OUT/policy.orig" "$(pol_file)"
    return $rc
}

t_policy_check_config() {
    local rc=0
    printf '"a": "role:x"\n"b": [\n' >"$OUT/bad.yaml"
    sed "s|^policy_file = .*|policy_file = $OUT/bad.yaml|" "$TMP/ims.conf" >"$OUT/bad.conf"
    "$IMS_BIN" -c "$OUT/bad.conf" --check-config >"$OUT/check.out" 2>&1 || rc=$?
    say "check-config exit $rc: $(cat "$OUT/check.out")"
    [ "$rc" = 2 ] && grep -q "bad.yaml:[0-9]" "$OUT/check.out" &&
        "$IMS_BIN" -c "$TMP/ims.conf" --check-config >/dev/null
}

t_policy_strip_ue() {
    local rc=0
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1 # t_sessions.sh
    sess_bg uas_msg "$UE2_PORT" message_uas.xml
    ue msg "$UE_PORT" pol_message_bearer.xml -s bob -key caller alice || rc=1
    sess_wait uas_msg || rc=1
    if grep -qiE '^(Proxy-)?Authorization:' "$OUT/uas_msg.msg"; then
        say "the callee UE received a Bearer token"
        rc=1
    fi
    grep -q 'event=bearer_stripped where=pcscf_to_ue' "$FIXDIR/ims.log" || rc=1
    return $rc
}

t_policy_strip_out() {
    local rc=0
    pv_register || return 1 # t_privacy.sh
    PV_TARGET="127.0.0.1:$UE2_PORT" pv_send out pol_msg_privacy_bearer.xml pv_uas_id.xml \
        -key privacy id || rc=1
    if grep -qiE '^(Proxy-)?Authorization:' "$OUT/uas_out.msg"; then
        say "the other network received a Bearer token"
        rc=1
    fi
    grep -q 'event=bearer_stripped where=scscf_out' "$FIXDIR/ims.log" || rc=1
    return $rc
}

t_policy_ut_reload() {
    local rc=0 nina up=$TMP/ut-policy.yaml
    nina=$(ut_nina) && [ -n "$nina" ] || die "no token for nina" # t_ut.sh
    cp "$up" "$OUT/ut-policy.orig"
    ut_expect before 200 GET "$CAROL/settings" "$nina" || rc=1
    sed 's/^"ut:read":.*/"ut:read": "role:admin"/' "$OUT/ut-policy.orig" >"$OUT/ut2.yaml"
    pol_hup "$OUT/ut2.yaml" 'mod=ut event=policy_reloaded' "$up" || return 1
    ut_expect after 403 GET "$CAROL/settings" "$nina" || rc=1
    pol_hup "$OUT/ut-policy.orig" 'mod=ut event=policy_reloaded' "$up" || return 1
    ut_expect again 200 GET "$CAROL/settings" "$nina" || rc=1
    return $rc
}

t_policy_subscribe_token() {
    local secret totp pw rc=0
    kb_user tom || return 1
    secret=$(sed -n 's/^KB_TOM_TOTP=//p' "$TMP/kb.env")
    totp=$(kb_py token tom tompw "$secret") || return 1
    pw=$(kb_py token tom tompw) || return 1
    pol_keep
    sed 's/^"ims:subscribe":.*/"ims:subscribe": "rule:member and methods:totp"/' \
        "$OUT/policy.orig" >"$OUT/p2.yaml"
    pol_hup "$OUT/p2.yaml" 'event=policy_reloaded' || return 1
    printf 'SEQUENTIAL\n%s;%s;\n' "$totp" "$pw" >"$OUT/t403.csv"
    ue denied "$UE_PORT" pol_kb_sub_403.xml -s tom -key expires 600 -inf "$OUT/t403.csv" || rc=1
    printf 'SEQUENTIAL\n%s;%s;\n' "$totp" "$totp" >"$OUT/t200.csv"
    ue allowed "$UE_PORT" pol_kb_sub_200.xml -s tom -key expires 600 -inf "$OUT/t200.csv" || rc=1
    pol_restore || rc=1
    return $rc
}
