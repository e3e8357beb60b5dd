/* test_profile - User-Data (TS 29.228 Annex E IMSSubscription) parsing:
 * identities with barring and types, iFCs sorted by priority with their
 * trigger points, and what is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cscf/profile.h"
#include "cscf_tests.h"

static const char doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID>"
    "<ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity>"
    "<Extension><IdentityType>0</IdentityType><Extension><DisplayName>Alice</DisplayName>"
    "</Extension></Extension></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication><Identity>tel:+15550001</Identity>"
    "</PublicIdentity>"
    "<InitialFilterCriteria><Priority>20</Priority>"
    "<TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>"
    "<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT>"
    "<SPT><ConditionNegated>1</ConditionNegated><Group>0</Group><Group>1</Group>"
    "<SIPHeader><Header>Accept-Contact</Header><Content>video</Content></SIPHeader></SPT>"
    "<SPT><Group>1</Group><SessionCase>1</SessionCase></SPT>"
    "<SPT><Group>2</Group><Method>REGISTER</Method>"
    "<Extension><RegistrationType>0</RegistrationType><RegistrationType>2</RegistrationType>"
    "</Extension></SPT>"
    "</TriggerPoint>"
    "<ApplicationServer><ServerName>sip:as2.ims.test</ServerName>"
    "<DefaultHandling>1</DefaultHandling><ServiceInfo>x&amp;y</ServiceInfo>"
    "</ApplicationServer><ProfilePartIndicator>0</ProfilePartIndicator>"
    "</InitialFilterCriteria>"
    "<InitialFilterCriteria><Priority>10</Priority>"
    "<ApplicationServer><ServerName>sip:as1.ims.test</ServerName></ApplicationServer>"
    "</InitialFilterCriteria>"
    "</ServiceProfile>"
    "<ServiceProfile><PublicIdentity><Identity>sip:alice-work@ims.test</Identity>"
    "</PublicIdentity></ServiceProfile>"
    "</IMSSubscription>";

/* same_source: the exact bytes the profile was parsed from, nothing else */
static void test_same_source(void **state)
{
    (void)state;
    struct ims_profile *p = NULL;
    assert_int_equal(ims_profile_parse(IMS_S(doc), &p), 0);
    assert_true(ims_profile_same_source(p, IMS_S(doc)));
    char *copy = strdup(doc); /* equal bytes elsewhere in memory */
    assert_true(ims_profile_same_source(p, ims_str_cstr(copy)));
    copy[strlen(copy) - 3] ^= 0x20; /* one byte of the last tag changed */
    assert_false(ims_profile_same_source(p, ims_str_cstr(copy)));
    free(copy);
    assert_false(ims_profile_same_source(p, ims_str_make(doc, strlen(doc) - 1)));
    assert_false(ims_profile_same_source(p, IMS_STR_NULL));
    assert_false(ims_profile_same_source(NULL, IMS_S(doc)));
    ims_profile_unref(p);
}

static void test_parse(void **state)
{
    struct ims_profile *p = NULL;
    assert_int_equal(ims_profile_parse(IMS_S(doc), &p), 0);
    assert_string_equal(p->impi, "alice@ims.test");
    assert_int_equal(p->nsp, 2);
    assert_int_equal(p->nids, 3);
    const struct ims_service_profile *sp = &p->sps[0];
    assert_int_equal(sp->nids, 2);
    assert_string_equal(sp->ids[0].identity, "sip:alice@ims.test");
    assert_false(sp->ids[0].barred);
    assert_string_equal(sp->ids[0].display_name, "Alice");
    assert_true(sp->ids[1].barred);
    /* sorted by priority */
    assert_int_equal(sp->nifc, 2);
    assert_int_equal(sp->ifcs[0].priority, 10);
    assert_false(sp->ifcs[0].has_trigger);
    assert_string_equal(sp->ifcs[0].server_name, "sip:as1.ims.test");
    assert_int_equal(sp->ifcs[0].profile_part, -1);
    const struct ims_prof_ifc *f = &sp->ifcs[1];
    assert_int_equal(f->priority, 20);
    assert_true(f->has_trigger && f->cnf);
    assert_int_equal(f->nspt, 4);
    assert_int_equal(f->spts[0].kind, IMS_SPTK_METHOD);
    assert_string_equal(f->spts[0].value, "INVITE");
    assert_int_equal(f->spts[1].kind, IMS_SPTK_SIP_HEADER);
    assert_true(f->spts[1].negated);
    assert_int_equal(f->spts[1].ngroups, 2);
    assert_string_equal(f->spts[1].value, "Accept-Contact");
    assert_string_equal(f->spts[1].content, "video");
    assert_int_equal(f->spts[2].kind, IMS_SPTK_SESSION_CASE);
    assert_int_equal(f->spts[2].session_case, IMS_SESSION_CASE_TERMINATING_REGISTERED);
    assert_int_equal(f->spts[3].reg_types, 1u << 0 | 1u << 2);
    assert_int_equal(f->default_handling, 1);
    assert_string_equal(f->service_info, "x&y");
    assert_int_equal(f->profile_part, 0);
    /* look-up by identity */
    assert_ptr_equal(ims_profile_find(p, IMS_S("tel:+15550001")), &p->sps[0]);
    assert_ptr_equal(ims_profile_find(p, IMS_S("sip:alice-work@ims.test")), &p->sps[1]);
    assert_null(ims_profile_find(p, IMS_S("sip:bob@ims.test")));
    /* shared by reference */
    struct ims_profile *q = ims_profile_ref(p);
    ims_profile_unref(p);
    assert_string_equal(q->impi, "alice@ims.test");
    assert_null(q->roles); /* no roles Extension */
    ims_profile_unref(q);
}

