# shellcheck shell=bash
# tests/e2e/ims/t_lockout.sh - brute-force lockout, user-enumeration
# resistance, rate limits and overload (issue 6 parts 2 and 3;
# docs/security.md).  Sourced by ims_e2e.sh (its helpers: ue, register,
# start, stop, pick_ports, write_conf...).
#
# Each test runs its own one-process stack (lk_stack: all roles, a fresh
# store, the fixture's config plus [lockout]/[limits] sections of its own),
# so its locks and floods never touch the fixture's shared state; the
# fixture only provides $TMP and the tool checks.  The stack must stop
# cleanly (exit 0, no sanitizer report).
#
#   lockout       wrong passwords from source A (127.0.0.2) lock alice's IMPI
#                 and A: the lockout audit events exist (CADF authenticate /
#                 failure / reason lockout, for the IMPI and the address); A
#                 then gets the wrong-password 403 even with alice's right
#                 password and with dave's (the source lock); the real alice
#                 registers from source B (127.0.0.1), which never failed
#   svwar         SIPVicious svwar over 1000-1006 (1001-1003 real users)
#                 with REGISTER, INVITE and OPTIONS: it finds no extension
#                 (every user gets the same answer); with --force it reports
#                 every extension the same way or none
#   flood         sipp floods far above the per-source limit from 127.0.0.2-4
#                 (REGISTER and OPTIONS, 3000/s each): the stack keeps
#                 answering (503s counted, the excess dropped), alice (UE on
#                 127.0.0.1) registers meanwhile and gets a MESSAGE, RSS stays
#                 under a generous bound, no crash, a clean stop
#   overload      no per-source limit, a low overload ceiling: an OPTIONS
#                 flood gets 503 Overloaded (counted) while dave registers and
#                 gets a MESSAGE (a UE retries after Retry-After), no crash

LK_CTL=

# lk_stack NAME EXTRA_INI: starts the stack NAME on fresh ports; sets
# LK_DIR, LK_PID; the fixture's ports come back with lk_stop
lk_stack() {
    local name=$1 extra=$2
    own_stack_begin "$name"
    LK_NAME=$name
    LK_DIR=$STACK_DIR
    write_conf "$LK_DIR/ims.conf" pcscf,icscf,scscf,hss "$LK_DIR/hss" hss.ims.test
    printf '\n%s\n' "${extra//@P_PORT@/$P_PORT}" >>"$LK_DIR/ims.conf"
    LK_CTL=$(dirname "$IMS_BIN")/imscloudctl
    if [ -n "${LK_USERS:-}" ]; then # numeric users for svwar, in the store before the start
        local u
        for u in $LK_USERS; do
            "$LK_CTL" -c "$LK_DIR/ims.conf" user add "$u@$REALM" --password "pw-$u" \
                --impu "sip:$u@$REALM" >>"$OUT/$name.ctl.log" 2>&1 ||
                die "imscloudctl user add $u failed: $(tail -3 "$OUT/$name.ctl.log")"
        done
    fi
    start "$name" "$LK_DIR/ims.conf"
    PROCS="$PROCS $name"
    wait_for 20 "the $name P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the $name S-CSCF on udp $S_PORT" udp_bound "$S_PORT"
    LK_PID=$(cat "$FIXDIR/$name.pid")
    say "$name stack up: P-CSCF $P_PORT, I-CSCF $I_PORT, S-CSCF $S_PORT (log $FIXDIR/$name.log)"
}

# lk_stop: stops the stack (a clean stop or the test fails), restores the
# fixture's ports; keeps the log in $OUT
lk_stop() {
    local out
    out=$(stop "$LK_NAME")
    cp "$FIXDIR/$LK_NAME.log" "$OUT/$LK_NAME.log" 2>/dev/null || true
    own_stack_end
    [ -z "$out" ] || {
        tail -n 30 "$OUT/$LK_NAME.log" >&2
        say "FAIL: $out"
        return 1
    }
}

# lk_audit_lockouts FILE: prints "impi src" counts of lockout events
lk_audit_lockouts() {
    python3 - "$1" <<'EOF'
import json, sys
impi = src = 0
for line in open(sys.argv[1]):
    ev = json.loads(line)
    reason = ev.get("reason") or {}
    if ev.get("action") != "authenticate" or ev.get("outcome") != "failure":
        continue
    if reason.get("reasonCode") != "lockout":
        continue
    t = (ev.get("target") or {}).get("typeURI", "")
    if t.startswith("host/"):
        src += 1
    else:
        impi += 1
print(impi, src)
EOF
}

