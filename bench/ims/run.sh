#!/usr/bin/env bash
# bench/ims/run.sh - full IMS registrations and IMS calls, imscloud (P-, I- and S-CSCF
# and the HSS in one process) vs Kamailio 5.6 as a plain Digest registrar and
# record-routing proxy, side by side on loopback, driven by sipp. Builds only the seeder
# (bench/hss, against the library of the imscloud given); never run by CTest. See
# bench/README.md ("IMS registrations and calls").
#
#   bench/ims/run.sh [--imscloud PATH] [--only imscloud|kamailio] [--subs N] [--pool N]
#                    [--step S] [--fill-rate R] [--wait S] [--uacs N] [--workers N]
#                    [--no-calls] [--results FILE | --no-results] [--keep]
#   bench/ims/run.sh --instructions [N] [--imscloud PATH] [--only ...] [--results FILE | --no-results]
#   bench/ims/run.sh --storm [RATE] [--storm-seconds S] [--rounds N] [--imscloud PATH] [--only ...]
#                    [--results FILE | --no-results]
#   bench/ims/run.sh --hops [--imscloud PATH] [--pool N] [--step S] [--results FILE | --no-results]
#
# Users u0000000.. in realm ims.bench, password pw-<i> (bench/hss/hss_bench.h): imscloud's
# HSS store seeded by hss_bench_seed (Digest HA1s, one IMPU each, all on the one S-CSCF),
# Kamailio's subscriber table (SQLite, plain-text passwords) with the same names. Both
# servers run all along; the rate searches (1 and 3) take turns, a step of each in turn,
# so that both see the same shared machine; the rest runs one server after the other:
#  1. registrations/s: REGISTER/401/REGISTER/200 (imscloud: through P, I and S with UAR,
#     MAR and SAR), sipp with MD5 Digest, one user per call from an injection file, every
#     call an initial registration of a user not registered before (the --pool users);
#     the rate doubles from 500/s while a --step seconds run passes, then bisects to 10%;
#  2. memory per registered contact: after --wait seconds (transactions and nonces gone)
#     the server's memory, then the --subs users registered at --fill-rate (sipp -t un:
#     every UE its own UDP flow, from its own port), --wait seconds, memory again:
#     (after - before) / registered;
#  3. re-registrations/s: the same search over the --subs users registered in 2 (each
#     REGISTER/401/REGISTER/200 of a user registered already, from a new UDP flow:
#     imscloud's SAR is a RE_REGISTRATION);
#  4. calls/s A -> B between two registered users (UAC and UAS registered from their
#     sockets first), INVITE/180/200/ACK/BYE/200, record-routed, the same search (--no-calls
#     skips it; it is skipped for a server whose first test call fails).
# CPU per operation is utime+stime (/proc/PID/stat) of every server process over the run.
# Writes its section of bench/RESULTS.md between <!-- ims-bench:begin --> and
# <!-- ims-bench:end -->; the rest of the file is left as it is.
#
# --storm [RATE] (RATE = 10000) offers both servers instead a registration storm: RATE
# initial registrations/s for --storm-seconds (15), taking turns, --rounds (2) times each,
# from UEs that back off on a 503 (sipp/register_storm.xml: a 503 ends the attempt, as a
# UE waits for its Retry-After), and counts what each completes (per second too), how
# many REGISTERs were retransmitted and how many were refused at the first and at the
# second REGISTER (the second wastes the round paid for). Its section of bench/RESULTS.md
# is <!-- ims-storm:begin --> .. <!-- ims-storm:end -->.
#
# --hops runs only the registration search (1), with two more servers taking turns:
# imscloud with only the S-CSCF and HSS roles (`roles = scscf,hss`), registered at
# directly, the one hop Kamailio is, and imscloud without the P-CSCF (`roles =
# icscf,scscf,hss`), registered at through its I-CSCF, each with a store seeded of its
# own: what each hop of the full path costs over Kamailio's one. Its section of
# bench/RESULTS.md is <!-- ims-hops:begin --> .. <!-- ims-hops:end -->.
#
# --instructions [N] (N = 2000) runs instead both servers under valgrind's callgrind and
# counts the user-space instructions they execute for N initial registrations at 50/s
# (after N/2 to warm up), summed over their processes and threads, and what executed
# most: a count that hardly depends on what else the machine runs (about 1% between
# runs of one build), for comparing two builds or the two servers' code paths. It
# leaves out what the CPU time includes: the kernel (sockets, fsync), cache misses and
# lock waits. Its section of bench/RESULTS.md is <!-- ims-instr:begin --> ..
# <!-- ims-instr:end -->.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/ims
IMS_BIN=$ROOT/build-rel/imscloud
ONLY=both
SUBS=100000
POOL=400000 # the search's steps, failed ones too, must not use it up: a wrapped step re-registers
STEP=5
FILL_RATE=2000
WAIT=65
UACS=2
WORKERS=$(nproc)
CALLS=yes
RESULTS=$ROOT/bench/RESULTS.md
KEEP=no
# Kamailio's shared memory (-m, MiB): its contacts and transactions live there.
# With 1 GiB, the ~800 000 contacts a whole run leaves (searches, fill and
# re-registrations, Expires 3600) filled it before the calls, whose steps then
# failed on "could not allocate shared memory" with its server at 14-35% of a
# core (2026-12-03; bench/README.md).
KAM_SHM_MB=4096
INSTR=0 # --instructions: registrations counted under callgrind (0: the CPU-time run)
INSTR_RATE=50
STORM=0 # --storm: the offered rate (0: not a storm run)
HOPS=no # --hops: kamailio, imscloud, icscf and scscf (imscloud from its I- or S-CSCF), registrations only
STORM_S=15
ROUNDS=2
MAX_STEPS=9
REALM=ims.bench
EXPIRES=3600
SIPP_BUF=4194304
CMDLINE="bench/ims/run.sh${*:+ $*}"

usage() {
    sed -n '8,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --imscloud) IMS_BIN=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --subs) SUBS=${2:?}; shift 2 ;;
    --pool) POOL=${2:?}; shift 2 ;;
    --step) STEP=${2:?}; shift 2 ;;
    --fill-rate) FILL_RATE=${2:?}; shift 2 ;;
    --wait) WAIT=${2:?}; shift 2 ;;
    --uacs) UACS=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --no-calls) CALLS=no; shift ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --no-results) RESULTS=; shift ;;
    --keep) KEEP=yes; shift ;;
    --instructions)
        INSTR=2000
        if [[ ${2:-} =~ ^[0-9]+$ ]]; then INSTR=$2; shift; fi
        shift
        ;;
    --storm)
        STORM=10000
        if [[ ${2:-} =~ ^[0-9]+$ ]]; then STORM=$2; shift; fi
        shift
        ;;
    --storm-seconds) STORM_S=${2:?}; shift 2 ;;
    --hops) HOPS=yes; shift ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
    esac
done
case $ONLY in both | imscloud | kamailio) ;; *) usage ;; esac
for v in SUBS POOL STEP FILL_RATE WAIT UACS WORKERS STORM_S ROUNDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "bad --${v,,}: ${!v}" >&2; usage; }
done
SERVERS=()
[ "$ONLY" = imscloud ] || SERVERS+=(kamailio)
[ "$ONLY" = kamailio ] || SERVERS+=(imscloud)
if [ "$HOPS" = yes ]; then
    [ "$INSTR" = 0 ] && [ "$STORM" = 0 ] && [ "$ONLY" = both ] || { echo "--hops runs alone, with both servers" >&2; usage; }
    SERVERS+=(icscf scscf)
    CALLS=no
fi
# the two users of the calls, after the pool
TOTAL=$((SUBS + POOL + 2))
# imscloud's P-CSCF flow and S-CSCF registration caps: every registration of the search
# and the fill comes from a flow of its own, and a re-run of a user from a new port is
# a new flow until the old one expires
MAX_UES=$((TOTAL * 4))
# the HSS identity cache sized for the seeded subscribers as docs/config.md
# asks of an operator (three entries each: IMPI row, link, IMPU row), to a
# power of two: with the default 262 144 most users of the search were in
# no preload and missed it twice per registration
CACHE_ENTRIES=1
while [ "$CACHE_ENTRIES" -lt $((TOTAL * 3)) ]; do CACHE_ENTRIES=$((CACHE_ENTRIES * 2)); done
CALLER=$((SUBS + POOL))
CALLEE=$((SUBS + POOL + 1))

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench-ims: $*"
    exit 1
}
for t in sipp awk ss setsid cmake sqlite3 kamailio kamcmd; do
    command -v $t >/dev/null || die "missing '$t' (tools/install-deps.sh bench; sqlite3)"
