/* resolve.c - RFC 3263 server location with c-ares on our loop.
 *
 * c-ares tells us which sockets it wants watched through its sock_state
 * callback (each becomes an ims_io) and when it next needs to run through
 * ares_timeout() (one ims_timer); we hand readiness back with
 * ares_process_fd().  Its query callbacks may run synchronously inside
 * ares_query()/ares_getaddrinfo() (an /etc/hosts hit, say) or inside
 * ares_destroy(), so they only update a request's state; the user's
 * callback always runs from the request's own timer on a later turn.
 *
 * Each request's state is one allocation holding everything (query
 * contexts, SRV records, targets), so no allocation happens per query.  Its
 * timer is armed for the whole request (as an overall deadline), so
 * arming it to fire "now" when the answer is complete cannot hit the
 * loop's timer cap. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <ares.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "net/resolve.h"

#define RES_MAX_SOCKS 16 /* c-ares sockets watched at once (UDP + TCP per server) */
/* c-ares' timeouts are looked at no later than RES_TICK_MS after a query
 * was sent, and at most once per RES_FLOOR_MS: see rearm(). */
#define RES_TICK_MS 100
#define RES_FLOOR_MS 10
#define RES_SRV_QUERIES 3
#define RES_HOST_MAX 254
#define NS_C_IN 1
#define NS_T_SRV 33

struct res_sock {
    struct ims_resolver *r;
    struct ims_io io;
    bool used;
};

struct ims_resolver {
    struct ims_loop *loop;
    ares_channel ch;
    struct ims_timer tm;
    uint64_t tm_due; /* when tm fires, while armed (loop clock, ms) */
    struct res_sock socks[RES_MAX_SOCKS];
    struct ims_resolve_state *states; /* every live request state */
    size_t npending, max_pending;
    uint64_t deadline_ms;
    uint64_t rng;
    bool destroying;
};

struct rq { /* the arg of one c-ares query */
    struct ims_resolve_state *st;
    unsigned idx;
};

struct srv_rec {
    enum sip_proto proto;
    unsigned group; /* which SRV query: the protocol preference order */
    uint16_t prio, weight, port;
    char target[RES_HOST_MAX + 1];
};

struct lookup {
    const char *name; /* into the state */
    enum sip_proto proto;
    uint16_t port;
};

struct ims_resolve_state {
    struct ims_resolver *r;
    struct ims_resolve_req *req; /* NULL once cancelled or answered */
    ims_resolve_cb cb;
    void *arg;
    struct ims_timer done;
    struct ims_resolve_state *next, *prev;
    char host[RES_HOST_MAX + 1];
    uint16_t port;
    enum sip_proto proto; /* default proto when no SRV */
    bool sips;
    bool finished;
    bool srv_dot;         /* an SRV "." said: service not offered */
    unsigned outstanding; /* c-ares queries not called back yet */
    unsigned srv_left;
    int err;
    enum sip_proto srv_proto[RES_SRV_QUERIES];
    struct rq q[RES_SRV_QUERIES + IMS_RESOLVE_MAX_SRV];
    struct srv_rec srv[IMS_RESOLVE_MAX_SRV];
    size_t nsrv;
    struct lookup look[IMS_RESOLVE_MAX_SRV];
    size_t nlook, per_look;
    struct ims_resolve_target t[IMS_RESOLVE_MAX_TARGETS];
    unsigned trank[IMS_RESOLVE_MAX_TARGETS];
    size_t nt;
};

/* ---- the loop side of c-ares ---- */

static void arm(struct ims_resolver *r, uint64_t ms)
{
    if (ims_timer_start(r->loop, &r->tm, ms) != 0) {
        LOG_E("net", "event=resolver_timer_failed err=ELIMIT");
        return;
    }
    r->tm_due = ims_loop_now(r->loop) + ms;
}

/* The timer at c-ares' next timeout.  ares_timeout() walks every pending
 * query (c-ares 1.18), so it runs only here, from the timer, at most once
 * per RES_FLOOR_MS: after every socket event it made a lookup flood with
 * an unreachable DNS server (thousands of queries waiting out their
 * timeouts) cost a worker more than the requests did. */
