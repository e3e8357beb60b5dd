/* cas_sub.c - the x-cloud-servers event package (docs/cloud-as.md): a user
 * SUBSCRIBEs to the service URI and gets a NOTIFY with their project's
 * servers (id, name, status) at once and whenever that changes.  RFC 6665
 * notifier: the dialog is made by our 200 (our To tag), NOTIFYs follow the
 * subscriber's Record-Route set (RFC 3261 §12.1.1) to its Contact; refresh
 * and unsubscribe (Expires: 0) come as SUBSCRIBEs in the dialog; expiry
 * sends a final NOTIFY (terminated;reason=timeout).
 *
 * Nova has no push to a user's token, so the AS polls (the "list" job with
 * the user's token and the cloud:compute:list policy) with back-off: poll_ms
 * after a change, doubling to poll_max_ms while nothing changes.
 * Subscriptions live on the worker that received the SUBSCRIBE; a refresh
 * that lands on another worker gets 481 and the UE subscribes again. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "cloudas/cas_int.h"
#include "net/transport.h"
#include "proxy/proxy.h"
#include "sip/msg.h"

#define SUB_MAX_EXPIRES 3600u
#define SUB_MIN_EXPIRES 60u
#define SUB_DEFAULT_EXPIRES 3600u
#define SUB_MAX_SERVERS 50

struct cas_sub {
    struct cas_sub *prev, *next;
    struct cas_worker *w;
    char impu[CAS_IMPU_MAX];
    char call_id[CAS_CALLID_MAX];
    char our_tag[16];
    char from[CAS_IMPU_MAX + 32];  /* our side: the SUBSCRIBE's To plus our tag */
    char to[CAS_IMPU_MAX + 96];    /* their side: the SUBSCRIBE's From (with tag) */
    char target[CAS_IMPU_MAX];     /* their Contact URI */
    char route[1024];              /* their Record-Route values, in order */
    char contact[CAS_URL_MAX];     /* ours: the AS port the SUBSCRIBE came in on */
    uint32_t cseq, rcseq;
    uint64_t expires_ms;           /* loop time */
    unsigned delay_ms;             /* next poll */
    uint8_t digest[32];            /* of the last state notified */
    bool notified, ending;
    struct ims_timer poll, expiry;
    struct cas_job *job;           /* the poll in flight */
};

static uint64_t now_ms(struct cas_worker *w)
{
    return ims_loop_now(w->loop);
}

static void sub_free(struct cas_sub *s)
{
    struct cas_worker *w = s->w;
    cas_job_cancel(s->job);
    ims_timer_stop(w->loop, &s->poll);
    ims_timer_stop(w->loop, &s->expiry);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    w->nsubs--;
    ims_free(s);
}

void cas_sub_free_all(struct cas_worker *w)
{
    while (w->subs)
        sub_free(w->subs);
}

static void notify_rsp(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud)
{
    if (status >= 300)
        LOG_I("cloudas", "event=notify_failed status=%d", status);
}

/* NOTIFY with body json (borrowed); state "active" or "terminated;reason=..." */
static void send_notify(struct cas_sub *s, const char *state, const char *json)
{
    struct ims_buf hdrs;
    ims_buf_init(&hdrs, 512);
    uint64_t now = now_ms(s->w);
    unsigned left = s->expires_ms > now ? (unsigned)((s->expires_ms - now + 999) / 1000) : 0;
    if (strcmp(state, "active") == 0)
        ims_buf_printf(&hdrs, "Event: " CAS_EVENT "\r\nSubscription-State: active;expires=%u\r\n",
                       left);
    else
        ims_buf_printf(&hdrs, "Event: " CAS_EVENT "\r\nSubscription-State: %s\r\n", state);
    ims_buf_printf(&hdrs, "Contact: <%s>\r\n", s->contact);
    if (!hdrs.p)
        return;
    struct proxy_uac_req rq = {
        .method = IMS_S("NOTIFY"),
        .ruri = ims_str_cstr(s->target),
        .from = ims_str_cstr(s->from),
        .to = ims_str_cstr(s->to),
        .call_id = ims_str_cstr(s->call_id),
        .cseq = ++s->cseq,
        .route = ims_str_cstr(s->route),
        .hdrs = ims_buf_str(&hdrs),
        .content_type = IMS_S("application/json"),
        .body = ims_str_cstr(json),
    };
    int rc = ims_proxy_uac_send(s->w->proxy, &rq, notify_rsp, NULL);
    LOG_I("cloudas", "event=notify impu=%s call_id=%s state=%s err=%s", s->impu, s->call_id,
          state, rc ? ims_strerror(rc) : "none");
    ims_buf_free(&hdrs);
}

