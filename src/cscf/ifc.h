/* ifc.h - initial filter criteria evaluation (TS 29.228 Annex B.2.2 and
 * Annex C, TS 24.229 §5.4.3.2/§5.4.3.3): does a request match an iFC of the
 * served user's service profile, and which one comes next.
 *
 * Pure functions over a parsed request (sip/msg.h) and a parsed profile
 * (profile.h); no I/O, no allocation beyond what regex matching needs.
 *
 * Matching rules (Annex C):
 *   - an iFC without a TriggerPoint always matches;
 *   - SPTs are grouped by their Group numbers; with ConditionTypeCNF the
 *     trigger is an AND of groups, each an OR of its SPTs; otherwise (DNF)
 *     an OR of groups, each an AND of its SPTs; an SPT listed in several
 *     groups takes part in each;
 *   - ConditionNegated inverts one SPT;
 *   - Method: the request's method, case-sensitive (REGISTER SPTs also
 *     match the RegistrationType bits when set);
 *   - RequestURI: a regular expression (POSIX extended) searched in the
 *     Request-URI as received;
 *   - SIPHeader: the header (by name, case-insensitive, compact forms
 *     too) is present; with Content, a regular expression searched in any
 *     of its values;
 *   - SessionCase: equal to the case the S-CSCF is processing;
 *   - SessionDescription: an SDP line of the body ("m", "c"...) whose
 *     content matches the regular expression (only application/sdp
 *     bodies; absent otherwise);
 *   - a ProfilePartIndicator, when present, must equal the registration
 *     state the request is evaluated in (REGISTERED 0, UNREGISTERED 1).
 * A regular expression that does not compile never matches (and is
 * logged once per profile load by the caller, not here). */
#ifndef IMS_CSCF_IFC_H
#define IMS_CSCF_IFC_H

#include <stdbool.h>
#include <stddef.h>

#include "cscf/profile.h"
#include "sip/msg.h"

/* What the request is evaluated against besides its own bytes. */
struct ims_ifc_ctx {
    int session_case;   /* IMS_SESSION_CASE_* */
    bool registered;    /* the served user's state: ProfilePartIndicator */
    unsigned reg_type;  /* REGISTER only: bit 0 INITIAL, 1 RE_REGISTRATION,
                         * 2 DE_REGISTRATION (profile.h reg_types); 0 otherwise */
};

/* Does request m match filter f in context c? */
bool ims_ifc_match(const struct ims_prof_ifc *f, const struct sip_msg *m,
                   const struct ims_ifc_ctx *c);

/* The index of the first iFC of sp at or after `from` (sp->ifcs is sorted
 * by priority) that matches m, or -1 when none does.  The S-CSCF walks the
 * list with it: ims_ifc_next(sp, 0, ...), then from the matched index + 1
 * when the request comes back from that AS (the ODI remembers where). */
int ims_ifc_next(const struct ims_service_profile *sp, size_t from, const struct sip_msg *m,
                 const struct ims_ifc_ctx *c);

#endif
