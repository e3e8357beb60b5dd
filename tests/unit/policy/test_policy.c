/* test_policy.c - the policy engine: every construct of the rule language,
 * oslo's precedence and quirks, substitutions, cycles, bad files, the
 * shipped etc/policy.yaml, and allocation failures.  The verdicts here were
 * checked against oslo.policy 4.0 (tests/diff/policy does that at scale). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "guard_buf.h"
#include "policy/policy.h"

static const char *const member_roles[] = { "Member", "reader" };
static const char *const pw_totp[] = { "password", "totp" };
static const char *const pw_only[] = { "password" };

/* alice: member of p1, signed in with password + TOTP */
static const struct ims_policy_creds alice = {
    .user_id = "alice",
    .project_id = "p1",
    .domain_id = "default",
    .roles = member_roles,
    .n_roles = 2,
    .methods = pw_totp,
    .n_methods = 2,
};

static const struct ims_policy_kv own_kv[] = {
    { "target.project_id", "p1" },
    { "target.user_id", "alice" },
    { "owner", "alice" },
};
static const struct ims_policy_target own = { own_kv, 3 };

static struct ims_policy *load(const char *text)
{
    struct ims_policy *p = NULL;
    char err[256] = "";
    int rc = ims_policy_load_mem(text, strlen(text), "t.yaml", &p, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed (%d): %s\n%s", rc, err, text);
    return p;
}

/* One rule "r" with text rule, enforced for creds on target. */
static bool one(const char *rule, const struct ims_policy_creds *c,
                const struct ims_policy_target *t)
{
    static const char head[] = "{\"ok\": \"@\", \"bad\": \"(\", \"r\": \"";
    size_t len = strlen(rule), n = sizeof(head) - 1;
    char *doc = malloc(n + 6 * len + 3);
    assert_non_null(doc);
    memcpy(doc, head, n);
    for (const char *s = rule; *s; s++) {
        if ((unsigned char)*s < 0x20) { /* JSON wants control characters escaped */
            n += (size_t)snprintf(doc + n, 7, "\\u%04x", (unsigned)*s);
            continue;
        }
        if (*s == '"' || *s == '\\')
            doc[n++] = '\\';
        doc[n++] = *s;
    }
    memcpy(doc + n, "\"}", 3);
    struct ims_policy *p = load(doc);
    bool v = ims_policy_enforce(p, "r", c, t, NULL);
    ims_policy_free(p);
    free(doc);
    return v;
}

#define ALLOW(rule) assert_true(one((rule), &alice, &own))
#define DENY(rule) assert_false(one((rule), &alice, &own))

static void test_constants(void **s)
{
    (void)s;
    ALLOW("@");
    DENY("!");
    ALLOW(""); /* empty rule: always */
    DENY("   "); /* white space only: no tokens, oslo fails to parse */
    DENY("nocolon");
}

static void test_role(void **s)
{
    (void)s;
    ALLOW("role:member"); /* case-insensitive, both sides */
    ALLOW("role:MEMBER");
    ALLOW("role:Reader");
    DENY("role:admin");
    ALLOW("role:%(owner)s or role:reader");
    DENY("role:%(missing)s");
    struct ims_policy_creds none = alice;
    none.n_roles = 0;
    assert_false(one("role:member", &none, &own));
}

static void test_generic(void **s)
{
    (void)s;
    ALLOW("user_id:alice");
    DENY("user_id:Alice"); /* generic checks are case-sensitive */
    ALLOW("project_id:%(target.project_id)s");
    ALLOW("user_id:%(target.user_id)s");
    ALLOW("user_id:%(owner)s");
    DENY("project_id:%(target.missing)s");    /* missing target key: false */
    ALLOW("not project_id:%(target.missing)s"); /* ...and false, not error */
    ALLOW("domain_id:default");
    DENY("user_domain_id:default"); /* absent credential */
    ALLOW("user_id:ali%%ce" " or user_id:al%(x)sice or user_id:alice"); /* %% is '%' */
    ALLOW("roles:Member"); /* a list credential: membership, case-sensitive */
    DENY("roles:member");
    ALLOW("methods:totp");
    DENY("methods:TOTP");
    DENY("unknown:x");
    DENY("tenant-id:x");
    ALLOW("is_admin:False");
    DENY("is_admin:True");
    DENY("is_admin:false"); /* str(False) is "False" */
    struct ims_policy_creds admin = alice;
    admin.is_admin = true;
    assert_true(one("is_admin:True", &admin, &own));
}

static void test_literals(void **s)
{
    (void)s;
    static const struct ims_policy_kv kv[] = { { "enabled", "True" }, { "name", "member" },
                                               { "n", "10" } };
    static const struct ims_policy_target t = { kv, 3 };
    assert_true(one("True:%(enabled)s", &alice, &t));
    assert_false(one("False:%(enabled)s", &alice, &t));
    assert_true(one("'member':%(name)s", &alice, &t));
    assert_true(one("\"member\":%(name)s", &alice, &t));
    assert_true(one("10:%(n)s", &alice, &t));
    assert_true(one("1_0:%(n)s", &alice, &t)); /* Python int literal: 10 */
    assert_true(one("+10:%(n)s", &alice, &t));
    assert_false(one("010:%(n)s", &alice, &t));  /* SyntaxError in Python 3 */
    assert_false(one("not 010:%(n)s", &alice, &t)); /* ...an error, not false */
    assert_false(one("not :x", &alice, &t));        /* empty kind: SyntaxError */
    assert_true(one("not True.x:y", &alice, &t));   /* valid syntax, never found */
    assert_false(one("not x.True:y", &alice, &t));
    assert_false(one("not if:y", &alice, &t));
    assert_false(one("not user_id.x:y", &alice, &t)); /* str indexed by str */
    assert_true(one("not a-b:x", &alice, &t));       /* an expression: never found */
    assert_true(one("not a[0]:x", &alice, &t));
    assert_false(one("not a$b:x", &alice, &t));      /* a SyntaxError */
    assert_false(one("not a;b:x", &alice, &t));
    assert_false(one("'x'", &alice, &t)); /* a quoted token: the rule fails */
    assert_false(one("role:member and 'x'", &alice, &t));
}

static void test_operators(void **s)
{
    (void)s;
    ALLOW("role:member and methods:totp");
    DENY("role:member and role:admin");
    ALLOW("role:admin or role:member");
    ALLOW("not role:admin");
    DENY("not role:member");
    ALLOW("role:member AND methods:totp or !"); /* keywords: any case */
    DENY("role:member AND Methods:totp or !");  /* kinds: exact */
    ALLOW("role:member And (role:admin OR methods:totp)");
    ALLOW("(((role:member)))");
    ALLOW("(role:admin or role:member) and (not role:admin)");
    DENY("role:member and");
    DENY("role:member role:reader"); /* two checks, no operator */
    DENY("(role:member");
    DENY("role:member)");
    DENY("()");
    DENY("not");
    /* tokens split on Python's \s: ASCII and Unicode spaces, not U+200B */
    ALLOW("role:member\xc2\xa0" "and\xe3\x80\x80" "methods:totp\x1c" "or\t!");
    DENY("not\xe2\x80\x8b" "role:admin");
}

/* and binds tighter than or; not tightest; left to right */
static void test_precedence(void **s)
{
    (void)s;
    ALLOW("@ or ! and !");              /* @ or (! and !) */
    DENY("! and ! or ! and @");         /* (! and !) or (! and @) */
    ALLOW("! and ! or @ and @");
    ALLOW("! or @ and @ and @");
    DENY("! or @ and @ and !");
    ALLOW("not ! and @");               /* (not !) and @ */
    DENY("not @ or !");
    ALLOW("not (@ and !)");
    ALLOW("! or not ! and @");
    ALLOW("(! or @) and @ or !");
}

static void test_rules_and_default(void **s)
{
    (void)s;
    struct ims_policy *p = load("a: 'rule:b and role:member'\n"
                                "b: 'methods:totp'\n"
                                "c: 'rule:nosuch'\n"
                                "d: 'not rule:bad'\n"
                                "bad: '('\n"
                                "default: 'role:reader'\n");
    struct ims_policy_reason why;
    assert_int_equal(ims_policy_rule_count(p), 6);
    assert_true(ims_policy_enforce(p, "a", &alice, NULL, &why));
    assert_string_equal(why.rule, "a");
    assert_int_equal(why.why, IMS_POLICY_DECIDED);
    /* an unknown rule is the default rule, also behind rule: */
    assert_true(ims_policy_enforce(p, "zzz", &alice, NULL, &why));
    assert_string_equal(why.rule, "default");
    assert_true(ims_policy_enforce(p, "c", &alice, NULL, NULL));
    /* a lone "(" is an error wherever it is used, even under not */
    assert_false(ims_policy_enforce(p, "bad", &alice, NULL, &why));
    assert_int_equal(why.why, IMS_POLICY_ERROR);
    assert_false(ims_policy_enforce(p, "d", &alice, NULL, &why));
    assert_int_equal(why.why, IMS_POLICY_ERROR);
    assert_true(ims_policy_has_rule(p, "a"));
    assert_false(ims_policy_has_rule(p, "zzz"));
    ims_policy_free(p);

    /* without a default: unknown rules deny */
    p = load("{\"a\": \"rule:nosuch or !\"}");
    assert_false(ims_policy_enforce(p, "a", &alice, NULL, NULL));
    assert_false(ims_policy_enforce(p, "x", &alice, NULL, &why));
    assert_int_equal(why.why, IMS_POLICY_NO_RULE);
    assert_string_equal(why.rule, "x");
    ims_policy_free(p);

    /* an empty policy denies everything */
    p = load("");
    assert_false(ims_policy_enforce(p, "default", &alice, NULL, NULL));
    ims_policy_free(p);
    /* a null rule is oslo's empty list rule: always */
    p = load("a:\nb: ~\n");
    assert_true(ims_policy_enforce(p, "a", &alice, NULL, NULL));
    assert_true(ims_policy_enforce(p, "b", &alice, NULL, NULL));
    ims_policy_free(p);
    /* duplicates: the last one wins, as in a Python dict */
    p = load("{\"a\": \"!\", \"a\": \"@\"}");
    assert_true(ims_policy_enforce(p, "a", &alice, NULL, NULL));
    ims_policy_free(p);
}

static void test_cycles(void **s)
{
    (void)s;
    struct ims_policy *p = load("a: 'rule:b'\n"
                                "b: 'rule:a'\n"
                                "self: 'rule:self or @'\n"
                                "n: 'not rule:a'\n"
                                "shortcut: '@ or rule:a'\n"
                                "default: 'rule:default'\n");
    struct ims_policy_reason why;
    assert_false(ims_policy_enforce(p, "a", &alice, NULL, &why));
    assert_int_equal(why.why, IMS_POLICY_ERROR);
    assert_false(ims_policy_enforce(p, "self", &alice, NULL, NULL));
    assert_false(ims_policy_enforce(p, "n", &alice, NULL, NULL));
    assert_true(ims_policy_enforce(p, "shortcut", &alice, NULL, NULL));
    assert_false(ims_policy_enforce(p, "missing", &alice, NULL, NULL));
    ims_policy_free(p);

    /* a long chain that is not a cycle is fine */
    char doc[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "r%d: 'rule:r%d'\n", i, i + 1);
    snprintf(doc + n, sizeof(doc) - n, "r40: 'role:member'\n");
    p = load(doc);
    assert_true(ims_policy_enforce(p, "r0", &alice, NULL, NULL));
    ims_policy_free(p);
}

static void test_deep_tree(void **s)
{
    (void)s;
    char rule[8192];
    for (int i = 0; i < 1000; i++)
        memcpy(rule + 4 * i, "not ", 4);
    memcpy(rule + 4000, "@", 2);
    DENY(rule); /* deeper than IMS_POLICY_MAX_TREE_DEPTH: denied, no recursion */
    memset(rule, '(', 3000);
    rule[3000] = '\0';
    DENY(rule);
    ALLOW("((((((((((((((((((((@))))))))))))))))))))");
}

static void test_http_unsupported(void **s)
{
    (void)s;
    DENY("http://pdp.example/check");
    DENY("not http://pdp.example/check"); /* an error, not false */
    ALLOW("@ or http://pdp.example/check"); /* never reached */
}

static void test_format_quirks(void **s)
{
    (void)s;
    DENY("user_id:%");                   /* incomplete format: error */
    DENY("not user_id:%");
    DENY("not user_id:%(owner)d");       /* TypeError for a str */
    ALLOW("not user_id:%(missing)d");    /* the key lookup comes first */
    ALLOW("not user_id:%s");             /* the whole dict: never equal */
    DENY("not user_id:%(owner");         /* incomplete key */
    ALLOW("not user_id:%(missing)s%");   /* KeyError before the bad spec */
}

static void test_bad_files(void **s)
{
    (void)s;
    struct ims_policy *p = NULL;
    char err[256];
    const char *yaml_bad = "a: 'role:x'\nb: 'role:y'\nc: 'unterminated\n";
    assert_int_equal(ims_policy_load_mem(yaml_bad, strlen(yaml_bad), "p.yaml", &p, err,
                                         sizeof(err)),
                     IMS_EPROTO);
    assert_null(p);
    assert_non_null(strstr(err, "p.yaml:4:"));
    const char *json_bad = "{\n  \"a\": \"role:x\",\n  \"b\": \"role:y\"\n  \"c\": \"@\"\n}\n";
    assert_int_equal(ims_policy_load_mem(json_bad, strlen(json_bad), "p.json", &p, err,
                                         sizeof(err)),
                     IMS_EPROTO);
    assert_non_null(strstr(err, "p.json:4:"));
    const char *bool_val = "a: '@'\n\nb: yes\n";
    assert_int_equal(ims_policy_load_mem(bool_val, strlen(bool_val), "p.yaml", &p, err,
                                         sizeof(err)),
                     IMS_EPROTO);
    assert_non_null(strstr(err, "p.yaml:3:"));
    assert_non_null(strstr(err, "bool"));
    const char *cases[] = {
        "a: [role:x]\n", "a: {b: c}\n", "a: &x '@'\nb: *x\n", "a: 1\n", "a: 1.5\n",
        "a: 2020-01-01\n", "a: !!int 3\n", "- a\n", "just a string\n", "a: b\n---\nc: d\n",
        "{\"a\": 1}", "{\"a\": [\"role:x\"]}", "[1]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = NULL;
        assert_int_equal(ims_policy_load_mem(cases[i], strlen(cases[i]), "x", &p, err, sizeof(err)),
                         IMS_EPROTO);
        assert_null(p);
        assert_true(strncmp(err, "x:", 2) == 0);
    }
    /* quoted scalars are strings whatever they look like */
    p = load("a: 'yes'\nb: \"1\"\nc: !!str on\n");
    assert_int_equal(ims_policy_rule_count(p), 3);
    ims_policy_free(p);
    assert_int_equal(ims_policy_load_file("/nonexistent/policy.yaml", &p, err, sizeof(err)),
                     IMS_EIO);
    assert_non_null(strstr(err, "/nonexistent/policy.yaml"));
}

/* The shipped policy does what docs/policy.md says. */
static void test_default_policy(void **s)
{
    (void)s;
    struct ims_policy *p = NULL;
    char err[256];
    assert_int_equal(ims_policy_load_file(IMS_SRC_DIR "/etc/policy.yaml", &p, err, sizeof(err)), 0);
    static const char *const member[] = { "member", "reader" };
    static const char *const reader[] = { "reader" };
    static const char *const admin[] = { "admin", "member", "reader" };
    struct ims_policy_creds bob = { .user_id = "bob", .project_id = "p1", .roles = member,
                                    .n_roles = 2, .methods = pw_only, .n_methods = 1 };
    struct ims_policy_creds bob_mfa = bob;
    bob_mfa.methods = pw_totp, bob_mfa.n_methods = 2;
    struct ims_policy_creds rdr = { .user_id = "r", .project_id = "p1", .roles = reader,
                                    .n_roles = 1, .methods = pw_only, .n_methods = 1 };
    struct ims_policy_creds adm = { .user_id = "a", .project_id = "p9", .roles = admin,
                                    .n_roles = 3, .methods = pw_only, .n_methods = 1 };
    struct ims_policy_creds adm_mfa = adm;
    adm_mfa.methods = pw_totp, adm_mfa.n_methods = 2;
    static const struct ims_policy_kv p1kv[] = { { "target.project_id", "p1" } };
    static const struct ims_policy_kv p2kv[] = { { "target.project_id", "p2" } };
    struct ims_policy_target p1 = { p1kv, 1 }, p2 = { p2kv, 1 };
    struct ims_policy_reason why;

    assert_true(ims_policy_enforce(p, "ims:register", &bob, NULL, NULL));
    assert_true(ims_policy_enforce(p, "ims:call", &bob, NULL, NULL));
    assert_false(ims_policy_enforce(p, "ims:call:external", &bob, NULL, &why));
    assert_string_equal(why.rule, "ims:call:external"); /* "Denied by rule ims:call:external" */
    assert_true(ims_policy_enforce(p, "ims:call:external", &bob_mfa, NULL, NULL));
    assert_true(ims_policy_enforce(p, "ims:message", &bob, NULL, NULL));
    assert_false(ims_policy_enforce(p, "ims:register", &rdr, NULL, NULL));
    assert_true(ims_policy_enforce(p, "ims:subscribe", &rdr, NULL, NULL));

    assert_true(ims_policy_enforce(p, "cloud:compute:list", &rdr, &p1, NULL));
    assert_false(ims_policy_enforce(p, "cloud:compute:list", &rdr, &p2, NULL));
    assert_false(ims_policy_enforce(p, "cloud:compute:list", &rdr, NULL, NULL));
    assert_false(ims_policy_enforce(p, "cloud:compute:create", &rdr, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:compute:create", &bob, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:compute:stop", &bob, &p1, NULL));
    assert_false(ims_policy_enforce(p, "cloud:compute:delete", &bob, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:compute:delete", &bob_mfa, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:compute:delete", &adm, &p2, NULL));
    assert_false(ims_policy_enforce(p, "cloud:secgroup:manage", &bob, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:secgroup:list", &bob, &p1, NULL));
    assert_true(ims_policy_enforce(p, "cloud:quota:show", &rdr, &p1, NULL));

    assert_false(ims_policy_enforce(p, "admin:subscriber", &bob_mfa, NULL, NULL));
    assert_false(ims_policy_enforce(p, "admin:keys", &adm, NULL, NULL));
    assert_true(ims_policy_enforce(p, "admin:keys", &adm_mfa, NULL, NULL));
    assert_true(ims_policy_enforce(p, "admin:subscriber", &adm_mfa, NULL, NULL));
    assert_true(ims_policy_enforce(p, "admin:audit", &adm, NULL, NULL));
    assert_false(ims_policy_enforce(p, "admin:audit", &bob, NULL, NULL));
    /* unknown actions fall to "default": "!" */
    assert_false(ims_policy_enforce(p, "ims:teleport", &adm_mfa, NULL, &why));
    assert_string_equal(why.rule, "default");
    ims_policy_free(p);
}

/* Load fails cleanly at every allocation; enforce never allocates. */
static void test_alloc_failures(void **s)
{
    (void)s;
    const char *doc = "a: 'rule:b and (role:x or not methods:%(t)s)'\nb: 'user_id:%(u)s'\n"
                      "c: 'True:%(x)s or 1:2'\ndefault: '@'\n";
    struct ims_policy *p = NULL;
    int rc = IMS_ENOMEM;
    unsigned long n;
    for (n = 1; n < 500 && rc == IMS_ENOMEM; n++) {
        ims_alloc_fail_at(n, 0);
        rc = ims_policy_load_mem(doc, strlen(doc), "f", &p, NULL, 0);
        ims_alloc_fail_at(0, 0);
        if (rc == IMS_ENOMEM)
            assert_null(p);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 5);
    ims_alloc_fail_at(1, 1);
    static const struct ims_policy_kv kv[] = { { "t", "sms" }, { "u", "alice" } };
    struct ims_policy_target t = { kv, 2 };
    assert_true(ims_policy_enforce(p, "a", &alice, &t, NULL));
    assert_true(ims_policy_enforce(p, "zzz", &alice, &t, NULL));
    ims_alloc_fail_at(0, 0);
    ims_policy_free(p);
}

/* The loader reads only len bytes: the text sits flush on a guard page. */
static void test_guarded(void **s)
{
    (void)s;
    const char *docs[] = { "a: 'role:x or (not user_id:%(k)s)'", "{\"a\": \"@\"}", "a: '%(k",
                           "a: 'x:y ((", "a:" };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct guard_buf g;
        char *b = guard_buf_new(&g, docs[i], strlen(docs[i]));
        assert_non_null(b);
        struct ims_policy *p = NULL;
        if (ims_policy_load_mem(b, strlen(docs[i]), "g", &p, NULL, 0) == 0) {
            ims_policy_enforce(p, "a", &alice, &own, NULL);
            ims_policy_free(p);
        }
        guard_buf_free(&g);
    }
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),       cmocka_unit_test(test_role),
        cmocka_unit_test(test_generic),         cmocka_unit_test(test_literals),
        cmocka_unit_test(test_operators),       cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_rules_and_default), cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_deep_tree),       cmocka_unit_test(test_http_unsupported),
        cmocka_unit_test(test_format_quirks),   cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_default_policy),  cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_guarded),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
