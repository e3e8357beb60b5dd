#!/usr/bin/env bash
# bench/hss/run.sh - the HSS over Diameter on loopback: MAR and SAR answered per second,
# p50/p99 latency, server CPU per request, peak RSS. Never run by CTest. See README.md.
#
#   bench/hss/run.sh [--build DIR] [--subs N] [--seconds S] [--warmup S] [--window N]
#                    [--conns N] [--store-threads N] [--items N] [--scenarios LIST]
#                    [--rate R | --rates "R1 R2 ..."] [--repeat N] [--tick US] [--assigned] [--no-ceiling]
#                    [--compare DIR] [--results FILE | --no-results] [--keep]
#                    [--client raw|raw-unbatched|fd]
#
# Seeds N subscribers (default 100000) into a fresh SQLite store with hss_bench_seed
# (--assigned: with an S-CSCF name already stored, as after an earlier registration),
# starts `imscloud` (roles = hss) from DIR (default build-hbench), and for each scenario
# (mar-digest, mar-aka, sar-reg, sar-rereg) runs hss_load for --warmup + --seconds with a
# window of --window outstanding requests over --conns Diameter connections. Then, as a
# reference, the same MAR load against a second imscloud in SLF mode, which answers every
# request on its loop without touching a store (the Diameter stack's own ceiling here).
# Records the server's CPU seconds per request (utime+stime from /proc/PID/stat over the
# run) and its peak RSS (VmHWM), and writes a section of bench/RESULTS.md between the
# markers <!-- hss-bench:begin --> and <!-- hss-bench:end --> (one block per subscriber
# count and --assigned; the rest of the file is bench/run.sh's and is left alone).
# --compare DIR: the same scenarios also against DIR's imscloud (an older build), on its own
# copy of the seeded store, each scenario first on DIR then on --build: before/after rows of
# one run on the same machine state.
# --rate R / --rates LIST: open loop instead: hss_load offers R requests/s on a fixed schedule
# (latency from the scheduled send time), --window (default 4096 there) only caps the
# outstanding requests; per scenario and rate the table gives offered and answered/s,
# p50/p99/p99.9, errors (skipped sends among them) and whether the server kept up. Each rate
# runs all scenarios on a fresh copy of the seeded store (servers restarted), so the rows of
# a sweep start from the same state; the SLF reference runs at each rate too. --tick US: how
# often the load generator's pacer wakes (1000; latency includes up to one tick).
# --repeat N (open loop): N runs of each rate, each on a fresh copy of the store; the summary
# says in how many of them the goal held. The 2 cores are shared with other machines' work
# (steal time): one run's p99 can be ten times its neighbour's, so one run decides nothing.
# --client raw|raw-unbatched|fd: the load generator: hss_rawload (raw, the default: Diameter
# framed by hand on plain TCP sockets, one thread, 2-6 us of CPU per request), hss_rawload -B
# (raw-unbatched: one write() per request, as hss_load's arrive) or hss_load (fd: a
# freeDiameter node per connection, 30-45 us per request); same options and result line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/hss
BUILD=$ROOT/build-hbench
SUBS=100000
SECONDS_RUN=10
WARMUP=2
WINDOW=
CONNS=2
STORE_THREADS=0 # 0: each server's own default (key not written; 1 for SQLite since 9ca3100, 2 before)
ITEMS=1
SCENARIOS="mar-digest mar-aka sar-reg sar-rereg"
CEILING=yes
ASSIGNED=no
RESULTS=$ROOT/bench/RESULTS.md
KEEP=no
COMPARE=
RATES= # open loop: offered requests/s, one run of every scenario per rate
REPEAT=1 # open loop: runs per rate
TICK=1000 # open loop: hss_load -P
CLIENT=raw # the load generator: raw = hss_rawload, fd = hss_load (freeDiameter)
GOAL_P99_MS=5 # the goal of issue 3: >= 20 000 MAR/s with p99 < 5 ms
CMDLINE="bench/hss/run.sh${*:+ $*}"
PYHSS=500 # published PyHSS figure (Diameter requests/s); not measured here

