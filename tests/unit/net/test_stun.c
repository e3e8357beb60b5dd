/* test_stun.c - the STUN Binding answer for RFC 5626 keep-alives (stun.h):
 * XOR-MAPPED-ADDRESS against RFC 5769's sample values (IPv4 and IPv6),
 * FINGERPRINT (checked and answered), RFC 3489 clients, 420 for unknown
 * comprehension-required attributes, everything malformed dropped; and on
 * a UDP listener: the answer comes back, nothing reaches the SIP layer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "net/stun.h"
#include "net_test.h"

/* RFC 5769 §2.2 / §2.3: the transaction id of the sample responses */
static const uint8_t TID[12] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };

/* A Binding request (type 0x0001, or another) with the cookie, TID and
 * attrs (already padded) of alen bytes. */
static size_t mk_req(uint8_t *out, uint16_t type, const uint8_t *attrs, size_t alen)
{
    out[0] = (uint8_t)(type >> 8);
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(alen >> 8);
    out[3] = (uint8_t)alen;
    static const uint8_t cookie[4] = { 0x21, 0x12, 0xa4, 0x42 };
    memcpy(out + 4, cookie, 4);
    memcpy(out + 8, TID, 12);
    if (alen)
        memcpy(out + 20, attrs, alen);
    return 20 + alen;
}

/* CRC-32 written again here, table-driven, so the test does not check the
 * code against itself. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    static uint32_t t[256];
    if (!t[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Appends a correct FINGERPRINT to the message of n bytes at m. */
static size_t add_fingerprint(uint8_t *m, size_t n)
{
    size_t body = n - 20 + 8;
    m[2] = (uint8_t)(body >> 8);
    m[3] = (uint8_t)body;
    uint32_t crc = crc32_ref(m, n) ^ 0x5354554eu;
    uint8_t a[8] = { 0x80, 0x28, 0, 4, (uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                     (uint8_t)(crc >> 8), (uint8_t)crc };
    memcpy(m + n, a, 8);
    return n + 8;
}

static struct ims_addr addr(const char *s)
{
    struct ims_addr a;
    assert_int_equal(ims_addr_parse(ims_str_cstr(s), 0, &a), 0);
    return a;
}

static void test_xor_mapped_v4(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    size_t n = mk_req(req, 0x0001, NULL, 0);
    struct ims_addr src = addr("192.0.2.1:32853");
    size_t r = ims_stun_answer(req, n, &src, rsp);
    assert_int_equal(r, 32);
    static const uint8_t want[32] = {
        0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7,
        0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        /* XOR-MAPPED-ADDRESS, RFC 5769 §2.2 */
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    };
    assert_memory_equal(rsp, want, 32);
}

static void test_xor_mapped_v6(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    size_t n = mk_req(req, 0x0001, NULL, 0);
    struct ims_addr src = addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    size_t r = ims_stun_answer(req, n, &src, rsp);
    assert_int_equal(r, 44);
    static const uint8_t want[24] = {
        /* XOR-MAPPED-ADDRESS, RFC 5769 §2.3 */
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
        0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    };
    assert_int_equal(rsp[3], 24);
    assert_memory_equal(rsp + 20, want, 24);
}

static void test_fingerprint(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    /* SOFTWARE (comprehension-optional: ignored), then FINGERPRINT */
    static const uint8_t soft[8] = { 0x80, 0x22, 0x00, 0x04, 't', 'e', 's', 't' };
    size_t n = add_fingerprint(req, mk_req(req, 0x0001, soft, sizeof(soft)));
    struct ims_addr src = addr("127.0.0.1:5060");
    size_t r = ims_stun_answer(req, n, &src, rsp);
    /* success, XOR-MAPPED-ADDRESS, FINGERPRINT last and correct */
    assert_int_equal(r, 20 + 12 + 8);
    assert_int_equal(rsp[0] << 8 | rsp[1], 0x0101);
    assert_int_equal(rsp[2] << 8 | rsp[3], 20);
    assert_int_equal(rsp[32] << 8 | rsp[33], 0x8028);
    uint32_t got = (uint32_t)rsp[36] << 24 | (uint32_t)rsp[37] << 16 | (uint32_t)rsp[38] << 8 |
                   rsp[39];
    assert_int_equal(got, crc32_ref(rsp, 32) ^ 0x5354554eu);

    /* a wrong FINGERPRINT: not STUN after all, dropped */
    req[n - 1] ^= 1;
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 0);
    /* anything after FINGERPRINT: dropped */
    req[n - 1] ^= 1;
    uint8_t more[96];
    memcpy(more, req, n);
    memcpy(more + n, soft, sizeof(soft));
    more[3] = (uint8_t)(n + sizeof(soft) - 20);
    assert_int_equal(ims_stun_answer(more, n + sizeof(soft), &src, rsp), 0);
}

