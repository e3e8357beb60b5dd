/* load_stats.h - what the two Cx load generators (hss_load over freeDiameter,
 * hss_rawload over plain sockets) share: the command line, the clock, the
 * subscriber draw, the latency histogram and its percentiles, the tally of
 * unexpected result codes, the scenario names.  One definition, so that
 * they take the same options and their result lines stay comparable row
 * for row in bench/RESULTS.md. */
#ifndef IMS_BENCH_LOAD_STATS_H
#define IMS_BENCH_LOAD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Latency histograms: 5 us buckets up to 100 ms, then 1 ms buckets up to
 * 10 s (past the request timeout; an overloaded open loop gets there) */
#define BUCKET_US 5
#define FINE_US 100000u
#define NFINE (FINE_US / BUCKET_US)
#define COARSE_US 1000u
#define NBUCKETS (NFINE + 9900)
#define MAX_CODES 8
#define LATE_NS 1000000u /* open loop: a send this far past its tick is late */

enum scenario { SC_MAR_DIGEST, SC_MAR_AKA, SC_SAR_REG, SC_SAR_REREG };
extern const char *const scenario_name[4]; /* "mar-digest" ... */

#define MAX_CONNS 16
#define MAX_WINDOW 4096

/* The options both tools take (their usage texts say what each means). */
struct load_opts {
    const char *hss, *addr, *run_dir, *record, *prefix;
    unsigned port;
    enum scenario sc;
    uint32_t subs, first;
    unsigned conns, window, items, timeout_ms, tick_us;
    double seconds, warmup;
    double rate;     /* open loop: requests/s over all connections; 0: closed loop */
    uint32_t expect; /* the Result-Code that counts as answered */
    bool verify, errors_ok;
};
#define LOAD_OPTS_DEFAULT                                                                   \
    {                                                                                       \
        .addr = "127.0.0.1", .prefix = "bench", .conns = 1, .window = 64, .items = 1,       \
        .timeout_ms = 5000, .tick_us = 1000, .seconds = 10, .warmup = 0, .expect = 2001,    \
    }
/* getopt string of the shared options */
#define LOAD_OPTSTRING "H:p:d:s:N:a:F:c:w:t:W:r:P:n:T:R:Vei:x:"
/* Takes getopt's option c with its argument: true if it was a shared one
 * (-s is kept in *sc for ls_opts_check). */
bool ls_opt(struct load_opts *o, int c, const char *arg, const char **sc);
/* After getopt: the scenario named, and every value in range (items at
 * most max_items).  0 or -1 (then print the usage). */
int ls_opts_check(struct load_opts *o, const char *sc, unsigned max_items);

uint64_t now_ns(void); /* CLOCK_MONOTONIC */
/* xorshift64*: a subscriber in [first, first + subs), uniformly enough */
uint32_t ls_next_sub(uint64_t *rng, uint32_t first, uint32_t subs);
/* counts one more answer with this result code (the first MAX_CODES
 * distinct codes are kept) */
void ls_add_code(uint32_t code[MAX_CODES], uint64_t ncode[MAX_CODES], uint32_t c);
size_t ls_bucket(uint64_t us);
uint64_t ls_bucket_edge(size_t b); /* the bucket's upper edge, us */
/* the p-quantile (0..1) of n samples in hist, at most max */
uint64_t ls_hist_pct(const uint64_t *hist, uint64_t n, double p, uint64_t max);

/* One tool's counts (hss_load: per child process, merged by the parent). */
struct ls_result {
    uint64_t sent, ok, errors, busy, timeouts, bad_vectors, send_failed;
    uint64_t malformed;                        /* hss_rawload: answers it cannot parse */
    uint64_t scheduled, skipped, late, lag_max_us; /* open loop */
    uint64_t send_slow, send_max_us; /* open loop: sends held up over 1 ms */
    uint64_t lat_sum_us, lat_max_us;
    double cpu_s;
    uint32_t code[MAX_CODES];  /* result codes other than the expected one ... */
    uint64_t ncode[MAX_CODES]; /* ... and how often */
    uint64_t hist[NBUCKETS];
    uint64_t lag_hist[NBUCKETS]; /* open loop: send lag behind the schedule */
};
/* One measured answer: good (latency us), or an error: a timeout, a busy
 * answer, or another code (0: none, e.g. a local failure). */
void ls_tally(struct ls_result *r, bool good, uint64_t us, bool timeout, bool busy, uint32_t code);
/* Latency and send-lag quantiles of r */
uint64_t ls_pct(const struct ls_result *r, double p);
uint64_t ls_lag_pct(const struct ls_result *r, double p);

#endif
