/* transport.h - SIP transports (RFC 3261 §18): UDP, TCP and TLS over IPv4
 * and IPv6, one instance per worker loop.
 *
 * Each worker owns a struct sip_tp: its own SO_REUSEPORT listening sockets,
 * the TCP/TLS connections it accepted or opened, and their buffers.  Messages
 * arrive whole (stream framing via ims_sip_frame) through the rx callback on
 * the worker's thread.  Connections are identified by a conn_id that encodes
 * the owning worker, so any worker can send on any connection: a send for a
 * connection of another worker is posted to that worker's loop.
 *
 * Caps: message size, connections per source address, total connections,
 * write queue, idle timeout; hitting one closes or refuses the connection,
 * never grows.
 *
 * Threading and lifetime rules:
 * 1. A struct sip_tp and everything in it is touched only on its worker's
 *    loop thread (including ims_sip_tp_stats and ims_sip_tp_local).
 *    ims_sip_tp_send() is called on the calling worker's own sip_tp; when
 *    the conn_id (or the reused connection) belongs to another worker, the
 *    bytes are copied and posted to that worker's loop (ims_loop_post).
 * 2. The sip_tp_shared is created first and freed last: after every sip_tp
 *    was freed.  Its lock guards only the worker table, the bound listener
 *    addresses and the connection directory; no callback runs under it.
 * 3. Shutdown: stop every loop, ims_sip_tp_free() each transport on its own
 *    thread (or after the threads joined), then free the loops, then the
 *    shared state.  Sends posted to a worker whose transport is gone are
 *    dropped.
 * 4. A connection is closed by its owner only: on EOF, error, framing error,
 *    idle timeout, or a cap.  Its memory is released on the next loop turn,
 *    so a close from inside an rx callback is safe; its conn_id never
 *    matches again (a generation counter).
 * 5. rx callbacks run on the worker's thread, never from inside
 *    ims_sip_tp_send(); the rx buffer is borrowed for the callback only. */
#ifndef IMS_NET_TRANSPORT_H
#define IMS_NET_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/str.h"

struct ims_loop;
struct sip_tp;
struct sip_tp_shared;

#define SIP_TP_MAX_WORKERS 256 /* conn_id keeps the worker in 8 bits */

/* Defaults used when a sip_tp_cfg field is 0. */
#define SIP_TP_DEFAULT_MAX_CONNS 4096
#define SIP_TP_DEFAULT_MAX_CONNS_PER_SRC 64
#define SIP_TP_DEFAULT_IDLE_MS 120000u
#define SIP_TP_DEFAULT_WQUEUE (256u * 1024u) /* never less than 2 * max_msg */
#define SIP_TP_DEFAULT_SPREAD_MAX (8u * 1024u * 1024u)

enum sip_proto { SIP_PROTO_NONE = 0, SIP_PROTO_UDP, SIP_PROTO_TCP, SIP_PROTO_TLS };

struct ims_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses a numeric address: "1.2.3.4:5060", "[::1]:5061", "1.2.3.4",
 * "[::1]" or "::1" (no port: default_port).  No host names, no scope ids.
 * 0 or IMS_EPROTO (not a numeric address, bad port). */
int ims_addr_parse(ims_str s, uint16_t default_port, struct ims_addr *out);
/* Copies a sockaddr (AF_INET or AF_INET6).  0 or IMS_EINVAL. */
int ims_addr_set(struct ims_addr *out, const struct sockaddr *sa, socklen_t len);
int ims_addr_family(const struct ims_addr *a); /* AF_INET / AF_INET6 / AF_UNSPEC */
/* "1.2.3.4:5060" / "[::1]:5060" into buf (IMS_ADDR_STRLEN is enough);
 * returns buf ("?" if a is not an address). */
#define IMS_ADDR_STRLEN 56
const char *ims_addr_str(const struct ims_addr *a, char *buf, size_t bufsz);
/* Numeric host without brackets and port, for Via received=. */
const char *ims_addr_host(const struct ims_addr *a, char *buf, size_t bufsz);
uint16_t ims_addr_port(const struct ims_addr *a);
/* The IP of sa as a fixed-size key (per-source tables: the deny group, the
 * detectors): IPv4, and IPv4-mapped IPv6, in ip[0..3] with *v6 = 0, other
 * IPv6 in ip[0..15] with *v6 = 1; the rest zeroed.  0, IMS_EINVAL (not
 * AF_INET/AF_INET6). */
int ims_sockaddr_ip_key(const struct sockaddr *sa, uint8_t ip[16], uint8_t *v6);
bool ims_addr_equal(const struct ims_addr *a, const struct ims_addr *b); /* family, IP, port */
bool ims_addr_same_ip(const struct ims_addr *a, const struct ims_addr *b); /* port ignored */
bool ims_addr_is_any(const struct ims_addr *a); /* 0.0.0.0 or :: (a wildcard bind) */
const char *ims_proto_name(enum sip_proto p); /* "UDP" "TCP" "TLS" ("NONE") */
/* "udp"/"tcp"/"tls", case-insensitive.  0 or IMS_ENOENT (SCTP, WS...). */
int ims_proto_parse(ims_str s, enum sip_proto *out);

