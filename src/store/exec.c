#include "store/exec.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "store/store.h"
#include "store/store_int.h"

/* Jobs a store thread takes at once and runs in one transaction (group
 * commit).  Bounds the latency a batch adds to its first job. */
#define BATCH_MAX 64

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
};

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

/* Posting allocates; if that fails the completion must still be delivered
 * (rule 2), so retry.  Running out of memory here is a process-wide
 * emergency; waiting is the least bad answer. */
static void complete(struct ims_store_job *job)
{
    unsigned tries = 0;
    if (!job->loop) { /* completes here, on the store thread (exec.h) */
        job->done(NULL, job->rc, job->arg);
        return;
    }
    while (ims_loop_post(job->loop, job_done, job, job_cancel) != 0) {
        if (tries++ == 0)
            LOG_E("store", "event=completion_post_failed retrying=yes");
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* Runs n jobs taken together.  One job runs as it always did (each store
 * call its own transaction).  Several run inside one write transaction,
 * each store call in a savepoint (st_batch_begin, store_int.h), and their
 * completions are posted only after the COMMIT returned: one fsync for
 * the batch, and nothing a job computed from its writes (an SQN) leaves
 * before they are durable.  If the batch cannot commit, nothing of it was
 * stored and every job of it completes with the error. */
static void run_batch(struct worker *w, struct ims_store_job **jobs, size_t n)
{
    struct ims_store_exec *x = w->x;
    if (n == 1) {
        if (x->batch_alone)
            pthread_rwlock_rdlock(&x->batch_mu);
        jobs[0]->rc = jobs[0]->work(w->st, jobs[0]->arg);
        if (x->batch_alone)
            pthread_rwlock_unlock(&x->batch_mu);
        complete(jobs[0]);
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
    for (size_t i = 0; i < n; i++)
        complete(jobs[i]);
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
        st_idle(w->st); /* checkpoints: after the answers, outside the write lock */
    }
}

void ims_store_exec_free(struct ims_store_exec *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stopping = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    for (size_t i = 0; i < x->nworkers; i++) {
        if (x->workers[i].started)
            pthread_join(x->workers[i].tid, NULL);
        ims_store_close(x->workers[i].st);
    }
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    pthread_rwlock_destroy(&x->batch_mu);
    ims_free(x->workers);
    ims_free(x);
}

int ims_store_exec_new(const char *url, struct ims_keyrepo *repo, size_t nthreads,
                       size_t max_queued, struct ims_store_exec **out)
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
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
#ifdef __GLIBC__ /* a waiting batch goes before new lone jobs (no starvation) */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&x->batch_mu, &ra);
    pthread_rwlockattr_destroy(&ra);
    x->max_queued = max_queued;
    x->nworkers = nthreads;
    int rc = 0;
    /* Open every connection first, so a bad URL fails here, at start-up. */
    for (size_t i = 0; rc == 0 && i < nthreads; i++) {
        x->workers[i].x = x;
        rc = ims_store_open(url, repo, &x->workers[i].st);
    }
    x->batch_alone = rc == 0 && nthreads > 1 &&
                     strcmp(ims_store_backend(x->workers[0].st), "postgresql") == 0;
    for (size_t i = 0; rc == 0 && i < nthreads; i++) {
        if (pthread_create(&x->workers[i].tid, NULL, worker_main, &x->workers[i]) != 0)
            rc = IMS_EIO;
        else
            x->workers[i].started = true;
    }
    if (rc) {
        ims_store_exec_free(x);
        return rc;
    }
    LOG_I("store", "event=exec_start threads=%zu max_queued=%zu", nthreads, max_queued);
    *out = x;
    return 0;
}

int ims_store_exec_submit(struct ims_store_exec *x, struct ims_loop *loop,
                          struct ims_store_job *job, ims_store_work_fn work,
                          ims_store_done_fn done, ims_store_cancel_fn cancel, void *arg)
{
    job->work = work;
    job->done = done;
    job->cancel = cancel;
    job->arg = arg;
    job->loop = loop;
    job->rc = 0;
    job->next = NULL;
    pthread_mutex_lock(&x->mu);
    int rc = x->stopping ? IMS_EINVAL : x->queued >= x->max_queued ? IMS_ELIMIT : 0;
    if (rc == 0) {
        if (x->tail)
            x->tail->next = job;
        else
            x->head = job;
        x->tail = job;
        x->queued++;
        pthread_cond_signal(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}
