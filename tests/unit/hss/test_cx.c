/* test_cx - UAR, MAR, SAR and LIR handlers (TS 29.228 §6.1, §6.3) over a
 * temporary SQLite store, AKA checked by a USIM model (crypto/aka.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/alloc.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "hss/hss.h"
#include "store/exec.h"
#include "hss_tests.h"

static struct cx_uar mk_uar(const char *impi, const char *impu, const char *visited, int type)
{
    struct cx_uar r;
    memset(&r, 0, sizeof(r));
    r.impi = S(impi);
    r.impu = S(impu);
    r.visited = S(visited);
    r.present = 1u << CX_UAR_IMPI | 1u << CX_UAR_IMPU | 1u << CX_UAR_VISITED;
    if (type >= 0) {
        r.auth_type = type;
        r.present |= 1u << CX_UAR_TYPE;
    }
    return r;
}

static struct cx_mar mk_mar(const char *impi, const char *impu, const char *scheme, unsigned n,
                            const char *server)
{
    struct cx_mar r;
    memset(&r, 0, sizeof(r));
    r.impi = S(impi);
    r.impu = S(impu);
    r.server_name = S(server);
    r.n_items = n;
    r.item.scheme = S(scheme);
    r.item.present = 1u << CX_ITEM_SCHEME;
    r.present = 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
    return r;
}

static struct cx_sar mk_sar(const char *impi, const char *impu, int sat, const char *server)
{
    struct cx_sar r;
    memset(&r, 0, sizeof(r));
    if (impi) {
        r.impi = S(impi);
        r.present |= 1u << CX_SAR_IMPI;
    }
    if (impu) {
        r.impu[0] = S(impu);
        r.n_impu = 1;
        r.present |= 1u << CX_SAR_IMPU;
    }
    r.server_name = S(server);
    r.sat = sat;
    r.present |= 1u << CX_SAR_SERVER | 1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    return r;
}

static struct cx_lir mk_lir(const char *impu)
{
    struct cx_lir r;
    memset(&r, 0, sizeof(r));
    r.impu = S(impu);
    r.present = 1u << CX_LIR_IMPU;
    return r;
}

static enum ims_reg_state state_of(struct hfix *f, const char *impu, char *scscf)
{
    struct ims_impu_rec rec;
    OK(f->st, ims_store_impu_get(f->st, S(impu), &rec));
    if (scscf)
        strcpy(scscf, rec.scscf_name);
    return rec.reg_state;
}

static void run_uar(struct hfix *f, struct cx_uar q, struct hss_result *r)
{
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    OK(f->st, ims_hss_uar(f->st, &f->pol, &q, r));
}

static void run_sar(struct hfix *f, struct cx_sar q, struct hss_result *r)
{
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    OK(f->st, ims_hss_sar(f->st, &f->pol, &q, r));
}

static void run_mar(struct hfix *f, struct cx_mar q, struct hss_result *r)
{
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    OK(f->st, ims_hss_mar(f->st, &f->pol, &q, r));
    /* as hss.c does once the job is off the store connection */
    assert_int_equal(ims_hss_result_finish(r), 0);
    assert_false(r->aka_pending);
}

static void run_lir(struct hfix *f, struct cx_lir q, struct hss_result *r)
{
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    OK(f->st, ims_hss_lir(f->st, &f->pol, &q, r));
}

