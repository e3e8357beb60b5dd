/* lockout.c - brute-force lockout at the S-CSCF (issue 6 part 3;
 * docs/security.md "Brute-force lockout").
 *
 * Failed authentications (a wrong Digest/AKA response: auth.c's WRONG and
 * TOO_MANY verdicts) are counted in fixed windows of [lockout] window
 * seconds under three keys in one capped, sharded table (table.h):
 *   "s|<addr>"         the UE's source address (the bottom Via's received=,
 *                      which the P-CSCF adds when the packet's source differs
 *                      from sent-by, RFC 3261 §18.2.1, else its host);
 *   "i|<impi>"         the private identity;
 *   "p|<impi>|<addr>"  the pair, so that an IMPI lockout applies only where
 *                      the failures came from.
 * Reaching source_failures locks the source (every IMPI from it);
 * reaching impi_failures locks the IMPI for every source that has failed
 * for it (its pair has failures) -- a source that never failed for it is
 * let through, so an attacker cannot lock the real user out by guessing
 * wrong on purpose (what real deployments do with "known devices").  A
 * lock lasts time_s, doubling on each new lock of the same key up to
 * max_time_s (the level is forgotten when the entry ages out).
 *
 * Time is the caller's (now_ms arguments); the S-CSCF glue below passes
 * the monotonic clock: with the wall clock, setting it back an hour (an NTP
 * step) made every running lock an hour longer and left every IMPI rate
 * bucket an hour of tokens in debt (503 for that hour).
 *
 * Every function is thread-safe (the table's shard locks); nothing here
 * does I/O except the audit event (ims_audit_emit queues it). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "crypto/digest.h"
#include "cscf/cscf_int.h"
#include "metrics/metrics.h"

struct lk_entry {
    unsigned fails;     /* in the window that started at win_ms */
    unsigned level;     /* locks so far: the next one lasts time_s << level */
    int64_t win_ms;
    int64_t until_ms;   /* locked until (0: never locked) */
    double tokens;      /* "r|<impi>": the REGISTER rate bucket ([limits] impi_rate) */
    int64_t tok_ms;
};

struct cscf_lockout {
    struct cscf_lockout_cfg cfg;
    struct cscf_table *t;
    atomic_ullong locks, blocked;
};

static int64_t keep_ms(const struct cscf_lockout *lk)
{
    int64_t w = (int64_t)lk->cfg.window_s * 1000, m = (int64_t)lk->cfg.max_time_s * 1000;
    return w > m ? w : m;
}

/* when the entry was last in use: a lock's end, its window's start, its
 * rate bucket's last take */
static int64_t last_use_ms(const struct lk_entry *e)
{
    int64_t last = e->until_ms > e->win_ms ? e->until_ms : e->win_ms;
    return e->tok_ms > last ? e->tok_ms : last;
}

/* the sweep's due time (seconds, rounded up): forgotten keep_ms after its
 * last use */
static int64_t entry_due(const void *v, void *ctx)
{
    int64_t ms = last_use_ms(v) + keep_ms(ctx);
    return ms / 1000 + (ms % 1000 > 0);
}

int cscf_lockout_new(const struct cscf_lockout_cfg *cfg, struct cscf_lockout **out)
{
    if (!cfg->window_s || !cfg->time_s || cfg->max_time_s < cfg->time_s || !cfg->max_entries)
        return IMS_EINVAL;
    struct cscf_lockout *lk = ims_calloc(1, sizeof(*lk));
    if (!lk)
        return IMS_ENOMEM;
    lk->cfg = *cfg;
    int rc = cscf_table_new(CSCF_SHARDS, cfg->max_entries, ims_free, &lk->t);
    if (rc == 0 && (rc = cscf_table_set_due(lk->t, entry_due, lk)) != 0)
        cscf_table_free(lk->t);
    if (rc) {
        ims_free(lk);
        return rc;
    }
    *out = lk;
    return 0;
}

