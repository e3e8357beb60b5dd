/* test_transport.c - UDP and TCP transports on loopback: echo, framing at
 * every split point, CRLF keep-alives, caps, idle timeout, connection
 * reuse, outgoing connections, two workers, allocation failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "net_test.h"

struct fixture {
    struct sip_listen_cfg listen[4];
    struct sip_tp_cfg cfg;
    struct sip_tp_shared *sh;
    struct worker w[2];
    size_t nw;
    struct rxlog log;
};

static void fx_cfg(struct fixture *fx, bool v6)
{
    memset(fx, 0, sizeof(*fx));
    size_t n = 0;
    fx->listen[n].proto = SIP_PROTO_UDP;
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:0"), 0, &fx->listen[n++].addr), 0);
    fx->listen[n].proto = SIP_PROTO_TCP;
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:0"), 0, &fx->listen[n++].addr), 0);
    if (v6) {
        fx->listen[n].proto = SIP_PROTO_UDP;
        assert_int_equal(ims_addr_parse(IMS_S("[::1]:0"), 0, &fx->listen[n++].addr), 0);
        fx->listen[n].proto = SIP_PROTO_TCP;
        assert_int_equal(ims_addr_parse(IMS_S("[::1]:0"), 0, &fx->listen[n++].addr), 0);
    }
    fx->cfg.listen = fx->listen;
    fx->cfg.nlisten = n;
    fx->cfg.max_msg = 4096;
    fx->cfg.max_conns = 64;
    fx->cfg.max_conns_per_src = 16;
    fx->cfg.idle_timeout_ms = 10000;
    rxlog_init(&fx->log);
}

static void fx_start(struct fixture *fx, size_t nworkers)
{
    char err[256];
    assert_int_equal(ims_sip_tp_shared_new(&fx->cfg, &fx->sh, err, sizeof(err)), 0);
    for (size_t i = 0; i < nworkers; i++) {
        int rc = worker_start(&fx->w[i], (unsigned)i, fx->sh, &fx->cfg, &fx->log, err, sizeof(err));
        if (rc)
            fail_msg("worker_start: %s (%s)", ims_strerror(rc), err);
        fx->nw++;
    }
}

static void fx_stop(struct fixture *fx)
{
    workers_stop(fx->w, fx->nw);
    ims_sip_tp_shared_free(fx->sh);
    rxlog_free(&fx->log);
}

static struct ims_addr local_of(struct fixture *fx, enum sip_proto p, int fam)
{
    struct ims_addr a;
    assert_int_equal(w_local(&fx->w[0], p, fam, &a), 0);
    return a;
}

static struct sip_tp_stats stats_of(struct worker *w)
{
    struct sip_tp_stats st;
    w_stats(w, &st);
    return st;
}

/* ---- UDP ---- */

static void udp_echo(struct fixture *fx, int fam)
{
    struct ims_addr srv = local_of(fx, SIP_PROTO_UDP, fam);
    int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char msg[1024], back[2048];
    size_t len = mk_msg(msg, sizeof(msg), 1, 20);
    size_t before = rxlog_count(&fx->log);
    assert_int_equal(sendto(fd, msg, len, 0, (struct sockaddr *)&srv.ss, srv.len), (ssize_t)len);
    ssize_t n = recv(fd, back, sizeof(back), 0);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(back, msg, len);
    assert_true(rxlog_wait(&fx->log, before + 1, 2000));
    struct rx_rec r = rxlog_get(&fx->log, before);
    assert_int_equal(r.proto, SIP_PROTO_UDP);
    assert_int_equal(r.conn_id, 0);
    assert_false(r.has_cn);
    /* the kernel's receive timestamp gives the queueing delay (overload) */
    assert_true(r.queue_ms >= 0 && r.queue_ms < 2000);
    assert_false(r.from_self); /* from a socket: the overload control judges it */
    assert_true(ims_addr_equal(&r.local, &srv));
    struct sockaddr_storage me;
    socklen_t ml = sizeof(me);
    struct ims_addr mine;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    assert_int_equal(ims_addr_set(&mine, (struct sockaddr *)&me, ml), 0);
    /* the client socket is bound to the wildcard: compare the port */
    assert_int_equal(ims_addr_port(&r.src), ims_addr_port(&mine));
    assert_int_equal(ims_addr_family(&r.src), fam);
    close(fd);
}

static void test_udp_echo(void **state)
{
    struct fixture fx;
    bool v6 = ipv6_ok();
    fx_cfg(&fx, v6);
    fx_start(&fx, 1);
    fx.w[0].echo = true;
    udp_echo(&fx, AF_INET);
    if (v6)
        udp_echo(&fx, AF_INET6);
    else
        fprintf(stderr, "note: no IPv6 on this kernel, ::1 skipped\n");

    /* a datagram larger than max_msg is dropped and counted; a CRLF
     * keep-alive is ignored */
    struct ims_addr srv = local_of(&fx, SIP_PROTO_UDP, AF_INET);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char *big = malloc(fx.cfg.max_msg + 1);
    assert_non_null(big);
    memset(big, 'x', fx.cfg.max_msg + 1);
    size_t before = rxlog_count(&fx.log);
    assert_true(sendto(fd, big, fx.cfg.max_msg + 1, 0, (struct sockaddr *)&srv.ss, srv.len) > 0);
    assert_true(sendto(fd, "\r\n\r\n", 4, 0, (struct sockaddr *)&srv.ss, srv.len) > 0);
    /* exactly max_msg is fine */
    char msg[8192];
    size_t hl = mk_msg(msg, sizeof(msg), 2, 1000); /* same Content-Length width */
    size_t len = mk_msg(msg, sizeof(msg), 2, fx.cfg.max_msg - (hl - 1000));
    assert_int_equal(len, fx.cfg.max_msg);
    assert_true(sendto(fd, msg, len, 0, (struct sockaddr *)&srv.ss, srv.len) > 0);
    assert_true(rxlog_wait(&fx.log, before + 1, 2000));
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(rx_dropped), 1, 2000));
    sleep_ms(50);
    assert_int_equal(rxlog_count(&fx.log), before + 1);
    assert_int_equal(rxlog_get(&fx.log, before).len, fx.cfg.max_msg);
    free(big);
    close(fd);

    /* no listener of that family, or no destination */
    struct ims_addr v6dst;
    assert_int_equal(ims_addr_parse(IMS_S("[::1]:5060"), 0, &v6dst), 0);
    if (!v6)
        assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &v6dst, 0, "x", 1), IMS_ENOENT);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, NULL, 0, "x", 1), IMS_ENOENT);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_NONE, &v6dst, 0, "x", 1), IMS_EINVAL);
    fx_stop(&fx);
}

