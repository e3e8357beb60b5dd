/* URIs: RFC 3261 §19.1, §25.1; RFC 3966; equality per §19.1.4. */
#include <string.h>

#include "base/err.h"
#include "sip_tests.h"

/* Parses s placed flush against a guard page. */
static int parse_g(const char *s, struct sip_uri *u, struct guard_buf *g)
{
    size_t n = strlen(s);
    char *p = guard_buf_new(g, s, n);
    assert_non_null(p);
    return ims_sip_parse_uri(ims_str_make(p, n), u);
}

static int parse1(const char *s, struct sip_uri *u)
{
    /* the slice stays valid after the guard is gone only for lengths; the
     * callers that read fields use parse_g */
    struct guard_buf g;
    int rc = parse_g(s, u, &g);
    guard_buf_free(&g);
    return rc;
}

static void test_sip_full(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_uri u;
    assert_int_equal(parse_g("sips:alice:secret@Atlanta.Example.com:5061;transport=TLS;"
                             "maddr=239.255.255.1;ttl=15;user=phone;method=INVITE;lr;x=y"
                             "?subject=project%20x&priority=urgent",
                             &u, &g),
                     0);
    assert_int_equal(u.scheme, SIP_URI_SIPS);
    assert_str(u.scheme_name, "sips");
    assert_str(u.user, "alice");
    assert_str(u.password, "secret");
    assert_str(u.host, "Atlanta.Example.com");
    assert_int_equal(u.port, 5061);
    assert_false(u.host_is_ipv6);
    assert_str(u.transport, "TLS");
    assert_str(u.maddr, "239.255.255.1");
    assert_str(u.ttl, "15");
    assert_str(u.user_param, "phone");
    assert_str(u.method, "INVITE");
    assert_true(u.lr);
    assert_str(u.params, ";transport=TLS;maddr=239.255.255.1;ttl=15;user=phone;method=INVITE;lr;x=y");
    assert_str(u.headers, "subject=project%20x&priority=urgent");
    ims_str v;
    assert_int_equal(ims_sip_param_get(u.params, "X", &v), 0);
    assert_str(v, "y");
    guard_buf_free(&g);

    assert_int_equal(parse_g("sip:host", &u, &g), 0);
    assert_int_equal(u.user.len, 0);
    assert_str(u.host, "host");
    assert_int_equal(u.port, 0);
    assert_int_equal(u.params.len, 0);
    assert_false(u.lr);
    guard_buf_free(&g);

    /* scheme is case-insensitive */
    assert_int_equal(parse_g("SIP:bob@example.com", &u, &g), 0);
    assert_int_equal(u.scheme, SIP_URI_SIP);
    guard_buf_free(&g);
}

static void test_sip_ipv6(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_uri u;
    assert_int_equal(parse_g("sip:bob@[2001:db8::10]:5070;transport=udp", &u, &g), 0);
    assert_str(u.host, "[2001:db8::10]");
    assert_true(u.host_is_ipv6);
    assert_int_equal(u.port, 5070);
    guard_buf_free(&g);
    assert_int_equal(parse_g("sip:[::ffff:192.0.2.1]", &u, &g), 0);
    assert_str(u.host, "[::ffff:192.0.2.1]");
    assert_int_equal(u.port, 0);
    guard_buf_free(&g);
    assert_int_equal(parse1("sip:[2001:db8::1", &u), IMS_EPROTO);
    assert_int_equal(parse1("sip:[2001:db8::1]x", &u), IMS_EPROTO);
    assert_int_equal(parse1("sip:[gggg::1]", &u), IMS_EPROTO);
    assert_int_equal(parse1("sip:[]", &u), IMS_EPROTO);
}

