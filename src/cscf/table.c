/* table.c - the sharded, capped hash table of the CSCF stores (table.h). */
#include "cscf/table.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "base/alloc.h"
#include "base/err.h"

struct entry {
    struct entry *next;
    uint64_t hash;
    void *val;
    size_t klen;
    char key[]; /* klen bytes */
};

/* Shards sit 128 bytes apart: workers locking neighbouring shards would
 * otherwise share (and bounce) a cache line; malloc aligns to 16 only. */
struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t mask;
    size_t n; /* entries in this shard: a sweep stops once it has seen them all */
    char pad[128 - sizeof(pthread_mutex_t) - sizeof(struct entry **) - 2 * sizeof(size_t)];
};

struct cscf_table {
    struct shard *shards;
    unsigned nshards;
    size_t max;
    uint64_t seed;
    void (*free_val)(void *val);
    /* every insert and removal writes count: keep it off the line of the
     * fields every lookup reads (docs/internals/audit.md, "Tables") */
    char pad[64];
    size_t count; /* __atomic */
};

static uint64_t hash_key(const struct cscf_table *t, ims_str k)
{
    uint64_t h = 1469598103934665603ull ^ t->seed;
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int cscf_table_new(unsigned nshards, size_t max_entries, void (*free_val)(void *val),
                   struct cscf_table **out)
{
    if (nshards == 0 || nshards > 1024 || max_entries == 0)
        return IMS_EINVAL;
    struct cscf_table *t = ims_calloc(1, sizeof(*t));
    if (!t)
        return IMS_ENOMEM;
    t->shards = ims_calloc(nshards, sizeof(*t->shards));
    if (!t->shards) {
        ims_free(t);
        return IMS_ENOMEM;
    }
    t->max = max_entries;
    t->free_val = free_val;
    if (getrandom(&t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t;
    /* about one entry per bucket at the cap, at least 16, at most 65536 */
    size_t per = max_entries / nshards + 1, nb = 16;
    while (nb < per && nb < 65536)
        nb <<= 1;
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &t->shards[i];
        s->buckets = ims_calloc(nb, sizeof(*s->buckets));
        if (!s->buckets) {
            t->nshards = i;
            cscf_table_free(t);
            return IMS_ENOMEM;
        }
        s->mask = nb - 1;
        pthread_mutex_init(&s->lock, NULL);
        t->nshards = i + 1;
    }
    *out = t;
    return 0;
}

void cscf_table_free(struct cscf_table *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->nshards; i++) {
        struct shard *s = &t->shards[i];
        for (size_t b = 0; b <= s->mask; b++) {
            struct entry *e = s->buckets[b];
            while (e) {
                struct entry *n = e->next;
                if (t->free_val && e->val)
                    t->free_val(e->val);
                ims_free(e);
                e = n;
            }
        }
        ims_free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    ims_free(t->shards);
    ims_free(t);
}

int cscf_table_with(struct cscf_table *t, ims_str key, cscf_table_fn fn, void *ctx)
{
    if (key.len > CSCF_TABLE_KEY_MAX)
        return IMS_EINVAL;
    uint64_t h = hash_key(t, key);
    struct shard *s = &t->shards[h % t->nshards];
    pthread_mutex_lock(&s->lock);
    struct entry **pp = &s->buckets[(h >> 10) & s->mask], *e;
    for (e = *pp; e; pp = &e->next, e = e->next)
        if (e->hash == h && e->klen == key.len && memcmp(e->key, key.p, key.len) == 0)
            break;
    void *val = e ? e->val : NULL;
    bool room = e || __atomic_load_n(&t->count, __ATOMIC_RELAXED) < t->max;
    int rc = fn(&val, room, ctx);
    if (e) {
        if (val) {
            e->val = val;
        } else {
            *pp = e->next;
            ims_free(e);
            s->n--;
            __atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
        }
    } else if (val) {
        struct entry *n = room ? ims_alloc(sizeof(*n) + key.len) : NULL;
        if (!n) {
            if (t->free_val)
                t->free_val(val);
            rc = room ? IMS_ENOMEM : IMS_ELIMIT;
        } else {
            n->hash = h;
            n->val = val;
            n->klen = key.len;
            if (key.len)
                memcpy(n->key, key.p, key.len);
            n->next = s->buckets[(h >> 10) & s->mask];
            s->buckets[(h >> 10) & s->mask] = n;
            s->n++;
            __atomic_fetch_add(&t->count, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void cscf_table_sweep(struct cscf_table *t, unsigned first, unsigned step,
                      cscf_table_visit_fn fn, void *ctx)
{
    if (step == 0)
        step = 1;
    for (unsigned i = first; i < t->nshards; i += step) {
        struct shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        /* every store is swept each second and most shards of most stores
         * are empty or sparse: stop once every entry has been seen rather
         * than read all the bucket heads (fn adds no entries) */
        size_t left = s->n;
        for (size_t b = 0; b <= s->mask && left; b++) {
            struct entry **pp = &s->buckets[b];
            while (*pp) {
                struct entry *e = *pp;
                left--;
                fn(ims_str_make(e->key, e->klen), &e->val, ctx);
                if (!e->val) {
                    *pp = e->next;
                    ims_free(e);
                    s->n--;
                    __atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
                } else {
                    pp = &e->next;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
}

size_t cscf_table_count(const struct cscf_table *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

unsigned cscf_table_shards(const struct cscf_table *t)
{
    return t->nshards;
}
