# shellcheck shell=bash
# tests/e2e/ims/t_ipv6.sh - IMS at a dual-stack P-CSCF (sourced by ims_e2e.sh;
# fixture ims6: the I- and S-CSCF on ::1 only, the P-CSCF on ::1 and on
# 127.0.0.1).  The generic tests (register_md5, sess_call, lir ...) run on ims6
# with every UE on ::1 (t_ipv6.cmake); these put one UE on IPv4:
#
#   dual_stack_register  vera registers over IPv4 (UDP, then TCP): her
#                        contact is her IPv4 address, and the Path the S-CSCF
#                        keeps names the P-CSCF by its IPv6 address, the one
#                        the IPv6-only S-CSCF reaches it at (RFC 3327 §5.2); a
#                        de-registration removes the binding
#   dual_stack_call      bob registers over IPv4, alice over IPv6 and calls
#                        him; bob answers and hangs up (his BYE follows his
#                        route set).  The P-CSCF that sends the INVITE to bob
#                        over IPv4 got it over IPv6, so it record-routes twice
#                        (RFC 5658, src/proxy/fwd.c): bob's route set starts
#                        at its IPv4 address, and every hop after that is IPv6
#   dual_stack_message   a MESSAGE from another network (IPv6, at the I-CSCF)
#                        reaches vera at her IPv4 contact, and one she sends
#                        over IPv4 reaches bob at his IPv6 one

# ds_v4 CMD...: CMD (ue, register, sess_bg ...) with its UE on IPv4
ds_v4() { UE_ADDR=127.0.0.1 "$@"; }

# ds_hdr NAME HEADER: the host:port of the first URI in HEADER of the last
# 200 sipp NAME received
ds_hdr() {
    tr -d '\r' <"$OUT/$1.msg" |
        awk -v h="$(tr 'A-Z' 'a-z' <<<"$2"):" '/^SIP\/2\.0 200/ { in200 = 1 } in200 && index(tolower($0), h) == 1 { v = $0 } /^$/ { in200 = 0 } END { print v }' |
        sed -n 's/^[^<]*<sip:[^@>]*@\([^;>]*\).*/\1/p'
}

# vera (ims_seed.c): no other test registers her, so her de-registration
# leaves no binding at all (deregister.xml checks the 200 lists no Contact)
t_dual_stack_register() {
    local rc=0 path name contact transport
    for name in reg reg_tcp; do
        transport=u1
        [ $name = reg ] || transport=t1
        ds_v4 register "$name" register.xml vera vera-secret 600 -key alg MD5 -t $transport || rc=1
        path=$(ds_hdr "$name" Path)
        contact=$(ds_hdr "$name" Contact)
        say "$name: vera over IPv4: Contact $contact (want 127.0.0.1:$UE_PORT), Path $path (want $HOST:$P_PORT)"
        [ "$contact" = "127.0.0.1:$UE_PORT" ] && [ "$path" = "$HOST:$P_PORT" ] || rc=1
    done
    ds_v4 register dereg deregister.xml vera vera-secret 0 -key alg MD5 -t t1 || rc=1
    return $rc
}

t_dual_stack_call() {
    local rc=0 rr rr200 first second rest h
    # bob on IPv4 (AKA), alice on IPv6
    ds_v4 sess_reg_bob || rc=1
    register rega register.xml alice alice-secret 600 -key alg MD5 || rc=1
    ds_v4 sess_bg uas_ds "$UE2_PORT" ob_call_uas.xml -s bob -key caller alice \
        -key realm "$REALM"
    ue call "$UE_PORT" ob_call_uac.xml -s bob -key caller alice || rc=1
    sess_wait uas_ds || rc=1
    # bob's route set starts at the terminating P-CSCF's IPv4 address, then
    # its IPv6 one (it received the INVITE over IPv6 and sent it over IPv4);
    # every other hop, the S-CSCF twice and alice's P-CSCF, is IPv6; alice
    # got the same Record-Route in her 200
    rr=$(sess_rr "$OUT/uas_ds.msg" "INVITE ") || rr="(no INVITE)"
    rr200=$(sess_rr "$OUT/call.msg" 'SIP/2\.0 200(?s:.*)CSeq: *1 INVITE') || rr200="(no 200)"
    say "Record-Route bob got: $rr"
    say "Record-Route alice got: $rr200"
    read -r first second rest <<<"$rr"
    [ "$first" = "127.0.0.1:$P_PORT" ] && [ "$second" = "$HOST:$P_PORT" ] || {
        echo "want the route set to start 127.0.0.1:$P_PORT $HOST:$P_PORT" >&2
        rc=1
    }
    [ "$(wc -w <<<"$rest")" = 3 ] || {
        echo "want 3 hops after those two (the S-CSCF twice, alice's P-CSCF): $rest" >&2
        rc=1
    }
    for h in $rest; do
        case $h in *"$HOST:"*) ;; *) echo "not an IPv6 hop: $h" >&2; rc=1 ;; esac
    done
    [ "$rr200" = "$rr" ] || {
        echo "alice's 200 has another Record-Route than bob's INVITE" >&2
        rc=1
    }
    return $rc
}

t_dual_stack_message() {
    local rc=0
    # vera on IPv4: a MESSAGE from the IPv6 side (at the I-CSCF) reaches her
    ds_v4 register rege register.xml vera vera-secret 600 -key alg MD5 || rc=1
    UAS_ADDR=127.0.0.1 deliver_to vera message_200.xml || rc=1
    # bob on IPv6: one vera sends over IPv4 reaches him
    sess_reg_bob || rc=1
    sess_bg uas_msg "$UE2_PORT" message_uas.xml
    ds_v4 ue msg "$UE_PORT" sess_message_uac.xml -s bob -key caller vera || rc=1
    sess_wait uas_msg || rc=1
    return $rc
}
