#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"
#include "guard_buf.h"
#include "tests.h"

static void test_has_ctl(void **s)
{
    (void)s;
    static const char nul[] = "a\0b";
    assert_false(ims_str_has_ctl(IMS_STR_NULL));
    assert_false(ims_str_has_ctl(IMS_S("alice@ims.test ~")));
    assert_false(ims_str_has_ctl(IMS_S("\xc3\xa9"))); /* UTF-8 is not control */
    assert_true(ims_str_has_ctl(ims_str_make(nul, 3)));
    assert_true(ims_str_has_ctl(IMS_S("a\tb")));
    assert_true(ims_str_has_ctl(IMS_S("\x7f")));
    assert_true(ims_str_has_ctl(IMS_S("a\x1f")));
}

static void test_quotable(void **s)
{
    (void)s;
    assert_true(ims_str_quotable(IMS_S("ims.test")));
    assert_true(ims_str_quotable(IMS_S("My Realm \xc3\xa9")));
    assert_false(ims_str_quotable(IMS_STR_NULL));
    assert_false(ims_str_quotable(IMS_S("")));
    assert_false(ims_str_quotable(IMS_S("ims\"x")));
    assert_false(ims_str_quotable(IMS_S("ims\\x")));
    assert_false(ims_str_quotable(IMS_S("ims\r\nX: y")));
}

static void test_eq(void **s)
{
    (void)s;
    assert_true(ims_str_eq(IMS_S("abc"), IMS_S("abc")));
    assert_false(ims_str_eq(IMS_S("abc"), IMS_S("abC")));
    assert_true(ims_str_caseeq(IMS_S("Via"), IMS_S("vIA")));
    assert_false(ims_str_caseeq(IMS_S("Via"), IMS_S("Vi")));
    assert_true(ims_str_has_caseprefix(IMS_S("SIP:alice"), "sip:"));
    /* anywhere, any case, whole literal; never an empty one, never past the end */
    assert_true(ims_str_has_casesub(IMS_S("a, Integrity-Protected=yes"), "integrity-protected"));
    assert_true(ims_str_has_casesub(IMS_S("xyz"), "xyz"));
    assert_true(ims_str_has_casesub(IMS_S("xxyz"), "xyz"));
    assert_false(ims_str_has_casesub(IMS_S("integrity-protecte"), "integrity-protected"));
    assert_false(ims_str_has_casesub(IMS_S("xy"), "xyz"));
    assert_false(ims_str_has_casesub(IMS_S("abc"), ""));
    assert_false(ims_str_has_casesub(IMS_STR_NULL, "a"));
    assert_false(ims_str_has_casesub(ims_str_make("xyZ", 2), "xyz")); /* s.len bounds it */
    /* with a byte that has no case: hits of it too near either end, and a
     * hit whose window differs, before the one that matches */
    assert_true(ims_str_has_casesub(IMS_S("ab-c"), "b-C"));
    assert_false(ims_str_has_casesub(IMS_S("-bc"), "a-b"));
    assert_false(ims_str_has_casesub(IMS_S("xa-"), "a-b"));
    assert_true(ims_str_has_casesub(IMS_S("q-b, A-B"), "a-b"));
    assert_false(ims_str_has_casesub(ims_str_make("a-bc", 2), "a-b"));
    assert_true(ims_str_has_casesub(IMS_S("-"), "-"));
    assert_true(ims_str_eq(IMS_STR_NULL, IMS_S("")));
}

static void test_trim_chr(void **s)
{
    (void)s;
    ims_str t = ims_str_trim(IMS_S(" \t x y \r\n"));
    assert_true(ims_str_eq(t, IMS_S("x y")));
    assert_int_equal(ims_str_trim(IMS_S("   ")).len, 0);
    assert_null(ims_str_trim(IMS_S("   ")).p);
    assert_int_equal(ims_str_chr(IMS_S("a:b"), ':'), 1);
    assert_int_equal(ims_str_chr(IMS_S("ab"), ':'), -1);
}

