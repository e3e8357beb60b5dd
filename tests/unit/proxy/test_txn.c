/* test_txn.c - RFC 3261 §17 transaction state machines with a fake clock
 * (the real timer heap, time moved by hand) and a recording transport. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "fake_tp_net.h"
#include "sip/msg.h"
#include "sip/txn.h"

#define T1 500u
#define T2 4000u
#define T4 5000u

struct env {
    struct ims_loop *loop;
    struct sip_txn_table *tbl;
    struct fake_tp tp;
    /* events seen by the TU */
    int ev_resp, ev_timeout, ev_tperr, ev_term;
    int last_status;
    struct sip_txn *last_txn;
    bool detach_on_final;
    /* the table's reliable hook: hops to this address are in-process */
    bool has_inproc;
    struct ims_addr inproc;
    int reliable_asked;
};

static struct env E;

static void tu_cb(struct sip_txn *t, void *ud, const struct sip_txn_ev *ev)
{
    struct env *e = ud;
    e->last_txn = t;
    switch (ev->kind) {
    case SIP_TXN_EV_RESPONSE:
        e->ev_resp++;
        e->last_status = ev->msg->status;
        if (e->detach_on_final && ev->msg->status >= 200)
            ims_sip_txn_detach(t);
        break;
    case SIP_TXN_EV_TIMEOUT:
        e->ev_timeout++;
        break;
    case SIP_TXN_EV_TRANSPORT_ERROR:
        e->ev_tperr++;
        break;
    case SIP_TXN_EV_TERMINATED:
        e->ev_term++;
        break;
    }
}

static bool fake_reliable(void *ctx, const struct sip_dest *d)
{
    (void)ctx;
    E.reliable_asked++;
    return E.has_inproc && ims_addr_equal(&d->addr, &E.inproc);
}

static void set_inproc(const char *addr)
{
    E.has_inproc = true;
    assert_int_equal(ims_addr_parse(ims_str_cstr(addr), 0, &E.inproc), 0);
}

static int setup_n(size_t max)
{
    memset(&E, 0, sizeof(E));
    ims_log_set_level(IMS_LOG_ERR);
    assert_int_equal(ims_loop_new(1024, &E.loop), 0);
    fake_tp_init(&E.tp, E.loop);
    struct sip_txn_cfg cfg = {
        .max_txns = max, .t1_ms = T1, .t2_ms = T2, .t4_ms = T4, .worker_idx = 3,
        .send = fake_tp_send, .send_ctx = &E.tp, .reliable = fake_reliable,
    };
    assert_int_equal(ims_sip_txn_table_new(E.loop, &cfg, &E.tbl), 0);
    return 0;
}

static int setup(void **state)
{
    return setup_n(16);
}

static int teardown(void **state)
{
    size_t leaked = ims_sip_txn_table_free(E.tbl);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    assert_int_equal(leaked, 0);
    return 0;
}

/* ---- message helpers ---- */

struct pmsg {
    char text[2048];
    struct sip_msg m;
    struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
    struct sip_tp_rx rx;
};

static void parse_into(struct pmsg *p, enum sip_proto proto, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void parse_into(struct pmsg *p, enum sip_proto proto, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof(p->text), fmt, ap);
    va_end(ap);
    int n = ims_sip_parse(p->text, strlen(p->text), proto != SIP_PROTO_UDP, &p->m, p->h,
                          SIP_MAX_HEADERS_DEFAULT);
    if (n <= 0)
        fail_msg("parse failed (%d): %s", n, p->text);
    p->rx = fake_tp_rx(p->text, proto, "192.0.2.10:5099", "192.0.2.1:5060");
}

#define BR "z9hG4bKI03deadbeef.1"

static void request(struct pmsg *p, enum sip_proto proto, const char *method, const char *branch)
{
    parse_into(p, proto,
               "%s sip:bob@192.0.2.2:5070 SIP/2.0\r\n"
               "Via: SIP/2.0/%s 192.0.2.10:5099;branch=%s;rport\r\n"
               "Max-Forwards: 70\r\n"
               "Route: <sip:192.0.2.5;lr>\r\n"
               "From: <sip:alice@a.test>;tag=f1\r\n"
               "To: <sip:bob@b.test>\r\n"
               "Call-ID: c1@test\r\n"
               "CSeq: 7 %s\r\n"
               "Content-Length: 0\r\n\r\n",
               method, proto == SIP_PROTO_UDP ? "UDP" : "TCP", branch, method);
}

