/* test_codec - the table-driven codec over real freeDiameter messages:
 * every request is encoded from a struct, serialised to wire bytes,
 * parsed back with the dictionary and decoded, so what is tested is what
 * a peer's bytes become.  freeDiameter's core is initialised once for the
 * process (it is a singleton), never started: no threads, no sockets. */
#include "dia/codec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "dia/dia.h"
#include "dia/fd_guard.h"

#define S(x) ims_str_cstr(x)

/* Serialises m, frees it, and parses the bytes back with the dictionary. */
static struct msg *wire_roundtrip(struct msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct msg *out = NULL;
    struct fd_pei pei;
    assert_int_equal(fd_msg_bufferize(m, &buf, &len), 0);
    fd_msg_free(m);
    assert_int_equal(fd_msg_parse_buffer(&buf, len, &out), 0); /* takes buf */
    memset(&pei, 0, sizeof(pei));
    assert_int_equal(fd_msg_parse_dict(out, fd_g_config->cnf_dict, &pei), 0);
    return out;
}

static struct msg *new_req(unsigned cmd)
{
    struct msg *m = NULL;
    assert_int_equal(fd_msg_new(dia_dict_cmd(cmd, true), MSGFL_ALLOC_ETEID, &m), 0);
    return m;
}

static struct cx_uar uar_ok(void)
{
    struct cx_uar r;
    memset(&r, 0, sizeof(r));
    r.impi = S("alice@ims.test");
    r.impu = S("sip:alice@ims.test");
    r.visited = S("\"ims.test\"");
    r.auth_type = CX_UAT_DE_REGISTRATION;
    r.present = 1u << CX_UAR_IMPI | 1u << CX_UAR_IMPU | 1u << CX_UAR_VISITED | 1u << CX_UAR_TYPE;
    return r;
}

static void test_tables_match_enums(void **state)
{
    assert_int_equal(dia_t_uar.f[CX_UAR_IMPI].code, 1);
    assert_int_equal(dia_t_uar.f[CX_UAR_IMPU].code, 601);
    assert_int_equal(dia_t_uar.f[CX_UAR_VISITED].code, 600);
    assert_int_equal(dia_t_uar.f[CX_UAR_TYPE].code, 623);
    assert_int_equal(dia_t_uar.f[CX_UAR_FLAGS].code, 637);
    assert_int_equal(dia_t_mar.f[CX_MAR_SERVER].code, 602);
    assert_int_equal(dia_t_mar.f[CX_MAR_NITEMS].code, 607);
    assert_int_equal(dia_t_mar.f[CX_MAR_ITEM].code, 612);
    assert_int_equal(dia_t_sar.f[CX_SAR_IMPU].code, 601);
    assert_int_equal(dia_t_sar.f[CX_SAR_TYPE].code, 614);
    assert_int_equal(dia_t_sar.f[CX_SAR_UDA].code, 624);
    assert_int_equal(dia_t_sar.f[CX_SAR_WILDCARD].code, 634);
    assert_int_equal(dia_t_sar.f[CX_SAR_FLAGS].code, 655);
    assert_int_equal(dia_t_lir.f[CX_LIR_IMPU].code, 601);
    assert_int_equal(dia_t_lir.f[CX_LIR_ORIG].code, 633);
    assert_int_equal(dia_t_rtr.f[CX_RTR_REASON].code, 615);
    assert_int_equal(dia_t_ppr.f[CX_PPR_DATA].code, 606);
    assert_int_equal(dia_t_ppr.f[CX_PPR_CHARGING].code, 618);
    assert_int_equal(dia_t_udr.f[SH_UDR_UID].code, 700);
    assert_int_equal(dia_t_udr.f[SH_UDR_DREF].code, 703);
    assert_int_equal(dia_t_udr.f[SH_UDR_SI].code, 704);
    assert_int_equal(dia_t_udr.f[SH_UDR_IDSET].code, 708);
    assert_int_equal(dia_t_udr.f[SH_UDR_SERVER].code, 602);
    assert_int_equal(dia_t_pur.f[SH_PUR_DATA].code, 702);
    assert_int_equal(dia_t_uar.f[DIA_REQ_DEST_REALM].code, 283);
    assert_int_equal(dia_t_ans.f[DIA_ANS_RESULT].code, 268);
    assert_int_equal(dia_t_ans.f[DIA_ANS_EXP].code, 297);
    assert_int_equal(dia_t_ans.f[DIA_ANS_ITEMS].code, 612);
    assert_int_equal(dia_t_ans.f[DIA_ANS_USER_DATA].code, 606);
    assert_int_equal(dia_t_ans.f[DIA_ANS_SH_DATA].code, 702);
    assert_int_equal(dia_t_ans.f[DIA_ANS_REDIRECT].code, 292);
    assert_int_equal(dia_t_ans.f[DIA_ANS_ERROR_MESSAGE].code, 281);
    /* every table fits the present bits, every AVP is in the dictionary */
    const struct dia_table *all[] = { &dia_t_uar, &dia_t_mar, &dia_t_sar, &dia_t_lir, &dia_t_rtr,
                                      &dia_t_ppr, &dia_t_udr, &dia_t_pur, &dia_t_ans };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_true(all[i]->n <= 64);
        for (size_t k = 0; k < all[i]->n; k++)
            assert_non_null(dia_dict_avp(all[i]->f[k].code, all[i]->f[k].vendor));
    }
}

