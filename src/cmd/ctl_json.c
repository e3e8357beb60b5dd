/* ctl_json.c - the provisioning document (docs/admin.md, "JSON"): JSON ->
 * struct ctl_doc with every field validated and named by its path, checks
 * against the store, the atomic apply (one ims_store_import()
 * transaction), the JSON export (no secrets), and the export/import
 * commands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cmd/ctl.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "crypto/encode.h"
#include "crypto/milenage.h"
#include "hss/userdata.h"
#include "store/store_ext.h"

#define PATH_MAX_LEN 160
#define MAX_LINKS 4096 /* IMPU links of one IMPI in an export */

/* ---------------------------------------------------------------- errors */

/* A JSON path into dst (truncated if ever longer: it only names a field). */
static void jpath(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jpath(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

void ctl_errs_add(struct ctl_errs *e, const char *fmt, ...)
{
    if (e->n < sizeof(e->msg) / sizeof(e->msg[0])) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg[e->n], sizeof(e->msg[0]), fmt, ap);
        va_end(ap);
        e->n++;
    }
    e->total++;
}

void ctl_doc_free(struct ctl_doc *d)
{
    for (size_t i = 0; i < d->nsubs; i++) {
        struct ctl_doc_sub *s = &d->subs[i];
        for (size_t j = 0; j < s->nimpis; j++)
            ims_free(s->impis[j].links);
        if (s->impis)
            ims_wipe(s->impis, s->nimpis * sizeof(*s->impis));
        ims_free(s->impis);
        ims_free(s->impus);
    }
    for (size_t i = 0; i < d->nprofiles; i++)
        ims_free(d->profiles[i].xml);
    ims_free(d->subs);
    ims_free(d->profiles);
    ims_free(d->scscfs);
    ims_free(d->xlinks);
    memset(d, 0, sizeof(*d));
}

/* ------------------------------------------------------- field helpers */

static const char *const type_names[] = { "public", "distinct-psi", "wildcard-psi",
                                          "wildcard-impu" };

const char *ctl_type_name(int type)
{
    return type >= 0 && type < 4 ? type_names[type] : "?";
}

/* Keys of obj must be among allowed (NULL-terminated); others are errors. */
static void known_keys(json_t *obj, const char *path, const char *const *allowed,
                       struct ctl_errs *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            ctl_errs_add(e, "%s%s%s: unknown key", path, path[0] ? "." : "", key);
    }
}

/* A string member: absent -> false (and error if required); wrong type,
 * too long or invalid -> error. */
typedef bool (*str_check)(const char *s, char *why, size_t whysz);

static bool get_str(json_t *obj, const char *key, const char *path, bool required, char *out,
                    size_t cap, str_check check, struct ctl_errs *e)
{
    json_t *v = json_object_get(obj, key);
    char why[160];
    out[0] = '\0';
    if (!v) {
        if (required)
            ctl_errs_add(e, "%s.%s: missing", path, key);
        return false;
    }
    if (!json_is_string(v)) {
        ctl_errs_add(e, "%s.%s: must be a string", path, key);
        return false;
    }
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v)) {
        ctl_errs_add(e, "%s.%s: longer than %zu bytes or holds a NUL", path, key, cap - 1);
        return false;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    if (check && !check(out, why, sizeof(why))) {
        ctl_errs_add(e, "%s.%s: %s", path, key, why);
        out[0] = '\0';
        return false;
    }
    return true;
}

static bool opt_name(const char *s, char *why, size_t whysz)
{
    return s[0] == '\0' || ctl_valid_name(s, why, whysz);
}

static bool get_bool(json_t *obj, const char *key, const char *path, bool *out,
                     struct ctl_errs *e)
{
    json_t *v = json_object_get(obj, key);
    *out = false;
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        ctl_errs_add(e, "%s.%s: must be true or false", path, key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool get_uint(json_t *obj, const char *key, const char *path, uint64_t min, uint64_t max,
                     uint64_t *out, struct ctl_errs *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max) {
        ctl_errs_add(e, "%s.%s: must be an integer %llu..%llu", path, key,
                     (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* An array member (absent -> NULL, no error unless required). */
static json_t *get_array(json_t *obj, const char *key, const char *path, bool required,
                         size_t max, struct ctl_errs *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            ctl_errs_add(e, "%s%s%s: missing", path, path[0] ? "." : "", key);
        return NULL;
    }
    if (!json_is_array(v)) {
        ctl_errs_add(e, "%s%s%s: must be an array", path, path[0] ? "." : "", key);
        return NULL;
    }
    if (json_array_size(v) > max) {
        ctl_errs_add(e, "%s%s%s: more than %zu entries", path, path[0] ? "." : "", key, max);
        return NULL;
    }
    return v;
}

static json_t *get_object(json_t *obj, const char *key, const char *path, struct ctl_errs *e)
{
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_object(v)) {
        ctl_errs_add(e, "%s.%s: must be an object", path, key);
        return NULL;
    }
    return v;
}

static bool get_caps(json_t *obj, const char *key, const char *path, uint32_t *caps, size_t *n,
                     struct ctl_errs *e)
{
    json_t *a = get_array(obj, key, path, false, IMS_STORE_MAX_CAPS, e);
    size_t i;
    json_t *v;
    *n = 0;
    if (!a)
        return false;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t)UINT32_MAX) {
            ctl_errs_add(e, "%s.%s[%zu]: must be an integer 0..4294967295", path, key, i);
            continue;
        }
        caps[(*n)++] = (uint32_t)json_integer_value(v);
    }
    return true;
}

/* Two URIs at most (primary, secondary). */
static void get_pair(json_t *obj, const char *key, const char *path, char (*out)[IMS_STORE_ID_MAX],
                     struct ctl_errs *e)
{
    char p[PATH_MAX_LEN + 32];
    json_t *a = get_array(obj, key, path, false, 2, e);
    size_t i;
    json_t *v;
    if (!a)
        return;
    json_array_foreach(a, i, v) {
        char why[160];
        jpath(p, sizeof(p), "%s.%s[%zu]", path, key, i);
        if (!json_is_string(v) || json_string_length(v) >= IMS_STORE_ID_MAX ||
            !ctl_valid_id(json_string_value(v), why, sizeof(why))) {
            ctl_errs_add(e, "%s: must be a URI (printable, no spaces, < %d bytes)", p,
                         IMS_STORE_ID_MAX);
            continue;
        }
        snprintf(out[i], IMS_STORE_ID_MAX, "%s", json_string_value(v));
    }
}

/* ---------------------------------------------------- JSON -> document */

