#include "hss/auth.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

struct alloc_ctx {
    size_t n;
    uint64_t sqn[IMS_HSS_MAX_VECTORS];
};

/* Runs inside the store's write transaction: the next n SQNs after cur. */
static int alloc_sqns(uint64_t cur, uint64_t *next, void *arg)
{
    struct alloc_ctx *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        int rc = ims_aka_sqn_next(cur, &cur);
        if (rc)
            return rc;
        a->sqn[i] = cur;
    }
    *next = cur;
    return 0;
}

int ims_hss_aka_reserve(struct ims_store *st, ims_str impi, unsigned scheme, size_t n,
                        struct ims_hss_aka_plan *plan, enum ims_hss_auth_result *res)
{
    struct alloc_ctx a = { 0 };
    memset(plan, 0, sizeof(*plan));
    if ((scheme != IMS_AUTH_AKAV1_MD5 && scheme != IMS_AUTH_AKAV2_MD5) || n == 0)
        return IMS_EINVAL;
    a.n = n > IMS_HSS_MAX_VECTORS ? IMS_HSS_MAX_VECTORS : n;
    int rc = ims_store_aka_get_sealed(st, impi, &plan->sealed);
    if (rc == IMS_ENOENT) {
        *res = IMS_HSS_AUTH_USER_UNKNOWN;
        return 0;
    }
    if (rc)
        return rc;
    if (!(plan->sealed.schemes & scheme) || !plan->sealed.has_aka) {
        LOG_N("hss", "event=auth_scheme_refused impi=%.*s scheme=0x%x allowed=0x%x aka=%d",
              IMS_SF(impi), scheme, plan->sealed.schemes, plan->sealed.has_aka);
        ims_hss_aka_plan_clear(plan);
        *res = IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED;
        return 0;
    }
    /* SQNs first, committed (or from a block whose end the row already
     * holds): a crash after this burns them, never reuses. */
    rc = ims_store_sqn_take(st, impi, alloc_sqns, &a, NULL);
    if (rc) {
        ims_hss_aka_plan_clear(plan);
        return rc == IMS_ENOENT ? IMS_EBACKEND : rc; /* deleted meanwhile */
    }
    plan->n = a.n;
    memcpy(plan->sqn, a.sqn, sizeof(plan->sqn));
    LOG_I("hss", "event=aka_vectors impi=%.*s n=%zu sqn_first=%llu sqn_last=%llu", IMS_SF(impi),
          a.n, (unsigned long long)a.sqn[0], (unsigned long long)a.sqn[a.n - 1]);
    *res = IMS_HSS_AUTH_OK;
    return 0;
}

int ims_hss_aka_make(const struct ims_hss_aka_plan *plan, struct ims_aka_vector *out,
                     size_t *count)
{
    uint8_t k[16], opc[16];
    *count = 0;
    int rc = ims_store_aka_unseal(&plan->sealed, k, opc);
    for (size_t i = 0; rc == 0 && i < plan->n; i++) {
        rc = ims_aka_vector_make(k, opc, plan->sealed.amf, plan->sqn[i], NULL, &out[i]);
        if (rc == 0)
            (*count)++;
    }
    ims_wipe(k, sizeof(k));
    ims_wipe(opc, sizeof(opc));
    if (rc) {
        for (size_t i = 0; i < *count; i++)
            ims_aka_vector_clear(&out[i]);
        *count = 0;
    }
    return rc;
}

void ims_hss_aka_plan_clear(struct ims_hss_aka_plan *plan)
{
    ims_wipe(plan, sizeof(*plan));
}

int ims_hss_aka_vectors(struct ims_store *st, ims_str impi, unsigned scheme, size_t n,
                        struct ims_aka_vector *out, size_t *count,
                        enum ims_hss_auth_result *res)
{
    struct ims_hss_aka_plan plan;
    *count = 0;
    int rc = ims_hss_aka_reserve(st, impi, scheme, n, &plan, res);
    if (rc == 0 && *res == IMS_HSS_AUTH_OK)
        rc = ims_hss_aka_make(&plan, out, count);
    ims_hss_aka_plan_clear(&plan);
    return rc;
}

