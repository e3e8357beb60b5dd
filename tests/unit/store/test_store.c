/* test_store.c - the data model: migrations, CRUD, associations, lists,
 * SQN, registration state, profiles, Sh data, S-CSCF capabilities.  The
 * same tests run on SQLite and on PostgreSQL. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "crypto/aka.h"
#include "store/store_int.h"
#include "store_tests.h"

/* The newest schema version and the number of migrations this build carries
 * (generated from src/store/schema/<backend>/NNN_*.sql). */
static int latest_version(void)
{
    return test_pg ? store_migrations_pg[store_nmigrations_pg - 1].version
                   : store_migrations_sqlite[store_nmigrations_sqlite - 1].version;
}

static const char *migration_count(void)
{
    static char n[16];
    snprintf(n, sizeof(n), "%zu", test_pg ? store_nmigrations_pg : store_nmigrations_sqlite);
    return n;
}

static const uint8_t K1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t OPC1[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                  0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

static void test_open_migrate(void **state)
{
    struct tfix *f = *state;
    int v = 0;
    char n[32];
    OK(f->st, ims_store_schema_version(f->st, &v));
    assert_int_equal(v, latest_version());
    assert_string_equal(ims_store_backend(f->st), test_pg ? "postgresql" : "sqlite");
    /* reopening finds nothing to do */
    tfix_reopen(f);
    tfix_reopen(f);
    OK(f->st, ims_store_schema_version(f->st, &v));
    assert_int_equal(v, latest_version());
    tfix_sql_value(f, "SELECT COUNT(*) FROM schema_migrations", n, sizeof(n));
    assert_string_equal(n, migration_count());
    if (!test_pg) {
        struct stat st;
        assert_int_equal(stat(f->url + 7, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        tfix_sql_value(f, "PRAGMA journal_mode", n, sizeof(n));
        assert_string_equal(n, "wal");
    }
    /* unknown URL schemes */
    struct ims_store *st = NULL;
    assert_int_equal(ims_store_open("mysql://x", f->repo, &st), IMS_EINVAL);
    assert_null(st);
}

/* Migration 008 (SQLite): impu.reg_state's CHECK without an IN list, which
 * made every state UPDATE build a temporary B-tree; the same values pass. */
static void test_reg_state_check(void **state)
{
    struct tfix *f = *state;
    char v[512];
    if (test_pg)
        skip(); /* PostgreSQL keeps its IN check (sqlite/008 only) */
    const char *ai[] = { "sip:a@ims.test", NULL };
    provision(f->st, "alice", "a@ims.test", NULL, NULL, NULL, ai);
    tfix_sql_value(f, "SELECT instr(sql, 'reg_state IN') = 0 AND "
                      "instr(sql, 'CHECK (reg_state = 0 OR reg_state = 1 OR reg_state = 2)') > 0 "
                      "FROM sqlite_schema WHERE name = 'impu'",
                   v, sizeof(v));
    assert_string_equal(v, "1");
    tfix_sql_value(f, "PRAGMA integrity_check", v, sizeof(v));
    assert_string_equal(v, "ok");
    assert_int_equal(tfix_explain_count(f, "UPDATE impu SET reg_state = 1 "
                                           "WHERE identity = 'sip:a@ims.test'",
                                        "OpenEphemeral"),
                     0);
    /* what the check took and refused before, it takes and refuses now */
    tfix_sql(f, "UPDATE impu SET reg_state = 2 WHERE identity = 'sip:a@ims.test'");
    tfix_sql_value(f, "SELECT reg_state FROM impu WHERE identity = 'sip:a@ims.test'", v,
                   sizeof(v));
    assert_string_equal(v, "2");
    assert_int_equal(tfix_sql_rc(f, "UPDATE impu SET reg_state = 3"), SQLITE_CONSTRAINT);
    assert_int_equal(tfix_sql_rc(f, "UPDATE impu SET reg_state = 1.5"), SQLITE_CONSTRAINT);
    assert_int_equal(tfix_sql_rc(f, "UPDATE impu SET reg_state = 'x'"), SQLITE_CONSTRAINT);
    OK(f->st, ims_store_reg_set(f->st, S("sip:a@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_KEEP,
                                IMS_STR_NULL, NULL));
    struct ims_impu_rec r;
    OK(f->st, ims_store_impu_get(f->st, S("sip:a@ims.test"), &r));
    assert_int_equal(r.reg_state, IMS_REG_REGISTERED);
}

static void test_open_concurrent_migration(void **state)
{
    /* Two stores on a brand-new database: both succeed, one migration row. */
    struct tfix *f = *state;
    struct ims_store *a = NULL, *b = NULL;
    char n[32];
    ims_store_close(f->st);
    f->st = NULL;
    tfix_new_db(f);
    assert_int_equal(ims_store_open(f->url, f->repo, &a), 0);
    assert_int_equal(ims_store_open(f->url, f->repo, &b), 0);
    tfix_sql_value(f, "SELECT COUNT(*) FROM schema_migrations", n, sizeof(n));
    assert_string_equal(n, migration_count());
    ims_store_close(a);
    f->st = b;
}

static void test_subscription_crud(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_sub_rec s, got;
    memset(&s, 0, sizeof(s));
    strcpy(s.name, "alice");
    strcpy(s.ccf[0], "aaa://ccf1.ims.test");
    strcpy(s.ecf[1], "aaa://ecf2.ims.test");
    strcpy(s.keystone_user_id, "9fe1d3c5b6");
    strcpy(s.keystone_project_id, "0a1b2c");
    strcpy(s.roles, "member,caller");
    s.caps_mandatory[0] = 10;
    s.caps_mandatory[1] = 2;
    s.n_mandatory = 2;
    s.caps_optional[0] = 7;
    s.n_optional = 1;
    strcpy(s.scscf_name, "sip:ignored"); /* operational: add ignores it */
    OK(st, ims_store_sub_add(st, &s));
    assert_int_equal(ims_store_sub_add(st, &s), IMS_EINVAL);
    assert_non_null(strstr(ims_store_errmsg(st), "already exists"));

    OK(st, ims_store_sub_get(st, S("alice"), &got));
    assert_string_equal(got.name, "alice");
    assert_string_equal(got.scscf_name, "");
    assert_string_equal(got.ccf[0], "aaa://ccf1.ims.test");
    assert_string_equal(got.ccf[1], "");
    assert_string_equal(got.ecf[1], "aaa://ecf2.ims.test");
    assert_string_equal(got.keystone_user_id, "9fe1d3c5b6");
    assert_string_equal(got.keystone_project_id, "0a1b2c");
    assert_string_equal(got.roles, "member,caller"); /* migration 003 */
    assert_int_equal(got.n_mandatory, 2);
    assert_int_equal(got.caps_mandatory[0], 2); /* sorted */
    assert_int_equal(got.caps_mandatory[1], 10);
    assert_int_equal(got.n_optional, 1);
    assert_int_equal(got.caps_optional[0], 7);

    strcpy(s.ccf[0], "aaa://ccf9.ims.test");
    s.keystone_project_id[0] = '\0';
    s.n_mandatory = 0;
    strcpy(s.roles, "admin");
    OK(st, ims_store_sub_update(st, &s));
    OK(st, ims_store_sub_get(st, S("alice"), &got));
    assert_string_equal(got.ccf[0], "aaa://ccf9.ims.test");
    assert_string_equal(got.keystone_project_id, "");
    assert_string_equal(got.roles, "admin");
    s.roles[0] = '\0'; /* cleared: '' (NOT NULL), not NULL */
    OK(st, ims_store_sub_update(st, &s));
    OK(st, ims_store_sub_get(st, S("alice"), &got));
    assert_string_equal(got.roles, "");
    strcpy(s.roles, "has space");
    assert_int_equal(ims_store_sub_update(st, &s), IMS_EINVAL);
    s.roles[0] = '\0';
    assert_int_equal(got.n_mandatory, 0);
    assert_int_equal(got.n_optional, 1);

    strcpy(s.name, "bob");
    assert_int_equal(ims_store_sub_update(st, &s), IMS_ENOENT);
    OK(st, ims_store_sub_add(st, &s));

    /* invalid names never reach SQL */
    const char *bad[] = { "", "with space", "tab\there", "nul" };
    for (size_t i = 0; i < 3; i++) {
        memset(&s, 0, sizeof(s));
        strcpy(s.name, bad[i]);
        assert_int_equal(ims_store_sub_add(st, &s), IMS_EINVAL);
    }
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(ims_store_sub_get(st, S(longname), &got), IMS_EINVAL);

    OK(st, ims_store_sub_del(st, S("alice")));
    assert_int_equal(ims_store_sub_del(st, S("alice")), IMS_ENOENT);
    assert_int_equal(ims_store_sub_get(st, S("alice"), &got), IMS_ENOENT);
    assert_non_null(strstr(ims_store_errmsg(st), "no subscription alice"));
}

struct names {
    char v[8][IMS_STORE_ID_MAX + 16];
    size_t n;
};

static int collect_sub(void *ctx, const struct ims_sub_rec *r)
{
    struct names *n = ctx;
    snprintf(n->v[n->n++], sizeof(n->v[0]), "%s", r->name);
    return 0;
}

static int collect_impu(void *ctx, const struct ims_impu_rec *r)
{
    struct names *n = ctx;
    snprintf(n->v[n->n++], sizeof(n->v[0]), "%s/%u", r->identity, r->irs);
    return 0;
}

static int collect_impi(void *ctx, const struct ims_impi_rec *r)
{
    struct names *n = ctx;
    snprintf(n->v[n->n++], sizeof(n->v[0]), "%s", r->identity);
    return 0;
}

static int stop_at_first(void *ctx, const struct ims_sub_rec *r)
{
    return 42;
}

static void test_lists(void **state)
{
    struct tfix *f = *state;
    struct names n = { .n = 0 };
    const char *ai[] = { "sip:a@ims.test", "tel:+15550001", "sip:a2@ims.test", NULL };
    const char *bi[] = { "sip:b@ims.test", NULL };
    provision(f->st, "zed", "z@ims.test", NULL, NULL, NULL, NULL);
    provision(f->st, "alice", "a@ims.test", NULL, NULL, NULL, ai);
    provision(f->st, "bob", "b@ims.test", NULL, NULL, NULL, bi);
    OK(f->st, ims_store_sub_list(f->st, collect_sub, &n));
    assert_int_equal(n.n, 3);
    assert_string_equal(n.v[0], "alice");
    assert_string_equal(n.v[2], "zed");
    assert_int_equal(ims_store_sub_list(f->st, stop_at_first, NULL), 42);

    n.n = 0;
    OK(f->st, ims_store_impu_list(f->st, S("alice"), collect_impu, &n));
    assert_int_equal(n.n, 3);
    assert_string_equal(n.v[0], "sip:a@ims.test/1");
    assert_string_equal(n.v[1], "tel:+15550001/1");
    assert_string_equal(n.v[2], "sip:a2@ims.test/2");
    n.n = 0;
    OK(f->st, ims_store_impu_list(f->st, IMS_STR_NULL, collect_impu, &n));
    assert_int_equal(n.n, 4);
    n.n = 0;
    OK(f->st, ims_store_impi_list(f->st, IMS_STR_NULL, collect_impi, &n));
    assert_int_equal(n.n, 3);
    n.n = 0;
    OK(f->st, ims_store_impi_list(f->st, S("bob"), collect_impi, &n));
    assert_int_equal(n.n, 1);
    assert_string_equal(n.v[0], "b@ims.test");
}

static void test_impi_impu_crud(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_impi_rec pi;
    struct ims_impu_rec r, got;
    provision(st, "alice", "alice@ims.test", NULL, NULL, NULL, NULL);

    assert_int_equal(ims_store_impi_add(st, S("nobody"), S("x@ims.test"), S("ims.test"), 1),
                     IMS_ENOENT);
    assert_int_equal(ims_store_impi_add(st, S("alice"), S("alice@ims.test"), S("ims.test"), 1),
                     IMS_EINVAL);
    assert_int_equal(ims_store_impi_add(st, S("alice"), S("y@ims.test"), S("ims.test"), 0x100),
                     IMS_EINVAL);
    /* what a SIP header cannot carry as it is: an identity or realm with one
     * could be stored but never registered (the S-CSCF refuses it at SAR) */
    static const char *const unsayable[] = { "y<@ims.test", "y>@ims.test", "y\"@ims.test",
                                             "y\\@ims.test" };
    for (size_t i = 0; i < sizeof(unsayable) / sizeof(unsayable[0]); i++) {
        assert_int_equal(ims_store_impi_add(st, S("alice"), S(unsayable[i]), S("ims.test"), 1),
                         IMS_EINVAL);
        char realm[16];
        snprintf(realm, sizeof(realm), "ims%c.test", unsayable[i][1]);
        assert_int_equal(ims_store_impi_add(st, S("alice"), S("y@ims.test"), S(realm), 1),
                         IMS_EINVAL);
        memset(&r, 0, sizeof(r));
        strcpy(r.subscription, "alice");
        snprintf(r.identity, sizeof(r.identity), "sip:%s", unsayable[i]);
        assert_int_equal(ims_store_impu_add(st, &r), IMS_EINVAL);
        assert_false(ims_store_valid_id(S(unsayable[i])));
    }
    assert_true(ims_store_valid_id(S("sip:chatlist!.*!@ims.test"))); /* a wildcarded PSI */
    /* every byte, in the middle of an identity: printable ASCII but space
     * may be stored, and but for < > " \ may be said in a header */
    for (unsigned b = 0; b < 256; b++) {
        char id[] = { 'y', (char)b, '@', 'i', 'm', 's' };
        ims_str v = ims_str_make(id, sizeof(id));
        bool stored = b > 0x20 && b < 0x7f;
        bool sayable = stored && !strchr("<>\"\\", (int)b);
        assert_int_equal(ims_store_valid_id(v), sayable);
        assert_int_equal(st_valid_stored_id(v), stored);
        assert_int_equal(st_valid_name(v), stored);
        assert_int_equal(st_valid_opt(v, sizeof(id) + 1), stored);
    }
    assert_false(ims_store_valid_id(IMS_STR_NULL));
    assert_true(st_valid_opt(IMS_STR_NULL, 1));
    /* rows an earlier version stored with such a byte can still be deleted */
    tfix_sql(f, "INSERT INTO impi (subscription_id, identity, realm) SELECT id, 'old\"@ims.test', "
                "'ims.test' FROM subscription WHERE name = 'alice'");
    tfix_sql(f, "INSERT INTO impu (subscription_id, identity, irs) SELECT id, 'sip:old>@ims.test', 9 "
                "FROM subscription WHERE name = 'alice'");
    assert_int_equal(ims_store_impi_get(st, S("old\"@ims.test"), &pi), IMS_EINVAL);
    OK(st, ims_store_impi_del(st, S("old\"@ims.test")));
    OK(st, ims_store_impu_del(st, S("sip:old>@ims.test")));
    assert_int_equal(ims_store_impi_del(st, S("old\"@ims.test")), IMS_ENOENT);
    assert_int_equal(ims_store_impu_del(st, S("sip:old>@ims.test")), IMS_ENOENT);
    assert_int_equal(ims_store_impi_del(st, S("bad id@ims.test")), IMS_EINVAL);
    OK(st, ims_store_impi_get(st, S("alice@ims.test"), &pi));
    assert_string_equal(pi.subscription, "alice");
    assert_string_equal(pi.realm, "ims.test");
    assert_int_equal(pi.schemes, IMS_AUTH_ALL);
    assert_int_equal(pi.amf[0], 0x80);
    assert_int_equal(pi.amf[1], 0x00);
    assert_true(pi.sqn == 0);
    assert_false(pi.has_aka || pi.has_password || pi.has_ha1[0]);
    OK(st, ims_store_impi_set_schemes(st, S("alice@ims.test"), IMS_AUTH_AKAV1_MD5));
    OK(st, ims_store_impi_get(st, S("alice@ims.test"), &pi));
    assert_int_equal(pi.schemes, IMS_AUTH_AKAV1_MD5);
    assert_int_equal(ims_store_impi_set_schemes(st, S("none@ims.test"), 1), IMS_ENOENT);

    /* IMPUs: irs 0 allocates a new implicit set */
    memset(&r, 0, sizeof(r));
    strcpy(r.subscription, "alice");
    strcpy(r.identity, "sip:alice@ims.test");
    OK(st, ims_store_impu_add(st, &r));
    strcpy(r.identity, "sip:alice-work@ims.test");
    OK(st, ims_store_impu_add(st, &r));
    strcpy(r.identity, "tel:+15551234");
    r.irs = 1;
    r.barred = true;
    OK(st, ims_store_impu_add(st, &r));
    assert_int_equal(ims_store_impu_add(st, &r), IMS_EINVAL); /* duplicate */
    strcpy(r.identity, "sip:new@ims.test");
    strcpy(r.profile, "nosuch");
    assert_int_equal(ims_store_impu_add(st, &r), IMS_ENOENT);
    assert_non_null(strstr(ims_store_errmsg(st), "nosuch"));
    r.profile[0] = '\0';
    strcpy(r.subscription, "nosuch");
    assert_int_equal(ims_store_impu_add(st, &r), IMS_ENOENT);

    OK(st, ims_store_impu_get(st, S("sip:alice@ims.test"), &got));
    assert_int_equal(got.irs, 1);
    assert_false(got.barred);
    assert_int_equal(got.reg_state, IMS_REG_NOT_REGISTERED);
    assert_int_equal(got.type, IMS_ID_PUBLIC);
    assert_string_equal(got.subscription, "alice");
    OK(st, ims_store_impu_get(st, S("sip:alice-work@ims.test"), &got));
    assert_int_equal(got.irs, 2);
    OK(st, ims_store_impu_get(st, S("tel:+15551234"), &got));
    assert_int_equal(got.irs, 1);
    assert_true(got.barred);

    /* bar / unbar / profile / update */
    OK(st, ims_store_impu_bar(st, S("tel:+15551234"), false));
    OK(st, ims_store_impu_get(st, S("tel:+15551234"), &got));
    assert_false(got.barred);
    assert_int_equal(ims_store_impu_bar(st, S("tel:+1"), true), IMS_ENOENT);
    OK(st, ims_store_profile_put(st, S("gold"), S("<InitialFilterCriteria/>")));
    OK(st, ims_store_impu_set_profile(st, S("tel:+15551234"), S("gold")));
    OK(st, ims_store_impu_get(st, S("tel:+15551234"), &got));
    assert_string_equal(got.profile, "gold");
    assert_int_equal(ims_store_impu_set_profile(st, S("tel:+15551234"), S("silver")),
                     IMS_ENOENT);
    OK(st, ims_store_impu_set_profile(st, S("tel:+15551234"), IMS_STR_NULL));
    OK(st, ims_store_impu_get(st, S("tel:+15551234"), &got));
    assert_string_equal(got.profile, "");

    memset(&r, 0, sizeof(r));
    strcpy(r.identity, "sip:alice-work@ims.test");
    strcpy(r.profile, "gold");
    r.irs = 1;
    r.type = IMS_ID_DISTINCT_PSI;
    OK(st, ims_store_impu_update(st, &r));
    OK(st, ims_store_impu_get(st, S("sip:alice-work@ims.test"), &got));
    assert_int_equal(got.irs, 1);
    assert_int_equal(got.type, IMS_ID_DISTINCT_PSI);
    assert_string_equal(got.profile, "gold");
    r.irs = 0; /* a new set of its own */
    OK(st, ims_store_impu_update(st, &r));
    OK(st, ims_store_impu_get(st, S("sip:alice-work@ims.test"), &got));
    assert_int_equal(got.irs, 2);
    strcpy(r.identity, "sip:ghost@ims.test");
    assert_int_equal(ims_store_impu_update(st, &r), IMS_ENOENT);

    /* deletes */
    OK(st, ims_store_impu_del(st, S("sip:alice-work@ims.test")));
    assert_int_equal(ims_store_impu_del(st, S("sip:alice-work@ims.test")), IMS_ENOENT);
    OK(st, ims_store_impi_del(st, S("alice@ims.test")));
    assert_int_equal(ims_store_impi_get(st, S("alice@ims.test"), &pi), IMS_ENOENT);
    /* deleting the subscription removes its IMPUs */
    OK(st, ims_store_sub_del(st, S("alice")));
    assert_int_equal(ims_store_impu_get(st, S("sip:alice@ims.test"), &got), IMS_ENOENT);
    /* and the profile is free again */
    OK(st, ims_store_profile_del(st, S("gold")));
}

static void test_assoc_and_lists(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    enum ims_assoc a;
    struct ims_impu_rec arr[4];
    char impis[4][IMS_STORE_ID_MAX];
    size_t n;
    const char *ai[] = { "sip:a@ims.test", "tel:+1555", "sip:a-fax@ims.test", NULL };
    const char *bi[] = { "sip:b@ims.test", NULL };
    provision(st, "alice", "a@ims.test", NULL, NULL, NULL, ai);
    provision(st, "bob", "b@ims.test", NULL, NULL, NULL, bi);

    OK(st, ims_store_assoc_check(st, S("a@ims.test"), S("tel:+1555"), &a));
    assert_int_equal(a, IMS_ASSOC_OK);
    OK(st, ims_store_assoc_check(st, S("x@ims.test"), S("tel:+1555"), &a));
    assert_int_equal(a, IMS_ASSOC_NO_IMPI);
    OK(st, ims_store_assoc_check(st, S("a@ims.test"), S("tel:+9"), &a));
    assert_int_equal(a, IMS_ASSOC_NO_IMPU);
    OK(st, ims_store_assoc_check(st, S("x@ims.test"), S("tel:+9"), &a));
    assert_int_equal(a, IMS_ASSOC_NO_IMPI);
    OK(st, ims_store_assoc_check(st, S("a@ims.test"), S("sip:b@ims.test"), &a));
    assert_int_equal(a, IMS_ASSOC_MISMATCH);

    /* links only inside a subscription */
    assert_int_equal(ims_store_link(st, S("a@ims.test"), S("sip:b@ims.test")), IMS_EINVAL);
    assert_non_null(strstr(ims_store_errmsg(st), "different subscriptions"));
    assert_int_equal(ims_store_link(st, S("a@ims.test"), S("sip:zz@ims.test")), IMS_ENOENT);
    OK(st, ims_store_link(st, S("a@ims.test"), S("tel:+1555"))); /* again: fine */

    /* a second IMPI in alice's subscription sharing one IMPU */
    OK(st, ims_store_impi_add(st, S("alice"), S("a-phone2@ims.test"), S("ims.test"),
                              IMS_AUTH_AKAV1_MD5));
    OK(st, ims_store_link(st, S("a-phone2@ims.test"), S("sip:a@ims.test")));
    OK(st, ims_store_impis_of_impu(st, S("sip:a@ims.test"), impis, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(impis[0], "a-phone2@ims.test");
    assert_string_equal(impis[1], "a@ims.test");
    assert_int_equal(ims_store_impis_of_impu(st, S("sip:a@ims.test"), impis, 1, &n), IMS_ELIMIT);
    assert_int_equal(n, 2);
    assert_int_equal(ims_store_impis_of_impu(st, S("sip:none@x"), impis, 4, &n), IMS_ENOENT);
    /* a subscription's IMPIs (the SAA's Associated-Identities) */
    OK(st, ims_store_impis_of_sub(st, S("alice"), impis, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(impis[0], "a-phone2@ims.test");
    assert_string_equal(impis[1], "a@ims.test");
    assert_int_equal(ims_store_impis_of_sub(st, S("alice"), impis, 1, &n), IMS_ELIMIT);
    assert_int_equal(n, 2); /* all of them, one in impis */
    assert_string_equal(impis[0], "a-phone2@ims.test");
    OK(st, ims_store_impis_of_sub(st, S("bob"), impis, 4, &n));
    assert_int_equal(n, 1);
    assert_string_equal(impis[0], "b@ims.test");
    OK(st, ims_store_impis_of_sub(st, S("nobody"), impis, 4, &n));
    assert_int_equal(n, 0);
    assert_int_equal(ims_store_impis_of_sub(st, S("bad name\n"), impis, 4, &n), IMS_EINVAL);
    /* kept by an S-CSCF: any IMPU of the subscription not NOT_REGISTERED */
    bool any = true;
    OK(st, ims_store_sub_in_use(st, S("tel:+1555"), &any));
    assert_false(any);
    OK(st, ims_store_reg_set(st, S("sip:a-fax@ims.test"), IMS_REG_UNREGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf.ims.test"), NULL));
    OK(st, ims_store_sub_in_use(st, S("tel:+1555"), &any));
    assert_true(any);
    OK(st, ims_store_sub_in_use(st, S("sip:b@ims.test"), &any)); /* bob's is not */
    assert_false(any);
    OK(st, ims_store_sub_in_use(st, S("sip:nobody@ims.test"), &any));
    assert_false(any);
    assert_int_equal(ims_store_sub_in_use(st, S("not an identity\n"), &any), IMS_EINVAL);
    OK(st, ims_store_reg_set(st, S("sip:a-fax@ims.test"), IMS_REG_NOT_REGISTERED,
                             IMS_SCSCF_CLEAR, IMS_STR_NULL, NULL));
    OK(st, ims_store_sub_in_use(st, S("tel:+1555"), &any));
    assert_false(any);

    OK(st, ims_store_impus_of_impi(st, S("a@ims.test"), arr, 4, &n));
    assert_int_equal(n, 3);
    assert_string_equal(arr[0].identity, "sip:a@ims.test");
    assert_string_equal(arr[1].identity, "tel:+1555");
    assert_string_equal(arr[2].identity, "sip:a-fax@ims.test");
    assert_int_equal(ims_store_impus_of_impi(st, S("a@ims.test"), arr, 2, &n), IMS_ELIMIT);
    assert_int_equal(n, 3);
    OK(st, ims_store_impus_of_impi(st, S("a-phone2@ims.test"), arr, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(ims_store_impus_of_impi(st, S("none@ims.test"), arr, 4, &n), IMS_ENOENT);

    OK(st, ims_store_impus_of_irs(st, S("tel:+1555"), arr, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].identity, "sip:a@ims.test");
    assert_string_equal(arr[1].identity, "tel:+1555");
    OK(st, ims_store_impus_of_irs(st, S("sip:a-fax@ims.test"), arr, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(ims_store_impus_of_irs(st, S("sip:none@x"), arr, 4, &n), IMS_ENOENT);

    /* an IMPI with no IMPU left */
    OK(st, ims_store_unlink(st, S("a-phone2@ims.test"), S("sip:a@ims.test")));
    OK(st, ims_store_unlink(st, S("a-phone2@ims.test"), S("sip:a@ims.test")));
    OK(st, ims_store_impus_of_impi(st, S("a-phone2@ims.test"), arr, 4, &n));
    assert_int_equal(n, 0);
    OK(st, ims_store_assoc_check(st, S("a-phone2@ims.test"), S("sip:a@ims.test"), &a));
    assert_int_equal(a, IMS_ASSOC_MISMATCH);
    assert_int_equal(ims_store_unlink(st, S("q@ims.test"), S("sip:a@ims.test")), IMS_ENOENT);

    struct ims_sub_rec sub, nc;
    OK(st, ims_store_sub_get(st, S("bob"), &sub));
    strcpy(sub.roles, "caller");
    sub.caps_mandatory[0] = 5;
    sub.n_mandatory = 1;
    OK(st, ims_store_sub_update(st, &sub));
    OK(st, ims_store_sub_of_impu(st, S("sip:b@ims.test"), &sub));
    assert_string_equal(sub.name, "bob");
    assert_int_equal(sub.n_mandatory, 1);
    assert_int_equal(ims_store_sub_of_impu(st, S("sip:q@x"), &sub), IMS_ENOENT);
    /* the same row, the capabilities left out */
    OK(st, ims_store_sub_of_impu_nocaps(st, S("sip:b@ims.test"), &nc));
    assert_string_equal(nc.name, "bob");
    assert_string_equal(nc.roles, "caller");
    assert_int_equal(nc.n_mandatory, 0);
    assert_int_equal(nc.n_optional, 0);
    assert_int_equal(ims_store_sub_of_impu_nocaps(st, S("sip:q@x"), &nc), IMS_ENOENT);
}

static int add_one(uint64_t cur, uint64_t *next, void *ctx)
{
    *(uint64_t *)ctx = cur;
    return ims_aka_sqn_next(cur, next);
}

static int refuse(uint64_t cur, uint64_t *next, void *ctx)
{
    *next = 999;
    return IMS_ELIMIT;
}

static int too_wide(uint64_t cur, uint64_t *next, void *ctx)
{
    *next = IMS_AKA_SQN_MAX + 1;
    return 0;
}

/* The Cx path's lists come back ordered (and cut at their room) by the
 * store itself, whatever order the rows were written in. */
static void test_lists_sorted(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_impu_rec arr[4];
    char impis[4][IMS_STORE_ID_MAX];
    size_t n;
    /* z and m: IRS 1; c: IRS 2; b: IRS 3 (helpers.c) */
    const char *ci[] = { "sip:z@ims.test", "sip:m@ims.test", "sip:c@ims.test", "sip:b@ims.test",
                         NULL };
    provision(st, "carol", "carol-z@ims.test", NULL, NULL, NULL, ci);
    OK(st, ims_store_impi_add(st, S("carol"), S("carol-m@ims.test"), S("ims.test"),
                              IMS_AUTH_ALL));
    OK(st, ims_store_impi_add(st, S("carol"), S("carol-c@ims.test"), S("ims.test"),
                              IMS_AUTH_ALL));
    OK(st, ims_store_link(st, S("carol-c@ims.test"), S("sip:z@ims.test")));
    OK(st, ims_store_link(st, S("carol-m@ims.test"), S("sip:z@ims.test")));

    OK(st, ims_store_impus_of_irs(st, S("sip:z@ims.test"), arr, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].identity, "sip:m@ims.test");
    assert_string_equal(arr[1].identity, "sip:z@ims.test");
    assert_int_equal(ims_store_impus_of_irs(st, S("sip:z@ims.test"), arr, 1, &n), IMS_ELIMIT);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].identity, "sip:m@ims.test");

    OK(st, ims_store_impus_of_impi(st, S("carol-z@ims.test"), arr, 4, &n));
    assert_int_equal(n, 4);
    assert_string_equal(arr[0].identity, "sip:m@ims.test");
    assert_string_equal(arr[1].identity, "sip:z@ims.test");
    assert_string_equal(arr[2].identity, "sip:c@ims.test");
    assert_string_equal(arr[3].identity, "sip:b@ims.test");
    assert_int_equal(arr[3].irs, 3);
    assert_int_equal(ims_store_impus_of_impi(st, S("carol-z@ims.test"), arr, 3, &n),
                     IMS_ELIMIT);
    assert_int_equal(n, 4);
    assert_string_equal(arr[2].identity, "sip:c@ims.test");

    OK(st, ims_store_impis_of_sub(st, S("carol"), impis, 4, &n));
    assert_int_equal(n, 3);
    assert_string_equal(impis[0], "carol-c@ims.test");
    assert_string_equal(impis[1], "carol-m@ims.test");
    assert_string_equal(impis[2], "carol-z@ims.test");
    assert_int_equal(ims_store_impis_of_sub(st, S("carol"), impis, 2, &n), IMS_ELIMIT);
    assert_int_equal(n, 3);
    assert_string_equal(impis[0], "carol-c@ims.test");
    assert_string_equal(impis[1], "carol-m@ims.test");
    OK(st, ims_store_impis_of_impu(st, S("sip:z@ims.test"), impis, 4, &n));
    assert_int_equal(n, 3);
    assert_string_equal(impis[0], "carol-c@ims.test");
    assert_string_equal(impis[2], "carol-z@ims.test");

    struct ims_sub_rec sub, got;
    memset(&sub, 0, sizeof(sub));
    strcpy(sub.name, "dave");
    uint32_t mand[] = { 30, 20, 10 }, opt[] = { 9, 1 };
    memcpy(sub.caps_mandatory, mand, sizeof(mand));
    sub.n_mandatory = 3;
    memcpy(sub.caps_optional, opt, sizeof(opt));
    sub.n_optional = 2;
    OK(st, ims_store_sub_add(st, &sub));
    OK(st, ims_store_sub_get(st, S("dave"), &got));
    assert_int_equal(got.n_mandatory, 3);
    assert_int_equal(got.caps_mandatory[0], 10);
    assert_int_equal(got.caps_mandatory[1], 20);
    assert_int_equal(got.caps_mandatory[2], 30);
    assert_int_equal(got.n_optional, 2);
    assert_int_equal(got.caps_optional[0], 1);
    assert_int_equal(got.caps_optional[1], 9);
}

static void test_sqn_update(void **state)
{
    struct tfix *f = *state;
    uint64_t seen = 0, now = 0;
    struct ims_impi_rec pi;
    provision(f->st, "alice", "a@ims.test", K1, OPC1, NULL, NULL);
    OK(f->st, ims_store_sqn_update(f->st, S("a@ims.test"), add_one, &seen, &now));
    assert_true(seen == 0);
    assert_true(now == ims_aka_sqn_make(1, 1));
    OK(f->st, ims_store_sqn_update(f->st, S("a@ims.test"), add_one, &seen, &now));
    assert_true(seen == ims_aka_sqn_make(1, 1));
    /* refused by fn: nothing stored */
    assert_int_equal(ims_store_sqn_update(f->st, S("a@ims.test"), refuse, NULL, &now), IMS_ELIMIT);
    assert_int_equal(ims_store_sqn_update(f->st, S("a@ims.test"), too_wide, NULL, &now),
                     IMS_EINVAL);
    OK(f->st, ims_store_impi_get(f->st, S("a@ims.test"), &pi));
    assert_true(pi.sqn == ims_aka_sqn_make(2, 2));
    assert_int_equal(ims_store_sqn_update(f->st, S("b@ims.test"), add_one, &seen, NULL),
                     IMS_ENOENT);
    /* survives a restart */
    tfix_reopen(f);
    OK(f->st, ims_store_sqn_update(f->st, S("a@ims.test"), add_one, &seen, &now));
    assert_true(seen == ims_aka_sqn_make(2, 2));
}

/* Two connections allocate SQNs at the same time: no value is handed out
 * twice (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL). */
#define PER_THREAD 150
struct sqn_thread {
    const char *url;
    struct ims_keyrepo *repo;
    uint64_t got[PER_THREAD];
    int rc;
};

static void *sqn_worker(void *arg)
{
    struct sqn_thread *t = arg;
    struct ims_store *st = NULL;
    t->rc = ims_store_open(t->url, t->repo, &st);
    for (int i = 0; t->rc == 0 && i < PER_THREAD; i++) {
        uint64_t prev;
        t->rc = ims_store_sqn_update(st, S("a@ims.test"), add_one, &prev, &t->got[i]);
    }
    ims_store_close(st);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_sqn_concurrent(void **state)
{
    struct tfix *f = *state;
    struct sqn_thread t[2] = { { f->url, f->repo, { 0 }, 0 }, { f->url, f->repo, { 0 }, 0 } };
    pthread_t tid[2];
    provision(f->st, "alice", "a@ims.test", K1, OPC1, NULL, NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, sqn_worker, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(tid[i], NULL);
    assert_int_equal(t[0].rc, 0);
    assert_int_equal(t[1].rc, 0);
    uint64_t *all = malloc(sizeof(uint64_t) * 2 * PER_THREAD);
    memcpy(all, t[0].got, sizeof(t[0].got));
    memcpy(all + PER_THREAD, t[1].got, sizeof(t[1].got));
    qsort(all, 2 * PER_THREAD, sizeof(uint64_t), cmp_u64);
    for (int i = 0; i < 2 * PER_THREAD; i++) /* exactly SEQ 1..300, each once */
        assert_true(ims_aka_sqn_seq(all[i]) == (uint64_t)i + 1);
    free(all);
}

static void test_reg_state(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_impu_rec r;
    size_t n = 0;
    const char *ai[] = { "sip:a@ims.test", "tel:+1555", "sip:a-fax@ims.test", NULL };
    provision(st, "alice", "a@ims.test", NULL, NULL, NULL, ai);

    OK(st, ims_store_reg_set(st, S("tel:+1555"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf1.ims.test:6060"), &n));
    assert_int_equal(n, 2); /* the whole implicit set */
    OK(st, ims_store_impu_get(st, S("sip:a@ims.test"), &r));
    assert_int_equal(r.reg_state, IMS_REG_REGISTERED);
    assert_string_equal(r.scscf_name, "sip:scscf1.ims.test:6060");
    /* a re-registration: nothing changes, still found */
    n = 99;
    OK(st, ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf1.ims.test:6060"), &n));
    assert_int_equal(n, 0);
    OK(st, ims_store_impu_get(st, S("tel:+1555"), &r));
    assert_int_equal(r.reg_state, IMS_REG_REGISTERED);
    assert_string_equal(r.scscf_name, "sip:scscf1.ims.test:6060");
    /* the same state with another S-CSCF: the name still changes */
    OK(st, ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf2.ims.test"), &n));
    assert_int_equal(n, 0);
    OK(st, ims_store_impu_get(st, S("tel:+1555"), &r));
    assert_string_equal(r.scscf_name, "sip:scscf2.ims.test");
    OK(st, ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_REGISTERED, IMS_SCSCF_SET,
                             S("sip:scscf1.ims.test:6060"), &n));
    OK(st, ims_store_impu_get(st, S("sip:a-fax@ims.test"), &r));
    assert_int_equal(r.reg_state, IMS_REG_NOT_REGISTERED); /* another set */
    assert_string_equal(r.scscf_name, "sip:scscf1.ims.test:6060"); /* same subscription */

    OK(st, ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_UNREGISTERED, IMS_SCSCF_KEEP,
                             IMS_STR_NULL, &n));
    OK(st, ims_store_impu_get(st, S("tel:+1555"), &r));
    assert_int_equal(r.reg_state, IMS_REG_UNREGISTERED);
    assert_string_equal(r.scscf_name, "sip:scscf1.ims.test:6060");

    OK(st, ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_NOT_REGISTERED, IMS_SCSCF_CLEAR,
                             IMS_STR_NULL, NULL));
    OK(st, ims_store_impu_get(st, S("tel:+1555"), &r));
    assert_int_equal(r.reg_state, IMS_REG_NOT_REGISTERED);
    assert_string_equal(r.scscf_name, "");

    assert_int_equal(ims_store_reg_set(st, S("sip:ghost@x"), IMS_REG_REGISTERED, IMS_SCSCF_KEEP,
                                       IMS_STR_NULL, NULL),
                     IMS_ENOENT);
    assert_int_equal(ims_store_reg_set(st, S("sip:a@ims.test"), (enum ims_reg_state)3,
                                       IMS_SCSCF_KEEP, IMS_STR_NULL, NULL),
                     IMS_EINVAL);
    assert_int_equal(ims_store_reg_set(st, S("sip:a@ims.test"), IMS_REG_REGISTERED,
                                       IMS_SCSCF_SET, IMS_STR_NULL, NULL),
                     IMS_EINVAL);
}

static int collect_profile(void *ctx, const char *name, uint64_t impus)
{
    struct names *n = ctx;
    snprintf(n->v[n->n++], sizeof(n->v[0]), "%s:%llu", name, (unsigned long long)impus);
    return 0;
}

static void test_profiles(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_buf xml;
    char name[IMS_STORE_NAME_MAX];
    struct names n = { .n = 0 };
    static const char ifc[] =
        "<InitialFilterCriteria><Priority>0</Priority><TriggerPoint>"
        "<ConditionTypeCNF>0</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated>"
        "<Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint><ApplicationServer>"
        "<ServerName>sip:as.ims.test</ServerName><DefaultHandling>0</DefaultHandling>"
        "</ApplicationServer></InitialFilterCriteria>";
    const char *ai[] = { "sip:a@ims.test", "sip:b@ims.test", NULL };
    provision(st, "alice", "a@ims.test", NULL, NULL, NULL, ai);
    ims_buf_init(&xml, 4096);

    OK(st, ims_store_profile_put(st, S("basic"), S(ifc)));
    OK(st, ims_store_profile_put(st, S("empty"), IMS_STR_NULL));
    OK(st, ims_store_profile_get(st, S("basic"), &xml));
    assert_string_equal(xml.p, ifc);
    ims_buf_reset(&xml);
    OK(st, ims_store_profile_get(st, S("empty"), &xml));
    assert_int_equal(xml.len, 0);
    assert_int_equal(ims_store_profile_get(st, S("nope"), &xml), IMS_ENOENT);
    /* replace */
    OK(st, ims_store_profile_put(st, S("empty"), S("<x/>")));
    OK(st, ims_store_profile_get(st, S("empty"), &xml));
    assert_string_equal(xml.p, "<x/>");

    OK(st, ims_store_impu_set_profile(st, S("sip:a@ims.test"), S("basic")));
    ims_buf_reset(&xml);
    OK(st, ims_store_profile_of_impu(st, S("sip:a@ims.test"), name, &xml));
    assert_string_equal(name, "basic");
    assert_string_equal(xml.p, ifc);
    ims_buf_reset(&xml);
    OK(st, ims_store_profile_of_impu(st, S("sip:b@ims.test"), name, &xml));
    assert_string_equal(name, "");
    assert_int_equal(xml.len, 0);
    assert_int_equal(ims_store_profile_of_impu(st, S("sip:c@x"), name, &xml), IMS_ENOENT);
    struct ims_buf small;
    ims_buf_init(&small, 16);
    assert_int_equal(ims_store_profile_of_impu(st, S("sip:a@ims.test"), name, &small),
                     IMS_ELIMIT);

    OK(st, ims_store_profile_list(st, collect_profile, &n));
    assert_int_equal(n.n, 2);
    assert_string_equal(n.v[0], "basic:1");
    assert_string_equal(n.v[1], "empty:0");
    /* in use: refused */
    assert_int_equal(ims_store_profile_del(st, S("basic")), IMS_EINVAL);
    assert_non_null(strstr(ims_store_errmsg(st), "is used by IMPUs"));
    OK(st, ims_store_profile_del(st, S("empty")));
    assert_int_equal(ims_store_profile_del(st, S("empty")), IMS_ENOENT);
    /* text with a NUL byte is refused */
    assert_int_equal(ims_store_profile_put(st, S("bad"), ims_str_make("a\0b", 3)), IMS_EINVAL);
    ims_buf_free(&xml);
    ims_buf_free(&small);
}

static void test_sh_data(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct ims_buf out;
    unsigned seq = 99;
    enum ims_sh_result res;
    const char *ai[] = { "sip:a@ims.test", NULL };
    provision(st, "alice", "a@ims.test", NULL, NULL, NULL, ai);
    ims_buf_init(&out, 1024);

    assert_int_equal(ims_store_sh_get(st, S("sip:a@ims.test"), S("svc1"), &out, &seq), IMS_ENOENT);
    /* new data must come with sequence number 0 */
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 1, S("<a/>"), &res));
    assert_int_equal(res, IMS_SH_OUT_OF_SYNC);
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 0, S("<a/>"), &res));
    assert_int_equal(res, IMS_SH_OK);
    OK(st, ims_store_sh_get(st, S("sip:a@ims.test"), S("svc1"), &out, &seq));
    assert_int_equal(seq, 0);
    assert_string_equal(out.p, "<a/>");
    /* then each update is the stored number + 1 */
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 0, S("<b/>"), &res));
    assert_int_equal(res, IMS_SH_OUT_OF_SYNC);
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 2, S("<b/>"), &res));
    assert_int_equal(res, IMS_SH_OUT_OF_SYNC);
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 1, S("<b/>"), &res));
    assert_int_equal(res, IMS_SH_OK);
    ims_buf_reset(&out);
    OK(st, ims_store_sh_get(st, S("sip:a@ims.test"), S("svc1"), &out, &seq));
    assert_int_equal(seq, 1);
    assert_string_equal(out.p, "<b/>");
    /* 65535 is followed by 1 */
    tfix_sql(f, "UPDATE sh_data SET seq = 65535");
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 0, S("<c/>"), &res));
    assert_int_equal(res, IMS_SH_OUT_OF_SYNC);
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 1, S("<c/>"), &res));
    assert_int_equal(res, IMS_SH_OK);
    /* other service indications are independent */
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc2"), 0, S("<z/>"), &res));
    assert_int_equal(res, IMS_SH_OK);
    /* empty data deletes (with the right sequence number) */
    OK(st, ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 2, IMS_STR_NULL, &res));
    assert_int_equal(res, IMS_SH_OK);
    assert_int_equal(ims_store_sh_get(st, S("sip:a@ims.test"), S("svc1"), &out, &seq), IMS_ENOENT);
    ims_buf_reset(&out);
    OK(st, ims_store_sh_get(st, S("sip:a@ims.test"), S("svc2"), &out, &seq));
    assert_string_equal(out.p, "<z/>");
    /* unknown IMPU, bad input */
    assert_int_equal(ims_store_sh_put(st, S("sip:x@x"), S("svc1"), 0, S("<a/>"), &res),
                     IMS_ENOENT);
    assert_int_equal(ims_store_sh_put(st, S("sip:a@ims.test"), S("svc1"), 70000, S("<a/>"), &res),
                     IMS_EINVAL);
    ims_buf_free(&out);
}

struct caps_seen {
    char names[4][64];
    size_t ncaps[4];
    uint32_t first[4];
    size_t n;
};

static int collect_scscf(void *ctx, const char *name, const uint32_t *caps, size_t n)
{
    struct caps_seen *c = ctx;
    snprintf(c->names[c->n], 64, "%s", name);
    c->ncaps[c->n] = n;
    c->first[c->n] = n ? caps[0] : 0;
    c->n++;
    return 0;
}

static void test_scscf_caps(void **state)
{
    struct tfix *f = *state;
    struct ims_store *st = f->st;
    struct caps_seen c = { .n = 0 };
    uint32_t caps[] = { 30, 10, 20 };
    OK(st, ims_store_scscf_put(st, S("sip:scscf2.ims.test"), caps, 3));
    OK(st, ims_store_scscf_put(st, S("sip:scscf1.ims.test"), NULL, 0));
    OK(st, ims_store_scscf_list(st, collect_scscf, &c));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "sip:scscf1.ims.test");
    assert_int_equal(c.ncaps[0], 0);
    assert_string_equal(c.names[1], "sip:scscf2.ims.test");
    assert_int_equal(c.ncaps[1], 3);
    assert_int_equal(c.first[1], 10);
    /* replace */
    OK(st, ims_store_scscf_put(st, S("sip:scscf2.ims.test"), caps, 1));
    c.n = 0;
    OK(st, ims_store_scscf_list(st, collect_scscf, &c));
    assert_int_equal(c.ncaps[1], 1);
    assert_int_equal(c.first[1], 30);
    OK(st, ims_store_scscf_del(st, S("sip:scscf2.ims.test")));
    assert_int_equal(ims_store_scscf_del(st, S("sip:scscf2.ims.test")), IMS_ENOENT);
    c.n = 0;
    OK(st, ims_store_scscf_list(st, collect_scscf, &c));
    assert_int_equal(c.n, 1);
    uint32_t many[IMS_STORE_MAX_CAPS + 1] = { 0 };
    assert_int_equal(ims_store_scscf_put(st, S("sip:x"), many, IMS_STORE_MAX_CAPS + 1),
                     IMS_EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest store_tests[] = {
    T(test_open_migrate),    T(test_open_concurrent_migration), T(test_reg_state_check),
    T(test_subscription_crud), T(test_lists),
    T(test_impi_impu_crud),  T(test_assoc_and_lists), T(test_lists_sorted),
    T(test_sqn_update),      T(test_sqn_concurrent),
    T(test_reg_state),       T(test_profiles),
    T(test_sh_data),         T(test_scscf_caps),
};
const size_t store_ntests = sizeof(store_tests) / sizeof(store_tests[0]);