static void test_uar_roundtrip(void **state)
{
    struct cx_uar in = uar_ok(), out;
    struct dia_fail fail;
    struct msg *m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), 0);
    assert_int_equal(out.present, in.present);
    assert_true(ims_str_eq(out.impi, in.impi));
    assert_true(ims_str_eq(out.impu, in.impu));
    assert_true(ims_str_eq(out.visited, in.visited));
    assert_int_equal(out.auth_type, CX_UAT_DE_REGISTRATION);
    fd_msg_free(m);
}

static void test_missing_required(void **state)
{
    struct cx_uar in = uar_ok(), out;
    struct dia_fail fail;
    in.present &= ~(UINT64_C(1) << CX_UAR_IMPU);
    struct msg *m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_MISSING_AVP);
    assert_int_equal(fail.code, 601);
    assert_int_equal(fail.vendor, DIA_VENDOR_3GPP);
    assert_null(fail.avp);

    /* the answer carries Failed-AVP holding an AVP with that code and vendor */
    struct msg *ans = m;
    assert_int_equal(fd_msg_new_answer_from_req(fd_g_config->cnf_dict, &ans, 0), 0);
    assert_int_equal(dia_add_failed_avp(ans, &fail), 0);
    struct avp *failed = NULL, *inner = NULL;
    struct avp_hdr *h;
    assert_int_equal(fd_msg_search_avp(ans, dia_dict_avp(279, 0), &failed), 0);
    assert_non_null(failed);
    assert_int_equal(fd_msg_browse(failed, MSG_BRW_FIRST_CHILD, &inner, NULL), 0);
    assert_non_null(inner);
    assert_int_equal(fd_msg_avp_hdr(inner, &h), 0);
    assert_int_equal(h->avp_code, 601);
    assert_int_equal(h->avp_vendor, DIA_VENDOR_3GPP);
    fd_msg_free(ans);
}

static void test_missing_in_group(void **state)
{
    struct cx_mar in, out;
    struct dia_fail fail;
    memset(&in, 0, sizeof(in));
    in.impi = S("a@b.c");
    in.impu = S("sip:a@b.c");
    in.server_name = S("sip:scscf");
    in.n_items = 1;
    in.present = 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                 1u << CX_MAR_NITEMS; /* no SIP-Auth-Data-Item */
    struct msg *m = new_req(DIA_CMD_MAR);
    assert_int_equal(dia_encode(m, &dia_t_mar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_mar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_MISSING_AVP);
    assert_int_equal(fail.code, 612);
    fd_msg_free(m);

    /* with the item: the nested struct is filled */
    in.item.scheme = S("Digest-AKAv1-MD5");
    in.item.authorization = ims_str_make("0123456789abcdef0123456789abcd", 30);
    in.item.present = 1u << CX_ITEM_SCHEME | 1u << CX_ITEM_AUTHORIZATION;
    in.present |= 1u << CX_MAR_ITEM;
    m = new_req(DIA_CMD_MAR);
    assert_int_equal(dia_encode(m, &dia_t_mar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_mar, &out, &fail), 0);
    assert_true(ims_str_eq(out.item.scheme, in.item.scheme));
    assert_int_equal(out.item.authorization.len, 30);
    assert_true(DIA_HAS(&out.item, CX_ITEM_AUTHORIZATION));
    assert_false(DIA_HAS(&out.item, CX_ITEM_AUTHENTICATE));
    fd_msg_free(m);
}

static void test_length_and_value_bounds(void **state)
{
    char big[300];
    struct cx_uar in = uar_ok(), out;
    struct dia_fail fail;
    memset(big, 'a', sizeof(big));
    in.impi = ims_str_make(big, sizeof(big)); /* > 255: INVALID_AVP_VALUE */
    struct msg *m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_INVALID_AVP_VALUE);
    assert_int_equal(fail.code, 1);
    assert_non_null(fail.avp);
    fd_msg_free(m);

    in = uar_ok();
    in.impi = S(""); /* empty identity */
    m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_INVALID_AVP_VALUE);
    fd_msg_free(m);

    in = uar_ok();
    in.auth_type = 7; /* not an enumerated value */
    m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_INVALID_AVP_VALUE);
    assert_int_equal(fail.code, 623);
    fd_msg_free(m);

    in = uar_ok();
    in.impu = ims_str_make("sip:\xc3\x28@x", 8); /* invalid UTF-8 in a UTF8String */
    m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.code, 601);
    fd_msg_free(m);
}

