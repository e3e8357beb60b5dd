/* store_io.c - export/import of the whole store as text, and the key
 * rotation helpers (key usage, re-encryption).
 *
 * Export format (docs/internals/hss-store.md), one record per line, fields
 * separated by one space; positional identities first, then key=value
 * pairs (an empty value is empty or NULL); free text is base64:
 *
 *   imscloud-hss-export v1
 *   profile <name> xml=<b64>
 *   scscf <name> caps=<n,n,...>
 *   sub <name> scscf= ccf1= ccf2= ecf1= ecf2= keystone_user= keystone_project=
 *       caps_mandatory=<n,...> caps_optional=<n,...>
 *   impi <identity> sub= realm= schemes= amf= sqn= k= opc= ha1_md5= ha1_sha256=
 *       ha1_sha512_256= password=          (keyrepo ciphertexts, as stored)
 *   impu <identity> sub= irs= profile= barred= type= state=
 *   link <impi> <impu>
 *   sh <impu> si= seq= data=<b64>
 *   end
 *
 * Records are written so that each depends only on earlier ones. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/aka.h"
#include "crypto/encode.h"
#include "crypto/keyrepo.h"
#include "store/store_int.h"

#define HEADER "imscloud-hss-export v1"
#define MAX_TOKENS 16

static const char *const secret_key[SEC__N] = { "k",          "opc",            "ha1_md5",
                                                "ha1_sha256", "ha1_sha512_256", "password" };

/* ------------------------------------------------------------ export */

static int add_b64(struct ims_buf *out, ims_str v)
{
    if (v.len == 0)
        return 0;
    char *tmp = ims_alloc(IMS_B64_LEN(v.len) + 1);
    if (!tmp)
        return IMS_ENOMEM;
    size_t n = ims_b64_encode(v.p, v.len, tmp);
    int rc = ims_buf_add(out, tmp, n);
    ims_free(tmp);
    return rc;
}

static int add_caps(struct ims_buf *out, const char *key, const uint32_t *caps, size_t n)
{
    int rc = ims_buf_printf(out, " %s=", key);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = ims_buf_printf(out, "%s%u", i ? "," : "", caps[i]);
    return rc;
}

struct export_ctx {
    struct ims_store *s;
    struct ims_buf *out;
};

static int export_scscf(void *arg, const char *name, const uint32_t *caps, size_t n)
{
    struct export_ctx *x = arg;
    int rc = ims_buf_printf(x->out, "scscf %s", name);
    if (rc == 0)
        rc = add_caps(x->out, "caps", caps, n);
    return rc ? rc : ims_buf_add_cstr(x->out, "\n");
}

static int export_sub(void *arg, const struct ims_sub_rec *r)
{
    struct export_ctx *x = arg;
    int rc = ims_buf_printf(x->out,
                            "sub %s scscf=%s ccf1=%s ccf2=%s ecf1=%s ecf2=%s keystone_user=%s "
                            "keystone_project=%s roles=%s",
                            r->name, r->scscf_name, r->ccf[0], r->ccf[1], r->ecf[0], r->ecf[1],
                            r->keystone_user_id, r->keystone_project_id, r->roles);
    if (rc == 0)
        rc = add_caps(x->out, "caps_mandatory", r->caps_mandatory, r->n_mandatory);
    if (rc == 0)
        rc = add_caps(x->out, "caps_optional", r->caps_optional, r->n_optional);
    return rc ? rc : ims_buf_add_cstr(x->out, "\n");
}

static int export_impu(void *arg, const struct ims_impu_rec *r)
{
    struct export_ctx *x = arg;
    return ims_buf_printf(x->out, "impu %s sub=%s irs=%u profile=%s barred=%d type=%d state=%d\n",
                          r->identity, r->subscription, r->irs, r->profile, r->barred ? 1 : 0,
                          (int)r->type, (int)r->reg_state);
}

