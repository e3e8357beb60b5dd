# tests/e2e/ims/t_secagree.sh - RFC 3329 sec-agree with tls at the P-CSCF
# (sourced by ims_e2e.sh; docs/internals/cscf.md "sec-agree").
#   secagree_offer  a UDP UE offers tls: the S-CSCF's 401 reaches it with the
#                   P-CSCF's Security-Server; a Security-Verify over UDP, a
#                   tampered one, no mechanism in common, and a MESSAGE with
#                   Proxy-Require: sec-agree alone each get 494 with that list
#                   (sipp/sa_offer.xml).  The protected REGISTER over TLS is
#                   covered by tests/unit/cscf/test_pcscf.c (sipp has no TLS).

t_secagree_offer() {
    ue sa "$UE_PORT" sa_offer.xml -s alice -key expires 600
}
