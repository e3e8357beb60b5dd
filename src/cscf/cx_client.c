/* cx_client.c - Cx requests over the in-process HSS or Diameter (cx_client.h).
 *
 * A request becomes a struct cx_op: its own copy of the request (and, for
 * Diameter, of the answer), owned by the transport while in flight and
 * delivered to the caller's loop, where the call it belongs to is found by
 * slot and generation.  The call (struct cx_call, in the client's pool)
 * owns the deadline; whichever comes first - the op or the deadline - ends
 * the call, and an op for a call that already ended is freed unread. */
#include "cscf/cx_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "hss/hss.h"

#define OP_ARENA 8192 /* request strings: SAR with 16 identities fits */

struct ims_cx_transport {
    ims_cx_fake_fn fake;
    void *fake_ctx;
    struct ims_hss *hss;
    bool dia_started, stopped;
    char dest_realm[256], dest_host[256];
    /* Diameter ops between ims_dia_send() and their answer: freed at
     * ims_cx_transport_free() if freeDiameter never completed them */
    pthread_mutex_t lock;
    struct cx_op *inflight;
    /* RTR/PPR from the HSS (ims_cx_transport_serve), under lock */
    ims_cx_serve_fn serve_fn;
    void *serve_ctx;
};

struct cx_call {
    bool used;
    uint32_t gen;
    int32_t next_free;
    ims_cx_fn cb;
    void *ud;
    struct ims_timer tm;
    struct ims_cx *c;
};

struct ims_cx {
    struct ims_cx_transport *t;
    struct ims_loop *loop;
    struct cx_call *calls;
    size_t ncalls, live;
    int32_t free_head;
    unsigned timeout_ms;
};

struct cx_op {
    struct cx_op *prev, *next; /* transport->inflight (Diameter only) */
    struct ims_cx_transport *t;
    struct ims_cx *c;          /* dereferenced on c's loop only */
    uint32_t slot, gen;
    unsigned cmd;
    union {
        uint64_t present;
        struct cx_uar uar;
        struct cx_mar mar;
        struct cx_sar sar;
        struct cx_lir lir;
    } req;
    size_t used;
    /* Diameter answer copy */
    int rc;
    struct dia_ans ans;
    char *ans_buf;
    size_t ans_len;
    /* Last, and not zeroed (ims_cx_send): [0, used) is all that is read. */
    char arena[OP_ARENA];
};

/* ------------------------------------------------------------ ops */

static void op_free(struct cx_op *op)
{
    if (!op)
        return;
    /* the secrets (CK, IK, XRES, HA1) are in ans_buf; op->ans holds only
     * slices of it, so wiping the buffer is enough (the answer struct is
     * some KiB of pointers, and four Cx answers go by per registration) */
    if (op->ans_buf) {
        ims_wipe(op->ans_buf, op->ans_len);
        ims_free(op->ans_buf);
    }
    ims_free(op);
}

static int op_str(struct cx_op *op, ims_str *s)
{
    if (s->len == 0) {
        *s = IMS_STR_NULL;
        return 0;
    }
    if (s->len > OP_ARENA - op->used)
        return IMS_ELIMIT;
    memcpy(op->arena + op->used, s->p, s->len);
    s->p = op->arena + op->used;
    op->used += s->len;
    return 0;
}

/* Copies req into op, re-pointing every slice into op->arena. */
static int op_set_req(struct cx_op *op, unsigned cmd, const void *req)
{
    int rc = 0;
    op->cmd = cmd;
    switch (cmd) {
    case DIA_CMD_UAR:
        op->req.uar = *(const struct cx_uar *)req;
        rc |= op_str(op, &op->req.uar.dest_host) | op_str(op, &op->req.uar.dest_realm);
        rc |= op_str(op, &op->req.uar.impi) | op_str(op, &op->req.uar.impu);
        rc |= op_str(op, &op->req.uar.visited);
        break;
    case DIA_CMD_MAR: {
        struct cx_mar *m = &op->req.mar;
        *m = *(const struct cx_mar *)req;
        rc |= op_str(op, &m->dest_host) | op_str(op, &m->dest_realm);
        rc |= op_str(op, &m->impi) | op_str(op, &m->impu) | op_str(op, &m->server_name);
        rc |= op_str(op, &m->item.scheme) | op_str(op, &m->item.authenticate);
        rc |= op_str(op, &m->item.authorization) | op_str(op, &m->item.context);
        break;
    }
    case DIA_CMD_SAR: {
        struct cx_sar *s = &op->req.sar;
        *s = *(const struct cx_sar *)req;
        if (s->n_impu > CX_MAX_IMPU)
            return IMS_EINVAL;
        rc |= op_str(op, &s->dest_host) | op_str(op, &s->dest_realm);
        rc |= op_str(op, &s->impi) | op_str(op, &s->server_name) | op_str(op, &s->wildcard);
        for (size_t i = 0; i < s->n_impu; i++)
            rc |= op_str(op, &s->impu[i]);
        break;
    }
    case DIA_CMD_LIR:
        op->req.lir = *(const struct cx_lir *)req;
        rc |= op_str(op, &op->req.lir.dest_host) | op_str(op, &op->req.lir.dest_realm);
        rc |= op_str(op, &op->req.lir.impu) | op_str(op, &op->req.lir.wildcard);
        break;
    default:
        return IMS_EINVAL;
    }
    return rc ? IMS_ELIMIT : 0;
}

