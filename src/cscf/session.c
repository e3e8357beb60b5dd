/* session.c - the S-CSCF's session processing (TS 24.229 §5.4.3, TS 23.218
 * §6, RFC 3608): every request on the S-CSCF's ports but REGISTER.
 *
 *   in-dialog (To tag), for us, routed past us  -> the static router
 *   top Route ours with ";odi=TOKEN"            -> back from an AS: continue
 *                                                  the iFCs where the token says
 *   top Route ours with ";orig" (Service-Route) -> originating: served user =
 *                                                  P-Asserted-Identity
 *   anything else (from the I-CSCF, no Route)   -> terminating: served user =
 *                                                  the Request-URI's IMPU
 *
 * The served user must be registered here (originating: else 403; a barred
 * identity: 403 originating, 404 terminating); a terminating user who is not
 * registered is taken with SAR UNREGISTERED_USER, whose User-Data stands in
 * for the registration's profile.  For the served user the iFCs of the
 * session case are walked
 * in priority order (ifc.h); the first match sends the request to its AS
 * (ISC, TS 24.229 §5.4.3.2 step 4):
 *   Route: <AS;lr>, <sip:us;lr[;orig];odi=TOKEN>
 * and the AS either answers it (a final response, relayed) or sends it back
 * along the second Route, where the token tells where to continue.  An AS
 * that does not answer within [scscf] as_timeout_ms, answers 408 or 5xx, or
 * cannot be reached gets the iFC's default handling (TS 23.218 §6.4.3):
 * SESSION_CONTINUED goes on with the next iFC, SESSION_TERMINATED ends the
 * request with that error (408 to an INVITE, 504 to other requests: RFC 4320
 * §4.2; or 500 for an unreachable AS).
 *
 * When no iFC is left:
 *   originating -> a Request-URI of a home domain ([scscf] home_domains) or a
 *                  tel: URI goes to the I-CSCF (LIR finds the terminating
 *                  S-CSCF); others by the static router / RFC 3263;
 *   terminating -> the registered contacts along their Paths, one after
 *                  another (highest q first, then the latest expiry: the
 *                  next after a 408, 480, 486, 488 or 5xx); not registered
 *                  (no AS took it): 480.  No parallel forking
 *                  (docs/internals/cscf.md); an RFC 5626 flow answered
 *                  with 430 makes way for the next flow of the same
 *                  instance.
 *
 * The ODI token is stateless: "<case><next iFC, 2 hex><expiry, 8 hex>.
 * <hex(served IMPU)>.<hex(HMAC-SHA-256(process key, all that)[0..11])>".
 * Nothing is kept per AS hop beyond the pending forward, so an AS that never
 * sends the request back costs nothing; the MAC stops anyone but us from
 * minting one (a forged token gets 403), and the expiry bounds replays.  It
 * is not bound to the Call-ID: an AS acting as a B2BUA sends the request
 * back with its own.  The key is random per process: requests in flight
 * through an AS do not survive an S-CSCF restart.
 *
 * Ownership: a struct sess (one AS forward in progress) is linked in its
 * worker's pending list from the forward until its final response, and is
 * then freed by the response callback or the deferred continuation; it
 * borrows the request: the forward keeps it alive until the final response,
 * and cscf_defer() holds it across the loop turn before a continuation.  A
 * struct unreg (SAR UNREGISTERED_USER in flight) holds its request until the
 * Cx callback (answer or deadline).  At shutdown ims_cscf_free() frees what
 * is left of both. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "crypto/encode.h"
#include "crypto/mac.h"
#include "cscf/cdiv.h" /* Ut hook */
#include "cscf/cscf_int.h"
#include "cscf/ifc.h"
#include "cscf/privacy.h"
#include "cscf/profile.h"
#include "keystone/keystone.h"

#define ODI_MAC_LEN 12         /* bytes of the HMAC kept: 96 bits */
#define ODI_TTL_S 300          /* a token older than this is refused */
#define ODI_MAX (1 + 2 + 8 + 1 + 2 * IMS_REG_ID_MAX + 1 + 2 * ODI_MAC_LEN + 1)

enum sess_dir { DIR_ORIG = 'o', DIR_TERM = 't' };

/* Where a served user's iFC walk stands. */
struct walk {
    enum sess_dir dir;
    size_t next;                 /* the first iFC index still to evaluate */
    char served[IMS_REG_ID_MAX]; /* the served IMPU, canonical (cscf_impu_of) */
};

/* One AS forward in progress. */
struct sess {
    struct cscf_pend pend; /* first: the worker's list */
    struct walk wk;        /* wk.next: the iFC after the one being tried */
    int default_handling;  /* of the iFC being tried: 0 CONTINUED, 1 TERMINATED */
    char as[IMS_REG_URI_MAX];
};

/* ------------------------------------------------------------ helpers */

static struct cscf_worker *worker_of(struct ims_cscf *g, struct proxy_req *r)
{
    unsigned i = ims_proxy_worker(ims_proxy_req_proxy(r));
    return i < g->nworkers ? &g->w[i] : NULL;
}

static void sess_free(struct cscf_pend *p)
{
    ims_free(p);
}

static void sess_done(struct sess *s)
{
    cscf_pend_del(&s->pend);
    sess_free(&s->pend);
}

static void reply(struct proxy_req *r, int status, const char *reason)
{
    if (!ims_proxy_req_final_sent(r))
        ims_proxy_reply(r, status, reason, NULL);
}

