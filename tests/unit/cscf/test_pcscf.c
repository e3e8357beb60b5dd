/* test_pcscf - the P-CSCF app on a real proxy over the fake transport:
 * Path and P-Visited-Network-ID on REGISTER, the flow kept from the 200
 * (Service-Route, P-Associated-URI), P-Asserted-Identity from the registered
 * set (P-Preferred-Identity honoured only inside it, identities from the UE
 * removed), the Service-Route as route, 403 for UEs that did not register,
 * terminating requests along the Path token to the UE's flow (and a forged
 * token refused), de-registration, a 503 passed on, and RFC 3329 sec-agree
 * with tls (Security-Server in the 401, Security-Verify checked, 494). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/cscf.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "sip/build.h"
#include "cscf_tests.h"

#define ME "192.0.2.1:5060"
#define ME_TLS "192.0.2.1:5061"
#define UE "192.0.2.10:5099"
#define UE2 "192.0.2.11:5099"
#define UE3 "192.0.2.12:5099"
#define ICSCF "192.0.2.5:5070"
#define SCSCF "192.0.2.6:6060"

static const char conf[] = "[core]\nworkers = 1\nroles = pcscf\n"
                           "[sip]\nlisten = udp:192.0.2.1:5060\nlisten = tcp:192.0.2.1:5060\n"
                           "[pcscf]\nports = 5060\nicscf = sip:" ICSCF "\n"
                           "visited_network_id = visited.test\nflow_timer = 20\n";

/* sec-agree needs a TLS listener on a P-CSCF port (the key files are not
 * read here: nothing listens) */
static const char conf_sa[] = "[core]\nworkers = 1\nroles = pcscf\n"
                              "[sip]\nlisten = udp:192.0.2.1:5060\nlisten = tcp:192.0.2.1:5060\n"
                              "listen = tls:192.0.2.1:5061\ntls_cert = /dev/null\n"
                              "tls_key = /dev/null\n"
                              "[pcscf]\nports = 5060,5061\nicscf = sip:" ICSCF "\n"
                              "visited_network_id = visited.test\n";
static const char *conf_now = conf;

/* a TLS port without sec-agree (integrity-protected does not need it) */
static const char conf_tls[] = "[core]\nworkers = 1\nroles = pcscf\n"
                               "[sip]\nlisten = udp:192.0.2.1:5060\n"
                               "listen = tls:192.0.2.1:5061\ntls_cert = /dev/null\n"
                               "tls_key = /dev/null\n"
                               "[pcscf]\nports = 5060,5061\nicscf = sip:" ICSCF "\n"
                               "visited_network_id = visited.test\nsec_agree = no\n";

/* room for two UEs' flows */
static const char conf_max2[] = "[core]\nworkers = 1\nroles = pcscf\n"
                                "[sip]\nlisten = udp:192.0.2.1:5060\n"
                                "[pcscf]\nports = 5060\nicscf = sip:" ICSCF "\nmax_ues = 2\n"
                                "visited_network_id = visited.test\n";

/* the operator turned Record-Route off: a UE's dialogs do not name us */
static const char conf_norr[] = "[core]\nworkers = 1\nroles = pcscf\n"
                                "[sip]\nlisten = udp:192.0.2.1:5060\n"
                                "[proxy]\nrecord_route = no\n"
                                "[pcscf]\nports = 5060\nicscf = sip:" ICSCF "\n"
                                "visited_network_id = visited.test\n";

static const char *const self_names[] = { "192.0.2.1" };

static struct {
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct fake_tp tp;
} E;

