/* store.c - opening a store, schema migrations, and the helpers every
 * store*.c file uses (binding, errors, validation, secrets). */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/keyrepo.h"
#include "store/store_cache.h"
#include "store/store_int.h"

const char *const st_secret_field[SEC__N] = { "k",          "opc",          "ha1-md5",
                                              "ha1-sha256", "ha1-sha512-256", "password" };

/* ------------------------------------------------------------- errors */

int st_err(struct ims_store *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

int st_fail(struct ims_store *s, int rc, const char *what)
{
    switch (rc) {
    case STORE_ECONSTRAINT:
        return st_err(s, IMS_EINVAL, "%s: refused by the database (duplicate or still referenced)",
                      what);
    case IMS_ENOMEM:
        return st_err(s, IMS_ENOMEM, "%s: out of memory", what);
    case IMS_EBACKEND:
        LOG_E("store", "event=db_error backend=%s op=\"%s\" msg=\"%s\"", s->drv->name, what,
              s->drv->errmsg(s->db));
        return st_err(s, IMS_EBACKEND, "%s: %s", what, s->drv->errmsg(s->db));
    default:
        return rc;
    }
}

/* ------------------------------------------------------------ binding */

static int bind_va(struct ims_store *s, struct store_stmt *stmt, const char *fmt, va_list ap)
{
    int rc = 0;
    for (int i = 0; fmt[i] && rc == 0; i++) {
        switch (fmt[i]) {
        case 't':
            rc = s->drv->bind_text(stmt, i + 1, va_arg(ap, ims_str), false);
            break;
        case 'o':
            rc = s->drv->bind_text(stmt, i + 1, va_arg(ap, ims_str), true);
            break;
        case 'i':
            rc = s->drv->bind_int(stmt, i + 1, va_arg(ap, int64_t));
            break;
        default:
            return IMS_EINVAL;
        }
    }
    return rc;
}

/* store_cache.h: whether q may change cache_generation.gen (fire one of
 * migration 005's triggers).  Reads cannot; nor can the writes the Cx path
 * makes on every request, whose columns the triggers leave out. */
static bool may_move_cache_gen(enum store_q q)
{
    return strncmp(store_sql[q].sql, "SELECT", 6) != 0 && q != Q_IMPI_SQN_SET &&
           q != Q_IMPU_REG_SET && q != Q_IMPU_REG_SET_ID && q != Q_SUB_SET_SCSCF &&
           q != Q_SUB_SET_SCSCF_ID && q != Q_SUB_CHANGE_SCSCF && q != Q_SUB_CHANGE_SCSCF_ID;
}

/* st_query and st_exec: q prepared, its parameters bound. */
static int prepare_bound(struct ims_store *s, enum store_q q, struct store_stmt **out,
                         const char *fmt, va_list ap)
{
    struct store_stmt *stmt;
    if (may_move_cache_gen(q)) { /* st_cache_tag reads it again */
        s->cache_gen_ok = false;
        s->cache_wrote = true;
    }
    int rc = s->drv->prepare(s->db, q, &stmt);
    if (rc)
        return rc;
    rc = bind_va(s, stmt, fmt, ap);
    if (rc) {
        s->drv->reset(stmt);
        return rc;
    }
    *out = stmt;
    return 0;
}

int st_query(struct ims_store *s, enum store_q q, struct store_stmt **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = prepare_bound(s, q, out, fmt, ap);
    va_end(ap);
    return rc;
}

int st_exec(struct ims_store *s, enum store_q q, int64_t *changes, const char *fmt, ...)
{
    va_list ap;
    struct store_stmt *stmt;
    va_start(ap, fmt);
    int rc = prepare_bound(s, q, &stmt, fmt, ap);
    va_end(ap);
    if (rc)
        return rc;
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) /* a RETURNING clause we do not need */
        rc = 0;
    if (rc == 0 && changes)
        *changes = s->drv->changes(stmt);
    s->drv->reset(stmt);
    return rc;
}

/* Savepoints reuse one name: both SQLite and PostgreSQL resolve RELEASE
 * and ROLLBACK TO to the innermost savepoint of that name. */
enum { SP_BEGIN, SP_RELEASE, SP_ROLLBACK };