static void parse_profile(json_t *o, const char *path, struct ctl_doc_profile *p,
                          struct ctl_errs *e)
{
    static const char *const keys[] = { "name", "xml", NULL };
    if (!json_is_object(o)) {
        ctl_errs_add(e, "%s: must be an object", path);
        return;
    }
    known_keys(o, path, keys, e);
    get_str(o, "name", path, true, p->name, sizeof(p->name), ctl_valid_name, e);
    json_t *x = json_object_get(o, "xml");
    if (x && !json_is_string(x)) {
        ctl_errs_add(e, "%s.xml: must be a string", path);
        return;
    }
    const char *xs = x ? json_string_value(x) : "";
    size_t xlen = x ? json_string_length(x) : 0;
    if (xlen > IMS_STORE_XML_MAX || strlen(xs) != xlen) {
        ctl_errs_add(e, "%s.xml: longer than %d bytes or holds a NUL", path, IMS_STORE_XML_MAX);
        return;
    }
    if (xlen && !ims_xml_fragment_ok(ims_str_make(xs, xlen))) {
        ctl_errs_add(e, "%s.xml: not well-formed XML (InitialFilterCriteria elements expected)",
                     path);
        return;
    }
    p->xml = ims_strndup(xs, xlen);
    if (!p->xml)
        ctl_errs_add(e, "%s.xml: out of memory", path);
}

static void parse_scscf(json_t *o, const char *path, struct ctl_doc_scscf *s, struct ctl_errs *e)
{
    static const char *const keys[] = { "name", "capabilities", "diameter_host", NULL };
    if (!json_is_object(o)) {
        ctl_errs_add(e, "%s: must be an object", path);
        return;
    }
    known_keys(o, path, keys, e);
    get_str(o, "name", path, true, s->name, sizeof(s->name), ctl_valid_id, e);
    get_caps(o, "capabilities", path, s->caps, &s->ncaps, e);
}

static void parse_impi(json_t *o, const char *path, struct ctl_doc_impi *m, struct ctl_errs *e)
{
    static const char *const keys[] = { "identity", "realm",  "schemes", "password",
                                        "keep_password", "k", "op",  "opc",
                                        "amf",      "sqn",    "impus",   "secrets", NULL };
    char p[PATH_MAX_LEN + 32], hex[80], why[160];
    if (!json_is_object(o)) {
        ctl_errs_add(e, "%s: must be an object", path);
        return;
    }
    known_keys(o, path, keys, e);
    get_str(o, "identity", path, true, m->identity, sizeof(m->identity), ctl_valid_id, e);
    if (!get_str(o, "realm", path, false, m->realm, sizeof(m->realm), ctl_valid_id, e) &&
        !json_object_get(o, "realm")) {
        const char *at = strchr(m->identity, '@');
        if (at && at[1])
            snprintf(m->realm, sizeof(m->realm), "%s", at + 1);
        else if (m->identity[0])
            ctl_errs_add(e, "%s.realm: missing (the identity has no @domain to take it from)",
                         path);
    }
    /* secrets (import only) */
    if (get_str(o, "password", path, false, m->password, sizeof(m->password), NULL, e)) {
        if (m->password[0] == '\0')
            ctl_errs_add(e, "%s.password: must not be empty", path);
        else
            m->has_password = true;
    }
    get_bool(o, "keep_password", path, &m->keep_password, e);
    bool has_k = get_str(o, "k", path, false, hex, sizeof(hex), NULL, e);
    if (has_k && !ctl_hex(hex, m->k, 16, why, sizeof(why))) {
        ctl_errs_add(e, "%s.k: %s", path, why);
        has_k = false;
    }
    bool has_op = get_str(o, "op", path, false, hex, sizeof(hex), NULL, e);
    uint8_t op[16];
    if (has_op && !ctl_hex(hex, op, 16, why, sizeof(why))) {
        ctl_errs_add(e, "%s.op: %s", path, why);
        has_op = false;
    }
    bool has_opc = get_str(o, "opc", path, false, hex, sizeof(hex), NULL, e);
    if (has_opc && !ctl_hex(hex, m->opc, 16, why, sizeof(why))) {
        ctl_errs_add(e, "%s.opc: %s", path, why);
        has_opc = false;
    }
    bool any_k = json_object_get(o, "k") != NULL;
    bool any_op = json_object_get(o, "op") != NULL, any_opc = json_object_get(o, "opc") != NULL;
    if (any_op && any_opc)
        ctl_errs_add(e, "%s.opc: give op or opc, not both", path);
    else if (any_k && !any_op && !any_opc)
        ctl_errs_add(e, "%s.k: needs op or opc", path);
    else if (!any_k && (any_op || any_opc))
        ctl_errs_add(e, "%s.%s: needs k", path, any_op ? "op" : "opc");
    else if (has_k && has_op && ims_milenage_opc(m->k, op, m->opc) != 0)
        ctl_errs_add(e, "%s.op: cannot derive OPc", path);
    ims_wipe(op, sizeof(op));
    ims_wipe(hex, sizeof(hex));
    m->has_aka = has_k && (has_op || has_opc);
    m->amf[0] = 0x80;
    m->amf[1] = 0x00;
    if (get_str(o, "amf", path, false, hex, sizeof(hex), NULL, e) &&
        !ctl_hex(hex, m->amf, 2, why, sizeof(why)))
        ctl_errs_add(e, "%s.amf: %s", path, why);
    get_uint(o, "sqn", path, 0, IMS_AKA_SQN_MAX, &m->sqn, e);
    /* schemes: an array of names (or one comma list); default from the secrets */
    json_t *sv = json_object_get(o, "schemes");
    if (sv) {
        const char *lists[16];
        int n = 0;
        bool ok = true;
        if (json_is_string(sv)) {
            lists[n++] = json_string_value(sv);
        } else if (json_is_array(sv) && json_array_size(sv) <= 16) {
            size_t i;
            json_t *x;
            json_array_foreach(sv, i, x) {
                if (!json_is_string(x))
                    ok = false;
                else
                    lists[n++] = json_string_value(x);
            }
        } else {
            ok = false;
        }
        if (!ok)
            ctl_errs_add(e, "%s.schemes: must be an array of scheme names", path);
        else if (!ctl_schemes(lists, n, &m->schemes, why, sizeof(why)))
            ctl_errs_add(e, "%s.schemes: %s", path, why);
    } else {
        m->schemes = (m->has_password ? IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 |
                                            IMS_AUTH_DIGEST_SHA512_256
                                      : 0) |
                     (m->has_aka ? IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5 : 0);
    }
    /* links */
    json_t *l = get_array(o, "impus", path, false, MAX_LINKS, e);
    m->links_all = json_object_get(o, "impus") == NULL;
    if (l && json_array_size(l)) {
        m->links = ims_calloc(json_array_size(l), sizeof(*m->links));
        if (!m->links) {
            ctl_errs_add(e, "%s.impus: out of memory", path);
            return;
        }
        size_t i;
        json_t *x;
        json_array_foreach(l, i, x) {
            jpath(p, sizeof(p), "%s.impus[%zu]", path, i);
            if (!json_is_string(x) || json_string_length(x) >= IMS_STORE_ID_MAX ||
                !ctl_valid_impu(json_string_value(x), why, sizeof(why))) {
                ctl_errs_add(e, "%s: %s", p,
                             json_is_string(x) ? why : "must be a string (an IMPU identity)");
                continue;
            }
            snprintf(m->links[m->nlinks++], IMS_STORE_ID_MAX, "%s", json_string_value(x));
        }
    }
}

