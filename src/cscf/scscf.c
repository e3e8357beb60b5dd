/* scscf.c - the S-CSCF's registrar (TS 24.229 §5.4.1) and the hook for
 * every other request (the sessions).
 *
 * REGISTER:
 *   no credentials (or the empty ones TS 24.229 UEs send: username, nonce="",
 *   response="" and maybe algorithm=) -> MAR for the scheme the algorithm
 *   names (AKAv1-MD5, MD5, SHA-256 when [scscf] digest_algorithms allows
 *   it), else the IMPI's default ("Unknown"); when that default is Digest,
 *   one more MAR per other allowed algorithm, so the 401 carries one
 *   challenge per algorithm the user has an HA1 for, most preferred first
 *   (RFC 7616 §3.7) -> 401.
 *   credentials -> auth.c: OK -> SAR; stale -> MAR, 401 stale=true; unknown
 *   nonce or replayed nc -> MAR, 401; wrong -> MAR, 401 until
 *   [scscf] auth_max_failures, then 403; AKA auts= -> MAR with RAND||AUTS
 *   (re-synchronisation) -> 401 with the fresh vector.
 *   SAR: REGISTRATION (new), RE_REGISTRATION, USER_DEREGISTRATION (no
 *   binding left); the SAA's User-Data is parsed (profile.h) and kept on the
 *   registration with the implicit set -> 200 with Contact (every binding,
 *   ;expires), Path (echoed, RFC 3327 §5.3), Service-Route (RFC 3608:
 *   <sip:us;lr;orig>), P-Associated-URI (the non-barred identities of the
 *   set, the registered one first, RFC 7315).
 *   A query (no Contact) lists the bindings without a SAR.
 * Timers: the workers' sweeps drop expired contacts; a registration left
 * without any gets SAR TIMEOUT_DEREGISTRATION.
 *
 * HSS errors: 5001/5002 -> decoy challenges (lockout.c: no enumeration);
 * 5004/5006/refusals -> 403; no answer in
 * [scscf] hss_timeout_ms, busy, unable to comply -> 503 with Retry-After. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "crypto/digest.h"
#include "cscf/cscf_audit.h"
#include "cscf/cscf_int.h"
#include "cscf/profile.h"
#include "keystone/keystone.h"

enum { ST_MAR = 1, ST_MAR_MORE, ST_SAR };
#define SLOT_AKA IMS_DIGEST_NALG /* challenge line slots: one per digest algorithm, then AKA */
#define NSLOTS (IMS_DIGEST_NALG + 1)
#define CHAL_LINE_MAX 640

struct sc_txn {
    struct cscf_pend pend; /* first: the worker's list */
    struct proxy_req *r;
    int stage;
    int sat;
    bool stale;
    bool default_hint;     /* the MAR asked for the IMPI's default scheme */
    bool decoy;            /* unknown IMPI: challenged like a known one (lockout.c) */
    unsigned asked;        /* digest algorithms asked for (bits) */
    char impi[IMS_REG_ID_MAX], impu[IMS_REG_ID_MAX];
    struct ims_reg_policy pol;    /* g->pol, max_expires capped by a Bearer token */
    struct ims_ks_token *tok;     /* Bearer (bearer.c): the validated token, or NULL */
    bool src_known;               /* src below was worked out (txn_src) */
    char src[64];                 /* the UE's address: lockout key, audit initiator */
    /* Last, and neither zeroed nor wiped whole (2.5 KiB; that was ~10 000
     * instructions of a registration's 790 000): a slot is unused while its
     * first byte is 0, and what a slot holds is a challenge for the 401. */
    char line[NSLOTS][CHAL_LINE_MAX];
};

static struct sc_txn *txn_new(void)
{
    struct sc_txn *t = ims_alloc(sizeof(*t));
    if (!t)
        return NULL;
    memset(t, 0, offsetof(struct sc_txn, line));
    for (size_t i = 0; i < NSLOTS; i++)
        t->line[i][0] = '\0';
    return t;
}

static void txn_free(struct cscf_pend *p)
{
    ims_ks_token_unref(((struct sc_txn *)p)->tok);
    ims_wipe(p, offsetof(struct sc_txn, line));
    ims_free(p);
}

/* The UE's address (cscf_ue_source: a walk over every Via and a parse of
 * the bottom one, ~2 900 instructions), worked out once: the lockout check,
 * its count and both audit events of a registration name it. */
static const char *txn_src(struct sc_txn *t, const struct sip_msg *m)
{
    if (!t->src_known) {
        cscf_ue_source(m, t->src, sizeof(t->src));
        t->src_known = true;
    }
    return t->src;
}

static void txn_done(struct sc_txn *t)
{
    cscf_pend_del(&t->pend);
    txn_free(&t->pend);
}

static void finish(struct sc_txn *t, int status, const char *reason, ims_str hdrs)
{
    if (!ims_proxy_req_final_sent(t->r))
        ims_proxy_reply(t->r, status, reason, &(struct proxy_reply_opts){ .hdrs = hdrs });
    ims_proxy_req_release(t->r);
    txn_done(t);
}

static void hss_unavailable(struct sc_txn *t)
{
    char ra[32];
    finish(t, 503, "HSS Unavailable",
           cscf_retry_after(t->pend.w->g->cfg->scscf_retry_after, ra, sizeof(ra)));
}

/* Ends a request whose Cx answer came after a CANCEL or a final. */
static bool gone(struct sc_txn *t)
{
    if (!ims_proxy_req_final_sent(t->r) && !ims_proxy_req_cancelled(t->r))
        return false;
    ims_proxy_req_release(t->r);
    txn_done(t);
    return true;
}

/* ------------------------------------------------------------ helpers */

static bool alg_allowed(const struct ims_cscf *g, enum ims_digest_alg a)
{
    for (size_t i = 0; i < g->nalgs; i++)
        if (g->algs[i] == (int)a)
            return true;
    return false;
}

