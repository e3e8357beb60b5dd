/* hss_tests.h - shared fixture of the hss unit tests: a key repository and a
 * SQLite store in a temp dir, provisioned with a few subscribers. */
#ifndef IMS_TEST_HSS_TESTS_H
#define IMS_TEST_HSS_TESTS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/str.h"
#include "crypto/keyrepo.h"
#include "hss/cx.h"
#include "store/store.h"

#define S(x) ims_str_cstr(x)

extern const struct CMUnitTest cx_tests[];
extern const size_t cx_ntests;
extern const struct CMUnitTest sh_tests[];
extern const size_t sh_ntests;
extern const struct CMUnitTest config_tests[];
extern const size_t config_ntests;
extern const struct CMUnitTest userdata_tests[];
extern const size_t userdata_ntests;
extern const struct CMUnitTest kscreds_tests[];
extern const size_t kscreds_ntests;

/* alice: Digest, sip:alice + tel:+1555 (one set), no profile
 * bob:   AKA (k/opc below) + Digest, sip:bob with profile p1 (one iFC to
 *        sip:as.ims.test), and sip:bob2 in a second set, also p1
 * carol: Digest, sip:carol
 * S-CSCFs: sip:scscf1 (capability 1), sip:scscf2 (none); subscriptions
 * need capability 1. */
struct hfix {
    char dir[256];
    char url[400];
    struct ims_keyrepo *repo;
    struct ims_store *st;
    struct hss_policy pol;
};

extern const uint8_t t_k[16], t_opc[16];

int hfix_setup(void **state);
int hfix_teardown(void **state);

#define SCSCF1 "sip:scscf1.ims.test:6060"
#define SCSCF2 "sip:scscf2.ims.test:6060"

#define OK(st, expr)                                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s -> %s (%s)", #expr, ims_strerror(rc_), ims_store_errmsg(st));             \
    } while (0)

/* Result checks on an answer. */
#define ASSERT_RESULT(res, want)                                                                   \
    do {                                                                                           \
        assert_true(DIA_HAS(&(res)->ans, DIA_ANS_RESULT));                                         \
        assert_int_equal((res)->ans.result_code, (want));                                          \
    } while (0)
#define ASSERT_EXP(res, want)                                                                      \
    do {                                                                                           \
        assert_false(DIA_HAS(&(res)->ans, DIA_ANS_RESULT));                                        \
        assert_true(DIA_HAS(&(res)->ans, DIA_ANS_EXP));                                            \
        assert_int_equal((res)->ans.exp.code, (want));                                             \
        assert_int_equal((res)->ans.exp.vendor, DIA_VENDOR_3GPP);                                  \
    } while (0)

#endif
