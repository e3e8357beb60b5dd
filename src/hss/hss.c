/* hss.c - the HSS role wiring (see hss.h, docs/internals/hss.md). */
#include "hss/hss.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "base/xml.h"
#include "crypto/keyrepo.h"
#include "ev/loop.h"
#include "metrics/metrics.h"
#include "hss/ks_creds.h"
#include "store/exec.h"
#include "store/store.h"
#include "store/store_ext.h"

#define MAX_SCSCF_PEERS 256
#define LOOP_TIMERS 1024
#define MAX_RETIRED_REPOS 32 /* keys.reload calls per run */

/* Server-Name (an S-CSCF's SIP URI) -> its Diameter identity, learned from
 * the Origin-Host of its MAR/SAR; RTR and PPR go there.  Loop thread only.
 * A new or changed entry is also written to the store (scscf_peer,
 * store_ext.h), and an admin call whose S-CSCF is not in this map looks it
 * up there, so an HSS restart does not forget where to send RTR/PPR. */
struct scscf_peer {
    char name[IMS_STORE_ID_MAX];
    char host[256];
    char realm[256];
};

struct ims_hss {
    const struct ims_hss_cfg *cfg;
    /* The key repository in use.  keys.reload replaces it on the loop
     * thread (__atomic store); each store thread picks the new one up
     * before its next job (sync_keys).  Replaced ones stay allocated until
     * ims_hss_stop, since a job that started before may still use them. */
    struct ims_keyrepo *repo;
    struct ims_keyrepo *retired[MAX_RETIRED_REPOS];
    size_t nretired;
    struct ims_store_exec *exec;
    struct ims_loop *loop;
    pthread_t thread;
    bool thread_started;
    bool dia_started;
    bool stopping;
    struct scscf_peer peers[MAX_SCSCF_PEERS];
    size_t npeers, next_evict;
    /* the S-CSCF of this process (ims_hss_set_local_scscf): RTR/PPR for its
     * Server-Name are handed to it, not sent to our own Diameter node */
    pthread_mutex_t local_lock;
    char local_name[IMS_STORE_ID_MAX];
    ims_hss_scscf_fn local_fn;
    void *local_ctx;
    struct hss_ks *ks; /* Keystone-backed subscribers, or NULL (ks_creds.h) */
};

/* One request on its way through the store. */
struct job {
    struct ims_store_job sj;
    struct ims_hss *h;
    struct ims_dia_req *req;
    int rc;
    struct hss_result res;
    /* ks_creds: a UAR/MAR of a Keystone-backed IMPI stops with ks.state
     * HSS_KS_NEED; after the fetch resume() runs the job again */
    struct hss_ks_secret ks;
    void (*resume)(struct job *j);
};

/* Zeroes the size bytes of a job (j, or an allocation that begins with
 * one) but its result's storage, which ims_hss_result_init leaves alone:
 * not calloc, which would clear 9 KiB more for every request. */
static void job_zero(struct job *j, size_t size)
{
    memset(j, 0, offsetof(struct job, res));
    ims_hss_result_init(&j->res);
    char *after = (char *)&j->res + sizeof(j->res);
    memset(after, 0, size - (size_t)(after - (char *)j));
}

/* Store threads: use the key repository keys.reload published last. */
static void sync_keys(struct ims_hss *h, struct ims_store *st)
{
    struct ims_keyrepo *cur = __atomic_load_n(&h->repo, __ATOMIC_ACQUIRE);
    if (cur && ims_store_keyrepo(st) != cur)
        ims_store_set_keyrepo(st, cur);
}

/* Writing a learned peer to the store (fire and forget: the map in
 * memory is what RTR/PPR use while we run). */
struct peer_save {
    struct ims_store_job sj;
    struct ims_hss *h;
    struct ims_scscf_peer p;
};

static int peer_save_work(struct ims_store *st, void *arg)
{
    struct peer_save *ps = arg;
    sync_keys(ps->h, st);
    return ims_store_scscf_peer_put(st, ims_str_cstr(ps->p.name), ims_str_cstr(ps->p.host),
                                    ims_str_cstr(ps->p.realm));
}

static void peer_save_done(struct ims_loop *loop, int rc, void *arg)
{
    struct peer_save *ps = arg;
    if (rc)
        LOG_W("hss", "event=scscf_peer_save_failed scscf=%s host=%s err=%s", ps->p.name,
              ps->p.host, ims_strerror(rc));
    ims_free(ps);
}

static void peer_save_cancel(void *arg)
{
    ims_free(arg);
}

static void save_peer(struct ims_hss *h, const struct scscf_peer *p)
{
    struct peer_save *ps = h->exec ? ims_calloc(1, sizeof(*ps)) : NULL;
    if (!ps)
        return;
    ps->h = h;
    snprintf(ps->p.name, sizeof(ps->p.name), "%s", p->name);
    snprintf(ps->p.host, sizeof(ps->p.host), "%s", p->host);
    snprintf(ps->p.realm, sizeof(ps->p.realm), "%s", p->realm);
    if (ims_store_exec_submit(h->exec, h->loop, &ps->sj, peer_save_work, peer_save_done,
                              peer_save_cancel, ps) != 0) {
        LOG_W("hss", "event=scscf_peer_save_failed scscf=%s err=busy", p->name);
        ims_free(ps);
    }
}

/* Records name -> host/realm in the map; persist: also in the store when
 * the entry is new or changed. */
static void learn_peer(struct ims_hss *h, const char *name, ims_str host, ims_str realm,
                       bool persist)
{
    struct scscf_peer *p = NULL;
    if (!name[0] || host.len == 0 || host.len >= sizeof(p->host) || realm.len >= sizeof(p->realm))
        return;
    for (size_t i = 0; i < h->npeers && !p; i++)
        if (strcmp(h->peers[i].name, name) == 0)
            p = &h->peers[i];
    if (p && ims_str_eq(host, ims_str_cstr(p->host)) && ims_str_eq(realm, ims_str_cstr(p->realm)))
        return; /* known and unchanged */
    if (!p) {
        if (h->npeers < MAX_SCSCF_PEERS) {
            p = &h->peers[h->npeers++];
        } else { /* full: overwrite round-robin (a cap, logged) */
            p = &h->peers[h->next_evict++ % MAX_SCSCF_PEERS];
            LOG_W("hss", "event=scscf_map_full evicted=%s", p->name);
        }
        snprintf(p->name, sizeof(p->name), "%s", name);
    }
    ims_str_copy(host, p->host, sizeof(p->host));
    ims_str_copy(realm, p->realm, sizeof(p->realm));
    if (persist)
        save_peer(h, p);
}