/* The MAR scheme for a REGISTER's algorithm hint (TS 29.229 §6.3.9). */
static void scheme_hint(const struct ims_cscf *g, const struct sip_auth *cred, bool have,
                        char *out, size_t cap, unsigned *asked)
{
    enum ims_digest_alg a;
    bool sess;
    snprintf(out, cap, "Unknown");
    if (!have || !cred->algorithm.len)
        return;
    if (ims_str_caseeq_lit(cred->algorithm, "AKAv1-MD5")) {
        snprintf(out, cap, "Digest-AKAv1-MD5");
    } else if (ims_digest_alg_parse(cred->algorithm, &a, &sess) == 0 && !sess &&
               alg_allowed(g, a)) {
        snprintf(out, cap, "Digest-%s", ims_digest_alg_name(a));
        *asked |= 1u << a;
    }
}

/* RFC 5626 §6: outbound applies when we are the first hop (one Via) or
 * the first Path URI carries "ob" (its edge proxy keeps the flow). */
static bool first_hop_outbound(const struct sip_msg *m)
{
    if (m->nvia <= 1)
        return true;
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_PATH);
    struct sip_nameaddr na;
    ims_str v;
    return h && cscf_first_nameaddr(h->value, &na) == 0 &&
           ims_sip_param_get(na.uri.params, "ob", &v) == 0;
}

/* Decides RFC 5626 for a REGISTER's bindings: with a reg-id on a binding
 * that has a +sip.instance and a first hop that supports outbound, the
 * bindings are flows (rq->outbound); otherwise every reg-id is ignored.
 * 0, or 439 (the status §6 answers with) when the UA asked for outbound
 * (Supported: outbound and a reg-id) and the first hop lacks it. */
static int outbound_decide(const struct sip_msg *m, struct ims_reg_binding *b, size_t n,
                           struct ims_reg_req *rq)
{
    bool asked = cscf_outbound_asked(b, n);
    bool ok = asked && first_hop_outbound(m);
    bool supported = asked && ims_sip_hdr_has_token(m, SIP_H_SUPPORTED, "outbound");
    if (supported && !ok)
        return 439;
    for (size_t i = 0; i < n; i++)
        if (!ok || !b[i].instance.len)
            b[i].reg_id = 0;
    rq->outbound = ok && supported;
    return 0;
}

/* The REGISTER's bindings (slices into m).  0, IMS_EPROTO, IMS_ELIMIT, or
 * 439 (outbound_decide). */
static int reg_req(const struct sip_msg *m, struct ims_reg_binding *b, struct ims_reg_req *rq)
{
    memset(rq, 0, sizeof(*rq));
    size_t n = 0;
    bool star = false;
    int rc = cscf_contacts(m, b, IMS_REG_MAX_CONTACTS, &n, &star);
    if (rc == 0)
        rc = outbound_decide(m, b, n, rq);
    if (rc)
        return rc;
    rq->b = b;
    rq->n = n;
    rq->star = star;
    rq->hdr_expires = cscf_expires_hdr(m);
    rq->call_id = m->call_id;
    rq->cseq = m->cseq.num;
    rq->path = IMS_STR_NULL; /* set by the caller (joined Path values) */
    return 0;
}

/* ------------------------------------------------------------ 401 */

static void on_maa(int rc, const struct dia_ans *ans, void *ud);

static int send_mar(struct sc_txn *t, const char *scheme, const struct ims_auth_resync *rs)
{
    struct ims_cscf *g = t->pend.w->g;
    struct cx_mar q;
    uint8_t ra[30];
    memset(&q, 0, sizeof(q));
    q.impi = ims_str_cstr(t->impi);
    q.impu = ims_str_cstr(t->impu);
    q.server_name = ims_str_cstr(g->s_uri);
    q.n_items = 1;
    q.item.scheme = ims_str_cstr(scheme);
    DIA_SET(&q.item, CX_ITEM_SCHEME);
    if (rs) {
        /* TS 29.228 §6.3.1: SIP-Authorization = RAND || AUTS */
        memcpy(ra, rs->rand, 16);
        memcpy(ra + 16, rs->auts, 14);
        q.item.authorization = ims_str_make((const char *)ra, sizeof(ra));
        DIA_SET(&q.item, CX_ITEM_AUTHORIZATION);
    }
    DIA_SET(&q, CX_MAR_IMPI);
    DIA_SET(&q, CX_MAR_IMPU);
    DIA_SET(&q, CX_MAR_SERVER);
    DIA_SET(&q, CX_MAR_NITEMS);
    DIA_SET(&q, CX_MAR_ITEM);
    return ims_cx_send(t->pend.w->scx, DIA_CMD_MAR, &q, on_maa, t);
}

/* An MAA item as a challenge vector.  0, or IMS_ENOENT (a scheme or a
 * value we cannot use). */
static int item_vector(const struct ims_cscf *g, const struct cx_auth_item *it,
                       struct ims_auth_vector *v)
{
    memset(v, 0, sizeof(*v));
    ims_str s = it->scheme;
    if (ims_str_caseeq_lit(s, "Digest-AKAv1-MD5")) {
        if (it->authenticate.len != 32 || it->authorization.len < 4 ||
            it->authorization.len > sizeof(v->xres))
            return IMS_ENOENT;
        v->kind = IMS_AUTHK_AKAV1;
        memcpy(v->rand, it->authenticate.p, 16);
        memcpy(v->autn, it->authenticate.p + 16, 16);
        memcpy(v->xres, it->authorization.p, it->authorization.len);
        v->xres_len = it->authorization.len;
        ims_cstr_copy(g->s_realm, v->realm, sizeof(v->realm));
        return 0;
    }
    if (!DIA_HAS(it, CX_ITEM_DIGEST) || !it->digest.ha1.len)
        return IMS_ENOENT;
    enum ims_digest_alg a = IMS_DIGEST_MD5;
    bool sess = false;
    if (it->digest.algorithm.len &&
        (ims_digest_alg_parse(it->digest.algorithm, &a, &sess) != 0 || sess))
        return IMS_ENOENT;
    if (it->digest.ha1.len != ims_digest_hex_len(a))
        return IMS_ENOENT;
    v->kind = IMS_AUTHK_DIGEST;
    v->alg = a;
    ims_str_copy(it->digest.ha1, v->ha1, sizeof(v->ha1));
    ims_str_copy(it->digest.realm.len ? it->digest.realm : ims_str_cstr(g->s_realm), v->realm,
                 sizeof(v->realm));
    return 0;
}

