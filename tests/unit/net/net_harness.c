/* net_harness.c - see net_test.h.  Test-side memory uses malloc, not
 * ims_alloc, so that allocation-failure injection only hits the code under
 * test. */
#include "net_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- rxlog ---- */

void rxlog_init(struct rxlog *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
}

void rxlog_clear(struct rxlog *l)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++)
        free(l->recs[i].data);
    l->n = 0;
    pthread_mutex_unlock(&l->mu);
}

void rxlog_free(struct rxlog *l)
{
    rxlog_clear(l);
    free(l->recs);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

static void rxlog_add(struct rxlog *l, const struct rx_rec *r)
{
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct rx_rec *p = realloc(l->recs, cap * sizeof(*p));
        if (!p)
            abort();
        l->recs = p;
        l->cap = cap;
    }
    l->recs[l->n++] = *r;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

bool rxlog_wait(struct rxlog *l, size_t n, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (l->n < n) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool ok = l->n >= n;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

size_t rxlog_count(struct rxlog *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

struct rx_rec rxlog_get(struct rxlog *l, size_t i)
{
    pthread_mutex_lock(&l->mu);
    struct rx_rec r = l->recs[i];
    pthread_mutex_unlock(&l->mu);
    return r;
}

/* ---- workers ---- */

static void on_rx(void *ctx, const struct sip_tp_rx *rx)
{
    struct worker *w = ctx;
    struct rx_rec r;
    memset(&r, 0, sizeof(r));
    r.worker = w->idx;
    r.proto = rx->proto;
    r.src = rx->src;
    r.local = rx->local;
    r.conn_id = rx->conn_id;
    r.queue_ms = rx->queue_ms;
    r.from_self = rx->from_self;
    if (rx->tls_peer_cn) {
        r.has_cn = true;
        snprintf(r.cn, sizeof(r.cn), "%s", rx->tls_peer_cn);
    }
    r.len = rx->len;
    r.data = malloc(rx->len + 1);
    if (!r.data)
        abort();
    memcpy(r.data, rx->buf, rx->len);
    r.data[rx->len] = '\0';
    rxlog_add(w->log, &r); /* first: a test may wait for the echo, then look */
    if (w->echo) { /* a response: from where the message came in */
        struct sip_tp_src from;
        ims_sip_tp_src_of(&rx->local, true, &from);
        (void)ims_sip_tp_send(w->tp, rx->proto, &rx->src, rx->conn_id, &from, rx->buf, rx->len);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ims_loop_run(w->loop);
    return NULL;
}

int worker_start(struct worker *w, unsigned idx, struct sip_tp_shared *sh,
                 const struct sip_tp_cfg *cfg, struct rxlog *log, char *err, size_t errsz)
{
    memset(w, 0, sizeof(*w));
    w->idx = idx;
    w->log = log;
    int rc = ims_loop_new(4096, &w->loop);
    if (rc)
        return rc;
    rc = ims_sip_tp_new(w->loop, idx, sh, cfg, on_rx, w, &w->tp, err, errsz);
    if (rc) {
        ims_loop_free(w->loop);
        w->loop = NULL;
        return rc;
    }
    if (pthread_create(&w->th, NULL, worker_main, w) != 0)
        abort();
    w->running = true;
    return 0;
}

void workers_stop(struct worker *ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ws[i].running) {
            ims_loop_stop(ws[i].loop);
            pthread_join(ws[i].th, NULL);
            ws[i].running = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ims_sip_tp_free(ws[i].tp);
        ws[i].tp = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        ims_loop_free(ws[i].loop);
        ws[i].loop = NULL;
    }
}

struct call {
    struct worker *w;
    void (*fn)(struct worker *w, void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void call_run(struct ims_loop *loop, void *arg)
{
    struct call *c = arg;
    c->fn(c->w, c->arg);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg)
{
    struct call c = { .w = w, .fn = fn, .arg = arg, .done = false };
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    if (ims_loop_post(w->loop, call_run, &c, NULL) != 0)
        abort();
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
}

/* worker_hold: the held loop blocks in hold_run until worker_release. */
struct hold {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, released;
};

static void hold_run(struct ims_loop *loop, void *arg)
{
    struct hold *h = arg;
    pthread_mutex_lock(&h->mu);
    h->started = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->released)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

struct hold *worker_hold(struct worker *w)
{
    struct hold *h = calloc(1, sizeof(*h));
    if (!h)
        abort();
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (ims_loop_post(w->loop, hold_run, h, NULL) != 0)
        abort();
    pthread_mutex_lock(&h->mu);
    while (!h->started)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return h;
}

void worker_release(struct hold *h)
{
    pthread_mutex_lock(&h->mu);
    h->released = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* After the held loop went on (worker_release, then any worker_call). */
void worker_hold_free(struct hold *h)
{
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

struct send_args {
    enum sip_proto proto;
    const struct ims_addr *dst;
    uint64_t conn_id;
    const struct sip_tp_src *src;
    const char *buf;
    size_t len;
    int rc;
};

static void send_fn(struct worker *w, void *arg)
{
    struct send_args *a = arg;
    a->rc = ims_sip_tp_send(w->tp, a->proto, a->dst, a->conn_id, a->src, a->buf, a->len);
}

int w_send(struct worker *w, enum sip_proto proto, const struct ims_addr *dst, uint64_t conn_id,
           const char *buf, size_t len)
{
    struct send_args a = { proto, dst, conn_id, NULL, buf, len, 0 };
    worker_call(w, send_fn, &a);
    return a.rc;
}

int w_send_udp_from(struct worker *w, const struct ims_addr *dst, uint16_t src_port,
                    const char *buf, size_t len)
{
    struct sip_tp_src src = { .port = src_port };
    struct send_args a = { SIP_PROTO_UDP, dst, 0, &src, buf, len, 0 };
    worker_call(w, send_fn, &a);
    return a.rc;
}

static void stats_fn(struct worker *w, void *arg)
{
    ims_sip_tp_stats(w->tp, arg);
}

void w_stats(struct worker *w, struct sip_tp_stats *out)
{
    worker_call(w, stats_fn, out);
}

struct local_args {
    enum sip_proto proto;
    int family;
    struct ims_addr *out;
    int rc;
};

static void local_fn(struct worker *w, void *arg)
{
    struct local_args *a = arg;
    a->rc = ims_sip_tp_local(w->tp, a->proto, a->family, a->out);
}

int w_local(struct worker *w, enum sip_proto proto, int family, struct ims_addr *out)
{
    struct local_args a = { proto, family, out, 0 };
    worker_call(w, local_fn, &a);
    return a.rc;
}

struct open_args {
    enum sip_proto proto;
    const struct ims_addr *peer;
    bool open;
};

static void open_fn(struct worker *w, void *arg)
{
    struct open_args *a = arg;
    a->open = ims_sip_tp_conn_open(w->tp, a->proto, a->peer);
}

bool w_conn_open(struct worker *w, enum sip_proto proto, const struct ims_addr *peer)
{
    struct open_args a = { proto, peer, false };
    worker_call(w, open_fn, &a);
    return a.open;
}

bool w_wait_stat(struct worker *w, size_t offset, uint64_t want, int ms)
{
    for (int waited = 0;; waited += 10) {
        struct sip_tp_stats st;
        uint64_t v;
        w_stats(w, &st);
        memcpy(&v, (const char *)&st + offset, sizeof(v));
        if (v == want)
            return true;
        if (waited >= ms)
            return false;
        sleep_ms(10);
    }
}

/* ---- clients ---- */

int tcp_client(const struct ims_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 3, 0 };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool recv_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool recv_eof(int fd)
{
    char b[256];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

bool ipv6_ok(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    close(fd);
    return ok;
}

size_t mk_msg(char *out, size_t outsz, int seq, size_t body_len)
{
    int n = snprintf(out, outsz,
                     "MESSAGE sip:bob@example.com SIP/2.0\r\n"
                     "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-%d\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:alice@example.com>;tag=a%d\r\n"
                     "To: <sip:bob@example.com>\r\n"
                     "Call-ID: call-%d@example.com\r\n"
                     "CSeq: %d MESSAGE\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     seq, seq, seq, seq + 1, body_len);
    if (n < 0 || (size_t)n + body_len >= outsz)
        abort();
    for (size_t i = 0; i < body_len; i++)
        out[(size_t)n + i] = (char)('a' + (i + (size_t)seq) % 26);
    out[(size_t)n + body_len] = '\0';
    return (size_t)n + body_len;
}