/* Every slice of an answer, for measuring and copying. */
static void ans_each(struct dia_ans *a, void (*f)(ims_str *s, void *ctx), void *ctx)
{
    f(&a->user_name, ctx);
    for (size_t i = 0; i < a->n_impu && i < CX_MAX_IMPU; i++)
        f(&a->impu[i], ctx);
    f(&a->server_name, ctx);
    for (size_t i = 0; i < a->caps.n_names && i < CX_MAX_NAMES; i++)
        f(&a->caps.names[i], ctx);
    for (size_t i = 0; i < a->n_item && i < CX_MAX_ITEMS; i++) {
        struct cx_auth_item *it = &a->items[i];
        f(&it->scheme, ctx);
        f(&it->authenticate, ctx);
        f(&it->authorization, ctx);
        f(&it->context, ctx);
        f(&it->ck, ctx);
        f(&it->ik, ctx);
        f(&it->digest.realm, ctx);
        f(&it->digest.algorithm, ctx);
        f(&it->digest.qop, ctx);
        f(&it->digest.ha1, ctx);
    }
    f(&a->user_data, ctx);
    for (int i = 0; i < 2; i++) {
        f(&a->charging.ecf[i], ctx);
        f(&a->charging.ccf[i], ctx);
    }
    for (size_t i = 0; i < a->assoc.n_impi && i < CX_MAX_ASSOC; i++)
        f(&a->assoc.impi[i], ctx);
    f(&a->wildcard, ctx);
    f(&a->sh_data, ctx);
    for (size_t i = 0; i < a->n_redirect && i < DIA_MAX_REDIRECT; i++)
        f(&a->redirect[i], ctx);
    f(&a->error_message, ctx);
}

static void measure(ims_str *s, void *ctx)
{
    *(size_t *)ctx += s->len;
}

struct copy_ctx {
    char *p;
};

static void copy_str(ims_str *s, void *ctx)
{
    struct copy_ctx *c = ctx;
    if (!s->len) {
        *s = IMS_STR_NULL;
        return;
    }
    memcpy(c->p, s->p, s->len);
    s->p = c->p;
    c->p += s->len;
}

/* Deep copy of a freeDiameter-owned answer into op (freeDiameter's thread). */
static int op_copy_ans(struct cx_op *op, const struct dia_ans *ans)
{
    op->ans = *ans;
    size_t total = 0;
    ans_each(&op->ans, measure, &total);
    if (total) {
        op->ans_buf = ims_alloc(total);
        if (!op->ans_buf)
            return IMS_ENOMEM;
        op->ans_len = total;
    }
    struct copy_ctx cc = { op->ans_buf };
    ans_each(&op->ans, copy_str, &cc);
    return 0;
}

/* ------------------------------------------------------------ calls */

static void call_end(struct ims_cx *c, struct cx_call *k)
{
    ims_timer_stop(c->loop, &k->tm);
    k->used = false;
    k->cb = NULL;
    k->ud = NULL;
    k->next_free = c->free_head;
    c->free_head = (int32_t)(k - c->calls);
    c->live--;
}

static void call_timeout(struct ims_loop *loop, struct ims_timer *t)
{
    struct cx_call *k = t->data;
    struct ims_cx *c = k->c;
    ims_cx_fn cb = k->cb;
    void *ud = k->ud;
    k->gen++; /* a late answer no longer matches */
    call_end(c, k);
    LOG_I("cx", "event=timeout timeout_ms=%u", c->timeout_ms);
    cb(IMS_ETIMEDOUT, NULL, ud);
}