static void send_401(struct sc_txn *t)
{
    struct ims_cscf *g = t->pend.w->g;
    char hdrs[NSLOTS * CHAL_LINE_MAX + 1024];
    size_t k = 0;
    /* preference order: configured digest algorithms, then AKA */
    for (size_t i = 0; i <= g->nalgs; i++) {
        int slot = i < g->nalgs ? g->algs[i] : SLOT_AKA;
        size_t n = strlen(t->line[slot]);
        if (!n || k + n >= sizeof(hdrs))
            continue;
        memcpy(hdrs + k, t->line[slot], n);
        k += n;
    }
    /* RFC 8898 §2: Bearer is offered next to Digest when Keystone is on */
    ims_str bc = cscf_bearer_challenge(g, NULL, hdrs + k, sizeof(hdrs) - k);
    k += bc.len;
    if (k == 0) {
        finish(t, 403, "No Usable Authentication Scheme", IMS_STR_NULL);
        return;
    }
    LOG_I("scscf", "event=challenge impi=%s impu=%s stale=%d", t->impi, t->impu, t->stale);
    finish(t, 401, NULL, ims_str_make(hdrs, k));
}

static void on_maa(int rc, const struct dia_ans *ans, void *ud)
{
    struct sc_txn *t = ud;
    struct ims_cscf *g = t->pend.w->g;
    if (gone(t))
        return;
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    bool extra = t->stage == ST_MAR_MORE;
    LOG_I("scscf", "event=maa impi=%s outcome=%d rc=%s result=%u extra=%d", t->impi, (int)o,
          ims_strerror(rc), ans ? dia_ans_code(ans, NULL) : 0, extra);
    if (o != IMS_CX_OK && !extra) {
        switch (o) {
        case IMS_CX_UNAVAILABLE: hss_unavailable(t); return;
        case IMS_CX_USER_UNKNOWN:
        case IMS_CX_IDENTITIES_DONT_MATCH:
            /* no enumeration oracle: the challenges (and MARs) a Digest user
             * gets, which no response ever passes (lockout.c) */
            t->decoy = true;
            if (t->default_hint && g->nalgs)
                t->asked |= 1u << g->algs[0];
            break;
        case IMS_CX_SCHEME_UNSUPPORTED:
            finish(t, 403, "Authentication Scheme Unsupported", IMS_STR_NULL);
            return;
        case IMS_CX_AUTH_REJECTED:
            finish(t, 403, "Authentication Rejected", IMS_STR_NULL);
            return;
        default: finish(t, 403, "Forbidden By HSS", IMS_STR_NULL); return;
        }
    }
    bool digest = t->decoy;
    for (size_t i = 0; o == IMS_CX_OK && i < ans->n_item && i < CX_MAX_ITEMS; i++) {
        struct ims_auth_vector v;
        if (item_vector(g, &ans->items[i], &v) != 0)
            continue;
        int slot = v.kind == IMS_AUTHK_AKAV1 ? SLOT_AKA : (int)v.alg;
        if (v.kind == IMS_AUTHK_DIGEST) {
            t->asked |= 1u << v.alg;
            digest = true;
            if (!alg_allowed(g, v.alg) || t->line[slot][0]) {
                ims_auth_vector_clear(&v);
                continue;
            }
        }
        struct ims_buf b;
        ims_buf_init(&b, CHAL_LINE_MAX - 1);
        int crc = ims_auth_challenge(g->auth, ims_str_cstr(t->impi), &v, t->stale,
                                     cscf_now_ms(), &b);
        ims_auth_vector_clear(&v);
        if (crc == 0)
            ims_cstr_copy(b.p, t->line[slot], CHAL_LINE_MAX);
        else
            LOG_W("scscf", "event=challenge_failed impi=%s err=%s", t->impi, ims_strerror(crc));
        ims_buf_free(&b);
    }
    /* RFC 7616 §3.7: the IMPI's default was Digest: one challenge per
     * allowed algorithm the HSS has an HA1 for */
    if (t->default_hint && (digest || extra)) {
        for (size_t i = 0; i < g->nalgs; i++) {
            enum ims_digest_alg a = (enum ims_digest_alg)g->algs[i];
            if (t->asked & (1u << a))
                continue;
            t->asked |= 1u << a;
            char scheme[32];
            snprintf(scheme, sizeof(scheme), "Digest-%s", ims_digest_alg_name(a));
            t->stage = ST_MAR_MORE;
            if (send_mar(t, scheme, NULL) == 0)
                return;
        }
    }
    for (int sl = 0; t->decoy && sl < NSLOTS; sl++) /* lockout.c: the decoy challenges */
        if (sl == SLOT_AKA ? !t->asked : (t->asked >> sl & 1u) && alg_allowed(g, sl))
            cscf_decoy_challenge(g, t->impi, t->stale, sl == SLOT_AKA ? -1 : sl, t->line[sl],
                                 CHAL_LINE_MAX);
    send_401(t);
}

/* ------------------------------------------------------------ 200 */

static void on_saa(int rc, const struct dia_ans *ans, void *ud);

static int send_sar(struct sc_txn *t)
{
    struct ims_cscf *g = t->pend.w->g;
    struct cx_sar q;
    ims_cx_sar_init(&q, ims_str_cstr(t->impi), ims_str_cstr(t->impu), ims_str_cstr(g->s_uri),
                    t->sat);
    t->stage = ST_SAR;
    return ims_cx_send(t->pend.w->scx, DIA_CMD_SAR, &q, on_saa, t);
}

/* Contact lines of r's bindings with their remaining lifetime, and the
 * +sip.instance and reg-id that key them (RFC 5627 §5, RFC 5626 §6: the UA
 * finds its own binding, or flow, in the list). */
