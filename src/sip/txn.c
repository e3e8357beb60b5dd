/* txn.c - RFC 3261 §17 transaction state machines, matching and timers.
 *
 * One table per worker: a fixed array of transactions (the pool), a free
 * list threaded through it, and a chained hash index (bucket heads and next
 * links are pool indexes) keyed by the branch.  Nothing here allocates after
 * the table is created except the copy of a server transaction's request,
 * the ACK/CANCEL a client INVITE builds, and the hand-off copy.
 *
 * Each transaction embeds two timers: `tm_retx` (A, E, G) and `tm_end` (B,
 * D, F, H, I, J, K, L, M, the CANCEL wait, and zero-delay "finish later"),
 * because no state needs more than one retransmission and one lifetime timer
 * at once.  The state machine frees a transaction only from its own timer
 * callbacks, so a TU callback can never free the transaction the caller is
 * still working on. */
#include "sip/txn.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "sip/build.h"

#define MAGIC "z9hG4bK"
#define MAGIC_LEN 7
/* Our branches: MAGIC "I" WW HHHHHHHH "." counter */
#define OUR_PREFIX MAGIC "I"
#define OUR_PREFIX_LEN 8

#define TXN_BUF_CAP (256u * 1024u)
/* Inline key storage: our branches, and a peer's branch + sent-by host +
 * method name once the request copy is dropped (longer keys keep it). */
#define TXN_KBUF 96
#define NO_IDX (-1)

struct sip_txn {
    struct sip_txn_table *tbl;
    int32_t idx;
    int32_t hnext;       /* hash chain, or free list */
    uint32_t hash;

    bool in_use, server, invite, in_hash, tu_attached;
    bool reliable, final_sent;
    bool cancel_wanted, cancel_sent;
    bool kill;           /* tm_end is a "finish on the next turn" */
    int kill_err;        /* transport error to report when killed */
    enum sip_txn_state state;
    enum sip_method method;
    ims_str method_name; /* UNKNOWN only: a key slice like branch */

    /* Matching keys: slices into req (a server transaction's copy), or into
     * kbuf (client transactions; server ones once compacted). */
    ims_str branch;
    ims_str sent_by_host; /* server */
    uint16_t sent_by_port;
    char kbuf[TXN_KBUF];

    struct sip_dest dest;
    struct ims_buf req;  /* server: copy received; client: request sent, then ACK */
    struct ims_buf rsp;  /* server: last response sent */
    int last_status;

    unsigned retx_ms;
    struct ims_timer tm_retx, tm_end;

    sip_txn_cb cb;
    void *ud;
};

struct sip_txn_table {
    struct ims_loop *loop;
    struct sip_txn *pool;
    size_t cap, live;
    size_t used_hwm;     /* entries ever handed out: the rest is untouched */
    int32_t free_head;
    int32_t *buckets;
    uint32_t mask;
    unsigned t1, t2, t4, worker;
    sip_txn_send_fn send;
    void *send_ctx;
    sip_txn_reliable_fn reliable;
    uint64_t counter;
};

/* ---------------------------------------------------------------- utils */

static uint32_t fnv1a(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t branch_hash(ims_str b)
{
    return fnv1a(b.p, b.len, 2166136261u);
}

static void buf_move(struct ims_buf *dst, struct ims_buf *src)
{
    ims_buf_free(dst);
    *dst = *src;
    ims_buf_init(src, src->cap);
}

static bool is_magic(ims_str branch)
{
    return branch.len > MAGIC_LEN && memcmp(branch.p, MAGIC, MAGIC_LEN) == 0;
}

static bool method_eq(const struct sip_txn *t, enum sip_method m, ims_str name)
{
    if (t->method != m)
        return false;
    if (m != SIP_M_UNKNOWN)
        return true;
    return ims_str_eq(t->method_name, name);
}

static unsigned t_64t1(const struct sip_txn_table *tbl)
{
    return 64u * tbl->t1;
}

/* ---------------------------------------------------------------- table */

static void timer_retx_cb(struct ims_loop *loop, struct ims_timer *tm);
static void timer_end_cb(struct ims_loop *loop, struct ims_timer *tm);
static void compact(struct sip_txn *t);

int ims_sip_txn_table_new(struct ims_loop *loop, const struct sip_txn_cfg *cfg,
                          struct sip_txn_table **out)
{
    if (!loop || !cfg || cfg->max_txns == 0 || cfg->max_txns > (1u << 30) || !cfg->send ||
        cfg->worker_idx > 255)
        return IMS_EINVAL;
    struct sip_txn_table *tbl = ims_calloc(1, sizeof(*tbl));
    if (!tbl)
        return IMS_ENOMEM;
    tbl->loop = loop;
    tbl->cap = cfg->max_txns;
    tbl->t1 = cfg->t1_ms ? cfg->t1_ms : SIP_T1_MS;
    tbl->t2 = cfg->t2_ms ? cfg->t2_ms : SIP_T2_MS;
    tbl->t4 = cfg->t4_ms ? cfg->t4_ms : SIP_T4_MS;
    tbl->worker = cfg->worker_idx;
    tbl->send = cfg->send;
    tbl->send_ctx = cfg->send_ctx;
    tbl->reliable = cfg->reliable;
    uint32_t nb = 16;
    while (nb < tbl->cap)
        nb <<= 1;
    tbl->mask = nb - 1;
    tbl->pool = ims_calloc(tbl->cap, sizeof(*tbl->pool));
    if (!tbl->pool)
        goto out_free_tbl;
    tbl->buckets = ims_calloc(nb, sizeof(*tbl->buckets));
    if (!tbl->buckets)
        goto out_free_pool;
    for (uint32_t i = 0; i < nb; i++)
        tbl->buckets[i] = NO_IDX;
    /* Entries are initialised when first handed out (used_hwm), so an
     * untouched pool costs address space, not memory. */
    tbl->free_head = NO_IDX;
    /* The counter only needs to differ between restarts and processes. */
    if (getrandom(&tbl->counter, sizeof(tbl->counter), GRND_NONBLOCK) !=
        (ssize_t)sizeof(tbl->counter)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tbl->counter = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uintptr_t)tbl;
    }
    tbl->counter &= 0x0000ffffffffffffull; /* keeps branches short for a long while */
    *out = tbl;
    return 0;
out_free_pool:
    ims_free(tbl->pool);
out_free_tbl:
    ims_free(tbl);
    return IMS_ENOMEM;
}

