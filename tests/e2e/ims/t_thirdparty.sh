# tests/e2e/ims/t_thirdparty.sh - third-party REGISTER from the S-CSCF to
# application servers (TS 24.229 §5.4.1.7, TS 29.228 Annex B.2.2); sourced
# by ims_e2e.sh, so its helpers (register, peer, pick_ports...) are at hand.
#
# Each test provisions a fresh user tpXXXX@ims.test whose service profile has
# one iFC "Method REGISTER -> sip:127.0.0.1:AS_PORT" (imscloudctl against the
# running fixture's HSS), and a sipp UAS plays the AS on AS_PORT:
#   thirdparty         register: the AS gets REGISTER with To = the IMPU and
#                      Expires > 0, answers 200; de-register: Expires: 0
#   thirdparty_fail    the AS answers 500 and the iFC says SESSION_TERMINATED:
#                      the S-CSCF de-registers the user (the AS hears Expires: 0)
#                      and a MESSAGE to the user through the I-CSCF gets 480
#   thirdparty_continue  the same failure with SESSION_CONTINUED: the user stays
#                      registered (a MESSAGE through the I-CSCF reaches the UE)
#   thirdparty_expiry  the registration expires (2 s): the AS gets Expires: 0
#   thirdparty_body    an iFC (profile put) for initial and de-registration only,
#                      with ServiceInfo, IncludeRegisterRequest/Response: the AS
#                      gets a multipart body with all three; a re-registration
#                      sends nothing (the next REGISTER the AS sees is Expires: 0)

# tp_ctl ARGS...: imscloudctl with the config of the fixture's HSS process
tp_ctl() {
    "$(dirname "$IMS_BIN")/imscloudctl" -c "$(hss_conf)" "$@" >>"$OUT/ctl.out" 2>&1 || {
        echo "---- imscloudctl $*" >&2
        tail -n 5 "$OUT/ctl.out" >&2
        return 1
    }
}

# tp_user HANDLING: a new user (name in TP_USER) with a REGISTER iFC to the AS
# on a free port (AS_PORT), default handling continue|terminate
tp_user() {
    pick_ports AS_PORT
    TP_USER=tp$(printf '%04x%04x' "$RANDOM" "$RANDOM")
    tp_ctl profile ifc-add "$TP_USER" --priority 0 --method REGISTER \
        --as "sip:127.0.0.1:$AS_PORT" --default-handling "$1" &&
        tp_ctl user add "$TP_USER@$REALM" --password "$TP_USER-secret" \
            --impu "sip:$TP_USER@$REALM" --profile "$TP_USER"
}

# tp_as NAME SCENARIO sipp-args...: the AS (a sipp UAS for one REGISTER) in
# the background on AS_PORT; TP_AS_PID is its pid
tp_as() {
    local name=$1 sf=$2 secs
    shift 2
    secs=$(scaled 20)
    (cd "$OUT" && exec timeout -k 5 "$((secs + 5))" sipp -sf "$HERE/sipp/$sf" \
        -i 127.0.0.1 -p "$AS_PORT" -m 1 -nostdin -trace_stat -stf "$name.stat.csv" -fd 1 \
        -trace_msg -message_file "$name.msg" -trace_err -error_file "$name.err.log" \
        -timeout "${secs}s" -timeout_error "$@" >"$name.out" 2>&1) &
    TP_AS_PID=$!
    local deadline=$(($(date +%s) + $(scaled 10)))
    until udp_bound "$AS_PORT"; do
        kill -0 "$TP_AS_PID" 2>/dev/null && [ "$(date +%s)" -lt $deadline ] || {
            say "the AS ($name) did not listen on $AS_PORT"
            return 1
        }
        sleep 0.05
    done
}

# tp_as_done NAME: the AS exited 0 with one successful call
tp_as_done() {
    local name=$1 rc=0 ok
    wait "$TP_AS_PID" || rc=$?
    ok=$(sipp_stat "$OUT/$name.stat.csv" 'SuccessfulCall(C)' 2>/dev/null || echo '?')
    say "$name: sipp exit $rc, successful $ok (want 0, 1)"
    if [ "$rc" != 0 ] || [ "$ok" != 1 ]; then
        {
            echo "---- $name: SIP seen by the AS (all in $OUT/$name.msg)"
            grep -E '^(SIP/2\.0 [0-9]|[A-Z]+ sip:[^ ]* SIP/2\.0|To:|Expires:)' \
                "$OUT/$name.msg" 2>/dev/null | head -n 20 || true
            head -n 10 "$OUT/$name.err.log" 2>/dev/null || true
        } >&2
        return 1
    fi
}

