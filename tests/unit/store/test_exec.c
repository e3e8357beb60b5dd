/* test_exec.c - store/exec.h: store work on store threads, completions on
 * the loop, the callback rule, the queue cap, draining at free; work on
 * the calling thread (ims_store_exec_run). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "crypto/aka.h"
#include "ev/loop.h"
#include "store/exec.h"
#include "store/store_int.h"
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
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 2, JOBS, 0, &x), 0);
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
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 2, 0, &x), 0);
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
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 0, 1, 0, &x), IMS_EINVAL);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 0, 0, &x), IMS_EINVAL);
    assert_int_equal(ims_store_exec_new("nosuch:", f->repo, 1, 1, 0, &x), IMS_EINVAL);
    assert_null(x);
}

/* Group commit: jobs queued behind a running one run as one batch (one
 * transaction); each store call stays all-or-nothing on its own (a failed
 * import inside the batch leaves nothing, the SQNs around it commit), and
 * the SQNs are durable when the completions arrive. */
#define GJOBS 18
struct greq {
    struct ims_store_job job;
    int kind; /* 0 SQN, 1 failing import, 2 unknown IMPU */
    uint64_t sqn;
    bool in_batch;
    int rc;
    bool done;
};
static size_t gdone;

static int work_group(struct ims_store *st, void *arg)
{
    struct greq *r = arg;
    r->in_batch = st->batch;
    switch (r->kind) {
    case 1: /* a valid record, then a bad one: the whole import rolls back */
        return ims_store_import(st, S("imscloud-hss-export v1\n"
                                      "profile isolated xml=PHg+PC94Pg==\n"
                                      "bogus record\nend\n"),
                                NULL);
    case 2:
        return ims_store_reg_set(st, S("sip:nobody@ims.test"), IMS_REG_REGISTERED,
                                 IMS_SCSCF_KEEP, IMS_STR_NULL, NULL);
    default:
        return ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &r->sqn);
    }
}

static void done_group(struct ims_loop *loop, int rc, void *arg)
{
    struct greq *r = arg;
    r->rc = rc;
    r->done = true;
    if (++gdone == GJOBS + 1)
        ims_loop_stop(loop);
}

static int work_gate_group(struct ims_store *st, void *arg)
{
    work_gate(st, arg);
    return 0;
}

static void test_group_commit(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = NULL;
    struct ims_loop *loop = NULL;
    struct greq r[GJOBS + 1];
    memset(r, 0, sizeof(r));
    gate_open = gate_entered = false;
    gdone = 0;
    provision(f->st, "alice", "alice@ims.test", NULL, NULL, NULL, NULL);
    assert_int_equal(ims_loop_new(64, &loop), 0);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 64, 0, &x), 0);
    assert_int_equal(ims_store_exec_submit(x, loop, &r[0].job, work_gate_group, done_group,
                                           NULL, &r[0]),
                     0);
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    for (int i = 1; i <= GJOBS; i++) {
        r[i].kind = i == 5 ? 1 : i == 9 ? 2 : 0;
        assert_int_equal(ims_store_exec_submit(x, loop, &r[i].job, work_group, done_group, NULL,
                                               &r[i]),
                         0);
    }
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(gdone, GJOBS + 1);
    assert_false(r[0].in_batch);
    uint64_t last = 0;
    for (int i = 1; i <= GJOBS; i++) {
        assert_true(r[i].done);
        assert_true(r[i].in_batch);
        if (r[i].kind == 1) {
            assert_int_equal(r[i].rc, IMS_EPROTO);
        } else if (r[i].kind == 2) {
            assert_int_equal(r[i].rc, IMS_ENOENT);
        } else {
            assert_int_equal(r[i].rc, 0);
            assert_true(r[i].sqn > last); /* in order, each its own */
            last = r[i].sqn;
        }
    }
    /* durable and visible to another connection when done ran */
    struct ims_store *other = NULL;
    struct ims_auth_data ad;
    struct ims_buf xml;
    assert_int_equal(ims_store_open(f->url, f->repo, &other), 0);
    OK(other, ims_store_auth_get(other, S("alice@ims.test"), &ad));
    assert_int_equal(ad.sqn, last);
    ims_auth_data_clear(&ad);
    ims_buf_init(&xml, 64);
    assert_int_equal(ims_store_profile_get(other, S("isolated"), &xml), IMS_ENOENT);
    ims_buf_free(&xml);
    /* the executor's store is usable alone again (no batch left open) */
    ims_store_close(other);
    ims_store_exec_free(x);
    ims_loop_free(loop);
    OK(f->st, ims_store_sqn_update(f->st, S("alice@ims.test"), next_sqn, NULL, NULL));
}