static void parse_impu(json_t *o, const char *path, struct ctl_doc_impu *u, struct ctl_errs *e)
{
    static const char *const keys[] = { "identity", "irs",       "profile", "barred",
                                        "type",     "reg_state", NULL };
    char type[32];
    uint64_t irs = 1;
    if (!json_is_object(o)) {
        ctl_errs_add(e, "%s: must be an object", path);
        return;
    }
    known_keys(o, path, keys, e);
    get_str(o, "identity", path, true, u->identity, sizeof(u->identity), ctl_valid_impu, e);
    get_uint(o, "irs", path, 1, UINT32_MAX, &irs, e);
    u->irs = (unsigned)irs;
    get_str(o, "profile", path, false, u->profile, sizeof(u->profile), opt_name, e);
    get_bool(o, "barred", path, &u->barred, e);
    u->type = 0;
    if (get_str(o, "type", path, false, type, sizeof(type), NULL, e)) {
        u->type = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(type, type_names[i]) == 0)
                u->type = i;
        if (u->type < 0) {
            ctl_errs_add(e, "%s.type: must be public, distinct-psi, wildcard-psi or "
                            "wildcard-impu",
                         path);
            u->type = 0;
        }
    }
}

static void parse_sub(json_t *o, const char *path, struct ctl_doc_sub *s, struct ctl_errs *e)
{
    static const char *const keys[] = { "name",  "charging", "keystone",       "capabilities",
                                        "impis", "impus",    "assigned_scscf", "roles",
                                        NULL };
    static const char *const ckeys[] = { "ccf", "ecf", NULL };
    static const char *const kkeys[] = { "user_id", "project_id", NULL };
    static const char *const capkeys[] = { "mandatory", "optional", NULL };
    char p[PATH_MAX_LEN + 32];
    if (!json_is_object(o)) {
        ctl_errs_add(e, "%s: must be an object", path);
        return;
    }
    known_keys(o, path, keys, e);
    get_str(o, "name", path, true, s->rec.name, sizeof(s->rec.name), ctl_valid_name, e);
    json_t *ch = get_object(o, "charging", path, e);
    if (ch) {
        jpath(p, sizeof(p), "%s.charging", path);
        known_keys(ch, p, ckeys, e);
        get_pair(ch, "ccf", p, s->rec.ccf, e);
        get_pair(ch, "ecf", p, s->rec.ecf, e);
    }
    json_t *ks = get_object(o, "keystone", path, e);
    if (ks) {
        jpath(p, sizeof(p), "%s.keystone", path);
        known_keys(ks, p, kkeys, e);
        get_str(ks, "user_id", p, false, s->rec.keystone_user_id,
                sizeof(s->rec.keystone_user_id), opt_name, e);
        get_str(ks, "project_id", p, false, s->rec.keystone_project_id,
                sizeof(s->rec.keystone_project_id), opt_name, e);
    }
    get_str(o, "roles", path, false, s->rec.roles, sizeof(s->rec.roles), ctl_valid_roles, e);
    json_t *caps = get_object(o, "capabilities", path, e);
    if (caps) {
        jpath(p, sizeof(p), "%s.capabilities", path);
        known_keys(caps, p, capkeys, e);
        get_caps(caps, "mandatory", p, s->rec.caps_mandatory, &s->rec.n_mandatory, e);
        get_caps(caps, "optional", p, s->rec.caps_optional, &s->rec.n_optional, e);
    }
    json_t *impis = get_array(o, "impis", path, false, CTL_DOC_MAX_RECORDS, e);
    json_t *impus = get_array(o, "impus", path, false, CTL_DOC_MAX_RECORDS, e);
    size_t i;
    json_t *x;
    if (impis && json_array_size(impis)) {
        s->impis = ims_calloc(json_array_size(impis), sizeof(*s->impis));
        if (!s->impis) {
            ctl_errs_add(e, "%s.impis: out of memory", path);
            return;
        }
        s->nimpis = json_array_size(impis);
        json_array_foreach(impis, i, x) {
            jpath(p, sizeof(p), "%s.impis[%zu]", path, i);
            parse_impi(x, p, &s->impis[i], e);
        }
    }
    if (impus && json_array_size(impus)) {
        s->impus = ims_calloc(json_array_size(impus), sizeof(*s->impus));
        if (!s->impus) {
            ctl_errs_add(e, "%s.impus: out of memory", path);
            return;
        }
        s->nimpus = json_array_size(impus);
        json_array_foreach(impus, i, x) {
            jpath(p, sizeof(p), "%s.impus[%zu]", path, i);
            parse_impu(x, p, &s->impus[i], e);
        }
    }
    /* links name IMPUs of this subscriber */
    for (size_t j = 0; j < s->nimpis; j++) {
        struct ctl_doc_impi *m = &s->impis[j];
        for (size_t k = 0; k < m->nlinks; k++) {
            size_t u = 0;
            while (u < s->nimpus && strcmp(s->impus[u].identity, m->links[k]) != 0)
                u++;
            if (u == s->nimpus)
                ctl_errs_add(e, "%s.impis[%zu].impus[%zu]: %s is not an IMPU of this subscriber",
                             path, j, k, m->links[k]);
        }
    }
}

/* Duplicate detection across the document: (key, path) pairs sorted. */
struct dkey {
    const char *kind, *key;
    char path[PATH_MAX_LEN];
};

static int dkey_cmp(const void *a, const void *b)
{
    const struct dkey *x = a, *y = b;
    int r = strcmp(x->kind, y->kind);
    return r ? r : strcmp(x->key, y->key);
}