static void test_unknown_attribute(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    struct ims_addr src = addr("127.0.0.1:5060");
    /* PRIORITY (ICE) is comprehension-required and not ours: 420 naming it */
    static const uint8_t prio[8] = { 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff };
    size_t n = mk_req(req, 0x0001, prio, sizeof(prio));
    size_t r = ims_stun_answer(req, n, &src, rsp);
    assert_true(r > 20);
    assert_int_equal(rsp[0] << 8 | rsp[1], 0x0111);
    assert_memory_equal(rsp + 8, TID, 12);
    /* ERROR-CODE class 4 number 20 */
    assert_int_equal(rsp[20] << 8 | rsp[21], 0x0009);
    assert_int_equal(rsp[26], 4);
    assert_int_equal(rsp[27], 20);
    size_t elen = (size_t)(rsp[22] << 8 | rsp[23]);
    size_t ua = 24 + ((elen + 3) & ~(size_t)3);
    assert_int_equal(rsp[ua] << 8 | rsp[ua + 1], 0x000A);
    assert_int_equal(rsp[ua + 2] << 8 | rsp[ua + 3], 2);
    assert_int_equal(rsp[ua + 4] << 8 | rsp[ua + 5], 0x0024);
    assert_int_equal(r, ua + 8);
    assert_int_equal(rsp[2] << 8 | rsp[3], r - 20);

    /* CHANGE-REQUEST asking for nothing is a plain Binding (RFC 3489
     * clients' first test); asking for another address is a 420 */
    static const uint8_t ch0[8] = { 0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0 };
    static const uint8_t ch6[8] = { 0x00, 0x03, 0x00, 0x04, 0, 0, 0, 6 };
    n = mk_req(req, 0x0001, ch0, sizeof(ch0));
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 32);
    assert_int_equal(rsp[1], 0x01);
    n = mk_req(req, 0x0001, ch6, sizeof(ch6));
    assert_true(ims_stun_answer(req, n, &src, rsp) > 32);
    assert_int_equal(rsp[1], 0x11);
}

static void test_rfc3489_client(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    size_t n = mk_req(req, 0x0001, NULL, 0);
    memset(req + 4, 0x5a, 4); /* no magic cookie: a 16-byte transaction id */
    struct ims_addr src = addr("192.0.2.1:32853");
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 32);
    static const uint8_t want[12] = { 0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
                                      0x80, 0x55, 0xc0, 0x00, 0x02, 0x01 };
    assert_memory_equal(rsp + 4, req + 4, 16); /* the whole id echoed */
    assert_memory_equal(rsp + 20, want, 12);   /* MAPPED-ADDRESS, in clear */
}

