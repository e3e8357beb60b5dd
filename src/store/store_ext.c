/* store_ext.c - store calls for the admin side (see store_ext.h). */
#include "store/store_ext.h"

#include <string.h>

#include "base/err.h"
#include "store/store_int.h"

_Static_assert((int)IMS_SECRET_K == (int)SEC_K && (int)IMS_SECRET_OPC == (int)SEC_OPC &&
                   (int)IMS_SECRET_HA1_MD5 == (int)SEC_HA1_MD5 &&
                   (int)IMS_SECRET_HA1_SHA256 == (int)SEC_HA1_SHA256 &&
                   (int)IMS_SECRET_HA1_SHA512_256 == (int)SEC_HA1_SHA512_256 &&
                   (int)IMS_SECRET_PASSWORD == (int)SEC_PASSWORD &&
                   (int)IMS_SECRET__N == (int)SEC__N,
               "store_ext.h secret order must match store_int.h");

/* ------------------------------------------------------ S-CSCF peers */

static bool valid_diamid(ims_str v)
{
    return v.len > 0 && st_valid_opt(v, IMS_STORE_DIAMID_MAX);
}

int ims_store_scscf_peer_put(struct ims_store *s, ims_str name, ims_str host, ims_str realm)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(name) || !valid_diamid(host) || !valid_diamid(realm))
        return st_err(s, IMS_EINVAL, "invalid S-CSCF name or Diameter identity");
    int rc = st_exec(s, Q_SCSCF_PEER_PUT, NULL, "ttt", name, host, realm);
    return rc ? st_fail(s, rc, "scscf peer put") : 0;
}

int ims_store_scscf_peer_get(struct ims_store *s, ims_str name, struct ims_scscf_peer *out)
{
    struct store_stmt *stmt;
    s->errmsg[0] = '\0';
    if (!st_valid_id(name))
        return st_err(s, IMS_EINVAL, "invalid S-CSCF name");
    int rc = st_query(s, Q_SCSCF_PEER_GET, &stmt, "t", name);
    if (rc)
        return st_fail(s, rc, "scscf peer get");
    rc = s->drv->step(stmt);
    if (rc == STORE_ROW) {
        memset(out, 0, sizeof(*out));
        ims_str_copy(name, out->name, sizeof(out->name));
        ST_COPY(s, stmt, 0, out->host);
        ST_COPY(s, stmt, 1, out->realm);
    }
    s->drv->reset(stmt);
    if (rc == STORE_DONE)
        return st_err(s, IMS_ENOENT, "no Diameter peer known for %.*s", IMS_SF(name));
    return rc == STORE_ROW ? 0 : st_fail(s, rc, "scscf peer get");
}

int ims_store_scscf_peer_list(struct ims_store *s, ims_store_scscf_peer_cb cb, void *ctx)
{
    struct store_stmt *stmt;
    struct ims_scscf_peer p;
    int stop = 0;
    s->errmsg[0] = '\0';
    int rc = st_query(s, Q_SCSCF_PEER_LIST, &stmt, "");
    if (rc)
        return st_fail(s, rc, "scscf peer list");
    while ((rc = s->drv->step(stmt)) == STORE_ROW) {
        memset(&p, 0, sizeof(p));
        ST_COPY(s, stmt, 0, p.name);
        ST_COPY(s, stmt, 1, p.host);
        ST_COPY(s, stmt, 2, p.realm);
        if ((stop = cb(ctx, &p)) != 0)
            break;
    }
    s->drv->reset(stmt);
    if (stop)
        return stop;
    return rc == STORE_DONE ? 0 : st_fail(s, rc, "scscf peer list");
}

/* ------------------------------------------------------- key repository */

struct ims_keyrepo *ims_store_keyrepo(const struct ims_store *s)
{
    return s->repo;
}

void ims_store_set_keyrepo(struct ims_store *s, struct ims_keyrepo *repo)
{
    s->repo = repo;
}

/* ------------------------------------------------------------- secrets */

int ims_store_secret_seal(struct ims_store *s, ims_str impi, enum ims_store_secret which,
                          const void *pt, size_t n, struct ims_buf *out)
{
    s->errmsg[0] = '\0';
    if (!st_valid_id(impi) || (unsigned)which >= IMS_SECRET__N)
        return st_err(s, IMS_EINVAL, "invalid identity or secret");
    return st_encrypt(s, impi, st_secret_field[which], pt, n, out);
}
