/* tcp.c - stream connections for SIP over TCP and TLS (RFC 3261 §18.3):
 * accept, outgoing connect, framing, the write queue, idle timeouts.
 *
 * TCP and TLS share one connection type; what differs sits behind struct
 * conn_ops (ims_tcp_ops here, ims_tls_ops in tls.c), after Redis'
 * ConnectionType.  A would-block from either is IMS_EAGAIN, and the op
 * records which readiness it waits for; conn_update_interest() turns the
 * connection state plus that into epoll interest.
 *
 * Every connection keeps its timer armed for its whole life (idle,
 * connect or handshake timeout), so the close path can always re-arm it to
 * fire next turn without hitting the loop's timer cap: ims_conn_close()
 * only hides the connection and the timer frees it, which makes a close
 * from inside an rx callback (or a send from one) safe. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/net_int.h"
#include "sip/msg.h"

static void conn_io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events);
static void conn_timer_cb(struct ims_loop *loop, struct ims_timer *t);

/* ---- plain TCP ops ---- */

static ssize_t tcp_read(struct sip_conn *c, char *buf, size_t len)
{
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return IMS_EAGAIN;
    return IMS_EIO;
}

static ssize_t tcp_write(struct sip_conn *c, const char *buf, size_t len)
{
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n > 0 ? n : IMS_EAGAIN;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return IMS_EAGAIN;
    return IMS_EIO;
}

static int tcp_set_interest(struct sip_conn *c, unsigned want)
{
    return ims_io_set(c->tp->loop, &c->io, want);
}

static bool tcp_pending(const struct sip_conn *c)
{
    return false;
}

static void tcp_close(struct sip_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

const struct conn_ops ims_tcp_ops = {
    .name = "tcp",
    .handshake = NULL,
    .read = tcp_read,
    .write = tcp_write,
    .set_interest = tcp_set_interest,
    .pending = tcp_pending,
    .close = tcp_close,
};

/* ---- lifetime ---- */

static void log_peer(struct sip_conn *c, const char *event, const char *detail)
{
    unsigned sup;
    if (ims_tp_log_ok(c->tp, &sup)) {
        char as[IMS_ADDR_STRLEN];
        LOG_W("net", "event=%s proto=%s peer=%s conn=%llx detail=%s suppressed=%u", event,
              ims_proto_name(c->proto), ims_addr_str(&c->peer, as, sizeof(as)),
              (unsigned long long)c->id, detail, sup);
    }
}

static int conn_new(struct sip_tp *tp, int fd, enum sip_proto proto, const struct ims_addr *peer,
                    const struct ims_addr *local, bool accepted, struct sip_conn **out)
{
    int rc;
    struct sip_conn *c = ims_calloc(1, sizeof(*c));
    if (!c)
        return IMS_ENOMEM;
    c->tp = tp;
    c->fd = fd;
    c->proto = proto;
    c->peer = *peer;
    c->local = *local;
    c->accepted = accepted;
    c->ops = proto == SIP_PROTO_TLS ? &ims_tls_ops : &ims_tcp_ops;
    c->state = accepted ? (proto == SIP_PROTO_TLS ? CONN_HANDSHAKE : CONN_OPEN) : CONN_CONNECTING;
    c->last_active_ms = ims_loop_now(tp->loop);
    ims_io_init(&c->io, fd, conn_io_cb, c);
    ims_timer_init(&c->timer, conn_timer_cb, c);
    rc = ims_timer_start(tp->loop, &c->timer, tp->idle_timeout_ms);
    if (rc)
        goto out_free;
    if (proto == SIP_PROTO_TLS) {
        rc = ims_tls_attach_shared(c, tp->sh, accepted);
        if (rc)
            goto out_stop_timer;
    }
    rc = ims_tp_conn_link(tp, c);
    if (rc)
        goto out_free_ssl;
    *out = c;
    return 0;

out_free_ssl:
    SSL_free(c->ssl);
out_stop_timer:
    ims_timer_stop(tp->loop, &c->timer);
out_free:
    ims_free(c);
    return rc;
}

void ims_conn_destroy(struct sip_conn *c)
{
    struct sip_tp *tp = c->tp;
    ims_io_stop(tp->loop, &c->io);
    ims_timer_stop(tp->loop, &c->timer);
    if (c->state != CONN_CLOSING)
        ims_tp_conn_hide(tp, c);
    c->ops->close(c);
    ims_tp_conn_release(tp, c);
    ims_free(c->rbuf);
    ims_free(c->wbuf);
    ims_free(c);
}

void ims_conn_close(struct sip_conn *c, const char *reason)
{
    struct sip_tp *tp = c->tp;
    if (c->state == CONN_CLOSING)
        return;
    char as[IMS_ADDR_STRLEN];
    LOG_D("net", "event=conn_close proto=%s peer=%s conn=%llx reason=%s",
          ims_proto_name(c->proto), ims_addr_str(&c->peer, as, sizeof(as)),
          (unsigned long long)c->id, reason);
    c->state = CONN_CLOSING;
    ims_io_stop(tp->loop, &c->io);
    ims_tp_conn_hide(tp, c);
    /* The timer is armed (see the top of this file), so re-arming it
     * cannot hit the timer cap. */
    if (ims_timer_start(tp->loop, &c->timer, 0) != 0)
        LOG_E("net", "event=conn_close_timer_failed conn=%llx", (unsigned long long)c->id);
}

static void conn_timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct sip_conn *c = t->data;
    struct sip_tp *tp = c->tp;
    if (c->state == CONN_CLOSING) {
        ims_conn_destroy(c);
        return;
    }
    uint64_t idle = ims_loop_now(loop) - c->last_active_ms;
    if (idle < tp->idle_timeout_ms) {
        /* Traffic only stamps last_active_ms; the heap is touched here,
         * once per timeout period, not once per message. */
        if (ims_timer_start(loop, t, tp->idle_timeout_ms - idle) != 0)
            ims_conn_destroy(c);
        return;
    }
    if (c->state == CONN_OPEN) {
        char as[IMS_ADDR_STRLEN];
        tp->stats.conns_idle_closed++;
        LOG_I("net", "event=conn_idle_closed proto=%s peer=%s conn=%llx idle_ms=%llu",
              ims_proto_name(c->proto), ims_addr_str(&c->peer, as, sizeof(as)),
              (unsigned long long)c->id, (unsigned long long)idle);
    } else {
        tp->stats.conn_errors++;
        log_peer(c, "conn_timeout", c->state == CONN_CONNECTING ? "connect" : "tls_handshake");
    }
    ims_conn_destroy(c);
}