static int setup(void **state)
{
    char err[256];
    memset(&E, 0, sizeof(E));
    assert_int_equal(ims_cfg_load_string("test", conf_now, &E.cfg, err, sizeof(err)), 0);
    assert_int_equal(ims_loop_new(4096, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME);
    fake_tp_set_local(&E.tp, SIP_PROTO_TCP, ME);
    fake_tp_set_local(&E.tp, SIP_PROTO_TLS, ME_TLS);
    struct proxy_cfg pc = { .max_transactions = 64, .self_names = self_names, .nself = 1 };
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    assert_int_equal(ims_cscf_new(E.cfg, NULL, 1, &E.c, err, sizeof(err)), 0);
    assert_int_equal(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    if (getenv("DUMP"))
        for (size_t i = 0; i < E.tp.n; i++)
            fprintf(stderr, "---- to %s\n%s", fake_tp_dst(&E.tp.msgs[i]), E.tp.msgs[i].buf);
    fake_tp_clock_advance(E.loop, 64 * 500 + 5000);
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    ims_cscf_stop(E.c);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(ims_cscf_free(E.c), 0);
    ims_cfg_free(E.cfg);
    conf_now = conf;
    assert_int_equal(st.reqs_live, 0);
    assert_int_equal(leaked, 0);
    return 0;
}

static int setup_sa(void **state)
{
    conf_now = conf_sa;
    return setup(state);
}

static int setup_tls(void **state)
{
    conf_now = conf_tls;
    return setup(state);
}

static int setup_max2(void **state)
{
    conf_now = conf_max2;
    return setup(state);
}

static int setup_norr(void **state)
{
    conf_now = conf_norr;
    return setup(state);
}

static void feed(enum sip_proto proto, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vfeed(enum sip_proto proto, const char *src, uint64_t conn, const char *fmt,
                  va_list ap) __attribute__((format(printf, 4, 0)));
static void vfeed(enum sip_proto proto, const char *src, uint64_t conn, const char *fmt,
                  va_list ap)
{
    char buf[8192];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    struct sip_tp_rx rx = fake_tp_rx(buf, proto, src, proto == SIP_PROTO_TLS ? ME_TLS : ME);
    if (conn)
        rx.conn_id = conn;
    ims_proxy_rx(E.p, &rx);
}

static void feed(enum sip_proto proto, const char *src, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfeed(proto, src, 0, fmt, ap);
    va_end(ap);
}

/* feed() on stream connection conn (fake_tp_rx's own is 77) */
static void feed_conn(enum sip_proto proto, const char *src, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void feed_conn(enum sip_proto proto, const char *src, uint64_t conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfeed(proto, src, conn, fmt, ap);
    va_end(ap);
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

/* The next hop's response to a request we forwarded. */
/* The next hop's response to a request we forwarded (nothing when it cannot
 * be built: the allocation-failure runs). */
static void respond(const struct fake_tp_msg *fwd, const char *from, int status, const char *hdrs)
{
    struct sip_msg m;
    struct sip_hdr h[64];
    assert_true(ims_sip_parse(fwd->buf, fwd->len, false, &m, h, 64) > 0);
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    if (ims_sip_build_response(&b, &m, status, NULL, IMS_S("t9"), ims_str_cstr(hdrs),
                               IMS_STR_NULL, IMS_STR_NULL) == 0) {
        struct sip_tp_rx rx = fake_tp_rx(b.p, SIP_PROTO_UDP, from, ME);
        ims_proxy_rx(E.p, &rx);
    }
    ims_buf_free(&b);
}

#define REGISTER_FMT                                                                               \
    "REGISTER sip:ims.test SIP/2.0\r\n"                                                            \
    "Via: SIP/2.0/%s 10.0.0.9:5099;branch=z9hG4bK%s;rport\r\n"                                     \
    "Max-Forwards: 70\r\n"                                                                         \
    "From: <sip:alice@ims.test>;tag=r1\r\n"                                                        \
    "To: <sip:alice@ims.test>\r\n"                                                                 \
    "Call-ID: reg-%s\r\n"                                                                          \
    "CSeq: %d REGISTER\r\n"                                                                        \
    "Contact: <sip:alice@10.0.0.9:5099>\r\n"                                                       \
    "P-Asserted-Identity: <sip:boss@ims.test>\r\n"                                                 \
    "Expires: %d\r\n"                                                                              \
    "Content-Length: 0\r\n\r\n"

#define MESSAGE_FMT                                                                                \
    "MESSAGE %s SIP/2.0\r\n"                                                                       \
    "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bK%s;rport\r\n"                                    \
    "Max-Forwards: 70\r\n"                                                                         \
    "%s"                                                                                           \
    "From: <sip:alice@ims.test>;tag=m1\r\n"                                                        \
    "To: <sip:bob@ims.test>\r\n"                                                                   \
    "Call-ID: msg-%s\r\n"                                                                          \
    "CSeq: 1 MESSAGE\r\n"                                                                          \
    "Content-Type: text/plain\r\n"                                                                 \
    "Content-Length: 2\r\n\r\nhi"

/* Registers alice from UE over proto; returns the Path token (user part). */
static void do_register(enum sip_proto proto, const char *src, const char *b, char *token,
                        size_t cap)
{
    size_t from = E.tp.n;
    feed(proto, src, REGISTER_FMT, proto == SIP_PROTO_TCP ? "TCP" : "UDP", b, b, 1, 600);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    const char *path = strstr(fwd->buf, "\r\nPath: <sip:");
    assert_non_null(path);
    path += strlen("\r\nPath: <sip:");
    size_t n = strcspn(path, "@");
    assert_true(n < cap && strncmp(path, "term-", 5) == 0);
    memcpy(token, path, n);
    token[n] = '\0';
    assert_non_null(strstr(path, "@192.0.2.1:5060;lr>\r\n"));
    assert_non_null(strstr(fwd->buf, "\r\nP-Visited-Network-ID: \"visited.test\"\r\n"));
    assert_null(strstr(fwd->buf, "boss")); /* no identity from the UE goes on */
    respond(fwd, ICSCF, 200,
            "Contact: <sip:alice@10.0.0.9:5099>;expires=600\r\n"
            "Path: <sip:term-x@192.0.2.1:5060;lr>\r\n"
            "Service-Route: <sip:192.0.2.6:6060;lr;orig>\r\n"
            "P-Associated-URI: <sip:alice@ims.test>, <tel:+15550001>\r\n");
    assert_non_null(sent_to(proto == SIP_PROTO_TCP ? src : src, "SIP/2.0 200", from));
}

static void test_register_and_originate(void **state)
{
    char token[256];
    do_register(SIP_PROTO_UDP, UE, "r1", token, sizeof(token));

    /* P-Preferred-Identity inside the set: asserted; the UE's own PAI goes */
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, MESSAGE_FMT, "sip:bob@ims.test", "m1",
         "Route: <sip:192.0.2.1:5060;lr>\r\nP-Preferred-Identity: <tel:+15550001>\r\n"
         "P-Asserted-Identity: <sip:boss@ims.test>\r\n",
         "1");
    const struct fake_tp_msg *fwd = sent_to(SCSCF, "MESSAGE ", from);
    assert_non_null(fwd);
    assert_non_null(strstr(fwd->buf, "\r\nP-Asserted-Identity: <tel:+15550001>\r\n"));
    assert_non_null(strstr(fwd->buf, "\r\nRoute: <sip:192.0.2.6:6060;lr;orig>\r\n"));
    assert_null(strstr(fwd->buf, "P-Preferred-Identity"));
    assert_null(strstr(fwd->buf, "boss"));
    assert_null(strstr(fwd->buf, "Route: <sip:192.0.2.1"));
    respond(fwd, SCSCF, 200, "");
    assert_non_null(sent_to(UE, "SIP/2.0 200", from));

    /* outside the set: the default identity (the first associated URI) */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, MESSAGE_FMT, "sip:bob@ims.test", "m2",
         "P-Preferred-Identity: <sip:carol@ims.test>\r\n", "2");
    fwd = sent_to(SCSCF, "MESSAGE ", from);
    assert_non_null(fwd);
    assert_non_null(strstr(fwd->buf, "\r\nP-Asserted-Identity: <sip:alice@ims.test>\r\n"));
    assert_null(strstr(fwd->buf, "carol"));
    respond(fwd, SCSCF, 200, "");

    /* another UE (another flow) never registered here: 403 */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE2, MESSAGE_FMT, "sip:bob@ims.test", "m3", "", "3");
    assert_non_null(sent_to(UE2, "SIP/2.0 403", from));
    assert_null(sent_to(SCSCF, "MESSAGE ", from));
}

static void test_terminating(void **state)
{
    char token[256], forged[256];
    do_register(SIP_PROTO_UDP, UE, "r2", token, sizeof(token));
    /* from the S-CSCF along the Path: to the UE's flow (its source address),
     * not to the private address in the Request-URI */
    size_t from = E.tp.n;
    char route[400];
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr>\r\n", token);
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099", "t1", route, "t1");
    const struct fake_tp_msg *fwd = sent_to(UE, "MESSAGE sip:alice@10.0.0.9:5099", from);
    assert_non_null(fwd);
    respond(fwd, UE, 200, "");
    assert_non_null(sent_to(SCSCF, "SIP/2.0 200", from));

    /* a token with another MAC is not ours: an originating request from a
     * host that never registered */
    snprintf(forged, sizeof(forged), "%s", token);
    size_t n = strlen(forged);
    forged[n - 1] = forged[n - 1] == '0' ? '1' : '0';
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr>\r\n", forged);
    from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099", "t2", route, "t2");
    assert_non_null(sent_to(SCSCF, "SIP/2.0 403", from));
    assert_null(sent_to(UE, "MESSAGE ", from));
}

static void test_deregister(void **state)
{
    char token[256];
    do_register(SIP_PROTO_UDP, UE, "r3", token, sizeof(token));
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, REGISTER_FMT, "UDP", "r4", "r4", 2, 0);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, ICSCF, 200, ""); /* no binding left */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, MESSAGE_FMT, "sip:bob@ims.test", "m5", "", "5");
    assert_non_null(sent_to(UE, "SIP/2.0 403", from));
    /* and the Path token no longer leads anywhere */
    char route[400];
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr>\r\n", token);
    from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099", "t3", route, "t3");
    assert_non_null(sent_to(SCSCF, "SIP/2.0 480", from));
}