/* Runs q (no parameters) and calls fn for each row. */
static int each_row(struct ims_store *s, enum store_q q, struct ims_buf *out,
                    int (*fn)(struct ims_store *, struct store_stmt *, struct ims_buf *))
{
    struct store_stmt *stmt;
    int rc = st_query(s, q, &stmt, "");
    if (rc)
        return st_fail(s, rc, "export");
    while ((rc = s->drv->step(stmt)) == STORE_ROW)
        if ((rc = fn(s, stmt, out)) != 0)
            break;
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return 0;
    return rc == IMS_ELIMIT || rc == IMS_ENOMEM ? rc : st_fail(s, rc, "export");
}

static int row_profile(struct ims_store *s, struct store_stmt *stmt, struct ims_buf *out)
{
    /* Q_PROFILE_LIST gives names; the XML comes from Q_PROFILE_GET. */
    char name[IMS_STORE_NAME_MAX];
    struct ims_buf xml;
    ST_COPY(s, stmt, 0, name);
    ims_buf_init(&xml, IMS_STORE_XML_MAX);
    int rc = ims_store_profile_get(s, ims_str_cstr(name), &xml);
    if (rc == 0)
        rc = ims_buf_printf(out, "profile %s xml=", name);
    if (rc == 0)
        rc = add_b64(out, ims_buf_str(&xml));
    if (rc == 0)
        rc = ims_buf_add_cstr(out, "\n");
    ims_buf_free(&xml);
    return rc;
}

static int row_impi(struct ims_store *s, struct store_stmt *stmt, struct ims_buf *out)
{
    const struct store_driver *d = s->drv;
    ims_str id = d->col_text(stmt, IMPI_COL_IDENTITY), sub = d->col_text(stmt, IMPI_COL_SUB),
            realm = d->col_text(stmt, IMPI_COL_REALM);
    int rc = ims_buf_printf(out, "impi %.*s sub=%.*s realm=%.*s schemes=%lld amf=%lld sqn=%lld",
                            IMS_SF(id), IMS_SF(sub), IMS_SF(realm),
                            (long long)d->col_int(stmt, IMPI_COL_SCHEMES),
                            (long long)d->col_int(stmt, IMPI_COL_AMF),
                            (long long)d->col_int(stmt, IMPI_COL_SQN));
    for (int i = 0; rc == 0 && i < SEC__N; i++) {
        ims_str ct = d->col_text(stmt, IMPI_COL_SECRET0 + i);
        rc = ims_buf_printf(out, " %s=%.*s", secret_key[i], IMS_SF(ct));
    }
    return rc ? rc : ims_buf_add_cstr(out, "\n");
}

static int row_link(struct ims_store *s, struct store_stmt *stmt, struct ims_buf *out)
{
    ims_str a = s->drv->col_text(stmt, 0), b = s->drv->col_text(stmt, 1);
    return ims_buf_printf(out, "link %.*s %.*s\n", IMS_SF(a), IMS_SF(b));
}

static int row_sh(struct ims_store *s, struct store_stmt *stmt, struct ims_buf *out)
{
    ims_str impu = s->drv->col_text(stmt, 0), si = s->drv->col_text(stmt, 1);
    int rc = ims_buf_printf(out, "sh %.*s si=%.*s seq=%lld data=", IMS_SF(impu), IMS_SF(si),
                            (long long)s->drv->col_int(stmt, 2));
    if (rc == 0)
        rc = add_b64(out, s->drv->col_text(stmt, 3));
    return rc ? rc : ims_buf_add_cstr(out, "\n");
}

