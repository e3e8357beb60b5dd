/* test_regevent - the reg-event package (RFC 3680) at the S-CSCF:
 *   the reginfo document (regevent.c: cscf_reginfo_build): well-formed (read
 *   back with libxml2), every non-barred identity with every contact, the
 *   version given, the five XML specials escaped in attributes and text,
 *   terminated registrations and contacts, and the buffer's cap;
 *   the S-CSCF app on a real proxy over the fake transport and clock (as
 *   test_roles): SUBSCRIBE -> 200 (Expires capped, Contact) and the NOTIFY
 *   in its dialog (tags, Call-ID, CSeq, Request-URI, Route), 403 for a
 *   stranger, 481 for an unknown dialog, RTR through the Cx transport's
 *   seam (RTA 2001, registration gone, NOTIFY terminated/rejected), PPR
 *   (barring change notified), and the whole flow under allocation
 *   failures (no leak, every request answered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "proxy/proxy.h"
#include "sip/build.h"

static char ids[3][IMS_REG_ID_MAX] = { "sip:alice@ims.test", "tel:+15550001",
                                       "sip:hidden@ims.test" };
static const bool barred[3] = { false, false, true };

static xmlDocPtr parse(const struct ims_buf *b)
{
    xmlDocPtr d = xmlReadMemory(b->p, (int)b->len, "reginfo.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    assert_non_null(d); /* well-formed */
    return d;
}

