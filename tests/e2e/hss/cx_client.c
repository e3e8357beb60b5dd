/* cx_client - a Cx/Sh test client on freeDiameter (its own process, own
 * fd.conf and identity, as Kamailio's cdp would be) for the e2e/hss tests.
 *
 *   cx_client -i ID -r REALM -H HSS_ID -a HSS_ADDR -p PORT -d RUN_DIR
 *             [-T CERT,KEY,CA[+CA...],DH] [-w SECONDS] SCENARIO
 *
 * Scenarios (exit 0 = pass, 1 = fail, each check printed):
 *   cx            UAR, MAR (Digest and AKA), SAR, LIR, resync with AUTS, unknown
 *                 user, IMPI/IMPU mismatch, roaming, missing AVP, de-registration
 *   sh            UDR (IMSUserState, S-CSCFName, IFCs, IMSPublicIdentity), PUR with
 *                 sequence numbers (TRANSPARENT_DATA_OUT_OF_SYNC)
 *   ping          one UAR answered with a Cx result
 *   hold          ping, then wait to be killed (peer restart test)
 *   unknown-peer  the HSS must refuse us: the peer never opens
 *   slf           UAR answered DIAMETER_REDIRECT_INDICATION + Redirect-Host
 *   scscf         act as the S-CSCF: SAR REGISTRATION for alice, print
 *                 "registered", then answer the HSS's PPR and RTR (2001) and exit 0
 *                 once both arrived (hss_admin drives the HSS side) */
#define _GNU_SOURCE /* memmem */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "dia/dia.h"
#include "e2e_hss.h"
#include "ev/loop.h"

#define S(x) ims_str_cstr(x)