/* The subscription's local roles (HSS userdata.c): an Extension of a
 * ServiceProfile, matched by its namespace. */
static void test_roles(void **state)
{
    struct ims_profile *p = NULL;
    static const char with[] =
        "<IMSSubscription><PrivateID>a@x</PrivateID><ServiceProfile>"
        "<PublicIdentity><Identity>sip:a@x</Identity></PublicIdentity>"
        "<Extension><Roles>other-ns</Roles></Extension></ServiceProfile><ServiceProfile>"
        "<PublicIdentity><Identity>sip:b@x</Identity></PublicIdentity>"
        "<Extension><imscloud:Roles xmlns:imscloud=\"urn:imscloud:params:xml:ns:roles\">"
        " member,caller </imscloud:Roles></Extension></ServiceProfile></IMSSubscription>";
    assert_int_equal(ims_profile_parse(IMS_S(with), &p), 0);
    assert_string_equal(p->roles, "member,caller"); /* trimmed; not the un-namespaced one */
    ims_profile_unref(p);
    /* a default namespace works as well as a prefix */
    static const char dflt[] =
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity>"
        "</PublicIdentity><Extension><Roles xmlns=\"urn:imscloud:params:xml:ns:roles\">admin"
        "</Roles></Extension></ServiceProfile></IMSSubscription>";
    assert_int_equal(ims_profile_parse(IMS_S(dflt), &p), 0);
    assert_string_equal(p->roles, "admin");
    ims_profile_unref(p);
}

static void test_refused(void **state)
{
    struct ims_profile *p = NULL;
    static const char *const bad[] = {
        "",
        "<IMSSubscription><PrivateID>a</PrivateID>",          /* not well-formed */
        "<Other><ServiceProfile/></Other>",                     /* not an IMSSubscription */
        "<IMSSubscription><PrivateID>a</PrivateID></IMSSubscription>", /* no profile */
        "<IMSSubscription><ServiceProfile></ServiceProfile></IMSSubscription>", /* no id */
        "<!DOCTYPE IMSSubscription [<!ENTITY x \"y\">]><IMSSubscription><ServiceProfile>"
        "<PublicIdentity><Identity>&x;</Identity></PublicIdentity></ServiceProfile>"
        "</IMSSubscription>", /* a DTD */
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "</PublicIdentity><InitialFilterCriteria><Priority>1</Priority>"
        "</InitialFilterCriteria></ServiceProfile></IMSSubscription>", /* no ServerName */
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "</PublicIdentity><InitialFilterCriteria><Priority>x</Priority><ApplicationServer>"
        "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>"
        "</ServiceProfile></IMSSubscription>", /* a priority that is no number */
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "</PublicIdentity><InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
        "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group></SPT></TriggerPoint>"
        "<ApplicationServer><ServerName>sip:as</ServerName></ApplicationServer>"
        "</InitialFilterCriteria></ServiceProfile></IMSSubscription>", /* an empty SPT */
        /* single digits above their range (fuzz_userdata found IdentityType 5 taken) */
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "<Extension><IdentityType>5</IdentityType></Extension></PublicIdentity>"
        "</ServiceProfile></IMSSubscription>",
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "<BarringIndication>2</BarringIndication></PublicIdentity>"
        "</ServiceProfile></IMSSubscription>",
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "</PublicIdentity><InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
        "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group><SessionCase>7"
        "</SessionCase></SPT></TriggerPoint><ApplicationServer><ServerName>sip:as</ServerName>"
        "<DefaultHandling>3</DefaultHandling></ApplicationServer></InitialFilterCriteria>"
        "</ServiceProfile></IMSSubscription>",
        /* what would end the name-addr or the header line the S-CSCF writes
         * it into (P-Associated-URI, the Route to the AS) */
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b&gt;&#13;&#10;"
        "Service-Route: &lt;sip:evil&gt;</Identity></PublicIdentity>"
        "</ServiceProfile></IMSSubscription>",
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a b@c</Identity>"
        "</PublicIdentity></ServiceProfile></IMSSubscription>",
        "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@b</Identity>"
        "</PublicIdentity><InitialFilterCriteria><Priority>1</Priority><ApplicationServer>"
        "<ServerName>sip:as&gt;;lr</ServerName></ApplicationServer></InitialFilterCriteria>"
        "</ServiceProfile></IMSSubscription>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ims_profile_parse(ims_str_cstr(bad[i]), &p);
        if (rc != IMS_EPROTO)
            fail_msg("document %zu: %d", i, rc);
        assert_null(p);
    }
}

static void test_caps(void **state)
{
    /* more service profiles than IMS_PROFILE_MAX_SP */
    char buf[8192];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "<IMSSubscription>");
    for (int i = 0; i <= IMS_PROFILE_MAX_SP; i++)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k,
                              "<ServiceProfile><PublicIdentity><Identity>sip:u%d@x</Identity>"
                              "</PublicIdentity></ServiceProfile>",
                              i);
    snprintf(buf + k, sizeof(buf) - k, "</IMSSubscription>");
    struct ims_profile *p = NULL;
    assert_int_equal(ims_profile_parse(ims_str_cstr(buf), &p), IMS_ELIMIT);
    assert_null(p);
}

int run_profile_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_same_source),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
