# shellcheck shell=bash
# tests/e2e/ims/t_cloudas.sh - the cloud AS (src/cloudas, docs/cloud-as.md) end
# to end against a real Keystone + Nova (the e2e_openstack fixture,
# tests/e2e/openstack), sourced by ims_e2e.sh.  Fixture imsos: one imscloud with
# roles pcscf,icscf,scscf,hss,as; the users' iFC sends MESSAGE to sip:cloud@ to
# the AS port; the AS acts with each user's application credential (the
# [as] delegations file written here from openstack.env):
#   alice  (Digest) -> cloud-a-member  (project A, role member)
#   erin   (Digest) -> cloud-a-reader  (project A, role reader only)
#   dave   (Digest) -> cloud-b-member  (project B, role member)
#   sessa  (Digest) -> no delegation
#
#   cloud_lifecycle  alice: create vm1 -> 200, then progress MESSAGEs until
#                    ACTIVE; list shows vm1; show vm1; stop (show until
#                    SHUTOFF); start; delete vm1
#   cloud_reader     erin's create is refused by the policy (403 naming
#                    cloud:compute:create) before any Nova call: Nova's log
#                    has no new POST /servers
#   cloud_isolation  dave (project B) does not see alice's vm1 in list, and
#                    show/delete vm1 (by name and by id) fail with 404
#   cloud_errors     unknown command, missing name, bad port, bad JSON, a bad
#                    content type: clear error MESSAGEs; sessa (no delegation): 403
#   cloud_json       application/json commands (list, create with flavor/image
#                    names, delete)
#   cloud_quota      quota: Nova's limits of the project
#   cloud_secgroup   secgroup add/list/delete on the project's default group
#   cloud_subscribe  alice SUBSCRIBEs (x-cloud-servers); a server created with
#                    the OpenStack API meanwhile shows up in a NOTIFY as ACTIVE;
#                    unsubscribe: 200 and a final NOTIFY (terminated)
#   cloud_nova_down  Nova's process stopped (SIGSTOP): list ends with a clear
#                    error MESSAGE (504, Nova unavailable) within the bound
#   cloud_bearer     cloud-a-member registers with its own Keystone token
#                    (RFC 8898 Bearer; the S-CSCF has [keystone] and a policy)
#                    and sends its commands with "Authorization: Bearer": the
#                    S-CSCF checks the token is the user's and forwards it on
#                    ISC, the AS acts with it (that user has no delegation):
#                    create -> ACTIVE, list, delete

cas_env() { # the OpenStack fixture's env file
    local f=${OS_STATE:-}/openstack.env
    [ -n "${OS_STATE:-}" ] && [ -f "$f" ] || skip "no OpenStack fixture (OS_STATE=${OS_STATE:-unset})"
    echo "$f"
}
cas_get() { (. "$(cas_env)" && eval "printf '%s' \"\${$1}\""); }

cas_ctl() { # imscloudctl on the fixture's HSS store
    "$(dirname "$IMS_BIN")/imscloudctl" -c "$TMP/ims.conf" "$@" >>"$FIXDIR/cas-ctl.out" 2>&1 ||
        die "imscloudctl $* failed: $(tail -n 3 "$FIXDIR/cas-ctl.out")"
}

