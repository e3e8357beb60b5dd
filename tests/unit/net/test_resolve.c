/* test_resolve.c - RFC 3263 resolution against a tiny DNS responder that
 * runs in the test (UDP on 127.0.0.1, answers hand-encoded from a table):
 * SRV ordering, A fallback, NXDOMAIN, timeout, cancel, /etc/hosts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "net/resolve.h"
#include "net_test.h"

/* ---- the responder ---- */

enum { T_A = 1, T_AAAA = 28, T_SRV = 33 };

struct rr {
    const char *name;
    int type;
    const char *data; /* A/AAAA: address; SRV: "prio weight port target" */
};

static const struct rr zone[] = {
    { "_sip._udp.multi.test", T_SRV, "20 0 5070 b.multi.test" },
    { "_sip._udp.multi.test", T_SRV, "10 0 5060 a.multi.test" },
    { "_sip._udp.multi.test", T_SRV, "30 0 5080 c.multi.test" },
    { "_sip._tcp.multi.test", T_SRV, "10 0 5060 a.multi.test" },
    { "a.multi.test", T_A, "10.0.0.1" },
    { "b.multi.test", T_A, "10.0.0.2" },
    { "b.multi.test", T_AAAA, "2001:db8::2" },
    { "c.multi.test", T_A, "10.0.0.3" },
    { "plain.test", T_A, "10.0.0.9" },
    { "_sips._tcp.secure.test", T_SRV, "5 10 5061 s1.secure.test" },
    { "_sips._tcp.secure.test", T_SRV, "5 10 5061 s2.secure.test" },
    { "s1.secure.test", T_A, "10.0.1.1" },
    { "s2.secure.test", T_A, "10.0.1.2" },
    { "_sip._udp.dot.test", T_SRV, "0 0 0 ." },
    { "_sip._tcp.dot.test", T_SRV, "0 0 0 ." },
    { "dot.test", T_A, "10.0.0.99" },
};

struct responder {
    int fd;
    struct ims_addr addr;
    pthread_t th;
    atomic_bool stop;
    atomic_int queries[64]; /* by type, A/AAAA/SRV folded below 64 */
};

static size_t put_name(unsigned char *out, const char *name)
{
    size_t o = 0;
    if (strcmp(name, ".") == 0) {
        out[o++] = 0;
        return o;
    }
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        out[o++] = (unsigned char)l;
        memcpy(out + o, name, l);
        o += l;
        name += l;
        if (*name == '.')
            name++;
    }
    out[o++] = 0;
    return o;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static bool name_exists(const char *qn)
{
    for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
        if (strcasecmp(zone[i].name, qn) == 0)
            return true;
    }
    return false;
}

