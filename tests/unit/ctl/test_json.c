/* test_json - the provisioning document: each validation rule answers
 * with the JSON path of the field and why; a valid document fills the
 * records (defaults, OPc from OP). */
#include <stdio.h>
#include <string.h>

#include "ctl_tests.h"

/* Parses doc; one of the errors must contain want (want NULL: no error). */
static void expect(const char *doc, const char *want)
{
    struct ctl_doc d;
    struct ctl_errs e;
    memset(&e, 0, sizeof(e));
    int rc = ctl_doc_from_json(S(doc), &d, &e);
    if (!want) {
        if (rc != 0)
            fail_msg("unexpected error: %s", e.n ? e.msg[0] : "?");
        ctl_doc_free(&d);
        return;
    }
    assert_int_equal(rc, CTL_USAGE);
    bool found = false;
    for (size_t i = 0; i < e.n && !found; i++)
        found = strstr(e.msg[i], want) != NULL;
    if (!found)
        fail_msg("want '%s', got %zu error(s), first '%s'", want, e.total,
                 e.n ? e.msg[0] : "(none)");
    ctl_doc_free(&d);
}

#define OPC "\"opc\":\"cd63cb71954a9f4e48a5994e37a02baf\""
#define SUB1 "{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"impis\":[%s],\"impus\":[%s]}]}"

static void expect_impi(const char *impi, const char *want)
{
    char doc[2048];
    snprintf(doc, sizeof(doc), SUB1, impi, "{\"identity\":\"sip:a@x\"}");
    expect(doc, want);
}

static void expect_impu(const char *impu, const char *want)
{
    char doc[2048];
    snprintf(doc, sizeof(doc), SUB1, "{\"identity\":\"a@x\",\"password\":\"p\"}", impu);
    expect(doc, want);
}

