/* test_proxy.c - the proxy core (RFC 3261 §16) over a fake transport and a
 * fake clock: what goes out for what comes in. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "proxy/proxy_int.h"
#include "sip/msg.h"
#include "sip/txn.h"

#define UAC "192.0.2.10:5099"
#define UAS "192.0.2.2:5070"
#define ME "192.0.2.1:5060"

static const char *const self_names[] = { "192.0.2.1", "proxy.test" };
static const struct proxy_route routes[] = {
    { "tcp.test", "sip:192.0.2.3:5080;transport=tcp" },
    { "*", "sip:" UAS },
};

struct env {
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct fake_tp tp;
};

static struct env E;

static unsigned timer_c_ms; /* 0: default */
static unsigned retry_after_s; /* 0: default (5) */

static int setup_max(size_t max)
{
    memset(&E, 0, sizeof(E));
    ims_log_set_level(IMS_LOG_ERR);
    assert_int_equal(ims_loop_new(4096, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME);
    fake_tp_set_local(&E.tp, SIP_PROTO_TCP, ME);
    struct proxy_cfg cfg = {
        .routes = routes,
        .nroutes = 2,
        .record_route = true,
        .max_transactions = max,
        .self_names = self_names,
        .nself = 2,
        .timer_c_ms = timer_c_ms,
        .retry_after = retry_after_s,
    };
    assert_int_equal(ims_proxy_shared_new(1, &cfg, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    return 0;
}

static int setup(void **state)
{
    return setup_max(16);
}

static void advance(uint64_t ms)
{
    fake_tp_clock_advance(E.loop, ms);
}

/* Frees the environment; returns live transactions + contexts + leaks. */
static size_t finish(void)
{
    advance(64 * 500 + 5000);
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    memset(&E, 0, sizeof(E));
    return st.txns_live * 1000 + st.reqs_live * 100 + leaked;
}

static int teardown(void **state)
{
    if (getenv("DUMP"))
        for (size_t i = 0; i < E.tp.n; i++)
            fprintf(stderr, "---- to %s t=%llu\n%s", fake_tp_dst(&E.tp.msgs[i]),
                    (unsigned long long)E.tp.msgs[i].at_ms, E.tp.msgs[i].buf);
    advance(64 * 500 + 5000); /* let every transaction finish */
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(st.txns_live, 0);
    assert_int_equal(st.reqs_live, 0);
    assert_int_equal(leaked, 0);
    return 0;
}

/* Feeds one message as if the transport received it. */
static void feed(enum sip_proto proto, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void feed(enum sip_proto proto, const char *src, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct sip_tp_rx rx = fake_tp_rx(buf, proto, src, ME);
    ims_proxy_rx(E.p, &rx);
}

#define INVITE_FMT                                                                                 \
    "INVITE %s SIP/2.0\r\n"                                                                        \
    "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=%s;rport\r\n"                                           \
    "%s"                                                                                           \
    "Max-Forwards: %d\r\n"                                                                         \
    "From: <sip:alice@a.test>;tag=fa\r\n"                                                          \
    "To: <sip:bob@b.test>\r\n"                                                                     \
    "Call-ID: call-%s\r\n"                                                                         \
    "CSeq: 1 INVITE\r\n"                                                                           \
    "Contact: <sip:alice@10.0.0.5:5099>\r\n"                                                       \
    "User-Agent: test\r\n"                                                                         \
    "Content-Length: 0\r\n\r\n"

static void invite(const char *ruri, const char *branch, const char *extra, int mf)
{
    feed(SIP_PROTO_UDP, UAC, INVITE_FMT, ruri, branch, extra, mf, branch);
}

/* Copies the value of `param=` from a message into out. */
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

/* A response from the UAS to the forwarded request `fwd`: its first
 * max_vias Via lines as they are, a To tag, and status. */
static void uas_respond_vias(const struct fake_tp_msg *fwd, int status, const char *method,
                             int max_vias)
{
    char vias[1024] = "";
    const char *p = fwd->buf;
    while (max_vias-- > 0 && (p = strstr(p, "\r\nVia: ")) != NULL) {
        p += 2;
        size_t n = strcspn(p, "\r");
        strncat(vias, p, n);
        strcat(vias, "\r\n");
        p += n;
    }
    char cid[128], ftag[64];
    get_param(fwd->buf, "Call-ID: ", cid, sizeof(cid));
    get_param(fwd->buf, "From: <sip:alice@a.test>;tag=", ftag, sizeof(ftag));
    feed(SIP_PROTO_UDP, UAS,
         "SIP/2.0 %d Test\r\n%s"
         "Record-Route: <sip:192.0.2.1:5060;lr>\r\n"
         "From: <sip:alice@a.test>;tag=%s\r\n"
         "To: <sip:bob@b.test>;tag=tb\r\n"
         "Call-ID: %s\r\n"
         "CSeq: 1 %s\r\n"
         "Contact: <sip:bob@" UAS ">\r\n"
         "Content-Length: 0\r\n\r\n",
         status, vias, ftag, cid, method);
}

static void uas_respond(const struct fake_tp_msg *fwd, int status, const char *method)
{
    uas_respond_vias(fwd, status, method, 64);
}

static const struct fake_tp_msg *sent_to(const char *dst, const char *prefix, size_t from)
{
    for (size_t i = from; i < E.tp.n; i++) {
        const struct fake_tp_msg *m = &E.tp.msgs[i];
        if (strcmp(fake_tp_dst(m), dst) == 0 && strncmp(m->buf, prefix, strlen(prefix)) == 0)
            return m;
    }
    return NULL;
}

/* ---- tests ---- */

static void test_options_to_self(void **state)
{
    feed(SIP_PROTO_UDP, UAC,
         "OPTIONS sip:proxy.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKo1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:proxy.test>\r\n"
         "Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(E.tp.n, 1);
    const struct fake_tp_msg *m = fake_tp_last(&E.tp);
    assert_memory_equal(m->buf, "SIP/2.0 200 OK\r\n", 16);
    assert_string_equal(fake_tp_dst(m), UAC); /* RFC 3581: source port */
    assert_non_null(strstr(m->buf, "\r\nAllow: INVITE, ACK, CANCEL"));
    assert_non_null(strstr(m->buf, "\r\nAccept: application/sdp\r\n"));
    assert_non_null(strstr(m->buf, "\r\nSupported:"));
    assert_non_null(strstr(m->buf, "\r\nTo: <sip:proxy.test>;tag="));
    /* RFC 3581 §4: received and rport in the response's top Via */
    assert_non_null(strstr(m->buf, "\r\nVia: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKo1;"
                                   "rport=5099;received=192.0.2.10\r\n"));
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    assert_int_equal(st.txns_live, 0); /* stateless */
    /* with an explicit port, and Max-Forwards 0 */
    feed(SIP_PROTO_UDP, UAC,
         "OPTIONS sip:192.0.2.1:5060 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKo2;rport\r\n"
         "Max-Forwards: 0\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:proxy.test>\r\n"
         "Call-ID: o2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 200 OK\r\n", 16);
}

static void test_max_forwards_zero(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKmf0", "", 0);
    assert_int_equal(E.tp.n, 1);
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 483 Too Many Hops\r\n", 27);
    /* OPTIONS not for us with Max-Forwards 0: answered (RFC 3261 §16.3) */
    feed(SIP_PROTO_UDP, UAC,
         "OPTIONS sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKo3;rport\r\n"
         "Max-Forwards: 0\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: o3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 200 OK\r\n", 16);
    assert_int_equal(E.tp.n, 2);
}

static void test_invite_roundtrip(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKuac1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    assert_non_null(f);
    assert_memory_equal(f->buf, "INVITE sip:bob@b.test SIP/2.0\r\n"
                                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKI00", 80);
    assert_non_null(strstr(f->buf, "\r\nRecord-Route: <sip:192.0.2.1:5060;lr>\r\n"));
    assert_non_null(strstr(f->buf, "\r\nMax-Forwards: 69\r\n"));
    /* §18.2.1 / RFC 3581 on the previous hop's Via */
    assert_non_null(strstr(f->buf, "\r\nVia: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKuac1;"
                                   "rport=5099;received=192.0.2.10\r\n"));
    assert_int_equal(E.tp.n, 1);
    assert_int_equal(f->src.port, 5060); /* forwarded from the port it came in on */
    assert_int_equal(f->src.family, AF_UNSPEC); /* from the address the kernel picks */
    /* 180 and 200 come back, our Via removed */
    uas_respond(f, 180, "INVITE");
    const struct fake_tp_msg *r = sent_to(UAC, "SIP/2.0 180", 0);
    assert_non_null(r);
    /* RFC 3581 §4: from the address and port the request came in at */
    assert_int_equal(r->src.port, 5060);
    assert_int_equal(r->src.family, AF_INET);
    char ip[INET_ADDRSTRLEN];
    assert_string_equal(inet_ntop(AF_INET, &r->src.ip.v4, ip, sizeof(ip)), "192.0.2.1");
    assert_null(strstr(r->buf, "192.0.2.1:5060;branch"));
    assert_non_null(strstr(r->buf, "\r\nVia: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKuac1;"));
    advance(200);
    assert_null(sent_to(UAC, "SIP/2.0 100", 0)); /* a provisional went first */
    f = sent_to(UAS, "INVITE ", 0);
    uas_respond(f, 200, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 200", 0));
    /* a retransmitted 200 (the UAC's ACK got lost) is relayed again */
    f = sent_to(UAS, "INVITE ", 0);
    uas_respond(f, 200, "INVITE");
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 200"), 2);
    /* the ACK for the 2xx passes statelessly along the route set */
    size_t mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAC,
         "ACK sip:bob@" UAS " SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKack1;rport\r\n"
         "Route: <sip:192.0.2.1:5060;lr>\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
         "Call-ID: call-z9hG4bKuac1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *a = sent_to(UAS, "ACK ", mark);
    assert_non_null(a);
    assert_null(strstr(a->buf, "\r\nRoute:")); /* ours was popped */
    assert_non_null(strstr(a->buf, "\r\nMax-Forwards: 69\r\n"));
    assert_non_null(strstr(a->buf, "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKS"));
    /* BYE from the callee side, along its route set */
    mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAS,
         "BYE sip:alice@10.0.0.5:5099 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bKbye1\r\n"
         "Route: <sip:192.0.2.1:5060;lr>\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:bob@b.test>;tag=tb\r\nTo: <sip:alice@a.test>;tag=fa\r\n"
         "Call-ID: call-z9hG4bKuac1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *b = sent_to("10.0.0.5:5099", "BYE ", mark);
    assert_non_null(b);
    assert_null(strstr(b->buf, "Record-Route")); /* in-dialog */
    char br[64];
    get_param(b->buf, "branch=", br, sizeof(br));
    feed(SIP_PROTO_UDP, "10.0.0.5:5099",
         "SIP/2.0 200 OK\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=%s;rport=5060\r\n"
         "Via: SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bKbye1\r\n"
         "From: <sip:bob@b.test>;tag=tb\r\nTo: <sip:alice@a.test>;tag=fa\r\n"
         "Call-ID: call-z9hG4bKuac1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
         br);
    const struct fake_tp_msg *ok = sent_to(UAS, "SIP/2.0 200", mark);
    assert_non_null(ok);
    assert_non_null(strstr(ok->buf, "CSeq: 1 BYE"));
}

static void test_100_trying(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKt1", "", 70);
    advance(99);
    assert_null(sent_to(UAC, "SIP/2.0 100", 0));
    advance(1);
    const struct fake_tp_msg *t = sent_to(UAC, "SIP/2.0 100 Trying", 0);
    assert_non_null(t);
    assert_non_null(strstr(t->buf, "\r\nTo: <sip:bob@b.test>\r\n")); /* no tag on a 100 */
    /* the UAC retransmits: the txn resends the 100, the UAS sees nothing new */
    invite("sip:bob@b.test", "z9hG4bKt1", "", 70);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 100"), 2);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    uas_respond(sent_to(UAS, "INVITE ", 0), 486, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 486", 0));
    assert_non_null(sent_to(UAS, "ACK ", 0)); /* hop-by-hop ACK for the non-2xx */
    /* the UAC's ACK for the 486 is absorbed */
    size_t mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAC,
         "ACK sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKt1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
         "Call-ID: call-z9hG4bKt1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(E.tp.n, mark);
}

static void message(const char *branch)
{
    feed(SIP_PROTO_UDP, UAC,
         "MESSAGE sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=%s;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: call-%s\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
         branch, branch);
}

/* A MESSAGE (branch) that goes on to hop: the UAC hears nothing for ms,
 * then the response that starts with expect. */
static void message_until(const char *branch, const char *hop, uint64_t ms, const char *expect)
{
    message(branch);
    assert_non_null(sent_to(hop, "MESSAGE ", 0));
    advance(ms - 1);
    assert_null(sent_to(UAC, "SIP/2.0 ", 0));
    advance(1);
    const struct fake_tp_msg *t = sent_to(UAC, expect, 0);
    assert_non_null(t);
    assert_non_null(strstr(t->buf, "CSeq: 1 MESSAGE"));
}

/* RFC 4320 §4.1: no 100 to a non-INVITE over UDP before the client's Timer
 * E reached T2 (0.5 + 1 + 2 s), and one then if nothing else was sent. */
static void test_non_invite_100(void **state)
{
    assert_int_equal(px_nit_trying_ms(500, 4000), 3500);
    assert_int_equal(px_nit_trying_ms(100, 4000), 6300); /* 100 + 200 + ... + 3200 */
    assert_int_equal(px_nit_trying_ms(500, 500), 500);
    message_until("z9hG4bKn1", UAS, 3500, "SIP/2.0 100 Trying");
    /* from now on a retransmission gets the 100 again, and the UAS's answer
     * still goes through */
    message("z9hG4bKn1");
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 100"), 2);
    uas_respond(sent_to(UAS, "MESSAGE ", 0), 200, "MESSAGE");
    assert_non_null(sent_to(UAC, "SIP/2.0 200", 0));

    /* answered in time: no 100 at all */
    size_t mark = E.tp.n;
    message("z9hG4bKn2");
    advance(3000);
    uas_respond(sent_to(UAS, "MESSAGE ", mark), 202, "MESSAGE");
    assert_non_null(sent_to(UAC, "SIP/2.0 202", mark));
    advance(5000);
    assert_null(sent_to(UAC, "SIP/2.0 100", mark));
}

static void test_loop_detected(void **state)
{
    /* The loop hash covers what routing depends on, not the Via: compute it
     * for the request, then put our own Via with that hash below the top. */
    char buf[2048], via[256];
    snprintf(buf, sizeof(buf), INVITE_FMT, "sip:bob@b.test", "z9hG4bKl1", "", 70, "z9hG4bKl1");
    struct sip_msg m;
    struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
    assert_true(ims_sip_parse(buf, strlen(buf), false, &m, h, SIP_MAX_HEADERS_DEFAULT) > 0);
    uint32_t hash = ims_proxy_loop_hash(&m);
    snprintf(via, sizeof(via), "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKI00%08x.5\r\n",
             hash);
    feed(SIP_PROTO_UDP, UAC, INVITE_FMT, "sip:bob@b.test", "z9hG4bKl1", via, 70, "z9hG4bKl1");
    assert_int_equal(E.tp.n, 1);
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 482 Loop Detected\r\n", 27);
    /* the same loop with our prefix, another hash, in a param before the
     * branch, and our value second in a Via list: still found */
    snprintf(via, sizeof(via),
             "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKz, SIP/2.0/UDP "
             "192.0.2.1:5060;x=z9hG4bKI00%08x.1;branch=z9hG4bKI00%08x.5\r\n",
             hash ^ 2, hash);
    feed(SIP_PROTO_UDP, UAC, INVITE_FMT, "sip:bob@b.test", "z9hG4bKl1", via, 70, "z9hG4bKl1");
    assert_int_equal(E.tp.n, 2);
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 482 Loop Detected\r\n", 27);
    /* a spiral (another hash) is forwarded */
    snprintf(via, sizeof(via), "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKI00%08x.5\r\n",
             hash ^ 1);
    feed(SIP_PROTO_UDP, UAC, INVITE_FMT, "sip:bob@b.test", "z9hG4bKl2", via, 70, "z9hG4bKl1");
    assert_non_null(sent_to(UAS, "INVITE ", 0));
    uas_respond(sent_to(UAS, "INVITE ", 0), 404, "INVITE");
}

static void test_loose_route_pop(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKr1",
           "Route: <sip:192.0.2.1:5060;lr>, <sip:192.0.2.7:5080;lr>\r\n", 70);
    const struct fake_tp_msg *f = sent_to("192.0.2.7:5080", "INVITE sip:bob@b.test ", 0);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, "\r\nRoute: <sip:192.0.2.7:5080;lr>\r\n"));
    uas_respond(f, 486, "INVITE");
    /* two Route lines, both ours (double record-route): both go */
    invite("sip:bob@b.test", "z9hG4bKr2",
           "Route: <sip:proxy.test;lr>\r\nRoute: <sip:192.0.2.1:5060;transport=tcp;lr>\r\n"
           "Route: <sip:192.0.2.8;lr>\r\n",
           70);
    f = sent_to("192.0.2.8:5060", "INVITE ", 0);
    assert_non_null(f);
    assert_null(strstr(f->buf, "proxy.test;lr"));
    assert_non_null(strstr(f->buf, "\r\nRoute: <sip:192.0.2.8;lr>\r\n"));
    uas_respond(f, 486, "INVITE");
}

static void test_strict_route_fix(void **state)
{
    /* §16.4: the previous hop was a strict router and put our Record-Route
     * URI in the Request-URI; the real target is the last Route value. */
    invite("sip:192.0.2.1:5060;lr", "z9hG4bKs1",
           "Route: <sip:192.0.2.9:5090;lr>, <sip:carol@192.0.2.4:5000>\r\n", 70);
    const struct fake_tp_msg *f = sent_to("192.0.2.9:5090", "INVITE sip:carol@192.0.2.4:5000 ",
                                          0);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, "\r\nRoute: <sip:192.0.2.9:5090;lr>\r\n"));
    assert_null(strstr(f->buf, "<sip:carol@"));
    uas_respond(f, 486, "INVITE");
}

