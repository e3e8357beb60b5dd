/* fuzz_reg_load.c - libFuzzer harness for the S-CSCF's registrations read
 * back at start (src/cscf/reg_persist.c, registrar.c's restore_one): rows
 * of <state_dir>/scscf-reg.db that a crash, a full disk, an old version or
 * another program may have left broken.  A row must load or be dropped,
 * never crash the S-CSCF or leak.
 *
 * Once per process a real store writes three registrations (alice with an
 * implicit set of three IMPUs, a profile with iFCs and an RFC 5626 contact;
 * bob with two contacts and no profile; carol with a barred alias) and the
 * harness keeps their rows.  An input's first byte says what to write:
 *   0x01 clear: those three rows, patched by the rest of the input, 4 bytes
 *        per patch (row, offset low, offset high, a byte XORed in); 0x02
 *        also cuts the last patch's row at its offset;
 *   0x01 set: rows of the rest, separated by "\n--\n", each a key (the
 *        IMPU) up to '\n', then the record's bytes.
 * Each row gets an expiry an hour after the test's clock.  Then:
 *   - a store opened on the file has, for each row key it answers, a
 *     registration with a live contact and at least one IMPU;
 *   - after a flush, a second store opened on the same file holds the same
 *     number of entries and answers the same keys with the same contacts
 *     and IMPUs: what was restored is written back and restores the same;
 *   - ASan/LSan find nothing.
 * FUZZ_REG_DUMP=DIR writes the kept rows as raw-mode inputs (seeds).  Built
 * without libFuzzer it is just a function (fuzz_reg_load_replay runs the
 * corpus). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cscf/profile.h"
#include "cscf/reg_persist.h"
#include "cscf/registrar.h"

#include "fuzz.h"
#include "reg_db_files.h"

#define NOW 1800000000LL
#define MAX_ROWS 8
#define NKEPT 3

static char dir[256], path[300];

struct row {
    char key[IMS_REG_ID_MAX];
    uint8_t *rec;
    size_t len;
};
static struct row kept[NKEPT];

static const char profile_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<IMSSubscription><PrivateID>alice@ims.test</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity>"
    "<PublicIdentity><BarringIndication>1</BarringIndication><Identity>tel:+15550001</Identity>"
    "</PublicIdentity>"
    "<InitialFilterCriteria><Priority>10</Priority><TriggerPoint><ConditionTypeCNF>1"
    "</ConditionTypeCNF><SPT><Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint>"
    "<ApplicationServer><ServerName>sip:as.ims.test</ServerName><DefaultHandling>1"
    "</DefaultHandling></ApplicationServer></InitialFilterCriteria></ServiceProfile>"
    "<ServiceProfile><PublicIdentity><Identity>sip:alice-work@ims.test</Identity>"
    "</PublicIdentity></ServiceProfile></IMSSubscription>";

static void remove_files(void)
{
    reg_db_remove(path);
}

static void cleanup(void)
{
    remove_files();
    rmdir(dir);
}

static struct ims_loc *open_store(void)
{
    struct ims_loc *l = NULL;
    char err[256];
    struct ims_buf lapsed; /* the lapsed rows' "impu\0impi\0" pairs: whole ones */
    ims_buf_init(&lapsed, 1u << 20);
    CHECK(ims_loc_new(1000, 4, &l) == 0);
    CHECK(ims_loc_persist(l, path, NOW, &lapsed, err, sizeof(err)) == 0);
    size_t nul = 0;
    for (size_t i = 0; i < lapsed.len; i++)
        nul += lapsed.p[i] == '\0';
    CHECK(nul % 2 == 0 && (lapsed.len == 0 || lapsed.p[lapsed.len - 1] == '\0'));
    ims_buf_free(&lapsed);
    return l;
}

/* ---- the kept rows: written by a real store ---- */

struct who {
    const char *impus[3];
    size_t nimpu, ncontacts;
    struct ims_profile *prof;
};

