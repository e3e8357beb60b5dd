/* aka.h - 3GPP AKA authentication vectors, SQN management and
 * re-synchronisation for IMS AKA (TS 33.102 §6.3, Annex C; TS 33.203),
 * and the Digest-AKA passwords of RFC 3310 (AKAv1) and RFC 4169 (AKAv2).
 *
 * Pure functions over caller-owned storage; randomness from OpenSSL's
 * RAND_bytes.  Secrets (K, OPc, XRES, CK, IK) are never logged; wipe a
 * vector with ims_aka_vector_clear() when done.
 *
 * SQN layout (Annex C.1.1, C.3.2): the 48-bit SQN is SEQ||IND, with a
 * 43-bit SEQ and a 5-bit IND (a = 32 slots in the USIM's array).  The HE
 * stores SQN_HE = SEQ_HE||IND_HE; every new vector gets SEQ_HE + 1 and the
 * next IND in cyclic order.  SEQ never wraps: at SEQ = 2^43 - 1 the
 * subscriber needs a new K (IMS_ELIMIT) - at one vector per second that is
 * 278,000 years away, so this is a guard against a corrupted row, not a
 * policy. */
#ifndef IMS_CRYPTO_AKA_H
#define IMS_CRYPTO_AKA_H

#include <stddef.h>
#include <stdint.h>

#define IMS_AKA_RAND_LEN 16
#define IMS_AKA_AUTN_LEN 16
#define IMS_AKA_AUTS_LEN 14
#define IMS_AKA_XRES_LEN 8 /* Milenage f2: 64-bit RES */
#define IMS_AKA_KEY_LEN 16 /* K, OPc, CK, IK */
#define IMS_AKA_AMF_LEN 2

#define IMS_AKA_IND_BITS 5
#define IMS_AKA_IND_MASK ((UINT64_C(1) << IMS_AKA_IND_BITS) - 1)
#define IMS_AKA_SQN_MAX ((UINT64_C(1) << 48) - 1)
#define IMS_AKA_SEQ_MAX ((UINT64_C(1) << 43) - 1)
/* Annex C.2.1: Δ, the largest jump ahead of SEQ_MS the USIM accepts. */
#define IMS_AKA_DELTA (UINT64_C(1) << 28)

/* base64(RAND||AUTN) without server data: 44 characters plus NUL. */
#define IMS_AKA_NONCE_LEN 44
/* base64 of a 16-byte HMAC-MD5: 24 characters plus NUL. */
#define IMS_AKA_V2_PASSWORD_LEN 24

/* One authentication vector (TS 33.102 §6.3.2).  Plain value type. */
struct ims_aka_vector {
    uint8_t rand[IMS_AKA_RAND_LEN];
    uint8_t autn[IMS_AKA_AUTN_LEN]; /* SQN xor AK || AMF || MAC-A */
    uint8_t xres[IMS_AKA_XRES_LEN];
    uint8_t ck[IMS_AKA_KEY_LEN];
    uint8_t ik[IMS_AKA_KEY_LEN];
    uint64_t sqn;                   /* the SQN inside AUTN (not secret) */
};

static inline uint64_t ims_aka_sqn_seq(uint64_t sqn)
{
    return sqn >> IMS_AKA_IND_BITS;
}
static inline unsigned ims_aka_sqn_ind(uint64_t sqn)
{
    return (unsigned)(sqn & IMS_AKA_IND_MASK);
}
static inline uint64_t ims_aka_sqn_make(uint64_t seq, unsigned ind)
{
    return seq << IMS_AKA_IND_BITS | (ind & IMS_AKA_IND_MASK);
}

/* Builds the vector for sqn: AUTN = (SQN xor AK) || AMF || MAC-A,
 * XRES = f2, CK = f3, IK = f4.  rand == NULL draws a fresh RAND from
 * RAND_bytes; tests pass a fixed one.
 * Returns 0, IMS_EINVAL (sqn wider than 48 bits), IMS_ENOMEM or
 * IMS_EBACKEND (OpenSSL failed, including the RNG). */