/* ---- UDP to our own listeners (udp_local.c) ---- */

static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static struct ims_addr addr_of(const char *host, uint16_t port)
{
    char s[64];
    snprintf(s, sizeof(s), "%s:%u", host, port);
    struct ims_addr a;
    assert_int_equal(ims_addr_parse(ims_str_cstr(s), 0, &a), 0);
    return a;
}

/* Listeners A (127.0.0.1), B (127.0.0.1, another port), C (0.0.0.0). */
static void local_cfg(struct fixture *fx, struct ims_addr *a, struct ims_addr *b,
                      struct ims_addr *c)
{
    fx_cfg(fx, false);
    *a = addr_of("127.0.0.1", free_udp_port());
    *b = addr_of("127.0.0.1", free_udp_port());
    *c = addr_of("0.0.0.0", free_udp_port());
    fx->listen[0] = (struct sip_listen_cfg){ SIP_PROTO_UDP, *a };
    fx->listen[1] = (struct sip_listen_cfg){ SIP_PROTO_UDP, *b };
    fx->listen[2] = (struct sip_listen_cfg){ SIP_PROTO_UDP, *c };
    fx->cfg.nlisten = 3;
}

struct inproc_args {
    enum sip_proto proto;
    const struct ims_addr *dst;
    bool yes;
};

static void inproc_fn(struct worker *w, void *arg)
{
    struct inproc_args *a = arg;
    a->yes = ims_sip_tp_in_process(w->tp, a->proto, a->dst);
}

static bool w_in_process(struct worker *w, enum sip_proto proto, const struct ims_addr *dst)
{
    struct inproc_args a = { proto, dst, false };
    worker_call(w, inproc_fn, &a);
    return a.yes;
}

static void test_udp_local(void **state)
{
    struct fixture fx;
    struct ims_addr a, b, c;
    local_cfg(&fx, &a, &b, &c);
    fx_start(&fx, 1);
    char msg[1024];
    size_t len = mk_msg(msg, sizeof(msg), 1, 20);

    /* what the transaction layer is told (ims_sip_tp_in_process): exactly
     * the sends below that are handed over */
    assert_true(w_in_process(&fx.w[0], SIP_PROTO_UDP, &b));
    assert_true(w_in_process(&fx.w[0], SIP_PROTO_UDP, &a));
    struct ims_addr c_lo = addr_of("127.0.0.2", ims_addr_port(&c));
    assert_true(w_in_process(&fx.w[0], SIP_PROTO_UDP, &c_lo));
    assert_false(w_in_process(&fx.w[0], SIP_PROTO_TCP, &b));
    struct ims_addr other = addr_of("127.0.0.1", free_udp_port());
    assert_false(w_in_process(&fx.w[0], SIP_PROTO_UDP, &other));

    /* A -> B: handed over in-process, seen as the kernel would show it */
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &b, 0, msg, len), 0);
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_int_equal(r.proto, SIP_PROTO_UDP);
    assert_true(ims_addr_equal(&r.src, &a)); /* sent from the first UDP listener */
    assert_true(ims_addr_equal(&r.local, &b));
    assert_int_equal(r.queue_ms, 0);
    assert_true(r.from_self); /* a hop between our roles: never refused for overload */
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, msg, len);
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.local_msgs, 1);
    assert_int_equal(st.tx_msgs, 1);
    assert_int_equal(st.rx_msgs, 1);

    /* to a loopback address on the wildcard listener's port: C gets it,
     * the local address is the one it was sent to (as IP_PKTINFO tells),
     * and the source is A's own address */
    struct ims_addr c2 = addr_of("127.0.0.2", ims_addr_port(&c));
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &c2, 0, msg, len), 0);
    assert_true(rxlog_wait(&fx.log, 2, 2000));
    r = rxlog_get(&fx.log, 1);
    assert_true(ims_addr_equal(&r.local, &c2));
    assert_true(ims_addr_equal(&r.src, &a));
    assert_int_equal(stats_of(&fx.w[0]).local_msgs, 2);

    /* too big for max_msg: dropped, as the kernel path would */
    char *big = malloc(fx.cfg.max_msg + 1);
    assert_non_null(big);
    memset(big, 'x', fx.cfg.max_msg + 1);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &b, 0, big, fx.cfg.max_msg + 1), IMS_ELIMIT);
    free(big);

    /* not ours: a real datagram to a real socket */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct ims_addr ext;
    assert_int_equal(ims_addr_set(&ext, (struct sockaddr *)&sin, sl), 0);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &ext, 0, msg, len), 0);
    char back[2048];
    assert_int_equal(recv(fd, back, sizeof(back), 0), (ssize_t)len);
    assert_int_equal(stats_of(&fx.w[0]).local_msgs, 2);
    close(fd);
    fx_stop(&fx);

    /* local_delivery = no: the same send goes through the kernel */
    local_cfg(&fx, &a, &b, &c);
    fx.cfg.no_local_delivery = true;
    fx_start(&fx, 1);
    assert_false(w_in_process(&fx.w[0], SIP_PROTO_UDP, &b));
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_UDP, &b, 0, msg, len), 0);
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    r = rxlog_get(&fx.log, 0);
    assert_true(ims_addr_equal(&r.src, &a));
    assert_true(ims_addr_equal(&r.local, &b));
    assert_true(r.queue_ms >= 0);
    assert_int_equal(stats_of(&fx.w[0]).local_msgs, 0);
    fx_stop(&fx);
}

