/* test_acl.c - security group rules (src/acl): parsing of every field, bad
 * files naming the rule and field, matching IPv4/IPv6 and port ranges,
 * default deny, Diameter's default deny, the per-listener counters, the
 * cost of a check, allocation failures, and a swap under concurrent
 * readers (threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

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

static struct ims_acl *parse_ok(const char *json)
{
    struct ims_acl *acl = NULL;
    char err[256] = "";
    int rc = ims_acl_parse("t.json", json, strlen(json), &acl, err, sizeof(err));
    if (rc)
        fail_msg("parse failed: %s", err);
    return acl;
}

/* Parses a bad text and checks the error names what it must. */
static void parse_bad(const char *json, int want_rc, const char *want_err)
{
    struct ims_acl *acl = NULL;
    char err[256] = "";
    int rc = ims_acl_parse("t.json", json, strlen(json), &acl, err, sizeof(err));
    assert_int_equal(rc, want_rc);
    assert_null(acl);
    if (!strstr(err, want_err))
        fail_msg("error '%s' lacks '%s'", err, want_err);
}

static bool m(const struct ims_acl *acl, int proto, uint16_t port, const char *ip)
{
    struct sockaddr_storage ss = addr(ip);
    return ims_acl_match(acl, proto, port, (struct sockaddr *)&ss, false);
}

#define R(fields) "{\"direction\": \"ingress\", " fields "}"
#define IN "{\"direction\": \"ingress\"}"
#define SET(rules) "{\"security_group_rules\": [" rules "]}"

/* ------------------------------------------------------------ parsing */

static void test_parse_fields(void **state)
{
    (void)state;
    /* a rule as Neutron's API returns it, with the keys we ignore */
    struct ims_acl *acl = parse_ok(SET(
        "{\"id\": \"0f7a\", \"security_group_id\": \"sg\", \"project_id\": \"p\", "
        "\"tenant_id\": \"p\", \"description\": \"sip\", \"direction\": \"ingress\", "
        "\"ethertype\": \"IPv4\", \"protocol\": \"udp\", \"port_range_min\": 5060, "
        "\"port_range_max\": 5061, \"remote_ip_prefix\": \"10.0.0.0/8\", "
        "\"remote_group_id\": null, \"remote_address_group_id\": null, "
        "\"normalized_cidr\": \"10.0.0.0/8\", \"revision_number\": 0, \"tags\": [], "
        "\"created_at\": \"2026-01-01T00:00:00Z\", \"belongs_to_default_sg\": false}" ","
        R("\"ethertype\": \"IPv6\", \"protocol\": \"tcp\", \"port_range_min\": \"5060\", "
          "\"port_range_max\": \"5060\", \"remote_ip_prefix\": \"2001:db8::/32\"") ","
        "{\"direction\": \"egress\", \"ethertype\": \"IPv4\"}" ","
        R("\"protocol\": \"icmp\"") "," R("\"protocol\": \"sctp\", \"port_range_min\": 5060, "
                                     "\"port_range_max\": 5060")));
    assert_int_equal(ims_acl_rules(acl), 5);
    assert_int_equal(ims_acl_active_rules(acl), 2); /* egress, icmp, sctp never match */
    assert_true(m(acl, IMS_ACL_UDP, 5060, "10.1.2.3"));
    assert_true(m(acl, IMS_ACL_UDP, 5061, "10.255.255.255"));
    assert_false(m(acl, IMS_ACL_UDP, 5062, "10.1.2.3"));
    assert_false(m(acl, IMS_ACL_TCP, 5060, "10.1.2.3"));  /* udp only */
    assert_false(m(acl, IMS_ACL_UDP, 5060, "11.0.0.1"));
    assert_true(m(acl, IMS_ACL_TCP, 5060, "2001:db8::1"));
    assert_false(m(acl, IMS_ACL_TCP, 5061, "2001:db8::1"));
    assert_false(m(acl, IMS_ACL_TCP, 5060, "2001:db9::1"));
    ims_acl_free(acl);

    /* the GET /v2.0/security-groups/{id} shape; an empty group */
    acl = parse_ok("{\"security_group\": {\"name\": \"ims-edge\", \"security_group_rules\": ["
                   R("\"protocol\": 17") "]}}");
    assert_true(m(acl, IMS_ACL_UDP, 1, "192.0.2.1"));
    assert_false(m(acl, IMS_ACL_TCP, 1, "192.0.2.1"));
    ims_acl_free(acl);
    acl = parse_ok(SET(""));
    assert_int_equal(ims_acl_rules(acl), 0);
    assert_false(m(acl, IMS_ACL_UDP, 5060, "127.0.0.1")); /* default deny */
    ims_acl_free(acl);
}