int ims_store_export(struct ims_store *s, struct ims_buf *out)
{
    struct export_ctx x = { s, out };
    s->errmsg[0] = '\0';
    int rc = ims_buf_add_cstr(out, HEADER "\n");
    if (rc == 0)
        rc = each_row(s, Q_PROFILE_LIST, out, row_profile);
    if (rc == 0)
        rc = ims_store_scscf_list(s, export_scscf, &x);
    if (rc == 0)
        rc = ims_store_sub_list(s, export_sub, &x);
    if (rc == 0)
        rc = each_row(s, Q_IMPI_LIST_ALL, out, row_impi);
    if (rc == 0)
        rc = ims_store_impu_list(s, IMS_STR_NULL, export_impu, &x);
    if (rc == 0)
        rc = each_row(s, Q_LINK_LIST_ALL, out, row_link);
    if (rc == 0)
        rc = each_row(s, Q_SH_LIST_ALL, out, row_sh);
    if (rc == 0)
        rc = ims_buf_add_cstr(out, "end\n");
    if (rc == IMS_ELIMIT)
        return st_err(s, rc, "export does not fit the buffer");
    if (rc == IMS_ENOMEM)
        return st_err(s, rc, "out of memory");
    return rc;
}

/* ------------------------------------------------------------ import */

struct line {
    ims_str tok[MAX_TOKENS];
    size_t n;
    size_t no; /* line number, for messages */
};

static int split(ims_str text, struct line *l)
{
    struct ims_cur c = ims_cur_of(text);
    l->n = 0;
    while (!ims_cur_eof(&c)) {
        ims_str t;
        ims_cur_until(&c, " ", &t);
        if (t.len == 0) /* two spaces, or a leading/trailing one */
            return IMS_EPROTO;
        if (l->n == MAX_TOKENS)
            return IMS_EPROTO;
        l->tok[l->n++] = t;
        if (!ims_cur_eof(&c))
            c.p++; /* the space */
        if (ims_cur_eof(&c) && c.p[-1] == ' ')
            return IMS_EPROTO;
    }
    return 0;
}

/* The value of key=... among tokens [from..n), or IMS_ENOENT. */
static int kv(const struct line *l, size_t from, const char *key, ims_str *val)
{
    size_t klen = strlen(key);
    for (size_t i = from; i < l->n; i++) {
        ims_str t = l->tok[i];
        if (t.len > klen && t.p[klen] == '=' && memcmp(t.p, key, klen) == 0) {
            *val = ims_str_make(t.p + klen + 1, t.len - klen - 1);
            return 0;
        }
    }
    return IMS_ENOENT;
}

static int kv_u64(const struct line *l, size_t from, const char *key, uint64_t max,
                  uint64_t *out)
{
    ims_str v;
    if (kv(l, from, key, &v) || ims_str_to_u64(v, max, out))
        return IMS_EPROTO;
    return 0;
}

static int parse_caps(ims_str v, uint32_t *caps, size_t *n)
{
    struct ims_cur c = ims_cur_of(v);
    *n = 0;
    while (!ims_cur_eof(&c)) {
        ims_str t;
        uint64_t u;
        ims_cur_until(&c, ",", &t);
        if (*n == IMS_STORE_MAX_CAPS || ims_str_to_u64(t, UINT32_MAX, &u))
            return IMS_EPROTO;
        caps[(*n)++] = (uint32_t)u;
        if (!ims_cur_eof(&c) && (c.p++, ims_cur_eof(&c)))
            return IMS_EPROTO; /* trailing comma */
    }
    return 0;
}

/* Decodes base64 v into a new NUL-terminated buffer (*out, caller frees). */
static int unb64(ims_str v, size_t max, char **out, size_t *len)
{
    char *p = ims_alloc(v.len / 4 * 3 + 1);
    if (!p)
        return IMS_ENOMEM;
    int rc = ims_b64_decode(v, p, v.len / 4 * 3, len);
    if (rc == 0 && (*len > max || memchr(p, '\0', *len)))
        rc = IMS_EPROTO;
    if (rc) {
        ims_free(p);
        return rc == IMS_ENOMEM ? rc : IMS_EPROTO;
    }
    p[*len] = '\0';
    *out = p;
    return 0;
}

static int copy_opt(ims_str v, char *dst, size_t cap)
{
    if (!st_valid_opt(v, cap))
        return IMS_EPROTO;
    ims_str_copy(v, dst, cap);
    return 0;
}