static void answer(struct responder *rs, const unsigned char *q, size_t qlen,
                   const struct sockaddr_storage *from, socklen_t fl)
{
    if (qlen < 12 + 5)
        return;
    /* question: labels, type, class */
    char qn[256];
    size_t o = 12, n = 0;
    while (o < qlen && q[o] != 0) {
        size_t l = q[o++];
        if (o + l > qlen || n + l + 1 >= sizeof(qn))
            return;
        if (n)
            qn[n++] = '.';
        memcpy(qn + n, q + o, l);
        n += l;
        o += l;
    }
    qn[n] = '\0';
    o++; /* root */
    if (o + 4 > qlen)
        return;
    int qtype = (q[o] << 8) | q[o + 1];
    size_t qend = o + 4;
    atomic_fetch_add(&rs->queries[qtype & 63], 1);
    if (strncasecmp(qn, "silent", 6) == 0 || strstr(qn, ".silent.test"))
        return; /* never answers: timeouts */

    unsigned char out[1500];
    memcpy(out, q, qend); /* id, flags (patched below), counts, question */
    unsigned rcode = name_exists(qn) ? 0 : 3; /* NXDOMAIN */
    put16(out + 2, 0x8400 | 0x0100 | 0x0080 | rcode); /* QR AA RD RA */
    put16(out + 4, 1);
    put16(out + 8, 0);
    put16(out + 10, 0);
    size_t w = qend;
    unsigned an = 0;
    for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
        const struct rr *r = &zone[i];
        if (strcasecmp(r->name, qn) != 0 || r->type != qtype)
            continue;
        out[w++] = 0xc0; /* pointer to the question name */
        out[w++] = 12;
        put16(out + w, (unsigned)qtype);
        put16(out + w + 2, 1);
        out[w + 4] = 0;
        out[w + 5] = 0;
        out[w + 6] = 0;
        out[w + 7] = 60; /* TTL */
        size_t rdlen_at = w + 8;
        w += 10;
        size_t rd = w;
        if (qtype == T_A) {
            inet_pton(AF_INET, r->data, out + w);
            w += 4;
        } else if (qtype == T_AAAA) {
            inet_pton(AF_INET6, r->data, out + w);
            w += 16;
        } else {
            unsigned prio, weight, port;
            char target[128];
            /* test code: the table is ours */
            if (sscanf(r->data, "%u %u %u %127s", &prio, &weight, &port, target) != 4)
                continue;
            put16(out + w, prio);
            put16(out + w + 2, weight);
            put16(out + w + 4, port);
            w += 6;
            w += put_name(out + w, target);
        }
        put16(out + rdlen_at, (unsigned)(w - rd));
        an++;
    }
    put16(out + 6, an);
    (void)sendto(rs->fd, out, w, 0, (const struct sockaddr *)from, fl);
}

static void *responder_main(void *arg)
{
    struct responder *rs = arg;
    while (!atomic_load(&rs->stop)) {
        unsigned char buf[1500];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(rs->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n > 0)
            answer(rs, buf, (size_t)n, &from, fl);
    }
    return NULL;
}