done
[ "$INSTR" = 0 ] || [ "$STORM" = 0 ] || die "--instructions and --storm are separate runs"
[ "$STORM" = 0 ] || [ $((STORM * STORM_S * ROUNDS)) -le "$POOL" ] ||
    die "--pool $POOL is too small for $ROUNDS storms of $STORM/s over $STORM_S s"
if [ "$INSTR" != 0 ]; then
    [ "$INSTR" -ge 2 ] || die "--instructions: at least 2 registrations"
    for t in valgrind callgrind_control; do
        command -v $t >/dev/null || die "missing '$t' (apt-get install valgrind)"
    done
fi
IMS_BIN=$(cd "$(dirname "$IMS_BIN")" && pwd)/$(basename "$IMS_BIN")
[ -x "$IMS_BIN" ] || die "no imscloud at $IMS_BIN (cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rel -j2 --target imscloud, or --imscloud PATH)"
BUILD=$(dirname "$IMS_BIN")
[ -f "$BUILD/libimscore.a" ] || die "no libimscore.a next to $IMS_BIN (the seeder links the same library)"

# the seeder, against the same libimscore.a as the server (what bench/hss/run.sh does)
TOOLS=$BUILD/bench-hss
if [ ! -f "$TOOLS/CMakeCache.txt" ]; then
    cmake -S "$ROOT/bench/hss" -B "$TOOLS" -DIMS_BUILD_DIR="$BUILD" >"${TMPDIR:-/tmp}/ims-bench-cmake.log" 2>&1 ||
        die "cmake of bench/hss failed: $(tail -5 "${TMPDIR:-/tmp}/ims-bench-cmake.log")"
fi
cmake --build "$TOOLS" -j2 --target hss_bench_seed >"${TMPDIR:-/tmp}/ims-bench-build.log" 2>&1 ||
    die "building bench/hss failed: $(tail -20 "${TMPDIR:-/tmp}/ims-bench-build.log")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imscloud-ims-bench.XXXXXX")
HZ=$(getconf CLK_TCK)
declare -A PORT MAIN PIDS RES
STARTED_PIDS=()
cleanup() {
    local p
    for p in "${STARTED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ "$INSTR" = 0 ]; then sleep 0.5; else sleep 5; fi # valgrind writes its last counts
    for p in "${STARTED_PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
    if [ "$KEEP" = yes ]; then say "bench-ims: work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

port_busy() { [ -n "$(ss -Hlnu "sport = :$1")" ] || [ -n "$(ss -Hlnt "sport = :$1")" ]; }
TAKEN=" "
free_port() {
    local p=$((25060 + RANDOM % 900)) _
    for _ in $(seq 1 1000); do
        p=$((p + 1))
        [ $p -le 25999 ] || p=25060
        case $TAKEN in *" $p "*) continue ;; esac
        port_busy $p && continue
        TAKEN="$TAKEN$p "
        echo $p
        return
    done
    die "no free port in 25060-25999"
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
cpu_ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo $t
}
# sum of a /proc/PID/status or smaps_rollup field over the pids, in KiB
mem_kb() {
    local field=$1 file=$2 p t=0 v
    shift 2
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/$file" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo $t
}
sipp_stat() {
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NF > 1 { last = $c }
        END { if (!c) exit 1; print last + 0 }' "$1"
}
now() { date +%s.%N; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b == 0) print "-"; else printf f, a / b }'; }
# a source address per sipp process: 127.x.y.z, so that UEs of different runs never
# share a flow (address and port) by chance
IPSEQ=0
next_ip() {
    IPSEQ=$((IPSEQ + 1))
    echo "127.$((2 + IPSEQ / 62500)).$(((IPSEQ / 250) % 250 + 1)).$((IPSEQ % 250 + 1))"
}
# users FIRST COUNT SERVER: an injection file (imscloud authenticates the IMPI
# u<i>@realm, Kamailio the username u<i>)
users() {
    awk -v first="$1" -v n="$2" -v s="$3" -v realm="$REALM" 'BEGIN {
        print "SEQUENTIAL"
        for (i = first; i < first + n; i++) {
            u = sprintf("u%07d", i)
            a = s != "kamailio" ? u "@" realm : u
            printf "%s;%s;[authentication username=%s password=pw-%d]\n", u, a, a, i
        }
    }'
}

# ------------------------------------------------------------------ servers

seed() {
    local t0
    t0=$(now)
    mkdir -m 700 -p "$WORK/imscloud/var"
    PORT[imscloud]=$(free_port)
    PORT[imscloud_i]=$(free_port)
    PORT[imscloud_s]=$(free_port)
    PORT[imscloud_dia]=$(free_port)
    PORT[kamailio]=$(free_port)
    if [ "$ONLY" != kamailio ]; then
        "$TOOLS/hss_bench_seed" seed -n -s "sip:127.0.0.1:${PORT[imscloud_s]}" \
            "sqlite:$WORK/imscloud/var/hss.db" "$WORK/imscloud/var/keys" "$TOTAL" \
            >"$WORK/seed.log" 2>&1 || die "seeding failed: $(tail -5 "$WORK/seed.log")"
    fi
    if [ "$HOPS" = yes ]; then
        seed_part icscf icscf,scscf,hss i
        seed_part scscf scscf,hss s
    fi
    if [ "$ONLY" != imscloud ]; then
        mkdir -p "$WORK/kamailio/run"
        # the schema auth_db checks (subscriber version 7), passwords in clear
        sqlite3 "$WORK/kamailio/kam.db" "
            CREATE TABLE version (table_name VARCHAR(32) NOT NULL,
                table_version INTEGER DEFAULT 0 NOT NULL,
                CONSTRAINT version_t_name_idx UNIQUE (table_name));
            INSERT INTO version VALUES ('subscriber', 7);
            CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL,
                username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL,
                password VARCHAR(64) DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL,
                ha1b VARCHAR(128) DEFAULT '' NOT NULL,
                CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
            CREATE INDEX subscriber_username_idx ON subscriber (username);
            INSERT INTO subscriber (username, domain, password)
                WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $TOTAL - 1)
                SELECT printf('u%07d', i), '$REALM', 'pw-' || i FROM c;" ||
            die "cannot create Kamailio's subscriber table"
    fi
    SEED_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    say "bench-ims: $TOTAL users seeded in $SEED_S s"
}

# seed_part NAME ROLES ENTRY (--hops): an imscloud with only ROLES, its own ports (those
# of the template's roles it lacks are bound, and nothing reads them) and its own store,
# whose users are assigned to its own S-CSCF; sipp sends to its ENTRY (i or s) port.
declare -A PART_ROLES
seed_part() {
    local s=$1
    mkdir -m 700 -p "$WORK/$s/var"
    PORT[${s}_p]=$(free_port)
    PORT[${s}_i]=$(free_port)
    PORT[${s}_s]=$(free_port)
    PORT[${s}_dia]=$(free_port)
    PORT[$s]=${PORT[${s}_$3]}
    PART_ROLES[$s]=$2
    "$TOOLS/hss_bench_seed" seed -n -s "sip:127.0.0.1:${PORT[${s}_s]}" \
        "sqlite:$WORK/$s/var/hss.db" "$WORK/$s/var/keys" "$TOTAL" \
        >"$WORK/seed-$s.log" 2>&1 || die "seeding failed: $(tail -5 "$WORK/seed-$s.log")"
}