/* A received message, valid only during the rx callback. */
struct sip_tp_rx {
    const char *buf;
    size_t len;
    enum sip_proto proto;
    struct ims_addr src;
    /* Where it came in: the listener's address; behind a wildcard UDP bind,
     * the address the datagram was sent to (IP_PKTINFO), as TCP's local end
     * of the connection is */
    struct ims_addr local;
    uint64_t conn_id;        /* 0 for UDP */
    const char *tls_peer_cn; /* the verified peer certificate's subject CN, or
                              * NULL (not TLS, or verification not enabled) */
    /* How long the datagram waited in our socket's receive queue (kernel
     * receive timestamp to our read), ms; -1 when unknown (TCP/TLS).  The
     * overload control's signal: it grows only when we cannot keep up, not
     * when a peer (HSS, Keystone, a UAS) is slow. */
    int32_t queue_ms;
    /* Handed over in-process by one of our own UDP listeners (udp_local.c):
     * a hop between roles of this process, admitted at its edge already. */
    bool from_self;
};

typedef void (*sip_tp_rx_cb)(void *ctx, const struct sip_tp_rx *rx);

struct sip_listen_cfg {
    enum sip_proto proto;
    struct ims_addr addr;
};

/* Zero fields take the defaults above.  The same cfg is passed to
 * ims_sip_tp_shared_new() and to every ims_sip_tp_new(). */
struct sip_tp_cfg {
    const struct sip_listen_cfg *listen;
    size_t nlisten;
    size_t max_msg;           /* bytes, default SIP_MAX_MSG_DEFAULT */
    size_t max_conns;         /* per worker, accepted + opened (< 2^24) */
    size_t max_conns_per_src; /* per worker, per source IP, accepted only */
    unsigned idle_timeout_ms; /* TCP/TLS connections with no traffic; also
                               * bounds connect and TLS handshake time */
    size_t max_wqueue;        /* bytes queued per connection */
    /* TLS (only when a TLS listener or outgoing TLS is used) */
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
    bool tls_verify_client;   /* require and verify client certificates */
    bool tls_verify_server;   /* verify servers we connect to against ca
                               * (chain only: we connect to an address, so
                               * no host name is checked) */
    const char *tls_ciphers;  /* TLS 1.2 cipher list; NULL = built-in modern list */
    const char *tls_ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL's (all AEAD) */
    /* the certificate outgoing TLS presents (mutual TLS between roles);
     * NULL: tls_cert_file/tls_key_file when set */
    const char *tls_client_cert_file, *tls_client_key_file;
    /* UDP to one of our own listeners (roles of one process talking to each
     * other) goes through the kernel like any datagram instead of being
     * handed over in-process (udp_local.c) */
    bool no_local_delivery;
    /* UDP requests are spread over workers 0 .. spread_workers - 1 by a hash
     * of their Call-ID (udp_spread.c); 0 or 1: each stays on the worker the
     * kernel picked (by flow) */
    unsigned spread_workers;
    /* bytes of spread requests waiting for one worker (handed over, not yet
     * run there); a request that would go past it is dropped, as a full
     * socket buffer would drop it.  0: SIP_TP_DEFAULT_SPREAD_MAX */
    size_t spread_max_bytes;
};

/* State shared by every worker's transport (created once, before workers):
 * the OpenSSL contexts and the connection directory used for reuse.  TLS
 * servers and clients use TLS 1.2 at least; cert and key are loaded when
 * given (and required by a TLS listener); the CA file is required by
 * tls_verify_client and tls_verify_server.  Copies what it keeps of cfg.
 * 0, IMS_EINVAL (bad cfg or TLS files: *err says which), IMS_ENOMEM. */
int ims_sip_tp_shared_new(const struct sip_tp_cfg *cfg, struct sip_tp_shared **out,
                          char *err, size_t errsz);
void ims_sip_tp_shared_free(struct sip_tp_shared *sh);
/* Certificate reload (SIGHUP): builds new OpenSSL contexts from cfg's
 * files and swaps them in for new handshakes; established connections
 * keep the context they started with (OpenSSL counts its references), so
 * nothing is dropped.  Any thread.  On error nothing changes.
 * 0 or IMS_EINVAL/IMS_ENOMEM as ims_sip_tp_shared_new (err says why). */
int ims_sip_tp_shared_reload_tls(struct sip_tp_shared *sh, const struct sip_tp_cfg *cfg,
                                 char *err, size_t errsz);

