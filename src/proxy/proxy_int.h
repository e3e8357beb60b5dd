/* proxy_int.h - private to src/proxy: the structs shared by proxy.c (rx,
 * validation, request contexts), fwd.c (forwarding, §16.7, UAC), route.c
 * (self, routes, targets, loop hash) and pmsg.c (message construction). */
#ifndef IMS_PROXY_INT_H
#define IMS_PROXY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ev/loop.h"
#include "net/resolve.h"
#include "proxy/proxy.h"
#include "sip/txn.h"

#define PROXY_MAX_TARGETS 8
#define PROXY_MAX_APPS 8
#define PROXY_MAX_DEL 16
#define PROXY_TRYING_MS 100u        /* RFC 3261 §17.2.1: an INVITE's 100 within 200 ms */
#define PROXY_TIMER_C_MS 180000u    /* RFC 3261 §16.6 item 11: > 3 min */
#define PROXY_RETRY_AFTER_S 5u      /* default Retry-After on overload 503s */
#define PROXY_OUT_CAP 65535u        /* largest message we build */
#define PROXY_HOSTPORT_MAX 300
#define PROXY_LOG_SLOTS 64
#define PROXY_SL_WAIT_MAX 256      /* stateless forwards waiting for DNS, per worker */

struct proxy_route_int {
    char *domain;
    char *next_hop;
    struct sip_uri uri;    /* parsed, slices into next_hop */
};

struct proxy_shared {
    unsigned nworkers;
    bool record_route;
    size_t max_txns;
    unsigned t1, t2, t4, timer_c;
    unsigned nit_trying;   /* px_nit_trying_ms(t1, t2) */
    unsigned retry_after;  /* seconds, on the core's own overload 503s */
    char **self;
    size_t nself;
    uint16_t *self_ports;
    size_t nself_ports;
    char *advertise;       /* may be NULL */
    struct proxy_route_int *routes;
    size_t nroutes;
    struct sip_txn_registry *reg;
};

/* Our address for one (proto, family): "host:port" for Via, and the host and
 * port for Record-Route. */
struct proxy_iface {
    bool ok;
    char host[PROXY_HOSTPORT_MAX]; /* IPv6 in brackets */
    uint16_t port;
    /* "host:port", written once: every forward's Via used to format it
     * (Record-Route is not from it: px_rr_value takes copies whose port is
     * the one the request arrived on) */
    char hostport[PROXY_HOSTPORT_MAX + 8];
    size_t hostport_len;
};

enum { PX_FAM_V4 = 0, PX_FAM_V6 = 1 };

/* A request's parse moved onto its server transaction's copy
 * (ims_sip_msg_rebase): the roles look at the request again when a
 * response or an HSS answer comes, and a parse each time was 4 % of the
 * server's CPU in a registration profile. */
struct px_kept_msg {
    struct sip_msg m;
    struct sip_hdr h[]; /* m.nhdrs */
};

struct proxy_req {
    struct ims_proxy *p;
    int32_t next_free;
    bool in_use;
    unsigned refs;         /* server txn + forward + holds + running calls */
    unsigned holds;

    struct sip_txn *st;    /* attached server transaction, until its final */
    struct sip_txn *ct;    /* attached client transaction of the current branch */
    struct sip_tp_rx rx;   /* copy of the arrival (buf: the txn's copy) */
    struct sip_dest updest;/* where responses go */
    enum sip_method method;
    uint16_t local_port;
    uint32_t loop_hash;
    unsigned npop;         /* Route values naming us, popped when forwarding */
    bool strict_fix;       /* §16.4: R-URI was ours, take the last Route */
    bool to_self, cancelled, final_sent, fwd_active, uac, got_prov, cancel_cb_done;
    bool got_any;          /* the current branch had a response (a 100 too) */
    bool nit_expired;      /* a non-INVITE branch ran to Timer F: so did the client's */
    unsigned noanswer_ms;  /* proxy_fwd.noanswer_ms; tm_c runs it first */
    unsigned timer_c_ms;   /* Timer C of this forward: [proxy] timer_c or proxy_fwd.ring_ms */
    bool no_rr;            /* proxy_fwd.no_rr */
    const struct sip_msg *cur_msg; /* the request while the handler runs */
    struct px_kept_msg *kept;      /* its parse on the txn's copy; NULL: parse again */