static void rearm(struct ims_resolver *r)
{
    struct timeval tv;
    struct timeval *tvp = ares_timeout(r->ch, NULL, &tv);
    if (!tvp) {
        ims_timer_stop(r->loop, &r->tm);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    arm(r, ms < RES_FLOOR_MS ? RES_FLOOR_MS : ms);
}

/* After c-ares may have sent a query (a request started, a socket event):
 * its timeout, whatever c-ares made it, is looked at within RES_TICK_MS,
 * without walking the queries. */
static void cover_new_queries(struct ims_resolver *r)
{
    if (!ims_timer_armed(&r->tm) || r->tm_due > ims_loop_now(r->loop) + RES_TICK_MS)
        arm(r, RES_TICK_MS);
}

static void sock_io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct res_sock *s = io->data;
    struct ims_resolver *r = s->r;
    int fd = io->fd;
    ares_process_fd(r->ch, (events & IMS_IO_READ) ? fd : ARES_SOCKET_BAD,
                    (events & IMS_IO_WRITE) ? fd : ARES_SOCKET_BAD);
    cover_new_queries(r);
}

static void ares_timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct ims_resolver *r = t->data;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares opens, changes or (0, 0) closes a socket it wants watched.  It
 * calls this before closing the fd, so stopping the io is safe. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct ims_resolver *r = data;
    struct res_sock *s = NULL, *free_slot = NULL;
    for (size_t i = 0; i < RES_MAX_SOCKS; i++) {
        if (r->socks[i].used && r->socks[i].io.fd == fd)
            s = &r->socks[i];
        else if (!r->socks[i].used && !free_slot)
            free_slot = &r->socks[i];
    }
    if (!readable && !writable) {
        if (s) {
            ims_io_stop(r->loop, &s->io);
            s->used = false;
        }
        return;
    }
    if (!s) {
        if (!free_slot) {
            /* The queries on this socket will time out. */
            LOG_E("net", "event=resolver_socket_cap fd=%d max=%d", fd, RES_MAX_SOCKS);
            return;
        }
        s = free_slot;
        s->r = r;
        s->used = true;
        ims_io_init(&s->io, fd, sock_io_cb, s);
    }
    unsigned ev = (readable ? IMS_IO_READ : 0) | (writable ? IMS_IO_WRITE : 0);
    if (ims_io_set(r->loop, &s->io, ev) != 0)
        LOG_E("net", "event=resolver_io_failed fd=%d", fd);
}

/* ---- resolver ---- */

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_rc;

static void ares_global_init(void)
{
    ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

int ims_resolver_new(struct ims_loop *loop, const struct ims_resolver_cfg *cfg,
                     struct ims_resolver **out, char *err, size_t errsz)
{
    pthread_once(&ares_once, ares_global_init);
    if (ares_init_rc != ARES_SUCCESS) {
        snprintf(err, errsz, "ares_library_init: %s", ares_strerror(ares_init_rc));
        return IMS_EBACKEND;
    }
    struct ims_resolver *r = ims_calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errsz, "out of memory");
        return IMS_ENOMEM;
    }
    r->loop = loop;
    r->max_pending = cfg->max_pending ? cfg->max_pending : 1024;
    unsigned timeout = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    unsigned tries = cfg->tries ? cfg->tries : 2;
    /* SRV, then A/AAAA: two rounds of every try, plus slack.  Only a safety
     * net; c-ares' own timeouts normally answer first. */
    r->deadline_ms = 2ull * timeout * tries + 2000u;
    if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng) || !r->rng)
        r->rng = 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)r;
    ims_timer_init(&r->tm, ares_timer_cb, r);

    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH; /* SIP URIs carry fully qualified names */
    o.timeout = (int)timeout;
    o.tries = (int)tries;
    o.lookups = (char *)"fb"; /* /etc/hosts, then DNS */
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = r;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
               ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&r->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errsz, "ares_init_options: %s", ares_strerror(rc));
        ims_free(r);
        return rc == ARES_ENOMEM ? IMS_ENOMEM : IMS_EBACKEND;
    }
    if (cfg->servers && cfg->servers[0]) {
        rc = ares_set_servers_ports_csv(r->ch, cfg->servers);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errsz, "dns servers \"%s\": %s", cfg->servers, ares_strerror(rc));
            ares_destroy(r->ch);
            ims_free(r);
            return rc == ARES_ENOMEM ? IMS_ENOMEM : IMS_EINVAL;
        }
    }
    *out = r;
    return 0;
}

static void state_free(struct ims_resolve_state *st)
{
    struct ims_resolver *r = st->r;
    ims_timer_stop(r->loop, &st->done);
    if (st->prev)
        st->prev->next = st->next;
    else
        r->states = st->next;
    if (st->next)
        st->next->prev = st->prev;
    r->npending--;
    ims_free(st);
}

