/* metrics.c - the counters and gauges of metrics.h and their Prometheus
 * text rendering (exposition format 0.0.4: "# HELP", "# TYPE", then one
 * "name{labels} value" line per series). */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "acl/acl.h"
#include "base/err.h"
#include "sip/msg.h"

struct counter_def {
    const char *name; /* without the imscloud_ prefix and _total suffix */
    const char *help;
};

/* One row per enum ims_metric, in order. */
static const struct counter_def counter_defs[IMS_M_COUNT] = {
    [IMS_M_AUTH_SUCCESSES] = { "auth_successes", "SIP authentications that succeeded." },
    [IMS_M_AUTH_FAILURES] = { "auth_failures", "SIP authentications that failed." },
    [IMS_M_LOCKOUTS] = { "lockouts", "Brute-force lockouts of an IMPI or a source." },
    [IMS_M_RATE_LIMITED] = { "rate_limited", "Requests refused by a rate limit." },
    [IMS_M_OVERLOAD_503] = { "overload_503", "Requests answered 503 because of overload." },
    [IMS_M_DETECTIONS] = { "detections", "Attack detections (scanner, sweep, malformed burst)." },
    [IMS_M_DETECT_BLOCKS] = { "detect_blocks",
                              "Sources put in the dynamic deny group by a detection." },
    [IMS_M_SIP_MALFORMED] = { "sip_malformed", "SIP messages the parser refused." },
    [IMS_M_DIA_REQUESTS_SENT] = { "diameter_requests_sent", "Diameter requests sent." },
    [IMS_M_DIA_REQUESTS_RECV] = { "diameter_requests_received", "Diameter requests received." },
    [IMS_M_POLICY_DENIALS] = { "policy_denials", "Requests refused by the policy." },
    [IMS_M_STORE_INLINE_REQUESTS] = { "store_inline_requests",
                                      "HSS store requests run on a worker's own thread." },
    [IMS_M_STORE_INLINE_TXNS] = { "store_inline_transactions",
                                  "The store transactions those requests ran in." },
    [IMS_M_STUN_ANSWERED] = { "stun_answered",
                              "STUN Binding requests answered on SIP UDP ports (RFC 5626 "
                              "keep-alives)." },
};

static atomic_ullong counters[IMS_M_COUNT];
static atomic_ullong sip_req[IMS_METRICS_METHODS];
static atomic_ullong sip_resp[6]; /* index: status class 1..5; 0 = out of range */

struct gauge {
    atomic_ullong shard[IMS_METRICS_SHARDS];
    uint64_t (*_Atomic fn)(void *ctx);
    void *_Atomic ctx;
};
static struct gauge gauges[IMS_G_COUNT];

/* the HSS identity cache's provider: a scrape calls it under cache_mu, so
 * removing it waits for a scrape in progress */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*cache_fn)(void *ctx, struct ims_metrics_cache *out);
static void *cache_ctx;

void ims_metrics_inc(enum ims_metric m)
{
    ims_metrics_add(m, 1);
}

void ims_metrics_add(enum ims_metric m, uint64_t n)
{
    if ((unsigned)m < IMS_M_COUNT)
        atomic_fetch_add_explicit(&counters[m], n, memory_order_relaxed);
}

uint64_t ims_metrics_get(enum ims_metric m)
{
    return (unsigned)m < IMS_M_COUNT ? atomic_load_explicit(&counters[m], memory_order_relaxed)
                                     : 0;
}

void ims_metrics_sip_request(unsigned method)
{
    atomic_fetch_add_explicit(&sip_req[method < IMS_METRICS_METHODS ? method : 0], 1,
                              memory_order_relaxed);
}

void ims_metrics_sip_response(unsigned status)
{
    unsigned cls = status / 100;
    atomic_fetch_add_explicit(&sip_resp[cls >= 1 && cls <= 5 ? cls : 0], 1,
                              memory_order_relaxed);
}

