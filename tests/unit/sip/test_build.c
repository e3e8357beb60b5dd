/* build.c: responses (RFC 3261 §8.2.6), rewrite (§16.6), UAC requests
 * (§8.1.1, §9.1, §17.1.1.3), and allocation faults. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "sip/build.h"
#include "sip_tests.h"

#define INVITE                                                                                     \
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"                                                        \
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"                               \
    "v: SIP/2.0/UDP p1;branch=z9hG4bK1, SIP/2.0/UDP p2;branch=z9hG4bK2\r\n"                      \
    "Max-Forwards: 70\r\n"                                                                         \
    "t: Bob <sip:bob@biloxi.com>\r\n"                                                              \
    "f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"                                          \
    "i: a84b4c76e66710@pc33.atlanta.com\r\n"                                                       \
    "CSeq: 314159 INVITE\r\n"                                                                      \
    "Timestamp: 54\r\n"                                                                            \
    "l: 0\r\n"                                                                                     \
    "\r\n"

#define RESP_HDRS                                                                                  \
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"                               \
    "Via: SIP/2.0/UDP p1;branch=z9hG4bK1, SIP/2.0/UDP p2;branch=z9hG4bK2\r\n"                    \
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"

static void assert_buf(const struct ims_buf *b, const char *want)
{
    if (b->len != strlen(want) || memcmp(b->p, want, b->len) != 0)
        fail_msg("got:\n%.*s\nwant:\n%s", (int)b->len, b->p ? b->p : "", want);
}

static void test_response(void **st)
{
    (void)st;
    struct tmsg t;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    assert_true(TPARSE(&t, INVITE, false) > 0);

    assert_int_equal(ims_sip_build_response(&out, &t.m, 180, NULL, IMS_S("xyz"), IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     0);
    assert_buf(&out, "SIP/2.0 180 Ringing\r\n" RESP_HDRS
                     "To: Bob <sip:bob@biloxi.com>;tag=xyz\r\n"
                     "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
                     "CSeq: 314159 INVITE\r\n"
                     "Content-Length: 0\r\n\r\n");

    /* 100: no To tag, Timestamp copied (§8.2.6.1) */
    assert_int_equal(ims_sip_build_response(&out, &t.m, 100, NULL, IMS_S("xyz"), IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     0);
    assert_buf(&out, "SIP/2.0 100 Trying\r\n" RESP_HDRS
                     "To: Bob <sip:bob@biloxi.com>\r\n"
                     "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
                     "CSeq: 314159 INVITE\r\n"
                     "Timestamp: 54\r\n"
                     "Content-Length: 0\r\n\r\n");

    /* extra headers and a body */
    assert_int_equal(ims_sip_build_response(&out, &t.m, 200, "Fine", IMS_S("t1"),
                                            IMS_S("Contact: <sip:bob@192.0.2.4>\r\nServer: x\r\n"),
                                            IMS_S("text/plain"), IMS_S("hi")),
                     0);
    assert_buf(&out, "SIP/2.0 200 Fine\r\n" RESP_HDRS
                     "To: Bob <sip:bob@biloxi.com>;tag=t1\r\n"
                     "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
                     "CSeq: 314159 INVITE\r\n"
                     "Contact: <sip:bob@192.0.2.4>\r\nServer: x\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: 2\r\n\r\nhi");
    /* our response parses, and matches the request */
    struct sip_msg r;
    struct sip_hdr rh[32];
    assert_int_equal(ims_sip_parse(out.p, out.len, true, &r, rh, 32), (int)out.len);
    assert_int_equal(r.status, 200);
    assert_true(ims_str_eq(r.via1.branch, t.m.via1.branch));
    assert_int_equal(r.nvia, 3);
    assert_str(r.to.tag, "t1");
    assert_true(ims_str_eq(r.from.tag, t.m.from.tag));
    assert_int_equal(r.cseq.num, 314159);

    /* bad arguments leave the buffer empty */
    assert_int_equal(ims_sip_build_response(&out, &t.m, 99, NULL, IMS_STR_NULL, IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL);
    assert_int_equal(out.len, 0);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 700, NULL, IMS_STR_NULL, IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 200, NULL, IMS_STR_NULL, IMS_S("X: 1"),
                                            IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 200, "a\r\nX: y", IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 200, NULL, IMS_S("a\r\nb"), IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL);
    assert_int_equal(out.len, 0);
    assert_int_equal(ims_sip_build_response(&out, &r, 200, NULL, IMS_STR_NULL, IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     IMS_EINVAL); /* r is a response */
    tmsg_free(&t);

    /* an existing To tag is kept */
    assert_true(TPARSE(&t, "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                           "To: <sip:a@b>;tag=old\r\nFrom: <sip:c@d>;tag=f\r\nCall-ID: c\r\n"
                           "CSeq: 2 BYE\r\nl: 0\r\n\r\n",
                       false) > 0);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 200, NULL, IMS_S("new"), IMS_STR_NULL,
                                            IMS_STR_NULL, IMS_STR_NULL),
                     0);
    assert_non_null(strstr(out.p, "To: <sip:a@b>;tag=old\r\n"));
    assert_null(strstr(out.p, "new"));
    tmsg_free(&t);
    ims_buf_free(&out);
}

