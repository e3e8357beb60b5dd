#define _GNU_SOURCE
/* test_secrets.c - secrets at rest: what the store returns, what the
 * database holds (never plaintext), tampering, key rotation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/encode.h"
#include "store_tests.h"

static const uint8_t K1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t OPC1[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                  0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };
static const uint8_t K2[16] = { 0xfe, 0xc8, 0x6b, 0xa6, 0xeb, 0x70, 0x7e, 0xd0,
                                0x89, 0x05, 0x75, 0x7b, 0x1b, 0xb4, 0x4b, 0x8f };
static const char PW[] = "Tr0ub4dor&3-correct-horse";

static void test_auth_round_trip(void **state)
{
    struct tfix *f = *state;
    struct ims_auth_data ad;
    struct ims_impi_rec pi;
    char want[IMS_DIGEST_HEX_MAX + 1];
    const char *ai[] = { "sip:alice@ims.test", NULL };
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, PW, ai);

    OK(f->st, ims_store_auth_get(f->st, S("alice@ims.test"), &ad));
    assert_string_equal(ad.impi, "alice@ims.test");
    assert_string_equal(ad.realm, "ims.test");
    assert_int_equal(ad.schemes, IMS_AUTH_ALL);
    assert_true(ad.has_aka);
    assert_memory_equal(ad.k, K1, 16);
    assert_memory_equal(ad.opc, OPC1, 16);
    assert_int_equal(ad.amf[0], 0x80);
    for (int a = 0; a < IMS_DIGEST_NALG; a++) {
        assert_true(ad.has_ha1[a]);
        assert_int_equal(ims_digest_ha1((enum ims_digest_alg)a, S("alice@ims.test"),
                                        S("ims.test"), S(PW), want),
                         0);
        assert_string_equal(ad.ha1[a], want);
    }
    ims_auth_data_clear(&ad);
    uint8_t zero[sizeof(ad)];
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(&ad, zero, sizeof(ad));

    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(pi.has_aka && pi.has_ha1[0] && pi.has_ha1[1] && pi.has_ha1[2]);
    assert_false(pi.has_password);
    OK(f->st, ims_store_impi_set_password(f->st, S("alice@ims.test"), S(PW), true));
    OK(f->st, ims_store_impi_get(f->st, S("alice@ims.test"), &pi));
    assert_true(pi.has_password);

    /* new K replaces the old one */
    static const uint8_t amf[2] = { 0x12, 0x34 };
    OK(f->st, ims_store_impi_set_aka(f->st, S("alice@ims.test"), K2, OPC1, amf));
    OK(f->st, ims_store_auth_get(f->st, S("alice@ims.test"), &ad));
    assert_memory_equal(ad.k, K2, 16);
    assert_int_equal(ad.amf[0], 0x12);
    assert_int_equal(ad.amf[1], 0x34);
    ims_auth_data_clear(&ad);

    /* an IMPI without secrets */
    OK(f->st, ims_store_impi_add(f->st, S("alice"), S("bare@ims.test"), S("ims.test"), 0));
    OK(f->st, ims_store_auth_get(f->st, S("bare@ims.test"), &ad));
    assert_false(ad.has_aka || ad.has_ha1[0] || ad.has_ha1[1] || ad.has_ha1[2]);
    assert_int_equal(ims_store_auth_get(f->st, S("none@ims.test"), &ad), IMS_ENOENT);
    assert_int_equal(ims_store_impi_set_aka(f->st, S("none@ims.test"), K1, OPC1, amf),
                     IMS_ENOENT);
    assert_int_equal(ims_store_impi_set_password(f->st, S("none@ims.test"), S(PW), false),
                     IMS_ENOENT);
    assert_int_equal(ims_store_impi_set_password(f->st, S("bare@ims.test"), IMS_STR_NULL, false),
                     IMS_EINVAL);
}

static bool contains(const char *hay, size_t n, const void *needle, size_t m)
{
    return memmem(hay, n, needle, m) != NULL;
}

