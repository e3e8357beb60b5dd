/* ims_sip_parse(), ims_sip_frame(), ims_sip_validate() and header access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sip_tests.h"

#define REQ_HDRS                                                                                   \
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"                               \
    "Max-Forwards: 70\r\n"                                                                         \
    "To: Bob <sip:bob@biloxi.com>\r\n"                                                             \
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"                                       \
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"

static void test_request(void **st)
{
    (void)st;
    struct tmsg t;
    static const char m[] = "INVITE sip:bob@biloxi.com SIP/2.0\r\n" REQ_HDRS
                            "CSeq: 314159 INVITE\r\n"
                            "Contact: <sip:alice@pc33.atlanta.com>\r\n"
                            "X-Custom: one\r\n"
                            "Content-Type: application/sdp\r\n"
                            "x-custom: two\r\n"
                            "Content-Length: 4\r\n"
                            "\r\n"
                            "v=0\n";
    assert_int_equal(TPARSE(&t, m, false), sizeof(m) - 1);
    const struct sip_msg *msg = &t.m;
    assert_int_equal(msg->kind, SIP_MSG_REQUEST);
    assert_int_equal(msg->method, SIP_M_INVITE);
    assert_str(msg->method_name, "INVITE");
    assert_str(msg->ruri_raw, "sip:bob@biloxi.com");
    assert_str(msg->ruri.host, "biloxi.com");
    assert_str(msg->version, "SIP/2.0");
    assert_str(msg->start_line, "INVITE sip:bob@biloxi.com SIP/2.0");
    assert_int_equal(msg->hdrs_off, strlen("INVITE sip:bob@biloxi.com SIP/2.0\r\n"));
    assert_int_equal(msg->nhdrs, 11);
    assert_int_equal(msg->head_len, sizeof(m) - 1 - 4);
    assert_int_equal(msg->hdrs_end, msg->head_len - 2);
    assert_int_equal(msg->len, sizeof(m) - 1);
    assert_str(msg->via1.branch, "z9hG4bK776asdhds");
    assert_str(msg->via1.host, "pc33.atlanta.com");
    assert_int_equal(msg->nvia, 1);
    assert_str(msg->from.tag, "1928301774");
    assert_str(msg->from.display, "Alice");
    assert_int_equal(msg->to.tag.len, 0);
    assert_str(msg->to.uri.user, "bob");
    assert_str(msg->call_id, "a84b4c76e66710@pc33.atlanta.com");
    assert_int_equal(msg->cseq.num, 314159);
    assert_int_equal(msg->cseq.method, SIP_M_INVITE);
    assert_int_equal(msg->max_forwards, 70);
    assert_int_equal(msg->content_length, 4);
    assert_str(msg->body, "v=0\n");
    assert_int_equal(msg->err_status, 0);
    assert_null(msg->err_reason);

    /* header access */
    const struct sip_hdr *h = ims_sip_hdr_first(msg, SIP_H_CONTACT);
    assert_non_null(h);
    assert_str(h->name, "Contact");
    assert_str(h->value, "<sip:alice@pc33.atlanta.com>");
    assert_int_equal(h->raw_len, strlen("Contact: <sip:alice@pc33.atlanta.com>\r\n"));
    assert_null(ims_sip_hdr_next(msg, h));
    assert_null(ims_sip_hdr_first(msg, SIP_H_ROUTE));
    h = ims_sip_hdr_by_name(msg, IMS_S("x-CUSTOM"));
    assert_non_null(h);
    assert_str(h->value, "one");
    const struct sip_hdr *h2 = ims_sip_hdr_next_same(msg, h);
    assert_non_null(h2);
    assert_str(h2->value, "two");
    assert_null(ims_sip_hdr_next_same(msg, h2));
    assert_int_equal(ims_sip_hdr_first(msg, SIP_H_OTHER), h);
    assert_null(ims_sip_hdr_by_name(msg, IMS_S("X-Absent")));
    h = ims_sip_hdr_by_name(msg, IMS_S("c"));
    assert_non_null(h);
    assert_str(h->value, "application/sdp");
    assert_int_equal(ims_sip_hdr_by_name(msg, IMS_S("l")),
                     ims_sip_hdr_first(msg, SIP_H_CONTENT_LENGTH));
    assert_int_equal(ims_sip_validate(&t.m), 0);
    tmsg_free(&t);
}

