#!/usr/bin/env bash
# bench/run.sh - imscloud and Kamailio 5.6 side by side on loopback, driven by sipp.
# Builds nothing; never run by CTest. See bench/README.md.
#
#   bench/run.sh [--imscloud PATH] [--only imscloud|kamailio] [--step SECONDS]
#                [--workers N] [--uacs N] [--results FILE | --no-results] [--keep]
#
# For each server, one at a time (both are started up front and left idle in turn):
#   (a) OPTIONS to the server itself -> 200 (stateless): the highest rate with zero
#       failed transactions that sipp could hold (within 10%),
#   (b) calls UAC -> server -> UAS, INVITE/180/200/ACK/BYE/200, record-routed and
#       stateful: the highest calls/s with zero failed calls,
# found by doubling the rate from a start value, then bisecting, one --step seconds
# long sipp run per rate. At the best rate it reports the server's CPU time per
# operation (utime+stime from /proc/PID/stat, all Kamailio processes summed) and,
# after the run at the best call rate, the memory of the server processes: peak RSS
# (VmHWM, summed over processes, so Kamailio's shared memory counts once per process
# that touched it) and PSS (smaps_rollup, shared pages split between processes; current,
# not peak). A server is restarted after every failed (overloaded) run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
IMS_BIN=$ROOT/build-rel/imscloud
ONLY=both
STEP=5
WORKERS=$(nproc)
RESULTS=$BENCH/RESULTS.md
KEEP=no
MAX_STEPS=10
# sipp UAC processes that share each OPTIONS rate: one sipp tops out near 30-40k
# OPTIONS/s here, below what the servers can answer, so OPTIONS load comes from
# several (each on its own port, so SO_REUSEPORT spreads them over the workers).
UACS=3
# sipp's socket buffers (default 64 KiB) overflow when a fast server answers a batch
# of datagrams back to back; the kernel then drops at sipp, not at the server (seen as
# RcvbufErrors in /proc/net/snmp). 4 MiB (net.core.rmem_max here) takes that out of
# the measurement, for both servers alike.
SIPP_BUF=4194304
CMDLINE="bench/run.sh $*"

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --imscloud) IMS_BIN=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --step) STEP=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --uacs) UACS=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --no-results) RESULTS=; shift ;;
    --keep) KEEP=yes; shift ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done
case $ONLY in both | imscloud | kamailio) ;; *) usage ;; esac
SERVERS=()
[ "$ONLY" = imscloud ] || SERVERS+=(kamailio)
[ "$ONLY" = kamailio ] || SERVERS+=(imscloud)

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench: $*"
    exit 1
}
need() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null || die "missing '$t' (tools/install-deps.sh bench)"; done
}
need sipp awk ss setsid
if [ "$ONLY" != imscloud ]; then need kamailio; fi
if [ "$ONLY" != kamailio ]; then
    [ -x "$IMS_BIN" ] || die "no imscloud binary at $IMS_BIN (build a release build: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel, or pass --imscloud PATH; --only kamailio runs without it)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imscloud-bench.XXXXXX")
HZ=$(getconf CLK_TCK)
declare -A PORT UAS_PORT PIDS MAIN
STARTED_PIDS=()

cleanup() {
    local p
    for p in "${STARTED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${STARTED_PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
    if [ "$KEEP" = yes ]; then say "bench: work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

port_busy() {
    [ -n "$(ss -Hlnu "sport = :$1")" ] || [ -n "$(ss -Hlnt "sport = :$1")" ]
}
TAKEN=" "
free_port() {
    local p=$((26060 + RANDOM % 900)) _
    for _ in $(seq 1 1000); do
        p=$((p + 1))
        [ $p -le 26999 ] || p=26060
        case $TAKEN in *" $p "*) continue ;; esac
        port_busy $p && continue
        TAKEN="$TAKEN$p "
        echo $p
        return
    done
    die "no free port in 26060-26999"
}

# all pids of the process tree under $1 (Kamailio forks its workers at start)
proc_tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            q[1] = root; n = 1; out = root
            for (i = 1; i <= n; i++) {
                m = split(kids[q[i]], k, " ")
                for (j = 1; j <= m; j++) { q[++n] = k[j]; out = out " " k[j] }
            }
            print out
        }'
}

# utime+stime ticks summed over the given pids (threads included)
cpu_ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo $t
}

# sum of a /proc/PID/status (VmHWM, VmRSS) or smaps_rollup (Pss) field, in KiB
mem_kb() {
    local field=$1 file=$2 p t=0 v
    shift 2
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/$file" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo $t
}

