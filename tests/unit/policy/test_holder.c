/* test_holder.c - the replaceable policy (src/policy/holder.h): a reload
 * swaps the policy for new takers while a taken reference keeps the old
 * one; a bad file keeps the current one and names file:line; readers on
 * several threads race a reloading thread (ASan/UBSan see the lifetimes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "policy/holder.h"
#include "policy/policy.h"

static const char *const member[] = { "member" };
static const struct ims_policy_creds bob = { .user_id = "bob", .roles = member, .n_roles = 1 };

struct files {
    char dir[64], allow[96], deny[96], bad[96];
};

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct files *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_holder.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->allow, sizeof(f->allow), "%s/allow.yaml", f->dir);
    snprintf(f->deny, sizeof(f->deny), "%s/deny.yaml", f->dir);
    snprintf(f->bad, sizeof(f->bad), "%s/bad.yaml", f->dir);
    put_file(f->allow, "\"ims:subscribe\": \"role:member\"\n");
    put_file(f->deny, "\"ims:subscribe\": \"role:admin\"\n\"default\": \"!\"\n");
    put_file(f->bad, "\"ims:subscribe\": \"role:member\"\n\"x\": [\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct files *f = *state;
    unlink(f->allow);
    unlink(f->deny);
    unlink(f->bad);
    rmdir(f->dir);
    free(f);
    return 0;
}

static bool allows(struct ims_policy_holder *h)
{
    struct ims_policy_ref *r = ims_policy_holder_get(h);
    assert_non_null(r);
    bool ok = ims_policy_enforce(ims_policy_ref_policy(r), "ims:subscribe", &bob, NULL, NULL);
    ims_policy_ref_put(r);
    return ok;
}

static void test_swap_and_keep(void **state)
{
    struct files *f = *state;
    struct ims_policy_holder *h = NULL;
    char err[256];
    size_t n = 0;
    assert_int_equal(ims_policy_holder_new(&h), 0);
    assert_null(ims_policy_holder_get(h)); /* nothing loaded yet */
    assert_int_equal(ims_policy_holder_load(h, f->allow, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_true(allows(h));

    /* a request judging while the reload happens keeps its policy */
    struct ims_policy_ref *old = ims_policy_holder_get(h);
    assert_int_equal(ims_policy_holder_load(h, f->deny, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_false(allows(h));
    assert_true(ims_policy_enforce(ims_policy_ref_policy(old), "ims:subscribe", &bob, NULL, NULL));
    ims_policy_ref_put(old); /* the last reference: freed here (ASan: no leak) */

    /* a bad file: the current policy stays, the error names file:line */
    err[0] = '\0';
    assert_int_not_equal(ims_policy_holder_load(h, f->bad, &n, err, sizeof(err)), 0);
    char want[128];
    snprintf(want, sizeof(want), "%s:2", f->bad);
    assert_non_null(strstr(err, want));
    assert_false(allows(h));
    assert_int_not_equal(ims_policy_holder_load(h, "/nonexistent/p.yaml", NULL, err, sizeof(err)),
                         0);
    assert_false(allows(h));
    ims_policy_holder_free(h);
    ims_policy_holder_free(NULL);
    ims_policy_ref_put(NULL);
}

struct race {
    struct ims_policy_holder *h;
    atomic_bool stop;
    atomic_ulong judged;
};

static void *reader(void *arg)
{
    struct race *x = arg;
    while (!atomic_load(&x->stop)) {
        struct ims_policy_ref *r = ims_policy_holder_get(x->h);
        (void)ims_policy_enforce(ims_policy_ref_policy(r), "ims:subscribe", &bob, NULL, NULL);
        ims_policy_ref_put(r);
        atomic_fetch_add(&x->judged, 1);
    }
    return NULL;
}

static void test_race(void **state)
{
    struct files *f = *state;
    struct race x = { 0 };
    char err[256];
    assert_int_equal(ims_policy_holder_new(&x.h), 0);
    assert_int_equal(ims_policy_holder_load(x.h, f->allow, NULL, err, sizeof(err)), 0);
    pthread_t t[3];
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &x), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(
            ims_policy_holder_load(x.h, i % 2 ? f->allow : f->deny, NULL, err, sizeof(err)), 0);
    atomic_store(&x.stop, true);
    for (size_t i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&x.judged) > 0);
    assert_true(allows(x.h)); /* the last load (i = 199, odd) was the allowing file */
    ims_policy_holder_free(x.h);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_swap_and_keep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race, setup, teardown),
    };
    return cmocka_run_group_tests_name("policy_holder", tests, NULL, NULL);
}