usage() {
    sed -n '5,9p;32,35p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "${2:?}" && pwd); shift 2 ;;
    --subs) SUBS=${2:?}; shift 2 ;;
    --seconds) SECONDS_RUN=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --window) WINDOW=${2:?}; shift 2 ;;
    --conns) CONNS=${2:?}; shift 2 ;;
    --store-threads) STORE_THREADS=${2:?}; shift 2 ;;
    --items) ITEMS=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --no-ceiling) CEILING=no; shift ;;
    --assigned) ASSIGNED=yes; shift ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --no-results) RESULTS=; shift ;;
    --keep) KEEP=yes; shift ;;
    --compare) COMPARE=$(cd "${2:?}" && pwd); shift 2 ;;
    --rate | --rates) RATES=${2:?}; shift 2 ;;
    --repeat) REPEAT=${2:?}; shift 2 ;;
    --tick) TICK=${2:?}; shift 2 ;;
    --client) CLIENT=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done
if ! [[ $SUBS =~ ^[0-9]+$ ]] || [ "$SUBS" -lt 1 ]; then usage; fi
LOADER_ARGS=()
case $CLIENT in
raw) LOADER=hss_rawload ;;
raw-unbatched) LOADER=hss_rawload; LOADER_ARGS=(-B) ;;
fd) LOADER=hss_load ;;
*) echo "bench: --client is raw, raw-unbatched or fd" >&2; exit 2 ;;
esac
for r in $RATES $TICK $REPEAT; do [[ $r =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad rate or tick '$r'" >&2; exit 2; }; done
# open loop: the window is only a cap (a request due while it is reached is an error), so
# large: 4096 outstanding are 200 ms of backlog at 20 000/s
if [ -z "$WINDOW" ] && [ -n "$RATES" ]; then WINDOW=4096; fi
WINDOW=${WINDOW:-64}
awk -v s="$SECONDS_RUN" -v w="$WARMUP" 'BEGIN { exit !(s > 0 && w >= 0 && s + w <= 60) }' ||
    { echo "bench: --warmup + --seconds must be at most 60" >&2; exit 2; }

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench-hss: $*"
    exit 1
}
for t in awk ss setsid cmake; do command -v $t >/dev/null || die "missing '$t'"; done
IMS_BIN=$BUILD/imscloud
[ -z "$COMPARE" ] || [ -x "$COMPARE/imscloud" ] || die "no imscloud in $COMPARE"
[ -x "$IMS_BIN" ] || die "no imscloud in $BUILD (cmake -S . -B build-hbench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-hbench -j2 --target imscloud)"

# the tools, against the same libimscore.a as the server (incremental, a few seconds)
TOOLS=$BUILD/bench-hss
if [ ! -f "$TOOLS/CMakeCache.txt" ]; then
    cmake -S "$HERE" -B "$TOOLS" -DIMS_BUILD_DIR="$BUILD" >"${TMPDIR:-/tmp}/hss-bench-cmake.log" 2>&1 ||
        die "cmake of bench/hss failed: $(tail -5 "${TMPDIR:-/tmp}/hss-bench-cmake.log")"
fi
cmake --build "$TOOLS" -j2 >"${TMPDIR:-/tmp}/hss-bench-build.log" 2>&1 ||
    die "building bench/hss failed: $(tail -20 "${TMPDIR:-/tmp}/hss-bench-build.log")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imscloud-hss-bench.XXXXXX")
HZ=$(getconf CLK_TCK)
STARTED=()
cleanup() {
    local p
    for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${STARTED[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = yes ]; then say "bench-hss: work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port_busy() { [ -n "$(ss -Hlnt "sport = :$1")" ]; }
free_port() {
    local p _
    for _ in $(seq 1 1000); do
        p=$((27000 + RANDOM % 900))
        port_busy $p || { echo $p; return; }
    done
    die "no free port in 27000-27899"
}
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# all CPUs' busy ticks (everything but idle and iowait): what else ran during a run
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b == 0) print "-"; else printf f, a / b }'; }
field() { # field NAME LINE: value of NAME=... in a "result ..." line
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$2"
}