static int sp_run(struct ims_store *s, int op)
{
    static const char *const sql[] = { "SAVEPOINT ims_sp", "RELEASE ims_sp",
                                       "ROLLBACK TO ims_sp; RELEASE ims_sp" };
    if (!s->drv->savepoint)
        return s->drv->exec(s->db, sql[op]);
    int rc = s->drv->savepoint(s->db, op);
    if (rc == 0 && op == SP_ROLLBACK)
        rc = s->drv->savepoint(s->db, SP_RELEASE);
    return rc;
}

static int sp_fail(struct ims_store *s, int rc)
{
    if (s->batch)
        s->batch_broken = true;
    return rc;
}

int st_begin(struct ims_store *s)
{
    int rc;
    if (s->batch) {
        if (s->batch_broken)
            return st_err(s, IMS_EBACKEND, "batch transaction failed earlier");
        if (!s->batch_open) {
            if (s->req_read) { /* the request's first write (st_req_begin) */
                s->req_read = false;
                rc = s->drv->end_read(s->db);
                if (rc)
                    return sp_fail(s, st_fail(s, rc, "read transaction end"));
            }
            rc = s->drv->begin(s->db);
            if (rc)
                return rc;
            s->batch_open = true;
            /* a change committed between the generation's read and this
             * write lock would make it stale: st_cache_tag reads it again */
            uint32_t dv;
            if (!s->cache_dv_ok || !s->drv->data_version(s->db, &dv) || dv != s->cache_dv)
                s->cache_gen_ok = false;
        }
    } else if (s->depth == 0) {
        s->cache_wrote = false; /* an autocommit write before is committed */
        rc = s->drv->begin(s->db);
        if (rc == 0)
            s->depth = 1;
        return rc;
    }
    rc = sp_run(s, SP_BEGIN);
    if (rc)
        return sp_fail(s, rc);
    s->depth++;
    return 0;
}

int st_commit(struct ims_store *s)
{
    if (s->depth == 0)
        return st_err(s, IMS_EINVAL, "commit without a transaction");
    if (!s->batch && s->depth == 1) {
        /* As before nesting: a failed COMMIT is followed by st_rollback,
         * which at depth 0 rolls back whatever the driver left open. */
        s->depth = 0;
        int rc = s->drv->commit(s->db);
        if (rc == 0) /* failed: st_rollback follows and still needs it */
            s->cache_wrote = false;
        return rc;
    }
    int rc = sp_run(s, SP_RELEASE);
    if (rc)
        return sp_fail(s, rc); /* still open: the caller rolls it back */
    s->depth--;
    return 0;
}

/* store_cache.h rule 2: what was read in the levels undone may be gone,
 * when the transaction wrote anything the cache holds.  A rollback after a
 * refused SQN or a lost race keeps the cache. */
static void cache_undo(struct ims_store *s)
{
    if (s->cache && s->cache_wrote)
        store_cache_forget(s->cache);
}

void st_rollback(struct ims_store *s)
{
    cache_undo(s);
    if (s->depth == 0) {
        if (!s->batch) { /* after a failed outermost COMMIT */
            s->drv->rollback(s->db);
            s->cache_wrote = false;
        }
        return;
    }
    if (!s->batch && s->depth == 1) {
        s->depth = 0;
        s->drv->rollback(s->db);
        s->cache_wrote = false;
        return;
    }
    s->depth--;
    if (sp_run(s, SP_ROLLBACK) != 0)
        sp_fail(s, IMS_EBACKEND);
}

void st_batch_begin(struct ims_store *s)
{
    s->batch = true;
    s->batch_open = false;
    s->cache_gen_ok = false;
    s->cache_wrote = false;
    s->batch_broken = s->depth != 0; /* never: a caller left a level open */
}

int st_batch_end(struct ims_store *s)
{
    int rc = 0;
    bool broken = s->batch_broken || s->depth != 0;
    s->batch = false;
    s->depth = 0;
    if (s->batch_open) {
        s->batch_open = false;
        if (broken) {
            rc = st_err(s, IMS_EBACKEND, "batch transaction rolled back");
            LOG_E("store", "event=batch_rollback backend=%s reason=savepoint_failed",
                  s->drv->name);
        } else {
            rc = s->drv->commit(s->db);
            if (rc)
                rc = st_fail(s, rc, "batch commit");
        }
        if (rc) {
            cache_undo(s);
            s->drv->rollback(s->db);
        }
    }
    s->batch_broken = false;
    s->cache_gen_ok = false;
    s->cache_wrote = false;
    return rc;
}

