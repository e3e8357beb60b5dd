/* test_sipx - the CSCF's SIP helpers (identities from URIs, Contact
 * bindings, joined header values, the table) and the Cx outcome mapping the
 * roles turn into SIP statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/cx_client.h"
#include "cscf/table.h"
#include "net/transport.h"
#include "cscf_tests.h"

static void parse(const char *text, struct sip_msg *m, struct sip_hdr *h, size_t nh)
{
    assert_true(ims_sip_parse(text, strlen(text), false, m, h, nh) > 0);
}

static void test_identities(void **state)
{
    static const struct {
        const char *uri, *impu, *impi;
    } k[] = {
        { "sip:alice@IMS.Test;transport=udp", "sip:alice@ims.test", "alice@ims.test" },
        { "sips:alice@ims.test:5061", "sip:alice@ims.test:5061", "alice@ims.test" },
        { "tel:+1-555-0001;phone-context=x", "tel:+1-555-0001", NULL },
        { "sip:ims.test", "sip:ims.test", NULL },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        struct sip_uri u;
        char out[128];
        assert_int_equal(ims_sip_parse_uri(ims_str_cstr(k[i].uri), &u), 0);
        assert_int_equal(cscf_impu_of(&u, out, sizeof(out)), 0);
        assert_string_equal(out, k[i].impu);
        int rc = cscf_impi_of(&u, out, sizeof(out));
        if (k[i].impi) {
            assert_int_equal(rc, 0);
            assert_string_equal(out, k[i].impi);
        } else {
            assert_int_equal(rc, IMS_EPROTO);
        }
    }
    struct sip_uri u;
    char tiny[8];
    assert_int_equal(ims_sip_parse_uri(IMS_S("sip:alice@ims.test"), &u), 0);
    assert_int_equal(cscf_impu_of(&u, tiny, sizeof(tiny)), IMS_ELIMIT);
    assert_int_equal(ims_sip_parse_uri(IMS_S("mailto:a@b"), &u), 0);
    assert_int_equal(cscf_impu_of(&u, tiny, sizeof(tiny)), IMS_EPROTO);
}

#define REG_HEAD                                                                                   \
    "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"              \
    "From: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: c1\r\n"                     \
    "CSeq: 1 REGISTER\r\n"

static void test_contacts(void **state)
{
    struct sip_msg m;
    struct sip_hdr h[32];
    struct ims_reg_binding b[4];
    size_t n;
    bool star;
    parse(REG_HEAD "Contact: <sip:a@10.0.0.1>;expires=30;q=0.5, \"A\" <sip:a@10.0.0.2>\r\n"
                   "m: <sip:a@10.0.0.3>;+sip.instance=\"<urn:uuid:x>\";reg-id=7\r\n"
                   "Expires: 600\r\nContent-Length: 0\r\n\r\n",
          &m, h, 32);
    assert_int_equal(cscf_contacts(&m, b, 4, &n, &star), 0);
    assert_int_equal(n, 3);
    assert_false(star);
    assert_true(ims_str_eq(b[0].uri, IMS_S("sip:a@10.0.0.1")));
    assert_int_equal(b[0].expires, 30);
    assert_int_equal(b[0].q, 500);
    assert_int_equal(b[1].expires, -1);
    assert_int_equal(b[1].q, 1000);
    assert_true(ims_str_eq(b[2].instance, IMS_S("<urn:uuid:x>")));
    assert_int_equal(b[2].reg_id, 7); /* RFC 5626 §4.2 */
    assert_int_equal(b[0].reg_id, 0);
    assert_int_equal(cscf_expires_hdr(&m), 600);
    assert_int_equal(cscf_contacts(&m, b, 2, &n, &star), IMS_ELIMIT);

    parse(REG_HEAD "Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n", &m, h, 32);
    assert_int_equal(cscf_contacts(&m, b, 4, &n, &star), 0);
    assert_true(star);
    assert_int_equal(n, 0);
    assert_int_equal(cscf_expires_hdr(&m), 0);

    parse(REG_HEAD "Contact: <sip:a@10.0.0.1>;expires=soon\r\nContent-Length: 0\r\n\r\n", &m, h,
          32);
    assert_int_equal(cscf_contacts(&m, b, 4, &n, &star), IMS_EPROTO);
    assert_int_equal(cscf_expires_hdr(&m), -1);

    /* reg-id is 1 .. 2^31-1 */
    static const char *const bad_ids[] = { "0", "2147483648", "x", "" };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 REG_HEAD "Contact: <sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:x>\";reg-id=%s\r\n"
                          "Content-Length: 0\r\n\r\n",
                 bad_ids[i]);
        parse(msg, &m, h, 32);
        assert_int_equal(cscf_contacts(&m, b, 4, &n, &star), IMS_EPROTO);
    }
    parse(REG_HEAD "Contact: <sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:x>\";reg-id=2147483647\r\n"
                   "Content-Length: 0\r\n\r\n",
          &m, h, 32);
    assert_int_equal(cscf_contacts(&m, b, 4, &n, &star), 0);
    assert_int_equal(b[0].reg_id, 2147483647u);
}

