/* test_cscf - the CSCF roles' unit tests (see CMakeLists.txt). */
#include <libxml/parser.h>

#include "base/log.h"
#include "cscf_tests.h"

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    xmlInitParser();
    int failed = 0;
    failed += run_auth_tests();
    failed += run_registrar_tests();
    failed += run_profile_tests();
    failed += run_sipx_tests();
    failed += run_pcscf_tests();
    failed += run_config_tests();
    failed += run_roles_tests();
    xmlCleanupParser();
    return failed ? 1 : 0;
}
