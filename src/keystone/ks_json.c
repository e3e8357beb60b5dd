/* ks_json.c - Keystone v3 JSON bodies -> plain structs (jansson).
 *
 * Everything Keystone sends is checked for type before use; a missing
 * optional field is NULL, a missing required one (token.user.id,
 * token.expires_at) makes the whole body IMS_EPROTO. */
#include <jansson.h>
#include <stddef.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "keystone/ks_int.h"

#define KS_JSON_FLAGS (JSON_REJECT_DUPLICATES)

struct tok_box {
    atomic_uint refs;
    struct ims_ks_token t;
};

/* ---- small helpers ---- */

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Duplicates o[key] if it is a string; *ok = false on ENOMEM. */
static char *jdup(const json_t *o, const char *key, bool *ok)
{
    const char *s = jstr(o, key);
    if (!s)
        return NULL;
    char *d = ims_strndup(s, strlen(s));
    if (!d)
        *ok = false;
    return d;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian, no libc time zone. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

int ks_parse_time(const char *s, int64_t *out)
{
    /* ISO 8601 as Keystone writes it: YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00) */
    unsigned y, mo, d, h, mi, se;
    if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return IMS_EPROTO;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return IMS_EPROTO;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return IMS_EPROTO;
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p != '\0' && *p != 'Z' && strcmp(p, "+00:00") != 0)
        return IMS_EPROTO; /* Keystone always answers in UTC */
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

/* ---- tokens ---- */

static void token_free(struct ims_ks_token *t)
{
    ims_free(t->user_id);
    ims_free(t->user_name);
    ims_free(t->user_domain_id);
    ims_free(t->user_domain_name);
    ims_free(t->project_id);
    ims_free(t->project_name);
    ims_free(t->project_domain_id);
    ims_free(t->project_domain_name);
    ims_free(t->app_cred_id);
    for (size_t i = 0; i < t->nroles; i++) {
        ims_free(t->roles[i].id);
        ims_free(t->roles[i].name);
    }
    ims_free(t->roles);
    for (size_t i = 0; i < t->nmethods; i++)
        ims_free(t->methods[i]);
    ims_free(t->methods);
    for (size_t i = 0; i < t->nendpoints; i++) {
        ims_free(t->endpoints[i].type);
        ims_free(t->endpoints[i].interface);
        ims_free(t->endpoints[i].region);
        ims_free(t->endpoints[i].url);
    }
    ims_free(t->endpoints);
}

struct ims_ks_token *ims_ks_token_ref(struct ims_ks_token *t)
{
    struct tok_box *b = (struct tok_box *)((char *)t - offsetof(struct tok_box, t));
    atomic_fetch_add(&b->refs, 1);
    return t;
}

void ims_ks_token_unref(struct ims_ks_token *t)
{
    if (!t)
        return;
    struct tok_box *b = (struct tok_box *)((char *)t - offsetof(struct tok_box, t));
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        token_free(t);
        ims_free(b);
    }
}

bool ims_ks_token_has_role(const struct ims_ks_token *t, const char *name)
{
    for (size_t i = 0; i < t->nroles; i++)
        if (t->roles[i].name && strcmp(t->roles[i].name, name) == 0)
            return true;
    return false;
}

bool ims_ks_token_has_method(const struct ims_ks_token *t, const char *method)
{
    for (size_t i = 0; i < t->nmethods; i++)
        if (strcmp(t->methods[i], method) == 0)
            return true;
    return false;
}

const char *ims_ks_token_endpoint(const struct ims_ks_token *t, const char *type,
                                  const char *interface, const char *region)
{
    if (!interface)
        interface = "public";
    for (size_t i = 0; i < t->nendpoints; i++) {
        const struct ims_ks_endpoint *e = &t->endpoints[i];
        if (e->type && strcmp(e->type, type) == 0 && e->interface &&
            strcmp(e->interface, interface) == 0 &&
            (!region || (e->region && strcmp(e->region, region) == 0)))
            return e->url;
    }
    return NULL;
}

