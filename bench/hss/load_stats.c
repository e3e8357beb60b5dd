/* load_stats.c - see load_stats.h. */
#include "load_stats.h"

#include <time.h>

const char *const scenario_name[4] = { "mar-digest", "mar-aka", "sar-reg", "sar-rereg" };

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t ls_next_sub(uint64_t *rng, uint32_t first, uint32_t subs)
{
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return first + (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32) % subs;
}

void ls_add_code(uint32_t code[MAX_CODES], uint64_t ncode[MAX_CODES], uint32_t c)
{
    for (int i = 0; i < MAX_CODES; i++) {
        if (ncode[i] == 0)
            code[i] = c;
        if (code[i] == c) {
            ncode[i]++;
            return;
        }
    }
}

size_t ls_bucket(uint64_t us)
{
    size_t b = us < FINE_US ? us / BUCKET_US : NFINE + (us - FINE_US) / COARSE_US;
    return b < NBUCKETS ? b : NBUCKETS - 1;
}

uint64_t ls_bucket_edge(size_t b)
{
    return b < NFINE ? (uint64_t)(b + 1) * BUCKET_US
                     : FINE_US + (uint64_t)(b - NFINE + 1) * COARSE_US;
}

uint64_t ls_hist_pct(const uint64_t *hist, uint64_t n, double p, uint64_t max)
{
    if (n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)n + 0.999999), seen = 0;
    if (want == 0)
        want = 1;
    for (size_t b = 0; b + 1 < NBUCKETS; b++) {
        seen += hist[b];
        if (seen >= want)
            return ls_bucket_edge(b) < max ? ls_bucket_edge(b) : max;
    }
    return max;
}