static void hash_insert(struct sip_txn *t)
{
    struct sip_txn_table *tbl = t->tbl;
    t->hash = branch_hash(t->branch);
    uint32_t b = t->hash & tbl->mask;
    t->hnext = tbl->buckets[b];
    tbl->buckets[b] = t->idx;
    t->in_hash = true;
}

static void hash_remove(struct sip_txn *t)
{
    struct sip_txn_table *tbl = t->tbl;
    if (!t->in_hash)
        return;
    int32_t *pp = &tbl->buckets[t->hash & tbl->mask];
    while (*pp != NO_IDX) {
        if (*pp == t->idx) {
            *pp = t->hnext;
            break;
        }
        pp = &tbl->pool[*pp].hnext;
    }
    t->hnext = NO_IDX;
    t->in_hash = false;
}

static struct sip_txn *txn_get(struct sip_txn_table *tbl)
{
    struct sip_txn *t;
    if (tbl->free_head != NO_IDX) {
        t = &tbl->pool[tbl->free_head];
        tbl->free_head = t->hnext;
    } else if (tbl->used_hwm < tbl->cap) {
        t = &tbl->pool[tbl->used_hwm];
        t->idx = (int32_t)tbl->used_hwm++;
    } else {
        return NULL;
    }
    int32_t idx = t->idx;
    memset(t, 0, sizeof(*t));
    t->tbl = tbl;
    t->idx = idx;
    t->hnext = NO_IDX;
    ims_timer_init(&t->tm_retx, timer_retx_cb, t);
    ims_timer_init(&t->tm_end, timer_end_cb, t);
    ims_buf_init(&t->req, TXN_BUF_CAP);
    ims_buf_init(&t->rsp, TXN_BUF_CAP);
    t->in_use = true;
    tbl->live++;
    return t;
}

static void txn_put(struct sip_txn *t)
{
    struct sip_txn_table *tbl = t->tbl;
    ims_timer_stop(tbl->loop, &t->tm_retx);
    ims_timer_stop(tbl->loop, &t->tm_end);
    hash_remove(t);
    ims_buf_free(&t->req);
    ims_buf_free(&t->rsp);
    t->in_use = false;
    t->state = SIP_TXN_TERMINATED;
    t->hnext = tbl->free_head;
    tbl->free_head = t->idx;
    tbl->live--;
}

size_t ims_sip_txn_table_free(struct sip_txn_table *tbl)
{
    if (!tbl)
        return 0;
    /* A detached transaction only waits for its last timer (absorbing
     * retransmissions): freeing it early is not a leak.  One the TU still
     * holds is. */
    size_t leaked = 0, lingering = 0;
    for (size_t i = 0; i < tbl->used_hwm; i++) {
        struct sip_txn *t = &tbl->pool[i];
        if (!t->in_use)
            continue;
        if (t->tu_attached) {
            leaked++;
            LOG_W("txn", "event=txn_leaked branch=%.*s server=%d state=%d", IMS_SF(t->branch),
                  t->server, (int)t->state);
        } else {
            lingering++;
        }
        txn_put(t);
    }
    if (leaked)
        LOG_W("txn", "event=txn_leak worker=%u leaked=%zu lingering=%zu", tbl->worker, leaked,
              lingering);
    else if (lingering)
        LOG_I("txn", "event=txn_shutdown worker=%u lingering=%zu", tbl->worker, lingering);
    ims_free(tbl->buckets);
    ims_free(tbl->pool);
    ims_free(tbl);
    return leaked;
}

size_t ims_sip_txn_table_live(const struct sip_txn_table *tbl)
{
    return tbl->live;
}

size_t ims_sip_txn_table_cap(const struct sip_txn_table *tbl)
{
    return tbl->cap;
}

struct ims_loop *ims_sip_txn_table_loop(const struct sip_txn_table *tbl)
{
    return tbl->loop;
}

unsigned ims_sip_txn_table_t1(const struct sip_txn_table *tbl)
{
    return tbl->t1;
}

/* ---------------------------------------------------------------- branches */

static const char hexd[] = "0123456789abcdef";