static void test_repeated_and_unknown(void **state)
{
    struct cx_uar in = uar_ok(), out;
    struct dia_fail fail;
    struct msg *m = new_req(DIA_CMD_UAR);
    assert_int_equal(dia_encode(m, &dia_t_uar, &in), 0);
    assert_int_equal(dia_add_str(m, 1, 0, S("again@ims.test")), 0); /* User-Name twice */
    m = wire_roundtrip(m);
    assert_int_equal(dia_decode(m, &dia_t_uar, &out, &fail), IMS_EPROTO);
    assert_int_equal(fail.result, DIA_AVP_OCCURS_TOO_MANY_TIMES);
    fd_msg_free(m);

    /* Kamailio's SAR carries AVP 494 of vendor 50, not mandatory: ignored */
    struct dict_object *v50 = NULL, *a494 = NULL;
    struct dict_vendor_data vd = { 50, "test vendor 50" };
    struct dict_avp_data ad = { 494, 50, "Test-Call-ID", AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY,
                                AVP_FLAG_VENDOR, AVP_TYPE_OCTETSTRING };
    int rc = fd_dict_new(fd_g_config->cnf_dict, DICT_VENDOR, &vd, NULL, &v50);
    assert_true(rc == 0 || rc == EEXIST);
    rc = fd_dict_new(fd_g_config->cnf_dict, DICT_AVP, &ad, NULL, &a494);
    assert_true(rc == 0 || rc == EEXIST);
    struct cx_sar sar, sout;
    memset(&sar, 0, sizeof(sar));
    sar.impu[0] = S("sip:alice@ims.test");
    sar.impu[1] = S("tel:+1555");
    sar.n_impu = 2;
    sar.server_name = S("sip:scscf.ims.test:6060");
    sar.sat = CX_SAT_REGISTRATION;
    sar.uda = 0;
    sar.present = 1u << CX_SAR_IMPU | 1u << CX_SAR_SERVER | 1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    m = new_req(DIA_CMD_SAR);
    assert_int_equal(dia_encode(m, &dia_t_sar, &sar), 0);
    struct avp *x;
    union avp_value v = { .os = { (uint8_t *)"call-id-1", 9 } };
    assert_int_equal(fd_msg_avp_new(a494, 0, &x), 0);
    assert_int_equal(fd_msg_avp_setvalue(x, &v), 0);
    assert_int_equal(fd_msg_avp_add(m, MSG_BRW_LAST_CHILD, x), 0);
    m = wire_roundtrip(m);
    rc = dia_decode(m, &dia_t_sar, &sout, &fail);
    if (rc)
        fail_msg("decode: %s %u %s", fail.field, fail.result, fail.why);
    assert_int_equal(sout.n_impu, 2);
    assert_true(ims_str_eq(sout.impu[1], S("tel:+1555")));
    assert_int_equal(sout.sat, CX_SAT_REGISTRATION);
    fd_msg_free(m);
}

