/* regevent.c - the reg-event package at the S-CSCF (RFC 3680, RFC 6665,
 * TS 24.229 §5.4.2).
 *
 * SUBSCRIBE (Event: reg) for a registered IMPU, from the user itself (a
 * P-Asserted-Identity in the implicit set) or from a P-CSCF on the
 * registration's Path (its host and port): 200 with Expires (capped at
 * [scscf] reg_event_expires) and our Contact, then at once a NOTIFY with
 * the full state (RFC 3680 §5.3).  Anyone else: 403.  With a policy the
 * user's own SUBSCRIBE also needs ims:subscribe (policy_ok, docs/keystone.md).
 * A refresh in the dialog gets 200 and a NOTIFY; Expires: 0 a final NOTIFY
 * (terminated).
 *
 * Every change of the registration (new contact, refresh, de-registration,
 * expiry, RTR, PPR) sends each subscriber a full-state NOTIFY, its version
 * one up; contacts that went are listed once more as terminated with the
 * event that ended them.  When the registration is gone the NOTIFYs say
 * Subscription-State: terminated and the subscriptions end.
 *
 * The NOTIFY is a request in the SUBSCRIBE's dialog (RFC 3261 §12.1.1, UAS
 * side): From = the SUBSCRIBE's To with our tag (the one the 200 got), To =
 * its From, its Call-ID, our CSeq counting up, Request-URI = the
 * subscriber's Contact, Route = its Record-Route values in order.
 *
 * State: the subscriptions of a registration are one entry of g->re_subs
 * (table.h), keyed by the registration's key IMPU, with what the last
 * NOTIFY told (to report what went).  CSeq and version are taken under the
 * shard lock; documents are built and sent outside it, on the worker that
 * saw the change.  A failed NOTIFY (a final response >= 300 other than
 * 401/407, or none) ends its subscription (RFC 6665 §4.1.2.2). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xml.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "keystone/keystone.h" /* ims:subscribe with the request's token */

#define RE_MAX_SUBS 4       /* subscriptions per registration */
#define RE_MAX_ENTRIES 4096 /* registrations with subscriptions */
#define RE_HDR_MAX 512
#define RE_TAG_MAX 128
#define RE_BODY_MAX 65536
#define RE_NC (2 * IMS_REG_MAX_CONTACTS) /* contacts in a document: now + gone */

struct re_sub {
    char call_id[IMS_REG_CALLID_MAX];
    char their_tag[RE_TAG_MAX];
    char our_tag[16];
    char from[RE_HDR_MAX];        /* our NOTIFY's From: the SUBSCRIBE's To + our tag */
    char to[RE_HDR_MAX];          /* our NOTIFY's To: the SUBSCRIBE's From */
    char target[IMS_REG_URI_MAX]; /* the subscriber's Contact URI */
    char route[IMS_REG_PATH_MAX]; /* its Record-Route values, in order, or "" */
    uint32_t cseq;                /* our last CSeq in the dialog */
    uint32_t rcseq;               /* the subscriber's last */
    uint32_t version;             /* the next document's version */
    int64_t expires;              /* absolute, wall-clock seconds */
};

struct re_contact {
    char uri[IMS_REG_URI_MAX];
    char call_id[IMS_REG_CALLID_MAX];
    uint32_t cseq;
    unsigned q;
    int64_t expires;
};

/* A registration as a document shows it. */
struct re_state {
    size_t nimpu;
    char impus[IMS_REG_MAX_IMPUS][IMS_REG_ID_MAX];
    bool barred[IMS_REG_MAX_IMPUS];
    size_t nc;
    struct re_contact c[IMS_REG_MAX_CONTACTS];
};

/* One table entry: a registration's subscriptions. */
struct re_entry {
    size_t n;
    struct re_sub s[RE_MAX_SUBS];
    struct re_state last; /* what the last NOTIFY told */
};

/* One NOTIFY to send: a copy of its subscription, CSeq and version taken. */
struct re_note {
    struct re_sub sub;
    bool final;
    const char *reason; /* Subscription-State reason of a final one */
};

/* What a change sends, built under the lock, sent after it. */
struct re_batch {
    struct re_state st; /* identities of the document */
    size_t nc;
    struct re_contact c[RE_NC];
    bool active[RE_NC];
    const char *event[RE_NC];
    size_t nn;
    struct re_note notes[RE_MAX_SUBS];
};

static const struct re_state re_none; /* no registration: everything is new */

/* ------------------------------------------------------------ reginfo */

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int add_contact(struct ims_buf *b, const struct cscf_reginfo_contact *c)
{
    int rc = ims_buf_printf(b, "<contact id=\"c%08x\" state=\"%s\" event=\"%s\"", fnv(c->uri),
                            c->active ? "active" : "terminated",
                            c->event ? c->event : "registered");
    if (rc == 0 && c->active)
        rc = ims_buf_printf(b, " expires=\"%ld\"", c->expires > 0 ? c->expires : 0);
    if (rc == 0 && c->q && c->q != 1000)
        rc = ims_buf_printf(b, " q=\"%u.%03u\"", c->q / 1000, c->q % 1000);
    if (rc == 0 && c->call_id && c->call_id[0]) {
        rc = ims_buf_add_cstr(b, " callid=\"");
        if (rc == 0)
            rc = ims_xml_escape(b, ims_str_cstr(c->call_id));
        if (rc == 0)
            rc = ims_buf_printf(b, "\" cseq=\"%u\"", c->cseq);
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "><uri>");
    if (rc == 0)
        rc = ims_xml_escape(b, ims_str_cstr(c->uri));
    if (rc == 0)
        rc = ims_buf_add_cstr(b, "</uri></contact>");
    return rc;
}

