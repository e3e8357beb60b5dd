/* hss_load - a Cx load generator on freeDiameter (src/dia) for the HSS
 * benchmark (bench/hss/run.sh) and the HSS crash test
 * (tests/e2e/hss_crash).
 *
 *   hss_load -H HSS_ID -p PORT -d RUN_DIR -s SCENARIO -N SUBS
 *            [-a ADDR] [-F FIRST] [-c CONNS] [-w WINDOW] [-t SECONDS] [-W WARMUP]
 *            [-r|--rate RATE] [-P TICK_US]
 *            [-n ITEMS] [-T TIMEOUT_MS] [-R RECORD_FILE] [-V] [-e] [-i PREFIX]
 *            [-x RESULT_CODE] [-v]
 *
 * Scenarios (every request to a subscriber drawn at random from FIRST ..
 * FIRST+SUBS-1 of hss_bench.h):
 *   mar-digest  MAR, SIP-Authentication-Scheme Digest-MD5 (what Kamailio's
 *               S-CSCF sends): HA1 look-up
 *   mar-aka     MAR, Digest-AKAv1-MD5, SIP-Number-Auth-Items ITEMS (default
 *               1): SQN allocation (a write transaction) + Milenage
 *   sar-reg     SAR REGISTRATION, User-Data-Already-Available 0: registration
 *               state written, User-Data (IMSSubscription XML) built
 *   sar-rereg   SAR RE_REGISTRATION, User-Data-Already-Available 1: state
 *               written, no User-Data
 *
 * CONNS processes (default 1), each its own freeDiameter node with its own
 * Diameter identity PREFIX<k>.ims.bench (default prefix "bench") and one
 * connection to the HSS, share a window of WINDOW outstanding requests
 * (default 64).  Two modes:
 *
 * - closed loop (default): the window is always full, each answer sends
 *   the next request on its slot.  The rate is whatever the server
 *   answers, and latency is mostly queueing in the window (Little's law:
 *   latency = WINDOW / rate).
 * - open loop (-r RATE, requests/s over all connections): each connection
 *   sends RATE/CONNS requests/s on a fixed schedule (evenly spaced, the
 *   connections' schedules interleaved), whatever the answers do: a pacing
 *   thread wakes every TICK_US (default 1000 us, or at the next due time if
 *   that is later) and sends every request that is due.  Latency counts
 *   from the scheduled time, not from the actual send, so a client that
 *   falls behind does not hide the queueing ("coordinated omission"); it
 *   includes up to one tick of pacing (a finer tick costs the client more
 *   CPU: about 1.5x at 200 us, on the cores the server needs).  A send more
 *   than a tick + 1 ms behind its schedule counts as late.  WINDOW is a
 *   cap on outstanding requests: a request due while the cap is reached is
 *   not sent and counts as an error (skipped).
 *
 * After WARMUP seconds (default 0) the measurement runs SECONDS (default
 * 10): the requests sent (open loop: scheduled) in that interval are
 * counted, with the latency of each (CLOCK_MONOTONIC) in a histogram (5 us
 * buckets up to 100 ms, 1 ms buckets up to 10 s).  The parent process
 * merges the children's results and prints them, ending with one
 * machine-readable line:
 *
 *   result scenario=.. conns=.. window=.. seconds=.. sent=.. ok=.. errors=..
 *          busy=.. timeouts=.. bad_vectors=.. rate=.. p50_us=.. p90_us=..
 *          p99_us=.. p999_us=.. max_us=.. client_cpu_s=.. mode=closed|open
 *          offered=.. scheduled=.. skipped=.. late=.. lag_p99_us=.. lag_max_us=..
 *          send_slow=..
 *
 * rate is answered/s (ok / SECONDS); offered, scheduled, skipped, late,
 * lag_* (how far sends were behind their schedule: the client's own share
 * of the latency) and send_slow (sends that blocked over 1 ms in
 * freeDiameter: its outgoing queue full) are 0 in the closed loop.
 *
 * -V checks every answer as a UE would (AKA: AUTN's MAC-A with the
 * subscriber's K/OPc, XRES/CK/IK; Digest: the HA1 of its password);
 * a wrong one counts in bad_vectors.  -R FILE (implies -V) also appends
 * one line "<subscriber> <SQN>" per AKA vector received to FILE (O_APPEND,
 * one write per answer, so a crash of this process or of the HSS loses no
 * line already received); the crash test compares these across an HSS
 * restart.
 *
 * -x CODE: the Result-Code that counts as answered (default 2001); the
 * benchmark's Diameter-only reference run sends MARs to an SLF, which
 * answers every one 3006 DIAMETER_REDIRECT_INDICATION without a store.
 *
 * -e (errors expected: the crash test): each window slot stops at its
 * first failed request (timeout, error answer), so the run ends soon after
 * the HSS dies.
 *
 * Exit: 0 when every counted request was answered (2001, or -x) and
 * verified; with -e 0 when at least one was; 1 otherwise; 2 on usage
 * errors. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "dia/dia.h"

#include "hss_bench.h"
#include "load_stats.h"

#define S(x) ims_str_cstr(x)


/* What a child sends back to the parent (and the parent's sum). */
static struct load_opts opt = LOAD_OPTS_DEFAULT;

