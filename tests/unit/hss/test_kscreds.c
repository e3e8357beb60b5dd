/* test_kscreds - Keystone-backed subscribers (src/hss/ks_creds.c): the
 * ims-digest blob, and the store side of a UAR/MAR (hss_ks_prepare,
 * ims_hss_mar_ext) over the fixture's SQLite store.  The Keystone fetch
 * itself runs against a real Keystone in tests/e2e/ims/t_kscred.sh. */
#include <stdio.h>
#include <string.h>

#include "crypto/digest.h"
#include "dia/msgs.h"
#include "hss/ks_creds.h"
#include "hss_tests.h"

static const char *const IMPI = "dan@ims.test";

static void test_blob(void **state)
{
    (void)state;
    struct hss_ks_secret s;
    char want[IMS_DIGEST_HEX_MAX + 1];

    memset(&s, 0, sizeof(s));
    assert_int_equal(hss_ks_parse_blob("{\"ha1_md5\": \"0123456789ABCDEF0123456789abcdef\"}",
                                       S(IMPI), &s), 0);
    assert_true(s.has_ha1[IMS_DIGEST_MD5]);
    assert_false(s.has_ha1[IMS_DIGEST_SHA256]);
    assert_string_equal(s.ha1[IMS_DIGEST_MD5], "0123456789abcdef0123456789abcdef");
    assert_string_equal(s.realm, "ims.test"); /* the IMPI's domain */

    memset(&s, 0, sizeof(s));
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"pw\", \"realm\": \"other.test\"}",
                                       S(IMPI), &s), 0);
    assert_string_equal(s.realm, "other.test");
    for (int a = 0; a < IMS_DIGEST_NALG; a++) {
        ims_digest_ha1((enum ims_digest_alg)a, S(IMPI), S("other.test"), S("pw"), want);
        assert_true(s.has_ha1[a]);
        assert_string_equal(s.ha1[a], want);
    }

    memset(&s, 0, sizeof(s));
    assert_int_equal(hss_ks_parse_blob("{\"ha1\": \"0123456789abcdef0123456789abcdef\", "
                                       "\"impi\": \"dan@ims.test\"}", S(IMPI), &s), 0);
    assert_true(s.has_ha1[IMS_DIGEST_MD5]);
    /* refused: another IMPI, a short HA1, no secret at all, not JSON, no '@' */
    assert_int_equal(hss_ks_parse_blob("{\"ha1\": \"0123456789abcdef0123456789abcdef\", "
                                       "\"impi\": \"eve@ims.test\"}", S(IMPI), &s), IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("{\"ha1_md5\": \"0123\"}", S(IMPI), &s), IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("{\"realm\": \"ims.test\"}", S(IMPI), &s), IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("ha1=abc", S(IMPI), &s), IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"pw\"}", S("dan"), &s), IMS_EPROTO);
    /* a realm that would end the challenge's quoted-string, or its line */
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"pw\", \"realm\": "
                                       "\"ims.test\\\"\\r\\nContact: <sip:x@y>\"}", S(IMPI), &s),
                     IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"pw\", \"realm\": \"a\\\\b\"}", S(IMPI),
                                       &s), IMS_EPROTO);
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"pw\", \"realm\": \"\"}", S(IMPI), &s),
                     IMS_EPROTO);
    hss_ks_secret_clear(&s);
}

static struct cx_mar mk_mar(const char *impi, const char *impu)
{
    struct cx_mar r;
    memset(&r, 0, sizeof(r));
    r.impi = S(impi);
    r.impu = S(impu);
    r.server_name = S(SCSCF1);
    r.n_items = 1;
    r.item.scheme = S("SIP Digest");
    r.item.present = 1u << CX_ITEM_SCHEME;
    r.present = 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
    return r;
}

