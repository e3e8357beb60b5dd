#!/usr/bin/env bash
# bench/keystone/run.sh - Keystone Bearer registration benchmark (issue 5):
# imscloud (one process, every IMS role, Cx in-process) with [keystone] and a
# policy, against a throw-away Keystone (tests/e2e/keystone/ks-start.sh).
# Builds only the HSS seeder; never run by CTest. See bench/README.md.
#
#   bench/keystone/run.sh [--imscloud PATH] [--users K] [--calls M] [--conc C]
#        [--rounds R] [--cold-per P] [--burst N] [--workers N]
#        [--results FILE | --no-results] [--keep] [--log-level LEVEL] [--perf DIR]
#
# Users u0000000.. (realm ims.bench, bench/hss/hss_bench.h): the first K are
# Keystone users (password pw-<i>, member on project ims) whose IMS subscriber
# is u<i>@ims.bench by the docs/keystone.md convention, the next K are Digest
# users. In one run:
#  (a) Bearer REGISTER -> 200, every token validated once before (cache hits),
#  (b) Digest REGISTER/401/REGISTER/200 (bench/ims/sipp/register.xml),
#      alternating a, b, a, b... R rounds; each run is M registrations with C in
#      flight (sipp -l C): registrations/s and imscloud CPU per registration,
#  (c) cold validations: Bearer REGISTERs each with a fresh token (K*P of
#      them), vs Keystone's own rate for as many other fresh tokens, GET
#      /v3/auth/tokens from C threads (ks_bench.py validate),
#  (d) N REGISTERs at once carrying one token not yet validated: Keystone's
#      access log must show exactly one GET /v3/auth/tokens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/keystone
IMS_BIN=$ROOT/build-rel/imscloud
USERS=200
CALLS=6000
CONC=20
ROUNDS=3
COLD_PER=2
BURST=50
WORKERS=$(nproc)
RESULTS=$ROOT/bench/RESULTS.md
KEEP=no
LOG_LEVEL=err
PERF_DIR=
REALM=ims.bench
PY=/usr/bin/python3
CMDLINE="bench/keystone/run.sh $*"

usage() {
    sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --imscloud) IMS_BIN=${2:?}; shift 2 ;;
    --users) USERS=${2:?}; shift 2 ;;
    --calls) CALLS=${2:?}; shift 2 ;;
    --conc) CONC=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --cold-per) COLD_PER=${2:?}; shift 2 ;;
    --burst) BURST=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --no-results) RESULTS=; shift ;;
    --keep) KEEP=yes; shift ;;
    --log-level) LOG_LEVEL=${2:?}; shift 2 ;;
    --perf) PERF_DIR=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench-ks: $*"
    exit 1
}
for t in sipp awk ss setsid cmake; do
    command -v $t >/dev/null || die "missing '$t' (tools/install-deps.sh bench)"
done
[ -x "$PY" ] || die "missing $PY"
if [ -n "$PERF_DIR" ]; then
    command -v perf >/dev/null || die "missing perf (--perf)"
    mkdir -p "$PERF_DIR" && PERF_DIR=$(cd "$PERF_DIR" && pwd)
fi
[ -x "$IMS_BIN" ] || die "no imscloud at $IMS_BIN (cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rel -j2 --target imscloud, or --imscloud PATH)"
BUILD=$(cd "$(dirname "$IMS_BIN")" && pwd)
[ -f "$BUILD/libimscore.a" ] || die "no libimscore.a next to $IMS_BIN (the seeder links the same library)"

# the seeder, against the same libimscore.a as the server (as bench/ims/run.sh)
TOOLS=$BUILD/bench-hss
if [ ! -f "$TOOLS/CMakeCache.txt" ]; then
    cmake -S "$ROOT/bench/hss" -B "$TOOLS" -DIMS_BUILD_DIR="$BUILD" >"${TMPDIR:-/tmp}/ims-ksbench-cmake.log" 2>&1 ||
        die "cmake of bench/hss failed: $(tail -5 "${TMPDIR:-/tmp}/ims-ksbench-cmake.log")"
