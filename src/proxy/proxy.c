/* proxy.c - the proxy core: wiring, the rx path (parse once, match, validate
 * per RFC 3261 §16.3, pre-process routes per §16.4), stateless replies, and
 * request contexts (struct proxy_req) with their app hooks.
 *
 * Forwarding and response selection (§16.6, §16.7), CANCEL and UAC requests
 * live in fwd.c; addresses, routes and loops in route.c; message bytes in
 * pmsg.c. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "detect/detect.h"
#include "metrics/metrics.h"
#include "proxy/proxy_int.h"

#define ALLOW_METHODS                                                                              \
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, SUBSCRIBE, NOTIFY, PUBLISH, INFO, "       \
    "REFER, MESSAGE, UPDATE"

/* ------------------------------------------------------------ shared state */

static char *dup_cstr(const char *s)
{
    return s ? ims_strndup(s, strlen(s)) : NULL;
}

int ims_proxy_shared_new(unsigned nworkers, const struct proxy_cfg *cfg,
                         struct proxy_shared **out)
{
    if (!cfg || nworkers == 0 || nworkers > 256 || cfg->max_transactions == 0 ||
        cfg->max_transactions > (1u << 24) || (cfg->nself && !cfg->self_names) ||
        (cfg->nroutes && !cfg->routes) || (cfg->nself_ports && !cfg->self_ports))
        return IMS_EINVAL;
    struct proxy_shared *sh = ims_calloc(1, sizeof(*sh));
    if (!sh)
        return IMS_ENOMEM;
    int rc = IMS_ENOMEM;
    sh->nworkers = nworkers;
    sh->record_route = cfg->record_route;
    sh->max_txns = cfg->max_transactions;
    sh->t1 = cfg->t1_ms ? cfg->t1_ms : SIP_T1_MS;
    sh->t2 = cfg->t2_ms ? cfg->t2_ms : SIP_T2_MS;
    sh->t4 = cfg->t4_ms ? cfg->t4_ms : SIP_T4_MS;
    sh->timer_c = cfg->timer_c_ms ? cfg->timer_c_ms : PROXY_TIMER_C_MS;
    sh->nit_trying = px_nit_trying_ms(sh->t1, sh->t2);
    sh->retry_after = cfg->retry_after ? cfg->retry_after : PROXY_RETRY_AFTER_S;
    if (cfg->nself) {
        sh->self = ims_calloc(cfg->nself, sizeof(*sh->self));
        if (!sh->self)
            goto fail;
        for (size_t i = 0; i < cfg->nself; i++) {
            if (!cfg->self_names[i]) {
                rc = IMS_EINVAL;
                goto fail;
            }
            sh->self[i] = dup_cstr(cfg->self_names[i]);
            sh->nself = i + 1;
            if (!sh->self[i])
                goto fail;
        }
    }
    if (cfg->nself_ports) {
        sh->self_ports = ims_calloc(cfg->nself_ports, sizeof(uint16_t));
        if (!sh->self_ports)
            goto fail;
        memcpy(sh->self_ports, cfg->self_ports, cfg->nself_ports * sizeof(uint16_t));
        sh->nself_ports = cfg->nself_ports;
    }
    if (cfg->advertise && !(sh->advertise = dup_cstr(cfg->advertise)))
        goto fail;
    rc = px_route_init(sh, cfg);
    if (rc)
        goto fail;
    rc = ims_sip_txn_registry_new(nworkers, &sh->reg);
    if (rc)
        goto fail;
    *out = sh;
    return 0;
fail:
    ims_proxy_shared_free(sh);
    return rc;
}

void ims_proxy_shared_free(struct proxy_shared *sh)
{
    if (!sh)
        return;
    px_route_free(sh);
    for (size_t i = 0; i < sh->nself; i++)
        ims_free(sh->self[i]);
    ims_free(sh->self);
    ims_free(sh->self_ports);
    ims_free(sh->advertise);
    ims_sip_txn_registry_free(sh->reg);
    ims_free(sh);
}

/* ------------------------------------------------------------ worker proxy */

static int tp_send(void *ctx, const struct sip_dest *d, const char *buf, size_t len)
{
    return ims_sip_tp_send(ctx, d->proto, &d->addr, d->conn_id, &d->src, buf, len);
}

static int tp_local(void *ctx, enum sip_proto proto, int family, struct ims_addr *out)
{
    return ims_sip_tp_local(ctx, proto, family, out);
}

