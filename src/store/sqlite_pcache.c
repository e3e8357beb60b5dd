/* sqlite_pcache.c - pcache1 behind a truncation that knows when there is
 * nothing to drop (sqlite_pcache.h says why).
 *
 * Invariant of a wrapped cache w: every page pcache1 holds has a key
 * <= w->max_key, or has the temporary key while w->at_temp > 0.  So when
 * at_temp is 0 and max_key < iLimit, pcache1 holds no key >= iLimit and
 * its truncation would drop nothing.  Whatever the wrapper cannot follow
 * (a page fetched at the temporary key, a page discarded while keyed
 * there) only makes it pass truncations on: slower, never wrong.
 *
 * A cache belongs to one connection, which SQLite uses from one thread at
 * a time: the per-cache fields need no lock.  The counters are process-wide
 * and relaxed (statistics). */
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/alloc.h"
#include "base/err.h"
#include "store/sqlite_pcache.h"

/* SQLite's PENDING_BYTE (sqlite3PendingByte, changed only by its tests). */
#define PENDING_BYTE 0x40000000u

struct wrapped {
    sqlite3_pcache *inner;
    unsigned max_key;  /* no page above it, the temporary key aside */
    unsigned temp_key; /* balance_nonroot's temporary page number */
    unsigned at_temp;  /* pages rekeyed to temp_key and not away yet */
};

static sqlite3_pcache_methods2 g_inner; /* pcache1's methods */
static _Atomic uint64_t g_temp_rekeys, g_skipped, g_passed;

static struct wrapped *W(sqlite3_pcache *p)
{
    return (struct wrapped *)p;
}

static void note_key(struct wrapped *w, unsigned key)
{
    if (key > w->max_key)
        w->max_key = key;
}

static int pc_init(void *arg)
{
    (void)arg;
    return g_inner.xInit(g_inner.pArg);
}

static void pc_shutdown(void *arg)
{
    (void)arg;
    if (g_inner.xShutdown)
        g_inner.xShutdown(g_inner.pArg);
}

static sqlite3_pcache *pc_create(int sz_page, int sz_extra, int purgeable)
{
    struct wrapped *w = ims_alloc(sizeof(*w));
    if (!w)
        return NULL;
    w->inner = g_inner.xCreate(sz_page, sz_extra, purgeable);
    if (!w->inner) {
        ims_free(w);
        return NULL;
    }
    w->max_key = 0;
    w->temp_key = sz_page > 0 ? PENDING_BYTE / (unsigned)sz_page + 1 : 0;
    w->at_temp = 0;
    return (sqlite3_pcache *)w;
}

static void pc_cachesize(sqlite3_pcache *p, int n)
{
    g_inner.xCachesize(W(p)->inner, n);
}

static int pc_pagecount(sqlite3_pcache *p)
{
    return g_inner.xPagecount(W(p)->inner);
}

static sqlite3_pcache_page *pc_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    struct wrapped *w = W(p);
    sqlite3_pcache_page *pg = g_inner.xFetch(w->inner, key, create);
    if (pg) /* the temporary key too: a page fetched there is not counted in at_temp */
        note_key(w, key);
    return pg;
}

static void pc_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    g_inner.xUnpin(W(p)->inner, pg, discard);
}

static void pc_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key,
                     unsigned new_key)
{
    struct wrapped *w = W(p);
    g_inner.xRekey(w->inner, pg, old_key, new_key);
    if (old_key == w->temp_key && w->at_temp > 0)
        w->at_temp--;
    if (new_key == w->temp_key) {
        w->at_temp++;
        atomic_fetch_add_explicit(&g_temp_rekeys, 1, memory_order_relaxed);
    } else {
        note_key(w, new_key);
    }
}

static void pc_truncate(sqlite3_pcache *p, unsigned limit)
{
    struct wrapped *w = W(p);
    if (w->at_temp == 0 && w->max_key < limit) {
        atomic_fetch_add_explicit(&g_skipped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&g_passed, 1, memory_order_relaxed);
    g_inner.xTruncate(w->inner, limit);
    if (w->max_key >= limit)
        w->max_key = limit > 0 ? limit - 1 : 0;
    if (w->temp_key >= limit)
        w->at_temp = 0;
}

static void pc_destroy(sqlite3_pcache *p)
{
    struct wrapped *w = W(p);
    g_inner.xDestroy(w->inner);
    ims_free(w);
}

static void pc_shrink(sqlite3_pcache *p)
{
    g_inner.xShrink(W(p)->inner);
}

int ims_sqlite_pcache_install(void)
{
    static const sqlite3_pcache_methods2 wrapper = {
        .iVersion = 1,
        .xInit = pc_init,
        .xShutdown = pc_shutdown,
        .xCreate = pc_create,
        .xCachesize = pc_cachesize,
        .xPagecount = pc_pagecount,
        .xFetch = pc_fetch,
        .xUnpin = pc_unpin,
        .xRekey = pc_rekey,
        .xTruncate = pc_truncate,
        .xDestroy = pc_destroy,
        .xShrink = pc_shrink,
    };
    sqlite3_pcache_methods2 inner;
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner) != SQLITE_OK || !inner.xCreate ||
        inner.xCreate == pc_create)
        return IMS_EBACKEND;
    g_inner = inner;
    if (sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) != SQLITE_OK)
        return IMS_EBACKEND;
    return 0;
}

void ims_sqlite_pcache_stats(struct ims_sqlite_pcache_stats *out)
{
    out->temp_rekeys = atomic_load_explicit(&g_temp_rekeys, memory_order_relaxed);
    out->truncates_skipped = atomic_load_explicit(&g_skipped, memory_order_relaxed);
    out->truncates_passed = atomic_load_explicit(&g_passed, memory_order_relaxed);
}