/* "host:port" of our S-CSCF URI (for the ODI Route). */
static int our_hostport(const struct ims_cscf *g, char *out, size_t cap)
{
    struct sip_uri u;
    if (ims_sip_parse_uri(ims_str_cstr(g->s_uri), &u) != 0 || !u.host.len)
        return IMS_EINVAL;
    int n = snprintf(out, cap, "%.*s:%u", IMS_SF(u.host), u.port ? (unsigned)u.port : 5060u);
    return n > 0 && (size_t)n < cap ? 0 : IMS_ELIMIT;
}

/* ------------------------------------------------------------ ODI tokens */

/* Random, for this process's life (kept, never freed: tokens in flight
 * must verify until the end); NULL when there was no randomness. */
static struct ims_mac *odi_key;
static pthread_once_t odi_once = PTHREAD_ONCE_INIT;

static void odi_key_init(void)
{
    uint8_t k[32];
    if (RAND_bytes(k, sizeof(k)) == 1 && ims_mac_new(k, sizeof(k), &odi_key) != 0)
        odi_key = NULL;
    ims_wipe(k, sizeof(k));
}

static bool odi_mac(ims_str data, uint8_t mac[IMS_MAC_LEN])
{
    pthread_once(&odi_once, odi_key_init);
    return odi_key && ims_mac_sha256(odi_key, data.p, data.len, mac) == 0;
}

/* The token for continuing wk after its AS.  0, IMS_ELIMIT, IMS_EINVAL. */
static int odi_make(const struct walk *wk, int64_t now, char *out, size_t cap)
{
    size_t sl = strlen(wk->served);
    if (wk->next > 0xff || sl >= IMS_REG_ID_MAX || cap < ODI_MAX)
        return IMS_ELIMIT;
    size_t k = (size_t)snprintf(out, cap, "%c%02x%08llx.", (char)wk->dir, (unsigned)wk->next,
                                (unsigned long long)((now + ODI_TTL_S) & 0xffffffffu));
    k += ims_hex_encode(wk->served, sl, out + k);
    uint8_t mac[IMS_MAC_LEN];
    if (!odi_mac(ims_str_make(out, k), mac))
        return IMS_EINVAL;
    out[k++] = '.';
    ims_hex_encode(mac, ODI_MAC_LEN, out + k);
    return 0;
}

/* Checks a token and fills wk.  0, IMS_EPROTO (malformed, forged or
 * expired). */
static int odi_check(ims_str tok, int64_t now, struct walk *wk)
{
    size_t maclen = 2 * ODI_MAC_LEN;
    if (tok.len < 12 + 2 + 1 + maclen || tok.len >= ODI_MAX || tok.p[11] != '.' ||
        tok.p[tok.len - maclen - 1] != '.')
        return IMS_EPROTO;
    ims_str signed_part = ims_str_make(tok.p, tok.len - maclen - 1);
    uint8_t mac[IMS_MAC_LEN], got[ODI_MAC_LEN];
    if (!odi_mac(signed_part, mac) ||
        ims_hex_decode(ims_str_make(tok.p + tok.len - maclen, maclen), got, sizeof(got)) != 0 ||
        CRYPTO_memcmp(mac, got, ODI_MAC_LEN) != 0)
        return IMS_EPROTO;
    uint8_t hdr[5];
    if ((tok.p[0] != DIR_ORIG && tok.p[0] != DIR_TERM) ||
        ims_hex_decode(ims_str_make(tok.p + 1, 10), hdr, sizeof(hdr)) != 0)
        return IMS_EPROTO;
    uint32_t exp = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
    /* wrap-safe: the difference of 32-bit times */
    if ((int32_t)(exp - (uint32_t)(now & 0xffffffffu)) < 0)
        return IMS_EPROTO;
    ims_str hs = ims_str_make(tok.p + 12, signed_part.len - 12);
    if (hs.len % 2 || hs.len / 2 >= sizeof(wk->served) ||
        ims_hex_decode(hs, wk->served, hs.len / 2) != 0)
        return IMS_EPROTO;
    wk->served[hs.len / 2] = '\0';
    wk->dir = (enum sess_dir)tok.p[0];
    wk->next = hdr[0];
    return 0;
}

/* ------------------------------------------------------------ routing out */

/* A request's own "Authorization: Bearer" token was for this S-CSCF (RFC
 * 8898; session policy below): it does not travel on to the callee or
 * another network, where it could be replayed.  (An AS on the iFC path does
 * get it: a cloud AS acts with the user's token.) */
static const uint16_t no_authorization[] = { SIP_H_AUTHORIZATION };

static bool strip_bearer(const struct cscf_worker *w, const struct sip_msg *m, struct proxy_fwd *f)
{
    ims_str tok;
    if (!w->ks || !cscf_bearer_token(m, &tok))
        return false;
    f->del_hdrs = no_authorization;
    f->ndel = 1;
    return true;
}

/* Another network, with a token to strip: the static route for the
 * Request-URI's domain ([proxy] route, "*" last), else the Request-URI.
 * true: forwarded or answered. */
