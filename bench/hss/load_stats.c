/* load_stats.c - see load_stats.h. */
#include "load_stats.h"

#include <stdlib.h>
#include <string.h>
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

bool ls_opt(struct load_opts *o, int c, const char *arg, const char **sc)
{
    switch (c) {
    case 'H': o->hss = arg; break;
    case 'p': o->port = (unsigned)strtoul(arg, NULL, 10); break;
    case 'd': o->run_dir = arg; break;
    case 's': *sc = arg; break;
    case 'N': o->subs = (uint32_t)strtoul(arg, NULL, 10); break;
    case 'a': o->addr = arg; break;
    case 'F': o->first = (uint32_t)strtoul(arg, NULL, 10); break;
    case 'c': o->conns = (unsigned)strtoul(arg, NULL, 10); break;
    case 'w': o->window = (unsigned)strtoul(arg, NULL, 10); break;
    case 't': o->seconds = strtod(arg, NULL); break;
    case 'W': o->warmup = strtod(arg, NULL); break;
    case 'r': o->rate = strtod(arg, NULL); break;
    case 'P': o->tick_us = (unsigned)strtoul(arg, NULL, 10); break;
    case 'n': o->items = (unsigned)strtoul(arg, NULL, 10); break;
    case 'T': o->timeout_ms = (unsigned)strtoul(arg, NULL, 10); break;
    case 'R': o->record = arg; o->verify = true; break;
    case 'V': o->verify = true; break;
    case 'e': o->errors_ok = true; break;
    case 'i': o->prefix = arg; break;
    case 'x': o->expect = (uint32_t)strtoul(arg, NULL, 10); break;
    default: return false;
    }
    return true;
}

int ls_opts_check(struct load_opts *o, const char *sc, unsigned max_items)
{
    if (!o->hss || !o->port || o->port > 65535 || !sc || o->subs == 0)
        return -1;
    size_t nsc = sizeof(scenario_name) / sizeof(scenario_name[0]), k;
    for (k = 0; k < nsc && strcmp(sc, scenario_name[k]) != 0; k++)
        ;
    if (k == nsc)
        return -1;
    o->sc = (enum scenario)k;
    if (o->conns == 0 || o->conns > MAX_CONNS || o->window < o->conns ||
        o->window > MAX_WINDOW || o->items == 0 || o->items > max_items ||
        strlen(o->prefix) > 32 || !(o->seconds > 0 && o->seconds <= 3600) ||
        !(o->warmup >= 0 && o->warmup <= 600) || o->timeout_ms == 0 ||
        !(o->rate >= 0 && o->rate <= 1e7) || o->tick_us == 0 || o->tick_us > 1000000 ||
        (o->rate > 0 && o->errors_ok))
        return -1;
    return 0;
}

void ls_tally(struct ls_result *r, bool good, uint64_t us, bool timeout, bool busy, uint32_t code)
{
    if (good) {
        r->hist[ls_bucket(us)]++;
        r->lat_sum_us += us;
        if (us > r->lat_max_us)
            r->lat_max_us = us;
        r->ok++;
        return;
    }
    r->errors++;
    if (timeout)
        r->timeouts++;
    else if (busy)
        r->busy++;
    if (code)
        ls_add_code(r->code, r->ncode, code);
}

uint64_t ls_pct(const struct ls_result *r, double p)
{
    return ls_hist_pct(r->hist, r->ok, p, r->lat_max_us);
}

uint64_t ls_lag_pct(const struct ls_result *r, double p)
{
    return ls_hist_pct(r->lag_hist, r->scheduled, p, r->lag_max_us);
}