static void test_tcp_flow(void **state)
{
    char token[256];
    do_register(SIP_PROTO_TCP, UE, "r5", token, sizeof(token));
    char route[400];
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr>\r\n", token);
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099", "t4", route, "t4");
    const struct fake_tp_msg *fwd = sent_to(UE, "MESSAGE ", from);
    assert_non_null(fwd);
    assert_int_equal(fwd->proto, SIP_PROTO_TCP);
    respond(fwd, UE, 200, "");
}

/* RFC 5626: a REGISTER with reg-id gets ";ob" on our Path URI; the 200 that
 * grants outbound gets Flow-Timer; once the flow is gone, a request along
 * the ;ob Path gets 430 (the S-CSCF tries another flow), not 480. */
static void test_outbound(void **state)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE,
         "REGISTER sip:ims.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bKob1;rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@ims.test>;tag=o1\r\nTo: <sip:alice@ims.test>\r\n"
         "Call-ID: reg-ob\r\nCSeq: 1 REGISTER\r\n"
         "Contact: <sip:alice@10.0.0.9:5099;ob>;reg-id=1;+sip.instance=\"<urn:uuid:1>\"\r\n"
         "Supported: path, outbound\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n");
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    const char *path = strstr(fwd->buf, "\r\nPath: <sip:");
    assert_non_null(path);
    path += strlen("\r\nPath: <sip:");
    char token[256];
    size_t n = strcspn(path, "@");
    assert_true(n < sizeof(token));
    memcpy(token, path, n);
    token[n] = '\0';
    assert_non_null(strstr(path, "@192.0.2.1:5060;lr;ob>\r\n"));
    respond(fwd, ICSCF, 200,
            "Contact: <sip:alice@10.0.0.9:5099;ob>;expires=600;+sip.instance=\"<urn:uuid:1>\";"
            "reg-id=1\r\nRequire: outbound\r\n"
            "Service-Route: <sip:192.0.2.6:6060;lr;orig>\r\n"
            "P-Associated-URI: <sip:alice@ims.test>\r\n");
    const struct fake_tp_msg *ok = sent_to(UE, "SIP/2.0 200", from);
    assert_non_null(ok);
    assert_non_null(strstr(ok->buf, "\r\nFlow-Timer: 20\r\n"));
    assert_non_null(strstr(ok->buf, "\r\nRequire: outbound\r\n"));

    /* registered: along the ;ob Path to the flow */
    char route[400];
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr;ob>\r\n", token);
    from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099;ob", "o1", route, "o1");
    fwd = sent_to(UE, "MESSAGE ", from);
    assert_non_null(fwd);
    respond(fwd, UE, 200, "");

    /* de-registered: the flow failed */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, REGISTER_FMT, "UDP", "ob2", "ob2", 2, 0);
    fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, ICSCF, 200, "");
    from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099;ob", "o2", route, "o2");
    assert_non_null(sent_to(SCSCF, "SIP/2.0 430", from));
    assert_null(sent_to(UE, "MESSAGE ", from));

    /* a 200 without Require: outbound gets no Flow-Timer */
    char tok2[256];
    from = E.tp.n;
    do_register(SIP_PROTO_UDP, UE2, "ob3", tok2, sizeof(tok2));
    ok = sent_to(UE2, "SIP/2.0 200", from);
    assert_non_null(ok);
    assert_null(strstr(ok->buf, "Flow-Timer"));
}

