# shellcheck shell=bash
# tests/e2e/ims/t_ut.sh: the Ut interface (issue 7 part 3; docs/ut.md): users'
# own settings over HTTP with Keystone tokens, stored as Sh repository data in
# the HSS, applied by the S-CSCF.  Sourced by ims_e2e.sh (its helpers).
#
# Fixture imsut = ims1 (one process, every role) plus [ut] (HTTP on UT_PORT,
# policy below) and [keystone] pointing at the real Keystone of
# tests/e2e/keystone ($KS_STATE/keystone.env).  Subscriptions linked at setup
# (imscloudctl sub modify --keystone-user): alice -> Keystone alice (member of
# project ims), carol -> Keystone nina (reader only; made by t_bearer.py users).
#   ut_auth      no token 401 (WWW-Authenticate: Keystone uri=...), a bad token
#                401, nina's token on alice 403, an unknown IMPU 403 (only an
#                admin learns it does not exist: 404), nina on her own carol:
#                GET 200, PUT 403 (ut:write needs member); the admin
#                (admin:subscriber) reads and writes alice's settings; a
#                percent-encoded {impu} works too
#   ut_forward   alice PUTs call forwarding unconditional to bob: 200, GET shows
#                it, and again after an imscloud restart; bob registers (AKA),
#                a MESSAGE to alice reaches bob's UAS with Diversion: <alice>;
#                unset: the MESSAGE to alice gets 480 (not registered)
#   ut_barring   alice bars all incoming: a MESSAGE gets 603; anonymous only: an
#                anonymous MESSAGE gets 433, a named one 480 (not barred)
#   ut_resources privacy default, devices (bob's binding from the S-CSCF),
#                project link (own project 200, another 403), bad bodies 400,
#                an unknown member 400, DELETE 405
#   ut_https     an hss-only imscloud with [ut] over HTTPS (see t_ut_https)
#   ut_outage    Keystone stopped: 503 within timeout_ms; a request waiting
#                for Keystone during a stop gets 503, the stop is clean

ut_env_file() {
    local f=${KS_STATE:-}/keystone.env
    [ -n "${KS_STATE:-}" ] && [ -f "$f" ] || skip "no Keystone fixture (KS_STATE/keystone.env; e2e_keystone_setup)"
    echo "$f"
}

ut_get() { sed -n "s/^$1=//p" "$(ut_env_file)" | tail -n 1; }

# ut_conf CONF: the imsut fixture's additions to an ims1 configuration
# (called by ims_e2e.sh setup, after the env file is written).
ut_conf() {
    local conf=$1 envf ctl
    envf=$(ut_env_file)
    [ -x /usr/bin/python3 ] || skip "missing /usr/bin/python3"
    command -v curl >/dev/null || skip "missing curl"
    pick_ports UT_PORT
    echo "UT_PORT=$UT_PORT" >>"$ENVF"
    # shellcheck disable=SC2154 # TMP: set by ims_e2e.sh setup
    (umask 077 && ut_get KS_SVC_PASSWORD >"$TMP/ks.pw")
    cat >"$TMP/ut-policy.yaml" <<'EOF'
"ut:read": "role:reader or role:member or role:admin"
"ut:write": "role:member or role:admin"
"admin:subscriber": "role:admin"
"default": "!"
EOF
    {
        printf '\n[ut]\nlisten = 127.0.0.1:%s\npolicy_file = %s\n' "$UT_PORT" "$TMP/ut-policy.yaml"
        printf '\n[keystone]\nurl = %s\nuser = %s\npassword_file = %s\nuser_domain = %s\n' \
            "$(ut_get KS_URL)" "$(ut_get KS_SVC_USER)" "$TMP/ks.pw" "$(ut_get KS_SVC_DOMAIN)"
        printf 'cache_ttl = 3\nnegative_ttl = 1\ntimeout_ms = 2000\n'
    } >>"$conf"
    /usr/bin/python3 "$HERE/t_bearer.py" "$envf" users >"$TMP/ut-kb.env" 2>"$FIXDIR/ut-users.log" ||
        die "t_bearer.py users failed: $(cat "$FIXDIR/ut-users.log")"
    ctl="$(dirname "$IMS_BIN")/imscloudctl"
    "$ctl" -c "$conf" sub modify alice --keystone-user "$(ut_get KS_ALICE_ID)" \
        --keystone-project "$(ut_get KS_IMS_PROJECT_ID)" >"$FIXDIR/ut-link.log" 2>&1 &&
        "$ctl" -c "$conf" sub modify carol \
            --keystone-user "$(sed -n 's/^KB_NINA_ID=//p' "$TMP/ut-kb.env")" >>"$FIXDIR/ut-link.log" 2>&1 ||
        die "linking subscriptions failed: $(cat "$FIXDIR/ut-link.log")"
}