/* ---- ims_store_exec_run: work on the calling thread ---- */

#define RUNS 60
struct runner {
    struct ims_store_exec *x;
    const char *impi, *impu;
    struct ims_store *seen[RUNS]; /* the connection each run was given */
    int errors;                   /* runs or store calls that failed */
    uint64_t sqn;
};

/* runs in progress at once, over all runners; the most seen */
static atomic_int in_run, max_in_run;

static void run_enter(void)
{
    int n = atomic_fetch_add(&in_run, 1) + 1;
    int m = atomic_load(&max_in_run);
    while (n > m && !atomic_compare_exchange_weak(&max_in_run, &m, n))
        ;
    sched_yield(); /* give the other runner a chance to come in meanwhile */
}

static int work_reg(struct ims_store *st, void *arg)
{
    struct runner *r = arg;
    run_enter();
    r->seen[0] = st;
    int rc = ims_store_reg_set(st, ims_str_cstr(r->impu), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                               S("sip:scscf.ims.test"), NULL);
    atomic_fetch_sub(&in_run, 1);
    return rc;
}

/* Alternates an SQN allocation (flushed before it returns) and a lazy
 * registration write: both kinds from two threads at once. */
static int work_mixed(struct ims_store *st, void *arg)
{
    struct runner *r = arg;
    run_enter();
    int rc = ims_store_sqn_update(st, ims_str_cstr(r->impi), next_sqn, NULL, &r->sqn);
    atomic_fetch_sub(&in_run, 1);
    return rc;
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    for (int i = 0; i < RUNS; i++) {
        int wrc = -1;
        bool lazy = i % 2;
        int rc;
        /* the other runner's run: a caller with a loop would hand the job
         * over (test_hand_over); these two just try again */
        while ((rc = ims_store_exec_run(r->x, lazy ? IMS_STORE_RUN_LAZY : 0,
                                        lazy ? work_reg : work_mixed, r, &wrc)) == IMS_EAGAIN)
            sched_yield();
        if (rc || wrc)
            r->errors++;
        if (lazy)
            r->seen[i] = r->seen[0];
    }
    return NULL;
}

static int work_nothing(struct ims_store *st, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* PostgreSQL (and sqlite::memory:) refuse: the caller submits instead. */
static bool inline_refused(struct tfix *f, struct ims_store_exec *x)
{
    if (strncmp(f->url, "sqlite:", 7) == 0) {
        assert_true(ims_store_exec_inline_ok(x));
        return false;
    }
    int ran = 0, wrc = -1;
    assert_false(ims_store_exec_inline_ok(x));
    assert_int_equal(ims_store_exec_run(x, 0, work_nothing, &ran, &wrc), IMS_EINVAL);
    assert_int_equal(ran, 0);
    return true;
}

/* alice and bob provisioned, an executor with one store thread: NULL when
 * it refuses work on the calling thread (checked by inline_refused). */
static struct ims_store_exec *alice_bob_inline(struct tfix *f)
{
    struct ims_store_exec *x = NULL;
    static const char *const a_impus[] = { "sip:alice@ims.test", NULL };
    static const char *const b_impus[] = { "sip:bob@ims.test", NULL };
    provision(f->st, "alice", "alice@ims.test", NULL, NULL, NULL, a_impus);
    provision(f->st, "bob", "bob@ims.test", NULL, NULL, NULL, b_impus);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 0, &x), 0);
    if (inline_refused(f, x)) {
        ims_store_exec_free(x);
        return NULL;
    }
    return x;
}