void ims_metrics_gauge_shard(enum ims_gauge g, unsigned shard, uint64_t v)
{
    if ((unsigned)g < IMS_G_COUNT && shard < IMS_METRICS_SHARDS)
        atomic_store_explicit(&gauges[g].shard[shard], v, memory_order_relaxed);
}

void ims_metrics_gauge_fn(enum ims_gauge g, uint64_t (*fn)(void *ctx), void *ctx)
{
    if ((unsigned)g >= IMS_G_COUNT)
        return;
    atomic_store(&gauges[g].ctx, ctx);
    atomic_store(&gauges[g].fn, fn);
}

uint64_t ims_metrics_gauge(enum ims_gauge g)
{
    if ((unsigned)g >= IMS_G_COUNT)
        return 0;
    uint64_t (*fn)(void *) = atomic_load(&gauges[g].fn);
    if (fn)
        return fn(atomic_load(&gauges[g].ctx));
    uint64_t sum = 0;
    for (unsigned i = 0; i < IMS_METRICS_SHARDS; i++)
        sum += atomic_load_explicit(&gauges[g].shard[i], memory_order_relaxed);
    return sum;
}

void ims_metrics_cache_fn(void (*fn)(void *ctx, struct ims_metrics_cache *out), void *ctx)
{
    pthread_mutex_lock(&cache_mu);
    if (fn || cache_ctx == ctx) {
        cache_fn = fn;
        cache_ctx = fn ? ctx : NULL;
    }
    pthread_mutex_unlock(&cache_mu);
}

void ims_metrics_reset(void)
{
    for (unsigned i = 0; i < IMS_M_COUNT; i++)
        atomic_store(&counters[i], 0);
    for (unsigned i = 0; i < IMS_METRICS_METHODS; i++)
        atomic_store(&sip_req[i], 0);
    for (unsigned i = 0; i < 6; i++)
        atomic_store(&sip_resp[i], 0);
    for (unsigned g = 0; g < IMS_G_COUNT; g++)
        for (unsigned i = 0; i < IMS_METRICS_SHARDS; i++)
            atomic_store(&gauges[g].shard[i], 0);
}

/* ------------------------------------------------------------ render */

static int head(struct ims_buf *b, const char *name, const char *type, const char *help)
{
    return ims_buf_printf(b, "# HELP imscloud_%s %s\n# TYPE imscloud_%s %s\n", name, help, name,
                          type);
}

static int render_counters(struct ims_buf *b)
{
    int rc = 0;
    for (unsigned i = 0; i < IMS_M_COUNT && !rc; i++) {
        const struct counter_def *d = &counter_defs[i];
        char name[80];
        snprintf(name, sizeof(name), "%s_total", d->name);
        rc = head(b, name, "counter", d->help);
        if (!rc)
            rc = ims_buf_printf(b, "imscloud_%s %llu\n", name,
                                (unsigned long long)ims_metrics_get((enum ims_metric)i));
    }
    return rc;
}

static int render_sip(struct ims_buf *b)
{
    int rc = head(b, "sip_requests_received_total", "counter",
                  "SIP requests received, by method (before transaction matching).");
    for (unsigned m = 0; m < IMS_METRICS_METHODS && !rc; m++) {
        const char *name = m ? ims_sip_method_name((enum sip_method)m) : "other";
        if (!name)
            continue;
        rc = ims_buf_printf(b, "imscloud_sip_requests_received_total{method=\"%s\"} %llu\n", name,
                            (unsigned long long)atomic_load(&sip_req[m]));
    }
    if (!rc)
        rc = head(b, "sip_responses_received_total", "counter",
                  "SIP responses received, by status class.");
    static const char *const cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    for (unsigned c = 1; c <= 6 && !rc; c++) {
        unsigned i = c % 6; /* 1xx..5xx, then other */
        rc = ims_buf_printf(b, "imscloud_sip_responses_received_total{class=\"%s\"} %llu\n",
                            cls[i], (unsigned long long)atomic_load(&sip_resp[i]));
    }
    return rc;
}

