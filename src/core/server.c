/* server.c - builds the workers from the configuration and runs them. */
#include "core/server.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "cfg/cfg.h"
#include "cscf/cscf.h"
#include "cloudas/cloudas.h"
#include "cscf/registrar.h"
#include "detect/detect.h"
#include "ev/loop.h"
#include "hss/role.h"
#include "metrics/metrics.h"
#include "net/resolve.h"
#include "net/transport.h"
#include "proxy/proxy.h"
#include "sip/msg.h"
#include "ut/ut.h"

struct worker {
    struct ims_server *srv;
    unsigned idx;
    struct ims_loop *loop;
    struct ims_resolver *res;
    struct sip_tp *tp;
    struct ims_proxy *proxy;
    pthread_t thread;
    bool started;
};

struct ims_server {
    const struct ims_cfg *cfg;
    struct sip_listen_cfg listen[IMS_CFG_MAX_LISTEN];
    struct sip_tp_cfg tp_cfg;
    struct proxy_route routes[IMS_CFG_MAX_ROUTES];
    const char *self_names[IMS_CFG_MAX_LISTEN + 1];
    char self_buf[IMS_CFG_MAX_LISTEN][64];
    struct proxy_cfg proxy_cfg;
    struct sip_tp_shared *tp_shared;
    struct proxy_shared *proxy_shared;
    struct worker *workers;
    unsigned nworkers;
    bool running;
    struct ims_hss_role *hss; /* [core] roles has hss (its own threads) */
    struct ims_admin *admin;  /* admin socket, with the hss role (its own thread) */
    struct ims_cscf *cscf;    /* CSCF roles with ports (src/cscf): apps on the proxies */
    struct ims_cloudas *cloudas; /* [as] ports: the cloud AS (src/cloudas), apps on the proxies */
    struct ims_audit *audit;  /* audit hook (src/audit/audit.h): the CADF trail */
    struct ims_detect *detect;        /* [detect] enabled: installed for the proxy hooks */
    struct ims_metrics_srv *metrics;  /* [metrics] listen: GET /metrics */
    struct ims_ut *ut;                /* [ut] listen: the Ut interface (src/ut) */
};

/* Timers per worker: every transaction arms at most a few at once. */
static size_t timers_for(const struct ims_cfg *cfg)
{
    return (size_t)cfg->max_transactions * 4 + (size_t)cfg->max_connections + 1024 +
           ims_cscf_timers(cfg) + /* CSCF hook: Cx deadlines, expiry sweep */
           ims_cloudas_timers(cfg); /* cloud AS hook: one per job */
}

static void map_cfg(struct ims_server *s)
{
    const struct ims_cfg *cfg = s->cfg;
    size_t nself = 0;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        s->listen[i].proto = cfg->listen[i].proto;
        s->listen[i].addr = cfg->listen[i].addr;
        ims_addr_host(&cfg->listen[i].addr, s->self_buf[i], sizeof(s->self_buf[i]));
        s->self_names[nself++] = s->self_buf[i];
    }
    if (cfg->server_name)
        s->self_names[nself++] = cfg->server_name;

    s->tp_cfg = (struct sip_tp_cfg){
        .listen = s->listen,
        .nlisten = cfg->nlisten,
        .max_msg = cfg->max_message,
        .max_conns = cfg->max_connections,
        .max_conns_per_src = cfg->max_connections_per_source,
        .idle_timeout_ms = cfg->idle_timeout * 1000u,
        .tls_cert_file = cfg->tls_cert,
        .tls_key_file = cfg->tls_key,
        .tls_ca_file = cfg->tls_ca,
        .tls_verify_client = cfg->tls_verify_client,
        .tls_verify_server = cfg->tls_verify_server,
        .tls_ciphers = cfg->tls_ciphers,
        .tls_ciphersuites = cfg->tls_ciphersuites,
        .tls_client_cert_file = cfg->tls_client_cert,
        .tls_client_key_file = cfg->tls_client_key,
        .no_local_delivery = !cfg->local_delivery,
        .spread_workers = cfg->udp_spread ? cfg->workers : 0,
    };
    for (size_t i = 0; i < cfg->nroutes; i++) {
        s->routes[i].domain = cfg->routes[i].domain;
        s->routes[i].next_hop = cfg->routes[i].next_hop;
    }
    s->proxy_cfg = (struct proxy_cfg){
        .routes = s->routes,
        .nroutes = cfg->nroutes,
        .record_route = cfg->record_route,
        .max_transactions = cfg->max_transactions,
        .t1_ms = cfg->t1_ms,
        .t2_ms = cfg->t2_ms,
        .t4_ms = cfg->t4_ms,
        .self_names = s->self_names,
        .nself = nself,
        .advertise = cfg->server_name,
        .retry_after = cfg->lim_retry_after,
    };
}

