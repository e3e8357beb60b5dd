/* proxy.h - the stateful SIP proxy core (RFC 3261 §16) and the API that the
 * CSCF "apps" are written against.
 *
 * One struct ims_proxy per worker loop owns that worker's transaction table
 * (sip/txn.h), a fixed pool of request contexts (struct proxy_req), and the
 * glue to the worker's transport and resolver.  A struct proxy_shared, made
 * once before the workers, holds the validated configuration and the
 * directory that hands responses to the worker that owns their transaction.
 *
 * What the core does by itself, for every request (ims_proxy_rx):
 *   - parse once; a malformed request gets the parser's status and reason
 *     ("400 Bad CSeq"), a malformed response is dropped; peer errors are
 *     logged rate-limited with at most 100 bytes of input;
 *   - transaction matching: retransmissions and ACKs for non-2xx are
 *     absorbed, responses go to their client transaction (or the owning
 *     worker, or are forwarded statelessly when no transaction matches);
 *   - validation (§16.3): Max-Forwards (0 -> 483, but OPTIONS is answered),
 *     loop detection (482), Proxy-Require (420, except the option tags the
 *     port's app handles: proxy_app.proxy_require);
 *   - route pre-processing (§16.4): strict-router fix-up and popping the
 *     Route values that name us;
 *   - OPTIONS to ourselves: 200 with Allow/Accept/Supported, statelessly;
 *   - ACK for a 2xx and CANCEL without a context: stateless forwarding;
 *     CANCEL with a context: 200, CANCEL on the pending branch (§16.10), 487
 *     if nothing is pending;
 *   - then the app for the listener's port gets the request (default: the
 *     static router, ims_proxy_route_static()).
 *
 * Lifetime rules:
 * 1. A proxy and everything it hands out belong to its worker's thread;
 *    other threads reach it only with ims_loop_post(ims_proxy_loop(p), ...).
 * 2. A struct proxy_req lives at least until the app's handler returns.  To
 *    keep it longer (suspend: waiting for Diameter, DNS, another worker) the
 *    app calls ims_proxy_req_hold() and later, on the same worker, does its
 *    work and calls ims_proxy_req_release().  A held request stays valid even
 *    if the peer cancels it meanwhile (ims_proxy_req_cancelled()).
 * 3. Every new request gets exactly one final response: from the app
 *    (ims_proxy_reply), from forwarding (the best response, §16.7), or from
 *    the core (487 after CANCEL; 500 when the app released a request it had
 *    not answered or forwarded).
 * 4. Callbacks the app passes (response, UAC, cancel) follow the callback
 *    rule: never from inside the call that registered them; if that call
 *    fails they never run, otherwise the response/UAC callbacks run exactly
 *    once for the final outcome (provisionals may come before).
 * 5. Messages passed to callbacks (struct sip_msg) are borrowed for the
 *    callback only; copy what outlives it.
 *
 * Performance: one parse per message on the fast path, no allocation beyond
 * the transaction pool, the request copy a server transaction keeps, and the
 * per-message output buffer; OPTIONS to us is answered from a per-worker
 * scratch buffer without any transaction. */
#ifndef IMS_PROXY_PROXY_H
#define IMS_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "net/transport.h"
#include "sip/msg.h"

struct ims_loop;
struct ims_resolver;
struct ims_proxy;
struct proxy_shared;
struct proxy_req;
struct sip_txn;

/* ---- configuration and wiring (the lead's side) ---- */

struct proxy_route {
    const char *domain;   /* R-URI host to match (case-insensitive); "*" = default */
    const char *next_hop; /* a SIP URI, e.g. "sip:127.0.0.1:5070;transport=tcp" */
};

