/* cscf_audit.h - the S-CSCF's audit events (src/audit/audit.h): one call
 * where scscf.c decides a REGISTER's authentication and registration.
 *
 * The initiator's host address (ue_addr) is the UE's, as cscf_ue_source()
 * gives it: the bottom-most Via (the UE's own hop), its received= when the
 * P-CSCF added one (RFC 3261 §18.2.1), else its sent-by host.  The S-CSCF
 * never sees the UE's packets, so this is what the UE (and the P-CSCF)
 * claimed and recorded; "" (no Via) leaves it out.  The caller works it out
 * once per transaction: both events of a registration and the lockout name
 * it.  Borrowed arguments, nothing kept. */
#ifndef IMS_CSCF_CSCF_AUDIT_H
#define IMS_CSCF_CSCF_AUDIT_H

#include <stdbool.h>

#include "cscf/auth.h"
#include "sip/msg.h"

/* After checking credentials: success (IMS_AUTH_OK) or failure
 * (IMS_AUTH_WRONG, IMS_AUTH_TOO_MANY); other verdicts are challenges,
 * not decisions, and emit nothing. */
void cscf_audit_auth(const char *ue_addr, const char *impi, const char *impu,
                     enum ims_auth_verdict verdict);
/* A registration (or re-registration) or de-registration committed. */
void cscf_audit_reg(const char *ue_addr, const char *impi, const char *impu, bool dereg);
/* A request the policy refused (bearer.c): rule asked, decided_by the rule
 * that decided (rule or "default"), user the policy's user_id (Keystone
 * user id, or the IMPI), impu the served user; target: m's Request-URI. */
void cscf_audit_policy(const struct sip_msg *m, const char *rule, const char *decided_by,
                       const char *user, const char *impu);

#endif