static void conn_update_interest(struct sip_conn *c)
{
    unsigned want;
    switch (c->state) {
    case CONN_CONNECTING:
        want = IMS_IO_WRITE;
        break;
    case CONN_HANDSHAKE:
        want = IMS_IO_READ; /* the TLS op adds WRITE when it waits for it */
        break;
    case CONN_OPEN:
        want = IMS_IO_READ | (c->wlen ? IMS_IO_WRITE : 0);
        break;
    default:
        return;
    }
    if (c->ops->set_interest(c, want) != 0) {
        c->tp->stats.conn_errors++;
        ims_conn_close(c, "epoll");
    }
}

/* ---- writing ---- */

/* Makes room for n more queued bytes, whole or not at all. */
static int wbuf_reserve(struct sip_conn *c, size_t n)
{
    size_t need = c->wlen + n;
    if (c->whead + need <= c->walloc)
        return 0;
    if (need > c->walloc) {
        size_t a = c->walloc ? c->walloc * 2 : 4096;
        if (a < need)
            a = need;
        if (a > c->tp->wqueue_max)
            a = c->tp->wqueue_max;
        char *p = ims_realloc(c->wbuf, a);
        if (!p)
            return IMS_ENOMEM;
        c->wbuf = p;
        c->walloc = a;
    }
    if (c->whead) {
        memmove(c->wbuf, c->wbuf + c->whead, c->wlen);
        c->whead = 0;
    }
    return 0;
}

/* Writes what the socket takes; 0, or IMS_EIO after closing c. */
static int conn_flush(struct sip_conn *c)
{
    while (c->wlen) {
        ssize_t n = c->ops->write(c, c->wbuf + c->whead, c->wlen);
        if (n == IMS_EAGAIN)
            break;
        if (n < 0) {
            c->tp->stats.conn_errors++;
            log_peer(c, "conn_write_failed", ims_strerror((int)n));
            ims_conn_close(c, "write_error");
            return IMS_EIO;
        }
        c->whead += (size_t)n;
        c->wlen -= (size_t)n;
        c->last_active_ms = ims_loop_now(c->tp->loop);
    }
    if (c->wlen == 0) {
        c->whead = 0;
        if (c->walloc > TP_WBUF_KEEP) {
            ims_free(c->wbuf);
            c->wbuf = NULL;
            c->walloc = 0;
        }
    }
    return 0;
}

