/* test_session - the S-CSCF's session processing (src/cscf/session.c) on a
 * real proxy over the fake transport and clock, with registrations put
 * straight into the location store (the registrar has its own tests):
 *   originating: not registered / barred -> 403, no PAI -> 403, no iFC ->
 *   the I-CSCF ([scscf] icscf), a foreign domain -> the static router;
 *   ISC: the matching iFC's AS gets Route <AS;lr>, <us;lr;orig;odi=...>,
 *   the request back with that Route goes on with the next iFC, a forged or
 *   tampered ODI -> 403, an AS that does not answer: SESSION_CONTINUED ->
 *   the next hop, SESSION_TERMINATED -> 408 (504 to a MESSAGE), an AS's own
 *   final relayed;
 *   terminating: registered -> the best contact along its Path (iFCs of
 *   TERMINATING_REGISTERED first), barred -> 404; not registered -> SAR
 *   UNREGISTERED_USER and the TERMINATING_UNREGISTERED iFCs, else 480
 *   (404 unknown, 503 HSS silent);
 *   allocation failures over the whole scenario. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cscf/cscf.h"
#include "cscf/profile.h"
#include "cscf/registrar.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "sip/build.h"

#define ME_S "192.0.2.1:6060"
#define PCSCF "192.0.2.4:5060"
#define ICSCF "192.0.2.5:5070"
#define AS1 "192.0.2.20:5080"
#define AS2 "192.0.2.21:5080"
#define AS3 "192.0.2.22:5080"

static const char conf[] =
    "[core]\nworkers = 1\nroles = scscf\n"
    "[sip]\nlisten = udp:192.0.2.1:6060\n"
    "[scscf]\nports = 6060\nuri = sip:192.0.2.1:6060\nicscf = sip:" ICSCF "\n"
    "as_timeout_ms = 500\ncontact_ring_s = 2\n"
    "[diameter]\nrealm = ims.test\npeer = hss.test 127.0.0.1:3868\n";

static const char *const self_names[] = { "192.0.2.1" };

#define SPT(g, x) "<SPT><ConditionNegated>0</ConditionNegated><Group>" #g "</Group>" x "</SPT>"
#define IFC(prio, trig, as, dh)                                                                    \
    "<InitialFilterCriteria><Priority>" #prio "</Priority><TriggerPoint>"                          \
    "<ConditionTypeCNF>1</ConditionTypeCNF>" trig "</TriggerPoint><ApplicationServer>"             \
    "<ServerName>" as "</ServerName><DefaultHandling>" #dh "</DefaultHandling>"                    \
    "</ApplicationServer></InitialFilterCriteria>"

/* alice: INVITE orig -> AS1 (continue), INVITE orig -> AS2 (terminate),
 * MESSAGE orig -> AS3 (terminate), INVITE terminating -> AS3 (continue). */
static const char alice_data[] =
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication>"
    "<Identity>sip:alice-barred@ims.test</Identity></PublicIdentity>"
    IFC(0, SPT(0, "<Method>INVITE</Method>") SPT(1, "<SessionCase>0</SessionCase>"),
        "sip:" AS1, 0)
    IFC(1, SPT(0, "<Method>INVITE</Method>") SPT(1, "<SessionCase>0</SessionCase>"),
        "sip:" AS2, 1)
    IFC(2, SPT(0, "<Method>MESSAGE</Method>") SPT(1, "<SessionCase>0</SessionCase>"),
        "sip:" AS3, 1)
    IFC(3, SPT(0, "<Method>INVITE</Method>") SPT(1, "<SessionCase>1</SessionCase>"),
        "sip:" AS3, 0)
    "</ServiceProfile></IMSSubscription>";

/* bob: no iFC at all */
static const char bob_data[] =
    "<IMSSubscription><PrivateID>bob@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:bob@ims.test</Identity></PublicIdentity>"
    "</ServiceProfile></IMSSubscription>";

/* ------------------------------------------------------------ environment */

