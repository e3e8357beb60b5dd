/* tables.c - the codec tables of every Cx/Dx (TS 29.229 §6.1) and Sh
 * (TS 29.329 §6.1) message we read or write.
 *
 * The row index of each field is its present bit, and must match the
 * field's enum in dia/msgs.h (tests/unit/dia checks every one).  Bounds:
 * identities are 1..255 bytes (the store's limit), User-Data up to
 * 256 KiB + slack, everything else by its 3GPP definition. */
#include <stddef.h>

#include "dia/codec.h"
#include "store/store.h"

#define V3 DIA_VENDOR_3GPP
#define ID_MAX (IMS_STORE_ID_MAX - 1)
#define XML_MAX (IMS_STORE_XML_MAX + 65536)

/* Single-valued field. */
#define F(nm, c, v, t, fl, mn, mx, st, m)                                                          \
    { nm, c, v, t, fl, 0, mn, mx, offsetof(st, m), 0, 0, NULL }
/* Repeated field: array st.m[cap], count st.cnt. */
#define FM(nm, c, v, t, fl, mn, mx, st, m, cnt)                                                    \
    { nm, c, v, t, (fl) | DF_MULTI, sizeof(((st *)0)->m) / sizeof(((st *)0)->m[0]), mn, mx,        \
      offsetof(st, m), offsetof(st, cnt), sizeof(((st *)0)->m[0]), NULL }
#define FG(nm, c, v, fl, st, m, tbl) { nm, c, v, DT_GROUP, fl, 0, 0, 0, offsetof(st, m), 0, 0, &tbl }
#define FGM(nm, c, v, fl, st, m, cnt, tbl)                                                         \
    { nm, c, v, DT_GROUP, (fl) | DF_MULTI, sizeof(((st *)0)->m) / sizeof(((st *)0)->m[0]), 0, 0,   \
      offsetof(st, m), offsetof(st, cnt), sizeof(((st *)0)->m[0]), &tbl }
#define TABLE(name, arr) const struct dia_table name = { #name, arr, sizeof(arr) / sizeof(arr[0]) }

/* The head of every request (DIA_REQ_HEAD); st is the request struct. */
#define HEAD(st)                                                                                   \
    F("Destination-Host", 293, 0, DT_OS, 0, 1, 255, st, dest_host),                                \
    F("Destination-Realm", 283, 0, DT_OS, 0, 1, 255, st, dest_realm),                              \
    F("Auth-Session-State", 277, 0, DT_I32, 0, 0, 1, st, auth_session_state)

/* ---- groups ---- */

static const struct dia_field f_digest[] = {
    F("Digest-Realm", 104, 0, DT_UTF8, 0, 0, ID_MAX, struct cx_digest, realm),
    F("Digest-Algorithm", 111, 0, DT_UTF8, 0, 0, 64, struct cx_digest, algorithm),
    F("Digest-QoP", 110, 0, DT_UTF8, 0, 0, 64, struct cx_digest, qop),
    F("Digest-HA1", 121, 0, DT_UTF8, 0, 0, 128, struct cx_digest, ha1),
};
static TABLE(t_digest, f_digest);

static const struct dia_field f_item[] = {
    F("SIP-Item-Number", 613, V3, DT_U32, 0, 0, 0, struct cx_auth_item, item_number),
    F("SIP-Authentication-Scheme", 608, V3, DT_UTF8, 0, 0, 64, struct cx_auth_item, scheme),
    F("SIP-Authenticate", 609, V3, DT_OS, 0, 0, 256, struct cx_auth_item, authenticate),
    F("SIP-Authorization", 610, V3, DT_OS, 0, 0, 256, struct cx_auth_item, authorization),
    F("SIP-Authentication-Context", 611, V3, DT_OS, 0, 0, 65536, struct cx_auth_item, context),
    F("Confidentiality-Key", 625, V3, DT_OS, 0, 0, 32, struct cx_auth_item, ck),
    F("Integrity-Key", 626, V3, DT_OS, 0, 0, 32, struct cx_auth_item, ik),
    FG("SIP-Digest-Authenticate", 635, V3, 0, struct cx_auth_item, digest, t_digest),
};
static TABLE(t_item, f_item);

static const struct dia_field f_reason[] = {
    F("Reason-Code", 616, V3, DT_I32, DF_REQ, 0, 3, struct cx_dereg_reason, code),
    F("Reason-Info", 617, V3, DT_UTF8, 0, 0, 1024, struct cx_dereg_reason, info),
};
static TABLE(t_reason, f_reason);

