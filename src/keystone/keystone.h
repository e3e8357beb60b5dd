/* keystone.h - an OpenStack Keystone (identity API v3) client on imscloud's
 * event loops: service authentication, token validation with a shared cache,
 * role assignments, the catalog and the credentials API.
 * See docs/internals/keystone.md.
 *
 * Objects:
 *   struct ims_ks_ctx   one per process: the options, the validation cache
 *                       (shared by every worker, one mutex) and the service
 *                       token.  Thread-safe.
 *   struct ims_ks       one per event loop: a libcurl multi handle whose
 *                       sockets and timer are that loop's ios and timer.
 *                       Used only from its loop's thread.
 *   struct ims_ks_token an immutable, reference-counted validated token.
 *
 * Lifetime rules:
 * 1. A ctx outlives every ims_ks made from it; an ims_ks is freed on its
 *    loop's thread, before the loop is freed.
 * 2. Every call taking a callback follows the callback rule: on an error
 *    return the callback never runs; on 0 it runs exactly once, on the
 *    client's loop, never from inside the call.
 * 3. Data passed to a callback (token, lists) is borrowed for the duration
 *    of the callback; keep a token with ims_ks_token_ref().
 * 4. Subject tokens are copied while a request needs them and wiped when it
 *    ends.  The cache is keyed by SHA-256 of the token, never the token, and
 *    logs show only the first 12 hex digits of that hash (tok=...).
 * 5. Keystone unreachable, timing out (timeout_ms), answering 5xx or refusing
 *    the service account: the request fails closed with IMS_EBACKEND and a
 *    LOG_W "event=keystone_unavailable url=... err=...". */
#ifndef IMS_KEYSTONE_KEYSTONE_H
#define IMS_KEYSTONE_KEYSTONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ims_loop;
struct ims_cfg;
struct ims_ks_ctx;
struct ims_ks;

/* Options (all strings borrowed by ims_ks_ctx_new, which copies them). */
struct ims_ks_opts {
    const char *url;           /* identity v3 root, e.g. http://127.0.0.1:5000/v3 */
    /* service account: a password user ... */
    const char *user, *password, *user_domain;
    /* ... scoped to a project (name + its domain), or, without a project, to
     * the system (`{"system":{"all":true}}`) */
    const char *project, *project_domain;
    /* ... or an application credential (then user and password are unused;
     * the token is scoped to the credential's project) */
    const char *app_cred_id, *app_cred_secret;
    const char *ca_file;       /* NULL: the system trust store */
    unsigned cache_ttl_s;      /* positive validations; 0 disables caching */
    unsigned negative_ttl_s;   /* 404s (invalid/revoked); 0 disables */
    unsigned timeout_ms;       /* whole HTTP request */
    unsigned max_pending;      /* per ims_ks: requests in flight or queued */
    unsigned cache_size;       /* entries in the shared cache */
};

/* Fills opts from the [keystone] section.  Secrets named by password_file /
 * application_credential_secret_file are read into *secret_buf (caller frees
 * with ims_free; wipe before).  0, IMS_ENOENT (no url: Keystone not
 * configured), IMS_EINVAL (err says why: neither or both credential kinds,
 * unreadable file), IMS_ENOMEM.  opts borrows cfg's strings. */
int ims_ks_opts_from_cfg(const struct ims_cfg *cfg, struct ims_ks_opts *opts, char **secret_buf,
                         char *err, size_t errsz);

/* 0, IMS_EINVAL (a required option missing), IMS_ENOMEM, IMS_EBACKEND
 * (libcurl could not be initialised). */
int ims_ks_ctx_new(const struct ims_ks_opts *opts, struct ims_ks_ctx **out);
/* Frees the ctx: every ims_ks made from it must be freed first. */
void ims_ks_ctx_free(struct ims_ks_ctx *ctx);

/* A client bound to `loop` (ctx and loop borrowed).  0, IMS_ENOMEM, IMS_EIO. */
int ims_ks_new(struct ims_ks_ctx *ctx, struct ims_loop *loop, struct ims_ks **out);
/* Aborts every request of this client: their callbacks run, from inside this
 * call (the one exception to rule 2), with IMS_EBACKEND.  NULL is a no-op. */
void ims_ks_free(struct ims_ks *ks);

/* ---- validated tokens ---- */

struct ims_ks_role {
    char *id, *name;
};

struct ims_ks_endpoint {
    char *type;      /* service type: "identity", "compute", "ims", ... */
    char *interface; /* "public", "internal", "admin" */
    char *region;
    char *url;
};

enum { IMS_KS_HASH_LEN = 32, IMS_KS_LOGHASH = 12 };

struct ims_ks_token {
    char *user_id, *user_name, *user_domain_id, *user_domain_name;
    char *project_id, *project_name, *project_domain_id, *project_domain_name; /* NULL if none */
    bool system_scope;
    char *app_cred_id;         /* set when issued for an application credential */
    struct ims_ks_role *roles;
    size_t nroles;
    char **methods;            /* "password", "totp", "application_credential", "token" */
    size_t nmethods;
    int64_t issued_at, expires_at; /* Unix seconds (UTC) */
    struct ims_ks_endpoint *endpoints; /* only when validated with IMS_KS_CATALOG */
    size_t nendpoints;
    bool has_catalog;
    char hash_hex[IMS_KS_LOGHASH + 1]; /* first hex digits of SHA-256(token), for logs */
};