static const struct scscf_peer *peer_of(struct ims_hss *h, const char *name)
{
    for (size_t i = 0; i < h->npeers; i++)
        if (strcmp(h->peers[i].name, name) == 0)
            return &h->peers[i];
    return NULL;
}

/* ------------------------------------------------------------ requests */

static int work(struct ims_store *st, void *arg)
{
    struct job *j = arg;
    const struct hss_policy *pol = &j->h->cfg->policy;
    const struct ims_dia_req *r = j->req;
    sync_keys(j->h, st);
    if (j->h->ks && (r->cmd == DIA_CMD_UAR || r->cmd == DIA_CMD_MAR)) { /* ks_creds */
        enum hss_ks_route route;
        ims_str impi = r->cmd == DIA_CMD_UAR ? r->u.uar.impi : r->u.mar.impi;
        int rc = hss_ks_prepare(j->h->ks, st, r->cmd, impi, &j->ks, &route);
        if (rc || route == HSS_KS_ROUTE_FETCH)
            return rc;
        if (route == HSS_KS_ROUTE_EXT)
            return ims_hss_mar_ext(st, pol, &r->u.mar, &j->ks, &j->res);
    }
    switch (r->cmd) {
    case DIA_CMD_UAR: return ims_hss_uar(st, pol, &r->u.uar, &j->res);
    case DIA_CMD_MAR: return ims_hss_mar(st, pol, &r->u.mar, &j->res);
    case DIA_CMD_SAR: return ims_hss_sar(st, pol, &r->u.sar, &j->res);
    case DIA_CMD_LIR: return ims_hss_lir(st, pol, &r->u.lir, &j->res);
    case DIA_CMD_UDR: return ims_hss_udr(st, &r->u.udr, &j->res);
    case DIA_CMD_PUR: return ims_hss_pur(st, &r->u.pur, &j->res);
    default: return IMS_EINVAL;
    }
}

/* Whether a request runs on the calling thread (ims_store_exec_run: a CSCF
 * worker, or freeDiameter's dispatch thread), and how.  The requests of a
 * registration and a call do; a SAR's registration state is written lazily
 * (flushed by the executor's background flush within [hss] flush_ms: what a power
 * cut loses, the S-CSCF writes again at the next (re-)registration;
 * docs/internals/hss-store.md).  So does a MAR, AKA too: its SQN commits
 * without waiting for the disk, and what a power cut loses of it is never
 * handed out again (SQN generations, store_int.h).  UDR and PUR (rare)
 * stay on the store threads. */
static bool run_inline(const struct ims_hss *h, const struct ims_dia_req *r, unsigned *flags)
{
    *flags = 0;
    if (!ims_store_exec_inline_ok(h->exec))
        return false;
    switch (r->cmd) {
    case DIA_CMD_UAR:
    case DIA_CMD_LIR:
    case DIA_CMD_MAR: return true;
    case DIA_CMD_SAR: *flags = IMS_STORE_RUN_LAZY; return true;
    default: return false;
    }
}

static void answer_error(struct ims_dia_req *req, uint32_t code)
{
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    dia_ans_result(&a, code);
    ims_dia_answer(req, &a);
}

static void job_free(struct job *j)
{
    ims_hss_result_clear(&j->res);
    hss_ks_secret_clear(&j->ks);
    ims_free(j);
}

/* ---- ks_creds: the Keystone fetch between two runs of a job ---- */

static void ks_fetched(void *arg, const struct hss_ks_secret *res)
{
    struct job *j = arg;
    j->ks = *res; /* FOUND, ABSENT or FAILED: the job does not stop again */
    j->resume(j);
}

/* From the job's done callback (any thread): fetch, then resume. */
static void ks_fetch(struct job *j)
{
    const struct ims_dia_req *r = j->req;
    ims_str impi = r->cmd == DIA_CMD_UAR ? r->u.uar.impi : r->u.mar.impi;
    if (hss_ks_fetch(j->h->ks, impi, ks_fetched, j) != 0) {
        j->ks.state = HSS_KS_FAILED;
        j->resume(j);
    }
}

/* ---- S-CSCF peers learned off the loop ----
 *
 * A Diameter request is answered off the HSS loop (done, below), but the
 * peer map belongs to the loop: the (Server-Name,
 * Origin-Host, Origin-Realm) of an answer that assigned an S-CSCF is
 * posted there.  Not for every MAR/SAR: each answering thread remembers
 * what it posted in the last second (a few entries), so a busy S-CSCF costs a
 * post per thread per second, and a changed host still reaches the map
 * within that second. */
#define SEEN_MAX 8
#define SEEN_NS 1000000000LL

struct peer_learn {
    struct ims_hss *h;
    struct scscf_peer p;
};

struct seen_peer {
    struct scscf_peer p;
    long long at_ns;
};

static _Thread_local struct seen_peer seen[SEEN_MAX];
static _Thread_local unsigned seen_next;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* true when this thread posted the same triple less than a second ago;
 * otherwise remembers it (the caller posts) */
