/* store_admin.c - provisioning (imscloudctl): subscriptions, IMPIs and
 * their secrets, IMPUs, associations, service profiles. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/digest.h"
#include "store/store_int.h"

#define STR(a) ims_str_cstr(a)

static bool valid_sub(const struct ims_sub_rec *sub)
{
    if (!st_valid_name(STR(sub->name)) || sub->n_mandatory > IMS_STORE_MAX_CAPS ||
        sub->n_optional > IMS_STORE_MAX_CAPS)
        return false;
    for (int i = 0; i < 2; i++)
        if (!st_valid_opt(STR(sub->ccf[i]), IMS_STORE_ID_MAX) ||
            !st_valid_opt(STR(sub->ecf[i]), IMS_STORE_ID_MAX))
            return false;
    return st_valid_opt(STR(sub->keystone_user_id), IMS_STORE_NAME_MAX) &&
           st_valid_opt(STR(sub->keystone_project_id), IMS_STORE_NAME_MAX) &&
           st_valid_opt(STR(sub->roles), IMS_STORE_NAME_MAX);
}

/* A failed write: a constraint means the record exists (or is in use). */
static int write_fail(struct ims_store *s, int rc, const char *what, ims_str key,
                      const char *why)
{
    if (rc == STORE_ECONSTRAINT)
        return st_err(s, IMS_EINVAL, "%s %.*s %s", what, IMS_SF(key), why);
    return st_fail(s, rc, what);
}

/* The end of a write that must touch one row named by key: rc is the
 * statement's, n the rows it changed; none is IMS_ENOENT, "no <noun> key". */
static int one_row(struct ims_store *s, int rc, int64_t n, const char *what, const char *noun,
                   ims_str key)
{
    if (rc)
        return st_fail(s, rc, what);
    return n ? 0 : st_err(s, IMS_ENOENT, "no %s %.*s", noun, IMS_SF(key));
}

/* ------------------------------------------------------ subscriptions */

int ims_store_sub_add(struct ims_store *s, const struct ims_sub_rec *sub)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!valid_sub(sub))
        return st_err(s, IMS_EINVAL, "invalid subscription record");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "subscription add");
    rc = st_query(s, Q_SUB_INSERT, &stmt, "tooooooot", STR(sub->name), STR(sub->ccf[0]),
                  STR(sub->ccf[1]), STR(sub->ecf[0]), STR(sub->ecf[1]),
                  STR(sub->keystone_user_id), STR(sub->keystone_project_id), IMS_STR_NULL,
                  STR(sub->roles));
    if (rc == 0) {
        rc = s->drv->step(stmt);
        int64_t id = rc == STORE_ROW ? s->drv->col_int(stmt, 0) : 0;
        s->drv->reset(stmt);
        if (rc == STORE_ROW)
            rc = st_sub_caps_put(s, id, sub);
        else if (rc == STORE_DONE)
            rc = IMS_EBACKEND;
    }
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return write_fail(s, rc, "subscription", STR(sub->name), "already exists");
    }
    return 0;
}

int ims_store_sub_get(struct ims_store *s, ims_str name, struct ims_sub_rec *out)
{
    struct store_stmt *stmt;
    int64_t id = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_name(name))
        return st_err(s, IMS_EINVAL, "invalid name");
    int rc = st_query(s, Q_SUB_GET, &stmt, "t", name);
    if (rc)
        return st_fail(s, rc, "subscription get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW)
        id = st_sub_row(s, stmt, out);
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return st_err(s, IMS_ENOENT, "no subscription %.*s", IMS_SF(name));
    if (rc != STORE_ROW)
        return st_fail(s, rc, "subscription get");
    rc = st_sub_caps(s, id, out);
    return rc ? st_fail(s, rc, "capabilities") : 0;
}