size_t ims_sip_txn_branch_new(struct sip_txn_table *tbl, uint32_t loop_hash, char *out)
{
    size_t n = 0;
    memcpy(out, OUR_PREFIX, OUR_PREFIX_LEN);
    n = OUR_PREFIX_LEN;
    out[n++] = hexd[(tbl->worker >> 4) & 15];
    out[n++] = hexd[tbl->worker & 15];
    for (int s = 28; s >= 0; s -= 4)
        out[n++] = hexd[(loop_hash >> s) & 15];
    out[n++] = '.';
    uint64_t c = ++tbl->counter;
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = hexd[c & 15];
        c >>= 4;
    } while (c && k < sizeof(tmp));
    while (k)
        out[n++] = tmp[--k];
    out[n] = '\0';
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ims_sip_txn_branch_parse(ims_str b, unsigned *worker, uint32_t *loop_hash)
{
    /* prefix, 2 + 8 hex digits, '.', at least one counter digit */
    if (b.len < OUR_PREFIX_LEN + 12 || memcmp(b.p, OUR_PREFIX, OUR_PREFIX_LEN) != 0)
        return false;
    const char *p = b.p + OUR_PREFIX_LEN;
    unsigned w = 0;
    uint32_t h = 0;
    for (int i = 0; i < 10; i++) {
        int d = hexval(p[i]);
        if (d < 0)
            return false;
        if (i < 2)
            w = w * 16u + (unsigned)d;
        else
            h = h * 16u + (uint32_t)d;
    }
    if (p[10] != '.')
        return false;
    *worker = w;
    *loop_hash = h;
    return true;
}

/* ---------------------------------------------------------------- timers */

static void arm(struct sip_txn *t, struct ims_timer *tm, unsigned ms)
{
    if (ims_timer_start(t->tbl->loop, tm, ms) != 0) {
        /* The loop's timer cap must be >= 2 * max_txns (txn.h); if it is
         * not, the transaction can only wait for the shutdown leak report. */
        LOG_E("txn", "event=timer_cap_hit branch=%.*s", IMS_SF(t->branch));
    }
}

static void disarm_all(struct sip_txn *t)
{
    ims_timer_stop(t->tbl->loop, &t->tm_retx);
    ims_timer_stop(t->tbl->loop, &t->tm_end);
}

static void notify(struct sip_txn *t, const struct sip_txn_ev *ev)
{
    if (t->tu_attached && t->cb)
        t->cb(t, t->ud, ev);
}

/* Ends t now: called only from t's own timer callbacks (file comment). */
static void terminate(struct sip_txn *t)
{
    disarm_all(t);
    hash_remove(t);
    t->state = SIP_TXN_TERMINATED;
    if (t->tu_attached && t->cb) {
        struct sip_txn_ev ev = { .kind = SIP_TXN_EV_TERMINATED };
        t->cb(t, t->ud, &ev);
    }
    txn_put(t);
}

/* Schedules termination (and a transport-error event if err != 0) for the
 * next loop turn: used when the trigger is a call made by the TU. */
static void finish_later(struct sip_txn *t, int err)
{
    ims_timer_stop(t->tbl->loop, &t->tm_retx);
    hash_remove(t);
    t->kill = true;
    if (err && !t->kill_err)
        t->kill_err = err;
    arm(t, &t->tm_end, 0);
}

static int tx(struct sip_txn *t, const struct ims_buf *b)
{
    if (!b->len)
        return 0;
    return t->tbl->send(t->tbl->send_ctx, &t->dest, b->p, b->len);
}

/* A send from a timer or an rx path failed: report and end now-ish.  The
 * event is delivered from a timer, so it is always on a fresh turn. */
static void tx_failed(struct sip_txn *t, int err)
{
    LOG_I("txn", "event=send_failed branch=%.*s err=%s", IMS_SF(t->branch), ims_strerror(err));
    finish_later(t, err);
}

static void timer_retx_cb(struct ims_loop *loop, struct ims_timer *tm)
{
    struct sip_txn *t = tm->data;
    struct sip_txn_table *tbl = t->tbl;
    int rc;
    if (!t->server) {
        /* RFC 3261 §17.1.1.2 Timer A (doubles) and §17.1.2.2 Timer E
         * (doubles up to T2 in Trying, T2 in Proceeding). */
        if (t->state != SIP_TXN_CALLING && t->state != SIP_TXN_TRYING &&
            t->state != SIP_TXN_PROCEEDING)
            return;
        rc = tx(t, &t->req);
        if (rc) {
            tx_failed(t, rc);
            return;
        }
        if (t->invite)
            t->retx_ms *= 2;
        else if (t->state == SIP_TXN_TRYING)
            t->retx_ms = t->retx_ms * 2 < tbl->t2 ? t->retx_ms * 2 : tbl->t2;
        else
            t->retx_ms = tbl->t2;
        arm(t, &t->tm_retx, t->retx_ms);
        return;
    }
    /* RFC 3261 §17.2.1 Timer G: resend the final response, double up to T2 */
    if (t->state != SIP_TXN_COMPLETED)
        return;
    rc = tx(t, &t->rsp);
    if (rc) {
        tx_failed(t, rc);
        return;
    }
    t->retx_ms = t->retx_ms * 2 < tbl->t2 ? t->retx_ms * 2 : tbl->t2;
    arm(t, &t->tm_retx, t->retx_ms);
}

