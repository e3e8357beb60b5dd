/* store_cx.c - the operations the Cx and Sh handlers need: identity
 * lookups, authentication data, SQN, registration state, profiles, Sh
 * repository data, S-CSCF capabilities. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/aka.h"
#include "store/store_cache.h"
#include "store/store_int.h"
#include "store/store_sqnblk.h"

#define BAD_ID(s, v) st_err((s), IMS_EINVAL, "invalid identity")

/* Cache keys (store_cache.h): a kind byte, then the identities, each
 * ended by a NUL (no identity holds one: st_valid_id). */
enum { KEY_ASSOC = 'A', KEY_AUTH = 'I', KEY_IMPU = 'R' };
#define KEY_MAX (1 + 2 * IMS_STORE_ID_MAX)

static size_t cache_key(char key[KEY_MAX], char kind, ims_str a, ims_str b)
{
    size_t n = 0;
    key[n++] = kind;
    memcpy(key + n, a.p, a.len);
    n += a.len;
    key[n++] = '\0';
    if (b.len) {
        memcpy(key + n, b.p, b.len);
        n += b.len;
        key[n++] = '\0';
    }
    return n;
}

int ims_store_assoc_check(struct ims_store *s, ims_str impi, ims_str impu, enum ims_assoc *out)
{
    struct store_stmt *stmt;
    char key[KEY_MAX];
    size_t klen = 0, vlen;
    uint64_t gen, epoch;
    unsigned char v;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || !st_valid_id(impu))
        return BAD_ID(s, impi);
    /* Only "OK" is kept: the other answers are what junk from a peer gets,
     * and would push real entries out. */
    bool tagged = st_cache_tag(s, &gen, &epoch);
    if (tagged) {
        klen = cache_key(key, KEY_ASSOC, impi, impu);
        if (store_cache_get(s->cache, gen, key, klen, &v, 1, &vlen)) {
            *out = IMS_ASSOC_OK;
            return 0;
        }
    }
    int rc = st_query(s, Q_ASSOC, &stmt, "tt", impi, impu);
    if (rc)
        return st_fail(s, rc, "association");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        if (s->drv->col_null(stmt, 0))
            *out = IMS_ASSOC_NO_IMPI;
        else if (s->drv->col_null(stmt, 1))
            *out = IMS_ASSOC_NO_IMPU;
        else if (!s->drv->col_int(stmt, 3))
            *out = IMS_ASSOC_MISMATCH;
        else
            *out = IMS_ASSOC_OK;
        rc = 0;
    } else if (rc == STORE_DONE) {
        rc = IMS_EBACKEND; /* the query always returns one row */
    }
    s->drv->reset(stmt);
    if (rc)
        return st_fail(s, rc, "association");
    if (tagged && *out == IMS_ASSOC_OK) {
        v = 1;
        store_cache_put(s->cache, gen, epoch, key, klen, &v, 1); /* IMS_ENOMEM: not kept */
    }
    return 0;
}

/* a and b: identities (st_valid_id) or empty; KEY_MAX holds any pair */
static bool memo_key(char key[KEY_MAX], size_t *klen, char kind, ims_str a, ims_str b)
{
    if (kind == KEY_ASSOC || kind == KEY_AUTH || kind == KEY_IMPU || (a.len && !st_valid_id(a)) ||
        (b.len && !st_valid_id(b)))
        return false;
    /* a NUL after an empty a too: ("", b) and (b, "") stay apart */
    size_t n = 0;
    key[n++] = kind;
    if (a.len)
        memcpy(key + n, a.p, a.len);
    n += a.len;
    key[n++] = '\0';
    if (b.len)
        memcpy(key + n, b.p, b.len);
    n += b.len;
    key[n++] = '\0';
    *klen = n;
    return true;
}

bool ims_store_memo_get(struct ims_store *s, char kind, ims_str a, ims_str b,
                        struct ims_buf *out, struct ims_store_memo *m)
{
    char key[KEY_MAX];
    size_t klen, vlen;
    *m = (struct ims_store_memo){ 0 };
    if (!memo_key(key, &klen, kind, a, b) || !st_cache_tag(s, &m->gen, &m->epoch))
        return false;
    m->usable = true;
    char val[IMS_STORE_MEMO_MAX];
    return store_cache_get(s->cache, m->gen, key, klen, val, sizeof(val), &vlen) &&
           ims_buf_add(out, val, vlen) == 0;
}

void ims_store_memo_put(struct ims_store *s, const struct ims_store_memo *m, char kind, ims_str a,
                        ims_str b, const void *val, size_t len)
{
    char key[KEY_MAX];
    size_t klen;
    if (m->usable && len <= IMS_STORE_MEMO_MAX && memo_key(key, &klen, kind, a, b))
        store_cache_put(s->cache, m->gen, m->epoch, key, klen, val, len); /* IMS_ENOMEM: not kept */
}

/* Decrypts one secret column that must decode to exactly want bytes
 * (want == 0: hex HA1 text, NUL-terminated into dst of cap bytes). */
static int secret(struct ims_store *s, ims_str impi, int which, ims_str ct, void *dst,
                  size_t cap, size_t want)
{
    size_t n = 0;
    int rc = st_decrypt(s, impi, st_secret_field[which], ct, dst, want ? want : cap - 1, &n);
    if (rc)
        return rc;
    if (want && n != want)
        return st_err(s, IMS_EBACKEND, "%s of %.*s has %zu bytes, not %zu",
                      st_secret_field[which], IMS_SF(impi), n, want);
    if (!want)
        ((char *)dst)[n] = '\0';
    return 0;
}

int ims_store_auth_get(struct ims_store *s, ims_str impi, struct ims_auth_data *out)
{
    return ims_store_auth_get_fields(s, impi, IMS_AUTH_F_ALL, out);
}

/* An IMPI row's authentication columns, as slices of the statement's
 * columns or of a cached copy (pack/unpack below). */
struct auth_row {
    int64_t id;
    ims_str identity, realm;
    unsigned schemes;
    uint16_t amf;
    uint64_t sqn;
    bool has[SEC__N];
    ims_str ct[SEC__N];
};

