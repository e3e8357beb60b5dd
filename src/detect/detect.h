/* detect.h - attack detectors at the SIP edge (docs/security.md
 * "Detectors"): scanner fingerprints, user sweeps and malformed bursts per
 * source address.  A detection emits a CADF audit event and, when
 * configured, puts the source in the dynamic deny group of the security
 * groups (acl.h ims_acl_deny_dynamic) for block_s seconds.
 *
 * Detectors:
 *  - scanner: the User-Agent contains one of the fingerprints
 *    (case-insensitive substrings; SIPVicious's "friendly-scanner" and the
 *    like by default);
 *  - sweep: more than sweep_users distinct user parts (REGISTER: To; other
 *    out-of-dialog requests: Request-URI, else To) in REGISTER, OPTIONS,
 *    INVITE, SUBSCRIBE or MESSAGE requests from one source within
 *    sweep_window_s (a fixed window that starts at the first request);
 *  - malformed: more than malformed_max messages the parser refused from
 *    one source within malformed_window_s.
 * After a detection a source gets no new event for block_s (at least 60 s)
 * seconds, so a scan produces one event per kind, not one per packet.
 *
 * Per-source state lives in a fixed table of max_sources entries in
 * shards, each with a mutex; a full shard reuses its least recently seen
 * entry, so a flood from spoofed sources recycles state instead of growing
 * it.  Addresses in `exempt` (the P-CSCF seen from the I-CSCF, monitoring)
 * are never tracked.
 *
 * Lifetime and threads:
 * 1. ims_detect_new() returns a detector owned by the caller;
 *    ims_detect_free() frees it when no thread can call into it.
 * 2. The process has one installed detector (ims_detect_install), which
 *    the proxy's hooks use from every worker thread; install NULL before
 *    freeing it. */
#ifndef IMS_DETECT_DETECT_H
#define IMS_DETECT_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sip_msg;
struct ims_detect;

#define IMS_DETECT_MAX_USERS 100    /* sweep_users cap: distinct users kept per source */
#define IMS_DETECT_MAX_FP 32        /* fingerprints */
#define IMS_DETECT_FP_LEN 32        /* bytes per fingerprint */
#define IMS_DETECT_MAX_EXEMPT 16    /* exempt prefixes */
#define IMS_DETECT_DEFAULT_FP                                                                \
    "friendly-scanner,sipvicious,sipcli,sundayddr,VaxSIPUserAgent,pplsip,iWar,sip-scan,"   \
    "SIPScan,smap,sipsak-scan,Cisco-SIPScan"

enum ims_detect_kind { IMS_DETECT_SCANNER = 0, IMS_DETECT_SWEEP, IMS_DETECT_MALFORMED,
                       IMS_DETECT_NKINDS };

struct ims_detect_cfg {
    const char *fingerprints;   /* comma list; NULL: IMS_DETECT_DEFAULT_FP; "" none */
    const char *exempt;         /* comma list of IPs or CIDRs; NULL: none */
    unsigned sweep_users;       /* 1..IMS_DETECT_MAX_USERS-1; 0 disables sweeps */
    unsigned sweep_window_s;
    unsigned malformed_max;     /* 0 disables the malformed detector */
    unsigned malformed_window_s;
    unsigned block_s;           /* seconds in the deny group; 0: detect and audit only */
    unsigned max_sources;       /* per-source state entries (>= 64) */
};

/* 0, IMS_EINVAL (bad fingerprint list, exempt prefix or range: err says
 * which), IMS_ENOMEM. */
int ims_detect_new(const struct ims_detect_cfg *cfg, struct ims_detect **out, char *err,
                   size_t errsz);
void ims_detect_free(struct ims_detect *d); /* NULL is a no-op */

/* Checks one request from src at now_ms (a monotonic clock in ms).
 * Returns the kind detected now, or -1.  With block_s, a detection has
 * already put src in the deny group when this returns. */
int ims_detect_check_request(struct ims_detect *d, const struct sip_msg *m,
                             const struct sockaddr *src, uint64_t now_ms);
/* Counts one message from src that the parser refused.  As above. */
int ims_detect_check_malformed(struct ims_detect *d, const struct sockaddr *src, uint64_t now_ms);
/* Sources tracked now and detections per kind since start (tests). */
size_t ims_detect_sources(struct ims_detect *d);
uint64_t ims_detect_count(struct ims_detect *d, enum ims_detect_kind k);

/* ---- the process-wide detector and the proxy's hooks ---- */
void ims_detect_install(struct ims_detect *d);
/* A new request from src, already parsed: true when the caller should drop
 * it (its source was just blocked).  No detector installed: false. */
bool ims_detect_request(const struct sip_msg *m, const struct sockaddr *src);
/* A message from src that the parser refused. */
void ims_detect_malformed(const struct sockaddr *src);

#endif