static void timer_end_cb(struct ims_loop *loop, struct ims_timer *tm)
{
    struct sip_txn *t = tm->data;
    if (t->kill) {
        if (t->kill_err) {
            t->state = SIP_TXN_TERMINATED;
            struct sip_txn_ev ev = { .kind = SIP_TXN_EV_TRANSPORT_ERROR, .err = t->kill_err };
            notify(t, &ev);
        }
        terminate(t);
        return;
    }
    bool timeout = false;
    switch (t->state) {
    case SIP_TXN_CALLING:    /* Timer B */
    case SIP_TXN_TRYING:     /* Timer F */
    case SIP_TXN_PROCEEDING: /* Timer F, or the 64*T1 CANCEL wait (§9.1) */
        timeout = !t->server;
        break;
    case SIP_TXN_COMPLETED:  /* server: H (INVITE) or J; client: D or K */
        timeout = t->server && t->invite;
        break;
    default:                 /* I, L, M */
        break;
    }
    if (timeout) {
        LOG_I("txn", "event=txn_timeout branch=%.*s server=%d state=%d", IMS_SF(t->branch),
              t->server, (int)t->state);
        t->state = SIP_TXN_TERMINATED; /* the TU may not act on it any more */
        struct sip_txn_ev ev = { .kind = SIP_TXN_EV_TIMEOUT };
        notify(t, &ev);
    }
    terminate(t);
}

/* ---------------------------------------------------------------- addresses */

static int addr_from(ims_str host, uint16_t port, struct ims_addr *out)
{
    char tmp[80];
    /* A bare IPv6 address (received=::1) gets brackets so that the port is
     * not mistaken for part of it. */
    if (host.len && host.p[0] != '[' && ims_str_chr(host, ':') >= 0) {
        if (host.len + 3 > sizeof(tmp))
            return IMS_EPROTO;
        tmp[0] = '[';
        memcpy(tmp + 1, host.p, host.len);
        tmp[host.len + 1] = ']';
        host = ims_str_make(tmp, host.len + 2);
    }
    return ims_addr_parse(host, port, out) == 0 ? 0 : IMS_ENOENT;
}

static uint16_t default_port(enum sip_proto p)
{
    return p == SIP_PROTO_TLS ? 5061 : 5060;
}

int ims_sip_response_dest(const struct sip_msg *req, const struct sip_tp_rx *rx,
                          struct sip_dest *out)
{
    const struct sip_via *v = &req->via1;
    memset(out, 0, sizeof(*out));
    out->proto = rx->proto;
    out->addr = rx->src;
    ims_sip_tp_src_of(&rx->local, true, &out->src);
    if (ims_sip_proto_reliable(rx->proto)) {
        /* §18.2.2: the same connection; the transport opens a new one to
         * the source if it has closed. */
        out->conn_id = rx->conn_id;
        return 0;
    }
    if (v->rport)
        return 0; /* RFC 3581 §4: source address and port */
    uint16_t port = v->port ? v->port : default_port(rx->proto);
    char host[64];
    if (!ims_addr_host(&rx->src, host, sizeof(host)))
        return IMS_EPROTO;
    return addr_from(ims_str_cstr(host), port, &out->addr) == 0 ? 0 : IMS_EPROTO;
}

int ims_sip_via_dest(const struct sip_via *v, struct sip_dest *out)
{
    memset(out, 0, sizeof(*out));
    if (ims_proto_parse(v->transport, &out->proto) != 0)
        return IMS_EPROTO;
    uint16_t port = v->port ? v->port : default_port(out->proto);
    if (v->rport && v->rport_value)
        port = v->rport_value;
    ims_str host = v->maddr.len ? v->maddr : v->received.len ? v->received : v->host;
    return addr_from(host, port, &out->addr);
}

/* ---------------------------------------------------------------- server */

/* Finds a server transaction by §17.2.3 keys. */
static struct sip_txn *find_server(struct sip_txn_table *tbl, const struct sip_via *v,
                                   enum sip_method m, ims_str mname)
{
    uint32_t h = branch_hash(v->branch);
    for (int32_t i = tbl->buckets[h & tbl->mask]; i != NO_IDX; i = tbl->pool[i].hnext) {
        struct sip_txn *t = &tbl->pool[i];
        if (!t->server || t->hash != h || !ims_str_eq(t->branch, v->branch))
            continue;
        if (t->sent_by_port != v->port || !ims_str_caseeq(t->sent_by_host, v->host))
            continue;
        if (method_eq(t, m, mname))
            return t;
    }
    return NULL;
}

static int check_branch(const struct sip_msg *req)
{
    ims_str b = req->via1.branch;
    if (!is_magic(b) || b.len > SIP_TXN_PEER_BRANCH_MAX || req->via1.host.len == 0)
        return IMS_EPROTO;
    return 0;
}