static int conn_write(struct sip_conn *c, const char *buf, size_t len)
{
    if (c->state == CONN_CLOSING)
        return IMS_EIO;
    if (len > c->tp->wqueue_max - c->wlen) {
        log_peer(c, "conn_wqueue_full", "send refused");
        return IMS_ELIMIT;
    }
    if (wbuf_reserve(c, len) != 0)
        return IMS_ENOMEM;
    size_t off = 0;
    if (c->state == CONN_OPEN && c->wlen == 0) {
        /* Nothing queued: try the socket first, queue the rest. */
        while (off < len) {
            ssize_t n = c->ops->write(c, buf + off, len - off);
            if (n == IMS_EAGAIN)
                break;
            if (n < 0) {
                c->tp->stats.conn_errors++;
                log_peer(c, "conn_write_failed", ims_strerror((int)n));
                ims_conn_close(c, "write_error");
                return IMS_EIO;
            }
            off += (size_t)n;
        }
    }
    if (off < len) {
        memcpy(c->wbuf + c->whead + c->wlen, buf + off, len - off);
        c->wlen += len - off;
    }
    c->last_active_ms = ims_loop_now(c->tp->loop);
    conn_update_interest(c);
    return 0;
}

int ims_conn_send(struct sip_conn *c, const char *buf, size_t len)
{
    int rc = conn_write(c, buf, len);
    if (rc == 0) {
        c->tp->stats.tx_msgs++;
        c->tp->stats.tx_bytes += len;
    }
    return rc;
}

/* ---- reading and framing ---- */

/* RFC 5626 §4.4.1: a "\r\n\r\n" ping is answered with a "\r\n" pong.  The
 * CR/LF bytes skipped before a message are fed here, across reads. */
static void crlf_scan(struct sip_conn *c, const char *p, size_t n)
{
    static const char ping[4] = { '\r', '\n', '\r', '\n' };
    for (size_t i = 0; i < n && c->state == CONN_OPEN; i++) {
        if (p[i] == ping[c->crlf_state])
            c->crlf_state++;
        else
            c->crlf_state = p[i] == '\r' ? 1 : 0;
        if (c->crlf_state == 4) {
            c->crlf_state = 0;
            (void)conn_write(c, "\r\n", 2);
        }
    }
}

static void framing_error(struct sip_conn *c, const char *detail)
{
    char bytes[420];
    unsigned sup;
    c->tp->stats.framing_errors++;
    if (ims_tp_log_ok(c->tp, &sup)) {
        char as[IMS_ADDR_STRLEN];
        size_t n = c->rlen - c->rpos;
        LOG_W("net", "event=framing_error proto=%s peer=%s conn=%llx detail=%s bytes=\"%s\" "
                     "suppressed=%u",
              ims_proto_name(c->proto), ims_addr_str(&c->peer, as, sizeof(as)),
              (unsigned long long)c->id, detail,
              ims_log_peer_bytes(c->rbuf + c->rpos, n, bytes, sizeof(bytes)), sup);
    }
    ims_conn_close(c, "framing");
}

static void conn_frame(struct sip_conn *c)
{
    struct sip_tp *tp = c->tp;
    while (c->state == CONN_OPEN && c->rpos < c->rlen) {
        const char *p = c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos;
        size_t skip = 0;
        int r = ims_sip_frame(p, avail, tp->max_msg, &skip);
        if (skip > avail)
            skip = avail;
        if (skip) {
            crlf_scan(c, p, skip);
            c->rpos += skip;
            p += skip;
            avail -= skip;
            if (c->state != CONN_OPEN)
                return;
        }
        if (r == IMS_EAGAIN)
            return;
        if (r <= 0 || (size_t)r > avail) {
            framing_error(c, r == IMS_EPROTO ? "bad_or_too_big" : "frame");
            return;
        }
        c->crlf_state = 0;
        /* The callback may send, or close c (which only hides it): rbuf
         * stays valid until c is freed on a later turn. */
        ims_tp_deliver(tp, p, (size_t)r, c->proto, &c->peer, &c->local, c->id,
                       c->peer_cn[0] ? c->peer_cn : NULL);
        c->rpos += (size_t)r;
    }
}