# ut_token USER PASSWORD DOMAIN PROJECT PROJECT_DOMAIN: a password token
ut_token() {
    local body
    body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"name":"%s"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"name":"%s"}}}}}' \
        "$1" "$3" "$2" "$4" "$5")
    curl -s -o /dev/null -D - -H 'Content-Type: application/json' -d "$body" \
        "$(ut_get KS_URL)/auth/tokens" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}
ut_alice() { ut_token alice "$(ut_get KS_ALICE_PASSWORD)" ims ims ims; }
ut_nina() { ut_token nina ninapw ims ims ims; }
ut_admin() { ut_token admin "$(ut_get KS_ADMIN_PASSWORD)" Default admin Default; }

# ut_call NAME METHOD PATH TOKEN [BODY]: prints the HTTP status; body and
# headers in $OUT/NAME.json, $OUT/NAME.hdr
ut_call() {
    local name=$1 method=$2 path=$3 tok=$4 body=${5:-} args=()
    [ -z "$tok" ] || args+=(-H "X-Auth-Token: $tok")
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl -s -m "$(scaled 10)" -X "$method" "${args[@]}" -o "$OUT/$name.json" -D "$OUT/$name.hdr" \
        -w '%{http_code}' "http://127.0.0.1:$UT_PORT/ut/v1/users/$path"
}

# ut_expect NAME WANT METHOD PATH TOKEN [BODY]
ut_expect() {
    local name=$1 want=$2 got
    shift 2
    got=$(ut_call "$name" "$@") || true
    say "$name: $1 $2 -> $got (want $want) $(head -c 300 "$OUT/$name.json" 2>/dev/null)"
    [ "$got" = "$want" ]
}

# ut_json NAME JQ WANT: a value of the last answer
ut_json() {
    local got
    got=$(jq -c "$2" "$OUT/$1.json" 2>/dev/null) || got='(not JSON)'
    [ "$got" = "$3" ] || {
        say "$1: $2 is $got, want $3"
        return 1
    }
}

ALICE=sip:alice@ims.test
CAROL=sip:carol@ims.test

