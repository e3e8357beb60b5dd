/* Unit tests for src/cfg: every error names file:line and key; defaults;
 * cross-key validation; allocation failures are clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cfg/cfg.h"

static char err[512];

static struct ims_cfg *load_ok(const char *text)
{
    struct ims_cfg *c = NULL;
    int rc = ims_cfg_load_string("t.conf", text, &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    return c;
}

static void expect_err(const char *text, const char *want)
{
    struct ims_cfg *c = NULL;
    int rc = ims_cfg_load_string("t.conf", text, &c, err, sizeof(err));
    assert_int_equal(rc, IMS_EINVAL);
    assert_null(c);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_defaults(void **state)
{
    (void)state;
    struct ims_cfg *c = load_ok("");
    assert_true(c->workers >= 1);
    assert_int_equal(c->nlisten, 2);
    assert_int_equal(c->listen[0].proto, SIP_PROTO_UDP);
    assert_int_equal(c->listen[1].proto, SIP_PROTO_TCP);
    assert_int_equal(ims_addr_port(&c->listen[0].addr), 5060);
    assert_true(c->record_route);
    assert_int_equal(c->max_message, 65535);
    assert_int_equal(c->t1_ms, 500);
    assert_int_equal(c->nroutes, 0);
    ims_cfg_free(c);
}

static void test_full(void **state)
{
    (void)state;
    struct ims_cfg *c = load_ok("# comment\n"
                                "[core]\n"
                                "workers = 3   ; three\n"
                                "log_level = debug\n"
                                "[sip]\n"
                                "listen = udp:127.0.0.1:25060\n"
                                "listen = tcp:[::1]:25060 # v6\n"
                                "idle_timeout=30\n"
                                "[proxy]\n"
                                "record_route = no\n"
                                "route = * sip:127.0.0.1:5070;transport=tcp\n"
                                "route = example.com  sip:10.0.0.1\n");
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->log_level, 4);
    assert_int_equal(c->nlisten, 2);
    assert_int_equal(c->listen[1].addr.ss.ss_family, AF_INET6);
    assert_int_equal(ims_addr_port(&c->listen[1].addr), 25060);
    assert_int_equal(c->idle_timeout, 30);
    assert_false(c->record_route);
    assert_int_equal(c->nroutes, 2);
    assert_string_equal(c->routes[0].domain, "*");
    /* the ';' of a URI parameter is not a comment */
    assert_string_equal(c->routes[0].next_hop, "sip:127.0.0.1:5070;transport=tcp");
    assert_string_equal(c->routes[1].domain, "example.com");
    assert_string_equal(c->routes[1].next_hop, "sip:10.0.0.1");
    ims_cfg_free(c);
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    expect_err("[core]\nworkers = lots\n", "t.conf:2: workers: 'lots' is not a whole number");
    expect_err("[core]\n\nworkers = 65\n", "t.conf:3: workers: 65 is out of range 0..64");
    expect_err("[core]\nbogus = 1\n", "t.conf:2: bogus: unknown key in [core]");
    expect_err("[nope]\n", "t.conf:1: (section): unknown section [nope]");
    expect_err("workers = 1\n", "t.conf:1: workers: key outside of any [section]");
    expect_err("[core]\nworkers = 1\nworkers = 2\n", "t.conf:3: workers: set twice (first on line 2)");
    expect_err("[sip]\nlisten = sctp:1.2.3.4:5\n", "t.conf:2: listen:");
    expect_err("[sip]\nlisten = udp:999.1.1.1:5060\n", "t.conf:2: listen:");
    expect_err("[sip]\nlisten = tls:127.0.0.1:5061\n", "t.conf:2: listen: a tls listener needs tls_cert");
    expect_err("[sip]\ntls_cert = /nonexistent/cert.pem\n", "t.conf:2: tls_cert: cannot read");
    expect_err("[sip]\ntls_verify_client = yes\n", "t.conf:2: tls_verify_client: needs tls_ca");
    expect_err("[sip]\ntls_verify_client = maybe\n", "t.conf:2: tls_verify_client: 'maybe' is not yes or no");
    expect_err("[proxy]\nroute = *\n", "t.conf:2: route:");
    /* names that go into SIP quoted-strings and Diameter identities as they are */
    expect_err("[scscf]\nrealm = ims\"x\n", "t.conf:2: realm: 'ims\"x' is not a host or realm name");
    expect_err("[diameter]\nrealm = ims test\n", "t.conf:2: realm: 'ims test' is not a host");
    expect_err("[diameter]\nidentity = hss\\x\n", "t.conf:2: identity: 'hss\\x' is not a host");
    expect_err("[scscf]\nbearer_scope = ims\"x\n", "t.conf:2: bearer_scope: 'ims\"x' is not a scope token");
    expect_err("[keystone]\nurl = ftp://k/v3\n", "t.conf:2: url: 'ftp://k/v3' is not an http:// or https:// URL");
    expect_err("[keystone]\nurl = http://k/v3\"x\n", "t.conf:2: url: 'http://k/v3\"x' is not an http");
    expect_err("[as]\nkeystone_url = http://k/ v3\n", "t.conf:2: keystone_url: 'http://k/ v3' is not");
    expect_err("[proxy]\nroute = * http://x\n", "t.conf:2: route:");
    expect_err("[proxy]\nt1_ms = 5000\nt2_ms = 4000\n", "t.conf:2: t1_ms: must not exceed t2_ms");
    expect_err("[core]\nlog_level = loud\n", "t.conf:2: log_level:");
    expect_err("[scscf]\nuri =# sip:x\n",
               "t.conf:2: uri: a value cannot begin with '#' (it starts a comment)");
    expect_err("[core]\nroles =\n", "t.conf:2: roles: no role listed");
    expect_err("[core\n", "t.conf:1: (section): missing ']'");
    expect_err("[core]\njust words\n", "t.conf:2: (line): expected 'key = value'");
    expect_err("[sip]\nlisten = udp:127.0.0.1:5060\nlisten = udp:127.0.0.1:5060\n",
               "listen: the same address is listed twice");
}

