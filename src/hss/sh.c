/* sh.c - Sh-Pull (UDR) and Sh-Update (PUR), TS 29.328 §6.1.1-§6.1.2,
 * with Sh-Data documents per TS 29.328 Annex D; and the SLF redirect. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xml.h"
#include "dia/dia.h"
#include "hss/cx.h"
#include "hss/userdata.h"

#define SH_MAX_REPO 8
#define IDS_MAX 64

static void exp_result(struct hss_result *r, uint32_t code)
{
    dia_ans_exp(&r->ans, code);
}

static bool wants(const struct sh_udr *rq, int dref)
{
    for (size_t i = 0; i < rq->n_dref; i++)
        if (rq->dref[i] == dref)
            return true;
    return false;
}

static bool idset_has(const struct sh_udr *rq, int v)
{
    if (rq->n_idset == 0)
        return v == SH_IDSET_ALL; /* TS 29.328 §7.6: absent means ALL_IDENTITIES */
    for (size_t i = 0; i < rq->n_idset; i++)
        if (rq->idset[i] == v)
            return true;
    return false;
}

struct ids_ctx {
    struct ims_buf *b;
    const struct sh_udr *rq;
    const struct ims_impu_rec *self;
    int rc;
};

static int ids_cb(void *ctx, const struct ims_impu_rec *rec)
{
    struct ids_ctx *c = ctx;
    bool take = idset_has(c->rq, SH_IDSET_ALL) ||
                (idset_has(c->rq, SH_IDSET_REGISTERED) && rec->reg_state == IMS_REG_REGISTERED) ||
                (idset_has(c->rq, SH_IDSET_IMPLICIT) && rec->irs == c->self->irs) ||
                (idset_has(c->rq, SH_IDSET_ALIAS) && rec->irs == c->self->irs &&
                 strcmp(rec->profile, c->self->profile) == 0);
    if (!take)
        return 0;
    c->rc = ims_buf_add_cstr(c->b, "<IMSPublicIdentity>");
    if (c->rc == 0)
        c->rc = ims_xml_escape(c->b, ims_str_cstr(rec->identity));
    if (c->rc == 0)
        c->rc = ims_buf_add_cstr(c->b, "</IMSPublicIdentity>");
    return c->rc;
}

/* TS 29.328 Annex D IMSUserState: 0 NOT_REGISTERED, 1 REGISTERED,
 * 2 REGISTERED_UNREG_SERVICES, 3 AUTHENTICATION_PENDING. The S-CSCF name
 * is the subscription's: with no set of it registered, a name means a MAR
 * assigned it and the SAR is still to come (pending); with another set
 * registered, this one is simply not registered. */
static int user_state(struct ims_store *st, const struct ims_impu_rec *rec, int *state)
{
    switch (rec->reg_state) {
    case IMS_REG_REGISTERED: *state = 1; return 0;
    case IMS_REG_UNREGISTERED: *state = 2; return 0;
    default: break;
    }
    bool other = false;
    int rc = rec->scscf_name[0] ? ims_store_sub_in_use(st, ims_str_cstr(rec->identity), &other) : 0;
    *state = rec->scscf_name[0] && !other ? 3 : 0;
    return rc;
}

