/* icscf.c - the I-CSCF (TS 24.229 §5.3): the home network's entry.
 *
 *   REGISTER     -> UAR (User-Authorization-Type from the expiry: all zero ->
 *                   DE_REGISTRATION) -> the S-CSCF the UAA names
 *                   (Server-Name), or one picked from Server-Capabilities
 *                   (the Server-Names inside it first, then [icscf] scscf
 *                   entries holding every mandatory capability, most optional
 *                   ones first); fail over to the next candidate on 408/503/no
 *                   answer, and when the named S-CSCF fails, ask again with
 *                   REGISTRATION_AND_CAPABILITIES (TS 24.229 §5.3.1.3).
 *   initial request to a public identity (INVITE, MESSAGE, ...)
 *                -> LIR -> the S-CSCF of the user (Server-Name), or 404
 *                   (unknown) / 480 (not registered, no unregistered service).
 *   anything else (in-dialog, routed by Route, for us) -> the static router.
 *
 * HSS errors: 5001/5002 -> an S-CSCF's decoy challenge (REGISTER, see
 * unknown_user) / 404 (LIR), 5003/5004 and other
 * refusals -> 403, no answer in [icscf] hss_timeout_ms, busy or
 * DIAMETER_UNABLE_TO_COMPLY -> [icscf] hss_error_status (503 with
 * Retry-After, or 480).  A request waits for the HSS at most that long:
 * the Cx client's deadline ends it, and its state goes with the answer. */
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"

struct ic_txn {
    struct cscf_pend pend; /* first: the worker's list */
    struct proxy_req *r;
    bool reg;
    int auth_type;
    bool caps_asked;       /* a UAR with REGISTRATION_AND_CAPABILITIES went out */
    bool untrusted_ip;     /* integrity-protected from outside the trust domain */
    char impi[IMS_REG_ID_MAX], impu[IMS_REG_ID_MAX], visited[IMS_REG_ID_MAX];
    size_t ncand, cur;
    size_t nfailed;
    /* An S-CSCF that answered 503 is alive but cannot serve now (its HSS
     * or Keystone is down): when no other S-CSCF is left, the UE gets that
     * 503 and its Retry-After rather than 600 */
    bool busy;
    unsigned busy_retry_after;
    /* Last, and not zeroed (txn_new): 20 KiB of which a request mostly
     * uses one entry; only [0, ncand) and [0, nfailed) are ever read. */
    char cand[CSCF_MAX_CAND][CSCF_URI_MAX];
    char failed[CSCF_MAX_CAND][CSCF_URI_MAX]; /* S-CSCFs that did not answer */
};

static void txn_free(struct cscf_pend *p)
{
    ims_free(p);
}

static void txn_done(struct ic_txn *t)
{
    cscf_pend_del(&t->pend);
    ims_free(t);
}

/* Ends t with a reply and releases the request (the Cx hold). */
static void finish(struct ic_txn *t, int status, const char *reason, ims_str hdrs)
{
    struct proxy_req *r = t->r;
    if (!ims_proxy_req_final_sent(r))
        ims_proxy_reply(r, status, reason, &(struct proxy_reply_opts){ .hdrs = hdrs });
    ims_proxy_req_release(r);
    txn_done(t);
}

static void hss_unavailable(struct ic_txn *t)
{
    const struct ims_cfg *cfg = t->pend.w->g->cfg;
    char ra[32];
    if (cfg->icscf_hss_error_status == 480)
        finish(t, 480, "HSS Unavailable", IMS_STR_NULL);
    else
        finish(t, 503, "HSS Unavailable",
               cscf_retry_after(cfg->icscf_retry_after, ra, sizeof(ra)));
}

static bool was_failed(const struct ic_txn *t, const char *uri)
{
    for (size_t i = 0; i < t->nfailed; i++)
        if (strcmp(t->failed[i], uri) == 0)
            return true;
    return false;
}

static void add_cand(struct ic_txn *t, ims_str uri)
{
    if (!uri.len || uri.len >= CSCF_URI_MAX || t->ncand == CSCF_MAX_CAND)
        return;
    char u[CSCF_URI_MAX];
    ims_str_copy(uri, u, sizeof(u));
    if (was_failed(t, u))
        return;
    for (size_t i = 0; i < t->ncand; i++)
        if (strcmp(t->cand[i], u) == 0)
            return;
    ims_cstr_copy(u, t->cand[t->ncand++], CSCF_URI_MAX);
}

static bool has_cap(const uint32_t *caps, size_t n, uint32_t c)
{
    for (size_t i = 0; i < n; i++)
        if (caps[i] == c)
            return true;
    return false;
}

