/* test_detect.c - the attack detectors (src/detect) and the dynamic deny
 * group they fill (src/acl dyn.c): scanner fingerprints, sweeps across
 * users within a window, malformed bursts, exempt prefixes, one event per
 * kind while quiet, bounded state under a flood of sources, expiry and the
 * fixed size of the deny group, configuration errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "detect/detect.h"
#include "metrics/metrics.h"
#include "sip/msg.h"

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}
#define SA(ss) ((const struct sockaddr *)&(ss))

/* addr() for a one-off argument: a ring of static slots */
static const struct sockaddr *ipsa(const char *ip)
{
    static struct sockaddr_storage ring[4];
    static unsigned next;
    struct sockaddr_storage *slot = &ring[next++ % 4];
    *slot = addr(ip);
    return (const struct sockaddr *)slot;
}

/* A parsed request; text and headers live in the caller's buffers. */
struct req {
    char text[1024];
    struct sip_msg m;
    struct sip_hdr hdrs[32];
};

static void mkreq(struct req *r, const char *method, const char *ruri_user, const char *to_user,
                  const char *ua)
{
    int n = snprintf(r->text, sizeof(r->text),
                     "%s sip:%s%sims.test SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:x@ims.test>;tag=1\r\n"
                     "To: <sip:%s@ims.test>\r\n"
                     "Call-ID: c1\r\n"
                     "CSeq: 1 %s\r\n"
                     "%s%s%s"
                     "Content-Length: 0\r\n\r\n",
                     method, ruri_user, *ruri_user ? "@" : "", to_user, method,
                     ua ? "User-Agent: " : "", ua ? ua : "", ua ? "\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof(r->text));
    assert_true(ims_sip_parse(r->text, (size_t)n, false, &r->m, r->hdrs, 32) > 0);
}

static const struct ims_detect_cfg base_cfg = {
    .sweep_users = 20, .sweep_window_s = 60, .malformed_max = 10, .malformed_window_s = 10,
    .block_s = 0, .max_sources = 4096,
};

static struct ims_detect *mk(const struct ims_detect_cfg *cfg)
{
    char err[256];
    struct ims_detect *d = NULL;
    assert_int_equal(ims_detect_new(cfg, &d, err, sizeof(err)), 0);
    return d;
}

static void test_fingerprints(void **state)
{
    (void)state;
    struct ims_detect *d = mk(&base_cfg);
    struct sockaddr_storage a = addr("198.51.100.7"), b = addr("198.51.100.8");
    struct req r;
    mkreq(&r, "OPTIONS", "100", "100", "friendly-scanner");
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 1000), IMS_DETECT_SCANNER);
    /* quiet: one event per kind and source, not one per packet */
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 2000), -1);
    mkreq(&r, "REGISTER", "", "100", "Some sipVicious/0.3"); /* substring, any case */
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(b), 1000), IMS_DETECT_SCANNER);
    mkreq(&r, "INVITE", "100", "100", "Linphone/5.0");
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("198.51.100.9"), 1000), -1);
    mkreq(&r, "INVITE", "100", "100", NULL);
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("198.51.100.9"), 1000), -1);
    assert_int_equal(ims_detect_count(d, IMS_DETECT_SCANNER), 2);
    ims_detect_free(d);

    /* a configured list replaces the built-in one */
    struct ims_detect_cfg c = base_cfg;
    c.fingerprints = " evil-ua , other";
    d = mk(&c);
    mkreq(&r, "OPTIONS", "1", "1", "friendly-scanner");
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 1000), -1);
    mkreq(&r, "OPTIONS", "1", "1", "EVIL-UA 1.0");
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 1000), IMS_DETECT_SCANNER);
    ims_detect_free(d);
}

static void test_sweep(void **state)
{
    (void)state;
    struct ims_detect *d = mk(&base_cfg);
    struct sockaddr_storage a = addr("203.0.113.5");
    struct req r;
    char u[16];
    for (int i = 0; i < 20; i++) { /* 20 distinct users: allowed */
        snprintf(u, sizeof(u), "u%d", i);
        mkreq(&r, "REGISTER", "", u, NULL);
        assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 1000 + (uint64_t)i), -1);
        /* the same user again does not count */
        assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 1000 + (uint64_t)i), -1);
    }
    mkreq(&r, "INVITE", "u20", "whatever", NULL); /* INVITE: the Request-URI user */
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 2000), IMS_DETECT_SWEEP);
    ims_detect_free(d);

    /* a new window starts after sweep_window_s */
    d = mk(&base_cfg);
    for (int i = 0; i < 40; i++) {
        snprintf(u, sizeof(u), "v%d", i);
        mkreq(&r, "OPTIONS", u, u, NULL);
        uint64_t now = i < 20 ? 1000 : 70000; /* 20 in one window, 20 in the next */
        assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), now), -1);
    }
    /* in-dialog requests and BYE never count */
    mkreq(&r, "BYE", "w", "w", NULL);
    assert_int_equal(ims_detect_check_request(d, &r.m, SA(a), 70000), -1);
    ims_detect_free(d);
}

