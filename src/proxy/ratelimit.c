/* ratelimit.c - per-source rate limits and the latency-driven overload
 * control of the proxy core (issue 6 part 2; docs/security.md "Rate limits
 * and overload").
 *
 * Installed once for the process (ims_proxy_limits_start, like the
 * detectors); every worker has its own state, touched only by its thread,
 * so the hot path takes no lock.  The price: the limits are per worker (a
 * source whose packets land on two workers gets twice the rate; UDP flows
 * stick to one worker with SO_REUSEPORT's hash).
 *
 * Per source address ([limits] source_rate, source_burst, ports, exempt):
 * a token bucket per IP in a fixed open-addressed table (the least recently
 * seen of a probe window makes room: memory is bounded whatever the number
 * of sources).  Checked before parsing (cheap): a request within the rate
 * passes; beyond it a second bucket of the same rate pays for 503 answers
 * (Retry-After); beyond both the request is dropped -- answering every
 * packet of a flood would only amplify it.  Responses always pass.
 *
 * Overload ([limits] overload_*): each worker admits a new out-of-dialog
 * request by how long it waited in the worker's receive queue (the kernel's
 * receive timestamp to our read): within overload_target_ms it is admitted
 * (up to overload_max_rate), beyond it refused with 503 and Retry-After,
 * statelessly, without a transaction -- except overload_min_rate of them,
 * served whatever the delay.  In-dialog requests (To tag), ACK, CANCEL and
 * BYE are never refused, nor are hops between the roles of this process
 * (sip_tp_rx.from_self) and exempt sources (our CSCFs in other processes:
 * a request admitted at the edge is not refused again on its next hop). */
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "ev/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy_int.h"

#define RL_SLOTS 4096u   /* sources per worker (a power of two) */
#define RL_PROBE 8u      /* slots looked at per lookup */
#define RL_MAX_EXEMPT 32

struct rl_slot {
    uint8_t ip[16];
    uint8_t fam; /* 0: free, 4 or 6 */
    double tokens, rej_tokens;
    uint64_t last_ms;
};

struct rl_worker {
    struct rl_slot *slots; /* RL_SLOTS, or NULL without a per-source limit */
    struct px_ol_state ol;
};

struct px_limits {
    double rate, burst;
    uint16_t ports[IMS_CFG_MAX_PORTS];
    size_t nports;
    uint8_t exempt[RL_MAX_EXEMPT][16];
    uint8_t exempt_fam[RL_MAX_EXEMPT];
    uint16_t exempt_port[RL_MAX_EXEMPT]; /* 0: any */
    size_t nexempt;
    unsigned target_ms, min_rate, max_rate, retry_after;
    uint32_t seed;
    unsigned nworkers;
    struct rl_worker *w;
    _Atomic unsigned long long limited, dropped, overload;
};

static struct px_limits *g_lim; /* installed before the workers run */

static double dmin(double a, double b)
{
    return a < b ? a : b;
}

/* ------------------------------------------------------------ addresses */