static void test_run_two_threads(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = alice_bob_inline(f);
    if (!x)
        return;
    struct runner r[2] = {
        { .x = x, .impi = "alice@ims.test", .impu = "sip:alice@ims.test" },
        { .x = x, .impi = "bob@ims.test", .impu = "sip:bob@ims.test" },
    };
    pthread_t t[2];
    atomic_store(&max_in_run, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, runner_main, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* no SQLITE_BUSY or other error: the writers took turns */
    assert_int_equal(r[0].errors, 0);
    assert_int_equal(r[1].errors, 0);
    /* one connection for both threads (its page cache stays warm), one
     * run at a time on it */
    for (int i = 1; i < RUNS; i += 2) {
        assert_ptr_equal(r[0].seen[i], r[0].seen[1]);
        assert_ptr_equal(r[1].seen[i], r[0].seen[1]);
    }
    assert_int_equal(atomic_load(&max_in_run), 1);
    /* both committed: another connection sees every SQN and the lazy
     * registration at once (the flush is the background's business) */
    struct ims_store *other = NULL;
    struct ims_auth_data ad;
    struct ims_impu_rec rec;
    assert_int_equal(ims_store_open(f->url, f->repo, &other), 0);
    for (int i = 0; i < 2; i++) {
        OK(other, ims_store_auth_get(other, ims_str_cstr(r[i].impi), &ad));
        assert_int_equal(ad.sqn, r[i].sqn);
        ims_auth_data_clear(&ad);
        OK(other, ims_store_impu_get(other, ims_str_cstr(r[i].impu), &rec));
        assert_int_equal(rec.reg_state, IMS_REG_REGISTERED);
        assert_string_equal(rec.scscf_name, "sip:scscf.ims.test");
    }
    ims_store_close(other);
    /* the thread connections close here (ASan reports them otherwise) */
    ims_store_exec_free(x);
}

/* ims_store_exec_hand: a job that finds the inline connection in use is
 * run by the thread using it, before that one lets go, and completes on
 * the job's loop. */
struct holder {
    struct ims_store_exec *x;
    atomic_bool inside, release;
    int wrc;
};

static int work_hold(struct ims_store *st, void *arg)
{
    struct holder *h = arg;
    atomic_store(&h->inside, true);
    while (!atomic_load(&h->release))
        sched_yield();
    return ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, NULL);
}

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    int rc = ims_store_exec_run(h->x, 0, work_hold, h, &h->wrc);
    if (rc)
        h->wrc = rc;
    return NULL;
}

struct handed {
    pthread_t ran_on, done_on;
    uint64_t sqn;
    int rc;
    bool done;
};

static int work_handed(struct ims_store *st, void *arg)
{
    struct handed *j = arg;
    j->ran_on = pthread_self();
    return ims_store_sqn_update(st, S("bob@ims.test"), next_sqn, NULL, &j->sqn);
}

static void done_handed(struct ims_loop *loop, int rc, void *arg)
{
    struct handed *j = arg;
    j->done_on = pthread_self();
    j->rc = rc;
    j->done = true;
    ims_loop_stop(loop);
}

static void test_hand_over(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = alice_bob_inline(f);
    if (!x)
        return;
    struct ims_loop *loop = NULL;
    assert_int_equal(ims_loop_new(64, &loop), 0);
    struct holder h = { .x = x };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, holder_main, &h), 0);
    while (!atomic_load(&h.inside))
        sched_yield();
    /* in use: this thread is told so at once, and hands its job over */
    int ran = 0, wrc = -1;
    assert_int_equal(ims_store_exec_run(x, 0, work_nothing, &ran, &wrc), IMS_EAGAIN);
    assert_int_equal(ran, 0);
    static struct ims_store_job job;
    struct handed j = { .rc = -1 };
    assert_int_equal(ims_store_exec_hand(x, 0, loop, &job, work_handed, done_handed, NULL, &j), 0);
    assert_false(j.done);
    atomic_store(&h.release, true);
    pthread_join(t, NULL);
    assert_int_equal(h.wrc, 0);
    /* the holder ran it before it returned; the completion waits on the loop */
    assert_true(pthread_equal(j.ran_on, t));
    assert_false(j.done);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_true(j.done);
    assert_true(pthread_equal(j.done_on, pthread_self()));
    assert_int_equal(j.rc, 0);
    assert_true(j.sqn > 0);
    /* free: the connection is free again, so a hand-over runs right here */
    struct handed k = { .rc = -1 };
    assert_int_equal(ims_store_exec_hand(x, 0, loop, &job, work_handed, done_handed, NULL, &k), 0);
    assert_true(pthread_equal(k.ran_on, pthread_self()));
    assert_false(k.done);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_true(k.done);
    assert_int_equal(k.rc, 0);
    assert_true(k.sqn > j.sqn);
    ims_store_exec_free(x);
    ims_loop_free(loop);
}

