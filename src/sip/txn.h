/* txn.h - SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted"
 * states), one table per worker loop.
 *
 * A transaction table owns a fixed pool of transactions (max_txns, never
 * grown), a hash index over their matching keys, and their timers, which are
 * struct ims_timer embedded in each transaction and armed on the worker's
 * loop.  The transaction user (TU, the proxy core) gets events through one
 * callback per transaction.
 *
 * Lifetime rules:
 * 1. A table and all its transactions belong to the thread running its loop.
 * 2. A transaction comes from the pool when it is created and goes back when
 *    it reaches Terminated.  If the TU is still attached then, the last
 *    callback it gets is SIP_TXN_EV_TERMINATED; the pointer is invalid after
 *    that callback returns.
 * 3. ims_sip_txn_detach() makes the TU forget a transaction early: no more
 *    callbacks, and the transaction finishes its state machine (absorbing
 *    retransmissions) and frees itself.
 * 4. Callbacks never run from inside the call that created the transaction or
 *    that the TU made on it (a failure detected there is returned, or
 *    reported from a zero-delay timer on a later loop turn).
 * 5. The bytes a transaction sends are moved into it (struct ims_buf) and
 *    freed with it; a server transaction keeps a private copy of the request
 *    that created it.
 *
 * Timers (RFC 3261 Table 4, RFC 6026 §8.4): A, E, G start at T1 and double
 * (E and G up to T2); B, F, H, J, L, M are 64*T1; D is 64*T1 (32 s at the
 * default T1, the RFC's floor); I and K are T4.  On reliable transports A, E
 * and G are never armed and D, I, J, K are zero.  A hop the table's
 * `reliable` hook calls reliable (an in-process UDP hand-over) is timed the
 * same way: between the roles of one process a finished transaction is freed
 * at once instead of waiting 32 s for retransmissions that cannot come.
 *
 * Branch ids we generate look like "z9hG4bKI" WW HHHHHHHH "." CCCC: WW is the
 * owning worker in hex, HHHHHHHH a 32-bit loop-detection hash chosen by the
 * TU (RFC 3261 §16.6 item 8), CCCC a per-worker counter seeded at random.  A
 * response arriving on another worker is handed to the owner through a
 * struct sip_txn_registry (one per process). */
#ifndef IMS_SIP_TXN_H
#define IMS_SIP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "net/transport.h"
#include "sip/msg.h"

struct ims_loop;
struct sip_txn;
struct sip_txn_table;
struct sip_txn_registry;

/* RFC 3261 §17.1.1.1 defaults. */
#define SIP_T1_MS 500u
#define SIP_T2_MS 4000u
#define SIP_T4_MS 5000u

/* Longest branch we generate, NUL included. */
#define SIP_BRANCH_MAX 48
/* Longest branch accepted from a peer (a cap; longer is answered 400). */
#define SIP_TXN_PEER_BRANCH_MAX 128

/* Where a message goes: a transport, an address and, for TCP/TLS, the
 * connection to use when it is still open (0 = any). */
struct sip_dest {
    enum sip_proto proto;
    struct ims_addr addr;
    uint64_t conn_id;
    /* UDP: where it leaves from.  A response: the address and port its
     * request came in at (RFC 3581 §4); a request we forward: the port it
     * came in on; zero: the transport's first UDP listener */
    struct sip_tp_src src;
};

static inline bool ims_sip_proto_reliable(enum sip_proto p)
{
    return p == SIP_PROTO_TCP || p == SIP_PROTO_TLS;
}

enum sip_txn_state {
    SIP_TXN_CALLING = 1, /* INVITE client */
    SIP_TXN_TRYING,      /* non-INVITE client and server */
    SIP_TXN_PROCEEDING,
    SIP_TXN_COMPLETED,
    SIP_TXN_CONFIRMED,   /* INVITE server */
    SIP_TXN_ACCEPTED,    /* INVITE client and server, RFC 6026 */
    SIP_TXN_TERMINATED,
};

