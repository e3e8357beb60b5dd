#include "store/exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "ev/loop.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "store/store_cache.h"
#include "store/store_int.h"
#include "store/store_sqnblk.h"

/* Jobs a store thread takes at once and runs in one transaction (group
 * commit).  Bounds the latency a batch adds to its first job. */
#define BATCH_MAX 64

/* The background flush: at most one fdatasync per flush_ms while lazy
 * commits keep coming (exec.h, ims_store_exec_set_flush_ms); a passive
 * checkpoint at most every CKPT_MS, so calling threads' COMMITs rarely
 * meet SQLite's own. */
#define CKPT_MS 100

struct worker {
    struct ims_store_exec *x;
    struct ims_store *st;
    pthread_t tid;
    bool started;
};

struct ims_store_exec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ims_store_job *head, *tail; /* FIFO, guarded by mu */
    size_t queued, max_queued;
    bool stopping;
    size_t nworkers;
    struct worker *workers;
    /* PostgreSQL: a batch holds its row locks (SELECT ... FOR UPDATE, the
     * UPDATEs) until its COMMIT, in the order of its jobs; two batches on
     * two store threads would deadlock (the server breaks that after
     * deadlock_timeout by failing one).  So a batch runs alone (write
     * lock) and lone jobs side by side (read lock).  SQLite needs none of
     * this: it has one writer at a time (store_sqlite.c). */
    bool batch_alone;
    pthread_rwlock_t batch_mu;

    /* ims_store_exec_run: SQLite files only (inline_ok, fixed at start).
     * All calling threads share one connection, one run at a time (imu;
     * a thread that finds it taken hands its job over instead of waiting):
     * SQLite empties a connection's page cache whenever another
     * connection committed since its last transaction, so with one per
     * thread every run began cold and read its B-tree pages again
     * (bench/hss/hss_storebench -m inline: 48-50 us of store work per Cx
     * request on two threads with a connection each, 34 shared). */
    bool inline_ok;
    atomic_bool closing;    /* set first by ims_store_exec_free */
    atomic_size_t running;  /* ims_store_exec_run calls in progress */
    pthread_mutex_t imu;    /* held for a whole run on ist; only ever tried */
    struct ims_store *ist;
    /* jobs handed over to the thread holding imu (ims_store_exec_hand),
     * FIFO guarded by hmu; handed: the list may be non-empty */
    pthread_mutex_t hmu;
    struct ims_store_job *hhead, *htail;
    atomic_bool handed;

    /* the background flusher (inline_ok only): its own connection */
    struct ims_store *fst;
    pthread_t ftid;
    bool fstarted;
    atomic_uint flush_ms;   /* the wait after each flush */
    uint64_t sqn_gen;       /* this process's SQN generation (store_int.h), 0 without */
    struct store_cache *cache; /* shared by every connection but fst; NULL: none */
    struct store_sqnblk *sqnblk; /* SQN blocks of the workers and ist; NULL: none */
    atomic_bool dirty;      /* a lazy commit waits for its flush */
    /* the completion thread: runs the done of jobs submitted with loop
     * NULL, batch after batch, off the store threads */
    pthread_t ctid;
    bool cstarted, cstop;   /* cstop guarded by cmu */
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    struct ims_store_job *chead, *ctail; /* guarded by cmu */
    atomic_bool ckpt_due;   /* a connection's commit left the WAL long */
    pthread_mutex_t fmu;    /* guards fidle, fstop; fcv waits on it */
    pthread_cond_t fcv;
    bool fidle, fstop;
};

/* ---- the background flush ---- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After setting dirty or ckpt_due: the flusher sees it before it sleeps
 * again (it checks both under fmu), or is woken here. */
static void wake_flusher(struct ims_store_exec *x)
{
    pthread_mutex_lock(&x->fmu);
    if (x->fidle)
        pthread_cond_signal(&x->fcv);
    pthread_mutex_unlock(&x->fmu);
}

/* After work that committed lazily: the flusher will fdatasync.  Under
 * load the flag is already set and this is one atomic exchange; the lock
 * and the wake-up happen only when the flusher went idle. */
static void mark_dirty(struct ims_store_exec *x)
{
    if (!x->fstarted || atomic_exchange(&x->dirty, true))
        return;
    wake_flusher(x);
}

