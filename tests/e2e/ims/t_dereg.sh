# shellcheck shell=bash
# tests/e2e/ims/t_dereg.sh - the S-CSCF's own deregistration SARs reach an HSS
# that was down when they were first sent (src/cscf/dereg.c).  Sourced by
# ims_e2e.sh (its helpers: register, start, stop_checked, pick_ports,
# write_conf...).
#
# The test runs a stack of its own (fresh store, ports and state_dir; the
# fixture's processes are not touched): process "drhss" with the HSS alone,
# process "drcore" with the P-, I- and S-CSCF (Cx over Diameter).
#
#   dereg_retry  dave registers for 5 s; the HSS holds him registered.  The
#                HSS is stopped before his registration expires, so the
#                S-CSCF's SAR TIMEOUT_DEREGISTRATION finds no HSS; the HSS is
#                started again on the same store: within 20 s (the retries
#                come 1, 2, 4, 8 s apart) it holds dave not registered.
#                (Stopped HSS: the SARs get 3002 from the S-CSCF's own
#                Diameter node, or no connection at all.)
#                Without the retries it would hold him registered for good.
#   dereg_restart  dave registers for 5 s; the CSCFs' process is stopped at
#                once and started again after his registration lapsed: the
#                S-CSCF finds it lapsed in its file ([scscf] persist) and
#                sends the SAR TIMEOUT_DEREGISTRATION the sweep would have:
#                within 20 s the HSS holds dave not registered.

# dr_state IMPU: the registration state the HSS's store holds for IMPU
# (imscloudctl impu show: its reg_state line)
dr_state() {
    "$(dirname "$IMS_BIN")/imscloudctl" -c "$DR_DIR/hss.conf" impu show "$1" 2>/dev/null |
        awk '$1 == "reg_state:" { print $2 }'
}
dr_is() { [ "$(dr_state "$1")" = "$2" ]; }
dr_dia_up() { [ "$(dia_conns)" -ge 1 ]; }

# dr_register_dave: dave registers for 5 s and the HSS holds him registered
dr_register_dave() {
    register dr_reg register.xml dave dave-secret 5 -key alg MD5 || return 1
    wait_for 10 "the HSS to hold dave registered" dr_is "sip:dave@$REALM" registered
}

# dr_await_not_registered IMPU WHEN: the HSS holds IMPU not registered within
# 20 s, or a FAIL line that says WHEN
dr_await_not_registered() {
    local deadline=$(($(date +%s) + $(scaled 20)))
    until dr_is "$1" not-registered; do
        if [ "$(date +%s)" -ge $deadline ]; then
            say "FAIL: the HSS still holds $1 $(dr_state "$1") $2"
            return 1
        fi
        sleep 0.2
    done
    say "the HSS holds $1 not-registered $2"
}

dr_hss_start() {
    start drhss "$DR_DIR/hss.conf"
    wait_for 20 "the drhss HSS on Diameter port $DIA_PORT" tcp_bound "$DIA_PORT"
}

# dr_abort: a helper died (wait_for exits the test): stop what we started
dr_abort() {
    local n
    for n in drcore drhss; do
        [ -s "$FIXDIR/$n.pid" ] && stop "$n" >/dev/null
    done
    return 0
}

dr_stack() {
    own_stack_begin dereg
    DR_DIR=$STACK_DIR
    mkdir -m 700 "$DR_DIR/core"
    write_conf "$DR_DIR/hss.conf" hss "$DR_DIR/hss" hss.ims.test
    write_conf "$DR_DIR/core.conf" pcscf,icscf,scscf "$DR_DIR/core" cscf.ims.test "$DIA_PORT"
    PROCS="$PROCS drhss drcore"
    dr_hss_start
    start drcore "$DR_DIR/core.conf"
    wait_for 20 "the drcore P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    wait_for 20 "the CSCFs to connect to the HSS" dr_dia_up
    say "dereg stack up: P-CSCF $P_PORT, S-CSCF $S_PORT, HSS $DIA_PORT (logs in $FIXDIR)"
}

dr_unstack() {
    local rc=0
    stop_checked drcore || rc=1
    if [ -s "$FIXDIR/drhss.pid" ]; then stop_checked drhss || rc=1; fi
    own_stack_end
    return $rc
}

t_dereg_retry() {
    trap dr_abort EXIT
    dr_stack
    local rc=0 dave="sip:dave@$REALM"
    dr_register_dave || rc=1
    # the HSS goes before dave's 5 s are up: the expiry's SAR finds nobody
    stop_checked drhss || rc=1
    dr_is "$dave" registered || { say "FAIL: dave deregistered before the HSS stopped"; rc=1; }
    sleep "$(scaled 7)"
    dr_hss_start
    wait_for 20 "the S-CSCF to reconnect to the HSS" dr_dia_up
    dr_await_not_registered "$dave" "after the deregistration's retries" || rc=1
    dr_unstack || rc=1
    trap - EXIT
    return $rc
}

t_dereg_restart() {
    trap dr_abort EXIT
    dr_stack
    local rc=0 dave="sip:dave@$REALM"
    dr_register_dave || rc=1
    # down before dave's 5 s are up (his row is written behind within ms)
    stop_checked drcore || rc=1
    dr_is "$dave" registered || { say "FAIL: dave deregistered before the stop"; rc=1; }
    sleep "$(scaled 7)"
    start drcore "$DR_DIR/core.conf"
    wait_for 20 "the drcore P-CSCF on udp $P_PORT" udp_bound "$P_PORT"
    dr_await_not_registered "$dave" "after the S-CSCF's restart" || rc=1
    dr_unstack || rc=1
    trap - EXIT
    return $rc
}