# value of a column of the last row of a sipp -trace_stat file
sipp_stat() {
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NF > 1 { last = $c }
        END { if (!c) exit 1; print last + 0 }' "$1"
}

now() { date +%s.%N; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b == 0) print "-"; else printf f, a / b }'; }

# ------------------------------------------------------------------ servers

render() {
    sed -e "s|@PORT@|$2|g" -e "s|@ROUTE@|$3|g" -e "s|@WORKERS@|$WORKERS|g" "$1"
}

start_server() {
    local s=$1 dir=$WORK/$1
    mkdir -p "$dir"
    [ -n "${PORT[$s]:-}" ] || PORT[$s]=$(free_port)
    [ -n "${UAS_PORT[$s]:-}" ] || UAS_PORT[$s]=$(free_port)
    local route="sip:127.0.0.1:${UAS_PORT[$s]};transport=udp"
    local -a argv
    if [ "$s" = kamailio ]; then
        render "$BENCH/kamailio.cfg.in" "${PORT[$s]}" "$route" >"$dir/kamailio.cfg"
        kamailio -c -f "$dir/kamailio.cfg" >"$dir/check.out" 2>&1 || die "kamailio rejected its config: $(tail -3 "$dir/check.out")"
        mkdir -p "$dir/run"
        argv=(kamailio -f "$dir/kamailio.cfg" -DD -E -m 1024 -M 64 -Y "$dir/run" -P "$dir/run/pid")
    else
        render "$BENCH/imscloud.conf.in" "${PORT[$s]}" "$route" >"$dir/imscloud.conf"
        "$IMS_BIN" -c "$dir/imscloud.conf" --check-config >"$dir/check.out" 2>&1 || die "imscloud rejected its config: $(cat "$dir/check.out")"
        argv=("$IMS_BIN" -c "$dir/imscloud.conf")
    fi
    setsid "${argv[@]}" </dev/null >>"$dir/server.log" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    MAIN[$s]=$pid
    local _
    for _ in $(seq 1 100); do
        [ -n "$(ss -Hlnu "sport = :${PORT[$s]}")" ] && break
        kill -0 "$pid" 2>/dev/null || die "$s exited at start: $(tail -5 "$dir/server.log")"
        sleep 0.1
    done
    [ -n "$(ss -Hlnu "sport = :${PORT[$s]}")" ] || die "$s does not listen on ${PORT[$s]}"
    sleep 0.5 # let Kamailio fork all its workers
    PIDS[$s]=$(proc_tree "$pid")
    say "bench: $s pid $pid (processes: ${PIDS[$s]}) on udp 127.0.0.1:${PORT[$s]}, route -> $route"
}