static bool seen_recently(const char *name, ims_str host, ims_str realm)
{
    long long now = now_ns();
    for (unsigned i = 0; i < SEEN_MAX; i++) {
        const struct seen_peer *e = &seen[i];
        if (e->at_ns && now - e->at_ns < SEEN_NS && strcmp(e->p.name, name) == 0 &&
            ims_str_eq(host, ims_str_cstr(e->p.host)) &&
            ims_str_eq(realm, ims_str_cstr(e->p.realm)))
            return true;
    }
    struct seen_peer *e = &seen[seen_next++ % SEEN_MAX];
    snprintf(e->p.name, sizeof(e->p.name), "%s", name);
    ims_str_copy(host, e->p.host, sizeof(e->p.host));
    ims_str_copy(realm, e->p.realm, sizeof(e->p.realm));
    e->at_ns = now;
    return false;
}

static void peer_learn_run(struct ims_loop *loop, void *arg)
{
    struct peer_learn *l = arg;
    learn_peer(l->h, l->p.name, ims_str_cstr(l->p.host), ims_str_cstr(l->p.realm), true);
    ims_free(l);
}

static void post_learn(struct ims_hss *h, const char *name, ims_str host, ims_str realm)
{
    if (host.len == 0 || host.len >= sizeof(((struct scscf_peer *)0)->host) ||
        realm.len >= sizeof(((struct scscf_peer *)0)->realm) || seen_recently(name, host, realm))
        return;
    struct peer_learn *l = ims_calloc(1, sizeof(*l));
    if (!l)
        return; /* the next answer of this S-CSCF after a second tries again */
    l->h = h;
    snprintf(l->p.name, sizeof(l->p.name), "%s", name);
    ims_str_copy(host, l->p.host, sizeof(l->p.host));
    ims_str_copy(realm, l->p.realm, sizeof(l->p.realm));
    if (ims_loop_post(h->loop, peer_learn_run, l, ims_free) != 0)
        ims_free(l);
}

/* On the executor's completion thread once the job's batch committed
 * (exec.h, loop NULL), or on the thread that ran the job inline: answering
 * is thread-safe (dia.h), and going back through the HSS loop first was
 * two more thread wake-ups per request. */
static void done(struct ims_loop *loop, int rc, void *arg)
{
    struct job *j = arg;
    struct ims_dia_req *req = j->req;
    if (rc == 0 && j->ks.state == HSS_KS_NEED) {
        ks_fetch(j);
        return;
    }
    if (rc == IMS_EBACKEND && j->ks.state == HSS_KS_FAILED) {
        /* info: the Keystone client logs the outage once (keystone_unavailable) */
        LOG_I("hss", "event=keystone_failed cmd=%u sess=%.*s", req->cmd, IMS_SF(req->session_id));
        answer_error(req, DIA_UNABLE_TO_COMPLY);
    } else if (rc) {
        LOG_E("hss", "event=store_failed cmd=%u sess=%.*s err=%s", req->cmd,
              IMS_SF(req->session_id), ims_strerror(rc));
        answer_error(req, DIA_UNABLE_TO_COMPLY);
    } else {
        ims_hss_result_finish(&j->res); /* off the store connection (cx.h) */
        if (j->res.assigned_scscf[0])
            post_learn(j->h, j->res.assigned_scscf, req->origin_host, req->origin_realm);
        bool exp;
        uint32_t code = dia_ans_code(&j->res.ans, &exp);
        LOG_I("hss", "event=answer cmd=%u peer=%.*s sess=%.*s result=%u%s", req->cmd,
              IMS_SF(req->origin_host), IMS_SF(req->session_id), code, exp ? " exp=1" : "");
        ims_dia_answer(req, &j->res.ans);
    }
    job_free(j);
}

/* ks_creds: a Diameter request's job, run again after the fetch. */
static void resume_dia(struct job *j)
{
    int rc = ims_store_exec_submit(j->h->exec, NULL, &j->sj, work, done, NULL, j);
    if (rc) {
        answer_error(j->req, DIA_TOO_BUSY);
        job_free(j);
    }
}

/* On freeDiameter's thread in HSS mode (ims_dia_requests_inline), on the
 * loop in SLF mode: touches nothing but the config and the executor.  The
 * store work runs right here when it can (run_inline), else on a store
 * thread, which then answers. */
static void on_request(struct ims_dia_req *req, void *arg)
{
    struct ims_hss *h = arg;
    if (h->cfg->mode == IMS_HSS_MODE_SLF) {
        struct hss_result res;
        ims_str impi = IMS_STR_NULL, impu = IMS_STR_NULL;
        switch (req->cmd) {
        case DIA_CMD_UAR: impi = req->u.uar.impi; impu = req->u.uar.impu; break;
        case DIA_CMD_MAR: impi = req->u.mar.impi; impu = req->u.mar.impu; break;
        case DIA_CMD_SAR:
            impi = req->u.sar.impi;
            impu = req->u.sar.n_impu ? req->u.sar.impu[0] : IMS_STR_NULL;
            break;
        case DIA_CMD_LIR: impu = req->u.lir.impu; break;
        case DIA_CMD_UDR: impu = req->u.udr.uid.impu; break;
        case DIA_CMD_PUR: impu = req->u.pur.uid.impu; break;
        default: break;
        }
        ims_hss_result_init(&res);
        ims_hss_slf(h->cfg->slf, h->cfg->nslf, impi, impu, &res);
        LOG_I("hss", "event=slf cmd=%u impi=%.*s impu=%.*s redirect=%.*s", req->cmd,
              IMS_SF(impi), IMS_SF(impu), IMS_SF(res.ans.n_redirect ? res.ans.redirect[0]
                                                                     : IMS_STR_NULL));
        ims_dia_answer(req, &res.ans);
        ims_hss_result_clear(&res);
        return;
    }
    struct job *j = ims_alloc(sizeof(*j));
    if (!j) {
        answer_error(req, DIA_TOO_BUSY);
        return;
    }
    job_zero(j, sizeof(*j));
    j->h = h;
    j->req = req;
    j->resume = resume_dia;
    unsigned flags;
    int wrc;
    if (h->cfg->dia_inline && run_inline(h, req, &flags) &&
        ims_store_exec_run(h->exec, flags, work, j, &wrc) == 0) {
        done(NULL, wrc, j); /* answered right here, on freeDiameter's thread */
        return;
    }
    int rc = ims_store_exec_submit(h->exec, NULL, &j->sj, work, done, NULL, j);
    if (rc) {
        LOG_W("hss", "event=store_busy cmd=%u err=%s", req->cmd, ims_strerror(rc));
        answer_error(req, DIA_TOO_BUSY);
        job_free(j);
    }
}