int px_send(struct ims_proxy *p, const struct sip_dest *d, const char *buf, size_t len)
{
    if (!p->io.send)
        return IMS_ENOENT;
    return p->io.send(p->io.ctx, d, buf, len);
}

static int txn_send(void *ctx, const struct sip_dest *d, const char *buf, size_t len)
{
    return px_send(ctx, d, buf, len);
}

static bool tp_in_process(void *ctx, enum sip_proto proto, const struct ims_addr *dst)
{
    return ims_sip_tp_in_process(ctx, proto, dst);
}

/* A hop between two roles of this process (P-CSCF -> I-CSCF -> S-CSCF) is
 * timed as a reliable one: the hand-over loses nothing, so its finished
 * transactions need not wait for retransmissions (RFC 3261 Timer J: 32 s
 * per REGISTER per hop over UDP, 0 reliable). */
static bool txn_reliable(void *ctx, const struct sip_dest *d)
{
    struct ims_proxy *p = ctx;
    return p->io.in_process && p->io.in_process(p->io.ctx, d->proto, &d->addr);
}

int ims_proxy_new(struct proxy_shared *sh, unsigned worker_idx, struct ims_loop *loop,
                  struct ims_resolver *res, struct ims_proxy **out)
{
    if (!sh || !loop || worker_idx >= sh->nworkers)
        return IMS_EINVAL;
    struct ims_proxy *p = ims_calloc(1, sizeof(*p));
    if (!p)
        return IMS_ENOMEM;
    p->sh = sh;
    p->idx = worker_idx;
    p->loop = loop;
    p->res = res;
    ims_buf_init(&p->scratch, PROXY_OUT_CAP);
    struct sip_txn_cfg tc = {
        .max_txns = sh->max_txns,
        .t1_ms = sh->t1,
        .t2_ms = sh->t2,
        .t4_ms = sh->t4,
        .worker_idx = worker_idx,
        .send = txn_send,
        .send_ctx = p,
        .reliable = txn_reliable,
    };
    int rc = ims_sip_txn_table_new(loop, &tc, &p->txns);
    if (rc)
        goto out_free;
    rc = IMS_ENOMEM;
    p->nreqs = sh->max_txns;
    p->reqs = ims_calloc(p->nreqs, sizeof(*p->reqs));
    if (!p->reqs)
        goto out_free_txns;
    p->req_free = -1; /* entries are initialised on first use (req_hwm) */
    if (getrandom(&p->tag_salt, sizeof(p->tag_salt), GRND_NONBLOCK) != sizeof(p->tag_salt))
        p->tag_salt = (uint32_t)(uintptr_t)p ^ worker_idx;
    rc = ims_sip_txn_registry_set(sh->reg, worker_idx, loop, ims_proxy_rx, p);
    if (rc)
        goto out_free_reqs;
    *out = p;
    return 0;
out_free_reqs:
    ims_free(p->reqs);
out_free_txns:
    ims_sip_txn_table_free(p->txns);
out_free:
    ims_free(p);
    return rc;
}

bool ims_proxy_conn_open(const struct ims_proxy *p, enum sip_proto proto,
                         const struct ims_addr *peer)
{
    return !p->tp || ims_sip_tp_conn_open(p->tp, proto, peer);
}

void ims_proxy_set_tp(struct ims_proxy *p, struct sip_tp *tp)
{
    struct proxy_io io = {
        .send = tp_send, .local = tp_local, .ctx = tp, .in_process = tp_in_process
    };
    p->tp = tp;
    ims_proxy_set_io(p, &io);
}

void ims_proxy_set_io(struct ims_proxy *p, const struct proxy_io *io)
{
    p->io = *io;
    memset(p->ifaces, 0, sizeof(p->ifaces)); /* recomputed on first use */
}

static void req_free(struct proxy_req *r);