/* RFC 3261 §12.1.1: a response that establishes a dialog carries every
 * Record-Route value of the request, in order (two lines, one holding two
 * values, kept as they are); 100 Trying, failures, in-dialog requests and
 * methods that create no dialog get none. */
static void test_response_record_route(void **st)
{
    (void)st;
    static const char rr[] = "Record-Route: <sip:p1.example.com;lr;ftag=a>\r\n"
                             "Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\r\n";
    struct tmsg t;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    static const struct {
        const char *method, *to;
        int status;
        bool copied;
    } cases[] = {
        { "INVITE", "", 200, true },        { "INVITE", "", 183, true },
        { "SUBSCRIBE", "", 202, true },     { "REFER", "", 202, true },
        { "NOTIFY", "", 200, true },        { "INVITE", "", 100, false },
        { "INVITE", "", 486, false },       { "SUBSCRIBE", "", 403, false },
        { "INVITE", ";tag=old", 200, false }, { "OPTIONS", "", 200, false },
        { "MESSAGE", "", 200, false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[1024];
        snprintf(req, sizeof(req),
                 "%s sip:bob@biloxi.com SIP/2.0\r\n"
                 "Via: SIP/2.0/UDP p3.example.com;branch=z9hG4bK3\r\n%s"
                 "To: <sip:bob@biloxi.com>%s\r\nFrom: <sip:alice@atlanta.com>;tag=f\r\n"
                 "Call-ID: rr%zu\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n",
                 cases[i].method, rr, cases[i].to, i, cases[i].method);
        assert_true(TPARSE(&t, req, false) > 0);
        assert_int_equal(ims_sip_build_response(&out, &t.m, cases[i].status, NULL, IMS_S("t"),
                                                IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL),
                         0);
        if (cases[i].copied != (strstr(out.p, rr) != NULL))
            fail_msg("%s %d (To%s): Record-Route %s:\n%.*s", cases[i].method, cases[i].status,
                     cases[i].to, cases[i].copied ? "missing" : "copied", (int)out.len, out.p);
        if (!cases[i].copied)
            assert_null(strstr(out.p, "Record-Route"));
        tmsg_free(&t);
    }
    ims_buf_free(&out);
}

/* A 400/505 from a request whose parse failed: what is present is copied. */
static void test_response_to_bad_request(void **st)
{
    (void)st;
    struct tmsg t;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    assert_int_equal(TPARSE(&t, "OPTIONS sip:t.watson@example.org SIP/7.0\r\n"
                                "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n"
                                "Max-Forwards:     70\r\n"
                                "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n"
                                "To:      T. Watson <sip:t.watson@example.org>\r\n"
                                "Call-ID: badvers.31417@c.example.com\r\n"
                                "CSeq:    1 OPTIONS\r\n"
                                "l: 0\r\n\r\n",
                            false),
                     IMS_EPROTO);
    assert_int_equal(ims_sip_build_response(&out, &t.m, t.m.err_status, t.m.err_reason,
                                            IMS_S("tg"), IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL),
                     0);
    assert_buf(&out, "SIP/2.0 505 Version Not Supported\r\n"
                     "Via: SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n"
                     "From: A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n"
                     "To: T. Watson <sip:t.watson@example.org>;tag=tg\r\n"
                     "Call-ID: badvers.31417@c.example.com\r\n"
                     "CSeq: 1 OPTIONS\r\n"
                     "Content-Length: 0\r\n\r\n");
    tmsg_free(&t);

    /* RFC 4475 §3.3.1: no To, From, Call-ID */
    assert_int_equal(TPARSE(&t, "INVITE sip:user@example.com SIP/2.0\r\nCSeq: 193942 INVITE\r\n"
                                "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nl: 0\r\n\r\n",
                            false),
                     IMS_EPROTO);
    assert_int_equal(ims_sip_build_response(&out, &t.m, 400, t.m.err_reason, IMS_S("tg"),
                                            IMS_STR_NULL, IMS_STR_NULL, IMS_STR_NULL),
                     0);
    assert_buf(&out, "SIP/2.0 400 Missing To\r\n"
                     "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\n"
                     "CSeq: 193942 INVITE\r\n"
                     "Content-Length: 0\r\n\r\n");
    tmsg_free(&t);
    ims_buf_free(&out);
}

#define FWD                                                                                        \
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"                                                        \
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"                               \
    "Max-Forwards: 70\r\n"                                                                         \
    "Route: <sip:p1.example.com;lr>,\r\n <sip:p2.example.com;lr>\r\n"                             \
    "Route: <sip:p3.example.com;lr>\r\n"                                                           \
    "To: Bob <sip:bob@biloxi.com>\r\n"                                                             \
    "f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"                                          \
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"                                                 \
    "CSeq: 314159 INVITE\r\n"                                                                      \
    "Content-Type: text/plain\r\n"                                                                 \
    "l: 5\r\n"                                                                                     \
    "\r\n"                                                                                         \
    "hello"

static void test_rewrite_proxy(void **st)
{
    (void)st;
    struct tmsg t;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    assert_true(TPARSE(&t, FWD, false) > 0);
    size_t route = (size_t)t.m.first[SIP_H_ROUTE];
    struct sip_edit ed[] = {
        { SIP_EDIT_RURI, 0, IMS_S("sip:bob@192.0.2.4") },
        { SIP_EDIT_INSERT, 0, IMS_S("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n") },
        { SIP_EDIT_SET_VALUE, (size_t)t.m.first[SIP_H_MAX_FORWARDS], IMS_S("69") },
        { SIP_EDIT_POP_VALUE, route, IMS_STR_NULL },
        { SIP_EDIT_INSERT, 0, IMS_S("Record-Route: <sip:proxy.example.com;lr>\r\n") },
        { SIP_EDIT_INSERT, t.m.nhdrs, IMS_S("X-End: 1\r\n") },
    };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, ed, 6), 0);
    assert_buf(&out, "INVITE sip:bob@192.0.2.4 SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n"
                     "Record-Route: <sip:proxy.example.com;lr>\r\n"
                     "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
                     "Max-Forwards: 69\r\n"
                     "Route: <sip:p2.example.com;lr>\r\n"
                     "Route: <sip:p3.example.com;lr>\r\n"
                     "To: Bob <sip:bob@biloxi.com>\r\n"
                     "f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                     "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
                     "CSeq: 314159 INVITE\r\n"
                     "Content-Type: text/plain\r\n"
                     "l: 5\r\n"
                     "X-End: 1\r\n"
                     "\r\n"
                     "hello");
    struct sip_msg r;
    struct sip_hdr rh[32];
    assert_int_equal(ims_sip_parse(out.p, out.len, true, &r, rh, 32), (int)out.len);
    assert_int_equal(r.nvia, 2);
    assert_str(r.via1.branch, "z9hG4bKp1");
    assert_int_equal(r.max_forwards, 69);
    assert_str(r.ruri_raw, "sip:bob@192.0.2.4");

    /* popping both values of the first Route line drops it */
    struct sip_edit pop2[] = { { SIP_EDIT_POP_VALUE, route, IMS_STR_NULL },
                               { SIP_EDIT_POP_VALUE, route, IMS_STR_NULL },
                               { SIP_EDIT_DELETE, (size_t)t.m.first[SIP_H_CONTENT_TYPE],
                                 IMS_STR_NULL },
                               { SIP_EDIT_BODY, 0, IMS_S("bye!\r\n") } };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, pop2, 4), 0);
    assert_buf(&out, "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
                     "Max-Forwards: 70\r\n"
                     "Route: <sip:p3.example.com;lr>\r\n"
                     "To: Bob <sip:bob@biloxi.com>\r\n"
                     "f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                     "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
                     "CSeq: 314159 INVITE\r\n"
                     "l: 6\r\n"
                     "\r\n"
                     "bye!\r\n");

    /* no edits: the same bytes */
    assert_int_equal(ims_sip_rewrite(&out, &t.m, NULL, 0), 0);
    assert_buf(&out, FWD);

    /* start line */
    struct sip_edit sl[] = { { SIP_EDIT_START_LINE, 0, IMS_S("BYE sip:x@y SIP/2.0") } };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, sl, 1), 0);
    assert_true(ims_str_has_caseprefix(ims_buf_str(&out), "BYE sip:x@y SIP/2.0\r\nVia: "));

    /* bad edits */
    size_t cl = (size_t)t.m.first[SIP_H_CONTENT_LENGTH];
    const struct {
        struct sip_edit e[2];
        size_t n;
    } bad[] = {
        { { { SIP_EDIT_DELETE, cl, IMS_STR_NULL } }, 1 },
        { { { SIP_EDIT_SET_VALUE, cl, IMS_S("9") } }, 1 },
        { { { SIP_EDIT_DELETE, t.m.nhdrs, IMS_STR_NULL } }, 1 },
        { { { SIP_EDIT_INSERT, t.m.nhdrs + 1, IMS_S("X: 1\r\n") } }, 1 },
        { { { SIP_EDIT_INSERT, 0, IMS_S("X: 1") } }, 1 },
        { { { SIP_EDIT_INSERT, 0, IMS_STR_NULL } }, 1 },
        { { { SIP_EDIT_SET_VALUE, 0, IMS_S("a\r\nX: b") } }, 1 },
        { { { SIP_EDIT_DELETE, 1, IMS_STR_NULL }, { SIP_EDIT_SET_VALUE, 1, IMS_S("x") } }, 2 },
        { { { SIP_EDIT_POP_VALUE, 1, IMS_STR_NULL }, { SIP_EDIT_DELETE, 1, IMS_STR_NULL } }, 2 },
        { { { SIP_EDIT_RURI, 0, IMS_S("sip:a") }, { SIP_EDIT_START_LINE, 0, IMS_S("X") } }, 2 },
        { { { SIP_EDIT_BODY, 0, IMS_S("a") }, { SIP_EDIT_BODY, 0, IMS_S("b") } }, 2 },
        { { { SIP_EDIT_RURI, 0, IMS_STR_NULL } }, 1 },
        { { { (enum sip_edit_op)99, 0, IMS_STR_NULL } }, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ims_sip_rewrite(&out, &t.m, bad[i].e, bad[i].n) != IMS_EINVAL)
            fail_msg("bad edit %zu accepted", i);
        assert_int_equal(out.len, 0);
    }
    assert_int_equal(ims_sip_rewrite(&out, &t.m, ed, SIP_EDIT_MAX + 1), IMS_EINVAL);
    tmsg_free(&t);
    ims_buf_free(&out);
}

