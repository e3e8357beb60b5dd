#include <stdlib.h>
#include <string.h>

#include "sip_tests.h"

int main(void)
{
    int failed = 0;
    failed += _cmocka_run_group_tests("sip_uri", uri_tests, uri_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_nameaddr", nameaddr_tests, nameaddr_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_via", via_tests, via_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_auth", auth_tests, auth_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_misc", misc_tests, misc_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_msg", msg_tests, msg_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_corpus", corpus_tests, corpus_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("sip_build", build_tests, build_ntests, NULL, NULL);
    return failed ? 1 : 0;
}
