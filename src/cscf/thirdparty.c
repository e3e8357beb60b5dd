/* thirdparty.c - the S-CSCF tells application servers about registrations:
 * third-party REGISTER (TS 24.229 §5.4.1.7, TS 29.228 Annex B.2.2).
 *
 * After a registration, re-registration or de-registration (by the UE, by
 * expiry, or by us after an AS failure) the served user's iFCs are evaluated
 * for REGISTER with the RegistrationType of the event, session case
 * ORIGINATING, and each matching AS gets a REGISTER of our own:
 *   Request-URI  the AS's ServerName
 *   From         the S-CSCF URI, with a tag
 *   To           the registered public identity
 *   Contact      the S-CSCF URI
 *   Expires      the registration's lifetime (its longest-living contact),
 *                0 for a de-registration
 *   P-Charging-Vector  copied from the UE's REGISTER when it had one
 *   body         ServiceInfo as application/3gpp-ims+xml, the UE's REGISTER
 *                (IncludeRegisterRequest) and our 200 (IncludeRegisterResponse)
 *                as message/sip; multipart/mixed when there are several.
 * The 200 in the body is rebuilt from the REGISTER and the headers we added;
 * its To tag is the proxy core's and is not known here, so it has none.
 *
 * No answer, 408 or 5xx from an AS whose iFC says SESSION_TERMINATED
 * de-registers the user (network-initiated, TS 24.229 §5.4.1.5): the
 * registration leaves the location store, the HSS gets SAR
 * ADMINISTRATIVE_DEREGISTRATION (TS 29.228 §6.1.2), reg-event subscribers
 * a NOTIFY (contacts "deactivated") and the ASes a de-registration.
 * Failures of a de-registration change nothing.
 *
 * De-registration needs the iFCs of a registration that is already gone
 * (the location store drops the profile with it, and a de-registration SAA
 * carries no User-Data), so a registration whose profile has iFCs leaves a
 * reference to that profile here, keyed like the location store (the IMPU
 * the set first registered with: struct ims_reg.impu) in g->tp_profiles,
 * capped like the location store, and taken back when it goes.  Cost: one
 * table entry per registered user with services.  Limits: a UE that
 * de-registers with another IMPU of its implicit set than the one it first
 * registered with is not found (the ASes hear nothing; the entry goes at the
 * next registration's end or at shutdown); a PPR (rtr.c) does not refresh
 * the kept profile, so a de-registration is evaluated against the iFCs of
 * the last REGISTER. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xml.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/ifc.h"
#include "cscf/profile.h"
#include "sip/build.h"

#define TP_BODY_MAX 60000u /* what the proxy can send (PROXY_OUT_CAP) less the head */
#define TP_BOUNDARY "imscloud-3pr-6b0e5f"
#define TP_AS_LOG 128

/* An outstanding third-party REGISTER (on the worker's list, so that
 * shutdown frees it: the proxy drops its transactions without callbacks). */
struct tp_call {
    struct cscf_pend pend; /* first */
    bool dereg;
    bool terminate; /* DefaultHandling SESSION_TERMINATED */
    char impu[IMS_REG_ID_MAX], impi[IMS_REG_ID_MAX];
    char as[TP_AS_LOG];
};

/* What the S-CSCF keeps for a later de-registration. */
struct tp_rec {
    struct ims_profile *prof; /* a reference */
    char impi[IMS_REG_ID_MAX];
};

/* One registration event. */
struct tp_event {
    unsigned reg_type; /* ims_ifc_ctx.reg_type bit */
    const char *impu, *impi;
    const struct sip_msg *req; /* the UE's REGISTER, or NULL */
    ims_str rsp_hdrs;          /* our 200's header lines, or empty */
    long expires;
};

enum { TP_INITIAL = 1u << 0, TP_RE = 1u << 1, TP_DE = 1u << 2 };

static unsigned long tp_seq; /* atomic: Call-ID and tag uniqueness */

/* ------------------------------------------------------------ kept profiles */

static void rec_free(void *v)
{
    struct tp_rec *r = v;
    if (!r)
        return;
    ims_profile_unref(r->prof);
    ims_free(r);
}

static int put_fn(void **val, bool room, void *ctx)
{
    (void)room; /* a new key without room: the table frees ctx's record */
    rec_free(*val);
    *val = ctx;
    return 0;
}

static int take_fn(void **val, bool room, void *ctx)
{
    (void)room;
    *(struct tp_rec **)ctx = *val;
    *val = NULL;
    return 0;
}