/* Sends one datagram from a fresh socket to dst and returns the address
 * the echo came back from. */
static struct ims_addr echo_from(const struct ims_addr *dst, const char *msg, size_t len)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_true(sendto(fd, msg, len, 0, (const struct sockaddr *)&dst->ss, dst->len) > 0);
    char back[2048];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    assert_int_equal(recvfrom(fd, back, sizeof(back), 0, (struct sockaddr *)&from, &fl),
                     (ssize_t)len);
    close(fd);
    struct ims_addr a;
    assert_int_equal(ims_addr_set(&a, (struct sockaddr *)&from, fl), 0);
    return a;
}

/* RFC 3581 §4: a response leaves from the address and port its request
 * came in at (a symmetric NAT drops anything else), whichever listener is
 * first and whatever address the kernel would pick behind a wildcard bind. */
static void test_udp_reply_address(void **state)
{
    struct fixture fx;
    struct ims_addr a, b, c;
    local_cfg(&fx, &a, &b, &c);
    fx_start(&fx, 1);
    fx.w[0].echo = true; /* echoes from where the message came in (rx.local) */
    char msg[1024];
    size_t len = mk_msg(msg, sizeof(msg), 1, 20);
    struct ims_addr got = echo_from(&b, msg, len);
    assert_true(ims_addr_equal(&got, &b));
    got = echo_from(&a, msg, len);
    assert_true(ims_addr_equal(&got, &a));
    /* C is bound to 0.0.0.0: to 127.0.0.2 the kernel would answer from
     * 127.0.0.1, the client's own address */
    struct ims_addr c_lo = addr_of("127.0.0.1", ims_addr_port(&c));
    struct ims_addr c_lo2 = addr_of("127.0.0.2", ims_addr_port(&c));
    got = echo_from(&c_lo, msg, len);
    assert_true(ims_addr_equal(&got, &c_lo));
    size_t n1 = rxlog_count(&fx.log);
    got = echo_from(&c_lo2, msg, len);
    assert_true(ims_addr_equal(&got, &c_lo2));
    /* and the receiver was told the address it was sent to */
    assert_true(rxlog_wait(&fx.log, n1 + 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, n1);
    assert_true(ims_addr_equal(&r.local, &c_lo2));
    fx.w[0].echo = false;

    /* in-process: the receiver sees the listener asked for as the source;
     * a port we do not listen on falls back to the first listener */
    size_t n0 = rxlog_count(&fx.log);
    assert_int_equal(w_send_udp_from(&fx.w[0], &a, ims_addr_port(&b), msg, len), 0);
    assert_true(rxlog_wait(&fx.log, n0 + 1, 2000));
    r = rxlog_get(&fx.log, n0);
    assert_true(ims_addr_equal(&r.src, &b));
    assert_int_equal(w_send_udp_from(&fx.w[0], &b, free_udp_port(), msg, len), 0);
    assert_true(rxlog_wait(&fx.log, n0 + 2, 2000));
    r = rxlog_get(&fx.log, n0 + 1);
    assert_true(ims_addr_equal(&r.src, &a));
    fx_stop(&fx);
}

/* ---- TCP framing ---- */

static void expect_msgs(struct fixture *fx, size_t from, const char *msg, size_t len, size_t count)
{
    assert_true(rxlog_wait(&fx->log, from + count, 5000));
    for (size_t i = 0; i < count; i++) {
        struct rx_rec r = rxlog_get(&fx->log, from + i);
        assert_int_equal(r.proto, SIP_PROTO_TCP);
        assert_int_equal(r.queue_ms, -1); /* no receive timestamps on streams */
        assert_int_equal(r.len, len);
        assert_memory_equal(r.data, msg, len);
        assert_true(r.conn_id != 0);
    }
}

static void tcp_split(struct fixture *fx, int fam)
{
    struct ims_addr srv = local_of(fx, SIP_PROTO_TCP, fam);
    int fd = tcp_client(&srv);
    assert_true(fd >= 0);
    char msg[1024];
    size_t len = mk_msg(msg, sizeof(msg), 7, 33);

    /* every split point: first k bytes, a pause so they arrive alone, rest */
    size_t base = rxlog_count(&fx->log);
    for (size_t k = 1; k < len; k++) {
        assert_true(send_all(fd, msg, k));
        if (k % 8 == 0)
            sleep_ms(1);
        assert_true(send_all(fd, msg + k, len - k));
    }
    expect_msgs(fx, base, msg, len, len - 1);

    /* byte by byte */
    base = rxlog_count(&fx->log);
    for (size_t k = 0; k < len; k++) {
        assert_true(send_all(fd, msg + k, 1));
        if (k % 16 == 0)
            sleep_ms(1);
    }
    expect_msgs(fx, base, msg, len, 1);

    /* several messages in one segment, with CRLFs between */
    char many[8192];
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        memcpy(many + off, msg, len);
        off += len;
        if (i == 2) {
            memcpy(many + off, "\r\n", 2);
            off += 2;
        }
    }
    base = rxlog_count(&fx->log);
    assert_true(send_all(fd, many, off));
    expect_msgs(fx, base, msg, len, 5);
    /* all on one connection */
    uint64_t id = rxlog_get(&fx->log, base).conn_id;
    for (size_t i = 1; i < 5; i++)
        assert_true(rxlog_get(&fx->log, base + i).conn_id == id);
    close(fd);
}