/* Between batches or after an inline run: with a flusher, the checkpoint
 * a connection finds due runs there, not on a thread answering requests. */
static void after_work(struct ims_store_exec *x, struct ims_store *st)
{
    if (st_take_unflushed(st)) /* a MAR's lazy Server-Name */
        mark_dirty(x);
    if (st_idle(st, !x->fstarted) && !atomic_exchange(&x->ckpt_due, true))
        wake_flusher(x);
}

static void flush_now(struct ims_store_exec *x, bool checkpoint)
{
    int rc = st_flush(x->fst, checkpoint);
    if (rc) /* the next lazy commit (or the next flushed commit) tries again */
        LOG_E("store", "event=background_flush_failed err=%s msg=\"%s\"", ims_strerror(rc),
              ims_store_errmsg(x->fst));
}

/* Flushes when dirty, then waits flush_ms before the next flush: lazy
 * commits of those ms share one fdatasync.  Checkpoints every CKPT_MS
 * while dirty, and when a connection found the WAL due one (after_work).
 * Stops after a last flush. */
static void *flusher_main(void *arg)
{
    struct ims_store_exec *x = arg;
    long long last_ckpt = mono_ms();
    pthread_mutex_lock(&x->fmu);
    for (;;) {
        while (!atomic_load(&x->dirty) && !atomic_load(&x->ckpt_due) && !x->fstop) {
            x->fidle = true;
            pthread_cond_wait(&x->fcv, &x->fmu);
        }
        x->fidle = false;
        bool stop = x->fstop;
        pthread_mutex_unlock(&x->fmu);
        bool due = atomic_exchange(&x->ckpt_due, false);
        if (atomic_exchange(&x->dirty, false) || due) {
            long long now = mono_ms();
            bool ckpt = due || now - last_ckpt >= CKPT_MS;
            flush_now(x, ckpt);
            if (ckpt)
                last_ckpt = now;
        }
        if (stop)
            return NULL;
        unsigned ms = atomic_load(&x->flush_ms);
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&x->fmu);
    }
}

/* ---- store threads ---- */

static void job_done(struct ims_loop *loop, void *arg)
{
    struct ims_store_job *job = arg;
    job->done(loop, job->rc, job->arg);
}

static void job_cancel(void *arg)
{
    struct ims_store_job *job = arg;
    if (job->cancel)
        job->cancel(job->arg);
}

/* Appends the list first..last (linked by next) to the FIFO *head..*tail;
 * the caller holds the FIFO's lock. */
static void fifo_append(struct ims_store_job **head, struct ims_store_job **tail,
                        struct ims_store_job *first, struct ims_store_job *last)
{
    last->next = NULL;
    if (*tail)
        (*tail)->next = first;
    else
        *head = first;
    *tail = last;
}

/* ---- the completion thread ----
 *
 * A Diameter answer is built and handed to freeDiameter in done: a fifth of
 * the store thread's time per AKA MAR (bench/hss/README.md), while that one
 * thread is what limits the rate.  So a store thread hands each batch's
 * loop-NULL completions over with one lock and one wake-up, and goes on
 * with the next batch. */

static void *completer_main(void *arg)
{
    struct ims_store_exec *x = arg;
    pthread_mutex_lock(&x->cmu);
    for (;;) {
        while (!x->chead && !x->cstop)
            pthread_cond_wait(&x->ccv, &x->cmu);
        struct ims_store_job *job = x->chead;
        if (!job) /* stopping and drained */
            break;
        x->chead = x->ctail = NULL;
        pthread_mutex_unlock(&x->cmu);
        while (job) {
            struct ims_store_job *next = job->next; /* done may reuse the job */
            job->done(NULL, job->rc, job->arg);
            job = next;
        }
        pthread_mutex_lock(&x->cmu);
    }
    pthread_mutex_unlock(&x->cmu);
    return NULL;
}

/* Queues the list head..tail (linked by next) for the completion thread. */
static void hand_over(struct ims_store_exec *x, struct ims_store_job *head,
                      struct ims_store_job *tail)
{
    if (!head)
        return;
    pthread_mutex_lock(&x->cmu);
    fifo_append(&x->chead, &x->ctail, head, tail);
    pthread_cond_signal(&x->ccv);
    pthread_mutex_unlock(&x->cmu);
}