/* Keeps (or, with prof NULL, forgets) what impu's de-registration needs. */
static void keep(struct ims_cscf *g, const char *impu, const char *impi, struct ims_profile *prof)
{
    if (!prof) {
        struct tp_rec *old = NULL;
        cscf_table_with(g->tp_profiles, ims_str_cstr(impu), take_fn, &old);
        rec_free(old);
        return;
    }
    struct tp_rec *r = ims_calloc(1, sizeof(*r));
    int rc = IMS_ENOMEM;
    if (r) {
        r->prof = ims_profile_ref(prof);
        ims_cstr_copy(impi, r->impi, sizeof(r->impi));
        rc = cscf_table_with(g->tp_profiles, ims_str_cstr(impu), put_fn, r);
    }
    if (rc)
        LOG_W("scscf", "event=third_party_keep_failed impu=%s err=%s", impu, ims_strerror(rc));
}

/* Takes impu's kept record back (NULL if none). */
static struct tp_rec *take(struct ims_cscf *g, const char *impu)
{
    struct tp_rec *r = NULL;
    cscf_table_with(g->tp_profiles, ims_str_cstr(impu), take_fn, &r);
    return r;
}

/* ------------------------------------------------------------ body */

/* ServiceInfo as TS 24.229 §7.6 application/3gpp-ims+xml. */
static int add_service_info(struct ims_buf *b, const char *info)
{
    int rc = ims_buf_add_cstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                                 "<ims-3gpp version=\"1\"><service-info>");
    if (rc == 0)
        rc = ims_xml_escape(b, ims_str_cstr(info));
    return rc ? rc : ims_buf_add_cstr(b, "</service-info></ims-3gpp>\r\n");
}

/* Our 200 to req, rebuilt (its To tag is unknown here). */
static int add_response(struct ims_buf *b, const struct sip_msg *req, ims_str hdrs)
{
    struct ims_buf r;
    ims_buf_init(&r, TP_BODY_MAX);
    int rc =
        ims_sip_build_response(&r, req, 200, NULL, IMS_STR_NULL, hdrs, IMS_STR_NULL, IMS_STR_NULL);
    if (rc == 0)
        rc = ims_buf_add_str(b, ims_buf_str(&r));
    ims_buf_free(&r);
    return rc;
}

struct tp_part {
    const char *type;
    struct ims_buf b;
};

/* The body of the REGISTER to the AS of f (§5.4.1.7 item f): *ctype and
 * body set, or both empty.  0, IMS_ELIMIT, IMS_ENOMEM. */
static int make_body(const struct ims_prof_ifc *f, const struct tp_event *e, const char **ctype,
                     struct ims_buf *body)
{
    struct tp_part parts[3];
    size_t n = 0;
    int rc = 0;
    *ctype = NULL;
    if (f->service_info) {
        parts[n].type = "application/3gpp-ims+xml";
        ims_buf_init(&parts[n].b, TP_BODY_MAX);
        rc = add_service_info(&parts[n++].b, f->service_info);
    }
    if (rc == 0 && e->req && f->include_register_request) {
        parts[n].type = "message/sip";
        ims_buf_init(&parts[n].b, TP_BODY_MAX);
        rc = ims_buf_add(&parts[n++].b, e->req->buf, e->req->len);
    }
    if (rc == 0 && e->req && f->include_register_response) {
        parts[n].type = "message/sip";
        ims_buf_init(&parts[n].b, TP_BODY_MAX);
        rc = add_response(&parts[n++].b, e->req, e->rsp_hdrs);
    }
    if (rc == 0 && n == 1) {
        *ctype = parts[0].type;
        rc = ims_buf_add_str(body, ims_buf_str(&parts[0].b));
    } else if (rc == 0 && n > 1) {
        /* RFC 2046 §5.1.1 */
        *ctype = "multipart/mixed;boundary=" TP_BOUNDARY;
        /* appended, not printed: an empty part's buffer has no bytes
         * (NULL), which "%.*s" may not be given */
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = ims_buf_printf(body, "--" TP_BOUNDARY "\r\nContent-Type: %s\r\n\r\n",
                                parts[i].type);
            if (rc == 0)
                rc = ims_buf_add_str(body, ims_buf_str(&parts[i].b));
            if (rc == 0)
                rc = ims_buf_add_cstr(body, "\r\n");
        }
        if (rc == 0)
            rc = ims_buf_add_cstr(body, "--" TP_BOUNDARY "--\r\n");
    }
    for (size_t i = 0; i < n; i++)
        ims_buf_free(&parts[i].b);
    if (rc)
        *ctype = NULL;
    return rc;
}

/* ------------------------------------------------------------ sending */

static void on_answer(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud);

static void call_free(struct cscf_pend *p)
{
    ims_free(p); /* the tp_call it is the first member of */
}

