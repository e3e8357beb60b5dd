/* test_neutron.c - the pure parts of the Neutron source (src/acl/neutron.h):
 * a rule set from Neutron's show and list bodies, the union with a rules
 * file, refusals that name the rule and its Neutron id, and the network
 * endpoint of a Keystone token's catalog.  The thread, Keystone and a real
 * Neutron are tested end to end (tests/e2e/neutron). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "acl/acl.h"
#include "acl/neutron.h"
#include "base/alloc.h"
#include "base/err.h"

static bool allows(const struct ims_acl *acl, int proto, uint16_t port, const char *ip)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return ims_acl_match(acl, proto, port, (const struct sockaddr *)&sin, false);
}

#define RULE_UDP_5060                                                                              \
    "{\"id\": \"r-udp\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\", \"protocol\": "      \
    "\"udp\", \"port_range_min\": 5060, \"port_range_max\": 5060, \"remote_ip_prefix\": "          \
    "\"127.0.0.1/32\", \"remote_group_id\": null, \"security_group_id\": \"g1\"}"
#define RULE_EGRESS                                                                                \
    "{\"id\": \"r-eg\", \"direction\": \"egress\", \"ethertype\": \"IPv4\", \"protocol\": null}"
#define RULE_GROUP                                                                                 \
    "{\"id\": \"r-grp\", \"direction\": \"ingress\", \"ethertype\": \"IPv4\", \"protocol\": "      \
    "\"udp\", \"remote_ip_prefix\": null, \"remote_group_id\": \"g2\"}"
#define GROUP(id, rules)                                                                           \
    "{\"id\": \"" id "\", \"name\": \"ims-edge\", \"security_group_rules\": [" rules "]}"

static const char show_body[] = "{\"security_group\": " GROUP("g1", RULE_EGRESS "," RULE_UDP_5060) "}";

static void test_show_body(void **state)
{
    (void)state;
    struct ims_acl *acl = NULL;
    char *gid = NULL, err[256];
    assert_int_equal(ims_acl_neutron_build("ims-edge", show_body, strlen(show_body), NULL, 0, &acl,
                                           &gid, err, sizeof(err)),
                     0);
    assert_string_equal(gid, "g1");
    assert_int_equal(ims_acl_rules(acl), 2);
    assert_int_equal(ims_acl_active_rules(acl), 1);
    assert_true(allows(acl, IMS_ACL_UDP, 5060, "127.0.0.1"));
    assert_false(allows(acl, IMS_ACL_UDP, 5060, "127.0.0.2")); /* no rule, no entry */
    assert_false(allows(acl, IMS_ACL_TCP, 5060, "127.0.0.1"));
    assert_false(allows(acl, IMS_ACL_UDP, 5061, "127.0.0.1"));
    ims_acl_free(acl);
    ims_free(gid);
}

static void test_list_body(void **state)
{
    (void)state;
    static const char one[] = "{\"security_groups\": [" GROUP("g1", RULE_UDP_5060) "]}";
    static const char none[] = "{\"security_groups\": []}";
    static const char two[] =
        "{\"security_groups\": [" GROUP("g1", RULE_UDP_5060) "," GROUP("g9", "") "]}";
    struct ims_acl *acl = NULL;
    char err[256];
    assert_int_equal(ims_acl_neutron_build("ims-edge", one, strlen(one), NULL, 0, &acl, NULL, err,
                                           sizeof(err)),
                     0);
    assert_true(allows(acl, IMS_ACL_UDP, 5060, "127.0.0.1"));
    ims_acl_free(acl);

    acl = NULL;
    assert_int_equal(ims_acl_neutron_build("ims-edge", none, strlen(none), NULL, 0, &acl, NULL,
                                           err, sizeof(err)),
                     IMS_ENOENT);
    assert_non_null(strstr(err, "no such security group"));
    assert_null(acl);
    assert_int_equal(ims_acl_neutron_build("ims-edge", two, strlen(two), NULL, 0, &acl, NULL, err,
                                           sizeof(err)),
                     IMS_EINVAL);
    assert_non_null(strstr(err, "2 groups have this name"));
    assert_null(acl);

    /* an empty group is a valid set that denies everything */
    static const char empty[] = "{\"security_group\": " GROUP("g1", "") "}";
    assert_int_equal(ims_acl_neutron_build("ims-edge", empty, strlen(empty), NULL, 0, &acl, NULL,
                                           err, sizeof(err)),
                     0);
    assert_int_equal(ims_acl_rules(acl), 0);
    assert_false(allows(acl, IMS_ACL_UDP, 5060, "127.0.0.1"));
    ims_acl_free(acl);
}