# start_server NAME MODE PORT [BIN STATE]: an imscloud (default $IMS_BIN, state dir
# $WORK/var) with roles = hss (MODE hss or slf) on PORT
start_server() {
    local name=$1 mode=$2 port=$3 dir=$WORK/$1 bin=${4:-$IMS_BIN}
    mkdir -p "$dir"
    chmod 700 "$dir"
    local extra="" state=${5:-$WORK/var}
    # the SLF gets its own state dir: one admin socket (imscloud.ctl) per directory
    [ "$mode" = hss ] || state=$WORK/var-$name
    [ "$mode" = hss ] || extra="mode = slf
slf_route = *@ims.bench hss-a.ims.bench"
    cat >"$dir/imscloud.conf" <<EOF
[core]
roles = hss
state_dir = $state
log_level = err

[hss]
$([ "$STORE_THREADS" = 0 ] || echo "store_threads = $STORE_THREADS")
store_queue = 65536
$extra

[diameter]
identity = hss.ims.bench
realm = ims.bench
listen = 127.0.0.1
port = $port
allow_hosts = bench*.ims.bench
max_pending = 65536
EOF
    setsid "$bin" -c "$dir/imscloud.conf" </dev/null >"$dir/server.log" 2>&1 &
    local pid=$!
    STARTED+=("$pid")
    for _ in $(seq 1 100); do
        port_busy "$port" && break
        kill -0 "$pid" 2>/dev/null || die "imscloud ($name) exited: $(tail -5 "$dir/server.log")"
        sleep 0.1
    done
    port_busy "$port" || die "imscloud ($name) does not listen on $port"
    SERVER_PID=$pid
}

# run_load NAME PID PORT SCENARIO [hss_load args]: one measurement; sets R_* (LINE = result line)
run_load() {
    local name=$1 pid=$2 port=$3 sc=$4
    shift 4
    local c0 c1
    c0=$(cpu_ticks "$pid")
    local m0 w0
    m0=$(busy_ticks)
    w0=$(date +%s.%N)
    local out=$WORK/$name-$sc.out rc=0
    "$TOOLS/$LOADER" -H hss.ims.bench -p "$port" -d "$WORK/client" -s "$sc" -N "$SUBS" \
        -c "$CONNS" -w "$WINDOW" -t "$SECONDS_RUN" -W "$WARMUP" ${LOADER_ARGS[@]+"${LOADER_ARGS[@]}"} "$@" \
        >"$out" 2>&1 || rc=$?
    c1=$(cpu_ticks "$pid")
    local m1 w1
    m1=$(busy_ticks)
    w1=$(date +%s.%N)
    LINE=$(grep '^result ' "$out" || true)
    [ -n "$LINE" ] || die "$LOADER $sc failed: $(tail -5 "$out")"
    R_RATE=$(field rate "$LINE")
    R_OK=$(field ok "$LINE")
    R_ERR=$(field errors "$LINE")
    R_P50=$(fdiv "$(field p50_us "$LINE")" 1000 %.2f)
    R_P99=$(fdiv "$(field p99_us "$LINE")" 1000 %.2f)
    R_P999=$(fdiv "$(field p999_us "$LINE")" 1000 %.2f)
    R_OFFERED=$(field offered "$LINE")
    R_SKIP=$(field skipped "$LINE")
    R_LATE=$(field late "$LINE")
    R_LAG99=$(fdiv "$(field lag_p99_us "$LINE")" 1000 %.2f)
    R_SLOW=$(field send_slow "$LINE")
    # the server's CPU over warm-up + measurement, per request answered in that time
    # (warm-up requests are not in R_OK: scale by the whole run's length)
    local total secs
    secs=$(awk -v s="$SECONDS_RUN" -v w="$WARMUP" 'BEGIN { print s + w }')
    total=$(awk -v ok="$R_OK" -v s="$SECONDS_RUN" -v t="$secs" 'BEGIN { print ok * t / s }')
    R_CPU_US=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$total" 'BEGIN { if (n == 0) print "-"; else printf "%.0f", c / hz * 1e6 / n }')
    R_SCPU=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v t="$secs" 'BEGIN { printf "%.0f", c / hz / t * 100 }')
    R_CCPU=$(awk -v c="$(field client_cpu_s "$LINE")" -v t="$secs" 'BEGIN { printf "%.0f", c / t * 100 }')
    # the rest of the machine (other engineers' work) over the same wall time: the 2 cores
    # are shared, and what others took is not the server's
    R_OTHER=$(awk -v m=$((m1 - m0)) -v c=$((c1 - c0)) -v hz="$HZ" -v l="$(field client_cpu_s "$LINE")" \
        -v a="$w0" -v b="$w1" 'BEGIN { o = ((m - c) / hz - l) / (b - a) * 100; printf "%.0f", o < 0 ? 0 : o }')
    local off=
    [ -z "$RATES" ] || off=$(printf 'offered %6s/s, skipped %s, late %s (lag p99 %s ms, blocked %s), ' \
        "$R_OFFERED" "$R_SKIP" "$R_LATE" "$R_LAG99" "$R_SLOW")
    # the machine is shared: the load average after each run says how much
    say "$(printf 'bench-hss: %-10s %-10s %s%7s/s  p50 %6s ms  p99 %6s ms  p99.9 %6s ms  errors %s  server %s us/req (%s%% of a core)  %s %s%%  rest of the machine %s%%  (rc %s, load %s)' \
        "$name" "$sc" "$off" "$R_RATE" "$R_P50" "$R_P99" "$R_P999" "$R_ERR" "$R_CPU_US" "$R_SCPU" "$LOADER" "$R_CCPU" "$R_OTHER" "$rc" "$(cut -d' ' -f1 /proc/loadavg)")"
}