struct resync_ctx {
    uint64_t sqn_ms;
    uint64_t old;
};

static int resync_sqn(uint64_t cur, uint64_t *next, void *arg)
{
    struct resync_ctx *r = arg;
    r->old = cur;
    return ims_aka_sqn_resync(cur, r->sqn_ms, next);
}

int ims_hss_aka_resync(struct ims_store *st, ims_str impi, const uint8_t rand[16],
                       const uint8_t auts[14], enum ims_hss_auth_result *res)
{
    struct ims_auth_data ad;
    struct resync_ctx r = { 0 };
    uint64_t now = 0;
    int rc = ims_store_auth_get_fields(st, impi, IMS_AUTH_F_AKA | IMS_AUTH_F_NO_SQN, &ad);
    if (rc == IMS_ENOENT) {
        *res = IMS_HSS_AUTH_USER_UNKNOWN;
        return 0;
    }
    if (rc)
        return rc;
    if (!ad.has_aka || !(ad.schemes & (IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5))) {
        ims_auth_data_clear(&ad);
        *res = IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED;
        return 0;
    }
    /* MAC-S before anything else: an AUTS we cannot verify changes nothing. */
    rc = ims_aka_auts_verify(ad.k, ad.opc, rand, auts, &r.sqn_ms);
    ims_auth_data_clear(&ad);
    if (rc == IMS_EPROTO) {
        LOG_W("hss", "event=aka_resync_rejected impi=%.*s reason=mac_s", IMS_SF(impi));
        *res = IMS_HSS_AUTH_REJECTED;
        return 0;
    }
    if (rc)
        return rc;
    rc = ims_store_sqn_update(st, impi, resync_sqn, &r, &now);
    if (rc)
        return rc == IMS_ENOENT ? IMS_EBACKEND : rc;
    LOG_N("hss", "event=aka_resync impi=%.*s sqn_he=%llu sqn_ms=%llu sqn_now=%llu", IMS_SF(impi),
          (unsigned long long)r.old, (unsigned long long)r.sqn_ms, (unsigned long long)now);
    *res = IMS_HSS_AUTH_OK;
    return 0;
}

int ims_hss_digest_ha1(struct ims_store *st, ims_str impi, enum ims_digest_alg alg,
                       char ha1[IMS_DIGEST_HEX_MAX + 1], char *realm,
                       enum ims_hss_auth_result *res)
{
    static const unsigned scheme_of[IMS_DIGEST_NALG] = {
        IMS_AUTH_DIGEST_MD5, IMS_AUTH_DIGEST_SHA256, IMS_AUTH_DIGEST_SHA512_256
    };
    struct ims_auth_data ad;
    if ((unsigned)alg >= IMS_DIGEST_NALG)
        return IMS_EINVAL;
    /* one decryption: the HA1 asked for, not K, OPc and the other two */
    int rc = ims_store_auth_get_fields(st, impi, IMS_AUTH_F_HA1(alg) | IMS_AUTH_F_NO_SQN, &ad);
    if (rc == IMS_ENOENT) {
        *res = IMS_HSS_AUTH_USER_UNKNOWN;
        return 0;
    }
    if (rc)
        return rc;
    if (!(ad.schemes & scheme_of[alg]) || !ad.has_ha1[alg]) {
        *res = IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED;
    } else {
        memcpy(ha1, ad.ha1[alg], sizeof(ad.ha1[alg]));
        memcpy(realm, ad.realm, IMS_STORE_ID_MAX);
        *res = IMS_HSS_AUTH_OK;
    }
    ims_auth_data_clear(&ad);
    return 0;
}