struct proxy_cfg {
    const struct proxy_route *routes;
    size_t nroutes;
    bool record_route;        /* insert Record-Route (double RR on transport change) */
    size_t max_transactions;  /* per worker: transactions and request contexts */
    unsigned t1_ms, t2_ms, t4_ms; /* 0 = RFC 3261 defaults 500/4000/5000 */
    /* Host names and addresses that are us (a Route or Request-URI whose host
     * is one of these, and whose port is one of our ports, names us). */
    const char *const *self_names;
    size_t nself;
    /* Optional. */
    const char *advertise;    /* host for Via and Record-Route; NULL: the
                               * listener's address, or the first self name
                               * when the listener is a wildcard */
    const uint16_t *self_ports; /* ports that are us; none: the port of the
                                 * listener the message arrived on */
    size_t nself_ports;
    unsigned timer_c_ms;      /* RFC 3261 §16.6 item 11; 0 = 180000 */
    /* Retry-After seconds on the core's own overload answers (a full
     * transaction table, ims_proxy_forward_failed); 0 = 5. */
    unsigned retry_after;
};

/* Copies and validates cfg (every next_hop must parse as a SIP URI).
 * 0, IMS_EINVAL (bad cfg), IMS_ENOMEM. */
int ims_proxy_shared_new(unsigned nworkers, const struct proxy_cfg *cfg,
                         struct proxy_shared **out);
/* After every worker's proxy was freed.  NULL is a no-op. */
void ims_proxy_shared_free(struct proxy_shared *sh);

/* Creates worker `worker_idx`'s proxy on `loop` (which must allow
 * 4 * max_transactions armed timers for the proxy: two per transaction, two
 * per request context) and registers it for hand-offs.  res may be NULL
 * (then only numeric next hops work).  Call before the loop's thread runs
 * (or on it).
 * 0, IMS_EINVAL, IMS_ENOMEM. */
int ims_proxy_new(struct proxy_shared *sh, unsigned worker_idx, struct ims_loop *loop,
                  struct ims_resolver *res, struct ims_proxy **out);
/* The transport to send with and to learn our addresses from. */
void ims_proxy_set_tp(struct ims_proxy *p, struct sip_tp *tp);
/* Whether a TCP/TLS connection to peer is open (ims_sip_tp_conn_open);
 * true when the proxy has no transport of its own (a test seam's io),
 * which cannot tell. */
bool ims_proxy_conn_open(const struct ims_proxy *p, enum sip_proto proto,
                         const struct ims_addr *peer);
/* The transport's rx callback (ctx = the proxy). */
void ims_proxy_rx(void *ctx, const struct sip_tp_rx *rx);
/* Frees the proxy and its transactions (no callbacks run), with the loop
 * stopped, on the owning thread.  Returns the number of transactions and
 * request contexts still alive (leaks, logged at WARN).  NULL returns 0. */
size_t ims_proxy_free(struct ims_proxy *p);

/* Test seam: replaces the transport.  send is ims_sip_tp_send with its
 * arguments from d (0 or IMS_E*); local fills the address we use for
 * proto/family (ims_sip_tp_local's contract); in_process (may be NULL:
 * never) is ims_sip_tp_in_process's. */
struct sip_dest;
struct proxy_io {
    int (*send)(void *ctx, const struct sip_dest *d, const char *buf, size_t len);
    int (*local)(void *ctx, enum sip_proto proto, int family, struct ims_addr *out);
    void *ctx;
    bool (*in_process)(void *ctx, enum sip_proto proto, const struct ims_addr *dst);
};
void ims_proxy_set_io(struct ims_proxy *p, const struct proxy_io *io);

struct ims_loop *ims_proxy_loop(const struct ims_proxy *p);
unsigned ims_proxy_worker(const struct ims_proxy *p);

struct proxy_stats {
    uint64_t rx_requests, rx_responses, absorbed, handed_off;
    uint64_t stateless_replies, stateless_forwards, forwarded, relayed;
    uint64_t malformed, overload_503;
    /* stateless forwards to a next hop named by a host name: those given
     * up (no resolver, PROXY_SL_WAIT_MAX waiting, the name did not resolve) */
    uint64_t stateless_unroutable;
    size_t txns_live, reqs_live;
    size_t stateless_waiting; /* ... and those waiting for the resolver now */
};
void ims_proxy_stats(const struct ims_proxy *p, struct proxy_stats *out);