static int set_fn(struct ims_reg *r, void *ctx)
{
    const struct who *w = ctx;
    snprintf(r->impi, sizeof(r->impi), "%s", w->impus[0] + 4);
    snprintf(r->service_route, sizeof(r->service_route), "<sip:orig@s.ims.test:6060;lr>");
    r->nimpu = w->nimpu;
    for (size_t i = 0; i < w->nimpu; i++) {
        snprintf(r->impus[i], IMS_REG_ID_MAX, "%s", w->impus[i]);
        r->barred[i] = i == 1;
    }
    for (size_t i = 0; i < w->ncontacts; i++) {
        struct ims_reg_contact *c = &r->contacts[r->ncontacts++];
        memset(c, 0, sizeof(*c));
        snprintf(c->uri, sizeof(c->uri), "sip:ue%zu@10.0.0.%zu:5060", i, i + 1);
        snprintf(c->path, sizeof(c->path), "<sip:term@p.ims.test;lr>");
        snprintf(c->call_id, sizeof(c->call_id), "cid-%zu", i);
        if (w->prof) {
            snprintf(c->instance, sizeof(c->instance), "<urn:uuid:00000000-0000-0000-0000-1>");
            c->reg_id = 1;
        }
        c->cseq = 7;
        c->q = 500;
        c->expires = NOW + 600;
    }
    r->registered_at = NOW - 5;
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(w->prof);
    return 0;
}

static void keep_rows(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "SELECT impu, rec FROM reg ORDER BY impu", -1, &st, NULL) ==
          SQLITE_OK);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < NKEPT) {
        snprintf(kept[n].key, sizeof(kept[n].key), "%s", sqlite3_column_text(st, 0));
        kept[n].len = (size_t)sqlite3_column_bytes(st, 1);
        kept[n].rec = malloc(kept[n].len);
        CHECK(kept[n].rec);
        memcpy(kept[n].rec, sqlite3_column_blob(st, 1), kept[n].len);
        n++;
    }
    CHECK(n == NKEPT);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void dump_rows(const char *to)
{
    for (size_t i = 0; i < NKEPT; i++) {
        char f[512];
        snprintf(f, sizeof(f), "%s/raw_%zu", to, i);
        FILE *o = fopen(f, "wb");
        CHECK(o);
        fputc(0x01, o);
        fprintf(o, "%s\n", kept[i].key);
        fwrite(kept[i].rec, 1, kept[i].len, o);
        fclose(o);
    }
}

static void setup(void)
{
    if (!fuzz_first())
        return;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fuzz-reg-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/scscf-reg.db", dir);
    atexit(cleanup);

    struct ims_profile *prof = NULL;
    CHECK(ims_profile_parse(ims_str_make(profile_doc, sizeof(profile_doc) - 1), &prof) == 0);
    struct who who[NKEPT] = {
        { { "sip:alice@ims.test", "tel:+15550001", "sip:alice-work@ims.test" }, 3, 1, prof },
        { { "sip:bob@ims.test" }, 1, 2, NULL },
        { { "sip:carol@ims.test", "sip:carol-old@ims.test" }, 2, 1, NULL },
    };
    struct ims_loc *l = open_store();
    struct ims_reg *scratch = calloc(1, sizeof(*scratch));
    CHECK(scratch);
    for (size_t i = 0; i < NKEPT; i++)
        CHECK(ims_loc_update(l, ims_str_cstr(who[i].impus[0]), NOW, scratch, set_fn, &who[i]) ==
              0);
    free(scratch);
    CHECK(reg_persist_flush(ims_loc_persister(l)) == 0);
    ims_loc_free(l);
    ims_profile_unref(prof);
    keep_rows();
    remove_files();
    const char *d = getenv("FUZZ_REG_DUMP");
    if (d)
        dump_rows(d);
}

/* ---- one input ---- */