static int ip_of(const struct ims_addr *a, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (a->ss.ss_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
        return 4;
    }
    if (a->ss.ss_family == AF_INET6) {
        memcpy(ip, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
        return 6;
    }
    return 0;
}

static bool exempt(const struct px_limits *l, const struct ims_addr *src)
{
    uint8_t ip[16];
    int fam = ip_of(src, ip);
    for (size_t i = 0; i < l->nexempt; i++)
        if (l->exempt_fam[i] == fam && memcmp(l->exempt[i], ip, 16) == 0 &&
            (!l->exempt_port[i] || l->exempt_port[i] == ims_addr_port(src)))
            return true;
    return false;
}

static int parse_exempt(struct px_limits *l, const char *list, char *err, size_t errsz)
{
    if (!list)
        return 0;
    struct ims_cur c = { list, list + strlen(list) };
    while (!ims_cur_eof(&c)) {
        ims_str item;
        struct ims_addr a;
        ims_cur_until(&c, ",", &item);
        ims_cur_char(&c, ',');
        item = ims_str_trim(item);
        if (!item.len)
            continue;
        if (l->nexempt == RL_MAX_EXEMPT || ims_addr_parse(item, 0, &a) != 0) {
            snprintf(err, errsz, "[limits] exempt: '%.*s' is not an IP address or ip:port "
                     "(at most %d)",
                     IMS_SF(item), RL_MAX_EXEMPT);
            return IMS_EINVAL;
        }
        l->exempt_fam[l->nexempt] = (uint8_t)ip_of(&a, l->exempt[l->nexempt]);
        l->exempt_port[l->nexempt] = ims_addr_port(&a);
        l->nexempt++;
    }
    return 0;
}

/* ------------------------------------------------------------ setup */

int ims_proxy_limits_start(const struct ims_cfg *cfg, char *err, size_t errsz)
{
    if (!cfg->lim_source_rate && !cfg->lim_overload_target_ms)
        return 0;
    struct px_limits *l = ims_calloc(1, sizeof(*l));
    if (!l)
        goto nomem;
    l->rate = cfg->lim_source_rate;
    l->burst = cfg->lim_source_burst ? cfg->lim_source_burst : 2.0 * cfg->lim_source_rate;
    l->nports = cfg->lim_ports.n;
    memcpy(l->ports, cfg->lim_ports.port, sizeof(l->ports));
    l->target_ms = cfg->lim_overload_target_ms;
    l->min_rate = cfg->lim_overload_min_rate;
    l->max_rate = cfg->lim_overload_max_rate < l->min_rate ? l->min_rate
                                                          : cfg->lim_overload_max_rate;
    l->retry_after = cfg->lim_retry_after;
    if (RAND_bytes((unsigned char *)&l->seed, sizeof(l->seed)) != 1)
        l->seed = 0x9e3779b9u;
    if (parse_exempt(l, cfg->lim_exempt, err, errsz) != 0) {
        ims_free(l);
        return IMS_EINVAL;
    }
    l->nworkers = cfg->workers ? cfg->workers : 1;
    l->w = ims_calloc(l->nworkers, sizeof(*l->w));
    if (!l->w)
        goto nomem;
    for (unsigned i = 0; i < l->nworkers; i++) {
        l->w[i].ol.tokens = l->max_rate / 5.0 + 1.0;
        l->w[i].ol.floor_tokens = l->min_rate / 5.0 + 1.0;
        if (l->rate > 0 && !(l->w[i].slots = ims_calloc(RL_SLOTS, sizeof(struct rl_slot))))
            goto nomem;
    }
    g_lim = l;
    LOG_N("limits", "event=started source_rate=%u burst=%.0f overload_target_ms=%u "
          "min_rate=%u max_rate=%u exempt=%zu", cfg->lim_source_rate, l->burst, l->target_ms,
          l->min_rate, l->max_rate, l->nexempt);
    return 0;
nomem:
    if (l) {
        g_lim = l;
        ims_proxy_limits_stop();
    }
    snprintf(err, errsz, "limits: out of memory");
    return IMS_ENOMEM;
}

void ims_proxy_limits_stop(void)
{
    struct px_limits *l = g_lim;
    if (!l)
        return;
    LOG_N("limits", "event=stopped rate_limited=%llu dropped=%llu overload_503=%llu", l->limited,
          l->dropped, l->overload);
    g_lim = NULL;
    for (unsigned i = 0; l->w && i < l->nworkers; i++)
        ims_free(l->w[i].slots);
    ims_free(l->w);
    ims_free(l);
}

void ims_proxy_limits_counts(uint64_t *limited, uint64_t *dropped, uint64_t *overload)
{
    struct px_limits *l = g_lim;
    *limited = l ? l->limited : 0;
    *dropped = l ? l->dropped : 0;
    *overload = l ? l->overload : 0;
}

/* ------------------------------------------------------------ per source */

static bool port_limited(const struct px_limits *l, uint16_t port)
{
    if (!l->nports)
        return true;
    for (size_t i = 0; i < l->nports; i++)
        if (l->ports[i] == port)
            return true;
    return false;
}

static struct rl_slot *slot_of(const struct px_limits *l, struct rl_slot *slots,
                               const uint8_t ip[16], int fam, uint64_t now)
{
    uint32_t h = l->seed;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 16777619u;
    struct rl_slot *victim = NULL;
    for (unsigned k = 0; k < RL_PROBE; k++) {
        struct rl_slot *s = &slots[(h + k) & (RL_SLOTS - 1)];
        if (s->fam == fam && memcmp(s->ip, ip, 16) == 0)
            return s;
        if (!victim || s->fam == 0 || (victim->fam != 0 && s->last_ms < victim->last_ms))
            victim = s;
    }
    /* a new source: a full bucket (the least recently seen one goes) */
    memcpy(victim->ip, ip, 16);
    victim->fam = (uint8_t)fam;
    victim->tokens = l->burst;
    victim->rej_tokens = l->burst;
    victim->last_ms = now;
    return victim;
}

static bool is_response(const struct sip_tp_rx *rx)
{
    return rx->len >= 8 && memcmp(rx->buf, "SIP/2.0 ", 8) == 0;
}

int px_limit_rx(struct ims_proxy *p, const struct sip_tp_rx *rx)
{
    struct px_limits *l = g_lim;
    unsigned idx = ims_proxy_worker(p);
    if (!l || l->rate <= 0 || idx >= l->nworkers || rx->from_self || is_response(rx) ||
        !port_limited(l, ims_addr_port(&rx->local)) || exempt(l, &rx->src))
        return 0;
    uint8_t ip[16];
    int fam = ip_of(&rx->src, ip);
    if (!fam)
        return 0;
    uint64_t now = ims_loop_now(ims_proxy_loop(p));
    struct rl_slot *s = slot_of(l, l->w[idx].slots, ip, fam, now);
    double add = (double)(now - s->last_ms) * l->rate / 1000.0;
    s->last_ms = now;
    s->tokens = dmin(l->burst, s->tokens + add);
    s->rej_tokens = dmin(l->burst, s->rej_tokens + add);
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        return 0;
    }
    if (s->rej_tokens >= 1.0) {
        s->rej_tokens -= 1.0;
        return 1;
    }
    l->dropped++;
    ims_metrics_inc(IMS_M_RATE_LIMITED);
    return -1;
}

