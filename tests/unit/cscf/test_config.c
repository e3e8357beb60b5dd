/* test_config - the [pcscf], [icscf] and [scscf] keys (src/cfg/cfg.c) and
 * the checks across them: ports must be listened on and belong to one role,
 * what an active role needs must be there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/cscf.h"
#include "cscf_tests.h"

#define LISTEN "[sip]\nlisten = udp:127.0.0.1:5060\nlisten = udp:127.0.0.1:5070\n" \
               "listen = udp:127.0.0.1:6060\n"

static struct ims_cfg *load(const char *text, int want, const char *err_has)
{
    struct ims_cfg *c = NULL;
    char err[512];
    int rc = ims_cfg_load_string("t.conf", text, &c, err, sizeof(err));
    if (rc != want)
        fail_msg("rc %d (want %d): %s", rc, want, err);
    if (err_has && !strstr(err, err_has))
        fail_msg("error '%s' lacks '%s'", err, err_has);
    return c;
}

static void test_keys(void **state)
{
    struct ims_cfg *c = load("[core]\nroles = pcscf,icscf,scscf,hss\n" LISTEN
                             "[pcscf]\nports = 5060\nicscf = sip:127.0.0.1:5070\n"
                             "[icscf]\nports = 5070\nscscf = sip:s1.test:6060 1,2\n"
                             "scscf = sip:s2.test:6060\nhss_error_status = 480\n"
                             "[scscf]\nports = 6060\ndigest_algorithms = MD5\nmax_contacts = 3\n",
                             0, NULL);
    assert_int_equal(c->pcscf_ports.n, 1);
    assert_int_equal(c->pcscf_ports.port[0], 5060);
    assert_string_equal(c->pcscf_icscf, "sip:127.0.0.1:5070");
    assert_int_equal(c->nicscf_scscf, 2);
    assert_string_equal(c->icscf_scscf[0].uri, "sip:s1.test:6060");
    assert_int_equal(c->icscf_scscf[0].ncaps, 2);
    assert_int_equal(c->icscf_scscf[0].caps[1], 2);
    assert_int_equal(c->icscf_scscf[1].ncaps, 0);
    assert_int_equal(c->icscf_hss_error_status, 480);
    assert_int_equal(c->scscf_max_contacts, 3);
    assert_int_equal(c->scscf_nonce_ttl, 60); /* defaults */
    assert_int_equal(c->scscf_auth_max_failures, 3);
    assert_string_equal(c->scscf_digest_algorithms, "MD5");
    assert_true(ims_cscf_configured(c));
    assert_true(ims_cscf_timers(c) > c->icscf_max_pending + c->scscf_max_pending);
    /* the dump writes them back */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ims_cfg_dump(c, f);
    fclose(f);
    assert_non_null(strstr(text, "[icscf]\nports = 5070\nscscf = sip:s1.test:6060 1,2\n"
                                 "scscf = sip:s2.test:6060\n"));
    free(text);
    ims_cfg_free(c);
    /* roles listed without ports are inactive: the plain proxy of the
     * existing setups stays what it was */
    c = load("[core]\nroles = pcscf,icscf,scscf,as\n", 0, NULL);
    assert_false(ims_cscf_configured(c));
    assert_int_equal(ims_cscf_timers(c), 0);
    ims_cfg_free(c);
}

static void test_refused(void **state)
{
    load("[core]\nroles = pcscf\n" LISTEN "[pcscf]\nports = 5080\nicscf = sip:x\n",
         IMS_EINVAL, "no [sip] listen");
    load("[core]\nroles = pcscf,icscf,hss\n" LISTEN
         "[pcscf]\nports = 5060\nicscf = sip:x\n[icscf]\nports = 5060\n",
         IMS_EINVAL, "is in [pcscf] and [icscf]");
    load("[core]\nroles = pcscf\n" LISTEN "[pcscf]\nports = 5060\n", IMS_EINVAL, "I-CSCF");
    load("[core]\nroles = scscf\n" LISTEN "[scscf]\nports = 6060\n", IMS_EINVAL,
         "[diameter] peer");
    load("[core]\nroles = icscf,hss\n" LISTEN "[icscf]\nports = 5070\nhss_error_status = 500\n",
         IMS_EINVAL, "480 or 503");
    load("[core]\nroles = scscf,hss\n" LISTEN "[scscf]\nports = 6060\n"
         "digest_algorithms = SHA-256,MD4\n",
         IMS_EINVAL, "MD4");
    load("[pcscf]\nports = 70000\n", IMS_EINVAL, "not a port");
    load("[pcscf]\nports = 5060,5060\n", IMS_EINVAL, "twice");
    load("[icscf]\nscscf = s1.test 1\n", IMS_EINVAL, "sip:uri");
    load("[icscf]\nscscf = sip:s1.test one\n", IMS_EINVAL, "not a number");
    load("[scscf]\nmin_expires = 100\nmax_expires = 50\n", IMS_EINVAL, "max_expires");
    /* a CSCF without the hss role but with a peer is fine */
    struct ims_cfg *c = load("[core]\nroles = icscf\n" LISTEN "[icscf]\nports = 5070\n"
                             "[diameter]\npeer = hss.test 127.0.0.1:3868\n",
                             0, NULL);
    ims_cfg_free(c);
}

int run_config_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