int cscf_reginfo_build(const struct cscf_reginfo *ri, struct ims_buf *out)
{
    bool any = false;
    for (size_t i = 0; i < ri->nc; i++)
        any |= ri->c[i].active;
    int rc = ims_buf_printf(out,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"%u\" "
                            "state=\"full\">\n",
                            ri->version);
    for (size_t i = 0; rc == 0 && i < ri->nimpu; i++) {
        if (ri->barred && ri->barred[i])
            continue; /* TS 24.229 §5.4.2.1.2: barred identities are not shown */
        rc = ims_buf_add_cstr(out, "<registration aor=\"");
        if (rc == 0)
            rc = ims_xml_escape(out, ims_str_cstr(ri->impus[i]));
        if (rc == 0)
            rc = ims_buf_printf(out, "\" id=\"r%08x\" state=\"%s\">", fnv(ri->impus[i]),
                                any ? "active" : "terminated");
        for (size_t k = 0; rc == 0 && k < ri->nc; k++)
            rc = add_contact(out, &ri->c[k]);
        if (rc == 0)
            rc = ims_buf_add_cstr(out, "</registration>\n");
    }
    if (rc == 0)
        rc = ims_buf_add_cstr(out, "</reginfo>\n");
    return rc;
}

/* ------------------------------------------------------------ state */

static void state_of(const struct ims_reg *r, struct re_state *st)
{
    memset(st, 0, sizeof(*st));
    if (!r)
        return;
    for (size_t i = 0; i < r->nimpu && i < IMS_REG_MAX_IMPUS; i++) {
        snprintf(st->impus[i], IMS_REG_ID_MAX, "%s", r->impus[i]);
        st->barred[i] = r->barred[i];
    }
    st->nimpu = r->nimpu;
    if (st->nimpu == 0 && r->impu[0]) {
        snprintf(st->impus[0], IMS_REG_ID_MAX, "%s", r->impu);
        st->nimpu = 1;
    }
    for (size_t i = 0; i < r->ncontacts; i++) {
        struct re_contact *c = &st->c[st->nc++];
        snprintf(c->uri, sizeof(c->uri), "%s", r->contacts[i].uri);
        snprintf(c->call_id, sizeof(c->call_id), "%s", r->contacts[i].call_id);
        c->cseq = r->contacts[i].cseq;
        c->q = r->contacts[i].q;
        c->expires = r->contacts[i].expires;
    }
}

static const struct re_contact *find_contact(const struct re_state *st, const char *uri)
{
    for (size_t i = 0; i < st->nc; i++)
        if (strcmp(st->c[i].uri, uri) == 0)
            return &st->c[i];
    return NULL;
}

/* The document's contacts: now's (RFC 3680 §5.3 events: registered when
 * new, refreshed / shortened when its expiry moved) and the old ones that
 * went (gone_event). */
static void diff(struct re_batch *b, const struct re_state *old, const struct re_state *now,
                 const char *gone_event)
{
    b->st = now->nc ? *now : *old;
    b->nc = 0;
    for (size_t i = 0; i < now->nc; i++) {
        const struct re_contact *o = find_contact(old, now->c[i].uri);
        b->c[b->nc] = now->c[i];
        b->active[b->nc] = true;
        b->event[b->nc++] = !o || o->expires == now->c[i].expires ? "registered"
                            : o->expires < now->c[i].expires     ? "refreshed"
                                                                 : "shortened";
    }
    for (size_t i = 0; i < old->nc && b->nc < RE_NC; i++) {
        if (find_contact(now, old->c[i].uri))
            continue;
        b->c[b->nc] = old->c[i];
        b->active[b->nc] = false;
        b->event[b->nc++] = gone_event ? gone_event : "unregistered";
    }
}

/* RFC 6665 §4.2.2: the reason a subscription ends with its registration. */
static const char *end_reason(const char *gone_event)
{
    if (gone_event && strcmp(gone_event, "rejected") == 0)
        return "rejected";
    if (gone_event && strcmp(gone_event, "deactivated") == 0)
        return "deactivated";
    return "noresource";
}

static void take_note(struct re_batch *b, struct re_sub *s, bool final, const char *reason)
{
    s->cseq++;
    struct re_note *n = &b->notes[b->nn++];
    n->sub = *s;
    n->sub.version = s->version++;
    n->final = final;
    n->reason = reason;
}

static void drop_sub(struct re_entry *e, size_t i)
{
    e->s[i] = e->s[e->n - 1];
    e->n--;
}

/* ------------------------------------------------------------ NOTIFY */

