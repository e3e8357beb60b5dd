/* msgs.h - the Cx/Dx (TS 29.229) and Sh (TS 29.329) messages as plain
 * structs, without any freeDiameter type.
 *
 * The codec (dia/codec.h, inside src/dia) fills a request struct from a
 * received message and builds a message from an answer struct; the HSS
 * logic (src/hss) only ever sees these structs.  Every struct starts with
 * `uint64_t present`: bit i is set when field i of the struct's codec
 * table (dia/tables.c) was present in the message (DIA_HAS()).
 *
 * Lifetime: every ims_str in a decoded request points into the received
 * message and lives as long as the request (struct ims_dia_req).  In an
 * answer or an outgoing request the slices are borrowed for the duration
 * of the encoding call only (the codec copies them into the message). */
#ifndef IMS_DIA_MSGS_H
#define IMS_DIA_MSGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

#define DIA_VENDOR_3GPP 10415u
#define DIA_APP_CX 16777216u /* Cx/Dx, TS 29.229 §6 */
#define DIA_APP_SH 16777217u /* Sh, TS 29.329 §6 */

/* Command codes (TS 29.229 §6.1, TS 29.329 §6.1). */
enum {
    DIA_CMD_UAR = 300,
    DIA_CMD_SAR = 301,
    DIA_CMD_LIR = 302,
    DIA_CMD_MAR = 303,
    DIA_CMD_RTR = 304,
    DIA_CMD_PPR = 305,
    DIA_CMD_UDR = 306,
    DIA_CMD_PUR = 307,
};

/* RFC 6733 §7.1 Result-Code values we send. */
enum {
    DIA_SUCCESS = 2001,
    DIA_REDIRECT_INDICATION = 3006,
    DIA_TOO_BUSY = 3004,
    DIA_AUTHORIZATION_REJECTED = 5003,
    DIA_INVALID_AVP_VALUE = 5004,
    DIA_MISSING_AVP = 5005,
    DIA_AVP_OCCURS_TOO_MANY_TIMES = 5009,
    DIA_UNABLE_TO_COMPLY = 5012,
};

/* TS 29.229 §6.2 Experimental-Result-Code values (vendor 10415). */
enum {
    DIA_FIRST_REGISTRATION = 2001,
    DIA_SUBSEQUENT_REGISTRATION = 2002,
    DIA_UNREGISTERED_SERVICE = 2003,
    DIA_SUCCESS_SERVER_NAME_NOT_STORED = 2004,
    DIA_ERROR_USER_UNKNOWN = 5001,
    DIA_ERROR_IDENTITIES_DONT_MATCH = 5002,
    DIA_ERROR_IDENTITY_NOT_REGISTERED = 5003,
    DIA_ERROR_ROAMING_NOT_ALLOWED = 5004,
    DIA_ERROR_IDENTITY_ALREADY_REGISTERED = 5005,
    DIA_ERROR_AUTH_SCHEME_NOT_SUPPORTED = 5006,
    DIA_ERROR_IN_ASSIGNMENT_TYPE = 5007,
    DIA_ERROR_TOO_MUCH_DATA = 5008,
    DIA_ERROR_NOT_SUPPORTED_USER_DATA = 5009,
    /* TS 29.329 §6.2 (Sh) */
    DIA_USER_DATA_NOT_AVAILABLE = 4100,
    DIA_ERROR_USER_DATA_NOT_RECOGNIZED = 5100,
    DIA_ERROR_OPERATION_NOT_ALLOWED = 5101,
    DIA_ERROR_USER_DATA_CANNOT_BE_READ = 5102,
    DIA_ERROR_USER_DATA_CANNOT_BE_MODIFIED = 5103,
    DIA_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC = 5105,
};

/* TS 29.229 §6.3.24 User-Authorization-Type. */
enum { CX_UAT_REGISTRATION = 0, CX_UAT_DE_REGISTRATION = 1, CX_UAT_REG_AND_CAPABILITIES = 2 };

/* TS 29.229 §6.3.15 Server-Assignment-Type. */
enum {
    CX_SAT_NO_ASSIGNMENT = 0,
    CX_SAT_REGISTRATION = 1,
    CX_SAT_RE_REGISTRATION = 2,
    CX_SAT_UNREGISTERED_USER = 3,
    CX_SAT_TIMEOUT_DEREGISTRATION = 4,
    CX_SAT_USER_DEREGISTRATION = 5,
    CX_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME = 6,
    CX_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME = 7,
    CX_SAT_ADMINISTRATIVE_DEREGISTRATION = 8,
    CX_SAT_AUTHENTICATION_FAILURE = 9,
    CX_SAT_AUTHENTICATION_TIMEOUT = 10,
    CX_SAT_DEREGISTRATION_TOO_MUCH_DATA = 11,
    CX_SAT_MAX = 11,
};