/* A connection belongs to its executor: a thread that ran on one that was
 * freed gets a new connection from the next (never the closed one), and
 * work runs on the caller's thread, inside the call. */
static void test_run_per_executor(void **state)
{
    struct tfix *f = *state;
    for (int round = 0; round < 3; round++) {
        struct ims_store_exec *x = NULL;
        int ran = 0, wrc = -1;
        assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 0, &x), 0);
        if (inline_refused(f, x)) {
            ims_store_exec_free(x);
            return;
        }
        assert_int_equal(ims_store_exec_run(x, 0, work_nothing, &ran, &wrc), 0);
        assert_int_equal(ims_store_exec_run(x, IMS_STORE_RUN_LAZY, work_nothing, &ran, &wrc), 0);
        assert_int_equal(ran, 2);
        assert_int_equal(wrc, 0);
        ims_store_exec_free(x);
    }
    /* an in-memory database is private to its connection: refused */
    struct ims_store_exec *m = NULL;
    int ran = 0, wrc = -1;
    assert_int_equal(ims_store_exec_new("sqlite::memory:", f->repo, 1, 8, 0, &m), 0);
    assert_false(ims_store_exec_inline_ok(m));
    assert_int_equal(ims_store_exec_run(m, 0, work_nothing, &ran, &wrc), IMS_EINVAL);
    assert_int_equal(ran, 0);
    ims_store_exec_free(m);
}

/* ---- one transaction per run (st_req_begin) ---- */

struct snap {
    struct ims_store *other; /* another connection to the same file */
    enum ims_reg_state first, again, after_write;
    int rc;
};

static int reg_of(struct ims_store *st, const char *impu, enum ims_reg_state *out)
{
    struct ims_impu_rec rec;
    int rc = ims_store_impu_get(st, ims_str_cstr(impu), &rec);
    *out = rec.reg_state;
    return rc;
}

/* Reads, lets another connection write, reads again (the same snapshot:
 * the run's reads are one transaction), then writes (which ends that
 * snapshot) and reads once more. */