/* ------------------------------------------------------------ child */

struct slot {
    uint64_t t0_ns;
    uint32_t sub;
    bool counted; /* sent inside the measurement interval */
    char impi[HB_ID_MAX], impu[HB_ID_MAX];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot *slots;
    unsigned nslots, active;
    unsigned *free_slots, nfree; /* open loop: slots not outstanding */
    uint64_t warm_end_ns, end_ns;
    uint64_t rng;
    int record_fd;
    struct ls_result *res;
} ch = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .record_fd = -1 };

/* a subscriber to ask for (under ch.mu) */
static uint32_t next_sub(void)
{
    return ls_next_sub(&ch.rng, opt.first, opt.subs);
}

static void on_answer(struct ims_loop *loop, int rc, const struct dia_ans *a, void *arg);

/* Sends the request of slot s to subscriber s->sub: ims_dia_send()'s result. */
static int send_req(struct slot *s)
{
    hb_impi(s->sub, s->impi);
    hb_impu(s->sub, s->impu);
    int rc;
    if (opt.sc == SC_MAR_DIGEST || opt.sc == SC_MAR_AKA) {
        struct cx_mar r;
        memset(&r, 0, sizeof(r));
        r.dest_realm = S(HB_REALM);
        r.impi = S(s->impi);
        r.impu = S(s->impu);
        r.server_name = S(HB_SCSCF);
        r.n_items = opt.sc == SC_MAR_AKA ? opt.items : 1;
        r.item.scheme = opt.sc == SC_MAR_AKA ? S("Digest-AKAv1-MD5") : S("Digest-MD5");
        r.item.present = 1u << CX_ITEM_SCHEME;
        r.present = 1u << DIA_REQ_DEST_REALM | 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU |
                    1u << CX_MAR_SERVER | 1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
        rc = ims_dia_send(DIA_CMD_MAR, &r, on_answer, s);
    } else {
        struct cx_sar r;
        memset(&r, 0, sizeof(r));
        r.dest_realm = S(HB_REALM);
        r.impi = S(s->impi);
        r.impu[0] = S(s->impu);
        r.n_impu = 1;
        r.server_name = S(HB_SCSCF);
        r.sat = opt.sc == SC_SAR_REG ? CX_SAT_REGISTRATION : CX_SAT_RE_REGISTRATION;
        r.uda = opt.sc == SC_SAR_REG ? 0 : 1;
        r.present = 1u << DIA_REQ_DEST_REALM | 1u << CX_SAR_IMPI | 1u << CX_SAR_IMPU |
                    1u << CX_SAR_SERVER | 1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
        rc = ims_dia_send(DIA_CMD_SAR, &r, on_answer, s);
    }
    return rc;
}

/* Closed loop: sends the next request of slot s (under ch.mu); false if it
 * could not be sent. */
static bool send_next(struct slot *s)
{
    uint64_t t = now_ns();
    if (t >= ch.end_ns)
        return false;
    s->sub = next_sub();
    s->t0_ns = t;
    s->counted = t >= ch.warm_end_ns;
    int rc = send_req(s);
    if (s->counted)
        ch.res->sent++;
    if (rc) {
        ch.res->send_failed++;
        if (s->counted)
            ch.res->errors++;
        return false;
    }
    return true;
}