void ims_resolver_free(struct ims_resolver *r)
{
    if (!r)
        return;
    r->destroying = true;
    for (struct ims_resolve_state *st = r->states; st; st = st->next) {
        ims_timer_stop(r->loop, &st->done);
        if (st->req)
            st->req->st = NULL;
        st->req = NULL;
    }
    /* Calls every pending query back (ARES_EDESTRUCTION); states whose
     * last query that was free themselves. */
    ares_destroy(r->ch);
    while (r->states)
        state_free(r->states);
    for (size_t i = 0; i < RES_MAX_SOCKS; i++) {
        if (r->socks[i].used)
            ims_io_stop(r->loop, &r->socks[i].io);
    }
    ims_timer_stop(r->loop, &r->tm);
    ims_free(r);
}

/* ---- requests ---- */

static int map_status(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        return IMS_ENOENT;
    case ARES_ETIMEOUT:
        return IMS_ETIMEDOUT;
    case ARES_ENOMEM:
        return IMS_ENOMEM;
    default:
        return IMS_EBACKEND;
    }
}

static int err_weight(int err)
{
    switch (err) {
    case IMS_ENOMEM:
        return 4;
    case IMS_ETIMEDOUT:
        return 3;
    case IMS_EBACKEND:
        return 2;
    case IMS_ENOENT:
        return 1;
    default:
        return 0;
    }
}

/* Keeps the most telling error for when no target is found. */
static void note_err(struct ims_resolve_state *st, int err)
{
    if (err_weight(err) > err_weight(st->err))
        st->err = err;
}

static uint64_t rng_next(struct ims_resolver *r)
{
    /* xorshift64*: SRV weights need spread, not secrecy */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545f4914f6cdd1du;
}

/* RFC 2782 ordering: by query group (protocol preference), priority
 * ascending, and within one priority a weighted random order in which
 * weight-0 records come first and rarely win. */
static void order_srv(struct ims_resolve_state *st)
{
    struct srv_rec *s = st->srv;
    size_t n = st->nsrv;
    for (size_t i = 1; i < n; i++) { /* stable insertion sort, n <= 8 */
        struct srv_rec tmp = s[i];
        size_t j = i;
        while (j > 0 && (s[j - 1].group > tmp.group ||
                         (s[j - 1].group == tmp.group && s[j - 1].prio > tmp.prio))) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = tmp;
    }
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && s[b].group == s[a].group && s[b].prio == s[a].prio)
            b++;
        /* weight-0 records first, then pick by running sums */
        for (size_t i = a; i < b; i++) {
            for (size_t j = i + 1; j < b; j++) {
                if (s[j].weight == 0 && s[i].weight != 0) {
                    struct srv_rec tmp = s[i];
                    s[i] = s[j];
                    s[j] = tmp;
                }
            }
        }
        for (size_t i = a; i + 1 < b; i++) {
            uint64_t sum = 0;
            for (size_t j = i; j < b; j++)
                sum += s[j].weight;
            uint64_t pick = sum ? rng_next(st->r) % (sum + 1) : 0;
            uint64_t run = 0;
            size_t chosen = i;
            for (size_t j = i; j < b; j++) {
                run += s[j].weight;
                if (run >= pick) {
                    chosen = j;
                    break;
                }
            }
            struct srv_rec tmp = s[i];
            s[i] = s[chosen];
            s[chosen] = tmp;
        }
        a = b;
    }
}

static void finish(struct ims_resolve_state *st)
{
    for (size_t i = 1; i < st->nt; i++) { /* stable by rank */
        struct ims_resolve_target t = st->t[i];
        unsigned rk = st->trank[i];
        size_t j = i;
        while (j > 0 && st->trank[j - 1] > rk) {
            st->t[j] = st->t[j - 1];
            st->trank[j] = st->trank[j - 1];
            j--;
        }
        st->t[j] = t;
        st->trank[j] = rk;
    }
    st->finished = true;
    /* The timer is armed (the deadline), so this cannot hit the cap. */
    if (ims_timer_start(st->r->loop, &st->done, 0) != 0)
        LOG_E("net", "event=resolver_done_timer_failed");
}

static void maybe_finish(struct ims_resolve_state *st)
{
    if (st->outstanding > 0)
        return;
    if (!st->req || st->r->destroying) {
        state_free(st); /* cancelled, answered early, or going away */
        return;
    }
    if (!st->finished)
        finish(st);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res);