/* The database never holds K, OPc, an HA1 or the password in the clear:
 * not as bytes, not as hex (either case), in no file SQLite writes. */
static void test_no_plaintext_in_db(void **state)
{
    struct tfix *f = *state;
    char khex[33], opchex[33], ha1[IMS_DIGEST_NALG][IMS_DIGEST_HEX_MAX + 1];
    const char *ai[] = { "sip:alice@ims.test", NULL };
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, PW, ai);
    OK(f->st, ims_store_impi_set_password(f->st, S("alice@ims.test"), S(PW), true));
    ims_hex_encode(K1, 16, khex);
    ims_hex_encode(OPC1, 16, opchex);
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        ims_digest_ha1((enum ims_digest_alg)a, S("alice@ims.test"), S("ims.test"), S(PW),
                       ha1[a]);

    size_t len = 0;
    char *db = tfix_db_bytes(f, &len);
    if (db) {
        assert_true(len > 4096);
        /* sanity: the identity itself is there in the clear */
        assert_true(contains(db, len, "alice@ims.test", 14));
        assert_false(contains(db, len, K1, 16));
        assert_false(contains(db, len, OPC1, 16));
        assert_false(contains(db, len, khex, 32));
        assert_false(contains(db, len, opchex, 32));
        for (int i = 0; khex[i]; i++)
            khex[i] = (char)(khex[i] >= 'a' ? khex[i] - 32 : khex[i]);
        assert_false(contains(db, len, khex, 32));
        assert_false(contains(db, len, PW, strlen(PW)));
        for (int a = 0; a < IMS_DIGEST_NALG; a++)
            assert_false(contains(db, len, ha1[a], strlen(ha1[a])));
        free(db);
    }
    /* Both backends: every secret column holds a keyrepo ciphertext. */
    static const char *const cols[] = { "k_enc", "opc_enc", "ha1_md5_enc", "ha1_sha256_enc",
                                        "ha1_sha512_256_enc", "password_enc" };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        char sql[128], v[1024];
        snprintf(sql, sizeof(sql), "SELECT %s FROM impi WHERE identity = 'alice@ims.test'",
                 cols[i]);
        tfix_sql_value(f, sql, v, sizeof(v));
        assert_true(strncmp(v, "v1:0:", 5) == 0);
        assert_null(strstr(v, PW));
    }
    /* The export carries ciphertexts only. */
    struct ims_buf ex;
    ims_buf_init(&ex, 1 << 20);
    OK(f->st, ims_store_export(f->st, &ex));
    assert_false(contains(ex.p, ex.len, opchex, 32));
    assert_false(contains(ex.p, ex.len, PW, strlen(PW)));
    assert_false(contains(ex.p, ex.len, ha1[0], 32));
    ims_buf_free(&ex);
}