static void response(struct pmsg *p, int status, const char *method, const char *branch,
                     const char *totag)
{
    parse_into(p, SIP_PROTO_UDP,
               "SIP/2.0 %d Whatever\r\n"
               "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=%s;rport=5060\r\n"
               "From: <sip:alice@a.test>;tag=f1\r\n"
               "To: <sip:bob@b.test>%s%s\r\n"
               "Call-ID: c1@test\r\n"
               "CSeq: 7 %s\r\n"
               "Content-Length: 0\r\n\r\n",
               status, branch, totag ? ";tag=" : "", totag ? totag : "", method);
}

static struct ims_buf reqbuf(const char *method, enum sip_proto proto, const char *branch)
{
    struct pmsg p;
    request(&p, proto, method, branch);
    struct ims_buf b;
    ims_buf_init(&b, 65535);
    assert_int_equal(ims_buf_add(&b, p.text, strlen(p.text)), 0);
    return b;
}

static struct sip_txn *client(const char *method, enum sip_method m, enum sip_proto proto)
{
    struct ims_buf b = reqbuf(method, proto, BR);
    struct sip_txn_client_args a = {
        .method = m, .branch = IMS_S(BR), .req = &b, .cb = tu_cb, .ud = &E,
    };
    a.dest.proto = proto;
    ims_addr_parse(IMS_S("192.0.2.2:5070"), 0, &a.dest.addr);
    struct sip_txn *t = NULL;
    assert_int_equal(ims_sip_txn_client_new(E.tbl, &a, &t), 0);
    assert_int_equal(b.len, 0); /* moved in */
    ims_buf_free(&b);
    return t;
}

static void rx_rsp(int status, const char *method, const char *totag)
{
    struct pmsg p;
    response(&p, status, method, BR, totag);
    assert_int_equal(ims_sip_txn_rx_response(E.tbl, &p.m, &p.rx), 0);
}

static void advance(uint64_t ms)
{
    fake_tp_clock_advance(E.loop, ms);
}

/* ---- client INVITE ---- */

static void test_timer_a_b(void **state)
{
    client("INVITE", SIP_M_INVITE, SIP_PROTO_UDP);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    /* §17.1.1.2: A at T1, 2T1, 4T1 ... : sends at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s */
    advance(T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    advance(1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 2);
    advance(31500 - T1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 7);
    assert_int_equal(E.ev_timeout, 0);
    advance(499); /* 31.999 s */
    assert_int_equal(E.ev_timeout, 0);
    advance(1); /* Timer B = 64*T1 */
    assert_int_equal(E.ev_timeout, 1);
    assert_int_equal(E.ev_term, 1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 7);
    assert_int_equal(fake_tp_get(&E.tp, 6)->at_ms - fake_tp_get(&E.tp, 0)->at_ms, 31500);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
}

static void test_invite_reliable_no_retransmit(void **state)
{
    client("INVITE", SIP_M_INVITE, SIP_PROTO_TCP);
    advance(64 * T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    assert_int_equal(E.ev_timeout, 0);
    advance(1);
    assert_int_equal(E.ev_timeout, 1);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
}

static void test_invite_non2xx_ack(void **state)
{
    struct sip_txn *t = client("INVITE", SIP_M_INVITE, SIP_PROTO_UDP);
    rx_rsp(180, "INVITE", "t9");
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_PROCEEDING);
    advance(10 * T1); /* A stopped in Proceeding */
    assert_int_equal(fake_tp_count(&E.tp, "INVITE "), 1);
    rx_rsp(486, "INVITE", "t9");
    assert_int_equal(E.ev_resp, 2);
    assert_int_equal(E.last_status, 486);
    /* §17.1.1.3: the ACK */
    const struct fake_tp_msg *ack = fake_tp_last(&E.tp);
    assert_non_null(ack);
    assert_memory_equal(ack->buf, "ACK sip:bob@192.0.2.2:5070 SIP/2.0\r\n", 36);
    assert_non_null(strstr(ack->buf, "branch=" BR));
    assert_non_null(strstr(ack->buf, "CSeq: 7 ACK\r\n"));
    assert_non_null(strstr(ack->buf, "To: <sip:bob@b.test>;tag=t9\r\n"));
    assert_non_null(strstr(ack->buf, "Route: <sip:192.0.2.5;lr>\r\n"));
    /* a retransmitted 486: the ACK again, the TU sees nothing */
    rx_rsp(486, "INVITE", "t9");
    assert_int_equal(fake_tp_count(&E.tp, "ACK "), 2);
    assert_int_equal(E.ev_resp, 2);
    /* Timer D */
    advance(64 * T1 - 1);
    assert_int_equal(E.ev_term, 0);
    advance(1);
    assert_int_equal(E.ev_term, 1);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
}

static void test_invite_2xx_accepted(void **state)
{
    struct sip_txn *t = client("INVITE", SIP_M_INVITE, SIP_PROTO_UDP);
    rx_rsp(200, "INVITE", "t9");
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_ACCEPTED);
    assert_int_equal(fake_tp_count(&E.tp, "ACK "), 0); /* 2xx ACK is end to end */
    rx_rsp(200, "INVITE", "t9");                       /* RFC 6026: to the TU */
    assert_int_equal(E.ev_resp, 2);
    ims_sip_txn_detach(t);
    struct pmsg p;
    response(&p, 200, "INVITE", BR, "t9");
    /* detached: a stateless proxy's job */
    assert_int_equal(ims_sip_txn_rx_response(E.tbl, &p.m, &p.rx), IMS_ENOENT);
    advance(64 * T1); /* Timer M */
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
    assert_int_equal(E.ev_term, 0); /* detached: no callback */
}

