#include "store/exec.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/loop.h"
#include "store/store.h"

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
    while (ims_loop_post(job->loop, job_done, job, job_cancel) != 0) {
        if (tries++ == 0)
            LOG_E("store", "event=completion_post_failed retrying=yes");
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ims_store_exec *x = w->x;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        while (!x->head && !x->stopping)
            pthread_cond_wait(&x->cv, &x->mu);
        struct ims_store_job *job = x->head;
        if (!job) { /* stopping and drained */
            pthread_mutex_unlock(&x->mu);
            return NULL;
        }
        x->head = job->next;
        if (!x->head)
            x->tail = NULL;
        x->queued--;
        pthread_mutex_unlock(&x->mu);

        job->rc = job->work(w->st, job->arg);
        complete(job);
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
    x->max_queued = max_queued;
    x->nworkers = nthreads;
    int rc = 0;
    /* Open every connection first, so a bad URL fails here, at start-up. */
    for (size_t i = 0; rc == 0 && i < nthreads; i++) {
        x->workers[i].x = x;
        rc = ims_store_open(url, repo, &x->workers[i].st);
    }
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