static xmlNodePtr next_elem(xmlNodePtr n)
{
    while (n && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

static void assert_attr(xmlNodePtr n, const char *name, const char *want)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal((const char *)v, want);
    xmlFree(v);
}

static size_t count_children(xmlNodePtr n, const char *name)
{
    size_t k = 0;
    for (xmlNodePtr c = next_elem(n->children); c; c = next_elem(c->next))
        k += strcmp((const char *)c->name, name) == 0;
    return k;
}

static void test_full_state(void **state)
{
    (void)state;
    struct cscf_reginfo_contact c[2] = {
        { .uri = "sip:alice@10.0.0.1:5060", .call_id = "abc@10.0.0.1", .cseq = 7, .q = 1000,
          .active = true, .event = "refreshed", .expires = 3600 },
        { .uri = "sip:alice@10.0.0.2:5060", .call_id = "def", .cseq = 2, .q = 500,
          .active = false, .event = "unregistered", .expires = 0 },
    };
    struct cscf_reginfo ri = { .version = 4, .impus = (const char(*)[IMS_REG_ID_MAX])ids,
                               .barred = barred, .nimpu = 3, .c = c, .nc = 2 };
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    assert_int_equal(cscf_reginfo_build(&ri, &b), 0);
    xmlDocPtr d = parse(&b);
    xmlNodePtr root = xmlDocGetRootElement(d);
    assert_string_equal((const char *)root->name, "reginfo");
    assert_non_null(root->ns);
    assert_string_equal((const char *)root->ns->href, "urn:ietf:params:xml:ns:reginfo");
    assert_attr(root, "version", "4");
    assert_attr(root, "state", "full");
    /* the barred identity is not shown (TS 24.229 §5.4.2.1.2) */
    assert_int_equal(count_children(root, "registration"), 2);
    xmlNodePtr reg = next_elem(root->children);
    assert_attr(reg, "aor", "sip:alice@ims.test");
    assert_attr(reg, "state", "active");
    assert_int_equal(count_children(reg, "contact"), 2);
    xmlNodePtr ct = next_elem(reg->children);
    assert_attr(ct, "state", "active");
    assert_attr(ct, "event", "refreshed");
    assert_attr(ct, "expires", "3600");
    assert_attr(ct, "q", NULL); /* 1.0 is the default: not written */
    assert_attr(ct, "callid", "abc@10.0.0.1");
    assert_attr(ct, "cseq", "7");
    xmlNodePtr uri = next_elem(ct->children);
    assert_string_equal((const char *)uri->name, "uri");
    xmlChar *txt = xmlNodeGetContent(uri);
    assert_string_equal((const char *)txt, "sip:alice@10.0.0.1:5060");
    xmlFree(txt);
    xmlNodePtr gone = next_elem(ct->next);
    assert_attr(gone, "state", "terminated");
    assert_attr(gone, "event", "unregistered");
    assert_attr(gone, "expires", NULL);
    assert_attr(gone, "q", "0.500");
    /* the same contacts under every identity, with the same ids */
    xmlNodePtr reg2 = next_elem(reg->next);
    assert_attr(reg2, "aor", "tel:+15550001");
    xmlChar *id1 = xmlGetProp(ct, (const xmlChar *)"id");
    xmlChar *id2 = xmlGetProp(next_elem(reg2->children), (const xmlChar *)"id");
    assert_string_equal((const char *)id1, (const char *)id2);
    xmlChar *r1 = xmlGetProp(reg, (const xmlChar *)"id");
    xmlChar *r2 = xmlGetProp(reg2, (const xmlChar *)"id");
    assert_string_not_equal((const char *)r1, (const char *)r2);
    xmlFree(id1);
    xmlFree(id2);
    xmlFree(r1);
    xmlFree(r2);
    xmlFreeDoc(d);
    ims_buf_free(&b);
}

static void test_escaped(void **state)
{
    (void)state;
    static char odd[1][IMS_REG_ID_MAX] = { "sip:a&b<c>\"d'@ims.test" };
    struct cscf_reginfo_contact c = { .uri = "sip:x@h;p=\"<&>\"", .call_id = "a&b\"c",
                                      .active = true, .event = "registered", .expires = 5 };
    struct cscf_reginfo ri = { .version = 0, .impus = (const char(*)[IMS_REG_ID_MAX])odd,
                               .nimpu = 1, .c = &c, .nc = 1 };
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    assert_int_equal(cscf_reginfo_build(&ri, &b), 0);
    /* nothing raw left: every special came out as an entity */
    assert_int_equal(strlen(b.p), b.len); /* ims_buf keeps a NUL after the bytes */
    assert_null(strstr(b.p, "a&b<"));
    assert_non_null(strstr(b.p, "a&amp;b&lt;c&gt;&quot;d&apos;"));
    xmlDocPtr d = parse(&b); /* and it reads back as what went in */
    xmlNodePtr reg = next_elem(xmlDocGetRootElement(d)->children);
    assert_attr(reg, "aor", odd[0]);
    xmlNodePtr ct = next_elem(reg->children);
    assert_attr(ct, "callid", "a&b\"c");
    xmlChar *txt = xmlNodeGetContent(next_elem(ct->children));
    assert_string_equal((const char *)txt, "sip:x@h;p=\"<&>\"");
    xmlFree(txt);
    xmlFreeDoc(d);
    ims_buf_free(&b);
}

static void test_versioned_and_terminated(void **state)
{
    (void)state;
    struct cscf_reginfo_contact c = { .uri = "sip:alice@10.0.0.1", .active = false,
                                      .event = "rejected" };
    struct cscf_reginfo ri = { .version = 41, .impus = (const char(*)[IMS_REG_ID_MAX])ids,
                               .nimpu = 1, .c = &c, .nc = 1 };
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    for (uint32_t v = 41; v < 44; v++) {
        ri.version = v;
        ims_buf_reset(&b);
        assert_int_equal(cscf_reginfo_build(&ri, &b), 0);
        xmlDocPtr d = parse(&b);
        xmlNodePtr root = xmlDocGetRootElement(d);
        char want[16];
        snprintf(want, sizeof(want), "%u", v);
        assert_attr(root, "version", want);
        xmlNodePtr reg = next_elem(root->children);
        /* no active contact left: the registration is terminated */
        assert_attr(reg, "state", "terminated");
        xmlNodePtr ct = next_elem(reg->children);
        assert_attr(ct, "event", "rejected");
        assert_attr(ct, "callid", NULL);
        xmlFreeDoc(d);
    }
    /* no identity at all: an empty, still well-formed document */
    ri.nimpu = 0;
    ims_buf_reset(&b);
    assert_int_equal(cscf_reginfo_build(&ri, &b), 0);
    xmlDocPtr d = parse(&b);
    assert_int_equal(count_children(xmlDocGetRootElement(d), "registration"), 0);
    xmlFreeDoc(d);
    ims_buf_free(&b);
}

static void test_cap(void **state)
{
    (void)state;
    struct cscf_reginfo_contact c = { .uri = "sip:alice@10.0.0.1", .active = true,
                                      .event = "registered", .expires = 60 };
    struct cscf_reginfo ri = { .version = 1, .impus = (const char(*)[IMS_REG_ID_MAX])ids,
                               .nimpu = 2, .c = &c, .nc = 1 };
    struct ims_buf b;
    ims_buf_init(&b, 200); /* the header alone is about 130 bytes */
    assert_int_equal(cscf_reginfo_build(&ri, &b), IMS_ELIMIT);
    ims_buf_free(&b);
}

/* ------------------------------------------------------------ the S-CSCF */

#define ME_S "192.0.2.1:6060"
#define PCSCF "192.0.2.4:5060"
#define UE "sip:alice@10.0.0.9:5099"

static const char conf[] = "[core]\nworkers = 1\nroles = scscf\n"
                           "[sip]\nlisten = udp:192.0.2.1:6060\n"
                           "[scscf]\nports = 6060\nuri = sip:192.0.2.1:6060\n"
                           "reg_event_expires = 300\nhss_timeout_ms = 1000\n"
                           "[diameter]\nrealm = ims.test\npeer = hss.test 127.0.0.1:3868\n";
static const char *const self_names[] = { "192.0.2.1" };

static int no_cx(void *ctx, unsigned cmd, const void *req, struct dia_ans *a)
{
    (void)ctx;
    (void)cmd;
    (void)req;
    (void)a;
    return IMS_ETIMEDOUT;
}

static struct {
    struct ims_cfg *cfg;
    struct ims_loop *loop;
    struct proxy_shared *sh;
    struct ims_proxy *p;
    struct ims_cscf *c;
    struct fake_tp tp;
} E;

/* Runs what was posted to the loop (as test_roles does), then 1 ms passes. */
static void turn(void)
{
    fake_tp_run_posts(E.loop);
    fake_tp_clock_advance(E.loop, 1);
}

static int setup(void **state)
{
    char err[256];
    (void)state;
    memset(&E, 0, sizeof(E));
    assert_int_equal(ims_cfg_load_string("test", conf, &E.cfg, err, sizeof(err)), 0);
    assert_int_equal(ims_loop_new(8192, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    fake_tp_set_local(&E.tp, SIP_PROTO_UDP, ME_S);
    struct proxy_cfg pc = { .max_transactions = 64, .self_names = self_names, .nself = 1 };
    assert_int_equal(ims_proxy_shared_new(1, &pc, &E.sh), 0);
    assert_int_equal(ims_proxy_new(E.sh, 0, E.loop, NULL, &E.p), 0);
    struct proxy_io io = { fake_tp_send, fake_tp_local, &E.tp, NULL };
    ims_proxy_set_io(E.p, &io);
    assert_int_equal(ims_cscf_new_fake_cx(E.cfg, 1, no_cx, NULL, &E.c, err, sizeof(err)), 0);
    cscf_rtr_attach(E.c); /* as ims_cscf_new does after the transport started */
    assert_int_equal(ims_cscf_worker_init(E.c, 0, E.loop, E.p, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("DUMP"))
        for (size_t i = 0; i < E.tp.n; i++)
            fprintf(stderr, "---- to %s\n%s", fake_tp_dst(&E.tp.msgs[i]), E.tp.msgs[i].buf);
    for (int i = 0; i < 80; i++) { /* every timer and retransmission plays out */
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

/* alice's registration as the registrar would store it: her set (the tel:
 * URI, and a barred one), one contact behind the P-CSCF. */
struct seed {
    bool tel_barred;
};

static int seed_fn(struct ims_reg *r, void *ctx)
{
    const struct seed *sd = ctx;
    int64_t now = cscf_now_s();
    snprintf(r->impi, sizeof(r->impi), "alice@ims.test");
    r->nimpu = 3;
    snprintf(r->impus[0], IMS_REG_ID_MAX, "sip:alice@ims.test");
    snprintf(r->impus[1], IMS_REG_ID_MAX, "tel:+15550001");
    snprintf(r->impus[2], IMS_REG_ID_MAX, "sip:alice-barred@ims.test");
    r->barred[1] = sd->tel_barred;
    r->barred[2] = true;
    r->ncontacts = 1;
    struct ims_reg_contact *c = &r->contacts[0];
    snprintf(c->uri, sizeof(c->uri), UE);
    snprintf(c->path, sizeof(c->path), "<sip:term-abc@192.0.2.4:5060;lr>");
    snprintf(c->call_id, sizeof(c->call_id), "reg-1");
    c->cseq = 2;
    c->expires = now + 600;
    c->q = 1000;
    r->registered_at = now;
    return 0;
}

static int seed(bool tel_barred)
{
    struct ims_reg *scratch = ims_calloc(1, sizeof(*scratch));
    struct seed sd = { tel_barred };
    int rc = scratch ? ims_loc_update(ims_cscf_loc(E.c), IMS_S("sip:alice@ims.test"),
                                      cscf_now_s(), scratch, seed_fn, &sd)
                     : IMS_ENOMEM;
    ims_free(scratch);
    return rc;
}

#define SUBSCRIBE_FMT                                                                              \
    "SUBSCRIBE %s SIP/2.0\r\n"                                                                     \
    "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK%s\r\n"                                         \
    "Via: SIP/2.0/UDP 10.0.0.9:5099;branch=z9hG4bKue%s;received=192.0.2.10;rport=5099\r\n"         \
    "Max-Forwards: 69\r\n"                                                                         \
    "%s"                                                                                           \
    "From: <sip:alice@ims.test>;tag=s1\r\n"                                                        \
    "To: <sip:alice@ims.test>%s\r\n"                                                               \
    "Call-ID: sub-1\r\n"                                                                           \
    "CSeq: %d SUBSCRIBE\r\n"                                                                       \
    "Contact: <" UE ">\r\n"                                                                        \
    "Event: reg\r\n"                                                                               \
    "Expires: %d\r\n"                                                                              \
    "Content-Length: 0\r\n\r\n"

static void subscribe(const char *ruri, const char *branch, const char *hdrs, const char *to_tag,
                      int cseq, int expires)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), SUBSCRIBE_FMT, ruri, branch, branch, hdrs, to_tag, cseq, expires);
    struct sip_tp_rx rx = fake_tp_rx(buf, SIP_PROTO_UDP, PCSCF, ME_S);
    ims_proxy_rx(E.p, &rx);
    turn();
    turn();
}

#define INITIAL_HDRS                                                                               \
    "Record-Route: <sip:192.0.2.4:5060;lr>\r\n"                                                    \
    "P-Asserted-Identity: <sip:alice@ims.test>\r\n"

static const struct fake_tp_msg *sent(const char *prefix, size_t from)
{
    for (size_t i = from; i < E.tp.n; i++)
        if (strncmp(E.tp.msgs[i].buf, prefix, strlen(prefix)) == 0)
            return &E.tp.msgs[i];
    return NULL;
}

/* The reginfo body of a sent NOTIFY, parsed. */
static xmlDocPtr body_of(const struct fake_tp_msg *m)
{
    const char *b = strstr(m->buf, "\r\n\r\n");
    assert_non_null(b);
    b += 4;
    xmlDocPtr d = xmlReadMemory(b, (int)(m->buf + m->len - b), "n.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    assert_non_null(d);
    return d;
}

/* The subscriber's answer to a NOTIFY (none when the allocation failure
 * runs make building it fail: the NOTIFY then times out). */
static void answer(const struct fake_tp_msg *req, int status)
{
    struct sip_msg m;
    struct sip_hdr h[64];
    assert_true(ims_sip_parse(req->buf, req->len, false, &m, h, 64) > 0);
    struct ims_buf b;
    ims_buf_init(&b, 65536);
    if (ims_sip_build_response(&b, &m, status, NULL, IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL,
                               IMS_STR_NULL) == 0) {
        struct sip_tp_rx rx = fake_tp_rx(b.p, SIP_PROTO_UDP, PCSCF, ME_S);
        ims_proxy_rx(E.p, &rx);
    }
    ims_buf_free(&b);
    turn();
}

static ims_str hdr_of(const char *msg, const char *name)
{
    const char *p = strstr(msg, name);
    if (!p)
        return IMS_STR_NULL;
    p += strlen(name);
    const char *e = strstr(p, "\r\n");
    return ims_str_make(p, (size_t)(e - p));
}

/* alice's initial SUBSCRIBE (Expires: expires) to her seeded registration:
 * its 200 (*ok, which grants Expires: granted), then the first NOTIFY, which
 * follows the 200 a moment later. */
static const struct fake_tp_msg *subscribe_initial(const char *branch, int expires, int granted,
                                                   const struct fake_tp_msg **ok)
{
    char want[32];
    assert_int_equal(seed(false), 0);
    size_t from = E.tp.n;
    subscribe("sip:alice@ims.test", branch, INITIAL_HDRS, "", 1, expires);
    *ok = sent("SIP/2.0 200", from);
    assert_non_null(*ok);
    snprintf(want, sizeof(want), "Expires: %d\r\n", granted);
    assert_non_null(strstr((*ok)->buf, want));
    assert_null(sent("NOTIFY ", from));
    fake_tp_clock_advance(E.loop, 60);
    turn();
    const struct fake_tp_msg *n = sent("NOTIFY ", from);
    assert_non_null(n);
    return n;
}

static void test_subscribe_notify(void **state)
{
    (void)state;
    const struct fake_tp_msg *ok;
    /* RFC 6665 §4.2.1.1: shortened to [scscf] reg_event_expires */
    const struct fake_tp_msg *n = subscribe_initial("a1", 3600, 300, &ok);
    assert_non_null(strstr(ok->buf, "Contact: <sip:192.0.2.1:6060>\r\n"));
    /* RFC 3261 §12.1.1: the dialog the 200 made */
    assert_string_equal(fake_tp_dst(n), PCSCF); /* the Record-Route hop */
    static const char line[] = "NOTIFY " UE " SIP/2.0\r\n";
    assert_int_equal(strncmp(n->buf, line, sizeof(line) - 1), 0);
    ims_str to200 = hdr_of(ok->buf, "\r\nTo: ");
    ims_str from_n = hdr_of(n->buf, "\r\nFrom: ");
    assert_true(ims_str_eq(to200, from_n)); /* our tag, the same */
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nTo: "), IMS_S("<sip:alice@ims.test>;tag=s1")));
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nCall-ID: "), IMS_S("sub-1")));
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nCSeq: "), IMS_S("1 NOTIFY")));
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nRoute: "), IMS_S("<sip:192.0.2.4:5060;lr>")));
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nEvent: "), IMS_S("reg")));
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nSubscription-State: "),
                           IMS_S("active;expires=300")));
    xmlDocPtr d = body_of(n);
    xmlNodePtr root = xmlDocGetRootElement(d);
    assert_attr(root, "version", "0");
    /* the set without its barred identity */
    assert_int_equal(count_children(root, "registration"), 2);
    xmlFreeDoc(d);
    answer(n, 200);

    /* a refresh in the dialog: 200 and the state again, version 1 */
    char tt[64];
    snprintf(tt, sizeof(tt), ";tag=%.*s", 8, strstr(ok->buf, "To: <sip:alice@ims.test>;tag=") + 29);
    size_t from = E.tp.n;
    subscribe("sip:192.0.2.1:6060", "a2", "", tt, 2, 600);
    assert_non_null(sent("SIP/2.0 200", from));
    fake_tp_clock_advance(E.loop, 60);
    turn();
    n = sent("NOTIFY ", from);
    assert_non_null(n);
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nCSeq: "), IMS_S("2 NOTIFY")));
    d = body_of(n);
    assert_attr(xmlDocGetRootElement(d), "version", "1");
    xmlFreeDoc(d);
    answer(n, 200);

    /* an old CSeq: 500; another dialog: 481 */
    from = E.tp.n;
    subscribe("sip:192.0.2.1:6060", "a3", "", tt, 2, 600);
    assert_non_null(sent("SIP/2.0 500", from));
    subscribe("sip:192.0.2.1:6060", "a4", "", ";tag=nope", 3, 600);
    assert_non_null(sent("SIP/2.0 481", from));

    /* a stranger: 403 */
    subscribe("sip:alice@ims.test", "a5",
              "P-Asserted-Identity: <sip:mallory@ims.test>\r\n", "", 1, 600);
    assert_non_null(sent("SIP/2.0 403", from));

    /* RTR (TS 29.228 §6.1.3): RTA 2001, the set is gone, NOTIFY terminated */
    struct cx_rtr rtr;
    memset(&rtr, 0, sizeof(rtr));
    rtr.impi = IMS_S("alice@ims.test");
    rtr.impu[0] = IMS_S("tel:+15550001");
    rtr.n_impu = 1;
    rtr.reason.present = 1;
    rtr.reason.code = CX_REASON_PERMANENT_TERMINATION;
    from = E.tp.n;
    assert_int_equal(ims_cx_transport_hss_request(E.c->cx, DIA_CMD_RTR, &rtr), DIA_SUCCESS);
    struct ims_reg *r = ims_calloc(1, sizeof(*r));
    assert_int_equal(ims_loc_get(ims_cscf_loc(E.c), IMS_S("sip:alice@ims.test"), cscf_now_s(),
                                 r),
                     IMS_ENOENT);
    ims_free(r);
    turn(); /* the NOTIFYs are posted to a worker */
    n = sent("NOTIFY ", from);
    assert_non_null(n);
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nSubscription-State: "),
                           IMS_S("terminated;reason=rejected")));
    d = body_of(n);
    xmlNodePtr reg = next_elem(xmlDocGetRootElement(d)->children);
    assert_attr(reg, "state", "terminated");
    xmlNodePtr ct = next_elem(reg->children);
    assert_attr(ct, "state", "terminated");
    assert_attr(ct, "event", "rejected");
    xmlFreeDoc(d);
    answer(n, 200);
    /* the subscription ended with it */
    assert_int_equal(cscf_table_count(E.c->re_subs), 0);
}