static void test_malformed(void **state)
{
    (void)state;
    struct ims_detect *d = mk(&base_cfg);
    struct sockaddr_storage a = addr("2001:db8::5");
    for (int i = 0; i < 10; i++)
        assert_int_equal(ims_detect_check_malformed(d, SA(a), 1000), -1);
    assert_int_equal(ims_detect_check_malformed(d, SA(a), 1000), IMS_DETECT_MALFORMED);
    assert_int_equal(ims_detect_check_malformed(d, SA(a), 1000), -1); /* quiet */
    /* 10 a window, windows apart: never */
    struct sockaddr_storage b = addr("2001:db8::6");
    for (int w = 0; w < 5; w++)
        for (int i = 0; i < 10; i++)
            assert_int_equal(ims_detect_check_malformed(d, SA(b), 1000 + (uint64_t)w * 10000), -1);
    assert_int_equal(ims_detect_count(d, IMS_DETECT_MALFORMED), 1);
    ims_detect_free(d);
}

static void test_exempt(void **state)
{
    (void)state;
    struct ims_detect_cfg c = base_cfg;
    c.exempt = "10.0.0.0/8, 2001:db8:1::/48,192.0.2.1";
    struct ims_detect *d = mk(&c);
    struct req r;
    mkreq(&r, "OPTIONS", "1", "1", "friendly-scanner");
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("10.9.8.7"), 1000), -1);
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("2001:db8:1:ff::1"), 1000), -1);
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("192.0.2.1"), 1000), -1);
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("192.0.2.2"), 1000),
                     IMS_DETECT_SCANNER);
    assert_int_equal(ims_detect_check_request(d, &r.m, ipsa("11.0.0.1"), 1000),
                     IMS_DETECT_SCANNER);
    ims_detect_free(d);
}

/* A flood of distinct (spoofed) sources: the state stays within max_sources. */
static void test_bounded(void **state)
{
    (void)state;
    struct ims_detect_cfg c = base_cfg;
    c.max_sources = 256;
    struct ims_detect *d = mk(&c);
    struct req r;
    mkreq(&r, "REGISTER", "", "victim", NULL);
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + i) };
        assert_int_equal(ims_detect_check_request(d, &r.m, (struct sockaddr *)&s4, 1000 + i), -1);
    }
    assert_true(ims_detect_sources(d) <= 256);
    assert_true(ims_detect_sources(d) >= 200);
    ims_detect_free(d);
}

/* block_s: the source lands in the installed holder's deny group. */
static void test_block(void **state)
{
    (void)state;
    struct ims_acl_holder *h = NULL;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    ims_acl_install(h);
    struct ims_detect_cfg c = base_cfg;
    c.block_s = 30;
    struct ims_detect *d = mk(&c);
    ims_detect_install(d);
    struct sockaddr_storage a = addr("198.51.100.77"), b = addr("198.51.100.78");
    uint64_t det0 = ims_metrics_get(IMS_M_DETECTIONS), blk0 = ims_metrics_get(IMS_M_DETECT_BLOCKS);
    uint64_t den0 = ims_acl_dyn_denied();
    struct req r;
    mkreq(&r, "OPTIONS", "1", "1", "sipcli/v1.8");
    assert_true(ims_detect_request(&r.m, SA(a))); /* drop it: just blocked */
    assert_true(ims_acl_holder_dyn_denied(h, SA(a)));
    assert_false(ims_acl_holder_dyn_denied(h, SA(b)));
    assert_false(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, SA(a)));
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, SA(b)));
    /* a v4-mapped IPv6 source is the same address */
    struct sockaddr_in6 m6 = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.77", &m6.sin6_addr), 1);
    assert_false(ims_acl_admit(IMS_ACL_HTTP, 9090, (struct sockaddr *)&m6));
    assert_int_equal(ims_acl_dyn_denied(), den0 + 2);
    assert_int_equal(ims_metrics_get(IMS_M_DETECTIONS), det0 + 1);
    assert_int_equal(ims_metrics_get(IMS_M_DETECT_BLOCKS), blk0 + 1);
    assert_int_equal(ims_acl_dyn_count(), 1);
    ims_detect_install(NULL);
    ims_detect_free(d);
    ims_acl_install(NULL);
    ims_acl_holder_free(h);
}