# ------------------------------------------------------------------ run

say "bench-hss: work dir $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 }')), $SUBS subscribers, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
mkdir -p "$WORK/var" "$WORK/client"
chmod 700 "$WORK/var" "$WORK/client"
t0=$(date +%s.%N)
seed_args=()
[ "$ASSIGNED" = no ] || seed_args=(-a)
"$TOOLS/hss_bench_seed" seed "${seed_args[@]}" "sqlite:$WORK/var/hss.db" "$WORK/var/keys" "$SUBS" \
    >"$WORK/seed.log" 2>&1 ||
    die "seeding failed: $(tail -5 "$WORK/seed.log")"
SEED_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
DB_MB=$(du -m "$WORK/var/hss.db" | cut -f1)
say "bench-hss: seeded $SUBS subscribers in $SEED_S s (hss.db $DB_MB MiB)"

NRATES=$(($(wc -w <<<"$RATES") * REPEAT))
# a sweep restarts the servers on a fresh copy of the seeded store for each rate
[ "$NRATES" -le 1 ] || cp -a "$WORK/var" "$WORK/var-seed"
# The --compare server gets a copy of the same store; or, when that build has
# its own tools (DIR/bench-hss, see README), a store they seeded the same way:
# an older imscloud cannot open a store made with a newer schema.
CMP_SEED=var
if [ -n "$COMPARE" ] && [ -x "$COMPARE/bench-hss/hss_bench_seed" ]; then
    mkdir -p "$WORK/var-cmp-seed"
    chmod 700 "$WORK/var-cmp-seed"
    "$COMPARE/bench-hss/hss_bench_seed" seed "${seed_args[@]}" "sqlite:$WORK/var-cmp-seed/hss.db" \
        "$WORK/var-cmp-seed/keys" "$SUBS" >"$WORK/seed-cmp.log" 2>&1 ||
        die "seeding the --compare store failed: $(tail -5 "$WORK/seed-cmp.log")"
    CMP_SEED=var-cmp-seed
    say "bench-hss: the --compare store was seeded by $COMPARE/bench-hss/hss_bench_seed"
elif [ "$NRATES" -gt 1 ]; then
    CMP_SEED=var-seed
fi
[ -z "$COMPARE" ] || cp -a "$WORK/$CMP_SEED" "$WORK/var-cmp" # before anyone writes