/* ------------------------------------------------------------ in-process */

/* A Cx request from a CSCF role of this process (hss.h): the same store
 * work as a Diameter request, run on the caller's thread when it can
 * (run_inline) and completed on the caller's loop. */
struct local_job {
    struct job j;             /* j.req points at req; first member (resume_local) */
    struct ims_dia_req req;
    struct ims_loop *loop;    /* the caller's */
    ims_hss_local_fn cb;
    void (*drop)(void *arg);
    void *arg;
    unsigned flags;            /* run_inline's, for a job of a turn's batch */
    struct ims_deferred defer; /* the completion of a job run inline */
};

/* The in-process Cx requests a worker makes within [hss] batch_window_ms
 * (0: within one loop turn), run together in one store transaction
 * (ims_store_exec_run_many): their UARs, MARs and SARs then share one
 * BEGIN, one read of the cache's change counter, one COMMIT and one round
 * of SQLite's file locks instead of one each.  A loop turn alone rarely
 * held more than one (bench/ims: 4 COMMITs per registration); a window of
 * a millisecond holds several under load, for a millisecond more per Cx
 * request.  The batch runs from its timer, or at the end of the turn that
 * filled it (or with no window, or no timer to be had).  tl_batch: the
 * batch this thread is filling, if any; the batch's timer or deferred call
 * owns it (run or dropped with the loop, it is freed there). */
#define LOCAL_BATCH_MAX 32

struct local_batch {
    struct ims_hss *h;
    struct ims_loop *loop;
    size_t n;
    struct local_job *jobs[LOCAL_BATCH_MAX];
    struct ims_deferred defer;
    struct ims_timer timer;
};

static __thread struct local_batch *tl_batch;

static void local_free(struct local_job *lj)
{
    ims_hss_result_clear(&lj->j.res);
    hss_ks_secret_clear(&lj->j.ks);
    ims_free(lj);
}

static void local_done(struct ims_loop *loop, int rc, void *arg)
{
    struct local_job *lj = arg;
    if (rc == 0 && lj->j.ks.state == HSS_KS_NEED) {
        ks_fetch(&lj->j);
        return;
    }
    if (rc == 0)
        ims_hss_result_finish(&lj->j.res); /* off the store connection (cx.h) */
    lj->cb(loop, rc, rc == 0 ? &lj->j.res.ans : NULL, lj->arg);
    local_free(lj);
}

/* The job ran inline, in ims_hss_local(): complete it after that returned
 * (the callback rule), on the same thread. */
static void local_deferred(struct ims_loop *loop, void *arg)
{
    struct local_job *lj = arg;
    local_done(loop, lj->j.rc, lj);
}

static void local_cancel(void *arg)
{
    struct local_job *lj = arg;
    if (lj->drop)
        lj->drop(lj->arg);
    local_free(lj);
}

static void local_busy(struct ims_loop *loop, void *arg)
{
    struct local_job *lj = arg;
    lj->cb(loop, IMS_ELIMIT, NULL, lj->arg);
    local_free(lj);
}

/* ks_creds: an in-process request's job, run again after the fetch (on
 * the HSS loop); its completion still goes to the caller's loop. */
static void resume_local(struct job *j)
{
    struct local_job *lj = (struct local_job *)j;
    int rc = ims_store_exec_submit(j->h->exec, lj->loop, &j->sj, work, local_done, local_cancel,
                                   lj);
    if (rc && ims_loop_post(lj->loop, local_busy, lj, local_cancel) != 0)
        local_cancel(lj);
}

/* A job the inline connection did not run: handed to the thread using it
 * (may_hand: it was busy), else queued for a store thread; completed on
 * lj->loop either way.  0, or the submit's error (then nothing runs). */
static int local_elsewhere(struct ims_hss *h, struct local_job *lj, bool may_hand)
{
    if (may_hand && ims_store_exec_hand(h->exec, lj->flags, lj->loop, &lj->j.sj, work,
                                        local_done, local_cancel, lj) == 0)
        return 0;
    return ims_store_exec_submit(h->exec, lj->loop, &lj->j.sj, work, local_done, local_cancel,
                                 lj);
}

/* Cancelled with the loop (which may be freed on another thread: only
 * this thread's tl_batch is ours to clear). */
static void batch_cancel(void *arg)
{
    struct local_batch *b = arg;
    if (tl_batch == b)
        tl_batch = NULL;
    for (size_t i = 0; i < b->n; i++)
        local_cancel(b->jobs[i]);
    ims_free(b);
}

static void batch_run(struct ims_loop *loop, void *arg)
{
    struct local_batch *b = arg;
    struct ims_store_run runs[LOCAL_BATCH_MAX];
    if (tl_batch == b) /* requests the completions below make start a new batch */
        tl_batch = NULL;
    for (size_t i = 0; i < b->n; i++)
        runs[i] = (struct ims_store_run){ .flags = b->jobs[i]->flags,
                                          .work = work,
                                          .arg = &b->jobs[i]->j };
    int irc = ims_store_exec_run_many(b->h->exec, runs, b->n);
    for (size_t i = 0; i < b->n; i++) {
        struct local_job *lj = b->jobs[i];
        if (irc == 0) { /* after ims_hss_local returned: the callback rule holds */
            local_done(loop, runs[i].rc, lj);
            continue;
        }
        int rc = local_elsewhere(b->h, lj, irc == IMS_EAGAIN);
        if (rc) { /* as ims_hss_local's own error would have been */
            lj->cb(loop, rc, NULL, lj->arg);
            local_free(lj);
        }
    }
    ims_free(b);
}

static void batch_timer(struct ims_loop *loop, struct ims_timer *t)
{
    batch_run(loop, t->data);
}

static void batch_timer_drop(struct ims_timer *t)
{
    batch_cancel(t->data);
}

