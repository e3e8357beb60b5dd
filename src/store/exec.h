/* exec.h - asynchronous store access for event-loop code.
 *
 * The store API (store.h) is synchronous: SQLite blocks on disk, libpq on
 * the network, and an operation is several statements inside a transaction
 * (the SQN allocation: lock, read, write, commit).  Workers must not block,
 * so store work runs here: a fixed set of store threads, each with its own
 * struct ims_store (its own connection), takes jobs from one bounded FIFO,
 * runs the job's work function with its store, and posts the completion
 * to the loop the job was submitted from (ims_loop_post).
 *
 * Why threads and not libpq's asynchronous API on the loop: every
 * operation would become a hand-written state machine per statement, and
 * SQLite has no asynchronous API at all.  Threads give one code path for
 * both backends, a natural pool of connections, and the callback rule.
 *
 * Group commit: a store thread that finds several jobs queued takes up
 * to 64 and runs them in ONE write transaction (begun by the first store
 * call that writes; each store call in its own savepoint, so a failed call
 * undoes only itself, as it would alone), then posts their completions
 * after the COMMIT returned: one fsync per batch instead of one per write
 * (none when every write of it is lazy), and anything a job derived from
 * its writes reaches done only once they are committed (and flushed,
 * unless lazy).  So work must hand its results
 * out only through done, never from the store thread.  If the batch
 * cannot commit, every job of it completes with that error (IMS_EBACKEND)
 * whatever work returned, and nothing of it was stored.  A lone job runs
 * as the store calls it makes do by themselves.  Store row locks
 * (PostgreSQL) and SQLite's write lock are held until the batch's COMMIT.
 *
 * Lifetime rules:
 * 1. A job (struct ims_store_job) is caller-owned storage, usually embedded
 *    in the request that needs the store; it is borrowed from a successful
 *    submit until its done (or cancel) callback starts, and must not be
 *    touched meanwhile.
 * 2. If submit fails, neither work nor done ever runs.  If it succeeds,
 *    work runs exactly once on a store thread, then done runs exactly once
 *    on the loop's thread, after the submit call returned (never from
 *    inside it).  If the loop is freed before done could run, cancel (if
 *    set) runs instead, on the thread freeing the loop.
 *    With loop NULL, done runs on the executor's completion thread (loop
 *    argument NULL) once the batch committed, in commit order, and cancel
 *    never runs: for work whose completion is thread-safe (a Diameter
 *    answer), which then skips a hand-off to a loop and back, and leaves
 *    the store thread to its next batch.  Such a done must be short and
 *    must not call the store or submit and wait.
 * 3. work runs on a store thread: it may call any store.h function on the
 *    store it is given (and nothing else of the loop's).  Its return value
 *    is passed to done as rc (or the batch's error, see above).
 * 4. ims_store_exec_submit() is thread-safe.  ims_store_exec_free() lets
 *    every queued job finish (their completions are posted), waits for
 *    ims_store_exec_run() and ims_store_exec_hand() calls in progress (they
 *    run the jobs handed over before they return), joins the threads,
 *    flushes and closes the stores; submits, runs and hand-overs after it
 *    started fail.  Loops
 *    must keep running (or be freed, for cancel) until the completions
 *    arrive. */
#ifndef IMS_STORE_EXEC_H
#define IMS_STORE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ims_keyrepo;
struct ims_loop;
struct ims_store;
struct ims_store_exec;

typedef int (*ims_store_work_fn)(struct ims_store *st, void *arg);
typedef void (*ims_store_done_fn)(struct ims_loop *loop, int rc, void *arg);
typedef void (*ims_store_cancel_fn)(void *arg);

struct ims_store_job {
    /* all private */
    ims_store_work_fn work;
    ims_store_done_fn done;
    ims_store_cancel_fn cancel;
    void *arg;
    struct ims_loop *loop;
    int rc;
    unsigned flags; /* ims_store_exec_hand */
    struct ims_store_job *next;
};

