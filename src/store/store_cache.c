/* store_cache.c - see store_cache.h.  A set-associative table: the hash
 * picks a set of WAYS entries, each its own allocation (key and value
 * inline); locks are striped over the sets.  The hash is seeded per cache,
 * so identities chosen by a peer cannot aim at one set. */
#include "store/store_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#include "base/alloc.h"
#include "base/err.h"
#include "store/exec.h"

#define WAYS 4
#define LOCKS 64

struct entry {
    uint64_t hash;
    uint64_t gen, epoch; /* read under (store_cache.h) */
    uint64_t used;       /* the set's clock at the last hit: the lowest goes */
    uint32_t klen, vlen;
    unsigned char kv[]; /* key, then value */
};

struct store_cache {
    struct entry *(*sets)[WAYS];
    size_t nsets; /* a power of two */
    uint64_t seed;
    _Atomic uint64_t epoch;
    _Atomic uint64_t hits, misses, puts, evictions;
    _Atomic size_t entries;
    uint64_t clock[LOCKS]; /* per lock: a use counter for LRU */
    pthread_mutex_t mu[LOCKS];
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static uint64_t hash_key(uint64_t seed, const unsigned char *k, size_t n)
{
    uint64_t h = seed ^ (n * UINT64_C(0x9e3779b97f4a7c15));
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = mix(h ^ w);
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, k, n);
    return mix(h ^ w ^ n);
}

int store_cache_new(size_t entries, struct store_cache **out)
{
    *out = NULL;
    if (entries == 0 || entries > (SIZE_MAX >> 8))
        return IMS_EINVAL;
    size_t nsets = 1;
    while (nsets * WAYS < entries)
        nsets <<= 1;
    struct store_cache *c = ims_calloc(1, sizeof(*c));
    if (!c)
        return IMS_ENOMEM;
    c->sets = ims_calloc(nsets, sizeof(*c->sets));
    if (!c->sets) {
        ims_free(c);
        return IMS_ENOMEM;
    }
    c->nsets = nsets;
    if (getrandom(&c->seed, sizeof(c->seed), 0) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ UINT64_C(0x2545f4914f6cdd1d);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&c->mu[i], NULL);
    *out = c;
    return 0;
}

void store_cache_free(struct store_cache *c)
{
    if (!c)
        return;
    for (size_t s = 0; s < c->nsets; s++)
        for (int w = 0; w < WAYS; w++)
            ims_free(c->sets[s][w]);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&c->mu[i]);
    ims_free(c->sets);
    ims_free(c);
}

uint64_t store_cache_epoch(const struct store_cache *c)
{
    return atomic_load(&c->epoch);
}

void store_cache_forget(struct store_cache *c)
{
    atomic_fetch_add(&c->epoch, 1);
}

static bool same_key(const struct entry *e, uint64_t h, const void *key, size_t klen)
{
    return e && e->hash == h && e->klen == klen && memcmp(e->kv, key, klen) == 0;
}

bool store_cache_get(struct store_cache *c, uint64_t gen, const void *key, size_t klen, void *val,
                     size_t cap, size_t *vlen)
{
    uint64_t epoch = atomic_load(&c->epoch);
    uint64_t h = hash_key(c->seed, key, klen);
    size_t s = h & (c->nsets - 1);
    pthread_mutex_t *mu = &c->mu[s % LOCKS];
    bool hit = false;
    pthread_mutex_lock(mu);
    for (int w = 0; w < WAYS; w++) {
        struct entry *e = c->sets[s][w];
        if (!same_key(e, h, key, klen))
            continue;
        if (e->gen == gen && e->epoch == epoch && e->vlen <= cap) {
            memcpy(val, e->kv + e->klen, e->vlen);
            *vlen = e->vlen;
            e->used = ++c->clock[s % LOCKS];
            hit = true;
        }
        break;
    }
    pthread_mutex_unlock(mu);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

int store_cache_put(struct store_cache *c, uint64_t gen, uint64_t epoch, const void *key,
                    size_t klen, const void *val, size_t vlen)
{
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return IMS_EINVAL;
    struct entry *n = ims_alloc(sizeof(*n) + klen + vlen);
    if (!n)
        return IMS_ENOMEM;
    n->hash = hash_key(c->seed, key, klen);
    n->gen = gen;
    n->epoch = epoch;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    memcpy(n->kv, key, klen);
    memcpy(n->kv + klen, val, vlen);
    size_t s = n->hash & (c->nsets - 1);
    pthread_mutex_t *mu = &c->mu[s % LOCKS];
    struct entry *old = NULL;
    pthread_mutex_lock(mu);
    if (atomic_load(&c->epoch) != epoch) { /* rule 2: may be undone already */
        pthread_mutex_unlock(mu);
        ims_free(n);
        return 0;
    }
    int slot = -1;
    for (int w = 0; w < WAYS && slot < 0; w++)
        if (same_key(c->sets[s][w], n->hash, key, klen))
            slot = w;
    for (int w = 0; w < WAYS && slot < 0; w++)
        if (!c->sets[s][w])
            slot = w;
    bool evict = slot < 0;
    if (evict) {
        slot = 0;
        for (int w = 1; w < WAYS; w++)
            if (c->sets[s][w]->used < c->sets[s][slot]->used)
                slot = w;
    }
    old = c->sets[s][slot];
    n->used = ++c->clock[s % LOCKS];
    c->sets[s][slot] = n;
    pthread_mutex_unlock(mu);
    if (!old)
        atomic_fetch_add(&c->entries, 1);
    if (evict)
        atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->puts, 1, memory_order_relaxed);
    ims_free(old);
    return 0;
}

void store_cache_stats(struct store_cache *c, struct ims_store_cache_stats *out)
{
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->puts = atomic_load(&c->puts);
    out->evictions = atomic_load(&c->evictions);
    out->entries = atomic_load(&c->entries);
    out->capacity = c->nsets * WAYS;
}