/* Adds lj to this thread's batch for (h, loop), opening one if none is
 * open.  false: not batched (the open batch is another HSS's or loop's,
 * or no memory): the caller runs lj alone. */
static bool batch_add(struct ims_hss *h, struct ims_loop *loop, struct local_job *lj)
{
    struct local_batch *b = tl_batch;
    if (b) {
        if (b->h != h || b->loop != loop)
            return false;
    } else {
        b = ims_alloc(sizeof(*b));
        if (!b)
            return false;
        b->h = h;
        b->loop = loop;
        b->n = 0;
        tl_batch = b;
        ims_timer_init(&b->timer, batch_timer, b);
        ims_timer_on_drop(&b->timer, batch_timer_drop);
        if (h->cfg->batch_window_ms == 0 ||
            ims_timer_start(loop, &b->timer, h->cfg->batch_window_ms) != 0)
            ims_loop_defer(loop, &b->defer, batch_run, b, batch_cancel);
    }
    b->jobs[b->n++] = lj;
    if (b->n == LOCAL_BATCH_MAX) {
        /* full: it runs at the end of this turn, the next request opens
         * another */
        tl_batch = NULL;
        if (ims_timer_armed(&b->timer)) {
            ims_timer_stop(loop, &b->timer);
            ims_loop_defer(loop, &b->defer, batch_run, b, batch_cancel);
        }
    }
    return true;
}

int ims_hss_local(struct ims_hss *h, unsigned cmd, const void *req, struct ims_loop *loop,
                  ims_hss_local_fn cb, void (*drop)(void *arg), void *arg)
{
    size_t sz;
    switch (cmd) {
    case DIA_CMD_UAR: sz = sizeof(struct cx_uar); break;
    case DIA_CMD_MAR: sz = sizeof(struct cx_mar); break;
    case DIA_CMD_SAR: sz = sizeof(struct cx_sar); break;
    case DIA_CMD_LIR: sz = sizeof(struct cx_lir); break;
    default: return IMS_EINVAL;
    }
    if (!h || !req || !loop || !cb || h->stopping || !h->exec)
        return IMS_EINVAL;
    struct local_job *lj = ims_alloc(sizeof(*lj));
    if (!lj)
        return IMS_ENOMEM;
    job_zero(&lj->j, sizeof(*lj));
    lj->j.h = h;
    lj->j.req = &lj->req;
    lj->j.resume = resume_local;
    lj->loop = loop;
    lj->req.cmd = cmd;
    memcpy(&lj->req.u, req, sz);
    lj->cb = cb;
    lj->drop = drop;
    lj->arg = arg;
    unsigned flags;
    bool may_hand = false;
    if (run_inline(h, &lj->req, &flags)) {
        lj->flags = flags;
        if (batch_add(h, loop, lj))
            return 0;
        int irc = ims_store_exec_run(h->exec, flags, work, &lj->j, &lj->j.rc);
        if (irc == 0) {
            ims_loop_defer(loop, &lj->defer, local_deferred, lj, local_cancel);
            return 0;
        }
        may_hand = irc == IMS_EAGAIN;
    }
    int rc = local_elsewhere(h, lj, may_hand);
    if (rc) {
        ims_hss_result_clear(&lj->j.res);
        ims_free(lj);
    }
    return rc;
}

/* ------------------------------------------------------------ admin */

static void copy_impus(struct hss_admin_op *op, const struct ims_impu_rec *arr, size_t n)
{
    op->n_impus = 0;
    for (size_t i = 0; i < n && i < CX_MAX_IMPU; i++)
        snprintf(op->impus[op->n_impus++], IMS_STORE_ID_MAX, "%s", arr[i].identity);
}

int ims_hss_admin_prepare(struct ims_store *st, struct hss_admin_op *op)
{
    struct ims_impu_rec rec;
    char impis[1][IMS_STORE_ID_MAX];
    size_t n = 0;
    ims_str impu = ims_str_cstr(op->impu);
    int rc = ims_store_impu_get(st, impu, &rec);
    if (rc)
        return rc == IMS_EINVAL ? IMS_ENOENT : rc;
    if (!rec.scscf_name[0])
        return IMS_ENOENT;
    snprintf(op->scscf, sizeof(op->scscf), "%s", rec.scscf_name);
    rc = ims_store_impis_of_impu(st, impu, impis, 1, &n);
    if (rc && rc != IMS_ELIMIT)
        return rc;
    snprintf(op->impi, sizeof(op->impi), "%s", n ? impis[0] : "");
    struct ims_impu_rec *arr = ims_calloc(CX_MAX_IMPU, sizeof(*arr));
    if (!arr)
        return IMS_ENOMEM;
    rc = ims_store_impus_of_irs(st, impu, arr, CX_MAX_IMPU, &n);
    if (rc == IMS_ELIMIT) {
        n = CX_MAX_IMPU;
        rc = 0;
    }
    if (rc == 0)
        copy_impus(op, arr, n);
    ims_free(arr);
    if (rc)
        return rc;
    if (op->kind == HSS_ADMIN_PUSH)
        return ims_hss_user_data(st, ims_str_cstr(op->impi), impu, &op->xml);
    /* TS 29.228 §6.1.3: the HSS de-registers the identities it names in
     * the RTR; the S-CSCF name goes when nothing else stays registered */
    rc = ims_store_reg_set(st, impu, IMS_REG_NOT_REGISTERED, IMS_SCSCF_KEEP, IMS_STR_NULL, NULL);
    if (rc)
        return rc;
    struct ims_sub_rec sub;
    rc = ims_store_sub_of_impu(st, impu, &sub);
    if (rc)
        return rc;
    struct ims_impu_rec *all = ims_calloc(256, sizeof(*all));
    size_t m = 0;
    bool inuse = false;
    if (!all)
        return IMS_ENOMEM;
    rc = ims_store_impus_of_impi(st, ims_str_cstr(op->impi), all, 256, &m);
    if (rc == IMS_ELIMIT) {
        m = 256;
        rc = 0;
    }
    for (size_t i = 0; rc == 0 && i < m; i++)
        inuse |= all[i].reg_state != IMS_REG_NOT_REGISTERED;
    ims_free(all);
    if (rc == 0 && !inuse)
        rc = ims_store_reg_set(st, impu, IMS_REG_NOT_REGISTERED, IMS_SCSCF_CLEAR, IMS_STR_NULL,
                               NULL);
    return rc;
}

