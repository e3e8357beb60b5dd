/* test_privacy - the privacy service's pure parts (src/cscf/privacy.h): the
 * Privacy values (RFC 3323 §4.2, RFC 3325 §9.3), the edits a request or a
 * response gets at the trust-domain boundary (checked on the rewritten
 * message, as the proxy core would send it), the critical rejection, and
 * the trusted-peer list. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/privacy.h"
#include "sip/build.h"
#include "sip/msg.h"

#define REQ_HEAD                                                                                   \
    "INVITE sip:bob@127.0.0.1:5090 SIP/2.0\r\n"                                                    \
    "Via: SIP/2.0/UDP 127.0.0.1:6060;branch=z9hG4bK1\r\n"                                          \
    "From: \"Alice Liddell\" <sip:alice@ims.test>;tag=a1\r\n"                                      \
    "To: <sip:bob@ims.test>\r\n"                                                                   \
    "Call-ID: c1\r\nCSeq: 1 INVITE\r\n"                                                            \
    "Contact: <sip:alice@127.0.0.1:5080>\r\n"                                                      \
    "P-Asserted-Identity: <sip:alice@ims.test>\r\n"                                                \
    "User-Agent: Alice's phone 1.0\r\nOrganization: Wonderland\r\n"                                \
    "Subject: tea\r\nCall-Info: <http://ims.test/alice.jpg>;purpose=icon\r\n"                      \
    "Reply-To: <sip:alice@ims.test>\r\nIn-Reply-To: 42@ims.test\r\n"

struct msg {
    struct sip_msg m;
    struct sip_hdr h[64];
};

static void parse(const char *text, struct msg *x)
{
    assert_true(ims_sip_parse(text, strlen(text), false, &x->m, x->h, 64) > 0);
}

/* What a forward with these edits sends: the header removals and the added
 * lines applied by the one rewrite the proxy core uses. */
static void rewrite(const struct sip_msg *m, const struct ims_priv_edits *e, ims_str add,
                    struct ims_buf *out, struct msg *res)
{
    struct sip_edit ed[SIP_EDIT_MAX];
    size_t n = 0;
    for (size_t i = 0; i < m->nhdrs; i++)
        for (size_t k = 0; k < e->ndel; k++)
            if (m->hdrs[i].id == e->del[k] && m->hdrs[i].id != SIP_H_OTHER)
                ed[n++] = (struct sip_edit){ .op = SIP_EDIT_DELETE, .hdr = i };
    if (add.len)
        ed[n++] = (struct sip_edit){ .op = SIP_EDIT_INSERT, .hdr = m->nhdrs, .text = add };
    assert_int_equal(ims_sip_rewrite(out, m, ed, n), 0);
    assert_true(ims_sip_parse(out->p, out->len, false, &res->m, res->h, 64) > 0);
}

static bool has(const struct sip_msg *m, enum sip_hdr_id id)
{
    return ims_sip_hdr_first(m, id) != NULL;
}

static unsigned values(const char *privacy)
{
    char text[1024];
    snprintf(text, sizeof(text), "%sPrivacy: %s\r\nContent-Length: 0\r\n\r\n", REQ_HEAD, privacy);
    struct msg x;
    parse(text, &x);
    unsigned v = 0;
    assert_int_equal(ims_privacy_values(&x.m, &v), 0);
    return v;
}

static void test_values(void **state)
{
    (void)state;
    assert_int_equal(values("id"), IMS_PRIV_ID);
    assert_int_equal(values("header; ID ;user"), IMS_PRIV_HEADER | IMS_PRIV_ID | IMS_PRIV_USER);
    assert_int_equal(values("session;critical"), IMS_PRIV_SESSION | IMS_PRIV_CRITICAL);
    assert_int_equal(values("none"), IMS_PRIV_NONE);
    assert_int_equal(values("id, header"), IMS_PRIV_ID | IMS_PRIV_HEADER);
    assert_int_equal(values("history"), IMS_PRIV_OTHER);

    /* two headers add up; none at all is 0 */
    struct msg x;
    parse(REQ_HEAD "Privacy: id\r\nPrivacy: user\r\nContent-Length: 0\r\n\r\n", &x);
    unsigned v = 99;
    assert_int_equal(ims_privacy_values(&x.m, &v), 0);
    assert_int_equal(v, IMS_PRIV_ID | IMS_PRIV_USER);
    parse(REQ_HEAD "Content-Length: 0\r\n\r\n", &x);
    assert_int_equal(ims_privacy_values(&x.m, &v), 0);
    assert_int_equal(v, 0);

    static const char *const bad[] = { "id;;user", "id user", "\"id\"", "id;" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%sPrivacy: %s\r\nContent-Length: 0\r\n\r\n", REQ_HEAD,
                 bad[i]);
        parse(text, &x);
        assert_int_equal(ims_privacy_values(&x.m, &v), IMS_EPROTO);
    }
}