# cas_conf CONF: the imsos fixture's additions to an ims1 configuration
# (called by ims_e2e.sh setup, before the process starts)
cas_conf() {
    local conf=$1 envf
    envf=$(cas_env)
    pick_ports AS_PORT
    echo "AS_PORT=$AS_PORT" >>"$ENVF"
    sed -i "s/^roles = pcscf,icscf,scscf,hss$/roles = pcscf,icscf,scscf,hss,as/" "$conf"
    sed -i "/^\[sip\]$/a listen = udp:127.0.0.1:$AS_PORT" "$conf"
    # the default policy with deleting and security group changes open to a
    # project member: an application credential's token carries no TOTP
    # factor, which etc/policy.yaml asks for there
    sed -e 's/^"cloud:compute:delete": .*/"cloud:compute:delete": "rule:project_member"/' \
        -e 's/^"cloud:secgroup:manage": .*/"cloud:secgroup:manage": "rule:project_member"/' \
        "$HERE/../../../etc/policy.yaml" >"$TMP/cas-policy.yaml"
    (
        umask 077
        . "$envf"
        printf 'sip:alice@%s %s %s\n' "$REALM" "$OS_A_APPCRED_ID" "$OS_A_APPCRED_SECRET"
        printf 'sip:erin@%s %s %s\n' "$REALM" "$OS_A_READER_APPCRED_ID" "$OS_A_READER_APPCRED_SECRET"
        printf 'sip:dave@%s %s %s\n' "$REALM" "$OS_B_APPCRED_ID" "$OS_B_APPCRED_SECRET"
    ) >"$TMP/cas-delegations"
    chmod 600 "$TMP/cas-delegations"
    {
        printf '\n[as]\nports = %s\nicscf = sip:127.0.0.1:%s\n' "$AS_PORT" "$I_PORT"
        printf 'keystone_url = %s\n' "$(cas_get OS_AUTH_URL)"
        printf 'delegations = %s\npolicy_file = %s\n' "$TMP/cas-delegations" "$TMP/cas-policy.yaml"
        printf 'poll_ms = 100\npoll_max_ms = 500\nbuild_timeout = %s\n' "$(scaled 60)"
        printf 'http_timeout_ms = %s\n' "$(scaled 3000)"
    } >>"$conf"
    # every test user's MESSAGEs to sip:cloud@ go to the AS (originating iFC)
    cas_ctl profile ifc-add cloud_as --priority 0 --as "sip:127.0.0.1:$AS_PORT" --method MESSAGE \
        --request-uri '^sip:cloud@' --session-case originating --default-handling terminate
    cas_ctl profile ifc-add cloud_as --priority 1 --as "sip:127.0.0.1:$AS_PORT" --method SUBSCRIBE \
        --request-uri '^sip:cloud@' --session-case originating --default-handling terminate
    local u
    for u in alice erin dave sessa; do cas_ctl impu set-profile "sip:$u@$REALM" cloud_as; done
    # Bearer (t_cloud_bearer): the S-CSCF validates tokens at the same Keystone
    # with the ims-core service account of ks-seed.py; the Keystone user
    # cloud-a-member is the subscriber cloud-a-member@REALM (IMPI convention)
    local ksenv=$OS_STATE/keystone/keystone.env
    [ -f "$ksenv" ] || skip "no $ksenv"
    (umask 077 && sed -n 's/^KS_SVC_PASSWORD=//p' "$ksenv" >"$TMP/cas-ks.pw")
    sed -i "/^\[scscf\]$/a policy_file = $TMP/cas-policy.yaml" "$conf"
    {
        printf '\n[keystone]\nurl = %s\nuser = %s\npassword_file = %s\nuser_domain = %s\n' \
            "$(cas_get OS_AUTH_URL)" "$(sed -n 's/^KS_SVC_USER=//p' "$ksenv")" "$TMP/cas-ks.pw" \
            "$(sed -n 's/^KS_SVC_DOMAIN=//p' "$ksenv")"
        printf 'cache_ttl = 3\nnegative_ttl = 1\ntimeout_ms = %s\n' "$(scaled 2000)"
    } >>"$conf"
    u=$(cas_get OS_A_USER)
    cas_ctl user add "$u@$REALM" --password "$u-secret" --impu "sip:$u@$REALM" --profile cloud_as
}

# cas_cmd NAME USER PASSWORD 'COMMAND' [CTYPE]: USER registers (Digest) and
# sends COMMAND; passes when the final result arrived (the texts are in
# $OUT/NAME.msg; cas_text prints them)
cas_cmd() {
    local name=$1 user=$2 pw=$3 cmd=$4 ctype=${5:-text/plain}
    register "reg_$name" register.xml "$user" "$pw" 600 -key alg MD5 || return 1
    ue "$name" "$UE_PORT" cas_cmd.xml -key user "$user" -key cmd "$cmd" -key ctype "$ctype"
}