struct admin {
    struct ims_store_job sj;
    struct ims_hss *h;
    struct hss_admin_op op;
    struct ims_scscf_peer stored; /* the store's peer of op.scscf (host "" = none) */
    ims_hss_admin_fn cb;
    void *arg;
};

static void admin_free(struct admin *a)
{
    ims_buf_free(&a->op.xml);
    ims_free(a);
}

static void admin_answer(struct ims_loop *loop, int rc, const struct dia_ans *ans, void *arg)
{
    struct admin *a = arg;
    uint32_t code = rc == 0 && ans ? dia_ans_code(ans, NULL) : 0;
    LOG_N("hss", "event=admin_done kind=%d impu=%s scscf=%s rc=%s result=%u", a->op.kind,
          a->op.impu, a->op.scscf, ims_strerror(rc), code);
    a->cb(rc, code, a->arg);
    admin_free(a);
}

static int admin_work(struct ims_store *st, void *arg)
{
    struct admin *a = arg;
    sync_keys(a->h, st);
    int rc = ims_hss_admin_prepare(st, &a->op);
    /* the peer as last persisted: the map may not know it after a restart */
    if (rc == 0 && ims_store_scscf_peer_get(st, ims_str_cstr(a->op.scscf), &a->stored) != 0)
        a->stored.host[0] = '\0';
    return rc;
}

static bool local_scscf(struct ims_hss *h, const char *name)
{
    pthread_mutex_lock(&h->local_lock);
    bool yes = h->local_fn && strcmp(h->local_name, name) == 0;
    pthread_mutex_unlock(&h->local_lock);
    return yes;
}

/* RTR/PPR to the S-CSCF of this process: its handler answers at once (the
 * lock keeps it registered while it runs).  0 (cb ran, a freed), or
 * IMS_EAGAIN (it went meanwhile). */
static int admin_local(struct admin *a, unsigned cmd, const void *req)
{
    struct ims_hss *h = a->h;
    pthread_mutex_lock(&h->local_lock);
    bool on = h->local_fn && strcmp(h->local_name, a->op.scscf) == 0;
    uint32_t code = on ? h->local_fn(h->local_ctx, cmd, req) : 0;
    pthread_mutex_unlock(&h->local_lock);
    if (!on)
        return IMS_EAGAIN;
    LOG_N("hss", "event=admin_done kind=%d impu=%s scscf=%s rc=OK result=%u local=1", a->op.kind,
          a->op.impu, a->op.scscf, code);
    a->cb(0, code, a->arg);
    admin_free(a);
    return 0;
}

void ims_hss_set_local_scscf(struct ims_hss *h, const char *server_name, ims_hss_scscf_fn fn,
                             void *ctx)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->local_lock);
    snprintf(h->local_name, sizeof(h->local_name), "%s", fn && server_name ? server_name : "");
    h->local_fn = fn;
    h->local_ctx = ctx;
    pthread_mutex_unlock(&h->local_lock);
}

static void admin_done(struct ims_loop *loop, int rc, void *arg)
{
    struct admin *a = arg;
    bool local = rc == 0 && local_scscf(a->h, a->op.scscf);
    const struct scscf_peer *p = rc == 0 && !local ? peer_of(a->h, a->op.scscf) : NULL;
    if (rc == 0 && !local && !p && a->stored.host[0]) {
        learn_peer(a->h, a->op.scscf, ims_str_cstr(a->stored.host),
                   ims_str_cstr(a->stored.realm), false);
        p = peer_of(a->h, a->op.scscf);
    }
    if (rc == 0 && !local && !p)
        rc = IMS_EAGAIN;
    if (rc == 0) {
        ims_str impus[CX_MAX_IMPU];
        for (size_t i = 0; i < a->op.n_impus; i++)
            impus[i] = ims_str_cstr(a->op.impus[i]);
        if (a->op.kind == HSS_ADMIN_DEREGISTER) {
            struct cx_rtr r;
            memset(&r, 0, sizeof(r));
            r.dest_host = p ? ims_str_cstr(p->host) : IMS_STR_NULL;
            r.dest_realm = p ? ims_str_cstr(p->realm) : IMS_STR_NULL;
            r.impi = ims_str_cstr(a->op.impi);
            memcpy(r.impu, impus, sizeof(impus[0]) * a->op.n_impus);
            r.n_impu = a->op.n_impus;
            r.reason.code = a->op.reason;
            r.reason.info = ims_str_cstr(a->op.info);
            r.reason.present = a->op.info[0] ? 3 : 1;
            r.present = 1u << DIA_REQ_DEST_HOST | 1u << DIA_REQ_DEST_REALM | 1u << CX_RTR_IMPI |
                        (r.n_impu ? 1u << CX_RTR_IMPU : 0) | 1u << CX_RTR_REASON;
            rc = local ? admin_local(a, DIA_CMD_RTR, &r)
                       : ims_dia_send(DIA_CMD_RTR, &r, admin_answer, a);
        } else {
            struct cx_ppr r;
            memset(&r, 0, sizeof(r));
            r.dest_host = p ? ims_str_cstr(p->host) : IMS_STR_NULL;
            r.dest_realm = p ? ims_str_cstr(p->realm) : IMS_STR_NULL;
            r.impi = ims_str_cstr(a->op.impi);
            r.user_data = ims_buf_str(&a->op.xml);
            r.present = 1u << DIA_REQ_DEST_HOST | 1u << DIA_REQ_DEST_REALM | 1u << CX_PPR_IMPI |
                        1u << CX_PPR_DATA;
            rc = local ? admin_local(a, DIA_CMD_PPR, &r)
                       : ims_dia_send(DIA_CMD_PPR, &r, admin_answer, a);
        }
        if (rc == 0)
            return;
    }
    LOG_N("hss", "event=admin_failed kind=%d impu=%s rc=%s", a->op.kind, a->op.impu,
          ims_strerror(rc));
    a->cb(rc, 0, a->arg);
    admin_free(a);
}

