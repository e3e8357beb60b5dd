/* The store suite runs against one backend per process: "sqlite" (the
 * default, label unit) or "pg" (label e2e-pg; needs IMS_TEST_PG_DSN from
 * tests/e2e/pg-run.sh).  Without a DSN the pg run exits 77 (skipped),
 * except under CI=true, where it fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store_tests.h"

bool test_pg;

int main(int argc, char **argv)
{
    int failed = 0;
    const char *backend = argc > 1 ? argv[1] : "sqlite";
    ims_log_set_level(IMS_LOG_ERR);
    if (!strcmp(backend, "pg")) {
        const char *dsn = getenv("IMS_TEST_PG_DSN");
        if (!dsn || !*dsn) {
            const char *ci = getenv("CI");
            fprintf(stderr, "test_store pg: IMS_TEST_PG_DSN is not set%s\n",
                    ci && !strcmp(ci, "true") ? " (CI=true: failing)" : "; skipped");
            return ci && !strcmp(ci, "true") ? 1 : 77;
        }
        test_pg = true;
    } else if (strcmp(backend, "sqlite") != 0) {
        fprintf(stderr, "usage: %s [sqlite|pg]\n", argv[0]);
        return 2;
    }
    failed += _cmocka_run_group_tests(test_pg ? "store_pg" : "store_sqlite", store_tests,
                                      store_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "secrets_pg" : "secrets_sqlite", secrets_tests,
                                      secrets_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "io_pg" : "io_sqlite", io_tests, io_ntests, NULL,
                                      NULL);
    failed += _cmocka_run_group_tests(test_pg ? "hss_auth_pg" : "hss_auth_sqlite", hss_auth_tests,
                                      hss_auth_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "exec_pg" : "exec_sqlite", exec_tests,
                                      exec_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "durable_pg" : "durable_sqlite", durable_tests,
                                      durable_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "sqn_gen_pg" : "sqn_gen_sqlite", sqn_gen_tests,
                                      sqn_gen_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests(test_pg ? "cache_pg" : "cache_sqlite", cache_tests,
                                      cache_ntests, NULL, NULL);
    return failed ? 1 : 0;
}