t_lockout() {
    need python3
    lk_stack lk "[lockout]
impi_failures = 4
source_failures = 4
time = 120"
    local rc=0 A=127.0.0.2 counts
    # source A guesses alice's password: 401 (fresh challenge) each time,
    # 403 when [scscf] auth_max_failures (3) is reached; the 4th failure locks
    # the IMPI (for A) and A
    local i
    for i in 1 2 3 4; do
        ue wrongA$i "$UE_PORT" lk_wrong.xml -s alice -au "alice@$REALM" -ap guess$i \
            -key expires 600 -i $A || rc=1
    done
    # locked: the right password from A gets what a wrong one gets
    ue lockedA "$UE_PORT" lk_locked.xml -s alice -au "alice@$REALM" -ap alice-secret \
        -key expires 600 -i $A || rc=1
    # the source lock: another user's right password from A, the same 403
    ue lockedA2 "$UE_PORT" lk_locked.xml -s dave -au "dave@$REALM" -ap dave-secret \
        -key expires 600 -i $A || rc=1
    # the real alice, from B (never failed): registers
    register realB register.xml alice alice-secret 600 -key alg MD5 || rc=1
    # and dave from B
    register realB2 register.xml dave dave-secret 600 -key alg MD5 || rc=1
    sleep 0.5 # the audit writer thread
    counts=$(lk_audit_lockouts "$LK_DIR/hss/audit.jsonl") || rc=1
    say "lockout audit events (impi source): $counts (want 1 1)"
    [ "$counts" = "1 1" ] || rc=1
    lk_stop || rc=1
    return $rc
}

# svwar's report: the extension lines of its table ("| 1001 | reqauth |")
lk_svwar() { # METHOD [extra svwar args]: prints the extensions svwar found
    local m=$1 sport
    shift
    pick_ports sport # its own source port each run: late answers of a run stay there
    HOME=$TMP timeout -k 5 "$(scaled 90)" svwar -b 127.0.0.3 -x 127.0.0.3 -P "$sport" -p "$P_PORT" \
        --domain "$REALM" -m "$m" -e 1000-1006 -t 0.05 --maximumtime 10 "$@" 127.0.0.1 \
        >"$OUT/svwar_$m$*.out" 2>&1 || true
    # it ran to its report (not a crash that found nothing)
    grep -qE 'found nothing|Extension' "$OUT/svwar_$m$*.out" || echo "svwar-did-not-report"
    grep -E '^\| *[0-9]+ *\|' "$OUT/svwar_$m$*.out" | tr -d ' ' || true
}

t_svwar() {
    need svwar
    LK_USERS="1001 1002 1003" lk_stack lksv ""
    local rc=0 m found
    for m in REGISTER INVITE OPTIONS; do
        found=$(lk_svwar "$m")
        say "svwar -m $m found: ${found:-none}"
        [ -z "$found" ] || rc=1
        # forced past its sanity check, it may list extensions, but then
        # every one of the range, each the same way
        found=$(lk_svwar "$m" --force)
        local n kinds
        n=$(printf '%s' "$found" | grep -c . || true)
        kinds=$(printf '%s\n' "$found" | awk -F'|' 'NF > 2 { print $3 }' | sort -u | grep -c . || true)
        say "svwar -m $m --force: $n extensions, $kinds kinds of answer"
        if [ "$n" != 0 ] && { [ "$n" != 7 ] || [ "$kinds" != 1 ]; }; then
            printf '%s\n' "$found" >&2
            rc=1
        fi
    done
    # the real users are real: 1001 registers
    register real1001 register.xml 1001 pw-1001 600 -key alg MD5 || rc=1
    lk_stop || rc=1
    return $rc
}

lk_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# lk_flood NAME SRC PORT SCENARIO RATE SECONDS: sipp sends without waiting
lk_flood() {
    local name=$1 src=$2 port=$3 sf=$4 rate=$5 secs=$6
    (cd "$OUT" && exec timeout -k 5 "$((secs + 10))" sipp "127.0.0.1:$P_PORT" -sf "$HERE/sipp/$sf" \
        -i "$src" -p "$port" -key realm "$REALM" -r "$rate" -rp 1000 -l 100000 -m "$((rate * secs))" \
        -nostdin -timeout "${secs}s" -trace_stat -stf "$name.stat.csv" -fd 1 \
        -max_recv_loops 100 >"$name.out" 2>&1) &
}