static void test_answer_roundtrip(void **state)
{
    struct dia_ans a, b;
    struct dia_fail fail;
    memset(&a, 0, sizeof(a));
    dia_ans_result(&a, DIA_SUCCESS);
    a.user_name = S("bob@ims.test");
    DIA_SET(&a, DIA_ANS_USER_NAME);
    a.n_items = 2;
    DIA_SET(&a, DIA_ANS_NITEMS);
    for (int i = 0; i < 2; i++) {
        a.items[i].item_number = (uint32_t)i + 1;
        a.items[i].scheme = S("Digest-AKAv1-MD5");
        a.items[i].authenticate = ims_str_make("0123456789abcdef0123456789abcdef", 32);
        a.items[i].ck = ims_str_make("0123456789abcdef", 16);
        a.items[i].present = 1u << CX_ITEM_NUMBER | 1u << CX_ITEM_SCHEME |
                             1u << CX_ITEM_AUTHENTICATE | 1u << CX_ITEM_CK;
    }
    a.n_item = 2;
    DIA_SET(&a, DIA_ANS_ITEMS);
    a.caps.mand[0] = 7;
    a.caps.n_mand = 1;
    a.caps.names[0] = S("sip:s1");
    a.caps.names[1] = S("sip:s2");
    a.caps.n_names = 2;
    a.caps.present = 1u << 0 | 1u << 2;
    DIA_SET(&a, DIA_ANS_CAPS);
    dia_ans_exp(&a, DIA_FIRST_REGISTRATION);
    /* an answer message (flags P, not R) built on a request */
    struct msg *m = new_req(DIA_CMD_MAR);
    assert_int_equal(fd_msg_new_answer_from_req(fd_g_config->cnf_dict, &m, 0), 0);
    assert_int_equal(dia_encode(m, &dia_t_ans, &a), 0);
    struct msg *q = NULL;
    assert_int_equal(fd_msg_answ_getq(m, &q), 0);
    fd_msg_answ_detach(m);
    fd_msg_free(q);
    m = wire_roundtrip(m);
    if (dia_decode(m, &dia_t_ans, &b, &fail))
        fail_msg("decode: %s %u %s", fail.field, fail.result, fail.why);
    assert_int_equal(b.result_code, DIA_SUCCESS);
    assert_int_equal(b.exp.code, DIA_FIRST_REGISTRATION);
    assert_int_equal(b.exp.vendor, DIA_VENDOR_3GPP);
    assert_int_equal(b.n_item, 2);
    assert_int_equal(b.items[1].item_number, 2);
    assert_int_equal(b.items[1].authenticate.len, 32);
    assert_int_equal(b.caps.n_names, 2);
    assert_int_equal(b.caps.n_mand, 1);
    assert_int_equal(b.caps.mand[0], 7);
    assert_true(ims_str_eq(b.user_name, S("bob@ims.test")));
    fd_msg_free(m);
}

/* raw as freeDiameter receives it: parsed into AVPs, the receive hook's
 * check (which must remove `dropped` Session-Ids, the last for want_why),
 * then the dictionary.  The message, for the caller to free. */
static struct msg *received(const uint8_t *raw, size_t len, size_t dropped, const char *want_why)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, raw, len);
    struct msg *m = NULL;
    const char *why = "not set";
    assert_int_equal(fd_msg_parse_buffer(&buf, len, &m), 0); /* takes buf */
    assert_int_equal(dia_drop_bad_session_id(m, &why), dropped);
    if (want_why)
        assert_string_equal(why, want_why);
    else
        assert_null(why);
    struct fd_pei pei;
    memset(&pei, 0, sizeof(pei));
    assert_int_equal(fd_msg_parse_dict(m, fd_g_config->cnf_dict, &pei), 0);
    return m;
}

/* A UAR whose first AVP is a Session-Id freeDiameter cannot take: the hook
 * removes it (once: a second pass finds none), and the session lookup
 * freeDiameter's dispatcher makes then finds none and returns, with the
 * rest of the message untouched. */
static void check_session_id_dropped(const uint8_t *raw, size_t len, const char *want_why)
{
    struct msg *m = received(raw, len, 1, want_why);
    assert_int_equal(dia_drop_bad_session_id(m, NULL), 0);
    struct avp *a = NULL;
    assert_int_equal(fd_msg_search_avp(m, dia_dict_avp(263, 0), &a), 0);
    assert_null(a);
    assert_int_equal(fd_msg_search_avp(m, dia_dict_avp(264, 0), &a), 0);
    assert_non_null(a); /* the rest is untouched */
    struct session *sess = (struct session *)&a; /* anything but NULL */
    assert_int_equal(fd_msg_sess_get(fd_g_config->cnf_dict, m, &sess, NULL), 0);
    assert_null(sess);
    fd_msg_free(m);
}

