#include <stdlib.h>
#include <string.h>

#include "tests.h"

int main(void)
{
    int failed = 0;
    failed += _cmocka_run_group_tests("str", str_tests, str_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("buf", buf_tests, buf_ntests, NULL, NULL);
    return failed ? 1 : 0;
}
