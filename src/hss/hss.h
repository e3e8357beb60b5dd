/* hss.h - the HSS role: the subscriber store on store threads, the Cx/Sh
 * (or SLF) handlers, the Diameter node, and one event loop thread that
 * owns the requests in flight and the S-CSCF -> Diameter peer map.
 *
 * Request path (docs/internals/hss.md):
 *   freeDiameter thread: decode (dia) -> post to the HSS loop
 *   HSS loop: SLF mode answers at once; HSS mode submits a store job
 *   store thread: the pure handler (cx.h) over its own store connection
 *   HSS loop: learn the S-CSCF's Origin-Host (MAR/SAR), answer.
 *
 * One HSS per process (the Diameter node is a singleton).  Lifetime: the
 * configuration is borrowed and must outlive the HSS. */
#ifndef IMS_HSS_HSS_H
#define IMS_HSS_HSS_H

#include <stddef.h>
#include <stdint.h>

#include "dia/dia.h"
#include "hss/cx.h"

struct ims_hss;
struct ims_ks_ctx;

enum ims_hss_mode { IMS_HSS_MODE_HSS = 0, IMS_HSS_MODE_SLF = 1 };

struct ims_hss_cfg {
    enum ims_hss_mode mode;
    const char *store_url; /* "sqlite:PATH", "postgresql://..." */
    const char *keys_dir;  /* key repository (crypto/keyrepo.h) */
    size_t store_threads, store_queue;
    size_t cache_entries; /* the store's identity cache (store/exec.h); 0: none */
    bool cache_preload;   /* fill it at start (ims_store_exec_preload) */
    bool dia_inline; /* [hss] diameter_inline */
    unsigned batch_window_ms; /* [hss] batch_window_ms (in-process Cx, batch_add) */
    unsigned flush_ms;        /* [hss] flush_ms (ims_store_exec_set_flush_ms); 0: default */
    struct hss_policy policy;
    const struct hss_slf_route *slf; /* SLF mode: identity ranges -> HSS */
    size_t nslf;
    struct ims_dia_cfg dia;
    /* Keystone as the source of Digest secrets (ks_creds.h); ks_ctx NULL:
     * off.  Borrowed: outlives the HSS. */
    struct ims_ks_ctx *ks_ctx;
    unsigned ks_ttl_s;
    const char *ks_domain_id;
};

/* Opens the key repository and the store (HSS mode), starts the loop
 * thread and the Diameter node.  0, or an IMS_E* error with err filled;
 * nothing is left running on error. */
int ims_hss_start(const struct ims_hss_cfg *cfg, struct ims_hss **out, char *err, size_t errsz);

/* Drains the requests in flight (up to a few seconds), stops Diameter,
 * the store threads and the loop, and frees everything.  Returns the
 * number of requests leaked (never answered), a test failure.  NULL is a
 * no-op. */
size_t ims_hss_stop(struct ims_hss *h);

/* ---- in-process Cx (CSCF roles in the same process, src/cscf) ----
 *
 * Runs a Cx request through the same handler a request received over
 * Diameter is given (ims_hss_uar/mar/sar/lir, cx.h), without the Diameter
 * encoding: cmd is DIA_CMD_UAR/MAR/SAR/LIR and req the matching struct
 * (dia/msgs.h), whose slices must stay valid until cb or drop runs.  On
 * SQLite the store work runs on the calling thread, later in the same loop
 * turn, in one transaction with the other in-process requests the turn
 * made (ims_store_exec_run_many: no thread hop; an AKA MAR still goes to a
 * store thread, docs/internals/hss.md), elsewhere on a store thread.
 * cb(loop, rc, ans, arg) runs once on `loop`, after this call returned,
 * with rc 0 and the answer (borrowed for the call), or an IMS_E* store
 * error (a Diameter peer would have got DIAMETER_UNABLE_TO_COMPLY).  If the
 * loop is freed before that, drop(arg) runs instead, on the thread freeing
 * the loop.  Call it on `loop`'s thread (the completion of inline work is
 * ims_loop_defer()red there).
 * Unlike a Diameter request, nothing is learned about the S-CSCF's
 * Diameter identity (RTR/PPR to an in-process S-CSCF go to the handler of
 * ims_hss_set_local_scscf instead).
 * 0, IMS_EINVAL (SLF mode, stopping, unknown cmd), IMS_ENOMEM, IMS_ELIMIT
 * (the store queue is full: answer "busy"). */