/* The home network's 503 (HSS down) reaches the UE with its Retry-After,
 * instead of the proxy core's "500 Next Hop Unavailable". */
static void test_503_passed_on(void **state)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, REGISTER_FMT, "UDP", "r6", "r6", 1, 600);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, ICSCF, 503, "Retry-After: 30\r\n");
    const struct fake_tp_msg *r = sent_to(UE, "SIP/2.0 503", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 30\r\n"));
}

#define BYE_FMT                                                                                    \
    "BYE sip:bob@198.51.100.7:5060 SIP/2.0\r\n"                                                   \
    "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bK%s;rport\r\n"                                    \
    "Max-Forwards: 70\r\n"                                                                         \
    "%s"                                                                                           \
    "From: <sip:alice@ims.test>;tag=b1\r\n"                                                        \
    "To: <sip:bob@ims.test>;tag=b2\r\n"                                                            \
    "Call-ID: bye-%s\r\n"                                                                          \
    "CSeq: 2 BYE\r\n"                                                                              \
    "Content-Length: 0\r\n\r\n"

/* An in-dialog request with no Route to us is in no dialog we record-routed:
 * 403 (TS 24.229 §5.2.6.3.5) whether its flow is registered or not, and
 * nothing relayed by its Request-URI or its foreign Route; with our Route
 * on top it goes on. */
static void test_stray_in_dialog(void **state)
{
    (void)state;
    char token[256];
    do_register(SIP_PROTO_UDP, UE, "s1", token, sizeof(token));

    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, BYE_FMT, "s2", "", "s2");
    assert_non_null(sent_to(UE, "SIP/2.0 403 Not In Our Dialogs\r\n", from));
    assert_null(sent_to("198.51.100.7:5060", "BYE ", from));

    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, BYE_FMT, "s3", "Route: <sip:198.51.100.8:5060;lr>\r\n", "s3");
    assert_non_null(sent_to(UE, "SIP/2.0 403 Not In Our Dialogs\r\n", from));
    assert_null(sent_to("198.51.100.8:5060", "BYE ", from));
    assert_null(sent_to("198.51.100.7:5060", "BYE ", from));

    /* a flow that never registered gets the same answer, with its reason */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE2, BYE_FMT, "s4", "", "s4");
    assert_non_null(sent_to(UE2, "SIP/2.0 403 Not Registered\r\n", from));
    assert_null(sent_to("198.51.100.7:5060", "BYE ", from));

    /* our Record-Route as the top Route: a dialog of ours, relayed */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, BYE_FMT, "s5", "Route: <sip:192.0.2.1:5060;lr>\r\n", "s5");
    const struct fake_tp_msg *fwd = sent_to("198.51.100.7:5060", "BYE ", from);
    assert_non_null(fwd);
    respond(fwd, "198.51.100.7:5060", 200, "");
    assert_non_null(sent_to(UE, "SIP/2.0 200", from));
}

/* Without Record-Route a registered UE's in-dialog request goes by its
 * Route (or Request-URI); one from a flow that never registered is still
 * refused. */
static void test_stray_no_rr(void **state)
{
    (void)state;
    char token[256];
    do_register(SIP_PROTO_UDP, UE, "n1", token, sizeof(token));
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, BYE_FMT, "n2", "", "n2");
    const struct fake_tp_msg *fwd = sent_to("198.51.100.7:5060", "BYE ", from);
    assert_non_null(fwd);
    respond(fwd, "198.51.100.7:5060", 200, "");
    assert_non_null(sent_to(UE, "SIP/2.0 200", from));
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE2, BYE_FMT, "n3", "", "n3");
    assert_non_null(sent_to(UE2, "SIP/2.0 403 Not Registered\r\n", from));
    assert_null(sent_to("198.51.100.7:5060", "BYE ", from));
}

/* ------------------------------------------------------------ sec-agree */