static void end_sub(struct cas_sub *s, const char *reason, const char *json)
{
    char state[64];
    snprintf(state, sizeof(state), "terminated;reason=%s", reason);
    send_notify(s, state, json ? json : "{\"servers\":[]}");
    sub_free(s);
}

static void poll_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct cas_sub *s = t->data;
    if (s->job)
        return;
    int rc = cas_job_poll(s->w, s->impu, s, &s->job);
    if (rc) { /* busy: try again later */
        s->job = NULL;
        ims_timer_start(s->w->loop, &s->poll, s->w->as->poll_max_ms);
    }
}

static void expiry_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct cas_sub *s = t->data;
    LOG_I("cloudas", "event=subscription_expired impu=%s call_id=%s", s->impu, s->call_id);
    end_sub(s, "timeout", NULL);
}

/* The servers as notified: id, name, status (RFC 6665 §4.2.2: the full
 * state in every NOTIFY). */
static char *state_json(json_t *servers)
{
    json_t *list = json_array(), *sv;
    size_t i;
    json_array_foreach(servers, i, sv)
    {
        if (i == SUB_MAX_SERVERS) /* a NOTIFY stays small; the rest shows in 'list' */
            break;
        json_t *o = json_object();
        static const char *const keys[] = { "id", "name", "status" };
        for (size_t k = 0; k < 3; k++) {
            json_t *v = json_object_get(sv, keys[k]);
            if (json_is_string(v))
                json_object_set(o, keys[k], v);
        }
        json_array_append_new(list, o);
    }
    json_t *doc = json_pack("{s:o}", "servers", list);
    char *js = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return js;
}

void cas_sub_polled(struct cas_sub *s, json_t *servers)
{
    s->job = NULL;
    char *js = state_json(servers);
    if (!js) {
        ims_timer_start(s->w->loop, &s->poll, s->w->as->poll_max_ms);
        return;
    }
    uint8_t d[32];
    unsigned dl = 0;
    EVP_Digest(js, strlen(js), d, &dl, EVP_sha256(), NULL);
    bool changed = !s->notified || memcmp(d, s->digest, sizeof(d)) != 0;
    if (s->ending) { /* a fetch or an unsubscribe: one last NOTIFY */
        end_sub(s, "timeout", js);
        cas_json_free(js);
        return;
    }
    if (changed) {
        memcpy(s->digest, d, sizeof(d));
        s->notified = true;
        send_notify(s, "active", js);
        s->delay_ms = s->w->as->poll_ms;
    } else {
        s->delay_ms = s->delay_ms * 2 > s->w->as->poll_max_ms ? s->w->as->poll_max_ms
                                                              : s->delay_ms * 2;
    }
    cas_json_free(js);
    ims_timer_start(s->w->loop, &s->poll, s->delay_ms);
}

void cas_sub_failed(struct cas_sub *s, int code, const char *msg)
{
    s->job = NULL;
    json_t *e = json_pack("{s:[],s:{s:i,s:s}}", "servers", "error", "code", code, "message", msg);
    char *js = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    if (code == 403 || code == 401) { /* no delegation, or the policy says no */
        end_sub(s, "rejected", js);
    } else if (s->ending) {
        end_sub(s, "timeout", js);
    } else { /* OpenStack unreachable: keep the subscription, try again later */
        ims_timer_start(s->w->loop, &s->poll, s->w->as->poll_max_ms);
    }
    cas_json_free(js);
}

/* ---------------------------------------------------------------- SUBSCRIBE */