int ims_sip_txn_rx_request(struct sip_txn_table *tbl, const struct sip_msg *req,
                           const struct sip_tp_rx *rx, struct sip_txn **match)
{
    if (match)
        *match = NULL;
    if (check_branch(req))
        return IMS_EPROTO;
    bool ack = req->method == SIP_M_ACK;
    struct sip_txn *t = find_server(tbl, &req->via1, ack ? SIP_M_INVITE : req->method,
                                    req->method_name);
    if (!t)
        return IMS_ENOENT;
    if (match)
        *match = t;
    int rc = 0;
    if (ack) {
        switch (t->state) {
        case SIP_TXN_COMPLETED:
            /* §17.2.1: ACK -> Confirmed, Timer I; G and H stop */
            disarm_all(t);
            t->state = SIP_TXN_CONFIRMED;
            ims_buf_free(&t->rsp); /* never resent from here on */
            arm(t, &t->tm_end, t->reliable ? 0 : t->tbl->t4);
            return 0;
        case SIP_TXN_ACCEPTED:
            return IMS_ENOENT; /* RFC 6026 §7.1: passed to the TU */
        default:
            return 0;          /* absorbed */
        }
    }
    /* A retransmission: §17.2.1 / §17.2.2 resend the last response. */
    switch (t->state) {
    case SIP_TXN_PROCEEDING:
    case SIP_TXN_COMPLETED:
        rc = tx(t, &t->rsp);
        break;
    default: /* Trying, Confirmed, Accepted (RFC 6026: not to the TU) */
        break;
    }
    if (rc)
        tx_failed(t, rc);
    return 0;
}

struct sip_txn *ims_sip_txn_find_cancelled(struct sip_txn_table *tbl,
                                           const struct sip_msg *cancel)
{
    if (check_branch(cancel))
        return NULL;
    return find_server(tbl, &cancel->via1, SIP_M_INVITE, IMS_STR_NULL);
}

/* RFC 3261 §17's reliable-transport timers for TCP and TLS, and for a hop
 * the transport delivers in-process (the table's hook). */
static bool hop_reliable(const struct sip_txn_table *tbl, const struct sip_dest *d)
{
    return ims_sip_proto_reliable(d->proto) || (tbl->reliable && tbl->reliable(tbl->send_ctx, d));
}

/* Rebases slice s from the received buffer onto the copy. */
static ims_str rebase(ims_str s, const struct sip_msg *req, const char *copy)
{
    if (!s.len || s.p < req->buf || s.p + s.len > req->buf + req->len)
        return IMS_STR_NULL;
    return ims_str_make(copy + (s.p - req->buf), s.len);
}

int ims_sip_txn_server_new(struct sip_txn_table *tbl, const struct sip_msg *req,
                           const struct sip_tp_rx *rx, sip_txn_cb cb, void *ud,
                           struct sip_txn **out)
{
    if (req->kind != SIP_MSG_REQUEST || req->method == SIP_M_ACK)
        return IMS_EINVAL;
    if (check_branch(req))
        return IMS_EPROTO;
    struct sip_dest dest;
    if (ims_sip_response_dest(req, rx, &dest))
        return IMS_EPROTO;
    struct sip_txn *t = txn_get(tbl);
    if (!t)
        return IMS_ELIMIT;
    int rc = ims_buf_add(&t->req, req->buf, req->len);
    if (rc)
        goto out_put;
    const char *copy = t->req.p;
    t->server = true;
    t->invite = req->method == SIP_M_INVITE;
    t->method = req->method;
    t->method_name = rebase(req->method_name, req, copy);
    t->branch = rebase(req->via1.branch, req, copy);
    t->sent_by_host = rebase(req->via1.host, req, copy);
    t->sent_by_port = req->via1.port;
    if (!t->branch.len || !t->sent_by_host.len) {
        rc = IMS_EPROTO;
        goto out_put;
    }
    t->dest = dest;
    t->reliable = hop_reliable(tbl, &t->dest);
    t->state = t->invite ? SIP_TXN_PROCEEDING : SIP_TXN_TRYING;
    t->cb = cb;
    t->ud = ud;
    t->tu_attached = true;
    hash_insert(t);
    *out = t;
    return 0;
out_put:
    txn_put(t);
    return rc;
}

int ims_sip_txn_respond(struct sip_txn *t, int status, struct ims_buf *rsp)
{
    struct sip_txn_table *tbl = t->tbl;
    struct ims_buf b = *rsp;
    ims_buf_init(rsp, rsp->cap);
    bool prov = status < 200;
    int rc = IMS_EINVAL;
    if (!t->server || t->kill || status < 100 || status > 699)
        goto out_free;
    switch (t->state) {
    case SIP_TXN_TRYING:
    case SIP_TXN_PROCEEDING:
        break;
    case SIP_TXN_ACCEPTED:
        if (status >= 200 && status < 300) {
            /* RFC 6026 §8.7: 2xx from the TU are sent, not stored */
            rc = t->tbl->send(tbl->send_ctx, &t->dest, b.p, b.len);
            goto out_free;
        }
        goto out_free;
    default:
        goto out_free;
    }
    buf_move(&t->rsp, &b);
    t->last_status = status;
    if (prov) {
        t->state = SIP_TXN_PROCEEDING;
    } else if (t->invite && status < 300) {
        t->state = SIP_TXN_ACCEPTED; /* RFC 6026 §7.1, Timer L */
        t->final_sent = true;
        arm(t, &t->tm_end, t_64t1(tbl));
    } else {
        t->state = SIP_TXN_COMPLETED;
        t->final_sent = true;
        if (t->invite) {
            /* §17.2.1: Timer G (unreliable) and Timer H */
            if (!t->reliable) {
                t->retx_ms = tbl->t1;
                arm(t, &t->tm_retx, t->retx_ms);
            }
            arm(t, &t->tm_end, t_64t1(tbl));
        } else {
            /* §17.2.2: Timer J, 64*T1 unreliable, 0 reliable */
            arm(t, &t->tm_end, t->reliable ? 0 : t_64t1(tbl));
        }
    }
    rc = tx(t, &t->rsp);
    if (t->state == SIP_TXN_ACCEPTED)
        ims_buf_free(&t->rsp); /* RFC 6026: never retransmitted by us */
    if (rc) {
        LOG_I("txn", "event=send_failed branch=%.*s status=%d err=%s", IMS_SF(t->branch),
              status, ims_strerror(rc));
        finish_later(t, rc);
    }
    compact(t);
    return rc;
out_free:
    ims_buf_free(&b);
    return rc;
}