#define SA_REGISTER_FMT                                                                            \
    "REGISTER sip:ims.test SIP/2.0\r\n"                                                            \
    "Via: SIP/2.0/%s 10.0.0.9:5099;branch=z9hG4bK%s;rport\r\n"                                     \
    "Max-Forwards: 70\r\n"                                                                         \
    "From: <sip:alice@ims.test>;tag=r1\r\n"                                                        \
    "To: <sip:alice@ims.test>\r\n"                                                                 \
    "Call-ID: sa-reg\r\n"                                                                          \
    "CSeq: %d REGISTER\r\n"                                                                        \
    "Contact: <sip:alice@10.0.0.9:5099;transport=tls>\r\n"                                         \
    "%s"                                                                                           \
    "Expires: 600\r\n"                                                                             \
    "Content-Length: 0\r\n\r\n"

#define SA_CLIENT "Security-Client: tls;q=0.2, ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2\r\n"
#define SA_TAGS "Require: sec-agree, precondition\r\nProxy-Require: sec-agree\r\n"

/* What went to the next hop carries none of sec-agree (TS 24.229 §5.2.2). */
/* [pcscf] max_ues: a REGISTER from a flow past it gets 503 with Retry-After
 * and goes no further; the flows registered already re-register, and a
 * deregistration makes room. */
static void test_max_ues(void **state)
{
    (void)state;
    char token[256];
    do_register(SIP_PROTO_UDP, UE, "x1", token, sizeof(token));
    do_register(SIP_PROTO_UDP, UE2, "x2", token, sizeof(token));
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE3, REGISTER_FMT, "UDP", "x3", "x3", 1, 600);
    const struct fake_tp_msg *r = sent_to(UE3, "SIP/2.0 503 Too Many Registrations\r\n", from);
    assert_non_null(r);
    assert_non_null(strstr(r->buf, "\r\nRetry-After: 60\r\n"));
    assert_null(sent_to(ICSCF, "REGISTER ", from));
    /* a registered UE's flow is in the table: its REGISTER goes on */
    do_register(SIP_PROTO_UDP, UE, "x4", token, sizeof(token));
    /* UE2 deregisters (no binding left in the 200): its flow goes */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE2, REGISTER_FMT, "UDP", "x5", "x5", 2, 0);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    respond(fwd, ICSCF, 200, "");
    assert_non_null(sent_to(UE2, "SIP/2.0 200", from));
    do_register(SIP_PROTO_UDP, UE3, "x6", token, sizeof(token));
}

static void assert_sa_stripped(const struct fake_tp_msg *fwd)
{
    assert_null(strstr(fwd->buf, "Security-"));
    assert_null(strstr(fwd->buf, "sec-agree"));
    assert_null(strstr(fwd->buf, "Proxy-Require"));
}

/* The whole exchange: REGISTER offering tls over UDP, 401 with our list,
 * REGISTER over TLS with Security-Verify, 200; then requests from that flow
 * must keep echoing the list. */
static void test_sa_agree(void **state)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "sa1", 1, SA_TAGS SA_CLIENT);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    assert_sa_stripped(fwd);
    assert_non_null(strstr(fwd->buf, "\r\nRequire: precondition\r\n"));
    respond(fwd, ICSCF, 401, "WWW-Authenticate: Digest realm=\"ims.test\", nonce=\"n1\"\r\n");
    const struct fake_tp_msg *rsp = sent_to(UE, "SIP/2.0 401", from);
    assert_non_null(rsp);
    assert_non_null(strstr(rsp->buf, "\r\nSecurity-Server: tls;q=0.1\r\n"));
    assert_non_null(strstr(rsp->buf, "WWW-Authenticate: Digest"));

    /* protected: over TLS, echoing our list exactly (q compared as a value) */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, SA_REGISTER_FMT, "TLS", "sa2", 2,
         SA_TAGS SA_CLIENT "Security-Verify: TLS;q=0.100\r\n");
    fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    assert_sa_stripped(fwd);
    respond(fwd, ICSCF, 200,
            "Contact: <sip:alice@10.0.0.9:5099;transport=tls>;expires=600\r\n"
            "Service-Route: <sip:192.0.2.6:6060;lr;orig>\r\n"
            "P-Associated-URI: <sip:alice@ims.test>\r\n");
    rsp = sent_to(UE, "SIP/2.0 200", from);
    assert_non_null(rsp);
    assert_int_equal(rsp->proto, SIP_PROTO_TLS);
    assert_null(strstr(rsp->buf, "Security-Server"));

    /* later requests echo the list: forwarded without it */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, MESSAGE_FMT, "sip:bob@ims.test", "sa3",
         "Proxy-Require: sec-agree\r\nSecurity-Verify: tls;q=0.1\r\n", "sa3");
    fwd = sent_to(SCSCF, "MESSAGE ", from);
    assert_non_null(fwd);
    assert_sa_stripped(fwd);
    respond(fwd, SCSCF, 200, "");

    /* downgrade: the same flow without Security-Verify */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, MESSAGE_FMT, "sip:bob@ims.test", "sa4", "", "sa4");
    rsp = sent_to(UE, "SIP/2.0 494", from);
    assert_non_null(rsp);
    assert_non_null(strstr(rsp->buf, "\r\nSecurity-Server: tls;q=0.1\r\n"));
    assert_null(sent_to(SCSCF, "MESSAGE ", from));

    /* in-dialog requests of that flow too (our Record-Route on top):
     * stripped, or 494 without it */
    static const char bye[] = "BYE sip:bob@192.0.2.7:5070 SIP/2.0\r\n"
                              "Via: SIP/2.0/TLS 10.0.0.9:5099;branch=z9hG4bK%s\r\n"
                              "Max-Forwards: 70\r\n"
                              "Route: <sip:192.0.2.1:5061;lr>\r\n"
                              "From: <sip:alice@ims.test>;tag=a1\r\n"
                              "To: <sip:bob@ims.test>;tag=b1\r\n"
                              "Call-ID: sa-call\r\n"
                              "CSeq: %d BYE\r\n"
                              "%s"
                              "Content-Length: 0\r\n\r\n";
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, bye, "sa5", 2,
         "Proxy-Require: sec-agree\r\nRequire: sec-agree\r\nSecurity-Verify: tls;q=0.1\r\n");
    fwd = sent_to("192.0.2.7:5070", "BYE ", from);
    assert_non_null(fwd);
    assert_sa_stripped(fwd);
    assert_null(strstr(fwd->buf, "Require"));
    respond(fwd, "192.0.2.7:5070", 200, "");
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, bye, "sa6", 3, "");
    assert_non_null(sent_to(UE, "SIP/2.0 494", from));
}