static void auth_row_read(struct ims_store *s, struct store_stmt *stmt, struct auth_row *r)
{
    const struct store_driver *d = s->drv;
    r->id = d->col_int(stmt, IMPI_COL_ID);
    r->identity = d->col_text(stmt, IMPI_COL_IDENTITY);
    r->realm = d->col_text(stmt, IMPI_COL_REALM);
    r->schemes = (unsigned)d->col_int(stmt, IMPI_COL_SCHEMES);
    r->amf = (uint16_t)d->col_int(stmt, IMPI_COL_AMF);
    r->sqn = (uint64_t)d->col_int(stmt, IMPI_COL_SQN);
    for (int i = 0; i < SEC__N; i++) {
        r->has[i] = !d->col_null(stmt, IMPI_COL_SECRET0 + i);
        r->ct[i] = r->has[i] ? d->col_text(stmt, IMPI_COL_SECRET0 + i) : IMS_STR_NULL;
    }
}

/* The cached form, without SQN (the Cx path writes it on every AKA MAR):
 * row id (8 bytes), schemes (4), AMF (2), then identity, realm and each
 * secret as a 2-byte length and its bytes (length 0xffff: NULL).
 * Ciphertexts only. */
#define AUTH_PACK_MAX 4096
#define AUTH_NULL 0xffffu

static size_t put_part(unsigned char *b, size_t n, ims_str v, bool null)
{
    if (n + 2 + v.len > AUTH_PACK_MAX || v.len >= AUTH_NULL)
        return 0;
    uint16_t len = null ? AUTH_NULL : (uint16_t)v.len;
    memcpy(b + n, &len, 2);
    if (!null && v.len)
        memcpy(b + n + 2, v.p, v.len);
    return n + 2 + (null ? 0 : v.len);
}

static size_t auth_row_pack(const struct auth_row *r, unsigned char b[AUTH_PACK_MAX])
{
    uint32_t schemes = r->schemes;
    memcpy(b, &r->id, 8);
    memcpy(b + 8, &schemes, 4);
    memcpy(b + 12, &r->amf, 2);
    size_t n = put_part(b, 14, r->identity, false);
    if (n)
        n = put_part(b, n, r->realm, false);
    for (int i = 0; n && i < SEC__N; i++)
        n = put_part(b, n, r->ct[i], !r->has[i]);
    return n; /* 0: too long to keep */
}

static bool get_part(const unsigned char *b, size_t len, size_t *n, ims_str *v, bool *has)
{
    uint16_t l;
    if (*n + 2 > len)
        return false;
    memcpy(&l, b + *n, 2);
    *n += 2;
    *has = l != AUTH_NULL;
    if (!*has) {
        *v = IMS_STR_NULL;
        return true;
    }
    if (*n + l > len)
        return false;
    *v = ims_str_make((const char *)b + *n, l);
    *n += l;
    return true;
}

static bool auth_row_unpack(const unsigned char *b, size_t len, struct auth_row *r)
{
    uint32_t schemes;
    bool has;
    size_t n = 14;
    if (len < n)
        return false;
    memcpy(&r->id, b, 8);
    memcpy(&schemes, b + 8, 4);
    memcpy(&r->amf, b + 12, 2);
    r->schemes = schemes;
    r->sqn = 0;
    if (!get_part(b, len, &n, &r->identity, &has) || !get_part(b, len, &n, &r->realm, &has))
        return false;
    for (int i = 0; i < SEC__N; i++)
        if (!get_part(b, len, &n, &r->ct[i], &r->has[i]))
            return false;
    return n == len;
}

/* The non-secret fields, then the secrets asked for, decrypted. */
static int auth_row_decode(struct ims_store *s, ims_str impi, const struct auth_row *r,
                           unsigned fields, struct ims_auth_data *out)
{
    ims_str_copy(r->identity, out->impi, sizeof(out->impi));
    ims_str_copy(r->realm, out->realm, sizeof(out->realm));
    out->schemes = r->schemes;
    out->amf[0] = (uint8_t)(r->amf >> 8);
    out->amf[1] = (uint8_t)r->amf;
    out->sqn = (fields & IMS_AUTH_F_NO_SQN) ? 0 : r->sqn;
    int rc = 0;
    if ((fields & IMS_AUTH_F_AKA) && r->has[SEC_K] && r->has[SEC_OPC]) {
        rc = secret(s, impi, SEC_K, r->ct[SEC_K], out->k, sizeof(out->k), 16);
        if (rc == 0)
            rc = secret(s, impi, SEC_OPC, r->ct[SEC_OPC], out->opc, sizeof(out->opc), 16);
        out->has_aka = rc == 0;
    }
    static const int ha1_col[IMS_DIGEST_NALG] = { SEC_HA1_MD5, SEC_HA1_SHA256,
                                                  SEC_HA1_SHA512_256 };
    for (int a = 0; rc == 0 && a < IMS_DIGEST_NALG; a++) {
        int sec = ha1_col[a];
        if (!(fields & IMS_AUTH_F_HA1(a)) || !r->has[sec])
            continue;
        rc = secret(s, impi, sec, r->ct[sec], out->ha1[a], sizeof(out->ha1[a]), 0);
        out->has_ha1[a] = rc == 0;
    }
    if (rc)
        ims_auth_data_clear(out);
    return rc;
}

/* ---- IMPU rows ----
 *
 * Every Cx request of a registration reads its IMPU (UAR, MAR, SAR): a
 * search of the identity index and three row lookups (IMPU, subscription,
 * service profile).  What of that row is provisioned (ids, names, set,
 * type, barring) moves the cache generation when it changes (migrations
 * 005 and 007) and is kept in the identity cache; what the Cx path writes
 * (registration state, the S-CSCF name) is read each time, by row id. */
#define IMPU_PACK_MAX AUTH_PACK_MAX /* put_part's bound */

struct impu_key_row {
    int64_t id, sub_id;
    uint32_t irs;
    uint8_t type, barred;
    ims_str identity, subscription, profile;
};

static size_t impu_row_pack(const struct impu_key_row *r, unsigned char b[IMPU_PACK_MAX])
{
    memcpy(b, &r->id, 8);
    memcpy(b + 8, &r->sub_id, 8);
    memcpy(b + 16, &r->irs, 4);
    b[20] = r->type;
    b[21] = r->barred;
    size_t n = put_part(b, 22, r->identity, false);
    if (n)
        n = put_part(b, n, r->subscription, false);
    if (n)
        n = put_part(b, n, r->profile, false);
    return n; /* 0: too long to keep */
}