int ims_store_sub_update(struct ims_store *s, const struct ims_sub_rec *sub)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!valid_sub(sub))
        return st_err(s, IMS_EINVAL, "invalid subscription record");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "subscription update");
    rc = st_query(s, Q_SUB_UPDATE, &stmt, "oooooott", STR(sub->ccf[0]), STR(sub->ccf[1]),
                  STR(sub->ecf[0]), STR(sub->ecf[1]), STR(sub->keystone_user_id),
                  STR(sub->keystone_project_id), STR(sub->roles), STR(sub->name));
    if (rc == 0) {
        rc = s->drv->step(stmt);
        int64_t id = rc == STORE_ROW ? s->drv->col_int(stmt, 0) : 0;
        s->drv->reset(stmt);
        if (rc == STORE_DONE) {
            st_rollback(s);
            return st_err(s, IMS_ENOENT, "no subscription %s", sub->name);
        }
        if (rc == STORE_ROW)
            rc = st_sub_caps_put(s, id, sub);
    }
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "subscription update");
    }
    return 0;
}

int ims_store_sub_del(struct ims_store *s, ims_str name)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_name(name))
        return st_err(s, IMS_EINVAL, "invalid name");
    int rc = st_exec(s, Q_SUB_DELETE, &n, "t", name);
    return one_row(s, rc, n, "subscription delete", "subscription", name);
}

int ims_store_sub_list(struct ims_store *s, ims_store_sub_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    struct ims_sub_rec rec;
    int stop = 0;
    s->errmsg[0] = '\0';
    int rc = st_query(s, Q_SUB_LIST, &stmt, "");
    if (rc)
        return st_fail(s, rc, "subscription list");
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        int64_t id = st_sub_row(s, stmt, &rec);
        if ((rc = st_sub_caps(s, id, &rec)) != 0)
            break;
        if ((stop = cb(ctx, &rec)) != 0)
            break;
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, "subscription list");
}

/* --------------------------------------------------------------- IMPI */

int ims_store_impi_add(struct ims_store *s, ims_str sub, ims_str impi, ims_str realm,
                       unsigned schemes)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_name(sub) || !st_valid_id(impi) || !st_valid_id(realm) ||
        (schemes & ~IMS_AUTH_ALL))
        return st_err(s, IMS_EINVAL, "invalid IMPI record");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "IMPI begin");
    rc = st_exec(s, Q_IMPI_INSERT, &n, "tti" "t", impi, realm, (int64_t)schemes, sub);
    if (rc) {
        st_rollback(s);
        return write_fail(s, rc, "IMPI", impi, "already exists");
    }
    if (n == 0) {
        st_rollback(s);
        return st_err(s, IMS_ENOENT, "no subscription %.*s", IMS_SF(sub));
    }
    rc = st_exec(s, Q_IMPI_SQN_INSERT, NULL, "it", (int64_t)0, impi);
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "IMPI add");
    }
    return 0;
}

int ims_store_impi_get(struct ims_store *s, ims_str impi, struct ims_impi_rec *out)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_query(s, Q_IMPI_GET, &stmt, "t", impi);
    if (rc)
        return st_fail(s, rc, "impi get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW)
        st_impi_row(s, stmt, out);
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return st_err(s, IMS_ENOENT, "no IMPI %.*s", IMS_SF(impi));
    return rc == STORE_ROW ? 0 : st_fail(s, rc, "impi get");
}

int ims_store_impi_set_schemes(struct ims_store *s, ims_str impi, unsigned schemes)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || (schemes & ~IMS_AUTH_ALL))
        return st_err(s, IMS_EINVAL, "invalid identity or schemes");
    int rc = st_exec(s, Q_IMPI_SET_SCHEMES, &n, "it", (int64_t)schemes, impi);
    return one_row(s, rc, n, "impi schemes", "IMPI", impi);
}

int ims_store_impi_set_aka(struct ims_store *s, ims_str impi, const uint8_t k[16],
                           const uint8_t opc[16], const uint8_t amf[2])
{
    struct ims_buf kct, opcct;
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi))
        return st_err(s, IMS_EINVAL, "invalid identity");
    ims_buf_init(&kct, 256);
    ims_buf_init(&opcct, 256);
    int rc = st_encrypt(s, impi, st_secret_field[SEC_K], k, 16, &kct);
    if (rc == 0)
        rc = st_encrypt(s, impi, st_secret_field[SEC_OPC], opc, 16, &opcct);
    if (rc == 0) {
        rc = st_exec(s, Q_IMPI_SET_AKA, &n, "tti" "t", ims_buf_str(&kct), ims_buf_str(&opcct),
                     (int64_t)((unsigned)amf[0] << 8 | amf[1]), impi);
        rc = one_row(s, rc, n, "impi aka", "IMPI", impi);
    }
    ims_buf_free(&kct);
    ims_buf_free(&opcct);
    return rc;
}