void st_req_begin(struct ims_store *s)
{
    st_batch_begin(s);
    /* without it (PostgreSQL, or BEGIN failed) each read is its own */
    s->req_read = !s->batch_broken && s->drv->begin_read && s->drv->begin_read(s->db) == 0;
}

int st_req_end(struct ims_store *s)
{
    int rc = 0;
    if (s->req_read) { /* nothing written: no write transaction began */
        s->req_read = false;
        rc = s->drv->end_read(s->db);
        if (rc)
            rc = st_fail(s, rc, "read transaction end");
    }
    int brc = st_batch_end(s);
    return rc ? rc : brc;
}

void st_use_cache(struct ims_store *s, struct store_cache *c)
{
    s->cache = c;
    s->cache_gen_ok = false;
}

bool st_cache_tag(struct ims_store *s, uint64_t *gen, uint64_t *epoch)
{
    if (!s->cache)
        return false;
    if (!s->cache_gen_ok || !s->batch) {
        struct store_stmt *stmt;
        /* the epoch first: a rollback after it makes what follows unusable */
        s->cache_epoch = store_cache_epoch(s->cache);
        if (st_query(s, Q_CACHE_GEN, &stmt, "") != 0)
            return false;
        int rc = s->drv->step(stmt);
        if (rc == STORE_ROW)
            s->cache_gen = (uint64_t)s->drv->col_int(stmt, 0);
        s->drv->reset(stmt);
        if (rc != STORE_ROW) {
            s->errmsg[0] = '\0'; /* the caller goes on without the cache */
            return false;
        }
        s->cache_gen_ok = true;
        s->cache_dv_ok = s->drv->data_version && s->drv->data_version(s->db, &s->cache_dv);
    }
    *gen = s->cache_gen;
    *epoch = s->cache_epoch;
    return true;
}

void st_lazy(struct ims_store *s, bool lazy)
{
    if (s->drv->set_lazy)
        s->drv->set_lazy(s->db, lazy);
}

bool st_idle(struct ims_store *s, bool may_checkpoint)
{
    if (s->drv->idle && s->depth == 0 && !s->batch)
        return s->drv->idle(s->db, may_checkpoint);
    return false;
}

void st_col_copy(struct ims_store *s, struct store_stmt *stmt, int col, char *dst, size_t cap)
{
    ims_str_copy(s->drv->col_text(stmt, col), dst, cap);
}

/* --------------------------------------------------------- validation */

/* Identities, realms and server names end up in SIP headers: between '<' and
 * '>' (P-Associated-URI, Route, Service-Route) and in quoted-strings (the
 * Digest realm).  None of '<', '>', '"', '\' is valid there unescaped (RFC
 * 3261 §25.1: they are not URI characters; a quoted-string escapes '"' and
 * '\'), so an identity holding one could be stored but never registered.
 * Printable ASCII without space (ID_STORED), and with sip_safe none of those
 * four (ID_SAYABLE).  A table: every Cx request checks about 15 identities,
 * and the compare chain cost 13 instructions a byte (callgrind). */
enum { ID_STORED = 1, ID_SAYABLE = 2 };

#define ID_PRINT(c) ((c) > 0x20 && (c) < 0x7f)
#define ID_SPECIAL(c) ((c) == '<' || (c) == '>' || (c) == '"' || (c) == '\\')
#define ID_CLASS(c) \
    (ID_PRINT(c) ? ID_STORED | (ID_SPECIAL(c) ? 0 : ID_SAYABLE) : 0)
#define ID_ROW(b) \
    ID_CLASS(b + 0), ID_CLASS(b + 1), ID_CLASS(b + 2), ID_CLASS(b + 3), ID_CLASS(b + 4), \
        ID_CLASS(b + 5), ID_CLASS(b + 6), ID_CLASS(b + 7), ID_CLASS(b + 8), ID_CLASS(b + 9), \
        ID_CLASS(b + 10), ID_CLASS(b + 11), ID_CLASS(b + 12), ID_CLASS(b + 13), \
        ID_CLASS(b + 14), ID_CLASS(b + 15)

static const uint8_t id_class[256] = {
    ID_ROW(0x00), ID_ROW(0x10), ID_ROW(0x20), ID_ROW(0x30),
    ID_ROW(0x40), ID_ROW(0x50), ID_ROW(0x60), ID_ROW(0x70),
    /* 0x80-0xff: 0 */
};

static bool chars_ok(ims_str v, bool sip_safe)
{
    const unsigned char *p = (const unsigned char *)v.p;
    uint8_t want = sip_safe ? ID_SAYABLE : ID_STORED;
    for (size_t i = 0; i < v.len; i++)
        if (!(id_class[p[i]] & want))
            return false;
    return true;
}

