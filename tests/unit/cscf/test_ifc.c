/* test_ifc - iFC evaluation (cscf/ifc.h, TS 29.228 Annex C) over profiles
 * parsed from literal User-Data (profile.c), so the parser and the evaluator
 * are tested together: no trigger point, CNF vs DNF with several groups,
 * negation, each SPT kind, the profile-part indicator, REGISTER
 * registration types, and ims_ifc_next's order and start index. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cscf/ifc.h"
#include "cscf/profile.h"

#define DOC_HEAD                                                                                   \
    "<?xml version=\"1.0\" "                                                                       \
    "encoding=\"UTF-8\"?><IMSSubscription><PrivateID>a@ims.test"                                   \
    "</PrivateID><ServiceProfile><PublicIdentity><Identity>sip:a@ims.test</"                       \
    "Identity>"                                                                                    \
    "</PublicIdentity>"
#define DOC_TAIL "</ServiceProfile></IMSSubscription>"
#define AS(n) "<ApplicationServer><ServerName>sip:as" #n ".test</ServerName></ApplicationServer>"

/* ---------------------------------------------------------------- helpers */

struct fix {
    struct ims_profile *p;
    char *xml;
};

/* A profile whose one service profile holds the iFC elements `ifcs`. */
static const struct ims_service_profile *profile(struct fix *f, const char *ifcs)
{
    size_t n = strlen(DOC_HEAD) + strlen(ifcs) + strlen(DOC_TAIL) + 1;
    f->xml = ims_alloc(n);
    assert_non_null(f->xml);
    snprintf(f->xml, n, "%s%s%s", DOC_HEAD, ifcs, DOC_TAIL);
    assert_int_equal(ims_profile_parse(ims_str_cstr(f->xml), &f->p), 0);
    assert_int_equal(f->p->nsp, 1);
    return &f->p->sps[0];
}

/* One iFC of priority 1 to sip:as1.test with trigger point tp ("" = none). */
static const struct ims_prof_ifc *one(struct fix *f, const char *tp)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "<InitialFilterCriteria><Priority>1</Priority>%s" AS(1) "</InitialFilterCriteria>",
             tp);
    const struct ims_service_profile *sp = profile(f, buf);
    assert_int_equal(sp->nifc, 1);
    return &sp->ifcs[0];
}

static void fix_free(struct fix *f)
{
    ims_profile_unref(f->p);
    ims_free(f->xml);
    memset(f, 0, sizeof(*f));
}

struct req {
    char text[4096];
    struct sip_msg m;
    struct sip_hdr h[64];
};