static void test_tcp_framing(void **state)
{
    struct fixture fx;
    bool v6 = ipv6_ok();
    fx_cfg(&fx, v6);
    fx_start(&fx, 1);
    tcp_split(&fx, AF_INET);
    if (v6)
        tcp_split(&fx, AF_INET6);
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.framing_errors, 0);
    fx_stop(&fx);
}

static void test_tcp_crlf_ping(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    int fd = tcp_client(&srv);
    assert_true(fd >= 0);
    char pong[2];
    /* RFC 5626 §4.4.1: "\r\n\r\n" ping, "\r\n" pong */
    assert_true(send_all(fd, "\r\n\r\n", 4));
    assert_true(recv_exact(fd, pong, 2));
    assert_memory_equal(pong, "\r\n", 2);
    /* split across segments */
    assert_true(send_all(fd, "\r\n", 2));
    sleep_ms(20);
    assert_true(send_all(fd, "\r\n", 2));
    assert_true(recv_exact(fd, pong, 2));
    assert_memory_equal(pong, "\r\n", 2);
    /* a ping followed by a message in the same segment */
    char buf[2048];
    memcpy(buf, "\r\n\r\n", 4);
    size_t len = mk_msg(buf + 4, sizeof(buf) - 4, 3, 5);
    assert_true(send_all(fd, buf, len + 4));
    assert_true(recv_exact(fd, pong, 2));
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, buf + 4, len);
    close(fd);
    fx_stop(&fx);
}

static void test_tcp_oversize_closes(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx.cfg.max_msg = 1024;
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    char msg[4096];

    /* Content-Length takes it past max_msg */
    int fd = tcp_client(&srv);
    assert_true(fd >= 0);
    size_t len = mk_msg(msg, sizeof(msg), 1, 2000);
    assert_true(send_all(fd, msg, 400)); /* just the head */
    assert_true(recv_eof(fd));
    close(fd);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(framing_errors), 1, 2000));

    /* a head that never ends */
    fd = tcp_client(&srv);
    assert_true(fd >= 0);
    memset(msg, 'A', sizeof(msg));
    memcpy(msg, "OPTIONS sip:x SIP/2.0\r\nX: ", 26);
    (void)send_all(fd, msg, sizeof(msg)); /* may fail once the server closed */
    assert_true(recv_eof(fd));
    close(fd);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(framing_errors), 2, 2000));

    /* no Content-Length on a stream */
    fd = tcp_client(&srv);
    assert_true(fd >= 0);
    const char *nocl = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n";
    assert_true(send_all(fd, nocl, strlen(nocl)));
    assert_true(recv_eof(fd));
    close(fd);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(framing_errors), 3, 2000));
    assert_int_equal(rxlog_count(&fx.log), 0);
    (void)len;
    fx_stop(&fx);
}

/* ---- caps and timeouts ---- */

static void test_tcp_conn_caps(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx.cfg.max_conns_per_src = 2;
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    int a = tcp_client(&srv), b = tcp_client(&srv);
    assert_true(a >= 0 && b >= 0);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 2, 2000));
    int c = tcp_client(&srv);
    assert_true(c >= 0);          /* the kernel accepted it ... */
    assert_true(recv_eof(c));     /* ... and we closed it */
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_refused), 1, 2000));
    char msg[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 0);
    assert_true(send_all(a, msg, len));
    assert_true(send_all(b, msg, len));
    assert_true(rxlog_wait(&fx.log, 2, 2000));
    /* closing one makes room again */
    close(a);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 1, 2000));
    int d = tcp_client(&srv);
    assert_true(d >= 0);
    assert_true(send_all(d, msg, len));
    assert_true(rxlog_wait(&fx.log, 3, 2000));
    close(b);
    close(c);
    close(d);
    fx_stop(&fx);

    /* total cap */
    fx_cfg(&fx, false);
    fx.cfg.max_conns = 2;
    fx_start(&fx, 1);
    srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    a = tcp_client(&srv);
    b = tcp_client(&srv);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 2, 2000));
    c = tcp_client(&srv);
    assert_true(recv_eof(c));
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_refused), 1, 2000));
    /* an outgoing connection needs a slot too */
    struct ims_addr dst;
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:9"), 0, &dst), 0);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, msg, len), IMS_ELIMIT);
    close(a);
    close(b);
    close(c);
    fx_stop(&fx);
}

static void test_tcp_idle_timeout(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx.cfg.idle_timeout_ms = 500;
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    char msg[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 0);

    /* traffic keeps it open past the timeout */
    int a = tcp_client(&srv);
    assert_true(a >= 0);
    for (int i = 0; i < 6; i++) {
        assert_true(send_all(a, msg, len));
        sleep_ms(100);
    }
    assert_true(rxlog_wait(&fx.log, 6, 2000));
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.conns_idle_closed, 0);
    assert_int_equal(st.conns_current, 1);
    /* then silence closes it */
    assert_true(recv_eof(a));
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_idle_closed), 1, 2000));
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 2000));
    close(a);
    fx_stop(&fx);
}

/* ---- reuse and outgoing ---- */

static void test_tcp_reuse_accepted(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    int fd = tcp_client(&srv);
    assert_true(fd >= 0);
    char msg[512], back[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 10);
    assert_true(send_all(fd, msg, len));
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, 0);

    /* the connection is open (an RFC 5626 flow lives as long as it), on TCP only */
    assert_true(w_conn_open(&fx.w[0], SIP_PROTO_TCP, &r.src));
    assert_false(w_conn_open(&fx.w[0], SIP_PROTO_TLS, &r.src));
    assert_false(w_conn_open(&fx.w[0], SIP_PROTO_UDP, &r.src));
    /* by source address only: RFC 3261 §18.2.2 */
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, &r.src, 0, "SIP/2.0 200 OK\r\n\r\n", 19), 0);
    assert_true(recv_exact(fd, back, 19));
    assert_memory_equal(back, "SIP/2.0 200 OK\r\n\r\n", 19);
    /* by conn_id only */
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, NULL, r.conn_id, msg, len), 0);
    assert_true(recv_exact(fd, back, len));
    assert_memory_equal(back, msg, len);
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.conns_open, 1);
    assert_int_equal(st.tx_msgs, 2);

    /* a stale conn_id without a destination has nowhere to go */
    close(fd);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 2000));
    assert_false(w_conn_open(&fx.w[0], SIP_PROTO_TCP, &r.src));
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, NULL, r.conn_id, msg, len), IMS_ENOENT);
    fx_stop(&fx);
}