void cscf_lockout_free(struct cscf_lockout *lk)
{
    if (!lk)
        return;
    cscf_table_free(lk->t);
    ims_free(lk);
}

/* ------------------------------------------------------------ keys */

static int key_make(char kind, ims_str impi, ims_str src, char *buf, size_t cap, ims_str *out)
{
    size_t n;
    if (kind == 's')
        n = IMS_STR_JOIN(buf, cap, IMS_S("s|"), src);
    else if (kind == 'i')
        n = IMS_STR_JOIN(buf, cap, IMS_S("i|"), impi);
    else
        n = IMS_STR_JOIN(buf, cap, IMS_S("p|"), impi, IMS_S("|"), src);
    if (n == SIZE_MAX)
        return IMS_ELIMIT;
    *out = ims_str_make(buf, n);
    return 0;
}

/* ------------------------------------------------------------ queries */

struct peek {
    int64_t now_ms;
    bool locked;   /* a lock is running */
    unsigned fails; /* failures in the current window */
    int64_t window_ms;
};

static int peek_fn(void **val, bool room, void *ctx)
{
    (void)room;
    struct peek *x = ctx;
    const struct lk_entry *e = *val;
    if (!e)
        return 0;
    x->locked = e->until_ms > x->now_ms;
    x->fails = x->now_ms - e->win_ms < x->window_ms ? e->fails : 0;
    return 0;
}

static struct peek peek(struct cscf_lockout *lk, char kind, ims_str impi, ims_str src,
                        int64_t now_ms)
{
    struct peek x = { .now_ms = now_ms, .window_ms = (int64_t)lk->cfg.window_s * 1000 };
    char buf[CSCF_TABLE_KEY_MAX];
    ims_str key;
    if (key_make(kind, impi, src, buf, sizeof(buf), &key) == 0)
        cscf_table_with(lk->t, key, peek_fn, &x);
    return x;
}

bool cscf_lockout_blocked(struct cscf_lockout *lk, ims_str impi, ims_str src, int64_t now_ms)
{
    bool b = false;
    if (lk->cfg.source_failures && src.len && peek(lk, 's', impi, src, now_ms).locked)
        b = true;
    /* the IMPI's lock binds the sources that failed for it (or an unknown
     * source: nothing tells it apart from the attacker) */
    if (!b && lk->cfg.impi_failures && peek(lk, 'i', impi, src, now_ms).locked)
        b = !src.len || peek(lk, 'p', impi, src, now_ms).fails > 0;
    if (b)
        atomic_fetch_add_explicit(&lk->blocked, 1, memory_order_relaxed);
    return b;
}

/* ------------------------------------------------------------ updates */

struct fail_ctx {
    const struct cscf_lockout_cfg *cfg;
    int64_t now_ms;
    unsigned limit;   /* 0: count only (the pair) */
    unsigned lock_s;  /* out: > 0 when this failure started a lock */
};

static int fail_fn(void **val, bool room, void *ctx)
{
    struct fail_ctx *x = ctx;
    struct lk_entry *e = *val;
    if (!e) {
        if (!room)
            return IMS_ELIMIT;
        e = ims_calloc(1, sizeof(*e));
        if (!e)
            return IMS_ENOMEM;
        *val = e;
    }
    if (x->now_ms - e->win_ms >= (int64_t)x->cfg->window_s * 1000) {
        e->win_ms = x->now_ms;
        e->fails = 0;
    }
    e->fails++;
    if (x->limit && e->fails >= x->limit && e->until_ms <= x->now_ms) {
        /* exponential backoff: time_s, 2 time_s, 4 time_s ... max_time_s */
        uint64_t s = x->cfg->time_s;
        for (unsigned i = 0; i < e->level && s < x->cfg->max_time_s; i++)
            s *= 2;
        if (s > x->cfg->max_time_s)
            s = x->cfg->max_time_s;
        e->level++;
        e->until_ms = x->now_ms + (int64_t)s * 1000;
        e->fails = 0; /* the next lock needs a full count again */
        e->win_ms = x->now_ms;
        x->lock_s = (unsigned)s;
    }
    return 0;
}

