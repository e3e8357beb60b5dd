/* test_userdata - IMSSubscription / iFC / Sh-Data XML: well-formed (parsed
 * back with libxml2) and escaped. */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>

#include "base/xml.h"
#include "hss/userdata.h"
#include "hss_tests.h"

static bool well_formed(const struct ims_buf *b)
{
    xmlDocPtr d = xmlReadMemory(b->p, (int)b->len, NULL, NULL, XML_PARSE_NONET |
                                XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    bool ok = d != NULL;
    xmlFreeDoc(d);
    return ok;
}

static void test_escape(void **state)
{
    struct ims_buf b;
    ims_buf_init(&b, 256);
    assert_int_equal(ims_xml_escape(&b, S("a<b>&\"c'd")), 0);
    assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&apos;d");
    ims_buf_free(&b);
}

static void test_subscription(void **state)
{
    struct ims_buf b, ifc;
    struct ims_spt spts[] = {
        { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL },
        { IMS_SPT_SIP_HEADER, true, 1, IMS_S("From"), IMS_S("\"<evil>\"&") },
        { IMS_SPT_SESSION_CASE, false, 1, IMS_S("0"), IMS_STR_NULL },
        { IMS_SPT_REQUEST_URI, false, 2, IMS_S("sip:x@y;a=<b>"), IMS_STR_NULL },
        { IMS_SPT_SESSION_DESCRIPTION, false, 2, IMS_S("m"), IMS_S("audio") },
    };
    struct ims_ifc f = { 10, false, spts, 5, IMS_S("sip:as.ims.test;x=&"), 1, IMS_S("info<>"), 0 };
    ims_buf_init(&ifc, 65536);
    assert_int_equal(ims_ud_ifc(&ifc, &f, 1), 0);
    assert_true(ims_xml_fragment_ok(ims_buf_str(&ifc)));
    assert_non_null(strstr(ifc.p, "<Content>&quot;&lt;evil&gt;&quot;&amp;</Content>"));
    assert_non_null(strstr(ifc.p, "<ConditionNegated>1</ConditionNegated><Group>1</Group>"));
    assert_non_null(strstr(ifc.p, "<DefaultHandling>1</DefaultHandling>"));
    assert_non_null(strstr(ifc.p, "<ProfilePartIndicator>0</ProfilePartIndicator>"));

    struct ims_ud_impu ids[] = { { IMS_S("sip:a&b@x"), true, 0 }, { IMS_S("tel:+1"), false, 1 } };
    struct ims_ud_profile p[] = { { ids, 2, ims_buf_str(&ifc), IMS_S("member,c&r") },
                                  { ids + 1, 1, IMS_S("<broken><"), IMS_STR_NULL } };
    ims_buf_init(&b, 1 << 20);
    assert_int_equal(ims_ud_subscription(&b, S("u<1>@x"), p, 2), 0);
    assert_true(well_formed(&b));
    assert_non_null(strstr(b.p, "<PrivateID>u&lt;1&gt;@x</PrivateID>"));
    assert_non_null(strstr(b.p, "<PublicIdentity><BarringIndication>1</BarringIndication>"
                                "<Identity>sip:a&amp;b@x</Identity></PublicIdentity>"));
    assert_non_null(strstr(b.p, "<Extension><IdentityType>1</IdentityType></Extension>"));
    assert_null(strstr(b.p, "<broken>")); /* a bad stored fragment is left out */
    /* the subscription's roles: the last child of a ServiceProfile, escaped;
     * none in a profile without roles */
    const char *roles = strstr(b.p, "<Extension><imscloud:Roles xmlns:imscloud=\""
                                    "urn:imscloud:params:xml:ns:roles\">member,c&amp;r"
                                    "</imscloud:Roles></Extension></ServiceProfile>");
    assert_non_null(roles);
    assert_null(strstr(strstr(roles, "</ServiceProfile>"), "<imscloud:Roles"));

    /* the cap is an ordinary error */
    struct ims_buf small;
    ims_buf_init(&small, 64);
    assert_int_equal(ims_ud_subscription(&small, S("u@x"), p, 1), IMS_ELIMIT);
    ims_buf_free(&small);
    ims_buf_free(&b);
    ims_buf_free(&ifc);
}

static void test_fragment_check(void **state)
{
    assert_true(ims_xml_fragment_ok(S("")));
    assert_true(ims_xml_fragment_ok(S("<a/> <b>x</b>")));
    assert_false(ims_xml_fragment_ok(S("<a>")));
    assert_false(ims_xml_fragment_ok(S("text<a/>")));
    assert_false(ims_xml_fragment_ok(S("<a>&ext;</a>")));
    assert_false(ims_xml_fragment_ok(S("<!DOCTYPE a [<!ENTITY x \"y\">]><a/>")));
}

static void test_ifcs_of(void **state)
{
    struct ims_buf frag, out;
    struct ims_ifc f[2] = {
        { 0, true, NULL, 0, IMS_S("sip:as1"), 0, IMS_STR_NULL, -1 },
        { 1, true, NULL, 0, IMS_S("sip:as2"), 0, IMS_STR_NULL, -1 },
    };
    ims_buf_init(&frag, 65536);
    ims_buf_init(&out, 65536);
    assert_int_equal(ims_ud_ifc(&frag, f, 2), 0);
    assert_int_equal(ims_ud_ifcs_of(&out, ims_buf_str(&frag), S("sip:as2")), 0);
    assert_null(strstr(out.p, "sip:as1"));
    assert_non_null(strstr(out.p, "<ServerName>sip:as2</ServerName>"));
    ims_buf_reset(&out);
    assert_int_equal(ims_ud_ifcs_of(&out, ims_buf_str(&frag), IMS_STR_NULL), 0);
    assert_non_null(strstr(out.p, "sip:as1"));
    assert_int_equal(ims_ud_ifcs_of(&out, S("<x"), IMS_STR_NULL), IMS_EPROTO);
    ims_buf_free(&frag);
    ims_buf_free(&out);
}

static void test_sh_parse(void **state)
{
    struct ims_sh_repo r[2];
    size_t n;
    for (int i = 0; i < 2; i++)
        ims_buf_init(&r[i].data, 4096);
    assert_int_equal(ims_sh_parse_repository(
                         S("<Sh-Data><RepositoryData><ServiceIndication> a </ServiceIndication>"
                           "<SequenceNumber>7</SequenceNumber><ServiceData><x y=\"1\">t</x><z/>"
                           "</ServiceData></RepositoryData><RepositoryData><ServiceIndication>b"
                           "</ServiceIndication><SequenceNumber>0</SequenceNumber>"
                           "</RepositoryData></Sh-Data>"),
                         r, 2, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].si, "a");
    assert_int_equal(r[0].seq, 7);
    assert_true(r[0].has_data);
    assert_string_equal(r[0].data.p, "<x y=\"1\">t</x><z/>");
    assert_false(r[1].has_data);
    /* the same data whether or not the prolog declares an encoding: a
     * non-ASCII character of an attribute as a reference (text as it is) */
    static const char *const prologs[] = { "", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" };
    for (int i = 0; i < 2; i++) {
        char doc[512];
        snprintf(doc, sizeof(doc),
                 "%s<Sh-Data><RepositoryData><ServiceIndication>a</ServiceIndication>"
                 "<SequenceNumber>1</SequenceNumber><ServiceData><x y=\"\xc2\xba>\">"
                 "\xc2\xba</x></ServiceData></RepositoryData></Sh-Data>",
                 prologs[i]);
        assert_int_equal(ims_sh_parse_repository(S(doc), r, 2, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(r[0].data.p, "<x y=\"&#xBA;&gt;\">\xc2\xba</x>");
    }
    assert_int_equal(ims_sh_parse_repository(S("<Other/>"), r, 2, &n), IMS_EPROTO);
    assert_int_equal(ims_sh_parse_repository(S("<Sh-Data><RepositoryData><ServiceIndication>a"
                                               "</ServiceIndication></RepositoryData></Sh-Data>"),
                                             r, 2, &n),
                     IMS_EPROTO);
    for (int i = 0; i < 2; i++)
        ims_buf_free(&r[i].data);
}

const struct CMUnitTest userdata_tests[] = {
    cmocka_unit_test(test_escape),
    cmocka_unit_test(test_subscription),
    cmocka_unit_test(test_fragment_check),
    cmocka_unit_test(test_ifcs_of),
    cmocka_unit_test(test_sh_parse),
};
const size_t userdata_ntests = sizeof(userdata_tests) / sizeof(userdata_tests[0]);
