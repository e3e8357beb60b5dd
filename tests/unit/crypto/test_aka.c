/* test_aka.c - AKA vectors, SQN management (TS 33.102 Annex C) and
 * re-synchronisation, with a model USIM that checks SQNs as Annex C.2
 * describes and builds AUTS the way a UE does. */
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "crypto/aka.h"
#include "crypto/encode.h"
#include "crypto/milenage.h"
#include "tests.h"

/* ---- model USIM (Annex C.2.2, with a = 32, Δ = 2^28, no age limit) ---- */
struct usim {
    uint8_t k[16], opc[16];
    uint64_t seq_ms[32]; /* SEQ_MS(i): highest SEQ accepted with IND = i */
    uint64_t sqn_max;    /* SQN of the highest SEQ accepted: SQN_MS in AUTS */
};

enum { UE_OK, UE_MAC_FAIL, UE_SYNC_FAIL };

/* Returns UE_OK (res filled), UE_MAC_FAIL, or UE_SYNC_FAIL (auts filled). */
static int usim_auth(struct usim *u, const uint8_t rand[16], const uint8_t autn[16],
                     uint8_t res[8], uint8_t auts[14])
{
    uint64_t sqn;
    uint8_t amf[2], ck[16], ik[16];
    if (ims_aka_ue_check(u->k, u->opc, rand, autn, &sqn, amf, res, ck, ik) != 0)
        return UE_MAC_FAIL;
    uint64_t seq = ims_aka_sqn_seq(sqn), seq_max = ims_aka_sqn_seq(u->sqn_max);
    unsigned ind = ims_aka_sqn_ind(sqn);
    /* C.2.2: SEQ > SEQ_MS(i), and not more than Δ ahead of the highest. */
    if (seq <= u->seq_ms[ind] || (seq > seq_max && seq - seq_max > IMS_AKA_DELTA)) {
        assert_int_equal(ims_aka_auts_make(u->k, u->opc, rand, u->sqn_max, auts), 0);
        return UE_SYNC_FAIL;
    }
    u->seq_ms[ind] = seq;
    if (seq > seq_max)
        u->sqn_max = sqn;
    return UE_OK;
}

static void usim_init(struct usim *u, const struct milenage_set *t)
{
    memset(u, 0, sizeof(*u));
    unhex(t->k, u->k, 16);
    unhex(t->opc, u->opc, 16);
}

/* ---- HE side of the model: SQN_HE plus the library calls ---- */
static void he_vector(const struct usim *u, uint64_t *sqn_he, struct ims_aka_vector *v)
{
    static const uint8_t amf[2] = { 0x80, 0x00 };
    uint64_t next;
    assert_int_equal(ims_aka_sqn_next(*sqn_he, &next), 0);
    *sqn_he = next;
    assert_int_equal(ims_aka_vector_make(u->k, u->opc, amf, next, NULL, v), 0);
}

static void he_resync(const struct usim *u, uint64_t *sqn_he, const uint8_t rand[16],
                      const uint8_t auts[14])
{
    uint64_t sqn_ms, next;
    assert_int_equal(ims_aka_auts_verify(u->k, u->opc, rand, auts, &sqn_ms), 0);
    assert_int_equal(ims_aka_sqn_resync(*sqn_he, sqn_ms, &next), 0);
    *sqn_he = next;
}

/* AUTN and XRES/CK/IK for a fixed RAND and SQN are the conformance outputs. */
static void test_vector_known_answer(void **s)
{
    (void)s;
    for (size_t i = 0; i < milenage_nsets; i++) {
        const struct milenage_set *t = &milenage_sets[i];
        uint8_t k[16], opc[16], rand[16], amf[2], sqnb[6], ak[6], want[16];
        struct ims_aka_vector v;
        uint64_t sqn = 0;
        unhex(t->k, k, 16);
        unhex(t->opc, opc, 16);
        unhex(t->rand, rand, 16);
        unhex(t->amf, amf, 2);
        unhex(t->sqn, sqnb, 6);
        unhex(t->f5, ak, 6);
        for (int j = 0; j < 6; j++)
            sqn = sqn << 8 | sqnb[j];
        assert_int_equal(ims_aka_vector_make(k, opc, amf, sqn, rand, &v), 0);
        for (int j = 0; j < 6; j++)
            assert_int_equal(v.autn[j], sqnb[j] ^ ak[j]);
        assert_memory_equal(v.autn + 6, amf, 2);
        unhex(t->f1, want, 8);
        assert_memory_equal(v.autn + 8, want, 8);
        unhex(t->f2, want, 8);
        assert_memory_equal(v.xres, want, 8);
        unhex(t->f3, want, 16);
        assert_memory_equal(v.ck, want, 16);
        unhex(t->f4, want, 16);
        assert_memory_equal(v.ik, want, 16);
        assert_memory_equal(v.rand, rand, 16);
        assert_true(v.sqn == sqn);
        ims_aka_vector_clear(&v);
        uint8_t zero[sizeof(v)] = { 0 };
        assert_memory_equal(&v, zero, sizeof(v));
    }
}