static int imp_profile(struct ims_store *s, const struct line *l)
{
    ims_str x;
    char *xml = NULL;
    size_t n = 0;
    if (l->n < 2 || !st_valid_name(l->tok[1]) || kv(l, 2, "xml", &x))
        return IMS_EPROTO;
    int rc = unb64(x, IMS_STORE_XML_MAX, &xml, &n);
    if (rc)
        return rc;
    rc = st_exec(s, Q_PROFILE_INSERT, NULL, "tt", l->tok[1], ims_str_make(xml, n));
    ims_free(xml);
    return rc;
}

static int imp_scscf(struct ims_store *s, const struct line *l)
{
    ims_str v;
    uint32_t caps[IMS_STORE_MAX_CAPS];
    size_t n;
    if (l->n < 2 || !st_valid_id(l->tok[1]) || kv(l, 2, "caps", &v) || parse_caps(v, caps, &n))
        return IMS_EPROTO;
    int rc = st_exec(s, Q_SCSCF_INSERT, NULL, "t", l->tok[1]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = st_exec(s, Q_SCSCF_CAP_INSERT, NULL, "ti", l->tok[1], (int64_t)caps[i]);
    return rc;
}

static int imp_sub(struct ims_store *s, const struct line *l)
{
    struct ims_sub_rec r;
    struct store_stmt *stmt;
    ims_str v[9];
    static const char *const keys[9] = { "scscf", "ccf1", "ccf2", "ecf1", "ecf2",
                                         "keystone_user", "keystone_project", "caps_mandatory",
                                         "caps_optional" };
    memset(&r, 0, sizeof(r));
    if (l->n < 2 || !st_valid_name(l->tok[1]))
        return IMS_EPROTO;
    for (int i = 0; i < 9; i++)
        if (kv(l, 2, keys[i], &v[i]))
            return IMS_EPROTO;
    ims_str_copy(l->tok[1], r.name, sizeof(r.name));
    if (copy_opt(v[0], r.scscf_name, sizeof(r.scscf_name)) ||
        copy_opt(v[1], r.ccf[0], sizeof(r.ccf[0])) || copy_opt(v[2], r.ccf[1], sizeof(r.ccf[1])) ||
        copy_opt(v[3], r.ecf[0], sizeof(r.ecf[0])) || copy_opt(v[4], r.ecf[1], sizeof(r.ecf[1])) ||
        copy_opt(v[5], r.keystone_user_id, sizeof(r.keystone_user_id)) ||
        copy_opt(v[6], r.keystone_project_id, sizeof(r.keystone_project_id)) ||
        parse_caps(v[7], r.caps_mandatory, &r.n_mandatory) ||
        parse_caps(v[8], r.caps_optional, &r.n_optional))
        return IMS_EPROTO;
    /* roles= came with migration 003: an older dump has none */
    ims_str roles = IMS_STR_NULL;
    if (kv(l, 2, "roles", &roles) == 0 && copy_opt(roles, r.roles, sizeof(r.roles)))
        return IMS_EPROTO;
    int rc = st_query(s, Q_SUB_INSERT, &stmt, "tooooooot", l->tok[1], v[1], v[2], v[3], v[4],
                      v[5], v[6], v[0], roles);
    if (rc)
        return rc;
    rc = s->drv->step(stmt);
    int64_t id = rc == STORE_ROW ? s->drv->col_int(stmt, 0) : 0;
    s->drv->reset(stmt);
    if (rc != STORE_ROW)
        return rc == STORE_DONE ? IMS_EBACKEND : rc;
    return st_sub_caps_put(s, id, &r);
}

static int imp_impi(struct ims_store *s, const struct line *l)
{
    ims_str sub, realm, sec[SEC__N];
    uint64_t schemes, amf, sqn;
    uint8_t tmp[IMS_STORE_PASSWORD_MAX + 64];
    size_t n;
    if (l->n < 2 || !st_valid_id(l->tok[1]) || kv(l, 2, "sub", &sub) || !st_valid_name(sub) ||
        kv(l, 2, "realm", &realm) || !st_valid_id(realm) ||
        kv_u64(l, 2, "schemes", IMS_AUTH_ALL, &schemes) || kv_u64(l, 2, "amf", 65535, &amf) ||
        kv_u64(l, 2, "sqn", IMS_AKA_SQN_MAX, &sqn))
        return IMS_EPROTO;
    for (int i = 0; i < SEC__N; i++) {
        if (kv(l, 2, secret_key[i], &sec[i]))
            return IMS_EPROTO;
        if (sec[i].len == 0)
            continue;
        /* The secret must decrypt here, with this repository's keys. */
        int rc = st_decrypt(s, l->tok[1], st_secret_field[i], sec[i], tmp, sizeof(tmp), &n);
        ims_wipe(tmp, sizeof(tmp));
        if (rc)
            return rc == IMS_ENOMEM ? rc : IMS_EINVAL;
    }
    int64_t changes = 0;
    int rc = st_exec(s, Q_IMPI_IMPORT, &changes, "ttii" "oooooo" "t", l->tok[1], realm,
                     (int64_t)schemes, (int64_t)amf, sec[0], sec[1], sec[2], sec[3], sec[4],
                     sec[5], sub);
    if (rc == 0 && changes == 0)
        return st_err(s, IMS_ENOENT, "no subscription %.*s", IMS_SF(sub));
    if (rc == 0) /* in the import's transaction */
        rc = st_exec(s, Q_IMPI_SQN_INSERT, NULL, "it", (int64_t)sqn, l->tok[1]);
    return rc;
}

static int imp_impu(struct ims_store *s, const struct line *l)
{
    ims_str sub, profile;
    uint64_t irs, barred, type, state;
    if (l->n < 2 || !st_valid_id(l->tok[1]) || kv(l, 2, "sub", &sub) || !st_valid_name(sub) ||
        kv(l, 2, "profile", &profile) || !st_valid_opt(profile, IMS_STORE_NAME_MAX) ||
        kv_u64(l, 2, "irs", UINT32_MAX, &irs) || irs == 0 || kv_u64(l, 2, "barred", 1, &barred) ||
        kv_u64(l, 2, "type", 3, &type) || kv_u64(l, 2, "state", 2, &state))
        return IMS_EPROTO;
    int64_t changes = 0;
    int rc = st_exec(s, Q_IMPU_IMPORT, &changes, "tioiii" "t", l->tok[1], (int64_t)irs, profile,
                     (int64_t)barred, (int64_t)type, (int64_t)state, sub);
    if (rc == 0 && changes == 0)
        return st_err(s, IMS_ENOENT, "no subscription %.*s", IMS_SF(sub));
    return rc;
}

static int imp_link(struct ims_store *s, const struct line *l)
{
    int64_t changes = 0;
    if (l->n != 3 || !st_valid_id(l->tok[1]) || !st_valid_id(l->tok[2]))
        return IMS_EPROTO;
    int rc = st_exec(s, Q_LINK, &changes, "tt", l->tok[1], l->tok[2]);
    if (rc == 0 && changes == 0)
        return st_err(s, IMS_EINVAL, "cannot link %.*s and %.*s", IMS_SF(l->tok[1]),
                      IMS_SF(l->tok[2]));
    return rc;
}

static int imp_sh(struct ims_store *s, const struct line *l)
{
    ims_str si, d;
    uint64_t seq;
    char *data = NULL;
    size_t n = 0;
    if (l->n < 2 || !st_valid_id(l->tok[1]) || kv(l, 2, "si", &si) || !st_valid_id(si) ||
        kv_u64(l, 2, "seq", 65535, &seq) || kv(l, 2, "data", &d))
        return IMS_EPROTO;
    int rc = unb64(d, IMS_STORE_SH_MAX, &data, &n);
    if (rc)
        return rc;
    int64_t changes = 0;
    rc = st_exec(s, Q_SH_INSERT, &changes, "tit" "t", si, (int64_t)seq, ims_str_make(data, n),
                 l->tok[1]);
    ims_free(data);
    if (rc == 0 && changes == 0)
        return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(l->tok[1]));
    return rc;
}