start_server() {
    local s=$1 dir=$WORK/$1 pid _
    local -a argv
    if [ "$s" = kamailio ]; then
        sed -e "s|@PORT@|${PORT[kamailio]}|g" -e "s|@WORKERS@|$WORKERS|g" -e "s|@REALM@|$REALM|g" \
            -e "s|@DB@|$dir/kam.db|g" -e "s|@CTL@|$dir/run/ctl.sock|g" \
            "$HERE/kamailio.cfg.in" >"$dir/kamailio.cfg"
        kamailio -c -f "$dir/kamailio.cfg" >"$dir/check.out" 2>&1 || die "kamailio rejected its config: $(tail -3 "$dir/check.out")"
        argv=(kamailio -f "$dir/kamailio.cfg" -DD -E -m "$KAM_SHM_MB" -M 64 -Y "$dir/run" -P "$dir/run/pid")
    else
        local p_port i_port s_port dia_port roles
        if [ -n "${PART_ROLES[$s]:-}" ]; then
            p_port=${PORT[${s}_p]} i_port=${PORT[${s}_i]} s_port=${PORT[${s}_s]}
            dia_port=${PORT[${s}_dia]} roles=${PART_ROLES[$s]}
        else
            p_port=${PORT[imscloud]} i_port=${PORT[imscloud_i]} s_port=${PORT[imscloud_s]}
            dia_port=${PORT[imscloud_dia]} roles=pcscf,icscf,scscf,hss
        fi
        sed -e "s|@P_PORT@|$p_port|g" -e "s|@I_PORT@|$i_port|g" -e "s|@S_PORT@|$s_port|g" \
            -e "s|@DIA_PORT@|$dia_port|g" -e "s|^roles = .*|roles = $roles|" \
            -e "s|@WORKERS@|$WORKERS|g" -e "s|@STATE@|$dir/var|g" -e "s|@MAX@|$MAX_UES|g" \
            -e "s|@CACHE@|$CACHE_ENTRIES|g" "$HERE/imscloud.conf.in" >"$dir/imscloud.conf"
        "$IMS_BIN" -c "$dir/imscloud.conf" --check-config >"$dir/check.out" 2>&1 || die "imscloud rejected its config: $(cat "$dir/check.out")"
        argv=("$IMS_BIN" -c "$dir/imscloud.conf")
    fi
    local waits=100
    if [ "$INSTR" != 0 ]; then
        # every process (Kamailio's forked workers too) writes its own counts
        argv=(valgrind --tool=callgrind --trace-children=yes --compress-strings=no --compress-pos=no
            "--callgrind-out-file=$dir/cg.%p" "${argv[@]}")
        waits=1200 # 50 times slower: imscloud's start reads its whole identity cache
    fi
    setsid "${argv[@]}" </dev/null >>"$dir/server.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    MAIN[$s]=$pid
    for _ in $(seq 1 $waits); do
        [ -n "$(ss -Hlnu "sport = :${PORT[$s]}")" ] && break
        kill -0 "$pid" 2>/dev/null || die "$s exited at start: $(tail -5 "$dir/server.log")"
        sleep 0.1
    done
    [ -n "$(ss -Hlnu "sport = :${PORT[$s]}")" ] || die "$s does not listen on ${PORT[$s]}"
    # Kamailio forks its workers; imscloud's HSS opens its store
    if [ "$INSTR" = 0 ]; then sleep 1; else sleep 10; fi
    PIDS[$s]=$(proc_tree "$pid")
    say "bench-ims: $s pid $pid (processes: ${PIDS[$s]}) on udp 127.0.0.1:${PORT[$s]}"
}

alive() { kill -0 "${MAIN[$1]}" 2>/dev/null || die "$1 died: $(tail -5 "$WORK/$1/server.log")"; }

# Waits until the server is idle (under 3% of a core over half a second, at most 40 s).
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
    say "bench-ims: $s still busy 40 s after the run"
}

# memory of the server now: sets M_RSS M_PSS (KiB, summed over processes) and M_HEAP
# (KiB its allocator has handed out and not got back: Kamailio's shared memory in use,
# kamcmd core.shmmem real_used; imscloud's malloc in use, mallinfo2() uordblks + hblkhd
# called through gdb, a pause of well under a second; - when that is not possible)
memory() {
    local s=$1
    # shellcheck disable=SC2086
    set -- ${PIDS[$s]}
    M_RSS=$(mem_kb VmRSS status "$@")
    M_PSS=$(mem_kb Pss smaps_rollup "$@")
    M_HEAP=
    if [ "$s" = kamailio ]; then
        M_HEAP=$(kamcmd -s "unix:$WORK/kamailio/run/ctl.sock" core.shmmem 2>/dev/null |
            awk '$1 == "real_used:" { printf "%d", $2 / 1024 }')
    elif command -v gdb >/dev/null; then
        M_HEAP=$(timeout 60 gdb -p "${MAIN[$s]}" -batch -nx \
            -ex 'print (unsigned long) (mallinfo2().uordblks + mallinfo2().hblkhd)' 2>/dev/null |
            awk '/^\$1 = [0-9]+$/ { printf "%d", $3 / 1024 }')
    fi
    [ -n "$M_HEAP" ] || M_HEAP=-
}

# ------------------------------------------------------------------ one sipp batch

SCENARIO=register.xml
SIPP_EXTRA=
# batch SERVER NAME FIRST COUNT RATE: COUNT registrations of users FIRST.. at RATE/s,
# shared by UACS sipp processes, each with its own source address, one UDP socket (flow)
# per UE (-t un). Sets B_OK B_FAIL B_RETR B_WALL B_SIPP_CPU B_RC.
batch() {
    local s=$1 name=$2 first=$3 count=$4 rate=$5 dir=$WORK/$1/$2 i k=$UACS
    mkdir -p "$dir"
    [ "$count" -ge "$k" ] || k=1
    local -a pids=()
    for i in $(seq 1 "$k"); do
        local m=$((count / k)) r=$((rate / k)) f
        f=$((first + (i - 1) * m))
        [ "$i" != "$k" ] || m=$((count - (k - 1) * m))
        [ "$r" -ge 1 ] || r=1
        mkdir -p "$dir/u$i"
        users "$f" "$m" "$s" >"$dir/u$i/users.csv"
        local ip
        ip=$(next_ip)
        (
            cd "$dir/u$i"
            rc=0
            sipp "127.0.0.1:${PORT[$s]}" -sf "$HERE/sipp/$SCENARIO" -inf users.csv -i "$ip" -t un \
                -max_socket 10000 -key realm "$REALM" -key expires "$EXPIRES" -r "$r" -rp 1000 -m "$m" \
                -l "$((r * 2 + 10))" -nostdin -buff_size "$SIPP_BUF" -trace_stat -stf stat.csv -fd 1 \
                -recv_timeout 8000 -trace_err -error_file errors.log $SIPP_EXTRA \
                -timeout $((m / r + 30))s -timeout_error >sipp.out 2>&1 || rc=$?
            times >times.out
            exit $rc
        ) &
        pids+=($!)
    done
    B_RC=0
    for i in "${pids[@]}"; do wait "$i" || B_RC=$?; done
    B_OK=0 B_FAIL=0 B_RETR=0 B_WALL=0 B_SIPP_CPU=0
    local v w
    for i in $(seq 1 "$k"); do
        local f=$dir/u$i/stat.csv
        v=$(sipp_stat "$f" 'SuccessfulCall(C)' 2>/dev/null || echo 0); B_OK=$((B_OK + v))
        v=$(sipp_stat "$f" 'FailedCall(C)' 2>/dev/null || echo 0); B_FAIL=$((B_FAIL + v))
        v=$(sipp_stat "$f" 'Retransmissions(C)' 2>/dev/null || echo 0); B_RETR=$((B_RETR + v))
        # sipp's run time: first call started to last one ended
        w=$(awk -F';' 'END { n = split($1, a, "\t"); m = split($3, b, "\t"); if (n && m && b[m] > a[n]) printf "%.3f", b[m] - a[n] }' "$f" 2>/dev/null || true)
        B_WALL=$(awk -v a="$B_WALL" -v b="${w:-0}" 'BEGIN { print (b > a) ? b : a }')
        v=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } print t }' "$dir/u$i/times.out" 2>/dev/null || echo 0)
        B_SIPP_CPU=$(awk -v a="$B_SIPP_CPU" -v b="${v:-0}" 'BEGIN { print a + b }')
    done
}

# ------------------------------------------------------------------ rate search