static const struct dia_field f_charging[] = {
    F("Primary-Event-Charging-Function-Name", 619, V3, DT_OS, 0, 0, ID_MAX, struct cx_charging,
      ecf[0]),
    F("Secondary-Event-Charging-Function-Name", 620, V3, DT_OS, 0, 0, ID_MAX, struct cx_charging,
      ecf[1]),
    F("Primary-Charging-Collection-Function-Name", 621, V3, DT_OS, 0, 0, ID_MAX,
      struct cx_charging, ccf[0]),
    F("Secondary-Charging-Collection-Function-Name", 622, V3, DT_OS, 0, 0, ID_MAX,
      struct cx_charging, ccf[1]),
};
static TABLE(t_charging, f_charging);

static const struct dia_field f_uid[] = {
    F("Public-Identity", 601, V3, DT_UTF8, 0, 1, ID_MAX, struct sh_user_identity, impu),
    F("MSISDN", 701, V3, DT_OS, 0, 1, 32, struct sh_user_identity, msisdn),
};
static TABLE(t_uid, f_uid);

static const struct dia_field f_exp[] = {
    F("Vendor-Id", 266, 0, DT_U32, DF_REQ, 0, 0, struct dia_exp_result, vendor),
    F("Experimental-Result-Code", 298, 0, DT_U32, DF_REQ, 0, 0, struct dia_exp_result, code),
};
static TABLE(t_exp, f_exp);

static const struct dia_field f_caps[] = {
    FM("Mandatory-Capability", 604, V3, DT_U32, 0, 0, 0, struct cx_caps, mand, n_mand),
    FM("Optional-Capability", 605, V3, DT_U32, 0, 0, 0, struct cx_caps, opt, n_opt),
    FM("Server-Name", 602, V3, DT_UTF8, 0, 1, ID_MAX, struct cx_caps, names, n_names),
};
static TABLE(t_caps, f_caps);

static const struct dia_field f_assoc[] = {
    FM("User-Name", 1, 0, DT_UTF8, 0, 1, ID_MAX, struct cx_assoc, impi, n_impi),
};
static TABLE(t_assoc, f_assoc);

/* ---- requests ---- */

/* TS 29.229 §6.1.1 UAR */
static const struct dia_field f_uar[] = {
    HEAD(struct cx_uar),
    F("User-Name", 1, 0, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_uar, impi),
    F("Public-Identity", 601, V3, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_uar, impu),
    F("Visited-Network-Identifier", 600, V3, DT_OS, DF_REQ, 0, ID_MAX, struct cx_uar, visited),
    F("User-Authorization-Type", 623, V3, DT_I32, 0, 0, 2, struct cx_uar, auth_type),
    F("UAR-Flags", 637, V3, DT_U32, 0, 0, 0, struct cx_uar, uar_flags),
};
TABLE(dia_t_uar, f_uar);

/* TS 29.229 §6.1.7 MAR */
static const struct dia_field f_mar[] = {
    HEAD(struct cx_mar),
    F("User-Name", 1, 0, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_mar, impi),
    F("Public-Identity", 601, V3, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_mar, impu),
    F("Server-Name", 602, V3, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_mar, server_name),
    F("SIP-Number-Auth-Items", 607, V3, DT_U32, DF_REQ, 0, 0, struct cx_mar, n_items),
    FG("SIP-Auth-Data-Item", 612, V3, DF_REQ, struct cx_mar, item, t_item),
};
TABLE(dia_t_mar, f_mar);

/* TS 29.229 §6.1.3 SAR */
static const struct dia_field f_sar[] = {
    HEAD(struct cx_sar),
    F("User-Name", 1, 0, DT_UTF8, 0, 1, ID_MAX, struct cx_sar, impi),
    FM("Public-Identity", 601, V3, DT_UTF8, 0, 1, ID_MAX, struct cx_sar, impu, n_impu),
    F("Server-Name", 602, V3, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_sar, server_name),
    F("Server-Assignment-Type", 614, V3, DT_I32, DF_REQ, 0, CX_SAT_MAX, struct cx_sar, sat),
    F("User-Data-Already-Available", 624, V3, DT_I32, DF_REQ, 0, 1, struct cx_sar, uda),
    F("Wildcarded-Public-Identity", 634, V3, DT_UTF8, 0, 1, ID_MAX, struct cx_sar, wildcard),
    F("SAR-Flags", 655, V3, DT_U32, 0, 0, 0, struct cx_sar, sar_flags),
};
TABLE(dia_t_sar, f_sar);

/* TS 29.229 §6.1.5 LIR */
static const struct dia_field f_lir[] = {
    HEAD(struct cx_lir),
    F("Public-Identity", 601, V3, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_lir, impu),
    F("Originating-Request", 633, V3, DT_I32, 0, 0, 0, struct cx_lir, originating),
    F("Wildcarded-Public-Identity", 634, V3, DT_UTF8, 0, 1, ID_MAX, struct cx_lir, wildcard),
};
TABLE(dia_t_lir, f_lir);