#define UAR_HDR(len)                                                                       \
    1, 0, 0, (len), 0x80, 0, 1, 44,  /* version, length, R, UAR (300) */                  \
        0x01, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1 /* Cx, hop-by-hop, end-to-end */
#define ORIGIN_HOST                                                                        \
    0, 0, 1, 8, 0x40, 0, 0, 14, /* Origin-Host, M, length 14 */                            \
        'h', '.', 'e', 'x', 'x', 'x', 0, 0

/* The Session-Ids freeDiameter 1.2.1 cannot take (codec.h). */
static void test_bad_session_id_dropped(void **state)
{
    /* with the V flag (the input fuzz_dia found): no value, and
     * fd_msg_sess_get() asserts on that */
    static const uint8_t vendor[] = {
        UAR_HDR(52), 0, 0, 1, 7, 0xc0, 0, 0, 15, /* Session-Id, V|M, length 15 */
        0, 0, 0, 0, 'a', ';', 'b', 0,            /* Vendor-Id 0, "a;b", padding */
        ORIGIN_HOST,
    };
    /* a NUL byte inside: the lookup fails and freeDiameter shuts down */
    static const uint8_t nul[] = {
        UAR_HDR(48), 0, 0, 1, 7, 0x40, 0, 0, 13, /* Session-Id, M, length 13 */
        'a', ';', 0, 'b', 'c', 0, 0, 0, ORIGIN_HOST,
    };
    /* empty: fd_sess_new() would take it for a C string */
    static const uint8_t empty[] = {
        UAR_HDR(44), 0, 0, 1, 7, 0x40, 0, 0, 8, /* Session-Id, M, length 8 */
        ORIGIN_HOST,
    };
    check_session_id_dropped(vendor, sizeof(vendor), "V flag set");
    check_session_id_dropped(nul, sizeof(nul), "NUL byte");
    check_session_id_dropped(empty, sizeof(empty), "empty");
}

/* A good Session-Id stays, and is what the session lookup finds. */
static void test_good_session_id_kept(void **state)
{
    static const uint8_t raw[] = {
        UAR_HDR(48), 0, 0, 1, 7, 0x40, 0, 0, 13, /* Session-Id, M, length 13 */
        'a', ';', '1', ';', '2', 0, 0, 0, ORIGIN_HOST,
    };
    struct msg *m = received(raw, sizeof(raw), 0, NULL);
    struct session *sess = NULL;
    assert_int_equal(fd_msg_sess_get(fd_g_config->cnf_dict, m, &sess, NULL), 0);
    assert_non_null(sess);
    os0_t sid = NULL;
    size_t sidlen = 0;
    assert_int_equal(fd_sess_getsid(sess, &sid, &sidlen), 0);
    assert_int_equal(sidlen, 5);
    assert_memory_equal(sid, "a;1;2", 5);
    fd_msg_free(m);
}

/* Top-level AVPs of msg_or_avp p with this code. */
static size_t count_code(msg_or_avp *p, uint32_t code)
{
    struct avp *a = NULL;
    size_t n = 0;
    assert_int_equal(fd_msg_browse(p, MSG_BRW_FIRST_CHILD, &a, NULL), 0);
    while (a) {
        struct avp_hdr *h;
        assert_int_equal(fd_msg_avp_hdr(a, &h), 0);
        n += h->avp_code == code;
        assert_int_equal(fd_msg_browse(a, MSG_BRW_NEXT, &a, NULL), 0);
    }
    return n;
}

/* A Proxy-Info sent with the V flag (empty: the input fuzz_dia found) is
 * removed by the receive hook's check; freeDiameter then builds the answer
 * (it failed on that one, and leaked what it had built: codec.h) and copies
 * the good Proxy-Info into it, as RFC 6733 6.2 asks. */
