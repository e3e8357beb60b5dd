/* test_auth - the S-CSCF's challenges and credential checks (cscf/auth.h):
 * Digest MD5 and SHA-256 (RFC 7616 known answers), nonce counts and
 * replays, stale nonces (stored and evicted), nonces bound to their IMPI,
 * realm and algorithm, wrong passwords up to the limit, AKA RES vs XRES and
 * the re-synchronisation trigger. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "crypto/encode.h"
#include "crypto/mac.h"
#include "cscf/auth.h"
#include "cscf_tests.h"
#include "sip/msg.h"

#define IMPI "alice@ims.test"
#define REALM "ims.test"
#define URI "sip:ims.test"
#define NOW 1800000000000LL /* ms */

struct chal {
    char line[700];
    struct sip_auth a; /* slices into line */
};

static struct ims_auth *new_store(unsigned ttl, unsigned fails)
{
    struct ims_auth_cfg c = { .nonce_ttl_s = ttl, .max_failures = fails, .max_entries = 64,
                              .nshards = 4 };
    struct ims_auth *a = NULL;
    assert_int_equal(ims_auth_new(&c, &a), 0);
    return a;
}

static void digest_vector(struct ims_auth_vector *v, enum ims_digest_alg alg, const char *pw)
{
    memset(v, 0, sizeof(*v));
    v->kind = IMS_AUTHK_DIGEST;
    v->alg = alg;
    snprintf(v->realm, sizeof(v->realm), "%s", REALM);
    assert_int_equal(ims_digest_ha1(alg, IMS_S(IMPI), IMS_S(REALM), ims_str_cstr(pw), v->ha1), 0);
}

/* Issues a challenge and parses its header line. */
static void challenge(struct ims_auth *a, const char *impi, const struct ims_auth_vector *v,
                      bool stale, int64_t now, struct chal *c)
{
    struct ims_buf b;
    ims_buf_init(&b, 4096);
    assert_int_equal(ims_auth_challenge(a, ims_str_cstr(impi), v, stale, now, &b), 0);
    assert_true(b.len < sizeof(c->line));
    memcpy(c->line, b.p, b.len + 1);
    ims_buf_free(&b);
    const char *pfx = "WWW-Authenticate: ";
    assert_memory_equal(c->line, pfx, strlen(pfx));
    char *end = strstr(c->line, "\r\n");
    assert_non_null(end);
    ims_str val = ims_str_make(c->line + strlen(pfx), (size_t)(end - c->line) - strlen(pfx));
    assert_int_equal(ims_sip_parse_auth(val, &c->a), 0);
}

/* A client's credentials for challenge c, computed here with the plain
 * digest functions (not the code under test). */
struct cred {
    char resp[IMS_DIGEST_HEX_MAX + 1], nc[9];
    struct sip_auth a;
};

static void answer(const struct chal *c, const char *user, const char *pw, enum ims_digest_alg alg,
                   unsigned nc, struct cred *out)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1];
    snprintf(out->nc, sizeof(out->nc), "%08x", nc);
    assert_int_equal(ims_digest_ha1(alg, ims_str_cstr(user), c->a.realm, ims_str_cstr(pw), ha1),
                     0);
    assert_int_equal(ims_digest_ha2(alg, IMS_S("REGISTER"), IMS_S(URI), NULL, ha2), 0);
    assert_int_equal(ims_digest_response(alg, ims_str_cstr(ha1), c->a.nonce, ims_str_cstr(out->nc),
                                         IMS_S("0a4f113b"), IMS_S("auth"), ims_str_cstr(ha2),
                                         out->resp),
                     0);
    memset(&out->a, 0, sizeof(out->a));
    out->a.scheme = IMS_S("Digest");
    out->a.username = ims_str_cstr(user);
    out->a.realm = c->a.realm;
    out->a.nonce = c->a.nonce;
    out->a.uri = IMS_S(URI);
    out->a.response = ims_str_cstr(out->resp);
    out->a.algorithm = c->a.algorithm;
    out->a.qop = IMS_S("auth");
    out->a.nc = ims_str_cstr(out->nc);
    out->a.cnonce = IMS_S("0a4f113b");
}

