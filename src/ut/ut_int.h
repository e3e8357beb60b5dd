/* ut_int.h - private to src/ut: the settings model and its JSON forms
 * (ut_doc.c, pure functions, no I/O) used by the HTTP side (ut.c). */
#ifndef IMS_UT_INT_H
#define IMS_UT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/str.h"
#include "cscf/cdiv.h"

/* The Sh service indication of the document (TS 29.328 §7.4). */
#define UT_SI "imscloud-ut"
#define UT_URI_MAX IMS_CDIV_URI_MAX
#define UT_DOC_MAX 4096 /* the stored document; far below IMS_STORE_SH_MAX */

enum ut_privacy { UT_PRIV_NONE = 0, UT_PRIV_ID, UT_PRIV_HEADER, UT_PRIV_USER };

/* One user's settings (value type; "" = not set). */
struct ut_settings {
    char cfu[UT_URI_MAX];  /* call forwarding unconditional (TS 24.604) */
    char cfb[UT_URI_MAX];  /* ... on busy */
    char cfnr[UT_URI_MAX]; /* ... on no answer */
    unsigned cfnr_timeout; /* seconds, 5..180 (default 20) */
    bool icb_all;          /* barring of all incoming communications (TS 24.611) */
    bool icb_anonymous;    /* anonymous communication rejection */
    enum ut_privacy privacy; /* the default Privacy of the user's requests (RFC 3323) */
};

/* The parts of the settings resource (URL sub-resources). */
enum ut_part {
    UT_PART_ALL = 0,   /* .../settings */
    UT_PART_CF,        /* .../settings/call-forwarding */
    UT_PART_ICB,       /* .../settings/incoming-barring */
    UT_PART_PRIVACY,   /* .../settings/privacy */
    UT_PART_DEVICES,   /* .../settings/devices (GET only) */
    UT_PART_PROJECT,   /* .../settings/project */
};

void ut_settings_default(struct ut_settings *s);

/* The stored document <-> settings.  Stored as JSON in which '<', '>' and
 * '&' only ever appear as \u003c, \u003e, \u0026, so that the Sh-Data of a
 * UDR, which embeds repository data as is, stays well-formed XML.
 * parse: 0, IMS_EPROTO (not our document).  dump: 0, IMS_ELIMIT. */
int ut_doc_parse(ims_str doc, struct ut_settings *out);
int ut_doc_dump(const struct ut_settings *s, struct ims_buf *out);

/* The JSON of one part (UT_PART_ALL: cf, icb and privacy; the caller adds
 * devices and project).  NULL on ENOMEM. */
json_t *ut_json_part(const struct ut_settings *s, enum ut_part part);

/* Applies a PUT body of part to *s (UT_PART_ALL: each member present
 * replaces its part; a part's own body replaces all of it, members absent
 * being unset).  On error *s may be half-changed (use a copy) and why
 * (static text) says what is wrong.  0, IMS_EPROTO. */
int ut_json_apply(struct ut_settings *s, enum ut_part part, json_t *body, const char **why);

/* The registry entry the S-CSCF applies (cdiv.h). */
void ut_settings_cdiv(const struct ut_settings *s, struct ims_cdiv *out);

/* Serialises j into out with '<', '>', '&' escaped (see ut_doc_parse).
 * 0, IMS_ELIMIT, IMS_ENOMEM. */
int ut_json_out(json_t *j, struct ims_buf *out);

#endif
