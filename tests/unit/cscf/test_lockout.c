/* test_lockout - src/cscf/lockout.c: the counting, the three keys, the
 * exponential backoff and the expiry, on explicit clocks (no sleeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "cscf/cscf_int.h"

#define S(x) ims_str_cstr(x)

static struct cscf_lockout *mk(unsigned impi_n, unsigned src_n)
{
    struct cscf_lockout_cfg c = {
        .impi_failures = impi_n,
        .source_failures = src_n,
        .window_s = 600,
        .time_s = 60,
        .max_time_s = 200,
        .max_entries = 100,
    };
    struct cscf_lockout *lk = NULL;
    assert_int_equal(cscf_lockout_new(&c, &lk), 0);
    return lk;
}

/* n failures of impi from src at now; returns the locks they started (and
 * their durations) */
static unsigned fails(struct cscf_lockout *lk, const char *impi, const char *src, int n,
                     int64_t now, unsigned *is, unsigned *ss)
{
    unsigned w = 0, a, b;
    *is = *ss = 0;
    for (int i = 0; i < n; i++) {
        w |= cscf_lockout_failed(lk, S(impi), S(src), now, &a, &b);
        *is = a ? a : *is;
        *ss = b ? b : *ss;
    }
    return w;
}

static void test_impi_lock_binds_failing_sources(void **state)
{
    (void)state;
    struct cscf_lockout *lk = mk(3, 100);
    unsigned is, ss;
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 2, 1000, &is, &ss), 0);
    assert_false(cscf_lockout_blocked(lk, S("a@x"), S("10.0.0.1"), 1000));
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 1, 1000, &is, &ss), CSCF_LOCK_IMPI);
    assert_int_equal(is, 60);
    /* the failing source is bound, a clean one is not, nor another IMPI */
    assert_true(cscf_lockout_blocked(lk, S("a@x"), S("10.0.0.1"), 2000));
    assert_false(cscf_lockout_blocked(lk, S("a@x"), S("10.0.0.2"), 2000));
    assert_false(cscf_lockout_blocked(lk, S("b@x"), S("10.0.0.1"), 2000));
    /* no address: bound (nothing tells it from the attacker) */
    assert_true(cscf_lockout_blocked(lk, S("a@x"), IMS_STR_NULL, 2000));
    /* a new source's first failure binds it too */
    fails(lk, "a@x", "10.0.0.3", 1, 3000, &is, &ss);
    assert_true(cscf_lockout_blocked(lk, S("a@x"), S("10.0.0.3"), 3000));
    /* the lock ends with its time */
    assert_false(cscf_lockout_blocked(lk, S("a@x"), S("10.0.0.1"), 1000 + 60000));
    cscf_lockout_free(lk);
}

static void test_source_lock_binds_every_impi(void **state)
{
    (void)state;
    struct cscf_lockout *lk = mk(100, 4);
    unsigned is, ss;
    fails(lk, "a@x", "10.0.0.9", 2, 0, &is, &ss);
    assert_int_equal(fails(lk, "b@x", "10.0.0.9", 2, 0, &is, &ss), CSCF_LOCK_SOURCE);
    assert_int_equal(ss, 60);
    assert_true(cscf_lockout_blocked(lk, S("c@x"), S("10.0.0.9"), 10));
    assert_false(cscf_lockout_blocked(lk, S("c@x"), S("10.0.0.8"), 10));
    uint64_t locks, blocked;
    cscf_lockout_stats(lk, &locks, &blocked);
    assert_int_equal(locks, 1);
    assert_int_equal(blocked, 1);
    cscf_lockout_free(lk);
}