static void test_cancel_waits_for_provisional(void **state)
{
    struct sip_txn *t = client("INVITE", SIP_M_INVITE, SIP_PROTO_UDP);
    assert_int_equal(ims_sip_txn_cancel(t), 0);
    assert_int_equal(fake_tp_count(&E.tp, "CANCEL "), 0); /* §9.1 */
    rx_rsp(100, "INVITE", NULL);
    const struct fake_tp_msg *c = fake_tp_find(&E.tp, 0, "CANCEL ");
    assert_non_null(c);
    assert_non_null(strstr(c->buf, "branch=" BR));
    assert_non_null(strstr(c->buf, "CSeq: 7 CANCEL\r\n"));
    assert_non_null(strstr(c->buf, "To: <sip:bob@b.test>\r\n")); /* the INVITE's To */
    /* CANCEL's 200, then the INVITE's 487 */
    rx_rsp(200, "CANCEL", "t9");
    rx_rsp(487, "INVITE", "t9");
    assert_int_equal(E.last_status, 487);
    assert_int_equal(fake_tp_count(&E.tp, "ACK "), 1);
    advance(T4);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 1); /* CANCEL gone (K), INVITE in D */
    advance(64 * T1);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
}

static void test_cancel_wait_timeout(void **state)
{
    struct sip_txn *t = client("INVITE", SIP_M_INVITE, SIP_PROTO_UDP);
    rx_rsp(180, "INVITE", "t9");
    advance(100000); /* Proceeding has no timer of its own */
    assert_int_equal(E.ev_timeout, 0);
    ims_sip_txn_cancel(t);
    advance(64 * T1);
    assert_int_equal(E.ev_timeout, 1); /* §9.1: 64*T1 after the CANCEL */
    advance(64 * T1);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
}

/* ---- client non-INVITE ---- */

static void test_timer_e_f(void **state)
{
    client("OPTIONS", SIP_M_OPTIONS, SIP_PROTO_UDP);
    /* E: .5, 1.5, 3.5, 7.5 then every T2: 11.5 ... 31.5 => 10 retransmissions */
    advance(64 * T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "OPTIONS "), 11);
    assert_int_equal(fake_tp_get(&E.tp, 4)->at_ms - fake_tp_get(&E.tp, 3)->at_ms, 4000);
    assert_int_equal(fake_tp_get(&E.tp, 3)->at_ms - fake_tp_get(&E.tp, 2)->at_ms, 2000);
    advance(1); /* F */
    assert_int_equal(E.ev_timeout, 1);
    assert_int_equal(E.ev_term, 1);
}