static void check_dups(const struct ctl_doc *d, struct ctl_errs *e)
{
    size_t n = d->nprofiles + d->nscscfs + d->nsubs, k = 0;
    for (size_t i = 0; i < d->nsubs; i++)
        n += d->subs[i].nimpis + d->subs[i].nimpus;
    if (n < 2)
        return;
    struct dkey *keys = ims_calloc(n, sizeof(*keys));
    if (!keys) {
        ctl_errs_add(e, "document: out of memory");
        return;
    }
    for (size_t i = 0; i < d->nprofiles; i++) {
        keys[k] = (struct dkey){ "profile", d->profiles[i].name, "" };
        jpath(keys[k++].path, PATH_MAX_LEN, "profiles[%zu].name", i);
    }
    for (size_t i = 0; i < d->nscscfs; i++) {
        keys[k] = (struct dkey){ "scscf", d->scscfs[i].name, "" };
        jpath(keys[k++].path, PATH_MAX_LEN, "scscfs[%zu].name", i);
    }
    for (size_t i = 0; i < d->nsubs; i++) {
        const struct ctl_doc_sub *s = &d->subs[i];
        keys[k] = (struct dkey){ "subscriber", s->rec.name, "" };
        jpath(keys[k++].path, PATH_MAX_LEN, "subscribers[%zu].name", i);
        for (size_t j = 0; j < s->nimpis; j++) {
            keys[k] = (struct dkey){ "IMPI", s->impis[j].identity, "" };
            jpath(keys[k++].path, PATH_MAX_LEN, "subscribers[%zu].impis[%zu].identity", i, j);
        }
        for (size_t j = 0; j < s->nimpus; j++) {
            keys[k] = (struct dkey){ "IMPU", s->impus[j].identity, "" };
            jpath(keys[k++].path, PATH_MAX_LEN, "subscribers[%zu].impus[%zu].identity", i, j);
        }
    }
    /* stable order for messages: qsort is not stable, so sort by path too */
    qsort(keys, k, sizeof(*keys), dkey_cmp);
    for (size_t i = 1; i < k; i++)
        if (keys[i].key[0] && dkey_cmp(&keys[i - 1], &keys[i]) == 0) {
            const char *first = strcmp(keys[i - 1].path, keys[i].path) < 0 ? keys[i - 1].path
                                                                            : keys[i].path;
            const char *second = first == keys[i].path ? keys[i - 1].path : keys[i].path;
            ctl_errs_add(e, "%s: %s %s is listed twice (also %s)", second, keys[i].kind,
                         keys[i].key, first);
        }
    ims_free(keys);
}

