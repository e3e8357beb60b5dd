/* test_digest.c - Digest against the RFC examples, byte for byte:
 *  - RFC 2617 §3.5 (MD5, qop=auth): "Mufasa" / "Circle Of Life";
 *  - RFC 7616 §3.9.1 (MD5 and SHA-256, qop=auth): "Circle of Life";
 *  - RFC 7616 §3.9.2 (SHA-512-256, userhash): the response with FIPS
 *    SHA-512/256 as published in the RFC 7616 errata (the RFC text shows
 *    a value computed with truncated SHA-512). */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "crypto/digest.h"
#include "crypto/encode.h"
#include "tests.h"

#define S(x) ims_str_cstr(x)

static void check_response(enum ims_digest_alg alg, const char *user, const char *realm,
                           const char *pass, const char *method, const char *uri,
                           const char *nonce, const char *nc, const char *cnonce,
                           const char *want)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1], resp[IMS_DIGEST_HEX_MAX + 1];
    assert_int_equal(ims_digest_ha1(alg, S(user), S(realm), S(pass), ha1), 0);
    assert_int_equal(ims_digest_ha2(alg, S(method), S(uri), NULL, ha2), 0);
    assert_int_equal(ims_digest_response(alg, S(ha1), S(nonce), S(nc), S(cnonce), S("auth"),
                                         S(ha2), resp),
                     0);
    assert_string_equal(resp, want);
    assert_int_equal(strlen(ha1), ims_digest_hex_len(alg));
    assert_true(ims_digest_equal(S(resp), S(want)));
}

static void test_rfc2617(void **s)
{
    (void)s;
    char ha1[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1];
    check_response(IMS_DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
                   "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
                   "0a4f113b", "6629fae49393a05397450978507c4ef1");
    /* the intermediate values of the same example */
    assert_int_equal(ims_digest_ha1(IMS_DIGEST_MD5, S("Mufasa"), S("testrealm@host.com"),
                                    S("Circle Of Life"), ha1),
                     0);
    assert_string_equal(ha1, "939e7578ed9e3c518a452acee763bce9");
    assert_int_equal(ims_digest_ha2(IMS_DIGEST_MD5, S("GET"), S("/dir/index.html"), NULL, ha2),
                     0);
    assert_string_equal(ha2, "39aff3a2bab6126f332b942af96d3366");
}