size_t ims_proxy_free(struct ims_proxy *p)
{
    if (!p)
        return 0;
    /* A request still waiting for its answer (a call ringing, an HSS
     * answer due) or one of our own still in flight is work the stop cut
     * short, not a leak: its transactions are freed as lingering.  Any
     * other context still alive is one nobody released. */
    size_t leaked = 0, abandoned = 0;
    for (size_t i = 0; i < p->req_hwm; i++) {
        struct proxy_req *r = &p->reqs[i];
        if (!r->in_use)
            continue;
        if ((r->st && !r->final_sent) || (r->uac && r->ct)) {
            abandoned++;
            if (r->st)
                ims_sip_txn_abandon(r->st);
            if (r->ct)
                ims_sip_txn_abandon(r->ct);
        } else {
            leaked++;
        }
        r->st = r->ct = NULL; /* freed with the table below */
        req_free(r);
    }
    if (abandoned)
        LOG_N("proxy", "event=requests_abandoned_at_stop worker=%u n=%zu", p->idx, abandoned);
    if (leaked)
        LOG_W("proxy", "event=req_leak worker=%u live=%zu", p->idx, leaked);
    px_stateless_wait_free(p);
    leaked += ims_sip_txn_table_free(p->txns);
    ims_free(p->reqs);
    ims_buf_free(&p->scratch);
    ims_free(p);
    return leaked;
}

struct ims_loop *ims_proxy_loop(const struct ims_proxy *p)
{
    return p->loop;
}

unsigned ims_proxy_worker(const struct ims_proxy *p)
{
    return p->idx;
}

void ims_proxy_stats(const struct ims_proxy *p, struct proxy_stats *out)
{
    *out = p->st;
    out->txns_live = ims_sip_txn_table_live(p->txns);
    out->reqs_live = p->reqs_live;
    out->stateless_waiting = p->sl_nwait;
}

int ims_proxy_set_app(struct ims_proxy *p, uint16_t port, const struct proxy_app *app)
{
    struct proxy_app_slot *free_slot = NULL;
    for (size_t i = 0; i < PROXY_MAX_APPS; i++) {
        struct proxy_app_slot *s = &p->apps[i];
        if (s->used && s->port == port) {
            s->app = *app;
            return 0;
        }
        if (!s->used && !free_slot)
            free_slot = s;
    }
    if (!free_slot)
        return IMS_ELIMIT;
    free_slot->used = true;
    free_slot->port = port;
    free_slot->app = *app;
    return 0;
}

static const struct proxy_app default_app = { .name = "static",
                                              .on_request = ims_proxy_route_static };

const struct proxy_app *px_find_app(const struct ims_proxy *p, uint16_t port)
{
    const struct proxy_app *any = NULL;
    for (size_t i = 0; i < PROXY_MAX_APPS; i++) {
        const struct proxy_app_slot *s = &p->apps[i];
        if (!s->used)
            continue;
        if (s->port == port)
            return &s->app;
        if (s->port == 0)
            any = &s->app;
    }
    return any ? any : &default_app;
}

static bool app_handles(const struct proxy_app *app, ims_str tag)
{
    for (const char *const *t = app->proxy_require; t && *t; t++)
        if (ims_str_caseeq_lit(tag, *t))
            return true;
    return false;
}

/* Does the request name a Proxy-Require option tag the app does not handle?
 * Those tags go to un as "Unsupported: tag\r\n" lines (as many as fit; an
 * unparsable value counts as one unknown tag). */
static bool px_unsupported(const struct proxy_app *app, const struct sip_msg *m, char *un,
                           size_t cap, size_t *len)
{
    bool any = false;
    *len = 0;
    for (const struct sip_hdr *pr = ims_sip_hdr_first(m, SIP_H_PROXY_REQUIRE); pr;
         pr = ims_sip_hdr_next(m, pr)) {
        struct ims_cur c = ims_cur_of(pr->value);
        ims_str tag;
        int rc;
        while ((rc = ims_sip_list_next(&c, &tag)) != IMS_ENOENT) {
            if (rc == 0 && app_handles(app, tag))
                continue;
            if (rc)
                tag = pr->value;
            any = true;
            if (*len + tag.len + 16 < cap) {
                memcpy(un + *len, "Unsupported: ", 13);
                memcpy(un + *len + 13, tag.p, tag.len);
                memcpy(un + *len + 13 + tag.len, "\r\n", 2);
                *len += 13 + tag.len + 2;
            }
            if (rc)
                break;
        }
    }
    return any;
}

/* ------------------------------------------------------------ logging */