static void completer_stop(struct ims_store_exec *x)
{
    if (!x->cstarted)
        return;
    pthread_mutex_lock(&x->cmu);
    x->cstop = true;
    pthread_cond_signal(&x->ccv);
    pthread_mutex_unlock(&x->cmu);
    pthread_join(x->ctid, NULL);
    x->cstarted = false;
}

/* Posting allocates; if that fails the completion must still be delivered
 * (rule 2), so retry.  Running out of memory here is a process-wide
 * emergency; waiting is the least bad answer.  Loop-NULL jobs are the
 * completion thread's (run_batch). */
static void complete(struct ims_store_job *job)
{
    unsigned tries = 0;
    while (ims_loop_post(job->loop, job_done, job, job_cancel) != 0) {
        if (tries++ == 0)
            LOG_E("store", "event=completion_post_failed retrying=yes");
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* The batch's completions, in order: loop-NULL ones to the completion
 * thread in one hand-over, the others posted to their loops. */
static void complete_all(struct ims_store_exec *x, struct ims_store_job **jobs, size_t n)
{
    struct ims_store_job *head = NULL, *tail = NULL;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->loop) {
            complete(jobs[i]);
            continue;
        }
        if (tail)
            tail->next = jobs[i];
        else
            head = jobs[i];
        tail = jobs[i];
    }
    hand_over(x, head, tail);
}

/* Runs n jobs taken together.  One job runs as it always did (each store
 * call its own transaction).  Several run inside one write transaction,
 * each store call in a savepoint (st_batch_begin, store_int.h), and their
 * completions are posted only after the COMMIT returned: one fsync for
 * the batch (none when all its writes are lazy), and nothing a job
 * computed from its writes leaves before they are committed.  If the
 * batch cannot commit, nothing of it was stored and every job of it
 * completes with the error. */
static void run_batch(struct worker *w, struct ims_store_job **jobs, size_t n)
{
    struct ims_store_exec *x = w->x;
    if (n == 1) {
        if (x->batch_alone)
            pthread_rwlock_rdlock(&x->batch_mu);
        jobs[0]->rc = jobs[0]->work(w->st, jobs[0]->arg);
        if (x->batch_alone)
            pthread_rwlock_unlock(&x->batch_mu);
        complete_all(x, jobs, 1);
        return;
    }
    if (x->batch_alone)
        pthread_rwlock_wrlock(&x->batch_mu);
    st_batch_begin(w->st);
    for (size_t i = 0; i < n; i++)
        jobs[i]->rc = jobs[i]->work(w->st, jobs[i]->arg);
    int rc = st_batch_end(w->st);
    if (x->batch_alone)
        pthread_rwlock_unlock(&x->batch_mu);
    if (rc) {
        LOG_E("store", "event=batch_failed jobs=%zu err=%s", n, ims_strerror(rc));
        for (size_t i = 0; i < n; i++)
            jobs[i]->rc = rc;
    }
    complete_all(x, jobs, n);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ims_store_exec *x = w->x;
    struct ims_store_job *jobs[BATCH_MAX];
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&x->mu);
        while (!x->head && !x->stopping)
            pthread_cond_wait(&x->cv, &x->mu);
        while (x->head && n < BATCH_MAX) {
            jobs[n++] = x->head;
            x->head = x->head->next;
            x->queued--;
        }
        if (!x->head)
            x->tail = NULL;
        pthread_mutex_unlock(&x->mu);
        if (n == 0) /* stopping and drained */
            return NULL;
        run_batch(w, jobs, n);
        after_work(x, w->st); /* after the answers, outside the write lock */
    }
}

/* ---- on the calling thread ---- */

bool ims_store_exec_inline_ok(const struct ims_store_exec *x)
{
    return x && x->inline_ok;
}

/* Works on the inline connection (imu held), in one transaction for all
 * of their store calls (exec.h).  Laziness is a property of each write
 * statement (store_sqlite.c), so it is set around each work alone. */