t_ut_auth() {
    local rc=0 alice nina admin
    alice=$(ut_alice) && [ -n "$alice" ] || die "no token for alice"
    nina=$(ut_nina) && [ -n "$nina" ] || die "no token for nina"
    admin=$(ut_admin) && [ -n "$admin" ] || die "no admin token"
    ut_expect none 401 GET "$ALICE/settings" "" || rc=1
    grep -qi "^WWW-Authenticate: Keystone uri=\"$(ut_get KS_URL)\"" "$OUT/none.hdr" || {
        say "no WWW-Authenticate: Keystone uri=... in the 401"
        rc=1
    }
    ut_expect bad 401 GET "$ALICE/settings" "not-a-valid-token" || rc=1
    ut_expect other 403 GET "$ALICE/settings/call-forwarding" "$nina" || rc=1
    ut_expect other_put 403 PUT "$ALICE/settings/call-forwarding" "$nina" \
        '{"unconditional":"sip:nina@ims.test"}' || rc=1
    ut_expect unknown 403 GET "sip:nobody@ims.test/settings" "$alice" || rc=1
    ut_expect unknown_admin 404 GET "sip:nobody@ims.test/settings" "$admin" || rc=1
    ut_expect reader 200 GET "$CAROL/settings" "$nina" || rc=1
    ut_expect reader_put 403 PUT "$CAROL/settings/incoming-barring" "$nina" '{"all":true}' || rc=1
    ut_expect owner 200 GET "$ALICE/settings" "$alice" || rc=1
    ut_json owner .impu '"sip:alice@ims.test"' || rc=1
    ut_expect admin 200 GET "$ALICE/settings" "$admin" || rc=1
    ut_expect admin_put 200 PUT "$ALICE/settings/privacy" "$admin" '{"default":"none"}' || rc=1
    ut_expect encoded 200 GET "sip%3Aalice%40ims.test/settings/privacy" "$alice" || rc=1
    return $rc
}

# ut_restart: imscloud stopped cleanly and started again on the same config
ut_restart() {
    local out
    out=$(stop ims)
    [ -z "$out" ] || {
        say "restart: $out"
        return 1
    }
    start ims "$TMP/ims.conf"
    wait_for 20 "the S-CSCF on udp $S_PORT" udp_bound "$S_PORT"
    wait_for 20 "the I-CSCF on udp $I_PORT" udp_bound "$I_PORT"
    wait_for 20 "the P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the Ut interface on tcp $UT_PORT" tcp_bound "$UT_PORT"
}

t_ut_forward() {
    local rc=0 alice
    alice=$(ut_alice) && [ -n "$alice" ] || die "no token for alice"
    ut_expect cf_put 200 PUT "$ALICE/settings/call-forwarding" "$alice" \
        '{"unconditional":"sip:bob@ims.test","no_answer":"tel:+15550002","no_answer_timeout":30}' || rc=1
    ut_expect cf_get 200 GET "$ALICE/settings/call-forwarding" "$alice" || rc=1
    ut_json cf_get .unconditional '"sip:bob@ims.test"' || rc=1
    ut_json cf_get .no_answer_timeout 30 || rc=1
    ut_json cf_get .busy null || rc=1
    ut_restart || rc=1
    alice=$(ut_alice)
    ut_expect cf_after_restart 200 GET "$ALICE/settings" "$alice" || rc=1
    ut_json cf_after_restart .call_forwarding.unconditional '"sip:bob@ims.test"' || rc=1
    # the forwarded MESSAGE reaches bob's registered UE, with Diversion
    ue reg "$UE_PORT" register_aka.xml -s bob -au "bob@$REALM" -key expires 600 || rc=1
    deliver_to alice message_200.xml || rc=1
    grep -qi '^Diversion: <sip:alice@ims.test>;reason=unconditional' "$OUT/uas.msg" || {
        say "bob's UE got no Diversion naming alice"
        rc=1
    }
    ut_expect cf_off 200 PUT "$ALICE/settings/call-forwarding" "$alice" '{}' || rc=1
    peer after_off message_480.xml -s alice || rc=1
    return $rc
}

t_ut_barring() {
    local rc=0 alice
    alice=$(ut_alice) && [ -n "$alice" ] || die "no token for alice"
    ut_expect icb_all 200 PUT "$ALICE/settings/incoming-barring" "$alice" '{"all":true}' || rc=1
    peer barred ut_message_603.xml -s alice || rc=1
    ut_expect icb_anon 200 PUT "$ALICE/settings" "$alice" \
        '{"incoming_barring":{"all":false,"anonymous":true}}' || rc=1
    ut_json icb_anon .incoming_barring '{"all":false,"anonymous":true}' || rc=1
    peer anon ut_message_433.xml -s alice || rc=1
    peer named message_480.xml -s alice || rc=1
    ut_expect icb_off 200 PUT "$ALICE/settings/incoming-barring" "$alice" '{}' || rc=1
    peer anon_off message_480.xml -s alice || rc=1
    return $rc
}