# run_step SERVER KIND RATE: one STEP-second run (KIND reg: fresh pool users; rereg: the
# users the fill registered, in turn; calls: the registered caller to the registered
# callee). Sets PASS and R_*.
declare -A POOL_NEXT WRAPPED REREG_NEXT STEPS
run_step() {
    local s=$1 kind=$2 rate=$3 n=$(($3 * STEP)) c0 c1 t0 t1 u0=0 u1=0
    # shellcheck disable=SC2086
    c0=$(cpu_ticks ${PIDS[$s]})
    [ -z "$UAS_PID" ] || u0=$(cpu_ticks "$UAS_PID")
    t0=$(now)
    if [ "$kind" = reg ]; then
        [ "$n" -le "$POOL" ] || die "--pool $POOL is too small for $rate registrations/s over $STEP s"
        if [ $((POOL_NEXT[$s] + n)) -gt "$POOL" ]; then
            # the pool is used up: start over (these are re-registrations then,
            # not what this search measures: say so)
            echo "bench-ims: WARNING: $s: the pool of $POOL users is used up at $rate/s: this step re-registers users (use a larger --pool)" >&2
            WRAPPED[$s]=$((WRAPPED[$s] + n))
            POOL_NEXT[$s]=0
        fi
        batch "$s" "reg-$rate-$t0" $((SUBS + POOL_NEXT[$s])) "$n" "$rate"
        POOL_NEXT[$s]=$((POOL_NEXT[$s] + n))
    elif [ "$kind" = rereg ]; then
        [ "$n" -le "$SUBS" ] || die "--subs $SUBS is too small for $rate re-registrations/s over $STEP s"
        [ $((REREG_NEXT[$s] + n)) -le "$SUBS" ] || REREG_NEXT[$s]=0
        batch "$s" "rereg-$rate-$t0" "${REREG_NEXT[$s]}" "$n" "$rate"
        REREG_NEXT[$s]=$((REREG_NEXT[$s] + n))
    else
        call_batch "$s" "$rate" "$n"
    fi
    t1=$(now)
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${PIDS[$s]})
    [ -z "$UAS_PID" ] || u1=$(cpu_ticks "$UAS_PID")
    [ "$B_WALL" != 0 ] || B_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    R_ACHIEVED=$(fdiv "$B_OK" "$B_WALL" "%.0f")
    R_CPU_US=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$B_OK" 'BEGIN { if (n == 0) print "-"; else printf "%.1f", c / hz * 1e6 / n }')
    R_SCPU=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w="$B_WALL" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
    R_SIPP=$(awk -v c="$B_SIPP_CPU" -v w="$B_WALL" 'BEGIN { printf "%.0f", c / w * 100 }')
    R_UAS=-
    [ -z "$UAS_PID" ] || R_UAS=$(awk -v c=$((u1 - u0)) -v hz="$HZ" -v w="$B_WALL" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
    # A rate is kept up with when every attempt completed without a failure and
    # without a retransmission: sipp resends a request left unanswered for T1
    # (500 ms), so one retransmission means the server fell that far behind.
    # Allowing them let a server "pass" with a queue that grows for the whole
    # step (Kamailio at 11000/s: 88840 retransmissions in 110000 registrations,
    # all completed in the end).
    PASS=no
    if [ "$B_RC" = 0 ] && [ "$B_FAIL" = 0 ] && [ "$B_RETR" = 0 ] && [ "$B_OK" = "$n" ] &&
        awk -v a="$R_ACHIEVED" -v r="$rate" 'BEGIN { exit !(a >= 0.9 * r) }'; then
        PASS=yes
    fi
    STEPS[$s,$kind]="${STEPS[$s,$kind]:+${STEPS[$s,$kind]}, }$rate $PASS ($B_FAIL failed, $B_RETR retransmitted)"
    say "$(printf 'bench-ims: %-8s %-5s rate %6d/s: %-4s ok %7d failed %5d retrans %6d achieved %6s/s  server CPU %4s%% (%s us/op)  sipp CPU %3s%%%s' \
        "$s" "$kind" "$rate" "$PASS" "$B_OK" "$B_FAIL" "$B_RETR" "$R_ACHIEVED" "$R_SCPU" "$R_CPU_US" "$R_SIPP" \
        "$([ -z "$UAS_PID" ] || printf ', UAS %s%%' "$R_UAS")")"
    alive "$s"
    settle "$s"
}

# search KIND START CAP SERVER..: the highest passing rate of each server; sets its
# BEST_*[SERVER] (rate 0 if none). With two servers their steps take turns (one step of
# each, then the next of each), so that both see the same machine: it is shared, and
# what else runs on it changes over minutes. No restart after a failed run (that would
# lose the registrations and the memory baseline): the server is left to become idle,
# and its next step waits 35 s from the failure (Timer J: its transactions end) while
# the other server's steps run.
declare -A BEST_RATE BEST_CPU BEST_SCPU BEST_SIPP BEST_UAS
search() {
    local kind=$1 start=$2 cap=$3 s left wait_s
    shift 3
    local -A at good bad steps fin cool
    for s in "$@"; do
        at[$s]=$start good[$s]=0 bad[$s]=0 steps[$s]=0 fin[$s]=no cool[$s]=0
        BEST_RATE[$s]=0 BEST_CPU[$s]=- BEST_SCPU[$s]=- BEST_SIPP[$s]=- BEST_UAS[$s]=-
    done
    left=$#
    while [ "$left" -gt 0 ]; do
        for s in "$@"; do
            [ "${fin[$s]}" = no ] || continue
            wait_s=$((cool[$s] - $(date +%s)))
            [ "$wait_s" -le 0 ] || sleep "$wait_s"
            steps[$s]=$((steps[$s] + 1))
            run_step "$s" "$kind" "${at[$s]}"
            if [ $PASS = yes ]; then
                RES[$s,$kind,cpu_at,${at[$s]}]=$R_CPU_US
                good[$s]=${at[$s]}
                BEST_RATE[$s]=${at[$s]} BEST_CPU[$s]=$R_CPU_US BEST_SCPU[$s]=$R_SCPU
                BEST_SIPP[$s]=$R_SIPP BEST_UAS[$s]=$R_UAS
            else
                bad[$s]=${at[$s]}
                # a UAS left with half-done calls starts over
                [ "$kind" != calls ] || restart_uas "$s"
                cool[$s]=$(($(date +%s) + 35))
            fi
            if [ "${bad[$s]}" = 0 ]; then
                if [ $((at[$s] * 2)) -le "$cap" ]; then at[$s]=$((at[$s] * 2)); else fin[$s]=yes; fi
            elif [ "${good[$s]}" = 0 ]; then
                at[$s]=$((at[$s] / 2))
                [ "${at[$s]}" -ge 10 ] || fin[$s]=yes
            elif [ $((bad[$s] - good[$s])) -gt $((good[$s] / 10)) ]; then
                at[$s]=$(((good[$s] + bad[$s]) / 2))
            else
                fin[$s]=yes
            fi
            [ "${steps[$s]}" -lt $MAX_STEPS ] || fin[$s]=yes
            [ "${fin[$s]}" = no ] || left=$((left - 1))
        done
    done
    # the last failure's transactions end before whatever comes next
    for s in "$@"; do
        wait_s=$((cool[$s] - $(date +%s)))
        [ "$wait_s" -le 0 ] || sleep "$wait_s"
    done
}

# ------------------------------------------------------------------ calls

UAS_PID=
CALL_UAC_PORT=
# one_ue SERVER NAME USER PORT: registers USER from udp 127.0.0.1:PORT (what a call UE
# does before it calls or is called). 0 when sipp saw the 200.
one_ue() {
    local s=$1 name=$2 u=$3 port=$4 dir=$WORK/$1/calls
    mkdir -p "$dir"
    users "$u" 1 "$s" >"$dir/$name.csv"
    (cd "$dir" && timeout 30 sipp "127.0.0.1:${PORT[$s]}" -sf "$HERE/sipp/register.xml" -inf "$name.csv" \
        -i 127.0.0.1 -p "$port" -t u1 -key realm "$REALM" -key expires "$EXPIRES" -m 1 -nostdin \
        -trace_err -error_file "$name.err" >"$name.out" 2>&1)
}

# call_batch SERVER RATE N: N calls at RATE/s from the registered caller. Sets B_*.
call_batch() {
    local s=$1 rate=$2 n=$3 dir=$WORK/$1/calls/c-$2-$(date +%s%N)
    mkdir -p "$dir"
    B_RC=0
    (
        cd "$dir"
        rc=0
        sipp "127.0.0.1:${PORT[$s]}" -sf "$HERE/sipp/call_uac.xml" -i 127.0.0.1 -p "$CALL_UAC_PORT" -t u1 \
            -key realm "$REALM" -key caller "$(printf 'u%07d' $CALLER)" -key callee "$(printf 'u%07d' $CALLEE)" \
            -r "$rate" -rp 1000 -m "$n" -l $((rate * 2)) -nostdin -buff_size "$SIPP_BUF" \
            -trace_stat -stf stat.csv -fd 1 -recv_timeout 8000 -trace_err -error_file errors.log \
            -timeout $((STEP * 2 + 15))s -timeout_error >sipp.out 2>&1 || rc=$?
        times >times.out
        exit $rc
    ) || B_RC=$?
    local f=$dir/stat.csv v w
    B_OK=$(sipp_stat "$f" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
    B_FAIL=$(sipp_stat "$f" 'FailedCall(C)' 2>/dev/null || echo 0)
    B_RETR=$(sipp_stat "$f" 'Retransmissions(C)' 2>/dev/null || echo 0)
    w=$(awk -F';' 'END { n = split($1, a, "\t"); m = split($3, b, "\t"); if (n && m && b[m] > a[n]) printf "%.3f", b[m] - a[n] }' "$f" 2>/dev/null || true)
    B_WALL=${w:-0}
    v=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } print t }' "$dir/times.out" 2>/dev/null || echo 0)
    B_SIPP_CPU=${v:-0}
}