/* Everything RFC 3329 answers with 494 (with our list), and what the proxy
 * core still refuses with 420. */
static void test_sa_reject(void **state)
{
    static const struct {
        enum sip_proto proto;
        const char *hdrs;
    } bad[] = {
        /* Security-Verify that is not our list (downgrade protection) */
        { SIP_PROTO_TLS, SA_TAGS "Security-Verify: tls;q=0.5\r\n" },
        { SIP_PROTO_TLS, SA_TAGS "Security-Verify: tls;q=0.1, digest\r\n" },
        { SIP_PROTO_TLS, SA_TAGS "Security-Verify: tls;q=0.1;port=5061\r\n" },
        { SIP_PROTO_TLS, SA_TAGS "Security-Verify: ipsec-3gpp;q=0.1\r\n" },
        /* our list, but the mechanism was not used */
        { SIP_PROTO_UDP, SA_TAGS "Security-Verify: tls;q=0.1\r\n" },
        /* no mechanism in common, or none offered */
        { SIP_PROTO_UDP, SA_TAGS "Security-Client: ipsec-3gpp;alg=hmac-md5-96\r\n" },
        { SIP_PROTO_UDP, "Proxy-Require: sec-agree\r\n" },
        { SIP_PROTO_UDP, "Require: sec-agree\r\n" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t from = E.tp.n;
        char b[16];
        snprintf(b, sizeof(b), "sab%zu", i);
        feed(bad[i].proto, UE, SA_REGISTER_FMT, bad[i].proto == SIP_PROTO_TLS ? "TLS" : "UDP", b,
             (int)i + 1, bad[i].hdrs);
        const struct fake_tp_msg *rsp = sent_to(UE, "SIP/2.0 494", from);
        if (!rsp)
            fail_msg("case %zu: no 494", i);
        assert_non_null(strstr(rsp->buf, "\r\nSecurity-Server: tls;q=0.1\r\n"));
        assert_null(sent_to(ICSCF, "REGISTER ", from));
    }
    /* a request other than REGISTER cannot start the agreement */
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, MESSAGE_FMT, "sip:bob@ims.test", "sab9",
         "Proxy-Require: sec-agree\r\n" SA_CLIENT, "sab9");
    assert_non_null(sent_to(UE, "SIP/2.0 494", from));
    /* sec-agree is ours, other option tags are still the core's 420 */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "sab10", 20,
         "Proxy-Require: sec-agree, foo\r\n" SA_CLIENT);
    const struct fake_tp_msg *rsp = sent_to(UE, "SIP/2.0 420", from);
    assert_non_null(rsp);
    assert_non_null(strstr(rsp->buf, "\r\nUnsupported: foo\r\n"));
    assert_null(strstr(rsp->buf, "Unsupported: sec-agree"));
    /* option tags that are not a list: nothing is forwarded */
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "sab11", 21,
         "Require: sec-agree,,precondition\r\nProxy-Require: sec-agree\r\n" SA_CLIENT);
    assert_non_null(sent_to(UE, "SIP/2.0 400", from));
    assert_null(sent_to(ICSCF, "REGISTER ", from));
}

/* Without a TLS listener (the default configuration of these tests) the
 * P-CSCF does not do sec-agree: Proxy-Require: sec-agree gets 420, and a
 * UE that does not ask for it is not touched. */
static void test_sa_off(void **state)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "so1", 1, SA_TAGS SA_CLIENT);
    const struct fake_tp_msg *rsp = sent_to(UE, "SIP/2.0 420", from);
    assert_non_null(rsp);
    assert_non_null(strstr(rsp->buf, "\r\nUnsupported: sec-agree\r\n"));
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "so2", 2, "Require: sec-agree\r\n" SA_CLIENT);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    assert_non_null(strstr(fwd->buf, "\r\nSecurity-Client: tls;q=0.2"));
    respond(fwd, ICSCF, 401, "WWW-Authenticate: Digest realm=\"ims.test\", nonce=\"n1\"\r\n");
    rsp = sent_to(UE, "SIP/2.0 401", from);
    assert_non_null(rsp);
    assert_null(strstr(rsp->buf, "Security-Server"));
}