static unsigned fail_key(struct cscf_lockout *lk, char kind, ims_str impi, ims_str src,
                         unsigned limit, int64_t now_ms)
{
    char buf[CSCF_TABLE_KEY_MAX];
    ims_str key;
    struct fail_ctx x = { &lk->cfg, now_ms, limit, 0 };
    if (key_make(kind, impi, src, buf, sizeof(buf), &key) != 0)
        return 0;
    int rc = cscf_table_with(lk->t, key, fail_fn, &x);
    if (rc)
        LOG_W("lockout", "event=count_failed key_kind=%c err=%s", kind, ims_strerror(rc));
    return x.lock_s;
}

unsigned cscf_lockout_failed(struct cscf_lockout *lk, ims_str impi, ims_str src, int64_t now_ms,
                             unsigned *impi_lock_s, unsigned *src_lock_s)
{
    unsigned what = 0;
    *impi_lock_s = *src_lock_s = 0;
    if (lk->cfg.impi_failures) {
        if (src.len)
            fail_key(lk, 'p', impi, src, 0, now_ms);
        *impi_lock_s = fail_key(lk, 'i', impi, src, lk->cfg.impi_failures, now_ms);
        if (*impi_lock_s)
            what |= CSCF_LOCK_IMPI;
    }
    if (lk->cfg.source_failures && src.len) {
        *src_lock_s = fail_key(lk, 's', impi, src, lk->cfg.source_failures, now_ms);
        if (*src_lock_s)
            what |= CSCF_LOCK_SOURCE;
    }
    for (unsigned bit = CSCF_LOCK_IMPI; bit <= CSCF_LOCK_SOURCE; bit <<= 1)
        if (what & bit) {
            atomic_fetch_add_explicit(&lk->locks, 1, memory_order_relaxed);
            ims_metrics_inc(IMS_M_LOCKOUTS);
        }
    return what;
}

static int reset_fn(void **val, bool room, void *ctx)
{
    (void)room;
    (void)ctx;
    struct lk_entry *e = *val;
    if (e)
        e->fails = 0; /* a running lock stays: it ends with its time */
    return 0;
}

void cscf_lockout_succeeded(struct cscf_lockout *lk, ims_str impi, ims_str src)
{
    /* the right password proves the user, not the source: the source's
     * count stays (else one valid account would reset an attacker's) */
    char buf[CSCF_TABLE_KEY_MAX];
    ims_str key;
    if (key_make('i', impi, src, buf, sizeof(buf), &key) == 0)
        cscf_table_with(lk->t, key, reset_fn, NULL);
    if (src.len && key_make('p', impi, src, buf, sizeof(buf), &key) == 0)
        cscf_table_with(lk->t, key, reset_fn, NULL);
}

struct exp_ctx {
    int64_t now_ms, keep_ms;
};

static void exp_visit(ims_str key, void **val, void *ctx)
{
    (void)key;
    struct exp_ctx *x = ctx;
    struct lk_entry *e = *val;
    /* forgotten (backoff level too) once unlocked and quiet for max_time */
    if (x->now_ms - last_use_ms(e) >= x->keep_ms) {
        ims_free(e);
        *val = NULL;
    }
}

void cscf_lockout_expire(struct cscf_lockout *lk, unsigned first, unsigned step, int64_t now_ms)
{
    struct exp_ctx x = { now_ms, keep_ms(lk) };
    cscf_table_sweep_due(lk->t, first, step, now_ms / 1000, exp_visit, &x);
}

void cscf_lockout_stats(const struct cscf_lockout *lk, uint64_t *locks, uint64_t *blocked)
{
    *locks = atomic_load_explicit(&lk->locks, memory_order_relaxed);
    *blocked = atomic_load_explicit(&lk->blocked, memory_order_relaxed);
}