static void test_non_invite_proceeding_t2(void **state)
{
    client("OPTIONS", SIP_M_OPTIONS, SIP_PROTO_UDP);
    rx_rsp(100, "OPTIONS", NULL);
    advance(T1); /* first E still at T1 */
    assert_int_equal(fake_tp_count(&E.tp, "OPTIONS "), 2);
    advance(T2); /* then T2 in Proceeding */
    assert_int_equal(fake_tp_count(&E.tp, "OPTIONS "), 3);
    rx_rsp(200, "OPTIONS", "x");
    assert_int_equal(E.last_status, 200);
    rx_rsp(200, "OPTIONS", "x"); /* absorbed in Completed */
    assert_int_equal(E.ev_resp, 2);
    advance(T4 - 1); /* K */
    assert_int_equal(E.ev_term, 0);
    advance(1);
    assert_int_equal(E.ev_term, 1);
}

static void test_non_invite_reliable_k_zero(void **state)
{
    client("REGISTER", SIP_M_REGISTER, SIP_PROTO_TCP);
    rx_rsp(200, "REGISTER", "x");
    assert_int_equal(E.ev_term, 0); /* never from inside rx */
    advance(0);
    assert_int_equal(E.ev_term, 1);
}

static void test_client_send_failure(void **state)
{
    E.tp.fail_next = 1;
    struct ims_buf b = reqbuf("OPTIONS", SIP_PROTO_UDP, BR);
    struct sip_txn_client_args a = {
        .method = SIP_M_OPTIONS, .branch = IMS_S(BR), .req = &b, .cb = tu_cb, .ud = &E,
    };
    a.dest.proto = SIP_PROTO_UDP;
    ims_addr_parse(IMS_S("192.0.2.2:5070"), 0, &a.dest.addr);
    struct sip_txn *t;
    assert_int_equal(ims_sip_txn_client_new(E.tbl, &a, &t), IMS_EIO);
    assert_true(b.len > 0); /* still the caller's */
    ims_buf_free(&b);
    advance(64 * T1);
    assert_int_equal(E.ev_term + E.ev_tperr + E.ev_timeout, 0); /* callback rule */
    /* a failure on a retransmission: transport error, then terminated */
    client("OPTIONS", SIP_M_OPTIONS, SIP_PROTO_UDP);
    E.tp.fail_next = 1;
    advance(T1); /* reported from a zero-delay timer, a later turn */
    assert_int_equal(E.ev_tperr, 1);
    assert_int_equal(E.ev_term, 1);
}

/* ---- server INVITE ---- */

static struct sip_txn *server(const char *method, enum sip_proto proto)
{
    struct pmsg p;
    request(&p, proto, method, "z9hG4bKpeer1");
    struct sip_txn *m = NULL;
    assert_int_equal(ims_sip_txn_rx_request(E.tbl, &p.m, &p.rx, &m), IMS_ENOENT);
    struct sip_txn *t = NULL;
    assert_int_equal(ims_sip_txn_server_new(E.tbl, &p.m, &p.rx, tu_cb, &E, &t), 0);
    return t;
}

static int rx_req(const char *method, enum sip_proto proto, const char *branch)
{
    struct pmsg p;
    request(&p, proto, method, branch);
    return ims_sip_txn_rx_request(E.tbl, &p.m, &p.rx, NULL);
}

static void respond(struct sip_txn *t, int status)
{
    struct ims_buf b;
    ims_buf_init(&b, 65535);
    char txt[64];
    snprintf(txt, sizeof(txt), "SIP/2.0 %d X\r\n\r\n", status);
    ims_buf_add_cstr(&b, txt);
    assert_int_equal(ims_sip_txn_respond(t, status, &b), 0);
    assert_int_equal(b.len, 0);
}

