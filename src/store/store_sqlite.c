/* store_sqlite.c - the SQLite driver (the embedded default).
 *
 * One connection per struct ims_store, in WAL mode (readers do not block
 * the writer), foreign keys on, secure_delete on (rewritten ciphertexts do
 * not linger in free pages), and a 5 s busy timeout so several processes
 * can share the file.  Write transactions are BEGIN IMMEDIATE: they take
 * the write lock up front, so two SQN allocations never deadlock upgrading
 * a read lock.
 *
 * Durability: every write is flushed to disk before the call that made it
 * returns, as synchronous=FULL would do, but the flush is ours: the
 * connection runs synchronous=NORMAL and sq_commit() fdatasyncs the WAL
 * after the COMMIT, once the write lock is released, so the next writer
 * appends while this one waits for the disk.
 * The WAL is appended in order, so that flush also covers every commit
 * before it (a reader that saw this commit's data and wrote something
 * derived from it flushes after it).  Writes made while the store is in
 * lazy mode (store_int.h, st_lazy: the Server-Name a MAR stores, an SQN
 * within sq_sqn_lazy's bound) are committed without a flush: they survive
 * a crash of the process (the page cache has them), and the next flushed
 * commit, or store/exec.c's background flush (sq_flush, [hss] flush_ms later),
 * makes them durable.  An SQN a power cut loses is never handed out again
 * (SQN generations, store_int.h).
 * Checkpoints (copying the WAL into the database, two fsyncs) run between
 * batches (sq_idle), not inside a COMMIT with the write lock held.
 *
 * SQLite's own memory comes from ims_alloc (SQLITE_CONFIG_MALLOC, set once
 * per process before SQLite initialises), so the fault-injection tests
 * reach its allocations too; SQLITE_NOMEM maps to IMS_ENOMEM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "store/sqlite_pcache.h"
#include "store/store_int.h"

struct store_stmt {
    struct store_db *db;
    sqlite3_stmt *st;
};

struct wlock;

struct store_db {
    sqlite3 *h;
    char err[256];
    struct wlock *wl; /* the file's process-wide write lock; NULL for :memory: */
    bool wl_held;
    bool memory;     /* ":memory:": nothing to flush or checkpoint */
    int lazy;        /* > 0: writes need no flush (sq_set_lazy levels) */
    bool need_sync;  /* the open transaction wrote something not lazy */
    bool unflushed;  /* a lazy write was committed and not flushed since */
    uint64_t sqn_pending; /* SEQ steps of lazy SQN writes in the open transaction */
    bool idle_hooked; /* sq_idle() checkpoints, not SQLite's auto-checkpoint */
    int wal_frames;  /* frames in the WAL after our last commit (wal_hook) */
    sqlite3_stmt *tx[7]; /* BEGIN IMMEDIATE, COMMIT, ROLLBACK, savepoint ops, BEGIN */
    struct store_stmt stmts[Q__N];
};

/* ---- one writer per file in this process ----
 *
 * SQLite lets one connection write at a time.  A connection that loses
 * the race for BEGIN IMMEDIATE gets SQLITE_BUSY and its busy handler
 * sleeps (1, 2, 5 ... 100 ms) instead of being woken when the writer
 * commits.  So the connections of this process to one file take a mutex
 * around their write transactions: a waiting store thread is woken at the
 * other's COMMIT.  Other processes (imscloudctl) still meet the busy
 * handler.  The wait is bounded like busy_timeout (5 s) and then fails as
 * SQLite would, so a thread that holds a transaction on one connection and
 * begins one on another fails instead of deadlocking. */
struct wlock {
    struct wlock *next;
    unsigned refs;
    pthread_mutex_t mu;
    /* SEQ steps of this process's lazy SQN commits on the file (store_int.h
     * rule 3): all committed, and those a finished flush covers.  Both only
     * grow; committed - durable is what a power cut could lose. */
    atomic_uint_least64_t sqn_committed, sqn_durable;
    char path[]; /* canonical (realpath) */
};

static pthread_mutex_t wlocks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wlock *wlocks;

