# tests/e2e/ims/t_baresip.sh - a real softphone (baresip) through the IMS core
# (sourced by ims_e2e.sh; each test starts its own headless baresip).
#   baresip_udp   baresip registers to the P-CSCF over UDP (Digest MD5): its
#                 ctrl_tcp says REGISTER_OK; a MESSAGE from another network to
#                 that user (I-CSCF, LIR, S-CSCF, Path, P-CSCF) is answered by
#                 baresip itself (sipp/bs_message.xml checks its Server header)
#   baresip_tls   the same over TLS to the P-CSCF's TLS listener (baresip
#                 trusts the fixture's CA); the MESSAGE reaches it on its TLS
#                 connection
#   baresip_call  baresip calls a user that a sipp UE registered: INVITE
#                 P -> S (orig) -> I -> S (term) -> P -> the sipp UAS, which
#                 answers 180/200 (sipp/bs_call_uas.xml: the contact as
#                 Request-URI, a Record-Route, the caller asserted); baresip
#                 reports CALL_ESTABLISHED, hangs up, the UAS answers the BYE
#   baresip_call_tls  the same call with baresip on the P-CSCF's TLS port
# On ims6 (t_baresip.cmake) baresip and the sipp callee are on ::1.
# baresip is driven through ctrl_tcp by baresip_ctl.pl; its users are
# provisioned with imscloudctl as Digest MD5 only: libre (baresip 1.0) gives
# up on a 401 whose first challenge is SHA-256 instead of taking the MD5 one.

BS_PID=
BS_CTRL=
BS_DIR=

bs_ctl() { # LOGNAME STEP...: baresip_ctl.pl against the running baresip
    local log=$1
    shift
    perl "$HERE/baresip_ctl.pl" "$BS_CTRL" "$(scaled 15)" "$@" >"$OUT/$log.ctl.log" 2>&1 || {
        echo "---- baresip ctrl_tcp ($OUT/$log.ctl.log)" >&2
        tail -n 8 "$OUT/$log.ctl.log" >&2
        return 1
    }
}

# bs_user USER: a Digest MD5-only subscriber USER@REALM, password USER-secret
bs_user() {
    local u=$1 conf ctl
    ctl=$(dirname "$IMS_BIN")/imscloudctl
    conf=$(hss_conf)
    "$ctl" -c "$conf" impi show "$u@$REALM" >/dev/null 2>&1 && return 0
    "$ctl" -c "$conf" user add "$u@$REALM" --password "$u-secret" --impu "sip:$u@$REALM" \
        --scheme md5 >"$OUT/ctl-$u.out" 2>&1 || {
        cat "$OUT/ctl-$u.out" >&2
        return 1
    }
}

# bs_start NAME: a headless baresip in $OUT/NAME (no audio device: aubridge
# pairs its source and player), ctrl_tcp on a free port, no account yet
bs_start() {
    BS_DIR=$OUT/$1
    mkdir -p "$BS_DIR"
    pick_ports BS_CTRL
    cat >"$BS_DIR/config" <<EOT
poll_method		epoll
sip_listen		$HOST:0
sip_cafile		$TMP/certs/ca.pem
audio_player		aubridge,bs
audio_source		aubridge,bs
audio_alert		aubridge,alert
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_tmp		uuid.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$BS_CTRL
EOT
    : >"$BS_DIR/accounts"
    (cd "$BS_DIR" && exec baresip -f "$BS_DIR" </dev/null >"$BS_DIR/baresip.log" 2>&1) &
    BS_PID=$!
    trap bs_stop EXIT # a die on the way must not leave it running
    local deadline=$(($(date +%s) + $(scaled 10)))
    until tcp_bound "$BS_CTRL"; do
        kill -0 "$BS_PID" 2>/dev/null && [ "$(date +%s)" -lt $deadline ] || {
            tail -n 20 "$BS_DIR/baresip.log" >&2
            die "baresip did not start (ctrl_tcp $BS_CTRL)"
        }
        sleep 0.1
    done
}

# bs_stop: SIGTERM (baresip de-registers on the way out), then wait for it
bs_stop() {
    [ -n "$BS_PID" ] || return 0
    kill -TERM "$BS_PID" 2>/dev/null || true
    local deadline=$(($(date +%s) + $(scaled 10)))
    while kill -0 "$BS_PID" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$BS_PID" 2>/dev/null || true
    wait "$BS_PID" 2>/dev/null || true
    BS_PID=
    trap - EXIT
}

# bs_register USER udp|tls [ACCOUNT_PARAMS]: a new baresip account for USER
# through the P-CSCF's UDP or TLS port, refreshed every ${BS_REGINT:-600} s;
# passes on ctrl_tcp's REGISTER_OK
bs_register() {
    local u=$1 tp=$2 port=$P_PORT uri
    [ "$tp" = udp ] || port=$PT_PORT
    uri="<sip:$u@$REALM;transport=$tp>;auth_user=$u@$REALM;auth_pass=$u-secret"
    uri="$uri;outbound=\"sip:$HOST:$port;transport=$tp\";regint=${BS_REGINT:-600}${3:-}"
    bs_ctl "reg-$u" fail:REGISTER_FAIL "cmd:uanew $uri" wait:REGISTER_OK || return 1
    say "baresip: $u registered over $tp (REGISTER_OK)"
}