int ctl_doc_from_json(ims_str text, struct ctl_doc *d, struct ctl_errs *e)
{
    static const char *const keys[] = { "version", "profiles", "scscfs", "subscribers", NULL };
    json_error_t jerr;
    char p[PATH_MAX_LEN];
    memset(d, 0, sizeof(*d));
    if (text.len > CTL_DOC_MAX_BYTES) {
        ctl_errs_add(e, "document: larger than %u bytes", CTL_DOC_MAX_BYTES);
        return CTL_USAGE;
    }
    json_t *root = json_loadb(text.p ? text.p : "", text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        ctl_errs_add(e, "document: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return CTL_USAGE;
    }
    if (!json_is_object(root)) {
        ctl_errs_add(e, "document: must be a JSON object");
        json_decref(root);
        return CTL_USAGE;
    }
    known_keys(root, "", keys, e);
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        ctl_errs_add(e, "version: must be 1");
    json_t *profiles = get_array(root, "profiles", "", false, CTL_DOC_MAX_RECORDS, e);
    json_t *scscfs = get_array(root, "scscfs", "", false, CTL_DOC_MAX_RECORDS, e);
    json_t *subs = get_array(root, "subscribers", "", false, CTL_DOC_MAX_RECORDS, e);
    size_t i;
    json_t *x;
    if (profiles && json_array_size(profiles)) {
        d->profiles = ims_calloc(json_array_size(profiles), sizeof(*d->profiles));
        d->nprofiles = d->profiles ? json_array_size(profiles) : 0;
        json_array_foreach(profiles, i, x) {
            if (i == d->nprofiles)
                break;
            jpath(p, sizeof(p), "profiles[%zu]", i);
            parse_profile(x, p, &d->profiles[i], e);
        }
    }
    if (scscfs && json_array_size(scscfs)) {
        d->scscfs = ims_calloc(json_array_size(scscfs), sizeof(*d->scscfs));
        d->nscscfs = d->scscfs ? json_array_size(scscfs) : 0;
        json_array_foreach(scscfs, i, x) {
            if (i == d->nscscfs)
                break;
            jpath(p, sizeof(p), "scscfs[%zu]", i);
            parse_scscf(x, p, &d->scscfs[i], e);
        }
    }
    if (subs && json_array_size(subs)) {
        d->subs = ims_calloc(json_array_size(subs), sizeof(*d->subs));
        d->nsubs = d->subs ? json_array_size(subs) : 0;
        json_array_foreach(subs, i, x) {
            if (i == d->nsubs)
                break;
            jpath(p, sizeof(p), "subscribers[%zu]", i);
            parse_sub(x, p, &d->subs[i], e);
        }
    }
    if ((profiles && json_array_size(profiles) && !d->profiles) ||
        (scscfs && json_array_size(scscfs) && !d->scscfs) ||
        (subs && json_array_size(subs) && !d->subs))
        ctl_errs_add(e, "document: out of memory");
    size_t records = d->nprofiles + d->nscscfs + d->nsubs;
    for (i = 0; i < d->nsubs; i++)
        records += d->subs[i].nimpis + d->subs[i].nimpus;
    if (records > CTL_DOC_MAX_RECORDS)
        ctl_errs_add(e, "document: more than %d records", CTL_DOC_MAX_RECORDS);
    json_decref(root);
    if (e->total == 0) {
        /* profiles named by IMPUs must be in the document or (checked
         * later) in the store; links were checked per subscriber */
        check_dups(d, e);
    }
    return e->total ? CTL_USAGE : 0;
}

/* -------------------------------------------------- checks vs the store */

static bool doc_has_profile(const struct ctl_doc *d, const char *name)
{
    for (size_t i = 0; i < d->nprofiles; i++)
        if (strcmp(d->profiles[i].name, name) == 0)
            return true;
    return false;
}

/* 1 exists, 0 not, <0 store error */
static int profile_exists(struct ims_store *st, const char *name)
{
    struct ims_buf x;
    ims_buf_init(&x, IMS_STORE_XML_MAX + 1);
    int rc = ims_store_profile_get(st, ims_str_cstr(name), &x);
    ims_buf_free(&x);
    return rc == 0 ? 1 : rc == IMS_ENOENT ? 0 : rc;
}

struct scscf_find {
    const char *name;
    bool found;
};

static int scscf_find_cb(void *ctx, const char *name, const uint32_t *caps, size_t n)
{
    struct scscf_find *f = ctx;
    if (strcmp(f->name, name) == 0)
        f->found = true;
    return 0;
}

/* The subscription an IMPU / IMPI of the document or the store is in;
 * "" when unknown.  rc <0 on store errors. */
static int impu_sub(struct ims_store *st, const struct ctl_doc *d, const char *impu, char *sub,
                    size_t cap)
{
    sub[0] = '\0';
    for (size_t i = 0; i < d->nsubs; i++)
        for (size_t j = 0; j < d->subs[i].nimpus; j++)
            if (strcmp(d->subs[i].impus[j].identity, impu) == 0) {
                snprintf(sub, cap, "%s", d->subs[i].rec.name);
                return 0;
            }
    struct ims_impu_rec r;
    int rc = ims_store_impu_get(st, ims_str_cstr(impu), &r);
    if (rc == 0)
        snprintf(sub, cap, "%s", r.subscription);
    return rc == IMS_ENOENT ? 0 : rc;
}

static int impi_sub(struct ims_store *st, const struct ctl_doc *d, const char *impi, char *sub,
                    size_t cap)
{
    sub[0] = '\0';
    for (size_t i = 0; i < d->nsubs; i++)
        for (size_t j = 0; j < d->subs[i].nimpis; j++)
            if (strcmp(d->subs[i].impis[j].identity, impi) == 0) {
                snprintf(sub, cap, "%s", d->subs[i].rec.name);
                return 0;
            }
    struct ims_impi_rec r;
    int rc = ims_store_impi_get(st, ims_str_cstr(impi), &r);
    if (rc == 0)
        snprintf(sub, cap, "%s", r.subscription);
    return rc == IMS_ENOENT ? 0 : rc;
}

int ctl_doc_check(struct ims_store *st, const struct ctl_doc *d, struct ctl_errs *e)
{
    int rc = 0;
    char sub[IMS_STORE_NAME_MAX];
    for (size_t i = 0; rc >= 0 && i < d->nprofiles; i++) {
        rc = profile_exists(st, d->profiles[i].name);
        if (rc == 1)
            ctl_errs_add(e, "profiles[%zu].name: profile %s already exists (change it with "
                            "`profile put`)",
                         i, d->profiles[i].name);
    }
    for (size_t i = 0; rc >= 0 && i < d->nscscfs; i++) {
        struct scscf_find f = { d->scscfs[i].name, false };
        rc = ims_store_scscf_list(st, scscf_find_cb, &f);
        if (rc == 0 && f.found)
            ctl_errs_add(e, "scscfs[%zu].name: S-CSCF %s already exists", i, d->scscfs[i].name);
    }
    for (size_t i = 0; rc >= 0 && i < d->nsubs; i++) {
        const struct ctl_doc_sub *s = &d->subs[i];
        struct ims_sub_rec r;
        rc = ims_store_sub_get(st, ims_str_cstr(s->rec.name), &r);
        if (rc == 0 && !s->existing)
            ctl_errs_add(e, "subscribers[%zu].name: subscription %s already exists", i,
                         s->rec.name);
        else if (rc == IMS_ENOENT && s->existing)
            ctl_errs_add(e, "subscribers[%zu].name: no subscription %s", i, s->rec.name);
        if (rc == IMS_ENOENT || rc == 0)
            rc = 0;
        for (size_t j = 0; rc >= 0 && j < s->nimpis; j++) {
            struct ims_impi_rec m;
            rc = ims_store_impi_get(st, ims_str_cstr(s->impis[j].identity), &m);
            if (rc == 0)
                ctl_errs_add(e, "subscribers[%zu].impis[%zu].identity: IMPI %s already exists",
                             i, j, s->impis[j].identity);
            if (rc == IMS_ENOENT || rc == 0)
                rc = 0;
            /* links to IMPUs already in the store (impi add --impu) */
            for (size_t k = 0; rc >= 0 && k < s->impis[j].nlinks; k++) {
                rc = impu_sub(st, d, s->impis[j].links[k], sub, sizeof(sub));
                if (rc == 0 && strcmp(sub, s->rec.name) != 0)
                    ctl_errs_add(e, "subscribers[%zu].impis[%zu].impus[%zu]: %s is not an IMPU "
                                    "of subscription %s",
                                 i, j, k, s->impis[j].links[k], s->rec.name);
            }
        }
        for (size_t j = 0; rc >= 0 && j < s->nimpus; j++) {
            const struct ctl_doc_impu *u = &s->impus[j];
            struct ims_impu_rec ur;
            rc = ims_store_impu_get(st, ims_str_cstr(u->identity), &ur);
            if (rc == 0)
                ctl_errs_add(e, "subscribers[%zu].impus[%zu].identity: IMPU %s already exists",
                             i, j, u->identity);
            if (rc == IMS_ENOENT || rc == 0)
                rc = 0;
            if (rc == 0 && u->profile[0] && !doc_has_profile(d, u->profile)) {
                rc = profile_exists(st, u->profile);
                if (rc == 0)
                    ctl_errs_add(e, "subscribers[%zu].impus[%zu].profile: no profile %s (in "
                                    "the document or the store)",
                                 i, j, u->profile);
            }
        }
    }
    for (size_t i = 0; rc >= 0 && i < d->nxlinks; i++) {
        char s2[IMS_STORE_NAME_MAX];
        rc = impi_sub(st, d, d->xlinks[i][0], sub, sizeof(sub));
        if (rc == 0)
            rc = impu_sub(st, d, d->xlinks[i][1], s2, sizeof(s2));
        if (rc == 0 && !sub[0])
            ctl_errs_add(e, "link: no IMPI %s", d->xlinks[i][0]);
        else if (rc == 0 && !s2[0])
            ctl_errs_add(e, "link: no IMPU %s", d->xlinks[i][1]);
        else if (rc == 0 && strcmp(sub, s2) != 0)
            ctl_errs_add(e, "link: %s (subscription %s) and %s (subscription %s) belong to "
                            "different subscriptions",
                         d->xlinks[i][0], sub, d->xlinks[i][1], s2);
    }
    if (rc < 0) {
        ctl_errs_add(e, "store: %s", ims_store_errmsg(st)[0] ? ims_store_errmsg(st)
                                                             : ims_strerror(rc));
        return CTL_FAIL;
    }
    return e->total ? CTL_FAIL : 0;
}

/* ------------------------------------------------------------ apply */

static int add_b64(struct ims_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    char *tmp = ims_alloc(IMS_B64_LEN(n) + 1);
    if (!tmp)
        return IMS_ENOMEM;
    size_t m = ims_b64_encode(s, n, tmp);
    int rc = ims_buf_add(b, tmp, m);
    ims_free(tmp);
    return rc;
}

static int add_caps(struct ims_buf *b, const char *key, const uint32_t *caps, size_t n)
{
    int rc = ims_buf_printf(b, " %s=", key);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = ims_buf_printf(b, "%s%u", i ? "," : "", caps[i]);
    return rc;
}

/* " key=<ciphertext>" of one secret (empty value when pt is NULL). */
static int add_secret(struct ims_store *st, struct ims_buf *b, const char *impi, const char *key,
                      enum ims_store_secret which, const void *pt, size_t n)
{
    int rc = ims_buf_printf(b, " %s=", key);
    if (rc == 0 && pt)
        rc = ims_store_secret_seal(st, ims_str_cstr(impi), which, pt, n, b);
    return rc;
}

static int impi_line(struct ims_store *st, struct ims_buf *b, const char *sub,
                     const struct ctl_doc_impi *m)
{
    static const char *const ha1_key[IMS_DIGEST_NALG] = { "ha1_md5", "ha1_sha256",
                                                          "ha1_sha512_256" };
    static const enum ims_store_secret ha1_sec[IMS_DIGEST_NALG] = {
        IMS_SECRET_HA1_MD5, IMS_SECRET_HA1_SHA256, IMS_SECRET_HA1_SHA512_256
    };
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    int rc = ims_buf_printf(b, "impi %s sub=%s realm=%s schemes=%u amf=%u sqn=%llu", m->identity,
                            sub, m->realm, m->schemes, (unsigned)m->amf[0] << 8 | m->amf[1],
                            (unsigned long long)m->sqn);
    if (rc == 0)
        rc = add_secret(st, b, m->identity, "k", IMS_SECRET_K, m->has_aka ? m->k : NULL, 16);
    if (rc == 0)
        rc = add_secret(st, b, m->identity, "opc", IMS_SECRET_OPC, m->has_aka ? m->opc : NULL,
                        16);
    /* TS 24.229 / TS 33.203: the Digest username is the IMPI */
    for (int a = 0; rc == 0 && a < IMS_DIGEST_NALG; a++) {
        const void *pt = NULL;
        if (m->has_password) {
            rc = ims_digest_ha1((enum ims_digest_alg)a, ims_str_cstr(m->identity),
                                ims_str_cstr(m->realm), ims_str_cstr(m->password), ha1);
            pt = ha1;
        }
        if (rc == 0)
            rc = add_secret(st, b, m->identity, ha1_key[a], ha1_sec[a], pt, pt ? strlen(ha1) : 0);
    }
    ims_wipe(ha1, sizeof(ha1));
    if (rc == 0)
        rc = add_secret(st, b, m->identity, "password", IMS_SECRET_PASSWORD,
                        m->has_password && m->keep_password ? m->password : NULL,
                        strlen(m->password));
    return rc ? rc : ims_buf_add_cstr(b, "\n");
}

/* The ims_store_import() text of the document (docs/internals/hss-store.md). */
static int doc_text(struct ims_store *st, const struct ctl_doc *d, struct ims_buf *b)
{
    int rc = ims_buf_add_cstr(b, "imscloud-hss-export v1\n");
    for (size_t i = 0; rc == 0 && i < d->nprofiles; i++) {
        rc = ims_buf_printf(b, "profile %s xml=", d->profiles[i].name);
        if (rc == 0)
            rc = add_b64(b, d->profiles[i].xml ? d->profiles[i].xml : "");
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "\n");
    }
    for (size_t i = 0; rc == 0 && i < d->nscscfs; i++) {
        rc = ims_buf_printf(b, "scscf %s", d->scscfs[i].name);
        if (rc == 0)
            rc = add_caps(b, "caps", d->scscfs[i].caps, d->scscfs[i].ncaps);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "\n");
    }
    for (size_t i = 0; rc == 0 && i < d->nsubs; i++) {
        const struct ims_sub_rec *r = &d->subs[i].rec;
        if (d->subs[i].existing)
            continue;
        rc = ims_buf_printf(b, "sub %s scscf= ccf1=%s ccf2=%s ecf1=%s ecf2=%s keystone_user=%s "
                               "keystone_project=%s roles=%s",
                            r->name, r->ccf[0], r->ccf[1], r->ecf[0], r->ecf[1],
                            r->keystone_user_id, r->keystone_project_id, r->roles);
        if (rc == 0)
            rc = add_caps(b, "caps_mandatory", r->caps_mandatory, r->n_mandatory);
        if (rc == 0)
            rc = add_caps(b, "caps_optional", r->caps_optional, r->n_optional);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "\n");
    }
    for (size_t i = 0; rc == 0 && i < d->nsubs; i++)
        for (size_t j = 0; rc == 0 && j < d->subs[i].nimpis; j++)
            rc = impi_line(st, b, d->subs[i].rec.name, &d->subs[i].impis[j]);
    for (size_t i = 0; rc == 0 && i < d->nsubs; i++)
        for (size_t j = 0; rc == 0 && j < d->subs[i].nimpus; j++) {
            const struct ctl_doc_impu *u = &d->subs[i].impus[j];
            rc = ims_buf_printf(b, "impu %s sub=%s irs=%u profile=%s barred=%d type=%d state=0\n",
                                u->identity, d->subs[i].rec.name, u->irs, u->profile,
                                u->barred ? 1 : 0, u->type);
        }
    for (size_t i = 0; rc == 0 && i < d->nsubs; i++) {
        const struct ctl_doc_sub *s = &d->subs[i];
        for (size_t j = 0; rc == 0 && j < s->nimpis; j++) {
            const struct ctl_doc_impi *m = &s->impis[j];
            if (m->links_all) {
                for (size_t k = 0; rc == 0 && k < s->nimpus; k++)
                    rc = ims_buf_printf(b, "link %s %s\n", m->identity, s->impus[k].identity);
            } else {
                for (size_t k = 0; rc == 0 && k < m->nlinks; k++)
                    rc = ims_buf_printf(b, "link %s %s\n", m->identity, m->links[k]);
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < d->nxlinks; i++)
        rc = ims_buf_printf(b, "link %s %s\n", d->xlinks[i][0], d->xlinks[i][1]);
    return rc ? rc : ims_buf_add_cstr(b, "end\n");
}

int ctl_doc_apply(struct ims_store *st, const struct ctl_doc *d, size_t *records)
{
    struct ims_buf text;
    ims_buf_init(&text, 2 * (size_t)CTL_DOC_MAX_BYTES);
    int rc = doc_text(st, d, &text);
    if (rc == 0)
        rc = ims_store_import(st, ims_buf_str(&text), records);
    /* the text holds ciphertexts only, but no need to leave them around */
    if (text.p)
        ims_wipe(text.p, text.len);
    ims_buf_free(&text);
    return rc;
}

/* ------------------------------------------------------------ export */

json_t *ctl_json_sub(const struct ims_sub_rec *r)
{
    json_t *o = json_object(), *ccf = json_array(), *ecf = json_array(), *man = json_array(),
           *opt = json_array();
    if (!o || !ccf || !ecf || !man || !opt) {
        json_decref(o);
        json_decref(ccf);
        json_decref(ecf);
        json_decref(man);
        json_decref(opt);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (r->ccf[i][0])
            json_array_append_new(ccf, json_string(r->ccf[i]));
        if (r->ecf[i][0])
            json_array_append_new(ecf, json_string(r->ecf[i]));
    }
    for (size_t i = 0; i < r->n_mandatory; i++)
        json_array_append_new(man, json_integer(r->caps_mandatory[i]));
    for (size_t i = 0; i < r->n_optional; i++)
        json_array_append_new(opt, json_integer(r->caps_optional[i]));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "charging", json_pack("{s:o, s:o}", "ccf", ccf, "ecf", ecf));
    json_object_set_new(o, "keystone", json_pack("{s:s, s:s}", "user_id", r->keystone_user_id,
                                                 "project_id", r->keystone_project_id));
    json_object_set_new(o, "capabilities",
                        json_pack("{s:o, s:o}", "mandatory", man, "optional", opt));
    json_object_set_new(o, "roles", json_string(r->roles));
    json_object_set_new(o, "assigned_scscf", json_string(r->scscf_name));
    return o;
}