static int worker_init(struct ims_server *s, struct worker *w, char *err, size_t errsz)
{
    int rc = ims_loop_new(timers_for(s->cfg), &w->loop);
    if (rc) {
        snprintf(err, errsz, "worker %u: cannot create event loop: %s", w->idx, ims_strerror(rc));
        return rc;
    }
    ims_loop_set_data(w->loop, w);
    struct ims_resolver_cfg rcfg = { .servers = s->cfg->dns_servers };
    rc = ims_resolver_new(w->loop, &rcfg, &w->res, err, errsz);
    if (rc)
        return rc;
    rc = ims_proxy_new(s->proxy_shared, w->idx, w->loop, w->res, &w->proxy);
    if (rc) {
        snprintf(err, errsz, "worker %u: cannot create SIP proxy: %s", w->idx, ims_strerror(rc));
        return rc;
    }
    rc = ims_sip_tp_new(w->loop, w->idx, s->tp_shared, &s->tp_cfg, ims_proxy_rx, w->proxy, &w->tp,
                        err, errsz);
    if (rc)
        return rc;
    ims_proxy_set_tp(w->proxy, w->tp);
    /* CSCF hook (src/cscf/cscf.h): the role apps on this worker's proxy */
    if (s->cscf && (rc = ims_cscf_worker_init(s->cscf, w->idx, w->loop, w->proxy, err, errsz)))
        return rc;
    /* cloud AS hook (src/cloudas/cloudas.h): its app on the [as] ports */
    if (s->cloudas)
        return ims_cloudas_worker_init(s->cloudas, w->idx, w->loop, w->proxy, err, errsz);
    return 0;
}

/* registrations_active for /metrics: the S-CSCF's location store (an
 * atomic count, safe on the HTTP thread) */
static uint64_t reg_count(void *ctx)
{
    struct ims_loc *loc = ims_cscf_loc(ctx);
    return loc ? ims_loc_count(loc) : 0;
}

/* The detectors (installed for the proxy's hooks) and the /metrics
 * endpoint, before any SIP socket opens. */
static int security_start(struct ims_server *s, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = s->cfg;
    if (cfg->det_enabled && (cfg->roles & IMS_ROLES_SIP)) {
        struct ims_detect_cfg dc = {
            .fingerprints = cfg->det_fingerprints,
            .exempt = cfg->det_exempt,
            .sweep_users = cfg->det_sweep_users,
            .sweep_window_s = cfg->det_sweep_window,
            .malformed_max = cfg->det_malformed_max,
            .malformed_window_s = cfg->det_malformed_window,
            .block_s = cfg->det_block,
            .max_sources = cfg->det_max_sources,
        };
        int rc = ims_detect_new(&dc, &s->detect, err, errsz);
        if (rc)
            return rc;
        ims_detect_install(s->detect);
    }
    if (cfg->metrics_listen)
        return ims_metrics_srv_start(cfg->metrics_listen, &s->metrics, err, errsz);
    return 0;
}

/* policy follow-up: SIGHUP reloads the S-CSCF's and the Ut's policy files */
int ims_server_reload_policy(struct ims_server *s, char *err, size_t errsz)
{
    char e1[256] = "", e2[256] = "";
    int rc = ims_cscf_reload_policy(s->cscf, e1, sizeof(e1));
    int urc = ims_ut_reload_policy(s->ut, e2, sizeof(e2)); /* each file on its own */
    bool bad1 = rc && rc != IMS_ENOENT, bad2 = urc && urc != IMS_ENOENT;
    snprintf(err, errsz, "%s%s%s", bad1 ? e1 : "", bad1 && bad2 ? "; " : "", bad2 ? e2 : "");
    if (bad1)
        return rc;
    if (bad2)
        return urc;
    return rc == 0 || urc == 0 ? 0 : IMS_ENOENT;
}