    /* forwarding spec, copied (offsets into spec.p, valid after building) */
    struct ims_buf spec;
    size_t s_ruri, l_ruri, s_hop, l_hop, s_add, l_add, s_rru, l_rru, s_rrp, l_rrp;
    /* UAC fields (offsets into spec) */
    size_t s_method, l_method, s_from, l_from, s_to, l_to, s_cid, l_cid, s_route, l_route;
    size_t s_hdrs, l_hdrs, s_ctype, l_ctype, s_body, l_body;
    uint32_t uac_cseq;
    enum sip_method uac_method;
    uint16_t del[PROXY_MAX_DEL];
    size_t ndel;
    proxy_response_fn on_rsp;
    void *rsp_ud;
    proxy_uac_fn uac_cb;
    void *uac_ud;

    /* targets of the current forward */
    struct sip_dest targets[PROXY_MAX_TARGETS];
    unsigned ntargets, cur;
    bool resolving;
    struct ims_resolve_req rreq;

    /* the best final response so far (§16.7 step 6) */
    int best_status;       /* 0: none */
    struct ims_buf best;   /* its bytes when it was a real response */

    void *data;
    void (*on_cancel)(struct proxy_req *r, void *ud);
    void *cancel_ud;
    struct ims_timer tm_trying, tm_c;
};

struct proxy_app_slot {
    uint16_t port;
    bool used;
    struct proxy_app app;
};

struct log_slot {
    uint32_t key;
    uint64_t window_ms;
    unsigned count;
};

struct ims_proxy {
    struct proxy_shared *sh;
    unsigned idx;
    struct ims_loop *loop;
    struct ims_resolver *res;
    struct sip_tp *tp;
    struct proxy_io io;
    struct sip_txn_table *txns;

    struct proxy_req *reqs;
    size_t nreqs, reqs_live, req_hwm;
    int32_t req_free;

    struct proxy_app_slot apps[PROXY_MAX_APPS];
    struct proxy_iface ifaces[4][2]; /* [proto][family] */

    struct ims_buf scratch;          /* stateless output */
    /* stateless forwards waiting for their next hop's name (fwd.c) */
    struct px_sl_wait *sl_wait;
    size_t sl_nwait;
    /* re-parse of a request copy, owned by `rmsg_owner` until the next use */
    struct sip_msg rmsg;
    struct sip_hdr rhdrs[SIP_MAX_HEADERS_DEFAULT];
    const void *rmsg_owner;
    struct sip_msg bmsg;             /* re-parse of a stored best response */
    struct sip_hdr bhdrs[SIP_MAX_HEADERS_DEFAULT];

    struct log_slot logs[PROXY_LOG_SLOTS];
    struct log_slot fwd_fail_log; /* ims_proxy_forward_failed's 503 lines */
    uint32_t tag_salt;
    struct proxy_stats st;
};

/* ---- proxy.c ---- */
struct proxy_req *px_req_new(struct ims_proxy *p);
void px_req_ref(struct proxy_req *r);
void px_req_unref(struct proxy_req *r);
/* Sends bytes through the io seam. */
int px_send(struct ims_proxy *p, const struct sip_dest *d, const char *buf, size_t len);
/* Answers 500 if nobody answered, forwards or holds r (proxy.h rule 3). */
void px_check_unanswered(struct proxy_req *r);
/* Detaches the server transaction after a final response. */
void px_req_drop_st(struct proxy_req *r);
/* The request is answered (or given up, RFC 4320 §4.2): no 100 Trying any
 * more, and its server transaction goes on without us. */