# SIGTERM to the server we started (SIGKILL to its process group after 10 s).
stop_server() {
    local s=$1 pid=${MAIN[$1]} _
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------ one measurement

# run_step SERVER KIND RATE: one STEP-second sipp run; sets PASS and the R_* results
run_step() {
    local s=$1 kind=$2 rate=$3 dir=$WORK/$1/$2-$3
    mkdir -p "$dir"
    local n=$((rate * STEP)) lim scen rc=0 k=1
    if [ "$kind" = options ]; then
        scen=$BENCH/sipp/options.xml
        k=$UACS
    else
        scen=$BENCH/sipp/uac.xml
    fi
    local c0 c1 t0 t1 u0=0 u1=0 i
    # shellcheck disable=SC2086 # a list of pids
    c0=$(cpu_ticks ${PIDS[$s]})
    [ -z "$UAS_PID" ] || u0=$(cpu_ticks "$UAS_PID")
    t0=$(now)
    # k sipp processes, each with rate/k and n/k calls (the remainder on the first)
    local -a uac_pids=()
    for i in $(seq 1 "$k"); do
        local r=$((rate / k)) m=$((n / k))
        [ "$i" != 1 ] || { r=$((r + rate % k)); m=$((m + n % k)); }
        if [ "$kind" = options ]; then lim=$r; else lim=$((r * 2)); fi
        mkdir -p "$dir/u$i"
        (
            cd "$dir/u$i"
            rc=0
            sipp "127.0.0.1:${PORT[$s]}" -i 127.0.0.1 -t u1 -sf "$scen" -r "$r" -rp 1000 -m "$m" \
                -l "$lim" -nostdin -buff_size "$SIPP_BUF" -trace_stat -stf stat.csv -fd 1 -recv_timeout 8000 \
                -trace_err -error_file errors.log \
                -timeout $((STEP * 2 + 15))s -timeout_error >sipp.out 2>&1 || rc=$?
            times >times.out
            exit $rc
        ) &
        uac_pids+=($!)
    done
    for i in "${uac_pids[@]}"; do
        wait "$i" || rc=$?
    done
    t1=$(now)
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${PIDS[$s]})
    [ -z "$UAS_PID" ] || u1=$(cpu_ticks "$UAS_PID")
    local ok=0 fail=0 retr=0 wall=0 sipp_cpu=0 v w
    for i in $(seq 1 "$k"); do
        local f=$dir/u$i/stat.csv
        v=$(sipp_stat "$f" 'SuccessfulCall(C)' 2>/dev/null || echo 0); ok=$((ok + v))
        v=$(sipp_stat "$f" 'FailedCall(C)' 2>/dev/null || echo 0); fail=$((fail + v))
        v=$(sipp_stat "$f" 'Retransmissions(C)' 2>/dev/null || echo 0); retr=$((retr + v))
        # sipp's own run time (first call created to last one ended; epoch seconds are
        # the last tab-separated part of StartTime and CurrentTime): the longest counts
        w=$(awk -F';' 'END { n = split($1, a, "\t"); m = split($3, b, "\t"); if (n && m && b[m] > a[n]) printf "%.3f", b[m] - a[n] }' "$f" 2>/dev/null || true)
        [ -n "$w" ] || w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        wall=$(awk -v a="$wall" -v b="$w" 'BEGIN { print (b > a) ? b : a }')
        # children's user+sys of the subshell = that sipp's CPU seconds
        v=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } print t }' "$dir/u$i/times.out" 2>/dev/null || echo 0)
        sipp_cpu=$(awk -v a="$sipp_cpu" -v b="${v:-0}" 'BEGIN { print a + b }')
    done
    R_ACHIEVED=$(fdiv "$ok" "$wall" "%.0f")
    R_CPU_US=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$ok" 'BEGIN { if (n == 0) print "-"; else printf "%.1f", c / hz * 1e6 / n }')
    R_SERVER_CPU=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
    R_SIPP_CPU=$(awk -v c="$sipp_cpu" -v w="$wall" 'BEGIN { printf "%.0f", c / w * 100 }')
    R_UAS_CPU=-
    [ -z "$UAS_PID" ] || R_UAS_CPU=$(awk -v c=$((u1 - u0)) -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
    R_RETRANS=$retr
    PASS=no
    if [ "$rc" = 0 ] && [ "$fail" = 0 ] && [ "$ok" = "$n" ] &&
        awk -v a="$R_ACHIEVED" -v r="$rate" 'BEGIN { exit !(a >= 0.9 * r) }'; then
        PASS=yes
    fi
    say "$(printf 'bench: %-8s %-7s rate %6d/s: %-4s ok %7d failed %5d retrans %6d achieved %6s/s  server CPU %4s%% (%s us/op)  sipp UAC CPU %3s%%%s' \
        "$s" "$kind" "$rate" "$PASS" "$ok" "$fail" "$retr" "$R_ACHIEVED" "$R_SERVER_CPU" "$R_CPU_US" "$R_SIPP_CPU" \
        "$([ -z "$UAS_PID" ] || printf ', UAS %s%%' "$R_UAS_CPU")")"
    if [ $PASS = yes ]; then
        # memory now: peak (VmHWM, since the server started) and current PSS
        # shellcheck disable=SC2086
        set -- ${PIDS[$s]}
        R_NPROC=$#
        R_THREADS=$(mem_kb Threads status "$@")
        R_HWM=$(mem_kb VmHWM status "$@")
        R_PSS=$(mem_kb Pss smaps_rollup "$@")
        settle "$s"
    else
        # An overloaded server keeps the leftovers (retransmissions, transactions that
        # RFC 3261 keeps for 32 s) for a while; a fresh one keeps the next run independent.
        say "bench: restarting $s after the overloaded run"
        stop_server "$s"
        start_server "$s"
    fi
}

# Waits until the server is idle again (under 5% of a core over half a second, at most
# 40 s): after an overloaded run it may still be retransmitting, which would spoil the
# next run.
settle() {
    local s=$1 a b _
    sleep 1
    for _ in $(seq 1 80); do
        # shellcheck disable=SC2086
        a=$(cpu_ticks ${PIDS[$s]})
        sleep 0.5
        # shellcheck disable=SC2086
        b=$(cpu_ticks ${PIDS[$s]})
        [ $(((b - a) * 100 / HZ)) -ge 3 ] || return 0
    done
    say "bench: $s still busy 40 s after the run"
}