/* TS 29.229 §6.1.9 RTR */
static const struct dia_field f_rtr[] = {
    HEAD(struct cx_rtr),
    F("User-Name", 1, 0, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_rtr, impi),
    FM("Public-Identity", 601, V3, DT_UTF8, 0, 1, ID_MAX, struct cx_rtr, impu, n_impu),
    FG("Deregistration-Reason", 615, V3, DF_REQ, struct cx_rtr, reason, t_reason),
};
TABLE(dia_t_rtr, f_rtr);

/* TS 29.229 §6.1.11 PPR */
static const struct dia_field f_ppr[] = {
    HEAD(struct cx_ppr),
    F("User-Name", 1, 0, DT_UTF8, DF_REQ, 1, ID_MAX, struct cx_ppr, impi),
    F("User-Data", 606, V3, DT_OS, 0, 0, XML_MAX, struct cx_ppr, user_data),
    FG("Charging-Information", 618, V3, 0, struct cx_ppr, charging, t_charging),
};
TABLE(dia_t_ppr, f_ppr);

/* TS 29.329 §6.1.1 UDR */
static const struct dia_field f_udr[] = {
    HEAD(struct sh_udr),
    FG("User-Identity", 700, V3, DF_REQ, struct sh_udr, uid, t_uid),
    FM("Data-Reference", 703, V3, DT_I32, DF_REQ, 0, 63, struct sh_udr, dref, n_dref),
    FM("Service-Indication", 704, V3, DT_OS, 0, 1, ID_MAX, struct sh_udr, si, n_si),
    FM("Identity-Set", 708, V3, DT_I32, 0, 0, 3, struct sh_udr, idset, n_idset),
    F("Server-Name", 602, V3, DT_UTF8, 0, 1, ID_MAX, struct sh_udr, server_name),
    F("Wildcarded-Public-Identity", 634, V3, DT_UTF8, 0, 1, ID_MAX, struct sh_udr, wildcard),
};
TABLE(dia_t_udr, f_udr);

/* TS 29.329 §6.1.3 PUR */
static const struct dia_field f_pur[] = {
    HEAD(struct sh_pur),
    FG("User-Identity", 700, V3, DF_REQ, struct sh_pur, uid, t_uid),
    F("Data-Reference", 703, V3, DT_I32, DF_REQ, 0, 63, struct sh_pur, dref),
    F("User-Data", 702, V3, DT_OS, DF_REQ, 1, XML_MAX, struct sh_pur, user_data),
};
TABLE(dia_t_pur, f_pur);

/* ---- answers ---- */

static const struct dia_field f_ans[] = {
    F("Result-Code", 268, 0, DT_U32, 0, 0, 0, struct dia_ans, result_code),
    FG("Experimental-Result", 297, 0, 0, struct dia_ans, exp, t_exp),
    F("User-Name", 1, 0, DT_UTF8, 0, 1, ID_MAX, struct dia_ans, user_name),
    FM("Public-Identity", 601, V3, DT_UTF8, 0, 1, ID_MAX, struct dia_ans, impu, n_impu),
    F("Server-Name", 602, V3, DT_UTF8, 0, 1, ID_MAX, struct dia_ans, server_name),
    FG("Server-Capabilities", 603, V3, 0, struct dia_ans, caps, t_caps),
    F("SIP-Number-Auth-Items", 607, V3, DT_U32, 0, 0, 0, struct dia_ans, n_items),
    FGM("SIP-Auth-Data-Item", 612, V3, 0, struct dia_ans, items, n_item, t_item),
    F("User-Data", 606, V3, DT_OS, 0, 0, XML_MAX, struct dia_ans, user_data),
    FG("Charging-Information", 618, V3, 0, struct dia_ans, charging, t_charging),
    FG("Associated-Identities", 632, V3, 0, struct dia_ans, assoc, t_assoc),
    F("Wildcarded-Public-Identity", 634, V3, DT_UTF8, 0, 1, ID_MAX, struct dia_ans, wildcard),
    F("User-Data", 702, V3, DT_OS, 0, 0, XML_MAX, struct dia_ans, sh_data),
    FM("Redirect-Host", 292, 0, DT_OS, 0, 1, ID_MAX, struct dia_ans, redirect, n_redirect),
    F("Redirect-Host-Usage", 261, 0, DT_I32, 0, 0, 6, struct dia_ans, redirect_usage),
    F("Error-Message", 281, 0, DT_UTF8, 0, 0, 1024, struct dia_ans, error_message),
};
TABLE(dia_t_ans, f_ans);