/* RFC 6665 §4.2.2: a subscription that is not refreshed ends with a NOTIFY
 * "terminated;reason=timeout" when the worker's sweep passes its time; the
 * registration stays, and the sweep after that sends nothing more. */
static void test_subscription_timeout(void **state)
{
    (void)state;
    const struct fake_tp_msg *ok;
    const struct fake_tp_msg *n = subscribe_initial("t1", 60, 60, &ok);
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nSubscription-State: "),
                           IMS_S("active;expires=60")));
    answer(n, 200);
    struct cscf_worker *w = &E.c->w[0];
    /* before its time: nothing */
    size_t from = E.tp.n;
    cscf_regevent_sweep(w, cscf_now_s() + 30);
    fake_tp_clock_advance(E.loop, 60);
    turn();
    assert_null(sent("NOTIFY ", from));
    /* past it: the last NOTIFY, with the full state */
    cscf_regevent_sweep(w, cscf_now_s() + 61);
    fake_tp_clock_advance(E.loop, 60);
    turn();
    n = sent("NOTIFY ", from);
    assert_non_null(n);
    assert_true(ims_str_eq(hdr_of(n->buf, "\r\nSubscription-State: "),
                           IMS_S("terminated;reason=timeout")));
    xmlDocPtr d = body_of(n);
    assert_attr(xmlDocGetRootElement(d), "version", "1");
    assert_int_equal(count_children(xmlDocGetRootElement(d), "registration"), 2);
    xmlFreeDoc(d);
    answer(n, 200);
    assert_int_equal(ims_loc_count(ims_cscf_loc(E.c)) > 0, 1);
    /* gone: a later sweep has nothing to tell */
    from = E.tp.n;
    cscf_regevent_sweep(w, cscf_now_s() + 120);
    fake_tp_clock_advance(E.loop, 60);
    turn();
    assert_null(sent("NOTIFY ", from));
}