static void responder_start(struct responder *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(rs->fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(rs->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(rs->fd, (struct sockaddr *)&sin, &sl), 0);
    assert_int_equal(ims_addr_set(&rs->addr, (struct sockaddr *)&sin, sl), 0);
    struct timeval tv = { 0, 50000 };
    setsockopt(rs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    atomic_init(&rs->stop, false);
    assert_int_equal(pthread_create(&rs->th, NULL, responder_main, rs), 0);
}

static void responder_stop(struct responder *rs)
{
    atomic_store(&rs->stop, true);
    pthread_join(rs->th, NULL);
    close(rs->fd);
}

/* ---- fixture ---- */

struct rfx {
    struct responder rs;
    struct ims_loop *loop;
    struct ims_resolver *r;
    struct ims_timer watchdog;
    int left; /* callbacks still expected */
};

struct one {
    struct rfx *fx;
    struct ims_resolve_req req;
    int calls;
    int err;
    struct ims_resolve_target t[IMS_RESOLVE_MAX_TARGETS];
    size_t n;
};

static void watchdog_cb(struct ims_loop *loop, struct ims_timer *t)
{
    ims_loop_stop(loop);
}

static void rfx_start(struct rfx *fx, unsigned timeout_ms, size_t max_pending)
{
    memset(fx, 0, sizeof(*fx));
    responder_start(&fx->rs);
    assert_int_equal(ims_loop_new(256, &fx->loop), 0);
    char servers[64], err[256];
    ims_addr_str(&fx->rs.addr, servers, sizeof(servers));
    struct ims_resolver_cfg cfg = { .servers = servers, .timeout_ms = timeout_ms, .tries = 1,
                                    .max_pending = max_pending };
    int rc = ims_resolver_new(fx->loop, &cfg, &fx->r, err, sizeof(err));
    if (rc)
        fail_msg("resolver: %s", err);
    ims_timer_init(&fx->watchdog, watchdog_cb, NULL);
}

static void rfx_run(struct rfx *fx, unsigned max_ms)
{
    assert_int_equal(ims_timer_start(fx->loop, &fx->watchdog, max_ms), 0);
    if (fx->left > 0)
        assert_int_equal(ims_loop_run(fx->loop), 0);
    ims_timer_stop(fx->loop, &fx->watchdog);
}

/* Runs the loop for ms regardless of callbacks. */
static void rfx_idle(struct rfx *fx, unsigned ms)
{
    assert_int_equal(ims_timer_start(fx->loop, &fx->watchdog, ms), 0);
    assert_int_equal(ims_loop_run(fx->loop), 0);
}

static void rfx_stop(struct rfx *fx)
{
    ims_resolver_free(fx->r);
    ims_loop_free(fx->loop);
    responder_stop(&fx->rs);
}

static void one_cb(void *arg, int err, const struct ims_resolve_target *t, size_t n)
{
    struct one *o = arg;
    o->calls++;
    o->err = err;
    o->n = n;
    assert_false(ims_resolve_busy(&o->req)); /* idle inside the callback */
    if (n)
        memcpy(o->t, t, n * sizeof(*t));
    if (--o->fx->left == 0)
        ims_loop_stop(o->fx->loop);
}

static int start(struct rfx *fx, struct one *o, const char *host, uint16_t port,
                 enum sip_proto hint, bool sips)
{
    memset(o, 0, sizeof(*o));
    o->fx = fx;
    int rc = ims_resolve_sip(fx->r, ims_str_cstr(host), port, hint, sips, one_cb, o, &o->req);
    if (rc == 0)
        fx->left++;
    return rc;
}

static void expect_target(const struct one *o, size_t i, enum sip_proto p, const char *addr)
{
    char buf[IMS_ADDR_STRLEN];
    assert_true(i < o->n);
    assert_int_equal(o->t[i].proto, p);
    assert_string_equal(ims_addr_str(&o->t[i].addr, buf, sizeof(buf)), addr);
}

/* ---- tests ---- */

static void test_resolve_numeric(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 500, 0);
    struct one a, b, c;
    assert_int_equal(start(&fx, &a, "127.0.0.1", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &b, "[::1]", 5070, SIP_PROTO_TCP, false), 0);
    assert_int_equal(start(&fx, &c, "::1", 0, SIP_PROTO_NONE, true), 0);
    /* callback rule: nothing ran inside ims_resolve_sip */
    assert_int_equal(a.calls + b.calls + c.calls, 0);
    assert_true(ims_resolve_busy(&a.req));
    rfx_run(&fx, 2000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
    expect_target(&a, 0, SIP_PROTO_UDP, "127.0.0.1:5060");
    expect_target(&b, 0, SIP_PROTO_TCP, "[::1]:5070");
    expect_target(&c, 0, SIP_PROTO_TLS, "[::1]:5061");
    assert_int_equal(atomic_load(&fx.rs.queries[T_SRV]) + atomic_load(&fx.rs.queries[T_A]), 0);
    rfx_stop(&fx);
}

static void test_resolve_srv_order(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 500, 0);
    struct one o;
    assert_int_equal(start(&fx, &o, "multi.test", 0, SIP_PROTO_NONE, false), 0);
    rfx_run(&fx, 3000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.n, 5);
    /* UDP by priority (10, 20, 30), then TCP */
    expect_target(&o, 0, SIP_PROTO_UDP, "10.0.0.1:5060");
    char b1[IMS_ADDR_STRLEN], b2[IMS_ADDR_STRLEN];
    ims_addr_str(&o.t[1].addr, b1, sizeof(b1));
    ims_addr_str(&o.t[2].addr, b2, sizeof(b2));
    assert_true((strcmp(b1, "10.0.0.2:5070") == 0 && strcmp(b2, "[2001:db8::2]:5070") == 0) ||
                (strcmp(b2, "10.0.0.2:5070") == 0 && strcmp(b1, "[2001:db8::2]:5070") == 0));
    assert_int_equal(o.t[1].proto, SIP_PROTO_UDP);
    expect_target(&o, 3, SIP_PROTO_UDP, "10.0.0.3:5080");
    expect_target(&o, 4, SIP_PROTO_TCP, "10.0.0.1:5060");

    /* sips: _sips._tcp only; equal priority and weight: both, either order */
    struct one s;
    assert_int_equal(start(&fx, &s, "secure.test", 0, SIP_PROTO_NONE, true), 0);
    rfx_run(&fx, 3000);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.t[0].proto, SIP_PROTO_TLS);
    assert_int_equal(s.t[1].proto, SIP_PROTO_TLS);
    assert_int_equal(ims_addr_port(&s.t[0].addr), 5061);
    assert_false(ims_addr_equal(&s.t[0].addr, &s.t[1].addr));

    /* a transport hint asks for that service only */
    int srv_before = atomic_load(&fx.rs.queries[T_SRV]);
    assert_int_equal(start(&fx, &o, "multi.test", 0, SIP_PROTO_TCP, false), 0);
    rfx_run(&fx, 3000);
    assert_int_equal(o.n, 1);
    expect_target(&o, 0, SIP_PROTO_TCP, "10.0.0.1:5060");
    assert_int_equal(atomic_load(&fx.rs.queries[T_SRV]) - srv_before, 1);
    rfx_stop(&fx);
}

