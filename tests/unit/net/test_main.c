/* test_main.c - runs every src/net test group in one executable. */
#include <stdlib.h>

#include "base/log.h"
#include "net_test.h"

int main(void)
{
    /* Quiet by default: the tests provoke warnings on purpose.
     * IMS_TEST_LOG=debug shows them. */
    enum ims_log_level lvl = IMS_LOG_ERR;
    const char *env = getenv("IMS_TEST_LOG");
    if (env)
        (void)ims_log_level_parse(env, &lvl);
    ims_log_set_level(lvl);
    int failed = 0;
    failed += run_addr_tests();
    failed += run_transport_tests();
    failed += run_tls_tests();
    failed += run_resolve_tests();
    failed += run_stun_tests();
    return failed ? 1 : 0;
}