# cas_text NAME: the human lines of the results NAME received, one per line
cas_text() {
    perl -e '
        local $/; open(my $f, "<", $ARGV[0]) or exit 1; my $all = <$f>;
        for my $blk (split /^-{10,}.*$/m, $all) {
            next unless $blk =~ /message received/ && $blk =~ /^MESSAGE /m;
            print "$1\n" if $blk =~ m{Content-Type: text/plain[^\r\n]*\r?\n\r?\n([^\r\n]*)};
        }' "$OUT/$1.msg"
}

# cas_expect NAME REGEX: some result of NAME matches REGEX
cas_expect() {
    local got
    got=$(cas_text "$1")
    say "$1: $(printf '%s' "$got" | tr '\n' '|')"
    grep -qE -- "$2" <<<"$got" || {
        echo "want a result matching: $2" >&2
        return 1
    }
}

t_cloud_lifecycle() {
    local rc=0
    cas_cmd create alice alice-secret 'create vm1' || rc=1
    cas_expect create '^creating vm1 \([0-9a-f-]+\): BUILD$' || rc=1
    cas_expect create '^vm1 \([0-9a-f-]+\): ACTIVE$' || rc=1
    cas_cmd list alice alice-secret list || rc=1
    cas_expect list '^1 server: vm1 \(ACTIVE\)$' || rc=1
    cas_cmd show alice alice-secret 'show vm1' || rc=1
    cas_expect show '^vm1 \([0-9a-f-]+\): ACTIVE$' || rc=1
    cas_cmd stop alice alice-secret 'stop vm1' || rc=1
    cas_expect stop '^stopping vm1 ' || rc=1
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do # the fake driver powers off within a second
        cas_cmd "shut$i" alice alice-secret 'show vm1' || rc=1
        cas_text "shut$i" | grep -q ': SHUTOFF$' && break
        sleep 0.5
    done
    cas_expect "shut$i" '^vm1 \([0-9a-f-]+\): SHUTOFF$' || rc=1
    cas_cmd start alice alice-secret 'start vm1' || rc=1
    cas_expect start '^starting vm1 ' || rc=1
    cas_cmd delete alice alice-secret 'delete vm1' || rc=1
    cas_expect delete '^deleting vm1 \([0-9a-f-]+\)$' || rc=1
    return $rc
}

# the number of server creations Nova's API has seen
cas_nova_posts() { grep -c '"POST /v2.1/servers HTTP' "$(cas_get NOVA_LOG)" || true; }

t_cloud_reader() {
    local rc=0 before after
    before=$(cas_nova_posts)
    cas_cmd create erin erin-secret 'create vmr' || rc=1
    cas_expect create '^error 403: forbidden by policy rule cloud:compute:create$' || rc=1
    after=$(cas_nova_posts)
    say "Nova saw $before server creations before, $after after (want equal)"
    [ "$before" = "$after" ] || rc=1
    # reading is allowed
    cas_cmd list erin erin-secret list || rc=1
    cas_expect list '^[0-9]+ servers?' || rc=1
    return $rc
}

t_cloud_isolation() {
    local rc=0 id
    cas_cmd create alice alice-secret 'create vmiso' || rc=1
    cas_expect create '^vmiso \([0-9a-f-]+\): ACTIVE$' || rc=1
    id=$(cas_text create | sed -n 's/^vmiso (\([0-9a-f-]*\)): ACTIVE$/\1/p' | head -n1)
    cas_cmd blist dave dave-secret list || rc=1
    cas_expect blist '^[0-9]+ servers?' || rc=1
    if cas_text blist | grep -q vmiso; then
        echo "project B sees project A's server" >&2
        rc=1
    fi
    cas_cmd bdel dave dave-secret 'delete vmiso' || rc=1
    cas_expect bdel "^error 404: no server 'vmiso' in your project$" || rc=1
    cas_cmd bshow dave dave-secret "show ${id:-none}" || rc=1
    cas_expect bshow "^error 404: no server '${id:-none}' in your project$" || rc=1
    cas_cmd adel alice alice-secret 'delete vmiso' || rc=1
    cas_expect adel '^deleting vmiso ' || rc=1
    return $rc
}