static void test_resolve_a_fallback(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 500, 0);
    struct one a, b, c;
    assert_int_equal(start(&fx, &a, "plain.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &b, "plain.test", 0, SIP_PROTO_NONE, true), 0);
    rfx_run(&fx, 3000);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.n, 1);
    expect_target(&a, 0, SIP_PROTO_UDP, "10.0.0.9:5060");
    assert_int_equal(b.n, 1);
    expect_target(&b, 0, SIP_PROTO_TLS, "10.0.0.9:5061");

    /* an explicit port: A/AAAA only, no SRV (RFC 3263 §4.2) */
    int srv_before = atomic_load(&fx.rs.queries[T_SRV]);
    assert_int_equal(start(&fx, &c, "plain.test", 5099, SIP_PROTO_TCP, false), 0);
    rfx_run(&fx, 3000);
    assert_int_equal(c.n, 1);
    expect_target(&c, 0, SIP_PROTO_TCP, "10.0.0.9:5099");
    assert_int_equal(atomic_load(&fx.rs.queries[T_SRV]), srv_before);
    rfx_stop(&fx);
}

static void test_resolve_errors(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 300, 0);
    struct one nx, dot, to, to_srv;
    assert_int_equal(start(&fx, &nx, "nx.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &dot, "dot.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &to, "silent.test", 5060, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &to_srv, "silent.test", 0, SIP_PROTO_UDP, false), 0);
    rfx_run(&fx, 5000);
    assert_int_equal(nx.calls, 1);
    assert_int_equal(nx.err, IMS_ENOENT);
    assert_int_equal(nx.n, 0);
    assert_int_equal(dot.calls, 1);
    assert_int_equal(dot.err, IMS_ENOENT); /* "." = not offered, no A fallback */
    assert_int_equal(to.calls, 1);
    assert_int_equal(to.err, IMS_ETIMEDOUT);
    assert_int_equal(to_srv.calls, 1);
    assert_int_equal(to_srv.err, IMS_ETIMEDOUT);
    rfx_stop(&fx);
}