/* The op's call, on the caller's loop: deliver if it still waits. */
static void deliver(struct cx_op *op, int rc, const struct dia_ans *ans)
{
    struct ims_cx *c = op->c;
    struct cx_call *k = op->slot < c->ncalls ? &c->calls[op->slot] : NULL;
    if (!k || !k->used || k->gen != op->gen) {
        LOG_D("cx", "event=late_answer cmd=%u", op->cmd);
        return;
    }
    ims_cx_fn cb = k->cb;
    void *ud = k->ud;
    k->gen++;
    call_end(c, k);
    cb(rc, ans, ud);
}

/* in-process: on the caller's loop */
static void local_done(struct ims_loop *loop, int rc, const struct dia_ans *ans, void *arg)
{
    struct cx_op *op = arg;
    deliver(op, rc ? IMS_EBACKEND : 0, ans);
    op_free(op);
}

static void local_drop(void *arg)
{
    op_free(arg);
}

/* Diameter: the posted answer, on the caller's loop */
static void dia_deliver(struct ims_loop *loop, void *arg)
{
    struct cx_op *op = arg;
    deliver(op, op->rc, op->rc == 0 ? &op->ans : NULL);
    op_free(op);
}

static void inflight_unlink(struct ims_cx_transport *t, struct cx_op *op)
{
    pthread_mutex_lock(&t->lock);
    if (op->prev)
        op->prev->next = op->next;
    else if (t->inflight == op)
        t->inflight = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    pthread_mutex_unlock(&t->lock);
}

/* Diameter: freeDiameter's thread (ims_dia_start got no loop) */
static void dia_done(struct ims_loop *unused, int rc, const struct dia_ans *ans, void *arg)
{
    struct cx_op *op = arg;
    inflight_unlink(op->t, op);
    op->rc = rc;
    if (rc == 0 && op_copy_ans(op, ans) != 0)
        op->rc = IMS_ENOMEM;
    /* the loop exists until the transport was stopped (rule 3), and this
     * cannot run after ims_dia_stop() returned */
    if (ims_loop_post(op->c->loop, dia_deliver, op, local_drop) != 0)
        op_free(op); /* the call ends at its deadline */
}

void ims_cx_sar_init(struct cx_sar *q, ims_str impi, ims_str impu, ims_str server_name,
                     int32_t sat)
{
    memset(q, 0, sizeof(*q));
    if (impi.p) {
        q->impi = impi;
        DIA_SET(q, CX_SAR_IMPI);
    }
    q->impu[0] = impu;
    q->n_impu = 1;
    q->server_name = server_name;
    q->sat = sat;
    q->uda = 0;
    DIA_SET(q, CX_SAR_IMPU);
    DIA_SET(q, CX_SAR_SERVER);
    DIA_SET(q, CX_SAR_TYPE);
    DIA_SET(q, CX_SAR_UDA);
}