static void test_join_and_credentials(void **state)
{
    struct sip_msg m;
    struct sip_hdr h[32];
    parse(REG_HEAD "Path: <sip:p1;lr>\r\nPath: <sip:p2;lr>, <sip:p3;lr>\r\n"
                   "Authorization: Bearer abc\r\n"
                   "Authorization: Digest username=\"a@ims.test\", realm=\"ims.test\", "
                   "nonce=\"\", uri=\"sip:ims.test\", response=\"\", algorithm=AKAv1-MD5\r\n"
                   "Content-Length: 0\r\n\r\n",
          &m, h, 32);
    struct ims_buf b;
    ims_buf_init(&b, 1024);
    assert_int_equal(cscf_join_values(&m, SIP_H_PATH, &b), 0);
    assert_string_equal(b.p, "<sip:p1;lr>, <sip:p2;lr>, <sip:p3;lr>");
    ims_buf_free(&b);
    struct sip_nameaddr na;
    assert_int_equal(cscf_nth_nameaddr(&m, SIP_H_PATH, 2, &na), 0);
    assert_true(ims_str_eq(na.uri.raw, IMS_S("sip:p3;lr")));
    assert_int_equal(cscf_nth_nameaddr(&m, SIP_H_PATH, 3, &na), IMS_ENOENT);
    assert_int_equal(cscf_first_nameaddr(IMS_S("<sip:x;lr;orig>, <sip:y>"), &na), 0);
    assert_true(na.uri.lr);
    /* the Digest one, not the Bearer one */
    struct sip_auth a;
    assert_true(cscf_credentials(&m, &a));
    assert_true(ims_str_eq(a.username, IMS_S("a@ims.test")));
    assert_true(ims_str_eq(a.algorithm, IMS_S("AKAv1-MD5")));
    assert_int_equal(a.nonce.len, 0);
    char ra[32];
    assert_true(ims_str_eq(cscf_retry_after(30, ra, sizeof(ra)), IMS_S("Retry-After: 30\r\n")));
    assert_int_equal(cscf_retry_after(0, ra, sizeof(ra)).len, 0);
}

static struct dia_ans ans_result(uint32_t code, bool exp)
{
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    if (exp)
        dia_ans_exp(&a, code);
    else
        dia_ans_result(&a, code);
    return a;
}

/* The UE's address for lockout and audit: the bottom-most Via value, over
 * several lines and lists; received= first; IPv6 without brackets. */
static void test_ue_addr(void **state)
{
    (void)state;
    static const char fmt[] = "REGISTER sip:ims.test SIP/2.0\r\n%s"
                              "To: <sip:a@ims.test>\r\nFrom: <sip:a@ims.test>;tag=1\r\n"
                              "Call-ID: u1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    static const struct {
        const char *vias;
        const char *addr; /* NULL: none */
    } k[] = {
        { "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKp\r\n"
          "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa, SIP/2.0/UDP ue.test:5070;branch=z9hG4bKb;"
          "received=192.0.2.7;rport=5070\r\n",
          "192.0.2.7" },
        { "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKp\r\n"
          "Via: SIP/2.0/TCP [2001:db8::5]:5060;branch=z9hG4bKb\r\n",
          "2001:db8::5" },
        { "Via: SIP/2.0/UDP ue.test;branch=z9hG4bKb\r\n", "ue.test" },
        { "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp, bad via\r\n", NULL },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        char text[1024], out[64];
        snprintf(text, sizeof(text), fmt, k[i].vias);
        struct sip_msg m;
        struct sip_hdr h[16];
        parse(text, &m, h, 16);
        ims_str a = cscf_ue_addr(&m);
        int rc = cscf_ue_source(&m, out, sizeof(out));
        if (!k[i].addr) {
            assert_int_equal(a.len, 0);
            assert_int_equal(rc, IMS_ENOENT);
            assert_string_equal(out, "");
            continue;
        }
        assert_true(ims_str_eq(a, ims_str_cstr(k[i].addr)));
        assert_int_equal(rc, 0);
        assert_string_equal(out, k[i].addr);
        /* no room for the address and its NUL */
        assert_int_equal(cscf_ue_source(&m, out, strlen(k[i].addr)), IMS_ELIMIT);
    }
    assert_int_equal(cscf_ue_addr(NULL).len, 0);
}

