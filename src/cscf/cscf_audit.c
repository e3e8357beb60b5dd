/* cscf_audit.c - the S-CSCF's CADF audit events (cscf_audit.h). */
#include "cscf/cscf_audit.h"

#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "cscf/cscf_int.h"
#include "metrics/metrics.h"

void cscf_audit_auth(const char *ue_addr, const char *impi, const char *impu,
                     enum ims_auth_verdict verdict)
{
    if (verdict != IMS_AUTH_OK && verdict != IMS_AUTH_WRONG && verdict != IMS_AUTH_TOO_MANY)
        return;
    bool ok = verdict == IMS_AUTH_OK;
    ims_metrics_inc(ok ? IMS_M_AUTH_SUCCESSES : IMS_M_AUTH_FAILURES); /* metrics hook */
    /* TS 24.229 §5.4.1.2: a wrong response gets 401 (again), 403 once the
     * failures reach [scscf] auth_max_failures */
    const char *code = ok ? "200" : verdict == IMS_AUTH_WRONG ? "401" : "403";
    struct ims_audit_event ev = {
        .action = "authenticate",
        .outcome = ok ? "success" : "failure",
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(impi),
        .initiator_name = ims_str_cstr(impu),
        .initiator_addr = ims_str_cstr(ue_addr),
        .target_type = "service/ims/registrar",
        .target_id = ims_str_cstr(impu),
        .target_name = ims_str_cstr(impu),
        .observer = "scscf",
        .reason_type = "SIP",
        .reason_code = ims_str_cstr(code),
        .detail = ok ? IMS_STR_NULL : verdict == IMS_AUTH_WRONG
                                          ? IMS_S("wrong digest response")
                                          : IMS_S("wrong digest response; failure limit reached"),
    };
    ims_audit_emit(&ev);
}

void cscf_audit_reg(const char *ue_addr, const char *impi, const char *impu, bool dereg)
{
    struct ims_audit_event ev = {
        .action = dereg ? "delete" : "create",
        .outcome = "success",
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(impi),
        .initiator_name = ims_str_cstr(impu),
        .initiator_addr = ims_str_cstr(ue_addr),
        .target_type = "data/ims/registration",
        .target_id = ims_str_cstr(impu),
        .target_name = ims_str_cstr(impu),
        .observer = "scscf",
        .reason_type = "SIP",
        .reason_code = IMS_S("200"),
        .detail = dereg ? IMS_S("de-registration") : IMS_S("registration"),
    };
    ims_audit_emit(&ev);
}

/* policy denials (docs/audit.md): the activity that was refused, as CADF
 * names it (DSP0262 action taxonomy), and what it was aimed at */
static void policy_action(const struct sip_msg *m, const char **action, const char **type)
{
    switch (m ? m->method : SIP_M_UNKNOWN) {
    case SIP_M_REGISTER: *action = "create", *type = "data/ims/registration"; break;
    case SIP_M_INVITE: *action = "create", *type = "service/ims/session"; break;
    case SIP_M_MESSAGE: *action = "send", *type = "service/ims/message"; break;
    case SIP_M_SUBSCRIBE: *action = "read", *type = "service/ims/event"; break;
    default: *action = "unknown", *type = "service/ims"; break;
    }
}

void cscf_audit_policy(const struct sip_msg *m, const char *rule, const char *decided_by,
                       const char *user, const char *impu)
{
    const char *action, *type;
    policy_action(m, &action, &type);
    char detail[IMS_AUDIT_FIELD_MAX];
    snprintf(detail, sizeof(detail), "denied by policy rule %s (decided by %s)", rule,
             decided_by ? decided_by : rule);
    ims_str ruri = m ? m->ruri.raw : IMS_STR_NULL;
    struct ims_audit_event ev = {
        .action = action,
        .outcome = "failure",
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(user ? user : impu),
        .initiator_name = ims_str_cstr(impu),
        .initiator_addr = cscf_ue_addr(m),
        .target_type = type,
        .target_id = ruri,
        .target_name = ruri,
        .observer = "scscf",
        .reason_type = "policy",
        .reason_code = ims_str_cstr(rule),
        .detail = ims_str_cstr(detail),
    };
    ims_audit_emit(&ev);
}
