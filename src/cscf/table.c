/* table.c - the sharded, capped hash table of the CSCF stores (table.h). */
#include "cscf/table.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "base/alloc.h"
#include "base/err.h"

struct entry {
    struct entry *next;
    /* the due wheel (cscf_table_set_due): the next entry in this entry's
     * slot, and the link pointing at this entry (NULL: in no slot) */
    struct entry *wnext, **wpprev;
    int64_t wdue; /* in a slot: that slot's time (the entry is seen by then) */
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
    /* the due wheel: WHEEL_SLOTS lists, slot (t % WHEEL_SLOTS) holding the
     * entries to look at at time t; every slot up to swept has been looked at */
    struct entry **wheel;
    int64_t swept;
    char pad[128 - sizeof(pthread_mutex_t) - 2 * sizeof(struct entry **) - 2 * sizeof(size_t) -
             sizeof(int64_t)];
};

/* Why a wheel: a sweep that reads every entry costs the size of the table
 * each second (at 100 000 registrations, more CPU than the registrations
 * themselves), while few entries are due in any one second.  An entry is
 * placed in the slot of its due time; one due further than WHEEL_SLOTS
 * seconds ahead is looked at once per turn and put back (a registration
 * of an hour: 14 looks in its life instead of 3600).  An entry whose due
 * time moves later stays where it is until its slot comes (nothing to do
 * on a refresh); one whose due time moves earlier is moved. */
#define WHEEL_SLOTS 256

struct cscf_table {
    struct shard *shards;
    unsigned nshards;
    size_t max;
    uint64_t seed;
    void (*free_val)(void *val);
    cscf_table_due_fn due; /* NULL: no wheel */
    void *due_ctx;
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
        ims_free(s->wheel);
        pthread_mutex_destroy(&s->lock);
    }
    ims_free(t->shards);
    ims_free(t);
}

int cscf_table_set_due(struct cscf_table *t, cscf_table_due_fn due, void *ctx)
{
    if (!due || t->due || cscf_table_count(t) != 0)
        return IMS_EINVAL;
    for (unsigned i = 0; i < t->nshards; i++) {
        t->shards[i].wheel = ims_calloc(WHEEL_SLOTS, sizeof(struct entry *));
        if (!t->shards[i].wheel) {
            for (unsigned k = 0; k < i; k++) {
                ims_free(t->shards[k].wheel);
                t->shards[k].wheel = NULL;
            }
            return IMS_ENOMEM;
        }
    }
    t->due = due;
    t->due_ctx = ctx;
    return 0;
}

static void wheel_unlink(struct entry *e)
{
    if (!e->wpprev)
        return;
    *e->wpprev = e->wnext;
    if (e->wnext)
        e->wnext->wpprev = e->wpprev;
    e->wnext = NULL;
    e->wpprev = NULL;
}

/* Puts e in the slot of time `at` (never one already looked at). */
static void wheel_put(struct shard *s, struct entry *e, int64_t at)
{
    if (at <= s->swept)
        at = s->swept + 1;
    e->wdue = at;
    struct entry **head = &s->wheel[(uint64_t)at % WHEEL_SLOTS];
    e->wnext = *head;
    if (e->wnext)
        e->wnext->wpprev = &e->wnext;
    e->wpprev = head;
    *head = e;
}

/* After e's value changed: in a slot no later than its due time.  A later
 * due time leaves it where it is (its slot's sweep moves it on), an
 * earlier one moves it; never due: out of the wheel. */
static void wheel_update(const struct cscf_table *t, struct shard *s, struct entry *e)
{
    int64_t due = t->due(e->val, t->due_ctx);
    if (due == INT64_MAX) {
        wheel_unlink(e);
        return;
    }
    if (e->wpprev && e->wdue <= due)
        return;
    wheel_unlink(e);
    wheel_put(s, e, due);
}