static void start_lookups(struct ims_resolve_state *st)
{
    if (st->nlook == 0)
        return;
    st->per_look = IMS_RESOLVE_MAX_TARGETS / st->nlook;
    if (st->per_look == 0)
        st->per_look = 1;
    /* Counted first: a lookup may call back before the next one starts. */
    st->outstanding += (unsigned)st->nlook;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    size_t n = st->nlook;
    for (size_t i = 0; i < n; i++) {
        struct rq *q = &st->q[RES_SRV_QUERIES + i];
        q->st = st;
        q->idx = (unsigned)i;
        ares_getaddrinfo(st->r->ch, st->look[i].name, NULL, &hints, addr_cb, q);
    }
}

static void after_srv(struct ims_resolve_state *st)
{
    if (st->nsrv == 0) {
        if (st->srv_dot) {
            note_err(st, IMS_ENOENT); /* RFC 2782: "." = not offered here */
            return;
        }
        /* RFC 3263 §4.2: no SRV records: A/AAAA of the host itself */
        st->look[0] = (struct lookup){ st->host, st->proto,
                                       st->proto == SIP_PROTO_TLS ? 5061 : 5060 };
        st->nlook = 1;
    } else {
        order_srv(st);
        for (size_t i = 0; i < st->nsrv; i++)
            st->look[i] = (struct lookup){ st->srv[i].target, st->srv[i].proto, st->srv[i].port };
        st->nlook = st->nsrv;
    }
    start_lookups(st);
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct rq *q = arg;
    struct ims_resolve_state *st = q->st;
    st->outstanding--;
    st->srv_left--;
    if (status == ARES_SUCCESS) {
        struct ares_srv_reply *rep = NULL;
        if (ares_parse_srv_reply(abuf, alen, &rep) == ARES_SUCCESS) {
            for (struct ares_srv_reply *p = rep; p; p = p->next) {
                size_t tl = strlen(p->host);
                if (tl == 0 || (tl == 1 && p->host[0] == '.')) {
                    st->srv_dot = true;
                    continue;
                }
                if (st->nsrv == IMS_RESOLVE_MAX_SRV || tl > RES_HOST_MAX)
                    continue;
                struct srv_rec *s = &st->srv[st->nsrv++];
                s->proto = st->srv_proto[q->idx];
                s->group = q->idx;
                s->prio = p->priority;
                s->weight = p->weight;
                s->port = p->port;
                memcpy(s->target, p->host, tl + 1);
            }
            ares_free_data(rep);
        } else {
            note_err(st, IMS_EBACKEND);
        }
    } else if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
        note_err(st, map_status(status));
    }
    if (st->srv_left == 0 && st->req && !st->r->destroying)
        after_srv(st);
    maybe_finish(st);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct rq *q = arg;
    struct ims_resolve_state *st = q->st;
    const struct lookup *lk = &st->look[q->idx];
    st->outstanding--;
    if (status == ARES_SUCCESS && res) {
        size_t taken = 0;
        for (struct ares_addrinfo_node *n = res->nodes; n && taken < st->per_look; n = n->ai_next) {
            struct ims_addr a;
            if (st->nt == IMS_RESOLVE_MAX_TARGETS)
                break;
            if (ims_addr_set(&a, n->ai_addr, (socklen_t)n->ai_addrlen) != 0)
                continue;
            if (a.ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&a.ss)->sin_port = htons(lk->port);
            else
                ((struct sockaddr_in6 *)&a.ss)->sin6_port = htons(lk->port);
            st->t[st->nt] = (struct ims_resolve_target){ lk->proto, a };
            st->trank[st->nt] = q->idx;
            st->nt++;
            taken++;
        }
    } else if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
        note_err(st, map_status(status));
    }
    if (res)
        ares_freeaddrinfo(res);
    maybe_finish(st);
}

static void done_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct ims_resolve_state *st = t->data;
    struct ims_resolve_req *req = st->req;
    if (!st->finished) {
        /* the deadline: answer now, let the stragglers drain */
        LOG_W("net", "event=resolve_deadline host=%s", st->host);
        st->nt = 0;
        note_err(st, IMS_ETIMEDOUT);
    }
    st->req = NULL;
    if (req)
        req->st = NULL;
    int err = st->nt ? 0 : (st->err ? st->err : IMS_ENOENT);
    if (req)
        st->cb(st->arg, err, st->nt ? st->t : NULL, st->nt);
    if (st->outstanding == 0)
        state_free(st);
}