static void test_rfc7616_md5_sha256(void **s)
{
    (void)s;
    static const char nonce[] = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    static const char cnonce[] = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    check_response(IMS_DIGEST_MD5, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
                   "/dir/index.html", nonce, "00000001", cnonce,
                   "8ca523f5e9506fed4657c9700eebdbec");
    check_response(IMS_DIGEST_SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
                   "/dir/index.html", nonce, "00000001", cnonce,
                   "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

static void test_rfc7616_sha512_256(void **s)
{
    (void)s;
    static const char user[] = "J\xc3\xa4s\xc3\xb8n Doe"; /* "Jäsøn Doe" in UTF-8 */
    check_response(IMS_DIGEST_SHA512_256, user, "api@example.org", "Secret, or not?", "GET",
                   "/doe.json", "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "00000001",
                   "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
                   "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5");
}

/* SHA-512/256 itself: the FIPS 180-4 "abc" example (NIST CSRC examples). */
static void test_sha512_256_primitive(void **s)
{
    (void)s;
    char out[IMS_DIGEST_HEX_MAX + 1];
    uint8_t d[32];
    unsigned n;
    EVP_Digest("abc", 3, d, &n, EVP_sha512_256(), NULL);
    ims_hex_encode(d, 32, out);
    assert_string_equal(out, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
}

/* ims_sha256 (the algorithm fetched once) against FIPS 180-2's "abc" and
 * two-block examples, from several threads at once (the first fetch is
 * raced). */
static void *sha_thread(void *arg)
{
    uint8_t d[IMS_SHA256_LEN];
    char out[2 * IMS_SHA256_LEN + 1];
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (int i = 0; i < 200; i++) {
        if (ims_sha256("abc", 3, d) != 0)
            return NULL;
        ims_hex_encode(d, sizeof(d), out);
        if (strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
            return NULL;
        if (ims_sha256(two, strlen(two), d) != 0)
            return NULL;
        ims_hex_encode(d, sizeof(d), out);
        if (strcmp(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"))
            return NULL;
    }
    return arg;
}

static void test_sha256_oneshot(void **s)
{
    (void)s;
    pthread_t th[4];
    int tag[4];
    void *ok[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sha_thread, &tag[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], &ok[i]);
        assert_ptr_equal(ok[i], &tag[i]);
    }
    uint8_t d[IMS_SHA256_LEN];
    char out[2 * IMS_SHA256_LEN + 1];
    assert_int_equal(ims_sha256("", 0, d), 0);
    ims_hex_encode(d, sizeof(d), out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* hex(H(text)) computed directly with EVP, for the constructions the RFC
 * examples do not cover. */
static void href(const EVP_MD *md, const void *p, size_t n, char *out)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned len;
    EVP_Digest(p, n, d, &len, md, NULL);
    ims_hex_encode(d, len, out);
}

static void test_sess_auth_int_rfc2069(void **s)
{
    (void)s;
    char ha1[IMS_DIGEST_HEX_MAX + 1], sess[IMS_DIGEST_HEX_MAX + 1], ha2[IMS_DIGEST_HEX_MAX + 1];
    char hb[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1], r[IMS_DIGEST_HEX_MAX + 1];
    char joined[200];
    ims_str body = S("v=0\r\n");

    /* -sess: H(HA1 ":" nonce ":" cnonce) */
    assert_int_equal(ims_digest_ha1(IMS_DIGEST_SHA256, S("u"), S("r"), S("p"), ha1), 0);
    assert_int_equal(ims_digest_ha1_sess(IMS_DIGEST_SHA256, S(ha1), S("n"), S("c"), sess), 0);
    snprintf(joined, sizeof(joined), "%s:n:c", ha1);
    href(EVP_sha256(), joined, strlen(joined), want);
    assert_string_equal(sess, want);

    /* qop=auth-int: H(method ":" uri ":" H(body)) */
    assert_int_equal(ims_digest_ha2(IMS_DIGEST_MD5, S("INVITE"), S("sip:b@x"), &body, ha2), 0);
    href(EVP_md5(), body.p, body.len, hb);
    snprintf(joined, sizeof(joined), "INVITE:sip:b@x:%s", hb);
    href(EVP_md5(), joined, strlen(joined), want);
    assert_string_equal(ha2, want);

    /* no qop (RFC 2069): H(HA1 ":" nonce ":" HA2), nc and cnonce unused */
    assert_int_equal(ims_digest_response(IMS_DIGEST_MD5, S("h1"), S("nn"), S("x"), S("y"),
                                         IMS_STR_NULL, S("h2"), r),
                     0);
    href(EVP_md5(), "h1:nn:h2", 8, want);
    assert_string_equal(r, want);
}

/* Digest-AKAv1: the password is RES as raw bytes (may contain NULs). */
static void test_binary_password(void **s)
{
    (void)s;
    static const uint8_t res[8] = { 0xa5, 0x42, 0x00, 0xd5, 0xe3, 0xba, 0x50, 0xbf };
    char ha1[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    uint8_t buf[64], d[16];
    unsigned n;
    assert_int_equal(ims_digest_ha1(IMS_DIGEST_MD5, S("a@b"), S("b"),
                                    ims_str_make((const char *)res, 8), ha1),
                     0);
    memcpy(buf, "a@b:b:", 6);
    memcpy(buf + 6, res, 8);
    EVP_Digest(buf, 14, d, &n, EVP_md5(), NULL);
    ims_hex_encode(d, 16, want);
    assert_string_equal(ha1, want);
}

static void test_userhash(void **s)
{
    (void)s;
    char out[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    uint8_t d[32];
    unsigned n;
    static const char user[] = "J\xc3\xa4s\xc3\xb8n Doe";
    assert_int_equal(ims_digest_userhash(IMS_DIGEST_SHA512_256, S(user), S("api@example.org"),
                                         out),
                     0);
    char joined[64];
    snprintf(joined, sizeof(joined), "%s:api@example.org", user);
    EVP_Digest(joined, strlen(joined), d, &n, EVP_sha512_256(), NULL);
    ims_hex_encode(d, 32, want);
    assert_string_equal(out, want);
}

static void test_alg_parse_and_compare(void **s)
{
    (void)s;
    enum ims_digest_alg a;
    bool sess;
    assert_int_equal(ims_digest_alg_parse(S("md5"), &a, &sess), 0);
    assert_true(a == IMS_DIGEST_MD5 && !sess);
    assert_int_equal(ims_digest_alg_parse(S("SHA-256-sess"), &a, &sess), 0);
    assert_true(a == IMS_DIGEST_SHA256 && sess);
    assert_int_equal(ims_digest_alg_parse(S("SHA-512-256"), &a, &sess), 0);
    assert_true(a == IMS_DIGEST_SHA512_256 && !sess);
    assert_int_equal(ims_digest_alg_parse(S("SHA-1"), &a, &sess), IMS_ENOENT);
    assert_int_equal(ims_digest_alg_parse(S("-sess"), &a, &sess), IMS_ENOENT);
    assert_int_equal(ims_digest_alg_parse(S("AKAv1-MD5"), &a, &sess), IMS_ENOENT);
    assert_string_equal(ims_digest_alg_name(IMS_DIGEST_SHA512_256), "SHA-512-256");

    assert_true(ims_digest_equal(S("6629fae4"), S("6629FAE4")));
    assert_false(ims_digest_equal(S("6629fae4"), S("6629fae5")));
    assert_false(ims_digest_equal(S("6629fae4"), S("6629fae")));
    assert_false(ims_digest_equal(S(""), S("")));
    assert_true(ims_ct_eq("abc", "abc", 3));
    assert_false(ims_ct_eq("abc", "abd", 3));
    char out[IMS_DIGEST_HEX_MAX + 1];
    assert_int_equal(ims_digest_ha1((enum ims_digest_alg)7, S("a"), S("b"), S("c"), out),
                     IMS_EINVAL);
}

const struct CMUnitTest digest_tests[] = {
    cmocka_unit_test(test_rfc2617),
    cmocka_unit_test(test_rfc7616_md5_sha256),
    cmocka_unit_test(test_rfc7616_sha512_256),
    cmocka_unit_test(test_sha512_256_primitive),
    cmocka_unit_test(test_sha256_oneshot),
    cmocka_unit_test(test_sess_auth_int_rfc2069),
    cmocka_unit_test(test_binary_password),
    cmocka_unit_test(test_userhash),
    cmocka_unit_test(test_alg_parse_and_compare),
};
const size_t digest_ntests = sizeof(digest_tests) / sizeof(digest_tests[0]);
