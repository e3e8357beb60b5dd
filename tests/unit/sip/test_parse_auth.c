/* Authorization / WWW-Authenticate (RFC 3261 §20.7, §20.44; RFC 7616,
 * RFC 8760, RFC 3310, RFC 8898, RFC 6750). */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "sip_tests.h"

static int auth_g(const char *s, struct sip_auth *a, struct guard_buf *g)
{
    size_t n = strlen(s);
    char *p = guard_buf_new(g, s, n);
    assert_non_null(p);
    return ims_sip_parse_auth(ims_str_make(p, n), a);
}

static int auth1(const char *s)
{
    struct guard_buf g;
    struct sip_auth a;
    int rc = auth_g(s, &a, &g);
    guard_buf_free(&g);
    return rc;
}

static void test_digest_credentials(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_auth a;
    assert_int_equal(auth_g("Digest username=\"user1_private@ims.example.com\",\r\n"
                            " realm=\"ims.example.com\", nonce=\"A34Cm+Fva37UYWpGNB34JP\",\r\n"
                            " algorithm=AKAv1-MD5, uri=\"sip:ims.example.com\", "
                            "response=\"6629fae49393a05397450978507c4ef1\", "
                            "integrity-protected=\"yes\", qop=auth-int, cnonce=\"0a4f113b\", "
                            "nc=00000001, opaque=\"\", auts=\"CjkyMjRmNGE2\"",
                            &a, &g),
                     0);
    assert_str(a.scheme, "Digest");
    assert_str(a.username, "user1_private@ims.example.com");
    assert_str(a.realm, "ims.example.com");
    assert_str(a.nonce, "A34Cm+Fva37UYWpGNB34JP");
    assert_str(a.algorithm, "AKAv1-MD5");
    assert_str(a.uri, "sip:ims.example.com");
    assert_str(a.response, "6629fae49393a05397450978507c4ef1");
    assert_str(a.integrity_protected, "yes");
    assert_str(a.qop, "auth-int");
    assert_str(a.cnonce, "0a4f113b");
    assert_str(a.nc, "00000001");
    assert_int_equal(a.opaque.len, 0);
    assert_str(a.auts, "CjkyMjRmNGE2");
    assert_int_equal(a.token.len, 0);
    assert_true(ims_str_has_caseprefix(a.params, "username="));
    guard_buf_free(&g);

    /* RFC 7616 §3.4.4 userhash; an empty quoted value is present, not absent */
    assert_int_equal(auth_g("Digest username=\"a\", userhash=true, opaque=\"\"", &a, &g), 0);
    assert_str(a.userhash, "true");
    assert_int_equal(a.opaque.len, 0);
    assert_non_null(a.opaque.p);
    assert_null(a.nonce.p);
    guard_buf_free(&g);

    /* escapes stay as received inside the unquoted view */
    assert_int_equal(auth_g("digest username=\"a\\\"b\",realm=r", &a, &g), 0);
    assert_str(a.username, "a\\\"b");
    assert_str(a.realm, "r");
    guard_buf_free(&g);
}

static void test_challenges(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_auth a;
    assert_int_equal(auth_g("Digest realm=\"ims.example.com\",\r\n  nonce=\"CjPk9mRqNuT25eRkajM0==\","
                            "\r\n  algorithm=AKAv1-MD5, qop=\"auth,auth-int\", stale=FALSE, "
                            "domain=\"sip:ims.example.com\", ik=\"0011\", ck=\"ffee\"",
                            &a, &g),
                     0);
    assert_str(a.qop, "auth,auth-int");
    assert_str(a.stale, "FALSE");
    assert_str(a.domain, "sip:ims.example.com");
    assert_str(a.nonce, "CjPk9mRqNuT25eRkajM0==");
    guard_buf_free(&g);

    /* RFC 8898 Bearer challenge */
    assert_int_equal(auth_g("Bearer realm=\"ims.example.com\", "
                            "authz_server=\"https://keystone.example.com/identity/v3\", "
                            "scope=\"ims:register\", error=\"invalid_token\"",
                            &a, &g),
                     0);
    assert_str(a.scheme, "Bearer");
    assert_str(a.realm, "ims.example.com");
    assert_str(a.authz_server, "https://keystone.example.com/identity/v3");
    assert_str(a.scope, "ims:register");
    assert_str(a.error, "invalid_token");
    assert_int_equal(a.token.len, 0);
    guard_buf_free(&g);

    /* a scheme alone is a valid challenge (RFC 7235 §2.1) */
    assert_int_equal(auth_g("Bearer", &a, &g), 0);
    assert_int_equal(a.params.len, 0);
    guard_buf_free(&g);
}