/* ---- apps ---- */

/* The request hook.  Runs for each new request (not ACK, not CANCEL) that
 * passed the core's checks, with its server transaction already created
 * (INVITE: a 100 Trying follows within 100 ms unless a response goes first).
 * req is borrowed for the call.  Before returning, the handler either
 * answers (ims_proxy_reply), forwards (ims_proxy_forward), or holds the
 * request to do so later (ims_proxy_req_hold).  Returning with none of these
 * answers 500. */
typedef void (*proxy_request_fn)(void *app_ctx, struct proxy_req *r, const struct sip_msg *req);

struct proxy_app {
    const char *name;            /* for logs */
    proxy_request_fn on_request;
    void *ctx;
    /* Optional: the Proxy-Require option tags this app handles itself
     * ("sec-agree" at the P-CSCF, RFC 3329), NULL-terminated; the core's
     * 420 (RFC 3261 §16.3 item 5) names only the others.  Borrowed: it
     * must outlive the proxy. */
    const char *const *proxy_require;
    /* Optional: the next hop of a request the core forwards statelessly
     * (an ACK for a 2xx, RFC 3261 §16.11), which the app never sees: write
     * a SIP URI to hop (cap bytes) and return true to send it there
     * instead of by Route / Request-URI (the P-CSCF: the flow an RFC 5626
     * flow-token Route names).  Called with the request as received. */
    bool (*stateless_hop)(void *ctx, const struct sip_msg *m, const struct sip_tp_rx *rx,
                          char *hop, size_t cap);
};

/* Routes requests that arrive on a listener with local port `port` to app
 * (port 0: every port without an app of its own; the default is the static
 * router).  Copies *app.  0, IMS_ELIMIT (8 apps per proxy). */
int ims_proxy_set_app(struct ims_proxy *p, uint16_t port, const struct proxy_app *app);

/* The default app: forwards by Route, then (in-dialog) the Request-URI,
 * then the static routes (domain, then "*"), then the Request-URI; answers
 * requests for ourselves with 404 (a user part) or 405.  Apps call it to
 * fall back. */
void ims_proxy_route_static(void *unused, struct proxy_req *r, const struct sip_msg *req);

/* ---- request contexts ---- */

struct ims_proxy *ims_proxy_req_proxy(const struct proxy_req *r);
/* The parsed request.  Inside the handler it is the message that arrived;
 * later (after a hold) the server transaction's copy is parsed again into
 * a per-worker scratch message, valid until the caller returns to the loop.
 * NULL if it can no longer be parsed (never for a well-formed request). */
const struct sip_msg *ims_proxy_req_msg(struct proxy_req *r);
/* How the request arrived (tls_peer_cn is only set inside the handler). */
const struct sip_tp_rx *ims_proxy_req_rx(const struct proxy_req *r);
/* No Route remained after ours were popped and the R-URI names us. */
bool ims_proxy_req_to_self(const struct proxy_req *r);
bool ims_proxy_req_cancelled(const struct proxy_req *r);
bool ims_proxy_req_final_sent(const struct proxy_req *r);
/* One pointer for the app. */
void ims_proxy_req_set_data(struct proxy_req *r, void *data);
void *ims_proxy_req_data(const struct proxy_req *r);
/* The To tag ims_proxy_reply adds to a final response when the request had
 * none (RFC 3261 §8.2.6.2), NUL-terminated into out (cap >= 9): a UAS app
 * names its dialog with it (the From tag of a NOTIFY, RFC 6665).
 * 0, IMS_EINVAL. */
int ims_proxy_req_to_tag(struct proxy_req *r, char *out, size_t cap);