/* A NOTIFY in flight: a request state of its worker (cscf_pend), so one
 * still pending at shutdown - the proxy frees its transaction without a
 * callback - is freed by ims_cscf_free(). */
struct re_ud {
    struct cscf_pend pend; /* first */
    struct ims_cscf *g;
    char key[IMS_REG_ID_MAX];
    char call_id[IMS_REG_CALLID_MAX];
    bool final;
};

struct end_ctx {
    const char *call_id;
};

static int end_fn(void **val, bool room, void *ctx)
{
    struct re_entry *e = *val;
    struct end_ctx *x = ctx;
    (void)room;
    if (!e)
        return IMS_ENOENT;
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->s[i].call_id, x->call_id) == 0) {
            drop_sub(e, i);
            break;
        }
    }
    if (e->n == 0) {
        ims_free(e);
        *val = NULL;
    }
    return 0;
}

static void ud_free(struct cscf_pend *p)
{
    ims_free(p);
}

static void on_notify_rsp(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud)
{
    struct re_ud *u = ud;
    cscf_pend_del(&u->pend);
    (void)p;
    (void)rsp;
    if (status >= 300 && status != 401 && status != 407 && !u->final) {
        /* RFC 6665 §4.1.2.2 (the subscriber's view, and ours): a failed
         * NOTIFY ends the subscription */
        struct end_ctx x = { u->call_id };
        cscf_table_with(u->g->re_subs, ims_str_cstr(u->key), end_fn, &x);
        LOG_I("regevent", "event=subscription_ended impu=%s call_id=%s status=%d", u->key,
              u->call_id, status);
    }
    ims_free(u);
}

static void send_note(struct cscf_worker *w, const char *key, const struct re_batch *b,
                      const struct re_note *n, int64_t now)
{
    struct ims_cscf *g = w->g;
    struct cscf_reginfo_contact rc[RE_NC];
    for (size_t i = 0; i < b->nc; i++) {
        rc[i] = (struct cscf_reginfo_contact){
            .uri = b->c[i].uri,
            .call_id = b->c[i].call_id,
            .cseq = b->c[i].cseq,
            .q = b->c[i].q,
            .active = b->active[i],
            .event = b->event[i],
            .expires = (long)(b->c[i].expires - now),
        };
    }
    struct cscf_reginfo ri = {
        .version = n->sub.version,
        .impus = (const char(*)[IMS_REG_ID_MAX])b->st.impus,
        .barred = b->st.barred,
        .nimpu = b->st.nimpu,
        .c = rc,
        .nc = b->nc,
    };
    struct ims_buf body, hdrs;
    ims_buf_init(&body, RE_BODY_MAX);
    ims_buf_init(&hdrs, 1024);
    struct re_ud *u = ims_calloc(1, sizeof(*u));
    int64_t left = n->sub.expires - now;
    int rc2 = u ? cscf_reginfo_build(&ri, &body) : IMS_ENOMEM;
    if (rc2 == 0 && n->final)
        rc2 = ims_buf_printf(&hdrs, "Event: reg\r\nSubscription-State: terminated;reason=%s\r\n",
                             n->reason);
    else if (rc2 == 0)
        rc2 = ims_buf_printf(&hdrs, "Event: reg\r\nSubscription-State: active;expires=%lld\r\n",
                             (long long)(left > 0 ? left : 0));
    if (rc2 == 0)
        rc2 = ims_buf_printf(&hdrs, "Contact: <%s>\r\n", g->s_uri);
    if (rc2 == 0) {
        u->g = g;
        u->final = n->final;
        snprintf(u->key, sizeof(u->key), "%s", key);
        snprintf(u->call_id, sizeof(u->call_id), "%s", n->sub.call_id);
        struct proxy_uac_req rq = {
            .method = IMS_S("NOTIFY"),
            .ruri = ims_str_cstr(n->sub.target),
            .from = ims_str_cstr(n->sub.from),
            .to = ims_str_cstr(n->sub.to),
            .call_id = ims_str_cstr(n->sub.call_id),
            .cseq = n->sub.cseq,
            .route = ims_str_cstr(n->sub.route),
            .hdrs = ims_buf_str(&hdrs),
            .content_type = IMS_S("application/reginfo+xml"),
            .body = ims_buf_str(&body),
        };
        cscf_pend_add(w, &u->pend, ud_free);
        rc2 = ims_proxy_uac_send(w->p, &rq, on_notify_rsp, u);
        if (rc2 == 0)
            u = NULL; /* the callback's now */
        else
            cscf_pend_del(&u->pend);
    }
    LOG_I("regevent", "event=notify impu=%s call_id=%s version=%u state=%s err=%s", key,
          n->sub.call_id, n->sub.version, n->final ? "terminated" : "active",
          rc2 ? ims_strerror(rc2) : "none");
    ims_free(u);
    ims_buf_free(&body);
    ims_buf_free(&hdrs);
}

static void send_batch(struct cscf_worker *w, const char *key, const struct re_batch *b,
                       int64_t now)
{
    for (size_t i = 0; i < b->nn; i++)
        send_note(w, key, b, &b->notes[i], now);
}

