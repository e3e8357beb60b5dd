/* Via (RFC 3261 §20.42, §25.1; RFC 3581 rport; RFC 4475). */
#include <string.h>

#include "base/err.h"
#include "sip_tests.h"

static int via_g(const char *s, struct sip_via *v, struct guard_buf *g)
{
    size_t n = strlen(s);
    char *p = guard_buf_new(g, s, n);
    assert_non_null(p);
    return ims_sip_parse_via(ims_str_make(p, n), v);
}

static int via1(const char *s)
{
    struct guard_buf g;
    struct sip_via v;
    int rc = via_g(s, &v, &g);
    guard_buf_free(&g);
    return rc;
}

static void test_basic(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_via v;
    assert_int_equal(via_g("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;"
                           "received=192.0.2.1;rport=5070;maddr=224.2.0.1;ttl=16;x=\"q;,\"",
                           &v, &g),
                     0);
    assert_str(v.proto_name, "SIP");
    assert_str(v.proto_version, "2.0");
    assert_str(v.transport, "UDP");
    assert_str(v.host, "pc33.atlanta.com");
    assert_int_equal(v.port, 5066);
    assert_str(v.branch, "z9hG4bK776asdhds");
    assert_str(v.received, "192.0.2.1");
    assert_true(v.rport);
    assert_int_equal(v.rport_value, 5070);
    assert_str(v.maddr, "224.2.0.1");
    assert_str(v.ttl, "16");
    assert_str(v.params, ";branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5070;maddr=224.2.0.1;"
                         "ttl=16;x=\"q;,\"");
    assert_str(v.raw, "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;"
                      "received=192.0.2.1;rport=5070;maddr=224.2.0.1;ttl=16;x=\"q;,\"");
    guard_buf_free(&g);

    /* RFC 4475 §3.1.1.1: LWS and folds around every separator */
    assert_int_equal(via_g("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw", &v, &g), 0);
    assert_str(v.transport, "UDP");
    assert_str(v.host, "192.0.2.2");
    assert_str(v.branch, "390skdjuw");
    assert_false(v.rport);
    guard_buf_free(&g);
    assert_int_equal(via_g(" SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   "
                           "z9hG4bK9ikj8  ",
                           &v, &g),
                     0);
    assert_str(v.branch, "z9hG4bK9ikj8");
    assert_str(v.host, "spindle.example.com");
    guard_buf_free(&g);
    assert_int_equal(via_g("SIP/2.0/UDP host : 5060 ; rport", &v, &g), 0);
    assert_int_equal(v.port, 5060);
    assert_true(v.rport);
    assert_int_equal(v.rport_value, 0);
    guard_buf_free(&g);
    /* RFC 2543 style, no branch (§3.4.1); unknown transports (§3.1.1.10) */
    assert_int_equal(via1("SIP/2.0/UDP iftgw.example.com"), 0);
    assert_int_equal(via1("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en"), 0);
    assert_int_equal(via1("SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf"), 0);
    assert_int_equal(via1("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK"), 0);
}

static void test_ipv6(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_via v;
    assert_int_equal(via_g("SIP/2.0/UDP [2001:db8::9]:1357;comp=sigcomp;branch=z9hG4bKnashds7;"
                           "received=2001:db8::9;rport=1357",
                           &v, &g),
                     0);
    assert_str(v.host, "[2001:db8::9]");
    assert_true(v.host_is_ipv6);
    assert_int_equal(v.port, 1357);
    assert_str(v.received, "2001:db8::9");
    assert_int_equal(v.rport_value, 1357);
    guard_buf_free(&g);
    assert_int_equal(via_g("SIP/2.0/TCP [::1];received=[2001:db8::20]", &v, &g), 0);
    assert_str(v.received, "[2001:db8::20]");
    assert_int_equal(v.port, 0);
    guard_buf_free(&g);
}

static void test_errors(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0 192.0.2.1",
        "SIP/2.0/UDP192.0.2.1",
        "SIP/2.0/UDP 192.0.2.15;;",          /* RFC 4475 §3.1.2.1 */
        "SIP/2.0/UDP 192.0.2.15;",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;branch=\"z9hG4bK1\"",
        "SIP/2.0/UDP host;branch=a;branch=b",
        "SIP/2.0/UDP host;received",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP host;rport=x",
        "SIP/2.0/UDP host;rport=65536",
        "SIP/2.0/UDP host;rport;rport",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host, SIP/2.0/UDP other",
        "SIP/2.0/UDP ho<st",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (via1(bad[i]) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

const struct CMUnitTest via_tests[] = {
    cmocka_unit_test(test_basic),
    cmocka_unit_test(test_ipv6),
    cmocka_unit_test(test_errors),
};
const size_t via_ntests = NTESTS(via_tests);