static bool impu_row_unpack(const unsigned char *b, size_t len, struct impu_key_row *r)
{
    bool has;
    size_t n = 22;
    if (len < n)
        return false;
    memcpy(&r->id, b, 8);
    memcpy(&r->sub_id, b + 8, 8);
    memcpy(&r->irs, b + 16, 4);
    r->type = b[20];
    r->barred = b[21];
    return get_part(b, len, &n, &r->identity, &has) &&
           get_part(b, len, &n, &r->subscription, &has) &&
           get_part(b, len, &n, &r->profile, &has) && n == len;
}

/* The cached part of out, and its state read by row id.  false: the row
 * is not there (cannot happen under the entry's generation) or the query
 * failed; the caller then reads the whole row. */
static bool impu_from_cache(struct ims_store *s, const struct impu_key_row *k,
                            struct ims_impu_rec *out)
{
    struct store_stmt *stmt;
    if (st_query(s, Q_IMPU_STATE, &stmt, "ii", k->id, k->sub_id) != 0)
        return false;
    bool ok = s->drv->step(stmt) == STORE_ROW;
    if (ok) {
        memset(out, 0, sizeof(*out));
        ims_str_copy(k->identity, out->identity, sizeof(out->identity));
        ims_str_copy(k->subscription, out->subscription, sizeof(out->subscription));
        ims_str_copy(k->profile, out->profile, sizeof(out->profile));
        out->irs = k->irs;
        out->type = (enum ims_identity_type)k->type;
        out->barred = k->barred != 0;
        out->reg_state = (enum ims_reg_state)s->drv->col_int(stmt, 0);
        ST_COPY(s, stmt, 1, out->scscf_name);
    }
    s->drv->reset(stmt);
    s->errmsg[0] = '\0';
    return ok;
}

/* impu's row in the cache under gen; its slices point into packed */
static bool impu_lookup(struct ims_store *s, uint64_t gen, ims_str impu, struct impu_key_row *k,
                        unsigned char packed[IMPU_PACK_MAX])
{
    char key[KEY_MAX];
    size_t plen;
    return store_cache_get(s->cache, gen, key, cache_key(key, KEY_IMPU, impu, IMS_STR_NULL),
                           packed, IMPU_PACK_MAX, &plen) &&
           impu_row_unpack(packed, plen, k);
}

/* The cached row of impu, if the cache holds one under the current
 * generation. */
static bool cached_impu(struct ims_store *s, ims_str impu, struct impu_key_row *k,
                        unsigned char packed[IMPU_PACK_MAX])
{
    uint64_t gen, epoch;
    return st_valid_id(impu) && st_cache_tag(s, &gen, &epoch) &&
           impu_lookup(s, gen, impu, k, packed);
}

/* cached_impu for a write to key its UPDATE by: only when writers are
 * serialised (store_driver.serial_writes), where the row, read under the
 * generation read inside this write transaction, stays current until
 * COMMIT; the caller has begun the transaction. */
static bool cached_impu_to_write(struct ims_store *s, ims_str impu, struct impu_key_row *k,
                                 unsigned char packed[IMPU_PACK_MAX])
{
    return s->drv->serial_writes && cached_impu(s, impu, k, packed);
}

int ims_store_impu_get(struct ims_store *s, ims_str impu, struct ims_impu_rec *out)
{
    struct store_stmt *stmt;
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    uint64_t gen, epoch;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    /* the generation before the row: what the miss reads is kept under it */
    bool tagged = st_cache_tag(s, &gen, &epoch);
    if (tagged && impu_lookup(s, gen, impu, &k, packed) && impu_from_cache(s, &k, out))
        return 0;
    int rc = st_query(s, Q_IMPU_GET, &stmt, "t", impu);
    if (rc)
        return st_fail(s, rc, "impu get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        st_impu_row(s, stmt, out);
        if (tagged) {
            k = (struct impu_key_row){
                .id = s->drv->col_int(stmt, IMPU_COL_ID),
                .sub_id = s->drv->col_int(stmt, IMPU_COL_SUB_ID),
                .irs = out->irs,
                .type = (uint8_t)out->type,
                .barred = out->barred,
                .identity = ims_str_cstr(out->identity),
                .subscription = ims_str_cstr(out->subscription),
                .profile = ims_str_cstr(out->profile),
            };
            char key[KEY_MAX];
            size_t plen = impu_row_pack(&k, packed);
            if (plen) /* IMS_ENOMEM: not kept */
                store_cache_put(s->cache, gen, epoch, key,
                                cache_key(key, KEY_IMPU, impu, IMS_STR_NULL), packed, plen);
        }
        rc = 0;
    } else if (rc == STORE_DONE) {
        rc = st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    }
    s->drv->reset(stmt);
    return rc < 0 && rc != IMS_ENOENT ? st_fail(s, rc, "impu get") : rc;
}

/* Remembers the row id of what a tagged auth read returned. */
static void remember_impi(struct ims_store *s, ims_str impi, int64_t id, uint64_t gen,
                          uint64_t epoch)
{
    ims_str_copy(impi, s->last_impi.impi, sizeof(s->last_impi.impi));
    s->last_impi.id = id;
    s->last_impi.gen = gen;
    s->last_impi.epoch = epoch;
}

/* Finds the IMPI's authentication row, in the identity cache when
 * may_cache (the caller needs no SQN) and it is there, else in the
 * database, and hands it to fn while its slices are valid.  A row read
 * from the database is kept in the cache only when fn accepted it (0): a
 * row whose key is gone fails each time. */
typedef int (*auth_row_fn)(struct ims_store *s, ims_str impi, const struct auth_row *r,
                           void *arg);

static int with_auth_row(struct ims_store *s, ims_str impi, bool may_cache, auth_row_fn fn,
                         void *arg)
{
    struct store_stmt *stmt;
    struct auth_row row;
    unsigned char packed[AUTH_PACK_MAX];
    char key[KEY_MAX];
    size_t klen = 0, plen;
    uint64_t gen, epoch;
    if (!st_valid_id(impi))
        return BAD_ID(s, impi);
    bool tagged = may_cache && st_cache_tag(s, &gen, &epoch);
    if (tagged) {
        klen = cache_key(key, KEY_AUTH, impi, IMS_STR_NULL);
        if (store_cache_get(s->cache, gen, key, klen, packed, sizeof(packed), &plen) &&
            auth_row_unpack(packed, plen, &row)) {
            remember_impi(s, impi, row.id, gen, epoch);
            return fn(s, impi, &row, arg);
        }
    }
    int rc = st_query(s, Q_IMPI_GET, &stmt, "t", impi);
    if (rc)
        return st_fail(s, rc, "auth get");
    rc = s->drv->step(stmt);
    if (rc == STORE_DONE) {
        s->drv->reset(stmt);
        return st_err(s, IMS_ENOENT, "no IMPI %.*s", IMS_SF(impi));
    }
    if (rc != STORE_ROW) {
        s->drv->reset(stmt);
        return st_fail(s, rc, "auth get");
    }
    auth_row_read(s, stmt, &row);
    rc = fn(s, impi, &row, arg);
    if (rc == 0 && tagged && (plen = auth_row_pack(&row, packed)) != 0) {
        store_cache_put(s->cache, gen, epoch, key, klen, packed, plen);
        remember_impi(s, impi, row.id, gen, epoch);
    }
    s->drv->reset(stmt);
    return rc;
}