fi
cmake --build "$TOOLS" -j2 --target hss_bench_seed >"${TMPDIR:-/tmp}/ims-ksbench-build.log" 2>&1 ||
    die "building bench/hss failed: $(tail -20 "${TMPDIR:-/tmp}/ims-ksbench-build.log")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imscloud-ks-bench.XXXXXX")
HZ=$(getconf CLK_TCK)
IMS_PID=
cleanup() {
    if [ -n "$IMS_PID" ]; then
        kill -TERM "$IMS_PID" 2>/dev/null || true
        sleep 0.5
        kill -KILL "$IMS_PID" 2>/dev/null || true
    fi
    "$ROOT/tests/e2e/keystone/ks-stop.sh" "$WORK/ks" >/dev/null 2>&1 || true
    if [ "$KEEP" = yes ]; then say "bench-ks: work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

port_busy() { [ -n "$(ss -Hlnu "sport = :$1")" ] || [ -n "$(ss -Hlnt "sport = :$1")" ]; }
TAKEN=" "
free_port() {
    local p=$((24060 + RANDOM % 900)) _
    for _ in $(seq 1 1000); do
        p=$((p + 1))
        [ $p -le 24999 ] || p=24060
        case $TAKEN in *" $p "*) continue ;; esac
        port_busy $p && continue
        TAKEN="$TAKEN$p "
        echo $p
        return
    done
    die "no free port in 24060-24999"
}
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
sipp_stat() {
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NF > 1 { last = $c }
        END { if (!c) exit 1; print last + 0 }' "$1"
}
now() { date +%s.%N; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b == 0) print "-"; else printf f, a / b }'; }
# GET /v3/auth/tokens requests in Keystone's uwsgi access log so far (every
# validation, whoever sent it)
ks_validations() { grep -c 'GET /v3/auth/tokens[ ?]' "$KS_DIR/uwsgi.log" || true; }
alive() { kill -0 "$IMS_PID" 2>/dev/null || die "imscloud died: $(tail -5 "$WORK/ims/server.log")"; }
# Waits until imscloud is idle (under 3% of a core over half a second, at most 40 s).
settle() {
    local a b _
    sleep 0.5
    for _ in $(seq 1 80); do
        a=$(cpu_ticks "$IMS_PID")
        sleep 0.5
        b=$(cpu_ticks "$IMS_PID")
        [ $(((b - a) * 100 / HZ)) -ge 3 ] || return 0
    done
    say "bench-ks: imscloud still busy 40 s after the run"
}
# idle_ticks_per_s: imscloud's CPU while idle (timers, once-a-second sweeps), clock
# ticks per second over 5 s; the cold runs complete few registrations per
# second, so this background would dominate their CPU per registration
idle_ticks_per_s() {
    local a b
    a=$(cpu_ticks "$IMS_PID")
    sleep 5
    b=$(cpu_ticks "$IMS_PID")
    fdiv $((b - a)) 5 %.2f
}
# net_cpu_us TICKS SECONDS OK IDLE: CPU µs per registration, idle background removed
net_cpu_us() {
    awk -v t="$1" -v s="$2" -v n="$3" -v i="$4" -v hz="$HZ" \
        'BEGIN { if (n == 0) print "-"; else { v = (t - i * s) * 1e6 / hz / n; printf "%.1f", v < 0 ? 0 : v } }'
}
IPSEQ=0
next_ip() {
    IPSEQ=$((IPSEQ + 1))
    echo "127.$((2 + IPSEQ / 62500)).$(((IPSEQ / 250) % 250 + 1)).$((IPSEQ % 250 + 1))"
}

