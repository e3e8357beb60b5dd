#ifndef IMS_TEST_CRYPTO_TESTS_H
#define IMS_TEST_CRYPTO_TESTS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

extern const struct CMUnitTest milenage_tests[];
extern const size_t milenage_ntests;
extern const struct CMUnitTest aka_tests[];
extern const size_t aka_ntests;
extern const struct CMUnitTest digest_tests[];
extern const size_t digest_ntests;
extern const struct CMUnitTest keyrepo_tests[];
extern const size_t keyrepo_ntests;
extern const struct CMUnitTest mac_tests[];
extern const size_t mac_ntests;

/* Decodes exactly n bytes of hex (test data; fails the test if malformed). */
void unhex(const char *hex, uint8_t *out, size_t n);

/* One TS 35.208 §4.3 conformance test set (hex strings). */
struct milenage_set {
    int n;
    const char *k, *rand, *sqn, *amf, *op, *opc;
    const char *f1, *f1s, *f2, *f5, *f3, *f4, *f5s;
};
extern const struct milenage_set milenage_sets[];
extern const size_t milenage_nsets;
#endif