static int plain_listener(struct ims_addr *out)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
    assert_int_equal(ims_addr_set(out, (struct sockaddr *)&sin, sl), 0);
    return ls;
}

static void test_tcp_outgoing(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 1);
    struct ims_addr dst;
    int ls = plain_listener(&dst);
    char m1[512], m2[512], got[1024];
    size_t l1 = mk_msg(m1, sizeof(m1), 1, 3), l2 = mk_msg(m2, sizeof(m2), 2, 4);
    /* two sends before the connection is up: queued, in order, one conn */
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, m1, l1), 0);
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, m2, l2), 0);
    int peer = accept(ls, NULL, NULL);
    assert_true(peer >= 0);
    struct timeval tv = { 3, 0 };
    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_true(recv_exact(peer, got, l1 + l2));
    assert_memory_equal(got, m1, l1);
    assert_memory_equal(got + l1, m2, l2);
    /* the peer answers on the same connection */
    assert_true(send_all(peer, m2, l2));
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    struct rx_rec r = rxlog_get(&fx.log, 0);
    assert_true(ims_addr_equal(&r.src, &dst));
    assert_int_equal(r.local.ss.ss_family, AF_INET);
    assert_true(ims_addr_port(&r.local) != 0);
    /* and a third send reuses it */
    assert_int_equal(w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, m1, l1), 0);
    assert_true(recv_exact(peer, got, l1));
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.conns_open, 1);
    close(peer);
    close(ls);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 3000)); /* EOF seen */

    /* a refused connect: either connect() says so at once, or the send was
     * queued and the failure is counted */
    int rc = w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, m1, l1);
    assert_true(rc == 0 || rc == IMS_EIO);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 3000));
    st = stats_of(&fx.w[0]);
    assert_true(rc != 0 || st.conn_errors >= 1);
    fx_stop(&fx);
}

static void test_tcp_wqueue_cap(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx.cfg.max_msg = 1024;
    fx.cfg.max_wqueue = 4096;
    fx_start(&fx, 1);
    struct ims_addr dst;
    int ls = plain_listener(&dst); /* never accepts or reads */
    char msg[1024];
    size_t len = mk_msg(msg, sizeof(msg), 1, 1024 - 300);
    /* Nobody reads: once the kernel's buffers are full, the queue fills
     * up to its cap and the next send is refused, whole. */
    int rc = 0, sent = 0;
    while (sent < 200000 && (rc = w_send(&fx.w[0], SIP_PROTO_TCP, &dst, 0, msg, len)) == 0)
        sent++;
    assert_int_equal(rc, IMS_ELIMIT);
    assert_true(sent >= (int)(4096 / len));
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.tx_msgs, (uint64_t)sent);
    assert_int_equal(st.conns_current, 1);
    close(ls);
    fx_stop(&fx);
}

/* ---- two workers ---- */

static void test_two_workers(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 2);
    struct ims_addr a0, a1, u0, u1;
    assert_int_equal(w_local(&fx.w[0], SIP_PROTO_TCP, AF_INET, &a0), 0);
    assert_int_equal(w_local(&fx.w[1], SIP_PROTO_TCP, AF_INET, &a1), 0);
    assert_int_equal(w_local(&fx.w[0], SIP_PROTO_UDP, AF_INET, &u0), 0);
    assert_int_equal(w_local(&fx.w[1], SIP_PROTO_UDP, AF_INET, &u1), 0);
    assert_true(ims_addr_equal(&a0, &a1)); /* SO_REUSEPORT: one port */
    assert_true(ims_addr_equal(&u0, &u1));

    /* several clients: the kernel spreads them; each gets answers sent by
     * the *other* worker, by conn_id and by address */
    char msg[512], back[512];
    size_t len = mk_msg(msg, sizeof(msg), 9, 1);
    int seen[2] = { 0, 0 };
    for (int i = 0; i < 8; i++) {
        int fd = tcp_client(&a0);
        assert_true(fd >= 0);
        size_t base = rxlog_count(&fx.log);
        assert_true(send_all(fd, msg, len));
        assert_true(rxlog_wait(&fx.log, base + 1, 2000));
        struct rx_rec r = rxlog_get(&fx.log, base);
        assert_int_equal(r.conn_id >> 56, r.worker);
        seen[r.worker]++;
        struct worker *other = &fx.w[1 - r.worker];
        /* the other worker sees it open too (the shared directory) */
        assert_true(w_conn_open(other, SIP_PROTO_TCP, &r.src));
        assert_int_equal(w_send(other, SIP_PROTO_TCP, NULL, r.conn_id, msg, len), 0);
        assert_true(recv_exact(fd, back, len));
        assert_memory_equal(back, msg, len);
        assert_int_equal(w_send(other, SIP_PROTO_TCP, &r.src, 0, msg, len), 0);
        assert_true(recv_exact(fd, back, len));
        close(fd);
    }
    /* nobody opened an outgoing connection to reach a client */
    struct sip_tp_stats s0 = stats_of(&fx.w[0]), s1 = stats_of(&fx.w[1]);
    assert_int_equal(s0.conns_open + s1.conns_open, 8);
    assert_int_equal(s0.tx_msgs + s1.tx_msgs, 16);
    fprintf(stderr, "note: worker0 accepted %d, worker1 %d\n", seen[0], seen[1]);
    fx_stop(&fx);
}