# batch NAME SCENARIO INF CALLS CONC: one sipp UAC (one UDP flow), CALLS
# registrations with at most CONC in flight, as fast as they complete. Sets
# B_OK B_FAIL B_SEC (wall time) B_TICKS (imscloud CPU, clock ticks).
batch() {
    local name=$1 sf=$2 inf=$3 calls=$4 conc=$5 t0 t1 c0 c1 rc=0
    local d=$WORK/runs/$name perf=
    mkdir -p "$d"
    alive
    # --perf: imscloud's profile of the first (a) and (b) runs
    case "$PERF_DIR:$name" in
    ?*:bearer-1 | ?*:digest-1)
        perf record -g -p "$IMS_PID" -o "$PERF_DIR/$name.data" >"$d/perf.out" 2>&1 &
        perf=$!
        sleep 0.5
        ;;
    esac
    c0=$(cpu_ticks "$IMS_PID")
    t0=$(now)
    (cd "$d" && sipp "127.0.0.1:$P_PORT" -sf "$sf" -inf "$inf" -i "$(next_ip)" -t u1 \
        -key realm "$REALM" -key expires 3600 -r 100000 -rp 1000 -l "$conc" -m "$calls" \
        -recv_timeout 15000 -timeout 300s -timeout_error -nostdin -buff_size 4194304 \
        -trace_stat -stf "$d/stat.csv" -trace_err -error_file "$d/err.log" \
        >"$d/sipp.out" 2>&1) || rc=$?
    t1=$(now)
    c1=$(cpu_ticks "$IMS_PID")
    if [ -n "$perf" ]; then
        kill -INT "$perf" 2>/dev/null || true
        wait "$perf" 2>/dev/null || true
    fi
    B_OK=$(sipp_stat "$d/stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    B_FAIL=$(sipp_stat "$d/stat.csv" 'FailedCall(C)' 2>/dev/null || echo "$calls")
    B_SEC=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    B_TICKS=$((c1 - c0))
    [ "$rc" = 0 ] || say "bench-ks: $name: sipp exit $rc ($B_OK ok, $B_FAIL failed; $d)"
}
# per-registration figures of the last batch: "rate cpu_us"
batch_figures() {
    echo "$(fdiv "$B_OK" "$B_SEC" %.0f) $(fdiv $((B_TICKS * 1000000 / HZ)) "$B_OK" %.1f)"
}

# ------------------------------------------------------------------ set-up

T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$WORK/ims/var" "$WORK/runs"
chmod 700 "$WORK/ims/var"

# Keystone: tokens live 2 h (the registrations are capped at the token's
# lifetime, and nothing may expire during the run)
KS_TOKEN_EXPIRATION=7200 "$ROOT/tests/e2e/keystone/ks-start.sh" "$WORK/ks" >"$WORK/ks-start.log" 2>&1 ||
    die "Keystone did not start (rc $?): $(tail -5 "$WORK/ks-start.log")"
KSENV=$WORK/ks/keystone.env
kget() { sed -n "s/^$1=//p" "$KSENV" | tail -n 1; }
KS_DIR=$(kget KS_DIR)
say "bench-ks: $(tail -1 "$WORK/ks-start.log")"