bool px_limit_reject(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    struct px_limits *l = g_lim;
    if (!l)
        return false;
    l->limited++;
    ims_metrics_inc(IMS_M_RATE_LIMITED);
    if (m->method == SIP_M_ACK)
        return true; /* nothing to answer */
    char ra[40];
    int n = l->retry_after ? snprintf(ra, sizeof(ra), "Retry-After: %u\r\n", l->retry_after) : 0;
    px_reply_stateless(p, m, rx, 503, "Rate Limited", ims_str_make(ra, n > 0 ? (size_t)n : 0));
    return true;
}

/* ------------------------------------------------------------ overload */

/* Why each request's own queueing delay decides, and no adaptive rate (what
 * this replaced): a rate that followed the smoothed delay lagged the queue
 * both ways.  Under a registration storm at 1.5x capacity (bench/ims,
 * 10 000/s offered to one process) it shrank from its ceiling too slowly to
 * stop the queue, then went on shrinking while the queue drained, down to
 * its floor: goodput swung from capacity to nothing and back every few
 * seconds, and the requests admitted late failed deep inside (Cx deadlines,
 * "503 HSS Unavailable") after costing their full work.  As in CoDel, the
 * delay a request has already waited says whether this worker is behind:
 * one that waited longer than the target gets its 503 at once (parsed, one
 * datagram out, no state: many times cheaper than admitting it), which
 * empties the queue fast, and the ones within the target are admitted, so
 * the queue settles near the target with the worker busy on requests that
 * complete.  A request that answers our challenge may wait OL_COMPLETE_X
 * times longer: refusing it would throw away the round (UAR, MAR, 401)
 * already paid for.  (Refusing only after delays stayed above the target
 * for 100 ms, as CoDel does, let the queue grow past T1 before refusing:
 * 60-120 000 retransmissions and 7 500 second rounds refused in that
 * storm, against 1-6 000 and 400-1 000 without the wait.) */
#define OL_COMPLETE_X 4
#define OL_FRESH_MS 200 /* a request without its own delay (TCP, TLS) takes the
                         * worker's last UDP one this long */