bool ims_sip_txn_final_sent(const struct sip_txn *t)
{
    return t->final_sent;
}

int ims_sip_txn_last_status(const struct sip_txn *t)
{
    return t->last_status;
}

/* ---------------------------------------------------------------- client */

int ims_sip_txn_client_new(struct sip_txn_table *tbl, const struct sip_txn_client_args *a,
                           struct sip_txn **out)
{
    if (a->method == SIP_M_ACK || a->branch.len == 0 || a->branch.len >= SIP_BRANCH_MAX ||
        (a->method == SIP_M_UNKNOWN &&
         (a->method_name.len == 0 || a->branch.len + a->method_name.len > TXN_KBUF)) ||
        !a->req || !a->req->len)
        return IMS_EINVAL;
    struct sip_txn *t = txn_get(tbl);
    if (!t)
        return IMS_ELIMIT;
    memcpy(t->kbuf, a->branch.p, a->branch.len);
    t->branch = ims_str_make(t->kbuf, a->branch.len);
    t->method = a->method;
    if (a->method == SIP_M_UNKNOWN) {
        memcpy(t->kbuf + a->branch.len, a->method_name.p, a->method_name.len);
        t->method_name = ims_str_make(t->kbuf + a->branch.len, a->method_name.len);
    }
    t->invite = a->method == SIP_M_INVITE;
    t->dest = a->dest;
    t->reliable = hop_reliable(tbl, &t->dest);
    t->state = t->invite ? SIP_TXN_CALLING : SIP_TXN_TRYING;
    int rc = tbl->send(tbl->send_ctx, &t->dest, a->req->p, a->req->len);
    if (rc) {
        txn_put(t);
        return rc;
    }
    buf_move(&t->req, a->req);
    /* §17.1.1.2 Timers A and B; §17.1.2.2 Timers E and F */
    if (!t->reliable) {
        t->retx_ms = tbl->t1;
        arm(t, &t->tm_retx, t->retx_ms);
    }
    arm(t, &t->tm_end, t_64t1(tbl));
    t->cb = a->cb;
    t->ud = a->ud;
    t->tu_attached = true;
    hash_insert(t);
    *out = t;
    return 0;
}

static struct sip_txn *find_client(struct sip_txn_table *tbl, const struct sip_msg *rsp)
{
    ims_str b = rsp->via1.branch;
    if (!b.len)
        return NULL;
    uint32_t h = branch_hash(b);
    for (int32_t i = tbl->buckets[h & tbl->mask]; i != NO_IDX; i = tbl->pool[i].hnext) {
        struct sip_txn *t = &tbl->pool[i];
        if (t->server || t->hash != h || !ims_str_eq(t->branch, b))
            continue;
        if (method_eq(t, rsp->cseq.method, rsp->cseq.method_name))
            return t;
    }
    return NULL;
}

/* Builds an ACK (RFC 3261 §17.1.1.3, to_src = the response) or a CANCEL
 * (§9.1, to_src = NULL) for the request we sent, with sip/build.h. */
static int build_ack_cancel(ims_str orig, bool ack, const struct sip_msg *to_src,
                            struct ims_buf *out)
{
    struct sip_msg m;
    struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
    int n = ims_sip_parse(orig.p, orig.len, false, &m, hdrs, SIP_MAX_HEADERS_DEFAULT);
    if (n < 0)
        return n == IMS_ELIMIT ? IMS_ELIMIT : IMS_EPROTO;
    return ack ? ims_sip_build_ack(out, &m, to_src) : ims_sip_build_cancel(out, &m, IMS_STR_NULL);
}

static void send_cancel(struct sip_txn *inv)
{
    struct ims_buf b;
    ims_buf_init(&b, TXN_BUF_CAP);
    int rc = build_ack_cancel(ims_buf_str(&inv->req), false, NULL, &b);
    struct sip_txn *ct = NULL;
    if (!rc) {
        struct sip_txn_client_args a = {
            .method = SIP_M_CANCEL, .branch = inv->branch, .dest = inv->dest, .req = &b,
        };
        rc = ims_sip_txn_client_new(inv->tbl, &a, &ct);
    }
    ims_buf_free(&b);
    inv->cancel_sent = true;
    if (rc) {
        LOG_W("txn", "event=cancel_failed branch=%.*s err=%s", IMS_SF(inv->branch),
              ims_strerror(rc));
        return;
    }
    /* The CANCEL transaction runs on its own with no TU. */
    ims_sip_txn_detach(ct);
    /* §9.1: if the INVITE gets no final response within 64*T1 of the
     * CANCEL, it is considered cancelled: report a timeout then. */
    arm(inv, &inv->tm_end, t_64t1(inv->tbl));
}