static void test_refused(void **state)
{
    (void)state;
    static const char grp[] =
        "{\"security_group\": " GROUP("g1", RULE_UDP_5060 "," RULE_EGRESS "," RULE_GROUP) "}";
    struct ims_acl *acl = NULL;
    char *gid = NULL, err[256];
    assert_int_equal(ims_acl_neutron_build("ims-edge", grp, strlen(grp), NULL, 0, &acl, &gid, err,
                                           sizeof(err)),
                     IMS_EINVAL);
    assert_null(acl);
    assert_null(gid);
    /* the whole set is refused, and the report names the rule for the operator */
    assert_non_null(strstr(err, "neutron group ims-edge"));
    assert_non_null(strstr(err, "rule 2"));
    assert_non_null(strstr(err, "remote_group_id"));
    assert_non_null(strstr(err, "(rule id r-grp)"));

    static const char junk[] = "{\"security_group\": ";
    assert_int_equal(ims_acl_neutron_build("x", junk, strlen(junk), NULL, 0, &acl, NULL, err,
                                           sizeof(err)),
                     IMS_EINVAL);
    assert_non_null(strstr(err, "json"));
    static const char other[] = "{\"networks\": []}";
    assert_int_equal(ims_acl_neutron_build("x", other, strlen(other), NULL, 0, &acl, NULL, err,
                                           sizeof(err)),
                     IMS_EINVAL);
    /* a list whose one element is not a group: refused with a reason (it
     * was refused without one: fuzz_acl) */
    static const char not_obj[] = "{\"security_groups\": [1]}";
    err[0] = '\0';
    assert_int_equal(ims_acl_neutron_build("x", not_obj, strlen(not_obj), NULL, 0, &acl, NULL,
                                           err, sizeof(err)),
                     IMS_EINVAL);
    assert_string_equal(err, "neutron group x: not a security group body");
}

static void test_union_with_file(void **state)
{
    (void)state;
    static const char file[] =
        "{\"security_group_rules\": [{\"direction\": \"ingress\", \"protocol\": \"tcp\", "
        "\"port_range_min\": 3868, \"remote_ip_prefix\": \"10.0.0.7/32\"}]}";
    struct ims_acl *acl = NULL;
    char err[256];
    assert_int_equal(ims_acl_neutron_build("ims-edge", show_body, strlen(show_body), file,
                                           strlen(file), &acl, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(ims_acl_rules(acl), 3);
    assert_true(allows(acl, IMS_ACL_UDP, 5060, "127.0.0.1")); /* the group's */
    assert_true(allows(acl, IMS_ACL_TCP, 3868, "10.0.0.7"));  /* the file's */
    assert_false(allows(acl, IMS_ACL_TCP, 3868, "127.0.0.1"));
    ims_acl_free(acl);
}

/* Every allocation of a build with a file fails in turn: IMS_ENOMEM and
 * nothing leaked (ASan), until the build succeeds. */
static void test_alloc_failures(void **state)
{
    (void)state;
    static const char file[] = "{\"security_group_rules\": [{\"direction\": \"ingress\", "
                               "\"remote_ip_prefix\": \"10.0.0.7/32\"}]}";
    for (unsigned long n = 1;; n++) {
        struct ims_acl *acl = NULL;
        char *gid = NULL, err[256];
        ims_alloc_fail_at(n, 0);
        int rc = ims_acl_neutron_build("ims-edge", show_body, strlen(show_body), file,
                                       strlen(file), &acl, &gid, err, sizeof(err));
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            assert_int_equal(ims_acl_rules(acl), 3);
            assert_string_equal(gid, "g1");
            ims_acl_free(acl);
            ims_free(gid);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_null(acl);
        assert_null(gid);
        assert_true(n < 50);
    }
}

static void test_catalog(void **state)
{
    (void)state;
    static const char tok[] =
        "{\"token\": {\"expires_at\": \"2030-01-01T00:00:00.000000Z\", \"catalog\": ["
        "{\"type\": \"identity\", \"endpoints\": [{\"interface\": \"public\", \"url\": "
        "\"http://k/v3\"}]},"
        "{\"type\": \"network\", \"endpoints\": ["
        "{\"interface\": \"admin\", \"url\": \"http://adm:9696\"},"
        "{\"interface\": \"public\", \"url\": \"http://pub:9696/\"},"
        "{\"interface\": \"internal\", \"url\": \"http://int:9696\"}]}]}}";
    char url[64];
    assert_int_equal(ims_acl_neutron_catalog_url(tok, strlen(tok), "network", url, sizeof(url)),
                     0);
    assert_string_equal(url, "http://pub:9696");
    assert_int_equal(ims_acl_neutron_catalog_url(tok, strlen(tok), "compute", url, sizeof(url)),
                     IMS_ENOENT);
    assert_int_equal(ims_acl_neutron_catalog_url(tok, strlen(tok), "network", url, 8),
                     IMS_ELIMIT);
    assert_int_equal(ims_acl_neutron_catalog_url("{}", 2, "network", url, sizeof(url)),
                     IMS_EPROTO);
    /* an empty URL (or "/") is none: the next one, else no such service
     * (it was taken, and Neutron called at "": fuzz_acl) */
    static const char empty[] =
        "{\"token\": {\"catalog\": [{\"type\": \"network\", \"endpoints\": ["
        "{\"interface\": \"public\", \"url\": \"/\"},"
        "{\"interface\": \"internal\", \"url\": \"http://int:9696\"}]}]}}";
    assert_int_equal(
        ims_acl_neutron_catalog_url(empty, strlen(empty), "network", url, sizeof(url)), 0);
    assert_string_equal(url, "http://int:9696");
    static const char none[] = "{\"token\": {\"catalog\": [{\"type\": \"network\", "
                               "\"endpoints\": [{\"interface\": \"public\", \"url\": \"\"}]}]}}";
    assert_int_equal(ims_acl_neutron_catalog_url(none, strlen(none), "network", url, sizeof(url)),
                     IMS_ENOENT);
    assert_int_equal(ims_acl_neutron_catalog_url("nope", 4, "network", url, sizeof(url)),
                     IMS_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_body), cmocka_unit_test(test_list_body),
        cmocka_unit_test(test_refused),   cmocka_unit_test(test_union_with_file),
        cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_catalog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
