/* ks_cfg.c - [keystone] configuration -> struct ims_ks_opts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "keystone/ks_int.h"

/* Reads the first line of path (a secret) into a new string. */
static int read_secret(const char *path, char **out, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "keystone: cannot read '%s': %s", path, strerror(errno));
        return IMS_EINVAL;
    }
    char line[4096];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    n = strcspn(line, "\r\n");
    int rc = 0;
    if (n == 0) {
        snprintf(err, errsz, "keystone: '%s' is empty", path);
        rc = IMS_EINVAL;
    } else if (!(*out = ims_strndup(line, n))) {
        rc = IMS_ENOMEM;
    }
    ims_wipe(line, sizeof(line));
    return rc;
}

int ims_ks_opts_from_cfg(const struct ims_cfg *cfg, struct ims_ks_opts *o, char **secret_buf,
                         char *err, size_t errsz)
{
    memset(o, 0, sizeof(*o));
    *secret_buf = NULL;
    if (!cfg->ks_url)
        return IMS_ENOENT;
    bool has_pw = cfg->ks_password || cfg->ks_password_file;
    bool has_ac = cfg->ks_app_cred_id != NULL;
    if (has_pw == has_ac || (has_pw && !cfg->ks_user)) {
        snprintf(err, errsz, "keystone: set either user with password (or password_file), or "
                             "application_credential_id with its secret");
        return IMS_EINVAL;
    }
    if (has_ac && !cfg->ks_app_cred_secret && !cfg->ks_app_cred_secret_file) {
        snprintf(err, errsz, "keystone: application_credential_id needs "
                             "application_credential_secret or _secret_file");
        return IMS_EINVAL;
    }
    o->url = cfg->ks_url;
    o->user = cfg->ks_user;
    o->user_domain = cfg->ks_user_domain;
    o->project = cfg->ks_project;
    o->project_domain = cfg->ks_project_domain;
    o->ca_file = cfg->ks_ca_file;
    o->cache_ttl_s = cfg->ks_cache_ttl;
    o->negative_ttl_s = cfg->ks_negative_ttl;
    o->timeout_ms = cfg->ks_timeout_ms;
    o->max_pending = cfg->ks_max_pending;
    o->cache_size = cfg->ks_cache_size;
    if (has_ac) {
        o->app_cred_id = cfg->ks_app_cred_id;
        o->app_cred_secret = cfg->ks_app_cred_secret;
        if (cfg->ks_app_cred_secret_file) {
            int rc = read_secret(cfg->ks_app_cred_secret_file, secret_buf, err, errsz);
            if (rc != 0)
                return rc;
            o->app_cred_secret = *secret_buf;
        }
        o->user = NULL;
        return 0;
    }
    o->password = cfg->ks_password;
    if (cfg->ks_password_file) {
        int rc = read_secret(cfg->ks_password_file, secret_buf, err, errsz);
        if (rc != 0)
            return rc;
        o->password = *secret_buf;
    }
    return 0;
}