static void test_backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    struct cscf_lockout *lk = mk(2, 0);
    unsigned is, ss;
    int64_t now = 0;
    unsigned want[] = { 60, 120, 200, 200 };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fails(lk, "a@x", "10.0.0.1", 2, now, &is, &ss), CSCF_LOCK_IMPI);
        assert_int_equal(is, want[i]);
        /* failures during a running lock do not start another */
        assert_int_equal(fails(lk, "a@x", "10.0.0.1", 2, now + 1, &is, &ss), 0);
        now += (int64_t)want[i] * 1000;
    }
    cscf_lockout_free(lk);
}

static void test_window_and_success_reset(void **state)
{
    (void)state;
    struct cscf_lockout *lk = mk(3, 0);
    unsigned is, ss;
    fails(lk, "a@x", "10.0.0.1", 2, 0, &is, &ss);
    /* a new window: the count starts again */
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 2, 600000, &is, &ss), 0);
    /* the right password resets the IMPI's count */
    cscf_lockout_succeeded(lk, S("a@x"), S("10.0.0.2"));
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 2, 600001, &is, &ss), 0);
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 1, 600002, &is, &ss), CSCF_LOCK_IMPI);
    cscf_lockout_free(lk);
}

static void test_expiry(void **state)
{
    (void)state;
    struct cscf_lockout *lk = mk(1, 1);
    unsigned is, ss;
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 1, 0, &is, &ss),
                     CSCF_LOCK_IMPI | CSCF_LOCK_SOURCE);
    /* quiet for max(window, max_time) after the lock: forgotten, level too */
    cscf_lockout_expire(lk, 0, 1, 60000 + 600000);
    assert_int_equal(fails(lk, "a@x", "10.0.0.1", 1, 700000, &is, &ss),
                     CSCF_LOCK_IMPI | CSCF_LOCK_SOURCE);
    assert_int_equal(is, 60);
    cscf_lockout_free(lk);
}

/* [limits] impi_rate: a token bucket per IMPI, on the caller's clock */
static void test_impi_rate(void **state)
{
    (void)state;
    struct cscf_lockout_cfg c = {
        .window_s = 600, .time_s = 60, .max_time_s = 200, .max_entries = 100,
        .impi_rate = 2, .impi_burst = 3,
    };
    struct cscf_lockout *lk = NULL;
    assert_int_equal(cscf_lockout_new(&c, &lk), 0);
    /* a full bucket: three at once, the fourth is over */
    for (int i = 0; i < 3; i++)
        assert_false(cscf_lockout_rate_over(lk, S("a@x"), 1000));
    assert_true(cscf_lockout_rate_over(lk, S("a@x"), 1000));
    assert_false(cscf_lockout_rate_over(lk, S("b@x"), 1000)); /* its own bucket */
    /* two a second: not one more before 500 ms, one by 600 ms */
    assert_true(cscf_lockout_rate_over(lk, S("a@x"), 1499));
    assert_false(cscf_lockout_rate_over(lk, S("a@x"), 1600));
    assert_true(cscf_lockout_rate_over(lk, S("a@x"), 1600));
    /* a long pause refills to the burst, no further */
    for (int i = 0; i < 3; i++)
        assert_false(cscf_lockout_rate_over(lk, S("a@x"), 100000));
    assert_true(cscf_lockout_rate_over(lk, S("a@x"), 100000));
    cscf_lockout_free(lk);
    /* impi_rate 0: never over */
    c.impi_rate = 0;
    assert_int_equal(cscf_lockout_new(&c, &lk), 0);
    for (int i = 0; i < 10; i++)
        assert_false(cscf_lockout_rate_over(lk, S("a@x"), 1000));
    cscf_lockout_free(lk);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct cscf_lockout_cfg c = { .impi_failures = 1, .window_s = 1, .time_s = 10,
                                  .max_time_s = 5, .max_entries = 1 };
    struct cscf_lockout *lk = NULL;
    assert_int_equal(cscf_lockout_new(&c, &lk), IMS_EINVAL);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impi_lock_binds_failing_sources),
        cmocka_unit_test(test_source_lock_binds_every_impi),
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_window_and_success_reset),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_impi_rate),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
