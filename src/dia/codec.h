/* codec.h - the table-driven AVP <-> struct codec and the Cx/Dx/Sh
 * dictionary.  Inside src/dia (and its tests) only: this is where
 * freeDiameter's struct msg and struct avp meet our plain structs
 * (dia/msgs.h).
 *
 * One table per struct: each row names an AVP (code, vendor), its type,
 * whether it is required, how often it may occur, the length (strings) or
 * value (integers) bounds, and where it lives in the struct.  The same
 * table decodes (checking everything before any copy, so a peer never
 * reaches a handler with a missing, repeated, oversized or mistyped AVP)
 * and encodes (the client in the tests, and our answers).
 *
 * Decoding never copies: string fields become slices of the message's
 * buffer (valid while the message lives).  Unknown AVPs are skipped:
 * freeDiameter has already answered DIAMETER_AVP_UNSUPPORTED for an
 * unknown AVP with the M bit (RFC 6733 §4.1), so what remains is
 * ignorable (Kamailio's vendor-50 AVP 494 in a SAR, for one). */
#ifndef IMS_DIA_CODEC_H
#define IMS_DIA_CODEC_H

/* Include this header first: freeDiameter defines LOG_* macros of its own,
 * which are replaced here by ours (base/log.h). */
#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>
#undef LOG_A
#undef LOG_D
#undef LOG_N
#undef LOG_E
#undef LOG_F
#include "base/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dia/msgs.h"

enum dia_type { DT_U32, DT_I32, DT_OS, DT_UTF8, DT_GROUP };
#define DF_REQ 1u   /* must be present (DIAMETER_MISSING_AVP otherwise) */
#define DF_MULTI 2u /* repeats: an array of max_n at off, count (size_t) at n_off */

struct dia_table;
struct dia_field {
    const char *name;
    uint32_t code, vendor;
    uint8_t type, flags;
    uint16_t max_n;  /* DF_MULTI: array capacity (more: AVP_OCCURS_TOO_MANY_TIMES) */
    uint32_t min, max; /* DT_OS/DT_UTF8: length bounds; DT_U32/DT_I32: value bounds if max > min */
    size_t off;      /* value, or first element, or nested struct */
    size_t n_off;    /* DF_MULTI: offset of the size_t count */
    size_t stride;   /* DF_MULTI: element size */
    const struct dia_table *sub; /* DT_GROUP: the nested struct's table */
};
struct dia_table {
    const char *name;
    const struct dia_field *f;
    size_t n; /* at most 64: the present bits */
};

/* Why a decode failed: the RFC 6733 Result-Code to answer with and the
 * AVP to put in Failed-AVP (the offending one, or - for a missing AVP -
 * its code and vendor). */
struct dia_fail {
    uint32_t result; /* DIA_MISSING_AVP, DIA_INVALID_AVP_VALUE, DIA_AVP_OCCURS_TOO_MANY_TIMES */
    uint32_t code, vendor;
    struct avp *avp; /* the offending AVP, NULL when missing */
    const char *field;
    const char *why;
};

/* The tables (dia/tables.c). */
extern const struct dia_table dia_t_uar, dia_t_mar, dia_t_sar, dia_t_lir, dia_t_rtr, dia_t_ppr;
extern const struct dia_table dia_t_udr, dia_t_pur, dia_t_ans;

/* Decodes the children of parent (a message or a grouped AVP) into out
 * by table t: the present bits and repeat counts are reset first; a field
 * is meaningful only when its present bit is set.  0, IMS_EPROTO (a peer error: *fail says
 * which), IMS_EBACKEND (freeDiameter failed). */
int dia_decode(msg_or_avp *parent, const struct dia_table *t, void *out, struct dia_fail *fail);

/* Appends the present fields of in to parent, in table order.
 * 0, IMS_ENOMEM or IMS_EBACKEND (freeDiameter refused; logged). */
int dia_encode(msg_or_avp *parent, const struct dia_table *t, const void *in);

/* A message just received (parsed into AVPs, before freeDiameter's
 * dictionary): removes every top-level Session-Id that freeDiameter 1.2.1
 * cannot take, and its dispatcher reads the Session-Id before any handler
 * of ours runs (tests/fuzz/fuzz_dia.c found the first):
 * - sent with the V flag: it finds no model, leaves it without a value, and
 *   fd_msg_sess_get() fails an assert (the process aborts);
 * - a value with a NUL byte: the session lookup fails and freeDiameter
 *   shuts itself down (the process lives on without Diameter);
 * - an empty value: fd_sess_new() reads it as a C string, past the AVP;
 * - a value that does not decode.
 * The request goes on without a Session-Id.  Returns how many were
 * removed; *why (may be NULL) gets the last one's reason, a static string. */
size_t dia_drop_bad_session_id(struct msg *m, const char **why);

/* The same for Proxy-Info, which freeDiameter copies into every answer to
 * the request, ours and its own error answers alike: removes each one it
 * could not copy (sent with the V flag: when empty, building the answer
 * fails and leaks; tests/fuzz/fuzz_dia.c found it).  The answer then
 * carries the Proxy-Infos that remain.  Returns how many were removed. */
size_t dia_drop_bad_proxy_info(struct msg *m, const char **why);

/* Adds Failed-AVP for f to the answer ans.  0 or IMS_EBACKEND. */
int dia_add_failed_avp(struct msg *ans, const struct dia_fail *f);

/* Adds one AVP of the dictionary with an integer or string value. */
int dia_add_u32(msg_or_avp *parent, uint32_t code, uint32_t vendor, uint32_t v);
int dia_add_str(msg_or_avp *parent, uint32_t code, uint32_t vendor, ims_str v);
/* Adds Vendor-Specific-Application-Id {10415, app} and, when
 * auth_state >= 0, Auth-Session-State. */
int dia_add_app_avps(msg_or_avp *parent, uint32_t app, int auth_state);

/* ---- dictionary (dia/dict.c) ---- */

/* Adds the 3GPP vendor, the Cx and Sh applications, their commands and
 * every AVP of the tables to freeDiameter's dictionary (after
 * fd_core_initialize()).  Idempotent.  0 or IMS_EBACKEND. */
int dia_dict_load(void);
/* Cached dictionary objects; NULL if unknown. */
struct dict_object *dia_dict_avp(uint32_t code, uint32_t vendor);
struct dict_object *dia_dict_cmd(uint32_t code, bool request);
struct dict_object *dia_dict_app(uint32_t app);
struct dict_object *dia_dict_vendor(void);

#endif