static void test_dropped(void **state)
{
    uint8_t req[64], rsp[IMS_STUN_RSP_MAX];
    struct ims_addr src = addr("127.0.0.1:5060");
    size_t n = mk_req(req, 0x0001, NULL, 0);
    /* too short, length field disagreeing, not a multiple of 4 */
    assert_int_equal(ims_stun_answer(req, 19, &src, rsp), 0);
    req[3] = 4;
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 0);
    static const uint8_t cut[8] = { 0x80, 0x22, 0x00, 0x09, 'a', 'b', 'c', 'd' };
    n = mk_req(req, 0x0001, cut, sizeof(cut)); /* value runs past the end */
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 0);
    static const uint8_t half[4] = { 0x80, 0x22, 0x00, 0x00 };
    n = mk_req(req, 0x0001, half, 2);
    req[3] = 4; /* length 4 with 2 bytes of attribute + 2 more */
    assert_int_equal(ims_stun_answer(req, 22, &src, rsp), 0);
    /* a Binding indication (keep-alive wanting no answer), a response, SIP */
    n = mk_req(req, 0x0011, NULL, 0);
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 0);
    n = mk_req(req, 0x0101, NULL, 0);
    assert_int_equal(ims_stun_answer(req, n, &src, rsp), 0);
    const char *sip = "OPTIONS sip:a@b SIP/2.0\r\n\r\n";
    assert_false(ims_stun_looks_like((const uint8_t *)sip, strlen(sip)));
    assert_int_equal(ims_stun_answer((const uint8_t *)sip, strlen(sip), &src, rsp), 0);
}

/* On a UDP listener: a Binding request is answered from the listener's
 * address and never reaches the SIP layer. */
static void test_on_listener(void **state)
{
    struct sip_listen_cfg listen = { .proto = SIP_PROTO_UDP };
    assert_int_equal(ims_addr_parse(IMS_S("127.0.0.1:0"), 0, &listen.addr), 0);
    struct sip_tp_cfg cfg = { .listen = &listen, .nlisten = 1, .max_msg = 4096, .max_conns = 8,
                              .max_conns_per_src = 8, .idle_timeout_ms = 10000 };
    struct sip_tp_shared *sh;
    struct worker w;
    struct rxlog log;
    char err[256];
    rxlog_init(&log);
    assert_int_equal(ims_sip_tp_shared_new(&cfg, &sh, err, sizeof(err)), 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(worker_start(&w, 0, sh, &cfg, &log, err, sizeof(err)), 0);
    struct ims_addr srv;
    assert_int_equal(w_local(&w, SIP_PROTO_UDP, AF_INET, &srv), 0);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    uint8_t req[64], rsp[256];
    size_t n = mk_req(req, 0x0001, NULL, 0);
    assert_int_equal(sendto(fd, req, n, 0, (struct sockaddr *)&srv.ss, srv.len), (ssize_t)n);
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t got = recvfrom(fd, rsp, sizeof(rsp), 0, (struct sockaddr *)&from, &fl);
    assert_int_equal(got, 32);
    struct ims_addr fa;
    assert_int_equal(ims_addr_set(&fa, (struct sockaddr *)&from, fl), 0);
    assert_true(ims_addr_equal(&fa, &srv)); /* from the socket it came to */
    assert_int_equal(rsp[0] << 8 | rsp[1], 0x0101);
    /* the mapped port is ours */
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    uint16_t xport = (uint16_t)((rsp[26] << 8 | rsp[27]) ^ 0x2112);
    assert_int_equal(xport, ntohs(me.sin_port));
    assert_true(w_wait_stat(&w, STAT_OFF(stun_answered), 1, 2000));
    sleep_ms(50);
    assert_int_equal(rxlog_count(&log), 0);
    close(fd);
    workers_stop(&w, 1);
    ims_sip_tp_shared_free(sh);
    rxlog_free(&log);
}

int run_stun_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor_mapped_v4),   cmocka_unit_test(test_xor_mapped_v6),
        cmocka_unit_test(test_fingerprint),     cmocka_unit_test(test_unknown_attribute),
        cmocka_unit_test(test_rfc3489_client),  cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_on_listener),
    };
    return cmocka_run_group_tests_name("net_stun", tests, NULL, NULL);
}
