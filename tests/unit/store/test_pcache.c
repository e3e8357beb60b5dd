/* test_pcache.c - store/sqlite_pcache.h: SQLite's page cache behind a
 * truncation skipped when nothing is past its limit.  Real SQLite on temp
 * files: B-tree splits that rekey pages through the pending-byte page are
 * followed by skipped truncations; a rolled-back growth, another
 * connection's commit and a shrinking database are still truncated, and
 * the data stays whole (integrity_check, counts) in each case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/sqlite_pcache.h"

struct fix {
    char dir[64];
    char path[96];
    sqlite3 *db;
};

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                  "PRAGMA cache_size=-65536;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

static long long one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_intact(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* Rows with random keys (splits everywhere in the index) in transactions
 * of per_tx rows; keys from seed on, so runs are repeatable. */
static void insert_random(sqlite3 *db, unsigned *seed, int txs, int per_tx)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(k, v) VALUES (?, zeroblob(300))", -1,
                                        &st, NULL),
                     SQLITE_OK);
    for (int t = 0; t < txs; t++) {
        exec(db, "BEGIN IMMEDIATE");
        for (int i = 0; i < per_tx; i++) {
            char key[48];
            int n = snprintf(key, sizeof(key), "sip:%08x%08x@ims.test", rand_r(seed),
                             rand_r(seed));
            assert_int_equal(sqlite3_bind_text(st, 1, key, n, SQLITE_TRANSIENT), SQLITE_OK);
            assert_int_equal(sqlite3_step(st), SQLITE_DONE);
            sqlite3_reset(st);
        }
        exec(db, "COMMIT");
    }
    sqlite3_finalize(st);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ims-pcache.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
    f->db = open_db(f->path);
    exec(f->db, "CREATE TABLE t(k TEXT PRIMARY KEY, v BLOB)");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    sqlite3_close(f->db);
    const char *sfx[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A growing database under splits: pages pass through the temporary key,
 * and no COMMIT's truncation reaches pcache1 (none has anything to drop). */
static void test_splits_skip_truncation(void **state)
{
    struct fix *f = *state;
    struct ims_sqlite_pcache_stats a, b;
    unsigned seed = 1;
    insert_random(f->db, &seed, 5, 50); /* a few levels of B-tree first */
    ims_sqlite_pcache_stats(&a);
    insert_random(f->db, &seed, 200, 20);
    ims_sqlite_pcache_stats(&b);
    assert_true(b.temp_rekeys > a.temp_rekeys);              /* balance_nonroot swapped pages */
    assert_true(b.truncates_skipped >= a.truncates_skipped + 200); /* one per COMMIT */
    assert_int_equal(b.truncates_passed, a.truncates_passed);
    assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 5 * 50 + 200 * 20);
    assert_intact(f->db);
}

/* Pages appended by a transaction that rolls back are past the restored
 * size: that truncation must reach pcache1, and the database grows again
 * cleanly from there. */
static void test_rollback_truncates(void **state)
{
    struct fix *f = *state;
    struct ims_sqlite_pcache_stats a, b;
    unsigned seed = 2;
    insert_random(f->db, &seed, 10, 50);
    long long pages = one_int(f->db, "PRAGMA page_count");
    ims_sqlite_pcache_stats(&a);
    exec(f->db, "BEGIN IMMEDIATE");
    exec(f->db, "INSERT INTO t(k, v) SELECT k || '.x', zeroblob(2000) FROM t");
    assert_true(one_int(f->db, "PRAGMA page_count") > pages + 100);
    exec(f->db, "ROLLBACK");
    ims_sqlite_pcache_stats(&b);
    assert_int_equal(one_int(f->db, "PRAGMA page_count"), pages);
    assert_int_equal(one_int(f->db, "SELECT count(*) FROM t WHERE k LIKE '%.x'"), 0);
    insert_random(f->db, &seed, 20, 50);
    assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 30 * 50);
    assert_intact(f->db);
    assert_true(b.truncates_passed > a.truncates_passed);
}

/* Another connection's commit empties this connection's cache at its next
 * read (a truncation to nothing): it must reach pcache1, or this
 * connection would read its old pages. */
static void test_other_connection(void **state)
{
    struct fix *f = *state;
    struct ims_sqlite_pcache_stats a, b;
    unsigned seed = 3;
    insert_random(f->db, &seed, 10, 50);
    sqlite3 *other = open_db(f->path);
    assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 500);
    insert_random(f->db, &seed, 10, 50);
    exec(f->db, "UPDATE t SET v = zeroblob(10) WHERE rowid % 3 = 0");
    long long updated = one_int(f->db, "SELECT count(*) FROM t WHERE rowid % 3 = 0");
    ims_sqlite_pcache_stats(&a);
    assert_int_equal(one_int(other, "SELECT count(*) FROM t WHERE length(v) = 10"), updated);
    ims_sqlite_pcache_stats(&b);
    assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 1000);
    assert_intact(other);
    assert_true(b.truncates_passed > a.truncates_passed);
    sqlite3_close(other);
}

/* A database that shrinks (VACUUM after deletes) leaves cached pages past
 * its new end: truncated, and everything still reads. */
static void test_shrink(void **state)
{
    struct fix *f = *state;
    unsigned seed = 4;
    insert_random(f->db, &seed, 20, 50);
    long long before = one_int(f->db, "PRAGMA page_count");
    exec(f->db, "DELETE FROM t WHERE rowid % 4 != 0");
    exec(f->db, "VACUUM");
    assert_true(one_int(f->db, "PRAGMA page_count") < before);
    assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 250);
    insert_random(f->db, &seed, 20, 50);
    assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 250 + 1000);
    assert_intact(f->db);
}

int main(void)
{
    /* before anything initialises SQLite, as store_sqlite.c does */
    if (ims_sqlite_pcache_install() != 0) {
        fprintf(stderr, "ims_sqlite_pcache_install failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_splits_skip_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shrink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