static void test_ppr(void **state)
{
    (void)state;
    assert_int_equal(seed(true), 0);
    size_t from = E.tp.n;
    subscribe("sip:alice@ims.test", "p1", INITIAL_HDRS, "", 1, 600);
    fake_tp_clock_advance(E.loop, 60);
    turn();
    const struct fake_tp_msg *n = sent("NOTIFY ", from);
    assert_non_null(n);
    xmlDocPtr d = body_of(n);
    assert_int_equal(count_children(xmlDocGetRootElement(d), "registration"), 1);
    xmlFreeDoc(d);
    answer(n, 200);
    /* PPR (TS 29.228 §6.1.4): the tel: URI is no longer barred */
    static const char ud[] =
        "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
        "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
        "<PublicIdentity><Identity>tel:+15550001</Identity></PublicIdentity>"
        "</ServiceProfile></IMSSubscription>";
    struct cx_ppr ppr;
    memset(&ppr, 0, sizeof(ppr));
    ppr.impi = IMS_S("alice@ims.test");
    ppr.user_data = IMS_S(ud);
    DIA_SET(&ppr, CX_PPR_IMPI);
    DIA_SET(&ppr, CX_PPR_DATA);
    from = E.tp.n;
    assert_int_equal(ims_cx_transport_hss_request(E.c->cx, DIA_CMD_PPR, &ppr), DIA_SUCCESS);
    turn();
    n = sent("NOTIFY ", from);
    assert_non_null(n);
    d = body_of(n);
    assert_int_equal(count_children(xmlDocGetRootElement(d), "registration"), 2);
    xmlFreeDoc(d);
    answer(n, 200);
    struct ims_reg *r = ims_calloc(1, sizeof(*r));
    assert_int_equal(ims_loc_get(ims_cscf_loc(E.c), IMS_S("tel:+15550001"), cscf_now_s(), r), 0);
    assert_non_null(r->profile);
    assert_false(r->barred[1]);
    ims_reg_clear(r);
    ims_free(r);
    /* malformed User-Data: UNABLE_TO_COMPLY, nothing changes */
    ppr.user_data = IMS_S("<IMSSubscription>");
    assert_int_equal(ims_cx_transport_hss_request(E.c->cx, DIA_CMD_PPR, &ppr),
                     DIA_UNABLE_TO_COMPLY);
}