ksb() { "$PY" "$HERE/ks_bench.py" "$KSENV" "$@"; }
t0=$(now)
ksb users 0 "$USERS" || die "creating Keystone users failed"
{ echo SEQUENTIAL; ksb tokens 0 "$USERS" 1; } >"$WORK/warm.csv" || die "tokens failed"
{ echo SEQUENTIAL; ksb tokens 0 "$USERS" "$COLD_PER"; } >"$WORK/system-cold.csv" || die "tokens failed"
{ echo SEQUENTIAL; ksb tokens 0 "$USERS" "$COLD_PER"; } >"$WORK/system-direct.csv" || die "tokens failed"
{ echo SEQUENTIAL; ksb tokens 0 "$USERS" "$COLD_PER"; } >"$WORK/project-cold.csv" || die "tokens failed"
{ echo SEQUENTIAL; ksb tokens 0 "$USERS" "$COLD_PER"; } >"$WORK/project-direct.csv" || die "tokens failed"
{ echo SEQUENTIAL; ksb tokens 0 1 1; } >"$WORK/burst.csv" || die "tokens failed"
chmod 600 "$WORK"/*.csv
KS_SEED_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
NCOLD=$((USERS * COLD_PER))
say "bench-ks: $USERS Keystone users and $((USERS + 4 * NCOLD + 1)) tokens in $KS_SEED_S s"

# Digest users: u<K>..u<2K-1>, password pw-<i> (the bench/ims injection format)
awk -v first="$USERS" -v n="$USERS" -v realm="$REALM" 'BEGIN {
    print "SEQUENTIAL"
    for (i = first; i < first + n; i++) {
        u = sprintf("u%07d", i)
        printf "%s;%s@%s;[authentication username=%s@%s password=pw-%d]\n", u, u, realm, u, realm, i
    }
}' >"$WORK/digest.csv"

P_PORT=$(free_port)
I_PORT=$(free_port)
S_PORT=$(free_port)
DIA_PORT=$(free_port)
"$TOOLS/hss_bench_seed" seed -n -s "sip:127.0.0.1:$S_PORT" "sqlite:$WORK/ims/var/hss.db" \
    "$WORK/ims/var/keys" $((2 * USERS)) >"$WORK/seed.log" 2>&1 ||
    die "seeding failed: $(tail -5 "$WORK/seed.log")"

# ims:register needs member: Keystone's role for the Bearer users, [scscf]
# local_roles (default member) for the Digest users: both pay the policy check
cat >"$WORK/policy.yaml" <<'EOF'
"member": "role:member or role:admin"
"ims:register": "rule:member"
"ims:message": "rule:member"
"ims:call": "rule:member"
"ims:call:external": "rule:member"
"ims:subscribe": "rule:member"
"default": "!"
EOF
(umask 077 && kget KS_SVC_PASSWORD >"$WORK/ks.pw")

# start_ims SCOPE: imscloud with its service token scoped to the system (no
# [keystone] project: what docs/internals/keystone.md recommends, as role
# assignments and credentials need the system reader) or to project service
start_ims() {
    local proj=
    [ "$1" = system ] || proj='project = service\nproject_domain = Default'
    sed -e "s|@P_PORT@|$P_PORT|g" -e "s|@I_PORT@|$I_PORT|g" -e "s|@S_PORT@|$S_PORT|g" \
        -e "s|@DIA_PORT@|$DIA_PORT|g" -e "s|@WORKERS@|$WORKERS|g" -e "s|@STATE@|$WORK/ims/var|g" \
        -e "s|@MAX@|$((4 * USERS + 1000))|g" -e "s|@POLICY@|$WORK/policy.yaml|g" \
        -e "s|@KS_URL@|$(kget KS_URL)|g" -e "s|@KS_USER@|$(kget KS_SVC_USER)|g" \
        -e "s|@KS_PWFILE@|$WORK/ks.pw|g" -e "s|@KS_DOMAIN@|$(kget KS_SVC_DOMAIN)|g" \
        -e "s|^@KS_PROJECT@$|$proj|" -e "s|^log_level = err$|log_level = $LOG_LEVEL|" \
        "$HERE/imscloud.conf.in" >"$WORK/ims/imscloud.conf"
    "$IMS_BIN" -c "$WORK/ims/imscloud.conf" --check-config >"$WORK/ims/check.out" 2>&1 ||
        die "imscloud rejected its config: $(cat "$WORK/ims/check.out")"
    setsid "$IMS_BIN" -c "$WORK/ims/imscloud.conf" </dev/null >>"$WORK/ims/server.log" 2>&1 &
    IMS_PID=$!
    for _ in $(seq 1 100); do
        [ -n "$(ss -Hlnu "sport = :$P_PORT")" ] && break
        alive
        sleep 0.1
    done
    [ -n "$(ss -Hlnu "sport = :$P_PORT")" ] || die "imscloud does not listen on $P_PORT"
    sleep 1
    say "bench-ks: imscloud pid $IMS_PID ($1-scoped service token), P-CSCF udp 127.0.0.1:$P_PORT"
}
stop_ims() {
    kill -TERM "$IMS_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$IMS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$IMS_PID" 2>/dev/null || true
    wait "$IMS_PID" 2>/dev/null || true
    IMS_PID=
    # its UDP ports free again before the next start
    for _ in $(seq 1 50); do [ -z "$(ss -Hlnu "sport = :$P_PORT")" ] && break; sleep 0.1; done
}
start_ims system

BEARER_SF=$HERE/sipp/bearer_register.xml
DIGEST_SF=$ROOT/bench/ims/sipp/register.xml

# warm-up: every Bearer token validated once (the cache is then warm), every
# Digest user registered once (both arms are re-registrations from then on)
v0=$(ks_validations)
batch warm-bearer "$BEARER_SF" "$WORK/warm.csv" "$USERS" "$CONC"
{ [ "$B_FAIL" = 0 ] && [ "$B_OK" = "$USERS" ]; } || die "Bearer warm-up: $B_OK ok, $B_FAIL failed ($WORK/runs/warm-bearer)"
WARM_VAL=$(($(ks_validations) - v0))
batch warm-digest "$DIGEST_SF" "$WORK/digest.csv" "$USERS" "$CONC"
{ [ "$B_FAIL" = 0 ] && [ "$B_OK" = "$USERS" ]; } || die "Digest warm-up: $B_OK ok, $B_FAIL failed ($WORK/runs/warm-digest)"
settle

# ------------------------------------------------------------------ (a), (b)

declare -a A_RATE A_CPU B_RATE B_CPU
A_FAIL=0
B_FAILS=0
v0=$(ks_validations)
for r in $(seq 1 "$ROUNDS"); do
    batch "bearer-$r" "$BEARER_SF" "$WORK/warm.csv" "$CALLS" "$CONC"
    read -r "A_RATE[r]" "A_CPU[r]" < <(batch_figures)
    A_FAIL=$((A_FAIL + B_FAIL))
    say "bench-ks: round $r (a) Bearer, cache hits: ${A_RATE[r]} reg/s, ${A_CPU[r]} µs CPU/reg ($B_OK ok, $B_FAIL failed, $B_SEC s)"
    settle
    batch "digest-$r" "$DIGEST_SF" "$WORK/digest.csv" "$CALLS" "$CONC"
    read -r "B_RATE[r]" "B_CPU[r]" < <(batch_figures)
    B_FAILS=$((B_FAILS + B_FAIL))
    say "bench-ks: round $r (b) Digest: ${B_RATE[r]} reg/s, ${B_CPU[r]} µs CPU/reg ($B_OK ok, $B_FAIL failed, $B_SEC s)"
    settle
done
HOT_VAL=$(($(ks_validations) - v0))

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
A_RATE_M=$(median "${A_RATE[@]}")
B_RATE_M=$(median "${B_RATE[@]}")
A_CPU_M=$(median "${A_CPU[@]}")
B_CPU_M=$(median "${B_CPU[@]}")
# the ratios of each round (a and b ran back to back): their median is the
# headline, less sensitive to the machine's load drifting between rounds
RR=() RC=()
for r in $(seq 1 "$ROUNDS"); do
    RR+=("$(fdiv "${A_RATE[r]}" "${B_RATE[r]}" %.3f)")
    RC+=("$(fdiv "${A_CPU[r]}" "${B_CPU[r]}" %.3f)")
done
AB_RATE=$(printf '%.2f' "$(median "${RR[@]}")")
AB_CPU=$(printf '%.2f' "$(median "${RC[@]}")")

# ------------------------------------------------------------------ (c)

# cold SCOPE: the fresh tokens $WORK/SCOPE-cold.csv through imscloud and as many
# others ($WORK/SCOPE-direct.csv) straight to Keystone, in two alternating
# halves (imscloud, Keystone, imscloud, Keystone) so that the other load on the
# machine hits both alike. Sets CO_OK CO_FAIL CO_VAL CO_RATE CO_RAW CO_NET
# (imscloud CPU µs per registration, raw and less the idle background) CO_IDLE
# DI_OK DI_FAIL DI_SEC DI_RATE.
cold() {
    local scope=$1 h n v0 out ticks=0 sec=0
    CO_OK=0 CO_FAIL=0 CO_VAL=0 DI_OK=0 DI_FAIL=0 DI_SEC=0
    CO_IDLE=$(idle_ticks_per_s)
    n=$(((NCOLD + 1) / 2))
    for k in cold direct; do
        { echo SEQUENTIAL; sed -n "2,$((n + 1))p" "$WORK/$scope-$k.csv"; } >"$WORK/$scope-$k-1.csv"
        { echo SEQUENTIAL; sed -n "$((n + 2)),\$p" "$WORK/$scope-$k.csv"; } >"$WORK/$scope-$k-2.csv"
    done
    for h in 1 2; do
        v0=$(ks_validations)
        batch "$scope-cold-$h" "$BEARER_SF" "$WORK/$scope-cold-$h.csv" "$([ $h = 1 ] && echo $n || echo $((NCOLD - n)))" "$CONC"
        CO_VAL=$((CO_VAL + $(ks_validations) - v0))
        CO_OK=$((CO_OK + B_OK))
        CO_FAIL=$((CO_FAIL + B_FAIL))
        ticks=$((ticks + B_TICKS))
        sec=$(awk -v a="$sec" -v b="$B_SEC" 'BEGIN { print a + b }')
        settle
        out=$(ksb validate "$WORK/$scope-direct-$h.csv" "$CONC" "$scope") || die "direct validation failed"
        DI_OK=$((DI_OK + $(sed -n 's/^ok=\([0-9]*\).*/\1/p' <<<"$out")))
        DI_FAIL=$((DI_FAIL + $(sed -n 's/.* fail=\([0-9]*\).*/\1/p' <<<"$out")))
        DI_SEC=$(awk -v a="$DI_SEC" -v b="$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$out")" 'BEGIN { print a + b }')
    done
    CO_RATE=$(fdiv "$CO_OK" "$sec" %.1f)
    CO_RAW=$(fdiv $((ticks * 1000000 / HZ)) "$CO_OK" %.1f)
    CO_NET=$(net_cpu_us "$ticks" "$sec" "$CO_OK" "$CO_IDLE")
    DI_RATE=$(fdiv "$DI_OK" "$DI_SEC" %.1f)
    say "bench-ks: (c) $scope-scoped service token: imscloud $CO_RATE cold reg/s ($CO_OK ok, $CO_FAIL failed, $CO_VAL Keystone validations); Keystone directly $DI_RATE/s ($DI_OK ok, $DI_FAIL failed)"
}
cold system
C_OK=$CO_OK C_FAIL=$CO_FAIL C_VAL=$CO_VAL C_RATE=$CO_RATE C_CPU=$CO_RAW C_NET=$CO_NET IDLE1=$CO_IDLE
D_RATE=$DI_RATE
D_LINE="ok=$DI_OK fail=$DI_FAIL seconds=$DI_SEC"