static void test_vector_random_rand(void **s)
{
    (void)s;
    uint8_t k[16] = { 1 }, opc[16] = { 2 }, amf[2] = { 0x80, 0 };
    struct ims_aka_vector a, b;
    assert_int_equal(ims_aka_vector_make(k, opc, amf, 33, NULL, &a), 0);
    assert_int_equal(ims_aka_vector_make(k, opc, amf, 33, NULL, &b), 0);
    assert_memory_not_equal(a.rand, b.rand, 16);
    assert_int_equal(ims_aka_vector_make(k, opc, amf, IMS_AKA_SQN_MAX + 1, NULL, &a),
                     IMS_EINVAL);
}

static void test_sqn_next(void **s)
{
    (void)s;
    uint64_t sqn = 0, next;
    /* SEQ + 1 and IND + 1 mod 32 for every vector */
    for (unsigned i = 1; i <= 70; i++) {
        assert_int_equal(ims_aka_sqn_next(sqn, &next), 0);
        assert_true(ims_aka_sqn_seq(next) == i);
        assert_int_equal(ims_aka_sqn_ind(next), i % 32);
        assert_true(next > sqn || ims_aka_sqn_ind(next) == 0);
        sqn = next;
    }
    /* SEQ never wraps */
    sqn = ims_aka_sqn_make(IMS_AKA_SEQ_MAX - 1, 7);
    assert_int_equal(ims_aka_sqn_next(sqn, &next), 0);
    assert_true(ims_aka_sqn_seq(next) == IMS_AKA_SEQ_MAX);
    assert_int_equal(ims_aka_sqn_next(next, &sqn), IMS_ELIMIT);
    assert_int_equal(ims_aka_sqn_next(IMS_AKA_SQN_MAX + 1, &next), IMS_EINVAL);
}

static void test_sqn_resync_policy(void **s)
{
    (void)s;
    uint64_t out;
    /* HE ahead of the USIM but within Δ: keep SQN_HE */
    uint64_t he = ims_aka_sqn_make(100, 4);
    assert_int_equal(ims_aka_sqn_resync(he, ims_aka_sqn_make(90, 9), &out), 0);
    assert_true(out == he);
    /* HE equal to the USIM: next SEQ is SEQ_MS + 1, accepted: keep */
    assert_int_equal(ims_aka_sqn_resync(he, ims_aka_sqn_make(100, 9), &out), 0);
    assert_true(out == he);
    /* USIM ahead (HE restored from an old backup): SEQ_HE := SEQ_MS, IND kept */
    assert_int_equal(ims_aka_sqn_resync(he, ims_aka_sqn_make(5000, 9), &out), 0);
    assert_true(ims_aka_sqn_seq(out) == 5000 && ims_aka_sqn_ind(out) == 4);
    /* HE more than Δ ahead: the USIM refuses it, go back to SEQ_MS */
    he = ims_aka_sqn_make(IMS_AKA_DELTA + 50, 1);
    assert_int_equal(ims_aka_sqn_resync(he, ims_aka_sqn_make(10, 3), &out), 0);
    assert_true(ims_aka_sqn_seq(out) == 10);
    /* exactly Δ ahead after the increment is still in range */
    he = ims_aka_sqn_make(IMS_AKA_DELTA + 9, 1);
    assert_int_equal(ims_aka_sqn_resync(he, ims_aka_sqn_make(10, 3), &out), 0);
    assert_true(out == he);
    assert_int_equal(ims_aka_sqn_resync(IMS_AKA_SQN_MAX + 1, 0, &out), IMS_EINVAL);
}

