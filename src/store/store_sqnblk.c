/* store_sqnblk.c - see store_sqnblk.h.  A set-associative table of small
 * fixed entries, keyed by the IMPI's row id (the database assigns it: no
 * peer can aim at one set); locks are striped over the sets. */
#include "store/store_sqnblk.h"

#include <pthread.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/aka.h"

#define WAYS 4
#define LOCKS 32

struct block {
    int64_t id; /* 0: empty (row ids start at 1) */
    uint64_t row_sqn, row_gen; /* what this process wrote: the block's end */
    uint64_t last;             /* the highest SQN handed out of it */
    uint64_t used;             /* the lock's clock at the last use: the lowest goes */
};

struct store_sqnblk {
    struct block (*sets)[WAYS];
    size_t nsets; /* a power of two */
    uint64_t clock[LOCKS];
    pthread_mutex_t mu[LOCKS];
};

int store_sqnblk_new(size_t entries, struct store_sqnblk **out)
{
    *out = NULL;
    if (entries == 0 || entries > (SIZE_MAX >> 8))
        return IMS_EINVAL;
    size_t nsets = 1;
    while (nsets * WAYS < entries)
        nsets <<= 1;
    struct store_sqnblk *b = ims_calloc(1, sizeof(*b));
    if (!b)
        return IMS_ENOMEM;
    b->sets = ims_calloc(nsets, sizeof(*b->sets));
    if (!b->sets) {
        ims_free(b);
        return IMS_ENOMEM;
    }
    b->nsets = nsets;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&b->mu[i], NULL);
    *out = b;
    return 0;
}

void store_sqnblk_free(struct store_sqnblk *b)
{
    if (!b)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&b->mu[i]);
    ims_free(b->sets);
    ims_free(b);
}

static size_t set_of(const struct store_sqnblk *b, int64_t id)
{
    uint64_t h = (uint64_t)id; /* splitmix64's finalizer: row ids are consecutive */
    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    return (size_t)(h ^ (h >> 31)) & (b->nsets - 1);
}

static pthread_mutex_t *lock_set(struct store_sqnblk *b, size_t set, uint64_t **clock)
{
    size_t l = set % LOCKS;
    pthread_mutex_lock(&b->mu[l]);
    *clock = &b->clock[l];
    return &b->mu[l];
}

static struct block *find(struct store_sqnblk *b, size_t set, int64_t id)
{
    for (int w = 0; w < WAYS; w++)
        if (b->sets[set][w].id == id)
            return &b->sets[set][w];
    return NULL;
}

void store_sqnblk_put(struct store_sqnblk *b, int64_t id, uint64_t row_sqn, uint64_t row_gen,
                      uint64_t last)
{
    uint64_t *clock;
    size_t set = set_of(b, id);
    pthread_mutex_t *mu = lock_set(b, set, &clock);
    struct block *e = find(b, set, id);
    if (!e) { /* the least recently used (an empty one has used 0) */
        e = &b->sets[set][0];
        for (int w = 1; w < WAYS; w++)
            if (b->sets[set][w].used < e->used)
                e = &b->sets[set][w];
    }
    *e = (struct block){ .id = id, .row_sqn = row_sqn, .row_gen = row_gen, .last = last,
                         .used = ++*clock };
    pthread_mutex_unlock(mu);
}

void store_sqnblk_drop(struct store_sqnblk *b, int64_t id)
{
    uint64_t *clock;
    size_t set = set_of(b, id);
    pthread_mutex_t *mu = lock_set(b, set, &clock);
    struct block *e = find(b, set, id);
    if (e)
        *e = (struct block){ 0 };
    pthread_mutex_unlock(mu);
}

bool store_sqnblk_take(struct store_sqnblk *b, int64_t id, uint64_t row_sqn, uint64_t row_gen,
                       store_sqnblk_next_fn next, void *ctx, uint64_t *out)
{
    uint64_t *clock, v;
    bool ok = false;
    size_t set = set_of(b, id);
    pthread_mutex_t *mu = lock_set(b, set, &clock);
    struct block *e = find(b, set, id);
    if (e && e->row_sqn == row_sqn && e->row_gen == row_gen && next(e->last, &v, ctx) == 0 &&
        ims_aka_sqn_seq(v) > ims_aka_sqn_seq(e->last) &&
        ims_aka_sqn_seq(v) <= ims_aka_sqn_seq(e->row_sqn)) {
        e->last = v;
        e->used = ++*clock;
        *out = v;
        ok = true;
    }
    pthread_mutex_unlock(mu);
    return ok;
}