/* The NOTIFY that answers a SUBSCRIBE waits RE_FIRST_NOTIFY_MS.  RFC 6665
 * §4.1.2.4 lets it overtake the 200, but a proxy on the way (our P-CSCF
 * relays a response through the worker that owns its transaction, a new
 * request at once) would make that the rule rather than the exception, and
 * many UEs (sipp too) handle the 200 first.  If the loop has no timer to
 * spare, it goes at once. */
#define RE_FIRST_NOTIFY_MS 50

struct re_later {
    struct cscf_pend pend; /* first: freed at shutdown if still waiting */
    struct ims_timer tm;
    char key[IMS_REG_ID_MAX];
    struct re_batch b;
};

static void later_free(struct cscf_pend *p)
{
    ims_free(p);
}

static void later_fire(struct ims_loop *loop, struct ims_timer *tm)
{
    struct re_later *l = tm->data;
    struct cscf_worker *w = l->pend.w;
    (void)loop;
    cscf_pend_del(&l->pend);
    send_batch(w, l->key, &l->b, cscf_now_s());
    ims_free(l);
}

static void send_batch_later(struct cscf_worker *w, const char *key, const struct re_batch *b,
                             int64_t now)
{
    struct re_later *l = ims_calloc(1, sizeof(*l));
    if (!l) {
        send_batch(w, key, b, now);
        return;
    }
    snprintf(l->key, sizeof(l->key), "%s", key);
    l->b = *b;
    ims_timer_init(&l->tm, later_fire, l);
    cscf_pend_add(w, &l->pend, later_free);
    if (ims_timer_start(w->loop, &l->tm, RE_FIRST_NOTIFY_MS) != 0) {
        cscf_pend_del(&l->pend);
        send_batch(w, key, b, now);
        ims_free(l);
    }
}

/* ------------------------------------------------------------ changes */

struct change_ctx {
    const struct re_state *now;
    const char *gone_event;
    int64_t t;
    struct re_batch *b;
};

static int change_fn(void **val, bool room, void *ctx)
{
    struct re_entry *e = *val;
    struct change_ctx *x = ctx;
    (void)room;
    if (!e)
        return IMS_ENOENT;
    diff(x->b, &e->last, x->now, x->gone_event);
    bool ended = x->now->nc == 0;
    for (size_t i = 0; i < e->n;) {
        bool timeout = e->s[i].expires <= x->t;
        take_note(x->b, &e->s[i], ended || timeout,
                  ended ? end_reason(x->gone_event) : "timeout");
        if (ended || timeout)
            drop_sub(e, i);
        else
            i++;
    }
    if (!ended)
        e->last = *x->now;
    if (e->n == 0) {
        ims_free(e);
        *val = NULL;
    }
    return 0;
}

/* Notifies the subscribers of registration key: its state is now (no
 * contact: gone); subscriptions whose time is up at t end. */
static void notify_key(struct cscf_worker *w, const char *key, const struct re_state *now,
                       const char *gone_event, int64_t t)
{
    struct re_batch *b = ims_calloc(1, sizeof(*b));
    if (!b) {
        LOG_W("regevent", "event=notify_failed impu=%s err=ENOMEM", key);
        return;
    }
    struct change_ctx x = { now, gone_event, t, b };
    if (cscf_table_with(w->g->re_subs, ims_str_cstr(key), change_fn, &x) == 0)
        send_batch(w, key, b, t);
    ims_free(b);
}

/* cscf_regevent_changed at t (seconds): one clock reading decides both
 * the registration's state and which subscriptions have timed out. */
static void changed_at(struct cscf_worker *w, const char *impu, const char *gone_event, int64_t t)
{
    struct ims_cscf *g = w->g;
    if (!g->re_subs || cscf_table_count(g->re_subs) == 0)
        return; /* nobody subscribed to anything: the common case */
    struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
    struct re_state *now = ims_calloc(1, sizeof(*now));
    if (reg && now) {
        bool live = ims_loc_get(g->loc, ims_str_cstr(impu), t, reg) == 0;
        if (live)
            state_of(reg, now);
        /* a registration that went is found by the identity it was kept under */
        notify_key(w, live ? reg->impu : impu, now, gone_event, t);
        ims_reg_clear(reg);
    }
    ims_free(reg);
    ims_free(now);
}

void cscf_regevent_changed(struct cscf_worker *w, const char *impu, const char *gone_event)
{
    changed_at(w, impu, gone_event, cscf_now_s());
}

struct post_job {
    struct cscf_worker *w;
    char impu[IMS_REG_ID_MAX];
    char event[16];
};

static void post_run(struct ims_loop *loop, void *arg)
{
    struct post_job *j = arg;
    (void)loop;
    cscf_regevent_changed(j->w, j->impu, j->event[0] ? j->event : NULL);
    ims_free(j);
}