/* The whole flow, for the allocation-failure runs: whatever fails, every
 * request is answered and nothing leaks (teardown checks). */
static void scenario(void)
{
    if (seed(false) != 0)
        return;
    size_t from = E.tp.n;
    subscribe("sip:alice@ims.test", "f1", INITIAL_HDRS, "", 1, 600);
    fake_tp_clock_advance(E.loop, 60);
    turn();
    const struct fake_tp_msg *n = sent("NOTIFY ", from);
    if (n)
        answer(n, 200);
    struct cx_rtr rtr;
    memset(&rtr, 0, sizeof(rtr));
    rtr.impi = IMS_S("alice@ims.test");
    rtr.impu[0] = IMS_S("sip:alice@ims.test");
    rtr.n_impu = 1;
    from = E.tp.n;
    ims_cx_transport_hss_request(E.c->cx, DIA_CMD_RTR, &rtr);
    turn();
    n = sent("NOTIFY ", from);
    if (n)
        answer(n, 200);
}

static void test_alloc_failures(void **state)
{
    unsigned long n;
    for (n = 2; n < 4000; n++) {
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
    assert_true(n > 10 && n < 4000);
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_state),
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_versioned_and_terminated),
        cmocka_unit_test(test_cap),
        cmocka_unit_test_setup_teardown(test_subscribe_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ppr, setup, teardown),
        cmocka_unit_test(test_alloc_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
