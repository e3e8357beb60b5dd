#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "tests.h"

static void test_append_and_cap(void **s)
{
    (void)s;
    struct ims_buf b;
    ims_buf_init(&b, 16);
    assert_int_equal(ims_buf_add_cstr(&b, "0123456789"), 0);
    assert_int_equal(ims_buf_printf(&b, "%d%s", 12, "345"), 0);
    assert_int_equal(b.len, 15);
    assert_string_equal(b.p, "012345678912345");
    assert_int_equal(ims_buf_add_cstr(&b, "6"), 0); /* exactly at the cap */
    assert_int_equal(b.len, 16);
    /* past the cap: error, and the buffer is left empty and usable */
    assert_int_equal(ims_buf_add_cstr(&b, "7"), IMS_ELIMIT);
    assert_int_equal(b.len, 0);
    assert_int_equal(ims_buf_add_cstr(&b, "again"), 0);
    assert_string_equal(b.p, "again");
    ims_buf_consume(&b, 2);
    assert_string_equal(b.p, "ain");
    ims_buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    ims_buf_free(&b);
}

static void test_printf_cap(void **s)
{
    (void)s;
    struct ims_buf b;
    ims_buf_init(&b, 8);
    assert_int_equal(ims_buf_printf(&b, "%s", "123456789"), IMS_ELIMIT);
    assert_int_equal(b.len, 0);
    ims_buf_free(&b);
}

static void test_alloc_failure(void **s)
{
    (void)s;
    struct ims_buf b;
    ims_buf_init(&b, 1 << 20);
    assert_int_equal(ims_buf_add_cstr(&b, "x"), 0);
    ims_alloc_fail_at(1, 1);
    char big[300];
    memset(big, 'a', sizeof(big));
    assert_int_equal(ims_buf_add(&b, big, sizeof(big)), IMS_ENOMEM);
    ims_alloc_fail_at(0, 0);
    assert_int_equal(b.len, 0);
    assert_null(b.p);
    assert_int_equal(ims_buf_add(&b, big, sizeof(big)), 0);
    ims_buf_free(&b);
}

/* ims_buf_add_strs appends every part or, past the cap, empties the
 * buffer like every other append. */
static void test_add_strs(void **s)
{
    (void)s;
    struct ims_buf b;
    ims_buf_init(&b, 10);
    assert_int_equal(IMS_BUF_CAT(&b, IMS_S("ab"), IMS_STR_NULL, IMS_S("cde")), 0);
    assert_int_equal(IMS_BUF_CAT(&b, IMS_S("fghij")), 0); /* exactly the cap */
    assert_string_equal(b.p, "abcdefghij");
    assert_int_equal(b.len, 10);
    assert_int_equal(IMS_BUF_CAT(&b, IMS_S("k")), IMS_ELIMIT);
    assert_int_equal(b.len, 0);
    ims_buf_free(&b);
}

const struct CMUnitTest buf_tests[] = {
    cmocka_unit_test(test_append_and_cap),
    cmocka_unit_test(test_printf_cap),
    cmocka_unit_test(test_alloc_failure),
    cmocka_unit_test(test_add_strs),
};
const size_t buf_ntests = sizeof(buf_tests) / sizeof(buf_tests[0]);
