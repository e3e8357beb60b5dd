/* dia.h - the process's Diameter node: freeDiameter, configured from
 * imscloud's config, serving Cx/Dx and Sh requests to a handler on an
 * event loop, and sending requests (RTR, PPR; every command for test
 * clients).
 *
 * freeDiameter is a process-wide singleton (fd_core_initialize() works
 * once per process; its dictionary, peers and threads are global), so
 * this module is too: one ims_dia_start() per process, one
 * ims_dia_stop().  A second start, even after a stop, is IMS_EINVAL.
 *
 * Threads (docs/internals/diameter.md):
 * 1. freeDiameter's threads receive a request, decode it into a struct
 *    (dia/msgs.h) with the table-driven codec and, if it is malformed,
 *    answer DIAMETER_MISSING_AVP / DIAMETER_INVALID_AVP_VALUE /
 *    DIAMETER_AVP_OCCURS_TOO_MANY_TIMES with Failed-AVP right there.
 * 2. Otherwise the request takes a slot of a fixed pool (max_pending; a
 *    full pool is answered DIAMETER_TOO_BUSY at once) and is posted to the
 *    owning loop (ims_loop_post), where the handler runs.  No freeDiameter
 *    thread ever waits for the database.
 * 3. The handler answers exactly once, from any thread, with
 *    ims_dia_answer(); the request and its slices live until then.
 * 4. Answers to requests we send are delivered to their callback on the
 *    loop given at start (or, with no loop, on freeDiameter's thread). */
#ifndef IMS_DIA_DIA_H
#define IMS_DIA_DIA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"
#include "dia/msgs.h"

struct ims_loop;

#define IMS_DIA_MAX_PEERS 16

enum { IMS_DIA_APP_CX = 1, IMS_DIA_APP_SH = 2 };

struct ims_dia_peer {
    const char *id;   /* Diameter identity */
    const char *addr; /* IP address to connect to */
    unsigned port;    /* 0: 3868 (5868 with tls) */
    bool tls;         /* connect with TLS (RFC 6733 §13: TLS from the start) */
};

struct ims_dia_cfg {
    const char *identity; /* our Diameter identity (FQDN) */
    const char *realm;
    const char *listen;   /* address to listen on; NULL = all */
    unsigned port;        /* 0 = no plain TCP listener */
    unsigned tls_port;    /* 0 = no TLS listener */
    const char *tls_cert, *tls_key, *tls_dh; /* PEM files; key NULL = no TLS */
    const char *tls_ca;   /* PEM CA file(s), several separated by ',' */
    bool tls_required;    /* refuse peers that did not use TLS */
    const char *fd_conf;  /* an operator's freeDiameter file, used as is */
    const char *run_dir;  /* where the generated freeDiameter file goes */
    const char *allow_hosts;  /* comma list of '*' globs for Origin-Host; NULL = "*" */
    const char *allow_realms; /* comma list of globs for Origin-Realm; NULL = our realm */
    const struct ims_dia_peer *peers; /* ConnectPeer entries (always accepted) */
    size_t npeers;
    unsigned app_threads; /* freeDiameter AppServThreads */
    unsigned tc_timer, tw_timer; /* seconds; 0 = freeDiameter's 30 */
    size_t max_pending;   /* requests being handled at once */
    unsigned request_timeout_ms; /* for requests we send */
    unsigned apps;        /* IMS_DIA_APP_*: what we advertise and serve */
    bool scscf_side;      /* serve RTR/PPR (an S-CSCF, test clients), not UAR..PUR */
    int log_level;        /* enum ims_log_level, mapped onto freeDiameter's */
};

/* A received request, handed to the handler on the loop. */
struct ims_dia_req {
    unsigned cmd;            /* DIA_CMD_UAR ... DIA_CMD_PUR (RTR, PPR: scscf_side) */
    ims_str origin_host;     /* Origin-Host of the request */
    ims_str origin_realm;
    ims_str session_id;      /* for logs (sess=) */
    union {
        uint64_t present;
        struct cx_uar uar;
        struct cx_mar mar;
        struct cx_sar sar;
        struct cx_lir lir;
        struct sh_udr udr;
        struct sh_pur pur;
        struct cx_rtr rtr;
        struct cx_ppr ppr;
    } u;
    void *user;              /* the handler's */
};

