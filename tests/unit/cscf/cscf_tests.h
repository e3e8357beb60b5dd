/* cscf_tests.h - the test groups of test_cscf (one per file). */
#ifndef IMS_TEST_CSCF_TESTS_H
#define IMS_TEST_CSCF_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

int run_auth_tests(void);
int run_registrar_tests(void);
int run_profile_tests(void);
int run_sipx_tests(void);
int run_pcscf_tests(void);
int run_config_tests(void);
int run_roles_tests(void);

#endif