/* A deep copy of an answer (the callback's is freed after it returns). */
struct copy {
    int rc;
    uint32_t result, exp;
    bool has_result, has_exp;
    char server[256];
    size_t n_names;
    size_t n_item;
    struct {
        char scheme[64];
        uint8_t authenticate[64];
        size_t authenticate_len;
        uint8_t authorization[64];
        size_t authorization_len;
        uint8_t ck[32], ik[32];
        size_t ck_len, ik_len;
        char ha1[130], realm[256], alg[32], qop[32];
    } item[CX_MAX_ITEMS];
    char user_name[256];
    char redirect[256];
    int redirect_usage;
    struct ims_buf data; /* User-Data or Sh-Data */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool answered;
static struct copy got;
static const char *hss_realm = E2E_REALM;
static int failures;

static void cp(char *dst, size_t cap, ims_str s)
{
    ims_str_copy(s, dst, cap);
}

static size_t bytes(uint8_t *dst, size_t cap, ims_str s)
{
    if (s.len == 0 || s.len > cap)
        return 0;
    memcpy(dst, s.p, s.len);
    return s.len;
}

static void on_answer(struct ims_loop *loop, int rc, const struct dia_ans *a, void *arg)
{
    pthread_mutex_lock(&mu);
    got.rc = rc;
    if (rc == 0 && a) {
        got.has_result = DIA_HAS(a, DIA_ANS_RESULT);
        got.result = a->result_code;
        got.has_exp = DIA_HAS(a, DIA_ANS_EXP);
        got.exp = a->exp.code;
        if (DIA_HAS(a, DIA_ANS_SERVER))
            cp(got.server, sizeof(got.server), a->server_name);
        if (DIA_HAS(a, DIA_ANS_USER_NAME))
            cp(got.user_name, sizeof(got.user_name), a->user_name);
        got.n_names = DIA_HAS(a, DIA_ANS_CAPS) ? a->caps.n_names : 0;
        got.n_item = a->n_item;
        for (size_t i = 0; i < a->n_item && i < CX_MAX_ITEMS; i++) {
            const struct cx_auth_item *it = &a->items[i];
            cp(got.item[i].scheme, sizeof(got.item[i].scheme), it->scheme);
            got.item[i].authenticate_len = bytes(got.item[i].authenticate, 64, it->authenticate);
            got.item[i].authorization_len = bytes(got.item[i].authorization, 64,
                                                  it->authorization);
            got.item[i].ck_len = bytes(got.item[i].ck, 32, it->ck);
            got.item[i].ik_len = bytes(got.item[i].ik, 32, it->ik);
            cp(got.item[i].ha1, sizeof(got.item[i].ha1), it->digest.ha1);
            cp(got.item[i].realm, sizeof(got.item[i].realm), it->digest.realm);
            cp(got.item[i].alg, sizeof(got.item[i].alg), it->digest.algorithm);
            cp(got.item[i].qop, sizeof(got.item[i].qop), it->digest.qop);
        }
        if (DIA_HAS(a, DIA_ANS_USER_DATA))
            ims_buf_add_str(&got.data, a->user_data);
        if (DIA_HAS(a, DIA_ANS_SH_DATA))
            ims_buf_add_str(&got.data, a->sh_data);
        if (a->n_redirect)
            cp(got.redirect, sizeof(got.redirect), a->redirect[0]);
        got.redirect_usage = a->redirect_usage;
    }
    answered = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* Sends and waits for the answer (or 15 s). */
static int call(unsigned cmd, const void *req)
{
    pthread_mutex_lock(&mu);
    ims_buf_free(&got.data);
    memset(&got, 0, sizeof(got));
    ims_buf_init(&got.data, 1 << 20);
    answered = false;
    pthread_mutex_unlock(&mu);
    int rc = ims_dia_send(cmd, req, on_answer, NULL);
    if (rc)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 15;
    pthread_mutex_lock(&mu);
    while (!answered && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &ts) ? IMS_ETIMEDOUT : 0;
    pthread_mutex_unlock(&mu);
    return rc ? rc : got.rc;
}

static void check(bool ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) {
        failures++;
        printf("     got rc=%d result=%u%s exp=%u%s server=%s\n", got.rc, got.result,
               got.has_result ? "" : "(none)", got.exp, got.has_exp ? "" : "(none)", got.server);
    }
    fflush(stdout);
}

static bool is_result(uint32_t code)
{
    return got.rc == 0 && got.has_result && got.result == code;
}

static bool is_exp(uint32_t code)
{
    return got.rc == 0 && got.has_exp && got.exp == code;
}

#define HEAD_SET(r) ((r).dest_realm = S(hss_realm), (r).present |= 1u << DIA_REQ_DEST_REALM)

static int uar(const char *impi, const char *impu, const char *visited, int type)
{
    struct cx_uar r;
    memset(&r, 0, sizeof(r));
    HEAD_SET(r);
    r.impi = S(impi);
    r.impu = S(impu);
    r.visited = S(visited);
    r.present |= 1u << CX_UAR_IMPI | 1u << CX_UAR_IMPU | 1u << CX_UAR_VISITED;
    if (type >= 0) {
        r.auth_type = type;
        r.present |= 1u << CX_UAR_TYPE;
    }
    return call(DIA_CMD_UAR, &r);
}

static int mar(const char *impi, const char *impu, const char *scheme, unsigned n,
               const uint8_t *authz, size_t authz_len)
{
    struct cx_mar r;
    memset(&r, 0, sizeof(r));
    HEAD_SET(r);
    r.impi = S(impi);
    r.impu = S(impu);
    r.server_name = S(E2E_SCSCF);
    r.n_items = n;
    r.item.scheme = S(scheme);
    r.item.present = 1u << CX_ITEM_SCHEME;
    if (authz) {
        r.item.authorization = ims_str_make((const char *)authz, authz_len);
        r.item.present |= 1u << CX_ITEM_AUTHORIZATION;
    }
    r.present |= 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                 1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
    return call(DIA_CMD_MAR, &r);
}

static int sar(const char *impi, const char *impu, int sat, int uda)
{
    struct cx_sar r;
    memset(&r, 0, sizeof(r));
    HEAD_SET(r);
    if (impi) {
        r.impi = S(impi);
        r.present |= 1u << CX_SAR_IMPI;
    }
    if (impu) {
        r.impu[0] = S(impu);
        r.n_impu = 1;
        r.present |= 1u << CX_SAR_IMPU;
    }
    r.server_name = S(E2E_SCSCF);
    r.sat = sat;
    r.uda = uda;
    r.present |= 1u << CX_SAR_SERVER | 1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    return call(DIA_CMD_SAR, &r);
}

static int lir(const char *impu)
{
    struct cx_lir r;
    memset(&r, 0, sizeof(r));
    HEAD_SET(r);
    r.impu = S(impu);
    r.present |= 1u << CX_LIR_IMPU;
    return call(DIA_CMD_LIR, &r);
}

static bool has_text(const char *needle)
{
    return got.data.p && strstr(got.data.p, needle) != NULL;
}

static void scenario_cx(void)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1];

    /* Kamailio's I-CSCF: no User-Authorization-Type, quoted visited network */
    uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "\"ims.test\"", -1);
    check(is_exp(DIA_FIRST_REGISTRATION) && got.n_names >= 1,
          "UAR first registration: FIRST_REGISTRATION with Server-Capabilities");

    mar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "Digest-MD5", 1, NULL, 0);
    ims_digest_ha1(IMS_DIGEST_MD5, S(E2E_ALICE_IMPI), S(E2E_REALM), S(E2E_ALICE_PW), ha1);
    check(is_result(DIA_SUCCESS) && got.n_item == 1 &&
              strcmp(got.item[0].scheme, "SIP Digest") == 0 &&
              strcmp(got.item[0].ha1, ha1) == 0 && strcmp(got.item[0].realm, E2E_REALM) == 0 &&
              strcmp(got.item[0].alg, "MD5") == 0 && strcmp(got.item[0].qop, "auth") == 0 &&
              strcmp(got.user_name, E2E_ALICE_IMPI) == 0,
          "MAR Digest-MD5: SIP Digest, HA1 = MD5(impi:realm:password), realm, qop auth");

    mar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "Digest-SHA-256", 1, NULL, 0);
    ims_digest_ha1(IMS_DIGEST_SHA256, S(E2E_ALICE_IMPI), S(E2E_REALM), S(E2E_ALICE_PW), ha1);
    check(is_result(DIA_SUCCESS) && strcmp(got.item[0].ha1, ha1) == 0 &&
              strcmp(got.item[0].alg, "SHA-256") == 0,
          "MAR Digest-SHA-256: SHA-256 HA1");

    uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "ims.test", 0);
    check(is_exp(DIA_FIRST_REGISTRATION) && strcmp(got.server, E2E_SCSCF) == 0,
          "UAR after MAR: the S-CSCF stored by MAR (registration in progress)");

    sar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, CX_SAT_REGISTRATION, 0);
    check(is_result(DIA_SUCCESS) && has_text("<IMSSubscription>") &&
              has_text("<PrivateID>alice@ims.test</PrivateID>") &&
              has_text("<Identity>sip:alice@ims.test</Identity>") &&
              has_text("<Identity>tel:+15550001</Identity>"),
          "SAR REGISTRATION: User-Data with the implicit set");

    sar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, CX_SAT_RE_REGISTRATION, 1);
    check(is_result(DIA_SUCCESS) && got.data.len == 0,
          "SAR RE_REGISTRATION with User-Data-Already-Available: no User-Data");

    uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "ims.test", -1);
    check(is_exp(DIA_SUBSEQUENT_REGISTRATION) && strcmp(got.server, E2E_SCSCF) == 0,
          "UAR when registered: SUBSEQUENT_REGISTRATION + Server-Name");

    lir(E2E_ALICE_TEL);
    check(is_result(DIA_SUCCESS) && strcmp(got.server, E2E_SCSCF) == 0,
          "LIR of a registered identity (implicit set): Server-Name");

    /* AKA: two vectors, each checked by a USIM model */
    uint8_t rand0[16];
    uint64_t sqn0 = 0;
    mar(E2E_BOB_IMPI, E2E_BOB_IMPU, "Digest-AKAv1-MD5", 2, NULL, 0);
    bool aka_ok = is_result(DIA_SUCCESS) && got.n_item == 2;
    for (size_t i = 0; aka_ok && i < 2; i++) {
        uint8_t res[8], ck[16], ik[16], amf[2];
        uint64_t sqn;
        aka_ok = got.item[i].authenticate_len == 32 && got.item[i].authorization_len == 8 &&
                 strcmp(got.item[i].scheme, "Digest-AKAv1-MD5") == 0 &&
                 ims_aka_ue_check(e2e_k, e2e_opc, got.item[i].authenticate,
                                  got.item[i].authenticate + 16, &sqn, amf, res, ck, ik) == 0 &&
                 memcmp(res, got.item[i].authorization, 8) == 0 &&
                 got.item[i].ck_len == 16 && memcmp(ck, got.item[i].ck, 16) == 0 &&
                 got.item[i].ik_len == 16 && memcmp(ik, got.item[i].ik, 16) == 0;
        if (i == 0) {
            memcpy(rand0, got.item[0].authenticate, 16);
            sqn0 = sqn;
        }
    }
    check(aka_ok, "MAR Digest-AKAv1-MD5 x2: AUTN verifies, XRES/CK/IK match the USIM");

    /* re-synchronisation: the USIM is far ahead */
    uint64_t sqn_ms = sqn0 + (UINT64_C(1000) << IMS_AKA_IND_BITS);
    uint8_t authz[30];
    memcpy(authz, rand0, 16);
    ims_aka_auts_make(e2e_k, e2e_opc, rand0, sqn_ms, authz + 16);
    mar(E2E_BOB_IMPI, E2E_BOB_IMPU, "Digest-AKAv1-MD5", 1, authz, sizeof(authz));
    bool resync_ok = is_result(DIA_SUCCESS) && got.n_item == 1;
    if (resync_ok) {
        uint64_t sqn;
        uint8_t amf[2];
        resync_ok = ims_aka_ue_check(e2e_k, e2e_opc, got.item[0].authenticate,
                                     got.item[0].authenticate + 16, &sqn, amf, NULL, NULL,
                                     NULL) == 0 &&
                    ims_aka_sqn_seq(sqn) > ims_aka_sqn_seq(sqn_ms);
    }
    check(resync_ok, "MAR with RAND||AUTS: resynchronised, new SQN beyond the USIM's");

    authz[29] ^= 0x01; /* MAC-S no longer verifies */
    mar(E2E_BOB_IMPI, E2E_BOB_IMPU, "Digest-AKAv1-MD5", 1, authz, sizeof(authz));
    check(is_result(DIA_AUTHORIZATION_REJECTED), "MAR with a forged AUTS: AUTHORIZATION_REJECTED");

    mar(E2E_BOB_IMPI, E2E_BOB_IMPU, "Unknown", 1, NULL, 0);
    check(is_result(DIA_SUCCESS) && strcmp(got.item[0].scheme, "Digest-AKAv1-MD5") == 0,
          "MAR scheme Unknown: the IMPI's default (AKAv1)");

    mar(E2E_BOB_IMPI, E2E_BOB_IMPU, "NTLM", 1, NULL, 0);
    check(is_exp(DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED), "MAR unknown scheme: 5006");

    uar("nobody@ims.test", "sip:nobody@ims.test", "ims.test", -1);
    check(is_exp(DIA_ERROR_USER_UNKNOWN), "UAR unknown user: 5001");
    mar("nobody@ims.test", "sip:nobody@ims.test", "Digest-MD5", 1, NULL, 0);
    check(is_exp(DIA_ERROR_USER_UNKNOWN) && strcmp(got.user_name, "nobody@ims.test") == 0,
          "MAR unknown user: 5001, User-Name echoed");
    lir("sip:nobody@ims.test");
    check(is_exp(DIA_ERROR_USER_UNKNOWN), "LIR unknown user: 5001");

    uar(E2E_ALICE_IMPI, E2E_CAROL_IMPU, "ims.test", -1);
    check(is_exp(DIA_ERROR_IDENTITIES_DONT_MATCH), "UAR IMPI/IMPU mismatch: 5002");
    mar(E2E_ALICE_IMPI, E2E_CAROL_IMPU, "Digest-MD5", 1, NULL, 0);
    check(is_exp(DIA_ERROR_IDENTITIES_DONT_MATCH), "MAR IMPI/IMPU mismatch: 5002");

    uar(E2E_CAROL_IMPI, E2E_CAROL_IMPU, "\"elsewhere.example\"", -1);
    check(is_exp(DIA_ERROR_ROAMING_NOT_ALLOWED), "UAR from a visited network not allowed: 5004");

    /* a UAR without its mandatory Public-Identity: answered, no crash */
    struct cx_uar bad;
    memset(&bad, 0, sizeof(bad));
    HEAD_SET(bad);
    bad.impi = S(E2E_ALICE_IMPI);
    bad.visited = S("ims.test");
    bad.present |= 1u << CX_UAR_IMPI | 1u << CX_UAR_VISITED;
    call(DIA_CMD_UAR, &bad);
    check(is_result(DIA_MISSING_AVP), "UAR missing Public-Identity: DIAMETER_MISSING_AVP");
    struct cx_sar bad2;
    memset(&bad2, 0, sizeof(bad2));
    HEAD_SET(bad2);
    bad2.impi = S(E2E_ALICE_IMPI);
    bad2.impu[0] = S(E2E_ALICE_IMPU);
    bad2.n_impu = 1;
    bad2.server_name = S(E2E_SCSCF);
    bad2.sat = 99;
    bad2.uda = 0;
    bad2.present |= 1u << CX_SAR_IMPI | 1u << CX_SAR_IMPU | 1u << CX_SAR_SERVER |
                    1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    call(DIA_CMD_SAR, &bad2);
    check(is_result(DIA_INVALID_AVP_VALUE), "SAR with Server-Assignment-Type 99: INVALID_AVP_VALUE");
    uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "ims.test", -1);
    check(is_exp(DIA_SUBSEQUENT_REGISTRATION), "the HSS still answers after malformed requests");

    sar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, CX_SAT_USER_DEREGISTRATION, 0);
    check(is_result(DIA_SUCCESS), "SAR USER_DEREGISTRATION");
    lir(E2E_ALICE_IMPU);
    check(is_exp(DIA_ERROR_IDENTITY_NOT_REGISTERED),
          "LIR after de-registration (no unregistered services): 5003");
    uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "ims.test", CX_UAT_DE_REGISTRATION);
    check(is_exp(DIA_ERROR_IDENTITY_NOT_REGISTERED), "UAR DE_REGISTRATION when not registered: 5003");

    /* bob has a profile: services for unregistered users */
    lir(E2E_BOB_IMPU);
    check(is_exp(DIA_UNREGISTERED_SERVICE), "LIR of an unregistered identity with services: 2003");
    sar(NULL, E2E_BOB_IMPU, CX_SAT_UNREGISTERED_USER, 0);
    check(is_result(DIA_SUCCESS) && has_text("<ServerName>sip:as.ims.test:5070</ServerName>"),
          "SAR UNREGISTERED_USER: User-Data with the iFC");
    sar(NULL, E2E_BOB_IMPU, CX_SAT_TIMEOUT_DEREGISTRATION, 0);
    check(is_result(DIA_SUCCESS), "SAR TIMEOUT_DEREGISTRATION");
}

