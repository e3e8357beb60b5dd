#include <string.h>

#include "base/log.h"
#include "crypto/encode.h"
#include "tests.h"

void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(ims_hex_decode(ims_str_cstr(hex), out, n), 0);
}

int main(void)
{
    int failed = 0;
    ims_log_set_level(IMS_LOG_WARN);
    failed += _cmocka_run_group_tests("milenage", milenage_tests, milenage_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("aka", aka_tests, aka_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("digest", digest_tests, digest_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("keyrepo", keyrepo_tests, keyrepo_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("mac", mac_tests, mac_ntests, NULL, NULL);
    return failed ? 1 : 0;
}
