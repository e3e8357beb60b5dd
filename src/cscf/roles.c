/* roles.c - the CSCF roles' wiring (cscf.h): configuration, the shared
 * stores, the Cx transport, and per worker the apps on the proxy, the Cx
 * clients and the expiry sweep. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xml.h"
#include "cfg/cfg.h"
#include "cscf/cscf_int.h"
#include "cscf/reg_persist.h" /* durable registrations */

static bool role_on(const struct ims_cfg *cfg, unsigned bit, const struct ims_cfg_ports *ports)
{
    return (cfg->roles & bit) && ports->n > 0;
}

bool ims_cscf_configured(const struct ims_cfg *cfg)
{
    return role_on(cfg, IMS_ROLE_PCSCF, &cfg->pcscf_ports) ||
           role_on(cfg, IMS_ROLE_ICSCF, &cfg->icscf_ports) ||
           role_on(cfg, IMS_ROLE_SCSCF, &cfg->scscf_ports);
}

size_t ims_cscf_timers(const struct ims_cfg *cfg)
{
    if (!ims_cscf_configured(cfg))
        return 0;
    size_t n = 4; /* the sweep, and slack */
    n += 64;      /* reg-event: NOTIFYs that follow their SUBSCRIBE's 200 (regevent.c) */
    if (role_on(cfg, IMS_ROLE_ICSCF, &cfg->icscf_ports))
        n += cfg->icscf_max_pending;
    if (role_on(cfg, IMS_ROLE_SCSCF, &cfg->scscf_ports))
        n += cfg->scscf_max_pending;
    if (cfg->ks_url)
        n += 2; /* the Keystone client's libcurl timer (bearer.c) */
    return n;
}

/* ------------------------------------------------------------ request states */

void cscf_pend_add(struct cscf_worker *w, struct cscf_pend *p, void (*free_fn)(struct cscf_pend *))
{
    p->w = w;
    p->free_fn = free_fn;
    p->prev = NULL;
    p->next = w->pend;
    if (w->pend)
        w->pend->prev = p;
    w->pend = p;
    w->npend++;
}

void cscf_pend_del(struct cscf_pend *p)
{
    struct cscf_worker *w = p->w;
    if (p->prev)
        p->prev->next = p->next;
    else if (w->pend == p)
        w->pend = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    w->npend--;
}

/* ------------------------------------------------------------ URIs */

/* "sip:<address of a listener on port>:<port>" (UDP first); a wildcard
 * listener is named by [sip] server_name, else 127.0.0.1. */
static void default_uri(const struct ims_cfg *cfg, uint16_t port, char *out, size_t cap)
{
    const struct ims_cfg_listen *best = NULL;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct ims_cfg_listen *l = &cfg->listen[i];
        if (ims_addr_port(&l->addr) != port)
            continue;
        if (!best || (l->proto == SIP_PROTO_UDP && best->proto != SIP_PROTO_UDP))
            best = l;
    }
    char host[64] = "127.0.0.1";
    bool v6 = false;
    if (best) {
        ims_addr_host(&best->addr, host, sizeof(host));
        v6 = ims_addr_family(&best->addr) == AF_INET6;
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
            snprintf(host, sizeof(host), "%s", cfg->server_name ? cfg->server_name : "127.0.0.1");
            v6 = false;
        }
    }
    snprintf(out, cap, "sip:%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
}

/* "host:port" (and ";transport=x" when the URI has one) of a SIP URI. */
static int hostport_of(const char *uri, char *out, size_t cap, bool with_transport)
{
    struct sip_uri u;
    if (ims_sip_parse_uri(ims_str_cstr(uri), &u) != 0 || !u.host.len ||
        (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS))
        return IMS_EINVAL;
    int n = snprintf(out, cap, "%.*s:%u%s%.*s", IMS_SF(u.host), u.port ? (unsigned)u.port : 5060u,
                     with_transport && u.transport.len ? ";transport=" : "",
                     with_transport ? (int)u.transport.len : 0,
                     with_transport && u.transport.len ? u.transport.p : "");
    return n > 0 && (size_t)n < cap ? 0 : IMS_ELIMIT;
}