static int contact_lines(const struct ims_reg *r, int64_t now, struct ims_buf *b)
{
    int rc = 0;
    for (size_t i = 0; i < r->ncontacts && rc == 0; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        int64_t left = c->expires - now;
        char sec[IMS_U64_DEC_MAX], rid[IMS_U64_DEC_MAX];
        rc = IMS_BUF_CAT(b, IMS_S("Contact: <"), ims_str_cstr(c->uri), IMS_S(">;expires="),
                         ims_str_make(sec, ims_u64_dec(left > 0 ? (uint64_t)left : 0, sec)));
        if (rc == 0 && c->instance[0]) {
            /* kept unquoted (the parameter's value); "<urn:...>" needs them */
            bool quoted = c->instance[0] == '"';
            rc = IMS_BUF_CAT(b, IMS_S(";+sip.instance="), quoted ? IMS_S("") : IMS_S("\""),
                             ims_str_cstr(c->instance), quoted ? IMS_S("") : IMS_S("\""));
        }
        if (rc == 0 && c->reg_id)
            rc = IMS_BUF_CAT(b, IMS_S(";reg-id="), ims_str_make(rid, ims_u64_dec(c->reg_id, rid)));
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "\r\n");
    }
    return rc;
}

struct commit {
    struct sc_txn *t;
    const struct ims_reg_req *rq;
    struct ims_profile *profile; /* borrowed: the registration takes a reference */
    const char (*ids)[IMS_REG_ID_MAX];
    const bool *barred;
    size_t nids;
    int status;                  /* a binding rule refused (race with another REGISTER) */
    unsigned min_expires;
    struct ims_buf *hdrs;        /* the 200's Contact, P-Associated-URI, Path... */
    bool hdrs_failed;            /* building them failed: nothing was stored */
};

/* The 200's headers past the contacts: what the registration keeps (RFC
 * 3327 Path, RFC 5626 outbound) and the Service-Route (RFC 3608). */
static int route_lines(const struct commit *c, ims_str service_route)
{
    int rc = 0;
    if (c->rq->path.len)
        rc = IMS_BUF_CAT(c->hdrs, IMS_S("Path: "), c->rq->path, IMS_S("\r\n"));
    if (rc == 0 && c->rq->outbound) /* RFC 5626 §6: the flows are kept */
        rc = ims_buf_add_cstr(c->hdrs, "Require: outbound\r\n");
    if (rc == 0)
        rc = IMS_BUF_CAT(c->hdrs, IMS_S("Service-Route: "), service_route, IMS_S("\r\n"));
    return rc;
}

static int commit_fn(struct ims_reg *r, void *ctx)
{
    struct commit *c = ctx;
    struct ims_cscf *g = c->t->pend.w->g;
    int64_t now = cscf_now_s();
    bool was = r->ncontacts > 0;
    int st = ims_reg_apply(r, c->rq, &c->t->pol, now, &c->min_expires);
    if (st) {
        c->status = st;
        return IMS_EINVAL;
    }
    if (c->nids) {
        ims_cstr_copy(c->t->impi, r->impi, sizeof(r->impi));
        ims_cstr_copy(g->s_service_route, r->service_route, sizeof(r->service_route));
        r->nimpu = 0;
        for (size_t i = 0; i < c->nids && r->nimpu < IMS_REG_MAX_IMPUS; i++) {
            ims_cstr_copy(c->ids[i], r->impus[r->nimpu], IMS_REG_ID_MAX);
            r->barred[r->nimpu++] = c->barred[i];
        }
        if (r->profile != c->profile) {
            ims_profile_unref(r->profile);
            r->profile = ims_profile_ref(c->profile);
        }
        if (!was)
            r->registered_at = now;
    }
    int rc = contact_lines(r, now, c->hdrs);
    bool first = true;
    for (size_t i = 0; rc == 0 && r->ncontacts && i < r->nimpu; i++) {
        if (r->barred[i])
            continue; /* TS 24.229 §5.4.1.2.2: barred identities are not listed */
        rc = IMS_BUF_CAT(c->hdrs, first ? IMS_S("P-Associated-URI: <") : IMS_S(", <"),
                         ims_str_cstr(r->impus[i]), IMS_S(">"));
        first = false;
    }
    if (rc == 0 && !first)
        rc = ims_buf_add_cstr(c->hdrs, "\r\n");
    /* built here, before the store changes: a 500 is never the answer to
     * a registration that was kept */
    if (rc == 0 && c->nids && c->hdrs->len)
        rc = route_lines(c, ims_str_cstr(g->s_service_route));
    c->hdrs_failed = rc != 0;
    return rc;
}

struct id_ctx {
    char (*ids)[IMS_REG_ID_MAX];
    bool *barred;
    size_t n;
    bool self_barred;
    const char *self;
};

static int id_cb(const struct ims_pub_id *id, void *ctx)
{
    struct id_ctx *x = ctx;
    if (id->identity_type >= 2)
        return 0; /* wildcards are patterns, not identities to register */
    if (strcmp(id->identity, x->self) == 0) {
        x->self_barred = id->barred;
        return 0;
    }
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->ids[i], id->identity) == 0)
            return 0;
    if (x->n < IMS_REG_MAX_IMPUS && strlen(id->identity) < IMS_REG_ID_MAX) {
        ims_cstr_copy(id->identity, x->ids[x->n], IMS_REG_ID_MAX);
        x->barred[x->n++] = id->barred;
    }
    return 0;
}

/* Refuses a REGISTER the HSS has accepted with its SAA but this S-CSCF
 * does not keep (a barred identity, no room, bad User-Data). After a
 * first registration's SAR the HSS holds the user as registered here;
 * a USER_DEREGISTRATION takes that back, so that Sh, LIR and the next UAR
 * do not see a registration no S-CSCF has (TS 29.228 §6.1.2). A
 * re-registration's binding is still here: nothing to take back. */
static void refuse(struct sc_txn *t, int status, const char *reason, ims_str hdrs)
{
    if (t->sat == CX_SAT_REGISTRATION) {
        int rc = cscf_dereg_send(t->pend.w, t->impu, t->impi, CX_SAT_USER_DEREGISTRATION);
        LOG_N("scscf", "event=registration_undone impu=%s impi=%s status=%d sar=%s", t->impu,
              t->impi, status, rc ? ims_strerror(rc) : "sent");
    }
    finish(t, status, reason, hdrs);
}