static bool host_ok(ims_str h)
{
    if (h.len == 0 || h.len > RES_HOST_MAX)
        return false;
    for (size_t i = 0; i < h.len; i++) {
        unsigned char c = (unsigned char)h.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']';
        if (!ok)
            return false;
    }
    return true;
}

int ims_resolve_sip(struct ims_resolver *r, ims_str host, uint16_t port,
                    enum sip_proto proto_hint, bool sips, ims_resolve_cb cb, void *arg,
                    struct ims_resolve_req *req)
{
    if (req->st || !cb || !host_ok(host) || proto_hint > SIP_PROTO_TLS ||
        (sips && proto_hint == SIP_PROTO_UDP))
        return IMS_EINVAL;
    /* RFC 3263 §4.1: no transport: UDP for sip, TLS for sips */
    enum sip_proto proto = sips ? SIP_PROTO_TLS
                                : (proto_hint != SIP_PROTO_NONE ? proto_hint : SIP_PROTO_UDP);
    /* RFC 3263 §4.2: default port by transport */
    uint16_t defport = proto == SIP_PROTO_TLS ? 5061 : 5060;
    struct ims_addr num;
    bool numeric = ims_addr_parse(host, port ? port : defport, &num) == 0;
    if (!numeric && (host.p[0] == '[' || ims_str_chr(host, ':') >= 0))
        return IMS_EINVAL; /* brackets or colons, yet not an address */
    if (r->npending >= r->max_pending || r->destroying)
        return IMS_ELIMIT;
    struct ims_resolve_state *st = ims_calloc(1, sizeof(*st));
    if (!st)
        return IMS_ENOMEM;
    st->r = r;
    st->cb = cb;
    st->arg = arg;
    st->port = port;
    st->sips = sips;
    st->proto = proto;
    memcpy(st->host, host.p, host.len);
    st->host[host.len] = '\0';
    ims_timer_init(&st->done, done_cb, st);
    if (ims_timer_start(r->loop, &st->done, r->deadline_ms) != 0) {
        ims_free(st);
        return IMS_ELIMIT;
    }
    st->req = req;
    req->st = st;
    st->next = r->states;
    if (r->states)
        r->states->prev = st;
    r->states = st;
    r->npending++;

    if (numeric) {
        st->t[0] = (struct ims_resolve_target){ st->proto, num };
        st->nt = 1;
        finish(st); /* still answered on a later turn */
        return 0;
    }
    if (port) {
        st->look[0] = (struct lookup){ st->host, st->proto, port };
        st->nlook = 1;
        start_lookups(st);
    } else {
        static const char *const svc[] = { "_sip._udp", "_sip._tcp", "_sips._tcp" };
        size_t nq = 0;
        unsigned idx[RES_SRV_QUERIES];
        if (sips || proto_hint == SIP_PROTO_TLS) {
            idx[nq] = 2;
            st->srv_proto[nq++] = SIP_PROTO_TLS;
        } else if (proto_hint == SIP_PROTO_TCP) {
            idx[nq] = 1;
            st->srv_proto[nq++] = SIP_PROTO_TCP;
        } else if (proto_hint == SIP_PROTO_UDP) {
            idx[nq] = 0;
            st->srv_proto[nq++] = SIP_PROTO_UDP;
        } else {
            idx[nq] = 0;
            st->srv_proto[nq++] = SIP_PROTO_UDP;
            idx[nq] = 1;
            st->srv_proto[nq++] = SIP_PROTO_TCP;
        }
        st->srv_left = (unsigned)nq;
        st->outstanding += (unsigned)nq;
        for (size_t i = 0; i < nq; i++) {
            char name[RES_HOST_MAX + 16];
            snprintf(name, sizeof(name), "%s.%s", svc[idx[i]], st->host);
            st->q[i] = (struct rq){ st, (unsigned)i };
            ares_query(r->ch, name, NS_C_IN, NS_T_SRV, srv_cb, &st->q[i]);
        }
    }
    cover_new_queries(r);
    return 0;
}

void ims_resolve_cancel(struct ims_resolve_req *req)
{
    struct ims_resolve_state *st = req->st;
    if (!st)
        return;
    req->st = NULL;
    st->req = NULL;
    ims_timer_stop(st->r->loop, &st->done);
    if (st->outstanding == 0)
        state_free(st);
    /* else its queries still hold it; maybe_finish frees it */
}
