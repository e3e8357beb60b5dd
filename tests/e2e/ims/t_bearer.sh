# shellcheck shell=bash
# tests/e2e/ims/t_bearer.sh: RFC 8898 Bearer (Keystone token) registration and
# the policy at the S-CSCF (issue 5 parts 2, 3, 4, 6; docs/keystone.md).
# Sourced by ims_e2e.sh (its helpers: ue, register, scaled, sipp_stat...).
#
# Fixture imsk = ims1 (one process, every role), imsk4 = ims4 (P, I, S and the
# HSS in four processes, Cx over Diameter), each plus [keystone] (on the
# S-CSCF) pointing at the
# real Keystone of tests/e2e/keystone (ks-start.sh; $KS_STATE/keystone.env),
# cache_ttl 3 s, timeout_ms 1000, and [scscf] policy_file = the policy below
# (ims:register needs member, and TOTP from users holding mfa_required;
# ims:call:external needs TOTP).  t_bearer.py does the Keystone side (users
# nina and tom, tokens, application credentials, revocation).
#   bearer_challenge  REGISTER without credentials: 401 with Digest AND Bearer
#                     realm/scope/authz_server challenges
#   bearer_valid      alice's password token: 200, the binding's expiry capped
#                     at the token's lifetime (asked 600 s); a refresh: 200
#   bearer_revoked    registered, then the token revoked at Keystone: the next
#                     refresh after the cache TTL gets 401 error="invalid_token"
#   bearer_other      alice's token in a REGISTER for bob: the IMPI is
#                     alice@ims.test by the convention, the HSS refuses the
#                     pair with sip:bob@ims.test: 403
#   bearer_norole     nina (reader only on the IMS project): 403 with
#                     Warning: 399 ... "Denied by policy rule ims:register"
#   bearer_mfa        tom (mfa_required): a password-only token 403, a
#                     password+TOTP token 200
#   bearer_appcred    a token issued for alice's application credential: 200
#   bearer_call_external  alice registered with a password token: an INVITE to
#                     another domain gets 403 naming ims:call:external
#   bearer_call_token tom registered with Digest: an INVITE to another domain
#                     403 (no TOTP); the same with tom's password+TOTP token in
#                     its own "Authorization: Bearer": the call completes
#   bearer_outage     Keystone stopped (SIGSTOP): a cached token still
#                     registers, a new one gets 503 + Retry-After from the
#                     S-CSCF within timeout_ms, relayed by the I-CSCF (no
#                     other S-CSCF to fail over to), a Digest user registers; SIGCONT: the
#                     new token registers (through the P-CSCF) again

KB_PY=$HERE/t_bearer.py

kb_env_file() {
    local f=${KS_STATE:-}/keystone.env
    if [ -z "${KS_STATE:-}" ] || [ ! -f "$f" ]; then
        skip "no Keystone fixture (KS_STATE/keystone.env; e2e_keystone_setup)"
    fi
    echo "$f"
}

kb_get() { sed -n "s/^$1=//p" "$(kb_env_file)" | tail -n 1; }

# kb_conf CONF: the imsk fixture's additions to an ims1 configuration
# (called by ims_e2e.sh setup).
kb_conf() {
    local conf=$1 envf
    envf=$(kb_env_file)
    [ -x /usr/bin/python3 ] || skip "missing /usr/bin/python3"
    # shellcheck disable=SC2154 # TMP: set by ims_e2e.sh setup
    (umask 077 && kb_get KS_SVC_PASSWORD >"$TMP/ks.pw")
    cat >"$TMP/policy.yaml" <<'EOF'
"member": "role:member or role:admin"
"ims:register": "rule:member and (methods:totp or not role:mfa_required)"
"ims:message": "rule:member"
"ims:call": "rule:member"
"ims:call:external": "rule:member and methods:totp"
"ims:subscribe": "rule:member"
"default": "!"
EOF
    sed -i "/^\[scscf\]$/a policy_file = $TMP/policy.yaml" "$conf"
    {
        printf '\n[keystone]\nurl = %s\nuser = %s\npassword_file = %s\nuser_domain = %s\n' \
            "$(kb_get KS_URL)" "$(kb_get KS_SVC_USER)" "$TMP/ks.pw" "$(kb_get KS_SVC_DOMAIN)"
        printf 'cache_ttl = 3\nnegative_ttl = 1\ntimeout_ms = 1000\n'
    } >>"$conf"
    /usr/bin/python3 "$KB_PY" "$envf" users >"$TMP/kb.env" 2>"$FIXDIR/kb-users.log" ||
        die "t_bearer.py users failed: $(cat "$FIXDIR/kb-users.log")"
}