static void test_paths(void **state)
{
    /* the example of the issue: the third subscriber's first IMPI */
    expect("{\"version\":1,\"subscribers\":["
           "{\"name\":\"a\",\"impis\":[{\"identity\":\"a@x\",\"password\":\"p\"}]},"
           "{\"name\":\"b\"},"
           "{\"name\":\"c\",\"impis\":[{\"identity\":\"c@x\",\"k\":\"00\"," OPC "}]}]}",
           "subscribers[2].impis[0].k: must be 32 hex digits");
    /* the document */
    expect("{\"version\":1,", "document: line 1, column");
    expect("[]", "document: must be a JSON object");
    expect("{\"subscribers\":[]}", "version: must be 1");
    expect("{\"version\":2}", "version: must be 1");
    expect("{\"version\":1,\"subscriberz\":[]}", "subscriberz: unknown key");
    expect("{\"version\":1,\"subscribers\":{}}", "subscribers: must be an array");
    expect("{\"version\":1,\"version\":1}", "duplicate");
    /* subscribers */
    expect("{\"version\":1,\"subscribers\":[7]}", "subscribers[0]: must be an object");
    expect("{\"version\":1,\"subscribers\":[{}]}", "subscribers[0].name: missing");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a b\"}]}",
           "subscribers[0].name: must be 1 to 127 printable");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"nmae\":1}]}",
           "subscribers[0].nmae: unknown key");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"charging\":{\"ccf\":[\"a\",\"b\","
           "\"c\"]}}]}",
           "subscribers[0].charging.ccf: more than 2 entries");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"charging\":{\"ccf\":[\"a b\"]}}]}",
           "subscribers[0].charging.ccf[0]: must be a URI");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"capabilities\":{\"mandatory\":[1,"
           "-2]}}]}",
           "subscribers[0].capabilities.mandatory[1]: must be an integer 0..4294967295");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"keystone\":{\"user_id\":7}}]}",
           "subscribers[0].keystone.user_id: must be a string");
    /* IMPIs */
    expect_impi("{\"identity\":\"nodomain\",\"password\":\"p\"}",
                "subscribers[0].impis[0].realm: missing (the identity has no @domain");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"\"}",
                "subscribers[0].impis[0].password: must not be empty");
    expect_impi("{\"identity\":\"a@x\",\"k\":\"465b5ce8b199b49faa5f0a2ee238a6bc\"}",
                "subscribers[0].impis[0].k: needs op or opc");
    expect_impi("{\"identity\":\"a@x\"," OPC "}", "subscribers[0].impis[0].opc: needs k");
    expect_impi("{\"identity\":\"a@x\",\"k\":\"465b5ce8b199b49faa5f0a2ee238a6bc\",\"op\":"
                "\"cdc202d5123e20f62b6d676ac72cb318\"," OPC "}",
                "subscribers[0].impis[0].opc: give op or opc, not both");
    expect_impi("{\"identity\":\"a@x\",\"k\":\"465b5ce8b199b49faa5f0a2ee238a6bc\",\"opc\":\"zz\"}",
                "subscribers[0].impis[0].opc: must be 32 hex digits");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"amf\":\"80\"}",
                "subscribers[0].impis[0].amf: must be 4 hex digits");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"sqn\":281474976710656}",
                "subscribers[0].impis[0].sqn: must be an integer 0..281474976710655");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"schemes\":[\"md5\",\"ntlm\"]}",
                "subscribers[0].impis[0].schemes: 'ntlm' is not one of");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"keep_password\":\"yes\"}",
                "subscribers[0].impis[0].keep_password: must be true or false");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"impus\":[\"sip:b@x\"]}",
                "subscribers[0].impis[0].impus[0]: sip:b@x is not an IMPU of this subscriber");
    expect_impi("{\"identity\":\"a@x\",\"password\":\"p\",\"impus\":[\"mailto:a@x\"]}",
                "subscribers[0].impis[0].impus[0]: must be a sip:, sips: or tel: URI");
    expect_impi("{\"identity\":\"a x\",\"password\":\"p\"}",
                "subscribers[0].impis[0].identity: must be 1 to 255 printable");
    /* IMPUs */
    expect_impu("{\"identity\":\"http://a\"}",
                "subscribers[0].impus[0].identity: must be a sip:, sips: or tel: URI");
    expect_impu("{\"identity\":\"sip:a@x\",\"irs\":0}",
                "subscribers[0].impus[0].irs: must be an integer 1..4294967295");
    expect_impu("{\"identity\":\"sip:a@x\",\"type\":\"psi\"}",
                "subscribers[0].impus[0].type: must be public, distinct-psi");
    expect_impu("{\"identity\":\"sip:a@x\",\"barred\":1}",
                "subscribers[0].impus[0].barred: must be true or false");
    expect_impu("{\"identity\":\"sip:a@x\",\"profile\":\"a b\"}",
                "subscribers[0].impus[0].profile: must be 1 to 127");
    /* across the document */
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"impus\":[{\"identity\":\"sip:a@x\"}]},"
           "{\"name\":\"b\",\"impus\":[{\"identity\":\"sip:a@x\"}]}]}",
           "subscribers[1].impus[0].identity: IMPU sip:a@x is listed twice (also "
           "subscribers[0].impus[0].identity)");
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}",
           "subscribers[1].name: subscriber a is listed twice");
    /* profiles and S-CSCFs */
    expect("{\"version\":1,\"profiles\":[{\"name\":\"p\",\"xml\":\"<a><b></a>\"}]}",
           "profiles[0].xml: not well-formed XML");
    expect("{\"version\":1,\"profiles\":[{\"xml\":\"\"}]}", "profiles[0].name: missing");
    expect("{\"version\":1,\"scscfs\":[{\"capabilities\":[1]}]}", "scscfs[0].name: missing");
    expect("{\"version\":1,\"scscfs\":[{\"name\":\"sip:s\",\"capabilities\":[1,2,3,4,5,6,7,8,9,"
           "10,11,12,13,14,15,16,17]}]}",
           "scscfs[0].capabilities: more than 16 entries");
}

static void test_all_errors_collected(void **state)
{
    struct ctl_doc d;
    struct ctl_errs e;
    memset(&e, 0, sizeof(e));
    const char *doc = "{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"impis\":[{\"identity\":"
                      "\"a@x\",\"amf\":\"1\",\"sqn\":-1}],\"impus\":[{\"identity\":\"x\"}]}]}";
    assert_int_equal(ctl_doc_from_json(S(doc), &d, &e), CTL_USAGE);
    assert_int_equal(e.total, 3); /* amf, sqn, identity: not only the first */
    ctl_doc_free(&d);
}