static void scenario_sh(void)
{
    struct sh_udr u;
    memset(&u, 0, sizeof(u));
    HEAD_SET(u);
    u.uid.impu = S(E2E_BOB_IMPU);
    u.uid.present = 1;
    u.dref[0] = SH_DREF_IMS_USER_STATE;
    u.dref[1] = SH_DREF_IFC;
    u.dref[2] = SH_DREF_IMS_PUBLIC_IDENTITY;
    u.n_dref = 3;
    u.present |= 1u << SH_UDR_UID | 1u << SH_UDR_DREF;
    call(DIA_CMD_UDR, &u);
    check(is_result(DIA_SUCCESS) && has_text("<IMSUserState>") && has_text("<IFCs>") &&
              has_text("<IMSPublicIdentity>sip:bob@ims.test</IMSPublicIdentity>"),
          "UDR IMSUserState + IFCs + IMSPublicIdentity");

#define SH_DOC                                                                                     \
    "<?xml version=\"1.0\"?><Sh-Data><RepositoryData>"                                            \
    "<ServiceIndication>svc1</ServiceIndication><SequenceNumber>%u"                               \
    "</SequenceNumber><ServiceData><x>%s</x></ServiceData>"                                       \
    "</RepositoryData></Sh-Data>"
    char buf[512];
    struct sh_pur p;
    memset(&p, 0, sizeof(p));
    HEAD_SET(p);
    p.uid.impu = S(E2E_BOB_IMPU);
    p.uid.present = 1;
    p.dref = SH_DREF_REPOSITORY_DATA;
    p.present |= 1u << SH_PUR_UID | 1u << SH_PUR_DREF | 1u << SH_PUR_DATA;
    snprintf(buf, sizeof(buf), SH_DOC, 0u, "one");
    p.user_data = S(buf);
    call(DIA_CMD_PUR, &p);
    check(is_result(DIA_SUCCESS), "PUR new repository data (sequence 0)");
    call(DIA_CMD_PUR, &p);
    check(is_exp(DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC), "PUR sequence 0 again: 5105");
    snprintf(buf, sizeof(buf), SH_DOC, 1u, "two");
    p.user_data = S(buf);
    call(DIA_CMD_PUR, &p);
    check(is_result(DIA_SUCCESS), "PUR sequence 1");

    u.dref[0] = SH_DREF_REPOSITORY_DATA;
    u.n_dref = 1;
    u.si[0] = S("svc1");
    u.n_si = 1;
    u.present |= 1u << SH_UDR_SI;
    call(DIA_CMD_UDR, &u);
    check(is_result(DIA_SUCCESS) && has_text("<SequenceNumber>1</SequenceNumber>") &&
              has_text("<x>two</x>"),
          "UDR RepositoryData: stored data and sequence number");
}

