#!/bin/bash
# os-smoke.sh STATE_DIR - checks the e2e_openstack fixture with curl, acting as
# the test users through their application credentials (as the cloud AS does):
# A's member creates a server that goes ACTIVE and deletes it; B's member does
# not see it.
set -u -o pipefail
state=${1:?usage: os-smoke.sh STATE_DIR}
[ -f "$state/openstack.env" ] || { echo "os-smoke: SKIP: no fixture" >&2; exit 77; }
. "$state/openstack.env"
die() { echo "os-smoke: FAIL: $*" >&2; exit 1; }

token() { # token APPCRED_ID SECRET -> X-Subject-Token
    curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"application_credential\"],\"application_credential\":{\"id\":\"$1\",\"secret\":\"$2\"}}}}" \
        "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}
nova() { # nova TOKEN METHOD PATH [BODY] -> "CODE BODY"
    local t=$1 m=$2 p=$3; shift 3
    curl -s -m 20 -w '\n%{http_code}' -X "$m" -H "X-Auth-Token: $t" \
        -H 'OpenStack-API-Version: compute 2.37' -H 'Content-Type: application/json' \
        ${1:+-d "$1"} "$NOVA_URL$p"
}
ta=$(token "$OS_A_APPCRED_ID" "$OS_A_APPCRED_SECRET"); [ -n "$ta" ] || die "no token for A"
tb=$(token "$OS_B_APPCRED_ID" "$OS_B_APPCRED_SECRET"); [ -n "$tb" ] || die "no token for B"
tr=$(token "$OS_A_READER_APPCRED_ID" "$OS_A_READER_APPCRED_SECRET"); [ -n "$tr" ] || die "no token for the reader"
body="{\"server\":{\"name\":\"smoke\",\"imageRef\":\"$OS_IMAGE_ID\",\"flavorRef\":\"$OS_FLAVOR_ID\",\"networks\":\"none\"}}"
out=$(nova "$ta" POST /servers "$body")
[ "$(tail -n1 <<<"$out")" = 202 ] || die "create: $out"
id=$(head -n -1 <<<"$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["id"])')
for _ in $(seq 1 100); do
    st=$(nova "$ta" GET "/servers/$id" | head -n -1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["status"])')
    [ "$st" = ACTIVE ] && break
    [ "$st" = ERROR ] && die "server went ERROR"
    sleep 0.2
done
[ "$st" = ACTIVE ] || die "not ACTIVE: $st"
nova "$tb" GET /servers | grep -q "$id" && die "B sees A's server"
[ "$(nova "$tb" GET "/servers/$id" | tail -n1)" = 404 ] || die "B can read A's server"
[ "$(nova "$ta" DELETE "/servers/$id" | tail -n1)" = 204 ] || die "delete failed"
echo "os-smoke: ok (server $id ACTIVE, isolated, deleted)"