t_ut_resources() {
    local rc=0 alice
    alice=$(ut_alice) && [ -n "$alice" ] || die "no token for alice"
    ut_expect priv_put 200 PUT "$ALICE/settings/privacy" "$alice" '{"default":"id"}' || rc=1
    ut_expect priv_get 200 GET "$ALICE/settings/privacy" "$alice" || rc=1
    ut_json priv_get .default '"id"' || rc=1
    ut_expect priv_bad 400 PUT "$ALICE/settings/privacy" "$alice" '{"default":"all"}' || rc=1
    ut_expect cf_bad 400 PUT "$ALICE/settings/call-forwarding" "$alice" \
        '{"unconditional":"mailto:x@y"}' || rc=1
    ut_expect not_json 400 PUT "$ALICE/settings" "$alice" 'forward please' || rc=1
    ut_expect unknown_member 400 PUT "$ALICE/settings" "$alice" '{"voicemail":true}' || rc=1
    ut_expect delete 405 DELETE "$ALICE/settings" "$alice" || rc=1
    ut_expect devices_put 405 PUT "$ALICE/settings/devices" "$alice" '{}' || rc=1
    # bob's binding, from the S-CSCF's location store (bob: no Keystone link,
    # so alice may not read his; alice's own list is empty: not registered)
    ut_expect devices 200 GET "$ALICE/settings/devices" "$alice" || rc=1
    ut_json devices .source '"scscf"' || rc=1
    ut_json devices .registered false || rc=1
    register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1
    ut_expect devices_reg 200 GET "$ALICE/settings/devices" "$alice" || rc=1
    ut_json devices_reg '.devices | length' 1 || rc=1
    ut_json devices_reg '.devices[0].contact | startswith("sip:")' true || rc=1
    ut_expect project 200 GET "$ALICE/settings/project" "$alice" || rc=1
    ut_json project .project_id "\"$(ut_get KS_IMS_PROJECT_ID)\"" || rc=1
    ut_expect project_other 403 PUT "$ALICE/settings/project" "$alice" \
        '{"project_id":"0123456789abcdef0123456789abcdef"}' || rc=1
    ut_expect project_own 200 PUT "$ALICE/settings/project" "$alice" \
        "{\"project_id\":\"$(ut_get KS_IMS_PROJECT_ID)\"}" || rc=1
    ut_expect priv_reset 200 PUT "$ALICE/settings/privacy" "$alice" '{"default":"none"}' || rc=1
    register dereg deregister.xml alice alice-secret 0 -key alg MD5 || rc=1
    return $rc
}

