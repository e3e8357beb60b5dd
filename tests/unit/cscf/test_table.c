/* test_table.c - the CSCF stores' sharded table (src/cscf/table.h): a
 * sweep sees every entry exactly once, removes what its visitor clears,
 * and the per-shard counts it stops on stay right through inserts and
 * removals by cscf_table_with() and by sweeps.  A sweep of what is due
 * (cscf_table_sweep_due) visits each entry at its due time and not before,
 * follows due times moved by updates either way, comes back next second to
 * what its visitor kept while due, survives the clock going back, and
 * never touches an entry removed by key (ASan).  The empty key is a key. */
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

/* ---- sweeps of what is due ---- */

#define M 300

struct item {
    int64_t due;
    unsigned visits;
    int64_t visited_at; /* the sweep's time of the last visit */
    bool keep;          /* the visitor keeps it (else it goes) */
};

struct due_run {
    struct item it[M];
    int64_t now;
    size_t visits;
};

static int64_t item_due(const void *val, void *ctx)
{
    (void)ctx;
    return ((const struct item *)val)->due;
}

static void due_visit(ims_str key, void **val, void *ctx)
{
    (void)key;
    struct due_run *r = ctx;
    struct item *it = *val;
    /* only what is due */
    assert_true(it->due <= r->now);
    it->visits++;
    it->visited_at = r->now;
    r->visits++;
    if (!it->keep)
        *val = NULL;
}

struct set_due {
    struct item *it;
    int64_t due;
};

static int set_due_fn(void **val, bool room, void *ctx)
{
    struct set_due *x = ctx;
    if (!*val && !room)
        return IMS_ELIMIT;
    x->it->due = x->due;
    *val = x->it;
    return 0;
}

static void put_due(struct cscf_table *t, struct due_run *r, int i, int64_t due)
{
    char b[16];
    struct set_due x = { &r->it[i], due };
    assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), i), set_due_fn, &x), 0);
}

static void reset_counts(struct due_run *r)
{
    for (int i = 0; i < M; i++) {
        r->it[i].visits = 0;
        r->it[i].visited_at = 0;
    }
    r->visits = 0;
}

/* every second from `from` to `to`, both workers' halves */
static void sweep_until(struct cscf_table *t, struct due_run *r, int64_t from, int64_t to)
{
    for (r->now = from; r->now <= to; r->now++) {
        cscf_table_sweep_due(t, 0, 2, r->now, due_visit, r);
        cscf_table_sweep_due(t, 1, 2, r->now, due_visit, r);
    }
}