/* A ciphertext moved to another row or field, or a key that is gone. */
static void test_tampered_rows(void **state)
{
    struct tfix *f = *state;
    struct ims_auth_data ad;
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, PW, NULL);
    provision(f->st, "bob", "bob@ims.test", K2, OPC1, PW, NULL);

    /* bob's row gets alice's K ciphertext: the AD binds it to alice */
    tfix_sql(f, "UPDATE impi SET k_enc = (SELECT k_enc FROM impi WHERE identity = "
                "'alice@ims.test') WHERE identity = 'bob@ims.test'");
    assert_int_equal(ims_store_auth_get(f->st, S("bob@ims.test"), &ad), IMS_EBACKEND);
    assert_non_null(strstr(ims_store_errmsg(f->st), "does not decrypt"));
    assert_false(ad.has_aka); /* wiped */
    /* alice's OPc ciphertext in alice's K field: the AD names the field */
    tfix_sql(f, "UPDATE impi SET k_enc = opc_enc WHERE identity = 'alice@ims.test'");
    assert_int_equal(ims_store_auth_get(f->st, S("alice@ims.test"), &ad), IMS_EBACKEND);

    /* a store with another key repository cannot read anything */
    provision(f->st, "carol", "carol@ims.test", K1, OPC1, PW, NULL);
    char dir2[400], err[IMS_KEYREPO_ERRLEN];
    struct ims_keyrepo *other = NULL;
    struct ims_store *st2 = NULL;
    snprintf(dir2, sizeof(dir2), "%s/keys2", f->dir);
    assert_int_equal(ims_keyrepo_create(dir2, err, sizeof(err)), 0);
    assert_int_equal(ims_keyrepo_open(dir2, &other, err, sizeof(err)), 0);
    unsigned id;
    assert_int_equal(ims_keyrepo_rotate(other, &id, err, sizeof(err)), 0);
    assert_int_equal(ims_keyrepo_remove(other, 0, err, sizeof(err)), 0);
    assert_int_equal(ims_store_open(f->url, other, &st2), 0);
    assert_int_equal(ims_store_auth_get(st2, S("carol@ims.test"), &ad), IMS_EBACKEND);
    assert_non_null(strstr(ims_store_errmsg(st2), "not in the key repository"));
    ims_store_close(st2);
    ims_keyrepo_free(other);
}