# ut_https: a second imscloud with only the hss role and the Ut interface over
# HTTPS ([ut] tls_cert/tls_key, the fixture's dev certificates): a store of
# its own (seeded like the fixture's), alice's token reads her settings over
# TLS (devices from the HSS's registration state: no S-CSCF in the process),
# plain HTTP on that port gets no answer, and the process stops cleanly.
t_ut_https() {
    local d=$TMP/uttls conf rc=0 alice got out ctl
    pick_ports UTS_PORT UTS_DIA
    rm -rf "$d" && mkdir -m 700 "$d"
    "$IMS_SEED" "sqlite:$d/hss.db" "$d/keys" "sip:127.0.0.1:$S_PORT" >"$OUT/seed.log" 2>&1 ||
        die "seeding failed: $(cat "$OUT/seed.log")"
    conf=$d/uthss.conf
    {
        printf '[core]\nworkers = 1\nroles = hss\nstate_dir = %s\nlog_level = %s\n\n' \
            "$d" "${IMS_E2E_LOG_LEVEL:-info}"
        printf '[diameter]\nidentity = uthss.ims.test\nrealm = %s\nlisten = 127.0.0.1\nport = %s\n\n' \
            "$REALM" "$UTS_DIA"
        printf '[ut]\nlisten = 127.0.0.1:%s\ntls_cert = %s\ntls_key = %s\npolicy_file = %s\n\n' \
            "$UTS_PORT" "$TMP/certs/server.pem" "$TMP/certs/server.key" "$TMP/ut-policy.yaml"
        sed -n '/^\[keystone\]$/,$p' "$TMP/ims.conf"
    } >"$conf"
    ctl="$(dirname "$IMS_BIN")/imscloudctl"
    "$ctl" -c "$conf" sub modify alice --keystone-user "$(ut_get KS_ALICE_ID)" >"$OUT/link.log" 2>&1 ||
        die "linking alice failed: $(cat "$OUT/link.log")"
    start uthss "$conf"
    PROCS="$PROCS uthss" wait_for 20 "the Ut interface on tcp $UTS_PORT" tcp_bound "$UTS_PORT"
    alice=$(ut_alice) && [ -n "$alice" ] || die "no token for alice"
    got=$(curl -s -m "$(scaled 10)" --cacert "$TMP/certs/ca.pem" -H "X-Auth-Token: $alice" \
        -o "$OUT/https.json" -w '%{http_code}' \
        "https://127.0.0.1:$UTS_PORT/ut/v1/users/$ALICE/settings/devices") || true
    say "https: GET devices -> $got (want 200) $(cat "$OUT/https.json" 2>/dev/null)"
    [ "$got" = 200 ] || rc=1
    ut_json https .source '"hss"' || rc=1
    ut_json https .registration_state '"not_registered"' || rc=1
    got=$(curl -s -m "$(scaled 5)" -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$UTS_PORT/ut/v1/users/$ALICE/settings") || true
    say "plain HTTP to the HTTPS port -> ${got:-none} (want no HTTP answer: 000)"
    [ "$got" = 000 ] || rc=1
    out=$(stop uthss)
    [ -z "$out" ] || {
        say "$out"
        tail -n 20 "$FIXDIR/uthss.log" >&2
        rc=1
    }
    rm -rf "$d"
    return $rc
}

# ut_outage: Keystone stopped (SIGSTOP): a token not in the cache gets 503
# within [keystone] timeout_ms (fail closed, no hang); a request waiting for
# Keystone while imscloud stops is answered (503) and the stop is clean.
t_ut_outage() {
    local pg t1 t2 t0 ms got rc=0 cpid
    pg=$(ut_get KS_PID)
    [ -n "$pg" ] || die "no KS_PID in the Keystone env file"
    t1=$(ut_alice) && [ -n "$t1" ] || die "no token for alice"
    t2=$(ut_alice) && [ -n "$t2" ] || die "no token for alice"
    kill -STOP -- "-$pg"
    trap 'kill -CONT -- -'"$pg"' 2>/dev/null || true' EXIT
    t0=$(date +%s%N)
    ut_expect down 503 GET "$ALICE/settings" "$t1" || rc=1
    ms=$((($(date +%s%N) - t0) / 1000000))
    say "503 after $ms ms (timeout_ms 2000; bound $(scaled 5000) ms)"
    [ $ms -le "$(scaled 5000)" ] || rc=1
    ut_call pending GET "$ALICE/settings" "$t2" >"$OUT/pending.code" &
    cpid=$!
    # Let it reach imscloud and wait on Keystone before the stop: with 0.5 s a CI
    # run under load once stopped imscloud first (curl: 000). Waiting longer is
    # safe: past timeout_ms (2000) it is answered 503 by the timeout instead.
    sleep 1
    ut_restart || rc=1
    wait $cpid || true
    got=$(cat "$OUT/pending.code")
    say "pending during the stop -> $got (want 503)"
    [ "$got" = 503 ] || rc=1
    kill -CONT -- "-$pg"
    trap - EXIT
    sleep 1
    ut_expect back 200 GET "$ALICE/settings" "$t2" || rc=1
    return $rc
}