/* integrity-protected (TS 24.229 §7.2A.2): which credentials claim it, the
 * lines that replace them, and who may claim it (cscf_hop_trusted). */
static void test_integrity_helpers(void **state)
{
    (void)state;
    static const char fmt[] = "REGISTER sip:ims.test SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKi1\r\n"
                              "To: <sip:a@ims.test>\r\nFrom: <sip:a@ims.test>;tag=1\r\n"
                              "Call-ID: i1\r\nCSeq: 1 REGISTER\r\n%s"
                              "Content-Length: 0\r\n\r\n";
    static const struct {
        const char *auth;
        bool claimed;
        const char *set_yes; /* the lines for "tls-yes" */
    } k[] = {
        { "Authorization: Digest username=\"a@ims.test\", integrity-protected=yes\r\n", true,
          "Authorization: Digest username=\"a@ims.test\", integrity-protected=\"tls-yes\"\r\n" },
        { "Authorization: Digest username=\"a@ims.test\"\r\n", false,
          "Authorization: Digest username=\"a@ims.test\", integrity-protected=\"tls-yes\"\r\n" },
        { "Authorization: Digest integrity-protected=\"tls-yes\"\r\n", true,
          "Authorization: Digest integrity-protected=\"tls-yes\"\r\n" },
        /* param names are case-insensitive (RFC 3261 §7.3.1); the name inside
         * a value is no claim */
        { "Authorization: Digest username=\"a@ims.test\", INTEGRITY-Protected=yes\r\n", true,
          "Authorization: Digest username=\"a@ims.test\", integrity-protected=\"tls-yes\"\r\n" },
        { "Authorization: Digest username=\"integrity-protected@ims.test\"\r\n", false,
          "Authorization: Digest username=\"integrity-protected@ims.test\", "
          "integrity-protected=\"tls-yes\"\r\n" },
        /* another scheme: nobody downstream reads it, so it goes on as it came */
        { "Authorization: Bearer abc=\r\nAuthorization: Foo integrity-protected=yes\r\n", false,
          "Authorization: Bearer abc=\r\nAuthorization: Foo integrity-protected=yes\r\n" },
        { "", false, "" },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), fmt, k[i].auth);
        struct sip_msg m;
        struct sip_hdr h[16];
        parse(text, &m, h, 16);
        assert_int_equal(cscf_auth_integrity_claimed(&m), k[i].claimed);
        struct ims_buf b;
        ims_buf_init(&b, 4096);
        assert_int_equal(cscf_auth_integrity_set(&m, "tls-yes", &b), 0);
        assert_int_equal(b.len, strlen(k[i].set_yes));
        assert_memory_equal(b.p ? b.p : "", k[i].set_yes, b.len);
        ims_buf_reset(&b);
        assert_int_equal(cscf_auth_integrity_set(&m, NULL, &b), 0);
        char got[512];
        snprintf(got, sizeof(got), "%.*s", (int)b.len, b.p ? b.p : "");
        assert_null(strstr(got, "integrity-protected=\""));
        ims_buf_free(&b);
    }

    struct ims_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct ims_cscf g;
    memset(&g, 0, sizeof(g));
    g.cfg = &cfg;
    struct sip_tp_rx rx;
    memset(&rx, 0, sizeof(rx));
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:5060"), 5060, &rx.src), 0);
    assert_false(cscf_hop_trusted(&g, &rx)); /* unset: only our own roles */
    rx.from_self = true;
    assert_true(cscf_hop_trusted(&g, &rx));
    rx.from_self = false;
    char list[] = "127.0.0.1:5060, 10.1.0.0/16";
    cfg.privacy_trusted = list;
    assert_true(cscf_hop_trusted(&g, &rx));
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:5099"), 5060, &rx.src), 0);
    assert_false(cscf_hop_trusted(&g, &rx)); /* a UE on the same host */
    assert_int_equal(ims_addr_parse(IMS_S("10.1.2.3:40000"), 5060, &rx.src), 0);
    assert_true(cscf_hop_trusted(&g, &rx));
}

