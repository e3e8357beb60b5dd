/* privacy.h - the privacy service at the trust-domain boundary (RFC 3323
 * §5, RFC 3325 §5 and §9.3, TS 24.229 §4.4, §5.2.6.3, §5.4.3; docs/privacy.md).
 *
 * Two layers:
 *   - pure functions over a parsed message (the Privacy values, the edits a
 *     request or response needs before it leaves the trust domain, the
 *     trusted-peer list), tested in tests/unit/cscf/test_privacy.c;
 *   - the CSCF hooks that use them: the P-CSCF toward a UE (always outside
 *     the trust domain) and the S-CSCF toward a next hop of another
 *     network that [privacy] trusted does not name.
 *
 * What a boundary does with the request's (or response's) Privacy values:
 *   id       P-Asserted-Identity removed (RFC 3325 §9.3);
 *   header   the headers that reveal the user and that a proxy can drop
 *            removed: Subject, Call-Info, Organization, User-Agent (Server
 *            in responses), Reply-To, In-Reply-To (RFC 3323 §4.1, §5.1);
 *            Via, Record-Route and Contact are not obscured (that needs a
 *            B2BUA or per-dialog state; RFC 3323 §5.1 makes it optional);
 *   user     the same headers, and From becomes
 *            "Anonymous" <sip:anonymous@anonymous.invalid> with its tag
 *            (RFC 3323 §4.1.1.3, §5.3); responses get the original From back;
 *   session  not provided (we do not touch SDP or relay media): ignored,
 *            unless critical;
 *   critical a value we cannot provide (session, or one we do not know)
 *            rejects the request: 500 (RFC 3323 §5);
 *   none     nothing is changed, and the Privacy header stays.
 * Once applied, the Privacy header itself is removed (RFC 3323 §5: the
 * privacy service consumes it).
 *
 * Ownership: messages are borrowed for the call; header lines to add are
 * appended to the caller's ims_buf; nothing is kept. */
#ifndef IMS_CSCF_PRIVACY_H
#define IMS_CSCF_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "proxy/proxy.h"
#include "sip/msg.h"

/* Privacy values (RFC 3323 §4.2, RFC 3325 §9.3), as bits. */
enum ims_priv {
    IMS_PRIV_NONE = 1u << 0,
    IMS_PRIV_HEADER = 1u << 1,
    IMS_PRIV_SESSION = 1u << 2,
    IMS_PRIV_USER = 1u << 3,
    IMS_PRIV_ID = 1u << 4,
    IMS_PRIV_CRITICAL = 1u << 5,
    IMS_PRIV_OTHER = 1u << 6, /* a value we do not know (the grammar is extensible) */
};

/* The values of every Privacy header of m ("id;header", also comma
 * separated), as ims_priv bits; 0 when there is no Privacy header.
 * 0, IMS_EPROTO (an empty or non-token value). */
int ims_privacy_values(const struct sip_msg *m, unsigned *out);

#define IMS_PRIV_MAX_DEL 12

/* What to do with a message before it leaves the trust domain. */
struct ims_priv_edits {
    uint16_t del[IMS_PRIV_MAX_DEL]; /* enum sip_hdr_id of headers to remove */
    size_t ndel;
    int reject;          /* > 0: refuse the request with this status instead */
    const char *reason;  /* its reason phrase (static) */
    unsigned values;     /* the message's Privacy values (for logs) */
};

/* The edits for a request leaving the trust domain; the anonymous From (for
 * 'user') is appended to add as a whole header line.  e is filled (zeroed
 * first).  0, IMS_EPROTO (a Privacy value that does not parse: the caller
 * answers 400), IMS_ENOMEM / IMS_ELIMIT (add). */
int ims_privacy_request(const struct sip_msg *m, struct ims_buf *add, struct ims_priv_edits *e);

/* The same for a response going to a peer outside the trust domain, by the
 * response's own Privacy values (a response cannot be rejected: an
 * unprovidable critical value is ignored).  0, IMS_EPROTO, IMS_ENOMEM,
 * IMS_ELIMIT. */
int ims_privacy_response(const struct sip_msg *rsp, struct ims_buf *add,
                         struct ims_priv_edits *e);

/* Checks a [privacy] trusted list (NULL or empty is fine): comma-separated
 * IPv4/IPv6 addresses, CIDR prefixes, "ip:port" / "[v6]:port", or host
 * names.  0, or IMS_EINVAL with the bad entry named in err. */
int ims_privacy_trust_check(const char *list, char *err, size_t errsz);

/* Is a hop with this URI host (IPv6 in brackets or not) and port (the
 * caller fills in the scheme's default) named by the trusted list?  Entries
 * with a port match that port only.
 * No resolution: a name matches a name, an address an address or prefix.
 * O(entries) per call; the list was checked at load. */
bool ims_privacy_trusted(const char *list, ims_str host, uint16_t port);

/* ---- the CSCF hooks (privacy.c; marked "privacy" at their call sites) ---- */

struct cscf_worker;

/* The P-CSCF's terminating forward to the UE: applies the request's privacy
 * to f (its add_hdrs, del_hdrs and on_response must be unset) and forwards
 * r, or answers it (500 for critical privacy we cannot give, 400 for a bad
 * Privacy header, 500 when forwarding fails).  With [privacy] enabled = no
 * it only forwards. */
void cscf_privacy_forward_to_ue(struct cscf_worker *w, struct proxy_req *r,
                                const struct sip_msg *m, struct proxy_fwd *f);

/* For the P-CSCF's originating forward: the response callback that applies
 * each response's own Privacy before it goes down to the UE (ud = the
 * worker).  Leaves f alone with [privacy] enabled = no. */
void cscf_privacy_on_ue_responses(struct cscf_worker *w, struct proxy_fwd *f);

/* The S-CSCF's originating request for another network (no iFC left, not a
 * home domain): when its next hop (a remaining Route, else the static route
 * for the Request-URI's domain, else the Request-URI) is outside the trust
 * domain and the request asks for privacy, it is forwarded (or refused)
 * here with the edits and true is returned; false: route it as before. */
bool cscf_privacy_route_out(struct cscf_worker *w, struct proxy_req *r, const struct sip_msg *m);

#endif