static void run_list(struct ims_store_exec *x, struct ims_store_run *runs, size_t n)
{
    struct ims_store *st = x->ist;
    st_req_begin(st);
    for (size_t i = 0; i < n; i++) {
        bool lazy = runs[i].flags & IMS_STORE_RUN_LAZY;
        if (lazy)
            st_lazy(st, true);
        runs[i].rc = runs[i].work(st, runs[i].arg);
        if (lazy)
            st_lazy(st, false);
    }
    int trc = st_req_end(st);
    ims_metrics_add(IMS_M_STORE_INLINE_REQUESTS, n); /* metrics hook */
    ims_metrics_inc(IMS_M_STORE_INLINE_TXNS);
    if (trc) { /* nothing of it was stored: whatever the works made of it is void */
        LOG_W("store", "event=inline_tx_failed runs=%zu err=%s", n, ims_strerror(trc));
        for (size_t i = 0; i < n; i++)
            runs[i].rc = trc;
    }
    after_work(x, st);
}

/* Jobs handed over (ims_store_exec_hand) run this many to a transaction. */
#define HANDED_MAX 32

/* imu held: runs the jobs handed over (ims_store_exec_hand) until none is
 * left, posting each completion to its loop. */
static void run_handed(struct ims_store_exec *x)
{
    for (;;) {
        pthread_mutex_lock(&x->hmu);
        struct ims_store_job *job = x->hhead;
        x->hhead = x->htail = NULL;
        atomic_store(&x->handed, false);
        pthread_mutex_unlock(&x->hmu);
        if (!job)
            return;
        /* taken together, like the jobs of a store thread's batch: one
         * transaction per HANDED_MAX of them, completions after its COMMIT */
        while (job) {
            struct ims_store_job *jobs[HANDED_MAX];
            struct ims_store_run runs[HANDED_MAX];
            size_t n = 0;
            for (; job && n < HANDED_MAX; job = job->next, n++) {
                jobs[n] = job;
                runs[n] = (struct ims_store_run){ .flags = job->flags,
                                                  .work = job->work,
                                                  .arg = job->arg };
            }
            run_list(x, runs, n);
            for (size_t i = 0; i < n; i++) {
                jobs[i]->rc = runs[i].rc;
                complete(jobs[i]); /* done may reuse the job: next was read above */
            }
        }
    }
}

/* Lets go of the inline connection.  A job handed over after the holder's
 * last look would wait for the next run: so look again after the unlock,
 * and run it if no other thread took the connection meanwhile (that one
 * then runs it). */
static void release(struct ims_store_exec *x)
{
    for (;;) {
        pthread_mutex_unlock(&x->imu);
        if (!atomic_load(&x->handed) || pthread_mutex_trylock(&x->imu) != 0)
            return;
        run_handed(x);
    }
}

int ims_store_exec_run_many(struct ims_store_exec *x, struct ims_store_run *runs, size_t n)
{
    if (!x->inline_ok || n == 0)
        return IMS_EINVAL;
    /* counted before the check: free waits for every run that saw it clear */
    atomic_fetch_add(&x->running, 1);
    int rc = atomic_load(&x->closing) ? IMS_EINVAL : 0;
    if (rc == 0 && pthread_mutex_trylock(&x->imu) != 0)
        rc = IMS_EAGAIN; /* another thread's run: the caller hands the jobs over */
    if (rc == 0) {
        run_list(x, runs, n);
        run_handed(x);
        release(x);
    }
    atomic_fetch_sub(&x->running, 1);
    return rc;
}

int ims_store_exec_run(struct ims_store_exec *x, unsigned flags, ims_store_work_fn work,
                       void *arg, int *work_rc)
{
    struct ims_store_run r = { .flags = flags, .work = work, .arg = arg };
    int rc = ims_store_exec_run_many(x, &r, 1);
    if (rc == 0)
        *work_rc = r.rc;
    return rc;
}

int ims_store_exec_hand(struct ims_store_exec *x, unsigned flags, struct ims_loop *loop,
                        struct ims_store_job *job, ims_store_work_fn work,
                        ims_store_done_fn done, ims_store_cancel_fn cancel, void *arg)
{
    if (!x->inline_ok || !loop)
        return IMS_EINVAL;
    atomic_fetch_add(&x->running, 1);
    int rc = atomic_load(&x->closing) ? IMS_EINVAL : 0;
    if (rc == 0) {
        *job = (struct ims_store_job){ .work = work, .done = done, .cancel = cancel,
                                       .arg = arg, .loop = loop, .flags = flags };
        pthread_mutex_lock(&x->hmu);
        fifo_append(&x->hhead, &x->htail, job, job);
        atomic_store(&x->handed, true);
        pthread_mutex_unlock(&x->hmu);
        /* the holder may have looked for the last time already */
        if (pthread_mutex_trylock(&x->imu) == 0) {
            run_handed(x);
            release(x);
        }
    }
    atomic_fetch_sub(&x->running, 1);
    return rc;
}