static void test_rewrite_response_and_udp(void **st)
{
    (void)st;
    struct tmsg t;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    /* Via pop on a response: the first value of a comma list */
    assert_true(TPARSE(&t, "SIP/2.0 200 OK\r\n"
                           "Via: SIP/2.0/UDP me;branch=z9hG4bKme ,\r\n SIP/2.0/UDP up;branch=z9hG4bKup\r\n"
                           "Via: SIP/2.0/UDP uac;branch=z9hG4bKuac\r\n"
                           "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
                           "\r\nbody",
                       false) > 0);
    struct sip_edit pop[] = { { SIP_EDIT_POP_VALUE, 0, IMS_STR_NULL } };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, pop, 1), 0);
    /* a datagram without Content-Length gets one */
    assert_buf(&out, "SIP/2.0 200 OK\r\n"
                     "Via: SIP/2.0/UDP up;branch=z9hG4bKup\r\n"
                     "Via: SIP/2.0/UDP uac;branch=z9hG4bKuac\r\n"
                     "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
                     "Content-Length: 4\r\n"
                     "\r\nbody");
    struct sip_edit ruri[] = { { SIP_EDIT_RURI, 0, IMS_S("sip:x") } };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, ruri, 1), IMS_EINVAL);
    /* popping the last value of the last Via drops the line */
    struct sip_edit pop3[] = { { SIP_EDIT_POP_VALUE, 0, IMS_STR_NULL },
                               { SIP_EDIT_POP_VALUE, 0, IMS_STR_NULL },
                               { SIP_EDIT_POP_VALUE, 0, IMS_STR_NULL },
                               { SIP_EDIT_DELETE, 1, IMS_STR_NULL } };
    assert_int_equal(ims_sip_rewrite(&out, &t.m, pop3, 4), 0);
    assert_true(ims_str_has_caseprefix(ims_buf_str(&out), "SIP/2.0 200 OK\r\nFrom: "));
    tmsg_free(&t);

    /* a message that failed to parse cannot be forwarded */
    assert_int_equal(TPARSE(&t, "SIP/2.0 200 OK\r\n\r\n", false), IMS_EPROTO);
    assert_int_equal(ims_sip_rewrite(&out, &t.m, NULL, 0), IMS_EINVAL);
    tmsg_free(&t);
    ims_buf_free(&out);
}

