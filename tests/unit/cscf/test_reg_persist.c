/* test_reg_persist - the S-CSCF's registrations on disk (reg_persist.c):
 * the profile written as a document parses back equal, a store's
 * registrations (contacts, implicit set found by an alias, profile with its
 * iFCs) come back in a new store from the file, removals and expiry reach
 * the file, expired registrations and undecodable rows are dropped at load,
 * a file that is not a database is moved aside (start empty, no crash), a
 * resync rewrites the file from the table, and a second process's S-CSCF
 * on the same file is refused. */
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

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cscf/reg_persist.h"
#include "cscf/registrar.h"
#include "reg_db_files.h"

#define NOW 1800000000LL

static const char doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID>"
    "<ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity>"
    "<Extension><IdentityType>0</IdentityType><Extension><DisplayName>Al &lt;i&gt; &amp; ce"
    "</DisplayName></Extension></Extension></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication><Identity>tel:+15550001</Identity>"
    "</PublicIdentity>"
    "<InitialFilterCriteria><Priority>20</Priority>"
    "<TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>"
    "<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT>"
    "<SPT><ConditionNegated>1</ConditionNegated><Group>0</Group><Group>1</Group>"
    "<SIPHeader><Header>Accept-Contact</Header><Content>video</Content></SIPHeader></SPT>"
    "<SPT><Group>1</Group><SessionCase>1</SessionCase></SPT>"
    "<SPT><Group>3</Group><SessionDescription><Line>m</Line></SessionDescription></SPT>"
    "<SPT><Group>4</Group><RequestURI>sip:x@ims.test</RequestURI></SPT>"
    "<SPT><Group>2</Group><Method>REGISTER</Method>"
    "<Extension><RegistrationType>0</RegistrationType><RegistrationType>2</RegistrationType>"
    "</Extension></SPT>"
    "</TriggerPoint>"
    "<ApplicationServer><ServerName>sip:as2.ims.test</ServerName>"
    "<DefaultHandling>1</DefaultHandling><ServiceInfo>x&amp;y</ServiceInfo>"
    "<Extension><IncludeRegisterRequest/></Extension>"
    "</ApplicationServer><ProfilePartIndicator>0</ProfilePartIndicator>"
    "</InitialFilterCriteria>"
    "<InitialFilterCriteria><Priority>10</Priority>"
    "<ApplicationServer><ServerName>sip:as1.ims.test</ServerName></ApplicationServer>"
    "</InitialFilterCriteria>"
    "</ServiceProfile>"
    "<ServiceProfile><PublicIdentity><Identity>sip:alice-work@ims.test</Identity>"
    "</PublicIdentity></ServiceProfile>"
    "</IMSSubscription>";

static char dir[256], path[300];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "%s/imsregXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/scscf-reg.db", dir);
    return 0;
}

static int teardown(void **state)
{
    reg_db_remove(path);
    rmdir(dir);
    return 0;
}

/* ---- helpers ---- */

static struct ims_loc *open_store(int64_t now)
{
    struct ims_loc *l = NULL;
    char err[256] = "";
    assert_int_equal(ims_loc_new(1000, 4, &l), 0);
    int rc = ims_loc_persist(l, path, now, NULL, err, sizeof(err));
    if (rc)
        fail_msg("ims_loc_persist: %s", err);
    return l;
}

struct set_ctx {
    struct ims_profile *prof;
    int64_t expires;
    const char *uri;
};

static int set_fn(struct ims_reg *r, void *ctx)
{
    struct set_ctx *s = ctx;
    snprintf(r->impi, sizeof(r->impi), "alice@ims.test");
    snprintf(r->service_route, sizeof(r->service_route), "<sip:s.test:6060;lr;orig>");
    /* alice has an implicit set (aliases), the others only themselves */
    r->nimpu = 1;
    snprintf(r->impus[0], IMS_REG_ID_MAX, "%s", r->impu);
    if (strcmp(r->impu, "sip:alice@ims.test") == 0) {
        r->nimpu = 3;
        snprintf(r->impus[1], IMS_REG_ID_MAX, "tel:+15550001");
        snprintf(r->impus[2], IMS_REG_ID_MAX, "sip:alice-work@ims.test");
        r->barred[1] = true;
    }
    struct ims_reg_contact *c = &r->contacts[r->ncontacts++];
    memset(c, 0, sizeof(*c));
    snprintf(c->uri, sizeof(c->uri), "%s", s->uri);
    snprintf(c->path, sizeof(c->path), "<sip:term-1@p.test;lr>");
    snprintf(c->call_id, sizeof(c->call_id), "cid-1");
    snprintf(c->instance, sizeof(c->instance), "<urn:uuid:1>");
    c->reg_id = 3;
    c->cseq = 7;
    c->q = 500;
    c->expires = s->expires;
    r->registered_at = NOW - 5;
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(s->prof);
    return 0;
}

