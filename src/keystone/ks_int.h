/* ks_int.h - the Keystone client's private parts (src/keystone only). */
#ifndef IMS_KEYSTONE_KS_INT_H
#define IMS_KEYSTONE_KS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "ev/loop.h"
#include "keystone/keystone.h"

#define KS_KEY_LEN (IMS_KS_HASH_LEN + 1) /* SHA-256 of the token + the flags byte */
#define KS_LOGHASH IMS_KS_LOGHASH         /* hex digits of the hash in logs */

struct ims_ks_token_priv; /* the refcount lives in front of the public struct */

/* A validation waiting for its result: in an entry's list while the request
 * runs, then in its client's inbox until its loop delivers it. */
struct ks_waiter {
    struct ks_waiter *next;           /* entry list, then inbox; under ctx->mu */
    struct ks_waiter *cl_prev, *cl_next; /* client's outstanding list; its thread only */
    struct ims_ks *ks;                /* whose loop runs cb */
    struct ks_entry *entry;           /* while in an entry's list; under ctx->mu */
    ims_ks_token_cb cb;
    void *arg;
    int rc;
    struct ims_ks_token *tok;         /* one reference, when rc == 0 */
};

enum ks_entry_state { KS_E_PENDING, KS_E_VALID, KS_E_INVALID };

/* One cache entry.  PENDING entries (a request in flight, owned by one
 * client) are never evicted; their waiters are woken when it completes. */
struct ks_entry {
    struct ks_entry *next; /* hash chain */
    uint8_t key[KS_KEY_LEN];
    enum ks_entry_state state;
    int64_t until_ms;      /* wall clock; VALID/INVALID only */
    struct ims_ks_token *tok;
    struct ks_waiter *waiters;
};

struct ks_cache {
    struct ks_entry **bucket;
    size_t nbuckets; /* power of two */
    size_t count, cap;
};

struct ims_ks_ctx {
    /* options, owned copies */
    char *url, *user, *password, *user_domain, *project, *project_domain;
    char *app_cred_id, *app_cred_secret, *ca_file;
    unsigned cache_ttl_s, negative_ttl_s, timeout_ms, max_pending;

    pthread_mutex_t mu; /* cache, waiters' entry links, every client's inbox, svc token, down */
    struct ks_cache cache;
    char *svc_token;    /* the newest service token any client obtained */
    int64_t svc_expires, svc_renew; /* local wall seconds */
    bool down;          /* last request failed as unavailable (log once per change) */
};

/* ---- keystone.c ---- */
int64_t ks_now_ms(void);
void ks_log_unavailable(struct ims_ks_ctx *ctx, const char *err);
void ks_log_available(struct ims_ks_ctx *ctx);
void ks_wipe_free(char *s);
/* Queues w on its client's inbox and wakes that loop.  ctx->mu held. */
void ks_inbox_push_locked(struct ks_waiter *w);

/* ---- ks_cache.c (every function with ctx->mu held) ---- */
int ks_cache_init(struct ks_cache *c, size_t cap);
void ks_cache_destroy(struct ks_cache *c);
/* The live entry for key (expired VALID/INVALID entries are dropped), or NULL. */
struct ks_entry *ks_cache_find(struct ks_cache *c, const uint8_t *key, int64_t now_ms);
/* A new PENDING entry, or NULL (cache full even after a sweep, or ENOMEM). */
struct ks_entry *ks_cache_add_pending(struct ks_cache *c, const uint8_t *key, int64_t now_ms);
/* Completes a PENDING entry: stores the result for until_ms (or drops the
 * entry if until_ms <= now), and pushes every waiter to its inbox with rc
 * and a token reference. */
void ks_cache_complete(struct ks_cache *c, struct ks_entry *e, int rc, struct ims_ks_token *tok,
                       int64_t until_ms, int64_t now_ms);

/* ---- ks_json.c ---- */
/* Parses a GET/POST /v3/auth/tokens body.  0, IMS_EPROTO, IMS_ENOMEM. */
int ks_parse_token(const char *body, size_t len, struct ims_ks_token **out);
int ks_parse_assignments(const char *body, size_t len, struct ims_ks_assignment **out, size_t *n);
void ks_free_assignments(struct ims_ks_assignment *a, size_t n);
int ks_parse_credentials(const char *body, size_t len, struct ims_ks_credential **out, size_t *n);
void ks_free_credentials(struct ims_ks_credential *c, size_t n);
int ks_parse_users(const char *body, size_t len, struct ims_ks_user **out, size_t *n);
void ks_free_users(struct ims_ks_user *u, size_t n);
/* "2026-11-27T21:26:10.000000Z" -> Unix seconds.  0 or IMS_EPROTO. */
int ks_parse_time(const char *s, int64_t *out);

#endif
