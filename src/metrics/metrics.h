/* metrics.h - process-wide counters and gauges, and the Prometheus text
 * endpoint that serves them (docs/security.md "Metrics").
 *
 * Counters are a fixed enum of atomics (relaxed increments: an increment
 * is one lock-free add, safe on any thread, and a scrape reads each
 * counter once; scrapes see each counter monotonic, not a snapshot of all
 * of them at one instant).  Modules increment what they own:
 *
 *     ims_metrics_inc(IMS_M_LOCKOUTS);            -- any thread
 *
 * Gauges are either sharded (each worker sets its own shard, the scrape
 * sums them) or read through a callback at scrape time.  Adding a counter
 * means one enum value here and one row in metrics.c's table.
 *
 * The HTTP endpoint (libmicrohttpd, its own thread) serves GET /metrics in
 * the Prometheus text exposition format 0.0.4; every new connection is
 * checked by the security groups (ims_acl_admit, listener "http"). */
#ifndef IMS_METRICS_METRICS_H
#define IMS_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Counters, each exposed as imscloud_<name>_total. */
enum ims_metric {
    IMS_M_AUTH_SUCCESSES = 0, /* SIP authentications that passed (S-CSCF) */
    IMS_M_AUTH_FAILURES,      /* SIP authentications that failed (wrong response) */
    IMS_M_LOCKOUTS,           /* IMPIs or sources locked out (src/cscf lockout) */
    IMS_M_RATE_LIMITED,       /* requests refused by a rate limit */
    IMS_M_OVERLOAD_503,       /* requests answered 503 for overload */
    IMS_M_DETECTIONS,         /* attack detections (src/detect) */
    IMS_M_DETECT_BLOCKS,      /* sources put in the dynamic deny group */
    IMS_M_SIP_MALFORMED,      /* messages the parser refused */
    IMS_M_DIA_REQUESTS_SENT,  /* Diameter requests sent (Cx/Sh clients) */
    IMS_M_DIA_REQUESTS_RECV,  /* Diameter requests received (HSS) */
    IMS_M_POLICY_DENIALS,     /* requests refused by the policy (S-CSCF, src/policy) */
    IMS_M_STORE_INLINE_REQUESTS, /* store requests run on a calling thread (store/exec.c) */
    IMS_M_STORE_INLINE_TXNS,     /* the transactions they ran in (several per batch) */
    IMS_M_STUN_ANSWERED,         /* STUN keep-alives answered on SIP UDP ports (src/net) */
    IMS_M_COUNT
};

/* Gauges. */
enum ims_gauge {
    IMS_G_TXNS_LIVE = 0,  /* SIP transactions alive (per-worker shards) */
    IMS_G_REGISTRATIONS,  /* registrations in the location store (callback) */
    IMS_G_COUNT
};

#define IMS_METRICS_SHARDS 256  /* gauge shards: one per worker */
#define IMS_METRICS_METHODS 16  /* enum sip_method values counted; others as "other" */

/* Adds 1 (or n) to counter m.  Any thread, lock-free. */
void ims_metrics_inc(enum ims_metric m);
void ims_metrics_add(enum ims_metric m, uint64_t n);
/* Current value of m (tests, tools). */
uint64_t ims_metrics_get(enum ims_metric m);

/* A received SIP request of enum sip_method `method` (0 = extension) / a
 * received SIP response with status code `status` (counted by class). */
void ims_metrics_sip_request(unsigned method);
void ims_metrics_sip_response(unsigned status);

/* Sets shard `shard` (< IMS_METRICS_SHARDS, else ignored) of gauge g to v:
 * call it from the shard's own thread. */
void ims_metrics_gauge_shard(enum ims_gauge g, unsigned shard, uint64_t v);
/* Makes g read fn(ctx) at scrape time instead of its shards (fn runs on the
 * HTTP thread and must be thread-safe).  fn NULL: back to the shards.
 * Set before the endpoint starts; clear before ctx goes away. */
void ims_metrics_gauge_fn(enum ims_gauge g, uint64_t (*fn)(void *ctx), void *ctx);
uint64_t ims_metrics_gauge(enum ims_gauge g);

/* The HSS identity cache (docs/internals/hss-store.md), read at scrape
 * time: fn fills *out.  The HSS role sets it when it has a cache; (NULL,
 * ctx) removes ctx's and returns once no scrape is still calling it. */
struct ims_metrics_cache {
    uint64_t hits, misses, evictions, entries, capacity;
};
void ims_metrics_cache_fn(void (*fn)(void *ctx, struct ims_metrics_cache *out), void *ctx);

/* Zeroes every counter and gauge shard (unit tests). */
void ims_metrics_reset(void);

/* Appends the text format 0.0.4 of every metric (counters, SIP by
 * method and class, gauges, security-group denials per listener and the
 * dynamic deny group) to out.  0 or the ims_buf error (IMS_ELIMIT,
 * IMS_ENOMEM). */
int ims_metrics_render(struct ims_buf *out);

/* ---------------------------------------------------------- endpoint */

struct ims_metrics_srv;

/* Starts the endpoint on `listen` ("127.0.0.1:9090", "[::1]:9090"; port
 * 0 picks one: see ims_metrics_srv_port).  *out is the caller's.
 * 0, IMS_EINVAL (bad address: err says), IMS_EIO (bind failed),
 * IMS_ENOMEM. */
int ims_metrics_srv_start(const char *listen, struct ims_metrics_srv **out, char *err,
                          size_t errsz);
uint16_t ims_metrics_srv_port(const struct ims_metrics_srv *s);
/* Stops the thread, closes the socket, frees.  NULL is a no-op. */
void ims_metrics_srv_stop(struct ims_metrics_srv *s);

#endif