json_t *ctl_json_impi(struct ims_store *st, const struct ims_impi_rec *r)
{
    char amf[5];
    json_t *o = json_object(), *schemes = json_array(), *ha1 = json_array(),
           *links = json_array();
    static const char *const alg[IMS_DIGEST_NALG] = { "md5", "sha256", "sha512-256" };
    if (!o || !schemes || !ha1 || !links) {
        json_decref(o);
        json_decref(schemes);
        json_decref(ha1);
        json_decref(links);
        return NULL;
    }
    char buf[64];
    ctl_schemes_str(r->schemes, buf, sizeof(buf));
    struct ims_cur cur = { buf, buf + strlen(buf) };
    while (!ims_cur_eof(&cur)) {
        ims_str t;
        ims_cur_until(&cur, ",", &t);
        ims_cur_char(&cur, ',');
        json_array_append_new(schemes, json_stringn(t.p, t.len));
    }
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        if (r->has_ha1[a])
            json_array_append_new(ha1, json_string(alg[a]));
    /* the IMPUs it may use */
    struct ims_impu_rec *arr = ims_calloc(MAX_LINKS, sizeof(*arr));
    size_t n = 0;
    if (arr) {
        int rc = ims_store_impus_of_impi(st, ims_str_cstr(r->identity), arr, MAX_LINKS, &n);
        if (rc == IMS_ELIMIT)
            n = MAX_LINKS;
        else if (rc)
            n = 0;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(links, json_string(arr[i].identity));
        ims_free(arr);
    }
    snprintf(amf, sizeof(amf), "%02x%02x", r->amf[0], r->amf[1]);
    json_object_set_new(o, "identity", json_string(r->identity));
    json_object_set_new(o, "realm", json_string(r->realm));
    json_object_set_new(o, "schemes", schemes);
    json_object_set_new(o, "amf", json_string(amf));
    json_object_set_new(o, "sqn", json_integer((json_int_t)r->sqn));
    /* which secrets are set, never their values */
    json_object_set_new(o, "secrets", json_pack("{s:b, s:o, s:b}", "aka", r->has_aka, "ha1", ha1,
                                                "password", r->has_password));
    json_object_set_new(o, "impus", links);
    return o;
}