/* TS 29.229 §6.3.17 Reason-Code (in Deregistration-Reason). */
enum {
    CX_REASON_PERMANENT_TERMINATION = 0,
    CX_REASON_NEW_SERVER_ASSIGNED = 1,
    CX_REASON_SERVER_CHANGE = 2,
    CX_REASON_REMOVE_SCSCF = 3,
};

/* TS 29.328 §7.6 Data-Reference values we serve, and Identity-Set. */
enum {
    SH_DREF_REPOSITORY_DATA = 0,
    SH_DREF_IMS_PUBLIC_IDENTITY = 10,
    SH_DREF_IMS_USER_STATE = 11,
    SH_DREF_SCSCF_NAME = 12,
    SH_DREF_IFC = 13,
};
enum {
    SH_IDSET_ALL = 0,
    SH_IDSET_REGISTERED = 1,
    SH_IDSET_IMPLICIT = 2,
    SH_IDSET_ALIAS = 3,
};

/* RFC 6733 §6.13 Redirect-Host-Usage. */
enum { DIA_REDIRECT_USAGE_ALL_USER = 6 };

#define CX_MAX_IMPU 16     /* Public-Identity AVPs in a SAR, RTR or answer */
#define CX_MAX_ITEMS 8     /* SIP-Auth-Data-Item AVPs in an MAA (= IMS_HSS_MAX_VECTORS) */
#define CX_MAX_CAPS 16     /* capabilities per list */
#define CX_MAX_NAMES 8     /* Server-Name AVPs in Server-Capabilities */
#define CX_MAX_ASSOC 8     /* User-Name AVPs in Associated-Identities */
#define SH_MAX_DREF 8      /* Data-Reference AVPs in a UDR */
#define SH_MAX_SI 8        /* Service-Indication AVPs in a UDR */
#define SH_MAX_IDSET 4
#define DIA_MAX_REDIRECT 4

#define DIA_HAS(s, bit) (((s)->present >> (bit)) & 1u)
#define DIA_SET(s, bit) ((s)->present |= UINT64_C(1) << (bit))

/* ------------------------------------------------------------ requests */

/* SIP-Digest-Authenticate (TS 29.229 §6.3.36), RFC 4740 AVPs inside. */
struct cx_digest {
    uint64_t present;
    ims_str realm;     /* 0 Digest-Realm */
    ims_str algorithm; /* 1 Digest-Algorithm */
    ims_str qop;       /* 2 Digest-QoP */
    ims_str ha1;       /* 3 Digest-HA1 (a secret) */
};
enum { CX_DIGEST_REALM, CX_DIGEST_ALG, CX_DIGEST_QOP, CX_DIGEST_HA1 };

/* SIP-Auth-Data-Item (TS 29.229 §6.3.13), in MAR and MAA. */
struct cx_auth_item {
    uint64_t present;
    uint32_t item_number;     /* 0 SIP-Item-Number */
    ims_str scheme;           /* 1 SIP-Authentication-Scheme */
    ims_str authenticate;     /* 2 SIP-Authenticate (RAND||AUTN) */
    ims_str authorization;    /* 3 SIP-Authorization (XRES, or RAND||AUTS in a MAR) */
    ims_str context;          /* 4 SIP-Authentication-Context */
    ims_str ck;               /* 5 Confidentiality-Key */
    ims_str ik;               /* 6 Integrity-Key */
    struct cx_digest digest;  /* 7 SIP-Digest-Authenticate */
};
enum {
    CX_ITEM_NUMBER, CX_ITEM_SCHEME, CX_ITEM_AUTHENTICATE, CX_ITEM_AUTHORIZATION,
    CX_ITEM_CONTEXT, CX_ITEM_CK, CX_ITEM_IK, CX_ITEM_DIGEST,
};

/* Fields shared by every request (the head of each request struct). */
#define DIA_REQ_HEAD                                                                               \
    uint64_t present;                                                                              \
    ims_str dest_host;  /* 0 Destination-Host (outgoing requests) */                               \
    ims_str dest_realm; /* 1 Destination-Realm */                                                  \
    int32_t auth_session_state /* 2 Auth-Session-State */