static void on_saa(int rc, const struct dia_ans *ans, void *ud)
{
    struct sc_txn *t = ud;
    struct cscf_worker *w = t->pend.w;
    struct ims_cscf *g = w->g;
    if (gone(t))
        return;
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    LOG_I("scscf", "event=saa impu=%s sat=%d outcome=%d rc=%s result=%u", t->impu, t->sat,
          (int)o, ims_strerror(rc), ans ? dia_ans_code(ans, NULL) : 0);
    switch (o) {
    case IMS_CX_OK: break;
    case IMS_CX_UNAVAILABLE: hss_unavailable(t); return;
    case IMS_CX_USER_UNKNOWN: finish(t, 403, "Unknown User", IMS_STR_NULL); return;
    case IMS_CX_IDENTITIES_DONT_MATCH:
        finish(t, 403, "Identities Do Not Match", IMS_STR_NULL);
        return;
    default: finish(t, 403, "Forbidden By HSS", IMS_STR_NULL); return;
    }
    const struct sip_msg *m = ims_proxy_req_msg(t->r);
    struct ims_reg_binding b[IMS_REG_MAX_CONTACTS];
    struct ims_reg_req rq;
    struct ims_buf path, hdrs;
    ims_buf_init(&path, IMS_REG_PATH_MAX - 1);
    ims_buf_init(&hdrs, 32768);
    struct ims_profile *prof = NULL;
    char(*ids)[IMS_REG_ID_MAX] = NULL;
    bool barred[IMS_REG_MAX_IMPUS];
    if (!m || reg_req(m, b, &rq) != 0) {
        refuse(t, 500, NULL, IMS_STR_NULL);
        goto out;
    }
    if (cscf_join_values(m, SIP_H_PATH, &path) != 0) {
        refuse(t, 400, "Path Too Long", IMS_STR_NULL);
        goto out;
    }
    rq.path = ims_buf_str(&path);
    struct commit c = { .t = t, .rq = &rq, .hdrs = &hdrs };
    bool dereg = t->sat == CX_SAT_USER_DEREGISTRATION;
    if (!dereg) {
        if (DIA_HAS(ans, DIA_ANS_USER_DATA) && ans->user_data.len) {
            /* a re-registration mostly brings the User-Data the registration
             * was built from: keep that parse (libxml2 was 3.7 % of a
             * registration's CPU) */
            prof = ims_loc_profile(g->loc, ims_str_cstr(t->impu));
            int prc = 0;
            if (!ims_profile_same_source(prof, ans->user_data)) {
                ims_profile_unref(prof);
                prof = NULL;
                prc = ims_profile_parse(ans->user_data, &prof);
            }
            if (prc == IMS_ENOMEM) {
                refuse(t, 500, NULL, IMS_STR_NULL);
                goto out;
            }
            if (prc) {
                LOG_E("scscf", "event=bad_user_data impu=%s err=%s", t->impu,
                      ims_strerror(prc));
                refuse(t, 500, "Bad User-Data", IMS_STR_NULL);
                goto out;
            }
        }
        ids = ims_alloc((size_t)IMS_REG_MAX_IMPUS * IMS_REG_ID_MAX); /* read up to x.n only */
        if (!ids) {
            refuse(t, 500, NULL, IMS_STR_NULL);
            goto out;
        }
        /* the implicit set: the registered identity first */
        ims_cstr_copy(t->impu, ids[0], IMS_REG_ID_MAX);
        barred[0] = false;
        struct id_ctx x = { ids, barred, 1, false, t->impu };
        ims_profile_each_id(prof, id_cb, &x);
        if (x.self_barred) {
            /* TS 24.229 §5.4.1.2.1: a barred identity cannot register */
            refuse(t, 403, "Identity Barred", IMS_STR_NULL);
            goto out;
        }
        c.profile = prof;
        c.ids = (const char(*)[IMS_REG_ID_MAX])ids;
        c.barred = barred;
        c.nids = x.n;
    }
    int crc = ims_loc_update(g->loc, ims_str_cstr(t->impu), cscf_now_s(), w->reg_b, commit_fn, &c);
    if (c.hdrs_failed) {
        refuse(t, 500, NULL, IMS_STR_NULL);
        goto out;
    }
    if (crc == IMS_EINVAL && c.status) {
        char mx[48];
        int n = c.status == 423 ? snprintf(mx, sizeof(mx), "Min-Expires: %u\r\n", c.min_expires)
                                : 0;
        refuse(t, c.status, NULL, ims_str_make(mx, n > 0 ? (size_t)n : 0));
        goto out;
    }
    if (crc == IMS_ELIMIT) {
        char ra[32];
        refuse(t, 503, "Too Many Registrations", cscf_retry_after(60, ra, sizeof(ra)));
        goto out;
    }
    if (crc) {
        refuse(t, 500, NULL, IMS_STR_NULL);
        goto out;
    }
    LOG_I("scscf", "event=%s impu=%s impi=%s outbound=%d", dereg ? "deregistered" : "registered",
          t->impu, t->impi, rq.outbound);
    cscf_audit_reg(txn_src(t, m), t->impi, t->impu, dereg); /* audit: (de-)registration */
    cscf_bearer_bind(g, t->impi, dereg ? NULL : t->tok); /* credentials for sessions (bearer.c) */
    cscf_regevent_changed(w, t->impu, dereg ? "unregistered" : NULL); /* reg-event NOTIFYs */
    /* third-party REGISTER to the ASes (thirdparty.c) */
    cscf_tp_register(w, t->sat, t->impu, t->impi, m, ims_buf_str(&hdrs));
    finish(t, 200, NULL, ims_buf_str(&hdrs));
out:
    ims_profile_unref(prof);
    ims_free(ids);
    ims_buf_free(&path);
    ims_buf_free(&hdrs);
}

