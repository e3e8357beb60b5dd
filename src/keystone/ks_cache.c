/* ks_cache.c - the shared validation cache: a chained hash table keyed by
 * SHA-256(token) plus the flags byte, with single flight (a PENDING entry
 * collects the waiters of every worker while one request runs).
 *
 * All functions run with ctx->mu held.  Costs, admitted: one mutex for all
 * workers (a hit holds it for a hash look-up and a reference increment);
 * when the table is full a sweep of every bucket runs, O(cap), before a new
 * entry is refused. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "keystone/ks_int.h"

int ks_cache_init(struct ks_cache *c, size_t cap)
{
    size_t nb = 16;
    while (nb < cap && nb < ((size_t)1 << 24))
        nb <<= 1;
    c->bucket = ims_calloc(nb, sizeof(*c->bucket));
    if (!c->bucket)
        return IMS_ENOMEM;
    c->nbuckets = nb;
    c->count = 0;
    c->cap = cap ? cap : 1;
    return 0;
}

static void entry_free(struct ks_entry *e)
{
    ims_ks_token_unref(e->tok);
    ims_free(e);
}

void ks_cache_destroy(struct ks_cache *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct ks_entry *e = c->bucket[i], *next;
        for (; e; e = next) {
            next = e->next;
            /* PENDING entries are gone by now: their clients were freed */
            entry_free(e);
        }
    }
    ims_free(c->bucket);
    c->bucket = NULL;
}

static size_t slot(const struct ks_cache *c, const uint8_t *key)
{
    size_t h;
    memcpy(&h, key, sizeof(h)); /* the key is a SHA-256: already uniform */
    return (h ^ key[KS_KEY_LEN - 1]) & (c->nbuckets - 1);
}

static bool expired(const struct ks_entry *e, int64_t now_ms)
{
    return e->state != KS_E_PENDING && e->until_ms <= now_ms;
}

static void unlink_entry(struct ks_cache *c, struct ks_entry *e)
{
    struct ks_entry **pp = &c->bucket[slot(c, e->key)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        c->count--;
    }
}

struct ks_entry *ks_cache_find(struct ks_cache *c, const uint8_t *key, int64_t now_ms)
{
    struct ks_entry **pp = &c->bucket[slot(c, key)];
    while (*pp) {
        struct ks_entry *e = *pp;
        if (memcmp(e->key, key, KS_KEY_LEN) == 0) {
            if (!expired(e, now_ms))
                return e;
            *pp = e->next;
            c->count--;
            entry_free(e);
            return NULL;
        }
        pp = &e->next;
    }
    return NULL;
}

static void sweep(struct ks_cache *c, int64_t now_ms)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct ks_entry **pp = &c->bucket[i];
        while (*pp) {
            struct ks_entry *e = *pp;
            if (expired(e, now_ms)) {
                *pp = e->next;
                c->count--;
                entry_free(e);
            } else {
                pp = &e->next;
            }
        }
    }
}

struct ks_entry *ks_cache_add_pending(struct ks_cache *c, const uint8_t *key, int64_t now_ms)
{
    if (c->count >= c->cap)
        sweep(c, now_ms);
    if (c->count >= c->cap)
        return NULL;
    struct ks_entry *e = ims_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    memcpy(e->key, key, KS_KEY_LEN);
    e->state = KS_E_PENDING;
    size_t s = slot(c, key);
    e->next = c->bucket[s];
    c->bucket[s] = e;
    c->count++;
    return e;
}

void ks_cache_complete(struct ks_cache *c, struct ks_entry *e, int rc, struct ims_ks_token *tok,
                       int64_t until_ms, int64_t now_ms)
{
    struct ks_waiter *w = e->waiters, *next;
    e->waiters = NULL;
    for (; w; w = next) {
        next = w->next;
        w->entry = NULL;
        w->rc = rc;
        w->tok = rc == 0 ? ims_ks_token_ref(tok) : NULL;
        ks_inbox_push_locked(w);
    }
    if ((rc == 0 || rc == IMS_ENOENT) && until_ms > now_ms) {
        e->state = rc == 0 ? KS_E_VALID : KS_E_INVALID;
        e->until_ms = until_ms;
        e->tok = rc == 0 ? ims_ks_token_ref(tok) : NULL;
        return;
    }
    unlink_entry(c, e);
    entry_free(e);
}