static void test_request_builders(void **st)
{
    (void)st;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    struct sip_req_spec s = {
        .method = SIP_M_REGISTER,
        .ruri = IMS_S("sip:ims.example.com"),
        .via = IMS_S("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKr1;rport"),
        .from = IMS_S("<sip:alice@ims.example.com>;tag=a1"),
        .to = IMS_S("<sip:alice@ims.example.com>"),
        .call_id = IMS_S("c1@192.0.2.1"),
        .cseq = 7,
        .max_forwards = -1,
        .contact = IMS_S("<sip:alice@192.0.2.1:5060>;expires=600"),
        .extra_headers = IMS_S("Expires: 600\r\n"),
    };
    assert_int_equal(ims_sip_build_request(&out, &s), 0);
    assert_buf(&out, "REGISTER sip:ims.example.com SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKr1;rport\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:alice@ims.example.com>;tag=a1\r\n"
                     "To: <sip:alice@ims.example.com>\r\n"
                     "Call-ID: c1@192.0.2.1\r\n"
                     "CSeq: 7 REGISTER\r\n"
                     "Contact: <sip:alice@192.0.2.1:5060>;expires=600\r\n"
                     "Expires: 600\r\n"
                     "Content-Length: 0\r\n\r\n");
    struct sip_msg r;
    struct sip_hdr rh[32];
    assert_int_equal(ims_sip_parse(out.p, out.len, true, &r, rh, 32), (int)out.len);
    assert_int_equal(ims_sip_validate(&r), 0);

    s.method = SIP_M_UNKNOWN;
    s.method_name = IMS_S("NEWMETHOD");
    s.route = IMS_S("<sip:p1;lr>");
    s.max_forwards = 10;
    s.body = IMS_S("x");
    s.content_type = IMS_S("text/plain");
    s.extra_headers = IMS_STR_NULL;
    s.contact = IMS_STR_NULL;
    assert_int_equal(ims_sip_build_request(&out, &s), 0);
    assert_buf(&out, "NEWMETHOD sip:ims.example.com SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKr1;rport\r\n"
                     "Max-Forwards: 10\r\n"
                     "Route: <sip:p1;lr>\r\n"
                     "From: <sip:alice@ims.example.com>;tag=a1\r\n"
                     "To: <sip:alice@ims.example.com>\r\n"
                     "Call-ID: c1@192.0.2.1\r\n"
                     "CSeq: 7 NEWMETHOD\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: 1\r\n\r\nx");
    struct sip_req_spec b = s;
    b.call_id = IMS_STR_NULL;
    assert_int_equal(ims_sip_build_request(&out, &b), IMS_EINVAL);
    assert_int_equal(out.len, 0);
    b = s;
    b.cseq = 0x80000000u;
    assert_int_equal(ims_sip_build_request(&out, &b), IMS_EINVAL);
    b = s;
    b.to = IMS_S("<sip:a@b>\r\nX: injected");
    assert_int_equal(ims_sip_build_request(&out, &b), IMS_EINVAL);
    b = s;
    b.method_name = IMS_STR_NULL;
    assert_int_equal(ims_sip_build_request(&out, &b), IMS_EINVAL);
    ims_buf_free(&out);
}