static struct wlock *wlock_get(const char *path)
{
    char canon[PATH_MAX];
    const char *key = realpath(path, canon) ? canon : path;
    struct wlock *w;
    pthread_mutex_lock(&wlocks_mu);
    for (w = wlocks; w && strcmp(w->path, key) != 0; w = w->next)
        ;
    if (w) {
        w->refs++;
    } else if ((w = ims_alloc(sizeof(*w) + strlen(key) + 1)) != NULL) {
        w->refs = 1;
        atomic_init(&w->sqn_committed, 0);
        atomic_init(&w->sqn_durable, 0);
        pthread_mutex_init(&w->mu, NULL);
        memcpy(w->path, key, strlen(key) + 1); /* sized for it just above */
        w->next = wlocks;
        wlocks = w;
    }
    pthread_mutex_unlock(&wlocks_mu);
    return w;
}

static void wlock_put(struct wlock *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&wlocks_mu);
    if (--w->refs == 0) {
        struct wlock **pp = &wlocks;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        pthread_mutex_destroy(&w->mu);
        ims_free(w);
    }
    pthread_mutex_unlock(&wlocks_mu);
}

static int wlock_take(struct store_db *db)
{
    if (!db->wl || db->wl_held)
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    int e = pthread_mutex_timedlock(&db->wl->mu, &until);
    if (e) {
        snprintf(db->err, sizeof(db->err), "sqlite: database is locked (%s)",
                 e == ETIMEDOUT ? "another store of this process writes for 5 s"
                                : strerror(e));
        return IMS_EBACKEND;
    }
    db->wl_held = true;
    return 0;
}

/* Once the connection is out of its transaction (commit, rollback, or
 * SQLite's own rollback after an I/O or memory error). */
static void wlock_drop(struct store_db *db)
{
    if (db->wl_held && sqlite3_get_autocommit(db->h)) {
        db->wl_held = false;
        pthread_mutex_unlock(&db->wl->mu);
    }
}

/* ---- memory: route SQLite through ims_alloc ---- */

/* Each block carries its size in front (SQLite's xSize needs it); 16 bytes
 * keep the payload aligned for any type. */
#define HDR 16

static void *mem_malloc(int n)
{
    if (n <= 0)
        return NULL;
    char *p = ims_alloc((size_t)n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + HDR;
}

static void mem_free(void *p)
{
    if (p)
        ims_free((char *)p - HDR);
}

static void *mem_realloc(void *p, int n)
{
    if (!p)
        return mem_malloc(n);
    if (n <= 0)
        return NULL;
    char *q = ims_realloc((char *)p - HDR, (size_t)n + HDR);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof(n));
    return q + HDR;
}

static int mem_size(void *p)
{
    int n;
    memcpy(&n, (char *)p - HDR, sizeof(n));
    return n;
}

static int mem_roundup(int n)
{
    return (n + 7) & ~7;
}

static int mem_init(void *arg)
{
    return SQLITE_OK;
}

static void mem_shutdown(void *arg)
{
}

static const sqlite3_mem_methods mem_methods = {
    mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup, mem_init, mem_shutdown, NULL,
};

static pthread_once_t mem_once = PTHREAD_ONCE_INIT;

static void mem_setup(void)
{
    /* Fails with SQLITE_MISUSE if someone initialised SQLite already:
     * then SQLite keeps its own allocator, which is fine outside tests. */
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem_methods) != SQLITE_OK)
        LOG_W("store", "event=sqlite_malloc_not_routed reason=already_initialised");
    /* Lookaside buffers would hide allocations from fault injection.  (On
     * Debian they do not exist anyway: its libsqlite3 is built with
     * SQLITE_OMIT_LOOKASIDE, `PRAGMA compile_options`, so every small
     * allocation of a statement reaches mem_malloc, ~57 a registration.) */
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
    /* No allocation statistics (sqlite3_memory_used, soft heap limit; we
     * use neither): each of SQLite's mallocs and frees took a process-wide
     * mutex for them, shared by every connection. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* pcache1 behind a truncation that knows when nothing is to drop
     * (sqlite_pcache.h: a COMMIT after a B-tree split walked the cache). */
    if (ims_sqlite_pcache_install() != 0)
        LOG_W("store", "event=sqlite_pcache_not_wrapped reason=already_initialised");
}

/* ---- errors ---- */

static int map_rc(struct store_db *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE: return STORE_DONE;
    case SQLITE_ROW: return STORE_ROW;
    case SQLITE_CONSTRAINT: return STORE_ECONSTRAINT;
    case SQLITE_NOMEM: return IMS_ENOMEM;
    default:
        snprintf(db->err, sizeof(db->err), "sqlite: %s (%d)",
                 db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc), rc);
        return IMS_EBACKEND;
    }
}

