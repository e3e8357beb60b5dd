/* net_int.h - private to src/net: the transport's structs, shared by tp.c,
 * udp.c, tcp.c and tls.c.  Nothing outside src/net includes this. */
#ifndef IMS_NET_INT_H
#define IMS_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "ev/loop.h"
#include "net/transport.h"

/* conn_id layout: worker index in the high 8 bits, then a 32-bit generation
 * that makes stale ids miss, then a 24-bit slot in the owner's table. */
#define CONN_ID_WORKER_SHIFT 56
#define CONN_ID_GEN_SHIFT 24
#define CONN_ID_SLOT_MASK 0xffffffu
#define TP_MAX_SLOTS (CONN_ID_SLOT_MASK + 1u)

#define TP_UDP_BATCH 8        /* datagrams per recvmmsg() */
#define TP_UDP_CALLS 8        /* recvmmsg() calls per readiness event */
#define TP_ACCEPT_BATCH 32    /* accept4() calls per readiness event */
#define TP_READ_CALLS 32      /* stream reads per readiness event */
#define TP_RBUF_MIN 4096      /* first read buffer; doubles up to max_msg */
#define TP_WBUF_KEEP 16384    /* a drained write queue larger than this is freed */

struct sip_tp_shared {
    /* copied from sip_tp_cfg (file names are used only in _shared_new) */
    size_t nlisten;
    struct sip_listen_cfg *listen;
    pthread_mutex_t ctx_lock; /* guards the two pointers: SIGHUP swaps them (tls.c) */
    SSL_CTX *srv_ctx; /* NULL without a TLS listener */
    SSL_CTX *cli_ctx; /* outgoing TLS */
    bool verify_client, verify_server;

    /* udp_spread.c: bytes handed over to each worker and not yet run or
     * dropped there (any worker adds, the target subtracts) */
    size_t spread_max;
    atomic_size_t spread_bytes[SIP_TP_MAX_WORKERS];

    pthread_mutex_t lock; /* guards everything below */
    struct sip_tp *workers[SIP_TP_MAX_WORKERS];
    struct ims_addr *bound; /* per listener: the address the first worker got */
    bool *bound_set;
    /* Connection directory for reuse across workers: (proto, peer) ->
     * conn, chained through sip_conn.dir_next.  Entries are the owners'
     * conns; other workers read only their conn_id, under the lock. */
    struct sip_conn **dir;
    size_t dir_mask;
    uint64_t dir_seed;
};

struct sip_listener {
    struct sip_tp *tp;
    enum sip_proto proto;
    int fd;
    struct ims_io io;
    struct ims_addr addr; /* bound address (actual port) */
};

enum conn_state {
    CONN_CONNECTING, /* non-blocking connect() in progress */
    CONN_HANDSHAKE,  /* TLS handshake in progress */
    CONN_OPEN,
    CONN_CLOSING,    /* hidden from lookups, freed by its timer next turn */
};

struct sip_conn;
struct local_dgram;
struct spread_msg;

/* The stream transport vtable (after Redis' ConnectionType): plain TCP and
 * TLS differ only here.  read/write return bytes (> 0), 0 for an orderly
 * EOF (read only), IMS_EAGAIN (would block: the op records what it waits
 * for, and set_interest turns that into io interest), IMS_EIO or
 * IMS_EPROTO.  handshake is 0 when done. */
struct conn_ops {
    const char *name;
    int (*handshake)(struct sip_conn *c);
    ssize_t (*read)(struct sip_conn *c, char *buf, size_t len);
    ssize_t (*write)(struct sip_conn *c, const char *buf, size_t len);
    int (*set_interest)(struct sip_conn *c, unsigned want);
    /* Decrypted bytes buffered inside the transport that epoll cannot see. */
    bool (*pending)(const struct sip_conn *c);
    void (*close)(struct sip_conn *c);
};

struct sip_conn {
    struct sip_tp *tp;
    const struct conn_ops *ops;
    uint64_t id;
    uint32_t slot;
    enum sip_proto proto;
    enum conn_state state;
    bool accepted;        /* counted against max_conns_per_src */
    int fd;
    struct ims_io io;
    struct ims_timer timer; /* idle/connect timeout; always armed (see tcp.c) */
    struct ims_addr peer;
    struct ims_addr local;
    uint64_t last_active_ms;

    char *rbuf;           /* bytes rbuf[rpos, rlen) not yet framed */
    size_t rpos, rlen, rcap;
    unsigned crlf_state;  /* progress through a "\r\n\r\n" ping */

    char *wbuf;           /* bytes wbuf[whead, whead + wlen) not yet written */
    size_t whead, wlen, walloc;

    SSL *ssl;
    bool tls_want_write;  /* the last SSL_read/handshake wanted to write */
    bool tls_want_read;   /* the last SSL_write wanted to read */
    char peer_cn[65];     /* verified peer certificate CN, or "" */

    struct sip_conn *ip_next;  /* owner's per-IP hash chain */
    struct sip_conn *dir_next; /* shared directory chain (under sh->lock) */
    bool in_dir;
};