static void admin_cancel(void *arg)
{
    struct admin *a = arg;
    a->cb(IMS_EBACKEND, 0, a->arg);
    admin_free(a);
}

static void admin_start(struct ims_loop *loop, void *arg)
{
    struct admin *a = arg;
    int rc = ims_store_exec_submit(a->h->exec, loop, &a->sj, admin_work, admin_done,
                                   admin_cancel, a);
    if (rc) {
        a->cb(rc, 0, a->arg);
        admin_free(a);
    }
}

static void admin_drop(void *arg)
{
    struct admin *a = arg;
    a->cb(IMS_EBACKEND, 0, a->arg);
    admin_free(a);
}

static int admin_submit(struct ims_hss *h, int kind, const char *impu, int reason,
                        const char *info, ims_hss_admin_fn cb, void *arg)
{
    if (!h || !cb || h->stopping || !h->exec || strlen(impu) >= IMS_STORE_ID_MAX)
        return IMS_EINVAL;
    struct admin *a = ims_calloc(1, sizeof(*a));
    if (!a)
        return IMS_ENOMEM;
    a->h = h;
    a->cb = cb;
    a->arg = arg;
    a->op.kind = kind;
    a->op.reason = reason;
    snprintf(a->op.impu, sizeof(a->op.impu), "%s", impu);
    snprintf(a->op.info, sizeof(a->op.info), "%s", info ? info : "");
    ims_buf_init(&a->op.xml, IMS_STORE_XML_MAX + 65536);
    int rc = ims_loop_post(h->loop, admin_start, a, admin_drop);
    if (rc)
        admin_free(a);
    return rc;
}

int ims_hss_admin_deregister(struct ims_hss *h, const char *impu, int reason, const char *info,
                             ims_hss_admin_fn cb, void *arg)
{
    return admin_submit(h, HSS_ADMIN_DEREGISTER, impu, reason, info, cb, arg);
}

int ims_hss_admin_push_profile(struct ims_hss *h, const char *impu, ims_hss_admin_fn cb,
                               void *arg)
{
    return admin_submit(h, HSS_ADMIN_PUSH, impu, 0, NULL, cb, arg);
}

/* ------------------------------------------------------------ keys.reload */

/* The repository is read on a store thread (file I/O stays off the loop)
 * and published on the loop. */
struct reload {
    struct ims_store_job sj;
    struct ims_hss *h;
    struct ims_keyrepo *repo;
    ims_hss_admin_fn cb;
    void *arg;
};

static int reload_work(struct ims_store *st, void *arg)
{
    struct reload *r = arg;
    char kerr[IMS_KEYREPO_ERRLEN];
    int rc = ims_keyrepo_open(r->h->cfg->keys_dir, &r->repo, kerr, sizeof(kerr));
    if (rc)
        LOG_E("hss", "event=keys_reload_failed dir=%s why=\"%s\"", r->h->cfg->keys_dir, kerr);
    return rc;
}

static void reload_done(struct ims_loop *loop, int rc, void *arg)
{
    struct reload *r = arg;
    struct ims_hss *h = r->h;
    unsigned primary = 0;
    if (rc == 0 && h->nretired == MAX_RETIRED_REPOS) {
        LOG_E("hss", "event=keys_reload_failed why=\"%d reloads in this run: restart\"",
              MAX_RETIRED_REPOS);
        ims_keyrepo_free(r->repo);
        rc = IMS_ELIMIT;
    }
    if (rc == 0) {
        h->retired[h->nretired++] = h->repo;
        __atomic_store_n(&h->repo, r->repo, __ATOMIC_RELEASE);
        primary = ims_keyrepo_primary(r->repo);
        LOG_N("hss", "event=keys_reloaded primary=%u", primary);
    }
    r->cb(rc, primary, r->arg);
    ims_free(r);
}

static void reload_cancel(void *arg)
{
    struct reload *r = arg;
    ims_keyrepo_free(r->repo);
    r->cb(IMS_EBACKEND, 0, r->arg);
    ims_free(r);
}

static void reload_start(struct ims_loop *loop, void *arg)
{
    struct reload *r = arg;
    int rc = r->h->exec && !r->h->stopping
                 ? ims_store_exec_submit(r->h->exec, loop, &r->sj, reload_work, reload_done,
                                         reload_cancel, r)
                 : IMS_EINVAL;
    if (rc) {
        r->cb(rc, 0, r->arg);
        ims_free(r);
    }
}

static void reload_drop(void *arg)
{
    struct reload *r = arg;
    r->cb(IMS_EBACKEND, 0, r->arg);
    ims_free(r);
}

int ims_hss_keys_reload(struct ims_hss *h, ims_hss_admin_fn cb, void *arg)
{
    if (!h || !cb || h->stopping || !h->exec)
        return IMS_EINVAL;
    struct reload *r = ims_calloc(1, sizeof(*r));
    if (!r)
        return IMS_ENOMEM;
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    int rc = ims_loop_post(h->loop, reload_start, r, reload_drop);
    if (rc)
        ims_free(r);
    return rc;
}

/* ------------------------------------------------------------ start/stop */

static void *loop_main(void *arg)
{
    struct ims_hss *h = arg;
    int rc = ims_loop_run(h->loop);
    if (rc)
        LOG_E("hss", "event=loop_failed err=%s", ims_strerror(rc));
    return NULL;
}

/* /metrics: the identity cache's hits, misses and evictions tell whether
 * [hss] cache_entries holds the subscribers (docs/security.md) */
