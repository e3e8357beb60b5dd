/* rtr.c - the HSS-initiated Cx procedures at the S-CSCF (TS 29.228 §6.1.3
 * Registration-Termination, §6.1.4 Push-Profile; TS 29.229 §6.1.9-§6.1.12;
 * TS 24.229 §5.4.1.5 network-initiated de-registration).
 *
 * The Cx transport (cx_client.h: ims_cx_transport_serve) calls on_request
 * on freeDiameter's thread (Diameter) or on the HSS's loop (in-process);
 * the answer is its return value.  The work here is the location store's
 * (a shard lock per look-up, no I/O), so it is done right there; what
 * needs SIP - the reg-event NOTIFYs - is posted to a worker loop
 * (cscf_regevent_post).
 *
 * RTR: every listed IMPU's registration (its whole implicit set) goes,
 * when it belongs to the RTR's IMPI; subscribers learn it with
 * event="rejected" (Reason-Code PERMANENT_TERMINATION: the user is not to
 * register again) or "deactivated" (re-register: NEW_SERVER_ASSIGNED,
 * SERVER_CHANGE, REMOVE_S-CSCF).  No SAR follows: the HSS has already
 * de-registered them.
 * PPR: the User-Data replaces the profile (and the barring of the set's
 * identities) of every registration of the IMPI that the document names;
 * when the barring changed, the subscribers get the new state. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cscf/cscf_int.h"
#include "cscf/profile.h"

/* ------------------------------------------------------------ RTR */

static uint32_t on_rtr(struct ims_cscf *g, const struct cx_rtr *q)
{
    if (q->n_impu == 0) {
        /* a de-registration of the whole IMPI: the location store is keyed
         * by IMPU and has no IMPI index (yet) */
        LOG_W("rtr", "event=rtr_unsupported impi=%.*s why=\"no Public-Identity\"",
              IMS_SF(q->impi));
        return DIA_UNABLE_TO_COMPLY;
    }
    struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
    if (!reg)
        return DIA_UNABLE_TO_COMPLY;
    int code = DIA_HAS(&q->reason, 0) ? q->reason.code : CX_REASON_PERMANENT_TERMINATION;
    const char *ev = code == CX_REASON_PERMANENT_TERMINATION ? "rejected" : "deactivated";
    size_t removed = 0;
    for (size_t i = 0; i < q->n_impu && i < CX_MAX_IMPU; i++) {
        if (ims_loc_get(g->loc, q->impu[i], cscf_now_s(), reg) != 0)
            continue; /* not registered (or its set went with an earlier one) */
        if (q->impi.len && !ims_str_eq(q->impi, ims_str_cstr(reg->impi))) {
            LOG_W("rtr", "event=rtr_impi_mismatch impu=%.*s impi=%.*s registered_impi=%s",
                  IMS_SF(q->impu[i]), IMS_SF(q->impi), reg->impi);
        } else if (ims_loc_remove(g->loc, ims_str_cstr(reg->impu)) == 0) {
            removed++;
            LOG_N("scscf", "event=network_deregistered impu=%s impi=%s reason=%d info=\"%.*s\"",
                  reg->impu, reg->impi, code, (int)(q->reason.info.len > 100 ? 100
                                                                             : q->reason.info.len),
                  q->reason.info.p ? q->reason.info.p : "");
            cscf_regevent_post(g, reg->impu, ev);
        }
        ims_reg_clear(reg);
    }
    ims_free(reg);
    LOG_I("rtr", "event=rtr impi=%.*s impus=%zu removed=%zu", IMS_SF(q->impi), q->n_impu, removed);
    /* TS 29.229 §6.1.10: success also when nothing was registered here */
    return DIA_SUCCESS;
}

/* ------------------------------------------------------------ PPR */

struct ppr_ctx {
    ims_str impi;
    struct ims_profile *prof;
    bool barring_changed;
};

/* The barring of id in the new document, or -1 when it does not list it. */
static int barred_in(const struct ims_profile *p, const char *id)
{
    for (size_t s = 0; s < p->nsp; s++)
        for (size_t i = 0; i < p->sps[s].nids; i++)
            if (strcmp(p->sps[s].ids[i].identity, id) == 0)
                return p->sps[s].ids[i].barred ? 1 : 0;
    return -1;
}

static int ppr_fn(struct ims_reg *r, void *ctx)
{
    struct ppr_ctx *x = ctx;
    if (r->ncontacts == 0 || !ims_str_eq(x->impi, ims_str_cstr(r->impi)))
        return IMS_ENOENT; /* nothing of this IMPI registered: nothing is made */
    if (r->profile == x->prof)
        return 1; /* done through an earlier identity of the set */
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(x->prof);
    for (size_t i = 0; i < r->nimpu; i++) {
        int b = barred_in(x->prof, r->impus[i]);
        if (b >= 0 && (b == 1) != r->barred[i]) {
            r->barred[i] = b == 1;
            x->barring_changed = true;
        }
    }
    return 0;
}

static uint32_t on_ppr(struct ims_cscf *g, const struct cx_ppr *q)
{
    if (!DIA_HAS(q, CX_PPR_DATA) || q->user_data.len == 0)
        return DIA_SUCCESS; /* charging information only: nothing we keep */
    struct ims_profile *prof = NULL;
    int rc = ims_profile_parse(q->user_data, &prof);
    if (rc) {
        LOG_W("rtr", "event=ppr_bad_user_data impi=%.*s err=%s", IMS_SF(q->impi),
              ims_strerror(rc));
        return DIA_UNABLE_TO_COMPLY;
    }
    struct ims_reg *scratch = ims_calloc(1, sizeof(*scratch));
    if (!scratch) {
        ims_profile_unref(prof);
        return DIA_UNABLE_TO_COMPLY;
    }
    size_t updated = 0;
    for (size_t s = 0; s < prof->nsp; s++) {
        for (size_t i = 0; i < prof->sps[s].nids; i++) {
            const struct ims_pub_id *id = &prof->sps[s].ids[i];
            if (id->identity_type >= 2)
                continue; /* wildcards are not registrations */
            struct ppr_ctx x = { q->impi, prof, false };
            rc = ims_loc_update(g->loc, ims_str_cstr(id->identity), cscf_now_s(), scratch, ppr_fn,
                                &x);
            if (rc)
                continue; /* not registered, or this set already has it */
            updated++;
            LOG_N("scscf", "event=profile_pushed impu=%s impi=%.*s barring_changed=%d",
                  id->identity, IMS_SF(q->impi), x.barring_changed);
            if (x.barring_changed)
                cscf_regevent_post(g, id->identity, NULL);
        }
    }
    ims_free(scratch);
    ims_profile_unref(prof);
    LOG_I("rtr", "event=ppr impi=%.*s updated=%zu", IMS_SF(q->impi), updated);
    return DIA_SUCCESS;
}

/* ------------------------------------------------------------ wiring */

static uint32_t on_request(void *ctx, unsigned cmd, const void *req)
{
    struct ims_cscf *g = ctx;
    if (!g->loc)
        return DIA_UNABLE_TO_COMPLY;
    switch (cmd) {
    case DIA_CMD_RTR: return on_rtr(g, req);
    case DIA_CMD_PPR: return on_ppr(g, req);
    default: return DIA_UNABLE_TO_COMPLY;
    }
}

void cscf_rtr_attach(struct ims_cscf *g)
{
    if (g->s_on && g->cx)
        ims_cx_transport_serve(g->cx, g->s_uri, on_request, g);
}
