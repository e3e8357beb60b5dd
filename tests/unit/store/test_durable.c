/* test_durable.c - when the SQLite store flushes its WAL (store_sqlite.c:
 * every write on disk before the call returns, except lazy ones),
 * store/exec.h completions on the store thread (loop NULL), and which
 * thread checkpoints.  The VFS shim (vfs_shim.c) counts xSync calls on WAL
 * files and writes to the database file.
 * SQLite only: PostgreSQL does its own flushing (the tests skip). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "crypto/aka.h"
#include "store/exec.h"
#include "store/store_int.h"
#include "store_tests.h"
#include "vfs_shim.h"

/* ---- flush rules ---- */

static int next_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    return ims_aka_sqn_next(cur, next);
}

static const uint8_t K[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t OPC[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };

static void test_flush_rules(void **state)
{
    struct tfix *f = *state;
    struct ims_impu_rec rec;
    uint64_t sqn = 0;
    const uint32_t caps[] = { 1 };
    if (test_pg)
        skip();
    struct ims_store *st = shim_open_alice(f, K, OPC);
    ims_str impu = S("sip:alice@ims.test");
    /* the first frame of a new WAL syncs its header (SQLite's own rule) */
    OK(st, ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &sqn));

    /* the Server-Name of a MAR: committed, not flushed */
    syncs_reset();
    OK(st, ims_store_scscf_name_set_lazy(st, impu, S("sip:s1.ims.test")));
    assert_int_equal(syncs(), 0);
    OK(st, ims_store_impu_get(st, impu, &rec));
    assert_string_equal(rec.scscf_name, "sip:s1.ims.test");
    assert_int_equal(ims_store_scscf_name_set_lazy(st, S("sip:nobody@ims.test"),
                                                   S("sip:s1.ims.test")),
                     IMS_ENOENT);

    /* everything else: flushed before the call returns */
    syncs_reset();
    OK(st, ims_store_reg_set(st, impu, IMS_REG_REGISTERED, IMS_SCSCF_SET, S("sip:s2.ims.test"),
                             NULL));
    assert_int_equal(syncs(), 1);
    syncs_reset();
    OK(st, ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    assert_int_equal(syncs(), 1);
    OK(st, ims_store_scscf_put(st, S("sip:s3.ims.test"), caps, 1));
    syncs_reset();
    OK(st, ims_store_scscf_del(st, S("sip:s3.ims.test"))); /* one statement, no BEGIN */
    assert_int_equal(syncs(), 1);

    /* reads never flush */
    syncs_reset();
    OK(st, ims_store_impu_get(st, impu, &rec));
    assert_int_equal(syncs(), 0);

    /* a batch: one flush for all, none when everything in it is lazy */
    syncs_reset();
    st_batch_begin(st);
    OK(st, ims_store_scscf_name_set_lazy(st, impu, S("sip:s4.ims.test")));
    OK(st, ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    OK(st, ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    OK(st, st_batch_end(st));
    assert_int_equal(syncs(), 1);
    syncs_reset();
    st_batch_begin(st);
    OK(st, ims_store_scscf_name_set_lazy(st, impu, S("sip:s5.ims.test")));
    OK(st, st_batch_end(st));
    assert_int_equal(syncs(), 0);
    OK(st, ims_store_impu_get(st, impu, &rec));
    assert_string_equal(rec.scscf_name, "sip:s5.ims.test");

    /* a lazy write does not make the next ordinary one skip its flush */
    syncs_reset();
    OK(st, ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    assert_int_equal(syncs(), 1);
    ims_store_close(st);
    shim_remove();
}

/* ---- completions on the store thread ---- */

struct sreq {
    struct ims_store_job job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    uint64_t sqn;
    pthread_t thread;      /* where done ran */
    pthread_t work_thread; /* where work ran: the store thread */
    bool loop_null;
};

static int work_sqn(struct ims_store *st, void *arg)
{
    struct sreq *r = arg;
    r->work_thread = pthread_self();
    return ims_store_sqn_update(st, S("alice@ims.test"), next_sqn, NULL, &r->sqn);
}

static void done_here(struct ims_loop *loop, int rc, void *arg)
{
    struct sreq *r = arg;
    pthread_mutex_lock(&r->mu);
    r->rc = rc;
    r->thread = pthread_self();
    r->loop_null = loop == NULL;
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void sreq_init(struct sreq *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void sreq_fini(struct sreq *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* Waits for done_here, then clears done for the next job. */
static void wait_done(struct sreq *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    r->done = false;
    pthread_mutex_unlock(&r->mu);
}

/* r ready, the store provisioned through the shim, an executor with one
 * store thread on it. */
static struct ims_store_exec *shimmed_exec(struct tfix *f, struct sreq *r)
{
    struct ims_store_exec *x = NULL;
    sreq_init(r);
    ims_store_close(shim_open_alice(f, K, OPC));
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 0, &x), 0);
    return x;
}

static int work_sqn_watched(struct ims_store *st, void *arg)
{
    shim_watch(pthread_self());
    return work_sqn(st, arg);
}

/* Loop NULL: done runs on the executor's completion thread, neither the
 * submitter's nor the store thread, which goes on with the next batch. */
static void test_done_off_the_store_thread(void **state)
{
    struct tfix *f = *state;
    struct sreq r;
    if (test_pg)
        skip();
    struct ims_store_exec *x = shimmed_exec(f, &r);
    syncs_reset();
    assert_int_equal(
        ims_store_exec_submit(x, NULL, &r.job, work_sqn_watched, done_here, NULL, &r), 0);
    wait_done(&r);
    assert_int_equal(r.rc, 0);
    assert_true(r.sqn > 0);
    assert_true(r.loop_null);
    assert_false(pthread_equal(r.thread, pthread_self()));
    assert_false(pthread_equal(r.thread, r.work_thread));
    /* the SQN's commit did not wait for the disk (store_int.h, SQNs
     * committed without a flush); the background flush follows */
    assert_int_equal(shim_syncs_watched(), 0);
    for (int waited = 0; waited < 5000 && syncs() == 0; waited += 10)
        usleep(10000);
    assert_true(syncs() >= 1);
    shim_unwatch();
    ims_store_exec_free(x);
    shim_remove();
    sreq_fini(&r);
}

/* ---- the flush interval ([hss] flush_ms) ---- */

static int work_reg_lazy(struct ims_store *st, void *arg)
{
    int *n = arg;
    (*n)++;
    return ims_store_reg_set(st, S("sip:alice@ims.test"),
                             *n % 2 ? IMS_REG_REGISTERED : IMS_REG_UNREGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf.ims.test"), NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lazy writes every ms for a second: the background flusher syncs the WAL
 * at most once per flush_ms (plus a checkpoint's sync or two each time),
 * however many commits come; each of them is on disk after the last
 * flush. */
static void test_flush_interval(void **state)
{
    struct tfix *f = *state;
    struct sreq r;
    if (test_pg)
        skip();
    struct ims_store_exec *x = shimmed_exec(f, &r);
    ims_store_exec_set_flush_ms(x, 400);
    int n = 0, wrc = -1;
    /* the first flush follows the first lazy commit at once */
    assert_int_equal(ims_store_exec_run(x, IMS_STORE_RUN_LAZY, work_reg_lazy, &n, &wrc), 0);
    assert_int_equal(wrc, 0);
    usleep(100 * 1000);
    syncs_reset();
    long long t0 = now_ms();
    while (now_ms() - t0 < 1000) {
        assert_int_equal(ims_store_exec_run(x, IMS_STORE_RUN_LAZY, work_reg_lazy, &n, &wrc), 0);
        assert_int_equal(wrc, 0);
        usleep(1000);
    }
    long long elapsed = now_ms() - t0;
    int during = syncs();
    /* flushes at most every 400 ms: at most elapsed / 400 + 1 of them, each
     * a WAL sync and at most a checkpoint's two more */
    long long bound = 3 * (elapsed / 400 + 1);
    print_message("flush_ms 400: %d WAL syncs over %lld ms and %d lazy commits (bound %lld)\n",
                  during, elapsed, n, bound);
    assert_true(during >= 1);
    assert_true(during <= bound);
    ims_store_exec_free(x); /* a last flush */
    shim_remove();
    sreq_fini(&r);
    struct ims_impu_rec rec;
    struct ims_store *o = NULL;
    assert_int_equal(ims_store_open(f->url, f->repo, &o), 0);
    assert_int_equal(ims_store_impu_get(o, S("sip:alice@ims.test"), &rec), 0);
    assert_int_equal(rec.reg_state, n % 2 ? IMS_REG_REGISTERED : IMS_REG_UNREGISTERED);
    ims_store_close(o);
}

/* ---- checkpoints: on the flusher, never on a store thread ---- */

static char big_xml[200 * 1024];

/* ~200 KiB into each of four profiles: ~200 new WAL frames per job */
static int work_big(struct ims_store *st, void *arg)
{
    struct sreq *r = arg;
    int rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%llu-%d", (unsigned long long)r->sqn, i);
        rc = ims_store_profile_put(st, S(name), ims_str_make(big_xml, sizeof(big_xml)));
    }
    return rc;
}

/* A store thread that finds the WAL due a checkpoint leaves it to the
 * background flusher: the copy and its fsyncs kept the thread from its
 * queue for milliseconds (bench/hss: MAR p99 at 20 000/s), and flushed
 * commits alone (no lazy write to wake the flusher) must still get one. */
static void test_checkpoint_off_the_store_thread(void **state)
{
    struct tfix *f = *state;
    struct sreq r;
    if (test_pg)
        skip();
    memset(big_xml, 'x', sizeof(big_xml));
    struct ims_store_exec *x = shimmed_exec(f, &r);
    /* the store thread: where work runs */
    assert_int_equal(ims_store_exec_submit(x, NULL, &r.job, work_sqn, done_here, NULL, &r), 0);
    wait_done(&r);
    assert_int_equal(r.rc, 0);
    shim_watch(r.work_thread);
    /* ~1200 frames, over SQLite's 1000, in separate batches */
    for (uint64_t i = 1; i <= 6; i++) {
        r.sqn = i;
        assert_int_equal(ims_store_exec_submit(x, NULL, &r.job, work_big, done_here, NULL, &r),
                         0);
        wait_done(&r);
        assert_int_equal(r.rc, 0);
    }
    int by_store_thread = 0, n = 0;
    for (int waited = 0; waited < 5000 && (n = shim_db_writes(&by_store_thread)) == 0; waited += 10)
        usleep(10000);
    assert_true(n > 0);                      /* checkpointed, by someone */
    assert_int_equal(by_store_thread, 0);    /* not by the store thread */
    ims_store_exec_free(x);
    shim_unwatch();
    shim_remove();
    sreq_fini(&r);
}

/* ---- the WAL starts over under steady writes ---- */

struct racer {
    struct ims_store *st;
    int commits;
};

/* A commit of another connection while the checkpoint copies pages. */
static void commit_meanwhile(void *arg)
{
    struct racer *r = arg;
    char name[32];
    snprintf(name, sizeof(name), "meanwhile-%d", r->commits++);
    OK(r->st, ims_store_profile_put(r->st, S(name), S("<x/>")));
}

/* A passive checkpoint copies what was committed before it started; with
 * a commit arriving while it copies (as under load, always) it never
 * copies everything, and SQLite starts the WAL over only when a writer
 * finds everything copied: the WAL grew without end (bench/hss, 1.8 GB in
 * 24 s).  Past st_wal_restart_frames the flusher's second pass, with the
 * writers held off, copies the rest, and the next commit starts the WAL
 * over: SQLite writes a new header at offset 0. */
static void test_wal_started_over(void **state)
{
    struct tfix *f = *state;
    struct ims_store *fl = NULL;
    if (test_pg)
        skip();
    memset(big_xml, 'x', sizeof(big_xml));
    struct ims_store *st = shim_open_alice(f, K, OPC);
    assert_int_equal(ims_store_open(f->url, f->repo, &fl), 0);
    int saved = st_wal_restart_frames;
    st_wal_restart_frames = 100;
    for (int i = 0; i < 4; i++) { /* ~200 frames */
        char name[32];
        snprintf(name, sizeof(name), "big-%d", i);
        OK(st, ims_store_profile_put(st, S(name), ims_str_make(big_xml, sizeof(big_xml))));
    }
    struct racer r = { st, 0 };
    shim_on_db_write(commit_meanwhile, &r);
    OK(fl, st_flush(fl, true));
    assert_int_equal(r.commits, 1);
    shim_wal_writes_reset();
    OK(st, ims_store_profile_put(st, S("after"), S("<y/>")));
    assert_int_equal(shim_wal_min_write_offset(), 0);
    st_wal_restart_frames = saved;
    ims_store_close(fl);
    ims_store_close(st);
    shim_remove();
}

const struct CMUnitTest durable_tests[] = {
    cmocka_unit_test_setup_teardown(test_flush_rules, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_done_off_the_store_thread, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_checkpoint_off_the_store_thread, tfix_setup,
                                    tfix_teardown),
    cmocka_unit_test_setup_teardown(test_wal_started_over, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_flush_interval, tfix_setup, tfix_teardown),
};
const size_t durable_ntests = sizeof(durable_tests) / sizeof(durable_tests[0]);