#define OL_LOG_MS 1000  /* at most one event=overload line per worker this often */

static void ol_log(struct px_ol_state *o, uint64_t now)
{
    if (now - o->period_ms < OL_LOG_MS)
        return;
    if (o->refused)
        LOG_I("limits", "event=overload admitted=%llu refused=%llu max_delay_ms=%d",
              (unsigned long long)o->admitted, (unsigned long long)o->refused,
              (int)o->max_delay_ms);
    o->period_ms = now;
    o->admitted = 0;
    o->refused = 0;
    o->max_delay_ms = 0;
}

bool px_ol_admit(struct px_ol_state *o, const struct px_ol_params *pr, int32_t queue_ms,
                 px_ol_completes_fn completes, const void *ctx, uint64_t now)
{
    ol_log(o, now);
    double dt = now > o->last_ms ? (double)(now - o->last_ms) : 0.0;
    o->last_ms = now;
    /* both buckets hold 200 ms worth */
    o->tokens = dmin(pr->max_rate / 5.0 + 1.0, o->tokens + dt * pr->max_rate / 1000.0);
    o->floor_tokens =
        dmin(pr->min_rate / 5.0 + 1.0, o->floor_tokens + dt * pr->min_rate / 1000.0);
    if (queue_ms >= 0) {
        o->last_delay_ms = queue_ms;
        o->last_delay_at = now;
    } else if (o->last_delay_at && now - o->last_delay_at <= OL_FRESH_MS) {
        queue_ms = o->last_delay_ms;
    }
    if (queue_ms > o->max_delay_ms)
        o->max_delay_ms = queue_ms;
    bool late = queue_ms >= 0 && (double)queue_ms > pr->target_ms;
    /* the credentials are parsed only for a late request */
    if (late && (double)queue_ms <= pr->target_ms * OL_COMPLETE_X && completes &&
        completes(ctx))
        late = false;
    if (!late && o->tokens >= 1.0) {
        o->tokens -= 1.0;
        o->admitted++;
        return true;
    }
    /* the floor: min_rate keeps being served while the queue stays long */
    if (late && o->floor_tokens >= 1.0) {
        o->floor_tokens -= 1.0;
        o->admitted++;
        return true;
    }
    o->refused++;
    return false;
}

/* Digest credentials with a response: the second round of a challenge. */
static bool answers_challenge(const void *ctx)
{
    const struct sip_msg *m = ctx;
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_AUTHORIZATION);
    if (!h)
        h = ims_sip_hdr_first(m, SIP_H_PROXY_AUTHORIZATION);
    struct sip_auth a;
    return h && ims_sip_parse_auth(h->value, &a) == 0 && a.response.len > 0;
}

bool px_overload_reject(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    struct px_limits *l = g_lim;
    unsigned idx = ims_proxy_worker(p);
    if (!l || !l->target_ms || idx >= l->nworkers || rx->from_self)
        return false;
    /* never refused: what continues or ends a dialog or transaction */
    if (m->to.tag.len || m->method == SIP_M_ACK || m->method == SIP_M_CANCEL ||
        m->method == SIP_M_BYE || exempt(l, &rx->src))
        return false;
    struct px_ol_state *o = &l->w[idx].ol;
    const struct px_ol_params pr = {
        .target_ms = l->target_ms,
        .min_rate = l->min_rate,
        .max_rate = l->max_rate,
    };
    /* The signal is how long the request waited in our own receive queue:
     * it rises when this worker cannot keep up, and not when a peer (the
     * HSS, Keystone, a UAS) is slow, which must not shed the requests that
     * do not need that peer. */
    if (px_ol_admit(o, &pr, rx->queue_ms, answers_challenge, m,
                    ims_loop_now(ims_proxy_loop(p))))
        return false;
    l->overload++;
    p->st.overload_503++;
    ims_metrics_inc(IMS_M_OVERLOAD_503);
    char ra[40];
    int n = l->retry_after ? snprintf(ra, sizeof(ra), "Retry-After: %u\r\n", l->retry_after) : 0;
    px_reply_stateless(p, m, rx, 503, "Overloaded", ims_str_make(ra, n > 0 ? (size_t)n : 0));
    return true;
}