/* Keep r after the handler returns (count-based). */
void ims_proxy_req_hold(struct proxy_req *r);
/* Drop one hold.  If this was the last one and r has neither a final
 * response nor a forward in progress, the core answers 500. */
void ims_proxy_req_release(struct proxy_req *r);
/* Called once (never from inside this call) if a CANCEL for r arrives; the
 * core has already answered 200 to the CANCEL and, when nothing is
 * forwarded, 487 to the request. */
void ims_proxy_req_on_cancel(struct proxy_req *r, void (*fn)(struct proxy_req *r, void *ud),
                             void *ud);

struct proxy_reply_opts {
    ims_str hdrs;         /* extra header lines, each "Name: value\r\n" */
    ims_str content_type; /* with body */
    ims_str body;
};

/* Answers r (provisional or final; reason NULL = the standard phrase; To tag
 * added to a final when the request had none).  opts may be NULL.
 * 0, IMS_EINVAL (a final was already sent, bad status), IMS_ELIMIT,
 * IMS_ENOMEM, or a transport error. */
int ims_proxy_reply(struct proxy_req *r, int status, const char *reason,
                    const struct proxy_reply_opts *opts);

/* What the response callback tells the core. */
enum proxy_rsp_action {
    PROXY_RSP_RELAY = 0, /* default handling: relay provisionals and 2xx,
                          * fail over or relay the best final (§16.7) */
    PROXY_RSP_TAKEN,     /* the app handles it: for a final, r is left to the
                          * app, which must reply or forward again */
};

/* A response for a forwarded request.  rsp is NULL for a synthesized one
 * (408 timeout, 503 transport failure, 487 after CANCEL; relayed, a
 * non-INVITE's 408 becomes 504, or nothing after Timer F: RFC 4320 §4.2).
 * Provisionals and 2xx arrive as they come; a non-2xx final arrives once,
 * after the core's own failover over the resolved targets, as the best
 * response (§16.7). */
typedef enum proxy_rsp_action (*proxy_response_fn)(struct proxy_req *r, int status,
                                                   const struct sip_msg *rsp, void *ud);

struct proxy_fwd {
    ims_str ruri;        /* new Request-URI (retarget), or empty to keep it */
    ims_str next_hop;    /* send to this URI (RFC 3263), or empty: the top
                          * Route, else the Request-URI */
    ims_str add_hdrs;    /* header lines added, each "Name: value\r\n" */
    const uint16_t *del_hdrs; /* enum sip_hdr_id values of headers removed */
    size_t ndel;
    proxy_response_fn on_response; /* may be NULL */
    void *ud;
    /* No response at all (not even 100) from a target within this many ms:
     * it counts as a 408 and the next target is tried (TS 24.229
     * §5.3.1.3, an S-CSCF or AS that does not answer).  0: only the
     * transaction timers (32 s for Timer B/F) decide. */
    unsigned noanswer_ms;
    /* INVITE: Timer C for this forward when shorter than [proxy] timer_c:
     * a target that rang (or said nothing) this long after its last
     * provisional is cancelled, and its 487 or a 408 comes to on_response
     * (an S-CSCF then rings the callee's next device).  0: timer_c. */
    unsigned ring_ms;
    bool no_rr; /* do not Record-Route this one (an I-CSCF, TS 24.229 §5.3.2.1) */
    /* The user part and extra URI parameters of our Record-Route values
     * (an RFC 5626 flow token and ";ob": in-dialog requests then name the
     * flow), or empty for plain <sip:host:port;lr>. */
    ims_str rr_user;
    ims_str rr_params; /* e.g. ";ob" */
};

/* Forwards r statefully (§16.6): new branch, Via, Max-Forwards, Record-Route,
 * the edits above; resolves next_hop (async unless numeric) and fails over to
 * the next target on 503, 408 or a transport error.  Copies f's strings.
 * 0, IMS_EINVAL (final already sent, a forward in progress, bad URI),
 * IMS_EPROTO (the request can no longer be parsed), or, when every target
 * failed at once: IMS_ENOENT (no target), IMS_ELIMIT (transaction table
 * full, message too large, send queue full), IMS_ENOMEM or a transport
 * error.  Later failures arrive as responses.  Answer a failure with
 * ims_proxy_forward_failed(). */