t_thirdparty() {
    local rc=0
    tp_user terminate || return 1
    tp_as as_reg tp_as_reg.xml || return 1
    register reg register.xml "$TP_USER" "$TP_USER-secret" 600 -key alg MD5 || rc=1
    tp_as_done as_reg || rc=1
    tp_as as_dereg tp_as_dereg.xml || return 1
    register dereg deregister.xml "$TP_USER" "$TP_USER-secret" 0 -key alg MD5 || rc=1
    tp_as_done as_dereg || rc=1
    return $rc
}

t_thirdparty_fail() {
    local rc=0
    tp_user terminate || return 1
    tp_as as_500 tp_as_500.xml || return 1
    register reg register.xml "$TP_USER" "$TP_USER-secret" 600 -key alg MD5 || rc=1
    tp_as_done as_500 || rc=1
    # the network-initiated de-registration reaches the AS as well (its
    # REGISTER is retransmitted until this AS listens)
    tp_as as_dereg tp_as_dereg.xml || return 1
    tp_as_done as_dereg || rc=1
    peer gone message_480.xml -s "$TP_USER" || rc=1
    return $rc
}

t_thirdparty_continue() {
    local rc=0
    tp_user continue || return 1
    tp_as as_500 tp_as_500.xml || return 1
    register reg register.xml "$TP_USER" "$TP_USER-secret" 600 -key alg MD5 || rc=1
    tp_as_done as_500 || rc=1
    deliver_to "$TP_USER" message_200.xml || rc=1
    return $rc
}

t_thirdparty_expiry() {
    local rc=0
    tp_user continue || return 1
    tp_as as_reg tp_as_reg.xml || return 1
    register reg register.xml "$TP_USER" "$TP_USER-secret" 2 -key alg MD5 || rc=1
    tp_as_done as_reg || rc=1
    tp_as as_expired tp_as_dereg.xml || return 1
    tp_as_done as_expired || rc=1
    return $rc
}

t_thirdparty_body() {
    local rc=0
    pick_ports AS_PORT
    TP_USER=tp$(printf '%04x%04x' "$RANDOM" "$RANDOM")
    # RegistrationType 0 (initial) and 2 (de-registration), TS 29.228 Annex B.2.2
    printf '%s' "<InitialFilterCriteria><Priority>0</Priority><TriggerPoint>\
<ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated><Group>0</Group>\
<Method>REGISTER</Method><Extension><RegistrationType>0</RegistrationType>\
<RegistrationType>2</RegistrationType></Extension></SPT></TriggerPoint><ApplicationServer>\
<ServerName>sip:127.0.0.1:$AS_PORT</ServerName><DefaultHandling>0</DefaultHandling>\
<ServiceInfo>tp &amp; info</ServiceInfo><Extension><IncludeRegisterRequest/>\
<IncludeRegisterResponse/></Extension></ApplicationServer></InitialFilterCriteria>" \
        >"$OUT/ifc.xml"
    tp_ctl profile put "$TP_USER" "$OUT/ifc.xml" || return 1
    tp_ctl user add "$TP_USER@$REALM" --password "$TP_USER-secret" \
        --impu "sip:$TP_USER@$REALM" --profile "$TP_USER" || return 1
    tp_as as_body tp_as_body.xml || return 1
    register reg register.xml "$TP_USER" "$TP_USER-secret" 600 -key alg MD5 || rc=1
    tp_as_done as_body || rc=1
    tp_as as_dereg tp_as_dereg.xml || return 1
    register rereg reregister.xml "$TP_USER" "$TP_USER-secret" 600 -key alg MD5 || rc=1
    register dereg deregister.xml "$TP_USER" "$TP_USER-secret" 0 -key alg MD5 || rc=1
    tp_as_done as_dereg || rc=1
    return $rc
}