static bool bearer_route_out(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    struct proxy_fwd f = { 0 };
    if (cscf_has_foreign_route(r, m) || !strip_bearer(w, m, &f))
        return false; /* a Route set decides: the static router */
    const struct ims_cfg *cfg = w->g->cfg;
    const char *any = NULL, *hop = NULL;
    for (size_t i = 0; i < cfg->nroutes && !hop; i++) {
        if (strcmp(cfg->routes[i].domain, "*") == 0)
            any = any ? any : cfg->routes[i].next_hop;
        else if (m->ruri.host.len && ims_str_caseeq_lit(m->ruri.host, cfg->routes[i].domain))
            hop = cfg->routes[i].next_hop;
    }
    f.next_hop = ims_str_cstr(hop ? hop : any);
    int rc = ims_proxy_forward(r, &f);
    if (rc)
        ims_proxy_forward_failed(r, rc);
    return true;
}

/* Originating, no iFC left (TS 24.229 §5.4.3.2 step 10). */
static void route_orig(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    char ic[CSCF_URI_MAX];
    bool home = m->ruri.scheme == SIP_URI_TEL ||
                (m->ruri.scheme != SIP_URI_OTHER && cscf_home_domain(w->g->cfg, m->ruri.host));
    if (!home || !cscf_icscf_uri(w->g, ic, sizeof(ic))) {
        if (!home && cscf_privacy_route_out(w, r, m)) /* privacy: leaving the trust domain */
            return;
        if (bearer_route_out(w, r, m))
            return; /* the Bearer token stays here */
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    struct proxy_fwd f = { .next_hop = ims_str_cstr(ic) };
    strip_bearer(w, m, &f);
    int rc = ims_proxy_forward(r, &f);
    LOG_I("scscf", "event=orig_to_icscf call_id=%.*s icscf=%s rc=%s", IMS_SF(m->call_id), ic,
          ims_strerror(rc));
    if (rc)
        ims_proxy_forward_failed(r, rc);
}

/* Terminating, no iFC left (TS 24.229 §5.4.3.3 step 9). */
static void route_term(struct cscf_worker *w, struct proxy_req *r, const struct walk *wk)
{
    int rc = ims_cscf_scscf_route_term(w->g, r, ims_str_cstr(wk->served));
    LOG_I("scscf", "event=term_deliver impu=%s rc=%s", wk->served, ims_strerror(rc));
    if (rc == IMS_ENOENT)
        reply(r, 480, "Not Registered");
    else if (rc && !ims_proxy_req_final_sent(r))
        ims_proxy_forward_failed(r, rc);
}

/* ------------------------------------------------------------ ISC */

static void walk_on(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    struct walk *wk);

static void as_continue(struct cscf_worker *w, struct proxy_req *r, void *arg)
{
    struct sess *s = arg;
    struct walk wk = s->wk;
    sess_done(s);
    if (ims_proxy_req_final_sent(r) || ims_proxy_req_cancelled(r))
        return;
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (!m) {
        reply(r, 500, NULL);
        return;
    }
    walk_on(w, r, m, &wk);
}

static enum proxy_rsp_action as_response(struct proxy_req *r, int status,
                                         const struct sip_msg *rsp, void *ud)
{
    struct sess *s = ud;
    if (status < 200)
        return PROXY_RSP_RELAY;
    /* TS 24.229 §5.4.3.2: no answer, 408 or 5xx: the AS failed; anything
     * else is the AS's own answer and goes upstream */
    bool failed = !rsp || status == 408 || (status >= 500 && status < 600);
    LOG_I("scscf", "event=as_response as=%s impu=%s status=%d failed=%d default_handling=%d",
          s->as, s->wk.served, status, failed, failed ? s->default_handling : -1);
    if (!failed || s->default_handling != 0 || ims_proxy_req_cancelled(r) ||
        ims_proxy_req_final_sent(r)) {
        sess_done(s);
        return PROXY_RSP_RELAY;
    }
    /* SESSION_CONTINUED: on with the next iFC, outside this callback */
    if (cscf_defer(s->pend.w, r, as_continue, s) != 0) {
        sess_done(s);
        return PROXY_RSP_RELAY;
    }
    return PROXY_RSP_TAKEN;
}

/* Sends r to f's AS with the Route back to us (TS 24.229 §5.4.3.2 step 4).
 * 0 (forwarded: as_response will run), or an error (nothing sent). */
static int to_as(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                 const struct walk *wk, const struct ims_prof_ifc *f)
{
    struct ims_cscf *g = w->g;
    struct sip_uri as;
    if (!f->server_name || ims_sip_parse_uri(ims_str_cstr(f->server_name), &as) != 0 ||
        (as.scheme != SIP_URI_SIP && as.scheme != SIP_URI_SIPS) || !as.host.len)
        return IMS_EINVAL;
    char hp[CSCF_URI_MAX], odi[ODI_MAX];
    int rc = our_hostport(g, hp, sizeof(hp));
    if (rc == 0)
        rc = odi_make(wk, cscf_now_s(), odi, sizeof(odi));
    if (rc)
        return rc;
    struct ims_buf route;
    ims_buf_init(&route, 8192);
    rc = ims_buf_printf(&route, "Route: <%s%s>, <sip:%s;lr%s;odi=%s>", f->server_name,
                        as.lr ? "" : ";lr", hp, wk->dir == DIR_ORIG ? ";orig" : "", odi);
    /* Route values below ours (none from a P-CSCF or I-CSCF) stay after it */
    uint16_t lport = ims_addr_port(&ims_proxy_req_rx(r)->local);
    bool ours = true;
    struct sip_nameaddr na;
    for (size_t i = 0; rc == 0 && cscf_nth_nameaddr(m, SIP_H_ROUTE, i, &na) == 0; i++) {
        ours = ours && ims_proxy_uri_is_self(ims_proxy_req_proxy(r), &na.uri, lport);
        if (!ours)
            rc = ims_buf_printf(&route, ", <%.*s>", IMS_SF(na.uri.raw));
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(&route, "\r\n");
    struct sess *s = rc == 0 ? ims_calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        ims_buf_free(&route);
        return rc ? rc : IMS_ENOMEM;
    }
    s->wk = *wk;
    s->default_handling = f->default_handling;
    snprintf(s->as, sizeof(s->as), "%s", f->server_name);
    cscf_pend_add(w, &s->pend, sess_free);
    static const uint16_t del[] = { SIP_H_ROUTE };
    struct proxy_fwd fw = {
        .next_hop = as.raw,
        .add_hdrs = ims_buf_str(&route),
        .del_hdrs = del,
        .ndel = 1,
        .on_response = as_response,
        .ud = s,
        /* TS 24.229 §5.4.3.2: an AS that does not answer gets the default
         * handling, long before Timer B/F */
        .noanswer_ms = g->cfg->scscf_as_timeout_ms,
    };
    rc = ims_proxy_forward(r, &fw);
    ims_buf_free(&route);
    LOG_I("scscf", "event=to_as call_id=%.*s impu=%s case=%c ifc=%zu as=%s rc=%s",
          IMS_SF(m->call_id), wk->served, (char)wk->dir, wk->next - 1, f->server_name,
          ims_strerror(rc));
    if (rc)
        sess_done(s);
    return rc;
}

/* Evaluates the served user's iFCs (profile prof, which may be NULL) from
 * wk->next on and forwards to the first matching AS, or, none left, routes
 * the request on. */
static void walk_profile(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                         struct walk *wk, const struct ims_profile *prof, bool registered)
{
    const struct ims_service_profile *sp = ims_profile_find(prof, ims_str_cstr(wk->served));
    struct ims_ifc_ctx c = {
        .session_case = wk->dir == DIR_ORIG ? IMS_SESSION_CASE_ORIGINATING
                        : registered        ? IMS_SESSION_CASE_TERMINATING_REGISTERED
                                            : IMS_SESSION_CASE_TERMINATING_UNREGISTERED,
        .registered = registered,
    };
    while (sp && wk->next < sp->nifc) {
        int i = ims_ifc_next(sp, wk->next, m, &c);
        if (i < 0)
            break;
        const struct ims_prof_ifc *f = &sp->ifcs[i];
        wk->next = (size_t)i + 1;
        if (to_as(w, r, m, wk, f) == 0)
            return;
        /* the AS cannot even be tried: its default handling now */
        LOG_W("scscf", "event=as_unusable as=%s impu=%s default_handling=%d",
              f->server_name ? f->server_name : "", wk->served, f->default_handling);
        if (f->default_handling != 0) {
            reply(r, 500, "Application Server Unavailable");
            return;
        }
    }
    if (wk->dir == DIR_ORIG)
        route_orig(w, r, m);
    else if (registered)
        route_term(w, r, wk);
    else
        reply(r, 480, "Not Registered"); /* no AS took it (TS 24.229 §5.4.3.3) */
}

/* ---- unregistered terminating user: SAR UNREGISTERED_USER ---- */

/* One SAR in flight for an unregistered served user; holds the request. */
struct unreg {
    struct cscf_pend pend; /* first: the worker's list */
    struct proxy_req *r;
    struct walk wk;
};

static void on_unreg_saa(int rc, const struct dia_ans *ans, void *ud)
{
    struct unreg *u = ud;
    struct cscf_worker *w = u->pend.w;
    struct proxy_req *r = u->r;
    struct walk wk = u->wk;
    cscf_pend_del(&u->pend);
    sess_free(&u->pend);
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    LOG_I("scscf", "event=saa_unregistered impu=%s outcome=%d rc=%s", wk.served, (int)o,
          ims_strerror(rc));
    const struct sip_msg *m = NULL;
    struct ims_profile *prof = NULL;
    if (ims_proxy_req_final_sent(r) || ims_proxy_req_cancelled(r))
        goto out;
    if (o == IMS_CX_UNAVAILABLE) {
        char ra[32];
        ims_proxy_reply(r, 503, "HSS Unavailable",
                        &(struct proxy_reply_opts){
                            .hdrs = cscf_retry_after(w->g->cfg->scscf_retry_after, ra,
                                                     sizeof(ra)) });
        goto out;
    }
    if (o != IMS_CX_OK) {
        reply(r, o == IMS_CX_USER_UNKNOWN ? 404 : 480, NULL);
        goto out;
    }
    int prc = DIA_HAS(ans, DIA_ANS_USER_DATA) && ans->user_data.len
                  ? ims_profile_parse(ans->user_data, &prof)
                  : 0;
    m = ims_proxy_req_msg(r);
    if (prc || !m) {
        LOG_W("scscf", "event=bad_user_data impu=%s err=%s", wk.served, ims_strerror(prc));
        reply(r, 500, NULL);
        goto out;
    }
    walk_profile(w, r, m, &wk, prof, false);
out:
    ims_profile_unref(prof);
    ims_proxy_req_release(r);
}

/* TS 24.229 §5.4.3.3 step 1, TS 29.228 §6.1.2: the S-CSCF takes the
 * unregistered user and downloads its profile; the iFCs of
 * TERMINATING_UNREGISTERED then decide (an AS may take it), else 480.  A
 * request back from an AS asks again (nothing is cached here). */
static void term_unregistered(struct cscf_worker *w, struct proxy_req *r, const struct walk *wk)
{
    struct unreg *u = ims_calloc(1, sizeof(*u));
    if (!u) {
        reply(r, 500, NULL);
        return;
    }
    u->r = r;
    u->wk = *wk;
    struct cx_sar q;
    ims_cx_sar_init(&q, IMS_STR_NULL, ims_str_cstr(u->wk.served), ims_str_cstr(w->g->s_uri),
                    CX_SAT_UNREGISTERED_USER);
    cscf_pend_add(w, &u->pend, sess_free);
    ims_proxy_req_hold(r);
    int rc = ims_cx_send(w->scx, DIA_CMD_SAR, &q, on_unreg_saa, u);
    if (rc) {
        LOG_W("scscf", "event=sar_failed impu=%s err=%s", wk->served, ims_strerror(rc));
        cscf_pend_del(&u->pend);
        sess_free(&u->pend);
        reply(r, 480, "Not Registered");
        ims_proxy_req_release(r);
    }
}

/* Looks wk's served user up and walks its iFCs (TS 24.229 §5.4.3.2 step 1,
 * §5.4.3.3 step 1): an originating user must be registered here and not
 * barred (403); a barred terminating identity gets 404; an unregistered
 * terminating one goes through SAR UNREGISTERED_USER. */
static void walk_on(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    struct walk *wk)
{
    struct ims_reg *reg = w->reg_a;
    int rc = ims_loc_get(w->g->loc, ims_str_cstr(wk->served), cscf_now_s(), reg);
    if (rc) {
        ims_reg_clear(reg);
        if (wk->dir == DIR_TERM && rc == IMS_ENOENT) {
            term_unregistered(w, r, wk);
            return;
        }
        LOG_I("scscf", "event=served_user_refused impu=%s case=%c why=%s", wk->served,
              (char)wk->dir, ims_strerror(rc));
        reply(r, rc == IMS_ENOENT ? 403 : 500, rc == IMS_ENOENT ? "Not Registered" : NULL);
        return;
    }
    bool barred = false;
    for (size_t i = 0; i < reg->nimpu; i++)
        if (strcmp(reg->impus[i], wk->served) == 0)
            barred = reg->barred[i];
    struct ims_profile *prof = barred ? NULL : ims_profile_ref(reg->profile);
    ims_reg_clear(reg);
    if (barred) {
        LOG_I("scscf", "event=served_user_barred impu=%s case=%c", wk->served, (char)wk->dir);
        reply(r, wk->dir == DIR_ORIG ? 403 : 404, "Barred");
        return;
    }
    walk_profile(w, r, m, wk, prof, true);
    ims_profile_unref(prof);
}

/* ------------------------------------------------------------ policy */

/* Originating MESSAGE, SUBSCRIBE and INVITE are subject to the policy ([scscf]
 * policy_file, docs/keystone.md): ims:message, ims:subscribe; ims:call for a home-domain
 * or tel: target, else ims:call:external.  The credentials are those of the
 * request's own "Authorization: Bearer" token (RFC 8898; the P-CSCF passes
 * it on), else of the token the served user registered with, else a
 * Digest/AKA user's roles: its subscription's from the HSS (the profile's
 * roles Extension), or [scscf] local_roles when it has none. */
static const char *orig_rule(const struct ims_cscf *g, const struct sip_msg *m)
{
    if (m->method == SIP_M_MESSAGE)
        return "ims:message";
    if (m->method == SIP_M_SUBSCRIBE)
        return "ims:subscribe"; /* presence and other packages; reg-event: regevent.c */
    if (m->method != SIP_M_INVITE)
        return NULL;
    bool home = m->ruri.scheme == SIP_URI_TEL ||
                (m->ruri.scheme != SIP_URI_OTHER && cscf_home_domain(g->cfg, m->ruri.host));
    return home ? "ims:call" : "ims:call:external";
}

/* Enforces rule for r with tok's credentials (NULL: the registration's).
 * true: allowed; false: answered 403 with a Warning naming the rule. */
static bool policy_judge(struct cscf_worker *w, struct proxy_req *r, const struct walk *wk,
                         const char *rule, struct ims_ks_token *tok)
{
    struct ims_cscf *g = w->g;
    struct ims_reg *reg = w->reg_a;
    char impi[IMS_REG_ID_MAX];
    char roles[CSCF_ROLES_MAX]; /* the subscription's, from the SAA's User-Data */
    if (ims_loc_get(g->loc, ims_str_cstr(wk->served), cscf_now_s(), reg) != 0) {
        ims_reg_clear(reg);
        return true; /* not registered: walk_on answers 403 */
    }
    snprintf(impi, sizeof(impi), "%s", reg->impi);
    snprintf(roles, sizeof(roles), "%s",
             reg->profile && reg->profile->roles ? reg->profile->roles : "");
    ims_reg_clear(reg);
    if (tok && !cscf_bearer_token_of(g, tok, impi)) {
        LOG_I("scscf", "event=bearer_other_user impu=%s tok=%s", wk->served, tok->hash_hex);
        reply(r, 403, "Token Of Another User");
        return false;
    }
    struct ims_ks_token *own = tok ? NULL : cscf_bearer_of(g, impi, cscf_now_s());
    struct cscf_creds c;
    if (tok || own)
        cscf_creds_token(tok ? tok : own, &c);
    else
        cscf_creds_local(g, impi, "digest", roles, &c);
    bool ok = cscf_policy_allows(g, ims_proxy_req_msg(r), rule, &c.c, wk->served);
    ims_ks_token_unref(own);
    if (!ok && !ims_proxy_req_final_sent(r)) {
        char wb[CSCF_URI_MAX + 96];
        ims_proxy_reply(r, 403, "Forbidden By Policy",
                        &(struct proxy_reply_opts){
                            .hdrs = cscf_policy_warning(g, rule, wb, sizeof(wb)) });
    }
    return ok;
}

/* A request's token that Keystone has to validate: r held meanwhile. */
struct polv {
    struct cscf_pend pend; /* first: the worker's list */
    struct proxy_req *r;
    struct walk wk;
    const char *rule;      /* static */
};

static void on_req_token(void *arg, int rc, struct ims_ks_token *tok)
{
    struct polv *v = arg;
    struct cscf_worker *w = v->pend.w;
    if (cscf_bearer_stopping(w->g))
        return; /* shutting down: ims_cscf_free() frees v */
    struct proxy_req *r = v->r;
    struct walk wk = v->wk;
    const char *rule = v->rule;
    cscf_pend_del(&v->pend);
    sess_free(&v->pend);
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (ims_proxy_req_final_sent(r) || ims_proxy_req_cancelled(r) || !m)
        goto out;
    if (rc) {
        LOG_I("scscf", "event=bearer_request_refused impu=%s err=%s", wk.served,
              ims_strerror(rc));
        cscf_bearer_refused(w->g, r, rc);
        goto out;
    }
    if (policy_judge(w, r, &wk, rule, tok))
        walk_on(w, r, m, &wk);
out:
    ims_proxy_req_release(r);
}

/* true: r was answered (or is held for its token); false: go on. */
static bool orig_policy(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                        const struct walk *wk)
{
    struct ims_cscf *g = w->g;
    const char *rule = orig_rule(g, m);
    if (!rule || !cscf_policy_on(g))
        return false;
    ims_str btok;
    if (!w->ks || !cscf_bearer_token(m, &btok))
        return !policy_judge(w, r, wk, rule, NULL);
    struct ims_ks_token *tok = NULL;
    int rc = btok.len ? ims_ks_lookup(w->ks, btok.p, btok.len, 0, &tok) : IMS_EINVAL;
    if (rc == 0) {
        bool ok = policy_judge(w, r, wk, rule, tok); /* a cache hit: no wait */
        ims_ks_token_unref(tok);
        return !ok;
    }
    if (rc != IMS_EAGAIN) {
        cscf_bearer_refused(g, r, rc);
        return true;
    }
    struct polv *v = ims_calloc(1, sizeof(*v));
    if (!v) {
        reply(r, 500, NULL);
        return true;
    }
    v->r = r;
    v->wk = *wk;
    v->rule = rule;
    cscf_pend_add(w, &v->pend, sess_free);
    ims_proxy_req_hold(r);
    rc = ims_ks_validate(w->ks, btok.p, btok.len, 0, on_req_token, v);
    if (rc) {
        cscf_pend_del(&v->pend);
        sess_free(&v->pend);
        cscf_bearer_refused(g, r, rc == IMS_ENOMEM ? IMS_EBACKEND : rc);
        ims_proxy_req_release(r);
    }
    return true;
}

/* ------------------------------------------------------------ the hook */

bool ims_cscf_scscf_orig(struct proxy_req *r, const struct sip_msg *m)
{
    struct sip_uri top;
    ims_str v;
    return cscf_top_route_self(r, m, &top) == 0 && ims_sip_param_get(top.params, "orig", &v) == 0;
}

/* ---- terminating delivery: the contacts one after another ----
 *
 * The target set is the served user's registered contacts (RFC 3261
 * §16.5), tried one at a time (§16.6: a sequential search, highest q
 * first, then the latest registration: ims_reg_contact_pick's order).
 * When the contact tried fails with 408, 480, 486, 488 or a 5xx (a device
 * gone, busy, or unable to take this session; a 503 is also what a
 * transport error gives), the request goes to the next contact not tried
 * yet, and the caller gets the last failure when none is left.  A device
 * that rings [scscf] contact_ring_s unanswered (or says nothing) while
 * another one is left is cancelled (a shorter Timer C, proxy_fwd.ring_ms)
 * and the next one rings.  Other finals (2xx, 3xx, 6xx, the caller's
 * CANCEL's 487, an authentication challenge) end the search.
 * Contacts of one +sip.instance are one device: once it failed, none of
 * them is tried again.  One contact rings at a time: no parallel forking.
 *
 * A contact registered as an outbound flow (+sip.instance with reg-id) may
 * have sibling flows of the same instance (another connection, another
 * edge).  When the edge proxy answers 430 Flow Failed, the request goes to
 * the next of them (RFC 5626 §5.3); the UE never sees the 430 (§11.5):
 * with no flow left it gets 480. */
struct term_try {
    struct cscf_pend pend; /* first: the worker's list */
    char impu[IMS_REG_ID_MAX];
    char instance[IMS_REG_INSTANCE_MAX]; /* of the contact being tried, or "" */
    uint32_t flows_tried[IMS_REG_MAX_CONTACTS]; /* reg-ids of instance's flows */
    size_t nflows;
    uint64_t tried[IMS_REG_MAX_CONTACTS]; /* contact_key of each contact tried */
    size_t ntried;
    bool next_flow;   /* the retry: a sibling flow (430), else another contact */
    int status;       /* the failure that made us move on */
};

static void term_try_done(struct term_try *tt)
{
    cscf_pend_del(&tt->pend);
    ims_free(tt);
}

/* A device: its +sip.instance when it has one (all its flows), else its URI. */
static uint64_t contact_key(const struct ims_reg_contact *c)
{
    const char *s = c->instance[0] ? c->instance : c->uri;
    uint64_t h = c->instance[0] ? 0x9e3779b97f4a7c15u : 0;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static bool tried_fn(const struct ims_reg_contact *c, void *ctx)
{
    const struct term_try *tt = ctx;
    uint64_t k = contact_key(c);
    for (size_t i = 0; i < tt->ntried; i++)
        if (tt->tried[i] == k)
            return true;
    return false;
}

static void term_tried(struct term_try *tt, const struct ims_reg_contact *c)
{
    if (strcmp(c->instance, tt->instance) != 0)
        tt->nflows = 0; /* reg-ids are per instance */
    ims_cstr_copy(c->instance, tt->instance, sizeof(tt->instance));
    if (!tried_fn(c, tt) && tt->ntried < IMS_REG_MAX_CONTACTS)
        tt->tried[tt->ntried++] = contact_key(c);
    if (!c->reg_id)
        return;
    if (tt->nflows < IMS_REG_MAX_CONTACTS)
        tt->flows_tried[tt->nflows++] = c->reg_id;
}

/* r to contact c along its Path.  0 or a forwarding error. */
static int to_contact(struct proxy_req *r, const struct ims_reg_contact *c, proxy_response_fn fn,
                      void *ud, unsigned ring_ms)
{
    char route[IMS_REG_PATH_MAX + 16];
    struct sip_nameaddr hop;
    struct proxy_fwd f = {
        .ruri = ims_str_cstr(c->uri), .on_response = fn, .ud = ud, .ring_ms = ring_ms
    };
    static const uint16_t del[] = { SIP_H_ROUTE };
    if (c->path[0] && cscf_first_nameaddr(ims_str_cstr(c->path), &hop) == 0) {
        size_t n = IMS_STR_JOIN(route, sizeof(route), IMS_S("Route: "), ims_str_cstr(c->path),
                                IMS_S("\r\n"));
        if (n == SIZE_MAX)
            return IMS_ELIMIT;
        f.add_hdrs = ims_str_make(route, n);
        f.next_hop = hop.uri.raw;
        f.del_hdrs = del;
        f.ndel = 1;
    }
    return ims_proxy_forward(r, &f);
}

static enum proxy_rsp_action term_response(struct proxy_req *r, int status,
                                           const struct sip_msg *rsp, void *ud);

/* How long the device about to ring may ring: [scscf] contact_ring_s
 * while another one is left (tt has the one about to ring), else Timer C. */
static unsigned ring_ms(const struct ims_cscf *g, struct term_try *tt, const struct ims_reg *reg)
{
    unsigned s = g->cfg->scscf_contact_ring_s;
    return s && ims_reg_contact_pick_next(reg, tried_fn, tt) ? s * 1000u : 0;
}

/* After a 430 the next flow of the instance, then (as after any other
 * failure) the next device. */
static const struct ims_reg_contact *term_next(struct term_try *tt, const struct ims_reg *reg)
{
    const struct ims_reg_contact *c = NULL;
    if (tt->next_flow)
        c = ims_reg_flow_pick(reg, tt->instance, tt->flows_tried, tt->nflows);
    if (!c) {
        tt->next_flow = false;
        c = ims_reg_contact_pick_next(reg, tried_fn, tt);
    }
    return c;
}

static void term_retry(struct cscf_worker *w, struct proxy_req *r, void *arg)
{
    struct term_try *tt = arg;
    if (ims_proxy_req_final_sent(r) || ims_proxy_req_cancelled(r)) {
        term_try_done(tt);
        return;
    }
    struct ims_reg *reg = w->reg_a;
    const struct ims_reg_contact *c = NULL;
    if (ims_loc_get(w->g->loc, ims_str_cstr(tt->impu), cscf_now_s(), reg) == 0)
        c = term_next(tt, reg);
    int rc = IMS_ENOENT;
    if (c) {
        if (tt->next_flow) /* still set: a flow of the same instance */
            LOG_I("scscf", "event=flow_failover impu=%s instance=%s reg_id=%u", tt->impu,
                  tt->instance, c->reg_id);
        else
            LOG_I("scscf", "event=contact_next impu=%s after=%d tried=%zu", tt->impu, tt->status,
                  tt->ntried);
        term_tried(tt, c);
        rc = to_contact(r, c, term_response, tt, ring_ms(w->g, tt, reg));
    }
    ims_reg_clear(reg);
    if (rc == 0)
        return;
    int status = tt->status;
    term_try_done(tt);
    if (rc != IMS_ENOENT)
        ims_proxy_forward_failed(r, rc);
    else if (status == 430)
        reply(r, 480, "No Flow Left");
    else if (status == 487) /* rang out, and the next device left meanwhile */
        reply(r, 480, NULL);
    else /* the device left between its answer and now (a 503 upstream
          * would say we are unavailable: RFC 3261 §16.7 step 6) */
        reply(r, status == 503 ? 500 : status, NULL);
}

/* 487 here is never the caller's (term_response checks): it answers the
 * CANCEL of a device rung for [scscf] contact_ring_s. */
static bool retry_elsewhere(int status)
{
    return status == 408 || status == 480 || status == 486 || status == 487 ||
           status == 488 || (status >= 500 && status <= 599);
}

/* Is a device not tried yet registered?  Its own lookup: this runs in the
 * proxy's response path, which may be inside term_retry's forward. */
static bool term_has_next(struct term_try *tt, struct ims_cscf *g)
{
    struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
    if (!reg)
        return false;
    bool more = ims_loc_get(g->loc, ims_str_cstr(tt->impu), cscf_now_s(), reg) == 0 &&
                term_next(tt, reg) != NULL;
    ims_reg_clear(reg);
    ims_free(reg);
    return more;
}

static enum proxy_rsp_action term_response(struct proxy_req *r, int status,
                                           const struct sip_msg *rsp, void *ud)
{
    (void)rsp;
    struct term_try *tt = ud;
    if (status < 200)
        return PROXY_RSP_RELAY;
    bool open = !ims_proxy_req_cancelled(r) && !ims_proxy_req_final_sent(r);
    if (open && status == 430 && tt->instance[0]) {
        tt->next_flow = true;
        tt->status = status;
        if (cscf_defer(tt->pend.w, r, term_retry, tt) == 0)
            return PROXY_RSP_TAKEN;
    } else if (open && retry_elsewhere(status)) {
        tt->next_flow = false;
        tt->status = status;
        if (term_has_next(tt, tt->pend.w->g) && cscf_defer(tt->pend.w, r, term_retry, tt) == 0)
            return PROXY_RSP_TAKEN;
    }
    term_try_done(tt);
    return PROXY_RSP_RELAY;
}

int ims_cscf_scscf_route_term(struct ims_cscf *g, struct proxy_req *r, ims_str impu)
{
    struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
    if (!reg)
        return IMS_ENOMEM;
    struct term_try *tt = NULL;
    int rc = ims_loc_get(g->loc, impu, cscf_now_s(), reg);
    if (rc)
        goto out;
    const struct ims_reg_contact *best = ims_reg_contact_pick(reg);
    if (!best) {
        rc = IMS_ENOENT;
        goto out;
    }
    /* somewhere to go after a failure: another device or another flow */
    struct cscf_worker *w = worker_of(g, r);
    if ((reg->ncontacts > 1 || best->reg_id) && w && (tt = ims_calloc(1, sizeof(*tt))) != NULL) {
        ims_str_copy(impu, tt->impu, sizeof(tt->impu));
        term_tried(tt, best);
        cscf_pend_add(w, &tt->pend, sess_free);
    }
    rc = to_contact(r, best, tt ? term_response : NULL, tt, tt ? ring_ms(g, tt, reg) : 0);
    if (rc && tt)
        term_try_done(tt);
out:
    ims_reg_clear(reg);
    ims_free(reg);
    return rc;
}

/* The served user of an originating request: its P-Asserted-Identity (set
 * by the P-CSCF, RFC 3325; a sip/sips or tel value). */
static int asserted(const struct sip_msg *m, char *out, size_t cap)
{
    struct sip_nameaddr na;
    for (size_t i = 0; cscf_nth_nameaddr(m, SIP_H_P_ASSERTED_IDENTITY, i, &na) == 0; i++)
        if (cscf_impu_of(&na.uri, out, cap) == 0)
            return 0;
    return IMS_ENOENT;
}

void ims_cscf_scscf_default(void *ctx, struct proxy_req *r, const struct sip_msg *m)
{
    struct ims_cscf *g = ctx;
    struct cscf_worker *w = worker_of(g, r);
    if (!w || m->to.tag.len || ims_proxy_req_to_self(r)) {
        /* RFC 3261 §16.12: in-dialog requests follow their Route set */
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    struct walk wk = { .dir = DIR_TERM };
    struct sip_uri top;
    ims_str odi;
    if (cscf_top_route_self(r, m, &top) == 0 && ims_sip_param_get(top.params, "odi", &odi) == 0) {
        /* back from an AS (TS 24.229 §5.4.3.2 step 3, §5.4.3.3 step 3) */
        if (odi_check(odi, cscf_now_s(), &wk) != 0) {
            LOG_I("scscf", "event=bad_odi call_id=%.*s", IMS_SF(m->call_id));
            ims_proxy_reply(r, 403, "Bad Original Dialog Identifier", NULL);
            return;
        }
        LOG_I("scscf", "event=odi_return call_id=%.*s impu=%s case=%c next=%zu",
              IMS_SF(m->call_id), wk.served, (char)wk.dir, wk.next);
    } else if (ims_cscf_scscf_orig(r, m)) {
        wk.dir = DIR_ORIG;
        if (asserted(m, wk.served, sizeof(wk.served)) != 0) {
            ims_proxy_reply(r, 403, "No Asserted Identity", NULL);
            return;
        }
        if (orig_policy(w, r, m, &wk))
            return; /* denied, or held for a token validation (bearer.c) */
    } else if (cscf_has_foreign_route(r, m)) {
        ims_proxy_route_static(NULL, r, m);
        return;
    } else if (cscf_impu_of(&m->ruri, wk.served, sizeof(wk.served)) != 0) {
        ims_proxy_route_static(NULL, r, m);
        return;
    }
    /* Ut hook (src/cscf/cdiv.c, docs/ut.md): barring and CFU before the iFCs */
    if (wk.dir == DIR_TERM && wk.next == 0 && cscf_cdiv_term(w, r, m, wk.served))
        return;
    walk_on(w, r, m, &wk);
}
