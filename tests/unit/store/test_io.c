/* test_io.c - export/import, and the store under allocation failures. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "hss/auth.h"
#include "store_tests.h"

static const uint8_t K1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t OPC1[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                  0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

/* A store with one of everything. */
static void populate(struct ims_store *st)
{
    const char *ai[] = { "sip:alice@ims.test", "tel:+15551000", "sip:alice-fax@ims.test", NULL };
    const char *bi[] = { "sip:bob@ims.test", NULL };
    enum ims_sh_result res;
    uint32_t caps[] = { 1, 5 };
    OK(st, ims_store_profile_put(st, S("basic"), S("<InitialFilterCriteria>\n <Priority>1"
                                                   "</Priority>\n</InitialFilterCriteria>")));
    OK(st, ims_store_profile_put(st, S("none"), IMS_STR_NULL));
    OK(st, ims_store_scscf_put(st, S("sip:scscf1.ims.test"), caps, 2));
    OK(st, ims_store_scscf_put(st, S("sip:scscf2.ims.test"), NULL, 0));
    provision(st, "alice", "alice@ims.test", K1, OPC1, "secret one", ai);
    provision(st, "bob", "bob@ims.test", NULL, NULL, "secret two", bi);
    OK(st, ims_store_impi_set_password(st, S("bob@ims.test"), S("secret two"), true));
    struct ims_sub_rec s;
    OK(st, ims_store_sub_get(st, S("alice"), &s));
    strcpy(s.ccf[0], "aaa://ccf.ims.test");
    strcpy(s.keystone_user_id, "u-123");
    strcpy(s.roles, "member,caller");
    s.caps_mandatory[0] = 5;
    s.n_mandatory = 1;
    s.caps_optional[0] = 9;
    s.n_optional = 1;
    OK(st, ims_store_sub_update(st, &s));
    OK(st, ims_store_impu_set_profile(st, S("sip:alice@ims.test"), S("basic")));
    OK(st, ims_store_impu_bar(st, S("sip:alice-fax@ims.test"), true));
    OK(st, ims_store_reg_set(st, S("sip:alice@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf1.ims.test"), NULL));
    OK(st, ims_store_sh_put(st, S("sip:alice@ims.test"), S("presence"), 0,
                            S("<rd a=\"1\">x y</rd>"), &res));
    OK(st, ims_store_sh_put(st, S("sip:alice@ims.test"), S("presence"), 1,
                            S("<rd a=\"2\">x y</rd>"), &res));
}

static void test_export_import_round_trip(void **state)
{
    struct tfix *f = *state;
    struct ims_buf a, b;
    size_t n = 0;
    populate(f->st);
    ims_buf_init(&a, 1 << 20);
    ims_buf_init(&b, 1 << 20);
    OK(f->st, ims_store_export(f->st, &a));
    assert_true(strncmp(a.p, "imscloud-hss-export v1\n", 23) == 0);
    assert_non_null(strstr(a.p, "\nend\n"));
    assert_non_null(strstr(a.p, " roles=member,caller")); /* survives the round trip below */

    /* into a fresh database: same export back */
    ims_store_close(f->st);
    tfix_new_db(f);
    assert_int_equal(ims_store_open(f->url, f->repo, &f->st), 0);
    OK(f->st, ims_store_import(f->st, ims_buf_str(&a), &n));
    assert_int_equal(n, 2 + 2 + 2 + 2 + 4 + 4 + 1);
    OK(f->st, ims_store_export(f->st, &b));
    assert_string_equal(a.p, b.p);

    /* and it works */
    struct ims_auth_data ad;
    struct ims_impu_rec r;
    OK(f->st, ims_store_auth_get(f->st, S("alice@ims.test"), &ad));
    assert_memory_equal(ad.k, K1, 16);
    ims_auth_data_clear(&ad);
    OK(f->st, ims_store_impu_get(f->st, S("tel:+15551000"), &r));
    assert_int_equal(r.reg_state, IMS_REG_REGISTERED);
    assert_string_equal(r.scscf_name, "sip:scscf1.ims.test");

    /* importing again: duplicates, nothing changes */
    assert_int_equal(ims_store_import(f->st, ims_buf_str(&a), &n), IMS_EINVAL);
    assert_non_null(strstr(ims_store_errmsg(f->st), "line 2"));
    ims_buf_free(&a);
    ims_buf_free(&b);
}

