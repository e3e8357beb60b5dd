/* test_cas_cmd.c - the cloud AS's command language (src/cloudas/cas_cmd.c):
 * every command in text and JSON, the errors a user sees, the policy rule
 * of each command (and that etc/policy.yaml defines them), and inputs
 * flush against a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "cloudas/cas_int.h"
#include "guard_buf.h"
#include "policy/policy.h"

static int parse(const char *ctype, const char *body, struct cas_cmd *c, char *err, size_t n)
{
    return cas_cmd_parse(ims_str_cstr(ctype), ims_str_cstr(body), c, err, n);
}

static void ok_text(void **st)
{
    struct cas_cmd c;
    char err[256];
    assert_int_equal(parse("text/plain", "list", &c, err, sizeof(err)), 0);
    assert_int_equal(c.verb, CAS_LIST);
    assert_int_equal(parse("text/plain;charset=utf-8", "  show vm1 \r\n", &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_SHOW);
    assert_string_equal(c.name, "vm1");
    assert_int_equal(parse("", "create vm-2 flavor=m1.tiny image=cirros-fake", &c, err,
                           sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_CREATE);
    assert_string_equal(c.name, "vm-2");
    assert_string_equal(c.flavor, "m1.tiny");
    assert_string_equal(c.image, "cirros-fake");
    assert_int_equal(parse("text/plain", "secgroup add tcp 5060-5061 192.0.2.0/24", &c, err,
                           sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_SG_ADD);
    assert_string_equal(c.proto, "tcp");
    assert_int_equal(c.port_min, 5060);
    assert_int_equal(c.port_max, 5061);
    assert_string_equal(c.cidr, "192.0.2.0/24");
    assert_int_equal(parse("text/plain", "secgroup delete 1a2b-3c", &c, err, sizeof(err)), 0);
    assert_int_equal(c.verb, CAS_SG_DELETE);
    assert_string_equal(c.name, "1a2b-3c");
    assert_int_equal(parse("text/plain", "stop\tvm1", &c, err, sizeof(err)), 0);
    assert_int_equal(c.verb, CAS_STOP);
}

static void ok_json(void **st)
{
    struct cas_cmd c;
    char err[256];
    assert_int_equal(parse("application/json",
                           "{\"command\":\"create\",\"name\":\"vm1\",\"flavor\":\"2\"}", &c, err,
                           sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_CREATE);
    assert_string_equal(c.name, "vm1");
    assert_string_equal(c.flavor, "2");
    assert_int_equal(parse("application/json",
                           "{\"command\":\"secgroup add\",\"protocol\":\"udp\",\"port\":5060,"
                           "\"cidr\":\"2001:db8::/32\"}",
                           &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_SG_ADD);
    assert_int_equal(c.port_min, 5060);
    assert_int_equal(c.port_max, 5060);
    assert_int_equal(parse("application/json", "{\"command\":\"secgroup delete\",\"rule_id\":\"r1\"}",
                           &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.verb, CAS_SG_DELETE);
    assert_string_equal(c.name, "r1");
}

static void bad(const char *ctype, const char *body, const char *want)
{
    struct cas_cmd c;
    char err[256] = "";
    assert_int_equal(parse(ctype, body, &c, err, sizeof(err)), IMS_EPROTO);
    if (!strstr(err, want))
        fail_msg("'%s': got '%s', want '%s'", body, err, want);
}

static void errors(void **st)
{
    bad("text/plain", "", "empty command");
    bad("text/plain", "frobnicate", "unknown command 'frobnicate'");
    bad("text/plain", "create", "'create' needs a server name");
    bad("text/plain", "delete a b", "'delete' takes one server name");
    bad("text/plain", "list all", "'list' takes no argument");
    bad("text/plain", "create vm/1", "bad character in server name");
    bad("text/plain", "create vm1 size=big", "unknown option 'size=big'");
    bad("text/plain", "secgroup add tcp 70000 10.0.0.0/8", "bad port range '70000'");
    bad("text/plain", "secgroup add tcp 30-20 10.0.0.0/8", "bad port range '30-20'");
    bad("text/plain", "secgroup add sctp 22 10.0.0.0/8", "bad protocol 'sctp'");
    bad("text/plain", "secgroup add tcp 22 10.0.0.0", "bad CIDR '10.0.0.0'");
    bad("text/plain", "secgroup add tcp 22", "usage: secgroup add");
    bad("text/plain", "list\nlist", "one command per MESSAGE");
    bad("application/json", "[1]", "not an object");
    bad("application/json", "{\"name\":\"x\"}", "no \"command\"");
    bad("application/xml", "list", "unsupported content type 'application/xml'");
    char big[80];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char line[100];
    snprintf(line, sizeof(line), "show %s", big);
    bad("text/plain", line, "server name too long");
}

/* Every command but help names a rule, and the shipped policy has it. */
static void rules(void **st)
{
    struct ims_policy *pol = NULL;
    char err[256];
    assert_int_equal(ims_policy_load_file(IMS_SRC_DIR "/etc/policy.yaml", &pol, err, sizeof(err)),
                     0);
    assert_null(cas_verb_rule(CAS_HELP));
    for (int v = CAS_LIST; v <= CAS_QUOTA; v++) {
        const char *r = cas_verb_rule((enum cas_verb)v);
        assert_non_null(r);
        if (!ims_policy_has_rule(pol, r))
            fail_msg("etc/policy.yaml has no %s", r);
    }
    ims_policy_free(pol);
}

/* The body sits flush against a PROT_NONE page: no read past its end. */
static void guarded(void **st)
{
    static const char *const bodies[] = { "list", "create vm1 flavor=1", "{\"command\":\"list\"}",
                                          "secgroup add tcp 1-2 10.0.0.0/8" };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t n = strlen(bodies[i]);
        struct guard_buf g;
        char *p = guard_buf_new(&g, bodies[i], n);
        assert_non_null(p);
        struct cas_cmd c;
        char err[256];
        assert_int_equal(cas_cmd_parse(ims_str_cstr(i == 2 ? "application/json" : "text/plain"),
                                       ims_str_make(p, n), &c, err, sizeof(err)),
                         0);
        guard_buf_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ok_text), cmocka_unit_test(ok_json), cmocka_unit_test(errors),
        cmocka_unit_test(rules),   cmocka_unit_test(guarded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
