/* ctl_tests.h - the imscloudctl unit tests' fixture: a temp state dir with
 * a configuration (roles = hss), a key repository and a SQLite store, and
 * ctl_run() in process with its output captured. */
#ifndef IMS_TEST_CTL_TESTS_H
#define IMS_TEST_CTL_TESTS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/str.h"
#include "cmd/ctl.h"
#include "crypto/keyrepo.h"
#include "store/store.h"

#define S(x) ims_str_cstr(x)

struct cfix {
    char dir[128];
    char conf[200];
    char url[256];
    char keys[200];
    char *out, *err; /* of the last run() */
    struct ims_keyrepo *repo;
    struct ims_store *st; /* a connection of the test's own */
};

/* Runs `imscloudctl -c CONF <cmdline>` in process (words split on single
 * spaces; no quoting).  Returns the exit code; f->out / f->err hold the
 * output. */
int run(struct cfix *f, const char *cmdline);
/* Opens f->repo and f->st (after `keys init` made the keys). */
void cfix_open(struct cfix *f);
/* The store's text export (the whole state, secrets as ciphertexts). */
char *store_text(struct cfix *f);
/* Writes text to <dir>/name; returns the path (static buffer). */
const char *write_file(struct cfix *f, const char *name, const char *text);

int cfix_setup(void **state);
int cfix_teardown(void **state);

extern bool ctl_test_pg; /* the store is PostgreSQL (test_ctl pg) */

extern const struct CMUnitTest json_tests[];
extern const size_t json_ntests;
extern const struct CMUnitTest cli_tests[];
extern const size_t cli_ntests;

#endif
