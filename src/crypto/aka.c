#include "crypto/aka.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/encode.h"
#include "crypto/milenage.h"

static void sqn_put(uint64_t sqn, uint8_t b[6])
{
    for (int i = 5; i >= 0; i--) {
        b[i] = (uint8_t)sqn;
        sqn >>= 8;
    }
}

static uint64_t sqn_get(const uint8_t b[6])
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = v << 8 | b[i];
    return v;
}

int ims_aka_vector_make(const uint8_t k[16], const uint8_t opc[16], const uint8_t amf[2],
                        uint64_t sqn, const uint8_t *rand, struct ims_aka_vector *v)
{
    uint8_t sqnb[6], ak[6];
    int rc;
    if (sqn > IMS_AKA_SQN_MAX)
        return IMS_EINVAL;
    if (rand)
        memcpy(v->rand, rand, sizeof(v->rand));
    else if (RAND_bytes(v->rand, sizeof(v->rand)) != 1)
        return IMS_EBACKEND;
    sqn_put(sqn, sqnb);
    rc = ims_milenage_f1(k, opc, v->rand, sqnb, amf, v->autn + 8, NULL);
    if (rc == 0)
        rc = ims_milenage_f2345(k, opc, v->rand, v->xres, v->ck, v->ik, ak, NULL);
    if (rc) {
        ims_aka_vector_clear(v);
        return rc;
    }
    /* TS 33.102 §6.3.2: AUTN = SQN xor AK || AMF || MAC */
    for (int i = 0; i < 6; i++)
        v->autn[i] = sqnb[i] ^ ak[i];
    memcpy(v->autn + 6, amf, 2);
    v->sqn = sqn;
    ims_wipe(ak, sizeof(ak));
    return 0;
}

void ims_aka_vector_clear(struct ims_aka_vector *v)
{
    ims_wipe(v, sizeof(*v));
}

int ims_aka_sqn_next(uint64_t sqn_he, uint64_t *out)
{
    if (sqn_he > IMS_AKA_SQN_MAX)
        return IMS_EINVAL;
    uint64_t seq = ims_aka_sqn_seq(sqn_he);
    if (seq >= IMS_AKA_SEQ_MAX)
        return IMS_ELIMIT; /* Annex C.1.2: SEQ must not wrap */
    *out = ims_aka_sqn_make(seq + 1, ims_aka_sqn_ind(sqn_he) + 1);
    return 0;
}

int ims_aka_sqn_resync(uint64_t sqn_he, uint64_t sqn_ms, uint64_t *out)
{
    if (sqn_he > IMS_AKA_SQN_MAX || sqn_ms > IMS_AKA_SQN_MAX)
        return IMS_EINVAL;
    uint64_t seq_he = ims_aka_sqn_seq(sqn_he), seq_ms = ims_aka_sqn_seq(sqn_ms);
    uint64_t next = seq_he + 1;
    if (next > seq_ms && next - seq_ms <= IMS_AKA_DELTA)
        *out = sqn_he; /* §6.3.5 step 3: SQN_HE is in the correct range */
    else
        *out = ims_aka_sqn_make(seq_ms, ims_aka_sqn_ind(sqn_he)); /* step 5 */
    return 0;
}

static const uint8_t amf_star[2] = { 0, 0 }; /* TS 33.102 §6.3.3: dummy AMF */

int ims_aka_auts_verify(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                        const uint8_t auts[14], uint64_t *sqn_ms)
{
    uint8_t ak_star[6], sqnb[6], xmac_s[8];
    int rc = ims_milenage_f2345(k, opc, rand, NULL, NULL, NULL, NULL, ak_star);
    if (rc)
        return rc;
    for (int i = 0; i < 6; i++)
        sqnb[i] = auts[i] ^ ak_star[i];
    rc = ims_milenage_f1(k, opc, rand, sqnb, amf_star, NULL, xmac_s);
    if (rc == 0 && CRYPTO_memcmp(xmac_s, auts + 6, 8) != 0)
        rc = IMS_EPROTO;
    if (rc == 0)
        *sqn_ms = sqn_get(sqnb);
    ims_wipe(ak_star, sizeof(ak_star));
    ims_wipe(xmac_s, sizeof(xmac_s));
    return rc;
}

int ims_aka_auts_make(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                      uint64_t sqn_ms, uint8_t auts[14])
{
    uint8_t ak_star[6], sqnb[6];
    if (sqn_ms > IMS_AKA_SQN_MAX)
        return IMS_EINVAL;
    sqn_put(sqn_ms, sqnb);
    int rc = ims_milenage_f2345(k, opc, rand, NULL, NULL, NULL, NULL, ak_star);
    if (rc == 0)
        rc = ims_milenage_f1(k, opc, rand, sqnb, amf_star, NULL, auts + 6);
    if (rc == 0)
        for (int i = 0; i < 6; i++)
            auts[i] = sqnb[i] ^ ak_star[i];
    ims_wipe(ak_star, sizeof(ak_star));
    return rc;
}

int ims_aka_ue_check(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                     const uint8_t autn[16], uint64_t *sqn, uint8_t amf[2], uint8_t res[8],
                     uint8_t ck[16], uint8_t ik[16])
{
    uint8_t ak[6], sqnb[6], xmac[8];
    int rc = ims_milenage_f2345(k, opc, rand, res, ck, ik, ak, NULL);
    if (rc)
        return rc;
    for (int i = 0; i < 6; i++)
        sqnb[i] = autn[i] ^ ak[i];
    rc = ims_milenage_f1(k, opc, rand, sqnb, autn + 6, xmac, NULL);
    if (rc == 0 && CRYPTO_memcmp(xmac, autn + 8, 8) != 0)
        rc = IMS_EPROTO;
    if (rc == 0) {
        *sqn = sqn_get(sqnb);
        memcpy(amf, autn + 6, 2);
    } else {
        if (res)
            ims_wipe(res, 8);
        if (ck)
            ims_wipe(ck, 16);
        if (ik)
            ims_wipe(ik, 16);
    }
    ims_wipe(ak, sizeof(ak));
    return rc;
}

void ims_aka_nonce(const struct ims_aka_vector *v, char out[IMS_AKA_NONCE_LEN + 1])
{
    uint8_t b[32];
    memcpy(b, v->rand, 16);
    memcpy(b + 16, v->autn, 16);
    ims_b64_encode(b, sizeof(b), out);
}

int ims_aka_password_v2(const uint8_t *res, size_t res_len, const uint8_t ik[16],
                        const uint8_t ck[16], char out[IMS_AKA_V2_PASSWORD_LEN + 1])
{
    static const char label[] = "http-digest-akav2-password";
    uint8_t key[16 + 32], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    int rc = 0;
    if (res_len > 16)
        return IMS_EINVAL;
    memcpy(key, res, res_len);
    memcpy(key + res_len, ik, 16);
    memcpy(key + res_len + 16, ck, 16);
    if (!HMAC(EVP_md5(), key, (int)(res_len + 32), (const uint8_t *)label, sizeof(label) - 1,
              mac, &maclen) ||
        maclen != 16)
        rc = IMS_EBACKEND;
    else
        ims_b64_encode(mac, 16, out);
    ims_wipe(key, sizeof(key));
    ims_wipe(mac, sizeof(mac));
    return rc;
}
