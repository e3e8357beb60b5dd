/* test_exec.c - store/exec.h: store work on store threads, completions on
 * the loop, the callback rule, the queue cap, draining at free. */
#include <pthread.h>
#include <string.h>

#include "crypto/aka.h"
#include "ev/loop.h"
#include "store/exec.h"
#include "store_tests.h"

#define JOBS 40

struct req {
    struct ims_store_job job;
    struct world *w;
    uint64_t sqn;
    int rc;
    bool done;
};

struct world {
    struct ims_loop *loop;
    pthread_t loop_thread;
    size_t completed;
    bool in_submit;
    bool done_in_submit;
    bool done_off_loop;
    struct req reqs[JOBS];
};

static int next_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    return ims_aka_sqn_next(cur, next);
}

static int work_alloc(struct ims_store *st, void *arg)
{
    struct req *r = arg;
    return ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &r->sqn);
}

static void done_cb(struct ims_loop *loop, int rc, void *arg)
{
    struct req *r = arg;
    struct world *w = r->w;
    if (w->in_submit)
        w->done_in_submit = true;
    if (!pthread_equal(pthread_self(), w->loop_thread))
        w->done_off_loop = true;
    r->rc = rc;
    r->done = true;
    if (++w->completed == JOBS)
        ims_loop_stop(loop);
}

static void test_jobs_complete_on_loop(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = NULL;
    static struct world w;
    memset(&w, 0, sizeof(w));
    provision(f->st, "alice", "alice@ims.test", NULL, NULL, NULL, NULL);
    assert_int_equal(ims_loop_new(64, &w.loop), 0);
    w.loop_thread = pthread_self();
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 2, JOBS, &x), 0);
    for (int i = 0; i < JOBS; i++) {
        w.reqs[i].w = &w;
        w.in_submit = true;
        assert_int_equal(ims_store_exec_submit(x, w.loop, &w.reqs[i].job, work_alloc, done_cb,
                                               NULL, &w.reqs[i]),
                         0);
        w.in_submit = false;
    }
    assert_int_equal(ims_loop_run(w.loop), 0);
    assert_int_equal(w.completed, JOBS);
    assert_false(w.done_in_submit);
    assert_false(w.done_off_loop);
    /* every job got its own SQN */
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(w.reqs[i].rc, 0);
        for (int j = 0; j < i; j++)
            assert_true(w.reqs[i].sqn != w.reqs[j].sqn);
    }
    ims_store_exec_free(x);
    ims_loop_free(w.loop);
}

/* A work function that waits until released, to fill the queue. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open, gate_entered;

static int work_gate(struct ims_store *st, void *arg)
{
    pthread_mutex_lock(&gate_mu);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return 7;
}

static void done_count(struct ims_loop *loop, int rc, void *arg)
{
    struct req *r = arg;
    r->rc = rc;
    r->done = true;
}

static int cancelled;
static void cancel_count(void *arg)
{
    cancelled++;
}

static void test_queue_cap_and_drain(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = NULL;
    struct ims_loop *loop = NULL;
    struct req r[4];
    memset(r, 0, sizeof(r));
    gate_open = gate_entered = false;
    cancelled = 0;
    assert_int_equal(ims_loop_new(64, &loop), 0);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 2, &x), 0);
    /* one job runs (blocked), two wait, the fourth is refused */
    assert_int_equal(ims_store_exec_submit(x, loop, &r[0].job, work_gate, done_count,
                                           cancel_count, &r[0]),
                     0);
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    for (int i = 1; i < 3; i++)
        assert_int_equal(ims_store_exec_submit(x, loop, &r[i].job, work_gate, done_count,
                                               cancel_count, &r[i]),
                         0);
    assert_int_equal(ims_store_exec_submit(x, loop, &r[3].job, work_gate, done_count,
                                           cancel_count, &r[3]),
                     IMS_ELIMIT);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    /* free drains: all three accepted jobs ran; their completions are posted */
    ims_store_exec_free(x);
    for (int i = 0; i < 3; i++)
        assert_false(r[i].done); /* not yet: the loop has not run */
    /* the loop is freed without running: cancel replaces done, once each */
    ims_loop_free(loop);
    assert_int_equal(cancelled, 3);
    for (int i = 0; i < 4; i++)
        assert_false(r[i].done);
}

static void test_bad_args(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = NULL;
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 0, 1, &x), IMS_EINVAL);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 0, &x), IMS_EINVAL);
    assert_int_equal(ims_store_exec_new("nosuch:", f->repo, 1, 1, &x), IMS_EINVAL);
    assert_null(x);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest exec_tests[] = {
    T(test_jobs_complete_on_loop),
    T(test_queue_cap_and_drain),
    T(test_bad_args),
};
const size_t exec_ntests = sizeof(exec_tests) / sizeof(exec_tests[0]);