int ims_store_impi_set_password(struct ims_store *s, ims_str impi, ims_str password,
                                bool keep_password)
{
    struct ims_impi_rec rec;
    struct ims_buf ct[IMS_DIGEST_NALG + 1];
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || password.len == 0 || password.len > IMS_STORE_PASSWORD_MAX)
        return st_err(s, IMS_EINVAL, "invalid identity or password");
    int rc = ims_store_impi_get(s, impi, &rec); /* for the realm */
    if (rc)
        return rc;
    for (int i = 0; i <= IMS_DIGEST_NALG; i++)
        ims_buf_init(&ct[i], 512);
    static const int col[IMS_DIGEST_NALG] = { SEC_HA1_MD5, SEC_HA1_SHA256, SEC_HA1_SHA512_256 };
    /* TS 24.229 §5.1.1.2.3 / TS 33.203: the Digest username is the IMPI. */
    for (int a = 0; rc == 0 && a < IMS_DIGEST_NALG; a++) {
        rc = ims_digest_ha1((enum ims_digest_alg)a, impi, STR(rec.realm), password, ha1);
        if (rc == 0)
            rc = st_encrypt(s, impi, st_secret_field[col[a]], ha1, strlen(ha1), &ct[a]);
        else
            rc = st_err(s, rc, "HA1 computation failed");
    }
    ims_wipe(ha1, sizeof(ha1));
    if (rc == 0 && keep_password)
        rc = st_encrypt(s, impi, st_secret_field[SEC_PASSWORD], password.p, password.len,
                        &ct[IMS_DIGEST_NALG]);
    if (rc == 0) {
        rc = st_exec(s, Q_IMPI_SET_DIGEST, &n, "ttto" "t", ims_buf_str(&ct[0]),
                     ims_buf_str(&ct[1]), ims_buf_str(&ct[2]), ims_buf_str(&ct[3]), impi);
        rc = one_row(s, rc, n, "impi password", "IMPI", impi);
    }
    for (int i = 0; i <= IMS_DIGEST_NALG; i++)
        ims_buf_free(&ct[i]);
    return rc;
}

int ims_store_impi_del(struct ims_store *s, ims_str impi)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_stored_id(impi))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_exec(s, Q_IMPI_DELETE, &n, "t", impi);
    return one_row(s, rc, n, "impi delete", "IMPI", impi);
}

int ims_store_impi_list(struct ims_store *s, ims_str sub, ims_store_impi_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    struct ims_impi_rec rec;
    int stop = 0, rc;
    s->errmsg[0] = '\0';
    if (sub.len && !st_valid_name(sub))
        return st_err(s, IMS_EINVAL, "invalid name");
    rc = sub.len ? st_query(s, Q_IMPI_LIST_SUB, &stmt, "t", sub)
                 : st_query(s, Q_IMPI_LIST_ALL, &stmt, "");
    if (rc)
        return st_fail(s, rc, "impi list");
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        st_impi_row(s, stmt, &rec);
        if ((stop = cb(ctx, &rec)) != 0)
            break;
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, "impi list");
}

/* --------------------------------------------------------------- IMPU */

static bool valid_impu(const struct ims_impu_rec *r)
{
    return st_valid_id(STR(r->identity)) && st_valid_opt(STR(r->profile), IMS_STORE_NAME_MAX) &&
           (unsigned)r->type <= IMS_ID_WILDCARD_IMPU;
}

/* 0 if profile is "" or exists; IMS_ENOENT otherwise. */
static int profile_check(struct ims_store *s, ims_str profile)
{
    struct store_stmt *stmt;
    if (profile.len == 0)
        return 0;
    int rc = st_query(s, Q_PROFILE_GET, &stmt, "t", profile);
    if (rc)
        return st_fail(s, rc, "profile check");
    rc = s->drv->step(stmt);
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return st_err(s, IMS_ENOENT, "no service profile %.*s", IMS_SF(profile));
    return rc == STORE_ROW ? 0 : st_fail(s, rc, "profile check");
}