/* Opens nthreads stores on url (see ims_store_open; repo is borrowed and
 * must outlive the executor) and starts one thread per store.  At most
 * max_queued jobs wait at a time.  For "sqlite::memory:" use one thread
 * (each connection would have its own private database).  cache_entries:
 * the size of the identity cache its connections share
 * (store/store_cache.h: identity links and IMPI rows, ciphertexts only);
 * 0: none.
 * 0, IMS_EINVAL (nthreads or max_queued is 0), an ims_store_open() error,
 * IMS_ENOMEM, IMS_EIO (a thread could not start). */
int ims_store_exec_new(const char *url, struct ims_keyrepo *repo, size_t nthreads,
                       size_t max_queued, size_t cache_entries, struct ims_store_exec **out);

/* The background flusher's wait after each fdatasync of lazy writes (see
 * ims_store_exec_run), in ms: what a power cut may lose of them, and how
 * many fdatasyncs a second a steady load costs (each one is a disk cache
 * flush).  Clamped to 1..IMS_STORE_FLUSH_MS_MAX; the default is
 * IMS_STORE_FLUSH_MS_DEFAULT.  Takes effect after the flusher's current
 * wait. */
#define IMS_STORE_FLUSH_MS_DEFAULT 50
#define IMS_STORE_FLUSH_MS_MAX 1000
void ims_store_exec_set_flush_ms(struct ims_store_exec *x, unsigned ms);

/* The identity cache's counters since start (all 0 without one). */
struct ims_store_cache_stats {
    uint64_t hits, misses, puts, evictions;
    size_t entries, capacity;
};
void ims_store_exec_cache_stats(struct ims_store_exec *x, struct ims_store_cache_stats *out);
/* Fills the identity cache with every IMPI's authentication row and OK
 * IMPI/IMPU links, at most max entries, on the inline connection (SQLite
 * files only: elsewhere nothing, 0).  For a start, before requests come:
 * the first MAR of each subscriber then reads neither from the database.
 * *loaded: the entries kept.  0 or the common errors. */
int ims_store_exec_preload(struct ims_store_exec *x, size_t max, size_t *loaded);
/* See rule 4.  NULL is a no-op. */
void ims_store_exec_free(struct ims_store_exec *x);

/* Queues job: work(store, arg) on a store thread, then done(loop, rc, arg)
 * on loop.  cancel may be NULL.
 * 0, IMS_ELIMIT (max_queued jobs are waiting: answer "busy"), IMS_EINVAL
 * (the executor is shutting down). */
int ims_store_exec_submit(struct ims_store_exec *x, struct ims_loop *loop,
                          struct ims_store_job *job, ims_store_work_fn work,
                          ims_store_done_fn done, ims_store_cancel_fn cancel, void *arg);