/* Applies the request edits for Privacy value `privacy` (NULL: none). */
static void request(const char *privacy, struct ims_priv_edits *e, struct ims_buf *out,
                    struct msg *res)
{
    char text[1024];
    snprintf(text, sizeof(text), "%s%s%s%sContent-Length: 0\r\n\r\n", REQ_HEAD,
             privacy ? "Privacy: " : "", privacy ? privacy : "", privacy ? "\r\n" : "");
    struct msg x;
    parse(text, &x);
    struct ims_buf add;
    ims_buf_init(&add, 1024);
    assert_int_equal(ims_privacy_request(&x.m, &add, e), 0);
    if (!e->reject)
        rewrite(&x.m, e, ims_buf_str(&add), out, res);
    ims_buf_free(&add);
}

static const enum sip_hdr_id identifying[] = { SIP_H_USER_AGENT, SIP_H_ORGANIZATION,
                                               SIP_H_SUBJECT,    SIP_H_CALL_INFO,
                                               SIP_H_REPLY_TO,   SIP_H_IN_REPLY_TO };

static void test_request_id(void **state)
{
    (void)state;
    struct ims_priv_edits e;
    struct ims_buf out;
    ims_buf_init(&out, 8192);
    struct msg res;
    /* RFC 3325 §9.3: id -> no PAI past the boundary, everything else stays */
    request("id", &e, &out, &res);
    assert_int_equal(e.reject, 0);
    assert_false(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_false(has(&res.m, SIP_H_PRIVACY));
    assert_true(ims_str_eq(res.m.from.uri.raw, IMS_S("sip:alice@ims.test")));
    for (size_t i = 0; i < sizeof(identifying) / sizeof(identifying[0]); i++)
        assert_true(has(&res.m, identifying[i]));

    /* no Privacy: nothing at all (Spec(T) of TS 24.229: PAI reaches the UE) */
    request(NULL, &e, &out, &res);
    assert_int_equal(e.ndel, 0);
    assert_true(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));

    /* none: nothing, and the Privacy header stays for the UA to see */
    request("none", &e, &out, &res);
    assert_int_equal(e.ndel, 0);
    assert_true(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_true(has(&res.m, SIP_H_PRIVACY));
    assert_true(has(&res.m, SIP_H_USER_AGENT));
    ims_buf_free(&out);
}

static void test_request_header_user(void **state)
{
    (void)state;
    struct ims_priv_edits e;
    struct ims_buf out;
    ims_buf_init(&out, 8192);
    struct msg res;
    /* header: the identifying headers go; PAI and From stay */
    request("header", &e, &out, &res);
    for (size_t i = 0; i < sizeof(identifying) / sizeof(identifying[0]); i++)
        assert_false(has(&res.m, identifying[i]));
    assert_true(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_true(has(&res.m, SIP_H_CONTACT)); /* not obscured: needs a B2BUA */
    assert_true(ims_str_eq(res.m.from.display, IMS_S("Alice Liddell")));

    /* user: anonymous From with the same tag, the identifying headers gone */
    request("user", &e, &out, &res);
    assert_true(ims_str_eq(res.m.from.uri.raw, IMS_S("sip:anonymous@anonymous.invalid")));
    assert_true(ims_str_eq(res.m.from.display, IMS_S("Anonymous")));
    assert_true(ims_str_eq(res.m.from.tag, IMS_S("a1")));
    for (size_t i = 0; i < sizeof(identifying) / sizeof(identifying[0]); i++)
        assert_false(has(&res.m, identifying[i]));
    assert_true(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_false(has(&res.m, SIP_H_PRIVACY));
    assert_true(memmem(out.p, out.len, "Alice", 5) == NULL);

    /* all of them */
    request("id;header;user", &e, &out, &res);
    assert_false(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_true(memmem(out.p, out.len, "alice", 5) != NULL); /* the Contact only */
    assert_true(memmem(out.p, out.len, "alice@ims.test", 14) == NULL);
    ims_buf_free(&out);
}

static void test_request_critical(void **state)
{
    (void)state;
    struct ims_priv_edits e;
    struct ims_buf out;
    ims_buf_init(&out, 8192);
    struct msg res;
    /* RFC 3323 §5: what we cannot give, asked for as critical: refused */
    request("session;critical", &e, &out, &res);
    assert_int_equal(e.reject, 500);
    assert_non_null(e.reason);
    request("id;x-future;critical", &e, &out, &res);
    assert_int_equal(e.reject, 500);
    /* not critical: session is ignored, id applied */
    request("session;id", &e, &out, &res);
    assert_int_equal(e.reject, 0);
    assert_false(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    /* critical with what we can give: applied */
    request("id;header;critical", &e, &out, &res);
    assert_int_equal(e.reject, 0);
    assert_false(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_false(has(&res.m, SIP_H_USER_AGENT));
    ims_buf_free(&out);
}

static void test_response(void **state)
{
    (void)state;
    static const char rsp[] = "SIP/2.0 200 OK\r\n"
                              "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\n"
                              "From: <sip:alice@ims.test>;tag=a1\r\n"
                              "To: <sip:bob@ims.test>;tag=b1\r\n"
                              "Call-ID: c1\r\nCSeq: 1 INVITE\r\n"
                              "P-Asserted-Identity: <sip:bob@ims.test>\r\n"
                              "Privacy: id;user;critical\r\n"
                              "Server: Bob's phone\r\nOrganization: Looking Glass\r\n"
                              "Content-Length: 0\r\n\r\n";
    struct msg x, res;
    parse(rsp, &x);
    struct ims_buf add, out;
    ims_buf_init(&add, 1024);
    ims_buf_init(&out, 8192);
    struct ims_priv_edits e;
    assert_int_equal(ims_privacy_response(&x.m, &add, &e), 0);
    assert_int_equal(e.reject, 0);
    assert_int_equal(add.len, 0); /* From is the caller's own: not anonymised */
    rewrite(&x.m, &e, ims_buf_str(&add), &out, &res);
    assert_false(has(&res.m, SIP_H_P_ASSERTED_IDENTITY));
    assert_false(has(&res.m, SIP_H_SERVER));
    assert_false(has(&res.m, SIP_H_ORGANIZATION));
    assert_false(has(&res.m, SIP_H_PRIVACY));
    assert_true(ims_str_eq(res.m.from.uri.raw, IMS_S("sip:alice@ims.test")));
    ims_buf_free(&add);
    ims_buf_free(&out);
}

static void test_trust(void **state)
{
    (void)state;
    char err[160];
    const char *list = "10.0.0.0/8, 192.0.2.7, 127.0.0.1:5070, [::1]:6060, 2001:db8::/32, "
                       "Scscf.IMS.test, as.ims.test:5080";
    assert_int_equal(ims_privacy_trust_check(list, err, sizeof(err)), 0);
    assert_int_equal(ims_privacy_trust_check(NULL, err, sizeof(err)), 0);
    assert_int_equal(ims_privacy_trust_check("", err, sizeof(err)), 0);
    static const char *const bad[] = { "10.0.0.0/33", "300.1.1.1/8", "host_name", "1.2.3.4:0",
                                       "1.2.3.4:99999", "[::1", "[10.0.0.1]", "a.b:x",
                                       "::1/129" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ims_privacy_trust_check(bad[i], err, sizeof(err)), IMS_EINVAL);
        assert_non_null(strstr(err, bad[i]));
    }
    static const struct {
        const char *host;
        uint16_t port;
        bool want;
    } k[] = {
        { "10.1.2.3", 5060, true },       { "11.1.2.3", 5060, false },
        { "192.0.2.7", 0, true },         { "192.0.2.8", 5060, false },
        { "127.0.0.1", 5070, true },      { "127.0.0.1", 5090, false }, /* a UE on loopback */
        { "[::1]", 6060, true },          { "::1", 6060, true },
        { "[::1]", 5060, false },         { "[2001:db8:1::5]", 5060, true },
        { "[2001:db9::5]", 5060, false }, { "scscf.ims.test", 5060, true },
        { "evil.test", 5060, false },     { "as.ims.test", 5080, true },
        { "as.ims.test", 5081, false },   { "", 5060, false },
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        assert_int_equal(ims_privacy_trusted(list, ims_str_cstr(k[i].host), k[i].port), k[i].want);
    /* the default: nobody but our own roles (checked by the caller) */
    assert_false(ims_privacy_trusted(NULL, IMS_S("127.0.0.1"), 5070));
}

/* [privacy] in the configuration: defaults, and a bad list refused at load
 * with its line and key (docs/config.md). */
static void test_config(void **state)
{
    (void)state;
    struct ims_cfg *cfg = NULL;
    char err[256];
    assert_int_equal(ims_cfg_load_string("t.conf", "[core]\nroles = pcscf\n", &cfg, err,
                                         sizeof(err)),
                     0);
    assert_true(cfg->privacy_enabled);
    assert_null(cfg->privacy_trusted);
    ims_cfg_free(cfg);
    cfg = NULL;
    assert_int_equal(ims_cfg_load_string("t.conf",
                                         "[privacy]\nenabled = no\n"
                                         "trusted = 10.0.0.0/8, scscf.ims.test\n",
                                         &cfg, err, sizeof(err)),
                     0);
    assert_false(cfg->privacy_enabled);
    assert_string_equal(cfg->privacy_trusted, "10.0.0.0/8, scscf.ims.test");
    ims_cfg_free(cfg);
    cfg = NULL;
    assert_int_equal(ims_cfg_load_string("t.conf", "[privacy]\n\ntrusted = 10.0.0.0/33\n", &cfg,
                                         err, sizeof(err)),
                     IMS_EINVAL);
    assert_null(cfg);
    assert_non_null(strstr(err, "t.conf:3: trusted"));
    assert_non_null(strstr(err, "10.0.0.0/33"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),           cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_request_header_user), cmocka_unit_test(test_request_critical),
        cmocka_unit_test(test_response),         cmocka_unit_test(test_trust),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