UAS_PORT=
start_uas() {
    local dir=$WORK/$1/calls _
    (cd "$dir" && exec sipp -sf "$ROOT/bench/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -t u1 -nostdin \
        -buff_size "$SIPP_BUF" -default_behaviors all,-bye -trace_stat -stf "uas-$(date +%s).csv" -fd 1 \
        >>uas.out 2>&1) &
    UAS_PID=$!
    STARTED_PIDS+=("$UAS_PID")
    for _ in $(seq 1 50); do
        [ -n "$(ss -Hlnu "sport = :$UAS_PORT")" ] && break
        sleep 0.1
    done
}
restart_uas() {
    kill -TERM "$UAS_PID" 2>/dev/null || true
    wait "$UAS_PID" 2>/dev/null || true
    start_uas "$1"
}

measure_calls() {
    local s=$1 uas_port dir=$WORK/$1/calls _
    mkdir -p "$dir"
    CALL_UAC_PORT=$(free_port)
    uas_port=$(free_port)
    UAS_PORT=$uas_port
    RES[$s,call_note]=
    if ! one_ue "$s" caller $CALLER "$CALL_UAC_PORT" || ! one_ue "$s" callee $CALLEE "$uas_port"; then
        RES[$s,call_note]="the caller or callee could not register"
        say "bench-ims: $s: ${RES[$s,call_note]}"
        return
    fi
    start_uas "$s"
    # one call first: does the path work at all?
    call_batch "$s" 1 1
    if [ "$B_OK" != 1 ]; then
        RES[$s,call_note]="a single test call failed (sipp: $(grep -m1 -oE 'Aborting call.*|unexpected.*|received.*' "$WORK/$s/calls"/c-1-*/errors.log 2>/dev/null | head -c 160 || true))"
        say "bench-ims: $s: ${RES[$s,call_note]}"
    else
        search calls 250 16000 "$s"
        RES[$s,call_rate]=${BEST_RATE[$s]} RES[$s,call_cpu]=${BEST_CPU[$s]}
        RES[$s,call_scpu]=${BEST_SCPU[$s]} RES[$s,call_sipp]=${BEST_SIPP[$s]}
        RES[$s,call_uas]=${BEST_UAS[$s]}
    fi
    kill -TERM "$UAS_PID" 2>/dev/null || true
    wait "$UAS_PID" 2>/dev/null || true
    UAS_PID=
}

# ------------------------------------------------------------------ one server

# the memory per registered contact: the fill of SUBS users
measure_fill() {
    local s=$1 t0 chunk first cpu0 cpu1 ok=0 fail=0 wall
    say "bench-ims: ---- $s: memory per registered contact ($SUBS users; waiting $WAIT s first)"
    sleep "$WAIT"
    settle "$s"
    memory "$s"
    RES[$s,rss0]=$M_RSS RES[$s,pss0]=$M_PSS RES[$s,heap0]=$M_HEAP
    # the fill rate stays below what the server passed, so that every user registers
    local rate=$FILL_RATE
    [ "${RES[$s,reg_rate]}" = 0 ] || [ $((RES[$s,reg_rate] / 2)) -ge "$rate" ] || rate=$((RES[$s,reg_rate] / 2))
    [ "$rate" -ge 50 ] || rate=50
    chunk=$((rate * 2 > 1000 ? rate * 2 : 1000))
    # shellcheck disable=SC2086
    cpu0=$(cpu_ticks ${PIDS[$s]})
    t0=$(now)
    for ((first = 0; first < SUBS; first += chunk)); do
        local m=$((SUBS - first < chunk ? SUBS - first : chunk))
        batch "$s" "fill-$first" "$first" "$m" "$rate"
        ok=$((ok + B_OK)) fail=$((fail + B_FAIL))
        alive "$s"
    done
    wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    # shellcheck disable=SC2086
    cpu1=$(cpu_ticks ${PIDS[$s]})
    memory "$s"
    RES[$s,rss_hot]=$M_RSS RES[$s,pss_hot]=$M_PSS RES[$s,heap_hot]=$M_HEAP
    say "bench-ims: $s: $ok registered ($fail failed) in $wall s at $rate/s; RSS $((RES[$s,rss0] / 1024)) -> $((M_RSS / 1024)) MiB right after"
    sleep "$WAIT"
    settle "$s"
    memory "$s"
    RES[$s,rss1]=$M_RSS RES[$s,pss1]=$M_PSS RES[$s,heap1]=$M_HEAP
    RES[$s,fill_ok]=$ok RES[$s,fill_fail]=$fail RES[$s,fill_rate]=$rate RES[$s,fill_wall]=$wall
    RES[$s,fill_cpu]=$(awk -v c=$((cpu1 - cpu0)) -v hz="$HZ" -v n="$ok" 'BEGIN { if (n == 0) print "-"; else printf "%.1f", c / hz * 1e6 / n }')
    say "bench-ims: $s: RSS $((RES[$s,rss0] / 1024)) -> $((M_RSS / 1024)) MiB after $WAIT s more (PSS $((RES[$s,pss0] / 1024)) -> $((M_PSS / 1024)) MiB, allocator in use ${RES[$s,heap0]} -> $M_HEAP KiB)"
}

# ------------------------------------------------------------------ both servers

measure() {
    local s
    say "bench-ims: ---- registrations/s (initial registrations of fresh users; ${SERVERS[*]} taking turns)"
    for s in "${SERVERS[@]}"; do POOL_NEXT[$s]=0 WRAPPED[$s]=0; done
    search reg 500 $((POOL / STEP < 32000 ? POOL / STEP : 32000)) "${SERVERS[@]}"
    for s in "${SERVERS[@]}"; do
        RES[$s,reg_rate]=${BEST_RATE[$s]} RES[$s,reg_cpu]=${BEST_CPU[$s]}
        RES[$s,reg_scpu]=${BEST_SCPU[$s]} RES[$s,reg_sipp]=${BEST_SIPP[$s]}
        RES[$s,reg_wrapped]=${WRAPPED[$s]}
    done
    [ "$HOPS" = no ] || return 0

    for s in "${SERVERS[@]}"; do measure_fill "$s"; done

    say "bench-ims: ---- re-registrations/s (the $SUBS users of the fill again; ${SERVERS[*]} taking turns)"
    for s in "${SERVERS[@]}"; do REREG_NEXT[$s]=0; done
    search rereg 500 $((SUBS / STEP < 32000 ? SUBS / STEP : 32000)) "${SERVERS[@]}"
    for s in "${SERVERS[@]}"; do
        RES[$s,rereg_rate]=${BEST_RATE[$s]} RES[$s,rereg_cpu]=${BEST_CPU[$s]}
        RES[$s,rereg_scpu]=${BEST_SCPU[$s]} RES[$s,rereg_sipp]=${BEST_SIPP[$s]}
    done

    for s in "${SERVERS[@]}"; do
        if [ "$CALLS" = yes ]; then
            say "bench-ims: ---- $s: calls A -> B between registered users"
            measure_calls "$s"
        fi
        # shellcheck disable=SC2086
        set -- ${PIDS[$s]}
        RES[$s,nproc]=$# RES[$s,threads]=$(mem_kb Threads status "$@") RES[$s,hwm]=$(mem_kb VmHWM status "$@")
    done
}

# ------------------------------------------------------------------ instructions

# dump_counts SERVER: every process of the server writes what it counted since its last
# dump (or its start) to a new part of its callgrind file, and starts counting again
dump_counts() {
    local p
    # shellcheck disable=SC2086
    for p in ${PIDS[$1]}; do
        callgrind_control --dump "$p" >/dev/null 2>&1 || die "callgrind_control --dump $p failed"
    done
}
# the newest part of each process's callgrind file
last_parts() {
    local p f n best
    # shellcheck disable=SC2086
    for p in ${PIDS[$1]}; do
        best=0
        for f in "$WORK/$1/cg.$p".*; do
            n=${f##*.}
            if [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt "$best" ]; then best=$n; fi
        done
        [ "$best" = 0 ] || echo "$WORK/$1/cg.$p.$best"
    done
}
# self_costs FILE..: "instructions function" per function, summed over the files (the
# cost lines of a callgrind file; a line after calls= is a callee's inclusive cost)
self_costs() {
    awk '/^ob=/ { ob = $0; sub(/^.*\//, "", ob); next }
        /^fn=/ { fn = substr($0, 4); sub(/^\([0-9]+\) /, "", fn); if (fn ~ /^0x/) fn = fn " in " ob; next }
        /^calls=/ { skip = 1; next }
        /^[0-9+*-]/ { if (skip) { skip = 0; next } self[fn] += $2 }
        END { for (f in self) printf "%d %s\n", self[f], f }' "$@" | sort -rn
}

measure_instr() {
    local s=$1 warm=$((INSTR / 2)) files total
    say "bench-ims: ---- $s: instructions of $INSTR initial registrations at $INSTR_RATE/s (callgrind)"
    batch "$s" warm 0 "$warm" "$INSTR_RATE"
    [ "$B_OK" = "$warm" ] || die "$s: $B_OK of $warm warm-up registrations passed"
    dump_counts "$s"
    batch "$s" counted "$warm" "$INSTR" "$INSTR_RATE"
    [ "$B_OK" = "$INSTR" ] || die "$s: $B_OK of $INSTR counted registrations passed"
    dump_counts "$s"
    files=$(last_parts "$s")
    [ -n "$files" ] || die "$s: no callgrind output in $WORK/$s"
    # shellcheck disable=SC2086
    total=$(awk '/^summary:/ { t += $2 } END { print t + 0 }' $files)
    RES[$s,instr_reg]=$((total / INSTR))
    # shellcheck disable=SC2086
    RES[$s,instr_top]=$(self_costs $files |
        awk -v t="$total" 'NR > 8 { next } { f = $2; for (i = 3; i <= NF; i++) f = f " " $i
            printf "%s`%s` %.1f%%", (NR > 1 ? ", " : ""), f, 100 * $1 / t }')
    say "bench-ims: $s: $total instructions, $((total / INSTR)) per registration"
}

# ------------------------------------------------------------------ storm

# counts_sum DIR COLUMN: the last (cumulative) value of a -trace_counts column, summed
# over the UACs of a batch
counts_sum() {
    local f t=0 v
    for f in "$1"/u*/*_counts.csv; do
        v=$(awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
            NF > 1 && c { last = $c } END { print last + 0 }' "$f")
        t=$((t + v))
    done
    echo $t
}
# per_second DIR: "min max" of the registrations completed per second, over sipp's
# one-second rows up to --storm-seconds (what completes after sipp stopped sending is
# left out: a tail, not the rate)
per_second() {
    awk -F';' -v secs="$STORM_S" 'FNR == 1 { for (i = 1; i <= NF; i++) if ($i == "7_200_Recv") c = i; prev = 0; k = 0; next }
        { k++; d[k] += $c - prev; prev = $c; if (k > n) n = k }
        END { lo = -1; hi = 0
              for (i = 2; i <= n && i <= secs; i++) { if (lo < 0 || d[i] < lo) lo = d[i]; if (d[i] > hi) hi = d[i] }
              printf "%d %d", (lo < 0 ? 0 : lo), hi }' "$1"/u*/*_counts.csv
}

# storm SERVER ROUND: STORM registrations/s of fresh users for STORM_S s; RES[$s,r$ROUND,*]
storm() {
    local s=$1 k=$2 n=$((STORM * STORM_S)) c0 c1 t0 dir lohi
    dir=$WORK/$s/storm-$k
    # shellcheck disable=SC2086
    c0=$(cpu_ticks ${PIDS[$s]})
    t0=$(now)
    SCENARIO=register_storm.xml SIPP_EXTRA="-trace_counts"
    batch "$s" "storm-$k" $((SUBS + POOL_NEXT[$s])) "$n" "$STORM"
    SCENARIO=register.xml SIPP_EXTRA=
    POOL_NEXT[$s]=$((POOL_NEXT[$s] + n))
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${PIDS[$s]})
    local ok r1 r2 retr
    ok=$(counts_sum "$dir" 7_200_Recv)
    r1=$(counts_sum "$dir" 2_503_Recv)
    r2=$(counts_sum "$dir" 6_503_Recv)
    retr=$(($(counts_sum "$dir" 0_REGISTER_Retrans) + $(counts_sum "$dir" 4_REGISTER_Retrans)))
    lohi=$(per_second "$dir")
    RES[$s,r$k,ok]=$ok RES[$s,r$k,r1]=$r1 RES[$s,r$k,r2]=$r2 RES[$s,r$k,retr]=$retr
    RES[$s,r$k,fail]=$B_FAIL RES[$s,r$k,lo]=${lohi% *} RES[$s,r$k,hi]=${lohi#* }
    RES[$s,r$k,wall]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    RES[$s,r$k,scpu]=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w="${RES[$s,r$k,wall]}" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
    say "$(printf 'bench-ims: %-8s storm %d: %d offered at %d/s: completed %d (per second %s..%s), 503 at the first REGISTER %d, at the second %d, other failures %d, retransmissions %d, server CPU %s%% over %s s' \
        "$s" "$k" "$n" "$STORM" "$ok" "${RES[$s,r$k,lo]}" "${RES[$s,r$k,hi]}" "$r1" "$r2" "$B_FAIL" "$retr" "${RES[$s,r$k,scpu]}" "${RES[$s,r$k,wall]}")"
    alive "$s"
}

measure_storm() {
    local k s
    say "bench-ims: ---- storms of $STORM registrations/s for $STORM_S s (${SERVERS[*]} taking turns, $ROUNDS rounds)"
    for s in "${SERVERS[@]}"; do POOL_NEXT[$s]=0; done
    for ((k = 1; k <= ROUNDS; k++)); do
        for s in "${SERVERS[@]}"; do
            storm "$s" "$k"
            # its transactions (Timer J, 32 s) end while the other server's storm runs
            settle "$s"
        done
    done
    [ "${#SERVERS[@]}" -gt 1 ] || sleep 35
}

# ------------------------------------------------------------------ run

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "bench-ims: work dir $WORK, $SUBS users (+ $POOL for the rate search), $STEP s per step, $WORKERS workers, $(nproc) cores, load $LOAD_START"
T_START=$(date +%s)
seed
for s in "${SERVERS[@]}"; do start_server "$s"; done
if [ "$STORM" != 0 ]; then
    measure_storm
elif [ "$INSTR" = 0 ]; then
    measure
else
    for s in "${SERVERS[@]}"; do measure_instr "$s"; done
fi
T_END=$(date +%s)

# ------------------------------------------------------------------ report

val() { if [ -n "${RES[$1,$2]+x}" ] && [ -n "${RES[$1,$2]}" ]; then echo "${RES[$1,$2]}"; else echo -; fi; }
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
ratio() {
    if isnum "$1" && isnum "$2" && [ "$2" != 0 ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}
# per_contact SERVER KEY0 KEY1: (KEY1 - KEY0) KiB / registered users, in bytes
per_contact() {
    local a b n
    a=$(val "$1" "$2") b=$(val "$1" "$3") n=$(val "$1" fill_ok)
    if isnum "$a" && isnum "$b" && isnum "$n" && [ "$n" != 0 ]; then
        awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'
    else
        echo -
    fi
}
mib() { if isnum "$1"; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else echo -; fi; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"; }
table() {
    echo '| metric | Kamailio 5.6 | imscloud | imscloud / Kamailio |'
    echo '|---|---:|---:|---:|'
    row 'registrations, max rate at 0 failed, 0 retransmitted (/s)' "$(val kamailio reg_rate)" "$(val imscloud reg_rate)"
    row 'registrations: server CPU per registration (µs)' "$(val kamailio reg_cpu)" "$(val imscloud reg_cpu)"
    row 'registrations: server CPU at that rate (% of one core)' "$(val kamailio reg_scpu)" "$(val imscloud reg_scpu)"
    row 'registrations: sipp CPU at that rate (% of one core, all UACs)' "$(val kamailio reg_sipp)" "$(val imscloud reg_sipp)"
    row 're-registrations of registered users, max rate at 0 failed, 0 retransmitted (/s)' "$(val kamailio rereg_rate)" "$(val imscloud rereg_rate)"
    row 're-registrations: server CPU per re-registration (µs)' "$(val kamailio rereg_cpu)" "$(val imscloud rereg_cpu)"
    row 're-registrations: server CPU / sipp CPU at that rate (% of one core)' "$(val kamailio rereg_scpu) / $(val kamailio rereg_sipp)" "$(val imscloud rereg_scpu) / $(val imscloud rereg_sipp)"
    row "fill: users registered at the fill rate ($SUBS asked)" "$(val kamailio fill_ok)" "$(val imscloud fill_ok)"
    row 'fill: failed registrations' "$(val kamailio fill_fail)" "$(val imscloud fill_fail)"
    row 'fill: rate (/s) / server CPU per registration (µs)' "$(val kamailio fill_rate) / $(val kamailio fill_cpu)" "$(val imscloud fill_rate) / $(val imscloud fill_cpu)"
    row 'memory before the fill: RSS / PSS summed (MiB)' "$(mib "$(val kamailio rss0)") / $(mib "$(val kamailio pss0)")" "$(mib "$(val imscloud rss0)") / $(mib "$(val imscloud pss0)")"
    row "memory $WAIT s after the fill: RSS / PSS summed (MiB)" "$(mib "$(val kamailio rss1)") / $(mib "$(val kamailio pss1)")" "$(mib "$(val imscloud rss1)") / $(mib "$(val imscloud pss1)")"
    row 'per registered contact: allocator memory in use (bytes; Kamailio shm, imscloud malloc)' "$(per_contact kamailio heap0 heap1)" "$(per_contact imscloud heap0 heap1)"
    row 'per registered contact: PSS delta (bytes; imscloud: = RSS)' "$(per_contact kamailio pss0 pss1)" "$(per_contact imscloud pss0 pss1)"
    row 'per registered contact: RSS delta summed over processes (bytes)' "$(per_contact kamailio rss0 rss1)" "$(per_contact imscloud rss0 rss1)"
    row 'per registered contact right after the fill (nonces, transactions alive): allocator / PSS (bytes)' "$(per_contact kamailio heap0 heap_hot) / $(per_contact kamailio pss0 pss_hot)" "$(per_contact imscloud heap0 heap_hot) / $(per_contact imscloud pss0 pss_hot)"
    row 'calls A→B, max rate at 0 failed, 0 retransmitted (calls/s)' "$(val kamailio call_rate)" "$(val imscloud call_rate)"
    row 'calls: server CPU per call (µs)' "$(val kamailio call_cpu)" "$(val imscloud call_cpu)"
    row 'calls: server CPU at that rate (% of one core)' "$(val kamailio call_scpu)" "$(val imscloud call_scpu)"
    row 'calls: sipp UAC / UAS CPU (% of one core)' "$(val kamailio call_sipp) / $(val kamailio call_uas)" "$(val imscloud call_sipp) / $(val imscloud call_uas)"
    row 'peak RSS, VmHWM summed (MiB)' "$(mib "$(val kamailio hwm)")" "$(mib "$(val imscloud hwm)")"
    row 'processes / threads' "$(val kamailio nproc) / $(val kamailio threads)" "$(val imscloud nproc) / $(val imscloud threads)"
}

# the highest rate of the search that every server passed (0 if none): CPU per
# registration falls as the rate rises, so the servers compare there too
common_rate() {
    local r s best=0
    for r in $(printf '%s\n' "${!RES[@]}" | awk -F, '$2 == "reg" && $3 == "cpu_at" { print $4 }' | sort -un); do
        for s in "${SERVERS[@]}"; do
            [ -n "${RES[$s,reg,cpu_at,$r]+x}" ] || continue 2
        done
        best=$r
    done
    echo $best
}
# steps_notes KIND..: every step of each server's searches, in the order run
steps_notes() {
    local k s
    for k in "$@"; do
        for s in "${SERVERS[@]}"; do
            [ -z "${STEPS[$s,$k]:-}" ] || echo "- $s, $k search, each step (rate/s, passed): ${STEPS[$s,$k]}"
        done
    done
}
hops_table() {
    local s name c
    c=$(common_rate)
    echo "| server | registrations, max rate at 0 failed, 0 retransmitted (/s) | vs Kamailio | server CPU per registration (µs) | vs Kamailio | server CPU per registration at $c/s, which all passed (µs) | vs Kamailio | server CPU at the max rate (% of one core) | sipp CPU (% of one core, all UACs) |"
    echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    for s in kamailio scscf icscf imscloud; do
        case $s in
        kamailio) name='Kamailio 5.6, Digest registrar' ;;
        scscf) name='imscloud, S-CSCF and HSS alone (REGISTER at the S-CSCF: MAR, SAR)' ;;
        icscf) name='imscloud, I-CSCF, S-CSCF and HSS (I -> S: UAR, MAR, UAR, SAR)' ;;
        imscloud) name='imscloud, the full path (P -> I -> S: UAR, MAR, UAR, SAR)' ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(val "$s" reg_rate)" \
            "$(ratio "$(val "$s" reg_rate)" "$(val kamailio reg_rate)")" "$(val "$s" reg_cpu)" \
            "$(ratio "$(val "$s" reg_cpu)" "$(val kamailio reg_cpu)")" "$(val "$s" "reg,cpu_at,$c")" \
            "$(ratio "$(val "$s" "reg,cpu_at,$c")" "$(val kamailio "reg,cpu_at,$c")")" "$(val "$s" reg_scpu)" \
            "$(val "$s" reg_sipp)"
    done
}
hops_section() {
    echo '<!-- ims-hops:begin -->'
    echo '## IMS: where the registration cost lies, hop by hop (bench/ims/run.sh --hops)'
    echo
    echo "Written by \`bench/ims/run.sh --hops\` (method in [README.md](README.md), \"IMS registrations and calls\"); replaced by its next run."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr); load average at start $LOAD_START"
    echo "- servers: Kamailio and imscloud (${IMS_BIN#"$ROOT"/}, $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')) as in the first table above, and two more imscloud processes with \`roles = scscf,hss\` and \`roles = icscf,scscf,hss\` (the same configuration otherwise, each a store of its own seeded alike), $TOTAL users each; the four take turns in one search"
    echo "- load: the registration search of the first table (fresh users, REGISTER/401/REGISTER/200, MD5 Digest, $UACS sipp UACs, one UDP socket per UE, $STEP s steps); the S-CSCF alone is sent the REGISTERs directly, without Path, as Kamailio is, the I-CSCF ones at its I-CSCF"
    echo
    hops_table
    echo
    steps_notes reg
    echo '- The S-CSCF alone does what Kamailio does (a Digest challenge, its check, a contact stored) plus the MAR and SAR to its HSS in the same process; the I-CSCF adds a hop and two UARs, the P-CSCF another hop (Path, flow token, identity assertion): each a SIP transaction per REGISTER, with a parse and a rebuild of the message and of its response.'
    echo '<!-- ims-hops:end -->'
}

