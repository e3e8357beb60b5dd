/* store_sqlite.c - the SQLite driver (the embedded default).
 *
 * One connection per struct ims_store, in WAL mode (readers do not block
 * the writer), foreign keys on, synchronous=FULL (a committed SQN survives
 * a power cut, not only a crash: that is the rule "an SQN is never handed
 * out twice"), secure_delete on (rewritten ciphertexts do not linger in
 * free pages), and a 5 s busy timeout so several processes can share the
 * file.  Write transactions are BEGIN IMMEDIATE: they take the write lock
 * up front, so two SQN allocations never deadlock upgrading a read lock.
 *
 * SQLite's own memory comes from ims_alloc (SQLITE_CONFIG_MALLOC, set once
 * per process before SQLite initialises), so the fault-injection tests
 * reach its allocations too; SQLITE_NOMEM maps to IMS_ENOMEM. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "store/store_int.h"

struct store_stmt {
    struct store_db *db;
    sqlite3_stmt *st;
};

struct store_db {
    sqlite3 *h;
    char err[256];
    struct store_stmt stmts[Q__N];
};

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
    /* Lookaside buffers would hide allocations from fault injection and
     * cost 1.2 MB per connection for little gain here. */
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
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
    sqlite3_close(db->h);
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
         * its permissions. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "sqlite: cannot open %s: %s", path, strerror(errno));
            return IMS_EBACKEND;
        }
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
    sqlite3_busy_timeout(db->h, 5000);
    const char *setup = memory ? "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                               : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                 "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;";
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

static int sq_begin(struct store_db *db)
{
    return run(db, "BEGIN IMMEDIATE");
}

static int sq_commit(struct store_db *db)
{
    return run(db, "COMMIT");
}

static void sq_rollback(struct store_db *db)
{
    /* Fails harmlessly when SQLite already rolled back (after NOMEM). */
    if (!sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
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

static int sq_step(struct store_stmt *s)
{
    return map_rc(s->db, sqlite3_step(s->st));
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
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
}

static const char sqlite_lock[] = "";

const struct store_driver store_sqlite_driver = {
    .name = "sqlite",
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
};
