/* audit_srv.c - [audit] configuration and the server's trail (audit.h). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "cfg/cfg.h"
#include "crypto/keyrepo.h"

int ims_audit_cfg_from(const struct ims_cfg *cfg, struct ims_audit_cfg *out, char *file,
                       size_t filesz, char *keys, size_t keyssz, char *err, size_t errsz)
{
    const char *state = cfg->state_dir ? cfg->state_dir : "var";
    memset(out, 0, sizeof(*out));
    if (cfg->audit_file)
        snprintf(file, filesz, "%s", cfg->audit_file);
    else
        snprintf(file, filesz, "%s/audit.jsonl", state);
    /* the same repository as the HSS's secrets by default (src/hss/role.c) */
    if (cfg->audit_keys_dir)
        snprintf(keys, keyssz, "%s", cfg->audit_keys_dir);
    else if (cfg->hss_keys_dir)
        snprintf(keys, keyssz, "%s", cfg->hss_keys_dir);
    else
        snprintf(keys, keyssz, "%s/keys", state);
    out->file = file;
    out->keys_dir = keys;
    out->syslog = cfg->audit_syslog;
    out->queue_max = cfg->audit_queue;
    out->sync_ms = cfg->audit_sync_ms;
    out->key_id = IMS_AUDIT_KEY_PRIMARY;
    const char *kid = cfg->audit_key_id;
    if (kid && strcmp(kid, "primary") != 0) {
        uint64_t v;
        if (ims_str_to_u64(ims_str_cstr(kid), IMS_KEYREPO_MAX_ID, &v) != 0) {
            snprintf(err, errsz, "[audit] key_id: '%s' is neither 'primary' nor a key number",
                     kid);
            return IMS_EINVAL;
        }
        out->key_id = (int)v;
    }
    return 0;
}

int ims_audit_server_start(const struct ims_cfg *cfg, struct ims_audit **out, char *err,
                           size_t errsz)
{
    char file[1024], keys[1024];
    struct ims_audit_cfg ac;
    *out = NULL;
    if (!cfg->audit_enabled)
        return 0;
    int rc = ims_audit_cfg_from(cfg, &ac, file, sizeof(file), keys, sizeof(keys), err, errsz);
    if (rc)
        return rc;
    mkdir(cfg->state_dir ? cfg->state_dir : "var", 0700); /* as the HSS does */
    ac.create_keys = true;
    rc = ims_audit_open(&ac, out, err, errsz);
    if (rc == IMS_EAGAIN) {
        /* two processes on one state_dir: the first one keeps the trail */
        LOG_W("audit", "event=disabled file=%s why=\"held by another process\"", file);
        *out = NULL;
        return 0;
    }
    if (rc) {
        /* the trail must not take the SIP and Diameter service down with
         * it (a bad key repository, a read-only disk): run without it, loudly */
        LOG_E("audit", "event=unavailable file=%s why=\"%s\" err=%s", file, err,
              ims_strerror(rc));
        *out = NULL;
        return 0;
    }
    ims_audit_set_default(*out);
    return 0;
}

void ims_audit_server_stop(struct ims_audit *a)
{
    if (!a)
        return;
    ims_audit_set_default(NULL);
    ims_audit_close(a);
}