static int parse_roles(const json_t *arr, struct ims_ks_token *t)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0)
        return 0;
    t->roles = ims_calloc(n, sizeof(*t->roles));
    if (!t->roles)
        return IMS_ENOMEM;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(arr, i);
        t->roles[t->nroles].id = jdup(r, "id", &ok);
        t->roles[t->nroles].name = jdup(r, "name", &ok);
        t->nroles++;
    }
    return ok ? 0 : IMS_ENOMEM;
}

static int parse_methods(const json_t *arr, struct ims_ks_token *t)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0)
        return IMS_EPROTO; /* every token was issued by some method */
    t->methods = ims_calloc(n, sizeof(*t->methods));
    if (!t->methods)
        return IMS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(json_array_get(arr, i));
        if (!m)
            return IMS_EPROTO;
        if (!(t->methods[t->nmethods] = ims_strndup(m, strlen(m))))
            return IMS_ENOMEM;
        t->nmethods++;
    }
    return 0;
}

/* catalog: [{type, endpoints: [{interface, region_id, url}]}] flattened */
static int parse_catalog(const json_t *cat, struct ims_ks_token *t)
{
    size_t n = 0, i, j;
    const json_t *svc, *ep;
    json_array_foreach(cat, i, svc) n += json_array_size(json_object_get(svc, "endpoints"));
    t->has_catalog = true;
    if (n == 0)
        return 0;
    t->endpoints = ims_calloc(n, sizeof(*t->endpoints));
    if (!t->endpoints)
        return IMS_ENOMEM;
    bool ok = true;
    json_array_foreach(cat, i, svc) {
        json_array_foreach(json_object_get(svc, "endpoints"), j, ep) {
            struct ims_ks_endpoint *e = &t->endpoints[t->nendpoints++];
            e->type = jdup(svc, "type", &ok);
            e->interface = jdup(ep, "interface", &ok);
            e->region = jdup(ep, "region_id", &ok);
            e->url = jdup(ep, "url", &ok);
        }
    }
    return ok ? 0 : IMS_ENOMEM;
}

static int fill_token(const json_t *tk, struct ims_ks_token *t)
{
    bool ok = true;
    const json_t *user = json_object_get(tk, "user");
    const json_t *udom = json_object_get(user, "domain");
    if (!jstr(user, "id") || ks_parse_time(jstr(tk, "expires_at"), &t->expires_at) != 0)
        return IMS_EPROTO;
    if (ks_parse_time(jstr(tk, "issued_at"), &t->issued_at) != 0)
        t->issued_at = 0;
    t->user_id = jdup(user, "id", &ok);
    t->user_name = jdup(user, "name", &ok);
    t->user_domain_id = jdup(udom, "id", &ok);
    t->user_domain_name = jdup(udom, "name", &ok);
    const json_t *proj = json_object_get(tk, "project");
    if (json_is_object(proj)) {
        const json_t *pdom = json_object_get(proj, "domain");
        t->project_id = jdup(proj, "id", &ok);
        t->project_name = jdup(proj, "name", &ok);
        t->project_domain_id = jdup(pdom, "id", &ok);
        t->project_domain_name = jdup(pdom, "name", &ok);
    }
    t->system_scope = json_is_object(json_object_get(tk, "system"));
    t->app_cred_id = jdup(json_object_get(tk, "application_credential"), "id", &ok);
    if (!ok)
        return IMS_ENOMEM;
    int rc = parse_methods(json_object_get(tk, "methods"), t);
    if (rc == 0)
        rc = parse_roles(json_object_get(tk, "roles"), t);
    const json_t *cat = json_object_get(tk, "catalog");
    if (rc == 0 && json_is_array(cat))
        rc = parse_catalog(cat, t);
    return rc;
}

int ks_parse_token(const char *body, size_t len, struct ims_ks_token **out)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, KS_JSON_FLAGS, &jerr);
    const json_t *tk = json_object_get(root, "token");
    if (!json_is_object(tk)) {
        json_decref(root);
        return IMS_EPROTO;
    }
    struct tok_box *b = ims_calloc(1, sizeof(*b));
    if (!b) {
        json_decref(root);
        return IMS_ENOMEM;
    }
    atomic_init(&b->refs, 1);
    int rc = fill_token(tk, &b->t);
    json_decref(root);
    if (rc != 0) {
        token_free(&b->t);
        ims_free(b);
        return rc;
    }
    *out = &b->t;
    return 0;
}