static int render_gauges(struct ims_buf *b)
{
    int rc = head(b, "sip_transactions_live", "gauge",
                  "SIP transactions alive (each worker's count at its last received message).");
    if (!rc)
        rc = ims_buf_printf(b, "imscloud_sip_transactions_live %llu\n",
                            (unsigned long long)ims_metrics_gauge(IMS_G_TXNS_LIVE));
    if (!rc)
        rc = head(b, "registrations_active", "gauge",
                  "Registrations (and aliases) in the S-CSCF location store.");
    if (!rc)
        rc = ims_buf_printf(b, "imscloud_registrations_active %llu\n",
                            (unsigned long long)ims_metrics_gauge(IMS_G_REGISTRATIONS));
    return rc;
}

static int render_acl(struct ims_buf *b)
{
    static const char *const lname[IMS_ACL_NLISTENERS] = { "sip-udp", "sip-tcp", "sip-tls",
                                                           "diameter", "http" };
    int rc = head(b, "acl_denied_total", "counter",
                  "Datagrams and connections refused by the security groups, by listener.");
    for (unsigned l = 0; l < IMS_ACL_NLISTENERS && !rc; l++)
        rc = ims_buf_printf(b, "imscloud_acl_denied_total{listener=\"%s\"} %llu\n", lname[l],
                            (unsigned long long)ims_acl_denied((enum ims_acl_listener)l));
    if (!rc)
        rc = head(b, "acl_dynamic_denied_total", "counter",
                  "Datagrams and connections refused by the dynamic deny group.");
    if (!rc)
        rc = ims_buf_printf(b, "imscloud_acl_dynamic_denied_total %llu\n",
                            (unsigned long long)ims_acl_dyn_denied());
    if (!rc)
        rc = head(b, "acl_dynamic_sources", "gauge",
                  "Source addresses in the dynamic deny group now.");
    if (!rc)
        rc = ims_buf_printf(b, "imscloud_acl_dynamic_sources %zu\n", ims_acl_dyn_count());
    return rc;
}

/* Only with a provider: a process without an HSS cache has no such series. */
static int render_cache(struct ims_buf *b)
{
    struct ims_metrics_cache c = { 0 };
    pthread_mutex_lock(&cache_mu);
    bool have = cache_fn != NULL;
    if (have)
        cache_fn(cache_ctx, &c);
    pthread_mutex_unlock(&cache_mu);
    if (!have)
        return 0;
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } rows[] = {
        { "hss_cache_hits_total", "counter", "HSS identity cache lookups that found the entry.",
          offsetof(struct ims_metrics_cache, hits) },
        { "hss_cache_misses_total", "counter",
          "HSS identity cache lookups that went to the database.",
          offsetof(struct ims_metrics_cache, misses) },
        { "hss_cache_evictions_total", "counter",
          "HSS identity cache entries dropped for room (raise [hss] cache_entries).",
          offsetof(struct ims_metrics_cache, evictions) },
        { "hss_cache_entries", "gauge", "HSS identity cache entries held now.",
          offsetof(struct ims_metrics_cache, entries) },
        { "hss_cache_capacity", "gauge", "HSS identity cache capacity ([hss] cache_entries).",
          offsetof(struct ims_metrics_cache, capacity) },
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && !rc; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&c + rows[i].off, sizeof(v));
        rc = head(b, rows[i].name, rows[i].type, rows[i].help);
        if (!rc)
            rc = ims_buf_printf(b, "imscloud_%s %llu\n", rows[i].name, (unsigned long long)v);
    }
    return rc;
}

int ims_metrics_render(struct ims_buf *out)
{
    int rc = render_counters(out);
    if (!rc)
        rc = render_sip(out);
    if (!rc)
        rc = render_gauges(out);
    if (!rc)
        rc = render_acl(out);
    if (!rc)
        rc = render_cache(out);
    return rc;
}