int ims_server_reload_tls(struct ims_server *s, char *err, size_t errsz)
{
    if (!s->tp_shared) {
        snprintf(err, errsz, "no SIP transport");
        return IMS_ENOENT;
    }
    return ims_sip_tp_shared_reload_tls(s->tp_shared, &s->tp_cfg, err, errsz);
}

int ims_server_new(const struct ims_cfg *cfg, struct ims_server **out, char *err, size_t errsz)
{
    struct ims_server *s = ims_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return IMS_ENOMEM;
    }
    s->cfg = cfg;
    map_cfg(s);
    int rc;
    /* ---- HSS role hook (src/hss/role.h): starts its own threads ---- */
    if (cfg->roles & IMS_ROLE_HSS) {
        rc = ims_hss_role_start(cfg, &s->hss, err, errsz);
        if (rc)
            goto fail;
        /* admin socket hook (src/admin/admin.h): <state_dir>/imscloud.ctl for
         * imscloudctl (RTR/PPR, keys.reload, status).  Only with the hss role:
         * SIP-only processes may share a state_dir (the e2e fixtures do). */
        static const char *const role_names[] = { "pcscf", "icscf", "scscf", "hss", "as" };
        char path[1024], roles[64] = "";
        snprintf(path, sizeof(path), "%s/%s", cfg->state_dir ? cfg->state_dir : "var",
                 IMS_ADMIN_SOCKET_NAME);
        for (unsigned i = 0; i < 5; i++)
            if (cfg->roles & (1u << i))
                snprintf(roles + strlen(roles), sizeof(roles) - strlen(roles), "%s%s",
                         roles[0] ? "," : "", role_names[i]);
        struct ims_admin_cfg acfg = { .path = path, .hss = ims_hss_role_hss(s->hss),
                                      .roles = roles,
                                      .hss_timeout_ms = cfg->dia_request_timeout_ms };
        rc = ims_admin_start(&acfg, &s->admin, err, errsz);
        if (rc)
            goto fail;
    }
    /* audit hook: after the HSS role, which creates the key repository */
    if ((rc = ims_audit_server_start(cfg, &s->audit, err, errsz)) != 0)
        goto fail;
    /* detect/metrics hook (docs/security.md) */
    if ((rc = security_start(s, err, errsz)) != 0)
        goto fail;
    if ((rc = ims_proxy_limits_start(cfg, err, errsz)) != 0) /* rate limits hook (ratelimit.c) */
        goto fail;
    if (!(cfg->roles & IMS_ROLES_SIP)) { /* no SIP role: no SIP workers */
        if (cfg->ut_listen && (rc = ims_ut_start(cfg, NULL, &s->ut, err, errsz)) != 0)
            goto fail; /* Ut hook (docs/ut.md): devices from the HSS */
        *out = s;
        return 0;
    }
    /* ---- end of the HSS role hook ---- */
    rc = ims_sip_tp_shared_new(&s->tp_cfg, &s->tp_shared, err, errsz);
    if (rc)
        goto fail;
    rc = ims_proxy_shared_new(cfg->workers, &s->proxy_cfg, &s->proxy_shared);
    if (rc) {
        snprintf(err, errsz, "cannot create the proxy: %s", ims_strerror(rc));
        goto fail;
    }
    /* ---- CSCF hook (src/cscf/cscf.h): stores and Cx, in-process when the
     * hss role runs here, else over Diameter to [diameter] peer ---- */
    if (ims_cscf_configured(cfg)) {
        rc = ims_cscf_new(cfg, ims_hss_role_hss(s->hss), cfg->workers, &s->cscf, err, errsz);
        if (rc)
            goto fail;
        ims_metrics_gauge_fn(IMS_G_REGISTRATIONS, reg_count, s->cscf); /* metrics hook */
    }
    /* cloud AS hook (src/cloudas/cloudas.h): policy and delegations */
    if (ims_cloudas_configured(cfg) &&
        (rc = ims_cloudas_new(cfg, cfg->workers, &s->cloudas, err, errsz)))
        goto fail;
    /* Ut hook (docs/ut.md): devices from this S-CSCF's location store, if any */
    if (cfg->ut_listen &&
        (rc = ims_ut_start(cfg, s->cscf ? ims_cscf_loc(s->cscf) : NULL, &s->ut, err, errsz)))
        goto fail;
    /* nworkers counts only what exists, so every error path frees what it may */
    s->workers = ims_calloc(cfg->workers, sizeof(*s->workers));
    if (!s->workers) {
        rc = IMS_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    s->nworkers = cfg->workers;
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->workers[i].srv = s;
        s->workers[i].idx = i;
        rc = worker_init(s, &s->workers[i], err, errsz);
        if (rc)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    ims_server_free(s);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int rc = ims_loop_run(w->loop);
    if (rc)
        LOG_E("core", "event=worker_failed worker=%u err=%s", w->idx, ims_strerror(rc));
    return NULL;
}