/* Register, originate, terminate, with nothing asserted on the way: the
 * allocation-failure runs below. */
static void scenario(void)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, REGISTER_FMT, "UDP", "f1", "f1", 1, 600);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    char token[256] = "term-none";
    if (fwd) {
        const char *path = strstr(fwd->buf, "\r\nPath: <sip:");
        if (path) {
            path += strlen("\r\nPath: <sip:");
            size_t n = strcspn(path, "@");
            if (n < sizeof(token)) {
                memcpy(token, path, n);
                token[n] = '\0';
            }
        }
        respond(fwd, ICSCF, 200,
                "Contact: <sip:alice@10.0.0.9:5099>;expires=600\r\n"
                "Service-Route: <sip:192.0.2.6:6060;lr;orig>\r\n"
                "P-Associated-URI: <sip:alice@ims.test>, <tel:+15550001>\r\n");
    }
    from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, MESSAGE_FMT, "sip:bob@ims.test", "f2",
         "P-Preferred-Identity: <tel:+15550001>\r\n", "f2");
    if ((fwd = sent_to(SCSCF, "MESSAGE ", from)) != NULL)
        respond(fwd, SCSCF, 200, "");
    char route[400];
    snprintf(route, sizeof(route), "Route: <sip:%s@192.0.2.1:5060;lr>\r\n", token);
    from = E.tp.n;
    feed(SIP_PROTO_UDP, SCSCF, MESSAGE_FMT, "sip:alice@10.0.0.9:5099", "f3", route, "f3");
    if ((fwd = sent_to(UE, "MESSAGE ", from)) != NULL)
        respond(fwd, UE, 200, "");
}

/* STYLE "fault injection": allocation n fails (odd runs: that one only; even
 * runs: that one and every later one); each run must end with every request
 * answered or dropped and nothing leaked (ASan/LSan at exit). */
static void test_alloc_failures(void **state)
{
    unsigned long n;
    for (n = 2; n < 6000; n++) {
        setup(state);
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        scenario();
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        teardown(state);
        if (used < n / 2)
            break;
    }
    print_message("allocation failure runs: %lu\n", n);
    assert_true(n > 10 && n < 6000);
}

/* The sec-agree exchange of test_sa_agree, nothing asserted. */
#define FS_AUTH "Authorization: Digest username=\"alice@ims.test\", integrity-protected=no\r\n"

static void scenario_sa(void)
{
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, SA_REGISTER_FMT, "UDP", "fs1", 1, SA_TAGS SA_CLIENT);
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    if (fwd)
        respond(fwd, ICSCF, 401, "WWW-Authenticate: Digest realm=\"ims.test\", nonce=\"n1\"\r\n");
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, SA_REGISTER_FMT, "TLS", "fs2", 2,
         SA_TAGS SA_CLIENT "Security-Verify: tls;q=0.1\r\n" FS_AUTH);
    if ((fwd = sent_to(ICSCF, "REGISTER ", from)) != NULL)
        respond(fwd, ICSCF, 200,
                "Contact: <sip:alice@10.0.0.9:5099;transport=tls>;expires=600\r\n"
                "P-Associated-URI: <sip:alice@ims.test>\r\n");
    /* re-registration on the bound connection: "tls-yes" */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, SA_REGISTER_FMT, "TLS", "fs4", 3,
         SA_TAGS SA_CLIENT "Security-Verify: tls;q=0.1\r\n" FS_AUTH);
    if ((fwd = sent_to(ICSCF, "REGISTER ", from)) != NULL)
        respond(fwd, ICSCF, 200, "Contact: <sip:alice@10.0.0.9:5099;transport=tls>;expires=600\r\n"
                                 "P-Associated-URI: <sip:alice@ims.test>\r\n");
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, MESSAGE_FMT, "sip:bob@ims.test", "fs3",
         "Proxy-Require: sec-agree\r\nSecurity-Verify: tls;q=0.1\r\n", "fs3");
    if ((fwd = sent_to(ICSCF, "MESSAGE ", from)) != NULL)
        respond(fwd, ICSCF, 200, "");
}

static void test_sa_alloc_failures(void **state)
{
    unsigned long n;
    for (n = 2; n < 6000; n++) {
        setup_sa(state);
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        scenario_sa();
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        teardown(state);
        if (used < n / 2)
            break;
    }
    print_message("sec-agree allocation failure runs: %lu\n", n);
    assert_true(n > 10 && n < 6000);
}

#define IP_REGISTER_FMT                                                                            \
    "REGISTER sip:ims.test SIP/2.0\r\n"                                                            \
    "Via: SIP/2.0/%s 10.0.0.9:5099;branch=z9hG4bK%s;rport\r\n"                                     \
    "Max-Forwards: 70\r\n"                                                                         \
    "From: <sip:alice@ims.test>;tag=r1\r\n"                                                        \
    "To: <sip:alice@ims.test>\r\n"                                                                 \
    "Call-ID: ip-reg\r\n"                                                                          \
    "CSeq: %d REGISTER\r\n"                                                                        \
    "Contact: <sip:alice@10.0.0.9:5099;transport=tls>\r\n"                                         \
    "%s"                                                                                           \
    "Expires: 600\r\n"                                                                             \
    "Content-Length: 0\r\n\r\n"