# start_hss: the HSS under test (and the --compare one) on new ports
start_hss() {
    if [ -n "$COMPARE" ]; then
        CPORT=$(free_port)
        start_server cmp hss "$CPORT" "$COMPARE/imscloud" "$WORK/var-cmp"
        CMP_PID=$SERVER_PID
    fi
    PORT=$(free_port)
    start_server hss hss "$PORT"
    HSS_PID=$SERVER_PID
    sleep 0.5
}
stop_server() { # stop_server PID
    local p=$1 q _ keep=()
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for q in "${STARTED[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    STARTED=("${keep[@]}")
}
HWM=0
CMP_HWM=0
max_hwm() { # the peak RSS over the servers' lifetimes so far
    local h
    h=$(status_kb VmHWM "$HSS_PID"); [ "$h" -le "$HWM" ] || HWM=$h
    THREADS=$(status_kb Threads "$HSS_PID")
    [ -z "$COMPARE" ] || { h=$(status_kb VmHWM "$CMP_PID"); [ "$h" -le "$CMP_HWM" ] || CMP_HWM=$h; }
}
restart_hss() { # fresh copies of the seeded store, new server processes
    max_hwm
    stop_server "$HSS_PID"
    [ -z "$COMPARE" ] || stop_server "$CMP_PID"
    rm -rf "${WORK:?}/var" "${WORK:?}/var-cmp"
    cp -a "$WORK/var-seed" "$WORK/var"
    [ -z "$COMPARE" ] || cp -a "$WORK/$CMP_SEED" "$WORK/var-cmp"
    start_hss
}
start_slf() {
    SPORT=$(free_port)
    start_server slf slf "$SPORT"
    SLF_PID=$SERVER_PID
    sleep 0.5
}

start_hss
RSS_IDLE=$(status_kb VmRSS "$HSS_PID")

declare -A RES
keep_res() { # keep_res KEY: R_* into RES[KEY,*]
    local k v
    for k in RATE OK ERR P50 P99 P999 OFFERED SKIP LATE LAG99 SLOW CPU_US SCPU CCPU OTHER; do
        v=R_$k
        RES[$1,$k]=${!v}
    done
}
# run_scenarios SUFFIX [hss_load args]: every scenario (before/after with --compare)
run_scenarios() {
    local suf=$1 sc args
    shift
    for sc in $SCENARIOS; do
        args=("$@")
        [ "$sc" != mar-aka ] || args+=(-n "$ITEMS")
        if [ -n "$COMPARE" ]; then
            run_load cmp "$CMP_PID" "$CPORT" "$sc" "${args[@]}"
            keep_res "cmp:$sc$suf"
        fi
        run_load hss "$HSS_PID" "$PORT" "$sc" "${args[@]}"
        keep_res "$sc$suf"
    done
}
if [ -z "$RATES" ]; then
    run_scenarios ""
    max_hwm
    if [ "$CEILING" = yes ]; then
        start_slf
        run_load slf "$SLF_PID" "$SPORT" mar-digest -x 3006
        keep_res ceiling
    fi
else
    [ "$CEILING" = no ] || start_slf
    first=yes
    for r in $RATES; do
        for ((rep = 1; rep <= REPEAT; rep++)); do
            [ $first = yes ] || restart_hss
            first=no
            say "bench-hss: open loop at $r requests/s$([ "$REPEAT" = 1 ] || echo ", run $rep of $REPEAT")"
            run_scenarios "@$r#$rep" -r "$r" -P "$TICK"
            if [ "$CEILING" = yes ]; then
                run_load slf "$SLF_PID" "$SPORT" mar-digest -x 3006 -r "$r" -P "$TICK"
                keep_res "ceiling@$r#$rep"
            fi
        done
    done
    max_hwm
fi
T_END=$(date +%s)

