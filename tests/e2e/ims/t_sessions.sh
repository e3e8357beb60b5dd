# shellcheck shell=bash
# tests/e2e/ims/t_sessions.sh - S-CSCF session processing end to end (sourced by
# ims_e2e.sh; docs/internals/cscf.md "Sessions").  Every test registers its UEs
# itself: the caller on UE_PORT, the callee (bob, AKA) on UE2_PORT, where a sipp
# UAS then answers.
#
#   sess_call          alice -> bob INVITE/180/200/ACK/BYE through P, S (orig),
#                      I, S (term), P; the INVITE bob gets and the 200 alice gets
#                      carry the Record-Route of P, S, S, P (the I-CSCF does not
#                      record-route), ACK and BYE pass
#   sess_message       page-mode MESSAGE alice -> bob, 200 back
#   sess_unknown       INVITE to an identity the HSS does not know: 404 (I-CSCF, LIR 5001)
#   sess_unregistered  INVITE to sessn (no services when unregistered): 480 from
#                      the I-CSCF; to sessu (has a profile: LIR sends it to the
#                      S-CSCF, which finds no registration): 480
#   sess_ifc_as        sessa's originating iFC sends the INVITE to a sipp AS that
#                      proxies it back along the ODI Route; the call completes
#                      (Record-Route P, S, S, S, P: the S-CSCF twice, before and
#                      after the AS)
#   sess_as_down       the iFC's AS port has no listener: SESSION_CONTINUED -> the
#                      call reaches bob; SESSION_TERMINATED -> an error final
#                      (408/500) within the bounded time
#   sess_next_contact  forka registered from two ports (two devices): alice's
#                      INVITE goes first to the one registered last, which
#                      answers 486, then to the other, which takes the call
#                      (RFC 3261 §16.6 sequential search); with both busy
#                      alice gets 486
#   sess_ring_out      forkb's device registered last rings and is never
#                      answered: after [scscf] contact_ring_s (2 s in the
#                      fixtures) the S-CSCF cancels it (487) and the other
#                      device takes the call
#   sess_as_answers    an AS answers a MESSAGE itself (200, relayed to the caller):
#                      sessa's originating iFC; then sessu's TERMINATING_UNREGISTERED
#                      iFC (LIR: unregistered service -> S-CSCF: SAR
#                      UNREGISTERED_USER -> the AS)

sess_ctl() { # imscloudctl on the fixture's HSS store
    local conf
    conf=$(hss_conf)
    "$(dirname "$IMS_BIN")/imscloudctl" -c "$conf" "$@" >>"$OUT/ctl.out" 2>&1 || {
        echo "imscloudctl $* failed: $(tail -n 3 "$OUT/ctl.out")" >&2
        return 1
    }
}

# sess_ifc USER PROFILE AS_PORT continue|terminate [METHOD [CASE]]: USER's
# identity gets a new profile with one iFC: METHOD (INVITE) in session case CASE
# (originating) -> sip:127.0.0.1:AS_PORT
sess_ifc() {
    sess_ctl profile ifc-add "$2" --priority 0 --as "sip:127.0.0.1:$3" --method "${5:-INVITE}" \
        --session-case "${6:-originating}" --default-handling "$4" &&
        sess_ctl impu set-profile "sip:$1@$REALM" "$2"
}

sess_reg_bob() { ue regb "$UE2_PORT" register_aka.xml -s bob -au "bob@$REALM" -key expires 600; }

# sess_bg NAME PORT SCENARIO args...: a sipp UAS in the background on PORT;
# its pid in SESS_PID_NAME
sess_bg() {
    local name=$1 port=$2 sf=$3 secs pid
    shift 3
    secs=$(scaled 20)
    (cd "$OUT" && exec timeout -k 5 "$((secs + 5))" sipp -sf "$HERE/sipp/$sf" \
        -i "${UE_ADDR:-$ADDR}" -p "$port" -m 1 -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_msg -message_file "$name.msg" -trace_err -error_file "$name.err.log" \
        -timeout "${secs}s" -timeout_error "$@" >"$name.out" 2>&1) &
    pid=$!
    printf -v "SESS_PID_$name" '%s' "$pid"
    local deadline=$(($(date +%s) + $(scaled 10)))
    until udp_bound "$port"; do
        kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ] ||
            die "the sipp $name did not listen on $port"
        sleep 0.1
    done
}