static void test_sip_torture_users(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_uri u;
    /* RFC 4475 §3.1.1.2 */
    assert_int_equal(parse_g("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,"
                             "weird!*pas$wo~d_too.(doesn't-it)@example.com",
                             &u, &g),
                     0);
    assert_str(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert_str(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert_str(u.host, "example.com");
    guard_buf_free(&g);
    /* §3.1.1.9: the user part holds ';' */
    assert_int_equal(parse_g("sip:user;par=u%40example.net@example.com", &u, &g), 0);
    assert_str(u.user, "user;par=u%40example.net");
    assert_int_equal(u.params.len, 0);
    guard_buf_free(&g);
    /* §3.1.1.3: escapes kept as received */
    assert_int_equal(parse_g("sip:sips%3Auser%40example.com@example.net", &u, &g), 0);
    assert_str(u.user, "sips%3Auser%40example.com");
    guard_buf_free(&g);
    assert_int_equal(parse_g("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31", &u,
                             &g),
                     0);
    assert_str(u.params, ";%6C%72;n%61me=v%61lue%25%34%31");
    guard_buf_free(&g);
    /* §3.1.1.4 */
    assert_int_equal(parse1("sip:null-%00-null@example.com", &u), 0);
}

static void test_tel(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_uri u;
    assert_int_equal(parse_g("tel:+1-212-555-2222;phone-context=ims.example.com;ext=12", &u, &g),
                     0);
    assert_int_equal(u.scheme, SIP_URI_TEL);
    assert_str(u.user, "+1-212-555-2222");
    assert_int_equal(u.host.len, 0);
    assert_str(u.params, ";phone-context=ims.example.com;ext=12");
    ims_str v;
    assert_int_equal(ims_sip_param_get(u.params, "phone-context", &v), 0);
    assert_str(v, "ims.example.com");
    guard_buf_free(&g);
    assert_int_equal(parse1("tel:7042;phone-context=example.com", &u), 0);
    assert_int_equal(parse1("tel:*21#", &u), 0);
    assert_int_equal(parse1("TEL:+358-555-1234567", &u), 0);
    assert_int_equal(parse1("tel:", &u), IMS_EPROTO);
    assert_int_equal(parse1("tel:-", &u), IMS_EPROTO);
    assert_int_equal(parse1("tel:12+3", &u), IMS_EPROTO);
    assert_int_equal(parse1("tel:123?x=y", &u), IMS_EPROTO);
    assert_int_equal(parse1("tel:123;=x", &u), IMS_EPROTO);
    assert_int_equal(parse1("tel:123;a=", &u), IMS_EPROTO);
}

static void test_other_schemes(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_uri u;
    assert_int_equal(parse_g("soap.beep://192.0.2.103:3002", &u, &g), 0);
    assert_int_equal(u.scheme, SIP_URI_OTHER);
    assert_str(u.scheme_name, "soap.beep");
    assert_str(u.raw, "soap.beep://192.0.2.103:3002");
    guard_buf_free(&g);
    assert_int_equal(parse1("nobodyKnowsThisScheme:totallyopaquecontent", &u), 0);
    assert_int_equal(parse1("isbn:2983792873", &u), 0);
    assert_int_equal(parse1("urn:service:sos", &u), 0);
    assert_int_equal(parse1("http://www.example.com/a?b=c", &u), 0);
    assert_int_equal(parse1("x:", &u), IMS_EPROTO);
    assert_int_equal(parse1("x:a b", &u), IMS_EPROTO);
    assert_int_equal(parse1("x:<a>", &u), IMS_EPROTO);
}

static void test_sip_errors(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        "sip",
        "sip:",
        "1sip:host",
        "sip:@host",
        "sip:host:",
        "sip:host:65536",
        "sip:host:5x",
        "sip:host;",
        "sip:host;=x",
        "sip:host;a=",
        "sip:host;ttl=256",
        "sip:host;transport",
        "sip:host?",
        "sip:host?a",
        "sip:host?=b",
        "sip:%zz@host",
        "sip:%4@host",
        "sip:a b@host",
        "sip:alice@host lr",
        "<sip:alice@host>",
        "sip:alice@-host",
        "sip:alice@.host",
        "sip:alice@ho$t",
        "sip:a@b@c",
        " sip:a@b",
        "sip:a@b ",
        "sip:a@b\r\n",
    };
    struct sip_uri u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse1(bad[i], &u) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(u.scheme, SIP_URI_NONE); /* zeroed on failure */
    }
}

static bool eq(const char *a, const char *b)
{
    struct sip_uri ua, ub;
    assert_int_equal(ims_sip_parse_uri(ims_str_cstr(a), &ua), 0);
    assert_int_equal(ims_sip_parse_uri(ims_str_cstr(b), &ub), 0);
    bool r = ims_sip_uri_equal(&ua, &ub);
    assert_true(r == ims_sip_uri_equal(&ub, &ua)); /* symmetric */
    return r;
}

/* RFC 3261 §19.1.4, the examples verbatim */
/* sip_hostport() sums the port while scanning it: bounds, leading zeros and
 * a port that ends the buffer (parse1 puts it against a guard page). */
