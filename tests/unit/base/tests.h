#ifndef IMS_TEST_BASE_TESTS_H
#define IMS_TEST_BASE_TESTS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

extern const struct CMUnitTest str_tests[];
extern const size_t str_ntests;
extern const struct CMUnitTest buf_tests[];
extern const size_t buf_ntests;
#endif