static void test_parse_protocols(void **state)
{
    (void)state;
    struct ims_acl *acl = parse_ok(
        SET(R("\"protocol\": null, \"remote_ip_prefix\": \"10.0.0.1/32\"") ","
            R("\"protocol\": \"any\", \"remote_ip_prefix\": \"10.0.0.2\"") ","
            R("\"protocol\": \"6\", \"remote_ip_prefix\": \"10.0.0.3/32\"") ","
            R("\"protocol\": \"UDP\", \"remote_ip_prefix\": \"10.0.0.4/32\"")));
    assert_int_equal(ims_acl_active_rules(acl), 4);
    assert_true(m(acl, IMS_ACL_UDP, 9, "10.0.0.1"));
    assert_true(m(acl, IMS_ACL_TCP, 9, "10.0.0.1"));
    assert_true(m(acl, IMS_ACL_TCP, 9, "10.0.0.2"));
    assert_true(m(acl, IMS_ACL_UDP, 9, "10.0.0.2"));
    assert_true(m(acl, IMS_ACL_TCP, 9, "10.0.0.3"));
    assert_false(m(acl, IMS_ACL_UDP, 9, "10.0.0.3"));
    assert_true(m(acl, IMS_ACL_UDP, 9, "10.0.0.4"));
    assert_false(m(acl, IMS_ACL_TCP, 9, "10.0.0.4"));
    ims_acl_free(acl);
}

static void test_parse_prefixes(void **state)
{
    (void)state;
    /* host bits are masked, as Neutron normalises them */
    struct ims_acl *acl = parse_ok(
        SET(R("\"remote_ip_prefix\": \"192.168.1.77/24\"") ","
            R("\"remote_ip_prefix\": \"0.0.0.0/0\", \"protocol\": \"tcp\", "
              "\"port_range_min\": 443") ","
            R("\"ethertype\": \"IPv6\", \"remote_ip_prefix\": \"fe80::1/10\"") ","
            R("\"ethertype\": \"IPv6\", \"remote_ip_prefix\": \"2001:db8::5/128\"")));
    assert_true(m(acl, IMS_ACL_UDP, 1, "192.168.1.1"));
    assert_true(m(acl, IMS_ACL_UDP, 1, "192.168.1.255"));
    assert_false(m(acl, IMS_ACL_UDP, 1, "192.168.2.1"));
    assert_true(m(acl, IMS_ACL_TCP, 443, "203.0.113.9")); /* only min: that port */
    assert_false(m(acl, IMS_ACL_TCP, 444, "203.0.113.9"));
    assert_true(m(acl, IMS_ACL_UDP, 1, "febf::1"));
    assert_false(m(acl, IMS_ACL_UDP, 1, "fec0::1"));
    assert_true(m(acl, IMS_ACL_UDP, 1, "2001:db8::5"));
    assert_false(m(acl, IMS_ACL_UDP, 1, "2001:db8::6"));
    /* a v4-mapped source is an IPv4 source */
    assert_true(m(acl, IMS_ACL_UDP, 1, "::ffff:192.168.1.9"));
    assert_false(m(acl, IMS_ACL_UDP, 1, "::ffff:192.168.3.9"));
    ims_acl_free(acl);

    /* ethertype without a prefix: the whole family, never the other */
    acl = parse_ok(SET(R("\"ethertype\": \"IPv6\"")));
    assert_true(m(acl, IMS_ACL_UDP, 5060, "::1"));
    assert_false(m(acl, IMS_ACL_UDP, 5060, "127.0.0.1"));
    ims_acl_free(acl);
}