int ims_store_import(struct ims_store *s, ims_str text, size_t *count)
{
    static const struct {
        const char *kind;
        int (*fn)(struct ims_store *, const struct line *);
    } kinds[] = { { "profile", imp_profile }, { "scscf", imp_scscf }, { "sub", imp_sub },
                  { "impi", imp_impi },       { "impu", imp_impu },   { "link", imp_link },
                  { "sh", imp_sh } };
    struct ims_cur c = ims_cur_of(text);
    struct line l = { .no = 0 };
    size_t records = 0;
    bool header = false, end = false;
    s->errmsg[0] = '\0';
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "import begin");
    while (rc == 0 && !ims_cur_eof(&c)) {
        ims_str raw;
        ims_cur_until(&c, "\n", &raw);
        if (!ims_cur_eof(&c))
            c.p++;
        l.no++;
        ims_str ln = raw;
        if (ln.len && ln.p[ln.len - 1] == '\r')
            ln.len--;
        if (ln.len == 0 || ln.p[0] == '#')
            continue;
        if (end) {
            rc = IMS_EPROTO; /* nothing after "end" */
            break;
        }
        if (!header) {
            if (!ims_str_eq(ln, IMS_S(HEADER))) {
                rc = IMS_EPROTO;
                break;
            }
            header = true;
            continue;
        }
        if (ims_str_eq(ln, IMS_S("end"))) {
            end = true;
            continue;
        }
        if ((rc = split(ln, &l)) != 0)
            break;
        rc = IMS_EPROTO;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            if (ims_str_eq(l.tok[0], ims_str_cstr(kinds[k].kind))) {
                rc = kinds[k].fn(s, &l);
                break;
            }
        if (rc == 0)
            records++;
    }
    if (rc == 0 && !end)
        rc = IMS_EPROTO; /* truncated input */
    if (rc == 0)
        rc = st_commit(s);
    if (rc == 0) {
        if (count)
            *count = records;
        return 0;
    }
    st_rollback(s);
    char msg[sizeof(s->errmsg)];
    snprintf(msg, sizeof(msg), "%s", s->errmsg);
    switch (rc) {
    case IMS_EPROTO:
        return st_err(s, rc, "import: line %zu: malformed record%s", l.no,
                      end || header ? "" : " (not an imscloud HSS export)");
    case STORE_ECONSTRAINT:
        return st_err(s, IMS_EINVAL, "import: line %zu: the record already exists", l.no);
    case IMS_EBACKEND:
    case IMS_ENOMEM:
        if (!msg[0])
            return st_fail(s, rc, "import");
        /* fall through */
    default:
        return st_err(s, rc, "import: line %zu: %s", l.no, msg[0] ? msg : ims_strerror(rc));
    }
}

