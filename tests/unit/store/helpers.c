/* Test fixtures for the store suite: temp dirs, key repositories, fresh
 * databases on either backend, raw SQL for tampering. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store_tests.h"

static unsigned db_counter;
static char pg_schema[64];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rmtree(const char *dir)
{
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *sqlite_path(const struct tfix *f)
{
    return f->url + strlen("sqlite:");
}

static PGconn *pg_admin(void)
{
    PGconn *c = PQconnectdb(getenv("IMS_TEST_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
    return c;
}

static void pg_run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

void tfix_new_db(struct tfix *f)
{
    if (test_pg) {
        if (!pg_schema[0]) {
            /* One schema per test process; every store connection finds it
             * through PGOPTIONS (whatever form the DSN takes). */
            char opt[128];
            snprintf(pg_schema, sizeof(pg_schema), "ims_test_%d", (int)getpid());
            snprintf(opt, sizeof(opt), "-c search_path=%s -c client_min_messages=warning",
                     pg_schema);
            setenv("PGOPTIONS", opt, 1);
        }
        char sql[256];
        PGconn *c = pg_admin();
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
                 pg_schema, pg_schema);
        pg_run(c, sql);
        PQfinish(c);
        snprintf(f->url, sizeof(f->url), "pg:%s", getenv("IMS_TEST_PG_DSN"));
        return;
    }
    char path[400];
    if (f->url[0]) { /* drop the previous database */
        snprintf(path, sizeof(path), "%s", sqlite_path(f));
        unlink(path);
        strcat(path, "-wal");
        unlink(path);
        path[strlen(path) - 4] = '\0';
        strcat(path, "-shm");
        unlink(path);
    }
    snprintf(f->url, sizeof(f->url), "sqlite:%s/hss-%u.db", f->dir, ++db_counter);
}

bool test_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return false;
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    return true;
}

int tfix_setup(void **state)
{
    struct tfix *f = calloc(1, sizeof(*f));
    char err[IMS_KEYREPO_ERRLEN];
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ims-store-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->keydir, sizeof(f->keydir), "%s/keys", f->dir);
    if (ims_keyrepo_create(f->keydir, err, sizeof(err)) ||
        ims_keyrepo_open(f->keydir, &f->repo, err, sizeof(err))) {
        fprintf(stderr, "keyrepo: %s\n", err);
        return -1;
    }
    tfix_new_db(f);
    int rc = ims_store_open(f->url, f->repo, &f->st);
    if (rc) {
        fprintf(stderr, "store open %s: %s\n", test_pg ? "pg" : f->url, ims_strerror(rc));
        return -1;
    }
    *state = f;
    return 0;
}

int tfix_teardown(void **state)
{
    struct tfix *f = *state;
    ims_store_close(f->st);
    ims_keyrepo_free(f->repo);
    rmtree(f->dir);
    if (test_pg && pg_schema[0]) {
        char sql[128];
        PGconn *c = pg_admin();
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", pg_schema);
        pg_run(c, sql);
        PQfinish(c);
    }
    free(f);
    return 0;
}

void tfix_reopen(struct tfix *f)
{
    ims_store_close(f->st);
    f->st = NULL;
    assert_int_equal(ims_store_open(f->url, f->repo, &f->st), 0);
}

/* sql on its own connection to f's SQLite file; its error text (if any)
 * into msg (sqlite3_free it). */
static int sqlite_exec_alone(struct tfix *f, const char *sql, char **msg)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(sqlite_path(f), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, msg);
    sqlite3_close(db);
    return rc;
}

void tfix_sql(struct tfix *f, const char *sql)
{
    if (test_pg) {
        PGconn *c = pg_admin();
        pg_run(c, sql);
        PQfinish(c);
        return;
    }
    char *msg = NULL;
    if (sqlite_exec_alone(f, sql, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

void tfix_sql_value(struct tfix *f, const char *sql, char *out, size_t cap)
{
    out[0] = '\0';
    if (test_pg) {
        PGconn *c = pg_admin();
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQresultErrorMessage(r));
        if (PQntuples(r) > 0)
            snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return;
    }
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(sqlite_path(f), &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int tfix_sql_rc(struct tfix *f, const char *sql)
{
    assert_false(test_pg);
    return sqlite_exec_alone(f, sql, NULL) & 0xff;
}

size_t tfix_explain_count(struct tfix *f, const char *sql, const char *opcode)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char q[1024];
    size_t n = 0;
    assert_false(test_pg);
    snprintf(q, sizeof(q), "EXPLAIN %s", sql);
    assert_int_equal(sqlite3_open(sqlite_path(f), &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) /* columns: addr, opcode, ... */
        if (sqlite3_column_text(st, 1) && strcmp((const char *)sqlite3_column_text(st, 1),
                                                 opcode) == 0)
            n++;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void append_file(const char *path, char **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char chunk[65536];
    size_t n;
    if (!fp)
        return;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        *buf = realloc(*buf, *len + n);
        memcpy(*buf + *len, chunk, n);
        *len += n;
    }
    fclose(fp);
}

char *tfix_db_bytes(struct tfix *f, size_t *len)
{
    char path[420];
    char *buf = NULL;
    if (test_pg)
        return NULL;
    *len = 0;
    snprintf(path, sizeof(path), "%s", sqlite_path(f));
    append_file(path, &buf, len);
    snprintf(path, sizeof(path), "%s-wal", sqlite_path(f));
    append_file(path, &buf, len);
    snprintf(path, sizeof(path), "%s-shm", sqlite_path(f));
    append_file(path, &buf, len);
    return buf;
}

void provision(struct ims_store *st, const char *sub, const char *impi, const uint8_t k[16],
               const uint8_t opc[16], const char *pw, const char *const *impus)
{
    struct ims_sub_rec s;
    static const uint8_t amf[2] = { 0x80, 0x00 };
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", sub);
    OK(st, ims_store_sub_add(st, &s));
    OK(st, ims_store_impi_add(st, S(sub), S(impi), S("ims.test"), IMS_AUTH_ALL));
    if (k)
        OK(st, ims_store_impi_set_aka(st, S(impi), k, opc, amf));
    if (pw)
        OK(st, ims_store_impi_set_password(st, S(impi), S(pw), false));
    for (size_t i = 0; impus && impus[i]; i++) {
        struct ims_impu_rec r;
        memset(&r, 0, sizeof(r));
        snprintf(r.identity, sizeof(r.identity), "%s", impus[i]);
        snprintf(r.subscription, sizeof(r.subscription), "%s", sub);
        r.irs = i < 2 ? 1 : 0;
        OK(st, ims_store_impu_add(st, &r));
        OK(st, ims_store_link(st, S(impi), S(impus[i])));
    }
}