static void test_bad_files(void **state)
{
    (void)state;
    parse_bad("{\"security_group_rules\": [", IMS_EINVAL, "t.json:1: json:");
    parse_bad("{\n\"security_group_rules\": [\n{,}\n]}", IMS_EINVAL, "t.json:3: json:");
    parse_bad("{\"rules\": []}", IMS_EINVAL, "security_group_rules: missing");
    parse_bad("{\"security_group_rules\": {}}", IMS_EINVAL, "not a list");
    parse_bad(SET("42"), IMS_EINVAL, "rule 0: (rule): must be an object");
    parse_bad(SET("{}"), IMS_EINVAL, "rule 0: direction: required");
    parse_bad(SET(IN "," "{\"direction\": \"inbound\"}"), IMS_EINVAL,
              "t.json: rule 1: direction: 'inbound' is not ingress or egress");
    parse_bad(SET(R("\"ethertype\": \"IPv5\"")), IMS_EINVAL, "rule 0: ethertype: must be IPv4");
    parse_bad(SET(R("\"protocol\": \"tcpx\"")), IMS_EINVAL, "rule 0: protocol:");
    parse_bad(SET(R("\"protocol\": 256")), IMS_EINVAL, "rule 0: protocol:");
    parse_bad(SET(IN "," IN "," IN "," R("\"protocol\": \"tcp\", \"port_range_min\": 0")),
              IMS_EINVAL, "t.json: rule 3: port_range_min: must be 1..65535");
    parse_bad(SET(R("\"protocol\": \"tcp\", \"port_range_min\": 70000")), IMS_EINVAL,
              "rule 0: port_range_min: must be 1..65535");
    parse_bad(SET(R("\"protocol\": \"tcp\", \"port_range_min\": \"5o60\"")), IMS_EINVAL,
              "rule 0: port_range_min:");
    parse_bad(SET(R("\"protocol\": \"tcp\", \"port_range_min\": 1, \"port_range_max\": 65536")),
              IMS_EINVAL, "rule 0: port_range_max: must be 1..65535");
    parse_bad(SET(R("\"protocol\": \"tcp\", \"port_range_max\": 10")), IMS_EINVAL,
              "rule 0: port_range_min: required with port_range_max");
    parse_bad(SET(R("\"protocol\": \"udp\", \"port_range_min\": 10, \"port_range_max\": 9")),
              IMS_EINVAL, "rule 0: port_range_max: 9 is less than port_range_min 10");
    parse_bad(SET(R("\"port_range_min\": 10, \"port_range_max\": 10")), IMS_EINVAL,
              "rule 0: protocol: a port range needs a protocol");
    parse_bad(SET(R("\"remote_ip_prefix\": \"10.0.0.0/33\"")), IMS_EINVAL,
              "rule 0: remote_ip_prefix: prefix length 33");
    parse_bad(SET(R("\"remote_ip_prefix\": \"10.0.0/8\"")), IMS_EINVAL,
              "rule 0: remote_ip_prefix: '10.0.0/8' is not a CIDR");
    parse_bad(SET(R("\"remote_ip_prefix\": \"10.0.0.0/\"")), IMS_EINVAL,
              "rule 0: remote_ip_prefix: bad prefix length");
    parse_bad(SET(R("\"remote_ip_prefix\": 10")), IMS_EINVAL, "rule 0: remote_ip_prefix:");
    parse_bad(SET(R("\"remote_ip_prefix\": \"::/0\"")), IMS_EINVAL,
              "rule 0: remote_ip_prefix: '::/0' conflicts with ethertype IPv4");
    parse_bad(SET(R("\"remote_group_id\": \"5a1d\"")), IMS_EINVAL,
              "rule 0: remote_group_id: not supported");
    parse_bad(SET(R("\"remote_address_group_id\": \"5a1d\"")), IMS_EINVAL,
              "rule 0: remote_address_group_id: not supported");
    parse_bad("{\"security_group_rules\": [], \"security_group_rules\": []}", IMS_EINVAL,
              "json:");
}

