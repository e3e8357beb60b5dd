/* test_hss_auth.c - hss/auth.c on a real store: vectors with committed
 * SQNs, re-synchronisation from a model UE's AUTS, Digest HA1. */
#include <string.h>

#include "crypto/aka.h"
#include "hss/auth.h"
#include "store_tests.h"

static const uint8_t K1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t OPC1[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                  0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

/* Model USIM (TS 33.102 Annex C.2.2, a = 32, Δ = 2^28). */
struct usim {
    uint64_t seq_ms[32];
    uint64_t sqn_max;
};

enum { UE_OK, UE_MAC_FAIL, UE_SYNC_FAIL };

static int usim_auth(struct usim *u, const struct ims_aka_vector *v, uint8_t res[8],
                     uint8_t auts[14])
{
    uint64_t sqn;
    uint8_t amf[2];
    if (ims_aka_ue_check(K1, OPC1, v->rand, v->autn, &sqn, amf, res, NULL, NULL))
        return UE_MAC_FAIL;
    uint64_t seq = ims_aka_sqn_seq(sqn), max = ims_aka_sqn_seq(u->sqn_max);
    unsigned ind = ims_aka_sqn_ind(sqn);
    if (seq <= u->seq_ms[ind] || (seq > max && seq - max > IMS_AKA_DELTA)) {
        assert_int_equal(ims_aka_auts_make(K1, OPC1, v->rand, u->sqn_max, auts), 0);
        return UE_SYNC_FAIL;
    }
    u->seq_ms[ind] = seq;
    if (seq > max)
        u->sqn_max = sqn;
    return UE_OK;
}

static void vectors(struct ims_store *st, size_t n, struct ims_aka_vector *v, size_t *got)
{
    enum ims_hss_auth_result res = 99;
    OK(st, ims_hss_aka_vectors(st, S("alice@ims.test"), IMS_AUTH_AKAV1_MD5, n, v, got, &res));
    assert_int_equal(res, IMS_HSS_AUTH_OK);
}

static void test_vectors_and_sqn(void **state)
{
    struct tfix *f = *state;
    struct ims_aka_vector v[IMS_HSS_MAX_VECTORS + 2];
    struct ims_impi_rec pi;
    struct usim ue = { { 0 }, 0 };
    uint8_t res[8], auts[14];
    size_t n = 0;
    enum ims_hss_auth_result r;
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, NULL, NULL);

    vectors(f->st, 3, v, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(ims_aka_sqn_seq(v[i].sqn) == i + 1);
        assert_int_equal(usim_auth(&ue, &v[i], res, auts), UE_OK);
        assert_memory_equal(res, v[i].xres, 8);
        ims_aka_vector_clear(&v[i]);
    }
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(pi.sqn == v[2].sqn || ims_aka_sqn_seq(pi.sqn) == 3);
    /* the cap */
    vectors(f->st, 50, v, &n);
    assert_int_equal(n, IMS_HSS_MAX_VECTORS);
    uint64_t last = v[n - 1].sqn;
    /* a restart never hands out an SQN again */
    tfix_reopen(f);
    vectors(f->st, 1, v, &n);
    assert_true(ims_aka_sqn_seq(v[0].sqn) == ims_aka_sqn_seq(last) + 1);
    assert_int_equal(usim_auth(&ue, &v[0], res, auts), UE_OK);

    /* refusals */
    OK(f->st, ims_hss_aka_vectors(f->st, S("nobody@ims.test"), IMS_AUTH_AKAV1_MD5, 1, v, &n, &r));
    assert_int_equal(r, IMS_HSS_AUTH_USER_UNKNOWN);
    assert_int_equal(n, 0);
    OK(f->st, ims_store_impi_set_schemes(f->st, S("alice@ims.test"), IMS_AUTH_AKAV2_MD5));
    OK(f->st, ims_hss_aka_vectors(f->st, S("alice@ims.test"), IMS_AUTH_AKAV1_MD5, 1, v, &n, &r));
    assert_int_equal(r, IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED);
    OK(f->st, ims_hss_aka_vectors(f->st, S("alice@ims.test"), IMS_AUTH_AKAV2_MD5, 1, v, &n, &r));
    assert_int_equal(r, IMS_HSS_AUTH_OK);
    OK(f->st, ims_store_impi_add(f->st, S("alice"), S("nokey@ims.test"), S("ims.test"),
                                 IMS_AUTH_ALL));
    OK(f->st, ims_hss_aka_vectors(f->st, S("nokey@ims.test"), IMS_AUTH_AKAV1_MD5, 1, v, &n, &r));
    assert_int_equal(r, IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED);
    assert_int_equal(ims_hss_aka_vectors(f->st, S("alice@ims.test"), IMS_AUTH_DIGEST_MD5, 1, v,
                                         &n, &r),
                     IMS_EINVAL);
}