/* carol, unregistered: her TERMINATING_UNREGISTERED iFC -> AS2 (continue) */
static const char carol_data[] =
    "<IMSSubscription><PrivateID>carol@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:carol@ims.test</Identity></PublicIdentity>"
    IFC(0, SPT(0, "<Method>INVITE</Method>") SPT(1, "<SessionCase>2</SessionCase>"),
        "sip:" AS2, 0)
    "</ServiceProfile></IMSSubscription>";

/* The scripted HSS: SAR only (UNREGISTERED_USER for unregistered users). */
static struct {
    unsigned nsar;
    int sat;
    char impu[64];
    uint32_t code;      /* 0: success with user_data */
    bool silent;        /* no answer */
    const char *user_data;
} F;

static int fake_cx(void *ctx, unsigned cmd, const void *req, struct dia_ans *a)
{
    (void)ctx;
    memset(a, 0, sizeof(*a));
    if (cmd != DIA_CMD_SAR)
        return IMS_ETIMEDOUT;
    const struct cx_sar *q = req;
    F.nsar++;
    F.sat = q->sat;
    ims_str_copy(q->impu[0], F.impu, sizeof(F.impu));
    if (F.silent)
        return IMS_ETIMEDOUT;
    if (F.code) {
        dia_ans_exp(a, F.code);
        return 0;
    }
    dia_ans_result(a, DIA_SUCCESS);
    if (F.user_data) {
        a->user_data = ims_str_cstr(F.user_data);
        DIA_SET(a, DIA_ANS_USER_DATA);
    }
    return 0;
}

static struct {
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct fake_tp tp;
} E;