/* The next free implicit-set number of a subscription. */
static int next_irs(struct ims_store *s, ims_str sub, int64_t *irs)
{
    struct store_stmt *stmt;
    int rc = st_query(s, Q_IMPU_NEXT_IRS, &stmt, "t", sub);
    if (rc)
        return rc;
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW)
        *irs = s->drv->col_int(stmt, 0);
    s->drv->reset(stmt);
    return rc == STORE_ROW ? 0 : rc == STORE_DONE ? IMS_EBACKEND : rc;
}

int ims_store_impu_add(struct ims_store *s, const struct ims_impu_rec *r)
{
    int64_t n = 0, irs = r->irs;
    s->errmsg[0] = '\0';
    if (!valid_impu(r) || !st_valid_name(STR(r->subscription)))
        return st_err(s, IMS_EINVAL, "invalid IMPU record");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "impu add");
    rc = profile_check(s, STR(r->profile));
    if (rc) {
        st_rollback(s);
        return rc;
    }
    if (irs == 0)
        rc = next_irs(s, STR(r->subscription), &irs);
    if (rc == 0)
        rc = st_exec(s, Q_IMPU_INSERT, &n, "tioii" "t", STR(r->identity), irs, STR(r->profile),
                     (int64_t)r->barred, (int64_t)r->type, STR(r->subscription));
    if (rc == 0 && n == 0) {
        st_rollback(s);
        return st_err(s, IMS_ENOENT, "no subscription %s", r->subscription);
    }
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return write_fail(s, rc, "IMPU", STR(r->identity), "already exists");
    }
    return 0;
}

int ims_store_impu_update(struct ims_store *s, const struct ims_impu_rec *r)
{
    struct ims_impu_rec cur;
    int64_t n = 0, irs = r->irs;
    s->errmsg[0] = '\0';
    if (!valid_impu(r))
        return st_err(s, IMS_EINVAL, "invalid IMPU record");
    int rc = st_begin(s);
    if (rc)
        return st_fail(s, rc, "impu update");
    rc = profile_check(s, STR(r->profile));
    if (rc == 0)
        rc = ims_store_impu_get(s, STR(r->identity), &cur);
    if (rc) {
        st_rollback(s);
        return rc;
    }
    if (irs == 0)
        rc = next_irs(s, STR(cur.subscription), &irs);
    if (rc == 0)
        rc = st_exec(s, Q_IMPU_UPDATE, &n, "ioii" "t", irs, STR(r->profile), (int64_t)r->barred,
                     (int64_t)r->type, STR(r->identity));
    if (rc == 0)
        rc = st_commit(s);
    if (rc) {
        st_rollback(s);
        return st_fail(s, rc, "impu update");
    }
    return 0;
}

int ims_store_impu_bar(struct ims_store *s, ims_str impu, bool barred)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_exec(s, Q_IMPU_BAR, &n, "it", (int64_t)barred, impu);
    return one_row(s, rc, n, "impu bar", "IMPU", impu);
}

int ims_store_impu_set_profile(struct ims_store *s, ims_str impu, ims_str profile)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impu) || !st_valid_opt(profile, IMS_STORE_NAME_MAX))
        return st_err(s, IMS_EINVAL, "invalid identity or profile");
    int rc = profile_check(s, profile);
    if (rc)
        return rc;
    rc = st_exec(s, Q_IMPU_SET_PROFILE, &n, "ot", profile, impu);
    return one_row(s, rc, n, "impu profile", "IMPU", impu);
}

int ims_store_impu_del(struct ims_store *s, ims_str impu)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_stored_id(impu))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_exec(s, Q_IMPU_DELETE, &n, "t", impu);
    return one_row(s, rc, n, "impu delete", "IMPU", impu);
}

int ims_store_impu_list(struct ims_store *s, ims_str sub, ims_store_impu_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    struct ims_impu_rec rec;
    int stop = 0, rc;
    s->errmsg[0] = '\0';
    if (sub.len && !st_valid_name(sub))
        return st_err(s, IMS_EINVAL, "invalid name");
    rc = sub.len ? st_query(s, Q_IMPU_LIST_SUB, &stmt, "t", sub)
                 : st_query(s, Q_IMPU_LIST_ALL, &stmt, "");
    if (rc)
        return st_fail(s, rc, "impu list");
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        st_impu_row(s, stmt, &rec);
        if ((stop = cb(ctx, &rec)) != 0)
            break;
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, "impu list");
}

