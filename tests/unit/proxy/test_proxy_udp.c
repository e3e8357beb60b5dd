/* test_proxy_udp.c - the proxy on the real loop and UDP transport, with a
 * UAC and a UAS as plain UDP sockets on 127.0.0.1: a call through the proxy
 * and back, a request lost on the way (the proxy retransmits it, Timer A),
 * a retransmission from the UAC absorbed, OPTIONS to the proxy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "net/resolve.h"
#include "net/transport.h"
#include "proxy/proxy.h"
#include "proxy/proxy_int.h" /* PROXY_SL_WAIT_MAX */

#define T1_MS 40

struct env {
    struct ims_loop *loop;
    struct sip_tp_shared *tsh;
    struct sip_tp *tp;
    struct proxy_shared *psh;
    struct ims_proxy *p;
    struct ims_resolver *res;
    pthread_t thr;
    int uac, uas;
    uint16_t uac_port, uas_port, proxy_port;
    char route[64];
    /* failover test: a DNS responder and a UAS that answers 503 */
    int dns, bad, stop_pipe[2];
    uint16_t dns_port;
    /* a DNS server that never answers (its socket is never read) */
    int silent;
    uint16_t silent_port;
    pthread_t helper;
    bool helper_on;
    atomic_int bad_seen;
};

static struct env E;

static int udp_socket_at(const char *ip, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(*port) };
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int udp_socket(uint16_t *port)
{
    *port = 0;
    return udp_socket_at("127.0.0.1", port);
}

static void *loop_main(void *arg)
{
    ims_loop_run(E.loop);
    return NULL;
}

static void *helper_main(void *arg);

static int setup_with(const char *host)
{
    int keep_dns = E.dns, keep_bad = E.bad, keep_silent = E.silent;
    uint16_t keep_dns_port = E.dns_port, keep_uas_port = E.uas_port;
    uint16_t keep_silent_port = E.silent_port;
    memset(&E, 0, sizeof(E));
    E.silent = keep_silent;
    E.silent_port = keep_silent_port;
    ims_log_set_level(getenv("DBG") ? IMS_LOG_DEBUG : IMS_LOG_ERR);
    E.uac = udp_socket(&E.uac_port);
    if (keep_dns) {
        /* failover: the good UAS is 127.0.0.2, on the bad one's port */
        E.dns = keep_dns;
        E.bad = keep_bad;
        E.dns_port = keep_dns_port;
        E.uas_port = keep_uas_port;
        E.uas = udp_socket_at("127.0.0.2", &E.uas_port);
        assert_int_equal(pipe(E.stop_pipe), 0);
        assert_int_equal(pthread_create(&E.helper, NULL, helper_main, NULL), 0);
        E.helper_on = true;
    } else {
        E.uas = udp_socket(&E.uas_port);
    }
    snprintf(E.route, sizeof(E.route), "sip:%s:%u", host, E.uas_port);
    static const char *const self[] = { "127.0.0.1" };
    struct proxy_route routes[] = { { "*", E.route } };
    struct proxy_cfg pc = {
        .routes = routes, .nroutes = 1, .record_route = true, .max_transactions = 64,
        .t1_ms = T1_MS, .self_names = self, .nself = 1,
    };
    assert_int_equal(ims_loop_new(1024, &E.loop), 0);
    char err[256], servers[32] = "127.0.0.1:9";
    if (E.dns)
        snprintf(servers, sizeof(servers), "127.0.0.1:%u", E.dns_port);
    if (E.silent) /* its queries stay unanswered for the whole test */
        snprintf(servers, sizeof(servers), "127.0.0.1:%u", E.silent_port);
    struct ims_resolver_cfg rc = { .servers = servers, .timeout_ms = E.silent ? 30000 : 500,
                                   .tries = E.silent ? 1 : 2 };
    assert_int_equal(ims_resolver_new(E.loop, &rc, &E.res, err, sizeof(err)), 0);
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.psh), 0);
    assert_int_equal(ims_proxy_new(E.psh, 0, E.loop, E.res, &E.p), 0);
    struct sip_listen_cfg l = { .proto = SIP_PROTO_UDP };
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:0"), 0, &l.addr), 0);
    struct sip_tp_cfg tc = { .listen = &l, .nlisten = 1 };
    assert_int_equal(ims_sip_tp_shared_new(&tc, &E.tsh, err, sizeof(err)), 0);
    assert_int_equal(ims_sip_tp_new(E.loop, 0, E.tsh, &tc, ims_proxy_rx, E.p, &E.tp, err,
                                    sizeof(err)),
                     0);
    ims_proxy_set_tp(E.p, E.tp);
    struct ims_addr me;
    assert_int_equal(ims_sip_tp_local(E.tp, SIP_PROTO_UDP, AF_INET, &me), 0);
    E.proxy_port = ims_addr_port(&me);
    assert_int_equal(pthread_create(&E.thr, NULL, loop_main, NULL), 0);
    return 0;
}

