# shellcheck shell=bash
# tests/e2e/ims/t_scscfsel.sh - the I-CSCF selects an S-CSCF by capabilities
# and fails over to the next one (TS 24.229 §5.3.1.2-3, TS 29.228 §6.7;
# src/cscf/icscf.c), against real S-CSCF processes.  Sourced by ims_e2e.sh
# (its helpers: ue, register, deliver_to, start, stop, pick_ports, write_conf).
#
# Its own stack (fresh store, ports and state dirs; the ims1 fixture's
# processes are not touched):
#   ssedge  P-CSCF, I-CSCF and HSS in one process; [icscf] scscf lists
#           sip:127.0.0.1:C "8,9"  (optional 8 but not the mandatory 7: never
#                                   to be selected; a sipp trap listens there
#                                   and answers 500, which would fail the test)
#           sip:127.0.0.1:A "7"
#           sip:127.0.0.1:B "7,8"  (the mandatory and the optional one)
#   ssa     an S-CSCF alone on port A (Cx over Diameter to ssedge)
#   ssb     an S-CSCF alone on port B; "ssb-dead" is the same S-CSCF with a
#           Diameter peer that never opens, so it answers 503 + Retry-After
# Users capa, capb, capc (Digest) are in subscriptions requiring capability
# 7 (mandatory) and 8 (optional); no S-CSCF of the store has 7, so the UAA
# carries only the capabilities and the I-CSCF ranks its own list.  Which
# S-CSCF registered a user is read from the Service-Route of its 200.
#
#   scscf_select
#     1. capa registers: B (it has the optional capability too), not A or C.
#     2. B answers 503 (ssb-dead): capb registers at A.
#     3. B answers 503 and A is stopped (SIGSTOP, no answer within
#        [icscf] scscf_timeout_ms): capc gets 503 with B's Retry-After.
#     4. A runs again, B is healthy but stopped: capa, whom the HSS keeps at
#        B, re-registers.  The UAA names B; B does not answer; the I-CSCF asks
#        the HSS again for capabilities (REGISTRATION_AND_CAPABILITIES) and
#        capa ends at A.  A MESSAGE to capa through the I-CSCF (LIR) reaches
#        her UE: the HSS now names A.

SS_SAVE=

# ss_served_by NAME PORT: the 200 of sipp run NAME has a Service-Route
# through the S-CSCF on PORT
ss_served_by() {
    local sr
    sr=$(grep -i '^Service-Route:' "$OUT/$1.msg" | tail -n 1)
    case $sr in
    *"@127.0.0.1:$2;"* | *"<sip:127.0.0.1:$2;"*) return 0 ;;
    esac
    say "FAIL: $1: want a Service-Route through 127.0.0.1:$2, got '${sr:-none}'"
    return 1
}

# ss_scscf NAME CONF PORT: an S-CSCF process, up when it listens (the caller
# waits for the Diameter links where it needs them: ssb-dead has none)
ss_scscf() {
    start "$1" "$2"
    wait_for 20 "the $1 S-CSCF on udp $3" udp_bound "$3"
}

ss_user() { # NAME: Digest user NAME@REALM in subscription cap-NAME (7 mandatory, 8 optional)
    local u=$1 ctl
    ctl="$(dirname "$IMS_BIN")/imscloudctl"
    "$ctl" -c "$SS_DIR/edge.conf" user add "$u@$REALM" --password "$u-secret" \
        --impu "sip:$u@$REALM" --sub "cap-$u" >"$OUT/ctl-$u.out" 2>&1 &&
        "$ctl" -c "$SS_DIR/edge.conf" sub modify "cap-$u" --cap-mandatory 7 \
            --cap-optional 8 >>"$OUT/ctl-$u.out" 2>&1 || {
        cat "$OUT/ctl-$u.out" >&2
        die "provisioning $u failed"
    }
}

# ss_dia_links N: N S-CSCFs have their Diameter connection to the HSS
ss_dia_links() { [ "$(dia_conns)" -ge "$1" ]; }