/* ---- role assignments ---- */

void ks_free_assignments(struct ims_ks_assignment *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ims_free(a[i].role_id);
        ims_free(a[i].role_name);
        ims_free(a[i].project_id);
        ims_free(a[i].domain_id);
    }
    ims_free(a);
}

int ks_parse_assignments(const char *body, size_t len, struct ims_ks_assignment **out, size_t *n)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, KS_JSON_FLAGS, &jerr);
    const json_t *arr = json_object_get(root, "role_assignments");
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        json_decref(root);
        return IMS_EPROTO;
    }
    size_t cnt = json_array_size(arr), i;
    struct ims_ks_assignment *a = cnt ? ims_calloc(cnt, sizeof(*a)) : NULL;
    if (cnt && !a) {
        json_decref(root);
        return IMS_ENOMEM;
    }
    bool ok = true;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        const json_t *role = json_object_get(it, "role");
        const json_t *scope = json_object_get(it, "scope");
        a[i].role_id = jdup(role, "id", &ok);
        a[i].role_name = jdup(role, "name", &ok);
        a[i].project_id = jdup(json_object_get(scope, "project"), "id", &ok);
        a[i].domain_id = jdup(json_object_get(scope, "domain"), "id", &ok);
        a[i].system_scope = json_is_object(json_object_get(scope, "system"));
    }
    json_decref(root);
    if (!ok) {
        ks_free_assignments(a, cnt);
        return IMS_ENOMEM;
    }
    *out = a;
    *n = cnt;
    return 0;
}

/* ---- credentials ---- */

void ks_free_credentials(struct ims_ks_credential *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ims_free(c[i].id);
        ims_free(c[i].user_id);
        ims_free(c[i].project_id);
        ims_free(c[i].type);
        ks_wipe_free(c[i].blob); /* secrets (HA1, K/OPc) */
    }
    ims_free(c);
}

int ks_parse_credentials(const char *body, size_t len, struct ims_ks_credential **out, size_t *n)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, KS_JSON_FLAGS, &jerr);
    const json_t *arr = json_object_get(root, "credentials");
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        json_decref(root);
        return IMS_EPROTO;
    }
    size_t cnt = json_array_size(arr), i;
    struct ims_ks_credential *c = cnt ? ims_calloc(cnt, sizeof(*c)) : NULL;
    if (cnt && !c) {
        json_decref(root);
        return IMS_ENOMEM;
    }
    bool ok = true;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        c[i].id = jdup(it, "id", &ok);
        c[i].user_id = jdup(it, "user_id", &ok);
        c[i].project_id = jdup(it, "project_id", &ok);
        c[i].type = jdup(it, "type", &ok);
        c[i].blob = jdup(it, "blob", &ok);
    }
    json_decref(root);
    if (!ok) {
        ks_free_credentials(c, cnt);
        return IMS_ENOMEM;
    }
    *out = c;
    *n = cnt;
    return 0;
}

void ks_free_users(struct ims_ks_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ims_free(u[i].id);
        ims_free(u[i].name);
        ims_free(u[i].domain_id);
    }
    ims_free(u);
}

/* GET /v3/users: {"users": [{"id", "name", "domain_id", "enabled"}, ...]} */
int ks_parse_users(const char *body, size_t len, struct ims_ks_user **out, size_t *n)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, KS_JSON_FLAGS, &jerr);
    const json_t *arr = json_object_get(root, "users");
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        json_decref(root);
        return IMS_EPROTO;
    }
    size_t cnt = json_array_size(arr), i;
    struct ims_ks_user *u = cnt ? ims_calloc(cnt, sizeof(*u)) : NULL;
    if (cnt && !u) {
        json_decref(root);
        return IMS_ENOMEM;
    }
    bool ok = true;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        u[i].id = jdup(it, "id", &ok);
        u[i].name = jdup(it, "name", &ok);
        u[i].domain_id = jdup(it, "domain_id", &ok);
        /* absent "enabled" means enabled (identity API v3) */
        u[i].enabled = !json_is_false(json_object_get(it, "enabled"));
    }
    json_decref(root);
    if (!ok) {
        ks_free_users(u, cnt);
        return IMS_ENOMEM;
    }
    *out = u;
    *n = cnt;
    return 0;
}