/* For a call that failed: never report success. */
static int err_rc(struct store_db *db, int rc)
{
    int m = map_rc(db, rc);
    return m == STORE_DONE || m == STORE_ROW ? IMS_EBACKEND : m;
}

static const char *sq_errmsg(struct store_db *db)
{
    return db->err;
}

/* ---- connection ---- */

static int run(struct store_db *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_NOMEM)
        snprintf(db->err, sizeof(db->err), "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : err_rc(db, rc);
}

static void sq_close(struct store_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < Q__N; i++)
        sqlite3_finalize(db->stmts[i].st);
    for (size_t i = 0; i < sizeof(db->tx) / sizeof(db->tx[0]); i++)
        sqlite3_finalize(db->tx[i]);
    sqlite3_close(db->h);
    if (db->wl_held)
        pthread_mutex_unlock(&db->wl->mu);
    wlock_put(db->wl);
    ims_free(db);
}

static int sq_open(const char *path, struct store_db **out, char *err, size_t errlen)
{
    bool memory = strcmp(path, ":memory:") == 0;
    int rc;
    pthread_once(&mem_once, mem_setup);
    if (!memory) {
        /* Create the file ourselves so it starts 0600 whatever the umask:
         * it holds ciphertexts and subscriber data.  WAL and SHM files copy
         * its permissions.  Only when it does not exist (O_EXCL): close()
         * on a file this process already has open drops every POSIX lock
         * the process holds on it, including the SHARED lock another
         * connection keeps in WAL mode; another process (imscloudctl) could
         * then checkpoint and delete the WAL under it and corrupt the
         * database ("How To Corrupt An SQLite Database File" §2.2). */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            snprintf(err, errlen, "sqlite: cannot open %s: %s", path, strerror(errno));
            return IMS_EBACKEND;
        }
        if (fd >= 0)
            close(fd);
    }
    struct store_db *db = ims_calloc(1, sizeof(*db));
    if (!db)
        return IMS_ENOMEM;
    for (int i = 0; i < Q__N; i++)
        db->stmts[i].db = db;
    rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                           SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        int mapped = (rc & 0xff) == SQLITE_NOMEM ? IMS_ENOMEM : IMS_EBACKEND;
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        sq_close(db);
        return mapped;
    }
    if (!memory && (db->wl = wlock_get(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        sq_close(db);
        return IMS_ENOMEM;
    }
    sqlite3_busy_timeout(db->h, 5000);
    db->memory = memory;
    /* NORMAL: sq_commit() flushes the WAL itself (see the top of the file).
     * cache_size: SQLite's default page cache (2 MiB) holds a fraction of
     * the pages a Cx request reads (an IMPU and its subscription, an SQN
     * row) once there are 100 000 subscribers: hss_storebench's AKA MARs
     * made 5.5 pread()s each with it, 0.65 with 64 MiB (filled only as
     * pages are read; one cache per connection). */
    const char *setup = memory ? "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                               : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                 "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; "
                                 "PRAGMA cache_size=-65536;";
    rc = run(db, setup);
    if (rc) {
        snprintf(err, errlen, "%s", rc == IMS_ENOMEM ? "out of memory" : db->err);
        sq_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int sq_exec(struct store_db *db, const char *script)
{
    return run(db, script);
}

/* ---- durability and checkpoints ---- */

/* WAL frames (pages) before sq_idle() checkpoints: SQLite's own default. */
#define CKPT_FRAMES 1000

/* fdatasync of the WAL: what synchronous=FULL does inside every COMMIT. */
static int wal_sync(struct store_db *db)
{
    sqlite3_file *f = NULL;
    if (db->memory)
        return 0;
    /* the flush covers this connection's earlier lazy commits too */
    db->unflushed = false;
    /* and every lazy SQN commit counted before it starts (sq_commit counts
     * after its COMMIT returned, so those are in the WAL already) */
    uint64_t covered = db->wl ? atomic_load(&db->wl->sqn_committed) : 0;
    int rc = sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
    if (rc == SQLITE_OK && f && f->pMethods)
        rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
    else if (rc == SQLITE_OK)
        rc = SQLITE_IOERR; /* no WAL open after a commit: never seen */
    if (rc != SQLITE_OK) {
        snprintf(db->err, sizeof(db->err), "sqlite: cannot flush the WAL (%s)",
                 sqlite3_errstr(rc));
        return IMS_EBACKEND;
    }
    if (db->wl) { /* durable = max(durable, covered) */
        uint64_t d = atomic_load(&db->wl->sqn_durable);
        while (d < covered && !atomic_compare_exchange_weak(&db->wl->sqn_durable, &d, covered))
            ;
    }
    return 0;
}

/* store_int.h rule 3, inside a write transaction (the file's write lock
 * is held, so no other connection of this process counts meanwhile). */
static bool sq_sqn_lazy(struct store_db *db, uint64_t steps)
{
    if (db->memory || !db->wl || !db->wl_held)
        return false;
    uint64_t committed = atomic_load(&db->wl->sqn_committed);
    uint64_t durable = atomic_load(&db->wl->sqn_durable);
    uint64_t open = committed > durable ? committed - durable : 0;
    if (steps > SQN_LAZY_MAX || open + db->sqn_pending > SQN_LAZY_MAX - steps)
        return false;
    db->sqn_pending += steps;
    return true;
}

static int wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
    struct store_db *db = arg;
    db->wal_frames = frames;
    return SQLITE_OK;
}

/* Copies into the database what the WAL held when it started, without
 * waiting for readers or writers. */
static bool passive_checkpoint(struct store_db *db, int *log, int *done)
{
    int c = sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_PASSIVE, log, done);
    if (c != SQLITE_OK && c != SQLITE_BUSY)
        LOG_W("store", "event=checkpoint_failed err=\"%s\"", sqlite3_errmsg(db->h));
    return c == SQLITE_OK;
}

/* Between batches (store/exec.c): a checkpoint is due here, without the
 * write lock and after the batch's answers left, instead of inside the
 * COMMIT that crossed SQLite's threshold.  The first call takes
 * checkpoints over from SQLite (a connection never idled, as in
 * imscloudctl, keeps SQLite's).  With a background flusher the connection
 * only reports it (may_checkpoint false): copying ~1000 pages and two
 * fsyncs took a store thread away from its queue for milliseconds, the
 * p99 of a MAR at 20 000/s. */
static bool sq_idle(struct store_db *db, bool may_checkpoint)
{
    if (db->memory)
        return false;
    if (!db->wl) /* never: file databases have one */
        return false;
    if (!db->idle_hooked) {
        sqlite3_wal_hook(db->h, wal_hook, db); /* replaces the auto-checkpoint */
        db->idle_hooked = true;
        return false;
    }
    if (db->wal_frames < CKPT_FRAMES || !sqlite3_get_autocommit(db->h))
        return false;
    if (!may_checkpoint) {
        db->wal_frames = 0; /* asked once; the next commit reports the WAL again */
        return true;
    }
    int log = 0, done = 0;
    passive_checkpoint(db, &log, &done);
    db->wal_frames = 0; /* the next commit reports the WAL's size again */
    return false;
}

/* Transaction control as cached statements: sqlite3_exec() would parse
 * the text on every call, several times per request. */
enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_SP, TX_RELEASE, TX_ROLLBACK_TO, TX_BEGIN_READ };