static void conn_read(struct sip_conn *c)
{
    struct sip_tp *tp = c->tp;
    /* Bounded for fairness; epoll is level-triggered, so bytes left in the
     * socket wake us again.  Bytes TLS already pulled out of the socket are
     * invisible to epoll: those are always drained (one record at most,
     * since read-ahead is off). */
    for (int i = 0; c->state == CONN_OPEN && (i < TP_READ_CALLS || c->ops->pending(c)); i++) {
        if (c->rpos) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        if (c->rlen == c->rcap) {
            if (c->rcap >= tp->max_msg) {
                /* A partial message fills max_msg bytes: it is too big. */
                framing_error(c, "too_big");
                return;
            }
            size_t a = c->rcap ? c->rcap * 2 : TP_RBUF_MIN;
            if (a > tp->max_msg)
                a = tp->max_msg;
            char *p = ims_realloc(c->rbuf, a);
            if (!p) {
                tp->stats.conn_errors++;
                log_peer(c, "conn_read_failed", "no memory");
                ims_conn_close(c, "nomem");
                return;
            }
            c->rbuf = p;
            c->rcap = a;
        }
        ssize_t n = c->ops->read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n == IMS_EAGAIN)
            break;
        if (n == 0) {
            ims_conn_close(c, "eof");
            return;
        }
        if (n < 0) {
            tp->stats.conn_errors++;
            log_peer(c, "conn_read_failed", ims_strerror((int)n));
            ims_conn_close(c, "read_error");
            return;
        }
        c->rlen += (size_t)n;
        tp->stats.rx_bytes += (uint64_t)n;
        c->last_active_ms = ims_loop_now(tp->loop);
        conn_frame(c);
    }
    if (c->state == CONN_OPEN && c->rpos == c->rlen && c->rcap > TP_RBUF_MIN) {
        /* Idle connections should not pin max_msg bytes each. */
        ims_free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = c->rlen = c->rpos = 0;
    }
}

static void conn_io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct sip_conn *c = io->data;
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err) {
            c->tp->stats.conn_errors++;
            log_peer(c, "conn_connect_failed", strerror(err));
            ims_conn_close(c, "connect");
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0)
            (void)ims_addr_set(&c->local, (struct sockaddr *)&ss, sl);
        c->state = c->ssl ? CONN_HANDSHAKE : CONN_OPEN;
        c->last_active_ms = ims_loop_now(loop);
        events = IMS_IO_READ | IMS_IO_WRITE;
    }
    if (c->state == CONN_HANDSHAKE) {
        int rc = c->ops->handshake(c);
        if (rc == IMS_EAGAIN) {
            conn_update_interest(c);
            return;
        }
        if (rc != 0) {
            c->tp->stats.conn_errors++;
            log_peer(c, "tls_handshake_failed", ims_strerror(rc));
            ims_conn_close(c, "handshake");
            return;
        }
        c->state = CONN_OPEN;
        c->last_active_ms = ims_loop_now(loop);
        events = IMS_IO_READ | IMS_IO_WRITE;
    }
    if (c->state != CONN_OPEN)
        return;
    if ((events & IMS_IO_READ) || ((events & IMS_IO_WRITE) && c->tls_want_write))
        conn_read(c);
    if (c->state == CONN_OPEN && c->wlen &&
        ((events & IMS_IO_WRITE) || ((events & IMS_IO_READ) && c->tls_want_read))) {
        if (conn_flush(c) != 0)
            return;
    }
    if (c->state == CONN_OPEN)
        conn_update_interest(c);
}

/* ---- accept and connect ---- */

