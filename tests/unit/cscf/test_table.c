/* test_table.c - the CSCF stores' sharded table (src/cscf/table.h): a
 * sweep sees every entry exactly once, removes what its visitor clears,
 * and the per-shard counts it stops on stay right through inserts and
 * removals by cscf_table_with() and by sweeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cscf/table.h"

#define N 2000

static int put(void **val, bool room, void *ctx)
{
    if (!room)
        return IMS_ELIMIT;
    *val = ctx;
    return 0;
}

static int del(void **val, bool room, void *ctx)
{
    (void)room;
    (void)ctx;
    *val = NULL;
    return 0;
}

struct seen {
    unsigned char hits[N];
    int drop_mod; /* clear entries whose number % drop_mod == 0; 0: none */
    size_t visits;
};

static void visit(ims_str key, void **val, void *ctx)
{
    struct seen *s = ctx;
    int k = 0; /* the key is "k<number>", not NUL-terminated */
    for (size_t i = 1; i < key.len; i++)
        k = 10 * k + (key.p[i] - '0');
    assert_true(k >= 0 && k < N);
    assert_ptr_equal(*val, (void *)&s->hits[k]);
    s->hits[k]++;
    s->visits++;
    if (s->drop_mod && k % s->drop_mod == 0)
        *val = NULL;
}

static ims_str key_of(char *b, size_t cap, int i)
{
    int n = snprintf(b, cap, "k%d", i);
    return ims_str_make(b, (size_t)n);
}

static void t_sweep_sees_all_once(void **state)
{
    (void)state;
    struct cscf_table *t = NULL;
    struct seen s;
    char b[16];
    assert_int_equal(cscf_table_new(8, N, NULL, &t), 0);
    memset(&s, 0, sizeof(s));
    cscf_table_sweep(t, 0, 1, visit, &s); /* empty */
    assert_int_equal(s.visits, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), i), put, &s.hits[i]), 0);
    assert_int_equal(cscf_table_count(t), N);
    /* two workers' halves (first/step) together see each entry once;
     * the visitor drops every third */
    s.drop_mod = 3;
    cscf_table_sweep(t, 0, 2, visit, &s);
    cscf_table_sweep(t, 1, 2, visit, &s);
    assert_int_equal(s.visits, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(s.hits[i], 1);
    size_t left = N - (N + 2) / 3;
    assert_int_equal(cscf_table_count(t), left);
    /* removals by key, then a sweep sees exactly what is left */
    for (int i = 1; i < N; i += 3)
        assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), i), del, NULL), 0);
    left -= (N - 1 + 2) / 3;
    memset(&s, 0, sizeof(s));
    cscf_table_sweep(t, 0, 1, visit, &s);
    assert_int_equal(s.visits, left);
    for (int i = 0; i < N; i++)
        assert_int_equal(s.hits[i], i % 3 == 2 ? 1 : 0);
    /* re-insert some: seen again */
    for (int i = 0; i < N; i += 3)
        assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), i), put, &s.hits[i]), 0);
    memset(&s, 0, sizeof(s));
    s.drop_mod = 1; /* and drop everything */
    cscf_table_sweep(t, 0, 1, visit, &s);
    assert_int_equal(s.visits, left + (N + 2) / 3);
    assert_int_equal(cscf_table_count(t), 0);
    memset(&s, 0, sizeof(s));
    cscf_table_sweep(t, 0, 1, visit, &s);
    assert_int_equal(s.visits, 0);
    cscf_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_sweep_sees_all_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