void cscf_regevent_post(struct ims_cscf *g, const char *impu, const char *gone_event)
{
    if (!g->re_subs || cscf_table_count(g->re_subs) == 0 || g->nworkers == 0)
        return;
    struct cscf_worker *w = &g->w[fnv(impu) % g->nworkers];
    struct ims_loop *loop = __atomic_load_n(&w->loop, __ATOMIC_ACQUIRE);
    struct post_job *j = loop ? ims_calloc(1, sizeof(*j)) : NULL;
    if (!j)
        return;
    j->w = w;
    snprintf(j->impu, sizeof(j->impu), "%s", impu);
    snprintf(j->event, sizeof(j->event), "%s", gone_event ? gone_event : "");
    if (ims_loop_post(loop, post_run, j, ims_free) != 0) {
        LOG_W("regevent", "event=notify_failed impu=%s err=ENOMEM", impu);
        ims_free(j);
    }
}

/* ------------------------------------------------------------ expiry */

struct sweep_ctx {
    int64_t now;
    size_t n;
    char keys[64][IMS_REG_ID_MAX];
};

static void sweep_visit(ims_str key, void **val, void *ctx)
{
    struct re_entry *e = *val;
    struct sweep_ctx *x = ctx;
    for (size_t i = 0; i < e->n; i++) {
        if (e->s[i].expires <= x->now && x->n < 64 && key.len < IMS_REG_ID_MAX) {
            ims_str_copy(key, x->keys[x->n++], IMS_REG_ID_MAX);
            return;
        }
    }
}

void cscf_regevent_sweep(struct cscf_worker *w, int64_t now_s)
{
    struct ims_cscf *g = w->g;
    if (!g->re_subs || cscf_table_count(g->re_subs) == 0)
        return;
    struct sweep_ctx *x = ims_calloc(1, sizeof(*x));
    if (!x)
        return;
    x->now = now_s;
    cscf_table_sweep_due(g->re_subs, w->idx, g->nworkers, now_s, sweep_visit, x);
    /* the locks are released: a NOTIFY per registration with a subscription
     * whose time is up (it ends with reason=timeout, the others get the
     * current state) */
    for (size_t i = 0; i < x->n; i++)
        changed_at(w, x->keys[i], NULL, now_s);
    ims_free(x);
}

/* ------------------------------------------------------------ SUBSCRIBE */

/* Event: reg (RFC 3680 §4): the package name, parameters ignored. */
static bool event_reg(const struct sip_msg *m)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_EVENT);
    if (!h)
        return false;
    ims_str v = h->value;
    long semi = ims_str_chr(v, ';');
    if (semi >= 0)
        v.len = (size_t)semi;
    return ims_str_caseeq_lit(ims_str_trim(v), "reg");
}

static bool same_hostport(const struct sip_uri *a, const struct sip_uri *b)
{
    unsigned pa = a->port ? a->port : 5060, pb = b->port ? b->port : 5060;
    return ims_str_caseeq(a->host, b->host) && pa == pb;
}

/* TS 24.229 §5.4.2.1.1: the user (an asserted identity of the set, not
 * barred) or a P-CSCF on the registration's Path. */
static bool authorized(const struct sip_msg *m, const struct ims_reg *reg)
{
    struct sip_nameaddr pai;
    for (size_t i = 0; cscf_nth_nameaddr(m, SIP_H_P_ASSERTED_IDENTITY, i, &pai) == 0; i++) {
        char id[IMS_REG_ID_MAX];
        if (cscf_impu_of(&pai.uri, id, sizeof(id)) == 0)
            for (size_t k = 0; k < reg->nimpu; k++)
                if (!reg->barred[k] && strcmp(reg->impus[k], id) == 0)
                    return true;
        for (size_t c = 0; c < reg->ncontacts; c++) {
            struct sip_nameaddr hop;
            if (reg->contacts[c].path[0] &&
                cscf_first_nameaddr(ims_str_cstr(reg->contacts[c].path), &hop) == 0 &&
                pai.uri.host.len && same_hostport(&pai.uri, &hop.uri))
                return true;
        }
    }
    return false;
}

/* The IMPU of the set that an asserted identity of m names (the user
 * subscribing itself) into id.  false: none (a P-CSCF, or a stranger). */
static bool asserted_user(const struct sip_msg *m, const struct ims_reg *reg, char *id,
                          size_t cap)
{
    struct sip_nameaddr pai;
    for (size_t i = 0; cscf_nth_nameaddr(m, SIP_H_P_ASSERTED_IDENTITY, i, &pai) == 0; i++) {
        if (cscf_impu_of(&pai.uri, id, cap) != 0)
            continue;
        for (size_t k = 0; k < reg->nimpu; k++)
            if (strcmp(reg->impus[k], id) == 0)
                return true;
    }
    return false;
}

/* A SUBSCRIBE held while Keystone validates its own Bearer token. */
struct re_hold {
    struct cscf_pend pend; /* first: the worker's list */
    struct proxy_req *r;
};

static void hold_free(struct cscf_pend *p)
{
    ims_free(p);
}

static bool request(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    const struct ims_ks_token *tok);

static void on_token(void *arg, int rc, struct ims_ks_token *tok)
{
    struct re_hold *v = arg;
    struct cscf_worker *w = v->pend.w;
    if (cscf_bearer_stopping(w->g))
        return; /* shutting down: ims_cscf_free() frees v */
    struct proxy_req *r = v->r;
    cscf_pend_del(&v->pend);
    hold_free(&v->pend);
    const struct sip_msg *m = ims_proxy_req_msg(r);
    if (!ims_proxy_req_final_sent(r) && !ims_proxy_req_cancelled(r) && m) {
        if (rc)
            cscf_bearer_refused(w->g, r, rc);
        else if (!request(w, r, m, tok)) /* the registration went meanwhile */
            w->g->s_hook(w->g->s_hook_ctx, r, m);
    }
    ims_proxy_req_release(r);
}

