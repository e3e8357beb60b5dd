#include "crypto/milenage.h"

#include <string.h>

#include <openssl/evp.h>

#include "base/alloc.h"
#include "base/err.h"

/* One AES-128 key schedule for the duration of a call. */
struct kernel {
    EVP_CIPHER_CTX *ctx;
};

static int kernel_init(struct kernel *kn, const uint8_t k[16])
{
    kn->ctx = EVP_CIPHER_CTX_new();
    if (!kn->ctx)
        return IMS_ENOMEM;
    if (EVP_EncryptInit_ex(kn->ctx, EVP_aes_128_ecb(), NULL, k, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(kn->ctx, 0) != 1) {
        EVP_CIPHER_CTX_free(kn->ctx); /* also wipes the key schedule */
        kn->ctx = NULL;
        return IMS_EBACKEND;
    }
    return 0;
}

static void kernel_done(struct kernel *kn)
{
    EVP_CIPHER_CTX_free(kn->ctx);
    kn->ctx = NULL;
}

/* out = E_K(in); in and out may alias. */
static int kernel_enc(struct kernel *kn, const uint8_t in[16], uint8_t out[16])
{
    int len = 0;
    if (EVP_EncryptUpdate(kn->ctx, out, &len, in, 16) != 1 || len != 16)
        return IMS_EBACKEND;
    return 0;
}

static void xor16(uint8_t *dst, const uint8_t *a, const uint8_t *b)
{
    for (int i = 0; i < 16; i++)
        dst[i] = a[i] ^ b[i];
}

/* Cyclic left rotation by r bits; every r in TS 35.206 is a whole byte. */
static void rot16(uint8_t *dst, const uint8_t *src, int rbits)
{
    int rb = rbits / 8;
    for (int i = 0; i < 16; i++)
        dst[i] = src[(i + rb) % 16];
}

int ims_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
    struct kernel kn;
    uint8_t t[16];
    int rc = kernel_init(&kn, k);
    if (rc)
        return rc;
    rc = kernel_enc(&kn, op, t);
    if (rc == 0)
        xor16(opc, t, op);
    kernel_done(&kn);
    ims_wipe(t, sizeof(t));
    return rc;
}

int ims_milenage_f1(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                    const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8],
                    uint8_t mac_s[8])
{
    struct kernel kn;
    uint8_t temp[16], in1[16], t[16], out[16];
    int rc = kernel_init(&kn, k);
    if (rc)
        return rc;

    xor16(t, rand, opc);
    rc = kernel_enc(&kn, t, temp); /* TEMP = E_K(RAND xor OPc) */
    if (rc)
        goto out;

    memcpy(in1, sqn, 6);
    memcpy(in1 + 6, amf, 2);
    memcpy(in1 + 8, sqn, 6);
    memcpy(in1 + 14, amf, 2);

    /* OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc; r1 = 64, c1 = 0 */
    xor16(t, in1, opc);
    rot16(out, t, 64);
    xor16(t, out, temp);
    rc = kernel_enc(&kn, t, out);
    if (rc)
        goto out;
    xor16(out, out, opc);
    if (mac_a)
        memcpy(mac_a, out, 8);
    if (mac_s)
        memcpy(mac_s, out + 8, 8);
out:
    kernel_done(&kn);
    ims_wipe(temp, sizeof(temp));
    ims_wipe(t, sizeof(t));
    ims_wipe(out, sizeof(out));
    ims_wipe(in1, sizeof(in1));
    return rc;
}

/* OUTn = E_K(rot(TEMP xor OPc, r) xor c) xor OPc, c in the last byte. */
static int out_block(struct kernel *kn, const uint8_t temp[16], const uint8_t opc[16], int r,
                     uint8_t c, uint8_t out[16])
{
    uint8_t t[16], u[16];
    xor16(t, temp, opc);
    rot16(u, t, r);
    u[15] ^= c;
    int rc = kernel_enc(kn, u, out);
    if (rc == 0)
        xor16(out, out, opc);
    ims_wipe(t, sizeof(t));
    ims_wipe(u, sizeof(u));
    return rc;
}

int ims_milenage_f2345(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                       uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6],
                       uint8_t ak_star[6])
{
    struct kernel kn;
    uint8_t temp[16], t[16], out[16];
    int rc = kernel_init(&kn, k);
    if (rc)
        return rc;

    xor16(t, rand, opc);
    rc = kernel_enc(&kn, t, temp);
    if (rc)
        goto out;

    if (res || ak) { /* f2 and f5: r2 = 0, c2 = 1 */
        if ((rc = out_block(&kn, temp, opc, 0, 1, out)))
            goto out;
        if (res)
            memcpy(res, out + 8, 8);
        if (ak)
            memcpy(ak, out, 6);
    }
    if (ck) { /* f3: r3 = 32, c3 = 2 */
        if ((rc = out_block(&kn, temp, opc, 32, 2, out)))
            goto out;
        memcpy(ck, out, 16);
    }
    if (ik) { /* f4: r4 = 64, c4 = 4 */
        if ((rc = out_block(&kn, temp, opc, 64, 4, out)))
            goto out;
        memcpy(ik, out, 16);
    }
    if (ak_star) { /* f5*: r5 = 96, c5 = 8 */
        if ((rc = out_block(&kn, temp, opc, 96, 8, out)))
            goto out;
        memcpy(ak_star, out, 6);
    }
out:
    kernel_done(&kn);
    ims_wipe(temp, sizeof(temp));
    ims_wipe(t, sizeof(t));
    ims_wipe(out, sizeof(out));
    return rc;
}
