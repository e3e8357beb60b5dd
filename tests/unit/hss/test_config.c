/* test_config - the [core] roles/state_dir, [hss] and [diameter] keys this
 * module added to the configuration table. */
#include <string.h>

#include "cfg/cfg.h"
#include "hss_tests.h"

static struct ims_cfg *load(const char *text, int want)
{
    struct ims_cfg *c = NULL;
    char err[256];
    int rc = ims_cfg_load_string("t.conf", text, &c, err, sizeof(err));
    if (rc != want)
        fail_msg("load: %d (%s)", rc, err);
    return c;
}

static void test_defaults(void **state)
{
    struct ims_cfg *c = load("", 0);
    assert_int_equal(c->roles, IMS_ROLE_PCSCF | IMS_ROLE_ICSCF | IMS_ROLE_SCSCF | IMS_ROLE_HSS |
                                   IMS_ROLE_AS);
    assert_string_equal(c->state_dir, "var");
    assert_int_equal(c->hss_mode, 0);
    assert_null(c->hss_store);
    assert_int_equal(c->dia_port, 3868);
    assert_int_equal(c->dia_tls_port, 0);
    assert_string_equal(c->dia_listen, "127.0.0.1");
    assert_string_equal(c->dia_allow_hosts, "*");
    assert_null(c->dia_allow_realms);
    assert_int_equal(c->dia_max_pending, 4096);
    ims_cfg_free(c);
}

static void test_values(void **state)
{
    struct ims_cfg *c = load("[core]\nroles = hss\nstate_dir = /tmp/x\n"
                             "[hss]\nmode = slf\nslf_route = sip:*@a.example  hss-a.example\n"
                             "slf_route = *@b.example hss-b.example\nvisited_networks = *.p.example\n"
                             "default_scscf = sip:127.0.0.1:6060\n"
                             "[diameter]\nidentity = hss.ims.bench\nrealm = ims.bench\n"
                             "port = 0\ntls_required = yes\n"
                             "peer = scscf.ims.bench 127.0.0.1:3870\n"
                             "peer = as.ims.bench [::1] tls\n",
                             0);
    assert_int_equal(c->roles, IMS_ROLE_HSS);
    assert_false(c->roles & IMS_ROLES_SIP);
    assert_int_equal(c->hss_mode, 1);
    assert_int_equal(c->nhss_slf, 2);
    assert_string_equal(c->hss_slf[0].pattern, "sip:*@a.example");
    assert_string_equal(c->hss_slf[0].hss, "hss-a.example");
    assert_int_equal(c->ndia_peers, 2);
    assert_string_equal(c->dia_peers[0].addr, "127.0.0.1");
    assert_int_equal(c->dia_peers[0].port, 3870);
    assert_false(c->dia_peers[0].tls);
    assert_string_equal(c->dia_peers[1].addr, "::1");
    assert_int_equal(c->dia_peers[1].port, 5868);
    assert_true(c->dia_peers[1].tls);
    assert_true(c->dia_tls_required);
    assert_string_equal(c->hss_default_scscf, "sip:127.0.0.1:6060");
    ims_cfg_free(c);
}

static void test_errors(void **state)
{
    load("[core]\nroles = hss,ims\n", IMS_EINVAL);
    load("[core]\nroles =\n", IMS_EINVAL);
    load("[hss]\nmode = hlr\n", IMS_EINVAL);
    load("[hss]\nmode = slf\n", IMS_EINVAL); /* slf without routes */
    load("[hss]\nslf_route = only-one-word\n", IMS_EINVAL);
    load("[diameter]\npeer = a.b notanaddress\n", IMS_EINVAL);
    load("[diameter]\ntls_port = 5868\n", IMS_EINVAL); /* no certificate */
    load("[diameter]\nport = 70000\n", IMS_EINVAL);
}

const struct CMUnitTest config_tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_values),
    cmocka_unit_test(test_errors),
};
const size_t config_ntests = sizeof(config_tests) / sizeof(config_tests[0]);