void px_peer_log(struct ims_proxy *p, const struct sip_tp_rx *rx, const char *what,
                 const char *detail)
{
    if (IMS_LOG_NOTICE > ims_log_level)
        return;
    char host[64];
    if (!ims_addr_host(&rx->src, host, sizeof(host)))
        host[0] = '\0';
    uint32_t key = 2166136261u;
    for (const char *c = host; *c; c++)
        key = (key ^ (unsigned char)*c) * 16777619u;
    /* At most 5 lines per source per second (direct-mapped, 64 slots: two
     * sources sharing a slot share a budget, which is fine for a log). */
    struct log_slot *s = &p->logs[key % PROXY_LOG_SLOTS];
    uint64_t now = ims_loop_now(p->loop);
    unsigned suppressed = 0;
    if (s->key != key || now - s->window_ms >= 1000) {
        suppressed = s->key == key && s->count > 5 ? s->count - 5 : 0;
        s->key = key;
        s->window_ms = now;
        s->count = 0;
    }
    if (++s->count > 5)
        return;
    char bytes[420];
    char addr[IMS_ADDR_STRLEN];
    LOG_N("proxy", "event=%s src=%s proto=%s why=\"%s\" suppressed=%u bytes=\"%s\"", what,
          ims_addr_str(&rx->src, addr, sizeof(addr)), ims_proto_name(rx->proto),
          detail ? detail : "", suppressed,
          ims_log_peer_bytes(rx->buf, rx->len, bytes, sizeof(bytes)));
}

/* ------------------------------------------------------------ request contexts */

static void trying_cb(struct ims_loop *loop, struct ims_timer *t);