bool st_valid_id(ims_str v)
{
    return v.len > 0 && v.len < IMS_STORE_ID_MAX && chars_ok(v, true);
}

bool st_valid_stored_id(ims_str v)
{
    return v.len > 0 && v.len < IMS_STORE_ID_MAX && chars_ok(v, false);
}

bool ims_store_valid_id(ims_str v)
{
    return st_valid_id(v);
}

bool st_valid_name(ims_str v)
{
    return v.len > 0 && v.len < IMS_STORE_NAME_MAX && chars_ok(v, false);
}

bool st_valid_opt(ims_str v, size_t max)
{
    return v.len < max && chars_ok(v, false);
}

bool st_valid_text(ims_str v, size_t max)
{
    return v.len <= max && (v.len == 0 || memchr(v.p, '\0', v.len) == NULL);
}

/* ------------------------------------------------------------ secrets */

/* "impi:<identity>:<field>" - the row and field a ciphertext belongs to. */
static int make_ad(ims_str impi, const char *field, char *ad, size_t cap, ims_str *out)
{
    size_t n = IMS_STR_JOIN(ad, cap, IMS_S("impi:"), impi, IMS_S(":"), ims_str_cstr(field));
    if (n == SIZE_MAX)
        return IMS_EINVAL;
    *out = ims_str_make(ad, n);
    return 0;
}

int st_encrypt(struct ims_store *s, ims_str impi, const char *field, const void *pt, size_t n,
               struct ims_buf *out)
{
    char adbuf[IMS_STORE_ID_MAX + 32];
    ims_str ad;
    int rc = make_ad(impi, field, adbuf, sizeof(adbuf), &ad);
    if (rc == 0)
        rc = ims_keyrepo_encrypt(s->repo, ad, pt, n, out);
    if (rc)
        return st_err(s, rc == IMS_ENOMEM ? IMS_ENOMEM : IMS_EBACKEND,
                      "cannot encrypt %s of %.*s (%s)", field, IMS_SF(impi), ims_strerror(rc));
    return 0;
}

int st_decrypt_with(const struct ims_keyrepo *repo, ims_str impi, const char *field, ims_str ct,
                    void *pt, size_t cap, size_t *n)
{
    char adbuf[IMS_STORE_ID_MAX + 32];
    ims_str ad;
    int rc = make_ad(impi, field, adbuf, sizeof(adbuf), &ad);
    if (rc == 0)
        rc = repo ? ims_keyrepo_decrypt(repo, ad, ct, pt, cap, n) : IMS_ENOENT;
    if (rc && rc != IMS_ENOMEM) {
        unsigned id = 0;
        ims_keyrepo_ct_keyid(ct, &id);
        /* Not a peer's doing: our row or our key repository is wrong. */
        LOG_E("store", "event=secret_undecryptable impi=%.*s field=%s keyid=%u rc=%s",
              IMS_SF(impi), field, id, ims_strerror(rc));
    }
    return rc;
}

int st_decrypt(struct ims_store *s, ims_str impi, const char *field, ims_str ct, void *pt,
               size_t cap, size_t *n)
{
    int rc = st_decrypt_with(s->repo, impi, field, ct, pt, cap, n);
    if (rc == IMS_ENOMEM)
        return st_err(s, IMS_ENOMEM, "out of memory");
    if (rc) {
        unsigned id = 0;
        ims_keyrepo_ct_keyid(ct, &id);
        return st_err(s, IMS_EBACKEND, "%s of %.*s does not decrypt (key %u: %s)", field,
                      IMS_SF(impi), id,
                      rc == IMS_ENOENT ? "not in the key repository" : "tampered or misplaced");
    }
    return 0;
}

/* --------------------------------------------------------------- rows */