static void found(struct hss_ks_secret *s)
{
    memset(s, 0, sizeof(*s));
    s->state = HSS_KS_FOUND;
    snprintf(s->user_id, sizeof(s->user_id), "ks-user-1");
    snprintf(s->project_id, sizeof(s->project_id), "ks-project-1");
    assert_int_equal(hss_ks_parse_blob("{\"password\": \"dan-pw\"}", S(IMPI), s), 0);
}

static void test_prepare(void **state)
{
    struct hfix *f = *state;
    struct hss_ks *k;
    struct hss_ks_secret s;
    enum hss_ks_route route;
    struct hss_result r;
    /* the store side needs neither the client nor the loop; ttl 0: no cache */
    assert_int_equal(hss_ks_new(NULL, NULL, 0, "default", &k), 0);

    /* a local subscriber never goes to Keystone */
    memset(&s, 0, sizeof(s));
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_MAR, S("alice@ims.test"), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_LOCAL);
    assert_int_equal(s.state, HSS_KS_NONE);

    /* unknown to the store: fetch first (UAR and MAR alike) */
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_UAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_FETCH);
    assert_int_equal(s.state, HSS_KS_NEED);

    /* not at Keystone either: the ordinary handler (user unknown) */
    memset(&s, 0, sizeof(s));
    s.state = HSS_KS_ABSENT;
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_UAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_LOCAL);

    /* Keystone failed: the request fails (UNABLE_TO_COMPLY) */
    s.state = HSS_KS_FAILED;
    assert_int_equal(hss_ks_prepare(k, f->st, DIA_CMD_MAR, S(IMPI), &s, &route), IMS_EBACKEND);

    /* found: the subscription is created without secrets, the MAR uses the fetched HA1 */
    found(&s);
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_MAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_EXT);
    struct ims_impi_rec pi;
    struct ims_sub_rec sub;
    OK(f->st, ims_store_impi_get(f->st, S(IMPI), &pi));
    assert_false(pi.has_ha1[IMS_DIGEST_MD5] || pi.has_password || pi.has_aka);
    assert_string_equal(pi.subscription, "ks-dan");
    OK(f->st, ims_store_sub_get(f->st, S("ks-dan"), &sub));
    assert_string_equal(sub.keystone_user_id, "ks-user-1");
    assert_string_equal(sub.keystone_project_id, "ks-project-1");

    ims_hss_result_init(&r);
    struct cx_mar q = mk_mar(IMPI, "sip:dan@ims.test");
    OK(f->st, ims_hss_mar_ext(f->st, &f->pol, &q, &s, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].digest.ha1, S(s.ha1[IMS_DIGEST_MD5])));
    assert_true(ims_str_eq(r.ans.items[0].digest.algorithm, S("MD5")));
    ims_hss_result_clear(&r);

    /* now in the store: a UAR is answered from it, a MAR fetches again (ttl 0) */
    memset(&s, 0, sizeof(s));
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_UAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_LOCAL);
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_MAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_FETCH);

    /* the credential went away: USER_UNKNOWN */
    memset(&s, 0, sizeof(s));
    s.state = HSS_KS_ABSENT;
    OK(f->st, hss_ks_prepare(k, f->st, DIA_CMD_MAR, S(IMPI), &s, &route));
    assert_int_equal(route, HSS_KS_ROUTE_EXT);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_mar_ext(f->st, &f->pol, &q, &s, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    ims_hss_result_clear(&r);

    /* AKA is not offered from Keystone credentials */
    found(&s);
    q.item.scheme = S("Digest-AKAv1-MD5");
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_mar_ext(f->st, &f->pol, &q, &s, &r));
    ASSERT_EXP(&r, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
    ims_hss_result_clear(&r);
    hss_ks_secret_clear(&s);
    hss_ks_free(k);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, hfix_setup, hfix_teardown)
const struct CMUnitTest kscreds_tests[] = {
    cmocka_unit_test(test_blob),
    T(test_prepare),
};
const size_t kscreds_ntests = sizeof(kscreds_tests) / sizeof(kscreds_tests[0]);