/* A request: start line, extra header lines, optional body with its type. */
static const struct sip_msg *req(struct req *r, const char *method, const char *ruri,
                                 const char *hdrs, const char *ctype, const char *body)
{
    int n = snprintf(r->text, sizeof(r->text),
                     "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
                     "From: <sip:a@ims.test>;tag=1\r\nTo: <sip:b@ims.test>\r\nCall-ID: c1\r\n"
                     "CSeq: 1 %s\r\n%s%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, ruri, method, hdrs, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof(r->text));
    assert_true(ims_sip_parse(r->text, (size_t)n, false, &r->m, r->h, 64) > 0);
    return &r->m;
}

static const struct ims_ifc_ctx ORIG = { IMS_SESSION_CASE_ORIGINATING, true, 0 };

#define SPT(grp, body) "<SPT><Group>" #grp "</Group>" body "</SPT>"
#define NSPT(grp, body)                                                                            \
    "<SPT><ConditionNegated>1</ConditionNegated><Group>" #grp "</Group>" body "</SPT>"
#define METHOD(m) "<Method>" m "</Method>"
#define RURI(re) "<RequestURI>" re "</RequestURI>"
#define TP(cnf, spts)                                                                              \
    "<TriggerPoint><ConditionTypeCNF>" #cnf "</ConditionTypeCNF>" spts "</TriggerPoint>"

/* ---------------------------------------------------------------- tests */

static void test_no_trigger(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_prof_ifc *ifc = one(&f, "");
    assert_false(ifc->has_trigger);
    assert_true(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    assert_true(ims_ifc_match(ifc, req(&r, "MESSAGE", "tel:+1", "", NULL, NULL), &ORIG));
    fix_free(&f);
}

/* (INVITE or MESSAGE) and R-URI user b: CNF groups 0 and 1; the same SPTs as
 * DNF mean (INVITE and MESSAGE) or (R-URI b) */
static void test_cnf_dnf(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
#define SPTS SPT(0, METHOD("INVITE")) SPT(0, METHOD("MESSAGE")) SPT(1, RURI("^sip:b@"))
    const struct ims_prof_ifc *cnf = one(&f, TP(1, SPTS));
    assert_true(cnf->cnf);
    assert_true(ims_ifc_match(cnf, req(&r, "INVITE", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    assert_true(ims_ifc_match(cnf, req(&r, "MESSAGE", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(cnf, req(&r, "INVITE", "sip:c@ims.test", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(cnf, req(&r, "OPTIONS", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    fix_free(&f);

    const struct ims_prof_ifc *dnf = one(&f, TP(0, SPTS));
    assert_false(dnf->cnf);
    /* group 0 can never hold (two methods at once): only group 1 decides */
    assert_true(ims_ifc_match(dnf, req(&r, "OPTIONS", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(dnf, req(&r, "INVITE", "sip:c@ims.test", "", NULL, NULL), &ORIG));
    fix_free(&f);
#undef SPTS

    /* an SPT in two groups takes part in both: DNF (INVITE and b) or
     * (INVITE and c) */
    dnf = one(&f, TP(0, "<SPT><Group>0</Group><Group>1</Group>" METHOD("INVITE") "</SPT>" SPT(
                            0, RURI("^sip:b@")) SPT(1, RURI("^sip:c@"))));
    assert_true(ims_ifc_match(dnf, req(&r, "INVITE", "sip:b@x", "", NULL, NULL), &ORIG));
    assert_true(ims_ifc_match(dnf, req(&r, "INVITE", "sip:c@x", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(dnf, req(&r, "INVITE", "sip:d@x", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(dnf, req(&r, "MESSAGE", "sip:b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
}

static void test_negation(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    /* CNF: INVITE and not to b */
    const struct ims_prof_ifc *ifc =
        one(&f, TP(1, SPT(0, METHOD("INVITE")) NSPT(1, RURI("^sip:b@"))));
    assert_true(ims_ifc_match(ifc, req(&r, "INVITE", "sip:c@ims.test", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    fix_free(&f);
    /* a negated header SPT: absent header matches */
    ifc = one(&f, TP(0, NSPT(0, "<SIPHeader><Header>Subject</Header></SIPHeader>")));
    assert_true(ims_ifc_match(ifc, req(&r, "MESSAGE", "sip:b@x", "", NULL, NULL), &ORIG));
    assert_false(
        ims_ifc_match(ifc, req(&r, "MESSAGE", "sip:b@x", "Subject: hi\r\n", NULL, NULL), &ORIG));
    fix_free(&f);
}

static void test_method(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_prof_ifc *ifc = one(&f, TP(0, SPT(0, METHOD("MESSAGE"))));
    assert_true(ims_ifc_match(ifc, req(&r, "MESSAGE", "sip:b@x", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
    /* methods are case-sensitive (RFC 3261 §7.1); extension methods work */
    ifc = one(&f, TP(0, SPT(0, METHOD("message"))));
    assert_false(ims_ifc_match(ifc, req(&r, "MESSAGE", "sip:b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
    ifc = one(&f, TP(0, SPT(0, METHOD("FOO"))));
    assert_true(ims_ifc_match(ifc, req(&r, "FOO", "sip:b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
}

static void test_request_uri(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_prof_ifc *ifc = one(&f, TP(0, SPT(0, RURI("^sip:voicemail-[0-9]+@"))));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:voicemail-12@ims.test", "", NULL, NULL), &ORIG));
    assert_false(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:voicemail-x@ims.test", "", NULL, NULL), &ORIG));
    /* searched, not anchored unless the pattern is; case-sensitive */
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:VOICEMAIL-1@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
    ifc = one(&f, TP(0, SPT(0, RURI("ims\\.test"))));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@ims.test;user=phone", "", NULL, NULL), &ORIG));
    assert_true(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@ims.test", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@imsxtest", "", NULL, NULL), &ORIG));
    fix_free(&f);
    /* a pattern that does not compile never matches */
    ifc = one(&f, TP(0, SPT(0, RURI("sip:(b"))));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:(b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
}

static void test_header(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    /* presence, by any case and by compact form */
    const struct ims_prof_ifc *ifc =
        one(&f, TP(0, SPT(0, "<SIPHeader><Header>accept-contact</Header></SIPHeader>")));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "a: *;video\r\n", NULL, NULL), &ORIG));
    assert_true(ims_ifc_match(
        ifc, req(&r, "INVITE", "sip:b@x", "Accept-Contact: *\r\n", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
    /* content: any line, any value of a list; unknown header names too */
    ifc = one(&f, TP(0, SPT(0, "<SIPHeader><Header>P-Foo</Header><Content>^bar[0-9]</Content>"
                               "</SIPHeader>")));
    assert_true(ims_ifc_match(
        ifc, req(&r, "INVITE", "sip:b@x", "p-foo: zzz\r\nP-Foo: x, bar1\r\n", NULL, NULL), &ORIG));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "P-Foo: bar2\r\n", NULL, NULL), &ORIG));
    assert_false(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "P-Foo: xbar1\r\n", NULL, NULL), &ORIG));
    assert_false(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "P-Other: bar1\r\n", NULL, NULL), &ORIG));
    fix_free(&f);
    /* a known header with content: Subject */
    ifc = one(&f, TP(0, SPT(0, "<SIPHeader><Header>Subject</Header><Content>urgent</Content>"
                               "</SIPHeader>")));
    assert_true(
        ims_ifc_match(ifc, req(&r, "MESSAGE", "sip:b@x", "s: very urgent\r\n", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(
        ifc, req(&r, "MESSAGE", "sip:b@x", "Subject: URGENT\r\n", NULL, NULL), &ORIG));
    fix_free(&f);
}

static void test_session_case(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_prof_ifc *ifc =
        one(&f, TP(1, SPT(0, METHOD("INVITE")) SPT(1, "<SessionCase>1</SessionCase>")));
    struct ims_ifc_ctx term = { IMS_SESSION_CASE_TERMINATING_REGISTERED, true, 0 };
    struct ims_ifc_ctx unreg = { IMS_SESSION_CASE_TERMINATING_UNREGISTERED, false, 0 };
    const struct sip_msg *m = req(&r, "INVITE", "sip:b@x", "", NULL, NULL);
    assert_true(ims_ifc_match(ifc, m, &term));
    assert_false(ims_ifc_match(ifc, m, &unreg));
    assert_false(ims_ifc_match(ifc, m, &ORIG));
    fix_free(&f);
}

#define SDP                                                                                        \
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"                      \
    "m=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\n"

static void test_sdp(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_prof_ifc *ifc =
        one(&f, TP(0, SPT(0, "<SessionDescription><Line>m</Line><Content>^video</Content>"
                             "</SessionDescription>")));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", "application/sdp", SDP), &ORIG));
    assert_true(ims_ifc_match(
        ifc, req(&r, "INVITE", "sip:b@x", "", "Application/SDP; charset=x", SDP), &ORIG));
    /* only SDP bodies; no body: absent */
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", "text/plain", SDP), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(
        ifc, req(&r, "INVITE", "sip:b@x", "", "application/sdp", "v=0\nm=audio 1 RTP/AVP 0\n"),
        &ORIG));
    fix_free(&f);
    /* a line without Content: the line is present */
    ifc = one(&f, TP(0, SPT(0, "<SessionDescription><Line>c</Line></SessionDescription>")));
    assert_true(
        ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", "application/sdp", SDP), &ORIG));
    assert_false(ims_ifc_match(
        ifc, req(&r, "INVITE", "sip:b@x", "", "application/sdp", "v=0\r\nm=audio 1 RTP/AVP 0\r\n"),
        &ORIG));
    fix_free(&f);
}

static void test_profile_part(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    const struct ims_service_profile *sp =
        profile(&f, "<InitialFilterCriteria><Priority>1</Priority>" AS(
                        1) "<ProfilePartIndicator>0</ProfilePartIndicator></"
                           "InitialFilterCriteria>"
                           "<InitialFilterCriteria><Priority>2</Priority>" AS(
                               2) "<ProfilePartIndicator>1</ProfilePartIndicator></"
                                  "InitialFilterCriteria>");
    const struct sip_msg *m = req(&r, "INVITE", "sip:b@x", "", NULL, NULL);
    struct ims_ifc_ctx reg = { IMS_SESSION_CASE_TERMINATING_REGISTERED, true, 0 };
    struct ims_ifc_ctx unreg = { IMS_SESSION_CASE_TERMINATING_UNREGISTERED, false, 0 };
    assert_true(ims_ifc_match(&sp->ifcs[0], m, &reg));
    assert_false(ims_ifc_match(&sp->ifcs[1], m, &reg));
    assert_false(ims_ifc_match(&sp->ifcs[0], m, &unreg));
    assert_true(ims_ifc_match(&sp->ifcs[1], m, &unreg));
    assert_int_equal(ims_ifc_next(sp, 0, m, &unreg), 1);
    fix_free(&f);
}

static void test_register_types(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    /* initial and de-registration, not re-registration */
    const struct ims_prof_ifc *ifc =
        one(&f, TP(0, SPT(0, METHOD("REGISTER") "<Extension><RegistrationType>0</RegistrationType>"
                                                "<RegistrationType>2</RegistrationType></"
                                                "Extension>")));
    const struct sip_msg *m = req(&r, "REGISTER", "sip:ims.test", "", NULL, NULL);
    struct ims_ifc_ctx c = { IMS_SESSION_CASE_ORIGINATING, true, 1u << 0 };
    assert_true(ims_ifc_match(ifc, m, &c));
    c.reg_type = 1u << 1;
    assert_false(ims_ifc_match(ifc, m, &c));
    c.reg_type = 1u << 2;
    assert_true(ims_ifc_match(ifc, m, &c));
    fix_free(&f);
    /* no RegistrationType: every kind */
    ifc = one(&f, TP(0, SPT(0, METHOD("REGISTER"))));
    for (unsigned k = 0; k < 3; k++) {
        c.reg_type = 1u << k;
        assert_true(ims_ifc_match(ifc, m, &c));
    }
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:b@x", "", NULL, NULL), &c));
    fix_free(&f);
}

static void test_next(void **state)
{
    (void)state;
    struct fix f = { 0 };
    struct req r;
    /* document order differs from priority order */
    const struct ims_service_profile *sp = profile(
        &f,
        "<InitialFilterCriteria><Priority>30</Priority>" AS(
            30) "</InitialFilterCriteria>"
                "<InitialFilterCriteria><Priority>10</Priority>" TP(0, SPT(0, METHOD("MESSAGE")))
                    AS(10) "</InitialFilterCriteria>"
                           "<InitialFilterCriteria><Priority>20</Priority>" TP(
                               0, SPT(0, METHOD("INVITE"))) AS(20) "</InitialFilterCriteria>");
    assert_int_equal(sp->nifc, 3);
    const struct sip_msg *inv = req(&r, "INVITE", "sip:b@x", "", NULL, NULL);
    int i = ims_ifc_next(sp, 0, inv, &ORIG);
    assert_int_equal(i, 1);
    assert_string_equal(sp->ifcs[i].server_name, "sip:as20.test");
    i = ims_ifc_next(sp, (size_t)i + 1, inv, &ORIG);
    assert_int_equal(i, 2);
    assert_string_equal(sp->ifcs[i].server_name, "sip:as30.test");
    assert_int_equal(ims_ifc_next(sp, (size_t)i + 1, inv, &ORIG), -1);
    assert_int_equal(ims_ifc_next(sp, 99, inv, &ORIG), -1);
    const struct sip_msg *msg = req(&r, "MESSAGE", "sip:b@x", "", NULL, NULL);
    assert_int_equal(ims_ifc_next(sp, 0, msg, &ORIG), 0);
    assert_int_equal(ims_ifc_next(sp, 1, msg, &ORIG), 2);
    const struct sip_msg *opt = req(&r, "OPTIONS", "sip:b@x", "", NULL, NULL);
    assert_int_equal(ims_ifc_next(sp, 0, opt, &ORIG), 2);
    assert_int_equal(ims_ifc_next(NULL, 0, opt, &ORIG), -1);
    fix_free(&f);
}

/* More distinct patterns than the per-thread regex cache holds, twice (the
 * second pass evicts and recompiles), in this thread and in one that ends
 * (its cache is freed then: LeakSanitizer would say otherwise). */
#define NCACHE 40
static void *cache_pass(void *arg)
{
    const struct ims_service_profile *sp = arg;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NCACHE; i++) {
            char ruri[64];
            struct req r;
            snprintf(ruri, sizeof(ruri), "sip:u%d@x", i);
            if (ims_ifc_next(sp, 0, req(&r, "INVITE", ruri, "", NULL, NULL), &ORIG) != i)
                return (void *)1;
        }
    }
    return NULL;
}

static void test_regex_cache(void **state)
{
    (void)state;
    struct fix f = { 0 };
    static char xml[NCACHE * 512];
    size_t k = 0;
    for (int i = 0; i < NCACHE; i++)
        k += (size_t)snprintf(xml + k, sizeof(xml) - k,
                              "<InitialFilterCriteria><Priority>%d</Priority>" TP(
                                  0, SPT(0, "<RequestURI>^sip:u%d@</RequestURI>"))
                                  AS(1) "</InitialFilterCriteria>",
                              i, i);
    const struct ims_service_profile *sp = profile(&f, xml);
    assert_int_equal(sp->nifc, NCACHE);
    assert_null(cache_pass((void *)sp));
    pthread_t t;
    void *ret = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, cache_pass, (void *)sp), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    fix_free(&f);
    /* the same pattern text in another profile (another address) */
    const struct ims_prof_ifc *ifc = one(&f, TP(0, SPT(0, RURI("^sip:u3@"))));
    struct req r;
    assert_true(ims_ifc_match(ifc, req(&r, "INVITE", "sip:u3@x", "", NULL, NULL), &ORIG));
    assert_false(ims_ifc_match(ifc, req(&r, "INVITE", "sip:u4@x", "", NULL, NULL), &ORIG));
    fix_free(&f);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_trigger),   cmocka_unit_test(test_cnf_dnf),
        cmocka_unit_test(test_negation),     cmocka_unit_test(test_method),
        cmocka_unit_test(test_request_uri),  cmocka_unit_test(test_header),
        cmocka_unit_test(test_session_case), cmocka_unit_test(test_sdp),
        cmocka_unit_test(test_profile_part), cmocka_unit_test(test_register_types),
        cmocka_unit_test(test_next),         cmocka_unit_test(test_regex_cache),
    };
    int failed = cmocka_run_group_tests_name("ifc", tests, NULL, NULL);
    xmlCleanupParser();
    return failed ? 1 : 0;
}