struct sip_tp {
    struct ims_loop *loop;
    unsigned idx;
    struct sip_tp_shared *sh;
    sip_tp_rx_cb cb;
    void *ctx;

    size_t max_msg, max_conns, max_conns_per_src, wqueue_max;
    unsigned idle_timeout_ms;

    struct sip_listener *ls;
    size_t nls;

    char *udp_bufs; /* TP_UDP_BATCH buffers of max_msg + 1 bytes */
    /* udp_local.c: datagrams to our own listeners, delivered next round */
    bool no_local_delivery;
    bool local_armed;
    struct ims_deferred local_run;
    struct local_dgram *local_head, *local_tail;
    size_t local_bytes;
    /* udp_spread.c: requests for other workers, posted at the end of a read */
    unsigned spread_workers;
    struct spread_msg **spread_head, **spread_tail; /* per worker */
    bool spread_pending;
    int32_t udp_queue_ms; /* the datagram being delivered: sip_tp_rx.queue_ms */
    bool udp_from_self;   /* the datagram being delivered: sip_tp_rx.from_self */

    struct sip_conn **slots; /* max_conns entries */
    uint32_t *gens;
    uint32_t *free_slots;    /* stack of free slot indexes */
    size_t nfree;            /* closing conns keep their slot until freed */

    struct sip_conn **by_ip; /* per-IP hash (reuse and per-source cap) */
    size_t ip_mask;
    uint64_t ip_seed;

    struct sip_tp_stats stats;
    uint64_t log_window_ms;  /* peer-caused warnings: at most TP_LOG_BURST */
    unsigned log_count;      /* per second per worker */
    unsigned log_suppressed;
};

#define TP_LOG_BURST 20

/* tp.c */
bool ims_tp_log_ok(struct sip_tp *tp, unsigned *suppressed);
void ims_tp_deliver(struct sip_tp *tp, const char *buf, size_t len, enum sip_proto proto,
                    const struct ims_addr *src, const struct ims_addr *local, uint64_t conn_id,
                    const char *cn);
uint64_t ims_tp_hash_addr(uint64_t seed, const struct ims_addr *a, bool with_port);
struct sip_conn *ims_tp_conn_by_id(struct sip_tp *tp, uint64_t id);
struct sip_conn *ims_tp_conn_by_peer(struct sip_tp *tp, enum sip_proto proto,
                                     const struct ims_addr *peer);
int ims_tp_conn_link(struct sip_tp *tp, struct sip_conn *c);
void ims_tp_conn_hide(struct sip_tp *tp, struct sip_conn *c);
void ims_tp_conn_release(struct sip_tp *tp, struct sip_conn *c);
size_t ims_tp_count_src(struct sip_tp *tp, const struct ims_addr *peer);

/* udp.c */
void ims_udp_read_cb(struct ims_loop *loop, struct ims_io *io, unsigned events);
int ims_udp_send(struct sip_tp *tp, const struct ims_addr *dst, const struct sip_tp_src *src,
                 const char *buf, size_t len);

/* udp_local.c: IMS_ENOENT when dst is not ours (send it for real) */
int ims_udp_local_send(struct sip_tp *tp, const struct sip_listener *from,
                       const struct sip_tp_src *src, const struct ims_addr *dst, const char *buf,
                       size_t len);
void ims_udp_local_free(struct sip_tp *tp);

/* udp_spread.c: the worker whose Call-ID hash a request has (tp->idx for
 * responses, malformed input, or a single worker); queue it for that
 * worker (0; IMS_ENOMEM: deliver it here; IMS_ELIMIT: that worker has
 * spread_max bytes waiting already, drop it); post what was queued. */
unsigned ims_udp_spread_owner(const struct sip_tp *tp, const char *p, size_t len);
int ims_udp_spread_queue(struct sip_tp *tp, unsigned owner, const struct sip_listener *l,
                         const char *p, size_t len, const struct ims_addr *src,
                         const struct ims_addr *local, int32_t queue_ms);
void ims_udp_spread_flush(struct sip_tp *tp);

/* tcp.c */
void ims_tcp_accept_cb(struct ims_loop *loop, struct ims_io *io, unsigned events);
int ims_tcp_connect(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                    struct sip_conn **out);
int ims_conn_send(struct sip_conn *c, const char *buf, size_t len);
void ims_conn_close(struct sip_conn *c, const char *reason);
void ims_conn_destroy(struct sip_conn *c);
extern const struct conn_ops ims_tcp_ops;

/* tls.c */
int ims_tls_ctx_server(const struct sip_tp_cfg *cfg, SSL_CTX **out, char *err, size_t errsz);
int ims_tls_ctx_client(const struct sip_tp_cfg *cfg, SSL_CTX **out, char *err, size_t errsz);
/* Attaches a new SSL to c (server side if accepting). 0 or IMS_ENOMEM. */
int ims_tls_attach(struct sip_conn *c, SSL_CTX *ctx, bool accepting);
/* The same with sh's current server or client context (under ctx_lock). */
int ims_tls_attach_shared(struct sip_conn *c, struct sip_tp_shared *sh, bool accepting);
extern const struct conn_ops ims_tls_ops;

#endif