static int run_tx(struct store_db *db, int which)
{
    static const char *const sql[] = { "BEGIN IMMEDIATE",    "COMMIT",         "ROLLBACK",
                                       "SAVEPOINT ims_sp",   "RELEASE ims_sp", "ROLLBACK TO ims_sp",
                                       "BEGIN DEFERRED" };
    int rc;
    if (!db->tx[which]) {
        rc = sqlite3_prepare_v3(db->h, sql[which], -1, SQLITE_PREPARE_PERSISTENT, &db->tx[which],
                                NULL);
        if (rc != SQLITE_OK) {
            db->tx[which] = NULL;
            return err_rc(db, rc);
        }
    }
    rc = sqlite3_step(db->tx[which]);
    sqlite3_reset(db->tx[which]);
    return rc == SQLITE_DONE ? 0 : err_rc(db, rc);
}

static int sq_savepoint(struct store_db *db, int op)
{
    return run_tx(db, TX_SP + op);
}

static int sq_begin(struct store_db *db)
{
    int rc = wlock_take(db);
    if (rc)
        return rc;
    rc = run_tx(db, TX_BEGIN);
    if (rc)
        wlock_drop(db);
    return rc;
}

/* The flush comes after the write lock is released: the next batch
 * writes while this one waits for the disk.  Its callers hand nothing out
 * before this returns (exec.c posts completions after it). */