static void test_import_rejects_bad_input(void **state)
{
    struct tfix *f = *state;
    struct ims_sub_rec s;
    size_t n = 99;
    static const char *const bad[] = {
        "",                                              /* no header */
        "hello\nend\n",                                  /* not ours */
        "imscloud-hss-export v1\n",                      /* truncated: no end */
        "imscloud-hss-export v1\nfrob x\nend\n",         /* unknown record */
        "imscloud-hss-export v1\nprofile p xml=!!!!\nend\n",       /* bad base64 */
        "imscloud-hss-export v1\nsub a  scscf=\nend\n",            /* double space */
        "imscloud-hss-export v1\nend\nprofile p xml=\n",           /* after end */
        "imscloud-hss-export v1\nimpu sip:x sub=a irs=1 profile= barred=0 type=0 state=0\nend\n",
        "imscloud-hss-export v1\nscscf s caps=1,,2\nend\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ims_store_import(f->st, S(bad[i]), &n);
        assert_true(rc == IMS_EPROTO || rc == IMS_ENOENT);
    }
    assert_int_equal(n, 99);
    /* all or nothing: the good first record is rolled back too */
    static const char partial[] =
        "imscloud-hss-export v1\n"
        "sub good scscf= ccf1= ccf2= ecf1= ecf2= keystone_user= keystone_project= "
        "caps_mandatory= caps_optional=\n"
        "sub bad\n"
        "end\n";
    assert_int_equal(ims_store_import(f->st, S(partial), &n), IMS_EPROTO);
    assert_non_null(strstr(ims_store_errmsg(f->st), "line 3"));
    assert_int_equal(ims_store_sub_get(f->st, S("good"), &s), IMS_ENOENT);

    /* secrets that the target's keys cannot decrypt are refused */
    struct ims_buf ex;
    ims_buf_init(&ex, 1 << 20);
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, NULL, NULL);
    OK(f->st, ims_store_export(f->st, &ex));
    char dir2[400], err[IMS_KEYREPO_ERRLEN];
    struct ims_keyrepo *other = NULL;
    struct ims_store *st2 = NULL;
    snprintf(dir2, sizeof(dir2), "%s/keys2", f->dir);
    assert_int_equal(ims_keyrepo_create(dir2, err, sizeof(err)), 0);
    assert_int_equal(ims_keyrepo_open(dir2, &other, err, sizeof(err)), 0);
    ims_store_close(f->st);
    tfix_new_db(f);
    assert_int_equal(ims_store_open(f->url, other, &st2), 0);
    f->st = st2;
    assert_int_equal(ims_store_import(st2, ims_buf_str(&ex), &n), IMS_EINVAL);
    assert_non_null(strstr(ims_store_errmsg(st2), "does not decrypt"));
    ims_store_close(st2);
    f->st = NULL;
    ims_keyrepo_free(other);
    assert_int_equal(ims_store_open(f->url, f->repo, &f->st), 0);
    ims_buf_free(&ex);
}

/* The key scenario - open (migrations), provision, authenticate with AKA
 * (SQN allocation), register, export - with allocation n failing, for
 * n = 1, 2, ... until a run completes with no failure injected.  Each
 * failing run must end in IMS_ENOMEM and leak nothing (LSan).  On SQLite
 * the count includes SQLite's own allocations (routed through ims_alloc). */
