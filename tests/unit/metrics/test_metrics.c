/* test_metrics.c - src/metrics: counters from many threads, gauges (shards
 * and callbacks), the Prometheus text format (HELP/TYPE before each
 * family, one sample a line), and the endpoint over a real loopback socket:
 * 200 for GET /metrics, 404 and 405 otherwise, and a source in the dynamic
 * deny group refused at accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl/acl.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "sip/msg.h"

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        ims_metrics_inc(IMS_M_LOCKOUTS);
    return NULL;
}

static void test_counters(void **state)
{
    (void)state;
    ims_metrics_reset();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ims_metrics_get(IMS_M_LOCKOUTS), 400000);
    ims_metrics_add(IMS_M_AUTH_FAILURES, 7);
    assert_int_equal(ims_metrics_get(IMS_M_AUTH_FAILURES), 7);
    ims_metrics_inc(IMS_M_COUNT); /* out of range: ignored */
    assert_int_equal(ims_metrics_get(IMS_M_COUNT), 0);
}

static uint64_t fixed(void *ctx)
{
    return *(uint64_t *)ctx;
}

static void test_gauges(void **state)
{
    (void)state;
    ims_metrics_reset();
    ims_metrics_gauge_shard(IMS_G_TXNS_LIVE, 0, 5);
    ims_metrics_gauge_shard(IMS_G_TXNS_LIVE, 3, 7);
    ims_metrics_gauge_shard(IMS_G_TXNS_LIVE, 3, 2); /* a set, not an add */
    ims_metrics_gauge_shard(IMS_G_TXNS_LIVE, IMS_METRICS_SHARDS, 99); /* ignored */
    assert_int_equal(ims_metrics_gauge(IMS_G_TXNS_LIVE), 7);
    uint64_t v = 42;
    ims_metrics_gauge_fn(IMS_G_REGISTRATIONS, fixed, &v);
    assert_int_equal(ims_metrics_gauge(IMS_G_REGISTRATIONS), 42);
    ims_metrics_gauge_fn(IMS_G_REGISTRATIONS, NULL, NULL);
    assert_int_equal(ims_metrics_gauge(IMS_G_REGISTRATIONS), 0);
}

/* The value of one sample line "NAME VALUE" in text; -1 when absent. */
static long long sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

static void fake_cache(void *ctx, struct ims_metrics_cache *out)
{
    *out = *(const struct ims_metrics_cache *)ctx;
}

/* The HSS identity cache's series are there only while a provider is set,
 * and only its owner removes it. */
static void test_cache(void **state)
{
    (void)state;
    struct ims_metrics_cache c = { .hits = 7, .misses = 3, .evictions = 2, .entries = 40,
                                   .capacity = 64 };
    int other = 0;
    struct ims_buf b;
    ims_buf_init(&b, 1u << 20);
    assert_int_equal(ims_metrics_render(&b), 0);
    assert_null(strstr(b.p, "imscloud_hss_cache"));
    ims_metrics_cache_fn(fake_cache, &c);
    ims_metrics_cache_fn(NULL, &other); /* not its provider: kept */
    ims_buf_reset(&b);
    assert_int_equal(ims_metrics_render(&b), 0);
    assert_non_null(strstr(b.p, "# TYPE imscloud_hss_cache_hits_total counter\n"));
    assert_non_null(strstr(b.p, "# TYPE imscloud_hss_cache_entries gauge\n"));
    assert_int_equal(sample(b.p, "imscloud_hss_cache_hits_total"), 7);
    assert_int_equal(sample(b.p, "imscloud_hss_cache_misses_total"), 3);
    assert_int_equal(sample(b.p, "imscloud_hss_cache_evictions_total"), 2);
    assert_int_equal(sample(b.p, "imscloud_hss_cache_entries"), 40);
    assert_int_equal(sample(b.p, "imscloud_hss_cache_capacity"), 64);
    ims_metrics_cache_fn(NULL, &c);
    ims_buf_reset(&b);
    assert_int_equal(ims_metrics_render(&b), 0);
    assert_null(strstr(b.p, "imscloud_hss_cache"));
    ims_buf_free(&b);
}

