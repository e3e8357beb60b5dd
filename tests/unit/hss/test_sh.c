/* test_sh - Sh-Pull (UDR) and Sh-Update (PUR) with the TS 29.328 §6.1.2
 * sequence-number rules, over a temporary SQLite store. */
#include <stdio.h>
#include <string.h>

#include "hss/userdata.h"
#include "hss_tests.h"

static struct sh_udr mk_udr(const char *impu, const int *drefs, size_t n)
{
    struct sh_udr r;
    memset(&r, 0, sizeof(r));
    r.uid.impu = S(impu);
    r.uid.present = 1u << SH_UID_IMPU;
    for (size_t i = 0; i < n; i++)
        r.dref[i] = drefs[i];
    r.n_dref = n;
    r.present = 1u << SH_UDR_UID | 1u << SH_UDR_DREF;
    return r;
}

static void pur(struct hfix *f, const char *impu, unsigned seq, const char *data,
                struct hss_result *r)
{
    char doc[1024];
    struct sh_pur q;
    memset(&q, 0, sizeof(q));
    q.uid.impu = S(impu);
    q.uid.present = 1;
    q.dref = SH_DREF_REPOSITORY_DATA;
    snprintf(doc, sizeof(doc),
             "<?xml version=\"1.0\"?><Sh-Data><RepositoryData><ServiceIndication>svc"
             "</ServiceIndication><SequenceNumber>%u</SequenceNumber>%s%s%s</RepositoryData>"
             "</Sh-Data>",
             seq, data ? "<ServiceData>" : "", data ? data : "", data ? "</ServiceData>" : "");
    q.user_data = S(doc);
    q.present = 1u << SH_PUR_UID | 1u << SH_PUR_DREF | 1u << SH_PUR_DATA;
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    OK(f->st, ims_hss_pur(f->st, &q, r));
}

static void test_udr(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    static const int all[] = { SH_DREF_IMS_PUBLIC_IDENTITY, SH_DREF_IMS_USER_STATE,
                               SH_DREF_SCSCF_NAME, SH_DREF_IFC };
    struct sh_udr q = mk_udr("sip:bob@ims.test", all, 4);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    const char *x = r.xml.p;
    assert_non_null(strstr(x, "<PublicIdentifiers><IMSPublicIdentity>"));
    assert_non_null(strstr(x, "<IMSPublicIdentity>sip:bob2@ims.test</IMSPublicIdentity>"));
    assert_non_null(strstr(x, "<IMSPublicIdentity>sip:bob@ims.test</IMSPublicIdentity>"));
    assert_non_null(strstr(x, "<IMSUserState>0</IMSUserState>"));
    assert_non_null(strstr(x, "<IFCs><InitialFilterCriteria>"));
    assert_null(strstr(x, "<S-CSCFName>")); /* none assigned */
    assert_true(ims_xml_fragment_ok(ims_str_make(strstr(x, "<Sh-Data>"),
                                                 strlen(strstr(x, "<Sh-Data>")))));

    /* IMPLICIT_IDENTITIES: only bob's own set; IFCs filtered by AS name */
    q.idset[0] = SH_IDSET_IMPLICIT;
    q.n_idset = 1;
    q.present |= 1u << SH_UDR_IDSET;
    q.server_name = S("sip:other-as.ims.test");
    q.present |= 1u << SH_UDR_SERVER;
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    assert_null(strstr(r.xml.p, "bob2"));
    assert_non_null(strstr(r.xml.p, "<IFCs></IFCs>"));

    q = mk_udr("sip:nobody@ims.test", all, 1);
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);

    static const int repo[] = { SH_DREF_REPOSITORY_DATA };
    q = mk_udr("sip:bob@ims.test", repo, 1); /* RepositoryData needs a Service-Indication */
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_RESULT(&r, DIA_MISSING_AVP);
    assert_int_equal(r.ans.failed_code, 704);

    static const int odd[] = { 17 }; /* LocationInformation: not served */
    q = mk_udr("sip:bob@ims.test", odd, 1);
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_DATA_CANNOT_BE_READ);
    ims_hss_result_clear(&r);
}

/* A SAR for bob's first set, sip:bob@ims.test (sip:bob2@ims.test is a set
 * of its own in the same subscription). */