int ims_sip_txn_cancel(struct sip_txn *t)
{
    if (t->server || !t->invite)
        return IMS_EINVAL;
    if (t->cancel_wanted || (t->state != SIP_TXN_CALLING && t->state != SIP_TXN_PROCEEDING))
        return 0;
    t->cancel_wanted = true;
    if (t->state == SIP_TXN_PROCEEDING)
        send_cancel(t);
    /* In Calling the CANCEL waits for a provisional (§9.1); Timer B still
     * bounds the wait. */
    return 0;
}

static void deliver(struct sip_txn *t, const struct sip_msg *rsp, const struct sip_tp_rx *rx)
{
    struct sip_txn_ev ev = { .kind = SIP_TXN_EV_RESPONSE, .msg = rsp, .rx = rx };
    notify(t, &ev);
}

/* INVITE client: a 3xx-6xx final.  §17.1.1.3: build and send the ACK. */
static void invite_failure(struct sip_txn *t, const struct sip_msg *rsp)
{
    struct sip_txn_table *tbl = t->tbl;
    struct ims_buf ack;
    ims_buf_init(&ack, TXN_BUF_CAP);
    int rc = build_ack_cancel(ims_buf_str(&t->req), true, rsp, &ack);
    if (rc) {
        LOG_W("txn", "event=ack_build_failed branch=%.*s err=%s", IMS_SF(t->branch),
              ims_strerror(rc));
        ims_buf_free(&ack);
        ims_buf_free(&t->req);
    } else {
        buf_move(&t->req, &ack); /* the INVITE is no longer needed */
        rc = tx(t, &t->req);
        if (rc)
            LOG_I("txn", "event=ack_send_failed branch=%.*s err=%s", IMS_SF(t->branch),
                  ims_strerror(rc));
    }
    /* Timer D: 64*T1 (>= 32 s at the default T1) unreliable, 0 reliable */
    arm(t, &t->tm_end, t->reliable ? 0 : t_64t1(tbl));
}

