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
 * idle timeout; hitting one closes or refuses the connection, never grows. */
#ifndef IMS_NET_TRANSPORT_H
#define IMS_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/str.h"

struct ims_loop;
struct sip_tp;
struct sip_tp_shared;

enum sip_proto { SIP_PROTO_NONE = 0, SIP_PROTO_UDP, SIP_PROTO_TCP, SIP_PROTO_TLS };

struct ims_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "1.2.3.4:5060", "[::1]:5061", "host" (numeric only; port 0 if absent). */
int ims_addr_parse(ims_str s, uint16_t default_port, struct ims_addr *out);
/* "1.2.3.4:5060" / "[::1]:5060" into buf; returns buf. */
const char *ims_addr_str(const struct ims_addr *a, char *buf, size_t bufsz);
/* Numeric host without brackets and port, for Via received=. */
const char *ims_addr_host(const struct ims_addr *a, char *buf, size_t bufsz);
uint16_t ims_addr_port(const struct ims_addr *a);
bool ims_addr_equal(const struct ims_addr *a, const struct ims_addr *b);
const char *ims_proto_name(enum sip_proto p); /* "UDP" "TCP" "TLS" */
int ims_proto_parse(ims_str s, enum sip_proto *out); /* case-insensitive */

/* A received message, valid only during the rx callback. */
struct sip_tp_rx {
    const char *buf;
    size_t len;
    enum sip_proto proto;
    struct ims_addr src;
    struct ims_addr local;   /* the listener's address */
    uint64_t conn_id;        /* 0 for UDP */
    const char *tls_peer_cn; /* verified client certificate subject CN, or NULL */
};

typedef void (*sip_tp_rx_cb)(void *ctx, const struct sip_tp_rx *rx);

struct sip_listen_cfg {
    enum sip_proto proto;
    struct ims_addr addr;
};

struct sip_tp_cfg {
    const struct sip_listen_cfg *listen;
    size_t nlisten;
    size_t max_msg;           /* bytes, default SIP_MAX_MSG_DEFAULT */
    size_t max_conns;         /* per worker */
    size_t max_conns_per_src; /* per worker, per source IP */
    unsigned idle_timeout_ms; /* TCP/TLS connections with no traffic */
    /* TLS (only when a TLS listener or outgoing TLS is used) */
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
    bool tls_verify_client;   /* require and verify client certificates */
    bool tls_verify_server;   /* verify servers we connect to against ca */
    const char *tls_ciphers;  /* TLS 1.2 cipher list; NULL = built-in modern list */
};

/* State shared by every worker's transport (created once, before workers):
 * the OpenSSL contexts and the connection directory used for reuse.
 * 0, IMS_EINVAL (bad TLS files: *err says which), IMS_ENOMEM. */
int ims_sip_tp_shared_new(const struct sip_tp_cfg *cfg, struct sip_tp_shared **out,
                          char *err, size_t errsz);
void ims_sip_tp_shared_free(struct sip_tp_shared *sh);

/* Creates worker `worker_idx`'s transport on `loop` and opens its listeners
 * (SO_REUSEPORT, so every worker binds the same addresses).
 * 0, IMS_EIO (bind failed: *err names the address), IMS_ENOMEM. */
int ims_sip_tp_new(struct ims_loop *loop, unsigned worker_idx, struct sip_tp_shared *sh,
                   const struct sip_tp_cfg *cfg, sip_tp_rx_cb cb, void *ctx,
                   struct sip_tp **out, char *err, size_t errsz);
/* Closes everything; call on the owning thread after the loop stopped. */
void ims_sip_tp_free(struct sip_tp *tp);

/* Sends one message.  UDP: from the listener socket bound to the same family
 * (a specific `local` if given).  TCP/TLS: on conn_id when it is still open,
 * else on an open connection to dst, else opens one (non-blocking; the bytes
 * are queued until connected).  Copies buf.
 * 0, IMS_ENOENT (no listener/route for that family), IMS_ELIMIT (queue or
 * connection cap), IMS_ENOMEM, IMS_EIO. */
int ims_sip_tp_send(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                    uint64_t conn_id, const char *buf, size_t len);

/* The address a listener of this proto/family is bound to (for Via and
 * Record-Route).  0 or IMS_ENOENT. */
int ims_sip_tp_local(const struct sip_tp *tp, enum sip_proto proto, int family,
                     struct ims_addr *out);

/* Counters for /metrics and tests. */
struct sip_tp_stats {
    uint64_t rx_msgs, tx_msgs, rx_bytes, tx_bytes;
    uint64_t conns_open, conns_refused, conns_idle_closed, framing_errors;
};
void ims_sip_tp_stats(const struct sip_tp *tp, struct sip_tp_stats *out);

#endif
