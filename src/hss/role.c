/* role.c - [core]/[hss]/[diameter] -> struct ims_hss_cfg (see role.h). */
#include "hss/role.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "hss/hss.h"
#include "keystone/keystone.h"

struct ims_hss_role {
    struct ims_hss_cfg hc;
    struct ims_hss *hss;
    struct hss_slf_route slf[IMS_CFG_MAX_SLF];
    struct ims_dia_peer peers[IMS_CFG_MAX_DIA_PEERS];
    char store_url[1024];
    char keys_dir[1024];
    char run_dir[1024];
    struct ims_ks_ctx *ks_ctx; /* [hss] keystone_credentials (ks_creds.h) */
};

/* [hss] keystone_credentials = yes needs [keystone]: the client the HSS
 * fetches Digest secrets with. */
static int ks_setup(const struct ims_cfg *cfg, struct ims_hss_role *r, char *err, size_t errsz)
{
    struct ims_ks_opts o;
    char *secret = NULL;
    if (!cfg->hss_ks_credentials || cfg->hss_mode == 1)
        return 0;
    int rc = ims_ks_opts_from_cfg(cfg, &o, &secret, err, errsz);
    if (rc == IMS_ENOENT)
        snprintf(err, errsz, "hss: keystone_credentials needs [keystone] url");
    if (rc == 0) {
        rc = ims_ks_ctx_new(&o, &r->ks_ctx);
        if (rc)
            snprintf(err, errsz, "hss: cannot create the Keystone client: %s", ims_strerror(rc));
    }
    if (secret) {
        memset(secret, 0, strlen(secret)); /* the ctx copied it */
        ims_free(secret);
    }
    if (rc)
        return rc == IMS_ENOENT ? IMS_EINVAL : rc;
    r->hc.ks_ctx = r->ks_ctx;
    r->hc.ks_ttl_s = cfg->hss_ks_credentials_ttl;
    r->hc.ks_domain_id = cfg->hss_ks_user_domain_id;
    return 0;
}

static int mkdir_one(const char *dir, char *err, size_t errsz)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errsz, "hss: cannot create %s: %s", dir, strerror(errno));
    return IMS_EIO;
}

int ims_hss_role_start(const struct ims_cfg *cfg, struct ims_hss_role **out, char *err,
                       size_t errsz)
{
    struct ims_hss_role *r = ims_calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errsz, "hss: out of memory");
        return IMS_ENOMEM;
    }
    const char *state = cfg->state_dir ? cfg->state_dir : "var";
    int rc = mkdir_one(state, err, errsz);
    if (rc)
        goto fail;
    snprintf(r->store_url, sizeof(r->store_url), "%s%s%s",
             cfg->hss_store ? cfg->hss_store : "sqlite:", cfg->hss_store ? "" : state,
             cfg->hss_store ? "" : "/hss.db");
    snprintf(r->keys_dir, sizeof(r->keys_dir), "%s", cfg->hss_keys_dir ? cfg->hss_keys_dir : "");
    if (!cfg->hss_keys_dir)
        snprintf(r->keys_dir, sizeof(r->keys_dir), "%s/keys", state);
    snprintf(r->run_dir, sizeof(r->run_dir), "%s/run", state);

    struct ims_hss_cfg *h = &r->hc;
    h->mode = cfg->hss_mode == 1 ? IMS_HSS_MODE_SLF : IMS_HSS_MODE_HSS;
    h->store_url = r->store_url;
    h->keys_dir = r->keys_dir;
    h->store_threads = cfg->hss_store_threads;
    h->dia_inline = cfg->hss_diameter_inline;
    h->batch_window_ms = cfg->hss_batch_window_ms;
    h->flush_ms = cfg->hss_flush_ms;
    h->store_queue = cfg->hss_store_queue;
    h->cache_entries = cfg->hss_cache_entries;
    h->cache_preload = cfg->hss_cache_preload;
    h->policy.realm = cfg->dia_realm;
    h->policy.visited_networks = cfg->hss_visited_networks;
    h->policy.default_scscf = cfg->hss_default_scscf;
    for (size_t i = 0; i < cfg->nhss_slf; i++) {
        r->slf[i].pattern = cfg->hss_slf[i].pattern;
        r->slf[i].hss = cfg->hss_slf[i].hss;
    }
    h->slf = r->slf;
    h->nslf = cfg->nhss_slf;
    for (size_t i = 0; i < cfg->ndia_peers; i++) {
        r->peers[i].id = cfg->dia_peers[i].id;
        r->peers[i].addr = cfg->dia_peers[i].addr;
        r->peers[i].port = cfg->dia_peers[i].port;
        r->peers[i].tls = cfg->dia_peers[i].tls;
    }
    h->dia = (struct ims_dia_cfg){
        .identity = cfg->dia_identity,
        .realm = cfg->dia_realm,
        .listen = cfg->dia_listen,
        .port = cfg->dia_port,
        .tls_port = cfg->dia_tls_port,
        .tls_cert = cfg->dia_tls_cert,
        .tls_key = cfg->dia_tls_key,
        .tls_ca = cfg->dia_tls_ca,
        .tls_dh = cfg->dia_tls_dh,
        .tls_required = cfg->dia_tls_required,
        .fd_conf = cfg->dia_fd_conf,
        .run_dir = r->run_dir,
        .allow_hosts = cfg->dia_allow_hosts,
        .allow_realms = cfg->dia_allow_realms,
        .peers = r->peers,
        .npeers = cfg->ndia_peers,
        .app_threads = cfg->dia_app_threads ? cfg->dia_app_threads
                       : cfg->hss_diameter_inline ? 4
                                                  : 1, /* cfg.c: [diameter] app_threads */
        .tc_timer = cfg->dia_tc_timer,
        .tw_timer = cfg->dia_tw_timer,
        .max_pending = cfg->dia_max_pending,
        .request_timeout_ms = cfg->dia_request_timeout_ms,
        .apps = IMS_DIA_APP_CX | IMS_DIA_APP_SH,
        .log_level = cfg->log_level,
    };
    rc = ks_setup(cfg, r, err, errsz);
    if (rc == 0)
        rc = ims_hss_start(h, &r->hss, err, errsz);
    if (rc)
        goto fail;
    *out = r;
    return 0;
fail:
    ims_ks_ctx_free(r->ks_ctx);
    ims_free(r);
    return rc;
}

struct ims_hss *ims_hss_role_hss(struct ims_hss_role *r)
{
    return r ? r->hss : NULL;
}

size_t ims_hss_role_stop(struct ims_hss_role *r)
{
    if (!r)
        return 0;
    size_t leaked = ims_hss_stop(r->hss);
    ims_ks_ctx_free(r->ks_ctx);
    ims_free(r);
    return leaked;
}
