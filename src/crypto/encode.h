/* encode.h - hex and base64 for the crypto and store modules.
 *
 * All functions write into caller storage, never allocate, and never read
 * past the given lengths (inputs are not NUL-terminated).  Decoders reject
 * anything malformed instead of skipping it: these parse ciphertexts from
 * the database and values from Diameter peers. */
#ifndef IMS_CRYPTO_ENCODE_H
#define IMS_CRYPTO_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

/* Characters needed to base64-encode n bytes (with padding, no NUL). */
#define IMS_B64_LEN(n) ((((n) + 2) / 3) * 4)

/* Lower-case hex of p[0..n) into out, which must hold 2n+1 bytes (NUL
 * added).  Returns 2n. */
size_t ims_hex_encode(const void *p, size_t n, char *out);
/* Decodes exactly outlen bytes from hex (either case); hex.len must be
 * 2*outlen.  Returns 0 or IMS_EPROTO. */
int ims_hex_decode(ims_str hex, void *out, size_t outlen);

/* RFC 4648 §4 base64 with padding into out (size >= IMS_B64_LEN(n)+1, NUL
 * added).  Returns the length written. */
size_t ims_b64_encode(const void *p, size_t n, char *out);
/* Decodes padded RFC 4648 §4 base64 (no whitespace) into out (cap bytes).
 * *outlen gets the decoded length.  Returns 0, IMS_EPROTO (bad alphabet,
 * padding or length) or IMS_ELIMIT (cap too small). */
int ims_b64_decode(ims_str b64, void *out, size_t cap, size_t *outlen);

#endif