static void test_resolve_cancel(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 300, 0);
    struct one a, b, c, d;
    assert_int_equal(start(&fx, &a, "multi.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &b, "10.1.2.3", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &c, "silent.test", 5060, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &d, "plain.test", 0, SIP_PROTO_NONE, false), 0);
    ims_resolve_cancel(&a.req);
    ims_resolve_cancel(&b.req);
    ims_resolve_cancel(&b.req); /* twice: no-op */
    assert_false(ims_resolve_busy(&a.req));
    fx.left -= 2;
    rfx_idle(&fx, 50); /* c is in flight now */
    ims_resolve_cancel(&c.req);
    fx.left--;
    rfx_run(&fx, 2000); /* d completes */
    assert_int_equal(d.calls, 1);
    rfx_idle(&fx, 600); /* c's query times out meanwhile: still no callback */
    assert_int_equal(a.calls + b.calls + c.calls, 0);
    /* a cancelled handle can be used again */
    assert_int_equal(start(&fx, &a, "plain.test", 0, SIP_PROTO_NONE, false), 0);
    rfx_run(&fx, 2000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
    rfx_stop(&fx);
}

static void test_resolve_hosts_file(void **state)
{
    FILE *f = fopen("/etc/hosts", "r");
    bool has = false;
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "127.0.0.1", 9) == 0 && strstr(line, "localhost"))
            has = true;
    }
    if (f)
        fclose(f);
    if (!has) {
        fprintf(stderr, "note: /etc/hosts has no 127.0.0.1 localhost, skipped\n");
        skip();
    }
    struct rfx fx;
    rfx_start(&fx, 300, 0);
    struct one o;
    int a_before = atomic_load(&fx.rs.queries[T_A]);
    assert_int_equal(start(&fx, &o, "localhost", 5070, SIP_PROTO_NONE, false), 0);
    assert_int_equal(o.calls, 0); /* a hosts hit is answered on a later turn too */
    rfx_run(&fx, 2000);
    assert_int_equal(o.err, 0);
    bool found = false;
    for (size_t i = 0; i < o.n; i++) {
        char buf[IMS_ADDR_STRLEN];
        found |= strcmp(ims_addr_str(&o.t[i].addr, buf, sizeof(buf)), "127.0.0.1:5070") == 0;
    }
    assert_true(found);
    assert_int_equal(atomic_load(&fx.rs.queries[T_A]), a_before);
    rfx_stop(&fx);
}

/* Many lookups waiting out an unanswering server (the DNS outage a flood of
 * requests for names meets) while others are answered: every one ends
 * once, the silent ones with a timeout, whether started before, among or
 * after the answered ones (c-ares' timeouts are looked at from our timer,
 * not after every socket event). */