void st_impi_row(struct ims_store *s, struct store_stmt *stmt, struct ims_impi_rec *out)
{
    const struct store_driver *d = s->drv;
    memset(out, 0, sizeof(*out));
    ST_COPY(s, stmt, IMPI_COL_IDENTITY, out->identity);
    ST_COPY(s, stmt, IMPI_COL_SUB, out->subscription);
    ST_COPY(s, stmt, IMPI_COL_REALM, out->realm);
    out->schemes = (unsigned)d->col_int(stmt, IMPI_COL_SCHEMES);
    int64_t amf = d->col_int(stmt, IMPI_COL_AMF);
    out->amf[0] = (uint8_t)(amf >> 8);
    out->amf[1] = (uint8_t)amf;
    out->sqn = (uint64_t)d->col_int(stmt, IMPI_COL_SQN);
    out->has_aka = !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_K) &&
                   !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_OPC);
    out->has_ha1[IMS_DIGEST_MD5] = !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_HA1_MD5);
    out->has_ha1[IMS_DIGEST_SHA256] = !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_HA1_SHA256);
    out->has_ha1[IMS_DIGEST_SHA512_256] =
        !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_HA1_SHA512_256);
    out->has_password = !d->col_null(stmt, IMPI_COL_SECRET0 + SEC_PASSWORD);
}

void st_impu_row(struct ims_store *s, struct store_stmt *stmt, struct ims_impu_rec *out)
{
    const struct store_driver *d = s->drv;
    memset(out, 0, sizeof(*out));
    ST_COPY(s, stmt, 0, out->identity);
    ST_COPY(s, stmt, 1, out->subscription);
    ST_COPY(s, stmt, 2, out->profile);
    out->irs = (unsigned)d->col_int(stmt, 3);
    out->type = (enum ims_identity_type)d->col_int(stmt, 4);
    out->barred = d->col_int(stmt, 5) != 0;
    out->reg_state = (enum ims_reg_state)d->col_int(stmt, 6);
    ST_COPY(s, stmt, 7, out->scscf_name);
}

int64_t st_sub_row(struct ims_store *s, struct store_stmt *stmt, struct ims_sub_rec *out)
{
    memset(out, 0, sizeof(*out));
    ST_COPY(s, stmt, 1, out->name);
    ST_COPY(s, stmt, 2, out->scscf_name);
    ST_COPY(s, stmt, 3, out->ccf[0]);
    ST_COPY(s, stmt, 4, out->ccf[1]);
    ST_COPY(s, stmt, 5, out->ecf[0]);
    ST_COPY(s, stmt, 6, out->ecf[1]);
    ST_COPY(s, stmt, 7, out->keystone_user_id);
    ST_COPY(s, stmt, 8, out->keystone_project_id);
    ST_COPY(s, stmt, 9, out->roles);
    return s->drv->col_int(stmt, 0);
}

void st_keep_sorted(void *arr, size_t *n, size_t cap, size_t size, const void *item,
                    int (*cmp)(const void *, const void *))
{
    unsigned char *a = arr;
    size_t at = *n;
    while (at > 0 && cmp(a + (at - 1) * size, item) > 0)
        at--;
    if (at >= cap)
        return;
    size_t keep = *n < cap ? *n : cap - 1; /* items that stay, [at, keep) move up one */
    memmove(a + (at + 1) * size, a + at * size, (keep - at) * size);
    memcpy(a + at * size, item, size);
    *n = keep + 1;
}

static int cmp_cap(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Each list ascending, its first IMS_STORE_MAX_CAPS kept. */
int st_sub_caps(struct ims_store *s, int64_t sub_id, struct ims_sub_rec *sub)
{
    struct store_stmt *stmt;
    int rc = st_query(s, Q_SUBCAP_LIST, &stmt, "i", sub_id);
    if (rc)
        return rc;
    sub->n_mandatory = sub->n_optional = 0;
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        uint32_t cap = (uint32_t)s->drv->col_int(stmt, 0);
        if (s->drv->col_int(stmt, 1))
            st_keep_sorted(sub->caps_mandatory, &sub->n_mandatory, IMS_STORE_MAX_CAPS,
                           sizeof(cap), &cap, cmp_cap);
        else
            st_keep_sorted(sub->caps_optional, &sub->n_optional, IMS_STORE_MAX_CAPS,
                           sizeof(cap), &cap, cmp_cap);
    }
    s->drv->reset(stmt);
    return rc;
}

int st_sub_caps_put(struct ims_store *s, int64_t sub_id, const struct ims_sub_rec *sub)
{
    int rc = st_exec(s, Q_SUBCAP_DELETE, NULL, "i", sub_id);
    for (size_t i = 0; rc == 0 && i < sub->n_mandatory; i++)
        rc = st_exec(s, Q_SUBCAP_INSERT, NULL, "iii", sub_id, (int64_t)sub->caps_mandatory[i],
                     (int64_t)1);
    for (size_t i = 0; rc == 0 && i < sub->n_optional; i++)
        rc = st_exec(s, Q_SUBCAP_INSERT, NULL, "iii", sub_id, (int64_t)sub->caps_optional[i],
                     (int64_t)0);
    return rc;
}