int ims_hss_udr(struct ims_store *st, const struct sh_udr *rq, struct hss_result *res)
{
    struct ims_impu_rec rec;
    struct ims_buf *b = &res->xml;
    ims_str impu = rq->uid.impu;
    if (!DIA_HAS(&rq->uid, SH_UID_IMPU)) {
        /* MSISDN look-up is not provisioned in the store */
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    int rc = ims_store_impu_get(st, impu, &rec);
    if (rc == IMS_ENOENT || rc == IMS_EINVAL) {
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    if (rc)
        return rc;
    for (size_t i = 0; i < rq->n_dref; i++) {
        int d = rq->dref[i];
        if (d != SH_DREF_REPOSITORY_DATA && d != SH_DREF_IMS_PUBLIC_IDENTITY &&
            d != SH_DREF_IMS_USER_STATE && d != SH_DREF_SCSCF_NAME && d != SH_DREF_IFC) {
            exp_result(res, DIA_ERROR_USER_DATA_CANNOT_BE_READ);
            return 0;
        }
    }
    if (wants(rq, SH_DREF_REPOSITORY_DATA) && rq->n_si == 0) {
        dia_ans_result(&res->ans, DIA_MISSING_AVP);
        res->ans.failed_code = 704; /* Service-Indication */
        res->ans.failed_vendor = DIA_VENDOR_3GPP;
        return 0;
    }
    rc = ims_buf_add_cstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Sh-Data>");
    /* Annex D tShData order: PublicIdentifiers, RepositoryData, Sh-IMS-Data */
    if (rc == 0 && wants(rq, SH_DREF_IMS_PUBLIC_IDENTITY)) {
        struct ids_ctx c = { b, rq, &rec, 0 };
        rc = ims_buf_add_cstr(b, "<PublicIdentifiers>");
        if (rc == 0)
            rc = ims_store_impu_list(st, ims_str_cstr(rec.subscription), ids_cb, &c);
        if (rc == 0)
            rc = c.rc;
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</PublicIdentifiers>");
    }
    for (size_t i = 0; rc == 0 && wants(rq, SH_DREF_REPOSITORY_DATA) && i < rq->n_si; i++) {
        struct ims_buf data;
        unsigned seq = 0;
        ims_buf_init(&data, IMS_STORE_SH_MAX + 1);
        int g = ims_store_sh_get(st, impu, rq->si[i], &data, &seq);
        if (g == 0) {
            rc = ims_buf_add_cstr(b, "<RepositoryData><ServiceIndication>");
            if (rc == 0)
                rc = ims_xml_escape(b, rq->si[i]);
            if (rc == 0)
                rc = ims_buf_printf(b, "</ServiceIndication><SequenceNumber>%u</SequenceNumber>"
                                       "<ServiceData>", seq);
            if (rc == 0) /* stored as the XML the AS sent (checked at PUR) */
                rc = ims_buf_add_str(b, ims_buf_str(&data));
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "</ServiceData></RepositoryData>");
        } else if (g != IMS_ENOENT && g != IMS_EINVAL) {
            rc = g;
        }
        ims_buf_free(&data);
    }
    bool ims_data = wants(rq, SH_DREF_SCSCF_NAME) || wants(rq, SH_DREF_IFC) ||
                    wants(rq, SH_DREF_IMS_USER_STATE);
    if (rc == 0 && ims_data) {
        rc = ims_buf_add_cstr(b, "<Sh-IMS-Data>");
        if (rc == 0 && wants(rq, SH_DREF_SCSCF_NAME) && rec.scscf_name[0]) {
            rc = ims_buf_add_cstr(b, "<S-CSCFName>");
            if (rc == 0)
                rc = ims_xml_escape(b, ims_str_cstr(rec.scscf_name));
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "</S-CSCFName>");
        }
        if (rc == 0 && wants(rq, SH_DREF_IFC)) {
            struct ims_buf frag;
            char name[IMS_STORE_NAME_MAX];
            ims_buf_init(&frag, IMS_STORE_XML_MAX);
            rc = ims_store_profile_of_impu(st, impu, name, &frag);
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "<IFCs>");
            if (rc == 0) {
                rc = ims_ud_ifcs_of(b, ims_buf_str(&frag),
                                    DIA_HAS(rq, SH_UDR_SERVER) ? rq->server_name : IMS_STR_NULL);
                if (rc == IMS_EPROTO) {
                    LOG_E("hss", "event=bad_profile_xml impu=%.*s", IMS_SF(impu));
                    rc = 0;
                }
            }
            if (rc == 0)
                rc = ims_buf_add_cstr(b, "</IFCs>");
            ims_buf_free(&frag);
        }
        int state = 0;
        if (rc == 0 && wants(rq, SH_DREF_IMS_USER_STATE))
            rc = user_state(st, &rec, &state);
        if (rc == 0 && wants(rq, SH_DREF_IMS_USER_STATE))
            rc = ims_buf_printf(b, "<IMSUserState>%d</IMSUserState>", state);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "</Sh-IMS-Data>");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</Sh-Data>");
    if (rc == IMS_ELIMIT) {
        exp_result(res, DIA_ERROR_TOO_MUCH_DATA);
        return 0;
    }
    if (rc)
        return rc;
    res->ans.sh_data = ims_buf_str(b);
    DIA_SET(&res->ans, DIA_ANS_SH_DATA);
    dia_ans_result(&res->ans, DIA_SUCCESS);
    return 0;
}