/* Validates the request's token bt, r held meanwhile (then request() runs
 * again with it).  Always answers or holds. */
static void hold_for_token(struct cscf_worker *w, struct proxy_req *r, ims_str bt)
{
    struct re_hold *v = ims_calloc(1, sizeof(*v));
    if (!v) {
        ims_proxy_reply(r, 500, NULL, NULL);
        return;
    }
    v->r = r;
    cscf_pend_add(w, &v->pend, hold_free);
    ims_proxy_req_hold(r);
    int rc = ims_ks_validate(w->ks, bt.p, bt.len, 0, on_token, v);
    if (rc) {
        cscf_pend_del(&v->pend);
        hold_free(&v->pend);
        cscf_bearer_refused(w->g, r, rc == IMS_ENOMEM ? IMS_EBACKEND : rc);
        ims_proxy_req_release(r);
    }
}

/* policy: ims:subscribe for the user itself, with the credentials MESSAGE
 * uses (session.c): the request's own Bearer token, else the registration's
 * token, else the local roles.  A P-CSCF on the Path subscribes for the
 * network and is not a user the policy knows.  tok: the request's token,
 * validated (NULL: not yet).  true: go on; false: answered or held. */
static bool policy_ok(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                      const struct ims_reg *reg, const struct ims_ks_token *tok)
{
    char id[IMS_REG_ID_MAX];
    if (!cscf_policy_on(w->g) || !asserted_user(m, reg, id, sizeof(id)))
        return true;
    ims_str bt;
    struct ims_ks_token *cached = NULL;
    if (!tok && w->ks && cscf_bearer_token(m, &bt)) {
        int rc = bt.len ? ims_ks_lookup(w->ks, bt.p, bt.len, 0, &cached) : IMS_EINVAL;
        if (rc == IMS_EAGAIN) {
            hold_for_token(w, r, bt);
            return false;
        }
        if (rc) {
            cscf_bearer_refused(w->g, r, rc);
            return false;
        }
        tok = cached;
    }
    bool ok = !tok || cscf_bearer_token_of(w->g, tok, reg->impi);
    if (!ok) {
        LOG_I("regevent", "event=bearer_other_user impu=%s tok=%s", id, tok->hash_hex);
        ims_proxy_reply(r, 403, "Token Of Another User", NULL);
    } else if (!cscf_policy_user_allows(w, m, "ims:subscribe", reg->impi, id, tok,
                                        reg->profile ? reg->profile->roles : NULL)) {
        char wb[CSCF_URI_MAX + 96];
        ims_proxy_reply(r, 403, "Forbidden By Policy",
                        &(struct proxy_reply_opts){
                            .hdrs = cscf_policy_warning(w->g, "ims:subscribe", wb, sizeof(wb)) });
        ok = false;
    }
    ims_ks_token_unref(cached);
    return ok;
}

/* Expires of a SUBSCRIBE, capped (RFC 6665 §4.2.1.1: we may shorten it). */
static unsigned sub_expires(const struct ims_cscf *g, const struct sip_msg *m)
{
    unsigned cap = g->cfg->scscf_reg_event_expires ? g->cfg->scscf_reg_event_expires : 3600;
    long e = cscf_expires_hdr(m);
    if (e < 0)
        return cap; /* RFC 3680 §4.3: no default of its own; ours */
    return (unsigned long)e < cap ? (unsigned)e : cap;
}

struct sub_ctx {
    const struct re_sub *add;      /* initial: the new subscription */
    const struct re_state *now;    /* the registration */
    const struct sip_msg *m;       /* in-dialog: the request */
    unsigned expires;
    int64_t t;
    struct re_batch *b;
    int status;                    /* in-dialog: the answer */
};

static int sub_add_fn(void **val, bool room, void *ctx)
{
    struct sub_ctx *x = ctx;
    struct re_entry *e = *val;
    if (!e) {
        if (!room)
            return IMS_ELIMIT;
        e = ims_calloc(1, sizeof(*e));
        if (!e)
            return IMS_ENOMEM;
        *val = e;
    }
    size_t i = 0;
    while (i < e->n && strcmp(e->s[i].call_id, x->add->call_id) != 0)
        i++;
    if (i == e->n && e->n == RE_MAX_SUBS)
        return IMS_ELIMIT;
    if (i == e->n)
        e->n++;
    e->s[i] = *x->add;
    e->last = *x->now;
    /* the new subscriber learns everything as it is: no old state */
    diff(x->b, &re_none, x->now, NULL);
    take_note(x->b, &e->s[i], false, NULL);
    return 0;
}