static void test_resolve_silent_flood(void **state)
{
    enum { N = 100 };
    struct rfx fx;
    rfx_start(&fx, 300, N + 2); /* a state is freed when c-ares ended its queries */
    static struct one silent[N], ok[3];
    for (size_t i = 0; i < N / 2; i++)
        assert_int_equal(start(&fx, &silent[i], "silent.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &ok[0], "multi.test", 0, SIP_PROTO_NONE, false), 0);
    rfx_idle(&fx, 150); /* the first half's first try is half over */
    for (size_t i = N / 2; i < N; i++)
        assert_int_equal(start(&fx, &silent[i], "silent.test", 5060, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &ok[1], "plain.test", 0, SIP_PROTO_NONE, false), 0);
    /* each silent lookup is two rounds of 300 ms tries at most (SRV, then
     * A); the requests' own safety-net deadline (2 x 300 + 2000 ms) would
     * answer them too, but only after this window: ending within it means
     * c-ares' timeouts were looked at (from our timer) */
    rfx_run(&fx, 2200);
    assert_int_equal(fx.left, 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(silent[i].calls, 1);
        assert_int_equal(silent[i].err, IMS_ETIMEDOUT);
    }
    assert_int_equal(ok[0].calls, 1);
    assert_int_equal(ok[0].err, 0);
    assert_int_equal(ok[1].calls, 1);
    expect_target(&ok[1], 0, SIP_PROTO_UDP, "10.0.0.9:5060");
    /* their states are gone: one more lookup has room, and is answered */
    assert_int_equal(start(&fx, &ok[2], "plain.test", 0, SIP_PROTO_NONE, false), 0);
    rfx_run(&fx, 2000);
    assert_int_equal(ok[2].calls, 1);
    assert_int_equal(ok[2].err, 0);
    rfx_stop(&fx);
}

static void test_resolve_limits(void **state)
{
    struct rfx fx;
    rfx_start(&fx, 300, 2);
    struct one a, b, c;
    assert_int_equal(start(&fx, &a, "silent.test", 5060, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &b, "multi.test", 0, SIP_PROTO_NONE, false), 0);
    assert_int_equal(start(&fx, &c, "plain.test", 0, SIP_PROTO_NONE, false), IMS_ELIMIT);
    /* busy handle, bad input */
    assert_int_equal(ims_resolve_sip(fx.r, IMS_S("x.test"), 0, SIP_PROTO_NONE, false, one_cb, &a,
                                     &a.req),
                     IMS_EINVAL);
    struct ims_resolve_req idle = { 0 };
    assert_int_equal(ims_resolve_sip(fx.r, IMS_S(""), 0, SIP_PROTO_NONE, false, one_cb, &a, &idle),
                     IMS_EINVAL);
    assert_int_equal(ims_resolve_sip(fx.r, IMS_S("bad host"), 0, SIP_PROTO_NONE, false, one_cb, &a,
                                     &idle),
                     IMS_EINVAL);
    assert_int_equal(ims_resolve_sip(fx.r, IMS_S("[nope]"), 0, SIP_PROTO_NONE, false, one_cb, &a,
                                     &idle),
                     IMS_EINVAL);
    assert_int_equal(ims_resolve_sip(fx.r, IMS_S("x.test"), 0, SIP_PROTO_UDP, true, one_cb, &a,
                                     &idle),
                     IMS_EINVAL);
    /* allocation failure: an error, never a callback */
    ims_resolve_cancel(&b.req);
    fx.left--;
    /* b's queries still hold its state (and a pending slot) until they
     * are answered */
    assert_int_equal(start(&fx, &c, "plain.test", 0, SIP_PROTO_NONE, false), IMS_ELIMIT);
    rfx_idle(&fx, 100);
    ims_alloc_fail_at(1, 0);
    assert_int_equal(start(&fx, &c, "plain.test", 0, SIP_PROTO_NONE, false), IMS_ENOMEM);
    ims_alloc_fail_at(0, 0);
    rfx_idle(&fx, 50);
    assert_int_equal(b.calls + c.calls, 0);
    /* freeing the resolver with a request in flight: no callback, no leak */
    rfx_stop(&fx);
    assert_int_equal(a.calls, 0);
}

static void test_resolve_bad_servers(void **state)
{
    struct ims_loop *loop;
    struct ims_resolver *r;
    char err[256];
    assert_int_equal(ims_loop_new(16, &loop), 0);
    struct ims_resolver_cfg cfg = { .servers = "not an address" };
    assert_int_equal(ims_resolver_new(loop, &cfg, &r, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "not an address"));
    ims_alloc_fail_at(1, 0);
    cfg.servers = NULL;
    assert_int_equal(ims_resolver_new(loop, &cfg, &r, err, sizeof(err)), IMS_ENOMEM);
    ims_alloc_fail_at(0, 0);
    assert_int_equal(ims_resolver_new(loop, &cfg, &r, err, sizeof(err)), 0);
    ims_resolver_free(r);
    ims_loop_free(loop);
}

int run_resolve_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_numeric),
        cmocka_unit_test(test_resolve_srv_order),
        cmocka_unit_test(test_resolve_a_fallback),
        cmocka_unit_test(test_resolve_errors),
        cmocka_unit_test(test_resolve_cancel),
        cmocka_unit_test(test_resolve_hosts_file),
        cmocka_unit_test(test_resolve_silent_flood),
        cmocka_unit_test(test_resolve_limits),
        cmocka_unit_test(test_resolve_bad_servers),
    };
    return cmocka_run_group_tests_name("net_resolve", tests, NULL, NULL);
}