/* ----------------------------------------------------------- linking */

int ims_store_link(struct ims_store *s, ims_str impi, ims_str impu)
{
    enum ims_assoc a;
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || !st_valid_id(impu))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_exec(s, Q_LINK, &n, "tt", impi, impu);
    if (rc)
        return st_fail(s, rc, "link");
    if (n)
        return 0;
    /* Nothing inserted: already linked, unknown, or another subscription. */
    rc = ims_store_assoc_check(s, impi, impu, &a);
    if (rc)
        return rc;
    switch (a) {
    case IMS_ASSOC_OK: return 0;
    case IMS_ASSOC_NO_IMPI: return st_err(s, IMS_ENOENT, "no IMPI %.*s", IMS_SF(impi));
    case IMS_ASSOC_NO_IMPU: return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    case IMS_ASSOC_MISMATCH: break;
    }
    return st_err(s, IMS_EINVAL, "%.*s and %.*s belong to different subscriptions",
                  IMS_SF(impi), IMS_SF(impu));
}

int ims_store_unlink(struct ims_store *s, ims_str impi, ims_str impu)
{
    enum ims_assoc a;
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || !st_valid_id(impu))
        return st_err(s, IMS_EINVAL, "invalid identity");
    int rc = st_exec(s, Q_UNLINK, &n, "tt", impi, impu);
    if (rc)
        return st_fail(s, rc, "unlink");
    if (n)
        return 0;
    rc = ims_store_assoc_check(s, impi, impu, &a);
    if (rc)
        return rc;
    if (a == IMS_ASSOC_NO_IMPI)
        return st_err(s, IMS_ENOENT, "no IMPI %.*s", IMS_SF(impi));
    if (a == IMS_ASSOC_NO_IMPU)
        return st_err(s, IMS_ENOENT, "no IMPU %.*s", IMS_SF(impu));
    return 0;
}

/* ----------------------------------------------------------- profiles */

int ims_store_profile_put(struct ims_store *s, ims_str name, ims_str xml)
{
    s->errmsg[0] = '\0';
    if (!st_valid_name(name) || !st_valid_text(xml, IMS_STORE_XML_MAX))
        return st_err(s, IMS_EINVAL, "invalid profile name or XML");
    int rc = st_exec(s, Q_PROFILE_UPSERT, NULL, "tt", name, xml);
    return rc ? st_fail(s, rc, "profile put") : 0;
}

int ims_store_profile_get(struct ims_store *s, ims_str name, struct ims_buf *xml)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!st_valid_name(name))
        return st_err(s, IMS_EINVAL, "invalid name");
    int rc = st_query(s, Q_PROFILE_GET, &stmt, "t", name);
    if (rc)
        return st_fail(s, rc, "profile get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        ims_str x = s->drv->col_text(stmt, 0);
        rc = x.len ? ims_buf_add_str(xml, x) : 0;
        if (rc)
            st_err(s, rc, "profile XML does not fit the buffer");
    } else if (rc == STORE_DONE) {
        rc = st_err(s, IMS_ENOENT, "no service profile %.*s", IMS_SF(name));
    } else {
        rc = st_fail(s, rc, "profile get");
    }
    s->drv->reset(stmt);
    return rc;
}

int ims_store_profile_del(struct ims_store *s, ims_str name)
{
    int64_t n = 0;
    s->errmsg[0] = '\0';
    if (!st_valid_name(name))
        return st_err(s, IMS_EINVAL, "invalid name");
    int rc = st_exec(s, Q_PROFILE_DELETE, &n, "t", name);
    if (rc)
        return write_fail(s, rc, "service profile", name, "is used by IMPUs");
    return n ? 0 : st_err(s, IMS_ENOENT, "no service profile %.*s", IMS_SF(name));
}

int ims_store_profile_list(struct ims_store *s, ims_store_profile_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    char name[IMS_STORE_NAME_MAX];
    int stop = 0;
    s->errmsg[0] = '\0';
    int rc = st_query(s, Q_PROFILE_LIST, &stmt, "");
    if (rc)
        return st_fail(s, rc, "profile list");
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        ST_COPY(s, stmt, 0, name);
        if ((stop = cb(ctx, name, (uint64_t)s->drv->col_int(stmt, 1))) != 0)
            break;
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, "profile list");
}