static void test_bearer_token(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_auth a;
    assert_int_equal(auth_g("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.Sfl-_~+/x==", &a, &g), 0);
    assert_str(a.token, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.Sfl-_~+/x==");
    assert_int_equal(a.params.len, 0);
    guard_buf_free(&g);
    assert_int_equal(auth_g("bearer   abc  ", &a, &g), 0);
    assert_str(a.token, "abc");
    guard_buf_free(&g);
    /* a token68 is only for Bearer; other schemes need auth-params */
    assert_int_equal(auth1("Digest abc"), IMS_EPROTO);
    assert_int_equal(auth1("Bearer abc def"), IMS_EPROTO);
    assert_int_equal(auth1("Bearer a=b=c"), 0); /* auth-param with a b64-ish value */
}

static void test_other_scheme(void **st)
{
    (void)st;
    struct guard_buf g;
    struct sip_auth a;
    /* RFC 4475 §3.3.7 */
    assert_int_equal(auth_g("NoOneKnowsThisScheme opaque-data=here", &a, &g), 0);
    assert_str(a.scheme, "NoOneKnowsThisScheme");
    assert_str(a.params, "opaque-data=here");
    guard_buf_free(&g);
}

static void test_errors(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        "   ",
        "Digest,",
        "Digest username",
        "Digest username=",
        "Digest username=\"a",
        "Digest username=\"a\" realm=\"b\"",
        "Digest username=\"a\",",
        "Digest username=\"a\",,realm=\"b\"",
        "Digest nonce=\"1\", nonce=\"2\"",
        "Digest realm=r, REALM=s",
        "Digest =x",
        "Digest a=<b>",
        "Di gest a=b",
        "\"Digest\" a=b",
        "Digest username=\"al\x01ice\", realm=\"r\"", /* qdtext: no control byte */
        "Digest username=\"alice\", realm=\"r\x7f\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth1(bad[i]) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

/* ims_sip_auth_without: the P-CSCF and the I-CSCF take a UE's own
 * integrity-protected out of its credentials (TS 24.229 §5.2.2.1). */
static int without(const char *s, const char *drop, char *out, size_t cap)
{
    struct guard_buf g;
    size_t n = strlen(s);
    char *p = guard_buf_new(&g, s, n);
    assert_non_null(p);
    struct ims_buf b;
    ims_buf_init(&b, 4096);
    int rc = ims_sip_auth_without(ims_str_make(p, n), drop, &b);
    snprintf(out, cap, "%.*s", (int)b.len, b.p ? b.p : "");
    ims_buf_free(&b);
    guard_buf_free(&g);
    return rc;
}

static void test_without(void **st)
{
    (void)st;
    char o[512];
    assert_int_equal(without("Digest username=\"a@b\", integrity-protected=\"tls-yes\",\r\n"
                             " realm=b, response=\"\"",
                             "integrity-protected", o, sizeof(o)),
                     0);
    assert_string_equal(o, "Digest username=\"a@b\", realm=b, response=\"\"");
    /* first, last, unquoted, any case, more than once */
    assert_int_equal(without("Digest Integrity-Protected=yes,nonce=\"n,1\",integrity-protected=no",
                             "integrity-protected", o, sizeof(o)),
                     0);
    assert_string_equal(o, "Digest nonce=\"n,1\"");
    assert_int_equal(without("Digest integrity-protected=\"yes\"", "integrity-protected", o,
                             sizeof(o)),
                     0);
    assert_string_equal(o, "Digest");
    /* nothing to drop: the params as they were, separators and the LWS
     * (folds too) around '=' normalised, escapes kept */
    assert_int_equal(without("  Digest a=1 ,b =\r\n \"x\\\"y\"", "integrity-protected", o,
                             sizeof(o)),
                     0);
    assert_string_equal(o, "Digest a=1, b=\"x\\\"y\"");
    /* no auth-params, or not parseable */
    static const char *const bad[] = { "Bearer abc.def=", "Digest", "Digest a=\"1", "Digest a=1,",
                                       "Digest a=1 b=2", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (without(bad[i], "a", o, sizeof(o)) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

const struct CMUnitTest auth_tests[] = {
    cmocka_unit_test(test_digest_credentials), cmocka_unit_test(test_challenges),
    cmocka_unit_test(test_bearer_token),       cmocka_unit_test(test_other_scheme),
    cmocka_unit_test(test_errors),             cmocka_unit_test(test_without),
};
const size_t auth_ntests = NTESTS(auth_tests);