static void test_response(void **st)
{
    (void)st;
    struct tmsg t;
    static const char m[] = "SIP/2.0 183 Session \xd0\x9f\xd1\x80ogress\r\n"
                            "v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP "
                            "b.example.com;branch=z9hG4bK2\r\n"
                            "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n"
                            "f: <sip:a@example.com>;tag=1\r\n"
                            "t: <sip:b@example.com>;tag=2\r\n"
                            "i: x@y\r\n"
                            "CSeq: 1 INVITE\r\n"
                            "l: 0\r\n\r\n";
    assert_int_equal(TPARSE(&t, m, true), sizeof(m) - 1);
    assert_int_equal(t.m.kind, SIP_MSG_RESPONSE);
    assert_int_equal(t.m.status, 183);
    assert_str(t.m.reason, "Session \xd0\x9f\xd1\x80ogress");
    assert_int_equal(t.m.nvia, 3);
    assert_str(t.m.via1.branch, "z9hG4bK1");
    assert_int_equal(t.m.method, SIP_M_UNKNOWN);
    assert_int_equal(t.m.cseq.method, SIP_M_INVITE);
    assert_int_equal(t.m.max_forwards, -1);
    tmsg_free(&t);

    /* RFC 4475 §3.1.1.13: empty reason phrase */
    assert_true(TPARSE(&t, "SIP/2.0 100 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>\r\n"
                           "t: <sip:a@b>\r\ni: x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n",
                       false) > 0);
    assert_int_equal(t.m.reason.len, 0);
    assert_int_equal(t.m.status, 100);
    tmsg_free(&t);

    static const char *const bad[] = {
        "SIP/2.0 99 Low\r\n",   "SIP/2.0 700 High\r\n", "SIP/2.0 2000 OK\r\n",
        "SIP/2.0 20x OK\r\n",   "SIP/2.0\r\n",          "SIP/2.0 200 O\x01K\r\n",
        "SIP/2 200 OK\r\n",     "SIP/2.0  200 OK\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tmsg_parse(&t, bad[i], strlen(bad[i]), false), IMS_EPROTO);
        assert_int_equal(t.m.kind, SIP_MSG_RESPONSE);
        assert_string_equal(t.m.err_reason, "Bad Status-Line");
        tmsg_free(&t);
    }
    assert_int_equal(TPARSE(&t, "SIP/3.0 200 OK\r\n", false), IMS_EPROTO);
    assert_int_equal(t.m.err_status, 505);
    tmsg_free(&t);
}

