/* cx.c - Cx request handling (TS 29.228 §6.1, §6.3; see cx.h). */
#include "hss/cx.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "dia/dia.h"
#include "hss/auth.h"
#include "hss/ks_creds.h"
#include "hss/userdata.h"

#define IRS_MAX 64 /* public identities per implicit set we put in User-Data */

void ims_hss_result_init(struct hss_result *r)
{
    memset(r, 0, offsetof(struct hss_result, server_name));
    ims_buf_init(&r->xml, IMS_STORE_XML_MAX + 65536);
}

void ims_hss_result_clear(struct hss_result *r)
{
    ims_hss_aka_plan_clear(&r->aka);
    r->aka_pending = false;
    /* only what a vector or an HA1 was written to: wiping all CX_MAX_ITEMS
     * of both arrays cost more than the rest of a Digest MAR's answer */
    size_t n = r->items_used < CX_MAX_ITEMS ? r->items_used : CX_MAX_ITEMS;
    if (n) {
        ims_wipe(r->items, n * sizeof(r->items[0]));
        ims_wipe(r->ans.items, n * sizeof(r->ans.items[0]));
    }
    r->items_used = 0;
    ims_buf_free(&r->xml);
}

/* ------------------------------------------------------------ helpers */

static void result(struct hss_result *r, uint32_t code)
{
    dia_ans_result(&r->ans, code);
}

static void exp_result(struct hss_result *r, uint32_t code)
{
    dia_ans_exp(&r->ans, code);
}

/* Kamailio reads User-Name and Public-Identity of an MAA before its result
 * code: echo them in every answer (also harmless elsewhere). */
static void echo(struct hss_result *r, ims_str impi, ims_str impu)
{
    if (impi.len) {
        r->ans.user_name = impi;
        DIA_SET(&r->ans, DIA_ANS_USER_NAME);
    }
    if (impu.len) {
        r->ans.impu[0] = impu;
        r->ans.n_impu = 1;
        DIA_SET(&r->ans, DIA_ANS_IMPU);
    }
}

static void set_server_name(struct hss_result *r, const char *name)
{
    ims_cstr_copy(name, r->server_name, sizeof(r->server_name));
    r->ans.server_name = ims_str_cstr(r->server_name);
    DIA_SET(&r->ans, DIA_ANS_SERVER);
}

static void missing(struct hss_result *r, uint32_t code, uint32_t vendor)
{
    result(r, DIA_MISSING_AVP);
    r->ans.failed_code = code;
    r->ans.failed_vendor = vendor;
}

/* A Server-Name the store could not hold (a NUL byte, a space, too long):
 * DIAMETER_INVALID_AVP_VALUE with it in Failed-AVP (RFC 6733 7.1.5), not a
 * store failure answered UNABLE_TO_COMPLY and logged as ours (fuzz_hss
 * found it).  True when it answered. */
static bool bad_server_name(bool present, ims_str name, struct hss_result *r)
{
    if (!present || ims_store_valid_id(name))
        return false;
    result(r, DIA_INVALID_AVP_VALUE);
    r->ans.failed_code = 602; /* Server-Name */
    r->ans.failed_vendor = DIA_VENDOR_3GPP;
    return true;
}

/* Maps the identity checks of the store to Experimental-Result codes;
 * returns true when the request may go on. */
