/* name-addr / addr-spec (RFC 3261 §20.10, §25.1; RFC 4475 cases). */
#include <string.h>

#include "base/err.h"
#include "sip_tests.h"

static int na_g(const char *s, struct sip_nameaddr *na, struct guard_buf *g)
{
    size_t n = strlen(s);
    char *p = guard_buf_new(g, s, n);
    assert_non_null(p);
    return ims_sip_parse_nameaddr(ims_str_make(p, n), na);
}

static int na1(const char *s)
{
    struct guard_buf g;
    struct sip_nameaddr na;
    int rc = na_g(s, &na, &g);
    guard_buf_free(&g);
    return rc;
}

static void test_forms(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_nameaddr na;

    assert_int_equal(na_g("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n"
                          "  tag = 98asjd8",
                          &na, &g),
                     0);
    assert_str(na.display, "J Rosenberg \\\\\\\"");
    assert_true(na.angle);
    assert_str(na.uri.user, "jdrosen");
    assert_str(na.tag, "98asjd8");
    assert_str(na.params, ";\r\n  tag = 98asjd8");
    guard_buf_free(&g);

    /* RFC 4475 §3.1.1.6: no LWS between display name and '<' */
    assert_int_equal(na_g("caller<sip:caller@example.com>;tag=323", &na, &g), 0);
    assert_str(na.display, "caller");
    assert_str(na.tag, "323");
    guard_buf_free(&g);

    /* token display name with several words (§3.1.1.2) */
    assert_int_equal(na_g("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;"
                          "fromParam''~+*_!.-%=\"\xd1\x80\xd0\xb0\";tag=_token~1'+`*%!-.",
                          &na, &g),
                     0);
    assert_str(na.display, "token1~` token2'+_ token3*%!.-");
    assert_str(na.tag, "_token~1'+`*%!-.");
    ims_str v;
    assert_int_equal(ims_sip_param_get(na.params, "fromparam''~+*_!.-%", &v), 0);
    assert_str(v, "\xd1\x80\xd0\xb0");
    guard_buf_free(&g);

    /* §20.10: in addr-spec form the params belong to the header */
    assert_int_equal(na_g("sip:+16505552222@ss1.example.net;user=phone;tag=x1", &na, &g), 0);
    assert_false(na.angle);
    assert_int_equal(na.display.len, 0);
    assert_int_equal(na.uri.user_param.len, 0);
    assert_str(na.params, ";user=phone;tag=x1");
    assert_str(na.tag, "x1");
    guard_buf_free(&g);
    /* and the URI params stay in the URI inside <> (RFC 4475 §3.3.12/13) */
    assert_int_equal(na_g("<sip:+19725552222@gw1.example.net;unknownparam>", &na, &g), 0);
    assert_str(na.uri.params, ";unknownparam");
    assert_int_equal(na.params.len, 0);
    guard_buf_free(&g);
    assert_int_equal(na_g("sip:+19725552222@gw1.example.net;unknownparam", &na, &g), 0);
    assert_int_equal(na.uri.params.len, 0);
    assert_str(na.params, ";unknownparam");
    guard_buf_free(&g);

    /* LWS before the params of an addr-spec (RFC 4475 §3.1.1.1 To) */
    assert_int_equal(na_g("\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", &na,
                          &g),
                     0);
    assert_str(na.uri.host, "chair-dnrc.example.com");
    assert_str(na.tag, "1918181833n");
    guard_buf_free(&g);

    /* other schemes, IPv6, tel */
    assert_int_equal(na_g("isbn:2983792873", &na, &g), 0);
    assert_int_equal(na.uri.scheme, SIP_URI_OTHER);
    guard_buf_free(&g);
    assert_int_equal(na_g("<sip:[2001:db8::9]:1357;comp=sigcomp>;expires=600000;"
                          "+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\"",
                          &na, &g),
                     0);
    assert_str(na.uri.host, "[2001:db8::9]");
    assert_int_equal(ims_sip_param_get(na.params, "+sip.instance", &v), 0);
    assert_str(v, "<urn:gsma:imei:35209900-176148-0>");
    assert_int_equal(ims_sip_param_get(na.params, "expires", &v), 0);
    assert_str(v, "600000");
    guard_buf_free(&g);
    assert_int_equal(na_g("\"\" <tel:+1-212-555-1111>", &na, &g), 0);
    assert_int_equal(na.display.len, 0);
    assert_int_equal(na.uri.scheme, SIP_URI_TEL);
    guard_buf_free(&g);
    assert_int_equal(na1("\"%Z%45\" <sip:resource@example.com>"), 0);
    assert_int_equal(na1("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe"), 0);
}

static void test_errors(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        "   ",
        "\"Mr. J. User <sip:j.user@example.com>",      /* RFC 4475 §3.1.2.6 */
        "\"Watson, Thomas\" < sip:t.watson@example.org >", /* §3.1.2.14 */
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43", /* §3.1.2.15 */
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E", /* §3.1.2.13 */
        "*",
        "<sip:a@b",
        "<sip:a@b>>",
        "<sip:a@b> junk",
        "<sip:a@b>;",
        "<sip:a@b>;;tag=1",
        "<sip:a@b>;tag",
        "<sip:a@b>;tag=1;tag=2",
        "<sip:a@b>;tag=\"q\"",
        "<sip:a@b>;tag=a:b",
        "<sip:a@b>;x=\"open",
        "\"x\" sip:a@b",
        "\"x\"",
        "name",
        "<>",
        "sip:a,b@c",
        "\"a\007b\" <sip:a@b>",        /* qdtext holds no control byte (§25.1) */
        "\"a\x7f\" <sip:a@b>",
        "\"a\x1b[2J\" <sip:a@b>",
        "\"a\\\r\n b\" <sip:a@b>",  /* quoted-pair excludes CR and LF */
        "<sip:a@b>;x=\"\x01\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (na1(bad[i]) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

/* A NUL inside a display name: refused as it is, kept as a quoted-pair
 * (RFC 4475 §3.1.1.2 carries NUL, BEL and DEL escaped). */
static void test_quoted_ctl(void **st)
{
    (void)st;
    static const char raw[] = "\"al\0ice\" <sip:a@b>";
    static const char esc[] = "\"al\\\0ice\\\x07\x7e\" <sip:a@b>";
    struct guard_buf g;
    struct sip_nameaddr na;
    char *p = guard_buf_new(&g, raw, sizeof(raw) - 1);
    assert_non_null(p);
    assert_int_equal(ims_sip_parse_nameaddr(ims_str_make(p, sizeof(raw) - 1), &na), IMS_EPROTO);
    guard_buf_free(&g);
    p = guard_buf_new(&g, esc, sizeof(esc) - 1);
    assert_non_null(p);
    assert_int_equal(ims_sip_parse_nameaddr(ims_str_make(p, sizeof(esc) - 1), &na), 0);
    assert_int_equal(na.display.len, 10);
    guard_buf_free(&g);
    assert_int_equal(na1("\"tab\there\" <sip:a@b>"), 0);
    assert_int_equal(na1("\"caf\xc3\xa9\" <sip:a@b>"), 0);
}

const struct CMUnitTest nameaddr_tests[] = {
    cmocka_unit_test(test_quoted_ctl),
    cmocka_unit_test(test_forms),
    cmocka_unit_test(test_errors),
};
const size_t nameaddr_ntests = NTESTS(nameaddr_tests);