static struct cas_sub *find(struct cas_worker *w, const struct sip_msg *m)
{
    for (struct cas_sub *s = w->subs; s; s = s->next)
        if (ims_str_eq(m->call_id, ims_str_cstr(s->call_id)) &&
            ims_str_eq(m->to.tag, ims_str_cstr(s->our_tag)))
            return s;
    return NULL;
}

bool cas_sub_owns(struct cas_worker *w, const struct sip_msg *m)
{
    return m->to.tag.len && find(w, m) != NULL;
}

static void reply(struct proxy_req *r, int status, const char *reason, const char *hdrs)
{
    struct proxy_reply_opts o = { .hdrs = ims_str_cstr(hdrs) };
    ims_proxy_reply(r, status, reason, &o);
}

/* Expires (RFC 6665 §4.2.1.1): absent = the default; 0 = fetch/unsubscribe;
 * below the minimum: 423. */
static int expires_of(const struct sip_msg *m, unsigned *out)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_EXPIRES);
    uint64_t v = SUB_DEFAULT_EXPIRES;
    if (h && ims_str_to_u64(ims_str_trim(h->value), UINT32_MAX, &v) != 0)
        return IMS_EPROTO;
    if (v && v < SUB_MIN_EXPIRES)
        return IMS_ELIMIT;
    *out = v > SUB_MAX_EXPIRES ? SUB_MAX_EXPIRES : (unsigned)v;
    return 0;
}

static void ok(struct cas_sub *s, struct proxy_req *r, unsigned expires)
{
    char hdrs[CAS_URL_MAX + 64];
    snprintf(hdrs, sizeof(hdrs), "Expires: %u\r\nContact: <%s>\r\n", expires, s->contact);
    reply(r, 200, NULL, hdrs);
}

static void start_poll(struct cas_sub *s, unsigned ms)
{
    ims_timer_stop(s->w->loop, &s->poll);
    if (!s->job)
        ims_timer_start(s->w->loop, &s->poll, ms);
}

static void in_dialog(struct cas_worker *w, struct proxy_req *r, const struct sip_msg *m)
{
    struct cas_sub *s = find(w, m);
    unsigned expires;
    if (!s) {
        reply(r, 481, NULL, NULL);
        return;
    }
    if (m->cseq.num <= s->rcseq) { /* RFC 3261 §12.2.2 */
        reply(r, 500, "Out Of Order", NULL);
        return;
    }
    s->rcseq = m->cseq.num;
    int rc = expires_of(m, &expires);
    if (rc) {
        reply(r, rc == IMS_ELIMIT ? 423 : 400, NULL,
              rc == IMS_ELIMIT ? "Min-Expires: 60\r\n" : NULL);
        return;
    }
    ok(s, r, expires);
    s->expires_ms = now_ms(w) + (uint64_t)expires * 1000u;
    if (expires == 0) { /* unsubscribe: a final NOTIFY with the state */
        s->ending = true;
        ims_timer_stop(w->loop, &s->expiry);
    } else {
        ims_timer_start(w->loop, &s->expiry, (uint64_t)expires * 1000u);
        s->notified = false; /* RFC 6665 §4.2.1.2: a NOTIFY follows a refresh */
    }
    start_poll(s, 0);
}