# search SERVER KIND START CAP: the highest passing rate; sets BEST_* (rate 0 if none)
search() {
    local s=$1 kind=$2 rate=$3 cap=$4 good=0 bad=0 steps=0
    BEST_RATE=0 BEST_CPU=- BEST_SCPU=- BEST_SIPP=- BEST_RETR=- BEST_UAS=-
    BEST_NPROC=- BEST_THREADS=- BEST_HWM=- BEST_PSS=-
    while [ $steps -lt $MAX_STEPS ]; do
        steps=$((steps + 1))
        run_step "$s" "$kind" "$rate"
        if [ $PASS = yes ]; then
            good=$rate
            BEST_RATE=$rate BEST_CPU=$R_CPU_US BEST_SCPU=$R_SERVER_CPU
            BEST_SIPP=$R_SIPP_CPU BEST_RETR=$R_RETRANS BEST_UAS=$R_UAS_CPU
            BEST_NPROC=$R_NPROC BEST_THREADS=$R_THREADS BEST_HWM=$R_HWM BEST_PSS=$R_PSS
        else
            bad=$rate
        fi
        if [ $bad = 0 ]; then
            [ $((rate * 2)) -le "$cap" ] || break
            rate=$((rate * 2))
        elif [ $good = 0 ]; then
            rate=$((rate / 2))
            [ $rate -ge 10 ] || break
        else
            # within 10% of the boundary: done
            [ $((bad - good)) -gt $((good / 10)) ] || break
            rate=$(((good + bad) / 2))
        fi
    done
}

declare -A RES
UAS_PID=
measure() {
    local s=$1
    say "bench: ---- $s: OPTIONS -> 200 (stateless)"
    UAS_PID=
    search "$s" options 4000 256000
    RES[$s,opt_rate]=$BEST_RATE RES[$s,opt_cpu]=$BEST_CPU RES[$s,opt_scpu]=$BEST_SCPU
    RES[$s,opt_sipp]=$BEST_SIPP RES[$s,opt_retr]=$BEST_RETR

    say "bench: ---- $s: calls through the proxy (stateful, record-routed)"
    local dir=$WORK/$s/uas
    mkdir -p "$dir"
    # -default_behaviors all,-bye: a UAS call aborted by a reordered ACK sends no BYE
    (cd "$dir" && exec sipp -sf "$BENCH/sipp/uas.xml" -i 127.0.0.1 -p "${UAS_PORT[$s]}" -t u1 -nostdin -buff_size "$SIPP_BUF" \
        -default_behaviors all,-bye -trace_stat -stf stat.csv -fd 1 >sipp.out 2>&1) &
    local uas=$!
    STARTED_PIDS+=("$uas")
    UAS_PID=$uas
    local _
    for _ in $(seq 1 50); do
        [ -n "$(ss -Hlnu "sport = :${UAS_PORT[$s]}")" ] && break
        sleep 0.1
    done
    search "$s" calls 500 16000
    UAS_PID=
    kill -TERM $uas 2>/dev/null || true
    wait $uas 2>/dev/null || true
    RES[$s,call_rate]=$BEST_RATE RES[$s,call_cpu]=$BEST_CPU RES[$s,call_scpu]=$BEST_SCPU
    RES[$s,call_sipp]=$BEST_SIPP RES[$s,call_retr]=$BEST_RETR RES[$s,call_uas]=$BEST_UAS
    # memory right after the run at the best call rate
    RES[$s,nproc]=$BEST_NPROC RES[$s,threads]=$BEST_THREADS
    RES[$s,hwm]=$BEST_HWM RES[$s,pss]=$BEST_PSS
}

# ------------------------------------------------------------------ run

say "bench: work dir $WORK, $STEP s per step, $WORKERS workers, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
for s in "${SERVERS[@]}"; do start_server "$s"; done
for s in "${SERVERS[@]}"; do measure "$s"; done
T_END=$(date +%s)

# ------------------------------------------------------------------ report