static void test_render(void **state)
{
    (void)state;
    ims_metrics_reset();
    ims_metrics_inc(IMS_M_DETECTIONS);
    ims_metrics_sip_request(SIP_M_REGISTER);
    ims_metrics_sip_request(SIP_M_REGISTER);
    ims_metrics_sip_request(200); /* an extension method: "other" */
    ims_metrics_sip_response(401);
    ims_metrics_sip_response(999);
    struct ims_buf b;
    ims_buf_init(&b, 1u << 20);
    assert_int_equal(ims_metrics_render(&b), 0);
    assert_non_null(strstr(b.p, "# HELP imscloud_detections_total "));
    assert_non_null(strstr(b.p, "# TYPE imscloud_detections_total counter\n"));
    assert_int_equal(sample(b.p, "imscloud_detections_total"), 1);
    assert_int_equal(sample(b.p, "imscloud_lockouts_total"), 0);
    assert_int_equal(sample(b.p, "imscloud_sip_requests_received_total{method=\"REGISTER\"}"), 2);
    assert_int_equal(sample(b.p, "imscloud_sip_requests_received_total{method=\"other\"}"), 1);
    assert_int_equal(sample(b.p, "imscloud_sip_responses_received_total{class=\"4xx\"}"), 1);
    assert_int_equal(sample(b.p, "imscloud_sip_responses_received_total{class=\"other\"}"), 1);
    assert_int_equal(sample(b.p, "imscloud_acl_denied_total{listener=\"http\"}"), 0);
    assert_non_null(strstr(b.p, "# TYPE imscloud_registrations_active gauge\n"));
    /* every non-comment line is "name[{labels}] value", after its family's TYPE */
    for (char *line = b.p; *line; line = strchr(line, '\n') + 1) {
        assert_non_null(strchr(line, '\n'));
        if (line[0] == '#')
            continue;
        assert_true(strncmp(line, "imscloud_", 9) == 0);
        char *sp = strchr(line, ' ');
        assert_true(sp && sp < strchr(line, '\n'));
    }
    /* a cap too small is an error, not a cut */
    struct ims_buf small;
    ims_buf_init(&small, 100);
    assert_int_equal(ims_metrics_render(&small), IMS_ELIMIT);
    ims_buf_free(&small);
    ims_buf_free(&b);
}

/* One HTTP/1.0 request from src (NULL: any) to port; the response in out.
 * Returns the bytes read, or -1 when the connection closed first. */
static ssize_t http(const char *src, uint16_t port, const char *req, char *out, size_t outsz)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (src) {
        struct sockaddr_in b = { .sin_family = AF_INET };
        inet_pton(AF_INET, src, &b.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    (void)!write(fd, req, strlen(req));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outsz && (r = read(fd, out + n, outsz - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd);
    return n ? (ssize_t)n : -1;
}

static void test_endpoint(void **state)
{
    (void)state;
    ims_metrics_reset();
    char err[256];
    struct ims_metrics_srv *s = NULL;
    assert_int_equal(ims_metrics_srv_start("nonsense", &s, err, sizeof(err)), IMS_EINVAL);
    assert_int_equal(ims_metrics_srv_start("127.0.0.1:0", &s, err, sizeof(err)), 0);
    uint16_t port = ims_metrics_srv_port(s);
    assert_true(port != 0);
    static char buf[1 << 16];
    ims_metrics_inc(IMS_M_OVERLOAD_503);
    assert_true(http(NULL, port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0);
    assert_true(strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
    assert_non_null(strstr(buf, "\nimscloud_overload_503_total 1\n"));
    assert_true(http(NULL, port, "GET /nope HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, " 404 "));
    assert_true(http(NULL, port, "POST /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, " 405 "));

    /* the security groups apply: a source in the deny group gets nothing */
    struct ims_acl_holder *h = NULL;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    ims_acl_install(h);
    struct sockaddr_in bad = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.9", &bad.sin_addr);
    assert_int_equal(ims_acl_holder_deny(h, (struct sockaddr *)&bad, 60000), 0);
    uint64_t d0 = ims_acl_denied(IMS_ACL_HTTP);
    assert_int_equal(http("127.0.0.9", port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)),
                     -1);
    assert_int_equal(ims_acl_denied(IMS_ACL_HTTP), d0 + 1);
    assert_true(http("127.0.0.10", port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "imscloud_acl_dynamic_sources 1\n"));
    ims_metrics_srv_stop(s);
    ims_acl_install(NULL);
    ims_acl_holder_free(h);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters), cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_render), cmocka_unit_test(test_cache),   cmocka_unit_test(test_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