void ims_auth_data_clear(struct ims_auth_data *a)
{
    ims_wipe(a, sizeof(*a));
}

/* --------------------------------------------------------------- open */

/* Applies each migration newer than the database, one transaction each,
 * under the backend's migration lock (so concurrent starters serialise and
 * the second one finds nothing to do). */
static int migrate(struct ims_store *s)
{
    const struct store_driver *d = s->drv;
    for (size_t i = 0; i < *d->nmigrations; i++) {
        const struct store_migration *m = &d->migrations[i];
        struct store_stmt *stmt;
        int64_t have = 0;
        int rc = st_begin(s);
        if (rc)
            return st_fail(s, rc, "begin migration");
        if (d->migration_lock[0])
            rc = d->exec(s->db, d->migration_lock);
        if (rc == 0)
            rc = d->exec(s->db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                "version INTEGER PRIMARY KEY, name TEXT NOT NULL)");
        if (rc == 0)
            rc = st_query(s, Q_MIG_VERSION, &stmt, "");
        if (rc == 0) {
            rc = d->step(stmt);
            if (rc == STORE_ROW) {
                have = d->col_int(stmt, 0);
                rc = 0;
            }
            d->reset(stmt);
        }
        if (rc == 0 && have < m->version) {
            rc = d->exec(s->db, m->sql);
            if (rc == 0)
                rc = st_exec(s, Q_MIG_INSERT, NULL, "it", (int64_t)m->version,
                             ims_str_cstr(m->name));
            if (rc == 0)
                LOG_N("store", "event=migrate backend=%s version=%d name=%s", d->name,
                      m->version, m->name);
        }
        if (rc == 0)
            rc = st_commit(s);
        if (rc) {
            st_rollback(s);
            char what[96];
            snprintf(what, sizeof(what), "migration %d (%s)", m->version, m->name);
            return st_fail(s, rc, what);
        }
    }
    return 0;
}

int ims_store_open(const char *url, struct ims_keyrepo *repo, struct ims_store **out)
{
    const struct store_driver *drv;
    const char *conninfo;
    char err[256] = "";
    if (!strncmp(url, "sqlite:", 7)) {
        drv = &store_sqlite_driver;
        conninfo = url + 7;
    } else if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
        drv = &store_pg_driver;
        conninfo = url;
    } else if (!strncmp(url, "pg:", 3)) {
        drv = &store_pg_driver;
        conninfo = url + 3;
    } else {
        /* The URL may hold a password: do not echo it. */
        LOG_E("store", "event=open_failed reason=\"unknown store URL scheme (sqlite:, pg:, "
                       "postgresql://)\"");
        return IMS_EINVAL;
    }
    struct ims_store *s = ims_calloc(1, sizeof(*s));
    if (!s)
        return IMS_ENOMEM;
    s->drv = drv;
    s->repo = repo;
    int rc = drv->open(conninfo, &s->db, err, sizeof(err));
    if (rc) {
        if (rc != IMS_ENOMEM)
            LOG_E("store", "event=open_failed backend=%s msg=\"%s\"", drv->name, err);
        ims_free(s);
        return rc;
    }
    rc = migrate(s);
    if (rc) {
        if (rc != IMS_ENOMEM)
            LOG_E("store", "event=open_failed backend=%s msg=\"%s\"", drv->name, s->errmsg);
        ims_store_close(s);
        return rc;
    }
    LOG_I("store", "event=open backend=%s", drv->name);
    *out = s;
    return 0;
}

void ims_store_close(struct ims_store *s)
{
    if (!s)
        return;
    s->drv->close(s->db);
    ims_free(s);
}

const char *ims_store_backend(const struct ims_store *s)
{
    return s->drv->name;
}

const char *ims_store_errmsg(const struct ims_store *s)
{
    return s->errmsg;
}

int ims_store_schema_version(struct ims_store *s, int *version)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    int rc = st_query(s, Q_MIG_VERSION, &stmt, "");
    if (rc == 0) {
        rc = s->drv->step(stmt);
        if (rc == STORE_ROW) {
            *version = (int)s->drv->col_int(stmt, 0);
            rc = 0;
        }
        s->drv->reset(stmt);
    }
    return rc ? st_fail(s, rc, "schema version") : 0;
}