/* ------------------------------------------------------------ SIP side */

int cscf_ue_source(const struct sip_msg *m, char *out, size_t cap)
{
    ims_str host = cscf_ue_addr(m);
    out[0] = '\0';
    if (!host.len)
        return IMS_ENOENT;
    if (host.len >= cap)
        return IMS_ELIMIT;
    ims_str_copy(host, out, cap);
    return 0;
}

void cscf_lockout_audit(const char *impi, const char *impu, const char *src, unsigned what,
                        unsigned impi_s, unsigned src_s)
{
    for (unsigned bit = CSCF_LOCK_IMPI; bit <= CSCF_LOCK_SOURCE; bit <<= 1) {
        if (!(what & bit))
            continue;
        bool by_src = bit == CSCF_LOCK_SOURCE;
        char detail[160];
        snprintf(detail, sizeof(detail), "lockout: %s locked for %u s after repeated failures",
                 by_src ? "source address" : "private identity", by_src ? src_s : impi_s);
        LOG_W("lockout", "event=locked what=%s impi=%s src=%s secs=%u",
              by_src ? "source" : "impi", impi, src, by_src ? src_s : impi_s);
        struct ims_audit_event ev = {
            .action = "authenticate",
            .outcome = "failure",
            .initiator_type = "service/security/account/user",
            .initiator_id = ims_str_cstr(impi),
            .initiator_name = ims_str_cstr(impu),
            .initiator_addr = ims_str_cstr(src),
            .target_type = by_src ? "host/network/address" : "service/security/account/user",
            .target_id = ims_str_cstr(by_src ? src : impi),
            .target_name = ims_str_cstr(by_src ? src : impi),
            .observer = "scscf",
            .reason_type = "imscloud",
            .reason_code = IMS_S("lockout"),
            .detail = ims_str_cstr(detail),
        };
        ims_audit_emit(&ev);
    }
}

/* ------------------------------------------------------------ S-CSCF glue */

int cscf_lockout_init(struct ims_cscf *g)
{
    const struct ims_cfg *c = g->cfg;
    if (!c->lockout_impi_failures && !c->lockout_source_failures && !c->lim_impi_rate)
        return 0;
    struct cscf_lockout_cfg lc = {
        .impi_failures = c->lockout_impi_failures,
        .source_failures = c->lockout_source_failures,
        .window_s = c->lockout_window,
        .time_s = c->lockout_time,
        .max_time_s = c->lockout_max_time,
        .max_entries = c->lockout_max_entries,
        .impi_rate = c->lim_impi_rate,
        .impi_burst = c->lim_impi_burst ? c->lim_impi_burst
                                        : (c->lim_impi_rate * 2 > 5 ? c->lim_impi_rate * 2 : 5),
    };
    return cscf_lockout_new(&lc, &g->lockout);
}

bool cscf_lockout_check(struct ims_cscf *g, const char *src, const char *impi)
{
    if (!g->lockout)
        return false;
    if (!cscf_lockout_blocked(g->lockout, ims_str_cstr(impi), ims_str_cstr(src), cscf_mono_ms()))
        return false;
    LOG_I("lockout", "event=blocked impi=%s src=%s", impi, src);
    return true;
}

void cscf_lockout_note(struct ims_cscf *g, const char *src, const char *impi, const char *impu,
                       enum ims_auth_verdict v)
{
    if (!g->lockout || (v != IMS_AUTH_OK && v != IMS_AUTH_WRONG && v != IMS_AUTH_TOO_MANY))
        return;
    if (v == IMS_AUTH_OK) {
        cscf_lockout_succeeded(g->lockout, ims_str_cstr(impi), ims_str_cstr(src));
        return;
    }
    unsigned is = 0, ss = 0;
    unsigned what = cscf_lockout_failed(g->lockout, ims_str_cstr(impi), ims_str_cstr(src),
                                        cscf_mono_ms(), &is, &ss);
    if (what)
        cscf_lockout_audit(impi, impu, src, what, is, ss);
}

