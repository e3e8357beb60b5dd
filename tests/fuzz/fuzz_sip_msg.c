/* fuzz_sip_msg.c - libFuzzer harness for the SIP parser and builder.
 *
 * One input is one datagram / stream buffer.  It runs ims_sip_parse() in both
 * modes, ims_sip_frame(), ims_sip_validate(), the STUN answer (stun.h: the
 * UDP transport offers every datagram to it), every on-demand parser over
 * every header value (and every list element), the response builder, and
 * for messages that parse, the rewrite and the CANCEL/ACK builders, and the
 * UDP transport's choice of worker (udp_spread.c).  The
 * same function is called by the unit tests on guard-page buffers and by
 * fuzz_sip_msg_replay on the corpus.  Built without libFuzzer it is just a
 * function. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/err.h"
#include "net/net_int.h"
#include "net/stun.h"
#include "sip/build.h"
#include "sip/msg.h"

#include "fuzz.h"

static void check_slice(ims_str s, const char *buf, size_t len)
{
    /* every slice points into the input (or is empty) */
    CHECK(s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len));
    CHECK(s.len != 0 || s.p == NULL || (s.p >= buf && s.p <= buf + len));
}

static void on_element(ims_str e, enum sip_hdr_id id, const char *buf, size_t len)
{
    struct sip_nameaddr na;
    struct sip_via via;
    struct sip_sec_mech sm;
    struct sip_uri u;
    ims_str v;
    check_slice(e, buf, len);
    if (ims_sip_parse_nameaddr(e, &na) == 0) {
        check_slice(na.display, buf, len);
        check_slice(na.uri.raw, buf, len);
        check_slice(na.params, buf, len);
        check_slice(na.tag, buf, len);
        ims_sip_param_get(na.params, "tag", &v);
        ims_sip_param_get(na.uri.params, "lr", &v);
        CHECK(ims_sip_uri_equal(&na.uri, &na.uri) || na.uri.scheme == SIP_URI_NONE);
        /* the URI alone parses again the same way */
        CHECK(ims_sip_parse_uri(na.uri.raw, &u) == 0);
    }
    if (ims_sip_parse_via(e, &via) == 0) {
        check_slice(via.host, buf, len);
        check_slice(via.branch, buf, len);
        check_slice(via.params, buf, len);
        ims_sip_param_get(via.params, "branch", &v);
    }
    if (ims_sip_parse_sec_mech(e, &sm) == 0)
        check_slice(sm.params, buf, len);
    if (ims_sip_parse_uri(e, &u) == 0)
        check_slice(u.host, buf, len);
    (void)id;
}

static void on_header(const struct sip_msg *m, const struct sip_hdr *h, const char *buf, size_t len)
{
    struct sip_auth a;
    struct sip_cseq cs;
    ims_str e;
    check_slice(h->name, buf, len);
    check_slice(h->value, buf, len);
    CHECK(h->name.len > 0 && h->name.p + h->raw_len <= buf + len);
    CHECK(ims_sip_hdr_id(h->name) == (enum sip_hdr_id)h->id);
    if (ims_sip_parse_auth(h->value, &a) == 0) {
        check_slice(a.params, buf, len);
        check_slice(a.nonce, buf, len);
        check_slice(a.token, buf, len);
        /* what the P-CSCF rewrites (integrity-protected): any parsed
         * auth-params can be, and the result parses without the dropped one */
        if (a.params.len) {
            struct ims_buf b;
            ims_buf_init(&b, 2 * h->value.len + 64); /* ", " for "," at worst */
            int rc = ims_sip_auth_without(h->value, "nonce", &b);
            CHECK(rc == 0 || rc == IMS_ENOMEM);
            struct sip_auth w;
            CHECK(rc != 0 || (ims_sip_parse_auth(ims_buf_str(&b), &w) == 0 && !w.nonce.p &&
                              ims_str_eq(w.scheme, a.scheme)));
            ims_buf_free(&b);
        }
    }
    ims_sip_parse_cseq(h->value, &cs);
    struct ims_cur c = { h->value.p, h->value.len ? h->value.p + h->value.len : h->value.p };
    int n = 0;
    while (ims_sip_list_next(&c, &e) == 0 && n++ < 64)
        on_element(e, (enum sip_hdr_id)h->id, buf, len);
    on_element(h->value, (enum sip_hdr_id)h->id, buf, len);
    CHECK(ims_sip_hdr_by_name(m, h->name) != NULL);
}