# sess_wait NAME: the background sipp NAME exited 0 with one successful call
sess_wait() {
    local name=$1 pidv="SESS_PID_$1" rc=0 ok
    wait "${!pidv}" || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    say "$name: sipp exit $rc, successful $ok (want 0, 1)"
    if [ "$rc" != 0 ] || [ "$ok" != 1 ]; then
        head -n 20 "$OUT/$name.err.log" >&2 2>/dev/null || true
        return 1
    fi
}

# sess_rr FILE START: host:port of every Record-Route value of the first
# message received in sipp trace FILE whose first line matches START, one line
sess_rr() {
    perl -e '
        my ($file, $start) = @ARGV;
        local $/; open(my $f, "<", $file) or exit 1; my $all = <$f>;
        for my $blk (split /^-{10,}.*$/m, $all) {
            next unless $blk =~ /message received/;
            my ($msg) = $blk =~ /\n\s*\n(.*)/s or next;
            next unless $msg =~ /^$start/;
            my @v;
            for my $l (split /\r?\n/, $msg) {
                last if $l eq "";
                next unless $l =~ /^Record-Route:\s*(.*)$/i;
                push @v, $1 =~ /<sip:([^;>]+)/g;
            }
            print join(" ", @v), "\n";
            exit 0;
        }
        exit 1;
    ' "$1" "$2"
}

# sess_check_rr FILE START WANT: the Record-Route hops of that message are WANT
sess_check_rr() {
    local got
    got=$(sess_rr "$1" "$2") || got="(no such message)"
    say "Record-Route of '$2' in $(basename "$1"): $got"
    [ "$got" = "$3" ] || {
        echo "want Record-Route hops: $3" >&2
        return 1
    }
}

# sess_call NAME CALLER HOPS: bob answers on UE2_PORT, CALLER calls him from
# UE_PORT; the Record-Route hops of the INVITE bob got and of the 200 CALLER
# got must both be HOPS
sess_call() {
    local name=$1 caller=$2 want=$3 rc=0
    sess_bg "uas_$name" "$UE2_PORT" sess_call_uas.xml -s bob
    ue "$name" "$UE_PORT" sess_call_uac.xml -s bob -key caller "$caller" || rc=1
    sess_wait "uas_$name" || rc=1
    sess_check_rr "$OUT/uas_$name.msg" "INVITE " "$want" || rc=1
    sess_check_rr "$OUT/$name.msg" 'SIP/2\.0 200(?s:.*)CSeq: *1 INVITE' "$want" || rc=1
    return $rc
}

# sess_fail NAME CALLER CALLEE STATUS...: the INVITE ends with one of STATUS
sess_fail() {
    local name=$1 caller=$2 callee=$3 st
    shift 3
    ue "$name" "$UE_PORT" sess_invite_err.xml -s "$callee" -key caller "$caller" || return 1
    st=$(grep -m1 -oE '^SIP/2\.0 [2-6][0-9][0-9]' "$OUT/$name.msg" | awk '{print $2}')
    say "$name: final status $st (want one of $*)"
    case " $* " in *" $st "*) return 0 ;; esac
    return 1
}

t_sess_call() {
    local rc=0 hops="$HOST:$P_PORT $HOST:$S_PORT $HOST:$S_PORT $HOST:$P_PORT"
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1
    sess_call call alice "$hops" || rc=1
    return $rc
}

# sess_reg_fork USER PORT: alice on UE_PORT, and USER's two devices:
# UE2_PORT, then PORT (the latest registration is tried first).  Each test
# has its own USER: the devices stay registered after it, and another
# test's would be tried too.
sess_reg_fork() {
    local rc=0 n user=$1 port=$2
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    for n in "regf2 $UE2_PORT" "regf1 $port"; do
        set -- $n
        ue "$1" "$2" register.xml -s "$user" -au "$user@$REALM" -ap "$user-secret" \
            -key expires 600 -key alg MD5 || rc=1
    done
    return $rc
}

t_sess_next_contact() {
    local rc=0 D1 hops="$HOST:$P_PORT $HOST:$S_PORT $HOST:$S_PORT $HOST:$P_PORT"
    pick_ports D1
    sess_reg_fork forka "$D1" || rc=1
    sess_bg busy "$D1" sess_busy_uas.xml -s forka
    sess_bg uas_fork "$UE2_PORT" sess_call_uas.xml -s forka
    ue call "$UE_PORT" sess_call_uac.xml -s forka -key caller alice || rc=1
    sess_wait busy || rc=1
    sess_wait uas_fork || rc=1
    sess_check_rr "$OUT/uas_fork.msg" "INVITE " "$hops" || rc=1
    # both busy: the caller gets the last device's 486
    sess_bg busy1 "$D1" sess_busy_uas.xml -s forka
    sess_bg busy2 "$UE2_PORT" sess_busy_uas.xml -s forka
    sess_fail both alice forka 486 || rc=1
    sess_wait busy1 || rc=1
    sess_wait busy2 || rc=1
    return $rc
}

