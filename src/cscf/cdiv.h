/* cdiv.h - the terminating supplementary services the S-CSCF applies from
 * the users' Ut settings (src/ut, docs/ut.md):
 *   - incoming call barring (TS 24.611 ICB): every terminating request gets
 *     603 Decline; anonymous communication rejection (TS 24.611 ACR, RFC
 *     5079): an anonymous caller gets 433 Anonymity Disallowed;
 *   - communication diversion unconditional (TS 24.604 CFU): the request is
 *     retargeted to the forwarding URI with a Diversion header (RFC 5806)
 *     and sent on like an originating request (home target: the I-CSCF).
 *
 * The settings live in a process-wide registry keyed by IMPU, filled by the
 * Ut module (from the HSS's Sh repository data at start, then on every
 * successful PUT), read by the S-CSCF's workers on each terminating request
 * (one shard lock, a copy out: no store access, no I/O on the SIP path).
 *
 * Lifetime rules:
 * 1. ims_cdiv_init() runs before any worker thread starts and
 *    ims_cdiv_fini() after every worker thread was joined (the server's
 *    start and free); in between every call is thread-safe.
 * 2. Without init (no Ut interface in this process) the registry is empty:
 *    the S-CSCF applies nothing (four processes: see docs/ut.md). */
#ifndef IMS_CSCF_CDIV_H
#define IMS_CSCF_CDIV_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"

#define IMS_CDIV_URI_MAX 256

/* What the S-CSCF applies for one IMPU. */
struct ims_cdiv {
    char cfu[IMS_CDIV_URI_MAX]; /* forward unconditionally to this URI; "" = off */
    bool icb_all;               /* bar every incoming request */
    bool icb_anonymous;         /* bar anonymous callers */
};

/* Creates the registry for at most max_entries IMPUs.  0, IMS_ENOMEM,
 * IMS_EINVAL (called twice). */
int ims_cdiv_init(size_t max_entries);
/* Frees it.  Idempotent. */
void ims_cdiv_fini(void);

/* Sets impu's settings (copied); c NULL, or nothing active in it, removes
 * the entry.  0, IMS_ENOENT (no registry), IMS_ELIMIT (max_entries),
 * IMS_EINVAL (impu too long), IMS_ENOMEM. */
int ims_cdiv_put(ims_str impu, const struct ims_cdiv *c);
/* Copies impu's settings into *out.  0, IMS_ENOENT (none, or no registry). */
int ims_cdiv_get(ims_str impu, struct ims_cdiv *out);

/* ---- the S-CSCF side (session.c) ---- */
struct cscf_worker;
struct proxy_req;
struct sip_msg;

/* Terminating processing of served (canonical IMPU, cscf_impu_of) before
 * its iFCs: true when the request was answered (barred) or retargeted
 * (CFU) here, false to go on as usual. */
bool cscf_cdiv_term(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m,
                    const char *served);

#endif
