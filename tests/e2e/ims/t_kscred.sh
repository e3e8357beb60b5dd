# shellcheck shell=bash
# tests/e2e/ims/t_kscred.sh: an IMS user provisioned ONLY with the openstack
# CLI (user create, role add, credential create --type ims-digest) registers
# with Digest through P-, I- and S-CSCF: the HSS takes the secrets from
# Keystone's credentials API (issue 5 part 5; docs/keystone.md "Provisioning
# with the openstack CLI"; src/hss/ks_creds.c).
# Sourced by ims_e2e.sh; fixtures imsk and imsk4 (t_bearer.sh), plus kc_conf below:
# [hss] keystone_credentials = yes, keystone_credentials_ttl = 2.
#   kscred_register  200 with the right password; the wrong one gets 401s
#                    then 403, like any user
#   kscred_deleted   registered, then `openstack credential delete`: after
#                    the HSS's TTL the user is unknown (401s then 403)
#   kscred_badrealm  a user writes their own ims-digest credential (as
#                    Keystone's policy lets a credential's owner) with a
#                    realm that would break out of the challenge's
#                    quoted-string: the HSS refuses the credential
#                    (event=ks_credential_unusable) and the user is unknown
#                    (401s then 403), the injected header nowhere
#   kscred_outage    a Keystone-backed user whose secrets are past the TTL,
#                    Keystone stopped (SIGSTOP): the MAR fails
#                    (UNABLE_TO_COMPLY), the UE gets the S-CSCF's 503 with
#                    Retry-After relayed by the I-CSCF; a local Digest user
#                    still registers; SIGCONT: the Keystone user registers

KC_TTL=2

# kc_conf CONF [keystone]: the [hss] additions of imsk (one process: its
# [keystone] comes from kb_conf) and imsk4 (the HSS process: "keystone" adds
# a [keystone] section like kb_conf's); called by ims_e2e.sh setup.
kc_conf() {
    printf '\n[hss]\nkeystone_credentials = yes\nkeystone_credentials_ttl = %s\n' "$KC_TTL" \
        >>"$1"
    printf 'keystone_user_domain_id = default\n' >>"$1"
    [ "${2:-}" = keystone ] || return 0
    # shellcheck disable=SC2154 # TMP: set by ims_e2e.sh setup; ks.pw: kb_conf
    printf '\n[keystone]\nurl = %s\nuser = %s\npassword_file = %s\nuser_domain = %s\n' \
        "$(kb_get KS_URL)" "$(kb_get KS_SVC_USER)" "$TMP/ks.pw" "$(kb_get KS_SVC_DOMAIN)" >>"$1"
    printf 'timeout_ms = 1000\n' >>"$1"
}

# kc_os ARGS: /usr/bin/openstack as the Keystone fixture's admin.
kc_os() {
    [ -x /usr/bin/openstack ] || skip "missing /usr/bin/openstack (python3-openstackclient)"
    OS_AUTH_URL=$(kb_get KS_URL) OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin \
        OS_PASSWORD=$(kb_get KS_ADMIN_PASSWORD) OS_PROJECT_NAME=admin \
        OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_INTERFACE=public \
        /usr/bin/openstack "$@"
}

# kc_user NAME PASSWORD: the operator flow of docs/keystone.md; prints the
# credential's id.  A user of an earlier run in this fixture is replaced.
kc_user() {
    local u=$1 pw=$2 ha1 cred
    kc_os user delete --domain default "$u" >/dev/null 2>&1 || true
    kc_os user create --domain default --password "$pw" "$u" >"$OUT/os-user-$u.out" 2>&1 || {
        cat "$OUT/os-user-$u.out" >&2
        return 1
    }
    kc_os role add --user "$u" --user-domain default --project ims --project-domain ims member \
        >"$OUT/os-role-$u.out" 2>&1 || {
        cat "$OUT/os-role-$u.out" >&2
        return 1
    }
    # HA1 = MD5(IMPI ":" realm ":" password): Keystone never sees the password
    ha1=$(printf '%s' "$u@$REALM:$REALM:$pw" | md5sum | cut -d' ' -f1)
    cred=$(kc_os credential create --type ims-digest -f value -c id "$u" \
        "{\"ha1_md5\": \"$ha1\", \"realm\": \"$REALM\"}" 2>"$OUT/os-cred-$u.err") || {
        cat "$OUT/os-cred-$u.err" >&2
        return 1
    }
    echo "$cred"
}