int cscf_decoy_challenge(struct ims_cscf *g, const char *impi, bool stale, int alg, char *line,
                         size_t cap)
{
    /* the shape of a real challenge (auth.c: nonce format, realm, algorithm,
     * qop); the secret is random, so no response ever matches it */
    struct ims_auth_vector v;
    uint8_t rnd[48];
    memset(&v, 0, sizeof(v));
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return IMS_EBACKEND;
    snprintf(v.realm, sizeof(v.realm), "%s", g->s_realm);
    if (alg < 0) {
        v.kind = IMS_AUTHK_AKAV1;
        memcpy(v.rand, rnd, 16);
        memcpy(v.autn, rnd + 16, 16);
        memcpy(v.xres, rnd + 32, 8);
        v.xres_len = 8;
    } else {
        v.kind = IMS_AUTHK_DIGEST;
        v.alg = (enum ims_digest_alg)alg;
        size_t n = ims_digest_hex_len(v.alg);
        for (size_t i = 0; i < n && i / 2 < sizeof(rnd); i++)
            v.ha1[i] = "0123456789abcdef"[(rnd[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    }
    struct ims_buf b;
    ims_buf_init(&b, cap - 1);
    int rc = ims_auth_challenge(g->auth, ims_str_cstr(impi), &v, stale, cscf_now_ms(), &b);
    ims_auth_vector_clear(&v);
    ims_wipe(rnd, sizeof(rnd));
    if (rc == 0)
        snprintf(line, cap, "%s", b.p);
    else
        LOG_W("lockout", "event=decoy_failed impi=%s err=%s", impi, ims_strerror(rc));
    ims_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ IMPI rate */

struct rate_ctx {
    const struct cscf_lockout_cfg *cfg;
    int64_t now_ms;
    bool over;
};

static int rate_fn(void **val, bool room, void *ctx)
{
    struct rate_ctx *x = ctx;
    struct lk_entry *e = *val;
    if (!e) {
        if (!room)
            return 0; /* the table is full: not limited (the lockout's cap is logged) */
        e = ims_calloc(1, sizeof(*e));
        if (!e)
            return IMS_ENOMEM;
        e->tokens = x->cfg->impi_burst;
        e->tok_ms = x->now_ms;
        *val = e;
    }
    double t = e->tokens + (double)(x->now_ms - e->tok_ms) * x->cfg->impi_rate / 1000.0;
    e->tokens = t > x->cfg->impi_burst ? x->cfg->impi_burst : t;
    e->tok_ms = x->now_ms;
    if (e->tokens >= 1.0)
        e->tokens -= 1.0;
    else
        x->over = true;
    return 0;
}

bool cscf_lockout_rate_over(struct cscf_lockout *lk, ims_str impi, int64_t now_ms)
{
    if (!lk->cfg.impi_rate)
        return false;
    char buf[CSCF_TABLE_KEY_MAX];
    size_t n = IMS_STR_JOIN(buf, sizeof(buf), IMS_S("r|"), impi);
    struct rate_ctx x = { &lk->cfg, now_ms, false };
    return n != SIZE_MAX &&
           cscf_table_with(lk->t, ims_str_make(buf, n), rate_fn, &x) == 0 && x.over;
}

bool cscf_impi_rate_reply(struct ims_cscf *g, struct proxy_req *r, const char *impi)
{
    if (!g->lockout || !cscf_lockout_rate_over(g->lockout, ims_str_cstr(impi), cscf_mono_ms()))
        return false;
    LOG_I("lockout", "event=impi_rate_limited impi=%s", impi);
    ims_metrics_inc(IMS_M_RATE_LIMITED);
    char ra[32];
    ims_proxy_reply(r, 503, "Rate Limited",
                    &(struct proxy_reply_opts){
                        .hdrs = cscf_retry_after(g->cfg->lim_retry_after, ra, sizeof(ra)) });
    return true;
}
