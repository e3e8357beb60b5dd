#include "crypto/mac.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "base/alloc.h"
#include "base/err.h"

struct ims_mac {
    pthread_mutex_t mu; /* ctx is not thread-safe */
    EVP_MAC_CTX *ctx;   /* keyed: EVP_MAC_init with no key starts a tag over */
};

int ims_mac_new(const uint8_t *key, size_t key_len, struct ims_mac **out)
{
    *out = NULL;
    if (!key || key_len == 0 || key_len > 64)
        return IMS_EINVAL;
    struct ims_mac *m = ims_calloc(1, sizeof(*m));
    if (!m)
        return IMS_ENOMEM;
    int rc = IMS_EBACKEND;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (alg && (m->ctx = EVP_MAC_CTX_new(alg)) != NULL) {
        char digest[] = "SHA256";
        OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                OSSL_PARAM_construct_end() };
        if (EVP_MAC_init(m->ctx, key, key_len, params) == 1)
            rc = 0;
    }
    EVP_MAC_free(alg); /* the context holds its own reference */
    if (rc) {
        EVP_MAC_CTX_free(m->ctx);
        ims_free(m);
        return rc;
    }
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void ims_mac_free(struct ims_mac *m)
{
    if (!m)
        return;
    EVP_MAC_CTX_free(m->ctx);
    pthread_mutex_destroy(&m->mu);
    ims_free(m);
}

int ims_mac_sha256(struct ims_mac *m, const void *data, size_t len, uint8_t out[IMS_MAC_LEN])
{
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    bool ok = EVP_MAC_init(m->ctx, NULL, 0, NULL) == 1 &&
              EVP_MAC_update(m->ctx, data, len) == 1 &&
              EVP_MAC_final(m->ctx, out, &n, IMS_MAC_LEN) == 1 && n == IMS_MAC_LEN;
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        memset(out, 0, IMS_MAC_LEN);
        return IMS_EBACKEND;
    }
    return 0;
}