if [ "$HOPS" = yes ]; then
    echo
    hops_table
elif [ "$INSTR" = 0 ] && [ "$STORM" = 0 ]; then
    echo
    table
    echo
    for s in "${SERVERS[@]}"; do
        [ -z "$(val "$s" call_note | sed 's/^-$//')" ] || echo "$s calls: $(val "$s" call_note)"
    done
fi

# Log lines in which Kamailio found its shared memory full (0 without a log).
kam_shm_failures() {
    local f=$WORK/kamailio/server.log
    [ -f "$f" ] || { echo 0; return; }
    grep -c 'could not allocate shared memory' "$f" || true
}

section() {
    echo '<!-- ims-bench:begin -->'
    echo '## IMS: full registrations and calls vs Kamailio as a Digest registrar (bench/ims/run.sh)'
    echo
    echo "Written by \`bench/ims/run.sh\` (method in [README.md](README.md), \"IMS registrations and calls\"); replaced by its next run."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average at start $LOAD_START"
    echo "- imscloud: ${IMS_BIN#"$ROOT"/} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')), roles pcscf,icscf,scscf,hss in one process, $WORKERS workers, Cx in-process, HSS store SQLite (WAL; Cx store work on the worker threads; registration state flushed in the background within [hss] flush_ms (default 50 ms), an AKA SQN before its answer) seeded with $TOTAL users by hss_bench_seed in $SEED_S s (with the Kamailio table), identity cache of $CACHE_ENTRIES entries"
    echo "- Kamailio $(kamailio -v 2>/dev/null | awk '/^version:/ { print $3; exit }') \`-m $KAM_SHM_MB -M 64\`, children=$WORKERS: auth + auth_db (SQLite, plain-text passwords, calculate_ha1), usrloc db_mode=0 (memory), registrar, rr + tm, lookup(\"location\") for calls"
    echo "- load: $(sipp -v 2>/dev/null | awk '/SIPp v/ { print $1, $2; exit }') over UDP on 127.0.0.1; registrations from $UACS sipp UACs at once, one UDP socket per UE (-t un), MD5 Digest with qop=auth, Expires $EXPIRES; users: $SUBS for the memory fill + $POOL for the rate search, each registered once until the pool is used up, then again from a new port (re-registrations in the search: $(val imscloud reg_wrapped) imscloud, $(val kamailio reg_wrapped) Kamailio)"
    [ "$ONLY" = both ] || echo "- only $ONLY was measured (--only $ONLY)"
    echo
    table
    echo
    local s
    for s in "${SERVERS[@]}"; do
        [ -z "$(val "$s" call_note | sed 's/^-$//')" ] || echo "- $s calls: not measured: $(val "$s" call_note)"
    done
    echo '- Registrations/s: the two servers'"'"' steps taking turns (one of each, in turn), the highest rate (doubling from 500/s, then bisecting to 10%) at which a run of '"$STEP"' s had zero failed registrations, every one completed, none retransmitted (each REGISTER answered within T1, 500 ms, after which sipp resends it), and sipp held 90% of the rate; both servers as shipped (imscloud'"'"'s overload control on: a 503 is a failure; Kamailio has none); each is REGISTER/401/REGISTER/200, of a user not registered before while the pool lasts (imscloud: P -> I (UAR) -> S (MAR) -> 401, P -> I (UAR) -> S (SAR) -> 200, every Cx request a SQLite transaction in the HSS; Kamailio: a SELECT of the password, the contact in memory).'
    echo '- Re-registrations/s: the same search (taking turns) after the memory fill, over the '"$SUBS"' users it registered, in turn: REGISTER/401/REGISTER/200 of a registered user from a new UDP flow (a second contact; imscloud: UAR, MAR, UAR, SAR RE_REGISTRATION, whose User-Data the HSS built at the registration, and no row written; Kamailio: the same SELECT, a contact added in memory). What a network mostly carries: every UE re-registers before its registration expires.'
    echo '- Memory per registered contact: the '"$SUBS"' users registered after the search, at the fill rate, by sipp runs of '"$UACS"' UACs, every UE its own UDP flow (source address and port); measured '"$WAIT"' s after the search and '"$WAIT"' s after the fill, when no transaction (RFC 3261 Timer J, 32 s) or nonce (60 s) of them is left. "Allocator memory in use" is what the per-user state costs: Kamailio'"'"'s shm real_used (contacts live in shared memory) and imscloud'"'"'s malloc in use (mallinfo2 through gdb). RSS and PSS deltas depend on the history: the search leaves imscloud'"'"'s malloc arenas with free space (its transactions'"'"' buffers, at most at the highest rate it tried), which the fill reuses before the RSS grows, so its RSS delta can be well below its allocator delta; Kamailio counts its shared memory in the RSS of every process that touched it (PSS splits it).'
    echo '- Calls: caller and callee registered from the UAC and UAS sockets; the same search, from 250 calls/s. Everything shares the 2 cores (server, sipp UACs, sipp UAS) with whatever else ran on the machine: compare the ratios of one run.'
    steps_notes reg rereg calls
    local oom
    oom=$(kam_shm_failures)
    [ "$oom" = 0 ] || echo "- kamailio ran out of shared memory (\`-m $KAM_SHM_MB\`): $oom log lines \"could not allocate shared memory\"; the steps that met it failed for that, not for CPU"
    echo '<!-- ims-bench:end -->'
}