t_kscred_register() {
    local rc=0
    kc_user kcalice kcalice-pw >/dev/null || return 1
    register ok register.xml kcalice kcalice-pw 600 -key alg MD5 || rc=1
    register wrong register_wrong.xml kcalice not-the-password 600 || rc=1
    return $rc
}

t_kscred_badrealm() {
    local u=kceve pw=kceve-pw ha1 uid rc=0
    kc_os user delete --domain default "$u" >/dev/null 2>&1 || true
    uid=$(kc_os user create --domain default --password "$pw" -f value -c id "$u" \
        2>"$OUT/os-user.out") &&
        kc_os role add --user "$u" --user-domain default --project ims --project-domain ims \
            member >"$OUT/os-role.out" 2>&1 || {
        cat "$OUT/os-user.out" "$OUT/os-role.out" >&2
        return 1
    }
    ha1=$(printf '%s' "$u@$REALM:$REALM:$pw" | md5sum | cut -d' ' -f1)
    # the user's own token, not the admin's: the owner may write it (by id:
    # the name would need identity:list_users)
    OS_AUTH_URL=$(kb_get KS_URL) OS_IDENTITY_API_VERSION=3 OS_USERNAME=$u OS_PASSWORD=$pw \
        OS_PROJECT_NAME=ims OS_PROJECT_DOMAIN_NAME=ims OS_USER_DOMAIN_NAME=Default \
        OS_INTERFACE=public /usr/bin/openstack credential create --type ims-digest "$uid" \
        "{\"ha1_md5\": \"$ha1\", \"realm\": \"$REALM\\\"\\r\\nService-Route: <sip:evil.test;lr>\"}" \
        >"$OUT/os-cred.out" 2>&1 || {
        cat "$OUT/os-cred.out" >&2
        return 1
    }
    register bad register_wrong.xml "$u" "$pw" 600 || rc=1
    grep -q "event=ks_credential_unusable impi=$u@$REALM" "$FIXDIR"/*.log || {
        say "no ks_credential_unusable for $u in the logs"
        rc=1
    }
    if grep -qs 'evil.test' "$OUT/bad.msg"; then
        say "the credential's realm reached the UE"
        rc=1
    fi
    kc_os user delete --domain default "$u" >/dev/null 2>&1 || true
    return $rc
}

t_kscred_deleted() {
    local rc=0 cred
    cred=$(kc_user kcbob kcbob-pw) || return 1
    register before register.xml kcbob kcbob-pw 600 -key alg MD5 || rc=1
    kc_os credential delete "$cred" || return 1
    sleep $((KC_TTL + 1))
    register after register_wrong.xml kcbob kcbob-pw 600 || rc=1
    return $rc
}

t_kscred_outage() {
    local pg t0 t1 ms rc=0
    pg=$(kb_get KS_PID)
    [ -n "$pg" ] || die "no KS_PID in the Keystone env file"
    kc_user kccarl kccarl-pw >/dev/null || return 1
    register warm register.xml kccarl kccarl-pw 600 -key alg MD5 || return 1
    sleep $((KC_TTL + 1)) # the HSS forgot kccarl's HA1: the next MAR asks Keystone
    kill -STOP -- "-$pg"
    trap 'kill -CONT -- -'"$pg"' 2>/dev/null || true' EXIT
    t0=$(date +%s%N)
    ue down "$UE_PORT" register_503.xml -s kccarl -key expires 600 || rc=1
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    say "503 after $ms ms (keystone timeout_ms 1000; bound $(scaled 6000) ms)"
    [ $ms -le "$(scaled 6000)" ] || rc=1
    # locally provisioned Digest users do not need Keystone
    register digest register.xml dave dave-secret 600 -key alg MD5 || rc=1
    kill -CONT -- "-$pg"
    trap - EXIT
    sleep 1
    register back register.xml kccarl kccarl-pw 600 -key alg MD5 || rc=1
    return $rc
}