struct cx_uar {
    DIA_REQ_HEAD;
    ims_str impi;       /* 3 User-Name */
    ims_str impu;       /* 4 Public-Identity */
    ims_str visited;    /* 5 Visited-Network-Identifier */
    int32_t auth_type;  /* 6 User-Authorization-Type */
    uint32_t uar_flags; /* 7 UAR-Flags */
};
enum { CX_UAR_IMPI = 3, CX_UAR_IMPU, CX_UAR_VISITED, CX_UAR_TYPE, CX_UAR_FLAGS };

struct cx_mar {
    DIA_REQ_HEAD;
    ims_str impi;             /* 3 User-Name */
    ims_str impu;             /* 4 Public-Identity */
    ims_str server_name;      /* 5 Server-Name */
    uint32_t n_items;         /* 6 SIP-Number-Auth-Items */
    struct cx_auth_item item; /* 7 SIP-Auth-Data-Item */
};
enum { CX_MAR_IMPI = 3, CX_MAR_IMPU, CX_MAR_SERVER, CX_MAR_NITEMS, CX_MAR_ITEM };

struct cx_sar {
    DIA_REQ_HEAD;
    ims_str impi;                /* 3 User-Name */
    ims_str impu[CX_MAX_IMPU];   /* 4 Public-Identity (n_impu) */
    size_t n_impu;
    ims_str server_name;         /* 5 Server-Name */
    int32_t sat;                 /* 6 Server-Assignment-Type */
    int32_t uda;                 /* 7 User-Data-Already-Available */
    ims_str wildcard;            /* 8 Wildcarded-Public-Identity */
    uint32_t sar_flags;          /* 9 SAR-Flags */
};
enum { CX_SAR_IMPI = 3, CX_SAR_IMPU, CX_SAR_SERVER, CX_SAR_TYPE, CX_SAR_UDA, CX_SAR_WILDCARD,
       CX_SAR_FLAGS };

struct cx_lir {
    DIA_REQ_HEAD;
    ims_str impu;        /* 3 Public-Identity */
    int32_t originating; /* 4 Originating-Request */
    ims_str wildcard;    /* 5 Wildcarded-Public-Identity */
};
enum { CX_LIR_IMPU = 3, CX_LIR_ORIG, CX_LIR_WILDCARD };

struct cx_dereg_reason {
    uint64_t present;
    int32_t code; /* 0 Reason-Code */
    ims_str info; /* 1 Reason-Info */
};

/* HSS-initiated: Registration-Termination (RTR) and Push-Profile (PPR). */
struct cx_rtr {
    DIA_REQ_HEAD;
    ims_str impi;                  /* 3 User-Name */
    ims_str impu[CX_MAX_IMPU];     /* 4 Public-Identity */
    size_t n_impu;
    struct cx_dereg_reason reason; /* 5 Deregistration-Reason */
};
enum { CX_RTR_IMPI = 3, CX_RTR_IMPU, CX_RTR_REASON };

struct cx_charging {
    uint64_t present;
    ims_str ecf[2]; /* 0, 1 Primary/Secondary-Event-Charging-Function-Name */
    ims_str ccf[2]; /* 2, 3 Primary/Secondary-Charging-Collection-Function-Name */
};

struct cx_ppr {
    DIA_REQ_HEAD;
    ims_str impi;                /* 3 User-Name */
    ims_str user_data;           /* 4 User-Data (IMSSubscription XML) */
    struct cx_charging charging; /* 5 Charging-Information */
};
enum { CX_PPR_IMPI = 3, CX_PPR_DATA, CX_PPR_CHARGING };

/* Sh User-Identity (TS 29.329 §6.3.1). */
struct sh_user_identity {
    uint64_t present;
    ims_str impu;   /* 0 Public-Identity */
    ims_str msisdn; /* 1 MSISDN */
};
enum { SH_UID_IMPU, SH_UID_MSISDN };

struct sh_udr {
    DIA_REQ_HEAD;
    struct sh_user_identity uid; /* 3 User-Identity */
    int32_t dref[SH_MAX_DREF];   /* 4 Data-Reference */
    size_t n_dref;
    ims_str si[SH_MAX_SI];       /* 5 Service-Indication */
    size_t n_si;
    int32_t idset[SH_MAX_IDSET]; /* 6 Identity-Set */
    size_t n_idset;
    ims_str server_name;         /* 7 Server-Name */
    ims_str wildcard;            /* 8 Wildcarded-Public-Identity */
};
enum { SH_UDR_UID = 3, SH_UDR_DREF, SH_UDR_SI, SH_UDR_IDSET, SH_UDR_SERVER, SH_UDR_WILDCARD };

struct sh_pur {
    DIA_REQ_HEAD;
    struct sh_user_identity uid; /* 3 User-Identity */
    int32_t dref;                /* 4 Data-Reference */
    ims_str user_data;           /* 5 User-Data (Sh-Data XML) */
};
enum { SH_PUR_UID = 3, SH_PUR_DREF, SH_PUR_DATA };