static void test_too_many_rules(void **state)
{
    (void)state;
    size_t n = IMS_ACL_MAX_RULES + 1, cap = n * 32 + 64, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    len += (size_t)snprintf(t + len, cap - len, "{\"security_group_rules\": [");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(t + len, cap - len, "%s{\"direction\":\"ingress\"}",
                                i ? "," : "");
    len += (size_t)snprintf(t + len, cap - len, "]}");
    parse_bad(t, IMS_ELIMIT, "more than 4096");
    free(t);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/acl-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = SET(R("\"protocol\": \"udp\", \"remote_ip_prefix\": \"127.0.0.1/32\""));
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct ims_acl *acl = NULL;
    char err[256];
    assert_int_equal(ims_acl_load(path, &acl, err, sizeof(err)), 0);
    assert_true(m(acl, IMS_ACL_UDP, 5060, "127.0.0.1"));
    ims_acl_free(acl);
    unlink(path);
    acl = NULL;
    assert_int_equal(ims_acl_load(path, &acl, err, sizeof(err)), IMS_EIO);
    assert_non_null(strstr(err, path));
    assert_null(acl);
}

/* ------------------------------------------------------------ matching */

static void test_port_ranges(void **state)
{
    (void)state;
    struct ims_acl *acl = parse_ok(SET(
        R("\"protocol\": \"udp\", \"port_range_min\": 5060, \"port_range_max\": 5070") ","
        R("\"protocol\": \"tcp\", \"port_range_min\": 1, \"port_range_max\": 65535, "
          "\"remote_ip_prefix\": \"10.0.0.0/8\"")));
    assert_false(m(acl, IMS_ACL_UDP, 5059, "1.2.3.4"));
    assert_true(m(acl, IMS_ACL_UDP, 5060, "1.2.3.4"));
    assert_true(m(acl, IMS_ACL_UDP, 5070, "1.2.3.4"));
    assert_false(m(acl, IMS_ACL_UDP, 5071, "1.2.3.4"));
    assert_true(m(acl, IMS_ACL_TCP, 1, "10.9.9.9"));
    assert_true(m(acl, IMS_ACL_TCP, 65535, "10.9.9.9"));
    assert_false(m(acl, IMS_ACL_TCP, 65535, "9.9.9.9"));
    /* explicit_port: a rule must name the port (Diameter's default deny) */
    struct sockaddr_storage ss = addr("10.1.1.1");
    assert_true(ims_acl_match(acl, IMS_ACL_TCP, 3868, (struct sockaddr *)&ss, true));
    ims_acl_free(acl);
    acl = parse_ok(SET(R("\"remote_ip_prefix\": \"10.0.0.0/8\"")));
    assert_true(ims_acl_match(acl, IMS_ACL_TCP, 3868, (struct sockaddr *)&ss, false));
    assert_false(ims_acl_match(acl, IMS_ACL_TCP, 3868, (struct sockaddr *)&ss, true));
    ims_acl_free(acl);
}