void px_final_reached(struct proxy_req *r);
/* Logs a peer-caused problem, rate-limited per source address. */
void px_peer_log(struct ims_proxy *p, const struct sip_tp_rx *rx, const char *what,
                 const char *detail);
/* Sends a stateless response to req (rx: how it arrived). */
int px_reply_stateless(struct ims_proxy *p, const struct sip_msg *req,
                       const struct sip_tp_rx *rx, int status, const char *reason,
                       ims_str extra_hdrs);

/* ---- route.c ---- */
int px_route_init(struct proxy_shared *sh, const struct proxy_cfg *cfg);
void px_route_free(struct proxy_shared *sh);
bool px_host_is_self(const struct ims_proxy *p, ims_str host);
bool px_port_is_self(const struct ims_proxy *p, uint16_t port, uint16_t local_port);
/* The static route for a R-URI host, or NULL. */
const struct proxy_route_int *px_route_find(const struct ims_proxy *p, ims_str host);
/* Fills targets for a URI: numeric hosts at once (returns 0), names through
 * the resolver when async is true (returns IMS_EAGAIN and takes a reference
 * on r; px_fwd_resolved() runs later), or an error (IMS_EINVAL bad URI,
 * IMS_ENOENT a name without async or resolver, resolver errors). */
int px_targets(struct proxy_req *r, const struct sip_uri *uri, bool async);
/* What RFC 3263 resolution needs of a next-hop URI: px_targets' first step. */
struct px_name {
    ims_str host;          /* maddr, else host: slices into the URI */
    uint16_t port;         /* 0: none given */
    enum sip_proto hint;   /* transport=, or SIP_PROTO_NONE */
    bool sips;
};
/* 0 and *d for a numeric host (no resolver needed), IMS_EAGAIN and *name
 * for a name, IMS_EINVAL for a URI we cannot send to. */
int px_uri_dest(const struct sip_uri *uri, struct sip_dest *d, struct px_name *name);
/* Our interface for a destination's proto and family (NULL if none). */
const struct proxy_iface *px_iface(struct ims_proxy *p, enum sip_proto proto, int family);
/* Route pre-processing (§16.4): how many top Route values name us, whether
 * the strict-router fix applies.  0 or IMS_EPROTO (bad Route). */
int px_route_pre(const struct ims_proxy *p, const struct sip_msg *m, uint16_t local_port,
                 unsigned *npop, bool *strict_fix, bool *to_self);
/* The URI of Route value number `idx` (0-based, over all Route lines), or
 * of the last one when idx is SIZE_MAX.  0, IMS_ENOENT, IMS_EPROTO. */
int px_route_value(const struct sip_msg *m, size_t idx, ims_str *value, struct sip_uri *uri);
/* §16.3 item 4: is this request looping through us?  */
bool px_loop_detect(const struct ims_proxy *p, const struct sip_msg *m, uint16_t local_port,
                    uint32_t hash);

/* ---- fwd.c ---- */
void px_fwd_resolved(struct proxy_req *r, int err);
void px_cancel_rx(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx);
void px_stateless_forward(struct ims_proxy *p, const struct sip_msg *m,
                          const struct sip_tp_rx *rx);
void px_stateless_response(struct ims_proxy *p, const struct sip_msg *m);
/* Drops the stateless forwards still waiting for a name (ims_proxy_free). */
void px_stateless_wait_free(struct ims_proxy *p);
void px_req_timers_init(struct proxy_req *r);
/* when a non-INVITE without an answer gets its 100 (RFC 4320 §4.1), in ms */
unsigned px_nit_trying_ms(unsigned t1, unsigned t2);

/* ---- pmsg.c ---- */
/* Reserves room for n more bytes (one allocation instead of doublings). */
int px_buf_reserve(struct ims_buf *b, size_t n);
/* A response to req (ims_sip_build_response) with a To tag derived from the
 * request, so retransmissions get the same one. */