/* The dialog as the SUBSCRIBE made it.  0, IMS_EPROTO, IMS_ELIMIT. */
static int dialog_of(struct cas_sub *s, struct proxy_req *r, const struct sip_msg *m)
{
    const struct sip_hdr *to = ims_sip_hdr_first(m, SIP_H_TO);
    const struct sip_hdr *from = ims_sip_hdr_first(m, SIP_H_FROM);
    const struct sip_hdr *ct = ims_sip_hdr_first(m, SIP_H_CONTACT);
    struct sip_nameaddr cna;
    if (!to || !from || !ct || !m->from.tag.len)
        return IMS_EPROTO;
    struct ims_cur c = ims_cur_of(ct->value);
    ims_str el;
    if (ims_sip_list_next(&c, &el) != 0 || ims_sip_parse_nameaddr(el, &cna) != 0)
        return IMS_EPROTO;
    if (m->call_id.len >= sizeof(s->call_id) || to->value.len + 32 >= sizeof(s->from) ||
        from->value.len >= sizeof(s->to) || cna.uri.raw.len >= sizeof(s->target))
        return IMS_ELIMIT;
    if (ims_proxy_req_to_tag(r, s->our_tag, sizeof(s->our_tag)) != 0)
        return IMS_EPROTO;
    ims_str_copy(m->call_id, s->call_id, sizeof(s->call_id));
    snprintf(s->from, sizeof(s->from), "%.*s;tag=%s", IMS_SF(to->value), s->our_tag);
    ims_str_copy(from->value, s->to, sizeof(s->to));
    ims_str_copy(cna.uri.raw, s->target, sizeof(s->target));
    /* RFC 3261 §12.1.1: the UAS's route set is the Record-Route, in order */
    size_t k = 0;
    for (const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_RECORD_ROUTE); h;
         h = ims_sip_hdr_next_same(m, h)) {
        int n = snprintf(s->route + k, sizeof(s->route) - k, "%s%.*s", k ? ", " : "",
                         IMS_SF(h->value));
        if (n < 0 || (size_t)n >= sizeof(s->route) - k)
            return IMS_ELIMIT;
        k += (size_t)n;
    }
    const struct sip_tp_rx *rx = ims_proxy_req_rx(r);
    char host[64];
    ims_addr_host(&rx->local, host, sizeof(host));
    snprintf(s->contact, sizeof(s->contact), "sip:%.*s@%s:%u", IMS_SF(s->w->as->service_user),
             host, (unsigned)ims_addr_port(&rx->local));
    s->rcseq = m->cseq.num;
    return 0;
}

static bool event_ok(const struct sip_msg *m)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_EVENT);
    if (!h)
        return false;
    ims_str v = ims_str_trim(h->value);
    long semi = ims_str_chr(v, ';');
    if (semi >= 0)
        v = ims_str_trim(ims_str_make(v.p, (size_t)semi));
    return ims_str_caseeq_lit(v, CAS_EVENT);
}

void cas_sub_request(struct cas_worker *w, struct proxy_req *r, const struct sip_msg *m,
                     const char *impu)
{
    if (m->to.tag.len) {
        in_dialog(w, r, m);
        return;
    }
    if (!event_ok(m)) { /* RFC 6665 §8.2.1 */
        reply(r, 489, NULL, "Allow-Events: " CAS_EVENT "\r\n");
        return;
    }
    if (!impu) {
        reply(r, 403, "No Served User", NULL);
        return;
    }
    unsigned expires;
    int rc = expires_of(m, &expires);
    if (rc) {
        reply(r, rc == IMS_ELIMIT ? 423 : 400, NULL,
              rc == IMS_ELIMIT ? "Min-Expires: 60\r\n" : NULL);
        return;
    }
    if (w->nsubs >= w->as->max_jobs) {
        reply(r, 503, NULL, "Retry-After: 30\r\n");
        return;
    }
    struct cas_sub *s = ims_calloc(1, sizeof(*s));
    if (!s) {
        reply(r, 500, NULL, NULL);
        return;
    }
    s->w = w;
    snprintf(s->impu, sizeof(s->impu), "%s", impu);
    ims_timer_init(&s->poll, poll_cb, s);
    ims_timer_init(&s->expiry, expiry_cb, s);
    s->next = w->subs;
    if (w->subs)
        w->subs->prev = s;
    w->subs = s;
    w->nsubs++;
    rc = dialog_of(s, r, m);
    if (rc) {
        reply(r, rc == IMS_EPROTO ? 400 : 500, rc == IMS_EPROTO ? "Bad SUBSCRIBE" : NULL, NULL);
        sub_free(s);
        return;
    }
    /* Accepted now; the first poll (token, policy, Nova) decides what the
     * first NOTIFY says: the servers, or terminated;reason=rejected. */
    ok(s, r, expires);
    s->expires_ms = now_ms(w) + (uint64_t)expires * 1000u;
    s->delay_ms = w->as->poll_ms;
    if (expires == 0)
        s->ending = true; /* a fetch: one NOTIFY */
    else
        ims_timer_start(w->loop, &s->expiry, (uint64_t)expires * 1000u);
    LOG_I("cloudas", "event=subscribed impu=%s call_id=%s expires=%u", impu, s->call_id, expires);
    start_poll(s, 0);
}