/* The group on its own: expiry, the later expiry wins, a fixed size. */
static void test_dyn_group(void **state)
{
    (void)state;
    struct ims_acl_holder *h = NULL;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    struct sockaddr_storage a = addr("192.0.2.10"), v6 = addr("2001:db8::10");
    assert_int_equal(ims_acl_holder_deny(h, SA(a), 150), 0);
    assert_int_equal(ims_acl_holder_deny(h, SA(v6), 20), 0);
    assert_int_equal(ims_acl_holder_deny(h, SA(a), 10), 0); /* the later expiry stays */
    assert_true(ims_acl_holder_dyn_denied(h, SA(a)));
    assert_true(ims_acl_holder_dyn_denied(h, SA(v6)));
    assert_int_equal(ims_acl_holder_dyn_count(h), 2);
    struct timespec ts = { 0, 80 * 1000000L };
    nanosleep(&ts, NULL);
    assert_true(ims_acl_holder_dyn_denied(h, SA(a)));
    assert_false(ims_acl_holder_dyn_denied(h, SA(v6))); /* expired */
    nanosleep(&ts, NULL);
    assert_false(ims_acl_holder_dyn_denied(h, SA(a)));
    assert_int_equal(ims_acl_holder_dyn_count(h), 0);
    /* more sources than the table holds: it stays at its size */
    for (uint32_t i = 0; i < 3 * IMS_ACL_DYN_MAX; i++) {
        struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc6120000u + i) };
        assert_int_equal(ims_acl_holder_deny(h, (struct sockaddr *)&s4, 60000u + i), 0);
    }
    assert_true(ims_acl_holder_dyn_count(h) <= IMS_ACL_DYN_MAX);
    struct sockaddr_in last = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(0xc6120000u + 3 * IMS_ACL_DYN_MAX - 1) };
    assert_true(ims_acl_holder_dyn_denied(h, (struct sockaddr *)&last)); /* newest kept */
    ims_acl_holder_dyn_clear(h);
    assert_int_equal(ims_acl_holder_dyn_count(h), 0);
    struct sockaddr_storage unix_sa = { .ss_family = AF_UNIX };
    assert_int_equal(ims_acl_holder_deny(h, SA(unix_sa), 10), IMS_EINVAL);
    assert_int_equal(ims_acl_holder_deny(h, SA(a), 0), IMS_EINVAL);
    ims_acl_holder_free(h);
}

static void test_bad_config(void **state)
{
    (void)state;
    char err[256];
    struct ims_detect *d = NULL;
    struct ims_detect_cfg c = base_cfg;
    c.sweep_users = IMS_DETECT_MAX_USERS;
    assert_int_equal(ims_detect_new(&c, &d, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "sweep_users"));
    c = base_cfg;
    c.exempt = "10.0.0.0/33";
    assert_int_equal(ims_detect_new(&c, &d, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "exempt"));
    c.exempt = "not-an-ip";
    assert_int_equal(ims_detect_new(&c, &d, err, sizeof(err)), IMS_EINVAL);
    c = base_cfg;
    c.fingerprints = "0123456789012345678901234567890123456789";
    assert_int_equal(ims_detect_new(&c, &d, err, sizeof(err)), IMS_EINVAL);
    assert_null(d);
}

/* Every allocation of the constructors fails cleanly (ASan: no leak). */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        char err[256];
        struct ims_detect *d = NULL;
        ims_alloc_fail_at(n, 0);
        int rc = ims_detect_new(&base_cfg, &d, err, sizeof(err));
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            ims_detect_free(d);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_null(d);
        assert_true(n < 10);
    }
    for (unsigned long n = 1;; n++) {
        struct ims_acl_holder *h = NULL;
        ims_alloc_fail_at(n, 0);
        int rc = ims_acl_holder_new(&h);
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            ims_acl_holder_free(h);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_true(n < 10);
    }
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprints), cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_malformed),    cmocka_unit_test(test_exempt),
        cmocka_unit_test(test_bounded),      cmocka_unit_test(test_block),
        cmocka_unit_test(test_dyn_group),    cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