static int setup(void **state)
{
    return setup_with("127.0.0.1");
}

/* The next hop is a name: RFC 3263 through the resolver (c-ares reads
 * /etc/hosts; the DNS server given is a dead port on loopback). */
static int setup_named(void **state)
{
    return setup_with("localhost");
}

static int teardown(void **state)
{
    ims_loop_stop(E.loop);
    pthread_join(E.thr, NULL);
    if (E.helper_on) {
        assert_int_equal(write(E.stop_pipe[1], "x", 1), 1);
        pthread_join(E.helper, NULL);
        close(E.stop_pipe[0]);
        close(E.stop_pipe[1]);
        close(E.dns);
        close(E.bad);
        E.dns = E.bad = 0; /* the next setup is not a failover one */
    }
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    size_t leaked = ims_proxy_free(E.p);
    ims_sip_tp_free(E.tp);
    ims_resolver_free(E.res);
    ims_loop_free(E.loop);
    ims_sip_tp_shared_free(E.tsh);
    ims_proxy_shared_free(E.psh);
    close(E.uac);
    close(E.uas);
    if (E.silent)
        close(E.silent);
    E.silent = 0;
    assert_int_equal(st.reqs_live, 0);
    assert_int_equal(leaked, 0);
    return 0;
}

static void send_to(int fd, uint16_t port, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_to(int fd, uint16_t port, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_to(int fd, uint16_t port, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&a, sizeof(a)), n);
}