struct proxy_req *px_req_new(struct ims_proxy *p)
{
    struct proxy_req *r;
    if (p->req_free >= 0) {
        r = &p->reqs[p->req_free];
        p->req_free = r->next_free;
    } else if (p->req_hwm < p->nreqs) {
        r = &p->reqs[p->req_hwm++];
    } else {
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->in_use = true;
    r->next_free = -1;
    r->timer_c_ms = p->sh->timer_c; /* ims_proxy_forward sets it per forward */
    ims_buf_init(&r->spec, PROXY_OUT_CAP);
    ims_buf_init(&r->best, PROXY_OUT_CAP);
    ims_timer_init(&r->tm_trying, trying_cb, r);
    px_req_timers_init(r);
    p->reqs_live++;
    return r;
}

static void req_free(struct proxy_req *r)
{
    struct ims_proxy *p = r->p;
    ims_timer_stop(p->loop, &r->tm_trying);
    ims_timer_stop(p->loop, &r->tm_c);
    ims_resolve_cancel(&r->rreq);
    ims_buf_free(&r->spec);
    ims_buf_free(&r->best);
    ims_free(r->kept);
    if (p->rmsg_owner == r)
        p->rmsg_owner = NULL;
    r->in_use = false;
    r->next_free = p->req_free;
    p->req_free = (int32_t)(r - p->reqs);
    p->reqs_live--;
}

void px_req_ref(struct proxy_req *r)
{
    r->refs++;
}

void px_req_unref(struct proxy_req *r)
{
    if (--r->refs == 0)
        req_free(r);
}

/* The transaction's request copy goes with it: forget a parse of it. */
static void forget_st(struct proxy_req *r)
{
    r->st = NULL;
    ims_free(r->kept);
    r->kept = NULL;
    if (r->p->rmsg_owner == r)
        r->p->rmsg_owner = NULL;
}

void px_req_drop_st(struct proxy_req *r)
{
    if (!r->st)
        return;
    ims_sip_txn_detach(r->st);
    forget_st(r);
    r->rx.buf = NULL; /* was the transaction's copy */
    r->rx.len = 0;
    px_req_unref(r);
}

struct ims_proxy *ims_proxy_req_proxy(const struct proxy_req *r)
{
    return r->p;
}

const struct sip_msg *ims_proxy_req_msg(struct proxy_req *r)
{
    struct ims_proxy *p = r->p;
    if (r->cur_msg)
        return r->cur_msg;
    if (r->kept)
        return &r->kept->m;
    if (p->rmsg_owner == r)
        return &p->rmsg;
    if (!r->st)
        return NULL;
    ims_str c = ims_sip_txn_request(r->st);
    int n = ims_sip_parse(c.p, c.len, r->rx.proto != SIP_PROTO_UDP, &p->rmsg, p->rhdrs,
                          SIP_MAX_HEADERS_DEFAULT);
    if (n < 0) {
        p->rmsg_owner = NULL;
        return NULL;
    }
    p->rmsg_owner = r;
    return &p->rmsg;
}

const struct sip_tp_rx *ims_proxy_req_rx(const struct proxy_req *r)
{
    return &r->rx;
}

bool ims_proxy_req_to_self(const struct proxy_req *r)
{
    return r->to_self;
}

bool ims_proxy_req_cancelled(const struct proxy_req *r)
{
    return r->cancelled;
}

bool ims_proxy_req_final_sent(const struct proxy_req *r)
{
    return r->final_sent;
}

void ims_proxy_req_set_data(struct proxy_req *r, void *data)
{
    r->data = data;
}

void *ims_proxy_req_data(const struct proxy_req *r)
{
    return r->data;
}

int ims_proxy_req_to_tag(struct proxy_req *r, char *out, size_t cap)
{
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (!m || cap < 9)
        return IMS_EINVAL;
    px_to_tag(m, r->p->tag_salt, out);
    out[8] = '\0';
    return 0;
}

void ims_proxy_req_on_cancel(struct proxy_req *r, void (*fn)(struct proxy_req *r, void *ud),
                             void *ud)
{
    r->on_cancel = fn;
    r->cancel_ud = ud;
}

void ims_proxy_req_hold(struct proxy_req *r)
{
    r->holds++;
    px_req_ref(r);
}

/* Rule 3 of proxy.h: a request nobody answers gets a 500. */
void px_check_unanswered(struct proxy_req *r)
{
    if (r->uac || r->final_sent || r->fwd_active || r->holds > 0 || !r->st)
        return;
    const char *mn = ims_sip_method_name(r->method);
    LOG_W("proxy", "event=request_unanswered method=%s", mn ? mn : "?");
    int rc = ims_proxy_reply(r, 500, "Request Not Handled", NULL);
    if (!r->final_sent) {
        /* Not even a 500 could be built (out of memory): drop the request;
         * its server transaction ends and a retransmission starts over. */
        LOG_W("proxy", "event=request_dropped method=%s err=%s", mn ? mn : "?",
              ims_strerror(rc));
        px_final_reached(r);
    }
}

void ims_proxy_req_release(struct proxy_req *r)
{
    if (r->holds == 0)
        return;
    r->holds--;
    px_check_unanswered(r);
    px_req_unref(r);
}

/* The server transaction's events. */
static void st_cb(struct sip_txn *t, void *ud, const struct sip_txn_ev *ev)
{
    struct proxy_req *r = ud;
    switch (ev->kind) {
    case SIP_TXN_EV_TERMINATED:
        if (r->st == t) {
            forget_st(r);
            r->rx.buf = NULL;
            r->rx.len = 0;
            px_req_unref(r);
        }
        break;
    case SIP_TXN_EV_TRANSPORT_ERROR:
        LOG_I("proxy", "event=response_send_failed branch=%.*s err=%s",
              IMS_SF(ims_sip_txn_branch(t)), ims_strerror(ev->err));
        break;
    default:
        break;
    }
}

void px_final_reached(struct proxy_req *r)
{
    r->final_sent = true;
    ims_timer_stop(r->p->loop, &r->tm_trying);
    px_req_drop_st(r);
}

int ims_proxy_reply(struct proxy_req *r, int status, const char *reason,
                    const struct proxy_reply_opts *opts)
{
    if (r->uac || !r->st || r->final_sent || status < 100 || status > 699)
        return IMS_EINVAL;
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (!m)
        return IMS_EPROTO;
    struct ims_buf b;
    ims_buf_init(&b, PROXY_OUT_CAP);
    struct px_rsp_args a = {
        .status = status,
        .reason = reason,
        .tag_salt = r->p->tag_salt,
        .rx = &r->rx,
    };
    if (opts) {
        a.hdrs = opts->hdrs;
        a.content_type = opts->content_type;
        a.body = opts->body;
    }
    int rc = px_build_response(m, &a, &b);
    if (rc) {
        ims_buf_free(&b);
        return rc;
    }
    px_req_ref(r);
    rc = ims_sip_txn_respond(r->st, status, &b);
    if (status >= 200) {
        /* The app answered while a branch may still be pending (§16.10
         * style clean-up): cancel it, nobody wants its answer now. */
        if (r->ct) {
            ims_sip_txn_cancel(r->ct);
            ims_sip_txn_detach(r->ct);
            r->ct = NULL;
        }
        ims_timer_stop(r->p->loop, &r->tm_c);
        if (r->fwd_active) {
            r->fwd_active = false;
            px_req_unref(r);
        }
        px_final_reached(r);
    } else {
        ims_timer_stop(r->p->loop, &r->tm_trying);
    }
    px_req_unref(r);
    return rc;
}

/* RFC 4320 §4.1: a non-INVITE gets a 100 only once the client's Timer E
 * has grown to T2 (T1 + 2 T1 + 4 T1 ... = 3.5 s by default) without an
 * answer: earlier, over UDP, it MUST NOT (the client would stop
 * retransmitting at T1 intervals and recover more slowly from a lost
 * final response); by then it MUST, on any transport. */
unsigned px_nit_trying_ms(unsigned t1, unsigned t2)
{
    unsigned at = 0, e = t1 ? t1 : 1;
    while (e < t2) {
        at += e;
        e *= 2;
    }
    return at ? at : t1;
}

/* RFC 3261 §17.2.1: the 100 Trying when nothing else went out in time. */
static void trying_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct proxy_req *r = t->data;
    if (r->final_sent || !r->st || ims_sip_txn_last_status(r->st) != 0)
        return;
    ims_proxy_reply(r, 100, NULL, NULL);
}