static void put_reg(struct ims_loc *l, const char *impu, int64_t expires, const char *uri,
                    struct ims_profile *prof)
{
    struct ims_reg *scratch = calloc(1, sizeof(*scratch));
    struct set_ctx s = { prof, expires, uri };
    assert_int_equal(ims_loc_update(l, ims_str_cstr(impu), NOW, scratch, set_fn, &s), 0);
    free(scratch);
}

static int64_t db_count(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM reg", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void db_run(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---- tests ---- */

static void test_profile_xml_round_trip(void **state)
{
    struct ims_profile *a = NULL, *b = NULL;
    assert_int_equal(ims_profile_parse(IMS_S(doc), &a), 0);
    struct ims_buf x1, x2;
    ims_buf_init(&x1, IMS_PROFILE_DOC_MAX);
    ims_buf_init(&x2, IMS_PROFILE_DOC_MAX);
    assert_int_equal(reg_profile_xml(a, &x1), 0);
    assert_int_equal(ims_profile_parse(ims_buf_str(&x1), &b), 0);
    assert_int_equal(reg_profile_xml(b, &x2), 0);
    /* canonical: writing the parsed copy gives the same document */
    assert_int_equal(x1.len, x2.len);
    assert_memory_equal(x1.p, x2.p, x1.len);
    /* and the parsed copy says what the original says */
    assert_string_equal(b->impi, "alice@ims.test");
    assert_int_equal(b->nsp, 2);
    assert_int_equal(b->nids, 3);
    const struct ims_service_profile *sp = &b->sps[0];
    assert_string_equal(sp->ids[0].display_name, "Al <i> & ce");
    assert_true(sp->ids[1].barred);
    assert_null(sp->ids[1].display_name);
    assert_int_equal(sp->nifc, 2);
    assert_int_equal(sp->ifcs[0].priority, 10);
    assert_false(sp->ifcs[0].has_trigger);
    const struct ims_prof_ifc *f = &sp->ifcs[1];
    assert_true(f->has_trigger && f->cnf);
    assert_int_equal(f->nspt, 6);
    assert_int_equal(f->spts[1].kind, IMS_SPTK_SIP_HEADER);
    assert_true(f->spts[1].negated);
    assert_int_equal(f->spts[1].ngroups, 2);
    assert_string_equal(f->spts[1].content, "video");
    assert_int_equal(f->spts[2].session_case, 1);
    assert_int_equal(f->spts[3].kind, IMS_SPTK_SESSION_DESCRIPTION);
    assert_null(f->spts[3].content);
    assert_int_equal(f->spts[4].kind, IMS_SPTK_REQUEST_URI);
    assert_int_equal(f->spts[5].reg_types, 1u << 0 | 1u << 2);
    assert_string_equal(f->service_info, "x&y");
    assert_true(f->include_register_request);
    assert_false(f->include_register_response);
    assert_int_equal(f->profile_part, 0);
    assert_int_equal(f->default_handling, 1);
    ims_buf_free(&x1);
    ims_buf_free(&x2);
    ims_profile_unref(a);
    ims_profile_unref(b);
}

static void test_round_trip(void **state)
{
    struct ims_profile *prof = NULL;
    assert_int_equal(ims_profile_parse(IMS_S(doc), &prof), 0);
    struct ims_loc *l = open_store(NOW);
    put_reg(l, "sip:alice@ims.test", NOW + 600, "sip:alice@10.0.0.1:5060", prof);
    put_reg(l, "sip:bob@ims.test", NOW + 600, "sip:bob@10.0.0.2:5060", NULL);
    put_reg(l, "sip:carol@ims.test", NOW + 600, "sip:carol@10.0.0.3:5060", NULL);
    /* a removal reaches the file too */
    assert_int_equal(ims_loc_remove(l, IMS_S("sip:carol@ims.test")), 0);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    assert_int_equal(db_count(), 2);
    ims_loc_free(l);
    ims_profile_unref(prof);

    /* a new store (a restart) gets them back */
    l = open_store(NOW + 1);
    struct ims_reg *r = calloc(1, sizeof(*r));
    /* by an alias of the implicit set */
    assert_int_equal(ims_loc_get(l, IMS_S("sip:alice-work@ims.test"), NOW + 1, r), 0);
    assert_string_equal(r->impu, "sip:alice@ims.test");
    assert_string_equal(r->impi, "alice@ims.test");
    assert_string_equal(r->service_route, "<sip:s.test:6060;lr;orig>");
    assert_int_equal(r->nimpu, 3);
    assert_true(r->barred[1]);
    assert_int_equal(r->ncontacts, 1);
    assert_string_equal(r->contacts[0].uri, "sip:alice@10.0.0.1:5060");
    assert_string_equal(r->contacts[0].path, "<sip:term-1@p.test;lr>");
    assert_string_equal(r->contacts[0].instance, "<urn:uuid:1>");
    assert_int_equal(r->contacts[0].reg_id, 3);
    assert_int_equal(r->contacts[0].cseq, 7);
    assert_int_equal(r->contacts[0].q, 500);
    assert_int_equal(r->contacts[0].expires, NOW + 600);
    assert_int_equal(r->registered_at, NOW - 5);
    /* the profile, iFCs and all */
    assert_non_null(r->profile);
    const struct ims_service_profile *sp = ims_profile_find(r->profile, IMS_S("tel:+15550001"));
    assert_non_null(sp);
    assert_int_equal(sp->nifc, 2);
    assert_string_equal(sp->ifcs[1].server_name, "sip:as2.ims.test");
    ims_reg_clear(r);
    assert_int_equal(ims_loc_get(l, IMS_S("tel:+15550001"), NOW + 1, r), 0);
    ims_reg_clear(r);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:bob@ims.test"), NOW + 1, r), 0);
    assert_null(r->profile);
    ims_reg_clear(r);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:carol@ims.test"), NOW + 1, r), IMS_ENOENT);
    /* 2 registrations + 2 aliases */
    assert_int_equal(ims_loc_count(l), 4);
    free(r);
    ims_loc_free(l);
}

static void test_expiry(void **state)
{
    struct ims_loc *l = open_store(NOW);
    put_reg(l, "sip:short@ims.test", NOW + 10, "sip:s@10.0.0.1", NULL);
    put_reg(l, "sip:long@ims.test", NOW + 100, "sip:l@10.0.0.1", NULL);
    put_reg(l, "sip:gone@ims.test", NOW + 10, "sip:g@10.0.0.1", NULL);
    /* the sweep's removal is written too */
    assert_int_equal(ims_loc_expire(l, 0, 1, NOW + 11, NULL, NULL), 2);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    assert_int_equal(db_count(), 1);
    put_reg(l, "sip:short@ims.test", NOW + 30, "sip:s@10.0.0.1", NULL);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    ims_loc_free(l);
    /* down for a while: short expired meanwhile, long did not; short is
     * handed back for the SAR the HSS is owed */
    struct ims_buf lapsed;
    ims_buf_init(&lapsed, 4096);
    char err[256] = "";
    assert_int_equal(ims_loc_new(1000, 4, &l), 0);
    assert_int_equal(ims_loc_persist(l, path, NOW + 50, &lapsed, err, sizeof(err)), 0);
    static const char want[] = "sip:short@ims.test\0alice@ims.test";
    assert_int_equal(lapsed.len, sizeof(want));
    assert_memory_equal(lapsed.p, want, sizeof(want));
    ims_buf_free(&lapsed);
    struct ims_reg *r = calloc(1, sizeof(*r));
    assert_int_equal(ims_loc_get(l, IMS_S("sip:short@ims.test"), NOW + 50, r), IMS_ENOENT);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:long@ims.test"), NOW + 50, r), 0);
    ims_reg_clear(r);
    assert_int_equal(ims_loc_count(l), 1);
    ims_loc_free(l);
    assert_int_equal(db_count(), 1); /* the expired row was deleted at load */
    /* and the restored one expires by the normal sweep; nothing lapsed now */
    ims_buf_init(&lapsed, 4096);
    assert_int_equal(ims_loc_new(1000, 4, &l), 0);
    assert_int_equal(ims_loc_persist(l, path, NOW + 50, &lapsed, err, sizeof(err)), 0);
    assert_int_equal(lapsed.len, 0);
    assert_int_equal(ims_loc_expire(l, 0, 1, NOW + 101, NULL, NULL), 1);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    assert_int_equal(db_count(), 0);
    free(r);
    ims_loc_free(l);
}

static void test_bad_rows(void **state)
{
    struct ims_loc *l = open_store(NOW);
    put_reg(l, "sip:ok@ims.test", NOW + 100, "sip:ok@10.0.0.1", NULL);
    put_reg(l, "sip:cut@ims.test", NOW + 100, "sip:cut@10.0.0.1", NULL);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    ims_loc_free(l);
    /* garbage, a truncated record, a record with a broken profile */
    db_run("INSERT INTO reg VALUES ('sip:junk@ims.test', 1900000000, x'00112233');"
           "UPDATE reg SET rec = substr(rec, 1, length(rec) - 3) WHERE impu = 'sip:cut@ims.test';");
    l = open_store(NOW);
    struct ims_reg *r = calloc(1, sizeof(*r));
    assert_int_equal(ims_loc_get(l, IMS_S("sip:ok@ims.test"), NOW, r), 0);
    ims_reg_clear(r);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:junk@ims.test"), NOW, r), IMS_ENOENT);
    assert_int_equal(ims_loc_get(l, IMS_S("sip:cut@ims.test"), NOW, r), IMS_ENOENT);
    free(r);
    ims_loc_free(l);
    assert_int_equal(db_count(), 1);
}

/* A record written before RFC 5626 flows (format 1: no reg-id in a
 * contact's fixed part) still loads after an upgrade, as a binding without
 * a reg-id, and is written back in the current format. */
static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_format1_upgrade(void **state)
{
    ims_loc_free(open_store(NOW)); /* the file and its schema */
    /* data: impi, service route, '0' impu, then one contact: int64 expires,
     * u32 cseq, u32 q (host order), uri, path, call-id, instance */
    uint8_t data[256];
    size_t n = 0;
    static const char head[] = "old@ims.test\0<sip:s.test;lr;orig>\0" "0sip:old@ims.test\0";
    memcpy(data, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    int64_t exp = NOW + 300;
    uint32_t cseq = 9, q = 700;
    memcpy(data + n, &exp, 8);
    memcpy(data + n + 8, &cseq, 4);
    memcpy(data + n + 12, &q, 4);
    n += 16;
    static const char strs[] = "sip:old@10.0.0.9:5060\0<sip:term-9@p.test;lr>\0cid-9\0<urn:uuid:9>";
    memcpy(data + n, strs, sizeof(strs)); /* with the last NUL */
    n += sizeof(strs);
    uint8_t blob[300] = { 'I', 'M', 'S', 'R', 1 };
    put_le(blob + 6, 1, 2);
    put_le(blob + 8, 1, 2);
    put_le(blob + 12, n, 4);
    put_le(blob + 16, 0, 4);
    put_le(blob + 20, (uint64_t)(NOW - 60), 8);
    memcpy(blob + 28, data, n);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO reg VALUES (?1, ?2, ?3)", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, "sip:old@ims.test", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, exp);
    sqlite3_bind_blob(st, 3, blob, (int)(28 + n), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);

    struct ims_reg *r = calloc(1, sizeof(*r));
    for (int round = 0; round < 2; round++) {
        /* round 1 reads what round 0 wrote back: the current format */
        struct ims_loc *l = open_store(NOW);
        assert_int_equal(ims_loc_get(l, IMS_S("sip:old@ims.test"), NOW, r), 0);
        assert_int_equal(r->ncontacts, 1);
        assert_string_equal(r->contacts[0].uri, "sip:old@10.0.0.9:5060");
        assert_string_equal(r->contacts[0].path, "<sip:term-9@p.test;lr>");
        assert_string_equal(r->contacts[0].call_id, "cid-9");
        assert_string_equal(r->contacts[0].instance, "<urn:uuid:9>");
        assert_int_equal(r->contacts[0].reg_id, 0);
        assert_int_equal(r->contacts[0].cseq, 9);
        assert_int_equal(r->contacts[0].q, 700);
        assert_int_equal(r->contacts[0].expires, exp);
        assert_int_equal(r->registered_at, NOW - 60);
        ims_reg_clear(r);
        if (round == 0) {
            reg_persist_resync(ims_loc_persister(l));
            assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
        }
        ims_loc_free(l);
    }
    /* the row now carries format 2 */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT substr(rec, 5, 1) FROM reg", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(((const uint8_t *)sqlite3_column_blob(st, 0))[0], REG_PACKED_FORMAT);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(r);
}

static void test_corrupt_file(void **state)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 512; i++)
        fputs("this is not an SQLite database ", f);
    fclose(f);
    /* a WARN, the file moved aside, an empty store that works */
    struct ims_loc *l = open_store(NOW);
    assert_int_equal(ims_loc_count(l), 0);
    char aside[400];
    snprintf(aside, sizeof(aside), "%s.corrupt", path);
    assert_int_equal(access(aside, F_OK), 0);
    put_reg(l, "sip:new@ims.test", NOW + 100, "sip:n@10.0.0.1", NULL);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    assert_int_equal(db_count(), 1);
    ims_loc_free(l);
}