kb_py() { /usr/bin/python3 "$KB_PY" "$(kb_env_file)" "$@"; }

# kb_user NAME: the IMS subscriber NAME@ims.test (a Digest password too, unused
# here) for the Keystone user NAME, by the convention IMPI = <name>@<realm>.
kb_user() {
    local u=$1 conf ctl
    conf=$(hss_conf)
    ctl="$(dirname "$IMS_BIN")/imscloudctl"
    "$ctl" -c "$conf" impu show "sip:$u@$REALM" >/dev/null 2>&1 && return 0
    "$ctl" -c "$conf" profile show "kb-$u" >/dev/null 2>&1 ||
        "$ctl" -c "$conf" profile ifc-add "kb-$u" --priority 100 --as "sip:as.$REALM" \
            --method PUBLISH >"$OUT/ctl-profile-$u.out" 2>&1 || {
        cat "$OUT/ctl-profile-$u.out" >&2
        return 1
    }
    "$ctl" -c "$conf" user add "$u@$REALM" --password "$u-secret" --impu "sip:$u@$REALM" \
        --profile "kb-$u" >"$OUT/ctl-add-$u.out" 2>&1 || {
        cat "$OUT/ctl-add-$u.out" >&2
        return 1
    }
}

# kb_reg NAME SCENARIO USER TOKEN [EXPIRES]: a sipp REGISTER with
# "Authorization: Bearer TOKEN" (an injection file) from UE_PORT.
kb_reg() {
    local name=$1 sf=$2 user=$3 tok=$4 exp=${5:-600}
    printf 'SEQUENTIAL\n%s;\n' "$tok" >"$OUT/$name.csv"
    ue "$name" "$UE_PORT" "$sf" -s "$user" -key expires "$exp" -inf "$OUT/$name.csv"
}

# kb_expires NAME: the expires= of the Contact in the 200 sipp received
kb_expires() {
    awk '/^SIP\/2\.0 200/{ok=1} ok && /^Contact:/{if (match($0, /expires=[0-9]+/)) {print substr($0, RSTART+8, RLENGTH-8); exit}}' \
        "$OUT/$1.msg"
}

t_bearer_challenge() {
    ue ch "$UE_PORT" kb_challenge.xml -s alice -key expires 600
}

t_bearer_valid() {
    local tok exp life rc=0
    tok=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg reg kb_register_200.xml alice "$tok" 600 || return 1
    exp=$(kb_expires reg)
    life=$(kb_get KS_TOKEN_EXPIRATION)
    say "granted expires=$exp (asked 600, token lifetime $life s)"
    [ -n "$exp" ] && [ "$exp" -le "$life" ] && [ "$exp" -ge 1 ] || rc=1
    kb_reg refresh kb_register_200.xml alice "$tok" 600 || rc=1
    return $rc
}

t_bearer_revoked() {
    local tok
    tok=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg reg kb_register_200.xml alice "$tok" 600 || return 1
    kb_py revoke "$tok" || return 1
    sleep 4 # [keystone] cache_ttl = 3: the revoked token leaves the cache
    kb_reg again kb_register_401.xml alice "$tok" 600
}