/* ------------------------------------------------------------ stateless replies */

int px_reply_stateless(struct ims_proxy *p, const struct sip_msg *req,
                       const struct sip_tp_rx *rx, int status, const char *reason,
                       ims_str extra_hdrs)
{
    struct sip_dest d;
    if (!req->via1.host.len || ims_sip_response_dest(req, rx, &d) != 0) {
        /* No usable Via (a malformed request): answer the source. */
        d.proto = rx->proto;
        d.addr = rx->src;
        d.conn_id = rx->conn_id;
        ims_sip_tp_src_of(&rx->local, true, &d.src);
    }
    struct px_rsp_args a = {
        .status = status,
        .reason = reason,
        .hdrs = extra_hdrs,
        .tag_salt = p->tag_salt,
        .rx = rx,
    };
    int rc = px_build_response(req, &a, &p->scratch);
    if (!rc)
        rc = px_send(p, &d, p->scratch.p, p->scratch.len);
    p->st.stateless_replies++;
    return rc;
}

static void reply_options(struct ims_proxy *p, const struct sip_msg *m,
                          const struct sip_tp_rx *rx)
{
    static const char hdrs[] = "Allow: " ALLOW_METHODS "\r\n"
                               "Accept: application/sdp\r\n"
                               "Accept-Encoding: identity\r\n"
                               "Accept-Language: en\r\n"
                               "Supported: \r\n";
    px_reply_stateless(p, m, rx, 200, NULL, IMS_S(hdrs));
}

/* ------------------------------------------------------------ rx */

static void rx_malformed(struct ims_proxy *p, const struct sip_msg *m,
                         const struct sip_tp_rx *rx, int rc)
{
    p->st.malformed++;
    const char *why = m->err_reason ? m->err_reason
                      : rc == IMS_ELIMIT ? "Message Too Large"
                                         : "Malformed Message";
    px_peer_log(p, rx, m->kind == SIP_MSG_RESPONSE ? "bad_response_dropped" : "bad_request",
                why);
    /* Never answer a response or an ACK (RFC 3261 §17.1.1.1 / §18.3). */
    if (m->kind != SIP_MSG_REQUEST || m->method == SIP_M_ACK)
        return;
    int status = m->err_status ? m->err_status : rc == IMS_ELIMIT ? 513 : 400;
    px_reply_stateless(p, m, rx, status, why, IMS_STR_NULL);
}

static void rx_response(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    p->st.rx_responses++;
    ims_metrics_sip_response((unsigned)m->status);
    unsigned w;
    uint32_t lh;
    if (ims_sip_txn_branch_parse(m->via1.branch, &w, &lh) && w != p->idx &&
        w < p->sh->nworkers) {
        /* SO_REUSEPORT delivered the response to a worker that does not own
         * the transaction: hand a copy to the owner. */
        int rc = ims_sip_txn_handoff(p->sh->reg, w, rx);
        if (rc == 0) {
            p->st.handed_off++;
            return;
        }
        LOG_W("proxy", "event=handoff_failed worker=%u err=%s", w, ims_strerror(rc));
        return;
    }
    if (ims_sip_txn_rx_response(p->txns, m, rx) == 0)
        return;
    px_stateless_response(p, m);
}

/* r->kept: m moved onto the transaction's copy, for a request the handler
 * left unanswered (held, forwarded).  Without memory, the request is parsed
 * again when it is looked at (ims_proxy_req_msg). */