int ims_proxy_forward(struct proxy_req *r, const struct proxy_fwd *f);

/* Answers r after ims_proxy_forward() returned err, and logs it once (W).
 * Lack of resources or a failed send (IMS_ELIMIT, IMS_ENOMEM, IMS_EAGAIN,
 * IMS_EIO, IMS_ENOENT, ...) is "503 Service Unavailable" with Retry-After
 * (RFC 3261 §21.5.4 temporary overload; §16.7 step 6/§16.9, every target
 * unreachable): the client may try again.  Only IMS_EINVAL and IMS_EPROTO
 * (our bug, a request we cannot rebuild) are "500 Forwarding Failed".
 * The status sent, or a negative IMS_E* when the reply failed. */
int ims_proxy_forward_failed(struct proxy_req *r, int err);

/* Inside a response callback that returns PROXY_RSP_TAKEN: relays rsp
 * upstream with edits (header lines added, header ids removed), after
 * removing our Via.  0, IMS_EINVAL, IMS_ENOMEM, transport errors. */
int ims_proxy_relay(struct proxy_req *r, const struct sip_msg *rsp, ims_str add_hdrs,
                    const uint16_t *del_hdrs, size_t ndel);

/* ---- requests of our own (NOTIFY, third-party REGISTER...) ---- */

struct proxy_uac_req {
    ims_str method;       /* "NOTIFY" */
    ims_str ruri;
    ims_str from;         /* full header values, tags included */
    ims_str to;
    ims_str call_id;
    uint32_t cseq;
    ims_str route;        /* Route header value(s), or empty */
    ims_str next_hop;     /* URI to send to; empty: the first route, else ruri */
    ims_str hdrs;         /* extra lines, each "Name: value\r\n" */
    ims_str content_type;
    ims_str body;
};

/* The final outcome: status and the response (NULL when synthesized:
 * 408, 503). */
typedef void (*proxy_uac_fn)(struct ims_proxy *p, int status, const struct sip_msg *rsp,
                             void *ud);

/* Sends a request in a client transaction; cb runs once with the final
 * response.  Copies rq.  0, IMS_EINVAL (bad method or URI), IMS_ELIMIT (pool
 * full), IMS_ENOMEM. */
int ims_proxy_uac_send(struct ims_proxy *p, const struct proxy_uac_req *rq, proxy_uac_fn cb,
                       void *ud);

/* ---- helpers shared with the apps and tests ---- */

/* Does `uri` name us (host in self names or our address, port one of ours;
 * `local_port` is the listener's)? */
bool ims_proxy_uri_is_self(const struct ims_proxy *p, const struct sip_uri *uri,
                           uint16_t local_port);
/* RFC 3261 §16.6 item 8 loop-detection hash of a request as received:
 * Request-URI, Call-ID, From tag, To tag, CSeq number, Route values and
 * Proxy-Require. */
uint32_t ims_proxy_loop_hash(const struct sip_msg *req);

/* ---- rate limits and overload control (ratelimit.c, docs/security.md) ----
 * Process-wide, from [limits]: installed before the workers run, removed
 * after they stopped (like the detectors).  No [limits] rate and no
 * overload target: nothing is installed and the hooks cost one load.
 * 0, IMS_EINVAL ([limits] exempt), IMS_ENOMEM (err says why). */
struct ims_cfg;
int ims_proxy_limits_start(const struct ims_cfg *cfg, char *err, size_t errsz);
void ims_proxy_limits_stop(void);
/* Requests answered 503 by the per-source limit, dropped by it, and
 * answered 503 by the overload control, since the start. */
void ims_proxy_limits_counts(uint64_t *limited, uint64_t *dropped, uint64_t *overload);

#endif