/* Token references are thread-safe (atomic count). */
struct ims_ks_token *ims_ks_token_ref(struct ims_ks_token *t);
void ims_ks_token_unref(struct ims_ks_token *t); /* NULL is a no-op */
bool ims_ks_token_has_role(const struct ims_ks_token *t, const char *name);
bool ims_ks_token_has_method(const struct ims_ks_token *t, const char *method);
/* The catalog URL of service `type` for `interface` (NULL: "public") in
 * `region` (NULL: any); borrowed from t, or NULL. */
const char *ims_ks_token_endpoint(const struct ims_ks_token *t, const char *type,
                                  const char *interface, const char *region);

enum { IMS_KS_CATALOG = 1 }; /* validation flag: also fetch the catalog */

/* rc: 0 (tok valid), IMS_ENOENT (invalid, expired or revoked: 404 from
 * Keystone, or cached as such), IMS_EBACKEND (Keystone unavailable),
 * IMS_EPROTO (Keystone's answer made no sense), IMS_ENOMEM. */
typedef void (*ims_ks_token_cb)(void *arg, int rc, struct ims_ks_token *tok);

/* Synchronous cache look-up (no request).  0 (*out referenced: unref it),
 * IMS_ENOENT (cached as invalid), IMS_EAGAIN (not cached: validate). */
int ims_ks_lookup(struct ims_ks *ks, const char *token, size_t len, unsigned flags,
                  struct ims_ks_token **out);

/* Validates `token` (GET /v3/auth/tokens, X-Subject-Token).  Served from the
 * cache when possible; concurrent validations of one token, on any worker of
 * the ctx, share one Keystone request (single flight).  A cached positive
 * result lives min(cache_ttl, the token's expires_at); a 404 lives
 * negative_ttl.  0 or IMS_ENOMEM, IMS_ELIMIT (max_pending), IMS_EINVAL
 * (empty token). */
int ims_ks_validate(struct ims_ks *ks, const char *token, size_t len, unsigned flags,
                    ims_ks_token_cb cb, void *arg);

/* ---- role assignments: GET /v3/role_assignments?user.id=..&effective ---- */

struct ims_ks_assignment {
    char *role_id, *role_name;
    char *project_id;  /* NULL for domain or system scope */
    char *domain_id;   /* domain scope, else NULL */
    bool system_scope;
};

/* rc: 0, IMS_EBACKEND, IMS_EPROTO, IMS_ENOMEM; list borrowed (rule 3). */
typedef void (*ims_ks_assign_cb)(void *arg, int rc, const struct ims_ks_assignment *a, size_t n);
/* project_id may be NULL (every scope).  0, IMS_ENOMEM, IMS_ELIMIT, IMS_EINVAL. */
int ims_ks_role_assignments(struct ims_ks *ks, const char *user_id, const char *project_id,
                            ims_ks_assign_cb cb, void *arg);

/* ---- credentials API: GET /v3/credentials?user_id=..&type=.. ---- */

struct ims_ks_credential {
    char *id, *user_id, *project_id, *type;
    char *blob; /* as stored: for ims-digest a JSON document (a secret: never log it) */
};

typedef void (*ims_ks_cred_cb)(void *arg, int rc, const struct ims_ks_credential *c, size_t n);
/* type may be NULL (all types).  An empty list may also mean the service
 * account may not read them (Keystone filters instead of refusing). */
int ims_ks_credentials(struct ims_ks *ks, const char *user_id, const char *type,
                       ims_ks_cred_cb cb, void *arg);

/* ---- users: GET /v3/users?name=..&domain_id=.. ---- */

struct ims_ks_user {
    char *id, *name, *domain_id;
    bool enabled;
};

/* rc: 0, IMS_EBACKEND, IMS_EPROTO, IMS_ENOMEM; list borrowed (rule 3).
 * An empty list: no such user in that domain (or the service account may
 * not list users: Keystone filters instead of refusing). */
typedef void (*ims_ks_user_cb)(void *arg, int rc, const struct ims_ks_user *u, size_t n);
/* The users named `name` (exact match) in domain `domain_id` (NULL: any
 * domain).  0, IMS_ENOMEM, IMS_ELIMIT, IMS_EINVAL (empty name). */
int ims_ks_users_by_name(struct ims_ks *ks, const char *name, const char *domain_id,
                         ims_ks_user_cb cb, void *arg);

/* ---- service token and statistics ---- */

/* Makes sure the client holds a service token (authenticating if needed);
 * cb gets 0 or IMS_EBACKEND / IMS_EPROTO / IMS_ENOMEM (tok is NULL).
 * Other calls do this implicitly; it exists for start-up checks. */
int ims_ks_authenticate(struct ims_ks *ks, ims_ks_token_cb cb, void *arg);

struct ims_ks_stats {
    uint64_t requests;          /* HTTP requests sent to Keystone, of any kind */
    uint64_t auth_requests;     /* POST /v3/auth/tokens (service authentication) */
    uint64_t validate_requests; /* GET /v3/auth/tokens */
    uint64_t cache_hits;        /* answered from the cache (positive or negative) */
    uint64_t joined;            /* validations that joined another's request */
    uint64_t failures;          /* requests failed as IMS_EBACKEND */
    uint64_t reauth;            /* 401 on the service token: re-authenticated */
};
/* This client's counters (read on its loop's thread). */
void ims_ks_get_stats(const struct ims_ks *ks, struct ims_ks_stats *out);
/* Expiry (Unix s) of the service token in use by this client, 0 if none. */
int64_t ims_ks_service_token_expiry(const struct ims_ks *ks);

#endif