static void test_uar(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    ims_hss_result_init(&r);

    run_uar(f, mk_uar("nobody@ims.test", "sip:nobody@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    run_uar(f, mk_uar("alice@ims.test", "sip:nobody@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    run_uar(f, mk_uar("alice@ims.test", "sip:carol@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITIES_DONT_MATCH);
    /* echoed for Kamailio */
    assert_true(ims_str_eq(r.ans.user_name, S("alice@ims.test")));

    /* first registration: capabilities and the S-CSCFs that have them */
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "\"ims.test\"", -1), &r);
    ASSERT_EXP(&r, DIA_FIRST_REGISTRATION);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CAPS));
    assert_false(DIA_HAS(&r.ans, DIA_ANS_SERVER));
    assert_int_equal(r.ans.caps.n_mand, 1);
    assert_int_equal(r.ans.caps.mand[0], 1);
    assert_int_equal(r.ans.caps.n_opt, 1);
    assert_int_equal(r.ans.caps.n_names, 1);
    assert_true(ims_str_eq(r.ans.caps.names[0], S(SCSCF1)));

    /* roaming: quotes stripped, globs, refusal */
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "\"v.partner.example\"", 0), &r);
    ASSERT_EXP(&r, DIA_FIRST_REGISTRATION);
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "other.example", 0), &r);
    ASSERT_EXP(&r, DIA_ERROR_ROAMING_NOT_ALLOWED);
    /* ... but de-registration is not a roaming question */
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "other.example", 1), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITY_NOT_REGISTERED);

    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test",
                      CX_UAT_REG_AND_CAPABILITIES), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CAPS));

    /* an operator default S-CSCF instead of capabilities */
    f->pol.default_scscf = SCSCF2;
    run_uar(f, mk_uar("carol@ims.test", "sip:carol@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_FIRST_REGISTRATION);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF2)));
    f->pol.default_scscf = NULL;

    /* barring: one barred identity in a set with an unbarred one is fine;
     * all barred is AUTHORIZATION_REJECTED */
    OK(f->st, ims_store_impu_bar(f->st, S("sip:alice@ims.test"), true));
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_FIRST_REGISTRATION);
    OK(f->st, ims_store_impu_bar(f->st, S("tel:+1555"), true));
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", -1), &r);
    ASSERT_RESULT(&r, DIA_AUTHORIZATION_REJECTED);
    OK(f->st, ims_store_impu_bar(f->st, S("sip:alice@ims.test"), false));
    OK(f->st, ims_store_impu_bar(f->st, S("tel:+1555"), false));

    /* after MAR (stored name) then SAR (registered) */
    struct hss_result m;
    ims_hss_result_init(&m);
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF1), &m);
    ASSERT_RESULT(&m, DIA_SUCCESS);
    assert_string_equal(m.assigned_scscf, SCSCF1);
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_FIRST_REGISTRATION);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF1)));
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &m);
    ASSERT_RESULT(&m, DIA_SUCCESS);
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", -1), &r);
    ASSERT_EXP(&r, DIA_SUBSEQUENT_REGISTRATION);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF1)));
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", 1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF1)));
    ims_hss_result_clear(&m);
    ims_hss_result_clear(&r);
}