static void write_file(const struct row *rows, size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL;"
                       "CREATE TABLE reg(impu TEXT PRIMARY KEY, expires INTEGER, rec BLOB)",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO reg VALUES (?, ?, ?)", -1, &st, NULL) ==
          SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, rows[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, NOW + 3600);
        sqlite3_bind_blob(st, 3, rows[i].len ? rows[i].rec : (const void *)"", (int)rows[i].len,
                          SQLITE_STATIC);
        CHECK(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* Parses the input into rows (pointing into buf, a copy the caller frees). */
static size_t make_rows(uint8_t mode, const uint8_t *p, size_t len, struct row *rows,
                        uint8_t **buf)
{
    size_t n = 0;
    if (!(mode & 0x01)) {
        size_t total = 0;
        for (size_t i = 0; i < NKEPT; i++)
            total += kept[i].len;
        *buf = malloc(total + 1);
        CHECK(*buf);
        uint8_t *w = *buf;
        for (size_t i = 0; i < NKEPT; i++, n++) {
            rows[i] = kept[i];
            memcpy(w, kept[i].rec, kept[i].len);
            rows[i].rec = w;
            w += kept[i].len;
        }
        const uint8_t *last = NULL;
        for (size_t k = 0; k + 4 <= len; k += 4) {
            struct row *r = &rows[p[k] % NKEPT];
            size_t off = (size_t)(p[k + 1] | p[k + 2] << 8);
            if (r->len)
                r->rec[off % r->len] ^= p[k + 3];
            last = p + k;
        }
        if ((mode & 0x02) && last) {
            struct row *r = &rows[last[0] % NKEPT];
            if (r->len)
                r->len = (size_t)(last[1] | last[2] << 8) % r->len;
        }
        return n;
    }
    *buf = malloc(len + 1);
    CHECK(*buf);
    memcpy(*buf, p, len);
    const uint8_t *s = *buf, *end = *buf + len;
    while (s < end && n < MAX_ROWS) {
        const uint8_t *e = memmem(s, (size_t)(end - s), "\n--\n", 4);
        if (!e)
            e = end;
        const uint8_t *nl = memchr(s, '\n', (size_t)(e - s));
        size_t klen = nl ? (size_t)(nl - s) : (size_t)(e - s);
        if (klen > 0 && klen < IMS_REG_ID_MAX && !memchr(s, '\0', klen)) {
            memcpy(rows[n].key, s, klen);
            rows[n].key[klen] = '\0';
            rows[n].rec = nl ? (uint8_t *)nl + 1 : (uint8_t *)e;
            rows[n].len = nl ? (size_t)(e - nl - 1) : 0;
            n++;
        }
        s = e < end ? e + 4 : end;
    }
    return n;
}

struct seen {
    int rc;
    size_t nimpu, ncontacts;
    char first_contact[IMS_REG_URI_MAX];
};

static void look(struct ims_loc *l, const struct row *rows, size_t n, struct ims_reg *r,
                 struct seen *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].rc = ims_loc_get(l, ims_str_cstr(rows[i].key), NOW, r);
        CHECK(out[i].rc == 0 || out[i].rc == IMS_ENOENT);
        if (out[i].rc == 0) {
            CHECK(r->ncontacts >= 1 && r->nimpu >= 1);
            out[i].nimpu = r->nimpu;
            out[i].ncontacts = r->ncontacts;
            snprintf(out[i].first_contact, sizeof(out[i].first_contact), "%s",
                     r->contacts[0].uri);
            ims_reg_clear(r);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    setup();
    struct row rows[MAX_ROWS];
    uint8_t *buf = NULL;
    size_t n = make_rows(data[0], data + 1, size - 1, rows, &buf);
    remove_files();
    write_file(rows, n);

    struct ims_reg *r = calloc(1, sizeof(*r));
    CHECK(r);
    struct seen a[MAX_ROWS], b[MAX_ROWS];
    struct ims_loc *l = open_store();
    size_t count = ims_loc_count(l);
    look(l, rows, n, r, a);
    CHECK(reg_persist_flush(ims_loc_persister(l)) == 0);
    ims_loc_free(l);

    l = open_store();
    CHECK(ims_loc_count(l) == count);
    look(l, rows, n, r, b);
    for (size_t i = 0; i < n; i++) {
        CHECK(a[i].rc == b[i].rc && a[i].nimpu == b[i].nimpu &&
              a[i].ncontacts == b[i].ncontacts);
        CHECK(strcmp(a[i].first_contact, b[i].first_contact) == 0);
    }
    ims_loc_free(l);
    free(r);
    free(buf);
    return 0;
}