static void test_cancel_ack(void **st)
{
    (void)st;
    struct tmsg inv, resp;
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    assert_true(TPARSE(&inv, "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
                             "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8, "
                             "SIP/2.0/UDP older;branch=z9hG4bKold\r\n"
                             "Max-Forwards: 70\r\n"
                             "Route: <sip:p1.example.com;lr>\r\n"
                             "To: Bob <sip:bob@biloxi.com>\r\n"
                             "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                             "Call-ID: a84b4c76e66710\r\n"
                             "CSeq: 314159 INVITE\r\n"
                             "Content-Length: 0\r\n\r\n",
                       false) > 0);
    assert_int_equal(ims_sip_build_cancel(&out, &inv.m, IMS_S("Reason: SIP;cause=480\r\n")), 0);
    assert_buf(&out, "CANCEL sip:bob@biloxi.com SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
                     "Max-Forwards: 70\r\n"
                     "Route: <sip:p1.example.com;lr>\r\n"
                     "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                     "To: Bob <sip:bob@biloxi.com>\r\n"
                     "Call-ID: a84b4c76e66710\r\n"
                     "CSeq: 314159 CANCEL\r\n"
                     "Reason: SIP;cause=480\r\n"
                     "Content-Length: 0\r\n\r\n");
    assert_true(TPARSE(&resp, "SIP/2.0 486 Busy Here\r\n"
                              "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
                              "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
                              "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                              "Call-ID: a84b4c76e66710\r\n"
                              "CSeq: 314159 INVITE\r\n"
                              "Content-Length: 0\r\n\r\n",
                        false) > 0);
    assert_int_equal(ims_sip_build_ack(&out, &inv.m, &resp.m), 0);
    assert_buf(&out, "ACK sip:bob@biloxi.com SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
                     "Max-Forwards: 70\r\n"
                     "Route: <sip:p1.example.com;lr>\r\n"
                     "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
                     "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
                     "Call-ID: a84b4c76e66710\r\n"
                     "CSeq: 314159 ACK\r\n"
                     "Content-Length: 0\r\n\r\n");
    assert_int_equal(ims_sip_build_ack(&out, &inv.m, &inv.m), IMS_EINVAL);
    assert_int_equal(ims_sip_build_cancel(&out, &resp.m, IMS_STR_NULL), IMS_EINVAL);
    assert_int_equal(ims_sip_build_cancel(&out, &inv.m, IMS_S("Reason: x")), IMS_EINVAL);
    assert_int_equal(out.len, 0);
    tmsg_free(&inv);
    tmsg_free(&resp);
    ims_buf_free(&out);
}