/* Runs last: every connection that could have committed lazily is done. */
static void flusher_stop(struct ims_store_exec *x)
{
    if (x->fstarted) {
        pthread_mutex_lock(&x->fmu);
        x->fstop = true;
        pthread_cond_signal(&x->fcv);
        pthread_mutex_unlock(&x->fmu);
        pthread_join(x->ftid, NULL);
    }
    ims_store_close(x->fst);
    pthread_cond_destroy(&x->fcv);
    pthread_mutex_destroy(&x->fmu);
}

void ims_store_exec_free(struct ims_store_exec *x)
{
    if (!x)
        return;
    atomic_store(&x->closing, true);
    while (atomic_load(&x->running) > 0) { /* runs are short: poll */
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&x->mu);
    x->stopping = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    for (size_t i = 0; i < x->nworkers; i++) {
        if (x->workers[i].started)
            pthread_join(x->workers[i].tid, NULL);
        ims_store_close(x->workers[i].st);
    }
    ims_store_close(x->ist);
    completer_stop(x); /* after the store threads: they hand over to it */
    pthread_cond_destroy(&x->ccv);
    pthread_mutex_destroy(&x->cmu);
    flusher_stop(x);
    pthread_mutex_destroy(&x->imu);
    pthread_mutex_destroy(&x->hmu);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    pthread_rwlock_destroy(&x->batch_mu);
    store_cache_free(x->cache); /* after every connection that used it */
    store_sqnblk_free(x->sqnblk);
    ims_free(x->workers);
    ims_free(x);
}