# ------------------------------------------------------------------ (d)

settle
v0=$(ks_validations)
# two sipp processes (two flows: SO_REUSEPORT may put them on different
# workers) each sending half of the burst at once, same token
half=$((BURST / 2))
batch burst1 "$BEARER_SF" "$WORK/burst.csv" "$half" "$half" &
bp=$!
batch burst2 "$BEARER_SF" "$WORK/burst.csv" $((BURST - half)) $((BURST - half))
wait $bp || true
sleep 1
E_VAL=$(($(ks_validations) - v0))
E_OK=0
for n in burst1 burst2; do
    E_OK=$((E_OK + $(sipp_stat "$WORK/runs/$n/stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)))
done
E_MS=$(grep 'GET /v3/auth/tokens[ ?]' "$KS_DIR/uwsgi.log" | tail -n "${E_VAL:-1}" |
    sed -n 's/.* in \([0-9]*\) msecs.*/\1/p' | paste -sd, -)
say "bench-ks: (d) $BURST REGISTERs with one new token: $E_OK got 200, Keystone saw $E_VAL validation(s) (${E_MS} ms)"
alive

# ------------------------------------------------------------------ (c) again, project scope

# the same cold measurement with a project-scoped service token (a restart:
# the cache is empty, the HSS store is kept)
stop_ims
start_ims project
cold project
C2_OK=$CO_OK C2_FAIL=$CO_FAIL C2_VAL=$CO_VAL C2_RATE=$CO_RATE C2_CPU=$CO_RAW C2_NET=$CO_NET IDLE2=$CO_IDLE
D2_RATE=$DI_RATE
D2_LINE="ok=$DI_OK fail=$DI_FAIL seconds=$DI_SEC"
alive
T_END=$(date +%s)

# ------------------------------------------------------------------ report

ratio() { fdiv "$1" "$2" %.2f; }
idle_pct() { awk -v a="$1" -v h="$HZ" 'BEGIN { printf "%.1f", a * 100 / h }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r >= 0.9) ? "met" : "NOT met" }'; }
section() {
    local r
    echo '<!-- keystone-bench:begin -->'
    echo '## Keystone Bearer registration (bench/keystone/run.sh)'
    echo
    echo "Written by \`bench/keystone/run.sh\` (replaced by every run; method in [README.md](README.md))."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr), shared with other builds; load average at start $LOAD_START"
    echo "- imscloud: ${IMS_BIN#"$ROOT"/} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')), roles pcscf,icscf,scscf,hss in one process, $WORKERS workers, Cx in-process, HSS SQLite seeded with $((2 * USERS)) users; [keystone] cache_ttl 3600; [scscf] policy_file (ims:register = role:member)"
    echo "- Keystone: Debian $(dpkg-query -W -f '${Version}' keystone 2>/dev/null || echo '?') under uwsgi (1 process, 8 threads, SQLite, fernet), started by tests/e2e/keystone/ks-start.sh; $USERS users and $((USERS + 4 * NCOLD + 1)) tokens made in $KS_SEED_S s"
    echo "- load: one sipp UAC (one UDP flow, so one imscloud worker takes the UE side) with $CONC registrations in flight (\`-l $CONC\`), $CALLS registrations per run; $USERS Bearer users, $USERS Digest users; (a) and (b) alternate, $ROUNDS rounds"
    echo
    echo '| run | (a) Bearer, cache hits: reg/s | (b) Digest: reg/s | a/b | (a) CPU µs/reg | (b) CPU µs/reg | a/b |'
    echo '|---|---:|---:|---:|---:|---:|---:|'
    for r in $(seq 1 "$ROUNDS"); do
        echo "| round $r | ${A_RATE[r]} | ${B_RATE[r]} | $(ratio "${A_RATE[r]}" "${B_RATE[r]}") | ${A_CPU[r]} | ${B_CPU[r]} | $(ratio "${A_CPU[r]}" "${B_CPU[r]}") |"
    done
    echo "| **median** (ratios: median of the rounds' ratios) | **$A_RATE_M** | **$B_RATE_M** | **$AB_RATE** | **$A_CPU_M** | **$B_CPU_M** | **$AB_CPU** |"
    echo
    echo "- Goal \"Bearer on cache hits within 10% of Digest\" (reg/s a/b >= 0.90): **$(verdict "$AB_RATE")** (median of the rounds' a/b = $AB_RATE; CPU per registration a/b = $AB_CPU). Compared per *completed registration*: a Bearer registration is one REGISTER -> 200 (UAR, SAR), a Digest one is REGISTER -> 401 -> REGISTER -> 200 (UAR, MAR, UAR, SAR), so Bearer has no 401 round. Counted per REGISTER request instead, Digest handled 2 x $B_RATE_M = $((2 * ${B_RATE_M%.*})) REGISTERs/s (Bearer / Digest $(ratio "$A_RATE_M" $((2 * ${B_RATE_M%.*}))))."
    echo "- Failed registrations: (a) $A_FAIL, (b) $B_FAILS. Keystone validations during (a): $HOT_VAL (all cache hits expected: 0); the warm-up validated $WARM_VAL tokens for $USERS users."
    echo
    echo '| cold validations (each token new to imscloud and to Keystone) | per second | imscloud CPU µs/reg, idle background removed (raw) |'
    echo '|---|---:|---:|'
    echo "| (c) imscloud: Bearer REGISTER -> 200, each with a fresh token, system-scoped service token (the documented setting; two halves alternating with the next row; $C_OK ok, $C_FAIL failed; $C_VAL GET /v3/auth/tokens at Keystone) | $C_RATE | $C_NET ($C_CPU) |"
    echo "| Keystone directly: GET /v3/auth/tokens?nocatalog, system-scoped caller, $CONC threads, $NCOLD other fresh tokens (\`ks_bench.py validate\`: $D_LINE) | $D_RATE | |"
    echo "| **ratio imscloud / Keystone** | **$(ratio "$C_RATE" "$D_RATE")** | |"
    echo "| (c) imscloud as above with \`[keystone] project = service\` (project-scoped service token; restarted, empty cache; $C2_OK ok, $C2_FAIL failed; $C2_VAL GET /v3/auth/tokens) | $C2_RATE | $C2_NET ($C2_CPU) |"
    echo "| Keystone directly, project-scoped caller ($D2_LINE) | $D2_RATE | |"
    echo "| **ratio imscloud / Keystone**, project scope | **$(ratio "$C2_RATE" "$D2_RATE")** | |"
    echo
    echo "- Keystone validates a subject token for a system-scoped caller $(ratio "$D2_RATE" "$D_RATE")x slower than for a project-scoped one (same Keystone, same run): the cold rate is Keystone's, and the service token's scope decides it. imscloud adds its own SIP work (P, I, S, UAR, SAR) to each cold registration but never waits on anything but Keystone: its CPU per cold registration is in the last column, less its idle background ($(idle_pct "$IDLE1")% and $(idle_pct "$IDLE2")% of a core measured over 5 s before each cold run: timers and sweeps, which the few registrations per second would otherwise carry)."
    echo
    echo "- (d) $BURST REGISTERs sent at once (two sipp UACs, two flows, $((BURST / 2)) each) carrying one token imscloud had not seen: **$E_VAL** Keystone validation request(s) (uwsgi access log; Keystone took ${E_MS:-?} ms), $E_OK of $BURST registrations got 200. Goal: exactly 1 — **$([ "$E_VAL" = 1 ] && echo met || echo 'NOT met')**."
    echo '- Everything (imscloud, Keystone, sipp) shares the same cores with whatever else ran: compare ratios within this run.'
    echo '<!-- keystone-bench:end -->'
}

echo
section | tee "$WORK/section.md"
echo

if [ -n "$RESULTS" ]; then
    if [ -f "$RESULTS" ] && grep -q '^<!-- keystone-bench:begin -->$' "$RESULTS"; then
        # replace our section in place, keep everything else
        awk -v f="$WORK/section.md" '
            /^<!-- keystone-bench:begin -->$/ { while ((getline l < f) > 0) print l; skip = 1; next }
            /^<!-- keystone-bench:end -->$/ { skip = 0; next }
            !skip { print }' "$RESULTS" >"$WORK/results.new"
    else
        { [ -f "$RESULTS" ] && cat "$RESULTS" && echo; cat "$WORK/section.md"; } >"$WORK/results.new"
    fi
    cat "$WORK/results.new" >"$RESULTS"
    say "bench-ks: wrote ${RESULTS#"$ROOT"/}"
fi