int ims_hss_pur(struct ims_store *st, const struct sh_pur *rq, struct hss_result *res)
{
    struct ims_impu_rec rec;
    struct ims_sh_repo *repo = NULL;
    size_t n = 0;
    if (!DIA_HAS(&rq->uid, SH_UID_IMPU)) {
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    int rc = ims_store_impu_get(st, rq->uid.impu, &rec);
    if (rc == IMS_ENOENT || rc == IMS_EINVAL) {
        exp_result(res, DIA_ERROR_USER_UNKNOWN);
        return 0;
    }
    if (rc)
        return rc;
    if (rq->dref != SH_DREF_REPOSITORY_DATA) {
        /* only transparent data may be written by an AS */
        exp_result(res, DIA_ERROR_USER_DATA_CANNOT_BE_MODIFIED);
        return 0;
    }
    repo = ims_calloc(SH_MAX_REPO, sizeof(*repo));
    if (!repo)
        return IMS_ENOMEM;
    for (size_t i = 0; i < SH_MAX_REPO; i++)
        ims_buf_init(&repo[i].data, IMS_STORE_SH_MAX);
    rc = ims_sh_parse_repository(rq->user_data, repo, SH_MAX_REPO, &n);
    if (rc == IMS_EPROTO || (rc == 0 && n == 0)) {
        exp_result(res, DIA_ERROR_USER_DATA_NOT_RECOGNIZED);
        rc = 0;
        goto out;
    }
    if (rc == IMS_ELIMIT) {
        exp_result(res, DIA_ERROR_TOO_MUCH_DATA);
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    /* TS 29.328 §6.1.2: each RepositoryData must carry the stored sequence
     * number + 1 (0 for new data); otherwise TRANSPARENT_DATA_OUT_OF_SYNC.
     * Several RepositoryData are applied one by one (each atomic). */
    for (size_t i = 0; i < n; i++) {
        enum ims_sh_result shr;
        ims_str data = repo[i].has_data ? ims_buf_str(&repo[i].data) : IMS_STR_NULL;
        rc = ims_store_sh_put(st, rq->uid.impu, ims_str_cstr(repo[i].si), repo[i].seq, data,
                              &shr);
        if (rc == IMS_EINVAL) { /* empty or oversized data, bad SI */
            exp_result(res, DIA_ERROR_USER_DATA_NOT_RECOGNIZED);
            rc = 0;
            goto out;
        }
        if (rc)
            goto out;
        if (shr == IMS_SH_OUT_OF_SYNC) {
            LOG_N("hss", "event=sh_out_of_sync impu=%.*s si=%s seq=%u", IMS_SF(rq->uid.impu),
                  repo[i].si, repo[i].seq);
            exp_result(res, DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC);
            goto out;
        }
    }
    dia_ans_result(&res->ans, DIA_SUCCESS);
out:
    for (size_t i = 0; i < SH_MAX_REPO; i++)
        ims_buf_free(&repo[i].data);
    ims_free(repo);
    return rc;
}

/* ------------------------------------------------------------ SLF */

void ims_hss_slf(const struct hss_slf_route *routes, size_t n, ims_str impi, ims_str impu,
                 struct hss_result *res)
{
    for (int pass = 0; pass < 2; pass++) {
        ims_str id = pass == 0 ? impi : impu;
        if (id.len == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (!ims_dia_glob(ims_str_cstr(routes[i].pattern), id))
                continue;
            snprintf(res->server_name, sizeof(res->server_name), "aaa://%s", routes[i].hss);
            res->ans.redirect[0] = ims_str_cstr(res->server_name);
            res->ans.n_redirect = 1;
            res->ans.redirect_usage = DIA_REDIRECT_USAGE_ALL_USER;
            DIA_SET(&res->ans, DIA_ANS_REDIRECT);
            DIA_SET(&res->ans, DIA_ANS_REDIRECT_USAGE);
            dia_ans_result(&res->ans, DIA_REDIRECT_INDICATION);
            return;
        }
    }
    exp_result(res, DIA_ERROR_USER_UNKNOWN);
}