json_t *ctl_json_impu(const struct ims_impu_rec *r)
{
    static const char *const states[] = { "not-registered", "registered", "unregistered" };
    return json_pack("{s:s, s:i, s:s, s:b, s:s, s:s}", "identity", r->identity, "irs",
                     (int)r->irs, "profile", r->profile, "barred", r->barred, "type",
                     ctl_type_name((int)r->type), "reg_state",
                     (unsigned)r->reg_state < 3 ? states[r->reg_state] : "?");
}

struct exp_ctx {
    struct ims_store *st;
    json_t *arr;
    json_t *peers; /* scscf name -> diameter host */
    int rc;
};

static int exp_profile(void *ctx, const char *name, uint64_t impus)
{
    struct exp_ctx *x = ctx;
    json_t *o = json_pack("{s:s}", "name", name);
    return o && json_array_append_new(x->arr, o) == 0 ? 0 : IMS_ENOMEM;
}

static int exp_scscf(void *ctx, const char *name, const uint32_t *caps, size_t n)
{
    struct exp_ctx *x = ctx;
    json_t *c = json_array();
    for (size_t i = 0; c && i < n; i++)
        json_array_append_new(c, json_integer(caps[i]));
    json_t *o = c ? json_pack("{s:s, s:o}", "name", name, "capabilities", c) : NULL;
    json_t *host = json_object_get(x->peers, name);
    if (o && host)
        json_object_set(o, "diameter_host", host);
    return o && json_array_append_new(x->arr, o) == 0 ? 0 : IMS_ENOMEM;
}

static int exp_peer(void *ctx, const struct ims_scscf_peer *p)
{
    struct exp_ctx *x = ctx;
    return json_object_set_new(x->peers, p->name, json_string(p->host)) == 0 ? 0 : IMS_ENOMEM;
}

static int exp_sub(void *ctx, const struct ims_sub_rec *r)
{
    struct exp_ctx *x = ctx;
    json_t *o = ctl_json_sub(r);
    return o && json_array_append_new(x->arr, o) == 0 ? 0 : IMS_ENOMEM;
}

static int exp_impi(void *ctx, const struct ims_impi_rec *r)
{
    struct exp_ctx *x = ctx;
    /* the links need the store: collected after the listing (cb rule) */
    json_t *o = json_pack("{s:s}", "identity", r->identity);
    return o && json_array_append_new(x->arr, o) == 0 ? 0 : IMS_ENOMEM;
}

static int exp_impu(void *ctx, const struct ims_impu_rec *r)
{
    struct exp_ctx *x = ctx;
    json_t *o = ctl_json_impu(r);
    return o && json_array_append_new(x->arr, o) == 0 ? 0 : IMS_ENOMEM;
}

int ctl_export_json(struct ims_store *st, json_t **out)
{
    struct exp_ctx x = { .st = st };
    json_t *root = json_object(), *profiles = json_array(), *scscfs = json_array(),
           *subs = json_array();
    x.peers = json_object();
    int rc = root && profiles && scscfs && subs && x.peers ? 0 : IMS_ENOMEM;
    /* profiles (names first: the callback must not call the store) */
    x.arr = profiles;
    if (rc == 0)
        rc = ims_store_profile_list(st, exp_profile, &x);
    size_t i;
    json_t *v;
    json_array_foreach(profiles, i, v) {
        struct ims_buf xml;
        if (rc)
            break;
        ims_buf_init(&xml, IMS_STORE_XML_MAX + 1);
        rc = ims_store_profile_get(st, ims_str_cstr(json_string_value(json_object_get(v, "name"))),
                                   &xml);
        if (rc == 0)
            json_object_set_new(v, "xml", json_stringn(xml.p ? xml.p : "", xml.len));
        ims_buf_free(&xml);
    }
    if (rc == 0)
        rc = ims_store_scscf_peer_list(st, exp_peer, &x);
    x.arr = scscfs;
    if (rc == 0)
        rc = ims_store_scscf_list(st, exp_scscf, &x);
    x.arr = subs;
    if (rc == 0)
        rc = ims_store_sub_list(st, exp_sub, &x);
    json_array_foreach(subs, i, v) {
        if (rc)
            break;
        ims_str name = ims_str_cstr(json_string_value(json_object_get(v, "name")));
        json_t *impis = json_array(), *impus = json_array();
        if (!impis || !impus) {
            json_decref(impis);
            json_decref(impus);
            rc = IMS_ENOMEM;
            break;
        }
        json_object_set_new(v, "impis", impis);
        json_object_set_new(v, "impus", impus);
        x.arr = impis;
        rc = ims_store_impi_list(st, name, exp_impi, &x);
        size_t j;
        json_t *w;
        json_array_foreach(impis, j, w) {
            struct ims_impi_rec r;
            if (rc)
                break;
            rc = ims_store_impi_get(st, ims_str_cstr(json_string_value(
                                            json_object_get(w, "identity"))),
                                    &r);
            json_t *full = rc == 0 ? ctl_json_impi(st, &r) : NULL;
            if (rc == 0 && !full)
                rc = IMS_ENOMEM;
            if (rc == 0)
                json_array_set_new(impis, j, full);
        }
        x.arr = impus;
        if (rc == 0)
            rc = ims_store_impu_list(st, name, exp_impu, &x);
    }
    if (rc == 0) {
        json_object_set_new(root, "version", json_integer(1));
        json_object_set(root, "profiles", profiles);
        json_object_set(root, "scscfs", scscfs);
        json_object_set(root, "subscribers", subs);
        *out = root;
        root = NULL;
    }
    json_decref(root);
    json_decref(profiles);
    json_decref(scscfs);
    json_decref(subs);
    json_decref(x.peers);
    return rc;
}