/* ---- scscf: serving the HSS's RTR/PPR on a loop ---- */
static unsigned got_rtr, got_ppr;

static void on_hss_request(struct ims_dia_req *req, void *arg)
{
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    if (req->cmd == DIA_CMD_RTR) {
        const struct cx_rtr *r = &req->u.rtr;
        printf("RTR impi=%.*s impus=%zu reason=%d info=%.*s\n", IMS_SF(r->impi), r->n_impu,
               r->reason.code, IMS_SF(r->reason.info));
        if (ims_str_eq(r->impi, S(E2E_ALICE_IMPI)) && r->n_impu == 2 &&
            r->reason.code == CX_REASON_PERMANENT_TERMINATION)
            got_rtr++;
    } else if (req->cmd == DIA_CMD_PPR) {
        const struct cx_ppr *p = &req->u.ppr;
        bool ok = DIA_HAS(p, CX_PPR_DATA) && p->user_data.len > 0 &&
                  memmem(p->user_data.p, p->user_data.len, "<IMSSubscription>", 17);
        printf("PPR impi=%.*s user_data=%zu bytes ok=%d\n", IMS_SF(p->impi), p->user_data.len, ok);
        if (ok)
            got_ppr++;
    }
    fflush(stdout);
    dia_ans_result(&a, DIA_SUCCESS);
    ims_dia_answer(req, &a);
}