/* "P-Charging-Vector: ...\r\n" of the UE's REGISTER, or "". */
static void charging_line(const struct sip_msg *req, char *out, size_t cap)
{
    const struct sip_hdr *h = req ? ims_sip_hdr_first(req, SIP_H_P_CHARGING_VECTOR) : NULL;
    out[0] = '\0';
    if (h && h->value.len && h->value.len + 24 < cap)
        snprintf(out, cap, "P-Charging-Vector: %.*s\r\n", IMS_SF(h->value));
}

/* One third-party REGISTER to the AS of f.  0 or an IMS_E* error. */
static int send_one(struct cscf_worker *w, const struct tp_event *e, const struct ims_prof_ifc *f)
{
    struct ims_cscf *g = w->g;
    unsigned long seq = __atomic_add_fetch(&tp_seq, 1, __ATOMIC_RELAXED);
    long long ms = (long long)cscf_now_ms();
    char call_id[96], from[CSCF_URI_MAX + 64], to[IMS_REG_ID_MAX + 4];
    char hdrs[CSCF_URI_MAX + 512], pcv[256];
    snprintf(call_id, sizeof(call_id), "3pr-%llx-%lx-%u", ms, seq, w->idx);
    snprintf(from, sizeof(from), "<%s>;tag=3pr%lx%llx", g->s_uri, seq, ms);
    snprintf(to, sizeof(to), "<%s>", e->impu);
    charging_line(e->req, pcv, sizeof(pcv));
    int hn = snprintf(hdrs, sizeof(hdrs), "Contact: <%s>\r\nExpires: %ld\r\n%s", g->s_uri,
                      e->expires, pcv);
    if (hn <= 0 || (size_t)hn >= sizeof(hdrs))
        return IMS_ELIMIT;
    struct ims_buf body;
    ims_buf_init(&body, TP_BODY_MAX);
    const char *ctype = NULL;
    int rc = make_body(f, e, &ctype, &body);
    struct tp_call *c = rc ? NULL : ims_calloc(1, sizeof(*c));
    if (!rc && !c)
        rc = IMS_ENOMEM;
    if (rc)
        goto out;
    c->dereg = e->reg_type == TP_DE;
    c->terminate = f->default_handling == 1;
    ims_cstr_copy(e->impu, c->impu, sizeof(c->impu));
    ims_cstr_copy(e->impi, c->impi, sizeof(c->impi));
    ims_cstr_copy(f->server_name, c->as, sizeof(c->as));
    struct proxy_uac_req rq = {
        .method = IMS_S("REGISTER"),
        .ruri = ims_str_cstr(f->server_name),
        .from = ims_str_cstr(from),
        .to = ims_str_cstr(to),
        .call_id = ims_str_cstr(call_id),
        .cseq = 1,
        .hdrs = ims_str_make(hdrs, (size_t)hn),
        .content_type = ims_str_cstr(ctype),
        .body = ims_buf_str(&body),
    };
    rc = ims_proxy_uac_send(w->p, &rq, on_answer, c);
    if (rc == 0)
        cscf_pend_add(w, &c->pend, call_free);
    else
        ims_free(c);
out:
    ims_buf_free(&body);
    return rc;
}

/* Evaluates sp's iFCs for the event and sends to each matching AS. */
static void send_all(struct cscf_worker *w, const struct tp_event *e,
                     const struct ims_service_profile *sp, const struct sip_msg *m)
{
    /* TS 24.229 §5.4.1.7: REGISTER is evaluated as an originating request
     * of the (registered) served user */
    struct ims_ifc_ctx c = { IMS_SESSION_CASE_ORIGINATING, true, e->reg_type };
    for (int i = ims_ifc_next(sp, 0, m, &c); i >= 0; i = ims_ifc_next(sp, (size_t)i + 1, m, &c)) {
        int rc = send_one(w, e, &sp->ifcs[i]);
        LOG_I("scscf", "event=third_party_register impu=%s as=%s expires=%ld sent=%s", e->impu,
              sp->ifcs[i].server_name, e->expires, rc ? ims_strerror(rc) : "ok");
    }
}

/* A REGISTER of our own to evaluate the iFCs against when the UE sent none
 * (expiry, network-initiated de-registration). */
struct synth {
    char text[IMS_REG_ID_MAX * 2 + 256];
    struct sip_msg m;
    struct sip_hdr h[8];
};

static const struct sip_msg *synth_register(struct synth *s, const struct ims_cscf *g,
                                            const char *impu)
{
    int n = snprintf(s->text, sizeof(s->text),
                     "REGISTER %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK3pr\r\n"
                     "From: <%s>;tag=3pr\r\nTo: <%s>\r\nCall-ID: 3pr\r\nCSeq: 1 REGISTER\r\n"
                     "Content-Length: 0\r\n\r\n",
                     g->s_uri, impu, impu);
    if (n <= 0 || (size_t)n >= sizeof(s->text) ||
        ims_sip_parse(s->text, (size_t)n, false, &s->m, s->h, 8) <= 0)
        return NULL;
    return &s->m;
}