/* UDP requests from ONE flow spread over two workers by Call-ID
 * (udp_spread.c): every Call-ID always on the same worker, both workers
 * used, compact form too; responses stay where the kernel put them. */
static int spread_send(int fd, const struct ims_addr *dst, const char *msg, size_t len)
{
    return sendto(fd, msg, len, 0, (const struct sockaddr *)&dst->ss, dst->len) == (ssize_t)len;
}

/* Two workers spreading by Call-ID (max_bytes 0: the default bound); the
 * socket to send from, one flow. */
static int spread_start(struct fixture *fx, size_t max_bytes, struct ims_addr *srv)
{
    fx_cfg(fx, false);
    fx->cfg.spread_workers = 2;
    fx->cfg.spread_max_bytes = max_bytes;
    fx_start(fx, 2);
    *srv = local_of(fx, SIP_PROTO_UDP, AF_INET);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

static void test_udp_spread(void **state)
{
    struct fixture fx;
    struct ims_addr srv;
    int fd = spread_start(&fx, 0, &srv);
    enum { CALLS = 32 };
    char msg[1024];
    int worker_of[CALLS];
    int per_worker[2] = { 0, 0 };
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < CALLS; i++) {
            size_t len = mk_msg(msg, sizeof(msg), i, 10);
            if (round == 1 && i % 2) { /* the compact form, same value */
                char *h = strstr(msg, "Call-ID: ");
                assert_non_null(h);
                memmove(h + 3, h + 9, len - (size_t)(h + 9 - msg) + 1);
                memcpy(h, "i :", 3);
                len -= 6;
            }
            size_t base = rxlog_count(&fx.log);
            assert_true(spread_send(fd, &srv, msg, len));
            assert_true(rxlog_wait(&fx.log, base + 1, 2000));
            struct rx_rec r = rxlog_get(&fx.log, base);
            assert_int_equal(r.len, len);
            assert_memory_equal(r.data, msg, len);
            assert_int_equal(r.proto, SIP_PROTO_UDP);
            assert_true(r.queue_ms >= 0);
            if (round == 0) {
                worker_of[i] = (int)r.worker;
                per_worker[r.worker]++;
            } else {
                assert_int_equal((int)r.worker, worker_of[i]); /* same Call-ID, same worker */
            }
        }
    }
    assert_true(per_worker[0] > 0 && per_worker[1] > 0);
    struct sip_tp_stats s0 = stats_of(&fx.w[0]), s1 = stats_of(&fx.w[1]);
    assert_int_equal(s0.rx_msgs + s1.rx_msgs, 2 * CALLS);
    assert_true(s0.spread_out + s1.spread_out > 0);
    uint64_t spread_before = s0.spread_out + s1.spread_out;

    /* responses are not spread: one flow, one worker */
#define RESP                                                                                       \
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"                     \
    "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: %d@x\r\n"                         \
    "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    int resp_worker = -1;
    for (int i = 0; i < 8; i++) {
        size_t len = (size_t)snprintf(msg, sizeof(msg), RESP, i);
        size_t base = rxlog_count(&fx.log);
        assert_true(spread_send(fd, &srv, msg, len));
        assert_true(rxlog_wait(&fx.log, base + 1, 2000));
        struct rx_rec r = rxlog_get(&fx.log, base);
        if (resp_worker < 0)
            resp_worker = (int)r.worker;
        assert_int_equal((int)r.worker, resp_worker);
    }
    s0 = stats_of(&fx.w[0]);
    s1 = stats_of(&fx.w[1]);
    assert_int_equal(s0.spread_out + s1.spread_out, spread_before);
    close(fd);
    fx_stop(&fx);
}

/* REGISTER i from one flow: vias is the Via header block. */
static size_t mk_register(char *out, size_t outsz, int i, const char *vias)
{
    int n = snprintf(out, outsz,
                     "REGISTER sip:ims.example SIP/2.0\r\n%s"
                     "Max-Forwards: 70\r\nFrom: <sip:u%d@ims.example>;tag=r%d\r\n"
                     "To: <sip:u%d@ims.example>\r\nCall-ID: reg-%d@ue\r\n"
                     "CSeq: 1 REGISTER\r\nContact: <sip:u@127.0.0.1:5070>\r\n"
                     "Content-Length: 0\r\n\r\n",
                     vias, i, i, i, i);
    assert_true(n > 0 && (size_t)n < outsz);
    return (size_t)n;
}

/* The worker that got one REGISTER of each of n Call-IDs, sent from
 * one flow with the Via block vias. */
static void register_workers(struct fixture *fx, int fd, const struct ims_addr *srv,
                             const char *vias, int n, int *worker_of)
{
    char msg[1024];
    for (int i = 0; i < n; i++) {
        size_t len = mk_register(msg, sizeof(msg), i, vias);
        size_t base = rxlog_count(&fx->log);
        assert_true(spread_send(fd, srv, msg, len));
        assert_true(rxlog_wait(&fx->log, base + 1, 2000));
        struct rx_rec r = rxlog_get(&fx->log, base);
        assert_int_equal(r.len, len);
        worker_of[i] = (int)r.worker;
    }
}

/* A REGISTER straight from its UE (one Via) stays on the worker the kernel
 * picked by flow; one that came through a proxy (two Vias, as two lines,
 * as one line with a comma, or in the compact form) is spread by Call-ID
 * like any other request. */