static void test_key_rotation(void **state)
{
    struct tfix *f = *state;
    struct ims_auth_data ad;
    char err[IMS_KEYREPO_ERRLEN], v[512];
    uint64_t used = 0, changed = 0;
    unsigned id;
    for (int i = 0; i < 5; i++) {
        char sub[16], impi[32];
        snprintf(sub, sizeof(sub), "s%d", i);
        snprintf(impi, sizeof(impi), "u%d@ims.test", i);
        provision(f->st, sub, impi, K1, OPC1, i % 2 ? PW : NULL, NULL);
    }
    /* 5 x (K, OPc) + 2 x 3 HA1s */
    OK(f->st, ims_store_key_usage(f->st, 0, &used));
    assert_true(used == 16);
    OK(f->st, ims_store_key_usage(f->st, 1, &used));
    assert_true(used == 0);

    /* 1. add a new primary */
    assert_int_equal(ims_keyrepo_rotate(f->repo, &id, err, sizeof(err)), 0);
    assert_int_equal(id, 1);
    /* new secrets use it at once; old ones still decrypt */
    provision(f->st, "late", "late@ims.test", K2, OPC1, NULL, NULL);
    OK(f->st, ims_store_key_usage(f->st, 1, &used));
    assert_true(used == 2);
    OK(f->st, ims_store_auth_get(f->st, S("u1@ims.test"), &ad));
    assert_memory_equal(ad.k, K1, 16);
    ims_auth_data_clear(&ad);
    /* 2. the old key cannot go while data uses it (the caller's check) */
    OK(f->st, ims_store_key_usage(f->st, 0, &used));
    assert_true(used > 0);
    /* 3. re-encrypt everything under the primary */
    OK(f->st, ims_store_reencrypt(f->st, &changed));
    assert_true(changed == 16);
    OK(f->st, ims_store_key_usage(f->st, 0, &used));
    assert_true(used == 0);
    OK(f->st, ims_store_key_usage(f->st, 1, &used));
    assert_true(used == 18);
    OK(f->st, ims_store_reencrypt(f->st, &changed)); /* idempotent */
    assert_true(changed == 0);
    tfix_sql_value(f, "SELECT k_enc FROM impi WHERE identity = 'u3@ims.test'", v, sizeof(v));
    assert_true(strncmp(v, "v1:1:", 5) == 0);
    /* 4. remove the old key; everything still decrypts */
    assert_int_equal(ims_keyrepo_remove(f->repo, 0, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++) {
        char impi[32];
        snprintf(impi, sizeof(impi), "u%d@ims.test", i);
        OK(f->st, ims_store_auth_get(f->st, S(impi), &ad));
        assert_memory_equal(ad.k, K1, 16);
        assert_memory_equal(ad.opc, OPC1, 16);
        assert_int_equal(ad.has_ha1[2], i % 2 == 1);
        ims_auth_data_clear(&ad);
    }
}

/* Re-encryption works in batches of 100 IMPIs. */
static void test_reencrypt_batches(void **state)
{
    struct tfix *f = *state;
    char err[IMS_KEYREPO_ERRLEN];
    uint64_t changed = 0, used = 0;
    unsigned id;
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    strcpy(s.name, "bulk");
    OK(f->st, ims_store_sub_add(f->st, &s));
    static const uint8_t amf[2] = { 0x80, 0 };
    for (int i = 0; i < 230; i++) {
        char impi[32];
        snprintf(impi, sizeof(impi), "bulk%03d@ims.test", i);
        OK(f->st, ims_store_impi_add(f->st, S("bulk"), S(impi), S("ims.test"), IMS_AUTH_ALL));
        OK(f->st, ims_store_impi_set_aka(f->st, S(impi), K1, OPC1, amf));
    }
    assert_int_equal(ims_keyrepo_rotate(f->repo, &id, err, sizeof(err)), 0);
    OK(f->st, ims_store_reencrypt(f->st, &changed));
    assert_true(changed == 460);
    OK(f->st, ims_store_key_usage(f->st, 0, &used));
    assert_true(used == 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
/* ims_store_auth_get_fields: only the secrets asked for are decrypted (a
 * tampered one not asked for does not fail the call). */
static void test_auth_fields(void **state)
{
    struct tfix *f = *state;
    struct ims_auth_data ad, all;
    const char *ai[] = { "sip:alice@ims.test", NULL };
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, PW, ai);
    OK(f->st, ims_store_auth_get(f->st, S("alice@ims.test"), &all));

    OK(f->st, ims_store_auth_get_fields(f->st, S("alice@ims.test"), IMS_AUTH_F_AKA, &ad));
    assert_true(ad.has_aka);
    assert_memory_equal(ad.k, K1, 16);
    assert_memory_equal(ad.opc, OPC1, 16);
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        assert_false(ad.has_ha1[a]);
    assert_string_equal(ad.realm, "ims.test");
    assert_int_equal(ad.schemes, IMS_AUTH_ALL);

    OK(f->st, ims_store_auth_get_fields(f->st, S("alice@ims.test"),
                                        IMS_AUTH_F_HA1(IMS_DIGEST_SHA256), &ad));
    assert_false(ad.has_aka);
    assert_false(ad.has_ha1[IMS_DIGEST_MD5]);
    assert_true(ad.has_ha1[IMS_DIGEST_SHA256]);
    assert_string_equal(ad.ha1[IMS_DIGEST_SHA256], all.ha1[IMS_DIGEST_SHA256]);
    assert_false(ad.has_ha1[IMS_DIGEST_SHA512_256]);

    /* K broken: a Digest lookup still works, an AKA one fails */
    tfix_sql(f, "UPDATE impi SET k_enc = opc_enc WHERE identity = 'alice@ims.test'");
    OK(f->st, ims_store_auth_get_fields(f->st, S("alice@ims.test"),
                                        IMS_AUTH_F_HA1(IMS_DIGEST_MD5), &ad));
    assert_string_equal(ad.ha1[IMS_DIGEST_MD5], all.ha1[IMS_DIGEST_MD5]);
    assert_int_equal(ims_store_auth_get_fields(f->st, S("alice@ims.test"), IMS_AUTH_F_AKA, &ad),
                     IMS_EBACKEND);
    ims_auth_data_clear(&ad);
    ims_auth_data_clear(&all);
}

const struct CMUnitTest secrets_tests[] = {
    T(test_auth_round_trip), T(test_no_plaintext_in_db), T(test_tampered_rows),
    T(test_key_rotation),    T(test_reencrypt_batches),  T(test_auth_fields),
};
const size_t secrets_ntests = sizeof(secrets_tests) / sizeof(secrets_tests[0]);