# ------------------------------------------------------------------ report

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
label() {
    case $1 in
    mar-digest)
        if [ "$ASSIGNED" = yes ]; then
            echo "MAR Digest-MD5 (HA1; S-CSCF name unchanged: no write)"
        else
            echo "MAR Digest-MD5 (HA1; S-CSCF name stored: a write)"
        fi
        ;;
    mar-aka) echo "MAR Digest-AKAv1-MD5, $ITEMS vector(s) (SQN committed)" ;;
    sar-reg) echo "SAR REGISTRATION (state written, User-Data XML)" ;;
    sar-rereg) echo "SAR RE_REGISTRATION, User-Data-Already-Available" ;;
    ceiling) echo "reference: MAR to an SLF (3006 from the loop, no store)" ;;
    cmp:*) echo "$(label "${1#cmp:}") — before: --compare build" ;;
    *@*) label "${1%@*}" ;;
    esac
}
row() {
    local k=$1 r=${RES[$1,RATE]}
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(label "$k")" "$r" "${RES[$k,P50]}" \
        "${RES[$k,P99]}" "${RES[$k,ERR]}" "${RES[$k,CPU_US]}" "${RES[$k,SCPU]}" "${RES[$k,CCPU]}" \
        "$(if [ "$k" = ceiling ]; then echo -; else fdiv "$r" "$PYHSS" "%.1f×"; fi)"
}
bin_desc() { # the build of an imscloud binary, for the report
    echo "${1#"$ROOT"/} (built $(date -u -r "$1" '+%Y-%m-%d %H:%M UTC'))"
}
# open loop: kept up = every scheduled request answered (no skip, timeout or error answer)
kept_up() { # kept_up KEY
    awk -v e="${RES[$1,ERR]}" -v r="${RES[$1,RATE]}" -v o="${RES[$1,OFFERED]}" \
        'BEGIN { print (e == 0 && r >= 0.99 * o) ? "yes" : "no" }'
}
meets_goal() { # meets_goal KEY: kept up with p99 under GOAL_P99_MS
    [ "$(kept_up "$1")" = yes ] && awk -v p="${RES[$1,P99]}" -v g="$GOAL_P99_MS" 'BEGIN { exit !(p < g) }'
}
rate_row() {
    local k=$1
    printf '| %s%s | %s | %s | %s | %s | %s | %s (%s) | %s / %s / %s | %s | %s | %s | %s | %s |\n' "$(label "$k")" \
        "$([ "$REPEAT" = 1 ] || echo " (run ${k##*#})")" "${RES[$k,OFFERED]}" "${RES[$k,RATE]}" "${RES[$k,P50]}" "${RES[$k,P99]}" "${RES[$k,P999]}" \
        "${RES[$k,ERR]}" "${RES[$k,SKIP]}" "${RES[$k,LAG99]}" "${RES[$k,LATE]}" "${RES[$k,SLOW]}" \
        "${RES[$k,CPU_US]}" "${RES[$k,SCPU]}" \
        "${RES[$k,CCPU]}" "${RES[$k,OTHER]}" "$(kept_up "$k")$(meets_goal "$k" && echo ", p99 < $GOAL_P99_MS ms")"
}
# per scenario: the highest offered rate the server kept up with at p99 < GOAL_P99_MS
# (in most of its runs, with --repeat), and with --repeat how many runs met it at each rate
best_rate() { # best_rate KEY-PREFIX
    local r best=none rep met
    for r in $RATES; do
        met=0
        for ((rep = 1; rep <= REPEAT; rep++)); do ! meets_goal "$1@$r#$rep" || met=$((met + 1)); done
        [ $((2 * met)) -le "$REPEAT" ] || best="$r/s"
    done
    echo "$best"
}
runs_met() { # runs_met KEY-PREFIX: "at R/s k of N runs (p99 a, b, ... ms); ..."
    local r rep met p99s out=""
    for r in $RATES; do
        met=0 p99s=""
        for ((rep = 1; rep <= REPEAT; rep++)); do
            ! meets_goal "$1@$r#$rep" || met=$((met + 1))
            p99s+="${p99s:+, }${RES[$1@$r#$rep,P99]}$([ "$(kept_up "$1@$r#$rep")" = yes ] || echo " (fell behind)")"
        done
        out+="${out:+; }at $r/s $met of $REPEAT runs (p99 $p99s ms)"
    done
    echo "$out"
}
rate_table() {
    echo "| scenario | offered/s | answered/s | p50 (ms) | p99 (ms) | p99.9 (ms) | errors (skipped: cap of $WINDOW reached) | $LOADER send lag p99 (ms) / late sends (> tick + 1 ms) / sends blocked > 1 ms | server CPU per request (µs) | server CPU (% of a core) | $LOADER CPU (% of a core) | rest of the machine (% of a core) | kept up |"
    echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
    local sc r rep
    for sc in $SCENARIOS; do
        for r in $RATES; do
            for ((rep = 1; rep <= REPEAT; rep++)); do
                [ -z "$COMPARE" ] || rate_row "cmp:$sc@$r#$rep"
                rate_row "$sc@$r#$rep"
            done
        done
    done
    if [ "$CEILING" = yes ]; then
        for r in $RATES; do
            for ((rep = 1; rep <= REPEAT; rep++)); do rate_row "ceiling@$r#$rep"; done
        done
    fi
    echo
    echo "Highest offered rate kept up with p99 < $GOAL_P99_MS ms (of $RATES/s$([ "$REPEAT" = 1 ] || echo "; in most of $REPEAT runs")):"
    for sc in $SCENARIOS; do
        echo "$(label "$sc"): $(best_rate "$sc")$([ -z "$COMPARE" ] || echo "; before: $(best_rate "cmp:$sc")")"
    done
    [ "$CEILING" = no ] || echo "$(label ceiling): $(best_rate ceiling)"
    if [ "$REPEAT" != 1 ]; then
        echo
        echo "Runs that met p99 < $GOAL_P99_MS ms:"
        for sc in $SCENARIOS; do
            echo "- $(label "$sc"): $(runs_met "$sc")"
            [ -z "$COMPARE" ] || echo "- $(label "cmp:$sc"): $(runs_met "cmp:$sc")"
        done
        [ "$CEILING" = no ] || echo "- $(label ceiling): $(runs_met ceiling)"
    fi
}
table() {
    if [ -n "$RATES" ]; then
        rate_table
        return
    fi
    echo "| scenario | answered/s | p50 (ms) | p99 (ms) | errors | server CPU per request (µs) | server CPU (% of a core) | $LOADER CPU (% of a core) | vs PyHSS 500/s (published) |"
    echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    local sc
    for sc in $SCENARIOS; do
        [ -z "$COMPARE" ] || row "cmp:$sc"
        row "$sc"
    done
    [ "$CEILING" = no ] || row ceiling
}

KEY=$SUBS
TITLE="$SUBS subscribers"
if [ "$ASSIGNED" = yes ]; then
    KEY=$SUBS-assigned
    TITLE="$SUBS subscribers, S-CSCF assigned"
fi
if [ -n "$RATES" ]; then
    KEY=$KEY-open
    TITLE="$TITLE, open loop"
fi
block() {
    echo "### $TITLE"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), store on $(df -T "$WORK" | awk 'NR == 2 { print $2 }'); load average at start $LOAD_START"
    echo "- server: ${IMS_BIN#"$ROOT"/} (built $(date -u -r "$IMS_BIN" '+%Y-%m-%d %H:%M UTC'); tree at $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')), \`roles = hss\`, SQLite (WAL; every write on disk before its answer, except the Server-Name a MAR stores and, from SQN generations on, the SQN of an AKA MAR), $(if [ "$STORE_THREADS" = 0 ]; then echo "store_threads as shipped (1 for SQLite; builds before 9ca3100: 2)"; else echo "store_threads = $STORE_THREADS"; fi), log_level = err"
    [ -z "$COMPARE" ] || echo "- before (--compare): $(bin_desc "$COMPARE/imscloud"), same settings, its own copy of the same seeded store; each scenario ran on it first, then on the server above"
    echo "- store: $SUBS subscribers (IMPI with K/OPc and 3 HA1s, one IMPU with an iFC profile; $(if [ "$ASSIGNED" = yes ]; then echo "S-CSCF name already stored, as after an earlier registration"; else echo "no S-CSCF name stored yet: first registrations"; fi)), seeded by hss_bench_seed in $SEED_S s, hss.db $DB_MB MiB"
    if [ -n "$RATES" ]; then
        echo "- load: $LOADER over TCP on 127.0.0.1, $CONNS connection(s), open loop: each offered rate on a fixed schedule, latency from the scheduled send time, pacing tick $TICK µs (in the latency), at most $WINDOW outstanding (a request due beyond that is skipped: an error), random subscribers; ${WARMUP} s warm-up then ${SECONDS_RUN} s measured per scenario and rate$([ "$REPEAT" = 1 ] || echo ", $REPEAT runs of each rate"); every $([ "$REPEAT" = 1 ] && echo rate || echo run) on a fresh copy of the seeded store; everything on the same $(nproc) cores"
    else
        echo "- load: $LOADER over TCP on 127.0.0.1, $CONNS connection(s), window $WINDOW outstanding requests, random subscribers; ${WARMUP} s warm-up then ${SECONDS_RUN} s measured per scenario; everything on the same $(nproc) cores"
    fi
    echo
    table
    echo
    echo "Server memory: peak RSS (VmHWM) $(mib "$HWM") MiB after all scenarios (RSS $(mib "$RSS_IDLE") MiB idle after start), $THREADS threads.$([ -z "$COMPARE" ] || echo " The --compare build: $(mib "$CMP_HWM") MiB.")"
    echo
}

echo
table
echo "peak RSS $(mib "$HWM") MiB"

if [ -n "$RESULTS" ]; then
    # Keep bench/run.sh's part and the blocks of other subscriber counts; replace ours.
    [ -f "$RESULTS" ] || : >"$RESULTS"
    mkdir -p "$WORK/blocks"
    awk -v dir="$WORK/blocks" -v outside="$WORK/outside.md" '
        /^<!-- hss-bench:begin -->$/ { inside = 1; next }
        /^<!-- hss-bench:end -->$/ { inside = 0; blk = ""; next }
        !inside { print > outside; next }
        /^### [0-9]+ subscribers(, S-CSCF assigned)?(, open loop)?$/ {
            blk = dir "/" $2 (/S-CSCF assigned/ ? "-assigned" : "") (/open loop/ ? "-open" : "")
            next
        }
        blk != "" { print > blk }' "$RESULTS"
    [ -f "$WORK/outside.md" ] || : >"$WORK/outside.md"
    block >"$WORK/blocks/$KEY.new"
    rm -f "$WORK/blocks/$KEY"
    {
        # trailing blank lines of the rest of the file: at most one before the section
        awk '{ lines[NR] = $0 } END { n = NR; while (n > 0 && lines[n] == "") n--; for (i = 1; i <= n; i++) print lines[i] }' "$WORK/outside.md"
        echo
        echo '<!-- hss-bench:begin -->'
        echo '## HSS: Cx over Diameter (bench/hss/run.sh)'
        echo
        echo "Written by \`bench/hss/run.sh\` (method in [hss/README.md](hss/README.md)); one block per subscriber count (and \`--assigned\`, and open loop: \`--rate\`/\`--rates\`), replaced by the next run with the same. The PyHSS figure (≈500 Diameter requests/s) is a published number, not measured here (PyHSS is not packaged in Debian)."
        echo
        for f in $(find "$WORK/blocks" -type f -printf '%f\n' | sed 's/\.new$//' | sort -n | uniq); do
            if [ "$f" = "$KEY" ]; then
                cat "$WORK/blocks/$KEY.new"
            else
                case $f in
                *-assigned-open) echo "### ${f%-assigned-open} subscribers, S-CSCF assigned, open loop" ;;
                *-assigned) echo "### ${f%-assigned} subscribers, S-CSCF assigned" ;;
                *-open) echo "### ${f%-open} subscribers, open loop" ;;
                *) echo "### $f subscribers" ;;
                esac
                awk '{ lines[NR] = $0 } END { n = NR; while (n > 0 && lines[n] == "") n--; for (i = 1; i <= n; i++) print lines[i] }' "$WORK/blocks/$f"
                echo
            fi
        done
        echo '<!-- hss-bench:end -->'
    } >"$WORK/results.md"
    cp "$WORK/results.md" "$RESULTS"
    say "bench-hss: wrote ${RESULTS#"$ROOT"/}"
fi