/* ---- cache preload ---- */

/* One page of IMPI rows into the cache, until *n reaches cap: *last_id
 * moves past them; *done when the table ended.  Each entry as
 * with_auth_row would keep it. */
static int preload_impis(struct ims_store *s, uint64_t gen, uint64_t epoch, int64_t *last_id,
                         size_t cap, size_t *n, bool *done)
{
    struct store_stmt *stmt;
    unsigned char packed[AUTH_PACK_MAX];
    char key[KEY_MAX];
    size_t rows = 0;
    int rc = st_query(s, Q_IMPI_BATCH, &stmt, "i", *last_id);
    while (rc == 0 && *n < cap && (rc = s->drv->step(stmt)) == STORE_ROW) {
        struct auth_row row;
        rc = 0;
        auth_row_read(s, stmt, &row);
        *last_id = row.id;
        rows++;
        if (!st_valid_id(row.identity)) /* no lookup would ask for it */
            continue;
        size_t plen = auth_row_pack(&row, packed);
        size_t klen = cache_key(key, KEY_AUTH, row.identity, IMS_STR_NULL);
        if (plen && store_cache_put(s->cache, gen, epoch, key, klen, packed, plen) == 0)
            (*n)++;
    }
    s->drv->reset(stmt);
    *done = rows == 0;
    return rc == STORE_DONE ? 0 : rc;
}

/* One page of OK associations into the cache (as ims_store_assoc_check
 * keeps them). */
static int preload_assocs(struct ims_store *s, uint64_t gen, uint64_t epoch, int64_t last[2],
                          size_t cap, size_t *n, bool *done)
{
    struct store_stmt *stmt;
    char key[KEY_MAX];
    const unsigned char one = 1;
    size_t rows = 0;
    int rc = st_query(s, Q_ASSOC_BATCH, &stmt, "ii", last[0], last[1]);
    while (rc == 0 && *n < cap && (rc = s->drv->step(stmt)) == STORE_ROW) {
        rc = 0;
        last[0] = s->drv->col_int(stmt, 0);
        last[1] = s->drv->col_int(stmt, 1);
        rows++;
        ims_str impi = s->drv->col_text(stmt, 2), impu = s->drv->col_text(stmt, 3);
        if (!st_valid_id(impi) || !st_valid_id(impu))
            continue;
        size_t klen = cache_key(key, KEY_ASSOC, impi, impu);
        if (store_cache_put(s->cache, gen, epoch, key, klen, &one, 1) == 0)
            (*n)++;
    }
    s->drv->reset(stmt);
    *done = rows == 0;
    return rc == STORE_DONE ? 0 : rc;
}

int st_cache_preload(struct ims_store *s, size_t max, size_t *loaded)
{
    uint64_t gen, epoch;
    int64_t last_impi = 0, last_link[2] = { 0, 0 };
    bool impis_done = false, assocs_done = false;
    int rc = 0;
    *loaded = 0;
    /* rule 1 (store_cache.h): the tag before the rows; a change meanwhile
     * moves gen and leaves these entries unused, as any other */
    if (!st_cache_tag(s, &gen, &epoch))
        return 0;
    /* half for each kind: an IMPI's first MAR needs both */
    size_t n_impi = 0, n_assoc = 0;
    while (rc == 0 && !impis_done && n_impi < max / 2)
        rc = preload_impis(s, gen, epoch, &last_impi, max / 2, &n_impi, &impis_done);
    while (rc == 0 && !assocs_done && n_assoc < max - max / 2)
        rc = preload_assocs(s, gen, epoch, last_link, max - max / 2, &n_assoc, &assocs_done);
    *loaded = n_impi + n_assoc;
    return rc ? st_fail(s, rc, "cache preload") : 0;
}

struct decode_arg {
    unsigned fields;
    struct ims_auth_data *out;
};

static int decode_cb(struct ims_store *s, ims_str impi, const struct auth_row *r, void *arg)
{
    struct decode_arg *a = arg;
    return auth_row_decode(s, impi, r, a->fields, a->out);
}

int ims_store_auth_get_fields(struct ims_store *s, ims_str impi, unsigned fields,
                              struct ims_auth_data *out)
{
    struct decode_arg a = { fields, out };
    s->errmsg[0] = '\0';
    memset(out, 0, sizeof(*out));
    /* a caller that needs SQN reads the row (the cache never has it) */
    return with_auth_row(s, impi, (fields & IMS_AUTH_F_NO_SQN) != 0, decode_cb, &a);
}

static int seal_cb(struct ims_store *s, ims_str impi, const struct auth_row *r, void *arg)
{
    struct ims_aka_sealed *out = arg;
    ims_str_copy(r->identity, out->impi, sizeof(out->impi));
    out->schemes = r->schemes;
    out->amf[0] = (uint8_t)(r->amf >> 8);
    out->amf[1] = (uint8_t)r->amf;
    out->repo = s->repo;
    out->has_aka = r->has[SEC_K] && r->has[SEC_OPC];
    if (!out->has_aka)
        return 0;
    if (r->ct[SEC_K].len >= sizeof(out->k) || r->ct[SEC_OPC].len >= sizeof(out->opc))
        return st_err(s, IMS_EBACKEND, "AKA secrets of %.*s are too long to be ours",
                      IMS_SF(impi));
    ims_str_copy(r->ct[SEC_K], out->k, sizeof(out->k));
    ims_str_copy(r->ct[SEC_OPC], out->opc, sizeof(out->opc));
    return 0;
}