/* ------------------------------------------------------- key rotation */

int ims_store_key_usage(struct ims_store *s, unsigned keyid, uint64_t *count)
{
    struct store_stmt *stmt;
    char pat[32];
    s->errmsg[0] = '\0';
    int n = snprintf(pat, sizeof(pat), "v1:%u:%%", keyid);
    ims_str p = ims_str_make(pat, (size_t)n);
    int rc = st_query(s, Q_KEY_USAGE, &stmt, "tttttt", p, p, p, p, p, p);
    if (rc)
        return st_fail(s, rc, "key usage");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        *count = (uint64_t)s->drv->col_int(stmt, 0);
        rc = 0;
    }
    s->drv->reset(stmt);
    return rc ? st_fail(s, rc == STORE_DONE ? IMS_EBACKEND : rc, "key usage") : 0;
}

#define BATCH 100

struct reenc_row {
    int64_t id;
    char identity[IMS_STORE_ID_MAX];
    struct ims_buf ct[SEC__N]; /* the new or the unchanged ciphertext; empty = NULL */
    bool changed;
};

/* Reads one batch of rows after *last_id and re-encrypts in memory. */
static int reenc_batch(struct ims_store *s, struct reenc_row *rows, size_t *nrows,
                       int64_t *last_id, uint64_t *nsecrets)
{
    struct store_stmt *stmt;
    size_t n = 0;
    int rc = st_query(s, Q_IMPI_BATCH, &stmt, "i", *last_id);
    if (rc)
        return st_fail(s, rc, "reencrypt read");
    while (rc == 0 && (rc = s->drv->step(stmt)) == STORE_ROW) {
        struct reenc_row *r = &rows[n++];
        rc = 0;
        r->id = s->drv->col_int(stmt, IMPI_COL_ID);
        ST_COPY(s, stmt, IMPI_COL_IDENTITY, r->identity);
        *last_id = r->id;
        for (int i = 0; rc == 0 && i < SEC__N; i++) {
            ims_str ct = s->drv->col_text(stmt, IMPI_COL_SECRET0 + i);
            bool changed = false;
            char ad[IMS_STORE_ID_MAX + 32];
            if (ct.len == 0)
                continue;
            snprintf(ad, sizeof(ad), "impi:%s:%s", r->identity, st_secret_field[i]);
            rc = ims_keyrepo_reencrypt(s->repo, ims_str_cstr(ad), ct, &r->ct[i], &changed);
            if (rc == 0 && !changed)
                rc = ims_buf_add_str(&r->ct[i], ct);
            if (rc == 0 && changed) {
                r->changed = true;
                (*nsecrets)++;
            }
            if (rc && rc != IMS_ENOMEM)
                rc = st_err(s, IMS_EBACKEND, "%s of %s does not decrypt (%s)",
                            st_secret_field[i], r->identity, ims_strerror(rc));
        }
    }
    s->drv->reset(stmt);
    *nrows = n;
    if (rc == STORE_DONE)
        return 0;
    if (rc == IMS_ENOMEM)
        return st_err(s, rc, "out of memory");
    return s->errmsg[0] ? rc : st_fail(s, rc, "reencrypt read");
}