static void t_sweep_due(void **state)
{
    (void)state;
    struct cscf_table *t = NULL;
    struct due_run *r = calloc(1, sizeof(*r));
    const int64_t T0 = 1700000000;
    assert_int_equal(cscf_table_new(8, M, NULL, &t), 0);
    assert_int_equal(cscf_table_set_due(t, item_due, NULL), 0);
    assert_int_equal(cscf_table_set_due(t, item_due, NULL), IMS_EINVAL); /* once */
    sweep_until(t, r, T0, T0 + 2); /* empty */
    /* due times from 1 s to ~20 min ahead (several turns of the wheel),
     * some never; item i due at T0 + 4 * i + 3 */
    for (int i = 0; i < M; i++)
        put_due(t, r, i, i % 10 == 9 ? INT64_MAX : T0 + 4 * i + 3);
    /* item 0's due moves later, item 1's earlier (both after a first
     * placement); item 2 is kept by its visitor while still due */
    put_due(t, r, 0, T0 + 500);
    put_due(t, r, 1, T0 + 5);
    r->it[2].keep = true;
    sweep_until(t, r, T0 + 3, T0 + 4 * M + 10);
    for (int i = 0; i < M; i++) {
        const struct item *it = &r->it[i];
        if (i % 10 == 9) {
            assert_int_equal(it->visits, 0);
        } else if (i == 2) {
            /* kept while due: visited every second from its due time */
            assert_int_equal(it->visited_at, T0 + 4 * M + 10);
            assert_int_equal(it->visits, T0 + 4 * M + 10 - (T0 + 11) + 1);
        } else {
            int64_t want = i == 0 ? T0 + 500 : i == 1 ? T0 + 5 : T0 + 4 * i + 3;
            assert_int_equal(it->visits, 1);
            assert_int_equal(it->visited_at, want);
        }
    }
    /* what is left: item 2 and the never-due ones */
    assert_int_equal(cscf_table_count(t), 1 + M / 10);
    /* removal by key of an entry in the wheel, then sweeps over its slot */
    char b[16];
    r->it[2].keep = false;
    assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), 2), del, NULL), 0);
    put_due(t, r, 3, T0 + 4 * M + 20);
    assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), 3), del, NULL), 0);
    reset_counts(r);
    sweep_until(t, r, T0 + 4 * M + 11, T0 + 4 * M + 30);
    assert_int_equal(r->visits, 0);
    /* the clock goes back an hour: an entry due soon by the new clock is
     * visited at its time, not an hour later */
    int64_t back = T0 + 4 * M + 30 - 3600;
    put_due(t, r, 4, back + 10);
    sweep_until(t, r, back, back + 10);
    assert_int_equal(r->it[4].visits, 1);
    assert_int_equal(r->it[4].visited_at, back + 10);
    /* a whole sweep still sees everything; one that clears it removes it
     * from the wheel too (the next sweeps of its slot find nothing) */
    reset_counts(r);
    put_due(t, r, 5, back + 20);
    r->now = INT64_MAX; /* the whole sweep visits regardless of due */
    cscf_table_sweep(t, 0, 1, due_visit, r);
    assert_int_equal(r->visits, 1 + M / 10); /* item 5 and the never-due ones */
    assert_int_equal(cscf_table_count(t), 0);
    reset_counts(r);
    sweep_until(t, r, back + 11, back + 30);
    assert_int_equal(r->visits, 0);
    assert_int_equal(cscf_table_set_due(t, item_due, NULL), IMS_EINVAL);
    cscf_table_free(t);
    /* without a due function, sweep_due sweeps everything */
    struct seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(cscf_table_new(4, N, NULL, &t), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cscf_table_with(t, key_of(b, sizeof(b), i), put, &s.hits[i]), 0);
    cscf_table_sweep_due(t, 0, 1, 0, visit, &s);
    assert_int_equal(s.visits, 10);
    /* and a due function comes only before the first entry */
    assert_int_equal(cscf_table_set_due(t, item_due, NULL), IMS_EINVAL);
    cscf_table_free(t);
    free(r);
}

static int peek(void **val, bool room, void *ctx)
{
    (void)room;
    *(void **)ctx = *val;
    return 0;
}

/* The empty key (a NULL view: ims_str_make) is a key like another: stored,
 * found again, removed; the lookup compared it with memcmp(NULL, ...),
 * undefined even for no bytes (UBSan; fuzz_cscf found an empty IMPI's
 * decoy challenge doing it). */
static void t_empty_key(void **state)
{
    (void)state;
    struct cscf_table *t = NULL;
    int a = 0, b = 0;
    void *got = NULL;
    assert_int_equal(cscf_table_new(2, 16, NULL, &t), 0);
    assert_int_equal(cscf_table_with(t, IMS_STR_NULL, put, &a), 0);
    assert_int_equal(cscf_table_with(t, IMS_S(""), peek, &got), 0);
    assert_ptr_equal(got, &a);
    assert_int_equal(cscf_table_with(t, IMS_STR_NULL, put, &b), 0); /* replaced, not added */
    assert_int_equal(cscf_table_count(t), 1);
    assert_int_equal(cscf_table_with(t, IMS_STR_NULL, del, NULL), 0);
    assert_int_equal(cscf_table_count(t), 0);
    cscf_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_sweep_sees_all_once),
        cmocka_unit_test(t_sweep_due),
        cmocka_unit_test(t_empty_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