instr_section() {
    echo '<!-- ims-instr:begin -->'
    echo '## IMS: instructions per registration vs Kamailio (bench/ims/run.sh --instructions)'
    echo
    echo "Written by \`bench/ims/run.sh --instructions\` (method in [README.md](README.md), \"IMS registrations and calls\"); replaced by its next run."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- $(valgrind --version) (callgrind), every process and thread of the server; imscloud: ${IMS_BIN#"$ROOT"/} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')); Kamailio $(kamailio -v 2>/dev/null | awk '/^version:/ { print $3; exit }'); the same configurations, users ($TOTAL) and sipp scenario as the CPU-time run above"
    echo "- counted: $INSTR initial registrations (REGISTER/401/REGISTER/200 of users not registered before) at $INSTR_RATE/s from $UACS sipp UACs, after $((INSTR / 2)) to warm up"
    echo
    echo '| metric | Kamailio 5.6 | imscloud | imscloud / Kamailio |'
    echo '|---|---:|---:|---:|'
    row 'user-space instructions per registration' "$(val kamailio instr_reg)" "$(val imscloud instr_reg)"
    echo
    local s
    for s in "${SERVERS[@]}"; do
        echo "- $s, most executed (own instructions, share of its total): $(val "$s" instr_top)"
    done
    echo '- Instructions are not time: the kernel (sockets, fsync), cache misses, lock waits and SHA extensions (valgrind executes SHA-256 without them) are not in this count; the CPU-time table above has them.'
    echo '<!-- ims-instr:end -->'
}
[ "$INSTR" = 0 ] || instr_section

storm_table() {
    local s k
    echo '| server, round | completed (of offered) | completed per second, min..max | 503 at the first REGISTER | 503 at the second REGISTER | other failures | REGISTER retransmissions | server CPU (% of one core) |'
    echo '|---|---:|---:|---:|---:|---:|---:|---:|'
    for s in "${SERVERS[@]}"; do
        for ((k = 1; k <= ROUNDS; k++)); do
            printf '| %s, %d | %s (%d) | %s..%s | %s | %s | %s | %s | %s |\n' "$s" "$k" "$(val "$s" "r$k,ok")" \
                $((STORM * STORM_S)) "$(val "$s" "r$k,lo")" "$(val "$s" "r$k,hi")" "$(val "$s" "r$k,r1")" \
                "$(val "$s" "r$k,r2")" "$(val "$s" "r$k,fail")" "$(val "$s" "r$k,retr")" "$(val "$s" "r$k,scpu")"
        done
    done
}
storm_section() {
    echo '<!-- ims-storm:begin -->'
    echo '## IMS: a registration storm, imscloud vs Kamailio (bench/ims/run.sh --storm)'
    echo
    echo "Written by \`bench/ims/run.sh --storm\` (method in [README.md](README.md), \"IMS registrations and calls\"); replaced by its next run."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$CMDLINE\` ($((T_END - T_START)) s in all)"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr); load average at start $LOAD_START"
    echo "- servers: as in the CPU-time run above (imscloud ${IMS_BIN#"$ROOT"/} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')), every role in one process, its overload control as shipped; Kamailio 5.6, which has none), $TOTAL users"
    echo "- load: $STORM initial registrations/s (REGISTER/401/REGISTER/200, users not registered before) for $STORM_S s from $UACS sipp UACs, one UDP socket per UE, UEs that end an attempt on a 503 (sipp/register_storm.xml); the servers take turns, $ROUNDS rounds"
    echo
    storm_table
    echo
    echo '- "completed": 200s received; per second: over the seconds sipp was sending (the tail after it stopped left out). A 503 at the second REGISTER throws away the first round (imscloud: UAR, MAR and the 401). "Other failures": calls sipp failed (timeouts, other answers). Retransmissions: REGISTERs sipp sent again after 500 ms, 1 s, 2 s... without an answer.'
    echo '<!-- ims-storm:end -->'
}
if [ "$STORM" != 0 ]; then
    echo
    storm_table
fi

if [ -n "$RESULTS" ]; then
    tmp=$RESULTS.ims.$$
    if [ "$HOPS" = yes ]; then
        tag=ims-hops writer=hops_section
    elif [ "$STORM" != 0 ]; then
        tag=ims-storm writer=storm_section
    elif [ "$INSTR" = 0 ]; then
        tag=ims-bench writer=section
    else
        tag=ims-instr writer=instr_section
    fi
    if [ -f "$RESULTS" ] && grep -q "^<!-- $tag:begin -->\$" "$RESULTS"; then
        # replace our section, keep the rest
        {
            sed -n "1,/^<!-- $tag:begin -->\$/p" "$RESULTS" | sed '$d'
            $writer
            sed -n "/^<!-- $tag:end -->\$/,\$p" "$RESULTS" | sed '1d'
        } >"$tmp"
    else
        {
            [ ! -f "$RESULTS" ] || { cat "$RESULTS"; echo; }
            $writer
        } >"$tmp"
    fi
    mv "$tmp" "$RESULTS"
    say "bench-ims: wrote ${RESULTS#"$ROOT"/}"
fi