/* De-registration of impu, whatever caused it: the kept profile's ASes get
 * Expires: 0. */
static void dereg_event(struct cscf_worker *w, const char *impu, const char *impi,
                        const struct sip_msg *req)
{
    struct tp_rec *r = take(w->g, impu);
    if (!r)
        return;
    struct synth s;
    const struct sip_msg *m = req ? req : synth_register(&s, w->g, impu);
    const struct ims_service_profile *sp = ims_profile_find(r->prof, ims_str_cstr(impu));
    struct tp_event e = {
        .reg_type = TP_DE,
        .impu = impu,
        .impi = impi[0] ? impi : r->impi,
        .req = req,
    };
    if (m && sp)
        send_all(w, &e, sp, m);
    rec_free(r);
}

/* ------------------------------------------------------------ AS failure */

/* TS 24.229 §5.4.1.7: the AS failed and its iFC says SESSION_TERMINATED:
 * network-initiated de-registration (§5.4.1.5). */
static void network_dereg(struct cscf_worker *w, const struct tp_call *c)
{
    struct ims_cscf *g = w->g;
    if (ims_loc_remove(g->loc, ims_str_cstr(c->impu)) != 0)
        return; /* gone meanwhile */
    int rc = cscf_dereg_send(w, c->impu, c->impi, CX_SAT_ADMINISTRATIVE_DEREGISTRATION);
    LOG_N("scscf", "event=network_deregistration impu=%s impi=%s why=as_failed as=%s sar=%s",
          c->impu, c->impi, c->as, rc ? ims_strerror(rc) : "sent");
    /* RFC 3680 §5.3 "deactivated": the UE may register again */
    cscf_regevent_changed(w, c->impu, "deactivated");
    dereg_event(w, c->impu, c->impi, NULL);
}

static void on_answer(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud)
{
    (void)p;
    (void)rsp;
    struct tp_call *c = ud;
    struct cscf_worker *w = c->pend.w;
    cscf_pend_del(&c->pend);
    LOG_I("scscf", "event=third_party_register_answer impu=%s as=%s status=%d", c->impu, c->as,
          status);
    if (!c->dereg && c->terminate && (status == 408 || status >= 500))
        network_dereg(w, c);
    ims_free(c);
}

/* ------------------------------------------------------------ API */

int cscf_tp_init(struct ims_cscf *g)
{
    return cscf_table_new(CSCF_SHARDS, g->cfg->scscf_max_registrations, rec_free, &g->tp_profiles);
}

void cscf_tp_fini(struct ims_cscf *g)
{
    cscf_table_free(g->tp_profiles);
    g->tp_profiles = NULL;
}

/* The registration's profile (a reference), its key (ims_reg.impu) and its
 * lifetime in seconds. */
static struct ims_profile *current(struct cscf_worker *w, const char *impu, char *key,
                                   long *expires)
{
    struct ims_reg *r = w->reg_a;
    int64_t now = cscf_now_s();
    struct ims_profile *prof = NULL;
    *expires = 0;
    ims_cstr_copy(impu, key, IMS_REG_ID_MAX);
    if (ims_loc_get(w->g->loc, ims_str_cstr(impu), now, r) == 0) {
        prof = ims_profile_ref(r->profile);
        ims_cstr_copy(r->impu, key, IMS_REG_ID_MAX);
        for (size_t i = 0; i < r->ncontacts; i++)
            if (r->contacts[i].expires - now > *expires)
                *expires = (long)(r->contacts[i].expires - now);
    }
    ims_reg_clear(r);
    return prof;
}

void cscf_tp_register(struct cscf_worker *w, int sat, const char *impu, const char *impi,
                      const struct sip_msg *req, ims_str rsp_hdrs)
{
    if (sat == CX_SAT_USER_DEREGISTRATION) {
        dereg_event(w, impu, impi, req);
        return;
    }
    struct tp_event e = {
        .reg_type = sat == CX_SAT_REGISTRATION ? TP_INITIAL : TP_RE,
        .impu = impu,
        .impi = impi,
        .req = req,
        .rsp_hdrs = rsp_hdrs,
    };
    char key[IMS_REG_ID_MAX];
    struct ims_profile *prof = current(w, impu, key, &e.expires);
    const struct ims_service_profile *sp = ims_profile_find(prof, ims_str_cstr(impu));
    /* kept only when there is something to tell at de-registration */
    keep(w->g, key, impi, sp && sp->nifc ? prof : NULL);
    if (sp && sp->nifc && e.expires > 0)
        send_all(w, &e, sp, req);
    ims_profile_unref(prof);
}

void cscf_tp_expired(struct cscf_worker *w, const char *impu, const char *impi)
{
    dereg_event(w, impu, impi, NULL);
}
