/* test_alloc.c - fault injection in base/alloc.c: nothing is counted until
 * a test asks (the production path is one relaxed load), then the Nth
 * allocation fails, once or from then on, counted over every thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/alloc.h"

/* Runs first, before any ims_alloc_fail_at() in this process. */
static void t_off_until_asked(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++)
        ims_free(ims_alloc(16));
    assert_int_equal(ims_alloc_count(), 0);
}

static void t_fail_nth(void **state)
{
    (void)state;
    ims_alloc_fail_at(3, 0);
    void *a = ims_alloc(8), *b = ims_calloc(2, 8), *c = ims_alloc(8), *d = ims_strndup("x", 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c); /* the third, only */
    assert_non_null(d);
    assert_int_equal(ims_alloc_count(), 4);
    void *e = ims_realloc(d, 64);
    assert_non_null(e);
    ims_free(a);
    ims_free(b);
    ims_free(e);
    ims_alloc_fail_at(2, 1); /* sticky: the second and every later one */
    a = ims_alloc(8);
    assert_non_null(a);
    assert_null(ims_alloc(8));
    assert_null(ims_calloc(1, 8));
    assert_null(ims_realloc(a, 128)); /* a untouched */
    ims_alloc_fail_at(0, 0);
    ims_free(a);
    /* disabled again, but counting on: tests size their loops with it */
    for (int i = 0; i < 10; i++)
        ims_free(ims_alloc(1));
    assert_int_equal(ims_alloc_count(), 10);
    assert_null(ims_calloc(SIZE_MAX / 2, 4)); /* overflow, not counted as a failure */
}

static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000; i++)
        ims_free(ims_alloc(32));
    return NULL;
}

/* Counted over every thread. */
static void t_threads(void **state)
{
    (void)state;
    ims_alloc_fail_at(0, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(ims_alloc_count(), 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_off_until_asked),
        cmocka_unit_test(t_fail_nth),
        cmocka_unit_test(t_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
