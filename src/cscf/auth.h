/* auth.h - the S-CSCF's authentication state: challenges it sent (per
 * private identity), their nonces, nonce counts and expiry, wrong-password
 * counting, and the checks of a REGISTER's credentials against them.
 *
 *   SIP Digest (RFC 7616, RFC 8760): HA1 from the MAA; qop=auth; MD5,
 *     SHA-256 (and SHA-512-256).  The nonce is base64(expiry || unique ||
 *     HMAC-SHA-256(process key, expiry || unique || IMPI)[0..15]), unique
 *     a random per-process salt and a count (auth.c): bound to
 *     the IMPI it was issued to, and recognisable as ours and expired (stale)
 *     even after the stored challenge is gone.
 *   Digest AKAv1-MD5 (RFC 3310, TS 33.203): nonce = base64(RAND || AUTN);
 *     the response is a Digest-MD5 response with RES as the password, checked
 *     against XRES from the MAA; "auts" asks for re-synchronisation.
 *
 * Every challenge is stored with its secret side (HA1 or XRES), its realm
 * and algorithm, its expiry (nonce_ttl) and the last nonce count seen: a
 * nonce is valid only for the IMPI, realm and algorithm it was issued with,
 * and an nc not above the last one is a replay.  A credential without qop
 * (RFC 2069 form) is accepted once per nonce.  Up to 4 challenges per IMPI
 * are kept (the oldest makes room).
 *
 * Shared by every worker (table.h: sharded, locked); nothing here blocks or
 * logs a secret.  Secrets are wiped (ims_wipe) when a challenge goes. */
#ifndef IMS_CSCF_AUTH_H
#define IMS_CSCF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "crypto/digest.h"
#include "sip/msg.h"

#define IMS_AUTH_MAX_CHALLENGES 4
#define IMS_AUTH_NONCE_MAX 64
#define IMS_AUTH_REALM_MAX 256

enum ims_auth_kind { IMS_AUTHK_DIGEST = 0, IMS_AUTHK_AKAV1 = 1 };

/* The secret side of one challenge (from an MAA item). */
struct ims_auth_vector {
    enum ims_auth_kind kind;
    enum ims_digest_alg alg;              /* digest: the HA1's algorithm */
    char realm[IMS_AUTH_REALM_MAX];
    char ha1[IMS_DIGEST_HEX_MAX + 1];     /* digest, lower-case hex */
    uint8_t rand[16], autn[16];           /* AKA */
    uint8_t xres[16];                     /* AKA: 4..16 bytes */
    size_t xres_len;
};

/* Wipes a vector. */
void ims_auth_vector_clear(struct ims_auth_vector *v);

struct ims_auth_cfg {
    unsigned nonce_ttl_s;   /* > 0 */
    unsigned max_failures;  /* wrong responses in a row before TOO_MANY (>= 1) */
    size_t max_entries;     /* IMPIs with state */
    unsigned nshards;
};

struct ims_auth;

/* 0, IMS_EINVAL, IMS_ENOMEM, IMS_EBACKEND (no randomness for the key). */
int ims_auth_new(const struct ims_auth_cfg *cfg, struct ims_auth **out);
void ims_auth_free(struct ims_auth *a); /* NULL is a no-op */

/* Records a challenge for impi and appends its header line to out:
 * "WWW-Authenticate: Digest realm="..", nonce="..", algorithm=SHA-256,
 * qop="auth"[, stale=true]\r\n".  now_ms is wall-clock milliseconds.
 * 0, IMS_EINVAL (v's realm is empty or holds '"', '\\' or a control byte),
 * IMS_ELIMIT (the store or out is full), IMS_ENOMEM, IMS_EBACKEND (RNG). */
int ims_auth_challenge(struct ims_auth *a, ims_str impi, const struct ims_auth_vector *v,
                       bool stale, int64_t now_ms, struct ims_buf *out);

enum ims_auth_verdict {
    IMS_AUTH_OK = 0,
    IMS_AUTH_NO_CHALLENGE, /* the nonce is not (or no longer) one of ours: challenge */
    IMS_AUTH_STALE,        /* ours but expired: challenge with stale=true */
    IMS_AUTH_REPLAY,       /* nonce count not above the last one: challenge */
    IMS_AUTH_WRONG,        /* wrong response: challenge again (counted) */
    IMS_AUTH_TOO_MANY,     /* wrong, and max_failures reached: 403 (count reset) */
    IMS_AUTH_RESYNC,       /* AKA auts: MAR with RAND || AUTS (rs), then challenge */
    IMS_AUTH_MALFORMED,    /* credentials we cannot check (bad nc, auts, qop): 400 */
};

struct ims_auth_resync {
    uint8_t rand[16];
    uint8_t auts[14];
};

/* Checks cred (one parsed Authorization value; username is the IMPI) for
 * method.  A verdict other than OK leaves the challenge in place (a replay
 * or a wrong response does not burn it: the UE may retry with a higher nc)
 * except TOO_MANY and RESYNC, which drop every challenge of the IMPI.
 * *kind (may be NULL) gets the challenge's kind when one was found.
 * 0 with *v set, or IMS_ENOMEM/IMS_EBACKEND (could not compute). */
int ims_auth_verify(struct ims_auth *a, const struct sip_auth *cred, ims_str method,
                    int64_t now_ms, enum ims_auth_verdict *v, struct ims_auth_resync *rs,
                    enum ims_auth_kind *kind);

/* Forgets impi's challenges and failures (after a successful registration
 * that should not be re-usable, or an administrative reset). */
void ims_auth_forget(struct ims_auth *a, ims_str impi);

/* Drops challenges expired for more than nonce_ttl (they no longer answer
 * stale), and IMPIs left with nothing, in shards first, first + step, ... */
void ims_auth_expire(struct ims_auth *a, unsigned first, unsigned step, int64_t now_ms);

size_t ims_auth_count(const struct ims_auth *a);

/* ---- pure pieces, exposed for tests ---- */

/* The response a client should send for vector v (digest: HA1 from v; AKA:
 * HA1 = MD5(username:realm:XRES)) to a challenge with nonce, for cred's
 * uri, qop, nc and cnonce.  0, IMS_EINVAL (unknown algorithm), IMS_ENOMEM,
 * IMS_EBACKEND. */
int ims_auth_expected(const struct ims_auth_vector *v, ims_str username, ims_str method,
                      ims_str uri, ims_str nonce, ims_str nc, ims_str cnonce, ims_str qop,
                      char out[IMS_DIGEST_HEX_MAX + 1]);

/* Digest nonces: make one for impi valid until expires_s (wall-clock
 * seconds) under key (crypto/mac.h); check one: 0 = ours for impi (then
 * *expires_s is set), IMS_ENOENT = not ours (or not for this IMPI). */
struct ims_mac;
int ims_auth_nonce_make(struct ims_mac *key, ims_str impi, int64_t expires_s,
                        char out[IMS_AUTH_NONCE_MAX + 1]);
int ims_auth_nonce_check(struct ims_mac *key, ims_str impi, ims_str nonce, int64_t *expires_s);

#endif