static int sub_refresh_fn(void **val, bool room, void *ctx)
{
    struct sub_ctx *x = ctx;
    struct re_entry *e = *val;
    (void)room;
    x->status = 481;
    if (!e)
        return 0;
    const struct sip_msg *m = x->m;
    for (size_t i = 0; i < e->n; i++) {
        struct re_sub *s = &e->s[i];
        if (!ims_str_eq(m->call_id, ims_str_cstr(s->call_id)) ||
            !ims_str_eq(m->from.tag, ims_str_cstr(s->their_tag)) ||
            !ims_str_eq(m->to.tag, ims_str_cstr(s->our_tag)))
            continue;
        if (m->cseq.num <= s->rcseq) {
            x->status = 500; /* RFC 3261 §12.2.2: out of order */
            return 0;
        }
        s->rcseq = m->cseq.num;
        s->expires = x->t + x->expires;
        diff(x->b, &re_none, &e->last, NULL);
        take_note(x->b, s, x->expires == 0, "timeout");
        if (x->expires == 0)
            drop_sub(e, i);
        if (e->n == 0) {
            ims_free(e);
            *val = NULL;
        }
        x->status = 200;
        return 0;
    }
    return 0;
}

/* The dialog of an initial SUBSCRIBE as we keep it. */
static int sub_of(struct proxy_req *r, const struct sip_msg *m, unsigned expires, int64_t t,
                  struct re_sub *s)
{
    struct sip_nameaddr ct;
    const struct sip_hdr *to = ims_sip_hdr_first(m, SIP_H_TO);
    const struct sip_hdr *from = ims_sip_hdr_first(m, SIP_H_FROM);
    if (!to || !from || !m->from.tag.len || cscf_nth_nameaddr(m, SIP_H_CONTACT, 0, &ct) != 0)
        return IMS_EPROTO;
    if (m->call_id.len >= sizeof(s->call_id) || m->from.tag.len >= sizeof(s->their_tag) ||
        to->value.len + 32 >= sizeof(s->from) || from->value.len >= sizeof(s->to) ||
        ct.uri.raw.len >= sizeof(s->target))
        return IMS_ELIMIT;
    if (ims_proxy_req_to_tag(r, s->our_tag, sizeof(s->our_tag)) != 0)
        return IMS_EINVAL;
    ims_str_copy(m->call_id, s->call_id, sizeof(s->call_id));
    ims_str_copy(m->from.tag, s->their_tag, sizeof(s->their_tag));
    snprintf(s->from, sizeof(s->from), "%.*s;tag=%s", IMS_SF(to->value), s->our_tag);
    ims_str_copy(from->value, s->to, sizeof(s->to));
    ims_str_copy(ct.uri.raw, s->target, sizeof(s->target));
    /* RFC 3261 §12.1.1: the UAS's route set is the Record-Route, in order */
    struct ims_buf rr;
    ims_buf_init(&rr, sizeof(s->route) - 1);
    int rc = cscf_join_values(m, SIP_H_RECORD_ROUTE, &rr);
    if (rc == 0 && rr.len)
        ims_str_copy(ims_buf_str(&rr), s->route, sizeof(s->route));
    ims_buf_free(&rr);
    if (rc)
        return IMS_ELIMIT;
    s->rcseq = m->cseq.num;
    s->cseq = 0;
    s->version = 0;
    s->expires = t + expires;
    return 0;
}

static void reply(struct ims_cscf *g, struct proxy_req *r, int status, const char *reason,
                  unsigned expires)
{
    char hdrs[CSCF_URI_MAX + 64];
    int n = status == 200 ? snprintf(hdrs, sizeof(hdrs), "Expires: %u\r\nContact: <%s>\r\n",
                                     expires, g->s_uri)
                          : 0;
    size_t len = n > 0 && (size_t)n < sizeof(hdrs) ? (size_t)n : 0;
    ims_proxy_reply(r, status, reason,
                    &(struct proxy_reply_opts){ .hdrs = ims_str_make(hdrs, len) });
}

static void initial(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    const struct ims_reg *reg, struct re_batch *b, const struct ims_ks_token *tok)
{
    struct ims_cscf *g = w->g;
    if (!authorized(m, reg)) {
        LOG_I("regevent", "event=subscribe_refused impu=%s call_id=%.*s", reg->impu,
              IMS_SF(m->call_id));
        ims_proxy_reply(r, 403, "Not Authorized For reg Event", NULL);
        return;
    }
    if (!policy_ok(w, r, m, reg, tok)) /* ims:subscribe (docs/keystone.md) */
        return;
    unsigned expires = sub_expires(g, m); /* 0: a fetch (RFC 6665 §4.2.1.1) */
    int64_t t = cscf_now_s();
    struct re_sub *s = ims_calloc(1, sizeof(*s));
    struct re_state *now = ims_calloc(1, sizeof(*now));
    int rc = s && now ? sub_of(r, m, expires, t, s) : IMS_ENOMEM;
    if (rc) {
        ims_proxy_reply(r, rc == IMS_EPROTO ? 400 : 500, rc == IMS_EPROTO ? "Bad SUBSCRIBE" : NULL,
                        NULL);
        goto out;
    }
    state_of(reg, now);
    struct sub_ctx x = { .add = s, .now = now, .expires = expires, .t = t, .b = b };
    rc = cscf_table_with(g->re_subs, ims_str_cstr(reg->impu), sub_add_fn, &x);
    if (rc) {
        char ra[32];
        LOG_W("regevent", "event=subscribe_failed impu=%s err=%s", reg->impu, ims_strerror(rc));
        ims_proxy_reply(r, 503, "Too Many Subscriptions",
                        &(struct proxy_reply_opts){ .hdrs = cscf_retry_after(60, ra, sizeof(ra)) });
        goto out;
    }
    reply(g, r, 200, NULL, expires);
    LOG_I("regevent", "event=subscribed impu=%s call_id=%s expires=%u", reg->impu, s->call_id,
          expires);
    if (expires == 0) {
        /* a fetch: one NOTIFY, terminated, and nothing stays */
        b->notes[0].final = true;
        b->notes[0].reason = "timeout";
        struct end_ctx ex = { s->call_id };
        cscf_table_with(g->re_subs, ims_str_cstr(reg->impu), end_fn, &ex);
    }
    send_batch_later(w, reg->impu, b, t);
out:
    ims_free(s);
    ims_free(now);
}