static void test_reason_phrases(void **st)
{
    (void)st;
    assert_string_equal(ims_sip_reason_phrase(200), "OK");
    assert_string_equal(ims_sip_reason_phrase(416), "Unsupported URI Scheme");
    assert_string_equal(ims_sip_reason_phrase(505), "Version Not Supported");
    assert_string_equal(ims_sip_reason_phrase(513), "Message Too Large");
    assert_string_equal(ims_sip_reason_phrase(299), "Unknown");
}

/* Each builder, with allocation N failing, for N = 1, 2, ... until one run
 * completes: every failed run is IMS_ENOMEM with an empty buffer. */
typedef int (*build_fn)(struct ims_buf *out, const struct sip_msg *m);

static int b_resp(struct ims_buf *out, const struct sip_msg *m)
{
    return ims_sip_build_response(out, m, 200, NULL, IMS_S("tag"), IMS_S("Server: x\r\n"),
                                  IMS_S("text/plain"), IMS_S("some body text"));
}

static int b_rewrite(struct ims_buf *out, const struct sip_msg *m)
{
    struct sip_edit ed[] = {
        { SIP_EDIT_INSERT, 0, IMS_S("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n") },
        { SIP_EDIT_POP_VALUE, (size_t)m->first[SIP_H_ROUTE], IMS_STR_NULL },
        { SIP_EDIT_RURI, 0, IMS_S("sip:bob@192.0.2.4") },
    };
    return ims_sip_rewrite(out, m, ed, 3);
}