/* Runs on the loop (or freeDiameter's thread: ims_dia_start,
 * ims_dia_requests_inline); must lead to exactly one ims_dia_answer(req). */
typedef void (*ims_dia_req_fn)(struct ims_dia_req *req, void *arg);

/* Starts freeDiameter: writes (or takes) its configuration, adds the
 * Cx/Sh dictionary, advertises cfg->apps as Vendor-Specific-Application-Id
 * {10415, app}, installs the peer allow-list, and - when fn is given -
 * serves UAR/MAR/SAR/LIR (Cx) and UDR/PUR (Sh) to fn on loop (RTR/PPR with
 * scscf_side).  Waits until the listeners are up.  With fn and no loop, fn
 * runs on freeDiameter's thread and must not block (an S-CSCF's Cx
 * client: its answers and requests belong to several worker loops).
 * 0, IMS_EINVAL (bad cfg, or a second start: err says), IMS_EIO (cannot
 * write the configuration), IMS_EBACKEND (freeDiameter refused: its log
 * says why; the process cannot start it again), IMS_ENOMEM. */
int ims_dia_start(const struct ims_dia_cfg *cfg, struct ims_loop *loop, ims_dia_req_fn fn,
                  void *arg, char *err, size_t errsz);
/* For the next ims_dia_start (the one that starts the node): with on, fn
 * runs on freeDiameter's thread even with a loop (which still gets the
 * answers to our own requests).  For a handler that only hands the request
 * on, thread-safely (the HSS submits it to its store threads): a hop
 * through the loop is a thread wake-up per request, the largest cost in
 * the HSS benchmark (bench/hss). */
void ims_dia_requests_inline(bool on);

/* Answers req with ans (slices borrowed for the call) and releases req.
 * Adds Vendor-Specific-Application-Id, Auth-Session-State and Origin-*;
 * a 3xxx Result-Code sets the E bit.  Any thread, exactly once per req.
 * 0, or IMS_EBACKEND/IMS_ENOMEM (the answer could not be built or sent:
 * logged; req is released anyway and the peer times out). */
int ims_dia_answer(struct ims_dia_req *req, const struct dia_ans *ans);

/* Completion of a request we sent: rc 0 with the decoded answer (borrowed
 * for the call), IMS_ETIMEDOUT, or IMS_EPROTO (an answer we could not
 * decode; ans is NULL). */
typedef void (*ims_dia_ans_fn)(struct ims_loop *loop, int rc, const struct dia_ans *ans,
                               void *arg);

/* Sends a request: cmd one of DIA_CMD_*, req the matching struct
 * (struct cx_uar for DIA_CMD_UAR, ...).  Adds Session-Id,
 * Vendor-Specific-Application-Id, Auth-Session-State (1,
 * NO_STATE_MAINTAINED) and Origin-*; the head's Destination-Host/Realm
 * route it.  Callback rule: if this fails, cb never runs.
 * 0, IMS_EINVAL (not started, unknown cmd), IMS_ENOMEM, IMS_EBACKEND. */
int ims_dia_send(unsigned cmd, const void *req, ims_dia_ans_fn cb, void *arg);

/* True while the peer with this Diameter identity is in the OPEN state. */
bool ims_dia_peer_open(const char *id);
/* Our identity and realm (valid after start). */
ims_str ims_dia_identity(void);
ims_str ims_dia_realm(void);

/* Shutdown, in this order (each idempotent):
 * ims_dia_drain(): new requests are answered DIAMETER_TOO_BUSY; waits up
 *   to timeout_ms for the requests being handled to be answered (the
 *   loop and the store threads must keep running meanwhile).
 * ims_dia_stop(): stops freeDiameter; no callback runs after it returns,
 *   answers are no longer sent (requests are just released).
 * ims_dia_release(): frees the pool and the requests we sent that never
 *   completed; returns the number of received requests still unanswered
 *   (leaked by the handler), which tests treat as a failure. */
void ims_dia_drain(unsigned timeout_ms);
void ims_dia_stop(void);
size_t ims_dia_release(void);

/* Case-insensitive match of s against a pattern where '*' matches any run
 * of bytes (Diameter identities and realms, SLF identity ranges). */
bool ims_dia_glob(ims_str pattern, ims_str s);
/* True if s matches one pattern of a comma-separated list. */
bool ims_dia_glob_list(const char *list, ims_str s);

#endif