static enum ims_auth_verdict verify(struct ims_auth *a, const struct sip_auth *cr, int64_t now)
{
    enum ims_auth_verdict v;
    assert_int_equal(ims_auth_verify(a, cr, IMS_S("REGISTER"), now, &v, NULL, NULL), 0);
    return v;
}

/* An MD5 challenge to IMPI (password "secret") at NOW and its right answer
 * with nonce count 1. */
static void challenged(struct ims_auth *a, struct chal *c, struct cred *cr)
{
    struct ims_auth_vector v;
    digest_vector(&v, IMS_DIGEST_MD5, "secret");
    challenge(a, IMPI, &v, false, NOW, c);
    answer(c, IMPI, "secret", IMS_DIGEST_MD5, 1, cr);
}

/* RFC 7616 §3.9.1: the same request with MD5 and SHA-256. */
static void test_known_answers(void **state)
{
    struct ims_auth_vector v;
    char out[IMS_DIGEST_HEX_MAX + 1];
    memset(&v, 0, sizeof(v));
    snprintf(v.realm, sizeof(v.realm), "http-auth@example.org");
    static const struct {
        enum ims_digest_alg alg;
        const char *resp;
    } k[] = {
        { IMS_DIGEST_MD5, "8ca523f5e9506fed4657c9700eebdbec" },
        { IMS_DIGEST_SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" },
    };
    for (size_t i = 0; i < 2; i++) {
        v.alg = k[i].alg;
        assert_int_equal(ims_digest_ha1(v.alg, IMS_S("Mufasa"), ims_str_cstr(v.realm),
                                        IMS_S("Circle of Life"), v.ha1),
                         0);
        assert_int_equal(ims_auth_expected(&v, IMS_S("Mufasa"), IMS_S("GET"),
                                           IMS_S("/dir/index.html"),
                                           IMS_S("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
                                           IMS_S("00000001"),
                                           IMS_S("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
                                           IMS_S("auth"), out),
                         0);
        assert_string_equal(out, k[i].resp);
    }
}

static void test_digest_ok_and_nc(void **state)
{
    static const enum ims_digest_alg algs[] = { IMS_DIGEST_MD5, IMS_DIGEST_SHA256 };
    for (size_t i = 0; i < 2; i++) {
        struct ims_auth *a = new_store(60, 3);
        struct ims_auth_vector v;
        struct chal c;
        struct cred cr;
        digest_vector(&v, algs[i], "secret");
        challenge(a, IMPI, &v, false, NOW, &c);
        assert_true(ims_str_caseeq_lit(c.a.algorithm, ims_digest_alg_name(algs[i])));
        assert_true(ims_str_eq(c.a.qop, IMS_S("auth")));
        assert_null(c.a.stale.p);
        answer(&c, IMPI, "secret", algs[i], 1, &cr);
        assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
        /* RFC 7616 §3.4: the same nc again is a replay, a higher one is fine */
        assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_REPLAY);
        answer(&c, IMPI, "secret", algs[i], 2, &cr);
        assert_int_equal(verify(a, &cr.a, NOW + 2000), IMS_AUTH_OK);
        answer(&c, IMPI, "secret", algs[i], 1, &cr);
        assert_int_equal(verify(a, &cr.a, NOW + 2000), IMS_AUTH_REPLAY);
        ims_auth_free(a);
    }
}

static void test_stale(void **state)
{
    struct ims_auth *a = new_store(30, 3);
    struct ims_auth_vector v;
    struct chal c;
    struct cred cr;
    digest_vector(&v, IMS_DIGEST_MD5, "secret");
    challenge(a, IMPI, &v, false, NOW, &c);
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    /* stored, expired */
    assert_int_equal(verify(a, &cr.a, NOW + 31000), IMS_AUTH_STALE);
    /* forgotten (swept), still recognisably ours and expired: stale */
    ims_auth_expire(a, 0, 1, NOW + 120000);
    assert_int_equal(ims_auth_count(a), 0);
    assert_int_equal(verify(a, &cr.a, NOW + 120000), IMS_AUTH_STALE);
    /* a nonce that is not ours at all: just a new challenge */
    cr.a.nonce = IMS_S("bm90IG91cnMgYXQgYWxs");
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    /* stale=true is written into the header */
    challenge(a, IMPI, &v, true, NOW, &c);
    assert_true(ims_str_eq(c.a.stale, IMS_S("true")));
    ims_auth_free(a);
}

static void test_nonce_binding(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c;
    struct cred cr;
    digest_vector(&v, IMS_DIGEST_MD5, "secret");
    challenge(a, IMPI, &v, false, NOW, &c);
    /* another IMPI presenting alice's nonce: not a challenge of bob's */
    answer(&c, "bob@ims.test", "secret", IMS_DIGEST_MD5, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    /* and the MAC binds it to alice even after the challenge is gone */
    int64_t exp;
    uint8_t raw_key[32] = { 1 };
    struct ims_mac *key;
    assert_int_equal(ims_mac_new(raw_key, sizeof(raw_key), &key), 0);
    char n[IMS_AUTH_NONCE_MAX + 1];
    assert_int_equal(ims_auth_nonce_make(key, IMS_S(IMPI), 12345, n), 0);
    assert_int_equal(ims_auth_nonce_check(key, IMS_S(IMPI), ims_str_cstr(n), &exp), 0);
    assert_int_equal(exp, 12345);
    assert_int_equal(ims_auth_nonce_check(key, IMS_S("bob@ims.test"), ims_str_cstr(n), &exp),
                     IMS_ENOENT);
    n[5] = n[5] == 'A' ? 'B' : 'A';
    assert_int_equal(ims_auth_nonce_check(key, IMS_S(IMPI), ims_str_cstr(n), &exp), IMS_ENOENT);
    /* every nonce made differs from every other, for the same IMPI and
     * expiry too (RFC 7616 §3.3: unique per 401), and each checks */
    enum { NN = 512 };
    static char many[NN][IMS_AUTH_NONCE_MAX + 1];
    for (int i = 0; i < NN; i++) {
        assert_int_equal(ims_auth_nonce_make(key, IMS_S(IMPI), 12345, many[i]), 0);
        assert_int_equal(ims_auth_nonce_check(key, IMS_S(IMPI), ims_str_cstr(many[i]), &exp), 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(many[i], many[j]);
    }
    ims_mac_free(key);
    /* another realm or algorithm than the challenge's */
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    cr.a.realm = IMS_S("other.test");
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    cr.a.algorithm = IMS_S("SHA-256");
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    /* the real thing still works */
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
    ims_auth_free(a);
}

static void test_wrong_password_limit(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c;
    struct cred cr;
    digest_vector(&v, IMS_DIGEST_SHA256, "secret");
    for (int i = 1; i <= 3; i++) {
        challenge(a, IMPI, &v, false, NOW, &c);
        answer(&c, IMPI, "wrong", IMS_DIGEST_SHA256, 1, &cr);
        assert_int_equal(verify(a, &cr.a, NOW + 1000), i < 3 ? IMS_AUTH_WRONG : IMS_AUTH_TOO_MANY);
    }
    /* the count starts again, and a right answer resets it */
    challenge(a, IMPI, &v, false, NOW, &c);
    answer(&c, IMPI, "wrong", IMS_DIGEST_SHA256, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_WRONG);
    answer(&c, IMPI, "secret", IMS_DIGEST_SHA256, 2, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
    challenge(a, IMPI, &v, false, NOW, &c);
    answer(&c, IMPI, "wrong", IMS_DIGEST_SHA256, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_WRONG);
    ims_auth_free(a);
}

static void test_malformed(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct chal c;
    struct cred cr;
    challenged(a, &c, &cr);
    cr.a.nc = IMS_S("1"); /* not 8 hex digits */
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_MALFORMED);
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    cr.a.qop = IMS_S("auth-int");
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_MALFORMED);
    /* empty nonce (the TS 24.229 initial REGISTER): no check, a challenge */
    answer(&c, IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    cr.a.nonce = ims_str_make("", 0);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    ims_auth_free(a);
}

/* A realm that would end the quoted-string (or the header line) of the
 * challenge gives none: the HSS may have it from a credential a user wrote. */
static void test_bad_realm(void **state)
{
    (void)state;
    struct ims_auth *a = new_store(60, 3);
    static const char *const bad[] = { "ims.test\"\r\nContact: <sip:evil@x>\r\nX: \"",
                                       "ims\\\"test", "ims\ttest", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ims_auth_vector v;
        digest_vector(&v, IMS_DIGEST_MD5, "secret");
        snprintf(v.realm, sizeof(v.realm), "%s", bad[i]);
        struct ims_buf b;
        ims_buf_init(&b, 4096);
        assert_int_equal(ims_auth_challenge(a, IMS_S(IMPI), &v, false, NOW, &b), IMS_EINVAL);
        assert_int_equal(b.len, 0);
        ims_buf_free(&b);
    }
    /* and nothing was recorded: a good challenge still verifies */
    struct chal c;
    struct cred cr;
    challenged(a, &c, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
    ims_auth_free(a);
}

/* RFC 2069 form (no qop): accepted once per nonce. */
static void test_no_qop_once(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c;
    digest_vector(&v, IMS_DIGEST_MD5, "secret");
    challenge(a, IMPI, &v, false, NOW, &c);
    char ha2[IMS_DIGEST_HEX_MAX + 1], resp[IMS_DIGEST_HEX_MAX + 1];
    assert_int_equal(ims_digest_ha2(IMS_DIGEST_MD5, IMS_S("REGISTER"), IMS_S(URI), NULL, ha2), 0);
    assert_int_equal(ims_digest_response(IMS_DIGEST_MD5, ims_str_cstr(v.ha1), c.a.nonce,
                                         IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL,
                                         ims_str_cstr(ha2), resp),
                     0);
    struct sip_auth cr = { .scheme = IMS_S("Digest"), .username = IMS_S(IMPI),
                           .realm = c.a.realm, .nonce = c.a.nonce, .uri = IMS_S(URI),
                           .response = ims_str_cstr(resp) };
    assert_int_equal(verify(a, &cr, NOW + 1000), IMS_AUTH_OK);
    assert_int_equal(verify(a, &cr, NOW + 1000), IMS_AUTH_REPLAY);
    ims_auth_free(a);
}

static void aka_vector(struct ims_auth_vector *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = IMS_AUTHK_AKAV1;
    snprintf(v->realm, sizeof(v->realm), "%s", REALM);
    for (int i = 0; i < 16; i++) {
        v->rand[i] = (uint8_t)i;
        v->autn[i] = (uint8_t)(0xa0 + i);
    }
    memcpy(v->xres, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    v->xres_len = 8;
}

/* RFC 3310 §3.4: the response is Digest-MD5 with RES as the password. */
static void aka_answer(const struct chal *c, const uint8_t *res, size_t n, unsigned nc,
                       struct cred *out)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1];
    snprintf(out->nc, sizeof(out->nc), "%08x", nc);
    assert_int_equal(ims_digest_ha1(IMS_DIGEST_MD5, IMS_S(IMPI), c->a.realm,
                                    ims_str_make((const char *)res, n), ha1),
                     0);
    assert_int_equal(ims_digest_ha2(IMS_DIGEST_MD5, IMS_S("REGISTER"), IMS_S(URI), NULL, ha2), 0);
    assert_int_equal(ims_digest_response(IMS_DIGEST_MD5, ims_str_cstr(ha1), c->a.nonce,
                                         ims_str_cstr(out->nc), IMS_S("cn"), IMS_S("auth"),
                                         ims_str_cstr(ha2), out->resp),
                     0);
    memset(&out->a, 0, sizeof(out->a));
    out->a.scheme = IMS_S("Digest");
    out->a.username = IMS_S(IMPI);
    out->a.realm = c->a.realm;
    out->a.nonce = c->a.nonce;
    out->a.uri = IMS_S(URI);
    out->a.response = ims_str_cstr(out->resp);
    out->a.algorithm = IMS_S("AKAv1-MD5");
    out->a.qop = IMS_S("auth");
    out->a.nc = ims_str_cstr(out->nc);
    out->a.cnonce = IMS_S("cn");
}

static void test_aka(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c;
    struct cred cr;
    aka_vector(&v);
    challenge(a, IMPI, &v, false, NOW, &c);
    assert_true(ims_str_eq(c.a.algorithm, IMS_S("AKAv1-MD5")));
    /* the nonce is base64(RAND || AUTN) */
    uint8_t raw[40];
    size_t n = 0;
    assert_int_equal(ims_b64_decode(c.a.nonce, raw, sizeof(raw), &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(raw, v.rand, 16);
    assert_memory_equal(raw + 16, v.autn, 16);
    /* a wrong RES; the right one (RES = XRES) with the same nc is a replay,
     * with the next nc it passes */
    aka_answer(&c, (const uint8_t *)"\x11\x22\x33\x44\x55\x66\x77\x00", 8, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_WRONG);
    aka_answer(&c, v.xres, 8, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_REPLAY);
    aka_answer(&c, v.xres, 8, 2, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
    ims_auth_free(a);
}

/* RFC 3310 §3.3 / TS 33.203 §6.1.2: auts= asks for re-synchronisation; the
 * S-CSCF gets RAND (from the challenge) and AUTS for the MAR. */
static void test_aka_resync(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c;
    struct cred cr;
    aka_vector(&v);
    challenge(a, IMPI, &v, false, NOW, &c);
    uint8_t auts[14];
    for (int i = 0; i < 14; i++)
        auts[i] = (uint8_t)(0x30 + i);
    char b64[32];
    ims_b64_encode(auts, sizeof(auts), b64);
    aka_answer(&c, (const uint8_t *)"", 0, 1, &cr);
    cr.a.auts = ims_str_cstr(b64);
    struct ims_auth_resync rs;
    enum ims_auth_verdict vd;
    assert_int_equal(ims_auth_verify(a, &cr.a, IMS_S("REGISTER"), NOW + 1000, &vd, &rs, NULL), 0);
    assert_int_equal(vd, IMS_AUTH_RESYNC);
    assert_memory_equal(rs.rand, v.rand, 16);
    assert_memory_equal(rs.auts, auts, 14);
    /* the challenge is gone: the vector is burnt */
    cr.a.auts = IMS_STR_NULL;
    aka_answer(&c, v.xres, 8, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    /* a bad auts is malformed */
    challenge(a, IMPI, &v, false, NOW, &c);
    aka_answer(&c, v.xres, 8, 1, &cr);
    cr.a.auts = IMS_S("AAAA");
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_MALFORMED);
    ims_auth_free(a);
}

/* Up to 4 challenges per IMPI: the oldest makes room; each stays valid. */
static void test_several_challenges(void **state)
{
    struct ims_auth *a = new_store(60, 3);
    struct ims_auth_vector v;
    struct chal c[5];
    struct cred cr;
    digest_vector(&v, IMS_DIGEST_MD5, "secret");
    for (int i = 0; i < 5; i++)
        challenge(a, IMPI, &v, false, NOW, &c[i]);
    answer(&c[0], IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
    assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_NO_CHALLENGE);
    for (int i = 1; i < 5; i++) {
        answer(&c[i], IMPI, "secret", IMS_DIGEST_MD5, 1, &cr);
        assert_int_equal(verify(a, &cr.a, NOW + 1000), IMS_AUTH_OK);
    }
    ims_auth_forget(a, IMS_S(IMPI));
    assert_int_equal(ims_auth_count(a), 0);
    ims_auth_free(a);
}

int run_auth_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),   cmocka_unit_test(test_digest_ok_and_nc),
        cmocka_unit_test(test_stale),           cmocka_unit_test(test_nonce_binding),
        cmocka_unit_test(test_wrong_password_limit), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_realm),
        cmocka_unit_test(test_no_qop_once),     cmocka_unit_test(test_aka),
        cmocka_unit_test(test_aka_resync),      cmocka_unit_test(test_several_challenges),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