ss_stack() {
    SS_SAVE="$P_PORT $I_PORT $S_PORT $DIA_PORT ${PT_PORT:-} $PROCS"
    local a b c dead
    pick_ports P_PORT I_PORT a b c dead DIA_PORT
    SS_A=$a SS_B=$b
    PT_PORT=
    SS_DIR=$TMP/scscfsel
    rm -rf "$SS_DIR"
    mkdir -p "$SS_DIR"
    mkdir -m 700 "$SS_DIR/hss" "$SS_DIR/a" "$SS_DIR/b" "$SS_DIR/bd"
    # the seed's own S-CSCF (capability 1) is A: the seeded users' S-CSCF and
    # the decoy for unknown users ([icscf] scscf without capabilities)
    S_PORT=$a
    "$IMS_SEED" "sqlite:$SS_DIR/hss/hss.db" "$SS_DIR/hss/keys" "sip:127.0.0.1:$a" \
        >"$OUT/scscfsel.seed.log" 2>&1 || die "seeding failed: $(cat "$OUT/scscfsel.seed.log")"
    write_conf "$SS_DIR/edge.conf" pcscf,icscf,hss "$SS_DIR/hss" hss.ims.test
    printf '\n[icscf]\nscscf = sip:127.0.0.1:%s 8,9\nscscf = sip:127.0.0.1:%s 7\nscscf = sip:127.0.0.1:%s 7,8\nscscf_timeout_ms = %s\n' \
        "$c" "$a" "$b" "$(scaled 1500)" >>"$SS_DIR/edge.conf"
    S_PORT=$a write_conf "$SS_DIR/a.conf" scscf "$SS_DIR/a" scscfa.ims.test "$DIA_PORT"
    S_PORT=$b write_conf "$SS_DIR/b.conf" scscf "$SS_DIR/b" scscfb.ims.test "$DIA_PORT"
    # nothing listens on dead: this S-CSCF's MARs fail at once (no peer)
    S_PORT=$b write_conf "$SS_DIR/bd.conf" scscf "$SS_DIR/bd" scscfb.ims.test "$dead"
    printf '\n[scscf]\nretry_after = 17\n' >>"$SS_DIR/bd.conf"
    ss_user capa
    ss_user capb
    ss_user capc
    start ssedge "$SS_DIR/edge.conf"
    PROCS="$PROCS ssedge ssa ssb ssb-dead"
    wait_for 20 "the ssedge HSS on Diameter port $DIA_PORT" tcp_bound "$DIA_PORT"
    wait_for 20 "the ssedge P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    ss_scscf ssa "$SS_DIR/a.conf" "$a"
    ss_scscf ssb "$SS_DIR/b.conf" "$b"
    wait_for 20 "both S-CSCFs to connect to the HSS" ss_dia_links 2
    # the trap: whatever reaches C gets 500 (the I-CSCF relays it: a failure)
    (cd "$OUT" && exec timeout -k 5 "$(scaled 300)" sipp -sf "$HERE/sipp/ss_trap.xml" \
        -i 127.0.0.1 -p "$c" -m 1 -nostdin -trace_msg -message_file trap.msg \
        >trap.out 2>&1) &
    SS_TRAP=$!
    wait_for 10 "the trap on udp $c" udp_bound "$c"
    say "scscfsel stack up: P-CSCF $P_PORT, I-CSCF $I_PORT, S-CSCFs A $a, B $b, C $c (a trap)"
}

ss_cont() { # resume whatever a failed step left stopped
    local n
    for n in ssa ssb; do
        [ -s "$FIXDIR/$n.pid" ] && kill -CONT "$(cat "$FIXDIR/$n.pid")" 2>/dev/null
    done
    return 0
}

ss_abort() {
    local n
    ss_cont
    [ -z "${SS_TRAP:-}" ] || kill "$SS_TRAP" 2>/dev/null || true
    for n in ssa ssb ssb-dead ssedge; do
        [ -s "$FIXDIR/$n.pid" ] && stop "$n" >/dev/null
    done
    return 0
}

ss_unstack() {
    local rc=0 n
    ss_cont
    for n in ssa ssb ssb-dead; do
        if [ -s "$FIXDIR/$n.pid" ]; then stop_checked "$n" || rc=1; fi
    done
    stop_checked ssedge || rc=1
    kill "$SS_TRAP" 2>/dev/null || true
    wait "$SS_TRAP" 2>/dev/null || true
    if grep -q 'REGISTER' "$OUT/trap.msg" 2>/dev/null; then
        say "FAIL: a REGISTER reached S-CSCF C, which lacks the mandatory capability"
        rc=1
    fi
    read -r P_PORT I_PORT S_PORT DIA_PORT PT_PORT PROCS <<<"$SS_SAVE" || true
    return $rc
}

t_scscf_select() {
    trap ss_abort EXIT
    ss_stack
    local rc=0
    # 1. by capabilities: B has the optional one too
    register sel1 register.xml capa capa-secret 600 -key alg MD5 || rc=1
    ss_served_by sel1 "$SS_B" || rc=1
    # 2. B answers 503: the next candidate, A
    stop_checked ssb || rc=1
    ss_scscf ssb-dead "$SS_DIR/bd.conf" "$SS_B"
    register sel2 register.xml capb capb-secret 600 -key alg MD5 || rc=1
    ss_served_by sel2 "$SS_A" || rc=1
    # 3. B 503, A silent: B's 503 and its Retry-After
    kill -STOP "$(cat "$FIXDIR/ssa.pid")"
    ue sel3 "$UE_PORT" register_503.xml -s capc -key expires 600 || rc=1
    grep -qi '^Retry-After: *17' "$OUT/sel3.msg" || {
        say "FAIL: sel3: the 503 does not carry B's Retry-After: 17"
        rc=1
    }
    kill -CONT "$(cat "$FIXDIR/ssa.pid")"
    # 4. the S-CSCF the HSS names does not answer: capabilities again, A
    stop_checked ssb-dead || rc=1
    ss_scscf ssb "$SS_DIR/b.conf" "$SS_B"
    wait_for 20 "both S-CSCFs to connect to the HSS" ss_dia_links 2
    kill -STOP "$(cat "$FIXDIR/ssb.pid")"
    register sel4 register.xml capa capa-secret 600 -key alg MD5 || rc=1
    ss_served_by sel4 "$SS_A" || rc=1
    kill -CONT "$(cat "$FIXDIR/ssb.pid")"
    deliver_to capa message_200.xml || rc=1
    ss_unstack || rc=1
    trap - EXIT
    return $rc
}