static void test_resync_and_lock(void **state)
{
    struct ims_loc *l = open_store(NOW);
    put_reg(l, "sip:a@ims.test", NOW + 100, "sip:a@10.0.0.1", NULL);
    put_reg(l, "sip:b@ims.test", NOW + 100, "sip:b@10.0.0.1", NULL);
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    /* someone else's row, and one of ours lost: a resync rewrites the file
     * from the table */
    db_run("DELETE FROM reg WHERE impu = 'sip:a@ims.test';"
           "INSERT INTO reg VALUES ('sip:x@ims.test', 1900000000, x'00');");
    reg_persist_resync(ims_loc_persister(l));
    assert_int_equal(reg_persist_flush(ims_loc_persister(l)), 0);
    assert_int_equal(db_count(), 2);
    /* a second store on the same file is refused while this one runs */
    struct ims_loc *l2 = NULL;
    char err[256] = "";
    assert_int_equal(ims_loc_new(100, 1, &l2), 0);
    assert_int_equal(ims_loc_persist(l2, path, NOW, NULL, err, sizeof(err)), IMS_EBACKEND);
    assert_non_null(strstr(err, "in use"));
    ims_loc_free(l2);
    ims_loc_free(l);
}

/* Allocation failures anywhere (the queue's copies, the table, the writer's
 * buffers): once the failures stop, the file says what the table says (a
 * dropped change schedules a resync). */