static void listeners_of(const struct ims_cfg *cfg, const struct ims_cfg_ports *ports, char *out,
                         size_t cap)
{
    static const char *const lc[] = { "none", "udp", "tcp", "tls" };
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cfg->nlisten; i++) {
        bool mine = false;
        for (size_t j = 0; j < ports->n && !mine; j++)
            mine = ims_addr_port(&cfg->listen[i].addr) == ports->port[j];
        if (!mine)
            continue;
        char a[IMS_ADDR_STRLEN];
        int n = snprintf(out + k, cap - k, "%s%s:%s", k ? "," : "",
                         lc[cfg->listen[i].proto <= SIP_PROTO_TLS ? cfg->listen[i].proto : 0],
                         ims_addr_str(&cfg->listen[i].addr, a, sizeof(a)));
        if (n <= 0 || (size_t)n >= cap - k)
            break;
        k += (size_t)n;
    }
}

/* Is uri's host one this server answers to (a listener address or [sip]
 * server_name)?  Otherwise the proxy core would not pop the Route that
 * names us (Path, Service-Route), and requests along it would loop. */
static bool host_is_ours(const struct ims_cfg *cfg, const char *uri)
{
    struct sip_uri u;
    if (ims_sip_parse_uri(ims_str_cstr(uri), &u) != 0)
        return false;
    ims_str h = u.host;
    if (h.len >= 2 && h.p[0] == '[')
        h = ims_str_make(h.p + 1, h.len - 2);
    if (cfg->server_name && ims_str_caseeq_lit(h, cfg->server_name))
        return true;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        char a[64];
        ims_addr_host(&cfg->listen[i].addr, a, sizeof(a));
        if (ims_str_caseeq_lit(h, a) || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0)
            return true;
    }
    return false;
}

static int mkdir_one(const char *dir, char *err, size_t errsz)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errsz, "cscf: cannot create %s: %s", dir, strerror(errno));
    return IMS_EIO;
}

/* ------------------------------------------------------------ Cx transport */

struct dia_setup {
    struct ims_dia_cfg dc;
    struct ims_dia_peer peers[IMS_CFG_MAX_DIA_PEERS];
    char run_dir[1024];
};

static int start_cx(struct ims_cscf *g, struct ims_hss *hss, ims_cx_fake_fn fake,
                    void *fake_ctx, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = g->cfg;
    struct ims_cx_transport_cfg tc = {
        .fake = fake,
        .fake_ctx = fake_ctx,
        .hss = hss,
        .dest_realm = cfg->dia_realm,
        /* one HSS: name it; several: let the realm route */
        .dest_host = !hss && cfg->ndia_peers == 1 ? cfg->dia_peers[0].id : NULL,
    };
    struct dia_setup *ds = NULL;
    if (!hss && !fake) {
        ds = ims_calloc(1, sizeof(*ds));
        if (!ds) {
            snprintf(err, errsz, "cscf: out of memory");
            return IMS_ENOMEM;
        }
        const char *state = cfg->state_dir ? cfg->state_dir : "var";
        /* its own run directory: an HSS process may share the state_dir */
        snprintf(ds->run_dir, sizeof(ds->run_dir), "%s/run-cscf", state);
        int rc = mkdir_one(state, err, errsz);
        if (rc == 0)
            rc = mkdir_one(ds->run_dir, err, errsz);
        if (rc) {
            ims_free(ds);
            return rc;
        }
        for (size_t i = 0; i < cfg->ndia_peers; i++) {
            ds->peers[i].id = cfg->dia_peers[i].id;
            ds->peers[i].addr = cfg->dia_peers[i].addr;
            ds->peers[i].port = cfg->dia_peers[i].port;
            ds->peers[i].tls = cfg->dia_peers[i].tls;
        }
        ds->dc = (struct ims_dia_cfg){
            .identity = cfg->dia_identity,
            .realm = cfg->dia_realm,
            .port = 0, /* a client: the HSS is the one listening */
            .tls_port = 0,
            .tls_cert = cfg->dia_tls_cert,
            .tls_key = cfg->dia_tls_key,
            .tls_ca = cfg->dia_tls_ca,
            .tls_dh = cfg->dia_tls_dh,
            .fd_conf = cfg->dia_fd_conf,
            .run_dir = ds->run_dir,
            .allow_hosts = cfg->dia_allow_hosts,
            .allow_realms = cfg->dia_allow_realms,
            .peers = ds->peers,
            .npeers = cfg->ndia_peers,
            .app_threads = cfg->dia_app_threads,
            .tc_timer = cfg->dia_tc_timer,
            .tw_timer = cfg->dia_tw_timer,
            .max_pending = cfg->dia_max_pending,
            .request_timeout_ms = cfg->dia_request_timeout_ms,
            .apps = IMS_DIA_APP_CX,
            .log_level = cfg->log_level,
        };
        tc.dia = &ds->dc;
    }
    int rc = ims_cx_transport_start(&tc, &g->cx, err, errsz);
    ims_free(ds); /* ims_dia_start copied what it keeps */
    return rc;
}

