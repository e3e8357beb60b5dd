/* test_ut.c - src/ut/ut_doc.c: the stored document round-trips, '<' '>' '&'
 * never appear raw in it (it is embedded as is in Sh-Data XML), PUT bodies
 * are checked member by member; src/cscf/cdiv.c: the registry keeps only
 * users with something active. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "cscf/cdiv.h"
#include "ut/ut_int.h"

static json_t *js(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_doc_roundtrip(void **state)
{
    (void)state;
    struct ut_settings s, back;
    struct ims_buf b;
    ut_settings_default(&s);
    snprintf(s.cfu, sizeof(s.cfu), "%s", "sip:bob@ims.test?Subject=x&Priority=urgent");
    snprintf(s.cfnr, sizeof(s.cfnr), "%s", "tel:+15550002");
    s.cfnr_timeout = 30;
    s.icb_anonymous = true;
    s.privacy = UT_PRIV_HEADER;
    ims_buf_init(&b, UT_DOC_MAX + 1);
    assert_int_equal(ut_doc_dump(&s, &b), 0);
    assert_null(memchr(b.p, '<', b.len));
    assert_null(memchr(b.p, '>', b.len));
    assert_null(memchr(b.p, '&', b.len));
    assert_int_equal(ut_doc_parse(ims_buf_str(&b), &back), 0);
    assert_memory_equal(&s, &back, sizeof(s));
    ims_buf_free(&b);
    assert_int_equal(ut_doc_parse(ims_str_cstr("<xml/>"), &back), IMS_EPROTO);
}

static void test_apply_parts(void **state)
{
    (void)state;
    struct ut_settings s;
    const char *why = NULL;
    ut_settings_default(&s);
    json_t *j = js("{\"unconditional\":\"sip:a@b\",\"busy\":\"tel:+1\"}");
    assert_int_equal(ut_json_apply(&s, UT_PART_CF, j, &why), 0);
    json_decref(j);
    assert_string_equal(s.cfu, "sip:a@b");
    assert_string_equal(s.cfb, "tel:+1");
    /* a part's own body replaces all of it */
    j = js("{\"busy\":null}");
    assert_int_equal(ut_json_apply(&s, UT_PART_CF, j, &why), 0);
    json_decref(j);
    assert_string_equal(s.cfu, "");
    /* the whole resource: members absent stay */
    s.icb_all = true;
    j = js("{\"privacy\":{\"default\":\"user\"}}");
    assert_int_equal(ut_json_apply(&s, UT_PART_ALL, j, &why), 0);
    json_decref(j);
    assert_true(s.icb_all);
    assert_int_equal(s.privacy, UT_PRIV_USER);
}

static void test_apply_refuses(void **state)
{
    (void)state;
    static const struct {
        enum ut_part part;
        const char *body;
    } bad[] = {
        { UT_PART_CF, "{\"unconditional\":\"mailto:a@b\"}" },
        { UT_PART_CF, "{\"unconditional\":\"sip:\"}" },
        { UT_PART_CF, "{\"no_answer_timeout\":4}" },
        { UT_PART_CF, "{\"no_answer_timeout\":\"20\"}" },
        { UT_PART_CF, "{\"voicemail\":\"sip:a@b\"}" },
        { UT_PART_ICB, "{\"all\":1}" },
        { UT_PART_ICB, "[]" },
        { UT_PART_PRIVACY, "{\"default\":\"critical\"}" },
        { UT_PART_PRIVACY, "{}" },
        { UT_PART_ALL, "{\"call_forwarding\":[]}" },
        { UT_PART_ALL, "{\"devices\":[]}" },
        { UT_PART_DEVICES, "{}" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ut_settings s;
        const char *why = NULL;
        ut_settings_default(&s);
        json_t *j = js(bad[i].body);
        assert_int_equal(ut_json_apply(&s, bad[i].part, j, &why), IMS_EPROTO);
        assert_non_null(why);
        json_decref(j);
    }
}

static void test_cdiv_registry(void **state)
{
    (void)state;
    struct ims_cdiv c = { .icb_all = true }, out;
    ims_str alice = ims_str_cstr("sip:alice@ims.test");
    assert_int_equal(ims_cdiv_put(alice, &c), IMS_ENOENT); /* no registry */
    assert_int_equal(ims_cdiv_init(2), 0);
    assert_int_equal(ims_cdiv_init(2), IMS_EINVAL);
    assert_int_equal(ims_cdiv_get(alice, &out), IMS_ENOENT);
    assert_int_equal(ims_cdiv_put(alice, &c), 0);
    assert_int_equal(ims_cdiv_get(alice, &out), 0);
    assert_true(out.icb_all);
    snprintf(c.cfu, sizeof(c.cfu), "%s", "sip:bob@ims.test");
    assert_int_equal(ims_cdiv_put(alice, &c), 0); /* replaces */
    assert_int_equal(ims_cdiv_get(alice, &out), 0);
    assert_string_equal(out.cfu, "sip:bob@ims.test");
    assert_int_equal(ims_cdiv_put(ims_str_cstr("sip:b@x"), &c), 0);
    assert_int_equal(ims_cdiv_put(ims_str_cstr("sip:c@x"), &c), IMS_ELIMIT);
    struct ims_cdiv none = { .cfu = "" };
    assert_int_equal(ims_cdiv_put(alice, &none), 0); /* nothing active: removed */
    assert_int_equal(ims_cdiv_get(alice, &out), IMS_ENOENT);
    assert_int_equal(ims_cdiv_put(ims_str_cstr("sip:c@x"), &c), 0); /* room again */
    ims_cdiv_fini();
    ims_cdiv_fini();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_roundtrip),
        cmocka_unit_test(test_apply_parts),
        cmocka_unit_test(test_apply_refuses),
        cmocka_unit_test(test_cdiv_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
