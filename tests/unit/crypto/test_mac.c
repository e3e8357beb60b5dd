/* crypto/mac: RFC 4231 vectors, a keyed context used again and again,
 * and from several threads at once. */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/err.h"
#include "crypto/mac.h"
#include "tests.h"

static void expect_tag(struct ims_mac *m, const void *data, size_t len, const char *hex)
{
    uint8_t want[IMS_MAC_LEN], got[IMS_MAC_LEN];
    unhex(hex, want, sizeof(want));
    assert_int_equal(ims_mac_sha256(m, data, len, got), 0);
    assert_memory_equal(got, want, sizeof(want));
}

/* RFC 4231 §4.2 and §4.3 (test cases 1 and 2), each twice: the second
 * tag starts over from the keyed state, not from the first one's end. */
static void test_rfc4231(void **state)
{
    (void)state;
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof(key1));
    struct ims_mac *m;
    assert_int_equal(ims_mac_new(key1, sizeof(key1), &m), 0);
    for (int i = 0; i < 2; i++)
        expect_tag(m, "Hi There", 8,
                   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    ims_mac_free(m);

    assert_int_equal(ims_mac_new((const uint8_t *)"Jefe", 4, &m), 0);
    for (int i = 0; i < 2; i++)
        expect_tag(m, "what do ya want for nothing?", 28,
                   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    ims_mac_free(m);
}

static void test_bad_keys(void **state)
{
    (void)state;
    uint8_t key[65] = { 0 };
    struct ims_mac *m = (struct ims_mac *)&m;
    assert_int_equal(ims_mac_new(key, 0, &m), IMS_EINVAL);
    assert_null(m);
    assert_int_equal(ims_mac_new(key, sizeof(key), &m), IMS_EINVAL);
    assert_int_equal(ims_mac_new(NULL, 32, &m), IMS_EINVAL);
    ims_mac_free(NULL);
}

/* The same tags as OpenSSL's one-shot HMAC(), data of every length from
 * empty to past two SHA-256 blocks. */
static void test_same_as_hmac(void **state)
{
    (void)state;
    uint8_t key[32], data[160];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 5);
    struct ims_mac *m;
    assert_int_equal(ims_mac_new(key, sizeof(key), &m), 0);
    for (size_t len = 0; len <= sizeof(data); len++) {
        uint8_t want[32], got[IMS_MAC_LEN];
        unsigned wl = sizeof(want);
        assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), data, len, want, &wl));
        assert_int_equal(ims_mac_sha256(m, data, len, got), 0);
        assert_memory_equal(got, want, sizeof(want));
    }
    ims_mac_free(m);
}

#define NTHREADS 4
#define NTAGS 3000

struct worker {
    struct ims_mac *m;
    int id;
    int wrong;
};

/* Each thread's tags interleave with the others'; one of them computed
 * half-way through another's would come out wrong. */
static void *tag_loop(void *arg)
{
    struct worker *w = arg;
    uint8_t data[64], want[IMS_MAC_LEN], got[IMS_MAC_LEN];
    memset(data, 'a' + w->id, sizeof(data));
    unsigned wl = sizeof(want);
    if (!HMAC(EVP_sha256(), "thread key", 10, data, sizeof(data), want, &wl))
        w->wrong++;
    for (int i = 0; i < NTAGS; i++)
        if (ims_mac_sha256(w->m, data, sizeof(data), got) != 0 || memcmp(got, want, sizeof(got)))
            w->wrong++;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct ims_mac *m;
    assert_int_equal(ims_mac_new((const uint8_t *)"thread key", 10, &m), 0);
    pthread_t t[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){ m, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, tag_loop, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].wrong, 0);
    }
    ims_mac_free(m);
}

const struct CMUnitTest mac_tests[] = {
    cmocka_unit_test(test_rfc4231),
    cmocka_unit_test(test_bad_keys),
    cmocka_unit_test(test_same_as_hmac),
    cmocka_unit_test(test_threads),
};
const size_t mac_ntests = sizeof(mac_tests) / sizeof(mac_tests[0]);
