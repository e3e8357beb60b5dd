/* hss_storebench - the HSS's store work alone: the Cx handlers (hss/cx.h)
 * over a seeded SQLite store (hss_bench_seed), without Diameter, SIP or a
 * network, so that a change to the store path shows in CPU per request
 * without the noise of the rest of the process.
 *
 *   hss_storebench [-m exec|inline] [-t THREADS] [-w WINDOW] [-s SECONDS]
 *                  [-S SCENARIO] STORE_URL KEYS_DIR N
 *
 * SCENARIO: mar-digest, mar-aka, uar, sar-reg, sar-rereg, or ims-reg (the
 * four Cx requests of an IMS registration in order: UAR, MAR (Digest), UAR,
 * SAR; one "request" below is one of them).  Users are taken in a random
 * order from 0..N-1.
 *
 * -m exec (default): WINDOW jobs (default 64) outstanding on an executor
 * with THREADS store threads (default 1), completions with loop NULL, as
 * the HSS answers Diameter requests: group commit as in production.
 * -m inline: THREADS threads (default 2) each run the work on themselves
 * with ims_store_exec_run(), as the CSCF workers of a one-process
 * deployment do; SAR with IMS_STORE_RUN_LAZY as there.  A thread that
 * finds the inline connection in use yields and tries again (a worker
 * would hand the job over and go on with its SIP work), so with two
 * threads their CPU includes that spinning: -t 1 gives the store work
 * alone.
 *
 * Prints one line: scenario, mode, requests/s, process CPU per request
 * (µs), and the CPU of the threads that ran the store work per request. */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/err.h"
#include "crypto/keyrepo.h"
#include "hss/cx.h"
#include "hss_bench.h"
#include "store/exec.h"
#include "store/store.h"

enum scenario { SC_MAR_DIGEST, SC_MAR_AKA, SC_UAR, SC_SAR_REG, SC_SAR_REREG, SC_IMS_REG };
static const char *const sc_names[] = { "mar-digest", "mar-aka",   "uar",
                                        "sar-reg",    "sar-rereg", "ims-reg" };

static struct {
    enum scenario sc;
    uint32_t n;
    struct hss_policy pol;
} B = { .pol = { .realm = HB_REALM } };

struct req {
    struct ims_store_job job;
    uint32_t user;
    unsigned step; /* ims-reg: 0 UAR, 1 MAR, 2 UAR, 3 SAR */
    int rc;
    struct hss_result res; /* from run_cx (store thread) to finish_cx (completion) */
};

static _Atomic unsigned long long done_count, fail_count;
static _Thread_local uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_user(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % B.n);
}

/* The store part of one request, into r->res (initialised, and again by
 * finish_cx after each request); finish_cx completes it. */
static int run_cx(struct ims_store *st, struct req *r)
{
    char impi[HB_ID_MAX], impu[HB_ID_MAX];
    struct hss_result *res = &r->res;
    uint32_t user = r->user;
    unsigned step = r->step;
    int rc;
    hb_impi(user, impi);
    hb_impu(user, impu);
    enum scenario sc = B.sc;
    if (sc == SC_IMS_REG)
        sc = step == 1 ? SC_MAR_DIGEST : step == 3 ? SC_SAR_REG : SC_UAR;
    if (sc == SC_UAR) {
        struct cx_uar q;
        memset(&q, 0, sizeof(q));
        q.impi = ims_str_cstr(impi);
        q.impu = ims_str_cstr(impu);
        q.visited = ims_str_cstr(HB_REALM);
        DIA_SET(&q, CX_UAR_IMPI);
        DIA_SET(&q, CX_UAR_IMPU);
        DIA_SET(&q, CX_UAR_VISITED);
        DIA_SET(&q, CX_UAR_TYPE);
        rc = ims_hss_uar(st, &B.pol, &q, res);
    } else if (sc == SC_MAR_DIGEST || sc == SC_MAR_AKA) {
        struct cx_mar q;
        memset(&q, 0, sizeof(q));
        q.impi = ims_str_cstr(impi);
        q.impu = ims_str_cstr(impu);
        q.server_name = ims_str_cstr(HB_SCSCF);
        q.n_items = 1;
        q.item.scheme = ims_str_cstr(sc == SC_MAR_AKA ? "Digest-AKAv1-MD5" : "Digest-MD5");
        DIA_SET(&q.item, CX_ITEM_SCHEME);
        DIA_SET(&q, CX_MAR_IMPI);
        DIA_SET(&q, CX_MAR_IMPU);
        DIA_SET(&q, CX_MAR_SERVER);
        DIA_SET(&q, CX_MAR_NITEMS);
        DIA_SET(&q, CX_MAR_ITEM);
        rc = ims_hss_mar(st, &B.pol, &q, res);
    } else {
        struct cx_sar q;
        memset(&q, 0, sizeof(q));
        q.impi = ims_str_cstr(impi);
        q.impu[0] = ims_str_cstr(impu);
        q.n_impu = 1;
        q.server_name = ims_str_cstr(HB_SCSCF);
        q.sat = sc == SC_SAR_REG ? CX_SAT_REGISTRATION : CX_SAT_RE_REGISTRATION;
        DIA_SET(&q, CX_SAR_IMPI);
        DIA_SET(&q, CX_SAR_IMPU);
        DIA_SET(&q, CX_SAR_SERVER);
        DIA_SET(&q, CX_SAR_TYPE);
        DIA_SET(&q, CX_SAR_UDA);
        rc = ims_hss_sar(st, &B.pol, &q, res);
    }
    return rc;
}

