/* fuzz_keystone.c - libFuzzer harness for what Keystone answers
 * (src/keystone/ks_json.c): a token validation body (GET /v3/auth/tokens),
 * role assignments, credentials and users; and the ISO 8601 times in them.
 * Keystone is ours, but what reaches us over HTTP is bytes: a proxy or a
 * Keystone that misbehaves must get IMS_EPROTO, never a crash or a token
 * the policy would read wrongly.
 *
 * The first byte picks the body (byte % 5: token, assignments,
 * credentials, users, a bare time string); the rest is the body.
 * Properties beyond "no crash":
 * - a token that parses has a user id and at least one method, each method
 *   and role name is found by ims_ks_token_has_method/has_role, every
 *   catalog endpoint with a type and an interface is found by
 *   ims_ks_token_endpoint (that or an earlier one of the same type,
 *   interface and region);
 * - a time that parses equals libc's timegm() of the same fields (the
 *   parser does its own calendar arithmetic);
 * - a body parses the same way twice (the verdict, the count of entries);
 *   a refusal hands out nothing.
 * Built without libFuzzer it is just a function (fuzz_keystone_replay runs
 * the corpus). */
#define _GNU_SOURCE /* timegm */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "keystone/ks_int.h"

#include "fuzz.h"

/* ks_parse_time's fields read the obvious way, through libc's calendar */
static void check_time(const char *s)
{
    int64_t t = 0;
    if (ks_parse_time(s, &t) != 0)
        return;
    struct tm tm = { 0 };
    CHECK(sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    CHECK((int64_t)timegm(&tm) == t);
}

static void check_token(const struct ims_ks_token *t)
{
    CHECK(t->user_id && t->nmethods > 0);
    for (size_t i = 0; i < t->nmethods; i++)
        CHECK(t->methods[i] && ims_ks_token_has_method(t, t->methods[i]));
    for (size_t i = 0; i < t->nroles; i++)
        CHECK(!t->roles[i].name || ims_ks_token_has_role(t, t->roles[i].name));
    CHECK(t->nendpoints == 0 || t->has_catalog);
    for (size_t i = 0; i < t->nendpoints; i++) {
        const struct ims_ks_endpoint *e = &t->endpoints[i];
        if (!e->type || !e->interface)
            continue;
        const char *url = ims_ks_token_endpoint(t, e->type, e->interface, e->region);
        bool earlier = false; /* the first match wins: one at or before i */
        for (size_t k = 0; k <= i && !earlier; k++) {
            const struct ims_ks_endpoint *o = &t->endpoints[k];
            earlier = o->url == url && o->type && !strcmp(o->type, e->type) && o->interface &&
                      !strcmp(o->interface, e->interface) &&
                      (!e->region || (o->region && !strcmp(o->region, e->region)));
        }
        CHECK(earlier);
    }
}

static void token(const char *body, size_t len)
{
    struct ims_ks_token *t = NULL, *again = NULL;
    int rc = ks_parse_token(body, len, &t);
    CHECK(rc == 0 || rc == IMS_EPROTO || rc == IMS_ENOMEM);
    if (rc != 0)
        return;
    check_token(t);
    if (ks_parse_token(body, len, &again) == 0) {
        CHECK(again->nroles == t->nroles && again->nmethods == t->nmethods &&
              again->nendpoints == t->nendpoints && again->expires_at == t->expires_at &&
              strcmp(again->user_id, t->user_id) == 0);
        ims_ks_token_unref(again);
    }
    ims_ks_token_unref(t);
}

static void lists(unsigned kind, const char *body, size_t len)
{
    size_t n = 0, m = 0;
    int rc, rc2;
    if (kind == 1) {
        struct ims_ks_assignment *a = NULL, *b = NULL;
        rc = ks_parse_assignments(body, len, &a, &n);
        rc2 = ks_parse_assignments(body, len, &b, &m);
        CHECK(rc != 0 || n == 0 || a);
        ks_free_assignments(a, n);
        ks_free_assignments(b, m);
    } else if (kind == 2) {
        struct ims_ks_credential *c = NULL, *d = NULL;
        rc = ks_parse_credentials(body, len, &c, &n);
        rc2 = ks_parse_credentials(body, len, &d, &m);
        ks_free_credentials(c, n);
        ks_free_credentials(d, m);
    } else {
        struct ims_ks_user *u = NULL, *v = NULL;
        rc = ks_parse_users(body, len, &u, &n);
        rc2 = ks_parse_users(body, len, &v, &m);
        ks_free_users(u, n);
        ks_free_users(v, m);
    }
    CHECK(rc == 0 || rc == IMS_EPROTO || rc == IMS_ENOMEM);
    CHECK(rc == 0 || n == 0); /* a refusal hands out nothing */
    CHECK(rc2 == rc || rc == IMS_ENOMEM || rc2 == IMS_ENOMEM);
    if (rc == 0 && rc2 == 0)
        CHECK(n == m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    const char *rest;
    size_t len;
    fuzz_quiet();
    if (!fuzz_mode(data, size, &mode, &rest, &len))
        return 0;
    unsigned kind = mode % 5u;
    if (kind == 0) {
        token(rest, len);
    } else if (kind < 4) {
        lists(kind, rest, len);
    } else {
        char *s = strndup(rest, len); /* a C string, as jansson hands it over */
        if (s)
            check_time(s);
        free(s);
    }
    return 0;
}