struct ims_loop;
typedef void (*ims_hss_local_fn)(struct ims_loop *loop, int rc, const struct dia_ans *ans,
                                 void *arg);
int ims_hss_local(struct ims_hss *h, unsigned cmd, const void *req, struct ims_loop *loop,
                  ims_hss_local_fn cb, void (*drop)(void *arg), void *arg);

/* ---- an S-CSCF in this process (src/cscf/cx_client.c) ----
 *
 * In one process the S-CSCF's Diameter identity is our own node, so RTR and
 * PPR for it could never be sent: the S-CSCF registers fn for its
 * Server-Name (the name its SARs store) and those requests are handed to fn
 * on the HSS loop instead.  fn must not block; req (struct cx_rtr for
 * DIA_CMD_RTR, struct cx_ppr for DIA_CMD_PPR) is borrowed for the call; fn
 * returns the Result-Code of the answer (RTA/PPA).  fn NULL removes the
 * hook; once that call returns, fn is not running and is not called again.
 * Thread-safe; h NULL is a no-op. */
typedef uint32_t (*ims_hss_scscf_fn)(void *ctx, unsigned cmd, const void *req);
void ims_hss_set_local_scscf(struct ims_hss *h, const char *server_name, ims_hss_scscf_fn fn,
                             void *ctx);

/* ---- admin (HSS-initiated procedures, TS 29.228 §6.1.3, §6.2.2) ----
 *
 * For an admin path (imscloudctl through the admin socket, src/admin; tests):
 * thread-safe; cb runs once on the HSS loop with rc 0 and the Diameter
 * result of the RTA/PPA (Result-Code or Experimental-Result-Code), or an
 * error: IMS_ENOENT (the identity is unknown or not assigned to an
 * S-CSCF: nothing to send), IMS_EAGAIN (the S-CSCF's Diameter identity
 * is not known yet: it is learned from its MAR/SAR), IMS_ETIMEDOUT,
 * IMS_EBACKEND.  Callback rule: if the call fails, cb never runs. */
typedef void (*ims_hss_admin_fn)(int rc, uint32_t result, void *arg);

/* De-registers impu's implicit set in the store (the S-CSCF name is
 * cleared when nothing else of the subscription stays registered) and
 * sends RTR with Deregistration-Reason {reason (CX_REASON_*), info} to the
 * S-CSCF that held it.  0, IMS_ENOMEM, IMS_EINVAL (stopping). */
int ims_hss_admin_deregister(struct ims_hss *h, const char *impu, int reason, const char *info,
                             ims_hss_admin_fn cb, void *arg);
/* Sends PPR with the current User-Data of impu's implicit set (after a
 * profile change or barring) to its S-CSCF. */
int ims_hss_admin_push_profile(struct ims_hss *h, const char *impu, ims_hss_admin_fn cb,
                               void *arg);

/* Re-reads the key repository (keys_dir) after `imscloudctl keys rotate`,
 * so the store threads decrypt secrets under the new primary key (and
 * encrypt with it) from their next job on.  Thread-safe; cb runs once on
 * the HSS loop with rc 0 and result = the new primary key id, or an error:
 * IMS_ENOENT/IMS_EINVAL (no keys, or unsafe permissions: logged),
 * IMS_ELIMIT (32 reloads in this run: restart to reload again).
 * Callback rule as above.  0, IMS_ENOMEM, IMS_EINVAL (SLF mode, stopping). */
int ims_hss_keys_reload(struct ims_hss *h, ims_hss_admin_fn cb, void *arg);

/* The store-side half of the admin procedures (pure, store thread): what
 * to send, to which S-CSCF.  Exposed for tests. */
struct hss_admin_op {
    int kind;                   /* HSS_ADMIN_DEREGISTER or HSS_ADMIN_PUSH */
    char impu[IMS_STORE_ID_MAX];
    int reason;
    char info[256];
    /* results */
    char scscf[IMS_STORE_ID_MAX];
    char impi[IMS_STORE_ID_MAX];
    char impus[CX_MAX_IMPU][IMS_STORE_ID_MAX];
    size_t n_impus;
    struct ims_buf xml;         /* PPR User-Data (init with ims_buf_init by the caller) */
};
enum { HSS_ADMIN_DEREGISTER = 1, HSS_ADMIN_PUSH = 2 };
/* 0, IMS_ENOENT (unknown, or no S-CSCF assigned), or a store error. */
int ims_hss_admin_prepare(struct ims_store *st, struct hss_admin_op *op);

#endif