static void test_outcomes(void **state)
{
    static const struct {
        uint32_t code;
        bool exp;
        enum ims_cx_outcome o;
    } k[] = {
        { DIA_SUCCESS, false, IMS_CX_OK },
        { DIA_FIRST_REGISTRATION, true, IMS_CX_OK },
        { DIA_UNREGISTERED_SERVICE, true, IMS_CX_OK },
        { DIA_ERROR_USER_UNKNOWN, true, IMS_CX_USER_UNKNOWN },
        { DIA_ERROR_IDENTITIES_DONT_MATCH, true, IMS_CX_IDENTITIES_DONT_MATCH },
        { DIA_ERROR_IDENTITY_NOT_REGISTERED, true, IMS_CX_NOT_REGISTERED },
        { DIA_ERROR_ROAMING_NOT_ALLOWED, true, IMS_CX_ROAMING_NOT_ALLOWED },
        { DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED, true, IMS_CX_SCHEME_UNSUPPORTED },
        { DIA_AUTHORIZATION_REJECTED, false, IMS_CX_AUTH_REJECTED },
        { DIA_UNABLE_TO_COMPLY, false, IMS_CX_UNAVAILABLE },
        { DIA_TOO_BUSY, false, IMS_CX_UNAVAILABLE },
        { 3002, false, IMS_CX_UNAVAILABLE }, /* DIAMETER_UNABLE_TO_DELIVER */
        { DIA_MISSING_AVP, false, IMS_CX_REFUSED },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        struct dia_ans a = ans_result(k[i].code, k[i].exp);
        if (ims_cx_outcome(0, &a) != k[i].o)
            fail_msg("code %u exp %d", k[i].code, k[i].exp);
    }
    assert_int_equal(ims_cx_outcome(IMS_ETIMEDOUT, NULL), IMS_CX_UNAVAILABLE);
    struct dia_ans none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(ims_cx_outcome(0, &none), IMS_CX_UNAVAILABLE); /* no result at all */
}

static int count_fn(void **val, bool room, void *ctx)
{
    int *n = ctx;
    if (!*val) {
        if (!room)
            return IMS_ELIMIT;
        *val = strdup("v");
        (*n)++;
    }
    return 0;
}

static void drop_visit(ims_str key, void **val, void *ctx)
{
    free(*val);
    *val = NULL;
}

static void test_table(void **state)
{
    struct cscf_table *t = NULL;
    assert_int_equal(cscf_table_new(4, 3, free, &t), 0);
    int made = 0;
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(cscf_table_with(t, ims_str_cstr(k), count_fn, &made),
                         i < 3 ? 0 : IMS_ELIMIT);
    }
    assert_int_equal(made, 3);
    assert_int_equal(cscf_table_count(t), 3);
    /* existing keys still work when full */
    assert_int_equal(cscf_table_with(t, IMS_S("key1"), count_fn, &made), 0);
    assert_int_equal(made, 3);
    char big[CSCF_TABLE_KEY_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(cscf_table_with(t, ims_str_cstr(big), count_fn, &made), IMS_EINVAL);
    cscf_table_sweep(t, 0, 2, drop_visit, NULL);
    cscf_table_sweep(t, 1, 2, drop_visit, NULL);
    assert_int_equal(cscf_table_count(t), 0);
    assert_int_equal(cscf_table_with(t, IMS_S("key3"), count_fn, &made), 0);
    cscf_table_free(t);
}

int run_sipx_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_contacts),
        cmocka_unit_test(test_join_and_credentials),
        cmocka_unit_test(test_ue_addr),
        cmocka_unit_test(test_integrity_helpers),
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests_name("sipx", tests, NULL, NULL);
}
