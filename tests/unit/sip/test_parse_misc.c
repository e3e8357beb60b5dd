/* CSeq, lists, params, Security-*, header and method ids. */
#include <string.h>

#include "base/err.h"
#include "sip_tests.h"

static void test_cseq(void **st)
{
    (void)st;
    struct sip_cseq c;
    assert_int_equal(ims_sip_parse_cseq(IMS_S("0009\r\n  INVITE"), &c), 0);
    assert_int_equal(c.num, 9);
    assert_int_equal(c.method, SIP_M_INVITE);
    assert_str(c.method_name, "INVITE");
    assert_int_equal(ims_sip_parse_cseq(IMS_S("2147483647 RE%47IST%45R "), &c), 0);
    assert_int_equal(c.num, 2147483647u);
    assert_int_equal(c.method, SIP_M_UNKNOWN);
    assert_str(c.method_name, "RE%47IST%45R");
    assert_int_equal(ims_sip_parse_cseq(IMS_S("0 ACK"), &c), 0);
    assert_int_equal(c.method, SIP_M_ACK);
    static const char *const bad[] = { "",       "1",          "INVITE",     "1INVITE",
                                       "-1 BYE", "2147483648 BYE", "36893488147419103232 REGISTER",
                                       "1 BYE x", "1 B\"YE",   "1 <BYE>" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ims_sip_parse_cseq(ims_str_cstr(bad[i]), &c) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

static int count_list(const char *s, ims_str *elems, size_t max)
{
    struct ims_cur c = { s, s + strlen(s) };
    ims_str e;
    int rc, n = 0;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        if ((size_t)n < max)
            elems[n] = e;
        n++;
    }
    return rc == IMS_ENOENT ? n : rc;
}

static void test_list(void **st)
{
    (void)st;
    ims_str e[8];
    assert_int_equal(count_list("a, b ,c", e, 8), 3);
    assert_str(e[0], "a");
    assert_str(e[1], "b");
    assert_str(e[2], "c");
    assert_int_equal(count_list("\"Doe, John\" <sip:a,b@c>;x=\"1,2\" ,\r\n <sip:d@e>", e, 8), 2);
    assert_str(e[0], "\"Doe, John\" <sip:a,b@c>;x=\"1,2\"");
    assert_str(e[1], "<sip:d@e>");
    assert_int_equal(count_list("\"a\\\",b\", c", e, 8), 2);
    assert_str(e[0], "\"a\\\",b\"");
    assert_int_equal(count_list("", e, 8), 0);
    assert_int_equal(count_list("  \r\n ", e, 8), 0);
    assert_int_equal(count_list("application/sdp, application/pkcs7-mime,\r\n        multipart/mixed",
                                e, 8),
                     3);
    assert_str(e[2], "multipart/mixed");
    assert_int_equal(count_list("a,,b", e, 8), IMS_EPROTO);
    assert_int_equal(count_list("a,", e, 8), IMS_EPROTO);
    assert_int_equal(count_list("a, ", e, 8), IMS_EPROTO);
    assert_int_equal(count_list(",a", e, 8), IMS_EPROTO);
    assert_int_equal(count_list("\"a, b", e, 8), IMS_EPROTO);
    assert_int_equal(count_list("<sip:a, b", e, 8), IMS_EPROTO);
    assert_int_equal(count_list("\"a\\", e, 8), IMS_EPROTO);
}

static void test_param_get(void **st)
{
    (void)st;
    ims_str v;
    ims_str p = IMS_S(";branch=z9hG4bK1 ; Received = 192.0.2.1;rport;x=\"a;b\";lr");
    assert_int_equal(ims_sip_param_get(p, "branch", &v), 0);
    assert_str(v, "z9hG4bK1");
    assert_int_equal(ims_sip_param_get(p, "received", &v), 0);
    assert_str(v, "192.0.2.1");
    assert_int_equal(ims_sip_param_get(p, "RPORT", &v), 0);
    assert_int_equal(v.len, 0);
    assert_int_equal(ims_sip_param_get(p, "x", &v), 0);
    assert_str(v, "a;b");
    assert_int_equal(ims_sip_param_get(p, "lr", &v), 0);
    assert_int_equal(ims_sip_param_get(p, "maddr", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(p, "branc", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(IMS_STR_NULL, "a", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(IMS_S("no-semicolon"), "no-semicolon", &v), IMS_ENOENT);
    /* the search stops at the end of a URI's params */
    assert_int_equal(ims_sip_param_get(IMS_S(";a=1?b=2"), "b", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(IMS_S(";a=1>;b=2"), "b", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(IMS_S(";a=\"open"), "a", &v), 0);
}

/* The table-driven scans of ims_sip_list_next() and ims_sip_param_get():
 * every element and value ends flush against a guard page, so a scan that
 * looks one byte too far faults. */
static int guarded_list(const char *s, size_t len, const char *first, size_t first_len)
{
    struct guard_buf g;
    const char *d = guard_buf_new(&g, s, len);
    assert_non_null(d);
    struct ims_cur c = { d, d + len };
    ims_str e;
    int rc, n = 0;
    while ((rc = ims_sip_list_next(&c, &e)) == 0) {
        /* elements point into the guard buffer: check before freeing it */
        if (n++ == 0 && first && (e.len != first_len || memcmp(e.p, first, first_len) != 0))
            fail_msg("first element \"%.*s\", want \"%s\"", IMS_SF(e), first);
    }
    guard_buf_free(&g);
    return rc == IMS_ENOENT ? n : rc;
}
#define GLIST(lit) guarded_list((lit), sizeof(lit) - 1, NULL, 0)
#define GLIST1(lit, f) guarded_list((lit), sizeof(lit) - 1, (f), sizeof(f) - 1)

static void test_list_scan_edges(void **st)
{
    (void)st;
    /* '<...>' with commas inside, ending the buffer */
    assert_int_equal(GLIST1("<sip:a,b@c>", "<sip:a,b@c>"), 1);
    /* an escaped backslash right before the closing quote ends the string */
    assert_int_equal(GLIST1("\"x\\\\\"", "\"x\\\\\""), 1);
    assert_int_equal(GLIST1("\"x\\\\\", y", "\"x\\\\\""), 2);
    /* an escaped quote does not end it, an escaped comma is no separator */
    assert_int_equal(GLIST1("\"a\\\"\\,b\" <sip:c>, d", "\"a\\\"\\,b\" <sip:c>"), 2);
    /* '<' ',' '>' inside a quoted-string are plain bytes */
    assert_int_equal(GLIST1("\"<,>\"", "\"<,>\""), 1);
    /* '"' inside '<...>' does not open a quoted-string */
    assert_int_equal(GLIST1("<sip:a\"b@c>, d", "<sip:a\"b@c>"), 2);
    /* NUL and bytes >= 0x80 are not stops */
    assert_int_equal(GLIST1("a\0b,\xc3\xa9", "a\0b"), 2);
    /* unterminated constructs at the very end of the buffer */
    assert_int_equal(GLIST("a, \"b"), IMS_EPROTO);
    assert_int_equal(GLIST("a, \"b\\"), IMS_EPROTO);
    assert_int_equal(GLIST("a, \"b\\\""), IMS_EPROTO);
    assert_int_equal(GLIST("a, <"), IMS_EPROTO);
    assert_int_equal(GLIST("<"), IMS_EPROTO);
    assert_int_equal(GLIST("\""), IMS_EPROTO);
    assert_int_equal(GLIST("a,"), IMS_EPROTO);
    /* a lone byte, and a comma right after closed constructs */
    assert_int_equal(GLIST1("a", "a"), 1);
    assert_int_equal(GLIST1("\"\",<>", "\"\""), 2);
}

static void test_param_get_edges(void **st)
{
    (void)st;
    ims_str v;
    struct guard_buf g;
    static const char ps[] = ";a=1;tag=xyz";
    const char *d = guard_buf_new(&g, ps, sizeof(ps) - 1);
    assert_non_null(d);
    /* a value and a name that end the buffer */
    assert_int_equal(ims_sip_param_get(ims_str_make(d, sizeof(ps) - 1), "tag", &v), 0);
    assert_int_equal(v.len, 3);
    assert_int_equal(memcmp(v.p, "xyz", 3), 0);
    assert_int_equal(ims_sip_param_get(ims_str_make(d, 7), "ta", &v), 0);
    assert_int_equal(v.len, 0);
    guard_buf_free(&g);
    /* '=' ends a name, not a value; ',' ends both */
    assert_int_equal(ims_sip_param_get(IMS_S(";a=b=c;d"), "a", &v), 0);
    assert_str(v, "b=c");
    assert_int_equal(ims_sip_param_get(IMS_S(";a=b,c;d"), "d", &v), IMS_ENOENT);
    /* escaped quotes inside a quoted value, with ';' and ',' after them */
    assert_int_equal(ims_sip_param_get(IMS_S(";x=\"a\\\";,b\";y=2"), "x", &v), 0);
    assert_str(v, "a\\\";,b");
    assert_int_equal(ims_sip_param_get(IMS_S(";x=\"a\\\";,b\";y=2"), "y", &v), 0);
    assert_str(v, "2");
    /* NUL and tab: a NUL is part of a name, a tab ends it */
    assert_int_equal(ims_sip_param_get(ims_str_make(";a\0b=1", 6), "a", &v), IMS_ENOENT);
    assert_int_equal(ims_sip_param_get(IMS_S(";a\t=\t1"), "a", &v), 0);
    assert_str(v, "1");
}

static void test_sec_mech(void **st)
{
    (void)st;
    struct sip_sec_mech m;
    assert_int_equal(ims_sip_parse_sec_mech(IMS_S("ipsec-3gpp; q=0.1; alg=hmac-sha-1-96; "
                                                  "spi-c=98765432; spi-s=87654321; port-c=8642; "
                                                  "port-s=7531"),
                                            &m),
                     0);
    assert_str(m.mechanism, "ipsec-3gpp");
    assert_str(m.q, "0.1");
    assert_str(m.params, "; q=0.1; alg=hmac-sha-1-96; spi-c=98765432; spi-s=87654321; "
                         "port-c=8642; port-s=7531");
    ims_str v;
    assert_int_equal(ims_sip_param_get(m.params, "spi-s", &v), 0);
    assert_str(v, "87654321");
    assert_int_equal(ims_sip_parse_sec_mech(IMS_S("tls;q=1.000"), &m), 0);
    assert_int_equal(ims_sip_parse_sec_mech(IMS_S("digest"), &m), 0);
    assert_int_equal(m.params.len, 0);
    assert_int_equal(m.q.len, 0);
    static const char *const bad[] = { "",         "tls;q=2",       "tls;q=1.5", "tls;q=0.1234",
                                       "tls;q",    "tls;q=0.1;q=0", "tls;",      "tls x",
                                       ";q=0.1",   "tls;q=\"0.1\"" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ims_sip_parse_sec_mech(ims_str_cstr(bad[i]), &m) != IMS_EPROTO)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_hdr_ids(void **st)
{
    (void)st;
    /* every canonical name maps back to its id, in any case */
    for (int id = 1; id < SIP_H__COUNT; id++) {
        const char *n = ims_sip_hdr_canonical_name((enum sip_hdr_id)id);
        assert_non_null(n);
        assert_int_equal(ims_sip_hdr_id(ims_str_cstr(n)), id);
        char up[64], lo[64];
        size_t l = strlen(n);
        assert_true(l < sizeof(up));
        for (size_t i = 0; i <= l; i++) {
            up[i] = (char)(n[i] >= 'a' && n[i] <= 'z' ? n[i] - 32 : n[i]);
            lo[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
        }
        assert_int_equal(ims_sip_hdr_id(ims_str_cstr(up)), id);
        assert_int_equal(ims_sip_hdr_id(ims_str_cstr(lo)), id);
    }
    assert_null(ims_sip_hdr_canonical_name(SIP_H_OTHER));
    assert_null(ims_sip_hdr_canonical_name(SIP_H__COUNT));
    /* compact forms (RFC 3261 §7.3.3 and extensions) */
    static const struct {
        const char *c;
        enum sip_hdr_id id;
    } compact[] = {
        { "i", SIP_H_CALL_ID },          { "m", SIP_H_CONTACT },
        { "e", SIP_H_CONTENT_ENCODING }, { "l", SIP_H_CONTENT_LENGTH },
        { "c", SIP_H_CONTENT_TYPE },     { "f", SIP_H_FROM },
        { "s", SIP_H_SUBJECT },          { "k", SIP_H_SUPPORTED },
        { "t", SIP_H_TO },               { "v", SIP_H_VIA },
        { "o", SIP_H_EVENT },            { "u", SIP_H_ALLOW_EVENTS },
        { "r", SIP_H_REFER_TO },         { "b", SIP_H_REFERRED_BY },
        { "a", SIP_H_ACCEPT_CONTACT },   { "j", SIP_H_REJECT_CONTACT },
        { "d", SIP_H_REQUEST_DISPOSITION }, { "x", SIP_H_SESSION_EXPIRES },
        { "y", SIP_H_IDENTITY },         { "V", SIP_H_VIA },
        { "I", SIP_H_CALL_ID },          { "g", SIP_H_OTHER },
        { "n", SIP_H_OTHER },            { "z", SIP_H_OTHER },
    };
    for (size_t i = 0; i < sizeof(compact) / sizeof(compact[0]); i++)
        assert_int_equal(ims_sip_hdr_id(ims_str_cstr(compact[i].c)), compact[i].id);
    assert_int_equal(ims_sip_hdr_id(IMS_S("MaX-fOrWaRdS")), SIP_H_MAX_FORWARDS);
    assert_int_equal(ims_sip_hdr_id(IMS_S("C%6Fntact")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("Via ")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("Vi")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("Viaa")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("Cal\r-ID")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("1")), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_STR_NULL), SIP_H_OTHER);
    assert_int_equal(ims_sip_hdr_id(IMS_S("X-Via")), SIP_H_OTHER);
}

static void test_methods(void **st)
{
    (void)st;
    for (int m = SIP_M_INVITE; m <= SIP_M_UPDATE; m++) {
        const char *n = ims_sip_method_name((enum sip_method)m);
        assert_non_null(n);
        assert_int_equal(ims_sip_method_id(ims_str_cstr(n)), m);
    }
    assert_null(ims_sip_method_name(SIP_M_UNKNOWN));
    assert_null(ims_sip_method_name((enum sip_method)99));
    /* case-sensitive (RFC 3261 §7.1) */
    assert_int_equal(ims_sip_method_id(IMS_S("invite")), SIP_M_UNKNOWN);
    assert_int_equal(ims_sip_method_id(IMS_S("RE%47IST%45R")), SIP_M_UNKNOWN);
    assert_int_equal(ims_sip_method_id(IMS_S("INVITEX")), SIP_M_UNKNOWN);
    assert_int_equal(ims_sip_method_id(IMS_STR_NULL), SIP_M_UNKNOWN);
}

const struct CMUnitTest misc_tests[] = {
    cmocka_unit_test(test_cseq),     cmocka_unit_test(test_list),
    cmocka_unit_test(test_param_get), cmocka_unit_test(test_sec_mech),
    cmocka_unit_test(test_hdr_ids),  cmocka_unit_test(test_methods),
    cmocka_unit_test(test_list_scan_edges), cmocka_unit_test(test_param_get_edges),
};
const size_t misc_ntests = NTESTS(misc_tests);