static void test_bad_proxy_info_dropped(void **state)
{
    static const uint8_t raw[] = {
        UAR_HDR(92), 0, 0, 1, 7, 0x40, 0, 0, 11, 'a', ';', 'b', 0, /* Session-Id "a;b" */
        ORIGIN_HOST,
        0, 0, 1, 28, 0x80, 0, 0, 12, 0, 0, 0, 0,       /* Proxy-Info, V, empty, Vendor-Id 0 */
        0, 0, 1, 28, 0x40, 0, 0, 32,                   /* Proxy-Info, M, length 32 */
        0, 0, 1, 24, 0x40, 0, 0, 11, 'p', '.', 'x', 0, /* Proxy-Host "p.x" */
        0, 0, 0, 33, 0x40, 0, 0, 10, 's', '1', 0, 0,   /* Proxy-State "s1" */
    };
    uint8_t *buf = malloc(sizeof(raw));
    assert_non_null(buf);
    memcpy(buf, raw, sizeof(raw));
    struct msg *m = NULL;
    assert_int_equal(fd_msg_parse_buffer(&buf, sizeof(raw), &m), 0); /* takes buf */
    assert_int_equal(count_code(m, 284), 2);
    const char *why = NULL;
    assert_int_equal(dia_drop_bad_proxy_info(m, &why), 1);
    assert_string_equal(why, "V flag set");
    assert_int_equal(dia_drop_bad_proxy_info(m, NULL), 0);
    assert_int_equal(dia_drop_bad_session_id(m, NULL), 0); /* its Session-Id is good */
    struct fd_pei pei;
    memset(&pei, 0, sizeof(pei));
    assert_int_equal(fd_msg_parse_dict(m, fd_g_config->cnf_dict, &pei), 0);
    assert_int_equal(fd_msg_new_answer_from_req(fd_g_config->cnf_dict, &m, 0), 0);
    assert_int_equal(count_code(m, 284), 1);
    struct avp *pi = NULL, *state_avp = NULL;
    struct avp_hdr *h;
    assert_int_equal(fd_msg_browse(m, MSG_BRW_FIRST_CHILD, &pi, NULL), 0);
    while (pi && fd_msg_avp_hdr(pi, &h) == 0 && h->avp_code != 284)
        assert_int_equal(fd_msg_browse(pi, MSG_BRW_NEXT, &pi, NULL), 0);
    assert_non_null(pi);
    assert_int_equal(fd_msg_browse(pi, MSG_BRW_LAST_CHILD, &state_avp, NULL), 0);
    assert_int_equal(fd_msg_avp_hdr(state_avp, &h), 0);
    assert_int_equal(h->avp_code, 33);
    assert_non_null(h->avp_value);
    assert_int_equal(h->avp_value->os.len, 2);
    assert_memory_equal(h->avp_value->os.data, "s1", 2);
    struct msg *q = NULL;
    assert_int_equal(fd_msg_answ_getq(m, &q), 0);
    fd_msg_answ_detach(m);
    fd_msg_free(q);
    fd_msg_free(m);
}

/* dia/fd_guard.h: libfdcore's calls to fd_out_send() reach the guard in
 * every executable linked with imscore (the link options on imscore) */
static void test_fd_guard_active(void **state)
{
    assert_true(dia_fd_guard_active());
}

static void test_glob(void **state)
{
    assert_true(ims_dia_glob(S("*"), S("anything")));
    assert_true(ims_dia_glob(S("scscf*.ims.test"), S("SCSCF1.IMS.test")));
    assert_false(ims_dia_glob(S("scscf*.ims.test"), S("rogue.ims.test")));
    assert_true(ims_dia_glob(S("sip:*@ims.test"), S("sip:alice@ims.test")));
    assert_false(ims_dia_glob(S("sip:*@ims.test"), S("sip:alice@ims.test.evil")));
    assert_true(ims_dia_glob(S("a*b*c"), S("axxbyyc")));
    assert_false(ims_dia_glob(S(""), S("x")));
    assert_true(ims_dia_glob_list(" a.x , scscf*.ims.test", S("scscf.ims.test")));
    assert_false(ims_dia_glob_list("a.x,b.x", S("c.x")));
}

static int setup(void **state)
{
    if (fd_core_initialize() != 0 || dia_dict_load() != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    fd_core_shutdown();
    fd_core_wait_shutdown_complete();
    return 0;
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_match_enums),
        cmocka_unit_test(test_uar_roundtrip),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_missing_in_group),
        cmocka_unit_test(test_length_and_value_bounds),
        cmocka_unit_test(test_repeated_and_unknown),
        cmocka_unit_test(test_answer_roundtrip),
        cmocka_unit_test(test_bad_session_id_dropped),
        cmocka_unit_test(test_good_session_id_kept),
        cmocka_unit_test(test_bad_proxy_info_dropped),
        cmocka_unit_test(test_fd_guard_active),
        cmocka_unit_test(test_glob),
    };
    ims_log_set_level(IMS_LOG_WARN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