static int work_snapshot(struct ims_store *st, void *arg)
{
    struct snap *n = arg;
    n->rc |= reg_of(st, "sip:alice@ims.test", &n->first);
    n->rc |= ims_store_reg_set(n->other, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                               IMS_SCSCF_KEEP, IMS_STR_NULL, NULL);
    n->rc |= reg_of(st, "sip:alice@ims.test", &n->again);
    n->rc |= ims_store_reg_set(st, S("sip:bob@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_KEEP,
                               IMS_STR_NULL, NULL);
    n->rc |= reg_of(st, "sip:alice@ims.test", &n->after_write);
    return n->rc;
}

/* A write outside st_begin, inside the run's read transaction: committed
 * with it, not lost. */
static int work_bare_write(struct ims_store *st, void *arg)
{
    return st_exec(st, Q_IMPU_REG_SET, NULL, "it", (int64_t)IMS_REG_UNREGISTERED,
                   S("sip:alice@ims.test"));
}

static void test_run_one_transaction(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = alice_bob_inline(f);
    if (!x)
        return;
    struct snap n = { .other = f->st };
    int wrc = -1;
    assert_int_equal(ims_store_exec_run(x, 0, work_snapshot, &n, &wrc), 0);
    assert_int_equal(wrc, 0);
    assert_int_equal(n.first, IMS_REG_NOT_REGISTERED);
    assert_int_equal(n.again, IMS_REG_NOT_REGISTERED); /* one snapshot */
    assert_int_equal(n.after_write, IMS_REG_REGISTERED); /* the write began anew */
    enum ims_reg_state rs;
    OK(f->st, reg_of(f->st, "sip:bob@ims.test", &rs));
    assert_int_equal(rs, IMS_REG_REGISTERED);

    assert_int_equal(ims_store_exec_run(x, 0, work_bare_write, NULL, &wrc), 0);
    assert_int_equal(wrc, 0);
    OK(f->st, reg_of(f->st, "sip:alice@ims.test", &rs));
    assert_int_equal(rs, IMS_REG_UNREGISTERED);
    ims_store_exec_free(x);
}

/* ---- ims_store_exec_run_many: several works, one transaction ---- */

struct many {
    struct ims_store *other;
    enum ims_reg_state seen;
    int step;   /* what the work does, see work_many */
    int order;  /* when it ran */
};

static int many_order;

/* step 0: read alice; 1: another connection registers alice, then read
 * alice again (still the works' one snapshot); 2: register bob; 3: a
 * failing store call (no such IMPU) of its own */
static int work_many(struct ims_store *st, void *arg)
{
    struct many *m = arg;
    m->order = ++many_order;
    switch (m->step) {
    case 0: return reg_of(st, "sip:alice@ims.test", &m->seen);
    case 1: {
        int rc = ims_store_reg_set(m->other, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                   IMS_SCSCF_KEEP, IMS_STR_NULL, NULL);
        return rc ? rc : reg_of(st, "sip:alice@ims.test", &m->seen);
    }
    case 2:
        return ims_store_reg_set(st, S("sip:bob@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_KEEP,
                                 IMS_STR_NULL, NULL);
    default:
        return ims_store_reg_set(st, S("sip:nobody@ims.test"), IMS_REG_REGISTERED,
                                 IMS_SCSCF_KEEP, IMS_STR_NULL, NULL);
    }
}

static void test_run_many(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = alice_bob_inline(f);
    if (!x)
        return;
    struct many m[4];
    struct ims_store_run runs[4];
    for (int i = 0; i < 4; i++) {
        m[i] = (struct many){ .other = f->st, .seen = (enum ims_reg_state)-1, .step = i };
        runs[i] = (struct ims_store_run){ .flags = i == 2 ? IMS_STORE_RUN_LAZY : 0,
                                          .work = work_many, .arg = &m[i], .rc = -1 };
    }
    many_order = 0;
    assert_int_equal(ims_store_exec_run_many(x, runs, 4), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(m[i].order, i + 1); /* in order, on this thread, inside the call */
    assert_int_equal(runs[0].rc, 0);
    assert_int_equal(runs[1].rc, 0);
    assert_int_equal(runs[2].rc, 0);
    assert_int_equal(runs[3].rc, IMS_ENOENT); /* its own failure only */
    assert_int_equal(m[0].seen, IMS_REG_NOT_REGISTERED);
    /* the second work read in the first one's snapshot: one transaction */
    assert_int_equal(m[1].seen, IMS_REG_NOT_REGISTERED);
    /* the third's write is committed, the fourth's failure undid only itself */
    enum ims_reg_state rs;
    OK(f->st, reg_of(f->st, "sip:bob@ims.test", &rs));
    assert_int_equal(rs, IMS_REG_REGISTERED);
    OK(f->st, reg_of(f->st, "sip:alice@ims.test", &rs));
    assert_int_equal(rs, IMS_REG_REGISTERED);

    /* nothing to run, or the connection in use: none runs */
    assert_int_equal(ims_store_exec_run_many(x, runs, 0), IMS_EINVAL);
    struct holder h = { .x = x };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, holder_main, &h), 0);
    while (!atomic_load(&h.inside))
        sched_yield();
    many_order = 0;
    m[0].order = 0;
    assert_int_equal(ims_store_exec_run_many(x, runs, 1), IMS_EAGAIN);
    assert_int_equal(m[0].order, 0);
    atomic_store(&h.release, true);
    pthread_join(t, NULL);
    assert_int_equal(h.wrc, 0);
    ims_store_exec_free(x);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest exec_tests[] = {
    T(test_jobs_complete_on_loop),
    T(test_queue_cap_and_drain),
    T(test_bad_args),
    T(test_group_commit),
    T(test_run_two_threads),
    T(test_hand_over),
    T(test_run_per_executor),
    T(test_run_one_transaction),
    T(test_run_many),
};
const size_t exec_ntests = sizeof(exec_tests) / sizeof(exec_tests[0]);