static void test_to_u64(void **s)
{
    (void)s;
    uint64_t v = 0;
    assert_int_equal(ims_str_to_u64(IMS_S("0"), 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ims_str_to_u64(IMS_S("4294967295"), UINT32_MAX, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(ims_str_to_u64(IMS_S("4294967296"), UINT32_MAX, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S("18446744073709551616"), UINT64_MAX, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S(""), 10, &v), IMS_EPROTO);
    /* a digit above a max below 9 (fuzz_userdata found "5" taken for max 3) */
    assert_int_equal(ims_str_to_u64(IMS_S("5"), 3, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S("1"), 0, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S("02"), 1, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S("3"), 3, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(ims_str_to_u64(IMS_S("00"), 0, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ims_str_to_u64(IMS_S("-1"), 10, &v), IMS_EPROTO);
    assert_int_equal(ims_str_to_u64(IMS_S("1 "), 10, &v), IMS_EPROTO);
}

/* The cursor never reads past `end`: every input sits flush on a guard page. */
static void test_cursor_guarded(void **s)
{
    (void)s;
    struct guard_buf g;
    const char *in = "token;x=\"q\\\"uoted\" \r\n  rest";
    char *p = guard_buf_new(&g, in, strlen(in));
    assert_non_null(p);
    struct ims_cur c = { p, p + strlen(in) };
    ims_str out;
    assert_int_equal(ims_cur_token(&c, &out, 64), 0);
    assert_true(ims_str_eq(out, IMS_S("token")));
    assert_int_equal(ims_cur_token(&c, &out, 64), IMS_ENOENT);
    assert_int_equal(ims_cur_char(&c, ';'), 0);
    assert_int_equal(ims_cur_until(&c, "=", &out), 0);
    assert_true(ims_str_eq(out, IMS_S("x")));
    assert_int_equal(ims_cur_char(&c, '='), 0);
    assert_int_equal(ims_cur_until(&c, " ", &out), 0);
    assert_true(ims_str_eq(out, IMS_S("\"q\\\"uoted\"")));
    assert_int_equal(ims_cur_lws(&c), 5); /* SP CRLF SP SP: a folded line */
    assert_int_equal(ims_cur_token(&c, &out, 3), IMS_ELIMIT);
    assert_int_equal(ims_cur_token(&c, &out, 4), 0);
    assert_true(ims_cur_eof(&c));
    assert_int_equal(ims_cur_char(&c, 'x'), IMS_ENOENT);
    guard_buf_free(&g);

    /* LWS that ends in a bare CRLF (no continuation) is not consumed */
    const char *crlf = " \r\n";
    p = guard_buf_new(&g, crlf, 3);
    c = (struct ims_cur){ p, p + 3 };
    assert_int_equal(ims_cur_lws(&c), 1);
    guard_buf_free(&g);
}

static void test_until_nul(void **s)
{
    (void)s;
    const char in[] = { 'a', '\0', 'b', ';', 'c' };
    struct ims_cur c = { in, in + sizeof(in) };
    ims_str out;
    ims_cur_until(&c, ";", &out);
    assert_int_equal(out.len, 3); /* a NUL byte is data, not a stop */
}

/* The formatting-free writers that replaced snprintf in the request path:
 * a join never cuts (all or ""), a copy cuts like snprintf, decimals are
 * snprintf's "%llu". */
static void test_join_copy_dec(void **s)
{
    (void)s;
    char d[8], num[IMS_U64_DEC_MAX + 1], want[32];
    assert_int_equal(IMS_STR_JOIN(d, sizeof(d), IMS_S("ab"), IMS_STR_NULL, IMS_S("cd")), 4);
    assert_string_equal(d, "abcd");
    assert_int_equal(IMS_STR_JOIN(d, sizeof(d), IMS_S("abc"), IMS_S("defg")), 7); /* exact */
    assert_string_equal(d, "abcdefg");
    assert_int_equal(IMS_STR_JOIN(d, sizeof(d), IMS_S("abcd"), IMS_S("efgh")), SIZE_MAX);
    assert_string_equal(d, "");
    assert_int_equal(ims_str_join(d, 0, NULL, 0), SIZE_MAX);
    assert_int_equal(ims_cstr_copy("abcdefghij", d, sizeof(d)), 10);
    assert_string_equal(d, "abcdefg");
    assert_int_equal(ims_cstr_copy(NULL, d, sizeof(d)), 0);
    assert_string_equal(d, "");
    const uint64_t vs[] = { 0, 7, 10, 65535, 4294967296ull, UINT64_MAX };
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        size_t n = ims_u64_dec(vs[i], num);
        num[n] = '\0';
        snprintf(want, sizeof(want), "%llu", (unsigned long long)vs[i]);
        assert_string_equal(num, want);
    }
}

const struct CMUnitTest str_tests[] = {
    cmocka_unit_test(test_eq),
    cmocka_unit_test(test_has_ctl),
    cmocka_unit_test(test_quotable),
    cmocka_unit_test(test_trim_chr),
    cmocka_unit_test(test_to_u64),
    cmocka_unit_test(test_cursor_guarded),
    cmocka_unit_test(test_until_nul),
    cmocka_unit_test(test_join_copy_dec),
};
const size_t str_ntests = sizeof(str_tests) / sizeof(str_tests[0]);
