/* dyn.c - the dynamic deny group: source addresses the detectors
 * (src/detect) put out for a while, checked before the static rules.
 *
 * A fixed table of IMS_ACL_DYN_MAX entries in ACL_DYN_SHARDS shards, each
 * with its own mutex, picked by a hash of the address.  A lookup scans its
 * shard (IMS_ACL_DYN_MAX / ACL_DYN_SHARDS entries: about a microsecond);
 * while the group is empty, and that is the common case, an atomic count
 * lets readers skip the lock altogether.  Expired entries are cleared
 * lazily.  A full shard replaces the entry that expires first, so a flood
 * of spoofed sources cycles the table instead of growing it (docs/security.md,
 * "Dynamic deny group"). */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "acl/acl.h"
#include "acl/acl_int.h"
#include "base/alloc.h"
#include "base/err.h"
#include "net/transport.h"

#define ACL_DYN_SHARDS 16
#define ACL_DYN_PER_SHARD (IMS_ACL_DYN_MAX / ACL_DYN_SHARDS)

struct dyn_ent {
    uint64_t until_ms; /* 0: free */
    uint8_t ip[16];    /* IPv4 in the first 4 bytes */
    uint8_t v6;
};

struct dyn_shard {
    pthread_mutex_t lock;
    struct dyn_ent ent[ACL_DYN_PER_SHARD];
};

struct acl_dyn {
    atomic_size_t live; /* entries set (some may have expired, not yet cleared) */
    struct dyn_shard shard[ACL_DYN_SHARDS];
};

int acl_dyn_new(struct acl_dyn **out)
{
    struct acl_dyn *d = ims_calloc(1, sizeof(*d));
    if (!d)
        return IMS_ENOMEM;
    atomic_init(&d->live, 0);
    for (size_t i = 0; i < ACL_DYN_SHARDS; i++)
        pthread_mutex_init(&d->shard[i].lock, NULL);
    *out = d;
    return 0;
}

void acl_dyn_free(struct acl_dyn *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < ACL_DYN_SHARDS; i++)
        pthread_mutex_destroy(&d->shard[i].lock);
    ims_free(d);
}

/* The key of src: the IP only (a port changes with every scanner run); a
 * v4-mapped IPv6 address is its IPv4 address, as in the static rules. */
static int key_of(const struct sockaddr *src, struct dyn_ent *k)
{
    memset(k, 0, sizeof(*k));
    return ims_sockaddr_ip_key(src, k->ip, &k->v6);
}

static struct dyn_shard *shard_of(struct acl_dyn *d, const struct dyn_ent *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof(k->ip); i++)
        h = (h ^ k->ip[i]) * 16777619u;
    return &d->shard[(h ^ k->v6) % ACL_DYN_SHARDS];
}

static bool same(const struct dyn_ent *a, const struct dyn_ent *b)
{
    return a->v6 == b->v6 && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

/* Clears e if it expired; true when e is (now) free.  Shard lock held. */
static bool reap(struct acl_dyn *d, struct dyn_ent *e, uint64_t now_ms)
{
    if (e->until_ms == 0)
        return true;
    if (e->until_ms > now_ms)
        return false;
    e->until_ms = 0;
    atomic_fetch_sub(&d->live, 1);
    return true;
}

int acl_dyn_add(struct acl_dyn *d, const struct sockaddr *src, uint32_t ttl_ms, uint64_t now_ms)
{
    struct dyn_ent k;
    if (key_of(src, &k) || ttl_ms == 0)
        return IMS_EINVAL;
    k.until_ms = now_ms + ttl_ms;
    struct dyn_shard *s = shard_of(d, &k);
    pthread_mutex_lock(&s->lock);
    struct dyn_ent *slot = NULL, *soonest = &s->ent[0];
    for (size_t i = 0; i < ACL_DYN_PER_SHARD; i++) {
        struct dyn_ent *e = &s->ent[i];
        if (!reap(d, e, now_ms) && same(e, &k)) {
            if (k.until_ms > e->until_ms)
                e->until_ms = k.until_ms;
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        if (e->until_ms == 0 && !slot)
            slot = e;
        else if (e->until_ms && e->until_ms < soonest->until_ms)
            soonest = e;
    }
    if (!slot) {
        slot = soonest; /* full: replace the entry that leaves first */
        atomic_fetch_sub(&d->live, 1);
    }
    *slot = k;
    atomic_fetch_add(&d->live, 1);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

bool acl_dyn_has(struct acl_dyn *d, const struct sockaddr *src, uint64_t now_ms)
{
    struct dyn_ent k;
    if (atomic_load_explicit(&d->live, memory_order_relaxed) == 0 || key_of(src, &k))
        return false;
    struct dyn_shard *s = shard_of(d, &k);
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < ACL_DYN_PER_SHARD && !found; i++) {
        struct dyn_ent *e = &s->ent[i];
        found = !reap(d, e, now_ms) && same(e, &k);
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

size_t acl_dyn_count(struct acl_dyn *d, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t j = 0; j < ACL_DYN_SHARDS; j++) {
        struct dyn_shard *s = &d->shard[j];
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < ACL_DYN_PER_SHARD; i++)
            n += !reap(d, &s->ent[i], now_ms);
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

void acl_dyn_clear(struct acl_dyn *d)
{
    for (size_t j = 0; j < ACL_DYN_SHARDS; j++) {
        struct dyn_shard *s = &d->shard[j];
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < ACL_DYN_PER_SHARD; i++) {
            if (s->ent[i].until_ms) {
                s->ent[i].until_ms = 0;
                atomic_fetch_sub(&d->live, 1);
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
}