int ims_store_exec_new(const char *url, struct ims_keyrepo *repo, size_t nthreads,
                       size_t max_queued, size_t cache_entries, struct ims_store_exec **out)
{
    if (nthreads == 0 || max_queued == 0)
        return IMS_EINVAL;
    struct ims_store_exec *x = ims_calloc(1, sizeof(*x));
    if (!x)
        return IMS_ENOMEM;
    x->workers = ims_calloc(nthreads, sizeof(*x->workers));
    if (!x->workers) {
        ims_free(x);
        return IMS_ENOMEM;
    }
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    pthread_mutex_init(&x->imu, NULL);
    pthread_mutex_init(&x->hmu, NULL);
    pthread_mutex_init(&x->fmu, NULL);
    pthread_cond_init(&x->fcv, NULL);
    pthread_mutex_init(&x->cmu, NULL);
    pthread_cond_init(&x->ccv, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
#ifdef __GLIBC__ /* a waiting batch goes before new lone jobs (no starvation) */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&x->batch_mu, &ra);
    pthread_rwlockattr_destroy(&ra);
    x->max_queued = max_queued;
    x->nworkers = nthreads;
    atomic_init(&x->flush_ms, IMS_STORE_FLUSH_MS_DEFAULT);
    int rc = 0;
    /* Open every connection first, so a bad URL fails here, at start-up. */
    for (size_t i = 0; rc == 0 && i < nthreads; i++) {
        x->workers[i].x = x;
        rc = ims_store_open(url, repo, &x->workers[i].st);
    }
    x->batch_alone = rc == 0 && nthreads > 1 &&
                     strcmp(ims_store_backend(x->workers[0].st), "postgresql") == 0;
    /* a file: every connection sees the same database ("sqlite::memory:"
     * would give each its own) */
    x->inline_ok = rc == 0 && strncmp(url, "sqlite:", 7) == 0 && strcmp(url + 7, ":memory:") != 0;
    if (x->inline_ok) {
        rc = ims_store_open(url, repo, &x->fst);
        if (rc == 0)
            rc = ims_store_open(url, repo, &x->ist);
        /* this process's SQN generation (store_int.h): from here on its
         * connections may commit SQNs without a flush */
        if (rc == 0)
            rc = st_sqn_generation_start(x->fst, &x->sqn_gen);
        if (rc)
            LOG_E("store", "event=sqn_generation_failed msg=\"%s\"",
                  x->fst ? ims_store_errmsg(x->fst) : "");
        for (size_t i = 0; rc == 0 && i < nthreads; i++)
            st_set_sqn_generation(x->workers[i].st, x->sqn_gen);
        if (rc == 0) {
            st_set_sqn_generation(x->fst, x->sqn_gen);
            st_set_sqn_generation(x->ist, x->sqn_gen);
        }
        if (rc == 0 && ims_thread_start(&x->ftid, "ims-store-flush", flusher_main, x) != 0)
            rc = IMS_EIO;
        x->fstarted = rc == 0;
    }
    if (rc == 0 && cache_entries)
        rc = store_cache_new(cache_entries, &x->cache);
    for (size_t i = 0; rc == 0 && x->cache && i < nthreads; i++)
        st_use_cache(x->workers[i].st, x->cache);
    if (rc == 0 && x->cache && x->ist)
        st_use_cache(x->ist, x->cache);
    /* SQN blocks: where the SQN generations are (a SQLite file), for about
     * as many IMPIs as the cache holds (an IMPI takes two of its entries) */
    if (rc == 0 && x->inline_ok && cache_entries)
        rc = store_sqnblk_new(cache_entries > 1 ? cache_entries / 2 : 1, &x->sqnblk);
    for (size_t i = 0; rc == 0 && x->sqnblk && i < nthreads; i++)
        st_use_sqnblk(x->workers[i].st, x->sqnblk);
    if (rc == 0 && x->sqnblk)
        st_use_sqnblk(x->ist, x->sqnblk);
    if (rc == 0 && ims_thread_start(&x->ctid, "ims-store-done", completer_main, x) != 0)
        rc = IMS_EIO;
    x->cstarted = rc == 0;
    for (size_t i = 0; rc == 0 && i < nthreads; i++) {
        char name[IMS_THREAD_NAME_MAX];
        snprintf(name, sizeof(name), "ims-store%hu", (unsigned short)i); /* i < 64 */
        if (ims_thread_start(&x->workers[i].tid, name, worker_main, &x->workers[i]) != 0)
            rc = IMS_EIO;
        else
            x->workers[i].started = true;
    }
    if (rc) {
        ims_store_exec_free(x);
        return rc;
    }
    LOG_I("store",
          "event=exec_start threads=%zu max_queued=%zu inline=%s sqn_generation=%llu "
          "cache_entries=%zu",
          nthreads, max_queued, x->inline_ok ? "yes" : "no", (unsigned long long)x->sqn_gen,
          cache_entries);
    *out = x;
    return 0;
}

void ims_store_exec_set_flush_ms(struct ims_store_exec *x, unsigned ms)
{
    if (ms < 1)
        ms = 1;
    if (ms > IMS_STORE_FLUSH_MS_MAX)
        ms = IMS_STORE_FLUSH_MS_MAX;
    atomic_store(&x->flush_ms, ms);
}

void ims_store_exec_cache_stats(struct ims_store_exec *x, struct ims_store_cache_stats *out)
{
    *out = (struct ims_store_cache_stats){ 0 };
    if (x->cache)
        store_cache_stats(x->cache, out);
}

struct preload {
    size_t max, loaded;
};

static int preload_work(struct ims_store *st, void *arg)
{
    struct preload *p = arg;
    return st_cache_preload(st, p->max, &p->loaded);
}

int ims_store_exec_preload(struct ims_store_exec *x, size_t max, size_t *loaded)
{
    struct preload p = { max, 0 };
    int wrc = 0;
    *loaded = 0;
    if (!x->cache || !x->inline_ok)
        return 0;
    int rc = ims_store_exec_run(x, 0, preload_work, &p, &wrc);
    *loaded = p.loaded;
    return rc ? rc : wrc;
}

int ims_store_exec_submit(struct ims_store_exec *x, struct ims_loop *loop,
                          struct ims_store_job *job, ims_store_work_fn work,
                          ims_store_done_fn done, ims_store_cancel_fn cancel, void *arg)
{
    *job = (struct ims_store_job){ .work = work, .done = done, .cancel = cancel, .arg = arg,
                                   .loop = loop };
    pthread_mutex_lock(&x->mu);
    int rc = x->stopping ? IMS_EINVAL : x->queued >= x->max_queued ? IMS_ELIMIT : 0;
    if (rc == 0) {
        fifo_append(&x->head, &x->tail, job, job);
        x->queued++;
        pthread_cond_signal(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}