t_sess_ring_out() {
    local rc=0 D1
    pick_ports D1
    sess_reg_fork forkb "$D1" || rc=1
    sess_bg ring "$D1" sess_ring_uas.xml -s forkb
    sess_bg uas_ring "$UE2_PORT" sess_call_uas.xml -s forkb
    ue call "$UE_PORT" sess_call_uac.xml -s forkb -key caller alice || rc=1
    sess_wait ring || rc=1
    sess_wait uas_ring || rc=1
    return $rc
}

t_sess_message() {
    local rc=0
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1
    sess_bg uas_msg "$UE2_PORT" message_uas.xml
    ue msg "$UE_PORT" sess_message_uac.xml -s bob -key caller alice || rc=1
    sess_wait uas_msg || rc=1
    return $rc
}

t_sess_unknown() {
    local rc=0
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_fail unknown alice nobody 404 || rc=1
    return $rc
}

t_sess_unregistered() {
    local rc=0
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_fail noservice alice sessn 480 || rc=1
    sess_fail unreg alice sessu 480 || rc=1
    return $rc
}

t_sess_ifc_as() {
    local rc=0 AS_PORT
    pick_ports AS_PORT
    local hops="127.0.0.1:$P_PORT 127.0.0.1:$S_PORT 127.0.0.1:$S_PORT 127.0.0.1:$S_PORT 127.0.0.1:$P_PORT"
    sess_ifc sessa "sess_as_$AS_PORT" "$AS_PORT" continue || rc=1
    register rega register.xml sessa sessa-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1
    sess_bg as "$AS_PORT" sess_as.xml -key shost 127.0.0.1 -key sport "$S_PORT"
    sess_call call sessa "$hops" || rc=1
    sess_wait as || rc=1
    grep -q ';odi=' "$OUT/as.msg" || {
        echo "the AS saw no ODI Route" >&2
        rc=1
    }
    return $rc
}

t_sess_as_down() {
    local rc=0 DEAD_PORT t0 t1 ms limit
    pick_ports DEAD_PORT
    local hops="127.0.0.1:$P_PORT 127.0.0.1:$S_PORT 127.0.0.1:$S_PORT 127.0.0.1:$P_PORT"
    # SESSION_CONTINUED: the call goes on without the AS
    sess_ifc sessa "sess_dc_$DEAD_PORT" "$DEAD_PORT" continue || rc=1
    register rega register.xml sessa sessa-secret 600 -key alg MD5 || rc=1
    sess_reg_bob || rc=1
    sess_call call sessa "$hops" || rc=1
    # SESSION_TERMINATED: an error within [scscf] as_timeout_ms (+ slack)
    sess_ifc sessa "sess_dt_$DEAD_PORT" "$DEAD_PORT" terminate || rc=1
    register regt register.xml sessa sessa-secret 600 -key alg MD5 || rc=1
    t0=$(date +%s%N)
    sess_fail down sessa bob 408 500 || rc=1
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    limit=$(scaled 4000)
    say "error final after $ms ms (bound $limit ms; as_timeout_ms = $(scaled 1000))"
    [ $ms -le "$limit" ] || rc=1
    return $rc
}

t_sess_as_answers() {
    local rc=0 AS_PORT
    pick_ports AS_PORT
    sess_ifc sessa "sess_ma_$AS_PORT" "$AS_PORT" terminate MESSAGE || rc=1
    register rega register.xml sessa sessa-secret 600 -key alg MD5 || rc=1
    sess_bg as "$AS_PORT" sess_as_answer.xml
    ue msg "$UE_PORT" sess_message_uac.xml -s bob -key caller sessa || rc=1
    sess_wait as || rc=1
    # sessu never registers: its terminating-unregistered service answers
    sess_ifc sessu "sess_mu_$AS_PORT" "$AS_PORT" terminate MESSAGE terminating-unregistered || rc=1
    register regb register.xml alice alice-secret 600 -key alg MD5 || rc=1
    sess_bg as2 "$AS_PORT" sess_as_answer.xml
    ue msg2 "$UE_PORT" sess_message_uac.xml -s sessu -key caller alice || rc=1
    sess_wait as2 || rc=1
    return $rc
}