static bool register_allowed(struct sc_txn *t, const struct sip_msg *m,
                             const char *roles); /* the policy */

/* After authentication: which SAR, if any (TS 24.229 §5.4.1.2.2, §5.4.1.4). */
static void after_auth(struct sc_txn *t, const struct sip_msg *m)
{
    struct cscf_worker *w = t->pend.w;
    struct ims_cscf *g = w->g;
    struct ims_reg_binding b[IMS_REG_MAX_CONTACTS];
    struct ims_reg_req rq;
    if (reg_req(m, b, &rq) != 0) {
        finish(t, 400, "Bad Contact", IMS_STR_NULL);
        return;
    }
    int64_t now = cscf_now_s();
    struct ims_reg *cur = w->reg_a;
    bool registered = ims_loc_get(g->loc, ims_str_cstr(t->impu), now, cur) == 0;
    if (rq.n == 0 && !rq.star) {
        /* RFC 3261 §10.3 step 8: a query */
        struct ims_buf hdrs;
        ims_buf_init(&hdrs, 32768);
        if (registered)
            contact_lines(cur, now, &hdrs);
        ims_reg_clear(cur);
        finish(t, 200, NULL, ims_buf_str(&hdrs));
        ims_buf_free(&hdrs);
        return;
    }
    unsigned minx = 0;
    int st = ims_reg_apply(cur, &rq, &t->pol, now, &minx);
    size_t left = cur->ncontacts;
    /* the roles the HSS gave at the last SAA: none before the first */
    char roles[CSCF_ROLES_MAX];
    snprintf(roles, sizeof(roles), "%s",
             registered && cur->profile && cur->profile->roles ? cur->profile->roles : "");
    ims_reg_clear(cur);
    if (st) {
        char mx[48];
        int n = st == 423 ? snprintf(mx, sizeof(mx), "Min-Expires: %u\r\n", minx) : 0;
        finish(t, st, st == 400 ? "Bad Contact *" : NULL, ims_str_make(mx, n > 0 ? (size_t)n : 0));
        return;
    }
    if (left == 0 && !registered) {
        /* nothing was registered and nothing is: done */
        finish(t, 200, NULL, IMS_STR_NULL);
        return;
    }
    if (left > 0 && !register_allowed(t, m, roles))
        return; /* a query or a de-registration needs no permission */
    t->sat = left == 0      ? CX_SAT_USER_DEREGISTRATION
             : registered ? CX_SAT_RE_REGISTRATION
                          : CX_SAT_REGISTRATION;
    int rc = send_sar(t);
    if (rc) {
        LOG_W("scscf", "event=sar_failed impu=%s err=%s", t->impu, ims_strerror(rc));
        hss_unavailable(t);
    }
}

/* ------------------------------------------------------------ Bearer and policy */

/* ims:register (docs/keystone.md): a Bearer user with the token's
 * credentials, a Digest/AKA user with roles (the subscription's from the
 * registration's profile; a first REGISTER has none yet) or else [scscf]
 * local_roles.  false: answered 403 with a Warning naming the rule. */
static bool register_allowed(struct sc_txn *t, const struct sip_msg *m, const char *roles)
{
    struct ims_cscf *g = t->pend.w->g;
    if (!cscf_policy_on(g))
        return true;
    struct cscf_creds c;
    if (t->tok) {
        cscf_creds_token(t->tok, &c);
    } else {
        struct sip_auth cred;
        bool aka = cscf_credentials(m, &cred) && ims_str_caseeq_lit(cred.algorithm, "AKAv1-MD5");
        cscf_creds_local(g, t->impi, aka ? "aka" : "digest", roles, &c);
    }
    if (cscf_policy_allows(g, m, "ims:register", &c.c, t->impu))
        return true;
    char wb[CSCF_URI_MAX + 96];
    finish(t, 403, "Forbidden By Policy", cscf_policy_warning(g, "ims:register", wb, sizeof(wb)));
    return false;
}

static void bearer_refused(struct sc_txn *t)
{
    char cb[CSCF_URI_MAX * 3 + 64];
    finish(t, 401, NULL, cscf_bearer_challenge(t->pend.w->g, "invalid_token", cb, sizeof(cb)));
}

/* Keystone answered (keystone.h: the callback rule; borrowed tok). */
static void on_token(void *arg, int rc, struct ims_ks_token *tok)
{
    struct sc_txn *t = arg;
    struct ims_cscf *g = t->pend.w->g;
    if (cscf_bearer_stopping(g))
        return; /* shutting down: ims_cscf_free() frees t */
    if (gone(t))
        return;
    const struct sip_msg *m = ims_proxy_req_msg(t->r);
    LOG_I("scscf", "event=bearer impu=%s rc=%s tok=%s user=%s", t->impu, ims_strerror(rc),
          tok ? tok->hash_hex : "-", tok && tok->user_name ? tok->user_name : "-");
    if (rc == IMS_ENOENT) {
        if (m)
            cscf_audit_auth(txn_src(t, m), t->impi, t->impu, IMS_AUTH_WRONG); /* audit */
        bearer_refused(t); /* invalid, expired or revoked: a fresh 401 */
        return;
    }
    if (rc == IMS_ENOMEM || (rc == 0 && !m)) {
        finish(t, 500, NULL, IMS_STR_NULL);
        return;
    }
    if (rc) {
        /* issue 5 part 6: Keystone unavailable, new tokens fail closed */
        char ra[32];
        finish(t, 503, "Identity Service Unavailable",
               cscf_retry_after(g->cfg->scscf_retry_after, ra, sizeof(ra)));
        return;
    }
    int64_t left = tok->expires_at - cscf_now_s();
    int n = tok->user_name ? snprintf(t->impi, sizeof(t->impi), "%s@%s", tok->user_name,
                                      g->s_realm)
                           : -1;
    if (left <= 0) {
        bearer_refused(t);
        return;
    }
    if (n <= 0 || (size_t)n >= sizeof(t->impi)) {
        finish(t, 403, "No Private Identity", IMS_STR_NULL);
        return;
    }
    /* the registration never outlives the token */
    if ((uint64_t)left < t->pol.max_expires)
        t->pol.max_expires = (unsigned)left;
    t->tok = ims_ks_token_ref(tok);
    cscf_audit_auth(txn_src(t, m), t->impi, t->impu, IMS_AUTH_OK); /* audit: success */
    after_auth(t, m);
}