t_cloud_errors() {
    local rc=0
    cas_cmd unknown alice alice-secret 'frobnicate vm1' || rc=1
    cas_expect unknown "^error 400: unknown command 'frobnicate'; try 'help'$" || rc=1
    cas_cmd noname alice alice-secret 'create' || rc=1
    cas_expect noname "^error 400: 'create' needs a server name$" || rc=1
    cas_cmd badport alice alice-secret 'secgroup add tcp 70000 10.0.0.0/8' || rc=1
    cas_expect badport "^error 400: bad port range '70000'" || rc=1
    cas_cmd badjson alice alice-secret '{"command": ' application/json || rc=1
    cas_expect badjson '^error 400: the JSON body is not an object$' || rc=1
    cas_cmd badtype alice alice-secret 'list' application/xml || rc=1
    cas_expect badtype "^error 400: unsupported content type 'application/xml'" || rc=1
    cas_cmd help alice alice-secret 'help' || rc=1
    cas_expect help '^commands: list ' || rc=1
    cas_cmd nodeleg sessa sessa-secret 'list' || rc=1
    cas_expect nodeleg '^error 403: sip:sessa@ims.test has delegated no Keystone identity' || rc=1
    return $rc
}

t_cloud_json() {
    local rc=0
    cas_cmd create alice alice-secret \
        '{"command":"create","name":"vmjson","flavor":"m1.tiny","image":"cirros-fake"}' \
        application/json || rc=1
    cas_expect create '^vmjson \([0-9a-f-]+\): ACTIVE$' || rc=1
    grep -q '"final":true' "$OUT/create.msg" || rc=1
    cas_cmd list alice alice-secret '{"command":"list"}' application/json || rc=1
    cas_expect list 'vmjson \(ACTIVE\)' || rc=1
    cas_cmd del alice alice-secret '{"command":"delete","name":"vmjson"}' application/json || rc=1
    cas_expect del '^deleting vmjson ' || rc=1
    return $rc
}

t_cloud_quota() {
    local rc=0
    cas_cmd quota alice alice-secret quota || rc=1
    cas_expect quota '^instances [0-9]+/1000, cores [0-9]+/4000, RAM [0-9]+/4096000 MB$' || rc=1
    return $rc
}

t_cloud_secgroup() {
    local rc=0 id
    cas_cmd add alice alice-secret 'secgroup add tcp 5060-5061 192.0.2.0/24' || rc=1
    cas_expect add '^rule [0-9a-f-]+ added: tcp 5060-5061 from 192.0.2.0/24$' || rc=1
    id=$(cas_text add | sed -n 's/^rule \([0-9a-f-]*\) added.*/\1/p' | head -n1)
    cas_cmd list alice alice-secret 'secgroup list' || rc=1
    cas_expect list "${id:-none} tcp 5060-5061 192.0.2.0/24" || rc=1
    cas_cmd blist dave dave-secret 'secgroup list' || rc=1
    if cas_text blist | grep -q "${id:-none}"; then
        echo "project B sees project A's rule" >&2
        rc=1
    fi
    cas_cmd del alice alice-secret "secgroup delete ${id:-none}" || rc=1
    cas_expect del "^rule ${id:-none} deleted$" || rc=1
    return $rc
}

t_cloud_nova_down() {
    local rc=0 pid t0 t1 ms limit
    pid=$(cas_get NOVA_PID)
    [ -n "$pid" ] && kill -0 "$pid" || die "no Nova process"
    register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1
    kill -STOP "$pid"
    trap 'kill -CONT '"$pid"' 2>/dev/null || true' EXIT
    t0=$(date +%s%N)
    ue down "$UE_PORT" cas_cmd.xml -key user alice -key cmd list -key ctype text/plain || rc=1
    t1=$(date +%s%N)
    kill -CONT "$pid"
    trap - EXIT
    cas_expect down '^error 50[34]: Nova unavailable' || rc=1
    ms=$(((t1 - t0) / 1000000))
    limit=$(scaled 8000)
    say "error MESSAGE after $ms ms (bound $limit ms; [as] http_timeout_ms = $(scaled 3000))"
    [ $ms -le "$limit" ] || rc=1
    # Nova answers again
    cas_cmd again alice alice-secret list || rc=1
    cas_expect again '^[0-9]+ servers?' || rc=1
    return $rc
}