int ims_store_aka_get_sealed(struct ims_store *s, ims_str impi, struct ims_aka_sealed *out)
{
    s->errmsg[0] = '\0';
    memset(out, 0, sizeof(*out));
    int rc = with_auth_row(s, impi, true, seal_cb, out);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* One 16-byte secret of in. */
static int unseal_one(const struct ims_aka_sealed *in, int which, const char *ct, uint8_t dst[16])
{
    size_t n = 0;
    int rc = st_decrypt_with(in->repo, ims_str_cstr(in->impi), st_secret_field[which],
                             ims_str_cstr(ct), dst, 16, &n);
    if (rc == 0 && n != 16) {
        LOG_E("store", "event=secret_bad_length impi=%s field=%s len=%zu", in->impi,
              st_secret_field[which], n);
        rc = IMS_EBACKEND;
    }
    return rc == 0 || rc == IMS_ENOMEM ? rc : IMS_EBACKEND;
}

int ims_store_aka_unseal(const struct ims_aka_sealed *in, uint8_t k[16], uint8_t opc[16])
{
    if (!in->has_aka)
        return IMS_EINVAL;
    int rc = unseal_one(in, SEC_K, in->k, k);
    if (rc == 0)
        rc = unseal_one(in, SEC_OPC, in->opc, opc);
    if (rc) {
        ims_wipe(k, 16);
        ims_wipe(opc, 16);
    }
    return rc;
}

/* Rule 2 of store_int.h: a row last written under an earlier generation
 * moves SEQ_HE ahead by SQN_GEN_SKIP per generation since (IND kept). */
static int sqn_skip(uint64_t cur, uint64_t gens, uint64_t *out)
{
    uint64_t seq = ims_aka_sqn_seq(cur);
    if (gens > IMS_AKA_SEQ_MAX / SQN_GEN_SKIP || seq > IMS_AKA_SEQ_MAX - gens * SQN_GEN_SKIP)
        return IMS_ELIMIT; /* Annex C.1.2: SEQ must not wrap */
    *out = ims_aka_sqn_make(seq + gens * SQN_GEN_SKIP, ims_aka_sqn_ind(cur));
    return 0;
}

/* The IMPI's row id from the last auth read or the identity cache, or 0. */
static int64_t cached_impi_id(struct ims_store *s, ims_str impi)
{
    unsigned char packed[AUTH_PACK_MAX];
    char key[KEY_MAX];
    struct auth_row row;
    size_t plen;
    uint64_t gen, epoch;
    if (!st_cache_tag(s, &gen, &epoch))
        return 0;
    if (s->last_impi.id && s->last_impi.gen == gen &&
        s->last_impi.epoch == store_cache_epoch(s->cache) &&
        ims_str_eq(impi, ims_str_cstr(s->last_impi.impi)))
        return s->last_impi.id;
    size_t klen = cache_key(key, KEY_AUTH, impi, IMS_STR_NULL);
    if (!store_cache_get(s->cache, gen, key, klen, packed, sizeof(packed), &plen) ||
        !auth_row_unpack(packed, plen, &row))
        return 0;
    return row.id;
}

/* The row's end of a block reserved past next: block steps further (as
 * many vectors more would take it), or next where SEQ has no room. */
static uint64_t block_end(uint64_t next, unsigned steps)
{
    uint64_t end = next;
    for (unsigned i = 0; i < steps; i++)
        if (ims_aka_sqn_next(end, &end) != 0)
            return next;
    return end;
}

/* The write path of ims_store_sqn_update and ims_store_sqn_take: stores
 * fn's value, or with reserve the end of a block past it (store_sqnblk.h),
 * and hands out fn's value. */
static int sqn_write(struct ims_store *s, ims_str impi, ims_store_sqn_fn fn, void *ctx,
                     bool reserve, uint64_t *sqn_out)
{
    struct store_stmt *stmt;
    uint64_t cur = 0, next = 0, gen = 0;
    /* by row id when cached: only the narrow impi_sqn table is touched */
    int64_t id = cached_impi_id(s, impi);
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "sqn begin");
    rc = id ? st_query(s, Q_IMPI_SQN_LOCK_ID, &stmt, "i", id)
            : st_query(s, Q_IMPI_SQN_LOCK, &stmt, "t", impi);
    if (rc)
        goto fail;
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        cur = (uint64_t)s->drv->col_int(stmt, 0);
        gen = (uint64_t)s->drv->col_int(stmt, 1);
        id = s->drv->col_int(stmt, 2);
    }
    s->drv->reset(stmt);
    if (rc == STORE_DONE) {
        st_rollback(s);
        return st_err(s, IMS_ENOENT, "no IMPI %.*s", IMS_SF(impi));
    }
    if (rc != STORE_ROW)
        goto fail;
    /* A row a later process wrote (two on one file): this one's lazy
     * accounting does not cover that process's, so flush. */
    bool may_lazy = s->sqn_gen && gen <= s->sqn_gen;
    if (s->sqn_gen > gen) {
        rc = sqn_skip(cur, s->sqn_gen - gen, &cur);
        if (rc) {
            st_rollback(s);
            return st_err(s, rc, "SQN of %.*s exhausted", IMS_SF(impi));
        }
        gen = s->sqn_gen;
    }
    rc = fn(cur, &next, ctx);
    if (rc) {
        st_rollback(s);
        return st_err(s, rc, "SQN update of %.*s refused (%s)", IMS_SF(impi), ims_strerror(rc));
    }
    if (next > IMS_AKA_SQN_MAX) {
        st_rollback(s);
        return st_err(s, IMS_EINVAL, "SQN wider than 48 bits");
    }
    /* a block only where SEQ moves ahead (not a re-synchronisation) */
    uint64_t row = reserve && ims_aka_sqn_seq(next) > ims_aka_sqn_seq(cur)
                       ? block_end(next, SQN_BLOCK_STEPS)
                       : next;
    /* Rule 3: a write that moves SEQ back (re-synchronisation) is flushed. */
    uint64_t seq0 = ims_aka_sqn_seq(cur), seq1 = ims_aka_sqn_seq(row);
    bool lazy = may_lazy && seq1 >= seq0 && st_sqn_lazy(s, seq1 - seq0);
    if (lazy)
        st_lazy(s, true);
    rc = st_exec(s, Q_IMPI_SQN_SET, NULL, "iii", (int64_t)row, (int64_t)gen, id);
    if (lazy)
        st_lazy(s, false);
    if (rc == 0)
        rc = st_commit(s);
    if (rc)
        goto fail;
    /* After the commit (a savepoint's, in a batch): a block whose row the
     * batch's rollback undoes no longer matches the row, so is not used. */
    if (s->sqnblk && row != next)
        store_sqnblk_put(s->sqnblk, id, row, gen, next);
    else if (s->sqnblk)
        store_sqnblk_drop(s->sqnblk, id);
    if (sqn_out)
        *sqn_out = next;
    return 0;