/* TS 29.228 §6.7 / TS 24.229 §5.3.1.2: Server-Names named inside
 * Server-Capabilities first, then the configured S-CSCFs that have every
 * mandatory capability, those with more of the optional ones first. */
static void select_by_caps(struct ic_txn *t, const struct cx_caps *caps)
{
    const struct ims_cfg *cfg = t->pend.w->g->cfg;
    for (size_t i = 0; i < caps->n_names && i < CX_MAX_NAMES; i++)
        add_cand(t, caps->names[i]);
    int score[IMS_CFG_MAX_SCSCF];
    size_t order[IMS_CFG_MAX_SCSCF], n = 0;
    for (size_t i = 0; i < cfg->nicscf_scscf; i++) {
        const struct ims_cfg_scscf *s = &cfg->icscf_scscf[i];
        bool ok = true;
        for (size_t k = 0; k < caps->n_mand && k < CX_MAX_CAPS && ok; k++)
            ok = has_cap(s->caps, s->ncaps, caps->mand[k]);
        if (!ok)
            continue;
        int sc = 0;
        for (size_t k = 0; k < caps->n_opt && k < CX_MAX_CAPS; k++)
            sc += has_cap(s->caps, s->ncaps, caps->opt[k]);
        /* insertion sort: stable, most optional capabilities first */
        size_t j = n++;
        while (j > 0 && score[order[j - 1]] < sc) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        score[i] = sc;
    }
    for (size_t i = 0; i < n; i++)
        add_cand(t, ims_str_cstr(cfg->icscf_scscf[order[i]].uri));
}

static enum proxy_rsp_action fwd_response(struct proxy_req *r, int status,
                                          const struct sip_msg *rsp, void *ud);

/* A held request that was answered or CANCELled meanwhile (the Cx answer or
 * a deferred retry came too late): let it go.  True when it did. */
static bool abandoned(struct ic_txn *t)
{
    struct proxy_req *r = t->r;
    if (!ims_proxy_req_final_sent(r) && !ims_proxy_req_cancelled(r))
        return false;
    ims_proxy_req_release(r);
    txn_done(t);
    return true;
}

/* Forwards to the current candidate.  Called with the request held (Cx or
 * defer); the forward keeps it once started. */
static void forward_current(struct ic_txn *t)
{
    struct proxy_req *r = t->r;
    if (abandoned(t))
        return;
    if (t->cur >= t->ncand) {
        if (t->busy) {
            char ra[32];
            finish(t, 503, "Service Unavailable",
                   cscf_retry_after(t->busy_retry_after, ra, sizeof(ra)));
            return;
        }
        /* TS 24.229 §5.3.1.2: no S-CSCF can be selected */
        finish(t, t->reg ? 600 : 480, "No S-CSCF Available", IMS_STR_NULL);
        return;
    }
    /* TS 24.229 §7.2A.2: only a P-CSCF of ours may tell the S-CSCF how a
     * REGISTER was protected; anyone else's word is taken out */
    struct ims_buf add;
    ims_buf_init(&add, 4096);
    uint16_t del[1] = { SIP_H_AUTHORIZATION };
    const struct sip_msg *m = t->untrusted_ip ? ims_proxy_req_msg(r) : NULL;
    if (t->untrusted_ip && (!m || cscf_auth_integrity_set(m, NULL, &add) != 0)) {
        ims_buf_free(&add);
        finish(t, 500, "Too Many Header Edits", IMS_STR_NULL);
        return;
    }
    struct proxy_fwd f = {
        .next_hop = ims_str_cstr(t->cand[t->cur]),
        .add_hdrs = ims_buf_str(&add),
        .del_hdrs = m ? del : NULL,
        .ndel = m ? 1 : 0,
        .on_response = fwd_response,
        .ud = t,
        /* TS 24.229 §5.3.1.3: no answer is a failure too; do not wait for
         * Timer B/F (32 s) before trying the next S-CSCF */
        .noanswer_ms = t->pend.w->g->cfg->icscf_scscf_timeout_ms,
        .no_rr = true, /* TS 24.229 §5.3.2.1: the I-CSCF need not stay on the path */
    };
    LOG_I("icscf", "event=forward method=%s impu=%s scscf=%s", t->reg ? "REGISTER" : "request",
          t->impu, t->cand[t->cur]);
    int rc = ims_proxy_forward(r, &f);
    ims_buf_free(&add);
    if (rc) {
        /* the S-CSCF is what this line adds; the proxy logs the failure */
        LOG_I("icscf", "event=forward_failed scscf=%s err=%s", t->cand[t->cur],
              ims_strerror(rc));
        ims_proxy_forward_failed(r, rc); /* 503 + Retry-After, or 500 */
        /* releases r; it answers only if that reply could not be sent */
        finish(t, 500, "Forwarding Failed", IMS_STR_NULL);
        return;
    }
    ims_proxy_req_release(r); /* the forward holds it now */
}