static int scenario(struct tfix *f, struct ims_store **stp)
{
    static const uint8_t amf[2] = { 0x80, 0x00 };
    struct ims_sub_rec s;
    struct ims_impu_rec r;
    struct ims_aka_vector v[2];
    struct ims_buf ex;
    enum ims_hss_auth_result res;
    size_t n;
    int rc = ims_store_open(f->url, f->repo, stp);
    struct ims_store *st = *stp;
    memset(&s, 0, sizeof(s));
    strcpy(s.name, "alice");
    s.caps_mandatory[0] = 3;
    s.n_mandatory = 1;
    memset(&r, 0, sizeof(r));
    strcpy(r.identity, "sip:alice@ims.test");
    strcpy(r.subscription, "alice");
    if (rc == 0)
        rc = ims_store_sub_add(st, &s);
    if (rc == 0)
        rc = ims_store_impi_add(st, S("alice"), S("alice@ims.test"), S("ims.test"), IMS_AUTH_ALL);
    if (rc == 0)
        rc = ims_store_impi_set_aka(st, S("alice@ims.test"), K1, OPC1, amf);
    if (rc == 0)
        rc = ims_store_impi_set_password(st, S("alice@ims.test"), S("pw"), true);
    if (rc == 0)
        rc = ims_store_impu_add(st, &r);
    if (rc == 0)
        rc = ims_store_link(st, S("alice@ims.test"), S("sip:alice@ims.test"));
    if (rc == 0)
        rc = ims_hss_aka_vectors(st, S("alice@ims.test"), IMS_AUTH_AKAV1_MD5, 2, v, &n, &res);
    if (rc == 0)
        rc = ims_store_reg_set(st, S("sip:alice@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                               S("sip:scscf.ims.test"), NULL);
    if (rc == 0) {
        ims_buf_init(&ex, 1 << 16);
        rc = ims_store_export(st, &ex);
        ims_buf_free(&ex);
    }
    return rc;
}

/* Inside ims_store_open of a new database (the migrations: mostly SQLite
 * parsing their DDL) every OPEN_STRIDE-th allocation fails: each try runs
 * every migration again, so failing each of them made the test's time grow
 * with the square of the schema. */
#define OPEN_STRIDE 7

/* A copy of the SQLite file at template as f's next database (the
 * migrations already run: a try that fails past them need not redo them). */
static void new_db_from(struct tfix *f, const char *template)
{
    tfix_new_db(f);
    if (template)
        assert_true(test_copy_file(template, f->url + strlen("sqlite:")));
}

/* One try: the scenario with allocation n (counted from the open) failing.
 * *used: the allocations it made.  Its result. */
static int try_failing(struct tfix *f, const char *template, unsigned long n, unsigned long *used)
{
    struct ims_store *st = NULL;
    new_db_from(f, template);
    ims_alloc_fail_at(n, 0);
    int rc = scenario(f, &st);
    *used = ims_alloc_count();
    ims_alloc_fail_at(0, 0);
    ims_store_close(st);
    if (rc != 0 && rc != IMS_ENOMEM)
        fail_msg("allocation %lu: %s, want ENOMEM", n, ims_strerror(rc));
    return rc;
}

static void test_alloc_failures(void **state)
{
    struct tfix *f = *state;
    unsigned long n, used, failures = 0, open_allocs;
    struct ims_store *probe = NULL;
    ims_store_close(f->st);
    f->st = NULL;
    tfix_new_db(f);
    ims_alloc_fail_at(ULONG_MAX, 0); /* counts, fails nothing */
    assert_int_equal(ims_store_open(f->url, f->repo, &probe), 0);
    open_allocs = ims_alloc_count();
    ims_alloc_fail_at(0, 0);
    ims_store_close(probe);
    /* 1. the open of a new database, every OPEN_STRIDE-th allocation */
    for (n = 1; n < open_allocs; n += OPEN_STRIDE)
        failures += try_failing(f, NULL, n, &used) != 0;
    /* 2. the open of a migrated database and the scenario, every
     * allocation.  SQLite: from a copy of one migrated file (the last
     * close checkpointed it: one file); PostgreSQL: a new schema each, so
     * only the allocations after its open. */
    char template[sizeof(f->url)] = "";
    if (!test_pg) {
        tfix_new_db(f);
        assert_int_equal(ims_store_open(f->url, f->repo, &probe), 0);
        ims_store_close(probe);
        /* out of tfix_new_db's way: it removes the database before it */
        snprintf(template, sizeof(template), "%s/migrated.db", f->dir);
        assert_int_equal(rename(f->url + strlen("sqlite:"), template), 0);
    }
    const char *from = template[0] ? template : NULL;
    /* (a new schema: its open's allocations were step 1's) */
    for (n = from ? 1 : open_allocs; n < 100000; n++) {
        int rc = try_failing(f, from, n, &used);
        if (rc == 0 && used < n)
            break; /* nothing failed: the scenario needs fewer than n allocations */
        failures += rc != 0; /* rc 0: SQLite absorbed that failure (a benign allocation) */
    }
    assert_true(n < 100000);
    assert_true(failures > 10);
    print_message("      every %dth of a new database's open's %lu allocations failed, then "
                  "each one up to %lu (%lu runs ended in ENOMEM)\n",
                  OPEN_STRIDE, open_allocs, n - 1, failures);
    if (template[0])
        unlink(template);
    tfix_new_db(f);
    assert_int_equal(ims_store_open(f->url, f->repo, &f->st), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest io_tests[] = {
    T(test_export_import_round_trip),
    T(test_import_rejects_bad_input),
    T(test_alloc_failures),
};
const size_t io_ntests = sizeof(io_tests) / sizeof(io_tests[0]);