enum sip_txn_ev_kind {
    /* Client: a response the TU must see (1xx, the first final non-2xx, and
     * every 2xx of an INVITE, RFC 6026 §7.2).  msg and rx are set. */
    SIP_TXN_EV_RESPONSE = 1,
    /* Client: Timer B or F fired, or the CANCEL wait (64*T1, RFC 3261 §9.1)
     * ran out.  Server: Timer H fired (no ACK). */
    SIP_TXN_EV_TIMEOUT,
    /* Sending failed (RFC 3261 §17.1.4, §17.2.4); err holds the IMS_E*. */
    SIP_TXN_EV_TRANSPORT_ERROR,
    /* The last event; the transaction is freed when the callback returns. */
    SIP_TXN_EV_TERMINATED,
};

struct sip_txn_ev {
    enum sip_txn_ev_kind kind;
    const struct sip_msg *msg;   /* RESPONSE: the parsed response */
    const struct sip_tp_rx *rx;  /* RESPONSE: how it arrived */
    int err;                     /* TRANSPORT_ERROR */
};

typedef void (*sip_txn_cb)(struct sip_txn *t, void *ud, const struct sip_txn_ev *ev);

/* Sends bytes for the table (the proxy wraps ims_sip_tp_send; tests fake it).
 * Returns 0 or a negative IMS_E*; must not call back into the table. */
typedef int (*sip_txn_send_fn)(void *ctx, const struct sip_dest *dst, const char *buf,
                               size_t len);

/* Whether a hop to dst is reliable although its protocol (UDP) is not: the
 * transport hands it over in-process (net/udp_local.c), where nothing is lost
 * or reordered.  Called with the send ctx when a transaction is created. */
typedef bool (*sip_txn_reliable_fn)(void *ctx, const struct sip_dest *dst);

struct sip_txn_cfg {
    size_t max_txns;           /* pool size (> 0) */
    unsigned t1_ms, t2_ms, t4_ms; /* 0 = RFC default */
    unsigned worker_idx;       /* < 256, encoded in branch ids */
    sip_txn_send_fn send;
    void *send_ctx;
    sip_txn_reliable_fn reliable; /* NULL: TCP and TLS only */
};

/* ---- table ---- */

/* Creates a table on `loop` (which must allow at least 2 * max_txns armed
 * timers besides its other users).  0, IMS_EINVAL (bad cfg), IMS_ENOMEM. */
int ims_sip_txn_table_new(struct ims_loop *loop, const struct sip_txn_cfg *cfg,
                          struct sip_txn_table **out);
/* Frees every transaction still alive (no callbacks run) and the table.
 * Returns how many still had their TU attached: those are leaks (logged at
 * WARN).  Detached ones that only wait for their last timer (Completed,
 * Confirmed, Accepted) are freed silently.  Call on the owning thread, with
 * the loop stopped.  NULL returns 0. */
size_t ims_sip_txn_table_free(struct sip_txn_table *tbl);
size_t ims_sip_txn_table_live(const struct sip_txn_table *tbl);
size_t ims_sip_txn_table_cap(const struct sip_txn_table *tbl);
struct ims_loop *ims_sip_txn_table_loop(const struct sip_txn_table *tbl);
unsigned ims_sip_txn_table_t1(const struct sip_txn_table *tbl);

/* ---- branch ids ---- */

/* Writes a fresh branch for a new client transaction ("z9hG4bKI..."), with
 * `loop_hash` embedded, into out (SIP_BRANCH_MAX bytes).  Returns its
 * length. */
size_t ims_sip_txn_branch_new(struct sip_txn_table *tbl, uint32_t loop_hash, char *out);
/* If `branch` is one of ours (any worker, any process using this scheme),
 * stores the worker index and loop hash it encodes and returns true. */
bool ims_sip_txn_branch_parse(ims_str branch, unsigned *worker, uint32_t *loop_hash);

/* ---- server transactions (RFC 3261 §17.2) ---- */

/* Matches a request against the server transactions (§17.2.3: top Via branch,
 * sent-by and method; an ACK matches its INVITE) and, when one matches, lets
 * it absorb the request: a retransmission makes it resend its last response,
 * an ACK for a non-2xx moves it to Confirmed.
 * Returns 0 (consumed: the TU must not act on it), IMS_ENOENT (no
 * transaction: a new request, an ACK for a 2xx, a CANCEL; the TU handles it;
 * *match is set if an INVITE transaction in Accepted matched an ACK, for
 * information), or IMS_EPROTO (no RFC 3261 branch or one longer than the cap:
 * the request cannot be handled statefully; answer 400, drop an ACK). */