/* ---- running on the calling thread (SQLite) ----
 *
 * A hand-off to a store thread and back costs two thread wake-ups, more
 * than the work of most Cx requests on SQLite, whose calls never wait on a
 * network.  So a thread may run a job's work itself, on the executor's
 * inline connection (opened by ims_store_exec_new(), closed by
 * ims_store_exec_free()), which every calling thread shares, one run at a
 * time: a connection's page cache stays warm only while no other
 * connection commits (SQLite empties it otherwise).  A thread that finds
 * it in use does not wait: it hands the job to the thread using it
 * (ims_store_exec_hand), which runs it before it lets go and posts the
 * completion to the job's loop; so no worker sleeps while another runs
 * store work, and the connection's user runs the queue it finds (no
 * thread wake-up per job).  Write transactions of all connections of a
 * file take turns on one mutex (store_sqlite.c), never SQLite's sleeping
 * busy handler.
 *
 * One transaction per run: the work's store calls run in a read
 * transaction (SQLite BEGIN DEFERRED: one snapshot, one round of SQLite's
 * file locks instead of one per statement), which its first write ends
 * and replaces with a write transaction (BEGIN IMMEDIATE under the write
 * mutex) that lasts to the end of the run, each store call in a savepoint
 * (st_req_begin, store_int.h).  If that transaction cannot commit,
 * nothing of it was stored and *work_rc is the error (IMS_EBACKEND,
 * IMS_ENOMEM) whatever work returned; so work hands its results out only
 * after the call returned, never from inside work.
 *
 * Durability is as for a store thread: the run returns once the work's
 * writes are flushed, except lazy writes (IMS_STORE_RUN_LAZY, the
 * Server-Name a MAR stores, and SQNs: the executor takes an SQN generation
 * at start, store_int.h): they are committed at once (they survive a crash
 * of the process: the OS has them) and a background flusher of the
 * executor fdatasyncs them at most every flush_ms (below) once something
 * was committed (a power cut may lose the last flush_ms of them; an SQN
 * among them is never handed out again).
 * docs/internals/hss-store.md.
 *
 * Not for PostgreSQL (a worker must not wait on the network) nor
 * "sqlite::memory:" (a private database per connection): there
 * ims_store_exec_inline_ok() is false and ims_store_exec_run() refuses. */

/* true when ims_store_exec_run() can run work on the calling thread. */
bool ims_store_exec_inline_ok(const struct ims_store_exec *x);

/* The writes of the work need no flush before it returns (st_lazy). */
#define IMS_STORE_RUN_LAZY 1u

/* Runs work(store, arg) on the calling thread, with the inline
 * connection, and stores its return value in *work_rc; then, before it
 * returns, the jobs other threads handed over meanwhile.  Returns 0 when
 * work ran, otherwise work did not run: IMS_EAGAIN (another thread is
 * using the connection: hand the job over, ims_store_exec_hand), IMS_EINVAL
 * (not inline_ok, or ims_store_exec_free() started: submit it instead).
 * Thread-safe; must not be called from inside work, nor once
 * ims_store_exec_free() may have returned. */
int ims_store_exec_run(struct ims_store_exec *x, unsigned flags, ims_store_work_fn work,
                       void *arg, int *work_rc);

/* Several works in ONE run: what ims_store_exec_run() does for one, with
 * one transaction for all of them (each store call still in its own
 * savepoint), run in order, each with its flags; so n requests that
 * arrived together share one BEGIN, one COMMIT and one round of SQLite's
 * file locks (bench/ims: the Cx requests of one loop turn).  If the
 * transaction cannot commit, every run's rc is that error and nothing of
 * any of them was stored, as for a batch of a store thread.  Returns as
 * ims_store_exec_run() does (0: every work ran and its rc is set; else
 * none ran). */
struct ims_store_run {
    unsigned flags;
    ims_store_work_fn work;
    void *arg;
    int rc; /* out */
};
int ims_store_exec_run_many(struct ims_store_exec *x, struct ims_store_run *runs, size_t n);

/* After IMS_EAGAIN from ims_store_exec_run(): queues job for the thread
 * using the inline connection, which runs work(store, arg) as
 * ims_store_exec_run_many() would, with the other jobs handed over
 * meanwhile (flags alike; one transaction for up to 32 of them), and posts
 * done(loop, rc, arg) to loop once it committed; if that thread let go meanwhile, the job runs here, its done
 * still posted (never called from inside this call).  job is borrowed,
 * cancel may be NULL, as for ims_store_exec_submit() (rule 1, 2 with a
 * loop).  0, or IMS_EINVAL (not inline_ok, loop NULL, or
 * ims_store_exec_free() started: nothing runs; submit instead). */
int ims_store_exec_hand(struct ims_store_exec *x, unsigned flags, struct ims_loop *loop,
                        struct ims_store_job *job, ims_store_work_fn work,
                        ims_store_done_fn done, ims_store_cancel_fn cancel, void *arg);

#endif
