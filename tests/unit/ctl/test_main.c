/* test_ctl - imscloudctl's admin commands in process: the JSON document
 * (every validation path and message), argument errors, atomic changes
 * (a failing import or command leaves the store as it was), and exports
 * that never carry a secret. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libxml/parser.h>

#include "base/alloc.h"
#include "base/log.h"
#include "ctl_tests.h"

bool ctl_test_pg;

/* PostgreSQL: one schema per test process, made fresh for every test;
 * every connection (the test's, imscloudctl's) finds it through
 * PGOPTIONS. */
static void pg_fresh_schema(void)
{
    static char schema[64];
    char sql[256];
    if (!schema[0]) {
        char opt[160];
        snprintf(schema, sizeof(schema), "ims_ctl_test_%d", (int)getpid());
        snprintf(opt, sizeof(opt), "-c search_path=%s -c client_min_messages=warning", schema);
        setenv("PGOPTIONS", opt, 1);
    }
    PGconn *c = PQconnectdb(getenv("IMS_TEST_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int run(struct cfix *f, const char *cmdline)
{
    char *words = strdup(cmdline);
    char *argv[64];
    int argc = 0;
    argv[argc++] = "-c";
    argv[argc++] = f->conf;
    for (char *p = words, *w; (w = strsep(&p, " ")) != NULL && argc < 63;)
        if (*w)
            argv[argc++] = w;
    argv[argc] = NULL;
    free(f->out);
    free(f->err);
    size_t no, ne;
    FILE *out = open_memstream(&f->out, &no);
    FILE *err = open_memstream(&f->err, &ne);
    int rc = ctl_run(argc, argv, out, err);
    fclose(out);
    fclose(err);
    free(words);
    return rc;
}

void cfix_open(struct cfix *f)
{
    char err[IMS_KEYREPO_ERRLEN];
    if (!f->repo)
        assert_int_equal(ims_keyrepo_open(f->keys, &f->repo, err, sizeof(err)), 0);
    if (!f->st)
        assert_int_equal(ims_store_open(f->url, f->repo, &f->st), 0);
}

char *store_text(struct cfix *f)
{
    struct ims_buf b;
    cfix_open(f);
    ims_buf_init(&b, 1 << 24);
    assert_int_equal(ims_store_export(f->st, &b), 0);
    char *s = strdup(b.p);
    ims_buf_free(&b);
    return s;
}

const char *write_file(struct cfix *f, const char *name, const char *text)
{
    static char path[300];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

int cfix_setup(void **state)
{
    struct cfix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ims-ctl-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->conf, sizeof(f->conf), "%s/imscloud.conf", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s/var/hss.db", f->dir);
    snprintf(f->keys, sizeof(f->keys), "%s/var/keys", f->dir);
    char text[1024], store[400] = "";
    if (ctl_test_pg) {
        pg_fresh_schema();
        snprintf(f->url, sizeof(f->url), "pg:%s", getenv("IMS_TEST_PG_DSN"));
        snprintf(store, sizeof(store), "[hss]\nstore = %s\n", f->url);
    }
    snprintf(text, sizeof(text), "[core]\nroles = hss\nstate_dir = %s/var\n%s", f->dir, store);
    write_file(f, "imscloud.conf", text);
    *state = f;
    if (run(f, "keys init") != 0) {
        fprintf(stderr, "keys init: %s\n", f->err);
        return -1;
    }
    return 0;
}

int cfix_teardown(void **state)
{
    struct cfix *f = *state;
    ims_store_close(f->st);
    ims_keyrepo_free(f->repo);
    free(f->out);
    free(f->err);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* test_ctl [pg]: with "pg", against the PostgreSQL of IMS_TEST_PG_DSN
 * (tests/e2e/pg-run.sh); exit 77 (skipped) without one, unless CI=true. */
int main(int argc, char **argv)
{
    ims_log_set_level(IMS_LOG_ERR);
    if (argc > 1 && strcmp(argv[1], "pg") == 0) {
        const char *ci = getenv("CI");
        if (!getenv("IMS_TEST_PG_DSN")) {
            fprintf(stderr, "test_ctl pg: no IMS_TEST_PG_DSN (no PostgreSQL): %s\n",
                    ci && strcmp(ci, "true") == 0 ? "FAIL (CI=true)" : "skipped");
            return ci && strcmp(ci, "true") == 0 ? 1 : 77;
        }
        ctl_test_pg = true;
    }
    xmlInitParser();
    int failed = 0;
    if (!ctl_test_pg) /* no store involved: once is enough */
        failed += _cmocka_run_group_tests("json", json_tests, json_ntests, NULL, NULL);
    failed += _cmocka_run_group_tests("cli", cli_tests, cli_ntests, NULL, NULL);
    xmlCleanupParser();
    return failed ? 1 : 0;
}
