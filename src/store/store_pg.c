/* store_pg.c - the PostgreSQL driver (libpq).
 *
 * One blocking connection per struct ims_store (the store runs on store
 * threads, see exec.h).  Statements are prepared on first use per
 * connection (PQprepare, named "ims_q<n>"), with the '?' placeholders of
 * store_sql.c rewritten to $1, $2, ...; parameters and results travel as
 * text.  A lost connection is reset after the failing call returns
 * IMS_EBACKEND; the next call reconnects and prepares again.
 *
 * The connection string may hold a password: it is never logged, and
 * libpq's messages do not include it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "store/store_int.h"

struct store_stmt {
    struct store_db *db;
    enum store_q q;
    int nparams;
    char *vals[STORE_MAX_PARAMS]; /* owned copies; NULL binds SQL NULL */
    PGresult *res;
    int cur;                      /* row returned by the last step */
    bool executed;
    int64_t changes;
};

struct store_db {
    PGconn *c;
    bool prepared[Q__N];
    struct store_stmt stmts[Q__N];
    char err[256];
};

static void set_err(struct store_db *db, const char *what, const char *msg)
{
    size_t n = (size_t)snprintf(db->err, sizeof(db->err), "postgresql: %s%s%s", what,
                                msg && *msg ? ": " : "", msg ? msg : "");
    /* libpq messages end in a newline */
    while (n && n < sizeof(db->err) && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
}

/* After a failure: if the connection is gone, reset it now so the next
 * call starts on a fresh one (server-side prepared statements are gone
 * with the old session). */
static void check_conn(struct store_db *db)
{
    if (PQstatus(db->c) != CONNECTION_BAD)
        return;
    LOG_W("store", "event=pg_reconnect");
    PQreset(db->c);
    memset(db->prepared, 0, sizeof(db->prepared));
}

static int result_rc(struct store_db *db, PGresult *res, const char *what)
{
    if (!res) {
        set_err(db, what, PQerrorMessage(db->c));
        check_conn(db);
        return IMS_EBACKEND;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    set_err(db, what, PQresultErrorMessage(res));
    if (state && !strncmp(state, "23", 2)) /* class 23: integrity constraint violation */
        return STORE_ECONSTRAINT;
    check_conn(db);
    return IMS_EBACKEND;
}

static void notice(void *arg, const char *msg)
{
    LOG_D("store", "event=pg_notice msg=\"%.*s\"", (int)strcspn(msg, "\n"), msg);
}

static void pg_close(struct store_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < Q__N; i++) {
        struct store_stmt *s = &db->stmts[i];
        PQclear(s->res);
        for (int j = 0; j < STORE_MAX_PARAMS; j++)
            ims_free(s->vals[j]);
    }
    PQfinish(db->c);
    ims_free(db);
}

static int pg_open(const char *conninfo, struct store_db **out, char *err, size_t errlen)
{
    struct store_db *db = ims_calloc(1, sizeof(*db));
    if (!db)
        return IMS_ENOMEM;
    for (int i = 0; i < Q__N; i++) {
        db->stmts[i].db = db;
        db->stmts[i].q = (enum store_q)i;
    }
    db->c = PQconnectdb(conninfo);
    if (!db->c) {
        ims_free(db);
        return IMS_ENOMEM;
    }
    if (PQstatus(db->c) != CONNECTION_OK) {
        set_err(db, "cannot connect", PQerrorMessage(db->c));
        snprintf(err, errlen, "%s", db->err);
        pg_close(db);
        return IMS_EBACKEND;
    }
    PQsetNoticeProcessor(db->c, notice, NULL);
    *out = db;
    return 0;
}

static int run(struct store_db *db, const char *sql, const char *what)
{
    PGresult *res = PQexec(db->c, sql);
    int rc = result_rc(db, res, what);
    PQclear(res);
    return rc;
}

static int pg_exec(struct store_db *db, const char *script)
{
    return run(db, script, "script");
}

static int pg_begin(struct store_db *db)
{
    return run(db, "BEGIN", "begin");
}

static int pg_commit(struct store_db *db)
{
    return run(db, "COMMIT", "commit");
}

static void pg_rollback(struct store_db *db)
{
    if (PQtransactionStatus(db->c) != PQTRANS_IDLE)
        PQclear(PQexec(db->c, "ROLLBACK"));
}

static void stmt_clear(struct store_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    for (int j = 0; j < s->nparams; j++) {
        ims_free(s->vals[j]);
        s->vals[j] = NULL;
    }
    s->nparams = 0;
    s->executed = false;
    s->cur = -1;
    s->changes = 0;
}

/* '?' -> $n.  Our SQL has no '?' inside literals (patterns are parameters). */
static int convert(const char *sql, char *out, size_t cap)
{
    size_t o = 0;
    int n = 0;
    for (const char *p = sql; *p; p++) {
        if (o + 8 >= cap)
            return IMS_ELIMIT;
        if (*p == '?')
            o += (size_t)snprintf(out + o, cap - o, "$%d", ++n);
        else
            out[o++] = *p;
    }
    out[o] = '\0';
    return 0;
}

static int pg_prepare(struct store_db *db, enum store_q q, struct store_stmt **out)
{
    struct store_stmt *s = &db->stmts[q];
    stmt_clear(s);
    if (!db->prepared[q]) {
        char name[16], sql[2048];
        const char *text = store_sql[q].pg ? store_sql[q].pg : store_sql[q].sql;
        if (convert(text, sql, sizeof(sql)))
            return IMS_EINVAL;
        snprintf(name, sizeof(name), "ims_q%d", (int)q);
        PGresult *res = PQprepare(db->c, name, sql, 0, NULL);
        int rc = result_rc(db, res, "prepare");
        PQclear(res);
        if (rc)
            return rc == STORE_ECONSTRAINT ? IMS_EBACKEND : rc;
        db->prepared[q] = true;
    }
    *out = s;
    return 0;
}

static int set_param(struct store_stmt *s, int idx, char *v)
{
    if (idx < 1 || idx > STORE_MAX_PARAMS) {
        ims_free(v);
        return IMS_EINVAL;
    }
    ims_free(s->vals[idx - 1]);
    s->vals[idx - 1] = v;
    if (idx > s->nparams)
        s->nparams = idx;
    return 0;
}

static int pg_bind_int(struct store_stmt *s, int idx, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    char *p = ims_strndup(num, (size_t)n);
    if (!p)
        return IMS_ENOMEM;
    return set_param(s, idx, p);
}

static int pg_bind_text(struct store_stmt *s, int idx, ims_str v, bool null_if_empty)
{
    if (v.len == 0 && null_if_empty)
        return set_param(s, idx, NULL);
    /* Text parameters must be NUL-terminated: copy (the caller's slice is
     * not).  The front end rejects text containing NUL bytes. */
    char *p = ims_strndup(v.len ? v.p : "", v.len);
    if (!p)
        return IMS_ENOMEM;
    return set_param(s, idx, p);
}

static int pg_step(struct store_stmt *s)
{
    struct store_db *db = s->db;
    if (!s->executed) {
        char name[16];
        snprintf(name, sizeof(name), "ims_q%d", (int)s->q);
        s->res = PQexecPrepared(db->c, name, s->nparams, (const char *const *)s->vals, NULL,
                                NULL, 0);
        int rc = result_rc(db, s->res, "statement");
        if (rc) {
            if (PQstatus(db->c) != CONNECTION_OK)
                memset(db->prepared, 0, sizeof(db->prepared));
            PQclear(s->res);
            s->res = NULL;
            return rc;
        }
        s->executed = true;
        s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
        s->cur = -1;
    }
    if (s->cur + 1 < PQntuples(s->res)) {
        s->cur++;
        return STORE_ROW;
    }
    return STORE_DONE;
}

static int64_t pg_col_int(struct store_stmt *s, int col)
{
    if (PQgetisnull(s->res, s->cur, col))
        return 0;
    const char *v = PQgetvalue(s->res, s->cur, col);
    if (v[0] == 't' || v[0] == 'f') /* a boolean expression */
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static ims_str pg_col_text(struct store_stmt *s, int col)
{
    if (PQgetisnull(s->res, s->cur, col))
        return IMS_STR_NULL;
    return ims_str_make(PQgetvalue(s->res, s->cur, col),
                        (size_t)PQgetlength(s->res, s->cur, col));
}

static bool pg_col_null(struct store_stmt *s, int col)
{
    return PQgetisnull(s->res, s->cur, col) != 0;
}

static int64_t pg_changes(struct store_stmt *s)
{
    return s->changes;
}

static void pg_reset(struct store_stmt *s)
{
    stmt_clear(s);
}

static const char *pg_errmsg(struct store_db *db)
{
    return db->err;
}

/* Concurrent starters take turns migrating: a transaction-scoped advisory
 * lock (the number is arbitrary, fixed for imscloud's HSS schema). */
static const char pg_lock[] = "SELECT pg_advisory_xact_lock(7335210901)";

const struct store_driver store_pg_driver = {
    .name = "postgresql",
    .migrations = store_migrations_pg,
    .nmigrations = &store_nmigrations_pg,
    .migration_lock = pg_lock,
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .prepare = pg_prepare,
    .bind_int = pg_bind_int,
    .bind_text = pg_bind_text,
    .step = pg_step,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_null = pg_col_null,
    .changes = pg_changes,
    .reset = pg_reset,
    .errmsg = pg_errmsg,
};
