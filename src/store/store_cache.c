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

/* One cache line: the ways' hashes beside their pointers, so a lookup
 * reads only the entry whose hash matches.  With the hashes in the entries
 * (each its own allocation, over a table of 100 MiB and more) a lookup
 * missed the CPU cache once per way it looked at: store_cache_get was 1.8 %
 * of the server's CPU in a registration profile, nearly all of it on those
 * loads. */
struct set {
    uint64_t hash[WAYS];
    struct entry *e[WAYS]; /* NULL: an empty way */
};
_Static_assert(sizeof(struct set) == 64, "a set is one cache line");

/* A lock and what it guards besides its sets, on lines of its own (the
 * array starts on a line, each stripe is two lines): the workers take
 * different stripes at once, and a shared counter or clock bumped by every
 * lookup would bounce one line between their cores.  (Padded rather than
 * _Alignas(64): the struct lives in a malloc'ed block.) */
struct stripe {
    union {
        struct {
            pthread_mutex_t mu;
            uint64_t clock; /* a use counter for LRU */
            uint64_t hits, misses, puts, evictions;
        };
        char line[128];
    };
};
_Static_assert(sizeof(struct stripe) == 128, "a stripe is two cache lines");

struct store_cache {
    struct set *sets; /* nsets, on a cache line inside sets_mem */
    void *sets_mem;
    struct stripe *stripe; /* LOCKS, on a cache line inside stripe_mem */
    void *stripe_mem;
    size_t nsets; /* a power of two */
    uint64_t seed;
    _Atomic uint64_t epoch;
    _Atomic size_t entries;
};

static void *line_up(void *p)
{
    return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

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
    if (nsets > SIZE_MAX / sizeof(struct set) - 1)
        return IMS_EINVAL;
    struct store_cache *c = ims_calloc(1, sizeof(*c));
    if (!c)
        return IMS_ENOMEM;
    /* one item more, to start each array on a cache line */
    c->sets_mem = ims_calloc(nsets + 1, sizeof(struct set));
    c->stripe_mem = ims_calloc(LOCKS + 1, sizeof(struct stripe));
    if (!c->sets_mem || !c->stripe_mem) {
        ims_free(c->sets_mem);
        ims_free(c->stripe_mem);
        ims_free(c);
        return IMS_ENOMEM;
    }
    c->sets = line_up(c->sets_mem);
    c->stripe = line_up(c->stripe_mem);
    c->nsets = nsets;
    if (getrandom(&c->seed, sizeof(c->seed), 0) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ UINT64_C(0x2545f4914f6cdd1d);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&c->stripe[i].mu, NULL);
    *out = c;
    return 0;
}

void store_cache_free(struct store_cache *c)
{
    if (!c)
        return;
    for (size_t s = 0; s < c->nsets; s++)
        for (int w = 0; w < WAYS; w++)
            ims_free(c->sets[s].e[w]);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&c->stripe[i].mu);
    ims_free(c->sets_mem);
    ims_free(c->stripe_mem);
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

/* Way w of set holds key (hash h)?  The entry is read only when the
 * hashes match. */
static bool way_has(const struct set *set, int w, uint64_t h, const void *key, size_t klen)
{
    const struct entry *e = set->e[w];
    return e && set->hash[w] == h && e->klen == klen && memcmp(e->kv, key, klen) == 0;
}

bool store_cache_get(struct store_cache *c, uint64_t gen, const void *key, size_t klen, void *val,
                     size_t cap, size_t *vlen)
{
    uint64_t epoch = atomic_load(&c->epoch);
    uint64_t h = hash_key(c->seed, key, klen);
    size_t s = h & (c->nsets - 1);
    struct set *set = &c->sets[s];
    struct stripe *st = &c->stripe[s % LOCKS];
    bool hit = false;
    pthread_mutex_lock(&st->mu);
    for (int w = 0; w < WAYS; w++) {
        if (!way_has(set, w, h, key, klen))
            continue;
        struct entry *e = set->e[w];
        if (e->gen == gen && e->epoch == epoch && e->vlen <= cap) {
            memcpy(val, e->kv + e->klen, e->vlen);
            *vlen = e->vlen;
            e->used = ++st->clock;
            hit = true;
        }
        break;
    }
    if (hit)
        st->hits++;
    else
        st->misses++;
    pthread_mutex_unlock(&st->mu);
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
    struct set *set = &c->sets[s];
    struct stripe *st = &c->stripe[s % LOCKS];
    struct entry *old = NULL;
    pthread_mutex_lock(&st->mu);
    if (atomic_load(&c->epoch) != epoch) { /* rule 2: may be undone already */
        pthread_mutex_unlock(&st->mu);
        ims_free(n);
        return 0;
    }
    int slot = -1;
    for (int w = 0; w < WAYS && slot < 0; w++)
        if (way_has(set, w, n->hash, key, klen))
            slot = w;
    for (int w = 0; w < WAYS && slot < 0; w++)
        if (!set->e[w])
            slot = w;
    bool evict = slot < 0;
    if (evict) {
        slot = 0;
        for (int w = 1; w < WAYS; w++)
            if (set->e[w]->used < set->e[slot]->used)
                slot = w;
        st->evictions++;
    }
    old = set->e[slot];
    n->used = ++st->clock;
    set->e[slot] = n;
    set->hash[slot] = n->hash;
    st->puts++;
    pthread_mutex_unlock(&st->mu);
    if (!old)
        atomic_fetch_add(&c->entries, 1);
    ims_free(old);
    return 0;
}

void store_cache_stats(struct store_cache *c, struct ims_store_cache_stats *out)
{
    out->hits = out->misses = out->puts = out->evictions = 0;
    for (int i = 0; i < LOCKS; i++) {
        struct stripe *st = &c->stripe[i];
        pthread_mutex_lock(&st->mu);
        out->hits += st->hits;
        out->misses += st->misses;
        out->puts += st->puts;
        out->evictions += st->evictions;
        pthread_mutex_unlock(&st->mu);
    }
    out->entries = atomic_load(&c->entries);
    out->capacity = c->nsets * WAYS;
}