static int b_req(struct ims_buf *out, const struct sip_msg *m)
{
    (void)m;
    struct sip_req_spec s = {
        .method = SIP_M_OPTIONS, .ruri = IMS_S("sip:a@b"), .via = IMS_S("SIP/2.0/UDP h;branch=z9hG4bK1"),
        .from = IMS_S("<sip:c@d>;tag=1"), .to = IMS_S("<sip:a@b>"), .call_id = IMS_S("x"), .cseq = 1,
        .max_forwards = 70, .body = IMS_S("0123456789012345678901234567890123456789"),
        .content_type = IMS_S("text/plain"),
    };
    return ims_sip_build_request(out, &s);
}

static int b_cancel(struct ims_buf *out, const struct sip_msg *m)
{
    return ims_sip_build_cancel(out, m, IMS_STR_NULL);
}

static void test_alloc_faults(void **st)
{
    (void)st;
    static const build_fn fns[] = { b_resp, b_rewrite, b_req, b_cancel };
    struct tmsg t;
    assert_true(TPARSE(&t, FWD, false) > 0);
    for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
        for (int sticky = 0; sticky <= 1; sticky++) {
            unsigned long n;
            int rc = -1;
            for (n = 1; n < 100; n++) {
                struct ims_buf out;
                ims_buf_init(&out, 65536);
                ims_alloc_fail_at(n, sticky);
                rc = fns[f](&out, &t.m);
                ims_alloc_fail_at(0, 0);
                if (rc == 0) {
                    assert_true(out.len > 0);
                    ims_buf_free(&out);
                    break;
                }
                assert_int_equal(rc, IMS_ENOMEM);
                assert_int_equal(out.len, 0);
                assert_null(out.p);
                ims_buf_free(&out);
            }
            assert_int_equal(rc, 0);
            assert_true(n > 1); /* at least one run failed */
        }
    }
    /* a reused buffer that is large enough needs no allocation at all */
    struct ims_buf out;
    ims_buf_init(&out, 65536);
    assert_int_equal(b_resp(&out, &t.m), 0);
    assert_int_equal(b_rewrite(&out, &t.m), 0);
    ims_alloc_fail_at(1, 1);
    assert_int_equal(b_resp(&out, &t.m), 0);
    assert_int_equal(b_rewrite(&out, &t.m), 0);
    ims_alloc_fail_at(0, 0);
    ims_buf_free(&out);
    /* the cap is an ordinary error */
    ims_buf_init(&out, 64);
    assert_int_equal(b_resp(&out, &t.m), IMS_ELIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(b_rewrite(&out, &t.m), IMS_ELIMIT);
    assert_int_equal(out.len, 0);
    ims_buf_free(&out);
    tmsg_free(&t);
}

const struct CMUnitTest build_tests[] = {
    cmocka_unit_test(test_response),
    cmocka_unit_test(test_response_to_bad_request),
    cmocka_unit_test(test_response_record_route),
    cmocka_unit_test(test_rewrite_proxy),
    cmocka_unit_test(test_rewrite_response_and_udp),
    cmocka_unit_test(test_request_builders),
    cmocka_unit_test(test_cancel_ack),
    cmocka_unit_test(test_reason_phrases),
    cmocka_unit_test(test_alloc_faults),
};
const size_t build_ntests = NTESTS(build_tests);