int cscf_table_with(struct cscf_table *t, ims_str key, cscf_table_fn fn, void *ctx)
{
    if (key.len > CSCF_TABLE_KEY_MAX)
        return IMS_EINVAL;
    uint64_t h = hash_key(t, key);
    struct shard *s = &t->shards[h % t->nshards];
    pthread_mutex_lock(&s->lock);
    struct entry **pp = &s->buckets[(h >> 10) & s->mask], *e;
    /* An empty shard is not searched: its bucket, in an array sized for
     * the table's cap, is a cache miss, and the lockout, Bearer and
     * third-party tables are looked at on every registration while they
     * are mostly empty (about 6 of 14 lookups a registration). */
    for (e = s->n ? *pp : NULL; e; pp = &e->next, e = e->next)
        if (e->hash == h && e->klen == key.len &&
            (key.len == 0 || memcmp(e->key, key.p, key.len) == 0)) /* "" has a NULL p */
            break;
    void *val = e ? e->val : NULL;
    bool room = e || __atomic_load_n(&t->count, __ATOMIC_RELAXED) < t->max;
    int rc = fn(&val, room, ctx);
    if (e) {
        if (val) {
            e->val = val;
            if (t->due)
                wheel_update(t, s, e);
        } else {
            *pp = e->next;
            wheel_unlink(e);
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
            n->wnext = NULL;
            n->wpprev = NULL;
            if (key.len)
                memcpy(n->key, key.p, key.len);
            n->next = s->buckets[(h >> 10) & s->mask];
            s->buckets[(h >> 10) & s->mask] = n;
            s->n++;
            __atomic_fetch_add(&t->count, 1, __ATOMIC_RELAXED);
            if (t->due)
                wheel_update(t, s, n);
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
                    wheel_unlink(e);
                    ims_free(e);
                    s->n--;
                    __atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
                } else {
                    if (t->due)
                        wheel_update(t, s, e);
                    pp = &e->next;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
}

/* Removes e, which is in no slot, from its hash chain and frees it. */
static void entry_drop(struct cscf_table *t, struct shard *s, struct entry *e)
{
    struct entry **pp = &s->buckets[(e->hash >> 10) & s->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    ims_free(e);
    s->n--;
    __atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
}

/* Looks at the entries of one slot at time `now`: each one due is visited,
 * every one kept goes to the slot of its (new) due time, one still due
 * after its visit (the visitor left it for later) to the next second. */
static void sweep_slot(struct cscf_table *t, struct shard *s, size_t slot, int64_t now,
                       cscf_table_visit_fn fn, void *ctx)
{
    /* the slot's list, taken whole: what goes back to this slot (due a
     * turn later) starts a new list, and visitors cannot touch the table */
    struct entry *e = s->wheel[slot];
    s->wheel[slot] = NULL;
    while (e) {
        struct entry *next = e->wnext;
        e->wnext = NULL;
        e->wpprev = NULL;
        int64_t due = t->due(e->val, t->due_ctx);
        if (due <= now) {
            fn(ims_str_make(e->key, e->klen), &e->val, ctx);
            if (!e->val) {
                entry_drop(t, s, e);
                e = next;
                continue;
            }
            due = t->due(e->val, t->due_ctx);
            if (due <= now)
                due = now + 1;
        }
        if (due != INT64_MAX)
            wheel_put(s, e, due);
        e = next;
    }
}

void cscf_table_sweep_due(struct cscf_table *t, unsigned first, unsigned step, int64_t now,
                          cscf_table_visit_fn fn, void *ctx)
{
    if (!t->due) {
        cscf_table_sweep(t, first, step, fn, ctx);
        return;
    }
    if (step == 0)
        step = 1;
    for (unsigned i = first; i < t->nshards; i += step) {
        struct shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        int64_t from = s->swept + 1;
        /* a jump of a turn or more, or back (the wall clock was set back:
         * entries were placed for times that are now far ahead): one turn
         * looks at every entry and places it again from now */
        if (now < s->swept || now - from >= WHEEL_SLOTS)
            from = now - WHEEL_SLOTS + 1;
        /* swept first: what a visit puts back lands after now */
        s->swept = now;
        for (int64_t at = from; at <= now; at++)
            sweep_slot(t, s, (uint64_t)at % WHEEL_SLOTS, now, fn, ctx);
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