static void test_file_errors(void **state)
{
    (void)state;
    struct ims_cfg *c = NULL;
    assert_int_equal(ims_cfg_load("/nonexistent/imscloud.conf", &c, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/imscloud.conf: cannot open"));

    char path[] = "/tmp/imscfgXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[sip]\nmax_message = 10\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(ims_cfg_load(path, &c, err, sizeof(err)), IMS_EINVAL);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: max_message: 10 is out of range", path);
    assert_non_null(strstr(err, want));
    unlink(path);
}

static void test_dump_roundtrip(void **state)
{
    (void)state;
    /* a key with a default, emptied by the file, stays empty (fuzz_cfg found
     * the dump leaving it out, so that the default came back) */
    struct ims_cfg *c = load_ok("[sip]\nlisten = udp:127.0.0.1:25070\n"
                                "[proxy]\nroute = * sip:127.0.0.1:5070;transport=udp\n"
                                "[diameter]\nidentity =\n");
    assert_null(c->dia_identity);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ims_cfg_dump(c, f);
    fclose(f);
    struct ims_cfg *c2 = load_ok(text);
    assert_int_equal(c2->nlisten, 1);
    assert_int_equal(c2->nroutes, 1);
    assert_string_equal(c2->routes[0].next_hop, c->routes[0].next_hop);
    assert_int_equal(c2->workers, c->workers);
    assert_null(c2->dia_identity);
    assert_string_equal(c2->dia_realm, c->dia_realm);
    free(text);
    ims_cfg_free(c);
    ims_cfg_free(c2);
}

/* Every allocation failure gives IMS_ENOMEM and leaks nothing (LSan checks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "[sip]\ndns_servers = 127.0.0.1:53\n[proxy]\nroute = * sip:a\nroute = b sip:b\n";
    for (unsigned long n = 1;; n++) {
        struct ims_cfg *c = NULL;
        ims_alloc_fail_at(n, 0);
        int rc = ims_cfg_load_string("t.conf", text, &c, err, sizeof(err));
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            ims_cfg_free(c);
            assert_true(n > 3);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_null(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