static void test_mar_digest(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    ims_hss_result_init(&r);

    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    ims_digest_ha1(IMS_DIGEST_MD5, S("alice@ims.test"), S("ims.test"), S("alice-secret"), ha1);
    assert_int_equal(r.ans.n_item, 1);
    assert_true(ims_str_eq(r.ans.items[0].scheme, S("SIP Digest")));
    assert_true(ims_str_eq(r.ans.items[0].digest.ha1, S(ha1)));
    assert_true(ims_str_eq(r.ans.items[0].digest.realm, S("ims.test")));
    assert_true(ims_str_eq(r.ans.items[0].digest.algorithm, S("MD5")));
    assert_true(ims_str_eq(r.ans.items[0].digest.qop, S("auth")));
    assert_true(ims_str_eq(r.ans.user_name, S("alice@ims.test")));
    assert_true(ims_str_eq(r.ans.impu[0], S("sip:alice@ims.test")));

    /* MAR stored the S-CSCF for the registration in progress (§6.3.1) */
    char scscf[IMS_STORE_ID_MAX];
    assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, SCSCF1);

    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "SIP Digest", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].digest.algorithm, S("MD5")));
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "SHA-256", 1, SCSCF1), &r);
    ims_digest_ha1(IMS_DIGEST_SHA256, S("alice@ims.test"), S("ims.test"), S("alice-secret"), ha1);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].digest.ha1, S(ha1)));
    assert_true(ims_str_eq(r.ans.items[0].digest.algorithm, S("SHA-256")));

    /* alice has no AKA keys: unknown scheme -> Digest, AKA asked -> 5006 */
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Unknown", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].scheme, S("SIP Digest")));
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-AKAv1-MD5", 1, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Kerberos", 1, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
    run_mar(f, mk_mar("zed@ims.test", "sip:zed@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    assert_true(ims_str_eq(r.ans.user_name, S("zed@ims.test")));
    run_mar(f, mk_mar("alice@ims.test", "sip:carol@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITIES_DONT_MATCH);
    ims_hss_result_clear(&r);
}

static uint64_t usim_check(const struct cx_auth_item *it)
{
    uint8_t res[8], ck[16], ik[16], amf[2];
    uint64_t sqn = 0;
    assert_int_equal(it->authenticate.len, 32);
    const uint8_t *p = (const uint8_t *)it->authenticate.p;
    assert_int_equal(ims_aka_ue_check(t_k, t_opc, p, p + 16, &sqn, amf, res, ck, ik), 0);
    assert_int_equal(it->authorization.len, 8);
    assert_memory_equal(res, it->authorization.p, 8);
    assert_int_equal(it->ck.len, 16);
    assert_memory_equal(ck, it->ck.p, 16);
    assert_int_equal(it->ik.len, 16);
    assert_memory_equal(ik, it->ik.p, 16);
    return sqn;
}

/* The AKA MAR in two steps (cx.h): the handler commits the SQNs and leaves
 * K and OPc sealed; the finish makes the vectors later, off the store
 * connection (here: after the store changed again).  A plan whose
 * ciphertext no longer decrypts answers 5012, and its SQNs stay burned. */
static void test_mar_aka_finish(void **state)
{
    struct hfix *f = *state;
    struct hss_result r, r2;
    struct ims_auth_data ad;
    ims_hss_result_init(&r);
    ims_hss_result_init(&r2);
    OK(f->st, ims_store_auth_get(f->st, S("bob@ims.test"), &ad));
    uint64_t before = ad.sqn;
    ims_auth_data_clear(&ad);

    struct cx_mar q = mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5", 2, SCSCF1);
    OK(f->st, ims_hss_mar(f->st, &f->pol, &q, &r));
    assert_true(r.aka_pending);
    assert_int_equal(r.ans.n_item, 0); /* nothing made yet */
    assert_int_equal(r.aka.n, 2);
    assert_true(strncmp(r.aka.sealed.k, "v1:", 3) == 0); /* a ciphertext, not K */
    assert_true(strncmp(r.aka.sealed.opc, "v1:", 3) == 0);
    OK(f->st, ims_store_auth_get(f->st, S("bob@ims.test"), &ad));
    assert_int_equal(ad.sqn, r.aka.sqn[1]); /* committed before the finish */
    assert_true(ims_aka_sqn_seq(ad.sqn) > ims_aka_sqn_seq(before));
    ims_auth_data_clear(&ad);

    /* a second MAR in between: its SQNs come after the first one's */
    OK(f->st, ims_hss_mar(f->st, &f->pol, &q, &r2));
    assert_true(ims_aka_sqn_seq(r2.aka.sqn[0]) > ims_aka_sqn_seq(r.aka.sqn[1]));

    uint64_t want0 = r.aka.sqn[0], want1 = r.aka.sqn[1];
    assert_int_equal(ims_hss_result_finish(&r), 0);
    assert_false(r.aka_pending);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(r.ans.n_item, 2);
    assert_int_equal(usim_check(&r.ans.items[0]), want0); /* the SQNs reserved */
    assert_int_equal(usim_check(&r.ans.items[1]), want1);
    assert_int_equal(ims_hss_result_finish(&r), 0); /* once only: a no-op now */
    assert_int_equal(r.ans.n_item, 2);

    /* tampered in memory: the finish fails closed */
    size_t len = strlen(r2.aka.sealed.opc);
    r2.aka.sealed.opc[len - 3] = r2.aka.sealed.opc[len - 3] == 'A' ? 'B' : 'A';
    uint64_t burned = r2.aka.sqn[1];
    assert_int_equal(ims_hss_result_finish(&r2), IMS_EBACKEND);
    ASSERT_RESULT(&r2, DIA_UNABLE_TO_COMPLY);
    assert_int_equal(r2.ans.n_item, 0);
    run_mar(f, q, &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_aka_sqn_seq(usim_check(&r.ans.items[0])) > ims_aka_sqn_seq(burned));
    ims_hss_result_clear(&r);
    ims_hss_result_clear(&r2);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* ims_hss_result_clear wipes what an answer's secrets were written to (the
 * HA1 of a Digest MAR, every vector of an AKA one); it walks only what was
 * used (items_used). */
static void test_result_clear_wipes_secrets(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    ims_hss_result_init(&r);
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(r.items_used, 1);
    assert_false(all_zero(r.items[0].ha1, sizeof(r.items[0].ha1)));
    ims_hss_result_clear(&r);
    assert_true(all_zero(&r.items[0], sizeof(r.items[0])));
    assert_true(all_zero(&r.ans.items[0], sizeof(r.ans.items[0])));
    assert_int_equal(r.items_used, 0);

    ims_hss_result_init(&r);
    run_mar(f, mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5", 3, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(r.ans.n_item, 3);
    assert_int_equal(r.items_used, 3);
    for (size_t i = 0; i < 3; i++)
        assert_false(all_zero(r.items[i].ck, sizeof(r.items[i].ck)));
    ims_hss_result_clear(&r);
    for (size_t i = 0; i < 3; i++) {
        assert_true(all_zero(&r.items[i], sizeof(r.items[i])));
        assert_true(all_zero(&r.ans.items[i], sizeof(r.ans.items[i])));
    }

    /* a request that wrote no secret leaves nothing to wipe */
    ims_hss_result_init(&r);
    run_uar(f, mk_uar("alice@ims.test", "sip:alice@ims.test", "ims.test", -1), &r);
    assert_int_equal(r.items_used, 0);
    ims_hss_result_clear(&r);
}

static void test_mar_aka_and_resync(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    ims_hss_result_init(&r);

    run_mar(f, mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5", 3, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(r.ans.n_item, 3);
    assert_int_equal(r.ans.n_items, 3);
    uint64_t last = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.ans.items[i].item_number, i + 1);
        assert_true(ims_str_eq(r.ans.items[i].scheme, S("Digest-AKAv1-MD5")));
        uint64_t sqn = usim_check(&r.ans.items[i]);
        assert_true(ims_aka_sqn_seq(sqn) > ims_aka_sqn_seq(last)); /* never reused */
        last = sqn;
    }
    /* more than we hand out at once is capped */
    run_mar(f, mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5", 100, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(r.ans.n_item, CX_MAX_ITEMS);
    last = usim_check(&r.ans.items[CX_MAX_ITEMS - 1]);

    /* the USIM is ahead: RAND||AUTS from the UE simulator */
    uint8_t rand[16], authz[30];
    memcpy(rand, r.ans.items[0].authenticate.p, 16);
    uint64_t sqn_ms = ims_aka_sqn_make(ims_aka_sqn_seq(last) + 5000, 3);
    memcpy(authz, rand, 16);
    assert_int_equal(ims_aka_auts_make(t_k, t_opc, rand, sqn_ms, authz + 16), 0);
    struct cx_mar q = mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5", 1, SCSCF1);
    q.item.authorization = ims_str_make((const char *)authz, 30);
    q.item.present |= 1u << CX_ITEM_AUTHORIZATION;
    run_mar(f, q, &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    uint64_t after = usim_check(&r.ans.items[0]);
    assert_true(ims_aka_sqn_seq(after) > ims_aka_sqn_seq(sqn_ms));

    /* a forged AUTS changes nothing */
    authz[20] ^= 0x40;
    q.item.authorization = ims_str_make((const char *)authz, 30);
    run_mar(f, q, &r);
    ASSERT_RESULT(&r, DIA_AUTHORIZATION_REJECTED);
    /* a SIP-Authorization of the wrong size */
    q.item.authorization = ims_str_make((const char *)authz, 29);
    run_mar(f, q, &r);
    ASSERT_RESULT(&r, DIA_INVALID_AVP_VALUE);

    /* the IMPI's default scheme for "Unknown" is AKAv1 when it has keys */
    run_mar(f, mk_mar("bob@ims.test", "sip:bob@ims.test", "Unknown", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].scheme, S("Digest-AKAv1-MD5")));
    run_mar(f, mk_mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv2-MD5", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.items[0].scheme, S("Digest-AKAv2-MD5")));
    ims_hss_result_clear(&r);
}

static void test_sar(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    char scscf[IMS_STORE_ID_MAX];
    ims_hss_result_init(&r);

    /* REGISTRATION without User-Name: MISSING_AVP naming User-Name */
    run_sar(f, mk_sar(NULL, "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_MISSING_AVP);
    assert_int_equal(r.ans.failed_code, 1);
    run_sar(f, mk_sar("alice@ims.test", "sip:nobody@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    run_sar(f, mk_sar("alice@ims.test", "sip:carol@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITIES_DONT_MATCH);

    /* NO_ASSIGNMENT before any assignment */
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_NO_ASSIGNMENT, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_UNABLE_TO_COMPLY);

    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_string_equal(r.assigned_scscf, SCSCF1);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_USER_DATA));
    assert_non_null(strstr(r.xml.p, "<PrivateID>alice@ims.test</PrivateID>"));
    assert_non_null(strstr(r.xml.p, "<Identity>tel:+1555</Identity>"));
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CHARGING));
    assert_true(ims_str_eq(r.ans.charging.ccf[0], S("aaa://ccf.ims.test")));
    assert_false(DIA_HAS(&r.ans, DIA_ANS_ASSOC)); /* one IMPI: no Associated-Identities */
    /* the implicit set changes state together (§6.5.1.1) */
    assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_REGISTERED);
    assert_int_equal(state_of(f, "tel:+1555", NULL), IMS_REG_REGISTERED);
    assert_string_equal(scscf, SCSCF1);

    struct cx_sar q = mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_RE_REGISTRATION,
                             SCSCF1);
    q.uda = 1; /* USER_DATA_ALREADY_AVAILABLE */
    run_sar(f, q, &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_false(DIA_HAS(&r.ans, DIA_ANS_USER_DATA));

    /* TS 29.228 §6.1.2: a subscription with two IMPIs, both in the SAA's
     * Associated-Identities */
    OK(f->st, ims_store_impi_add(f->st, S("alice"), S("alice-tab@ims.test"), S("ims.test"),
                                 IMS_AUTH_DIGEST_MD5));
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_RE_REGISTRATION, SCSCF1),
            &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_ASSOC));
    assert_int_equal(r.ans.assoc.n_impi, 2);
    assert_true(ims_str_eq(r.ans.assoc.impi[0], S("alice-tab@ims.test")));
    assert_true(ims_str_eq(r.ans.assoc.impi[1], S("alice@ims.test")));
    OK(f->st, ims_store_impi_del(f->st, S("alice-tab@ims.test")));

    run_sar(f, mk_sar(NULL, "sip:alice@ims.test", CX_SAT_NO_ASSIGNMENT, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_USER_DATA));
    run_sar(f, mk_sar(NULL, "sip:alice@ims.test", CX_SAT_NO_ASSIGNMENT, SCSCF2), &r);
    ASSERT_RESULT(&r, DIA_UNABLE_TO_COMPLY);

    /* another S-CSCF asks for an identity registered elsewhere */
    run_sar(f, mk_sar(NULL, "sip:alice@ims.test", CX_SAT_UNREGISTERED_USER, SCSCF2), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITY_ALREADY_REGISTERED);

    /* user de-registration with the name kept */
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test",
                      CX_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, SCSCF1);

    /* register again, then de-register by IMPI only: every identity */
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    run_sar(f, mk_sar("alice@ims.test", NULL, CX_SAT_TIMEOUT_DEREGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(state_of(f, "tel:+1555", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, "");

    /* UNREGISTERED_USER: services for an unregistered identity */
    run_sar(f, mk_sar(NULL, "sip:bob@ims.test", CX_SAT_UNREGISTERED_USER, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_non_null(strstr(r.xml.p, "<ServerName>sip:as.ims.test</ServerName>"));
    assert_non_null(strstr(r.xml.p, "<PrivateID>bob@ims.test</PrivateID>"));
    assert_int_equal(state_of(f, "sip:bob@ims.test", scscf), IMS_REG_UNREGISTERED);
    assert_string_equal(scscf, SCSCF1);
    run_sar(f, mk_sar(NULL, "sip:bob@ims.test", CX_SAT_ADMINISTRATIVE_DEREGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(state_of(f, "sip:bob@ims.test", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, "");

    /* authentication failure after MAR forgets the S-CSCF stored by MAR */
    struct hss_result m;
    ims_hss_result_init(&m);
    run_mar(f, mk_mar("carol@ims.test", "sip:carol@ims.test", "Digest-MD5", 1, SCSCF2), &m);
    ASSERT_RESULT(&m, DIA_SUCCESS);
    state_of(f, "sip:carol@ims.test", scscf);
    assert_string_equal(scscf, SCSCF2);
    run_sar(f, mk_sar("carol@ims.test", "sip:carol@ims.test", CX_SAT_AUTHENTICATION_FAILURE,
                      SCSCF2), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    state_of(f, "sip:carol@ims.test", scscf);
    assert_string_equal(scscf, "");
    /* the remaining types are accepted */
    static const int more[] = { CX_SAT_USER_DEREGISTRATION, CX_SAT_AUTHENTICATION_TIMEOUT,
                                CX_SAT_DEREGISTRATION_TOO_MUCH_DATA,
                                CX_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        run_sar(f, mk_sar("carol@ims.test", "sip:carol@ims.test", more[i], SCSCF2), &r);
        ASSERT_RESULT(&r, DIA_SUCCESS);
    }
    ims_hss_result_clear(&m);
    ims_hss_result_clear(&r);
}

static void test_lir(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    ims_hss_result_init(&r);
    run_lir(f, mk_lir("sip:nobody@ims.test"), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    run_lir(f, mk_lir("sip:alice@ims.test"), &r);
    ASSERT_EXP(&r, DIA_ERROR_IDENTITY_NOT_REGISTERED);
    /* bob has a profile: unregistered services, capabilities */
    run_lir(f, mk_lir("sip:bob@ims.test"), &r);
    ASSERT_EXP(&r, DIA_UNREGISTERED_SERVICE);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CAPS));
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    run_lir(f, mk_lir("tel:+1555"), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF1)));
    run_sar(f, mk_sar(NULL, "sip:bob@ims.test", CX_SAT_UNREGISTERED_USER, SCSCF2), &r);
    run_lir(f, mk_lir("sip:bob@ims.test"), &r);
    ASSERT_EXP(&r, DIA_UNREGISTERED_SERVICE);
    assert_true(ims_str_eq(r.ans.server_name, S(SCSCF2)));
    ims_hss_result_clear(&r);
}

static void test_slf(void **state)
{
    static const struct hss_slf_route routes[] = {
        { "sip:*@a.example", "hss-a.example" },
        { "*@b.example", "hss-b.example" },
    };
    struct hss_result r;
    ims_hss_result_init(&r);
    ims_hss_slf(routes, 2, S("u@b.example"), S("sip:u@a.example"), &r);
    ASSERT_RESULT(&r, DIA_REDIRECT_INDICATION); /* the IMPI decides first */
    assert_true(ims_str_eq(r.ans.redirect[0], S("aaa://hss-b.example")));
    assert_int_equal(r.ans.redirect_usage, DIA_REDIRECT_USAGE_ALL_USER);
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    ims_hss_slf(routes, 2, IMS_STR_NULL, S("sip:u@a.example"), &r);
    assert_true(ims_str_eq(r.ans.redirect[0], S("aaa://hss-a.example")));
    ims_hss_result_clear(&r);
    ims_hss_result_init(&r);
    ims_hss_slf(routes, 2, S("u@c.example"), S("sip:u@c.example"), &r);
    ASSERT_EXP(&r, DIA_ERROR_USER_UNKNOWN);
    ims_hss_result_clear(&r);
}

static void test_admin_prepare(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    struct hss_admin_op op;
    ims_hss_result_init(&r);
    memset(&op, 0, sizeof(op));
    ims_buf_init(&op.xml, 1 << 20);
    op.kind = HSS_ADMIN_DEREGISTER;
    strcpy(op.impu, "sip:alice@ims.test");
    assert_int_equal(ims_hss_admin_prepare(f->st, &op), IMS_ENOENT); /* nowhere registered */
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    op.kind = HSS_ADMIN_PUSH;
    OK(f->st, ims_hss_admin_prepare(f->st, &op));
    assert_string_equal(op.scscf, SCSCF1);
    assert_string_equal(op.impi, "alice@ims.test");
    assert_int_equal(op.n_impus, 2);
    assert_non_null(strstr(op.xml.p, "<IMSSubscription>"));
    op.kind = HSS_ADMIN_DEREGISTER;
    OK(f->st, ims_hss_admin_prepare(f->st, &op));
    char scscf[IMS_STORE_ID_MAX];
    assert_int_equal(state_of(f, "tel:+1555", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, "");
    ims_buf_free(&op.xml);
    ims_hss_result_clear(&r);
}

/* Every allocation of ours in the SAR path fails in turn: a clean error
 * (IMS_ENOMEM) or a complete answer, never a crash or a leak (ASan). */
static void test_sar_alloc_failures(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    struct cx_sar q = mk_sar("bob@ims.test", "sip:bob@ims.test", CX_SAT_REGISTRATION, SCSCF1);
    /* how many allocations a successful run makes (SQLite's included) */
    ims_hss_result_init(&r);
    ims_alloc_fail_at(0, 0);
    OK(f->st, ims_hss_sar(f->st, &f->pol, &q, &r));
    unsigned long total = ims_alloc_count();
    ims_hss_result_clear(&r);
    assert_true(total > 0);
    unsigned long step = total / 150 + 1; /* keep the run short */
    for (unsigned long n = 1; n <= total + 1; n += step) {
        ims_hss_result_init(&r);
        /* not sticky: with every later allocation failing, the store cannot
         * roll back its transaction (reported to the store's owner) */
        ims_alloc_fail_at(n, 0);
        int rc = ims_hss_sar(f->st, &f->pol, &q, &r);
        ims_alloc_fail_at(0, 0);
        if (rc == 0)
            assert_true(DIA_HAS(&r.ans, DIA_ANS_RESULT) || DIA_HAS(&r.ans, DIA_ANS_EXP));
        else
            assert_true(rc == IMS_ENOMEM || rc == IMS_EBACKEND || rc == IMS_ELIMIT);
        ims_hss_result_clear(&r);
    }
    /* and the store still works afterwards */
    ims_hss_result_init(&r);
    OK(f->st, ims_hss_sar(f->st, &f->pol, &q, &r));
    assert_true(DIA_HAS(&r.ans, DIA_ANS_USER_DATA));
    assert_non_null(strstr(r.xml.p, "<IMSSubscription>"));
    ims_hss_result_clear(&r);
}

/* A MAR for an identity whose stored S-CSCF is already Server-Name writes
 * nothing: it succeeds while another connection holds the write lock (a
 * write would wait for the busy timeout and fail). */
static void test_mar_same_scscf_no_write(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    char scscf[IMS_STORE_ID_MAX];
    sqlite3 *h = NULL;
    ims_hss_result_init(&r);
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_string_equal(r.assigned_scscf, SCSCF1);

    assert_int_equal(strncmp(f->url, "sqlite:", 7), 0);
    assert_int_equal(sqlite3_open(f->url + 7, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_string_equal(r.assigned_scscf, SCSCF1);
    assert_int_equal(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);

    /* another name is still stored */
    run_mar(f, mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1, SCSCF2), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_string_equal(r.assigned_scscf, SCSCF2);
    assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_NOT_REGISTERED);
    assert_string_equal(scscf, SCSCF2);
    ims_hss_result_clear(&r);
}

/* A SAR on an executor's connection, as the HSS runs it (identity cache
 * on). */
struct sar_job {
    struct hfix *f;
    struct cx_sar q;
    struct hss_result *r;
};

static int sar_work(struct ims_store *st, void *arg)
{
    struct sar_job *j = arg;
    return ims_hss_sar(st, &j->f->pol, &j->q, j->r);
}

static void exec_sar_of(struct hfix *f, struct ims_store_exec *x, const char *impu, int sat,
                        struct hss_result *r, char **xml)
{
    struct sar_job j = { f, mk_sar("bob@ims.test", impu, sat, SCSCF1), r };
    int wrc = -1;
    ims_hss_result_clear(r);
    ims_hss_result_init(r);
    assert_int_equal(ims_store_exec_run(x, 0, sar_work, &j, &wrc), 0);
    assert_int_equal(wrc, 0);
    ASSERT_RESULT(r, DIA_SUCCESS);
    assert_true(DIA_HAS(&r->ans, DIA_ANS_USER_DATA));
    free(*xml);
    *xml = strndup(r->ans.user_data.p, r->ans.user_data.len);
    assert_non_null(*xml);
}

static void exec_sar(struct hfix *f, struct ims_store_exec *x, int sat, struct hss_result *r,
                     char **xml)
{
    exec_sar_of(f, x, "sip:bob@ims.test", sat, r, xml);
}

/* exec_sar_of, and what it did to the identity cache: hits and puts. */
static struct ims_store_cache_stats exec_sar_counted(struct hfix *f, struct ims_store_exec *x,
                                                     const char *impu, int sat,
                                                     struct hss_result *r, char **xml)
{
    struct ims_store_cache_stats c0, c1;
    ims_store_exec_cache_stats(x, &c0);
    exec_sar_of(f, x, impu, sat, r, xml);
    ims_store_exec_cache_stats(x, &c1);
    return (struct ims_store_cache_stats){ .hits = c1.hits - c0.hits, .puts = c1.puts - c0.puts };
}

/* Profile p1 (bob's) becomes one iFC to as, through the test's own
 * connection (as imscloudctl would). */
static void put_p1(struct hfix *f, const char *as)
{
    char ifc[512];
    snprintf(ifc, sizeof(ifc),
             "<InitialFilterCriteria><Priority>7</Priority><ApplicationServer><ServerName>%s"
             "</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer>"
             "</InitialFilterCriteria>",
             as);
    OK(f->st, ims_store_profile_put(f->st, S("p1"), S(ifc)));
}

/* A re-registration's SAA carries the User-Data the registration's did,
 * built once (the memo, ims_store_memo_get); a change by another connection
 * (imscloudctl) is in the next one. */
static void test_sar_user_data_memo(void **state)
{
    struct hfix *f = *state;
    struct ims_store_exec *x = NULL;
    struct ims_store_cache_stats d;
    struct hss_result r;
    char *first = NULL, *xml = NULL;
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 256, &x), 0);
    ims_hss_result_init(&r);

    exec_sar(f, x, CX_SAT_REGISTRATION, &r, &first);
    assert_non_null(strstr(first, "sip:as.ims.test"));
    d = exec_sar_counted(f, x, "sip:bob@ims.test", CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_string_equal(xml, first);
    /* the association, the IMPU row (read, then keying the registration
     * state's write: SQLite, store_int.h serial_writes) and the User-Data */
    assert_int_equal(d.hits, 4);
    assert_int_equal(d.puts, 0);

    /* the profile changes: the next SAA has the new one */
    put_p1(f, "sip:as2.ims.test");
    exec_sar(f, x, CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_non_null(strstr(xml, "sip:as2.ims.test"));
    assert_null(strstr(xml, "sip:as.ims.test"));
    /* and its charging addresses */
    struct ims_sub_rec sub;
    OK(f->st, ims_store_sub_get(f->st, S("bob"), &sub));
    snprintf(sub.ccf[0], sizeof(sub.ccf[0]), "aaa://ccf.ims.test");
    OK(f->st, ims_store_sub_update(f->st, &sub));
    exec_sar(f, x, CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CHARGING));
    assert_true(ims_str_eq(r.ans.charging.ccf[0], S("aaa://ccf.ims.test")));
    /* from the memo: the same */
    d = exec_sar_counted(f, x, "sip:bob@ims.test", CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_int_equal(d.hits, 4);
    assert_true(DIA_HAS(&r.ans, DIA_ANS_CHARGING));
    assert_true(ims_str_eq(r.ans.charging.ccf[0], S("aaa://ccf.ims.test")));
    assert_false(DIA_HAS(&r.ans.charging, 1));
    assert_non_null(strstr(xml, "sip:as2.ims.test"));

    free(first);
    free(xml);
    ims_hss_result_clear(&r);
    ims_store_exec_free(x);
}

/* A service profile is read once for the subscribers that share it (its
 * memo): bob2's first SAR takes p1 from the memo bob's left, and a change
 * to p1 by another connection is in the next SAR that builds User-Data. */
static void test_sar_profile_memo(void **state)
{
    struct hfix *f = *state;
    struct ims_store_exec *x = NULL;
    struct ims_store_cache_stats d;
    struct hss_result r;
    char *xml = NULL;
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 256, &x), 0);
    ims_hss_result_init(&r);

    exec_sar(f, x, CX_SAT_REGISTRATION, &r, &xml);
    assert_non_null(strstr(xml, "sip:as.ims.test"));
    d = exec_sar_counted(f, x, "sip:bob2@ims.test", CX_SAT_REGISTRATION, &r, &xml);
    assert_non_null(strstr(xml, "sip:bob2@ims.test"));
    assert_non_null(strstr(xml, "sip:as.ims.test"));
    /* the association, bob2's IMPU row and User-Data were new, p1 was
     * not; the User-Data's queries and the registration state's write
     * found the row the SAR had just read */
    assert_int_equal(d.hits, 4);

    put_p1(f, "sip:as3.ims.test");
    exec_sar_of(f, x, "sip:bob2@ims.test", CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_non_null(strstr(xml, "sip:as3.ims.test"));
    assert_null(strstr(xml, "sip:as.ims.test"));
    /* an empty profile is kept and given back as empty */
    OK(f->st, ims_store_profile_put(f->st, S("p1"), S("")));
    exec_sar(f, x, CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_null(strstr(xml, "ims.test</ServerName>"));
    d = exec_sar_counted(f, x, "sip:bob2@ims.test", CX_SAT_RE_REGISTRATION, &r, &xml);
    assert_null(strstr(xml, "ims.test</ServerName>"));
    /* p1, and bob2's IMPU row read again by this SAR (and by its write):
     * its association, row and User-Data were kept under the generation
     * before the change */
    assert_int_equal(d.hits, 4);

    free(xml);
    ims_hss_result_clear(&r);
    ims_store_exec_free(x);
}

/* A Server-Name the store cannot hold (a NUL byte, a space, empty) is the
 * peer's error: DIAMETER_INVALID_AVP_VALUE naming Server-Name, nothing
 * stored (it was a store failure, answered UNABLE_TO_COMPLY: fuzz_hss). */
static void test_bad_server_name(void **state)
{
    struct hfix *f = *state;
    struct hss_result r;
    char scscf[IMS_STORE_ID_MAX];
    static const char nul[] = "sip:scscf\0.ims.test";
    const ims_str bad[] = { ims_str_make(nul, sizeof(nul) - 1), S("sip:scscf .ims.test"),
                            S("") };
    ims_hss_result_init(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cx_sar sq = mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION,
                                  SCSCF1);
        sq.server_name = bad[i];
        run_sar(f, sq, &r);
        ASSERT_RESULT(&r, DIA_INVALID_AVP_VALUE);
        assert_int_equal(r.ans.failed_code, 602);
        assert_int_equal(r.ans.failed_vendor, DIA_VENDOR_3GPP);
        struct cx_mar mq = mk_mar("alice@ims.test", "sip:alice@ims.test", "Digest-MD5", 1,
                                  SCSCF1);
        mq.server_name = bad[i];
        run_mar(f, mq, &r);
        ASSERT_RESULT(&r, DIA_INVALID_AVP_VALUE);
        assert_int_equal(r.ans.failed_code, 602);
        assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_NOT_REGISTERED);
        assert_string_equal(scscf, "");
    }
    /* a good one still registers */
    run_sar(f, mk_sar("alice@ims.test", "sip:alice@ims.test", CX_SAT_REGISTRATION, SCSCF1), &r);
    ASSERT_RESULT(&r, DIA_SUCCESS);
    assert_int_equal(state_of(f, "sip:alice@ims.test", scscf), IMS_REG_REGISTERED);
    ims_hss_result_clear(&r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, hfix_setup, hfix_teardown)
const struct CMUnitTest cx_tests[] = {
    T(test_uar), T(test_mar_digest), T(test_mar_aka_and_resync), T(test_mar_aka_finish),
    T(test_result_clear_wipes_secrets), T(test_sar),
    T(test_lir), cmocka_unit_test(test_slf), T(test_admin_prepare), T(test_sar_alloc_failures),
    T(test_mar_same_scscf_no_write), T(test_sar_user_data_memo), T(test_sar_profile_memo),
    T(test_bad_server_name),
};
const size_t cx_ntests = sizeof(cx_tests) / sizeof(cx_tests[0]);