# lk_counts: "limited dropped overload" from the stack's stop line
lk_counts() {
    local line
    line=$(grep 'mod=limits event=stopped' "$OUT/$LK_NAME.log" | tail -1)
    printf '%s %s %s\n' "$(sed -n 's/.*rate_limited=\([0-9]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.*overload_503=\([0-9]*\).*/\1/p' <<<"$line")"
}

# lk_retry N CMD...: a UE retries after a 503 (Retry-After: 1)
lk_retry() {
    local n=$1 i
    shift
    for i in $(seq 1 "$n"); do
        "$@" 2>/dev/null && return 0
        sleep 1
    done
    return 1
}

t_flood() {
    # per-source limits on the UE-facing port; the hops between our roles
    # come from the P-CSCF's listener (exempt)
    lk_stack lkfl "[limits]
source_rate = 100
source_burst = 100
ports = @P_PORT@
exempt = 127.0.0.1:@P_PORT@
overload_max_rate = 5000
retry_after = 1"
    local rc=0 rss0 rss1 secs pids="" i FL1 FL2 FL3
    pick_ports FL1 FL2 FL3
    rss0=$(lk_rss_kb "$LK_PID")
    secs=$(scaled 6)
    lk_flood fl_reg 127.0.0.2 "$FL1" lk_flood_register.xml 3000 "$secs"
    pids="$pids $!"
    lk_flood fl_opt3 127.0.0.3 "$FL2" lk_flood_options.xml 3000 "$secs"
    pids="$pids $!"
    lk_flood fl_opt4 127.0.0.4 "$FL3" lk_flood_options.xml 3000 "$secs"
    pids="$pids $!"
    sleep 1
    # meanwhile a real user registers and gets a MESSAGE (retrying after a
    # 503, as a real UE does)
    lk_retry 5 register realE register.xml alice alice-secret 600 -key alg MD5 ||
        { say "FAIL: alice could not register during the flood"; rc=1; }
    lk_retry 5 deliver_to alice message_200.xml ||
        { say "FAIL: no MESSAGE reached alice during the flood"; rc=1; }
    alive "$LK_NAME" || { say "FAIL: the stack died"; rc=1; }
    rss1=$(lk_rss_kb "$LK_PID" || echo 0)
    for i in $pids; do wait "$i" || true; done
    say "RSS before the flood ${rss0} kB, during it ${rss1} kB"
    # generous (ASan): bounded, not growing with the number of requests
    [ "$rss1" -lt $((rss0 + 262144)) ] || { say "FAIL: RSS grew by more than 256 MiB"; rc=1; }
    lk_stop || rc=1
    local limited dropped overload
    read -r limited dropped overload <<<"$(lk_counts)"
    say "limits: 503 rate limited ${limited:-?}, dropped ${dropped:-?}, 503 overload ${overload:-?}"
    [ "${limited:-0}" -gt 0 ] && [ "${dropped:-0}" -gt 0 ] || rc=1
    return $rc
}

t_overload() {
    # no per-source limit: the overload control alone, with a low ceiling
    lk_stack lkol "[limits]
exempt = 127.0.0.1:@P_PORT@
overload_target_ms = 200
overload_min_rate = 20
overload_max_rate = 100
retry_after = 1"
    local rc=0 rss0 rss1 secs FL1
    pick_ports FL1
    rss0=$(lk_rss_kb "$LK_PID")
    secs=$(scaled 5)
    lk_flood ol_opt 127.0.0.3 "$FL1" lk_flood_options.xml 3000 "$secs"
    local fpid=$!
    sleep 1
    # a user's REGISTER and a MESSAGE to it get through (after a 503 maybe)
    lk_retry 8 register realO register.xml dave dave-secret 600 -key alg MD5 ||
        { say "FAIL: dave could not register during the overload"; rc=1; }
    lk_retry 8 deliver_to dave message_200.xml ||
        { say "FAIL: no MESSAGE reached dave during the overload"; rc=1; }
    rss1=$(lk_rss_kb "$LK_PID" || echo 0)
    wait "$fpid" || true
    alive "$LK_NAME" || { say "FAIL: the stack died"; rc=1; }
    say "RSS before ${rss0} kB, during the overload ${rss1} kB"
    [ "$rss1" -lt $((rss0 + 262144)) ] || { say "FAIL: RSS grew by more than 256 MiB"; rc=1; }
    lk_stop || rc=1
    local limited dropped overload
    read -r limited dropped overload <<<"$(lk_counts)"
    say "limits: 503 overload ${overload:-?} (rate limited ${limited:-?}, dropped ${dropped:-?})"
    [ "${overload:-0}" -gt 0 ] || rc=1
    return $rc
}