t_bearer_other() {
    local tok
    tok=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg reg kb_register_other.xml bob "$tok" 600
}

t_bearer_norole() {
    local tok
    kb_user nina || return 1
    tok=$(kb_py token nina ninapw) || return 1
    kb_reg reg kb_register_403.xml nina "$tok" 600
}

t_bearer_mfa() {
    local tok secret rc=0
    kb_user tom || return 1
    secret=$(sed -n 's/^KB_TOM_TOTP=//p' "$TMP/kb.env")
    tok=$(kb_py token tom tompw) || return 1
    kb_reg pw kb_register_403.xml tom "$tok" 600 || rc=1
    tok=$(kb_py token tom tompw "$secret") || return 1
    kb_reg totp kb_register_200.xml tom "$tok" 600 || rc=1
    return $rc
}

t_bearer_appcred() {
    local tok
    tok=$(kb_py appcred alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg reg kb_register_200.xml alice "$tok" 600
}

t_bearer_call_external() {
    local tok
    tok=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg reg kb_register_200.xml alice "$tok" 600 || return 1
    ue call "$UE_PORT" kb_invite_403.xml -s carol -key caller alice -key domain example.net
}

t_bearer_call_token() {
    local tok secret rc=0 dom="127.0.0.1:$UE2_PORT"
    kb_user tom || return 1
    secret=$(sed -n 's/^KB_TOM_TOTP=//p' "$TMP/kb.env")
    # tom registers with Digest: local roles, no TOTP -> the external call is refused
    register reg register.xml tom tom-secret 600 -key alg MD5 || return 1
    ue denied "$UE_PORT" kb_invite_403.xml -s kbuas -key caller tom -key domain "$dom" || rc=1
    # the same call with tom's password+TOTP token on the INVITE: allowed
    tok=$(kb_py token tom tompw "$secret") || return 1
    printf 'SEQUENTIAL\n%s;\n' "$tok" >"$OUT/call.csv"
    sess_bg uas "$UE2_PORT" sess_call_uas.xml -s kbuas # t_sessions.sh
    ue call "$UE_PORT" kb_invite_200.xml -s kbuas -key caller tom -key domain "$dom" \
        -inf "$OUT/call.csv" || rc=1
    sess_wait uas || rc=1
    # the token was for the S-CSCF: the callee never sees it
    if grep -qi '^Authorization:' "$OUT/uas.msg"; then
        say "the callee received the caller's Authorization header"
        rc=1
    fi
    return $rc
}

t_bearer_outage() {
    local pg cached fresh t0 t1 ms rc=0
    pg=$(kb_get KS_PID)
    [ -n "$pg" ] || die "no KS_PID in the Keystone env file"
    cached=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    fresh=$(kb_py token alice "$(kb_get KS_ALICE_PASSWORD)") || return 1
    kb_reg warm kb_register_200.xml alice "$cached" 600 || return 1
    kill -STOP -- "-$pg"
    trap 'kill -CONT -- -'"$pg"' 2>/dev/null || true' EXIT
    # within cache_ttl (3 s) of the validation: served from the cache
    kb_reg cached kb_register_200.xml alice "$cached" 600 || rc=1
    # through the P-CSCF and the I-CSCF: the S-CSCF's 503 comes back with its
    # Retry-After (the I-CSCF has no other S-CSCF to try)
    t0=$(date +%s%N)
    kb_reg down kb_register_503.xml alice "$fresh" 600 || rc=1
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    say "503 after $ms ms (timeout_ms 1000; bound $(scaled 4000) ms)"
    [ $ms -le "$(scaled 4000)" ] || rc=1
    # Digest users do not need Keystone
    register digest register.xml dave dave-secret 600 -key alg MD5 || rc=1
    kill -CONT -- "-$pg"
    trap - EXIT
    sleep 1
    kb_reg back kb_register_200.xml alice "$fresh" 600 || rc=1
    return $rc
}