/* A SUBSCRIBE in an existing dialog: refresh or (Expires: 0) end. */
static bool in_dialog(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                      struct ims_reg *reg, struct re_batch *b)
{
    struct ims_cscf *g = w->g;
    char key[IMS_REG_ID_MAX];
    if (cscf_impu_of(&m->to.uri, key, sizeof(key)) != 0)
        return false;
    /* the registration's key, if it is still there (the To may be an alias) */
    if (ims_loc_get(g->loc, ims_str_cstr(key), cscf_now_s(), reg) == 0)
        snprintf(key, sizeof(key), "%s", reg->impu);
    unsigned expires = sub_expires(g, m);
    struct sub_ctx x = { .m = m, .expires = expires, .t = cscf_now_s(), .b = b };
    cscf_table_with(g->re_subs, ims_str_cstr(key), sub_refresh_fn, &x);
    if (x.status != 200) {
        /* not a subscription of ours (RFC 6665 §4.1.2.2 expects 481) */
        ims_proxy_reply(r, x.status, x.status == 481 ? "Subscription Does Not Exist" : NULL,
                        NULL);
        return true;
    }
    reply(g, r, 200, NULL, expires);
    LOG_I("regevent", "event=%s impu=%s call_id=%.*s expires=%u",
          expires ? "refreshed" : "unsubscribed", key, IMS_SF(m->call_id), expires);
    send_batch_later(w, key, b, x.t);
    return true;
}

bool cscf_regevent_request(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    return request(w, r, m, NULL);
}

/* tok: the request's own Bearer token once validated (policy_ok), or NULL */
static bool request(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    const struct ims_ks_token *tok)
{
    struct ims_cscf *g = w->g;
    if (m->method != SIP_M_SUBSCRIBE || !g->re_subs || !event_reg(m))
        return false;
    struct ims_reg *reg = ims_calloc(1, sizeof(*reg));
    struct re_batch *b = ims_calloc(1, sizeof(*b));
    bool done = false;
    if (!reg || !b) {
        ims_proxy_reply(r, 500, NULL, NULL);
        done = true;
        goto out;
    }
    if (m->to.tag.len) {
        /* ours only when it is for us (our Contact): one passing through
         * belongs to someone else's dialog */
        if (ims_proxy_req_to_self(r))
            done = in_dialog(w, r, m, reg, b);
        goto out;
    }
    char impu[IMS_REG_ID_MAX];
    /* RFC 3680 §4.1: the Request-URI names the AOR; only a registration of
     * ours is our business, anything else goes on to the hook */
    if (cscf_impu_of(&m->ruri, impu, sizeof(impu)) != 0 ||
        ims_loc_get(g->loc, ims_str_cstr(impu), cscf_now_s(), reg) != 0)
        goto out;
    initial(w, r, m, reg, b, tok);
    done = true;
out:
    if (reg)
        ims_reg_clear(reg);
    ims_free(reg);
    ims_free(b);
    return done;
}

/* ------------------------------------------------------------ setup */

static void entry_free(void *v)
{
    ims_free(v);
}

/* the sweep's due time: the first subscription to run out */
static int64_t entry_due(const void *v, void *ctx)
{
    (void)ctx;
    const struct re_entry *e = v;
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < e->n; i++)
        if (e->s[i].expires < due)
            due = e->s[i].expires;
    return due;
}

int cscf_regevent_init(struct ims_cscf *g)
{
    /* an entry is ~34 KiB: at most one per registration, and a hard cap */
    size_t cap = g->cfg->scscf_max_registrations;
    if (cap == 0 || cap > RE_MAX_ENTRIES)
        cap = RE_MAX_ENTRIES;
    int rc = cscf_table_new(CSCF_SHARDS, cap, entry_free, &g->re_subs);
    if (rc == 0 && (rc = cscf_table_set_due(g->re_subs, entry_due, NULL)) != 0) {
        cscf_table_free(g->re_subs);
        g->re_subs = NULL;
    }
    return rc;
}

void cscf_regevent_fini(struct ims_cscf *g)
{
    cscf_table_free(g->re_subs);
    g->re_subs = NULL;
}