static void cache_metrics(void *ctx, struct ims_metrics_cache *out)
{
    struct ims_hss *h = ctx;
    struct ims_store_cache_stats s;
    ims_store_exec_cache_stats(h->exec, &s);
    *out = (struct ims_metrics_cache){ .hits = s.hits,
                                       .misses = s.misses,
                                       .evictions = s.evictions,
                                       .entries = s.entries,
                                       .capacity = s.capacity };
}

/* [hss] cache_preload: before Diameter and the CSCFs send anything.  A
 * failure only costs the speed of the first requests: logged, not fatal. */
static void preload_cache(struct ims_hss *h)
{
    struct timespec t0, t1;
    size_t n = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = ims_store_exec_preload(h->exec, h->cfg->cache_entries, &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc)
        LOG_W("hss", "event=cache_preload_failed entries=%zu err=%s", n, ims_strerror(rc));
    else
        LOG_I("hss", "event=cache_preloaded entries=%zu ms=%lld", n, ms);
}

/* [hss] store_threads 0: one for SQLite (one writer at a time, and a
 * second connection's commits would empty the first one's page cache),
 * two for PostgreSQL (row locks; a batch waits on the server, not here). */
static size_t store_threads(const struct ims_hss_cfg *cfg)
{
    if (cfg->store_threads)
        return cfg->store_threads;
    return cfg->store_url && strncmp(cfg->store_url, "sqlite:", 7) == 0 ? 1 : 2;
}

int ims_hss_start(const struct ims_hss_cfg *cfg, struct ims_hss **out, char *err, size_t errsz)
{
    char kerr[IMS_KEYREPO_ERRLEN];
    struct ims_hss *h = ims_calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errsz, "hss: out of memory");
        return IMS_ENOMEM;
    }
    h->cfg = cfg;
    pthread_mutex_init(&h->local_lock, NULL);
    ims_xml_init(); /* before the store threads build and parse XML (base/xml.h) */
    int rc = 0;
    if (cfg->mode == IMS_HSS_MODE_HSS) {
        rc = ims_keyrepo_open(cfg->keys_dir, &h->repo, kerr, sizeof(kerr));
        if (rc == IMS_ENOENT) {
            /* first start: a fresh repository (back it up with the database) */
            LOG_N("hss", "event=keyrepo_created dir=%s", cfg->keys_dir);
            rc = ims_keyrepo_create(cfg->keys_dir, kerr, sizeof(kerr));
            /* another process sharing the state dir may have won the race */
            if (rc == 0 || rc == IMS_EINVAL)
                rc = ims_keyrepo_open(cfg->keys_dir, &h->repo, kerr, sizeof(kerr));
        }
        if (rc) {
            snprintf(err, errsz, "hss: key repository %s: %s", cfg->keys_dir, kerr);
            goto fail;
        }
        rc = ims_store_exec_new(cfg->store_url, h->repo, store_threads(cfg), cfg->store_queue,
                                cfg->cache_entries, &h->exec);
        if (rc) {
            snprintf(err, errsz, "hss: cannot open the store (%s): see the log",
                     ims_strerror(rc));
            goto fail;
        }
        if (cfg->flush_ms)
            ims_store_exec_set_flush_ms(h->exec, cfg->flush_ms);
        if (cfg->cache_preload)
            preload_cache(h);
        if (cfg->cache_entries)
            ims_metrics_cache_fn(cache_metrics, h);
    }
    rc = ims_loop_new(LOOP_TIMERS, &h->loop);
    if (rc) {
        snprintf(err, errsz, "hss: cannot create the event loop");
        goto fail;
    }
    ims_loop_set_data(h->loop, h);
    if (cfg->ks_ctx && cfg->mode == IMS_HSS_MODE_HSS) {
        rc = hss_ks_new(cfg->ks_ctx, h->loop, cfg->ks_ttl_s, cfg->ks_domain_id, &h->ks);
        if (rc) {
            snprintf(err, errsz, "hss: out of memory");
            goto fail;
        }
    }
    if (ims_thread_start(&h->thread, "ims-hss", loop_main, h) != 0) {
        rc = IMS_EIO;
        snprintf(err, errsz, "hss: cannot start the loop thread");
        goto fail;
    }
    h->thread_started = true;
    /* HSS mode: on_request only submits to the store threads (thread-safe),
     * so it runs on freeDiameter's thread, without a hop through our loop */
    ims_dia_requests_inline(cfg->mode == IMS_HSS_MODE_HSS);
    rc = ims_dia_start(&cfg->dia, h->loop, on_request, h, err, errsz);
    ims_dia_requests_inline(false);
    h->dia_started = true; /* even a failed start needs the release */
    if (rc)
        goto fail;
    LOG_N("hss", "event=started mode=%s store_threads=%zu", cfg->mode == IMS_HSS_MODE_SLF ? "slf"
                                                                                    : "hss",
          cfg->mode == IMS_HSS_MODE_SLF ? (size_t)0 : store_threads(cfg));
    *out = h;
    return 0;
fail:
    ims_hss_stop(h);
    return rc;
}

size_t ims_hss_stop(struct ims_hss *h)
{
    size_t leaked = 0;
    if (!h)
        return 0;
    h->stopping = true;
    if (h->dia_started) {
        ims_dia_drain(5000);
        ims_dia_stop();
    }
    /* Keystone fetches end (failed) before the store goes: they resume jobs */
    if (h->thread_started)
        hss_ks_stop(h->ks);
    ims_metrics_cache_fn(NULL, h); /* no scrape reads h->exec after this */
    /* completions of the last jobs go to the loop, which still runs */
    ims_store_exec_free(h->exec);
    h->exec = NULL;
    if (h->thread_started) {
        ims_loop_stop(h->loop);
        pthread_join(h->thread, NULL);
    }
    hss_ks_free(h->ks);
    ims_loop_free(h->loop); /* drops queued posts: requests released */
    if (h->dia_started)
        leaked = ims_dia_release();
    ims_keyrepo_free(h->repo);
    for (size_t i = 0; i < h->nretired; i++)
        ims_keyrepo_free(h->retired[i]);
    pthread_mutex_destroy(&h->local_lock);
    ims_free(h);
    return leaked;
}
