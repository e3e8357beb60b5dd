/* auth.h - the authentication core of the HSS's Cx Multimedia-Auth
 * handling (TS 29.228 §6.3, TS 33.203): AKA vectors with SQNs allocated in
 * the store, AKA re-synchronisation from AUTS, and Digest HA1 look-up.
 * Pure logic over a struct ims_store (run it on a store thread, see
 * store/exec.h); the Diameter layer maps the results to AVPs and codes.
 *
 * Results: the function returns 0 when it could decide, with the decision
 * in *res; an IMS_E* error means the store (or OpenSSL) failed, which the
 * Diameter layer answers with DIAMETER_UNABLE_TO_COMPLY.  Secrets are
 * wiped from the stack before return; vectors are the caller's to wipe
 * (ims_aka_vector_clear). */
#ifndef IMS_HSS_AUTH_H
#define IMS_HSS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "store/store.h"

#define IMS_HSS_MAX_VECTORS 8 /* cap on SIP-Number-Auth-Items per request */

enum ims_hss_auth_result {
    IMS_HSS_AUTH_OK = 0,
    IMS_HSS_AUTH_USER_UNKNOWN,          /* DIAMETER_ERROR_USER_UNKNOWN */
    IMS_HSS_AUTH_SCHEME_NOT_SUPPORTED,  /* not allowed for this IMPI, or not provisioned:
                                           DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED */
    IMS_HSS_AUTH_REJECTED,              /* AUTS with a wrong MAC-S:
                                           DIAMETER_AUTHORIZATION_REJECTED */
};

/* n vectors (1..IMS_HSS_MAX_VECTORS; more are capped) for scheme
 * IMS_AUTH_AKAV1_MD5 or IMS_AUTH_AKAV2_MD5.  The n SQNs are allocated and
 * committed in one store transaction before any vector is computed, so no
 * SQN is ever returned twice, even across restarts.  *count gets the
 * number written to out.  0 (see *res), IMS_EINVAL (scheme not an AKA
 * scheme, n == 0), IMS_ELIMIT (SEQ exhausted), or a store error. */
int ims_hss_aka_vectors(struct ims_store *st, ims_str impi, unsigned scheme, size_t n,
                        struct ims_aka_vector *out, size_t *count,
                        enum ims_hss_auth_result *res);

/* The same in two steps, so that the thread holding the store connection
 * does only the store's part (the decryptions and Milenage are ~20% of an
 * AKA MAR's store time, bench/hss): ims_hss_aka_reserve, on the store's
 * thread, checks the IMPI and scheme and commits the n SQNs, keeping K and
 * OPc sealed in *plan; ims_hss_aka_make, on any thread, later, decrypts them
 * and computes the vectors.  SQNs reserved and never made into vectors
 * (a failure in between) are burned, never reused.  Wipe a plan with
 * ims_hss_aka_plan_clear. */
struct ims_hss_aka_plan {
    struct ims_aka_sealed sealed;
    size_t n;
    uint64_t sqn[IMS_HSS_MAX_VECTORS];
};
int ims_hss_aka_reserve(struct ims_store *st, ims_str impi, unsigned scheme, size_t n,
                        struct ims_hss_aka_plan *plan, enum ims_hss_auth_result *res);
/* plan->n vectors into out (*count of them).  0, IMS_EBACKEND (K or OPc
 * does not decrypt), or an error of ims_aka_vector_make. */
int ims_hss_aka_make(const struct ims_hss_aka_plan *plan, struct ims_aka_vector *out,
                     size_t *count);
void ims_hss_aka_plan_clear(struct ims_hss_aka_plan *plan);

/* Re-synchronisation (TS 33.102 §6.3.5): the S-CSCF sent back the RAND of
 * the rejected vector and the UE's AUTS (SIP-Authorization = RAND||AUTS).
 * MAC-S is checked before anything changes; then SQN_HE is moved to SQN_MS
 * if the USIM would refuse the next SQN (ims_aka_sqn_resync), in one store
 * transaction.  Follow with ims_hss_aka_vectors for the fresh vectors.
 * 0 (see *res: OK, USER_UNKNOWN, SCHEME_NOT_SUPPORTED, REJECTED), or a
 * store error. */
int ims_hss_aka_resync(struct ims_store *st, ims_str impi, const uint8_t rand[16],
                       const uint8_t auts[14], enum ims_hss_auth_result *res);

/* SIP Digest (TS 29.228 SIP-Digest-Authenticate): the HA1 for alg, and
 * the realm it was computed for (IMS_STORE_ID_MAX bytes), if the IMPI may
 * use Digest with alg and has an HA1 for it.  The caller wipes ha1.
 * 0 (see *res), or a store error. */
int ims_hss_digest_ha1(struct ims_store *st, ims_str impi, enum ims_digest_alg alg,
                       char ha1[IMS_DIGEST_HEX_MAX + 1], char *realm,
                       enum ims_hss_auth_result *res);

#endif
