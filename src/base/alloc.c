#include "base/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fault injection is for tests only, so the production case must cost one
 * relaxed load of a flag that is never written: a shared counter bumped by
 * every allocation on every thread bounced its cache line between the
 * workers (perf: ~1% of server CPU at 3000 registrations/s).  The first
 * ims_alloc_fail_at() switches counting on for the rest of the process. */
static atomic_bool counting;
/* written while counting only; a line of its own so the flag stays clean */
static _Alignas(64) atomic_ulong alloc_count;
static atomic_ulong fail_at;   /* 0 = never */
static atomic_int fail_sticky;

void ims_alloc_fail_at(unsigned long n, int sticky)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_at, n);
    atomic_store(&counting, true);
}

unsigned long ims_alloc_count(void)
{
    return atomic_load(&alloc_count);
}

static int should_fail_counted(void)
{
    unsigned long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    if (at == 0)
        return 0;
    return n == at || (n > at && atomic_load(&fail_sticky));
}

/* Returns 1 when this allocation must fail. */
static inline int should_fail(void)
{
    if (__builtin_expect(!atomic_load_explicit(&counting, memory_order_relaxed), 1))
        return 0;
    return should_fail_counted();
}

void *ims_alloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *ims_calloc(size_t nmemb, size_t n)
{
    if (n && nmemb > SIZE_MAX / n)
        return NULL;
    if (should_fail())
        return NULL;
    return calloc(nmemb ? nmemb : 1, n ? n : 1);
}

void *ims_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void ims_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

void ims_free(void *p)
{
    free(p);
}

char *ims_strndup(const char *s, size_t n)
{
    char *d = ims_alloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A registration frees blocks of tens of KiB (the HSS's User-Data rows,
 * transaction buffers) that often end at an arena's top.  At the default
 * threshold glibc then trims the arena (madvise) on one free and faults
 * the pages back in on the next malloc: 1.7 % + 1.1 % of a registration's
 * CPU in perf, and 7 % fewer CPU-µs per registration with 8 MiB kept
 * (docs/internals/hss-store.md, "Memory"). */
bool ims_alloc_tune_server(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "malloc.trim_threshold"))
        return false;
    return mallopt(M_TRIM_THRESHOLD, (int)IMS_ALLOC_TRIM_KEEP) == 1;
}