static void test_holder_and_listeners(void **state)
{
    (void)state;
    struct ims_acl_holder *h;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    struct sockaddr_storage one = addr("127.0.0.1"), two = addr("127.0.0.2");
    /* nothing installed, then an empty holder: open, as before rules existed */
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&two));
    ims_acl_install(h);
    assert_false(ims_acl_holder_active(h));
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&two));
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&two, false));
    /* ... but Diameter stays default deny for non-peers from other hosts */
    struct sockaddr_storage far = addr("192.0.2.7"), far6 = addr("2001:db8::7");
    assert_false(ims_acl_admit_diameter(3868, (struct sockaddr *)&far, false));
    assert_false(ims_acl_admit_diameter(3868, (struct sockaddr *)&far6, false));
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&far, true));
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&far));
    ims_acl_holder_set_dia_default_deny(h, false);
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&far, false));
    ims_acl_holder_set_dia_default_deny(h, true);

    ims_acl_holder_swap(h, parse_ok(SET(R("\"protocol\": \"udp\", \"port_range_min\": 5060, "
                                          "\"remote_ip_prefix\": \"127.0.0.1/32\"") ","
                                        R("\"remote_ip_prefix\": \"127.0.0.3/32\""))));
    assert_true(ims_acl_holder_active(h));
    uint64_t udp0 = ims_acl_denied(IMS_ACL_SIP_UDP), tls0 = ims_acl_denied(IMS_ACL_SIP_TLS);
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&one));
    assert_false(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&two));
    assert_false(ims_acl_admit(IMS_ACL_SIP_UDP, 5062, (struct sockaddr *)&one));
    assert_false(ims_acl_admit(IMS_ACL_SIP_TCP, 5060, (struct sockaddr *)&one));
    assert_false(ims_acl_admit(IMS_ACL_SIP_TLS, 5061, (struct sockaddr *)&two));
    assert_int_equal(ims_acl_denied(IMS_ACL_SIP_UDP), udp0 + 2);
    assert_int_equal(ims_acl_denied(IMS_ACL_SIP_TLS), tls0 + 1);

    /* Diameter: peers pass, a rule without ports does not (default deny) */
    uint64_t d0 = ims_acl_denied(IMS_ACL_DIAMETER);
    struct sockaddr_storage three = addr("127.0.0.3");
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&two, true));
    assert_false(ims_acl_admit_diameter(3868, (struct sockaddr *)&two, false));
    assert_false(ims_acl_admit_diameter(3868, (struct sockaddr *)&three, false));
    assert_true(ims_acl_admit(IMS_ACL_SIP_TCP, 5060, (struct sockaddr *)&three));
    ims_acl_holder_set_dia_default_deny(h, false);
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&three, false));
    assert_false(ims_acl_admit_diameter(3868, (struct sockaddr *)&two, true)); /* rules only */
    ims_acl_holder_set_dia_default_deny(h, true);
    ims_acl_holder_swap(h, parse_ok(SET(R("\"protocol\": \"tcp\", \"port_range_min\": 3868, "
                                          "\"remote_ip_prefix\": \"127.0.0.2/32\""))));
    assert_true(ims_acl_admit_diameter(3868, (struct sockaddr *)&two, false));
    assert_false(ims_acl_admit_diameter(3869, (struct sockaddr *)&two, false));
    assert_int_equal(ims_acl_denied(IMS_ACL_DIAMETER), d0 + 4);

    /* back to allow all */
    ims_acl_holder_swap(h, NULL);
    assert_true(ims_acl_admit(IMS_ACL_SIP_UDP, 5060, (struct sockaddr *)&two));
    ims_acl_install(NULL);
    ims_acl_holder_free(h);
}

static void test_holder_load(void **state)
{
    (void)state;
    char path[] = "/tmp/acl-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *good = SET(R("\"remote_ip_prefix\": \"127.0.0.1/32\""));
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    struct ims_acl_holder *h;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    char err[256];
    assert_int_equal(ims_acl_holder_load(h, path, err, sizeof(err)), 0);
    struct sockaddr_storage one = addr("127.0.0.1"), two = addr("127.0.0.2");
    assert_false(ims_acl_holder_allows(h, IMS_ACL_UDP, 1, (struct sockaddr *)&two, false));
    /* a bad file keeps the rules in force */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(SET(R("\"protocol\": \"udp\", \"port_range_min\": 99999")), f);
    fclose(f);
    assert_int_equal(ims_acl_holder_load(h, path, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "rule 0: port_range_min"));
    assert_true(ims_acl_holder_allows(h, IMS_ACL_UDP, 1, (struct sockaddr *)&one, false));
    assert_false(ims_acl_holder_allows(h, IMS_ACL_UDP, 1, (struct sockaddr *)&two, false));
    unlink(path);
    assert_int_equal(ims_acl_holder_load(h, path, err, sizeof(err)), IMS_EIO);
    assert_false(ims_acl_holder_allows(h, IMS_ACL_UDP, 1, (struct sockaddr *)&two, false));
    ims_acl_holder_free(h);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = SET(R("\"remote_ip_prefix\": \"10.0.0.0/8\"") ","
                           R("\"ethertype\": \"IPv6\"") "," R("\"protocol\": \"icmp\""));
    for (unsigned long n = 1;; n++) {
        struct ims_acl *acl = NULL;
        char err[256];
        ims_alloc_fail_at(n, 0);
        int rc = ims_acl_parse("t.json", text, strlen(text), &acl, err, sizeof(err));
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            assert_int_equal(ims_acl_active_rules(acl), 2);
            ims_acl_free(acl);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_null(acl);
        assert_true(n < 20);
    }
}