/* The whole cycle with the model USIM: normal use, a replay, a USIM ahead
 * of the HE, an HE beyond Δ; each failure resynchronises from AUTS. */
static void test_resync_round_trip(void **s)
{
    (void)s;
    struct usim u;
    struct ims_aka_vector v;
    uint8_t res[8], auts[14];
    uint64_t sqn_he = 0;
    usim_init(&u, &milenage_sets[2]);

    for (int i = 0; i < 40; i++) { /* more than a full IND cycle */
        he_vector(&u, &sqn_he, &v);
        assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_OK);
        assert_memory_equal(res, v.xres, 8);
    }

    /* Replay: the same AUTN again is stale (SEQ <= SEQ_MS(IND)). */
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_SYNC_FAIL);
    he_resync(&u, &sqn_he, v.rand, auts);
    he_vector(&u, &sqn_he, &v);
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_OK);

    /* The HE lost SQNs (restored from a backup): its next SQN is stale. */
    uint64_t he_before = sqn_he;
    sqn_he = ims_aka_sqn_make(3, 3);
    he_vector(&u, &sqn_he, &v);
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_SYNC_FAIL);
    he_resync(&u, &sqn_he, v.rand, auts);
    assert_true(ims_aka_sqn_seq(sqn_he) == ims_aka_sqn_seq(he_before));
    he_vector(&u, &sqn_he, &v);
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_OK);
    assert_memory_equal(res, v.xres, 8);

    /* The HE ran more than Δ ahead: the USIM refuses, resync pulls it back. */
    sqn_he = ims_aka_sqn_make(ims_aka_sqn_seq(sqn_he) + IMS_AKA_DELTA + 10, 0);
    he_vector(&u, &sqn_he, &v);
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_SYNC_FAIL);
    he_resync(&u, &sqn_he, v.rand, auts);
    he_vector(&u, &sqn_he, &v);
    assert_int_equal(usim_auth(&u, v.rand, v.autn, res, auts), UE_OK);
    ims_aka_vector_clear(&v);
}