/* ------------------------------------------------------------ lifecycle */

static int cscf_new(const struct ims_cfg *cfg, struct ims_hss *hss, ims_cx_fake_fn fake,
                    void *fake_ctx, unsigned nworkers, struct ims_cscf **out, char *err,
                    size_t errsz)
{
    struct ims_cscf *g = ims_calloc(1, sizeof(*g));
    if (!g || !(g->w = ims_calloc(nworkers ? nworkers : 1, sizeof(*g->w)))) {
        ims_free(g);
        snprintf(err, errsz, "cscf: out of memory");
        return IMS_ENOMEM;
    }
    g->cfg = cfg;
    g->nworkers = nworkers;
    g->p_on = role_on(cfg, IMS_ROLE_PCSCF, &cfg->pcscf_ports);
    g->i_on = role_on(cfg, IMS_ROLE_ICSCF, &cfg->icscf_ports);
    g->s_on = role_on(cfg, IMS_ROLE_SCSCF, &cfg->scscf_ports);
    int rc = 0;
    char lst[512];
    if (g->p_on) {
        if (cfg->pcscf_uri)
            snprintf(g->p_uri, sizeof(g->p_uri), "%s", cfg->pcscf_uri);
        else
            default_uri(cfg, cfg->pcscf_ports.port[0], g->p_uri, sizeof(g->p_uri));
        snprintf(g->vnid, sizeof(g->vnid), "%s",
                 cfg->pcscf_visited_network_id ? cfg->pcscf_visited_network_id
                                               : cfg->dia_realm ? cfg->dia_realm : "");
        rc = hostport_of(g->p_uri, g->p_hostport, sizeof(g->p_hostport), true);
        if (rc) {
            snprintf(err, errsz, "pcscf: uri '%s' is not a SIP URI with a host", g->p_uri);
            goto fail;
        }
        rc = cscf_pcscf_init(g, err, errsz);
        if (rc)
            goto fail;
        if (!host_is_ours(cfg, g->p_uri))
            LOG_W("cscf", "event=config_warning role=pcscf uri=%s why=\"its host is not a listen "
                          "address or [sip] server_name: requests along Path would not reach us\"",
                  g->p_uri);
        listeners_of(cfg, &cfg->pcscf_ports, lst, sizeof(lst));
        LOG_N("cscf", "event=role role=pcscf listen=%s uri=%s icscf=%s", lst, g->p_uri,
              cfg->pcscf_icscf);
    }
    if (g->s_on) {
        if (cfg->scscf_uri)
            snprintf(g->s_uri, sizeof(g->s_uri), "%s", cfg->scscf_uri);
        else
            default_uri(cfg, cfg->scscf_ports.port[0], g->s_uri, sizeof(g->s_uri));
        snprintf(g->s_realm, sizeof(g->s_realm), "%s",
                 cfg->scscf_realm ? cfg->scscf_realm : cfg->dia_realm ? cfg->dia_realm : "");
        char hp[CSCF_URI_MAX];
        rc = hostport_of(g->s_uri, hp, sizeof(hp), true);
        if (rc) {
            snprintf(err, errsz, "scscf: uri '%s' is not a SIP URI with a host", g->s_uri);
            goto fail;
        }
        /* RFC 3608 / TS 24.229 §5.4.1.2.2: our URI, loose routing, and the
         * "orig" mark that tells us a request is originating */
        snprintf(g->s_service_route, sizeof(g->s_service_route), "<sip:%s;lr;orig>", hp);
        ims_xml_init(); /* User-Data is parsed by the workers, at once (base/xml.h) */
        rc = cscf_scscf_init(g, err, errsz);
        if (rc == 0 && !fake) /* durable registrations (reg_persist.c); not with the test seam */
            rc = cscf_scscf_persist(g, err, errsz);
        if (rc == 0)
            rc = cscf_bearer_init(g, err, errsz); /* Keystone and the policy (bearer.c) */
        if (rc)
            goto fail;
        if (!host_is_ours(cfg, g->s_uri))
            LOG_W("cscf", "event=config_warning role=scscf uri=%s why=\"its host is not a listen "
                          "address or [sip] server_name: Service-Route would not reach us\"",
                  g->s_uri);
        listeners_of(cfg, &cfg->scscf_ports, lst, sizeof(lst));
        LOG_N("cscf", "event=role role=scscf listen=%s uri=%s realm=%s", lst, g->s_uri,
              g->s_realm);
    }
    if (g->i_on) {
        listeners_of(cfg, &cfg->icscf_ports, lst, sizeof(lst));
        LOG_N("cscf", "event=role role=icscf listen=%s scscfs=%zu", lst, cfg->nicscf_scscf);
    }
    if (g->i_on || g->s_on) {
        rc = start_cx(g, hss, fake, fake_ctx, err, errsz);
        if (rc)
            goto fail;
        cscf_rtr_attach(g); /* RTR/PPR from the HSS (rtr.c) */
    }
    *out = g;
    return 0;
fail:
    ims_cscf_free(g);
    return rc;
}