int ims_sip_txn_rx_request(struct sip_txn_table *tbl, const struct sip_msg *req,
                           const struct sip_tp_rx *rx, struct sip_txn **match);

/* Finds the INVITE server transaction a CANCEL refers to (§9.2: same
 * matching, method INVITE).  Returns it or NULL. */
struct sip_txn *ims_sip_txn_find_cancelled(struct sip_txn_table *tbl,
                                           const struct sip_msg *cancel);

/* Creates a server transaction for a new request (not ACK) that
 * ims_sip_txn_rx_request() did not match.  Copies the request bytes; the
 * responses go where RFC 3261 §18.2.2 / RFC 3581 say (see
 * ims_sip_response_dest()).  The TU is attached with cb/ud (cb may be NULL:
 * no events).
 * Returns 0, IMS_ELIMIT (pool full: answer 503, or a timer cap), IMS_EPROTO
 * (no usable branch), IMS_ENOMEM. */
int ims_sip_txn_server_new(struct sip_txn_table *tbl, const struct sip_msg *req,
                           const struct sip_tp_rx *rx, sip_txn_cb cb, void *ud,
                           struct sip_txn **out);

/* Sends a response built by the TU through server transaction t, taking
 * ownership of rsp's bytes (rsp is left empty, even on error).  `status` is
 * the response's status code.  A provisional is sent in Trying/Proceeding; a
 * final moves the transaction to Completed (non-2xx, or any final for a
 * non-INVITE) or Accepted (INVITE 2xx); in Accepted further 2xx are sent
 * (forwarded retransmissions).  Anything else is refused.
 * Returns 0, IMS_EINVAL (not allowed in this state), or the transport's error
 * (the transaction then reports SIP_TXN_EV_TRANSPORT_ERROR and terminates on a
 * later turn). */
int ims_sip_txn_respond(struct sip_txn *t, int status, struct ims_buf *rsp);

/* True once a final response went out on this server transaction. */
bool ims_sip_txn_final_sent(const struct sip_txn *t);
/* Status of the last response sent (server) or received (client); 0 none. */
int ims_sip_txn_last_status(const struct sip_txn *t);

/* Where a response to `req` goes (RFC 3261 §18.2.2, RFC 3581 §4): the same
 * connection on TCP/TLS; on UDP the source address and port when the top Via
 * has rport, else the source address (received) and the sent-by port; on UDP
 * from the address and port the request came in at (src).  rx is the
 * request's arrival.  0 or IMS_EPROTO. */
int ims_sip_response_dest(const struct sip_msg *req, const struct sip_tp_rx *rx,
                          struct sip_dest *out);
/* Where a stateless proxy forwards a response (RFC 3261 §18.2.2), from the
 * Via that is on top after our own was removed: maddr, then received and
 * rport, then a numeric sent-by.  0, IMS_ENOENT (sent-by is a name that would
 * need DNS, RFC 3263 §5) or IMS_EPROTO. */
int ims_sip_via_dest(const struct sip_via *via, struct sip_dest *out);

/* ---- client transactions (RFC 3261 §17.1) ---- */

struct sip_txn_client_args {
    enum sip_method method;    /* of the request; not ACK */
    ims_str method_name;       /* needed when method is SIP_M_UNKNOWN */
    ims_str branch;            /* the branch in the request's top Via */
    struct sip_dest dest;
    struct ims_buf *req;       /* the request bytes, moved in */
    sip_txn_cb cb;
    void *ud;
};

/* Creates a client transaction and sends the request.  On success req is
 * moved into the transaction; on failure the caller keeps it and no callback
 * ever runs.
 * Returns 0, IMS_ELIMIT (pool full or timer cap), IMS_EINVAL (ACK, or a
 * branch longer than SIP_BRANCH_MAX - 1), IMS_ENOMEM, or the transport's
 * error for the first send. */