/* Receives one datagram (NUL-terminated) within ms, or returns 0. */
static size_t recv_within(int fd, char *buf, size_t sz, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    ssize_t n = recv(fd, buf, sz - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

/* Waits for a datagram starting with prefix, ignoring others (100 Trying,
 * retransmissions that timing may add). */
static void expect(int fd, char *buf, size_t sz, const char *prefix)
{
    for (int i = 0; i < 20; i++) {
        if (recv_within(fd, buf, sz, 2000) == 0)
            break;
        if (strncmp(buf, prefix, strlen(prefix)) == 0)
            return;
    }
    fail_msg("no \"%s\"", prefix);
}

static void get_param(const char *msg, const char *param, char *out, size_t outsz)
{
    const char *p = strstr(msg, param);
    assert_non_null(p);
    p += strlen(param);
    size_t n = strcspn(p, ";\r\n >,");
    assert_true(n < outsz);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The UAS answers a received request: same Vias, a To tag. */
static void uas_answer(const char *req, int status, const char *method)
{
    char vias[1024] = "";
    const char *p = req;
    while ((p = strstr(p, "\r\nVia: ")) != NULL) {
        p += 2;
        size_t n = strcspn(p, "\r");
        strncat(vias, p, n);
        strcat(vias, "\r\n");
        p += n;
    }
    char cid[128], num[16];
    get_param(req, "Call-ID: ", cid, sizeof(cid));
    get_param(req, "CSeq: ", num, sizeof(num));
    num[strcspn(num, " ")] = '\0';
    send_to(E.uas, E.proxy_port,
            "SIP/2.0 %d X\r\n%s"
            "From: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
            "Call-ID: %s\r\nCSeq: %s %s\r\nContact: <sip:bob@127.0.0.1:%u>\r\n"
            "Content-Length: 0\r\n\r\n",
            status, vias, cid, num, method, E.uas_port);
}

static void send_invite(void)
{
    send_to(E.uac, E.proxy_port, "INVITE sip:bob@b.test SIP/2.0\r\n"
                      "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKudp1;rport\r\n"
                      "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\n"
                      "To: <sip:bob@b.test>\r\nCall-ID: udp-call-1\r\nCSeq: 1 INVITE\r\n"
                      "Contact: <sip:alice@127.0.0.1:%u>\r\nContent-Length: 0\r\n\r\n",
            E.uac_port, E.uac_port);
}

static void test_call_through_proxy(void **state)
{
    char buf[8192], inv2[8192], b1[64], b2[64];
    send_invite();
    /* The UAS "loses" the first copy: the proxy retransmits it (Timer A). */
    expect(E.uas, buf, sizeof(buf), "INVITE sip:bob@b.test SIP/2.0\r\n");
    get_param(buf, "branch=", b1, sizeof(b1));
    assert_non_null(strstr(buf, "Record-Route: <sip:127.0.0.1:"));
    assert_non_null(strstr(buf, ";received=127.0.0.1"));
    /* meanwhile the UAC retransmits too: absorbed, not forwarded again */
    send_invite();
    expect(E.uas, inv2, sizeof(inv2), "INVITE sip:bob@b.test SIP/2.0\r\n");
    get_param(inv2, "branch=", b2, sizeof(b2));
    assert_string_equal(b1, b2); /* the same client transaction */
    uas_answer(inv2, 180, "INVITE");
    expect(E.uac, buf, sizeof(buf), "SIP/2.0 180");
    assert_null(strstr(buf, b1)); /* our Via is gone */
    assert_non_null(strstr(buf, "branch=z9hG4bKudp1"));
    uas_answer(inv2, 200, "INVITE");
    expect(E.uac, buf, sizeof(buf), "SIP/2.0 200");
    /* ACK and BYE along the route set (the Record-Route we inserted) */
    send_to(E.uac, E.proxy_port,
            "ACK sip:bob@127.0.0.1:%u SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKudpack;rport\r\n"
            "Route: <sip:127.0.0.1:%u;lr>\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\n"
            "To: <sip:bob@b.test>;tag=tb\r\nCall-ID: udp-call-1\r\nCSeq: 1 ACK\r\n"
            "Content-Length: 0\r\n\r\n",
            E.uas_port, E.uac_port, E.proxy_port);
    expect(E.uas, buf, sizeof(buf), "ACK sip:bob@127.0.0.1:");
    assert_null(strstr(buf, "Route:"));
    send_to(E.uac, E.proxy_port,
            "BYE sip:bob@127.0.0.1:%u SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKudpbye;rport\r\n"
            "Route: <sip:127.0.0.1:%u;lr>\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\n"
            "To: <sip:bob@b.test>;tag=tb\r\nCall-ID: udp-call-1\r\nCSeq: 2 BYE\r\n"
            "Content-Length: 0\r\n\r\n",
            E.uas_port, E.uac_port, E.proxy_port);
    expect(E.uas, inv2, sizeof(inv2), "BYE sip:bob@127.0.0.1:");
    uas_answer(inv2, 200, "BYE");
    expect(E.uac, buf, sizeof(buf), "SIP/2.0 200");
    assert_non_null(strstr(buf, "CSeq: 2 BYE"));
}

static void send_ack_via(const char *host, uint16_t port, const char *branch)
{
    send_to(E.uac, E.proxy_port,
            "ACK sip:bob@127.0.0.1:%u SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=%s;rport\r\n"
            "Route: <sip:127.0.0.1:%u;lr>, <sip:%s:%u;lr>\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\n"
            "To: <sip:bob@b.test>;tag=tb\r\nCall-ID: udp-ack-%s\r\nCSeq: 1 ACK\r\n"
            "Content-Length: 0\r\n\r\n",
            E.uas_port, E.uac_port, branch, E.proxy_port, host, port, branch);
}

/* An ACK for a 2xx is forwarded statelessly; when the next proxy of the
 * route set is named by a host name, the ACK waits for the resolver
 * (RFC 3263) and then goes there, Route and all (it used to be dropped). */
static void test_stateless_to_name(void **state)
{
    char buf[8192];
    send_ack_via("localhost", E.uas_port, "z9hG4bKackname");
    expect(E.uas, buf, sizeof(buf), "ACK sip:bob@127.0.0.1:");
    assert_non_null(strstr(buf, "\r\nRoute: <sip:localhost:"));
    assert_non_null(strstr(buf, "branch=z9hG4bKackname"));
    struct proxy_stats st;
    for (int i = 0; i < 200; i++) { /* counted after the send: the UAS may be first */
        ims_proxy_stats(E.p, &st);
        if (st.stateless_forwards == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(st.stateless_forwards, 1);
    assert_int_equal(st.stateless_waiting, 0);
    assert_int_equal(st.stateless_unroutable, 0);
}

/* Names that get no answer (the DNS server never answers): at most
 * PROXY_SL_WAIT_MAX ACKs wait, the rest are given up at once, and the
 * ones still waiting are freed with the proxy (teardown: no leak). */
static void test_stateless_wait_bounded(void **state)
{
    char branch[32];
    for (int i = 0; i < PROXY_SL_WAIT_MAX + 20; i++) {
        snprintf(branch, sizeof(branch), "z9hG4bKw%d", i);
        send_ack_via("nowhere.invalid", 5060, branch);
    }
    struct proxy_stats st;
    for (int i = 0; i < 200; i++) { /* the loop thread reads them */
        ims_proxy_stats(E.p, &st);
        if (st.stateless_waiting + st.stateless_unroutable >= PROXY_SL_WAIT_MAX + 20)
            break;
        usleep(10000);
    }
    assert_int_equal(st.stateless_waiting, PROXY_SL_WAIT_MAX);
    assert_int_equal(st.stateless_unroutable, 20);
    assert_int_equal(st.stateless_forwards, 0);
}

static void test_options(void **state)
{
    char buf[4096];
    send_to(E.uac, E.proxy_port,
            "OPTIONS sip:127.0.0.1:%u SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKopt1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
            "Call-ID: udp-opt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            E.proxy_port, E.uac_port);
    expect(E.uac, buf, sizeof(buf), "SIP/2.0 200 OK\r\n");
    assert_non_null(strstr(buf, "Allow: "));
}


/* ---- failover: DNS gives two addresses, the first answers 503 ---- */

/* Answers A queries with 127.0.0.1 then 127.0.0.2, anything else with no
 * records (RFC 1035 §4.1). */
static void dns_answer(int fd)
{
    unsigned char q[512], r[600];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return;
    size_t i = 12;
    while (i < (size_t)n && q[i])
        i += q[i] + 1u;
    if (i + 5 > (size_t)n)
        return;
    size_t qend = i + 5; /* zero label, type, class */
    unsigned qtype = (unsigned)(q[i + 1] << 8 | q[i + 2]);
    memcpy(r, q, qend);
    r[2] = 0x81;
    r[3] = 0x80;
    r[4] = 0, r[5] = 1;                          /* QDCOUNT */
    r[6] = 0, r[7] = qtype == 1 ? 2 : 0;         /* ANCOUNT */
    r[8] = r[9] = r[10] = r[11] = 0;             /* NSCOUNT, ARCOUNT */
    size_t k = qend;
    for (int a = 1; qtype == 1 && a <= 2; a++) {
        const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0,
                                     (unsigned char)a };
        memcpy(r + k, rr, sizeof(rr));
        k += sizeof(rr);
    }
    sendto(fd, r, k, 0, (struct sockaddr *)&from, fl);
}

/* The bad UAS: 503 to every request. */
static void bad_answer(int fd)
{
    char req[8192], rsp[8192] = "SIP/2.0 503 Busy Backend\r\n";
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, req, sizeof(req) - 1, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0)
        return;
    req[n] = '\0';
    if (strncmp(req, "SIP/2.0", 7) == 0 || strncmp(req, "ACK ", 4) == 0)
        return;
    E.bad_seen++;
    /* copy every Via, From, To, Call-ID, CSeq line */
    for (const char *l = strstr(req, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (!strncmp(h, "Via:", 4) || !strncmp(h, "From:", 5) || !strncmp(h, "To:", 3) ||
            !strncmp(h, "Call-ID:", 8) || !strncmp(h, "CSeq:", 5))
            strncat(rsp, h, strcspn(h, "\r") + 2);
    }
    strcat(rsp, "Content-Length: 0\r\n\r\n");
    sendto(fd, rsp, strlen(rsp), 0, (struct sockaddr *)&from, fl);
}

static void *helper_main(void *arg)
{
    for (;;) {
        struct pollfd p[3] = { { E.dns, POLLIN, 0 }, { E.bad, POLLIN, 0 },
                               { E.stop_pipe[0], POLLIN, 0 } };
        if (poll(p, 3, 5000) < 0 || p[2].revents)
            return NULL;
        if (p[0].revents)
            dns_answer(E.dns);
        if (p[1].revents)
            bad_answer(E.bad);
    }
}

static int setup_silent_dns(void **state)
{
    memset(&E, 0, sizeof(E));
    E.silent = udp_socket(&E.silent_port);
    return setup_with("127.0.0.1");
}

static int setup_failover(void **state)
{
    memset(&E, 0, sizeof(E));
    E.dns = udp_socket(&E.dns_port);
    E.bad = udp_socket(&E.uas_port);
    return setup_with("multi.test");
}

static void test_failover(void **state)
{
    char buf[8192];
    send_to(E.uac, E.proxy_port,
            "INVITE sip:bob@b.test SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKfo1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\n"
            "To: <sip:bob@b.test>\r\nCall-ID: udp-fo-1\r\nCSeq: 1 INVITE\r\n"
            "Content-Length: 0\r\n\r\n",
            E.uac_port);
    /* 127.0.0.1 said 503: the second target gets the INVITE */
    expect(E.uas, buf, sizeof(buf), "INVITE sip:bob@b.test SIP/2.0\r\n");
    uas_answer(buf, 200, "INVITE");
    expect(E.uac, buf, sizeof(buf), "SIP/2.0 200");
    assert_int_equal(E.bad_seen, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_through_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_through_proxy, setup_named, teardown),
        cmocka_unit_test_setup_teardown(test_failover, setup_failover, teardown),
        cmocka_unit_test_setup_teardown(test_stateless_to_name, setup_named, teardown),
        cmocka_unit_test_setup_teardown(test_stateless_wait_bounded, setup_silent_dns, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