static void test_request_line_errors(void **st)
{
    (void)st;
    static const struct {
        const char *line;
        int kind, status;
        const char *reason;
    } cases[] = {
        { "INVITE  sip:a@b SIP/2.0", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE sip:a@b  SIP/2.0", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE sip:a@b SIP/2.0 ", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE sip:a@b SIP/2.0\t", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE <sip:a@b> SIP/2.0", SIP_MSG_REQUEST, 400, "Bad Request-URI" },
        { "INVITE sip:a@b; lr SIP/2.0", SIP_MSG_REQUEST, 400, "Bad Request-URI" },
        { "INVITE sip:a@b?Route=%3Csip:c%3E SIP/2.0", SIP_MSG_REQUEST, 400, "Bad Request-URI" },
        { "INVITE sip:a@b SIP/7.0", SIP_MSG_REQUEST, 505, "Version Not Supported" },
        { "INVITE sip:a@b SIP/2.0.1", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE sip:a@b SIP/", SIP_MSG_REQUEST, 400, "Bad Request-Line" },
        { "INVITE x-y:z SIP/2.0", SIP_MSG_REQUEST, 416, "Unsupported URI Scheme" },
        { "INVITE sip:a@b", SIP_MSG_NONE, 400, "Bad start line" },
        { "INVITE sip:a@b HTTP/1.1", SIP_MSG_NONE, 400, "Bad start line" },
        { "GET / HTTP/1.1", SIP_MSG_NONE, 400, "Bad start line" },
        { "INVITE", SIP_MSG_NONE, 400, "Bad start line" },
        { " INVITE sip:a@b SIP/2.0", SIP_MSG_NONE, 400, "Bad start line" },
        { "IN\"VITE sip:a@b SIP/2.0", SIP_MSG_NONE, 400, "Bad start line" },
        { "\x16\x03\x01", SIP_MSG_NONE, 400, "Bad start line" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        /* a message that is otherwise fine, CSeq 1 INVITE */
        int n = snprintf(buf, sizeof(buf), "%s\r\n" REQ_HDRS "CSeq: 1 INVITE\r\nl: 0\r\n\r\n",
                         cases[i].line);
        struct tmsg t;
        int rc = tmsg_parse(&t, buf, (size_t)n, false);
        if (rc != IMS_EPROTO || (int)t.m.kind != cases[i].kind ||
            t.m.err_status != cases[i].status || strcmp(t.m.err_reason, cases[i].reason) != 0)
            fail_msg("\"%s\": rc=%d kind=%d status=%d reason=%s", cases[i].line, rc, t.m.kind,
                     t.m.err_status, t.m.err_reason ? t.m.err_reason : "(null)");
        if (cases[i].kind == SIP_MSG_REQUEST) {
            /* the head is still split for the error response */
            assert_int_equal(t.m.nhdrs, 7);
            assert_non_null(ims_sip_hdr_first(&t.m, SIP_H_VIA));
        }
        tmsg_free(&t);
    }
}

static void test_folding_compact_case(void **st)
{
    (void)st;
    struct tmsg t;
    static const char m[] = "OPTIONS sip:a@b SIP/2.0\r\n"
                            "vIa  :\r\n SIP/2.0/UDP\r\n\th;branch=z9hG4bK1\r\n"
                            "MAX-FORWARDS:0068\r\n"
                            "F:\t<sip:a@b>;tag=1 \t\r\n"
                            "T: <sip:b@b>\r\n"
                            "Call-ID\r\n \t:\r\n  0ha0isndaksdj@192.0.2.1\r\n"
                            "cseq: 0009\r\n  OPTIONS\r\n"
                            "s :\r\n"
                            "NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
                            "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
                            "l: 0\r\n\r\n";
    assert_int_equal(TPARSE(&t, m, true), sizeof(m) - 1);
    assert_str(t.m.via1.host, "h");
    assert_int_equal(t.m.max_forwards, 68);
    assert_str(t.m.from.tag, "1");
    assert_str(t.m.call_id, "0ha0isndaksdj@192.0.2.1");
    assert_int_equal(t.m.cseq.num, 9);
    const struct sip_hdr *s = ims_sip_hdr_first(&t.m, SIP_H_SUBJECT);
    assert_non_null(s);
    assert_str(s->name, "s");
    assert_int_equal(s->value.len, 0);
    assert_null(s->value.p);
    const struct sip_hdr *nf = ims_sip_hdr_by_name(&t.m, IMS_S("newfangledheader"));
    assert_non_null(nf);
    assert_str(nf->value, "newfangled value\r\n continued newfangled value");
    assert_int_equal(ims_sip_validate(&t.m), 0);
    tmsg_free(&t);

    /* bare LF line ends are tolerated */
    assert_true(TPARSE(&t, "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n"
                           "From: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 OPTIONS\n"
                           "Subject: x\n y\nContent-Length: 0\n\n",
                       true) > 0);
    assert_str(ims_sip_hdr_first(&t.m, SIP_H_SUBJECT)->value, "x\n y");
    tmsg_free(&t);
}

static void test_framing(void **st)
{
    (void)st;
    struct tmsg t;
    static const char m[] = "\r\n\r\nMESSAGE sip:a@b SIP/2.0\r\n" REQ_HDRS
                            "CSeq: 1 MESSAGE\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    size_t mlen = sizeof(m) - 1;
    /* datagram: extra octets ignored (RFC 4475 §3.1.1.8), CRLFs skipped */
    assert_int_equal(TPARSE(&t, m, false), mlen - 5);
    assert_str(t.m.body, "hello");
    assert_int_equal(t.m.len, mlen - 5 - 4);
    assert_true(t.m.buf[0] == 'M');
    tmsg_free(&t);
    /* stream: the same */
    assert_int_equal(TPARSE(&t, m, true), mlen - 5);
    tmsg_free(&t);
    size_t skip;
    assert_int_equal(ims_sip_frame(m, mlen, 65535, &skip), mlen - 5 - 4);
    assert_int_equal(skip, 4);
    assert_int_equal(ims_sip_frame(m, mlen, 100, &skip), IMS_EPROTO); /* cap */
    assert_int_equal(ims_sip_frame(m, 3, 65535, &skip), IMS_EAGAIN);
    assert_int_equal(skip, 3);
    assert_int_equal(ims_sip_frame("", 0, 65535, &skip), IMS_EAGAIN);

    /* datagram without Content-Length: the body is the rest */
    static const char u[] = "MESSAGE sip:a@b SIP/2.0\r\n" REQ_HDRS "CSeq: 1 MESSAGE\r\n\r\nrest";
    assert_int_equal(TPARSE(&t, u, false), sizeof(u) - 1);
    assert_str(t.m.body, "rest");
    assert_int_equal(t.m.content_length, -1);
    tmsg_free(&t);
    /* ... but a stream needs one (§18.3) */
    assert_int_equal(TPARSE(&t, u, true), IMS_EPROTO);
    assert_string_equal(t.m.err_reason, "Missing Content-Length");
    tmsg_free(&t);
    assert_int_equal(ims_sip_frame(u, sizeof(u) - 1, 65535, &skip), IMS_EPROTO);

    /* datagram, Content-Length larger than the datagram (RFC 4475 §3.1.2.2) */
    static const char big[] = "MESSAGE sip:a@b SIP/2.0\r\n" REQ_HDRS
                              "CSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\nshort";
    assert_int_equal(TPARSE(&t, big, false), IMS_EPROTO);
    assert_string_equal(t.m.err_reason, "Bad Content-Length");
    tmsg_free(&t);
    assert_int_equal(TPARSE(&t, big, true), IMS_EAGAIN);
    tmsg_free(&t);

    /* keep-alives only */
    assert_int_equal(TPARSE(&t, "\r\n\r\n", true), IMS_EAGAIN);
    tmsg_free(&t);
    assert_int_equal(TPARSE(&t, "\r\n\r\n", false), IMS_EPROTO);
    assert_int_equal(t.m.kind, SIP_MSG_NONE);
    tmsg_free(&t);

    /* repeated Content-Length: the framing is unknowable (RFC 4475 §3.3.9) */
    static const char two[] = "MESSAGE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx";
    assert_int_equal(ims_sip_frame(two, sizeof(two) - 1, 65535, &skip), IMS_EPROTO);
    static const char fold[] = "MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n 1\r\n\r\nx";
    assert_int_equal(ims_sip_frame(fold, sizeof(fold) - 1, 65535, &skip), (int)sizeof(fold) - 1);
    static const char neg[] = "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n";
    assert_int_equal(ims_sip_frame(neg, sizeof(neg) - 1, 65535, &skip), IMS_EPROTO);
    /* a Content-Length look-alike is not one */
    static const char alike[] = "MESSAGE sip:a@b SIP/2.0\r\nContent-Lengthy: 9\r\nl:2\r\n\r\nxy";
    assert_int_equal(ims_sip_frame(alike, sizeof(alike) - 1, 65535, &skip), (int)sizeof(alike) - 1);
    /* a head that never ends, larger than max */
    char huge[300];
    memset(huge, 'a', sizeof(huge));
    memcpy(huge, "MESSAGE sip:a@b SIP/2.0\r\nX: ", 28);
    assert_int_equal(ims_sip_frame(huge, sizeof(huge), 200, &skip), IMS_EPROTO);
    assert_int_equal(ims_sip_frame(huge, sizeof(huge), 400, &skip), IMS_EAGAIN);
}

static void test_limits(void **st)
{
    (void)st;
    /* more headers than the caller's array */
    static const char m[] = "OPTIONS sip:a@b SIP/2.0\r\n" REQ_HDRS "CSeq: 1 OPTIONS\r\n\r\n";
    struct guard_buf g;
    char *p = guard_buf_new(&g, m, sizeof(m) - 1);
    struct sip_msg msg;
    struct sip_hdr h[4];
    assert_int_equal(ims_sip_parse(p, sizeof(m) - 1, false, &msg, h, 4), IMS_ELIMIT);
    assert_int_equal(msg.err_status, 513);
    assert_int_equal(msg.nhdrs, 4);
    assert_int_equal(ims_sip_parse(p, sizeof(m) - 1, false, &msg, h, 0), IMS_ELIMIT);
    guard_buf_free(&g);

    /* a message over SIP_MAX_MSG_DEFAULT */
    size_t n = SIP_MAX_MSG_DEFAULT + 100;
    char *big = malloc(n);
    assert_non_null(big);
    int hl = snprintf(big, n, "MESSAGE sip:a@b SIP/2.0\r\n" REQ_HDRS
                              "CSeq: 1 MESSAGE\r\nContent-Length: %05zu\r\n\r\n",
                      (size_t)SIP_MAX_MSG_DEFAULT);
    memset(big + hl, 'x', n - (size_t)hl);
    struct sip_hdr hh[32];
    assert_int_equal(ims_sip_parse(big, n, true, &msg, hh, 32), IMS_ELIMIT);
    assert_int_equal(msg.err_status, 513);
    /* the same length written as the datagram's real body length */
    hl = snprintf(big, n, "MESSAGE sip:a@b SIP/2.0\r\n" REQ_HDRS
                          "CSeq: 1 MESSAGE\r\nContent-Length: %05zu\r\n\r\n",
                  n - (size_t)hl);
    big[hl] = 'x'; /* snprintf's NUL */
    assert_int_equal(ims_sip_parse(big, n, false, &msg, hh, 32), IMS_ELIMIT);
    assert_int_equal(msg.err_status, 513);
    /* a stream head that never ends */
    memset(big, 'x', n);
    memcpy(big, "MESSAGE sip:a@b SIP/2.0\r\nX: ", 28);
    assert_int_equal(ims_sip_parse(big, n, true, &msg, hh, 32), IMS_ELIMIT);
    assert_int_equal(ims_sip_parse(big, 100, true, &msg, hh, 32), IMS_EAGAIN);
    memset(big, 'x', n);
    assert_int_equal(ims_sip_parse(big, n, true, &msg, hh, 32), IMS_ELIMIT);
    free(big);
}

static void test_partial_headers_kept(void **st)
{
    (void)st;
    struct tmsg t0;
    /* "SIP" in the version matches any case (ABNF literals) */
    assert_true(TPARSE(&t0, "INVITE sips:a@b sip/2.0\r\n" REQ_HDRS "CSeq: 1 INVITE\r\n\r\n",
                       false) > 0);
    tmsg_free(&t0);
    /* a folded start line */
    assert_int_equal(TPARSE(&t0, "INVITE sips:a@b SIP/2.0\r\n more\r\n" REQ_HDRS
                                 "CSeq: 1 INVITE\r\n\r\n",
                            false),
                     IMS_EPROTO);
    assert_string_equal(t0.m.err_reason, "Bad header line");
    assert_int_equal(t0.m.nhdrs, 6);
    tmsg_free(&t0);

    /* the first fault wins, and the whole head is still split */
    struct tmsg t;
    static const char m[] = "INVITE sip:a@b SIP/7.0\r\n"
                            "Via: SIP/2.0/UDP h1;branch=z9hG4bK1\r\n"
                            "From: broken,\r\n"
                            "Via: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
                            "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\nl: 0\r\n\r\n";
    assert_int_equal(TPARSE(&t, m, false), IMS_EPROTO);
    assert_int_equal(t.m.err_status, 505);
    assert_int_equal(t.m.nhdrs, 7);
    assert_int_equal(t.m.nvia, 2);
    assert_int_equal(ims_sip_validate(&t.m), IMS_EPROTO);
    tmsg_free(&t);

    /* 416 yields to a syntax fault found later */
    assert_int_equal(TPARSE(&t, "OPTIONS im:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                                "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
                            false),
                     IMS_EPROTO);
    assert_int_equal(t.m.err_status, 400);
    assert_string_equal(t.m.err_reason, "Missing From");
    tmsg_free(&t);
}

static void test_has_token(void **st)
{
    (void)st;
    struct tmsg t;
    assert_true(TPARSE(&t, "REGISTER sip:a SIP/2.0\r\n" REQ_HDRS "CSeq: 1 REGISTER\r\n"
                           "Supported: path , gruu\r\nk: outbound;x=1\r\nRequire: sec-agree\r\n"
                           "l: 0\r\n\r\n",
                       false) > 0);
    assert_true(ims_sip_hdr_has_token(&t.m, SIP_H_SUPPORTED, "path"));
    assert_true(ims_sip_hdr_has_token(&t.m, SIP_H_SUPPORTED, "GRUU"));
    assert_true(ims_sip_hdr_has_token(&t.m, SIP_H_SUPPORTED, "outbound"));
    assert_false(ims_sip_hdr_has_token(&t.m, SIP_H_SUPPORTED, "sec-agree"));
    assert_true(ims_sip_hdr_has_token(&t.m, SIP_H_REQUIRE, "sec-agree"));
    assert_false(ims_sip_hdr_has_token(&t.m, SIP_H_PROXY_REQUIRE, "sec-agree"));
    tmsg_free(&t);
}

static void test_validate(void **st)
{
    (void)st;
    static const struct {
        const char *hdr;
        const char *reason; /* NULL: valid */
    } cases[] = {
        { "Contact: *", NULL },
        { "Contact: <sip:a@b>;expires=0, \"x\" <sip:c@d>", NULL },
        { "Contact: sip:a@b?x=y", "Bad Contact" },
        { "Contact: *, <sip:a@b>", "Bad Contact" },
        { "Contact:", "Bad Contact" },
        { "Route: <sip:p1;lr>, <sip:p2;lr>", NULL },
        { "Route: sip:p1;lr", "Bad Route" },
        { "Record-Route: <sip:p1;lr>,", "Bad Record-Route" },
        { "Path: <sip:term@pcscf;lr>", NULL },
        { "Service-Route: sip:orig@scscf;lr", "Bad Service-Route" },
        { "P-Asserted-Identity: \"A\" <sip:a@b>, <tel:+1234>", NULL },
        { "P-Associated-URI: <sip:a@b>, <tel:+1-212>", NULL },
        { "Authorization: Digest username=\"a\", realm=\"b\"", NULL },
        { "Authorization: Bearer abc.def", NULL },
        { "Authorization: Bearer", "Bad Authorization" },
        { "Proxy-Authenticate: Digest realm=\"a\", nonce=\"b\"", NULL },
        { "WWW-Authenticate: Digest realm=\"a\" nonce=\"b\"", "Bad Authenticate" },
        { "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96, tls;q=0.2", NULL },
        { "Security-Verify: ipsec-3gpp;q=0.1;", "Bad Security mechanism" },
        { "Expires: 3600", NULL },
        { "Expires: 1e3", "Bad Expires" },
        { "Retry-After: 18000 (in a meeting);duration=3600", NULL },
        { "Session-Expires: 1800;refresher=uac", NULL },
        { "Supported:", NULL },
        { "Require: 100rel, timer", NULL },
        { "Proxy-Require: a b", "Bad option tags" },
        { "Allow: INVITE, ACK ,BYE", NULL },
        { "Event: presence;id=1", NULL },
        { "Subscription-State: terminated;reason=timeout", NULL },
        { "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655", NULL },
        { "Content-Type: text/plain;charset", "Bad Content-Type" },
        { "Date: Sat, 13 Nov 2010 23:29:00 GMT", NULL },
        { "Date: Fri, 01 Jan 2010 16:00:00 EST", "Bad Date" },
        { "Date: Fri, 1 Jan 2010 16:00:00 GMT", "Bad Date" },
        { "Refer-To: <sip:c@d?Replaces=x>", NULL },
        { "Reply-To: Bob <sip:bob@biloxi.com>", NULL },
        { "Reply-To: Bob", "Bad name-addr" },
        { "X-Anything: <<<\"", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf),
                         "REGISTER sip:a SIP/2.0\r\n" REQ_HDRS "CSeq: 1 REGISTER\r\n%s\r\nl: 0\r\n\r\n",
                         cases[i].hdr);
        struct tmsg t;
        assert_true(tmsg_parse(&t, buf, (size_t)n, false) > 0);
        int rc = ims_sip_validate(&t.m);
        if (cases[i].reason == NULL ? rc != 0
                                    : rc != IMS_EPROTO || t.m.err_status != 400 ||
                                          strcmp(t.m.err_reason, cases[i].reason) != 0)
            fail_msg("\"%s\": rc=%d reason=%s", cases[i].hdr, rc,
                     t.m.err_reason ? t.m.err_reason : "(null)");
        tmsg_free(&t);
    }
}

static void test_duplicates(void **st)
{
    (void)st;
    static const struct {
        const char *hdr, *reason;
    } cases[] = {
        { "To: <sip:x@y>", "Duplicate To" },
        { "From: <sip:x@y>;tag=2", "Duplicate From" },
        { "i: other", "Duplicate Call-ID" },
        { "CSeq: 2 OPTIONS", "Duplicate CSeq" },
        { "Max-Forwards: 1", "Duplicate Max-Forwards" },
        { "l: 0", "Bad Content-Length" },
        { "Content-Length: 0x10", "Bad Content-Length" },
        { ": no name", "Bad header line" },
        { "Via: SIP/2.0/UDP h2;branch=z9hG4bK2,,", "Bad Via" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf),
                         "OPTIONS sip:a SIP/2.0\r\n" REQ_HDRS "CSeq: 1 OPTIONS\r\nl: 0\r\n%s\r\n\r\n",
                         cases[i].hdr);
        struct tmsg t;
        int rc = tmsg_parse(&t, buf, (size_t)n, false);
        if (rc != IMS_EPROTO || strcmp(t.m.err_reason, cases[i].reason) != 0)
            fail_msg("\"%s\": rc=%d reason=%s", cases[i].hdr, rc,
                     t.m.err_reason ? t.m.err_reason : "(null)");
        tmsg_free(&t);
    }
    static const char *const callids[] = { "a@b@c", "@b", "a@", "a b", "a\"b\x01", "a,b" };
    for (size_t i = 0; i < sizeof(callids) / sizeof(callids[0]); i++) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf),
                         "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                         "To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: %s\r\n"
                         "CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
                         callids[i]);
        struct tmsg t;
        int rc = tmsg_parse(&t, buf, (size_t)n, false);
        if (rc != IMS_EPROTO || strcmp(t.m.err_reason, "Bad Call-ID") != 0)
            fail_msg("Call-ID \"%s\": rc=%d", callids[i], rc);
        tmsg_free(&t);
    }
}

const struct CMUnitTest msg_tests[] = {
    cmocka_unit_test(test_request),
    cmocka_unit_test(test_response),
    cmocka_unit_test(test_request_line_errors),
    cmocka_unit_test(test_folding_compact_case),
    cmocka_unit_test(test_framing),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_partial_headers_kept),
    cmocka_unit_test(test_has_token),
    cmocka_unit_test(test_validate),
    cmocka_unit_test(test_duplicates),
};
const size_t msg_ntests = NTESTS(msg_tests);