/* The UE is ahead (the HE lost SQNs): sync failure, AUTS, resync, success. */
static void test_resync_round_trip(void **state)
{
    struct tfix *f = *state;
    struct ims_aka_vector v[2];
    struct ims_impi_rec pi;
    struct usim ue = { { 0 }, 0 };
    uint8_t res[8], auts[14];
    size_t n;
    enum ims_hss_auth_result r;
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, NULL, NULL);
    for (int i = 0; i < 40; i++) {
        vectors(f->st, 1, v, &n);
        assert_int_equal(usim_auth(&ue, &v[0], res, auts), UE_OK);
    }
    /* the HSS is restored from an old backup */
    tfix_sql(f, "UPDATE impi_sqn SET sqn = 97"); /* SEQ 3, IND 1 */
    vectors(f->st, 1, v, &n);
    assert_int_equal(usim_auth(&ue, &v[0], res, auts), UE_SYNC_FAIL);
    /* the S-CSCF sends RAND || AUTS back */
    OK(f->st, ims_hss_aka_resync(f->st, S("alice@ims.test"), v[0].rand, auts, &r));
    assert_int_equal(r, IMS_HSS_AUTH_OK);
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(ims_aka_sqn_seq(pi.sqn) == ims_aka_sqn_seq(ue.sqn_max));
    vectors(f->st, 2, v, &n);
    assert_int_equal(usim_auth(&ue, &v[0], res, auts), UE_OK);
    assert_memory_equal(res, v[0].xres, 8);

    /* the same AUTS again: SQN_HE is in range now, nothing moves backwards */
    uint64_t before;
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    before = pi.sqn;
    OK(f->st, ims_hss_aka_resync(f->st, S("alice@ims.test"), v[0].rand, auts, &r));
    assert_int_equal(r, IMS_HSS_AUTH_REJECTED); /* AUTS was for another RAND */
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(pi.sqn == before);
}

static void test_resync_wrong_mac_s(void **state)
{
    struct tfix *f = *state;
    struct ims_aka_vector v[1];
    struct ims_impi_rec pi;
    uint8_t auts[14];
    size_t n;
    enum ims_hss_auth_result r;
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, NULL, NULL);
    vectors(f->st, 1, v, &n);
    /* an AUTS claiming a huge SQN_MS, with a forged MAC-S */
    assert_int_equal(ims_aka_auts_make(K1, OPC1, v[0].rand, ims_aka_sqn_make(1000000, 0), auts),
                     0);
    auts[13] ^= 0x01;
    OK(f->st, ims_hss_aka_resync(f->st, S("alice@ims.test"), v[0].rand, auts, &r));
    assert_int_equal(r, IMS_HSS_AUTH_REJECTED);
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(ims_aka_sqn_seq(pi.sqn) == 1); /* unchanged */
    /* made with another K */
    static const uint8_t K2[16] = { 1, 2, 3 };
    assert_int_equal(ims_aka_auts_make(K2, OPC1, v[0].rand, ims_aka_sqn_make(5000, 0), auts), 0);
    OK(f->st, ims_hss_aka_resync(f->st, S("alice@ims.test"), v[0].rand, auts, &r));
    assert_int_equal(r, IMS_HSS_AUTH_REJECTED);
    OK(f->st, ims_hss_aka_resync(f->st, S("ghost@ims.test"), v[0].rand, auts, &r));
    assert_int_equal(r, IMS_HSS_AUTH_USER_UNKNOWN);
}