static void test_server_invite_retransmissions(void **state)
{
    struct sip_txn *t = server("INVITE", SIP_PROTO_UDP);
    assert_int_equal(rx_req("INVITE", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0); /* absorbed */
    assert_int_equal(E.tp.n, 0);
    respond(t, 100);
    assert_int_equal(rx_req("INVITE", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 100"), 2); /* resent */
    /* a different branch is another transaction */
    assert_int_equal(rx_req("INVITE", SIP_PROTO_UDP, "z9hG4bKpeer2"), IMS_ENOENT);
    respond(t, 486);
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_COMPLETED);
    /* G: .5 1.5 3.5 7.5 11.5 ... 31.5 => 10 retransmissions before H */
    advance(64 * T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 486"), 11);
    assert_int_equal(E.ev_timeout, 0);
    advance(1); /* H */
    assert_int_equal(E.ev_timeout, 1);
    assert_int_equal(E.ev_term, 1);
}

static void test_server_invite_ack_confirmed(void **state)
{
    struct sip_txn *t = server("INVITE", SIP_PROTO_UDP);
    respond(t, 404);
    assert_int_equal(rx_req("INVITE", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 404"), 2);
    assert_int_equal(rx_req("ACK", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_CONFIRMED);
    advance(T1 * 4);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 404"), 2); /* G stopped */
    assert_int_equal(rx_req("ACK", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    advance(T4 - T1 * 4 - 1); /* I = T4 */
    assert_int_equal(E.ev_term, 0);
    advance(1);
    assert_int_equal(E.ev_term, 1);
    assert_int_equal(E.ev_timeout, 0);
}

static void test_server_invite_2xx_accepted(void **state)
{
    struct sip_txn *t = server("INVITE", SIP_PROTO_UDP);
    respond(t, 200);
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_ACCEPTED);
    assert_int_equal(rx_req("INVITE", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 200"), 1); /* not resent (RFC 6026) */
    respond(t, 200);                                            /* a 2xx from the TU is sent */
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 200"), 2);
    /* an ACK reusing the INVITE's branch goes to the TU (ENOENT) */
    assert_int_equal(rx_req("ACK", SIP_PROTO_UDP, "z9hG4bKpeer1"), IMS_ENOENT);
    advance(64 * T1); /* L */
    assert_int_equal(E.ev_term, 1);
}

static void test_server_invite_reliable(void **state)
{
    struct sip_txn *t = server("INVITE", SIP_PROTO_TCP);
    respond(t, 486);
    advance(64 * T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 486"), 1); /* no G */
    assert_int_equal(rx_req("ACK", SIP_PROTO_TCP, "z9hG4bKpeer1"), 0);
    assert_int_equal(E.ev_term, 0);
    advance(0); /* I = 0 */
    assert_int_equal(E.ev_term, 1);
    /* the response went on the request's connection */
    assert_int_equal(fake_tp_get(&E.tp, 0)->conn_id, 77);
}

/* ---- server non-INVITE ---- */

static void test_server_non_invite(void **state)
{
    struct sip_txn *t = server("OPTIONS", SIP_PROTO_UDP);
    assert_int_equal(ims_sip_txn_state(t), SIP_TXN_TRYING);
    assert_int_equal(rx_req("OPTIONS", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(E.tp.n, 0); /* Trying: absorbed silently */
    respond(t, 200);
    assert_int_equal(rx_req("OPTIONS", SIP_PROTO_UDP, "z9hG4bKpeer1"), 0);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 200"), 2);
    /* further responses from the TU are refused in Completed */
    struct ims_buf b;
    ims_buf_init(&b, 100);
    ims_buf_add_cstr(&b, "SIP/2.0 500 X\r\n\r\n");
    assert_int_equal(ims_sip_txn_respond(t, 500, &b), IMS_EINVAL);
    advance(64 * T1 - 1); /* J */
    assert_int_equal(E.ev_term, 0);
    advance(1);
    assert_int_equal(E.ev_term, 1);
    assert_int_equal(rx_req("OPTIONS", SIP_PROTO_UDP, "z9hG4bKpeer1"), IMS_ENOENT);
}

static void test_server_non_invite_reliable_j_zero(void **state)
{
    struct sip_txn *t = server("BYE", SIP_PROTO_TCP);
    respond(t, 200);
    assert_int_equal(E.ev_term, 0);
    advance(0);
    assert_int_equal(E.ev_term, 1);
}

/* ---- in-process hops (the table's reliable hook) ---- */

/* A UDP hop the transport hands over in-process: no Timer E, and Timer K
 * is zero, as on TCP. */
static void test_in_process_client(void **state)
{
    set_inproc("192.0.2.2:5070"); /* client()'s destination */
    client("REGISTER", SIP_M_REGISTER, SIP_PROTO_UDP);
    assert_true(E.reliable_asked > 0);
    advance(64 * T1 - 1);
    assert_int_equal(fake_tp_count(&E.tp, "REGISTER "), 1); /* never retransmitted */
    rx_rsp(200, "REGISTER", "x");
    assert_int_equal(E.ev_resp, 1);
    assert_int_equal(E.ev_term, 0); /* never from inside rx */
    advance(0);
    assert_int_equal(E.ev_term, 1);
}

/* The server side of such a hop: Timer J is zero; the transaction is gone
 * once the final response left (a request with its branch is new). */
static void test_in_process_server(void **state)
{
    set_inproc("192.0.2.10:5099"); /* where the response goes (rport: the source) */
    struct sip_txn *t = server("REGISTER", SIP_PROTO_UDP);
    respond(t, 200);
    assert_int_equal(fake_tp_count(&E.tp, "SIP/2.0 200"), 1);
    advance(0);
    assert_int_equal(E.ev_term, 1);
    assert_int_equal(rx_req("REGISTER", SIP_PROTO_UDP, "z9hG4bKpeer1"), IMS_ENOENT);
}

/* The hook decides per destination: a UDP hop elsewhere keeps UDP's timers. */
static void test_in_process_other_address(void **state)
{
    set_inproc("192.0.2.99:5070");
    client("REGISTER", SIP_M_REGISTER, SIP_PROTO_UDP);
    advance(T1);
    assert_int_equal(fake_tp_count(&E.tp, "REGISTER "), 2); /* Timer E fired */
    rx_rsp(200, "REGISTER", "x");
    advance(T4 - 1); /* K */
    assert_int_equal(E.ev_term, 0);
    advance(1);
    assert_int_equal(E.ev_term, 1);
}

static void test_response_dest(void **state)
{
    struct pmsg p;
    struct sip_dest d;
    char buf[IMS_ADDR_STRLEN];
    request(&p, SIP_PROTO_UDP, "OPTIONS", "z9hG4bKx");
    assert_int_equal(ims_sip_response_dest(&p.m, &p.rx, &d), 0);
    assert_string_equal(ims_addr_str(&d.addr, buf, sizeof(buf)), "192.0.2.10:5099");
    parse_into(&p, SIP_PROTO_UDP,
               "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h.test:5077;branch=z9hG4bKx\r\n"
               "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n");
    p.rx = fake_tp_rx(p.text, SIP_PROTO_UDP, "192.0.2.11:4000", "192.0.2.1:5070");
    assert_int_equal(ims_sip_response_dest(&p.m, &p.rx, &d), 0);
    /* §18.2.2: received (the source address) and the sent-by port */
    assert_string_equal(ims_addr_str(&d.addr, buf, sizeof(buf)), "192.0.2.11:5077");
    /* RFC 3581 §4: from the address and port the request came in at */
    assert_int_equal(d.src.port, 5070);
    assert_int_equal(d.src.family, AF_INET);
    assert_int_equal(d.src.ip.v4.s_addr, inet_addr("192.0.2.1"));
    /* and what a server transaction sends goes the same way */
    struct sip_txn *t = NULL;
    assert_int_equal(ims_sip_txn_server_new(E.tbl, &p.m, &p.rx, tu_cb, &E, &t), 0);
    assert_int_equal(ims_sip_txn_dest(t)->src.port, 5070);
    ims_sip_txn_detach(t);
    advance(0);
}

static void test_detach_unanswered_server(void **state)
{
    struct sip_txn *t = server("OPTIONS", SIP_PROTO_UDP);
    ims_sip_txn_detach(t);
    advance(0);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 0);
    assert_int_equal(E.ev_term, 0);
}

static void test_pool_full_and_leak_report(void **state)
{
    teardown(state);
    setup_n(2);
    server("OPTIONS", SIP_PROTO_UDP);
    struct pmsg p;
    request(&p, SIP_PROTO_UDP, "OPTIONS", "z9hG4bKpeer2");
    struct sip_txn *t2 = NULL, *t3 = NULL;
    assert_int_equal(ims_sip_txn_server_new(E.tbl, &p.m, &p.rx, tu_cb, &E, &t2), 0);
    request(&p, SIP_PROTO_UDP, "OPTIONS", "z9hG4bKpeer3");
    assert_int_equal(ims_sip_txn_server_new(E.tbl, &p.m, &p.rx, tu_cb, &E, &t3), IMS_ELIMIT);
    assert_int_equal(ims_sip_txn_table_live(E.tbl), 2);
    /* two leaked (TU attached, never answered) */
    assert_int_equal(ims_sip_txn_table_free(E.tbl), 2);
    fake_tp_free(&E.tp);
    ims_loop_free(E.loop);
    setup_n(2); /* so teardown has something to free */
}

static void test_no_branch_rejected(void **state)
{
    struct pmsg p;
    request(&p, SIP_PROTO_UDP, "OPTIONS", "1234"); /* RFC 2543 style */
    assert_int_equal(ims_sip_txn_rx_request(E.tbl, &p.m, &p.rx, NULL), IMS_EPROTO);
    struct sip_txn *t;
    assert_int_equal(ims_sip_txn_server_new(E.tbl, &p.m, &p.rx, tu_cb, &E, &t), IMS_EPROTO);
}

static void test_find_cancelled(void **state)
{
    struct sip_txn *t = server("INVITE", SIP_PROTO_UDP);
    struct pmsg p;
    request(&p, SIP_PROTO_UDP, "CANCEL", "z9hG4bKpeer1");
    assert_ptr_equal(ims_sip_txn_find_cancelled(E.tbl, &p.m), t);
    request(&p, SIP_PROTO_UDP, "CANCEL", "z9hG4bKpeerX");
    assert_null(ims_sip_txn_find_cancelled(E.tbl, &p.m));
    respond(t, 487);
    rx_req("ACK", SIP_PROTO_UDP, "z9hG4bKpeer1");
    advance(T4);
}

static void test_branches(void **state)
{
    char b[SIP_BRANCH_MAX];
    size_t n = ims_sip_txn_branch_new(E.tbl, 0xcafe1234u, b);
    assert_int_equal(strlen(b), n);
    unsigned w;
    uint32_t h;
    assert_true(ims_sip_txn_branch_parse(ims_str_make(b, n), &w, &h));
    assert_int_equal(w, 3);
    assert_int_equal(h, 0xcafe1234u);
    char b2[SIP_BRANCH_MAX];
    ims_sip_txn_branch_new(E.tbl, 0xcafe1234u, b2);
    assert_string_not_equal(b, b2);
    assert_false(ims_sip_txn_branch_parse(IMS_S("z9hG4bK776asdhds"), &w, &h));
    assert_false(ims_sip_txn_branch_parse(IMS_S("z9hG4bKI0zcafe1234.1"), &w, &h));
}

/* ---- hand-off between workers ---- */

static int handed;
static char handed_buf[64];

static void handoff_fn(void *ctx, const struct sip_tp_rx *rx)
{
    handed++;
    snprintf(handed_buf, sizeof(handed_buf), "%.*s", (int)rx->len, rx->buf);
    assert_ptr_equal(ctx, &E);
}

static void stop_fn(struct ims_loop *loop, void *arg)
{
    ims_loop_stop(loop);
}

static void test_handoff(void **state)
{
    struct sip_txn_registry *r;
    assert_int_equal(ims_sip_txn_registry_new(2, &r), 0);
    struct sip_tp_rx rx = fake_tp_rx("SIP/2.0 200 OK\r\n", SIP_PROTO_UDP, "192.0.2.3:1",
                                     "192.0.2.1:5060");
    assert_int_equal(ims_sip_txn_handoff(r, 1, &rx), IMS_ENOENT); /* not registered */
    assert_int_equal(ims_sip_txn_registry_set(r, 1, E.loop, handoff_fn, &E), 0);
    char tmp[32];
    strcpy(tmp, "SIP/2.0 200 OK\r\n");
    rx.buf = tmp;
    assert_int_equal(ims_sip_txn_handoff(r, 1, &rx), 0);
    memset(tmp, 'x', sizeof(tmp)); /* the copy is independent */
    assert_int_equal(handed, 0);   /* never inside the call */
    ims_loop_post(E.loop, stop_fn, NULL, NULL);
    assert_int_equal(ims_loop_run(E.loop), 0);
    assert_int_equal(handed, 1);
    assert_string_equal(handed_buf, "SIP/2.0 200 OK\r\n");
    ims_sip_txn_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer_a_b, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_reliable_no_retransmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_non2xx_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_2xx_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_waits_for_provisional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_wait_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_e_f, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_proceeding_t2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_invite_reliable_k_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_send_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_invite_retransmissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_invite_ack_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_invite_2xx_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_invite_reliable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_non_invite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_non_invite_reliable_j_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_process_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_process_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_process_other_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_dest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_unanswered_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_full_and_leak_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_branch_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_branches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