/* Creates worker `worker_idx`'s transport on `loop` and opens its listeners
 * (SO_REUSEPORT, so every worker binds the same addresses; a listener with
 * port 0 is bound by the first worker to an ephemeral port that the others
 * then share; IPV6_V6ONLY on v6 sockets).  Registers the transport in sh so
 * other workers can post sends to it.  Call on the loop's thread, or before
 * the loop's thread starts; create the workers one after another (the
 * first fixes the ephemeral ports).  worker_idx < SIP_TP_MAX_WORKERS,
 * unique.  Each connection holds one of the loop's timers for its whole
 * life: size the loop's max_timers for max_conns plus the other users.
 * 0, IMS_EIO (socket/bind failed: *err names the address), IMS_EINVAL (bad
 * index, TLS listener without certificate), IMS_ENOMEM. */
int ims_sip_tp_new(struct ims_loop *loop, unsigned worker_idx, struct sip_tp_shared *sh,
                   const struct sip_tp_cfg *cfg, sip_tp_rx_cb cb, void *ctx,
                   struct sip_tp **out, char *err, size_t errsz);
/* Unregisters from sh and closes every listener and connection (no rx
 * callback runs).  Call on the owning thread, with the loop stopped; the
 * loop must not run this transport's callbacks again.  NULL is a no-op. */
void ims_sip_tp_free(struct sip_tp *tp);

/* Where a UDP message leaves from: our UDP listener on `port` (0, or none
 * on that port: the first UDP listener of the destination's family) and,
 * when that listener is bound to a wildcard address, the source address
 * `ip` (family AF_UNSPEC: the kernel picks one by route).  RFC 3581 §4: a
 * response leaves from the address and port its request was sent to, or a
 * symmetric NAT drops it. */
struct sip_tp_src {
    uint16_t port;
    sa_family_t family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } ip;
};

/* The sip_tp_src of the address a message came in at (sip_tp_rx.local):
 * its port and, with_ip, its IP (none for a wildcard address). */
void ims_sip_tp_src_of(const struct ims_addr *local, bool with_ip, struct sip_tp_src *out);

/* Sends one message.  UDP (dst required): from where src says (NULL: the
 * first UDP listener of dst's family, the kernel's source IP).  A datagram
 * to one of this worker's own UDP listeners is handed to its rx callback
 * later in this loop turn, as the kernel would have delivered it (same
 * source, listener, security groups, size cap), unless
 * cfg.no_local_delivery.  TCP/TLS: on conn_id when it is still open
 * (another worker's connection: posted to that worker, which falls back as
 * below if the connection closed meanwhile), else on an open connection to
 * dst of that proto, accepted or opened, by any worker (RFC 3261 §18.1.1,
 * §18.2.2: reuse), else opens one (non-blocking; the bytes are queued until
 * the connection, and for TLS the handshake, is done).  Copies buf; the
 * message is queued whole or not at all.  Never calls the rx callback.
 * 0 (sent, queued or posted: a later failure closes the connection and is
 * logged), IMS_ENOENT (no UDP listener for the family, or no conn_id/dst),
 * IMS_ELIMIT (write queue, connection or timer cap; UDP socket buffer full),
 * IMS_EINVAL (proto), IMS_ENOMEM, IMS_EIO (socket error). */
int ims_sip_tp_send(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                    uint64_t conn_id, const struct sip_tp_src *src, const char *buf,
                    size_t len);

/* Whether a TCP/TLS connection to peer is open on any worker (accepted or
 * opened): an RFC 5626 flow to a UE lives only as long as its connection.
 * False for UDP and other protos. */
bool ims_sip_tp_conn_open(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *peer);

/* Whether ims_sip_tp_send(tp, proto, dst, ...) hands the message over
 * in-process (UDP to one of our own listeners, udp_local.c) rather than to
 * the kernel: then nothing is lost on the way, and the transaction layer
 * may time the hop as a reliable one. */
bool ims_sip_tp_in_process(const struct sip_tp *tp, enum sip_proto proto,
                           const struct ims_addr *dst);

/* The address the first listener of this proto/family is bound to, with
 * its actual port (for Via and Record-Route; a wildcard bind gives the
 * wildcard address: advertise a configured one instead).  0 or IMS_ENOENT. */
int ims_sip_tp_local(const struct sip_tp *tp, enum sip_proto proto, int family,
                     struct ims_addr *out);

/* Counters for /metrics and tests (this worker only).  conns_open counts
 * connections ever opened (accepted or connected), conns_current those
 * alive now; rx_dropped counts datagrams dropped (larger than max_msg, or
 * the worker of their Call-ID already has spread_max_bytes waiting);
 * framing_errors streams closed for bad or oversized framing. */
struct sip_tp_stats {
    uint64_t rx_msgs, tx_msgs, rx_bytes, tx_bytes;
    uint64_t conns_open, conns_refused, conns_idle_closed, framing_errors;
    uint64_t conns_current, rx_dropped, conn_errors;
    uint64_t acl_denied; /* datagrams dropped, connections closed by security groups */
    uint64_t local_msgs; /* UDP messages to our own listeners, handed over in-process */
    uint64_t spread_out; /* UDP requests handed to the worker of their Call-ID */
    uint64_t stun_answered; /* STUN Binding requests answered (RFC 5626 keep-alives) */
};
void ims_sip_tp_stats(const struct sip_tp *tp, struct sip_tp_stats *out);

#endif