# cas_os_token: a token of project A's member (its application credential)
cas_os_token() {
    local envf
    envf=$(cas_env)
    (. "$envf" && curl -s -m 10 -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"application_credential\"],\"application_credential\":{\"id\":\"$OS_A_APPCRED_ID\",\"secret\":\"$OS_A_APPCRED_SECRET\"}}}}" \
        "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
}

t_cloud_subscribe() {
    local rc=0 tok nova img fl id
    tok=$(cas_os_token)
    [ -n "$tok" ] || die "no token for project A"
    nova=$(cas_get NOVA_URL) img=$(cas_get OS_IMAGE_ID) fl=$(cas_get OS_FLAVOR_ID)
    register reg register.xml alice alice-secret 600 -key alg MD5 || rc=1
    # the state changes while the UE is subscribed: vmsub is created by the API
    (sleep "$(scaled 2)"
     curl -s -m 10 -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
        -H 'OpenStack-API-Version: compute 2.37' \
        -d "{\"server\":{\"name\":\"vmsub\",\"imageRef\":\"$img\",\"flavorRef\":\"$fl\",\"networks\":\"none\"}}" \
        "$nova/servers" >"$OUT/create.json") &
    local cpid=$!
    ue sub "$UE_PORT" cas_subscribe.xml -key user alice || rc=1
    wait $cpid || rc=1
    id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"]["id"])' \
        "$OUT/create.json" 2>/dev/null) || rc=1
    local n
    n=$(grep -c '^NOTIFY ' "$OUT/sub.msg" || true)
    say "sub: $n NOTIFYs; vmsub ($id) reached ACTIVE in one, the last was terminated"
    grep -q 'Subscription-State: terminated' "$OUT/sub.msg" || rc=1
    [ -n "$id" ] && curl -s -m 10 -X DELETE -H "X-Auth-Token: $tok" "$nova/servers/$id" >/dev/null
    return $rc
}

# cas_password_token USER PASSWORD PROJECT: a Keystone password token
cas_password_token() {
    local url
    url=$(cas_get OS_AUTH_URL)
    curl -s -m 10 -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$1\",\"domain\":{\"id\":\"default\"},\"password\":\"$2\"}}},\"scope\":{\"project\":{\"name\":\"$3\",\"domain\":{\"id\":\"default\"}}}}}" \
        "$url/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}

# cas_bcmd NAME USER TOKEN-CSV 'COMMAND': cas_cmd with the token in the MESSAGE
cas_bcmd() {
    ue "$1" "$UE_PORT" cas_cmd_bearer.xml -key user "$2" -key cmd "$4" -key ctype text/plain \
        -inf "$3"
}

t_cloud_bearer() {
    local rc=0 u tok csv=$OUT/token.csv
    u=$(cas_get OS_A_USER)
    tok=$(cas_password_token "$u" "$(cas_get OS_A_PASSWORD)" "$(cas_get OS_A_PROJECT)")
    [ -n "$tok" ] || die "no password token for $u"
    (umask 077 && printf 'SEQUENTIAL\n%s;\n' "$tok" >"$csv")
    ue reg "$UE_PORT" kb_register_200.xml -s "$u" -key expires 600 -inf "$csv" || rc=1
    cas_bcmd create "$u" "$csv" 'create vmbearer' || rc=1
    cas_expect create '^vmbearer \([0-9a-f-]+\): ACTIVE$' || rc=1
    cas_bcmd list "$u" "$csv" list || rc=1
    cas_expect list 'vmbearer \(ACTIVE\)' || rc=1
    cas_bcmd del "$u" "$csv" 'delete vmbearer' || rc=1
    cas_expect del '^deleting vmbearer ' || rc=1
    return $rc
}