/* Checks an MAA as the UE would; appends the SQNs to the record file. */
static bool verify(const struct slot *s, const struct dia_ans *a)
{
    if (opt.sc == SC_MAR_DIGEST) {
        char pw[HB_ID_MAX], ha1[IMS_DIGEST_HEX_MAX + 1];
        hb_password(s->sub, pw);
        ims_digest_ha1(IMS_DIGEST_MD5, S(s->impi), S(HB_REALM), S(pw), ha1);
        return a->n_item == 1 && ims_str_eq(a->items[0].digest.ha1, S(ha1));
    }
    if (opt.sc != SC_MAR_AKA)
        return true;
    uint8_t k[16], opc[16];
    char line[64 * CX_MAX_ITEMS];
    size_t len = 0;
    bool ok = a->n_item >= 1 && a->n_item <= opt.items;
    hb_keys(s->sub, k, opc);
    for (size_t i = 0; ok && i < a->n_item; i++) {
        const struct cx_auth_item *it = &a->items[i];
        uint8_t res[8], ck[16], ik[16], amf[2];
        uint64_t sqn = 0;
        const uint8_t *ra = (const uint8_t *)it->authenticate.p;
        ok = it->authenticate.len == 32 && it->authorization.len == 8 && it->ck.len == 16 &&
             it->ik.len == 16 &&
             ims_aka_ue_check(k, opc, ra, ra + 16, &sqn, amf, res, ck, ik) == 0 &&
             memcmp(res, it->authorization.p, 8) == 0 && memcmp(ck, it->ck.p, 16) == 0 &&
             memcmp(ik, it->ik.p, 16) == 0;
        if (ok)
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%u %llu\n", s->sub,
                                    (unsigned long long)sqn);
    }
    /* one write per answer: O_APPEND keeps lines of concurrent writers whole */
    if (ok && ch.record_fd >= 0 && write(ch.record_fd, line, len) != (ssize_t)len)
        ok = false;
    return ok;
}

static void on_answer(struct ims_loop *loop, int rc, const struct dia_ans *a, void *arg)
{
    struct slot *s = arg;
    uint64_t t = now_ns();
    bool good = false;
    uint32_t code = 0;
    if (rc == 0 && a) {
        code = dia_ans_code(a, NULL);
        good = DIA_HAS(a, DIA_ANS_RESULT) && a->result_code == opt.expect;
        if (good && opt.verify && opt.expect == DIA_SUCCESS && !verify(s, a)) {
            pthread_mutex_lock(&ch.mu);
            ch.res->bad_vectors++;
            pthread_mutex_unlock(&ch.mu);
            good = false;
            code = 0;
        }
    }
    pthread_mutex_lock(&ch.mu);
    struct ls_result *r = ch.res;
    if (s->counted)
        ls_tally(r, good, (t - s->t0_ns) / 1000, rc == IMS_ETIMEDOUT, code == DIA_TOO_BUSY, code);
    if (opt.rate > 0) {
        /* open loop: the slot is free for the pacer; the last one home
         * wakes it after the end */
        ch.free_slots[ch.nfree++] = (unsigned)(s - ch.slots);
        if (ch.nfree == ch.nslots)
            pthread_cond_signal(&ch.cv);
    } else if ((!good && opt.errors_ok) || !send_next(s)) {
        /* -e (the crash test): a slot stops at its first failure, so a
         * dead HSS ends the run instead of a storm of local error answers */
        ch.active--;
        pthread_cond_signal(&ch.cv);
    }
    pthread_mutex_unlock(&ch.mu);
}

/* Open loop: sends the request scheduled at t_sched (now is the actual
 * time), on a free slot; none free (the -w cap) skips it as an error.
 * Not under ch.mu: takes it for the bookkeeping, not for the send. */
