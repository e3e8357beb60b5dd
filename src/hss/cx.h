/* cx.h - the HSS's Cx (TS 29.228 §6, TS 29.229) and Sh (TS 29.328 §6,
 * TS 29.329) request handling, and the SLF (Dx) redirect: pure functions
 * from a decoded request (dia/msgs.h) and a store to an answer.
 *
 * They run on a store thread (store/exec.h), never on a loop or on a
 * freeDiameter thread; they hold no state between calls, so tests call
 * them directly over a temporary SQLite store.  A handler returns 0 with
 * the answer in res->ans (some outcome: success or a Diameter error
 * code), or an IMS_E* error when the store failed, which the caller
 * answers DIAMETER_UNABLE_TO_COMPLY.
 *
 * An AKA MAR leaves its vectors to ims_hss_result_finish(), which every
 * caller runs after the handler, off the store connection (hss/auth.h:
 * the handler reserves the SQNs, the finish decrypts K and OPc and runs
 * Milenage).
 *
 * Ownership: res->ans's slices point into res (its buffers) and into the
 * request (echoed identities): use the answer while both live, then
 * ims_hss_result_clear() - it wipes the secrets (XRES, CK, IK, HA1). */
#ifndef IMS_HSS_CX_H
#define IMS_HSS_CX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "dia/msgs.h"
#include "hss/auth.h"
#include "store/store.h"

struct ims_store;

/* Operator policy the handlers apply (from [hss] / [diameter]). */
struct hss_policy {
    const char *realm;            /* the home network (Visited-Network-Identifier) */
    const char *visited_networks; /* comma list of globs allowed to roam from, or NULL */
    const char *default_scscf;    /* UAA Server-Name when none is assigned, or NULL */
};

struct hss_item_store {
    uint8_t authenticate[32]; /* RAND || AUTN */
    uint8_t xres[16];
    uint8_t ck[16], ik[16];
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    char realm[IMS_STORE_ID_MAX];
};

struct hss_result {
    struct dia_ans ans;
    struct ims_buf xml; /* User-Data / Sh-Data */
    /* for the caller: the S-CSCF this request assigned (learn its
     * Origin-Host for RTR/PPR), "" if none */
    char assigned_scscf[IMS_STORE_ID_MAX];
    /* an AKA MAR's vectors, reserved and not yet made (ims_hss_result_finish) */
    bool aka_pending;
    const char *aka_scheme; /* "Digest-AKAv1-MD5" or "Digest-AKAv2-MD5" */
    struct ims_hss_aka_plan aka;
    /* items[] and ans.items[] from 0 up to this may hold a secret (an HA1,
     * a CK, IK or XRES): what ims_hss_result_clear wipes; set before the
     * first byte of one is written */
    size_t items_used;
    /* Storage the answer's slices point into: from server_name on, not
     * zeroed by ims_hss_result_init (9 KiB a request mostly leaves alone);
     * only what a slice of ans covers is ever read. */
    char server_name[IMS_STORE_ID_MAX];
    char names[CX_MAX_NAMES][IMS_STORE_ID_MAX];
    char assoc[CX_MAX_ASSOC][IMS_STORE_ID_MAX];
    char charging[4][IMS_STORE_ID_MAX];
    struct hss_item_store items[CX_MAX_ITEMS];
};

/* Zeroes r up to its storage (above), which it leaves as it is. */
void ims_hss_result_init(struct hss_result *r);
void ims_hss_result_clear(struct hss_result *r);
/* Completes what the handler left for after the store (an AKA MAR's
 * vectors into res->ans; on failure res->ans becomes
 * DIAMETER_UNABLE_TO_COMPLY).  Any thread; a no-op when nothing is left.
 * 0 or the error that made the answer UNABLE_TO_COMPLY. */
int ims_hss_result_finish(struct hss_result *r);

/* TS 29.228 §6.1.1 User registration status query. */
int ims_hss_uar(struct ims_store *st, const struct hss_policy *pol, const struct cx_uar *rq,
                struct hss_result *res);
/* TS 29.228 §6.3 Authentication (MAR): Digest and AKA vectors, resync,
 * and the S-CSCF name stored for the registration in progress. */
int ims_hss_mar(struct ims_store *st, const struct hss_policy *pol, const struct cx_mar *rq,
                struct hss_result *res);
/* ks_creds (issue 5 part 5): the MAR of a Keystone-backed IMPI, its Digest
 * HA1s given by ks (fetched from Keystone, never in the store); ks->state
 * other than HSS_KS_FOUND answers DIAMETER_ERROR_USER_UNKNOWN, an AKA
 * scheme DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED.  ims_hss_mar is this
 * with ks NULL (the store's secrets). */
struct hss_ks_secret;
int ims_hss_mar_ext(struct ims_store *st, const struct hss_policy *pol, const struct cx_mar *rq,
                    const struct hss_ks_secret *ks, struct hss_result *res);
/* TS 29.228 §6.1.2 S-CSCF registration/deregistration notification. */
int ims_hss_sar(struct ims_store *st, const struct hss_policy *pol, const struct cx_sar *rq,
                struct hss_result *res);
/* TS 29.228 §6.1.4 User location query. */
int ims_hss_lir(struct ims_store *st, const struct hss_policy *pol, const struct cx_lir *rq,
                struct hss_result *res);

/* TS 29.328 §6.1.1 Sh-Pull (UDR) and §6.1.2 Sh-Update (PUR). */
int ims_hss_udr(struct ims_store *st, const struct sh_udr *rq, struct hss_result *res);
int ims_hss_pur(struct ims_store *st, const struct sh_pur *rq, struct hss_result *res);

/* The IMSSubscription User-Data of the implicit registration set of impu
 * (impi as PrivateID), appended to xml.  Used by SAR and by PPR.
 * 0, IMS_ENOENT, IMS_ELIMIT, or a store error. */
int ims_hss_user_data(struct ims_store *st, ims_str impi, ims_str impu, struct ims_buf *xml);

/* ---- SLF (Dx) ---- */

struct hss_slf_route {
    const char *pattern; /* '*' glob over the identity (User-Name or Public-Identity) */
    const char *hss;     /* Diameter identity of the HSS that holds it */
};

/* The SLF's answer for any Cx/Sh request: DIAMETER_REDIRECT_INDICATION with
 * Redirect-Host "aaa://<hss>" and Redirect-Host-Usage ALL_USER for the
 * first route matching impi (else impu), or DIAMETER_ERROR_USER_UNKNOWN.
 * Pure; no store.  res->ans slices point into res. */
void ims_hss_slf(const struct hss_slf_route *routes, size_t n, ims_str impi, ims_str impu,
                 struct hss_result *res);

#endif