static void keep_parse(struct proxy_req *r, const struct sip_msg *m)
{
    struct px_kept_msg *k = ims_alloc(sizeof(*k) + m->nhdrs * sizeof(k->h[0]));
    if (!k)
        return;
    k->m = *m;
    if (m->nhdrs)
        memcpy(k->h, m->hdrs, m->nhdrs * sizeof(k->h[0]));
    k->m.hdrs = k->h;
    ims_sip_msg_rebase(&k->m, ims_sip_txn_request(r->st).p);
    r->kept = k;
}

static void new_request(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    uint16_t lport = ims_addr_port(&rx->local);
    unsigned npop;
    bool strict_fix, to_self;
    if (px_route_pre(p, m, lport, &npop, &strict_fix, &to_self) != 0) {
        px_peer_log(p, rx, "bad_request", "Bad Route");
        px_reply_stateless(p, m, rx, 400, "Bad Route", IMS_STR_NULL);
        return;
    }
    /* §16.3 item 3: Max-Forwards; OPTIONS may be answered (§11) */
    if (m->max_forwards == 0 && !to_self) {
        if (m->method == SIP_M_OPTIONS)
            reply_options(p, m, rx);
        else
            px_reply_stateless(p, m, rx, 483, NULL, IMS_STR_NULL);
        return;
    }
    /* Every role answers OPTIONS for itself, statelessly (the fast path). */
    if (to_self && m->method == SIP_M_OPTIONS) {
        reply_options(p, m, rx);
        return;
    }
    uint32_t lh = ims_proxy_loop_hash(m);
    if (!to_self) {
        /* §16.3 item 4: loop detection */
        if (px_loop_detect(p, m, lport, lh)) {
            px_reply_stateless(p, m, rx, 482, NULL, IMS_STR_NULL);
            return;
        }
        /* §16.3 item 5: the only extensions we understand are the app's */
        char un[512];
        size_t k;
        if (px_unsupported(px_find_app(p, lport), m, un, sizeof(un), &k)) {
            px_reply_stateless(p, m, rx, 420, NULL, ims_str_make(un, k));
            return;
        }
    }
    if (px_overload_reject(p, m, rx)) /* ratelimit.c: latency-driven admission */
        return;
    /* §16.3 passed: state from here on. */
    struct proxy_req *r = px_req_new(p);
    struct sip_txn *st = NULL;
    int rc = r ? ims_sip_txn_server_new(p->txns, m, rx, st_cb, r, &st) : IMS_ELIMIT;
    if (rc) {
        if (r) {
            px_req_ref(r);
            px_req_unref(r);
        }
        if (rc == IMS_ELIMIT) {
            p->st.overload_503++;
            ims_metrics_inc(IMS_M_OVERLOAD_503);
            LOG_I("proxy", "event=overload worker=%u live=%zu", p->idx,
                  ims_sip_txn_table_live(p->txns));
            char ra[32];
            int n = snprintf(ra, sizeof(ra), "Retry-After: %u\r\n", p->sh->retry_after);
            px_reply_stateless(p, m, rx, 503, NULL, ims_str_make(ra, n > 0 ? (size_t)n : 0));
        } else if (rc == IMS_EPROTO) {
            px_reply_stateless(p, m, rx, 400, "Bad Via", IMS_STR_NULL);
        } else {
            px_reply_stateless(p, m, rx, 500, NULL, IMS_STR_NULL);
        }
        return;
    }
    r->st = st;
    r->refs = 2; /* the server transaction, and this call */
    r->rx = *rx;
    r->rx.buf = ims_sip_txn_request(st).p; /* the transaction's copy */
    r->updest = *ims_sip_txn_dest(st);
    r->method = m->method;
    r->local_port = lport;
    r->loop_hash = lh;
    r->npop = npop;
    r->strict_fix = strict_fix;
    r->to_self = to_self;
    if (m->method == SIP_M_INVITE)
        ims_timer_start(p->loop, &r->tm_trying, PROXY_TRYING_MS);
    else
        ims_timer_start(p->loop, &r->tm_trying, p->sh->nit_trying);
    r->cur_msg = m;
    r->rx.tls_peer_cn = rx->tls_peer_cn;
    const struct proxy_app *app = px_find_app(p, lport);
    app->on_request(app->ctx, r, m);
    if (r->st && !r->final_sent) /* held or forwarded: it is looked at again */
        keep_parse(r, m);
    r->cur_msg = NULL;
    r->rx.tls_peer_cn = NULL;
    px_check_unanswered(r);
    px_req_unref(r);
}