int ims_cx_send(struct ims_cx *c, unsigned cmd, const void *req, ims_cx_fn cb, void *ud)
{
    struct ims_cx_transport *t = c->t;
    if (!cb || !req || t->stopped)
        return IMS_EINVAL;
    if (c->free_head < 0)
        return IMS_ELIMIT;
    struct cx_op *op = ims_alloc(sizeof(*op));
    if (!op)
        return IMS_ENOMEM;
    memset(op, 0, offsetof(struct cx_op, arena));
    int rc = op_set_req(op, cmd, req);
    if (rc) {
        op_free(op);
        return rc;
    }
    /* the head is the same in every request struct */
    struct cx_uar *head = &op->req.uar;
    ims_str realm = ims_str_cstr(t->dest_realm), host = ims_str_cstr(t->dest_host);
    if (!DIA_HAS(head, DIA_REQ_DEST_REALM) && realm.len) {
        head->dest_realm = realm;
        DIA_SET(head, DIA_REQ_DEST_REALM);
    }
    if (!DIA_HAS(head, DIA_REQ_DEST_HOST) && host.len) {
        head->dest_host = host;
        DIA_SET(head, DIA_REQ_DEST_HOST);
    }
    int32_t slot = c->free_head;
    struct cx_call *k = &c->calls[slot];
    op->t = t;
    op->c = c;
    op->slot = (uint32_t)slot;
    op->gen = k->gen;
    /* the deadline first: a call that could not time out could hold its
     * SIP request forever */
    rc = ims_timer_start(c->loop, &k->tm, c->timeout_ms);
    if (rc) {
        op_free(op);
        return rc;
    }
    if (t->fake) {
        rc = t->fake(t->fake_ctx, cmd, &op->req, &op->ans);
        if (rc == IMS_ETIMEDOUT) {
            op_free(op); /* never answered: the deadline ends the call */
            rc = 0;
        } else if (rc == 0 && ims_loop_post(c->loop, dia_deliver, op, local_drop) != 0) {
            rc = IMS_ENOMEM;
        }
    } else if (t->hss) {
        rc = ims_hss_local(t->hss, cmd, &op->req, c->loop, local_done, local_drop, op);
    } else {
        pthread_mutex_lock(&t->lock);
        op->next = t->inflight;
        if (t->inflight)
            t->inflight->prev = op;
        t->inflight = op;
        pthread_mutex_unlock(&t->lock);
        rc = ims_dia_send(cmd, &op->req, dia_done, op);
        if (rc)
            inflight_unlink(t, op);
    }
    if (rc) {
        ims_timer_stop(c->loop, &k->tm);
        op_free(op);
        return rc;
    }
    /* from here the op belongs to the transport */
    c->free_head = k->next_free;
    k->used = true;
    k->cb = cb;
    k->ud = ud;
    c->live++;
    return 0;
}

size_t ims_cx_pending(const struct ims_cx *c)
{
    return c->live;
}

/* ------------------------------------------------------------ setup */

int ims_cx_new(struct ims_cx_transport *t, struct ims_loop *loop, size_t max_pending,
               unsigned timeout_ms, struct ims_cx **out)
{
    if (!t || !loop || max_pending == 0 || max_pending > INT32_MAX || timeout_ms == 0)
        return IMS_EINVAL;
    struct ims_cx *c = ims_calloc(1, sizeof(*c));
    if (!c)
        return IMS_ENOMEM;
    c->calls = ims_calloc(max_pending, sizeof(*c->calls));
    if (!c->calls) {
        ims_free(c);
        return IMS_ENOMEM;
    }
    c->t = t;
    c->loop = loop;
    c->ncalls = max_pending;
    c->timeout_ms = timeout_ms;
    c->free_head = -1;
    for (size_t i = max_pending; i-- > 0;) {
        struct cx_call *k = &c->calls[i];
        k->c = c;
        ims_timer_init(&k->tm, call_timeout, k);
        k->next_free = c->free_head;
        c->free_head = (int32_t)i;
    }
    *out = c;
    return 0;
}

void ims_cx_free(struct ims_cx *c)
{
    if (!c)
        return;
    /* the loop is stopped or gone: timers are not touched (loop.h: armed
     * timers are forgotten when the loop is freed) */
    ims_free(c->calls);
    ims_free(c);
}

/* An RTR/PPR over Diameter, on freeDiameter's thread (dia.h: a handler
 * without a loop): answered here, at once. */
uint32_t ims_cx_transport_hss_request(struct ims_cx_transport *t, unsigned cmd, const void *req)
{
    pthread_mutex_lock(&t->lock);
    ims_cx_serve_fn fn = t->serve_fn;
    void *ctx = t->serve_ctx;
    pthread_mutex_unlock(&t->lock);
    if (!fn || (cmd != DIA_CMD_RTR && cmd != DIA_CMD_PPR))
        return DIA_UNABLE_TO_COMPLY;
    return fn(ctx, cmd, req);
}

static void dia_incoming(struct ims_dia_req *req, void *arg)
{
    struct ims_cx_transport *t = arg;
    uint32_t code = ims_cx_transport_hss_request(t, req->cmd,
                                                 req->cmd == DIA_CMD_RTR ? (const void *)&req->u.rtr
                                                                         : (const void *)&req->u.ppr);
    LOG_I("cx", "event=hss_request cmd=%u peer=%.*s sess=%.*s result=%u", req->cmd,
          IMS_SF(req->origin_host), IMS_SF(req->session_id), code);
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    dia_ans_result(&a, code);
    ims_dia_answer(req, &a);
}

