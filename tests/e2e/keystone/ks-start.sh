#!/usr/bin/env bash
# ks-start.sh STATE_DIR - starts a throw-away Keystone v3 (Debian's keystone
# package under uwsgi, SQLite in WAL mode, fernet tokens) on a free loopback
# port, seeds it (ks-seed.py) and writes STATE_DIR/keystone.env (KEY=VALUE
# lines) for the tests.  Installs nothing: exit 77 (skip) when a package is
# missing.  Stop it with ks-stop.sh STATE_DIR.  Everything lives in a mktemp
# directory named in the env file; nothing under /etc is used.
#
# Knobs: KS_TOKEN_EXPIRATION (s, default 30: short, so the client's service
# token renewal is testable), KS_READY_TIMEOUT (s, default 60, scaled by
# IMS_TEST_TIMEOUT_MULTIPLIER).
#
# Why each odd setting (learned the hard way, see docs/internals/keystone.md):
#  - PRAGMA journal_mode=WAL: Keystone leaks read transactions; without WAL
#    writers hit "database is locked" (500 after 5 s).
#  - ?check_same_thread=false: the same leak, collected on another thread.
#  - [cache] backend memory_pickle: plain "memory" hands out the cached dict
#    and credential decryption mutates it (500 KeyError on the 2nd read).
#    One uwsgi process then, as that cache is per process.
#  - --add-header 'Connection: close': uwsgi's --http-socket closes after each
#    response without saying so; clients would reuse a dead socket.
#  - password_hash_rounds = 4 (bcrypt minimum) before any user is created.
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: ks-start.sh STATE_DIR}
mult=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
py=/usr/bin/python3 # the system Python that can import keystone (not a pyenv one)

die() { echo "ks-start: $*" >&2; exit 1; }
skip() { echo "ks-start: SKIP: $*" >&2; exit 77; }

for b in keystone-manage uwsgi curl setsid; do
    command -v "$b" >/dev/null || skip "missing $b (tools/install-deps.sh test)"
done
[ -x /usr/bin/keystone-wsgi-public ] || skip "missing /usr/bin/keystone-wsgi-public (apt keystone)"
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || skip "missing uwsgi-plugin-python3"
[ -x "$py" ] || skip "missing $py"

mkdir -p "$state" || die "cannot create $state"
if [ -f "$state/keystone.env" ]; then # a previous run did not clean up
    "$here/ks-stop.sh" "$state" || true
fi

t0=$(date +%s%N)
dir=$(mktemp -d /tmp/ims-ks-XXXXXX) || die "mktemp failed"
echo "$dir" >"$state/ks.dir" # lets ks-stop.sh clean up even if we fail below
host=127.0.0.1
# A free port: bind 0 and let the kernel choose (a small race, good enough on loopback).
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') ||
    die "no free port"
url="http://$host:$port/v3"
pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
exp=${KS_TOKEN_EXPIRATION:-30}

cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
debug = false
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db?check_same_thread=false
[identity]
password_hash_rounds = 4
[token]
provider = fernet
expiration = $exp
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[auth]
methods = password,token,totp,application_credential
[cache]
enabled = true
backend = dogpile.cache.memory_pickle
[oslo_policy]
policy_file = $dir/policy.yaml
policy_dirs = $dir/policy.d
EOF
mkdir -p "$dir/policy.d"
chmod 600 "$dir/keystone.conf"

C=(--config-file "$dir/keystone.conf")
U=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
mlog=$dir/keystone-manage.log
# keystone-manage prints an eventlet "Exception ignored" at exit: noise, check $?.
keystone-manage "${C[@]}" fernet_setup "${U[@]}" >"$dir/fernet.log" 2>&1 &
fpid=$!
keystone-manage "${C[@]}" credential_setup "${U[@]}" >"$dir/cred.log" 2>&1 &
cpid=$!
keystone-manage "${C[@]}" db_sync >>"$mlog" 2>&1 || die "db_sync failed, see $mlog"
wait $fpid || die "fernet_setup failed, see $dir/fernet.log"
wait $cpid || die "credential_setup failed, see $dir/cred.log"
"$py" -c 'import sqlite3,sys; m=sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchone()[0]; sys.exit(m!="wal")' \
    "$dir/keystone.db" || die "enabling WAL failed"
keystone-manage "${C[@]}" bootstrap --bootstrap-password "$pw" \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-public-url "$url" >>"$mlog" 2>&1 || die "bootstrap failed, see $mlog"

setsid uwsgi --plugins python3 --http-socket "$host:$port" \
    --wsgi-file /usr/bin/keystone-wsgi-public --env "OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf" \
    --master --processes 1 --threads 8 --enable-threads --lazy-apps --need-app \
    --die-on-term --no-orphans --buffer-size 65535 --listen 100 \
    --add-header 'Connection: close' --skip-atexit-teardown \
    --chdir "$dir" --pidfile "$dir/uwsgi.pid" --logto "$dir/uwsgi.log" \
    </dev/null >/dev/null 2>&1 &
launcher=$!
for _ in $(seq 1 200); do
    [ -s "$dir/uwsgi.pid" ] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.05
done
[ -s "$dir/uwsgi.pid" ] || die "uwsgi did not start, see $dir/uwsgi.log"
pid=$(cat "$dir/uwsgi.pid")

# Ready = a real password token is issued (GET /v3 answers before the app is loaded).
body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' "$pw")
deadline=$(($(date +%s) + $(awk -v s="${KS_READY_TIMEOUT:-60}" -v m="$mult" 'BEGIN{printf "%d", s*m}')))
while :; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/uwsgi.log" >&2; die "uwsgi exited"; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$body" "$url/auth/tokens" || true)
    [ "$code" = 201 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || die "not ready (last HTTP $code), see $dir"
    sleep 0.2
done

{
    echo "KS_DIR=$dir"
    echo "KS_PID=$pid"
    echo "KS_URL=$url"
    echo "KS_ADMIN_PASSWORD=$pw"
    echo "KS_TOKEN_EXPIRATION=$exp"
} >"$dir/keystone.env"
chmod 600 "$dir/keystone.env"
"$py" "$here/ks-seed.py" "$dir/keystone.env" >>"$dir/keystone.env" 2>"$dir/seed.log" ||
    { cat "$dir/seed.log" >&2; die "seeding failed"; }
cp "$dir/keystone.env" "$state/keystone.env"
t1=$(date +%s%N)
echo "ks-start: Keystone ready at $url in $(((t1 - t0) / 1000000)) ms (uwsgi $pid, dir $dir)"
