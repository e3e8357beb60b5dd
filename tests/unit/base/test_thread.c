/* test_thread.c - base/thread.h: the thread runs its function and carries
 * its name once ims_thread_start returned, a long name cut to what the
 * kernel keeps. */
#define _GNU_SOURCE /* pthread_getname_np */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "base/thread.h"

/* runs until the test has read its name */
static void *wait_go(void *arg)
{
    sem_wait(arg);
    return arg;
}

static void name_of(const char *name, char got[IMS_THREAD_NAME_MAX])
{
    sem_t go;
    pthread_t t;
    void *ret = NULL;
    assert_int_equal(sem_init(&go, 0, 0), 0);
    assert_int_equal(ims_thread_start(&t, name, wait_go, &go), 0);
    assert_int_equal(pthread_getname_np(t, got, IMS_THREAD_NAME_MAX), 0);
    sem_post(&go);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, &go);
    sem_destroy(&go);
}

static void test_named(void **state)
{
    (void)state;
    char got[IMS_THREAD_NAME_MAX];
    name_of("ims-w1", got);
    assert_string_equal(got, "ims-w1");
    name_of("ims-a-name-longer-than-15", got);
    assert_string_equal(got, "ims-a-name-long");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_named) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