static void send_paced(uint64_t t_sched, uint64_t now)
{
    struct ls_result *r = ch.res;
    uint64_t lag = now > t_sched ? now - t_sched : 0;
    pthread_mutex_lock(&ch.mu);
    bool counted = t_sched >= ch.warm_end_ns;
    if (counted) {
        r->scheduled++;
        r->lag_hist[ls_bucket(lag / 1000)]++;
        if (lag / 1000 > r->lag_max_us)
            r->lag_max_us = lag / 1000;
    }
    if (ch.nfree == 0) {
        if (counted) {
            r->skipped++;
            r->errors++;
        }
        pthread_mutex_unlock(&ch.mu);
        return;
    }
    struct slot *s = &ch.slots[ch.free_slots[--ch.nfree]];
    s->sub = next_sub();
    s->t0_ns = t_sched; /* latency from the schedule: no coordinated omission */
    s->counted = counted;
    if (counted) {
        r->sent++;
        if (lag > LATE_NS + (uint64_t)opt.tick_us * 1000u)
            r->late++;
    }
    pthread_mutex_unlock(&ch.mu);
    /* fd_msg_send() blocks while freeDiameter's outgoing queue is full (the
     * server or our own sending thread behind): count it apart from the
     * pacer merely waking late */
    int rc = send_req(s);
    uint64_t took = now_ns() - now;
    if (took > LATE_NS) {
        pthread_mutex_lock(&ch.mu);
        r->send_slow++;
        if (took / 1000 > r->send_max_us)
            r->send_max_us = took / 1000;
        pthread_mutex_unlock(&ch.mu);
    }
    if (rc == 0)
        return;
    pthread_mutex_lock(&ch.mu); /* on failure on_answer never runs */
    r->send_failed++;
    if (counted)
        r->errors++;
    ch.free_slots[ch.nfree++] = (unsigned)(s - ch.slots);
    pthread_mutex_unlock(&ch.mu);
}

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = { (time_t)(t_ns / 1000000000u), (long)(t_ns % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Open loop, connection idx: RATE/CONNS requests/s from t0 until ch.end_ns,
 * the k-th at t0 + (k + idx/CONNS) * interval (the connections interleave).
 * Wakes at the next due time, at most every tick_us, and sends what is due. */
static void run_paced(unsigned idx, uint64_t t0)
{
    double interval = 1e9 * opt.conns / opt.rate;
    double phase = (double)idx / opt.conns;
    uint64_t tick = (uint64_t)opt.tick_us * 1000u;
    /* the default 50 us timer slack would blur a short tick (-P) */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    uint64_t wake = t0; /* the last wake-up's target: ticks stay on a grid */
    for (uint64_t k = 0;; k++) {
        uint64_t due = t0 + (uint64_t)(((double)k + phase) * interval);
        if (due >= ch.end_ns)
            break;
        uint64_t now = now_ns();
        if (due > now) {
            wake = due > wake + tick ? due : wake + tick;
            sleep_until(wake);
            now = now_ns();
        }
        send_paced(due, now);
    }
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One connection: its own freeDiameter node.  Tells the parent "R" (peer
 * open) or "F", waits for "G", runs, and writes its struct ls_result. */
static int child(unsigned idx, unsigned window, int to_parent, int from_parent)
{
    char id[128], run[1024], err[256];
    snprintf(id, sizeof(id), "%s%u.ims.bench", opt.prefix, idx + 1);
    snprintf(run, sizeof(run), "%s/c%u", opt.run_dir, idx + 1);
    if (mkdir(run, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "hss_load: cannot create %s: %s\n", run, strerror(errno));
        write_all(to_parent, "F", 1);
        return 1;
    }
    struct ls_result *res = calloc(1, sizeof(*res));
    ch.slots = calloc(window, sizeof(*ch.slots));
    ch.free_slots = calloc(window, sizeof(*ch.free_slots));
    if (!res || !ch.slots || !ch.free_slots) {
        write_all(to_parent, "F", 1);
        return 1;
    }
    ch.res = res;
    ch.nslots = window;
    for (unsigned i = 0; i < window; i++)
        ch.free_slots[ch.nfree++] = window - 1 - i;
    ch.rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ (idx + 1) * UINT64_C(0x9e3779b97f4a7c15);
    if (ch.rng == 0)
        ch.rng = 1;
    if (opt.record) {
        ch.record_fd = open(opt.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (ch.record_fd < 0) {
            fprintf(stderr, "hss_load: %s: %s\n", opt.record, strerror(errno));
            write_all(to_parent, "F", 1);
            return 1;
        }
    }
    struct ims_dia_peer peer = { opt.hss, opt.addr, opt.port, false };
    struct ims_dia_cfg cfg = {
        .identity = id, .realm = HB_REALM, .run_dir = run, .peers = &peer, .npeers = 1,
        .max_pending = 16, .app_threads = 1, .request_timeout_ms = opt.timeout_ms,
        .apps = IMS_DIA_APP_CX, .tc_timer = 1, .log_level = ims_log_level,
    };
    if (ims_dia_start(&cfg, NULL, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "hss_load: %s\n", err);
        write_all(to_parent, "F", 1);
        return 1;
    }
    bool open_ = false;
    for (int i = 0; i < 300 && !open_; i++) {
        open_ = ims_dia_peer_open(opt.hss);
        if (!open_)
            usleep(100000);
    }
    char go = 0;
    if (!open_) {
        fprintf(stderr, "hss_load: %s: the connection to %s did not open\n", id, opt.hss);
        write_all(to_parent, "F", 1);
    } else if (write_all(to_parent, "R", 1) == 0 && read_all(from_parent, &go, 1) == 0 &&
               go == 'G') {
        uint64_t t0 = now_ns();
        pthread_mutex_lock(&ch.mu);
        ch.warm_end_ns = t0 + (uint64_t)(opt.warmup * 1e9);
        ch.end_ns = ch.warm_end_ns + (uint64_t)(opt.seconds * 1e9);
        if (opt.rate > 0) {
            pthread_mutex_unlock(&ch.mu);
            run_paced(idx, t0);
            pthread_mutex_lock(&ch.mu);
        } else {
            for (unsigned i = 0; i < window; i++)
                if (send_next(&ch.slots[i]))
                    ch.active++;
        }
        /* closed loop: answers keep the window full until end_ns; either
         * way, then wait for the last ones (at most the request timeout) */
        uint64_t give_up = ch.end_ns + (uint64_t)opt.timeout_ms * 1000000u + 2000000000u;
        while (opt.rate > 0 ? ch.nfree < ch.nslots : ch.active > 0) {
            if (now_ns() >= give_up)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&ch.cv, &ch.mu, &ts);
        }
        unsigned left = opt.rate > 0 ? ch.nslots - ch.nfree : ch.active;
        if (left)
            fprintf(stderr, "hss_load: %s: %u requests never completed\n", id, left);
        pthread_mutex_unlock(&ch.mu);
    }
    ims_dia_stop();
    ims_dia_release();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    res->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    int rc = open_ && go == 'G' ? 0 : 1;
    if (rc == 0 && write_all(to_parent, res, sizeof(*res)) != 0)
        rc = 1;
    if (ch.record_fd >= 0)
        close(ch.record_fd);
    free(ch.slots);
    free(ch.free_slots);
    free(res);
    return rc;
}

/* ------------------------------------------------------------ parent */


static void merge(struct ls_result *sum, const struct ls_result *r)
{
    sum->sent += r->sent;
    sum->ok += r->ok;
    sum->errors += r->errors;
    sum->busy += r->busy;
    sum->timeouts += r->timeouts;
    sum->bad_vectors += r->bad_vectors;
    sum->send_failed += r->send_failed;
    sum->scheduled += r->scheduled;
    sum->skipped += r->skipped;
    sum->late += r->late;
    if (r->lag_max_us > sum->lag_max_us)
        sum->lag_max_us = r->lag_max_us;
    sum->send_slow += r->send_slow;
    if (r->send_max_us > sum->send_max_us)
        sum->send_max_us = r->send_max_us;
    sum->lat_sum_us += r->lat_sum_us;
    if (r->lat_max_us > sum->lat_max_us)
        sum->lat_max_us = r->lat_max_us;
    sum->cpu_s += r->cpu_s;
    for (int i = 0; i < MAX_CODES; i++)
        for (uint64_t n = 0; n < r->ncode[i]; n++)
            ls_add_code(sum->code, sum->ncode, r->code[i]);
    for (size_t b = 0; b < NBUCKETS; b++) {
        sum->hist[b] += r->hist[b];
        sum->lag_hist[b] += r->lag_hist[b];
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: hss_load -H HSS_ID -p PORT -d RUN_DIR -s mar-digest|mar-aka|sar-reg|sar-rereg\n"
            "                -N SUBS [-a ADDR] [-F FIRST] [-c CONNS] [-w WINDOW] [-t SECONDS]\n"
            "                [-W WARMUP] [-r|--rate RATE] [-P TICK_US] [-n ITEMS]\n"
            "                [-T TIMEOUT_MS] [-R FILE] [-V] [-e] [-i PREFIX]\n"
            "                [-x RESULT_CODE] [-v]\n"
            "  -H, -p, -a     the HSS's Diameter identity, port, address (127.0.0.1)\n"
            "  -d RUN_DIR     freeDiameter's files, one subdirectory per connection\n"
            "  -N, -F         SUBS subscribers of hss_bench.h from number FIRST (0)\n"
            "  -c CONNS       connections (processes, Diameter identities), 1..%d (1)\n"
            "  -w WINDOW      outstanding requests over all connections, 1..%d (64):\n"
            "                 closed loop: always that many; open loop: a cap, a request\n"
            "                 due while it is reached is skipped (an error)\n"
            "  -r, --rate R   open loop: R requests/s over all connections on a fixed\n"
            "                 schedule, latency from the scheduled time (default: closed loop)\n"
            "  -P TICK_US     open loop: the pacer wakes at most this often (1000); the\n"
            "                 latency includes up to one tick\n"
            "  -t, -W         measured seconds (10) after warm-up seconds (0)\n"
            "  -n ITEMS       SIP-Number-Auth-Items of mar-aka (1)\n"
            "  -T TIMEOUT_MS  request timeout (5000)\n"
            "  -V             check every answer as the UE would; -R FILE also records SQNs\n"
            "  -e             errors expected (closed loop): a slot stops at its first failure\n"
            "  -i PREFIX      Diameter identities PREFIX<k>.ims.bench (bench)\n"
            "  -x CODE        the Result-Code that counts as answered (2001)\n"
            "  -v             freeDiameter and imscore debug logs\n",
            MAX_CONNS, MAX_WINDOW);
    return 2;
}

int main(int argc, char **argv)
{
    int o;
    const char *sc = NULL;
    ims_log_set_level(IMS_LOG_WARN); /* -v: debug */
    static const struct option lopts[] = { { "rate", required_argument, NULL, 'r' },
                                           { NULL, 0, NULL, 0 } };
    while ((o = getopt_long(argc, argv, LOAD_OPTSTRING "v", lopts, NULL)) != -1) {
        if (ls_opt(&opt, o, optarg, &sc))
            continue;
        if (o != 'v')
            return usage();
        ims_log_set_level(IMS_LOG_DEBUG);
    }
    if (optind != argc || !opt.run_dir || ls_opts_check(&opt, sc, CX_MAX_ITEMS) != 0)
        return usage();
    signal(SIGPIPE, SIG_IGN); /* freeDiameter writes to peers that hung up */
    if (mkdir(opt.run_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "hss_load: cannot create %s: %s\n", opt.run_dir, strerror(errno));
        return 1;
    }

    /* one child per connection: freeDiameter is one node per process */
    pid_t pid[MAX_CONNS];
    int up[MAX_CONNS], down[MAX_CONNS];
    unsigned started = 0;
    int rc = 0;
    for (unsigned i = 0; i < opt.conns; i++) {
        int a[2], b[2];
        if (pipe2(a, O_CLOEXEC) != 0 || pipe2(b, O_CLOEXEC) != 0) {
            rc = 1;
            break;
        }
        unsigned w = opt.window / opt.conns + (i < opt.window % opt.conns ? 1 : 0);
        fflush(NULL);
        pid[i] = fork();
        if (pid[i] < 0) {
            rc = 1;
            break;
        }
        if (pid[i] == 0) {
            close(a[0]);
            close(b[1]);
            _exit(child(i, w, a[1], b[0]));
        }
        close(a[1]);
        close(b[0]);
        up[i] = a[0];
        down[i] = b[1];
        started++;
    }
    /* every connection open, then all start together */
    for (unsigned i = 0; rc == 0 && i < started; i++) {
        struct pollfd p = { up[i], POLLIN, 0 };
        char st = 0;
        if (poll(&p, 1, 40000) != 1 || read_all(up[i], &st, 1) != 0 || st != 'R')
            rc = 1;
    }
    if (rc == 0 && opt.rate > 0)
        printf("hss_load: %s, %u subscribers from u%07u, %u connection(s), open loop at "
               "%.0f/s (cap %u outstanding, tick %u us), %.0f s warm-up + %.0f s\n",
               scenario_name[opt.sc], opt.subs, opt.first, opt.conns, opt.rate, opt.window,
               opt.tick_us, opt.warmup, opt.seconds);
    else if (rc == 0)
        printf("hss_load: %s, %u subscribers from u%07u, %u connection(s), window %u, "
               "%.0f s warm-up + %.0f s\n",
               scenario_name[opt.sc], opt.subs, opt.first, opt.conns, opt.window, opt.warmup,
               opt.seconds);
    fflush(stdout);
    for (unsigned i = 0; i < started; i++) {
        if (write_all(down[i], rc == 0 ? "G" : "X", 1) != 0)
            rc = 1;
        close(down[i]);
    }
    struct ls_result *sum = calloc(1, sizeof(*sum)), *one = calloc(1, sizeof(*one));
    if (!sum || !one)
        rc = 1;
    for (unsigned i = 0; i < started; i++) {
        if (rc == 0 && read_all(up[i], one, sizeof(*one)) == 0)
            merge(sum, one);
        else
            rc = 1;
        close(up[i]);
    }
    for (unsigned i = 0; i < started; i++) {
        int st = 0;
        waitpid(pid[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    if (rc || !sum) {
        fprintf(stderr, "hss_load: a connection failed (see above)\n");
        free(sum);
        free(one);
        return 1;
    }
    double rate = (double)sum->ok / opt.seconds;
    printf("hss_load: sent %llu, answered %u: %llu (%.0f/s), errors %llu (busy %llu, "
           "timeouts %llu, bad vectors %llu, send failures %llu)\n",
           (unsigned long long)sum->sent, opt.expect, (unsigned long long)sum->ok, rate,
           (unsigned long long)sum->errors, (unsigned long long)sum->busy,
           (unsigned long long)sum->timeouts, (unsigned long long)sum->bad_vectors,
           (unsigned long long)sum->send_failed);
    if (opt.rate > 0)
        printf("hss_load: open loop, offered %.0f/s: scheduled %llu, sent %llu, skipped "
               "(cap of %u reached) %llu, late (> tick + %u ms behind the schedule) %llu; "
               "send lag us: p50 %llu p99 %llu max %llu; sends that blocked > 1 ms %llu "
               "(longest %llu us)\n",
               opt.rate, (unsigned long long)sum->scheduled, (unsigned long long)sum->sent,
               opt.window, (unsigned long long)sum->skipped, LATE_NS / 1000000u,
               (unsigned long long)sum->late, (unsigned long long)ls_lag_pct(sum, 0.5),
               (unsigned long long)ls_lag_pct(sum, 0.99), (unsigned long long)sum->lag_max_us,
               (unsigned long long)sum->send_slow, (unsigned long long)sum->send_max_us);
    for (int i = 0; i < MAX_CODES && sum->ncode[i]; i++)
        printf("hss_load: result code %u: %llu\n", sum->code[i],
               (unsigned long long)sum->ncode[i]);
    printf("hss_load: latency us: mean %.0f p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu\n",
           sum->ok ? (double)sum->lat_sum_us / (double)sum->ok : 0.0,
           (unsigned long long)ls_pct(sum, 0.50), (unsigned long long)ls_pct(sum, 0.90),
           (unsigned long long)ls_pct(sum, 0.99), (unsigned long long)ls_pct(sum, 0.999),
           (unsigned long long)sum->lat_max_us);
    printf("result scenario=%s conns=%u window=%u seconds=%.1f sent=%llu ok=%llu errors=%llu "
           "busy=%llu timeouts=%llu bad_vectors=%llu rate=%.0f p50_us=%llu p90_us=%llu "
           "p99_us=%llu p999_us=%llu max_us=%llu client_cpu_s=%.2f mode=%s offered=%.0f "
           "scheduled=%llu skipped=%llu late=%llu lag_p99_us=%llu lag_max_us=%llu "
           "send_slow=%llu\n",
           scenario_name[opt.sc], opt.conns, opt.window, opt.seconds,
           (unsigned long long)sum->sent, (unsigned long long)sum->ok,
           (unsigned long long)sum->errors, (unsigned long long)sum->busy,
           (unsigned long long)sum->timeouts, (unsigned long long)sum->bad_vectors, rate,
           (unsigned long long)ls_pct(sum, 0.50), (unsigned long long)ls_pct(sum, 0.90),
           (unsigned long long)ls_pct(sum, 0.99), (unsigned long long)ls_pct(sum, 0.999),
           (unsigned long long)sum->lat_max_us, sum->cpu_s, opt.rate > 0 ? "open" : "closed",
           opt.rate, (unsigned long long)sum->scheduled, (unsigned long long)sum->skipped,
           (unsigned long long)sum->late, (unsigned long long)ls_lag_pct(sum, 0.99),
           (unsigned long long)sum->lag_max_us, (unsigned long long)sum->send_slow);
    bool pass = sum->ok > 0 && (opt.errors_ok || (sum->errors == 0 && sum->bad_vectors == 0));
    free(sum);
    free(one);
    return pass ? 0 : 1;
}