/* What the server does after the store part, off the store connection
 * (hss.c: done, local_done): an AKA MAR's vectors.  Then the check. */
static int finish_cx(struct req *r, int rc)
{
    if (rc == 0)
        rc = ims_hss_result_finish(&r->res);
    /* an answer other than a 2xxx (UAR: 2001/2002 experimental) is a
     * broken seed or a broken handler */
    uint32_t code = dia_ans_code(&r->res.ans, NULL);
    if (rc == 0 && (code < 2000 || code > 2999))
        rc = IMS_EINVAL;
    ims_hss_result_clear(&r->res);
    ims_hss_result_init(&r->res);
    return rc;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- exec */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct req **free_reqs;
static size_t nfree;
/* the store threads' CPU: each adds its CPU clock once, from its first job */
static clockid_t store_clocks[64];
static _Atomic unsigned nclocks;
static _Thread_local bool clock_noted;

static void note_clock(void)
{
    if (clock_noted)
        return;
    clock_noted = true;
    unsigned i = atomic_fetch_add(&nclocks, 1);
    if (i < 64)
        pthread_getcpuclockid(pthread_self(), &store_clocks[i]);
}

static double store_cpu(void)
{
    double s = 0;
    unsigned n = atomic_load(&nclocks);
    for (unsigned i = 0; i < n && i < 64; i++) {
        struct timespec ts;
        if (clock_gettime(store_clocks[i], &ts) == 0)
            s += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return s;
}

static int exec_work(struct ims_store *st, void *arg)
{
    struct req *r = arg;
    note_clock();
    return run_cx(st, r);
}

static void exec_done(struct ims_loop *loop, int rc, void *arg)
{
    (void)loop;
    struct req *r = arg;
    rc = finish_cx(r, rc);
    if (rc)
        atomic_fetch_add(&fail_count, 1);
    else
        atomic_fetch_add(&done_count, 1);
    pthread_mutex_lock(&mu);
    free_reqs[nfree++] = r;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void advance(struct req *r)
{
    if (B.sc == SC_IMS_REG && r->step < 3) {
        r->step++;
        return;
    }
    r->step = 0;
    r->user = next_user();
}

static int run_exec(struct ims_store_exec *x, size_t window, double seconds)
{
    struct req *reqs = calloc(window, sizeof(*reqs));
    free_reqs = calloc(window, sizeof(*free_reqs));
    if (!reqs || !free_reqs)
        return IMS_ENOMEM;
    for (size_t i = 0; i < window; i++) {
        reqs[i].user = next_user();
        ims_hss_result_init(&reqs[i].res);
        free_reqs[nfree++] = &reqs[i];
    }
    double end = now() + seconds;
    pthread_mutex_lock(&mu);
    while (now() < end) {
        while (nfree == 0)
            pthread_cond_wait(&cv, &mu);
        struct req *r = free_reqs[--nfree];
        pthread_mutex_unlock(&mu);
        if (r->job.work) /* a finished request: its next one */
            advance(r);
        int rc = ims_store_exec_submit(x, NULL, &r->job, exec_work, exec_done, NULL, r);
        pthread_mutex_lock(&mu);
        if (rc) {
            fprintf(stderr, "hss_storebench: submit: %s\n", ims_strerror(rc));
            pthread_mutex_unlock(&mu);
            return rc;
        }
    }
    while (nfree < window)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < window; i++)
        ims_hss_result_clear(&reqs[i].res);
    free(reqs);
    free(free_reqs);
    return 0;
}

/* -------------------------------------------------------------- inline */

struct inline_arg {
    struct ims_store_exec *x;
    double end;
    double cpu;
    int rc;
};

static int inline_work(struct ims_store *st, void *arg)
{
    struct req *r = arg;
    return run_cx(st, r);
}

static void *inline_main(void *arg)
{
    struct inline_arg *a = arg;
    struct req r = { .user = 0 };
    ims_hss_result_init(&r.res);
    rng ^= (uint64_t)(uintptr_t)a * 0x2545f4914f6cdd1dull;
    r.user = next_user();
    double c0 = thread_cpu();
    while (now() < a->end) {
        unsigned step = B.sc == SC_IMS_REG ? r.step : 0;
        bool lazy = B.sc == SC_SAR_REG || B.sc == SC_SAR_REREG || (B.sc == SC_IMS_REG && step == 3);
        int wrc = 0, rc;
        /* in use by the other thread: a CSCF worker would hand the job over
         * (ims_store_exec_hand) and go on; this one has nothing else to do */
        while ((rc = ims_store_exec_run(a->x, lazy ? IMS_STORE_RUN_LAZY : 0, inline_work, &r,
                                        &wrc)) == IMS_EAGAIN)
            sched_yield();
        if (rc) {
            a->rc = rc;
            break;
        }
        wrc = finish_cx(&r, wrc);
        atomic_fetch_add(wrc ? &fail_count : &done_count, 1);
        r.job.work = inline_work;
        advance(&r);
    }
    a->cpu = thread_cpu() - c0;
    ims_hss_result_clear(&r.res);
    return NULL;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr, "usage: hss_storebench [-m exec|inline] [-t THREADS] [-w WINDOW] "
                    "[-s SECONDS] [-S mar-digest|mar-aka|uar|sar-reg|sar-rereg|ims-reg] "
                    "[-c CACHE_ENTRIES] "
                    "STORE_URL KEYS_DIR N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mode = "exec";
    long threads = -1, window = 64;
    size_t cache = 262144; /* [hss] cache_entries' default */
    double seconds = 10;
    int c;
    while ((c = getopt(argc, argv, "m:t:w:s:S:c:")) != -1) {
        switch (c) {
        case 'm': mode = optarg; break;
        case 't': threads = atol(optarg); break;
        case 'w': window = atol(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'c': cache = strtoul(optarg, NULL, 10); break;
        case 'S': {
            size_t i;
            for (i = 0; i < sizeof(sc_names) / sizeof(sc_names[0]); i++)
                if (strcmp(optarg, sc_names[i]) == 0)
                    break;
            if (i == sizeof(sc_names) / sizeof(sc_names[0]))
                usage();
            B.sc = (enum scenario)i;
            break;
        }
        default: usage();
        }
    }
    bool inl = strcmp(mode, "inline") == 0;
    if ((!inl && strcmp(mode, "exec") != 0) || argc - optind != 3 || window < 1 || seconds <= 0)
        usage();
    if (threads < 0)
        threads = inl ? 2 : 1;
    if (threads < 1 || threads > 64)
        usage();
    B.n = (uint32_t)strtoul(argv[optind + 2], NULL, 10);
    if (B.n == 0)
        usage();
    char err[256];
    struct ims_keyrepo *repo = NULL;
    if (ims_keyrepo_open(argv[optind + 1], &repo, err, sizeof(err)) != 0) {
        fprintf(stderr, "hss_storebench: keys: %s\n", err);
        return 1;
    }
    struct ims_store_exec *x = NULL;
    int rc = ims_store_exec_new(argv[optind], repo, inl ? 1 : (size_t)threads, 65536, cache,
                                &x);
    if (rc) {
        fprintf(stderr, "hss_storebench: store: %s\n", ims_strerror(rc));
        return 1;
    }
    double t0 = now(), p0 = process_cpu(), store = 0;
    if (inl) {
        pthread_t tid[64];
        struct inline_arg a[64];
        for (long i = 0; i < threads; i++) {
            a[i] = (struct inline_arg){ .x = x, .end = t0 + seconds };
            pthread_create(&tid[i], NULL, inline_main, &a[i]);
        }
        for (long i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            store += a[i].cpu;
            if (a[i].rc)
                rc = a[i].rc;
        }
    } else {
        rc = run_exec(x, (size_t)window, seconds);
        store = store_cpu();
    }
    double wall = now() - t0, cpu = process_cpu() - p0;
    struct ims_store_cache_stats cs;
    ims_store_exec_cache_stats(x, &cs);
    ims_store_exec_free(x);
    ims_keyrepo_free(repo);
    unsigned long long n = atomic_load(&done_count), bad = atomic_load(&fail_count);
    if (rc) {
        fprintf(stderr, "hss_storebench: %s\n", ims_strerror(rc));
        return 1;
    }
    printf("scenario=%s mode=%s threads=%ld requests=%llu failed=%llu per_s=%.0f "
           "cpu_us=%.1f store_thread_us=%.1f cache_hits=%llu cache_misses=%llu\n",
           sc_names[B.sc], mode, threads, n, bad, (double)n / wall, n ? cpu * 1e6 / (double)n : 0,
           n ? store * 1e6 / (double)n : 0, (unsigned long long)cs.hits,
           (unsigned long long)cs.misses);
    return bad ? 1 : 0;
}
