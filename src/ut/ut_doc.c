/* ut_doc.c - the Ut settings model: defaults, the stored Sh repository
 * document, the JSON of the API's resources (docs/ut-openapi.yaml). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sip/msg.h"
#include "ut/ut_int.h"

#define CFNR_DEFAULT 20u
#define CFNR_MIN 5u
#define CFNR_MAX 180u

static const char *const priv_names[] = { "none", "id", "header", "user" };

void ut_settings_default(struct ut_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->cfnr_timeout = CFNR_DEFAULT;
}

/* ------------------------------------------------------------ JSON out */

static json_t *uri_or_null(const char *u)
{
    return u[0] ? json_string(u) : json_null();
}

static json_t *cf_json(const struct ut_settings *s)
{
    return json_pack("{s:o, s:o, s:o, s:i}", "unconditional", uri_or_null(s->cfu), "busy",
                     uri_or_null(s->cfb), "no_answer", uri_or_null(s->cfnr),
                     "no_answer_timeout", (json_int_t)s->cfnr_timeout);
}

static json_t *icb_json(const struct ut_settings *s)
{
    return json_pack("{s:b, s:b}", "all", s->icb_all, "anonymous", s->icb_anonymous);
}

static json_t *priv_json(const struct ut_settings *s)
{
    return json_pack("{s:s}", "default", priv_names[s->privacy]);
}

json_t *ut_json_part(const struct ut_settings *s, enum ut_part part)
{
    switch (part) {
    case UT_PART_CF: return cf_json(s);
    case UT_PART_ICB: return icb_json(s);
    case UT_PART_PRIVACY: return priv_json(s);
    case UT_PART_ALL:
        return json_pack("{s:o, s:o, s:o}", "call_forwarding", cf_json(s), "incoming_barring",
                         icb_json(s), "privacy", priv_json(s));
    default: return json_object();
    }
}

int ut_json_out(json_t *j, struct ims_buf *out)
{
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n == 0)
        return IMS_ENOMEM;
    char *tmp = ims_alloc(n);
    if (!tmp)
        return IMS_ENOMEM;
    json_dumpb(j, tmp, n, JSON_COMPACT);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* only inside strings can these appear: \u escapes keep it JSON */
        switch (tmp[i]) {
        case '<': rc = ims_buf_add_cstr(out, "\\u003c"); break;
        case '>': rc = ims_buf_add_cstr(out, "\\u003e"); break;
        case '&': rc = ims_buf_add_cstr(out, "\\u0026"); break;
        default: rc = ims_buf_add(out, &tmp[i], 1); break;
        }
    }
    ims_free(tmp);
    return rc;
}

/* ------------------------------------------------------------ JSON in */

/* A forwarding target: a sip:, sips: or tel: URI that parses (RFC 3261
 * §19.1, RFC 3966), or null to unset. */
static int take_uri(json_t *v, char *out, const char **why)
{
    if (!v || json_is_null(v)) {
        out[0] = '\0';
        return 0;
    }
    const char *u = json_string_value(v);
    struct sip_uri su;
    if (!u || strlen(u) >= UT_URI_MAX || ims_sip_parse_uri(ims_str_cstr(u), &su) != 0 ||
        (su.scheme != SIP_URI_SIP && su.scheme != SIP_URI_SIPS && su.scheme != SIP_URI_TEL)) {
        *why = "a forwarding target must be a sip:, sips: or tel: URI (or null)";
        return IMS_EPROTO;
    }
    snprintf(out, UT_URI_MAX, "%s", u);
    return 0;
}

/* Refuses members other than the names listed (NULL-terminated). */
static int only_keys(json_t *o, const char *const *names, const char **why)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool known = false;
        for (size_t i = 0; names[i] && !known; i++)
            known = strcmp(k, names[i]) == 0;
        if (!known) {
            *why = "unknown member in the body";
            return IMS_EPROTO;
        }
    }
    return 0;
}