void ims_cx_transport_serve(struct ims_cx_transport *t, const char *server_name,
                            ims_cx_serve_fn fn, void *ctx)
{
    if (!t || t->stopped)
        return;
    pthread_mutex_lock(&t->lock);
    t->serve_fn = fn;
    t->serve_ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    if (t->hss)
        ims_hss_set_local_scscf(t->hss, server_name, fn, ctx);
}

int ims_cx_transport_start(const struct ims_cx_transport_cfg *cfg,
                           struct ims_cx_transport **out, char *err, size_t errsz)
{
    struct ims_cx_transport *t = ims_calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errsz, "cx: out of memory");
        return IMS_ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    snprintf(t->dest_realm, sizeof(t->dest_realm), "%s", cfg->dest_realm ? cfg->dest_realm : "");
    snprintf(t->dest_host, sizeof(t->dest_host), "%s", cfg->dest_host ? cfg->dest_host : "");
    t->hss = cfg->hss;
    t->fake = cfg->fake;
    t->fake_ctx = cfg->fake_ctx;
    if (!t->hss && !t->fake) {
        if (!cfg->dia) {
            snprintf(err, errsz, "cx: neither an HSS in this process nor a Diameter setup");
            ims_cx_transport_free(t);
            return IMS_EINVAL;
        }
        /* answers on freeDiameter's thread: we post them to the worker
         * that asked (the node's single loop would be the wrong one); the
         * HSS's RTR/PPR are served there too (dia_incoming) */
        struct ims_dia_cfg dc = *cfg->dia;
        dc.scscf_side = true;
        int rc = ims_dia_start(&dc, NULL, dia_incoming, t, err, errsz);
        t->dia_started = true; /* even a failed start needs the release */
        if (rc) {
            ims_cx_transport_free(t);
            return rc;
        }
    }
    LOG_N("cx", "event=started transport=%s dest_realm=%s dest_host=%s",
          t->fake ? "fake" : t->hss ? "in-process" : "diameter", t->dest_realm, t->dest_host[0] ? t->dest_host : "-");
    *out = t;
    return 0;
}

bool ims_cx_transport_local(const struct ims_cx_transport *t)
{
    return t && t->hss;
}

void ims_cx_transport_stop(struct ims_cx_transport *t)
{
    if (!t || t->stopped)
        return;
    t->stopped = true;
    if (t->hss) /* the HSS outlives us: it must not call into a stopped S-CSCF */
        ims_hss_set_local_scscf(t->hss, NULL, NULL, NULL);
    if (t->dia_started)
        ims_dia_stop();
}

void ims_cx_transport_free(struct ims_cx_transport *t)
{
    if (!t)
        return;
    ims_cx_transport_stop(t);
    if (t->dia_started)
        ims_dia_release();
    pthread_mutex_lock(&t->lock);
    while (t->inflight) {
        struct cx_op *op = t->inflight;
        t->inflight = op->next;
        op_free(op);
    }
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_destroy(&t->lock);
    ims_free(t);
}

/* ------------------------------------------------------------ outcome */

enum ims_cx_outcome ims_cx_outcome(int rc, const struct dia_ans *ans)
{
    if (rc || !ans)
        return IMS_CX_UNAVAILABLE;
    bool exp;
    uint32_t code = dia_ans_code(ans, &exp);
    if (code >= 2000 && code < 3000)
        return IMS_CX_OK;
    if (exp) {
        switch (code) {
        case DIA_ERROR_USER_UNKNOWN: return IMS_CX_USER_UNKNOWN;
        case DIA_ERROR_IDENTITIES_DONT_MATCH: return IMS_CX_IDENTITIES_DONT_MATCH;
        case DIA_ERROR_IDENTITY_NOT_REGISTERED: return IMS_CX_NOT_REGISTERED;
        case DIA_ERROR_ROAMING_NOT_ALLOWED: return IMS_CX_ROAMING_NOT_ALLOWED;
        case DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED: return IMS_CX_SCHEME_UNSUPPORTED;
        default: return code >= 5000 ? IMS_CX_REFUSED : IMS_CX_UNAVAILABLE;
        }
    }
    if (code == DIA_AUTHORIZATION_REJECTED)
        return IMS_CX_AUTH_REJECTED;
    if (code == DIA_UNABLE_TO_COMPLY || code < 5000)
        return IMS_CX_UNAVAILABLE; /* 3xxx (3002 unable to deliver, 3004 busy), 4xxx */
    return IMS_CX_REFUSED;
}