fail:
    st_rollback(s);
    return st_fail(s, rc, "sqn update");
}

int ims_store_sqn_update(struct ims_store *s, ims_str impi, ims_store_sqn_fn fn, void *ctx,
                         uint64_t *sqn_out)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi))
        return BAD_ID(s, impi);
    return sqn_write(s, impi, fn, ctx, false, sqn_out);
}

/* The row as this connection sees it now (its read or write transaction):
 * a block is used only while the row still holds what this process wrote. */
static bool sqn_row(struct ims_store *s, int64_t id, uint64_t *sqn, uint64_t *gen)
{
    struct store_stmt *stmt;
    if (st_query(s, Q_IMPI_SQN_LOCK_ID, &stmt, "i", id) != 0)
        return false;
    bool ok = s->drv->step(stmt) == STORE_ROW;
    if (ok) {
        *sqn = (uint64_t)s->drv->col_int(stmt, 0);
        *gen = (uint64_t)s->drv->col_int(stmt, 1);
    }
    s->drv->reset(stmt);
    return ok;
}

int ims_store_sqn_take(struct ims_store *s, ims_str impi, ims_store_sqn_fn fn, void *ctx,
                       uint64_t *sqn_out)
{
    uint64_t row, gen, v;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi))
        return BAD_ID(s, impi);
    /* sqn_gen: blocks rely on rule 3 and the generations' skip */
    bool blocks = s->sqnblk && s->sqn_gen;
    int64_t id = blocks ? cached_impi_id(s, impi) : 0;
    if (id && sqn_row(s, id, &row, &gen) &&
        store_sqnblk_take(s->sqnblk, id, row, gen, fn, ctx, &v)) {
        if (sqn_out)
            *sqn_out = v;
        return 0;
    }
    return sqn_write(s, impi, fn, ctx, blocks, sqn_out);
}

int st_sqn_generation_start(struct ims_store *s, uint64_t *gen)
{
    struct store_stmt *stmt;
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "sqn generation begin");
    rc = st_query(s, Q_SQN_GEN_BUMP, &stmt, "");
    if (rc == 0) {
        rc = s->drv->step(stmt);
        if (rc == STORE_ROW)
            *gen = (uint64_t)s->drv->col_int(stmt, 0);
        s->drv->reset(stmt);
        rc = rc == STORE_ROW ? st_commit(s) : rc == STORE_DONE ? IMS_EBACKEND : rc;
    }
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "sqn generation");
    }
    return 0;
}

int ims_store_reg_set(struct ims_store *s, ims_str impu, enum ims_reg_state state,
                      enum ims_scscf_op op, ims_str scscf, size_t *changed)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    if ((unsigned)state > IMS_REG_UNREGISTERED || (unsigned)op > IMS_SCSCF_CLEAR ||
        (op == IMS_SCSCF_SET && !st_valid_id(scscf)))
        return st_err(s, IMS_EINVAL, "invalid registration update");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "reg begin");
    /* a cached row names the set and subscription by key: the IMPU exists */
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    bool cached = cached_impu_to_write(s, impu, &k, packed);
    rc = cached ? st_exec(s, Q_IMPU_REG_SET_ID, &n, "iii", (int64_t)state, k.sub_id,
                          (int64_t)k.irs)
                : st_exec(s, Q_IMPU_REG_SET, &n, "it", (int64_t)state, impu);
    if (rc == 0 && n == 0 && !cached) { /* every row in that state already, or no such IMPU */
        struct store_stmt *stmt;
        rc = st_query(s, Q_IMPU_EXISTS, &stmt, "t", impu);
        if (rc == 0) {
            rc = s->drv->step(stmt);
            s->drv->reset(stmt);
            rc = rc == STORE_ROW ? 0 : rc == STORE_DONE ? IMS_ENOENT : rc;
        }
        if (rc == IMS_ENOENT) {
            st_rollback(s);
            return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
        }
    }
    ims_str name = op == IMS_SCSCF_SET ? scscf : IMS_STR_NULL;
    if (rc == 0 && op != IMS_SCSCF_KEEP)
        rc = cached ? st_exec(s, Q_SUB_CHANGE_SCSCF_ID, NULL, "oi", name, k.sub_id)
                    : st_exec(s, Q_SUB_CHANGE_SCSCF, NULL, "ot", name, impu);
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "registration update");
    }
    if (changed)
        *changed = (size_t)n;
    return 0;
}

int ims_store_scscf_name_set_lazy(struct ims_store *s, ims_str impu, ims_str scscf)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu) || !st_valid_id(scscf))
        return BAD_ID(s, impu);
    st_lazy(s, true);
    int rc = st_begin(s);
    if (rc) { /* nothing opened: nothing to roll back */
        st_lazy(s, false);
        return st_fail(s, rc, "server name begin");
    }
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    rc = cached_impu_to_write(s, impu, &k, packed)
             ? st_exec(s, Q_SUB_SET_SCSCF_ID, &n, "oi", scscf, k.sub_id)
             : st_exec(s, Q_SUB_SET_SCSCF, &n, "ot", scscf, impu);
    if (rc == 0)
        rc = n ? st_commit(s) : IMS_ENOENT;
    if (rc)
        st_rollback(s);
    st_lazy(s, false);
    if (rc == IMS_ENOENT)
        return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    return rc ? st_fail(s, rc, "server name update") : 0;
}

int ims_store_profile_of_impu(struct ims_store *s, ims_str impu, char *name, struct ims_buf *xml)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    int rc = st_query(s, Q_PROFILE_OF_IMPU, &stmt, "t", impu);
    if (rc)
        return st_fail(s, rc, "profile of impu");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        st_col_copy(s, stmt, 0, name, IMS_STORE_NAME_MAX);
        ims_str x = s->drv->col_text(stmt, 1);
        rc = x.len ? ims_buf_add_str(xml, x) : 0;
        if (rc)
            st_err(s, rc, "profile XML does not fit the buffer");
    } else if (rc == STORE_DONE) {
        rc = st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    } else {
        rc = st_fail(s, rc, "profile of impu");
    }
    s->drv->reset(stmt);
    return rc;
}