int ims_aka_vector_make(const uint8_t k[16], const uint8_t opc[16], const uint8_t amf[2],
                        uint64_t sqn, const uint8_t *rand, struct ims_aka_vector *out);
/* Wipes a vector (ims_wipe). */
void ims_aka_vector_clear(struct ims_aka_vector *v);

/* The SQN the HE uses after sqn_he: SEQ + 1, IND + 1 mod 32.
 * 0, IMS_EINVAL (sqn_he > 48 bits) or IMS_ELIMIT (SEQ exhausted). */
int ims_aka_sqn_next(uint64_t sqn_he, uint64_t *out);

/* TS 33.102 §6.3.5 and Annex C.3.4, after a verified AUTS carried SQN_MS:
 * if the next SQN from sqn_he would be accepted by the USIM (SEQ_HE + 1 >
 * SEQ_MS and no more than Δ ahead of it), SQN_HE stays; otherwise SEQ_HE
 * is set to SEQ_MS (IND_HE kept), so the next vector is SEQ_MS + 1.
 * Writes the new SQN_HE to *out.  0 or IMS_EINVAL (an input > 48 bits). */
int ims_aka_sqn_resync(uint64_t sqn_he, uint64_t sqn_ms, uint64_t *out);

/* HE side of re-synchronisation (TS 33.102 §6.3.3, §6.3.5): AUTS =
 * (SQN_MS xor AK*) || MAC-S with AK* = f5*(RAND) and MAC-S = f1*(SQN_MS ||
 * RAND || AMF*), AMF* = 0x0000.  Checks MAC-S in constant time and
 * returns SQN_MS in *sqn_ms.
 * 0, IMS_EPROTO (MAC-S wrong: the AUTS is not from this subscriber's USIM
 * for this RAND), IMS_ENOMEM or IMS_EBACKEND. */
int ims_aka_auts_verify(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                        const uint8_t auts[14], uint64_t *sqn_ms);

/* UE side, for test clients and the unit tests' USIM model. */
/* Builds AUTS for sqn_ms (the USIM's highest accepted SQN). */
int ims_aka_auts_make(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                      uint64_t sqn_ms, uint8_t auts[14]);
/* Checks AUTN's MAC-A (constant time) and recovers SQN and AMF; on success
 * also computes RES, CK and IK (any of them may be NULL).  SQN freshness is
 * the caller's policy (Annex C.2).
 * 0, IMS_EPROTO (MAC-A wrong), IMS_ENOMEM or IMS_EBACKEND. */
int ims_aka_ue_check(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                     const uint8_t autn[16], uint64_t *sqn, uint8_t amf[2], uint8_t res[8],
                     uint8_t ck[16], uint8_t ik[16]);

/* RFC 3310 §3.2: the nonce is base64(RAND || AUTN || server data); this
 * writes base64(RAND || AUTN) (44 characters) and a NUL into out. */
void ims_aka_nonce(const struct ims_aka_vector *v, char out[IMS_AKA_NONCE_LEN + 1]);

/* Digest-AKA passwords, the "password" of the RFC 2617 HA1 = H(user ":"
 * realm ":" password).
 * - AKAv1-MD5 (RFC 3310 §3.4): the password is RES itself, as raw bytes;
 *   use v->xres / IMS_AKA_XRES_LEN directly.
 * - AKAv2-MD5 (RFC 4169 §3): password = base64(PRF(RES||IK||CK,
 *   "http-digest-akav2-password")), PRF = HMAC-MD5 keyed with RES||IK||CK
 *   over the 26-byte string.  Writes 24 characters and a NUL.
 *   (pjsip, doubango and Clearwater key the HMAC the same way.)
 * 0, IMS_EINVAL (res_len > 16) or IMS_EBACKEND. */
int ims_aka_password_v2(const uint8_t *res, size_t res_len, const uint8_t ik[16],
                        const uint8_t ck[16], char out[IMS_AKA_V2_PASSWORD_LEN + 1]);

#endif