static void sar(struct hfix *f, int sat)
{
    struct hss_result r;
    struct cx_sar q;
    memset(&q, 0, sizeof(q));
    q.impi = S("bob@ims.test");
    q.impu[0] = S("sip:bob@ims.test");
    q.n_impu = 1;
    q.server_name = S("sip:scscf.ims.test:6060;a=1&b=2");
    q.sat = sat;
    q.present = 1u << CX_SAR_IMPI | 1u << CX_SAR_IMPU | 1u << CX_SAR_SERVER |
                1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_sar(f->st, &f->pol, &q, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    ims_hss_result_clear(&r);
}

/* The Sh-IMS-Data UDR of impu for S-CSCFName and IMSUserState contains want. */
static void udr_has(struct hfix *f, const char *impu, const char *want)
{
    static const int ims[] = { SH_DREF_SCSCF_NAME, SH_DREF_IMS_USER_STATE };
    struct hss_result r;
    struct sh_udr q = mk_udr(impu, ims, 2);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    if (!strstr(r.xml.p, want))
        fail_msg("%s: %s has no %s", impu, r.xml.p, want);
    ims_hss_result_clear(&r);
}

/* TS 29.328 Annex D: AUTHENTICATION_PENDING between a MAR and its SAR;
 * then the S-CSCF bob's set is registered at (XML escaped)
 * and REGISTERED; bob2's set, not registered, is NOT_REGISTERED though its
 * subscription has an S-CSCF (not AUTHENTICATION_PENDING, which is a MAR's
 * assignment before any set registered); after USER_DEREGISTRATION neither
 * set has one (TS 29.228 §6.1.2). */
static void test_udr_registered(void **state)
{
    struct hfix *f = *state;
    /* a MAR assigns the S-CSCF: authentication pending until the SAR */
    struct cx_mar m;
    memset(&m, 0, sizeof(m));
    m.impi = S("bob@ims.test");
    m.impu = S("sip:bob@ims.test");
    m.server_name = S("sip:scscf.ims.test:6060;a=1&b=2");
    m.n_items = 1;
    m.item.scheme = S("Digest-MD5");
    m.item.present = 1u << CX_ITEM_SCHEME;
    m.present = 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
    struct hss_result r;
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_mar(f->st, &f->pol, &m, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    ims_hss_result_clear(&r);
    udr_has(f, "sip:bob@ims.test", "<IMSUserState>3</IMSUserState>");
    sar(f, CX_SAT_REGISTRATION);
    udr_has(f, "sip:bob@ims.test",
            "<Sh-IMS-Data><S-CSCFName>sip:scscf.ims.test:6060;a=1&amp;b=2</S-CSCFName>"
            "<IMSUserState>1</IMSUserState></Sh-IMS-Data>");
    udr_has(f, "sip:bob2@ims.test", "<IMSUserState>0</IMSUserState></Sh-IMS-Data>");
    sar(f, CX_SAT_USER_DEREGISTRATION);
    udr_has(f, "sip:bob@ims.test", "<Sh-IMS-Data><IMSUserState>0</IMSUserState></Sh-IMS-Data>");
    udr_has(f, "sip:bob2@ims.test", "<Sh-IMS-Data><IMSUserState>0</IMSUserState></Sh-IMS-Data>");
}

static void test_pur_sequence(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    ims_hss_result_init(&r);
    pur(f, "sip:bob@ims.test", 1, "<a>1</a>", &r); /* new data must start at 0 */
    ASSERT_EXP(&r, DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC);
    pur(f, "sip:bob@ims.test", 0, "<a>1</a>", &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    pur(f, "sip:bob@ims.test", 0, "<a>2</a>", &r);
    ASSERT_EXP(&r, DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC);
    pur(f, "sip:bob@ims.test", 2, "<a>2</a>", &r);
    ASSERT_EXP(&r, DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC);
    pur(f, "sip:bob@ims.test", 1, "<a>&amp;2</a>", &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);

    static const int repo[] = { SH_DREF_REPOSITORY_DATA };
    struct sh_udr q = mk_udr("sip:bob@ims.test", repo, 1);
    q.si[0] = S("svc");
    q.n_si = 1;
    q.present |= 1u << SH_UDR_SI;
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_non_null(strstr(r.xml.p, "<ServiceIndication>svc</ServiceIndication>"
                                    "<SequenceNumber>1</SequenceNumber>"
                                    "<ServiceData><a>&amp;2</a></ServiceData>"));

    /* no ServiceData: delete (the sequence must still follow) */
    pur(f, "sip:bob@ims.test", 2, NULL, &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_udr(f->st, &q, &r));
    assert_null(strstr(r.xml.p, "<RepositoryData>"));

    pur(f, "sip:nobody@ims.test", 0, "<a/>", &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    ims_hss_result_clear(&r);
}

static void test_pur_bad(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    struct sh_pur q;
    memset(&q, 0, sizeof(q));
    q.uid.impu = S("sip:bob@ims.test");
    q.uid.present = 1;
    q.dref = SH_DREF_REPOSITORY_DATA;
    q.user_data = S("<Sh-Data><RepositoryData><ServiceIndication>x</ServiceIndication>");
    q.present = 1u << SH_PUR_UID | 1u << SH_PUR_DREF | 1u << SH_PUR_DATA;
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_pur(f->st, &q, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_DATA_NOT_RECOGNIZED);
    q.user_data = S("<Sh-Data><RepositoryData><ServiceIndication>x</ServiceIndication>"
                    "<SequenceNumber>70000</SequenceNumber></RepositoryData></Sh-Data>");
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_pur(f->st, &q, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_DATA_NOT_RECOGNIZED);
    q.dref = SH_DREF_IFC; /* an AS cannot write iFCs */
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_pur(f->st, &q, &r));
    ASSERT_EXP(&r, DIA_ERROR_USER_DATA_CANNOT_BE_MODIFIED);
    ims_hss_result_clear(&r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, hfix_setup, hfix_teardown)
const struct CMUnitTest sh_tests[] = { T(test_udr), T(test_udr_registered), T(test_pur_sequence),
                                       T(test_pur_bad) };
const size_t sh_ntests = sizeof(sh_tests) / sizeof(sh_tests[0]);