/* The orders the lists are returned in (st_keep_sorted). */
static int by_identity(const void *a, const void *b)
{
    return strcmp(((const struct ims_impu_rec *)a)->identity,
                  ((const struct ims_impu_rec *)b)->identity);
}

static int by_irs_identity(const void *a, const void *b)
{
    const struct ims_impu_rec *x = a, *y = b;
    return x->irs != y->irs ? (x->irs < y->irs ? -1 : 1) : strcmp(x->identity, y->identity);
}

/* Runs an IMPU list query, prepared and bound: an IRS by identity, an
 * IMPI's by IRS then identity, the first cap kept; *n gets them all. */
static int impu_rows(struct ims_store *s, struct store_stmt *stmt, bool by_set,
                     struct ims_impu_rec *arr, size_t cap, size_t *n)
{
    struct ims_impu_rec row;
    size_t count = 0, kept = 0;
    int (*cmp)(const void *, const void *) = by_set ? by_identity : by_irs_identity;
    int rc;
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        st_impu_row(s, stmt, &row);
        st_keep_sorted(arr, &kept, cap, sizeof(row), &row, cmp);
        count++;
    }
    s->drv->reset(stmt);
    if (rc != STORE_DONE)
        return st_fail(s, rc, "impu list");
    *n = count;
    return count > cap ? st_err(s, IMS_ELIMIT, "%zu IMPUs, room for %zu", count, cap) : 0;
}

static int impu_list(struct ims_store *s, enum store_q q, ims_str key, struct ims_impu_rec *arr,
                     size_t cap, size_t *n)
{
    struct store_stmt *stmt;
    int rc = st_query(s, q, &stmt, "t", key);
    if (rc)
        return st_fail(s, rc, "impu list");
    return impu_rows(s, stmt, q == Q_IMPU_LIST_IRS, arr, cap, n);
}

/* 0 if the IMPI exists, IMS_ENOENT if not. */
static int impi_exists(struct ims_store *s, ims_str impi)
{
    struct ims_impi_rec rec;
    return ims_store_impi_get(s, impi, &rec);
}

int ims_store_impus_of_impi(struct ims_store *s, ims_str impi, struct ims_impu_rec *arr,
                            size_t cap, size_t *n)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi))
        return BAD_ID(s, impi);
    int rc = impu_list(s, Q_IMPU_LIST_IMPI, impi, arr, cap, n);
    if (rc == 0 && *n == 0)
        rc = impi_exists(s, impi);
    return rc;
}

int ims_store_impus_of_irs(struct ims_store *s, ims_str impu, struct ims_impu_rec *arr,
                           size_t cap, size_t *n)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    struct store_stmt *stmt;
    int rc;
    if (cached_impu(s, impu, &k, packed)) {
        rc = st_query(s, Q_IMPU_LIST_SET, &stmt, "ii", k.sub_id, (int64_t)k.irs);
        rc = rc ? st_fail(s, rc, "impu list") : impu_rows(s, stmt, true, arr, cap, n);
    } else {
        rc = impu_list(s, Q_IMPU_LIST_IRS, impu, arr, cap, n);
    }
    if (rc == 0 && *n == 0) /* an IMPU is always in its own set */
        rc = st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    return rc;
}

int ims_store_sub_in_use(struct ims_store *s, ims_str impu, bool *any)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    *any = false;
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    int rc = cached_impu(s, impu, &k, packed)
                 ? st_query(s, Q_SUB_IN_USE_ID, &stmt, "ii", k.sub_id,
                            (int64_t)IMS_REG_NOT_REGISTERED)
                 : st_query(s, Q_SUB_IN_USE, &stmt, "ti", impu, (int64_t)IMS_REG_NOT_REGISTERED);
    if (rc)
        return st_fail(s, rc, "subscription in use");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        *any = s->drv->col_int(stmt, 0) != 0;
        rc = 0;
    } else if (rc == STORE_DONE) {
        rc = IMS_EBACKEND; /* the query always returns one row */
    }
    s->drv->reset(stmt);
    return rc ? st_fail(s, rc, "subscription in use") : 0;
}

static int by_impi(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Runs a query of IMPI identities bound to key, the first cap in byte
 * order into arr; *count gets them all. */
static int impi_ids(struct ims_store *s, enum store_q q, ims_str key, const char *what,
                    char (*arr)[IMS_STORE_ID_MAX], size_t cap, size_t *count)
{
    struct store_stmt *stmt;
    char id[IMS_STORE_ID_MAX];
    size_t k = 0, kept = 0;
    int rc = st_query(s, q, &stmt, "t", key);
    if (rc)
        return st_fail(s, rc, what);
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        ST_COPY(s, stmt, 0, id);
        st_keep_sorted(arr, &kept, cap, sizeof(id), id, by_impi);
        k++;
    }
    s->drv->reset(stmt);
    *count = k;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, what);
}

int ims_store_impis_of_sub(struct ims_store *s, ims_str sub, char (*arr)[IMS_STORE_ID_MAX],
                           size_t cap, size_t *n)
{
    s->errmsg[0] = '\0';
    if (!st_valid_name(sub))
        return st_err(s, IMS_EINVAL, "invalid name");
    int rc = impi_ids(s, Q_IMPIS_OF_SUB, sub, "impis of subscription", arr, cap, n);
    if (rc)
        return rc;
    return *n > cap ? st_err(s, IMS_ELIMIT, "%zu IMPIs, room for %zu", *n, cap) : 0;
}

int ims_store_impis_of_impu(struct ims_store *s, ims_str impu, char (*arr)[IMS_STORE_ID_MAX],
                            size_t cap, size_t *n)
{
    struct ims_impu_rec rec;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    int rc = impi_ids(s, Q_IMPIS_OF_IMPU, impu, "impis of impu", arr, cap, n);
    if (rc)
        return rc;
    if (*n == 0)
        return ims_store_impu_get(s, impu, &rec);
    return *n > cap ? st_err(s, IMS_ELIMIT, "%zu IMPIs, room for %zu", *n, cap) : 0;
}