/* ------------------------------------------------------------ cost */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per check with `nmiss` rules that miss before the one that hits. */
static double cost_ns(int nmiss)
{
    char *t = malloc(64 * (size_t)(nmiss + 2) + 64);
    assert_non_null(t);
    size_t len = (size_t)snprintf(t, 64, "{\"security_group_rules\": [");
    for (int i = 0; i < nmiss; i++)
        len += (size_t)snprintf(t + len, 100, "{\"direction\":\"ingress\",\"remote_ip_prefix\":"
                                "\"10.%d.0.0/16\"},", i);
    len += (size_t)snprintf(t + len, 100, "{\"direction\":\"ingress\",\"protocol\":\"udp\"}]}");
    struct ims_acl_holder *h;
    assert_int_equal(ims_acl_holder_new(&h), 0);
    ims_acl_holder_swap(h, parse_ok(t));
    free(t);
    struct sockaddr_storage src = addr("192.0.2.1");
    const int n = 200000;
    double t0 = now_s();
    int hits = 0;
    for (int i = 0; i < n; i++)
        hits += ims_acl_holder_allows(h, IMS_ACL_UDP, 5060, (struct sockaddr *)&src, false);
    double per = (now_s() - t0) / n * 1e9;
    assert_int_equal(hits, n);
    ims_acl_holder_free(h);
    return per;
}

/* The per-datagram check: reported, and bounded loosely (sanitizers and a
 * shared machine make exact numbers meaningless here). */
static void test_cost(void **state)
{
    (void)state;
    double one = cost_ns(0), many = cost_ns(100);
    printf("acl cost: %.0f ns per check with 1 rule, %.0f ns with 101 (the last matching); "
           "holder read section included\n", one, many);
    assert_true(many < 20000.0);
}

/* ------------------------------------------------------------ concurrency */

struct race {
    struct ims_acl_holder *h;
    atomic_bool stop;
    atomic_ulong checks, wrong;
};

/* Both sets allow 127.0.0.1 and deny 127.0.0.2: any other answer means a
 * reader saw a freed or half-built set (ASan reports the former). */
static void *reader(void *arg)
{
    struct race *r = arg;
    struct sockaddr_storage one = addr("127.0.0.1"), two = addr("127.0.0.2");
    while (!atomic_load(&r->stop)) {
        bool a = ims_acl_holder_allows(r->h, IMS_ACL_UDP, 5060, (struct sockaddr *)&one, false);
        bool b = ims_acl_holder_allows(r->h, IMS_ACL_UDP, 5060, (struct sockaddr *)&two, false);
        if (!a || b)
            atomic_fetch_add(&r->wrong, 1);
        atomic_fetch_add(&r->checks, 1);
    }
    return NULL;
}

static void test_swap_under_readers(void **state)
{
    (void)state;
    static const char *const sets[] = {
        SET(R("\"remote_ip_prefix\": \"127.0.0.1/32\"")),
        SET(R("\"protocol\": \"udp\", \"port_range_min\": 5000, \"port_range_max\": 6000, "
              "\"remote_ip_prefix\": \"127.0.0.0/31\"") ","
            R("\"ethertype\": \"IPv6\"")),
    };
    struct race r = { 0 };
    assert_int_equal(ims_acl_holder_new(&r.h), 0);
    ims_acl_holder_swap(r.h, parse_ok(sets[0]));
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
    int swaps = 0;
    double t0 = now_s();
    while (now_s() - t0 < 1.0) {
        ims_acl_holder_swap(r.h, parse_ok(sets[swaps & 1]));
        swaps++;
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    printf("acl swap: %d swaps, %lu checks by 4 readers in 1 s\n", swaps,
           (unsigned long)atomic_load(&r.checks));
    assert_int_equal(atomic_load(&r.wrong), 0);
    assert_true(swaps > 10);
    assert_true(atomic_load(&r.checks) > 1000);
    ims_acl_holder_free(r.h);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),   cmocka_unit_test(test_parse_protocols),
        cmocka_unit_test(test_parse_prefixes), cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_too_many_rules), cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_port_ranges),    cmocka_unit_test(test_holder_and_listeners),
        cmocka_unit_test(test_holder_load),    cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_cost),           cmocka_unit_test(test_swap_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