val() { if [ -n "${RES[$1,$2]+x}" ]; then echo "${RES[$1,$2]}"; else echo -; fi; }
mib() { if [ "$1" = - ]; then echo -; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi; }
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
ratio() {
    if isnum "$1" && isnum "$2" && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo -
    fi
}
row() { # label kamailio imscloud
    printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"
}
table() {
    echo '| metric | Kamailio 5.6 | imscloud | imscloud / Kamailio |'
    echo '|---|---:|---:|---:|'
    row 'OPTIONS→200, max rate at 0 failed (/s)' "$(val kamailio opt_rate)" "$(val imscloud opt_rate)"
    row 'OPTIONS: server CPU per request (µs)' "$(val kamailio opt_cpu)" "$(val imscloud opt_cpu)"
    row 'OPTIONS: server CPU at that rate (% of one core)' "$(val kamailio opt_scpu)" "$(val imscloud opt_scpu)"
    row 'OPTIONS: sipp UAC CPU at that rate (% of one core)' "$(val kamailio opt_sipp)" "$(val imscloud opt_sipp)"
    row 'calls, max rate at 0 failed (calls/s)' "$(val kamailio call_rate)" "$(val imscloud call_rate)"
    row 'calls: server CPU per call (µs)' "$(val kamailio call_cpu)" "$(val imscloud call_cpu)"
    row 'calls: server CPU at that rate (% of one core)' "$(val kamailio call_scpu)" "$(val imscloud call_scpu)"
    row 'calls: sipp UAC CPU at that rate (% of one core)' "$(val kamailio call_sipp)" "$(val imscloud call_sipp)"
    row 'calls: sipp UAS CPU at that rate (% of one core)' "$(val kamailio call_uas)" "$(val imscloud call_uas)"
    row 'calls: peak RSS, VmHWM summed over processes (MiB)' "$(mib "$(val kamailio hwm)")" "$(mib "$(val imscloud hwm)")"
    row 'calls: PSS after the run, summed (MiB)' "$(mib "$(val kamailio pss)")" "$(mib "$(val imscloud pss)")"
    row 'processes / threads' "$(val kamailio nproc) / $(val kamailio threads)" "$(val imscloud nproc) / $(val imscloud threads)"
}

echo
table
echo

if [ -n "$RESULTS" ]; then
    # bench/hss, bench/ims and bench/keystone/run.sh keep their own sections between these
    # markers: carried over as they are
    HSS_SECTION=
    if [ -f "$RESULTS" ]; then
        HSS_SECTION=$(sed -n -e '/^<!-- hss-bench:begin -->$/,/^<!-- hss-bench:end -->$/p' \
            -e '/^<!-- ims-bench:begin -->$/,/^<!-- ims-bench:end -->$/p' \
            -e '/^<!-- keystone-bench:begin -->$/,/^<!-- keystone-bench:end -->$/p' "$RESULTS")
    fi
    {
        echo '# Benchmark results: imscloud vs Kamailio 5.6'
        echo
        echo "Written by \`bench/run.sh\` (overwritten by every run; method in [README.md](README.md))."
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- command: \`$CMDLINE\` (${STEP} s per step, $((T_END - T_START)) s in all)"
        echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average at start $LOAD_START"
        echo "- servers: $WORKERS workers each; Kamailio $(kamailio -v 2>/dev/null | awk '/^version:/ { print $3; exit }') \`-m 1024 -M 64\`, children=$WORKERS, tm rr sl maxfwd textops, no DB; imscloud ${IMS_BIN#"$ROOT"/} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
        echo "- load: $(sipp -v 2>/dev/null | awk '/SIPp v/ { print $1, $2; exit }') over UDP on 127.0.0.1, $UACS sipp UACs sharing each OPTIONS rate, one UAC and one UAS for calls, all on the same cores"
        [ "$ONLY" = both ] || echo "- only $ONLY was measured (--only $ONLY)"
        echo
        table
        echo
        echo 'Notes:'
        echo
        echo '- "max rate" is the highest sipp rate, found by doubling then bisecting to within 10%, at which a run had zero failed calls, every call completed and sipp held at least 90% of the rate. When sipp'"'"'s own CPU is near 100% the load generator, not the server, was the limit: compare CPU per operation then.'
        echo '- CPU per operation = (utime + stime of all server processes during the run) / successful operations, at the max rate.'
        echo '- Memory, taken right after the run at the best call rate: VmHWM (peak RSS since the server started) summed over processes counts Kamailio'"'"'s shared memory (a shared mapping) once per process that touched it, so it overstates Kamailio; PSS splits shared pages between the processes but is the size at that moment, not the peak. imscloud is one process, so its VmHWM is its peak RSS.'
        echo '- After a failed (overloaded) run the server is restarted, so that leftovers (retransmissions, transactions RFC 3261 keeps for 32 s) do not spoil the next run.'
        echo '- Everything shares 2 cores (server workers, sipp UAC, sipp UAS) with whatever else ran on the machine: numbers are noisy and relative.'
        if [ -n "$HSS_SECTION" ]; then
            echo
            printf '%s\n' "$HSS_SECTION"
        fi
    } >"$RESULTS"
    say "bench: wrote ${RESULTS#"$ROOT"/}"
fi