static void turn(void)
{
    fake_tp_run_posts(E.loop);
    fake_tp_clock_advance(E.loop, 1);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    memset(&E, 0, sizeof(E));
    memset(&F, 0, sizeof(F));
    assert_int_equal(ims_cfg_load_string("test", conf, &E.cfg, err, sizeof(err)), 0);
    assert_int_equal(ims_loop_new(8192, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME_S);
    struct proxy_cfg pc = {
        .max_transactions = 64, .self_names = self_names, .nself = 1, .timer_c_ms = 5000
    };
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    assert_int_equal(ims_cscf_new_fake_cx(E.cfg, 1, fake_cx, NULL, &E.c, err, sizeof(err)), 0);
    assert_int_equal(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("DUMP"))
        for (size_t i = 0; i < E.tp.n; i++)
            fprintf(stderr, "---- to %s\n%s", fake_tp_dst(&E.tp.msgs[i]), E.tp.msgs[i].buf);
    /* past Timer C (5 s here): an INVITE an AS answered 100 and then
     * nothing (allocation failures stop the scripted answers) ends too */
    for (int i = 0; i < 80; i++) {
        fake_tp_clock_advance(E.loop, 500);
        turn();
    }
    struct proxy_stats st;
    ims_proxy_stats(E.p, &st);
    ims_cscf_stop(E.c);
    size_t leaked = ims_proxy_free(E.p);
    ims_proxy_shared_free(E.sh);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(ims_cscf_free(E.c), 0);
    ims_cfg_free(E.cfg);
    assert_int_equal(st.reqs_live, 0);
    assert_int_equal(leaked, 0);
    return 0;
}

struct put {
    const char *xml;
    const char *barred; /* an identity of the set that is barred, or NULL */
    struct ims_profile *prof;
    bool second; /* a second device: sip:ue2@10.0.0.8:5099, q=0.5 */
};

static int put_fn(struct ims_reg *r, void *ctx)
{
    struct put *x = ctx;
    int64_t now = (int64_t)time(NULL);
    snprintf(r->impi, sizeof(r->impi), "%s", x->prof->impi);
    r->nimpu = 0;
    snprintf(r->impus[r->nimpu++], IMS_REG_ID_MAX, "%s", r->impu);
    if (x->barred) {
        snprintf(r->impus[r->nimpu], IMS_REG_ID_MAX, "%s", x->barred);
        r->barred[r->nimpu++] = true;
    }
    r->ncontacts = 1;
    struct ims_reg_contact *c = &r->contacts[0];
    memset(c, 0, sizeof(*c));
    snprintf(c->uri, sizeof(c->uri), "sip:ue@10.0.0.9:5099");
    snprintf(c->path, sizeof(c->path), "<sip:term-abc@" PCSCF ";lr>");
    c->expires = now + 600;
    c->q = 1000;
    if (x->second) {
        c = &r->contacts[r->ncontacts++];
        memset(c, 0, sizeof(*c));
        snprintf(c->uri, sizeof(c->uri), "sip:ue2@10.0.0.8:5099");
        snprintf(c->path, sizeof(c->path), "<sip:term-def@" PCSCF ";lr>");
        c->expires = now + 600;
        c->q = 500;
    }
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(x->prof);
    r->registered_at = now;
    return 0;
}

/* Registers impu (with a barred alias when barred is set) with the
 * User-Data xml.  0 or the store's error (allocation failures). */
static int put_reg_with(const char *impu, const char *xml, const char *barred, bool second)
{
    struct put x = { xml, barred, NULL, second };
    int rc = ims_profile_parse(ims_str_cstr(xml), &x.prof);
    if (rc)
        return rc;
    struct ims_reg *scratch = ims_calloc(1, sizeof(*scratch));
    if (!scratch) {
        ims_profile_unref(x.prof);
        return IMS_ENOMEM;
    }
    rc = ims_loc_update(ims_cscf_loc(E.c), ims_str_cstr(impu), (int64_t)time(NULL), scratch,
                        put_fn, &x);
    ims_free(scratch);
    ims_profile_unref(x.prof);
    return rc;
}

static int put_reg(const char *impu, const char *xml, const char *barred)
{
    return put_reg_with(impu, xml, barred, false);
}

static void feed(const char *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void feed(const char *src, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct sip_tp_rx rx = fake_tp_rx(buf, SIP_PROTO_UDP, src, ME_S);
    ims_proxy_rx(E.p, &rx);
    turn();
    turn();
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

/* Answers the request fwd (as sent by us) from `from` with status. */
static void respond(const struct fake_tp_msg *fwd, const char *from, int status)
{
    struct sip_msg m;
    struct sip_hdr h[64];
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    if (ims_sip_parse(fwd->buf, fwd->len, false, &m, h, 64) > 0 &&
        ims_sip_build_response(&b, &m, status, NULL, IMS_S("t9"), IMS_STR_NULL, IMS_STR_NULL,
                               IMS_STR_NULL) == 0) {
        struct sip_tp_rx rx = fake_tp_rx(b.p, SIP_PROTO_UDP, from, ME_S);
        ims_proxy_rx(E.p, &rx);
    }
    ims_buf_free(&b);
    turn();
    turn();
}

/* An originating request as the P-CSCF sends it (Service-Route, PAI). */
#define ORIG_FMT                                                                                   \
    "%s sip:%s SIP/2.0\r\n"                                                                        \
    "Via: SIP/2.0/UDP " PCSCF ";branch=z9hG4bK%s\r\n"                                              \
    "Max-Forwards: 69\r\n"                                                                         \
    "Route: <sip:" ME_S ";lr;orig>\r\n"                                                            \
    "From: <sip:alice@ims.test>;tag=a1\r\n"                                                        \
    "To: <sip:%s>\r\n"                                                                             \
    "Call-ID: %s\r\n"                                                                              \
    "CSeq: 1 %s\r\n"                                                                               \
    "%s"                                                                                           \
    "Content-Length: 0\r\n\r\n"

static void orig(const char *method, const char *to, const char *branch, const char *pai)
{
    char hdr[256] = "";
    if (pai)
        snprintf(hdr, sizeof(hdr), "P-Asserted-Identity: <%s>\r\n", pai);
    feed(PCSCF, ORIG_FMT, method, to, branch, to, branch, method, hdr);
}

/* A terminating request as the I-CSCF sends it (no Route). */
static void term(const char *to, const char *branch)
{
    feed(ICSCF,
         "INVITE sip:%s SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " ICSCF ";branch=z9hG4bK%s\r\n"
         "Max-Forwards: 69\r\n"
         "From: <sip:carol@other.test>;tag=c1\r\n"
         "To: <sip:%s>\r\n"
         "Call-ID: %s\r\n"
         "CSeq: 1 INVITE\r\n"
         "Content-Length: 0\r\n\r\n",
         to, branch, to, branch);
}

/* The "<sip:...;odi=...>" Route value in a request we sent, into out. */
static bool odi_route(const char *buf, char *out, size_t cap)
{
    const char *r = strstr(buf, "\r\nRoute: ");
    const char *o = r ? strstr(r, ", <sip:" ME_S) : NULL;
    const char *e = o ? strchr(o + 2, '>') : NULL;
    if (!e || (size_t)(e + 1 - (o + 2)) >= cap)
        return false;
    memcpy(out, o + 2, (size_t)(e + 1 - (o + 2)));
    out[e + 1 - (o + 2)] = '\0';
    return strstr(out, ";odi=") != NULL;
}

/* The request sent to an AS, back from the AS along the ODI Route. */
static void back_from_as(const char *as, const char *route, const char *branch)
{
    feed(as,
         "INVITE sip:bob@ims.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\n"
         "Via: SIP/2.0/UDP " PCSCF ";branch=z9hG4bKo1\r\n"
         "Max-Forwards: 68\r\n"
         "Route: %s\r\n"
         "From: <sip:alice@ims.test>;tag=a1\r\n"
         "To: <sip:bob@ims.test>\r\n"
         "Call-ID: o1\r\n"
         "CSeq: 1 INVITE\r\n"
         "P-Asserted-Identity: <sip:alice@ims.test>\r\n"
         "Content-Length: 0\r\n\r\n",
         as, branch, route);
}

/* ------------------------------------------------------------ tests */

static void test_orig_refused(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:alice@ims.test", alice_data, "sip:alice-barred@ims.test"), 0);
    orig("MESSAGE", "bob@ims.test", "n1", "sip:nobody@ims.test");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 403", 0));
    size_t from = E.tp.n;
    orig("MESSAGE", "bob@ims.test", "n2", NULL);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 403", from));
    from = E.tp.n;
    orig("MESSAGE", "bob@ims.test", "n3", "sip:alice-barred@ims.test");
    assert_non_null(sent_to(PCSCF, "SIP/2.0 403", from));
    assert_null(sent_to(ICSCF, "MESSAGE", 0));
}

static void test_orig_no_ifc(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:bob@ims.test", bob_data, NULL), 0);
    /* a home domain and a tel: URI go to the I-CSCF */
    orig("MESSAGE", "alice@ims.test", "m1", "sip:bob@ims.test");
    const struct fake_tp_msg *f = sent_to(ICSCF, "MESSAGE sip:alice@ims.test", 0);
    assert_non_null(f);
    assert_null(strstr(f->buf, "\r\nRoute:")); /* ours was popped, none added */
    respond(f, ICSCF, 200);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 200", 0));
    size_t from = E.tp.n;
    feed(PCSCF,
         "MESSAGE tel:+15550001 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " PCSCF ";branch=z9hG4bKm2\r\n"
         "Max-Forwards: 69\r\n"
         "Route: <sip:" ME_S ";lr;orig>\r\n"
         "From: <sip:bob@ims.test>;tag=b1\r\n"
         "To: <tel:+15550001>\r\n"
         "Call-ID: m2\r\n"
         "CSeq: 1 MESSAGE\r\n"
         "P-Asserted-Identity: <sip:bob@ims.test>\r\n"
         "Content-Length: 0\r\n\r\n");
    f = sent_to(ICSCF, "MESSAGE tel:+15550001", from);
    assert_non_null(f);
    respond(f, ICSCF, 404);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 404", from));
    from = E.tp.n;
    /* a foreign domain: the static router (here: the R-URI's host) */
    orig("MESSAGE", "carol@192.0.2.30:5060", "m3", "sip:bob@ims.test");
    assert_non_null(sent_to("192.0.2.30:5060", "MESSAGE", from));
}

static void test_isc_odi(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:alice@ims.test", alice_data, NULL), 0);
    orig("INVITE", "bob@ims.test", "o1", "sip:alice@ims.test");
    const struct fake_tp_msg *f = sent_to(AS1, "INVITE sip:bob@ims.test", 0);
    assert_non_null(f);
    char route[1024], bad[1024];
    assert_non_null(strstr(f->buf, "\r\nRoute: <sip:" AS1 ";lr>, <sip:" ME_S ";lr;orig;odi="));
    assert_true(odi_route(f->buf, route, sizeof(route)));
    respond(f, AS1, 100);
    /* a tampered token (one MAC digit changed) is refused */
    snprintf(bad, sizeof(bad), "%s", route);
    char *mac = strrchr(bad, '.') + 1;
    mac[0] = mac[0] == '0' ? '1' : '0';
    size_t from = E.tp.n;
    back_from_as(AS1, bad, "x1");
    assert_non_null(sent_to(AS1, "SIP/2.0 403", from));
    /* so is one naming another served user (the MAC covers it) */
    from = E.tp.n;
    back_from_as(AS1, "<sip:" ME_S ";lr;orig;odi=o0100000000.00.000000000000000000000000>", "x2");
    assert_non_null(sent_to(AS1, "SIP/2.0 403", from));
    /* the genuine one: on with iFC 1 (AS2) */
    from = E.tp.n;
    back_from_as(AS1, route, "b1");
    const struct fake_tp_msg *f2 = sent_to(AS2, "INVITE sip:bob@ims.test", from);
    assert_non_null(f2);
    assert_true(odi_route(f2->buf, route, sizeof(route)));
    respond(f2, AS2, 100);
    /* AS2 sends it back: no iFC left: the I-CSCF */
    from = E.tp.n;
    back_from_as(AS2, route, "b2");
    const struct fake_tp_msg *fi = sent_to(ICSCF, "INVITE sip:bob@ims.test", from);
    assert_non_null(fi);
    /* the AS's own final answer goes upstream (to AS1, whose request it is) */
    respond(f2, AS2, 486);
    assert_non_null(sent_to(AS1, "SIP/2.0 486", from));
    respond(fi, ICSCF, 487);
    respond(f, AS1, 486);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 486", 0));
}

static void test_as_no_answer(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:alice@ims.test", alice_data, NULL), 0);
    /* AS1 (SESSION_CONTINUED) silent: AS2 (SESSION_TERMINATED) silent: 408 */
    orig("INVITE", "bob@ims.test", "t1", "sip:alice@ims.test");
    assert_non_null(sent_to(AS1, "INVITE", 0));
    fake_tp_clock_advance(E.loop, 600);
    turn();
    turn();
    assert_non_null(sent_to(AS2, "INVITE", 0));
    assert_null(sent_to(PCSCF, "SIP/2.0 4", 0));
    fake_tp_clock_advance(E.loop, 600);
    turn();
    assert_non_null(sent_to(PCSCF, "SIP/2.0 408", 0));
    assert_null(sent_to(ICSCF, "INVITE", 0));
    /* MESSAGE: AS3 (SESSION_TERMINATED) answers 503: that is a failure too,
     * the request ends with 500 (not the AS's 503: RFC 3261 §16.7 step 6) */
    size_t from = E.tp.n;
    orig("MESSAGE", "bob@ims.test", "t2", "sip:alice@ims.test");
    const struct fake_tp_msg *f = sent_to(AS3, "MESSAGE", from);
    assert_non_null(f);
    respond(f, AS3, 503);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 500", from));
    /* AS3 silent: a MESSAGE gets 504, never 408 (RFC 4320 §4.2) */
    from = E.tp.n;
    orig("MESSAGE", "bob@ims.test", "t3", "sip:alice@ims.test");
    assert_non_null(sent_to(AS3, "MESSAGE", from));
    fake_tp_clock_advance(E.loop, 600);
    turn();
    f = sent_to(PCSCF, "SIP/2.0 504", from);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, "CSeq: 1 MESSAGE"));
    /* (the INVITE's 408 above is still being retransmitted: no ACK here) */
    for (size_t i = from; i < E.tp.n; i++)
        assert_false(strncmp(E.tp.msgs[i].buf, "SIP/2.0 408", 11) == 0 &&
                     strstr(E.tp.msgs[i].buf, "CSeq: 1 MESSAGE"));
}

static void test_as_continued_then_icscf(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:alice@ims.test", alice_data, NULL), 0);
    orig("INVITE", "bob@ims.test", "c1", "sip:alice@ims.test");
    const struct fake_tp_msg *f = sent_to(AS1, "INVITE", 0);
    assert_non_null(f);
    respond(f, AS1, 500); /* SESSION_CONTINUED: AS2 next */
    f = sent_to(AS2, "INVITE", 0);
    assert_non_null(f);
    char route[1024];
    assert_true(odi_route(f->buf, route, sizeof(route)));
    respond(f, AS2, 100);
    size_t from = E.tp.n;
    back_from_as(AS2, route, "c2");
    const struct fake_tp_msg *fi = sent_to(ICSCF, "INVITE", from);
    assert_non_null(fi);
    respond(fi, ICSCF, 200);
    respond(f, AS2, 200);
    assert_non_null(sent_to(PCSCF, "SIP/2.0 200", 0));
}

static void test_term_unregistered(void **state)
{
    (void)state;
    /* SAR UNREGISTERED_USER; her TERMINATING_UNREGISTERED iFC: AS2 */
    F.user_data = carol_data;
    term("carol@ims.test", "u1");
    assert_int_equal(F.nsar, 1);
    assert_int_equal(F.sat, CX_SAT_UNREGISTERED_USER);
    assert_string_equal(F.impu, "sip:carol@ims.test");
    const struct fake_tp_msg *f = sent_to(AS2, "INVITE sip:carol@ims.test", 0);
    assert_non_null(f);
    char route[1024];
    assert_true(odi_route(f->buf, route, sizeof(route)));
    respond(f, AS2, 100);
    /* back from the AS: SAR again, no iFC left, nobody registered: 480 */
    size_t from = E.tp.n;
    feed(AS2,
         "INVITE sip:carol@ims.test SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " AS2 ";branch=z9hG4bKu2\r\n"
         "Via: SIP/2.0/UDP " ICSCF ";branch=z9hG4bKu1\r\n"
         "Max-Forwards: 68\r\n"
         "Route: %s\r\n"
         "From: <sip:dave@other.test>;tag=d1\r\n"
         "To: <sip:carol@ims.test>\r\n"
         "Call-ID: u1\r\n"
         "CSeq: 1 INVITE\r\n"
         "Content-Length: 0\r\n\r\n",
         route);
    assert_int_equal(F.nsar, 2);
    assert_non_null(sent_to(AS2, "SIP/2.0 480", from));
    respond(f, AS2, 480);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 480", 0));
    /* no profile: 480; unknown to the HSS: 404; HSS silent: 503 */
    F.user_data = NULL;
    from = E.tp.n;
    term("carol@ims.test", "u3");
    assert_non_null(sent_to(ICSCF, "SIP/2.0 480", from));
    F.code = DIA_ERROR_USER_UNKNOWN;
    from = E.tp.n;
    term("carol@ims.test", "u4");
    assert_non_null(sent_to(ICSCF, "SIP/2.0 404", from));
    F.code = 0;
    F.silent = true;
    from = E.tp.n;
    term("carol@ims.test", "u5");
    fake_tp_clock_advance(E.loop, 4000); /* [scscf] hss_timeout_ms default 3000 */
    turn();
    assert_non_null(sent_to(ICSCF, "SIP/2.0 503", from));
}

static void test_term(void **state)
{
    (void)state;
    assert_int_equal(put_reg("sip:bob@ims.test", bob_data, "sip:bob-barred@ims.test"), 0);
    assert_int_equal(put_reg("sip:alice@ims.test", alice_data, NULL), 0);
    /* bob: no iFC: his contact, along the Path */
    term("bob@ims.test", "r1");
    const struct fake_tp_msg *f = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", 0);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, "\r\nRoute: <sip:term-abc@" PCSCF ";lr>\r\n"));
    respond(f, PCSCF, 180);
    respond(f, PCSCF, 200);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 200", 0));
    /* alice: her TERMINATING_REGISTERED iFC first (AS3, without ;orig) */
    size_t from = E.tp.n;
    term("alice@ims.test", "r2");
    f = sent_to(AS3, "INVITE sip:alice@ims.test", from);
    assert_non_null(f);
    assert_non_null(strstr(f->buf, ";lr;odi=t04"));
    respond(f, AS3, 603);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 603", from));
    /* barred: 404 */
    from = E.tp.n;
    term("bob-barred@ims.test", "r4");
    assert_non_null(sent_to(ICSCF, "SIP/2.0 404", from));
}

/* Two devices (RFC 3261 §16.6, a sequential search): the second gets the
 * request when the first is busy, gone or cannot take it; the caller sees
 * only the last failure when both fail, and a 603 ends the search. */
static void test_term_next_contact(void **state)
{
    (void)state;
    assert_int_equal(put_reg_with("sip:bob@ims.test", bob_data, NULL, true), 0);
    term("bob@ims.test", "s1");
    const struct fake_tp_msg *f = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", 0);
    assert_non_null(f);
    size_t from = E.tp.n;
    respond(f, PCSCF, 486);
    const struct fake_tp_msg *f2 = sent_to(PCSCF, "INVITE sip:ue2@10.0.0.8:5099", from);
    assert_non_null(f2);
    assert_non_null(strstr(f2->buf, "\r\nRoute: <sip:term-def@" PCSCF ";lr>\r\n"));
    assert_null(sent_to(ICSCF, "SIP/2.0 486", 0));
    respond(f2, PCSCF, 200);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 200", from));

    /* both fail: the last failure */
    from = E.tp.n;
    term("bob@ims.test", "s2");
    f = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", from);
    assert_non_null(f);
    respond(f, PCSCF, 408);
    f2 = sent_to(PCSCF, "INVITE sip:ue2@10.0.0.8:5099", from);
    assert_non_null(f2);
    respond(f2, PCSCF, 480);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 480", from));
    assert_null(sent_to(ICSCF, "SIP/2.0 408", from));

    /* 603 Decline: the user said no, everywhere */
    from = E.tp.n;
    term("bob@ims.test", "s3");
    f = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", from);
    assert_non_null(f);
    respond(f, PCSCF, 603);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 603", from));
    assert_null(sent_to(PCSCF, "INVITE sip:ue2@10.0.0.8:5099", from));
}

/* A device that rings [scscf] contact_ring_s (2 s here) unanswered while
 * another is left is cancelled; its 487 brings the next one, which may
 * ring as long as Timer C allows. */
static void test_term_ring_out(void **state)
{
    (void)state;
    assert_int_equal(put_reg_with("sip:bob@ims.test", bob_data, NULL, true), 0);
    term("bob@ims.test", "q1");
    const struct fake_tp_msg *f = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", 0);
    assert_non_null(f);
    respond(f, PCSCF, 180);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 180", 0));
    fake_tp_clock_advance(E.loop, 1500);
    turn();
    assert_null(sent_to(PCSCF, "CANCEL sip:ue@10.0.0.9:5099", 0));
    fake_tp_clock_advance(E.loop, 700);
    turn();
    turn();
    assert_non_null(sent_to(PCSCF, "CANCEL sip:ue@10.0.0.9:5099", 0));
    size_t from = E.tp.n;
    respond(f, PCSCF, 487);
    const struct fake_tp_msg *f2 = sent_to(PCSCF, "INVITE sip:ue2@10.0.0.8:5099", from);
    assert_non_null(f2);
    assert_null(sent_to(ICSCF, "SIP/2.0 487", 0));
    /* the last device: no early CANCEL (Timer C is 5 s here) */
    respond(f2, PCSCF, 180);
    from = E.tp.n;
    fake_tp_clock_advance(E.loop, 4000);
    turn();
    turn();
    assert_null(sent_to(PCSCF, "CANCEL sip:ue2@10.0.0.8:5099", from));
    respond(f2, PCSCF, 200);
    assert_non_null(sent_to(ICSCF, "SIP/2.0 200", from));
}

/* Every allocation in turn fails once over one ISC round trip: no leak, no
 * hang, always a final response. */
static void scenario(void)
{
    if (put_reg("sip:alice@ims.test", alice_data, NULL) != 0)
        return;
    orig("INVITE", "bob@ims.test", "o1", "sip:alice@ims.test");
    const struct fake_tp_msg *f = sent_to(AS1, "INVITE", 0);
    char route[1024];
    if (!f || !odi_route(f->buf, route, sizeof(route)))
        return;
    respond(f, AS1, 100);
    back_from_as(AS1, route, "b1");
    const struct fake_tp_msg *f2 = sent_to(AS2, "INVITE", 0);
    if (f2)
        respond(f2, AS2, 500);
    respond(f, AS1, 200);
    term("alice@ims.test", "r2");
    F.user_data = carol_data;
    term("carol@ims.test", "u1");
    /* a busy first device, then the second */
    if (put_reg_with("sip:bob@ims.test", bob_data, NULL, true) != 0)
        return;
    size_t from = E.tp.n;
    term("bob@ims.test", "s1");
    const struct fake_tp_msg *b1 = sent_to(PCSCF, "INVITE sip:ue@10.0.0.9:5099", from);
    if (!b1)
        return;
    from = E.tp.n;
    respond(b1, PCSCF, 486);
    const struct fake_tp_msg *b2 = sent_to(PCSCF, "INVITE sip:ue2@10.0.0.8:5099", from);
    if (b2)
        respond(b2, PCSCF, 200);
}

static void test_alloc_failures(void **state)
{
    unsigned long n;
    unsigned long only = getenv("FAILN") ? strtoul(getenv("FAILN"), NULL, 10) : 0;
    for (n = only ? only : 2; n < 4000; n++) {
        if (getenv("FAILN_TRACE"))
            fprintf(stderr, "run %lu\n", n);
        setup(state);
        if (only)
            ims_log_set_level(IMS_LOG_DEBUG);
        ims_alloc_fail_at(n / 2, (int)(n % 2 == 0));
        scenario();
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        teardown(state);
        if (used < n / 2)
            break;
    }
    print_message("allocation failure runs: %lu\n", n);
    assert_true(n > 10 && n < 4000);
}

int main(void)
{
    ims_log_set_level(getenv("DUMP") ? IMS_LOG_DEBUG : IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_orig_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orig_no_ifc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isc_odi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_as_no_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_as_continued_then_icscf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_unregistered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_next_contact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_ring_out, setup, teardown),
        cmocka_unit_test(test_alloc_failures),
    };
    xmlInitParser();
    int failed = cmocka_run_group_tests_name("session", tests, NULL, NULL);
    xmlCleanupParser();
    return failed ? 1 : 0;
}