#define IP_AUTH(user, extra)                                                                       \
    "Authorization: Digest username=\"" user "\", realm=\"ims.test\", nonce=\"n1\", "               \
    "uri=\"sip:ims.test\", response=\"0123\"" extra "\r\n"

/* How many times needle is in the forwarded REGISTER. */
static size_t count_in(const struct fake_tp_msg *m, const char *needle)
{
    size_t n = 0;
    for (const char *p = m->buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The REGISTER fed last, as it went to the I-CSCF. */
static const struct fake_tp_msg *ip_forwarded(size_t from)
{
    const struct fake_tp_msg *fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    assert_non_null(strstr(fwd->buf, "username=\"")); /* the credentials went on */
    return fwd;
}

/* TS 24.229 §5.2.2.1 / §7.2A.2: integrity-protected is the P-CSCF's to
 * say: "tls-pending" over a TLS connection no registration has bound yet,
 * "tls-yes" once a 200 bound it to the IMPI (same connection, same IMPI),
 * and a UE's own value never goes on. */
static void test_integrity_protected(void **state)
{
    (void)state;
    /* over UDP a forged mark is taken out, the rest of the credentials kept */
    size_t from = E.tp.n;
    feed(SIP_PROTO_UDP, UE, IP_REGISTER_FMT, "UDP", "ip1", 1,
         IP_AUTH("alice@ims.test", ", integrity-protected=\"tls-yes\""));
    const struct fake_tp_msg *fwd = ip_forwarded(from);
    assert_int_equal(count_in(fwd, "integrity-protected"), 0);
    assert_non_null(strstr(fwd->buf, "\r\nAuthorization: Digest username=\"alice@ims.test\", "
                                     "realm=\"ims.test\", nonce=\"n1\", uri=\"sip:ims.test\", "
                                     "response=\"0123\"\r\n"));
    respond(fwd, ICSCF, 401, "WWW-Authenticate: Digest realm=\"ims.test\", nonce=\"n1\"\r\n");

    /* the first REGISTER over TLS: pending */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip2", 2, IP_AUTH("alice@ims.test", ""));
    fwd = ip_forwarded(from);
    assert_non_null(strstr(fwd->buf, "response=\"0123\", integrity-protected=\"tls-pending\"\r\n"));
    respond(fwd, ICSCF, 200,
            "Contact: <sip:alice@10.0.0.9:5099;transport=tls>;expires=600\r\n"
            "Service-Route: <sip:192.0.2.6:6060;lr;orig>\r\n"
            "P-Associated-URI: <sip:alice@ims.test>\r\n");
    assert_non_null(sent_to(UE, "SIP/2.0 200", from));

    /* the connection is bound to alice now */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip3", 3, IP_AUTH("alice@ims.test", ""));
    fwd = ip_forwarded(from);
    assert_int_equal(count_in(fwd, "integrity-protected=\"tls-yes\""), 1);
    /* ... and a UE's own value is replaced, not added to */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip4", 4,
         IP_AUTH("alice@ims.test", ", Integrity-Protected=yes"));
    fwd = ip_forwarded(from);
    assert_int_equal(count_in(fwd, "ntegrity-"), 1);
    assert_int_equal(count_in(fwd, "integrity-protected=\"tls-yes\""), 1);
    /* another IMPI on that connection, or alice on another one: pending */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip5", 5, IP_AUTH("mallory@ims.test", ""));
    assert_int_equal(count_in(ip_forwarded(from), "integrity-protected=\"tls-pending\""), 1);
    from = E.tp.n;
    feed_conn(SIP_PROTO_TLS, UE, 78, IP_REGISTER_FMT, "TLS", "ip6", 6,
              IP_AUTH("alice@ims.test", ""));
    assert_int_equal(count_in(ip_forwarded(from), "integrity-protected=\"tls-pending\""), 1);
    /* no credentials: nothing to mark */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip7", 7, "");
    fwd = sent_to(ICSCF, "REGISTER ", from);
    assert_non_null(fwd);
    assert_int_equal(count_in(fwd, "ntegrity"), 0);
    /* a Bearer token goes on untouched, beside the marked Digest */
    from = E.tp.n;
    feed(SIP_PROTO_TLS, UE, IP_REGISTER_FMT, "TLS", "ip8", 8,
         "Authorization: Bearer abc.DEF-1=\r\n" IP_AUTH("alice@ims.test", ""));
    fwd = ip_forwarded(from);
    assert_non_null(strstr(fwd->buf, "\r\nAuthorization: Bearer abc.DEF-1=\r\n"));
    assert_int_equal(count_in(fwd, "integrity-protected=\"tls-yes\""), 1);
}

int run_pcscf_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_and_originate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminating, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_503_passed_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_in_dialog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_no_rr, setup_norr, teardown),
        cmocka_unit_test_setup_teardown(test_max_ues, setup_max2, teardown),
        cmocka_unit_test_setup_teardown(test_sa_agree, setup_sa, teardown),
        cmocka_unit_test_setup_teardown(test_sa_reject, setup_sa, teardown),
        cmocka_unit_test_setup_teardown(test_sa_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integrity_protected, setup_tls, teardown),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_sa_alloc_failures),
    };
    return cmocka_run_group_tests_name("pcscf", tests, NULL, NULL);
}
