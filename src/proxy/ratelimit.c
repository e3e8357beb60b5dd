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
 * Overload ([limits] overload_*), in the spirit of Clearwater's load
 * monitor: each worker admits new out-of-dialog requests through a token
 * bucket whose rate follows the latency of the requests it admitted
 * (arrival to final response, smoothed): above the target the rate shrinks
 * in proportion, below it -- while requests were refused -- it grows back
 * by a tenth; always within [min_rate, max_rate].  Refused requests get 503
 * with Retry-After, statelessly, without a transaction.  In-dialog requests
 * (To tag), ACK, CANCEL and BYE are never refused, nor are exempt sources
 * (our own CSCFs: a request admitted at the edge is not refused again on
 * its next hop). */
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
#define OL_PERIOD_MS 200 /* the overload control adjusts its rate this often */

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

static double dmax(double a, double b)
{
    return a > b ? a : b;
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
        l->w[i].ol.rate = l->max_rate;
        l->w[i].ol.tokens = l->max_rate;
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
    if (!l || l->rate <= 0 || idx >= l->nworkers || is_response(rx) ||
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

/* Once a period: the new accepted rate from the smoothed latency.  A period
 * in which no request arrived saw an empty queue, so the average decays by
 * one period's weight for each that passed: after a spike and a quiet spell
 * the rate is back at once, instead of 503s for the first seconds of the
 * next load (seen in bench/ims: after one overloaded step, the next, lighter
 * one was refused for most of its 5 s).  Below the target the rate grows
 * while requests are refused: by a tenth per period, doubling while the
 * queueing delay is under a quarter of the target (clearly not overloaded). */
void px_ol_adjust(struct px_ol_state *o, double target_ms, double min_rate, double max_rate,
                  uint64_t now)
{
    uint64_t elapsed = now - o->period_ms;
    if (elapsed < OL_PERIOD_MS)
        return;
    uint64_t periods = elapsed / OL_PERIOD_MS;
    for (uint64_t k = 1; k < periods && k < 64 && o->lat_ewma > 0.01; k++)
        o->lat_ewma *= 0.7; /* quiet periods: empty queue */
    double avg = o->lat_n ? o->lat_sum / (double)o->lat_n : 0.0;
    o->lat_ewma = o->lat_ewma > 0 ? 0.7 * o->lat_ewma + 0.3 * avg : avg;
    double was = o->rate;
    if (o->lat_ewma > target_ms) {
        o->rate *= dmax(0.5, target_ms / o->lat_ewma); /* shrink in proportion */
    } else if (o->refused || periods > 1) {
        double f = o->lat_ewma < target_ms / 4 ? 2.0 : 1.1;
        for (uint64_t k = 0; k < periods && k < 64 && o->rate < max_rate; k++)
            o->rate *= f; /* grow back */
    }
    o->rate = dmin(max_rate, dmax(min_rate, o->rate));
    if ((int64_t)was != (int64_t)o->rate)
        LOG_I("limits", "event=overload_rate rate=%.0f was=%.0f latency_ms=%.1f refused=%llu",
              o->rate, was, o->lat_ewma, (unsigned long long)o->refused);
    o->period_ms = now;
    o->lat_sum = 0;
    o->lat_n = 0;
    o->refused = 0;
}

bool px_overload_reject(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx)
{
    struct px_limits *l = g_lim;
    unsigned idx = ims_proxy_worker(p);
    if (!l || !l->target_ms || idx >= l->nworkers)
        return false;
    /* never refused: what continues or ends a dialog or transaction */
    if (m->to.tag.len || m->method == SIP_M_ACK || m->method == SIP_M_CANCEL ||
        m->method == SIP_M_BYE || exempt(l, &rx->src))
        return false;
    struct px_ol_state *o = &l->w[idx].ol;
    uint64_t now = ims_loop_now(ims_proxy_loop(p));
    /* The signal is how long requests wait in our own receive queue: it
     * rises when this worker cannot keep up, and not when a peer (the HSS,
     * Keystone, a UAS) is slow, which must not shed the requests that do
     * not need that peer. */
    if (rx->queue_ms >= 0) {
        o->lat_sum += (double)rx->queue_ms;
        o->lat_n++;
    }
    px_ol_adjust(o, (double)l->target_ms, (double)l->min_rate, (double)l->max_rate, now);
    o->tokens = dmin(o->rate / 5.0 + 1.0, /* a burst of 200 ms */
                     o->tokens + (double)(now - o->last_ms) * o->rate / 1000.0);
    o->last_ms = now;
    if (o->tokens >= 1.0) {
        o->tokens -= 1.0;
        return false;
    }
    o->refused++;
    l->overload++;
    p->st.overload_503++;
    ims_metrics_inc(IMS_M_OVERLOAD_503);
    char ra[40];
    int n = l->retry_after ? snprintf(ra, sizeof(ra), "Retry-After: %u\r\n", l->retry_after) : 0;
    px_reply_stateless(p, m, rx, 503, "Overloaded", ims_str_make(ra, n > 0 ? (size_t)n : 0));
    return true;
}