int ims_store_reencrypt(struct ims_store *s, uint64_t *changed)
{
    int64_t last_id = 0;
    uint64_t nsecrets = 0;
    int rc = 0;
    s->errmsg[0] = '\0';
    struct reenc_row *rows = ims_calloc(BATCH, sizeof(*rows));
    if (!rows)
        return st_err(s, IMS_ENOMEM, "out of memory");
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < BATCH; i++) {
            rows[i].changed = false;
            for (int j = 0; j < SEC__N; j++)
                ims_buf_init(&rows[i].ct[j], 2048);
        }
        rc = st_begin(s);
        if (rc) {
            rc = st_fail(s, rc, "reencrypt begin");
            break;
        }
        rc = reenc_batch(s, rows, &n, &last_id, &nsecrets);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct reenc_row *r = &rows[i];
            if (!r->changed)
                continue;
            rc = st_exec(s, Q_IMPI_SET_SECRETS, NULL, "oooooo" "i", ims_buf_str(&r->ct[0]),
                         ims_buf_str(&r->ct[1]), ims_buf_str(&r->ct[2]), ims_buf_str(&r->ct[3]),
                         ims_buf_str(&r->ct[4]), ims_buf_str(&r->ct[5]), r->id);
            if (rc)
                rc = st_fail(s, rc, "reencrypt write");
        }
        if (rc == 0)
            rc = st_commit(s);
        for (size_t i = 0; i < BATCH; i++)
            for (int j = 0; j < SEC__N; j++)
                ims_buf_free(&rows[i].ct[j]);
        if (rc) {
            st_rollback(s);
            if (rc < 0 && !s->errmsg[0])
                rc = st_fail(s, rc, "reencrypt");
            break;
        }
        if (n < BATCH)
            break;
    }
    ims_free(rows);
    if (rc == 0 && changed)
        *changed = nsecrets;
    return rc;
}
