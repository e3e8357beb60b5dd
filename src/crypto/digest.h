/* digest.h - SIP/HTTP Digest computations (RFC 2617, RFC 7616, RFC 8760).
 *
 *   HA1      = H(username ":" realm ":" password)
 *   HA1-sess = H(HA1 ":" nonce ":" cnonce)                 (the "-sess" algorithms)
 *   HA2      = H(method ":" uri)                           (qop=auth or no qop)
 *   HA2      = H(method ":" uri ":" H(body))               (qop=auth-int)
 *   response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   (with qop)
 *   response = H(HA1 ":" nonce ":" HA2)                    (RFC 2069, no qop)
 *   userhash = H(username ":" realm)                       (RFC 7616 §3.4.4)
 *
 * H is MD5, SHA-256 or SHA-512/256 (FIPS 180-4 SHA-512/256, with its own
 * initial values; the §3.9.2 example printed in RFC 7616 was computed
 * with truncated SHA-512 and is corrected by an erratum).  Every H result
 * is written as lower-case hex into caller storage of IMS_DIGEST_HEX_MAX + 1
 * bytes, NUL-terminated.  Inputs are slices, used as raw bytes (a password
 * may be binary: Digest-AKAv1 uses RES as the password).  No allocation of
 * ours (OpenSSL allocates its digest context); nothing logged.
 *
 * Returns: 0, IMS_EINVAL (unknown algorithm), IMS_ENOMEM (OpenSSL could not
 * allocate) or IMS_EBACKEND (OpenSSL failed). */
#ifndef IMS_CRYPTO_DIGEST_H
#define IMS_CRYPTO_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

enum ims_digest_alg {
    IMS_DIGEST_MD5 = 0,
    IMS_DIGEST_SHA256 = 1,
    IMS_DIGEST_SHA512_256 = 2,
};
#define IMS_DIGEST_NALG 3
#define IMS_DIGEST_HEX_MAX 64 /* longest hex digest, without the NUL */

/* Parses an RFC 7616 §3.3 algorithm token: "MD5", "SHA-256",
 * "SHA-512-256", each optionally with "-sess" (*sess set), ASCII case
 * insensitive.  (AKAv1-MD5/AKAv2-MD5 are SIP's business: they use MD5.)
 * 0 or IMS_ENOENT (not one of these). */
int ims_digest_alg_parse(ims_str token, enum ims_digest_alg *alg, bool *sess);
/* "MD5", "SHA-256", "SHA-512-256". */
const char *ims_digest_alg_name(enum ims_digest_alg alg);
/* Hex length of the algorithm's output (32 or 64), 0 if unknown. */
size_t ims_digest_hex_len(enum ims_digest_alg alg);

int ims_digest_ha1(enum ims_digest_alg alg, ims_str user, ims_str realm, ims_str password,
                   char out[IMS_DIGEST_HEX_MAX + 1]);
int ims_digest_ha1_sess(enum ims_digest_alg alg, ims_str ha1, ims_str nonce, ims_str cnonce,
                        char out[IMS_DIGEST_HEX_MAX + 1]);
/* body == NULL: qop=auth (or none); otherwise qop=auth-int over *body. */
int ims_digest_ha2(enum ims_digest_alg alg, ims_str method, ims_str uri, const ims_str *body,
                   char out[IMS_DIGEST_HEX_MAX + 1]);
/* qop.len == 0 selects the RFC 2069 form (nc and cnonce ignored). */
int ims_digest_response(enum ims_digest_alg alg, ims_str ha1, ims_str nonce, ims_str nc,
                        ims_str cnonce, ims_str qop, ims_str ha2,
                        char out[IMS_DIGEST_HEX_MAX + 1]);
int ims_digest_userhash(enum ims_digest_alg alg, ims_str user, ims_str realm,
                        char out[IMS_DIGEST_HEX_MAX + 1]);

/* out = SHA-256(p[0, n)), with the algorithm fetched once per process
 * (alg_md, digest.c).  0 or IMS_EBACKEND. */
#define IMS_SHA256_LEN 32
int ims_sha256(const void *p, size_t n, uint8_t out[IMS_SHA256_LEN]);

/* Compares the expected response with the one a client sent, in time
 * independent of where they differ; hex case is ignored.  Different
 * lengths compare unequal (the length is not secret). */
bool ims_digest_equal(ims_str expected, ims_str got);
/* Constant-time equality of two n-byte buffers (CRYPTO_memcmp). */
bool ims_ct_eq(const void *a, const void *b, size_t n);

#endif