int ims_sip_txn_client_new(struct sip_txn_table *tbl, const struct sip_txn_client_args *a,
                           struct sip_txn **out);

/* Matches a response to a client transaction (§17.1.3: top Via branch and
 * CSeq method) and runs the state machine: retransmissions are absorbed (and
 * an ACK resent for a non-2xx final of an INVITE, §17.1.1.3), the rest is
 * passed to the TU.  Returns 0 (matched) or IMS_ENOENT (no transaction, or
 * a 2xx for an INVITE transaction in Accepted whose TU detached: a stateless
 * proxy forwards it, RFC 3261 §16.7, RFC 6026 §7.2). */
int ims_sip_txn_rx_response(struct sip_txn_table *tbl, const struct sip_msg *rsp,
                            const struct sip_tp_rx *rx);

/* Cancels a client INVITE transaction (RFC 3261 §9.1): sends a CANCEL with the
 * same branch in its own (internal, TU-less) client transaction as soon as a
 * provisional response has arrived, and gives the INVITE 64*T1 to end before
 * reporting SIP_TXN_EV_TIMEOUT.  Does nothing if a final response arrived.
 * 0, IMS_EINVAL (not an INVITE client transaction), IMS_ELIMIT, IMS_ENOMEM. */
int ims_sip_txn_cancel(struct sip_txn *t);

/* ---- both kinds ---- */

/* The TU stops listening (rule 3).  Idempotent.  A server transaction that
 * has not sent a final response is terminated (on a later turn); so is a
 * client INVITE in Accepted (its 2xx retransmissions no longer match and are
 * the stateless proxy's, see ims_sip_txn_rx_response). */
void ims_sip_txn_detach(struct sip_txn *t);
/* At teardown only, the loop stopped: the TU goes away with the work t was
 * doing for it (a call still ringing at the stop).  Nothing is scheduled;
 * ims_sip_txn_table_free() then frees t as lingering, not as a leak. */
void ims_sip_txn_abandon(struct sip_txn *t);
enum sip_txn_state ims_sip_txn_state(const struct sip_txn *t);
bool ims_sip_txn_is_server(const struct sip_txn *t);
enum sip_method ims_sip_txn_method(const struct sip_txn *t);
/* The branch of the transaction (borrowed, lives as long as t). */
ims_str ims_sip_txn_branch(const struct sip_txn *t);
/* The request: the server's private copy of what arrived, or the bytes the
 * client sent.  Borrowed, valid while the TU is attached (a client INVITE's
 * copy is replaced by the ACK after a non-2xx final and dropped in
 * Accepted; a server's is dropped once it is detached after its final
 * response).  Empty when gone. */
ims_str ims_sip_txn_request(const struct sip_txn *t);
/* Where responses (server) or requests (client) are sent. */
const struct sip_dest *ims_sip_txn_dest(const struct sip_txn *t);
/* Changes the TU callback (e.g. a different handler after a resume). */
void ims_sip_txn_set_cb(struct sip_txn *t, sip_txn_cb cb, void *ud);
/* The TU's ud while the TU is attached, else NULL. */
void *ims_sip_txn_user(const struct sip_txn *t);

/* ---- cross-worker hand-off ---- */

/* A process-wide directory of workers.  Set up before the workers run (every
 * ims_sip_txn_registry_set() happens-before the loops start); read from any
 * worker without locks afterwards. */
int ims_sip_txn_registry_new(unsigned nworkers, struct sip_txn_registry **out);
void ims_sip_txn_registry_free(struct sip_txn_registry *r);
unsigned ims_sip_txn_registry_size(const struct sip_txn_registry *r);
/* Registers worker idx: messages handed to it run fn(ctx, rx) on its loop. */
int ims_sip_txn_registry_set(struct sip_txn_registry *r, unsigned idx, struct ims_loop *loop,
                             sip_tp_rx_cb fn, void *ctx);
/* Copies rx (bytes and addresses, in one allocation) and posts it to worker
 * idx, where fn(ctx, rx') runs on a later turn.  0, IMS_ENOENT (no such
 * worker registered), IMS_ENOMEM. */
int ims_sip_txn_handoff(struct sip_txn_registry *r, unsigned idx, const struct sip_tp_rx *rx);

#endif