static int run(const char *buf, size_t len, bool stream)
{
    struct sip_msg m;
    struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
    int rc = ims_sip_parse(buf, len, stream, &m, hdrs, SIP_MAX_HEADERS_DEFAULT);
    CHECK(rc == IMS_EAGAIN || rc == IMS_EPROTO || rc == IMS_ELIMIT || (rc > 0 && (size_t)rc <= len));
    if (rc == IMS_EAGAIN)
        CHECK(stream);
    if (rc == IMS_EPROTO || rc == IMS_ELIMIT)
        CHECK(m.err_status >= 400 && m.err_reason != NULL);
    if (rc == IMS_EAGAIN)
        return rc;
    if (rc > 0)
        CHECK(m.err_status == 0 && m.head_len <= m.len && m.body.len == m.len - m.head_len);
    for (size_t i = 0; i < m.nhdrs; i++)
        on_header(&m, &m.hdrs[i], buf, len);
    check_slice(m.ruri_raw, buf, len);
    check_slice(m.body, buf, len);

    struct ims_buf out;
    ims_buf_init(&out, 1 << 17);
    if (m.kind == SIP_MSG_REQUEST) {
        int brc = ims_sip_build_response(&out, &m, m.err_status ? m.err_status : 200, m.err_reason,
                                         IMS_S("fz1"), IMS_S("Server: fuzz\r\n"), IMS_STR_NULL,
                                         IMS_STR_NULL);
        CHECK(brc == 0 || brc == IMS_EINVAL);
        if (brc == 0) {
            /* our own response parses back when the request was sound */
            struct sip_msg r;
            struct sip_hdr rh[SIP_MAX_HEADERS_DEFAULT];
            int prc = ims_sip_parse(out.p, out.len, true, &r, rh, SIP_MAX_HEADERS_DEFAULT);
            if (rc > 0)
                CHECK(prc == (int)out.len);
        }
    }
    if (rc > 0) {
        struct sip_edit ed[4];
        size_t ne = 0;
        ed[ne++] = (struct sip_edit){ SIP_EDIT_INSERT, 0, IMS_S("Via: SIP/2.0/UDP fz;branch=z9hG4bKfz\r\n") };
        if (m.first[SIP_H_VIA] >= 0)
            ed[ne++] = (struct sip_edit){ SIP_EDIT_POP_VALUE, (size_t)m.first[SIP_H_VIA], IMS_STR_NULL };
        if (m.first[SIP_H_MAX_FORWARDS] >= 0)
            ed[ne++] = (struct sip_edit){ SIP_EDIT_SET_VALUE, (size_t)m.first[SIP_H_MAX_FORWARDS], IMS_S("9") };
        if (m.kind == SIP_MSG_REQUEST)
            ed[ne++] = (struct sip_edit){ SIP_EDIT_RURI, 0, IMS_S("sip:fz@192.0.2.9") };
        int wrc = ims_sip_rewrite(&out, &m, ed, ne);
        CHECK(wrc == 0 || wrc == IMS_EPROTO);
        if (m.kind == SIP_MSG_REQUEST) {
            CHECK(ims_sip_build_cancel(&out, &m, IMS_STR_NULL) == 0);
            CHECK(ims_sip_build_ack(&out, &m, &m) == IMS_EINVAL); /* m is no response */
        }
        /* last: it sets m.err_status when it fails */
        int vrc = ims_sip_validate(&m);
        CHECK(vrc == 0 || (vrc == IMS_EPROTO && m.err_status == 400 && m.err_reason));
    }
    ims_buf_free(&out);
    return rc;
}

/* A datagram may be STUN (udp.c offers it to the demultiplexer first):
 * the answer fits its buffer and is a whole message or nothing. */
static void run_stun(const uint8_t *data, size_t size)
{
    static struct ims_addr src4, src6;
    if (ims_addr_family(&src4) == AF_UNSPEC) {
        ims_addr_parse(IMS_S("192.0.2.1:32853"), 0, &src4);
        ims_addr_parse(IMS_S("[2001:db8::1]:5060"), 0, &src6);
    }
    uint8_t out[IMS_STUN_RSP_MAX];
    for (int i = 0; i < 2; i++) {
        size_t r = ims_stun_answer(data, size, i ? &src6 : &src4, out);
        CHECK(r == 0 || (r >= IMS_STUN_HDR && r <= IMS_STUN_RSP_MAX && r % 4 == 0));
        CHECK(r == 0 || (size_t)(out[2] << 8 | out[3]) == r - IMS_STUN_HDR);
        CHECK(r == 0 || ims_stun_looks_like(data, size));
    }
}

/* Every datagram goes to a worker (udp_spread.c reads its Call-ID and, for
 * a REGISTER, its Vias): a valid one, the same for the same bytes, and
 * the reader itself for a response. */
static void run_spread(const char *buf, size_t size)
{
    struct sip_tp tp = { .idx = 1, .spread_workers = 3 };
    unsigned w = ims_udp_spread_owner(&tp, buf, size);
    CHECK(w < tp.spread_workers);
    CHECK(ims_udp_spread_owner(&tp, buf, size) == w);
    if (size >= 8 && memcmp(buf, "SIP/2.0 ", 8) == 0)
        CHECK(w == tp.idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    run_stun(data, size);
    run_spread(buf, size);
    run(buf, size, false);
    int src = run(buf, size, true);
    size_t skip = 0;
    int fr = ims_sip_frame(buf, size, SIP_MAX_MSG_DEFAULT, &skip);
    CHECK(skip <= size);
    CHECK(fr == IMS_EAGAIN || fr == IMS_EPROTO || (fr > 0 && skip + (size_t)fr <= size));
    /* the transport frames with ims_sip_frame() and then parses: they agree */
    if (src > 0)
        CHECK(fr > 0 && skip + (size_t)fr == (size_t)src);
    /* frame may refuse a broken Content-Length before the head is complete */
    if (src == IMS_EAGAIN)
        CHECK(fr == IMS_EAGAIN || fr == IMS_EPROTO);
    return 0;
}
