/* profile.h - the S-CSCF's view of a subscriber's User-Data (TS 29.228
 * Annex E IMSSubscription, from the SAA): the public identities of the
 * implicit registration set and, per service profile, the initial filter
 * criteria (Annex B.2.2), parsed once when the registration is stored.
 *
 * Evaluating iFCs (matching SPTs against a request, ISC routing) is the
 * sessions' business (not here); this only turns the XML into structs.
 *
 * Ownership: a struct ims_profile is immutable once parsed and reference
 * counted (atomically), so a registration and any number of requests
 * looking at it can share it across workers without copying: take a
 * reference with ims_profile_ref(), drop it with ims_profile_unref().
 * Every string in it is NUL-terminated and lives as long as the profile. */
#ifndef IMS_CSCF_PROFILE_H
#define IMS_CSCF_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

/* Caps on what one document may hold (more: IMS_ELIMIT). */
#define IMS_PROFILE_MAX_SP 16      /* ServiceProfile elements */
#define IMS_PROFILE_MAX_IDS 64     /* PublicIdentity elements, all profiles */
#define IMS_PROFILE_MAX_IFC 64     /* InitialFilterCriteria per service profile */
#define IMS_PROFILE_MAX_SPT 32     /* SPTs per trigger point */
#define IMS_PROFILE_MAX_GROUPS 8   /* Group elements per SPT */
#define IMS_PROFILE_DOC_MAX (1u << 20)

/* TS 29.228 Annex B.2.2 service point trigger kinds. */
enum ims_spt_kind {
    IMS_SPTK_METHOD = 0,
    IMS_SPTK_REQUEST_URI,
    IMS_SPTK_SIP_HEADER,
    IMS_SPTK_SESSION_CASE,
    IMS_SPTK_SESSION_DESCRIPTION,
};

/* TS 29.228 Annex B.2.2 SessionCase values. */
enum {
    IMS_SESSION_CASE_ORIGINATING = 0,
    IMS_SESSION_CASE_TERMINATING_REGISTERED = 1,
    IMS_SESSION_CASE_TERMINATING_UNREGISTERED = 2,
    IMS_SESSION_CASE_ORIGINATING_UNREGISTERED = 3,
    IMS_SESSION_CASE_ORIGINATING_CDIV = 4,
};

struct ims_prof_spt {
    enum ims_spt_kind kind;
    bool negated;                        /* ConditionNegated */
    uint32_t groups[IMS_PROFILE_MAX_GROUPS];
    size_t ngroups;                      /* at least 1 (0 when the document had none) */
    const char *value;   /* Method, RequestURI, SIPHeader/Header, SessionDescription/Line */
    const char *content; /* SIPHeader/Content or SessionDescription/Content; NULL if absent */
    int session_case;    /* IMS_SPTK_SESSION_CASE: 0..4 */
    /* RegistrationType (REGISTER triggers): bit 0 INITIAL, 1 RE_REGISTRATION,
     * 2 DE_REGISTRATION; 0 when absent (= all) */
    unsigned reg_types;
};

struct ims_prof_ifc {
    unsigned priority;
    bool has_trigger;   /* no TriggerPoint: the filter always matches */
    bool cnf;           /* ConditionTypeCNF: 1 = conjunctive normal form */
    struct ims_prof_spt *spts;
    size_t nspt;
    const char *server_name;  /* ApplicationServer/ServerName */
    int default_handling;     /* 0 SESSION_CONTINUED, 1 SESSION_TERMINATED */
    const char *service_info; /* NULL if absent */
    bool include_register_request, include_register_response; /* Annex B.2.2 extensions */
    int profile_part;         /* -1 absent, 0 REGISTERED, 1 UNREGISTERED */
};

struct ims_pub_id {
    const char *identity;
    bool barred;
    int identity_type;  /* Extension/IdentityType: 0 public user identity, 1 distinct PSI,
                         * 2 wildcarded PSI, 3 wildcarded IMPU */
    const char *display_name; /* NULL if absent */
};

struct ims_service_profile {
    struct ims_pub_id *ids;
    size_t nids;
    struct ims_prof_ifc *ifcs; /* sorted by priority, lowest (highest precedence) first */
    size_t nifc;
};

struct ims_profile {
    unsigned refs;        /* atomic: ims_profile_ref/unref */
    const char *impi;     /* PrivateID; NULL when the document has none */
    struct ims_service_profile *sps;
    size_t nsp;
    size_t nids;          /* public identities over all service profiles */
    /* The subscription's local roles for the policy (comma list), from a
     * ServiceProfile's <Extension><imscloud:Roles> (the first one); NULL when
     * absent: the S-CSCF then uses [scscf] local_roles. */
    const char *roles;
    /* SHA-256 of the document it was parsed from (ims_profile_same_source) */
    uint8_t src_sha256[32];
};

/* The namespace of the roles Extension (as src/hss/userdata.h emits it). */
#define IMS_PROFILE_ROLES_NS "urn:imscloud:params:xml:ns:roles"

/* Parses an IMSSubscription document (no network, no DTD, no entity
 * expansion).  *out has one reference.  0, IMS_EPROTO (not well-formed, not
 * an IMSSubscription, a required element missing or a number out of
 * range), IMS_ELIMIT (a cap above), IMS_ENOMEM. */
int ims_profile_parse(ims_str xml, struct ims_profile **out);

/* Whether xml is byte for byte the document p was parsed from: then its
 * parse would give p again (the S-CSCF keeps a re-registration's profile
 * instead of parsing the same User-Data once more).  false for p NULL. */
bool ims_profile_same_source(const struct ims_profile *p, ims_str xml);

struct ims_profile *ims_profile_ref(struct ims_profile *p); /* NULL-safe; returns p */
void ims_profile_unref(struct ims_profile *p);               /* NULL-safe */

/* The service profile that lists impu (byte equality), or NULL. */
const struct ims_service_profile *ims_profile_find(const struct ims_profile *p, ims_str impu);

/* The public identities of the document in order, across service profiles:
 * calls fn for each; a non-zero return stops and is returned. */
int ims_profile_each_id(const struct ims_profile *p,
                        int (*fn)(const struct ims_pub_id *id, void *ctx), void *ctx);

#endif