static void bearer_start(struct sc_txn *t, ims_str tok)
{
    int rc = tok.len ? ims_ks_validate(t->pend.w->ks, tok.p, tok.len, 0, on_token, t)
                     : IMS_EINVAL;
    if (rc == 0)
        return;
    LOG_I("scscf", "event=bearer_not_validated impu=%s err=%s", t->impu, ims_strerror(rc));
    if (rc == IMS_EINVAL) {
        bearer_refused(t);
    } else {
        char ra[32];
        finish(t, 503, "Identity Service Unavailable",
               cscf_retry_after(t->pend.w->g->cfg->scscf_retry_after, ra, sizeof(ra)));
    }
}

/* ------------------------------------------------------------ REGISTER */

/* TS 24.229 §5.4.1.2.1A, TS 33.203 Annex H: a REGISTER our P-CSCF marked
 * "tls-yes" came over a TLS connection that an earlier registration of this
 * IMPI authenticated; while that registration lasts, the S-CSCF takes the
 * P-CSCF's word instead of challenging again.  Only from inside the trust
 * domain (the I-CSCF removes the mark from anyone else; a UE sending to us
 * directly is not believed either). */
static bool tls_bound(struct cscf_worker *w, struct proxy_req *r, const struct sip_auth *cred,
                      const char *impi, const char *impu)
{
    if (!ims_str_eq(cred->integrity_protected, IMS_S("tls-yes")))
        return false;
    if (!cscf_hop_trusted(w->g, ims_proxy_req_rx(r))) {
        LOG_I("scscf", "event=integrity_protected_ignored impi=%s why=untrusted_hop", impi);
        return false;
    }
    struct ims_reg *cur = w->reg_a;
    bool same = ims_loc_get(w->g->loc, ims_str_cstr(impu), cscf_now_s(), cur) == 0 &&
                strcmp(cur->impi, impi) == 0;
    ims_reg_clear(cur);
    if (!same)
        LOG_I("scscf", "event=integrity_protected_ignored impi=%s why=not_registered", impi);
    return same;
}

static void sc_register(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    struct ims_cscf *g = w->g;
    /* a registrar is an endpoint: anything malformed gets 400 (msg.h) */
    struct sip_msg v = *m;
    if (ims_sip_validate(&v) != 0) {
        ims_proxy_reply(r, 400, v.err_reason ? v.err_reason : "Bad Request", NULL);
        return;
    }
    char impu[IMS_REG_ID_MAX], impi[IMS_REG_ID_MAX];
    if (cscf_impu_of(&m->to.uri, impu, sizeof(impu)) != 0) {
        ims_proxy_reply(r, 400, "Bad To", NULL);
        return;
    }
    struct ims_reg_binding b[IMS_REG_MAX_CONTACTS];
    struct ims_reg_req rq;
    int rc = reg_req(m, b, &rq);
    if (rc == 439) {
        LOG_I("scscf", "event=outbound_refused impu=%s why=first_hop_lacks_ob", impu);
        ims_proxy_reply(r, 439, "First Hop Lacks Outbound Support", NULL);
        return;
    }
    if (rc) {
        ims_proxy_reply(r, rc == IMS_ELIMIT ? 403 : 400,
                        rc == IMS_ELIMIT ? "Too Many Contacts" : "Bad Contact", NULL);
        return;
    }
    struct sip_auth cred;
    bool have = cscf_credentials(m, &cred);
    if (have && cred.username.len) {
        /* a control byte is no NAI (RFC 4282); a NUL would cut the copy
         * below to another IMPI, "" at worst (fuzz_cscf) */
        if (cred.username.len >= sizeof(impi) || ims_str_has_ctl(cred.username)) {
            ims_proxy_reply(r, 400, "Bad Authorization", NULL);
            return;
        }
        ims_str_copy(cred.username, impi, sizeof(impi));
    } else if (cscf_impi_of(&m->to.uri, impi, sizeof(impi)) != 0) {
        ims_proxy_reply(r, 403, "No Private Identity", NULL);
        return;
    }
    if (cscf_impi_rate_reply(g, r, impi)) /* lockout.c: [limits] impi_rate */
        return;
    struct sc_txn *t = txn_new();
    if (!t) {
        ims_proxy_reply(r, 503, "Out Of Memory", NULL);
        return;
    }
    t->r = r;
    t->pol = g->pol;
    ims_cstr_copy(impu, t->impu, sizeof(t->impu));
    ims_cstr_copy(impi, t->impi, sizeof(t->impi));
    cscf_pend_add(w, &t->pend, txn_free);
    ims_proxy_req_hold(r);
    ims_str btok;
    if (cscf_bearer_on(g) && cscf_bearer_token(m, &btok)) {
        bearer_start(t, btok); /* RFC 8898: a Keystone token instead of Digest */
        return;
    }

    if (have && tls_bound(w, r, &cred, t->impi, t->impu)) {
        LOG_I("scscf", "event=credentials impi=%s impu=%s verdict=%d by=tls-yes", t->impi,
              t->impu, (int)IMS_AUTH_OK);
        cscf_audit_auth(txn_src(t, m), t->impi, t->impu, IMS_AUTH_OK); /* audit: success */
        after_auth(t, m);
        return;
    }
    char scheme[32];
    scheme_hint(g, &cred, have, scheme, sizeof(scheme), &t->asked);
    t->default_hint = strcmp(scheme, "Unknown") == 0;
    struct ims_auth_resync rs;
    enum ims_auth_verdict verdict = IMS_AUTH_NO_CHALLENGE;
    if (have && cred.nonce.len && cred.response.len) {
        /* locked out: what a wrong password gets */
        if (cscf_lockout_check(g, txn_src(t, m), t->impi)) {
            finish(t, 403, "Authentication Failed", IMS_STR_NULL);
            return;
        }
        rc = ims_auth_verify(g->auth, &cred, m->method_name, cscf_now_ms(), &verdict, &rs, NULL);
        if (rc) {
            finish(t, 500, NULL, IMS_STR_NULL);
            return;
        }
        LOG_I("scscf", "event=credentials impi=%s impu=%s verdict=%d", t->impi, t->impu,
              (int)verdict);
        cscf_audit_auth(txn_src(t, m), t->impi, t->impu, verdict); /* audit */
        cscf_lockout_note(g, txn_src(t, m), t->impi, t->impu, verdict); /* lockout.c */
    }
    switch (verdict) {
    case IMS_AUTH_OK:
        after_auth(t, m);
        return;
    case IMS_AUTH_TOO_MANY:
        finish(t, 403, "Authentication Failed", IMS_STR_NULL);
        return;
    case IMS_AUTH_MALFORMED:
        finish(t, 400, "Bad Authorization", IMS_STR_NULL);
        return;
    case IMS_AUTH_RESYNC:
        t->stage = ST_MAR;
        t->default_hint = false;
        rc = send_mar(t, "Digest-AKAv1-MD5", &rs);
        ims_wipe(&rs, sizeof(rs));
        break;
    case IMS_AUTH_STALE:
        t->stale = true;
        /* fall through */
    default:
        t->stage = ST_MAR;
        rc = send_mar(t, scheme, NULL);
        break;
    }
    if (rc) {
        LOG_W("scscf", "event=mar_failed impi=%s err=%s", t->impi, ims_strerror(rc));
        hss_unavailable(t);
    }
}