static int sq_commit(struct store_db *db)
{
    int rc = run_tx(db, TX_COMMIT);
    if (rc == 0 && db->sqn_pending && db->wl) /* before the lock goes: counted in order */
        atomic_fetch_add(&db->wl->sqn_committed, db->sqn_pending);
    if (rc == 0 || sqlite3_get_autocommit(db->h))
        db->sqn_pending = 0;
    wlock_drop(db); /* kept if the transaction is still open: rollback drops it */
    if (rc == 0 && db->need_sync)
        rc = wal_sync(db);
    if (rc == 0 || sqlite3_get_autocommit(db->h))
        db->need_sync = false;
    return rc;
}

static void sq_rollback(struct store_db *db)
{
    /* Fails harmlessly when SQLite already rolled back (after NOMEM). */
    if (!sqlite3_get_autocommit(db->h) && run_tx(db, TX_ROLLBACK) != 0)
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    wlock_drop(db);
    db->need_sync = false;
    db->sqn_pending = 0;
}

/* A request's read transaction (st_req_begin): its statements share one
 * WAL snapshot, so SQLite takes its read mark (a lock on the -shm file)
 * and checks the WAL index once per request instead of once per
 * statement.  No write lock: reads never wait for writers in WAL mode. */
static int sq_begin_read(struct store_db *db)
{
    return run_tx(db, TX_BEGIN_READ);
}

/* A write made in it anyway (a store call that wrote without st_begin)
 * took SQLite's write lock by itself: committed, and flushed unless lazy,
 * by sq_commit like any other. */
static int sq_end_read(struct store_db *db)
{
    if (sqlite3_get_autocommit(db->h)) /* SQLite rolled it back after an error */
        return 0;
    int rc = sq_commit(db);
    if (rc)
        sq_rollback(db);
    return rc;
}

static bool sq_data_version(struct store_db *db, uint32_t *out)
{
    unsigned v = 0;
    if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK)
        return false;
    *out = v;
    return true;
}

static void sq_set_lazy(struct store_db *db, bool lazy)
{
    if (lazy)
        db->lazy++;
    else if (db->lazy > 0)
        db->lazy--;
}

static bool sq_take_unflushed(struct store_db *db)
{
    bool was = db->unflushed;
    db->unflushed = false;
    return was;
}

/* The flusher's checkpoint.  A passive one copies what was committed
 * before it started; under steady writes, new frames always arrive while
 * it copies, so it never catches up with the end of the WAL, and SQLite
 * only starts the WAL over (writing from its beginning again) when a
 * writer finds every frame copied.  Without that the WAL grew by the whole
 * write traffic (1.8 GB in 24 s of AKA MARs at 15 000/s, bench/hss), and
 * appending to a growing file made each fdatasync commit ext4's journal.
 * So while the WAL is past st_wal_restart_frames, a second pass copies the
 * remainder (what arrived during the first: little) with this process's
 * writers held off (the file's write lock), and the next writer starts the
 * WAL over.  A reader still in the WAL then (another process, or a read
 * transaction of ours) makes it wait for the next such pass.  That pass
 * holds writers for its two fsyncs, 5-40 ms under that load: at 64 MiB it
 * came twice a second and set the p99, at 1 GiB it comes every 8-10 s. */
int st_wal_restart_frames = 262144; /* 1 GiB of 4 KiB pages */

static void checkpoint_and_restart(struct store_db *db)
{
    int log = 0, done = 0;
    /* log is the WAL as this pass saw it at its start: frames committed
     * since are not in it, so done == log says nothing about them */
    if (!passive_checkpoint(db, &log, &done) || log < st_wal_restart_frames || !db->wl)
        return;
    if (wlock_take(db) != 0) {
        LOG_W("store", "event=checkpoint_restart_skipped err=\"%s\"", db->err);
        return;
    }
    int log2 = 0, done2 = 0;
    passive_checkpoint(db, &log2, &done2);
    wlock_drop(db);
    LOG_D("store", "event=wal_restart_due frames=%d copied_first=%d copied_then=%d", log, done,
          done2);
}

/* store/exec.c's background flush, on a connection of its own: the WAL
 * is one file that every connection appends to in commit order, so its
 * fdatasync here makes every commit so far durable, whoever made it.  A
 * connection opens the WAL at its first read; the flusher's may not have
 * read yet. */