static void test_port_edges(void **st)
{
    (void)st;
    struct sip_uri u;
    assert_int_equal(parse1("sip:h:65535", &u), 0);
    assert_int_equal(u.port, 65535);
    assert_int_equal(parse1("sip:h:0", &u), 0);
    assert_int_equal(u.port, 0);
    assert_int_equal(parse1("sip:h:0000000000000000000000000000000000000000000000000000000000005060",
                            &u),
                     0); /* 64 digits */
    assert_int_equal(u.port, 5060);
    assert_int_equal(parse1("sip:h:00000000000000000000000000000000000000000000000000000000000005060",
                            &u),
                     IMS_EPROTO); /* 65 digits */
    static const char *const bad[] = { "sip:h:65536", "sip:h:99999999999999999999", "sip:h:",
                                       "sip:h:+1",    "sip:h:-1",                   "sip:h:1a" };
    for (size_t i = 0; i < NTESTS(bad); i++)
        if (parse1(bad[i], &u) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
    struct sip_via v;
    assert_int_equal(ims_sip_parse_via(IMS_S("SIP/2.0/UDP h : 065535;branch=z9hG4bK1"), &v), 0);
    assert_int_equal(v.port, 65535);
    assert_int_equal(ims_sip_parse_via(IMS_S("SIP/2.0/UDP h:70000;branch=z9hG4bK1"), &v),
                     IMS_EPROTO);
}

static void test_equality_rfc3261(void **st)
{
    (void)st;
    assert_true(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
    assert_true(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
    assert_true(eq("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
    assert_true(eq("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"));
    assert_true(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                   "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"));
    assert_true(eq("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                   "sip:alice@atlanta.com?priority=urgent&subject=project%20x"));

    assert_false(eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
    assert_false(eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
    assert_false(eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
    assert_false(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
}

static void test_equality_more(void **st)
{
    (void)st;
    assert_false(eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    assert_false(eq("sip:alice@atlanta.com", "sip:atlanta.com"));
    assert_false(eq("sip:alice:a@atlanta.com", "sip:alice:b@atlanta.com"));
    /* maddr/ttl/user/method must be in both */
    assert_false(eq("sip:a@b;maddr=1.2.3.4", "sip:a@b"));
    assert_false(eq("sip:a@b", "sip:a@b;user=phone"));
    assert_false(eq("sip:a@b;method=INVITE", "sip:a@b"));
    assert_false(eq("sip:a@b;ttl=1", "sip:a@b"));
    assert_true(eq("sip:a@b;lr", "sip:a@b"));
    assert_true(eq("sip:a@b;LR", "sip:a@b;lr"));
    /* reserved characters: escaped and plain differ */
    assert_false(eq("sip:a%40b@c", "sip:a@c"));
    assert_false(eq("sip:a%3Bb@c", "sip:a;b@c"));
    assert_true(eq("sip:%41@c", "sip:A@c"));
    assert_false(eq("sip:%61@c", "sip:A@c"));
    assert_true(eq("sip:a@[2001:DB8::1]", "sip:a@[2001:db8::1]"));
    /* tel: visual separators, hex case, params as sets */
    assert_true(eq("tel:+1-212-555-1212", "tel:+12125551212"));
    assert_true(eq("tel:+1(212)555.1212;ext=1;isub=2", "tel:+12125551212;isub=2;ext=1"));
    assert_false(eq("tel:+12125551212", "tel:+12125551213"));
    assert_false(eq("tel:+12125551212;ext=1", "tel:+12125551212"));
    assert_true(eq("tel:7042;phone-context=Example.com", "tel:7042;phone-context=example.com"));
    /* other schemes */
    assert_true(eq("urn:service:sos", "URN:service:sos"));
    assert_false(eq("urn:service:sos", "urn:service:SOS"));
    assert_false(eq("tel:+1", "sip:+1@h"));
    struct sip_uri none = { 0 };
    assert_false(ims_sip_uri_equal(&none, &none));
}

const struct CMUnitTest uri_tests[] = {
    cmocka_unit_test(test_sip_full),          cmocka_unit_test(test_sip_ipv6),
    cmocka_unit_test(test_sip_torture_users), cmocka_unit_test(test_tel),
    cmocka_unit_test(test_other_schemes),     cmocka_unit_test(test_sip_errors),
    cmocka_unit_test(test_equality_rfc3261),  cmocka_unit_test(test_equality_more),
    cmocka_unit_test(test_port_edges),
};
const size_t uri_ntests = NTESTS(uri_tests);