int ims_cscf_new(const struct ims_cfg *cfg, struct ims_hss *hss, unsigned nworkers,
                 struct ims_cscf **out, char *err, size_t errsz)
{
    return cscf_new(cfg, hss, NULL, NULL, nworkers, out, err, errsz);
}

int ims_cscf_new_fake_cx(const struct ims_cfg *cfg, unsigned nworkers, ims_cx_fake_fn fake,
                         void *fake_ctx, struct ims_cscf **out, char *err, size_t errsz)
{
    return cscf_new(cfg, NULL, fake, fake_ctx, nworkers, out, err, errsz);
}

static void sweep_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct cscf_worker *w = t->data;
    int64_t now = cscf_now_s();
    if (w->g->p_on)
        cscf_pcscf_sweep(w, now);
    if (w->g->s_on) {
        cscf_scscf_sweep(w, now);
        cscf_bearer_sweep(w, now); /* tokens of Bearer registrations (bearer.c) */
    }
    ims_timer_start(loop, &w->sweep, CSCF_SWEEP_MS);
}

static int set_apps(struct cscf_worker *w, const struct ims_cfg_ports *ports, const char *name,
                    proxy_request_fn fn)
{
    for (size_t i = 0; i < ports->n; i++) {
        struct proxy_app app = { .name = name, .on_request = fn, .ctx = w };
        if (fn == cscf_pcscf_request) {
            app.proxy_require = cscf_pcscf_proxy_require(w->g);
            app.stateless_hop = cscf_pcscf_stateless_hop;
        }
        int rc = ims_proxy_set_app(w->p, ports->port[i], &app);
        if (rc)
            return rc;
    }
    return 0;
}