static void test_valid_document(void **state)
{
    static const uint8_t opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                     0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };
    const char *doc =
        "{\"version\":1,"
        "\"profiles\":[{\"name\":\"p1\",\"xml\":\"<InitialFilterCriteria><Priority>0</Priority>"
        "</InitialFilterCriteria>\"}],"
        "\"scscfs\":[{\"name\":\"sip:s1\",\"capabilities\":[1,5]}],"
        "\"subscribers\":[{\"name\":\"alice\",\"charging\":{\"ccf\":[\"aaa://ccf\"]},"
        "\"capabilities\":{\"mandatory\":[1],\"optional\":[5]},"
        "\"impis\":[{\"identity\":\"alice@ims.test\",\"password\":\"pw\"},"
        "{\"identity\":\"alice-ue@ims.test\",\"k\":\"465b5ce8b199b49faa5f0a2ee238a6bc\","
        "\"op\":\"cdc202d5123e20f62b6d676ac72cb318\",\"amf\":\"9001\",\"impus\":[\"tel:+1\"]}],"
        "\"impus\":[{\"identity\":\"sip:alice@ims.test\",\"profile\":\"p1\"},"
        "{\"identity\":\"tel:+1\",\"irs\":2,\"barred\":true,\"type\":\"distinct-psi\"}]}]}";
    struct ctl_doc d;
    struct ctl_errs e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(ctl_doc_from_json(S(doc), &d, &e), 0);
    assert_int_equal(d.nprofiles, 1);
    assert_int_equal(d.nscscfs, 1);
    assert_int_equal(d.scscfs[0].ncaps, 2);
    assert_int_equal(d.nsubs, 1);
    const struct ctl_doc_sub *s = &d.subs[0];
    assert_string_equal(s->rec.ccf[0], "aaa://ccf");
    assert_int_equal(s->rec.n_mandatory, 1);
    assert_int_equal(s->nimpis, 2);
    assert_string_equal(s->impis[0].realm, "ims.test"); /* from the identity */
    assert_true(s->impis[0].has_password && !s->impis[0].has_aka);
    assert_int_equal(s->impis[0].schemes, IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 |
                                              IMS_AUTH_DIGEST_SHA512_256);
    assert_true(s->impis[0].links_all);
    assert_true(s->impis[1].has_aka);
    /* TS 35.208 test set 1: OPc from K and OP */
    assert_memory_equal(s->impis[1].opc, opc, 16);
    assert_int_equal(s->impis[1].amf[0], 0x90);
    assert_int_equal(s->impis[1].amf[1], 0x01);
    assert_int_equal(s->impis[1].schemes, IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5);
    assert_false(s->impis[1].links_all);
    assert_int_equal(s->impis[1].nlinks, 1);
    assert_int_equal(s->nimpus, 2);
    assert_int_equal(s->impus[0].irs, 1);
    assert_string_equal(s->impus[0].profile, "p1");
    assert_int_equal(s->impus[1].irs, 2);
    assert_true(s->impus[1].barred);
    assert_int_equal(s->impus[1].type, IMS_ID_DISTINCT_PSI);
    ctl_doc_free(&d);
    /* the fields an export adds are accepted (and ignored) on import */
    expect("{\"version\":1,\"subscribers\":[{\"name\":\"a\",\"assigned_scscf\":\"\","
           "\"impis\":[{\"identity\":\"a@x\",\"secrets\":{\"aka\":false},\"schemes\":[\"md5\"]}],"
           "\"impus\":[{\"identity\":\"sip:a@x\",\"reg_state\":\"registered\"}]}],"
           "\"scscfs\":[{\"name\":\"sip:s\",\"diameter_host\":\"s.ims\"}]}",
           NULL);
}

const struct CMUnitTest json_tests[] = {
    cmocka_unit_test(test_paths),
    cmocka_unit_test(test_all_errors_collected),
    cmocka_unit_test(test_valid_document),
};
const size_t json_ntests = sizeof(json_tests) / sizeof(json_tests[0]);