static void test_digest_ha1(void **state)
{
    struct tfix *f = *state;
    char ha1[IMS_DIGEST_HEX_MAX + 1], realm[IMS_STORE_ID_MAX], want[IMS_DIGEST_HEX_MAX + 1];
    enum ims_hss_auth_result r;
    provision(f->st, "alice", "alice@ims.test", NULL, NULL, "pw", NULL);
    OK(f->st, ims_hss_digest_ha1(f->st, S("alice@ims.test"), IMS_DIGEST_SHA256, ha1, realm, &r));
    assert_int_equal(r, IMS_HSS_AUTH_OK);
    assert_string_equal(realm, "ims.test");
    ims_digest_ha1(IMS_DIGEST_SHA256, S("alice@ims.test"), S("ims.test"), S("pw"), want);
    assert_string_equal(ha1, want);
    /* a full RFC 7616 check, as the S-CSCF will do it with this HA1 */
    char ha2[IMS_DIGEST_HEX_MAX + 1], resp[IMS_DIGEST_HEX_MAX + 1], ue[IMS_DIGEST_HEX_MAX + 1];
    ims_digest_ha2(IMS_DIGEST_SHA256, S("REGISTER"), S("sip:ims.test"), NULL, ha2);
    ims_digest_response(IMS_DIGEST_SHA256, S(ha1), S("n0nce"), S("00000001"), S("c"), S("auth"),
                        S(ha2), resp);
    ims_digest_response(IMS_DIGEST_SHA256, S(want), S("n0nce"), S("00000001"), S("c"), S("auth"),
                        S(ha2), ue);
    assert_true(ims_digest_equal(S(resp), S(ue)));

    OK(f->st, ims_store_impi_set_schemes(f->st, S("alice@ims.test"), IMS_AUTH_DIGEST_MD5));
    OK(f->st, ims_hss_digest_ha1(f->st, S("alice@ims.test"), IMS_DIGEST_SHA256, ha1, realm, &r));
    assert_int_equal(r, IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED);
    OK(f->st, ims_hss_digest_ha1(f->st, S("bob@ims.test"), IMS_DIGEST_MD5, ha1, realm, &r));
    assert_int_equal(r, IMS_HSS_AUTH_USER_UNKNOWN);
}

/* AKAv2 (RFC 4169): the S-CSCF derives the Digest password from the
 * vector exactly as the UE derives it from its own RES, IK and CK. */
static void test_akav2_password(void **state)
{
    struct tfix *f = *state;
    struct ims_aka_vector v[1];
    size_t n;
    enum ims_hss_auth_result r;
    uint64_t sqn;
    uint8_t amf[2], res[8], ck[16], ik[16];
    char pw_net[IMS_AKA_V2_PASSWORD_LEN + 1], pw_ue[IMS_AKA_V2_PASSWORD_LEN + 1];
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, NULL, NULL);
    OK(f->st, ims_hss_aka_vectors(f->st, S("alice@ims.test"), IMS_AUTH_AKAV2_MD5, 1, v, &n, &r));
    assert_int_equal(ims_aka_ue_check(K1, OPC1, v[0].rand, v[0].autn, &sqn, amf, res, ck, ik), 0);
    assert_int_equal(ims_aka_password_v2(v[0].xres, 8, v[0].ik, v[0].ck, pw_net), 0);
    assert_int_equal(ims_aka_password_v2(res, 8, ik, ck, pw_ue), 0);
    assert_string_equal(pw_net, pw_ue);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest hss_auth_tests[] = {
    T(test_vectors_and_sqn), T(test_resync_round_trip), T(test_resync_wrong_mac_s),
    T(test_digest_ha1),      T(test_akav2_password),
};
const size_t hss_auth_ntests = sizeof(hss_auth_tests) / sizeof(hss_auth_tests[0]);