static int apply_cf(struct ut_settings *s, json_t *o, const char **why)
{
    static const char *const keys[] = { "unconditional", "busy", "no_answer",
                                        "no_answer_timeout", NULL };
    if (!json_is_object(o)) {
        *why = "call_forwarding must be an object";
        return IMS_EPROTO;
    }
    int rc = only_keys(o, keys, why);
    if (rc == 0)
        rc = take_uri(json_object_get(o, "unconditional"), s->cfu, why);
    if (rc == 0)
        rc = take_uri(json_object_get(o, "busy"), s->cfb, why);
    if (rc == 0)
        rc = take_uri(json_object_get(o, "no_answer"), s->cfnr, why);
    if (rc)
        return rc;
    json_t *t = json_object_get(o, "no_answer_timeout");
    s->cfnr_timeout = CFNR_DEFAULT;
    if (t) {
        json_int_t v = json_is_integer(t) ? json_integer_value(t) : -1;
        if (v < CFNR_MIN || v > CFNR_MAX) {
            *why = "no_answer_timeout must be an integer from 5 to 180";
            return IMS_EPROTO;
        }
        s->cfnr_timeout = (unsigned)v;
    }
    return 0;
}

static int take_bool(json_t *o, const char *name, bool *out, const char **why)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        *out = false;
        return 0;
    }
    if (!json_is_boolean(v)) {
        *why = "incoming_barring members must be true or false";
        return IMS_EPROTO;
    }
    *out = json_is_true(v);
    return 0;
}

static int apply_icb(struct ut_settings *s, json_t *o, const char **why)
{
    static const char *const keys[] = { "all", "anonymous", NULL };
    if (!json_is_object(o)) {
        *why = "incoming_barring must be an object";
        return IMS_EPROTO;
    }
    int rc = only_keys(o, keys, why);
    if (rc == 0)
        rc = take_bool(o, "all", &s->icb_all, why);
    if (rc == 0)
        rc = take_bool(o, "anonymous", &s->icb_anonymous, why);
    return rc;
}

static int apply_priv(struct ut_settings *s, json_t *o, const char **why)
{
    static const char *const keys[] = { "default", NULL };
    const char *v = json_is_object(o) ? json_string_value(json_object_get(o, "default")) : NULL;
    if (!v || only_keys(o, keys, why) != 0) {
        *why = "privacy must be {\"default\": \"none\"|\"id\"|\"header\"|\"user\"}";
        return IMS_EPROTO;
    }
    for (size_t i = 0; i < sizeof(priv_names) / sizeof(priv_names[0]); i++) {
        if (strcmp(v, priv_names[i]) == 0) {
            s->privacy = (enum ut_privacy)i;
            return 0;
        }
    }
    *why = "privacy default must be none, id, header or user";
    return IMS_EPROTO;
}

int ut_json_apply(struct ut_settings *s, enum ut_part part, json_t *body, const char **why)
{
    static const char *const keys[] = { "call_forwarding", "incoming_barring", "privacy", NULL };
    json_t *v;
    int rc;
    switch (part) {
    case UT_PART_CF: return apply_cf(s, body, why);
    case UT_PART_ICB: return apply_icb(s, body, why);
    case UT_PART_PRIVACY: return apply_priv(s, body, why);
    case UT_PART_ALL:
        if (!json_is_object(body)) {
            *why = "the body must be a JSON object";
            return IMS_EPROTO;
        }
        if ((rc = only_keys(body, keys, why)) != 0)
            return rc;
        if ((v = json_object_get(body, "call_forwarding")) && (rc = apply_cf(s, v, why)))
            return rc;
        if ((v = json_object_get(body, "incoming_barring")) && (rc = apply_icb(s, v, why)))
            return rc;
        if ((v = json_object_get(body, "privacy")) && (rc = apply_priv(s, v, why)))
            return rc;
        return 0;
    default:
        *why = "this resource cannot be written";
        return IMS_EPROTO;
    }
}

/* ------------------------------------------------------------ stored doc */

int ut_doc_dump(const struct ut_settings *s, struct ims_buf *out)
{
    json_t *j = ut_json_part(s, UT_PART_ALL);
    if (!j)
        return IMS_ENOMEM;
    json_object_set_new(j, "version", json_integer(1));
    int rc = ut_json_out(j, out);
    json_decref(j);
    if (rc == 0 && out->len > UT_DOC_MAX)
        rc = IMS_ELIMIT;
    return rc;
}

int ut_doc_parse(ims_str doc, struct ut_settings *out)
{
    const char *why = NULL;
    ut_settings_default(out);
    json_t *j = json_loadb(doc.p, doc.len, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return IMS_EPROTO;
    json_object_del(j, "version");
    int rc = ut_json_apply(out, UT_PART_ALL, j, &why);
    json_decref(j);
    return rc;
}

void ut_settings_cdiv(const struct ut_settings *s, struct ims_cdiv *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->cfu, sizeof(out->cfu), "%s", s->cfu);
    out->icb_all = s->icb_all;
    out->icb_anonymous = s->icb_anonymous;
}