static void rx_request(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    p->st.rx_requests++;
    ims_metrics_sip_request((unsigned)m->method);
    struct sip_txn *match = NULL;
    int rc = ims_sip_txn_rx_request(p->txns, m, rx, &match);
    if (rc == 0) {
        p->st.absorbed++;
        return;
    }
    if (m->method == SIP_M_ACK) {
        /* An ACK for a 2xx is a transaction of its own, end to end: it
         * passes statelessly (RFC 3261 §16.11, §17.1.1.3). */
        px_stateless_forward(p, m, rx);
        return;
    }
    if (rc == IMS_EPROTO) {
        /* RFC 2543 peers: no z9hG4bK branch, so no reliable matching. */
        px_peer_log(p, rx, "bad_request", "Missing RFC 3261 Branch");
        px_reply_stateless(p, m, rx, 400, "Missing RFC 3261 Branch", IMS_STR_NULL);
        return;
    }
    if (m->method == SIP_M_CANCEL) {
        px_cancel_rx(p, m, rx);
        return;
    }
    /* detect hook (src/detect): a source just put in the deny group for
     * scanning gets no answer to this request either */
    if (ims_detect_request(m, (const struct sockaddr *)&rx->src.ss))
        return;
    new_request(p, m, rx);
}

void ims_proxy_rx(void *ctx, const struct sip_tp_rx *rx)
{
    struct ims_proxy *p = ctx;
    int lim = px_limit_rx(p, rx); /* ratelimit.c: per-source bucket, before parsing */
    if (lim < 0)
        return;
    struct sip_msg m;
    struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
    int n = ims_sip_parse(rx->buf, rx->len, rx->proto != SIP_PROTO_UDP, &m, hdrs,
                          SIP_MAX_HEADERS_DEFAULT);
    if (n < 0) {
        ims_metrics_inc(IMS_M_SIP_MALFORMED);
        ims_detect_malformed((const struct sockaddr *)&rx->src.ss); /* detect hook */
        rx_malformed(p, &m, rx, n);
        return;
    }
    if (m.kind == SIP_MSG_RESPONSE)
        rx_response(p, &m, rx);
    else if (lim == 0 || !px_limit_reject(p, &m, rx))
        rx_request(p, &m, rx);
    /* metrics hook: this worker's live transactions, as of now */
    ims_metrics_gauge_shard(IMS_G_TXNS_LIVE, p->idx, ims_sip_txn_table_live(p->txns));
}

/* ------------------------------------------------------------ the static router */

void ims_proxy_route_static(void *unused, struct proxy_req *r, const struct sip_msg *m)
{
    (void)unused;
    if (r->to_self) {
        if (m->ruri.user.len)
            ims_proxy_reply(r, 404, NULL, NULL);
        else
            ims_proxy_reply(r, 405, NULL,
                            &(struct proxy_reply_opts){ .hdrs = IMS_S("Allow: OPTIONS\r\n") });
        return;
    }
    struct proxy_fwd f = { 0 };
    /* Route first (the core uses it when next_hop is empty), in-dialog
     * requests follow the Request-URI, the rest the static routes. */
    bool routes_left = false;
    if (m->first[SIP_H_ROUTE] >= 0) {
        ims_str v;
        routes_left = px_route_value(m, r->npop, &v, NULL) == 0;
        if (routes_left && r->strict_fix) {
            /* the last value became the Request-URI */
            ims_str last;
            if (px_route_value(m, SIZE_MAX, &last, NULL) == 0 && last.p == v.p)
                routes_left = false;
        }
    }
    if (!routes_left && m->to.tag.len == 0) {
        ims_str host = m->ruri.host;
        struct sip_uri su;
        if (r->strict_fix && px_route_value(m, SIZE_MAX, NULL, &su) == 0)
            host = su.host;
        const struct proxy_route_int *rt = px_route_find(r->p, host);
        if (rt)
            f.next_hop = ims_str_cstr(rt->next_hop);
    }
    int rc = ims_proxy_forward(r, &f);
    if (rc == 0)
        return;
    if (rc == IMS_EINVAL && m->ruri.scheme != SIP_URI_SIP && m->ruri.scheme != SIP_URI_SIPS &&
        f.next_hop.len == 0 && !routes_left)
        ims_proxy_reply(r, 416, NULL, NULL);
    else
        ims_proxy_forward_failed(r, rc);
}