static void test_alloc_failures(void **state)
{
    static const char *const who[] = { "sip:alice@ims.test", "sip:bob@ims.test",
                                       "sip:carol@ims.test" };
    struct ims_reg *scratch = calloc(1, sizeof(*scratch)), *out = calloc(1, sizeof(*out));
    for (unsigned long n = 1; n <= 24; n++) {
        teardown(state);
        setup(state);
        struct ims_loc *l = open_store(NOW);
        ims_alloc_fail_at(n, 0);
        for (size_t i = 0; i < 3; i++) {
            struct set_ctx s = { NULL, NOW + 100, "sip:x@10.0.0.1" };
            ims_loc_update(l, ims_str_cstr(who[i]), NOW, scratch, set_fn, &s);
        }
        ims_loc_remove(l, ims_str_cstr(who[1]));
        ims_alloc_fail_at(0, 0);
        int rc = -1;
        for (int tries = 0; tries < 5 && rc != 0; tries++)
            rc = reg_persist_flush(ims_loc_persister(l));
        assert_int_equal(rc, 0);
        int64_t live = 0;
        for (size_t i = 0; i < 3; i++) {
            if (ims_loc_get(l, ims_str_cstr(who[i]), NOW, out) == 0) {
                live++;
                ims_reg_clear(out);
            }
        }
        assert_int_equal(db_count(), live);
        ims_loc_free(l);
    }
    free(scratch);
    free(out);
}

/* [scscf] persist: yes by default, "no" turns it off, anything else is refused */
static void test_config_key(void **state)
{
    struct ims_cfg *c = NULL;
    char err[256];
    assert_int_equal(ims_cfg_load_string("t.conf", "[core]\nroles = scscf\n", &c, err,
                                         sizeof(err)), 0);
    assert_true(c->scscf_persist);
    ims_cfg_free(c);
    assert_int_equal(ims_cfg_load_string("t.conf", "[scscf]\npersist = no\n", &c, err,
                                         sizeof(err)), 0);
    assert_false(c->scscf_persist);
    ims_cfg_free(c);
    c = NULL;
    assert_int_not_equal(ims_cfg_load_string("t.conf", "[scscf]\npersist = maybe\n", &c, err,
                                             sizeof(err)), 0);
    assert_non_null(strstr(err, "persist"));
    ims_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_key),
        cmocka_unit_test(test_profile_xml_round_trip),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format1_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests_name("reg_persist", tests, NULL, NULL);
}