int ims_server_start(struct ims_server *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        char name[IMS_THREAD_NAME_MAX];
        snprintf(name, sizeof(name), "ims-w%u", i);
        if (ims_thread_start(&w->thread, name, worker_main, w) != 0) {
            LOG_E("core", "event=thread_create_failed worker=%u", i);
            ims_server_stop(s);
            return IMS_EIO;
        }
        w->started = true;
    }
    s->running = true;
    return 0;
}

void ims_server_stop(struct ims_server *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].started)
            ims_loop_stop(s->workers[i].loop);
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started) {
            pthread_join(s->workers[i].thread, NULL);
            s->workers[i].started = false;
        }
    }
    s->running = false;
}

size_t ims_server_free(struct ims_server *s)
{
    size_t leaked = 0;
    if (!s)
        return 0;
    ims_server_stop(s);
    ims_metrics_srv_stop(s->metrics); /* metrics hook: no scrape reads the stores after */
    ims_ut_stop(s->ut); /* Ut hook: workers joined (cdiv.h rule 1), before the stores go */
    s->ut = NULL;
    s->metrics = NULL;
    ims_metrics_gauge_fn(IMS_G_REGISTRATIONS, NULL, NULL);
    /* CSCF hook: the loops are stopped, not freed.  Diameter stops first
     * (no answer is posted after), then the admin socket and the HSS role,
     * whose store threads post their last in-process Cx completions to the
     * stopped loops; freeing the loops drops those posts (cx_client.h
     * rule 3).  Without CSCF roles the order makes no difference. */
    ims_cscf_stop(s->cscf);
    ims_cloudas_stop(s->cloudas); /* cloud AS hook: HTTP and jobs, before the loops go */
    leaked += ims_admin_stop(s->admin); /* admin hook: before the HSS it calls */
    s->admin = NULL;
    leaked += ims_hss_role_stop(s->hss); /* HSS role hook: requests never answered */
    s->hss = NULL;
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        if (w->proxy)
            leaked += ims_proxy_free(w->proxy);
        if (w->tp)
            ims_sip_tp_free(w->tp);
        if (w->res)
            ims_resolver_free(w->res);
        if (w->loop)
            ims_loop_free(w->loop);
    }
    ims_free(s->workers);
    ims_cscf_free(s->cscf); /* requests in progress at the stop are freed, not leaks */
    ims_cloudas_free(s->cloudas); /* cloud AS hook */
    if (s->proxy_shared)
        ims_proxy_shared_free(s->proxy_shared);
    if (s->tp_shared)
        ims_sip_tp_shared_free(s->tp_shared);
    ims_detect_install(NULL); /* detect hook: the workers are gone */
    ims_proxy_limits_stop(); /* rate limits hook: the workers are gone */
    ims_detect_free(s->detect);
    ims_audit_server_stop(s->audit); /* audit hook: last, every emitter has stopped */
    ims_free(s);
    return leaked;
}