/* ------------------------------------------------------------ dispatch */

/* Every request but REGISTER goes to the sessions hook (session.c by
 * default). */
void cscf_scscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m)
{
    struct cscf_worker *w = ctx;
    if (m->method == SIP_M_REGISTER) {
        sc_register(w, r, m);
        return;
    }
    /* SUBSCRIBE Event: reg for a registration of ours (RFC 3680, regevent.c) */
    if (m->method == SIP_M_SUBSCRIBE && cscf_regevent_request(w, r, m))
        return;
    w->g->s_hook(w->g->s_hook_ctx, r, m);
}

/* ------------------------------------------------------------ expiry */

static void expired(const char *impu, const char *impi, void *ctx)
{
    struct cscf_worker *w = ctx;
    int rc = cscf_dereg_send(w, impu, impi, CX_SAT_TIMEOUT_DEREGISTRATION);
    LOG_I("scscf", "event=registration_expired impu=%s impi=%s sar=%s", impu, impi,
          rc ? ims_strerror(rc) : "sent");
    cscf_regevent_changed(w, impu, "expired"); /* reg-event NOTIFYs (regevent.c) */
    cscf_tp_expired(w, impu, impi); /* third-party REGISTER, Expires: 0 */
}

void cscf_scscf_sweep(struct cscf_worker *w, int64_t now_s)
{
    ims_loc_expire(w->g->loc, w->idx, w->g->nworkers, now_s, expired, w);
    cscf_dereg_sweep(w, now_s); /* deregistrations the HSS has not heard of yet */
    cscf_regevent_sweep(w, now_s); /* reg-event subscriptions (regevent.c) */
    ims_auth_expire(w->g->auth, w->idx, w->g->nworkers, now_s * 1000);
    if (w->g->lockout)
        cscf_lockout_expire(w->g->lockout, w->idx, w->g->nworkers, cscf_mono_ms());
}

/* ------------------------------------------------------------ setup */

int cscf_scscf_init(struct ims_cscf *g, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = g->cfg;
    g->pol = (struct ims_reg_policy){
        .default_expires = cfg->scscf_default_expires,
        .min_expires = cfg->scscf_min_expires,
        .max_expires = cfg->scscf_max_expires,
        .max_contacts = cfg->scscf_max_contacts,
    };
    const char *algs = cfg->scscf_digest_algorithms ? cfg->scscf_digest_algorithms
                                                    : "SHA-256,MD5";
    struct ims_cur cur = { algs, algs + strlen(algs) };
    while (!ims_cur_eof(&cur) && g->nalgs < 3) {
        ims_str item;
        enum ims_digest_alg a;
        bool sess;
        ims_cur_until(&cur, ",", &item);
        ims_cur_char(&cur, ',');
        if (ims_digest_alg_parse(ims_str_trim(item), &a, &sess) == 0 && !sess &&
            !alg_allowed(g, a))
            g->algs[g->nalgs++] = (int)a;
    }
    int rc = ims_loc_new(cfg->scscf_max_registrations, CSCF_SHARDS, &g->loc);
    if (rc == 0) {
        struct ims_auth_cfg ac = {
            .nonce_ttl_s = cfg->scscf_nonce_ttl,
            .max_failures = cfg->scscf_auth_max_failures,
            .max_entries = cfg->scscf_max_registrations,
            .nshards = CSCF_SHARDS,
        };
        rc = ims_auth_new(&ac, &g->auth);
    }
    if (rc == 0)
        rc = cscf_lockout_init(g); /* brute-force lockout (lockout.c) */
    if (rc == 0)
        rc = cscf_tp_init(g); /* third-party REGISTER (thirdparty.c) */
    if (rc == 0)
        rc = cscf_regevent_init(g); /* reg-event subscriptions (regevent.c) */
    if (rc) {
        snprintf(err, errsz, "scscf: cannot create the location store: %s", ims_strerror(rc));
        return rc;
    }
    g->s_hook = ims_cscf_scscf_default;
    g->s_hook_ctx = g;
    return 0;
}

void cscf_scscf_fini(struct ims_cscf *g)
{
    cscf_tp_fini(g); /* third-party REGISTER (thirdparty.c) */
    cscf_regevent_fini(g); /* reg-event subscriptions (regevent.c) */
    ims_auth_free(g->auth);
    cscf_lockout_free(g->lockout);
    g->lockout = NULL;
    ims_loc_free(g->loc);
    ims_buf_free(&g->lapsed);
    g->auth = NULL;
    g->loc = NULL;
}
