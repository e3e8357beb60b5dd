/* test_addr.c - numeric addresses and transport names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "net_test.h"

static void check_rt(const char *in, uint16_t defport, const char *want)
{
    struct ims_addr a;
    char buf[IMS_ADDR_STRLEN];
    assert_int_equal(ims_addr_parse(ims_str_cstr(in), defport, &a), 0);
    assert_string_equal(ims_addr_str(&a, buf, sizeof(buf)), want);
}

static void test_addr_parse(void **state)
{
    check_rt("1.2.3.4:5060", 1, "1.2.3.4:5060");
    check_rt("1.2.3.4", 5060, "1.2.3.4:5060");
    check_rt("[::1]:5061", 1, "[::1]:5061");
    check_rt("[::1]", 5061, "[::1]:5061");
    check_rt("::1", 5062, "[::1]:5062");
    check_rt("[2001:db8::1]:0", 5, "[2001:db8::1]:0");
    check_rt("127.0.0.1:65535", 5, "127.0.0.1:65535");

    struct ims_addr a;
    const char *bad[] = { "", "example.com", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:x",
                          "[::1", "[::1]x", "[::1]:", "1.2.3.4.5", "[1.2.3.4]:5", ":5060",
                          "1.2.3.4:-1", "[::1]:99999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ims_addr_parse(ims_str_cstr(bad[i]), 5060, &a), IMS_EPROTO);
}

/* IPv4 is formatted by hand (addr.c): the same text as inet_ntop and
 * "%s:%u", over every octet value and port width, and truncated as
 * snprintf would truncate it. */
static void test_addr_ipv4_text(void **state)
{
    (void)state;
    static const uint16_t ports[] = { 0, 7, 10, 99, 100, 5060, 10000, 65535 };
    char got[IMS_ADDR_STRLEN], host[IMS_ADDR_STRLEN], want[IMS_ADDR_STRLEN + 8];
    char ntop[INET_ADDRSTRLEN];
    for (unsigned v = 0; v < 256; v++) {
        struct sockaddr_in sin = { .sin_family = AF_INET };
        uint8_t *o = (uint8_t *)&sin.sin_addr.s_addr;
        o[0] = (uint8_t)v;
        o[1] = (uint8_t)(255 - v);
        o[2] = (uint8_t)(v * 7);
        o[3] = (uint8_t)(v / 3);
        sin.sin_port = htons(ports[v % 8]);
        struct ims_addr a;
        assert_int_equal(ims_addr_set(&a, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_non_null(inet_ntop(AF_INET, &sin.sin_addr, ntop, sizeof(ntop)));
        assert_string_equal(ims_addr_host(&a, host, sizeof(host)), ntop);
        snprintf(want, sizeof(want), "%s:%u", ntop, (unsigned)ports[v % 8]);
        assert_string_equal(ims_addr_str(&a, got, sizeof(got)), want);
    }
    struct ims_addr a;
    assert_int_equal(ims_addr_parse(IMS_S("255.255.255.255:65535"), 0, &a), 0);
    assert_string_equal(ims_addr_str(&a, got, sizeof(got)), "255.255.255.255:65535");
    assert_string_equal(ims_addr_str(&a, got, 5), "255.");
    got[0] = 'x';
    ims_addr_str(&a, got, 1);
    assert_int_equal(got[0], '\0');
    /* a host buffer too short for any IPv4 text: "?" as before */
    assert_string_equal(ims_addr_host(&a, got, 8), "?");
}

static void test_addr_compare(void **state)
{
    struct ims_addr a, b, c, d;
    char buf[IMS_ADDR_STRLEN];
    assert_int_equal(ims_addr_parse(IMS_S("10.0.0.1:5060"), 0, &a), 0);
    assert_int_equal(ims_addr_parse(IMS_S("10.0.0.1:5070"), 0, &b), 0);
    assert_int_equal(ims_addr_parse(IMS_S("[::ffff:10.0.0.1]:5060"), 0, &c), 0);
    assert_int_equal(ims_addr_parse(IMS_S("10.0.0.1"), 5060, &d), 0);
    assert_true(ims_addr_equal(&a, &d));
    assert_false(ims_addr_equal(&a, &b));
    assert_true(ims_addr_same_ip(&a, &b));
    assert_false(ims_addr_same_ip(&a, &c)); /* families differ */
    assert_int_equal(ims_addr_port(&b), 5070);
    assert_int_equal(ims_addr_family(&a), AF_INET);
    assert_int_equal(ims_addr_family(&c), AF_INET6);
    assert_string_equal(ims_addr_host(&c, buf, sizeof(buf)), "::ffff:10.0.0.1");
    assert_string_equal(ims_addr_host(&a, buf, sizeof(buf)), "10.0.0.1");

    struct ims_addr e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(ims_addr_family(&e), AF_UNSPEC);
    assert_string_equal(ims_addr_str(&e, buf, sizeof(buf)), "?");
    assert_int_equal(ims_addr_set(&e, (struct sockaddr *)&a.ss, a.len), 0);
    assert_true(ims_addr_equal(&e, &a));
    struct sockaddr sa = { .sa_family = AF_UNIX };
    assert_int_equal(ims_addr_set(&e, &sa, sizeof(sa)), IMS_EINVAL);
}

static void test_proto_names(void **state)
{
    enum sip_proto p;
    assert_int_equal(ims_proto_parse(IMS_S("udp"), &p), 0);
    assert_int_equal(p, SIP_PROTO_UDP);
    assert_int_equal(ims_proto_parse(IMS_S("TcP"), &p), 0);
    assert_int_equal(p, SIP_PROTO_TCP);
    assert_int_equal(ims_proto_parse(IMS_S("TLS"), &p), 0);
    assert_int_equal(p, SIP_PROTO_TLS);
    assert_int_equal(ims_proto_parse(IMS_S("SCTP"), &p), IMS_ENOENT);
    assert_string_equal(ims_proto_name(SIP_PROTO_TLS), "TLS");
    assert_string_equal(ims_proto_name(SIP_PROTO_UDP), "UDP");
}

int run_addr_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_addr_ipv4_text),
        cmocka_unit_test(test_addr_compare),
        cmocka_unit_test(test_proto_names),
    };
    return cmocka_run_group_tests_name("net_addr", tests, NULL, NULL);
}