int ims_sip_txn_rx_response(struct sip_txn_table *tbl, const struct sip_msg *rsp,
                            const struct sip_tp_rx *rx)
{
    struct sip_txn *t = find_client(tbl, rsp);
    if (!t || t->kill)
        return t ? 0 : IMS_ENOENT;
    int st = rsp->status;
    bool prov = st < 200, ok = st >= 200 && st < 300;
    switch (t->state) {
    case SIP_TXN_CALLING:
    case SIP_TXN_TRYING:
    case SIP_TXN_PROCEEDING:
        t->last_status = st;
        if (prov) {
            bool first = t->state != SIP_TXN_PROCEEDING;
            t->state = SIP_TXN_PROCEEDING;
            if (t->invite && first) {
                /* §17.1.1.2: A and B stop in Proceeding */
                disarm_all(t);
                if (t->cancel_wanted && !t->cancel_sent)
                    send_cancel(t);
            }
            /* non-INVITE: E keeps running at T2 (§17.1.2.2), F too */
            deliver(t, rsp, rx);
            return 0;
        }
        disarm_all(t);
        if (t->invite && ok) {
            t->state = SIP_TXN_ACCEPTED; /* RFC 6026 §7.2, Timer M */
            ims_buf_free(&t->req);       /* no ACK or CANCEL from here on */
            arm(t, &t->tm_end, t_64t1(tbl));
        } else if (t->invite) {
            t->state = SIP_TXN_COMPLETED;
            invite_failure(t, rsp);
        } else {
            /* §17.1.2.2: Timer K, T4 unreliable, 0 reliable */
            t->state = SIP_TXN_COMPLETED;
            arm(t, &t->tm_end, t->reliable ? 0 : tbl->t4);
        }
        deliver(t, rsp, rx);
        return 0;
    case SIP_TXN_COMPLETED:
        if (t->invite && st >= 300) {
            int rc = tx(t, &t->req); /* §17.1.1.2: resend the ACK */
            if (rc)
                LOG_I("txn", "event=ack_send_failed branch=%.*s err=%s", IMS_SF(t->branch),
                      ims_strerror(rc));
        }
        return 0;
    case SIP_TXN_ACCEPTED:
        if (!ok)
            return 0;
        /* RFC 6026 §7.2: 2xx retransmissions (and 2xx from other forks) go
         * to the TU; without a TU they are the stateless proxy's job. */
        if (!t->tu_attached)
            return IMS_ENOENT;
        deliver(t, rsp, rx);
        return 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- both */

/* A server transaction whose final response went out and whose TU left
 * only matches and resends: keep its keys inline and drop the request copy,
 * so the many transactions waiting out Timers J and L stay small. */
static void compact(struct sip_txn *t)
{
    if (!t->server || t->tu_attached || !t->final_sent || !t->req.p)
        return;
    size_t need = t->branch.len + t->sent_by_host.len + t->method_name.len;
    if (need > TXN_KBUF)
        return; /* long keys: keep the copy */
    char *k = t->kbuf;
    ims_str *keys[3] = { &t->branch, &t->sent_by_host, &t->method_name };
    for (int i = 0; i < 3; i++) {
        size_t n = keys[i]->len;
        if (n)
            memcpy(k, keys[i]->p, n);
        *keys[i] = ims_str_make(k, n);
        k += n;
    }
    ims_buf_free(&t->req);
}

void ims_sip_txn_abandon(struct sip_txn *t)
{
    t->tu_attached = false;
    t->cb = NULL;
    t->ud = NULL;
}

void ims_sip_txn_detach(struct sip_txn *t)
{
    if (!t->tu_attached)
        return;
    t->tu_attached = false;
    t->cb = NULL;
    t->ud = NULL;
    compact(t);
    /* RFC 6026 §7.2 keeps a client INVITE in Accepted to pass 2xx
     * retransmissions to its TU; without a TU they are forwarded statelessly
     * anyway (ims_sip_txn_rx_response), so it can end now. */
    if (!t->server && t->invite && t->state == SIP_TXN_ACCEPTED && !t->kill) {
        finish_later(t, 0);
        return;
    }
    if (t->server && !t->final_sent && !t->kill && t->state != SIP_TXN_TERMINATED) {
        LOG_W("txn", "event=server_txn_abandoned branch=%.*s", IMS_SF(t->branch));
        finish_later(t, 0);
    }
    /* A client INVITE in Proceeding has no timer of its own (the TU's Timer
     * C bounds it): without a TU it ends after 64*T1 at the latest. */
    if (!t->server && t->invite && t->state == SIP_TXN_PROCEEDING && !ims_timer_armed(&t->tm_end))
        arm(t, &t->tm_end, t_64t1(t->tbl));
}

enum sip_txn_state ims_sip_txn_state(const struct sip_txn *t)
{
    return t->state;
}

bool ims_sip_txn_is_server(const struct sip_txn *t)
{
    return t->server;
}

enum sip_method ims_sip_txn_method(const struct sip_txn *t)
{
    return t->method;
}

ims_str ims_sip_txn_branch(const struct sip_txn *t)
{
    return t->branch;
}

ims_str ims_sip_txn_request(const struct sip_txn *t)
{
    return ims_buf_str(&t->req);
}

const struct sip_dest *ims_sip_txn_dest(const struct sip_txn *t)
{
    return &t->dest;
}

void ims_sip_txn_set_cb(struct sip_txn *t, sip_txn_cb cb, void *ud)
{
    t->cb = cb;
    t->ud = ud;
}

void *ims_sip_txn_user(const struct sip_txn *t)
{
    return t->tu_attached ? t->ud : NULL;
}

/* ---------------------------------------------------------------- registry */

struct reg_slot {
    _Atomic(struct ims_loop *) loop;
    sip_tp_rx_cb fn;
    void *ctx;
};

struct sip_txn_registry {
    unsigned n;
    struct reg_slot slots[];
};

int ims_sip_txn_registry_new(unsigned nworkers, struct sip_txn_registry **out)
{
    if (nworkers == 0 || nworkers > 256)
        return IMS_EINVAL;
    struct sip_txn_registry *r =
        ims_calloc(1, sizeof(*r) + (size_t)nworkers * sizeof(struct reg_slot));
    if (!r)
        return IMS_ENOMEM;
    r->n = nworkers;
    for (unsigned i = 0; i < nworkers; i++)
        atomic_init(&r->slots[i].loop, NULL);
    *out = r;
    return 0;
}

void ims_sip_txn_registry_free(struct sip_txn_registry *r)
{
    ims_free(r);
}

unsigned ims_sip_txn_registry_size(const struct sip_txn_registry *r)
{
    return r->n;
}

int ims_sip_txn_registry_set(struct sip_txn_registry *r, unsigned idx, struct ims_loop *loop,
                             sip_tp_rx_cb fn, void *ctx)
{
    if (idx >= r->n)
        return IMS_EINVAL;
    r->slots[idx].fn = fn;
    r->slots[idx].ctx = ctx;
    atomic_store_explicit(&r->slots[idx].loop, loop, memory_order_release);
    return 0;
}

struct handoff {
    struct sip_tp_rx rx;
    sip_tp_rx_cb fn;
    void *ctx;
    char bytes[];
};

static void handoff_run(struct ims_loop *loop, void *arg)
{
    struct handoff *h = arg;
    h->fn(h->ctx, &h->rx);
    ims_free(h);
}

int ims_sip_txn_handoff(struct sip_txn_registry *r, unsigned idx, const struct sip_tp_rx *rx)
{
    if (idx >= r->n)
        return IMS_ENOENT;
    struct reg_slot *s = &r->slots[idx];
    struct ims_loop *loop = atomic_load_explicit(&s->loop, memory_order_acquire);
    if (!loop)
        return IMS_ENOENT;
    size_t cn = rx->tls_peer_cn ? strlen(rx->tls_peer_cn) + 1 : 0;
    struct handoff *h = ims_alloc(sizeof(*h) + rx->len + cn);
    if (!h)
        return IMS_ENOMEM;
    h->rx = *rx;
    h->fn = s->fn;
    h->ctx = s->ctx;
    memcpy(h->bytes, rx->buf, rx->len);
    h->rx.buf = h->bytes;
    if (cn) {
        memcpy(h->bytes + rx->len, rx->tls_peer_cn, cn);
        h->rx.tls_peer_cn = h->bytes + rx->len;
    }
    int rc = ims_loop_post(loop, handoff_run, h, ims_free);
    if (rc)
        ims_free(h);
    return rc;
}
