# shellcheck shell=bash
# tests/e2e/ims/t_persist.sh - the S-CSCF's registrations survive a restart
# ([scscf] persist; src/cscf/reg_persist.h).  Sourced by ims_e2e.sh (its helpers: ue, register,
# deliver_to, start, stop, pick_ports, write_conf...).
#
# The test runs a stack of its own (fresh store, ports and state_dir; the
# fixture's processes are not touched): process "psedge" with the HSS, the
# P-CSCF and the I-CSCF, and process "psscscf" with the S-CSCF alone (Cx over
# Diameter), which is the one restarted.  The P-CSCF stays up because its
# flow tokens are keyed per process (a P-CSCF restart loses its flows, and
# the Path the S-CSCF stored would no longer be accepted): that is the
# P-CSCF's state, not the S-CSCF's.
#
#   persist   bob registers (AKA); once his row is in <state_dir>/scscf-reg.db
#             the S-CSCF is stopped (SIGTERM, a clean stop) and started again
#             on the same state_dir: a MESSAGE to bob through the I-CSCF
#             (LIR -> S-CSCF -> Path -> P-CSCF) reaches bob's sipp UAS.  Then
#             alice registers, her row reaches the file, the S-CSCF is killed
#             (SIGKILL) and started again: a MESSAGE to alice reaches her UAS.

# ps_row_count IMPU: rows for IMPU in the S-CSCF's file (0 while absent)
ps_row_count() {
    sqlite3 -cmd '.timeout 2000' "file:$PS_DIR/s/scscf-reg.db?mode=ro" \
        "SELECT count(*) FROM reg WHERE impu = '$1'" 2>/dev/null || echo 0
}
ps_on_disk() { [ "$(ps_row_count "$1")" = 1 ]; }

# ps_scscf_start: the S-CSCF process on its state_dir; up when it listens
ps_scscf_start() {
    start psscscf "$PS_DIR/scscf.conf"
    wait_for 20 "the psscscf S-CSCF on udp $S_PORT" udp_bound "$S_PORT"
}

# ps_kill9 NAME: SIGKILL, then forget the process (no clean stop expected)
ps_kill9() {
    local name=$1 pid deadline
    pid=$(cat "$FIXDIR/$name.pid")
    kill -KILL "$pid"
    deadline=$(($(date +%s) + $(scaled 10)))
    until [ -e "$FIXDIR/$name.rc" ]; do
        [ "$(date +%s)" -lt $deadline ] || die "$name did not die after SIGKILL"
        sleep 0.1
    done
    cp "$FIXDIR/$name.log" "$OUT/$name.killed.log" 2>/dev/null || true
    rm -f "$FIXDIR/$name.pid" "$FIXDIR/$name.rc"
}

ps_stack() {
    own_stack_begin persist
    PS_DIR=$STACK_DIR
    mkdir -m 700 "$PS_DIR/s"
    write_conf "$PS_DIR/edge.conf" pcscf,icscf,hss "$PS_DIR/hss" hss.ims.test
    write_conf "$PS_DIR/scscf.conf" scscf "$PS_DIR/s" scscf.ims.test "$DIA_PORT"
    printf '\n[scscf]\npersist = yes\n' >>"$PS_DIR/scscf.conf" # the default, said out loud
    start psedge "$PS_DIR/edge.conf"
    PROCS="$PROCS psedge psscscf"
    wait_for 20 "the psedge HSS on Diameter port $DIA_PORT" tcp_bound "$DIA_PORT"
    wait_for 20 "the psedge P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    ps_scscf_start
    wait_for 20 "the S-CSCF to connect to the HSS" ps_dia_up
    say "persist stack up: P-CSCF $P_PORT, I-CSCF $I_PORT, S-CSCF $S_PORT (logs in $FIXDIR)"
}
ps_dia_up() { [ "$(dia_conns)" -ge 1 ]; }

# ps_abort: a helper died (wait_for exits the test): stop what we started,
# so no process outlives the test
ps_abort() {
    local n
    for n in psscscf psedge; do
        [ -s "$FIXDIR/$n.pid" ] && stop "$n" >/dev/null
    done
    return 0
}

ps_unstack() {
    local rc=0
    if [ -s "$FIXDIR/psscscf.pid" ]; then stop_checked psscscf || rc=1; fi
    stop_checked psedge || rc=1
    own_stack_end
    return $rc
}

t_persist() {
    need sqlite3
    trap ps_abort EXIT
    ps_stack
    local rc=0
    # 1. bob registers; his row reaches the file (write-behind); SIGTERM
    ue reg_bob "$UE_PORT" register_aka.xml -s bob -au "bob@$REALM" -key expires 600 || rc=1
    wait_for 10 "bob's registration on disk" ps_on_disk "sip:bob@$REALM"
    stop_checked psscscf || rc=1
    ps_scscf_start
    grep -q 'event=registrations_restored .* n=1 ' "$FIXDIR/psscscf.log" || {
        say "FAIL: the S-CSCF did not restore bob: $(grep registrations_ "$FIXDIR/psscscf.log")"
        rc=1
    }
    deliver_to bob message_200.xml || rc=1
    # 2. alice registers (MAR, SAR: the restarted S-CSCF's Diameter link
    # first); once her row is on disk, SIGKILL: nothing runs at exit
    wait_for 20 "the S-CSCF to reconnect to the HSS" ps_dia_up
    register reg_alice register.xml alice alice-secret 600 -key alg MD5 || rc=1
    wait_for 10 "alice's registration on disk" ps_on_disk "sip:alice@$REALM"
    ps_kill9 psscscf
    ps_scscf_start
    deliver_to alice message_200.xml || rc=1
    # and bob is still there too
    deliver_to bob message_200.xml || rc=1
    ps_unstack || rc=1
    trap - EXIT
    return $rc
}
