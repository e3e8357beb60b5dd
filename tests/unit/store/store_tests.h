#ifndef IMS_TEST_STORE_TESTS_H
#define IMS_TEST_STORE_TESTS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/str.h"
#include "crypto/keyrepo.h"
#include "store/store.h"

extern const struct CMUnitTest store_tests[];
extern const size_t store_ntests;
extern const struct CMUnitTest secrets_tests[];
extern const size_t secrets_ntests;
extern const struct CMUnitTest io_tests[];
extern const size_t io_ntests;
extern const struct CMUnitTest hss_auth_tests[];
extern const size_t hss_auth_ntests;
extern const struct CMUnitTest exec_tests[];
extern const size_t exec_ntests;
extern const struct CMUnitTest durable_tests[];
extern const size_t durable_ntests;
extern const struct CMUnitTest sqn_gen_tests[];
extern const size_t sqn_gen_ntests;
extern const struct CMUnitTest cache_tests[];
extern const size_t cache_ntests;

#define S(x) ims_str_cstr(x)

/* The backend under test: "sqlite" or "pg" (argv[1]). */
extern bool test_pg;

/* One test's world: a key repository in a temp dir, a fresh empty
 * database (SQLite file or PostgreSQL schema), and a store open on it. */
struct tfix {
    char dir[256];           /* temp dir: keys/, hss.db */
    char keydir[300];
    char url[600];
    struct ims_keyrepo *repo;
    struct ims_store *st;
};

/* cmocka setup/teardown: everything above, store open. */
int tfix_setup(void **state);
int tfix_teardown(void **state);
/* A fresh, empty database for f (drops the old one); sets f->url. */
void tfix_new_db(struct tfix *f);
/* Closes and reopens f->st on the same database. */
void tfix_reopen(struct tfix *f);
/* Runs raw SQL on f's database through a separate connection (tests only:
 * tampering with rows).  Fails the test on error. */
void tfix_sql(struct tfix *f, const char *sql);
/* Reads the first column of the first row of a query into out (text). */
void tfix_sql_value(struct tfix *f, const char *sql, char *out, size_t cap);
/* SQLite only: sqlite3_exec's primary result code for sql on a separate
 * connection (a statement expected to fail). */
int tfix_sql_rc(struct tfix *f, const char *sql);
/* SQLite only: how many instructions of sql's program are opcode. */
size_t tfix_explain_count(struct tfix *f, const char *sql, const char *opcode);
/* Reads every file of the SQLite database (db, -wal, -shm) into a malloc'd
 * buffer (*len bytes); NULL for PostgreSQL. */
char *tfix_db_bytes(struct tfix *f, size_t *len);

/* Copies file from to file to (fails the test on an I/O error); false,
 * and to untouched, when from does not exist. */
bool test_copy_file(const char *from, const char *to);

/* Provisions subscription sub with IMPI impi (realm "ims.test", all
 * schemes), K = k, OPc = opc, password pw, and IMPUs (NULL-terminated;
 * the first two share implicit set 1, later ones get new sets), all linked
 * to impi.  Fails the test on error. */
void provision(struct ims_store *st, const char *sub, const char *impi, const uint8_t k[16],
               const uint8_t opc[16], const char *pw, const char *const *impus);

/* Fails the test with the store's message when rc != 0. */
#define OK(st, expr)                                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s -> %s (%s)", #expr, ims_strerror(rc_), ims_store_errmsg(st));             \
    } while (0)
#endif