bs_reg_and_message() { # USER udp|tls
    local rc=0
    need baresip perl
    bs_user "$1" || return 1
    bs_start "bs-$2"
    bs_register "$1" "$2" || rc=1
    [ $rc != 0 ] || peer "msg-$2" bs_message.xml -s "$1" || rc=1
    bs_stop
    return $rc
}

t_baresip_udp() { bs_reg_and_message bsipu udp; }
t_baresip_tls() { bs_reg_and_message bsipt tls; }

bs_call() { # udp|tls: the caller's transport to the P-CSCF
    local tp=$1 rc=0 rc_uas=0 uas_pid ok secs
    need baresip perl
    bs_user bsipa && bs_user bsipb || return 1
    # the callee: sipp registers from UE_PORT, then answers there
    register regb register.xml bsipb bsipb-secret 600 -key alg MD5 || return 1
    bs_start "bs-call-$tp"
    bs_register bsipa "$tp" || rc=1
    if [ $rc = 0 ]; then
        secs=$(scaled 30)
        (cd "$OUT" && exec timeout -k 5 "$((secs + 5))" sipp -sf "$HERE/sipp/bs_call_uas.xml" \
            -i "$ADDR" -p "$UE_PORT" -s bsipb -m 1 -nostdin \
            -trace_stat -stf uas.stat.csv -fd 1 -trace_msg -message_file uas.msg \
            -trace_err -error_file uas.err.log -timeout "${secs}s" -timeout_error \
            >uas.out 2>&1) &
        uas_pid=$!
        local deadline=$(($(date +%s) + $(scaled 10)))
        until udp_bound "$UE_PORT"; do
            kill -0 $uas_pid 2>/dev/null && [ "$(date +%s)" -lt $deadline ] ||
                die "the sipp UAS did not listen on $UE_PORT"
            sleep 0.1
        done
        bs_ctl call fail:CALL_CLOSED "cmd:dial sip:bsipb@$REALM" wait:CALL_ESTABLISHED \
            unfail:CALL_CLOSED "cmd:hangup" wait:CALL_CLOSED || rc=1
        [ $rc = 0 ] && say "baresip: call over $tp to bsipb established and closed"
        [ $rc = 0 ] || kill -TERM $uas_pid 2>/dev/null || true
        wait $uas_pid || rc_uas=$?
        ok=$(sipp_stat "$OUT/uas.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
        say "uas: sipp exit $rc_uas, successful $ok (want 0, 1)"
        [ "$rc_uas" = 0 ] && [ "$ok" = 1 ] || {
            rc=1
            grep -E '^(SIP/2\.0 [0-9]|[A-Z]+ sip:[^ ]* SIP/2\.0)' "$OUT/uas.msg" 2>/dev/null |
                head -n 20 >&2 || true
            head -n 10 "$OUT/uas.err.log" >&2 2>/dev/null || true
        }
    fi
    bs_stop
    return $rc
}

t_baresip_call() { bs_call udp; }
t_baresip_call_tls() { bs_call tls; }

# baresip_outbound: baresip with RFC 5626 outbound (sipnat=outbound: reg-id,
# +sip.instance, Supported: outbound) over UDP and over TLS: the S-CSCF logs
# the registration as a flow (outbound=1), a MESSAGE reaches baresip on it,
# and over UDP baresip's STUN keep-alives (Flow-Timer: 5 in the fixture) are
# answered (the P-CSCF's imscloud_stun_answered_total grows)
bs_more_stun() { [ "$(stun_answered)" -gt "$1" ]; }

bs_outbound() { # udp|tls
    local tp=$1 u=bsipo$1 rc=0 n0
    need baresip perl curl
    bs_user "$u" || return 1
    n0=$(stun_answered) || die "no imscloud_stun_answered_total in the P-CSCF's /metrics"
    bs_start "bs-ob-$tp"
    bs_register "$u" "$tp" ";sipnat=outbound" || rc=1
    if [ $rc = 0 ] && ! grep -q "event=registered impu=sip:$u@$REALM .*outbound=1" "$FIXDIR"/*.log; then
        echo "the S-CSCF did not log $u's registration as an outbound flow" >&2
        rc=1
    fi
    [ $rc != 0 ] || peer "msg-ob-$tp" bs_message.xml -s "$u" || rc=1
    if [ $rc = 0 ] && [ "$tp" = udp ]; then
        wait_for 15 "baresip's STUN keep-alive to be answered" bs_more_stun "$n0"
        say "baresip: STUN keep-alives answered ($n0 -> $(stun_answered))"
    fi
    bs_stop
    return $rc
}

t_baresip_outbound() { bs_outbound udp && bs_outbound tls; }
