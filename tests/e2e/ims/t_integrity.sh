# tests/e2e/ims/t_integrity.sh - integrity-protected (TS 24.229 §5.2.2.1,
# §5.4.1.2.1A, §7.2A.2; TS 33.203 Annex H): the P-CSCF's word to the S-CSCF
# (sourced by ims_e2e.sh; docs/internals/cscf.md "integrity-protected").
#   integrity_forged  alice is registered; a REGISTER claiming
#                     integrity-protected="tls-yes" with empty credentials is
#                     challenged (401, sipp/ip_forged.xml) whether it is sent
#                     to the P-CSCF (which removes the UE's value), to the
#                     I-CSCF (which removes it from anyone outside the trust
#                     domain) or straight to the S-CSCF (which believes only
#                     hops of the trust domain); each says so in its log
#   integrity_tls     baresip registers over TLS, then re-registers on the
#                     same connection (regint 20: libre refreshes 10% before the
#                     expiry): the P-CSCF marks that REGISTER "tls-yes" and
#                     the S-CSCF takes it without checking the credentials

ip_logged() { # WHAT: a line in the fixture's logs matches WHAT
    grep -qE "$1" "$FIXDIR"/*.log
}

t_integrity_forged() {
    local rc=0 save=$P_PORT
    register reg register.xml alice alice-secret 600 -key alg MD5 || return 1
    ue via-p "$UE_PORT" ip_forged.xml -s alice -key expires 600 || rc=1
    ip_logged "event=integrity_protected_removed flow=udp:127.0.0.1:$UE_PORT" || {
        echo "the P-CSCF did not log removing the UE's integrity-protected" >&2
        rc=1
    }
    peer via-i ip_forged.xml -s alice -key expires 600 || rc=1
    ip_logged "event=integrity_protected_removed impu=sip:alice@$REALM" || {
        echo "the I-CSCF did not log removing a peer's integrity-protected" >&2
        rc=1
    }
    P_PORT=$S_PORT
    ue to-s "$UE2_PORT" ip_forged.xml -s alice -key expires 600 || rc=1
    P_PORT=$save
    ip_logged "event=integrity_protected_ignored impi=alice@$REALM why=untrusted_hop" || {
        echo "the S-CSCF did not log ignoring an untrusted integrity-protected" >&2
        rc=1
    }
    return $rc
}

t_integrity_tls() {
    local u=bsipr rc=0
    need baresip perl
    bs_user "$u" || return 1
    bs_start bs-ip
    BS_REGINT=20 bs_register "$u" tls || rc=1
    if [ $rc = 0 ]; then
        # the first REGISTER over the new connection was "tls-pending":
        # challenged and checked; the refresh on it is "tls-yes"
        wait_for 40 "the S-CSCF to take a tls-yes re-registration of $u" ip_logged \
            "event=credentials impi=$u@$REALM impu=sip:$u@$REALM verdict=[0-9]+ by=tls-yes"
        say "integrity_tls: $u re-registered over its TLS connection without a challenge"
        # and it is still registered: a MESSAGE reaches baresip
        peer msg-ip bs_message.xml -s "$u" || rc=1
    fi
    bs_stop
    return $rc
}
