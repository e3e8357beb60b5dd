/* test_alloc.c - fault injection in base/alloc.c: nothing is counted until
 * a test asks (the production path is one relaxed load), then the Nth
 * allocation fails, once or from then on, counted over every thread; and
 * ims_wipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

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

/* After ims_alloc_tune_server() the main arena keeps 2 MiB freed at its
 * top (mallinfo2's keepcost, the releasable top) where glibc's default
 * 128 KiB trim threshold gave it back; an operator's GLIBC_TUNABLES
 * threshold is left alone.  Not under ASan: its allocator is not glibc's. */
static void t_tune_server_keeps_top(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip();
#else
    const char *old = getenv("GLIBC_TUNABLES");
    setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072", 1);
    assert_false(ims_alloc_tune_server());
    unsetenv("GLIBC_TUNABLES");
    assert_true(ims_alloc_tune_server());
    if (old)
        setenv("GLIBC_TUNABLES", old, 1);
    enum { N = 512, SZ = 4096 }; /* 2 MiB in blocks below the mmap threshold */
    static void *blk[N];
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(SZ);
        assert_non_null(blk[i]);
        memset(blk[i], 1, SZ);
    }
    for (int i = N - 1; i >= 0; i--)
        free(blk[i]);
    assert_true(mallinfo2().keepcost >= (size_t)N * SZ - 65536);
#endif
}

/* ims_wipe zeroes exactly the bytes asked, at any alignment and length
 * (the secrets it clears sit at odd offsets inside structs). */
static void t_wipe(void **state)
{
    (void)state;
    unsigned char b[300];
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 200; n += 7) {
            memset(b, 0xA5, sizeof(b));
            ims_wipe(b + off, n);
            for (size_t i = 0; i < sizeof(b); i++)
                assert_int_equal(b[i], i >= off && i < off + n ? 0 : 0xA5);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_off_until_asked),
        cmocka_unit_test(t_fail_nth),
        cmocka_unit_test(t_threads),
        cmocka_unit_test(t_tune_server_keeps_top),
        cmocka_unit_test(t_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