static void test_wrong_mac_s_rejected(void **s)
{
    (void)s;
    struct usim u, other;
    uint8_t auts[14], rand[16], rand2[16];
    uint64_t sqn_ms;
    usim_init(&u, &milenage_sets[0]);
    usim_init(&other, &milenage_sets[1]);
    unhex(milenage_sets[0].rand, rand, 16);
    unhex(milenage_sets[1].rand, rand2, 16);

    assert_int_equal(ims_aka_auts_make(u.k, u.opc, rand, 12345, auts), 0);
    assert_int_equal(ims_aka_auts_verify(u.k, u.opc, rand, auts, &sqn_ms), 0);
    assert_true(sqn_ms == 12345);
    /* every bit of AUTS matters: the concealed SQN and MAC-S */
    for (int i = 0; i < 14 * 8; i++) {
        auts[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ims_aka_auts_verify(u.k, u.opc, rand, auts, &sqn_ms), IMS_EPROTO);
        auts[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* another subscriber's AUTS, or one for another RAND */
    assert_int_equal(ims_aka_auts_verify(other.k, other.opc, rand, auts, &sqn_ms), IMS_EPROTO);
    assert_int_equal(ims_aka_auts_verify(u.k, u.opc, rand2, auts, &sqn_ms), IMS_EPROTO);
    /* MAC-S uses the dummy AMF* = 0000 (TS 33.102 §6.3.3), with f1* */
    uint8_t sqnb[6] = { 0, 0, 0, 0, 0x30, 0x39 }, zero_amf[2] = { 0 }, mac_s[8], aks[6];
    assert_int_equal(ims_milenage_f1(u.k, u.opc, rand, sqnb, zero_amf, NULL, mac_s), 0);
    assert_memory_equal(auts + 6, mac_s, 8);
    unhex(milenage_sets[0].f5s, aks, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(auts[i], sqnb[i] ^ aks[i]);
}

static void test_ue_check_rejects_bad_autn(void **s)
{
    (void)s;
    struct usim u;
    struct ims_aka_vector v;
    uint64_t sqn_he = 0, sqn;
    uint8_t amf[2], res[8];
    usim_init(&u, &milenage_sets[4]);
    he_vector(&u, &sqn_he, &v);
    for (int i = 0; i < 16; i++) {
        v.autn[i] ^= 0x40;
        assert_int_equal(ims_aka_ue_check(u.k, u.opc, v.rand, v.autn, &sqn, amf, res, NULL, NULL),
                         IMS_EPROTO);
        v.autn[i] ^= 0x40;
    }
    assert_int_equal(ims_aka_ue_check(u.k, u.opc, v.rand, v.autn, &sqn, amf, res, NULL, NULL), 0);
    assert_true(sqn == sqn_he);
}

/* HMAC-MD5 built by hand from MD5 (RFC 2104), to check the AKAv2 password
 * independently of OpenSSL's HMAC. */
static void hmac_md5_ref(const uint8_t *key, size_t klen, const char *msg, uint8_t out[16])
{
    uint8_t k0[64] = { 0 }, pad[64], inner[16];
    unsigned n;
    memcpy(k0, key, klen); /* klen <= 64 here */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    for (int i = 0; i < 64; i++)
        pad[i] = k0[i] ^ 0x36;
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, pad, 64);
    EVP_DigestUpdate(c, msg, strlen(msg));
    EVP_DigestFinal_ex(c, inner, &n);
    for (int i = 0; i < 64; i++)
        pad[i] = k0[i] ^ 0x5c;
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, pad, 64);
    EVP_DigestUpdate(c, inner, 16);
    EVP_DigestFinal_ex(c, out, &n);
    EVP_MD_CTX_free(c);
}

static void test_akav2_password(void **s)
{
    (void)s;
    const struct milenage_set *t = &milenage_sets[0];
    uint8_t res[8], ck[16], ik[16], key[40], mac[16];
    char pw[IMS_AKA_V2_PASSWORD_LEN + 1], want[IMS_AKA_V2_PASSWORD_LEN + 1];
    unhex(t->f2, res, 8);
    unhex(t->f3, ck, 16);
    unhex(t->f4, ik, 16);
    assert_int_equal(ims_aka_password_v2(res, 8, ik, ck, pw), 0);
    /* RFC 4169 §3: key RES || IK || CK, message "http-digest-akav2-password" */
    memcpy(key, res, 8);
    memcpy(key + 8, ik, 16);
    memcpy(key + 24, ck, 16);
    hmac_md5_ref(key, 40, "http-digest-akav2-password", mac);
    ims_b64_encode(mac, 16, want);
    assert_string_equal(pw, want);
    assert_int_equal(strlen(pw), 24);
    /* CK and IK swapped gives another password */
    assert_int_equal(ims_aka_password_v2(res, 8, ck, ik, want), 0);
    assert_string_not_equal(pw, want);
    assert_int_equal(ims_aka_password_v2(res, 17, ik, ck, pw), IMS_EINVAL);
}

static void test_nonce(void **s)
{
    (void)s;
    struct ims_aka_vector v;
    char nonce[IMS_AKA_NONCE_LEN + 1];
    uint8_t raw[32];
    size_t n;
    memset(&v, 0, sizeof(v));
    for (int i = 0; i < 16; i++) {
        v.rand[i] = (uint8_t)i;
        v.autn[i] = (uint8_t)(0xf0 + i);
    }
    ims_aka_nonce(&v, nonce);
    assert_int_equal(strlen(nonce), IMS_AKA_NONCE_LEN);
    assert_int_equal(ims_b64_decode(ims_str_cstr(nonce), raw, sizeof(raw), &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(raw, v.rand, 16);
    assert_memory_equal(raw + 16, v.autn, 16);
}

const struct CMUnitTest aka_tests[] = {
    cmocka_unit_test(test_vector_known_answer),
    cmocka_unit_test(test_vector_random_rand),
    cmocka_unit_test(test_sqn_next),
    cmocka_unit_test(test_sqn_resync_policy),
    cmocka_unit_test(test_resync_round_trip),
    cmocka_unit_test(test_wrong_mac_s_rejected),
    cmocka_unit_test(test_ue_check_rejects_bad_autn),
    cmocka_unit_test(test_akav2_password),
    cmocka_unit_test(test_nonce),
};
const size_t aka_ntests = sizeof(aka_tests) / sizeof(aka_tests[0]);