static void test_double_record_route(void **state)
{
    invite("sip:bob@tcp.test", "z9hG4bKd1", "", 70);
    const struct fake_tp_msg *f = sent_to("192.0.2.3:5080", "INVITE ", 0);
    assert_non_null(f);
    assert_int_equal(f->proto, SIP_PROTO_TCP);
    assert_non_null(strstr(f->buf, "Via: SIP/2.0/TCP 192.0.2.1:5060;branch="));
    assert_non_null(strstr(f->buf, "\r\nRecord-Route: <sip:192.0.2.1:5060;transport=tcp;lr>\r\n"
                                   "Record-Route: <sip:192.0.2.1:5060;lr>\r\n"));
    uas_respond(f, 603, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 603", 0));
}

static void test_malformed(void **state)
{
    char bad[] = "INVITE sip:bob@b.test SIP/2.0\r\n"
                 "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKm1;rport\r\n"
                 "Max-Forwards: 70\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:bob@b.test>\r\n"
                 "Call-ID: m1\r\nCSeq: abc INVITE\r\nContent-Length: 0\r\n\r\n";
    struct sip_msg m;
    struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
    assert_int_equal(ims_sip_parse(bad, strlen(bad), false, &m, h, SIP_MAX_HEADERS_DEFAULT),
                     IMS_EPROTO);
    assert_non_null(m.err_reason);
    char want[128];
    snprintf(want, sizeof(want), "SIP/2.0 %d %s\r\n", m.err_status, m.err_reason);
    feed(SIP_PROTO_UDP, UAC, "%s", bad);
    assert_int_equal(E.tp.n, 1);
    assert_memory_equal(fake_tp_last(&E.tp)->buf, want, strlen(want));
    assert_int_equal(m.err_status, 400);
    assert_string_equal(fake_tp_dst(fake_tp_last(&E.tp)), UAC);
    /* a malformed response is dropped */
    feed(SIP_PROTO_UDP, UAS,
         "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKI00000000.1\r\n"
         "From: <sip:a@a.test>;tag=1\r\nTo: <sip:bob@b.test>\r\nCall-ID: m2\r\n"
         "CSeq: x\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(E.tp.n, 1);
    /* an ACK is never answered */
    feed(SIP_PROTO_UDP, UAC,
         "ACK sip:bob@b.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKm3\r\n"
         "Call-ID: m3\r\nCSeq: nope\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(E.tp.n, 1);
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    assert_int_equal(st.malformed, 3);
}

static void test_no_branch_400(void **state)
{
    invite("sip:bob@b.test", "1234", "", 70);
    assert_int_equal(E.tp.n, 1);
    assert_memory_equal(fake_tp_last(&E.tp)->buf, "SIP/2.0 400 Missing RFC 3261 Branch", 35);
}

static void test_proxy_require_420(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKpr1", "Proxy-Require: foo\r\n", 70);
    const struct fake_tp_msg *m = fake_tp_last(&E.tp);
    assert_memory_equal(m->buf, "SIP/2.0 420 Bad Extension\r\n", 27);
    assert_non_null(strstr(m->buf, "\r\nUnsupported: foo\r\n"));
}

static void test_cancel(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKc1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    uas_respond(f, 180, "INVITE");
    size_t mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAC,
         "CANCEL sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKc1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: call-z9hG4bKc1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *ok = sent_to(UAC, "SIP/2.0 200", mark);
    assert_non_null(ok);
    assert_non_null(strstr(ok->buf, "CSeq: 1 CANCEL"));
    const struct fake_tp_msg *c = sent_to(UAS, "CANCEL ", mark);
    assert_non_null(c);
    char b1[64], b2[64];
    f = sent_to(UAS, "INVITE ", 0);
    get_param(f->buf, "branch=", b1, sizeof(b1));
    get_param(c->buf, "branch=", b2, sizeof(b2));
    assert_string_equal(b1, b2); /* §9.1 */
    uas_respond(c, 200, "CANCEL");
    uas_respond(f, 487, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 487", mark));
    assert_non_null(sent_to(UAS, "ACK ", mark));
    /* a retransmitted CANCEL is absorbed (its own transaction resends 200) */
    feed(SIP_PROTO_UDP, UAC,
         "CANCEL sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKc1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: call-z9hG4bKc1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(fake_tp_count(&E.tp, "CANCEL "), 1);
}

static void test_cancel_unknown_forwarded(void **state)
{
    feed(SIP_PROTO_UDP, UAC,
         "CANCEL sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKc9;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: nope\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    /* §16.10: no context, forwarded statelessly */
    assert_non_null(sent_to(UAS, "CANCEL ", 0));
}

static void test_timeout_408(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKto1", "", 70);
    advance(64 * 500 - 1);
    assert_null(sent_to(UAC, "SIP/2.0 408", 0));
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 7); /* Timer A */
    advance(1);
    assert_non_null(sent_to(UAC, "SIP/2.0 408", 0));
}

/* RFC 4320 §4.1: a provisional other than 100 never goes to a non-INVITE's
 * client, not even relayed; our own 100 still comes when Timer E reaches T2. */
static void test_non_invite_no_18x(void **state)
{
    message("z9hG4bKnp1");
    const struct fake_tp_msg *f = sent_to(UAS, "MESSAGE ", 0);
    assert_non_null(f);
    uas_respond(f, 180, "MESSAGE");
    assert_null(sent_to(UAC, "SIP/2.0 ", 0));
    advance(3500);
    assert_non_null(sent_to(UAC, "SIP/2.0 100 Trying", 0));
    assert_null(sent_to(UAC, "SIP/2.0 180", 0));
    uas_respond(sent_to(UAS, "MESSAGE ", 0), 200, "MESSAGE");
    assert_non_null(sent_to(UAC, "SIP/2.0 200", 0));
}

/* RFC 4320 §4.2: a non-INVITE never gets a 408.  After Timer F nothing goes
 * upstream (the client gave up at the same time; teardown checks that the
 * request and its transactions still end). */
static void test_non_invite_timeout_no_408(void **state)
{
    message("z9hG4bKnt1");
    advance(64 * 500 + 1000);
    assert_int_equal(fake_tp_count(&E.tp, "MESSAGE "), 11); /* Timer E: 0.5, 1, 2, 4, 4... s */
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 100"), 1); /* at 3.5 s */
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 408"), 0);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 5"), 0);
    /* an INVITE still gets its 408 (test_timeout_408) */
}

/* An app's next hop that does not answer within noanswer_ms: a non-INVITE
 * gets 504 Server Time-out, not 408. */
static void app_forward_noanswer(void *ctx, struct proxy_req *r, const struct sip_msg *req)
{
    struct proxy_fwd f = { .next_hop = IMS_S("sip:192.0.2.6:5060"), .noanswer_ms = 1000 };
    assert_int_equal(ims_proxy_forward(r, &f), 0);
}

static void test_non_invite_noanswer_504(void **state)
{
    struct proxy_app app = { .name = "noanswer", .on_request = app_forward_noanswer };
    assert_int_equal(ims_proxy_set_app(E.p, 5060, &app), 0);
    message_until("z9hG4bKna1", "192.0.2.6:5060", 1000, "SIP/2.0 504 Server Time-out");
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 408"), 0);
}

/* §16.7 step 3: responses whose only Via is ours (a UAS that answered
 * the INVITE from its CANCEL's Via) are not relayed as they are: the 180
 * goes no further, the 486 still ends the branch and the client gets a
 * 486 of ours, with its own Via. */
static void test_response_only_our_via(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKov1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    assert_non_null(f);
    size_t mark = E.tp.n;
    uas_respond_vias(f, 180, "INVITE", 1);
    assert_null(sent_to(UAC, "SIP/2.0 180", mark));
    uas_respond_vias(f, 486, "INVITE", 1);
    const struct fake_tp_msg *r = sent_to(UAC, "SIP/2.0 486", mark);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "branch=z9hG4bKov1"));
    assert_non_null(sent_to(UAS, "ACK ", mark));
}

/* SIGTERM while a call rings: the INVITE's context and its two
 * transactions are work cut short, freed without being counted as leaks
 * (the server then exits 0); an idle proxy has nothing to abandon. */
static void test_free_while_ringing(void **state)
{
    (void)state;
    invite("sip:bob@b.test", "z9hG4bKfr1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    assert_non_null(f);
    uas_respond(f, 180, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 180", 0));
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    assert_int_equal(st.reqs_live, 1);
    assert_int_equal(st.txns_live, 2);
    assert_int_equal(ims_proxy_free(E.p), 0);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    memset(&E, 0, sizeof(E));
}

static void test_503_becomes_500(void **state)
{
    invite("sip:bob@b.test", "z9hG4bK5031", "", 70);
    uas_respond(sent_to(UAS, "INVITE ", 0), 503, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 500", 0)); /* §16.7 step 6 */
    assert_null(sent_to(UAC, "SIP/2.0 503", 0));
}

/* A send that fails at once (socket error) is no server bug: RFC 3261
 * §16.9 treats it as a 503, and §21.5.4 lets the client retry. */
static void test_forward_send_failure(void **state)
{
    E.tp.fail_next = 1; /* IMS_EIO */
    invite("sip:bob@b.test", "z9hG4bKf1", "", 70);
    const struct fake_tp_msg *m = sent_to(UAC, "SIP/2.0 503 Service Unavailable\r\n", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 5\r\n"));
    assert_null(sent_to(UAC, "SIP/2.0 500", 0));
    /* a full socket buffer (EAGAIN/ENOBUFS: the transport's IMS_ELIMIT) too */
    E.tp.fail_next = 1;
    E.tp.fail_rc = IMS_ELIMIT;
    invite("sip:bob@b.test", "z9hG4bKf2", "", 70);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 503 Service Unavailable\r\n"), 2);
    assert_null(sent_to(UAC, "SIP/2.0 500", 0));
}

/* The first send went out, a retransmission fails (Timer A/E, socket
 * error): the client transaction reports a transport error, which §16.9
 * treats as the branch's 503; with no other branch, §16.7 step 6 sends a
 * 500 upstream, not the 503 (and no 408, no hang).  A first send that fails
 * is answered before any branch exists (test_forward_send_failure). */
static void test_retransmission_send_failure(void **state)
{
    invite("sip:bob@b.test", "z9hG4bKrf1", "", 70);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    advance(300); /* the 100 Trying went out */
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 100"), 1);
    E.tp.fail_next = 1;
    advance(200); /* Timer A */
    advance(1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    assert_non_null(sent_to(UAC, "SIP/2.0 500 Next Hop Unavailable\r\n", 0));
    assert_null(sent_to(UAC, "SIP/2.0 503", 0));
    assert_null(sent_to(UAC, "SIP/2.0 408", 0));
}

/* The same for a non-INVITE (Timer E). */
static void test_retransmission_send_failure_nit(void **state)
{
    message("z9hG4bKrf2");
    E.tp.fail_next = 1;
    advance(500);
    advance(1);
    assert_int_equal(fake_tp_count(&E.tp, "MESSAGE "), 1);
    assert_non_null(sent_to(UAC, "SIP/2.0 500 Next Hop Unavailable\r\n", 0));
    assert_null(sent_to(UAC, "SIP/2.0 408", 0));
}

/* Overload that the admission check did not catch: the server transaction
 * took the table's last slot, the forward's client transaction finds none
 * (ims_sip_txn_client_new -> IMS_ELIMIT).  503 + Retry-After, not 500. */
static void test_txn_table_full_forward_503(void **state)
{
    teardown(state);
    retry_after_s = 7; /* [limits] retry_after */
    setup_max(3);
    retry_after_s = 0;
    invite("sip:bob@b.test", "z9hG4bKt1", "", 70); /* server + client txn */
    invite("sip:bob@b.test", "z9hG4bKt2", "", 70); /* server txn: the last slot */
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    const struct fake_tp_msg *m = sent_to(UAC, "SIP/2.0 503 Service Unavailable\r\n", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 7\r\n"));
    assert_non_null(strstr(m->buf, "\r\nCall-ID: call-z9hG4bKt2\r\n"));
    assert_null(sent_to(UAC, "SIP/2.0 500", 0));
    /* the table full at admission: the core's stateless 503 says 7 too */
    invite("sip:bob@b.test", "z9hG4bKt3", "", 70);
    m = sent_to(UAC, "SIP/2.0 503 Service Unavailable\r\n", m - E.tp.msgs + 1);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nCall-ID: call-z9hG4bKt3\r\n"));
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 7\r\n"));
    uas_respond(sent_to(UAS, "INVITE ", 0), 404, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 404", 0));
}

static void test_pool_full_503(void **state)
{
    teardown(state);
    setup_max(2);
    invite("sip:bob@b.test", "z9hG4bKp1", "", 70); /* server + client txn */
    invite("sip:bob@b.test", "z9hG4bKp2", "", 70);
    const struct fake_tp_msg *m = sent_to(UAC, "SIP/2.0 503", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 5\r\n"));
    uas_respond(sent_to(UAS, "INVITE ", 0), 404, "INVITE");
}


static void test_timer_c(void **state)
{
    teardown(state);
    timer_c_ms = 2000;
    setup_max(16);
    timer_c_ms = 0;
    /* a provisional came: Timer C cancels the branch, its 487 goes up */
    invite("sip:bob@b.test", "z9hG4bKtc1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    uas_respond(f, 180, "INVITE");
    advance(1999);
    assert_null(sent_to(UAS, "CANCEL ", 0));
    uas_respond(sent_to(UAS, "INVITE ", 0), 183, "INVITE"); /* restarts Timer C */
    advance(1999);
    assert_null(sent_to(UAS, "CANCEL ", 0));
    advance(1);
    const struct fake_tp_msg *c = sent_to(UAS, "CANCEL ", 0);
    assert_non_null(c);
    uas_respond(c, 200, "CANCEL");
    uas_respond(sent_to(UAS, "INVITE ", 0), 487, "INVITE");
    assert_non_null(sent_to(UAC, "SIP/2.0 487", 0));
    /* only a 100: counted as a 408 at once (and the branch cancelled) */
    size_t mark = E.tp.n;
    invite("sip:bob@b.test", "z9hG4bKtc2", "", 70);
    f = sent_to(UAS, "INVITE ", mark);
    uas_respond(f, 100, "INVITE");
    advance(2000);
    assert_non_null(sent_to(UAC, "SIP/2.0 408", mark));
    assert_non_null(sent_to(UAS, "CANCEL ", mark));
}

/* ---- the app API ---- */

static int app_statuses[8], napp;
static struct proxy_req *held;

static enum proxy_rsp_action app_rsp(struct proxy_req *r, int status, const struct sip_msg *rsp,
                                     void *ud)
{
    if (napp < 8)
        app_statuses[napp++] = status;
    assert_ptr_equal(ud, &E);
    return PROXY_RSP_RELAY;
}

static void app_forward(void *ctx, struct proxy_req *r, const struct sip_msg *req)
{
    static const uint16_t del[] = { SIP_H_USER_AGENT };
    struct proxy_fwd f = {
        .next_hop = IMS_S("sip:192.0.2.6:5060"),
        .add_hdrs = IMS_S("X-App: 1\r\n"),
        .del_hdrs = del,
        .ndel = 1,
        .on_response = app_rsp,
        .ud = &E,
        .rr_user = IMS_S("term-ab12"), /* RFC 5626 flow token (src/cscf/pcscf.c) */
        .rr_params = IMS_S(";ob"),
    };
    assert_int_equal(ims_proxy_forward(r, &f), 0);
    assert_int_equal(napp, 0); /* never inside the call */
}

static void test_app_forward(void **state)
{
    struct proxy_app app = { .name = "test", .on_request = app_forward };
    assert_int_equal(ims_proxy_set_app(E.p, 5060, &app), 0);
    napp = 0;
    invite("sip:bob@b.test", "z9hG4bKa1", "", 70);
    const struct fake_tp_msg *f = sent_to("192.0.2.6:5060", "INVITE ", 0);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, "\r\nX-App: 1\r\n"));
    assert_null(strstr(f->buf, "User-Agent"));
    /* the app's user part and parameters on our Record-Route */
    assert_non_null(strstr(f->buf, "\r\nRecord-Route: <sip:term-ab12@192.0.2.1:5060;lr;ob>\r\n"));
    uas_respond(f, 180, "INVITE");
    uas_respond(f, 486, "INVITE");
    assert_int_equal(napp, 2);
    assert_int_equal(app_statuses[0], 180);
    assert_int_equal(app_statuses[1], 486);
    assert_non_null(sent_to(UAC, "SIP/2.0 486", 0));
}

/* proxy_app.stateless_hop: an ACK whose Route's user is "flow" goes to the
 * app's hop, others by the route set */
static bool app_ack_hop(void *ctx, const struct sip_msg *m, const struct sip_tp_rx *rx, char *hop,
                        size_t cap)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_ROUTE);
    struct sip_nameaddr na;
    if (!h || ims_sip_parse_nameaddr(h->value, &na) != 0 || !ims_str_eq(na.uri.user, IMS_S("flow")))
        return false;
    snprintf(hop, cap, "sip:192.0.2.77:5099;transport=udp");
    return true;
}

static void test_app_stateless_hop(void **state)
{
    struct proxy_app app = { .name = "flows", .on_request = ims_proxy_route_static,
                             .stateless_hop = app_ack_hop };
    assert_int_equal(ims_proxy_set_app(E.p, 5060, &app), 0);
    static const char ack[] =
        "ACK sip:bob@10.9.9.9:5099 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKsh%d;rport\r\n"
        "Route: <sip:%s192.0.2.1:5060;lr;ob>\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
        "Call-ID: call-sh\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    feed(SIP_PROTO_UDP, UAC, ack, 1, "flow@");
    const struct fake_tp_msg *a = sent_to("192.0.2.77:5099", "ACK sip:bob@10.9.9.9:5099 ", 0);
    assert_non_null(a);
    assert_null(strstr(a->buf, "\r\nRoute:")); /* ours was popped */
    /* without the app's say: the Request-URI */
    size_t mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAC, ack, 2, "");
    assert_non_null(sent_to("10.9.9.9:5099", "ACK ", mark));
    assert_null(sent_to("192.0.2.77:5099", "ACK ", mark));
}

static int cancel_seen;

static void on_cancel(struct proxy_req *r, void *ud)
{
    cancel_seen++;
}

static void app_hold(void *ctx, struct proxy_req *r, const struct sip_msg *req)
{
    ims_proxy_req_hold(r); /* e.g. waiting for the HSS */
    ims_proxy_req_on_cancel(r, on_cancel, NULL);
    held = r;
}

static void test_app_suspend_resume(void **state)
{
    struct proxy_app app = { .name = "hold", .on_request = app_hold };
    assert_int_equal(ims_proxy_set_app(E.p, 0, &app), 0);
    held = NULL;
    invite("sip:bob@b.test", "z9hG4bKh1", "", 70);
    assert_non_null(held);
    advance(100);
    assert_non_null(sent_to(UAC, "SIP/2.0 100", 0)); /* while suspended */
    /* resumed later: the request's parse, kept on the txn's copy, stays its
     * own while another held request is looked at */
    struct proxy_req *first = held;
    invite("sip:bob@b.test", "z9hG4bKh1b", "", 70);
    struct proxy_req *second = held;
    assert_ptr_not_equal(first, second);
    const struct sip_msg *m = ims_proxy_req_msg(first);
    const struct sip_msg *m2 = ims_proxy_req_msg(second);
    assert_non_null(m);
    assert_non_null(m2);
    assert_ptr_equal(ims_proxy_req_msg(first), m);
    assert_ptr_equal(m->buf, ims_proxy_req_rx(first)->buf); /* the txn's copy */
    assert_int_equal(m->method, SIP_M_INVITE);
    assert_int_equal(m->call_id.len, 14);
    assert_memory_equal(m->call_id.p, "call-z9hG4bKh1", 14);
    assert_int_equal(m2->call_id.len, 15);
    assert_memory_equal(m2->call_id.p, "call-z9hG4bKh1b", 15);
    const struct sip_hdr *via = ims_sip_hdr_first(m, SIP_H_VIA);
    assert_non_null(via);
    assert_true(via->value.p > m->buf && via->value.p < m->buf + m->len);
    assert_int_equal(ims_proxy_reply(second, 486, NULL, NULL), 0);
    ims_proxy_req_release(second);
    held = first;
    struct proxy_reply_opts o = { .hdrs = IMS_S("Warning: 399 proxy \"test\"\r\n") };
    assert_int_equal(ims_proxy_reply(held, 403, NULL, &o), 0);
    const struct fake_tp_msg *r = sent_to(UAC, "SIP/2.0 403 Forbidden", 0);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nWarning: 399 proxy \"test\"\r\n"));
    assert_int_equal(ims_proxy_reply(held, 200, NULL, NULL), IMS_EINVAL); /* one final */
    ims_proxy_req_release(held);

    /* a CANCEL while suspended: 200, 487, and the app hears of it */
    held = NULL;
    cancel_seen = 0;
    invite("sip:bob@b.test", "z9hG4bKh2", "", 70);
    feed(SIP_PROTO_UDP, UAC,
         "CANCEL sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKh2;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: call-z9hG4bKh2\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(sent_to(UAC, "SIP/2.0 487", 0));
    assert_int_equal(cancel_seen, 1);
    assert_true(ims_proxy_req_cancelled(held));
    assert_int_equal(ims_proxy_forward(held, &(struct proxy_fwd){ 0 }), IMS_EINVAL);
    ims_proxy_req_release(held);

    /* released without an answer: the core answers 500 */
    held = NULL;
    invite("sip:bob@b.test", "z9hG4bKh3", "", 70);
    ims_proxy_req_release(held);
    assert_non_null(sent_to(UAC, "SIP/2.0 500", 0));
}

/* An app that forwards with an edit list the core refuses (IMS_EINVAL: a
 * caller bug) and answers with ims_proxy_forward_failed(). */
static int fwd_fail_rc, fwd_fail_status;

static void app_forward_bad(void *ctx, struct proxy_req *r, const struct sip_msg *req)
{
    static const uint16_t del[PROXY_MAX_DEL + 1];
    struct proxy_fwd f = { .del_hdrs = del, .ndel = PROXY_MAX_DEL + 1 };
    fwd_fail_rc = ims_proxy_forward(r, &f);
    fwd_fail_status = ims_proxy_forward_failed(r, fwd_fail_rc);
}

/* The app API's mapping: our bug -> 500, lack of resources -> 503. */
static void test_forward_failed_mapping(void **state)
{
    struct proxy_app app = { .name = "bad", .on_request = app_forward_bad };
    assert_int_equal(ims_proxy_set_app(E.p, 0, &app), 0);
    invite("sip:bob@b.test", "z9hG4bKm1", "", 70);
    assert_int_equal(fwd_fail_rc, IMS_EINVAL);
    assert_int_equal(fwd_fail_status, 500);
    const struct fake_tp_msg *m = sent_to(UAC, "SIP/2.0 500 Forwarding Failed\r\n", 0);
    assert_non_null(m);
    assert_null(strstr(m->buf, "Retry-After"));
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 0);

    /* resources: the same request the other way */
    app.on_request = app_hold;
    assert_int_equal(ims_proxy_set_app(E.p, 0, &app), 0);
    held = NULL;
    invite("sip:bob@b.test", "z9hG4bKm2", "", 70);
    assert_non_null(held);
    assert_int_equal(ims_proxy_forward_failed(held, IMS_ENOMEM), 503);
    m = sent_to(UAC, "SIP/2.0 503 Service Unavailable\r\n", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 5\r\n"));
    /* one final only: a second answer is refused */
    assert_int_equal(ims_proxy_forward_failed(held, IMS_ELIMIT), IMS_EINVAL);
    ims_proxy_req_release(held);
    /* no target at all: 503 too, with its own phrase */
    held = NULL;
    invite("sip:bob@b.test", "z9hG4bKm3", "", 70);
    assert_int_equal(ims_proxy_forward_failed(held, IMS_ENOENT), 503);
    m = sent_to(UAC, "SIP/2.0 503 No Route To Destination\r\n", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nRetry-After: 5\r\n"));
    ims_proxy_req_release(held);
}

static void app_nothing(void *ctx, struct proxy_req *r, const struct sip_msg *req)
{
}

static void test_app_does_nothing_500(void **state)
{
    struct proxy_app app = { .name = "lazy", .on_request = app_nothing };
    ims_proxy_set_app(E.p, 0, &app);
    invite("sip:bob@b.test", "z9hG4bKn1", "", 70);
    assert_non_null(sent_to(UAC, "SIP/2.0 500", 0));
}

static int uac_status;
static int uac_calls;

static void uac_cb(struct ims_proxy *p, int status, const struct sip_msg *rsp, void *ud)
{
    uac_calls++;
    uac_status = status;
    assert_ptr_equal(ud, &E);
}

static void test_uac_request(void **state)
{
    struct proxy_uac_req rq = {
        .method = IMS_S("NOTIFY"),
        .ruri = IMS_S("sip:alice@10.0.0.5:5099"),
        .from = IMS_S("<sip:bob@b.test>;tag=n1"),
        .to = IMS_S("<sip:alice@a.test>;tag=n2"),
        .call_id = IMS_S("notify-1"),
        .cseq = 3,
        .hdrs = IMS_S("Event: reg\r\nSubscription-State: active\r\n"),
        .content_type = IMS_S("application/reginfo+xml"),
        .body = IMS_S("<reginfo/>"),
    };
    uac_calls = 0;
    assert_int_equal(ims_proxy_uac_send(E.p, &rq, uac_cb, &E), 0);
    assert_int_equal(uac_calls, 0);
    const struct fake_tp_msg *n = sent_to("10.0.0.5:5099", "NOTIFY sip:alice@10.0.0.5:5099 ", 0);
    assert_non_null(n);
    assert_non_null(strstr(n->buf, "\r\nEvent: reg\r\n"));
    assert_non_null(strstr(n->buf, "\r\n\r\n<reginfo/>"));
    char br[64];
    get_param(n->buf, "branch=", br, sizeof(br));
    feed(SIP_PROTO_UDP, "10.0.0.5:5099",
         "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=%s;rport=5060\r\n"
         "From: <sip:bob@b.test>;tag=n1\r\nTo: <sip:alice@a.test>;tag=n2\r\n"
         "Call-ID: notify-1\r\nCSeq: 3 NOTIFY\r\nContent-Length: 0\r\n\r\n",
         br);
    assert_int_equal(uac_calls, 1);
    assert_int_equal(uac_status, 200);
    /* no answer: a 408 after Timer F */
    rq.call_id = IMS_S("notify-2");
    assert_int_equal(ims_proxy_uac_send(E.p, &rq, uac_cb, &E), 0);
    advance(64 * 500);
    assert_int_equal(uac_calls, 2);
    assert_int_equal(uac_status, 408);
    assert_int_equal(ims_proxy_uac_send(E.p, &(struct proxy_uac_req){ .method = IMS_S("A B") },
                                        uac_cb, &E),
                     IMS_EINVAL);
}

static void test_stateless_response(void **state)
{
    /* a late response with our Via on top and no transaction */
    feed(SIP_PROTO_UDP, UAS,
         "SIP/2.0 200 OK\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKS12345678\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKx;rport=4444;received=192.0.2.10\r\n"
         "From: <sip:a@a.test>;tag=1\r\nTo: <sip:b@b.test>;tag=2\r\nCall-ID: sl1\r\n"
         "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *m = sent_to("192.0.2.10:4444", "SIP/2.0 200", 0);
    assert_non_null(m);
    assert_null(strstr(m->buf, "z9hG4bKS12345678"));
    /* not ours: dropped */
    feed(SIP_PROTO_UDP, UAS,
         "SIP/2.0 200 OK\r\n"
         "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKS12345678\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKx;rport=4444;received=192.0.2.10\r\n"
         "From: <sip:a@a.test>;tag=1\r\nTo: <sip:b@b.test>;tag=2\r\nCall-ID: sl2\r\n"
         "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(E.tp.n, 1);
}

static void test_to_self_not_options(void **state)
{
    invite("sip:bob@proxy.test", "z9hG4bKself1", "", 70);
    assert_non_null(sent_to(UAC, "SIP/2.0 404", 0));
    invite("sip:192.0.2.1", "z9hG4bKself2", "", 70);
    const struct fake_tp_msg *m = sent_to(UAC, "SIP/2.0 405", 0);
    assert_non_null(m);
    assert_non_null(strstr(m->buf, "\r\nAllow: "));
}

static void test_response_handoff(void **state)
{
    /* a second worker's proxy sharing the directory */
    teardown(state);
    memset(&E, 0, sizeof(E));
    assert_int_equal(ims_loop_new(4096, &E.loop), 0);
    struct ims_loop *loop1;
    assert_int_equal(ims_loop_new(4096, &loop1), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME);
    struct proxy_cfg cfg = {
        .routes = routes, .nroutes = 2, .max_transactions = 8,
        .self_names = self_names, .nself = 2,
    };
    assert_int_equal(ims_proxy_shared_new(2, &cfg, &E.sh), 0);
    struct ims_proxy *p1;
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    assert_int_equal(ims_proxy_new(E.sh, 1, loop1, NULL, &p1), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    feed(SIP_PROTO_UDP, UAS,
         "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKI01cafe0000.9\r\n"
         "From: <sip:a@a.test>;tag=1\r\nTo: <sip:b@b.test>;tag=2\r\nCall-ID: h1\r\n"
         "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    assert_int_equal(st.handed_off, 1);
    assert_int_equal(E.tp.n, 0);
    assert_int_equal(ims_proxy_free(p1), 0);
    ims_loop_free(loop1); /* drops the pending hand-off */
}


/* ---- allocation failures ---- */

/* A call with every step tolerant of a missing message: INVITE, 180, 200,
 * ACK, BYE, 200, plus a CANCELled INVITE, an OPTIONS and a NOTIFY. */
static void call_scenario(void)
{
    invite("sip:bob@b.test", "z9hG4bKfa1", "", 70);
    const struct fake_tp_msg *f = sent_to(UAS, "INVITE ", 0);
    if (f) {
        uas_respond(f, 180, "INVITE");
        uas_respond(f, 200, "INVITE");
    }
    feed(SIP_PROTO_UDP, UAC,
         "ACK sip:bob@" UAS " SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKfack;rport\r\n"
         "Route: <sip:192.0.2.1:5060;lr>\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
         "Call-ID: call-z9hG4bKfa1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    size_t mark = E.tp.n;
    feed(SIP_PROTO_UDP, UAC,
         "BYE sip:bob@" UAS " SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKfbye;rport\r\n"
         "Route: <sip:192.0.2.1:5060;lr>\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>;tag=tb\r\n"
         "Call-ID: call-z9hG4bKfa1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n");
    f = sent_to(UAS, "BYE ", mark);
    if (f)
        uas_respond(f, 200, "BYE");
    advance(150);
    mark = E.tp.n;
    invite("sip:bob@b.test", "z9hG4bKfa2", "", 70);
    f = sent_to(UAS, "INVITE ", mark);
    if (f)
        uas_respond(f, 183, "INVITE");
    feed(SIP_PROTO_UDP, UAC,
         "CANCEL sip:bob@b.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKfa2;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@a.test>;tag=fa\r\nTo: <sip:bob@b.test>\r\n"
         "Call-ID: call-z9hG4bKfa2\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *c = sent_to(UAS, "CANCEL ", mark);
    if (c)
        uas_respond(c, 200, "CANCEL");
    if (f)
        uas_respond(f, 487, "INVITE");
    feed(SIP_PROTO_UDP, UAC,
         "OPTIONS sip:proxy.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=z9hG4bKfo1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:a@a.test>;tag=1\r\nTo: <sip:proxy.test>\r\n"
         "Call-ID: fo1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    struct proxy_uac_req rq = {
        .method = IMS_S("NOTIFY"), .ruri = IMS_S("sip:alice@10.0.0.5:5099"),
        .from = IMS_S("<sip:bob@b.test>;tag=n1"), .to = IMS_S("<sip:alice@a.test>;tag=n2"),
        .call_id = IMS_S("fnotify"), .cseq = 3, .hdrs = IMS_S("Event: reg\r\n"),
    };
    ims_proxy_uac_send(E.p, &rq, uac_cb, &E);
}

static void test_alloc_failures(void **state)
{
    teardown(state);
    unsigned long n;
    unsigned long only = getenv("FAILN") ? strtoul(getenv("FAILN"), NULL, 10) : 0;
    /* odd runs: only allocation n fails; even runs: n and every later one */
    for (n = only ? only : 2; n < 4000; n++) {
        setup(state);
        if (only)
            ims_log_set_level(IMS_LOG_DEBUG);
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        call_scenario();
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        if (only)
            for (size_t i = 0; i < E.tp.n; i++)
                fprintf(stderr, "---- to %s t=%llu\n%s", fake_tp_dst(&E.tp.msgs[i]),
                        (unsigned long long)E.tp.msgs[i].at_ms, E.tp.msgs[i].buf);
        size_t bad = finish(); /* every transaction and context ended, nothing leaked */
        if (bad)
            fail_msg("failing allocation %lu: txns*1000+reqs*100+leaks = %zu", n, bad);
        if (used < n / 2)
            break; /* this run allocated fewer than n/2 times: all were tried */
    }
    print_message("allocation failure runs: %lu\n", n);
    assert_true(n > 10 && n < 4000);
    setup(state);
}


/* Overload control (ratelimit.c): each request is admitted by the delay it
 * waited, within the ceiling; late ones only through the floor. */
/* A request that answers our challenge; counts the questions. */
static int asked;
static bool yes(const void *ctx)
{
    (void)ctx;
    asked++;
    return true;
}

static void test_overload_admit(void **state)
{
    (void)state;
    asked = 0;
    const struct px_ol_params pr = { .target_ms = 100, .min_rate = 50, .max_rate = 1000 };
    struct px_ol_state o = { .tokens = 201, .floor_tokens = 11, .last_ms = 1000 };
    uint64_t now = 1000;
    /* within the target: admitted up to the ceiling's bucket (200 ms worth) */
    int in = 0;
    for (int i = 0; i < 300; i++)
        in += px_ol_admit(&o, &pr, 50, NULL, NULL, now);
    assert_int_equal(in, 201);
    /* late: the floor's 11, then refused, whatever the ceiling has left */
    now += 1000;
    in = 0;
    for (int i = 0; i < 100; i++)
        in += px_ol_admit(&o, &pr, 150, NULL, NULL, now);
    assert_int_equal(in, 11);
    /* the next one within the target is admitted at once: nothing to
     * recover from (the old adaptive rate stayed low for seconds) */
    assert_true(px_ol_admit(&o, &pr, 20, NULL, NULL, now));
    /* an answer to our challenge may wait four times the target; its
     * credentials are looked at only when it is late */
    assert_true(px_ol_admit(&o, &pr, 90, yes, NULL, now));
    assert_int_equal(asked, 0);
    assert_true(px_ol_admit(&o, &pr, 390, yes, NULL, now));
    assert_false(px_ol_admit(&o, &pr, 410, yes, NULL, now));
    assert_int_equal(asked, 1);
    assert_false(px_ol_admit(&o, &pr, 110, NULL, NULL, now));
    /* the floor refills at min_rate: 50/s, so one in 20 ms */
    assert_true(px_ol_admit(&o, &pr, 500, NULL, NULL, now + 20));
    assert_false(px_ol_admit(&o, &pr, 500, NULL, NULL, now + 20));
    /* no delay of its own (TCP): the last UDP one stands in for 200 ms
     * (no floor here, so that only the delay decides) */
    const struct px_ol_params nofloor = { .target_ms = 100, .max_rate = 1000 };
    struct px_ol_state t = { .tokens = 201 };
    assert_true(px_ol_admit(&t, &nofloor, -1, NULL, NULL, 5000)); /* no UDP delay yet */
    assert_false(px_ol_admit(&t, &nofloor, 120, NULL, NULL, 5000));
    assert_false(px_ol_admit(&t, &nofloor, -1, NULL, NULL, 5150));
    assert_true(px_ol_admit(&t, &nofloor, -1, NULL, NULL, 5250));
    assert_int_equal(t.refused, 2);
}

/* The same through the proxy: late requests get 503 Overloaded with
 * Retry-After, a hop from one of our own listeners (from_self) never does. */
static void late_message(const char *branch, const char *auth, int32_t queue_ms, bool self)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "MESSAGE sip:bob@b.test SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 10.0.0.5:5099;branch=%s;rport\r\n"
             "Max-Forwards: 70\r\n"
             "From: <sip:alice@a.test>;tag=fa\r\n"
             "To: <sip:bob@b.test>\r\n"
             "Call-ID: ol-%s\r\n"
             "CSeq: 1 MESSAGE\r\n"
             "%s"
             "Content-Length: 0\r\n\r\n",
             branch, branch, auth);
    struct sip_tp_rx rx = fake_tp_rx(buf, SIP_PROTO_UDP, UAC, ME);
    rx.queue_ms = queue_ms;
    rx.from_self = self;
    ims_proxy_rx(E.p, &rx);
}

static void test_overload_503(void **state)
{
    (void)state;
    struct ims_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.workers = 1;
    cfg.lim_overload_target_ms = 100;
    cfg.lim_overload_min_rate = 1; /* a floor of one request */
    cfg.lim_overload_max_rate = 1000;
    cfg.lim_retry_after = 7;
    char err[128];
    assert_int_equal(ims_proxy_limits_start(&cfg, err, sizeof(err)), 0);
    late_message("z9hG4bK-ol0", "", 300, false); /* the floor's one */
    assert_non_null(sent_to(UAS, "MESSAGE ", 0));
    size_t n = E.tp.n;
    late_message("z9hG4bK-ol1", "", 300, false);
    assert_int_equal(E.tp.n, n + 1);
    assert_non_null(strstr(E.tp.msgs[n].buf, "SIP/2.0 503 Overloaded\r\n"));
    assert_non_null(strstr(E.tp.msgs[n].buf, "Retry-After: 7\r\n"));
    /* the same delay on a hop between our roles: forwarded */
    late_message("z9hG4bK-ol2", "", 300, true);
    assert_non_null(sent_to(UAS, "MESSAGE ", n + 1));
    /* credentials answering a challenge: admitted up to 4 x the target */
    static const char digest[] = "Proxy-Authorization: Digest username=\"alice\", "
                                 "realm=\"a.test\", nonce=\"n1\", uri=\"sip:bob@b.test\", "
                                 "response=\"0123456789abcdef0123456789abcdef\"\r\n";
    n = E.tp.n;
    late_message("z9hG4bK-ol3", digest, 300, false);
    assert_non_null(sent_to(UAS, "MESSAGE ", n));
    n = E.tp.n;
    late_message("z9hG4bK-ol4", digest, 500, false);
    assert_non_null(strstr(E.tp.msgs[n].buf, "SIP/2.0 503 Overloaded\r\n"));
    /* an empty response (a TS 24.229 UE's first REGISTER) answers nothing */
    n = E.tp.n;
    late_message("z9hG4bK-ol5",
                 "Proxy-Authorization: Digest username=\"alice\", realm=\"a.test\", "
                 "nonce=\"\", uri=\"sip:bob@b.test\", response=\"\"\r\n",
                 300, false);
    assert_non_null(strstr(E.tp.msgs[n].buf, "SIP/2.0 503 Overloaded\r\n"));
    /* in time: forwarded */
    n = E.tp.n;
    late_message("z9hG4bK-ol6", "", 20, false);
    assert_non_null(sent_to(UAS, "MESSAGE ", n));
    uint64_t limited, dropped, overload;
    ims_proxy_limits_counts(&limited, &dropped, &overload);
    assert_int_equal(overload, 3);
    ims_proxy_limits_stop();
    advance(64 * 500); /* the forwarded MESSAGEs time out (Timer F), then Timer J */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options_to_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_forwards_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100_trying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_no_18x, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loose_route_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_route_fix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_record_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_branch_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_require_420, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_unknown_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_408, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_timeout_no_408, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_noanswer_504, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_only_our_via, setup, teardown),
        cmocka_unit_test_setup(test_free_while_ringing, setup),
        cmocka_unit_test_setup_teardown(test_503_becomes_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_send_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retransmission_send_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retransmission_send_failure_nit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_full_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_table_full_forward_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_stateless_hop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_suspend_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_failed_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_does_nothing_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uac_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stateless_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_self_not_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_handoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test(test_overload_admit),
        cmocka_unit_test_setup_teardown(test_overload_503, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