static void test_udp_spread_register(void **state)
{
    struct fixture fx;
    struct ims_addr srv;
    int fd = spread_start(&fx, 0, &srv);
    enum { CALLS = 32 };
    int ue[CALLS], proxied[CALLS], comma[CALLS], compact[CALLS];
    register_workers(&fx, fd, &srv, "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-u\r\n", CALLS,
                     ue);
    struct sip_tp_stats s0 = stats_of(&fx.w[0]), s1 = stats_of(&fx.w[1]);
    assert_int_equal(s0.spread_out + s1.spread_out, 0);
    for (int i = 1; i < CALLS; i++)
        assert_int_equal(ue[i], ue[0]); /* the reader of this flow took them all */

    register_workers(&fx, fd, &srv,
                     "Via: SIP/2.0/UDP pcscf.example;branch=z9hG4bK-p\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-u\r\n",
                     CALLS, proxied);
    int per_worker[2] = { 0, 0 };
    for (int i = 0; i < CALLS; i++)
        per_worker[proxied[i]]++;
    assert_true(per_worker[0] > 0 && per_worker[1] > 0);
    s0 = stats_of(&fx.w[0]);
    s1 = stats_of(&fx.w[1]);
    assert_int_equal(s0.spread_out + s1.spread_out, (uint64_t)per_worker[1 - ue[0]]);

    register_workers(&fx, fd, &srv,
                     "Via: SIP/2.0/UDP pcscf.example;branch=z9hG4bK-p, "
                     "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-u\r\n",
                     CALLS, comma);
    register_workers(&fx, fd, &srv,
                     "v: SIP/2.0/UDP pcscf.example;branch=z9hG4bK-p\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-u\r\n",
                     CALLS, compact);
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(comma[i], proxied[i]); /* same Call-ID, same worker */
        assert_int_equal(compact[i], proxied[i]);
    }
    close(fd);
    fx_stop(&fx);
}

/* A worker that falls behind holds at most spread_max_bytes of the other
 * workers' hand-offs: past that, requests for it are dropped (and counted)
 * where they arrived, as a full socket buffer drops them.  What it held is
 * delivered once it runs again, and the room comes back. */
static void noop_fn(struct worker *w, void *arg)
{
}

static void spread_burst(struct fixture *fx, int fd, const struct ims_addr *srv, unsigned r,
                         const char *msg, size_t len, int n, uint64_t *queued,
                         uint64_t *dropped)
{
    struct sip_tp_stats before = stats_of(&fx->w[r]), now;
    for (int i = 0; i < n; i++)
        assert_true(spread_send(fd, srv, msg, len));
    for (int waited = 0;; waited += 10) {
        now = stats_of(&fx->w[r]);
        *queued = now.spread_out - before.spread_out;
        *dropped = now.rx_dropped - before.rx_dropped;
        if (*queued + *dropped >= (uint64_t)n || waited > 3000)
            break;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(*queued + *dropped, n);
}

static void test_udp_spread_bounded(void **state)
{
    struct fixture fx;
    struct ims_addr srv;
    int fd = spread_start(&fx, 8192, &srv);
    /* which worker reads this flow (r), and a Call-ID the other one owns */
    enum { CALLS = 32 };
    char msg[2048];
    int worker_of[CALLS];
    for (int i = 0; i < CALLS; i++) {
        size_t len = mk_msg(msg, sizeof(msg), i, 0);
        size_t base = rxlog_count(&fx.log);
        assert_true(spread_send(fd, &srv, msg, len));
        assert_true(rxlog_wait(&fx.log, base + 1, 2000));
        worker_of[i] = (int)rxlog_get(&fx.log, base).worker;
    }
    struct sip_tp_stats s0 = stats_of(&fx.w[0]), s1 = stats_of(&fx.w[1]);
    assert_true((s0.spread_out > 0) != (s1.spread_out > 0)); /* only the reader hands off */
    unsigned r = s0.spread_out ? 0 : 1, t = 1 - r;
    int call = -1;
    for (int i = 0; i < CALLS && call < 0; i++)
        if (worker_of[i] == (int)t)
            call = i;
    assert_true(call >= 0);
    size_t len = mk_msg(msg, sizeof(msg), call, 1000);

    uint64_t room = 0;
    for (int round = 0; round < 2; round++) {
        struct hold *h = worker_hold(&fx.w[t]);
        size_t base = rxlog_count(&fx.log);
        uint64_t queued, dropped;
        spread_burst(&fx, fd, &srv, r, msg, len, 20, &queued, &dropped);
        /* room for a few of them, not for all: the rest were dropped */
        assert_true(queued > 0 && queued * len <= 8192);
        assert_true(dropped > 0);
        assert_int_equal(rxlog_count(&fx.log), base); /* t holds them */
        worker_release(h);
        assert_true(rxlog_wait(&fx.log, base + queued, 2000));
        worker_call(&fx.w[t], noop_fn, NULL);
        worker_hold_free(h);
        assert_int_equal(rxlog_count(&fx.log), base + queued);
        for (size_t i = base; i < base + queued; i++) {
            struct rx_rec rec = rxlog_get(&fx.log, i);
            assert_int_equal(rec.worker, t);
            assert_int_equal(rec.len, len);
        }
        /* round 1 gets the same room again: what ran was given back */
        if (round == 0)
            room = queued;
        else
            assert_int_equal(queued, room);
    }
    close(fd);
    fx_stop(&fx);
}

/* ---- allocation failures ---- */

static void test_alloc_fail_setup(void **state)
{
    for (unsigned long n = 1;; n++) {
        struct fixture fx;
        fx_cfg(&fx, false);
        char err[256];
        struct ims_loop *loop = NULL;
        struct sip_tp *tp = NULL;
        assert_int_equal(ims_loop_new(64, &loop), 0);
        ims_alloc_fail_at(n, 0);
        int rc = ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err));
        if (rc == 0) {
            rc = ims_sip_tp_new(loop, 0, fx.sh, &fx.cfg, NULL, NULL, &tp, err, sizeof(err));
            if (rc)
                ims_sip_tp_shared_free(fx.sh);
        }
        ims_alloc_fail_at(0, 0);
        ims_loop_free(rc == 0 ? NULL : loop);
        rxlog_free(&fx.log);
        if (rc == 0) {
            ims_sip_tp_free(tp);
            ims_loop_free(loop);
            ims_sip_tp_shared_free(fx.sh);
            assert_true(n > 5);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_true(n < 100);
    }
}