/* ------------------------------------------------------------ UAR / LIR */

static void on_uaa(int rc, const struct dia_ans *ans, void *ud);

static int send_uar(struct ic_txn *t, int type)
{
    struct cx_uar q;
    memset(&q, 0, sizeof(q));
    q.impi = ims_str_cstr(t->impi);
    q.impu = ims_str_cstr(t->impu);
    q.visited = ims_str_cstr(t->visited);
    q.auth_type = type;
    DIA_SET(&q, CX_UAR_IMPI);
    DIA_SET(&q, CX_UAR_IMPU);
    DIA_SET(&q, CX_UAR_VISITED);
    DIA_SET(&q, CX_UAR_TYPE);
    return ims_cx_send(t->pend.w->icx, DIA_CMD_UAR, &q, on_uaa, t);
}

/* Enumeration resistance (docs/security.md): a REGISTER for an identity the
 * HSS does not know goes to an S-CSCF like any other, which challenges it
 * exactly as it would a known Digest user (one UAR here, MARs there: the
 * same round trips) and never accepts a response.  The S-CSCF: one of
 * [icscf] scscf, picked by a hash of the IMPI so that its retries meet
 * their challenge, else this process's own; with neither, 403 as before. */
static void unknown_user(struct ic_txn *t)
{
    const struct ims_cscf *g = t->pend.w->g;
    size_t n = g->cfg->nicscf_scscf;
    uint32_t h = 2166136261u;
    for (const char *c = t->impi; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    for (size_t i = 0; i < n; i++)
        add_cand(t, ims_str_cstr(g->cfg->icscf_scscf[(h + i) % n].uri));
    if (g->s_on)
        add_cand(t, ims_str_cstr(g->s_uri));
    if (!t->ncand) {
        LOG_W("icscf", "event=unknown_user_no_scscf impi=%s", t->impi);
        finish(t, 403, "Unknown User", IMS_STR_NULL);
        return;
    }
    t->caps_asked = true; /* no UAR for capabilities on failover: its own list only */
    forward_current(t);
}

static void on_uaa(int rc, const struct dia_ans *ans, void *ud)
{
    struct ic_txn *t = ud;
    if (abandoned(t))
        return;
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    LOG_I("icscf", "event=uaa impu=%s impi=%s outcome=%d rc=%s result=%u", t->impu, t->impi,
          (int)o, ims_strerror(rc), ans ? dia_ans_code(ans, NULL) : 0);
    switch (o) {
    case IMS_CX_OK:
        break;
    case IMS_CX_USER_UNKNOWN:
    case IMS_CX_IDENTITIES_DONT_MATCH:
        unknown_user(t);
        return;
    case IMS_CX_ROAMING_NOT_ALLOWED:
        finish(t, 403, "Roaming Not Allowed", IMS_STR_NULL);
        return;
    case IMS_CX_NOT_REGISTERED:
        finish(t, 403, "Not Registered", IMS_STR_NULL);
        return;
    case IMS_CX_AUTH_REJECTED:
    case IMS_CX_SCHEME_UNSUPPORTED:
    case IMS_CX_REFUSED:
        finish(t, 403, "Forbidden By HSS", IMS_STR_NULL);
        return;
    case IMS_CX_UNAVAILABLE:
        hss_unavailable(t);
        return;
    }
    if (DIA_HAS(ans, DIA_ANS_SERVER) && ans->server_name.len)
        add_cand(t, ans->server_name);
    if (DIA_HAS(ans, DIA_ANS_CAPS))
        select_by_caps(t, &ans->caps);
    forward_current(t);
}

static void on_lia(int rc, const struct dia_ans *ans, void *ud)
{
    struct ic_txn *t = ud;
    if (abandoned(t))
        return;
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    LOG_I("icscf", "event=lia impu=%s outcome=%d rc=%s result=%u", t->impu, (int)o,
          ims_strerror(rc), ans ? dia_ans_code(ans, NULL) : 0);
    switch (o) {
    case IMS_CX_OK:
        break;
    case IMS_CX_USER_UNKNOWN:
        finish(t, 404, "Unknown User", IMS_STR_NULL);
        return;
    case IMS_CX_NOT_REGISTERED:
        finish(t, 480, "Not Registered", IMS_STR_NULL);
        return;
    case IMS_CX_UNAVAILABLE:
        hss_unavailable(t);
        return;
    default:
        finish(t, 403, "Forbidden By HSS", IMS_STR_NULL);
        return;
    }
    if (DIA_HAS(ans, DIA_ANS_SERVER) && ans->server_name.len)
        add_cand(t, ans->server_name);
    if (DIA_HAS(ans, DIA_ANS_CAPS))
        select_by_caps(t, &ans->caps);
    forward_current(t);
}

/* ------------------------------------------------------------ failover */

/* Remembers a 503 from an S-CSCF and the longest Retry-After it asked for
 * (RFC 3261 §20.33: delta-seconds first, comment and params ignored). */
static void note_busy(struct ic_txn *t, const struct sip_msg *rsp)
{
    t->busy = true;
    const struct sip_hdr *h = ims_sip_hdr_first(rsp, SIP_H_RETRY_AFTER);
    if (!h)
        return;
    unsigned v = 0;
    size_t i = 0;
    while (i < h->value.len && h->value.p[i] >= '0' && h->value.p[i] <= '9' && v < 86400)
        v = v * 10 + (unsigned)(h->value.p[i++] - '0');
    if (i > 0 && v > t->busy_retry_after)
        t->busy_retry_after = v > 86400 ? 86400 : v;
}

static void retry_next(struct cscf_worker *w, struct proxy_req *r, void *arg)
{
    struct ic_txn *t = arg;
    ims_proxy_req_hold(r); /* forward_current/finish release it */
    if (t->cur < t->ncand) {
        forward_current(t);
        return;
    }
    /* the S-CSCF the HSS named failed: TS 24.229 §5.3.1.3, ask for the
     * capabilities and pick another */
    t->caps_asked = true;
    int rc = send_uar(t, CX_UAT_REG_AND_CAPABILITIES);
    if (rc) {
        LOG_W("icscf", "event=uar_failed impu=%s err=%s", t->impu, ims_strerror(rc));
        hss_unavailable(t);
    }
}

static enum proxy_rsp_action fwd_response(struct proxy_req *r, int status,
                                          const struct sip_msg *rsp, void *ud)
{
    struct ic_txn *t = ud;
    if (status < 200)
        return PROXY_RSP_RELAY;
    if (status >= 300 && (status == 408 || status == 503) && !ims_proxy_req_cancelled(r)) {
        /* RFC 3261 §16.7 failover, across S-CSCFs (the core only fails over
         * across one next hop's addresses) */
        if (t->nfailed < CSCF_MAX_CAND)
            ims_str_copy(ims_str_cstr(t->cand[t->cur]), t->failed[t->nfailed++], CSCF_URI_MAX);
        if (status == 503 && rsp)
            note_busy(t, rsp);
        t->cur++;
        bool more = t->cur < t->ncand || (t->reg && !t->caps_asked);
        if (more && cscf_defer(t->pend.w, r, retry_next, t) == 0) {
            LOG_I("icscf", "event=failover impu=%s failed=%s status=%d", t->impu,
                  t->failed[t->nfailed - 1], status);
            return PROXY_RSP_TAKEN;
        }
        if (status == 503 && rsp) {
            /* the last S-CSCF's own 503 (with its Retry-After) goes on */
            ims_proxy_relay(r, rsp, IMS_STR_NULL, NULL, 0);
            txn_done(t);
            return PROXY_RSP_TAKEN;
        }
    }
    txn_done(t);
    return PROXY_RSP_RELAY;
}

/* ------------------------------------------------------------ the app */

/* TS 24.229 §5.3.1.2: de-registration when every binding asks for 0. */
static int uar_type(const struct sip_msg *m)
{
    struct ims_reg_binding b[IMS_REG_MAX_CONTACTS];
    size_t n = 0;
    bool star = false;
    long hdr = cscf_expires_hdr(m);
    if (cscf_contacts(m, b, IMS_REG_MAX_CONTACTS, &n, &star) != 0)
        return CX_UAT_REGISTRATION; /* the S-CSCF answers 400 */
    if (star)
        return hdr == 0 ? CX_UAT_DE_REGISTRATION : CX_UAT_REGISTRATION;
    if (n == 0)
        return CX_UAT_REGISTRATION;
    for (size_t i = 0; i < n; i++) {
        long e = b[i].expires >= 0 ? b[i].expires : hdr;
        if (e != 0)
            return CX_UAT_REGISTRATION;
    }
    return CX_UAT_DE_REGISTRATION;
}

static struct ic_txn *txn_new(struct cscf_worker *w, struct proxy_req *r)
{
    struct ic_txn *t = ims_alloc(sizeof(*t));
    if (!t)
        return NULL;
    memset(t, 0, offsetof(struct ic_txn, cand));
    t->r = r;
    cscf_pend_add(w, &t->pend, txn_free);
    return t;
}

static void ic_register(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    const struct ims_cfg *cfg = w->g->cfg;
    char impu[IMS_REG_ID_MAX], impi[IMS_REG_ID_MAX];
    if (cscf_impu_of(&m->to.uri, impu, sizeof(impu)) != 0) {
        ims_proxy_reply(r, 400, "Bad To", NULL);
        return;
    }
    struct sip_auth cred;
    if (cscf_credentials(m, &cred) && cred.username.len && cred.username.len < sizeof(impi))
        ims_str_copy(cred.username, impi, sizeof(impi));
    else if (cscf_impi_of(&m->to.uri, impi, sizeof(impi)) != 0) {
        ims_proxy_reply(r, 403, "No Private Identity", NULL);
        return;
    }
    struct ic_txn *t = txn_new(w, r);
    if (!t) {
        ims_proxy_reply(r, 503, "Out Of Memory", NULL);
        return;
    }
    t->reg = true;
    /* the hop first: in one process every REGISTER comes from our P-CSCF,
     * and then its credentials need no second parse here */
    t->untrusted_ip = !cscf_hop_trusted(w->g, ims_proxy_req_rx(r)) &&
                      cscf_auth_integrity_claimed(m);
    if (t->untrusted_ip)
        LOG_I("icscf", "event=integrity_protected_removed impu=%s call_id=%.*s", impu,
              IMS_SF(m->call_id));
    ims_cstr_copy(impu, t->impu, sizeof(t->impu));
    ims_cstr_copy(impi, t->impi, sizeof(t->impi));
    /* RFC 7315 P-Visited-Network-ID, unquoted; none: the home network */
    const struct sip_hdr *v = ims_sip_hdr_first(m, SIP_H_P_VISITED_NETWORK_ID);
    ims_str vn = v ? ims_str_trim(v->value) : ims_str_cstr(cfg->dia_realm);
    long comma = ims_str_chr(vn, ',');
    if (comma >= 0)
        vn = ims_str_trim(ims_str_make(vn.p, (size_t)comma));
    if (vn.len >= 2 && vn.p[0] == '"' && vn.p[vn.len - 1] == '"')
        vn = ims_str_make(vn.p + 1, vn.len - 2);
    ims_str_copy(vn.len ? vn : ims_str_cstr(cfg->dia_realm), t->visited, sizeof(t->visited));
    t->auth_type = uar_type(m);
    ims_proxy_req_hold(r);
    int rc = send_uar(t, t->auth_type);
    if (rc) {
        LOG_W("icscf", "event=uar_failed impu=%s err=%s", t->impu, ims_strerror(rc));
        hss_unavailable(t);
    }
}

static void ic_locate(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    char impu[IMS_REG_ID_MAX];
    if (cscf_impu_of(&m->ruri, impu, sizeof(impu)) != 0) {
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    struct ic_txn *t = txn_new(w, r);
    if (!t) {
        ims_proxy_reply(r, 503, "Out Of Memory", NULL);
        return;
    }
    ims_cstr_copy(impu, t->impu, sizeof(t->impu));
    struct cx_lir q;
    memset(&q, 0, sizeof(q));
    q.impu = ims_str_cstr(t->impu);
    DIA_SET(&q, CX_LIR_IMPU);
    ims_proxy_req_hold(r);
    int rc = ims_cx_send(w->icx, DIA_CMD_LIR, &q, on_lia, t);
    if (rc) {
        LOG_W("icscf", "event=lir_failed impu=%s err=%s", t->impu, ims_strerror(rc));
        hss_unavailable(t);
    }
}

void cscf_icscf_request(void *ctx, struct proxy_req *r, const struct sip_msg *m)
{
    struct cscf_worker *w = ctx;
    if (m->method == SIP_M_REGISTER) {
        ic_register(w, r, m);
        return;
    }
    if (m->to.tag.len || ims_proxy_req_to_self(r) || cscf_has_foreign_route(r, m)) {
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    /* a request to a public identity of ours: where is its S-CSCF? */
    ic_locate(w, r, m);
}