static void *loop_thread(void *arg)
{
    ims_loop_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *id = NULL, *realm = E2E_REALM, *hss = NULL, *addr = "127.0.0.1", *run = NULL;
    char *tls = NULL;
    unsigned port = 3868, wait_s = 15;
    int o;
    while ((o = getopt(argc, argv, "i:r:H:a:p:d:T:w:v")) != -1) {
        switch (o) {
        case 'i': id = optarg; break;
        case 'r': realm = optarg; break;
        case 'H': hss = optarg; break;
        case 'a': addr = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': run = optarg; break;
        case 'T': tls = optarg; break;
        case 'w': wait_s = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'v': ims_log_set_level(IMS_LOG_DEBUG); break;
        default: return 2;
        }
    }
    if (!id || !hss || !run || optind + 1 != argc) {
        fprintf(stderr, "usage: cx_client -i ID -H HSS_ID -p PORT -d RUN_DIR [-a ADDR] "
                        "[-T CERT,KEY,CA,DH] SCENARIO\n");
        return 2;
    }
    const char *scenario = argv[optind];
    signal(SIGPIPE, SIG_IGN); /* freeDiameter writes to peers that hung up */
    hss_realm = realm;
    char *cert = NULL, *key = NULL, *ca = NULL, *dh = NULL;
    if (tls) {
        cert = strtok(tls, ",");
        key = strtok(NULL, ",");
        ca = strtok(NULL, ",");
        dh = strtok(NULL, ",");
        for (char *p = ca; p && *p; p++) /* -T ...,CA1+CA2,...: several CA files */
            if (*p == '+')
                *p = ',';
    }
    struct ims_dia_peer peer = { hss, addr, port, tls != NULL };
    struct ims_dia_cfg cfg = {
        .identity = id, .realm = realm, .port = 0, .tls_port = 0,
        .tls_cert = cert, .tls_key = key, .tls_ca = ca, .tls_dh = dh,
        .run_dir = run, .peers = &peer, .npeers = 1, .max_pending = 16,
        .request_timeout_ms = 10000, .apps = IMS_DIA_APP_CX | IMS_DIA_APP_SH,
        .tc_timer = 1, .log_level = ims_log_level,
    };
    char err[256];
    struct ims_loop *loop = NULL;
    pthread_t lt;
    bool scscf = strcmp(scenario, "scscf") == 0;
    if (scscf) {
        if (ims_loop_new(64, &loop) || pthread_create(&lt, NULL, loop_thread, loop))
            return 1;
        cfg.scscf_side = true;
    }
    if (ims_dia_start(&cfg, loop, scscf ? on_hss_request : NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "cx_client: %s\n", err);
        return 1;
    }
    bool open = false;
    for (unsigned i = 0; i < wait_s * 10 && !open; i++) {
        open = ims_dia_peer_open(hss);
        if (!open)
            usleep(100000);
    }
    if (strcmp(scenario, "unknown-peer") == 0) {
        check(!open, "an unknown peer is refused at CER (the connection never opens)");
    } else if (!open) {
        check(false, "the connection to the HSS opens");
    } else if (strcmp(scenario, "cx") == 0) {
        scenario_cx();
    } else if (strcmp(scenario, "sh") == 0) {
        scenario_sh();
    } else if (strcmp(scenario, "ping") == 0 || strcmp(scenario, "hold") == 0) {
        uar(E2E_CAROL_IMPI, E2E_CAROL_IMPU, "ims.test", -1);
        check(is_exp(DIA_FIRST_REGISTRATION), "UAR answered");
        if (strcmp(scenario, "hold") == 0) {
            printf("holding\n");
            fflush(stdout);
            for (;;)
                pause();
        }
    } else if (strcmp(scenario, "slf") == 0) {
        uar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, "ims.test", -1);
        check(is_result(DIA_REDIRECT_INDICATION) && strcmp(got.redirect, "aaa://hss-a.ims.test") == 0 &&
                  got.redirect_usage == DIA_REDIRECT_USAGE_ALL_USER,
              "SLF: UAR redirected to the HSS of the identity range");
        uar("x@other.test", "sip:x@other.test", "ims.test", -1);
        check(is_exp(DIA_ERROR_USER_UNKNOWN), "SLF: identity in no range: 5001");
    } else if (scscf) {
        sar(E2E_ALICE_IMPI, E2E_ALICE_IMPU, CX_SAT_REGISTRATION, 0);
        check(is_result(DIA_SUCCESS), "SAR REGISTRATION as the S-CSCF");
        printf("registered\n");
        fflush(stdout);
        for (unsigned i = 0; i < wait_s * 20 && !(got_rtr && got_ppr); i++)
            usleep(50000);
        check(got_ppr == 1, "PPR from the HSS with User-Data");
        check(got_rtr == 1, "RTR from the HSS: alice's set, PERMANENT_TERMINATION");
    } else {
        fprintf(stderr, "cx_client: unknown scenario %s\n", scenario);
        failures++;
    }
    ims_dia_drain(2000);
    ims_dia_stop();
    if (loop) {
        ims_loop_stop(loop);
        pthread_join(lt, NULL);
        ims_loop_free(loop);
    }
    ims_dia_release();
    ims_buf_free(&got.data);
    printf("%s: %d failure(s)\n", scenario, failures);
    return failures ? 1 : 0;
}
