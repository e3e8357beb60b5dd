/* tp.c - the per-worker transport: listeners, the connection tables, the
 * shared connection directory and the send dispatch (RFC 3261 §18). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/net_int.h"
#include "sip/msg.h"

/* ---- small helpers ---- */

static uint64_t seed64(void)
{
    uint64_t s = 0;
    /* Hash seeds keep peers from choosing colliding addresses; getrandom()
     * only fails before the pool is ready, when the pointer mix will do. */
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
        s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15u;
    return s;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n && p < ((size_t)1 << 30))
        p <<= 1;
    return p;
}

uint64_t ims_tp_hash_addr(uint64_t seed, const struct ims_addr *a, bool with_port)
{
    /* FNV-1a over the IP bytes (and port), seeded. */
    uint64_t h = 0xcbf29ce484222325u ^ seed;
    const unsigned char *p = NULL;
    size_t n = 0;
    if (ims_addr_family(a) == AF_INET) {
        p = (const unsigned char *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
        n = 4;
    } else if (ims_addr_family(a) == AF_INET6) {
        p = (const unsigned char *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    if (with_port) {
        uint16_t port = ims_addr_port(a);
        h = (h ^ (port & 0xff)) * 0x100000001b3u;
        h = (h ^ (port >> 8)) * 0x100000001b3u;
    }
    return h ^ (h >> 29);
}

bool ims_tp_log_ok(struct sip_tp *tp, unsigned *suppressed)
{
    /* Peer-caused warnings: at most TP_LOG_BURST per second per worker, and
     * the next allowed line says how many were dropped. */
    uint64_t now = ims_loop_now(tp->loop);
    if (now - tp->log_window_ms >= 1000) {
        tp->log_window_ms = now;
        tp->log_count = 0;
    }
    if (tp->log_count >= TP_LOG_BURST) {
        tp->log_suppressed++;
        return false;
    }
    tp->log_count++;
    *suppressed = tp->log_suppressed;
    tp->log_suppressed = 0;
    return true;
}

void ims_tp_deliver(struct sip_tp *tp, const char *buf, size_t len, enum sip_proto proto,
                    const struct ims_addr *src, const struct ims_addr *local, uint64_t conn_id,
                    const char *cn)
{
    struct sip_tp_rx rx = {
        .buf = buf,
        .len = len,
        .proto = proto,
        .src = *src,
        .local = *local,
        .conn_id = conn_id,
        .tls_peer_cn = cn,
        .queue_ms = proto == SIP_PROTO_UDP ? tp->udp_queue_ms : -1,
        .from_self = proto == SIP_PROTO_UDP && tp->udp_from_self,
    };
    tp->stats.rx_msgs++;
    tp->cb(tp->ctx, &rx);
}

/* ---- connection tables ---- */

struct sip_conn *ims_tp_conn_by_id(struct sip_tp *tp, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & CONN_ID_SLOT_MASK);
    if ((id >> CONN_ID_WORKER_SHIFT) != tp->idx || slot >= tp->max_conns)
        return NULL;
    struct sip_conn *c = tp->slots[slot];
    return c && c->id == id && c->state != CONN_CLOSING ? c : NULL;
}

struct sip_conn *ims_tp_conn_by_peer(struct sip_tp *tp, enum sip_proto proto,
                                     const struct ims_addr *peer)
{
    size_t b = ims_tp_hash_addr(tp->ip_seed, peer, false) & tp->ip_mask;
    for (struct sip_conn *c = tp->by_ip[b]; c; c = c->ip_next) {
        if (c->proto == proto && ims_addr_equal(&c->peer, peer))
            return c;
    }
    return NULL;
}

size_t ims_tp_count_src(struct sip_tp *tp, const struct ims_addr *peer)
{
    size_t n = 0;
    size_t b = ims_tp_hash_addr(tp->ip_seed, peer, false) & tp->ip_mask;
    for (struct sip_conn *c = tp->by_ip[b]; c; c = c->ip_next) {
        if (c->accepted && ims_addr_same_ip(&c->peer, peer))
            n++;
    }
    return n;
}

/* Takes a slot, assigns the id, links the conn into the per-IP hash and the
 * shared directory.  0 or IMS_ELIMIT (max_conns). */
int ims_tp_conn_link(struct sip_tp *tp, struct sip_conn *c)
{
    if (tp->nfree == 0)
        return IMS_ELIMIT;
    uint32_t slot = tp->free_slots[--tp->nfree];
    uint32_t gen = ++tp->gens[slot];
    if (gen == 0) /* keep ids non-zero even for worker 0, slot 0 */
        gen = tp->gens[slot] = 1;
    c->slot = slot;
    c->id = ((uint64_t)tp->idx << CONN_ID_WORKER_SHIFT) | ((uint64_t)gen << CONN_ID_GEN_SHIFT) |
            slot;
    tp->slots[slot] = c;

    size_t b = ims_tp_hash_addr(tp->ip_seed, &c->peer, false) & tp->ip_mask;
    c->ip_next = tp->by_ip[b];
    tp->by_ip[b] = c;

    struct sip_tp_shared *sh = tp->sh;
    pthread_mutex_lock(&sh->lock);
    size_t d = ims_tp_hash_addr(sh->dir_seed, &c->peer, true) & sh->dir_mask;
    c->dir_next = sh->dir[d];
    sh->dir[d] = c;
    c->in_dir = true;
    pthread_mutex_unlock(&sh->lock);
    tp->stats.conns_open++;
    tp->stats.conns_current++;
    return 0;
}

/* First half of unlinking, at close: no lookup by peer finds the conn any
 * more (ims_tp_conn_by_id skips it by its state).  Idempotent. */
void ims_tp_conn_hide(struct sip_tp *tp, struct sip_conn *c)
{
    size_t b = ims_tp_hash_addr(tp->ip_seed, &c->peer, false) & tp->ip_mask;
    for (struct sip_conn **pp = &tp->by_ip[b]; *pp; pp = &(*pp)->ip_next) {
        if (*pp == c) {
            *pp = c->ip_next;
            break;
        }
    }
    struct sip_tp_shared *sh = tp->sh;
    pthread_mutex_lock(&sh->lock);
    if (c->in_dir) {
        size_t d = ims_tp_hash_addr(sh->dir_seed, &c->peer, true) & sh->dir_mask;
        for (struct sip_conn **pp = &sh->dir[d]; *pp; pp = &(*pp)->dir_next) {
            if (*pp == c) {
                *pp = c->dir_next;
                break;
            }
        }
        c->in_dir = false;
    }
    pthread_mutex_unlock(&sh->lock);
}

/* Second half, when the conn is freed: its slot becomes reusable. */
void ims_tp_conn_release(struct sip_tp *tp, struct sip_conn *c)
{
    if (tp->slots[c->slot] != c)
        return;
    tp->slots[c->slot] = NULL;
    tp->free_slots[tp->nfree++] = c->slot;
    tp->stats.conns_current--;
}

/* conn_id of another worker's open conn to (proto, peer), or 0. */
static uint64_t dir_lookup_other(struct sip_tp *tp, enum sip_proto proto,
                                 const struct ims_addr *peer)
{
    uint64_t id = 0;
    struct sip_tp_shared *sh = tp->sh;
    pthread_mutex_lock(&sh->lock);
    size_t d = ims_tp_hash_addr(sh->dir_seed, peer, true) & sh->dir_mask;
    for (const struct sip_conn *c = sh->dir[d]; c; c = c->dir_next) {
        /* c->tp, c->proto and c->peer are fixed while c is in the directory */
        if (c->tp != tp && c->proto == proto && ims_addr_equal(&c->peer, peer)) {
            id = c->id;
            break;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return id;
}

/* ---- shared state ---- */

int ims_sip_tp_shared_new(const struct sip_tp_cfg *cfg, struct sip_tp_shared **out, char *err,
                          size_t errsz)
{
    int rc = IMS_ENOMEM;
    bool tls_listener = false;
    snprintf(err, errsz, "out of memory");
    for (size_t i = 0; i < cfg->nlisten; i++) {
        enum sip_proto p = cfg->listen[i].proto;
        if (p != SIP_PROTO_UDP && p != SIP_PROTO_TCP && p != SIP_PROTO_TLS) {
            snprintf(err, errsz, "listen[%zu]: bad transport", i);
            return IMS_EINVAL;
        }
        if (ims_addr_family(&cfg->listen[i].addr) == AF_UNSPEC) {
            snprintf(err, errsz, "listen[%zu]: bad address", i);
            return IMS_EINVAL;
        }
        if (p == SIP_PROTO_TLS)
            tls_listener = true;
    }
    if (cfg->max_conns >= TP_MAX_SLOTS) {
        snprintf(err, errsz, "max_conns: at most %u", TP_MAX_SLOTS - 1);
        return IMS_EINVAL;
    }
    struct sip_tp_shared *sh = ims_calloc(1, sizeof(*sh));
    if (!sh)
        return IMS_ENOMEM;
    sh->nlisten = cfg->nlisten;
    sh->listen = ims_calloc(cfg->nlisten, sizeof(*sh->listen));
    sh->bound = ims_calloc(cfg->nlisten, sizeof(*sh->bound));
    sh->bound_set = ims_calloc(cfg->nlisten, sizeof(*sh->bound_set));
    size_t max_conns = cfg->max_conns ? cfg->max_conns : SIP_TP_DEFAULT_MAX_CONNS;
    size_t nb = pow2_at_least(max_conns * 2);
    sh->dir = ims_calloc(nb, sizeof(*sh->dir));
    if (!sh->listen || !sh->bound || !sh->bound_set || !sh->dir)
        goto out_free;
    sh->dir_mask = nb - 1;
    sh->dir_seed = seed64();
    if (cfg->nlisten)
        memcpy(sh->listen, cfg->listen, cfg->nlisten * sizeof(*sh->listen));
    sh->spread_max = cfg->spread_max_bytes ? cfg->spread_max_bytes : SIP_TP_DEFAULT_SPREAD_MAX;
    for (size_t i = 0; i < SIP_TP_MAX_WORKERS; i++)
        atomic_init(&sh->spread_bytes[i], 0);
    sh->verify_client = cfg->tls_verify_client;
    sh->verify_server = cfg->tls_verify_server;
    pthread_mutex_init(&sh->ctx_lock, NULL);

    /* OpenSSL writes to sockets with write(2): a peer that went away must
     * give EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if (tls_listener) {
        rc = ims_tls_ctx_server(cfg, &sh->srv_ctx, err, errsz);
        if (rc)
            goto out_free;
    }
    rc = ims_tls_ctx_client(cfg, &sh->cli_ctx, err, errsz);
    if (rc)
        goto out_free_srv;
    if (pthread_mutex_init(&sh->lock, NULL) != 0) {
        rc = IMS_ENOMEM;
        goto out_free_cli;
    }
    *out = sh;
    if (errsz)
        err[0] = '\0';
    return 0;

out_free_cli:
    SSL_CTX_free(sh->cli_ctx);
out_free_srv:
    SSL_CTX_free(sh->srv_ctx);
out_free:
    ims_free(sh->dir);
    ims_free(sh->bound_set);
    ims_free(sh->bound);
    ims_free(sh->listen);
    ims_free(sh);
    return rc;
}

void ims_sip_tp_shared_free(struct sip_tp_shared *sh)
{
    if (!sh)
        return;
    SSL_CTX_free(sh->cli_ctx);
    SSL_CTX_free(sh->srv_ctx);
    pthread_mutex_destroy(&sh->ctx_lock);
    pthread_mutex_destroy(&sh->lock);
    ims_free(sh->dir);
    ims_free(sh->bound_set);
    ims_free(sh->bound);
    ims_free(sh->listen);
    ims_free(sh);
}

/* ---- listeners ---- */

static int open_listener(struct sip_tp *tp, size_t i, struct sip_listener *l, char *err,
                         size_t errsz)
{
    struct sip_tp_shared *sh = tp->sh;
    char as[IMS_ADDR_STRLEN];
    struct ims_addr addr = sh->listen[i].addr;
    int fam = ims_addr_family(&addr);
    bool stream = l->proto != SIP_PROTO_UDP;
    int one = 1;

    pthread_mutex_lock(&sh->lock);
    if (sh->bound_set[i])
        addr = sh->bound[i]; /* port 0: share the first worker's port */
    pthread_mutex_unlock(&sh->lock);

    l->fd = socket(fam, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        goto fail;
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    /* One socket per family: a v6 socket must not also take v4 traffic, or
     * the v4 listener on the same port could not bind. */
    if (fam == AF_INET6 && setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail;
    if (!stream) {
        /* kernel receive timestamps: how long a datagram queued (udp.c) */
        (void)setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
        /* behind a wildcard bind, each datagram's destination address: the
         * address its response must leave from (RFC 3581 §4, udp.c) */
        if (ims_addr_is_any(&addr) &&
            (fam == AF_INET ? setsockopt(l->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))
                            : setsockopt(l->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one,
                                         sizeof(one))) != 0)
            goto fail;
        /* Bursts of datagrams must not overflow the default receive buffer
         * (about 200 KiB) between two loop turns; the kernel caps the value
         * at net.core.rmem_max, so this is a request, not a failure. */
        int rcvbuf = 8 << 20;
        setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (bind(l->fd, (const struct sockaddr *)&addr.ss, addr.len) != 0)
        goto fail;
    if (stream && listen(l->fd, 1024) != 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        ims_addr_set(&l->addr, (struct sockaddr *)&ss, sl) != 0)
        goto fail;
    pthread_mutex_lock(&sh->lock);
    if (!sh->bound_set[i]) {
        sh->bound[i] = l->addr;
        sh->bound_set[i] = true;
    }
    pthread_mutex_unlock(&sh->lock);
    ims_io_init(&l->io, l->fd, stream ? ims_tcp_accept_cb : ims_udp_read_cb, l);
    if (ims_io_start(tp->loop, &l->io, IMS_IO_READ) != 0)
        goto fail;
    LOG_I("net", "event=listen worker=%u proto=%s addr=%s", tp->idx, ims_proto_name(l->proto),
          ims_addr_str(&l->addr, as, sizeof(as)));
    return 0;

fail:
    snprintf(err, errsz, "%s %s: %s", ims_proto_name(l->proto),
             ims_addr_str(&addr, as, sizeof(as)), strerror(errno));
    LOG_E("net", "event=listen_failed worker=%u proto=%s addr=%s errno=%d",
          tp->idx, ims_proto_name(l->proto), as, errno);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    return IMS_EIO;
}

/* ---- worker transport ---- */

int ims_sip_tp_new(struct ims_loop *loop, unsigned worker_idx, struct sip_tp_shared *sh,
                   const struct sip_tp_cfg *cfg, sip_tp_rx_cb cb, void *ctx, struct sip_tp **out,
                   char *err, size_t errsz)
{
    int rc = IMS_ENOMEM;
    snprintf(err, errsz, "out of memory");
    if (worker_idx >= SIP_TP_MAX_WORKERS || cfg->nlisten != sh->nlisten) {
        snprintf(err, errsz, "bad worker index or cfg");
        return IMS_EINVAL;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        if (cfg->listen[i].proto == SIP_PROTO_TLS && !sh->srv_ctx) {
            snprintf(err, errsz, "TLS listener without certificate");
            return IMS_EINVAL;
        }
    }
    struct sip_tp *tp = ims_calloc(1, sizeof(*tp));
    if (!tp)
        return IMS_ENOMEM;
    tp->loop = loop;
    tp->idx = worker_idx;
    tp->sh = sh;
    tp->cb = cb;
    tp->ctx = ctx;
    tp->max_msg = cfg->max_msg ? cfg->max_msg : SIP_MAX_MSG_DEFAULT;
    tp->max_conns = cfg->max_conns ? cfg->max_conns : SIP_TP_DEFAULT_MAX_CONNS;
    tp->max_conns_per_src =
        cfg->max_conns_per_src ? cfg->max_conns_per_src : SIP_TP_DEFAULT_MAX_CONNS_PER_SRC;
    tp->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : SIP_TP_DEFAULT_IDLE_MS;
    tp->wqueue_max = cfg->max_wqueue ? cfg->max_wqueue : SIP_TP_DEFAULT_WQUEUE;
    if (tp->wqueue_max < 2 * tp->max_msg)
        tp->wqueue_max = 2 * tp->max_msg;
    tp->ip_seed = seed64();
    tp->no_local_delivery = cfg->no_local_delivery;
    tp->spread_workers = cfg->spread_workers > SIP_TP_MAX_WORKERS ? SIP_TP_MAX_WORKERS
                                                                 : cfg->spread_workers;

    tp->slots = ims_calloc(tp->max_conns, sizeof(*tp->slots));
    tp->gens = ims_calloc(tp->max_conns, sizeof(*tp->gens));
    tp->free_slots = ims_calloc(tp->max_conns, sizeof(*tp->free_slots));
    size_t nb = pow2_at_least(tp->max_conns);
    tp->by_ip = ims_calloc(nb, sizeof(*tp->by_ip));
    tp->ls = ims_calloc(cfg->nlisten, sizeof(*tp->ls));
    bool any_udp = false;
    for (size_t i = 0; i < cfg->nlisten; i++)
        any_udp |= cfg->listen[i].proto == SIP_PROTO_UDP;
    if (any_udp)
        tp->udp_bufs = ims_alloc(TP_UDP_BATCH * (tp->max_msg + 1));
    if (tp->spread_workers > 1) {
        tp->spread_head = ims_calloc(tp->spread_workers, sizeof(*tp->spread_head));
        tp->spread_tail = ims_calloc(tp->spread_workers, sizeof(*tp->spread_tail));
    }
    if (!tp->slots || !tp->gens || !tp->free_slots || !tp->by_ip || !tp->ls ||
        (any_udp && !tp->udp_bufs) ||
        (tp->spread_workers > 1 && (!tp->spread_head || !tp->spread_tail)))
        goto out_free;
    tp->ip_mask = nb - 1;
    /* pop order: slot 0 first */
    for (size_t i = 0; i < tp->max_conns; i++)
        tp->free_slots[i] = (uint32_t)(tp->max_conns - 1 - i);
    tp->nfree = tp->max_conns;

    for (size_t i = 0; i < cfg->nlisten; i++) {
        struct sip_listener *l = &tp->ls[i];
        l->tp = tp;
        l->proto = cfg->listen[i].proto;
        rc = open_listener(tp, i, l, err, errsz);
        if (rc)
            goto out_close;
        tp->nls++;
    }

    pthread_mutex_lock(&sh->lock);
    if (sh->workers[worker_idx]) {
        pthread_mutex_unlock(&sh->lock);
        snprintf(err, errsz, "worker %u registered twice", worker_idx);
        rc = IMS_EINVAL;
        goto out_close;
    }
    sh->workers[worker_idx] = tp;
    pthread_mutex_unlock(&sh->lock);
    *out = tp;
    if (errsz)
        err[0] = '\0';
    return 0;

out_close:
    for (size_t i = 0; i < tp->nls; i++) {
        ims_io_stop(loop, &tp->ls[i].io);
        close(tp->ls[i].fd);
    }
out_free:
    ims_free(tp->spread_head);
    ims_free(tp->spread_tail);
    ims_free(tp->udp_bufs);
    ims_free(tp->ls);
    ims_free(tp->by_ip);
    ims_free(tp->free_slots);
    ims_free(tp->gens);
    ims_free(tp->slots);
    ims_free(tp);
    return rc;
}

void ims_sip_tp_free(struct sip_tp *tp)
{
    if (!tp)
        return;
    struct sip_tp_shared *sh = tp->sh;
    pthread_mutex_lock(&sh->lock);
    if (sh->workers[tp->idx] == tp)
        sh->workers[tp->idx] = NULL;
    pthread_mutex_unlock(&sh->lock);

    ims_udp_local_free(tp);
    /* Every conn, open or closing, keeps its slot until it is freed. */
    for (size_t i = 0; i < tp->max_conns; i++) {
        struct sip_conn *c = tp->slots[i];
        if (c)
            ims_conn_destroy(c);
    }
    for (size_t i = 0; i < tp->nls; i++) {
        ims_io_stop(tp->loop, &tp->ls[i].io);
        close(tp->ls[i].fd);
    }
    ims_free(tp->spread_head);
    ims_free(tp->spread_tail);
    ims_free(tp->udp_bufs);
    ims_free(tp->ls);
    ims_free(tp->by_ip);
    ims_free(tp->free_slots);
    ims_free(tp->gens);
    ims_free(tp->slots);
    ims_free(tp);
}

/* ---- sending ---- */

/* A send handed to the worker that owns the connection.  The owner is
 * looked up again when it runs, so a transport freed meanwhile drops it. */
struct post_send {
    struct sip_tp_shared *sh;
    unsigned worker;
    enum sip_proto proto;
    bool has_dst;
    struct ims_addr dst;
    uint64_t conn_id;
    size_t len;
    char data[];
};

static int send_local(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                      uint64_t conn_id, const char *buf, size_t len, bool posted);

static void post_send_run(struct ims_loop *loop, void *arg)
{
    struct post_send *ps = arg;
    pthread_mutex_lock(&ps->sh->lock);
    struct sip_tp *tp = ps->sh->workers[ps->worker];
    pthread_mutex_unlock(&ps->sh->lock);
    /* tp can only be freed on this thread, so it stays valid below. */
    if (tp && tp->loop == loop) {
        int rc = send_local(tp, ps->proto, ps->has_dst ? &ps->dst : NULL, ps->conn_id, ps->data,
                            ps->len, true);
        if (rc != 0) {
            char as[IMS_ADDR_STRLEN];
            LOG_W("net", "event=posted_send_failed worker=%u proto=%s dst=%s conn=%llx err=%s",
                  tp->idx, ims_proto_name(ps->proto),
                  ps->has_dst ? ims_addr_str(&ps->dst, as, sizeof(as)) : "-",
                  (unsigned long long)ps->conn_id, ims_strerror(rc));
        }
    }
    ims_free(ps);
}

static int post_send(struct sip_tp *tp, unsigned worker, enum sip_proto proto,
                     const struct ims_addr *dst, uint64_t conn_id, const char *buf, size_t len)
{
    if (worker >= SIP_TP_MAX_WORKERS)
        return IMS_ENOENT;
    struct post_send *ps = ims_alloc(sizeof(*ps) + len);
    if (!ps)
        return IMS_ENOMEM;
    ps->sh = tp->sh;
    ps->worker = worker;
    ps->proto = proto;
    ps->has_dst = dst != NULL;
    if (dst)
        ps->dst = *dst;
    ps->conn_id = conn_id;
    ps->len = len;
    memcpy(ps->data, buf, len);
    int rc = IMS_ENOENT;
    /* Posting under the lock keeps the target loop alive: a transport
     * unregisters (under this lock) before its loop may be freed. */
    pthread_mutex_lock(&tp->sh->lock);
    struct sip_tp *target = tp->sh->workers[worker];
    if (target)
        rc = ims_loop_post(target->loop, post_send_run, ps, ims_free);
    pthread_mutex_unlock(&tp->sh->lock);
    if (rc != 0)
        ims_free(ps);
    return rc;
}

static int send_local(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                      uint64_t conn_id, const char *buf, size_t len, bool posted)
{
    struct sip_conn *c = NULL;
    bool fresh = false;
    if (conn_id) {
        c = ims_tp_conn_by_id(tp, conn_id);
        if (c && c->proto != proto)
            c = NULL;
    }
    if (!c && dst) {
        /* RFC 3261 §18.2.2: a response goes back on the connection the
         * request came in on, or else on one to the same address. */
        c = ims_tp_conn_by_peer(tp, proto, dst);
        if (!c && !posted) {
            uint64_t id = dir_lookup_other(tp, proto, dst);
            if (id)
                return post_send(tp, (unsigned)(id >> CONN_ID_WORKER_SHIFT), proto, dst, id, buf,
                                 len);
        }
        if (!c) {
            int rc = ims_tcp_connect(tp, proto, dst, &c);
            if (rc)
                return rc;
            fresh = true;
        }
    }
    if (!c)
        return IMS_ENOENT;
    int rc = ims_conn_send(c, buf, len);
    if (rc && fresh && c->state != CONN_CLOSING)
        ims_conn_close(c, "first_send_failed");
    return rc;
}

void ims_sip_tp_src_of(const struct ims_addr *local, bool with_ip, struct sip_tp_src *out)
{
    memset(out, 0, sizeof(*out));
    out->port = ims_addr_port(local);
    if (!with_ip || ims_addr_is_any(local))
        return;
    if (local->ss.ss_family == AF_INET) {
        out->family = AF_INET;
        out->ip.v4 = ((const struct sockaddr_in *)&local->ss)->sin_addr;
    } else if (local->ss.ss_family == AF_INET6) {
        out->family = AF_INET6;
        out->ip.v6 = ((const struct sockaddr_in6 *)&local->ss)->sin6_addr;
    }
}

int ims_sip_tp_send(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                    uint64_t conn_id, const struct sip_tp_src *src, const char *buf,
                    size_t len)
{
    if (proto == SIP_PROTO_UDP)
        return dst ? ims_udp_send(tp, dst, src, buf, len) : IMS_ENOENT;
    if (proto != SIP_PROTO_TCP && proto != SIP_PROTO_TLS)
        return IMS_EINVAL;
    if (conn_id) {
        unsigned w = (unsigned)(conn_id >> CONN_ID_WORKER_SHIFT);
        if (w != tp->idx)
            return post_send(tp, w, proto, dst, conn_id, buf, len);
    }
    return send_local(tp, proto, dst, conn_id, buf, len, false);
}

bool ims_sip_tp_conn_open(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *peer)
{
    if (proto != SIP_PROTO_TCP && proto != SIP_PROTO_TLS)
        return false;
    return ims_tp_conn_by_peer(tp, proto, peer) || dir_lookup_other(tp, proto, peer) != 0;
}

int ims_sip_tp_local(const struct sip_tp *tp, enum sip_proto proto, int family,
                     struct ims_addr *out)
{
    for (size_t i = 0; i < tp->nls; i++) {
        const struct sip_listener *l = &tp->ls[i];
        if (l->proto == proto && ims_addr_family(&l->addr) == family) {
            *out = l->addr;
            return 0;
        }
    }
    return IMS_ENOENT;
}

void ims_sip_tp_stats(const struct sip_tp *tp, struct sip_tp_stats *out)
{
    *out = tp->stats;
}