static int sq_flush(struct store_db *db, bool checkpoint)
{
    sqlite3_file *f = NULL;
    if (db->memory)
        return 0;
    if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK ||
        !f || !f->pMethods) {
        int rc = run(db, "SELECT count(*) FROM sqlite_master");
        if (rc)
            return rc;
    }
    int rc = wal_sync(db);
    if (rc == 0 && checkpoint)
        checkpoint_and_restart(db);
    return rc;
}

/* ---- statements ---- */

static int sq_prepare(struct store_db *db, enum store_q q, struct store_stmt **out)
{
    struct store_stmt *s = &db->stmts[q];
    if (!s->st) {
        int rc = sqlite3_prepare_v3(db->h, store_sql[q].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->st, NULL);
        if (rc != SQLITE_OK) {
            s->st = NULL;
            return err_rc(db, rc);
        }
    } else {
        sqlite3_reset(s->st);
        sqlite3_clear_bindings(s->st);
    }
    *out = s;
    return 0;
}

static int sq_bind_int(struct store_stmt *s, int idx, int64_t v)
{
    int rc = sqlite3_bind_int64(s->st, idx, v);
    return rc == SQLITE_OK ? 0 : err_rc(s->db, rc);
}

static int sq_bind_text(struct store_stmt *s, int idx, ims_str v, bool null_if_empty)
{
    int rc;
    if (v.len == 0 && null_if_empty)
        rc = sqlite3_bind_null(s->st, idx);
    else /* borrowed until reset (rule 3); "" for an empty, non-NULL text */
        rc = sqlite3_bind_text(s->st, idx, v.len ? v.p : "", (int)v.len, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : err_rc(s->db, rc);
}

/* A statement that wrote makes the COMMIT flush (unless lazy); on its own
 * (autocommit) it is flushed here, or, when it still has rows to give
 * (RETURNING), once its reset committed it (sq_reset). */
static int sq_step(struct store_stmt *s)
{
    struct store_db *db = s->db;
    int rc = map_rc(db, sqlite3_step(s->st));
    if ((rc != STORE_DONE && rc != STORE_ROW) || sqlite3_stmt_readonly(s->st))
        return rc;
    if (db->lazy) { /* committed now or by its transaction: the flusher's */
        db->unflushed = true;
        return rc;
    }
    db->need_sync = true;
    if (rc == STORE_ROW || !sqlite3_get_autocommit(db->h))
        return rc;
    db->need_sync = false;
    return wal_sync(db) == 0 ? rc : IMS_EBACKEND;
}

static int64_t sq_col_int(struct store_stmt *s, int col)
{
    return sqlite3_column_int64(s->st, col);
}

static ims_str sq_col_text(struct store_stmt *s, int col)
{
    /* Our TEXT columns hold UTF-8 text, so no conversion (and no
     * allocation) happens here. */
    const char *p = (const char *)sqlite3_column_text(s->st, col);
    return p ? ims_str_make(p, (size_t)sqlite3_column_bytes(s->st, col)) : IMS_STR_NULL;
}

static bool sq_col_null(struct store_stmt *s, int col)
{
    return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

static int64_t sq_changes(struct store_stmt *s)
{
    return sqlite3_changes64(s->db->h);
}

static void sq_reset(struct store_stmt *s)
{
    struct store_db *db = s->db;
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    if (db->need_sync && sqlite3_get_autocommit(db->h)) {
        db->need_sync = false;
        if (wal_sync(db) != 0) /* nothing to return it to: the next flush retries */
            LOG_E("store", "event=wal_flush_failed err=\"%s\"", db->err);
    }
}

static const char sqlite_lock[] = "";

const struct store_driver store_sqlite_driver = {
    .name = "sqlite",
    .serial_writes = true,
    .migrations = store_migrations_sqlite,
    .nmigrations = &store_nmigrations_sqlite,
    .migration_lock = sqlite_lock,
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .prepare = sq_prepare,
    .bind_int = sq_bind_int,
    .bind_text = sq_bind_text,
    .step = sq_step,
    .col_int = sq_col_int,
    .col_text = sq_col_text,
    .col_null = sq_col_null,
    .changes = sq_changes,
    .reset = sq_reset,
    .errmsg = sq_errmsg,
    .savepoint = sq_savepoint,
    .set_lazy = sq_set_lazy,
    .idle = sq_idle,
    .take_unflushed = sq_take_unflushed,
    .flush = sq_flush,
    .begin_read = sq_begin_read,
    .end_read = sq_end_read,
    .data_version = sq_data_version,
    .sqn_lazy = sq_sqn_lazy,
};