/* ------------------------------------------------------------ commands */

static int write_out(struct ctl *c, const char *path, const char *data, size_t len)
{
    FILE *f = path && strcmp(path, "-") ? fopen(path, "wx") : c->out;
    if (!f)
        return ctl_fail(c, CTL_FAIL, "%s: cannot create (it must not exist yet)", path);
    bool ok = fwrite(data, 1, len, f) == len;
    if (f != c->out)
        ok = fclose(f) == 0 && ok;
    else
        fflush(f);
    return ok ? CTL_OK : ctl_fail(c, CTL_FAIL, "%s: write failed", path ? path : "stdout");
}

int ctl_cmd_export(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = { "text", NULL };
    static const char *const usage = "[--json | --text] [FILE]";
    struct ctl_args a;
    int rc = ctl_parse(c, argc, argv, spec, 0, 1, usage, &a);
    if (rc)
        return rc;
    bool text = ctl_flag(&a, "text");
    if (text && c->json)
        return ctl_fail(c, CTL_USAGE, "--json and --text: give one");
    const char *path = a.npos ? a.pos[0] : NULL;
    c->json = false; /* the document is the output */
    if ((rc = ctl_open(c)) != 0)
        return rc;
    if (text) {
        /* the store's own format: secrets as ciphertexts (needs the same keys) */
        struct ims_buf b;
        ims_buf_init(&b, 2 * (size_t)CTL_DOC_MAX_BYTES);
        int src = ims_store_export(c->st, &b);
        rc = src ? ctl_store_fail(c, src, "export") : write_out(c, path, b.p, b.len);
        ims_buf_free(&b);
        return rc;
    }
    json_t *doc = NULL;
    int src = ctl_export_json(c->st, &doc);
    if (src)
        return ctl_store_fail(c, src, "export");
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    struct ims_buf b;
    ims_buf_init(&b, 2 * (size_t)CTL_DOC_MAX_BYTES);
    if (!s || ims_buf_add_cstr(&b, s) != 0 || ims_buf_add_cstr(&b, "\n") != 0) {
        ims_free(s);
        ims_buf_free(&b);
        return ctl_fail(c, CTL_FAIL, "export: out of memory");
    }
    ims_free(s);
    rc = write_out(c, path, b.p, b.len);
    ims_buf_free(&b);
    if (rc == 0 && path && strcmp(path, "-") != 0)
        fprintf(c->err, "imscloudctl: export: written to %s (no secrets: only which are set)\n",
                path);
    return rc;
}

static int import_text(struct ctl *c, const struct ims_buf *b)
{
    size_t n = 0;
    int rc = ims_store_import(c->st, ims_buf_str(b), &n);
    if (rc)
        return ctl_fail(c, rc == IMS_EPROTO ? CTL_USAGE : CTL_FAIL, "%s; nothing was imported",
                        ims_store_errmsg(c->st));
    ctl_say(c, "imported %zu records", n);
    return ctl_done(c, json_pack("{s:I}", "records", (json_int_t)n));
}

int ctl_cmd_import(struct ctl *c, int argc, char **argv)
{
    static const char *const spec[] = { "text", "dry-run", NULL };
    static const char *const usage = "[--json | --text] [--dry-run] FILE|-";
    struct ctl_args a;
    struct ims_buf b;
    struct ctl_doc d;
    struct ctl_errs e;
    int rc = ctl_parse(c, argc, argv, spec, 1, 1, usage, &a);
    if (rc)
        return rc;
    bool text = ctl_flag(&a, "text");
    rc = ctl_read_file(c, a.pos[0], CTL_DOC_MAX_BYTES, &b);
    if (rc) {
        ims_buf_free(&b);
        return rc;
    }
    if (text) {
        rc = ctl_open(c);
        if (rc == 0)
            rc = import_text(c, &b);
        ims_buf_free(&b);
        return rc;
    }
    memset(&e, 0, sizeof(e));
    /* 1. the whole document, before anything is written */
    rc = ctl_doc_from_json(ims_buf_str(&b), &d, &e);
    if (b.p)
        ims_wipe(b.p, b.len); /* it may hold passwords and keys */
    ims_buf_free(&b);
    /* 2. against the store */
    if (rc == 0) {
        c->create_keys = true;
        rc = ctl_open(c);
        if (rc) {
            ctl_doc_free(&d);
            return rc;
        }
        rc = ctl_doc_check(c->st, &d, &e);
    }
    if (rc) {
        for (size_t i = 0; i < e.n; i++)
            fprintf(c->err, "imscloudctl: import: %s\n", e.msg[i]);
        if (e.total > e.n)
            fprintf(c->err, "imscloudctl: import: ... and %zu more\n", e.total - e.n);
        ctl_doc_free(&d);
        return ctl_fail(c, rc, "%zu error%s; nothing was imported", e.total,
                        e.total == 1 ? "" : "s");
    }
    if (ctl_flag(&a, "dry-run")) {
        ctl_say(c, "valid: %zu subscribers, %zu profiles, %zu S-CSCFs (nothing written)",
                d.nsubs, d.nprofiles, d.nscscfs);
        ctl_doc_free(&d);
        return ctl_done(c, json_pack("{s:b}", "dry_run", 1));
    }
    /* 3. one transaction */
    size_t n = 0;
    rc = ctl_doc_apply(c->st, &d, &n);
    size_t nsubs = d.nsubs, nprof = d.nprofiles, nscscf = d.nscscfs;
    ctl_doc_free(&d);
    if (rc)
        return ctl_fail(c, CTL_FAIL, "%s; nothing was imported",
                        ims_store_errmsg(c->st)[0] ? ims_store_errmsg(c->st) : ims_strerror(rc));
    ctl_say(c, "imported %zu subscribers, %zu profiles, %zu S-CSCFs (%zu records)", nsubs, nprof,
            nscscf, n);
    return ctl_done(c, json_pack("{s:I, s:I, s:I, s:I}", "subscribers", (json_int_t)nsubs,
                                 "profiles", (json_int_t)nprof, "scscfs", (json_int_t)nscscf,
                                 "records", (json_int_t)n));
}