enum { DIA_REQ_DEST_HOST = 0, DIA_REQ_DEST_REALM, DIA_REQ_AUTH_STATE };

/* ------------------------------------------------------------- answers */

struct dia_exp_result {
    uint64_t present;
    uint32_t vendor; /* 0 Vendor-Id */
    uint32_t code;   /* 1 Experimental-Result-Code */
};

struct cx_caps {
    uint64_t present;
    uint32_t mand[CX_MAX_CAPS]; /* 0 Mandatory-Capability */
    size_t n_mand;
    uint32_t opt[CX_MAX_CAPS];  /* 1 Optional-Capability */
    size_t n_opt;
    ims_str names[CX_MAX_NAMES]; /* 2 Server-Name */
    size_t n_names;
};

struct cx_assoc {
    uint64_t present;
    ims_str impi[CX_MAX_ASSOC]; /* 0 User-Name */
    size_t n_impi;
};

/* Every answer we send or receive (UAA, MAA, SAA, LIA, UDA, PUA, RTA, PPA,
 * and the SLF's redirect): one struct, the fields a command does not use
 * are simply not present.  Encoded in this order, after Session-Id,
 * Vendor-Specific-Application-Id, Auth-Session-State and Origin-*. */
struct dia_ans {
    uint64_t present;
    uint32_t result_code;                /* 0 Result-Code */
    struct dia_exp_result exp;           /* 1 Experimental-Result */
    ims_str user_name;                   /* 2 User-Name */
    ims_str impu[CX_MAX_IMPU];           /* 3 Public-Identity */
    size_t n_impu;
    ims_str server_name;                 /* 4 Server-Name */
    struct cx_caps caps;                 /* 5 Server-Capabilities */
    uint32_t n_items;                    /* 6 SIP-Number-Auth-Items */
    struct cx_auth_item items[CX_MAX_ITEMS]; /* 7 SIP-Auth-Data-Item */
    size_t n_item;
    ims_str user_data;                   /* 8 User-Data (Cx, 606) */
    struct cx_charging charging;         /* 9 Charging-Information */
    struct cx_assoc assoc;               /* 10 Associated-Identities */
    ims_str wildcard;                    /* 11 Wildcarded-Public-Identity */
    ims_str sh_data;                     /* 12 User-Data (Sh, 702) */
    ims_str redirect[DIA_MAX_REDIRECT];  /* 13 Redirect-Host (DiameterURI) */
    size_t n_redirect;
    int32_t redirect_usage;              /* 14 Redirect-Host-Usage */
    ims_str error_message;               /* 15 Error-Message */
    /* Not table fields: with DIA_MISSING_AVP, the AVP for Failed-AVP. */
    uint32_t failed_code, failed_vendor;
};
enum {
    DIA_ANS_RESULT, DIA_ANS_EXP, DIA_ANS_USER_NAME, DIA_ANS_IMPU, DIA_ANS_SERVER, DIA_ANS_CAPS,
    DIA_ANS_NITEMS, DIA_ANS_ITEMS, DIA_ANS_USER_DATA, DIA_ANS_CHARGING, DIA_ANS_ASSOC,
    DIA_ANS_WILDCARD, DIA_ANS_SH_DATA, DIA_ANS_REDIRECT, DIA_ANS_REDIRECT_USAGE,
    DIA_ANS_ERROR_MESSAGE,
};

/* Helpers to fill an answer. */
static inline void dia_ans_result(struct dia_ans *a, uint32_t code)
{
    a->result_code = code;
    DIA_SET(a, DIA_ANS_RESULT);
}
static inline void dia_ans_exp(struct dia_ans *a, uint32_t code)
{
    a->exp.vendor = DIA_VENDOR_3GPP;
    a->exp.code = code;
    a->exp.present = 3;
    DIA_SET(a, DIA_ANS_EXP);
}
/* The outcome code of an answer: Result-Code, else Experimental-Result-Code,
 * else 0.  *experimental (may be NULL) tells which. */
static inline uint32_t dia_ans_code(const struct dia_ans *a, bool *experimental)
{
    if (experimental)
        *experimental = !DIA_HAS(a, DIA_ANS_RESULT) && DIA_HAS(a, DIA_ANS_EXP);
    if (DIA_HAS(a, DIA_ANS_RESULT))
        return a->result_code;
    if (DIA_HAS(a, DIA_ANS_EXP))
        return a->exp.code;
    return 0;
}

#endif