static void set_nodelay(int fd)
{
    int one = 1;
    /* SIP messages are whole writes: no reason to wait for more. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Security groups (src/acl) at accept: before a slot is taken and, for TLS,
 * before the handshake costs us anything. */
static bool acl_admit(const struct sip_listener *l, const struct ims_addr *peer)
{
    enum ims_acl_listener kind = l->proto == SIP_PROTO_TLS ? IMS_ACL_SIP_TLS : IMS_ACL_SIP_TCP;
    return ims_acl_admit(kind, ims_addr_port(&l->addr), (const struct sockaddr *)&peer->ss);
}

/* A reset rather than an orderly close: the peer sees a refusal at once. */
static void refuse_rst(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

void ims_tcp_accept_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct sip_listener *l = io->data;
    struct sip_tp *tp = l->tp;
    for (int i = 0; i < TP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                unsigned sup;
                /* EMFILE and friends: the connection stays in the backlog */
                if (ims_tp_log_ok(tp, &sup))
                    LOG_W("net", "event=accept_failed worker=%u errno=%d suppressed=%u", tp->idx,
                          errno, sup);
            }
            return;
        }
        struct ims_addr peer;
        char as[IMS_ADDR_STRLEN];
        const char *why = NULL;
        if (ims_addr_set(&peer, (struct sockaddr *)&ss, sl) == 0 && !acl_admit(l, &peer)) {
            tp->stats.acl_denied++;
            refuse_rst(fd);
            continue;
        }
        if (ims_addr_set(&peer, (struct sockaddr *)&ss, sl) != 0)
            why = "bad_address";
        else if (tp->nfree == 0)
            why = "max_conns";
        else if (ims_tp_count_src(tp, &peer) >= tp->max_conns_per_src)
            why = "max_conns_per_src";
        if (why) {
            unsigned sup;
            tp->stats.conns_refused++;
            if (ims_tp_log_ok(tp, &sup))
                LOG_W("net", "event=conn_refused proto=%s src=%s reason=%s suppressed=%u",
                      ims_proto_name(l->proto), ims_addr_str(&peer, as, sizeof(as)), why, sup);
            close(fd);
            continue;
        }
        set_nodelay(fd);
        struct sip_conn *c;
        int rc = conn_new(tp, fd, l->proto, &peer, &l->addr, true, &c);
        if (rc) {
            unsigned sup;
            tp->stats.conns_refused++;
            if (ims_tp_log_ok(tp, &sup))
                LOG_W("net", "event=conn_refused proto=%s src=%s reason=%s suppressed=%u",
                      ims_proto_name(l->proto), ims_addr_str(&peer, as, sizeof(as)),
                      ims_strerror(rc), sup);
            close(fd);
            continue;
        }
        LOG_D("net", "event=conn_accepted proto=%s src=%s conn=%llx", ims_proto_name(l->proto),
              ims_addr_str(&peer, as, sizeof(as)), (unsigned long long)c->id);
        conn_update_interest(c);
    }
}

int ims_tcp_connect(struct sip_tp *tp, enum sip_proto proto, const struct ims_addr *dst,
                    struct sip_conn **out)
{
    char as[IMS_ADDR_STRLEN];
    int fam = ims_addr_family(dst);
    if (fam == AF_UNSPEC)
        return IMS_EINVAL;
    if (tp->nfree == 0)
        return IMS_ELIMIT;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LOG_W("net", "event=socket_failed errno=%d", errno);
        return IMS_EIO;
    }
    set_nodelay(fd);
    /* Non-blocking: even loopback usually says EINPROGRESS.  Either way the
     * conn starts in CONNECTING and learns the outcome from writability. */
    if (connect(fd, (const struct sockaddr *)&dst->ss, dst->len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        unsigned sup;
        if (ims_tp_log_ok(tp, &sup))
            LOG_W("net", "event=connect_failed proto=%s dst=%s errno=%d suppressed=%u",
                  ims_proto_name(proto), ims_addr_str(dst, as, sizeof(as)), e, sup);
        close(fd);
        return IMS_EIO;
    }
    struct ims_addr local;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&local, 0, sizeof(local));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        (void)ims_addr_set(&local, (struct sockaddr *)&ss, sl);
    struct sip_conn *c;
    int rc = conn_new(tp, fd, proto, dst, &local, false, &c);
    if (rc) {
        close(fd);
        return rc;
    }
    conn_update_interest(c);
    if (c->state == CONN_CLOSING)
        return IMS_EIO;
    LOG_D("net", "event=conn_connecting proto=%s dst=%s conn=%llx", ims_proto_name(proto),
          ims_addr_str(dst, as, sizeof(as)), (unsigned long long)c->id);
    *out = c;
    return 0;
}