static int sub_of_impu(struct ims_store *s, ims_str impu, bool caps, struct ims_sub_rec *out)
{
    struct store_stmt *stmt;
    int64_t id = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return BAD_ID(s, impu);
    struct impu_key_row k;
    unsigned char packed[IMPU_PACK_MAX];
    int rc = cached_impu(s, impu, &k, packed) ? st_query(s, Q_SUB_OF_IMPU_ID, &stmt, "i", k.sub_id)
                                              : st_query(s, Q_SUB_OF_IMPU, &stmt, "t", impu);
    if (rc)
        return st_fail(s, rc, "subscription of impu");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW)
        id = st_sub_row(s, stmt, out);
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    if (rc != STORE_ROW)
        return st_fail(s, rc, "subscription of impu");
    if (!caps) /* st_sub_row left the lists empty */
        return 0;
    rc = st_sub_caps(s, id, out);
    return rc ? st_fail(s, rc, "capabilities") : 0;
}

int ims_store_sub_of_impu(struct ims_store *s, ims_str impu, struct ims_sub_rec *out)
{
    return sub_of_impu(s, impu, true, out);
}

int ims_store_sub_of_impu_nocaps(struct ims_store *s, ims_str impu, struct ims_sub_rec *out)
{
    return sub_of_impu(s, impu, false, out);
}

/* ---- Sh ---- */

int ims_store_sh_get(struct ims_store *s, ims_str impu, ims_str si, struct ims_buf *out,
                     unsigned *seq)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu) || !st_valid_id(si))
        return BAD_ID(s, impu);
    int rc = st_query(s, Q_SH_GET, &stmt, "tt", impu, si);
    if (rc)
        return st_fail(s, rc, "sh get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        *seq = (unsigned)s->drv->col_int(stmt, 0);
        rc = ims_buf_add_str(out, s->drv->col_text(stmt, 1));
        if (rc)
            st_err(s, rc, "Sh data does not fit the buffer");
    } else if (rc == STORE_DONE) {
        rc = st_err(s, IMS_ENOENT, "no Sh data %.*s for %.*s", IMS_SF(si), IMS_SF(impu));
    } else {
        rc = st_fail(s, rc, "sh get");
    }
    s->drv->reset(stmt);
    return rc;
}

int ims_store_sh_put(struct ims_store *s, ims_str impu, ims_str si, unsigned seq, ims_str data,
                     enum ims_sh_result *res)
{
    struct store_stmt *stmt;
    struct ims_impu_rec rec;
    bool exists = false;
    unsigned cur = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu) || !st_valid_id(si))
        return BAD_ID(s, impu);
    if (seq > 65535 || !st_valid_text(data, IMS_STORE_SH_MAX))
        return st_err(s, IMS_EINVAL, "invalid Sh data or sequence number");
    *res = IMS_SH_OK;
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "sh begin");
    rc = st_query(s, Q_SH_LOCK, &stmt, "tt", impu, si);
    if (rc)
        goto fail;
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        exists = true;
        cur = (unsigned)s->drv->col_int(stmt, 0);
        rc = 0;
    }
    s->drv->reset(stmt);
    if (rc)
        goto fail;
    if (exists) {
        /* TS 29.328 §7.6: 65535 is followed by 1 (0 only ever means "new") */
        unsigned want = cur == 65535 ? 1 : cur + 1;
        if (seq != want)
            goto out_of_sync;
        if (data.len)
            rc = st_exec(s, Q_SH_UPDATE, NULL, "ittt", (int64_t)seq, data, impu, si);
        else
            rc = st_exec(s, Q_SH_DELETE, NULL, "tt", impu, si);
    } else {
        rc = ims_store_impu_get(s, impu, &rec);
        if (rc == IMS_ENOENT) {
            st_rollback(s);
            return rc;
        }
        if (rc)
            goto fail;
        if (seq != 0)
            goto out_of_sync;
        if (data.len)
            rc = st_exec(s, Q_SH_INSERT, NULL, "titt", si, (int64_t)0, data, impu);
    }
    if (rc == STORE_ECONSTRAINT) /* a concurrent first write won */
        goto out_of_sync;
    if (rc == 0)
        rc = st_commit(s);
    if (rc)
        goto fail;
    return 0;
out_of_sync:
    st_rollback(s);
    *res = IMS_SH_OUT_OF_SYNC;
    return 0;
fail:
    st_rollback(s);
    return st_fail(s, rc, "sh put");
}

/* ---- S-CSCF capabilities ---- */

int ims_store_scscf_put(struct ims_store *s, ims_str name, const uint32_t *caps, size_t n)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(name) || n > IMS_STORE_MAX_CAPS)
        return st_err(s, IMS_EINVAL, "invalid S-CSCF name or too many capabilities");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "scscf begin");
    rc = st_exec(s, Q_SCSCF_UPSERT, NULL, "t", name);
    if (rc == 0)
        rc = st_exec(s, Q_SCSCF_CAP_DELETE, NULL, "t", name);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = st_exec(s, Q_SCSCF_CAP_INSERT, NULL, "ti", name, (int64_t)caps[i]);
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "scscf put");
    }
    return 0;
}

int ims_store_scscf_del(struct ims_store *s, ims_str name)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(name))
        return BAD_ID(s, name);
    int rc = st_exec(s, Q_SCSCF_DELETE, &n, "t", name);
    if (rc)
        return st_fail(s, rc, "scscf delete");
    return n ? 0 : st_err(s, IMS_ENOENT, "no S-CSCF %.*s", IMS_SF(name));
}

int ims_store_scscf_list(struct ims_store *s, ims_store_scscf_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    char name[IMS_STORE_ID_MAX] = "";
    uint32_t caps[IMS_STORE_MAX_CAPS];
    size_t n = 0;
    bool have = false;
    int stop = 0;
    s->errmsg[0] = '\0';
    int rc = st_query(s, Q_SCSCF_LIST, &stmt, "");
    if (rc)
        return st_fail(s, rc, "scscf list");
    /* Rows come sorted by name, one per capability: group them. */
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        ims_str nm = s->drv->col_text(stmt, 0);
        if (have && !ims_str_eq(nm, ims_str_cstr(name))) {
            if ((stop = cb(ctx, name, caps, n)) != 0)
                break;
            n = 0;
        }
        ims_str_copy(nm, name, sizeof(name));
        have = true;
        if (!s->drv->col_null(stmt, 1) && n < IMS_STORE_MAX_CAPS)
            caps[n++] = (uint32_t)s->drv->col_int(stmt, 1);
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    if (rc != STORE_DONE)
        return st_fail(s, rc, "scscf list");
    return have ? cb(ctx, name, caps, n) : 0;
}