int ims_cscf_worker_init(struct ims_cscf *c, unsigned idx, struct ims_loop *loop,
                         struct ims_proxy *p, char *err, size_t errsz)
{
    const struct ims_cfg *cfg = c->cfg;
    if (idx >= c->nworkers) {
        snprintf(err, errsz, "cscf: worker %u out of range", idx);
        return IMS_EINVAL;
    }
    struct cscf_worker *w = &c->w[idx];
    w->g = c;
    w->idx = idx;
    w->loop = loop;
    w->p = p;
    int rc = 0;
    if (c->i_on)
        rc = ims_cx_new(c->cx, loop, cfg->icscf_max_pending, cfg->icscf_hss_timeout_ms, &w->icx);
    if (rc == 0 && c->s_on) {
        rc = ims_cx_new(c->cx, loop, cfg->scscf_max_pending, cfg->scscf_hss_timeout_ms, &w->scx);
        if (rc == 0) {
            w->reg_a = ims_calloc(1, sizeof(*w->reg_a));
            w->reg_b = ims_calloc(1, sizeof(*w->reg_b));
            if (!w->reg_a || !w->reg_b)
                rc = IMS_ENOMEM;
        }
        if (rc == 0)
            rc = cscf_bearer_worker_init(w); /* its Keystone client (bearer.c) */
    }
    if (rc == 0 && c->p_on)
        rc = set_apps(w, &cfg->pcscf_ports, "pcscf", cscf_pcscf_request);
    if (rc == 0 && c->i_on)
        rc = set_apps(w, &cfg->icscf_ports, "icscf", cscf_icscf_request);
    if (rc == 0 && c->s_on)
        rc = set_apps(w, &cfg->scscf_ports, "scscf", cscf_scscf_request);
    if (rc == 0) {
        ims_timer_init(&w->sweep, sweep_cb, w);
        rc = ims_timer_start(loop, &w->sweep, CSCF_SWEEP_MS);
    }
    if (rc)
        snprintf(err, errsz, "cscf: worker %u: %s", idx, ims_strerror(rc));
    return rc;
}

void ims_cscf_set_scscf_hook(struct ims_cscf *c, proxy_request_fn fn, void *ctx)
{
    c->s_hook = fn ? fn : ims_cscf_scscf_default;
    c->s_hook_ctx = fn ? ctx : c;
}

struct ims_loc *ims_cscf_loc(struct ims_cscf *c)
{
    return c->loc;
}

struct ims_auth *ims_cscf_auth(struct ims_cscf *c)
{
    return c->auth;
}

void ims_cscf_stop(struct ims_cscf *c)
{
    if (!c)
        return;
    ims_cx_transport_stop(c->cx);
    cscf_bearer_stop(c); /* Keystone clients: on the stopped loops (bearer.c) */
}

size_t ims_cscf_free(struct ims_cscf *c)
{
    if (!c)
        return 0;
    size_t alive = 0;
    for (unsigned i = 0; i < c->nworkers; i++) {
        struct cscf_worker *w = &c->w[i];
        while (w->pend) {
            struct cscf_pend *p = w->pend;
            cscf_pend_del(p);
            p->free_fn(p);
            alive++;
        }
        ims_cx_free(w->icx);
        ims_cx_free(w->scx);
        cscf_dereg_fini(w); /* no SAA comes after ims_cx_free */
        if (w->reg_a)
            ims_reg_clear(w->reg_a);
        if (w->reg_b)
            ims_reg_clear(w->reg_b);
        ims_free(w->reg_a);
        ims_free(w->reg_b);
    }
    ims_cx_transport_free(c->cx);
    if (c->flows)
        cscf_pcscf_fini(c);
    if (c->loc || c->auth)
        cscf_scscf_fini(c);
    cscf_bearer_fini(c);
    if (alive)
        LOG_N("cscf", "event=requests_in_progress_at_stop n=%zu", alive);
    ims_free(c->w);
    ims_free(c);
    return alive;
}