struct px_rsp_args {
    int status;
    const char *reason;
    ims_str hdrs, content_type, body;
    uint32_t tag_salt;
    const struct sip_tp_rx *rx; /* the request's arrival: received/rport; may be NULL */
};
int px_build_response(const struct sip_msg *req, const struct px_rsp_args *a,
                      struct ims_buf *out);
/* The To tag px_build_response adds (8 hex digits, no NUL). */
void px_to_tag(const struct sip_msg *req, uint32_t salt, char tag[8]);
/* A forwarded request (§16.6). */
struct px_fwd_args {
    ims_str ruri;                /* replacement, or empty */
    unsigned npop;
    bool strict_fix;
    ims_str via_proto;           /* "UDP" */
    ims_str via_host;            /* "host:port" */
    ims_str branch;
    bool rport;
    const struct sip_tp_rx *rx;  /* arrival: received/rport on the old top Via */
    ims_str rr[2];               /* Record-Route values to insert, top first */
    ims_str add_hdrs;
    const uint16_t *del;
    size_t ndel;
};
int px_build_request(const struct sip_msg *m, const struct px_fwd_args *a, struct ims_buf *out);
/* A relayed response: our Via removed, edits applied. */
int px_build_relay(const struct sip_msg *rsp, ims_str add_hdrs, const uint16_t *del, size_t ndel,
                   struct ims_buf *out);
/* The Via value that follows the top one (second in the message); out
 * NULL: only whether there is one (0) or not (IMS_ENOENT). */
int px_second_via(const struct sip_msg *m, struct sip_via *out);
/* Writes "<sip:host:port;transport=x;lr>" for an interface. */
/* The app for requests on local port `port` (the default app if none). */
const struct proxy_app *px_find_app(const struct ims_proxy *p, uint16_t port);

size_t px_rr_value(const struct proxy_iface *ifc, enum sip_proto proto, ims_str user,
                   ims_str params, char *out, size_t outsz);

/* ---- ratelimit.c hooks ---- */
/* Before parsing: 0 pass, 1 over the source's rate (answer 503 after
 * parsing: px_limit_reject), -1 drop. */
int px_limit_rx(struct ims_proxy *p, const struct sip_tp_rx *rx);
/* Answers a request over its source's rate (ACK: dropped); true. */
bool px_limit_reject(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx);
/* A new out-of-dialog request beyond the worker's accepted rate: answered
 * 503 with Retry-After here, true.  Feeds rx->queue_ms to the control. */
bool px_overload_reject(struct ims_proxy *p, const struct sip_msg *m, const struct sip_tp_rx *rx);

/* One worker's overload control (ratelimit.c): a request is admitted by
 * the delay it waited in our receive queue, within the max_rate ceiling,
 * with min_rate admitted whatever the delay.  px_ol_admit() decides one
 * request (exposed for its unit test). */
struct px_ol_params {
    double target_ms, min_rate, max_rate;
};
struct px_ol_state {
    double tokens, floor_tokens; /* the max_rate and the min_rate buckets */
    uint64_t last_ms;
    int32_t last_delay_ms; /* the last datagram's queue_ms: for requests without one */
    uint64_t last_delay_at;
    /* what the current log period saw */
    uint64_t period_ms, admitted, refused;
    int32_t max_delay_ms;
};
/* queue_ms: the request's own queueing delay, -1 unknown (TCP/TLS: the
 * worker's last UDP delay stands in).  completes(ctx), asked only for a
 * late request (NULL: never): it answers our challenge (credentials), and
 * refusing it would waste the round already paid. */
typedef bool (*px_ol_completes_fn)(const void *ctx);
bool px_ol_admit(struct px_ol_state *o, const struct px_ol_params *pr, int32_t queue_ms,
                 px_ol_completes_fn completes, const void *ctx, uint64_t now);

#endif