struct fail_send {
    const struct ims_addr *dst;
    unsigned long n;
    int rc;
    size_t conns;
};

static void fail_send_fn(struct worker *w, void *arg)
{
    struct fail_send *f = arg;
    char msg[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 0);
    ims_alloc_fail_at(f->n, 0);
    f->rc = ims_sip_tp_send(w->tp, SIP_PROTO_TCP, f->dst, 0, NULL, msg, len);
    ims_alloc_fail_at(0, 0);
}

static void test_alloc_fail_send(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 1);
    struct ims_addr dst;
    int ls = plain_listener(&dst);
    unsigned long n;
    for (n = 1;; n++) {
        struct fail_send f = { &dst, n, 0, 0 };
        worker_call(&fx.w[0], fail_send_fn, &f);
        if (f.rc == 0)
            break;
        assert_int_equal(f.rc, IMS_ENOMEM);
        /* the half-made connection is gone by the next turn */
        assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 2000));
        assert_true(n < 20);
    }
    assert_true(n > 1);
    int peer = accept(ls, NULL, NULL);
    assert_true(peer >= 0);
    close(peer);
    close(ls);
    fx_stop(&fx);
}

struct fail_at_args {
    unsigned long n;
};

static void arm_fail_fn(struct worker *w, void *arg)
{
    ims_alloc_fail_at(((struct fail_at_args *)arg)->n, 0);
}

static void test_alloc_fail_rx(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    fx_start(&fx, 1);
    struct ims_addr srv = local_of(&fx, SIP_PROTO_TCP, AF_INET);
    char msg[512];
    size_t len = mk_msg(msg, sizeof(msg), 1, 0);

    /* 1st allocation on the loop: the accepted conn itself -> refused */
    struct fail_at_args fa = { 1 };
    worker_call(&fx.w[0], arm_fail_fn, &fa);
    int fd = tcp_client(&srv);
    assert_true(fd >= 0);
    assert_true(recv_eof(fd));
    close(fd);
    ims_alloc_fail_at(0, 0);
    struct sip_tp_stats st = stats_of(&fx.w[0]);
    assert_int_equal(st.conns_refused, 1);

    /* 2nd: its read buffer -> closed */
    fa.n = 2;
    worker_call(&fx.w[0], arm_fail_fn, &fa);
    fd = tcp_client(&srv);
    assert_true(fd >= 0);
    assert_true(send_all(fd, msg, len));
    assert_true(recv_eof(fd));
    close(fd);
    ims_alloc_fail_at(0, 0);
    assert_true(w_wait_stat(&fx.w[0], STAT_OFF(conns_current), 0, 2000));
    st = stats_of(&fx.w[0]);
    assert_int_equal(st.conn_errors, 1);
    assert_int_equal(rxlog_count(&fx.log), 0);

    /* and then all is well */
    fd = tcp_client(&srv);
    assert_true(send_all(fd, msg, len));
    assert_true(rxlog_wait(&fx.log, 1, 2000));
    close(fd);
    fx_stop(&fx);
}

static void test_bad_cfg(void **state)
{
    struct fixture fx;
    fx_cfg(&fx, false);
    char err[256];
    fx.listen[0].proto = SIP_PROTO_NONE;
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    fx.listen[0].proto = SIP_PROTO_TLS; /* no certificate */
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "tls_cert_file"));
    fx.listen[0].proto = SIP_PROTO_UDP;

    /* a port in use without SO_REUSEPORT on the other socket: bind fails */
    int busy = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    getsockname(busy, (struct sockaddr *)&sin, &sl);
    assert_int_equal(ims_addr_set(&fx.listen[0].addr, (struct sockaddr *)&sin, sl), 0);
    assert_int_equal(ims_sip_tp_shared_new(&fx.cfg, &fx.sh, err, sizeof(err)), 0);
    struct ims_loop *loop;
    struct sip_tp *tp;
    assert_int_equal(ims_loop_new(16, &loop), 0);
    assert_int_equal(ims_sip_tp_new(loop, 0, fx.sh, &fx.cfg, NULL, NULL, &tp, err, sizeof(err)),
                     IMS_EIO);
    assert_non_null(strstr(err, "UDP 127.0.0.1:"));
    assert_int_equal(ims_sip_tp_new(loop, 300, fx.sh, &fx.cfg, NULL, NULL, &tp, err, sizeof(err)),
                     IMS_EINVAL);
    ims_loop_free(loop);
    ims_sip_tp_shared_free(fx.sh);
    close(busy);
    rxlog_free(&fx.log);
}

int run_transport_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_echo),
        cmocka_unit_test(test_udp_local),
        cmocka_unit_test(test_udp_reply_address),
        cmocka_unit_test(test_tcp_framing),
        cmocka_unit_test(test_tcp_crlf_ping),
        cmocka_unit_test(test_tcp_oversize_closes),
        cmocka_unit_test(test_tcp_conn_caps),
        cmocka_unit_test(test_tcp_idle_timeout),
        cmocka_unit_test(test_tcp_reuse_accepted),
        cmocka_unit_test(test_tcp_outgoing),
        cmocka_unit_test(test_tcp_wqueue_cap),
        cmocka_unit_test(test_two_workers),
        cmocka_unit_test(test_udp_spread),
        cmocka_unit_test(test_udp_spread_register),
        cmocka_unit_test(test_udp_spread_bounded),
        cmocka_unit_test(test_alloc_fail_setup),
        cmocka_unit_test(test_alloc_fail_send),
        cmocka_unit_test(test_alloc_fail_rx),
        cmocka_unit_test(test_bad_cfg),
    };
    return cmocka_run_group_tests_name("net_transport", tests, NULL, NULL);
}