static int check_assoc(struct ims_store *st, ims_str impi, ims_str impu, struct hss_result *r,
                       bool *ok)
{
    enum ims_assoc as = IMS_ASSOC_NO_IMPI;
    *ok = false;
    int rc = ims_store_assoc_check(st, impi, impu, &as);
    if (rc == IMS_EINVAL) { /* not an identity the store could hold */
        exp_result(r, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    if (rc)
        return rc;
    switch (as) {
    case IMS_ASSOC_OK: *ok = true; break;
    case IMS_ASSOC_NO_IMPI:
    case IMS_ASSOC_NO_IMPU: exp_result(r, DIA_ERROR_USER_UNKNOWN); break;
    case IMS_ASSOC_MISMATCH: exp_result(r, DIA_ERROR_IDENTITIES_DONT_MATCH); break;
    }
    return 0;
}

/* impu_get with "unknown or invalid" folded into *found = false. */
static int get_impu(struct ims_store *st, ims_str impu, struct ims_impu_rec *rec, bool *found)
{
    int rc = ims_store_impu_get(st, impu, rec);
    *found = rc == 0;
    return rc == IMS_ENOENT || rc == IMS_EINVAL ? 0 : rc;
}

struct caps_ctx {
    const struct ims_sub_rec *sub;
    struct hss_result *r;
};

static int caps_cb(void *ctx, const char *name, const uint32_t *caps, size_t n)
{
    struct caps_ctx *c = ctx;
    struct cx_caps *k = &c->r->ans.caps;
    for (size_t i = 0; i < c->sub->n_mandatory; i++) {
        bool has = false;
        for (size_t j = 0; j < n && !has; j++)
            has = caps[j] == c->sub->caps_mandatory[i];
        if (!has)
            return 0;
    }
    if (k->n_names < CX_MAX_NAMES) {
        ims_cstr_copy(name, c->r->names[k->n_names], IMS_STORE_ID_MAX);
        k->names[k->n_names] = ims_str_cstr(c->r->names[k->n_names]);
        k->n_names++;
        DIA_SET(k, 2);
    }
    return 0;
}

/* TS 29.228 §6.7: Server-Capabilities from the subscription's required
 * capabilities, plus the S-CSCFs we know that offer every mandatory one. */
static int fill_caps(struct ims_store *st, ims_str impu, struct hss_result *r)
{
    struct ims_sub_rec sub;
    int rc = ims_store_sub_of_impu(st, impu, &sub);
    if (rc)
        return rc;
    struct cx_caps *k = &r->ans.caps;
    for (size_t i = 0; i < sub.n_mandatory && i < CX_MAX_CAPS; i++)
        k->mand[k->n_mand++] = sub.caps_mandatory[i];
    for (size_t i = 0; i < sub.n_optional && i < CX_MAX_CAPS; i++)
        k->opt[k->n_opt++] = sub.caps_optional[i];
    if (k->n_mand)
        DIA_SET(k, 0);
    if (k->n_opt)
        DIA_SET(k, 1);
    struct caps_ctx c = { &sub, r };
    rc = ims_store_scscf_list(st, caps_cb, &c);
    if (rc)
        return rc;
    DIA_SET(&r->ans, DIA_ANS_CAPS);
    return 0;
}

/* Visited-Network-Identifier as Kamailio sends it: copied from
 * P-Visited-Network-ID, quotes included. */
static ims_str unquote(ims_str v)
{
    v = ims_str_trim(v);
    if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
        v = ims_str_make(v.p + 1, v.len - 2);
    return v;
}

static bool roaming_allowed(const struct hss_policy *pol, ims_str visited)
{
    visited = unquote(visited);
    if (visited.len == 0 || (pol->realm && ims_str_caseeq_lit(visited, pol->realm)))
        return true;
    return pol->visited_networks && ims_dia_glob_list(pol->visited_networks, visited);
}

/* Is every identity of impu's implicit registration set barred? */
static int irs_all_barred(struct ims_store *st, ims_str impu, bool *all)
{
    size_t n = 0;
    /* not zeroed: the store fills (and clears) rows [0, n) only */
    struct ims_impu_rec *arr = ims_alloc(IRS_MAX * sizeof(*arr));
    if (!arr)
        return IMS_ENOMEM;
    int rc = ims_store_impus_of_irs(st, impu, arr, IRS_MAX, &n);
    if (rc == IMS_ELIMIT) {
        n = IRS_MAX;
        rc = 0;
    }
    *all = true;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!arr[i].barred)
            *all = false;
    ims_free(arr);
    return rc;
}

/* ------------------------------------------------------------ UAR */

int ims_hss_uar(struct ims_store *st, const struct hss_policy *pol, const struct cx_uar *rq,
                struct hss_result *res)
{
    struct ims_impu_rec rec;
    bool ok, found, inuse;
    int type = DIA_HAS(rq, CX_UAR_TYPE) ? rq->auth_type : CX_UAT_REGISTRATION;
    echo(res, rq->impi, rq->impu);
    int rc = check_assoc(st, rq->impi, rq->impu, res, &ok);
    if (rc || !ok)
        return rc;
    rc = get_impu(st, rq->impu, &rec, &found);
    if (rc)
        return rc;
    if (!found) { /* deleted between the two queries */
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    if (type != CX_UAT_DE_REGISTRATION) {
        if (rec.barred) {
            bool all;
            rc = irs_all_barred(st, rq->impu, &all);
            if (rc)
                return rc;
            if (all) {
                result(res, DIA_AUTHORIZATION_REJECTED);
                return 0;
            }
        }
        if (!roaming_allowed(pol, rq->visited)) {
            ims_str v = unquote(rq->visited);
            LOG_N("hss", "event=roaming_refused impu=%.*s visited=%.*s", IMS_SF(rq->impu),
                  IMS_SF(v));
            exp_result(res, DIA_ERROR_ROAMING_NOT_ALLOWED);
            return 0;
        }
    }
    switch (type) {
    case CX_UAT_DE_REGISTRATION:
        if (rec.scscf_name[0]) {
            set_server_name(res, rec.scscf_name);
            result(res, DIA_SUCCESS);
        } else {
            exp_result(res, DIA_ERROR_IDENTITY_NOT_REGISTERED);
        }
        return 0;
    case CX_UAT_REG_AND_CAPABILITIES:
        rc = fill_caps(st, rq->impu, res);
        if (rc == 0)
            result(res, DIA_SUCCESS);
        return rc;
    default:
        break;
    }
    /* REGISTRATION */
    if (rec.scscf_name[0]) {
        /* kept by an S-CSCF: rec itself, or another IMPU of its subscription */
        inuse = rec.reg_state != IMS_REG_NOT_REGISTERED;
        rc = inuse ? 0 : ims_store_sub_in_use(st, ims_str_cstr(rec.identity), &inuse);
        if (rc)
            return rc;
        set_server_name(res, rec.scscf_name);
        /* assigned to an S-CSCF that keeps a profile: subsequent; only a
         * stored name (registration in progress, or *_STORE_SERVER_NAME): first */
        exp_result(res, inuse ? DIA_SUBSEQUENT_REGISTRATION : DIA_FIRST_REGISTRATION);
        return 0;
    }
    if (pol->default_scscf && pol->default_scscf[0]) {
        set_server_name(res, pol->default_scscf);
    } else {
        rc = fill_caps(st, rq->impu, res);
        if (rc)
            return rc;
    }
    exp_result(res, DIA_FIRST_REGISTRATION);
    return 0;
}

/* ------------------------------------------------------------ MAR */

enum scheme_kind { SK_AKA1, SK_AKA2, SK_DIGEST, SK_UNKNOWN, SK_BAD };

/* SIP-Authentication-Scheme (TS 29.229 §6.3.9 and the names S-CSCFs use). */
static enum scheme_kind parse_scheme(ims_str s, enum ims_digest_alg *alg, bool *alg_given)
{
    bool sess;
    *alg_given = false;
    s = ims_str_trim(s);
    if (s.len == 0 || ims_str_caseeq_lit(s, "Unknown"))
        return SK_UNKNOWN;
    if (ims_str_caseeq_lit(s, "Digest-AKAv1-MD5"))
        return SK_AKA1;
    if (ims_str_caseeq_lit(s, "Digest-AKAv2-MD5"))
        return SK_AKA2;
    if (ims_str_caseeq_lit(s, "SIP Digest") || ims_str_caseeq_lit(s, "Digest"))
        return SK_DIGEST;
    if (ims_str_has_caseprefix(s, "Digest-"))
        s = ims_str_make(s.p + 7, s.len - 7);
    if (ims_digest_alg_parse(s, alg, &sess) == 0 && !sess) {
        *alg_given = true;
        return SK_DIGEST;
    }
    return SK_BAD;
}

static const unsigned digest_scheme_bit[IMS_DIGEST_NALG] = {
    IMS_AUTH_DIGEST_MD5, IMS_AUTH_DIGEST_SHA256, IMS_AUTH_DIGEST_SHA512_256
};

/* The IMPI's default: AKAv1 if provisioned, else Digest with the first
 * algorithm it has an HA1 for. */
static int default_scheme(struct ims_store *st, ims_str impi, enum scheme_kind *k,
                          enum ims_digest_alg *alg)
{
    struct ims_impi_rec rec;
    int rc = ims_store_impi_get(st, impi, &rec);
    if (rc)
        return rc;
    *k = SK_BAD;
    if (rec.has_aka && (rec.schemes & IMS_AUTH_AKAV1_MD5)) {
        *k = SK_AKA1;
    } else if (rec.has_aka && (rec.schemes & IMS_AUTH_AKAV2_MD5)) {
        *k = SK_AKA2;
    } else {
        for (int a = 0; a < IMS_DIGEST_NALG && *k == SK_BAD; a++)
            if (rec.has_ha1[a] && (rec.schemes & digest_scheme_bit[a])) {
                *k = SK_DIGEST;
                *alg = (enum ims_digest_alg)a;
            }
    }
    return 0;
}

static int digest_default_alg(struct ims_store *st, ims_str impi, enum ims_digest_alg *alg)
{
    struct ims_impi_rec rec;
    int rc = ims_store_impi_get(st, impi, &rec);
    if (rc)
        return rc;
    *alg = IMS_DIGEST_MD5;
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        if (rec.has_ha1[a] && (rec.schemes & digest_scheme_bit[a])) {
            *alg = (enum ims_digest_alg)a;
            break;
        }
    return 0;
}

static void map_auth_result(struct hss_result *r, enum ims_hss_auth_result ar)
{
    switch (ar) {
    case IMS_HSS_AUTH_OK: result(r, DIA_SUCCESS); break;
    case IMS_HSS_AUTH_USER_UNKNOWN: exp_result(r, DIA_ERROR_USER_UNKNOWN); break;
    case IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED: exp_result(r, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
        break;
    case IMS_HSS_AUTH_REJECTED: result(r, DIA_AUTHORIZATION_REJECTED); break;
    }
}

/* TS 29.228 §6.3.1: for a public identity not registered (or unregistered),
 * the HSS stores the S-CSCF name (the registration in progress); a
 * registered identity keeps its S-CSCF until the SAR.  When the stored
 * name is already Server-Name (a repeated MAR, a re-registration after
 * expiry) nothing is written: that would take the write lock for a
 * transaction that changes nothing. */
static int store_mar_scscf(struct ims_store *st, const struct cx_mar *rq, struct hss_result *res)
{
    struct ims_impu_rec rec;
    bool found;
    int rc = get_impu(st, rq->impu, &rec, &found);
    if (rc || !found)
        return rc;
    if (rec.reg_state == IMS_REG_REGISTERED && rec.scscf_name[0]) {
        if (!ims_str_eq(ims_str_cstr(rec.scscf_name), rq->server_name))
            LOG_N("hss", "event=mar_other_scscf impu=%.*s stored=%s asked=%.*s",
                  IMS_SF(rq->impu), rec.scscf_name, IMS_SF(rq->server_name));
        return 0;
    }
    if (ims_str_eq(ims_str_cstr(rec.scscf_name), rq->server_name)) {
        ims_str_copy(rq->server_name, res->assigned_scscf, sizeof(res->assigned_scscf));
        return 0;
    }
    /* not flushed before the answer: a power cut may lose it, and the SAR
     * that completes the registration stores it again (an SQN is flushed) */
    rc = ims_store_scscf_name_set_lazy(st, rq->impu, rq->server_name);
    if (rc == 0)
        ims_str_copy(rq->server_name, res->assigned_scscf, sizeof(res->assigned_scscf));
    return rc == IMS_ENOENT ? 0 : rc;
}

static int mar_aka(struct ims_store *st, const struct cx_mar *rq, unsigned scheme,
                   struct hss_result *res)
{
    enum ims_hss_auth_result ar;
    size_t n = rq->n_items == 0 ? 1 : rq->n_items > CX_MAX_ITEMS ? CX_MAX_ITEMS : rq->n_items;
    const struct cx_auth_item *it = &rq->item;
    /* TS 33.203 §6.1.2 / TS 29.228 §6.3.1: SIP-Authorization = RAND || AUTS
     * asks for re-synchronisation before new vectors. */
    if (DIA_HAS(it, CX_ITEM_AUTHORIZATION)) {
        if (it->authorization.len != IMS_AKA_RAND_LEN + IMS_AKA_AUTS_LEN) {
            result(res, DIA_INVALID_AVP_VALUE);
            return 0;
        }
        const uint8_t *p = (const uint8_t *)it->authorization.p;
        int rc = ims_hss_aka_resync(st, rq->impi, p, p + IMS_AKA_RAND_LEN, &ar);
        if (rc)
            return rc;
        if (ar != IMS_HSS_AUTH_OK) {
            map_auth_result(res, ar);
            return 0;
        }
    }
    int rc = ims_hss_aka_reserve(st, rq->impi, scheme, n, &res->aka, &ar);
    if (rc)
        return rc;
    if (ar != IMS_HSS_AUTH_OK) {
        map_auth_result(res, ar);
        return 0;
    }
    res->aka_pending = true;
    res->aka_scheme = scheme == IMS_AUTH_AKAV2_MD5 ? "Digest-AKAv2-MD5" : "Digest-AKAv1-MD5";
    return 0;
}

int ims_hss_result_finish(struct hss_result *res)
{
    struct ims_aka_vector v[CX_MAX_ITEMS];
    size_t count = 0;
    if (!res->aka_pending)
        return 0;
    res->aka_pending = false;
    int rc = ims_hss_aka_make(&res->aka, v, &count);
    ims_hss_aka_plan_clear(&res->aka);
    if (rc) {
        LOG_E("hss", "event=aka_vectors_failed err=%s", ims_strerror(rc));
        result(res, DIA_UNABLE_TO_COMPLY);
        return rc;
    }
    if (count > res->items_used)
        res->items_used = count;
    for (size_t i = 0; i < count; i++) {
        struct hss_item_store *s = &res->items[i];
        struct cx_auth_item *a = &res->ans.items[i];
        memcpy(s->authenticate, v[i].rand, IMS_AKA_RAND_LEN);
        memcpy(s->authenticate + IMS_AKA_RAND_LEN, v[i].autn, IMS_AKA_AUTN_LEN);
        memcpy(s->xres, v[i].xres, IMS_AKA_XRES_LEN);
        memcpy(s->ck, v[i].ck, sizeof(s->ck));
        memcpy(s->ik, v[i].ik, sizeof(s->ik));
        a->item_number = (uint32_t)i + 1;
        a->scheme = ims_str_cstr(res->aka_scheme);
        a->authenticate = ims_str_make((const char *)s->authenticate, sizeof(s->authenticate));
        a->authorization = ims_str_make((const char *)s->xres, IMS_AKA_XRES_LEN);
        a->ck = ims_str_make((const char *)s->ck, sizeof(s->ck));
        a->ik = ims_str_make((const char *)s->ik, sizeof(s->ik));
        a->present = 1u << CX_ITEM_NUMBER | 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_AUTHENTICATE |
                     1u << CX_ITEM_AUTHORIZATION | 1u << CX_ITEM_CK | 1u << CX_ITEM_IK;
        ims_aka_vector_clear(&v[i]);
    }
    res->ans.n_item = count;
    res->ans.n_items = (uint32_t)count;
    DIA_SET(&res->ans, DIA_ANS_ITEMS);
    DIA_SET(&res->ans, DIA_ANS_NITEMS);
    result(res, DIA_SUCCESS);
    return 0;
}

/* ks_creds: the HA1 for alg from Keystone's credential (ks_creds.h). */
static void ks_digest_ha1(const struct hss_ks_secret *ks, enum ims_digest_alg alg,
                          struct hss_item_store *s, enum ims_hss_auth_result *ar)
{
    *ar = IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED;
    if (!ks->has_ha1[alg])
        return;
    ims_cstr_copy(ks->ha1[alg], s->ha1, sizeof(s->ha1));
    ims_cstr_copy(ks->realm, s->realm, sizeof(s->realm));
    *ar = IMS_HSS_AUTH_OK;
}

static int mar_digest(struct ims_store *st, const struct cx_mar *rq, enum ims_digest_alg alg,
                      const struct hss_ks_secret *ks, struct hss_result *res)
{
    enum ims_hss_auth_result ar;
    struct hss_item_store *s = &res->items[0];
    int rc = 0;
    if (res->items_used < 1)
        res->items_used = 1;
    if (ks)
        ks_digest_ha1(ks, alg, s, &ar);
    else
        rc = ims_hss_digest_ha1(st, rq->impi, alg, s->ha1, s->realm, &ar);
    if (rc)
        return rc;
    if (ar != IMS_HSS_AUTH_OK) {
        map_auth_result(res, ar);
        return 0;
    }
    struct cx_auth_item *a = &res->ans.items[0];
    a->item_number = 1;
    /* Kamailio's S-CSCF makes its own nonce only for "SIP Digest" */
    a->scheme = IMS_S("SIP Digest");
    a->digest.realm = ims_str_cstr(s->realm);
    a->digest.algorithm = ims_str_cstr(ims_digest_alg_name(alg));
    a->digest.qop = IMS_S("auth");
    a->digest.ha1 = ims_str_cstr(s->ha1);
    a->digest.present = 0xf;
    a->present = 1u << CX_ITEM_NUMBER | 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_DIGEST;
    res->ans.n_item = 1;
    res->ans.n_items = 1;
    DIA_SET(&res->ans, DIA_ANS_ITEMS);
    DIA_SET(&res->ans, DIA_ANS_NITEMS);
    result(res, DIA_SUCCESS);
    return 0;
}

/* ks_creds: a Keystone-backed IMPI's default scheme is Digest with the
 * first algorithm its credential has an HA1 for. */
static void ks_default(const struct hss_ks_secret *ks, enum scheme_kind *k,
                       enum ims_digest_alg *alg, bool alg_given)
{
    if (*k == SK_UNKNOWN)
        *k = SK_DIGEST;
    for (int a = IMS_DIGEST_NALG - 1; a >= 0 && !alg_given; a--)
        if (ks->has_ha1[a])
            *alg = (enum ims_digest_alg)a;
}

int ims_hss_mar(struct ims_store *st, const struct hss_policy *pol, const struct cx_mar *rq,
                struct hss_result *res)
{
    return ims_hss_mar_ext(st, pol, rq, NULL, res);
}

int ims_hss_mar_ext(struct ims_store *st, const struct hss_policy *pol, const struct cx_mar *rq,
                    const struct hss_ks_secret *ks, struct hss_result *res)
{
    bool ok, alg_given;
    enum ims_digest_alg alg = IMS_DIGEST_MD5;
    echo(res, rq->impi, rq->impu);
    if (bad_server_name(DIA_HAS(rq, CX_MAR_SERVER), rq->server_name, res))
        return 0;
    int rc = check_assoc(st, rq->impi, rq->impu, res, &ok);
    if (rc || !ok)
        return rc;
    if (ks && ks->state != HSS_KS_FOUND) { /* the credential went away at Keystone */
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    enum scheme_kind k = parse_scheme(DIA_HAS(&rq->item, CX_ITEM_SCHEME) ? rq->item.scheme
                                                                          : IMS_STR_NULL,
                                      &alg, &alg_given);
    if (ks && (k == SK_AKA1 || k == SK_AKA2))
        k = SK_BAD; /* ims-aka credentials: not done (docs/keystone.md) */
    else if (ks && (k == SK_UNKNOWN || k == SK_DIGEST))
        ks_default(ks, &k, &alg, alg_given);
    if (k == SK_UNKNOWN) {
        rc = default_scheme(st, rq->impi, &k, &alg);
        if (rc)
            return rc == IMS_ENOENT ? (exp_result(res, DIA_ERROR_USER_UNKNOWN), 0) : rc;
    } else if (k == SK_DIGEST && !alg_given && !ks) {
        rc = digest_default_alg(st, rq->impi, &alg);
        if (rc)
            return rc == IMS_ENOENT ? (exp_result(res, DIA_ERROR_USER_UNKNOWN), 0) : rc;
    }
    if (k == SK_BAD) {
        exp_result(res, DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED);
        return 0;
    }
    rc = store_mar_scscf(st, rq, res);
    if (rc)
        return rc;
    if (k == SK_DIGEST)
        return mar_digest(st, rq, alg, ks, res);
    return mar_aka(st, rq, k == SK_AKA2 ? IMS_AUTH_AKAV2_MD5 : IMS_AUTH_AKAV1_MD5, res);
}

/* ------------------------------------------------------------ User-Data */

/* Charging-Information from the four addresses (ECF 1, 2, CCF 1, 2; ""
 * for none), copied into r. */
static void set_charging(struct hss_result *r, const ims_str f[4])
{
    ims_str *slot[4] = { &r->ans.charging.ecf[0], &r->ans.charging.ecf[1],
                         &r->ans.charging.ccf[0], &r->ans.charging.ccf[1] };
    for (int i = 0; i < 4; i++) {
        if (!f[i].len)
            continue;
        ims_str_copy(f[i], r->charging[i], IMS_STORE_ID_MAX);
        *slot[i] = ims_str_cstr(r->charging[i]);
        DIA_SET(&r->ans.charging, i);
    }
    if (r->ans.charging.present)
        DIA_SET(&r->ans, DIA_ANS_CHARGING);
}

/* Associated-Identities: the r->assoc[0..n) IMPIs, when there is more than
 * one. */
static void set_assoc(struct hss_result *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        r->ans.assoc.impi[i] = ims_str_cstr(r->assoc[i]);
    if (n > 1) {
        r->ans.assoc.n_impi = n;
        DIA_SET(&r->ans.assoc, 0);
        DIA_SET(&r->ans, DIA_ANS_ASSOC);
    }
}

/* Charging addresses and the IMPIs of the subscription sub (the one
 * ims_hss_user_data read); *n_assoc gets how many IMPIs are in r->assoc. */
static int add_sub_info(struct ims_store *st, const struct ims_sub_rec *sub, struct hss_result *r,
                        size_t *n_assoc)
{
    const ims_str f[4] = { ims_str_cstr(sub->ecf[0]), ims_str_cstr(sub->ecf[1]),
                           ims_str_cstr(sub->ccf[0]), ims_str_cstr(sub->ccf[1]) };
    set_charging(r, f);
    size_t n = 0;
    int rc = ims_store_impis_of_sub(st, ims_str_cstr(sub->name), r->assoc, CX_MAX_ASSOC, &n);
    if (rc == IMS_ELIMIT) { /* more than CX_MAX_ASSOC: the first ones */
        n = CX_MAX_ASSOC;
        rc = 0;
    }
    if (rc)
        return rc;
    set_assoc(r, n);
    *n_assoc = n;
    return 0;
}

#define MEMO_PROFILE 'P'

/* Appends service profile name's XML, from its memo when one is kept:
 * many subscribers share a profile, and every first SAR of one read the
 * same row again.  A profile's change moves the cache generation
 * (migration 007), which retires the memo.  0, IMS_ENOENT. */
static int profile_xml(struct ims_store *st, ims_str name, struct ims_buf *xml)
{
    struct ims_store_memo m;
    if (ims_store_memo_get(st, MEMO_PROFILE, name, IMS_STR_NULL, xml, &m))
        return 0;
    size_t at = xml->len;
    int rc = ims_store_profile_get(st, name, xml);
    if (rc == 0) /* an empty profile too: its memo is as good */
        ims_store_memo_put(st, &m, MEMO_PROFILE, name, IMS_STR_NULL,
                           xml->len > at ? xml->p + at : "", xml->len - at);
    return rc;
}

/* ims_hss_user_data, which also leaves the subscription in *sub. */
static int user_data(struct ims_store *st, ims_str impi, ims_str impu, struct ims_buf *xml,
                     struct ims_sub_rec *sub)
{
    size_t n = 0, nprof = 0;
    char impi_buf[1][IMS_STORE_ID_MAX];
    /* None zeroed (42 KiB, 1 % of a registration's CPU, and the other
     * three another 0.8 %): the store fills and clears rows [0, n) only,
     * the loop below sets uds[0, used), and profs[] and frags[] entry by
     * entry as it takes them, [0, nprof); nothing reads past those. */
    struct ims_impu_rec *arr = ims_alloc(IRS_MAX * sizeof(*arr));
    struct ims_ud_impu *uds = ims_alloc(IRS_MAX * sizeof(*uds));
    struct ims_ud_profile *profs = ims_alloc(IRS_MAX * sizeof(*profs));
    struct ims_buf *frags = ims_alloc(IRS_MAX * sizeof(*frags));
    int rc = IMS_ENOMEM;
    if (!arr || !uds || !profs || !frags)
        goto out;
    rc = ims_store_impus_of_irs(st, impu, arr, IRS_MAX, &n);
    if (rc == IMS_ELIMIT) {
        n = IRS_MAX;
        rc = 0;
    }
    /* the subscription's local roles go in every ServiceProfile */
    if (rc == 0)
        rc = ims_store_sub_of_impu_nocaps(st, impu, sub);
    if (rc)
        goto out;
    if (impi.len == 0) {
        size_t ni = 0;
        rc = ims_store_impis_of_impu(st, impu, impi_buf, 1, &ni);
        if (rc == IMS_ELIMIT)
            rc = 0;
        if (rc)
            goto out;
        impi = ni ? ims_str_cstr(impi_buf[0]) : IMS_STR_NULL;
    }
    /* One ServiceProfile per distinct profile, its identities together;
     * the identities come ordered, so uds[] slices per profile are built by
     * a pass per profile (n is small). */
    size_t used = 0;
    bool *done = ims_calloc(n ? n : 1, sizeof(bool));
    if (!done) {
        rc = IMS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (done[i])
            continue;
        struct ims_ud_profile *p = &profs[nprof];
        *p = (struct ims_ud_profile){ .impus = &uds[used] };
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp(arr[j].profile, arr[i].profile) != 0)
                continue;
            done[j] = true;
            uds[used].identity = ims_str_cstr(arr[j].identity);
            uds[used].barred = arr[j].barred;
            uds[used].identity_type = (int)arr[j].type;
            used++;
            p->n++;
        }
        ims_buf_init(&frags[nprof], IMS_STORE_XML_MAX);
        if (arr[i].profile[0]) {
            rc = profile_xml(st, ims_str_cstr(arr[i].profile), &frags[nprof]);
            if (rc == IMS_ENOENT)
                rc = 0;
        }
        p->xml = ims_buf_str(&frags[nprof]);
        p->roles = ims_str_cstr(sub->roles);
        nprof++;
    }
    ims_free(done);
    if (rc == 0)
        rc = ims_ud_subscription(xml, impi, profs, nprof);
    for (size_t i = 0; i < nprof; i++)
        ims_buf_free(&frags[i]);
out:
    ims_free(arr);
    ims_free(uds);
    ims_free(profs);
    ims_free(frags);
    return rc;
}

int ims_hss_user_data(struct ims_store *st, ims_str impi, ims_str impu, struct ims_buf *xml)
{
    struct ims_sub_rec *sub = ims_calloc(1, sizeof(*sub));
    int rc = sub ? user_data(st, impi, impu, xml, sub) : IMS_ENOMEM;
    ims_free(sub);
    return rc;
}

/* The memo of a SAA's User-Data (ims_store_memo_get): the XML, the four
 * charging addresses, then the associated IMPIs, each field a 4-byte length
 * and its bytes.  Built from provisioned data only, so a re-registration
 * finds it unless an operator changed something since (migration 007). */
#define MEMO_USER_DATA 'U'

static int pack_field(struct ims_buf *b, ims_str v)
{
    uint32_t n = (uint32_t)v.len;
    int rc = ims_buf_add(b, &n, sizeof(n));
    return rc ? rc : ims_buf_add(b, v.p, v.len);
}

static bool unpack_field(ims_str *rest, ims_str *out)
{
    uint32_t n;
    if (rest->len < sizeof(n))
        return false;
    memcpy(&n, rest->p, sizeof(n));
    if (rest->len - sizeof(n) < n)
        return false;
    *out = ims_str_make(rest->p + sizeof(n), n);
    *rest = ims_str_make(rest->p + sizeof(n) + n, rest->len - sizeof(n) - n);
    return true;
}

static int pack_user_data(const struct hss_result *r, size_t n_assoc, struct ims_buf *b)
{
    int rc = pack_field(b, ims_buf_str(&r->xml));
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = pack_field(b, DIA_HAS(&r->ans.charging, i) ? ims_str_cstr(r->charging[i])
                                                         : IMS_STR_NULL);
    for (size_t i = 0; i < n_assoc && rc == 0; i++)
        rc = pack_field(b, ims_str_cstr(r->assoc[i]));
    return rc;
}

/* false when v is not what pack_user_data wrote: then nothing of the
 * answer is set (only r->assoc may hold some of v's IMPIs). */
static bool unpack_user_data(ims_str v, struct hss_result *r)
{
    ims_str xml, f[4], id;
    size_t n = 0;
    bool ok = unpack_field(&v, &xml);
    for (int i = 0; i < 4 && ok; i++)
        ok = unpack_field(&v, &f[i]) && f[i].len < IMS_STORE_ID_MAX;
    while (ok && v.len) {
        ok = n < CX_MAX_ASSOC && unpack_field(&v, &id) && id.len < IMS_STORE_ID_MAX;
        if (ok)
            ims_str_copy(id, r->assoc[n++], IMS_STORE_ID_MAX);
    }
    if (!ok || ims_buf_add(&r->xml, xml.p, xml.len) != 0)
        return false;
    set_charging(r, f);
    set_assoc(r, n);
    return true;
}

static int add_user_data(struct ims_store *st, ims_str impi, ims_str impu, struct hss_result *r)
{
    struct ims_store_memo m;
    struct ims_buf memo;
    ims_buf_init(&memo, IMS_STORE_MEMO_MAX);
    if (ims_store_memo_get(st, MEMO_USER_DATA, impi, impu, &memo, &m) &&
        unpack_user_data(ims_buf_str(&memo), r)) {
        ims_buf_free(&memo);
        r->ans.user_data = ims_buf_str(&r->xml);
        DIA_SET(&r->ans, DIA_ANS_USER_DATA);
        return 0;
    }
    ims_buf_reset(&memo);
    struct ims_sub_rec sub;
    size_t n_assoc = 0;
    int rc = user_data(st, impi, impu, &r->xml, &sub);
    if (rc == IMS_ELIMIT) {
        ims_buf_free(&memo);
        exp_result(r, DIA_ERROR_TOO_MUCH_DATA);
        return 1; /* answered */
    }
    if (rc == 0)
        rc = add_sub_info(st, &sub, r, &n_assoc);
    if (rc == 0) {
        r->ans.user_data = ims_buf_str(&r->xml);
        DIA_SET(&r->ans, DIA_ANS_USER_DATA);
        if (pack_user_data(r, n_assoc, &memo) == 0) /* too long for a memo: not kept */
            ims_store_memo_put(st, &m, MEMO_USER_DATA, impi, impu, memo.p, memo.len);
    }
    ims_buf_free(&memo);
    return rc;
}

/* ------------------------------------------------------------ SAR */

static int sar_dereg(struct ims_store *st, const struct cx_sar *rq, const ims_str *targets,
                     size_t nt, const struct ims_impu_rec *primary, bool keep_name)
{
    for (size_t i = 0; i < nt; i++) {
        int rc = ims_store_reg_set(st, targets[i], IMS_REG_NOT_REGISTERED, IMS_SCSCF_KEEP,
                                   IMS_STR_NULL, NULL);
        if (rc && rc != IMS_ENOENT)
            return rc;
    }
    if (keep_name)
        return 0;
    /* Clear the S-CSCF only when nothing of the subscription is kept by it
     * any more, and only if it is the one asking. */
    bool inuse;
    int rc = ims_store_sub_in_use(st, ims_str_cstr(primary->identity), &inuse);
    if (rc || inuse)
        return rc;
    if (primary->scscf_name[0] &&
        !ims_str_eq(ims_str_cstr(primary->scscf_name), rq->server_name))
        return 0;
    rc = ims_store_reg_set(st, ims_str_cstr(primary->identity), IMS_REG_NOT_REGISTERED,
                           IMS_SCSCF_CLEAR, IMS_STR_NULL, NULL);
    return rc == IMS_ENOENT ? 0 : rc;
}

int ims_hss_sar(struct ims_store *st, const struct hss_policy *pol, const struct cx_sar *rq,
                struct hss_result *res)
{
    struct ims_impu_rec primary;
    ims_str targets[CX_MAX_IMPU];
    size_t nt = 0;
    bool found, ok;
    int rc;
    ims_str impi = DIA_HAS(rq, CX_SAR_IMPI) ? rq->impi : IMS_STR_NULL;
    echo(res, impi, rq->n_impu ? rq->impu[0] : IMS_STR_NULL);
    if (bad_server_name(DIA_HAS(rq, CX_SAR_SERVER), rq->server_name, res))
        return 0;
    int sat = rq->sat;
    bool needs_impi = sat == CX_SAT_REGISTRATION || sat == CX_SAT_RE_REGISTRATION ||
                      sat == CX_SAT_AUTHENTICATION_FAILURE ||
                      sat == CX_SAT_AUTHENTICATION_TIMEOUT;
    if (needs_impi && impi.len == 0) {
        missing(res, 1, 0); /* User-Name */
        return 0;
    }
    if (rq->n_impu == 0 && impi.len == 0) {
        missing(res, 601, DIA_VENDOR_3GPP); /* Public-Identity */
        return 0;
    }
    /* the identities: as listed, or every one of the IMPI */
    for (size_t i = 0; i < rq->n_impu; i++) {
        rc = get_impu(st, rq->impu[i], &primary, &found);
        if (rc)
            return rc;
        if (!found) {
            exp_result(res, DIA_ERROR_USER_UNKNOWN);
            return 0;
        }
        if (impi.len) {
            rc = check_assoc(st, impi, rq->impu[i], res, &ok);
            if (rc || !ok)
                return rc;
        }
        targets[nt++] = rq->impu[i];
    }
    if (nt == 0) {
        struct ims_impu_rec *arr = ims_calloc(CX_MAX_IMPU, sizeof(*arr));
        size_t n = 0;
        if (!arr)
            return IMS_ENOMEM;
        rc = ims_store_impus_of_impi(st, impi, arr, CX_MAX_IMPU, &n);
        if (rc == IMS_ELIMIT) {
            n = CX_MAX_IMPU;
            rc = 0;
        }
        if (rc == IMS_ENOENT || rc == IMS_EINVAL || (rc == 0 && n == 0)) {
            ims_free(arr);
            exp_result(res, DIA_ERROR_USER_UNKNOWN);
            return 0;
        }
        /* slices into arr would dangle: keep the identities in res->names */
        for (size_t i = 0; rc == 0 && i < n && i < CX_MAX_NAMES; i++) {
            ims_cstr_copy(arr[i].identity, res->names[i], IMS_STORE_ID_MAX);
            targets[nt++] = ims_str_cstr(res->names[i]);
        }
        ims_free(arr);
        if (rc)
            return rc;
    }
    if (rq->n_impu != 1) { /* else the loop above just read targets[0] into primary */
        rc = get_impu(st, targets[0], &primary, &found);
        if (rc)
            return rc;
        if (!found) {
            exp_result(res, DIA_ERROR_USER_UNKNOWN);
            return 0;
        }
    }
    bool same = primary.scscf_name[0] &&
                ims_str_eq(ims_str_cstr(primary.scscf_name), rq->server_name);
    bool want_data = !(DIA_HAS(rq, CX_SAR_UDA) && rq->uda == 1);
    switch (sat) {
    case CX_SAT_NO_ASSIGNMENT:
        /* a profile download by the S-CSCF that serves the user */
        if (!same) {
            result(res, DIA_UNABLE_TO_COMPLY);
            return 0;
        }
        rc = add_user_data(st, impi, targets[0], res);
        break;
    case CX_SAT_REGISTRATION:
    case CX_SAT_RE_REGISTRATION:
        for (size_t i = 0; i < nt; i++) {
            /* targets[0] is primary: its subscription has this S-CSCF stored
             * already (by the MAR, or an earlier registration), so only its
             * state is written */
            enum ims_scscf_op op = i == 0 && same ? IMS_SCSCF_KEEP : IMS_SCSCF_SET;
            rc = ims_store_reg_set(st, targets[i], IMS_REG_REGISTERED, op, rq->server_name,
                                   NULL);
            if (rc)
                return rc == IMS_ENOENT ? (exp_result(res, DIA_ERROR_USER_UNKNOWN), 0) : rc;
        }
        ims_str_copy(rq->server_name, res->assigned_scscf, sizeof(res->assigned_scscf));
        if (want_data)
            rc = add_user_data(st, impi, targets[0], res);
        break;
    case CX_SAT_UNREGISTERED_USER:
        if (primary.scscf_name[0] && !same && primary.reg_state != IMS_REG_NOT_REGISTERED) {
            exp_result(res, DIA_ERROR_IDENTITY_ALREADY_REGISTERED);
            return 0;
        }
        rc = ims_store_reg_set(st, targets[0],
                               primary.reg_state == IMS_REG_REGISTERED ? IMS_REG_REGISTERED
                                                                       : IMS_REG_UNREGISTERED,
                               IMS_SCSCF_SET, rq->server_name, NULL);
        if (rc)
            return rc;
        ims_str_copy(rq->server_name, res->assigned_scscf, sizeof(res->assigned_scscf));
        rc = add_user_data(st, impi, targets[0], res);
        break;
    case CX_SAT_TIMEOUT_DEREGISTRATION:
    case CX_SAT_USER_DEREGISTRATION:
    case CX_SAT_ADMINISTRATIVE_DEREGISTRATION:
    case CX_SAT_DEREGISTRATION_TOO_MUCH_DATA:
        rc = sar_dereg(st, rq, targets, nt, &primary, false);
        break;
    case CX_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME:
    case CX_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME:
        /* TS 29.228 §6.1.2.1: the HSS keeps the S-CSCF name (else 2004) */
        rc = sar_dereg(st, rq, targets, nt, &primary, true);
        break;
    case CX_SAT_AUTHENTICATION_FAILURE:
    case CX_SAT_AUTHENTICATION_TIMEOUT:
        /* the registration in progress failed: forget the S-CSCF stored at
         * MAR time; a registered identity stays as it is */
        if (primary.reg_state == IMS_REG_NOT_REGISTERED)
            rc = sar_dereg(st, rq, targets, 0, &primary, false);
        break;
    default:
        result(res, DIA_INVALID_AVP_VALUE);
        return 0;
    }
    if (rc == 1) /* add_user_data answered (too much data) */
        return 0;
    if (rc)
        return rc;
    result(res, DIA_SUCCESS);
    return 0;
}

/* ------------------------------------------------------------ LIR */

int ims_hss_lir(struct ims_store *st, const struct hss_policy *pol, const struct cx_lir *rq,
                struct hss_result *res)
{
    struct ims_impu_rec rec;
    bool found;
    echo(res, IMS_STR_NULL, rq->impu);
    int rc = get_impu(st, rq->impu, &rec, &found);
    if (rc)
        return rc;
    if (!found) {
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    switch (rec.reg_state) {
    case IMS_REG_REGISTERED:
        if (rec.scscf_name[0]) {
            set_server_name(res, rec.scscf_name);
            result(res, DIA_SUCCESS);
            return 0;
        }
        break;
    case IMS_REG_UNREGISTERED:
        if (rec.scscf_name[0]) {
            set_server_name(res, rec.scscf_name);
            exp_result(res, DIA_UNREGISTERED_SERVICE);
            return 0;
        }
        break;
    default:
        break;
    }
    /* not registered: services for unregistered users exist when the
     * identity has a service profile (or the request is originating) */
    if (!rec.profile[0] && !DIA_HAS(rq, CX_LIR_ORIG)) {
        exp_result(res, DIA_ERROR_IDENTITY_NOT_REGISTERED);
        return 0;
    }
    if (rec.scscf_name[0]) {
        set_server_name(res, rec.scscf_name);
    } else if (pol->default_scscf && pol->default_scscf[0]) {
        set_server_name(res, pol->default_scscf);
    } else {
        rc = fill_caps(st, rq->impu, res);
        if (rc)
            return rc;
    }
    exp_result(res, DIA_UNREGISTERED_SERVICE);
    return 0;
}
